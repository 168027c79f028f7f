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

/*
 * The entries of directory `path` at sync `at`, from the rows: a skip scan over the
 * (project_id, path, introduced_by) index of file_versions. From a cursor in the directory's
 * range [prefix, prefix's end), the rows are read in index order, each with whether it is
 * visible at `at`: a direct child's visible version is a file entry (its other versions are
 * passed over: they lie next to it). A deeper path names a subdirectory C, an entry when
 * dir_trees has a row of prefix + C visible at `at`; the scan then seeks again after everything
 * under C (prefix + C + "0", '0' being '/' + 1). So a directory costs a range read of its own
 * files' rows plus one seek per subdirectory (that it has or ever had), and a subdirectory's
 * rows are never read: the root is on every changed path, and reading the whole snapshot
 * there would make every re-sync cost the repository's size.
 */
static int rebuild_entries(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			   struct ps_tree *t)
{
#define ROWS_FROM(range) \
	"SELECT fv.path, fv.mode, ps_hex(fv.sha), " FV_VISIBLE_AT("?4") " FROM file_versions fv " \
	"WHERE fv.project_id = ?1 AND fv.path >= ?2 " range " ORDER BY fv.path, fv.introduced_by"
	static const char rows_in[] = ROWS_FROM("AND fv.path < ?3");
	static const char rows_root[] = ROWS_FROM("");
#undef ROWS_FROM
	size_t plen = strlen(path) + (path[0] ? 1 : 0);
	char *prefix = ps_asprintf("%s%s", path, path[0] ? "/" : "");
	char *upper = NULL;
	char *cur = ps_strdup(prefix);
	size_t curlen = plen, cap = 0;
	bool more = true;
	int rc = 0;

	if (plen) {
		upper = ps_strdup(prefix);
		upper[plen - 1] = '0';
	}
	while (more && rc == 0) {
		sqlite3_stmt *st = ps_sqlite_stmt(s, upper ? rows_in : rows_root);
		char *dir = NULL;

		if (!st) {
			rc = PS_ESTORE;
			break;
		}
		sqlite3_bind_int64(st, 1, project_id);
		sqlite3_bind_text(st, 2, cur, (int)curlen, SQLITE_STATIC);
		if (upper)
			sqlite3_bind_text(st, 3, upper, (int)plen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, at);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *p = (const char *)sqlite3_column_text(st, 0);
			size_t len = (size_t)sqlite3_column_bytes(st, 0);
			const char *slash;

			if (!p || len <= plen || memcmp(p, prefix, plen) != 0)
				continue; /* not valid text: outside any directory */
			if ((slash = memchr(p + plen, '/', len - plen))) {
				dir = ps_strndup(p, (size_t)(slash - p));
				break;
			}
			if (sqlite3_column_int(st, 3)) {
				const unsigned char *sha = sqlite3_column_text(st, 2);
				add_entry(t, &cap, p + plen, len - plen,
					  (uint32_t)sqlite3_column_int64(st, 1),
					  sha ? (const char *)sha : "");
			}
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			rc = ps_sqlite_error(s, "read directory entries");
			break;
		}
		rc = 0;
		more = dir != NULL;
		if (dir) {
			size_t dlen = strlen(dir);
			char sha[PS_SHA_HEX];

			rc = dir_sha(s, project_id, at, dir, dlen, sha);
			if (rc == 0)
				add_entry(t, &cap, dir + plen, dlen - plen, PS_MODE_TREE, sha);
			if (rc == PS_ENOTFOUND)
				rc = 0;
			free(cur);
			cur = ps_malloc(dlen + 2);
			memcpy(cur, dir, dlen);
			cur[dlen] = '0';
			cur[dlen + 1] = '\0';
			curlen = dlen + 1;
			free(dir);
		}
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
