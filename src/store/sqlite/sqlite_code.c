/*
 * The code index of the SQLite backend (store.h, "code index"): FTS5's trigram tokenizer over
 * the text of each blob, once per blob (sqlite/migrations/0008_code_index.sql).
 *
 * A ps_code_query becomes an FTS5 expression this file writes itself: every literal becomes
 * the AND of a few of its trigrams, each a quoted single-token phrase ("" doubles a quote), and
 * the tree's AND / OR become FTS5's. Nothing the user typed reaches FTS5 other than as a quoted
 * 3-character string, so no pattern can be read as FTS syntax. The index is detail=none, so
 * the expression says "holds all these trigrams", not "holds this string": a superset the
 * matcher in core/grep.c narrows to the truth.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"

/* Trigrams per literal: a long literal's trigrams mostly agree; a handful spread over it
 * narrows as well as all of them and keeps the doclists FTS5 intersects few. */
#define MAX_TRIGRAMS 6

/*
 * The text code_fts indexes for a blob. FTS5 stops reading text at a NUL (a text file may hold
 * one past git's first 8000 bytes): a space instead only adds trigrams, and extra trigrams only
 * add candidates. Removing a document from a contentless table needs this same text again.
 *
 * A binary blob is indexed too (git grep searches it, so without a document every search would
 * read every binary file of the snapshot), by the runs of 3 or more printable ASCII bytes or tabs
 * in it, one space between runs. Query literals are made of those bytes only (store.h), so every
 * trigram a query can ask for lies in one run and is still there; the spaces only add trigrams.
 * Compressed or random bytes would otherwise fill the index with trigrams no query can name
 * (and cost the first sync the time to index them).
 */
static bool printable(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

static char *fts_text(const void *data, size_t len, bool binary, size_t *out_len)
{
	const unsigned char *d = data;
	char *text = ps_malloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len;) {
		size_t run = 0;

		if (!binary) {
			text[n++] = d[i] ? (char)d[i] : ' ';
			i++;
			continue;
		}
		while (i + run < len && printable(d[i + run]))
			run++;
		if (run >= 3) {
			if (n)
				text[n++] = ' ';
			memcpy(text + n, d + i, run);
			n += run;
		}
		i += run ? run : 1;
	}
	text[n] = '\0';
	*out_len = n;
	return text;
}

int ps_sqlite_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
			     bool binary)
{
	static const char ins_blob[] = "INSERT OR IGNORE INTO code_blobs (sha, binary) VALUES (?, ?)";
	static const char ins_fts[] = "INSERT INTO code_fts (rowid, content) VALUES (?, ?)";
	sqlite3_stmt *st = ps_sqlite_stmt(s, ins_blob);
	sqlite3_int64 id;
	char *text;
	size_t tlen;
	int rc;

	if (!st)
		return PS_ESTORE;
	ps_sqlite_bind_text(st, 1, sha);
	sqlite3_bind_int(st, 2, binary);
	if ((rc = ps_sqlite_step_done(s, st, "index blob")) < 0)
		return rc;
	if (sqlite3_changes(s->db) == 0)
		return 0; /* indexed before */
	id = sqlite3_last_insert_rowid(s->db);
	if (!(st = ps_sqlite_stmt(s, ins_fts)))
		return PS_ESTORE;
	text = fts_text(data, len, binary, &tlen);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text64(st, 2, text, tlen, free, SQLITE_UTF8);
	return ps_sqlite_step_done(s, st, "index blob text");
}

int ps_sqlite_code_index_have(struct ps_store *s, const char *const *shas, size_t n,
			      bool *indexed)
{
	static const char sql[] = "SELECT 1 FROM code_blobs WHERE sha = ?";

	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
		int rc;

		if (!st)
			return PS_ESTORE;
		ps_sqlite_bind_text(st, 1, shas[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return ps_sqlite_error(s, "look up the code index");
		indexed[i] = rc == SQLITE_ROW;
	}
	return 0;
}

int ps_sqlite_code_unindexed(struct ps_store *s, int64_t project_id, struct ps_strv *out)
{
	static const char sql[] =
		"SELECT DISTINCT ps_hex(fv.sha) FROM file_versions fv "
		"WHERE fv.project_id = ? AND (fv.mode & 61440) = 32768 "
		"AND NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_hex(fv.sha)) "
		"AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(fv.sha)) ORDER BY 1";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	struct ps_strv v = { 0 };
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		ps_strv_push(&v, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ps_strv_dispose(&v);
		return ps_sqlite_error(s, "list blobs to index");
	}
	*out = v;
	return 0;
}

int ps_sqlite_code_index_done(struct ps_store *s, int64_t project_id)
{
	static const char sql[] = "UPDATE projects SET code_index_pending = 0 WHERE id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	return ps_sqlite_step_done(s, st, "mark the code index done");
}

static void put_trigram(struct ps_buf *b, const char *t)
{
	ps_buf_puts(b, "\"");
	for (int i = 0; i < 3; i++) {
		if (t[i] == '"')
			ps_buf_puts(b, "\"");
		ps_buf_append(b, &t[i], 1);
	}
	ps_buf_puts(b, "\"");
}

static void render(struct ps_buf *b, const struct ps_code_query *q)
{
	if (q->op == PS_CODE_LITERAL) {
		size_t len = strlen(q->literal), count = len - 2;
		size_t take = count < MAX_TRIGRAMS ? count : MAX_TRIGRAMS;

		ps_buf_puts(b, "(");
		for (size_t k = 0; k < take; k++) {
			/* Spread over the literal, always its first and last trigram. */
			size_t at = take > 1 ? k * (count - 1) / (take - 1) : 0;
			if (k)
				ps_buf_puts(b, " AND ");
			put_trigram(b, q->literal + at);
		}
		ps_buf_puts(b, ")");
		return;
	}
	ps_buf_puts(b, "(");
	for (size_t i = 0; i < q->nkids; i++) {
		if (i)
			ps_buf_puts(b, q->op == PS_CODE_AND ? " AND " : " OR ");
		render(b, q->kids[i]);
	}
	ps_buf_puts(b, ")");
}

#define CANDIDATE_WHERE \
	"WHERE fv.project_id = ?1 AND fv.introduced_by <= ?2 " \
	"AND (fv.superseded_by IS NULL OR fv.superseded_by > ?2) " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by AND i.status = 'succeeded') " \
	"AND (fv.mode & 61440) = 32768 " \
	"AND (?3 IS NULL OR fv.path >= ?3) AND (?4 IS NULL OR fv.path < ?4) "

int ps_sqlite_code_candidates(struct ps_store *s, int64_t project_id, int64_t at,
			      const struct ps_code_query *q, const char *prefix,
			      const char *from_path, int64_t *snap,
			      struct ps_code_candidate **out, size_t *n)
{
	static const char all_sql[] =
		"SELECT fv.path, fv.mode, ps_hex(fv.sha), fv.size, cb.id, cb.binary "
		"FROM file_versions fv LEFT JOIN code_blobs cb ON cb.sha = ps_hex(fv.sha) " CANDIDATE_WHERE
		"AND (cb.id IS NOT NULL OR EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(fv.sha))) "
		"ORDER BY fv.path";
	/*
	 * With a query the blobs come first: those whose document matches (few for a rare
	 * literal) and the stored blobs the index lacks (normally none: the anti-join walks two
	 * sha indexes, no file version), then their file versions by sha (file_versions_sha),
	 * kept if the snapshot sees them. Scanning the snapshot's file versions and testing each
	 * against the matches instead cost a lookup or three per file of the snapshot, every
	 * search (~130 ms on libgit2's 15,606 files whatever the pattern). CROSS JOIN keeps that
	 * order; the two halves are disjoint (a blob is in code_blobs or not), so no row repeats.
	 */
	static const char match_sql[] =
		"WITH hit(sha) AS ("
		"SELECT m.sha FROM code_blobs m WHERE m.id IN "
		"(SELECT rowid FROM code_fts WHERE code_fts MATCH ?5) "
		"UNION ALL SELECT b.sha FROM blobs b "
		"WHERE NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)) "
		"SELECT fv.path, fv.mode, ps_hex(fv.sha), fv.size, cb.id, cb.binary "
		"FROM hit h CROSS JOIN file_versions fv ON fv.sha = ps_unhex(h.sha) "
		"LEFT JOIN code_blobs cb ON cb.sha = ps_hex(fv.sha) " CANDIDATE_WHERE "ORDER BY fv.path";
	struct ps_code_candidate *v = NULL;
	size_t count = 0, cap = 0;
	const char *lower = NULL;
	char *upper = NULL;
	sqlite3_stmt *st;
	struct ps_buf expr = { 0 };
	int64_t id;
	int rc;

	if ((rc = ps_sqlite_resolve_snapshot(s, project_id, at, &id)) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, q ? match_sql : all_sql)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, id);
	if (prefix && *prefix) {
		/* Paths with the prefix lie in [prefix, prefix with its last byte + 1). */
		size_t len = strlen(prefix);

		upper = ps_strdup(prefix);
		while (len > 0 && (unsigned char)upper[len - 1] == 0xff)
			len--;
		if (len > 0) {
			upper[len - 1] = (char)((unsigned char)upper[len - 1] + 1);
			sqlite3_bind_text(st, 4, upper, (int)len, SQLITE_TRANSIENT);
		}
		lower = prefix;
	}
	if (from_path && (!lower || strcmp(from_path, lower) > 0))
		lower = from_path;
	ps_sqlite_bind_text(st, 3, lower);
	if (q) {
		ps_buf_init(&expr, 1u << 20);
		render(&expr, q);
		sqlite3_bind_text(st, 5, expr.data, (int)expr.len, SQLITE_TRANSIENT);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *sha = sqlite3_column_text(st, 2);
		struct ps_code_candidate *c;

		if (count == cap) {
			cap = cap ? cap * 2 : 256;
			v = ps_realloc(v, cap * sizeof(*v));
		}
		c = &v[count++];
		c->file.path = ps_sqlite_col_text(st, 0);
		c->file.mode = (uint32_t)sqlite3_column_int64(st, 1);
		snprintf(c->file.sha, sizeof(c->file.sha), "%s", sha ? (const char *)sha : "");
		c->file.size = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1
									 : sqlite3_column_int64(st, 3);
		c->state = sqlite3_column_type(st, 4) == SQLITE_NULL ? PS_CODE_UNINDEXED
			   : sqlite3_column_int(st, 5)                ? PS_CODE_BINARY
								       : PS_CODE_TEXT;
	}
	sqlite3_reset(st);
	free(upper);
	free(expr.data);
	if (rc != SQLITE_DONE) {
		ps_code_candidates_free(v, count);
		return ps_sqlite_error(s, "find code search candidates");
	}
	*snap = id;
	*out = v;
	*n = count;
	return 0;
}

int ps_sqlite_code_forget_unreferenced(struct ps_store *s)
{
	static const char gone[] =
		"SELECT c.id, c.sha, c.binary FROM code_blobs c WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = ps_unhex(c.sha))";
	static const char del_fts[] =
		"INSERT INTO code_fts (code_fts, rowid, content) VALUES ('delete', ?, ?)";
	static const char del_blob[] = "DELETE FROM code_blobs WHERE id = ?";
	struct ps_strv shas = { 0 };
	int64_t *ids = NULL;
	bool *binary = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = ps_sqlite_stmt(s, gone);
	int rc = 0;

	if (!st)
		return PS_ESTORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			ids = ps_realloc(ids, cap * sizeof(*ids));
			binary = ps_realloc(binary, cap * sizeof(*binary));
		}
		ids[n] = sqlite3_column_int64(st, 0);
		ps_strv_push(&shas, (const char *)sqlite3_column_text(st, 1));
		binary[n++] = sqlite3_column_int(st, 2) != 0;
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "find unreferenced code index rows");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		/* A blob's document leaves the index with the text it was indexed with. */
		{
			void *data = NULL;
			size_t len = 0, tlen;

			if ((rc = ps_store_blob_get(s, shas.v[i], &data, &len)) == 0) {
				if (!(st = ps_sqlite_stmt(s, del_fts))) {
					free(data);
					rc = PS_ESTORE;
					break;
				}
				sqlite3_bind_int64(st, 1, ids[i]);
				char *text = fts_text(data, len, binary[i], &tlen);
				sqlite3_bind_text64(st, 2, text, tlen, free, SQLITE_UTF8);
				free(data);
				if ((rc = ps_sqlite_step_done(s, st, "remove from the code index")) < 0)
					break;
			} else if (rc == PS_ENOTFOUND ||
				   (rc == PS_ESTORE && !strcmp(ps_error_slug(), "blob_corrupt"))) {
				/* No text to remove it with (gone, or a damaged frame that prune is
				 * about to delete): its postings stay, harmless. */
				rc = 0;
				ps_error_clear();
			}
		}
		if (rc == 0) {
			if (!(st = ps_sqlite_stmt(s, del_blob))) {
				rc = PS_ESTORE;
				break;
			}
			sqlite3_bind_int64(st, 1, ids[i]);
			rc = ps_sqlite_step_done(s, st, "remove from the code index");
		}
	}
	ps_strv_dispose(&shas);
	free(ids);
	free(binary);
	return rc;
}
