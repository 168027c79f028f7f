/*
 * Raw rows of the SQLite backend, for `store copy` (store.h ps_store_rows_*; the tables are
 * described in store/copy.c). Reads page by key with a row-value comparison, so each page is
 * one indexed range read whatever the table's size.
 */
#include "store/sqlite/sqlite_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/util.h"

/* While a conversion of blobs written before schema 10 is under way (sqlite_blobs.c), the rows
 * it has not moved yet are in blobs_raw, raw and with hex ids: the copy reads both tables as
 * one (a row is in exactly one of them, moves being one transaction each). Those are never in
 * a pack (schema 27). */
static const char blobs_with_raw[] =
	"(SELECT sha, size, encoding, content, base, pack, pack_offset FROM blobs UNION ALL "
	"SELECT ps_unhex(sha), size, 0 AS encoding, content, NULL AS base, NULL AS pack, "
	"NULL AS pack_offset FROM blobs_raw) AS blobs";

/* Object ids this backend keeps as 20 bytes (schemas 16 and 23); store copy speaks hex, the way the
 * queries do. */
static bool binary_sha(const struct ps_copy_table *t, const char *col)
{
	return (!strcmp(t->name, "file_versions") && !strcmp(col, "sha")) ||
	       (!strcmp(t->name, "dir_trees") && !strcmp(col, "tree_sha")) ||
	       (!strcmp(t->name, "blobs") && (!strcmp(col, "sha") || !strcmp(col, "base")));
}

/*
 * Schema 26 keeps a file version's and a directory tree's directory in dirs, by id; store copy
 * speaks full paths (the contract at the top of store/copy.c). DIRS_NAME: `path` is the dirs row
 * plus the row's `name` (file_versions); DIRS_SELF: `path` is the dirs row's path itself
 * (dir_trees). Rows are read with their dirs row joined and written with it found or created.
 */
enum dir_layout { DIRS_NONE, DIRS_NAME, DIRS_SELF };

static enum dir_layout dir_layout(const struct ps_copy_table *t)
{
	return !strcmp(t->name, "file_versions") ? DIRS_NAME
	       : !strcmp(t->name, "dir_trees")   ? DIRS_SELF
						 : DIRS_NONE;
}

/*
 * code_postings keeps (segment, first trigram) packed in one integer key, (seg << 24) | first
 * (sqlite_code.c), the order of the pair: the copy's (seg, first) are computed from it, and its
 * pages and inserts go by the key itself, so each page stays one rowid range.
 */
static bool packed_key(const struct ps_copy_table *t)
{
	return !strcmp(t->name, "code_postings");
}

static bool is_path(const struct ps_copy_table *t, size_t c)
{
	return dir_layout(t) != DIRS_NONE && !strcmp(t->cols[c].name, "path");
}

static char *select_sql(struct ps_store *s, const struct ps_copy_table *t, bool after)
{
	enum dir_layout dl = dir_layout(t);
	const char *q = dl != DIRS_NONE ? "t." : ""; /* the table's alias, when dirs is joined */
	struct ps_buf b;

	ps_buf_init(&b, SIZE_MAX);
	if (packed_key(t)) {
		/* seg, first, then the other columns as they are */
		ps_buf_puts(&b, "SELECT key >> 24, key & 16777215");
		for (size_t c = 2; c < t->ncols; c++)
			ps_buf_printf(&b, ", \"%s\"", t->cols[c].name);
		ps_buf_printf(&b, " FROM \"%s\"%s ORDER BY key LIMIT %zu", t->name,
			      after ? " WHERE key > ((?1 << 24) | ?2)" : "", t->batch);
		return ps_buf_take(&b, NULL);
	}
	ps_buf_puts(&b, "SELECT ");
	for (size_t c = 0; c < t->ncols; c++) {
		if (is_path(t, c))
			ps_buf_printf(&b, "%s%s", c ? ", " : "",
				      dl == DIRS_NAME ? PS_SQLITE_FULL_PATH("d", "t.name") : "d.path");
		else
			ps_buf_printf(&b, binary_sha(t, t->cols[c].name) ? "%sps_hex(%s\"%s\")"
									 : "%s%s\"%s\"",
				      c ? ", " : "", q, t->cols[c].name);
	}
	if (!strcmp(t->name, "blobs") && ps_sqlite_blobs_raw_left(s))
		ps_buf_printf(&b, " FROM %s", blobs_with_raw);
	else if (dl != DIRS_NONE)
		ps_buf_printf(&b, " FROM \"%s\" t JOIN dirs d ON d.id = t.dir_id", t->name);
	else
		ps_buf_printf(&b, " FROM \"%s\"", t->name);
	if (after) {
		ps_buf_puts(&b, " WHERE (");
		for (size_t k = 0; k < t->nkeys; k++)
			ps_buf_printf(&b, "%s%s\"%s\"", k ? ", " : "", q, t->cols[k].name);
		ps_buf_puts(&b, ") > (");
		for (size_t k = 0; k < t->nkeys; k++)
			ps_buf_printf(&b, "%s%s", k ? ", " : "",
				      binary_sha(t, t->cols[k].name) ? "ps_unhex(?)" : "?");
		ps_buf_puts(&b, ")");
	}
	ps_buf_puts(&b, " ORDER BY ");
	for (size_t k = 0; k < t->nkeys; k++)
		ps_buf_printf(&b, "%s%s\"%s\"", k ? ", " : "", q, t->cols[k].name);
	ps_buf_printf(&b, " LIMIT %zu", t->batch);
	return ps_buf_take(&b, NULL);
}

static void bind_value(sqlite3_stmt *st, int i, const struct ps_copy_col *col, const struct ps_copy_value *v)
{
	if (v->null)
		sqlite3_bind_null(st, i);
	else if (col->type == PS_COL_INT)
		sqlite3_bind_int64(st, i, v->i);
	else if (col->type == PS_COL_BLOB)
		sqlite3_bind_blob64(st, i, v->s, v->len, SQLITE_TRANSIENT);
	else
		sqlite3_bind_text64(st, i, v->s, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
}

static void read_value(sqlite3_stmt *st, int i, const struct ps_copy_col *col, struct ps_copy_value *v)
{
	memset(v, 0, sizeof(*v));
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		v->null = true;
		return;
	}
	if (col->type == PS_COL_INT) {
		v->i = sqlite3_column_int64(st, i);
	} else if (col->type == PS_COL_BLOB) {
		v->s = (char *)sqlite3_column_blob(st, i);
		v->len = (size_t)sqlite3_column_bytes(st, i);
		if (!v->s)
			v->s = (char *)"";
	} else {
		v->s = (char *)sqlite3_column_text(st, i);
		v->len = (size_t)sqlite3_column_bytes(st, i);
	}
}

int ps_sqlite_rows_each(struct ps_store *s, const struct ps_copy_table *t, ps_copy_row_cb cb, void *ud)
{
	struct ps_copy_value *row = ps_calloc(t->ncols, sizeof(*row));
	struct ps_copy_value *last = ps_calloc(t->nkeys, sizeof(*last));
	bool after = false;
	int rc = 0;

	for (;;) {
		char *sql = select_sql(s, t, after);
		sqlite3_stmt *st = NULL;
		size_t n = 0;
		int step;

		if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
			free(sql);
			rc = ps_sqlite_error(s, "read rows");
			break;
		}
		free(sql);
		for (size_t k = 0; after && k < t->nkeys; k++)
			bind_value(st, (int)k + 1, &t->cols[k], &last[k]);
		while ((step = sqlite3_step(st)) == SQLITE_ROW) {
			for (size_t c = 0; c < t->ncols; c++)
				read_value(st, (int)c, &t->cols[c], &row[c]);
			n++;
			if ((rc = cb(ud, row)) != 0)
				break;
			/* The key of the last row read: where the next page starts. */
			for (size_t k = 0; k < t->nkeys; k++) {
				free(last[k].s);
				last[k] = row[k];
				if (row[k].s)
					last[k].s = ps_strndup(row[k].s, row[k].len);
			}
		}
		if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
			rc = ps_sqlite_error(s, "read rows");
		sqlite3_finalize(st);
		if (rc != 0 || n < t->batch)
			break;
		after = true;
	}
	for (size_t k = 0; k < t->nkeys; k++)
		free(last[k].s);
	free(last);
	free(row);
	return rc;
}

int ps_sqlite_rows_insert(struct ps_store *s, const struct ps_copy_table *t,
			  const struct ps_copy_value *rows, size_t nrows)
{
	struct ps_buf b;
	sqlite3_stmt *st = NULL;
	char *sql;
	int rc = 0;

	enum dir_layout dl = dir_layout(t);
	size_t project = t->ncols;

	ps_buf_init(&b, SIZE_MAX);
	ps_buf_printf(&b, "INSERT INTO \"%s\" (", t->name);
	for (size_t c = packed_key(t) ? 2 : 0; c < t->ncols; c++) {
		if (packed_key(t) && c == 2)
			ps_buf_printf(&b, "key, \"%s\"", t->cols[c].name);
		else if (is_path(t, c))
			ps_buf_printf(&b, "%s%s", c ? ", " : "",
				      dl == DIRS_NAME ? "dir_id, name" : "dir_id");
		else
			ps_buf_printf(&b, "%s\"%s\"", c ? ", " : "", t->cols[c].name);
		if (!strcmp(t->cols[c].name, "project_id"))
			project = c;
	}
	ps_buf_puts(&b, ") VALUES (");
	if (packed_key(t))
		ps_buf_puts(&b, "(?1 << 24) | ?2");
	for (size_t c = packed_key(t) ? 2 : 0; c < t->ncols; c++)
		ps_buf_printf(&b, "%s%s", c ? ", " : "",
			      is_path(t, c) && dl == DIRS_NAME ? "?, ?"
			      : binary_sha(t, t->cols[c].name) ? "ps_unhex(?)"
								: "?");
	ps_buf_puts(&b, ")");
	sql = ps_buf_take(&b, NULL);
	if (dl != DIRS_NONE && project == t->ncols) {
		free(sql);
		return ps_error_set(PS_EINVAL, "bad_table", "%s without project_id", t->name);
	}
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		free(sql);
		return ps_sqlite_error(s, "write rows");
	}
	free(sql);
	for (size_t r = 0; r < nrows && rc == 0; r++) {
		const struct ps_copy_value *row = &rows[r * t->ncols];
		int i = 1;

		for (size_t c = 0; c < t->ncols && rc == 0; c++) {
			const struct ps_copy_value *v = &row[c];
			const char *name = NULL;
			size_t dirlen = 0;
			int64_t dir_id;

			if (!is_path(t, c)) {
				bind_value(st, i++, &t->cols[c], v);
				continue;
			}
			if (v->null || row[project].null) {
				rc = ps_error_set(PS_EINVAL, "bad_row", "%s row without a path",
						  t->name);
				break;
			}
			if (dl == DIRS_NAME)
				ps_sqlite_split_path(v->s, v->len, &dirlen, &name);
			else
				dirlen = v->len;
			/* A statement of its own: `st` keeps its bindings meanwhile. */
			if ((rc = ps_sqlite_dir_id(s, row[project].i, v->s, dirlen, true,
						   &dir_id)) < 0)
				break;
			sqlite3_bind_int64(st, i++, dir_id);
			if (dl == DIRS_NAME)
				sqlite3_bind_text64(st, i++, name, v->len - (size_t)(name - v->s),
						    SQLITE_TRANSIENT, SQLITE_UTF8);
		}
		if (rc < 0)
			break;
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = ps_sqlite_error(s, t->name);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

int ps_sqlite_rows_done(struct ps_store *s, const struct ps_copy_table *t)
{
	/* Ids inserted explicitly already move AUTOINCREMENT's sqlite_sequence (blob_packs,
	 * schema 27: never below the largest id inserted) and max(rowid). */
	(void)s;
	(void)t;
	return 0;
}
