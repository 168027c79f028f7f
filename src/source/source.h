/*
 * Where a project's repository lives. A source answers a handful of questions and nothing else:
 * which branches exist, what a branch's head is, what a tree holds, and what a set of blobs
 * contains. The sync pipeline (core/sync.c) builds everything else on top of these, so a git
 * remote (libgit2, source/git.c) and GitHub's REST API (source/github/) are
 * interchangeable. A source object is used by one thread at a time.
 *
 * SOURCE strings:  a local path to a git repository (bare or not) | any git URL (https://, ssh://,
 * git:// without user or password, file://, user@host:path) | github:OWNER/REPO |
 * https://github.com/OWNER/REPO[.git].
 */
#ifndef PS_SOURCE_SOURCE_H
#define PS_SOURCE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/tree.h"

struct ps_source;

struct ps_head {
	char commit[PS_SHA_HEX];
	char tree[PS_SHA_HEX];
};

/* Called once per fetched blob, in any order. `data` is borrowed for the call. A non-zero return
 * stops the fetch and is returned by fetch_blobs. */
typedef int (*ps_blob_cb)(void *ud, const char *sha, const void *data, size_t len);

struct ps_source_ops {
	const char *kind; /* "git" | "github" */
	/* Branch names (owned by the caller, sorted) and the default branch (owned, may be NULL for
	 * an empty repository). With `out` NULL only the default branch is wanted: a source may
	 * then skip listing branches (GitHub: one request instead of every page). */
	int (*branches)(struct ps_source *src, struct ps_strv *out, char **default_branch);
	/* Resolves `branch` (NULL = the default branch) to its head. PS_ENOTFOUND when the branch
	 * does not exist, PS_EEMPTY when the repository has no commits at all. `known` is the
	 * commit of the last succeeded sync or NULL: a source may use it to answer cheaply when
	 * nothing moved. */
	int (*resolve)(struct ps_source *src, const char *branch, const char *known,
		       struct ps_head *out);
	/* One tree, not recursive. PS_ENOTFOUND if the source no longer has it. */
	int (*read_tree)(struct ps_source *src, const char *tree_sha, struct ps_tree *out);
	/* The content of `n` blobs, each handed to cb. */
	int (*fetch_blobs)(struct ps_source *src, const char *const *shas, size_t n,
			   ps_blob_cb cb, void *ud);
	void (*free)(struct ps_source *src);

	/* ---- optional fast paths (NULL, or PS_ENOTSUPP at run time, = use the general way) ---- */

	/* The changes from `base_commit` to `head` (already resolved), when the source can tell them
	 * cheaply (GitHub's compare API for a fast-forward with fewer than 300 files). Changes are
	 * as model/diff.h describes them (statuses, shas, modes, sizes of new blobs; -1 where the
	 * source does not know a size), sorted by path. PS_ENOTSUPP to make the pipeline walk the
	 * trees instead (not a fast-forward, too many files, ...). */
	int (*changes)(struct ps_source *src, const char *base_commit, const struct ps_head *head,
		       struct ps_change **out, size_t *n);
	/* Every blob and submodule of a tree with its full path (a first sync), sorted by path
	 * bytes. The source handles its own limits (GitHub's truncated trees); PS_ENOTSUPP to make
	 * the pipeline walk the trees instead. */
	int (*list_tree)(struct ps_source *src, const char *tree_sha, struct ps_file **out, size_t *n);
	/* A fetch session for the blobs of `head`: fetch_begin receives the whole set once, then each
	 * fetch_next delivers at most `max` blobs of the set through cb, in any order, and sets
	 * *done when every blob was delivered. The pipeline calls fetch_next once per step, so a
	 * source may stream (a tarball) across calls. Without these, the pipeline asks fetch_blobs
	 * for batches of the set in order. fetch_end releases the session (also when abandoned). */
	int (*fetch_begin)(struct ps_source *src, const struct ps_head *head,
			   const char *const *shas, size_t n);
	int (*fetch_next)(struct ps_source *src, size_t max, ps_blob_cb cb, void *ud, bool *done);
	void (*fetch_end)(struct ps_source *src);
	/* Whether `branch` exists, cheaper than listing every branch (GitHub: one request for
	 * that branch instead of every page of the list): 0, PS_ENOTFOUND (slug
	 * branch_not_found), or PS_EEMPTY for a repository without commits. */
	int (*check_branch)(struct ps_source *src, const char *branch);
	/* The commits of `head_commit` (already resolved) that `base_commit` does not reach, as
	 * `git log BASE..HEAD` lists them (newest first; a force-push: the new head's commits the
	 * old one lacks), at most `max`, with total and truncated set (struct ps_commit_list).
	 * `base_commit` NULL (a first sync): the head commit alone, total -1. A base the source no
	 * longer has: the head commit alone, total -1, truncated. PS_ENOTSUPP: no commits here. */
	int (*commits)(struct ps_source *src, const char *base_commit, const char *head_commit,
		       size_t max, struct ps_commit_list *out);
};

struct ps_source {
	const struct ps_source_ops *ops;
	int64_t requests;      /* upstream requests so far (network round trips) */
	int64_t bytes;         /* upstream bytes received so far */
	/* Warnings for the sync's event stream (rate limit waits, ...), appended by the source,
	 * taken and cleared by the pipeline after each call. */
	struct ps_strv warnings;
	/* Polled while the source waits on the network or on a rate limit (at least every
	 * 250 ms): true makes the operation stop at once and fail with PS_ECANCELLED (slug
	 * "cancelled"), so a cancel does not wait for a long transfer to end. Set by the
	 * pipeline after opening; NULL: never. */
	bool (*stop)(void *ud);
	void *stop_ud;
	/* State of the generic fetch loop when the source has no fetch session of its own. */
	struct {
		char **shas;
		size_t n, pos;
	} generic_fetch;
};

struct ps_source_opts {
	const char *cache_dir; /* where remote sources keep their bare caches */
	/* Set when answering an HTTP request: each remote operation of the source as a whole (not
	 * only each wait) fails after the network timeout, so no request thread waits longer. */
	bool bounded;
};

/*
 * The network bound of every source, from PROJSYNC_NET_TIMEOUT (seconds, decimals allowed,
 * 0.1..3600; default 30): the longest a connection may take to open and the longest a transfer
 * may go without a byte moving (libgit2 and libcurl alike). A check (ps_source_check) and the
 * operations of a `bounded` source fail as a whole after it. A remote that times out fails
 * with PS_EUPSTREAM and the slug "upstream_timeout".
 */
int64_t ps_source_net_timeout_ms(void);
/* PS_EINVAL ("bad_net_timeout") when PROJSYNC_NET_TIMEOUT is set to anything but a number in
 * range: what the commands that reach a source (and `serve`) check before they start. */
int ps_source_net_timeout_check(void);
/* What a "branch not found" message adds for a full ref ("refs/heads/main"): a branch is given
 * by its name, and the message says so rather than leave the user guessing. "" otherwise. */
const char *ps_source_branch_hint(const char *branch);
/* "30 s" or "0.5 s": the timeout as messages show it. */
void ps_source_net_timeout_text(char *out, size_t len);

/*
 * The fetch loop of the pipeline, over the optional fetch session or, without one, over
 * fetch_blobs in batches. ps_source_fetch_begin keeps a copy of `shas`.
 */
int ps_source_fetch_begin(struct ps_source *s, const struct ps_head *head, const char *const *shas,
			  size_t n);
int ps_source_fetch_next(struct ps_source *s, size_t max, ps_blob_cb cb, void *ud, bool *done);
void ps_source_fetch_end(struct ps_source *s);

/*
 * Opens the source named by `spec`. Cheap for local paths; remote sources connect lazily (on
 * the first branches/resolve call). PS_EINVAL for a spec that names nothing usable, with a
 * message saying why. The source is owned by the caller: ps_source_free.
 */
int ps_source_open(struct ps_source **out, const char *spec, const struct ps_source_opts *opts);
/* True when SOURCE names a local path (relative or absolute), not GitHub nor a git URL: the
 * rule ps_source_open uses. (`a@b`, without the ':' of user@host:path, is a path.) */
bool ps_source_is_local_path(const char *spec);
void ps_source_free(struct ps_source *src);
/* PS_ECANCELLED (error set) when src->stop says so, else 0. */
int ps_source_stopped(struct ps_source *src);

/*
 * Checks that `spec` names a reachable repository (used when a project is added): a path must
 * be a git repository, a URL must answer. Blocks on the network for remote sources, at most
 * the network timeout in all (then PS_EUPSTREAM, slug "upstream_timeout"). A remote that
 * cannot be reached (no address, refused, reset) fails with PS_EUPSTREAM and the slug
 * "upstream_unreachable"; one that answered with an error ("not found", "not exported") with
 * PS_EUPSTREAM and "upstream_error", or PS_ENOTFOUND (GitHub).
 */
int ps_source_check(const char *spec, const struct ps_source_opts *opts);
/*
 * After a failed check (`rc` with its error still set): true when the source answered that
 * the repository or branch is not one it has or can give (a bad path or URL, "not found", a
 * git host's refusal: "upstream_error"): the caller's mistake, `project add|set` exit 2 and
 * HTTP 422. False when reaching it failed (unreachable, timed out, rate limited, ...): exit 1
 * and HTTP 5xx, a retry may succeed; so is GitHub's upstream_error (an unexpected status, a
 * 5xx after every retry), `spec` being the source checked. The CLI and the API both ask here,
 * so they agree.
 */
bool ps_source_check_refused(const char *spec, int rc);
/*
 * ps_source_check, and with a `branch` (NULL: none to check) also that the branch exists, as a
 * sync would resolve it (a tag or a commit id is not a branch): PS_ENOTFOUND, slug
 * branch_not_found, "branch 'B' not found in SOURCE" otherwise. A repository without commits
 * has no branch to compare with and accepts any name (its first push may create it). Used when
 * a project's branch is set (`project add|set --branch`, POST /projects). Blocks on the network
 * for remote sources.
 */
int ps_source_check_branch(const char *spec, const char *branch,
			   const struct ps_source_opts *opts);

static inline int ps_source_branches(struct ps_source *s, struct ps_strv *out, char **def)
{
	return s->ops->branches(s, out, def);
}
static inline int ps_source_resolve(struct ps_source *s, const char *branch, const char *known,
				    struct ps_head *out)
{
	return s->ops->resolve(s, branch, known, out);
}
static inline int ps_source_read_tree(struct ps_source *s, const char *sha, struct ps_tree *out)
{
	return s->ops->read_tree(s, sha, out);
}
static inline int ps_source_fetch_blobs(struct ps_source *s, const char *const *shas, size_t n,
					ps_blob_cb cb, void *ud)
{
	return s->ops->fetch_blobs(s, shas, n, cb, ud);
}

/* Constructor of the libgit2 source (source/git.c). `location` is a path or git URL. */
int ps_git_source_open(struct ps_source **out, const char *location,
		       const struct ps_source_opts *opts);
int ps_git_source_check(const char *location, const struct ps_source_opts *opts);
/* Local repositories kept open for the next source of their path (git.c keep_repo). */
size_t ps_git_source_kept(void);

/* Constructor of the GitHub REST source (source/github/) for OWNER/REPO (already validated).
 * Reads GITHUB_TOKEN and the PROJSYNC_GITHUB_* settings from the environment; no request is made
 * until the first call. ps_github_source_check asks GitHub for the repository (one request):
 * PS_ENOTFOUND when it does not exist or the token cannot see it. */
int ps_github_source_open(struct ps_source **out, const char *owner, const char *repo,
			  const struct ps_source_opts *opts);
int ps_github_source_check(const char *owner, const char *repo, const struct ps_source_opts *opts);
/* GitHub's x-ratelimit-remaining and x-ratelimit-reset (epoch seconds) as the answers any
 * GitHub source of this process received say them at the latest: the newest window's smallest
 * remaining, whatever order parallel answers came in (ps_github_rate_merge, source/github.h);
 * -1 each when none has carried them yet. Thread-safe. */
void ps_github_rate_limit_last(int64_t *remaining, int64_t *reset);

#endif
