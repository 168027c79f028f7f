/*
 * `projsync sync NAME --server URL`: the sync runs on a `projsync serve` instead of in this
 * process. remote.c starts it (POST /api/v1/projects/NAME/sync) and follows its SSE stream,
 * feeding each event to the same progress renderer a local sync uses, so the terminal shows the
 * same line. A dropped stream is resumed with Last-Event-ID; Ctrl-C asks the server to cancel
 * the sync and keeps reading until its final event.
 */
#ifndef PS_CLI_REMOTE_H
#define PS_CLI_REMOTE_H

#include <stdbool.h>

#include "cli/cli.h"
#include "cli/progress.h"

/*
 * Runs the sync of `project` (branch NULL = the project's) on the server at `server_url`
 * ("http://host:port", a trailing slash is fine), rendering events to `progress` (borrowed;
 * in JSON mode each event's JSON is printed exactly as the server sent it). Sends
 * PROJSYNC_API_TOKEN as a bearer token when set. `live` says the progress is a live terminal
 * line (then the summary line is the only report of a failure). Returns the exit code of
 * `projsync sync`: 0 succeeded, 1 failed/cancelled/unreachable, 3 unknown project, 4 a sync is
 * already running.
 */
int ps_remote_sync(struct ps_cli *cli, const char *server_url, const char *project,
		   const char *branch, struct ps_progress *progress, bool live);

#endif
