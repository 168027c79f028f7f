/*
 * The code index of the SQLite backend (store.h, "code index"): an FTS5 table over the content
 * of each blob, once per blob, tokenized into trigrams by the tokenizer below
 * (sqlite/migrations/0008_code_index.sql, 0014_code_index_distinct.sql).
 *
 * A ps_code_query becomes an FTS5 expression this file writes itself: every literal becomes
 * the AND of a few of its trigrams, each a quoted single-token phrase ("" doubles a quote), and
 * the tree's AND / OR become FTS5's. Nothing the user typed reaches FTS5 other than as a quoted
 * 3-character string, so no pattern can be read as FTS syntax. The index is detail=none, so
 * the expression says "holds all these trigrams", not "holds this string": a superset the
 * matcher in core/grep.c narrows to the truth.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"

/* Trigrams per literal: a long literal's trigrams mostly agree; a handful spread over it
 * narrows as well as all of them and keeps the doclists FTS5 intersects few. */
#define MAX_TRIGRAMS 6

/*
 * The tokenizer of code_fts (migration 0014), registered on every connection as
 * "projsync_trigram": each DISTINCT trigram of a document once, made of printable ASCII bytes
 * and tabs only, ASCII letters folded to lower case.
 *
 * Query literals hold only printable ASCII bytes and tabs (store.h), so a trigram a query asks
 * for is 3 such bytes in a row in the content; any other byte (control, CR, NUL, any byte of a
 * multibyte or invalid UTF-8 sequence) can be no part of one and only separates. The same rule
 * serves text and binary blobs, so compressed or random bytes add few trigrams. Two non-ASCII
 * characters count as ASCII letters: PCRE2's caseless UTF matching (-i) lets `k` match the
 * KELVIN SIGN (U+212A) and `s` the LONG S (U+017F), so they are indexed as `k` and `s` (for a
 * case-sensitive search that only adds candidates).
 *
 * FTS5's own `trigram` tokenizer emitted every trigram of the text, one token per byte, and
 * FTS5 looked each up in its pending-terms hash: that was most of a first sync's time (4-6x a
 * sync without the index on libgit2). The table is detail=none (no positions or counts), so a
 * trigram's second occurrence in a document adds nothing to the index: emitting it once cuts
 * the tokens ~8x on libgit2. Removing a document from the contentless table tokenizes the same
 * content again, which gives the same tokens.
 *
 * A term is the trigram followed by two bytes of a hash of it (0x80-0xff, never NUL). FTS5's
 * pending-terms hash (fts5_hash.c, h = h*9 ^ byte) gives 3-byte keys of printable ASCII only a few
 * thousand distinct values: on libgit2 82,373 trigrams shared 5,848 of them, and every token
 * walked a chain of ~21 keys comparing each with memcmp, which was most of the indexing time.
 * The two bytes spread them (~1.3 keys per lookup). Queries are tokenized by this same function,
 * so they ask for the same terms.
 */
#define TRI_SYMBOLS 71 /* 0 = not printable; 1..70 = tab, ' '..'~' without 'A'..'Z' */
#define TRI_CODES (TRI_SYMBOLS * TRI_SYMBOLS * TRI_SYMBOLS)
#define TRI_LIST 8192  /* beyond this many distinct trigrams, clear the whole bitmap */

struct tri_tokenizer {
	uint64_t seen[(TRI_CODES + 63) / 64];
	uint32_t list[TRI_LIST];
};

static unsigned char tri_code[256], tri_char[TRI_SYMBOLS];

static void tri_init_tables(void)
{
	unsigned char n = 1;

	tri_char[n] = '\t';
	tri_code['\t'] = n++;
	for (int c = 0x20; c < 0x7f; c++) {
		if (c >= 'A' && c <= 'Z')
			continue;
		tri_char[n] = (unsigned char)c;
		tri_code[c] = n++;
	}
	for (int c = 'A'; c <= 'Z'; c++)
		tri_code[c] = tri_code[c - 'A' + 'a'];
}

static int tri_create(void *ctx, const char **argv, int argc, Fts5Tokenizer **out)
{
	(void)ctx;
	(void)argv;
	if (argc > 0)
		return SQLITE_ERROR;
	*out = (Fts5Tokenizer *)ps_calloc(1, sizeof(struct tri_tokenizer));
	return SQLITE_OK;
}

static void tri_delete(Fts5Tokenizer *t)
{
	free(t);
}

static int tri_tokenize(Fts5Tokenizer *tok, void *ctx, int flags, const char *text, int len,
			int (*emit)(void *, int, const char *, int, int, int))
{
	struct tri_tokenizer *t = (struct tri_tokenizer *)tok;
	const unsigned char *d = (const unsigned char *)text;
	unsigned c1 = 0, c2 = 0;
	size_t listed = 0;
	bool overflow = false;
	int rc = SQLITE_OK, at1 = 0, at2 = 0;

	(void)flags;
	for (int i = 0; i < len && rc == SQLITE_OK;) {
		int at = i;
		unsigned c;

		if (d[i] == 0xe2 && i + 2 < len && d[i + 1] == 0x84 && d[i + 2] == 0xaa) {
			c = tri_code['k']; /* U+212A KELVIN SIGN */
			i += 3;
		} else if (d[i] == 0xc5 && i + 1 < len && d[i + 1] == 0xbf) {
			c = tri_code['s']; /* U+017F LATIN SMALL LETTER LONG S */
			i += 2;
		} else {
			c = tri_code[d[i++]];
		}
		if (c && c1 && c2) {
			uint32_t code = (uint32_t)((c1 * TRI_SYMBOLS + c2) * TRI_SYMBOLS + c);
			uint64_t bit = (uint64_t)1 << (code % 64);

			if (!(t->seen[code / 64] & bit)) {
				uint32_t mix = code * 0x9e3779b1u;
				char term[5] = { (char)tri_char[c1], (char)tri_char[c2], (char)tri_char[c],
						 (char)(0x80 | (mix >> 25)), (char)(0x80 | ((mix >> 18) & 0x7f)) };

				t->seen[code / 64] |= bit;
				if (listed < TRI_LIST)
					t->list[listed++] = code;
				else
					overflow = true;
				rc = emit(ctx, 0, term, (int)sizeof(term), at1, i);
			}
		}
		c1 = c2;
		at1 = at2;
		c2 = c;
		at2 = at;
	}
	if (overflow)
		memset(t->seen, 0, sizeof(t->seen));
	else
		for (size_t k = 0; k < listed; k++)
			t->seen[t->list[k] / 64] = 0;
	return rc;
}

/*
 * The code_blobs ids whose document satisfies a query, as a bitmap (ids are dense: code_blobs'
 * INTEGER PRIMARY KEY), for the walk in path order below; passed to SQL by
 * sqlite3_bind_pointer, so no user value can pose as one.
 */
struct hits {
	uint64_t *bits;
	int64_t nbits;
	size_t count;
};

#define HITS_POINTER "projsync_code_hits"

/* ps_code_hit(hits, id): whether code_blobs row `id` is among the hits. */
static void code_hit(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const struct hits *h = sqlite3_value_pointer(argv[0], HITS_POINTER);
	sqlite3_int64 id = sqlite3_value_int64(argv[1]);

	(void)argc;
	sqlite3_result_int(ctx, h && id >= 0 && id < h->nbits &&
					((h->bits[id / 64] >> (id % 64)) & 1));
}

int ps_sqlite_code_register(sqlite3 *db)
{
	static fts5_tokenizer tokenizer = { tri_create, tri_delete, tri_tokenize };
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	/* The server opens stores from several threads. */
	pthread_once(&once, tri_init_tables);
	/* SQLite's documented way to reach the FTS5 API of a connection. */
	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	if (!api || api->iVersion < 2)
		return -1;
	rc = api->xCreateTokenizer(api, "projsync_trigram", NULL, &tokenizer, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "ps_code_hit", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY,
					     NULL, code_hit, NULL, NULL);
	return rc == SQLITE_OK ? 0 : -1;
}

int ps_sqlite_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
			     bool binary)
{
	static const char ins_blob[] = "INSERT OR IGNORE INTO code_blobs (sha, binary) VALUES (?, ?)";
	static const char ins_fts[] = "INSERT INTO code_fts (rowid, content) VALUES (?, ?)";
	sqlite3_stmt *st = ps_sqlite_stmt(s, ins_blob);
	sqlite3_int64 id;
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
	sqlite3_bind_int64(st, 1, id);
	/* The content as it is: the tokenizer reads every byte (NULs too; the database is UTF-8,
	 * so SQLite converts nothing). */
	sqlite3_bind_text64(st, 2, len ? data : "", len, SQLITE_STATIC, SQLITE_UTF8);
	rc = ps_sqlite_step_done(s, st, "index blob text");
	sqlite3_clear_bindings(st);
	return rc;
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

/* Runs the FTS5 expression once and keeps its rowids in `h`. */
static int collect_hits(struct ps_store *s, const char *expr, size_t len, struct hits *h)
{
	static const char sql[] = "SELECT rowid FROM code_fts WHERE code_fts MATCH ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_text(st, 1, expr, (int)len, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 id = sqlite3_column_int64(st, 0);

		if (id < 0)
			continue;
		if (id >= h->nbits) {
			int64_t nbits = h->nbits ? h->nbits : 4096;

			while (nbits <= id)
				nbits *= 2;
			h->bits = ps_realloc(h->bits, (size_t)nbits / 8);
			memset(h->bits + h->nbits / 64, 0, (size_t)(nbits - h->nbits) / 8);
			h->nbits = nbits;
		}
		if (!((h->bits[id / 64] >> (id % 64)) & 1))
			h->count++;
		h->bits[id / 64] |= (uint64_t)1 << (id % 64);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "find code search candidates");
}

/* The number of code_blobs rows there may be (the largest id): what a hit count is out of. */
static int64_t indexed_blobs(struct ps_store *s)
{
	sqlite3_stmt *st = ps_sqlite_stmt(s, "SELECT max(id) FROM code_blobs");
	int64_t n = 0;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	if (st)
		sqlite3_reset(st);
	return n;
}

/* Whether every stored blob is in the index (code_unindexed, kept by triggers, is 0). */
static bool all_indexed(struct ps_store *s)
{
	sqlite3_stmt *st = ps_sqlite_stmt(s, "SELECT n FROM code_unindexed");
	bool none = false;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		none = sqlite3_column_int64(st, 0) == 0;
	if (st)
		sqlite3_reset(st);
	return none;
}

int ps_sqlite_code_candidates(struct ps_store *s, int64_t project_id, int64_t at,
			      const struct ps_code_query *q, const char *prefix,
			      const char *from_path, size_t limit, int64_t *snap,
			      struct ps_code_candidate **out, size_t *n)
{
	static const char all_sql[] =
		"SELECT fv.path, fv.mode, ps_hex(fv.sha), fv.size, cb.id, cb.binary "
		"FROM file_versions fv LEFT JOIN code_blobs cb ON cb.sha = ps_hex(fv.sha) " CANDIDATE_WHERE
		"AND (cb.id IS NOT NULL OR EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(fv.sha))) "
		"ORDER BY fv.path LIMIT ?6";
	/*
	 * With a query the blobs come first: those whose document matches (few for a rare
	 * literal) and the stored blobs the index lacks (normally none: the anti-join walks two
	 * sha indexes, no file version), then their file versions by sha (file_versions_sha),
	 * kept if the snapshot sees them. Scanning the snapshot's file versions and testing each
	 * against the matches instead cost a lookup or three per file of the snapshot, every
	 * search (~130 ms on libgit2's 15,606 files whatever the pattern). CROSS JOIN keeps that
	 * order; the two halves are disjoint (a blob is in code_blobs or not), so no row repeats.
	 */
#define MATCH_SQL(unindexed) \
		"WITH hit(sha) AS (" \
		"SELECT m.sha FROM code_blobs m WHERE m.id IN " \
		"(SELECT rowid FROM code_fts WHERE code_fts MATCH ?5) " unindexed ") " \
		"SELECT fv.path, fv.mode, ps_hex(fv.sha), fv.size, cb.id, cb.binary " \
		"FROM hit h CROSS JOIN file_versions fv ON fv.sha = ps_unhex(h.sha) " \
		"LEFT JOIN code_blobs cb ON cb.sha = ps_hex(fv.sha) " CANDIDATE_WHERE "ORDER BY fv.path LIMIT ?6"
	static const char match_sql[] = MATCH_SQL(
		"UNION ALL SELECT b.sha FROM blobs b "
		"WHERE NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)");
	/* The same when code_unindexed says every stored blob is indexed (migration 0014). */
	static const char match_indexed_sql[] = MATCH_SQL("");
#undef MATCH_SQL
	/*
	 * But when most blobs match (a common literal) and only the first `limit` candidates are
	 * wanted, that lists and sorts nearly every file of the snapshot for a few of them (~6 us
	 * per file: 0.6 s at 100,000 files). Then the snapshot is walked in path order
	 * (file_versions_path, no sort) with the matches in a bitmap, and the walk stops at the
	 * limit.
	 */
	static const char walk_sql[] =
		"SELECT fv.path, fv.mode, ps_hex(fv.sha), fv.size, cb.id, cb.binary "
		"FROM file_versions fv LEFT JOIN code_blobs cb ON cb.sha = ps_hex(fv.sha) " CANDIDATE_WHERE
		"AND (CASE WHEN cb.id IS NULL THEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(fv.sha)) "
		"ELSE ps_code_hit(?5, cb.id) END) ORDER BY fv.path LIMIT ?6";
	struct ps_code_candidate *v = NULL;
	size_t count = 0, cap = 0;
	const char *lower = NULL;
	char *upper = NULL;
	sqlite3_stmt *st;
	struct ps_buf expr = { 0 };
	struct hits hits = { 0 };
	const char *sql;
	bool walk = false;
	int64_t id;
	int rc;

	if ((rc = ps_sqlite_resolve_snapshot(s, project_id, at, &id)) < 0)
		return rc;
	if (q) {
		ps_buf_init(&expr, 1u << 20);
		render(&expr, q);
	}
	if (q && limit > 0) {
		/* Walking costs about limit * blobs / hits rows, the blobs first about hits. */
		if ((rc = collect_hits(s, expr.data, expr.len, &hits)) < 0) {
			free(expr.data);
			free(hits.bits);
			return rc;
		}
		walk = (double)hits.count * (double)hits.count >
		       (double)limit * (double)indexed_blobs(s);
	}
	if (!q)
		sql = all_sql;
	else if (walk)
		sql = walk_sql;
	else
		sql = all_indexed(s) ? match_indexed_sql : match_sql;
	if (!(st = ps_sqlite_stmt(s, sql))) {
		free(expr.data);
		free(hits.bits);
		return PS_ESTORE;
	}
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
	if (walk)
		sqlite3_bind_pointer(st, 5, &hits, HITS_POINTER, NULL);
	else if (q)
		sqlite3_bind_text(st, 5, expr.data, (int)expr.len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, limit > 0 && limit < INT64_MAX ? (sqlite3_int64)limit : -1);
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
	/* The statement is cached: it must not keep a pointer to this call's bitmap. */
	sqlite3_clear_bindings(st);
	free(upper);
	free(expr.data);
	free(hits.bits);
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
		"SELECT c.id, c.sha FROM code_blobs c WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = ps_unhex(c.sha))";
	static const char del_fts[] =
		"INSERT INTO code_fts (code_fts, rowid, content) VALUES ('delete', ?, ?)";
	static const char del_blob[] = "DELETE FROM code_blobs WHERE id = ?";
	struct ps_strv shas = { 0 };
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = ps_sqlite_stmt(s, gone);
	int rc = 0;

	if (!st)
		return PS_ESTORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			ids = ps_realloc(ids, cap * sizeof(*ids));
		}
		ids[n++] = sqlite3_column_int64(st, 0);
		ps_strv_push(&shas, (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_reset(st);
	rc = rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "find unreferenced code index rows");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		/* A blob's document leaves the index with the content it was indexed with. */
		{
			void *data = NULL;
			size_t len = 0;

			if ((rc = ps_store_blob_get(s, shas.v[i], &data, &len)) == 0) {
				if (!(st = ps_sqlite_stmt(s, del_fts))) {
					free(data);
					rc = PS_ESTORE;
					break;
				}
				sqlite3_bind_int64(st, 1, ids[i]);
				sqlite3_bind_text64(st, 2, len ? data : "", len, SQLITE_STATIC,
						    SQLITE_UTF8);
				rc = ps_sqlite_step_done(s, st, "remove from the code index");
				sqlite3_clear_bindings(st);
				free(data);
				if (rc < 0)
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
	return rc;
}
