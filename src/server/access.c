/*
 * Who may do what through the API (docs/api.md, "Access"):
 *
 *   - no token configured: whoever reaches the server (which then listens on loopback only)
 *     may do everything;
 *   - PROJSYNC_API_TOKEN: every /api/v1 call needs it, or
 *   - PROJSYNC_READ_TOKEN: reads only (GET, HEAD, event streams); a write gets 403
 *     "read_only_token";
 *   - a token in `?access_token=` counts on event streams only (a browser's EventSource cannot
 *     send headers); anywhere else it is refused, as URLs end up in logs and histories;
 *   - a local path (or a file: URL) as a project's source only inside `serve --local-root DIR`,
 *     judged on the resolved path, so a symlink or `..` cannot lead out of it.
 *
 * Tokens are compared as SHA-256 digests with CRYPTO_memcmp: both sides have the same length
 * whatever was sent, so neither the content nor the length of a token shows in the timing.
 * Every decision on a token is taken on the headers, before the body is read (check_headers in
 * http.c).
 */
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/json.h"
#include "server/http.h"
#include "source/source.h"

static void digest(const char *s, unsigned char out[PS_ACCESS_DIGEST_LEN])
{
	unsigned int n = 0;

	EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

void ps_access_init(struct ps_server *srv)
{
	srv->has_api_token = srv->cfg.api_token && srv->cfg.api_token[0];
	srv->has_read_token = srv->cfg.read_token && srv->cfg.read_token[0];
	if (srv->has_api_token)
		digest(srv->cfg.api_token, srv->api_digest);
	if (srv->has_read_token)
		digest(srv->cfg.read_token, srv->read_digest);
}

/* The access a presented token gives: both comparisons always run. */
static enum ps_access token_access(struct ps_server *srv, const char *token)
{
	unsigned char d[PS_ACCESS_DIGEST_LEN];
	bool api, rd;

	digest(token, d);
	api = srv->has_api_token && CRYPTO_memcmp(d, srv->api_digest, sizeof(d)) == 0;
	rd = srv->has_read_token && CRYPTO_memcmp(d, srv->read_digest, sizeof(d)) == 0;
	return api ? PS_ACCESS_WRITE : rd ? PS_ACCESS_READ : PS_ACCESS_NONE;
}

static bool is_read_method(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

bool ps_access_check(struct ps_request *rq)
{
	struct ps_server *srv = rq->srv;
	bool events = rq->route->handler == ps_api_sync_events;
	const char *h, *token;

	if (!srv->has_api_token && !srv->has_read_token) {
		rq->access = PS_ACCESS_WRITE;
		return true;
	}
	if (!rq->route->auth)
		return true; /* the page, /healthz, /metrics, the webhook (its own HMAC) */
	if (!events && ps_http_query(rq, "access_token")) {
		ps_http_error(rq, MHD_HTTP_UNAUTHORIZED, "token_in_query",
			      "?access_token= is accepted on event streams only: send "
			      "'Authorization: Bearer <token>'");
		return false;
	}
	h = ps_http_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
	if (h)
		token = strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
	else
		token = events ? ps_http_query(rq, "access_token") : NULL;
	rq->access = token ? token_access(srv, token) : PS_ACCESS_NONE;
	if (rq->access == PS_ACCESS_NONE) {
		ps_http_error(rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
			      "this server needs 'Authorization: Bearer <token>'");
		return false;
	}
	if (rq->access == PS_ACCESS_READ && !is_read_method(rq->method)) {
		ps_http_error(rq, MHD_HTTP_FORBIDDEN, "read_only_token",
			      "this token may only read (GET, HEAD and event streams): %s needs "
			      "the API token", rq->method);
		return false;
	}
	return true;
}

void ps_api_whoami(struct ps_request *rq)
{
	const char *access = rq->access == PS_ACCESS_READ ? "read" : "write";
	const char *token = !rq->srv->has_api_token && !rq->srv->has_read_token ? "none"
			    : rq->access == PS_ACCESS_READ ? "read" : "api";

	const char *root = rq->srv->cfg.local_root;

	/* The folder lets the Add form say which paths it takes; it is the server's disk, so only
	 * a caller who may add a project (a read token may not) learns it. */
	ps_http_json(rq, MHD_HTTP_OK,
		     json_pack("{s:s, s:s, s:b, s:o}", "access", access, "token", token,
			       "local_paths", root != NULL, "local_root",
			       root && rq->access == PS_ACCESS_WRITE ? ps_json_string(root)
								     : json_null()));
}

/* ---- local paths ---- */

/*
 * The path a file: URL names, as libgit2 reads it (file://[localhost]/PATH, percent-decoded),
 * or NULL when it names none (then it is refused whole: it is still a local form).
 */
static char *file_url_path(const char *url)
{
	const char *p = url + 5;
	char *out;
	size_t n = 0;

	if (strncmp(p, "//", 2) != 0)
		return NULL;
	p += 2;
	if (strncasecmp(p, "localhost", 9) == 0)
		p += 9;
	if (*p != '/')
		return NULL;
	out = ps_malloc(strlen(p) + 1);
	for (; *p; p++) {
		if (*p == '%') {
			int hi = ps_hex_digit(p[1]), lo = hi < 0 ? -1 : ps_hex_digit(p[2]);
			if (lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			out[n++] = (char)(hi << 4 | lo);
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = 0;
	return out;
}

/*
 * Resolves `path` as the kernel would open it: realpath of its longest existing prefix, with the
 * missing rest appended. A missing rest holding `..` cannot be judged before it exists: NULL.
 */
static char *resolve(const char *path)
{
	size_t n = strlen(path);
	char buf[PATH_MAX];

	for (;;) {
		char *prefix = ps_strndup(path, n);
		bool found = realpath(prefix, buf) != NULL;
		int err = errno;
		char *slash = strrchr(prefix, '/');
		size_t cut = slash ? (size_t)(slash - prefix) : 0;

		free(prefix);
		if (found) {
			const char *rest = path + n;
			if (strstr(rest, "/..") || strstr(rest, "../"))
				return NULL;
			if (strcmp(buf, "/") == 0 && rest[0] == '/')
				rest++;
			return ps_asprintf("%s%s", buf, rest);
		}
		if ((err != ENOENT && err != ENOTDIR) || !slash)
			return NULL;
		/* "/missing": the prefix is "/" itself. */
		n = cut ? cut : 1;
	}
}

/* True when `path` (resolved) is `root` (resolved) or below it: /srv/rootx is not in /srv/root. */
static bool inside(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return path[0] == '/';
	return strncmp(path, root, n) == 0 && (path[n] == 0 || path[n] == '/');
}

bool ps_access_source_allowed(struct ps_request *rq, const char *source)
{
	const char *root = rq->srv->cfg.local_root;
	char *path = NULL, *resolved = NULL;
	bool file_url = strncasecmp(source, "file:", 5) == 0, ok = false;

	if (!file_url && !ps_source_is_local_path(source))
		return true;
	if (root) {
		if (file_url)
			path = file_url_path(source);
		else if (source[0] == '/')
			path = ps_strdup(source);
		else
			return true; /* relative: refused by the caller as not absolute */
		resolved = path ? resolve(path) : NULL;
		ok = resolved && inside(resolved, root);
	}
	/* Without a root, this is what a first project added on the page meets (a path is the
	 * first thing one tries): the message says the two ways in. With one, it names the
	 * folder, so the user can tell where to put the repository without asking the admin. */
	if (!ok && root)
		ps_http_error(rq, MHD_HTTP_FORBIDDEN, "local_path_forbidden",
			      "local paths are not allowed through the API outside the server's "
			      "--local-root '%.600s': '%.200s' is not inside it (symlinks and '..' "
			      "resolved)", root, source);
	else if (!ok)
		ps_http_error(rq, MHD_HTTP_FORBIDDEN, "local_path_forbidden",
			      "local paths are not allowed through the API: start 'projsync "
			      "serve' with --local-root DIR to allow the repositories inside DIR, "
			      "or add the project with 'projsync project add' on the server's "
			      "machine");
	free(path);
	free(resolved);
	return ok;
}
