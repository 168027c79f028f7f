/*
 * Project-level rules and views shared by the CLI and the server: what a project name may be,
 * and a project's status (its running sync, last succeeded sync and last sync), so that
 * `projsync status --json` and `GET /projects/{name}/sync` cannot drift apart.
 */
#ifndef PS_CORE_PROJECT_H
#define PS_CORE_PROJECT_H

#include <jansson.h>
#include <stdbool.h>

#include "model/model.h"
#include "source/source.h"
#include "store/store.h"

/* `[A-Za-z0-9][A-Za-z0-9._-]{0,99}`: safe in URLs, file names and shells. */
bool ps_project_name_valid(const char *name);

struct ps_project_status {
	struct ps_sync *running;        /* queued or running sync, or NULL */
	struct ps_sync *last_succeeded;
	struct ps_sync *last_sync;      /* the newest sync, whatever its status */
};

/* Loads the status of `p`; the caller disposes it. */
int ps_project_status_load(struct ps_store *s, const struct ps_project *p,
			   struct ps_project_status *out);
void ps_project_status_dispose(struct ps_project_status *st);
/*
 * The content of a file of project `p` (blob `sha`, `size` bytes; size < 0: unknown), as the
 * project sees it: PS_ENOTFOUND (slug "not_stored") for a file over the project's own size
 * limit even when the blob is in the store because another project (or a higher limit
 * before) put it there, so what a project shows (cat, the file endpoint, grep, verify,
 * checkout) never depends on another project. Otherwise ps_store_blob_get.
 */
int ps_project_blob_get(struct ps_store *s, const struct ps_project *p, const char *sha,
			int64_t size, void **data, size_t *len);

/*
 * The size up to which every file of snapshot `sync_id` of project `p` must have its blob in the
 * store, or -1 when no such bound holds. Blobs are stored before the rows that name them and a
 * prune removes only blobs no row names, so in the project's latest snapshot, with no blob rescan
 * owed (a raised limit makes the next sync fetch what now fits), every file within the
 * project's limit has its content: one that does not was lost (`verify --blobs`'s
 * blob_missing). An older snapshot may hold files kept as metadata only under a lower limit
 * that no row records: -1. A store error also reads as -1 (cannot be known) and is cleared.
 */
int64_t ps_project_blob_bound(struct ps_store *s, const struct ps_project *p, int64_t sync_id);

/* Whether a file of `size` bytes whose blob is absent was lost rather than kept as metadata
 * only, under the bound ps_project_blob_bound gave for its snapshot. */
static inline bool ps_project_blob_lost(int64_t bound, int64_t size)
{
	return size >= 0 && size <= bound;
}

/*
 * Why file `f` of snapshot `sync_id` of project `p` has no stored content (its blob is absent;
 * a submodule is not asked about). Sets the error and returns:
 * - PS_ETOOBIG (slug "too_big") when it is over the project's limit: a sync kept it as
 *   metadata only;
 * - PS_ESTORE (slug "blob_missing") when ps_project_blob_lost says its blob was lost: a store
 *   fault, the message names the blob and `projsync verify --blobs`;
 * - PS_ECONFLICT (slug "not_fetched") otherwise: a raised limit lets it in, and it was either
 *   over the limit when it was synced or lost since, which the store cannot tell apart (the
 *   next sync fetches it if it is in the latest snapshot).
 * HTTP shows them as 422, 500 and 409; `cat` prints the message and exits 2, 1 and 4.
 */
int ps_project_content_missing(struct ps_store *s, const struct ps_project *p, int64_t sync_id,
			       const struct ps_file *f);

/*
 * A change of a project's settings, shared by `project set` and PATCH /projects/{name} so they
 * cannot drift apart. NULL / false / 0 leave a setting as it is.
 */
struct ps_project_change {
	const char *name;              /* a new name (checked with ps_project_name_valid) */
	const char *source;            /* a new source, as it is to be stored */
	bool continue_history;         /* accept a source that is another repository (below) */
	bool schedule;                 /* the caller set p's schedule, retention or code index:
	                                  write them */
	const char *branch;            /* sync this branch from now on */
	bool default_branch;           /* follow the source's default branch */
	const struct ps_strv *memory_globs; /* replace the memory globs (when n > 0) */
	int64_t max_blob_size;         /* > 0: the new size limit */
};

/* True when the change needs ps_project_change_check (a new source or branch): the only part
 * that waits on a network. */
bool ps_project_change_needs_check(const struct ps_project *p, const struct ps_project_change *c);
/*
 * Checks a new source or branch like `project add` does (ps_source_check_branch: the source
 * is a repository, the branch that will be synced is one of its branches). Blocks on the
 * network for a remote source; touches no store, so it may run on any thread.
 */
int ps_project_change_check(const struct ps_project *p, const struct ps_project_change *c,
			    const struct ps_source_opts *opts);
/*
 * The store rules of a change, without writing: `continue_history` without a new source
 * (PS_EINVAL, continue_history_without_source); a name taken by another project
 * (PS_ECONFLICT, project_exists); a new name or source while a sync is queued or running
 * (PS_ECONFLICT, sync_active); a source that is not the same repository spelled differently
 * on a project with succeeded syncs (PS_ECONFLICT, source_has_history) unless
 * `continue_history`. A project has one snapshot chain: its next sync records what differs
 * from the last snapshot, as a one-off `sync --branch` does; another repository deserves its
 * own project. Cheap: callers run it before the network check too, to refuse early.
 */
int ps_project_change_allowed(struct ps_store *s, const struct ps_project *p,
			      const struct ps_project_change *c);
/*
 * Applies a checked change in one transaction (the rules above again, then name and source,
 * then branch, globs and size limit through ps_store_project_update, which asks the next sync
 * for a memory rescan on new globs and a blob rescan on a raised limit) and updates `p`.
 */
int ps_project_change_apply(struct ps_store *s, struct ps_project *p,
			    const struct ps_project_change *c);

/* {"project", "running", "last_succeeded", "last_sync"} (new reference). */
json_t *ps_project_status_to_json(const struct ps_project *p, const struct ps_project_status *st);

#endif
