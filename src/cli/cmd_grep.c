/*
 * `projsync grep PATTERN NAME`: searches the code of one snapshot and prints what `git grep -n`
 * prints on a checkout of that sync's commit (core/grep.h has the matching rules). Matches
 * stream to stdout as they are found, in path then line order; notes (an unindexed scan, a
 * --max cut) go to stderr. Exit codes follow grep: 0 with matches, 1 without.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/grep.h"
#include "util/error.h"

static const char grep_usage[] =
	"usage: projsync grep PATTERN NAME [--at SYNC_ID] [-F|-E] [-i] [--path GLOB] [--max N]\n"
	"                     [--timeout SECONDS] [--json]\n"
	"\n"
	"Searches the files of a project's snapshot (the latest, or the one of succeeded sync\n"
	"SYNC_ID) and prints each matching line as PATH:LINE:TEXT, like `git grep -n` on a\n"
	"checkout of that commit; a binary file prints \"Binary file PATH matches\".\n"
	"\n"
	"  -F, --fixed-strings    PATTERN is a literal string (the default)\n"
	"  -E, --extended-regexp  PATTERN is a regular expression in PCRE2 (Perl) syntax, as\n"
	"                         `git grep -P` takes it (not together with -F)\n"
	"  -i, --ignore-case      ignore case\n"
	"  --path GLOB            only paths matching GLOB (* and ? within a directory, ** across);\n"
	"                         a plain path is a file or a directory, as in git (src: under src/)\n"
	"  --max N                stop after N matches\n"
	"  --timeout SECONDS      give up after this long (default 10)\n"
	"  --json                 a JSON array of {\"path\", \"line\", \"column\", \"text\", \"binary\"}\n"
	"\n"
	"A pattern starting with '-' goes after `--`. The code index narrows which files are read;\n"
	"a pattern without 3 ASCII characters in a row reads every file (a note says so).\n"
	"Exit codes: 0 matches found, 1 none (or a failure), 2 invalid pattern or usage, 3 not found.\n";

enum { OPT_JSON = 0x100, OPT_AT, OPT_PATH, OPT_MAX, OPT_TIMEOUT };

/* git's quoting of unusual paths (quote_c_style with core.quotePath on), so lines compare equal
 * to `git grep`'s. */
static void print_path(const char *path)
{
	bool plain = true;

	for (const unsigned char *p = (const unsigned char *)path; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			plain = false;
	if (plain) {
		fputs(path, stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		static const char from[] = "\a\b\t\n\v\f\r\"\\", to[] = "abtnvfr\"\\";
		const char *e = *p ? strchr(from, *p) : NULL;
		if (e)
			printf("\\%c", to[e - from]);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\%03o", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

struct out {
	bool json;
	int64_t n;
};

static int print_match(void *ud, const struct ps_grep_match *m)
{
	struct out *o = ud;

	if (o->json) {
		json_t *j = ps_grep_match_to_json(m);
		char *text = json_dumps(j, JSON_COMPACT);
		fputs(o->n ? "," : "", stdout);
		fputs(text, stdout);
		free(text);
		json_decref(j);
	} else if (m->binary) {
		fputs("Binary file ", stdout);
		print_path(m->path);
		fputs(" matches\n", stdout);
	} else {
		print_path(m->path);
		printf(":%" PRId64 ":", m->line);
		fwrite(m->text, 1, m->text_len, stdout);
		putchar('\n');
	}
	o->n++;
	return 0;
}

int ps_cmd_grep(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "at", required_argument, NULL, OPT_AT },
		{ "fixed-strings", no_argument, NULL, 'F' },
		{ "extended-regexp", no_argument, NULL, 'E' },
		{ "ignore-case", no_argument, NULL, 'i' },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "max", required_argument, NULL, OPT_MAX },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ 0 },
	};
	struct ps_grep_opts go = { .timeout_ms = PS_GREP_DEFAULT_TIMEOUT_MS };
	struct ps_grep_info info;
	struct ps_project *p = NULL;
	struct out out = { 0 };
	int c, rc, exit_code, kind = 0;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, grep_usage)) != -1) {
		char *end = NULL;
		double secs;

		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		case 'F':
		case 'E':
			/* The last flag winning would search for something the user did not ask
			 * for (a literal taken as a regex or the other way) without a word. */
			if (kind && kind != c)
				return ps_cli_usage_error(cli, "-F (--fixed-strings) and -E "
							  "(--extended-regexp) cannot be combined");
			kind = c;
			go.regex = c == 'E';
			break;
		case 'i': go.ignore_case = true; break;
		case OPT_PATH: go.path_glob = optarg; break;
		case OPT_AT:
			if (!ps_cli_parse_id(optarg, &go.at))
				return ps_cli_usage_error(cli, "invalid --at '%s': give a sync id", optarg);
			break;
		case OPT_MAX:
			if (!ps_cli_parse_id(optarg, &go.max))
				return ps_cli_usage_error(cli, "invalid --max '%s': give a positive number",
							  optarg);
			break;
		case OPT_TIMEOUT:
			secs = strtod(optarg, &end);
			if (!end || *end || !(secs > 0) || secs > 86400)
				return ps_cli_usage_error(cli, "invalid --timeout '%s': give seconds "
							  "(at most 86400)", optarg);
			go.timeout_ms = (int64_t)(secs * 1000.0);
			if (go.timeout_ms < 1)
				go.timeout_ms = 1;
			break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < 2)
		return ps_cli_usage_error(cli, "grep needs a PATTERN and a project NAME");
	if (argc - optind > 2)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 2]);
	go.pattern = argv[optind];
	out.json = cli->json;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind + 1], &p)) < 0)
		return ps_cli_fail(rc);
	/* The words of `files` and `verify` for the same state (the store's own message knows
	 * no project name and no way out). */
	if (go.at == 0 && p->last_sync_id <= 0) {
		ps_error_set(PS_ENOTFOUND, "no_snapshot", "project %s has no snapshot yet: run "
			     "'projsync sync %s'", p->name, p->name);
		exit_code = ps_cli_fail(PS_ENOTFOUND);
		goto cleanup;
	}
	if (out.json)
		fputc('[', stdout);
	rc = ps_grep_run(cli->store, p, &go, print_match, &out, &info);
	if (out.json)
		fputs("]\n", stdout);
	if (rc < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (info.scanned)
		fprintf(stderr, "projsync: note: %s: read all %zu files of sync %" PRId64 "\n",
			p->no_code_index ? "the project has no code index (--no-code-index)"
					 : "the pattern has no 3-character literal the index can use",
			info.candidates, info.sync_id);
	if (info.more)
		fprintf(stderr, "projsync: note: stopped after %" PRId64 " matches (--max)\n", go.max);
	if (info.missing)
		fprintf(stderr, "projsync: warning: %zu file%s not searched: content lost from the "
			"store; 'projsync verify %s --blobs' lists every file that lost its content\n",
			info.missing, info.missing == 1 ? "" : "s", p->name);
	exit_code = out.n ? PS_EXIT_OK : PS_EXIT_FAILURE;
cleanup:
	ps_project_free(p);
	return exit_code;
}
