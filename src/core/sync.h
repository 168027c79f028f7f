/*
 * The sync pipeline as a generator: prepare -> scan -> fetch -> import -> finalize. A caller
 * advances a run one step at a time and gets the next event; the CLI renders events as a
 * progress line, the server's workers publish them to SSE watchers. Both run this same loop:
 *
 *     struct ps_sync_run *run;
 *     const struct ps_event *ev;
 *     if (ps_sync_begin(&run, &ctx, "name", &opts) < 0) ...error...
 *     while (ps_sync_next(run, &ev) == PS_SYNC_MORE)
 *             publish(ev);           // the last one is succeeded | failed | cancelled
 *     ps_sync_end(run);
 *
 * Each event is stored (ps_store_event_append) before it is handed out, so another process can
 * replay it. A step does a bounded amount of work (a batch of trees, blobs or rows) and renews
 * the sync's lease, so a cancel request is honoured within one step.
 */
#ifndef PS_CORE_SYNC_H
#define PS_CORE_SYNC_H

#include "model/model.h"
#include "source/source.h"
#include "store/store.h"

struct ps_sync_run;

/* What a pipeline runs with: injected, never global. */
struct ps_sync_ctx {
	struct ps_store *store;
	struct ps_source_opts source_opts;
	/* Opens the project's source; NULL = ps_source_open. Tests hand in fakes here. */
	int (*open_source)(struct ps_source **out, const char *spec,
			   const struct ps_source_opts *opts);
	int64_t lease_ms;           /* 0 = default (60 s) */
	int64_t progress_interval_ms; /* minimum gap between progress events; 0 = default (200) */
};

struct ps_sync_opts {
	const char *branch;         /* NULL = the project's selected branch (or the default) */
	const char *trigger;        /* NULL = "cli" */
};

enum { PS_SYNC_DONE = 0, PS_SYNC_MORE = 1 };

/*
 * Creates the sync (running, owned by this process) and returns a run positioned before its
 * first event. PS_ENOTFOUND for an unknown project, PS_ECONFLICT when a sync of the project is
 * already queued or running. Nothing is created on failure.
 */
int ps_sync_begin(struct ps_sync_run **out, struct ps_sync_ctx *ctx, const char *project,
		  const struct ps_sync_opts *opts);

/*
 * Runs a sync that a worker claimed from the queue (ps_store_sync_claim already done).
 */
int ps_sync_resume(struct ps_sync_run **out, struct ps_sync_ctx *ctx, int64_t sync_id);

/*
 * Advances the run by one step. Returns PS_SYNC_MORE with *ev pointing at the next event
 * (borrowed until the next call), or PS_SYNC_DONE after the final event has been returned.
 * Failures of the sync itself are not errors of this call: they arrive as a `failed` event.
 */
int ps_sync_next(struct ps_sync_run *run, const struct ps_event **ev);

/* Asks the run to stop at the next step boundary; it then ends `cancelled`. Async-signal-safe. */
void ps_sync_cancel(struct ps_sync_run *run);
/* The same, because the server running it stops (SIGTERM): the sync ends `cancelled` saying so,
 * not as if someone had cancelled it. Async-signal-safe. */
void ps_sync_cancel_stopping(struct ps_sync_run *run);

/* The sync as it stands (borrowed). */
const struct ps_sync *ps_sync_run_sync(const struct ps_sync_run *run);

/* Releases the run. A run abandoned before its final event is ended as cancelled. */
void ps_sync_end(struct ps_sync_run *run);

#endif
