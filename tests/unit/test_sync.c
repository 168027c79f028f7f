/*
 * The pipeline generator over an in-memory source: the event sequence, incremental cost,
 * up-to-date syncs, failures in each phase leaving the previous snapshot, cancellation, the
 * fallback when the source lost the base tree, the size limit and empty repositories.
 */
#include "harness.h"

#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/project.h"
#include "core/sync.h"
#include "core/verify.h"
#include "fake_source.h"
#include "store/backend.h"
#include "util/error.h"

struct env {
	char *dir;
	char *url;
	struct ps_store *store;
	struct ps_sync_ctx ctx;
	struct fake_source *fake;
};

static void env_init(struct env *e, int64_t max_blob)
{
	char *path;
	struct ps_project p = { .name = (char *)"p", .source = (char *)"fake:",
				.max_blob_size = max_blob };

	memset(e, 0, sizeof(*e));
	e->dir = ps_test_tmpdir();
	path = ps_test_store_url();
	CHECK_OK(ps_store_open(&e->store, path, 0));
	e->url = path;
	CHECK_OK(ps_store_project_add(e->store, &p));
	ps_strv_dispose(&p.memory_globs);
	e->fake = fake_new();
	fake_register(e->fake);
	e->ctx.store = e->store;
	e->ctx.open_source = fake_open;
	e->ctx.progress_interval_ms = 1; /* every progress event, to see them in tests */
}

static void env_dispose(struct env *e)
{
	ps_store_free(e->store);
	fake_free(e->fake);
	free(e->dir);
	free(e->url);
}

struct result {
	enum ps_event_kind last;
	struct ps_sync summary;
	char phases[64];
	int events;
	bool seq_ok;
	bool warned;
	char error_code[64];
	enum ps_phase failed_phase;
	bool monotone;          /* fraction, files_done and files_total never went down */
	int64_t files_done, files_total; /* of the last event */
};

/* When set, run() cancels at the start of this phase. */
static enum ps_phase cancel_at_phase;
/* The trigger of run()'s syncs (NULL: cli). */
static const char *run_trigger;

/* Runs a sync to its end; cancel_after > 0 cancels after that many events. */
static struct result run(struct env *e, const char *branch, int cancel_after)
{
	struct ps_sync_run *r = NULL;
	const struct ps_event *ev;
	struct ps_sync_opts opts = { .branch = branch, .trigger = run_trigger };
	struct result res = { .seq_ok = true, .monotone = true };
	int64_t expect = 1;
	double fraction = 0;

	if (ps_sync_begin(&r, &e->ctx, "p", &opts) < 0) {
		CHECK(!"begin failed");
		return res;
	}
	while (ps_sync_next(r, &ev) == PS_SYNC_MORE) {
		if (ev->seq != expect++)
			res.seq_ok = false;
		res.events++;
		res.last = ev->kind;
		if (ev->kind == PS_EVENT_PHASE)
			strcat(res.phases, ps_phase_name(ev->phase)), strcat(res.phases, " ");
		if (ev->kind == PS_EVENT_WARNING)
			res.warned = true;
		if (ev->fraction < fraction || ev->files_done < res.files_done ||
		    ev->files_total < res.files_total || ev->files_done > ev->files_total)
			res.monotone = false;
		fraction = ev->fraction;
		res.files_done = ev->files_done;
		res.files_total = ev->files_total;
		if (ps_event_is_final(ev->kind) && ev->summary) {
			res.summary = *ev->summary;
			res.summary.project = res.summary.branch = res.summary.commit = NULL;
			res.summary.tree = res.summary.trigger = NULL;
			res.summary.error_code = res.summary.error_message = NULL;
			snprintf(res.error_code, sizeof(res.error_code), "%s",
				 ev->summary->error_code ? ev->summary->error_code : "");
			res.failed_phase = ev->phase;
		}
		if ((cancel_after > 0 && res.events == cancel_after) ||
		    (cancel_at_phase && ev->kind == PS_EVENT_PHASE && ev->phase == cancel_at_phase))
			ps_sync_cancel(r);
	}
	ps_sync_end(r);
	return res;
}

static int count_cb(void *ud, const struct ps_file *f)
{
	(void)f;
	(*(int *)ud)++;
	return 0;
}

static int files_now(struct env *e)
{
	int n = 0;
	if (ps_store_snapshot_each(e->store, 1, 0, NULL, count_cb, &n) < 0)
		return -1;
	return n;
}

static void test_first_then_incremental_then_up_to_date(void)
{
	struct env e;
	struct fake_file v1[] = { { "a", "1" }, { "d/b", "2" }, { "d/c", "3" }, { "x/y/z", "4" } };
	struct result r;

	env_init(&e, 0);
	fake_commit(e.fake, "c1", v1, 4);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_STR(r.phases, "prepare scan fetch import finalize ");
	CHECK(r.seq_ok);
	CHECK_INT(r.summary.counts.added, 4);
	CHECK_INT(r.summary.counts.files, 4);
	CHECK_INT(fake_blob_reads(e.fake), 4);
	CHECK_INT(files_now(&e), 4);

	/* Every event handed out was stored, in order. */
	struct ps_stored_event *evs = NULL;
	size_t n = 0;
	CHECK_OK(ps_store_event_list(e.store, r.summary.id, 0, 0, &evs, &n));
	CHECK_INT(n, r.events);
	if (n) {
		json_t *last = json_loads(evs[n - 1].json, 0, NULL);
		CHECK_STR(json_string_value(json_object_get(last, "kind")), "succeeded");
		CHECK_STR(json_string_value(json_object_get(json_object_get(last, "summary"), "status")),
			  "succeeded");
		json_decref(last);
	}
	ps_stored_events_free(evs, n);

	/* One file changes: one blob fetched, one row. */
	v1[2].content = "3 changed";
	fake_commit(e.fake, "c2", v1, 4);
	fake_reset_counts(e.fake);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_INT(r.summary.counts.modified, 1);
	CHECK_INT(r.summary.counts.added, 0);
	CHECK_INT(r.summary.counts.files, 4);
	CHECK_INT(fake_blob_reads(e.fake), 1);
	CHECK_INT(fake_tree_reads(e.fake), 4); /* root and d/, both sides */

	/* Nothing moved: up to date, no tree read, no new snapshot. */
	fake_reset_counts(e.fake);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(r.summary.up_to_date);
	CHECK_INT(r.summary.counts.files, 4);
	CHECK_INT(fake_tree_reads(e.fake), 0);
	CHECK_STR(r.phases, "prepare finalize ");
	env_dispose(&e);
}

/* The stored directories read through the store, by path, while counting is on. */
static const struct ps_store_ops *counted_ops;
static char dir_loads[4096];

static int counting_dir_tree_get(struct ps_store *s, int64_t project_id, int64_t at,
				 const char *path, struct ps_tree_dir *out)
{
	size_t len = strlen(dir_loads);

	snprintf(dir_loads + len, sizeof(dir_loads) - len, "[%s]", path);
	return counted_ops->dir_tree_get(s, project_id, at, path, out);
}

/* An incremental sync re-hashes the directories on its changed paths from the base's stored
 * ones and loads each once: the root too, which the check loads first to see that the base
 * has its directories (every load rebuilds the entries from the rows). */
static void test_incremental_loads_each_base_dir_once(void)
{
	struct env e;
	struct fake_file v1[] = { { "a", "1" }, { "d/b", "2" }, { "d/c", "3" }, { "x/y/z", "4" } };
	struct ps_store_head *h;
	struct ps_store_ops ops;
	struct result r;

	env_init(&e, 0);
	fake_commit(e.fake, "c1", v1, 4);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	v1[2].content = "3 changed";
	fake_commit(e.fake, "c2", v1, 4);
	h = (struct ps_store_head *)e.store;
	counted_ops = h->ops ? h->ops : &ps_sqlite_ops;
	ops = *counted_ops;
	ops.dir_tree_get = counting_dir_tree_get;
	h->ops = &ops;
	dir_loads[0] = '\0';
	r = run(&e, NULL, 0);
	h->ops = counted_ops == &ps_sqlite_ops ? NULL : counted_ops;
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(!r.warned);
	CHECK_INT(r.summary.counts.modified, 1);
	CHECK_STR(dir_loads, "[][d]");
	env_dispose(&e);
}

/*
 * A scheduled check that finds the branch where the last sync left it is answered in the
 * finalize transaction alone: no phase events (each was one more write per check, deleted by
 * the next fold), only its end. One that finds a change, warns or fails shows its phases as any
 * sync does, with seqs that have no gap.
 */
static void test_scheduled_check_of_unmoved_branch_writes_its_end_only(void)
{
	struct env e;
	struct fake_file v1[] = { { "a", "1" } }, v2[] = { { "a", "2" } };
	struct ps_stored_event *evs = NULL;
	size_t n = 0;
	struct result r;

	env_init(&e, 0);
	run_trigger = "schedule";
	fake_commit(e.fake, "c1", v1, 1);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_STR(r.phases, "prepare scan fetch import finalize ");

	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(r.summary.up_to_date);
	CHECK_STR(r.phases, "");
	CHECK_INT(r.events, 1);
	CHECK(r.seq_ok);
	/* What was handed out is what is stored, and the row says where it ended. */
	CHECK_OK(ps_store_event_list(e.store, r.summary.id, 0, 0, &evs, &n));
	CHECK_INT(n, 1);
	ps_stored_events_free(evs, n);
	struct ps_sync *y = NULL;
	CHECK_OK(ps_store_sync_get(e.store, r.summary.id, &y));
	CHECK_INT(y->status, PS_SYNC_SUCCEEDED);
	CHECK_INT(y->phase, PS_PHASE_FINALIZE);
	ps_sync_free(y);

	/* A change: the phases are stored. */
	fake_commit(e.fake, "c2", v2, 1);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_STR(r.phases, "prepare scan fetch import finalize ");
	CHECK(r.seq_ok);

	/* A failure in prepare: recorded with its phase, seqs still whole. */
	r = run(&e, "no/such/branch", 0);
	CHECK_INT(r.last, PS_EVENT_FAILED);
	CHECK_INT(r.failed_phase, PS_PHASE_PREPARE);
	CHECK(r.seq_ok);
	CHECK_OK(ps_store_event_list(e.store, r.summary.id, 0, 0, &evs, &n));
	CHECK_INT(n, r.events);
	ps_stored_events_free(evs, n);
	CHECK_OK(ps_store_sync_get(e.store, r.summary.id, &y));
	CHECK_INT(y->status, PS_SYNC_FAILED);
	CHECK_INT(y->phase, PS_PHASE_PREPARE);
	ps_sync_free(y);

	/* Other triggers show the phase at once, unmoved or not. */
	run_trigger = NULL;
	r = run(&e, NULL, 0);
	CHECK(r.summary.up_to_date);
	CHECK_STR(r.phases, "prepare finalize ");
	env_dispose(&e);
}

static void test_failures_leave_previous_snapshot(void)
{
	struct env e;
	struct fake_file v1[] = { { "a", "1" } }, v2[] = { { "a", "2" }, { "b", "3" } };
	struct ps_project *p = NULL;
	struct result r;

	env_init(&e, 0);
	fake_commit(e.fake, "c1", v1, 1);
	run(&e, NULL, 0);
	fake_commit(e.fake, "c2", v2, 2);

	fake_fail_fetch_after(e.fake, 1);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_FAILED);
	CHECK_INT(r.failed_phase, PS_PHASE_FETCH);
	CHECK_STR(r.error_code, "upstream");
	CHECK_INT(files_now(&e), 1);

	fake_corrupt_blobs(e.fake, true);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_FAILED);
	CHECK_STR(r.error_code, "sha_mismatch");
	fake_corrupt_blobs(e.fake, false);

	r = run(&e, "no/such/branch", 0);
	CHECK_INT(r.last, PS_EVENT_FAILED);
	CHECK_INT(r.failed_phase, PS_PHASE_PREPARE);
	CHECK_STR(r.error_code, "branch_not_found");

	CHECK_OK(ps_store_project_get(e.store, "p", &p));
	CHECK_INT(p->failures_in_row, 3);
	ps_project_free(p);
	CHECK_INT(files_now(&e), 1);

	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_INT(r.summary.counts.added, 1);
	CHECK_INT(r.summary.counts.modified, 1);
	CHECK_INT(files_now(&e), 2);
	env_dispose(&e);
}

static void test_cancel_and_conflict(void)
{
	struct env e;
	struct fake_file v1[] = { { "a", "1" }, { "b", "2" } };
	struct ps_sync_run *r1 = NULL, *r2 = NULL;
	const struct ps_event *ev;
	struct result r;

	env_init(&e, 0);
	fake_commit(e.fake, "c1", v1, 2);
	r = run(&e, NULL, 2);
	CHECK_INT(r.last, PS_EVENT_CANCELLED);
	CHECK_INT(files_now(&e), -1); /* still no snapshot */

	/* A second run while one is running is refused; the first is unaffected. */
	CHECK_OK(ps_sync_begin(&r1, &e.ctx, "p", NULL));
	CHECK_INT(ps_sync_next(r1, &ev), PS_SYNC_MORE);
	CHECK_INT(ps_sync_begin(&r2, &e.ctx, "p", NULL), PS_ECONFLICT);
	CHECK_INT(ps_sync_begin(&r2, &e.ctx, "unknown", NULL), PS_ENOTFOUND);
	/* A cancel requested through the store (another process) stops it at the next step. */
	CHECK_OK(ps_store_sync_request_cancel(e.store, ps_sync_run_sync(r1)->id));
	enum ps_event_kind last = PS_EVENT_QUEUED;
	while (ps_sync_next(r1, &ev) == PS_SYNC_MORE)
		last = ev->kind;
	CHECK_INT(last, PS_EVENT_CANCELLED);
	ps_sync_end(r1);

	/* Abandoning a run mid-way ends it as cancelled, and the next one starts. */
	CHECK_OK(ps_sync_begin(&r1, &e.ctx, "p", NULL));
	ps_sync_next(r1, &ev);
	ps_sync_end(r1);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	env_dispose(&e);
}

static void test_fallback_when_base_tree_is_gone(void)
{
	struct env e;
	struct fake_file v1[] = { { "a", "1" }, { "d/b", "2" } };
	struct fake_file v2[] = { { "a", "1" }, { "d/c", "3" } };
	struct result r;

	env_init(&e, 0);
	fake_commit(e.fake, "c1", v1, 2);
	run(&e, NULL, 0);
	fake_commit(e.fake, "c2-forced", v2, 2);
	fake_gc(e.fake);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(r.warned);
	CHECK_INT(r.summary.counts.added, 1);
	CHECK_INT(r.summary.counts.deleted, 1);
	CHECK_INT(r.summary.counts.files, 2);
	CHECK_INT(files_now(&e), 2);
	env_dispose(&e);
}

static void test_size_limit_and_odd_entries(void)
{
	struct env e;
	struct fake_file v1[] = { { "big", "0123456789abcdef" }, { "small", "ok" },
				  { "sub", "@sub:abc" }, { "ln", "@link:small" } };
	struct ps_file f = { 0 };
	void *data = NULL;
	size_t len;
	struct result r;

	env_init(&e, 10);
	fake_commit(e.fake, "c1", v1, 4);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(r.warned);
	CHECK_INT(r.summary.skipped_large, 1);
	CHECK_INT(r.summary.counts.files, 4);
	CHECK_OK(ps_store_snapshot_file(e.store, 1, 0, "big", &f));
	CHECK_INT(f.size, 16);
	CHECK_INT(ps_store_blob_get(e.store, f.sha, &data, &len), PS_ENOTFOUND);
	ps_file_dispose(&f);
	CHECK_OK(ps_store_snapshot_file(e.store, 1, 0, "sub", &f));
	CHECK_INT(f.mode, PS_MODE_COMMIT);
	CHECK_INT(f.size, -1);
	ps_file_dispose(&f);
	CHECK_OK(ps_store_snapshot_file(e.store, 1, 0, "ln", &f));
	CHECK_INT(f.mode, PS_MODE_LINK);
	CHECK_OK(ps_store_blob_get(e.store, f.sha, &data, &len));
	CHECK(len == 5 && memcmp(data, "small", 5) == 0);
	free(data);
	ps_file_dispose(&f);
	env_dispose(&e);
}

/* A raised size limit makes the next sync fetch what now fits, even with nothing new upstream,
 * and once only; a file the changes replace is not fetched for the old snapshot. */
static void test_raised_limit_fetches_skipped(void)
{
	struct env e;
	struct fake_file v1[] = { { "big", "0123456789abcdef" }, { "huge", "0123456789abcdefghij" },
				  { "old-big", "0123456789ABCDEF" }, { "small", "ok" } };
	struct ps_project *p = NULL;
	struct ps_file f = { 0 };
	void *data = NULL;
	size_t len;
	struct result r;

	env_init(&e, 10);
	fake_commit(e.fake, "c1", v1, 4);
	r = run(&e, NULL, 0);
	CHECK_INT(r.summary.skipped_large, 3);

	/* Lowering changes nothing to fetch; raising to 18 lets big and old-big in, not huge. */
	CHECK_OK(ps_store_project_get(e.store, "p", &p));
	p->max_blob_size = 5;
	CHECK_OK(ps_store_project_update(e.store, p));
	p->max_blob_size = 18;
	CHECK_OK(ps_store_project_update(e.store, p));
	ps_project_free(p);
	p = NULL;

	fake_reset_counts(e.fake);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(r.summary.up_to_date);
	CHECK_INT(fake_blob_reads(e.fake), 2);
	CHECK_OK(ps_store_snapshot_file(e.store, 1, 0, "big", &f));
	CHECK_OK(ps_store_blob_get(e.store, f.sha, &data, &len));
	CHECK(len == 16 && data && memcmp(data, "0123456789abcdef", 16) == 0);
	free(data);
	data = NULL;
	ps_file_dispose(&f);
	CHECK_OK(ps_store_snapshot_file(e.store, 1, 0, "huge", &f));
	CHECK_INT(ps_store_blob_get(e.store, f.sha, &data, &len), PS_ENOTFOUND);
	/* Over the limit still: the reason, never a store failure. */
	CHECK_OK(ps_store_project_get(e.store, "p", &p));
	CHECK_INT(ps_project_content_missing(e.store, p, r.summary.id, &f), PS_ETOOBIG);
	CHECK_STR(ps_error_slug(), "too_big");
	ps_file_dispose(&f);

	/* Done once: the next sync fetches nothing. */
	fake_reset_counts(e.fake);
	r = run(&e, NULL, 0);
	CHECK(r.summary.up_to_date);
	CHECK_INT(fake_blob_reads(e.fake), 0);
	CHECK_STR(r.phases, "prepare finalize ");

	/* A raise with a moved head: only files of the new snapshot are fetched. */
	p->max_blob_size = 30;
	CHECK_OK(ps_store_project_update(e.store, p));
	CHECK_OK(ps_store_snapshot_file(e.store, 1, 0, "huge", &f));
	CHECK_INT(ps_project_content_missing(e.store, p, r.summary.id, &f), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "not_fetched");
	CHECK(strstr(ps_error_message(), "the next sync fetches it") != NULL);
	ps_file_dispose(&f);
	v1[1].content = "0123456789abcdefghijK";
	fake_commit(e.fake, "c2", v1, 4);
	fake_reset_counts(e.fake);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_INT(r.summary.counts.modified, 1);
	CHECK_INT(fake_blob_reads(e.fake), 1); /* the new huge; the old one is gone */
	CHECK_OK(ps_store_snapshot_file(e.store, 1, 0, "huge", &f));
	CHECK_OK(ps_store_blob_get(e.store, f.sha, &data, &len));
	free(data);
	ps_file_dispose(&f);
	ps_project_free(p);
	env_dispose(&e);
}

/* Progress never goes back (a warning, a phase start or the end included), and a sync that
 * did not succeed shows no changes: it applied none. */
static void test_progress_monotone_and_counts_of_unfinished(void)
{
	struct env e;
	struct fake_file v1[] = { { "a", "1" }, { "b", "2" }, { "c", "3" }, { "d", "4" },
				  { "big", "0123456789abcdef" }, { "e", "1" } };
	struct ps_sync *stored = NULL;
	struct result r;

	env_init(&e, 10);
	setenv("PROJSYNC_TEST_BATCH", "1", 1);
	fake_commit(e.fake, "c1", v1, 6);

	/* Cancelled after the scan found 6 additions: nothing applied, nothing counted. */
	cancel_at_phase = PS_PHASE_FETCH;
	r = run(&e, NULL, 0);
	cancel_at_phase = PS_PHASE_NONE;
	CHECK_INT(r.last, PS_EVENT_CANCELLED);
	CHECK(r.failed_phase >= PS_PHASE_FETCH);
	CHECK_INT(r.summary.counts.added, 0);
	CHECK_INT(r.summary.counts.files, 0);
	CHECK_OK(ps_store_sync_get(e.store, r.summary.id, &stored));
	CHECK_INT(stored->counts.added, 0);
	CHECK_INT(stored->counts.files, 0);
	ps_sync_free(stored);
	stored = NULL;

	/* A failure in fetch: the same. */
	fake_fail_fetch_after(e.fake, 2);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_FAILED);
	CHECK_OK(ps_store_sync_get(e.store, r.summary.id, &stored));
	CHECK_INT(stored->counts.added, 0);
	ps_sync_free(stored);

	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(r.warned);        /* the large file's warning came mid-way */
	CHECK(r.monotone);
	CHECK_INT(r.summary.counts.added, 6);
	CHECK_INT(r.files_total, 6);
	CHECK_INT(r.files_done, 6);
	unsetenv("PROJSYNC_TEST_BATCH");
	env_dispose(&e);
}

static void test_empty_repository(void)
{
	struct env e;
	struct result r;

	env_init(&e, 0);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_INT(r.summary.counts.files, 0);
	CHECK_INT(files_now(&e), 0);
	r = run(&e, NULL, 0);
	CHECK(r.summary.up_to_date);
	env_dispose(&e);
}

/* A source's own fast paths (compare, full listing) replace the tree walk when offered, and
 * the walk takes over when they decline. The default branch is asked once. */
static void test_source_fast_paths(void)
{
	for (int unsupported = 0; unsupported <= 1; unsupported++) {
		struct env e;
		struct fake_file v1[] = { { "a", "1" }, { "d/b", "2" }, { "d/c", "3" } };
		struct result r;

		env_init(&e, 0);
		fake_enable_fast_paths(e.fake, true, unsupported);
		fake_commit(e.fake, "c1", v1, 3);
		r = run(&e, NULL, 0);
		CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
		CHECK_INT(r.summary.counts.added, 3);
		CHECK_INT(fake_list_calls(e.fake), 1);
		CHECK_INT(fake_tree_reads(e.fake), unsupported ? 2 : 0);
		CHECK_INT(fake_branch_calls(e.fake), 1);

		v1[1].content = "2b";
		v1[2].path = "d/moved";
		fake_commit(e.fake, "c2", v1, 3);
		fake_reset_counts(e.fake);
		r = run(&e, NULL, 0);
		CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
		CHECK_INT(r.summary.counts.modified, 1);
		CHECK_INT(r.summary.counts.renamed, 1);
		CHECK_INT(r.summary.counts.files, 3);
		CHECK_INT(fake_changes_calls(e.fake), 1);
		CHECK_INT(fake_tree_reads(e.fake), unsupported ? 4 : 0);
		/* The default branch is asked at every sync (it may have changed upstream). */
		CHECK_INT(fake_branch_calls(e.fake), 2);
		CHECK_INT(files_now(&e), 3);
		env_dispose(&e);
	}
}

/* The branch of a sync's summary, and whether the snapshot holds `path`. */
static bool has_file(struct env *e, const char *path)
{
	struct ps_file f = { 0 };
	bool ok = ps_store_snapshot_file(e->store, 1, 0, path, &f) == 0;

	ps_error_clear();
	ps_file_dispose(&f);
	return ok;
}

static char *last_branch(struct env *e)
{
	struct ps_sync *s = NULL;
	char *b = NULL;

	if (ps_store_sync_last_succeeded(e->store, 1, 0, &s) == 0)
		b = ps_strdup(s->branch);
	ps_sync_free(s);
	return b;
}

/* A project following the default branch asks for it at every sync: a one-off --branch does
 * not stick, and a default branch changed upstream is followed. */
static void test_default_branch_asked_every_sync(void)
{
	struct env e;
	struct fake_file vf[] = { { "feature.txt", "f" } }, vm[] = { { "main.txt", "m" } };
	struct result r;
	char *b;

	env_init(&e, 0);
	fake_commit(e.fake, "f1", vf, 1);
	fake_branch(e.fake, "feature");
	fake_commit(e.fake, "m1", vm, 1);

	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(has_file(&e, "main.txt"));
	r = run(&e, "feature", 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(has_file(&e, "feature.txt"));
	CHECK_STR((b = last_branch(&e)), "feature");
	free(b);

	/* Plain sync again: back to the default branch, not the one-off. */
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_STR((b = last_branch(&e)), "main");
	free(b);
	CHECK(has_file(&e, "main.txt"));
	CHECK(!has_file(&e, "feature.txt"));

	/* The default changes upstream: followed at the next sync. */
	fake_set_default(e.fake, "feature");
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK_STR((b = last_branch(&e)), "feature");
	free(b);
	CHECK(has_file(&e, "feature.txt"));
	env_dispose(&e);
}

static char *last_error(struct env *e)
{
	struct ps_project *p = NULL;
	char *msg = NULL;

	if (ps_store_project_get(e->store, "p", &p) == 0)
		msg = ps_strdup(p->last_error_message);
	ps_project_free(p);
	return msg;
}

static bool has_problem(const struct ps_verify_report *r, const char *path, const char *code)
{
	for (size_t i = 0; i < r->nproblems; i++)
		if (strcmp(r->problems[i].path, path) == 0 &&
		    (!code || strcmp(r->problems[i].code, code) == 0))
			return true;
	return false;
}

static struct ps_verify_report verify(struct env *e, bool blobs)
{
	struct ps_verify_report rep = { 0 };
	struct ps_project *p = NULL;

	CHECK_OK(ps_store_project_get(e->store, "p", &p));
	if (p)
		CHECK_OK(ps_verify(e->store, p, 0, blobs, &rep));
	ps_project_free(p);
	return rep;
}

/* A source whose listing does not hash to its commit's tree (a wrong mode, a wrong blob id)
 * fails the sync in import with tree_mismatch naming the directory, and nothing is visible:
 * not on a first sync, not on a re-sync (the previous snapshot stays the answer). */
static void test_lying_source_fails_tree_mismatch(void)
{
	struct fake_file v1[] = { { "README", "r" }, { "dir/sub/f", "1" }, { "dir/sub/g", "2" },
				  { "dir/h", "3" } };
	struct fake_file v2[] = { { "README", "r" }, { "dir/sub/f", "1" }, { "dir/sub/g", "22" },
				  { "dir/h", "3" }, { "other/x", "4" } };
	char wrong[PS_SHA_HEX];
	struct result r;
	char *msg;
	struct env e;

	for (int fast = 0; fast < 2; fast++) {
		/* A first sync: a wrong mode. */
		env_init(&e, 0);
		fake_enable_fast_paths(e.fake, fast, false);
		fake_commit(e.fake, "c1", v1, 4);
		fake_lie(e.fake, "dir/sub/f", PS_MODE_EXEC, NULL);
		r = run(&e, NULL, 0);
		CHECK_INT(r.last, PS_EVENT_FAILED);
		CHECK_STR(r.error_code, "tree_mismatch");
		CHECK_INT(r.failed_phase, PS_PHASE_IMPORT);
		CHECK_INT(files_now(&e), -1);
		msg = last_error(&e);
		CHECK(msg && strstr(msg, "first differing directory: dir/sub/"));
		if (msg && !strstr(msg, "first differing directory: dir/sub/"))
			fprintf(stderr, "message: %s\n", msg);
		free(msg);
		{
			char *rows = ps_test_sql(e.url, "SELECT count(*) FROM dir_trees");
			CHECK_STR(rows, "0|\n");
			free(rows);
		}
		env_dispose(&e);

		/* A re-sync: a wrong blob id for a changed file. */
		env_init(&e, 0);
		fake_enable_fast_paths(e.fake, fast, false);
		fake_commit(e.fake, "c1", v1, 4);
		r = run(&e, NULL, 0);
		CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
		fake_commit(e.fake, "c2", v2, 5);
		/* The id of content the source does have (another file's): only the tree check
		 * can tell. */
		ps_git_blob_sha("1", 1, wrong);
		fake_lie(e.fake, "dir/sub/g", 0, wrong);
		r = run(&e, NULL, 0);
		CHECK_INT(r.last, PS_EVENT_FAILED);
		CHECK_STR(r.error_code, "tree_mismatch");
		msg = last_error(&e);
		CHECK(msg && strstr(msg, "first differing directory: dir/sub/"));
		if (msg && !strstr(msg, "first differing directory: dir/sub/"))
			fprintf(stderr, "message: %s\n", msg);
		free(msg);
		CHECK_INT(files_now(&e), 4);
		CHECK(!has_file(&e, "other/x"));
		{
			struct ps_verify_report rep = verify(&e, true);
			CHECK_INT(rep.nproblems, 0);
			CHECK_INT(rep.files, 4);
			ps_verify_report_dispose(&rep);
		}
		env_dispose(&e);
	}
}


static void sql_ok(struct env *e, const char *sql)
{
	char *out = ps_test_sql(e->url, sql);

	CHECK(out && strncmp(out, "error", 5) != 0);
	if (out && strncmp(out, "error", 5) == 0)
		fprintf(stderr, "%s: %s\n", sql, out);
	free(out);
}

/* An object id written behind the store's back, in its stored form (20 bytes, schema 16). */
#define SET_SHA(table, col) \
	(ps_test_pg() ? "UPDATE " table " SET " col " = '\\x%s'::bytea %s" \
		      : "UPDATE " table " SET " col " = X'%s' %s")

/* Whether the store names directories by id (schema 26: dirs, file_versions.dir_id and .name,
 * dir_trees.dir_id) rather than by path. */
static bool dir_ids(struct env *e)
{
	char *out = ps_test_sql(e->url, ps_test_pg()
		? "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
		  "current_schema() AND table_name = 'file_versions' AND column_name = 'dir_id'"
		: "SELECT count(*) FROM pragma_table_info('file_versions') WHERE name = 'dir_id'");
	bool yes = out && out[0] == '1';

	free(out);
	return yes;
}

/* "WHERE ..." selecting the rows of `table` (file_versions: the file `name` in directory `dir`,
 * '' for the root; dir_trees: directory `dir`, name NULL) in either layout. */
static char *where_path(struct env *e, const char *dir, const char *name)
{
	if (dir_ids(e))
		return name ? ps_asprintf("WHERE dir_id IN (SELECT id FROM dirs WHERE path = '%s') "
					  "AND name = '%s'", dir, name)
			    : ps_asprintf("WHERE dir_id IN (SELECT id FROM dirs WHERE path = '%s')",
					  dir);
	return name ? ps_asprintf("WHERE path = '%s%s%s'", dir, dir[0] ? "/" : "", name)
		    : ps_asprintf("WHERE path = '%s'", dir);
}

/* ps_verify on snapshots altered in the store behind projsync's back: a blob's content, a file
 * version's blob id, the stored directory trees; and the lazy directory trees of a snapshot
 * from before they were stored. */
static void test_verify_finds_altered_store(void)
{
	struct fake_file v1[] = { { "README", "r" }, { "dir/sub/f", "1" }, { "dir/sub/g", "2" },
				  { "dir/h", "@exec:3" }, { "lnk", "@link:dir/h" },
				  { "mod", "@sub:x" } };
	struct fake_file v2[] = { { "README", "r2" }, { "dir/sub/f", "1" }, { "dir/sub/g", "2" },
				  { "dir/h", "@exec:3" }, { "lnk", "@link:dir/h" },
				  { "mod", "@sub:x" }, { "new/n", "n" } };
	struct ps_verify_report rep;
	char sha[PS_SHA_HEX], *sql, *where;
	struct result r;
	struct env e;

	env_init(&e, 0);
	fake_commit(e.fake, "c1", v1, 6);
	CHECK_INT(run(&e, NULL, 0).last, PS_EVENT_SUCCEEDED);
	rep = verify(&e, true);
	CHECK_INT(rep.nproblems, 0);
	CHECK_INT(rep.files, 6);
	CHECK_INT(rep.directories, 3);
	CHECK(rep.directories_stored);
	CHECK_INT(rep.blobs_checked, 5);
	ps_verify_report_dispose(&rep);

	/* A blob altered in the store: the files that use it. */
	ps_git_blob_sha("2", 1, sha);
	sql = ps_asprintf(ps_test_pg() ? "UPDATE blobs SET content = '\\x3f'::bytea WHERE sha = ps_unhex('%s')"
				       : "UPDATE blobs SET content = X'3f' WHERE sha = ps_unhex('%s')", sha);
	sql_ok(&e, sql);
	free(sql);
	rep = verify(&e, false);
	CHECK_INT(rep.nproblems, 0); /* without --blobs the content is not read */
	ps_verify_report_dispose(&rep);
	rep = verify(&e, true);
	CHECK(rep.nproblems >= 1);
	CHECK(has_problem(&rep, "dir/sub/g", NULL));
	CHECK(!has_problem(&rep, "dir/sub/f", NULL));
	ps_verify_report_dispose(&rep);

	/* A file version's blob id altered: the tree no longer adds up, and the stored
	 * directory ids name the directory holding the file (not its parents, whose own
	 * entries are right). */
	ps_git_blob_sha("1", 1, sha);
	where = where_path(&e, "dir", "h");
	sql = ps_asprintf(SET_SHA("file_versions", "sha"), sha, where);
	sql_ok(&e, sql);
	free(sql);
	rep = verify(&e, false);
	CHECK(has_problem(&rep, "dir/", "tree_mismatch"));
	CHECK_INT(rep.nproblems, 1);
	ps_verify_report_dispose(&rep);
	ps_git_blob_sha("3", 1, sha);
	sql = ps_asprintf(SET_SHA("file_versions", "sha"), sha, where);
	sql_ok(&e, sql);
	free(sql);
	free(where);
	/* ... and one of the root's own files: the root, not the directories below it. */
	ps_git_blob_sha("1", 1, sha);
	where = where_path(&e, "", "README");
	sql = ps_asprintf(SET_SHA("file_versions", "sha"), sha, where);
	sql_ok(&e, sql);
	free(sql);
	rep = verify(&e, false);
	CHECK(has_problem(&rep, "/", "tree_mismatch"));
	CHECK_INT(rep.nproblems, 1);
	ps_verify_report_dispose(&rep);
	ps_git_blob_sha("r", 1, sha);
	sql = ps_asprintf(SET_SHA("file_versions", "sha"), sha, where);
	sql_ok(&e, sql);
	free(sql);
	free(where);

	/* A snapshot from before directory trees were stored: sound, and the next sync hashes
	 * every directory from the rows and stores them. */
	sql_ok(&e, "DELETE FROM dir_trees");
	rep = verify(&e, false);
	CHECK_INT(rep.nproblems, 0);
	CHECK(!rep.directories_stored);
	ps_verify_report_dispose(&rep);
	fake_commit(e.fake, "c2", v2, 7);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	rep = verify(&e, false);
	CHECK_INT(rep.nproblems, 0);
	CHECK(rep.directories_stored);
	CHECK_INT(rep.directories, 4);
	ps_verify_report_dispose(&rep);

	/* Stored directory ids that do not add up (the root's replaced by another's, then a
	 * subdirectory's): verify names each; the next sync, whose root is rebuilt with the
	 * subdirectory's stored id (not on its changed paths), hashes every directory again from the rows, warns, and
	 * succeeds. */
	{
		char *w_new = where_path(&e, "new", NULL), *w_root = where_path(&e, "", NULL);

		sql = ps_asprintf("UPDATE dir_trees SET tree_sha = (SELECT tree_sha FROM dir_trees "
				  "%s ORDER BY id DESC LIMIT 1) %s AND superseded_by IS NULL",
				  w_new, w_root);
		sql_ok(&e, sql);
		free(sql);
		free(w_new);
		free(w_root);
	}
	rep = verify(&e, false);
	CHECK(has_problem(&rep, "/", "dir_tree_mismatch"));
	CHECK_INT(rep.nproblems, 1);
	ps_verify_report_dispose(&rep);
	where = where_path(&e, "dir", NULL);
	sql = ps_asprintf(SET_SHA("dir_trees", "tree_sha"),
			  "0000000000000000000000000000000000000000", where);
	sql_ok(&e, sql);
	free(sql);
	free(where);
	rep = verify(&e, false);
	CHECK(has_problem(&rep, "dir/", "dir_tree_mismatch"));
	ps_verify_report_dispose(&rep);
	fake_commit(e.fake, "c3", v1, 6);
	r = run(&e, NULL, 0);
	CHECK_INT(r.last, PS_EVENT_SUCCEEDED);
	CHECK(r.warned);
	rep = verify(&e, true);
	CHECK_INT(rep.nproblems, 1); /* the blob still altered above */
	CHECK(has_problem(&rep, "dir/sub/g", NULL));
	ps_verify_report_dispose(&rep);

	/* --at an older snapshot, a sync that is not one. */
	{
		struct ps_project *p = NULL;
		CHECK_OK(ps_store_project_get(e.store, "p", &p));
		CHECK_OK(ps_verify(e.store, p, 1, false, &rep));
		CHECK_INT(rep.sync_id, 1);
		CHECK_INT(rep.files, 6);
		ps_verify_report_dispose(&rep);
		CHECK(ps_verify(e.store, p, 999, false, &rep) == PS_ENOTFOUND);
		ps_project_free(p);
	}
	env_dispose(&e);
}

PS_TESTS(PS_TEST(test_default_branch_asked_every_sync),
	 PS_TEST(test_lying_source_fails_tree_mismatch), PS_TEST(test_verify_finds_altered_store),
	 PS_TEST(test_first_then_incremental_then_up_to_date), PS_TEST(test_source_fast_paths),
	 PS_TEST(test_incremental_loads_each_base_dir_once),
	 PS_TEST(test_failures_leave_previous_snapshot), PS_TEST(test_cancel_and_conflict),
	 PS_TEST(test_fallback_when_base_tree_is_gone), PS_TEST(test_size_limit_and_odd_entries),
	 PS_TEST(test_empty_repository), PS_TEST(test_raised_limit_fetches_skipped),
	 PS_TEST(test_progress_monotone_and_counts_of_unfinished),
	 PS_TEST(test_scheduled_check_of_unmoved_branch_writes_its_end_only))
