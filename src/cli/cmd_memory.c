/*
 * `projsync memory`: a project's knowledge base from the command line. Lists and searches
 * entries (`list`, `search`), shows one entry and its versions (`show`, `history`), restores an
 * older version (`restore`), adds a note by hand (`add`), edits one (`edit`: a new version) and
 * deletes one (`rm`: superseded with no successor, restorable). The work is the store's (store.h,
 * memory entries); this file parses, prints tables for people and the JSON shape of
 * core/memory.h for scripts.
 *
 * The grammar is decided by one rule: the first word after `memory` that is not an option (nor
 * an option's value) names the subcommand when it is one of them, else it is the project of the
 * short form `memory NAME [--search Q]` (kept from before `list` and `search` existed). So a
 * project may be called `show` or `list`: `memory list show` lists it, and `memory show`
 * always means the subcommand.
 *
 * Text that came from a repository (titles, snippets, paths) is printed with control characters
 * replaced, so a file cannot drive the terminal; `show` prints the content itself as it is,
 * like `cat`.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/memory.h"
#include "util/error.h"

static const char memory_usage[] =
	"usage: projsync memory list NAME [--include-superseded] [--limit N] [--offset N] [--json]\n"
	"       projsync memory search NAME TEXT... [--include-superseded] [--limit N] [--offset N]\n"
	"                                           [--json]\n"
	"       projsync memory show ID [--json]\n"
	"       projsync memory history ID [--json]\n"
	"       projsync memory restore ID [--json]\n"
	"       projsync memory add NAME --title T (--file F | --text S) [--tag T]... [--json]\n"
	"       projsync memory edit ID [--title T] [--file F | --text S] [--tag T]... [--no-tags]\n"
	"                               [--json]\n"
	"       projsync memory rm ID [--json]\n"
	"       projsync memory NAME [--search Q] ...   (short for list/search; see below)\n"
	"\n"
	"A project's memory entries: notes imported by each sync from files that match the\n"
	"project's memory globs (default " PS_DEFAULT_MEMORY_GLOB "), plus notes added by hand.\n"
	"A sync that changes or deletes such a file supersedes its entry; `restore` brings an\n"
	"older version back until a later sync changes that file again.\n"
	"\n"
	"  list NAME              the project's active entries, newest first\n"
	"  search NAME TEXT...    full-text search (title, content, tags), best match first;\n"
	"                         TEXT is plain words (quotes, -, *, AND, ... are text), several\n"
	"                         arguments are joined with spaces\n"
	"  --include-superseded   include superseded entries (marked in the STATUS column)\n"
	"  --limit N, --offset N  a page of the results\n"
	"  --json                 a bare array of memory entry objects (search results add\n"
	"                         \"snippet\", with <mark>...</mark> around matches, and \"rank\")\n"
	"\n"
	"The first word after `memory` that is not an option picks the subcommand: list, search,\n"
	"show, history, restore, add, edit or rm. Any other word is a project NAME, short for\n"
	"`list NAME` "
	"(`memory NAME --search Q` for `search NAME Q`). A project whose name is one of those\n"
	"words is reached with the explicit form: `projsync memory list show`.\n"
	"\n"
	"See 'projsync memory add --help' and friends for each subcommand.\n";

static const char list_usage[] =
	"usage: projsync memory list NAME [--search Q] [--include-superseded] [--limit N]\n"
	"                                 [--offset N] [--json]\n"
	"\n"
	"Lists project NAME's active entries, newest first (any NAME, `show` or `list` too).\n"
	"--search Q searches like 'projsync memory search NAME Q'.\n"
	"\n"
	"  --include-superseded   include superseded entries (marked in the STATUS column)\n"
	"  --limit N, --offset N  a page of the results\n"
	"  --json                 a bare array of memory entry objects\n";

static const char search_usage[] =
	"usage: projsync memory search NAME TEXT... [--include-superseded] [--limit N] [--offset N]\n"
	"                                           [--json]\n"
	"\n"
	"Full-text search of project NAME's entries (title, content, tags), best match first, each\n"
	"with a snippet of the match in [brackets]. TEXT is plain words: quotes, -, *, AND, OR,\n"
	"NEAR are searched as text, never as syntax; several arguments are joined with spaces.\n"
	"Text that starts with '-' goes after `--`: projsync memory search web -- -rf\n"
	"\n"
	"  --include-superseded   include superseded entries (marked \"superseded\")\n"
	"  --limit N, --offset N  a page of the results\n"
	"  --json                 a bare array of memory entry objects with \"snippet\" (matches in\n"
	"                         <mark>...</mark>) and \"rank\" (lower is better)\n";

static const char show_usage[] =
	"usage: projsync memory show ID [--json]\n"
	"\n"
	"Shows one memory entry (active or superseded) with its content. --json prints the entry.\n";

static const char history_usage[] =
	"usage: projsync memory history ID [--json]\n"
	"\n"
	"Lists every version of an entry's note (all entries of its path), newest first: which\n"
	"sync introduced each, what superseded it (a sync, or a restore), and what a restored\n"
	"version was copied from. --json prints a bare array of memory entry objects.\n";

static const char restore_usage[] =
	"usage: projsync memory restore ID [--json]\n"
	"\n"
	"Makes a superseded entry current again: a new active entry with its title, tags and\n"
	"content, which supersedes the current entry of the same file. It stays active until a\n"
	"later sync changes or deletes that file.\n"
	"\n"
	"Safe to retry: restoring a version that is already current (the entry is active, or the\n"
	"file's active entry is a restored copy of it with the same title, tags and content)\n"
	"changes nothing and says so. --json prints the active entry either way.\n";

static const char edit_usage[] =
	"usage: projsync memory edit ID [--title T] [--file F | --text S] [--tag T]... [--no-tags]\n"
	"                               [--json]\n"
	"\n"
	"Edits a note added by hand: a new version with the changes becomes the active entry and\n"
	"the old one is kept, superseded, in its history (`memory restore` brings it back). What is\n"
	"not given stays as it was. Notes imported from files are changed by changing the file.\n"
	"An edit that changes nothing makes no new version.\n"
	"\n"
	"  --title T    the new title (one line)\n"
	"  --file F     the new content, read from file F ('-': standard input)\n"
	"  --text S     the new content, given inline\n"
	"  --tag T      a tag; repeatable; the given tags replace the old ones\n"
	"  --no-tags    remove every tag\n"
	"  --json       print the active entry\n";

static const char rm_usage[] =
	"usage: projsync memory rm ID [--json]\n"
	"\n"
	"Deletes a note added by hand: its entry leaves lists and searches but stays in its\n"
	"history, and `memory restore ID` brings it back. Notes imported from files go away when\n"
	"the file does. --json prints the deleted entry.\n";

static const char add_usage[] =
	"usage: projsync memory add NAME --title T (--file F | --text S) [--tag T]... [--json]\n"
	"\n"
	"Adds a note by hand to project NAME. Syncs never supersede it.\n"
	"\n"
	"  --title T    one line\n"
	"  --file F     the content, read from file F ('-': standard input)\n"
	"  --text S     the content, given inline\n"
	"  --tag T      a tag; repeatable\n"
	"  --json       print the new entry\n";

enum {
	OPT_JSON = 0x100,
	OPT_SEARCH,
	OPT_INCLUDE_SUPERSEDED,
	OPT_LIMIT,
	OPT_OFFSET,
	OPT_TITLE,
	OPT_FILE,
	OPT_TEXT,
	OPT_TAG,
	OPT_NO_TAGS,
};

/* Text for one table cell or line: control characters (newlines too) become spaces. */
static char *printable(const char *s)
{
	char *out = ps_strdup(s ? s : "");

	for (unsigned char *p = (unsigned char *)out; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

static char *tags_text(const struct ps_memory_entry *e)
{
	struct ps_buf b;

	ps_buf_init(&b, 1 << 16);
	for (size_t i = 0; i < e->tags.n; i++) {
		const char *t = e->tags.v[i];
		size_t len = strlen(t);
		if (i)
			ps_buf_puts(&b, ", ");
		/* The list is joined with ", ": a tag holding a comma (or a quote, or edge
		 * spaces) is quoted, as front matter writes it, so one tag "a, b" does not read
		 * as the two tags a and b. */
		if (strpbrk(t, ",\"") || (len && (t[0] == ' ' || t[len - 1] == ' '))) {
			ps_buf_puts(&b, "\"");
			for (const char *q = t; *q; q++) {
				if (*q == '"' || *q == '\\')
					ps_buf_puts(&b, "\\");
				ps_buf_append(&b, q, 1);
			}
			ps_buf_puts(&b, "\"");
		} else {
			ps_buf_puts(&b, t);
		}
	}
	char *raw = ps_buf_take(&b, NULL), *out = printable(raw);
	free(raw);
	return out;
}

/* The <mark>...</mark> of a snippet as [...] for a terminal. */
static char *snippet_text(const char *snippet)
{
	struct ps_buf b;
	const char *p = snippet ? snippet : "";

	ps_buf_init(&b, strlen(p) + 1);
	while (*p) {
		if (strncmp(p, "<mark>", 6) == 0) {
			ps_buf_puts(&b, "[");
			p += 6;
		} else if (strncmp(p, "</mark>", 7) == 0) {
			ps_buf_puts(&b, "]");
			p += 7;
		} else {
			ps_buf_append(&b, p++, 1);
		}
	}
	char *raw = ps_buf_take(&b, NULL), *out = printable(raw);
	free(raw);
	return out;
}

static const char *where(const struct ps_memory_entry *e)
{
	return e->source_ref ? e->source_ref : "(manual)";
}

static void print_json_array(const struct ps_memory_entry *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, ps_memory_entry_to_json(&v[i]));
	ps_cli_print_json(a);
}

/* "sync 3", "restore of 5", "manual" */
static void introduced_text(const struct ps_memory_entry *e, char *out, size_t len)
{
	if (e->introduced_by_sync)
		snprintf(out, len, "sync %" PRId64, e->introduced_by_sync);
	else if (e->restored_from)
		snprintf(out, len, "restore of %" PRId64, e->restored_from);
	else
		snprintf(out, len, "%s", ps_memory_origin_name(e->origin));
}

/* "sync 7", "sync 7 (deleted)", "entry 9 (restore)", "-" */
static void superseded_text(const struct ps_memory_entry *e, char *out, size_t len)
{
	if (e->status == PS_MEMORY_ACTIVE)
		snprintf(out, len, "-");
	else if (e->superseded_by_sync && e->superseded_by_entry)
		snprintf(out, len, "sync %" PRId64 " (entry %" PRId64 ")", e->superseded_by_sync,
			 e->superseded_by_entry);
	else if (e->superseded_by_sync)
		snprintf(out, len, "sync %" PRId64 " (file removed)", e->superseded_by_sync);
	else if (e->superseded_by_entry && e->origin == PS_MEMORY_FROM_MANUAL)
		snprintf(out, len, "entry %" PRId64, e->superseded_by_entry);
	else if (e->superseded_by_entry)
		snprintf(out, len, "entry %" PRId64 " (restore)", e->superseded_by_entry);
	else if (ps_memory_deleted(e))
		snprintf(out, len, "deleted");
	else
		snprintf(out, len, "yes");
}

/* Parses a non-negative count ("0", "25"). */
static bool parse_count(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		return false;
	*out = v;
	return true;
}

/* ---- list, search, and the short form `memory NAME` ---- */

enum list_form { FORM_SHORT, FORM_LIST, FORM_SEARCH };

static int memory_list(struct ps_cli *cli, int argc, char **argv, enum list_form form)
{
	static const struct option opts[] = {
		{ "include-superseded", no_argument, NULL, OPT_INCLUDE_SUPERSEDED },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "search", required_argument, NULL, OPT_SEARCH }, /* not for `search`: last */
		{ 0 },
	};
	static const struct option search_opts[] = {
		{ "include-superseded", no_argument, NULL, OPT_INCLUDE_SUPERSEDED },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	const char *usage = form == FORM_SHORT ? memory_usage :
			    form == FORM_LIST ? list_usage : search_usage;
	struct ps_project *p = NULL;
	struct ps_memory_entry *v = NULL;
	const char *query = NULL;
	char *joined = NULL;
	bool superseded = false;
	int64_t limit = 0, offset = 0;
	size_t n = 0;
	int c, rc;

	while ((c = ps_cli_getopt(cli, argc, argv, form == FORM_SEARCH ? search_opts : opts,
				  usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		case OPT_SEARCH: query = optarg; break;
		case OPT_INCLUDE_SUPERSEDED: superseded = true; break;
		case OPT_LIMIT:
			if (!ps_cli_parse_id(optarg, &limit))
				return ps_cli_usage_error(cli, "invalid --limit '%s': give a positive "
							  "number", optarg);
			break;
		case OPT_OFFSET:
			if (!parse_count(optarg, &offset))
				return ps_cli_usage_error(cli, "invalid --offset '%s': give a number",
							  optarg);
			break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < 1)
		return ps_cli_usage_error(cli, form == FORM_SHORT ?
					  "memory needs a subcommand (list, search, show, history, "
					  "restore, add, edit, rm) or a project NAME" :
					  "%s needs a project NAME", cli->command);
	if (form == FORM_SEARCH) {
		size_t len = 0;

		if (argc - optind < 2)
			return ps_cli_usage_error(cli, "memory search needs TEXT to search for");
		/* Bounded by the command line itself; an over-long text is refused below by
		 * ps_memory_fts_query with its own message. */
		for (int i = optind + 1; i < argc; i++)
			len += strlen(argv[i]) + 1;
		joined = ps_malloc(len);
		joined[0] = '\0';
		for (int i = optind + 1; i < argc; i++) {
			if (i > optind + 1)
				strcat(joined, " ");
			strcat(joined, argv[i]);
		}
		query = joined;
	} else if (argc - optind > 1) {
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	}
	if (query) {
		/* Checked before the store opens: a bad query is the user's input, exit 2. */
		char *fts = NULL;
		if ((rc = ps_memory_fts_query(&fts, query)) < 0) {
			free(joined);
			return ps_cli_fail(rc == PS_ETOOBIG ? PS_EINVAL : rc);
		}
		free(fts);
	}
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0 ||
	    (rc = ps_store_memory_search(cli->store, p->id, query, superseded, limit, offset, &v,
					 &n)) < 0) {
		ps_project_free(p);
		free(joined);
		return ps_cli_fail(rc);
	}
	if (cli->json) {
		print_json_array(v, n);
	} else if (n == 0 && offset > 0) {
		/* A page past the end: the project may well have entries, just not this many. */
		printf(query ? "no memory entries of %s match past the first %" PRId64 "\n"
			     : "%s has no more memory entries past the first %" PRId64 "\n",
		       p->name, offset);
	} else if (n == 0) {
		printf(query ? "no memory entries of %s match\n" : "%s has no memory entries\n",
		       p->name);
	} else if (query) {
		for (size_t i = 0; i < n; i++) {
			/* The source in parentheses; where() already wraps "(manual)". */
			char *title = printable(v[i].title);
			char *path = printable(v[i].source_ref ? v[i].source_ref : "manual");
			char *snip = snippet_text(v[i].snippet), *tags = tags_text(&v[i]);
			printf("%" PRId64 "  %s  (%s)%s%s%s%s\n", v[i].id, title, path,
			       tags[0] ? "  [" : "", tags, tags[0] ? "]" : "",
			       v[i].status == PS_MEMORY_SUPERSEDED ? "  superseded" : "");
			if (snip[0])
				printf("    %s\n", snip);
			free(title);
			free(path);
			free(snip);
			free(tags);
		}
	} else {
		static const char *const headers[] = { "ID", "STATUS", "INTRODUCED", "TITLE",
						       "SOURCE", "TAGS" };
		struct ps_table t;

		ps_table_init(&t, 6, headers);
		t.right_align = 1u << 0;
		for (size_t i = 0; i < n; i++) {
			char id[24], intro[48];
			char *title = printable(v[i].title), *path = printable(where(&v[i]));
			char *tags = tags_text(&v[i]);
			snprintf(id, sizeof(id), "%" PRId64, v[i].id);
			introduced_text(&v[i], intro, sizeof(intro));
			const char *cells[] = { id, ps_memory_status_name(v[i].status), intro, title,
						path, tags[0] ? tags : NULL };
			ps_table_add(&t, cells);
			free(title);
			free(path);
			free(tags);
		}
		ps_table_print(&t, stdout);
		ps_table_dispose(&t);
	}
	ps_memory_entries_free(v, n);
	ps_project_free(p);
	free(joined);
	return PS_EXIT_OK;
}

/* ---- show, history, restore ---- */

/* Parses `SUB ID [--json]`; returns -1 to go on (with *id set), else the exit code. */
static int parse_id_args(struct ps_cli *cli, int argc, char **argv, const char *usage,
			 int64_t *id)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	int c;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < 1)
		return ps_cli_usage_error(cli, "%s needs a memory entry ID; for a project named "
					  "'%s': projsync memory list %s", cli->command, argv[0],
					  argv[0]);
	if (argc - optind > 1)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if (!ps_cli_parse_id(argv[optind], id))
		return ps_cli_usage_error(cli, "invalid memory entry id '%s': entry ids are numbers; "
					  "a project's entries: projsync memory list %s",
					  argv[optind], argv[optind]);
	return -1;
}

static int memory_show(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_memory_entry *e = NULL;
	char intro[48], sup[80], when[32];
	int64_t id;
	int rc;

	if ((rc = parse_id_args(cli, argc, argv, show_usage, &id)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 || (rc = ps_store_memory_get(cli->store, id, &e)) < 0)
		return ps_cli_fail(rc);
	if (cli->json) {
		ps_cli_print_json(ps_memory_entry_to_json(e));
	} else {
		char *title = printable(e->title), *path = printable(where(e)), *tags = tags_text(e);
		introduced_text(e, intro, sizeof(intro));
		superseded_text(e, sup, sizeof(sup));
		ps_cli_format_time(e->created_at, when, sizeof(when));
		printf("entry       %" PRId64 " (%s)\n", e->id, ps_memory_status_name(e->status));
		printf("title       %s\n", title);
		printf("project     %s\n", e->project);
		printf("source      %s %s\n", e->source, path);
		printf("tags        %s\n", tags[0] ? tags : "-");
		printf("introduced  %s\n", intro);
		printf("superseded  %s\n", sup);
		printf("created     %s\n\n", when);
		fputs(e->content ? e->content : "", stdout);
		if (e->content && e->content[0] && e->content[strlen(e->content) - 1] != '\n')
			fputc('\n', stdout);
		free(title);
		free(path);
		free(tags);
	}
	ps_memory_entry_free(e);
	return PS_EXIT_OK;
}

static int memory_history(struct ps_cli *cli, int argc, char **argv)
{
	static const char *const headers[] = { "ID", "STATUS", "INTRODUCED", "SUPERSEDED BY",
					       "CREATED", "TITLE" };
	struct ps_memory_entry *v = NULL;
	struct ps_table t;
	size_t n = 0;
	int64_t id;
	int rc;

	if ((rc = parse_id_args(cli, argc, argv, history_usage, &id)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_memory_history(cli->store, id, &v, &n)) < 0)
		return ps_cli_fail(rc);
	if (cli->json) {
		print_json_array(v, n);
		ps_memory_entries_free(v, n);
		return PS_EXIT_OK;
	}
	if (n > 0) {
		char *path = printable(where(&v[0]));
		printf("%s of project %s\n", path, v[0].project);
		free(path);
	}
	ps_table_init(&t, 6, headers);
	t.right_align = 1u << 0;
	for (size_t i = 0; i < n; i++) {
		char idtext[24], intro[48], sup[80], when[32];
		char *title = printable(v[i].title);
		snprintf(idtext, sizeof(idtext), "%" PRId64, v[i].id);
		introduced_text(&v[i], intro, sizeof(intro));
		superseded_text(&v[i], sup, sizeof(sup));
		ps_cli_format_time(v[i].created_at, when, sizeof(when));
		const char *cells[] = { idtext, ps_memory_status_name(v[i].status), intro, sup, when,
					title };
		ps_table_add(&t, cells);
		free(title);
	}
	ps_table_print(&t, stdout);
	ps_table_dispose(&t);
	ps_memory_entries_free(v, n);
	return PS_EXIT_OK;
}

static int memory_restore(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_memory_entry *e = NULL;
	bool restored = false;
	int64_t id;
	int rc;

	if ((rc = parse_id_args(cli, argc, argv, restore_usage, &id)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_memory_restore(cli->store, id, &e, &restored)) < 0)
		return ps_cli_fail(rc);
	if (!restored && e->id == id)
		fprintf(cli->json ? stderr : stdout,
			"memory entry %" PRId64 " is already active: nothing to restore\n", id);
	else if (!restored)
		fprintf(cli->json ? stderr : stdout,
			"memory entry %" PRId64 " is already current as entry %" PRId64
			": nothing to restore\n", id, e->id);
	if (cli->json) {
		ps_cli_print_json(ps_memory_entry_to_json(e));
	} else if (restored) {
		char *path = printable(where(e));
		printf("restored entry %" PRId64 " as entry %" PRId64 ", now active for %s\n", id,
		       e->id, path);
		free(path);
	}
	ps_memory_entry_free(e);
	return PS_EXIT_OK;
}

/* ---- add ---- */

static int read_content(const char *file, char **out)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	struct ps_buf b;
	char chunk[65536];
	size_t got;
	int rc = 0;

	if (!f)
		return ps_error_set(errno == ENOENT ? PS_ENOTFOUND : PS_EIO, NULL, "cannot read %s: %s",
				    file, strerror(errno));
	/* fopen() opens a directory for reading and only fread() fails (EISDIR): a folder given as
	 * the note is a mistake in the input, like a file that is not there (exit 2), not exit 1. */
	struct stat sb;
	if (f != stdin && fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fclose(f);
		return ps_error_set(PS_EINVAL, NULL, "cannot read %s: it is a directory", file);
	}
	ps_buf_init(&b, PS_MEMORY_MAX_CONTENT);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if ((rc = ps_buf_append(&b, chunk, got)) < 0) {
			rc = ps_error_set(PS_EINVAL, "content_too_big",
					  "%s is larger than %d bytes", file, PS_MEMORY_MAX_CONTENT);
			break;
		}
	if (rc == 0 && ferror(f))
		rc = ps_error_set(PS_EIO, NULL, "cannot read %s: %s", file, strerror(errno));
	if (f != stdin)
		fclose(f);
	if (rc == 0 && b.len && memchr(b.data, '\0', b.len))
		rc = ps_error_set(PS_EINVAL, "binary_content", "%s holds NUL bytes: not text", file);
	if (rc < 0) {
		ps_buf_dispose(&b);
		return rc;
	}
	*out = ps_buf_take(&b, NULL);
	return 0;
}

static int memory_add(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "title", required_argument, NULL, OPT_TITLE },
		{ "file", required_argument, NULL, OPT_FILE },
		{ "text", required_argument, NULL, OPT_TEXT },
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct ps_strv tags = { 0 };
	struct ps_project *p = NULL;
	struct ps_memory_entry *e = NULL;
	const char *title = NULL, *file = NULL, *text = NULL;
	char *content = NULL;
	int c, rc, exit_code;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, add_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP:
			ps_strv_dispose(&tags);
			return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		case OPT_TITLE: title = optarg; break;
		case OPT_FILE: file = optarg; break;
		case OPT_TEXT: text = optarg; break;
		case OPT_TAG: ps_strv_push(&tags, optarg); break;
		default:
			ps_strv_dispose(&tags);
			return PS_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !title || (!file == !text)) {
		ps_strv_dispose(&tags);
		if (argc - optind > 1)
			return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		if (argc - optind < 1)
			return ps_cli_usage_error(cli, "memory add needs a project NAME");
		if (!title)
			return ps_cli_usage_error(cli, "memory add needs --title");
		return ps_cli_usage_error(cli, "memory add needs exactly one of --file and --text");
	}
	if (file && (rc = read_content(file, &content)) < 0) {
		ps_strv_dispose(&tags);
		return ps_cli_fail(rc == PS_ENOTFOUND ? PS_EINVAL : rc);
	}
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0 ||
	    (rc = ps_store_memory_add(cli->store, p->id, title, content ? content : text, &tags,
				      &e)) < 0) {
		exit_code = ps_cli_fail(rc == PS_ETOOBIG ? PS_EINVAL : rc);
		goto out;
	}
	if (cli->json)
		ps_cli_print_json(ps_memory_entry_to_json(e));
	else
		printf("added memory entry %" PRId64 " to %s\n", e->id, p->name);
	exit_code = PS_EXIT_OK;
out:
	ps_memory_entry_free(e);
	ps_project_free(p);
	ps_strv_dispose(&tags);
	free(content);
	return exit_code;
}

/* ---- edit, rm ---- */

static int memory_edit(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "title", required_argument, NULL, OPT_TITLE },
		{ "file", required_argument, NULL, OPT_FILE },
		{ "text", required_argument, NULL, OPT_TEXT },
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "no-tags", no_argument, NULL, OPT_NO_TAGS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	struct ps_strv tags = { 0 };
	struct ps_memory_entry *e = NULL;
	const char *title = NULL, *file = NULL, *text = NULL;
	char *content = NULL;
	bool set_tags = false, no_tags = false, changed = false;
	int64_t id;
	int c, rc, exit_code = PS_EXIT_USAGE;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, edit_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: exit_code = PS_EXIT_OK; goto out;
		case OPT_JSON: cli->json = true; break;
		case OPT_TITLE: title = optarg; break;
		case OPT_FILE: file = optarg; break;
		case OPT_TEXT: text = optarg; break;
		case OPT_TAG: ps_strv_push(&tags, optarg); set_tags = true; break;
		case OPT_NO_TAGS: no_tags = true; break;
		default: goto out;
		}
	}
	if (argc - optind < 1) {
		exit_code = ps_cli_usage_error(cli, "memory edit needs a memory entry ID");
		goto out;
	}
	if (argc - optind > 1) {
		exit_code = ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!ps_cli_parse_id(argv[optind], &id)) {
		exit_code = ps_cli_usage_error(cli, "invalid memory entry id '%s': entry ids are "
					       "numbers (see projsync memory list NAME)",
					       argv[optind]);
		goto out;
	}
	if (file && text) {
		exit_code = ps_cli_usage_error(cli, "memory edit takes one of --file and --text");
		goto out;
	}
	if (set_tags && no_tags) {
		exit_code = ps_cli_usage_error(cli, "memory edit takes --tag or --no-tags, not both");
		goto out;
	}
	if (!title && !file && !text && !set_tags && !no_tags) {
		exit_code = ps_cli_usage_error(cli, "memory edit needs something to change: --title, "
					       "--file, --text, --tag or --no-tags");
		goto out;
	}
	if (file && (rc = read_content(file, &content)) < 0) {
		exit_code = ps_cli_fail(rc == PS_ENOTFOUND ? PS_EINVAL : rc);
		goto out;
	}
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_memory_edit(cli->store, id, title, content ? content : text,
				       set_tags || no_tags ? &tags : NULL, &e, &changed)) < 0) {
		exit_code = ps_cli_fail(rc == PS_ETOOBIG ? PS_EINVAL : rc);
		goto out;
	}
	if (!changed)
		fprintf(cli->json ? stderr : stdout,
			"memory entry %" PRId64 " already reads that way: nothing to change\n", id);
	if (cli->json)
		ps_cli_print_json(ps_memory_entry_to_json(e));
	else if (changed)
		printf("edited memory entry %" PRId64 ": entry %" PRId64 " is the new version\n", id,
		       e->id);
	exit_code = PS_EXIT_OK;
out:
	ps_memory_entry_free(e);
	ps_strv_dispose(&tags);
	free(content);
	return exit_code;
}

static int memory_rm(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_memory_entry *e = NULL;
	int64_t id;
	int rc;

	if ((rc = parse_id_args(cli, argc, argv, rm_usage, &id)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_memory_delete(cli->store, id, &e)) < 0)
		return ps_cli_fail(rc);
	if (cli->json) {
		ps_cli_print_json(ps_memory_entry_to_json(e));
	} else {
		char *title = printable(e->title);
		printf("deleted memory entry %" PRId64 " (%s); projsync memory restore %" PRId64
		       " brings it back\n", id, title, id);
		free(title);
	}
	ps_memory_entry_free(e);
	return PS_EXIT_OK;
}

/* Whether `arg` (an option word, without its leading "--" and any "=value") names an option of
 * some memory subcommand that takes a value: then the next word is that value, not an operand.
 * Unambiguous prefixes count, as getopt_long accepts them; no flag shares a first letter with
 * these. */
static bool takes_value(const char *name)
{
	static const char *const with_value[] = { "search", "limit", "offset", "title", "file",
						  "text", "tag", "db" };
	size_t len = strlen(name);

	if (len == 0 || strchr(name, '='))
		return false;
	for (size_t i = 0; i < sizeof(with_value) / sizeof(*with_value); i++)
		if (strncmp(with_value[i], name, len) == 0)
			return true;
	return false;
}

/* Index of the first operand (not an option, not an option's value) after argv[0], or argc. */
static int first_operand(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1 < argc ? i + 1 : argc;
		if (a[0] != '-' || a[1] == '\0')
			return i;
		if (a[1] == '-' && takes_value(a + 2))
			i++;
	}
	return argc;
}

int ps_cmd_memory(struct ps_cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name, *command;
		int (*run)(struct ps_cli *, int, char **);
		enum list_form form;
	} subs[] = {
		{ "list", "memory list", NULL, FORM_LIST },
		{ "search", "memory search", NULL, FORM_SEARCH },
		{ "show", "memory show", memory_show, 0 },
		{ "history", "memory history", memory_history, 0 },
		{ "restore", "memory restore", memory_restore, 0 },
		{ "add", "memory add", memory_add, 0 },
		{ "edit", "memory edit", memory_edit, 0 },
		{ "rm", "memory rm", memory_rm, 0 },
	};
	int at = first_operand(argc, argv);

	for (size_t i = 0; at < argc && i < sizeof(subs) / sizeof(*subs); i++) {
		char **rest;
		int n = 0, rc;

		if (strcmp(argv[at], subs[i].name) != 0)
			continue;
		/* The subcommand word becomes argv[0]; options given before it keep their order
		 * (and a "--" before it is dropped: it only marked the subcommand word). */
		rest = ps_calloc((size_t)argc + 1, sizeof(*rest));
		rest[n++] = argv[at];
		for (int k = 1; k < argc; k++)
			if (k != at && !(k == at - 1 && strcmp(argv[k], "--") == 0))
				rest[n++] = argv[k];
		cli->command = subs[i].command;
		rc = subs[i].run ? subs[i].run(cli, n, rest) : memory_list(cli, n, rest, subs[i].form);
		free(rest);
		return rc;
	}
	return memory_list(cli, argc, argv, FORM_SHORT);
}
