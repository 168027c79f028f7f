/*
 * The code index of the PostgreSQL backend (store.h, "code index"): projsync's own trigram index
 * (store/codeindex.h; migrations/0017), as on SQLite (sqlite/sqlite_code.c), one document per
 * blob whatever project brought it.
 *
 * ps_pg_code_index_put sends a code_blobs row (deferred with the blob's, pg.c ps_pg_defer) under
 * an id taken from code_blobs_id_seq, and adds the blob's distinct trigrams to an accumulator of
 * the handle; the outermost commit writes the accumulator as one new segment (rows of ~8 KiB in
 * code_postings) just before COMMIT, in the same transaction as the code_blobs rows, and merges
 * segments level by level. Several processes share the database: each transaction writes its
 * own segment (segment ids from a sequence), and a merge locks its inputs with FOR UPDATE SKIP
 * LOCKED, so two merges never take the same segment and neither waits for the other.
 *
 * A query reads, in one statement, one row per (segment, trigram it needs) and evaluates the
 * tree's AND / OR on id bitmaps in memory; SQL then gets the matching ids as an array: nothing
 * the user typed reaches SQL but as ids. The answer is "holds all these trigrams", a superset the
 * matcher in core/grep.c narrows to the truth.
 *
 * Before schema 17 this was pg_trgm's GIN index over a folded copy of each blob's text, which
 * made a first sync 3.6x one without (docs/performance.md, "Code search").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/codeindex.h"
#include "store/postgres/pg_internal.h"
#include "util/error.h"

/* Segments of a level merged into one of the next once there are this many (as on SQLite). */
#define FANIN 8
/* Postings kept in memory before a transaction writes them as a segment anyway (8 bytes each). */
#define ACC_MAX ((size_t)4 << 20)
/* Ids taken from the sequence per round trip: 16 at first, twice as many each time up to this
 * (a handle's unused ids are lost: a CLI sync of a few new blobs spends few). */
#define ID_BLOCK 256
/* A multi-row INSERT of segment rows: bounded memory, well under 65,535 parameters. */
#define ROWS_MAX 500
#define ROWS_BYTES (8u << 20)

struct ps_pg_code {
	struct ps_tri_doc doc;
	struct ps_tri_acc acc;
	int64_t ids[ID_BLOCK]; /* taken from code_blobs_id_seq, unused yet, increasing */
	size_t nids, at, block;
};

static struct ps_pg_code *code_state(struct ps_pg *g)
{
	if (!g->code)
		g->code = ps_calloc(1, sizeof(*g->code));
	return g->code;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * The next document id. Ids come from the sequence, a block per round trip; the sequence only
 * grows, so the ids one handle uses increase (the accumulator wants them so) and no id is ever
 * given twice, even one a rolled-back transaction or a lost ON CONFLICT took: postings of an id
 * with no code_blobs row are ignored by queries and dropped by merges.
 */
static int take_id(struct ps_pg *g, int64_t *out)
{
	struct ps_pg_code *c = code_state(g);

	if (c->at == c->nids) {
		char sql[128];
		PGresult *r;
		int rc = 0;

		c->block = c->block ? c->block * 2 : 16;
		if (c->block > ID_BLOCK)
			c->block = ID_BLOCK;
		snprintf(sql, sizeof(sql),
			 "SELECT nextval('code_blobs_id_seq') FROM generate_series(1, %zu)", c->block);
		if (!(r = ps_pg_run(g, sql, NULL, false, "number code index documents", &rc)))
			return rc;
		c->nids = (size_t)PQntuples(r);
		for (size_t i = 0; i < c->nids && i < ID_BLOCK; i++)
			c->ids[i] = ps_pg_col_int(r, (int)i, 0);
		PQclear(r);
		qsort(c->ids, c->nids, sizeof(*c->ids), cmp_i64);
		c->at = 0;
		if (c->nids == 0)
			return ps_error_set(PS_ESTORE, NULL, "store %s: no code index id", g->where);
	}
	*out = c->ids[c->at++];
	if (*out > UINT32_MAX)
		return ps_error_set(PS_ESTORE, NULL, "the code index is full (2^32 blobs)");
	return 0;
}

static int write_segment(struct ps_pg *g, struct ps_tri_acc *acc);

static int index_put(struct ps_pg *g, const char *sha, const void *data, size_t len, bool binary)
{
	struct ps_pg_code *c = code_state(g);
	struct ps_pq q = { 0 };
	int64_t id = 0;
	int rc;

	if ((rc = take_id(g, &id)) < 0)
		return rc;
	ps_pq_int(&q, id);
	ps_pq_text(&q, sha);
	ps_pq_int(&q, binary);
	/* With the blob it indexes, in the same multi-row batches (pg.c ps_pg_defer). A blob
	 * indexed before (ON CONFLICT) leaves this id without a row: see take_id. */
	if ((rc = ps_pg_defer(g, PS_PG_DEFER_CODE_BLOBS, &q)) < 0)
		return rc;
	/* Text and binary blobs alike: only printable runs make trigrams (codeindex.h). */
	ps_tri_doc_extract(&c->doc, data, len);
	ps_tri_acc_add(&c->acc, (uint32_t)id, c->doc.codes, c->doc.n);
	if (c->acc.n >= ACC_MAX) {
		rc = write_segment(g, &c->acc);
		ps_tri_acc_clear(&c->acc);
	}
	return rc;
}

int ps_pg_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
			 bool binary)
{
	int rc;

	if (PSPG(s)->tx_depth > 0)
		return index_put(PSPG(s), sha, data, len, binary);
	/* The postings are written at the outermost commit: give a lone call one. */
	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = index_put(PSPG(s), sha, data, len, binary)) < 0) {
		ps_pg_rollback(s);
		return rc;
	}
	return ps_pg_commit(s);
}

/* ---- segments ---- */

/* The rows of a segment being written, sent as multi-row INSERTs. */
struct seg_out {
	struct ps_pg *g;
	int64_t seg;
	struct ps_pq q;
	char **copies;
	size_t n, bytes;
};

static int rows_flush(struct seg_out *o)
{
	struct ps_buf b;
	char *sql;
	int rc = 0;

	if (o->n == 0)
		return 0;
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "INSERT INTO code_postings (seg, first, data) VALUES ");
	for (size_t i = 0; i < o->n; i++)
		ps_buf_printf(&b, "%s($%zu, $%zu, $%zu)", i ? ", " : "", 3 * i + 1, 3 * i + 2,
			      3 * i + 3);
	sql = ps_buf_take(&b, NULL);
	rc = ps_pg_exec(o->g, sql, &o->q, "write the code index", NULL); /* disposes o->q */
	free(sql);
	for (size_t i = 0; i < o->n; i++)
		free(o->copies[i]);
	memset(&o->q, 0, sizeof(o->q));
	o->n = o->bytes = 0;
	return rc;
}

static int emit_row(void *ctx, uint32_t first, const unsigned char *data, size_t len)
{
	struct seg_out *o = ctx;
	char *copy = ps_malloc(len ? len : 1);

	if (len)
		memcpy(copy, data, len);
	if (!o->copies)
		o->copies = ps_calloc(ROWS_MAX, sizeof(*o->copies));
	o->copies[o->n++] = copy;
	o->bytes += len;
	ps_pq_int(&o->q, o->seg);
	ps_pq_int(&o->q, first);
	ps_pq_bytes(&o->q, copy, len);
	if (o->n >= ROWS_MAX || o->bytes >= ROWS_BYTES)
		return rows_flush(o);
	return 0;
}

static void seg_out_dispose(struct seg_out *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->copies[i]);
	free(o->copies);
	ps_pq_dispose(&o->q);
}

static int new_segment(struct ps_pg *g, int level, int64_t *seg)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, level);
	if (!(r = ps_pg_run(g, "INSERT INTO code_segments (level, postings, min_id, max_id) "
			    "VALUES ($1, 0, 0, 0) RETURNING id", &q, false, "write the code index", &rc)))
		return rc;
	*seg = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

static int seal_segment(struct ps_pg *g, int64_t seg, uint64_t postings, int64_t min_id,
			int64_t max_id, int64_t docs)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, seg);
	/* A segment left with no posting (every id pruned) is not kept. */
	if (!postings)
		return ps_pg_exec(g, "DELETE FROM code_segments WHERE id = $1", &q,
				  "write the code index", NULL);
	ps_pq_int(&q, (int64_t)postings);
	ps_pq_int(&q, min_id);
	ps_pq_int(&q, max_id);
	ps_pq_int(&q, docs);
	return ps_pg_exec(g, "UPDATE code_segments SET postings = $2, min_id = $3, max_id = $4, "
			  "docs = $5 WHERE id = $1", &q, "write the code index", NULL);
}

/* An array literal of ids. */
static char *id_array(const int64_t *ids, size_t n)
{
	struct ps_buf b;

	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "{");
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(&b, "%s%lld", i ? "," : "", (long long)ids[i]);
	ps_buf_puts(&b, "}");
	return ps_buf_take(&b, NULL);
}

/* One input segment of a merge: its rows (one result, in trigram order), one entry at a time. */
struct cursor {
	PGresult *r;
	int64_t seg;
	int at;
	struct ps_tri_zbuf z; /* the current row, decompressed if it is compressed */
	struct ps_tri_row row;
	bool live;
};

static int cursor_next(struct ps_pg *g, struct cursor *c)
{
	(void)g;
	for (;;) {
		if (c->row.p && ps_tri_row_next(&c->row))
			return 0;
		c->live = false;
		if (c->at >= PQntuples(c->r)) {
			c->row.p = NULL;
			return 0;
		}
		if (!ps_tri_row_open(&c->row, (uint32_t)ps_pg_col_binary_int(c->r, c->at, 0),
				     (const unsigned char *)PQgetvalue(c->r, c->at, 1),
				     (size_t)PQgetlength(c->r, c->at, 1), &c->z))
			return ps_error_set(PS_ESTORE, "store_corrupt",
					    "code index segment %lld is damaged", (long long)c->seg);
		c->at++;
		if (ps_tri_row_next(&c->row)) {
			c->live = true;
			return 0;
		}
	}
}

/* The inputs of a merge as ps_tri_merge reads them. */
struct merge_in {
	struct ps_pg *g;
	struct cursor *cur;
};

static struct ps_tri_row *merge_entry(void *ctx, size_t i)
{
	struct merge_in *in = ctx;

	return in->cur[i].live ? &in->cur[i].row : NULL;
}

static int merge_next(void *ctx, size_t i)
{
	struct merge_in *in = ctx;

	return cursor_next(in->g, &in->cur[i]);
}

/*
 * Merges segments segs[0..n) (locked by this transaction, ids lo..hi) into one new segment of
 * `level`, leaving out the ids no code_blobs row has any more (pruned blobs, lost conflicts).
 * Each input is read as one result: a segment of level l is ~8^l flushes, a few MiB on
 * libgit2's scale.
 */
static int merge_segments(struct ps_pg *g, int level, const int64_t *segs, size_t n, int64_t lo,
			  int64_t hi)
{
	struct cursor *cur = ps_calloc(n, sizeof(*cur));
	struct merge_in in = { g, cur };
	struct ps_tri_writer w;
	struct ps_tri_merged m = { 0 };
	struct seg_out out = { .g = g };
	uint64_t *live = NULL;
	struct ps_pq q = { 0 };
	PGresult *r;
	char *arr;
	int rc = 0;

	live = ps_calloc((size_t)(hi - lo) / 64 + 1, sizeof(*live));
	ps_pq_int(&q, lo);
	ps_pq_int(&q, hi);
	if (!(r = ps_pg_run(g, "SELECT id FROM code_blobs WHERE id BETWEEN $1 AND $2", &q, false,
			    "merge the code index", &rc))) {
		free(cur);
		free(live);
		return rc;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t id = ps_pg_col_int(r, i, 0) - lo;
		live[id / 64] |= (uint64_t)1 << (id % 64);
	}
	PQclear(r);
	if (rc == 0)
		rc = new_segment(g, level, &out.seg);
	ps_tri_writer_init(&w, emit_row, &out);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct ps_pq p = { 0 };

		cur[i].seg = segs[i];
		ps_pq_int(&p, segs[i]);
		cur[i].r = ps_pg_run(g, "SELECT first, data FROM code_postings WHERE seg = $1 "
				     "ORDER BY first", &p, true, "merge the code index", &rc);
		if (cur[i].r)
			rc = cursor_next(g, &cur[i]);
	}
	if (rc == 0)
		rc = ps_tri_merge(n, merge_entry, merge_next, &in, live, lo, hi, &w, &m);
	for (size_t i = 0; i < n; i++) {
		PQclear(cur[i].r);
		ps_tri_zbuf_dispose(&cur[i].z);
	}
	free(cur);
	free(live);
	if (rc == 0)
		rc = ps_tri_writer_finish(&w);
	else
		ps_tri_writer_finish(&w);
	if (rc == 0)
		rc = rows_flush(&out);
	seg_out_dispose(&out);
	arr = id_array(segs, n);
	if (rc == 0) {
		struct ps_pq p = { 0 };

		ps_pq_text(&p, arr);
		rc = ps_pg_exec(g, "DELETE FROM code_postings WHERE seg = ANY($1::bigint[])", &p,
				"merge the code index", NULL);
	}
	if (rc == 0) {
		struct ps_pq p = { 0 };

		ps_pq_text(&p, arr);
		rc = ps_pg_exec(g, "DELETE FROM code_segments WHERE id = ANY($1::bigint[])", &p,
				"merge the code index", NULL);
	}
	free(arr);
	if (rc == 0)
		rc = seal_segment(g, out.seg, w.postings, m.min_id, m.max_id, m.docs);
	return rc;
}

/*
 * The segments of `level` (every level when it is negative) nobody else is merging, locked FOR
 * UPDATE SKIP LOCKED, so a concurrent merge (another node's commit) takes none of them and
 * neither waits; segments other transactions have not committed are not seen. *lo, *hi: the
 * range of ids they hold.
 */
static int take_segments(struct ps_pg *g, int level, int64_t **segs, size_t *n, int64_t *lo,
			 int64_t *hi)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, level);
	if (!(r = ps_pg_run(g, "SELECT id, min_id, max_id FROM code_segments "
			    "WHERE $1 < 0 OR level = $1 ORDER BY id FOR UPDATE SKIP LOCKED", &q, false,
			    "read the code index", &rc)))
		return rc;
	*n = (size_t)PQntuples(r);
	*segs = ps_calloc(*n + 1, sizeof(**segs));
	*lo = INT64_MAX;
	*hi = -1;
	for (size_t i = 0; i < *n; i++) {
		int64_t a = ps_pg_col_int(r, (int)i, 1), b = ps_pg_col_int(r, (int)i, 2);

		(*segs)[i] = ps_pg_col_int(r, (int)i, 0);
		*lo = a < *lo ? a : *lo;
		*hi = b > *hi ? b : *hi;
	}
	PQclear(r);
	return 0;
}

/* Merges level `level` if it holds FANIN segments nobody else is merging (take_segments).
 * *merged: whether it merged (then the next level may be full). */
static int merge_level(struct ps_pg *g, int level, bool *merged)
{
	int64_t *segs, lo, hi;
	size_t n;
	int rc;

	*merged = false;
	if ((rc = take_segments(g, level, &segs, &n, &lo, &hi)) < 0)
		return rc;
	if (n >= FANIN) {
		rc = merge_segments(g, level + 1, segs, n, lo, hi);
		*merged = rc == 0;
	}
	free(segs);
	return rc;
}

/*
 * After a prune, as sqlite_code.c's code_compact: when most documents the segments hold have
 * no code_blobs row any more, every segment nobody else is merging is merged into one of the
 * top level, which leaves them out.
 */
int ps_pg_code_compact(struct ps_pg *g)
{
	PGresult *r;
	int64_t docs, alive, top, lo, hi, *segs;
	size_t n;
	int rc = 0;

	if (!(r = ps_pg_run(g, "SELECT coalesce(sum(coalesce(docs, max_id - min_id + 1)), 0), "
			    "coalesce(max(level), 0), (SELECT count(*) FROM code_blobs "
			    "WHERE is_binary = 0) FROM code_segments", NULL, false,
			    "read the code index", &rc)))
		return rc;
	docs = ps_pg_col_int(r, 0, 0);
	top = ps_pg_col_int(r, 0, 1);
	alive = ps_pg_col_int(r, 0, 2);
	PQclear(r);
	if (docs == 0 || (docs - alive) * 2 <= docs)
		return 0;
	if ((rc = take_segments(g, -1, &segs, &n, &lo, &hi)) < 0)
		return rc;
	if (n && hi >= lo)
		rc = merge_segments(g, (int)top, segs, n, lo, hi);
	free(segs);
	return rc;
}

/* Writes the accumulator as a new segment of level 0, then merges full levels. */
static int write_segment(struct ps_pg *g, struct ps_tri_acc *acc)
{
	struct ps_tri_writer w;
	struct seg_out out = { .g = g };
	uint32_t min_id = acc->n ? acc->id[0] : 0;
	bool merged = true;
	int rc;

	if ((rc = new_segment(g, 0, &out.seg)) < 0)
		return rc;
	ps_tri_writer_init(&w, emit_row, &out);
	rc = ps_tri_acc_write(acc, &w);
	if (rc == 0)
		rc = ps_tri_writer_finish(&w);
	else
		ps_tri_writer_finish(&w);
	if (rc == 0)
		rc = rows_flush(&out);
	seg_out_dispose(&out);
	if (rc == 0)
		rc = seal_segment(g, out.seg, w.postings, min_id, acc->max_id, (int64_t)acc->docs);
	for (int l = 0; rc == 0 && merged; l++)
		rc = merge_level(g, l, &merged);
	return rc;
}

int ps_pg_code_flush(struct ps_store *s)
{
	struct ps_pg_code *c = PSPG(s)->code;
	int rc = 0;

	if (!c)
		return 0;
	if (c->acc.n)
		rc = write_segment(PSPG(s), &c->acc);
	ps_tri_acc_clear(&c->acc);
	return rc;
}

void ps_pg_code_discard(struct ps_store *s)
{
	if (PSPG(s)->code)
		ps_tri_acc_clear(&PSPG(s)->code->acc);
}

void ps_pg_code_free(struct ps_store *s)
{
	struct ps_pg_code *c = PSPG(s)->code;

	if (!c)
		return;
	ps_tri_doc_dispose(&c->doc);
	ps_tri_acc_dispose(&c->acc);
	free(c);
	PSPG(s)->code = NULL;
}

/* An array literal of SHAs (hex, so safe unquoted; anything else becomes "", which decodes to
 * no bytes, never a blob id). */
static char *sha_array(const char *const *shas, size_t n)
{
	struct ps_buf arr;

	ps_buf_init(&arr, SIZE_MAX);
	ps_buf_puts(&arr, "{");
	for (size_t i = 0; i < n; i++) {
		bool hex = strlen(shas[i]) == PS_SHA_HEX - 1;
		for (const char *c = shas[i]; *c; c++)
			hex = hex && ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
		ps_buf_printf(&arr, "%s%s", i ? "," : "", hex ? shas[i] : "\"\"");
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
		/* The ids decoded once into an array: an index scan of code_blobs' key. */
		r = ps_pg_run(PSPG(s),
			      "SELECT ps_hex(sha) FROM code_blobs "
			      "WHERE sha = ANY(ARRAY(SELECT ps_unhex(h) FROM unnest($1::text[]) h))",
			      &q, false, "look up the code index", &rc);
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

/*
 * A condition that is false when code_unindexed, kept by triggers (migration 0022), says that
 * every stored blob is in the index; only 0 is trusted (an empty table is not). The planner
 * evaluates it once, before the scan it guards (a one-time filter), so a search skips looking
 * for the blobs the index lacks in the same round trip.
 */
#define SOME_UNINDEXED "(SELECT sum(n) FROM code_unindexed) IS DISTINCT FROM 0 "

int ps_pg_code_unindexed(struct ps_store *s, int64_t project_id, struct ps_strv *out)
{
	static const char sql[] =
		"SELECT DISTINCT ps_hex(fv.sha) COLLATE \"C\" AS sha FROM " DIR_FILES " "
		"WHERE " SOME_UNINDEXED "AND d.project_id = $1 AND (fv.mode & 61440) = 32768 "
		"AND NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = fv.sha) "
		"AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha) ORDER BY 1";
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

/* ---- queries ---- */

/* Appends the trigrams the query needs to the array literal b. */
static void query_trigrams(const struct ps_code_query *q, struct ps_buf *b, size_t *n)
{
	if (q->op == PS_CODE_LITERAL) {
		for (size_t k = 0, take = ps_tri_picks(q->literal); k < take; k++) {
			int32_t code = ps_tri_pick(q->literal, k, take);

			if (code >= 0)
				ps_buf_printf(b, "%s%d", (*n)++ ? "," : "", (int)code);
		}
		return;
	}
	for (size_t i = 0; i < q->nkids; i++)
		query_trigrams(q->kids[i], b, n);
}

/* A query's evaluation: the rows read (segment, trigram asked, row's first trigram, data). */
struct eval {
	PGresult *r;
	size_t words;
	int64_t nbits;
	struct ps_tri_zbuf z; /* the rows read, decompressed */
};

/* ORs into `bits` the ids of the documents holding trigram `code`, from every segment (a
 * ps_tri_lookup_fn of ps_tri_eval). */
static int trigram_bits(void *ctx, uint32_t code, uint64_t *bits)
{
	struct eval *e = ctx;

	for (int i = 0; i < PQntuples(e->r); i++) {
		if ((uint32_t)ps_pg_col_binary_int(e->r, i, 1) != code)
			continue;
		uint32_t first = (uint32_t)ps_pg_col_binary_int(e->r, i, 2);

		if (!ps_tri_row_bits(first, PQgetvalue(e->r, i, 3), (size_t)PQgetlength(e->r, i, 3),
				     code, bits, e->nbits, &e->z))
			return ps_error_set(PS_ESTORE, "store_corrupt",
					    "code index segment %lld is damaged",
					    (long long)ps_pg_col_binary_int(e->r, i, 0));
	}
	return 0;
}

/*
 * The code_blobs ids whose document may satisfy `q`, as an array literal. One statement reads,
 * for every segment and every trigram the query needs, the row that may hold it (the one with
 * the largest first trigram <= it), so the whole index is read from one snapshot.
 */
static int query_hits(struct ps_pg *g, const struct ps_code_query *q, char **out)
{
	static const char sql[] =
		"SELECT s.id, t.code, p.first, p.data, s.max_id FROM code_segments s "
		"CROSS JOIN unnest($1::int[]) AS t(code) "
		"CROSS JOIN LATERAL (SELECT first, data FROM code_postings c WHERE c.seg = s.id "
		"AND c.first <= t.code ORDER BY c.first DESC LIMIT 1) p";
	struct ps_buf b;
	struct eval e = { 0 };
	struct ps_pq p = { 0 };
	uint64_t *bits;
	size_t n = 0;
	char *arr;
	int rc = 0;

	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "{");
	query_trigrams(q, &b, &n);
	ps_buf_puts(&b, "}");
	arr = ps_buf_take(&b, NULL);
	ps_pq_text(&p, arr);
	e.r = ps_pg_run(g, sql, &p, true, "find code search candidates", &rc);
	free(arr);
	if (!e.r)
		return rc;
	for (int i = 0; i < PQntuples(e.r); i++) {
		int64_t max = ps_pg_col_binary_int(e.r, i, 4);

		if (max + 1 > e.nbits)
			e.nbits = max + 1;
	}
	e.words = (size_t)(e.nbits + 63) / 64;
	e.nbits = (int64_t)e.words * 64;
	rc = ps_tri_eval(q, e.words, trigram_bits, &e, &bits);
	PQclear(e.r);
	ps_tri_zbuf_dispose(&e.z);
	if (rc < 0)
		return rc;
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "{");
	n = 0;
	for (size_t w = 0; w < e.words; w++) {
		uint64_t x = bits[w];

		while (x) {
			int bit = __builtin_ctzll(x);

			ps_buf_printf(&b, n++ ? ",%lld" : "%lld", (long long)(w * 64 + (size_t)bit));
			x &= x - 1;
		}
	}
	ps_buf_puts(&b, "}");
	free(bits);
	*out = ps_buf_take(&b, NULL);
	return 0;
}

/* Appends the rows of a candidates query to v (*n of *cap). */
static void add_rows(const PGresult *r, struct ps_code_candidate **v, size_t *n, size_t *cap)
{
	size_t rows = (size_t)PQntuples(r);

	if (*n + rows + 1 > *cap) {
		*cap = (*n + rows + 1) * 2;
		*v = ps_realloc(*v, *cap * sizeof(**v));
	}
	for (size_t i = 0; i < rows; i++) {
		struct ps_code_candidate *c = &(*v)[(*n)++];

		memset(c, 0, sizeof(*c));
		c->file.path = ps_pg_col_bytea(r, (int)i, 0);
		c->file.mode = (uint32_t)ps_pg_col_int(r, (int)i, 1);
		snprintf(c->file.sha, sizeof(c->file.sha), "%s", PQgetvalue(r, (int)i, 2));
		c->file.size = PQgetisnull(r, (int)i, 3) ? -1 : ps_pg_col_int(r, (int)i, 3);
		c->state = strcmp(PQgetvalue(r, (int)i, 4), "t") != 0 ? PS_CODE_UNINDEXED
			   : ps_pg_col_int(r, (int)i, 5)               ? PS_CODE_BINARY
									: PS_CODE_TEXT;
	}
}

/*
 * The candidates query: with `hits` (an array literal of code_blobs ids) the files whose blob
 * is one of them or unindexed; otherwise the snapshot's stored regular files, of the
 * directories `dir_ids` (an array literal) when not NULL. Sorted by full path.
 */
static PGresult *run_query(struct ps_store *s, int64_t project_id, int64_t snap, const char *hits,
			   const char *dir_ids, const char *prefix, const char *from_path,
			   size_t limit, int *rc)
{
	/* The blobs that satisfy the query are found once, by the index, over the whole store (a
	 * blob is indexed once whatever project holds it), with the stored blobs the index lacks
	 * (normally none, and then not looked for: SOME_UNINDEXED), and only their file versions
	 * are read (file_versions_sha), not every file of the snapshot (sqlite_code.c explains
	 * the cost). The two parts are disjoint: no row repeats. */
	static const char head[] =
		"WITH hit AS MATERIALIZED (SELECT m.sha FROM code_blobs m WHERE m.id = ANY($3::bigint[]) "
		"UNION ALL SELECT b.sha FROM blobs b WHERE " SOME_UNINDEXED
		"AND NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)) ";
	static const char cols[] =
		"SELECT " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size, cb.sha IS NOT NULL, "
		"cb.is_binary ";
	/* The full path (migration 0026): the directory joined in; the listing sorted by it. */
	static const char body[] = "FROM " DIR_FILES " LEFT JOIN code_blobs cb ON cb.sha = fv.sha ";
	static const char hit_body[] = "FROM hit h JOIN file_versions fv ON fv.sha = h.sha "
				       "JOIN dirs d ON d.id = fv.dir_id "
				       "LEFT JOIN code_blobs cb ON cb.sha = fv.sha ";
	static const char where[] =
		"WHERE fv.project_id = $1 AND d.project_id = $1 AND " VISIBLE_AT("$2") " "
		"AND (fv.mode & 61440) = 32768 ";
	static const char stored[] =
		"AND (cb.sha IS NOT NULL OR EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha)) ";
	struct ps_pq p = { 0 };
	struct ps_buf sql;
	PGresult *r;
	char *text;

	ps_pq_int(&p, project_id);
	ps_pq_int(&p, snap);
	ps_buf_init(&sql, SIZE_MAX);
	if (hits) {
		ps_pq_text(&p, hits);
		ps_buf_puts(&sql, head);
		ps_buf_puts(&sql, cols);
		ps_buf_puts(&sql, hit_body);
		ps_buf_puts(&sql, where);
	} else {
		ps_buf_puts(&sql, cols);
		ps_buf_puts(&sql, body);
		ps_buf_puts(&sql, where);
		ps_buf_puts(&sql, stored);
		if (dir_ids) {
			ps_pq_text(&p, dir_ids);
			ps_buf_puts(&sql, "AND d.id = ANY($3::bigint[]) ");
		}
	}
	ps_pg_prefix_cond(&sql, &p, prefix);
	if (from_path) {
		ps_pq_path(&p, from_path);
		ps_buf_printf(&sql, "AND " FV_PATH " >= $%d ", p.n);
	}
	ps_buf_puts(&sql, "ORDER BY 1");
	if (limit > 0)
		ps_buf_printf(&sql, " LIMIT %zu", limit);
	text = ps_buf_take(&sql, NULL);
	r = ps_pg_run(PSPG(s), text, &p, false, "find code search candidates", rc);
	free(text);
	return r;
}

static int cmp_candidate(const void *a, const void *b)
{
	return strcmp(((const struct ps_code_candidate *)a)->file.path,
		      ((const struct ps_code_candidate *)b)->file.path);
}

/* Whether directory `path` may hold a file of the walk's scope: under `prefix` (a path with
 * it, or the prefix's own directory, `pdir` bytes of it) and, with `from_path`, at or after
 * it. */
static bool walk_keeps(const char *path, const char *prefix, size_t plen, size_t pdir,
		       const char *from_path)
{
	size_t len = strlen(path);

	if (plen && strncmp(path, prefix, plen) != 0 &&
	    !(len == pdir && strncmp(path, prefix, pdir) == 0))
		return false;
	/* A file of `path` is `path/NAME` (NAME alone in the root): it can sort at or after
	 * from_path unless path/ sorts before it without being its start. */
	if (!from_path || !len)
		return true;
	return strncmp(path, from_path, len) != 0 ? strcmp(path, from_path) > 0
	       : !from_path[len] || (unsigned char)from_path[len] <= '/';
}

/* Appends the directories of r (id, path) that walk_keeps, their ids to `ids` (an array
 * literal being built), counting them in *n. Returns the path of r's last row (NULL without
 * rows), which the caller frees. */
static char *walk_take(const PGresult *r, struct ps_buf *ids, size_t *n, const char *prefix,
		       size_t plen, size_t pdir, const char *from_path)
{
	char *last = NULL;

	for (int i = 0; i < PQntuples(r); i++) {
		free(last);
		last = ps_pg_col_bytea(r, i, 1);
		if (walk_keeps(last, prefix, plen, pdir, from_path))
			ps_buf_printf(ids, "%s%lld", (*n)++ ? "," : "",
				      (long long)ps_pg_col_int(r, i, 0));
	}
	return last;
}

/*
 * The first `limit` candidates in path order without a query, with an early stop: sorting the
 * whole snapshot for a batch of 256 cost as much as listing it, and so did reading every
 * directory of the project for each batch (bounded by the project, not by the batch). A
 * file's full path is its directory's path, '/' and its name, so every file of directory D
 * sorts after D: reading the directories in path order (the `dirs_path` index), a chunk at a
 * time, every file read whose full path is at most the last directory read is final (a
 * directory still unread sorts after that one, and so do its files).
 *
 * Only the directories of the scope are read. With `from_path` (the batch resumes after the
 * previous one's last path), the range starts there (keyset), plus the directories before it
 * whose files can still follow it: each is a start of from_path followed there by a byte <=
 * '/' (`src` for `src/x.c`, and `a` for `a-b/x`, since `a/...` sorts after `a-b/...`) or the
 * root, found in one lookup of those few paths. With `prefix`, the range is the paths with
 * it, plus the prefix's own directory.
 */
static int walk(struct ps_store *s, int64_t project_id, int64_t snap, const char *prefix,
		const char *from_path, size_t limit, struct ps_code_candidate **out, size_t *n)
{
	/* The directories before the range that may hold files of it ($2: from_path, $3: the
	 * prefix's directory): the root, the starts of from_path before a byte <= '/'. */
	static const char before_sql[] =
		"SELECT id, path FROM dirs WHERE project_id = $1 AND path = ANY(ARRAY("
		"SELECT substring($2::bytea FROM 1 FOR i) FROM generate_series(0, length($2::bytea) - 1) i "
		"WHERE i = 0 OR get_byte($2::bytea, i) <= 47) || $3::bytea)";
	struct ps_code_candidate *v = NULL, *pending = NULL;
	size_t nv = 0, capv = 0, np = 0, capp = 0, chunk = 8;
	size_t plen = prefix ? strlen(prefix) : 0, pdir = prefix ? ps_pg_dir_len(prefix) : 0;
	char *upper = NULL, *last = NULL;
	const char *lo = "";
	size_t ulen = 0;
	bool scanned = false;
	struct ps_buf ids;
	size_t nids = 0;
	PGresult *r;
	int rc = 0;

	/* The range: [max(prefix, from_path), the prefix's successor). */
	if (plen) {
		lo = prefix;
		upper = ps_prefix_end(prefix, plen);
		ulen = upper ? strlen(upper) : 0;
	}
	if (from_path && strcmp(from_path, lo) > 0)
		lo = from_path;
	ps_buf_init(&ids, SIZE_MAX);
	ps_buf_puts(&ids, "{");
	if (from_path || plen) {
		struct ps_pq q = { 0 };

		ps_pq_int(&q, project_id);
		ps_pq_path(&q, from_path);
		if (plen)
			ps_pq_bytes(&q, prefix, pdir);
		else
			ps_pq_path(&q, NULL);
		if (!(r = ps_pg_run(PSPG(s), before_sql, &q, false, "find code search candidates",
				    &rc)))
			goto out;
		free(walk_take(r, &ids, &nids, prefix, plen, pdir, from_path));
		PQclear(r);
	}
	while (nv < limit) {
		size_t take = 0;
		char *text;

		if (!scanned) {
			struct ps_pq q = { 0 };
			char sql[256];
			char *got;

			ps_pq_int(&q, project_id);
			if (last)
				ps_pq_path(&q, last);
			else
				ps_pq_path(&q, lo);
			snprintf(sql, sizeof(sql),
				 "SELECT id, path FROM dirs WHERE project_id = $1 AND path %s $2%s "
				 "ORDER BY path LIMIT %zu", last ? ">" : ">=",
				 ulen ? " AND path < $3" : "", chunk);
			if (ulen)
				ps_pq_bytes(&q, upper, ulen);
			if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "find code search candidates",
					    &rc)))
				break;
			scanned = (size_t)PQntuples(r) < chunk;
			got = walk_take(r, &ids, &nids, prefix, plen, pdir, from_path);
			PQclear(r);
			if (got) {
				free(last);
				last = got;
			}
			chunk *= 2;
		}
		ps_buf_puts(&ids, "}");
		text = ps_buf_take(&ids, NULL);
		r = nids ? run_query(s, project_id, snap, NULL, text, prefix, from_path, 0, &rc)
			 : NULL;
		free(text);
		ps_buf_init(&ids, SIZE_MAX);
		ps_buf_puts(&ids, "{");
		nids = 0;
		if (rc < 0)
			break;
		if (r) {
			add_rows(r, &pending, &np, &capp);
			PQclear(r);
			qsort(pending, np, sizeof(*pending), cmp_candidate);
		}
		while (take < np && nv + take < limit &&
		       (scanned || strcmp(pending[take].file.path, last) <= 0))
			take++;
		if (nv + take + 1 > capv) {
			capv = (nv + take + 1) * 2;
			v = ps_realloc(v, capv * sizeof(*v));
		}
		/* Nothing read yet leaves pending NULL, which memcpy must not get even for 0. */
		if (take > 0) {
			memcpy(v + nv, pending, take * sizeof(*v));
			nv += take;
			memmove(pending, pending + take, (np - take) * sizeof(*pending));
			np -= take;
		}
		if (scanned)
			break; /* every directory read, and what they hold taken up to the limit */
	}
out:
	ps_buf_dispose(&ids);
	ps_code_candidates_free(pending, np);
	free(upper);
	free(last);
	if (rc < 0) {
		ps_code_candidates_free(v, nv);
		return rc;
	}
	*out = v ? v : ps_calloc(1, sizeof(*v));
	*n = nv;
	return 0;
}

static int candidates(struct ps_store *s, int64_t project_id, int64_t at,
		      const struct ps_code_query *q, const char *prefix, const char *from_path,
		      size_t limit, int64_t *snap, struct ps_code_candidate **out, size_t *n)
{
	struct ps_code_candidate *v = NULL;
	size_t nv = 0, cap = 0;
	char *hits = NULL;
	int64_t id;
	PGresult *r;
	int rc = 0;

	if ((rc = ps_pg_resolve_snapshot(s, project_id, at, &id)) < 0)
		return rc;
	if (!q && limit > 0) {
		if ((rc = walk(s, project_id, id, prefix, from_path, limit, out, n)) < 0)
			return rc;
		*snap = id;
		return 0;
	}
	if (q && (rc = query_hits(PSPG(s), q, &hits)) < 0)
		return rc;
	r = run_query(s, project_id, id, q ? hits : NULL, NULL, prefix, from_path, limit, &rc);
	free(hits);
	if (!r)
		return rc;
	add_rows(r, &v, &nv, &cap);
	PQclear(r);
	if (!v)
		v = ps_calloc(1, sizeof(*v));
	*snap = id;
	*out = v;
	*n = nv;
	return 0;
}

int ps_pg_code_candidates(struct ps_store *s, int64_t project_id, int64_t at,
			  const struct ps_code_query *q, const char *prefix,
			  const char *from_path, size_t limit, int64_t *snap,
			  struct ps_code_candidate **out, size_t *n)
{
	/*
	 * One snapshot for the whole answer: the index's rows and the code_blobs rows and file
	 * versions they lead to, so a sync (or a merge) that commits in between cannot make a
	 * blob look indexed but not matching.
	 */
	struct ps_pg *g = PSPG(s);
	bool own = g->tx_depth == 0;
	int rc;

	if (own) {
		if ((rc = ps_pg_exec(g, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL,
				     "find code search candidates", NULL)) < 0)
			return rc;
		g->tx_depth = 1;
		g->tx_aborted = false;
	}
	rc = candidates(s, project_id, at, q, prefix, from_path, limit, snap, out, n);
	if (own) {
		/* It only read: COMMIT or ROLLBACK alike. */
		PQclear(PQexec(g->conn, rc < 0 ? "ROLLBACK" : "COMMIT"));
		g->tx_depth = 0;
	}
	return rc;
}

/* ---- schema 25: rows written before compressed (migrations/0025_code_rows_zstd.sql) ---- */

/* Rows per batch: ~8 KiB each, so a batch holds ~2 MiB in memory and a kill loses that much. */
#define ZSTD_BATCH_ROWS 256

/* One batch in its own transaction; *more = false once the last row was looked at and
 * code_rows_raw dropped. */
static int code_convert_batch(struct ps_store *s, size_t batch_rows, struct ps_tri_zbuf *z,
			      void (*after_row)(void *ud, size_t row), void *ud, size_t *row_no,
			      bool *more)
{
	static const char rows_sql[] =
		"SELECT c.seg, c.first, c.data FROM code_postings c, code_rows_raw m "
		"WHERE (c.seg, c.first) > (m.seg, m.first) ORDER BY c.seg, c.first LIMIT $1";
	static const char put[] = "UPDATE code_postings SET data = $3 WHERE seg = $1 AND first = $2";
	static const char mark[] = "UPDATE code_rows_raw SET seg = $1, first = $2";
	struct ps_pg *g = PSPG(s);
	struct ps_pq q = { 0 };
	PGresult *r;
	int n = 0, rc;

	*more = false;
	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	ps_pq_int(&q, (int64_t)batch_rows);
	if (!(r = ps_pg_run(g, rows_sql, &q, true, "convert the code index", &rc)))
		goto out;
	n = PQntuples(r);
	for (int i = 0; i < n && rc == 0; i++) {
		const unsigned char *data = (const unsigned char *)PQgetvalue(r, i, 2), *out;
		size_t len = (size_t)PQgetlength(r, i, 2), out_len;

		if (ps_tri_row_compressed(data, len))
			continue;
		if ((rc = ps_tri_row_pack(z, data, len, &out, &out_len)) < 0)
			break;
		if (out != data) {
			struct ps_pq p = { 0 };

			ps_pq_int(&p, ps_pg_col_binary_int(r, i, 0));
			ps_pq_int(&p, ps_pg_col_binary_int(r, i, 1));
			ps_pq_bytes(&p, out, out_len);
			rc = ps_pg_exec(g, put, &p, "convert the code index", NULL);
		}
		if (rc == 0 && after_row)
			after_row(ud, (*row_no)++);
	}
	if (rc < 0)
		goto out;
	if ((size_t)n < batch_rows) {
		/* The last row was looked at: the next open finds nothing to do. */
		rc = ps_pg_exec(g, "DROP TABLE code_rows_raw", NULL,
				"finish the code index conversion", NULL);
	} else {
		struct ps_pq p = { 0 };

		ps_pq_int(&p, ps_pg_col_binary_int(r, n - 1, 0));
		ps_pq_int(&p, ps_pg_col_binary_int(r, n - 1, 1));
		rc = ps_pg_exec(g, mark, &p, "convert the code index", NULL);
		*more = rc == 0;
	}
out:
	PQclear(r);
	if (rc < 0) {
		*more = false;
		ps_store_rollback(s);
		return rc;
	}
	return ps_store_commit(s);
}

int ps_pg_code_convert(struct ps_store *s, size_t batch_rows,
		       void (*after_row)(void *ud, size_t row), void *ud)
{
	struct ps_tri_zbuf z = { 0 };
	size_t row_no = 0;
	bool more = true;
	PGresult *r;
	int rc = 0;

	if (batch_rows == 0)
		batch_rows = ZSTD_BATCH_ROWS;
	if (!(r = ps_pg_run(PSPG(s), "SELECT to_regclass('code_rows_raw') IS NOT NULL", NULL, false,
			    "look for code index rows to convert", &rc)))
		return rc;
	more = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	while (more && rc == 0)
		rc = code_convert_batch(s, batch_rows, &z, after_row, ud, &row_no, &more);
	ps_tri_zbuf_dispose(&z);
	return rc;
}
