/*
 * `projsync store copy FROM TO`: moves a whole store between backends (an SQLite file and a
 * PostgreSQL URL, either way, or two of a kind) with store.h's ps_store_copy. FROM and TO are
 * locations as --db takes them; --db itself plays no part.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "store/store.h"
#include "model/json.h"
#include "util/error.h"

static const char usage[] =
	"usage: projsync store copy FROM TO [--json]\n"
	"\n"
	"Copies the whole store FROM into the empty store TO: projects, the sync chain, events,\n"
	"file versions, blobs, memory entries and webhook deliveries, ids and bytes as they are.\n"
	"FROM and TO are SQLite files or postgres:// URLs (as --db takes them). TO must hold\n"
	"nothing yet (exit 4 otherwise); it is written in one transaction, so a failure leaves it\n"
	"empty. Exit codes: 0 copied, 1 failure, 2 usage, 3 FROM not found, 4 TO not empty.\n";

static bool is_url(const char *s)
{
	return strncmp(s, "postgres://", 11) == 0 || strncmp(s, "postgresql://", 13) == 0;
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
	if (optind >= argc || strcmp(argv[optind], "copy") != 0)
		return ps_cli_usage_error(cli, optind < argc ? "unknown store command '%s'"
						     : "store needs a command: copy%s",
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
