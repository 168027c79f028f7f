/*
 * `projsync stats [NAME] [--json]`: what the store costs, per project and for the whole store
 * (store.h ps_store_stats): syncs, file versions, distinct blobs, raw and stored bytes and
 * their ratio.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "util/error.h"

static const char stats_usage[] =
	"usage: projsync stats [NAME] [--json]\n"
	"\n"
	"What the store costs: for each project (or only NAME) and for the whole store, the number\n"
	"of syncs, file versions and distinct blobs, the blobs' raw (uncompressed) bytes, the bytes\n"
	"stored for them and the ratio raw/stored. Blobs shared by projects count in each of them;\n"
	"the store line counts them once and adds the database's size on disk and how blobs are\n"
	"stored (alone, as deltas, packed together).\n"
	"--json prints {\"projects\": [...], \"store\": {...}} (with NAME: that project's object).\n";

static double ratio(const struct ps_store_stats *st)
{
	return st->stored_bytes > 0 ? (double)st->raw_bytes / (double)st->stored_bytes : 1.0;
}

static json_t *stats_json(const char *name, const struct ps_store_stats *st, bool store)
{
	json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "syncs", (json_int_t)st->syncs,
			      "syncs_succeeded", (json_int_t)st->syncs_succeeded,
			      "file_versions", (json_int_t)st->file_versions,
			      "blobs", (json_int_t)st->blobs,
			      "blobs_compressed", (json_int_t)st->blobs_compressed,
			      "raw_bytes", (json_int_t)st->raw_bytes,
			      "stored_bytes", (json_int_t)st->stored_bytes, "ratio", ratio(st));

	json_object_set_new(j, "blobs_delta", json_integer(st->blobs_delta));
	json_object_set_new(j, "blobs_packed", json_integer(st->blobs_packed));
	if (name)
		json_object_set_new(j, "name", json_string(name));
	if (store) {
		json_object_set_new(j, "projects", json_integer(st->projects));
		json_object_set_new(j, "disk_bytes", json_integer(st->disk_bytes));
		json_object_set_new(j, "unconverted_blobs", json_integer(st->unconverted_blobs));
		json_object_set_new(j, "packs", json_integer(st->packs));
	}
	return j;
}

static void table_row(struct ps_table *t, const char *name, const struct ps_store_stats *st)
{
	char c[7][32];
	const char *cells[8];

	snprintf(c[0], sizeof(c[0]), "%" PRId64, st->syncs);
	snprintf(c[1], sizeof(c[1]), "%" PRId64, st->file_versions);
	snprintf(c[2], sizeof(c[2]), "%" PRId64, st->blobs);
	ps_format_bytes(st->raw_bytes, c[3], sizeof(c[3]));
	ps_format_bytes(st->stored_bytes, c[4], sizeof(c[4]));
	snprintf(c[5], sizeof(c[5]), "%.2f", ratio(st));
	cells[0] = name;
	for (int i = 0; i < 6; i++)
		cells[i + 1] = c[i];
	ps_table_add(t, cells);
}

int ps_cmd_stats(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_JSON = 0x100 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	static const char *const headers[] = { "PROJECT", "SYNCS", "VERSIONS", "BLOBS", "RAW",
		"STORED", "RATIO" };
	struct ps_project **projects = NULL;
	struct ps_store_stats total, st;
	struct ps_table t;
	json_t *list = NULL;
	size_t n = 0;
	int c, rc;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, stats_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = ps_cli_open_store(cli, 0)) < 0)
		return ps_cli_fail(rc);
	if (optind < argc) {
		struct ps_project *p = NULL;
		if ((rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0 ||
		    (rc = ps_store_stats(cli->store, p->id, &st)) < 0) {
			ps_project_free(p);
			return ps_cli_fail(rc);
		}
		if (cli->json) {
			ps_cli_print_json(stats_json(p->name, &st, false));
		} else {
			ps_table_init(&t, 7, headers);
			t.right_align = 0x7e;
			table_row(&t, p->name, &st);
			ps_table_print(&t, stdout);
			ps_table_dispose(&t);
		}
		ps_project_free(p);
		return PS_EXIT_OK;
	}
	if ((rc = ps_store_stats(cli->store, 0, &total)) < 0 ||
	    (rc = ps_store_project_list(cli->store, &projects, &n)) < 0)
		return ps_cli_fail(rc);
	ps_table_init(&t, 7, headers);
	t.right_align = 0x7e;
	list = json_array();
	for (size_t i = 0; i < n && rc == 0; i++) {
		if ((rc = ps_store_stats(cli->store, projects[i]->id, &st)) < 0)
			break;
		json_array_append_new(list, stats_json(projects[i]->name, &st, false));
		table_row(&t, projects[i]->name, &st);
	}
	for (size_t i = 0; i < n; i++)
		ps_project_free(projects[i]);
	free(projects);
	if (rc < 0) {
		json_decref(list);
		ps_table_dispose(&t);
		return ps_cli_fail(rc);
	}
	if (cli->json) {
		ps_cli_print_json(json_pack("{s:o, s:o}", "projects", list,
					    "store", stats_json(NULL, &total, true)));
	} else {
		char disk[32];
		json_decref(list);
		table_row(&t, "(store)", &total);
		ps_table_print(&t, stdout);
		ps_format_bytes(total.disk_bytes, disk, sizeof(disk));
		printf("\nprojects: %" PRId64 "; the store takes %s on disk.\n", total.projects, disk);
		printf("blobs: %" PRId64 " packed together in %" PRId64 " packs, %" PRId64
		       " as deltas, %" PRId64 " compressed alone, %" PRId64 " as they are.\n",
		       total.blobs_packed, total.packs, total.blobs_delta,
		       total.blobs_compressed - total.blobs_delta - total.blobs_packed,
		       total.blobs - total.blobs_compressed);
		if (total.unconverted_blobs > 0)
			printf("%" PRId64 " blobs are still waiting to be compressed.\n",
			       total.unconverted_blobs);
	}
	ps_table_dispose(&t);
	return PS_EXIT_OK;
}
