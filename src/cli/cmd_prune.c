/*
 * `projsync prune [NAME] [--dry-run]`: applies the retention policy of one project or of every
 * project (project add|set --keep-syncs / --keep-days) through core/retention.c: the oldest
 * syncs beyond it leave the chain, file versions only they saw and blobs no project references
 * are deleted, and the space is given back. --dry-run says what would go and changes nothing.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/progress.h"
#include "core/retention.h"
#include "util/error.h"

static const char prune_usage[] =
	"usage: projsync prune [NAME] [--dry-run] [--json]\n"
	"\n"
	"Applies the retention policy (project add|set --keep-syncs N / --keep-days D) of project\n"
	"NAME, or of every project: syncs older than the oldest one the policy keeps are removed\n"
	"(that one becomes the first of the history and still lists its whole snapshot), with the\n"
	"file versions only they could see and the blobs no project references any more; then the\n"
	"store gives the space back. Memory entries are never removed. A project without a policy\n"
	"keeps everything. Each step is one transaction: an interrupted prune leaves a consistent\n"
	"store, and running it again finishes the work. Blobs are left while a sync runs.\n"
	"\n"
	"  --dry-run   say what would be removed and how many bytes, change nothing\n"
	"  --json      print {\"dry_run\", \"projects\": [...], \"syncs\", \"file_versions\",\n"
	"              \"events\", \"blobs\", \"bytes\", \"deltas_rewritten\", \"packs_rewritten\",\n"
	"              \"blobs_skipped\"}\n";

struct report {
	bool dry_run;
	bool json;
	json_t *projects;
};

static void on_project(void *ud, const struct ps_prune_project *pp)
{
	struct report *r = ud;

	if (r->json) {
		json_array_append_new(r->projects, json_pack(
			"{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "project", pp->name,
			"start_sync_id", (json_int_t)pp->start_sync_id,
			"first_removed", (json_int_t)pp->first_removed,
			"last_removed", (json_int_t)pp->last_removed,
			"syncs", (json_int_t)pp->stats.syncs,
			"file_versions", (json_int_t)pp->stats.file_versions,
			"events", (json_int_t)pp->stats.events));
		return;
	}
	printf("%s: %s %" PRId64 " syncs (#%" PRId64 "..#%" PRId64 ") and %" PRId64
	       " file versions; history now starts at #%" PRId64 "\n", pp->name,
	       r->dry_run ? "would remove" : "removed", pp->stats.syncs, pp->first_removed,
	       pp->last_removed, pp->stats.file_versions, pp->start_sync_id);
}

int ps_cmd_prune(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_DRY_RUN = 0x100, OPT_JSON };
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct report r = { 0 };
	struct ps_prune_stats total;
	const char *name = NULL;
	char bytes[32];
	int c, rc;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, prune_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_DRY_RUN: r.dry_run = true; break;
		case OPT_JSON: cli->json = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (argc - optind == 1)
		name = argv[optind];
	if ((rc = ps_cli_open_store(cli, 0)) < 0)
		return ps_cli_fail(rc);
	r.json = cli->json;
	r.projects = json_array();
	rc = ps_prune(cli->store, name, ps_now_ms(), r.dry_run, on_project, &r, &total);
	if (rc < 0) {
		json_decref(r.projects);
		return ps_cli_fail(rc);
	}
	if (cli->json) {
		ps_cli_print_json(json_pack("{s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
			"dry_run", r.dry_run, "projects", r.projects,
			"syncs", (json_int_t)total.syncs,
			"file_versions", (json_int_t)total.file_versions,
			"events", (json_int_t)total.events, "blobs", (json_int_t)total.blobs,
			"bytes", (json_int_t)total.blob_bytes,
			"deltas_rewritten", (json_int_t)total.blobs_rewritten,
			"packs_rewritten", (json_int_t)total.packs_rewritten,
			"blobs_skipped", total.blobs_skipped));
		return PS_EXIT_OK;
	}
	json_decref(r.projects);
	ps_format_bytes(total.blob_bytes < 0 ? -total.blob_bytes : total.blob_bytes, bytes,
			sizeof(bytes));
	if (total.blobs_skipped)
		printf("blobs: left for later, a sync is running\n");
	else if (total.blob_bytes >= 0)
		printf("blobs: %s %" PRId64 " no longer referenced (%s, %" PRId64 " bytes)\n",
		       r.dry_run ? "would remove" : "removed", total.blobs, bytes, total.blob_bytes);
	else /* bytes < 0: the deltas whose base went cost more stored plain than what went */
		printf("blobs: %s %" PRId64 " no longer referenced; the store %s by %s (%" PRId64
		       " bytes): the deltas below, rewritten without their base, take more\n",
		       r.dry_run ? "would remove" : "removed", total.blobs,
		       r.dry_run ? "would grow" : "grew", bytes, -total.blob_bytes);
	if (total.blobs_rewritten)
		printf("deltas: %s %" PRId64 " whose base goes as plain rows\n",
		       r.dry_run ? "would rewrite" : "rewrote", total.blobs_rewritten);
	if (total.packs_rewritten)
		printf("packs: %s %" PRId64 " whose members went (deleted or rewritten smaller)\n",
		       r.dry_run ? "would repack" : "repacked", total.packs_rewritten);
	if (total.syncs == 0 && total.blobs == 0)
		printf("nothing to prune%s\n", name ? "" : " (projects without --keep-syncs or "
			"--keep-days keep everything)");
	return PS_EXIT_OK;
}
