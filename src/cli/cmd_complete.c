/*
 * `projsync __complete WHAT`: candidates for shell completion (dist/projsync.bash-completion),
 * one per line on stdout. Hidden from --help: it is an interface for the completion script,
 * not for people. It never creates or migrates a store and never prints an error, so a
 * completion on a machine without a store, or with a broken one, simply offers nothing.
 *
 *   __complete projects    the project names of the store (--db, $PROJSYNC_DB, default)
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"

static bool is_url(const char *s)
{
	return strstr(s, "://") != NULL;
}

static void print_projects(struct ps_cli *cli)
{
	struct ps_project **ps = NULL;
	size_t n = 0;
	struct stat st;
	char *path = ps_cli_store_path(cli);

	/* Opening a missing SQLite store would create it: look first. */
	if (!path || (!is_url(path) && stat(path, &st) != 0)) {
		free(path);
		return;
	}
	free(path);
	if (ps_cli_open_store(cli, PS_STORE_NO_MIGRATE) < 0 ||
	    ps_store_project_list(cli->store, &ps, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		puts(ps[i]->name);
		ps_project_free(ps[i]);
	}
	free(ps);
}

int ps_cmd_complete(struct ps_cli *cli, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		/* `projsync __complete --db PATH projects` and `--db=PATH` are accepted too. */
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
			free(cli->db_option);
			cli->db_option = ps_strdup(argv[++i]);
		} else if (strncmp(argv[i], "--db=", 5) == 0) {
			free(cli->db_option);
			cli->db_option = ps_strdup(argv[i] + 5);
		} else if (strcmp(argv[i], "projects") == 0) {
			print_projects(cli);
			return PS_EXIT_OK;
		} else {
			return PS_EXIT_USAGE;
		}
	}
	return PS_EXIT_USAGE;
}
