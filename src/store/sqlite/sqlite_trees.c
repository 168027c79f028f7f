/*
 * Directory trees of snapshots in SQLite (table dir_trees, migrations 0009 and 0020): versioned
 * rows with the rules of file_versions (docs/architecture.md §4, rule 3). sqlite.c calls the
 * hooks at the end of sqlite_internal.h inside its own transactions, so a directory row becomes
 * visible, superseded or discarded together with the file versions of the same sync.
 *
 * A row holds a directory's tree id only; its entries are rebuilt from the rows of the same
 * snapshot when asked (rebuild_entries).
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tree.h"
#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"

#define DT_VISIBLE_AT(at) \
	"dt.introduced_by <= " at " AND (dt.superseded_by IS NULL OR dt.superseded_by > " at ") " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = dt.introduced_by AND i.status = 'succeeded')"
/* sqlite.c's VISIBLE_AT: what every snapshot listing uses. */
#define FV_VISIBLE_AT(at) \
	"fv.introduced_by <= " at " AND (fv.superseded_by IS NULL OR fv.superseded_by > " at ") " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by AND i.status = 'succeeded')"

int ps_sqlite_dir_trees_stage(struct ps_store *s, const struct ps_sync *y,
			      const struct ps_tree_dir *dirs, size_t n)
{
	static const char sql[] =
		"INSERT INTO dir_trees (project_id, path, tree_sha, introduced_by) "
		"VALUES (?, ?, ps_unhex(?), ?)";
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
		sqlite3_bind_int64(st, 4, y->id);
		if ((rc = ps_sqlite_step_done(s, st, "stage directory trees")) < 0) {
			ps_store_rollback(s);
			return rc;
		}
	}
	return ps_store_commit(s);
}

/* The tree id of directory `path` visible at `at` into `sha`; PS_ENOTFOUND (no error set)
 * when there is none. */
static int dir_sha(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
		   size_t len, char sha[PS_SHA_HEX])
{
	static const char sql[] =
		"SELECT ps_hex(dt.tree_sha) FROM dir_trees dt "
		"WHERE dt.project_id = ?1 AND dt.path = ?3 AND " DT_VISIBLE_AT("?2") " "
		"ORDER BY dt.introduced_by DESC LIMIT 1";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, at);
	sqlite3_bind_text(st, 3, path, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		snprintf(sha, PS_SHA_HEX, "%s", v ? (const char *)v : "");
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? PS_ENOTFOUND : ps_sqlite_error(s, "read directory tree");
}

static void add_entry(struct ps_tree *t, size_t *cap, const char *name, size_t len,
		      uint32_t mode, const char *sha)
{
	struct ps_tree_entry *e;

	if (t->n == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		t->entries = ps_realloc(t->entries, *cap * sizeof(*t->entries));
	}
	e = &t->entries[t->n++];
	e->name = ps_strndup(name, len);
	e->mode = mode;
	e->size = -1;
	snprintf(e->sha, sizeof(e->sha), "%s", sha);
}

/* The version of file `path` (whose name starts at `path + plen`) visible at `at`, if any,
 * added to `t`: the one to look for when the path's first row is not. */
static int later_version(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			 size_t len, struct ps_tree *t, size_t *cap, size_t plen)
{
	static const char sql[] =
		"SELECT fv.mode, ps_hex(fv.sha) FROM file_versions fv "
		"WHERE fv.project_id = ?1 AND fv.path = ?3 AND " FV_VISIBLE_AT("?2") " "
		"ORDER BY fv.introduced_by DESC LIMIT 1";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, at);
	sqlite3_bind_text(st, 3, path, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *sha = sqlite3_column_text(st, 1);
		add_entry(t, cap, path + plen, len - plen, (uint32_t)sqlite3_column_int64(st, 0),
			  sha ? (const char *)sha : "");
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
						     : ps_sqlite_error(s, "read directory entries");
}

/*
 * The entries of directory `path` at sync `at`, from the rows: a skip scan over the
 * (project_id, path, introduced_by) index of file_versions. From a cursor inside the
 * directory's range [prefix, prefix's end), the next path stored there (visible or not: one
 * seek); a direct child is a file entry when a version of it is visible at `at`; a deeper path
 * names a subdirectory C, an entry when dir_trees has a row of prefix + C visible at `at`, and
 * the scan goes on after everything under C (prefix + C + "0", '0' being '/' + 1). So each name
 * the directory holds or ever held costs one seek (a file whose oldest version is the visible
 * one) or two, and neither a subdirectory's rows nor a file's superseded versions are walked:
 * the root is on every changed path, and reading the whole snapshot there would make every
 * re-sync cost the repository's size.
 */
static int rebuild_entries(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			   struct ps_tree *t)
{
	/* The next stored row, and whether it is the visible one: a path's first row (its
	 * oldest version) mostly is, which saves the second seek. */
#define NEXT_ROW(range) \
	"SELECT fv.path, fv.mode, ps_hex(fv.sha), " FV_VISIBLE_AT("?4") " FROM file_versions fv " \
	"WHERE fv.project_id = ?1 AND fv.path >= ?2 " range " " \
	"ORDER BY fv.path, fv.introduced_by LIMIT 1"
	static const char next_in[] = NEXT_ROW("AND fv.path < ?3");
	static const char next_root[] = NEXT_ROW("");
#undef NEXT_ROW
	size_t plen = strlen(path) + (path[0] ? 1 : 0);
	char *prefix = ps_asprintf("%s%s", path, path[0] ? "/" : "");
	char *upper = NULL;
	char *cur = ps_strdup(prefix);
	size_t curlen = plen, cap = 0;
	int rc = 0;

	if (plen) {
		upper = ps_strdup(prefix);
		upper[plen - 1] = '0';
	}
	for (;;) {
		sqlite3_stmt *st = ps_sqlite_stmt(s, upper ? next_in : next_root);
		const char *next, *rest, *slash;
		char *found;
		size_t flen;
		bool visible;

		if (!st) {
			rc = PS_ESTORE;
			break;
		}
		sqlite3_bind_int64(st, 1, project_id);
		sqlite3_bind_text(st, 2, cur, (int)curlen, SQLITE_STATIC);
		if (upper)
			sqlite3_bind_text(st, 3, upper, (int)plen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, at);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			rc = rc == SQLITE_DONE ? 0 : ps_sqlite_error(s, "read directory entries");
			break;
		}
		next = (const char *)sqlite3_column_text(st, 0);
		flen = (size_t)sqlite3_column_bytes(st, 0);
		found = ps_strndup(next ? next : "", flen);
		rest = found + plen;
		if (flen <= plen || strncmp(found, prefix, plen) != 0) {
			/* Not under the prefix (a row whose path is not valid text): past it. */
			sqlite3_reset(st);
			free(found);
			break;
		}
		slash = strchr(rest, '/');
		visible = !slash && sqlite3_column_int(st, 3);
		if (visible) {
			const unsigned char *sha = sqlite3_column_text(st, 2);
			add_entry(t, &cap, rest, flen - plen, (uint32_t)sqlite3_column_int64(st, 1),
				  sha ? (const char *)sha : "");
		}
		sqlite3_reset(st);
		if (!slash) {
			if (!visible &&
			    (rc = later_version(s, project_id, at, found, flen, t, &cap, plen)) < 0) {
				free(found);
				break;
			}
			/* The next path after this one: no path holds a NUL byte. */
			free(cur);
			cur = ps_malloc(flen + 2);
			memcpy(cur, found, flen);
			cur[flen] = '\1';
			cur[flen + 1] = '\0';
			curlen = flen + 1;
		} else {
			size_t dlen = (size_t)(slash - found);
			char sha[PS_SHA_HEX];

			rc = dir_sha(s, project_id, at, found, dlen, sha);
			if (rc == 0)
				add_entry(t, &cap, rest, (size_t)(slash - rest), PS_MODE_TREE, sha);
			else if (rc != PS_ENOTFOUND) {
				free(found);
				break;
			}
			free(cur);
			cur = ps_malloc(dlen + 2);
			memcpy(cur, found, dlen);
			cur[dlen] = '0';
			cur[dlen + 1] = '\0';
			curlen = dlen + 1;
		}
		rc = 0;
		free(found);
	}
	free(prefix);
	free(upper);
	free(cur);
	return rc;
}

int ps_sqlite_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			   struct ps_tree_dir *out)
{
	struct ps_tree t = { 0 };
	char sha[PS_SHA_HEX];
	int rc = dir_sha(s, project_id, at, path, strlen(path), sha);

	if (rc == PS_ENOTFOUND)
		return ps_error_set(PS_ENOTFOUND, "dir_not_found", "no stored tree for directory "
				    "'%s' at sync %lld", path, (long long)at);
	if (rc < 0)
		return rc;
	if ((rc = rebuild_entries(s, project_id, at, path, &t)) == 0)
		rc = ps_tree_dir_make(path, &t, out);
	ps_tree_dispose(&t);
	return rc;
}

int ps_sqlite_dir_trees_each(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb,
			     void *ud)
{
	static const char sql[] =
		"SELECT dt.path, ps_hex(dt.tree_sha) FROM dir_trees dt "
		"WHERE dt.project_id = ?1 AND " DT_VISIBLE_AT("?2") " ORDER BY dt.path";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *sha = sqlite3_column_text(st, 1);
		struct ps_tree_dir d = { .path = (char *)sqlite3_column_text(st, 0) };
		int stop;

		snprintf(d.sha, sizeof(d.sha), "%s", sha ? (const char *)sha : "");
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
