/*
 * The SSE hub: `GET /api/v1/events/project-sync/{id}` streams a sync's events as
 *
 *     id: <seq>\nevent: <kind>\ndata: <event JSON>\n\n
 *
 * from the events table. One hub thread reads the table for each sync that has watchers,
 * starting after the lowest seq any of its watchers has, and appends what is new to each
 * watcher's queue. Because the events table is the only source, a sync run by a local worker,
 * by the CLI in another process or by another node streams the same way. What wakes the hub:
 * a local worker's poke (every topic is read), and
 *   - SQLite: a poll of every topic every poll_ms (100 ms);
 *   - PostgreSQL: a listener thread on a connection of its own (LISTEN projsync_events; each
 *     stored event notifies "SYNC_ID:SEQ" at commit, from any process) marks the topics of the
 *     notified syncs, and only those are read; a slow safety poll of every topic (poll_ms,
 *     1 s by default) covers a notification lost with a dropped connection, and the listener
 *     reconnects (then every topic is read at once).
 * A new watcher starts after its Last-Event-ID (0 without one), so the replay of what it missed
 * is simply its first delivery.
 *
 * libmicrohttpd side (docs/stack.md #3, #5, #6): the response is produced by a content
 * reader callback. With nothing queued it marks the watcher suspended and suspends the
 * connection from inside the callback; the hub resumes it when it appends. Suspend, resume and
 * the `suspended` flag are all under the hub mutex, so a connection is never resumed twice or
 * resumed when not suspended. Heartbeat comments (`: hb`) go out every heartbeat_ms; they are
 * also what notices a client that went away. After the final event (succeeded, failed,
 * cancelled) the stream ends.
 *
 * Slow watchers: each queue holds at most watcher_queue_max bytes. An event that does not fit
 * is not queued and the watcher is marked blocked; it stays in the store, and the hub reads it
 * again once the watcher's queue has drained (the reader pokes the hub). So replaying a long
 * history to a new watcher goes at the pace of its socket instead of overflowing its queue. A
 * watcher still blocked STALL_MS later does not read: it is dropped (its queue freed, its
 * stream ended with an error; a client reconnects with Last-Event-ID and loses nothing). Until
 * then the other watchers of that sync wait for it only if they are more than one read batch
 * ahead of it, which happens in a replay, never in live streaming.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/json.h"
#include "server/http.h"
#include "util/error.h"

#define POLL_BATCH 500
#define STALL_MS 5000 /* how long a watcher may leave a full queue unread */

struct topic;

struct watcher {
	struct ps_hub *hub;
	struct topic *topic;
	struct MHD_Connection *conn;
	int64_t last_seq;          /* highest seq queued for this watcher */
	char *buf;                 /* pending bytes are buf[off, len) */
	size_t len, off, cap;
	bool suspended, done, dropped;
	int64_t blocked_since;     /* ms (monotonic) since an event did not fit; 0 = not blocked */
	struct watcher *prev, *next;
};

struct topic {
	int64_t sync_id;
	struct watcher *head;
	size_t n;
	int64_t next_status_check; /* ms (monotonic) */
	bool notified;             /* the store notified events of this sync (PostgreSQL) */
	struct topic *next;
};

struct ps_hub {
	struct ps_server *srv;
	pthread_mutex_t mu;
	pthread_cond_t cv;         /* wakes the hub thread */
	pthread_cond_t round_cv;   /* signalled after every poll round */
	bool poked, stopping, closing;
	bool notified;             /* some topic is marked notified: read those */
	int64_t poll_ms;           /* the safety poll: cfg->poll_ms, or 100 (SQLite) / 1000 (listening) */
	int64_t next_poll;         /* ms (monotonic) of the next read of every topic */
	struct ps_store *listen_store; /* the listener's own handle; NULL: no notifications */
	pthread_t listener;
	uint64_t rounds;
	struct topic *topics;
	size_t nwatchers;
	pthread_t thread;
	int64_t next_hb;
};

/* ---- watcher queues (hub->mu held) ---- */

static size_t pending(const struct watcher *w)
{
	return w->len - w->off;
}

static void wake(struct watcher *w)
{
	if (w->suspended) {
		w->suspended = false;
		MHD_resume_connection(w->conn);
	}
}

/* Appends to the queue; false (nothing queued) when it would pass watcher_queue_max. */
static bool enqueue(struct watcher *w, const char *data, size_t n)
{
	size_t max = w->hub->srv->cfg.watcher_queue_max;

	if (w->dropped || w->done)
		return false;
	/* An event larger than the whole queue still goes alone, or it could never be sent. */
	if (pending(w) && pending(w) + n > max)
		return false;
	if (w->off && w->len + n > w->cap) {
		memmove(w->buf, w->buf + w->off, pending(w));
		w->len -= w->off;
		w->off = 0;
	}
	if (w->len + n > w->cap) {
		w->cap = w->len + n < 512 ? 512 : (w->len + n) * 2;
		w->buf = ps_realloc(w->buf, w->cap);
	}
	memcpy(w->buf + w->len, data, n);
	w->len += n;
	return true;
}

/* Ends a watcher that left its full queue unread for STALL_MS: its memory goes now, its
 * stream ends with an error the next time its connection can be written. */
static void drop(struct watcher *w)
{
	ps_log_at("warn", "sse: dropping a slow watcher of sync %lld (%zu bytes queued, unread for %d ms)",
	       (long long)w->topic->sync_id, pending(w), STALL_MS);
	w->dropped = true;
	free(w->buf);
	w->buf = NULL;
	w->len = w->off = w->cap = 0;
	wake(w);
}

static struct topic *topic_find(struct ps_hub *hub, int64_t sync_id)
{
	for (struct topic *t = hub->topics; t; t = t->next)
		if (t->sync_id == sync_id)
			return t;
	return NULL;
}

/* ---- libmicrohttpd callbacks ---- */

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct watcher *w = cls;
	struct ps_hub *hub = w->hub;
	ssize_t r;

	(void)pos;
	pthread_mutex_lock(&hub->mu);
	if (w->dropped) {
		r = MHD_CONTENT_READER_END_WITH_ERROR;
	} else if (pending(w)) {
		size_t n = pending(w) < max ? pending(w) : max;
		memcpy(out, w->buf + w->off, n);
		w->off += n;
		if (w->off == w->len) {
			w->off = w->len = 0;
			if (w->blocked_since) {
				/* Drained: what did not fit can be read from the store now. */
				w->blocked_since = 0;
				hub->poked = true;
				pthread_cond_signal(&hub->cv);
			}
		}
		r = (ssize_t)n;
	} else if (w->done || hub->closing) {
		r = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		/* Nothing to send: park the connection until the hub appends (docs/stack.md #3). */
		w->suspended = true;
		MHD_suspend_connection(w->conn);
		r = 0;
	}
	pthread_mutex_unlock(&hub->mu);
	return r;
}

static void watcher_free(void *cls)
{
	struct watcher *w = cls;
	struct ps_hub *hub = w->hub;
	struct topic *t = w->topic;

	pthread_mutex_lock(&hub->mu);
	if (w->prev)
		w->prev->next = w->next;
	else
		t->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	t->n--;
	hub->nwatchers--;
	if (t->n == 0) {
		for (struct topic **pp = &hub->topics; *pp; pp = &(*pp)->next)
			if (*pp == t) {
				*pp = t->next;
				break;
			}
		free(t);
	}
	pthread_cond_broadcast(&hub->round_cv);
	pthread_mutex_unlock(&hub->mu);
	free(w->buf);
	free(w);
}

/* Whether event `seq` of the sync is stored (seqs have no gaps, so this is seq <= the last). */
static int event_exists(struct ps_store *store, int64_t sync_id, int64_t seq, bool *out)
{
	struct ps_stored_event *evs = NULL;
	size_t n = 0;
	int rc = ps_store_event_list(store, sync_id, seq - 1, 1, &evs, &n);

	*out = rc == 0 && n == 1 && evs[0].seq == seq;
	ps_stored_events_free(evs, n);
	return rc;
}

/*
 * Where a watcher that has seen events up to `*after` starts. The final event ends a stream
 * when it is delivered, and only events after the watcher's position are: so a position at or
 * past the final event (a client that saw it, or sent any large number) would wait forever.
 * For an ended sync, *ended says there is nothing newer to send. For a live one, a position
 * past the last stored event is moved back to it, so the events still to come, the final one
 * included, are delivered. The last seq is read before the status: had the sync ended in
 * between, its final event would come after that seq.
 */
static int position_after(struct ps_store *store, const struct ps_sync *sync, int64_t *after,
			  bool *ended)
{
	int64_t lo = 0, hi = *after; /* event lo exists (0: none needed), the last is < hi+1 */
	struct ps_sync *now = NULL;
	bool exists;
	int rc;

	if ((rc = event_exists(store, sync->id, hi, &exists)) < 0)
		return rc;
	if (exists)
		lo = hi;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2 + (hi - lo) % 2; /* no overflow near INT64_MAX */
		if ((rc = event_exists(store, sync->id, mid, &exists)) < 0)
			return rc;
		if (exists)
			lo = mid;
		else
			hi = mid - 1;
	}
	if ((rc = ps_store_sync_get(store, sync->id, &now)) < 0)
		return rc;
	if (now->status != PS_SYNC_QUEUED && now->status != PS_SYNC_RUNNING) {
		ps_sync_free(now);
		if ((rc = ps_sse_ensure_final_event(store, sync->id)) < 0)
			return rc;
		exists = false;
		if (*after < INT64_MAX && (rc = event_exists(store, sync->id, *after + 1, &exists)) < 0)
			return rc;
		*ended = !exists;
		return 0;
	}
	ps_sync_free(now);
	if (*after > lo)
		*after = lo;
	return 0;
}

void ps_api_sync_events(struct ps_request *rq)
{
	struct ps_hub *hub = rq->srv->hub;
	struct ps_sync *sync = NULL;
	struct watcher *w;
	struct topic *t;
	struct MHD_Response *r;
	const char *lei;
	int64_t id, after = 0;
	bool ended = false;
	int rc;

	if (!ps_http_parse_id(rq, "sync id", ps_http_param(rq, 0), &id))
		return;
	if ((rc = ps_store_sync_get(rq->store, id, &sync)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, "sync_not_found", "sync %" PRId64 " not found", id);
		ps_http_fail(rq, rc);
		return;
	}
	/* Last-Event-ID (what a reconnecting EventSource sends), or ?last_event_id= for clients
	 * that cannot set headers: a seq, digits only. */
	lei = ps_http_header(rq, "Last-Event-ID");
	if (!lei)
		lei = ps_http_query(rq, "last_event_id");
	if (lei && lei[0]) {
		char *end;
		long long v;
		errno = 0;
		v = strtoll(lei, &end, 10);
		if (lei[0] < '0' || lei[0] > '9' || *end || errno) {
			ps_sync_free(sync);
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_event_id",
				      "invalid Last-Event-ID '%.40s': give an event's seq", lei);
			return;
		}
		after = v;
	}
	if (after > 0 && (rc = position_after(rq->store, sync, &after, &ended)) < 0) {
		ps_sync_free(sync);
		ps_http_fail(rq, rc);
		return;
	}
	ps_sync_free(sync);
	if (ended) {
		/* Nothing newer than what the client has, and nothing will come. */
		ps_http_raw(rq, MHD_HTTP_OK, "text/event-stream", ps_strdup("retry: 2000\n\n"), 13,
			    true);
		ps_http_add_header(rq, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
		return;
	}

	w = ps_calloc(1, sizeof(*w));
	w->hub = hub;
	w->conn = rq->conn;
	w->last_seq = after;
	pthread_mutex_lock(&hub->mu);
	if (hub->closing) {
		pthread_mutex_unlock(&hub->mu);
		free(w);
		ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
			      "the server is shutting down");
		return;
	}
	if (!(t = topic_find(hub, id))) {
		t = ps_calloc(1, sizeof(*t));
		t->sync_id = id;
		t->next = hub->topics;
		hub->topics = t;
	}
	w->topic = t;
	w->next = t->head;
	if (t->head)
		t->head->prev = w;
	t->head = w;
	t->n++;
	hub->nwatchers++;
	/* The first bytes: headers and this go out at once, so a client knows it is connected
	 * even before the first event. `retry` tells EventSource how soon to reconnect. */
	(void)enqueue(w, "retry: 2000\n\n", 13);
	hub->poked = true;
	pthread_cond_signal(&hub->cv);
	pthread_mutex_unlock(&hub->mu);

	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, w, watcher_free);
	if (!r) {
		watcher_free(w);
		ps_http_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot stream");
		return;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	if (rq->response)
		MHD_destroy_response(rq->response);
	rq->response = r;
	rq->status = MHD_HTTP_OK;
}

/* ---- final events for syncs that ended without one ---- */

int ps_sse_ensure_final_event(struct ps_store *store, int64_t sync_id)
{
	struct ps_sync *s = NULL;
	struct ps_stored_event *evs = NULL;
	struct ps_event ev = { 0 };
	size_t n = 0;
	int rc;

	if ((rc = ps_store_sync_get(store, sync_id, &s)) < 0)
		return rc;
	if (s->status == PS_SYNC_QUEUED || s->status == PS_SYNC_RUNNING)
		goto done;
	if ((rc = ps_store_event_list(store, sync_id, 0, 0, &evs, &n)) < 0)
		goto done;
	if (n && ps_event_is_final(evs[n - 1].kind))
		goto done;
	/* Ended outside the pipeline: a queued sync cancelled, a dead one reaped. Its stream
	 * still needs the ending every stream has. */
	ev.sync_id = sync_id;
	ev.seq = n ? evs[n - 1].seq + 1 : 1;
	ev.kind = s->status == PS_SYNC_SUCCEEDED ? PS_EVENT_SUCCEEDED
		: s->status == PS_SYNC_CANCELLED ? PS_EVENT_CANCELLED : PS_EVENT_FAILED;
	ev.phase = s->phase;
	ev.fraction = s->status == PS_SYNC_SUCCEEDED ? 1.0 : 0.0;
	ev.bytes = s->bytes;
	ev.requests = s->requests;
	ev.files_done = s->counts.files;
	if (s->started_at && s->finished_at)
		ev.elapsed_ms = s->finished_at - s->started_at;
	ev.message = s->error_message;
	ev.summary = s;
	rc = ps_store_event_append(store, &ev);
	if (rc == PS_ECONFLICT)
		rc = 0; /* someone else stored it first */
done:
	ps_stored_events_free(evs, n);
	ps_sync_free(s);
	return rc;
}

/* ---- the hub thread ---- */

struct work {
	int64_t sync_id;
	int64_t after;
	bool check_status;
	bool gone;            /* the sync no longer exists: its watchers' streams end */
	struct ps_stored_event *evs;
	size_t n;
	char **texts;
	size_t *lens;
};

/* Looks at an ended sync whose stream lacks a final event; reaps a dead owner first. Returns
 * true when the sync is gone: an up-to-date scheduled check folded into the next one (store.h,
 * ps_store_sync_finalize), or pruned. Nothing more will come for its watchers. */
static bool check_status(struct ps_store *store, int64_t sync_id)
{
	struct ps_sync *s = NULL;
	int rc;

	if ((rc = ps_store_sync_get(store, sync_id, &s)) < 0) {
		ps_error_clear();
		return rc == PS_ENOTFOUND;
	}
	if (s->status == PS_SYNC_RUNNING)
		(void)ps_store_reap(store, s->project_id, NULL);
	ps_sync_free(s);
	(void)ps_sse_ensure_final_event(store, sync_id);
	ps_error_clear();
	return false;
}

/* Queues what each watcher of the topic lacks, in order, as far as it fits. Returns true when
 * some watcher took the batch's last event (a full batch then means: read on at once). */
static bool deliver(struct ps_hub *hub, struct work *wk, int64_t now)
{
	struct topic *t = topic_find(hub, wk->sync_id);
	bool advanced = false;

	if (!t)
		return false;
	for (struct watcher *w = t->head; w; w = w->next) {
		bool added = false;
		/* A watcher that joined while this batch was read may need events before it:
		 * the next round (its join poked the hub) starts from its position. */
		if (w->last_seq < wk->after)
			continue;
		for (size_t i = 0; i < wk->n && !w->done && !w->dropped; i++) {
			if (wk->evs[i].seq <= w->last_seq)
				continue;
			if (!enqueue(w, wk->texts[i], wk->lens[i])) {
				if (!w->blocked_since)
					w->blocked_since = now;
				break;
			}
			w->last_seq = wk->evs[i].seq;
			if (ps_event_is_final(wk->evs[i].kind))
				w->done = true;
			added = true;
			if (i == wk->n - 1)
				advanced = true;
		}
		if (wk->gone && wk->n == 0 && !w->done) {
			w->done = true;
			added = true;
		}
		if (added)
			wake(w);
	}
	return advanced;
}

/* Drops the watchers that left a full queue unread for STALL_MS. */
static void drop_stalled(struct ps_hub *hub, int64_t now)
{
	for (struct topic *t = hub->topics; t; t = t->next)
		for (struct watcher *w = t->head; w; w = w->next)
			if (w->blocked_since && !w->dropped && !w->done &&
			    now - w->blocked_since >= STALL_MS)
				drop(w);
}

static void heartbeat(struct ps_hub *hub)
{
	for (struct topic *t = hub->topics; t; t = t->next)
		for (struct watcher *w = t->head; w; w = w->next)
			if (!w->done && !w->dropped && pending(w) == 0) {
				if (enqueue(w, ": hb\n\n", 6))
					wake(w);
			}
}

static void *hub_main(void *arg)
{
	struct ps_hub *hub = arg;
	const struct ps_server_config *cfg = &hub->srv->cfg;
	struct ps_store *store = NULL;
	bool store_down = false;

	pthread_mutex_lock(&hub->mu);
	hub->next_hb = ps_mono_ms() + cfg->heartbeat_ms;
	while (!hub->stopping) {
		struct work *wk = NULL;
		size_t nw = 0;
		int64_t now = ps_mono_ms();

		bool full;

		if (!hub->poked && !hub->notified) {
			int64_t wait = hub->next_hb - now;
			struct timespec ts;
			if (hub->topics && wait > hub->next_poll - now)
				wait = hub->next_poll - now;
			if (wait < 1)
				wait = 1;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&hub->cv, &hub->mu, &ts);
		}
		if (hub->stopping)
			break;
		now = ps_mono_ms();
		full = hub->poked || now >= hub->next_poll;
		if (full)
			hub->next_poll = now + hub->poll_ms;
		hub->poked = false;
		hub->notified = false;
		/* What to read: each topic from the lowest seq any of its watchers has. */
		for (struct topic *t = hub->topics; t; t = t->next)
			nw++;
		if (nw)
			wk = ps_calloc(nw, sizeof(*wk));
		nw = 0;
		for (struct topic *t = hub->topics; t; t = t->next) {
			int64_t after = INT64_MAX;
			bool need = false;
			if (!full && !t->notified)
				continue;
			t->notified = false;
			for (struct watcher *w = t->head; w; w = w->next)
				if (!w->done && !w->dropped) {
					need = true;
					if (w->last_seq < after)
						after = w->last_seq;
				}
			if (!need)
				continue;
			wk[nw].sync_id = t->sync_id;
			wk[nw].after = after;
			if (now >= t->next_status_check) {
				wk[nw].check_status = true;
				t->next_status_check = now + 1000;
			}
			nw++;
		}
		pthread_mutex_unlock(&hub->mu);

		if (nw && !store &&
		    ps_server_store_open(&store, cfg->db_url) < 0) {
			/* Once per outage: this loop runs every poll interval. */
			if (!store_down)
				ps_log_at("error", "sse: cannot open the store: %s",
					  ps_error_message());
			store_down = true;
			store = NULL;
		} else if (store) {
			store_down = false;
		}
		for (size_t i = 0; store && i < nw; i++) {
			if (ps_store_event_list(store, wk[i].sync_id, wk[i].after, POLL_BATCH,
						&wk[i].evs, &wk[i].n) < 0)
				continue;
			if (wk[i].n == 0 && wk[i].check_status) {
				wk[i].gone = check_status(store, wk[i].sync_id);
				if (ps_store_event_list(store, wk[i].sync_id, wk[i].after, POLL_BATCH,
							&wk[i].evs, &wk[i].n) < 0)
					continue;
			}
			wk[i].texts = ps_calloc(wk[i].n ? wk[i].n : 1, sizeof(char *));
			wk[i].lens = ps_calloc(wk[i].n ? wk[i].n : 1, sizeof(size_t));
			for (size_t k = 0; k < wk[i].n; k++) {
				wk[i].texts[k] = ps_asprintf("id: %" PRId64 "\nevent: %s\ndata: %s\n\n",
							     wk[i].evs[k].seq,
							     ps_event_kind_name(wk[i].evs[k].kind),
							     wk[i].evs[k].json);
				wk[i].lens[k] = strlen(wk[i].texts[k]);
			}
		}

		pthread_mutex_lock(&hub->mu);
		now = ps_mono_ms();
		for (size_t i = 0; i < nw; i++) {
			/* More to read: go again at once, unless no watcher could take all of
			 * this batch (a drained queue pokes the hub). */
			if (deliver(hub, &wk[i], now) && wk[i].n == POLL_BATCH)
				hub->poked = true;
		}
		drop_stalled(hub, now);
		if (ps_mono_ms() >= hub->next_hb) {
			heartbeat(hub);
			hub->next_hb = ps_mono_ms() + cfg->heartbeat_ms;
		}
		hub->rounds++;
		pthread_cond_broadcast(&hub->round_cv);
		pthread_mutex_unlock(&hub->mu);
		for (size_t i = 0; i < nw; i++) {
			for (size_t k = 0; k < wk[i].n && wk[i].texts; k++)
				free(wk[i].texts[k]);
			free(wk[i].texts);
			free(wk[i].lens);
			ps_stored_events_free(wk[i].evs, wk[i].n);
		}
		free(wk);
		pthread_mutex_lock(&hub->mu);
	}
	pthread_mutex_unlock(&hub->mu);
	ps_store_free(store);
	return NULL;
}

/* ---- the listener thread (PostgreSQL) ---- */

#define LISTEN_WAIT_MS 200 /* how long one wait may last: bounds the stop's delay */
#define LISTEN_MAX 256     /* sync ids taken from one wake-up */

static void *listener_main(void *arg)
{
	struct ps_hub *hub = arg;
	int64_t ids[LISTEN_MAX];
	bool down = false;

	for (;;) {
		size_t n = 0;
		bool lost = false, any = false;
		int rc;

		pthread_mutex_lock(&hub->mu);
		bool stopping = hub->stopping;
		pthread_mutex_unlock(&hub->mu);
		if (stopping)
			break;
		rc = ps_store_wait_events(hub->listen_store, LISTEN_WAIT_MS, ids, LISTEN_MAX, &n,
					  &lost);
		if (rc < 0) {
			if (!down)
				ps_log_at("warn", "sse: %s; streams fall back to the %lld ms poll until it is back",
				       ps_error_message(), (long long)hub->poll_ms);
			down = true;
			continue;
		}
		if (lost || down)
			ps_log("sse: listening for events again");
		down = false;
		pthread_mutex_lock(&hub->mu);
		if (lost || n == LISTEN_MAX) {
			/* Notifications may be missing: read every topic. */
			hub->poked = true;
			any = true;
		}
		for (size_t i = 0; i < n; i++) {
			struct topic *t = topic_find(hub, ids[i]);
			if (t) {
				t->notified = true;
				any = true;
			}
		}
		if (any) {
			hub->notified = true;
			pthread_cond_signal(&hub->cv);
		}
		pthread_mutex_unlock(&hub->mu);
	}
	return NULL;
}

int ps_hub_start(struct ps_hub **out, struct ps_server *srv)
{
	struct ps_hub *hub = ps_calloc(1, sizeof(*hub));
	struct ps_store *ls = NULL;

	hub->srv = srv;
	pthread_mutex_init(&hub->mu, NULL);
	pthread_cond_init(&hub->cv, NULL);
	pthread_cond_init(&hub->round_cv, NULL);
	/* PostgreSQL notifies; SQLite (PS_ENOTSUPP) is polled. */
	if (ps_server_store_open(&ls, srv->cfg.db_url) == 0 &&
	    ps_store_listen(ls) == 0) {
		hub->listen_store = ls;
	} else {
		ps_store_free(ls);
		ps_error_clear();
	}
	hub->poll_ms = srv->cfg.poll_ms > 0 ? srv->cfg.poll_ms : hub->listen_store ? 1000 : 100;
	hub->next_poll = ps_mono_ms();
	if (pthread_create(&hub->thread, NULL, hub_main, hub) != 0) {
		ps_store_free(hub->listen_store);
		free(hub);
		return ps_error_set(PS_EFAIL, NULL, "cannot start the SSE hub thread");
	}
	if (hub->listen_store && pthread_create(&hub->listener, NULL, listener_main, hub) != 0) {
		/* Without the listener the safety poll still streams, only slower. */
		ps_store_free(hub->listen_store);
		hub->listen_store = NULL;
	}
	*out = hub;
	return 0;
}

void ps_hub_poke(struct ps_hub *hub)
{
	pthread_mutex_lock(&hub->mu);
	/* Nobody watches: nothing to read. A watcher that joins later reads from the store
	 * itself (it pokes at join), so waking the hub for every event of every unwatched sync
	 * (a server on a schedule stores several per check) only costs a context switch. */
	if (hub->topics) {
		hub->poked = true;
		pthread_cond_signal(&hub->cv);
	}
	pthread_mutex_unlock(&hub->mu);
}

size_t ps_hub_watchers(struct ps_hub *hub)
{
	size_t n;

	pthread_mutex_lock(&hub->mu);
	n = hub->nwatchers;
	pthread_mutex_unlock(&hub->mu);
	return n;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(cv, mu, &ts);
}

void ps_hub_close_all(struct ps_hub *hub)
{
	int64_t end;
	uint64_t target;

	/* Two full rounds after the workers stopped: the final events they stored are read and
	 * queued (a round already under way may have read before they were stored). */
	pthread_mutex_lock(&hub->mu);
	target = hub->rounds + 2;
	end = ps_mono_ms() + 3000;
	while (hub->rounds < target && ps_mono_ms() < end) {
		hub->poked = true;
		pthread_cond_signal(&hub->cv);
		timed_wait(&hub->round_cv, &hub->mu, 50);
	}
	/* End every stream and resume every parked connection: libmicrohttpd must not be
	 * stopped with suspended connections (docs/stack.md #6). */
	hub->closing = true;
	for (struct topic *t = hub->topics; t; t = t->next)
		for (struct watcher *w = t->head; w; w = w->next) {
			w->done = true;
			wake(w);
		}
	/* Let the streams drain what they have queued, briefly. */
	end = ps_mono_ms() + 3000;
	while (hub->nwatchers && ps_mono_ms() < end)
		timed_wait(&hub->round_cv, &hub->mu, 20);
	pthread_mutex_unlock(&hub->mu);
}

void ps_hub_stop(struct ps_hub *hub)
{
	if (!hub)
		return;
	pthread_mutex_lock(&hub->mu);
	hub->stopping = true;
	hub->closing = true;
	pthread_cond_signal(&hub->cv);
	pthread_mutex_unlock(&hub->mu);
	pthread_join(hub->thread, NULL);
	if (hub->listen_store) {
		pthread_join(hub->listener, NULL);
		ps_store_free(hub->listen_store);
	}
	/* The daemon is stopped: every watcher was freed with its response. */
	while (hub->topics) {
		struct topic *t = hub->topics;
		hub->topics = t->next;
		free(t);
	}
	pthread_mutex_destroy(&hub->mu);
	pthread_cond_destroy(&hub->cv);
	pthread_cond_destroy(&hub->round_cv);
	free(hub);
}
