/*
 * `projsync serve`: runs the HTTP API, the SSE event streams and the sync workers
 * (server/server.h) on the store this command line names. Configuration comes from options and,
 * for secrets, from the environment only (PROJSYNC_API_TOKEN, PROJSYNC_READ_TOKEN,
 * PROJSYNC_WEBHOOK_SECRET), so
 * they never appear in `ps` output or in logs.
 */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/log.h"
#include "model/schedule.h"
#include "server/server.h"
#include "util/error.h"

static const char serve_usage[] =
	"usage: projsync serve [--listen HOST:PORT] [--workers N] [--threads N]\n"
	"                      [--max-connections N] [--heartbeat-ms MS] [--poll-ms MS]\n"
	"                      [--lease-seconds N] [--max-failures N] [--prune-every D|off]\n"
	"                      [--public-url URL] [--local-root DIR]\n"
	"                      [--log-format logfmt|json] [--quiet]\n"
	"       projsync serve --routes\n"
	"\n"
	"Serves the HTTP API (/api/v1), live sync progress as server-sent events, a GitHub\n"
	"webhook, /healthz, /metrics and /openapi.json, runs queued syncs with N workers, and\n"
	"queues the scheduled syncs of projects with --every (trigger 'schedule').\n"
	"\n"
	"  --listen HOST:PORT   address to bind (default 127.0.0.1:8420; [::1]:PORT for IPv6;\n"
	"                       port 0 picks a free port, printed on stdout)\n"
	"  --workers N          sync worker threads (default 2)\n"
	"  --threads N          HTTP threads (default 4)\n"
	"  --max-connections N  open connections, SSE streams included (default 16384; fewer,\n"
	"                       with a warning, when the open-files limit has no room)\n"
	"  --heartbeat-ms MS    SSE heartbeat comment interval (default 15000)\n"
	"  --poll-ms MS         how often streams look for events of other processes (default 100;\n"
	"                       on PostgreSQL, which notifies them, a 1000 ms safety net)\n"
	"  --lease-seconds N    how long a running sync stays claimed without renewal; another\n"
	"                       node takes it over after that (default 30)\n"
	"  --max-failures N     a scheduled project pauses after N failed syncs in a row\n"
	"                       (default 10; project set --max-failures overrides it)\n"
	"  --prune-every D      apply the projects' retention policies every D (default 1h;\n"
	"                       'off' never: then only 'projsync prune' does)\n"
	"  --public-url URL     the http(s)://HOST[:PORT] browsers and clients use when it is not\n"
	"                       the listen address (a reverse proxy, a tunnel): without a token\n"
	"                       the server answers only requests for its own address or this one\n"
	"  --local-root DIR     projects added through the API may name local repositories (paths,\n"
	"                       file: URLs) inside DIR, symlinks and '..' resolved; without it\n"
	"                       the API refuses every local path (the CLI is not limited)\n"
	"  --log-format F       logfmt (default) or json: one record per line on stderr\n"
	"  --quiet              do not log one line per request\n"
	"  --routes             print the routes this server answers and exit\n"
	"\n"
	"Environment:\n"
	"  PROJSYNC_API_TOKEN       when set, every /api/v1 call needs 'Authorization: Bearer\n"
	"                           <token>'; required to listen on a non-loopback address\n"
	"  PROJSYNC_READ_TOKEN      a second token that may only read: GET, HEAD and event\n"
	"                           streams (writes get 403); needs PROJSYNC_API_TOKEN\n"
	"  PROJSYNC_WEBHOOK_SECRET  the GitHub webhook secret (webhooks are refused without it)\n"
	"  GITHUB_TOKEN             the token for github: sources\n"
	"The log shows none of them: their values are redacted wherever they would appear.\n"
	"\n"
	"SIGTERM, SIGHUP or Ctrl-C stops accepting, cancels running syncs at their next\n"
	"step, ends every event stream and exits 0.\n";

static bool parse_listen(const char *s, char **host, int *port)
{
	const char *colon;
	char *end;
	long p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return false;
		*host = ps_strndup(s + 1, (size_t)(close - s - 1));
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return false;
		*host = ps_strndup(s, (size_t)(colon - s));
	}
	p = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || p < 0 || p > 65535) {
		free(*host);
		*host = NULL;
		return false;
	}
	*port = (int)p;
	return true;
}

static bool parse_num(const char *s, long min, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!s[0] || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static void print_route(void *ud, const char *method, const char *pattern)
{
	(void)ud;
	printf("%s %s\n", method, pattern);
}

int ps_cmd_serve(struct ps_cli *cli, int argc, char **argv)
{
	enum { OPT_LISTEN = 0x100, OPT_WORKERS, OPT_THREADS, OPT_MAXCONN, OPT_HB, OPT_POLL,
	       OPT_QUIET, OPT_ROUTES, OPT_LEASE, OPT_PUBLIC_URL, OPT_LOG_FORMAT, OPT_MAX_FAILURES,
	       OPT_PRUNE_EVERY, OPT_LOCAL_ROOT };
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "max-connections", required_argument, NULL, OPT_MAXCONN },
		{ "heartbeat-ms", required_argument, NULL, OPT_HB },
		{ "poll-ms", required_argument, NULL, OPT_POLL },
		{ "lease-seconds", required_argument, NULL, OPT_LEASE },
		{ "max-failures", required_argument, NULL, OPT_MAX_FAILURES },
		{ "prune-every", required_argument, NULL, OPT_PRUNE_EVERY },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "public-url", required_argument, NULL, OPT_PUBLIC_URL },
		{ "routes", no_argument, NULL, OPT_ROUTES },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "local-root", required_argument, NULL, OPT_LOCAL_ROOT },
		{ 0 },
	};
	struct ps_source_opts sopts;
	struct ps_server_config cfg;
	enum ps_log_format log_format = PS_LOG_LOGFMT;
	char *host = NULL, *local_root = NULL;
	long v;
	int c, rc;

	ps_server_config_defaults(&cfg);
	while ((c = ps_cli_getopt(cli, argc, argv, opts, serve_usage)) != -1) {
		switch (c) {
		case PS_CLI_OPT_HELP:
			free(host);
			free(local_root);
			return PS_EXIT_OK;
		case OPT_LISTEN:
			free(host);
			host = NULL;
			if (!parse_listen(optarg, &host, &cfg.port)) {
				free(local_root);
				return ps_cli_usage_error(cli, "invalid --listen '%s': give HOST:PORT",
							  optarg);
			}
			cfg.host = host;
			break;
		case OPT_WORKERS:
		case OPT_THREADS:
			if (!parse_num(optarg, 1, 256, &v)) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "--%s needs a number from 1 to 256",
							  c == OPT_WORKERS ? "workers" : "threads");
			}
			if (c == OPT_WORKERS)
				cfg.workers = (int)v;
			else
				cfg.http_threads = (int)v;
			break;
		case OPT_MAXCONN:
			if (!parse_num(optarg, 16, 1000000, &v)) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "--max-connections needs a number from 16");
			}
			cfg.max_connections = (unsigned)v;
			break;
		case OPT_HB:
		case OPT_POLL:
			if (!parse_num(optarg, 10, 3600000, &v)) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "--%s needs milliseconds (10 or more)",
							  c == OPT_HB ? "heartbeat-ms" : "poll-ms");
			}
			if (c == OPT_HB)
				cfg.heartbeat_ms = v;
			else
				cfg.poll_ms = v;
			break;
		case OPT_LEASE:
			if (!parse_num(optarg, 1, 86400, &v)) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "--lease-seconds needs a number from 1 "
							  "to 86400");
			}
			cfg.lease_ms = v * 1000;
			break;
		case OPT_MAX_FAILURES:
			if (!parse_num(optarg, 1, 1000000, &v)) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "--max-failures needs a number from 1");
			}
			cfg.max_failures = v;
			break;
		case OPT_PRUNE_EVERY: {
			int64_t ms = 0;
			if (strcmp(optarg, "off") != 0 &&
			    (!ps_duration_parse(optarg, &ms) || ms < 1000)) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "invalid --prune-every '%s': give a "
							  "duration like 1h or 'off'", optarg);
			}
			cfg.prune_interval_ms = ms;
			break;
		}
		case OPT_QUIET: cfg.log_requests = false; break;
		case OPT_PUBLIC_URL:
			/* The server's own check, here: a usage error must not leave a new
			 * store behind. */
			if (ps_server_check_public_url(optarg) < 0) {
				free(host);
				free(local_root);
				rc = ps_cli_usage_error(cli, "%s", ps_error_message());
				ps_error_clear();
				return rc;
			}
			cfg.public_url = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (!ps_log_parse_format(optarg, &log_format)) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "--log-format must be logfmt or json, "
							  "not '%s'", optarg);
			}
			break;
		case OPT_LOCAL_ROOT: {
			char buf[PATH_MAX];
			struct stat st;
			/* Resolved once: every check compares resolved paths against it. */
			const char *why = NULL;
			if (!realpath(optarg, buf))
				why = strerror(errno);
			else if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
				why = "not a directory";
			if (why) {
				free(host);
				free(local_root);
				return ps_cli_usage_error(cli, "invalid --local-root '%s': %s", optarg,
							  why);
			}
			free(local_root);
			local_root = ps_strdup(buf);
			break;
		}
		case OPT_ROUTES:
			ps_server_each_route(print_route, NULL);
			free(host);
			free(local_root);
			return PS_EXIT_OK;
		default:
			free(host);
			free(local_root);
			return PS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		free(host);
		free(local_root);
		return ps_cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	}
	cfg.api_token = getenv("PROJSYNC_API_TOKEN");
	cfg.read_token = getenv("PROJSYNC_READ_TOKEN");
	cfg.local_root = local_root;
	cfg.webhook_secret = getenv("PROJSYNC_WEBHOOK_SECRET");
	/* Before any thread starts: the log settings are read without a lock. */
	ps_log_set_format(log_format);
	ps_log_add_secret(cfg.api_token);
	ps_log_add_secret(cfg.read_token);
	ps_log_add_secret(cfg.webhook_secret);
	ps_log_add_secret(getenv("GITHUB_TOKEN"));
	if (!(cfg.api_token && cfg.api_token[0]) && !ps_server_host_is_loopback(cfg.host)) {
		fprintf(stderr, "projsync: refusing to listen on '%s' without an API token: set "
			"PROJSYNC_API_TOKEN, or listen on 127.0.0.1\n",
			cfg.host[0] ? cfg.host : "*" /* ":PORT": every address */);
		free(host);
		free(local_root);
		return PS_EXIT_USAGE;
	}
	/* A header value reaches the server trimmed and cannot hold control characters: a token
	 * with a space at an end (an EnvironmentFile line "TOKEN=abc ") or a newline could never
	 * be presented, and every call would be 401 with nothing saying why. */
	for (int i = 0; i < 2; i++) {
		const char *t = i ? cfg.read_token : cfg.api_token;
		size_t n = t ? strlen(t) : 0;
		bool bad = n && (t[0] == ' ' || t[0] == '\t' || t[n - 1] == ' ' || t[n - 1] == '\t');
		for (size_t k = 0; k < n && !bad; k++)
			bad = (unsigned char)t[k] < 0x20 || t[k] == 0x7f;
		if (bad) {
			fprintf(stderr, "projsync: %s starts or ends with a blank or holds a control "
				"character: no client could send it in 'Authorization: Bearer'\n",
				i ? "PROJSYNC_READ_TOKEN" : "PROJSYNC_API_TOKEN");
			free(host);
			free(local_root);
			return PS_EXIT_USAGE;
		}
	}
	if (cfg.read_token && cfg.read_token[0] &&
	    (!(cfg.api_token && cfg.api_token[0]) || strcmp(cfg.read_token, cfg.api_token) == 0)) {
		/* Without an API token nothing would be asked of a client, and one token cannot
		 * be both. */
		fprintf(stderr, "projsync: PROJSYNC_READ_TOKEN needs a different PROJSYNC_API_TOKEN "
			"beside it\n");
		free(host);
		free(local_root);
		return PS_EXIT_USAGE;
	}
	/* A bad network bound is refused before the store is opened, as the usage errors above:
	 * a refused start must not leave a new store behind. */
	if ((rc = ps_cli_source_opts(cli, &sopts)) < 0 ||
	    (rc = ps_cli_open_store(cli, PS_CLI_STORE_CREATE)) < 0) {
		free(host);
		free(local_root);
		return ps_cli_fail(rc);
	}
	cfg.db_url = cli->db_url;
	cfg.cache_dir = cli->cache_dir;
	/* Every server thread opens its own handle; this one was only for migrations. */
	ps_store_free(cli->store);
	cli->store = NULL;
	rc = ps_server_run(&cfg);
	free(host);
	free(local_root);
	return ps_cli_fail(rc);
}
