/*
 * The read-only commands: `status`, `history`, `changes`, `diff`, `files`, `cat`. They answer
 * from succeeded syncs only (the store's snapshots), so their output never shows a half-applied
 * sync. `status` and `history` first let the store mark syncs whose process died as
 * interrupted, so a crashed run does not show as running forever.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/progress.h"
#include "model/json.h"
#include "model/schedule.h"
#include "core/patch.h"
#include "core/project.h"
#include "util/error.h"

static const char status_usage[] =
	"usage: projsync status NAME [--json]\n"
	"\n"
	"Shows a project's running sync (if any), its last succeeded sync and its last sync.\n"
	"--json prints {\"project\", \"running\", \"last_succeeded\", \"last_sync\"} (syncs or null).\n";

static const char history_usage[] =
	"usage: projsync history NAME [--limit N] [--before SYNC_ID] [--json]\n"
	"\n"
	"Lists a project's syncs, newest first (all of them unless --limit N). SUBJECT is the\n"
	"head commit's subject; NOTE holds a failed sync's error, or \"up to date\" for a sync\n"
	"that found nothing new (\"first kept sync\" once a prune made it the first: its counts\n"
	"are then its whole snapshot). 'projsync log SYNC_ID' lists a sync's commits.\n"
	"--before SYNC_ID lists only the syncs older than SYNC_ID: the next page after one\n"
	"whose last row is SYNC_ID (the API's 'before'). --json prints a bare array of sync\n"
	"objects.\n";

static const char log_usage[] =
	"usage: projsync log SYNC_ID [--limit N] [--json]\n"
	"\n"
	"Lists the commits a succeeded sync brought: those of its head that the commit of the\n"
	"project's previous succeeded sync does not reach, newest first, as 'git log PREV..HEAD'\n"
	"(after a force-push: the new head's commits the old one lacks). A first sync lists its\n"
	"head commit only. At most 250 commits are kept per sync; a note on stderr says when the\n"
	"list is not complete. --limit N prints the first N. --json prints a bare array of\n"
	"commit objects {\"sha\", \"parents\", \"subject\", \"message\", \"author\", \"committer\"}.\n";

static const char changes_usage[] =
	"usage: projsync changes SYNC_ID [--patch] [--stat] [--full-index] [--json]\n"
	"\n"
	"Lists what a succeeded sync changed compared with the project's previous succeeded sync\n"
	"(for the first sync: everything is added). One line per path, like git diff --name-status:\n"
	"  A path   added          M path   modified       D path   deleted\n"
	"  R old -> new   renamed  T path   type changed (file, symlink, submodule)\n"
	"--json prints a bare array of change objects.\n"
	"--patch prints the content diff as 'git diff' does (hunks, modes, blob ids, renames,\n"
	"binary files); --stat prints 'git diff --stat'. With --json either prints\n"
	"{\"from\", \"to\", \"truncated\", \"files\"} (see docs/api.md). --full-index prints whole\n"
	"blob ids in 'index' lines (git's --full-index; by default 7 digits).\n";

static const char diff_usage[] =
	"usage: projsync diff SYNC_A SYNC_B [--patch] [--stat] [--full-index] [--json] [PATH...]\n"
	"\n"
	"Lists the changes from succeeded sync SYNC_A to succeeded sync SYNC_B of one project,\n"
	"in the format of 'projsync changes'. --json prints a bare array of change objects.\n"
	"--patch prints the content diff as 'git diff' does; --stat prints 'git diff --stat'.\n"
	"--full-index prints whole blob ids in 'index' lines (git's --full-index; by default 7\n"
	"digits). PATH restricts the output to those files or directories, relative to the\n"
	"repository root ('.' for all).\n";

static const char files_usage[] =
	"usage: projsync files NAME [PREFIX] [--at SYNC_ID] [--json]\n"
	"\n"
	"Lists the files of a project's snapshot (the latest, or the one of succeeded sync\n"
	"SYNC_ID), sorted by path, restricted to paths starting with PREFIX. Columns: mode, type\n"
	"(blob or commit for submodules), sha, size, path. --json prints a bare array of file\n"
	"objects {\"path\", \"mode\", \"type\", \"sha\", \"size\"}.\n";

static const char cat_usage[] =
	"usage: projsync cat NAME PATH [--at SYNC_ID]\n"
	"\n"
	"Writes the content of PATH in a project's snapshot (the latest, or the one of succeeded\n"
	"sync SYNC_ID) to stdout, byte for byte. A symbolic link prints its target.\n";

enum { OPT_JSON = 0x100, OPT_LIMIT, OPT_AT, OPT_PATCH, OPT_STAT, OPT_FULL_INDEX, OPT_BEFORE };

static const struct option diff_opts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "patch", no_argument, NULL, OPT_PATCH },
	{ "stat", no_argument, NULL, OPT_STAT },
	{ "full-index", no_argument, NULL, OPT_FULL_INDEX },
	{ 0 },
};

static const struct option json_only[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ 0 },
};

/* Parses options of `longopts` (--json, --limit, --at) and checks the positional count is
 * within [min, max]. Returns -1 to go on, else the exit code. */
static int parse_args(struct ps_cli *cli, int argc, char **argv, const struct option *longopts,
		      const char *usage, int min, int max, const char *what, int64_t *limit,
		      int64_t *at)
{
	int c;

	while ((c = ps_cli_getopt(cli, argc, argv, longopts, usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		case OPT_PATCH: cli->patch = true; break;
		case OPT_STAT: cli->stat = true; break;
		case OPT_FULL_INDEX: cli->full_index = true; break;
		case OPT_LIMIT:
			if (!ps_cli_parse_id(optarg, limit))
				return ps_cli_usage_error(cli, "invalid --limit '%s': give a positive "
							  "number", optarg);
			break;
		case OPT_AT:
		case OPT_BEFORE:
			/* --before (history's page cursor) fills the same slot: no command takes both. */
			if (!ps_cli_parse_id(optarg, at))
				return ps_cli_usage_error(cli, "invalid %s '%s': give a sync id",
							  c == OPT_AT ? "--at" : "--before", optarg);
			break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < min)
		return ps_cli_usage_error(cli, "%s needs %s", cli->command, what);
	if (argc - optind > max)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + max]);
	return -1;
}

static int open_project(struct ps_cli *cli, const char *name, struct ps_project **p)
{
	int rc;

	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, name, p)) < 0)
		return rc;
	return 0;
}

/* Lets the store mark dead syncs interrupted. A read-only store cannot; that is fine for a
 * query, which then shows the sync as the store has it. */
static int reap(struct ps_cli *cli, int64_t project_id)
{
	int rc = ps_store_reap(cli->store, project_id, NULL);

	if (rc == PS_ESTORE) {
		ps_error_clear();
		return 0;
	}
	return rc;
}

static void format_counts(const struct ps_sync *s, bool unicode_arrow, char *out, size_t len)
{
	snprintf(out, len, "+%" PRId64 " ~%" PRId64 " -%" PRId64 " %s%" PRId64 ", %" PRId64 " %s",
		 s->counts.added, s->counts.modified, s->counts.deleted,
		 unicode_arrow ? "→" : "->", s->counts.renamed, s->counts.files,
		 s->counts.files == 1 ? "file" : "files");
}

/* How long the sync ran, into `out`; "-" for one that never started (queued, or cancelled
 * before a worker claimed it: no started_at), whose time in the queue is no run time. */
static void sync_duration(const struct ps_sync *s, char *out, size_t len)
{
	int64_t end = s->finished_at ? s->finished_at : ps_now_ms();

	if (!s->started_at) {
		snprintf(out, len, "-");
		return;
	}
	ps_format_duration(end - s->started_at, out, len);
}

/* ---- status ---- */

/* Widest subject a table shows, in characters (a longer one ends in "..."). */
#define SUBJECT_COLUMN 40

/* The head commit's subject cut to SUBJECT_COLUMN characters (UTF-8 aware), "" if unknown. */
static void short_subject(const struct ps_commit *c, char *out, size_t len)
{
	const char *sub = c && c->subject ? c->subject : "";
	size_t i = 0, chars = 0;

	while (sub[i] && chars < SUBJECT_COLUMN) {
		i++;
		while (((unsigned char)sub[i] & 0xc0) == 0x80)
			i++;
		chars++;
	}
	if (sub[i] && i >= 3) {
		/* Room for "...": drop the last characters. */
		size_t cut = i;
		for (int k = 0; k < 3 && cut > 0; k++) {
			cut--;
			while (cut > 0 && ((unsigned char)sub[cut] & 0xc0) == 0x80)
				cut--;
		}
		snprintf(out, len, "%.*s...", (int)cut, sub);
	} else {
		snprintf(out, len, "%.*s", (int)i, sub);
	}
}

static void print_head_commit(const struct ps_sync *s)
{
	const struct ps_commit *c = s ? s->head_commit : NULL;
	char when[32];

	if (!c)
		return;
	ps_cli_format_time(c->author.date, when, sizeof(when));
	char *subject = ps_cli_printable(c->subject), *name = ps_cli_printable(c->author.name),
	     *email = ps_cli_printable(c->author.email);
	printf("%-16s %s %s\n%-16s %s <%s>, %s\n", "head commit:", s->commit, subject, "", name,
	       email, when);
	free(subject);
	free(name);
	free(email);
}

/* "up to date", and for a row that stands for a run of scheduled checks how many and when:
 * "up to date, checked 360 times, 2026-11-30 10:02–11:02". */
static char *up_to_date_note(const struct ps_sync *s)
{
	char first[32], last[32];

	/* A prune made it the first sync of the history: its counts are now its whole snapshot
	 * (+N, what `changes` lists for it), and "up to date" beside them read as a contradiction. */
	if (ps_sync_first_kept(s))
		return ps_strdup("first kept sync; up to date when it ran");
	if (s->checks <= 1)
		return ps_strdup("up to date");
	if (!s->finished_at) /* times not known (a sync read from a server's JSON) */
		return ps_asprintf("up to date, checked %" PRId64 " times", s->checks);
	ps_cli_format_time(s->first_check_at ? s->first_check_at : s->finished_at, first,
			   sizeof(first));
	ps_cli_format_time(s->finished_at, last, sizeof(last));
	/* The same day: the second time without its date. */
	bool same_day = strlen(first) == 16 && strlen(last) == 16 && memcmp(first, last, 11) == 0;
	return ps_asprintf("up to date, checked %" PRId64 " times, %s\u2013%s", s->checks, first,
			   same_day ? last + 11 : last);
}

static void print_sync_line(const char *label, const struct ps_sync *s)
{
	char sha[8], ago[32], counts[160], took[32];

	if (!s) {
		printf("%-16s none\n", label);
		return;
	}
	ps_cli_short_sha(s->commit, sha);
	sync_duration(s, took, sizeof(took));
	switch (s->status) {
	case PS_SYNC_QUEUED:
		ps_cli_format_ago(s->created_at, ago, sizeof(ago));
		printf("%-16s #%" PRId64 " queued %s\n", label, s->id, ago);
		break;
	case PS_SYNC_RUNNING:
		ps_cli_format_ago(s->started_at, ago, sizeof(ago));
		printf("%-16s #%" PRId64 " running, phase %s, started %s\n", label, s->id,
		       ps_phase_name(s->phase), ago);
		break;
	case PS_SYNC_SUCCEEDED: {
		/* An empty repository has no commit: "at -" said nothing; sync's words. */
		char where[32];
		snprintf(where, sizeof(where), s->commit && s->commit[0] ? "at %s"
			 : "at an empty repository", sha);
		ps_cli_format_ago(s->finished_at, ago, sizeof(ago));
		format_counts(s, true, counts, sizeof(counts));
		if (s->up_to_date) {
			char *note = up_to_date_note(s);
			printf("%-16s #%" PRId64 " succeeded %s %s (%s), %s (%s)\n", label, s->id,
			       ago, where, note, counts, took);
			free(note);
		} else {
			printf("%-16s #%" PRId64 " succeeded %s %s, %s (%s)\n", label, s->id, ago,
			       where, counts, took);
		}
		break;
	}
	case PS_SYNC_FAILED:
	case PS_SYNC_CANCELLED:
		ps_cli_format_ago(s->finished_at, ago, sizeof(ago));
		printf("%-16s #%" PRId64 " %s %s in %s", label, s->id, ps_sync_status_name(s->status),
		       ago, ps_phase_name(s->phase));
		if (s->error_message) {
			/* Words of the source (a remote's answer) can be in it. */
			char *msg = ps_cli_printable(s->error_message);
			printf(": %s", msg);
			free(msg);
		}
		putchar('\n');
		break;
	}
}

int ps_cmd_status(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_project *p = NULL;
	struct ps_project_status st = { 0 };
	int rc;

	if ((rc = parse_args(cli, argc, argv, json_only, status_usage, 1, 1, "a project NAME",
			     NULL, NULL)) >= 0)
		return rc;
	if ((rc = open_project(cli, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	if ((rc = reap(cli, p->id)) < 0 || (rc = ps_project_status_load(cli->store, p, &st)) < 0) {
		ps_project_free(p);
		return ps_cli_fail(rc);
	}
	if (cli->json) {
		ps_cli_print_json(ps_project_status_to_json(p, &st));
	} else {
		char *source = ps_redact_userinfo(p->source);
		printf("%-16s %s (%s, branch %s)\n", "project:", p->name, source,
		       p->branch ? p->branch : "default");
		free(source);
		print_sync_line("running:", st.running);
		print_sync_line("last succeeded:", st.last_succeeded);
		print_head_commit(st.last_succeeded);
		print_sync_line("last sync:", st.last_sync);
		if (p->failures_in_row > 0)
			printf("%-16s %" PRId64 " failed in a row, last: %s\n", "failures:",
			       p->failures_in_row,
			       p->last_error_message ? p->last_error_message : "-");
		if (p->paused) {
			char when[32];
			ps_cli_format_time(p->paused_at, when, sizeof(when));
			printf("%-16s paused since %s: %s (resume: projsync project resume %s)\n",
			       "state:", when, p->paused_reason ? p->paused_reason : "", p->name);
		} else if (ps_schedule_on(p) && p->next_sync_at) {
			char every[32], when[32];
			ps_schedule_every_string(p, every, sizeof(every));
			ps_cli_format_time(p->next_sync_at, when, sizeof(when));
			printf("%-16s every %s, next at %s\n", "schedule:", every, when);
		}
	}
	ps_project_status_dispose(&st);
	ps_project_free(p);
	return PS_EXIT_OK;
}

/* ---- history ---- */

int ps_cmd_history(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "before", required_argument, NULL, OPT_BEFORE },
		{ 0 },
	};
	static const char *const headers[] = { "ID", "STATUS", "PHASE", "BRANCH", "COMMIT",
		"SUBJECT", "ADD", "MOD", "DEL", "REN", "STARTED", "DURATION", "TRIGGER", "NOTE" };
	struct ps_project *p = NULL;
	struct ps_sync **syncs = NULL;
	size_t n = 0;
	int64_t limit = 0, before = 0;
	int rc, exit_code = PS_EXIT_OK;

	if ((rc = parse_args(cli, argc, argv, opts, history_usage, 1, 1, "a project NAME", &limit,
			     &before)) >= 0)
		return rc;
	if ((rc = open_project(cli, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	if ((rc = reap(cli, p->id)) < 0 ||
	    (rc = ps_store_sync_list(cli->store, p->id, limit, before, &syncs, &n)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, ps_sync_to_json(syncs[i]));
		ps_cli_print_json(arr);
	} else if (n == 0 && before) {
		printf("no syncs of %s before sync %" PRId64 "\n", p->name, before);
	} else if (n == 0) {
		printf("no syncs of %s yet: run 'projsync sync %s'\n", p->name, p->name);
	} else {
		struct ps_table t;
		ps_table_init(&t, 14, headers);
		t.right_align = 1u << 0 | 1u << 6 | 1u << 7 | 1u << 8 | 1u << 9 | 1u << 11;
		for (size_t i = 0; i < n; i++) {
			const struct ps_sync *s = syncs[i];
			char id[24], sha[8], a[24], m[24], d[24], r[24], started[32], took[32];
			char subject[SUBJECT_COLUMN + 4];
			char *err = NULL;

			short_subject(s->head_commit, subject, sizeof(subject));
			snprintf(id, sizeof(id), "%" PRId64, s->id);
			ps_cli_short_sha(s->commit, sha);
			snprintf(a, sizeof(a), "%" PRId64, s->counts.added);
			snprintf(m, sizeof(m), "%" PRId64, s->counts.modified);
			snprintf(d, sizeof(d), "%" PRId64, s->counts.deleted);
			snprintf(r, sizeof(r), "%" PRId64, s->counts.renamed);
			ps_cli_format_time(s->started_at ? s->started_at : s->created_at, started,
					   sizeof(started));
			sync_duration(s, took, sizeof(took));
			if (s->error_code || s->error_message)
				err = ps_strdup(s->error_message ? s->error_message : s->error_code);
			else if (s->up_to_date)
				err = up_to_date_note(s);
			ps_table_add(&t, (const char *const[]){ id, ps_sync_status_name(s->status),
				     ps_phase_name(s->phase),
				     s->branch && s->branch[0] ? s->branch : "(default)", sha, subject,
				     a, m, d, r,
				     started, took,
				     s->trigger, err ? err : "" });
			free(err);
		}
		ps_table_print(&t, stdout);
		ps_table_dispose(&t);
	}
cleanup:
	for (size_t i = 0; i < n; i++)
		ps_sync_free(syncs[i]);
	free(syncs);
	ps_project_free(p);
	return exit_code;
}

/* ---- changes and diff ---- */

static void print_changes(struct ps_cli *cli, const struct ps_change *cs, size_t n)
{
	static const char letters[] = { 'A', 'M', 'D', 'R', 'T' };

	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, ps_change_to_json(&cs[i]));
		ps_cli_print_json(arr);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *path = ps_cli_quote_path(cs[i].path);
		if (cs[i].status == PS_CHANGE_RENAMED) {
			char *old = ps_cli_quote_path(cs[i].previous_path ? cs[i].previous_path : "");
			printf("R %s -> %s\n", old, path);
			free(old);
		} else {
			printf("%c %s\n", letters[cs[i].status], path);
		}
		free(path);
	}
}

static void free_changes(struct ps_change *cs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ps_change_dispose(&cs[i]);
	free(cs);
}

/* Loads sync `arg`: a usage error for a malformed id, not found for an unknown one. Returns
 * -1 with *out set, else the exit code (error printed). */
static int load_sync(struct ps_cli *cli, const char *arg, struct ps_sync **out)
{
	int64_t id;
	int rc;

	if (!ps_cli_parse_id(arg, &id))
		return ps_cli_usage_error(cli, "invalid sync id '%s': give a positive number", arg);
	if ((rc = ps_cli_open_store(cli, 0)) < 0)
		return ps_cli_fail(rc);
	if ((rc = ps_store_sync_get(cli->store, id, out)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, NULL, "sync %" PRId64 " not found", id);
		return ps_cli_fail(rc);
	}
	return -1;
}

int ps_cmd_changes(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_sync *s = NULL, *prev = NULL;
	struct ps_change *cs = NULL;
	size_t n = 0;
	int rc, exit_code;

	if ((rc = parse_args(cli, argc, argv, diff_opts, changes_usage, 1, 1, "a SYNC_ID", NULL,
			     NULL)) >= 0)
		return rc;
	if ((rc = load_sync(cli, argv[optind], &s)) >= 0)
		return rc;
	if (s->status != PS_SYNC_SUCCEEDED) {
		ps_error_set(PS_ECONFLICT, "not_succeeded", "sync %" PRId64 " of %s is %s: only a "
			     "succeeded sync has changes", s->id, s->project,
			     ps_sync_status_name(s->status));
		exit_code = ps_cli_fail(PS_ECONFLICT);
		goto cleanup;
	}
	/* The previous succeeded sync of the project; none before the first (diff vs empty).
	 * at_or_before = 0 would mean "the latest", so sync 1 is handled apart. */
	if (s->id > 1) {
		rc = ps_store_sync_last_succeeded(cli->store, s->project_id, s->id - 1, &prev);
		if (rc < 0 && rc != PS_ENOTFOUND) {
			exit_code = ps_cli_fail(rc);
			goto cleanup;
		}
	}
	if (cli->patch || cli->stat) {
		exit_code = ps_cli_print_patch(cli, s->project_id, prev ? prev->id : 0, s->id,
					       NULL, 0);
		goto cleanup;
	}
	if ((rc = ps_store_diff(cli->store, s->project_id, prev ? prev->id : 0, s->id, &cs,
				&n)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	print_changes(cli, cs, n);
	exit_code = PS_EXIT_OK;
cleanup:
	free_changes(cs, n);
	ps_sync_free(prev);
	ps_sync_free(s);
	return exit_code;
}

int ps_cmd_diff(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_sync *a = NULL, *b = NULL;
	struct ps_change *cs = NULL;
	const char *const *paths;
	size_t n = 0, npaths;
	int rc, exit_code;

	if ((rc = parse_args(cli, argc, argv, diff_opts, diff_usage, 2, argc, "SYNC_A and SYNC_B",
			     NULL, NULL)) >= 0)
		return rc;
	paths = (const char *const *)argv + optind + 2;
	npaths = (size_t)(argc - optind - 2);
	for (size_t i = 0; i < npaths; i++) {
		const char *why = ps_patch_path_problem(paths[i]);
		if (why)
			return ps_cli_usage_error(cli, "invalid path '%s': %s", paths[i], why);
	}
	if ((rc = load_sync(cli, argv[optind], &a)) >= 0)
		return rc;
	if ((rc = load_sync(cli, argv[optind + 1], &b)) >= 0) {
		ps_sync_free(a);
		return rc;
	}
	if (a->project_id != b->project_id) {
		exit_code = ps_cli_usage_error(cli, "sync %" PRId64 " is of project %s and sync %"
					       PRId64 " of project %s: compare syncs of one project",
					       a->id, a->project, b->id, b->project);
		goto cleanup;
	}
	if (a->status != PS_SYNC_SUCCEEDED || b->status != PS_SYNC_SUCCEEDED) {
		const struct ps_sync *bad = a->status != PS_SYNC_SUCCEEDED ? a : b;
		ps_error_set(PS_ECONFLICT, "not_succeeded", "sync %" PRId64 " of %s is %s: only a "
			     "succeeded sync has a snapshot", bad->id, bad->project,
			     ps_sync_status_name(bad->status));
		exit_code = ps_cli_fail(PS_ECONFLICT);
		goto cleanup;
	}
	if (cli->patch || cli->stat) {
		exit_code = ps_cli_print_patch(cli, a->project_id, a->id, b->id, paths, npaths);
		goto cleanup;
	}
	if ((rc = ps_store_diff(cli->store, a->project_id, a->id, b->id, &cs, &n)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (npaths) {
		size_t kept = 0;
		for (size_t i = 0; i < n; i++) {
			if (ps_patch_change_matches(&cs[i], paths, npaths))
				cs[kept++] = cs[i];
			else
				ps_change_dispose(&cs[i]);
		}
		n = kept;
	}
	print_changes(cli, cs, n);
	exit_code = PS_EXIT_OK;
cleanup:
	free_changes(cs, n);
	ps_sync_free(a);
	ps_sync_free(b);
	return exit_code;
}

/* ---- files and cat ---- */

/*
 * The succeeded sync whose snapshot to read: `at` if given (it must be a succeeded sync of
 * `p`), else the project's last succeeded one. Returns -1 with *out set, else the exit code.
 */
static int resolve_snapshot(struct ps_cli *cli, const struct ps_project *p, int64_t at,
			    int64_t *out)
{
	struct ps_sync *s = NULL;
	int rc;

	if (at == 0) {
		if (p->last_sync_id <= 0) {
			ps_error_set(PS_ENOTFOUND, "no_snapshot", "project %s has no snapshot yet: "
				     "run 'projsync sync %s'", p->name, p->name);
			return ps_cli_fail(PS_ENOTFOUND);
		}
		*out = p->last_sync_id;
		return -1;
	}
	if ((rc = ps_store_sync_get(cli->store, at, &s)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, NULL, "sync %" PRId64 " not found", at);
		return ps_cli_fail(rc);
	}
	if (s->project_id != p->id) {
		ps_error_set(PS_ENOTFOUND, NULL, "sync %" PRId64 " is not a sync of project %s",
			     at, p->name);
		rc = PS_ENOTFOUND;
	} else if (s->status != PS_SYNC_SUCCEEDED) {
		ps_error_set(PS_ECONFLICT, "not_succeeded", "sync %" PRId64 " of %s is %s: only a "
			     "succeeded sync has a snapshot", at, p->name,
			     ps_sync_status_name(s->status));
		rc = PS_ECONFLICT;
	}
	ps_sync_free(s);
	if (rc < 0)
		return ps_cli_fail(rc);
	*out = at;
	return -1;
}

struct files_out {
	bool json;
	size_t n;
};

static int print_file(void *ud, const struct ps_file *f)
{
	struct files_out *o = ud;

	if (o->json) {
		json_t *j = ps_file_to_json(f);
		fputs(o->n ? "," : "", stdout);
		json_dumpf(j, stdout, JSON_COMPACT);
		json_decref(j);
	} else {
		char mode[8], size[24];
		char *path = ps_cli_quote_path(f->path);
		ps_mode_string(f->mode, mode);
		if (f->size >= 0)
			snprintf(size, sizeof(size), "%" PRId64, f->size);
		else
			snprintf(size, sizeof(size), "-");
		printf("%s %-6s %s %9s  %s\n", mode, ps_mode_type(f->mode), f->sha, size, path);
		free(path);
	}
	o->n++;
	return 0;
}

int ps_cmd_files(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "at", required_argument, NULL, OPT_AT },
		{ 0 },
	};
	struct ps_project *p = NULL;
	struct files_out o = { 0 };
	int64_t at = 0, snapshot;
	int rc, exit_code;

	if ((rc = parse_args(cli, argc, argv, opts, files_usage, 1, 2, "a project NAME", NULL,
			     &at)) >= 0)
		return rc;
	/* A prefix with a leading '/' matches no stored path: it listed nothing, without a word. */
	if (argc - optind > 1 && argv[optind + 1][0] == '/')
		return ps_cli_usage_error(cli, "invalid prefix '%s': %s", argv[optind + 1],
					  ps_patch_path_problem(argv[optind + 1]));
	if ((rc = open_project(cli, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	if ((exit_code = resolve_snapshot(cli, p, at, &snapshot)) >= 0)
		goto cleanup;
	o.json = cli->json;
	/* Streamed, so a snapshot of a million files does not sit in memory as JSON. */
	if (o.json)
		fputc('[', stdout);
	rc = ps_store_snapshot_each(cli->store, p->id, snapshot,
				    argc - optind > 1 ? argv[optind + 1] : NULL, print_file, &o);
	if (o.json)
		fputs("]\n", stdout);
	exit_code = rc < 0 ? ps_cli_fail(rc) : PS_EXIT_OK;
cleanup:
	ps_project_free(p);
	return exit_code;
}

int ps_cmd_cat(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "at", required_argument, NULL, OPT_AT },
		{ 0 },
	};
	struct ps_project *p = NULL;
	struct ps_file f = { 0 };
	void *data = NULL;
	size_t len = 0;
	int64_t at = 0, snapshot;
	const char *path;
	int rc, exit_code;

	if ((rc = parse_args(cli, argc, argv, opts, cat_usage, 2, 2, "NAME and PATH", NULL,
			     &at)) >= 0)
		return rc;
	path = argv[optind + 1];
	if ((rc = open_project(cli, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	if ((exit_code = resolve_snapshot(cli, p, at, &snapshot)) >= 0)
		goto cleanup;
	if ((rc = ps_store_snapshot_file(cli->store, p->id, snapshot, path, &f)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, NULL, "%s: no such file in %s at sync %" PRId64, path,
				     p->name, snapshot);
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (f.mode == PS_MODE_COMMIT) {
		/* The API answers 422: the path names something that has no content. */
		ps_error_set(PS_EINVAL, "submodule", "%s is a submodule (commit %s): it has no "
			     "content", path, f.sha);
		exit_code = ps_cli_fail(PS_EINVAL);
		goto cleanup;
	}
	if ((rc = ps_project_blob_get(cli->store, p, f.sha, f.size, &data, &len)) < 0) {
		/* The file exists, so its missing content is never "not found" but the API's
		 * answer for it: over the size limit 422 (exit 2), a lost blob a store fault
		 * (500, exit 1), kept as metadata under a lower limit that has since been raised
		 * (or lost: not known) 409 (exit 4: the next sync fetches it). */
		if (rc == PS_ENOTFOUND) {
			rc = ps_project_content_missing(cli->store, p, snapshot, &f);
			exit_code = ps_cli_fail(rc);
			if (rc == PS_ETOOBIG)
				exit_code = PS_EXIT_USAGE;
		} else {
			exit_code = ps_cli_fail(rc);
		}
		goto cleanup;
	}
	if ((len && fwrite(data, 1, len, stdout) != len) || fflush(stdout) != 0) {
		ps_error_set(PS_EIO, NULL, "writing %s to stdout failed", path);
		exit_code = ps_cli_fail(PS_EIO);
		goto cleanup;
	}
	exit_code = PS_EXIT_OK;
cleanup:
	free(data);
	ps_file_dispose(&f);
	ps_project_free(p);
	return exit_code;
}

/* ---- log ---- */

/* git's default date format ("Thu Apr 14 16:00:49 2011 +0000"), in UTC: zones are not kept. */
static void git_date(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%a %b %e %H:%M:%S %Y +0000", &tm);
}

/* git log's medium format: header lines, the message indented by four spaces. */
static void print_commit(const struct ps_commit *c, bool first)
{
	const char *m = c->message ? c->message : "";
	char when[64];

	if (!first)
		putchar('\n');
	printf("commit %s\n", c->sha);
	if (c->parents && strchr(c->parents, ' ')) {
		printf("Merge:");
		for (const char *p = c->parents; *p;) {
			size_t n = strcspn(p, " ");
			printf(" %.*s", (int)(n < 7 ? n : 7), p);
			p += n;
			p += strspn(p, " ");
		}
		putchar('\n');
	}
	git_date(c->author.date, when, sizeof(when));
	/* Repository text, shown on a terminal: no control character reaches it (cli.h). */
	char *name = ps_cli_printable(c->author.name), *email = ps_cli_printable(c->author.email),
	     *text = ps_cli_printable_text(m);
	printf("Author: %s <%s>\nDate:   %s\n\n", name, email, when);
	free(name);
	free(email);
	m = text;
	/* git drops the message's leading blank lines and its trailing ones. */
	while (*m == '\n')
		m++;
	size_t len = strlen(m);
	while (len > 0 && (m[len - 1] == '\n' || m[len - 1] == ' '))
		len--;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(m + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (m + i)) : len - i;
		if (n)
			printf("    %.*s\n", (int)n, m + i);
		else
			putchar('\n');
		i += n + 1;
	}
	free(text);
}

int ps_cmd_log(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ 0 },
	};
	struct ps_sync *s = NULL;
	struct ps_commit *v = NULL;
	size_t n = 0;
	int64_t limit = 0;
	int rc, exit_code = PS_EXIT_OK;

	if ((rc = parse_args(cli, argc, argv, opts, log_usage, 1, 1, "a SYNC_ID", &limit,
			     NULL)) >= 0)
		return rc;
	if ((rc = load_sync(cli, argv[optind], &s)) >= 0)
		return rc;
	if (s->status != PS_SYNC_SUCCEEDED) {
		ps_error_set(PS_ECONFLICT, "not_succeeded", "sync %" PRId64 " of %s is %s: only a "
			     "succeeded sync has commits", s->id, s->project,
			     ps_sync_status_name(s->status));
		exit_code = ps_cli_fail(PS_ECONFLICT);
		goto cleanup;
	}
	if ((rc = ps_store_sync_commits(cli->store, s->id, limit, &v, &n)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, ps_commit_to_json(&v[i], true));
		ps_cli_print_json(arr);
	} else {
		for (size_t i = 0; i < n; i++)
			print_commit(&v[i], i == 0);
	}
	/* What the list is not, on stderr: the list itself stays clean for a pipe. */
	if (n == 0 && !s->commit)
		/* A succeeded sync knows its head; none means the repository had no commit. */
		fprintf(stderr, "projsync: sync %" PRId64 " found the repository empty: no commit "
			"yet\n", s->id);
	else if (s->up_to_date)
		fprintf(stderr, "projsync: sync %" PRId64 " found the head unchanged: no new "
			"commits\n", s->id);
	else if (n == 0 && s->commit_count == 0 && s->head_commit)
		fprintf(stderr, "projsync: no new commits: the head of sync %" PRId64 " is one sync "
			"%" PRId64 "'s commit already reached\n", s->id, s->base_sync_id);
	else if (!s->head_commit && n == 0)
		fprintf(stderr, "projsync: sync %" PRId64 " has no commits recorded (synced before "
			"projsync recorded them, or the source could not list them)\n", s->id);
	else if (!s->base_sync_id)
		fprintf(stderr, "projsync: sync %" PRId64 " is the project's first: only its head "
			"commit is listed\n", s->id);
	else if (s->commits_truncated && s->commit_count >= 0)
		fprintf(stderr, "projsync: %" PRId64 " commits since sync %" PRId64 "; the first "
			"%d are kept\n", s->commit_count, s->base_sync_id, PS_COMMITS_MAX);
	else if (s->commits_truncated)
		fprintf(stderr, "projsync: the list may be incomplete: the source could not show "
			"every commit since sync %" PRId64 " (history rewritten or not fetched)\n",
			s->base_sync_id);
cleanup:
	ps_commits_free(v, n);
	ps_sync_free(s);
	return exit_code;
}
