/*
 * The GitHub source (src/source/github/, private to it): a repository read through GitHub's REST API (libcurl + jansson +
 * libarchive), spending as few requests and bytes as the change needs.
 *
 *   head      GET /repos/{o}/{r}/commits/heads/{branch} as application/vnd.github.sha with
 *             If-None-Match "<last synced commit>": an unchanged head is one 304 (not counted
 *             against the rate limit). A moved head costs one more request, its recursive tree
 *             (GitHub takes a commit SHA for a tree), which names the new root tree and every
 *             path with mode, blob and size. A first sync reads GET /repos/{o}/{r}/branches/{b}
 *             (commit and tree at once).
 *   scan      first sync: the recursive tree; when GitHub truncates it, each subtree on its own
 *             (recursively again, then splitting further if need be). Later syncs: the listing
 *             read by resolve, which the pipeline compares with its stored snapshot (exact for
 *             fast-forwards and force-pushes alike; `changes` declines so that it does). Only
 *             when that listing was truncated: the compare API for a fast-forward below 300
 *             files, the modes it lacks taken from the trees of the changed paths' directories;
 *             anything else makes the pipeline walk the changed subtrees with read_tree.
 *   fetch     many blobs: the tarball of the head commit streamed through libarchive (a read
 *             callback that drives curl's multi interface; bounded memory, no temporary file),
 *             each file hashed as a git blob and handed over when wanted; whatever the tarball
 *             did not hold (export-ignore, export-subst, LFS) is fetched as blobs afterwards.
 *             Few blobs: raw blob requests in parallel under a cap. Every blob is hashed.
 *   faults    5xx, timeouts (no progress for PROJSYNC_GITHUB_TIMEOUT_MS, default
 *             PROJSYNC_NET_TIMEOUT) and cut connections are retried with exponential backoff from
 *             1/60 of PROJSYNC_GITHUB_BACKOFF_MS; a host name that does not resolve is not. A
 *             spent primary rate limit is waited out up to PROJSYNC_GITHUB_MAX_WAIT seconds (with
 *             a warning), a secondary one as GitHub says (retry-after) or with backoff from one
 *             minute; a longer wait fails at once. A bounded source (a check) ends each batch of
 *             requests, retries included, within the timeout.
 *
 * The token ($GITHUB_TOKEN) is sent only to the API's own origin: curl drops a custom
 * Authorization header when a redirect leaves the host (the tarball's codeload host), and Link
 * URLs pointing elsewhere are refused. It never appears in a message.
 *
 * Files: http.c (the HTTP engine: requests, retries, rate limits), json.c (the parsers of
 * github.h), repo.c (repository, branches, heads), trees.c (trees and changes), fetch.c (the
 * fetch session: blobs and the tarball), commits.c (the commits of a sync, `projsync log`:
 * from the compare the scan made, or branches/{b} on a first sync), source.c (settings, ops
 * table, check).
 */
#ifndef PS_SOURCE_GITHUB_INTERNAL_H
#define PS_SOURCE_GITHUB_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"
#include "source/github.h"
#include "source/source.h"
#include "util/util.h"

#define DEFAULT_API "https://api.github.com"
#define USER_AGENT "User-Agent: projsync/0.1"
#define API_VERSION "X-GitHub-Api-Version: 2022-11-28"
#define MT_JSON "application/vnd.github+json"
#define MT_SHA "application/vnd.github.sha"
#define MT_RAW "application/vnd.github.raw+json"

#define JSON_MAX ((size_t)64 << 20)      /* any JSON answer */
#define ERROR_BODY_MAX ((size_t)64 << 10) /* the body of an error answer */
#define BRANCH_PAGES_MAX 100             /* 10,000 branches */
#define TREE_FILES_MAX ((size_t)10 << 20)  /* files of one snapshot */
#define TREE_DEPTH_MAX 512
#define STREAM_PAUSE ((size_t)4 << 20)   /* tarball bytes buffered before curl is paused */
#define BLOB_CAP_MIN ((int64_t)1 << 20)
#define BLOB_CAP_MAX ((int64_t)1 << 30)
#define RATE_WAITS_MAX 5                 /* rate-limit waits per request */
#define COMPARE_FILES_MAX 300

enum { ACT_DONE = 1, ACT_RETRY = 2 };

struct gh_req {
	char *url;                /* absolute */
	const char *accept;
	char *if_none_match;      /* the quoted ETag, or NULL */
	size_t max_body;
	/* results */
	long status;              /* of the last response (after redirects) */
	struct ps_buf body;
	struct ps_github_rate rate;
	char content_type[128];
	char etag[128];           /* ETag header, or "" (also when longer) */
	char *link;               /* Link header, bounded */
	char *effective_url;
	long redirects;
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	bool too_big, stalled;
	/* engine state */
	CURL *easy;
	struct curl_slist *headers;
	int attempts;             /* transient failures so far */
	int rate_waits;
	int64_t not_before;       /* monotonic ms */
	int64_t last_progress;    /* monotonic ms */
	curl_off_t last_bytes;
	int state;                /* 0 pending, 1 active, 2 finished */
	size_t index;             /* the caller's */
	struct gh_source *src;
	struct tar_stream *stream; /* set for the tarball: 200 bodies go to its buffer */
};

struct tar_stream {
	struct gh_req req;
	struct archive *a;
	struct ps_buf pending, handed;
	bool transfer_done, paused, opened;
	bool stopped;             /* the source's stop hook ended the transfer */
};

struct fetch_session {
	char (*want)[PS_SHA_HEX]; /* sorted */
	bool *delivered;
	size_t n, ndone;
	size_t blob_pos;          /* next index to consider in blob mode */
	char commit[PS_SHA_HEX];
	bool tarball;             /* still reading the tarball */
	bool spooled;             /* the blobs of the listing's tarball are at hand */
	int tar_attempts, tar_rate_waits;
	struct tar_stream *ts;
};

/* The files of a first sync's tarball, read once for the listing (tarball_listing): their
 * content spooled to a temporary file, so the fetch hands them over without downloading the
 * tarball again. */
struct spool_entry {
	char sha[PS_SHA_HEX];
	int64_t off;
	size_t len;
};
struct tar_spool {
	FILE *f;
	struct spool_entry *v;    /* sorted by sha once complete */
	size_t n, cap;
	int64_t end;
	char commit[PS_SHA_HEX];
};

struct gh_source {
	struct ps_source base;
	char *api;                /* root, without trailing slash */
	char *origin;             /* scheme://host[:port] of the root */
	char *owner, *repo;       /* as the project names them */
	char *repo_url;           /* api/repos/o/r, or where GitHub redirected it */
	char *auth;               /* "Authorization: Bearer ..." or NULL */
	CURLM *multi;
	int concurrency, retries;
	int64_t timeout_ms, backoff_ms, max_wait_ms;
	/* A bounded source (a check, an HTTP request's branch list): each batch of requests, with
	 * its retries, ends within timeout_ms; `deadline` is the current batch's (monotonic ms). */
	bool bounded;
	int64_t deadline;
	size_t tarball_min;
	bool have_repo, moved_warned;
	char *default_branch;
	/* The recursive tree of a moved head, read by resolve: the scan lists it from here (the
	 * pipeline compares it with its stored snapshot), so an incremental sync costs the head
	 * request, this tree and the blobs. `big_tree` when GitHub truncated it. */
	struct ps_github_tree listing;
	bool have_listing, big_tree;
	/* Resolve was given the last synced commit and the head moved: a re-sync, which lists a
	 * truncated tree by walking the changed subtrees rather than every one. */
	bool resync;
	/* `changes` answered from the compare: few blobs, each fetched alone, not the tarball. */
	bool from_compare;
	struct ps_github_compare cmp; /* the last compare, for `changes` and `commits` */
	char cmp_base[PS_SHA_HEX], cmp_head[PS_SHA_HEX];
	/* have_cmp: `cmp` answers for cmp_base...cmp_head. cmp_none: GitHub could not compare
	 * them (404/409/422), remembered so that `commits` does not ask again. */
	bool have_cmp, cmp_none;
	/* `projsync log` (commits.c): the head commit branches/{b} named on a first sync, and the
	 * commits of the compare in `cmp` (cmp_commits_ok when they parsed). */
	struct ps_commit *branch_head;
	struct ps_commit_list cmp_commits;
	bool cmp_commits_ok;
	int64_t max_blob_seen;    /* the largest blob size trees reported */
	struct ps_head head;      /* the last head resolve answered */
	struct tar_spool *spool;
	struct fetch_session *fs;
};

/* ---- http.c ---- */
int64_t gh_env_int(const char *name, int64_t def, int64_t min, int64_t max);
void gh_sleep_ms(int64_t ms);
/* Sleeps `ms` while polling the source's stop hook: PS_ECANCELLED when it stops us, else 0. */
int gh_wait_ms(struct gh_source *s, int64_t ms);
void gh_warn(struct gh_source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The endpoint of a URL for messages: the path below the API root (never a token). */
const char *gh_endpoint(const struct gh_source *s, const char *url);
const char *gh_repo_name(const struct gh_source *s, char *buf, size_t len);
/* scheme://authority of an absolute URL, or NULL. */
char *gh_url_origin(const char *url);
bool gh_same_origin(const struct gh_source *s, const char *url);

void gh_req_init(struct gh_req *r, struct gh_source *s, char *url, const char *accept,
		 size_t max_body);
void gh_req_dispose(struct gh_req *r);
int gh_req_start(struct gh_source *s, struct gh_req *r);
/* Records what a finished transfer tells, counts it, and notices a renamed repository. */
void gh_req_finish(struct gh_source *s, struct gh_req *r, CURLcode cc);
/* Back-off for transient faults. */
int64_t gh_retry_delay(const struct gh_source *s, int n);
/* ACT_DONE, ACT_RETRY (after *delay ms) or an error for a finished request. */
int gh_classify(struct gh_source *s, struct gh_req *r, int64_t *delay);
typedef int (*req_done_fn)(void *ud, struct gh_req *r);
/* Runs `n` requests, at most `cap` at once, retried as needed; `done` sees each final answer. */
int gh_run_requests(struct gh_source *s, struct gh_req **reqs, size_t n, size_t cap,
		    req_done_fn done, void *ud);
/* One GET, retried as needed. The caller owns *r afterwards (gh_req_dispose). */
int gh_get(struct gh_source *s, struct gh_req *r, char *url, const char *accept,
	   const char *if_none_match, size_t max_body);
char *gh_repo_path(struct gh_source *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int gh_repo_not_found(struct gh_source *s);
/* A status the caller did not expect, as an error naming the endpoint and GitHub's message. */
int gh_unexpected(struct gh_source *s, const struct gh_req *r);
int gh_parse_body(struct gh_source *s, struct gh_req *r, json_t **out);

/* ---- json.c ---- */
int gh_malformed(const char *what, const char *why);
json_t *gh_load_json(const char *json, size_t len, const char *what, int *rc);
/* A 40-hex SHA from a JSON string member. */
bool gh_json_sha(json_t *obj, const char *key, char out[PS_SHA_HEX]);

/* ---- repo.c ---- */
int gh_repo_info(struct gh_source *s);
/* GET compare/{base}...{head} into s->cmp (and its commits into s->cmp_commits). 1 when it
 * answered, 0 when GitHub cannot compare them (a base it no longer has). Asked once per pair:
 * the scan's compare serves `commits` too. */
int gh_fetch_compare(struct gh_source *s, const char *base, const char *head);
int gh_branches(struct ps_source *src, struct ps_strv *out, char **default_branch);
int gh_resolve(struct ps_source *src, const char *branch, const char *known,
	       struct ps_head *out);
int gh_check_branch(struct ps_source *src, const char *branch);

/* ---- trees.c ---- */
int gh_get_tree(struct gh_source *s, const char *sha, bool recursive, struct ps_github_tree *t);
int gh_read_tree(struct ps_source *src, const char *tree_sha, struct ps_tree *out);
int gh_list_tree(struct ps_source *src, const char *tree_sha, struct ps_file **out, size_t *n);
int gh_changes(struct ps_source *src, const char *base_commit, const struct ps_head *head,
	       struct ps_change **out, size_t *n);

/* ---- commits.c (`projsync log`) ---- */
int gh_commits(struct ps_source *src, const char *base_commit, const char *head_commit,
	       size_t max, struct ps_commit_list *out);

/* ---- fetch.c ---- */
int gh_fetch_begin(struct ps_source *src, const struct ps_head *head, const char *const *shas,
		   size_t n);
int gh_fetch_next(struct ps_source *src, size_t max, ps_blob_cb cb, void *ud, bool *done);
void gh_fetch_end(struct ps_source *src);
/* Every file of the tarball of `commit` (paths below its top folder; modes from the entries:
 * executable bit, symlinks; blob ids hashed here; sizes), sorted by path, their content
 * spooled for the fetch. PS_ENOTSUPP when GitHub offers no tarball. */
int gh_tar_listing(struct gh_source *s, const char *commit, struct ps_file **out, size_t *n);
void gh_spool_free(struct gh_source *s);
int gh_fetch_blobs(struct ps_source *src, const char *const *shas, size_t n, ps_blob_cb cb,
		   void *ud);

#endif
