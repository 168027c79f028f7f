/*
 * Retention: which syncs a project's policy (--keep-syncs N, --keep-days D) keeps, and the prune
 * that removes the rest, step by step, each step one store transaction (store.h
 * ps_store_prune_syncs, ps_store_prune_blobs, ps_store_compact), so a prune killed at any moment
 * leaves a consistent store.
 */
#ifndef PS_CORE_RETENTION_H
#define PS_CORE_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "store/store.h"

/*
 * The sync that starts the chain the policy keeps, from a project's syncs newest first: kept
 * are the newest `keep_syncs` succeeded syncs and the succeeded syncs that finished within
 * `keep_days` of `now` (a sync kept by either rule stays), and always the newest succeeded one.
 * The oldest kept one is the start; everything older goes. 0 when nothing goes (no limit set,
 * no succeeded sync, or the start is already the first sync).
 */
int64_t ps_retention_start(struct ps_sync *const *syncs, size_t n, int64_t keep_syncs,
			   int64_t keep_days, int64_t now);

/* One project's part of a prune, for the caller to print. */
struct ps_prune_project {
	const char *name;
	int64_t start_sync_id;         /* the new first sync */
	int64_t first_removed, last_removed; /* the sync ids that go */
	struct ps_prune_stats stats;   /* syncs, file versions and events of this project */
};
typedef void (*ps_prune_cb)(void *ud, const struct ps_prune_project *pp);

/*
 * Applies the retention policy of project `name` (NULL: every project with a policy): one
 * transaction per project, then one for the blobs no project references any more, then gives
 * the space back (only when something was deleted). With `dry_run` it runs the same steps
 * inside one transaction that it rolls back, so the counts and bytes are exactly what a prune
 * would remove and nothing changes. `cb` (may be NULL) is called per project that loses syncs;
 * `total` (zeroed here) sums everything. PS_ENOTFOUND for an unknown project.
 */
int ps_prune(struct ps_store *s, const char *name, int64_t now, bool dry_run, ps_prune_cb cb,
	     void *ud, struct ps_prune_stats *total);

#endif
