/*
 * The server's structured log (src/server/log.c): logfmt and JSON records, escaping of every
 * value (no value can end a line or forge a field), invalid UTF-8, redaction of registered
 * secrets and of URL credentials.
 */
#include "harness.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/log.h"

/* 2026-01-02T03:04:05.006Z */
#define T0 INT64_C(1767323045006)

static void test_logfmt_plain_and_quoted_values(void)
{
	char *l;

	ps_log_set_format(PS_LOG_LOGFMT);
	l = ps_log_format_line(T0, "info", "sync started",
			       (struct ps_log_field[]){ PS_LOG_STR("project", "web"),
							PS_LOG_INT("sync_id", 7),
							PS_LOG_STR("branch", "feature/a b"),
							PS_LOG_STR("empty", ""),
							PS_LOG_STR("null", NULL) }, 5);
	CHECK_STR(l, "time=2026-01-02T03:04:05.006Z level=info msg=\"sync started\" project=web "
		  "sync_id=7 branch=\"feature/a b\" empty=\"\" null=\"\"\n");
	free(l);
	/* A value cannot end the line or add a field: newline, quote, '=' and backslash. */
	l = ps_log_format_line(T0, "error", "x",
			       (struct ps_log_field[]){ PS_LOG_STR("error",
					"a\nlevel=info msg=\"forged\"\\\r\x01\x7f") }, 1);
	CHECK_STR(l, "time=2026-01-02T03:04:05.006Z level=error msg=x "
		  "error=\"a\\nlevel=info msg=\\\"forged\\\"\\\\\\r\\u0001\\u007f\"\n");
	free(l);
}

static void test_json_records_parse(void)
{
	const char *odd = "caf\xc3\xa9 \xff\xfe bad \xed\xa0\x80 \xe2\x82\xac\n\"}";
	json_error_t err;
	json_t *j;
	char *l;

	ps_log_set_format(PS_LOG_JSON);
	l = ps_log_format_line(T0, "warn", "sync cancelled",
			       (struct ps_log_field[]){ PS_LOG_STR("project", "web"),
							PS_LOG_INT("duration_ms", -3),
							PS_LOG_STR("error", odd) }, 3);
	CHECK(strchr(l, '\n') == l + strlen(l) - 1);
	j = json_loads(l, 0, &err);
	CHECK(j != NULL);
	if (j) {
		CHECK_STR(json_string_value(json_object_get(j, "time")), "2026-01-02T03:04:05.006Z");
		CHECK_STR(json_string_value(json_object_get(j, "level")), "warn");
		CHECK_STR(json_string_value(json_object_get(j, "msg")), "sync cancelled");
		CHECK_STR(json_string_value(json_object_get(j, "project")), "web");
		CHECK(json_is_integer(json_object_get(j, "duration_ms")));
		CHECK_INT(json_integer_value(json_object_get(j, "duration_ms")), -3);
		/* Valid UTF-8 kept, each invalid byte one U+FFFD. */
		CHECK_STR(json_string_value(json_object_get(j, "error")),
			  "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
			  "\xe2\x82\xac\n\"}");
	}
	json_decref(j);
	free(l);
	ps_log_set_format(PS_LOG_LOGFMT);
}

static void test_secrets_and_url_credentials_are_redacted(void)
{
	char *l;

	ps_log_set_format(PS_LOG_LOGFMT);
	ps_log_add_secret("s3cret-token");
	ps_log_add_secret("ab");  /* too short to be a secret: ignored */
	ps_log_add_secret(NULL);
	l = ps_log_format_line(T0, "error", "failed: s3cret-token",
			       (struct ps_log_field[]){
				       PS_LOG_STR("error", "cannot open /tmp/s3cret-token/x; "
						  "https://x-access-token:ghp_abc@github.com/o/r.git "
						  "and ssh://git@host:22/r and http://h/p@q"),
				       PS_LOG_STR("about", "ab abab") }, 2);
	CHECK(strstr(l, "s3cret-token") == NULL);
	CHECK(strstr(l, "ghp_abc") == NULL);
	CHECK(strstr(l, "msg=\"failed: [redacted]\"") != NULL);
	CHECK(strstr(l, "/tmp/[redacted]/x") != NULL);
	CHECK(strstr(l, "https://[redacted]@github.com/o/r.git") != NULL);
	CHECK(strstr(l, "ssh://[redacted]@host:22/r") != NULL);
	CHECK(strstr(l, "http://h/p@q") != NULL);  /* '@' in the path is no credential */
	CHECK(strstr(l, "about=\"ab abab\"") != NULL);
	free(l);
	ps_log_clear_secrets();
	l = ps_log_format_line(T0, "info", "s3cret-token", NULL, 0);
	CHECK(strstr(l, "msg=s3cret-token") != NULL);
	free(l);
}

static void test_long_values_are_cut(void)
{
	char *big = malloc(100000), *l;

	memset(big, 'x', 99999);
	big[99999] = 0;
	ps_log_set_format(PS_LOG_LOGFMT);
	l = ps_log_format_line(T0, "info", "m", (struct ps_log_field[]){ PS_LOG_STR("v", big) }, 1);
	CHECK(strlen(l) < 4200);
	CHECK(strstr(l, "xx...\n") != NULL);
	free(l);
	free(big);
}

static void test_parse_format(void)
{
	enum ps_log_format f = PS_LOG_LOGFMT;

	CHECK(ps_log_parse_format("json", &f) && f == PS_LOG_JSON);
	CHECK(ps_log_parse_format("logfmt", &f) && f == PS_LOG_LOGFMT);
	CHECK(!ps_log_parse_format("JSON", &f));
	CHECK(!ps_log_parse_format("", &f));
	CHECK(!ps_log_parse_format(NULL, &f));
}

static void mhd(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ps_log_mhd(NULL, fmt, ap);
	va_end(ap);
}

/* libmicrohttpd out of descriptors logs each accept it retries in a busy loop: the same message
 * is written at most once a second, and the next record of it (or of another message) says how
 * many were left out. */
static void test_mhd_repeats_are_counted_not_written(void)
{
	FILE *cap = tmpfile();
	int saved = dup(STDERR_FILENO);
	char line[512];
	int lines = 0, counted = 0;

	CHECK(cap != NULL && saved >= 0);
	fflush(stderr);
	dup2(fileno(cap), STDERR_FILENO);
	ps_log_set_format(PS_LOG_LOGFMT);
	for (int i = 0; i < 10000; i++)
		mhd("Error accepting connection: %s\n", "Too many open files");
	mhd("Server reached connection limit. Closing inbound connection.\n");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(cap);
	while (fgets(line, sizeof(line), cap)) {
		lines++;
		if (strstr(line, "Too many open files") && strstr(line, "repeated="))
			counted = atoi(strstr(line, "repeated=") + 9);
	}
	fclose(cap);
	/* The first, the count of the rest (time permitting, a second-later one), the other. */
	CHECK(lines >= 3 && lines <= 12);
	CHECK(counted > 0 && counted < 10000);
}

PS_TESTS(PS_TEST(test_logfmt_plain_and_quoted_values), PS_TEST(test_json_records_parse),
	 PS_TEST(test_secrets_and_url_credentials_are_redacted), PS_TEST(test_long_values_are_cut),
	 PS_TEST(test_parse_format), PS_TEST(test_mhd_repeats_are_counted_not_written))
