/*
 * `projsync store copy FROM TO`: moves a whole store between backends (an SQLite file and a
 * PostgreSQL URL, either way, or two of a kind) with store.h's ps_store_copy. FROM and TO are
 * locations as --db takes them; --db itself plays no part.
 * `projsync store pack`: packs the small blobs of the --db store that are stored alone (written
 * before schema 27), with store.h's ps_store_blobs_pack_existing.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "store/store.h"
#include "model/json.h"
#include "util/error.h"

static const char usage[] =
	"usage: projsync store copy FROM TO [--json]\n"
	"       projsync store pack [--json]\n"
	"\n"
	"Copies the whole store FROM into the empty store TO: projects, the sync chain, events,\n"
	"file versions, blobs, memory entries and webhook deliveries, ids and bytes as they are.\n"
	"FROM and TO are SQLite files or postgres:// URLs (as --db takes them). TO must hold\n"
	"nothing yet (exit 4 otherwise); it is written in one transaction, so a failure leaves it\n"
	"empty. Exit codes: 0 copied, 1 failure, 2 usage, 3 FROM not found, 4 TO not empty.\n"
	"\n"
	"pack rewrites the small blobs of the store (--db) that are stored one by one (those\n"
	"written before projsync packed them) into packs, as syncs store new ones, in short\n"
	"transactions: syncs may run meanwhile, and an interrupted run loses nothing (run it again\n"
	"to pack the rest). Then it compacts the store as prune does (SQLite: VACUUM, so the\n"
	"file shrinks). Prints how many blobs went into how many packs and the bytes saved.\n"
	"Exit codes: 0 done, 1 failure, 2 usage.\n";

static bool is_url(const char *s)
{
	return strncmp(s, "postgres://", 11) == 0 || strncmp(s, "postgresql://", 13) == 0;
}

static void pack_progress(void *ud, size_t done, size_t total)
{
	struct ps_cli *cli = ud;

	if (!cli->json && isatty(STDERR_FILENO))
		fprintf(stderr, "\rpacking: %zu of %zu blobs looked at", done, total);
}

static int store_pack(struct ps_cli *cli, int nargs)
{
	struct ps_pack_report r;
	char before[32], after[32];
	int rc;

	if (nargs != 1)
		return ps_cli_usage_error(cli, "store pack takes no arguments");
	if ((rc = ps_cli_open_store(cli, 0)) < 0)
		return ps_cli_fail(rc);
	rc = ps_store_blobs_pack_existing(cli->store, 0, pack_progress, cli, &r);
	if (!cli->json && isatty(STDERR_FILENO) && r.candidates)
		fputc('\n', stderr);
	/* The space of the rows rewritten goes back to the disk, as after a prune. */
	if (rc == 0 && r.blobs > 0)
		rc = ps_store_compact(cli->store);
	if (rc < 0)
		return ps_cli_fail(rc);
	if (cli->json) {
		ps_cli_print_json(json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
					    "candidates", (json_int_t)r.candidates,
					    "blobs", (json_int_t)r.blobs, "packs", (json_int_t)r.packs,
					    "damaged", (json_int_t)r.damaged,
					    "bytes_before", (json_int_t)r.bytes_before,
					    "bytes_after", (json_int_t)r.bytes_after));
		return PS_EXIT_OK;
	}
	ps_format_bytes(r.bytes_before, before, sizeof(before));
	ps_format_bytes(r.bytes_after, after, sizeof(after));
	if (r.blobs == 0)
		printf("nothing to pack: fewer than two small blobs are stored alone\n");
	else
		printf("packed %lld blobs into %lld packs: %s -> %s\n", (long long)r.blobs,
		       (long long)r.packs, before, after);
	if (r.damaged)
		fprintf(stderr, "projsync: %lld blobs left as they are: their stored bytes do not "
			"give their id (run `projsync verify --blobs`)\n", (long long)r.damaged);
	return PS_EXIT_OK;
}

int ps_cmd_store(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_JSON = 0x100 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct ps_store *from = NULL, *to = NULL;
	struct ps_copy_counts counts;
	char *where_from, *where_to;
	struct stat st;
	int c, rc;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (optind < argc && strcmp(argv[optind], "pack") == 0)
		return store_pack(cli, argc - optind);
	if (optind >= argc || strcmp(argv[optind], "copy") != 0)
		return ps_cli_usage_error(cli, optind < argc ? "unknown store command '%s'"
						     : "store needs a command: copy or pack%s",
					  optind < argc ? argv[optind] : "");
	if (argc - optind != 3)
		return ps_cli_usage_error(cli, "store copy needs FROM and TO");
	const char *src = argv[optind + 1], *dst = argv[optind + 2];
	if (!*src || !*dst)
		return ps_cli_usage_error(cli, "store copy needs FROM and TO");
	where_from = ps_store_location(src);
	where_to = ps_store_location(dst);
	if (strcmp(src, dst) == 0 || strcmp(where_from, where_to) == 0) {
		rc = ps_error_set(PS_EINVAL, "same_store", "FROM and TO are the same store (%s)",
				  where_from);
		goto out;
	}
	/* Opening an SQLite file creates it: a FROM that does not exist is a typo, not a store. */
	if (!is_url(src) && stat(src, &st) != 0) {
		rc = ps_error_set(PS_ENOTFOUND, "store_not_found", "store %s not found", where_from);
		goto out;
	}
	if ((rc = ps_store_open(&from, src, 0)) < 0 || (rc = ps_store_open(&to, dst, 0)) < 0)
		goto out;
	if ((rc = ps_store_copy(from, to, &counts)) < 0)
		goto out;
	if (cli->json) {
		json_t *j = json_object();
		json_t *rows = json_object();
		for (size_t i = 0; i < counts.ntables; i++)
			json_object_set_new(rows, counts.table[i], json_integer(counts.rows[i]));
		/* ps_json_string: a path that is not UTF-8 made json_string() NULL and the key
		 * went missing from the document. */
		json_object_set_new(j, "from", ps_json_string(where_from));
		json_object_set_new(j, "to", ps_json_string(where_to));
		json_object_set_new(j, "rows", rows);
		ps_cli_print_json(j);
	} else {
		printf("copied %s to %s:", where_from, where_to);
		for (size_t i = 0; i < counts.ntables; i++)
			printf("%s %lld %s", i ? "," : "", (long long)counts.rows[i], counts.table[i]);
		printf("\n");
	}
out:
	ps_store_free(from);
	ps_store_free(to);
	free(where_from);
	free(where_to);
	return ps_cli_fail(rc);
}
