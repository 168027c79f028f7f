/*
 * Work that waits on the network, taken off libmicrohttpd's threads. libmicrohttpd 0.9.75 hands
 * many connections to each of its threads, so a handler that blocks (checking a remote source
 * when a project is created or its branches are listed, up to PROJSYNC_NET_TIMEOUT) would stall
 * every request of every connection of that thread. Instead the handler suspends its connection
 * (from inside the handler, on MHD's own thread: docs/stack.md #3), a small pool of helper
 * threads runs the job, and the helper resumes the connection; libmicrohttpd then calls the
 * handler again, which answers from the job's result.
 *
 * A task is shared by the request and the pool (a reference each). Suspend comes before the
 * task is queued, and `resumed` is set and MHD_resume_connection called under the pool mutex,
 * so a connection is resumed exactly once and only while suspended. At shutdown every
 * connection still waiting is resumed before the daemon stops (docs/stack.md #6): its handler
 * then answers 503 (the server is stopping) while the helper finishes the job for nobody.
 *
 * At most as many tasks as there are helper threads are in flight: beyond, 503 with
 * Retry-After at once, so a task never waits in a queue behind others and every answer comes
 * within one network timeout.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "server/http.h"
#include "source/source.h"
#include "util/error.h"
#include "util/util.h"

struct ps_offload_task {
	struct ps_offload_task *next;       /* in the queue, or in the live list */
	struct ps_offload_task *live_next;
	struct MHD_Connection *conn;
	void (*run)(void *job);
	void (*free_job)(void *job);
	void *job;
	int refs;
	bool done, resumed;
};

struct ps_offload {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t *threads;
	int nthreads;
	int inflight;
	int attached;                        /* tasks a request still holds */
	pthread_cond_t released;             /* signalled when `attached` drops */
	bool stopping;
	struct ps_offload_task *head, *tail; /* waiting for a helper */
	struct ps_offload_task *live;        /* suspended, not yet resumed */
};

static void task_unref_locked(struct ps_offload_task *t)
{
	if (--t->refs > 0)
		return;
	if (t->free_job)
		t->free_job(t->job);
	free(t);
}

static void live_remove_locked(struct ps_offload *o, struct ps_offload_task *t)
{
	for (struct ps_offload_task **pp = &o->live; *pp; pp = &(*pp)->live_next)
		if (*pp == t) {
			*pp = t->live_next;
			return;
		}
}

static void *helper_main(void *arg)
{
	struct ps_offload *o = arg;
	struct ps_offload_task *t;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		while (!o->head && !o->stopping)
			pthread_cond_wait(&o->cv, &o->mu);
		if (!(t = o->head))
			break;
		o->head = t->next;
		if (!o->head)
			o->tail = NULL;
		pthread_mutex_unlock(&o->mu);
		t->run(t->job);
		pthread_mutex_lock(&o->mu);
		t->done = true;
		o->inflight--;
		if (!t->resumed) {
			t->resumed = true;
			live_remove_locked(o, t);
			MHD_resume_connection(t->conn);
		}
		task_unref_locked(t);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

int ps_offload_start(struct ps_offload **out, int threads)
{
	struct ps_offload *o = ps_calloc(1, sizeof(*o));

	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	pthread_cond_init(&o->released, NULL);
	o->threads = ps_calloc((size_t)(threads > 0 ? threads : 1), sizeof(*o->threads));
	for (int i = 0; i < (threads > 0 ? threads : 1); i++) {
		if (pthread_create(&o->threads[i], NULL, helper_main, o) != 0)
			break;
		o->nthreads++;
	}
	if (o->nthreads == 0) {
		ps_offload_free(o);
		return ps_error_set(PS_EFAIL, "thread_failed", "cannot start helper threads");
	}
	*out = o;
	return 0;
}

void ps_offload_resume_all(struct ps_offload *o)
{
	int64_t end;

	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	while (o->live) {
		struct ps_offload_task *t = o->live;
		o->live = t->live_next;
		t->resumed = true;
		MHD_resume_connection(t->conn);
	}
	pthread_cond_broadcast(&o->cv);
	/* Give the resumed requests a moment to be answered (503) before the daemon stops and
	 * closes their connections. */
	end = ps_mono_ms() + 3000;
	while (o->attached > 0 && ps_mono_ms() < end) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&o->released, &o->mu, &ts);
	}
	pthread_mutex_unlock(&o->mu);
}

void ps_offload_free(struct ps_offload *o)
{
	if (!o)
		return;
	pthread_mutex_lock(&o->mu);
	o->stopping = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	/* A helper in the middle of a job finishes it: bounded by the network timeout. Jobs
	 * still queued run too (each releases its task); their connections were resumed. */
	for (int i = 0; i < o->nthreads; i++)
		pthread_join(o->threads[i], NULL);
	free(o->threads);
	pthread_cond_destroy(&o->cv);
	pthread_cond_destroy(&o->released);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

bool ps_http_offload(struct ps_request *rq, void (*run)(void *job), void *job,
		     void (*free_job)(void *job))
{
	struct ps_offload *o = rq->srv->offload;
	struct ps_offload_task *t;
	char after[24];

	pthread_mutex_lock(&o->mu);
	if (o->stopping || o->inflight >= o->nthreads) {
		bool stopping = o->stopping;
		pthread_mutex_unlock(&o->mu);
		if (free_job)
			free_job(job);
		if (stopping) {
			ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
				      "the server is shutting down");
			return false;
		}
		/* Every task ends within the network timeout: by then a helper is free. */
		snprintf(after, sizeof(after), "%lld",
			 (long long)((ps_source_net_timeout_ms() + 999) / 1000));
		ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "remote_busy",
			      "%d remote source checks are already in progress; retry in %s s",
			      o->nthreads, after);
		ps_http_add_header(rq, MHD_HTTP_HEADER_RETRY_AFTER, after);
		return false;
	}
	t = ps_calloc(1, sizeof(*t));
	t->conn = rq->conn;
	t->run = run;
	t->job = job;
	t->free_job = free_job;
	t->refs = 2; /* the request's and the pool's */
	/* Suspended before any helper can see the task, so its resume always finds the
	 * connection suspended. We are inside the access handler, on the connection's thread. */
	MHD_suspend_connection(rq->conn);
	t->live_next = o->live;
	o->live = t;
	if (o->tail)
		o->tail->next = t;
	else
		o->head = t;
	o->tail = t;
	o->inflight++;
	o->attached++;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	rq->task = t;
	return true;
}

void *ps_http_offloaded(struct ps_request *rq)
{
	struct ps_offload *o = rq->srv->offload;
	void *job = NULL;

	if (!rq->task)
		return NULL;
	pthread_mutex_lock(&o->mu);
	if (rq->task->done)
		job = rq->task->job;
	pthread_mutex_unlock(&o->mu);
	return job;
}

void ps_http_offload_release(struct ps_request *rq)
{
	struct ps_offload *o = rq->srv->offload;

	if (!rq->task)
		return;
	pthread_mutex_lock(&o->mu);
	task_unref_locked(rq->task);
	o->attached--;
	pthread_cond_broadcast(&o->released);
	pthread_mutex_unlock(&o->mu);
	rq->task = NULL;
}
