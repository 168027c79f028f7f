/*
 * The SQLite backend's blob housekeeping: the resumable conversion of blobs written before
 * schema 5 to the blob codec, and the figures of `projsync stats`. ps_store_blob_put/get live in
 * sqlite.c beside the other hot paths.
 */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/blobcodec.h"
#include "store/sqlite_internal.h"
#include "util/error.h"
#include "util/util.h"

/* A batch holds at most this many rows and this much raw content, so a large store converts in
 * bounded memory and a kill loses at most one batch of work. */
#define CONVERT_BATCH_ROWS 256
#define CONVERT_BATCH_BYTES (32u << 20)

/* The cursor, or done = true when the conversion finished (or there is no table: schema < 5,
 * when the migrations were not applied). */
static int convert_cursor(struct ps_store *s, char **after, bool *done)
{
	static const char sql[] = "SELECT after_sha, done FROM blob_conversion WHERE id = 1";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	*after = NULL;
	*done = true;
	if (!st)
		return PS_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*after = ps_sqlite_col_text(st, 0);
		*done = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return ps_sqlite_error(s, "read the blob conversion cursor");
	if (!*after)
		*after = ps_strdup("");
	return 0;
}

/* One batch, in the caller's transaction: rewrites the raw rows after `after`, moves the cursor
 * past every row visited. Sets *more when rows are left. */
static int convert_batch(struct ps_store *s, const char *after, size_t batch_rows,
			 void (*after_row)(void *ud, size_t row), void *ud, bool *more,
			 size_t *row_no)
{
	static const char sel[] = "SELECT sha, size, content FROM blobs WHERE sha > ? AND "
				  "encoding = 0 ORDER BY sha LIMIT ?";
	static const char upd[] = "UPDATE blobs SET encoding = ?, content = ? WHERE sha = ?";
	static const char cur[] = "UPDATE blob_conversion SET after_sha = ?, "
				  "converted = converted + ?, done = ? WHERE id = 1";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sel), *up;
	char *last = NULL;
	size_t rows = 0, bytes = 0, rewritten = 0;
	int rc = 0, step;

	if (!st)
		return PS_ESTORE;
	ps_sqlite_bind_text(st, 1, after);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)batch_rows);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *sha = (const char *)sqlite3_column_text(st, 0);
		sqlite3_int64 size = sqlite3_column_int64(st, 1);
		const void *data = sqlite3_column_blob(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		char actual[PS_SHA_HEX];
		void *enc_data = NULL;
		size_t enc_len;
		int enc = PS_BLOB_RAW;

		free(last);
		last = ps_strdup(sha);
		rows++;
		bytes += len;
		/* Only a row that still verifies is rewritten: a damaged one stays as it was, for
		 * whoever looks at it, rather than being sealed into a frame with a good checksum. */
		ps_git_blob_sha(data, len, actual);
		if (size == (sqlite3_int64)len && !strcmp(actual, sha) &&
		    (rc = ps_blobcodec_encode(s->codec, data, len, &enc, &enc_data, &enc_len)) < 0)
			break;
		if (enc != PS_BLOB_RAW) {
			up = ps_sqlite_stmt(s, upd);
			if (!up) {
				free(enc_data);
				rc = PS_ESTORE;
				break;
			}
			sqlite3_bind_int(up, 1, enc);
			sqlite3_bind_blob64(up, 2, enc_data, enc_len, SQLITE_STATIC);
			ps_sqlite_bind_text(up, 3, last);
			rc = ps_sqlite_step_done(s, up, "rewrite a blob");
			free(enc_data);
			if (rc < 0)
				break;
			rewritten++;
			if (after_row)
				after_row(ud, (*row_no)++);
		}
		if (bytes >= CONVERT_BATCH_BYTES)
			break;
	}
	if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
		rc = ps_sqlite_error(s, "read blobs to convert");
	sqlite3_reset(st);
	/* A full batch (or one cut by bytes) may have rows after it; a short one was the last. */
	*more = rc == 0 && rows > 0 && (rows == batch_rows || bytes >= CONVERT_BATCH_BYTES);
	if (rc == 0) {
		sqlite3_stmt *c = ps_sqlite_stmt(s, cur);
		if (!c) {
			rc = PS_ESTORE;
		} else {
			ps_sqlite_bind_text(c, 1, last ? last : after);
			sqlite3_bind_int64(c, 2, (sqlite3_int64)rewritten);
			sqlite3_bind_int(c, 3, !*more);
			rc = ps_sqlite_step_done(s, c, "move the blob conversion cursor");
		}
	}
	free(last);
	return rc;
}

int ps_sqlite_blob_convert(struct ps_store *s, size_t batch_rows,
			   void (*after_row)(void *ud, size_t row), void *ud)
{
	size_t row_no = 0;
	bool more = true;
	int rc;

	if (batch_rows == 0)
		batch_rows = CONVERT_BATCH_ROWS;
	/* A converted store is not written to at all (a read-only store opens as before). */
	{
		char *after;
		bool done;
		rc = convert_cursor(s, &after, &done);
		free(after);
		if (rc < 0 || done)
			return rc;
	}
	while (more) {
		char *after;
		bool done;

		if ((rc = ps_store_begin(s)) < 0)
			return rc;
		/* The cursor is read inside the batch's transaction: two processes opening the same
		 * store take turns, and neither redoes nor skips the other's batch. */
		if ((rc = convert_cursor(s, &after, &done)) < 0 || done) {
			free(after);
			if (rc < 0) {
				ps_store_rollback(s);
				return rc;
			}
			return ps_store_commit(s);
		}
		rc = convert_batch(s, after, batch_rows, after_row, ud, &more, &row_no);
		free(after);
		if (rc < 0) {
			ps_store_rollback(s);
			return rc;
		}
		if ((rc = ps_store_commit(s)) < 0)
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

int ps_store_stats(struct ps_store *s, int64_t project_id, struct ps_store_stats *out)
{
	static const char all_syncs[] =
		"SELECT count(*), coalesce(sum(status = 'succeeded'), 0), "
		"(SELECT count(*) FROM projects), (SELECT count(*) FROM file_versions) FROM syncs";
	/* length() of a BLOB reads the row header, not the content. */
	static const char all_blobs[] =
		"SELECT count(*), coalesce(sum(encoding <> 0), 0), coalesce(sum(size), 0), "
		"coalesce(sum(length(content)), 0) FROM blobs";
	static const char all_left[] =
		"SELECT count(*) FROM blobs WHERE encoding = 0 AND sha > "
		"(SELECT after_sha FROM blob_conversion WHERE id = 1 AND done = 0)";
	static const char disk[] =
		"SELECT (SELECT page_count FROM pragma_page_count()) - "
		"(SELECT freelist_count FROM pragma_freelist_count()), "
		"(SELECT page_size FROM pragma_page_size())";
	static const char one_syncs[] =
		"SELECT count(*), coalesce(sum(status = 'succeeded'), 0), 1, "
		"(SELECT count(*) FROM file_versions WHERE project_id = ?1) FROM syncs "
		"WHERE project_id = ?1";
	static const char one_blobs[] =
		"SELECT count(*), coalesce(sum(encoding <> 0), 0), coalesce(sum(size), 0), "
		"coalesce(sum(length(content)), 0) FROM blobs WHERE sha IN "
		"(SELECT sha FROM file_versions WHERE project_id = ?1)";
	struct ps_store_stats st = { 0 };
	int64_t v[4];
	int rc;

	if (project_id) {
		struct ps_project *p = NULL;
		if ((rc = ps_store_project_get_by_id(s, project_id, &p)) < 0)
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
	if ((rc = count_one(s, project_id ? one_blobs : all_blobs, project_id, v, 4,
			    "count blobs")) < 0)
		return rc;
	st.blobs = v[0];
	st.blobs_compressed = v[1];
	st.raw_bytes = v[2];
	st.stored_bytes = v[3];
	if (!project_id) {
		if ((rc = count_one(s, all_left, 0, v, 1, "count blobs left to convert")) < 0)
			return rc;
		st.unconverted_blobs = v[0];
		if ((rc = count_one(s, disk, 0, v, 2, "measure the store")) < 0)
			return rc;
		st.disk_bytes = v[0] * v[1];
	}
	*out = st;
	return 0;
}
