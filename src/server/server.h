/*
 * `projsync serve`: the HTTP API and SSE stream of docs/api.md on libmicrohttpd, with a pool
 * of sync workers running the same pipeline generator as the CLI. The CLI (cli/cmd_serve.c)
 * fills a ps_server_config and calls ps_server_run, which blocks until SIGTERM or SIGINT.
 *
 * Threads: libmicrohttpd's epoll thread pool answers requests (each thread opens its own store
 * handle on first use); `workers` threads claim queued syncs and run them; one hub thread polls
 * the events table for syncs that have SSE watchers and fans new events out (so syncs run by
 * another process stream too); the main thread waits for the stop signal and meanwhile hands
 * freed memory back to the system (malloc_trim every 10 s).
 */
#ifndef PS_SERVER_SERVER_H
#define PS_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ps_server_config {
	const char *db_url;          /* store location (every thread opens its own handle) */
	const char *cache_dir;       /* where remote sources keep bare caches */
	const char *host;            /* listen address: IPv4/IPv6 literal or a resolvable name */
	int port;                    /* 0 = any free port (the chosen one is printed) */
	int workers;                 /* sync worker threads (>= 1) */
	int http_threads;            /* libmicrohttpd thread pool size (>= 1) */
	unsigned max_connections;    /* connection limit (SSE watchers count) */
	int64_t heartbeat_ms;        /* SSE heartbeat comment interval */
	int64_t poll_ms;             /* how often the hub reads every watched sync's events;
				      * 0: 100 ms on SQLite, 1 s on PostgreSQL (which notifies) */
	size_t watcher_queue_max;    /* bytes an SSE watcher may lag before it is dropped */
	const char *api_token;       /* NULL/"" = no token (then only loopback binds are allowed) */
	const char *read_token;      /* NULL/"" = none; else GET/HEAD/event streams only (needs
				      * api_token) */
	/* Resolved (realpath) directory under which the API may name local repositories; NULL =
	 * local paths and file: URLs are refused through the API. */
	const char *local_root;
	const char *webhook_secret;  /* NULL/"" = the webhook endpoint refuses deliveries */
	/* The URL clients and browsers use when it is not the listen address (a reverse proxy,
	 * a tunnel): http(s)://HOST[:PORT]. Requests may name its host in `Host` and come from
	 * its origin. NULL = none. */
	const char *public_url;
	bool log_requests;           /* one line per request on stderr */
	int64_t lease_ms;            /* how long a running sync's claim holds without renewal */
	int64_t max_failures;        /* failures in a row before a scheduled project pauses (10) */
	int64_t prune_interval_ms;   /* how often retention policies are applied; 0 = never */
	int64_t schedule_tick_ms;    /* how often the scheduler looks for due projects (1000) */
};

/* Defaults: 127.0.0.1:8420, 2 workers, 4 HTTP threads, 16384 connections, 15 s heartbeat,
 * polls chosen by the backend, 256 KiB per watcher, 30 s leases. */
void ps_server_config_defaults(struct ps_server_config *cfg);

/* True when `host` names only loopback addresses (127.0.0.0/8, ::1, localhost). */
bool ps_server_host_is_loopback(const char *host);
/* 0 if `url` is a --public-url the server takes, else PS_EINVAL with the message it would
 * give: `serve` checks it before it creates a store. */
int ps_server_check_public_url(const char *url);

/*
 * Runs the server until SIGTERM/SIGINT: reaps syncs left running by dead processes, starts the
 * workers, the hub and the HTTP daemon, prints "projsync: listening on http://HOST:PORT" to
 * stdout, then waits. On the signal it stops accepting, cancels running syncs at their next
 * step, sends their final events to watchers, closes every stream and returns 0. Refuses
 * (PS_EINVAL) a non-loopback address without an API token. Returns a PS_E* code when it
 * cannot start, with the message set.
 */
int ps_server_run(const struct ps_server_config *cfg);

/* The router's table, for `serve --routes` and the test that checks it against openapi.json:
 * calls cb(method, pattern) for every route. */
void ps_server_each_route(void (*cb)(void *ud, const char *method, const char *pattern),
			  void *ud);

/* The embedded OpenAPI document (borrowed, static). */
const char *ps_server_openapi(size_t *len);

#endif
