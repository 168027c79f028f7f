/*
 * Private to the PostgreSQL backend: the handle and the statement helpers that pg.c and
 * pg_memory.c share. Nothing outside src/store/postgres/ includes this.
 */
#ifndef PS_STORE_PG_INTERNAL_H
#define PS_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/backend.h"
#include "store/store.h"
#include "util/util.h"

/* Parameters of one statement, all sent as text except bytea ones (binary). */
struct ps_pq {
	int n, cap;
	const char **v;
	int *len;
	int *fmt;
	char **own; /* strings this struct allocated (numbers, cleaned text) */
	int nown;
};

/* Rows of one INSERT held back until the next statement (see ps_pg_defer). */
struct ps_pg_deferred {
	size_t rows, bytes;
	struct ps_pq q; /* rows x columns parameters, owned */
};

enum { PS_PG_DEFER_BLOBS, PS_PG_DEFER_CODE_BLOBS, PS_PG_DEFER_N };

struct ps_pg {
	struct ps_store_head head; /* first: store.c dispatches on it */
	PGconn *conn;
	char *url;   /* as given, to reconnect */
	char *where; /* the URL without its password, for messages */
	int tx_depth;
	bool tx_aborted;
	bool listening; /* LISTEN projsync_events is in force on conn (pg_nodes.c) */
	struct ps_blobcodec *codec; /* store/blobcodec.h: blob content at rest */
	/* Blob and code index rows put inside a transaction, sent as multi-row INSERTs before
	 * the next statement of any kind (ps_pg_run) or COMMIT, and dropped by a rollback. */
	struct ps_pg_deferred defer[PS_PG_DEFER_N];
	bool flushing;
	struct ps_pg_code *code; /* the code index's postings of this transaction (pg_code.c) */
	/* The directory a writer looked up last in this transaction (schema 26, ps_pg_dir_ids):
	 * consecutive paths of a sync share directories. Forgotten when the transaction ends: its
	 * lock on the row goes (a prune may delete it), or the row itself with a rollback. */
	struct {
		int64_t project_id, id;
		char *path;
		size_t len;
	} last_dir;
};

#define PSPG(s) ((struct ps_pg *)(s))


void ps_pq_text(struct ps_pq *p, const char *v);     /* NULL: SQL NULL; invalid UTF-8 mended */
void ps_pq_int(struct ps_pq *p, int64_t v);
void ps_pq_id(struct ps_pq *p, int64_t v);           /* <= 0: SQL NULL */
void ps_pq_bytes(struct ps_pq *p, const void *d, size_t n);
void ps_pq_path(struct ps_pq *p, const char *path);  /* a path as bytea; NULL: SQL NULL */
void ps_pq_dispose(struct ps_pq *p);

/*
 * Runs `sql` with the parameters (disposed here in every case). Returns the result (PQclear it)
 * or NULL with the error set and *rc the code: PS_ECONFLICT for a unique violation (slug
 * "constraint"), PS_ESTORE otherwise. `binary`: results in binary format (for bytea content).
 */
PGresult *ps_pg_run(struct ps_pg *g, const char *sql, struct ps_pq *p, bool binary,
		    const char *what, int *rc);
/*
 * Adds one row (the parameters of `row`, copied; `row` is disposed) to the deferred INSERT
 * `which`. Inside a transaction the row waits: every later statement on the connection
 * (ps_pg_run, so COMMIT too) first sends the waiting rows as one multi-row INSERT per table, so
 * no read of this transaction misses them, and a rollback drops them. A full batch (rows,
 * parameters or bytes) is sent at once; outside a transaction the row is sent at once. Costs
 * one round trip per batch instead of one per row: the first sync puts every blob.
 */
int ps_pg_defer(struct ps_pg *g, int which, struct ps_pq *row);
/* Runs a statement whose rows do not matter; *changed (may be NULL) gets the rows touched. */
int ps_pg_exec(struct ps_pg *g, const char *sql, struct ps_pq *p, const char *what,
	       int64_t *changed);

int64_t ps_pg_col_int(const PGresult *r, int row, int col);
/* A column of a binary-format result holding an integer (network byte order, 2, 4 or 8 bytes). */
int64_t ps_pg_col_binary_int(const PGresult *r, int row, int col);
char *ps_pg_col_text(const PGresult *r, int row, int col);  /* NULL for NULL */
char *ps_pg_col_bytea(const PGresult *r, int row, int col); /* text-format bytea as a string */

/*
 * Schema 26 (migrations/0026_dir_ids.sql): a file version names its directory by id and holds
 * its last path component. ps_pg_name_at is where `path`'s name starts: 0 for a file of the
 * root (its directory is ''), else one past its last '/' (the directory is the bytes before
 * that '/'); a '/' that starts the path separates nothing ("/x" is the root's "/x").
 */
size_t ps_pg_name_at(const char *path);
/* The length of the directory part of `path` (0 for the root). */
size_t ps_pg_dir_len(const char *path);
/* Appends bytes as one element of a bytea[] array literal being built in `arr` ("{" already
 * there; `first`: no comma before it). */
void ps_pg_bytea_elem(struct ps_buf *arr, const void *p, size_t len, bool first);
/*
 * Fills ids[i] with the id of directory (project_ids[i], paths[i] of lens[i] bytes), inserting
 * the directory rows that are missing (ON CONFLICT DO NOTHING: several writers may add the same
 * directory). Rows it finds stay locked (FOR KEY SHARE) to the end of the transaction, so the
 * prune cannot delete one before the rows naming it are written. One round trip for all of
 * them (none when every one is the last directory this transaction looked up).
 */
int ps_pg_dir_ids(struct ps_pg *g, const int64_t *project_ids, const char *const *paths,
		  const size_t *lens, size_t n, int64_t *ids);
/* SQL expression: the full path of file version `fv` in directory `d` (ps_path, 0026). */
#define FV_PATH "ps_path(d.path, fv.name)"
/*
 * SQL FROM items: the file versions `fv` of the directories `d` (the caller restricts d to a
 * project), each directory's rows read by file_versions_path. OFFSET 0 keeps the planner from
 * flattening the subquery into a join, which it ran as a scan of every project's rows once a
 * project held a good part of the store (there is no index of file_versions by project).
 */
#define DIR_FILES "dirs d CROSS JOIN LATERAL (SELECT * FROM file_versions fv " \
	"WHERE fv.dir_id = d.id OFFSET 0) fv"
/*
 * Adds to `sql` (after "WHERE ...") the condition that the full path of the file version `fv`
 * in directory `d` starts with `prefix` (nothing when NULL or empty), with its parameters
 * appended to q: an index range of dirs (the prefix's own directory and every directory whose
 * path starts with the prefix) and the exact test on the full path.
 */
void ps_pg_prefix_cond(struct ps_buf *sql, struct ps_pq *q, const char *prefix);

/* Inside a transaction: PS_ECONFLICT (slug "taken_over") unless running sync y is still at
 * y->attempt; locks the row against a takeover until the transaction ends (0: no check). */
int ps_pg_fence(struct ps_store *s, const struct ps_sync *y);
/* Resolves `at` (0 = latest) to a succeeded sync of the project: PS_ENOTFOUND for none or a
 * sync of another project, PS_ECONFLICT (not_succeeded) for one that did not succeed. */
int ps_pg_resolve_snapshot(struct ps_store *s, int64_t project_id, int64_t at, int64_t *out);
/* SQL condition: file version `fv` is in the snapshot of succeeded sync `at` (a parameter). */
#define VISIBLE_AT(at) \
	"fv.introduced_by <= " at " AND (fv.superseded_by IS NULL OR fv.superseded_by > " at ") " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by AND i.status = 'succeeded')"

/* The code index (pg_code.c): a transaction's postings are written by flush just before its
 * outermost COMMIT, with the code_blobs rows they cover; discard drops them on rollback; free
 * at close. */
int ps_pg_code_flush(struct ps_store *s);
/* After a prune removed code_blobs rows: merges every segment into one when most of the
 * documents they hold are gone (pg_code.c). */
int ps_pg_code_compact(struct ps_pg *g);
void ps_pg_code_discard(struct ps_store *s);
void ps_pg_code_free(struct ps_store *s);

/* Schema 23's conversion of blob ids to bytea (migrations/0023_blob_ids.sql), run by
 * ps_pg_migrate under the migration lock after the SQL migrations: batches of at most
 * `batch_rows` rows (0: the default), each one transaction; a delta is converted only once its
 * base was; the last step drops the hex columns. `after_row` (tests: NULL otherwise) is called
 * after each batch's rows are converted, once per row, inside the batch's transaction. */
int ps_pg_blob_convert(struct ps_store *s, size_t batch_rows,
		       void (*after_row)(void *ud, size_t row), void *ud);

/* Schema 25's compression of the code index's rows written before it (migrations/0025), run by
 * ps_pg_migrate under the migration lock after the blob conversion: batches of at most
 * `batch_rows` rows (0: the default) in (seg, first) order, each one transaction that also
 * records the last key looked at; the last drops code_rows_raw. `after_row` (tests: NULL
 * otherwise) is called after each raw row is looked at, inside the batch's transaction. */
int ps_pg_code_convert(struct ps_store *s, size_t batch_rows,
		       void (*after_row)(void *ud, size_t row), void *ud);

/* Memory entries (pg_memory.c), called by pg.c inside its transactions. */
int ps_pg_memory_finalize(struct ps_store *s, const struct ps_sync *sync);
int ps_pg_memory_discard(struct ps_store *s, int64_t sync_id);
int ps_pg_memory_remove_project(struct ps_store *s, int64_t project_id);

/* Directory trees (pg_trees.c), called by pg.c inside its transactions (see
 * src/store/sqlite/sqlite_internal.h for what each does). */
int ps_pg_trees_finalize(struct ps_store *s, const struct ps_sync *sync,
			 const struct ps_change *changes, size_t n);
int ps_pg_trees_discard(struct ps_store *s, int64_t sync_id);
int ps_pg_trees_purge(struct ps_store *s, int64_t project_id);
int ps_pg_trees_remove_project(struct ps_store *s, int64_t project_id);

#endif
