/*
 * The sync pipeline (see sync.h): a state machine advanced one bounded step at a time.
 *
 *   prepare   open the source, resolve the branch; an unmoved head goes straight to finalize
 *   scan      differential tree walk against the last succeeded sync's tree (core/scan.c);
 *             if the source lost that tree, compare the full new tree with the stored snapshot
 *   fetch     blobs the store lacks, in batches, each verified by ps_store_blob_put
 *   import    check the new snapshot against the commit: its git tree id, hashed from its own
 *             rows (model/tree.c; only the directories on changed paths, from the base's stored
 *             directories), must be the head's tree, else the sync fails with tree_mismatch;
 *             stage the new file versions and directory trees in batches (invisible until
 *             finalize), then the memory entries of changed files that match the project's
 *             memory globs; after a change of the globs, also re-evaluate memory against the
 *             whole new snapshot
 *   finalize  one transaction: supersede, mark succeeded, move the project's marker
 *
 * A memory rescan (the project's memory globs changed since the last sync that rescanned) runs
 * even for an unmoved head: prepare then goes to import instead of finalize.
 *
 * Nothing a step writes is visible before finalize commits, so a run that dies anywhere leaves
 * the previous snapshot as the answer; ps_store_reap later marks it interrupted.
 *
 * Every event is stored before it is handed out. Events a step produces wait in a small queue
 * and are returned one per ps_sync_next call.
 *
 * Test hooks (environment, read at begin): PROJSYNC_TEST_KILL_AT=<phase>:<n> SIGKILLs the
 * process at the start of the n-th step of that phase (finalize:1 inside the finalize
 * transaction, before it commits); PROJSYNC_TEST_STEP_DELAY_MS=<ms> sleeps before each step;
 * PROJSYNC_TEST_BATCH=<n> caps every step's batch at n trees/blobs/rows, for fine-grained
 * kill points on small repositories.
 */
#include "core/sync.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/diff.h"
#include "core/grep.h"
#include "core/memory.h"
#include "core/project.h"
#include "core/scan.h"
#include "core/tree_source.h"
#include "util/error.h"

#define DEFAULT_LEASE_MS 60000
#define DEFAULT_PROGRESS_MS 200
#define SAVE_INTERVAL_MS 2000
#define SCAN_BATCH 64
#define FETCH_BATCH 256
#define IMPORT_BATCH 2000
#define MEMORY_BATCH 64                 /* memory entries staged per step ... */
#define MEMORY_BATCH_BYTES (16u << 20)  /* ... and their content bytes */

struct blob_size {
	char sha[PS_SHA_HEX];
	int64_t size;
};

enum state {
	ST_PREPARE,
	ST_SCAN_START,
	ST_SCAN,
	ST_FETCH_START,
	ST_FETCH,
	ST_INDEX,
	ST_IMPORT_START,
	ST_IMPORT,
	ST_FINALIZE,
	ST_FINISHED,
};

struct ps_sync_run {
	struct ps_sync_ctx *ctx;
	struct ps_store *store;
	struct ps_project *project;
	struct ps_sync *sync;
	struct ps_sync *base;          /* last succeeded sync, NULL for a first sync */
	struct ps_source *src;
	enum state state;
	char *want_branch;             /* NULL: the source's default */
	struct ps_head head;
	bool empty;                    /* the repository has no commits */
	struct ps_commit_list commits; /* the sync's range (record_commits), stored at finalize */

	struct ps_event *queue;        /* events produced, not yet handed out */
	size_t nqueue, qhead, capqueue;
	struct ps_event current;       /* the event last handed out (owned) */
	int64_t seq;
	int64_t t0;
	int64_t last_progress;
	int64_t last_save;
	double fraction;               /* of the last event: events never report less */
	/* The files counter of the events, from the fetch phase on: files_total is the files
	 * the sync changes plus those a blob rescan fetches, files_done those whose content is
	 * in hand (fetched, already stored, or needing none). Neither goes down; scan, import
	 * and finalize progress shows in `fraction`. */
	int64_t files_done, files_total;
	int64_t *fetch_files;          /* per SHA of `fetch`: how many files wait for it */
	const char **fetch_base;       /* per SHA of `fetch`: the previous version of its path, the
					* base of a delta (ps_store_blob_put_delta), or NULL */
	volatile sig_atomic_t cancel;
	volatile sig_atomic_t cancel_stopping; /* the cancel is the server's stop */
	int64_t stop_checked_ms;       /* when source_should_stop last asked the store */

	struct ps_scan *scan;
	bool scan_fallback;
	struct ps_change *changes;
	size_t nchanges;
	char **fetch;                  /* SHAs to fetch (borrowed from changes) */
	size_t nfetch, fetch_pos;
	size_t import_pos;
	/* The snapshot's directories (model/tree.h), hashed and checked at the start of import:
	 * every one for a first sync or a base without stored ones, else those on changed paths. */
	bool tree_checked;
	struct ps_tree_dir *dirs;
	size_t ndirs, dirs_pos;
	struct blob_size *sizes;       /* sizes learnt from fetched content */
	size_t nsizes, capsizes;
	size_t memory_pos;             /* next change to consider for memory entries */
	size_t memory_not_text;        /* matching files not imported: they hold a NUL byte */
	char *first_not_text;

	/* Code index backlog (step_index): stored blobs of this sync's snapshot the index lacks. */
	struct ps_strv index_backlog;
	size_t index_pos;
	bool index_loaded;
	bool index_owns_phase;         /* the fetch phase was entered for indexing alone */
	enum state index_next;

	/* The memory rescan (step_rescan_memory); rescan_gen 0: none this sync. */
	int64_t rescan_gen;            /* the glob change this sync rescans for */
	bool rescan_memory;            /* for a glob change, or for notes a blob rescan fetches */
	bool rescan_loaded;
	const char **touched;          /* paths the changes touch, sorted (borrowed from changes) */
	size_t ntouched;
	struct ps_file *rescan_files;  /* untouched base files matching the globs, sorted by path */
	size_t nrescan_files, caprescan_files, rescan_file_pos;
	struct ps_memory_entry *rescan_active; /* active entries with a path, sorted by path */
	size_t nrescan_active, rescan_active_pos;

	/* The blob rescan after a raise of the size limit; blob_rescan_gen 0: none this sync. */
	int64_t blob_rescan_gen;
	struct ps_file *missing;       /* files of the new snapshot to fetch now (owned) */
	size_t nmissing, capmissing;
	struct file_list *tree_files;  /* hash_all_dirs's list while it reads the base */

	enum ps_phase kill_phase;
	long kill_step;
	long step_in_phase;
	enum ps_phase step_phase;
	long delay_ms;
	size_t batch_cap;
	char owner_process[64];
	struct ps_owner owner;
	/* A scheduled sync's prepare phase, not stored yet (step_prepare): stored before any
	 * other event, or never, for a check answered from the ref alone (step_finalize). */
	bool phase_pending;
};

static const double phase_start[] = { 0, 0.0, 0.05, 0.25, 0.80, 0.95 };
static const double phase_end[] = { 0, 0.05, 0.25, 0.80, 0.95, 1.0 };

static int64_t lease_ms(const struct ps_sync_run *run)
{
	return run->ctx->lease_ms > 0 ? run->ctx->lease_ms : DEFAULT_LEASE_MS;
}

static size_t batch(const struct ps_sync_run *run, size_t n)
{
	return run->batch_cap && run->batch_cap < n ? run->batch_cap : n;
}

static struct ps_sync *sync_clone(const struct ps_sync *s)
{
	struct ps_sync *c = ps_malloc(sizeof(*c));

	*c = *s;
	c->project = ps_strdup(s->project);
	c->branch = ps_strdup(s->branch);
	c->commit = ps_strdup(s->commit);
	c->tree = ps_strdup(s->tree);
	c->trigger = ps_strdup(s->trigger);
	c->error_code = ps_strdup(s->error_code);
	c->error_message = ps_strdup(s->error_message);
	c->head_commit = ps_commit_clone(s->head_commit);
	return c;
}

static double fraction_in(enum ps_phase p, double within)
{
	if (within < 0)
		within = 0;
	if (within > 1)
		within = 1;
	return phase_start[p] + (phase_end[p] - phase_start[p]) * within;
}

/*
 * Every event carries the run's counters, which only ever grow: `fraction` (an event never
 * reports less than the one before it, a warning included) and the files counter (see
 * files_done in struct ps_sync_run), so a terminal or a page never shows progress going back.
 */
static void fill_event(struct ps_sync_run *run, struct ps_event *ev, enum ps_event_kind kind,
		       double fraction, const char *message)
{
	memset(ev, 0, sizeof(*ev));
	ev->sync_id = run->sync->id;
	ev->seq = ++run->seq;
	ev->kind = kind;
	ev->phase = run->sync->phase;
	if (fraction < run->fraction)
		fraction = run->fraction;
	run->fraction = fraction;
	ev->fraction = fraction;
	ev->files_done = run->files_done;
	ev->files_total = run->files_total;
	ev->bytes = run->sync->bytes;
	ev->requests = run->src ? run->src->requests : run->sync->requests;
	ev->elapsed_ms = ps_mono_ms() - run->t0;
	ev->message = message ? ps_strdup(message) : NULL;
	ev->attempt = run->sync->attempt;
}

static void enqueue(struct ps_sync_run *run, struct ps_event *ev)
{
	if (run->nqueue == run->capqueue) {
		run->capqueue = run->capqueue ? run->capqueue * 2 : 8;
		run->queue = ps_realloc(run->queue, run->capqueue * sizeof(*run->queue));
	}
	run->queue[run->nqueue++] = *ev;
}

static int flush_phase(struct ps_sync_run *run);

/* Stores and queues a non-final event. */
static int emit(struct ps_sync_run *run, enum ps_event_kind kind, double fraction,
		const char *message)
{
	struct ps_event ev;
	int rc;

	if ((rc = flush_phase(run)) < 0)
		return rc;
	fill_event(run, &ev, kind, fraction, message);
	if ((rc = ps_store_event_append(run->store, &ev)) < 0) {
		run->seq--;
		ps_event_dispose(&ev);
		return rc;
	}
	if (kind == PS_EVENT_PROGRESS)
		run->last_progress = ps_mono_ms();
	enqueue(run, &ev);
	return 0;
}

/* A progress event, unless one went out less than the interval ago. */
static int progress(struct ps_sync_run *run, double within)
{
	int64_t gap = run->ctx->progress_interval_ms > 0 ? run->ctx->progress_interval_ms
							   : DEFAULT_PROGRESS_MS;
	if (ps_mono_ms() - run->last_progress < gap)
		return 0;
	return emit(run, PS_EVENT_PROGRESS, fraction_in(run->sync->phase, within), NULL);
}

static void sync_counters(struct ps_sync_run *run)
{
	if (run->src)
		run->sync->requests = run->src->requests;
}

/* Saves phase and counters, renewing the lease; at most every SAVE_INTERVAL_MS unless forced. */
static int save(struct ps_sync_run *run, bool force)
{
	int64_t now = ps_mono_ms();

	if (!force && now - run->last_save < SAVE_INTERVAL_MS)
		return 0;
	run->last_save = now;
	sync_counters(run);
	return ps_store_sync_save_progress(run->store, run->sync, lease_ms(run));
}

/* Saves the new phase (renewing the lease) and stores its `phase` event into *ev, inside the
 * caller's transaction; not queued yet. On failure the event is disposed and its seq given
 * back. */
static int write_phase(struct ps_sync_run *run, enum ps_phase phase, struct ps_event *ev)
{
	int rc;

	run->sync->phase = phase;
	run->last_save = ps_mono_ms();
	sync_counters(run);
	fill_event(run, ev, PS_EVENT_PHASE, phase_start[phase], NULL);
	if ((rc = ps_store_sync_save_progress(run->store, run->sync, lease_ms(run))) < 0 ||
	    (rc = ps_store_event_append(run->store, ev)) < 0) {
		run->seq--;
		ps_event_dispose(ev);
	}
	return rc;
}

/* The phase and its event in one transaction: one commit, not two (a scheduled check that
 * finds nothing new is mostly these commits). */
static int enter_phase(struct ps_sync_run *run, enum ps_phase phase)
{
	struct ps_event ev;
	int rc;

	if ((rc = ps_store_begin(run->store)) < 0)
		return rc;
	if ((rc = write_phase(run, phase, &ev)) < 0) {
		ps_store_rollback(run->store);
		return rc;
	}
	if ((rc = ps_store_commit(run->store)) < 0) {
		run->seq--;
		ps_event_dispose(&ev);
		return rc;
	}
	enqueue(run, &ev);
	return 0;
}

/* Stores the phase a scheduled sync entered without a transaction of its own (step_prepare),
 * once the sync turns out to be more than a check answered from the ref alone. */
static int flush_phase(struct ps_sync_run *run)
{
	if (!run->phase_pending)
		return 0;
	run->phase_pending = false;
	return enter_phase(run, run->sync->phase);
}

/* Ends the run as failed or cancelled: stores the final state and event in one transaction. */
static void finish_unsuccessful(struct ps_sync_run *run, enum ps_sync_status status,
				const char *code, const char *message, bool record)
{
	struct ps_event ev;

	sync_counters(run);
	run->sync->status = status;
	/* Nothing was applied: no counts (ps_store_sync_fail stores the same). */
	memset(&run->sync->counts, 0, sizeof(run->sync->counts));
	run->sync->skipped_large = 0;
	free(run->sync->error_code);
	free(run->sync->error_message);
	run->sync->error_code = ps_strdup(code);
	run->sync->error_message = ps_strdup(message);
	run->sync->finished_at = ps_now_ms();
	fill_event(run, &ev, status == PS_SYNC_CANCELLED ? PS_EVENT_CANCELLED : PS_EVENT_FAILED,
		   fraction_in(run->sync->phase, 0), message);
	ev.summary = sync_clone(run->sync);
	if (record &&
	    ps_store_sync_fail(run->store, run->sync, status, code, message, &ev) < 0) {
		/* The store could not record the end (another process already did, or the store
		 * is failing): the caller still learns how the run ended. */
		free(ev.message);
		ev.message = ps_asprintf("%s (not recorded: %s)", message, ps_error_message());
	}
	enqueue(run, &ev);
	run->state = ST_FINISHED;
}

static int drain_warnings(struct ps_sync_run *run);

static void fail_from_error(struct ps_sync_run *run, int rc)
{
	char *msg = ps_strdup(ps_error_message()[0] ? ps_error_message() : "unknown error");
	char *slug = ps_strdup(ps_error_slug());

	/* What the source warned about on the way to the failure (a rate limit too far away to
	 * wait for) comes before the end event. */
	drain_warnings(run);

	/* A source that answered before and is not there now is gone (deleted, moved, made
	 * private): say so in those words, not as if the project had been set up wrong. */
	if (rc != PS_ECANCELLED && run->base &&
	    (!strcmp(slug, "repository_not_found") ||
	     (!strcmp(slug, "bad_source") && !strncmp(msg, "no such directory", 17)))) {
		char *plain = ps_asprintf("the source is gone: %s (it was synced before; was it "
					  "deleted, moved or made private?)", msg);
		free(msg);
		free(slug);
		msg = plain;
		slug = ps_strdup("source_gone");
	}
	/* "cancelled by request" would send the operator looking for who cancelled it (an apt
	 * upgrade restarting the service cancels every running sync). */
	if (rc == PS_ECANCELLED && run->cancel_stopping) {
		free(msg);
		msg = ps_strdup("cancelled: the server stopped (SIGTERM, SIGINT or SIGHUP) before "
				"the sync finished; nothing of it was applied");
	}
	if (rc == PS_ECANCELLED)
		finish_unsuccessful(run, PS_SYNC_CANCELLED, "cancelled", msg, true);
	else
		/* Taken over (PostgreSQL fencing): the sync is another node's now; this run
		 * ends here, in the caller's hands only, and writes nothing more. */
		finish_unsuccessful(run, PS_SYNC_FAILED, slug, msg, strcmp(slug, "taken_over") != 0);
	free(msg);
	free(slug);
}

static void read_test_hooks(struct ps_sync_run *run)
{
	const char *kill_at = getenv("PROJSYNC_TEST_KILL_AT");
	const char *delay = getenv("PROJSYNC_TEST_STEP_DELAY_MS");
	const char *cap = getenv("PROJSYNC_TEST_BATCH");

	if (kill_at) {
		char name[32] = "";
		long n = 1;
		if (sscanf(kill_at, "%31[a-z]:%ld", name, &n) >= 1 &&
		    ps_phase_parse(name, &run->kill_phase) == 0)
			run->kill_step = n;
	}
	if (delay)
		run->delay_ms = strtol(delay, NULL, 10);
	if (cap)
		run->batch_cap = (size_t)strtoul(cap, NULL, 10);
}

static void maybe_die(struct ps_sync_run *run, enum ps_phase phase)
{
	if (phase != run->step_phase) {
		run->step_phase = phase;
		run->step_in_phase = 0;
	}
	run->step_in_phase++;
	if (run->kill_step > 0 && phase == run->kill_phase && run->step_in_phase == run->kill_step)
		raise(SIGKILL);
}

static enum ps_phase state_phase(enum state st)
{
	switch (st) {
	case ST_PREPARE: return PS_PHASE_PREPARE;
	case ST_SCAN_START: case ST_SCAN: return PS_PHASE_SCAN;
	case ST_FETCH_START: case ST_FETCH: case ST_INDEX: return PS_PHASE_FETCH;
	case ST_IMPORT_START: case ST_IMPORT: return PS_PHASE_IMPORT;
	default: return PS_PHASE_FINALIZE;
	}
}

/* Turns what the source reported along the way (rate-limit waits, ...) into warning events. */
static int drain_warnings(struct ps_sync_run *run)
{
	int rc = 0;

	if (!run->src)
		return 0;
	for (size_t i = 0; i < run->src->warnings.n && rc == 0; i++)
		rc = emit(run, PS_EVENT_WARNING, fraction_in(run->sync->phase, 0),
			  run->src->warnings.v[i]);
	ps_strv_dispose(&run->src->warnings);
	return rc;
}

static int default_branch(struct ps_sync_run *run)
{
	char *def = NULL;
	int rc = ps_source_branches(run->src, NULL, &def);

	if (rc < 0)
		return rc;
	run->want_branch = def; /* NULL for an empty repository */
	return 0;
}

/* ---- phases ---- */

/*
 * The source's stop hook (ps_source.stop), polled while it waits on the network: a long
 * fetch or a rate-limit wait ends at a cancel instead of at its own end. This run's flag at
 * once; a cancel requested through the store (the API, another process or node) at most one
 * store read a second. Runs on the run's thread, which owns the store handle.
 */
static bool source_should_stop(void *ud)
{
	struct ps_sync_run *run = ud;
	bool requested = false;
	int64_t now;

	if (run->cancel)
		return true;
	now = ps_mono_ms();
	if (now - run->stop_checked_ms < 1000)
		return false;
	run->stop_checked_ms = now;
	if (ps_store_sync_cancel_requested(run->store, run->sync->id, &requested) < 0) {
		ps_error_clear();
		return false;
	}
	return requested;
}

static int step_prepare(struct ps_sync_run *run)
{
	int (*open)(struct ps_source **, const char *, const struct ps_source_opts *) =
		run->ctx->open_source ? run->ctx->open_source : ps_source_open;
	struct ps_sync *base = NULL;
	int rc, rc2;

	/* A scheduled check nearly always finds the branch where the last sync left it, and is
	 * then answered in the finalize transaction alone: its prepare phase is stored only if
	 * it turns out to be more (flush_phase), saving a write transaction per check. A failure
	 * on the way records the phase with the failure. Other syncs show the phase at once: a
	 * person may be watching a slow remote. */
	if (run->sync->trigger && strcmp(run->sync->trigger, "schedule") == 0) {
		run->sync->phase = PS_PHASE_PREPARE;
		run->phase_pending = true;
	} else if ((rc = enter_phase(run, PS_PHASE_PREPARE)) < 0) {
		return rc;
	}
	rc = ps_store_sync_last_succeeded(run->store, run->project->id, 0, &base);
	if (rc < 0 && rc != PS_ENOTFOUND)
		return rc;
	run->base = base;
	if ((rc = open(&run->src, run->project->source, &run->ctx->source_opts)) < 0)
		return rc;
	run->src->stop = source_should_stop;
	run->src->stop_ud = run;
	run->stop_checked_ms = ps_mono_ms();
	/* Following the default branch: asked at every sync, since it may change upstream or
	 * the last sync may have been a one-off `--branch` (a GitHub source keeps the question
	 * cheap with a conditional request). */
	if (!run->want_branch && (rc = default_branch(run)) < 0)
		return rc;
	rc = ps_source_resolve(run->src, run->want_branch, base ? base->commit : NULL, &run->head);
	free(run->sync->branch);
	run->sync->branch = ps_strdup(run->want_branch ? run->want_branch : "");
	if ((rc2 = drain_warnings(run)) < 0)
		return rc2;
	if (rc == PS_EEMPTY) {
		run->empty = true;
		ps_error_clear();
	} else if (rc < 0) {
		return rc;
	}
	/* A source that answered "not modified" knows the commit but not its tree: the tree is
	 * the base's. */
	if (!run->empty && !run->head.tree[0] && base && base->commit && base->tree &&
	    strcmp(base->commit, run->head.commit) == 0)
		snprintf(run->head.tree, sizeof(run->head.tree), "%s", base->tree);
	if (!run->empty) {
		run->sync->commit = ps_strdup(run->head.commit);
		run->sync->tree = ps_strdup(run->head.tree);
	}
	run->sync->base_sync_id = base ? base->id : 0;
	run->sync->counts.files = base ? base->counts.files : 0;
	run->sync->commit_count = -1;
	if ((rc = ps_store_project_memory_rescan(run->store, run->project->id,
						 &run->rescan_gen)) < 0)
		return rc;
	if (run->rescan_gen) {
		/* Globs read after the generation, so at least as new as the change it names (a
		 * newer one keeps the flag set at finalize, and the next sync rescans again). */
		struct ps_project *fresh = NULL;
		struct ps_strv globs;

		if ((rc = ps_store_project_get_by_id(run->store, run->project->id, &fresh)) < 0)
			return rc;
		globs = run->project->memory_globs;
		run->project->memory_globs = fresh->memory_globs;
		fresh->memory_globs = globs;
		ps_project_free(fresh);
		if ((rc = ps_store_sync_memory_rescan(run->store, run->sync->id, run->rescan_gen)) < 0)
			return rc;
	}
	if ((rc = ps_store_project_blob_rescan(run->store, run->project->id,
					       &run->blob_rescan_gen)) < 0)
		return rc;
	if (run->blob_rescan_gen &&
	    (rc = ps_store_sync_blob_rescan(run->store, run->sync->id, run->blob_rescan_gen)) < 0)
		return rc;
	/* Notes kept as metadata only under the lower limit become entries once fetched. */
	run->rescan_memory = run->rescan_gen || (run->blob_rescan_gen && base);
	if (base && ((run->empty && !base->commit) ||
		     (!run->empty && base->commit && strcmp(base->commit, run->head.commit) == 0 &&
		      base->tree && strcmp(base->tree, run->head.tree) == 0))) {
		run->sync->up_to_date = true;
		/* The same head: no new commit, and the head commit as the base recorded it. */
		run->sync->head_commit = ps_commit_clone(base->head_commit);
		run->sync->commit_count = 0;
		/* Nothing changed in the repository, but the size limit or the memory globs did. */
		run->state = run->blob_rescan_gen && !run->empty ? ST_FETCH_START
			     : run->rescan_memory ? ST_IMPORT_START : ST_FINALIZE;
		if (run->project->code_index_pending && !run->project->no_code_index &&
		    run->state != ST_FETCH_START) {
			/* An unchanged head still owes the code index its backlog (a fetch
			 * reaches step_index on its own). */
			run->index_next = run->state;
			run->state = ST_INDEX;
		}
		return run->state == ST_FINALIZE ? 0 : flush_phase(run);
	}
	run->state = ST_SCAN_START;
	return flush_phase(run);
}

struct file_list {
	struct ps_file *v;
	size_t n, cap;
};

static int collect_file(void *ud, const struct ps_file *f)
{
	struct file_list *l = ud;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n] = *f;
	l->v[l->n].path = ps_strdup(f->path);
	l->n++;
	return 0;
}

static int cmp_file_path(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

/* After a fallback scan (every file of the new tree listed as added): compare the new tree with
 * the stored snapshot of the base sync instead. */
static int diff_against_snapshot(struct ps_sync_run *run)
{
	struct file_list old = { 0 }, now = { 0 };
	struct ps_change *changes = NULL;
	size_t n = 0;
	int rc;

	if (run->base &&
	    (rc = ps_store_snapshot_each(run->store, run->project->id, run->base->id, NULL,
					 collect_file, &old)) < 0)
		goto out;
	for (size_t i = 0; i < run->nchanges; i++) {
		struct ps_file f = { .path = run->changes[i].path, .mode = run->changes[i].mode,
				     .size = run->changes[i].size };
		const struct ps_change *c = &run->changes[i];
		memcpy(f.sha, c->sha, PS_SHA_HEX);
		collect_file(&now, &f);
	}
	if (now.n > 1)
		qsort(now.v, now.n, sizeof(*now.v), cmp_file_path);
	if ((rc = ps_diff_files(old.v, old.n, now.v, now.n, &changes, &n)) < 0)
		goto out;
	ps_changes_free(run->changes, run->nchanges);
	run->changes = changes;
	run->nchanges = n;
out:
	for (size_t i = 0; i < old.n; i++)
		free(old.v[i].path);
	for (size_t i = 0; i < now.n; i++)
		free(now.v[i].path);
	free(old.v);
	free(now.v);
	return rc;
}

static int scan_counted(struct ps_sync_run *run);

static int load_base_dir(void *ud, const char *path, struct ps_tree_dir *out);

/* The most head directories settle_modes reads to correct guessed modes: each is one small
 * request on GitHub; past it, listing the whole tree costs about as much. */
#define SETTLE_READS_MAX 32

/*
 * Changes whose source did not know every mode (GitHub's compare) take them from the stored
 * snapshot and are checked against the head's tree before anything is fetched; the head's
 * trees that differ are read to correct a wrong guess (core/tree_source.h ps_tree_settle). Changes
 * that still do not add up to the head's tree are dropped (PS_ENOTSUPP): the pipeline lists
 * the tree instead, so a wrong guess costs requests, never a wrong snapshot.
 */
static int settle_modes(struct ps_sync_run *run)
{
	bool guessed = false, exact = false;
	size_t reads = 0;
	int rc;

	for (size_t i = 0; i < run->nchanges && !guessed; i++)
		guessed = run->changes[i].status == PS_CHANGE_DELETED
				  ? !run->changes[i].previous_mode
				  : !run->changes[i].mode;
	if (!guessed)
		return 0;
	rc = ps_tree_settle(run->changes, run->nchanges, load_base_dir, run, run->src,
			    run->head.tree, SETTLE_READS_MAX, &reads, &exact);
	if (rc < 0)
		return rc;
	if (exact)
		return 0;
	ps_changes_free(run->changes, run->nchanges);
	run->changes = NULL;
	run->nchanges = 0;
	if ((rc = emit(run, PS_EVENT_WARNING, fraction_in(PS_PHASE_SCAN, 0),
		       "the source's list of changes does not add up to the commit's tree; "
		       "listing the tree instead")) < 0)
		return rc;
	return ps_error_set(PS_ENOTSUPP, NULL, "changes do not make the head's tree");
}


/* The source's own ways to learn the changes at once: a compare of two commits, or a whole
 * listing for a first sync. Sets *used when one of them answered. */
static int scan_fast_path(struct ps_sync_run *run, bool *used)
{
	const struct ps_source_ops *ops = run->src->ops;
	struct ps_file *files = NULL;
	size_t nfiles = 0;
	int rc = PS_ENOTSUPP;

	*used = false;
	if (run->empty)
		return 0;
	if (run->base && run->base->commit && ops->changes) {
		rc = ops->changes(run->src, run->base->commit, &run->head, &run->changes,
				  &run->nchanges);
		if (rc == 0)
			rc = settle_modes(run);
		if (rc == 0)
			ps_diff_pair_renames(&run->changes, &run->nchanges);
	}
	/* A first sync, or a source that declined to compare but can list the new tree at once
	 * (GitHub: the recursive tree it already read to resolve the head), which is then
	 * compared with the stored snapshot of the base. A source that would list expensively on
	 * a re-sync declines again, and the walk runs. */
	if (rc == PS_ENOTSUPP && ops->list_tree) {
		bool resync = run->base && run->base->tree;

		ps_error_clear();
		rc = ops->list_tree(run->src, run->head.tree, &files, &nfiles);
		if (rc == 0) {
			/* Everything is new; against an empty base this also handles a base that was
			 * an empty repository. */
			rc = ps_diff_files(NULL, 0, files, nfiles, &run->changes, &run->nchanges);
		}
		if (rc == 0 && resync)
			rc = diff_against_snapshot(run);
		for (size_t i = 0; i < nfiles; i++)
			free(files[i].path);
		free(files);
	}
	if (rc == PS_ENOTSUPP) {
		ps_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	*used = true;
	return 0;
}

static int step_scan_start(struct ps_sync_run *run)
{
	const char *base_tree = run->base && run->base->tree ? run->base->tree : NULL;
	bool fast = false;
	int rc;

	if ((rc = enter_phase(run, PS_PHASE_SCAN)) < 0)
		return rc;
	rc = scan_fast_path(run, &fast);
	if (rc == 0)
		rc = drain_warnings(run);
	if (rc < 0)
		return rc;
	if (fast)
		return scan_counted(run);
	run->state = ST_SCAN;
	return ps_scan_new(&run->scan, run->src, base_tree, run->empty ? NULL : run->head.tree);
}

/*
 * The commits the sync brings (`projsync log`), asked of the source once the head is known to
 * have moved: git walks its repository, GitHub reuses what it already fetched or pays one
 * request. A source that cannot tell (or fails to) costs the sync nothing but a warning: the
 * snapshot does not depend on it.
 */
static int record_commits(struct ps_sync_run *run)
{
	const char *base = run->base ? run->base->commit : NULL;
	int rc;

	if (run->empty || !run->src->ops->commits)
		return 0;
	rc = run->src->ops->commits(run->src, base, run->head.commit, PS_COMMITS_MAX,
				    &run->commits);
	if (rc == PS_ECANCELLED)
		return rc;
	if (rc == 0 && (rc = drain_warnings(run)) < 0)
		return rc;
	if (rc < 0) {
		char *msg = ps_asprintf("cannot list the commits of this sync: %s",
					ps_error_message());
		ps_commit_list_dispose(&run->commits);
		ps_error_clear();
		rc = emit(run, PS_EVENT_WARNING, fraction_in(PS_PHASE_SCAN, 0), msg);
		free(msg);
		run->sync->commits_truncated = true;
		return rc;
	}
	if (run->commits.n > 0 && strcmp(run->commits.v[0].sha, run->head.commit) == 0) {
		run->sync->head_commit = ps_commit_clone(&run->commits.v[0]);
	} else if (base) {
		/* No new commit, yet a new head (moved back to an older commit, or to another
		 * branch's): it is not in the range, so ask for it alone. */
		struct ps_commit_list head = { 0 };
		rc = run->src->ops->commits(run->src, NULL, run->head.commit, 1, &head);
		if (rc == 0 && head.n == 1)
			run->sync->head_commit = ps_commit_clone(&head.v[0]);
		ps_commit_list_dispose(&head);
		if (rc == PS_ECANCELLED)
			return rc;
		ps_error_clear();
	}
	run->sync->commit_count = run->commits.total;
	run->sync->commits_truncated = run->commits.truncated;
	return 0;
}

static int scan_counted(struct ps_sync_run *run)
{
	struct ps_counts c = { 0 };
	int rc;

	if ((rc = record_commits(run)) < 0)
		return rc;

	ps_changes_count(run->changes, run->nchanges, &c);
	c.files = (run->base ? run->base->counts.files : 0) + c.added - c.deleted;
	run->sync->counts = c;
	run->state = ST_FETCH_START;
	return 0;
}

static int scan_done(struct ps_sync_run *run)
{
	int rc;

	ps_scan_take_changes(run->scan, &run->changes, &run->nchanges);
	ps_scan_free(run->scan);
	run->scan = NULL;
	if (run->scan_fallback && (rc = diff_against_snapshot(run)) < 0)
		return rc;
	return scan_counted(run);
}

static int step_scan(struct ps_sync_run *run)
{
	size_t read, pending;
	bool done = false;
	int rc;

	rc = ps_scan_step(run->scan, batch(run, SCAN_BATCH), &done);
	if (rc != PS_ENOTFOUND && drain_warnings(run) < 0 && rc == 0)
		rc = ps_error_code();
	if (rc == PS_ENOTFOUND && run->base && !run->scan_fallback) {
		/* The source lost the base tree (force-push and gc, or a new cache): list the new
		 * tree in full and compare it with what the store holds. */
		ps_scan_free(run->scan);
		run->scan = NULL;
		run->scan_fallback = true;
		if ((rc = emit(run, PS_EVENT_WARNING, fraction_in(PS_PHASE_SCAN, 0),
			       "the last synced tree is gone from the source; comparing the whole "
			       "tree with the stored snapshot")) < 0)
			return rc;
		ps_error_clear();
		return ps_scan_new(&run->scan, run->src, NULL, run->empty ? NULL : run->head.tree);
	}
	if (rc < 0)
		return rc;
	if (done)
		return scan_done(run);
	read = ps_scan_trees_read(run->scan);
	pending = ps_scan_trees_pending(run->scan);
	if ((rc = save(run, false)) < 0)
		return rc;
	/* No files counter yet: the changes found so far may still pair into renames or be
	 * replaced by a comparison with the stored snapshot, so their number could go down. */
	return progress(run, (double)read / (double)(read + pending + 1));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool touched(const struct ps_sync_run *run, const char *path)
{
	return run->ntouched &&
	       bsearch(&path, run->touched, run->ntouched, sizeof(*run->touched), cmp_str);
}

/* The paths the changes touch, sorted (borrowed from the changes); built once. */
static void load_touched(struct ps_sync_run *run)
{
	if (run->touched)
		return;
	run->touched = ps_calloc(2 * run->nchanges + 1, sizeof(*run->touched));
	for (size_t i = 0; i < run->nchanges; i++) {
		run->touched[run->ntouched++] = run->changes[i].path;
		if (run->changes[i].previous_path)
			run->touched[run->ntouched++] = run->changes[i].previous_path;
	}
	if (run->ntouched > 1)
		qsort(run->touched, run->ntouched, sizeof(*run->touched), cmp_str);
}

/* Keeps a base file that a blob rescan fetches: one the changes leave as it is (so it is in the
 * new snapshot, and the source has it). */
static int collect_missing(void *ud, const struct ps_file *f)
{
	struct ps_sync_run *run = ud;

	if (touched(run, f->path))
		return 0;
	if (run->nmissing == run->capmissing) {
		run->capmissing = run->capmissing ? run->capmissing * 2 : 64;
		run->missing = ps_realloc(run->missing, run->capmissing * sizeof(*run->missing));
	}
	run->missing[run->nmissing] = *f;
	run->missing[run->nmissing].path = ps_strdup(f->path);
	run->nmissing++;
	return 0;
}

static bool is_regular_file(uint32_t mode)
{
	return (mode & 0170000u) == 0100000u;
}

static int step_fetch_start(struct ps_sync_run *run)
{
	char **want;
	bool *have;
	size_t n = 0, uniq = 0;
	const char *first_large = NULL;
	int rc;

	/* After a raise of the size limit: the files of the base kept as metadata only that fit
	 * now and that the changes do not replace (the changes' own blobs follow below). */
	if (run->blob_rescan_gen && run->base) {
		load_touched(run);
		if ((rc = ps_store_snapshot_missing_blobs(run->store, run->project->id, run->base->id,
							  run->project->max_blob_size,
							  collect_missing, run)) < 0)
			return rc;
	}
	want = ps_calloc(run->nchanges + run->nmissing + 1, sizeof(char *));
	for (size_t i = 0; i < run->nmissing; i++)
		want[n++] = run->missing[i].sha;

	for (size_t i = 0; i < run->nchanges; i++) {
		struct ps_change *c = &run->changes[i];
		if (c->status == PS_CHANGE_DELETED || (c->mode & 0170000u) == PS_MODE_COMMIT)
			continue;
		if (c->size > run->project->max_blob_size) {
			run->sync->skipped_large++;
			if (!first_large)
				first_large = c->path;
			continue;
		}
		want[n++] = c->sha;
	}
	if (n > 1)
		qsort(want, n, sizeof(*want), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (uniq == 0 || strcmp(want[uniq - 1], want[i]) != 0)
			want[uniq++] = want[i];
	have = ps_calloc(uniq + 1, sizeof(bool));
	if ((rc = ps_store_blob_have(run->store, (const char *const *)want, uniq, have)) < 0) {
		free(have);
		free(want);
		return rc;
	}
	if (!run->project->no_code_index) {
		/* Blobs already stored (brought by a project without the index, or before it
		 * existed) are indexed in step_index. */
		bool *indexed = ps_calloc(uniq + 1, sizeof(bool));
		if ((rc = ps_store_code_index_have(run->store, (const char *const *)want, uniq,
						   indexed)) < 0) {
			free(indexed);
			free(have);
			free(want);
			return rc;
		}
		for (size_t i = 0; i < uniq; i++)
			if (have[i] && !indexed[i])
				ps_strv_push(&run->index_backlog, want[i]);
		free(indexed);
	}
	n = 0;
	for (size_t i = 0; i < uniq; i++)
		if (!have[i])
			want[n++] = want[i];
	free(have);
	run->fetch = want;
	run->nfetch = n;
	run->fetch_pos = 0;
	/* Files counter: every file is done but those waiting for a blob still to fetch. */
	run->fetch_files = ps_calloc(n + 1, sizeof(*run->fetch_files));
	run->fetch_base = ps_calloc(n + 1, sizeof(*run->fetch_base));
	run->files_total = (int64_t)(run->nchanges + run->nmissing);
	run->files_done = run->files_total;
	for (size_t i = 0; i < run->nchanges + run->nmissing; i++) {
		const struct ps_change *c = i < run->nchanges ? &run->changes[i] : NULL;
		const char *sha = c ? c->sha : run->missing[i - run->nchanges].sha;
		char **hit;

		if (c && (c->status == PS_CHANGE_DELETED || (c->mode & 0170000u) == PS_MODE_COMMIT ||
			  c->size > run->project->max_blob_size))
			continue;
		if (n && (hit = bsearch(&sha, want, n, sizeof(*want), cmp_str))) {
			run->fetch_files[hit - want]++;
			run->files_done--;
			/* A new version of a regular file whose previous version (in the base
			 * sync) may be stored: the store tries a delta against it. */
			if (c && c->previous_sha[0] && is_regular_file(c->mode) &&
			    is_regular_file(c->previous_mode) && !run->fetch_base[hit - want])
				run->fetch_base[hit - want] = c->previous_sha;
		}
	}
	if ((rc = enter_phase(run, PS_PHASE_FETCH)) < 0)
		return rc;
	if ((rc = ps_source_fetch_begin(run->src, &run->head, (const char *const *)want, n)) < 0)
		return rc;
	if (run->sync->skipped_large) {
		char *msg = ps_asprintf("%lld file(s) larger than the project's limit of %lld bytes are "
					"kept as metadata only, not fetched (first: %s)",
					(long long)run->sync->skipped_large,
					(long long)run->project->max_blob_size, first_large);
		rc = emit(run, PS_EVENT_WARNING, phase_start[PS_PHASE_FETCH], msg);
		free(msg);
		if (rc < 0)
			return rc;
	}
	run->state = ST_FETCH;
	return 0;
}

/*
 * Fetched blobs wait in memory until FETCH_FLUSH_BYTES of them (or the end of the step), then
 * go to the store in one short transaction: the store's write lock is never held across a
 * network wait, where a slow or silent upstream would block every other writer of the store
 * (a cancel from the API or another process, the other workers, other nodes) for as long as
 * it stalls. Blobs are content-addressed, so those a failing step already committed do no
 * harm: the next sync finds them stored.
 */
#define FETCH_FLUSH_BYTES ((size_t)8 << 20)
#define FETCH_FLUSH_BLOBS 256

struct pending_blob {
	char sha[PS_SHA_HEX];
	const char *base;  /* the path's previous blob, to store this one as a delta of */
	void *data;
	size_t len;
};

struct fetch_ctx {
	struct ps_sync_run *run;
	size_t got;
	struct pending_blob *pending;
	size_t npending, cap, pending_bytes;
};

static void drop_pending(struct fetch_ctx *fc)
{
	for (size_t i = 0; i < fc->npending; i++)
		free(fc->pending[i].data);
	fc->npending = 0;
	fc->pending_bytes = 0;
}

static int flush_blobs(struct fetch_ctx *fc)
{
	struct ps_sync_run *run = fc->run;
	int rc = 0;

	if (!fc->npending)
		return 0;
	if ((rc = ps_store_begin(run->store)) < 0)
		goto out;
	/* One call for the flush: small blobs are packed with their neighbours (in the order
	 * the source delivered them, paths near each other), store/blobcodec.h PS_BLOB_PACKED. */
	{
		struct ps_blob_in *in = ps_malloc(fc->npending * sizeof(*in));

		for (size_t i = 0; i < fc->npending; i++) {
			const struct pending_blob *b = &fc->pending[i];
			in[i] = (struct ps_blob_in){ b->sha, b->data, b->len, b->base };
		}
		rc = ps_store_blob_put_many(run->store, in, fc->npending);
		free(in);
	}
	if (rc < 0) {
		/* Only a wrong id is a verification failure; a busy or failing store says so
		 * itself. */
		const char *slug = ps_error_slug();
		if (slug && strcmp(slug, "sha_mismatch") == 0)
			rc = ps_error_wrap(rc, "fetched blob failed verification: ");
	}
	for (size_t i = 0; i < fc->npending && rc == 0 && !run->project->no_code_index; i++) {
		const struct pending_blob *b = &fc->pending[i];

		rc = ps_grep_index_blob(run->store, b->sha, b->data, b->len);
	}
	if (rc < 0)
		ps_store_rollback(run->store);
	else
		rc = ps_store_commit(run->store);
out:
	drop_pending(fc);
	return rc;
}

/* Remembers the size of a fetched blob, for changes whose source did not know it. */
static void note_size(struct ps_sync_run *run, const char *sha, size_t len)
{
	if (run->nsizes == run->capsizes) {
		run->capsizes = run->capsizes ? run->capsizes * 2 : 256;
		run->sizes = ps_realloc(run->sizes, run->capsizes * sizeof(*run->sizes));
	}
	memcpy(run->sizes[run->nsizes].sha, sha, PS_SHA_HEX);
	run->sizes[run->nsizes++].size = (int64_t)len;
}

static int cmp_size(const void *a, const void *b)
{
	return strcmp(((const struct blob_size *)a)->sha, ((const struct blob_size *)b)->sha);
}

static void fill_sizes(struct ps_sync_run *run)
{
	if (run->nsizes > 1)
		qsort(run->sizes, run->nsizes, sizeof(*run->sizes), cmp_size);
	for (size_t i = 0; i < run->nchanges; i++) {
		struct ps_change *c = &run->changes[i];
		struct blob_size key, *hit = NULL;
		void *data = NULL;
		size_t len = 0;

		if (c->size >= 0 || c->status == PS_CHANGE_DELETED ||
		    (c->mode & 0170000u) == PS_MODE_COMMIT)
			continue;
		memcpy(key.sha, c->sha, PS_SHA_HEX);
		if (run->nsizes)
			hit = bsearch(&key, run->sizes, run->nsizes, sizeof(*run->sizes), cmp_size);
		if (hit) {
			c->size = hit->size;
		} else if (ps_store_blob_get(run->store, c->sha, &data, &len) == 0) {
			/* Not fetched because the store had it (a mode change, a revert, a copy),
			 * from a source that did not say its size (GitHub's compare). */
			c->size = (int64_t)len;
			free(data);
		} else {
			ps_error_clear();
		}
	}
}

static int store_blob(void *ud, const char *sha, const void *data, size_t len)
{
	struct fetch_ctx *fc = ud;
	const char *base = NULL;

	note_size(fc->run, sha, len);
	{
		struct ps_sync_run *run = fc->run;
		char **hit = run->nfetch ? bsearch(&sha, run->fetch, run->nfetch, sizeof(*run->fetch),
						   cmp_str) : NULL;
		if (hit) {
			base = run->fetch_base[hit - run->fetch];
			run->files_done += run->fetch_files[hit - run->fetch];
			run->fetch_files[hit - run->fetch] = 0; /* once, even if delivered twice */
		}
	}
	if (len > (size_t)fc->run->project->max_blob_size) {
		/* Its size was not known before the fetch: keep it as metadata only after all. */
		fc->run->sync->skipped_large++;
		fc->got++;
		return 0;
	}
	if (fc->npending == fc->cap) {
		fc->cap = fc->cap ? fc->cap * 2 : 64;
		fc->pending = ps_realloc(fc->pending, fc->cap * sizeof(*fc->pending));
	}
	{
		struct pending_blob *b = &fc->pending[fc->npending++];
		memcpy(b->sha, sha, PS_SHA_HEX);
		b->base = base;
		b->data = ps_malloc(len ? len : 1);
		memcpy(b->data, data, len);
		b->len = len;
		fc->pending_bytes += len;
	}
	fc->run->sync->bytes += (int64_t)len;
	fc->got++;
	if (fc->pending_bytes >= FETCH_FLUSH_BYTES || fc->npending >= FETCH_FLUSH_BLOBS)
		return flush_blobs(fc);
	return 0;
}

static int step_fetch(struct ps_sync_run *run)
{
	struct fetch_ctx fc = { .run = run };
	bool done = false;
	int rc;

	rc = ps_source_fetch_next(run->src, batch(run, FETCH_BATCH), store_blob, &fc, &done);
	if (rc == 0)
		rc = flush_blobs(&fc);
	drop_pending(&fc);
	free(fc.pending);
	if (rc < 0)
		return rc;
	run->fetch_pos += fc.got;
	if ((rc = drain_warnings(run)) < 0)
		return rc;
	if (done) {
		ps_source_fetch_end(run->src);
		if (run->fetch_pos != run->nfetch)
			return ps_error_set(PS_EUPSTREAM, "blobs_missing",
					    "the source delivered %zu of %zu blobs", run->fetch_pos,
					    run->nfetch);
		fill_sizes(run);
		run->state = ST_INDEX;
		run->index_next = ST_IMPORT_START;
	}
	if ((rc = save(run, false)) < 0)
		return rc;
	return progress(run, run->nfetch ? (double)run->fetch_pos / (double)run->nfetch : 1.0);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Indexes for code search the stored blobs the index lacks: those this sync found already
 * stored, and when the project's whole history is owed (a store from before the index, or the
 * index switched back on) every stored blob of its file versions. A batch per step, with
 * progress; each blob is read through the store and indexed once. */
static int step_index(struct ps_sync_run *run)
{
	struct ps_strv *b = &run->index_backlog;
	size_t end;
	int rc;

	if (!run->index_loaded) {
		run->index_loaded = true;
		if (run->project->code_index_pending && !run->project->no_code_index) {
			struct ps_strv all = { 0 };
			if ((rc = ps_store_code_unindexed(run->store, run->project->id, &all)) < 0)
				return rc;
			for (size_t i = 0; i < all.n; i++)
				ps_strv_push(b, all.v[i]);
			ps_strv_dispose(&all);
		}
		if (b->n > 1) {
			size_t u = 0;
			qsort(b->v, b->n, sizeof(*b->v), cmp_strp);
			for (size_t i = 0; i < b->n; i++) {
				if (u && strcmp(b->v[u - 1], b->v[i]) == 0) {
					free(b->v[i]);
					continue;
				}
				b->v[u++] = b->v[i];
			}
			b->n = u;
		}
		if (run->sync->phase != PS_PHASE_FETCH) {
			/* Only indexing in this phase: its fraction and the files counter follow
			 * the backlog (a fetch's counter already covers the files it brought). */
			run->index_owns_phase = true;
			run->files_total += (int64_t)b->n;
			if ((rc = enter_phase(run, PS_PHASE_FETCH)) < 0)
				return rc;
		}
	}
	end = run->index_pos + batch(run, FETCH_BATCH);
	if (end > b->n)
		end = b->n;
	if ((rc = ps_store_begin(run->store)) < 0)
		return rc;
	for (; run->index_pos < end; run->index_pos++) {
		void *data = NULL;
		size_t len = 0;

		rc = ps_store_blob_get(run->store, b->v[run->index_pos], &data, &len);
		if (rc == 0)
			rc = ps_grep_index_blob(run->store, b->v[run->index_pos], data, len);
		free(data);
		if (rc < 0) {
			ps_store_rollback(run->store);
			return rc;
		}
		if (run->index_owns_phase)
			run->files_done++;
	}
	if (end == b->n && run->project->code_index_pending &&
	    (rc = ps_store_code_index_done(run->store, run->project->id)) < 0) {
		ps_store_rollback(run->store);
		return rc;
	}
	if ((rc = ps_store_commit(run->store)) < 0)
		return rc;
	if (end == b->n)
		run->state = run->index_next;
	if (!b->n)
		return 0;
	/* After a fetch the fraction stays where fetching left it: events never go back. */
	return progress(run, run->index_owns_phase ? (double)end / (double)b->n : 1.0);
}

static int step_import_start(struct ps_sync_run *run)
{
	int rc = enter_phase(run, PS_PHASE_IMPORT);

	run->import_pos = 0;
	run->memory_pos = 0;
	run->dirs_pos = 0;
	run->state = ST_IMPORT;
	return rc;
}

static int cmp_entry_path(const void *a, const void *b)
{
	return strcmp(((const struct ps_memory_entry *)a)->source_ref,
		      ((const struct ps_memory_entry *)b)->source_ref);
}

static const struct ps_memory_entry *active_entry(const struct ps_sync_run *run, const char *path)
{
	struct ps_memory_entry key = { .source_ref = (char *)path };

	if (!run->nrescan_active)
		return NULL;
	return bsearch(&key, run->rescan_active, run->nrescan_active, sizeof(key), cmp_entry_path);
}

static bool rescan_has_file(const struct ps_sync_run *run, const char *path)
{
	struct ps_file key = { .path = (char *)path };

	return run->nrescan_files &&
	       bsearch(&key, run->rescan_files, run->nrescan_files, sizeof(key), cmp_file_path);
}

/* Keeps a base-snapshot file for the rescan: it matches the globs and no change touches it
 * (the changes' paths are the memory step's business). */
static int collect_rescan_file(void *ud, const struct ps_file *f)
{
	struct ps_sync_run *run = ud;

	if (!ps_memory_globs_match(&run->project->memory_globs, f->path) || touched(run, f->path))
		return 0;
	if (run->nrescan_files == run->caprescan_files) {
		run->caprescan_files = run->caprescan_files ? run->caprescan_files * 2 : 64;
		run->rescan_files = ps_realloc(run->rescan_files,
					       run->caprescan_files * sizeof(*run->rescan_files));
	}
	run->rescan_files[run->nrescan_files] = *f;
	run->rescan_files[run->nrescan_files].path = ps_strdup(f->path);
	run->nrescan_files++;
	return 0;
}

/* What the rescan compares: the paths the changes touch, the untouched files of the base
 * snapshot that match the globs (together with the changes, the new snapshot) and the active
 * entries. Sizes are those of the notes, not of the repository, apart from one pass over the
 * base snapshot. */
static int rescan_load(struct ps_sync_run *run)
{
	int rc;

	load_touched(run);
	if (run->base &&
	    (rc = ps_store_snapshot_each(run->store, run->project->id, run->base->id, NULL,
					 collect_rescan_file, run)) < 0)
		return rc;
	if (run->nrescan_files > 1)
		qsort(run->rescan_files, run->nrescan_files, sizeof(*run->rescan_files), cmp_file_path);
	if ((rc = ps_store_memory_active_paths(run->store, run->project->id, &run->rescan_active,
					       &run->nrescan_active)) < 0)
		return rc;
	run->rescan_loaded = true;
	return 0;
}

static void rescan_free(struct ps_sync_run *run)
{
	for (size_t i = 0; i < run->nrescan_files; i++)
		free(run->rescan_files[i].path);
	free(run->rescan_files);
	ps_memory_entries_free(run->rescan_active, run->nrescan_active);
	free(run->touched);
	for (size_t i = 0; i < run->nmissing; i++)
		free(run->missing[i].path);
	free(run->missing);
}

/* Stages one batch of memory entries and removals in one transaction, then reports progress. */
static int stage_memory_batch(struct ps_sync_run *run, const struct ps_memory_entry *entries,
			      size_t nentries, const char **removals, size_t nremovals)
{
	int rc;

	if ((rc = ps_store_begin(run->store)) < 0)
		return rc;
	if ((nentries && (rc = ps_store_memory_stage(run->store, run->sync, entries, nentries)) < 0) ||
	    (nremovals && (rc = ps_store_memory_stage_removals(run->store, run->sync, removals,
								 nremovals)) < 0)) {
		ps_store_rollback(run->store);
		return rc;
	}
	if ((rc = ps_store_commit(run->store)) < 0 || (rc = save(run, false)) < 0)
		return rc;
	return progress(run, 1.0);
}

/* A file with a NUL byte is binary, not a note (`memory add --file` refuses it too): never an
 * entry cut at its first NUL. Counted for one warning at the end of the memory step. */
static bool memory_not_text(struct ps_sync_run *run, const char *path, const void *data,
			    size_t len)
{
	if (!len || !memchr(data, 0, len))
		return false;
	if (!run->memory_not_text++)
		run->first_not_text = ps_strdup(path);
	return true;
}

/* The memory step is over: the sync goes on to finalize, warning of the files it did not take. */
static int memory_done(struct ps_sync_run *run)
{
	int rc = 0;

	run->state = ST_FINALIZE;
	if (run->memory_not_text) {
		char *msg = ps_asprintf("%zu file(s) matching the memory globs hold NUL bytes, not "
					"text: not imported as notes (first: %s)",
					run->memory_not_text, run->first_not_text);
		rc = emit(run, PS_EVENT_WARNING, run->fraction, msg);
		free(msg);
		run->memory_not_text = 0;
	}
	return rc;
}

/*
 * The memory rescan after a change of the project's memory globs (after the changes' memory
 * entries are staged): every file of the new snapshot that matches the globs gets an entry
 * unless its active entry is an import of the same blob or a restore, every active entry (a
 * restored one too) whose path no longer matches the globs is removed, and so is every active
 * imported entry whose file is no longer in the snapshot. A restored entry of a path the globs
 * still match is left alone (a restore is the user's choice of version); manual entries have no
 * path and are never the rescan's. Changed paths are the memory step's: only their entries that
 * left the globs are the rescan's. Staged like the memory step's, invisible until finalize;
 * bounded per step by entries, bytes and items.
 */
static int step_rescan_memory(struct ps_sync_run *run)
{
	const struct ps_strv *globs = &run->project->memory_globs;
	const char *kind = run->src && run->src->ops->kind ? run->src->ops->kind : "git";
	struct ps_memory_entry *entries = NULL;
	const char **removals = NULL;
	size_t nentries = 0, nremovals = 0, bytes = 0, items = 0, max_entries, max_items;
	int rc = 0;

	if (!run->rescan_loaded)
		return rescan_load(run);
	if (run->rescan_file_pos >= run->nrescan_files &&
	    run->rescan_active_pos >= run->nrescan_active)
		return memory_done(run);
	max_entries = batch(run, MEMORY_BATCH);
	max_items = batch(run, IMPORT_BATCH);
	entries = ps_calloc(max_entries, sizeof(*entries));
	removals = ps_calloc(max_items, sizeof(*removals));
	for (; run->rescan_file_pos < run->nrescan_files && items < max_items &&
	       nentries < max_entries && bytes < MEMORY_BATCH_BYTES;
	     run->rescan_file_pos++, items++) {
		const struct ps_file *f = &run->rescan_files[run->rescan_file_pos];
		const struct ps_memory_entry *cur = active_entry(run, f->path);
		void *data = NULL;
		size_t len = 0;

		if (cur && cur->origin != PS_MEMORY_FROM_SYNC)
			continue;
		if (!is_regular_file(f->mode)) {
			if (cur)
				removals[nremovals++] = f->path;
			continue;
		}
		if (cur && strcmp(cur->sha, f->sha) == 0)
			continue;
		/* Over the project's limit it is not this project's note, whoever stored it. */
		rc = ps_project_blob_get(run->store, run->project, f->sha, f->size, &data, &len);
		if (rc == PS_ENOTFOUND) {
			/* Kept as metadata only (over the size limit): no entry to show. */
			ps_error_clear();
			rc = 0;
			if (cur)
				removals[nremovals++] = f->path;
			continue;
		}
		if (rc < 0)
			goto out;
		if (memory_not_text(run, f->path, data, len)) {
			free(data);
			if (cur)
				removals[nremovals++] = f->path;
			continue;
		}
		struct ps_memory_entry *e = &entries[nentries++];
		ps_memory_parse(e, f->path, data, len);
		free(data);
		e->source = ps_strdup(kind);
		e->source_ref = ps_strdup(f->path);
		memcpy(e->sha, f->sha, PS_SHA_HEX);
		bytes += len;
	}
	for (; run->rescan_file_pos >= run->nrescan_files &&
	       run->rescan_active_pos < run->nrescan_active && items < max_items;
	     run->rescan_active_pos++, items++) {
		const struct ps_memory_entry *cur = &run->rescan_active[run->rescan_active_pos];

		/* Out of the globs: gone, whatever made the entry. A restore pins a version of a
		 * note, so a restored entry outlives its file's absence, never its path leaving
		 * the globs. */
		if (!ps_memory_globs_match(globs, cur->source_ref) ||
		    (cur->origin == PS_MEMORY_FROM_SYNC && !touched(run, cur->source_ref) &&
		     !rescan_has_file(run, cur->source_ref)))
			removals[nremovals++] = cur->source_ref;
	}
	rc = stage_memory_batch(run, entries, nentries, removals, nremovals);
out:
	ps_memory_entries_free(entries, nentries);
	free(removals);
	return rc;
}

/*
 * Memory entries for the changes that touch the project's memory globs (after the file versions
 * are staged): a new or changed regular file becomes a staged entry read from its blob (fetched
 * in the fetch phase); a deleted file, the old path of a rename, or a file that is no longer a
 * regular file or whose content was not kept (over the size limit) stages the removal of its
 * path's entry. All invisible until finalize. Bounded per step by entries, bytes and changes.
 */
static int step_import_memory(struct ps_sync_run *run)
{
	const struct ps_strv *globs = &run->project->memory_globs;
	const char *kind = run->src && run->src->ops->kind ? run->src->ops->kind : "git";
	struct ps_memory_entry *entries = NULL;
	const char **removals = NULL;
	size_t nentries = 0, nremovals = 0, bytes = 0, end, max_entries;
	int rc = 0;

	if (run->memory_pos >= run->nchanges || globs->n == 0) {
		if (run->rescan_memory)
			return step_rescan_memory(run);
		return memory_done(run);
	}
	max_entries = batch(run, MEMORY_BATCH);
	end = run->memory_pos + batch(run, IMPORT_BATCH);
	if (end > run->nchanges)
		end = run->nchanges;
	entries = ps_calloc(max_entries, sizeof(*entries));
	removals = ps_calloc(2 * (end - run->memory_pos), sizeof(*removals));
	for (; run->memory_pos < end && nentries < max_entries && bytes < MEMORY_BATCH_BYTES;
	     run->memory_pos++) {
		const struct ps_change *c = &run->changes[run->memory_pos];
		void *data = NULL;
		size_t len = 0;

		if (c->status == PS_CHANGE_RENAMED && c->previous_path &&
		    ps_memory_globs_match(globs, c->previous_path))
			removals[nremovals++] = c->previous_path;
		if (!ps_memory_globs_match(globs, c->path))
			continue;
		if (c->status == PS_CHANGE_DELETED || !is_regular_file(c->mode)) {
			removals[nremovals++] = c->path;
			continue;
		}
		rc = ps_project_blob_get(run->store, run->project, c->sha, c->size, &data, &len);
		if (rc == PS_ENOTFOUND) {
			/* Kept as metadata only (over the size limit, even when another project
			 * stored the blob): the old entry is stale. */
			ps_error_clear();
			rc = 0;
			removals[nremovals++] = c->path;
			continue;
		}
		if (rc < 0)
			goto out;
		if (memory_not_text(run, c->path, data, len)) {
			free(data);
			removals[nremovals++] = c->path;
			continue;
		}
		struct ps_memory_entry *e = &entries[nentries++];
		ps_memory_parse(e, c->path, data, len);
		free(data);
		e->source = ps_strdup(kind);
		e->source_ref = ps_strdup(c->path);
		memcpy(e->sha, c->sha, PS_SHA_HEX);
		bytes += len;
	}
	rc = stage_memory_batch(run, entries, nentries, removals, nremovals);
out:
	ps_memory_entries_free(entries, nentries);
	free(removals);
	return rc;
}

/* The base's stored directory (ps_tree_update's loader). */
static int load_base_dir(void *ud, const char *path, struct ps_tree_dir *out)
{
	struct ps_sync_run *run = ud;

	if (!run->base)
		return ps_error_set(PS_ENOTFOUND, NULL, "no base");
	return ps_store_dir_tree_get(run->store, run->project->id, run->base->id, path, out);
}

/* The base's stored directories for ps_tree_update, the root from what check_tree loaded
 * already (each load rebuilds its entries from the rows: a round trip or more on PostgreSQL). */
struct base_dirs {
	struct ps_sync_run *run;
	struct ps_tree_dir *root; /* its path and body are handed over once, its sha kept */
};

static int load_base_dir_root_once(void *ud, const char *path, struct ps_tree_dir *out)
{
	struct base_dirs *b = ud;

	if (path[0] || !b->root->path)
		return load_base_dir(b->run, path, out);
	*out = *b->root;
	b->root->path = NULL;
	b->root->body = NULL;
	b->root->len = 0;
	return 0;
}

/* A directory of the new snapshot: hashed by this sync, else unchanged from the base. */
static int our_dir(void *ud, const char *path, struct ps_tree_dir *out)
{
	struct ps_sync_run *run = ud;
	const struct ps_tree_dir *d = ps_tree_dirs_find(run->dirs, run->ndirs, path);

	if (!d)
		return load_base_dir(ud, path, out);
	if (!d->sha[0])
		return ps_error_set(PS_ENOTFOUND, NULL, "removed");
	out->path = ps_strdup(d->path);
	memcpy(out->sha, d->sha, PS_SHA_HEX);
	out->len = d->len;
	out->body = d->len ? ps_malloc(d->len) : NULL;
	if (d->len)
		memcpy(out->body, d->body, d->len);
	return 0;
}

static int collect_untouched(void *ud, const struct ps_file *f)
{
	struct ps_sync_run *run = ud;

	return touched(run, f->path) ? 0 : collect_file(run->tree_files, f);
}

/* Every directory of the new snapshot from its rows: the base's files the changes leave alone
 * plus the changes' files. */
static int hash_all_dirs(struct ps_sync_run *run)
{
	struct file_list files = { 0 };
	size_t nown;
	int rc = 0;

	load_touched(run);
	run->tree_files = &files;
	if (run->base && run->base->commit)
		rc = ps_store_snapshot_each(run->store, run->project->id, run->base->id, NULL,
					    collect_untouched, run);
	run->tree_files = NULL;
	nown = files.n;
	for (size_t i = 0; rc == 0 && i < run->nchanges; i++) {
		const struct ps_change *c = &run->changes[i];

		if (c->status == PS_CHANGE_DELETED)
			continue;
		if (files.n == files.cap) {
			files.cap = files.cap ? files.cap * 2 : 1024;
			files.v = ps_realloc(files.v, files.cap * sizeof(*files.v));
		}
		files.v[files.n] = (struct ps_file){ .path = c->path, .mode = c->mode,
						     .size = c->size };
		memcpy(files.v[files.n].sha, c->sha, PS_SHA_HEX);
		files.n++;
	}
	ps_tree_dirs_free(run->dirs, run->ndirs);
	run->dirs = NULL;
	run->ndirs = 0;
	if (rc == 0)
		rc = ps_tree_build(files.v, files.n, &run->dirs, &run->ndirs);
	for (size_t i = 0; i < nown; i++)
		free(files.v[i].path);
	free(files.v);
	return rc;
}

/*
 * The check that makes every snapshot the commit's: the git tree id of the new snapshot,
 * computed from its rows, must be the head's tree. Re-hashes only the directories on changed
 * paths when the base has its directories stored; a base synced before they were stored (or
 * whose stored ones do not add up) has every directory hashed from its rows. A mismatch names
 * the first directory whose entries differ from the source's and fails the sync: nothing was
 * made visible.
 */
static int check_tree(struct ps_sync_run *run)
{
	struct ps_tree_dir base_root = { 0 };
	const struct ps_tree_dir *root;
	bool incremental = false;
	char got[PS_SHA_HEX] = "";
	char *dir = NULL, *detail = NULL;
	int rc;

	run->tree_checked = true;
	if (run->empty || run->sync->up_to_date)
		return 0;
	if (run->base && run->base->commit) {
		rc = ps_store_dir_tree_get(run->store, run->project->id, run->base->id, "",
					   &base_root);
		if (rc == 0)
			incremental = true;
		else if (rc != PS_ENOTFOUND)
			return rc;
		ps_error_clear();
	}
	if (incremental) {
		struct base_dirs b = { run, &base_root };

		rc = ps_tree_update(run->changes, run->nchanges, load_base_dir_root_once, &b,
				    &run->dirs, &run->ndirs);
	} else {
		rc = hash_all_dirs(run);
	}
	if (rc < 0)
		goto out;
	root = ps_tree_dirs_find(run->dirs, run->ndirs, "");
	snprintf(got, sizeof(got), "%s", root ? root->sha : base_root.sha);
	if (strcmp(got, run->head.tree) != 0 && incremental) {
		/* The stored directories of the base may be wrong (a store altered by hand): the
		 * rows decide, and the new snapshot gets every directory stored afresh. */
		if ((rc = hash_all_dirs(run)) < 0)
			goto out;
		root = ps_tree_dirs_find(run->dirs, run->ndirs, "");
		snprintf(got, sizeof(got), "%s", root ? root->sha : "");
		if (strcmp(got, run->head.tree) == 0 &&
		    (rc = emit(run, PS_EVENT_WARNING, fraction_in(PS_PHASE_IMPORT, 0),
			       "the stored directory trees of the last snapshot do not match its "
			       "files; every directory was hashed again from the files")) < 0)
			goto out;
	}
	if (strcmp(got, run->head.tree) != 0) {
		ps_tree_first_difference(run->src, run->head.tree, our_dir, run, &dir, &detail);
		drain_warnings(run);
		rc = ps_error_set(PS_EUPSTREAM, "tree_mismatch",
				  "the snapshot does not match commit %.12s: its tree is %.12s, the "
				  "commit's %.12s; first differing directory: %s%s (%s)",
				  run->head.commit, got, run->head.tree, dir && dir[0] ? dir : "/",
				  dir && dir[0] ? "/" : "", detail ? detail : "");
		free(dir);
		free(detail);
	}
out:
	free(base_root.path);
	free(base_root.body);
	return rc;
}

/* Stages one batch of the directories the check hashed (after the file versions). */
static int stage_dirs(struct ps_sync_run *run)
{
	size_t end = run->dirs_pos + batch(run, IMPORT_BATCH);
	int rc;

	if (end > run->ndirs)
		end = run->ndirs;
	if ((rc = ps_store_dir_trees_stage(run->store, run->sync, run->dirs + run->dirs_pos,
					   end - run->dirs_pos)) < 0)
		return rc;
	run->dirs_pos = end;
	if ((rc = save(run, false)) < 0)
		return rc;
	return progress(run, 1.0);
}

static int step_import(struct ps_sync_run *run)
{
	size_t end;
	int rc;

	if (!run->tree_checked)
		return check_tree(run);
	if (run->import_pos >= run->nchanges) {
		if (run->dirs_pos < run->ndirs)
			return stage_dirs(run);
		return step_import_memory(run);
	}
	end = run->import_pos + batch(run, IMPORT_BATCH);
	if (end > run->nchanges)
		end = run->nchanges;
	if ((rc = ps_store_files_stage(run->store, run->sync, run->changes + run->import_pos,
				       end - run->import_pos)) < 0)
		return rc;
	run->import_pos = end;
	if ((rc = save(run, false)) < 0)
		return rc;
	return progress(run, (double)end / (double)run->nchanges);
}

static int step_finalize(struct ps_sync_run *run)
{
	struct ps_event phase_ev = { 0 }, ev;
	/* An up-to-date sync staged nothing: its finalize is a few row updates, so its phase
	 * event joins the finalize transaction (one commit fewer per unchanged check). A sync
	 * that staged a snapshot records the phase first, so one that dies in the finalize
	 * transaction shows where it was. */
	bool joined = run->sync->up_to_date && run->nchanges == 0 && !run->rescan_memory &&
		      !run->blob_rescan_gen;
	/* A scheduled check answered from the ref alone (its prepare phase never stored, see
	 * step_prepare): the claim and this transaction are all it writes, and its stream is
	 * `queued` then `succeeded`, no phase events (the summary says it was up to date). */
	bool quiet = joined && run->phase_pending;
	enum ps_phase before = run->sync->phase;
	int rc;

	/* A scheduled sync that went straight from prepare to a finalize that is not joined (a
	 * memory or blob rescan) shows its prepare phase first, like any other sync. */
	if (!joined && ((rc = flush_phase(run)) < 0 ||
			(rc = enter_phase(run, PS_PHASE_FINALIZE)) < 0))
		return rc;
	if ((rc = ps_store_begin(run->store)) < 0)
		return rc;
	if (quiet) {
		joined = false;
		run->phase_pending = false;
		run->sync->phase = PS_PHASE_FINALIZE;
	} else if (joined && (rc = write_phase(run, PS_PHASE_FINALIZE, &phase_ev)) < 0) {
		ps_store_rollback(run->store);
		run->sync->phase = before;
		return rc;
	}
	sync_counters(run);
	run->sync->finished_at = ps_now_ms();
	run->sync->status = PS_SYNC_SUCCEEDED;
	fill_event(run, &ev, PS_EVENT_SUCCEEDED, 1.0, NULL);
	ev.summary = sync_clone(run->sync);
	if ((rc = ps_store_sync_finalize(run->store, run->sync, run->changes, run->nchanges,
					 &ev)) < 0 ||
	    (rc = ps_store_sync_commits_put(run->store, run->sync, run->commits.v,
					    run->commits.n)) < 0) {
		ps_store_rollback(run->store);
		goto fail;
	}
	/* The crash test's hardest point: everything written, nothing committed. */
	if (run->kill_step > 0 && run->kill_phase == PS_PHASE_FINALIZE)
		raise(SIGKILL);
	if ((rc = ps_store_commit(run->store)) < 0)
		goto fail;
	if (joined)
		enqueue(run, &phase_ev);
	enqueue(run, &ev);
	run->state = ST_FINISHED;
	return 0;
fail:
	run->seq -= joined ? 2 : 1;
	run->sync->status = PS_SYNC_RUNNING;
	run->sync->finished_at = 0;
	if (quiet) {
		run->phase_pending = true;
		run->sync->phase = before;
	}
	if (joined) {
		/* Rolled back with the phase event: the sync is where its row says. */
		run->sync->phase = before;
		ps_event_dispose(&phase_ev);
	}
	ps_event_dispose(&ev);
	return rc;
}

static int run_step(struct ps_sync_run *run)
{
	bool requested = false;
	enum ps_phase phase = state_phase(run->state);

	if (run->delay_ms > 0) {
		struct timespec ts = { run->delay_ms / 1000, (run->delay_ms % 1000) * 1000000 };
		nanosleep(&ts, NULL);
	}
	if (phase != PS_PHASE_FINALIZE)
		maybe_die(run, phase);
	if (run->cancel)
		return ps_error_set(PS_ECANCELLED, "cancelled", "cancelled by request");
	if (ps_store_sync_cancel_requested(run->store, run->sync->id, &requested) == 0 && requested)
		return ps_error_set(PS_ECANCELLED, "cancelled", "cancelled by request");
	switch (run->state) {
	case ST_PREPARE: return step_prepare(run);
	case ST_SCAN_START: return step_scan_start(run);
	case ST_SCAN: return step_scan(run);
	case ST_FETCH_START: return step_fetch_start(run);
	case ST_FETCH: return step_fetch(run);
	case ST_INDEX: return step_index(run);
	case ST_IMPORT_START: return step_import_start(run);
	case ST_IMPORT: return step_import(run);
	case ST_FINALIZE: return step_finalize(run);
	case ST_FINISHED: return 0;
	}
	return 0;
}

/* ---- public ---- */

static struct ps_sync_run *run_new(struct ps_sync_ctx *ctx)
{
	struct ps_sync_run *run = ps_calloc(1, sizeof(*run));

	run->ctx = ctx;
	run->store = ctx->store;
	run->t0 = ps_mono_ms();
	run->last_progress = run->t0 - 1000000;
	read_test_hooks(run);
	ps_process_identity(getpid(), run->owner_process, sizeof(run->owner_process));
	run->owner.host = ps_hostname();
	run->owner.process = run->owner_process;
	run->owner.lease_ms = lease_ms(run);
	return run;
}

int ps_sync_begin(struct ps_sync_run **out, struct ps_sync_ctx *ctx, const char *project,
		  const struct ps_sync_opts *opts)
{
	struct ps_sync_run *run = run_new(ctx);
	const char *branch;
	int rc;

	if ((rc = ps_store_project_get(ctx->store, project, &run->project)) < 0)
		goto fail;
	branch = opts && opts->branch ? opts->branch : run->project->branch;
	run->want_branch = ps_strdup(branch);
	/* Following the default branch: the branch stays empty until prepare asks the source
	 * (the last sync's branch may have been a one-off). */
	rc = ps_store_sync_create(ctx->store, run->project->id, branch ? branch : "",
				  opts && opts->trigger ? opts->trigger : "cli", &run->owner, &run->sync);
	if (rc < 0)
		goto fail;
	*out = run;
	return 0;
fail:
	ps_sync_end(run);
	return rc;
}

int ps_sync_resume(struct ps_sync_run **out, struct ps_sync_ctx *ctx, int64_t sync_id)
{
	struct ps_sync_run *run = run_new(ctx);
	int rc;

	if ((rc = ps_store_sync_get(ctx->store, sync_id, &run->sync)) < 0 ||
	    (rc = ps_store_project_get_by_id(ctx->store, run->sync->project_id, &run->project)) < 0)
		goto fail;
	if (run->sync->status != PS_SYNC_RUNNING) {
		rc = ps_error_set(PS_ECONFLICT, "not_running", "sync %lld is %s, not running",
				  (long long)sync_id, ps_sync_status_name(run->sync->status));
		goto fail;
	}
	run->want_branch = run->sync->branch[0] ? ps_strdup(run->sync->branch)
						: ps_strdup(run->project->branch);
	run->seq = 0;
	{
		/* Continue the event numbering of the sync (a `queued` event may exist). */
		struct ps_stored_event *evs = NULL;
		size_t n = 0;
		if (ps_store_event_list(ctx->store, sync_id, 0, 0, &evs, &n) == 0 && n)
			run->seq = evs[n - 1].seq;
		ps_stored_events_free(evs, n);
	}
	*out = run;
	return 0;
fail:
	run->state = ST_FINISHED;
	ps_sync_end(run);
	return rc;
}

int ps_sync_next(struct ps_sync_run *run, const struct ps_event **ev)
{
	ps_event_dispose(&run->current);
	memset(&run->current, 0, sizeof(run->current));
	while (run->qhead == run->nqueue) {
		int rc;

		run->qhead = run->nqueue = 0;
		if (run->state == ST_FINISHED)
			return PS_SYNC_DONE;
		rc = run_step(run);
		if (rc < 0)
			fail_from_error(run, rc);
	}
	run->current = run->queue[run->qhead++];
	*ev = &run->current;
	return PS_SYNC_MORE;
}

void ps_sync_cancel(struct ps_sync_run *run)
{
	run->cancel = 1;
}

void ps_sync_cancel_stopping(struct ps_sync_run *run)
{
	run->cancel_stopping = 1;
	run->cancel = 1;
}

const struct ps_sync *ps_sync_run_sync(const struct ps_sync_run *run)
{
	return run->sync;
}

void ps_sync_end(struct ps_sync_run *run)
{
	if (!run)
		return;
	if (run->sync && run->state != ST_FINISHED &&
	    (run->sync->status == PS_SYNC_RUNNING || run->sync->status == PS_SYNC_QUEUED))
		finish_unsuccessful(run, PS_SYNC_CANCELLED, "cancelled",
				    "the run was abandoned before it finished", true);
	for (size_t i = run->qhead; i < run->nqueue; i++)
		ps_event_dispose(&run->queue[i]);
	free(run->queue);
	ps_event_dispose(&run->current);
	ps_scan_free(run->scan);
	ps_changes_free(run->changes, run->nchanges);
	ps_commit_list_dispose(&run->commits);
	free(run->fetch);
	free(run->fetch_files);
	free(run->fetch_base);
	ps_strv_dispose(&run->index_backlog);
	free(run->sizes);
	free(run->first_not_text);
	ps_tree_dirs_free(run->dirs, run->ndirs);
	rescan_free(run);
	ps_source_free(run->src);
	ps_sync_free(run->sync);
	ps_sync_free(run->base);
	ps_project_free(run->project);
	free(run->want_branch);
	free(run);
}
