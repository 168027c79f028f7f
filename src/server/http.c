/*
 * The HTTP side of `projsync serve`: libmicrohttpd glue, the route table and router, bearer
 * authentication, request logging, the reply helpers handlers share, and ps_server_run, which
 * wires the daemon, the sync workers and the SSE hub together and takes them down on SIGTERM.
 *
 * libmicrohttpd is used as docs/stack.md says: epoll with a thread pool (select mode drops
 * descriptors past 1024), an explicit connection limit and listen backlog, and the access
 * handler answers only on its second call, because a response queued on the first call forces
 * `Connection: close` and costs keep-alive. Request bodies are read into a bounded buffer; a
 * body over the route's limit gets 413 at once.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "model/json.h"
#include "util/error.h"

/* ---- the route table ---- */

/* Body limits: 1 MiB where a body carries content (a project, a memory note), 4 KiB where it
 * is empty or one field, GitHub's 25 MiB for the webhook. A declared length over the limit is
 * refused on the headers; a chunked body is cut off when it passes it. */
#define SMALL PS_HTTP_MAX_SMALL_BODY

static const struct ps_route routes[] = {
	{ "GET", "/api/v1/projects", ps_api_projects_list, true, SMALL, NULL },
	{ "POST", "/api/v1/projects", ps_api_projects_create, true, 0, NULL },
	{ "GET", "/api/v1/projects/{name}", ps_api_project_get, true, SMALL, NULL },
	{ "DELETE", "/api/v1/projects/{name}", ps_api_project_delete, true, SMALL, NULL },
	{ "PATCH", "/api/v1/projects/{name}", ps_api_project_patch, true, 0, NULL },
	{ "GET", "/api/v1/projects/{name}/branches", ps_api_project_branches, true, SMALL, NULL },
	{ "GET", "/api/v1/projects/{name}/sync", ps_api_project_sync_status, true, SMALL, NULL },
	{ "POST", "/api/v1/projects/{name}/sync", ps_api_project_sync_start, true, SMALL, NULL },
	{ "POST", "/api/v1/projects/{name}/resume", ps_api_project_resume, true, SMALL, NULL },
	{ "GET", "/api/v1/projects/{name}/syncs", ps_api_project_syncs, true, SMALL, NULL },
	{ "GET", "/api/v1/projects/{name}/files", ps_api_project_files, true, SMALL, NULL },
	{ "GET", "/api/v1/projects/{name}/file", ps_api_project_file, true, SMALL, NULL },
	{ "GET", "/api/v1/projects/{name}/search/code", ps_api_project_search_code, true, SMALL, NULL },
	{ "POST", "/api/v1/projects/{name}/verify", ps_api_project_verify, true, SMALL, NULL },
	{ "GET", "/api/v1/syncs/{id}", ps_api_sync_get, true, SMALL, NULL },
	{ "POST", "/api/v1/syncs/{id}/cancel", ps_api_sync_cancel, true, SMALL, NULL },
	{ "GET", "/api/v1/syncs/{id}/changes", ps_api_sync_changes, true, SMALL, NULL },
	{ "GET", "/api/v1/syncs/{id}/commits", ps_api_sync_commits, true, SMALL, NULL },
	{ "GET", "/api/v1/syncs/{id}/diff/{other}", ps_api_sync_diff, true, SMALL, NULL },
	{ "GET", "/api/v1/projects/{name}/memory", ps_api_project_memory, true, SMALL, NULL },
	{ "POST", "/api/v1/projects/{name}/memory", ps_api_project_memory_add, true, 0, NULL },
	{ "GET", "/api/v1/memory/{id}", ps_api_memory_get, true, SMALL, NULL },
	{ "PATCH", "/api/v1/memory/{id}", ps_api_memory_patch, true, 0, NULL },
	{ "DELETE", "/api/v1/memory/{id}", ps_api_memory_delete, true, SMALL, NULL },
	{ "GET", "/api/v1/memory/{id}/history", ps_api_memory_history, true, SMALL, NULL },
	{ "POST", "/api/v1/memory/{id}/restore", ps_api_memory_restore, true, SMALL, NULL },
	{ "GET", "/api/v1/events/project-sync/{id}", ps_api_sync_events, true, SMALL, NULL },
	{ "GET", "/api/v1/whoami", ps_api_whoami, true, SMALL, NULL },
	/* GitHub cannot send our token: the HMAC signature authenticates deliveries. */
	{ "POST", "/api/v1/webhooks/github", ps_api_webhook_github, false,
	  PS_HTTP_MAX_WEBHOOK_BODY, ps_webhook_check_headers },
	{ "GET", "/healthz", ps_api_healthz, false, SMALL, NULL },
	{ "GET", "/metrics", ps_api_metrics, false, SMALL, NULL },
	{ "GET", "/openapi.json", ps_api_openapi, false, SMALL, NULL },
};

const struct ps_route *ps_http_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(*routes);
	return routes;
}

void ps_server_each_route(void (*cb)(void *ud, const char *method, const char *pattern),
			  void *ud)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(*routes); i++)
		cb(ud, routes[i].method, routes[i].pattern);
}

/* Matches `path` against `pattern` segment by segment; fills params on success. */
static bool route_match(const char *pattern, const char *path, char **params, size_t *nparams)
{
	const char *p = pattern, *u = path;
	size_t n = 0;

	while (*p && *u) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t len = strcspn(u, "/");
			if (!pe || len == 0 || n >= PS_HTTP_MAX_PARAMS)
				goto nomatch;
			params[n++] = ps_strndup(u, len);
			p = pe + 1;
			u += len;
			continue;
		}
		if (*p != *u)
			goto nomatch;
		p++;
		u++;
	}
	if (*p || *u)
		goto nomatch;
	*nparams = n;
	return true;
nomatch:
	for (size_t i = 0; i < n; i++) {
		free(params[i]);
		params[i] = NULL;
	}
	return false;
}

/* ---- logging ---- */

void ps_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* log.c writes it in the --log-format, one write per line, with every control character
	 * escaped (no client can end a line and forge the next) and secrets redacted. */
	ps_log_message("info", line);
}

void ps_log_at(const char *level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ps_log_message(level, line);
}

/* ---- per-thread store handles ---- */

static __thread struct ps_store *thread_store;

static struct ps_store *request_store(struct ps_server *srv)
{
	if (thread_store)
		return thread_store;
	if (ps_server_store_open(&thread_store, srv->cfg.db_url) < 0) {
		ps_log_at("error", "cannot open the store for a request thread: %s", ps_error_message());
		thread_store = NULL;
		return NULL;
	}
	pthread_mutex_lock(&srv->stores_mu);
	if (srv->nstores == srv->cap_stores) {
		srv->cap_stores = srv->cap_stores ? srv->cap_stores * 2 : 8;
		srv->stores = ps_realloc(srv->stores, srv->cap_stores * sizeof(*srv->stores));
	}
	srv->stores[srv->nstores++] = thread_store;
	pthread_mutex_unlock(&srv->stores_mu);
	return thread_store;
}

/* ---- request helpers ---- */

const char *ps_http_param(struct ps_request *rq, size_t i)
{
	return i < rq->nparams ? rq->params[i] : "";
}

const char *ps_http_query(struct ps_request *rq, const char *name)
{
	const char *v = NULL;

	/* `?flag` has no value: libmicrohttpd stores NULL, which its plain lookup cannot tell
	 * from an absent argument. */
	if (MHD_lookup_connection_value_n(rq->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
					  NULL) != MHD_YES)
		return NULL;
	return v ? v : "";
}

bool ps_http_query_bool(struct ps_request *rq, const char *name, bool *out)
{
	const char *v = ps_http_query(rq, name);

	*out = false;
	if (!v || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return true;
	if (!v[0] || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = true;
		return true;
	}
	ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
		      "invalid %s '%.50s': give true or false", name, v);
	return false;
}

const char *ps_http_header(struct ps_request *rq, const char *name)
{
	const char *v = NULL;
	size_t n = 0, a = 0;
	struct ps_header_copy *c;

	if (MHD_lookup_connection_value_n(rq->conn, MHD_HEADER_KIND, name, strlen(name), &v, &n) !=
		    MHD_YES ||
	    !v)
		return NULL;
	/* Whitespace around a field value is not part of it (RFC 9110 5.5); libmicrohttpd drops
	 * the leading run only, so `Host: x ` would not be our name and `Last-Event-ID: 3 ` not a
	 * number. Its copy sits in the connection's own buffer: a trimmed one is ours. */
	while (a < n && (v[a] == ' ' || v[a] == '\t'))
		a++;
	while (n > a && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (a == 0 && v[n] == '\0')
		return v;
	c = ps_malloc(sizeof(*c) + n - a + 1);
	memcpy(c->value, v + a, n - a);
	c->value[n - a] = '\0';
	c->next = rq->header_copies;
	rq->header_copies = c;
	return c->value;
}

static void set_response(struct ps_request *rq, unsigned status, struct MHD_Response *r)
{
	if (rq->response)
		MHD_destroy_response(rq->response);
	rq->status = status;
	rq->response = r;
}

void ps_http_add_header(struct ps_request *rq, const char *name, const char *value)
{
	if (rq->response)
		MHD_add_response_header(rq->response, name, value);
}

void ps_http_raw(struct ps_request *rq, unsigned status, const char *content_type, void *data,
		 size_t len, bool take)
{
	struct MHD_Response *r;

	if (take)
		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_COPY);
	set_response(rq, status, r);
	if (content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
}

void ps_http_json(struct ps_request *rq, unsigned status, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t len;

	json_decref(j);
	if (!text)
		text = ps_strdup("null");
	len = strlen(text);
	/* A trailing newline keeps `curl` output readable; JSON parsers ignore it. */
	text = ps_realloc(text, len + 2);
	text[len++] = '\n';
	text[len] = 0;
	ps_http_raw(rq, status, "application/json", text, len, true);
}

void ps_http_error(struct ps_request *rq, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ps_http_json(rq, status, json_pack("{s:{s:s, s:o}}", "error", "code", code,
					   "message", ps_json_string(msg)));
	if (status == MHD_HTTP_UNAUTHORIZED)
		ps_http_add_header(rq, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
}

void ps_http_fail(struct ps_request *rq, int rc)
{
	const char *slug = ps_error_slug();
	const char *msg = ps_error_message();
	unsigned status;

	switch (rc) {
	case PS_EINVAL: status = MHD_HTTP_BAD_REQUEST; break;
	case PS_ENOTFOUND: status = MHD_HTTP_NOT_FOUND; break;
	case PS_ECONFLICT: status = MHD_HTTP_CONFLICT; break;
	case PS_ETOOBIG: status = MHD_HTTP_CONTENT_TOO_LARGE; break;
	case PS_EUPSTREAM: status = MHD_HTTP_BAD_GATEWAY; break;
	case PS_ENOTSUPP: status = MHD_HTTP_NOT_IMPLEMENTED; break;
	case PS_ECANCELLED: status = MHD_HTTP_CONFLICT; break;
	case PS_EEMPTY: status = MHD_HTTP_UNPROCESSABLE_CONTENT; break;
	default: status = MHD_HTTP_INTERNAL_SERVER_ERROR; break;
	}
	/* A store locked by other writers past its busy timeout (CLI syncs, other nodes) is a
	 * moment's congestion, not a fault: the client may try again. */
	bool busy = rc == PS_ESTORE && strcmp(slug, "store_busy") == 0;
	if (busy)
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
	if (!slug[0])
		slug = ps_error_code_name(rc);
	if (!msg[0])
		msg = ps_error_code_name(rc);
	if (status >= 500)
		ps_log_at("error", "%s %s failed: %s", rq->method, rq->url, msg);
	ps_http_error(rq, status, slug, "%s", msg);
	if (busy)
		ps_http_add_header(rq, "Retry-After", "1");
}

/* Deepest nesting of arrays/objects in a JSON text, strings skipped. */
int ps_http_json_depth(const char *s, size_t len)
{
	int depth = 0, max = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return max;
}

json_t *ps_http_body_object(struct ps_request *rq, bool allow_empty)
{
	json_error_t err;
	json_t *j;
	size_t i = 0;

	while (i < rq->body_len && strchr(" \t\r\n", rq->body[i]))
		i++;
	if (i == rq->body_len) {
		if (allow_empty)
			return json_object();
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json", "a JSON object body is required");
		return NULL;
	}
	if (ps_http_json_depth(rq->body, rq->body_len) > PS_HTTP_MAX_JSON_DEPTH) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json",
			      "JSON nested deeper than %d levels", PS_HTTP_MAX_JSON_DEPTH);
		return NULL;
	}
	j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &err);
	if (!j) {
		/* jansson's own text names its flag (JSON_ALLOW_NUL), which means nothing to a
		 * client: say what is wrong, as `memory add --file` does for a NUL byte. */
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json", "invalid JSON at line %d: %s",
			      err.line, json_error_code(&err) == json_error_null_character
			      ? "a string holds \\u0000 (a NUL byte): text takes no NUL bytes"
			      : err.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json", "the body must be a JSON object");
		return NULL;
	}
	return j;
}

bool ps_http_no_fields(struct ps_request *rq)
{
	static const char *const none[] = { NULL };
	json_t *body = ps_http_body_fields(rq, true, none);

	json_decref(body);
	return body != NULL;
}

json_t *ps_http_body_fields(struct ps_request *rq, bool allow_empty, const char *const *known)
{
	json_t *body = ps_http_body_object(rq, allow_empty), *v;
	const char *key;

	if (!body)
		return NULL;
	json_object_foreach(body, key, v) {
		bool ok = false;
		for (size_t i = 0; known[i] && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (!ok) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "unknown_field",
				      "unknown field '%.100s'", key);
			json_decref(body);
			return NULL;
		}
	}
	return body;
}

/* Leading zeros are read as the number ("007" is 7), as every id parser here and in the CLI
 * (ps_cli_parse_id) reads them: no other id shares that number, so nothing is ambiguous. */
bool ps_http_parse_id(struct ps_request *rq, const char *what, const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s && *s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!errno && !*end && v > 0) {
			*out = v;
			return true;
		}
	}
	ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_id", "invalid %s '%s': give a positive "
		      "number", what, s ? s : "");
	return false;
}

struct ps_project *ps_http_project(struct ps_request *rq)
{
	struct ps_project *p = NULL;
	int rc = ps_store_project_get(rq->store, ps_http_param(rq, 0), &p);

	if (rc < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, "project_not_found", "project '%s' not found",
				     ps_http_param(rq, 0));
		ps_http_fail(rq, rc);
		return NULL;
	}
	return p;
}

/* ---- the OpenAPI document ---- */

struct ps_embedded { const char *name; const char *text; size_t len; };
extern const struct ps_embedded ps_server_docs[];

const char *ps_server_openapi(size_t *len)
{
	for (size_t i = 0; ps_server_docs[i].name; i++)
		if (strcmp(ps_server_docs[i].name, "openapi.json") == 0) {
			*len = ps_server_docs[i].len;
			return ps_server_docs[i].text;
		}
	*len = 2;
	return "{}";
}

void ps_api_openapi(struct ps_request *rq)
{
	size_t len;
	const char *doc = ps_server_openapi(&len);

	ps_http_raw(rq, MHD_HTTP_OK, "application/json", (void *)doc, len, false);
}

/* ---- libmicrohttpd callbacks ---- */

/* Finds the route of the request's method and path (rq->route, with its parameters), or the
 * first route of its path when only the method differs (rq->path_route; `allow` then lists
 * the methods the path takes and the result is true), or the web page's. Replies nothing. */
static bool find_route(struct ps_request *rq, char *allow, size_t allow_size)
{
	size_t n;
	const struct ps_route *rt = ps_http_routes(&n);
	bool path_known = false;

	for (size_t i = 0; i < n; i++) {
		char *params[PS_HTTP_MAX_PARAMS] = { 0 };
		size_t np = 0;

		if (!route_match(rt[i].pattern, rq->url, params, &np))
			continue;
		if (strcmp(rt[i].method, rq->method) == 0 ||
		    (strcmp(rq->method, "HEAD") == 0 && strcmp(rt[i].method, "GET") == 0)) {
			for (size_t k = 0; k < rq->nparams; k++)
				free(rq->params[k]);
			memcpy(rq->params, params, sizeof(params));
			rq->nparams = np;
			rq->route = &rt[i];
			return false;
		}
		if (!rq->path_route)
			rq->path_route = &rt[i];
		path_known = true;
		/* HEAD is answered wherever GET is (above), so it is allowed there too. */
		snprintf(allow + strlen(allow), allow_size - strlen(allow), "%s%s%s",
			 allow[0] ? ", " : "", rt[i].method,
			 strcmp(rt[i].method, "GET") == 0 ? ", HEAD" : "");
		for (size_t k = 0; k < np; k++)
			free(params[k]);
	}
	if (!path_known && ps_web_claims(rq->url))
		rq->route = &ps_web_route; /* the web page (web.c), outside the API's table */
	return path_known;
}

static void route(struct ps_request *rq)
{
	char allow[64] = "";

	if (find_route(rq, allow, sizeof(allow))) {
		ps_http_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			      "%s is not allowed on %s", rq->method, rq->url);
		ps_http_add_header(rq, MHD_HTTP_HEADER_ALLOW, allow);
	} else if (!rq->route) {
		ps_http_error(rq, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint: %s", rq->url);
	}
}

/* ---- checks on the request line and the headers (before routing and before the body) ---- */

/* True when s[0, len) is a well-formed percent-encoded string: each '%' starts two hex digits,
 * none encodes NUL, and no byte is a control character or a space (which a request target
 * cannot hold). libmicrohttpd leaves a bad escape as it is and decodes %00 into a NUL that
 * ends the string early, so a path would silently become another one. */
static bool target_part_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f)
			return false;
		if (c != '%')
			continue;
		if (i + 2 >= len || ps_hex_digit(s[i + 1]) < 0 || ps_hex_digit(s[i + 2]) < 0 ||
		    (s[i + 1] == '0' && s[i + 2] == '0'))
			return false;
		i += 2;
	}
	return true;
}

/* True when s[0, len) holds no control character or space: what target_part_valid asks except
 * the escapes. */
static bool target_part_plain(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* A web page address (web.c): "/", "/projects", "/projects/...". */
static bool page_path(const char *raw, size_t plen)
{
	return (plen == 1 && raw[0] == '/') || (plen == 9 && strncmp(raw, "/projects", 9) == 0) ||
	       (plen > 9 && strncmp(raw, "/projects/", 10) == 0);
}

static char *decode_path(const char *s, size_t len)
{
	char *out = ps_malloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			out[n++] = (char)(ps_hex_digit(s[i + 1]) << 4 | ps_hex_digit(s[i + 2]));
			i += 2;
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = 0;
	return out;
}

/*
 * The URI log callback: libmicrohttpd calls it with the request target exactly as sent, before
 * it splits off the query and decodes anything, and makes its return value the request's
 * context. The request starts here so the raw target is kept for the checks, the routing and
 * the log. A query with too many arguments is cut here (its first byte set to NUL in
 * libmicrohttpd's own buffer, which it hands over writable): libmicrohttpd 0.9.75 stores every
 * argument in the connection's pool and, when that runs out, queues a 431 it then never
 * sends; the handler answers 400 instead. A target longer than PS_HTTP_MAX_TARGET has its
 * query cut the same way (its arguments alone can fill the pool), and is answered 414.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct ps_request *rq = ps_calloc(1, sizeof(*rq));
	const char *q = NULL;

	rq->srv = cls;
	rq->conn = conn;
	rq->t0 = ps_mono_ms();
	rq->raw_target = ps_strdup(uri ? uri : "");
	rq->raw_target_at = uri;
	if (uri && (q = strchr(uri, '?')) && q[1]) {
		size_t args = 1;
		for (const char *p = q + 1; *p; p++)
			args += *p == '&';
		if (args > PS_HTTP_MAX_QUERY_ARGS) {
			rq->too_many_args = true;
			((char *)q)[1] = 0;
		}
	}
	if (uri && strlen(rq->raw_target) > PS_HTTP_MAX_TARGET) {
		rq->target_too_long = true;
		if (q)
			((char *)q)[1] = 0;
	}
	return rq;
}

struct header_scan {
	const char *lo, *hi;       /* the request head in libmicrohttpd's buffer */
	const char *prev_end;      /* the end of the previous header's value */
	bool bad;
	unsigned n_cl, n_te;
	unsigned n_host, n_auth;
	const char *cl;
	bool cl_differ;
};

/* libmicrohttpd 0.9.75 ends a header value at its first NUL (strlen), so `Bearer <token>\0junk`
 * reads as `Bearer <token>`. Its values point into the request head it received, in order, so
 * what lies between the end of one value and the next header's name is exactly that line's
 * end (CR LF, both overwritten with NUL): anything else there is a value with a NUL in it (or
 * a folded line, which RFC 9112 lets a server refuse). */
static bool gap_is_line_end(const char *from, const char *to, size_t min, size_t max)
{
	if (to < from || (size_t)(to - from) < min || (size_t)(to - from) > max)
		return false;
	for (const char *p = from; p < to; p++)
		if (*p)
			return false;
	return true;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   size_t key_size, const char *value, size_t value_size)
{
	struct header_scan *hs = cls;

	(void)kind;
	if (!value || key < hs->lo || value + value_size >= hs->hi || value < key + key_size ||
	    (hs->prev_end && !gap_is_line_end(hs->prev_end, key, 1, 2))) {
		hs->bad = true;
		return MHD_NO;
	}
	for (const char *p = key + key_size + 1; p < value; p++)
		if (*p != ' ' && *p != '\t') {
			hs->bad = true;
			return MHD_NO;
		}
	hs->prev_end = value + value_size;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (hs->n_cl++ && strcmp(hs->cl, value) != 0)
			hs->cl_differ = true;
		hs->cl = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		hs->n_te++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
		hs->n_host++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
		hs->n_auth++;
	}
	return MHD_YES;
}

/* Refuses what libmicrohttpd lets through on the request line and the headers: a target that
 * is not well-formed, NULs in the target or a header value, too many query arguments,
 * conflicting lengths, transfer codings it cannot read (it would wait for the body forever).
 * Replies and returns false. */
static bool check_protocol(struct ps_request *rq, const char *version)
{
	const union MHD_ConnectionInfo *ci;
	struct header_scan hs = { 0 };
	const char *raw = rq->raw_target, *q = strchr(raw, '?');
	size_t plen = q ? (size_t)(q - raw) : strlen(raw);
	const char *te;
	bool bad_escape, page_as_sent = false;

	/* The target ends where libmicrohttpd put the NUL before the version: a shorter string
	 * means it held a NUL byte of its own. */
	if (version && version[0] && rq->raw_target_at &&
	    rq->raw_target_at + strlen(raw) + 1 != version) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_request", "NUL byte in the request line");
		return false;
	}
	if (rq->target_too_long) {
		ps_http_error(rq, MHD_HTTP_URI_TOO_LONG, "uri_too_long",
			      "the request target is longer than %d bytes", PS_HTTP_MAX_TARGET);
		return false;
	}
	/* A page address with a bad escape (a link cut short, a hand-typed %) is someone's
	 * browser, not an API client: it gets the page, which says Not found itself, not a JSON
	 * 400. Its path is kept as sent, never decoded: the server only matches its prefix. */
	bad_escape = (plen && raw[0] == '/' && !target_part_valid(raw, plen)) ||
		     (q && !target_part_valid(q + 1, strlen(q + 1)));
	if (bad_escape && page_path(raw, plen) && target_part_plain(raw, plen) &&
	    (!q || target_part_plain(q + 1, strlen(q + 1))))
		page_as_sent = true;
	else if (plen == 0 || raw[0] != '/' || !target_part_valid(raw, plen)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_path",
			      "the path is not a valid percent-encoded path (or it encodes NUL)");
		return false;
	}
	if (!page_as_sent && q && !target_part_valid(q + 1, strlen(q + 1))) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_query",
			      "the query is not validly percent-encoded (or it encodes NUL)");
		return false;
	}
	if (rq->too_many_args) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "too_many_arguments",
			      "more than %d query arguments", PS_HTTP_MAX_QUERY_ARGS);
		return false;
	}
	ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (ci && rq->method) {
		hs.lo = rq->method;
		hs.hi = rq->method + ci->header_size;
		MHD_get_connection_values_n(rq->conn, MHD_HEADER_KIND, scan_header, &hs);
		/* The last value is followed by its line end and the empty line. */
		if (!hs.bad && hs.prev_end && !gap_is_line_end(hs.prev_end, hs.hi, 2, 4))
			hs.bad = true;
	}
	if (hs.bad) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_header",
			      "a header holds a NUL byte or is folded over several lines");
		return false;
	}
	/* Only the first of repeated headers is looked at (libmicrohttpd's lookup): with two Host
	 * headers the check of the first let a request through whatever the second named (RFC 9112
	 * §3.2: 400), and of two Authorization headers one decided and the other was ignored. */
	if (hs.n_host > 1 || hs.n_auth > 1) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_header", "more than one %s header",
			      hs.n_host > 1 ? "Host" : "Authorization");
		return false;
	}
	if (hs.cl_differ || (hs.n_cl && hs.n_te)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_length",
			      hs.cl_differ ? "conflicting Content-Length headers"
					   : "both Content-Length and Transfer-Encoding");
		return false;
	}
	/* libmicrohttpd's own view, untrimmed: it reads a chunked body only for exactly
	 * "chunked", and would wait for the end of any other body forever. */
	te = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					 MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te && (hs.n_te > 1 || strcasecmp(te, "chunked") != 0)) {
		ps_http_error(rq, MHD_HTTP_NOT_IMPLEMENTED, "unsupported_transfer_encoding",
			      "only Transfer-Encoding: chunked is supported");
		return false;
	}
	rq->url = page_as_sent ? ps_strndup(raw, plen) : decode_path(raw, plen);
	return true;
}
/* Host part of an authority ("h:p", "[v6]:p"), lowercased, and its port (0 = none). */
static char *authority_host(const char *a, unsigned *port)
{
	const char *end, *colon;
	char *h;

	*port = 0;
	if (a[0] == '[') {
		end = strchr(a, ']');
		if (!end)
			return NULL;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return NULL;
		end++;
	} else {
		colon = strrchr(a, ':');
		end = colon ? colon : a + strlen(a);
	}
	if (colon) {
		char *e;
		unsigned long v = strtoul(colon + 1, &e, 10);
		if (!colon[1] || *e || v == 0 || v > 65535)
			return NULL;
		*port = (unsigned)v;
	}
	h = ps_strndup(a, (size_t)(end - a));
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return h;
}

/* Without a token, a loopback server trusts whoever reaches it, so it must only answer requests
 * meant for it: a page on another site may point its own name at 127.0.0.1 (DNS rebinding) and
 * read or change everything. `Host` must name a loopback address or the listen address, on
 * the bound port, or be --public-url's host. Requests without Host (HTTP/1.0) come from no
 * browser and pass. */
static bool host_allowed(struct ps_request *rq)
{
	const char *h = ps_http_header(rq, MHD_HTTP_HEADER_HOST);
	const char *listen = rq->srv->cfg.host;
	unsigned port;
	char *name;
	bool ok;

	if (rq->srv->cfg.api_token && rq->srv->cfg.api_token[0])
		return true;
	if (!h)
		return true;
	if (rq->srv->public_host && strcasecmp(h, rq->srv->public_host) == 0)
		return true;
	if (!(name = authority_host(h, &port)))
		return false;
	ok = (port == 0 || port == rq->srv->port) &&
	     (strcmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0 ||
	      (listen && (strcasecmp(name, listen) == 0 ||
			  (name[0] == '[' && strlen(name) == strlen(listen) + 2 &&
			   strncasecmp(name + 1, listen, strlen(listen)) == 0))));
	if (!ok && name[0] != '[') {
		/* Any literal of 127.0.0.0/8: a name that resolves there is exactly what a
		 * rebinding page uses, so only literals count. */
		struct in_addr a4;
		ok = (port == 0 || port == rq->srv->port) && inet_pton(AF_INET, name, &a4) == 1 &&
		     (ntohl(a4.s_addr) >> 24) == 127;
	}
	free(name);
	return ok;
}

/* A browser names the page that sent a request in `Origin`. A request that changes something
 * must come from this server's own page: its origin's host is the one the request was sent to
 * (`Host`, checked above when there is no token) or --public-url's. Clients that are not
 * browsers (the CLI, curl, GitHub) send no Origin and pass. */
static bool origin_allowed(struct ps_request *rq)
{
	const char *o = ps_http_header(rq, "Origin");
	const char *h = ps_http_header(rq, MHD_HTTP_HEADER_HOST);
	const char *auth;

	if (!o || strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0 ||
	    strcmp(rq->method, "OPTIONS") == 0)
		return true;
	if (rq->srv->public_origin && strcasecmp(o, rq->srv->public_origin) == 0)
		return true;
	if (strncasecmp(o, "http://", 7) == 0)
		auth = o + 7;
	else if (strncasecmp(o, "https://", 8) == 0)
		auth = o + 8;
	else
		return false; /* "null" (a sandboxed frame, a file) and anything else */
	return h && strcasecmp(auth, h) == 0;
}

/* True when the request says it carries a body. */
static bool has_body(struct ps_request *rq)
{
	const char *cl = ps_http_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return ps_http_header(rq, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
	       (cl && strspn(cl, "0") != strlen(cl));
}

/* A JSON body must say so: a page on another site can send a "simple" cross-origin request
 * (text/plain, a form) without asking first, but not one typed application/json. */
static bool content_type_json(struct ps_request *rq)
{
	const char *ct = ps_http_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n = strlen("application/json");

	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* Everything decided on the request line and the headers, in order, before a byte of the body
 * is read. Replies and returns false to refuse. */
static bool check_headers(struct ps_request *rq, const char *version)
{
	const char *cl;
	size_t held;

	if (!check_protocol(rq, version))
		return false;
	if (!host_allowed(rq)) {
		char allow[64] = "";
		/* Looked up for /metrics only (count_answer): the request line was sound, so
		 * it counts under the route it asked for, as a 405 or a 413 does; "unmatched"
		 * stays for a path no route takes. */
		find_route(rq, allow, sizeof(allow));
		ps_http_error(rq, MHD_HTTP_MISDIRECTED_REQUEST, "wrong_host",
			      "this server does not answer for that Host: give the listen address, "
			      "or start the server with --public-url");
		return false;
	}
	route(rq);
	if (!rq->route)
		return false; /* 404/405 */
	rq->body_max = rq->route->max_body ? rq->route->max_body : PS_HTTP_MAX_BODY;
	if (!origin_allowed(rq)) {
		ps_http_error(rq, MHD_HTTP_FORBIDDEN, "cross_origin",
			      "requests from another site's page are refused");
		return false;
	}
	if (!ps_access_check(rq))
		return false;
	if (rq->route->check_headers) {
		rq->route->check_headers(rq);
		if (rq->response)
			return false;
	}
	cl = ps_http_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && strtoull(cl, NULL, 10) > rq->body_max) {
		rq->body_too_big = true;
		ps_http_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
			      "the request body exceeds %zu bytes", rq->body_max);
		return false;
	}
	/* A declared body the server has no room for (PS_HTTP_MAX_BODIES_TOTAL) is refused now,
	 * with an answer the client can read; one that only grows past it is cut off (on_request).
	 * A body alone always has room: every route's limit is below the total. */
	held = __atomic_load_n(&rq->srv->body_bytes, __ATOMIC_RELAXED);
	if (cl && held && (held >= PS_HTTP_MAX_BODIES_TOTAL ||
			   strtoull(cl, NULL, 10) > PS_HTTP_MAX_BODIES_TOTAL - held)) {
		ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "server_busy",
			      "the server holds as many request bodies as it may: retry");
		ps_http_add_header(rq, MHD_HTTP_HEADER_RETRY_AFTER, "1");
		return false;
	}
	if (!rq->route->check_headers && has_body(rq) && !content_type_json(rq)) {
		ps_http_error(rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
			      "the body must be JSON sent as 'Content-Type: application/json'");
		return false;
	}
	return true;
}

static void dispatch(struct ps_request *rq)
{
	if (rq->srv->stopping && strncmp(rq->url, "/api/", 5) == 0) {
		ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
			      "the server is shutting down");
		return;
	}
	if (!(rq->store = request_store(rq->srv))) {
		ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
			      "the store cannot be opened");
		return;
	}
	ps_error_clear();
	rq->route->handler(rq);
	if (!rq->response && !rq->task)
		ps_http_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "no response");
}

/* The method as a metrics label: any token a client sends would make a new series. */
static const char *method_label(const char *method)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
					     "OPTIONS" };

	for (size_t i = 0; method && i < sizeof(known) / sizeof(*known); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "other";
}

/* Counts an answered request under the route that took it (HEAD counts as the GET it is
 * answered by), a 405 under the path's route and the method refused, the web page as "web",
 * a 421 (wrong Host) under the route its method and path name, and anything not routed (404,
 * refused on its request line) as "unmatched". */
static void count_answer(struct ps_request *rq)
{
	const char *route = "unmatched", *method = method_label(rq->method);

	if (rq->route == &ps_web_route) {
		route = "web";
	} else if (rq->route) {
		route = rq->route->pattern;
		method = rq->route->method;
	} else if (rq->path_route) {
		route = rq->path_route->pattern;
	}
	ps_metrics_http(rq->srv->metrics, route, method, rq->status);
}

static enum MHD_Result queue(struct ps_request *rq)
{
	enum MHD_Result r;

	/* Counted when answered, not when the connection is done with it: a client may
	 * already ask /metrics on another connection before that. */
	count_answer(rq);
	/* Every answer, not only a file's raw bytes: JSON and error bodies quote repository
	 * text (file names, notes, commit messages) and request paths, and a browser that
	 * sniffed one as a page would run it on this origin. */
	if (!MHD_get_response_header(rq->response, "X-Content-Type-Options"))
		MHD_add_response_header(rq->response, "X-Content-Type-Options", "nosniff");
	r = MHD_queue_response(rq->conn, rq->status, rq->response);
	MHD_destroy_response(rq->response);
	rq->response = NULL;
	rq->queued = true;
	return r;
}

/*
 * A body refused while it is being read: one that grows past the route's limit (chunked, or
 * longer than it said), or one the server has no room for (PS_HTTP_MAX_BODIES_TOTAL).
 * libmicrohttpd 0.9.75 accepts a response only before the body or after all of it, and
 * reading on would let a client stream forever; so the answer is written to the socket here
 * (nothing else is being written on it: the request is still being read) and returning
 * MHD_NO makes libmicrohttpd close the connection.
 */
static enum MHD_Result cut_off(struct ps_request *rq, bool busy)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	char body[200], head[320];
	int blen, hlen;

	rq->status = busy ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_CONTENT_TOO_LARGE;
	rq->queued = true;
	count_answer(rq);
	if (busy)
		blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"server_busy\","
				"\"message\":\"the server holds as many request bodies as it may: "
				"retry\"}}\n");
	else
		blen = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"body_too_large\","
				"\"message\":\"the request body exceeds %zu bytes\"}}\n",
				rq->body_max);
	hlen = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nConnection: close\r\n%s"
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			busy ? "503 Service Unavailable" : "413 Content Too Large",
			busy ? "Retry-After: 1\r\n" : "", blen);
	if (ci) {
		(void)!send(ci->connect_fd, head, (size_t)hlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)!send(ci->connect_fd, body, (size_t)blen, MSG_NOSIGNAL | MSG_DONTWAIT);
		shutdown(ci->connect_fd, SHUT_WR);
	}
	return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct ps_request *rq = *con_cls;

	(void)url; /* libmicrohttpd's decoding; rq->url is ours (check_protocol) */
	if (!rq)
		*con_cls = rq = on_uri(cls, NULL, conn);
	if (!rq->started) {
		/* First call: headers only. Every refusal is decided now, before the body; a
		 * request that passes is answered on a later call, as answering now would
		 * cost keep-alive (docs/stack.md #4). */
		rq->started = true;
		rq->method = method;
		if (!check_headers(rq, version))
			return queue(rq);
		return MHD_YES;
	}
	if (rq->queued)
		return MHD_YES;
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->body_len + n > rq->body_max)
			return cut_off(rq, false);
		/* Chunks come a few KiB at a time (the connection's 16 KiB of memory): growing by
		 * each copied the whole body again, minutes of memcpy for a 25 MiB webhook
		 * delivery that anyone may send with a wrong signature. Doubling copies it
		 * about twice in all, and never allocates past the route's limit. */
		if (rq->body_len + n + 1 > rq->body_cap) {
			size_t cap = rq->body_cap ? rq->body_cap : 16 * 1024;
			while (cap < rq->body_len + n + 1)
				cap *= 2;
			if (cap > rq->body_max + 1)
				cap = rq->body_max + 1;
			if (__atomic_add_fetch(&rq->srv->body_bytes, cap - rq->body_cap,
					       __ATOMIC_RELAXED) > PS_HTTP_MAX_BODIES_TOTAL) {
				__atomic_sub_fetch(&rq->srv->body_bytes, cap - rq->body_cap,
						   __ATOMIC_RELAXED);
				return cut_off(rq, true);
			}
			rq->body = ps_realloc(rq->body, cap);
			rq->body_cap = cap;
		}
		memcpy(rq->body + rq->body_len, upload_data, n);
		rq->body_len += n;
		rq->body[rq->body_len] = 0;
		return MHD_YES;
	}
	if (!rq->body)
		rq->body = ps_strdup("");
	if (!rq->response)
		dispatch(rq);
	/* The handler suspended the connection and handed its work to a helper (offload.c):
	 * it is called again once the helper resumes the connection. */
	if (!rq->response)
		return MHD_YES;
	return queue(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct ps_server *srv = cls;
	struct ps_request *rq = *con_cls;

	(void)conn;
	if (!rq)
		return;
	/* The path as sent (still percent-encoded, never decoded into raw bytes), no query:
	 * it may hold a token (?access_token=). ps_log escapes what is left. */
	if (srv->cfg.log_requests && rq->started)
		ps_log("http %s %.*s %u %lldms%s", rq->method, (int)strcspn(rq->raw_target, "?"),
		       rq->raw_target, rq->status, (long long)(ps_mono_ms() - rq->t0),
		       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
	for (size_t i = 0; i < rq->nparams; i++)
		free(rq->params[i]);
	ps_http_offload_release(rq);
	if (rq->response)
		MHD_destroy_response(rq->response);
	while (rq->header_copies) {
		struct ps_header_copy *next = rq->header_copies->next;
		free(rq->header_copies);
		rq->header_copies = next;
	}
	free(rq->body);
	if (rq->body_cap)
		__atomic_sub_fetch(&srv->body_bytes, rq->body_cap, __ATOMIC_RELAXED);
	free(rq->url);
	free(rq->raw_target);
	free(rq);
	*con_cls = NULL;
}

/* ---- running the server ---- */

void ps_server_config_defaults(struct ps_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->host = "127.0.0.1";
	cfg->port = 8420;
	cfg->workers = 2;
	cfg->http_threads = 4;
	cfg->max_connections = 16384;
	cfg->heartbeat_ms = 15000;
	cfg->poll_ms = 0; /* the hub picks: 100 ms (SQLite), 1 s beside LISTEN (PostgreSQL) */
	cfg->lease_ms = 30000;
	cfg->max_failures = 10;
	cfg->prune_interval_ms = 3600 * 1000;
	cfg->schedule_tick_ms = 1000;
	cfg->watcher_queue_max = 256 * 1024;
	cfg->log_requests = true;
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(a))
			return a->s6_addr[12] == 127;
	}
	return false;
}

bool ps_server_host_is_loopback(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	bool all = true;

	if (!host || !host[0])
		return false; /* "" would mean every interface */
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return false;
	for (struct addrinfo *a = res; a; a = a->ai_next)
		all = all && addr_is_loopback(a->ai_addr);
	freeaddrinfo(res);
	return all;
}

static int resolve_listen(const struct ps_server_config *cfg, struct sockaddr_storage *out,
			  bool *v6)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	char port[16];
	int rc;

	snprintf(port, sizeof(port), "%d", cfg->port);
	rc = getaddrinfo(cfg->host && cfg->host[0] ? cfg->host : NULL, port, &hints, &res);
	if (rc != 0 || !res)
		return ps_error_set(PS_EINVAL, "bad_listen", "cannot resolve listen address '%s': %s",
				    cfg->host, gai_strerror(rc));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*v6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

/*
 * Whether the address can be listened on, asked before anything else starts: the workers and
 * the scheduler start before the HTTP daemon binds, and a second server started on a port in
 * use (a restart racing the old process, a unit started twice) claimed queued syncs in that
 * moment and then, failing, cancelled them. Bound as libmicrohttpd binds (SO_REUSEADDR; an
 * IPv6 socket for IPv6 only), then closed; port 0 always binds.
 */
static int probe_listen(const struct ps_server_config *cfg, const struct sockaddr_storage *sa,
			bool v6)
{
	int one = 1, fd, err = 0;
	socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (cfg->port == 0)
		return 0;
	if ((fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0; /* libmicrohttpd will say why */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, len) != 0 || listen(fd, 1) != 0)
		err = errno;
	close(fd);
	if (err == EADDRINUSE || err == EACCES || err == EADDRNOTAVAIL)
		return ps_error_set(PS_EIO, "listen_failed", "cannot listen on %s%s%s:%d: %s",
				    v6 ? "[" : "", cfg->host && cfg->host[0] ? cfg->host
						   : v6 ? "::" : "0.0.0.0",
				    v6 ? "]" : "", cfg->port, strerror(err));
	return 0;
}

/* --public-url http(s)://HOST[:PORT][/...]: its origin and its HOST[:PORT], lowercased. */
static int parse_public_url(const char *url, char **origin, char **host)
{
	const char *a = strncasecmp(url, "http://", 7) == 0 ? url + 7
		      : strncasecmp(url, "https://", 8) == 0 ? url + 8 : NULL;
	size_t n = a ? strcspn(a, "/?#") : 0;
	unsigned port;
	char *h;

	if (!a || n == 0 || memchr(a, '@', n))
		return ps_error_set(PS_EINVAL, "bad_public_url", "invalid --public-url '%s': give "
				    "http(s)://HOST[:PORT]", url);
	*host = ps_strndup(a, n);
	/* A host name is letters, digits and '-._~' (RFC 3986's unreserved characters), or an
	 * IPv6 literal in brackets: 'http://a b' was taken, and then every request naming it,
	 * which no client can send as its Host, answered 421. */
	if ((*host)[strspn(*host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789-._~:[]")] != 0) {
		free(*host);
		*host = NULL;
		return ps_error_set(PS_EINVAL, "bad_public_url", "invalid --public-url '%s': give "
				    "http(s)://HOST[:PORT]", url);
	}
	if (!(h = authority_host(*host, &port))) {
		free(*host);
		*host = NULL;
		return ps_error_set(PS_EINVAL, "bad_public_url", "invalid --public-url '%s': give "
				    "http(s)://HOST[:PORT]", url);
	}
	free(h);
	for (char *p = *host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	*origin = ps_strndup(url, (size_t)(a - url) + n);
	for (char *p = *origin; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

int ps_server_check_public_url(const char *url)
{
	char *origin = NULL, *host = NULL;
	int rc = parse_public_url(url, &origin, &host);

	free(origin);
	free(host);
	return rc;
}

/* libmicrohttpd's log. While the daemon starts, its first message is held: it explains a
 * failed start (a port in use), which the caller reports as one error of its own, not as a
 * warning printed before it. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct ps_server *srv = cls;
	int err = errno; /* what the failed call set: libmicrohttpd logs right after it */
	bool held = false;

	pthread_mutex_lock(&srv->start_mu);
	if (srv->starting && !srv->start_msg[0]) {
		size_t n;

		vsnprintf(srv->start_msg, sizeof(srv->start_msg), fmt, ap);
		n = strlen(srv->start_msg);
		while (n && (srv->start_msg[n - 1] == '\n' || srv->start_msg[n - 1] == ' '))
			srv->start_msg[--n] = '\0';
		srv->start_errno = err;
		held = true;
	}
	pthread_mutex_unlock(&srv->start_mu);
	if (!held)
		ps_log_mhd(NULL, fmt, ap);
}

/* Logs the message held during a start that went well. */
static void log_start_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ps_log_mhd(NULL, fmt, ap);
	va_end(ap);
}

static void server_free(struct ps_server *srv)
{
	free(srv->public_host);
	free(srv->public_origin);
	for (size_t i = 0; i < srv->nstores; i++)
		ps_store_free(srv->stores[i]);
	free(srv->stores);
	pthread_mutex_destroy(&srv->stores_mu);
	pthread_mutex_destroy(&srv->start_mu);
	ps_workers_free(srv->workers);
	ps_offload_free(srv->offload);
	ps_metrics_free(srv->metrics);
	free(srv);
}

/*
 * Every connection holds a file descriptor, and so do the store handles of every thread, the
 * workers' git fetches and GitHub transfers. A systemd service starts with a soft limit of
 * 1024 descriptors, far below --max-connections: past it libmicrohttpd accepts nothing, logs
 * thousands of lines a second while it busy-waits, and a sync cannot open its repository.
 * So the soft limit is raised to what the connections need (the hard limit permitting), and
 * when it cannot be, the server takes fewer connections, keeping descriptors for its own work,
 * and says so once. Returns the connection limit to use.
 */
static unsigned fit_connections_to_fd_limit(const struct ps_server_config *cfg)
{
	int threads = cfg->http_threads > 0 ? cfg->http_threads : 1;
	int workers = cfg->workers > 0 ? cfg->workers : 1;
	/* Per HTTP thread its store and its helper's (offload.c); per worker its store, a git
	 * child's pipes and libgit2's open packs; plus libmicrohttpd's own and the hub's. */
	rlim_t reserve = 64 + 16 * (rlim_t)(2 * threads + workers);
	rlim_t want = (rlim_t)cfg->max_connections + reserve, fit;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= want)
		return cfg->max_connections;
	{
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		if (up.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur >= want)
		return cfg->max_connections;
	fit = rl.rlim_cur > 2 * reserve ? rl.rlim_cur - reserve : rl.rlim_cur / 2;
	if (fit < (rlim_t)threads)
		fit = (rlim_t)threads;
	ps_log_kv("warn", "too few file descriptors for --max-connections: serving fewer "
		  "connections (raise LimitNOFILE, or ulimit -n)",
		  PS_LOG_INT("max_connections", cfg->max_connections),
		  PS_LOG_INT("connections", fit), PS_LOG_INT("nofile_limit", rl.rlim_cur),
		  PS_LOG_INT("nofile_needed", want));
	return (unsigned)fit;
}

int ps_server_run(const struct ps_server_config *cfg)
{
	struct ps_server *srv;
	struct ps_store *store = NULL;
	struct sockaddr_storage sa;
	const union MHD_DaemonInfo *info;
	sigset_t sigs, old;
	char host[INET6_ADDRSTRLEN + 2] = "";
	bool v6 = false;
	int rc, sig = 0, reaped = 0;
	unsigned flags;

	if (!(cfg->api_token && cfg->api_token[0]) && !ps_server_host_is_loopback(cfg->host))
		return ps_error_set(PS_EINVAL, "token_required",
				    "refusing to listen on '%s' without an API token: set "
				    "PROJSYNC_API_TOKEN, or listen on 127.0.0.1",
				    cfg->host && cfg->host[0] ? cfg->host : "*");
	if ((rc = resolve_listen(cfg, &sa, &v6)) < 0 || (rc = probe_listen(cfg, &sa, v6)) < 0)
		return rc;

	/* Signals go to the main thread's sigwait, never to a worker or a daemon thread: block
	 * them before any thread starts so every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	/* The terminal of a foreground server closing, or a `kill -HUP` out of habit (there is
	 * nothing to reload): left to its default it killed the process on the spot, its running
	 * syncs left `running` for the next start to reap. Stopped as for SIGTERM instead. */
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	signal(SIGPIPE, SIG_IGN);

	srv = ps_calloc(1, sizeof(*srv));
	srv->cfg = *cfg;
	srv->cfg.max_connections = fit_connections_to_fd_limit(cfg);
	if (cfg->public_url && cfg->public_url[0] &&
	    (rc = parse_public_url(cfg->public_url, &srv->public_origin, &srv->public_host)) < 0) {
		free(srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc;
	}
	pthread_mutex_init(&srv->stores_mu, NULL);
	pthread_mutex_init(&srv->start_mu, NULL);
	ps_access_init(srv);
	ps_metrics_new(&srv->metrics);

	/* Syncs owned by a dead process on this host (a previous server killed mid-sync) are
	 * marked interrupted before anything else runs. */
	if ((rc = ps_store_open(&store, cfg->db_url, 0)) < 0 ||
	    (rc = ps_store_reap(store, 0, &reaped)) < 0) {
		ps_store_free(store);
		server_free(srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc;
	}
	ps_store_free(store);
	if (reaped)
		ps_log("marked %d sync(s) of dead processes interrupted", reaped);

	if ((rc = ps_hub_start(&srv->hub, srv)) < 0 ||
	    (rc = ps_offload_start(&srv->offload, cfg->http_threads > 0 ? cfg->http_threads : 1))
	    < 0 ||
	    (rc = ps_workers_start(&srv->workers, srv)) < 0 ||
	    (rc = ps_scheduler_start(&srv->scheduler, srv)) < 0) {
		if (srv->workers)
			ps_workers_stop(srv->workers);
		if (srv->hub)
			ps_hub_stop(srv->hub);
		server_free(srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc;
	}

	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
		(v6 ? MHD_USE_IPv6 : 0);
	if (v6)
		snprintf(host, sizeof(host), "[%s]", cfg->host);
	else
		snprintf(host, sizeof(host), "%s", cfg->host && cfg->host[0] ? cfg->host : "0.0.0.0");
	srv->starting = true;
	errno = 0;
	srv->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv, /* first, or MHD logs before it */
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_CONNECTION_LIMIT, srv->cfg.max_connections,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->http_threads > 0 ? cfg->http_threads : 1),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
		MHD_OPTION_END);
	{
		int err = errno;

		pthread_mutex_lock(&srv->start_mu);
		srv->starting = false;
		pthread_mutex_unlock(&srv->start_mu);
		/* The reason: the errno of what libmicrohttpd said failed (a port in use reads
		 * better as strerror's words than as its sentence), else its sentence. */
		if (!srv->daemon)
			rc = ps_error_set(PS_EIO, "listen_failed", "cannot listen on %s:%d: %s", host,
					  cfg->port,
					  srv->start_msg[0] && srv->start_errno
						  ? strerror(srv->start_errno)
					  : srv->start_msg[0] ? srv->start_msg
					  : err ? strerror(err) : "libmicrohttpd did not start");
		else if (srv->start_msg[0])
			log_start_msg("%s", srv->start_msg);
	}
	if (!srv->daemon) {
		ps_scheduler_stop(srv->scheduler);
		ps_workers_stop(srv->workers);
		ps_hub_stop(srv->hub);
		server_free(srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : (unsigned)cfg->port;
	printf("projsync: listening on http://%s:%u (%d workers)\n", host,
	       info ? info->port : (unsigned)cfg->port, cfg->workers);
	fflush(stdout);
	{
		char *where = ps_store_location(cfg->db_url); /* a URL's password is never logged */
		ps_log("serving %s on http://%s:%u%s", where, host,
		       info ? info->port : (unsigned)cfg->port,
		       cfg->api_token && cfg->api_token[0] ? " (API token required)" : "");
		free(where);
	}

	/* Every 10 s, while waiting for the signal: glibc keeps the pages that a spike of
	 * connections (a thousand SSE watchers, each with its buffers) used in its per-thread
	 * arenas after they are freed, so without a trim the resident size only ever rises to
	 * the highest load seen (the soak run, docs/reliability.md). */
	for (;;) {
		struct timespec period = { .tv_sec = 10 };
		if ((sig = sigtimedwait(&sigs, NULL, &period)) > 0)
			break;
		if (errno == EAGAIN)
			malloc_trim(0);
	}
	ps_log("signal %d: stopping (running syncs are cancelled at their next step)", sig);
	srv->stopping = 1;
	{
		MHD_socket ls = MHD_quiesce_daemon(srv->daemon);
		if (ls != MHD_INVALID_SOCKET)
			close(ls);
	}
	/* No new scheduled syncs once stopping: the scheduler goes before the workers. */
	ps_scheduler_stop(srv->scheduler);
	ps_workers_stop(srv->workers);
	ps_hub_close_all(srv->hub);
	/* Connections waiting for a helper answer 503 now (docs/stack.md #6). */
	ps_offload_resume_all(srv->offload);
	MHD_stop_daemon(srv->daemon);
	ps_hub_stop(srv->hub);
	server_free(srv);
	/* The signal mask stays as it is: a second SIGTERM sent while we were stopping is
	 * pending, and unblocking it now would kill a process that is about to exit 0. */
	ps_log("stopped");
	return 0;
}
