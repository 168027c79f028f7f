/*
 * The command line: `projsync [--db PATH] COMMAND ...`. cli.c parses the global options, finds
 * the command and hands it a `struct ps_cli` — the small context every command shares (where
 * the store is, the store once opened, --json) — plus its own argv (argv[0] = the command name).
 * Each command parses its options with ps_cli_getopt, opens the store only once its arguments
 * are valid (so --help and usage errors never create a database), does its work and returns the
 * process exit code.
 *
 * Exit codes (README.md, docs/cli.md), mapped from PS_E* codes in one place, ps_cli_exit_code().
 * They follow the HTTP status the API answers for the same mistake, so the CLI and the API
 * never disagree: 0 ok, 1 failure (5xx), 2 usage error or invalid input (PS_EINVAL; 400/422),
 * 3 not found (PS_ENOTFOUND; 404), 4 conflict (PS_ECONFLICT; 409: a sync is running, a name is
 * taken, a sync that is not succeeded used as a snapshot).
 * Errors are one line on stderr, `projsync: <message>`; usage errors add a hint line.
 * Output for people goes to stdout as tables; with --json, stdout carries exactly one JSON
 * document (a bare array for listings), compact, followed by a newline.
 */
#ifndef PS_CLI_CLI_H
#define PS_CLI_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "source/source.h"
#include "store/store.h"
#include "util/util.h"

enum {
	PS_EXIT_OK = 0,
	PS_EXIT_FAILURE = 1,
	PS_EXIT_USAGE = 2,
	PS_EXIT_NOTFOUND = 3,
	PS_EXIT_CONFLICT = 4,
};

/*
 * The context of one command run. Filled by ps_cli_main before the command's handler runs and
 * released by it afterwards; handlers only read it, set `json`, and open the store through
 * ps_cli_open_store. Strings are owned by the context.
 */
struct ps_cli {
	/* "sync", "project add", ...: names the command in usage hints. */
	const char *command;
	/* --db as given (before or after the command), or NULL. Use ps_cli_open_store, which
	 * resolves the location: --db > $PROJSYNC_DB > $XDG_DATA_HOME/projsync/projsync.db >
	 * ~/.local/share/projsync/projsync.db. */
	char *db_option;
	/* Resolved by ps_cli_open_store: the store location (file path or postgres:// URL), the
	 * directory that holds it, and <data_dir>/cache where remote sources keep bare caches. */
	char *db_url;
	char *data_dir;
	char *cache_dir;
	/* The opened store (NULL until ps_cli_open_store); closed by ps_cli_main. */
	struct ps_store *store;
	/* --json: print JSON instead of tables. Commands that take it set it while parsing. */
	bool json;
	/* stdout is a terminal (live progress, colours-free glyphs). */
	bool stdout_tty;
	/* --patch, --stat and --full-index of `diff` and `changes`: content diffs (cmd_patch.c). */
	bool patch, stat, full_index;
};

/* The entry point: parses global options, runs the command, returns the exit code. */
int ps_cli_main(int argc, char **argv);

/*
 * Command handlers. Each gets argv with argv[0] = its name ("sync", "add" for `project add`),
 * parses the rest with ps_cli_getopt, and returns an exit code (PS_EXIT_*). `--help` prints the
 * command's usage to stdout and returns 0.
 */
int ps_cmd_project(struct ps_cli *cli, int argc, char **argv);   /* add | list | show | rm */
int ps_cmd_branches(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_sync(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_cancel(struct ps_cli *cli, int argc, char **argv);    /* cmd_sync.c */
int ps_cmd_status(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_history(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_changes(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_log(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_diff(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_files(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_cat(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_checkout(struct ps_cli *cli, int argc, char **argv);  /* cmd_checkout.c */
int ps_cmd_grep(struct ps_cli *cli, int argc, char **argv);      /* cmd_grep.c */
int ps_cmd_verify(struct ps_cli *cli, int argc, char **argv);    /* cmd_verify.c */
/*
 * `diff --patch/--stat` and `changes --patch/--stat` (cmd_patch.c): prints the content diff
 * from succeeded sync `sync_a` (0: none, all added) to `sync_b` as `git diff` does, or as JSON
 * with --json, restricted to `paths` (none: all). Returns the exit code.
 */
int ps_cli_print_patch(struct ps_cli *cli, int64_t project_id, int64_t sync_a, int64_t sync_b,
		       const char *const *paths, size_t npaths);
int ps_cmd_memory(struct ps_cli *cli, int argc, char **argv);    /* cmd_memory.c */
int ps_cmd_migrate(struct ps_cli *cli, int argc, char **argv);
int ps_cmd_stats(struct ps_cli *cli, int argc, char **argv);     /* cmd_stats.c */
int ps_cmd_serve(struct ps_cli *cli, int argc, char **argv);    /* cmd_serve.c */
int ps_cmd_prune(struct ps_cli *cli, int argc, char **argv);    /* cmd_prune.c */
int ps_cmd_store(struct ps_cli *cli, int argc, char **argv);    /* cmd_store.c: copy */
int ps_cmd_complete(struct ps_cli *cli, int argc, char **argv); /* cmd_complete.c (hidden) */

/* Where the store is (--db, else $PROJSYNC_DB, else the XDG default), without opening or
 * creating it (malloc'd; NULL when nothing names one). */
char *ps_cli_store_path(struct ps_cli *cli);

/* ---- helpers for handlers ---- */

/* Returned by ps_cli_getopt besides option values and -1 (no more options). */
#define PS_CLI_OPT_HELP (-2)   /* --help/-h: usage printed to stdout; return PS_EXIT_OK */
#define PS_CLI_OPT_ERROR (-3)  /* unknown option or missing argument: error printed; return
				  PS_EXIT_USAGE */

/*
 * getopt_long for a command, like git: options may appear anywhere after the command, `--` ends
 * them, and the positional arguments end up in argv[optind..argc-1]. `longopts` lists the
 * command's own options (zero-terminated; give each a `val` above 255 or a letter; `flag` must
 * be NULL); --help/-h and --db PATH are added here and handled here. Prints `usage` (the
 * command's help text) for --help. Restarts parsing whenever it is handed a different argv.
 */
int ps_cli_getopt(struct ps_cli *cli, int argc, char **argv, const struct option *longopts,
		  const char *usage);

/* Prints `projsync: <message>` and a hint naming cli->command's --help to stderr; returns
 * PS_EXIT_USAGE. */
int ps_cli_usage_error(struct ps_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The exit code of a PS_E* code: PS_EINVAL 2, PS_ENOTFOUND 3, PS_ECONFLICT 4, others 1, 0 0. */
int ps_cli_exit_code(int rc);

/* Prints the current error (util/error.h) as `projsync: <message>` and returns
 * ps_cli_exit_code(rc). For rc == 0 prints nothing and returns 0. */
int ps_cli_fail(int rc);

/* While a command runs work that can stop cleanly at a step boundary (sync, checkout): with
 * `install`, SIGINT and SIGTERM call `on_signal` (which must be async-signal-safe and ask the
 * work to stop), a second one kills as usual, and SIGPIPE is ignored so a reader that goes
 * away does not kill the process mid-write; the previous handlers go to `old`. Without
 * `install`, restores `old`. */
void ps_cli_catch_signals(bool install, void (*on_signal)(int), struct sigaction old[3]);

/* For ps_cli_open_store, beside the store.h flags: this command may create the store. */
#define PS_CLI_STORE_CREATE (1u << 16)

/*
 * Resolves the store location (see struct ps_cli) and opens it with `flags` (store.h:
 * migrations run unless PS_STORE_NO_MIGRATE). Only the commands that write something of their
 * own (project add, sync, migrate, serve) pass PS_CLI_STORE_CREATE, which creates the store and
 * its directory when missing; for every other command a missing store is PS_ENOTFOUND ("no
 * store at PATH", exit 3), so a mistyped --db never leaves an empty store behind. Sets
 * cli->store. Returns 0 or a PS_E* code with the message set (not printed).
 */
int ps_cli_open_store(struct ps_cli *cli, unsigned flags);

/* Source options for this run (cache_dir = cli->cache_dir, created on demand). Call only when
 * the command is about to reach a source (or serve those that do): it is where a bad
 * PROJSYNC_NET_TIMEOUT is refused (PS_EINVAL, "bad_net_timeout"), so a command that touches no
 * source is never stopped by it. Before or after ps_cli_open_store (the cache's place comes
 * from the store's location, not the open store): a command that may create the store calls
 * it first, so that a refused bound leaves no new store behind. The pointers inside borrow
 * from cli. Returns 0 or a PS_E* code with the message set. */
int ps_cli_source_opts(struct ps_cli *cli, struct ps_source_opts *out);

/* Parses a positive decimal id ("42"). Returns false for anything else. */
bool ps_cli_parse_id(const char *s, int64_t *out);

/* Prints `j` compact followed by a newline to stdout and releases it (steals the reference). */
void ps_cli_print_json(json_t *j);

/* A path for people (malloc'd): as is when printable (UTF-8 text included), else
 * double-quoted with git's escapes (\n, \t, octal \033; core.quotePath=false), so a newline in
 * a file name cannot fake a table row nor an escape sequence reach the terminal. */
char *ps_cli_quote_path(const char *path);

/* A copy of `s` (NULL: "") with control characters (C0, DEL, C1) as spaces, for text of a
 * repository shown on a terminal (malloc'd). */
char *ps_cli_printable(const char *s);
/* The same for text of several lines: newlines and tabs stay. */
char *ps_cli_printable_text(const char *s);

/* Local time "2026-01-02 15:04" ("-" for 0). `out` holds at least 32 bytes. */
void ps_cli_format_time(int64_t ms, char *out, size_t outlen);
/* "12s ago", "5m ago", "3h ago", "2d ago" relative to now ("never" for 0). */
void ps_cli_format_ago(int64_t ms, char *out, size_t outlen);
/* The first 7 hex digits of a commit into `out`, or "-" for NULL/empty. */
void ps_cli_short_sha(const char *sha, char out[8]);

/*
 * A table for people: column widths follow the widest cell (UTF-8 aware); the last column is
 * not padded. Cells are copied.
 */
struct ps_table {
	size_t ncols;
	struct ps_strv cells;      /* row-major, headers first */
	unsigned right_align;      /* bit i: right-align column i (numbers) */
};
void ps_table_init(struct ps_table *t, size_t ncols, const char *const *headers);
/* Adds one row of exactly t->ncols cells (NULL prints as "-"). */
void ps_table_add(struct ps_table *t, const char *const *cells);
void ps_table_print(const struct ps_table *t, FILE *out);
void ps_table_dispose(struct ps_table *t);

#endif
