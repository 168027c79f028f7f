/*
 * The pure parts of the GitHub source (source/github/): parsers of GitHub's REST answers and
 * the mapping of a compare to changes. They know nothing of HTTP, so the unit tests can feed them
 * recorded GitHub responses. Only source/github/ and tests/unit/test_source_github.c use
 * them; the rest of projsync sees a GitHub repository through source/source.h.
 *
 * Every parser bounds what it accepts (paths, modes, SHAs) and fails with PS_EUPSTREAM and
 * "GitHub returned malformed JSON for <what>" (or a more precise message) on anything else.
 */
#ifndef PS_SOURCE_GITHUB_H
#define PS_SOURCE_GITHUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/*
 * The target of the rel="next" link of a Link header (RFC 8288, as GitHub writes it:
 * `<url>; rel="next", <url>; rel="last"`), or NULL when there is none. Owned by the caller.
 */
char *ps_github_link_next(const char *link);

/* GitHub's rate-limit headers of one response; -1 where a header is absent. */
struct ps_github_rate {
	int64_t limit;
	int64_t remaining;
	int64_t used;
	int64_t reset;        /* epoch seconds */
	int64_t retry_after;  /* seconds */
};

void ps_github_rate_init(struct ps_github_rate *rl);
/* Feeds one raw header line ("Name: value\r\n", any case). Returns true when it was one of
 * x-ratelimit-limit/-remaining/-used/-reset or retry-after. Values are taken strictly: only
 * ASCII digits (surrounding blanks aside); anything else (a sign, an HTTP date in retry-after,
 * "1e9", trailing text) is ignored. Numbers beyond PS_GITHUB_NUM_MAX are taken as that maximum,
 * so a huge value still means "far away" and no later arithmetic on it can overflow. */
bool ps_github_rate_header(struct ps_github_rate *rl, const char *line, size_t len);
#define PS_GITHUB_NUM_MAX INT64_C(999999999999999) /* 10^15 - 1: 31 million years of seconds */

/*
 * The wait, in seconds, that a 403/429 answer asks for: until x-ratelimit-reset (plus one second,
 * at least one) when x-ratelimit-remaining is 0 (*primary set), else retry-after (at least one);
 * 0 when the answer names no wait. Clamped to `max_s` + 1, so "beyond what may be waited" is
 * any result above max_s, and the result times 1000 cannot overflow.
 */
int64_t ps_github_rate_wait(const struct ps_github_rate *rl, int64_t now_s, int64_t max_s,
			    bool *primary);

/*
 * Folds one answer's x-ratelimit-remaining and -reset (`remaining`, `reset`; -1 where absent)
 * into the figures kept so far (*kept_remaining, *kept_reset; -1 each before any), so that they
 * say the newest state of the limit. Answers to requests made in parallel are processed in any
 * order, so the last one processed is not the latest: within one window (the same reset) the
 * count only goes down, so the smallest remaining wins; a later reset is a new window and
 * replaces the figures; an earlier reset is a window already over, and is ignored. An answer
 * without remaining changes nothing; a reset missing on either side cannot place the answer in
 * a window, so it replaces the figures (GitHub always sends both).
 */
void ps_github_rate_merge(int64_t *kept_remaining, int64_t *kept_reset, int64_t remaining,
			  int64_t reset);

/* `epoch_s` as "YYYY-MM-DD HH:MM:SS UTC", or "an unreadable time (<n>)" when it is no date of
 * years 1970..9999 (GitHub sends epoch seconds; anything else is not worth printing as one). */
void ps_github_clock(int64_t epoch_s, char *out, size_t len);

/* The largest answer a blob of `raw` bytes may take: GitHub's JSON form, base64 (4/3) in
 * 60-column lines whose newlines JSON escapes, plus the object around it. The raw form is
 * smaller. */
int64_t ps_github_blob_answer_max(int64_t raw);

/* `s` percent-encoded as one URL path segment: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX,
 * so "feature/x" is "feature%2Fx". Owned by the caller. */
char *ps_github_escape(const char *s);

/* One entry of a tree answer. */
struct ps_github_tree_entry {
	char *path;            /* relative to the tree asked for ("a/b/c" when recursive) */
	uint32_t mode;
	char type;             /* 'b' blob, 't' tree, 'c' commit (submodule) */
	char sha[PS_SHA_HEX];
	int64_t size;          /* blobs; -1 for the others */
};

struct ps_github_tree {
	char sha[PS_SHA_HEX];
	bool truncated;
	struct ps_github_tree_entry *v;
	size_t n;
};

/* Parses a `GET /repos/{o}/{r}/git/trees/{sha}` answer. Paths are checked (no empty, "." or
 * ".." component, no leading '/', no NUL, none listed twice, none inside a listed entry that is
 * not a tree); `what` names the endpoint in messages. */
int ps_github_tree_parse(struct ps_github_tree *out, const char *json, size_t len,
			 const char *what);
void ps_github_tree_dispose(struct ps_github_tree *t);

enum ps_github_file_status {
	PS_GH_ADDED,
	PS_GH_REMOVED,
	PS_GH_MODIFIED,
	PS_GH_RENAMED,
	PS_GH_COPIED,
	PS_GH_CHANGED,
	PS_GH_UNCHANGED,
};

struct ps_github_compare_file {
	char *filename;
	char *previous;        /* previous_filename of a rename or copy, else NULL */
	enum ps_github_file_status status;
	char sha[PS_SHA_HEX];  /* empty when GitHub gave none */
	int64_t changes;       /* additions + deletions as GitHub counts them */
};

struct ps_github_compare {
	char status[16];       /* ahead | behind | diverged | identical */
	char head_commit[PS_SHA_HEX]; /* the last commit listed (the head when not paginated) */
	char head_tree[PS_SHA_HEX];   /* its tree, empty when unknown */
	bool has_files;
	struct ps_github_compare_file *files;
	size_t nfiles;
};

/* Parses a `GET /repos/{o}/{r}/compare/{base}...{head}` answer. */
int ps_github_compare_parse(struct ps_github_compare *out, const char *json, size_t len,
			    const char *what);
void ps_github_compare_dispose(struct ps_github_compare *c);

/* Whether a compare can stand for the changes from base to head: a fast-forward ("ahead") or
 * nothing ("identical"), with its file list present and below GitHub's cap of 300. */
bool ps_github_compare_usable(const struct ps_github_compare *c);

/*
 * The changes a usable compare describes, with the mode, SHA and size of every path present in
 * the head taken from `head` (the head's blobs and submodules, sorted by path bytes; only the
 * paths the compare names are needed). A rename becomes a deletion plus an addition (exact
 * renames keep their blob on both sides so that ps_diff_pair_renames pairs them, as a local
 * diff does); a deletion and an addition of one path become a modification. PS_ENOTSUPP when
 * the compare and the tree disagree (a path missing from the head, another blob), so that the
 * caller walks the trees instead. With `head` NULL, the paths present in the head get the
 * compare's blob ids and mode 0 (unknown: the pipeline settles it, core/tree_source.h
 * ps_tree_settle), and a path without a blob id is PS_ENOTSUPP. *out is sorted by path and
 * owned by the caller.
 */
int ps_github_compare_changes(const struct ps_github_compare *c, const struct ps_file *head,
			      size_t nhead, struct ps_change **out, size_t *n);

/* ---- commits (source/github_commits.c; `projsync log`) ---- */

/* An ISO 8601 time as GitHub writes it ("2011-04-14T16:00:49Z", or with an offset) as ms since
 * the epoch; false when it is not one. */
bool ps_github_time_parse(const char *s, int64_t *ms);
/*
 * One commit object of GitHub's JSON into `out`: the REST commit shape ({"sha", "commit":
 * {"author", "committer", "message"}, "parents": [{"sha"}]}, as compare, branches/{b} and
 * commits/{ref} give it) or the git database shape (git/commits/{sha}: author, committer and
 * message at the top). PS_EUPSTREAM (slug upstream_error) naming `what` when it is neither.
 */
int ps_github_commit_parse(struct ps_commit *out, const void *json_obj, const char *what);
/*
 * The commits of a compare answer (its body) newest first, with total_commits as total (-1
 * when absent), as struct ps_commit_list; truncated when GitHub listed fewer than the total.
 */
int ps_github_compare_commits_parse(struct ps_commit_list *out, const char *json, size_t len,
				    const char *what);

#endif
