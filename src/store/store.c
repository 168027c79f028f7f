/*
 * The store's front: ps_store_open picks the backend from the location (a postgres:// or
 * postgresql:// URL is PostgreSQL, anything else an SQLite file), and every other function of
 * store.h forwards to the backend that opened the handle (backend.h).
 */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "model/memory.h"
#include "model/schedule.h"
#include "model/tree.h"
#include "store/backend.h"
#include "store/blobcodec.h"
#include "util/error.h"
#include "util/util.h"

const struct ps_store_ops ps_sqlite_ops = {
	.free = ps_sqlite_free,
	.migrate = ps_sqlite_migrate,
	.begin = ps_sqlite_begin,
	.commit = ps_sqlite_commit,
	.rollback = ps_sqlite_rollback,
	.project_add = ps_sqlite_project_add,
	.project_update = ps_sqlite_project_update,
	.project_get = ps_sqlite_project_get,
	.project_get_by_id = ps_sqlite_project_get_by_id,
	.project_list = ps_sqlite_project_list,
	.project_remove = ps_sqlite_project_remove,
	.project_rename = ps_sqlite_project_rename,
	.sync_create = ps_sqlite_sync_create,
	.sync_claim = ps_sqlite_sync_claim,
	.sync_get = ps_sqlite_sync_get,
	.sync_list = ps_sqlite_sync_list,
	.sync_active = ps_sqlite_sync_active,
	.sync_last_succeeded = ps_sqlite_sync_last_succeeded,
	.sync_save_progress = ps_sqlite_sync_save_progress,
	.sync_request_cancel = ps_sqlite_sync_request_cancel,
	.sync_cancel_requested = ps_sqlite_sync_cancel_requested,
	.sync_fail = ps_sqlite_sync_fail,
	.sync_finalize = ps_sqlite_sync_finalize,
	.sync_fold = ps_sqlite_sync_fold,
	.reap = ps_sqlite_reap,
	.sync_next_queued = ps_sqlite_sync_next_queued,
	.sync_count_by_status = ps_sqlite_sync_count_by_status,
	.event_append = ps_sqlite_event_append,
	.event_list = ps_sqlite_event_list,
	.files_stage = ps_sqlite_files_stage,
	.snapshot_page = ps_sqlite_snapshot_page,
	.snapshot_file = ps_sqlite_snapshot_file,
	.diff = ps_sqlite_diff,
	.blob_row_put = ps_sqlite_blob_row_put,
	.blob_row_get = ps_sqlite_blob_row_get,
	.blob_row_replace = ps_sqlite_blob_row_replace,
	.blobcodec = ps_sqlite_blobcodec,
	.blob_have = ps_sqlite_blob_have,
	.blob_pack_put = ps_sqlite_blob_pack_put,
	.blob_pack_get = ps_sqlite_blob_pack_get,
	.blob_pack_members = ps_sqlite_blob_pack_members,
	.blob_packs_sparse = ps_sqlite_blob_packs_sparse,
	.blob_pack_delete = ps_sqlite_blob_pack_delete,
	.blobs_unpacked = ps_sqlite_blobs_unpacked,
	.blob_packs_lock = ps_sqlite_blob_packs_lock,
	.memory_stage = ps_sqlite_memory_stage,
	.memory_stage_removals = ps_sqlite_memory_stage_removals,
	.project_memory_rescan = ps_sqlite_project_memory_rescan,
	.sync_memory_rescan = ps_sqlite_sync_memory_rescan,
	.project_blob_rescan = ps_sqlite_project_blob_rescan,
	.sync_blob_rescan = ps_sqlite_sync_blob_rescan,
	.snapshot_missing_blobs = ps_sqlite_snapshot_missing_blobs,
	.memory_active_paths = ps_sqlite_memory_active_paths,
	.memory_search = ps_sqlite_memory_search,
	.memory_get = ps_sqlite_memory_get,
	.memory_history = ps_sqlite_memory_history,
	.memory_add = ps_sqlite_memory_add,
	.memory_restore = ps_sqlite_memory_restore,
	.memory_edit = ps_sqlite_memory_edit,
	.memory_delete = ps_sqlite_memory_delete,
	.webhook_delivery_add = ps_sqlite_webhook_delivery_add,
	.project_schedule_save = ps_sqlite_project_schedule_save,
	.schedule_claim = ps_sqlite_schedule_claim,
	.schedule_pending = ps_sqlite_schedule_pending,
	.prune_syncs = ps_sqlite_prune_syncs,
	.prune_blobs = ps_sqlite_prune_blobs,
	.compact = ps_sqlite_compact,
	.prune_gate_set = ps_sqlite_prune_gate_set,
	.prune_gate_get = ps_sqlite_prune_gate_get,
	.code_index_put = ps_sqlite_code_index_put,
	.code_index_have = ps_sqlite_code_index_have,
	.code_unindexed = ps_sqlite_code_unindexed,
	.code_index_done = ps_sqlite_code_index_done,
	.code_candidates = ps_sqlite_code_candidates,
	.dir_trees_stage = ps_sqlite_dir_trees_stage,
	.dir_tree_get = ps_sqlite_dir_tree_get,
	.dir_trees_each = ps_sqlite_dir_trees_each,
	.stats = ps_sqlite_stats,
	.sync_commits_put = ps_sqlite_sync_commits_put,
	.sync_commits = ps_sqlite_sync_commits,
};

const struct ps_store_ops ps_pg_ops = {
	.free = ps_pg_free,
	.migrate = ps_pg_migrate,
	.begin = ps_pg_begin,
	.commit = ps_pg_commit,
	.rollback = ps_pg_rollback,
	.project_add = ps_pg_project_add,
	.project_update = ps_pg_project_update,
	.project_get = ps_pg_project_get,
	.project_get_by_id = ps_pg_project_get_by_id,
	.project_list = ps_pg_project_list,
	.project_remove = ps_pg_project_remove,
	.project_rename = ps_pg_project_rename,
	.sync_create = ps_pg_sync_create,
	.sync_claim = ps_pg_sync_claim,
	.sync_get = ps_pg_sync_get,
	.sync_list = ps_pg_sync_list,
	.sync_active = ps_pg_sync_active,
	.sync_last_succeeded = ps_pg_sync_last_succeeded,
	.sync_save_progress = ps_pg_sync_save_progress,
	.sync_request_cancel = ps_pg_sync_request_cancel,
	.sync_cancel_requested = ps_pg_sync_cancel_requested,
	.sync_fail = ps_pg_sync_fail,
	.sync_finalize = ps_pg_sync_finalize,
	.sync_fold = ps_pg_sync_fold,
	.reap = ps_pg_reap,
	.sync_next_queued = ps_pg_sync_next_queued,
	.sync_count_by_status = ps_pg_sync_count_by_status,
	.event_append = ps_pg_event_append,
	.event_list = ps_pg_event_list,
	.files_stage = ps_pg_files_stage,
	.snapshot_page = ps_pg_snapshot_page,
	.snapshot_file = ps_pg_snapshot_file,
	.diff = ps_pg_diff,
	.blob_row_put = ps_pg_blob_row_put,
	.blob_row_get = ps_pg_blob_row_get,
	.blob_row_replace = ps_pg_blob_row_replace,
	.blobcodec = ps_pg_blobcodec,
	.blob_have = ps_pg_blob_have,
	.blob_pack_put = ps_pg_blob_pack_put,
	.blob_pack_get = ps_pg_blob_pack_get,
	.blob_pack_members = ps_pg_blob_pack_members,
	.blob_packs_sparse = ps_pg_blob_packs_sparse,
	.blob_pack_delete = ps_pg_blob_pack_delete,
	.blobs_unpacked = ps_pg_blobs_unpacked,
	.blob_packs_lock = ps_pg_blob_packs_lock,
	.memory_stage = ps_pg_memory_stage,
	.memory_stage_removals = ps_pg_memory_stage_removals,
	.project_memory_rescan = ps_pg_project_memory_rescan,
	.sync_memory_rescan = ps_pg_sync_memory_rescan,
	.project_blob_rescan = ps_pg_project_blob_rescan,
	.sync_blob_rescan = ps_pg_sync_blob_rescan,
	.snapshot_missing_blobs = ps_pg_snapshot_missing_blobs,
	.memory_active_paths = ps_pg_memory_active_paths,
	.memory_search = ps_pg_memory_search,
	.memory_get = ps_pg_memory_get,
	.memory_history = ps_pg_memory_history,
	.memory_add = ps_pg_memory_add,
	.memory_restore = ps_pg_memory_restore,
	.memory_edit = ps_pg_memory_edit,
	.memory_delete = ps_pg_memory_delete,
	.webhook_delivery_add = ps_pg_webhook_delivery_add,
	.project_schedule_save = ps_pg_project_schedule_save,
	.schedule_claim = ps_pg_schedule_claim,
	.schedule_pending = ps_pg_schedule_pending,
	.prune_syncs = ps_pg_prune_syncs,
	.prune_blobs = ps_pg_prune_blobs,
	.compact = ps_pg_compact,
	.prune_gate_set = ps_pg_prune_gate_set,
	.prune_gate_get = ps_pg_prune_gate_get,
	.code_index_put = ps_pg_code_index_put,
	.code_index_have = ps_pg_code_index_have,
	.code_unindexed = ps_pg_code_unindexed,
	.code_index_done = ps_pg_code_index_done,
	.code_candidates = ps_pg_code_candidates,
	.dir_trees_stage = ps_pg_dir_trees_stage,
	.dir_tree_get = ps_pg_dir_tree_get,
	.dir_trees_each = ps_pg_dir_trees_each,
	.stats = ps_pg_stats,
	.sync_commits_put = ps_pg_sync_commits_put,
	.sync_commits = ps_pg_sync_commits,
};

static const struct ps_store_ops *ops(const struct ps_store *s)
{
	const struct ps_store_head *h = (const struct ps_store_head *)s;
	return h->ops ? h->ops : &ps_sqlite_ops;
}

int ps_store_sync_conflict(const struct ps_sync *active)
{
	/* A queued sync waits for a server's worker: left behind by a server that stopped (or whose
	 * only worker was busy), it blocks every new sync of the project until something runs or
	 * clears it, so say what does. */
	if (active->status == PS_SYNC_QUEUED)
		return ps_error_set(PS_ECONFLICT, "sync_running",
				    "a sync of project '%s' is already queued (sync %lld): a running "
				    "'projsync serve' runs it, or 'projsync cancel %lld' clears it",
				    active->project, (long long)active->id, (long long)active->id);
	return ps_error_set(PS_ECONFLICT, "sync_running",
			    "a sync of project '%s' is already %s (sync %lld)", active->project,
			    ps_sync_status_name(active->status), (long long)active->id);
}

bool ps_store_url_is_pg(const char *url)
{
	return url && (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13));
}

int ps_store_open(struct ps_store **out, const char *url, unsigned flags)
{
	return ps_store_url_is_pg(url) ? ps_pg_open(out, url, flags) : ps_sqlite_open(out, url, flags);
}

char *ps_store_location(const char *url)
{
	return ps_store_url_is_pg(url) ? ps_pg_location(url) : ps_strdup(url ? url : "");
}

int ps_store_schema_version(void)
{
	/* Both backends carry the same numbered steps (tests/unit/test_store.c checks it), so one
	 * number describes a store of either. */
	return ps_sqlite_schema_version();
}

void ps_store_free(struct ps_store *s)
{
	if (s)
		ops(s)->free(s);
}

int ps_store_migrate(struct ps_store *s, int *from, int *to)
{
	return ops(s)->migrate(s, from, to);
}

int ps_store_begin(struct ps_store *s)
{
	return ops(s)->begin(s);
}

/* A rolled back pack's id can be handed out again (SQLite's AUTOINCREMENT counter rolls back
 * with it): its decoded content must not answer for the next pack of that id. */
static void forget_packs(struct ps_store *s)
{
	struct ps_blobcodec *codec = ops(s)->blobcodec(s);

	if (codec)
		ps_blobcodec_pack_cache_clear(codec);
}

int ps_store_commit(struct ps_store *s)
{
	int rc = ops(s)->commit(s);

	if (rc < 0) /* a failed commit rolled back */
		forget_packs(s);
	return rc;
}

void ps_store_rollback(struct ps_store *s)
{
	ops(s)->rollback(s);
	forget_packs(s);
}

int ps_store_project_add(struct ps_store *s, struct ps_project *p)
{
	return ops(s)->project_add(s, p);
}

int ps_store_project_update(struct ps_store *s, const struct ps_project *p)
{
	return ops(s)->project_update(s, p);
}

int ps_store_project_get(struct ps_store *s, const char *name, struct ps_project **out)
{
	return ops(s)->project_get(s, name, out);
}

int ps_store_project_get_by_id(struct ps_store *s, int64_t id, struct ps_project **out)
{
	return ops(s)->project_get_by_id(s, id, out);
}

int ps_store_project_list(struct ps_store *s, struct ps_project ***out, size_t *n)
{
	return ops(s)->project_list(s, out, n);
}

int ps_store_project_remove(struct ps_store *s, const char *name)
{
	return ops(s)->project_remove(s, name);
}

int ps_store_project_rename(struct ps_store *s, int64_t id, const char *name, const char *source)
{
	return ops(s)->project_rename(s, id, name, source);
}

int ps_store_sync_create(struct ps_store *s, int64_t project_id, const char *branch, const char *trigger, const struct ps_owner *owner, struct ps_sync **out)
{
	return ops(s)->sync_create(s, project_id, branch, trigger, owner, out);
}

int ps_store_sync_claim(struct ps_store *s, int64_t sync_id, const struct ps_owner *owner)
{
	return ops(s)->sync_claim(s, sync_id, owner);
}

int ps_store_sync_get(struct ps_store *s, int64_t id, struct ps_sync **out)
{
	return ops(s)->sync_get(s, id, out);
}

int ps_store_sync_list(struct ps_store *s, int64_t project_id, int64_t limit, int64_t before_id, struct ps_sync ***out, size_t *n)
{
	return ops(s)->sync_list(s, project_id, limit, before_id, out, n);
}

int ps_store_sync_active(struct ps_store *s, int64_t project_id, struct ps_sync **out)
{
	return ops(s)->sync_active(s, project_id, out);
}

int ps_store_sync_last_succeeded(struct ps_store *s, int64_t project_id, int64_t at_or_before, struct ps_sync **out)
{
	return ops(s)->sync_last_succeeded(s, project_id, at_or_before, out);
}

int ps_store_sync_save_progress(struct ps_store *s, const struct ps_sync *sync, int64_t lease_ms)
{
	return ops(s)->sync_save_progress(s, sync, lease_ms);
}

int ps_store_sync_request_cancel(struct ps_store *s, int64_t id)
{
	return ops(s)->sync_request_cancel(s, id);
}

int ps_store_sync_cancel_requested(struct ps_store *s, int64_t id, bool *out)
{
	return ops(s)->sync_cancel_requested(s, id, out);
}

/* Every sync's end is the project's latest check: the next due time follows from it
 * (model/schedule.c), in the transaction that ends the sync. */
static int schedule_after_sync(struct ps_store *s, const struct ps_sync *sync)
{
	struct ps_project *p = NULL;
	int rc;

	if ((rc = ps_store_project_get_by_id(s, sync->project_id, &p)) < 0)
		return rc;
	ps_schedule_after_sync(p, sync->status, !sync->up_to_date,
			       sync->finished_at ? sync->finished_at : ps_now_ms());
	rc = ops(s)->project_schedule_save(s, p);
	ps_project_free(p);
	return rc;
}

int ps_store_sync_fail(struct ps_store *s, struct ps_sync *sync, enum ps_sync_status status, const char *code, const char *message, const struct ps_event *final_event)
{
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = ops(s)->sync_fail(s, sync, status, code, message, final_event)) < 0 ||
	    (rc = schedule_after_sync(s, sync)) < 0) {
		ps_store_rollback(s);
		return rc;
	}
	return ps_store_commit(s);
}

/*
 * A run of up-to-date scheduled checks is one history row, so the store grows with the
 * changes, not with the checks. A scheduled sync that ends up to date, right after a sync that
 * was an up-to-date scheduled check of the same head (its base and its predecessor in the
 * chain), takes that row's place: the backend deletes the older row and its events and links
 * this one to the older row's predecessor, counting the checks (backend sync_fold, in the
 * finalize transaction). The new row is the one kept because it is the running sync: its
 * watchers and their Last-Event-ID stay valid, and the older one's stream has ended. Manual,
 * API and webhook syncs are never folded, nor is a check that rescanned (memory or blobs) or
 * one that warned: those are events of their own. The final event's summary says the count.
 */
static int fold_checks(struct ps_store *s, struct ps_sync *sync, const struct ps_event *final_event)
{
	int rc;

	if (!sync->up_to_date || !sync->trigger || strcmp(sync->trigger, "schedule") != 0 ||
	    !sync->previous_sync_id || sync->base_sync_id != sync->previous_sync_id)
		return 0;
	if ((rc = ops(s)->sync_fold(s, sync)) <= 0)
		return rc;
	if (final_event && final_event->summary) {
		struct ps_sync *sum = final_event->summary;
		sum->previous_sync_id = sync->previous_sync_id;
		sum->base_sync_id = sync->base_sync_id;
		sum->checks = sync->checks;
		sum->first_check_at = sync->first_check_at;
		sum->counts.added = sync->counts.added;
		sum->counts.modified = sync->counts.modified;
		sum->counts.deleted = sync->counts.deleted;
		sum->counts.renamed = sync->counts.renamed;
	}
	return 0;
}

int ps_store_sync_finalize(struct ps_store *s, struct ps_sync *sync, const struct ps_change *changes, size_t n, const struct ps_event *final_event)
{
	/* What a fold changes in memory, put back when the transaction does not commit. */
	int64_t prev = sync->previous_sync_id, base = sync->base_sync_id;
	int64_t checks = sync->checks, first = sync->first_check_at;
	struct ps_counts counts = sync->counts;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = fold_checks(s, sync, final_event)) < 0 ||
	    (rc = ops(s)->sync_finalize(s, sync, changes, n, final_event)) < 0 ||
	    (rc = schedule_after_sync(s, sync)) < 0) {
		ps_store_rollback(s);
		sync->previous_sync_id = prev;
		sync->base_sync_id = base;
		sync->checks = checks;
		sync->first_check_at = first;
		sync->counts = counts;
		return rc;
	}
	return ps_store_commit(s);
}

int ps_store_reap(struct ps_store *s, int64_t project_id, int *reaped)
{
	return ops(s)->reap(s, project_id, reaped);
}

int ps_store_sync_next_queued(struct ps_store *s, int64_t *id)
{
	return ops(s)->sync_next_queued(s, id);
}

int ps_store_sync_count_by_status(struct ps_store *s, int64_t counts[PS_SYNC_CANCELLED + 1])
{
	return ops(s)->sync_count_by_status(s, counts);
}

int ps_store_event_append(struct ps_store *s, const struct ps_event *ev)
{
	return ops(s)->event_append(s, ev);
}

int ps_store_event_list(struct ps_store *s, int64_t sync_id, int64_t after_seq, int64_t limit, struct ps_stored_event **out, size_t *n)
{
	return ops(s)->event_list(s, sync_id, after_seq, limit, out, n);
}

/* Both backends keep object ids as their 20 bytes (schema 16): an id that is not 40 lowercase
 * hex digits has no such form, and is refused before anything is written. Sources check the
 * ids they read, so this stops only a broken caller. */
static int bad_object_id(const char *path, const char *sha)
{
	return ps_error_set(PS_EINVAL, "bad_object_id",
			    "'%s': '%s' is not an object id (40 lowercase hex digits)", path, sha);
}

int ps_store_files_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_change *changes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (changes[i].status != PS_CHANGE_DELETED && !ps_sha_valid(changes[i].sha))
			return bad_object_id(changes[i].path, changes[i].sha);
	return ops(s)->files_stage(s, sync, changes, n);
}

int ps_store_snapshot_each(struct ps_store *s, int64_t project_id, int64_t at, const char *prefix, ps_file_cb cb, void *ud)
{
	return ops(s)->snapshot_page(s, project_id, at, prefix, NULL, 0, cb, ud);
}

int ps_store_snapshot_page(struct ps_store *s, int64_t project_id, int64_t at, const char *prefix, const char *after, int64_t limit, ps_file_cb cb, void *ud)
{
	return ops(s)->snapshot_page(s, project_id, at, prefix, after, limit < 0 ? 0 : limit, cb, ud);
}

int ps_store_snapshot_file(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_file *out)
{
	return ops(s)->snapshot_file(s, project_id, at, path, out);
}

int ps_store_diff(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b, struct ps_change **out, size_t *n)
{
	return ops(s)->diff(s, project_id, sync_a, sync_b, out, n);
}

int ps_store_blob_row_put(struct ps_store *s, const char *sha, const struct ps_blob_row *row)
{
	return ops(s)->blob_row_put(s, sha, row);
}

int ps_store_blob_row_get(struct ps_store *s, const char *sha, struct ps_blob_row *out)
{
	return ops(s)->blob_row_get(s, sha, out);
}

int ps_store_blob_row_replace(struct ps_store *s, const char *sha, const struct ps_blob_row *row)
{
	return ops(s)->blob_row_replace(s, sha, row);
}

struct ps_blobcodec *ps_store_blobcodec(struct ps_store *s)
{
	return ops(s)->blobcodec(s);
}

int ps_store_blob_pack_put(struct ps_store *s, const struct ps_blob_pack_row *row, int64_t *id)
{
	return ops(s)->blob_pack_put(s, row, id);
}

int ps_store_blob_pack_get(struct ps_store *s, int64_t id, struct ps_blob_pack_row *out)
{
	return ops(s)->blob_pack_get(s, id, out);
}

int ps_store_blob_pack_members(struct ps_store *s, int64_t id, struct ps_strv *shas)
{
	return ops(s)->blob_pack_members(s, id, shas);
}

int ps_store_blob_packs_sparse(struct ps_store *s, int64_t **ids, size_t *n)
{
	return ops(s)->blob_packs_sparse(s, ids, n);
}

int ps_store_blob_pack_delete(struct ps_store *s, int64_t id)
{
	return ops(s)->blob_pack_delete(s, id);
}

int ps_store_blobs_unpacked(struct ps_store *s, int64_t max_size, struct ps_strv *shas)
{
	return ops(s)->blobs_unpacked(s, max_size, shas);
}

int ps_store_blob_packs_lock(struct ps_store *s)
{
	return ops(s)->blob_packs_lock(s);
}

int ps_store_blob_have(struct ps_store *s, const char *const *shas, size_t n, bool *have)
{
	return ops(s)->blob_have(s, shas, n, have);
}

int ps_store_memory_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_memory_entry *entries, size_t n)
{
	return ops(s)->memory_stage(s, sync, entries, n);
}

int ps_store_memory_stage_removals(struct ps_store *s, const struct ps_sync *sync, const char *const *paths, size_t n)
{
	return ops(s)->memory_stage_removals(s, sync, paths, n);
}

int ps_store_project_memory_rescan(struct ps_store *s, int64_t project_id, int64_t *generation)
{
	return ops(s)->project_memory_rescan(s, project_id, generation);
}

int ps_store_sync_memory_rescan(struct ps_store *s, int64_t sync_id, int64_t generation)
{
	return ops(s)->sync_memory_rescan(s, sync_id, generation);
}

int ps_store_memory_active_paths(struct ps_store *s, int64_t project_id, struct ps_memory_entry **out, size_t *n)
{
	return ops(s)->memory_active_paths(s, project_id, out, n);
}

int ps_store_memory_search(struct ps_store *s, int64_t project_id, const char *query, bool include_superseded, int64_t limit, int64_t offset, struct ps_memory_entry **out, size_t *n)
{
	return ops(s)->memory_search(s, project_id, query, include_superseded, limit, offset, out, n);
}

int ps_store_memory_get(struct ps_store *s, int64_t id, struct ps_memory_entry **out)
{
	return ops(s)->memory_get(s, id, out);
}

int ps_store_memory_history(struct ps_store *s, int64_t id, struct ps_memory_entry **out, size_t *n)
{
	return ops(s)->memory_history(s, id, out, n);
}

/* Tags without repeats (model/memory.c), after a bound on how many were given: the dedupe
 * compares each tag with those kept, and a body of 100,000 tags would keep a server thread busy
 * for seconds before the limit of PS_MEMORY_MAX_TAGS refused it. Repeats within the bound are
 * forgiven (65 tags of which 64 differ are 64 tags). */
static int unique_tags(struct ps_strv *unique, const struct ps_strv *tags)
{
	if (tags->n > 16 * PS_MEMORY_MAX_TAGS)
		return ps_error_set(PS_EINVAL, "too_many_tags", "at most %d tags", PS_MEMORY_MAX_TAGS);
	ps_memory_tags_unique(unique, tags);
	return 0;
}

int ps_store_memory_add(struct ps_store *s, int64_t project_id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out)
{
	struct ps_strv unique = { 0 };
	int rc;

	if (tags && (rc = unique_tags(&unique, tags)) < 0)
		return rc;
	rc = ops(s)->memory_add(s, project_id, title, content, tags ? &unique : NULL, out);
	ps_strv_dispose(&unique);
	return rc;
}

int ps_store_memory_restore(struct ps_store *s, int64_t id, struct ps_memory_entry **out, bool *restored)
{
	return ops(s)->memory_restore(s, id, out, restored);
}

int ps_store_memory_edit(struct ps_store *s, int64_t id, const char *title, const char *content, const struct ps_strv *tags, struct ps_memory_entry **out, bool *changed)
{
	struct ps_strv unique = { 0 };
	int rc;

	if (tags && (rc = unique_tags(&unique, tags)) < 0)
		return rc;
	rc = ops(s)->memory_edit(s, id, title, content, tags ? &unique : NULL, out, changed);
	ps_strv_dispose(&unique);
	return rc;
}

int ps_store_memory_delete(struct ps_store *s, int64_t id, struct ps_memory_entry **out)
{
	return ops(s)->memory_delete(s, id, out);
}

int ps_store_stats(struct ps_store *s, int64_t project_id, struct ps_store_stats *out)
{
	return ops(s)->stats(s, project_id, out);
}

int ps_store_webhook_delivery_add(struct ps_store *s, const char *delivery_id, const char *event)
{
	return ops(s)->webhook_delivery_add(s, delivery_id, event);
}

/* ---- code index ---- */

void ps_code_candidates_free(struct ps_code_candidate *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].file.path);
	free(v);
}

int ps_store_code_index_put(struct ps_store *s, const char *sha, const void *data, size_t len,
			    bool binary)
{
	return ops(s)->code_index_put(s, sha, data, len, binary);
}

int ps_store_code_index_have(struct ps_store *s, const char *const *shas, size_t n,
			     bool *indexed)
{
	return ops(s)->code_index_have(s, shas, n, indexed);
}

int ps_store_code_unindexed(struct ps_store *s, int64_t project_id, struct ps_strv *out)
{
	return ops(s)->code_unindexed(s, project_id, out);
}

int ps_store_code_index_done(struct ps_store *s, int64_t project_id)
{
	return ops(s)->code_index_done(s, project_id);
}

int ps_store_code_candidates(struct ps_store *s, int64_t project_id, int64_t at,
			     const struct ps_code_query *q, const char *prefix,
			     const char *from_path, size_t limit, int64_t *snap,
			     struct ps_code_candidate **out, size_t *n)
{
	return ops(s)->code_candidates(s, project_id, at, q, prefix, from_path, limit, snap, out,
				       n);
}

/* ---- several nodes ---- */

static bool is_pg(const struct ps_store *s)
{
	return ops(s) == &ps_pg_ops;
}

/* A shut prune gate (ps_store_prune_gate_set) holds claims back: nothing is queued for now.
 * PostgreSQL reads the gate in its claim and takeover statements (a round trip saved per
 * claim); SQLite's read is in-process, so it stays a statement of its own here. */
static int gate_check(struct ps_store *s)
{
	bool shut = false;
	int rc;

	if ((rc = ps_store_prune_gate_shut(s, ps_now_ms(), &shut)) < 0)
		return rc;
	return shut ? ps_error_set(PS_ENOTFOUND, "prune_gate", "blobs are being pruned") : 0;
}

int ps_store_sync_claim_next(struct ps_store *s, const struct ps_owner *owner, int64_t *id)
{
	int rc;

	if (is_pg(s))
		return ps_pg_sync_claim_next(s, owner, id);
	if ((rc = gate_check(s)) < 0)
		return rc;
	/* SQLite has one writer at a time: a pick and a guarded claim suffice; a lost race means
	 * another worker claimed that one, so look again. */
	for (;;) {
		if ((rc = ps_store_sync_next_queued(s, id)) < 0)
			return rc;
		rc = ps_store_sync_claim(s, *id, owner);
		if (rc != PS_ECONFLICT)
			return rc;
	}
}

int ps_store_sync_takeover(struct ps_store *s, const struct ps_owner *owner, int64_t *id)
{
	if (is_pg(s))
		return ps_pg_sync_takeover(s, owner, id);
	return ps_error_set(PS_ENOTFOUND, "none_to_take_over", "no sync to take over");
}

int ps_store_node_beat(struct ps_store *s, const struct ps_owner *me)
{
	return is_pg(s) ? ps_pg_node_beat(s, me) : 0;
}

int ps_store_node_leave(struct ps_store *s, const struct ps_owner *me)
{
	return is_pg(s) ? ps_pg_node_leave(s, me) : 0;
}

int ps_store_listen(struct ps_store *s)
{
	if (is_pg(s))
		return ps_pg_listen(s);
	return ps_error_set(PS_ENOTSUPP, "not_supported", "this store does not notify events");
}

int ps_store_wait_events(struct ps_store *s, int timeout_ms, int64_t *ids, size_t max,
			 size_t *n, bool *lost)
{
	if (is_pg(s))
		return ps_pg_wait_events(s, timeout_ms, ids, max, n, lost);
	return ps_error_set(PS_ENOTSUPP, "not_supported", "this store does not notify events");
}

int ps_store_rows_each(struct ps_store *s, const struct ps_copy_table *t, ps_copy_row_cb cb, void *ud)
{
	return is_pg(s) ? ps_pg_rows_each(s, t, cb, ud) : ps_sqlite_rows_each(s, t, cb, ud);
}

int ps_store_rows_insert(struct ps_store *s, const struct ps_copy_table *t,
			 const struct ps_copy_value *rows, size_t nrows)
{
	return is_pg(s) ? ps_pg_rows_insert(s, t, rows, nrows)
			: ps_sqlite_rows_insert(s, t, rows, nrows);
}

int ps_store_rows_done(struct ps_store *s, const struct ps_copy_table *t)
{
	return is_pg(s) ? ps_pg_rows_done(s, t) : ps_sqlite_rows_done(s, t);
}

int ps_store_begin_snapshot(struct ps_store *s)
{
	/* SQLite: the store's write transaction also holds one state for every read. */
	return is_pg(s) ? ps_pg_begin_snapshot(s) : ps_store_begin(s);
}

int ps_store_project_blob_rescan(struct ps_store *s, int64_t project_id, int64_t *generation)
{
	return ops(s)->project_blob_rescan(s, project_id, generation);
}

int ps_store_sync_blob_rescan(struct ps_store *s, int64_t sync_id, int64_t generation)
{
	return ops(s)->sync_blob_rescan(s, sync_id, generation);
}

int ps_store_snapshot_missing_blobs(struct ps_store *s, int64_t project_id, int64_t at,
				    int64_t max_size, ps_file_cb cb, void *ud)
{
	return ops(s)->snapshot_missing_blobs(s, project_id, at, max_size, cb, ud);
}

/* ---- schedule and retention ---- */

int ps_store_schedule_next(struct ps_store *s, int64_t now, int64_t default_max_failures,
			   struct ps_sync **out)
{
	struct ps_project *p = NULL;
	struct ps_sync *sync = NULL, *active = NULL;
	struct ps_event ev = { 0 };
	int64_t pid = 0;
	bool pending = true;
	int rc;

	if (out)
		*out = NULL;
	/* The scheduler asks every second; nearly always nothing is due. A plain read answers that
	 * without the write lock (SQLite) or a write transaction (PostgreSQL), so an idle server
	 * does not contend with the syncs' writes. A project that becomes due just after the read
	 * is taken at the next tick; the claim below stays guarded, so exactly once still holds. */
	if ((rc = ops(s)->schedule_pending(s, now, default_max_failures, &pending)) < 0)
		return rc;
	if (!pending)
		return ps_error_set(PS_ENOTFOUND, "none_due", "no project is due");
	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = ops(s)->schedule_claim(s, now, default_max_failures, &pid)) < 0) {
		/* No project due is an answer; the pauses made on the way still count. */
		if (rc == PS_ENOTFOUND) {
			int crc = ps_store_commit(s);
			return crc < 0 ? crc : ps_error_set(PS_ENOTFOUND, "none_due",
							    "no project is due");
		}
		goto fail;
	}
	if ((rc = ps_store_project_get_by_id(s, pid, &p)) < 0)
		goto fail;
	/* A sync already queued or running is this check; asking first keeps the transaction
	 * clean (a refused insert would abort it on PostgreSQL). */
	(void)ps_store_reap(s, pid, NULL);
	if (ps_store_sync_active(s, pid, &active) == 0) {
		ps_sync_free(active);
		ps_project_free(p);
		return ps_store_commit(s);
	}
	ps_error_clear();
	if ((rc = ps_store_sync_create(s, pid, p->branch ? p->branch : "", "schedule", NULL,
				       &sync)) < 0)
		goto fail;
	/* Its first event in the same transaction, as the API queues one (server/workers.c). */
	ev.sync_id = sync->id;
	ev.seq = 1;
	ev.kind = PS_EVENT_QUEUED;
	ev.phase = PS_PHASE_NONE;
	if ((rc = ps_store_event_append(s, &ev)) < 0)
		goto fail;
	ps_project_free(p);
	if ((rc = ps_store_commit(s)) < 0) {
		ps_sync_free(sync);
		return rc;
	}
	if (out)
		*out = sync;
	else
		ps_sync_free(sync);
	return 0;
fail:
	ps_store_rollback(s);
	ps_sync_free(sync);
	ps_project_free(p);
	return rc;
}

int ps_store_project_resume(struct ps_store *s, int64_t project_id, int64_t now)
{
	struct ps_project *p = NULL;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = ps_store_project_get_by_id(s, project_id, &p)) < 0)
		goto fail;
	ps_schedule_resume(p, now);
	if ((rc = ops(s)->project_schedule_save(s, p)) < 0)
		goto fail;
	ps_project_free(p);
	return ps_store_commit(s);
fail:
	ps_project_free(p);
	ps_store_rollback(s);
	return rc;
}

int ps_store_prune_syncs(struct ps_store *s, int64_t project_id, int64_t start_sync_id,
			 struct ps_prune_stats *out)
{
	return ops(s)->prune_syncs(s, project_id, start_sync_id, out);
}

int ps_store_prune_blobs(struct ps_store *s, struct ps_prune_stats *out)
{
	return ops(s)->prune_blobs(s, out);
}

int ps_store_compact(struct ps_store *s)
{
	return ops(s)->compact(s);
}

int ps_store_prune_gate_set(struct ps_store *s, int64_t until, int64_t only_if)
{
	return ops(s)->prune_gate_set(s, until, only_if);
}

int ps_store_prune_gate_shut(struct ps_store *s, int64_t now, bool *shut)
{
	int64_t until = 0;
	int rc = ops(s)->prune_gate_get(s, &until);

	*shut = rc == 0 && until > now;
	return rc;
}

int ps_store_dir_trees_stage(struct ps_store *s, const struct ps_sync *sync, const struct ps_tree_dir *dirs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (dirs[i].sha[0] && !ps_sha_valid(dirs[i].sha))
			return bad_object_id(dirs[i].path, dirs[i].sha);
	return ops(s)->dir_trees_stage(s, sync, dirs, n);
}

int ps_store_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at, const char *path, struct ps_tree_dir *out)
{
	return ops(s)->dir_tree_get(s, project_id, at, path, out);
}

int ps_store_dir_trees_each(struct ps_store *s, int64_t project_id, int64_t at, ps_dir_cb cb, void *ud)
{
	struct ps_sync *y = NULL;
	int rc = at > 0 ? ps_store_sync_get(s, at, &y)
			: ps_store_sync_last_succeeded(s, project_id, 0, &y);

	if (rc == 0 && (y->project_id != project_id || y->status != PS_SYNC_SUCCEEDED))
		rc = ps_error_set(PS_ENOTFOUND, "no_snapshot", "sync %lld is not a snapshot of this "
				  "project", (long long)y->id);
	else if (rc == PS_ENOTFOUND && at <= 0)
		rc = ps_error_set(PS_ENOTFOUND, "no_snapshot", "the project has no succeeded sync yet");
	if (rc == 0)
		rc = ops(s)->dir_trees_each(s, project_id, y->id, cb, ud);
	ps_sync_free(y);
	return rc;
}

int ps_store_sync_commits_put(struct ps_store *s, const struct ps_sync *sync, const struct ps_commit *v, size_t n)
{
	return ops(s)->sync_commits_put(s, sync, v, n > PS_COMMITS_MAX ? PS_COMMITS_MAX : n);
}

int ps_store_sync_commits(struct ps_store *s, int64_t sync_id, int64_t limit, struct ps_commit **out, size_t *n)
{
	return ops(s)->sync_commits(s, sync_id, limit, out, n);
}
