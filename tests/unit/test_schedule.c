/*
 * Scheduled syncs, failure states and retention (model/schedule.c, core/retention.c and the
 * store functions behind them), on a fake clock: every `now` is a number the test picks, so
 * intervals of hours are checked without waiting. The store tests run on SQLite and, as
 * test_schedule_pg, on PostgreSQL.
 */
#include "harness.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "model/diff.h"
#include "model/json.h"
#include "core/retention.h"
#include "model/schedule.h"
#include "store/store.h"
#include "util/error.h"

#define S 1000LL
#define MIN (60 * S)
#define HOUR (60 * MIN)
#define T0 1700000000000LL /* the fake clock's start */

static void test_parse_every(void)
{
	static const struct { const char *in; int64_t ms; } ok[] = {
		{ "10s", 10 * S }, { "30s", 30 * S }, { "10m", 10 * MIN }, { "1h", HOUR },
		{ "1h30m", 90 * MIN }, { "90", 90 * S }, { "2d", 48 * HOUR },
	};
	static const char *const bad[] = { "5s", "9", "0", "x", "10x", "", "1h-", "m", "31d",
					   "1m30" };
	struct ps_project p = { 0 };
	char out[32];

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		CHECK_OK(ps_schedule_parse_every(ok[i].in, &p));
		CHECK_INT(p.every_ms, ok[i].ms);
		CHECK(!p.every_auto);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CHECK_INT(ps_schedule_parse_every(bad[i], &p), PS_EINVAL);
		CHECK_STR(ps_error_slug(), "invalid_every");
	}
	CHECK_OK(ps_schedule_parse_every("auto", &p));
	CHECK(p.every_auto && ps_schedule_on(&p));
	ps_schedule_every_string(&p, out, sizeof(out));
	CHECK_STR(out, "auto");
	CHECK_OK(ps_schedule_parse_every("off", &p));
	CHECK(!ps_schedule_on(&p));
	p.every_ms = 90 * MIN;
	ps_schedule_every_string(&p, out, sizeof(out));
	CHECK_STR(out, "1h30m");
}

/* auto: an up-to-date check doubles the interval, a change halves it, within the bounds. */
static void test_auto_adapts(void)
{
	struct ps_project p = { .name = (char *)"p", .id = 1, .every_auto = true };
	int64_t now = T0;

	ps_project_schedule_defaults(&p);
	ps_schedule_configure(&p, now);
	CHECK_INT(p.interval_ms, MIN);
	/* Never checked: due at once, give or take the jitter (at most a tenth of the interval). */
	CHECK(p.next_sync_at >= now && p.next_sync_at <= now + 6 * S);
	int64_t want = MIN;
	for (int i = 0; i < 12; i++) {
		now = p.next_sync_at;
		ps_schedule_after_sync(&p, PS_SYNC_SUCCEEDED, false, now);
		want = want * 2 > 8 * HOUR ? 8 * HOUR : want * 2;
		CHECK_INT(p.interval_ms, want);
		CHECK_INT(p.last_check_at, now);
		CHECK(p.next_sync_at >= now + want && p.next_sync_at <= now + want + 60 * S);
	}
	CHECK_INT(p.interval_ms, 8 * HOUR); /* the ceiling holds */
	ps_schedule_after_sync(&p, PS_SYNC_SUCCEEDED, true, now);
	CHECK_INT(p.interval_ms, 4 * HOUR);
	for (int i = 0; i < 12; i++)
		ps_schedule_after_sync(&p, PS_SYNC_SUCCEEDED, true, now);
	CHECK_INT(p.interval_ms, MIN); /* the floor too */

	/* Bounds of its own. */
	p.auto_min_ms = 2 * MIN;
	p.auto_max_ms = 5 * MIN;
	ps_schedule_configure(&p, now);
	CHECK_INT(p.interval_ms, 2 * MIN);
	for (int i = 0; i < 5; i++)
		ps_schedule_after_sync(&p, PS_SYNC_SUCCEEDED, false, now);
	CHECK_INT(p.interval_ms, 5 * MIN);

	/* A fixed interval does not adapt, and off schedules nothing. */
	p.every_auto = false;
	p.every_ms = 10 * MIN;
	ps_schedule_configure(&p, now);
	ps_schedule_after_sync(&p, PS_SYNC_SUCCEEDED, true, now);
	CHECK_INT(p.interval_ms, 10 * MIN);
	CHECK(p.next_sync_at >= now + 10 * MIN && p.next_sync_at <= now + 11 * MIN);
	p.every_ms = 0;
	ps_schedule_after_sync(&p, PS_SYNC_SUCCEEDED, true, now);
	CHECK_INT(p.next_sync_at, 0);
}

/* A failure waits longer each time, never the plain interval; capped at 8 h. */
static void test_backoff(void)
{
	struct ps_project p = { .name = (char *)"p", .id = 2, .every_ms = 10 * S };
	int64_t now = T0;

	CHECK_INT(ps_schedule_backoff(10 * S, 1), 20 * S);
	CHECK_INT(ps_schedule_backoff(10 * S, 2), 40 * S);
	CHECK_INT(ps_schedule_backoff(10 * S, 10), 10240 * S);
	CHECK_INT(ps_schedule_backoff(10 * S, 100), 8 * HOUR);
	CHECK_INT(ps_schedule_backoff(24 * HOUR, 3), 24 * HOUR);

	ps_project_schedule_defaults(&p);
	ps_schedule_configure(&p, now);
	for (int n = 1; n <= 5; n++) {
		p.failures_in_row = n;
		ps_schedule_after_sync(&p, PS_SYNC_FAILED, false, now);
		int64_t wait = (10 * S) << n;
		CHECK(p.next_sync_at >= now + wait && p.next_sync_at <= now + wait + S);
	}
	/* Jitter spreads projects added together, and stays within a tenth of the interval. */
	int64_t a = ps_schedule_jitter(HOUR, 1), b = ps_schedule_jitter(HOUR, 2);
	CHECK(a != b);
	for (uint64_t seed = 0; seed < 1000; seed++) {
		int64_t j = ps_schedule_jitter(10 * S, seed);
		CHECK(j >= 0 && j <= S);
	}
}

/* ---- the store ---- */

static struct ps_store *open_url(const char *url)
{
	struct ps_store *s = NULL;
	CHECK_OK(ps_store_open(&s, url, 0));
	return s;
}

static struct ps_project *add_scheduled(struct ps_store *s, const char *name, const char *every,
					int64_t now)
{
	struct ps_project p = { .name = (char *)name, .source = (char *)"/nowhere" };
	struct ps_project *out = NULL;

	CHECK_OK(ps_schedule_parse_every(every, &p));
	ps_project_schedule_defaults(&p);
	ps_schedule_configure(&p, now);
	CHECK_OK(ps_store_project_add(s, &p));
	ps_strv_dispose(&p.memory_globs);
	CHECK_OK(ps_store_project_get(s, name, &out));
	return out;
}

static struct ps_owner me(void)
{
	static char proc[64];
	ps_process_identity(getpid(), proc, sizeof(proc));
	return (struct ps_owner){ ps_hostname(), proc, 60000 };
}

static struct ps_project *reload(struct ps_store *s, const char *name)
{
	struct ps_project *p = NULL;
	CHECK_OK(ps_store_project_get(s, name, &p));
	return p;
}

/* Runs sync `id` (queued) to an end at fake time `at`. */
static void end_sync(struct ps_store *s, int64_t id, bool ok, bool up_to_date, int64_t at)
{
	struct ps_owner o = me();
	struct ps_sync *y = NULL;

	CHECK_OK(ps_store_sync_claim(s, id, &o));
	CHECK_OK(ps_store_sync_get(s, id, &y));
	if (!y)
		return;
	y->finished_at = at;
	y->up_to_date = up_to_date;
	if (ok)
		CHECK_OK(ps_store_sync_finalize(s, y, NULL, 0, NULL));
	else
		CHECK_OK(ps_store_sync_fail(s, y, PS_SYNC_FAILED, "boom", "the source said no",
					    NULL));
	ps_sync_free(y);
}

static void test_store_schedule(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct ps_project *p = add_scheduled(s, "sched", "10s", T0), *q;
	struct ps_sync *y = NULL;

	CHECK_INT(p->every_ms, 10 * S);
	CHECK(p->next_sync_at >= T0 && p->next_sync_at <= T0 + S);
	CHECK_INT(ps_store_schedule_next(s, T0 - 1, 0, &y), PS_ENOTFOUND);
	CHECK(y == NULL);
	/* Due: one queued sync with trigger schedule and its queued event, and only one. */
	CHECK_OK(ps_store_schedule_next(s, T0 + 2 * S, 0, &y));
	CHECK(y != NULL);
	if (!y)
		goto out;
	CHECK_STR(y->trigger, "schedule");
	CHECK_INT(y->status, PS_SYNC_QUEUED);
	struct ps_stored_event *evs = NULL;
	size_t nev = 0;
	CHECK_OK(ps_store_event_list(s, y->id, 0, 0, &evs, &nev));
	CHECK_INT(nev, 1);
	if (nev)
		CHECK_INT(evs[0].kind, PS_EVENT_QUEUED);
	ps_stored_events_free(evs, nev);
	CHECK_INT(ps_store_schedule_next(s, T0 + 2 * S, 0, NULL), PS_ENOTFOUND);
	/* Its end is the latest check: the next one is due an interval later. */
	end_sync(s, y->id, true, true, T0 + 3 * S);
	q = reload(s, "sched");
	CHECK_INT(q->last_check_at, T0 + 3 * S);
	CHECK(q->next_sync_at >= T0 + 13 * S && q->next_sync_at <= T0 + 14 * S);
	CHECK_INT(ps_store_schedule_next(s, T0 + 12 * S, 0, NULL), PS_ENOTFOUND);
	ps_project_free(q);
	ps_sync_free(y);
	y = NULL;

	/* A manual sync counts as the latest check too. */
	struct ps_owner o = me();
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
	if (y) {
		y->finished_at = T0 + 20 * S;
		CHECK_OK(ps_store_sync_finalize(s, y, NULL, 0, NULL));
	}
	ps_sync_free(y);
	y = NULL;
	q = reload(s, "sched");
	CHECK(q->next_sync_at >= T0 + 30 * S && q->next_sync_at <= T0 + 31 * S);
	ps_project_free(q);

	/* A project with its sync already running when due: that sync is the check. */
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "api", NULL, &y));
	ps_sync_free(y);
	y = NULL;
	CHECK_OK(ps_store_schedule_next(s, T0 + 40 * S, 0, &y));
	CHECK(y == NULL);
	q = reload(s, "sched");
	CHECK(q->next_sync_at > T0 + 40 * S);
	ps_project_free(q);

	/* Off is never due. */
	struct ps_project *off = add_scheduled(s, "manual", "off", T0);
	CHECK_INT(off->next_sync_at, 0);
	ps_project_free(off);
out:
	ps_sync_free(y);
	ps_project_free(p);
	ps_store_free(s);
	free(url);
}

struct racer {
	const char *url;
	int64_t now;
	int queued;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct ps_store *s = NULL;

	if (ps_store_open(&s, r->url, 0) < 0)
		return NULL;
	for (int i = 0; i < 20; i++) {
		struct ps_sync *y = NULL;
		int rc = ps_store_schedule_next(s, r->now, 0, &y);
		if (rc == 0 && y)
			r->queued++;
		ps_sync_free(y);
	}
	ps_store_free(s);
	return NULL;
}

/* Several nodes on one store: each due project gets exactly one sync. */
static void test_store_schedule_once(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct racer r[4];
	pthread_t t[4];
	int total = 0;
	char name[16];

	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		ps_project_free(add_scheduled(s, name, "1m", T0));
	}
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ url, T0 + MIN, 0 };
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += r[i].queued;
	}
	CHECK_INT(total, 5);
	int64_t counts[PS_SYNC_CANCELLED + 1];
	CHECK_OK(ps_store_sync_count_by_status(s, counts));
	CHECK_INT(counts[PS_SYNC_QUEUED], 5);
	ps_store_free(s);
	free(url);
}

/* Failed scheduled syncs back off, pause after N in a row, and resume. */
static void test_store_failures_pause(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct ps_project *p = add_scheduled(s, "flaky", "10s", T0), *q;
	int64_t now = T0 + S;
	struct ps_sync *y = NULL;

	for (int n = 1; n <= 3; n++) {
		CHECK_OK(ps_store_schedule_next(s, now, 3, &y));
		CHECK(y != NULL);
		if (!y)
			break;
		end_sync(s, y->id, false, false, now);
		ps_sync_free(y);
		y = NULL;
		q = reload(s, "flaky");
		CHECK_INT(q->failures_in_row, n);
		/* Backoff, not the plain interval. */
		int64_t wait = (10 * S) << n;
		CHECK(q->next_sync_at >= now + wait && q->next_sync_at <= now + wait + S);
		now = q->next_sync_at;
		ps_project_free(q);
	}
	/* The third failure in a row pauses it (serve --max-failures 3): nothing is queued. */
	CHECK_INT(ps_store_schedule_next(s, now + HOUR, 3, &y), PS_ENOTFOUND);
	q = reload(s, "flaky");
	CHECK(q->paused);
	CHECK_INT(q->paused_at, now + HOUR);
	CHECK(q->paused_reason && strstr(q->paused_reason, "failed 3 times in a row"));
	CHECK(q->paused_reason && strstr(q->paused_reason, "the source said no"));
	ps_project_free(q);
	CHECK_INT(ps_store_schedule_next(s, now + 10 * HOUR, 3, NULL), PS_ENOTFOUND);

	/* Resume: active, failures cleared, due at once. */
	CHECK_OK(ps_store_project_resume(s, p->id, now + 11 * HOUR));
	q = reload(s, "flaky");
	CHECK(!q->paused);
	CHECK_INT(q->failures_in_row, 0);
	CHECK_INT(q->next_sync_at, now + 11 * HOUR);
	ps_project_free(q);

	/* A per-project limit beats the server's; a succeeded manual sync clears a pause. */
	q = reload(s, "flaky");
	q->max_failures = 1;
	CHECK_OK(ps_store_project_update(s, q));
	ps_project_free(q);
	now += 12 * HOUR;
	CHECK_OK(ps_store_schedule_next(s, now, 10, &y));
	if (y)
		end_sync(s, y->id, false, false, now);
	ps_sync_free(y);
	y = NULL;
	CHECK_INT(ps_store_schedule_next(s, now + HOUR, 10, NULL), PS_ENOTFOUND);
	q = reload(s, "flaky");
	CHECK(q->paused);
	ps_project_free(q);
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", NULL, &y));
	if (y)
		end_sync(s, y->id, true, false, now + 2 * HOUR);
	ps_sync_free(y);
	q = reload(s, "flaky");
	CHECK(!q->paused);
	CHECK(q->paused_reason == NULL);
	CHECK_INT(q->failures_in_row, 0);
	ps_project_free(q);
	ps_project_free(p);
	ps_store_free(s);
	free(url);
}

struct idle_tick {
	struct ps_store *s;
	int64_t now;
	int rc;
	volatile bool done;
};

static void *idle_tick_run(void *arg)
{
	struct idle_tick *t = arg;

	t->rc = ps_store_schedule_next(t->s, t->now, 0, NULL);
	t->done = true;
	return NULL;
}

/*
 * An idle tick (nothing due, nothing to pause) only reads: it answers at once while another
 * connection holds the write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a SHARE lock on
 * projects, which the claim's UPDATEs would wait for). A due project is still queued once the
 * lock is gone.
 */
static void test_store_idle_tick_reads_only(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct ps_project *p = add_scheduled(s, "later", "1h", T0);
	struct idle_tick t = { .s = s, .now = T0 - 1 };
	sqlite3 *lite = NULL;
	PGconn *pg = NULL;
	pthread_t th;
	struct ps_sync *y = NULL;

	if (ps_test_pg()) {
		pg = PQconnectdb(url);
		CHECK(PQstatus(pg) == CONNECTION_OK);
		PQclear(PQexec(pg, "BEGIN"));
		PGresult *r = PQexec(pg, "LOCK TABLE projects IN SHARE MODE");
		CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
		PQclear(r);
	} else {
		CHECK_INT(sqlite3_open(url, &lite), SQLITE_OK);
		CHECK_INT(sqlite3_exec(lite, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	}
	pthread_create(&th, NULL, idle_tick_run, &t);
	for (int i = 0; i < 300 && !t.done; i++)
		usleep(10000);
	CHECK(t.done); /* a write transaction would wait for the lock (SQLite: 10 s, then fail) */
	if (pg) {
		PQclear(PQexec(pg, "COMMIT"));
		PQfinish(pg);
	} else {
		sqlite3_exec(lite, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(lite);
	}
	pthread_join(th, NULL);
	CHECK_INT(t.rc, PS_ENOTFOUND);

	CHECK_OK(ps_store_schedule_next(s, p->next_sync_at, 0, &y));
	CHECK(y != NULL && strcmp(y->trigger, "schedule") == 0);
	ps_sync_free(y);
	CHECK_INT(ps_store_schedule_next(s, p->next_sync_at, 0, NULL), PS_ENOTFOUND);
	ps_project_free(p);
	ps_store_free(s);
	free(url);
}

/* ---- retention ---- */

static void test_retention_policy(void)
{
	struct ps_sync y[8];
	struct ps_sync *v[8];

	/* Newest first: ids 8..1, 7 and 4 failed, finished a day apart (8 newest). */
	for (int i = 0; i < 8; i++) {
		y[i] = (struct ps_sync){ .id = 8 - i, .status = PS_SYNC_SUCCEEDED,
					 .finished_at = T0 - i * 24 * HOUR };
		v[i] = &y[i];
	}
	y[1].status = PS_SYNC_FAILED;
	y[4].status = PS_SYNC_FAILED;
	CHECK_INT(ps_retention_start(v, 8, 0, 0, T0), 0);
	CHECK_INT(ps_retention_start(v, 8, 3, 0, T0), 5);     /* 8, 6, 5 */
	CHECK_INT(ps_retention_start(v, 8, 100, 0, T0), 0);   /* all kept */
	CHECK_INT(ps_retention_start(v, 8, 0, 2, T0), 6);     /* within 2 days: 8, 6 */
	CHECK_INT(ps_retention_start(v, 8, 1, 3, T0), 5);     /* either rule keeps */
	CHECK_INT(ps_retention_start(v, 8, 1, 0, T0 + 1000 * 24 * HOUR), 8); /* the newest stays */
	CHECK_INT(ps_retention_start(v, 8, 0, 1, T0 + 1000 * 24 * HOUR), 8);
}

static int count_cb(void *ud, const struct ps_file *f)
{
	(void)f;
	(*(int *)ud)++;
	return 0;
}

static char *snapshot_text(struct ps_store *s, int64_t pid, int64_t at);

struct text { char buf[8192]; };
static int text_cb(void *ud, const struct ps_file *f)
{
	struct text *t = ud;
	size_t len = strlen(t->buf);
	snprintf(t->buf + len, sizeof(t->buf) - len, "%s:%.7s ", f->path, f->sha);
	return 0;
}

static char *snapshot_text(struct ps_store *s, int64_t pid, int64_t at)
{
	struct text t = { "" };
	int rc = ps_store_snapshot_each(s, pid, at, NULL, text_cb, &t);
	return rc < 0 ? ps_asprintf("error %d", rc) : ps_strdup(t.buf);
}

static void test_store_prune(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct ps_project *p = add_scheduled(s, "keep", "off", T0);
	struct ps_owner o = me();
	int64_t ids[6];
	char *before[6], content[64], sha[PS_SHA_HEX], first_sha[PS_SHA_HEX];

	/* Six syncs: a.txt changes every time, b.txt once (sync 3), c.txt never. */
	for (int i = 0; i < 6; i++) {
		struct ps_change c[3];
		size_t n = 0;
		struct ps_sync *y = NULL;

		snprintf(content, sizeof(content), "a version %d\n", i);
		ps_git_blob_sha(content, strlen(content), sha);
		if (i == 0)
			memcpy(first_sha, sha, sizeof(sha));
		CHECK_OK(ps_store_blob_put(s, sha, content, strlen(content)));
		c[n++] = (struct ps_change){ .status = i ? PS_CHANGE_MODIFIED : PS_CHANGE_ADDED,
					     .path = (char *)"a.txt", .mode = PS_MODE_FILE,
					     .size = (int64_t)strlen(content) };
		memcpy(c[0].sha, sha, sizeof(sha));
		if (i == 0 || i == 3) {
			const char *b = i ? "b two\n" : "b one\n";
			c[n] = (struct ps_change){ .status = i ? PS_CHANGE_MODIFIED : PS_CHANGE_ADDED,
						   .path = (char *)"b.txt", .mode = PS_MODE_FILE,
						   .size = (int64_t)strlen(b) };
			ps_git_blob_sha(b, strlen(b), c[n].sha);
			CHECK_OK(ps_store_blob_put(s, c[n].sha, b, strlen(b)));
			n++;
		}
		if (i == 0) {
			c[n] = (struct ps_change){ .status = PS_CHANGE_ADDED, .path = (char *)"c.txt",
						   .mode = PS_MODE_FILE, .size = 2 };
			ps_git_blob_sha("c\n", 2, c[n].sha);
			CHECK_OK(ps_store_blob_put(s, c[n].sha, "c\n", 2));
			n++;
		}
		CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
		if (!y)
			break;
		CHECK_OK(ps_store_files_stage(s, y, c, n));
		y->commit = ps_strdup("0123456789012345678901234567890123456789");
		ps_changes_count(c, n, &y->counts);
		y->finished_at = T0 + i * HOUR;
		CHECK_OK(ps_store_sync_finalize(s, y, c, n, NULL));
		ids[i] = y->id;
		ps_sync_free(y);
	}
	for (int i = 0; i < 6; i++)
		before[i] = snapshot_text(s, p->id, ids[i]);

	/* Dry run: counts, and nothing changes. */
	p->keep_syncs = 2;
	CHECK_OK(ps_store_project_update(s, p));
	struct ps_prune_stats dry, real;
	CHECK_OK(ps_prune(s, "keep", T0 + 10 * HOUR, true, NULL, NULL, &dry));
	CHECK_INT(dry.syncs, 4);
	CHECK_INT(dry.blobs, 5); /* a versions 0..3, b one */
	CHECK(dry.blob_bytes > 0);
	char *again = snapshot_text(s, p->id, ids[0]);
	CHECK_STR(again, before[0]);
	free(again);

	CHECK_OK(ps_prune(s, "keep", T0 + 10 * HOUR, false, NULL, NULL, &real));
	CHECK_INT(real.syncs, dry.syncs);
	CHECK_INT(real.blobs, dry.blobs);
	CHECK_INT(real.blob_bytes, dry.blob_bytes);
	CHECK_INT(real.file_versions, dry.file_versions);
	/* The kept snapshots are what they were; the first kept one is the chain's start. */
	for (int i = 4; i < 6; i++) {
		char *now = snapshot_text(s, p->id, ids[i]);
		CHECK_STR(now, before[i]);
		free(now);
	}
	struct ps_sync *start = NULL, *gone = NULL;
	CHECK_OK(ps_store_sync_get(s, ids[4], &start));
	if (start)
		CHECK_INT(start->previous_sync_id, 0);
	ps_sync_free(start);
	CHECK_INT(ps_store_sync_get(s, ids[3], &gone), PS_ENOTFOUND);
	int files = 0;
	CHECK_INT(ps_store_snapshot_each(s, p->id, ids[3], NULL, count_cb, &files), PS_ENOTFOUND);
	void *data = NULL;
	size_t len = 0;
	CHECK_INT(ps_store_blob_get(s, first_sha, &data, &len), PS_ENOTFOUND);
	ps_git_blob_sha("c\n", 2, sha); /* seen by the kept syncs: stays */
	CHECK_OK(ps_store_blob_get(s, sha, &data, &len));
	free(data);
	/* The diff of the two kept syncs still works, and a new sync still appends. */
	struct ps_change *ch = NULL;
	size_t nch = 0;
	CHECK_OK(ps_store_diff(s, p->id, ids[4], ids[5], &ch, &nch));
	CHECK_INT(nch, 1);
	for (size_t i = 0; i < nch; i++)
		ps_change_dispose(&ch[i]);
	free(ch);
	/* Pruning again changes nothing. */
	CHECK_OK(ps_prune(s, NULL, T0 + 10 * HOUR, false, NULL, NULL, &real));
	CHECK_INT(real.syncs, 0);
	CHECK_INT(real.blobs, 0);
	for (int i = 0; i < 6; i++)
		free(before[i]);
	ps_project_free(p);
	ps_store_free(s);
	free(url);
}


/* ---- folded checks: a run of up-to-date scheduled checks is one history row ---- */

#define C1 "1111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222"
#define TR1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TR2 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Runs one sync of `trigger` to success at `at` as the pipeline would: its base is the last
 * succeeded sync, up to date when the head is the base's. Stores a `queued` event (and a
 * `warning` when asked) and the final event, whose summary is returned in *summary_checks. */
static int64_t check_at(struct ps_store *s, int64_t project_id, const char *trigger,
			const char *commit, const char *tree, int64_t at, bool warn,
			int64_t *summary_checks)
{
	struct ps_owner o = me();
	struct ps_sync *y = NULL, *base = NULL;
	struct ps_event ev = { 0 };
	int64_t id;

	CHECK_OK(ps_store_sync_create(s, project_id, "main", trigger, &o, &y));
	if (!y)
		return 0;
	id = y->id;
	ev.sync_id = id;
	ev.seq = 1;
	ev.kind = PS_EVENT_QUEUED;
	CHECK_OK(ps_store_event_append(s, &ev));
	if (warn) {
		ev.seq = 2;
		ev.kind = PS_EVENT_WARNING;
		ev.message = (char *)"a warning of its own";
		CHECK_OK(ps_store_event_append(s, &ev));
		ev.message = NULL;
	}
	if (ps_store_sync_last_succeeded(s, project_id, 0, &base) == 0) {
		y->base_sync_id = base->id;
		y->up_to_date = strcmp(base->commit, commit) == 0;
	}
	ps_error_clear();
	ps_sync_free(base);
	y->commit = ps_strdup(commit);
	y->tree = ps_strdup(tree);
	y->finished_at = at;
	ev.seq = warn ? 3 : 2;
	ev.kind = PS_EVENT_SUCCEEDED;
	ev.summary = ps_calloc(1, sizeof(*ev.summary));
	ev.summary->id = id;
	ev.summary->checks = 1;
	CHECK_OK(ps_store_sync_finalize(s, y, NULL, 0, &ev));
	if (summary_checks)
		*summary_checks = ev.summary->checks;
	CHECK_INT(y->checks > 1 ? y->checks : 1, ev.summary->checks > 1 ? ev.summary->checks : 1);
	free(ev.summary);
	ps_sync_free(y);
	return id;
}

static int64_t nevents(struct ps_store *s, int64_t sync_id)
{
	struct ps_stored_event *evs = NULL;
	size_t n = 0;
	CHECK_OK(ps_store_event_list(s, sync_id, 0, 0, &evs, &n));
	ps_stored_events_free(evs, n);
	return (int64_t)n;
}

/* The chain holds: one start, every link names a sync of the project, links are unique. */
static void check_chain(struct ps_store *s, int64_t project_id, size_t want)
{
	struct ps_sync **v = NULL;
	size_t n = 0, starts = 0;

	CHECK_OK(ps_store_sync_list(s, project_id, 0, 0, &v, &n));
	if (want) /* 0: any number */
		CHECK_INT(n, want);
	for (size_t i = 0; i < n; i++) {
		if (!v[i]->previous_sync_id) {
			starts++;
			continue;
		}
		/* Newest first: the predecessor is the next row. */
		CHECK(i + 1 < n && v[i]->previous_sync_id == v[i + 1]->id);
	}
	CHECK_INT(starts, 1);
	for (size_t i = 0; i < n; i++)
		ps_sync_free(v[i]);
	free(v);
}

static void test_store_fold_checks(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct ps_project *p = add_scheduled(s, "folds", "10s", T0);
	struct ps_sync *y = NULL;
	int64_t sum = 0;

	/* A manual first sync, then scheduled checks of the same head. */
	int64_t a = check_at(s, p->id, "cli", C1, TR1, T0 + 1 * S, false, NULL);
	int64_t b = check_at(s, p->id, "schedule", C1, TR1, T0 + 10 * S, false, &sum);
	CHECK_INT(sum, 1); /* its predecessor is a manual sync: never folded */
	check_chain(s, p->id, 2);
	int64_t c = check_at(s, p->id, "schedule", C1, TR1, T0 + 20 * S, false, &sum);
	CHECK_INT(sum, 2);
	CHECK_INT(ps_store_sync_get(s, b, &y), PS_ENOTFOUND);
	CHECK_INT(nevents(s, b), 0);
	CHECK_INT(nevents(s, c), 2);
	int64_t d = check_at(s, p->id, "schedule", C1, TR1, T0 + 30 * S, false, &sum);
	CHECK_INT(sum, 3);
	check_chain(s, p->id, 2);
	CHECK_OK(ps_store_sync_get(s, d, &y));
	if (y) {
		CHECK_INT(y->checks, 3);
		CHECK_INT(y->first_check_at, T0 + 10 * S);
		CHECK_INT(y->finished_at, T0 + 30 * S);
		CHECK_INT(y->previous_sync_id, a);
		CHECK_INT(y->base_sync_id, a);
		CHECK(y->up_to_date);
		/* The JSON of history and the API says it too. */
		json_t *j = ps_sync_to_json(y);
		CHECK_INT(json_integer_value(json_object_get(j, "checks")), 3);
		CHECK(json_is_string(json_object_get(j, "first_checked_at")));
		json_decref(j);
	}
	ps_sync_free(y);
	y = NULL;
	/* The project's latest check is the last one; its snapshot is the first sync's. */
	struct ps_project *q = reload(s, "folds");
	CHECK_INT(q->last_check_at, T0 + 30 * S);
	CHECK_INT(q->last_sync_id, d);
	ps_project_free(q);

	/* A change makes a row of its own; the checks after it fold among themselves only. */
	int64_t e = check_at(s, p->id, "schedule", C2, TR2, T0 + 40 * S, false, &sum);
	CHECK_INT(sum, 1);
	int64_t f = check_at(s, p->id, "schedule", C2, TR2, T0 + 50 * S, false, &sum);
	CHECK_INT(sum, 1); /* its predecessor found a change */
	int64_t g = check_at(s, p->id, "schedule", C2, TR2, T0 + 60 * S, false, &sum);
	CHECK_INT(sum, 2);
	CHECK_INT(ps_store_sync_get(s, f, &y), PS_ENOTFOUND);
	CHECK_OK(ps_store_sync_get(s, e, &y));
	ps_sync_free(y);
	y = NULL;
	CHECK_OK(ps_store_sync_get(s, g, &y)); /* the run's newest row stands for both checks */
	ps_sync_free(y);
	y = NULL;
	check_chain(s, p->id, 4); /* a, d, e, g */

	/* A check that warned keeps its row; a manual sync is never folded nor folded into. */
	int64_t h = check_at(s, p->id, "schedule", C2, TR2, T0 + 70 * S, true, &sum);
	CHECK_INT(sum, 3); /* h folds g (g did not warn) */
	int64_t i = check_at(s, p->id, "schedule", C2, TR2, T0 + 80 * S, false, &sum);
	CHECK_INT(sum, 1);
	CHECK_INT(nevents(s, h), 3);
	int64_t m = check_at(s, p->id, "api", C2, TR2, T0 + 90 * S, false, &sum);
	CHECK_INT(sum, 1);
	int64_t k = check_at(s, p->id, "schedule", C2, TR2, T0 + 100 * S, false, &sum);
	CHECK_INT(sum, 1);
	check_chain(s, p->id, 7); /* a, d, e, h, i, m, k */

	/* A failed check breaks the run: the next one does not fold across it. */
	struct ps_owner o = me();
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "schedule", &o, &y));
	if (y)
		CHECK_OK(ps_store_sync_fail(s, y, PS_SYNC_FAILED, "boom", "no", NULL));
	ps_sync_free(y);
	y = NULL;
	check_at(s, p->id, "schedule", C2, TR2, T0 + 110 * S, false, &sum);
	CHECK_INT(sum, 1);
	int64_t last = check_at(s, p->id, "schedule", C2, TR2, T0 + 120 * S, false, &sum);
	CHECK_INT(sum, 2);
	check_chain(s, p->id, 9);

	/* The fold is part of the finalize transaction: rolled back, nothing of it stays. */
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "schedule", &o, &y));
	if (y) {
		y->base_sync_id = last;
		y->up_to_date = true;
		y->commit = ps_strdup(C2);
		y->tree = ps_strdup(TR2);
		y->finished_at = T0 + 130 * S;
		CHECK_OK(ps_store_begin(s));
		CHECK_OK(ps_store_sync_finalize(s, y, NULL, 0, NULL));
		CHECK_INT(y->checks, 3);
		ps_store_rollback(s);
	}
	ps_sync_free(y);
	y = NULL;
	CHECK_OK(ps_store_sync_get(s, last, &y));
	if (y)
		CHECK_INT(y->checks, 2);
	ps_sync_free(y);
	CHECK_INT(nevents(s, last), 2);
	(void)k;
	(void)i;
	(void)m;
	ps_project_free(p);
	ps_store_free(s);
	free(url);
}

/* Stores `content` as `path` and runs a manual sync of head `commit` that adds or modifies it. */
static int64_t change_at(struct ps_store *s, int64_t project_id, const char *commit,
			 const char *path, const char *content, bool added, int64_t at)
{
	struct ps_owner o = me();
	struct ps_sync *y = NULL, *base = NULL;
	struct ps_change c = { .status = added ? PS_CHANGE_ADDED : PS_CHANGE_MODIFIED,
			       .path = (char *)path, .mode = PS_MODE_FILE,
			       .size = (int64_t)strlen(content) };
	int64_t id;

	ps_git_blob_sha(content, strlen(content), c.sha);
	CHECK_OK(ps_store_blob_put(s, c.sha, content, strlen(content)));
	CHECK_OK(ps_store_sync_create(s, project_id, "main", "cli", &o, &y));
	if (!y)
		return 0;
	if (ps_store_sync_last_succeeded(s, project_id, 0, &base) == 0)
		y->base_sync_id = base->id;
	ps_error_clear();
	ps_sync_free(base);
	CHECK_OK(ps_store_files_stage(s, y, &c, 1));
	y->commit = ps_strdup(commit);
	y->tree = ps_strdup(TR1);
	ps_changes_count(&c, 1, &y->counts);
	y->finished_at = at;
	CHECK_OK(ps_store_sync_finalize(s, y, &c, 1, NULL));
	id = y->id;
	ps_sync_free(y);
	return id;
}

/* A check that became the chain's start by a prune holds the start's whole snapshot (prune
 * rebases it there): folded into the next check, those rows must go with it to the row that
 * takes its place, or the next prune takes them for a failed sync's leftovers and deletes
 * files every later snapshot still shows. */
static void test_store_fold_prune_start(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct ps_project *p = add_scheduled(s, "foldstart", "10s", T0);
	struct ps_prune_stats st;
	int64_t sum = 0;

	change_at(s, p->id, C1, "x.txt", "x one\n", true, T0 + 1 * S);
	change_at(s, p->id, C1, "y.txt", "y one\n", true, T0 + 2 * S);
	check_at(s, p->id, "schedule", C1, TR1, T0 + 10 * S, false, &sum);
	p->keep_syncs = 1;
	CHECK_OK(ps_store_project_update(s, p));
	memset(&st, 0, sizeof(st));
	CHECK_OK(ps_prune(s, "foldstart", T0 + 11 * S, false, NULL, NULL, &st));
	CHECK_INT(st.syncs, 2);
	int64_t d = check_at(s, p->id, "schedule", C1, TR1, T0 + 20 * S, false, &sum);
	CHECK_INT(sum, 2); /* folded into the start */
	char *snap = snapshot_text(s, p->id, d);
	CHECK_STR(snap, "x.txt:70df761 y.txt:7f65e00 ");
	free(snap);
	/* The start lists its whole snapshot as its changes; so do its counts, and the row that
	 * takes its place takes them too. */
	{
		struct ps_sync *y = NULL;
		CHECK_OK(ps_store_sync_get(s, d, &y));
		if (y) {
			CHECK_INT(y->counts.added, 2);
			CHECK_INT(y->counts.modified + y->counts.deleted + y->counts.renamed, 0);
			CHECK(y->up_to_date);
		}
		ps_sync_free(y);
	}
	int64_t e = change_at(s, p->id, C2, "x.txt", "x two\n", false, T0 + 30 * S);
	memset(&st, 0, sizeof(st));
	CHECK_OK(ps_prune(s, "foldstart", T0 + 31 * S, false, NULL, NULL, &st));
	CHECK_INT(st.syncs, 1);
	snap = snapshot_text(s, p->id, e);
	CHECK_STR(snap, "x.txt:db6ba0c y.txt:7f65e00 ");
	free(snap);
	ps_project_free(p);
	ps_store_free(s);
	free(url);
}

struct pruner {
	const char *url;
	int64_t now;
	int rc;
};

static void *prune_thread(void *arg)
{
	struct pruner *r = arg;
	struct ps_store *s = NULL;
	struct ps_prune_stats st;

	if ((r->rc = ps_store_open(&s, r->url, 0)) < 0)
		return NULL;
	r->rc = ps_prune(s, "foldrace", r->now, false, NULL, NULL, &st);
	ps_error_clear();
	ps_store_free(s);
	return NULL;
}

/* A prune whose start is the check that a concurrent finalize folds away (the server prunes
 * while its workers check): one of the two must wait for the other. Otherwise, on a backend
 * that lets the prune read the start before the fold commits, the prune rebases the snapshot
 * onto the deleted row and deletes the row the survivor now links to. The prune finds its
 * start gone, reads the history again and prunes to the surviving row; the chain and the
 * snapshot stay whole. */
static void test_store_fold_races_prune(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url);
	struct ps_project *p = add_scheduled(s, "foldrace", "10s", T0);
	struct ps_owner o = me();
	struct ps_sync *y = NULL;
	struct pruner pr = { url, T0 + 25 * S, 0 };
	pthread_t t;
	int64_t sum = 0;

	change_at(s, p->id, C1, "x.txt", "x one\n", true, T0 + 1 * S);
	int64_t b = check_at(s, p->id, "schedule", C1, TR1, T0 + 10 * S, false, &sum);
	p->keep_syncs = 1;
	CHECK_OK(ps_store_project_update(s, p));
	/* The next check folds b, in a transaction left open while the prune starts. */
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "schedule", &o, &y));
	if (!y)
		goto out;
	y->base_sync_id = b;
	y->up_to_date = true;
	y->commit = ps_strdup(C1);
	y->tree = ps_strdup(TR1);
	y->finished_at = T0 + 20 * S;
	CHECK_OK(ps_store_begin(s));
	CHECK_OK(ps_store_sync_finalize(s, y, NULL, 0, NULL));
	CHECK_INT(y->checks, 2);
	pthread_create(&t, NULL, prune_thread, &pr);
	usleep(500 * 1000);
	CHECK_OK(ps_store_commit(s));
	pthread_join(t, NULL);
	CHECK_OK(pr.rc); /* the prune read the history again: its start is the surviving row */
	check_chain(s, p->id, 1);
	char *snap = snapshot_text(s, p->id, y->id);
	CHECK_STR(snap, "x.txt:70df761 ");
	free(snap);
	ps_sync_free(y);
out:
	ps_project_free(p);
	ps_store_free(s);
	free(url);
}

/*
 * The prune gate (migration 0018, server/scheduler.c): while it is shut, no handle of the store
 * (another node's workers) claims or takes over a queued sync; a node opens only the gate it
 * shut; a gate whose pruner died opens by itself at its deadline.
 */
static void test_store_prune_gate(void)
{
	char *url = ps_test_store_url();
	struct ps_store *s = open_url(url), *other = open_url(url);
	struct ps_project *p = add_scheduled(s, "gated", "off", T0);
	struct ps_owner o = me();
	struct ps_sync *y = NULL, *stale = NULL;
	int64_t now = ps_now_ms(), id = 0;
	bool shut = true;

	CHECK_OK(ps_store_prune_gate_shut(other, now, &shut));
	CHECK(!shut);
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "api", NULL, &y));
	/* PostgreSQL: a sync of a node elsewhere whose lease ran out, one a takeover would take. */
	if (ps_test_pg()) {
		struct ps_project *q = add_scheduled(s, "stale", "off", T0);
		struct ps_owner gone = { "elsewhere.example", "1:1", -1000 };

		CHECK_OK(ps_store_sync_create(s, q->id, "main", "api", &gone, &stale));
		ps_project_free(q);
	}
	CHECK_OK(ps_store_prune_gate_set(s, now + 60000, -1));
	CHECK_OK(ps_store_prune_gate_shut(other, now, &shut));
	CHECK(shut);
	CHECK_INT(ps_store_sync_claim_next(other, &o, &id), PS_ENOTFOUND);
	CHECK_STR(ps_error_slug(), "prune_gate");
	CHECK_INT(ps_store_sync_takeover(other, &o, &id), PS_ENOTFOUND);
	ps_error_clear();
	/* Another node's time: not this gate, which stays shut. */
	CHECK_OK(ps_store_prune_gate_set(other, 0, now + 1));
	CHECK_OK(ps_store_prune_gate_shut(other, now, &shut));
	CHECK(shut);
	CHECK_OK(ps_store_prune_gate_set(s, 0, now + 60000));
	CHECK_OK(ps_store_prune_gate_shut(other, now, &shut));
	CHECK(!shut);
	/* A gate left shut by a pruner that died: past its deadline, claims go on. */
	CHECK_OK(ps_store_prune_gate_set(s, now - 1, -1));
	CHECK_OK(ps_store_sync_claim_next(other, &o, &id));
	CHECK_INT(id, y ? y->id : -1);
	if (stale) {
		CHECK_OK(ps_store_sync_takeover(other, &o, &id));
		CHECK_INT(id, stale->id);
	}
	/* With a sync running, a blob prune is "skipped" (which makes the server shut the gate)
	 * only when some blob is unreferenced: nothing to prune holds no sync back. */
	{
		struct ps_prune_stats pr = { 0 };
		char sha[PS_SHA_HEX + 1];

		CHECK_OK(ps_store_prune_blobs(s, &pr));
		CHECK(!pr.blobs_skipped);
		ps_git_blob_sha("orphan\n", 7, sha);
		CHECK_OK(ps_store_blob_put(s, sha, "orphan\n", 7));
		CHECK_OK(ps_store_prune_blobs(s, &pr));
		CHECK(pr.blobs_skipped);
		CHECK_INT(pr.blobs, 0);
	}
	ps_sync_free(y);
	ps_sync_free(stale);
	ps_project_free(p);
	ps_store_free(other);
	ps_store_free(s);
	free(url);
}

PS_TESTS(PS_TEST(test_parse_every), PS_TEST(test_auto_adapts), PS_TEST(test_backoff),
	 PS_TEST(test_store_schedule), PS_TEST(test_store_schedule_once),
	 PS_TEST(test_store_idle_tick_reads_only),
	 PS_TEST(test_store_failures_pause), PS_TEST(test_retention_policy),
	 PS_TEST(test_store_prune), PS_TEST(test_store_fold_checks),
	 PS_TEST(test_store_fold_prune_start), PS_TEST(test_store_fold_races_prune),
	 PS_TEST(test_store_prune_gate))
