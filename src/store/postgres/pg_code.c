/*
 * The code index of the PostgreSQL backend (store.h, "code index"): pg_trgm's GIN index over an
 * index copy of each text blob, once per blob (postgres/migrations/0008_code_index.sql).
 *
 * The copy is folded so that LIKE answers the store's query exactly (ASCII literals, ASCII case
 * ignored): ASCII letters in lower case, the two non-ASCII letters -i matches with ASCII ones
 * (U+212A KELVIN SIGN as k, U+017F LONG S as s; migrations/0014), and every run of bytes that
 * are not valid UTF-8 (and
 * NULs, which `text` cannot hold) replaced by one U+FFFD. Literals are ASCII and an ASCII byte is never part of
 * a multibyte sequence, so a literal occurs in the copy exactly where it occurs in the blob,
 * folded. A file that is not valid UTF-8 is therefore narrowed like any other text file, and so
 * is a binary one (migrations/0011).
 *
 * A ps_code_query becomes `content LIKE $k` conditions, one parameter per literal (with LIKE's
 * % _ \ escaped), under the tree's AND / OR: nothing the user typed reaches the SQL text. pg_trgm
 * turns each LIKE into a GIN lookup of the literal's trigrams and then checks the condition on
 * the row, so the matching set is exact, not only a superset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_internal.h"
#include "util/error.h"

/*
 * The largest blob whose text is indexed. pg_trgm takes a value apart in one allocation of
 * about 4.5 bytes per byte, and PostgreSQL refuses allocations over 1 GiB, so a text blob over
 * about 200 MiB could not be indexed at all and its sync would fail. Larger text blobs (only
 * possible with a raised --max-blob-size) get a row without text: always a candidate.
 */
#define MAX_INDEXED_TEXT (64u * 1024 * 1024)

/* More literals than this: the query is left out (every stored file is a candidate), which is
 * loose but never wrong, and keeps the statement under PostgreSQL's 65535 parameters. */
#define MAX_LITERALS 4096

/* Length of the valid UTF-8 sequence at s[0..n) (0 if invalid or cut off). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t k;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, a surrogate, or past U+10FFFF */
	return k;
}

/* The index copy of a text blob (see the top of the file), NUL-terminated. */
static char *index_text(const unsigned char *d, size_t len)
{
	struct ps_buf b;
	size_t i = 0;

	ps_buf_init(&b, SIZE_MAX);
	while (i < len) {
		size_t start = i, k;

		/* A run of valid, non-NUL sequences is copied in one go, ASCII folded. */
		while (i < len && d[i] && (k = utf8_seq(d + i, len - i)) > 0)
			i += k;
		if (i > start) {
			size_t at = b.len, w;
			ps_buf_append(&b, d + start, i - start);
			w = at;
			for (size_t j = at; j < b.len; j++) {
				unsigned char c = (unsigned char)b.data[j];

				/* -i lets `k` match U+212A KELVIN SIGN and `s` U+017F LONG S (PCRE2's
				 * caseless UTF matching, as git's): the copy holds them as k and s. */
				if (c == 0xe2 && j + 2 < b.len && (unsigned char)b.data[j + 1] == 0x84 &&
				    (unsigned char)b.data[j + 2] == 0xaa) {
					b.data[w++] = 'k';
					j += 2;
				} else if (c == 0xc5 && j + 1 < b.len &&
					   (unsigned char)b.data[j + 1] == 0xbf) {
					b.data[w++] = 's';
					j += 1;
				} else {
					b.data[w++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
				}
			}
			b.len = w;
			b.data[w] = '\0';
		}
		if (i < len) {
			/* One U+FFFD per run: a binary blob's copy stays about its size. */
			ps_buf_puts(&b, "\xef\xbf\xbd");
			while (i < len && (!d[i] || utf8_seq(d + i, len - i) == 0))
				i++;
		}
	}
	if (!b.data)
		return ps_strdup("");
	return ps_buf_take(&b, NULL);
}

int ps_pg_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
			 bool binary)
{
	struct ps_pq q = { 0 };
	char *text = NULL;
	int rc;

	/* A binary blob gets a copy too: git grep searches it, and without one every search would
	 * read every binary file of the snapshot. Its non-UTF-8 bytes become U+FFFD like a text
	 * file's, so its ASCII literals are found exactly where they are. */
	if (len <= MAX_INDEXED_TEXT)
		text = index_text(data, len);
	ps_pq_text(&q, sha);
	ps_pq_int(&q, binary);
	/* Valid UTF-8 by construction: sent as is (ps_pq_text would only scan it again). */
	if (text)
		ps_pq_bytes(&q, text, strlen(text));
	else
		ps_pq_text(&q, NULL);
	/* With the blob it indexes, in the same multi-row batches (pg.c ps_pg_defer). */
	rc = ps_pg_defer(PSPG(s), PS_PG_DEFER_CODE_BLOBS, &q);
	free(text);
	return rc;
}

/* An array literal of SHAs (hex, so safe unquoted; anything else becomes "0", never a SHA). */
static char *sha_array(const char *const *shas, size_t n)
{
	struct ps_buf arr;

	ps_buf_init(&arr, SIZE_MAX);
	ps_buf_puts(&arr, "{");
	for (size_t i = 0; i < n; i++) {
		bool hex = shas[i][0] != '\0';
		for (const char *c = shas[i]; *c; c++)
			hex = hex && ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
		ps_buf_printf(&arr, "%s%s", i ? "," : "", hex ? shas[i] : "0");
	}
	ps_buf_puts(&arr, "}");
	return ps_buf_take(&arr, NULL);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ps_pg_code_index_have(struct ps_store *s, const char *const *shas, size_t n, bool *indexed)
{
	/* One round trip per chunk, not per SHA. */
	const size_t chunk = 5000;

	for (size_t at = 0; at < n; at += chunk) {
		size_t m = n - at < chunk ? n - at : chunk;
		struct ps_pq q = { 0 };
		char *text = sha_array(shas + at, m), **found;
		PGresult *r;
		int rc = 0, nf;

		ps_pq_text(&q, text);
		r = ps_pg_run(PSPG(s), "SELECT sha FROM code_blobs WHERE sha = ANY($1::text[])", &q,
			      false, "look up the code index", &rc);
		free(text);
		if (!r)
			return rc;
		nf = PQntuples(r);
		found = ps_calloc((size_t)nf + 1, sizeof(*found));
		for (int i = 0; i < nf; i++)
			found[i] = PQgetvalue(r, i, 0);
		qsort(found, (size_t)nf, sizeof(*found), cmp_str);
		for (size_t i = 0; i < m; i++) {
			const char *key = shas[at + i];
			indexed[at + i] =
				bsearch(&key, found, (size_t)nf, sizeof(*found), cmp_str) != NULL;
		}
		free(found);
		PQclear(r);
	}
	return 0;
}

int ps_pg_code_unindexed(struct ps_store *s, int64_t project_id, struct ps_strv *out)
{
	static const char sql[] =
		"SELECT DISTINCT ps_hex(fv.sha) COLLATE \"C\" AS sha FROM file_versions fv "
		"WHERE fv.project_id = $1 AND (fv.mode & 61440) = 32768 "
		"AND NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_hex(fv.sha)) "
		"AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(fv.sha)) ORDER BY 1";
	struct ps_pq q = { 0 };
	struct ps_strv v = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, project_id);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "list blobs to index", &rc)))
		return rc;
	for (int i = 0; i < PQntuples(r); i++)
		ps_strv_push(&v, PQgetvalue(r, i, 0));
	PQclear(r);
	*out = v;
	return 0;
}

int ps_pg_code_index_done(struct ps_store *s, int64_t project_id)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, project_id);
	return ps_pg_exec(PSPG(s), "UPDATE projects SET code_index_pending = 0 WHERE id = $1", &q,
			  "mark the code index done", NULL);
}

static size_t count_literals(const struct ps_code_query *q)
{
	size_t n = 0;

	if (q->op == PS_CODE_LITERAL)
		return 1;
	for (size_t i = 0; i < q->nkids; i++)
		n += count_literals(q->kids[i]);
	return n;
}

/* The literal as a LIKE pattern matching it anywhere, folded as the index copy is. */
static char *like_pattern(const char *lit)
{
	struct ps_buf b;

	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "%");
	for (const char *c = lit; *c; c++) {
		char ch = *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c;
		if (ch == '%' || ch == '_' || ch == '\\')
			ps_buf_puts(&b, "\\");
		ps_buf_append(&b, &ch, 1);
	}
	ps_buf_puts(&b, "%");
	return ps_buf_take(&b, NULL);
}

/* Appends the condition for `q` to b and its patterns to p (kept alive in `pats`). */
static void render(struct ps_buf *b, struct ps_pq *p, struct ps_strv *pats,
		   const struct ps_code_query *q)
{
	if (q->op == PS_CODE_LITERAL) {
		char *pat = like_pattern(q->literal);

		ps_strv_push(pats, pat);
		free(pat);
		ps_pq_text(p, pats->v[pats->n - 1]);
		ps_buf_printf(b, "m.content LIKE $%d", p->n);
		return;
	}
	ps_buf_puts(b, "(");
	for (size_t i = 0; i < q->nkids; i++) {
		if (i)
			ps_buf_puts(b, q->op == PS_CODE_AND ? " AND " : " OR ");
		render(b, p, pats, q->kids[i]);
	}
	ps_buf_puts(b, ")");
}

int ps_pg_code_candidates(struct ps_store *s, int64_t project_id, int64_t at,
			  const struct ps_code_query *q, const char *prefix,
			  const char *from_path, size_t limit, int64_t *snap,
			  struct ps_code_candidate **out, size_t *n)
{
	/* The blobs that satisfy the query are found once, through the GIN index, over the whole
	 * store (a blob is indexed once whatever project holds it), with the blobs the index does
	 * not narrow (no copy: code_blobs_uncopied; or no row at all: normally none), and only
	 * their file versions are read (file_versions_sha), not every file of the snapshot
	 * (sqlite_code.c explains the cost). The three parts are disjoint: no row repeats. */
	static const char head[] = "WITH hit AS MATERIALIZED (SELECT m.sha FROM code_blobs m WHERE "
				   "m.content IS NOT NULL AND ";
	static const char tail[] =
		" UNION ALL SELECT m.sha FROM code_blobs m WHERE m.content IS NULL "
		"UNION ALL SELECT b.sha FROM blobs b "
		"WHERE NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)) ";
	static const char cols[] =
		"SELECT fv.path, fv.mode, ps_hex(fv.sha), fv.size, cb.sha IS NOT NULL, cb.is_binary ";
	static const char body[] = "FROM file_versions fv LEFT JOIN code_blobs cb ON cb.sha = ps_hex(fv.sha) ";
	static const char hit_body[] = "FROM hit h JOIN file_versions fv ON fv.sha = ps_unhex(h.sha) "
				       "LEFT JOIN code_blobs cb ON cb.sha = ps_hex(fv.sha) ";
	static const char where[] =
		"WHERE fv.project_id = $1 AND " VISIBLE_AT("$2") " "
		"AND (fv.mode & 61440) = 32768 "
		"AND ($3::bytea IS NULL OR fv.path >= $3) AND ($4::bytea IS NULL OR fv.path < $4) ";
	static const char stored[] =
		"AND (cb.sha IS NOT NULL OR EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(fv.sha))) ";
	struct ps_code_candidate *v;
	struct ps_pq p = { 0 };
	struct ps_strv pats = { 0 };
	struct ps_buf sql;
	const char *lower = NULL;
	char *upper = NULL, *text;
	size_t upper_len = 0;
	int64_t id;
	PGresult *r;
	int rc = 0;

	if ((rc = ps_pg_resolve_snapshot(s, project_id, at, &id)) < 0)
		return rc;
	if (q && count_literals(q) > MAX_LITERALS)
		q = NULL;
	if (prefix && *prefix) {
		/* Paths with the prefix lie in [prefix, prefix with its last byte + 1). */
		upper_len = strlen(prefix);
		upper = ps_strdup(prefix);
		while (upper_len > 0 && (unsigned char)upper[upper_len - 1] == 0xff)
			upper_len--;
		if (upper_len > 0)
			upper[upper_len - 1] = (char)((unsigned char)upper[upper_len - 1] + 1);
		lower = prefix;
	}
	if (from_path && (!lower || strcmp(from_path, lower) > 0))
		lower = from_path;
	ps_pq_int(&p, project_id);
	ps_pq_int(&p, id);
	ps_pq_path(&p, lower);
	if (upper_len > 0)
		ps_pq_bytes(&p, upper, upper_len);
	else
		ps_pq_path(&p, NULL);

	ps_buf_init(&sql, SIZE_MAX);
	if (q) {
		/* Blobs too large to index have no copy: always candidates, as stored blobs with
		 * no row are (not indexed yet, or binary ones whose row migration 0011 dropped). */
		ps_buf_puts(&sql, head);
		render(&sql, &p, &pats, q);
		ps_buf_puts(&sql, tail);
		ps_buf_puts(&sql, cols);
		ps_buf_puts(&sql, hit_body);
		ps_buf_puts(&sql, where);
	} else {
		ps_buf_puts(&sql, cols);
		ps_buf_puts(&sql, body);
		ps_buf_puts(&sql, where);
		ps_buf_puts(&sql, stored);
	}
	ps_buf_puts(&sql, "ORDER BY fv.path");
	if (limit > 0)
		ps_buf_printf(&sql, " LIMIT %zu", limit);
	text = ps_buf_take(&sql, NULL);
	r = ps_pg_run(PSPG(s), text, &p, false, "find code search candidates", &rc);
	free(text);
	free(upper);
	ps_strv_dispose(&pats);
	if (!r)
		return rc;
	*n = (size_t)PQntuples(r);
	v = ps_calloc(*n + 1, sizeof(*v));
	for (size_t i = 0; i < *n; i++) {
		struct ps_code_candidate *c = &v[i];

		c->file.path = ps_pg_col_bytea(r, (int)i, 0);
		c->file.mode = (uint32_t)ps_pg_col_int(r, (int)i, 1);
		snprintf(c->file.sha, sizeof(c->file.sha), "%s", PQgetvalue(r, (int)i, 2));
		c->file.size = PQgetisnull(r, (int)i, 3) ? -1 : ps_pg_col_int(r, (int)i, 3);
		c->state = strcmp(PQgetvalue(r, (int)i, 4), "t") != 0 ? PS_CODE_UNINDEXED
			   : ps_pg_col_int(r, (int)i, 5)               ? PS_CODE_BINARY
									: PS_CODE_TEXT;
	}
	PQclear(r);
	*snap = id;
	*out = v;
	return 0;
}
