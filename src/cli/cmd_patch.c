/*
 * The content side of `diff` and `changes`: with --patch and/or --stat they print what
 * `git diff` prints for the two commits, from the store's contents (core/patch.h). Output is
 * written one file at a time, so a large diff streams instead of sitting in memory.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/patch.h"
#include "util/error.h"

static int write_stdout(void *ud, const char *data, size_t len)
{
	(void)ud;
	if (len && fwrite(data, 1, len, stdout) != len)
		return ps_error_set(PS_EIO, NULL, "writing the diff to stdout failed");
	return 0;
}

/* The width git's --stat uses: $COLUMNS, else the terminal's, else 80. */
static int stat_width(const struct ps_cli *cli)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;

	if (env && atoi(env) > 0)
		return atoi(env);
	if (cli->stdout_tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

int ps_cli_print_patch(struct ps_cli *cli, int64_t project_id, int64_t sync_a, int64_t sync_b,
		       const char *const *paths, size_t npaths)
{
	struct ps_patch_opts opts = { .paths = paths, .npaths = npaths,
				      .full_index = cli->full_index };
	unsigned what = (cli->patch ? PS_PATCH_WANT_PATCH : 0) | (cli->stat ? PS_PATCH_WANT_STAT : 0);
	int rc;

	if (cli->json) {
		json_t *j = NULL;
		/* --stat alone needs only the counts: no hunks in the JSON. */
		opts.stat_only = !cli->patch;
		if ((rc = ps_patch_json(cli->store, project_id, sync_a, sync_b, &opts, 0, &j)) < 0)
			return ps_cli_fail(rc);
		ps_cli_print_json(j);
		return PS_EXIT_OK;
	}
	rc = ps_patch_write(cli->store, project_id, sync_a, sync_b, &opts, what, stat_width(cli),
			    0, write_stdout, NULL, NULL);
	if (rc == 0 && fflush(stdout) != 0)
		rc = ps_error_set(PS_EIO, NULL, "writing the diff to stdout failed");
	return rc < 0 ? ps_cli_fail(rc) : PS_EXIT_OK;
}
