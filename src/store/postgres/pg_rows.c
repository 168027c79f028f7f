/*
 * Raw rows of the PostgreSQL backend, for `store copy` (store.h ps_store_rows_*; the tables are
 * described in store/copy.c): pages read by key, multi-row inserts, and the identity columns
 * moved past the copied ids.
 */
#include "store/postgres/pg_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/util.h"

/* Object ids this backend keeps as bytea (schemas 16 and 23); store copy speaks hex, the way the
 * queries do. */
static bool binary_sha(const struct ps_copy_table *t, const char *col)
{
	return (!strcmp(t->name, "file_versions") && !strcmp(col, "sha")) ||
	       (!strcmp(t->name, "dir_trees") && !strcmp(col, "tree_sha")) ||
	       (!strcmp(t->name, "blobs") && (!strcmp(col, "sha") || !strcmp(col, "base")));
}

/*
 * Tables whose `path` column is a directory row and a name since schema 26 (migration 0026);
 * store copy moves them with full paths (store/copy.c): joined on read, split on insert.
 */
static bool dir_named(const struct ps_copy_table *t)
{
	return !strcmp(t->name, "file_versions") || !strcmp(t->name, "dir_trees");
}

/* A column's name here, where it differs from the copy's (SQLite's): code_blobs.binary is
 * is_binary, `binary` being a keyword of PostgreSQL's. */
static const char *pg_col(const struct ps_copy_table *t, const char *col)
{
	return !strcmp(t->name, "code_blobs") && !strcmp(col, "binary") ? "is_binary" : col;
}

/* The select expression of column `col` of table `t` (aliased r). */
static void select_col(struct ps_buf *b, const struct ps_copy_table *t, const char *col)
{
	if (dir_named(t) && !strcmp(col, "path"))
		ps_buf_printf(b, "(SELECT %s FROM dirs d WHERE d.id = r.dir_id)",
			      !strcmp(t->name, "file_versions") ? "ps_path(d.path, r.name)" : "d.path");
	else if (binary_sha(t, col))
		ps_buf_printf(b, "ps_hex(r.\"%s\")", col);
	else
		ps_buf_printf(b, "r.\"%s\"", pg_col(t, col));
}

static void put_value(struct ps_pq *q, const struct ps_copy_col *col, const struct ps_copy_value *v)
{
	if (v->null)
		ps_pq_text(q, NULL);
	else if (col->type == PS_COL_INT)
		ps_pq_int(q, v->i);
	else if (col->type == PS_COL_TEXT)
		ps_pq_text(q, v->s);
	else
		ps_pq_bytes(q, v->s, v->len);
}

int ps_pg_rows_each(struct ps_store *s, const struct ps_copy_table *t, ps_copy_row_cb cb, void *ud)
{
	struct ps_copy_value *row = ps_calloc(t->ncols, sizeof(*row));
	struct ps_copy_value *last = ps_calloc(t->nkeys, sizeof(*last));
	bool after = false;
	int rc = 0;

	for (;;) {
		struct ps_buf b;
		struct ps_pq q = { 0 };
		PGresult *r;
		char *sql;
		int n;

		ps_buf_init(&b, SIZE_MAX);
		ps_buf_puts(&b, "SELECT ");
		for (size_t c = 0; c < t->ncols; c++) {
			ps_buf_puts(&b, c ? ", " : "");
			select_col(&b, t, t->cols[c].name);
		}
		ps_buf_printf(&b, " FROM \"%s\" r", t->name);
		if (after) {
			ps_buf_puts(&b, " WHERE (");
			for (size_t k = 0; k < t->nkeys; k++)
				ps_buf_printf(&b, "%sr.\"%s\"", k ? ", " : "", t->cols[k].name);
			ps_buf_puts(&b, ") > (");
			for (size_t k = 0; k < t->nkeys; k++) {
				ps_buf_printf(&b, binary_sha(t, t->cols[k].name) ? "%sps_unhex($%zu)"
										 : "%s$%zu",
					      k ? ", " : "", k + 1);
				put_value(&q, &t->cols[k], &last[k]);
			}
			ps_buf_puts(&b, ")");
		}
		ps_buf_puts(&b, " ORDER BY ");
		for (size_t k = 0; k < t->nkeys; k++)
			ps_buf_printf(&b, "%sr.\"%s\"", k ? ", " : "", t->cols[k].name);
		ps_buf_printf(&b, " LIMIT %zu", t->batch);
		sql = ps_buf_take(&b, NULL);
		r = ps_pg_run(PSPG(s), sql, &q, false, "read rows", &rc);
		free(sql);
		if (!r)
			break;
		n = PQntuples(r);
		for (int i = 0; i < n && rc == 0; i++) {
			for (size_t c = 0; c < t->ncols; c++) {
				struct ps_copy_value *v = &row[c];
				memset(v, 0, sizeof(*v));
				if (PQgetisnull(r, i, (int)c)) {
					v->null = true;
				} else if (t->cols[c].type == PS_COL_INT) {
					v->i = ps_pg_col_int(r, i, (int)c);
				} else if (t->cols[c].type == PS_COL_TEXT) {
					v->s = ps_pg_col_text(r, i, (int)c);
					v->len = strlen(v->s);
				} else {
					size_t len = 0;
					unsigned char *raw = PQunescapeBytea(
						(const unsigned char *)PQgetvalue(r, i, (int)c), &len);
					v->s = ps_malloc(len + 1);
					if (raw)
						memcpy(v->s, raw, len);
					v->s[len] = '\0';
					v->len = len;
					PQfreemem(raw);
				}
			}
			rc = cb(ud, row);
			for (size_t k = 0; k < t->nkeys; k++) {
				free(last[k].s);
				last[k] = row[k];
				row[k].s = NULL; /* now owned by last[k] */
			}
			for (size_t c = 0; c < t->ncols; c++) {
				free(row[c].s);
				row[c].s = NULL;
			}
		}
		PQclear(r);
		if (rc != 0 || (size_t)n < t->batch)
			break;
		after = true;
	}
	for (size_t k = 0; k < t->nkeys; k++)
		free(last[k].s);
	free(last);
	free(row);
	return rc;
}

int ps_pg_rows_insert(struct ps_store *s, const struct ps_copy_table *t, const struct ps_copy_value *rows,
		      size_t nrows)
{
	struct ps_buf b;
	struct ps_pq q = { 0 };
	size_t param = 0;
	char *sql;
	int rc;

	size_t path_col = t->ncols, project_col = t->ncols;
	int64_t *dir_ids = NULL;

	if (nrows == 0)
		return 0;
	if (dir_named(t)) {
		/* Full paths in (store/copy.c): each row's directory found or created here. */
		int64_t *pids = ps_calloc(nrows, sizeof(*pids));
		const char **dirs = ps_calloc(nrows, sizeof(*dirs));
		size_t *lens = ps_calloc(nrows, sizeof(*lens));
		bool file = !strcmp(t->name, "file_versions");

		for (size_t c = 0; c < t->ncols; c++) {
			if (!strcmp(t->cols[c].name, "path"))
				path_col = c;
			else if (!strcmp(t->cols[c].name, "project_id"))
				project_col = c;
		}
		dir_ids = ps_calloc(nrows, sizeof(*dir_ids));
		for (size_t r = 0; r < nrows; r++) {
			const struct ps_copy_value *pv = &rows[r * t->ncols + path_col];

			pids[r] = rows[r * t->ncols + project_col].i;
			dirs[r] = pv->s ? pv->s : "";
			lens[r] = file ? ps_pg_dir_len(dirs[r]) : strlen(dirs[r]);
		}
		rc = ps_pg_dir_ids(PSPG(s), pids, dirs, lens, nrows, dir_ids);
		free(pids);
		free(dirs);
		free(lens);
		if (rc < 0) {
			free(dir_ids);
			return rc;
		}
	}
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_printf(&b, "INSERT INTO \"%s\" (", t->name);
	for (size_t c = 0; c < t->ncols; c++) {
		if (c == path_col)
			ps_buf_printf(&b, "%sdir_id%s", c ? ", " : "",
				      !strcmp(t->name, "file_versions") ? ", name" : "");
		else
			ps_buf_printf(&b, "%s\"%s\"", c ? ", " : "", pg_col(t, t->cols[c].name));
	}
	/* OVERRIDING SYSTEM VALUE: the ids are the source's, even in identity columns. */
	ps_buf_printf(&b, ")%s VALUES ", t->identity ? " OVERRIDING SYSTEM VALUE" : "");
	for (size_t r = 0; r < nrows; r++) {
		ps_buf_puts(&b, r ? ", (" : "(");
		for (size_t c = 0; c < t->ncols; c++) {
			if (c == path_col) {
				const char *path = rows[r * t->ncols + c].s ? rows[r * t->ncols + c].s : "";

				ps_buf_printf(&b, "%s$%zu", c ? ", " : "", ++param);
				ps_pq_int(&q, dir_ids[r]);
				if (!strcmp(t->name, "file_versions")) {
					ps_buf_printf(&b, ", $%zu", ++param);
					ps_pq_path(&q, path + ps_pg_name_at(path));
				}
				continue;
			}
			ps_buf_printf(&b, binary_sha(t, t->cols[c].name) ? "%sps_unhex($%zu)" : "%s$%zu",
				      c ? ", " : "", ++param);
			put_value(&q, &t->cols[c], &rows[r * t->ncols + c]);
		}
		ps_buf_puts(&b, ")");
	}
	free(dir_ids);
	sql = ps_buf_take(&b, NULL);
	rc = ps_pg_exec(PSPG(s), sql, &q, t->name, NULL);
	free(sql);
	return rc;
}

int ps_pg_rows_done(struct ps_store *s, const struct ps_copy_table *t)
{
	char *sql;
	int rc;

	/* A table without an identity (blobs, keyed by sha) has no generator to move. */
	if (!t->identity)
		return 0;
	/* Ids are never reused (pg_code.c): a pruned blob's postings stay in its segments, so the
	 * next id is above every id a segment holds too, not only above the rows. */
	if (!strcmp(t->name, "code_blobs"))
		return ps_pg_exec(PSPG(s),
				  "SELECT setval('code_blobs_id_seq', greatest("
				  "(SELECT max(id) FROM code_blobs), "
				  "(SELECT max(max_id) FROM code_segments), 0) + 1, false)",
				  NULL, "move ids past the copied ones", NULL);
	sql = ps_asprintf("SELECT setval(pg_get_serial_sequence('%s', '%s'), "
				"coalesce((SELECT max(\"%s\") FROM \"%s\"), 0) + 1, false)",
				t->name, t->cols[0].name, t->cols[0].name, t->name);
	rc = ps_pg_exec(PSPG(s), sql, NULL, "move ids past the copied ones", NULL);

	free(sql);
	return rc;
}

int ps_pg_begin_snapshot(struct ps_store *s)
{
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	/* First statement of the transaction: every read sees the same moment of the store. */
	if ((rc = ps_pg_exec(PSPG(s), "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
			     NULL, "start a snapshot", NULL)) < 0)
		ps_pg_rollback(s);
	return rc;
}
