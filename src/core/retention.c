/*
 * Retention (retention.h): the policy as a pure function over a project's syncs, and the prune
 * that applies it through the store, one transaction per step.
 */
#include "core/retention.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "util/util.h"

#define DAY_MS (24LL * 3600 * 1000)

int64_t ps_retention_start(struct ps_sync *const *syncs, size_t n, int64_t keep_syncs,
			   int64_t keep_days, int64_t now)
{
	int64_t start = 0, first = 0, kept = 0;

	if (keep_syncs <= 0 && keep_days <= 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct ps_sync *y = syncs[i];
		bool keep;

		if (!first || y->id < first)
			first = y->id;
		if (y->status != PS_SYNC_SUCCEEDED)
			continue;
		kept++;
		keep = kept == 1 || (keep_syncs > 0 && kept <= keep_syncs) ||
		       (keep_days > 0 && y->finished_at >= now - keep_days * DAY_MS);
		if (keep && (!start || y->id < start))
			start = y->id;
	}
	return start && start > first ? start : 0;
}

/* A test hook like core/sync.c's: PROJSYNC_TEST_PRUNE_STEP_DELAY_MS sleeps after each step, so
 * the crash tests can kill a prune between its transactions as well as inside them. */
static void step_delay(void)
{
	const char *v = getenv("PROJSYNC_TEST_PRUNE_STEP_DELAY_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;

	if (ms > 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static void add_stats(struct ps_prune_stats *to, const struct ps_prune_stats *from)
{
	to->syncs += from->syncs;
	to->file_versions += from->file_versions;
	to->events += from->events;
	to->blobs += from->blobs;
	to->blob_bytes += from->blob_bytes;
	to->blobs_rewritten += from->blobs_rewritten;
	to->packs_rewritten += from->packs_rewritten;
	to->blobs_skipped = to->blobs_skipped || from->blobs_skipped;
}

static int prune_project(struct ps_store *s, const struct ps_project *p, int64_t now,
			 ps_prune_cb cb, void *ud, struct ps_prune_stats *total)
{
	struct ps_prune_project pp;
	struct ps_sync **syncs = NULL;
	size_t n = 0;
	int rc, tries = 0;

	if (p->keep_syncs <= 0 && p->keep_days <= 0)
		return 0;
again:
	pp = (struct ps_prune_project){ .name = p->name };
	syncs = NULL;
	n = 0;
	if ((rc = ps_store_sync_list(s, p->id, 0, 0, &syncs, &n)) < 0)
		return rc;
	pp.start_sync_id = ps_retention_start(syncs, n, p->keep_syncs, p->keep_days, now);
	for (size_t i = 0; i < n; i++) {
		if (pp.start_sync_id && syncs[i]->id < pp.start_sync_id) {
			if (!pp.first_removed || syncs[i]->id < pp.first_removed)
				pp.first_removed = syncs[i]->id;
			if (syncs[i]->id > pp.last_removed)
				pp.last_removed = syncs[i]->id;
		}
		ps_sync_free(syncs[i]);
	}
	free(syncs);
	if (!pp.start_sync_id)
		return 0;
	if ((rc = ps_store_prune_syncs(s, p->id, pp.start_sync_id, &pp.stats)) < 0) {
		/* The start was read before the prune's transaction: a scheduled check that
		 * finished meanwhile may have folded it away (store.h, ps_store_sync_finalize).
		 * The history is read again, once. */
		if (rc == PS_EINVAL && !tries++ && ps_error_slug() &&
		    strcmp(ps_error_slug(), "not_a_start") == 0) {
			ps_error_clear();
			goto again;
		}
		return ps_error_wrap(rc, "project '%s': ", p->name);
	}
	add_stats(total, &pp.stats);
	if (cb)
		cb(ud, &pp);
	step_delay();
	return 0;
}

int ps_prune(struct ps_store *s, const char *name, int64_t now, bool dry_run, ps_prune_cb cb,
	     void *ud, struct ps_prune_stats *total)
{
	struct ps_project **ps = NULL;
	size_t n = 0;
	int rc = 0;

	memset(total, 0, sizeof(*total));
	if (name) {
		ps = ps_calloc(1, sizeof(*ps));
		if ((rc = ps_store_project_get(s, name, &ps[0])) < 0) {
			free(ps);
			return rc;
		}
		n = 1;
	} else if ((rc = ps_store_project_list(s, &ps, &n)) < 0) {
		return rc;
	}
	/* A dry run is the real prune in one transaction that is never committed. */
	if (dry_run && (rc = ps_store_begin(s)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = prune_project(s, ps[i], now, cb, ud, total);
	if (rc == 0) {
		struct ps_prune_stats b = { 0 };
		if ((rc = ps_store_prune_blobs(s, &b)) == 0) {
			add_stats(total, &b);
			step_delay();
		}
	}
	if (dry_run)
		ps_store_rollback(s);
	else if (rc == 0 && (total->syncs || total->blobs))
		rc = ps_store_compact(s);
out:
	for (size_t i = 0; i < n; i++)
		ps_project_free(ps[i]);
	free(ps);
	return rc;
}
