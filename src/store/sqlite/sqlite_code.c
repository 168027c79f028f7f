/*
 * The code index of the SQLite backend (store.h, "code index"): projsync's own trigram index
 * (store/codeindex.h; migration 0017), one document per blob, whatever project brought it.
 *
 * ps_sqlite_code_index_put records a blob in code_blobs (its id is its document id) and adds
 * its distinct trigrams to an accumulator of the store handle; the outermost commit writes the
 * accumulator as one new segment (rows of ~8 KiB in code_postings) in the same transaction as
 * the code_blobs rows, so a crash leaves both or neither, and merges segments level by level
 * (FANIN of a level become one of the next). A query reads, per trigram it needs, one row per
 * segment, and evaluates the tree's AND / OR on id bitmaps in memory: nothing the user typed
 * reaches SQL but as ids. The answer is "holds all these trigrams", a superset the matcher in
 * core/grep.c narrows to the truth.
 *
 * Before schema 17 this was an FTS5 table fed by the tokenizer below, which costs ~0.3 us per
 * (blob, trigram) inside FTS5: a first sync with the index took 2-2.3x the CPU of one without
 * (docs/performance.md, "Code search"). The tokenizer stays registered because migrations
 * 0014-0016 create and 0017 drops that table, which FTS5 cannot open without it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/codeindex.h"
#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"

/*
 * The tokenizer of code_fts in schemas 14-16, "projsync_trigram": each DISTINCT trigram of a
 * document once, by the same rule as store/codeindex.h, followed by two bytes of a hash (FTS5's
 * pending-terms hash gave 3-byte keys of printable ASCII only a few thousand values).
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

/* ---- the index (migration 0017, store/codeindex.h) ---- */

/*
 * code_segments lists the segments; code_postings holds their rows, keyed by
 * (segment << KEY_SHIFT) | first trigram, so the row that may hold trigram t of segment g is
 * the one with the largest key <= (g << KEY_SHIFT) | t: one rowid range read, no other index.
 */
#define KEY_SHIFT 24 /* PS_TRI_CODES = 2^21 */
#define KEY(seg, code) (((sqlite3_int64)(seg) << KEY_SHIFT) | (sqlite3_int64)(code))
/* Segments of a level merged into one of the next level once there are this many: a store
 * holds at most FANIN - 1 per level, i.e. O(log n) segments for n flushes, and each posting
 * is rewritten about once per level (amortised O(log n) per posting, never the whole index
 * per sync). */
#define FANIN 8
/* Postings kept in memory before a transaction writes them as a segment anyway (8 bytes each). */
#define ACC_MAX ((size_t)4 << 20)

struct ps_sqlite_code {
	struct ps_tri_doc doc;
	struct ps_tri_acc acc;
	int64_t next_id; /* the id of the next code_blobs row; 0: not read in this transaction */
};

static struct ps_sqlite_code *code_state(struct ps_store *s)
{
	if (!s->code)
		s->code = ps_calloc(1, sizeof(*s->code));
	return s->code;
}

/*
 * Ids are never reused: a pruned blob's postings stay in its segments until a merge drops
 * them, and a new blob given its id would inherit them. So the next id is above both the
 * rows and every id a segment holds.
 */
static int next_id(struct ps_store *s, int64_t *out)
{
	static const char sql[] =
		"SELECT max(coalesce((SELECT max(id) FROM code_blobs), 0), "
		"coalesce((SELECT max(max_id) FROM code_segments), 0)) + 1";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : ps_sqlite_error(s, "read the code index");
}

static int write_segment(struct ps_store *s, struct ps_tri_acc *acc);

static int index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
		     bool binary)
{
	static const char ins_blob[] =
		"INSERT OR IGNORE INTO code_blobs (id, sha, binary) VALUES (?, ps_unhex(?), ?)";
	struct ps_sqlite_code *c = code_state(s);
	sqlite3_stmt *st;
	int rc;

	if (!c->next_id && (rc = next_id(s, &c->next_id)) < 0)
		return rc;
	if (c->next_id > UINT32_MAX)
		return ps_error_set(PS_ESTORE, NULL, "the code index is full (2^32 blobs)");
	if (!(st = ps_sqlite_stmt(s, ins_blob)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, c->next_id);
	ps_sqlite_bind_text(st, 2, sha);
	sqlite3_bind_int(st, 3, binary);
	if ((rc = ps_sqlite_step_done(s, st, "index blob")) < 0)
		return rc;
	if (sqlite3_changes(s->db) == 0)
		return 0; /* indexed before */
	/* Text and binary blobs alike: only printable runs make trigrams (codeindex.h). */
	ps_tri_doc_extract(&c->doc, data, len);
	ps_tri_acc_add(&c->acc, (uint32_t)c->next_id, c->doc.codes, c->doc.n);
	c->next_id++;
	if (c->acc.n >= ACC_MAX) {
		rc = write_segment(s, &c->acc);
		ps_tri_acc_clear(&c->acc);
	}
	return rc;
}

int ps_sqlite_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
			     bool binary)
{
	int rc;

	if (s->tx_depth > 0)
		return index_put(s, sha, data, len, binary);
	/* The postings are written at the outermost commit: give a lone call one. */
	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = index_put(s, sha, data, len, binary)) < 0) {
		ps_store_rollback(s);
		return rc;
	}
	return ps_store_commit(s);
}

/* Writes one row of a segment being written. */
struct seg_out {
	struct ps_store *s;
	int64_t seg;
};

static int emit_row(void *ctx, uint32_t first, const unsigned char *data, size_t len)
{
	static const char sql[] = "INSERT INTO code_postings (key, data) VALUES (?, ?)";
	struct seg_out *o = ctx;
	sqlite3_stmt *st = ps_sqlite_stmt(o->s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, KEY(o->seg, first));
	sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC);
	return ps_sqlite_step_done(o->s, st, "write the code index");
}

static int new_segment(struct ps_store *s, int level, int64_t *seg)
{
	static const char sql[] =
		"INSERT INTO code_segments (level, postings, min_id, max_id) VALUES (?, 0, 0, 0)";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int(st, 1, level);
	if ((rc = ps_sqlite_step_done(s, st, "write the code index")) < 0)
		return rc;
	*seg = sqlite3_last_insert_rowid(s->db);
	return 0;
}

static int seal_segment(struct ps_store *s, int64_t seg, uint64_t postings, int64_t min_id,
			int64_t max_id, int64_t docs)
{
	static const char upd[] =
		"UPDATE code_segments SET postings = ?2, min_id = ?3, max_id = ?4, docs = ?5 "
		"WHERE id = ?1";
	static const char del[] = "DELETE FROM code_segments WHERE id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, postings ? upd : del);

	if (!st)
		return PS_ESTORE;
	/* A segment left with no posting (every id pruned) is not kept. */
	sqlite3_bind_int64(st, 1, seg);
	if (postings) {
		sqlite3_bind_int64(st, 2, (sqlite3_int64)postings);
		sqlite3_bind_int64(st, 3, min_id);
		sqlite3_bind_int64(st, 4, max_id);
		sqlite3_bind_int64(st, 5, docs);
	}
	return ps_sqlite_step_done(s, st, "write the code index");
}

static int drop_segment(struct ps_store *s, int64_t seg)
{
	static const char rows[] = "DELETE FROM code_postings WHERE key BETWEEN ? AND ?";
	static const char del[] = "DELETE FROM code_segments WHERE id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, rows);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, KEY(seg, 0));
	sqlite3_bind_int64(st, 2, KEY(seg + 1, 0) - 1);
	if ((rc = ps_sqlite_step_done(s, st, "merge the code index")) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, del)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, seg);
	return ps_sqlite_step_done(s, st, "merge the code index");
}

/* One input segment of a merge: its rows in key order, one entry at a time. */
struct cursor {
	sqlite3_stmt *st;
	int64_t seg;
	unsigned char *data; /* the current raw row, copied: the merge writes the table meanwhile */
	size_t cap;
	struct ps_tri_zbuf z; /* the current compressed row, decompressed */
	struct ps_tri_row row;
	bool live; /* row's current entry is valid */
};

static int cursor_next(struct ps_store *s, struct cursor *c)
{
	for (;;) {
		int rc;

		if (c->row.p && ps_tri_row_next(&c->row))
			return 0;
		c->live = false;
		rc = sqlite3_step(c->st);
		if (rc == SQLITE_DONE) {
			c->row.p = NULL;
			return 0;
		}
		if (rc != SQLITE_ROW)
			return ps_sqlite_error(s, "read the code index");
		size_t len = (size_t)sqlite3_column_bytes(c->st, 1);
		const unsigned char *data = sqlite3_column_blob(c->st, 1);
		/* A compressed row is decompressed into c->z, which is a copy already. */
		if (!ps_tri_row_compressed(data, len)) {
			if (len > c->cap) {
				c->cap = len;
				c->data = ps_realloc(c->data, len);
			}
			if (len)
				memcpy(c->data, data, len);
			data = c->data;
		}
		if (!ps_tri_row_open(&c->row, (uint32_t)(sqlite3_column_int64(c->st, 0) &
							 ((1 << KEY_SHIFT) - 1)),
				     data, len, &c->z))
			return ps_error_set(PS_ESTORE, "store_corrupt",
					    "code index segment %lld is damaged", (long long)c->seg);
		if (ps_tri_row_next(&c->row)) {
			c->live = true;
			return 0;
		}
	}
}

/* The inputs of a merge as ps_tri_merge reads them. */
struct merge_in {
	struct ps_store *s;
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

	return cursor_next(in->s, &in->cur[i]);
}

/*
 * Merges segments segs[0..n), every segment of level `level` - 1 (oldest first), into one new
 * segment of `level`, leaving out the ids no code_blobs row has any more (pruned blobs):
 * streamed, a row of each input at a time.
 */
static int merge_segments(struct ps_store *s, int level, const int64_t *segs, size_t n)
{
	static const char range[] = "SELECT min_id, max_id FROM code_segments WHERE id = ?";
	static const char live_sql[] = "SELECT id FROM code_blobs WHERE id BETWEEN ? AND ?";
	struct cursor *cur = ps_calloc(n, sizeof(*cur));
	struct merge_in in = { s, cur };
	struct ps_tri_writer w;
	struct ps_tri_merged m = { 0 };
	struct seg_out out = { s, 0 };
	uint64_t *live = NULL;
	int64_t lo = INT64_MAX, hi = -1;
	sqlite3_stmt *st;
	int rc = 0;

	/* Which ids of the inputs' range are still indexed blobs: a range of code_blobs rowids,
	 * as many rows as the inputs hold documents. */
	if (!(st = ps_sqlite_stmt(s, range)))
		return free(cur), PS_ESTORE;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, segs[i]);
		if (sqlite3_step(st) == SQLITE_ROW) {
			int64_t a = sqlite3_column_int64(st, 0), b = sqlite3_column_int64(st, 1);
			lo = a < lo ? a : lo;
			hi = b > hi ? b : hi;
		}
		sqlite3_reset(st);
	}
	if (hi >= lo) {
		live = ps_calloc((size_t)(hi - lo) / 64 + 1, sizeof(*live));
		if (!(st = ps_sqlite_stmt(s, live_sql)))
			return free(cur), free(live), PS_ESTORE;
		sqlite3_bind_int64(st, 1, lo);
		sqlite3_bind_int64(st, 2, hi);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0) - lo;
			live[id / 64] |= (uint64_t)1 << (id % 64);
		}
		sqlite3_reset(st);
		rc = rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "merge the code index");
	}
	if (rc == 0)
		rc = new_segment(s, level, &out.seg);
	ps_tri_writer_init(&w, emit_row, &out);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		cur[i].seg = segs[i];
		if (sqlite3_prepare_v2(s->db,
				       "SELECT key, data FROM code_postings WHERE key BETWEEN ? AND ? "
				       "ORDER BY key", -1, &cur[i].st, NULL) != SQLITE_OK) {
			rc = ps_sqlite_error(s, "merge the code index");
			break;
		}
		sqlite3_bind_int64(cur[i].st, 1, KEY(segs[i], 0));
		sqlite3_bind_int64(cur[i].st, 2, KEY(segs[i] + 1, 0) - 1);
		rc = cursor_next(s, &cur[i]);
	}
	if (rc == 0)
		rc = ps_tri_merge(n, merge_entry, merge_next, &in, live, lo, hi, &w, &m);
	for (size_t i = 0; i < n; i++) {
		sqlite3_finalize(cur[i].st);
		free(cur[i].data);
		ps_tri_zbuf_dispose(&cur[i].z);
	}
	free(cur);
	free(live);
	if (rc == 0)
		rc = ps_tri_writer_finish(&w);
	else
		ps_tri_writer_finish(&w);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = drop_segment(s, segs[i]);
	if (rc == 0)
		rc = seal_segment(s, out.seg, w.postings, m.min_id, m.max_id, m.docs);
	return rc;
}

/* The segments of a level, oldest first. */
static int level_segments(struct ps_store *s, int level, int64_t **out, size_t *n)
{
	static const char sql[] = "SELECT id FROM code_segments WHERE level = ? ORDER BY id";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int(st, 1, level);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			*out = ps_realloc(*out, cap * sizeof(**out));
		}
		(*out)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "read the code index");
}

/* Writes the accumulator as a new segment of level 0, then merges full levels. */
static int write_segment(struct ps_store *s, struct ps_tri_acc *acc)
{
	const int level = 0;
	struct ps_tri_writer w;
	struct seg_out out = { s, 0 };
	uint32_t min_id = acc->n ? acc->id[0] : 0;
	int rc;

	if ((rc = new_segment(s, level, &out.seg)) < 0)
		return rc;
	ps_tri_writer_init(&w, emit_row, &out);
	rc = ps_tri_acc_write(acc, &w);
	if (rc == 0)
		rc = ps_tri_writer_finish(&w);
	else
		ps_tri_writer_finish(&w);
	if (rc == 0)
		rc = seal_segment(s, out.seg, w.postings, min_id, acc->max_id, (int64_t)acc->docs);
	for (int l = level; rc == 0; l++) {
		int64_t *list;
		size_t n;

		if ((rc = level_segments(s, l, &list, &n)) < 0)
			break;
		if (n >= FANIN)
			rc = merge_segments(s, l + 1, list, n);
		free(list);
		if (n < FANIN)
			break;
	}
	return rc;
}

int ps_sqlite_code_flush(struct ps_store *s)
{
	struct ps_sqlite_code *c = s->code;
	int rc = 0;

	if (!c)
		return 0;
	if (c->acc.n)
		rc = write_segment(s, &c->acc);
	ps_tri_acc_clear(&c->acc);
	c->next_id = 0;
	return rc;
}

void ps_sqlite_code_discard(struct ps_store *s)
{
	if (!s->code)
		return;
	ps_tri_acc_clear(&s->code->acc);
	s->code->next_id = 0;
}

void ps_sqlite_code_free(struct ps_store *s)
{
	if (!s->code)
		return;
	ps_tri_doc_dispose(&s->code->doc);
	ps_tri_acc_dispose(&s->code->acc);
	free(s->code);
	s->code = NULL;
}
int ps_sqlite_code_index_have(struct ps_store *s, const char *const *shas, size_t n,
			      bool *indexed)
{
	static const char sql[] = "SELECT 1 FROM code_blobs WHERE sha = ps_unhex(?)";

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
		"SELECT DISTINCT ps_hex(fv.sha) FROM dirs d JOIN file_versions fv ON fv.dir_id = d.id "
		"WHERE d.project_id = ? AND (fv.mode & 61440) = 32768 "
		"AND NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = fv.sha) "
		"AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha) ORDER BY 1";
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

/* ---- queries ---- */

/* A query's evaluation: the segments, and the size of an id bitmap. */
struct eval {
	struct ps_store *s;
	int64_t *segs;
	size_t nsegs;
	int64_t nbits; /* ids < nbits */
	size_t words;
	struct ps_tri_zbuf z; /* the rows read, decompressed */
};

/* ORs into `bits` the ids of the documents holding trigram `code`, from every segment (a
 * ps_tri_lookup_fn of ps_tri_eval). */
static int trigram_bits(void *ctx, uint32_t code, uint64_t *bits)
{
	static const char sql[] =
		"SELECT key, data FROM code_postings WHERE key BETWEEN ? AND ? ORDER BY key DESC LIMIT 1";
	struct eval *e = ctx;

	for (size_t i = 0; i < e->nsegs; i++) {
		sqlite3_stmt *st = ps_sqlite_stmt(e->s, sql);
		int rc;

		if (!st)
			return PS_ESTORE;
		sqlite3_bind_int64(st, 1, KEY(e->segs[i], 0));
		sqlite3_bind_int64(st, 2, KEY(e->segs[i], code));
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			uint32_t first = (uint32_t)(sqlite3_column_int64(st, 0) & ((1 << KEY_SHIFT) - 1));

			if (!ps_tri_row_bits(first, sqlite3_column_blob(st, 1),
					     (size_t)sqlite3_column_bytes(st, 1), code, bits,
					     e->nbits, &e->z)) {
				sqlite3_reset(st);
				return ps_error_set(PS_ESTORE, "store_corrupt",
						    "code index segment %lld is damaged",
						    (long long)e->segs[i]);
			}
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return ps_sqlite_error(e->s, "find code search candidates");
	}
	return 0;
}

/*
 * The code_blobs ids whose document satisfies a query, as a bitmap (ids are dense: code_blobs'
 * INTEGER PRIMARY KEY), for the walk in path order below; passed to SQL by
 * sqlite3_bind_pointer, so no user value can pose as one.
 */
static int collect_hits(struct ps_store *s, const struct ps_code_query *q, struct hits *h)
{
	static const char segs_sql[] = "SELECT id, max_id FROM code_segments ORDER BY id";
	sqlite3_stmt *st = ps_sqlite_stmt(s, segs_sql);
	struct eval e = { .s = s };
	size_t cap = 0;
	int rc;

	if (!st)
		return PS_ESTORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t max = sqlite3_column_int64(st, 1);

		if (e.nsegs == cap) {
			cap = cap ? 2 * cap : 16;
			e.segs = ps_realloc(e.segs, cap * sizeof(*e.segs));
		}
		e.segs[e.nsegs++] = sqlite3_column_int64(st, 0);
		if (max + 1 > e.nbits)
			e.nbits = max + 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(e.segs);
		return ps_sqlite_error(s, "find code search candidates");
	}
	e.words = (size_t)(e.nbits + 63) / 64;
	e.nbits = (int64_t)e.words * 64;
	rc = ps_tri_eval(q, e.words, trigram_bits, &e, &h->bits);
	free(e.segs);
	ps_tri_zbuf_dispose(&e.z);
	if (rc < 0)
		return rc;
	h->nbits = e.nbits;
	h->count = 0;
	for (size_t i = 0; i < e.words; i++)
		h->count += (size_t)__builtin_popcountll(h->bits[i]);
	return 0;
}

/* The hits as a JSON array of ids, for json_each() in the blobs-first plan. */
static void hits_json(const struct hits *h, struct ps_buf *b)
{
	bool first = true;

	ps_buf_puts(b, "[");
	for (int64_t w = 0; w < h->nbits / 64; w++) {
		uint64_t x = h->bits[w];

		while (x) {
			int bit = __builtin_ctzll(x);

			ps_buf_printf(b, first ? "%lld" : ",%lld", (long long)(w * 64 + bit));
			first = false;
			x &= x - 1;
		}
	}
	ps_buf_puts(b, "]");
}
/* Schema 26: the full path is built from the file's dirs row `d`; the prefix and the point a
 * search resumes from bound it (the sort then keeps only what is left). */
#define CANDIDATE_PATH PS_SQLITE_FULL_PATH("d", "fv.name")
#define CANDIDATE_COLS \
	"SELECT " CANDIDATE_PATH ", fv.mode, ps_hex(fv.sha), fv.size, cb.id, cb.binary "
#define CANDIDATE_WHERE \
	"WHERE fv.project_id = ?1 AND d.project_id = ?1 AND fv.introduced_by <= ?2 " \
	"AND (fv.superseded_by IS NULL OR fv.superseded_by > ?2) " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by AND i.status = 'succeeded') " \
	"AND (fv.mode & 61440) = 32768 " \
	"AND (?3 IS NULL OR " CANDIDATE_PATH " >= ?3) AND (?4 IS NULL OR " CANDIDATE_PATH " < ?4) "

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

struct walk_list {
	struct ps_code_candidate *v;
	size_t n, cap, limit;
	struct hits *hits;
};

static void walk_bind(sqlite3_stmt *st, void *ud)
{
	struct walk_list *l = ud;

	if (l->hits)
		sqlite3_bind_pointer(st, 6, l->hits, HITS_POINTER, NULL);
}

static int walk_take(void *ud, const struct ps_file *f, int state)
{
	struct walk_list *l = ud;
	struct ps_code_candidate *c;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	c = &l->v[l->n++];
	c->file = *f;
	c->file.path = ps_strdup(f->path);
	c->state = state == 0 ? PS_CODE_UNINDEXED : state == 2 ? PS_CODE_BINARY : PS_CODE_TEXT;
	return l->n == l->limit; /* 1: enough */
}

/* The first `limit` candidates in path order from `from_path` on, by the ordered walk. */
static int walk_candidates(struct ps_store *s, int64_t project_id, int64_t snap,
			   const char *dir_sql, struct hits *hits, const char *prefix,
			   const char *from_path, size_t limit, struct ps_code_candidate **out,
			   size_t *n)
{
	struct walk_list l = { .limit = limit, .hits = hits };
	struct ps_sqlite_walk w = { .project_id = project_id, .at = snap, .files_sql = dir_sql,
				    .bind = walk_bind, .cb = walk_take, .ud = &l };
	char *upper = NULL;
	int rc;

	if (prefix && *prefix) {
		w.upper = upper = ps_prefix_end(prefix, strlen(prefix));
		w.lower = prefix;
	}
	if (from_path && (!w.lower || strcmp(from_path, w.lower) > 0))
		w.lower = from_path;
	rc = ps_sqlite_walk(s, &w);
	free(upper);
	if (rc < 0) {
		ps_code_candidates_free(l.v, l.n);
		return rc;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

static int candidates(struct ps_store *s, int64_t project_id, int64_t at,
		      const struct ps_code_query *q, const char *prefix, const char *from_path,
		      size_t limit, int64_t *snap, struct ps_code_candidate **out, size_t *n)
{
	static const char all_sql[] =
		CANDIDATE_COLS "FROM dirs d JOIN file_versions fv ON fv.dir_id = d.id "
		"LEFT JOIN code_blobs cb ON cb.sha = fv.sha " CANDIDATE_WHERE
		"AND (cb.id IS NOT NULL OR EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha)) "
		"ORDER BY 1 LIMIT ?6";
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
		"(SELECT value FROM json_each(?5)) " unindexed ") " \
		CANDIDATE_COLS "FROM hit h CROSS JOIN file_versions fv ON fv.sha = h.sha " \
		"CROSS JOIN dirs d ON d.id = fv.dir_id " \
		"LEFT JOIN code_blobs cb ON cb.sha = fv.sha " CANDIDATE_WHERE "ORDER BY 1 LIMIT ?6"
	static const char match_sql[] = MATCH_SQL(
		"UNION ALL SELECT b.sha FROM blobs b "
		"WHERE NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)");
	/* The same when code_unindexed says every stored blob is indexed (migration 0014). */
	static const char match_indexed_sql[] = MATCH_SQL("");
#undef MATCH_SQL
	/*
	 * But when most blobs match (a common literal) and only the first `limit` candidates are
	 * wanted, that lists and sorts nearly every file of the snapshot for a few of them (~6 us
	 * per file: 0.6 s at 100,000 files). Then the snapshot is walked in full-path order
	 * (ps_sqlite_walk: directory by directory, each one's rows in name order, no sort; schema
	 * 26 keeps no index in full-path order) with the matches in a bitmap, and the walk stops
	 * at the limit. The same walk lists every candidate when there is no query but a limit.
	 */
#define DIR_SQL(cond) \
		"SELECT fv.name, fv.mode, ps_hex(fv.sha), fv.size, cb.id, cb.binary " \
		"FROM dirs d JOIN file_versions fv ON fv.dir_id = d.id " \
		"LEFT JOIN code_blobs cb ON cb.sha = fv.sha " \
		"WHERE d.project_id = ?1 AND d.path = ?2 AND fv.introduced_by <= ?3 " \
		"AND (fv.superseded_by IS NULL OR fv.superseded_by > ?3) " \
		"AND fv.name >= ?4 AND EXISTS (SELECT 1 FROM syncs i " \
		"WHERE i.id = fv.introduced_by AND i.status = 'succeeded') " \
		"AND (fv.mode & 61440) = 32768 AND " cond " ORDER BY fv.name LIMIT ?5"
	static const char walk_dir_sql[] = DIR_SQL(
		"(CASE WHEN cb.id IS NULL THEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha) "
		"ELSE ps_code_hit(?6, cb.id) END)");
	static const char all_dir_sql[] = DIR_SQL(
		"(cb.id IS NOT NULL OR EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha))");
#undef DIR_SQL
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
		/* The index answers in memory; SQL then gets the ids (walk: a bitmap; blobs
		 * first: a JSON array of the few hits). */
		if ((rc = collect_hits(s, q, &hits)) < 0)
			return rc;
		if (limit > 0)
			/* Walking costs about limit * blobs / hits rows, the blobs first about hits. */
			walk = (double)hits.count * (double)hits.count >
			       (double)limit * (double)indexed_blobs(s);
		if (!walk) {
			ps_buf_init(&expr, SIZE_MAX);
			hits_json(&hits, &expr);
		}
	}
	if (walk || (!q && limit > 0)) {
		rc = walk_candidates(s, project_id, id, walk ? walk_dir_sql : all_dir_sql,
				     walk ? &hits : NULL, prefix, from_path, limit, out, n);
		free(hits.bits);
		if (rc == 0)
			*snap = id;
		return rc;
	}
	if (!q)
		sql = all_sql;
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
		/* Paths with the prefix lie in [prefix, upper); no upper (NULL): no end. */
		upper = ps_prefix_end(prefix, strlen(prefix));
		ps_sqlite_bind_text(st, 4, upper);
		lower = prefix;
	}
	if (from_path && (!lower || strcmp(from_path, lower) > 0))
		lower = from_path;
	ps_sqlite_bind_text(st, 3, lower);
	if (walk)
		sqlite3_bind_pointer(st, 5, &hits, HITS_POINTER, NULL);
	else if (q)
		sqlite3_bind_text64(st, 5, expr.data, expr.len, SQLITE_TRANSIENT, SQLITE_UTF8);
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

int ps_sqlite_code_candidates(struct ps_store *s, int64_t project_id, int64_t at,
			      const struct ps_code_query *q, const char *prefix,
			      const char *from_path, size_t limit, int64_t *snap,
			      struct ps_code_candidate **out, size_t *n)
{
	/*
	 * One read transaction for the whole answer: the index's rows and the file versions come
	 * from one state of the store, and SQLite takes its read lock once, not per statement (a
	 * query reads a row per segment and trigram, and each statement on its own cost two
	 * fcntl() calls: ~1 ms of a rare literal's 12).
	 */
	bool own = s->tx_depth == 0 && sqlite3_get_autocommit(s->db);
	int rc;

	if (own && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return ps_sqlite_error(s, "find code search candidates");
	rc = candidates(s, project_id, at, q, prefix, from_path, limit, snap, out, n);
	if (own && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* it only read */
	return rc;
}

/*
 * After a prune: when most of what the segments hold are documents no code_blobs row has any
 * more, every segment is merged into one, which leaves them out. Without it they would stay
 * until their segments merge again, which for the top level may be never: an index that keeps
 * every blob it ever held, whatever the retention. Segments count their documents
 * (code_segments.docs); one written before they did (migration 0021) is counted as its whole
 * id range, so an old store is compacted at most once too often.
 */
static int code_compact(struct ps_store *s)
{
	static const char held[] =
		"SELECT coalesce(sum(coalesce(docs, max_id - min_id + 1)), 0), count(*), "
		"coalesce(max(level), 0) FROM code_segments";
	static const char live[] = "SELECT count(*) FROM code_blobs WHERE binary = 0";
	int64_t docs = 0, nseg = 0, top = 0, alive = 0, *list = NULL;
	size_t n = 0;
	sqlite3_stmt *st;
	int rc;

	if (!(st = ps_sqlite_stmt(s, held)))
		return PS_ESTORE;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		docs = sqlite3_column_int64(st, 0);
		nseg = sqlite3_column_int64(st, 1);
		top = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return ps_sqlite_error(s, "read the code index");
	if (!(st = ps_sqlite_stmt(s, live)))
		return PS_ESTORE;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		alive = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return ps_sqlite_error(s, "read the code index");
	if (nseg == 0 || (docs - alive) * 2 <= docs)
		return 0;
	for (int l = 0; l <= top; l++) {
		int64_t *one;
		size_t k;

		if ((rc = level_segments(s, l, &one, &k)) < 0)
			break;
		list = ps_realloc(list, (n + k + 1) * sizeof(*list));
		if (k)
			memcpy(list + n, one, k * sizeof(*one));
		n += k;
		free(one);
	}
	if (rc == 0 && n)
		rc = merge_segments(s, (int)top, list, n);
	free(list);
	return rc;
}

int ps_sqlite_code_forget_unreferenced(struct ps_store *s)
{
	/* The rows go; their ids' postings stay in the segments, which queries ignore (no row to
	 * join; ids are never reused, next_id), and the next merge of those segments drops;
	 * ps_sqlite_code_compact merges them all at once when they are mostly such, after the
	 * prune, in a transaction of its own. */
	static const char del[] =
		"DELETE FROM code_blobs WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = code_blobs.sha)";
	sqlite3_stmt *st = ps_sqlite_stmt(s, del);
	int rc;

	if (!st)
		return PS_ESTORE;
	if ((rc = ps_sqlite_step_done(s, st, "remove from the code index")) < 0)
		return rc;
	return 0;
}

int ps_sqlite_code_compact(struct ps_store *s)
{
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = code_compact(s)) < 0) {
		ps_store_rollback(s);
		return rc;
	}
	return ps_store_commit(s);
}

/* ---- schema 25: rows written before compressed (migrations/0025_code_rows_zstd.sql) ---- */

/* Rows per batch: ~8 KiB each, so a batch holds ~2 MiB in memory and a kill loses that much. */
#define ZSTD_BATCH_ROWS 256

struct raw_code_row {
	sqlite3_int64 key;
	unsigned char *data; /* NULL: compressed already */
	size_t len;
};

/* One batch in its own transaction; *more = false once the last row was looked at and
 * code_rows_raw dropped (or another process did). */
static int code_convert_batch(struct ps_store *s, size_t batch_rows, struct ps_tri_zbuf *z,
			      void (*after_row)(void *ud, size_t row), void *ud, size_t *row_no,
			      bool *more)
{
	static const char left[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
				   "name = 'code_rows_raw'";
	static const char rows_sql[] = "SELECT key, data FROM code_postings WHERE key > "
				       "(SELECT after FROM code_rows_raw) ORDER BY key LIMIT ?";
	static const char put[] = "UPDATE code_postings SET data = ? WHERE key = ?";
	static const char mark[] = "UPDATE code_rows_raw SET after = ?";
	struct raw_code_row *rows = ps_calloc(batch_rows, sizeof(*rows));
	size_t n = 0;
	sqlite3_stmt *st;
	int rc;

	*more = false;
	if ((rc = ps_store_begin(s)) < 0) {
		free(rows);
		return rc;
	}
	/* Asked inside the transaction: two processes opening the store take turns, and the one
	 * that comes second finds the table gone or the key moved on. Not cached: the table goes. */
	if (sqlite3_prepare_v2(s->db, left, -1, &st, NULL) != SQLITE_OK) {
		rc = ps_sqlite_error(s, "convert the code index");
		goto out;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "convert the code index");
		goto out;
	}
	/* Read first, then written: the batch is in memory before any row changes. */
	if (sqlite3_prepare_v2(s->db, rows_sql, -1, &st, NULL) != SQLITE_OK) {
		rc = ps_sqlite_error(s, "convert the code index");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)batch_rows);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < batch_rows) {
		const unsigned char *data = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);

		rows[n].key = sqlite3_column_int64(st, 0);
		if (!ps_tri_row_compressed(data, len)) {
			rows[n].data = ps_malloc(len ? len : 1);
			if (len)
				memcpy(rows[n].data, data, len);
			rows[n].len = len;
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rc = ps_sqlite_error(s, "convert the code index");
		goto out;
	}
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const unsigned char *out;
		size_t out_len;

		if (!rows[i].data)
			continue;
		if ((rc = ps_tri_row_pack(z, rows[i].data, rows[i].len, &out, &out_len)) < 0)
			break;
		if (out != rows[i].data) {
			if (!(st = ps_sqlite_stmt(s, put))) {
				rc = PS_ESTORE;
				break;
			}
			sqlite3_bind_blob(st, 1, out, (int)out_len, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, rows[i].key);
			rc = ps_sqlite_step_done(s, st, "convert the code index");
		}
		if (rc == 0 && after_row)
			after_row(ud, (*row_no)++);
	}
	if (rc < 0)
		goto out;
	if (n < batch_rows) {
		/* The last row was looked at: readers never asked, and opens stop asking. */
		rc = sqlite3_exec(s->db, "DROP TABLE code_rows_raw", NULL, NULL, NULL) == SQLITE_OK
			     ? 0
			     : ps_sqlite_error(s, "finish the code index conversion");
	} else if (sqlite3_prepare_v2(s->db, mark, -1, &st, NULL) != SQLITE_OK) {
		rc = ps_sqlite_error(s, "convert the code index");
	} else {
		sqlite3_bind_int64(st, 1, rows[n - 1].key);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ps_sqlite_error(s, "convert the code index");
		sqlite3_finalize(st);
		*more = rc == 0;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(rows[i].data);
	free(rows);
	if (rc < 0) {
		*more = false;
		ps_store_rollback(s);
		return rc;
	}
	return ps_store_commit(s);
}

int ps_sqlite_code_convert(struct ps_store *s, size_t batch_rows,
			   void (*after_row)(void *ud, size_t row), void *ud)
{
	static const char left[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
				   "name = 'code_rows_raw'";
	struct ps_tri_zbuf z = { 0 };
	size_t row_no = 0;
	bool more = true;
	sqlite3_stmt *st;
	int rc;

	if (batch_rows == 0)
		batch_rows = ZSTD_BATCH_ROWS;
	/* A converted store is not written to at all (a read-only one opens as before). */
	if (sqlite3_prepare_v2(s->db, left, -1, &st, NULL) != SQLITE_OK)
		return ps_sqlite_error(s, "convert the code index");
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "convert the code index");
	rc = 0;
	while (more && rc == 0)
		rc = code_convert_batch(s, batch_rows, &z, after_row, ud, &row_no, &more);
	ps_tri_zbuf_dispose(&z);
	return rc;
}
