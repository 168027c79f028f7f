/*
 * `projsync sync NAME`: runs the sync generator (core/sync.h) in this process and renders its
 * events (cli/progress.h): a live line on a terminal, a line per phase otherwise, one JSON line
 * per event with --json. SIGINT/SIGTERM ask the run to stop at its next step boundary, so an
 * interrupted sync still ends properly as `cancelled`; a second signal kills the process (the
 * store then finds the sync dead and marks it interrupted).
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/progress.h"
#include "cli/remote.h"
#include "model/json.h"
#include "core/sync.h"
#include "util/error.h"

static const char sync_usage[] =
	"usage: projsync sync NAME [--branch B] [--server URL] [--json]\n"
	"\n"
	"Syncs a project now: resolves the branch head, scans what changed since the last\n"
	"succeeded sync, fetches new content, imports it and makes the new snapshot visible.\n"
	"\n"
	"  --branch B   sync this branch instead of the project's selected branch\n"
	"  --json       print every event as one JSON line (and nothing else on stdout)\n"
	"  --server URL run the sync on a `projsync serve` (default $PROJSYNC_SERVER) and\n"
	"               follow its progress; PROJSYNC_API_TOKEN is sent when set\n"
	"\n"
	"On a terminal one progress line is redrawn in place; otherwise a line per phase.\n"
	"Ctrl-C cancels the sync at its next step. Exit: 0 succeeded (or up to date),\n"
	"1 failed or cancelled, 3 unknown project, 4 a sync of the project is already running.\n";

/* The run the signal handler cancels. ps_sync_cancel is async-signal-safe. */
static struct ps_sync_run *volatile running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		ps_sync_cancel(running);
}

static int terminal_width(void)
{
	struct winsize ws;
	const char *cols = getenv("COLUMNS");

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (cols && atoi(cols) > 0)
		return atoi(cols);
	return 80;
}

static bool locale_is_utf8(void)
{
	const char *cs;

	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}

int ps_cmd_sync(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_JSON = 0x100, OPT_BRANCH, OPT_SERVER };
	static const struct option opts[] = {
		{ "branch", required_argument, NULL, OPT_BRANCH },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ 0 },
	};
	struct ps_sync_ctx ctx = { 0 };
	struct ps_sync_opts sopts = { .trigger = "cli" };
	struct ps_sync_run *run = NULL;
	struct ps_progress progress;
	struct sigaction old[3];
	const struct ps_event *ev;
	enum ps_event_kind final = PS_EVENT_FAILED;
	char *final_message = NULL;
	const char *terminal = getenv("TERM");
	const char *server = getenv("PROJSYNC_SERVER"), *optarg_server = NULL;
	char *server_url = NULL; /* server with the http:// it was given without */
	bool live, saw_final = false;
	int c, rc, step;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, sync_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		case OPT_SERVER: server = optarg_server = optarg; break;
		case OPT_BRANCH:
			if (!optarg[0])
				return ps_cli_usage_error(cli, "--branch needs a branch name");
			sopts.branch = optarg;
			break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < 1)
		return ps_cli_usage_error(cli, "sync needs a project NAME");
	if (argc - optind > 1)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	/* libcurl takes any scheme it knows (file: read a local file, ftp:) and guesses one for a
	 * bare host ("ftp.x" as ftp://): a scheme other than http(s) is a mistake in the input, and
	 * HOST[:PORT] (as $PROJSYNC_SERVER has long been set) is http://HOST[:PORT]. */
	if (server && server[0]) {
		const char *colon = strchr(server, ':');
		size_t scheme = strspn(server, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					       "0123456789+.-");
		bool http = strncasecmp(server, "http://", 7) == 0 ||
			    strncasecmp(server, "https://", 8) == 0;

		if (!http && colon && scheme > 0 && server + scheme == colon &&
		    !(colon[1] >= '0' && colon[1] <= '9'))
			return ps_cli_usage_error(cli, "invalid %s '%s': give the server's URL, "
						  "http(s)://HOST:PORT",
						  server == optarg_server ? "--server"
									  : "$PROJSYNC_SERVER",
						  server);
		if (!http)
			server = server_url = ps_asprintf("http://%s", server);
	}
	if (server && server[0]) {
		/* The sync runs on the server; this process only shows its progress. */
		live = !cli->json && cli->stdout_tty && !(terminal && strcmp(terminal, "dumb") == 0);
		ps_progress_init(&progress, stdout,
				 cli->json ? PS_PROGRESS_JSON : live ? PS_PROGRESS_LIVE
								   : PS_PROGRESS_LINES,
				 locale_is_utf8(), live ? terminal_width() : 0, argv[optind]);
		rc = ps_remote_sync(cli, server, argv[optind], sopts.branch, &progress, live);
		ps_progress_dispose(&progress);
		free(server_url);
		return rc;
	}
	if ((rc = ps_cli_open_store(cli, 0)) < 0)
		return ps_cli_fail(rc);

	ctx.store = cli->store;
	if ((rc = ps_cli_source_opts(cli, &ctx.source_opts)) < 0 ||
	    (rc = ps_sync_begin(&run, &ctx, argv[optind], &sopts)) < 0)
		return ps_cli_fail(rc);

	live = !cli->json && cli->stdout_tty && !(terminal && strcmp(terminal, "dumb") == 0);
	ps_progress_init(&progress, stdout,
			 cli->json ? PS_PROGRESS_JSON : live ? PS_PROGRESS_LIVE : PS_PROGRESS_LINES,
			 locale_is_utf8(), live ? terminal_width() : 0, argv[optind]);
	running = run;
	ps_cli_catch_signals(true, on_signal, old);
	while ((step = ps_sync_next(run, &ev)) == PS_SYNC_MORE) {
		ps_progress_event(&progress, ev);
		if (ps_event_is_final(ev->kind)) {
			saw_final = true;
			final = ev->kind;
			free(final_message);
			final_message = ps_progress_summary(&progress, ev);
		}
	}
	ps_cli_catch_signals(false, on_signal, old);
	running = NULL;
	if (step < 0 && !saw_final) {
		/* The generator promises a final event; if it breaks that promise, say so. */
		ps_progress_abort(&progress);
		free(final_message);
		final_message = ps_strdup(ps_error_message()[0] ? ps_error_message()
				       : "the sync stopped without a final event");
	}
	ps_sync_end(run);
	ps_progress_dispose(&progress);

	if (saw_final && final == PS_EVENT_SUCCEEDED) {
		free(final_message);
		return PS_EXIT_OK;
	}
	/* The one error line on stderr. On a terminal the summary line just said it. */
	if (!(live && isatty(STDERR_FILENO))) {
		if (saw_final && final == PS_EVENT_CANCELLED)
			fputs("projsync: cancelled\n", stderr);
		else
			fprintf(stderr, "projsync: %s\n", final_message ? final_message : "sync failed");
	}
	free(final_message);
	return PS_EXIT_FAILURE;
}

static const char cancel_usage[] =
	"usage: projsync cancel SYNC [--json]\n"
	"\n"
	"Cancels sync SYNC (its id, as `history` and `status` show it). A queued sync ends at once;\n"
	"a running one, in this or any other process or server on the same store, stops at its\n"
	"next step boundary and ends `cancelled`, nothing of it visible. --json prints the sync.\n"
	"Exit: 0 cancelled or asked to stop, 3 unknown sync, 4 the sync has already ended.\n";

int ps_cmd_cancel(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_JSON = 0x100 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct ps_sync *s = NULL, *after = NULL;
	int64_t id;
	int c, rc, exit_code;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, cancel_usage)) != -1) {
		if (c == PS_CLI_OPT_HELP)
			return PS_EXIT_OK;
		if (c == OPT_JSON)
			cli->json = true;
		else
			return PS_EXIT_USAGE;
	}
	if (argc - optind != 1)
		return ps_cli_usage_error(cli, argc - optind < 1 ? "cancel needs a SYNC id"
					  : "unexpected argument '%s'", argv[optind + 1]);
	if (!ps_cli_parse_id(argv[optind], &id))
		return ps_cli_usage_error(cli, "invalid sync id '%s': give a positive number",
					  argv[optind]);
	if ((rc = ps_cli_open_store(cli, 0)) < 0)
		return ps_cli_fail(rc);
	if ((rc = ps_store_sync_get(cli->store, id, &s)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, "sync_not_found", "sync %" PRId64 " not found", id);
		return ps_cli_fail(rc);
	}
	/* The store's flag, as POST /syncs/{id}/cancel: whoever runs the sync reads it at its
	 * next step, in any process. */
	if ((rc = ps_store_sync_request_cancel(cli->store, id)) < 0) {
		if (rc == PS_ECONFLICT)
			ps_error_set(rc, "sync_ended", "sync %" PRId64 " of %s has already ended (%s)",
				     id, s->project, ps_sync_status_name(s->status));
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (ps_store_sync_get(cli->store, id, &after) < 0)
		after = NULL;
	if (cli->json)
		ps_cli_print_json(ps_sync_to_json(after ? after : s));
	else if (after && after->status == PS_SYNC_CANCELLED)
		printf("sync %" PRId64 " of %s cancelled\n", id, s->project);
	else
		printf("sync %" PRId64 " of %s: cancel requested; it stops at its next step\n", id,
		       s->project);
	exit_code = PS_EXIT_OK;
cleanup:
	ps_sync_free(after);
	ps_sync_free(s);
	return exit_code;
}
