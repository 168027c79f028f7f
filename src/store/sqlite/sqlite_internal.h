/*
 * Private to the SQLite backend: the handle and the statement helpers that sqlite.c and the
 * backend's other files (one per subject, e.g. sqlite_memory.c) share. Nothing outside
 * src/store/ includes this.
 */
#ifndef PS_STORE_SQLITE_INTERNAL_H
#define PS_STORE_SQLITE_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>

#include "store/backend.h"
#include "store/store.h"
#include "util/util.h"

#define STMT_CACHE 512 /* well above the distinct statements of sqlite*.c (about 120) */

struct ps_store {
	struct ps_store_head head; /* first: store.c dispatches on it */
	sqlite3 *db;
	char *path;
	int tx_depth;
	bool tx_aborted;
	struct ps_blobcodec *codec; /* store/blobcodec.h: blob content at rest */
	bool blobs_raw_gone;        /* the schema-10 conversion finished (sqlite_blobs.c) */
	bool blobs_hex_gone;        /* the schema-23 conversion finished (sqlite_blobs.c) */
	struct ps_sqlite_code *code; /* the code index's postings of this transaction (sqlite_code.c) */
	struct {
		const char *sql; /* cached by the address of a string literal */
		sqlite3_stmt *stmt;
	} cache[STMT_CACHE];
};

/* A cached prepared statement for a `static const char sql[]` (keyed by its address), reset
 * and unbound; NULL with the error set on failure. Borrowed: do not finalize. */
sqlite3_stmt *ps_sqlite_stmt(struct ps_store *s, const char *sql);
/* Sets the error from the connection's last error, with `what` as context; returns PS_ESTORE. */
int ps_sqlite_error(struct ps_store *s, const char *what);
/* Steps a statement that returns no rows (a row is tolerated) and resets it. */
int ps_sqlite_step_done(struct ps_store *s, sqlite3_stmt *st, const char *what);
/* Binds a string or NULL. */
void ps_sqlite_bind_text(sqlite3_stmt *st, int i, const char *v);
/* A column as a new string, NULL for NULL. */
char *ps_sqlite_col_text(sqlite3_stmt *st, int i);

/* Registers ps_hex() and ps_unhex() (sqlite.c: object ids at rest), ps_dirname() and
 * ps_basename() (schema 26's split of a path) on a connection; the queries and migrations
 * from schema 16 on need them. Returns an SQLite result code. */
int ps_sqlite_functions(sqlite3 *db);

/*
 * Directories by id (schema 26, migrations/0026): file_versions and dir_trees name their
 * directory by a dirs row (project_id, path; '' is the root, no trailing slash) and a file
 * version keeps only its name. Everything above the backend speaks full paths.
 *
 * PS_SQLITE_FULL_PATH(d, name) is the SQL of the full path from a dirs alias and a name column;
 * its BINARY order is the byte order of full paths, which is what listings promise (it is not
 * the order of (directory, name): "a/b.c" < "a/b/x" < "a/c").
 */
#define PS_SQLITE_FULL_PATH(d, name) \
	"iif(" d ".path = '', " name ", " d ".path || '/' || " name ")"
/* Splits a path of `len` bytes at its last '/' (one at its very start does not count): the
 * directory is its first *dirlen bytes (0: the root) and the name the rest, from *name. The
 * one place a path is split. */
void ps_sqlite_split_path(const char *path, size_t len, size_t *dirlen, const char **name);
/* The id of the project's directory `dir` (`len` bytes): created when missing if `create`,
 * else PS_ENOTFOUND (no error set). */
int ps_sqlite_dir_id(struct ps_store *s, int64_t project_id, const char *dir, size_t len,
		     bool create, int64_t *id);
/* The children of directory `path` ('' the root) among the project's dirs, seen by a snapshot
 * or not, as full paths in path order, appended to `out` (sqlite_trees.c). */
int ps_sqlite_child_dirs(struct ps_store *s, int64_t project_id, const char *path,
			 struct ps_strv *out);
/* The children C of `path` with C >= from (NULL: all; a name, not a full path) whose rows
 * start before full path `until` (NULL: unbounded), a superset of those the walk needs. */
int ps_sqlite_child_dirs_range(struct ps_store *s, int64_t project_id, const char *path,
			       const char *from, const char *until, struct ps_strv *out);
/*
 * Walks a snapshot's files in byte order of their full paths without sorting them: directory
 * by directory, depth first, each directory's rows read in name order (file_versions_path) and
 * merged with its children (ps_sqlite_child_dirs) in git tree order (a child C sorts as "C/").
 * So a walk that stops early costs what it read, not the snapshot. `files_sql` lists one
 * directory's rows in name order: ?1 the project, ?2 the directory's path, ?3 the sync, ?4 the
 * first name to list (inclusive), ?5 at most how many (the walk reads a directory in batches,
 * each from after the last); its columns are the name, mode, ps_hex(sha), size and, if it has
 * six, code_blobs' id and binary (the candidate's state). `bind` (may be NULL) binds its other
 * parameters (?6 on). Paths outside [lower, upper) (NULL: unbounded) are left out, their
 * directories not entered, and the walk seeks to `lower`: in each directory on its way, the
 * rows from its rest on and the children that can hold a path at or after it (walk_dir), so
 * what lies before `lower` is not read. `cb` gets
 * each file (a path it must copy) and its state; a nonzero return stops the walk and is
 * returned.
 */
struct ps_sqlite_walk {
	int64_t project_id, at;
	const char *files_sql;
	void (*bind)(sqlite3_stmt *st, void *ud);
	const char *lower, *upper;
	int (*cb)(void *ud, const struct ps_file *f, int state);
	void *ud;
};
int ps_sqlite_walk(struct ps_store *s, const struct ps_sqlite_walk *w);

/* Resolves `at` (0 = latest) to a succeeded sync of the project: PS_ENOTFOUND for none or a
 * sync of another project, PS_ECONFLICT (not_succeeded) for one that did not succeed. */
int ps_sqlite_resolve_snapshot(struct ps_store *s, int64_t project_id, int64_t at, int64_t *out);

/* Memory entries (sqlite_memory.c), called by sqlite.c inside its transactions:
 * finalize makes a succeeded sync's staged entries active and supersedes the ones they replace;
 * discard deletes what a failed sync staged; remove_project deletes a project's entries. */
int ps_sqlite_memory_finalize(struct ps_store *s, const struct ps_sync *sync);
int ps_sqlite_memory_discard(struct ps_store *s, int64_t sync_id);
int ps_sqlite_memory_remove_project(struct ps_store *s, int64_t project_id);

/* Removes the code index rows of blobs no file version references (sqlite_code.c; inside the
 * caller's transaction, before the blobs themselves are deleted). */
int ps_sqlite_code_forget_unreferenced(struct ps_store *s);
/* After a prune, in a transaction of its own: merges the code index's segments when most of
 * the documents they hold are gone (sqlite_code.c, code_compact). */
int ps_sqlite_code_compact(struct ps_store *s);
/* Registers "projsync_trigram" (the tokenizer of schemas 14-16's code_fts, which migration 0017
 * drops: FTS5 cannot open the table without it) and ps_code_hit() on a new connection: -1 if
 * FTS5 lacks. */
int ps_sqlite_code_register(sqlite3 *db);
/*
 * The code index's postings collected by ps_sqlite_code_index_put in the open transaction:
 * flush writes them as a segment (and merges segments) just before the outermost COMMIT, so
 * they commit with the code_blobs rows they cover; discard drops them on rollback; free at
 * close.
 */
int ps_sqlite_code_flush(struct ps_store *s);
/* Schema 25's compression of the code index's rows written before it (migrations/0025), run by
 * ps_store_migrate after the SQL migrations and the blob conversions: batches of at most
 * `batch_rows` rows (0: the default) in key order, each one transaction that also records the
 * last key looked at, so a killed run loses at most one batch and the next resumes after it;
 * the last drops code_rows_raw. `after_row` (tests: NULL otherwise) is called after each raw
 * row is looked at (compressed, or left raw when that is not smaller), inside the batch's
 * transaction. */
int ps_sqlite_code_convert(struct ps_store *s, size_t batch_rows,
			   void (*after_row)(void *ud, size_t row), void *ud);
void ps_sqlite_code_discard(struct ps_store *s);
void ps_sqlite_code_free(struct ps_store *s);
/* Directory trees (sqlite_trees.c), called by sqlite.c inside its transactions: finalize
 * supersedes the previous rows of the directories on the changed paths and of those the sync
 * staged; discard deletes what a failed sync staged; purge what syncs that did not succeed left;
 * remove_project deletes a project's rows. */
int ps_sqlite_trees_finalize(struct ps_store *s, const struct ps_sync *sync,
			     const struct ps_change *changes, size_t n);
int ps_sqlite_trees_discard(struct ps_store *s, int64_t sync_id);
int ps_sqlite_trees_purge(struct ps_store *s, int64_t project_id);
int ps_sqlite_trees_remove_project(struct ps_store *s, int64_t project_id);
/* Blobs (sqlite_blobs.c). The conversions of blobs written before schema 10 (the rows left in
 * blobs_raw, migrations/0010) to the blob codec, then of those written before schema 23 (the
 * rows left in blobs_hex, migrations/0023) to 20-byte ids, run by ps_store_migrate after the
 * SQL migrations: bounded batches of at most `batch_rows` rows (0: the default; a schema-23
 * batch also takes the whole delta families of its rows), each one transaction that inserts the
 * converted rows into blobs and deletes them from the old table, so an interrupted run loses
 * at most one batch and resumes with the rows left. `after_row` (tests: NULL otherwise) is
 * called after each row is moved, inside the batch's transaction. */
int ps_sqlite_blob_convert(struct ps_store *s, size_t batch_rows,
			   void (*after_row)(void *ud, size_t row), void *ud);
/* True while blobs_raw exists: readers look there for what blobs lacks. */
bool ps_sqlite_blobs_raw_left(struct ps_store *s);
/* True while blobs_hex exists (only while a conversion runs: open finishes it). */
bool ps_sqlite_blobs_hex_left(struct ps_store *s);

#endif
