/*
 * API requests through the real server (server/http.c and every handler): the input is one raw
 * HTTP request (request line, headers, body) sent over loopback to `projsync serve` running in
 * this process on a store holding one synced project ("demo") with a memory entry. That covers
 * the router, path parameters, query parameters (limits, offsets, booleans, access_token,
 * last_event_id), every JSON body, Last-Event-ID on event streams and webhook deliveries.
 *
 * The harness frames the request itself, so no input can leave the server waiting: it drops
 * Content-Length, Transfer-Encoding and Connection lines and adds the body's real length and
 * "Connection: close". "X-Hub-Signature-256: auto" becomes the body's true signature (the
 * server's secret is "fuzz-secret"), so payloads get past the check; the API token is
 * "fuzz-token". "{REPO}" stands for the path of the small git repository behind "demo".
 *
 * Sources named in bodies could reach the network (git URLs, github:): the process moves into
 * its own network namespace when the kernel lets it; when it cannot, inputs that could name a
 * remote source are skipped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fuzz.h"
#include "server/server.h"
#include "util/error.h"

#define TOKEN "fuzz-token"
#define SECRET "fuzz-secret"

static struct ps_server_config cfg;
static char dir[64], db[128], cache[128], repo[128];
static int port;
static bool isolated;

/* A network namespace of our own, with its loopback up: the only network left is ours. */
static bool isolate_network(void)
{
	struct ifreq ifr = {0};
	int fd;

	if (unshare(getuid() == 0 ? CLONE_NEWNET : CLONE_NEWUSER | CLONE_NEWNET) != 0)
		return false;
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return false;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		close(fd);
		return false;
	}
	ifr.ifr_flags |= IFF_UP;
	bool ok = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
	close(fd);
	return ok;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
		abort();
	p = ntohs(sa.sin_port);
	close(fd);
	return p;
}

static void *serve(void *arg)
{
	if (ps_server_run(&cfg) != 0) {
		fprintf(stderr, "fuzz_http_api: the server did not start: %s\n", ps_error_message());
		abort();
	}
	return NULL;
}

/* Sends one request and reads the answer to its end; returns the status (0 on none). */
static int exchange(const char *req, size_t len, char *out, size_t outlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 1 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
	size_t got = 0;

	if (fd < 0)
		abort();
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return 0;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	for (;;) {
		char tmp[16384];
		ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
		if (r <= 0)
			break; /* EOF, or an event stream that stays open past the timeout */
		if (out && got + 1 < outlen) {
			size_t k = (size_t)r < outlen - 1 - got ? (size_t)r : outlen - 1 - got;
			memcpy(out + got, tmp, k);
			got += k;
		}
	}
	if (out)
		out[got] = 0;
	close(fd);
	if (out)
		sscanf(out, "HTTP/1.%*d %d", &status);
	return status;
}

static int simple(const char *method, const char *path, const char *body, char *out,
		  size_t outlen)
{
	char req[2048];
	int n = snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN "\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s",
			 method, path, strlen(body), body);
	return exchange(req, (size_t)n, out, outlen);
}

static void sh(const char *cmd)
{
	if (system(cmd) != 0) {
		fprintf(stderr, "fuzz_http_api: failed: %s\n", cmd);
		abort();
	}
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_http_api: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	pthread_t t;
	char cmd[1024], out[65536];

	isolated = isolate_network();
	snprintf(dir, sizeof(dir), "/tmp/projsync-fuzz-api-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	snprintf(db, sizeof(db), "%s/store.db", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(repo, sizeof(repo), "%s/repo", dir);
	snprintf(cmd, sizeof(cmd),
		 "set -e; git init -q -b main %s; cd %s; mkdir -p .memory src;"
		 "printf -- '---\\ntitle: Deploy\\ntags: [ops, ci]\\n---\\nhow we deploy\\n'"
		 " > .memory/deploy.md; printf 'hello\\n' > README.md; printf 'x' > src/a.c;"
		 "git add -A; git -c user.name=f -c user.email=f@f commit -q -m one", repo, repo);
	sh(cmd);
	/* Nothing GitHub-bound may leave the machine, isolated or not. */
	setenv("PROJSYNC_GITHUB_API", "http://127.0.0.1:1", 1);
	setenv("PROJSYNC_GITHUB_RETRIES", "0", 1);
	unsetenv("GITHUB_TOKEN");
	ps_server_config_defaults(&cfg);
	port = free_port();
	cfg.db_url = db;
	cfg.cache_dir = cache;
	cfg.host = "127.0.0.1";
	cfg.port = port;
	cfg.workers = 1;
	cfg.http_threads = 1;
	cfg.heartbeat_ms = 200;
	cfg.api_token = TOKEN;
	cfg.webhook_secret = SECRET;
	/* The test repository is a local path: the API takes those only inside --local-root. */
	static char root[PATH_MAX];
	if (!realpath(dir, root))
		snprintf(root, sizeof(root), "%s", dir);
	cfg.local_root = root;
	pthread_create(&t, NULL, serve, NULL);
	pthread_detach(t);
	for (int i = 0; i < 200 && simple("GET", "/healthz", "", out, sizeof(out)) != 200; i++)
		usleep(50000);
	snprintf(cmd, sizeof(cmd), "{\"name\":\"demo\",\"source\":\"%s\"}", repo);
	if (simple("POST", "/api/v1/projects", cmd, out, sizeof(out)) != 201 ||
	    simple("POST", "/api/v1/projects/demo/sync", "{}", out, sizeof(out)) != 202) {
		fprintf(stderr, "fuzz_http_api: cannot set up the store: %s\n", out);
		abort();
	}
	for (int i = 0; i < 200; i++) {
		simple("GET", "/api/v1/syncs/1", "", out, sizeof(out));
		if (strstr(out, "\"succeeded\""))
			break;
		usleep(50000);
	}
	fprintf(stderr, "fuzz_http_api: server on port %d, store %s, network %s\n", port, db,
		isolated ? "isolated" : "shared (remote sources skipped)");
	return 0;
}

/* Whether the input could name a remote source (checked only without our own network). */
static bool could_reach_out(const char *s, size_t len)
{
	static const char *const bad[] = { "://", "@", "\\u", "github", "%3a", "%3A", "%40" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (memmem(s, len, bad[i], strlen(bad[i])))
			return true;
	return false;
}

/* The input with "{REPO}" replaced by the demo repository's path. */
static char *expand(const uint8_t *data, size_t size, size_t *outlen)
{
	size_t rl = strlen(repo), n = 0;
	char *out = malloc(size * (rl > 6 ? rl / 6 + 1 : 1) + 1);

	for (size_t i = 0; i < size;) {
		if (i + 6 <= size && memcmp(data + i, "{REPO}", 6) == 0) {
			memcpy(out + n, repo, rl);
			n += rl;
			i += 6;
		} else {
			out[n++] = (char)data[i++];
		}
	}
	*outlen = n;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input = expand(data, size, &size);
	const char *in = input, *body = NULL, *end = in + size;
	char *req, *o;
	size_t blen = 0, cap;

	if (!isolated && could_reach_out(in, size)) {
		free(input);
		return 0;
	}
	/* Head and body split at the first empty line ("\n\n" or "\r\n\r\n"). */
	for (const char *p = in; p < end; p++) {
		if (*p != '\n')
			continue;
		const char *q = p + 1;
		if (q < end && *q == '\r')
			q++;
		if (q < end && *q == '\n') {
			body = q + 1;
			end = p;
			break;
		}
	}
	if (body)
		blen = size - (size_t)(body - in);
	cap = size * 2 + 512;
	req = o = malloc(cap);
	for (const char *line = in; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t l = nl ? (size_t)(nl - line) : (size_t)(end - line);
		if (l && line[l - 1] == '\r')
			l--;
		if (!(l >= 15 && strncasecmp(line, "Content-Length:", 15) == 0) &&
		    !(l >= 18 && strncasecmp(line, "Transfer-Encoding:", 18) == 0) &&
		    !(l >= 11 && strncasecmp(line, "Connection:", 11) == 0)) {
			if (l == 25 && strncasecmp(line, "X-Hub-Signature-256: auto", 25) == 0) {
				unsigned char mac[EVP_MAX_MD_SIZE];
				unsigned int ml = 0;
				HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
				     (const unsigned char *)(body ? body : ""), blen, mac, &ml);
				o += sprintf(o, "X-Hub-Signature-256: sha256=");
				for (unsigned i = 0; i < ml; i++)
					o += sprintf(o, "%02x", mac[i]);
			} else {
				memcpy(o, line, l);
				o += l;
			}
			*o++ = '\r';
			*o++ = '\n';
		}
		line = nl ? nl + 1 : end;
	}
	o += sprintf(o, "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	if (blen) {
		size_t used = (size_t)(o - req);
		req = realloc(req, used + blen + 1);
		o = req + used;
		memcpy(o, body, blen);
		o += blen;
	}
	exchange(req, (size_t)(o - req), NULL, 0);
	free(req);
	free(input);
	return 0;
}
