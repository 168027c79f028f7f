/*
 * Sync workers: a small pool of threads that claim queued syncs from the store and run them with
 * the pipeline generator (core/sync.h), the same loop `projsync sync` runs. The queue is the
 * syncs table itself (status 'queued'), so a sync queued by the API, a webhook or another
 * server process is found the same way; the store's claim (queued -> running, one row update)
 * decides which worker gets it. Each worker has its own store handle. With nothing queued, a
 * worker takes over a running sync whose node died (PostgreSQL, ps_store_sync_takeover) and
 * runs it to its end under the same id.
 *
 * Every event the generator returns is already stored; the worker pokes the SSE hub so
 * watchers get it at once instead of at the hub's next poll, and logs sync transitions as
 * structured records (log.h).
 * Stopping cancels each running sync at its next step boundary (ps_sync_cancel_stopping, so
 * that its end says why) and waits for its final event.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/sync.h"
#include "model/schedule.h"
#include "server/http.h"
#include "server/log.h"
#include "util/error.h"

struct worker {
	struct ps_workers *pool;
	int index;
	pthread_t thread;
	struct ps_sync_run *run;  /* the sync it runs now, under pool->mu */
};

struct ps_workers {
	struct ps_server *srv;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	unsigned pokes;
	struct worker *w;
	int n;
	size_t running;
	pthread_t node;           /* the node's heartbeat (nodes table on PostgreSQL) */
	bool node_started;
};

int ps_server_queue_sync(struct ps_server *srv, struct ps_store *store,
			 const struct ps_project *project, const char *branch, const char *trigger,
			 struct ps_sync **out)
{
	struct ps_sync *sync = NULL;
	struct ps_event ev = { 0 };
	int rc;

	if (!branch)
		branch = project->branch ? project->branch : "";
	/* One transaction: a worker must never see the sync before its `queued` event, or the
	 * pipeline would number its first event 1 too. */
	if ((rc = ps_store_begin(store)) < 0)
		return rc;
	if ((rc = ps_store_sync_create(store, project->id, branch, trigger, NULL, &sync)) < 0)
		goto fail;
	ev.sync_id = sync->id;
	ev.seq = 1;
	ev.kind = PS_EVENT_QUEUED;
	ev.phase = PS_PHASE_NONE;
	if ((rc = ps_store_event_append(store, &ev)) < 0)
		goto fail;
	if ((rc = ps_store_commit(store)) < 0) {
		ps_sync_free(sync);
		return rc;
	}
	ps_log_kv("info", "sync queued", PS_LOG_STR("project", project->name),
		  PS_LOG_INT("sync_id", sync->id), PS_LOG_STR("trigger", trigger),
		  PS_LOG_STR("branch", branch[0] ? branch : "default"));
	if (srv && srv->workers)
		ps_workers_poke(srv->workers);
	*out = sync;
	return 0;
fail:
	ps_store_rollback(store);
	ps_sync_free(sync);
	return rc;
}

/* One record per transition (log.h): the project, sync id and trigger on every line, the
 * duration on the final one, so a log reader can follow a sync without the store. */
static void log_event(const struct ps_sync *s, const struct ps_event *ev, int64_t duration_ms)
{
	const struct ps_sync *sum = ev->summary;

	switch (ev->kind) {
	case PS_EVENT_PHASE:
		ps_log_kv("info", "sync phase", PS_LOG_STR("project", s->project),
			  PS_LOG_INT("sync_id", s->id), PS_LOG_STR("trigger", s->trigger),
			  PS_LOG_STR("phase", ps_phase_name(ev->phase)));
		break;
	case PS_EVENT_WARNING:
		ps_log_kv("warn", "sync warning", PS_LOG_STR("project", s->project),
			  PS_LOG_INT("sync_id", s->id), PS_LOG_STR("trigger", s->trigger),
			  PS_LOG_STR("phase", ps_phase_name(ev->phase)),
			  PS_LOG_STR("warning", ev->message));
		break;
	case PS_EVENT_SUCCEEDED:
		ps_log_kv("info", "sync succeeded", PS_LOG_STR("project", s->project),
			  PS_LOG_INT("sync_id", s->id), PS_LOG_STR("trigger", s->trigger),
			  PS_LOG_STR("branch", sum && sum->branch && sum->branch[0] ? sum->branch
								: s->branch && s->branch[0] ? s->branch
								: "default"),
			  PS_LOG_INT("duration_ms", duration_ms),
			  PS_LOG_STR("commit", sum && sum->commit ? sum->commit : ""),
			  PS_LOG_STR("up_to_date", sum && sum->up_to_date ? "true" : "false"),
			  PS_LOG_INT("added", sum ? sum->counts.added : 0),
			  PS_LOG_INT("modified", sum ? sum->counts.modified : 0),
			  PS_LOG_INT("deleted", sum ? sum->counts.deleted : 0),
			  PS_LOG_INT("renamed", sum ? sum->counts.renamed : 0),
			  PS_LOG_INT("files", sum ? sum->counts.files : 0),
			  PS_LOG_INT("requests", sum ? sum->requests : ev->requests));
		break;
	case PS_EVENT_FAILED:
	case PS_EVENT_CANCELLED:
		ps_log_kv(ev->kind == PS_EVENT_FAILED ? "error" : "warn",
			  ev->kind == PS_EVENT_FAILED ? "sync failed" : "sync cancelled",
			  PS_LOG_STR("project", s->project), PS_LOG_INT("sync_id", s->id),
			  PS_LOG_STR("trigger", s->trigger), PS_LOG_INT("duration_ms", duration_ms),
			  PS_LOG_STR("phase", ps_phase_name(ev->phase)),
			  PS_LOG_STR("error", ev->message));
		break;
	default:
		break;
	}
}

/*
 * The store pauses a scheduled project at the scheduler's next look once its failures in a row
 * reach its limit (ps_store_schedule_next), and nothing else would tell the log: its scheduled
 * syncs just stop. Said here, at the failure that reached the limit, by the node that ran it.
 */
static void log_if_pausing(struct ps_server *srv, struct ps_store *store, int64_t project_id)
{
	struct ps_project *p = NULL;
	int64_t max;

	if (ps_store_project_get_by_id(store, project_id, &p) < 0) {
		ps_error_clear();
		return;
	}
	max = p->max_failures > 0 ? p->max_failures
	      : srv->cfg.max_failures > 0 ? srv->cfg.max_failures : PS_SCHEDULE_MAX_FAILURES;
	if (!p->paused && (p->every_ms > 0 || p->every_auto) && p->failures_in_row >= max) {
		char *resume = ps_asprintf("projsync project resume %s", p->name);
		ps_log_kv("warn", "project paused", PS_LOG_STR("project", p->name),
			  PS_LOG_INT("failures_in_row", p->failures_in_row),
			  PS_LOG_INT("max_failures", max),
			  PS_LOG_STR("error", p->last_error_message), PS_LOG_STR("resume", resume));
		free(resume);
	}
	ps_project_free(p);
}

/* Marks a claimed sync that the pipeline could not even resume as failed, with its event. */
static void fail_unresumable(struct ps_store *store, int64_t id, int rc)
{
	struct ps_sync *s = NULL;
	char *msg = ps_strdup(ps_error_message()[0] ? ps_error_message() : ps_error_code_name(rc));

	if (ps_store_sync_get(store, id, &s) == 0) {
		if (ps_store_sync_fail(store, s, PS_SYNC_FAILED, "internal", msg, NULL) == 0)
			ps_sse_ensure_final_event(store, id);
		ps_log_kv("error", "sync failed to start", PS_LOG_STR("project", s->project),
			  PS_LOG_INT("sync_id", id), PS_LOG_STR("trigger", s->trigger),
			  PS_LOG_STR("error", msg));
	}
	ps_sync_free(s);
	free(msg);
}

/* The kind of the source the current sync of this worker thread opened, for the upstream
 * request counter of /metrics. The pipeline opens the source itself, inside ps_sync_next, on
 * the worker's thread, and its hook takes no user data: hence a thread-local. */
static _Thread_local const char *opened_kind;

static int open_source_noting_kind(struct ps_source **out, const char *spec,
				   const struct ps_source_opts *opts)
{
	int rc = ps_source_open(out, spec, opts);

	if (rc == 0)
		opened_kind = (*out)->ops->kind; /* a static string: outlives the source */
	return rc;
}

static void pause_ms(struct ps_workers *pool, int64_t ms)
{
	struct timespec ts;

	pthread_mutex_lock(&pool->mu);
	if (!pool->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(ms % 1000) * 1000000L;
		ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&pool->cv, &pool->mu, &ts);
	}
	pthread_mutex_unlock(&pool->mu);
}

/*
 * After a run: a sync still `running` at this run's attempt means the run could not record its
 * end (the database went away under it, e.g. a restart). Left so, the sync would block its
 * project forever (its owner, this live process, is never reaped), so it is ended here, as
 * failed with the run's reason, once the database answers again. A sync another node took over
 * meanwhile (a higher attempt) is not ours to end.
 */
static void settle(struct ps_workers *pool, struct ps_store *store, int64_t id, int64_t attempt,
		   const char *code, const char *message)
{
	bool said = false;

	for (;;) {
		struct ps_sync *s = NULL;
		int rc = ps_store_sync_get(store, id, &s);

		if (rc == 0 && (s->status != PS_SYNC_RUNNING || (attempt > 0 && s->attempt != attempt))) {
			ps_sync_free(s);
			return;
		}
		if (rc == 0) {
			rc = ps_store_sync_fail(store, s, PS_SYNC_FAILED, code ? code : "store",
						message ? message : "the store failed during the sync",
						NULL);
			if (rc == 0)
				ps_log_at("error", "sync %lld of %s failed: %s (recorded after the store came back)",
				       (long long)id, s->project, message ? message : "");
			ps_sync_free(s);
			if (rc == 0 || rc == PS_ECONFLICT)
				return;
		}
		if (!said)
			ps_log_at("error", "sync %lld: cannot record its end yet: %s; trying every second",
			       (long long)id, ps_error_message());
		said = true;
		pthread_mutex_lock(&pool->mu);
		bool stopping = pool->stopping;
		pthread_mutex_unlock(&pool->mu);
		if (stopping)
			return;
		pause_ms(pool, 1000);
	}
}

static void run_one(struct worker *me, struct ps_store *store, int64_t id, bool took_over)
{
	struct ps_workers *pool = me->pool;
	struct ps_server *srv = pool->srv;
	struct ps_sync_ctx ctx = { 0 };
	struct ps_sync_run *run = NULL;
	const struct ps_event *ev;
	int64_t t0 = ps_mono_ms(), attempt;
	char *code = NULL, *message = NULL;
	bool succeeded = false, failed = false;
	int64_t project_id;
	int rc;

	ctx.store = store;
	ctx.lease_ms = srv->cfg.lease_ms; /* renewed at every saved step */
	ctx.source_opts.cache_dir = srv->cfg.cache_dir;
	ctx.open_source = open_source_noting_kind;
	opened_kind = NULL;
	if ((rc = ps_sync_resume(&run, &ctx, id)) < 0) {
		fail_unresumable(store, id, rc);
		ps_hub_poke(srv->hub);
		return;
	}
	pthread_mutex_lock(&pool->mu);
	me->run = run;
	pool->running++;
	if (pool->stopping)
		ps_sync_cancel_stopping(run);
	pthread_mutex_unlock(&pool->mu);
	attempt = ps_sync_run_sync(run)->attempt;
	project_id = ps_sync_run_sync(run)->project_id;
	{
		const struct ps_sync *s = ps_sync_run_sync(run);
		/* A record of its own with the sync's fields, so that a search of the log for the
		 * project or the sync finds the takeover (its warning event names both nodes). */
		if (took_over)
			ps_log_kv("warn", "sync taken over", PS_LOG_STR("project", s->project),
				  PS_LOG_INT("sync_id", id), PS_LOG_STR("trigger", s->trigger),
				  PS_LOG_INT("attempt", attempt), PS_LOG_INT("worker", me->index),
				  PS_LOG_STR("reason", "the node running it stopped; it runs again "
						       "from the start"));
		ps_log_kv("info", "sync started", PS_LOG_STR("project", s->project),
			  PS_LOG_INT("sync_id", id), PS_LOG_STR("trigger", s->trigger),
			  PS_LOG_STR("branch", s->branch && s->branch[0] ? s->branch : "default"),
			  PS_LOG_INT("worker", me->index));
	}

	while (ps_sync_next(run, &ev) == PS_SYNC_MORE) {
		/* The event is stored, so a client may already see the sync ended: count it in
		 * /metrics first, then wake watchers, then log. */
		if (ps_event_is_final(ev->kind)) {
			ps_metrics_sync_done(srv->metrics, ps_event_kind_name(ev->kind),
					     ps_mono_ms() - t0, opened_kind,
					     ev->summary ? ev->summary->requests : ev->requests);
			free(code);
			free(message);
			code = ps_strdup(ev->summary ? ev->summary->error_code : NULL);
			message = ps_strdup(ev->summary ? ev->summary->error_message : ev->message);
			succeeded = ev->kind == PS_EVENT_SUCCEEDED;
			failed = ev->kind == PS_EVENT_FAILED;
		}
		ps_hub_poke(srv->hub);
		log_event(ps_sync_run_sync(run), ev, ps_mono_ms() - t0);
	}
	pthread_mutex_lock(&pool->mu);
	me->run = NULL;
	pool->running--;
	pthread_mutex_unlock(&pool->mu);
	if (failed)
		log_if_pausing(srv, store, project_id);
	ps_sync_end(run);
	/* Taken over by another node: that node ends it. A `succeeded` event is handed out only
	 * after the finalize transaction committed, so such a sync has ended: no read to check. */
	if (!succeeded && !(code && strcmp(code, "taken_over") == 0))
		settle(pool, store, id, attempt, code, message);
	free(code);
	free(message);
	ps_hub_poke(srv->hub);
}

/* The node's heartbeat: its row in the nodes table (PostgreSQL), renewed every second while the
 * server runs and removed when it stops, so a reap elsewhere knows a node will take over. */
static void *node_main(void *arg)
{
	struct ps_workers *pool = arg;
	struct ps_store *store = NULL;
	char identity[64];
	struct ps_owner me = { .host = ps_hostname(), .process = identity,
			       .lease_ms = pool->srv->cfg.lease_ms > 0 ? pool->srv->cfg.lease_ms : 30000 };
	bool down = false;

	ps_process_identity(getpid(), identity, sizeof(identity));
	for (;;) {
		int rc;

		pthread_mutex_lock(&pool->mu);
		bool stopping = pool->stopping;
		pthread_mutex_unlock(&pool->mu);
		if (stopping)
			break;
		if (!store && ps_server_store_open(&store, pool->srv->cfg.db_url) < 0)
			store = NULL;
		rc = store ? ps_store_node_beat(store, &me) : PS_ESTORE;
		if (rc < 0 && !down)
			ps_log_at("error", "node: cannot renew this node's heartbeat: %s", ps_error_message());
		else if (rc == 0 && down)
			ps_log("node: the store answers again");
		down = rc < 0;
		pause_ms(pool, 1000);
	}
	if (store)
		(void)ps_store_node_leave(store, &me);
	ps_store_free(store);
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	struct ps_workers *pool = me->pool;
	struct ps_store *store = NULL;
	char identity[64];
	struct ps_owner owner = { .host = ps_hostname(), .process = identity,
				  .lease_ms = pool->srv->cfg.lease_ms > 0 ? pool->srv->cfg.lease_ms : 30000 };

	bool down = false;

	ps_process_identity(getpid(), identity, sizeof(identity));
	for (;;) {
		int64_t id = 0;
		int rc;

		pthread_mutex_lock(&pool->mu);
		if (pool->stopping) {
			pthread_mutex_unlock(&pool->mu);
			break;
		}
		pthread_mutex_unlock(&pool->mu);

		if (!store && ps_server_store_open(&store, pool->srv->cfg.db_url) < 0) {
			store = NULL;
			rc = PS_ESTORE;
		} else {
			rc = ps_store_sync_claim_next(store, &owner, &id);
		}
		/* Nothing queued: a sync whose node died is the next thing to run (PostgreSQL;
		 * on SQLite there is never one to take over). */
		bool took_over = false;
		if (rc == PS_ENOTFOUND && ps_store_sync_takeover(store, &owner, &id) == 0) {
			took_over = true;
			rc = 0;
		}
		if (rc == 0) {
			run_one(me, store, id, took_over);
			continue;
		}
		/* Once per outage, not every second while the database is away. */
		if (rc < 0 && rc != PS_ENOTFOUND && !down)
			ps_log_at("error", "worker %d: %s: %s", me->index,
				  store ? "looking for queued syncs" : "cannot open the store",
				  ps_error_message());
		down = rc < 0 && rc != PS_ENOTFOUND;

		/* Nothing queued: sleep until poked (a sync was queued here) or for a second (one
		 * may be queued by another process). */
		pthread_mutex_lock(&pool->mu);
		if (!pool->stopping && pool->pokes == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&pool->cv, &pool->mu, &ts);
		}
		if (pool->pokes)
			pool->pokes--;
		pthread_mutex_unlock(&pool->mu);
	}
	ps_store_free(store);
	return NULL;
}

int ps_workers_start(struct ps_workers **out, struct ps_server *srv)
{
	struct ps_workers *pool = ps_calloc(1, sizeof(*pool));
	int n = srv->cfg.workers > 0 ? srv->cfg.workers : 1;

	pool->srv = srv;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
	pool->w = ps_calloc((size_t)n, sizeof(*pool->w));
	for (int i = 0; i < n; i++) {
		pool->w[i].pool = pool;
		pool->w[i].index = i + 1;
		if (pthread_create(&pool->w[i].thread, NULL, worker_main, &pool->w[i]) != 0) {
			ps_workers_free(pool);
			return ps_error_set(PS_EFAIL, NULL, "cannot start sync worker threads");
		}
		pool->n = i + 1;
	}
	if (pthread_create(&pool->node, NULL, node_main, pool) == 0)
		pool->node_started = true;
	*out = pool;
	return 0;
}

void ps_workers_poke(struct ps_workers *pool)
{
	/* One queued sync, one worker: waking them all made every other one look at an empty
	 * queue (a read transaction each). A worker that claims one looks again at once after
	 * running it, so a burst of queued syncs still keeps every worker busy. */
	pthread_mutex_lock(&pool->mu);
	if (pool->pokes < (unsigned)pool->n)
		pool->pokes++;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
}

size_t ps_workers_running(struct ps_workers *pool)
{
	size_t n;

	pthread_mutex_lock(&pool->mu);
	n = pool->running;
	pthread_mutex_unlock(&pool->mu);
	return n;
}

void ps_workers_stop(struct ps_workers *pool)
{
	if (!pool || pool->n == 0)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->stopping = true;
	for (int i = 0; i < pool->n; i++)
		if (pool->w[i].run)
			ps_sync_cancel_stopping(pool->w[i].run);
	pthread_cond_broadcast(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	for (int i = 0; i < pool->n; i++)
		pthread_join(pool->w[i].thread, NULL);
	pool->n = 0;
	if (pool->node_started)
		pthread_join(pool->node, NULL);
	pool->node_started = false;
}

void ps_workers_free(struct ps_workers *pool)
{
	if (!pool)
		return;
	ps_workers_stop(pool);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->cv);
	free(pool->w);
	free(pool);
}
