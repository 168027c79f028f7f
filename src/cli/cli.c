/*
 * The command-line front: global options, the command table, where the store lives, and the
 * helpers every command shares (option parsing, error reporting, tables, time and path
 * formatting). The exit-code mapping lives here and nowhere else (ps_cli_exit_code).
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"
#include "source/git_cli.h"
#include "source/source.h"
#include "util/error.h"

static const char main_usage[] =
	"usage: projsync [--db PATH] COMMAND [ARGS...]\n"
	"\n"
	"Keeps a live, versioned copy of git repositories: one snapshot per sync.\n"
	"\n"
	"Projects:\n"
	"  project add NAME SOURCE [--branch B] [--memory-glob G]... [--max-blob-size BYTES]\n"
	"              [--every DURATION|auto|off] [--keep-syncs N] [--keep-days D]\n"
	"                                  [--no-code-index]\n"
	"  project set NAME [--branch B | --default-branch] [--memory-glob G]... [--max-blob-size N]\n"
	"                  [--rename NEW] [--source SOURCE [--continue-history]]\n"
	"  project list                    all projects and their last sync\n"
	"  project show NAME               one project's settings and state\n"
	"  project resume NAME             clear a paused project (too many failures in a row)\n"
	"  project rm NAME [--yes]         remove a project and its history (asks first)\n"
	"  branches NAME                   the branches of a project's source\n"
	"\n"
	"Syncing:\n"
	"  sync NAME [--branch B]          sync now, with live progress\n"
	"  cancel SYNC_ID                  stop a queued or running sync (any process)\n"
	"  status NAME                     running sync and last succeeded sync\n"
	"  history NAME [--limit N]        syncs, newest first\n"
	"\n"
	"Snapshots:\n"
	"  changes SYNC_ID                 what a sync changed vs. the previous succeeded sync\n"
	"  diff SYNC_A SYNC_B              changes between two succeeded syncs\n"
	"  log SYNC_ID [--limit N]         the commits a sync brought, newest first\n"
	"  files NAME [--at SYNC_ID] [PREFIX]   files of a snapshot\n"
	"  cat NAME PATH [--at SYNC_ID]    content of a file at a snapshot\n"
	"  checkout NAME DIR [--at SYNC_ID]     mirror a snapshot into a folder\n"
	"  grep PATTERN NAME [--at SYNC_ID] [-F|-E] [-i] [--path GLOB]   search the code of a\n"
	"                                  snapshot, like git grep -n\n"
	"  verify NAME [--at SYNC_ID] [--blobs] re-check a snapshot against its commit\n"
	"\n"
	"Memory:\n"
	"  memory list NAME                a project's notes (memory NAME for short)\n"
	"  memory search NAME TEXT...      full-text search of a project's notes\n"
	"  memory show|history|restore ID  one note, its versions, bring one back\n"
	"  memory add NAME --title T (--file F | --text S)   a note by hand\n"
	"  memory edit|rm ID               change a note added by hand (a new version), delete it\n"
	"\n"
	"Maintenance:\n"
	"  serve [--listen HOST:PORT] [--workers N]   HTTP API, live progress, sync workers\n"
	"  prune [NAME] [--dry-run]        drop syncs beyond --keep-syncs/--keep-days, free space\n"
	"  migrate                         apply pending store migrations\n"
	"  store copy FROM TO              copy a whole store into an empty one (SQLite <-> PostgreSQL)\n"
	"  store pack                      pack the small blobs stored before packs existed\n"
	"  stats [NAME]                    what the store costs: syncs, versions, blobs, bytes\n"
	"\n"
	"Every command takes --help; listings take --json (one compact JSON document on stdout,\n"
	"a bare array for lists).\n"
	"\n"
	"SOURCE: a local git repository path, any git URL, github:OWNER/REPO or\n"
	"https://github.com/OWNER/REPO.\n"
	"\n"
	"Store: --db PATH, else $PROJSYNC_DB, else $XDG_DATA_HOME/projsync/projsync.db, else\n"
	"~/.local/share/projsync/projsync.db. Remote sources are cached in <store dir>/cache.\n"
	"\n"
	"Exit codes (those of the API's HTTP status for the same request): 0 ok, 1 failure,\n"
	"2 usage error or invalid input (400/422), 3 not found (404: also a store that is not\n"
	"there), 4 conflict (409: a sync is already running, a name is taken, a sync that did not\n"
	"succeed used as a snapshot).\n";

static const char migrate_usage[] =
	"usage: projsync migrate [--json]\n"
	"\n"
	"Applies the store's pending schema migrations (opening the store does this too) and\n"
	"prints \"schema version A -> B\". --json prints {\"from\": A, \"to\": B}.\n";

struct command {
	const char *name;
	int (*run)(struct ps_cli *cli, int argc, char **argv);
};

static const struct command commands[] = {
	{ "project", ps_cmd_project },
	{ "branches", ps_cmd_branches },
	{ "sync", ps_cmd_sync },
	{ "cancel", ps_cmd_cancel },
	{ "status", ps_cmd_status },
	{ "history", ps_cmd_history },
	{ "changes", ps_cmd_changes },
	{ "log", ps_cmd_log },
	{ "diff", ps_cmd_diff },
	{ "files", ps_cmd_files },
	{ "cat", ps_cmd_cat },
	{ "grep", ps_cmd_grep },
	{ "checkout", ps_cmd_checkout },
	{ "verify", ps_cmd_verify },
	{ "memory", ps_cmd_memory },
	{ "migrate", ps_cmd_migrate },
	{ "stats", ps_cmd_stats },
	{ "serve", ps_cmd_serve },
	{ "__complete", ps_cmd_complete }, /* for shell completion; not in --help */
	{ "store", ps_cmd_store },
	{ "prune", ps_cmd_prune },
};

int ps_cli_exit_code(int rc)
{
	switch (rc) {
	case 0: return PS_EXIT_OK;
	case PS_EINVAL: return PS_EXIT_USAGE;
	case PS_ENOTFOUND: return PS_EXIT_NOTFOUND;
	case PS_ECONFLICT: return PS_EXIT_CONFLICT;
	default: return PS_EXIT_FAILURE;
	}
}

int ps_cli_fail(int rc)
{
	const char *msg = ps_error_message();

	if (rc == 0)
		return PS_EXIT_OK;
	/* One line: a message that carries a newline (from a library) is cut at it. */
	fprintf(stderr, "projsync: %.*s\n", (int)strcspn(msg[0] ? msg : ps_error_code_name(rc), "\n"),
		msg[0] ? msg : ps_error_code_name(rc));
	return ps_cli_exit_code(rc);
}

void ps_cli_catch_signals(bool install, void (*on_signal)(int), struct sigaction old[3])
{
	static const int sigs[3] = { SIGINT, SIGTERM, SIGPIPE };

	for (int i = 0; i < 3; i++) {
		if (install) {
			struct sigaction sa = { 0 };
			sa.sa_handler = sigs[i] == SIGPIPE ? SIG_IGN : on_signal;
			/* The first signal asks politely; the second one kills. */
			sa.sa_flags = sigs[i] == SIGPIPE ? 0 : SA_RESETHAND;
			sigemptyset(&sa.sa_mask);
			sigaction(sigs[i], &sa, &old[i]);
		} else {
			sigaction(sigs[i], &old[i], NULL);
		}
	}
}

int ps_cli_usage_error(struct ps_cli *cli, const char *fmt, ...)
{
	va_list ap;

	fputs("projsync: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cli && cli->command)
		fprintf(stderr, " (see 'projsync %s --help')\n", cli->command);
	else
		fputs(" (see 'projsync --help')\n", stderr);
	return PS_EXIT_USAGE;
}

/* The word of the command line that getopt was reading when it met the unknown letter `c`: a
 * single-dash word of more than one letter (getopt has not always stepped past it yet). */
static const char *dash_word(int argc, char **argv, int c)
{
	for (int i = optind - 1; i <= optind && i < argc; i++)
		if (i > 0 && argv[i][0] == '-' && argv[i][1] != '-' && strlen(argv[i]) > 2 &&
		    strchr(argv[i] + 1, c))
			return argv[i];
	return NULL;
}

/* The first letter of single-dash word `w` that is not one of `shorts` (getopt's optstring),
 * or 0 when the whole word reads as options: the letters after one that takes a value are
 * that value. */
static int dash_word_unknown(const char *w, const char *shorts)
{
	for (const char *q = w + 1; *q; q++) {
		const char *o = *q == ':' ? NULL : strchr(shorts, *q);
		if (!o)
			return (unsigned char)*q;
		if (o[1] == ':')
			return 0;
	}
	return 0;
}

int ps_cli_getopt(struct ps_cli *cli, int argc, char **argv, const struct option *longopts,
		  const char *usage)
{
	enum { OPT_DB = 0x7001, OPT_HELP = 'h' };
	static char **parsing;
	struct option all[40];
	char shorts[64] = ":h";
	size_t n = 0, ns = 2;
	int c, idx = 0;

	if (argv != parsing) {
		/* GNU getopt: optind = 0 re-initialises it (and its permutation state). */
		optind = 0;
		parsing = argv;
	}
	for (; longopts && n < sizeof(all) / sizeof(*all) - 3 && longopts[n].name; n++) {
		all[n] = longopts[n];
		/* An option whose val is a letter also has that short form (grep's -F, -E, -i). */
		if (longopts[n].val < 128 && isalpha(longopts[n].val) && ns < sizeof(shorts) - 3) {
			shorts[ns++] = (char)longopts[n].val;
			if (longopts[n].has_arg == required_argument)
				shorts[ns++] = ':';
			shorts[ns] = '\0';
		}
	}
	all[n++] = (struct option){ "help", no_argument, NULL, OPT_HELP };
	all[n++] = (struct option){ "db", required_argument, NULL, OPT_DB };
	all[n] = (struct option){ 0 };
	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, shorts, all, &idx);
		if (c == OPT_HELP) {
			/* "-hidden.txt" or a search for "-hello" reads as -h -i -d...: getopt
			 * meets the h first, and printing the usage with exit 0 would pass for the
			 * answer (cat would "print" the file). Refuse it as any other unknown
			 * letter of such a word is refused. */
			const char *w = dash_word(argc, argv, 'h');
			int bad = w ? dash_word_unknown(w, shorts) : 0;
			if (bad) {
				parsing = NULL;
				ps_cli_usage_error(cli, "unknown option '-%c' in '%s' (an argument "
						   "that starts with '-' goes after '--')", bad, w);
				return PS_CLI_OPT_ERROR;
			}
			fputs(usage, stdout);
			parsing = NULL;
			return PS_CLI_OPT_HELP;
		}
		if (c == OPT_DB) {
			free(cli->db_option);
			cli->db_option = ps_strdup(optarg);
			continue;
		}
		if (c == ':' || c == '?') {
			const char *arg = argv[optind - 1];
			parsing = NULL;
			if (c == ':')
				ps_cli_usage_error(cli, "option '%s' needs a value", arg);
			else if (optopt && optopt != '?' && (arg = dash_word(argc, argv, optopt)))
				/* "-leading-dash.txt" reads as options -l -e -a...: say so, and how
				 * to give such a path or pattern. */
				ps_cli_usage_error(cli, "unknown option '-%c' in '%s' (an argument "
						   "that starts with '-' goes after '--')", optopt, arg);
			else if (optopt && optopt != '?')
				ps_cli_usage_error(cli, "unknown option '-%c'", optopt);
			else
				ps_cli_usage_error(cli, "unknown option '%s'", arg);
			return PS_CLI_OPT_ERROR;
		}
		if (c == -1)
			parsing = NULL;
		return c;
	}
}

bool ps_cli_parse_id(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v <= 0)
		return false;
	*out = v;
	return true;
}

void ps_cli_print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT);
	fputc('\n', stdout);
	json_decref(j);
}

/* Length of the UTF-8 character at `p` that a terminal shows as text (not a C1 control,
 * U+0080..U+009F, which some terminals obey like ESC), or 0. */
static size_t shown_utf8(const unsigned char *p)
{
	size_t k;
	uint32_t cp;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		k = 1, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		k = 2, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		k = 3, cp = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i <= k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((k == 1 && cp < 0xa0) || (k == 2 && cp < 0x800) ||
	    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k + 1;
}

/* git's escapes (quote.c): \a \b \t \n \v \f \r \" \\, else 3 octal digits. Text in UTF-8
 * stays as it is (git's core.quotePath=false); bytes that are not (and C1 controls) are
 * escaped like control characters: printed raw, they garble or drive the terminal. */
char *ps_cli_quote_path(const char *path)
{
	static const char named[] = { ['\a'] = 'a', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n',
				      ['\v'] = 'v', ['\f'] = 'f', ['\r'] = 'r' };
	const unsigned char *u = (const unsigned char *)path;
	bool plain = true;
	struct ps_buf b;
	size_t n;

	for (const unsigned char *p = u; *p && plain; p += n ? n : 1) {
		n = *p >= 0x80 ? shown_utf8(p) : 0;
		plain = !(*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\' || (*p >= 0x80 && !n));
	}
	if (plain)
		return ps_strdup(path);
	ps_buf_init(&b, strlen(path) * 4 + 3);
	ps_buf_puts(&b, "\"");
	for (const unsigned char *p = u; *p;) {
		char esc[5] = { '\\', 0, 0, 0, 0 };
		if (*p >= 0x80 && (n = shown_utf8(p))) {
			ps_buf_append(&b, p, n);
			p += n;
			continue;
		}
		if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
		} else if (*p < sizeof(named) && named[*p]) {
			esc[1] = named[*p];
		} else if (*p < 0x20 || *p >= 0x7f) {
			esc[1] = (char)('0' + (*p >> 6));
			esc[2] = (char)('0' + ((*p >> 3) & 7));
			esc[3] = (char)('0' + (*p & 7));
		} else {
			esc[0] = (char)*p;
		}
		ps_buf_puts(&b, esc);
		p++;
	}
	ps_buf_puts(&b, "\"");
	return ps_buf_take(&b, NULL);
}

void ps_cli_format_time(int64_t ms, char *out, size_t outlen)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !localtime_r(&t, &tm)) {
		snprintf(out, outlen, "-");
		return;
	}
	strftime(out, outlen, "%Y-%m-%d %H:%M", &tm);
}

void ps_cli_format_ago(int64_t ms, char *out, size_t outlen)
{
	int64_t s;

	if (ms <= 0) {
		snprintf(out, outlen, "never");
		return;
	}
	s = (ps_now_ms() - ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, outlen, "%llds ago", (long long)s);
	else if (s < 3600)
		snprintf(out, outlen, "%lldm ago", (long long)(s / 60));
	else if (s < 86400)
		snprintf(out, outlen, "%lldh ago", (long long)(s / 3600));
	else
		snprintf(out, outlen, "%lldd ago", (long long)(s / 86400));
}

void ps_cli_short_sha(const char *sha, char out[8])
{
	snprintf(out, 8, "%.7s", sha && sha[0] ? sha : "-");
}

/* ---- tables ---- */

void ps_table_init(struct ps_table *t, size_t ncols, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	ps_table_add(t, headers);
}

/* Control characters (C0 but `keep`, DEL, C1) and bytes that are not UTF-8 as spaces: a lone
 * 0x9b is an 8-bit CSI to some terminals, as the C1 of U+009B is. */
static char *printable(const char *s, const char *keep)
{
	char *out = ps_strdup(s ? s : "");
	size_t n;

	for (unsigned char *p = (unsigned char *)out; *p; p += n ? n : 1) {
		n = 0;
		if (*p >= 0x80 && !(n = shown_utf8(p)))
			*p = ' ';
		else if ((*p < 0x20 && !strchr(keep, *p)) || *p == 0x7f)
			*p = ' ';
	}
	return out;
}

char *ps_cli_printable(const char *s)
{
	return printable(s, "");
}

char *ps_cli_printable_text(const char *s)
{
	return printable(s, "\n\t");
}

void ps_table_add(struct ps_table *t, const char *const *cells)
{
	/* Cells come from repositories too (commit subjects, author names): a control character
	 * would drive the terminal (ESC) or break the row (a newline), and miscount its width. */
	for (size_t i = 0; i < t->ncols; i++) {
		char *cell = ps_cli_printable(cells[i] ? cells[i] : "-");
		ps_strv_push(&t->cells, cell);
		free(cell);
	}
}

void ps_table_print(const struct ps_table *t, FILE *out)
{
	size_t *w = ps_calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
	size_t rows = t->ncols ? t->cells.n / t->ncols : 0;
	struct ps_buf line;

	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t dw = ps_display_width(t->cells.v[r * t->ncols + c]);
			if (dw > w[c])
				w[c] = dw;
		}
	ps_buf_init(&line, SIZE_MAX / 2);
	for (size_t r = 0; r < rows; r++) {
		line.len = 0;
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells.v[r * t->ncols + c];
			int pad = (int)(w[c] - ps_display_width(cell));
			if (c)
				ps_buf_puts(&line, "  ");
			if (t->right_align & (1u << c))
				ps_buf_printf(&line, "%*s%s", pad, "", cell);
			else
				ps_buf_printf(&line, "%s%*s", cell, pad, "");
		}
		/* Empty trailing cells leave only padding: no trailing blanks. */
		while (line.len && line.data[line.len - 1] == ' ')
			line.len--;
		if (line.len)
			fwrite(line.data, 1, line.len, out);
		fputc('\n', out);
	}
	ps_buf_dispose(&line);
	free(w);
}

void ps_table_dispose(struct ps_table *t)
{
	ps_strv_dispose(&t->cells);
}

/* ---- the store ---- */

static char *default_db_path(void)
{
	const char *env = getenv("PROJSYNC_DB");
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");

	if (env && env[0])
		return ps_strdup(env);
	if (xdg && xdg[0] == '/')  /* the XDG spec: relative values are invalid, ignore them */
		return ps_asprintf("%s/projsync/projsync.db", xdg);
	if (home && home[0])
		return ps_asprintf("%s/.local/share/projsync/projsync.db", home);
	return NULL;
}

char *ps_cli_store_path(struct ps_cli *cli)
{
	return cli->db_option ? ps_strdup(cli->db_option) : default_db_path();
}

static bool is_url(const char *s)
{
	return strncmp(s, "postgres://", 11) == 0 || strncmp(s, "postgresql://", 13) == 0;
}

/* The store location (db_url), the local data directory and its cache, resolved once per run:
 * ps_cli_source_opts lends out cache_dir, before or after the store is opened. Creates nothing. */
static int store_location(struct ps_cli *cli)
{
	const char *slash;

	if (cli->db_url)
		return 0;
	cli->db_url = cli->db_option ? ps_strdup(cli->db_option) : default_db_path();
	if (!cli->db_url)
		return ps_error_set(PS_EINVAL, NULL,
				    "no store location: pass --db PATH or set PROJSYNC_DB or HOME");
	free(cli->data_dir);
	if (is_url(cli->db_url)) {
		/* A database server holds the data; caches still need a local directory. */
		char *local = default_db_path();
		if (local && !is_url(local) && (slash = strrchr(local, '/')))
			cli->data_dir = ps_strndup(local, (size_t)(slash - local));
		else
			cli->data_dir = ps_strdup(".");
		free(local);
	} else {
		slash = strrchr(cli->db_url, '/');
		cli->data_dir = slash ? ps_strndup(cli->db_url, slash == cli->db_url ? 1
					: (size_t)(slash - cli->db_url))
				      : ps_strdup(".");
	}
	free(cli->cache_dir);
	cli->cache_dir = ps_asprintf("%s/cache", cli->data_dir);
	return 0;
}

int ps_cli_open_store(struct ps_cli *cli, unsigned flags)
{
	int rc;

	if (cli->store)
		return 0;
	if ((rc = store_location(cli)) < 0)
		return rc;
	if ((flags & PS_CLI_STORE_CREATE) && !is_url(cli->db_url) &&
	    (rc = ps_mkdir_p(cli->data_dir)) < 0)
		return ps_error_wrap(rc, "store directory %s: ", cli->data_dir);
	rc = ps_store_open(&cli->store, cli->db_url, (flags & ~PS_CLI_STORE_CREATE) |
			   (flags & PS_CLI_STORE_CREATE ? 0 : PS_STORE_NO_CREATE));
	if (rc == PS_ENOTFOUND && strcmp(ps_error_slug(), "no_store") == 0)
		ps_error_set(rc, "no_store", "no store at %s (run 'projsync project add NAME "
			     "SOURCE' to create one, or check --db and $PROJSYNC_DB)", cli->db_url);
	return rc;
}

int ps_cli_source_opts(struct ps_cli *cli, struct ps_source_opts *out)
{
	int rc;

	/* Every command that reaches a source (or serves those that do) comes here first: a bad
	 * bound is refused before it starts, not replaced by the default without a word. */
	if ((rc = ps_source_net_timeout_check()) < 0 || (rc = store_location(cli)) < 0)
		return rc;
	/* The same for the ssh settings (git_cli.h): a key that is not there, or a typo in
	 * PROJSYNC_SSH_STRICT, is refused now, not met by the first ssh sync. */
	{
		char *key = NULL;
		if ((rc = ps_git_ssh_strict()) < 0 || (rc = ps_git_ssh_key(NULL, &key)) < 0)
			return rc;
		free(key);
	}
	*out = (struct ps_source_opts){ .cache_dir = cli->cache_dir };
	/* A failure here surfaces when the source tries to use the directory, with its path. */
	if (cli->cache_dir)
		(void)ps_mkdir_p(cli->cache_dir);
	return 0;
}

/* ---- commands defined here ---- */

int ps_cmd_migrate(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_JSON = 0x100 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	int c, rc, from = 0, to = 0;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, migrate_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	if ((rc = ps_cli_open_store(cli, PS_STORE_NO_MIGRATE | PS_CLI_STORE_CREATE)) < 0 ||
	    (rc = ps_store_migrate(cli->store, &from, &to)) < 0)
		return ps_cli_fail(rc);
	if (cli->json)
		ps_cli_print_json(json_pack("{s:i, s:i}", "from", from, "to", to));
	else
		printf("schema version %d -> %d\n", from, to);
	return PS_EXIT_OK;
}

/* ---- main ---- */

static void cli_dispose(struct ps_cli *cli)
{
	ps_store_free(cli->store);
	free(cli->db_option);
	free(cli->db_url);
	free(cli->data_dir);
	free(cli->cache_dir);
	memset(cli, 0, sizeof(*cli));
}

int ps_cli_main(int argc, char **argv)
{
	struct ps_cli cli = { 0 };
	const struct command *cmd = NULL;
	char **help_argv = NULL;
	int i, rc;

	cli.stdout_tty = isatty(STDOUT_FILENO) == 1;
	/* Global options come before the command; the command's own parser takes the rest. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(main_usage, stdout);
			cli_dispose(&cli);
			return PS_EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			puts("projsync " PS_VERSION);
			cli_dispose(&cli);
			return PS_EXIT_OK;
		} else if (strcmp(a, "--json") == 0) {
			cli.json = true;
		} else if (strcmp(a, "--db") == 0 || strncmp(a, "--db=", 5) == 0) {
			const char *v = a[4] == '=' ? a + 5 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || !v[0]) {
				cli_dispose(&cli);
				return ps_cli_usage_error(NULL, "option '--db' needs a value");
			}
			free(cli.db_option);
			cli.db_option = ps_strdup(v);
		} else {
			cli_dispose(&cli);
			return ps_cli_usage_error(NULL, "unknown option '%s'", a);
		}
	}
	if (i >= argc) {
		fputs("projsync: no command given (see 'projsync --help')\n", stderr);
		cli_dispose(&cli);
		return PS_EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0 && i + 1 < argc) {
		/* git's habit: `help sync` is `sync --help`, `help project add` is
		 * `project add --help` (it printed the overview, whatever followed). */
		int n = 0;
		help_argv = ps_calloc((size_t)(argc - i + 1), sizeof(*help_argv));
		for (int k = i + 1; k < argc; k++)
			help_argv[n++] = argv[k];
		help_argv[n++] = (char *)"--help";
		argv = help_argv;
		argc = n;
		i = 0;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(*commands); k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			cmd = &commands[k];
	if (!cmd) {
		if (strcmp(argv[i], "help") == 0) {
			fputs(main_usage, stdout);
			cli_dispose(&cli);
			return PS_EXIT_OK;
		}
		fprintf(stderr, "projsync: unknown command '%s' (see 'projsync --help')\n",
			argv[i]);
		free(help_argv);
		cli_dispose(&cli);
		return PS_EXIT_USAGE;
	}
	cli.command = cmd->name;
	rc = cmd->run(&cli, argc - i, argv + i);
	/* Output that did not arrive (full disk, closed pipe) is a failure, not a success. */
	errno = 0;
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == PS_EXIT_OK) {
		fprintf(stderr, "projsync: writing output failed%s%s\n", errno ? ": " : "",
			errno ? strerror(errno) : "");
		rc = PS_EXIT_FAILURE;
	}
	free(help_argv);
	cli_dispose(&cli);
	return rc;
}
