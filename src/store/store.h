/*
 * The store: everything projsync keeps, behind one backend-neutral interface. The functions speak
 * the domain (projects, syncs, file versions, blobs, events), never SQL, so the pipeline, the CLI
 * and the server do not know which backend answers: SQLite (store/sqlite/sqlite.c) or PostgreSQL
 * (store/postgres/pg.c); ps_store_open picks the backend from the location (store/store.c).
 *
 * The data rules of docs/architecture.md §4 are kept here, not by callers:
 *   - a sync's file versions become visible only in ps_store_sync_finalize (one transaction);
 *   - syncs form one chain per project (UNIQUE previous_sync_id) and at most one queued/running
 *     sync per project: ps_store_sync_create fails with PS_ECONFLICT otherwise;
 *   - blobs are verified against their git blob SHA-1 in ps_store_blob_put and kept encoded by
 *     store/blobcodec.h (the same bytes in every backend; a new version of a path possibly as a
 *     delta against the previous one, store/blobs.c), read back byte-exact;
 *   - a dead sync is found by ps_store_reap and marked failed ("interrupted");
 *   - the project's last-synced commit moves only in ps_store_sync_finalize;
 *   - migrations run on open; a newer schema is refused.
 *
 * Every function returns 0 or a negative PS_E* code with a message (util/error.h). Objects
 * returned through `**out` belong to the caller. A store handle is used by one thread at a time;
 * open one per thread.
 */
#ifndef PS_STORE_STORE_H
#define PS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct ps_store;

enum ps_store_flags {
	PS_STORE_NO_MIGRATE = 1 << 0, /* open without applying migrations (for `migrate` itself) */
	/* Open only a store that exists: a mistyped location must not become a new empty store
	 * behind a read command's back. A missing store is PS_ENOTFOUND with slug "no_store". */
	PS_STORE_NO_CREATE = 1 << 1,
	/* One of a server's many connections (every request thread's, the workers', the event
	 * hub's, the scheduler's): a small SQLite page cache (512 KiB instead of SQLite's 2 MiB),
	 * so that the server's memory has a ceiling that is reached early and does not follow the
	 * size of the store (the soak run measured SQLite's caches as the one part of the heap
	 * that kept growing). Pages past it are read from the OS's file cache. Ignored by
	 * PostgreSQL. */
	PS_STORE_SMALL_CACHE = 1 << 2,
};

/*
 * Opens the store at `url` (a file path for SQLite, or postgres://...), creating it if needed
 * unless PS_STORE_NO_CREATE. Applies pending migrations unless PS_STORE_NO_MIGRATE. Fails with
 * PS_ESTORE and a clear message for a file that is not a database, a schema newer than this
 * binary, or a location that cannot be written.
 */
int ps_store_open(struct ps_store **out, const char *url, unsigned flags);
void ps_store_free(struct ps_store *s);
/* A store location as it may be printed: a database URL without its password (malloc'd). */
char *ps_store_location(const char *url);

/* Applies pending migrations; reports the schema version before and after. */
int ps_store_migrate(struct ps_store *s, int *from, int *to);
/* The schema version this binary knows. */
int ps_store_schema_version(void);

/* Explicit transactions for groups of writes that must hold together. They nest: only the
 * outermost begin/commit reaches the backend; a rollback at any depth rolls back the whole. */
int ps_store_begin(struct ps_store *s);
int ps_store_commit(struct ps_store *s);
void ps_store_rollback(struct ps_store *s);

/* ---- projects ---- */

/* Adds `p` (name, source, branch, max_blob_size, memory_globs are read) and sets p->id and
 * p->created_at. PS_ECONFLICT if the name is taken. */
int ps_store_project_add(struct ps_store *s, struct ps_project *p);
/* Updates branch, max_blob_size and memory_globs of the project with p->id. New memory globs
 * ask for a memory rescan (ps_store_project_memory_rescan), a higher max_blob_size for a blob
 * rescan (ps_store_project_blob_rescan), both by bumping a generation. */
int ps_store_project_update(struct ps_store *s, const struct ps_project *p);
int ps_store_project_get(struct ps_store *s, const char *name, struct ps_project **out);
int ps_store_project_get_by_id(struct ps_store *s, int64_t id, struct ps_project **out);
/* All projects sorted by name; free each with ps_project_free and the array with free(). */
int ps_store_project_list(struct ps_store *s, struct ps_project ***out, size_t *n);
/* Removes a project with its syncs, file versions and events (blobs stay: they may be shared).
 * PS_ECONFLICT while a sync of it is queued or running. */
int ps_store_project_remove(struct ps_store *s, const char *name);
/* Sets the name and the source of the project with `id` (the caller checked both: core/project.h
 * ps_project_change_apply). PS_ECONFLICT (slug project_exists) when another project has the
 * name, PS_ENOTFOUND when there is no such project. Nothing else of the project changes. */
int ps_store_project_rename(struct ps_store *s, int64_t id, const char *name, const char *source);

/* ---- syncs ---- */

/* Who runs a sync: host and a process identity (util.h ps_process_identity). */
struct ps_owner {
	const char *host;
	const char *process;
	int64_t lease_ms;     /* how long the claim holds without renewal */
};

/*
 * Appends a new sync to the project's chain: previous_sync_id = the current tail. With an owner
 * it starts `running` (claimed), without one `queued`. Before appending it reaps the project's
 * dead syncs (see ps_store_reap) and purges rows left by syncs that did not succeed.
 * PS_ECONFLICT when a sync of the project is queued or running (also when another process
 * appended first).
 */
int ps_store_sync_create(struct ps_store *s, int64_t project_id, const char *branch,
			 const char *trigger, const struct ps_owner *owner, struct ps_sync **out);
/* Claims a queued sync for `owner` (queued -> running). PS_ECONFLICT if it is not queued. */
int ps_store_sync_claim(struct ps_store *s, int64_t sync_id, const struct ps_owner *owner);
int ps_store_sync_get(struct ps_store *s, int64_t id, struct ps_sync **out);
/* A project's syncs newest first; `before_id` > 0 pages (ids < before_id); limit <= 0: all. */
int ps_store_sync_list(struct ps_store *s, int64_t project_id, int64_t limit, int64_t before_id,
		       struct ps_sync ***out, size_t *n);
/* The queued or running sync of a project; PS_ENOTFOUND if none. */
int ps_store_sync_active(struct ps_store *s, int64_t project_id, struct ps_sync **out);
/* The last succeeded sync of a project (at or before `at_or_before`, 0 = latest);
 * PS_ENOTFOUND if none. */
int ps_store_sync_last_succeeded(struct ps_store *s, int64_t project_id, int64_t at_or_before,
				 struct ps_sync **out);
/* Saves a running sync's phase, commit, tree, base, counters and renews its lease. */
int ps_store_sync_save_progress(struct ps_store *s, const struct ps_sync *sync, int64_t lease_ms);
/* Asks a queued or running sync to stop at its next step boundary. A queued one is cancelled at
 * once. PS_ECONFLICT if it already ended. */
int ps_store_sync_request_cancel(struct ps_store *s, int64_t id);
int ps_store_sync_cancel_requested(struct ps_store *s, int64_t id, bool *out);

/*
 * Ends a sync that did not succeed, in one transaction: status (failed or cancelled), phase,
 * error code and message, finished_at; zeroes its counts (added, modified, deleted, renamed,
 * files, skipped_large: it applied nothing; bytes and requests stay, they were spent) in the
 * store and in `sync`; removes the file versions it staged; counts the failure on the project
 * (cancelled does not count); stores `final_event` (or, when NULL, a final event of its own).
 */
int ps_store_sync_fail(struct ps_store *s, struct ps_sync *sync, enum ps_sync_status status,
		       const char *code, const char *message, const struct ps_event *final_event);

/*
 * Makes a sync's staged snapshot visible, in one transaction: supersedes the previous versions
 * of every path in `changes` (deleted, modified, renamed, type_changed), marks the sync succeeded
 * with its counts, moves the project's last-synced commit, resets its failure count, and stores
 * `final_event`. For an up-to-date sync `changes` is empty.
 *
 * Folding: when `sync` is an up-to-date scheduled check (trigger "schedule") whose predecessor
 * in the chain is its base and was an up-to-date scheduled check of the same head without a
 * rescan or a warning, the same transaction deletes that older row and its events and links
 * `sync` to the older row's predecessor: a run of unchanged checks is one row that counts them
 * (sync->checks, sync->first_check_at; final_event->summary gets them too). So the store grows
 * with the changes, not with the checks. On failure `sync` is as it was.
 */
int ps_store_sync_finalize(struct ps_store *s, struct ps_sync *sync,
			   const struct ps_change *changes, size_t n,
			   const struct ps_event *final_event);

/*
 * Finds running syncs (of one project, or all when project_id is 0) whose owner is gone: the
 * process is not alive on this host, or the lease ran out. Marks each failed with code
 * "interrupted", keeping its phase. Never touches a sync whose owner on this host still lives.
 * On PostgreSQL, while any serve node is alive (ps_store_node_beat) it marks nothing: the nodes
 * take such syncs over (ps_store_sync_takeover) instead.
 */
int ps_store_reap(struct ps_store *s, int64_t project_id, int *reaped);

/* The oldest queued sync of any project (what a server worker claims next); PS_ENOTFOUND if
 * none is queued. */
int ps_store_sync_next_queued(struct ps_store *s, int64_t *id);
/*
 * Claims the oldest queued sync for `owner` (queued -> running) and sets *id; PS_ENOTFOUND if
 * none is queued. Several processes may call it at once: each sync goes to exactly one (on
 * PostgreSQL one UPDATE over a FOR UPDATE SKIP LOCKED pick, so callers do not wait on each
 * other's candidates).
 */
int ps_store_sync_claim_next(struct ps_store *s, const struct ps_owner *owner, int64_t *id);

/*
 * Takes over one running sync whose owner is gone (the test of ps_store_reap) for `owner`,
 * under the same sync id, in one transaction: discards the file versions and memory its dead
 * attempt staged, renews the lease, and stores a `warning` event (next seq) naming the node that
 * took over and the one that stopped. The caller then runs it again (ps_sync_resume).
 * PS_ENOTFOUND if there is none. SQLite stores run one process per sync and reap instead:
 * PS_ENOTFOUND always.
 */
int ps_store_sync_takeover(struct ps_store *s, const struct ps_owner *owner, int64_t *id);

/*
 * A `projsync serve` node says it is alive (PostgreSQL: a row in `nodes`, renewed every second,
 * valid for me->lease_ms; ps_store_node_leave removes it at a clean stop). While any node is
 * alive, ps_store_reap leaves syncs whose owner is gone to the nodes' takeover instead of
 * marking them interrupted. No-ops on SQLite.
 */
int ps_store_node_beat(struct ps_store *s, const struct ps_owner *me);
int ps_store_node_leave(struct ps_store *s, const struct ps_owner *me);

/*
 * Notifications of stored events, for the SSE hub (PostgreSQL: LISTEN projsync_events; give it
 * a handle of its own). ps_store_listen starts them; PS_ENOTSUPP on SQLite, which is polled.
 * ps_store_wait_events waits up to timeout_ms and sets ids[0..*n) to the syncs (each once, at
 * most `max`) that stored events. A lost connection returns PS_ESTORE (after waiting
 * timeout_ms); the call that reconnects sets *lost: notifications may have been missed.
 */
int ps_store_listen(struct ps_store *s);
int ps_store_wait_events(struct ps_store *s, int timeout_ms, int64_t *ids, size_t max,
			 size_t *n, bool *lost);

/* How many syncs have each status, indexed by enum ps_sync_status (for /metrics). */
int ps_store_sync_count_by_status(struct ps_store *s, int64_t counts[PS_SYNC_CANCELLED + 1]);

/* ---- events ---- */

/* An event as stored: its number, kind and its JSON (model/json.h ps_event_to_json), ready to be
 * printed or sent as an SSE `data:` line without parsing. */
struct ps_stored_event {
	int64_t seq;
	enum ps_event_kind kind;
	char *json;
};
void ps_stored_events_free(struct ps_stored_event *evs, size_t n);

/* Stores one event (seq is the caller's, from 1 without gaps). */
int ps_store_event_append(struct ps_store *s, const struct ps_event *ev);
/* Events of a sync with seq > after_seq, in order (limit <= 0: all). */
int ps_store_event_list(struct ps_store *s, int64_t sync_id, int64_t after_seq, int64_t limit,
			struct ps_stored_event **out, size_t *n);

/* ---- file versions and snapshots ---- */

/*
 * Stages the new file versions of a running sync: one row per added, modified, renamed or
 * type-changed change (deletions stage nothing). Invisible to every query until finalize.
 * Call in batches; each call is one transaction unless inside ps_store_begin. A sha that is not
 * 40 lowercase hex digits is refused (PS_EINVAL, bad_object_id) before anything is written.
 */
int ps_store_files_stage(struct ps_store *s, const struct ps_sync *sync,
			 const struct ps_change *changes, size_t n);

/* Iterates the snapshot of succeeded sync `at` (0 = the latest) sorted by path bytes,
 * restricted to paths starting with `prefix` (NULL/"" = all). The callback's file is borrowed;
 * a non-zero return stops the iteration and is returned. PS_ENOTFOUND if `at` is not a
 * succeeded sync of the project. */
typedef int (*ps_file_cb)(void *ud, const struct ps_file *f);
int ps_store_snapshot_each(struct ps_store *s, int64_t project_id, int64_t at,
			   const char *prefix, ps_file_cb cb, void *ud);
/*
 * A page of that listing, the keyset cursor of the files API: only the paths after `after` in
 * byte order (NULL: from the start; any string, in the snapshot or not), and at most `limit` of
 * them (0: all). Costs about the page, not what lies before `after`: SQLite seeks its ordered
 * walk to `after`, PostgreSQL reads the directories from `after` on a chunk at a time
 * (docs/architecture.md §4 rule 3).
 */
int ps_store_snapshot_page(struct ps_store *s, int64_t project_id, int64_t at,
			   const char *prefix, const char *after, int64_t limit, ps_file_cb cb,
			   void *ud);
/* One path of a snapshot. PS_ENOTFOUND if the path is not in it. */
int ps_store_snapshot_file(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			   struct ps_file *out);

/*
 * The changes between two succeeded syncs of one project, from the version rows (cost follows
 * the number of changes, not the snapshot size). Exact renames (same blob, one path gone and one
 * new) are paired as `renamed`. Sorted by path. Dispose each, free the array.
 */
int ps_store_diff(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b,
		  struct ps_change **out, size_t *n);

/*
 * The files of snapshot `at` (0 = the latest) whose content the store lacks although they fit
 * `max_size`: blobs and symlinks (not submodules) with a known size <= max_size and no row in
 * the blob store, sorted by path; what a sync kept as metadata only under a lower size limit.
 * Callback as ps_store_snapshot_each. PS_ENOTFOUND if `at` is not a succeeded sync.
 */
int ps_store_snapshot_missing_blobs(struct ps_store *s, int64_t project_id, int64_t at,
				    int64_t max_size, ps_file_cb cb, void *ud);

/* ---- directory trees (model/tree.h) ---- */

/* model/tree.h: one directory of a snapshot with its git tree id and entries. */
struct ps_tree_dir;

/*
 * Stages the directories a running sync hashed (model/tree.h; those with an empty sha, emptied
 * by the changes, are skipped): invisible until finalize, which supersedes the previous rows of
 * every directory it staged and of every directory on a changed path; discarded with the
 * sync's file versions when it does not succeed. Each call is one transaction unless inside
 * ps_store_begin. A sha that is not 40 lowercase hex digits is refused as by files_stage. Only
 * the path and id are kept (schema 20): `body` is not stored.
 */
int ps_store_dir_trees_stage(struct ps_store *s, const struct ps_sync *sync,
			     const struct ps_tree_dir *dirs, size_t n);
/* One directory of the snapshot of succeeded sync `at` (an id, not 0), filled with new memory
 * (ps_tree_dirs_free's rules): its entries rebuilt from the snapshot's rows (its direct files,
 * its direct subdirectories' stored ids; never a subdirectory's rows) and the id they hash to,
 * which is the stored one when the rows add up. PS_ENOTFOUND when the snapshot has no such
 * directory stored: the path is not a directory there, or the snapshot predates schema 8 (no
 * directory stored). */
int ps_store_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			  struct ps_tree_dir *out);
/* Every stored directory of snapshot `at` (0 = the latest) sorted by path bytes, with its
 * stored id and no body; the callback's directory is borrowed, a non-zero return stops and is
 * returned. PS_ENOTFOUND if `at` is not a succeeded sync of the project. */
typedef int (*ps_dir_cb)(void *ud, const struct ps_tree_dir *d);
int ps_store_dir_trees_each(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb,
			    void *ud);

/* ---- commits (migration 0011, docs/architecture.md §4b) ---- */

/*
 * Records what a succeeded sync knows of its commits: the head commit, the count and the
 * truncation flag on its row (sync->head_commit, commit_count, commits_truncated), and the list
 * `v` (newest first; only the first PS_COMMITS_MAX are kept). Called by the pipeline inside the
 * finalize transaction, after ps_store_sync_finalize; its own transaction otherwise.
 */
int ps_store_sync_commits_put(struct ps_store *s, const struct ps_sync *sync,
			      const struct ps_commit *v, size_t n);
/* The stored commits of sync `sync_id`, newest first, at most `limit` (<= 0: all), in new
 * memory (ps_commits_free). An empty list for a sync that stored none. */
int ps_store_sync_commits(struct ps_store *s, int64_t sync_id, int64_t limit,
			  struct ps_commit **out, size_t *n);

/* ---- blobs ---- */

/* Stores content under its git blob SHA-1 after verifying it; storing it again is a no-op.
 * PS_EINVAL (slug "sha_mismatch") if the content does not hash to `sha`. */
int ps_store_blob_put(struct ps_store *s, const char *sha, const void *data, size_t len);
/*
 * Like ps_store_blob_put, for a new version of a path whose previous version is blob `base`
 * (NULL or "" for none): the content is stored as a delta against base when base is stored,
 * its own delta chain is shorter than PS_BLOB_CHAIN_MAX (store/blobcodec.h) and the delta is
 * smaller than the plain row; otherwise as ps_store_blob_put would. A base that cannot be read
 * is no error here (the blob is stored plain). Reads the base in the caller's transaction.
 */
int ps_store_blob_put_delta(struct ps_store *s, const char *sha, const void *data, size_t len,
			    const char *base);
/* One blob for ps_store_blob_put_many: its id, content and the path's previous blob (`base`,
 * NULL or "" for none), as ps_store_blob_put_delta takes them. */
struct ps_blob_in {
	const char *sha;
	const void *data;
	size_t len;
	const char *base;
};
/*
 * Stores `n` blobs as ps_store_blob_put_delta would one by one, except that those of 1 to
 * PS_BLOB_PACK_MEMBER_MAX bytes not stored as deltas go into packs of about PS_BLOB_PACK_TARGET
 * bytes (store/blobcodec.h PS_BLOB_PACKED), in the order given: neighbours compress together.
 * Every blob is verified before anything is written; PS_EINVAL ("sha_mismatch", naming the
 * blob) if one does not hash to its id. Already stored blobs are left as they are. Runs in the
 * caller's transaction.
 */
int ps_store_blob_put_many(struct ps_store *s, const struct ps_blob_in *v, size_t n);
/* What ps_store_blobs_pack_existing did. */
struct ps_pack_report {
	int64_t candidates;   /* small blobs stored plain when it started */
	int64_t blobs;        /* of those, rewritten into packs (a lone last one stays plain) */
	int64_t packs;        /* packs written */
	int64_t damaged;      /* left as they are: their rows do not decode to their id */
	int64_t bytes_before; /* their stored bytes before */
	int64_t bytes_after;  /* and after */
};
/*
 * Packs the small blobs the store holds plain (written before schema 27, or one at a time), as a
 * sync today would store them: every blob of 1 to PS_BLOB_PACK_MEMBER_MAX bytes that is neither
 * a delta nor packed, in the order its first file version was staged, in transactions of about
 * `batch_bytes` of content (0: 4 MiB). Each transaction stands alone: a killed run leaves every
 * blob readable, and the next run packs what is left. Rows that do not decode to their id are
 * left as they are (counted in out->damaged). `progress` (may be NULL) is called after each
 * transaction.
 */
int ps_store_blobs_pack_existing(struct ps_store *s, size_t batch_bytes,
				 void (*progress)(void *ud, size_t done, size_t total), void *ud,
				 struct ps_pack_report *out);
/* Content of a blob (malloc'd, caller frees, with a NUL after the `len` bytes). PS_ENOTFOUND if
 * not stored; PS_ESTORE (slug "blob_corrupt", naming the blob) if its stored bytes do not decode
 * to its size with a good checksum, or it is a delta whose base is missing or damaged (the
 * message names both): never wrong bytes. A delta costs a decompression per blob of its chain,
 * at most PS_BLOB_CHAIN_MAX + 1. */
int ps_store_blob_get(struct ps_store *s, const char *sha, void **data, size_t *len);
/* For each of `n` SHAs, sets have[i]. */
int ps_store_blob_have(struct ps_store *s, const char *const *shas, size_t n, bool *have);

/* ---- what the store costs ---- */

/* Counts for `projsync stats`. Byte counts are of blob content: raw = uncompressed sizes,
 * stored = the encoded bytes kept (store/blobcodec.h), so raw / stored is the compression ratio.
 * Blobs are shared between projects: a project's figures count every distinct blob its file
 * versions use, so the projects' figures can add up to more than the store's. */
struct ps_store_stats {
	int64_t projects;          /* whole store: number of projects; one project: 1 */
	int64_t syncs;             /* syncs of any status */
	int64_t syncs_succeeded;
	int64_t file_versions;     /* rows: one per path per version, staged ones included */
	int64_t blobs;             /* distinct blobs (of a project: referenced by its versions) */
	int64_t blobs_compressed;  /* of those, stored with an encoding other than raw */
	int64_t blobs_delta;       /* of those, stored as deltas against another blob */
	int64_t blobs_packed;      /* of those, stored in packs (schema 27) */
	int64_t packs;             /* whole store: packs stored; one project: 0 */
	int64_t raw_bytes;
	int64_t stored_bytes;      /* encoded; a packed blob counts its share of its pack (by size); the
				      whole store counts every pack whole */
	int64_t disk_bytes;        /* whole store: what the database takes on disk (SQLite: the
				      file's used pages; PostgreSQL: the relations' total size);
				      one project: 0, it has no size of its own */
	int64_t unconverted_blobs; /* whole store: blobs the schema-10 conversion has yet to visit
				      (0 once it finished); one project: 0 */
};
/* Fills `out` for project `project_id`, or for the whole store when project_id is 0. Reads only
 * (sizes, never content): cost follows the number of rows. PS_ENOTFOUND for an unknown project. */
int ps_store_stats(struct ps_store *s, int64_t project_id, struct ps_store_stats *out);

/* ---- memory entries ---- */

/* model/memory.h: the entry type and ps_memory_entries_free (its JSON shape is core/memory.h). */
struct ps_memory_entry;

/*
 * Stages memory entries of a running sync, one per changed file that matches the project's
 * memory globs (source, source_ref = path, title, tags, content and sha are read). Invisible
 * until ps_store_sync_finalize, which makes them active and supersedes the entries they
 * replace; discarded by ps_store_sync_fail. Staging a path twice keeps the last.
 */
int ps_store_memory_stage(struct ps_store *s, const struct ps_sync *sync,
			  const struct ps_memory_entry *entries, size_t n);
/* Records that the sync removes the entries of `paths` (deleted files, old paths of renames):
 * finalize supersedes their active entries. */
int ps_store_memory_stage_removals(struct ps_store *s, const struct ps_sync *sync,
				   const char *const *paths, size_t n);

/*
 * The memory rescan a change of the project's memory globs asks for (ps_store_project_update):
 * sets *generation to the glob change still waiting for one, 0 when none is pending.
 */
int ps_store_project_memory_rescan(struct ps_store *s, int64_t project_id, int64_t *generation);
/* Records that running sync `sync_id` re-evaluates memory for `generation`: its finalize then
 * clears the project's pending rescan, unless the globs changed again meanwhile. */
int ps_store_sync_memory_rescan(struct ps_store *s, int64_t sync_id, int64_t generation);
/*
 * The blob rescan a raise of the project's max_blob_size asks for (ps_store_project_update;
 * migration 0005 also asks it once of every project that synced before): sets *generation to the
 * raise still waiting for one, 0 when none is pending.
 */
int ps_store_project_blob_rescan(struct ps_store *s, int64_t project_id, int64_t *generation);
/* Records that running sync `sync_id` fetches what fits for `generation`: its finalize
 * (ps_store_sync_finalize, same transaction) then clears the project's pending blob rescan,
 * unless the limit was raised again meanwhile. */
int ps_store_sync_blob_rescan(struct ps_store *s, int64_t sync_id, int64_t generation);
/* The project's active entries that have a path (imported or restored, not manual), sorted by
 * path bytes; only id, project_id, origin, source_ref and sha are filled. The rescan removes
 * every one of them whose path left the globs, restored ones included (core/sync.c). */
int ps_store_memory_active_paths(struct ps_store *s, int64_t project_id,
				 struct ps_memory_entry **out, size_t *n);

/*
 * The memory entries of one project: its active entries, plus its superseded ones when
 * `include_superseded` (each marked by its status). With `query` (the user's text, see
 * ps_memory_fts_query: words, never FTS syntax) a full-text search over title, content and
 * tags, best first (bm25, a title match above a body mention), each result with `snippet` and
 * `rank`; PS_EINVAL ("empty_query") when the text holds no word, ("invalid_query") when it
 * is not valid UTF-8. Without `query` all of them,
 * newest first. `limit` <= 0: no limit. Free with ps_memory_entries_free.
 */
int ps_store_memory_search(struct ps_store *s, int64_t project_id, const char *query,
			   bool include_superseded, int64_t limit, int64_t offset,
			   struct ps_memory_entry **out, size_t *n);
/* One entry (active or superseded). PS_ENOTFOUND if unknown. Free with ps_memory_entry_free. */
int ps_store_memory_get(struct ps_store *s, int64_t id, struct ps_memory_entry **out);
/*
 * The versions of an entry's note, newest first: every entry of the same project and path
 * (which sync introduced each, which sync or entry superseded it, what a restore copied).
 * A manual note (no path): the entries its edits, deletes and restores link to it
 * (superseded_by_entry, restored_from, both ways). PS_ENOTFOUND if `id` is unknown.
 */
int ps_store_memory_history(struct ps_store *s, int64_t id, struct ps_memory_entry **out,
			    size_t *n);
/*
 * Adds a manual entry (source "manual", no path), active at once; syncs never touch it.
 * PS_EINVAL for an empty or multi-line title, an empty or over-long tag; PS_ETOOBIG for
 * content over PS_MEMORY_MAX_CONTENT; PS_ENOTFOUND for an unknown project. `out` may be NULL.
 */
int ps_store_memory_add(struct ps_store *s, int64_t project_id, const char *title,
			const char *content, const struct ps_strv *tags,
			struct ps_memory_entry **out);
/*
 * Restores a superseded entry, in one transaction, visible at once: a new active entry with its
 * title, tags and content (restored_from = id) that supersedes the path's current active entry
 * (superseded_by_entry = the new one; superseded_by_sync stays NULL). It stays active until a
 * later sync changes or deletes that file, or a change of the memory globs leaves its path out.
 *
 * Safe to retry: restoring a version that is already current changes nothing and returns 0 with
 * *restored = false and the current entry in *out. Already current means: the entry itself is
 * active, or the path's active entry is a copy of the same version (following restored_from
 * from each of the two leads to the same entry: restored from it, from a copy of it, or both
 * copies of one original) and has the same title, tags and content (ps_memory_same_text). An
 * import of identical text by a sync is not a copy: restoring over it is a real restore.
 * PS_ENOTFOUND for an unknown id. `out` and `restored` may be NULL. A manual note's current
 * entry is the active one among its versions (ps_store_memory_history); restoring a deleted
 * note brings it back.
 */
int ps_store_memory_restore(struct ps_store *s, int64_t id, struct ps_memory_entry **out,
			    bool *restored);
/*
 * Edits a manual note, in one transaction: a new active version (origin manual) with the given
 * title, content and tags (NULL: keep the old one's) supersedes entry `id`
 * (superseded_by_entry = the new one), so the old text stays in the history and can be
 * restored. An edit that changes nothing makes no version: 0 with *changed = false and the
 * entry as it is. PS_ENOTFOUND for an unknown id; PS_ECONFLICT ("not_manual") for an entry a
 * sync imported or restored (its file is the truth), ("not_active") for a version that is not
 * current; PS_EINVAL / PS_ETOOBIG as ps_memory_check_note. `out` and `changed` may be NULL.
 */
int ps_store_memory_edit(struct ps_store *s, int64_t id, const char *title, const char *content,
			 const struct ps_strv *tags, struct ps_memory_entry **out, bool *changed);
/*
 * Deletes a manual note: its active entry becomes superseded with no successor
 * (ps_memory_deleted), out of lists and searches but in its history, and
 * ps_store_memory_restore brings it back. The same errors as ps_store_memory_edit.
 * *out (may be NULL) gets the entry as it is now.
 */
int ps_store_memory_delete(struct ps_store *s, int64_t id, struct ps_memory_entry **out);

/* ---- schedule and failure states (model/schedule.h) ---- */

/*
 * Queues the sync of one due project, for the scheduler of `projsync serve`, in one
 * transaction: first pauses every scheduled project with at least its max_failures (0: then
 * `default_max_failures`, <= 0: 10) failures in a row (state paused, paused_at = now, the reason
 * naming the count and the last error); then takes the most overdue active project whose
 * next_sync_at <= now, moves its next_sync_at on, and appends a queued sync with trigger
 * "schedule" and its `queued` event, for any node's workers to claim. Several nodes on one
 * store may call it at once: a due project is taken by exactly one (a guarded update of its due
 * time; on PostgreSQL under FOR UPDATE SKIP LOCKED). When a sync of the project is already
 * queued or running, that sync is the check: nothing is queued and *out is NULL.
 * PS_ENOTFOUND when no project is due. `out` may be NULL.
 */
int ps_store_schedule_next(struct ps_store *s, int64_t now, int64_t default_max_failures,
			   struct ps_sync **out);
/*
 * Clears a project's paused state and its failure count; a scheduled project is due at once. Not paused is fine (returns 0). PS_ENOTFOUND for an unknown project.
 */
int ps_store_project_resume(struct ps_store *s, int64_t project_id, int64_t now);

/* ---- retention ---- */

/* What a prune removed (or, in a dry run, would remove); the functions add to it. */
struct ps_prune_stats {
	int64_t syncs;          /* syncs that left the chains (any status) */
	int64_t file_versions;  /* file version rows only those syncs could see */
	int64_t events;
	int64_t blobs;          /* blobs no file version references any more */
	int64_t blob_bytes;     /* their stored bytes (encoded, store/blobcodec.h): what is freed */
	int64_t blobs_rewritten;/* kept deltas whose base went, rewritten as plain rows first */
	int64_t packs_rewritten;/* packs deleted or rewritten smaller because members went */
	bool blobs_skipped;     /* a sync was running: blobs are left for the next prune */
};

/*
 * Makes succeeded sync `start_sync_id` the first of its project's chain, in one transaction:
 * removes every older sync of the project (any status) with its events, deletes the file
 * versions that only they could see, and makes the versions `start` sees from older syncs its
 * own, so it still lists its full snapshot and every later snapshot is unchanged. Memory entries
 * are not touched (their content is their own). PS_EINVAL if `start` is not a succeeded sync of
 * the project. Blobs stay: ps_store_prune_blobs removes them.
 */
int ps_store_prune_syncs(struct ps_store *s, int64_t project_id, int64_t start_sync_id,
			 struct ps_prune_stats *out);
/*
 * Deletes the blobs no file version of any project references, in one transaction, and adds
 * their count and bytes to `out`. The one place blobs are deleted: what else must go with a
 * blob (a search index keyed by blob) belongs here. A kept blob stored as a delta against a blob
 * that goes is first rewritten as a plain row in the same transaction (counted in
 * out->blobs_rewritten), so no delta outlives its base. While any sync runs (it may hold blobs it has not staged a version of yet) it deletes
 * nothing and sets out->blobs_skipped.
 */
int ps_store_prune_blobs(struct ps_store *s, struct ps_prune_stats *out);
/* Gives freed space back after a prune: first, in a transaction of its own, merges the code
 * index's segments when most of the documents they hold were pruned (their postings, which
 * match nothing once ps_store_prune_blobs removed their rows, go); then SQLite: VACUUM and a
 * WAL checkpoint; PostgreSQL: VACUUM. Does nothing inside a transaction (a dry run). Blocks
 * writers while it runs (SQLite; PostgreSQL's merge locks only the segments it merges). */
int ps_store_compact(struct ps_store *s);
/*
 * The prune gate (migration 0018), for the server's blob prune on a busy store: while it is shut
 * (until > now) ps_store_sync_claim_next and ps_store_sync_takeover claim nothing on any node,
 * so the running syncs end and ps_store_prune_blobs finds a moment without one. Sets it to
 * `until` (ms since the epoch; 0 opens it), when `only_if` < 0 or the gate holds `only_if`
 * (a node opens only the gate it shut). The time bounds a gate whose pruner died.
 */
int ps_store_prune_gate_set(struct ps_store *s, int64_t until, int64_t only_if);
/* *shut: the gate is shut at `now`. */
int ps_store_prune_gate_shut(struct ps_store *s, int64_t now, bool *shut);

/* ---- whole-store copy (`projsync store copy FROM TO`) ---- */

/*
 * Raw rows, for moving a whole store between backends. A table is described once, backend-
 * neutrally (store/copy.c lists them, parents before children); both backends have the same
 * column names (or translate them: the code index, store/copy.c). Types: INT (integers), TEXT
 * (UTF-8 text), BYTES (a path: any bytes; TEXT on SQLite, bytea on PostgreSQL), BLOB (content).
 */
enum ps_copy_col_type { PS_COL_INT, PS_COL_TEXT, PS_COL_BYTES, PS_COL_BLOB };
struct ps_copy_col {
	const char *name;
	enum ps_copy_col_type type;
};
struct ps_copy_table {
	const char *name;
	const struct ps_copy_col *cols;
	size_t ncols;
	size_t nkeys;   /* the first nkeys columns are unique together: rows are read in that order */
	bool identity;  /* cols[0] is an id the backend hands out: later ids must follow the copied */
	size_t batch;   /* rows per read and per insert (few for tables holding content) */
};
/* One value: `s`/`len` for TEXT, BYTES and BLOB (s is NUL-terminated too), `i` for INT. */
struct ps_copy_value {
	bool null;
	int64_t i;
	char *s;
	size_t len;
};
/* Calls cb with each row (ncols values, borrowed) in key order, t->batch rows per query;
 * a non-zero return stops and is returned. */
typedef int (*ps_copy_row_cb)(void *ud, const struct ps_copy_value *row);
int ps_store_rows_each(struct ps_store *s, const struct ps_copy_table *t, ps_copy_row_cb cb, void *ud);
/* Inserts rows as they are, ids included (nrows * ncols values). After the last batch of an
 * identity table, ps_store_rows_done moves the id generator past the copied ids. */
int ps_store_rows_insert(struct ps_store *s, const struct ps_copy_table *t,
			 const struct ps_copy_value *rows, size_t nrows);
int ps_store_rows_done(struct ps_store *s, const struct ps_copy_table *t);
/* Starts a read-only transaction that sees one consistent state of the store for all reads
 * until ps_store_commit (PostgreSQL: REPEATABLE READ; SQLite: a read transaction). */
int ps_store_begin_snapshot(struct ps_store *s);

/* What ps_store_copy copied: rows per table, in the order of ps_store_copy_tables. */
struct ps_copy_counts {
	size_t ntables;
	const char *table[16];
	int64_t rows[16];
};
/*
 * Copies every table of `from` into `to` (another store, possibly another backend), rows and
 * ids as they are: projects, the sync chain, events, file versions, blobs (verified against
 * their SHA), memory entries, staged memory removals, webhook deliveries, the code index. `to`
 * must be empty (PS_ECONFLICT otherwise, nothing written); it is written in one transaction, so
 * a failure leaves it empty. Reads and writes go in batches: memory stays bounded whatever the size.
 */
int ps_store_copy(struct ps_store *from, struct ps_store *to, struct ps_copy_counts *counts);
/* ---- code index (code search, core/grep.c) ---- */

/*
 * The code index is by blob: a stored blob is indexed once, whatever project or sync brought it,
 * and a search is scoped to a snapshot by the file versions that snapshot sees. What the index
 * returns is a superset: core/grep.c confirms every candidate on the content from
 * ps_store_blob_get, so a backend may answer loosely (never too narrowly).
 */

/*
 * What a blob must contain to be worth reading: a tree of AND / OR over literals. A literal is
 * 3 or more printable ASCII bytes or tabs (0x20-0x7e, 0x09) that must occur in the blob, compared without ASCII case
 * (the index serves case-sensitive and -i searches alike). Built by ps_grep_query (core/grep.h);
 * never SQL: each backend evaluates it on its own trigram index (store/codeindex.h), the
 * literals' trigrams as numbers, so no user text reaches SQL.
 */
enum ps_code_query_op { PS_CODE_LITERAL, PS_CODE_AND, PS_CODE_OR };
struct ps_code_query {
	enum ps_code_query_op op;
	char *literal;                  /* PS_CODE_LITERAL */
	struct ps_code_query **kids;    /* PS_CODE_AND / PS_CODE_OR, at least 2 */
	size_t nkids;
};

/* How a candidate's blob stands in the index. */
enum ps_code_state {
	PS_CODE_UNINDEXED, /* not in the index (the project has it off, or not indexed yet) */
	PS_CODE_TEXT,      /* indexed text */
	PS_CODE_BINARY,    /* recorded as binary: never narrowed by the index */
};

struct ps_code_candidate {
	struct ps_file file;            /* path owned by the array */
	enum ps_code_state state;
};
void ps_code_candidates_free(struct ps_code_candidate *v, size_t n);

/*
 * Adds a stored blob to the index: `binary` (core/grep.c ps_grep_is_binary decides) records it
 * as always-a-candidate, otherwise its text is indexed. `data` is the blob's content, as given
 * to ps_store_blob_put. Indexing a blob again is a no-op. Runs in the caller's transaction.
 */
int ps_store_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
			    bool binary);
/* For each of `n` SHAs, sets indexed[i]: whether ps_store_code_index_put recorded it. */
int ps_store_code_index_have(struct ps_store *s, const char *const *shas, size_t n,
			     bool *indexed);
/*
 * The stored blobs that some file version of the project references (any sync, so older
 * snapshots are covered too) and that the index lacks, sorted, distinct. Only regular files
 * count (what a search reads); blobs kept as metadata only (not stored) are left out. Free with ps_strv_dispose.
 */
int ps_store_code_unindexed(struct ps_store *s, int64_t project_id, struct ps_strv *out);
/* Clears the project's code_index_pending (its backlog is indexed). */
int ps_store_code_index_done(struct ps_store *s, int64_t project_id);

/*
 * The files of succeeded sync `at` (0 = latest; PS_ENOTFOUND as ps_store_snapshot_each) that a
 * search must read, sorted by path bytes: regular files (`git grep` on a tree skips symlinks
 * and submodules), with path >= `from_path` (NULL: all) and starting with `prefix` (NULL: all), whose
 * blob is stored and, with `q`, either satisfies `q` or is not narrowed by the index (binary or
 * unindexed). Without `q`: every such file. `*snap` gets the resolved sync id. With `limit` > 0,
 * only the first `limit` of them (by path): a caller that needs a few matches asks for a batch
 * and then for the next one from the last path + "\x01", so a query that most files satisfy is
 * not listed and sorted whole.
 */
int ps_store_code_candidates(struct ps_store *s, int64_t project_id, int64_t at,
			     const struct ps_code_query *q, const char *prefix,
			     const char *from_path, size_t limit, int64_t *snap,
			     struct ps_code_candidate **out, size_t *n);

/* ---- webhook deliveries ---- */

/* Records a webhook delivery id (GitHub's X-GitHub-Delivery) so a redelivery is recognised.
 * PS_ECONFLICT when the id was recorded before. */
int ps_store_webhook_delivery_add(struct ps_store *s, const char *delivery_id, const char *event);

#endif
