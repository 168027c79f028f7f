/*
 * Private to src/store/: how store.c dispatches the functions of store.h to a backend. Every
 * backend's handle starts with a struct ps_store_head; its `ops` table says which backend answers.
 * A NULL `ops` is the SQLite backend, so its handle (calloc'd in sqlite.c) needs no setup for it.
 * Each backend defines ps_<backend>_<name> for every function of store.h, with the same contract.
 */
#ifndef PS_STORE_BACKEND_H
#define PS_STORE_BACKEND_H

#include "store/store.h"

struct ps_memory_entry;
struct ps_blobcodec;

/*
 * A blob's row as stored (docs/architecture.md §4a): the codec's (encoding, content) beside
 * the uncompressed size, and for a delta the blob it was compressed against. The backends only
 * move rows; src/store/blobs.c encodes, decodes and follows delta chains, so every backend
 * holds the same bytes.
 */
struct ps_blob_row {
	int encoding;            /* store/blobcodec.h */
	int64_t size;            /* of the uncompressed content */
	char base[PS_SHA_HEX];   /* the delta's base blob, "" for any other encoding */
	int64_t pack;            /* PS_BLOB_PACKED: the blob_packs id holding it; 0 otherwise */
	int64_t pack_offset;     /* PS_BLOB_PACKED: where its bytes start in the pack's content */
	void *content;           /* the stored bytes; a row read by blob_row_get owns them */
	size_t len;
	bool unconverted;        /* SQLite: read from blobs_raw (schema 10's conversion not done
				  * with it): no delta may name it as base, the foreign key points
				  * into blobs */
};

/*
 * A pack (schema 27, store/blobcodec.h PS_BLOB_PACKED): small blobs' contents one after another,
 * `size` bytes in all, stored as one zstd frame (`content`, `len` bytes). Written once, never
 * changed; deleted when no blob row names it any more. Ids are never reused (SQLite
 * AUTOINCREMENT, a PostgreSQL identity), so a reader may cache a decoded pack by id.
 */
struct ps_blob_pack_row {
	int64_t id;
	int64_t size;
	void *content;           /* a row read by blob_pack_get owns them */
	size_t len;
};

struct ps_store_ops {
	void (*free)(struct ps_store *s);
	int (*migrate)(struct ps_store *s, int *from, int *to);
	int (*begin)(struct ps_store *s);
	int (*commit)(struct ps_store *s);
	void (*rollback)(struct ps_store *s);
	int (*project_add)(struct ps_store *s, struct ps_project *p);
	int (*project_update)(struct ps_store *s, const struct ps_project *p);
	int (*project_get)(struct ps_store *s, const char *name, struct ps_project **out);
	int (*project_get_by_id)(struct ps_store *s, int64_t id, struct ps_project **out);
	int (*project_list)(struct ps_store *s, struct ps_project ***out, size_t *n);
	int (*project_remove)(struct ps_store *s, const char *name);
	int (*project_rename)(struct ps_store *s, int64_t id, const char *name, const char *source);
	int (*sync_create)(struct ps_store *s, int64_t project_id, const char *branch, const char *trigger, const struct ps_owner *owner, struct ps_sync **out);
	int (*sync_claim)(struct ps_store *s, int64_t sync_id, const struct ps_owner *owner);
	int (*sync_get)(struct ps_store *s, int64_t id, struct ps_sync **out);
	int (*sync_list)(struct ps_store *s, int64_t project_id, int64_t limit, int64_t before_id, struct ps_sync ***out, size_t *n);
	int (*sync_active)(struct ps_store *s, int64_t project_id, struct ps_sync **out);
	int (*sync_last_succeeded)(struct ps_store *s, int64_t project_id, int64_t at_or_before, struct ps_sync **out);
	int (*sync_save_progress)(struct ps_store *s, const struct ps_sync *sync, int64_t lease_ms);
	int (*sync_request_cancel)(struct ps_store *s, int64_t id);
	int (*sync_cancel_requested)(struct ps_store *s, int64_t id, bool *out);
	int (*sync_fail)(struct ps_store *s, struct ps_sync *sync, enum ps_sync_status status, const char *code, const char *message, const struct ps_event *final_event);
	int (*sync_finalize)(struct ps_store *s, struct ps_sync *sync, const struct ps_change *changes, size_t n, const struct ps_event *final_event);
	int (*sync_fold)(struct ps_store *s, struct ps_sync *sync);
	int (*reap)(struct ps_store *s, int64_t project_id, int *reaped);
	int (*sync_next_queued)(struct ps_store *s, int64_t *id);
	int (*sync_count_by_status)(struct ps_store *s, int64_t counts[PS_SYNC_CANCELLED + 1]);
	int (*event_append)(struct ps_store *s, const struct ps_event *ev);
	int (*event_list)(struct ps_store *s, int64_t sync_id, int64_t after_seq, int64_t limit, struct ps_stored_event **out, size_t *n);
	int (*files_stage)(struct ps_store *s, const struct ps_sync *sync, const struct ps_change *changes, size_t n);
	int (*snapshot_page)(struct ps_store *s, int64_t project_id, int64_t at, const char *prefix, const char *after, int64_t limit, ps_file_cb cb, void *ud);
	int (*snapshot_file)(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_file *out);
	int (*diff)(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b, struct ps_change **out, size_t *n);
	int (*blob_row_put)(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
	int (*blob_row_get)(struct ps_store *s, const char *sha, struct ps_blob_row *out);
	int (*blob_row_replace)(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
	struct ps_blobcodec *(*blobcodec)(struct ps_store *s);
	int (*blob_have)(struct ps_store *s, const char *const *shas, size_t n, bool *have);
	int (*blob_pack_put)(struct ps_store *s, const struct ps_blob_pack_row *row, int64_t *id);
	int (*blob_pack_get)(struct ps_store *s, int64_t id, struct ps_blob_pack_row *out);
	int (*blob_pack_members)(struct ps_store *s, int64_t id, struct ps_strv *shas);
	int (*blob_packs_sparse)(struct ps_store *s, int64_t **ids, size_t *n);
	int (*blob_pack_delete)(struct ps_store *s, int64_t id);
	int (*blobs_unpacked)(struct ps_store *s, int64_t max_size, struct ps_strv *shas);
	int (*blob_packs_lock)(struct ps_store *s);
	int (*memory_stage)(struct ps_store *s, const struct ps_sync *sync, const struct ps_memory_entry *entries, size_t n);
	int (*memory_stage_removals)(struct ps_store *s, const struct ps_sync *sync, const char *const *paths, size_t n);
	int (*project_memory_rescan)(struct ps_store *s, int64_t project_id, int64_t *generation);
	int (*sync_memory_rescan)(struct ps_store *s, int64_t sync_id, int64_t generation);
	int (*project_blob_rescan)(struct ps_store *s, int64_t project_id, int64_t *generation);
	int (*sync_blob_rescan)(struct ps_store *s, int64_t sync_id, int64_t generation);
	int (*snapshot_missing_blobs)(struct ps_store *s, int64_t project_id, int64_t at, int64_t max_size, ps_file_cb cb, void *ud);
	int (*memory_active_paths)(struct ps_store *s, int64_t project_id, struct ps_memory_entry **out, size_t *n);
	int (*memory_search)(struct ps_store *s, int64_t project_id, const char *query, bool include_superseded, int64_t limit, int64_t offset, struct ps_memory_entry **out, size_t *n);
	int (*memory_get)(struct ps_store *s, int64_t id, struct ps_memory_entry **out);
	int (*memory_history)(struct ps_store *s, int64_t id, struct ps_memory_entry **out, size_t *n);
	int (*memory_add)(struct ps_store *s, int64_t project_id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out);
	int (*memory_restore)(struct ps_store *s, int64_t id, struct ps_memory_entry **out, bool *restored);
	int (*memory_edit)(struct ps_store *s, int64_t id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out, bool *changed);
	int (*memory_delete)(struct ps_store *s, int64_t id, struct ps_memory_entry **out);
	int (*webhook_delivery_add)(struct ps_store *s, const char *delivery_id, const char *event);
	int (*project_schedule_save)(struct ps_store *s, const struct ps_project *p);
	int (*schedule_claim)(struct ps_store *s, int64_t now, int64_t default_max_failures, int64_t *project_id);
	int (*schedule_pending)(struct ps_store *s, int64_t now, int64_t default_max_failures, bool *pending);
	int (*prune_syncs)(struct ps_store *s, int64_t project_id, int64_t start_sync_id, struct ps_prune_stats *out);
	int (*prune_blobs)(struct ps_store *s, struct ps_prune_stats *out);
	int (*compact)(struct ps_store *s);
	int (*prune_gate_set)(struct ps_store *s, int64_t until, int64_t only_if);
	int (*prune_gate_get)(struct ps_store *s, int64_t *until);
	int (*code_index_put)(struct ps_store *s, const char *sha, const void *data, size_t len, bool binary);
	int (*code_index_have)(struct ps_store *s, const char *const *shas, size_t n, bool *indexed);
	int (*code_unindexed)(struct ps_store *s, int64_t project_id, struct ps_strv *out);
	int (*code_index_done)(struct ps_store *s, int64_t project_id);
	int (*code_candidates)(struct ps_store *s, int64_t project_id, int64_t at, const struct ps_code_query *q, const char *prefix, const char *from_path, size_t limit, int64_t *snap, struct ps_code_candidate **out, size_t *n);
	int (*dir_trees_stage)(struct ps_store *s, const struct ps_sync *sync, const struct ps_tree_dir *dirs, size_t n);
	int (*dir_tree_get)(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_tree_dir *out);
	int (*dir_trees_each)(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb, void *ud);
	int (*stats)(struct ps_store *s, int64_t project_id, struct ps_store_stats *out);
	int (*sync_commits_put)(struct ps_store *s, const struct ps_sync *sync, const struct ps_commit *v, size_t n);
	int (*sync_commits)(struct ps_store *s, int64_t sync_id, int64_t limit, struct ps_commit **out, size_t *n);
};

struct ps_store_head {
	const struct ps_store_ops *ops;
};

extern const struct ps_store_ops ps_sqlite_ops;
extern const struct ps_store_ops ps_pg_ops;

/* The blob row ops, dispatched by store.c for blobs.c. */
int ps_store_blob_row_put(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
int ps_store_blob_row_get(struct ps_store *s, const char *sha, struct ps_blob_row *out);
int ps_store_blob_row_replace(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
struct ps_blobcodec *ps_store_blobcodec(struct ps_store *s);

/*
 * The pack ops (schema 27), dispatched by store.c for blobs.c; each runs in the caller's
 * transaction.
 * - blob_pack_put: inserts a pack (row->id ignored), sets *id to its new id.
 * - blob_pack_get: reads one; PS_ENOTFOUND (slug "blob_pack_missing") if there is none.
 * - blob_pack_members: pushes the hex SHAs of the blob rows naming pack `id` onto `shas`, in
 *   order of pack_offset.
 * - blob_packs_sparse: the ids (malloc'd array, caller frees) of the packs whose member rows'
 *   sizes add up to less than half the pack's size, those without any member included, in
 *   order of id.
 * - blob_pack_delete: deletes pack `id`; the caller has made sure no blob row names it (the
 *   foreign key, checked at commit, refuses it otherwise). Deleting a pack that is not there
 *   is no error.
 */
int ps_store_blob_pack_put(struct ps_store *s, const struct ps_blob_pack_row *row, int64_t *id);
int ps_store_blob_pack_get(struct ps_store *s, int64_t id, struct ps_blob_pack_row *out);
int ps_store_blob_pack_members(struct ps_store *s, int64_t id, struct ps_strv *shas);
int ps_store_blob_packs_sparse(struct ps_store *s, int64_t **ids, size_t *n);
int ps_store_blob_pack_delete(struct ps_store *s, int64_t id);
/* For ps_store_blobs_pack_existing: pushes onto `shas` the hex SHAs of the blobs stored plain
 * (raw or zstd: neither a delta nor packed) of 1 to max_size bytes, in the order of the first
 * file version that names each (the order the syncs staged them: path order within a sync),
 * blobs no version names last. Reads only; one query. */
int ps_store_blobs_unpacked(struct ps_store *s, int64_t max_size, struct ps_strv *shas);
/* For ps_store_blobs_pack_existing, first in each of its transactions: holds any other
 * process's packing of existing blobs back until this transaction ends, so a row read as plain
 * is not packed by both (PostgreSQL reads each statement at its own moment; SQLite's
 * transactions are one writer at a time already: nothing to do). */
int ps_store_blob_packs_lock(struct ps_store *s);

/*
 * For ps_store_prune_blobs, in its transaction, after it deleted the unreferenced blob rows:
 * deletes the packs no row names any more and rewrites each sparse pack's remaining members
 * into new packs (rows updated through blob_row_replace, the old pack deleted), so a prune
 * gives back the space of pruned members. Adds the stored bytes freed to out->blob_bytes and
 * the packs deleted or rewritten to out->packs_rewritten. Implemented once, in blobs.c.
 */
int ps_store_blob_packs_tidy(struct ps_store *s, struct ps_prune_stats *out);

/*
 * For ps_store_prune_blobs, in its transaction, before it deletes the unreferenced blobs:
 * rewrites each of the `n` remaining delta rows `shas` (deltas whose base is about to go) as a
 * plain row (zstd or raw; small ones packed), so no delta outlives its base. Adds their count
 * to out->blobs_rewritten and takes the bytes the rewritten rows add (their new stored bytes
 * less the deltas') off out->blob_bytes, which then says what the prune gives back.
 * Implemented once, in blobs.c, through the ops above.
 */
int ps_store_blobs_make_plain(struct ps_store *s, char *const *shas, size_t n,
			      struct ps_prune_stats *out);

/* True for a postgres:// or postgresql:// URL (libpq's URI forms). */
bool ps_store_url_is_pg(const char *url);

/* Sets and returns the PS_ECONFLICT of a sync refused because `active` (queued or running) is
 * there, the same words on both backends, with what the user can do about it. */
int ps_store_sync_conflict(const struct ps_sync *active);

/* ---- SQLite (sqlite.c, sqlite_memory.c, sqlite_code.c) ---- */
int ps_sqlite_open(struct ps_store **out, const char *url, unsigned flags);
int ps_sqlite_rows_each(struct ps_store *s, const struct ps_copy_table *t, ps_copy_row_cb cb, void *ud);
int ps_sqlite_rows_insert(struct ps_store *s, const struct ps_copy_table *t,
			  const struct ps_copy_value *rows, size_t nrows);
int ps_sqlite_rows_done(struct ps_store *s, const struct ps_copy_table *t);
int ps_sqlite_schema_version(void);
void ps_sqlite_free(struct ps_store *s);
int ps_sqlite_migrate(struct ps_store *s, int *from, int *to);
int ps_sqlite_begin(struct ps_store *s);
int ps_sqlite_commit(struct ps_store *s);
void ps_sqlite_rollback(struct ps_store *s);
int ps_sqlite_project_add(struct ps_store *s, struct ps_project *p);
int ps_sqlite_project_update(struct ps_store *s, const struct ps_project *p);
int ps_sqlite_project_get(struct ps_store *s, const char *name, struct ps_project **out);
int ps_sqlite_project_get_by_id(struct ps_store *s, int64_t id, struct ps_project **out);
int ps_sqlite_project_list(struct ps_store *s, struct ps_project ***out, size_t *n);
int ps_sqlite_project_remove(struct ps_store *s, const char *name);
int ps_sqlite_project_rename(struct ps_store *s, int64_t id, const char *name, const char *source);
int ps_sqlite_sync_create(struct ps_store *s, int64_t project_id, const char *branch, const char *trigger, const struct ps_owner *owner, struct ps_sync **out);
int ps_sqlite_sync_claim(struct ps_store *s, int64_t sync_id, const struct ps_owner *owner);
int ps_sqlite_sync_get(struct ps_store *s, int64_t id, struct ps_sync **out);
int ps_sqlite_sync_list(struct ps_store *s, int64_t project_id, int64_t limit, int64_t before_id, struct ps_sync ***out, size_t *n);
int ps_sqlite_sync_active(struct ps_store *s, int64_t project_id, struct ps_sync **out);
int ps_sqlite_sync_last_succeeded(struct ps_store *s, int64_t project_id, int64_t at_or_before, struct ps_sync **out);
int ps_sqlite_sync_save_progress(struct ps_store *s, const struct ps_sync *sync, int64_t lease_ms);
int ps_sqlite_sync_request_cancel(struct ps_store *s, int64_t id);
int ps_sqlite_sync_cancel_requested(struct ps_store *s, int64_t id, bool *out);
int ps_sqlite_sync_fail(struct ps_store *s, struct ps_sync *sync, enum ps_sync_status status, const char *code, const char *message, const struct ps_event *final_event);
int ps_sqlite_sync_finalize(struct ps_store *s, struct ps_sync *sync, const struct ps_change *changes, size_t n, const struct ps_event *final_event);
int ps_sqlite_sync_fold(struct ps_store *s, struct ps_sync *sync);
int ps_sqlite_reap(struct ps_store *s, int64_t project_id, int *reaped);
int ps_sqlite_sync_next_queued(struct ps_store *s, int64_t *id);
int ps_sqlite_sync_count_by_status(struct ps_store *s, int64_t counts[PS_SYNC_CANCELLED + 1]);
int ps_sqlite_event_append(struct ps_store *s, const struct ps_event *ev);
int ps_sqlite_event_list(struct ps_store *s, int64_t sync_id, int64_t after_seq, int64_t limit, struct ps_stored_event **out, size_t *n);
int ps_sqlite_files_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_change *changes, size_t n);
int ps_sqlite_snapshot_page(struct ps_store *s, int64_t project_id, int64_t at, const char *prefix, const char *after, int64_t limit, ps_file_cb cb, void *ud);
int ps_sqlite_snapshot_file(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_file *out);
int ps_sqlite_diff(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b, struct ps_change **out, size_t *n);
int ps_sqlite_blob_row_put(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
int ps_sqlite_blob_row_get(struct ps_store *s, const char *sha, struct ps_blob_row *out);
int ps_sqlite_blob_row_replace(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
struct ps_blobcodec *ps_sqlite_blobcodec(struct ps_store *s);
int ps_sqlite_blob_have(struct ps_store *s, const char *const *shas, size_t n, bool *have);
int ps_sqlite_blob_pack_put(struct ps_store *s, const struct ps_blob_pack_row *row, int64_t *id);
int ps_sqlite_blob_pack_get(struct ps_store *s, int64_t id, struct ps_blob_pack_row *out);
int ps_sqlite_blob_pack_members(struct ps_store *s, int64_t id, struct ps_strv *shas);
int ps_sqlite_blob_packs_sparse(struct ps_store *s, int64_t **ids, size_t *n);
int ps_sqlite_blob_pack_delete(struct ps_store *s, int64_t id);
int ps_sqlite_blobs_unpacked(struct ps_store *s, int64_t max_size, struct ps_strv *shas);
int ps_sqlite_blob_packs_lock(struct ps_store *s);
int ps_sqlite_memory_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_memory_entry *entries, size_t n);
int ps_sqlite_memory_stage_removals(struct ps_store *s, const struct ps_sync *sync, const char *const *paths, size_t n);
int ps_sqlite_project_memory_rescan(struct ps_store *s, int64_t project_id, int64_t *generation);
int ps_sqlite_sync_memory_rescan(struct ps_store *s, int64_t sync_id, int64_t generation);
int ps_sqlite_project_blob_rescan(struct ps_store *s, int64_t project_id, int64_t *generation);
int ps_sqlite_sync_blob_rescan(struct ps_store *s, int64_t sync_id, int64_t generation);
int ps_sqlite_snapshot_missing_blobs(struct ps_store *s, int64_t project_id, int64_t at, int64_t max_size, ps_file_cb cb, void *ud);
int ps_sqlite_dir_trees_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_tree_dir *dirs, size_t n);
int ps_sqlite_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_tree_dir *out);
int ps_sqlite_dir_trees_each(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb, void *ud);
int ps_sqlite_stats(struct ps_store *s, int64_t project_id, struct ps_store_stats *out);
int ps_sqlite_sync_commits_put(struct ps_store *s, const struct ps_sync *sync, const struct ps_commit *v, size_t n);
int ps_sqlite_sync_commits(struct ps_store *s, int64_t sync_id, int64_t limit, struct ps_commit **out, size_t *n);
int ps_sqlite_memory_active_paths(struct ps_store *s, int64_t project_id, struct ps_memory_entry **out, size_t *n);
int ps_sqlite_memory_search(struct ps_store *s, int64_t project_id, const char *query, bool include_superseded, int64_t limit, int64_t offset, struct ps_memory_entry **out, size_t *n);
int ps_sqlite_memory_get(struct ps_store *s, int64_t id, struct ps_memory_entry **out);
int ps_sqlite_memory_history(struct ps_store *s, int64_t id, struct ps_memory_entry **out, size_t *n);
int ps_sqlite_memory_add(struct ps_store *s, int64_t project_id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out);
int ps_sqlite_memory_restore(struct ps_store *s, int64_t id, struct ps_memory_entry **out, bool *restored);
int ps_sqlite_memory_edit(struct ps_store *s, int64_t id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out, bool *changed);
int ps_sqlite_memory_delete(struct ps_store *s, int64_t id, struct ps_memory_entry **out);
int ps_sqlite_webhook_delivery_add(struct ps_store *s, const char *delivery_id, const char *event);
int ps_sqlite_project_schedule_save(struct ps_store *s, const struct ps_project *p);
/* Pauses the projects that failed too often, then takes the most overdue active project (moves
 * its next_sync_at on, guarded by the due time it read) and sets *project_id; PS_ENOTFOUND if
 * none is due. */
int ps_sqlite_schedule_claim(struct ps_store *s, int64_t now, int64_t default_max_failures, int64_t *project_id);
/* A read, outside any write transaction: *pending is true when schedule_claim has work (a
 * project due at `now`, or one to pause). */
int ps_sqlite_schedule_pending(struct ps_store *s, int64_t now, int64_t default_max_failures, bool *pending);
int ps_sqlite_prune_syncs(struct ps_store *s, int64_t project_id, int64_t start_sync_id, struct ps_prune_stats *out);
int ps_sqlite_prune_blobs(struct ps_store *s, struct ps_prune_stats *out);
int ps_sqlite_compact(struct ps_store *s);
int ps_sqlite_prune_gate_set(struct ps_store *s, int64_t until, int64_t only_if);
int ps_sqlite_prune_gate_get(struct ps_store *s, int64_t *until);
int ps_sqlite_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len, bool binary);
int ps_sqlite_code_index_have(struct ps_store *s, const char *const *shas, size_t n, bool *indexed);
int ps_sqlite_code_unindexed(struct ps_store *s, int64_t project_id, struct ps_strv *out);
int ps_sqlite_code_index_done(struct ps_store *s, int64_t project_id);
int ps_sqlite_code_candidates(struct ps_store *s, int64_t project_id, int64_t at, const struct ps_code_query *q, const char *prefix, const char *from_path, size_t limit, int64_t *snap, struct ps_code_candidate **out, size_t *n);

/* ---- PostgreSQL (postgres/pg.c, postgres/pg_memory.c, postgres/pg_code.c) ---- */
int ps_pg_open(struct ps_store **out, const char *url, unsigned flags);
/*
 * The oldest PostgreSQL a store works on, as PQserverVersion numbers it: 14, for migration
 * 0016's SQL-standard function bodies (`RETURN expr`), which older servers reject.
 */
#define PS_PG_MIN_SERVER_VERSION 140000
/*
 * 0 when a server whose PQserverVersion is `server_version` can hold a store; otherwise
 * PS_ESTORE ("server_too_old") with a message naming the minimum and the server's version
 * (130011 reads "13.11", 90624 "9.6.24"). `where` names the store in the message. 0 (a number
 * libpq gives only without a connection) is let through: the check needs a figure to refuse.
 */
int ps_pg_server_supported(int server_version, const char *where);
int ps_pg_schema_version(void);
char *ps_pg_location(const char *url);
int ps_pg_sync_claim_next(struct ps_store *s, const struct ps_owner *owner, int64_t *id);
int ps_pg_sync_takeover(struct ps_store *s, const struct ps_owner *owner, int64_t *id);
int ps_pg_node_beat(struct ps_store *s, const struct ps_owner *me);
int ps_pg_node_leave(struct ps_store *s, const struct ps_owner *me);
int ps_pg_nodes_alive(struct ps_store *s, bool *any);
int ps_pg_listen(struct ps_store *s);
int ps_pg_rows_each(struct ps_store *s, const struct ps_copy_table *t, ps_copy_row_cb cb, void *ud);
int ps_pg_rows_insert(struct ps_store *s, const struct ps_copy_table *t, const struct ps_copy_value *rows,
		      size_t nrows);
int ps_pg_rows_done(struct ps_store *s, const struct ps_copy_table *t);
int ps_pg_begin_snapshot(struct ps_store *s);
int ps_pg_wait_events(struct ps_store *s, int timeout_ms, int64_t *ids, size_t max, size_t *n,
		      bool *lost);
void ps_pg_free(struct ps_store *s);
int ps_pg_migrate(struct ps_store *s, int *from, int *to);
int ps_pg_begin(struct ps_store *s);
int ps_pg_commit(struct ps_store *s);
void ps_pg_rollback(struct ps_store *s);
int ps_pg_project_add(struct ps_store *s, struct ps_project *p);
int ps_pg_project_update(struct ps_store *s, const struct ps_project *p);
int ps_pg_project_get(struct ps_store *s, const char *name, struct ps_project **out);
int ps_pg_project_get_by_id(struct ps_store *s, int64_t id, struct ps_project **out);
int ps_pg_project_list(struct ps_store *s, struct ps_project ***out, size_t *n);
int ps_pg_project_remove(struct ps_store *s, const char *name);
int ps_pg_project_rename(struct ps_store *s, int64_t id, const char *name, const char *source);
int ps_pg_sync_create(struct ps_store *s, int64_t project_id, const char *branch, const char *trigger, const struct ps_owner *owner, struct ps_sync **out);
int ps_pg_sync_claim(struct ps_store *s, int64_t sync_id, const struct ps_owner *owner);
int ps_pg_sync_get(struct ps_store *s, int64_t id, struct ps_sync **out);
int ps_pg_sync_list(struct ps_store *s, int64_t project_id, int64_t limit, int64_t before_id, struct ps_sync ***out, size_t *n);
int ps_pg_sync_active(struct ps_store *s, int64_t project_id, struct ps_sync **out);
int ps_pg_sync_last_succeeded(struct ps_store *s, int64_t project_id, int64_t at_or_before, struct ps_sync **out);
int ps_pg_sync_save_progress(struct ps_store *s, const struct ps_sync *sync, int64_t lease_ms);
int ps_pg_sync_request_cancel(struct ps_store *s, int64_t id);
int ps_pg_sync_cancel_requested(struct ps_store *s, int64_t id, bool *out);
int ps_pg_sync_fail(struct ps_store *s, struct ps_sync *sync, enum ps_sync_status status, const char *code, const char *message, const struct ps_event *final_event);
int ps_pg_sync_finalize(struct ps_store *s, struct ps_sync *sync, const struct ps_change *changes, size_t n, const struct ps_event *final_event);
int ps_pg_sync_fold(struct ps_store *s, struct ps_sync *sync);
int ps_pg_reap(struct ps_store *s, int64_t project_id, int *reaped);
int ps_pg_sync_next_queued(struct ps_store *s, int64_t *id);
int ps_pg_sync_count_by_status(struct ps_store *s, int64_t counts[PS_SYNC_CANCELLED + 1]);
int ps_pg_event_append(struct ps_store *s, const struct ps_event *ev);
int ps_pg_event_list(struct ps_store *s, int64_t sync_id, int64_t after_seq, int64_t limit, struct ps_stored_event **out, size_t *n);
int ps_pg_files_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_change *changes, size_t n);
int ps_pg_snapshot_page(struct ps_store *s, int64_t project_id, int64_t at, const char *prefix, const char *after, int64_t limit, ps_file_cb cb, void *ud);
int ps_pg_snapshot_file(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_file *out);
int ps_pg_diff(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b, struct ps_change **out, size_t *n);
int ps_pg_blob_row_put(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
int ps_pg_blob_row_get(struct ps_store *s, const char *sha, struct ps_blob_row *out);
int ps_pg_blob_row_replace(struct ps_store *s, const char *sha, const struct ps_blob_row *row);
struct ps_blobcodec *ps_pg_blobcodec(struct ps_store *s);
int ps_pg_blob_have(struct ps_store *s, const char *const *shas, size_t n, bool *have);
int ps_pg_blob_pack_put(struct ps_store *s, const struct ps_blob_pack_row *row, int64_t *id);
int ps_pg_blob_pack_get(struct ps_store *s, int64_t id, struct ps_blob_pack_row *out);
int ps_pg_blob_pack_members(struct ps_store *s, int64_t id, struct ps_strv *shas);
int ps_pg_blob_packs_sparse(struct ps_store *s, int64_t **ids, size_t *n);
int ps_pg_blob_pack_delete(struct ps_store *s, int64_t id);
int ps_pg_blobs_unpacked(struct ps_store *s, int64_t max_size, struct ps_strv *shas);
int ps_pg_blob_packs_lock(struct ps_store *s);
int ps_pg_memory_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_memory_entry *entries, size_t n);
int ps_pg_memory_stage_removals(struct ps_store *s, const struct ps_sync *sync, const char *const *paths, size_t n);
int ps_pg_project_memory_rescan(struct ps_store *s, int64_t project_id, int64_t *generation);
int ps_pg_sync_memory_rescan(struct ps_store *s, int64_t sync_id, int64_t generation);
int ps_pg_project_blob_rescan(struct ps_store *s, int64_t project_id, int64_t *generation);
int ps_pg_sync_blob_rescan(struct ps_store *s, int64_t sync_id, int64_t generation);
int ps_pg_snapshot_missing_blobs(struct ps_store *s, int64_t project_id, int64_t at, int64_t max_size, ps_file_cb cb, void *ud);
int ps_pg_dir_trees_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_tree_dir *dirs, size_t n);
int ps_pg_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_tree_dir *out);
int ps_pg_dir_trees_each(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb, void *ud);
int ps_pg_stats(struct ps_store *s, int64_t project_id, struct ps_store_stats *out);
int ps_pg_sync_commits_put(struct ps_store *s, const struct ps_sync *sync, const struct ps_commit *v, size_t n);
int ps_pg_sync_commits(struct ps_store *s, int64_t sync_id, int64_t limit, struct ps_commit **out, size_t *n);
int ps_pg_memory_active_paths(struct ps_store *s, int64_t project_id, struct ps_memory_entry **out, size_t *n);
int ps_pg_memory_search(struct ps_store *s, int64_t project_id, const char *query, bool include_superseded, int64_t limit, int64_t offset, struct ps_memory_entry **out, size_t *n);
int ps_pg_memory_get(struct ps_store *s, int64_t id, struct ps_memory_entry **out);
int ps_pg_memory_history(struct ps_store *s, int64_t id, struct ps_memory_entry **out, size_t *n);
int ps_pg_memory_add(struct ps_store *s, int64_t project_id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out);
int ps_pg_memory_restore(struct ps_store *s, int64_t id, struct ps_memory_entry **out, bool *restored);
int ps_pg_memory_edit(struct ps_store *s, int64_t id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out, bool *changed);
int ps_pg_memory_delete(struct ps_store *s, int64_t id, struct ps_memory_entry **out);
int ps_pg_webhook_delivery_add(struct ps_store *s, const char *delivery_id, const char *event);
int ps_pg_project_schedule_save(struct ps_store *s, const struct ps_project *p);
/* Pauses the projects that failed too often, then takes the most overdue active project (moves
 * its next_sync_at on, guarded by the due time it read) and sets *project_id; PS_ENOTFOUND if
 * none is due. */
int ps_pg_schedule_claim(struct ps_store *s, int64_t now, int64_t default_max_failures, int64_t *project_id);
/* A read, outside any write transaction: *pending is true when schedule_claim has work (a
 * project due at `now`, or one to pause). */
int ps_pg_schedule_pending(struct ps_store *s, int64_t now, int64_t default_max_failures, bool *pending);
int ps_pg_prune_syncs(struct ps_store *s, int64_t project_id, int64_t start_sync_id, struct ps_prune_stats *out);
int ps_pg_prune_blobs(struct ps_store *s, struct ps_prune_stats *out);
int ps_pg_compact(struct ps_store *s);
int ps_pg_prune_gate_set(struct ps_store *s, int64_t until, int64_t only_if);
int ps_pg_prune_gate_get(struct ps_store *s, int64_t *until);
int ps_pg_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len, bool binary);
int ps_pg_code_index_have(struct ps_store *s, const char *const *shas, size_t n, bool *indexed);
int ps_pg_code_unindexed(struct ps_store *s, int64_t project_id, struct ps_strv *out);
int ps_pg_code_index_done(struct ps_store *s, int64_t project_id);
int ps_pg_code_candidates(struct ps_store *s, int64_t project_id, int64_t at, const struct ps_code_query *q, const char *prefix, const char *from_path, size_t limit, int64_t *snap, struct ps_code_candidate **out, size_t *n);

#endif
