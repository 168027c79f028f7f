/*
 * The SQLite backend's blob housekeeping: the resumable conversions of blobs written before
 * schema 10 to the blob codec and of those written before schema 23 to 20-byte ids, the
 * packs' rows (schema 27) and the figures of `projsync stats`. ps_store_blob_put/get live in
 * sqlite.c beside the other hot paths.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/blobcodec.h"
#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"
#include "util/util.h"

/* A batch holds at most this many rows and this much raw content, so a large store converts in
 * bounded memory and a kill loses at most one batch of work. */
#define CONVERT_BATCH_ROWS 256
#define CONVERT_BATCH_BYTES (32u << 20)

static bool table_left(struct ps_store *s, const char *sql, bool *gone)
{
	sqlite3_stmt *st;

	/* Once gone it never comes back: stop asking. */
	if (*gone)
		return false;
	st = ps_sqlite_stmt(s, sql);
	if (!st)
		return true;
	if (sqlite3_step(st) != SQLITE_ROW)
		*gone = true;
	sqlite3_reset(st);
	return !*gone;
}

bool ps_sqlite_blobs_raw_left(struct ps_store *s)
{
	static const char sql[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
				  "name = 'blobs_raw'";

	return table_left(s, sql, &s->blobs_raw_gone);
}

bool ps_sqlite_blobs_hex_left(struct ps_store *s)
{
	static const char sql[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
				  "name = 'blobs_hex'";

	return table_left(s, sql, &s->blobs_hex_gone);
}

struct raw_row {
	char *sha;
	sqlite3_int64 size;
	void *data;
	size_t len;
};

/* Reads the next batch of blobs_raw rows into memory (the table is then changed, which an open
 * SELECT on it must not see). */
static int read_batch(struct ps_store *s, size_t batch_rows, struct raw_row **out, size_t *n)
{
	static const char sql[] = "SELECT sha, size, content FROM blobs_raw ORDER BY sha LIMIT ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	struct raw_row *rows = ps_calloc(batch_rows, sizeof(*rows));
	size_t bytes = 0;
	int step = SQLITE_DONE;

	*n = 0;
	if (!st) {
		free(rows);
		return PS_ESTORE;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)batch_rows);
	while (*n < batch_rows && bytes < CONVERT_BATCH_BYTES &&
	       (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct raw_row *r = &rows[(*n)++];
		r->sha = ps_sqlite_col_text(st, 0);
		r->size = sqlite3_column_int64(st, 1);
		r->len = (size_t)sqlite3_column_bytes(st, 2);
		r->data = ps_malloc(r->len + 1);
		if (r->len)
			memcpy(r->data, sqlite3_column_blob(st, 2), r->len);
		bytes += r->len;
	}
	if (*n < batch_rows && bytes < CONVERT_BATCH_BYTES && step != SQLITE_DONE) {
		sqlite3_reset(st);
		for (size_t i = 0; i < *n; i++) {
			free(rows[i].sha);
			free(rows[i].data);
		}
		free(rows);
		return ps_sqlite_error(s, "read blobs to convert");
	}
	sqlite3_reset(st);
	*out = rows;
	return 0;
}

/* Moves one row into blobs, encoded, in the caller's transaction. */
static int move_row(struct ps_store *s, const struct raw_row *r)
{
	static const char ins[] = "INSERT OR IGNORE INTO blobs (sha, size, encoding, content) "
				  "VALUES (ps_unhex(?), ?, ?, ?)";
	static const char del[] = "DELETE FROM blobs_raw WHERE sha = ?";
	char actual[PS_SHA_HEX];
	void *enc_data = NULL;
	size_t enc_len;
	int enc = PS_BLOB_RAW, rc;
	sqlite3_stmt *st;

	/* Only a row that still verifies is encoded: a damaged one moves as it is, for whoever
	 * looks at it, rather than being sealed into a frame with a good checksum. */
	ps_git_blob_sha(r->data, r->len, actual);
	if (r->size == (sqlite3_int64)r->len && !strcmp(actual, r->sha) &&
	    (rc = ps_blobcodec_encode(s->codec, r->data, r->len, &enc, &enc_data, &enc_len)) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, ins))) {
		free(enc_data);
		return PS_ESTORE;
	}
	ps_sqlite_bind_text(st, 1, r->sha);
	sqlite3_bind_int64(st, 2, r->size);
	sqlite3_bind_int(st, 3, enc);
	if (enc_data)
		sqlite3_bind_blob64(st, 4, enc_data, enc_len, SQLITE_STATIC);
	else
		sqlite3_bind_blob64(st, 4, r->len ? r->data : "", r->len, SQLITE_STATIC);
	rc = ps_sqlite_step_done(s, st, "move a blob");
	free(enc_data);
	if (rc < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, del)))
		return PS_ESTORE;
	ps_sqlite_bind_text(st, 1, r->sha);
	return ps_sqlite_step_done(s, st, "move a blob");
}

/* The rows of the next schema-23 batch: the first rows of blobs_hex, up to ?1 rows and ?2 bytes
 * (the first always), with their whole delta families (bases and deltas, transitively): in
 * either table a delta's base must be there at commit (migrations/0023). The two statements
 * that use it read the same rows, blobs_hex not changing between them. */
#define HEX_BATCH                                                                               \
	"WITH RECURSIVE seed AS (SELECT id, sha, length(content) AS len FROM blobs_hex "        \
	"ORDER BY id LIMIT ?1), "                                                               \
	"pick(sha) AS (SELECT sha FROM (SELECT sha, sum(len) OVER (ORDER BY id) - len AS "      \
	"before FROM seed) WHERE before < ?2 "                                                  \
	"UNION SELECT h.base FROM blobs_hex h JOIN pick p ON h.sha = p.sha "                    \
	"WHERE h.base IS NOT NULL "                                                             \
	"UNION SELECT h.sha FROM blobs_hex h JOIN pick p ON h.base = p.sha) "

/* Moves one batch of blobs_hex into blobs, in the caller's transaction; *n: the rows moved.
 * SQLite copies the rows itself: no content passes through this process. */
static int move_hex_batch(struct ps_store *s, size_t batch_rows, size_t *n)
{
	static const char ins[] =
		HEX_BATCH "INSERT OR IGNORE INTO blobs (sha, size, encoding, base, content) "
		"SELECT ps_unhex(sha), size, encoding, ps_unhex(base), content FROM blobs_hex "
		"WHERE sha IN (SELECT sha FROM pick) ORDER BY id";
	static const char del[] = HEX_BATCH "DELETE FROM blobs_hex WHERE sha IN (SELECT sha FROM pick)";
	sqlite3_stmt *st;
	int rc;

	*n = 0;
	for (int i = 0; i < 2; i++) {
		if (!(st = ps_sqlite_stmt(s, i ? del : ins)))
			return PS_ESTORE;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)batch_rows);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)CONVERT_BATCH_BYTES);
		if ((rc = ps_sqlite_step_done(s, st, "convert blob ids")) < 0)
			return rc;
	}
	*n = (size_t)sqlite3_changes(s->db);
	return 0;
}

/* One batch in its own transaction, of blobs_raw (`hex` false) or blobs_hex; *more = false
 * once the table was empty and is dropped. */
static int convert_batch(struct ps_store *s, bool hex, size_t batch_rows,
			 void (*after_row)(void *ud, size_t row), void *ud, size_t *row_no,
			 bool *more)
{
	static const char count[] = "UPDATE blob_conversion SET converted = converted + ? "
				    "WHERE id = 1";
	struct raw_row *rows = NULL;
	size_t n = 0;
	int rc;
	sqlite3_stmt *st;

	*more = false;
	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	/* Read inside the transaction: two processes opening the same store take turns, and
	 * neither moves a row the other already moved. */
	if (!(hex ? ps_sqlite_blobs_hex_left(s) : ps_sqlite_blobs_raw_left(s))) {
		ps_store_rollback(s);
		return 0;
	}
	if (hex) {
		if ((rc = move_hex_batch(s, batch_rows, &n)) < 0)
			goto out;
		for (size_t i = 0; i < n && after_row; i++)
			after_row(ud, (*row_no)++);
	} else {
		if ((rc = read_batch(s, batch_rows, &rows, &n)) < 0)
			goto out;
		for (size_t i = 0; i < n; i++) {
			if ((rc = move_row(s, &rows[i])) < 0)
				goto out;
			if (after_row)
				after_row(ud, (*row_no)++);
		}
	}
	if (n == 0) {
		/* Everything moved: the old table goes, and readers stop looking in it. */
		rc = sqlite3_exec(s->db,
				  hex ? "DROP TABLE blobs_hex"
				      : "DROP TABLE blobs_raw; UPDATE blob_conversion SET done = 1",
				  NULL, NULL, NULL) == SQLITE_OK
			     ? 0
			     : ps_sqlite_error(s, "finish the blob conversion");
	} else if (hex) {
		rc = 0;
	} else if (!(st = ps_sqlite_stmt(s, count))) {
		rc = PS_ESTORE;
	} else {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)n);
		rc = ps_sqlite_step_done(s, st, "count converted blobs");
	}
out:
	for (size_t i = 0; rows && i < n; i++) {
		free(rows[i].sha);
		free(rows[i].data);
	}
	free(rows);
	if (rc < 0) {
		ps_store_rollback(s);
		return rc;
	}
	if ((rc = ps_store_commit(s)) < 0)
		return rc;
	*more = n > 0;
	return 0;
}

int ps_sqlite_blob_convert(struct ps_store *s, size_t batch_rows,
			   void (*after_row)(void *ud, size_t row), void *ud)
{
	size_t row_no = 0;
	int rc = 0;

	if (batch_rows == 0)
		batch_rows = CONVERT_BATCH_ROWS;
	/* Schema 10's first: its rows go into the schema-23 table (a store older than 10 runs
	 * every SQL migration before either conversion). A converted store is not written to at
	 * all (a read-only store opens as before). */
	for (int hex = 0; hex < 2; hex++) {
		bool more = true;

		while (more && (hex ? ps_sqlite_blobs_hex_left(s) : ps_sqlite_blobs_raw_left(s)))
			if ((rc = convert_batch(s, hex, batch_rows, after_row, ud, &row_no,
						&more)) < 0)
				return rc;
	}
	return 0;
}

static int count_one(struct ps_store *s, const char *sql, int64_t project_id, int64_t *out,
		     int ncols, const char *what)
{
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	if (project_id)
		sqlite3_bind_int64(st, 1, project_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		for (int i = 0; i < ncols; i++)
			out[i] = sqlite3_column_int64(st, i);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : ps_sqlite_error(s, what);
}

/* A project's file versions by its directories (schema 26: file_versions_path starts with
 * dir_id, and no other index but a partial one with project_id). */
#define PROJECT_ROWS "dirs d JOIN file_versions f ON f.dir_id = d.id WHERE d.project_id = ?1"

int ps_sqlite_stats(struct ps_store *s, int64_t project_id, struct ps_store_stats *out)
{
	static const char all_syncs[] =
		"SELECT count(*), coalesce(sum(status = 'succeeded'), 0), "
		"(SELECT count(*) FROM projects), (SELECT count(*) FROM file_versions) FROM syncs";
	/* length() of a BLOB reads the row header, not the content. The packs (schema 27) count
	 * whole: their members' rows hold no content of their own. */
	static const char all_blobs[] =
		"SELECT count(*), coalesce(sum(encoding <> 0), 0), coalesce(sum(size), 0), "
		"coalesce(sum(length(content)), 0) + "
		"(SELECT coalesce(sum(length(content)), 0) FROM blob_packs), "
		"coalesce(sum(encoding = 2), 0), coalesce(sum(encoding = 3), 0), "
		"(SELECT count(*) FROM blob_packs) FROM blobs";
	static const char all_left[] = "SELECT count(*) FROM blobs_raw";
	static const char all_blobs_raw[] =
		"SELECT count(*), 0, coalesce(sum(size), 0), coalesce(sum(length(content)), 0) "
		"FROM blobs_raw";
	static const char one_blobs_raw[] =
		"SELECT count(*), 0, coalesce(sum(size), 0), coalesce(sum(length(content)), 0) "
		"FROM blobs_raw WHERE sha IN (SELECT ps_hex(f.sha) FROM " PROJECT_ROWS ")";
	static const char disk[] =
		"SELECT (SELECT page_count FROM pragma_page_count()) - "
		"(SELECT freelist_count FROM pragma_freelist_count()), "
		"(SELECT page_size FROM pragma_page_size())";
	static const char one_syncs[] =
		"SELECT count(*), coalesce(sum(status = 'succeeded'), 0), 1, "
		"(SELECT count(*) FROM " PROJECT_ROWS ") FROM syncs "
		"WHERE project_id = ?1";
	/* A packed blob counts its share of its pack's stored bytes, by size: what the project
	 * would give back if its blobs went (the packs shared with other projects stay). */
	static const char one_blobs[] =
		"SELECT count(*), coalesce(sum(b.encoding <> 0), 0), coalesce(sum(b.size), 0), "
		"coalesce(sum(length(b.content)), 0) + "
		"coalesce(sum(b.size * length(p.content) / p.size), 0), "
		"coalesce(sum(b.encoding = 2), 0), coalesce(sum(b.encoding = 3), 0), 0 "
		"FROM blobs b LEFT JOIN blob_packs p ON p.id = b.pack AND b.encoding = 3 "
		"WHERE b.sha IN (SELECT f.sha FROM " PROJECT_ROWS ")";
	struct ps_store_stats st = { 0 };
	int64_t v[7];
	int rc;

	if (project_id) {
		struct ps_project *p = NULL;
		if ((rc = ps_sqlite_project_get_by_id(s, project_id, &p)) < 0)
			return rc;
		ps_project_free(p);
	}
	if ((rc = count_one(s, project_id ? one_syncs : all_syncs, project_id, v, 4,
			    "count syncs")) < 0)
		return rc;
	st.syncs = v[0];
	st.syncs_succeeded = v[1];
	st.projects = v[2];
	st.file_versions = v[3];
	if ((rc = count_one(s, project_id ? one_blobs : all_blobs, project_id, v, 7,
			    "count blobs")) < 0)
		return rc;
	st.blobs = v[0];
	st.blobs_compressed = v[1];
	st.blobs_delta = v[4];
	st.blobs_packed = v[5];
	st.packs = v[6];
	st.raw_bytes = v[2];
	st.stored_bytes = v[3];
	/* Until the conversion finished, the blobs not yet moved count as they are. */
	if (ps_sqlite_blobs_raw_left(s)) {
		if ((rc = count_one(s, project_id ? one_blobs_raw : all_blobs_raw, project_id, v, 4,
				    "count blobs")) < 0)
			return rc;
		st.blobs += v[0];
		st.raw_bytes += v[2];
		st.stored_bytes += v[3];
		if (!project_id) {
			if ((rc = count_one(s, all_left, 0, v, 1, "count blobs left to convert")) < 0)
				return rc;
			st.unconverted_blobs = v[0];
		}
	}
	if (!project_id) {
		if ((rc = count_one(s, disk, 0, v, 2, "measure the store")) < 0)
			return rc;
		st.disk_bytes = v[0] * v[1];
	}
	*out = st;
	return 0;
}

/* ---- packs (schema 27, migrations/0027_blob_packs.sql; the contract in store/backend.h) ---- */

int ps_sqlite_blob_pack_put(struct ps_store *s, const struct ps_blob_pack_row *row, int64_t *id)
{
	static const char sql[] = "INSERT INTO blob_packs (size, content) VALUES (?, ?)";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)row->size);
	sqlite3_bind_blob64(st, 2, row->len ? row->content : "", row->len, SQLITE_STATIC);
	if ((rc = ps_sqlite_step_done(s, st, "store a blob pack")) < 0)
		return rc;
	*id = (int64_t)sqlite3_last_insert_rowid(s->db);
	return 0;
}

int ps_sqlite_blob_pack_get(struct ps_store *s, int64_t id, struct ps_blob_pack_row *out)
{
	static const char sql[] = "SELECT size, content FROM blob_packs WHERE id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 1);

		memset(out, 0, sizeof(*out));
		out->id = id;
		out->size = sqlite3_column_int64(st, 0);
		out->content = ps_malloc(n + 1);
		if (n)
			memcpy(out->content, sqlite3_column_blob(st, 1), n);
		out->len = n;
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return ps_error_set(PS_ENOTFOUND, "blob_pack_missing", "blob pack %lld is not stored",
				    (long long)id);
	return ps_sqlite_error(s, "read a blob pack");
}

int ps_sqlite_blob_pack_members(struct ps_store *s, int64_t id, struct ps_strv *shas)
{
	/* "pack = ?" implies "pack IS NOT NULL": a read of the partial index blobs_pack. */
	static const char sql[] = "SELECT ps_hex(sha) FROM blobs WHERE pack = ? "
				  "ORDER BY pack_offset";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		ps_strv_push(shas, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "list a blob pack's members");
}

int ps_sqlite_blob_packs_sparse(struct ps_store *s, int64_t **ids, size_t *n)
{
	/* One pass over the partial index blobs_pack (the packed rows only, in pack order, so
	 * the grouping needs no sort) for the members' sizes; the outer join keeps the packs no
	 * row names any more. "live * 2 < size": less than half, without rounding. */
	static const char sql[] =
		"SELECT p.id FROM blob_packs p LEFT JOIN "
		"(SELECT pack, sum(size) AS live FROM blobs WHERE pack IS NOT NULL GROUP BY pack) m "
		"ON m.pack = p.id WHERE coalesce(m.live, 0) * 2 < p.size ORDER BY p.id";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	size_t cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	if (!st)
		return PS_ESTORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*ids = ps_realloc(*ids, cap * sizeof(**ids));
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(*ids);
		*ids = NULL;
		*n = 0;
		return ps_sqlite_error(s, "find sparse blob packs");
	}
	return 0;
}

int ps_sqlite_blob_pack_delete(struct ps_store *s, int64_t id)
{
	static const char sql[] = "DELETE FROM blob_packs WHERE id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	return ps_sqlite_step_done(s, st, "delete a blob pack");
}

int ps_sqlite_blobs_unpacked(struct ps_store *s, int64_t max_size, struct ps_strv *shas)
{
	/* The first version naming a blob by the file_versions_sha index, one probe per
	 * candidate: file version ids follow the order syncs staged them (path order within a
	 * sync), so neighbours in a pack are neighbours in the tree, as a sync's packs are. */
	static const char sql[] =
		"SELECT ps_hex(b.sha), (SELECT min(f.id) FROM file_versions f WHERE f.sha = b.sha) "
		"AS first FROM blobs b WHERE b.encoding IN (0, 1) AND b.pack IS NULL AND "
		"b.size BETWEEN 1 AND ?1 ORDER BY first IS NULL, first, b.id";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, max_size);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		ps_strv_push(shas, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "list the blobs to pack");
}

int ps_sqlite_blob_packs_lock(struct ps_store *s)
{
	/* BEGIN IMMEDIATE (sqlite.c) made this transaction the only writer already. */
	(void)s;
	return 0;
}
