/*
 * `projsync project add|list|show|rm` and `projsync branches`: the commands that manage what is
 * synced. A project's source is checked before anything is stored, so a typo in SOURCE is
 * refused at once rather than discovered by the first sync.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/progress.h"
#include "model/json.h"
#include "core/project.h"
#include "model/schedule.h"
#include "util/error.h"

static const char project_usage[] =
	"usage: projsync project add NAME SOURCE [--branch B] [--memory-glob G]... [--max-blob-size BYTES]\n"
	"                               [--every DURATION|auto|off] [--keep-syncs N] [--keep-days D]\n"
	"                               [--no-code-index]\n"
	"       projsync project set NAME [--branch B | --default-branch] [--memory-glob G]...\n"
	"                               [--max-blob-size BYTES] [--rename NEW]\n"
	"                               [--source SOURCE [--continue-history]]\n"
	"                               [--every DURATION|auto|off] [--keep-syncs N] [--keep-days D]\n"
	"                               [--max-failures N] [--code-index | --no-code-index]\n"
	"       projsync project list [--json]\n"
	"       projsync project show NAME [--json]\n"
	"       projsync project resume NAME [--json]\n"
	"       projsync project rm NAME [--yes]\n"
	"\n"
	"Manages projects: a name, a repository source and the branch to sync.\n"
	"See 'projsync project add --help' and friends for each subcommand.\n";

static const char add_usage[] =
	"usage: projsync project add NAME SOURCE [--branch B] [--memory-glob G]...\n"
	"                            [--max-blob-size BYTES] [--every DURATION|auto|off]\n"
	"                            [--auto-min D] [--auto-max D] [--max-failures N]\n"
	"                            [--keep-syncs N] [--keep-days D] [--no-code-index] [--json]\n"
	"\n"
	"Adds a project after checking that SOURCE names a reachable git repository (nothing is\n"
	"stored when it does not).\n"
	"\n"
	"  NAME                   letters, digits, '.', '_', '-'; starts with a letter or digit;\n"
	"                         at most 100 characters\n"
	"  SOURCE                 a local repository path (stored as an absolute path), a git URL,\n"
	"                         github:OWNER/REPO or https://github.com/OWNER/REPO\n"
	"  --branch B             the branch to sync (default: the source's default branch,\n"
	"                         asked at every sync); must exist (exit 2 otherwise)\n"
	"  --memory-glob G        markdown files imported as memory entries; repeatable\n"
	"                         (default: " PS_DEFAULT_MEMORY_GLOB ")\n"
	"  --max-blob-size BYTES  files larger than this are kept without content (default 8M,\n"
	"                         at most 256M; suffixes K, M, G are powers of 1024)\n"
	"  --every DURATION|auto|off  sync on a schedule while 'projsync serve' runs: every\n"
	"                         DURATION (30s, 10m, 1h, 1d; 10s at least), 'auto' (halves the\n"
	"                         interval after a change, doubles it when up to date) or 'off'\n"
	"  --auto-min D, --auto-max D  the bounds of 'auto' (default 1m and 8h)\n"
	"  --max-failures N       pause the schedule after N failed syncs in a row (default: the\n"
	"                         server's --max-failures, 10); 0 = the server's\n"
	"  --keep-syncs N         'projsync prune' keeps the newest N succeeded syncs (0 = all)\n"
	"  --keep-days D          ... and the ones of the last D days (0 = no day limit, at\n"
	"                         most 36500); with both, a sync either keeps stays\n"
	"  --no-code-index        do not index its files for `projsync grep` (grep still works,\n"
	"                         reading every file)\n"
	"  --json                 print the project as JSON\n";

static const char set_usage[] =
	"usage: projsync project set NAME [--branch B | --default-branch] [--memory-glob G]...\n"
	"                            [--max-blob-size BYTES] [--rename NEW]\n"
	"                            [--source SOURCE [--continue-history]]\n"
	"                            [--every DURATION|auto|off] [--auto-min D] [--auto-max D]\n"
	"                            [--max-failures N] [--keep-syncs N] [--keep-days D]\n"
	"                            [--code-index | --no-code-index] [--json]\n"
	"\n"
	"Changes a project's settings; what is not given stays as it is. The next sync uses them.\n"
	"\n"
	"  --branch B             sync branch B from now on; must exist (exit 2 otherwise)\n"
	"  --default-branch       follow the source's default branch (asked at every sync)\n"
	"  --memory-glob G        replaces the memory globs (repeatable); the next sync, even\n"
	"                         one with nothing new, imports the notes the new globs match\n"
	"                         and supersedes the entries of notes they no longer match\n"
	"  --max-blob-size BYTES  the new size limit (at most 256M; suffixes K, M, G); a lower\n"
	"                         one applies at once: files over it show as not stored (their\n"
	"                         content stays, so a raise shows them again), and after a raise\n"
	"                         the next sync, even one with nothing new, fetches what now fits\n"
	"  --rename NEW           the project's new name (refused while a sync runs)\n"
	"  --source SOURCE        a new source, checked like the one of `project add` (refused\n"
	"                         while a sync runs). A project with synced history keeps one\n"
	"                         chain of snapshots: a source that is another repository is\n"
	"                         refused (exit 4) unless --continue-history, then the next\n"
	"                         sync records what differs from the last snapshot\n"
	"  --every DURATION|auto|off  sync on a schedule while 'projsync serve' runs: every\n"
	"                         DURATION (30s, 10m, 1h, 1d; 10s at least), 'auto' (halves the\n"
	"                         interval after a change, doubles it when up to date) or 'off'\n"
	"  --auto-min D, --auto-max D  the bounds of 'auto' (default 1m and 8h)\n"
	"  --max-failures N       pause the schedule after N failed syncs in a row (default: the\n"
	"                         server's --max-failures, 10); 0 = the server's\n"
	"  --keep-syncs N         'projsync prune' keeps the newest N succeeded syncs (0 = all)\n"
	"  --keep-days D          ... and the ones of the last D days (0 = no day limit, at\n"
	"                         most 36500); with both, a sync either keeps stays\n"
	"  --no-code-index        stop indexing its files for `projsync grep`\n"
	"  --code-index           index them again; the next sync indexes what it missed\n"
	"  --json                 print the project as JSON\n";

static const char list_usage[] =
	"usage: projsync project list [--json]\n"
	"\n"
	"Lists projects by name with their source, branch, last sync and failures in a row.\n"
	"--json prints a bare array of project objects.\n";

static const char show_usage[] =
	"usage: projsync project show NAME [--json]\n"
	"\n"
	"Shows a project's settings and state. --json prints the project object.\n";

static const char resume_usage[] =
	"usage: projsync project resume NAME [--json]\n"
	"\n"
	"Clears a paused project (one whose scheduled syncs failed too often in a row): its\n"
	"failure count goes back to 0 and, with a schedule, it is due at once. A manual sync\n"
	"that succeeds clears it too.\n";

static const char rm_usage[] =
	"usage: projsync project rm NAME [--yes]\n"
	"\n"
	"Removes a project with its syncs, snapshots, events and memory. Asks for confirmation\n"
	"when stdin is a terminal; otherwise --yes is required (exit 2 without it). Refused\n"
	"(exit 4) while one of its syncs is running.\n"
	"\n"
	"  --yes                  remove without asking\n";

static const char branches_usage[] =
	"usage: projsync branches NAME [--json]\n"
	"\n"
	"Lists the branches of a project's source; marks the source's default branch and the one\n"
	"the project syncs. --json prints a bare array of {\"name\", \"default\", \"selected\"}.\n";

enum {
	OPT_DEFAULT_BRANCH = 0x200,
	OPT_JSON = 0x100,
	OPT_BRANCH,
	OPT_MEMORY_GLOB,
	OPT_MAX_BLOB_SIZE,
	OPT_RENAME,
	OPT_SOURCE,
	OPT_CONTINUE_HISTORY,
	OPT_EVERY,
	OPT_AUTO_MIN,
	OPT_AUTO_MAX,
	OPT_MAX_FAILURES,
	OPT_KEEP_SYNCS,
	OPT_KEEP_DAYS,
	OPT_NO_CODE_INDEX,
	OPT_CODE_INDEX,
};

#define SCHEDULE_OPTIONS \
	{ "every", required_argument, NULL, OPT_EVERY }, \
	{ "auto-min", required_argument, NULL, OPT_AUTO_MIN }, \
	{ "auto-max", required_argument, NULL, OPT_AUTO_MAX }, \
	{ "max-failures", required_argument, NULL, OPT_MAX_FAILURES }, \
	{ "keep-syncs", required_argument, NULL, OPT_KEEP_SYNCS }, \
	{ "keep-days", required_argument, NULL, OPT_KEEP_DAYS }


/* "8388608", "512K", "8M", "1G" (powers of 1024). */
static bool parse_size(const char *s, int64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: return false;
		}
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
		if (*end)
			return false;
	}
	if (v == 0 || v > (unsigned long long)(INT64_MAX >> shift))
		return false;
	*out = (int64_t)(v << shift);
	return true;
}

/* A local path is stored absolute, so a later sync from another directory finds it. URLs and
 * github: specs are stored as given. */
static char *normalize_source(const char *source)
{
	struct stat st;
	char *abs;

	if (strstr(source, "://") || strncmp(source, "github:", 7) == 0 || stat(source, &st) != 0)
		return ps_strdup(source);
	abs = realpath(source, NULL);
	return abs ? abs : ps_strdup(source);
}

/* "in 4m", "now", "paused" or "-": when the scheduler queues the project's next sync. */
static void format_next(const struct ps_project *p, char *out, size_t outlen)
{
	char d[32];
	int64_t left;

	if (p->paused) {
		snprintf(out, outlen, "paused");
		return;
	}
	if (!ps_schedule_on(p) || !p->next_sync_at) {
		snprintf(out, outlen, "-");
		return;
	}
	left = p->next_sync_at - ps_now_ms();
	if (left <= 0) {
		snprintf(out, outlen, "now");
		return;
	}
	ps_duration_format(left < 1000 ? 1000 : left, d, sizeof(d));
	snprintf(out, outlen, "in %s", d);
}

static void print_schedule(const struct ps_project *p)
{
	char every[32], next[48], when[32], lo[32], hi[32], cur[32];

	ps_schedule_every_string(p, every, sizeof(every));
	if (p->every_auto) {
		ps_duration_format(p->auto_min_ms, lo, sizeof(lo));
		ps_duration_format(p->auto_max_ms, hi, sizeof(hi));
		ps_duration_format(p->interval_ms, cur, sizeof(cur));
		printf("every:          auto (%s to %s, now %s)\n", lo, hi, cur);
	} else {
		printf("every:          %s\n", every);
	}
	if (ps_schedule_on(p)) {
		format_next(p, next, sizeof(next));
		if (p->next_sync_at && !p->paused) {
			ps_cli_format_time(p->next_sync_at, when, sizeof(when));
			printf("next sync:      %s (%s)\n", next, when);
		}
	}
	if (p->paused) {
		ps_cli_format_time(p->paused_at, when, sizeof(when));
		printf("state:          paused since %s: %s\n", when,
		       p->paused_reason ? p->paused_reason : "");
		printf("                resume with 'projsync project resume %s'\n", p->name);
	} else {
		printf("state:          active\n");
	}
	if (p->max_failures > 0)
		printf("max failures:   %" PRId64 " in a row\n", p->max_failures);
	if (p->keep_syncs > 0 || p->keep_days > 0) {
		printf("retention:     ");
		if (p->keep_syncs > 0)
			printf(" the newest %" PRId64 " syncs", p->keep_syncs);
		if (p->keep_syncs > 0 && p->keep_days > 0)
			printf(" and");
		if (p->keep_days > 0)
			printf(" the last %" PRId64 " days", p->keep_days);
		printf("\n");
	} else {
		printf("retention:      keep everything\n");
	}
}

static void print_project(struct ps_cli *cli, const struct ps_project *p)
{
	char when[32], size[32], sha[8], ago[32];
	struct ps_sync *last = NULL;

	printf("name:           %s\n", p->name);
	{
		char *source = ps_redact_userinfo(p->source); /* as ps_project_to_json shows it */
		printf("source:         %s\n", source);
		free(source);
	}
	printf("branch:         %s\n", p->branch ? p->branch : "(the source's default)");
	printf("memory globs:  ");
	for (size_t i = 0; i < p->memory_globs.n; i++)
		printf(" %s", p->memory_globs.v[i]);
	printf("%s\n", p->memory_globs.n ? "" : " (none)");
	ps_format_bytes(p->max_blob_size, size, sizeof(size));
	printf("max blob size:  %s (%" PRId64 " bytes)\n", size, p->max_blob_size);
	printf("code index:     %s\n", p->no_code_index ? "off" : "on");
	ps_cli_format_time(p->created_at, when, sizeof(when));
	printf("created:        %s\n", when);
	if (p->last_sync_id > 0) {
		ps_cli_short_sha(p->last_commit, sha);
		if (cli->store && ps_store_sync_get(cli->store, p->last_sync_id, &last) == 0)
			ps_cli_format_ago(last->finished_at, ago, sizeof(ago));
		else
			snprintf(ago, sizeof(ago), "-");
		printf("last synced:    #%" PRId64 " at %s, %s\n", p->last_sync_id,
		       p->last_commit ? sha : "(empty repository)", ago);
		ps_sync_free(last);
	} else {
		printf("last synced:    never\n");
	}
	if (p->failures_in_row > 0)
		printf("last error:     %s: %s (%" PRId64 " failed in a row)\n",
		       p->last_error_code ? p->last_error_code : "failed",
		       p->last_error_message ? p->last_error_message : "", p->failures_in_row);
	print_schedule(p);
}

/* The settings `project add` and `project set` share. */
struct settings {
	const char *branch;
	bool default_branch;
	struct ps_strv globs;
	int64_t max_blob_size;  /* 0 = not given */
	const char *every;      /* NULL = not given */
	/* -1 = not given */
	int64_t auto_min_ms, auto_max_ms, max_failures, keep_syncs, keep_days;
	int code_index;         /* -1 --no-code-index, 1 --code-index, 0 not given */
};

#define SETTINGS_INIT { .auto_min_ms = -1, .auto_max_ms = -1, .max_failures = -1, \
	.keep_syncs = -1, .keep_days = -1 }

static bool parse_count(const char *s, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0 || v > max)
		return false;
	*out = v;
	return true;
}

/* Applies the schedule and retention settings given to `p`; -1 with the usage error printed
 * when they do not fit together. `now` recomputes the next due time when the schedule
 * changed. */
static int apply_schedule(struct ps_cli *cli, const struct settings *st, struct ps_project *p,
			  bool *changed)
{
	bool schedule = false;

	if (st->every) {
		if (ps_schedule_parse_every(st->every, p) < 0) {
			char *msg = ps_strdup(ps_error_message());
			ps_cli_usage_error(cli, "%s", msg);
			free(msg);
			return -1;
		}
		schedule = true;
	}
	if (st->auto_min_ms >= 0) {
		p->auto_min_ms = st->auto_min_ms;
		schedule = true;
	}
	if (st->auto_max_ms >= 0) {
		p->auto_max_ms = st->auto_max_ms;
		schedule = true;
	}
	ps_project_schedule_defaults(p);
	if (p->auto_max_ms < p->auto_min_ms) {
		ps_cli_usage_error(cli, "--auto-max must not be below --auto-min");
		return -1;
	}
	if (st->max_failures >= 0)
		p->max_failures = st->max_failures;
	if (st->keep_syncs >= 0)
		p->keep_syncs = st->keep_syncs;
	if (st->keep_days >= 0)
		p->keep_days = st->keep_days;
	if (schedule)
		ps_schedule_configure(p, ps_now_ms());
	*changed = *changed || schedule || st->max_failures >= 0 || st->keep_syncs >= 0 ||
		   st->keep_days >= 0;
	return 0;
}

/* Takes option `c` if it is a setting: 1 taken, 0 not a setting, -1 bad value (reported). */
static int settings_option(struct ps_cli *cli, int c, struct settings *st)
{
	switch (c) {
	case OPT_BRANCH:
		if (!optarg[0]) {
			ps_cli_usage_error(cli, "--branch needs a branch name");
			return -1;
		}
		st->branch = optarg;
		return 1;
	case OPT_DEFAULT_BRANCH:
		st->default_branch = true;
		return 1;
	case OPT_MEMORY_GLOB: {
		if (!optarg[0]) {
			ps_cli_usage_error(cli, "--memory-glob needs a pattern");
			return -1;
		}
		/* The store keeps the globs as a JSON array, which holds UTF-8 only: a glob of other
		 * bytes was dropped on the way in, leaving the project without it, silently. */
		json_t *probe = json_string(optarg);
		if (!probe) {
			ps_cli_usage_error(cli, "invalid --memory-glob: a pattern must be UTF-8 text");
			return -1;
		}
		json_decref(probe);
		ps_strv_push(&st->globs, optarg);
		return 1;
	}
	case OPT_EVERY:
		st->every = optarg;
		return 1;
	case OPT_AUTO_MIN:
	case OPT_AUTO_MAX: {
		int64_t ms;
		if (!ps_duration_parse(optarg, &ms) || ms < PS_SCHEDULE_MIN_EVERY_MS ||
		    ms > PS_SCHEDULE_MAX_EVERY_MS) {
			ps_cli_usage_error(cli, "invalid --%s '%s': give a duration from 10s to 30d",
					   c == OPT_AUTO_MIN ? "auto-min" : "auto-max", optarg);
			return -1;
		}
		*(c == OPT_AUTO_MIN ? &st->auto_min_ms : &st->auto_max_ms) = ms;
		return 1;
	}
	case OPT_MAX_FAILURES:
	case OPT_KEEP_SYNCS:
	case OPT_KEEP_DAYS: {
		static const char *const names[] = { "max-failures", "keep-syncs", "keep-days" };
		int k = c == OPT_MAX_FAILURES ? 0 : c == OPT_KEEP_SYNCS ? 1 : 2;
		int64_t *dst = k == 0 ? &st->max_failures : k == 1 ? &st->keep_syncs : &st->keep_days;
		if (k == 2 && !parse_count(optarg, PS_MAX_KEEP_DAYS, dst)) {
			ps_cli_usage_error(cli, "invalid --keep-days '%s': give a whole number from 0 "
					   "to %d (100 years)", optarg, PS_MAX_KEEP_DAYS);
			return -1;
		}
		if (!parse_count(optarg, 1000000000, dst)) {
			ps_cli_usage_error(cli, "invalid --%s '%s': give a whole number from 0 to "
					   "1000000000", names[k], optarg);
			return -1;
		}
		return 1;
	}
	case OPT_NO_CODE_INDEX:
	case OPT_CODE_INDEX:
		st->code_index = c == OPT_CODE_INDEX ? 1 : -1;
		return 1;
	case OPT_MAX_BLOB_SIZE:
		if (!parse_size(optarg, &st->max_blob_size)) {
			ps_cli_usage_error(cli, "invalid --max-blob-size '%s': give a positive number "
					   "of bytes (suffixes K, M, G)", optarg);
			return -1;
		}
		if (st->max_blob_size > PS_MAX_BLOB_SIZE_LIMIT) {
			ps_cli_usage_error(cli, "invalid --max-blob-size '%s': at most 256M (%d "
					   "bytes)", optarg, PS_MAX_BLOB_SIZE_LIMIT);
			return -1;
		}
		return 1;
	default:
		return 0;
	}
}

/* A failed check of a source or branch (add, set) exits as POST and PATCH /api/v1/projects
 * answer it: a branch or repository the source does not have is invalid input (422, exit 2),
 * not a missing object of the store (404, exit 3). */
static int check_failed(const char *spec, int rc)
{
	bool refused = ps_source_check_refused(spec, rc);
	int code = ps_cli_fail(rc);

	return refused ? PS_EXIT_USAGE : code;
}

static int project_add(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "branch", required_argument, NULL, OPT_BRANCH },
		{ "memory-glob", required_argument, NULL, OPT_MEMORY_GLOB },
		{ "max-blob-size", required_argument, NULL, OPT_MAX_BLOB_SIZE },
		{ "no-code-index", no_argument, NULL, OPT_NO_CODE_INDEX },
		{ "json", no_argument, NULL, OPT_JSON },
		SCHEDULE_OPTIONS,
		{ 0 },
	};
	struct ps_project p = { .max_blob_size = PS_DEFAULT_MAX_BLOB_SIZE };
	struct settings st = SETTINGS_INIT;
	bool unused = false;
	struct ps_source_opts sopts;
	const char *branch;
	int c, rc, exit_code = PS_EXIT_USAGE;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, add_usage)) != -1) {
		if (c == PS_CLI_OPT_HELP) {
			exit_code = PS_EXIT_OK;
			goto cleanup;
		} else if (c == OPT_JSON) {
			cli->json = true;
		} else if (settings_option(cli, c, &st) <= 0) {
			goto cleanup;
		}
	}
	branch = st.branch;
	p.memory_globs = st.globs;
	st.globs = (struct ps_strv){ 0 };
	if (st.max_blob_size > 0)
		p.max_blob_size = st.max_blob_size;
	p.no_code_index = st.code_index < 0;
	if (argc - optind < 2) {
		ps_cli_usage_error(cli, "project add needs NAME and SOURCE");
		goto cleanup;
	}
	if (argc - optind > 2) {
		ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 2]);
		goto cleanup;
	}
	if (!ps_project_name_valid(argv[optind])) {
		ps_cli_usage_error(cli, "invalid project name '%s': use letters, digits, '.', '_' "
				   "and '-', starting with a letter or digit, at most 100 characters",
				   argv[optind]);
		goto cleanup;
	}
	if (!argv[optind + 1][0]) {
		ps_cli_usage_error(cli, "SOURCE is empty");
		goto cleanup;
	}
	if (p.memory_globs.n == 0)
		ps_strv_push(&p.memory_globs, PS_DEFAULT_MEMORY_GLOB);
	p.name = ps_strdup(argv[optind]);
	p.source = normalize_source(argv[optind + 1]);
	p.branch = branch ? ps_strdup(branch) : NULL;
	if (apply_schedule(cli, &st, &p, &unused) < 0)
		goto cleanup;
	/* The bound is refused before the store is opened: a refused add must not leave a new
	 * store behind. */
	if ((rc = ps_cli_source_opts(cli, &sopts)) < 0 ||
	    (rc = ps_cli_open_store(cli, PS_CLI_STORE_CREATE)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if ((rc = ps_source_check_branch(p.source, p.branch, &sopts)) < 0) {
		exit_code = check_failed(p.source, rc);
		goto cleanup;
	}
	if ((rc = ps_store_project_add(cli->store, &p)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (cli->json)
		ps_cli_print_json(ps_project_to_json(&p));
	else
		print_project(cli, &p);
	exit_code = PS_EXIT_OK;
cleanup:
	free(p.name);
	free(p.source);
	free(p.branch);
	ps_strv_dispose(&p.memory_globs);
	ps_strv_dispose(&st.globs);
	return exit_code;
}

static int project_set(struct ps_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "branch", required_argument, NULL, OPT_BRANCH },
		{ "default-branch", no_argument, NULL, OPT_DEFAULT_BRANCH },
		{ "memory-glob", required_argument, NULL, OPT_MEMORY_GLOB },
		{ "max-blob-size", required_argument, NULL, OPT_MAX_BLOB_SIZE },
		{ "rename", required_argument, NULL, OPT_RENAME },
		{ "source", required_argument, NULL, OPT_SOURCE },
		{ "continue-history", no_argument, NULL, OPT_CONTINUE_HISTORY },
		{ "no-code-index", no_argument, NULL, OPT_NO_CODE_INDEX },
		{ "code-index", no_argument, NULL, OPT_CODE_INDEX },
		{ "json", no_argument, NULL, OPT_JSON },
		SCHEDULE_OPTIONS,
		{ 0 },
	};
	struct ps_project *p = NULL;
	struct ps_project_change chg = { 0 };
	struct ps_source_opts sopts = { 0 };
	struct settings st = SETTINGS_INIT;
	bool schedule_changed = false;
	char *source = NULL;
	int c, rc, exit_code = PS_EXIT_USAGE;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, set_usage)) != -1) {
		if (c == PS_CLI_OPT_HELP) {
			exit_code = PS_EXIT_OK;
			goto cleanup;
		} else if (c == OPT_JSON) {
			cli->json = true;
		} else if (c == OPT_RENAME) {
			if (!ps_project_name_valid(optarg)) {
				ps_cli_usage_error(cli, "invalid project name '%s': use letters, "
						   "digits, '.', '_' and '-', starting with a letter "
						   "or digit, at most 100 characters", optarg);
				goto cleanup;
			}
			chg.name = optarg;
		} else if (c == OPT_SOURCE) {
			if (!optarg[0]) {
				ps_cli_usage_error(cli, "--source needs a SOURCE");
				goto cleanup;
			}
			free(source);
			source = normalize_source(optarg);
		} else if (c == OPT_CONTINUE_HISTORY) {
			chg.continue_history = true;
		} else if (settings_option(cli, c, &st) <= 0) {
			goto cleanup;
		}
	}
	if (argc - optind < 1) {
		ps_cli_usage_error(cli, "project set needs a project NAME");
		goto cleanup;
	}
	if (argc - optind > 1) {
		ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
		goto cleanup;
	}
	if (st.branch && st.default_branch) {
		ps_cli_usage_error(cli, "--branch and --default-branch exclude each other");
		goto cleanup;
	}
	chg.source = source;
	chg.branch = st.branch;
	chg.default_branch = st.default_branch;
	chg.memory_globs = &st.globs;
	chg.max_blob_size = st.max_blob_size;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	/* The store's rules first (cheap), then the source and branch like `project add`
	 * checks them (a typo would only fail at the sync), then everything in one
	 * transaction: the same path as PATCH /api/v1/projects/{name}. The schedule and
	 * retention settings are set on `p` and written by the same update. */
	if (apply_schedule(cli, &st, p, &schedule_changed) < 0)
		goto cleanup;
	if (st.code_index) {
		p->no_code_index = st.code_index < 0;
		schedule_changed = true;
	}
	chg.schedule = schedule_changed;
	if ((rc = ps_project_change_allowed(cli->store, p, &chg)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	/* Only a new source or branch is checked at the source: other settings need no network
	 * and are not stopped by its bound. */
	if (ps_project_change_needs_check(p, &chg) && (rc = ps_cli_source_opts(cli, &sopts)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if ((rc = ps_project_change_check(p, &chg, &sopts)) < 0) {
		exit_code = check_failed(chg.source ? chg.source : p->source, rc);
		goto cleanup;
	}
	if ((rc = ps_project_change_apply(cli->store, p, &chg)) < 0) {
		exit_code = ps_cli_fail(rc);
		goto cleanup;
	}
	if (cli->json)
		ps_cli_print_json(ps_project_to_json(p));
	else
		print_project(cli, p);
	exit_code = PS_EXIT_OK;
cleanup:
	free(source);
	ps_strv_dispose(&st.globs);
	ps_project_free(p);
	return exit_code;
}

/* Parses `--json` and exactly `want` positional arguments. Returns -1 to go on, else the
 * exit code to return. */
static int parse_simple(struct ps_cli *cli, int argc, char **argv, const char *usage, int want,
			const char *what, bool json_allowed)
{
	static const struct option with_json[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ 0 },
	};
	static const struct option none[] = { { 0 } };
	int c;

	while ((c = ps_cli_getopt(cli, argc, argv, json_allowed ? with_json : none, usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_JSON: cli->json = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < want)
		return ps_cli_usage_error(cli, "%s needs %s", cli->command, what);
	if (argc - optind > want)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + want]);
	return -1;
}

static int project_list(struct ps_cli *cli, int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "SOURCE", "BRANCH", "LAST SYNC", "COMMIT",
					       "WHEN", "FAILURES", "STATE", "EVERY", "NEXT" };
	struct ps_project **ps = NULL;
	size_t n = 0;
	int rc;

	if ((rc = parse_simple(cli, argc, argv, list_usage, 0, "", true)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_list(cli->store, &ps, &n)) < 0)
		return ps_cli_fail(rc);
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, ps_project_to_json(ps[i]));
		ps_cli_print_json(arr);
	} else if (n == 0) {
		puts("no projects yet: add one with 'projsync project add NAME SOURCE'");
	} else {
		struct ps_table t;
		ps_table_init(&t, 10, headers);
		t.right_align = 1u << 6;
		for (size_t i = 0; i < n; i++) {
			struct ps_sync **last = NULL;
			size_t nl = 0;
			char sha[8] = "-", ago[32] = "never", failures[24], every[32], next[48];
			char *source;
			const char *status = "never";

			(void)ps_store_reap(cli->store, ps[i]->id, NULL);
			if (ps_store_sync_list(cli->store, ps[i]->id, 1, 0, &last, &nl) == 0 && nl) {
				status = ps_sync_status_name(last[0]->status);
				ps_cli_short_sha(last[0]->commit, sha);
				ps_cli_format_ago(last[0]->finished_at ? last[0]->finished_at
						  : last[0]->created_at, ago, sizeof(ago));
			}
			snprintf(failures, sizeof(failures), "%" PRId64, ps[i]->failures_in_row);
			ps_schedule_every_string(ps[i], every, sizeof(every));
			format_next(ps[i], next, sizeof(next));
			source = ps_redact_userinfo(ps[i]->source);
			ps_table_add(&t, (const char *const[]){ ps[i]->name, source,
				     ps[i]->branch ? ps[i]->branch : "(default)", status, sha, ago,
				     failures, ps[i]->paused ? "paused" : "active", every, next });
			free(source);
			for (size_t k = 0; k < nl; k++)
				ps_sync_free(last[k]);
			free(last);
		}
		ps_table_print(&t, stdout);
		ps_table_dispose(&t);
	}
	for (size_t i = 0; i < n; i++)
		ps_project_free(ps[i]);
	free(ps);
	ps_error_clear();
	return PS_EXIT_OK;
}

static int project_show(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_project *p = NULL;
	int rc;

	if ((rc = parse_simple(cli, argc, argv, show_usage, 1, "NAME", true)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	if (cli->json)
		ps_cli_print_json(ps_project_to_json(p));
	else
		print_project(cli, p);
	ps_project_free(p);
	return PS_EXIT_OK;
}

static int project_resume(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_project *p = NULL;
	int rc;

	if ((rc = parse_simple(cli, argc, argv, resume_usage, 1, "NAME", true)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	rc = ps_store_project_resume(cli->store, p->id, ps_now_ms());
	ps_project_free(p);
	p = NULL;
	if (rc < 0 || (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	if (cli->json)
		ps_cli_print_json(ps_project_to_json(p));
	else
		print_project(cli, p);
	ps_project_free(p);
	return PS_EXIT_OK;
}

/* Asks on the terminal whether to remove `name`; true for an answer of y or yes. */
static bool confirm_rm(const char *name)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool yes;

	fprintf(stderr, "remove project %s with all its syncs, snapshots and memory? [y/N] ", name);
	fflush(stderr);
	n = getline(&line, &cap, stdin);
	if (n < 0)
		fputc('\n', stderr);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	yes = n > 0 && (strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0);
	free(line);
	return yes;
}

static int project_rm(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_YES = 0x300 };
	static const struct option opts[] = {
		{ "yes", no_argument, NULL, OPT_YES },
		{ 0 },
	};
	struct ps_project *p = NULL;
	bool yes = false;
	int c, rc;

	while ((c = ps_cli_getopt(cli, argc, argv, opts, rm_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP: return PS_EXIT_OK;
		case OPT_YES: yes = true; break;
		default: return PS_EXIT_USAGE;
		}
	}
	if (argc - optind < 1)
		return ps_cli_usage_error(cli, "%s needs NAME", cli->command);
	if (argc - optind > 1)
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	/* Nothing brings a removed history back: ask a person, and make a script say so. */
	if (!yes) {
		bool tty = isatty(STDIN_FILENO) == 1;
		if (!tty) {
			ps_project_free(p);
			return ps_cli_usage_error(cli, "project rm removes %s for good: pass --yes "
						  "to confirm (stdin is not a terminal)", argv[optind]);
		}
		if (!confirm_rm(p->name)) {
			fprintf(stderr, "projsync: project %s not removed\n", p->name);
			ps_project_free(p);
			return PS_EXIT_FAILURE;
		}
	}
	/* A sync whose process died must not block the removal forever. */
	(void)ps_store_reap(cli->store, p->id, NULL);
	ps_project_free(p);
	if ((rc = ps_store_project_remove(cli->store, argv[optind])) < 0)
		return ps_cli_fail(rc);
	printf("removed project %s\n", argv[optind]);
	return PS_EXIT_OK;
}

int ps_cmd_project(struct ps_cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name, *command;
		int (*run)(struct ps_cli *, int, char **);
	} subs[] = {
		{ "add", "project add", project_add },
		{ "set", "project set", project_set },
		{ "list", "project list", project_list },
		{ "ls", "project list", project_list },
		{ "show", "project show", project_show },
		{ "resume", "project resume", project_resume },
		{ "rm", "project rm", project_rm },
		{ "remove", "project rm", project_rm },
	};

	if (argc < 2)
		return ps_cli_usage_error(cli, "project needs a subcommand: add, set, list, show, resume or rm");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(project_usage, stdout);
		return PS_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(*subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0) {
			cli->command = subs[i].command;
			return subs[i].run(cli, argc - 1, argv + 1);
		}
	return ps_cli_usage_error(cli, "unknown project subcommand '%s': use add, set, list, show, resume or rm",
				  argv[1]);
}

int ps_cmd_branches(struct ps_cli *cli, int argc, char **argv)
{
	struct ps_project *p = NULL;
	struct ps_source *src = NULL;
	struct ps_source_opts sopts;
	struct ps_strv names = { 0 };
	char *def = NULL;
	const char *selected;
	int rc, exit_code;

	if ((rc = parse_simple(cli, argc, argv, branches_usage, 1, "NAME", true)) >= 0)
		return rc;
	if ((rc = ps_cli_open_store(cli, 0)) < 0 ||
	    (rc = ps_store_project_get(cli->store, argv[optind], &p)) < 0)
		return ps_cli_fail(rc);
	if ((rc = ps_cli_source_opts(cli, &sopts)) < 0) {
		ps_project_free(p);
		return ps_cli_fail(rc);
	}
	if ((rc = ps_source_open(&src, p->source, &sopts)) < 0 ||
	    (rc = ps_source_branches(src, &names, &def)) < 0) {
		ps_error_wrap(rc, "project '%s': ", p->name);
		/* The project exists: its source failing to answer is the source's failure (the
		 * API's 502, exit 1), not a mistake in this command (exit 2) nor a missing project
		 * (exit 3), whatever the source said (a gone directory, a repository not found). */
		exit_code = ps_cli_fail(rc == PS_ENOTFOUND || rc == PS_EINVAL ? PS_EUPSTREAM : rc);
		goto cleanup;
	}
	selected = p->branch ? p->branch : def;
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < names.n; i++)
			json_array_append_new(arr, json_pack("{s:o, s:b, s:b}",
				"name", ps_json_string(names.v[i]),
				"default", def && strcmp(def, names.v[i]) == 0,
				"selected", selected && strcmp(selected, names.v[i]) == 0));
		ps_cli_print_json(arr);
	} else {
		for (size_t i = 0; i < names.n; i++) {
			bool is_sel = selected && strcmp(selected, names.v[i]) == 0;
			bool is_def = def && strcmp(def, names.v[i]) == 0;
			char *q = ps_cli_quote_path(names.v[i]);
			printf("%c %s%s\n", is_sel ? '*' : ' ', q, is_def ? "  (default)" : "");
			free(q);
		}
		if (names.n == 0) {
			puts("no branches: the repository is empty");
		} else if (p->branch) {
			bool found = false;
			for (size_t i = 0; i < names.n; i++)
				found = found || strcmp(names.v[i], p->branch) == 0;
			if (!found)
				fprintf(stderr, "warning: the project's branch '%s' does not exist in "
					"the source\n", p->branch);
		}
	}
	exit_code = PS_EXIT_OK;
cleanup:
	ps_strv_dispose(&names);
	free(def);
	if (src)
		ps_source_free(src);
	ps_project_free(p);
	return exit_code;
}
