/*
 * Directory trees of snapshots in PostgreSQL (table dir_trees, migrations 0009 and 0020): the
 * rules of src/store/sqlite/sqlite_trees.c, one statement per round trip where it matters
 * (staging and the finalize's supersede are multi-row, a directory's entries are rebuilt
 * server-side by ps_dir_entries, migration 0020).
 */
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tree.h"
#include "store/postgres/pg_internal.h"
#include "util/error.h"

#define DT_VISIBLE_AT(at) \
	"dt.introduced_by <= " at " AND (dt.superseded_by IS NULL OR dt.superseded_by > " at ") " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = dt.introduced_by AND i.status = 'succeeded')"

/* Rows per multi-row INSERT: 4 parameters each. */
#define STAGE_BATCH 1000

int ps_pg_dir_trees_stage(struct ps_store *s, const struct ps_sync *y,
			  const struct ps_tree_dir *dirs, size_t n)
{
	struct ps_buf sql;
	struct ps_pq q = { 0 };
	size_t rows = 0;
	int rc = 0;
	int64_t *pids = ps_calloc(STAGE_BATCH, sizeof(*pids));
	int64_t *ids = ps_calloc(STAGE_BATCH, sizeof(*ids));
	const char **paths = ps_calloc(STAGE_BATCH, sizeof(*paths));
	size_t *lens = ps_calloc(STAGE_BATCH, sizeof(*lens));
	const struct ps_tree_dir **batch = ps_calloc(STAGE_BATCH, sizeof(*batch));

	if ((rc = ps_pg_begin(s)) < 0)
		goto out;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && dirs[i].sha[0]) {
			pids[rows] = y->project_id;
			paths[rows] = dirs[i].path;
			lens[rows] = strlen(dirs[i].path);
			batch[rows++] = &dirs[i];
		}
		if (rows == 0 || (rows < STAGE_BATCH && i < n))
			continue;
		/* A tree row names its own directory (migration 0026). */
		if ((rc = ps_pg_dir_ids(PSPG(s), pids, paths, lens, rows, ids)) < 0)
			break;
		ps_buf_init(&sql, SIZE_MAX);
		ps_buf_puts(&sql, "INSERT INTO dir_trees (project_id, dir_id, tree_sha, introduced_by) "
			    "VALUES ");
		for (size_t k = 0; k < rows; k++) {
			int b = q.n;

			ps_buf_printf(&sql, "%s($%d,$%d,ps_unhex($%d),$%d)", k ? "," : "", b + 1, b + 2,
				      b + 3, b + 4);
			ps_pq_int(&q, y->project_id);
			ps_pq_int(&q, ids[k]);
			ps_pq_text(&q, batch[k]->sha);
			ps_pq_int(&q, y->id);
		}
		{
			char *text = ps_buf_take(&sql, NULL);
			rc = ps_pg_exec(PSPG(s), text, &q, "stage directory trees", NULL);
			free(text);
		}
		rows = 0;
		if (rc < 0)
			break;
	}
	ps_pq_dispose(&q);
	if (rc < 0)
		ps_pg_rollback(s);
	else
		rc = ps_pg_commit(s);
out:
	free(pids);
	free(ids);
	free(paths);
	free(lens);
	free(batch);
	return rc;
}

int ps_pg_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
		       struct ps_tree_dir *out)
{
	/* The directory's row, then its entries (none for a row whose rows add up to nothing:
	 * the LEFT JOIN keeps the row). Text results: the names are bytea, read as hex. */
	static const char sql[] =
		"WITH d AS (SELECT dt.tree_sha FROM dirs dr JOIN dir_trees dt ON dt.dir_id = dr.id "
		"  WHERE dr.project_id = $1 AND dr.path = $3 AND " DT_VISIBLE_AT("$2") " "
		"  ORDER BY dt.introduced_by DESC LIMIT 1) "
		"SELECT e.mode, e.name, ps_hex(e.sha) FROM d "
		"LEFT JOIN LATERAL ps_dir_entries($1, $2, $4) e ON true";
	struct ps_tree t = { 0 };
	struct ps_pq q = { 0 };
	char *prefix = ps_asprintf("%s%s", path, path[0] ? "/" : "");
	PGresult *r;
	int rc = 0, rows;

	ps_pq_int(&q, project_id);
	ps_pq_int(&q, at);
	ps_pq_path(&q, path);
	ps_pq_path(&q, prefix);
	r = ps_pg_run(PSPG(s), sql, &q, false, "read directory tree", &rc);
	free(prefix);
	if (!r)
		return rc;
	if ((rows = PQntuples(r)) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "dir_not_found", "no stored tree for directory "
				    "'%s' at sync %lld", path, (long long)at);
	}
	t.entries = ps_calloc((size_t)rows, sizeof(*t.entries));
	for (int i = 0; i < rows; i++) {
		struct ps_tree_entry *e;

		if (PQgetisnull(r, i, 1))
			continue;
		e = &t.entries[t.n++];
		e->mode = (uint32_t)ps_pg_col_int(r, i, 0);
		e->name = ps_pg_col_bytea(r, i, 1);
		e->size = -1;
		snprintf(e->sha, sizeof(e->sha), "%s", PQgetvalue(r, i, 2));
	}
	PQclear(r);
	rc = ps_tree_dir_make(path, &t, out);
	ps_tree_dispose(&t);
	return rc;
}

int ps_pg_dir_trees_each(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb,
			 void *ud)
{
	static const char sql[] =
		"SELECT d.path, ps_hex(dt.tree_sha) FROM dirs d JOIN dir_trees dt ON dt.dir_id = d.id "
		"WHERE d.project_id = $1 AND " DT_VISIBLE_AT("$2") " ORDER BY d.path";
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, project_id);
	ps_pq_int(&q, at);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, true, "list directory trees", &rc)))
		return rc;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		struct ps_tree_dir d = { 0 };

		d.path = ps_strndup(PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
		snprintf(d.sha, sizeof(d.sha), "%.*s", PQgetlength(r, i, 1), PQgetvalue(r, i, 1));
		rc = cb(ud, &d);
		free(d.path);
	}
	PQclear(r);
	return rc;
}

int ps_pg_trees_finalize(struct ps_store *s, const struct ps_sync *y,
			 const struct ps_change *changes, size_t n)
{
	/* The directories this sync re-hashed or emptied (every one on a changed path) and every
	 * one it staged (all of them when its base had none stored), in one statement. */
	static const char sql[] =
		"UPDATE dir_trees SET superseded_by = $1 WHERE dir_id = ANY(ARRAY("
		"SELECT id FROM dirs WHERE project_id = $2 AND path = ANY($3::bytea[]) "
		"UNION SELECT dir_id FROM dir_trees WHERE introduced_by = $1)) "
		"AND superseded_by IS NULL AND introduced_by < $1";
	struct ps_pq q = { 0 };
	struct ps_buf arr;
	char **dirs = NULL;
	size_t ndirs = 0;
	char *text;
	int rc;

	if (y->base_sync_id > 0 && n > 0)
		ps_tree_changed_dirs(changes, n, &dirs, &ndirs);
	ps_buf_init(&arr, SIZE_MAX);
	ps_buf_puts(&arr, "{");
	for (size_t i = 0; i < ndirs; i++) {
		ps_pg_bytea_elem(&arr, dirs[i], strlen(dirs[i]), i == 0);
		free(dirs[i]);
	}
	free(dirs);
	ps_buf_puts(&arr, "}");
	text = ps_buf_take(&arr, NULL);
	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->project_id);
	ps_pq_text(&q, text);
	rc = ps_pg_exec(PSPG(s), sql, &q, "supersede directory trees", NULL);
	free(text);
	return rc;
}

int ps_pg_trees_discard(struct ps_store *s, int64_t sync_id)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, sync_id);
	return ps_pg_exec(PSPG(s), "DELETE FROM dir_trees WHERE introduced_by = $1", &q,
			  "discard staged directory trees", NULL);
}

int ps_pg_trees_purge(struct ps_store *s, int64_t project_id)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, project_id);
	return ps_pg_exec(PSPG(s),
			  "DELETE FROM dir_trees WHERE project_id = $1 AND introduced_by IN "
			  "(SELECT id FROM syncs WHERE project_id = $1 AND status IN "
			  "('failed','cancelled'))", &q, "purge failed syncs' directory trees", NULL);
}

int ps_pg_trees_remove_project(struct ps_store *s, int64_t project_id)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, project_id);
	return ps_pg_exec(PSPG(s), "DELETE FROM dir_trees WHERE dir_id IN "
			  "(SELECT id FROM dirs WHERE project_id = $1)", &q,
			  "remove directory trees", NULL);
}
