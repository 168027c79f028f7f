/*
 * Directory trees of snapshots in SQLite (table dir_trees, migration 0008): versioned rows with
 * the rules of file_versions (docs/architecture.md §4, rule 3). sqlite.c calls the hooks at the
 * end of sqlite_internal.h inside its own transactions, so a directory row becomes visible,
 * superseded or discarded together with the file versions of the same sync.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tree.h"
#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"

#define VISIBLE_AT(at) \
	"dt.introduced_by <= " at " AND (dt.superseded_by IS NULL OR dt.superseded_by > " at ") " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = dt.introduced_by AND i.status = 'succeeded')"

int ps_sqlite_dir_trees_stage(struct ps_store *s, const struct ps_sync *y,
			      const struct ps_tree_dir *dirs, size_t n)
{
	static const char sql[] =
		"INSERT INTO dir_trees (project_id, path, tree_sha, entries, introduced_by) "
		"VALUES (?, ?, ps_unhex(?), ?, ?)";
	sqlite3_stmt *st;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, sql))) {
		ps_store_rollback(s);
		return PS_ESTORE;
	}
	for (size_t i = 0; i < n; i++) {
		if (!dirs[i].sha[0])
			continue;
		sqlite3_bind_int64(st, 1, y->project_id);
		ps_sqlite_bind_text(st, 2, dirs[i].path);
		ps_sqlite_bind_text(st, 3, dirs[i].sha);
		sqlite3_bind_blob(st, 4, dirs[i].len ? (const void *)dirs[i].body : "",
				  (int)dirs[i].len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, y->id);
		if ((rc = ps_sqlite_step_done(s, st, "stage directory trees")) < 0) {
			ps_store_rollback(s);
			return rc;
		}
	}
	return ps_store_commit(s);
}

static void dir_from_row(sqlite3_stmt *st, struct ps_tree_dir *d, bool copy)
{
	const unsigned char *sha = sqlite3_column_text(st, 1);
	const void *body = sqlite3_column_blob(st, 2);
	size_t len = (size_t)sqlite3_column_bytes(st, 2);

	d->path = copy ? ps_sqlite_col_text(st, 0) : (char *)sqlite3_column_text(st, 0);
	snprintf(d->sha, sizeof(d->sha), "%s", sha ? (const char *)sha : "");
	d->len = len;
	if (!copy) {
		d->body = (unsigned char *)body;
	} else if (len) {
		d->body = ps_malloc(len);
		memcpy(d->body, body, len);
	} else {
		d->body = NULL;
	}
}

int ps_sqlite_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			   struct ps_tree_dir *out)
{
	static const char sql[] =
		"SELECT dt.path, ps_hex(dt.tree_sha), dt.entries FROM dir_trees dt "
		"WHERE dt.project_id = ?1 AND dt.path = ?3 AND " VISIBLE_AT("?2");
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, at);
	ps_sqlite_bind_text(st, 3, path);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		dir_from_row(st, out, true);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ps_sqlite_error(s, "read directory tree");
	return ps_error_set(PS_ENOTFOUND, "dir_not_found", "no stored tree for directory '%s' at "
			    "sync %lld", path, (long long)at);
}

int ps_sqlite_dir_trees_each(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb,
			     void *ud)
{
	static const char sql[] =
		"SELECT dt.path, ps_hex(dt.tree_sha), dt.entries FROM dir_trees dt "
		"WHERE dt.project_id = ?1 AND " VISIBLE_AT("?2") " ORDER BY dt.path";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ps_tree_dir d;
		int stop;

		dir_from_row(st, &d, false);
		if ((stop = cb(ud, &d)) != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "list directory trees");
}

int ps_sqlite_trees_finalize(struct ps_store *s, const struct ps_sync *y,
			     const struct ps_change *changes, size_t n)
{
	/* The directories this sync re-hashed or emptied: every one on a changed path. */
	static const char on_path[] =
		"UPDATE dir_trees SET superseded_by = ?1 WHERE project_id = ?2 AND path = ?3 "
		"AND superseded_by IS NULL AND introduced_by < ?1";
	/* ... and every one it staged (all of them when its base had none stored). */
	static const char staged[] =
		"UPDATE dir_trees SET superseded_by = ?1 WHERE project_id = ?2 "
		"AND superseded_by IS NULL AND introduced_by < ?1 AND path IN "
		"(SELECT path FROM dir_trees WHERE introduced_by = ?1)";
	sqlite3_stmt *st;
	char **dirs = NULL;
	size_t ndirs = 0;
	int rc = 0;

	if (y->base_sync_id > 0 && n > 0) {
		ps_tree_changed_dirs(changes, n, &dirs, &ndirs);
		if (!(st = ps_sqlite_stmt(s, on_path)))
			rc = PS_ESTORE;
		for (size_t i = 0; rc == 0 && i < ndirs; i++) {
			sqlite3_bind_int64(st, 1, y->id);
			sqlite3_bind_int64(st, 2, y->project_id);
			ps_sqlite_bind_text(st, 3, dirs[i]);
			rc = ps_sqlite_step_done(s, st, "supersede directory trees");
		}
		for (size_t i = 0; i < ndirs; i++)
			free(dirs[i]);
		free(dirs);
		if (rc < 0)
			return rc;
	}
	if (!(st = ps_sqlite_stmt(s, staged)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, y->id);
	sqlite3_bind_int64(st, 2, y->project_id);
	return ps_sqlite_step_done(s, st, "supersede directory trees");
}

int ps_sqlite_trees_discard(struct ps_store *s, int64_t sync_id)
{
	static const char sql[] = "DELETE FROM dir_trees WHERE introduced_by = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, sync_id);
	return ps_sqlite_step_done(s, st, "discard staged directory trees");
}

int ps_sqlite_trees_purge(struct ps_store *s, int64_t project_id)
{
	static const char sql[] =
		"DELETE FROM dir_trees WHERE project_id = ?1 AND introduced_by IN "
		"(SELECT id FROM syncs WHERE project_id = ?1 AND status IN ('failed','cancelled'))";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	return ps_sqlite_step_done(s, st, "purge failed syncs' directory trees");
}

int ps_sqlite_trees_remove_project(struct ps_store *s, int64_t project_id)
{
	static const char sql[] = "DELETE FROM dir_trees WHERE project_id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	return ps_sqlite_step_done(s, st, "remove directory trees");
}
