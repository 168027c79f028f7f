/*
 * `projsync checkout NAME DIR [--at SYNC_ID] [--force] [--json]`: mirror a snapshot into a
 * folder (core/checkout.c does the work). Prints one summary line, or with --json one object:
 *   {"project", "sync_id", "from_sync_id" (null for a full write), "dir", "full", "written",
 *    "deleted", "skipped", "failed", "missing", "unchanged", "total", "skipped_paths": [...],
 *    "skipped_files": [{"path", "reason", "may_be_lost"}], "failures": [{"path", "reason",
 *    "lost"}], "discarded": [{"path", "change"}]}
 * A skipped file's "reason" is the warning's words, "may_be_lost" whether its content may have
 * been lost rather than kept out by the limit; a failure's "lost" marks the files counted in
 * "missing".
 * Files whose content is not stored (over the project's size limit), entries the file system
 * refused on their own, and local changes --force discarded are warnings on stderr: the
 * checkout itself succeeds. Files whose content the store lost ("missing", also failures) are
 * written nowhere and make it fail (exit 1, blob_missing) after the rest is written: the
 * folder is not the snapshot, and a script must not take it for one.
 *
 * SIGINT/SIGTERM stop the checkout before its next entry (core/checkout.h): the folder keeps a
 * manifest that the next run finishes from, no temporary file, and the exit code is the
 * shell's for that signal (130, 143), also when it comes while planning and the plan found
 * local changes. One that comes after the last entry is written is not heeded (exit 0). A
 * second signal kills at once.
 *
 * Refused for local changes (exit 4), the changes are listed on stdout, one per line as
 * "CHANGE PATH" (CHANGE: modified, deleted, type_changed, mode_changed, untracked), or with
 * --json as {"conflicts": [{"path", "change"}]}; the error is the usual one line on stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "core/checkout.h"
#include "model/json.h"
#include "util/error.h"

#define MAX_SKIP_WARNINGS 20 /* then one line with the rest's count */

static const char checkout_usage[] =
	"usage: projsync checkout NAME DIR [--at SYNC_ID] [--force] [--json]\n"
	"\n"
	"Mirrors the snapshot of the last succeeded sync (or of SYNC_ID) into DIR, creating it\n"
	"if needed. DIR must be new, empty, or a checkout of NAME: it remembers what it holds in\n"
	"DIR/.projsync-checkout; running again applies only what changed since, and --at an\n"
	"older sync rolls DIR back. Local changes to what checkout wrote (modified, deleted,\n"
	"type or executable bit changed) and files of yours at snapshot paths are listed and\n"
	"refuse the checkout (exit 4); --force discards them and restores the snapshot. Other\n"
	"files in DIR are left alone. Files whose content is not stored (over the project's\n"
	"size limit) are skipped with a warning; files whose content the store lost are not\n"
	"written either, and fail the checkout (exit 1) once the rest is written.\n"
	"\n"
	"Ctrl-C stops before the next file (exit 130); running again finishes the checkout.\n"
	"\n"
	"  --at SYNC_ID   check out this succeeded sync instead of the latest\n"
	"  --force        discard local changes; also write into a non-empty folder\n"
	"  --json         print the result as JSON (skipped_files marks a file whose content\n"
	"                 may have been lost: may_be_lost; failures mark lost files: lost)\n";

/* The signal that asked the checkout to stop, for the exit code; 0 = none. */
static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
	caught = sig;
	ps_checkout_interrupt();
}

static json_t *changes_to_json(const struct ps_checkout_stats *st)
{
	json_t *a = json_array();

	for (size_t i = 0; i < st->nchanges; i++)
		json_array_append_new(a, json_pack("{s:o, s:s}",
						   "path", ps_json_string(st->changes[i].path),
						   "change",
						   ps_checkout_change_name(st->changes[i].change)));
	return a;
}

/* Whether skipped file i is within today's size limit: then it was either over the limit when
 * it was synced or its blob was lost since, and no row says which. */
static bool skipped_unsure(const struct ps_checkout_stats *st, size_t i)
{
	return st->skipped_unsure && st->skipped_unsure[i];
}

/* cat's not_fetched words for a file within today's limit. */
static const char *skipped_reason(bool unsure)
{
	return unsure ? "over the project's size limit when it was synced, or lost since"
		      : "over the project's size limit";
}

static json_t *stats_to_json(const char *project, const char *dir,
			     const struct ps_checkout_stats *st)
{
	json_t *skipped = json_array(), *files = json_array(), *failures = json_array();

	for (size_t i = 0; i < st->skipped_paths.n; i++) {
		bool unsure = skipped_unsure(st, i);
		json_array_append_new(skipped, ps_json_string(st->skipped_paths.v[i]));
		json_array_append_new(files, json_pack("{s:o, s:s, s:b}", "path",
						       ps_json_string(st->skipped_paths.v[i]),
						       "reason", skipped_reason(unsure),
						       "may_be_lost", unsure));
	}
	for (size_t i = 0; i < st->nfailures; i++)
		json_array_append_new(failures, json_pack("{s:o, s:s, s:b}", "path",
							  ps_json_string(st->failures[i].path),
							  "reason", st->failures[i].reason,
							  "lost", st->failures[i].lost));
	return json_pack("{s:o, s:I, s:o, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, "
			 "s:o, s:o}",
			 "project", ps_json_string(project),
			 "sync_id", (json_int_t)st->sync_id,
			 "from_sync_id", st->from_sync_id ? json_integer(st->from_sync_id)
							  : json_null(),
			 "dir", ps_json_string(dir),
			 "full", st->full,
			 "written", (json_int_t)st->written,
			 "deleted", (json_int_t)st->deleted,
			 "skipped", (json_int_t)st->skipped,
			 "failed", (json_int_t)st->failed,
			 "missing", (json_int_t)st->missing,
			 "unchanged", (json_int_t)st->unchanged,
			 "total", (json_int_t)st->total,
			 "skipped_paths", skipped,
			 "skipped_files", files,
			 "failures", failures,
			 "discarded", changes_to_json(st));
}

static void warn_skipped(const struct ps_checkout_stats *st)
{
	for (size_t i = 0; i < st->skipped_paths.n && i < MAX_SKIP_WARNINGS; i++) {
		char *q = ps_cli_quote_path(st->skipped_paths.v[i]);
		fprintf(stderr, "projsync: warning: %s not written: its content is not stored "
			"(%s), ignoring\n", q, skipped_reason(skipped_unsure(st, i)));
		free(q);
	}
	if (st->skipped_paths.n > MAX_SKIP_WARNINGS)
		fprintf(stderr, "projsync: warning: %zu more files not written, ignoring\n",
			st->skipped_paths.n - MAX_SKIP_WARNINGS);
	for (size_t i = 0; i < st->nfailures && i < MAX_SKIP_WARNINGS; i++) {
		char *q = ps_cli_quote_path(st->failures[i].path);
		fprintf(stderr, "projsync: warning: %s not written: %s%s\n", q,
			st->failures[i].reason, st->failures[i].lost ? "" : ", ignoring");
		free(q);
	}
	if (st->nfailures > MAX_SKIP_WARNINGS)
		fprintf(stderr, "projsync: warning: %zu more entries not written, ignoring\n",
			st->nfailures - MAX_SKIP_WARNINGS);
	for (size_t i = 0; i < st->nchanges && i < MAX_SKIP_WARNINGS; i++) {
		char *q = ps_cli_quote_path(st->changes[i].path);
		fprintf(stderr, "projsync: warning: discarded local change (%s) %s\n",
			ps_checkout_change_name(st->changes[i].change), q);
		free(q);
	}
	if (st->nchanges > MAX_SKIP_WARNINGS)
		fprintf(stderr, "projsync: warning: %zu more local changes discarded\n",
			st->nchanges - MAX_SKIP_WARNINGS);
}

/* The local changes that refused the checkout, on stdout: they are the answer the user needs
 * to act on, while stderr keeps its one error line. */
static void print_changes(const struct ps_cli *cli, const struct ps_checkout_stats *st)
{
	if (cli->json) {
		ps_cli_print_json(json_pack("{s:o}", "conflicts", changes_to_json(st)));
		return;
	}
	for (size_t i = 0; i < st->nchanges; i++) {
		char *q = ps_cli_quote_path(st->changes[i].path);
		printf("%-13s %s\n", ps_checkout_change_name(st->changes[i].change), q);
		free(q);
	}
}

int ps_cmd_checkout(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_AT = 0x100, OPT_FORCE, OPT_JSON };
	static const struct option opts[] = {
		{ "at", required_argument, NULL, OPT_AT },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct ps_checkout_stats st = { 0 };
	struct ps_project *p = NULL;
	struct sigaction old[3];
	const char *name, *dir;
	int64_t at = 0;
	bool force = false;
	int c, rc, code;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, checkout_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_AT:
			if (!ps_cli_parse_id(optarg, &at))
				return ps_cli_usage_error(cli, "--at needs a sync id, not '%s'",
							  optarg);
			break;
		case OPT_FORCE: force = true; break;
		case OPT_JSON: cli->json = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < 2)
		return ps_cli_usage_error(cli, "checkout needs a project NAME and a folder DIR");
	if (argc - optind > 2)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 2]);
	name = argv[optind];
	dir = argv[optind + 1];
	if (!*dir)
		return ps_cli_usage_error(cli, "DIR must not be empty");

	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, name, &p)) < 0)
		return ps_cli_fail(rc);
	ps_cli_catch_signals(true, on_signal, old);
	rc = ps_checkout(cli->store, p, at, dir, force, &st);
	ps_cli_catch_signals(false, on_signal, old);
	if (rc < 0) {
		if (rc == PS_ECONFLICT && st.nchanges > 0)
			print_changes(cli, &st);
		code = ps_cli_fail(rc);
		if (rc == PS_ECANCELLED && caught)
			code = 128 + caught; /* what a shell reports for a command the signal ended */
		goto cleanup;
	}
	warn_skipped(&st);
	if (cli->json) {
		ps_cli_print_json(stats_to_json(p->name, dir, &st));
	} else {
		char *q = ps_cli_quote_path(dir);
		printf("checked out sync %lld into %s: %lld written, %lld deleted, %lld skipped",
		       (long long)st.sync_id, q, (long long)st.written, (long long)st.deleted,
		       (long long)st.skipped);
		if (st.failed > 0)
			printf(", %lld failed", (long long)st.failed);
		if (st.nchanges > 0)
			printf(", %zu local change%s discarded", st.nchanges,
			       st.nchanges == 1 ? "" : "s");
		printf("\n");
		free(q);
	}
	code = PS_EXIT_OK;
	if (st.missing > 0)
		code = ps_cli_fail(ps_error_set(PS_ESTORE, "blob_missing",
						"%lld file%s not written: content lost from the store; "
						"'projsync verify %s --blobs' lists every file that lost "
						"its content", (long long)st.missing,
						st.missing == 1 ? "" : "s", p->name));
cleanup:
	ps_checkout_stats_dispose(&st);
	ps_project_free(p);
	return code;
}
