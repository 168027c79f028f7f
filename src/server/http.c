/*
 * The HTTP side of `projsync serve`: libmicrohttpd glue, the route table and router, bearer
 * authentication, request logging, the reply helpers handlers share, and ps_server_run, which
 * wires the daemon, the sync workers and the SSE hub together and takes them down on SIGTERM.
 *
 * libmicrohttpd is used as ../shared/STACK.md says: epoll with a thread pool (select mode drops
 * descriptors past 1024), an explicit connection limit and listen backlog, and the access
 * handler answers only on its second call, because a response queued on the first call forces
 * `Connection: close` and costs keep-alive. Request bodies are read into a bounded buffer; a
 * body over the route's limit gets 413 at once.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "util/error.h"

/* ---- the route table ---- */

static const struct ps_route routes[] = {
	{ "GET", "/api/v1/projects", ps_api_projects_list, true, 0 },
	{ "POST", "/api/v1/projects", ps_api_projects_create, true, 0 },
	{ "GET", "/api/v1/projects/{name}", ps_api_project_get, true, 0 },
	{ "DELETE", "/api/v1/projects/{name}", ps_api_project_delete, true, 0 },
	{ "GET", "/api/v1/projects/{name}/branches", ps_api_project_branches, true, 0 },
	{ "GET", "/api/v1/projects/{name}/sync", ps_api_project_sync_status, true, 0 },
	{ "POST", "/api/v1/projects/{name}/sync", ps_api_project_sync_start, true, 0 },
	{ "GET", "/api/v1/projects/{name}/syncs", ps_api_project_syncs, true, 0 },
	{ "GET", "/api/v1/projects/{name}/files", ps_api_project_files, true, 0 },
	{ "GET", "/api/v1/projects/{name}/file", ps_api_project_file, true, 0 },
	{ "GET", "/api/v1/projects/{name}/search/code", ps_api_project_search_code, true, 0 },
	{ "GET", "/api/v1/syncs/{id}", ps_api_sync_get, true, 0 },
	{ "POST", "/api/v1/syncs/{id}/cancel", ps_api_sync_cancel, true, 0 },
	{ "GET", "/api/v1/syncs/{id}/changes", ps_api_sync_changes, true, 0 },
	{ "GET", "/api/v1/syncs/{id}/diff/{other}", ps_api_sync_diff, true, 0 },
	{ "GET", "/api/v1/projects/{name}/memory", ps_api_project_memory, true, 0 },
	{ "POST", "/api/v1/projects/{name}/memory", ps_api_project_memory_add, true, 0 },
	{ "GET", "/api/v1/memory/{id}", ps_api_memory_get, true, 0 },
	{ "GET", "/api/v1/memory/{id}/history", ps_api_memory_history, true, 0 },
	{ "POST", "/api/v1/memory/{id}/restore", ps_api_memory_restore, true, 0 },
	{ "GET", "/api/v1/events/project-sync/{id}", ps_api_sync_events, true, 0 },
	/* GitHub cannot send our token: the HMAC signature authenticates deliveries. */
	{ "POST", "/api/v1/webhooks/github", ps_api_webhook_github, false,
	  PS_HTTP_MAX_WEBHOOK_BODY },
	{ "GET", "/healthz", ps_api_healthz, false, 0 },
	{ "GET", "/metrics", ps_api_metrics, false, 0 },
	{ "GET", "/openapi.json", ps_api_openapi, false, 0 },
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
	char when[40], line[1024];
	va_list ap;

	ps_time_rfc3339(ps_now_ms(), when, sizeof(when));
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so lines from different threads do not interleave. */
	fprintf(stderr, "%s projsync: %s\n", when, line);
}

/* ---- per-thread store handles ---- */

static __thread struct ps_store *thread_store;

static struct ps_store *request_store(struct ps_server *srv)
{
	if (thread_store)
		return thread_store;
	if (ps_store_open(&thread_store, srv->cfg.db_url, PS_STORE_NO_MIGRATE) < 0) {
		ps_log("cannot open the store for a request thread: %s", ps_error_message());
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
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ps_http_header(struct ps_request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
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
	if (!slug[0])
		slug = ps_error_code_name(rc);
	if (!msg[0])
		msg = ps_error_code_name(rc);
	if (status >= 500)
		ps_log("%s %s failed: %s", rq->method, rq->url, msg);
	ps_http_error(rq, status, slug, "%s", msg);
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
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json", "invalid JSON at line %d: %s",
			      err.line, err.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json", "the body must be a JSON object");
		return NULL;
	}
	return j;
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

static bool authorized(struct ps_request *rq)
{
	const char *token = rq->srv->cfg.api_token;
	const char *h;
	size_t tlen, hlen;

	if (!token || !token[0] || !rq->route->auth)
		return true;
	h = ps_http_header(rq, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h && rq->route->handler == ps_api_sync_events) {
		/* A browser's EventSource cannot send headers: event streams also take the token
		 * as ?access_token= (the convention of RFC 6750 §2.3). */
		h = ps_http_query(rq, "access_token");
	} else if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		return false;
	} else {
		h += 7;
	}
	if (!h)
		return false;
	tlen = strlen(token);
	hlen = strlen(h);
	/* Constant time in the token's content; the length is not a secret worth hiding. */
	return hlen == tlen && CRYPTO_memcmp(h, token, tlen) == 0;
}

static void route(struct ps_request *rq)
{
	size_t n;
	const struct ps_route *rt = ps_http_routes(&n);
	bool path_known = false;
	char allow[64] = "";

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
			rq->route_index = (int)i;
			return;
		}
		path_known = true;
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
			 allow[0] ? ", " : "", rt[i].method);
		for (size_t k = 0; k < np; k++)
			free(params[k]);
	}
	if (path_known) {
		ps_http_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			      "%s is not allowed on %s", rq->method, rq->url);
		ps_http_add_header(rq, MHD_HTTP_HEADER_ALLOW, allow);
	} else if (ps_web_claims(rq->url)) {
		rq->route = &ps_web_route; /* the web page (web.c), outside the API's table */
	} else {
		ps_http_error(rq, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint: %s", rq->url);
	}
}

static void dispatch(struct ps_request *rq)
{
	if (!rq->route)
		return; /* route() replied 404/405 */
	if (rq->body_too_big) {
		ps_http_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
			      "the request body exceeds %zu bytes", rq->body_max);
		return;
	}
	if (!authorized(rq)) {
		ps_http_error(rq, MHD_HTTP_UNAUTHORIZED, "unauthorized",
			      "this server needs 'Authorization: Bearer <token>'");
		return;
	}
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
	if (!rq->response)
		ps_http_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "no response");
}

static enum MHD_Result queue(struct ps_request *rq)
{
	enum MHD_Result r;

	/* Counted when answered, not when the connection is done with it: a client may
	 * already ask /metrics on another connection before that. */
	ps_metrics_http(rq->srv->metrics, rq->route_index, rq->status);
	r = MHD_queue_response(rq->conn, rq->status, rq->response);
	MHD_destroy_response(rq->response);
	rq->response = NULL;
	rq->queued = true;
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct ps_server *srv = cls;
	struct ps_request *rq = *con_cls;

	if (!rq) {
		/* First call: headers only. Answering now would cost keep-alive (STACK.md #4). */
		rq = ps_calloc(1, sizeof(*rq));
		rq->srv = srv;
		rq->conn = conn;
		rq->method = method;
		rq->url = url;
		rq->route_index = -1;
		rq->t0 = ps_mono_ms();
		route(rq);
		rq->body_max = rq->route && rq->route->max_body ? rq->route->max_body
								 : PS_HTTP_MAX_BODY;
		*con_cls = rq;
		{
			/* A declared body over the limit is refused before it is read (this is
			 * the only moment libmicrohttpd lets us answer before the body). */
			const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_LENGTH);
			if (cl && strtoull(cl, NULL, 10) > rq->body_max) {
				rq->body_too_big = true;
				ps_http_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
					      "the request body exceeds %zu bytes", rq->body_max);
				return queue(rq);
			}
		}
		return MHD_YES;
	}
	if (rq->queued)
		return MHD_YES;
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->body_too_big)
			return MHD_YES;
		if (rq->body_len + n > rq->body_max) {
			/* A chunked body that grows past the limit: drop it as it comes and
			 * answer 413 once it has been read. */
			rq->body_too_big = true;
			free(rq->body);
			rq->body = NULL;
			rq->body_len = 0;
			return MHD_YES;
		}
		rq->body = ps_realloc(rq->body, rq->body_len + n + 1);
		memcpy(rq->body + rq->body_len, upload_data, n);
		rq->body_len += n;
		rq->body[rq->body_len] = 0;
		return MHD_YES;
	}
	if (!rq->body)
		rq->body = ps_strdup("");
	if (!rq->response)
		dispatch(rq);
	return queue(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct ps_server *srv = cls;
	struct ps_request *rq = *con_cls;

	if (!rq)
		return;
	if (srv->cfg.log_requests)
		ps_log("http %s %s %u %lldms%s", rq->method, rq->url, rq->status,
		       (long long)(ps_mono_ms() - rq->t0),
		       toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
	for (size_t i = 0; i < rq->nparams; i++)
		free(rq->params[i]);
	if (rq->response)
		MHD_destroy_response(rq->response);
	free(rq->body);
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
	cfg->poll_ms = 100;
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

static void server_free(struct ps_server *srv)
{
	for (size_t i = 0; i < srv->nstores; i++)
		ps_store_free(srv->stores[i]);
	free(srv->stores);
	pthread_mutex_destroy(&srv->stores_mu);
	ps_workers_free(srv->workers);
	ps_metrics_free(srv->metrics);
	free(srv);
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
	size_t nroutes;
	unsigned flags;

	if (!(cfg->api_token && cfg->api_token[0]) && !ps_server_host_is_loopback(cfg->host))
		return ps_error_set(PS_EINVAL, "token_required",
				    "refusing to listen on '%s' without an API token: set "
				    "PROJSYNC_API_TOKEN, or listen on 127.0.0.1",
				    cfg->host && cfg->host[0] ? cfg->host : "*");
	if ((rc = resolve_listen(cfg, &sa, &v6)) < 0)
		return rc;

	/* Signals go to the main thread's sigwait, never to a worker or a daemon thread: block
	 * them before any thread starts so every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	signal(SIGPIPE, SIG_IGN);

	srv = ps_calloc(1, sizeof(*srv));
	srv->cfg = *cfg;
	pthread_mutex_init(&srv->stores_mu, NULL);
	ps_http_routes(&nroutes);
	ps_metrics_new(&srv->metrics, nroutes);

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
	    (rc = ps_workers_start(&srv->workers, srv)) < 0) {
		if (srv->hub)
			ps_hub_stop(srv->hub);
		server_free(srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc;
	}

	flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
		(v6 ? MHD_USE_IPv6 : 0);
	srv->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->http_threads > 0 ? cfg->http_threads : 1),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_END);
	if (!srv->daemon) {
		rc = ps_error_set(PS_EIO, "listen_failed", "cannot listen on %s:%d: %s",
				  cfg->host, cfg->port, strerror(errno ? errno : EADDRINUSE));
		ps_workers_stop(srv->workers);
		ps_hub_stop(srv->hub);
		server_free(srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return rc;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (v6)
		snprintf(host, sizeof(host), "[%s]", cfg->host);
	else
		snprintf(host, sizeof(host), "%s", cfg->host && cfg->host[0] ? cfg->host : "0.0.0.0");
	printf("projsync: listening on http://%s:%u (%d workers)\n", host,
	       info ? info->port : (unsigned)cfg->port, cfg->workers);
	fflush(stdout);
	ps_log("serving %s on http://%s:%u%s", cfg->db_url, host,
	       info ? info->port : (unsigned)cfg->port,
	       cfg->api_token && cfg->api_token[0] ? " (API token required)" : "");

	while (sigwait(&sigs, &sig) != 0)
		;
	ps_log("signal %d: stopping (running syncs are cancelled at their next step)", sig);
	srv->stopping = 1;
	{
		MHD_socket ls = MHD_quiesce_daemon(srv->daemon);
		if (ls != MHD_INVALID_SOCKET)
			close(ls);
	}
	ps_workers_stop(srv->workers);
	ps_hub_close_all(srv->hub);
	MHD_stop_daemon(srv->daemon);
	ps_hub_stop(srv->hub);
	server_free(srv);
	/* The signal mask stays as it is: a second SIGTERM sent while we were stopping is
	 * pending, and unblocking it now would kill a process that is about to exit 0. */
	ps_log("stopped");
	return 0;
}
