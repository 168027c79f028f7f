/*
 * The server's structured log (log.h): logfmt or JSON lines on stderr, every value escaped and
 * cleaned of secrets before it is written.
 */
#include "server/log.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define MAX_SECRETS 8
/* Bytes of one value kept before "...": with a handful of fields per record, this bounds a
 * line, so the buffers below never reach their limit (which would set the thread's error). */
#define MAX_VALUE 4096

static enum ps_log_format format = PS_LOG_LOGFMT;
static char *secrets[MAX_SECRETS];
static size_t nsecrets;

bool ps_log_parse_format(const char *s, enum ps_log_format *out)
{
	if (s && strcmp(s, "logfmt") == 0)
		*out = PS_LOG_LOGFMT;
	else if (s && strcmp(s, "json") == 0)
		*out = PS_LOG_JSON;
	else
		return false;
	return true;
}

void ps_log_set_format(enum ps_log_format f)
{
	format = f;
}

enum ps_log_format ps_log_get_format(void)
{
	return format;
}

void ps_log_add_secret(const char *secret)
{
	if (!secret || strlen(secret) < 4 || nsecrets == MAX_SECRETS)
		return;
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			return;
	secrets[nsecrets++] = ps_strdup(secret);
}

void ps_log_clear_secrets(void)
{
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i]);
	nsecrets = 0;
}

/* Replaces the user:password part of every URL (https://TOKEN@host/...) with [redacted]:
 * error messages of git and curl quote the URL they failed on. */
static void redact_userinfo(struct ps_buf *out, const char *s)
{
	const char *p = s;

	for (;;) {
		const char *sep = strstr(p, "://"), *auth, *end, *at = NULL;
		if (!sep) {
			ps_buf_puts(out, p);
			return;
		}
		auth = sep + 3;
		for (end = auth; *end && !strchr("/?#\"' \t\r\n<>", *end); end++)
			if (*end == '@')
				at = end;
		ps_buf_append(out, p, (size_t)(auth - p));
		if (at && at > auth) {
			ps_buf_puts(out, "[redacted]");
			ps_buf_append(out, at, (size_t)(end - at));
		} else {
			ps_buf_append(out, auth, (size_t)(end - auth));
		}
		p = end;
	}
}

/* The value as it may be written: cut at MAX_VALUE, secrets and URL credentials redacted.
 * Redaction runs before the cut so a secret straddling it cannot leak its first half. */
static char *clean_value(const char *v)
{
	struct ps_buf a, b;
	char *s;
	size_t len;

	ps_buf_init(&a, SIZE_MAX / 2);
	redact_userinfo(&a, v);
	s = ps_buf_take(&a, &len);
	if (!s)
		s = ps_strdup("");
	for (size_t i = 0; i < nsecrets; i++) {
		const char *hit, *from = s;
		size_t slen = strlen(secrets[i]);
		if (!strstr(s, secrets[i]))
			continue;
		ps_buf_init(&b, SIZE_MAX / 2);
		while ((hit = strstr(from, secrets[i]))) {
			ps_buf_append(&b, from, (size_t)(hit - from));
			ps_buf_puts(&b, "[redacted]");
			from = hit + slen;
		}
		ps_buf_puts(&b, from);
		free(s);
		s = ps_buf_take(&b, &len);
	}
	if (strlen(s) > MAX_VALUE)
		strcpy(s + MAX_VALUE - 3, "...");
	return s;
}

/* Length of the valid UTF-8 sequence at p (1 for ASCII), 0 when the bytes are not one. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;  /* no UTF-16 surrogates */
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static bool logfmt_bare(const char *s)
{
	if (!s[0])
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f || *p >= 0x80)
			return false;
	return true;
}

/* A double-quoted string with JSON's escapes: control characters as \n, \t, \r or \u00XX,
 * bytes that are not UTF-8 as \ufffd. Valid in both JSON and logfmt. */
static void put_quoted(struct ps_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;

	ps_buf_puts(b, "\"");
	while (*p) {
		size_t n;
		switch (*p) {
		case '"': ps_buf_puts(b, "\\\""); p++; continue;
		case '\\': ps_buf_puts(b, "\\\\"); p++; continue;
		case '\n': ps_buf_puts(b, "\\n"); p++; continue;
		case '\r': ps_buf_puts(b, "\\r"); p++; continue;
		case '\t': ps_buf_puts(b, "\\t"); p++; continue;
		default: break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			char esc[7] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15], 0 };
			ps_buf_puts(b, esc);
			p++;
		} else if ((n = utf8_len(p)) == 0) {
			ps_buf_puts(b, "\\ufffd");
			p++;
		} else {
			ps_buf_append(b, p, n);
			p += n;
		}
	}
	ps_buf_puts(b, "\"");
}

static void put_field(struct ps_buf *b, bool first, const char *key,
		      const struct ps_log_field *f, const char *plain)
{
	if (format == PS_LOG_JSON) {
		ps_buf_printf(b, "%s\"%s\":", first ? "{" : ",", key);
		if (f && f->type == PS_LOG_FIELD_INT) {
			ps_buf_printf(b, "%lld", (long long)f->i);
		} else {
			char *v = clean_value(plain ? plain : "");
			put_quoted(b, v);
			free(v);
		}
		return;
	}
	ps_buf_printf(b, "%s%s=", first ? "" : " ", key);
	if (f && f->type == PS_LOG_FIELD_INT) {
		ps_buf_printf(b, "%lld", (long long)f->i);
	} else {
		char *v = clean_value(plain ? plain : "");
		if (logfmt_bare(v))
			ps_buf_puts(b, v);
		else
			put_quoted(b, v);
		free(v);
	}
}

char *ps_log_format_line(int64_t now_ms, const char *level, const char *msg,
			 const struct ps_log_field *fields, size_t n)
{
	struct ps_buf b;
	char when[40];
	char *line;

	ps_time_rfc3339(now_ms, when, sizeof(when));
	ps_buf_init(&b, SIZE_MAX / 2);
	put_field(&b, true, "time", NULL, when);
	put_field(&b, false, "level", NULL, level);
	put_field(&b, false, "msg", NULL, msg);
	for (size_t i = 0; i < n; i++)
		put_field(&b, false, fields[i].key, &fields[i], fields[i].s);
	if (format == PS_LOG_JSON)
		ps_buf_puts(&b, "}");
	ps_buf_puts(&b, "\n");
	line = ps_buf_take(&b, NULL);
	return line;
}

void ps_log_fields(const char *level, const char *msg, const struct ps_log_field *fields,
		   size_t n)
{
	char *line = ps_log_format_line(ps_now_ms(), level, msg, fields, n);

	/* One write per line so lines from different threads do not interleave. */
	fwrite(line, 1, strlen(line), stderr);
	free(line);
}

void ps_log_message(const char *level, const char *text)
{
	ps_log_fields(level, text, NULL, 0);
}

/* libmicrohttpd repeats a message for every failed attempt: out of file descriptors it logs
 * each accept it retries in a busy loop, a hundred thousand lines in seconds, which would push
 * every other record out of the journal (journald drops what exceeds its rate limit). The same
 * message is written at most once a second; the next record of it counts those left out. */
static pthread_mutex_t mhd_mu = PTHREAD_MUTEX_INITIALIZER;
static char mhd_last[1024];
static int64_t mhd_last_ms;
static int64_t mhd_repeats;

void ps_log_mhd(void *cls, const char *fmt, va_list ap)
{
	char text[1024];
	size_t n;
	int64_t now = ps_mono_ms(), repeats = 0;
	bool same;

	(void)cls;
	vsnprintf(text, sizeof(text), fmt, ap);
	n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = 0;
	pthread_mutex_lock(&mhd_mu);
	same = strcmp(text, mhd_last) == 0;
	if (same && now - mhd_last_ms < 1000) {
		mhd_repeats++;
		pthread_mutex_unlock(&mhd_mu);
		return;
	}
	if (same)
		repeats = mhd_repeats;
	else if (mhd_repeats > 0)
		/* Another message: the count of the one before is not lost. */
		ps_log_kv("warn", "libmicrohttpd", PS_LOG_STR("detail", mhd_last),
			  PS_LOG_INT("repeated", mhd_repeats));
	mhd_repeats = 0;
	mhd_last_ms = now;
	memcpy(mhd_last, text, n + 1);
	pthread_mutex_unlock(&mhd_mu);
	if (repeats > 0)
		ps_log_kv("warn", "libmicrohttpd", PS_LOG_STR("detail", text),
			  PS_LOG_INT("repeated", repeats));
	else
		ps_log_kv("warn", "libmicrohttpd", PS_LOG_STR("detail", text));
}
