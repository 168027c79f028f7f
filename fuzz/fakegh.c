/* See fakegh.h. */
#include "fakegh.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct answer {
	char kind[16];
	unsigned status;
	char *headers;   /* "Name: value\n" lines */
	char *body;
	size_t len;
	struct answer *next;
};

static struct MHD_Daemon *daemon_;
static char base[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct answer *queue_head, *queue_tail;

static const char *kind_of(const char *url)
{
	/* /repos/OWNER/REPO[/rest] */
	const char *p;
	int slashes = 0;

	if (strncmp(url, "/repos/", 7) != 0)
		return "other";
	for (p = url + 7; *p && slashes < 2; p++)
		if (*p == '/')
			slashes++;
	if (slashes < 2)
		return "repo";
	if (!*p)
		return "repo";
	if (strncmp(p, "branches/", 9) == 0)
		return "branch";
	if (strncmp(p, "branches", 8) == 0)
		return "branches";
	if (strncmp(p, "commits/", 8) == 0)
		return "commit";
	if (strncmp(p, "git/trees/", 10) == 0)
		return "tree";
	if (strncmp(p, "git/blobs/", 10) == 0)
		return "blob";
	if (strncmp(p, "compare/", 8) == 0)
		return "compare";
	if (strncmp(p, "tarball/", 8) == 0)
		return "tarball";
	return "other";
}

static struct answer *take(const char *kind)
{
	struct answer *a, *prev = NULL;

	pthread_mutex_lock(&mu);
	for (a = queue_head; a && strcmp(a->kind, kind) != 0; a = a->next)
		prev = a;
	if (a) {
		if (prev)
			prev->next = a->next;
		else
			queue_head = a->next;
		if (queue_tail == a)
			queue_tail = prev;
	}
	pthread_mutex_unlock(&mu);
	return a;
}

static void answer_free(struct answer *a)
{
	if (!a)
		return;
	free(a->headers);
	free(a->body);
	free(a);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	static int marker;
	struct answer *a;
	struct MHD_Response *r;
	enum MHD_Result res;
	unsigned status = 404;

	if (!*con_cls) {
		*con_cls = &marker;
		return MHD_YES;
	}
	*upload_data_size = 0;
	a = take(kind_of(url));
	if (!a) {
		static const char nf[] = "{\"message\":\"Not Found\"}";
		r = MHD_create_response_from_buffer(sizeof(nf) - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Content-Type", "application/json");
	} else {
		r = MHD_create_response_from_buffer(a->len, a->body, MHD_RESPMEM_MUST_COPY);
		status = a->status;
		for (char *line = a->headers, *next; line && *line; line = next) {
			char *colon, *v;
			next = strchr(line, '\n');
			if (next)
				*next++ = 0;
			if (!(colon = strchr(line, ':')))
				continue;
			*colon = 0;
			for (v = colon + 1; *v == ' '; v++)
				;
			/* Framing is libmicrohttpd's business; a redirect must stay on the fake. */
			if (strcasecmp(line, "Content-Length") == 0 ||
			    strcasecmp(line, "Transfer-Encoding") == 0 ||
			    strcasecmp(line, "Connection") == 0 ||
			    (strcasecmp(line, "Location") == 0 &&
			     strncmp(v, base, strlen(base)) != 0))
				continue;
			MHD_add_response_header(r, line, v);
		}
	}
	res = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	answer_free(a);
	return res;
}

/* Nagle's algorithm against curl's delayed ACKs costs 40 ms a request: off. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	const union MHD_ConnectionInfo *ci;
	int one = 1;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED &&
	    (ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD)))
		setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void fakegh_start(void)
{
	const union MHD_DaemonInfo *info;

	if (daemon_)
		return;
	daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
				   on_request, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				   MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
	if (!daemon_) {
		fprintf(stderr, "fakegh: cannot start\n");
		abort();
	}
	info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", info->port);
	setenv("PROJSYNC_GITHUB_API", base, 1);
	unsetenv("GITHUB_TOKEN");
	/* Every wait the GitHub source could make is cut to (almost) nothing. */
	setenv("PROJSYNC_GITHUB_RETRIES", "1", 1);
	setenv("PROJSYNC_GITHUB_BACKOFF_MS", "0", 1);
	setenv("PROJSYNC_GITHUB_MAX_WAIT", "0", 1);
	setenv("PROJSYNC_GITHUB_TIMEOUT_MS", "3000", 1);
	setenv("PROJSYNC_GITHUB_CONCURRENCY", "2", 1);
}

const char *fakegh_base(void)
{
	return base;
}

void fakegh_add(const char *kind, unsigned status, const char *headers, const void *body,
		size_t len)
{
	struct answer *a = calloc(1, sizeof(*a));

	snprintf(a->kind, sizeof(a->kind), "%s", kind);
	/* libmicrohttpd refuses what is not a status; 1xx would leave curl waiting. */
	a->status = status >= 200 && status <= 599 ? status : 200;
	a->headers = strdup(headers ? headers : "");
	a->body = malloc(len + 1);
	memcpy(a->body, body, len);
	a->len = len;
	pthread_mutex_lock(&mu);
	if (queue_tail)
		queue_tail->next = a;
	else
		queue_head = a;
	queue_tail = a;
	pthread_mutex_unlock(&mu);
}

/* The input with every "{API}" replaced by the base URL. */
static char *expand(const uint8_t *data, size_t size, size_t *outlen)
{
	size_t blen = strlen(base), cap = size + 1, n = 0;
	char *out = malloc(cap);

	for (size_t i = 0; i < size;) {
		if (i + 5 <= size && memcmp(data + i, "{API}", 5) == 0) {
			if (n + blen + 1 > cap)
				out = realloc(out, cap = cap * 2 + blen);
			memcpy(out + n, base, blen);
			n += blen;
			i += 5;
			continue;
		}
		if (n + 2 > cap)
			out = realloc(out, cap = cap * 2);
		out[n++] = (char)data[i++];
	}
	out[n] = 0;
	*outlen = n;
	return out;
}

static const char *find_sep(const char *p, const char *end)
{
	for (const char *q = p; q + 4 <= end; q++) {
		q = memchr(q, '@', (size_t)(end - q));
		if (!q || q + 4 > end)
			return NULL;
		if ((q == p || q[-1] == '\n') && memcmp(q, "@@@ ", 4) == 0)
			return q;
	}
	return NULL;
}

void fakegh_load(const uint8_t *data, size_t size)
{
	size_t len;
	char *s = expand(data, size, &len);
	const char *end = s + len, *p = find_sep(s, end);

	while (p) {
		char kind[16] = "", headers[4096] = "";
		unsigned status = 200;
		const char *line_end = memchr(p, '\n', (size_t)(end - p));
		const char *next, *body, *body_end;
		size_t hl = 0;

		if (!line_end)
			break;
		{
			char first[64];
			size_t fl = (size_t)(line_end - p) < sizeof(first) - 1 ? (size_t)(line_end - p)
									      : sizeof(first) - 1;
			memcpy(first, p, fl);
			first[fl] = 0;
			if (sscanf(first, "@@@ %15s %u", kind, &status) < 1)
				kind[0] = 0;
		}
		/* Headers up to the first empty line. */
		body = line_end + 1;
		while (body < end && *body != '\n') {
			const char *nl = memchr(body, '\n', (size_t)(end - body));
			size_t l = nl ? (size_t)(nl - body) : (size_t)(end - body);
			if (hl + l + 2 < sizeof(headers) && !memchr(body, 0, l)) {
				memcpy(headers + hl, body, l);
				hl += l;
				headers[hl++] = '\n';
				headers[hl] = 0;
			}
			body = nl ? nl + 1 : end;
		}
		if (body < end)
			body++;
		next = find_sep(body, end);
		body_end = next ? next : end;
		/* The newline before the next separator belongs to the separator. */
		if (next && body_end > body && body_end[-1] == '\n')
			body_end--;
		if (kind[0])
			fakegh_add(kind, status, headers, body, (size_t)(body_end - body));
		p = next;
	}
	free(s);
}

void fakegh_reset(void)
{
	pthread_mutex_lock(&mu);
	while (queue_head) {
		struct answer *a = queue_head;
		queue_head = a->next;
		answer_free(a);
	}
	queue_tail = NULL;
	pthread_mutex_unlock(&mu);
}
