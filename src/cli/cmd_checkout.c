/*
 * `projsync checkout NAME DIR [--at SYNC_ID] [--json]`: mirror a snapshot into a folder
 * (core/checkout.c does the work). Prints one summary line, or with --json one object:
 *   {"project", "sync_id", "from_sync_id" (null for a full write), "dir", "full", "written",
 *    "deleted", "skipped", "unchanged", "total", "skipped_paths": [...]}
 * Files whose content is not stored (over the project's size limit) are listed as warnings on
 * stderr: the checkout itself succeeds.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "core/checkout.h"
#include "core/json.h"
#include "util/error.h"

#define MAX_SKIP_WARNINGS 20 /* then one line with the rest's count */

static const char checkout_usage[] =
	"usage: projsync checkout NAME DIR [--at SYNC_ID] [--json]\n"
	"\n"
	"Mirrors the snapshot of the last succeeded sync (or of SYNC_ID) into DIR, creating it\n"
	"if needed. DIR remembers what it holds in DIR/.projsync-checkout; running again applies\n"
	"only what changed since, and --at an older sync rolls DIR back. Files in DIR that are\n"
	"not in the snapshot are left alone. Files whose content is not stored (over the\n"
	"project's size limit) are skipped with a warning.\n"
	"\n"
	"  --at SYNC_ID   check out this succeeded sync instead of the latest\n"
	"  --json         print the result as JSON\n";

static json_t *stats_to_json(const char *project, const char *dir,
			     const struct ps_checkout_stats *st)
{
	json_t *skipped = json_array();

	for (size_t i = 0; i < st->skipped_paths.n; i++)
		json_array_append_new(skipped, ps_json_string(st->skipped_paths.v[i]));
	return json_pack("{s:o, s:I, s:o, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:o}",
			 "project", ps_json_string(project),
			 "sync_id", (json_int_t)st->sync_id,
			 "from_sync_id", st->from_sync_id ? json_integer(st->from_sync_id)
							  : json_null(),
			 "dir", ps_json_string(dir),
			 "full", st->full,
			 "written", (json_int_t)st->written,
			 "deleted", (json_int_t)st->deleted,
			 "skipped", (json_int_t)st->skipped,
			 "unchanged", (json_int_t)st->unchanged,
			 "total", (json_int_t)st->total,
			 "skipped_paths", skipped);
}

static void warn_skipped(const struct ps_checkout_stats *st)
{
	for (size_t i = 0; i < st->skipped_paths.n && i < MAX_SKIP_WARNINGS; i++) {
		char *q = ps_cli_quote_path(st->skipped_paths.v[i]);
		fprintf(stderr, "projsync: warning: %s not written: its content is not stored "
			"(over the size limit), ignoring\n", q);
		free(q);
	}
	if (st->skipped_paths.n > MAX_SKIP_WARNINGS)
		fprintf(stderr, "projsync: warning: %zu more files not written, ignoring\n",
			st->skipped_paths.n - MAX_SKIP_WARNINGS);
}

int ps_cmd_checkout(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_AT = 0x100, OPT_JSON };
	static const struct option opts[] = {
		{ "at", required_argument, NULL, OPT_AT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct ps_checkout_stats st = { 0 };
	struct ps_project *p = NULL;
	const char *name, *dir;
	int64_t at = 0;
	int c, rc, code;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, checkout_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_AT:
			if (!ps_cli_parse_id(optarg, &at))
				return ps_cli_usage_error(cli, "--at needs a sync id, not '%s'",
							  optarg);
			break;
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
	rc = ps_checkout(cli->store, p, at, dir, &st);
	if (rc < 0) {
		code = ps_cli_fail(rc);
		goto cleanup;
	}
	warn_skipped(&st);
	if (cli->json) {
		ps_cli_print_json(stats_to_json(p->name, dir, &st));
	} else {
		char *q = ps_cli_quote_path(dir);
		printf("checked out sync %lld into %s: %lld written, %lld deleted, %lld skipped\n",
		       (long long)st.sync_id, q, (long long)st.written, (long long)st.deleted,
		       (long long)st.skipped);
		free(q);
	}
	code = PS_EXIT_OK;
cleanup:
	ps_checkout_stats_dispose(&st);
	ps_project_free(p);
	return code;
}
