/*
 * `projsync verify NAME [--at SYNC_ID] [--blobs] [--json]`: re-checks a stored snapshot from
 * its own rows (core/verify.h). Sound: exit 0 and one line. Not sound: the bad paths on stdout,
 * one "PATH: PROBLEM: MESSAGE" line each, a summary on stderr, exit 1. --json prints the report
 * (the same as POST /api/v1/projects/NAME/verify) with the same exit codes.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "core/verify.h"
#include "util/error.h"

static const char verify_usage[] =
	"usage: projsync verify NAME [--at SYNC_ID] [--blobs] [--json]\n"
	"\n"
	"Re-checks a project's snapshot (the latest, or the one of succeeded sync SYNC_ID) from\n"
	"the store alone: the git tree id hashed from its files must be the tree of the commit it\n"
	"was synced from, and its stored directory trees must be the ones its files make. With\n"
	"--blobs, every stored blob's content must also hash to its id (like git fsck); files kept\n"
	"as metadata only (over the size limit) have no content to check.\n"
	"\n"
	"Exit 0 and a one-line summary when the snapshot is sound; exit 1 and the bad paths (one\n"
	"\"PATH: PROBLEM: MESSAGE\" line each) when it is not.\n";

enum { OPT_JSON = 0x100, OPT_AT, OPT_BLOBS };

int ps_cmd_verify(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "at", required_argument, NULL, OPT_AT },
		{ "blobs", no_argument, NULL, OPT_BLOBS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct ps_verify_report rep;
	struct ps_project *p = NULL;
	int64_t at = 0;
	bool blobs = false;
	int c, rc;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, verify_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		case OPT_BLOBS: blobs = true; break;
		case OPT_AT:
			if (!ps_cli_parse_id(optarg, &at))
				return ps_cli_usage_error(cli, "invalid --at '%s': give a sync id",
							  optarg);
			break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < 1)
		return ps_cli_usage_error(cli, "verify needs NAME");
	if (argc - optind > 1)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	rc = ps_verify(cli->store, p, at, blobs, &rep);
	ps_project_free(p);
	if (rc < 0)
		return ps_cli_fail(rc);
	if (cli->json) {
		ps_cli_print_json(ps_verify_report_to_json(&rep));
	} else if (rep.nproblems == 0) {
		char *line = ps_verify_summary(&rep);
		printf("%s\n", line);
		free(line);
	} else {
		for (size_t i = 0; i < rep.nproblems; i++) {
			char *q = ps_cli_quote_path(rep.problems[i].path);
			printf("%s: %s: %s\n", q, rep.problems[i].code, rep.problems[i].message);
			free(q);
		}
		fprintf(stderr, "projsync: %s at sync %lld is not sound: %zu problem%s\n",
			rep.project, (long long)rep.sync_id, rep.nproblems,
			rep.nproblems == 1 ? "" : "s");
	}
	rc = rep.nproblems ? PS_EXIT_FAILURE : PS_EXIT_OK;
	ps_verify_report_dispose(&rep);
	return rc;
}
