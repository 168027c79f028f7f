/*
 * Internal to src/server/: the request context the router hands to each handler, the route
 * table entry, the helpers that build JSON and error replies, and the server object every part
 * (handlers, workers, hub, metrics) reaches through the request. Handlers live one file per
 * resource (api_projects.c, api_syncs.c, api_files.c, api_memory.c, webhook.c, sse.c,
 * metrics.c) and are listed in the route table in http.c.
 *
 * A handler runs on one of libmicrohttpd's threads with the body fully read (bounded), sets a
 * response with one of the reply helpers and returns. It uses rq->store, this thread's store
 * handle. It maps errors with ps_http_fail, which is the single place PS_E* codes become HTTP
 * statuses.
 */
#ifndef PS_SERVER_HTTP_H
#define PS_SERVER_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/log.h"
#include "server/server.h"
#include "store/store.h"

#define PS_HTTP_MAX_BODY (1024 * 1024)          /* JSON API bodies */
#define PS_HTTP_MAX_SMALL_BODY 4096             /* routes whose body is empty or one field */
#define PS_HTTP_MAX_WEBHOOK_BODY (25 * 1024 * 1024) /* GitHub's own cap on webhook payloads */
/* All request bodies being read or handled at once: five webhook deliveries of the largest
 * size. Each is within its own route's limit, but the webhook's is open to anyone, and
 * connections many times over (--max-connections) would hold that many. */
#define PS_HTTP_MAX_BODIES_TOTAL ((size_t)128 * 1024 * 1024)
#define PS_HTTP_MAX_JSON_DEPTH 32
#define PS_HTTP_MAX_PARAMS 4
/* Query arguments per request. libmicrohttpd 0.9.75 stores each in the connection's memory
 * pool and never answers when the pool runs out, so the router refuses more before it parses
 * them (on_uri in http.c). The API uses at most five. */
#define PS_HTTP_MAX_QUERY_ARGS 64
/* The request target's length (path and query as sent). The same pool holds the request head
 * and the answer's headers: past about 15.9 KiB a query's arguments no longer fit and the
 * request is never answered (above), and a target near 16 KiB leaves no room for any answer.
 * A longer target is refused before libmicrohttpd parses its query. 12 KiB holds a file path
 * of 4000 bytes percent-encoded. */
#define PS_HTTP_MAX_TARGET (12 * 1024)

struct ps_hub;
struct ps_offload;
struct ps_offload_task;
struct ps_workers;
struct ps_metrics;
struct ps_scheduler;

/* What a request may do (access.c). */
enum ps_access { PS_ACCESS_NONE, PS_ACCESS_READ, PS_ACCESS_WRITE };
#define PS_ACCESS_DIGEST_LEN 32 /* SHA-256 */

/* The server: configuration and the parts that live as long as it runs. */
struct ps_server {
	struct ps_server_config cfg;
	struct MHD_Daemon *daemon;
	struct ps_hub *hub;
	struct ps_workers *workers;
	struct ps_scheduler *scheduler;
	struct ps_metrics *metrics;
	struct ps_offload *offload;        /* helper threads for work that waits on a network */
	volatile int stopping;             /* set on SIGTERM: new API requests get 503 */
	unsigned port;                     /* the bound port */
	char *public_host;                 /* --public-url's HOST[:PORT], lowercased; NULL = none */
	char *public_origin;               /* --public-url's scheme://HOST[:PORT]; NULL = none */
	/* The tokens' SHA-256 digests, compared in constant time (access.c). */
	bool has_api_token, has_read_token;
	unsigned char api_digest[PS_ACCESS_DIGEST_LEN], read_digest[PS_ACCESS_DIGEST_LEN];
	/* libmicrohttpd's first message while the daemon starts, and errno when it was written:
	 * a failed start becomes one error of ours, a good one logs it as a warning (http.c). */
	pthread_mutex_t start_mu;
	bool starting;
	int start_errno;
	char start_msg[256];
	size_t body_bytes;                 /* held by request bodies now (atomic; http.c) */
	pthread_mutex_t stores_mu;         /* the per-thread store handles, freed at exit */
	struct ps_store **stores;
	size_t nstores, cap_stores;
};

struct ps_request;
typedef void (*ps_handler)(struct ps_request *rq);

struct ps_route {
	const char *method;
	const char *pattern;     /* "/api/v1/projects/{name}/sync": {x} matches one segment */
	ps_handler handler;
	bool auth;               /* needs the bearer token when one is configured */
	size_t max_body;         /* 0 = PS_HTTP_MAX_BODY */
	/* Optional: looks at the headers alone, before any byte of the body is read, and
	 * replies to refuse the request (the webhook without a secret or a signature). */
	ps_handler check_headers;
};

/* A header value trimmed of the whitespace libmicrohttpd leaves at its end (ps_http_header). */
struct ps_header_copy {
	struct ps_header_copy *next;
	char value[];
};

struct ps_request {
	struct ps_server *srv;
	struct MHD_Connection *conn;
	struct ps_store *store;       /* this thread's handle (borrowed) */
	const char *method;
	char *url;                    /* path without the query, decoded strictly (owned) */
	char *raw_target;             /* the request target as sent, query included (owned) */
	const char *raw_target_at;    /* where libmicrohttpd held it (for the NUL check) */
	bool too_many_args;           /* the query was cut before libmicrohttpd parsed it */
	bool target_too_long;         /* longer than PS_HTTP_MAX_TARGET; the query was cut too */
	bool started;                 /* the access handler has seen the headers */
	const struct ps_route *route; /* NULL until routed */
	enum ps_access access;        /* what its token allows (set on the headers) */
	/* The route whose path matched when none took the method (a 405): its metrics label. */
	const struct ps_route *path_route;
	char *params[PS_HTTP_MAX_PARAMS]; /* path parameters in pattern order (owned) */
	size_t nparams;
	char *body;                   /* NUL-terminated (owned) */
	size_t body_len, body_max;
	size_t body_cap;              /* bytes allocated at body */
	bool body_too_big;
	struct ps_offload_task *task; /* work handed to a helper thread (offload.c); NULL = none */
	/* The reply. */
	unsigned status;
	struct MHD_Response *response;
	bool queued;
	int64_t t0;
	struct ps_header_copy *header_copies; /* trimmed header values handed out (owned) */
};

/* Path parameter i (decoded; borrowed). */
const char *ps_http_param(struct ps_request *rq, size_t i);
/* A query argument or header (borrowed; NULL if absent). A query argument given without a
 * value (`?include_superseded`) is "". */
const char *ps_http_query(struct ps_request *rq, const char *name);
/* A header's value without the spaces and tabs around it (RFC 9110 5.5), for every reader of
 * headers alike; borrowed for the life of the request, NULL if absent. */
const char *ps_http_header(struct ps_request *rq, const char *name);
/* A true/false query argument, the same for every route: absent, "false" or "0" is false;
 * "true", "1" or no value (`?patch`) is true. Anything else replies 400 invalid_parameter and
 * returns false. */
bool ps_http_query_bool(struct ps_request *rq, const char *name, bool *out);

/* A store connection for one of the server's threads (requests, workers, events, schedule):
 * migrations are the start-up's job, and its SQLite page cache is small (PS_STORE_SMALL_CACHE)
 * so that the server's memory does not follow the store's size. */
static inline int ps_server_store_open(struct ps_store **out, const char *db_url)
{
	return ps_store_open(out, db_url, PS_STORE_NO_MIGRATE | PS_STORE_SMALL_CACHE);
}

/* Replies: each sets rq->status and rq->response. ps_http_json steals `j`. */
void ps_http_json(struct ps_request *rq, unsigned status, json_t *j);
void ps_http_error(struct ps_request *rq, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Maps a PS_E* code (with the thread's error message) to a status and replies. */
void ps_http_fail(struct ps_request *rq, int rc);
void ps_http_raw(struct ps_request *rq, unsigned status, const char *content_type, void *data,
		 size_t len, bool take);
void ps_http_add_header(struct ps_request *rq, const char *name, const char *value);

/* Parses rq->body as a JSON object (empty body: an empty object when `allow_empty`), checking
 * its depth; replies 400 and returns NULL on bad input. */
json_t *ps_http_body_object(struct ps_request *rq, bool allow_empty);
/* The same, and every key must be one of `known` (NULL-terminated): replies 400
 * "unknown_field" otherwise. */
json_t *ps_http_body_fields(struct ps_request *rq, bool allow_empty, const char *const *known);
/* For a route that takes no fields: an empty body or `{}`. Replies 400 (bad_json,
 * unknown_field) and returns false otherwise, so that a field a client thinks it sends is
 * never silently ignored. */
bool ps_http_no_fields(struct ps_request *rq);
/* The deepest nesting of arrays and objects in a JSON text (strings skipped). */
int ps_http_json_depth(const char *s, size_t len);
/* True when `header` ("sha256=<hex>") is the HMAC-SHA256 of the body under `secret`
 * (constant-time comparison). webhook.c */
bool ps_webhook_signature_valid(const char *secret, const void *body, size_t len,
				const char *header);
/* Parses a positive id from a path or query value; replies 400 and returns false if bad. */
bool ps_http_parse_id(struct ps_request *rq, const char *what, const char *s, int64_t *out);

/* ?limit: 1..1000, `def` when absent; replies 400 and returns false if bad (api_projects.c). */
bool ps_api_parse_limit(struct ps_request *rq, int64_t def, int64_t *out);

/* Loads the project named by path parameter 0; replies 404 and returns NULL if unknown. */
struct ps_project *ps_http_project(struct ps_request *rq);

/* Logs one line on stderr with a UTC timestamp ("projsync: ..."), at level info. */
void ps_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same at level "warn" or "error": what an operator filtering the log by level must see
 * (a store that does not answer, a failed request, a prune that could not run). */
void ps_log_at(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Handlers (one file per resource). */
void ps_api_projects_list(struct ps_request *rq);
void ps_api_projects_create(struct ps_request *rq);
void ps_api_project_get(struct ps_request *rq);
void ps_api_project_delete(struct ps_request *rq);
void ps_api_project_patch(struct ps_request *rq);
void ps_api_project_branches(struct ps_request *rq);
void ps_api_project_sync_status(struct ps_request *rq);
void ps_api_project_sync_start(struct ps_request *rq);
void ps_api_project_resume(struct ps_request *rq);
void ps_api_project_verify(struct ps_request *rq);
void ps_api_project_syncs(struct ps_request *rq);
void ps_api_sync_get(struct ps_request *rq);
void ps_api_sync_cancel(struct ps_request *rq);
void ps_api_sync_changes(struct ps_request *rq);
void ps_api_sync_commits(struct ps_request *rq);
/* Output limit of the diff endpoint (git-format bytes; past it files are listed as omitted). */
#define PS_API_DIFF_MAX_BYTES (16 * 1024 * 1024)
void ps_api_sync_diff(struct ps_request *rq);
void ps_api_project_files(struct ps_request *rq);
void ps_api_project_file(struct ps_request *rq);
void ps_api_project_search_code(struct ps_request *rq); /* api_code.c */
void ps_api_sync_events(struct ps_request *rq);     /* sse.c */
void ps_api_webhook_github(struct ps_request *rq);  /* webhook.c */
/* Refuses a delivery on its headers alone: no secret configured (403), no signature (401). */
void ps_webhook_check_headers(struct ps_request *rq); /* webhook.c */
void ps_api_healthz(struct ps_request *rq);         /* metrics.c */
void ps_api_metrics(struct ps_request *rq);         /* metrics.c */
void ps_api_openapi(struct ps_request *rq);         /* http.c */
void ps_api_project_memory(struct ps_request *rq);     /* api_memory.c */
void ps_api_project_memory_add(struct ps_request *rq); /* api_memory.c */
void ps_api_memory_get(struct ps_request *rq);         /* api_memory.c */
void ps_api_memory_history(struct ps_request *rq);     /* api_memory.c */
void ps_api_memory_restore(struct ps_request *rq);     /* api_memory.c */
void ps_api_memory_patch(struct ps_request *rq);       /* api_memory.c */
void ps_api_memory_delete(struct ps_request *rq);      /* api_memory.c */

/* ---- access (access.c) ---- */

/* Digests the configured tokens (once, before the daemon starts). */
void ps_access_init(struct ps_server *srv);
/* On the headers of a routed request: its token (header, or ?access_token= on event streams
 * only) and what it allows for this method. Replies 401/403 and returns false to refuse. */
bool ps_access_check(struct ps_request *rq);
/* True when a project's SOURCE may be used through the API: anything but a local path or a
 * file: URL, and those only when they resolve inside --local-root. Replies 403 and returns
 * false otherwise. A relative path passes (the caller refuses it as not absolute). */
bool ps_access_source_allowed(struct ps_request *rq, const char *source);
/* GET /api/v1/whoami: what the caller's token allows, for the page to hide what it cannot do. */
void ps_api_whoami(struct ps_request *rq);

/* ---- the web page (web.c) ---- */

/* True for the paths the web page answers (`/`, `/projects...`, `/assets/...`; never `/api/`).
 * The router asks only for paths that no API route matched, and then routes to ps_web_route,
 * which is not in the route table (the page is not part of the API or its OpenAPI document). */
bool ps_web_claims(const char *path);
extern const struct ps_route ps_web_route;
void ps_web_serve(struct ps_request *rq);

/* ---- work off the request thread (offload.c) ---- */

/*
 * Hands `run(job)` to a helper thread and suspends the connection until it is done; then
 * libmicrohttpd calls the handler again, which finds the finished job with ps_http_offloaded.
 * Call only from a handler. The request owns nothing afterwards: `free_job(job)` runs when both
 * the request and the helper are done with it. Returns false after replying 503 (every helper
 * busy: `remote_busy` with Retry-After; or the server stopping); `job` is then freed already.
 * `run` must not touch the request or its store handle (it runs on another thread).
 */
bool ps_http_offload(struct ps_request *rq, void (*run)(void *job), void *job,
		     void (*free_job)(void *job));
/* The job of this request's finished offload (borrowed), or NULL when none was started. */
void *ps_http_offloaded(struct ps_request *rq);
/* Drops the request's reference to its task (on_completed). */
void ps_http_offload_release(struct ps_request *rq);
int ps_offload_start(struct ps_offload **out, int threads);
/* Resumes every connection still waiting for a job (before MHD_stop_daemon) and refuses new
 * jobs. */
void ps_offload_resume_all(struct ps_offload *o);
/* Waits for the helpers (a job in progress ends within the network timeout) and frees. */
void ps_offload_free(struct ps_offload *o);

/* ---- workers (workers.c) ---- */

/*
 * Appends a queued sync for `project` (branch NULL = the project's) with a stored `queued`
 * event (seq 1), in one transaction, and wakes a worker. PS_ECONFLICT when a sync of the
 * project is queued or running (the store's chain rule decides).
 */
int ps_server_queue_sync(struct ps_server *srv, struct ps_store *store,
			 const struct ps_project *project, const char *branch, const char *trigger,
			 struct ps_sync **out);
int ps_workers_start(struct ps_workers **out, struct ps_server *srv);
/* Cancels running syncs at their next step, waits for them to end, joins the threads. */
void ps_workers_stop(struct ps_workers *w);
/* Stops (if needed) and releases the pool. */
void ps_workers_free(struct ps_workers *w);
void ps_workers_poke(struct ps_workers *w);
/* The scheduler thread (scheduler.c): queues due scheduled syncs, prunes periodically. */
int ps_scheduler_start(struct ps_scheduler **out, struct ps_server *srv);
void ps_scheduler_stop(struct ps_scheduler *sch); /* NULL-safe; joins the thread */
void ps_scheduler_poke(struct ps_scheduler *sch);  /* look for due projects now */
/* Syncs running in this server right now. */
size_t ps_workers_running(struct ps_workers *w);

/* ---- SSE hub (sse.c) ---- */

int ps_hub_start(struct ps_hub **out, struct ps_server *srv);
/* Asks the hub to poll at once (a worker stored an event of `sync_id`). */
void ps_hub_poke(struct ps_hub *hub);
/* Delivers what is stored, ends every stream and resumes every suspended connection. */
void ps_hub_close_all(struct ps_hub *hub);
/* Joins the hub thread and releases the hub (after the daemon stopped). */
void ps_hub_stop(struct ps_hub *hub);
size_t ps_hub_watchers(struct ps_hub *hub);
/* Stores the final event of an ended sync that has none (a queued sync cancelled, a sync
 * reaped as interrupted), so streams of it end. No-op when it exists or the sync runs. */
int ps_sse_ensure_final_event(struct ps_store *store, int64_t sync_id);

/* ---- metrics (metrics.c) ---- */

int ps_metrics_new(struct ps_metrics **out);
void ps_metrics_free(struct ps_metrics *m);
/* One answered request under its labels (static strings: the count keeps the pointers). */
void ps_metrics_http(struct ps_metrics *m, const char *route, const char *method,
		     unsigned status);
/* A sync this server's workers ended: its final status, duration and the upstream requests it
 * made through a source of `source_kind` ("git" | "github"; NULL when no source was opened). */
void ps_metrics_sync_done(struct ps_metrics *m, const char *status, int64_t duration_ms,
			  const char *source_kind, int64_t requests);

/* The route table (http.c). */
const struct ps_route *ps_http_routes(size_t *n);

#endif
