/*
 * The scheduler of `projsync serve`: one thread that, once a second, asks the store for the
 * projects whose scheduled sync is due (ps_store_schedule_next) and lets the workers know, and
 * that applies the retention policies every --prune-every. It holds no schedule in memory: the
 * store decides which project is due and which node queues it, so several servers on one
 * PostgreSQL database queue each due sync exactly once, and any node's workers run it
 * (server/workers.c). It has its own store handle.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/retention.h"
#include "server/http.h"
#include "util/error.h"

/* At most this many syncs queued per tick, so a store full of overdue projects (a server that
 * was down) does not hold the thread for long; the rest follow at the next ticks. */
#define MAX_PER_TICK 200
/* Syncs queued in one transaction: enough to share a commit, few enough that the write lock
 * (SQLite) is held for milliseconds. */
#define PER_TRANSACTION 32
/* The blob prune's gate (store.h, ps_store_prune_gate_set): how long claims are held back at
 * most for the running syncs to end (a long GitHub sync may outlast it: the syncs it held back
 * then run), and how soon after such a miss the blobs are tried again. */
#define GATE_MS (60 * 1000)
#define GATE_RETRY_MS (30 * 1000)

struct ps_scheduler {
	struct ps_server *srv;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	int64_t gate_until;  /* the prune gate this node shut (wall clock ms), 0: none */
	int64_t blobs_retry; /* when to shut it again (monotonic ms), 0: no blob prune waits */
	int gate_misses;     /* gates in a row that ended with syncs still running */
};

/* When to try the blobs again after a miss: GATE_RETRY_MS, doubling with each miss in a row up
 * to the prune interval, so that syncs which always outlast the gate are held back a few times
 * per interval, not two thirds of the time. */
static int64_t gate_retry_at(const struct ps_scheduler *sch)
{
	int64_t cap = sch->srv->cfg.prune_interval_ms > GATE_RETRY_MS ?
		sch->srv->cfg.prune_interval_ms : GATE_RETRY_MS;
	int64_t delay = GATE_RETRY_MS;

	for (int i = 1; i < sch->gate_misses && delay < cap; i++)
		delay *= 2;
	return ps_mono_ms() + (delay < cap ? delay : cap);
}

/* Lets the workers know of a queued sync; after its transaction committed. Not logged: a
 * scheduled sync's records are its start and its end (workers.c), which name the trigger, so
 * a server checking 1,000 projects every 10 s writes two lines per check, not three. */
static void queued(struct ps_scheduler *sch, struct ps_sync *sync)
{
	if (sch->srv->workers)
		ps_workers_poke(sch->srv->workers);
	ps_sync_free(sync);
}

/*
 * Queues the due projects. The first one is asked for on its own, so an idle tick stays a
 * plain read (no write lock, no write transaction). When one was due, more usually are (1,000
 * projects at 10 s: a hundred a second), and the rest are queued PER_TRANSACTION to a
 * transaction: one commit for many instead of one each. Each is still claimed with the
 * store's guard, so exactly once holds across nodes; the workers are poked after the commit,
 * when they can see the syncs.
 */
static void tick(struct ps_scheduler *sch, struct ps_store *store)
{
	const struct ps_server_config *cfg = &sch->srv->cfg;
	struct ps_sync *batch[PER_TRANSACTION];
	struct ps_sync *sync = NULL;
	int done = 1, rc;

	rc = ps_store_schedule_next(store, ps_now_ms(), cfg->max_failures, &sync);
	if (rc < 0) {
		if (rc != PS_ENOTFOUND)
			ps_log_at("error", "scheduler: %s, retrying in a moment", ps_error_message());
		ps_error_clear();
		return;
	}
	if (sync)
		queued(sch, sync);
	while (done < MAX_PER_TICK) {
		size_t n = 0;
		bool more = true;

		if (ps_store_begin(store) < 0) {
			ps_log_at("error", "scheduler: %s, retrying in a moment", ps_error_message());
			break;
		}
		while (n < PER_TRANSACTION && done < MAX_PER_TICK) {
			sync = NULL;
			rc = ps_store_schedule_next(store, ps_now_ms(), cfg->max_failures, &sync);
			if (rc < 0) {
				more = false;
				break;
			}
			done++;
			if (sync) /* NULL: its sync was already queued or running, that is the check */
				batch[n++] = sync;
		}
		if (rc < 0 && rc != PS_ENOTFOUND)
			ps_log_at("error", "scheduler: %s, retrying in a moment", ps_error_message());
		/* After an inner failure the transaction is rolled back here and reports it. */
		rc = ps_store_commit(store);
		for (size_t i = 0; i < n; i++) {
			if (rc == 0)
				queued(sch, batch[i]);
			else
				ps_sync_free(batch[i]);
		}
		if (!more || rc < 0)
			break;
	}
	ps_error_clear();
}

/*
 * Blobs are pruned only at a moment when no sync runs (ps_store_prune_blobs: a running sync may
 * hold blobs no file version names yet). On a busy server (many scheduled projects, several
 * nodes, long syncs) that moment does not come by itself, so when a prune finds syncs running
 * the scheduler shuts the store's prune gate: no node's worker claims a queued sync, the
 * running ones end, the blobs go and the gate opens again, at most GATE_MS later.
 */
static void gate_shut(struct ps_scheduler *sch, struct ps_store *store)
{
	int64_t until = ps_now_ms() + GATE_MS;

	sch->blobs_retry = 0;
	if (ps_store_prune_gate_set(store, until, -1) < 0) {
		ps_log_at("warn", "prune: cannot hold syncs back to prune blobs: %s, trying again later",
		       ps_error_message());
		ps_error_clear();
		sch->blobs_retry = ps_mono_ms() + GATE_RETRY_MS;
		return;
	}
	sch->gate_until = until;
	ps_log("prune: syncs are running; new syncs wait (up to %d s) to prune blobs",
	       GATE_MS / 1000);
}

static void gate_open(struct ps_scheduler *sch, struct ps_store *store)
{
	if (ps_store_prune_gate_set(store, 0, sch->gate_until) < 0) {
		/* It opens by itself at gate_until. */
		ps_log_at("error", "prune: %s", ps_error_message());
		ps_error_clear();
	}
	sch->gate_until = 0;
}

/* One tick of a shut gate: prunes the blobs once no sync runs, gives up at the deadline. */
static void gate_tick(struct ps_scheduler *sch, struct ps_store *store)
{
	int64_t counts[PS_SYNC_CANCELLED + 1];
	struct ps_prune_stats b = { 0 };
	int rc;

	if ((rc = ps_store_sync_count_by_status(store, counts)) == 0 && counts[PS_SYNC_RUNNING] == 0)
		rc = ps_store_prune_blobs(store, &b);
	if (rc == 0 && counts[PS_SYNC_RUNNING] == 0 && !b.blobs_skipped) {
		gate_open(sch, store);
		sch->gate_misses = 0;
		if (b.blobs && ps_store_compact(store) < 0) {
			ps_log_at("error", "prune: %s", ps_error_message());
			ps_error_clear();
		}
		ps_log("prune: removed %lld blobs (%lld bytes), rewrote %lld deltas whose base went",
		       (long long)b.blobs, (long long)b.blob_bytes, (long long)b.blobs_rewritten);
		return;
	}
	if (rc < 0) {
		ps_log_at("error", "prune: %s", ps_error_message());
		ps_error_clear();
	}
	if (ps_now_ms() >= sch->gate_until) {
		gate_open(sch, store);
		sch->gate_misses++;
		sch->blobs_retry = gate_retry_at(sch);
		ps_log("prune: syncs still running after %d s; blobs left, trying again in %lld s",
		       GATE_MS / 1000, (long long)((sch->blobs_retry - ps_mono_ms() + 500) / 1000));
	}
}

static void prune(struct ps_scheduler *sch, struct ps_store *store)
{
	struct ps_prune_stats total;

	if (ps_prune(store, NULL, ps_now_ms(), false, NULL, NULL, &total) < 0) {
		ps_log_at("error", "prune: %s, trying again later", ps_error_message());
		ps_error_clear();
		return;
	}
	if (total.syncs || total.blobs)
		ps_log("prune: removed %lld syncs, %lld file versions, %lld blobs (%lld bytes), "
		       "rewrote %lld deltas whose base went",
		       (long long)total.syncs, (long long)total.file_versions,
		       (long long)total.blobs, (long long)total.blob_bytes,
		       (long long)total.blobs_rewritten);
	if (total.blobs_skipped && !sch->gate_until)
		gate_shut(sch, store);
}

static void *run(void *arg)
{
	struct ps_scheduler *sch = arg;
	const struct ps_server_config *cfg = &sch->srv->cfg;
	struct ps_store *store = NULL;
	int64_t tick_ms = cfg->schedule_tick_ms > 0 ? cfg->schedule_tick_ms : 1000;
	int64_t next_prune = cfg->prune_interval_ms > 0 ? ps_mono_ms() + cfg->prune_interval_ms : 0;
	bool down = false;

	pthread_mutex_lock(&sch->mu);
	while (!sch->stopping) {
		struct timespec until;
		int64_t now;

		pthread_mutex_unlock(&sch->mu);
		if (!store && ps_server_store_open(&store, cfg->db_url) < 0) {
			/* Once per outage, not at every tick while the database is away. */
			if (!down)
				ps_log_at("error", "scheduler: cannot open the store: %s",
					  ps_error_message());
			store = NULL;
		}
		down = !store;
		if (store) {
			tick(sch, store);
			if (next_prune && ps_mono_ms() >= next_prune) {
				prune(sch, store);
				next_prune = ps_mono_ms() + cfg->prune_interval_ms;
			}
			if (sch->gate_until)
				gate_tick(sch, store);
			else if (sch->blobs_retry && ps_mono_ms() >= sch->blobs_retry)
				gate_shut(sch, store);
		}
		pthread_mutex_lock(&sch->mu);
		if (sch->stopping)
			break;
		clock_gettime(CLOCK_REALTIME, &until);
		now = (int64_t)until.tv_nsec + tick_ms * 1000000;
		until.tv_sec += now / 1000000000;
		until.tv_nsec = now % 1000000000;
		pthread_cond_timedwait(&sch->cv, &sch->mu, &until);
	}
	pthread_mutex_unlock(&sch->mu);
	if (store && sch->gate_until)
		gate_open(sch, store); /* a server that stops does not hold the others back */
	ps_store_free(store);
	return NULL;
}

int ps_scheduler_start(struct ps_scheduler **out, struct ps_server *srv)
{
	struct ps_scheduler *sch = ps_calloc(1, sizeof(*sch));

	sch->srv = srv;
	pthread_mutex_init(&sch->mu, NULL);
	pthread_cond_init(&sch->cv, NULL);
	if (pthread_create(&sch->thread, NULL, run, sch) != 0) {
		pthread_mutex_destroy(&sch->mu);
		pthread_cond_destroy(&sch->cv);
		free(sch);
		return ps_error_set(PS_EFAIL, "thread", "cannot start the scheduler thread");
	}
	*out = sch;
	return 0;
}

void ps_scheduler_stop(struct ps_scheduler *sch)
{
	if (!sch)
		return;
	pthread_mutex_lock(&sch->mu);
	sch->stopping = true;
	pthread_cond_signal(&sch->cv);
	pthread_mutex_unlock(&sch->mu);
	pthread_join(sch->thread, NULL);
	pthread_mutex_destroy(&sch->mu);
	pthread_cond_destroy(&sch->cv);
	free(sch);
}

void ps_scheduler_poke(struct ps_scheduler *sch)
{
	pthread_mutex_lock(&sch->mu);
	pthread_cond_signal(&sch->cv);
	pthread_mutex_unlock(&sch->mu);
}
