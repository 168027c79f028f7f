/*
 * The GitHub source: a repository read through GitHub's REST API (libcurl + jansson +
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
 */
#include "source/source.h"
#include "source/github.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/diff.h"
#include "util/error.h"
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
};

struct fetch_session {
	char (*want)[PS_SHA_HEX]; /* sorted */
	bool *delivered;
	size_t n, ndone;
	size_t blob_pos;          /* next index to consider in blob mode */
	char commit[PS_SHA_HEX];
	bool tarball;             /* still reading the tarball */
	int tar_attempts, tar_rate_waits;
	struct tar_stream *ts;
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
	struct ps_github_compare cmp; /* the last compare, for `changes` */
	char cmp_base[PS_SHA_HEX], cmp_head[PS_SHA_HEX];
	bool have_cmp;
	int64_t max_blob_seen;    /* the largest blob size trees reported */
	struct fetch_session *fs;
	/* `projsync log` (gh_commits): the head commit branches/{b} named on a first sync, and the
	 * commits of the compare in `cmp` (cmp_commits_ok when they parsed). */
	struct ps_commit *branch_head;
	struct ps_commit_list cmp_commits;
	bool cmp_commits_ok;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

static int64_t env_int(const char *name, int64_t def, int64_t min, int64_t max)
{
	const char *v = getenv(name);
	char *end;
	long long x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return def;
	return x;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void warn(struct gh_source *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct gh_source *s, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg) {
		ps_strv_push(&s->base.warnings, msg);
		free(msg);
	}
}

/* The endpoint of a URL for messages: the path below the API root (never a token). */
static const char *endpoint(const struct gh_source *s, const char *url)
{
	size_t n = strlen(s->api);

	return strncmp(url, s->api, n) == 0 && url[n] == '/' ? url + n : url;
}

static const char *repo_name(const struct gh_source *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", s->owner, s->repo);
	return buf;
}

/* scheme://authority of an absolute URL, or NULL. */
static char *url_origin(const char *url)
{
	const char *p = strstr(url, "://");
	size_t n;

	if (!p)
		return NULL;
	p += 3;
	n = strcspn(p, "/?#");
	return ps_strndup(url, (size_t)(p - url) + n);
}

/* The host of an absolute URL, for messages ("?" when it has none). */
static void url_host(const char *url, char *out, size_t len)
{
	CURLU *u = curl_url();
	char *host = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		snprintf(out, len, "%s", host);
	else
		snprintf(out, len, "?");
	curl_free(host);
	curl_url_cleanup(u);
}

static bool same_origin(const struct gh_source *s, const char *url)
{
	size_t n = strlen(s->origin);

	return strncasecmp(url, s->origin, n) == 0 &&
	       (url[n] == '/' || url[n] == '?' || url[n] == '\0');
}

/* ---- the pure parsers (github.h) ---- */

char *ps_github_link_next(const char *link)
{
	const char *p = link;

	if (!link)
		return NULL;
	while (*p) {
		const char *lt, *gt, *end, *q;
		bool next = false;

		lt = strchr(p, '<');
		if (!lt)
			return NULL;
		gt = strchr(lt, '>');
		if (!gt)
			return NULL;
		/* The parameters run to the next ',' that starts a new link (URLs are inside <>). */
		end = gt + 1;
		while (*end && *end != ',')
			end++;
		for (q = gt + 1; q < end; q++) {
			/* rel="next" or rel=next, possibly among other relation types. */
			if (strncasecmp(q, "rel", 3) != 0)
				continue;
			const char *v = q + 3;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			if (v >= end || *v != '=')
				continue;
			v++;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			bool quoted = v < end && *v == '"';
			if (quoted)
				v++;
			while (v < end && *v != '"' && *v != ';') {
				size_t w = 0;
				while (v + w < end && v[w] != ' ' && v[w] != '"' && v[w] != ';')
					w++;
				if (w == 4 && strncasecmp(v, "next", 4) == 0)
					next = true;
				v += w;
				if (!quoted)
					break;
				while (v < end && *v == ' ')
					v++;
			}
		}
		if (next && gt > lt + 1)
			return ps_strndup(lt + 1, (size_t)(gt - lt - 1));
		p = *end ? end + 1 : end;
	}
	return NULL;
}

void ps_github_rate_init(struct ps_github_rate *rl)
{
	rl->limit = rl->remaining = rl->used = rl->reset = rl->retry_after = -1;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
		      size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	const char *v = line + n + 1;
	const char *e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*value = v;
	*vlen = (size_t)(e - v);
	return true;
}

/* Strictly digits; saturates at PS_GITHUB_NUM_MAX instead of overflowing. */
static bool parse_num(const char *v, size_t len, int64_t *out)
{
	int64_t x = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		if (x <= (PS_GITHUB_NUM_MAX - 9) / 10)
			x = x * 10 + (v[i] - '0');
		else
			x = PS_GITHUB_NUM_MAX;
	}
	*out = x;
	return true;
}

bool ps_github_rate_header(struct ps_github_rate *rl, const char *line, size_t len)
{
	static const struct {
		const char *name;
		size_t off;
	} names[] = {
		{ "x-ratelimit-limit", offsetof(struct ps_github_rate, limit) },
		{ "x-ratelimit-remaining", offsetof(struct ps_github_rate, remaining) },
		{ "x-ratelimit-used", offsetof(struct ps_github_rate, used) },
		{ "x-ratelimit-reset", offsetof(struct ps_github_rate, reset) },
		{ "retry-after", offsetof(struct ps_github_rate, retry_after) },
	};
	const char *v;
	size_t vlen;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (header_is(line, len, names[i].name, &v, &vlen)) {
			int64_t x;
			if (parse_num(v, vlen, &x))
				*(int64_t *)((char *)rl + names[i].off) = x;
			return true;
		}
	}
	return false;
}

int64_t ps_github_rate_wait(const struct ps_github_rate *rl, int64_t now_s, int64_t max_s,
			    bool *primary)
{
	int64_t wait;

	*primary = false;
	if (max_s < 0)
		max_s = 0;
	if (rl->remaining == 0 && rl->reset >= 0) {
		*primary = true;
		/* Both sides are bounded (PS_GITHUB_NUM_MAX, a clock): no overflow. */
		wait = rl->reset - now_s + 1;
	} else if (rl->retry_after >= 0) {
		wait = rl->retry_after;
	} else {
		return 0;
	}
	if (wait < 1)
		wait = 1;
	return wait > max_s ? max_s + 1 : wait;
}

void ps_github_clock(int64_t epoch_s, char *out, size_t len)
{
	/* 9999-12-31T23:59:59Z: beyond it the text would not be a date anyone can read. */
	static const int64_t last = INT64_C(253402300799);
	time_t t = (time_t)epoch_s;
	struct tm tm;

	if (epoch_s < 0 || epoch_s > last || !gmtime_r(&t, &tm) ||
	    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, len, "an unreadable time (%lld)", (long long)epoch_s);
}

int64_t ps_github_blob_answer_max(int64_t raw)
{
	int64_t b64 = (raw + 2) / 3 * 4;

	/* Each 60-column line ends in "\n", written as two characters in JSON; the fields around
	 * the content (sha, node_id, size, url with the repository's name, encoding) stay well
	 * under 4 KiB. */
	return b64 + 2 * (b64 / 60 + 1) + 4096;
}

char *ps_github_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = ps_malloc(3 * n + 1), *o = out;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static int malformed(const char *what, const char *why)
{
	return ps_error_set(PS_EUPSTREAM, "malformed_json", "GitHub returned malformed JSON for %s: %s",
			    what, why);
}

static json_t *load_json(const char *json, size_t len, const char *what, int *rc)
{
	json_error_t err;
	json_t *root = json_loadb(json ? json : "", len, 0, &err);

	if (!root) {
		char why[256];
		snprintf(why, sizeof(why), "%s (line %d)", err.text, err.line);
		*rc = malformed(what, why);
	}
	return root;
}

/* A 40-hex SHA from a JSON string member (lowercased copies are not accepted: GitHub always
 * writes lowercase). */
static bool json_sha(json_t *obj, const char *key, char out[PS_SHA_HEX])
{
	const char *v = json_string_value(json_object_get(obj, key));

	if (!v || strlen(v) != 40 || !ps_sha_valid(v))
		return false;
	memcpy(out, v, PS_SHA_HEX);
	return true;
}

static bool parse_mode(const char *v, uint32_t *out)
{
	uint32_t m = 0;

	if (!v || !*v || strlen(v) > 7)
		return false;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '7')
			return false;
		m = m * 8 + (uint32_t)(*p - '0');
	}
	*out = m;
	return true;
}

/* A path git could hold: non-empty components, none "." or "..", no NUL. */
static bool path_ok(const char *p, size_t len)
{
	size_t start = 0;

	if (len == 0 || memchr(p, '\0', len))
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '/') {
			size_t cl = i - start;
			if (cl == 0 || (cl == 1 && p[start] == '.') ||
			    (cl == 2 && p[start] == '.' && p[start + 1] == '.'))
				return false;
			start = i + 1;
		}
	}
	return true;
}

void ps_github_tree_dispose(struct ps_github_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int cmp_entry_ptr(const void *a, const void *b)
{
	return strcmp((*(const struct ps_github_tree_entry *const *)a)->path,
		      (*(const struct ps_github_tree_entry *const *)b)->path);
}

/* The listed entry at `path` (of length len), or NULL; `v` sorted by path. */
static const struct ps_github_tree_entry *find_entry(const struct ps_github_tree_entry **v,
						     size_t n, const char *path, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(v[mid]->path, path, len);
		if (c == 0 && v[mid]->path[len] != '\0')
			c = 1;
		if (c == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A listing is a tree: each path once, and nothing inside an entry that is not a tree ("a" a
 * file and "a/b" too). The pipeline takes a listing as a snapshot, and only a broken or hostile
 * answer can break these (two versions of one path, a file that is also a directory). */
static int tree_shape_ok(const struct ps_github_tree *t, const char *what)
{
	const struct ps_github_tree_entry **v;
	char why[400];
	int rc = 0;

	if (t->n < 2)
		return 0;
	v = ps_calloc(t->n, sizeof(*v));
	for (size_t i = 0; i < t->n; i++)
		v[i] = &t->v[i];
	qsort(v, t->n, sizeof(*v), cmp_entry_ptr);
	for (size_t i = 1; i < t->n && rc == 0; i++) {
		if (strcmp(v[i - 1]->path, v[i]->path) == 0) {
			snprintf(why, sizeof(why), "path '%.200s' is listed twice", v[i]->path);
			rc = malformed(what, why);
		}
	}
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		const char *slash = strrchr(v[i]->path, '/');
		const struct ps_github_tree_entry *parent =
			slash ? find_entry(v, t->n, v[i]->path, (size_t)(slash - v[i]->path)) : NULL;
		if (parent && parent->type != 't') {
			snprintf(why, sizeof(why), "path '%.200s' is inside '%.80s', which is not a tree",
				 v[i]->path, parent->path);
			rc = malformed(what, why);
		}
	}
	free(v);
	return rc;
}

int ps_github_tree_parse(struct ps_github_tree *out, const char *json, size_t len,
			 const char *what)
{
	struct ps_github_tree t = {0};
	json_t *root, *arr;
	int rc = 0;

	if (!(root = load_json(json, len, what, &rc)))
		return rc;
	arr = json_object_get(root, "tree");
	if (!json_is_object(root) || !json_is_array(arr) || !json_sha(root, "sha", t.sha)) {
		rc = malformed(what, "expected an object with 'sha' and a 'tree' array");
		goto cleanup;
	}
	t.truncated = json_is_true(json_object_get(root, "truncated"));
	t.v = ps_calloc(json_array_size(arr) + 1, sizeof(*t.v));
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *e = json_array_get(arr, i);
		json_t *jp = json_object_get(e, "path");
		const char *type = json_string_value(json_object_get(e, "type"));
		struct ps_github_tree_entry *te = &t.v[t.n];
		json_t *jsize = json_object_get(e, "size");

		if (!json_is_string(jp) || !path_ok(json_string_value(jp), json_string_length(jp)) ||
		    !type || !parse_mode(json_string_value(json_object_get(e, "mode")), &te->mode) ||
		    !json_sha(e, "sha", te->sha)) {
			rc = malformed(what, "a tree entry lacks a valid path, mode, type or sha");
			goto cleanup;
		}
		if (strcmp(type, "blob") == 0)
			te->type = 'b';
		else if (strcmp(type, "tree") == 0)
			te->type = 't';
		else if (strcmp(type, "commit") == 0)
			te->type = 'c';
		else {
			rc = malformed(what, "a tree entry has an unknown type");
			goto cleanup;
		}
		/* git's reading of the mode (a crafted tree's 120777 is a symlink, 100611 a file);
		 * an entry whose type then contradicts its mode cannot be read as either. */
		te->mode = ps_mode_canonical(te->mode);
		if (ps_mode_type(te->mode)[0] != te->type) {
			char msg[160];
			snprintf(msg, sizeof(msg), "entry '%.80s' has mode %s but is a %s",
				 json_string_value(jp), json_string_value(json_object_get(e, "mode")),
				 type);
			rc = ps_error_set(PS_EUPSTREAM, "bad_tree", "%s: %s", what, msg);
			goto cleanup;
		}
		te->size = -1;
		if (te->type == 'b') {
			if (!json_is_integer(jsize) || json_integer_value(jsize) < 0) {
				rc = malformed(what, "a blob entry lacks its size");
				goto cleanup;
			}
			te->size = json_integer_value(jsize);
		}
		te->path = ps_strdup(json_string_value(jp));
		t.n++;
	}
	if ((rc = tree_shape_ok(&t, what)) < 0)
		goto cleanup;
	*out = t;
	memset(&t, 0, sizeof(t));
cleanup:
	ps_github_tree_dispose(&t);
	json_decref(root);
	return rc;
}

void ps_github_compare_dispose(struct ps_github_compare *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nfiles; i++) {
		free(c->files[i].filename);
		free(c->files[i].previous);
	}
	free(c->files);
	memset(c, 0, sizeof(*c));
}

static bool file_status(const char *s, enum ps_github_file_status *out)
{
	static const char *const names[] = { "added", "removed", "modified", "renamed",
					     "copied", "changed", "unchanged" };

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum ps_github_file_status)i;
			return true;
		}
	}
	return false;
}

int ps_github_compare_parse(struct ps_github_compare *out, const char *json, size_t len,
			    const char *what)
{
	struct ps_github_compare c = {0};
	json_t *root, *files, *commits;
	const char *status;
	int rc = 0;

	if (!(root = load_json(json, len, what, &rc)))
		return rc;
	status = json_string_value(json_object_get(root, "status"));
	if (!json_is_object(root) || !status || strlen(status) >= sizeof(c.status)) {
		rc = malformed(what, "expected an object with a 'status'");
		goto cleanup;
	}
	snprintf(c.status, sizeof(c.status), "%s", status);
	commits = json_object_get(root, "commits");
	if (json_is_array(commits) && json_array_size(commits) > 0) {
		json_t *last = json_array_get(commits, json_array_size(commits) - 1);
		if (!json_sha(last, "sha", c.head_commit)) {
			rc = malformed(what, "a commit lacks its sha");
			goto cleanup;
		}
		json_sha(json_object_get(json_object_get(last, "commit"), "tree"), "sha",
			 c.head_tree);
	}
	files = json_object_get(root, "files");
	if (json_is_array(files)) {
		c.has_files = true;
		c.files = ps_calloc(json_array_size(files) + 1, sizeof(*c.files));
		for (size_t i = 0; i < json_array_size(files); i++) {
			json_t *f = json_array_get(files, i);
			json_t *jn = json_object_get(f, "filename");
			json_t *jp = json_object_get(f, "previous_filename");
			json_t *jc = json_object_get(f, "changes");
			struct ps_github_compare_file *cf = &c.files[c.nfiles];

			if (!json_is_string(jn) ||
			    !path_ok(json_string_value(jn), json_string_length(jn)) ||
			    !file_status(json_string_value(json_object_get(f, "status")),
					 &cf->status) ||
			    (jp && !json_is_null(jp) &&
			     (!json_is_string(jp) ||
			      !path_ok(json_string_value(jp), json_string_length(jp))))) {
				rc = malformed(what, "a file lacks a valid filename or status");
				goto cleanup;
			}
			if (!json_sha(f, "sha", cf->sha))
				cf->sha[0] = '\0';
			cf->changes = json_is_integer(jc) ? json_integer_value(jc) : -1;
			cf->filename = ps_strdup(json_string_value(jn));
			if (json_is_string(jp))
				cf->previous = ps_strdup(json_string_value(jp));
			c.nfiles++;
		}
	}
	*out = c;
	memset(&c, 0, sizeof(c));
cleanup:
	ps_github_compare_dispose(&c);
	json_decref(root);
	return rc;
}

bool ps_github_compare_usable(const struct ps_github_compare *c)
{
	if (strcmp(c->status, "identical") == 0)
		return true;
	return strcmp(c->status, "ahead") == 0 && c->has_files && c->nfiles < COMPARE_FILES_MAX;
}

static int cmp_file_key(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const struct ps_file *)elem)->path);
}

static int cmp_change(const void *a, const void *b)
{
	const struct ps_change *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	/* A deletion before an addition of the same path, so that they merge. */
	int rx = x->status == PS_CHANGE_DELETED ? -1 : (int)x->status;
	int ry = y->status == PS_CHANGE_DELETED ? -1 : (int)y->status;
	return c ? c : rx - ry;
}

struct change_list {
	struct ps_change *v;
	size_t n, cap;
};

static struct ps_change *change_push(struct change_list *l, enum ps_change_status st,
				     const char *path)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	struct ps_change *c = &l->v[l->n++];
	memset(c, 0, sizeof(*c));
	c->status = st;
	c->path = ps_strdup(path);
	c->size = -1;
	return c;
}

/* Fills the new side of `c` from the head's entry for its path. */
static int change_from_head(struct ps_change *c, const struct ps_github_compare_file *f,
			    const struct ps_file *head, size_t nhead)
{
	const struct ps_file *e = bsearch(c->path, head, nhead, sizeof(*head), cmp_file_key);

	if (!e)
		return ps_error_set(PS_ENOTSUPP, NULL, "compare names %s, absent from the head tree",
				    c->path);
	/* A blob SHA GitHub names must be the tree's (submodules may be written differently). */
	if (f->sha[0] && (e->mode & 0170000u) != PS_MODE_COMMIT && strcmp(f->sha, e->sha) != 0)
		return ps_error_set(PS_ENOTSUPP, NULL, "compare and tree disagree about %s",
				    c->path);
	memcpy(c->sha, e->sha, PS_SHA_HEX);
	c->mode = e->mode;
	c->size = e->size;
	return 0;
}

int ps_github_compare_changes(const struct ps_github_compare *c, const struct ps_file *head,
			      size_t nhead, struct ps_change **out, size_t *n)
{
	struct change_list l = {0};
	size_t w = 0;
	int rc = 0;

	if (!ps_github_compare_usable(c))
		return ps_error_set(PS_ENOTSUPP, NULL, "compare is not a fast-forward below %d files",
				    COMPARE_FILES_MAX);
	for (size_t i = 0; i < c->nfiles && rc == 0; i++) {
		const struct ps_github_compare_file *f = &c->files[i];
		struct ps_change *ch;

		switch (f->status) {
		case PS_GH_UNCHANGED:
			break;
		case PS_GH_REMOVED:
			ch = change_push(&l, PS_CHANGE_DELETED, f->filename);
			memcpy(ch->previous_sha, f->sha, PS_SHA_HEX);
			break;
		case PS_GH_RENAMED:
			if (f->previous && strcmp(f->previous, f->filename) != 0) {
				ch = change_push(&l, PS_CHANGE_DELETED, f->previous);
				/* Without edits the old blob is the new one: an exact rename. */
				if (f->changes == 0)
					memcpy(ch->previous_sha, f->sha, PS_SHA_HEX);
			}
			/* fall through */
		case PS_GH_ADDED:
		case PS_GH_COPIED:
			ch = change_push(&l, PS_CHANGE_ADDED, f->filename);
			rc = change_from_head(ch, f, head, nhead);
			break;
		case PS_GH_MODIFIED:
		case PS_GH_CHANGED:
			ch = change_push(&l, f->status == PS_GH_CHANGED ? PS_CHANGE_TYPE_CHANGED
								       : PS_CHANGE_MODIFIED,
					 f->filename);
			rc = change_from_head(ch, f, head, nhead);
			break;
		}
	}
	if (rc < 0)
		goto fail;
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_change);
	/* One change per path: a deletion and an addition of one path are a modification; any
	 * other repeat means the compare is not what we think it is. */
	for (size_t i = 0; i < l.n; i++) {
		if (w > 0 && strcmp(l.v[w - 1].path, l.v[i].path) == 0) {
			struct ps_change *prev = &l.v[w - 1];
			if (prev->status == PS_CHANGE_DELETED && l.v[i].status == PS_CHANGE_ADDED) {
				char psha[PS_SHA_HEX];
				memcpy(psha, prev->previous_sha, PS_SHA_HEX);
				ps_change_dispose(prev);
				*prev = l.v[i];
				prev->status = PS_CHANGE_MODIFIED;
				memcpy(prev->previous_sha, psha, PS_SHA_HEX);
				continue;
			}
			rc = ps_error_set(PS_ENOTSUPP, NULL, "compare names %s twice", l.v[i].path);
			for (size_t j = i; j < l.n; j++)
				ps_change_dispose(&l.v[j]);
			l.n = w;
			goto fail;
		}
		l.v[w++] = l.v[i];
	}
	*out = l.v;
	*n = w;
	return 0;
fail:
	ps_changes_free(l.v, l.n);
	return rc;
}

/* ---- HTTP: one engine for every request ---- */

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct gh_req *r = ud;
	size_t len = size * nmemb;
	const char *v;
	size_t vlen;

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or a 100): forget the previous one's. */
		const char *sp = memchr(line, ' ', len);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		ps_github_rate_init(&r->rate);
		r->content_type[0] = '\0';
		r->etag[0] = '\0';
		free(r->link);
		r->link = NULL;
		if (!r->stream || r->status != 200)
			r->body.len = 0;
		return len;
	}
	if (ps_github_rate_header(&r->rate, line, len))
		return len;
	if (header_is(line, len, "content-type", &v, &vlen)) {
		snprintf(r->content_type, sizeof(r->content_type), "%.*s", (int)vlen, v);
	} else if (header_is(line, len, "etag", &v, &vlen)) {
		if (vlen < sizeof(r->etag))
			snprintf(r->etag, sizeof(r->etag), "%.*s", (int)vlen, v);
	} else if (header_is(line, len, "link", &v, &vlen) && vlen < 16384) {
		free(r->link);
		r->link = ps_strndup(v, vlen);
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct gh_req *r = ud;
	size_t len = size * nmemb;

	if (r->stream && r->status == 200) {
		struct tar_stream *ts = r->stream;
		if (ts->pending.len >= STREAM_PAUSE) {
			ts->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		if (ps_buf_append(&ts->pending, data, len) < 0) {
			r->too_big = true;
			return 0;
		}
		r->src->base.bytes += (int64_t)len;
		return len;
	}
	r->src->base.bytes += (int64_t)len;
	if (ps_buf_append(&r->body, data, len) < 0) {
		r->too_big = true;
		return 0;
	}
	return len;
}

/* Aborts a transfer that made no progress for the timeout (a hung peer). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct gh_req *r = ud;
	int64_t now = ps_mono_ms();

	if (dlnow != r->last_bytes) {
		r->last_bytes = dlnow;
		r->last_progress = now;
		return 0;
	}
	if (r->stream && r->stream->paused)
		r->last_progress = now; /* we are the slow side */
	if (now - r->last_progress > r->src->timeout_ms) {
		r->stalled = true;
		return 1;
	}
	return 0;
}

static void req_reset_result(struct gh_req *r)
{
	r->status = 0;
	r->body.len = 0;
	ps_github_rate_init(&r->rate);
	r->content_type[0] = '\0';
	r->etag[0] = '\0';
	free(r->link);
	r->link = NULL;
	free(r->effective_url);
	r->effective_url = NULL;
	r->redirects = 0;
	r->cc = CURLE_OK;
	r->errbuf[0] = '\0';
	r->too_big = r->stalled = false;
}

static void req_init(struct gh_req *r, struct gh_source *s, char *url, const char *accept,
		     size_t max_body)
{
	memset(r, 0, sizeof(*r));
	r->src = s;
	r->url = url;
	r->accept = accept;
	r->max_body = max_body;
	ps_buf_init(&r->body, max_body);
	ps_github_rate_init(&r->rate);
}

static void req_dispose(struct gh_req *r)
{
	if (r->easy) {
		if (r->state == 1)
			curl_multi_remove_handle(r->src->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	ps_buf_dispose(&r->body);
	free(r->url);
	free(r->if_none_match);
	free(r->link);
	free(r->effective_url);
	r->url = r->if_none_match = r->link = r->effective_url = NULL;
}

static int req_start(struct gh_source *s, struct gh_req *r)
{
	char *h;
	CURL *e = curl_easy_init();

	if (!e)
		return ps_error_set(PS_ENOMEM, NULL, "cannot create an HTTP handle");
	req_reset_result(r);
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	h = ps_asprintf("Accept: %s", r->accept);
	r->headers = curl_slist_append(r->headers, h);
	free(h);
	r->headers = curl_slist_append(r->headers, USER_AGENT);
	r->headers = curl_slist_append(r->headers, API_VERSION);
	if (s->auth)
		r->headers = curl_slist_append(r->headers, s->auth);
	if (r->if_none_match) {
		h = ps_asprintf("If-None-Match: %s", r->if_none_match);
		r->headers = curl_slist_append(r->headers, h);
		free(h);
	}
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* Never forward the token to another host after a redirect (curl's default; kept). */
	curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
	if (s->deadline > 0) {
		int64_t left = s->deadline - ps_mono_ms();
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
	}
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, r);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	r->easy = e;
	r->last_progress = ps_mono_ms();
	r->last_bytes = 0;
	if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		r->easy = NULL;
		return ps_error_set(PS_EFAIL, NULL, "cannot start an HTTP request");
	}
	r->state = 1;
	return 0;
}

/* Records what a finished transfer tells, counts it, and notices a renamed repository. */
static void req_finish(struct gh_source *s, struct gh_req *r, CURLcode cc)
{
	char *eff = NULL;
	long redirects = 0;

	r->cc = cc;
	curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_COUNT, &redirects);
	curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &eff);
	r->redirects = redirects;
	r->effective_url = eff ? ps_strdup(eff) : NULL;
	curl_multi_remove_handle(s->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	r->state = 0;
	s->base.requests += 1 + redirects;

	/* A repository GitHub redirects (renamed or transferred) is reached at its new place
	 * for the rest of this source's life; the path below the repository stays the same. */
	size_t blen = strlen(s->repo_url);
	if (redirects > 0 && r->effective_url && r->status >= 200 && r->status < 400 &&
	    strncmp(r->url, s->repo_url, blen) == 0 && same_origin(s, r->effective_url)) {
		const char *suffix = r->url + blen;
		size_t slen = strlen(suffix), elen = strlen(r->effective_url);
		if (elen > slen && strcmp(r->effective_url + elen - slen, suffix) == 0 &&
		    strncmp(r->effective_url, s->repo_url, blen) != 0) {
			free(s->repo_url);
			s->repo_url = ps_strndup(r->effective_url, elen - slen);
			if (!s->moved_warned) {
				char name[200];
				warn(s, "GitHub redirects repository %s to %s (renamed or "
				     "transferred); following it",
				     repo_name(s, name, sizeof(name)), endpoint(s, s->repo_url));
				s->moved_warned = true;
			}
		}
	}
}

static bool transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_ABORTED_BY_CALLBACK: /* our stall detector */
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		return true;
	default:
		return false;
	}
}

/* GitHub's "message" of an error body, for our messages (bounded). */
static void body_message(const struct gh_req *r, char *out, size_t len)
{
	json_t *root;

	out[0] = '\0';
	if (!r->body.len || !(root = json_loadb(r->body.data, r->body.len, 0, NULL)))
		return;
	const char *m = json_string_value(json_object_get(root, "message"));
	if (m)
		snprintf(out, len, "%.200s", m);
	json_decref(root);
}

/* Back-off for a secondary rate limit without retry-after: from the base (one minute by
 * default, as GitHub asks), doubling, bounded by the maximum wait. */
static int64_t backoff_delay(const struct gh_source *s, int n)
{
	int64_t d = s->backoff_ms;

	for (int i = 0; i < n && d < s->max_wait_ms; i++)
		d *= 2;
	return d < s->max_wait_ms ? d : s->max_wait_ms;
}

/*
 * What to do with a finished transfer: ACT_DONE (hand it to the caller, whatever the status),
 * ACT_RETRY after *delay ms, or a negative error. Rate limits and transient faults are handled
 * here, so that every caller gets them the same way.
 */
/* Back-off for transient faults (5xx, timeouts, cut connections): they are usually short, so
 * from a sixtieth of the rate-limit base (one second by default), doubling. */
static int64_t retry_delay(const struct gh_source *s, int n)
{
	int64_t d = s->backoff_ms / 60 > 0 ? s->backoff_ms / 60 : 1;

	for (int i = 0; i < n && d < s->max_wait_ms; i++)
		d *= 2;
	return d < s->max_wait_ms ? d : s->max_wait_ms;
}

/* The rate-limit figures of the last answer that carried them, across every GitHub source of
 * the process (they share one limit per token), for `projsync serve`'s /metrics. */
static pthread_mutex_t last_rate_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_rate_remaining = -1, last_rate_reset = -1;

void ps_github_rate_limit_last(int64_t *remaining, int64_t *reset)
{
	pthread_mutex_lock(&last_rate_mu);
	*remaining = last_rate_remaining;
	*reset = last_rate_reset;
	pthread_mutex_unlock(&last_rate_mu);
}

static int classify(struct gh_source *s, struct gh_req *r, int64_t *delay)
{
	const char *what = endpoint(s, r->url);
	char msg[256];
	bool transient = false;
	char reason[CURL_ERROR_SIZE + 64];

	if (r->rate.remaining >= 0) {
		pthread_mutex_lock(&last_rate_mu);
		last_rate_remaining = r->rate.remaining;
		last_rate_reset = r->rate.reset;
		pthread_mutex_unlock(&last_rate_mu);
	}

	*delay = 0;
	if (r->too_big)
		return ps_error_set(PS_ETOOBIG, "response_too_big",
				    "GitHub's answer to GET %s exceeds %zu bytes", what, r->max_body);
	if (r->cc != CURLE_OK) {
		if (r->stalled)
			snprintf(reason, sizeof(reason), "no data for %lld ms",
				 (long long)s->timeout_ms);
		else
			snprintf(reason, sizeof(reason), "%s",
				 r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc));
		/* A name that does not resolve will not resolve in a few seconds either: say which
		 * name at once rather than retrying it like a 5xx. */
		if (r->cc == CURLE_COULDNT_RESOLVE_HOST || r->cc == CURLE_COULDNT_RESOLVE_PROXY) {
			char host[256];
			url_host(r->effective_url ? r->effective_url : r->url, host, sizeof(host));
			return ps_error_set(PS_EUPSTREAM, "upstream_unreachable",
					    r->cc == CURLE_COULDNT_RESOLVE_PROXY
					    ? "cannot resolve the proxy's host name (GET %s of %s): %s"
					    : "cannot resolve host name %s (GET %s): %s",
					    r->cc == CURLE_COULDNT_RESOLVE_PROXY ? what : host,
					    r->cc == CURLE_COULDNT_RESOLVE_PROXY ? host : what, reason);
		}
		if (!transient_curl(r->cc) || r->cc == CURLE_ABORTED_BY_CALLBACK) {
			if (!r->stalled)
				return ps_error_set(PS_EUPSTREAM, "upstream_unreachable",
						    "GET %s failed: %s", what, reason);
		}
		transient = true;
	} else if (r->status >= 500) {
		snprintf(reason, sizeof(reason), "HTTP %ld", r->status);
		transient = true;
	} else if (r->status == 401) {
		return ps_error_set(PS_EUPSTREAM, "bad_credentials",
				    "GitHub rejected the token (bad credentials)");
	} else if (r->status == 403 || r->status == 429) {
		int64_t max_s = s->max_wait_ms / 1000, wait_s;
		bool primary;
		char clock[64];

		body_message(r, msg, sizeof(msg));
		/* Clamped to max_s + 1: a huge header means "beyond the limit", never an overflow. */
		wait_s = ps_github_rate_wait(&r->rate, ps_now_ms() / 1000, max_s, &primary);
		if (primary) {
			ps_github_clock(r->rate.reset, clock, sizeof(clock));
			if (wait_s > max_s || r->rate_waits >= RATE_WAITS_MAX) {
				warn(s, "GitHub rate limit exhausted; it resets at %s, beyond the %lld s "
				     "this sync may wait", clock, (long long)max_s);
				return ps_error_set(PS_EUPSTREAM, "rate_limited",
						    "GitHub rate limit exhausted; it resets at %s "
						    "(in %lld s), beyond the %lld s this sync may wait "
						    "(PROJSYNC_GITHUB_MAX_WAIT)", clock,
						    (long long)(r->rate.reset - ps_now_ms() / 1000),
						    (long long)max_s);
			}
			warn(s, "GitHub rate limit exhausted; waiting until %s (resets in %lld s)",
			     clock, (long long)wait_s);
			r->rate_waits++;
			*delay = wait_s * 1000;
			return ACT_RETRY;
		}
		if (wait_s > 0) {
			if (wait_s > max_s || r->rate_waits >= RATE_WAITS_MAX) {
				if (r->rate.retry_after > max_s)
					return ps_error_set(PS_EUPSTREAM, "rate_limited",
							    "GitHub secondary rate limit: retry after "
							    "%lld s, beyond the %lld s this sync may wait "
							    "(PROJSYNC_GITHUB_MAX_WAIT)",
							    (long long)r->rate.retry_after,
							    (long long)max_s);
				return ps_error_set(PS_EUPSTREAM, "rate_limited",
						    "GitHub secondary rate limit persists after %d "
						    "waits (GET %s)", r->rate_waits, what);
			}
			warn(s, "GitHub secondary rate limit; waiting %lld s as GitHub asks",
			     (long long)wait_s);
			r->rate_waits++;
			*delay = wait_s * 1000;
			return ACT_RETRY;
		}
		if (r->status == 429 || strcasestr(msg, "rate limit")) {
			if (r->rate_waits >= RATE_WAITS_MAX)
				return ps_error_set(PS_EUPSTREAM, "rate_limited",
						    "GitHub secondary rate limit persists after %d "
						    "waits (GET %s)", r->rate_waits, what);
			*delay = backoff_delay(s, r->rate_waits);
			warn(s, "GitHub secondary rate limit; backing off %lld ms",
			     (long long)*delay);
			r->rate_waits++;
			return ACT_RETRY;
		}
		return ps_error_set(PS_EUPSTREAM, "forbidden", "GitHub refused GET %s: %s", what,
				    msg[0] ? msg : "403 Forbidden");
	}
	if (!transient)
		return ACT_DONE;
	if (r->attempts >= s->retries)
		return ps_error_set(PS_EUPSTREAM,
				    r->stalled || r->cc == CURLE_OPERATION_TIMEDOUT ? "upstream_timeout"
				    : r->cc != CURLE_OK ? "upstream_unreachable" : "upstream_error",
				    "GET %s failed after %d attempts: %s", what, r->attempts + 1,
				    reason);
	*delay = retry_delay(s, r->attempts);
	r->attempts++;
	return ACT_RETRY;
}

typedef int (*req_done_fn)(void *ud, struct gh_req *r);

/* The failure of a bounded batch whose time is up (or would be before the next attempt). */
static int bound_exceeded(struct gh_source *s, const struct gh_req *r)
{
	char reason[CURL_ERROR_SIZE + 64];

	if (r->stalled || r->cc == CURLE_OPERATION_TIMEDOUT)
		snprintf(reason, sizeof(reason), "no answer");
	else if (r->cc != CURLE_OK)
		snprintf(reason, sizeof(reason), "%s",
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc));
	else
		snprintf(reason, sizeof(reason), "HTTP %ld", r->status);
	return ps_error_set(PS_EUPSTREAM, "upstream_timeout",
			    "GitHub did not answer GET %s within %lld ms (last attempt: %s; "
			    "PROJSYNC_NET_TIMEOUT)", endpoint(s, r->url), (long long)s->timeout_ms,
			    reason);
}

/*
 * Runs `n` requests, at most `cap` at a time, retrying as classify says, and calls on_done for
 * each in completion order (a non-zero return stops everything and is returned). Blocks.
 */
static int run_requests(struct gh_source *s, struct gh_req **reqs, size_t n, size_t cap,
			req_done_fn on_done, void *ud)
{
	size_t active = 0, finished = 0;
	int rc = 0;

	s->deadline = s->bounded ? ps_mono_ms() + s->timeout_ms : 0;
	for (size_t i = 0; i < n; i++) {
		reqs[i]->state = 0;
		reqs[i]->not_before = 0;
	}
	while (finished < n) {
		int64_t now = ps_mono_ms(), next_start = -1;
		int running = 0;
		CURLMsg *m;
		int left;

		for (size_t i = 0; i < n && active < cap; i++) {
			struct gh_req *r = reqs[i];
			if (r->state != 0)
				continue;
			if (r->not_before > now) {
				if (next_start < 0 || r->not_before < next_start)
					next_start = r->not_before;
				continue;
			}
			if ((rc = req_start(s, r)) < 0)
				goto abort;
			active++;
		}
		curl_multi_perform(s->multi, &running);
		while ((m = curl_multi_info_read(s->multi, &left))) {
			struct gh_req *r = NULL;
			int64_t delay;
			int act;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			req_finish(s, r, m->data.result);
			active--;
			act = classify(s, r, &delay);
			if (act < 0) {
				rc = act;
				goto abort;
			}
			if (act == ACT_RETRY && s->deadline > 0 &&
			    ps_mono_ms() + delay >= s->deadline) {
				rc = bound_exceeded(s, r);
				goto abort;
			}
			if (act == ACT_RETRY) {
				r->state = 0;
				r->not_before = ps_mono_ms() + delay;
				continue;
			}
			r->state = 2;
			finished++;
			if (on_done && (rc = on_done(ud, r)) != 0)
				goto abort;
		}
		if (finished == n)
			break;
		int timeout = 100;
		if (active == 0 && next_start >= 0) {
			int64_t d = next_start - ps_mono_ms();
			timeout = d < 0 ? 0 : d > 1000 ? 1000 : (int)d;
		}
		curl_multi_poll(s->multi, NULL, 0, timeout, NULL);
	}
	s->deadline = 0;
	return 0;
abort:
	s->deadline = 0;
	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->state == 1 && reqs[i]->easy) {
			curl_multi_remove_handle(s->multi, reqs[i]->easy);
			curl_easy_cleanup(reqs[i]->easy);
			reqs[i]->easy = NULL;
			reqs[i]->state = 0;
		}
	}
	return rc;
}

/* One GET, retried as needed. The caller owns *r afterwards (req_dispose). */
static int get(struct gh_source *s, struct gh_req *r, char *url, const char *accept,
	       const char *if_none_match, size_t max_body)
{
	struct gh_req *one = r;

	req_init(r, s, url, accept, max_body);
	if (if_none_match)
		r->if_none_match = ps_asprintf("\"%s\"", if_none_match);
	return run_requests(s, &one, 1, 1, NULL, NULL);
}

static char *repo_path(struct gh_source *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *repo_path(struct gh_source *s, const char *fmt, ...)
{
	va_list ap;
	char *rest, *url;

	va_start(ap, fmt);
	if (vasprintf(&rest, fmt, ap) < 0)
		rest = NULL;
	va_end(ap);
	url = ps_asprintf("%s%s", s->repo_url, rest ? rest : "");
	free(rest);
	return url;
}

static int repo_not_found(struct gh_source *s)
{
	char name[200];

	return ps_error_set(PS_ENOTFOUND, "repository_not_found",
			    "repository %s not found or no access", repo_name(s, name, sizeof(name)));
}

/* A status the caller did not expect, as an error naming the endpoint and GitHub's message. */
static int unexpected(struct gh_source *s, const struct gh_req *r)
{
	char msg[256];

	body_message(r, msg, sizeof(msg));
	return ps_error_set(PS_EUPSTREAM, "upstream_error", "GitHub answered %ld to GET %s%s%s",
			    r->status, endpoint(s, r->url), msg[0] ? ": " : "", msg);
}

static int parse_body(struct gh_source *s, struct gh_req *r, json_t **out)
{
	int rc = 0;

	*out = load_json(r->body.data, r->body.len, endpoint(s, r->url), &rc);
	return rc;
}

/* ---- repository and branches ---- */

/*
 * The repository's ETag and default branch as last seen by this process, so that a project
 * following the default branch asks for it at every sync (it may change upstream) with a
 * conditional request: an unchanged repository answers 304, which GitHub does not count against
 * the rate limit. Bounded; the oldest entry makes room. A separate process (each CLI run) starts
 * empty and pays one counted request.
 */
#define REPO_CACHE_MAX 64
static struct repo_seen {
	char *url, *etag, *default_branch;
} repo_cache[REPO_CACHE_MAX];
static size_t repo_cache_next;
static pthread_mutex_t repo_cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* The cached ETag of `url` (owned by the caller), or NULL. */
static char *repo_cache_etag(const char *url)
{
	char *etag = NULL;

	pthread_mutex_lock(&repo_cache_mu);
	for (size_t i = 0; i < REPO_CACHE_MAX && !etag; i++)
		if (repo_cache[i].url && strcmp(repo_cache[i].url, url) == 0)
			etag = ps_strdup(repo_cache[i].etag);
	pthread_mutex_unlock(&repo_cache_mu);
	return etag;
}

/* The cached default branch of `url` if its ETag is still `etag`: *found, *out owned/NULL. */
static bool repo_cache_branch(const char *url, const char *etag, char **out)
{
	bool found = false;

	pthread_mutex_lock(&repo_cache_mu);
	for (size_t i = 0; i < REPO_CACHE_MAX && !found; i++)
		if (repo_cache[i].url && strcmp(repo_cache[i].url, url) == 0 &&
		    strcmp(repo_cache[i].etag, etag) == 0) {
			*out = ps_strdup(repo_cache[i].default_branch);
			found = true;
		}
	pthread_mutex_unlock(&repo_cache_mu);
	return found;
}

static void repo_cache_put(const char *url, const char *etag, const char *default_branch)
{
	struct repo_seen *slot = NULL;

	pthread_mutex_lock(&repo_cache_mu);
	for (size_t i = 0; i < REPO_CACHE_MAX && !slot; i++)
		if (repo_cache[i].url && strcmp(repo_cache[i].url, url) == 0)
			slot = &repo_cache[i];
	if (!slot) {
		slot = &repo_cache[repo_cache_next];
		repo_cache_next = (repo_cache_next + 1) % REPO_CACHE_MAX;
	}
	free(slot->url);
	free(slot->etag);
	free(slot->default_branch);
	slot->url = ps_strdup(url);
	slot->etag = ps_strdup(etag);
	slot->default_branch = ps_strdup(default_branch);
	pthread_mutex_unlock(&repo_cache_mu);
}

static int repo_info(struct gh_source *s)
{
	struct gh_req r, *one = &r;
	json_t *root = NULL;
	char *url;
	int rc;

	if (s->have_repo)
		return 0;
	url = ps_strdup(s->repo_url);
	req_init(&r, s, ps_strdup(url), MT_JSON, JSON_MAX);
	r.if_none_match = repo_cache_etag(url);
	if ((rc = run_requests(s, &one, 1, 1, NULL, NULL)) < 0)
		goto cleanup;
	if (r.status == 304 && r.if_none_match) {
		char *def = NULL;
		if (repo_cache_branch(url, r.if_none_match, &def)) {
			free(s->default_branch);
			s->default_branch = def;
			s->have_repo = true;
			goto cleanup;
		}
		/* Another thread replaced the entry meanwhile: ask again, unconditionally. */
		req_dispose(&r);
		req_init(&r, s, ps_strdup(url), MT_JSON, JSON_MAX);
		if ((rc = run_requests(s, &one, 1, 1, NULL, NULL)) < 0)
			goto cleanup;
	}
	if (r.status == 404) {
		rc = repo_not_found(s);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = parse_body(s, &r, &root)) < 0)
		goto cleanup;
	if (!json_is_object(root)) {
		rc = malformed(endpoint(s, r.url), "expected an object");
		goto cleanup;
	}
	const char *def = json_string_value(json_object_get(root, "default_branch"));
	free(s->default_branch);
	s->default_branch = def && *def ? ps_strdup(def) : NULL;
	s->have_repo = true;
	if (r.etag[0])
		repo_cache_put(url, r.etag, s->default_branch);
cleanup:
	json_decref(root);
	req_dispose(&r);
	free(url);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_branches(struct gh_source *s, struct ps_strv *out)
{
	char *url = repo_path(s, "/branches?per_page=100");
	int rc = 0;

	for (int page = 0; url; page++) {
		struct gh_req r;
		json_t *root = NULL;

		if (page >= BRANCH_PAGES_MAX) {
			warn(s, "more than %d branches; listing only the first %d",
			     BRANCH_PAGES_MAX * 100, BRANCH_PAGES_MAX * 100);
			free(url);
			break;
		}
		if ((rc = get(s, &r, url, MT_JSON, NULL, JSON_MAX)) < 0) {
			req_dispose(&r);
			break;
		}
		url = NULL;
		if (r.status == 404)
			rc = repo_not_found(s);
		else if (r.status != 200)
			rc = unexpected(s, &r);
		else if ((rc = parse_body(s, &r, &root)) == 0 && !json_is_array(root))
			rc = malformed(endpoint(s, r.url), "expected an array");
		for (size_t i = 0; rc == 0 && i < json_array_size(root); i++) {
			const char *name =
				json_string_value(json_object_get(json_array_get(root, i), "name"));
			if (!name) {
				rc = malformed(endpoint(s, r.url), "a branch lacks its name");
				break;
			}
			ps_strv_push(out, name);
		}
		if (rc == 0 && (url = ps_github_link_next(r.link)) && !same_origin(s, url)) {
			rc = ps_error_set(PS_EUPSTREAM, "upstream_error",
					  "GitHub's next page of branches points to another host");
			free(url);
			url = NULL;
		}
		json_decref(root);
		req_dispose(&r);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		ps_strv_dispose(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(char *), cmp_str);
	return 0;
}

static int gh_branches(struct ps_source *src, struct ps_strv *out, char **default_branch)
{
	struct gh_source *s = (struct gh_source *)src;
	struct ps_strv names = {0};
	int rc;

	if ((rc = repo_info(s)) < 0)
		return rc;
	if (out) {
		if ((rc = list_branches(s, &names)) < 0)
			return rc;
		*out = names;
	}
	/* An empty repository has a default branch name on GitHub but nothing to sync. */
	*default_branch = s->default_branch && (!out || out->n > 0) ? ps_strdup(s->default_branch)
								    : NULL;
	return 0;
}

/* ---- heads ---- */

static int resolve_empty_or_missing(struct gh_source *s, const char *branch)
{
	struct gh_req r;
	char *enc;
	int rc;

	/* Told "no such branch": the repository itself may be gone, or empty (GitHub answers
	 * 409 "Git Repository is empty." to the commits endpoint then). */
	if ((rc = repo_info(s)) < 0)
		return rc;
	enc = ps_github_escape(branch);
	rc = get(s, &r, repo_path(s, "/commits/heads/%s", enc), MT_SHA, NULL, 4096);
	free(enc);
	if (rc < 0)
		goto cleanup;
	if (r.status == 409)
		rc = ps_error_set(PS_EEMPTY, "empty", "repository is empty: github:%s/%s", s->owner,
				  s->repo);
	else
		rc = ps_error_set(PS_ENOTFOUND, "branch_not_found",
				  "branch '%s' not found in github:%s/%s", branch, s->owner, s->repo);
cleanup:
	req_dispose(&r);
	return rc;
}

/* GET compare/{base}...{head}, kept for `changes`. 1 when it answered, 0 when GitHub cannot
 * compare them (a base it no longer has). */
static int fetch_compare(struct gh_source *s, const char *base, const char *head)
{
	struct gh_req r;
	int rc;

	if (s->have_cmp && strcmp(s->cmp_base, base) == 0 && strcmp(s->cmp_head, head) == 0)
		return 1;
	ps_github_compare_dispose(&s->cmp);
	ps_commit_list_dispose(&s->cmp_commits);
	s->have_cmp = s->cmp_commits_ok = false;
	if ((rc = get(s, &r, repo_path(s, "/compare/%s...%s", base, head), MT_JSON, NULL,
		      JSON_MAX)) < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 422 || r.status == 409) {
		rc = 0;
		goto cleanup;
	}
	if (r.status != 200) {
		rc = unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = ps_github_compare_parse(&s->cmp, r.body.data, r.body.len, endpoint(s, r.url))) < 0)
		goto cleanup;
	/* Its commits serve `projsync log`; the changes do not depend on them. */
	s->cmp_commits_ok = ps_github_compare_commits_parse(&s->cmp_commits, r.body.data,
							    r.body.len, endpoint(s, r.url)) == 0;
	ps_error_clear();
	memcpy(s->cmp_base, base, PS_SHA_HEX);
	memcpy(s->cmp_head, head, PS_SHA_HEX);
	s->have_cmp = true;
	rc = 1;
cleanup:
	req_dispose(&r);
	return rc;
}

static int get_tree(struct gh_source *s, const char *sha, bool recursive,
		    struct ps_github_tree *t);

/* Reads the recursive tree of `commit` into s->listing and its root tree's SHA into `tree`. */
static int head_listing(struct gh_source *s, const char *commit, char tree[PS_SHA_HEX])
{
	int rc;

	ps_github_tree_dispose(&s->listing);
	s->have_listing = s->big_tree = false;
	if ((rc = get_tree(s, commit, true, &s->listing)) < 0) {
		if (rc == PS_ENOTFOUND)
			rc = ps_error_set(PS_EUPSTREAM, "upstream_error",
					  "GitHub has no tree for commit %s it just named", commit);
		return rc;
	}
	memcpy(tree, s->listing.sha, PS_SHA_HEX);
	if (s->listing.truncated) {
		s->big_tree = true;
		ps_github_tree_dispose(&s->listing);
	} else {
		s->have_listing = true;
	}
	return 0;
}

static int gh_resolve(struct ps_source *src, const char *branch, const char *known,
		      struct ps_head *out)
{
	struct gh_source *s = (struct gh_source *)src;
	struct ps_head h;
	struct gh_req r;
	json_t *root = NULL;
	char *enc;
	int rc;

	memset(&h, 0, sizeof(h));
	if (!branch) {
		if ((rc = repo_info(s)) < 0)
			return rc;
		if (!s->default_branch)
			return ps_error_set(PS_EEMPTY, "empty", "repository is empty: github:%s/%s",
					    s->owner, s->repo);
		branch = s->default_branch;
	}
	if (!*branch)
		return ps_error_set(PS_ENOTFOUND, "branch_not_found", "empty branch name");
	enc = ps_github_escape(branch);
	if (known && ps_sha_valid(known) && strlen(known) == 40) {
		/* The conditional request: GitHub's ETag of the sha media type is the quoted SHA,
		 * and a 304 does not count against the rate limit. `heads/` makes it a branch: a
		 * bare ref would also resolve a tag or a commit id. */
		rc = get(s, &r, repo_path(s, "/commits/heads/%s", enc), MT_SHA, known, 4096);
		free(enc);
		if (rc < 0)
			goto cleanup;
		if (r.status == 304) {
			memcpy(h.commit, known, PS_SHA_HEX);
			goto done; /* tree left empty: unchanged */
		}
		if (r.status == 409) {
			rc = ps_error_set(PS_EEMPTY, "empty", "repository is empty: github:%s/%s",
					  s->owner, s->repo);
			goto cleanup;
		}
		if (r.status == 404 || r.status == 422) {
			rc = resolve_empty_or_missing(s, branch);
			goto cleanup;
		}
		if (r.status != 200) {
			rc = unexpected(s, &r);
			goto cleanup;
		}
		size_t len = r.body.len;
		while (len > 0 && (r.body.data[len - 1] == '\n' || r.body.data[len - 1] == '\r' ||
				   r.body.data[len - 1] == ' '))
			len--;
		if (len != 40 || (r.body.data[40] = '\0', !ps_sha_valid(r.body.data))) {
			rc = ps_error_set(PS_EUPSTREAM, "upstream_error",
					  "GitHub's answer to GET %s is not a commit SHA",
					  endpoint(s, r.url));
			goto cleanup;
		}
		memcpy(h.commit, r.body.data, PS_SHA_HEX);
		if (strcmp(h.commit, known) == 0) {
			goto done; /* a 200 for the same commit: still unchanged */
		}
		/* The head moved: its recursive tree (GitHub takes a commit for a tree) names the
		 * new root tree and, unless truncated, every path with its mode, blob and size,
		 * which the compare API cannot tell (it has no modes). */
		if ((rc = head_listing(s, h.commit, h.tree)) < 0)
			goto cleanup;
		goto done;
	}

	rc = get(s, &r, repo_path(s, "/branches/%s", enc), MT_JSON, NULL, JSON_MAX);
	free(enc);
	if (rc < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 409) {
		rc = resolve_empty_or_missing(s, branch);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = parse_body(s, &r, &root)) < 0)
		goto cleanup;
	json_t *commit = json_object_get(root, "commit");
	if (!json_sha(commit, "sha", h.commit) ||
	    !json_sha(json_object_get(json_object_get(commit, "commit"), "tree"), "sha", h.tree)) {
		rc = malformed(endpoint(s, r.url), "the branch lacks its commit or tree sha");
		goto cleanup;
	}
	/* The head commit as `projsync log` shows it, at no extra cost. */
	ps_commit_free(s->branch_head);
	s->branch_head = ps_calloc(1, sizeof(*s->branch_head));
	if (ps_github_commit_parse(s->branch_head, commit, endpoint(s, r.url)) < 0) {
		free(s->branch_head);
		s->branch_head = NULL;
		ps_error_clear();
	}
done:
	*out = h;
	rc = 0;
cleanup:
	json_decref(root);
	req_dispose(&r);
	return rc;
}

/* One request for the branch (GET branches/{b}), not every page of the list. */
static int gh_check_branch(struct ps_source *src, const char *branch)
{
	struct ps_head h;

	return gh_resolve(src, branch, NULL, &h);
}

/* ---- trees ---- */

static int get_tree(struct gh_source *s, const char *sha, bool recursive, struct ps_github_tree *t)
{
	struct gh_req r;
	int rc;

	if (!ps_sha_valid(sha) || strlen(sha) != 40)
		return ps_error_set(PS_EINVAL, NULL, "bad tree id '%s'", sha);
	rc = get(s, &r, repo_path(s, "/git/trees/%s%s", sha, recursive ? "?recursive=1" : ""),
		 MT_JSON, NULL, JSON_MAX);
	if (rc < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 422 || r.status == 409) {
		rc = ps_error_set(PS_ENOTFOUND, NULL, "tree %s not found in github:%s/%s", sha,
				  s->owner, s->repo);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = unexpected(s, &r);
		goto cleanup;
	}
	rc = ps_github_tree_parse(t, r.body.data, r.body.len, endpoint(s, r.url));
	if (rc == 0 && !recursive && t->truncated) {
		ps_github_tree_dispose(t);
		rc = ps_error_set(PS_ETOOBIG, "tree_too_big",
				  "GitHub truncates tree %s even when read alone", sha);
	}
	for (size_t i = 0; rc == 0 && i < t->n; i++)
		if (t->v[i].size > s->max_blob_seen)
			s->max_blob_seen = t->v[i].size;
cleanup:
	req_dispose(&r);
	return rc;
}

static int gh_read_tree(struct ps_source *src, const char *tree_sha, struct ps_tree *out)
{
	struct gh_source *s = (struct gh_source *)src;
	struct ps_github_tree t = {0};
	struct ps_tree pt = {0};
	int rc;

	if ((rc = get_tree(s, tree_sha, false, &t)) < 0)
		return rc;
	pt.entries = ps_calloc(t.n + 1, sizeof(*pt.entries));
	for (size_t i = 0; i < t.n; i++) {
		if (strchr(t.v[i].path, '/')) {
			ps_tree_dispose(&pt);
			ps_github_tree_dispose(&t);
			return malformed(tree_sha, "a non-recursive tree lists a nested path");
		}
		pt.entries[i].name = t.v[i].path;
		t.v[i].path = NULL;
		pt.entries[i].mode = t.v[i].mode;
		memcpy(pt.entries[i].sha, t.v[i].sha, PS_SHA_HEX);
		pt.entries[i].size = t.v[i].size;
		pt.n++;
	}
	ps_github_tree_dispose(&t);
	*out = pt;
	return 0;
}

struct file_list {
	struct ps_file *v;
	size_t n, cap;
};

static int file_push(struct file_list *l, const char *prefix, const struct ps_github_tree_entry *e)
{
	if (l->n >= TREE_FILES_MAX)
		return ps_error_set(PS_ETOOBIG, "tree_too_big", "more than %zu files in one tree",
				    TREE_FILES_MAX);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	struct ps_file *f = &l->v[l->n++];
	f->path = ps_asprintf("%s%s", prefix, e->path);
	f->mode = e->mode;
	memcpy(f->sha, e->sha, PS_SHA_HEX);
	f->size = e->type == 'b' ? e->size : -1;
	return 0;
}

static void file_list_dispose(struct file_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Every blob and submodule below `sha`, paths prefixed. One recursive request when GitHub can
 * list it all; when it truncates, the tree alone and then each subtree the same way, as GitHub's
 * documentation advises.
 */
static int collect_tree(struct gh_source *s, const char *sha, const char *prefix, int depth,
			struct file_list *l)
{
	struct ps_github_tree t = {0};
	int rc;

	if (depth > TREE_DEPTH_MAX)
		return ps_error_set(PS_ETOOBIG, "tree_too_big", "trees nest deeper than %d levels",
				    TREE_DEPTH_MAX);
	if ((rc = get_tree(s, sha, true, &t)) < 0)
		return rc;
	if (!t.truncated) {
		for (size_t i = 0; rc == 0 && i < t.n; i++)
			if (t.v[i].type != 't')
				rc = file_push(l, prefix, &t.v[i]);
		ps_github_tree_dispose(&t);
		return rc;
	}
	ps_github_tree_dispose(&t);
	if ((rc = get_tree(s, sha, false, &t)) < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < t.n; i++) {
		if (t.v[i].type != 't') {
			rc = file_push(l, prefix, &t.v[i]);
		} else {
			char *sub = ps_asprintf("%s%s/", prefix, t.v[i].path);
			rc = collect_tree(s, t.v[i].sha, sub, depth + 1, l);
			free(sub);
		}
	}
	ps_github_tree_dispose(&t);
	return rc;
}

static int cmp_file_path(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

static int gh_list_tree(struct ps_source *src, const char *tree_sha, struct ps_file **out,
			size_t *n)
{
	struct gh_source *s = (struct gh_source *)src;
	struct file_list l = {0};
	int rc = 0;

	if (s->have_listing && strcmp(s->listing.sha, tree_sha) == 0) {
		for (size_t i = 0; rc == 0 && i < s->listing.n; i++)
			if (s->listing.v[i].type != 't')
				rc = file_push(&l, "", &s->listing.v[i]);
	} else if (s->big_tree) {
		/* A re-sync of a tree GitHub cannot list at once: walking only the subtrees that
		 * changed costs less than listing every one of them. */
		return ps_error_set(PS_ENOTSUPP, NULL, "tree too big to list on a re-sync");
	} else {
		rc = collect_tree(s, tree_sha, "", 0, &l);
	}
	if (rc < 0) {
		file_list_dispose(&l);
		return rc;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_file_path);
	*out = l.v;
	*n = l.n;
	return 0;
}

/* ---- changes (the compare) ---- */

struct dir_cache {
	char **paths;             /* "" for the root, "a/b" below */
	struct ps_github_tree *trees;
	size_t n;
};

static void dir_cache_dispose(struct dir_cache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
		ps_github_tree_dispose(&c->trees[i]);
	}
	free(c->paths);
	free(c->trees);
}

/* The non-recursive listing of directory `dir` of the tree `root`, read once. */
static int dir_listing(struct gh_source *s, struct dir_cache *c, const char *root, const char *dir,
		       const struct ps_github_tree **out)
{
	const struct ps_github_tree *parent;
	const char *slash, *name;
	char sha[PS_SHA_HEX];
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->paths[i], dir) == 0) {
			*out = &c->trees[i];
			return 0;
		}
	}
	if (!*dir) {
		memcpy(sha, root, PS_SHA_HEX);
	} else {
		char *pdir;
		slash = strrchr(dir, '/');
		pdir = slash ? ps_strndup(dir, (size_t)(slash - dir)) : ps_strdup("");
		name = slash ? slash + 1 : dir;
		rc = dir_listing(s, c, root, pdir, &parent);
		free(pdir);
		if (rc < 0)
			return rc;
		size_t i;
		for (i = 0; i < parent->n; i++)
			if (parent->v[i].type == 't' && strcmp(parent->v[i].path, name) == 0)
				break;
		if (i == parent->n)
			return ps_error_set(PS_ENOTSUPP, NULL, "directory %s is not in the head tree",
					    dir);
		memcpy(sha, parent->v[i].sha, PS_SHA_HEX);
	}
	c->paths = ps_realloc(c->paths, (c->n + 1) * sizeof(*c->paths));
	c->trees = ps_realloc(c->trees, (c->n + 1) * sizeof(*c->trees));
	memset(&c->trees[c->n], 0, sizeof(c->trees[c->n]));
	if ((rc = get_tree(s, sha, false, &c->trees[c->n])) < 0)
		return rc;
	c->paths[c->n] = ps_strdup(dir);
	*out = &c->trees[c->n++];
	return 0;
}

/* The head's entries for the paths the compare names as present, sorted by path. */
static int head_entries(struct gh_source *s, const char *tree, const struct ps_github_compare *c,
			struct file_list *l)
{
	bool nested = false, any = false;
	struct dir_cache dc = {0};
	int rc = 0;

	for (size_t i = 0; i < c->nfiles; i++) {
		if (c->files[i].status == PS_GH_REMOVED || c->files[i].status == PS_GH_UNCHANGED)
			continue;
		any = true;
		nested |= strchr(c->files[i].filename, '/') != NULL;
	}
	if (!any)
		return 0;
	if (nested && !s->big_tree) {
		/* One recursive tree names every mode at once, unless GitHub truncates it. */
		struct ps_github_tree t = {0};
		if ((rc = get_tree(s, tree, true, &t)) < 0)
			return rc;
		if (!t.truncated) {
			for (size_t i = 0; rc == 0 && i < t.n; i++)
				if (t.v[i].type != 't')
					rc = file_push(l, "", &t.v[i]);
			ps_github_tree_dispose(&t);
			goto sort;
		}
		ps_github_tree_dispose(&t);
	}
	/* Too big for one answer (or only top-level paths): the directories on the way only. */
	for (size_t i = 0; rc == 0 && i < c->nfiles; i++) {
		const struct ps_github_compare_file *f = &c->files[i];
		const struct ps_github_tree *dir;
		const char *slash = strrchr(f->filename, '/');
		char *dpath;

		if (f->status == PS_GH_REMOVED || f->status == PS_GH_UNCHANGED)
			continue;
		dpath = slash ? ps_strndup(f->filename, (size_t)(slash - f->filename)) : ps_strdup("");
		rc = dir_listing(s, &dc, tree, dpath, &dir);
		free(dpath);
		if (rc < 0)
			break;
		const char *leaf = slash ? slash + 1 : f->filename;
		for (size_t j = 0; j < dir->n; j++) {
			if (dir->v[j].type != 't' && strcmp(dir->v[j].path, leaf) == 0) {
				struct ps_github_tree_entry e = dir->v[j];
				e.path = f->filename;
				rc = file_push(l, "", &e);
				break;
			}
		}
	}
	dir_cache_dispose(&dc);
sort:
	if (rc == 0 && l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_file_path);
	/* Paths named twice (a rename's target also listed): keep one. */
	if (rc == 0 && l->n > 1) {
		size_t w = 1;
		for (size_t i = 1; i < l->n; i++) {
			if (strcmp(l->v[i].path, l->v[w - 1].path) == 0) {
				free(l->v[i].path);
				continue;
			}
			l->v[w++] = l->v[i];
		}
		l->n = w;
	}
	return rc;
}

static int gh_changes(struct ps_source *src, const char *base_commit, const struct ps_head *head,
		      struct ps_change **out, size_t *n)
{
	struct gh_source *s = (struct gh_source *)src;
	struct file_list l = {0};
	int rc;

	if (!head->tree[0] || !ps_sha_valid(base_commit) || strlen(base_commit) != 40)
		return ps_error_set(PS_ENOTSUPP, NULL, "no compare without both commits");
	/* The listing read by resolve is exact and costs nothing more: let the pipeline use it
	 * (list_tree) rather than pay for a compare. */
	if (s->have_listing && strcmp(s->listing.sha, head->tree) == 0)
		return ps_error_set(PS_ENOTSUPP, NULL, "the head's listing is at hand");
	if ((rc = fetch_compare(s, base_commit, head->commit)) < 0)
		return rc;
	if (rc == 0 || !ps_github_compare_usable(&s->cmp))
		return ps_error_set(PS_ENOTSUPP, NULL, "not a fast-forward below %d files",
				    COMPARE_FILES_MAX);
	if (strcmp(s->cmp.status, "identical") == 0) {
		*out = NULL;
		*n = 0;
		return 0;
	}
	/* The head commit must be the one compared (not a page of a longer history). */
	if (strcmp(s->cmp.head_commit, head->commit) != 0)
		return ps_error_set(PS_ENOTSUPP, NULL, "compare does not end at the head");
	if ((rc = head_entries(s, head->tree, &s->cmp, &l)) < 0) {
		file_list_dispose(&l);
		return rc;
	}
	rc = ps_github_compare_changes(&s->cmp, l.v, l.n, out, n);
	file_list_dispose(&l);
	return rc;
}

/* ---- commits (`projsync log`; parsing in github_commits.c) ---- */

/* GET git/commits/{sha}: the smallest answer that holds one commit. */
static int get_git_commit(struct gh_source *s, const char *sha, struct ps_commit *out)
{
	struct gh_req r;
	json_t *root = NULL;
	int rc;

	if ((rc = get(s, &r, repo_path(s, "/git/commits/%s", sha), MT_JSON, NULL, JSON_MAX)) < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 422) {
		rc = ps_error_set(PS_ENOTFOUND, NULL, "GitHub has no commit %s", sha);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = parse_body(s, &r, &root)) < 0)
		goto cleanup;
	rc = ps_github_commit_parse(out, root, endpoint(s, r.url));
cleanup:
	json_decref(root);
	req_dispose(&r);
	return rc;
}

/* The head commit: from branches/{b} when a first sync read it, else one request. */
static int head_commit(struct gh_source *s, const char *head, struct ps_commit *out)
{
	if (s->branch_head && strcmp(s->branch_head->sha, head) == 0) {
		struct ps_commit *c = ps_commit_clone(s->branch_head);
		*out = *c;
		free(c);
		return 0;
	}
	return get_git_commit(s, head, out);
}

/*
 * A first sync: the head commit, free after branches/{b}. Later syncs: the compare's commits
 * (up to 250, the newest); the compare is the one `changes` fetched if it did, else one request
 * on a moved head (an unchanged head never gets here). GitHub cannot compare with a base it
 * lost (a force-push, then a gc) or one without a common ancestor: the head alone, truncated.
 */
static int gh_commits(struct ps_source *src, const char *base, const char *head, size_t max,
		      struct ps_commit_list *out)
{
	struct gh_source *s = (struct gh_source *)src;
	const struct ps_commit_list *cc = &s->cmp_commits;
	int rc;

	memset(out, 0, sizeof(*out));
	out->total = -1;
	if (!ps_sha_valid(head) || strlen(head) != 40)
		return ps_error_set(PS_EINVAL, NULL, "bad commit id '%s'", head);
	if (base && (rc = fetch_compare(s, base, head)) < 0)
		return rc;
	if (!base || rc == 0 || !s->cmp_commits_ok) {
		out->v = ps_calloc(1, sizeof(*out->v));
		if ((rc = head_commit(s, head, &out->v[0])) < 0) {
			ps_commit_list_dispose(out);
			return rc;
		}
		out->n = 1;
		out->truncated = base != NULL;
		return 0;
	}
	out->total = cc->total >= 0 ? cc->total : (int64_t)cc->n;
	out->v = ps_calloc(cc->n + 1, sizeof(*out->v));
	if (cc->n > 0 && strcmp(cc->v[0].sha, head) != 0) {
		/* A page of the oldest commits: the head comes first all the same. */
		if ((rc = head_commit(s, head, &out->v[0])) < 0) {
			ps_commit_list_dispose(out);
			return rc;
		}
		out->n = 1;
	}
	for (size_t i = 0; i < cc->n && out->n < max; i++) {
		struct ps_commit *c = ps_commit_clone(&cc->v[i]);
		out->v[out->n++] = *c;
		free(c);
	}
	out->truncated = cc->truncated || out->total > (int64_t)out->n;
	return 0;
}

/* ---- blobs ---- */

static int64_t blob_cap(const struct gh_source *s)
{
	int64_t cap = s->max_blob_seen > BLOB_CAP_MIN ? s->max_blob_seen : 64 * BLOB_CAP_MIN;

	return cap > BLOB_CAP_MAX ? BLOB_CAP_MAX : cap;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes base64 with line breaks (GitHub's 60-column blobs) in place; -1 when malformed. */
static ssize_t b64_decode(char *s, size_t len)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;
		if (c == '\n' || c == '\r' || c == ' ')
			continue;
		if (c == '=')
			break;
		if ((v = b64_value(c)) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (ssize_t)o;
}

struct blob_run {
	struct gh_source *s;
	struct fetch_session *fs;
	ps_blob_cb cb;
	void *ud;
	size_t *delivered;
};

static void mark_delivered(struct fetch_session *fs, size_t i)
{
	if (!fs->delivered[i]) {
		fs->delivered[i] = true;
		fs->ndone++;
	}
}

static int on_blob(void *ud, struct gh_req *r)
{
	struct blob_run *br = ud;
	const char *want = br->fs->want[r->index];
	char sha[PS_SHA_HEX];
	const char *data = r->body.data ? r->body.data : "";
	size_t len = r->body.len;
	int rc;

	if (r->status == 404 || r->status == 422)
		return ps_error_set(PS_ENOTFOUND, "blob_not_found",
				    "blob %s not found in github:%s/%s", want, br->s->owner,
				    br->s->repo);
	if (r->status != 200)
		return unexpected(br->s, r);
	ps_git_blob_sha(data, len, sha);
	if (strcmp(sha, want) != 0 && strstr(r->content_type, "json")) {
		/* Not the raw media type after all: the JSON form with base64 content. */
		json_t *root = json_loadb(data, len, 0, NULL);
		const char *content = json_string_value(json_object_get(root, "content"));
		if (content) {
			size_t clen = strlen(content);
			char *copy = ps_strndup(content, clen);
			ssize_t dl = b64_decode(copy, clen);
			if (dl >= 0) {
				ps_git_blob_sha(copy, (size_t)dl, sha);
				if (strcmp(sha, want) == 0) {
					json_decref(root);
					rc = br->cb(br->ud, want, copy, (size_t)dl);
					free(copy);
					if (rc == 0) {
						mark_delivered(br->fs, r->index);
						(*br->delivered)++;
					}
					return rc;
				}
			}
			free(copy);
		}
		json_decref(root);
	}
	if (strcmp(sha, want) != 0)
		return ps_error_set(PS_EUPSTREAM, "blob_mismatch",
				    "blob %s from GitHub failed verification (content hashes to %s)",
				    want, sha);
	if ((rc = br->cb(br->ud, want, data, len)) != 0)
		return rc;
	mark_delivered(br->fs, r->index);
	(*br->delivered)++;
	/* The content is handed over: free it now rather than when the batch ends. */
	ps_buf_dispose(&r->body);
	ps_buf_init(&r->body, r->max_body);
	return 0;
}

/* Fetches up to `max` undelivered blobs of the session as raw blobs, in parallel. */
static int blobs_next(struct gh_source *s, struct fetch_session *fs, size_t max, ps_blob_cb cb,
		      void *ud, size_t *delivered)
{
	struct gh_req *reqs, **ptrs;
	struct blob_run br = { s, fs, cb, ud, delivered };
	size_t k = 0;
	int rc;

	reqs = ps_calloc(max + 1, sizeof(*reqs));
	ptrs = ps_calloc(max + 1, sizeof(*ptrs));
	for (; fs->blob_pos < fs->n && k < max; fs->blob_pos++) {
		if (fs->delivered[fs->blob_pos])
			continue;
		/* Asked raw, a blob may still come in its JSON form, a third larger and more. */
		req_init(&reqs[k], s, repo_path(s, "/git/blobs/%s", fs->want[fs->blob_pos]), MT_RAW,
			 (size_t)ps_github_blob_answer_max(blob_cap(s)));
		reqs[k].index = fs->blob_pos;
		ptrs[k] = &reqs[k];
		k++;
	}
	rc = k ? run_requests(s, ptrs, k, (size_t)s->concurrency, on_blob, &br) : 0;
	for (size_t i = 0; i < k; i++)
		req_dispose(&reqs[i]);
	free(reqs);
	free(ptrs);
	return rc;
}

/* ---- the tarball ---- */

static void tar_close(struct gh_source *s, struct fetch_session *fs)
{
	struct tar_stream *ts = fs->ts;

	if (!ts)
		return;
	if (ts->a)
		archive_read_free(ts->a);
	req_dispose(&ts->req);
	ps_buf_dispose(&ts->pending);
	ps_buf_dispose(&ts->handed);
	free(ts);
	fs->ts = NULL;
}

/* Drives the transfer until bytes are buffered or it ended. */
static void tar_pump(struct gh_source *s, struct tar_stream *ts)
{
	while (ts->pending.len == 0 && !ts->transfer_done) {
		int running = 0, left;
		CURLMsg *m;

		if (ts->paused) {
			ts->paused = false;
			curl_easy_pause(ts->req.easy, CURLPAUSE_CONT);
			if (ts->pending.len)
				break;
		}
		curl_multi_perform(s->multi, &running);
		while ((m = curl_multi_info_read(s->multi, &left))) {
			if (m->msg == CURLMSG_DONE && m->easy_handle == ts->req.easy) {
				req_finish(s, &ts->req, m->data.result);
				ts->transfer_done = true;
			}
		}
		if (ts->pending.len == 0 && !ts->transfer_done)
			curl_multi_poll(s->multi, NULL, 0, 100, NULL);
	}
}

static la_ssize_t tar_read(struct archive *a, void *ud, const void **buf)
{
	struct tar_stream *ts = ud;
	struct ps_buf tmp;

	tar_pump(ts->req.src, ts);
	if (ts->pending.len == 0) {
		if (ts->req.cc == CURLE_OK && ts->req.status == 200)
			return 0;
		archive_set_error(a, EIO, "download of the tarball failed");
		return -1;
	}
	tmp = ts->handed;
	ts->handed = ts->pending;
	ts->pending = tmp;
	ts->pending.len = 0;
	*buf = ts->handed.data;
	return (la_ssize_t)ts->handed.len;
}

static int tar_open(struct gh_source *s, struct fetch_session *fs)
{
	struct tar_stream *ts = ps_calloc(1, sizeof(*ts));
	int rc;

	fs->ts = ts;
	req_init(&ts->req, s, repo_path(s, "/tarball/%s", fs->commit), MT_JSON, ERROR_BODY_MAX);
	ts->req.stream = ts;
	ts->req.attempts = fs->tar_attempts;
	ts->req.rate_waits = fs->tar_rate_waits;
	ps_buf_init(&ts->pending, STREAM_PAUSE + ((size_t)64 << 20));
	ps_buf_init(&ts->handed, STREAM_PAUSE + ((size_t)64 << 20));
	if ((rc = req_start(s, &ts->req)) < 0)
		return rc;
	ts->a = archive_read_new();
	archive_read_support_filter_gzip(ts->a);
	archive_read_support_filter_none(ts->a);
	archive_read_support_format_tar(ts->a);
	if (archive_read_open(ts->a, ts, NULL, tar_read, NULL) != ARCHIVE_OK)
		return 1; /* the caller looks at the transfer */
	ts->opened = true;
	return 0;
}

/*
 * The tarball could not be read further: decides between another attempt (after a delay),
 * the blob requests instead, or failing.
 */
static int tar_failed(struct gh_source *s, struct fetch_session *fs)
{
	struct tar_stream *ts = fs->ts;
	char why[256];
	int64_t delay = 0;
	int act;

	snprintf(why, sizeof(why), "%s",
		 ts->a && archive_error_string(ts->a) ? archive_error_string(ts->a) : "unreadable");
	if (!ts->transfer_done) {
		/* libarchive gave up while bytes still flow: a corrupt archive. */
		curl_multi_remove_handle(s->multi, ts->req.easy);
		req_finish(s, &ts->req, CURLE_RECV_ERROR);
		ts->req.cc = CURLE_PARTIAL_FILE;
	}
	act = classify(s, &ts->req, &delay);
	if (act == ACT_DONE) {
		if (ts->req.status == 200) {
			/* Complete as far as HTTP is concerned, yet unreadable: truncated. */
			if (ts->req.attempts >= s->retries) {
				act = ps_error_set(PS_EUPSTREAM, "upstream_error",
						   "GitHub's tarball of %s is unreadable after %d "
						   "attempts: %s", fs->commit, ts->req.attempts + 1,
						   why);
			} else {
				delay = retry_delay(s, ts->req.attempts);
				ts->req.attempts++;
				act = ACT_RETRY;
			}
		} else {
			/* No tarball for us (404, 403 without a rate limit...): ask blob by blob. */
			warn(s, "GitHub answered %ld for the tarball of %s; fetching %zu blobs one "
			     "by one", ts->req.status, fs->commit, fs->n - fs->ndone);
			fs->tarball = false;
			tar_close(s, fs);
			return 0;
		}
	}
	fs->tar_attempts = ts->req.attempts;
	fs->tar_rate_waits = ts->req.rate_waits;
	tar_close(s, fs);
	if (act < 0)
		return act;
	sleep_ms(delay);
	return 0;
}

static int want_index(const struct fetch_session *fs, const char *sha)
{
	size_t lo = 0, hi = fs->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(fs->want[mid], sha);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Reads tarball entries until `max` wanted blobs were handed over or the archive ends. */
static int tar_next(struct gh_source *s, struct fetch_session *fs, size_t max, ps_blob_cb cb,
		    void *ud, size_t *delivered)
{
	struct ps_buf content;
	int rc = 0;

	ps_buf_init(&content, (size_t)blob_cap(s));
	while (fs->tarball && *delivered < max && fs->ndone < fs->n) {
		struct archive_entry *e;
		int ar;

		if (!fs->ts) {
			if ((rc = tar_open(s, fs)) < 0)
				break;
			if (rc == 1) {
				rc = tar_failed(s, fs);
				if (rc < 0)
					break;
				continue;
			}
		}
		ar = archive_read_next_header(fs->ts->a, &e);
		if (ar == ARCHIVE_EOF) {
			tar_close(s, fs);
			fs->tarball = false;
			if (fs->ndone < fs->n)
				warn(s, "%zu blob(s) were not in GitHub's tarball as stored "
				     "(export-ignore, export-subst or LFS); fetching them one by one",
				     fs->n - fs->ndone);
			break;
		}
		if (ar < ARCHIVE_WARN) {
			if ((rc = tar_failed(s, fs)) < 0)
				break;
			continue;
		}
		char sha[PS_SHA_HEX];
		int idx;
		if (archive_entry_filetype(e) == AE_IFLNK) {
			const char *target = archive_entry_symlink(e);
			if (!target)
				continue;
			ps_git_blob_sha(target, strlen(target), sha);
			if ((idx = want_index(fs, sha)) < 0 || fs->delivered[idx])
				continue;
			if ((rc = cb(ud, fs->want[idx], target, strlen(target))) != 0)
				break;
		} else if (archive_entry_filetype(e) == AE_IFREG) {
			la_int64_t size = archive_entry_size(e);
			bool failed = false;
			if (size < 0 || size > blob_cap(s))
				continue; /* not one we can want: skipped as the next header is read */
			content.len = 0;
			for (;;) {
				char chunk[65536];
				la_ssize_t got = archive_read_data(fs->ts->a, chunk, sizeof(chunk));
				if (got == 0)
					break;
				if (got < 0 || ps_buf_append(&content, chunk, (size_t)got) < 0) {
					failed = true;
					break;
				}
			}
			if (failed) {
				ps_error_clear();
				if ((rc = tar_failed(s, fs)) < 0)
					break;
				continue;
			}
			ps_git_blob_sha(content.data ? content.data : "", content.len, sha);
			if ((idx = want_index(fs, sha)) < 0 || fs->delivered[idx])
				continue;
			if ((rc = cb(ud, fs->want[idx], content.data ? content.data : "",
				     content.len)) != 0)
				break;
		} else {
			continue;
		}
		mark_delivered(fs, (size_t)idx);
		(*delivered)++;
	}
	ps_buf_dispose(&content);
	return rc;
}

/* ---- the fetch session ---- */

static void gh_fetch_end(struct ps_source *src)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *fs = s->fs;

	if (!fs)
		return;
	tar_close(s, fs);
	free(fs->want);
	free(fs->delivered);
	free(fs);
	s->fs = NULL;
}

static int cmp_sha(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static int gh_fetch_begin(struct ps_source *src, const struct ps_head *head,
			  const char *const *shas, size_t n)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *fs;
	size_t w = 0;

	gh_fetch_end(src);
	fs = ps_calloc(1, sizeof(*fs));
	fs->want = ps_calloc(n + 1, sizeof(*fs->want));
	for (size_t i = 0; i < n; i++) {
		if (!ps_sha_valid(shas[i]) || strlen(shas[i]) != 40) {
			free(fs->want);
			free(fs);
			return ps_error_set(PS_EINVAL, NULL, "bad blob id '%s'", shas[i]);
		}
		memcpy(fs->want[i], shas[i], PS_SHA_HEX);
	}
	if (n > 1)
		qsort(fs->want, n, sizeof(*fs->want), cmp_sha);
	for (size_t i = 0; i < n; i++)
		if (w == 0 || strcmp(fs->want[w - 1], fs->want[i]) != 0)
			memmove(fs->want[w++], fs->want[i], PS_SHA_HEX);
	fs->n = w;
	fs->delivered = ps_calloc(w + 1, sizeof(bool));
	if (head && ps_sha_valid(head->commit) && strlen(head->commit) == 40) {
		memcpy(fs->commit, head->commit, PS_SHA_HEX);
		fs->tarball = w >= s->tarball_min;
	}
	s->fs = fs;
	return 0;
}

static int gh_fetch_next(struct ps_source *src, size_t max, ps_blob_cb cb, void *ud, bool *done)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *fs = s->fs;
	size_t delivered = 0;
	int rc = 0;

	if (!fs)
		return ps_error_set(PS_EINVAL, NULL, "no fetch session");
	if (max == 0)
		max = 1;
	if (fs->tarball)
		rc = tar_next(s, fs, max, cb, ud, &delivered);
	if (rc == 0 && !fs->tarball && delivered < max && fs->ndone < fs->n)
		rc = blobs_next(s, fs, max - delivered, cb, ud, &delivered);
	if (rc == 0 && !fs->tarball && fs->blob_pos >= fs->n && fs->ndone < fs->n)
		return ps_error_set(PS_EUPSTREAM, "blobs_missing",
				    "GitHub did not deliver %zu blob(s)", fs->n - fs->ndone);
	*done = fs->ndone >= fs->n;
	return rc;
}

static int gh_fetch_blobs(struct ps_source *src, const char *const *shas, size_t n, ps_blob_cb cb,
			  void *ud)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *saved = s->fs, *fs;
	size_t delivered = 0;
	int rc;

	/* A session of its own, by blob requests, leaving a running session alone. */
	s->fs = NULL;
	if ((rc = gh_fetch_begin(src, NULL, shas, n)) == 0) {
		fs = s->fs;
		while (rc == 0 && fs->ndone < fs->n && fs->blob_pos < fs->n)
			rc = blobs_next(s, fs, 64, cb, ud, &delivered);
		if (rc == 0 && fs->ndone < fs->n)
			rc = ps_error_set(PS_EUPSTREAM, "blobs_missing",
					  "GitHub did not deliver %zu blob(s)", fs->n - fs->ndone);
		gh_fetch_end(src);
	}
	s->fs = saved;
	return rc;
}

/* ---- life ---- */

static void gh_free(struct ps_source *src)
{
	struct gh_source *s = (struct gh_source *)src;

	gh_fetch_end(src);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	ps_github_compare_dispose(&s->cmp);
	ps_commit_list_dispose(&s->cmp_commits);
	ps_commit_free(s->branch_head);
	ps_github_tree_dispose(&s->listing);
	free(s->api);
	free(s->origin);
	free(s->owner);
	free(s->repo);
	free(s->repo_url);
	if (s->auth) {
		/* The token should not linger in freed memory. */
		explicit_bzero(s->auth, strlen(s->auth));
		free(s->auth);
	}
	free(s->default_branch);
	free(s);
}

static const struct ps_source_ops github_ops = {
	.kind = "github",
	.branches = gh_branches,
	.resolve = gh_resolve,
	.read_tree = gh_read_tree,
	.fetch_blobs = gh_fetch_blobs,
	.free = gh_free,
	.changes = gh_changes,
	.list_tree = gh_list_tree,
	.fetch_begin = gh_fetch_begin,
	.fetch_next = gh_fetch_next,
	.fetch_end = gh_fetch_end,
	.check_branch = gh_check_branch,
	.commits = gh_commits,
};

int ps_github_source_open(struct ps_source **out, const char *owner, const char *repo,
			  const struct ps_source_opts *opts)
{
	const char *api = getenv("PROJSYNC_GITHUB_API");
	const char *token = getenv("GITHUB_TOKEN");
	struct gh_source *s;
	size_t len;

	if (!owner || !*owner || !repo || !*repo)
		return ps_error_set(PS_EINVAL, "bad_source", "a GitHub source needs OWNER/REPO");
	pthread_once(&curl_once, curl_setup);
	if (!api || !*api)
		api = DEFAULT_API;
	len = strlen(api);
	while (len > 0 && api[len - 1] == '/')
		len--;
	s = ps_calloc(1, sizeof(*s));
	s->base.ops = &github_ops;
	s->api = ps_strndup(api, len);
	s->origin = url_origin(s->api);
	if (!s->origin || (strncasecmp(s->api, "https://", 8) != 0 &&
			   strncasecmp(s->api, "http://", 7) != 0)) {
		gh_free(&s->base);
		return ps_error_set(PS_EINVAL, "bad_source",
				    "PROJSYNC_GITHUB_API must be an http(s) URL");
	}
	s->owner = ps_strdup(owner);
	s->repo = ps_strdup(repo);
	s->repo_url = ps_asprintf("%s/repos/%s/%s", s->api, owner, repo);
	if (token && *token)
		s->auth = ps_asprintf("Authorization: Bearer %s", token);
	s->concurrency = (int)env_int("PROJSYNC_GITHUB_CONCURRENCY", 8, 1, 100);
	/* PROJSYNC_GITHUB_TIMEOUT_MS, the older and finer knob, wins over the common bound. */
	s->timeout_ms = env_int("PROJSYNC_GITHUB_TIMEOUT_MS", ps_source_net_timeout_ms(), 10,
				3600000);
	s->bounded = opts && opts->bounded;
	s->backoff_ms = env_int("PROJSYNC_GITHUB_BACKOFF_MS", 60000, 0, 3600000);
	s->max_wait_ms = env_int("PROJSYNC_GITHUB_MAX_WAIT", 600, 0, 86400) * 1000;
	s->retries = (int)env_int("PROJSYNC_GITHUB_RETRIES", 4, 0, 20);
	s->tarball_min = (size_t)env_int("PROJSYNC_GITHUB_TARBALL_MIN", 50, 1, INT32_MAX);
	s->multi = curl_multi_init();
	if (!s->multi) {
		gh_free(&s->base);
		return ps_error_set(PS_ENOMEM, NULL, "cannot create an HTTP session");
	}
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->concurrency);
	*out = &s->base;
	return 0;
}

int ps_github_source_check(const char *owner, const char *repo, const struct ps_source_opts *opts)
{
	struct ps_source *src = NULL;
	int rc;

	if ((rc = ps_github_source_open(&src, owner, repo, opts)) < 0)
		return rc;
	/* Someone waits for the answer (an HTTP request, `project add`). */
	((struct gh_source *)src)->bounded = true;
	rc = repo_info((struct gh_source *)src);
	ps_source_free(src);
	return rc;
}
