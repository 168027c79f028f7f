/*
 * Implementation of the small shared helpers declared in util.h.
 */
#include "util/util.h"
#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
	fputs("projsync: out of memory\n", stderr);
	abort();
}

void *ps_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *ps_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *ps_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *ps_strdup(const char *s)
{
	return s ? ps_strndup(s, strlen(s)) : NULL;
}

char *ps_strndup(const char *s, size_t n)
{
	char *p = ps_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int ps_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *ps_prefix_end(const char *p, size_t len)
{
	char *u;

	while (len > 0 && (unsigned char)p[len - 1] == 0xff)
		len--;
	if (len == 0)
		return NULL;
	u = ps_strndup(p, len);
	u[len - 1] = (char)((unsigned char)u[len - 1] + 1);
	return u;
}

char *ps_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

int64_t ps_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ps_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ps_time_rfc3339(int64_t ms, char *out, size_t outlen)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char base[32];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outlen, "%s.%03dZ", base, (int)(ms % 1000));
}

void ps_git_blob_sha(const void *data, size_t len, char out[PS_SHA_HEX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char header[32];
	int hlen = snprintf(header, sizeof(header), "blob %zu", len);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx)
		oom();
	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	EVP_DigestUpdate(ctx, header, (size_t)hlen + 1); /* with its NUL */
	if (len)
		EVP_DigestUpdate(ctx, data, len);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < 20; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[40] = '\0';
}

char *ps_percent_encode(const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = ps_malloc(3 * n + 1), *o = out;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p) || strchr(keep, *p)) {
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

/* True when the scheme that ends at `sep` (its "://") takes a login name before '@', no
 * secret: ssh (git@host, also git+ssh, ssh+git) and PostgreSQL (a role, which messages about a
 * store name on purpose). Elsewhere (https://TOKEN@host) a name alone may be the token. */
static bool scheme_has_login(const char *text, const char *sep)
{
	const char *b = sep;

	while (b > text && (isalnum((unsigned char)b[-1]) || strchr("+.-", b[-1])))
		b--;
	for (const char *q = b; q + 3 <= sep; q++)
		if (strncasecmp(q, "ssh", 3) == 0)
			return true;
	return (size_t)(sep - b) >= 8 && strncasecmp(b, "postgres", 8) == 0;
}

#define REDACTED "[redacted]"
#define MAX_REDACTED 8

char *ps_redact_userinfo(const char *s)
{
	struct ps_buf out, again;
	char *secrets[MAX_REDACTED], *text;
	size_t nsecrets = 0, len;
	const char *p = s;

	ps_buf_init(&out, SIZE_MAX / 2);
	for (;;) {
		const char *sep = strstr(p, "://"), *auth, *end, *at = NULL, *from;
		if (!sep) {
			ps_buf_puts(&out, p);
			break;
		}
		auth = sep + 3;
		for (end = auth; *end && !strchr("/?#\"' \t\r\n<>", *end); end++)
			if (*end == '@')
				at = end;
		from = auth;
		if (at && scheme_has_login(s, sep)) {
			const char *colon = memchr(auth, ':', (size_t)(at - auth));
			from = colon ? colon + 1 : at;
		}
		ps_buf_append(&out, p, (size_t)(from - p));
		if (at && at > from) {
			if (nsecrets < MAX_REDACTED)
				secrets[nsecrets++] = ps_strndup(from, (size_t)(at - from));
			ps_buf_puts(&out, REDACTED);
			ps_buf_append(&out, at, (size_t)(end - at));
		} else {
			ps_buf_append(&out, from, (size_t)(end - from));
		}
		p = end;
	}
	text = ps_buf_take(&out, &len);
	if (!text)
		text = ps_strdup("");
	/* The same credentials quoted without their scheme ("unable to look up user:pw@host",
	 * git's words after the URL): wherever they stand before an '@'. */
	for (size_t i = 0; i < nsecrets; i++) {
		size_t n = strlen(secrets[i]);
		const char *from = text, *hit;

		ps_buf_init(&again, SIZE_MAX / 2);
		while ((hit = strstr(from, secrets[i]))) {
			if (hit[n] == '@') {
				ps_buf_append(&again, from, (size_t)(hit - from));
				ps_buf_puts(&again, REDACTED);
			} else {
				ps_buf_append(&again, from, (size_t)(hit - from) + n);
			}
			from = hit + n;
		}
		ps_buf_puts(&again, from);
		free(text);
		text = ps_buf_take(&again, &len);
		if (!text)
			text = ps_strdup("");
		free(secrets[i]);
	}
	return text;
}

bool ps_sha_valid(const char *s)
{
	if (!s)
		return false;
	for (int i = 0; i < 40; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[40] == '\0';
}

size_t ps_utf8_first_bad(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (u[i]) {
		unsigned c = u[i], lo = 0x80, hi = 0xbf;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3;
		else
			return i;
		/* The second byte's range rules out overlong forms, surrogates and > U+10FFFF. */
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (u[i + 1] < lo || u[i + 1] > hi)
			return i;
		for (size_t j = 2; j <= k; j++)
			if (u[i + j] < 0x80 || u[i + j] > 0xbf)
				return i;
		i += k + 1;
	}
	return SIZE_MAX;
}

void ps_buf_init(struct ps_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void ps_buf_dispose(struct ps_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int ps_buf_append(struct ps_buf *b, const void *data, size_t len)
{
	if (len > b->max || b->len > b->max - len)
		return ps_error_set(PS_ETOOBIG, NULL, "buffer limit of %zu bytes exceeded", b->max);
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		b->data = ps_realloc(b->data, cap);
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int ps_buf_puts(struct ps_buf *b, const char *s)
{
	return ps_buf_append(b, s, strlen(s));
}

int ps_buf_printf(struct ps_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	rc = ps_buf_append(b, s, (size_t)n);
	free(s);
	return rc;
}

char *ps_buf_take(struct ps_buf *b, size_t *len)
{
	char *d = b->data ? b->data : ps_strdup("");
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

void ps_strv_push(struct ps_strv *sv, const char *s)
{
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = ps_realloc(sv->v, sv->cap * sizeof(char *));
	}
	sv->v[sv->n++] = ps_strdup(s);
}

bool ps_strv_has(const struct ps_strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

void ps_strv_dispose(struct ps_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

const char *ps_hostname(void)
{
	static char name[256];
	/* A test hook: lets one machine play several hosts (the cluster tests' stalled node). */
	const char *test = getenv("PROJSYNC_TEST_HOST");

	if (test && *test)
		return test;
	if (!name[0] && gethostname(name, sizeof(name) - 1) != 0)
		snprintf(name, sizeof(name), "localhost");
	return name;
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks since boot. The command name (field
 * 2) may hold spaces and parentheses, so the count starts after its last ')'. */
static long long proc_start_time(int pid)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *p;
	long long start = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	if (p)
		start = strtoll(p + 1, NULL, 10);
	return start;
}

int ps_process_identity(int pid, char *out, size_t outlen)
{
	/* A server asks for its own identity at every sync it runs (each is owned by it): a
	 * process's start time never changes, so it is read from /proc once per thread (a fork
	 * has another pid and reads again). */
	static _Thread_local int self_pid;
	static _Thread_local long long self_start;
	long long start;

	if (pid > 0 && pid == self_pid) {
		start = self_start;
	} else {
		start = proc_start_time(pid);
		if (pid == (int)getpid()) {
			self_pid = pid;
			self_start = start;
		}
	}
	snprintf(out, outlen, "%d:%lld", pid, start);
	return 0;
}

bool ps_process_alive(const char *identity)
{
	int pid = 0;
	long long start = -1;

	if (sscanf(identity, "%d:%lld", &pid, &start) < 1 || pid <= 0)
		return false;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return false;
	/* The pid exists; it is the same process only if it started at the same tick. */
	if (start >= 0) {
		long long now = proc_start_time(pid);
		if (now >= 0 && now != start)
			return false;
	}
	return true;
}

int ps_mkdir_p(const char *path)
{
	char *p = ps_strdup(path);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0700) != 0 && errno != EEXIST) {
				rc = ps_error_set(PS_EIO, "mkdir_failed", "cannot create directory %s: %s",
						  p, strerror(errno));
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}
