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
		"INSERT INTO dir_trees (project_id, dir_id, tree_sha, introduced_by) "
		"VALUES (?, ?, ps_unhex(?), ?)";
	sqlite3_stmt *st;
	int64_t dir_id;
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
		if ((rc = ps_sqlite_dir_id(s, y->project_id, dirs[i].path, strlen(dirs[i].path),
					   true, &dir_id)) < 0) {
			ps_store_rollback(s);
			return rc;
		}
		sqlite3_bind_int64(st, 1, y->project_id);
		sqlite3_bind_int64(st, 2, dir_id);
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
		"SELECT ps_hex(dt.tree_sha) FROM dirs d JOIN dir_trees dt ON dt.dir_id = d.id "
		"WHERE d.project_id = ?1 AND d.path = ?3 AND " DT_VISIBLE_AT("?2") " "
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
 * The children of directory `path` among the project's dirs (schema 26), as full paths in
 * path order, whether or not a snapshot sees them: a skip scan over dirs' (project_id, path)
 * index, one seek per step. The next dir after the cursor names a child C (the first component
 * after the prefix: C itself may have no row, only dirs below it), and the scan goes on after
 * C. Siblings such as "C-x" and "C.y" sort between C and C's own subdirectories ("C/..."), so
 * the children whose subdirectories have not been passed yet are kept on a stack (the last
 * found comes first in path order); a dir under the one on top sends the scan past all of it
 * (C + "0", '0' being '/' + 1). So finding the children costs a seek or two per child (that
 * the directory has or ever had), never a read of what lies below them.
 */
int ps_sqlite_child_dirs(struct ps_store *s, int64_t project_id, const char *path,
			 struct ps_strv *out)
{
	return ps_sqlite_child_dirs_range(s, project_id, path, NULL, NULL, out);
}

/*
 * The same skip scan begun at `from` and ended at `until`: every child C >= from is found (its
 * rows, D/C and D/C/..., sort at or after D/from), and none is lost by starting there: the scan
 * only ever passes over rows it has read or rows under a child it has found. A row at or past
 * `until` ends it: a child found that way could hold only paths past `until` (its own row D/C,
 * which sorts before any D/C/..., would have come first).
 */
int ps_sqlite_child_dirs_range(struct ps_store *s, int64_t project_id, const char *path,
			       const char *from, const char *until, struct ps_strv *out)
{
#define NEXT_DIR(op, range) \
	"SELECT path FROM dirs WHERE project_id = ?1 AND path " op " ?2 " range \
	" ORDER BY path LIMIT 1"
	static const char *const next[2][2] = {
		{ NEXT_DIR(">=", "AND path != ''"), NEXT_DIR(">", "AND path != ''") },
		{ NEXT_DIR(">=", "AND path < ?3"), NEXT_DIR(">", "AND path < ?3") },
	};
#undef NEXT_DIR
	struct ps_strv open = { 0 }; /* children found, each with its '/' */
	bool after = false; /* whether the cursor itself is passed over (a child is; the prefix
			     * is not: "a/" is a child of "a" in a path no source writes) */
	size_t plen = strlen(path) + (path[0] ? 1 : 0);
	char *prefix = ps_asprintf("%s%s", path, path[0] ? "/" : "");
	char *upper = NULL;
	char *cur = ps_asprintf("%s%s", prefix, from ? from : "");
	size_t curlen = strlen(cur);
	int rc = 0;

	if (plen) {
		upper = ps_strdup(prefix);
		upper[plen - 1] = '0';
	}
	for (;;) {
		char *p = NULL, *child;
		const char *slash;
		size_t len = 0, dlen;
		bool skip = false;
		sqlite3_stmt *st = ps_sqlite_stmt(s, next[upper != NULL][after]);

		if (!st) {
			rc = PS_ESTORE;
			break;
		}
		sqlite3_bind_int64(st, 1, project_id);
		sqlite3_bind_text(st, 2, cur, (int)curlen, SQLITE_STATIC);
		if (upper)
			sqlite3_bind_text(st, 3, upper, (int)plen, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && sqlite3_column_text(st, 0)) {
			len = (size_t)sqlite3_column_bytes(st, 0);
			p = ps_strndup((const char *)sqlite3_column_text(st, 0), len);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			free(p);
			rc = ps_sqlite_error(s, "read directories");
			break;
		}
		rc = 0;
		if (!p || len < plen || memcmp(p, prefix, plen) != 0 ||
		    (until && strcmp(p, until) >= 0)) {
			free(p);
			break; /* no more (a path that is not valid text ends the scan too) */
		}
		/* Children whose subdirectories lie before p are done with. */
		while (open.n > 0) {
			const char *top = open.v[open.n - 1];
			size_t tlen = strlen(top);

			if (len >= tlen && memcmp(p, top, tlen) == 0) {
				/* Under it: on past all of it. */
				free(cur);
				cur = ps_strdup(top);
				cur[tlen - 1] = '0';
				curlen = tlen;
				after = false;
				skip = true;
				free(open.v[--open.n]);
				break;
			}
			if (strcmp(p, top) < 0)
				break;
			free(open.v[--open.n]);
		}
		if (skip) {
			free(p);
			continue;
		}
		/* The component after the prefix; it may be empty in a path no source writes
		 * ("a//b": "a/" is a child of "a"), and a leading '/' is part of it ("/x" is a
		 * child of the root, ps_sqlite_split_path). */
		slash = len > plen ? memchr(p + plen + 1, '/', len - plen - 1) : NULL;
		dlen = slash ? (size_t)(slash - p) : len;
		p[dlen] = '\0';
		ps_strv_push(out, p);
		free(cur);
		if (slash) {
			/* C has no row of its own, only dirs below it (p is one): its siblings
			 * "C-x" that sort before p were read already (the scan went from before C
			 * straight to p), so going on after C would find them again. On past all
			 * of C. */
			p[dlen] = '0';
			cur = p;
			curlen = dlen + 1;
			after = false;
			continue;
		}
		child = ps_asprintf("%s/", p);
		ps_strv_push(&open, child);
		free(child);
		cur = p;
		curlen = dlen;
		after = true;
	}
	ps_strv_dispose(&open);
	free(prefix);
	free(upper);
	free(cur);
	return rc;
}

/*
 * The entries of directory `path` at sync `at`, from the rows (schema 26): its files are the
 * visible versions among the rows of its dirs row (one range of file_versions_path), its
 * subdirectories those of its children (ps_sqlite_child_dirs) that have a tree visible at `at`.
 * So a directory costs a range read of its own files' rows plus a seek or two per
 * subdirectory (that it has or ever had), and a subdirectory's rows are never read: the root is
 * on every changed path, and reading the whole snapshot there would make every re-sync cost
 * the repository's size.
 */
static int rebuild_entries(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			   struct ps_tree *t)
{
	static const char files[] =
		"SELECT fv.name, fv.mode, ps_hex(fv.sha) FROM dirs d "
		"JOIN file_versions fv ON fv.dir_id = d.id "
		"WHERE d.project_id = ?1 AND d.path = ?2 AND " FV_VISIBLE_AT("?3");
	struct ps_strv children = { 0 };
	size_t plen = strlen(path) + (path[0] ? 1 : 0), cap = 0;
	sqlite3_stmt *st = ps_sqlite_stmt(s, files);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	ps_sqlite_bind_text(st, 2, path);
	sqlite3_bind_int64(st, 3, at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const unsigned char *sha = sqlite3_column_text(st, 2);

		if (name)
			add_entry(t, &cap, name, (size_t)sqlite3_column_bytes(st, 0),
				  (uint32_t)sqlite3_column_int64(st, 1), sha ? (const char *)sha : "");
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ps_sqlite_error(s, "read directory entries");
	if ((rc = ps_sqlite_child_dirs(s, project_id, path, &children)) < 0)
		goto out;
	for (size_t i = 0; i < children.n; i++) {
		size_t dlen = strlen(children.v[i]);
		char sha[PS_SHA_HEX];

		rc = dir_sha(s, project_id, at, children.v[i], dlen, sha);
		if (rc == 0)
			add_entry(t, &cap, children.v[i] + plen, dlen - plen, PS_MODE_TREE, sha);
		else if (rc == PS_ENOTFOUND)
			rc = 0;
		else
			break;
	}
out:
	ps_strv_dispose(&children);
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
		"SELECT d.path, ps_hex(dt.tree_sha) FROM dirs d JOIN dir_trees dt ON dt.dir_id = d.id "
		"WHERE d.project_id = ?1 AND " DT_VISIBLE_AT("?2") " ORDER BY d.path";
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
		"UPDATE dir_trees SET superseded_by = ?1 "
		"WHERE dir_id = (SELECT id FROM dirs WHERE project_id = ?2 AND path = ?3) "
		"AND superseded_by IS NULL AND introduced_by < ?1";
	/* ... and every one it staged (all of them when its base had none stored). */
	static const char staged[] =
		"UPDATE dir_trees SET superseded_by = ?1 WHERE project_id = ?2 "
		"AND superseded_by IS NULL AND introduced_by < ?1 AND dir_id IN "
		"(SELECT dir_id FROM dir_trees WHERE introduced_by = ?1)";
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
	/* By the project's directories, as for its file versions (sqlite.c). */
	static const char sql[] =
		"DELETE FROM dir_trees WHERE dir_id IN (SELECT id FROM dirs WHERE project_id = ?)";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	return ps_sqlite_step_done(s, st, "remove directory trees");
}
