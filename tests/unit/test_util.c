/*
 * Shared helpers: git blob ids, bounded buffers, times, process identities, the error slot and
 * JSON strings for non-UTF-8 paths.
 */
#include "harness.h"

#include <jansson.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/json.h"
#include "util/error.h"
#include "util/util.h"

static void test_blob_sha_matches_git(void)
{
	char *dir = ps_test_tmpdir();
	char sha[PS_SHA_HEX];
	const char bin[] = "a\0b\xff\n";
	char *want;
	FILE *f;

	ps_git_blob_sha("", 0, sha);
	CHECK_STR(sha, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	char *path = ps_asprintf("%s/bin", dir);
	f = fopen(path, "wb");
	fwrite(bin, 1, sizeof(bin) - 1, f);
	fclose(f);
	want = ps_test_sh_out(dir, "git hash-object bin");
	ps_git_blob_sha(bin, sizeof(bin) - 1, sha);
	CHECK_STR(sha, want);
	CHECK(ps_sha_valid(sha));
	CHECK(!ps_sha_valid("E69DE29BB2D1D6434B8B29AE775AD8C2E48C5391"));
	CHECK(!ps_sha_valid("e69de29"));
	free(want);
	free(path);
	free(dir);
}

static void test_buffer_has_a_hard_limit(void)
{
	struct ps_buf b;

	ps_buf_init(&b, 8);
	CHECK_OK(ps_buf_puts(&b, "12345678"));
	CHECK_INT(ps_buf_puts(&b, "9"), PS_ETOOBIG);
	CHECK_INT(b.len, 8);
	CHECK_STR(b.data, "12345678");
	ps_buf_dispose(&b);
}

static void test_rfc3339(void)
{
	char buf[40];

	ps_time_rfc3339(1764095976123LL, buf, sizeof(buf));
	CHECK_STR(buf, "2025-11-25T18:39:36.123Z");
}

static void test_process_identity(void)
{
	char me[64], dead[64];
	pid_t child;

	ps_process_identity(getpid(), me, sizeof(me));
	CHECK(ps_process_alive(me));
	child = fork();
	if (child == 0)
		_exit(0);
	ps_process_identity(child, dead, sizeof(dead));
	waitpid(child, NULL, 0);
	CHECK(!ps_process_alive(dead));
	/* Same pid, different start time: another process (pid reuse). */
	char reused[64];
	snprintf(reused, sizeof(reused), "%d:1", getpid());
	CHECK(!ps_process_alive(reused));
}

static void test_error_slot(void)
{
	CHECK_INT(ps_error_set(PS_ENOTFOUND, NULL, "project '%s' not found", "x"), PS_ENOTFOUND);
	CHECK_STR(ps_error_slug(), "not_found");
	ps_error_wrap(PS_EFAIL, "while syncing: ");
	CHECK_STR(ps_error_message(), "while syncing: project 'x' not found");
	CHECK_INT(ps_error_code(), PS_ENOTFOUND);
	ps_error_clear();
	CHECK_STR(ps_error_message(), "");
}

static void test_json_string_of_invalid_utf8(void)
{
	json_t *j = ps_json_string("caf\xc3\xa9 \xff end");
	CHECK_STR(json_string_value(j), "caf\xc3\xa9 \xef\xbf\xbd end");
	json_decref(j);
	j = ps_json_string(NULL);
	CHECK(json_is_null(j));
	json_decref(j);
}

static void test_strv_has(void)
{
	struct ps_strv sv = { 0 };

	CHECK(!ps_strv_has(&sv, ""));
	ps_strv_push(&sv, "a");
	ps_strv_push(&sv, "");
	ps_strv_push(&sv, "b\xef\xbf\xbd");
	CHECK(ps_strv_has(&sv, "a") && ps_strv_has(&sv, "") && ps_strv_has(&sv, "b\xef\xbf\xbd"));
	CHECK(!ps_strv_has(&sv, "A") && !ps_strv_has(&sv, "ab") && !ps_strv_has(&sv, "b"));
	ps_strv_dispose(&sv);
}

/* Credentials of a source URL never reach a message or a listing (test_audit_walk.py). */
static void check_redacted(const char *in, const char *want)
{
	char *out = ps_redact_userinfo(in);
	CHECK_STR(out, want);
	free(out);
}

static void test_redact_userinfo(void)
{
	check_redacted("https://user:pw@host/x.git", "https://[redacted]@host/x.git");
	check_redacted("https://ghp_TOKEN@github.com/o/r", "https://[redacted]@github.com/o/r");
	check_redacted("ssh://git@host/x.git", "ssh://git@host/x.git");
	check_redacted("store postgresql://role:pw@db/x", "store postgresql://role:[redacted]@db/x");
	check_redacted("store postgres://role@db/x", "store postgres://role@db/x");
	check_redacted("git+ssh://git:pw@host/x", "git+ssh://git:[redacted]@host/x");
	check_redacted("git@host:x.git /abs/path https://host/a@b", "git@host:x.git /abs/path "
		       "https://host/a@b");
	/* git's own words quote them again without the scheme. */
	check_redacted("cannot fetch from git://u:pw@h:1/r: unable to look up u:pw@h:1 (u:pw)",
		       "cannot fetch from git://[redacted]@h:1/r: unable to look up [redacted]@h:1 "
		       "(u:pw)");
	check_redacted("'http://a:b@x' and 'http://c@y'", "'http://[redacted]@x' and "
		       "'http://[redacted]@y'");
	check_redacted("", "");
	/* A message cut at its bound is cut after the redaction, never inside a password. */
	char long_msg[2048];
	memset(long_msg, 'x', sizeof(long_msg));
	memcpy(long_msg + 1000, "https://user:secretpassword@h/", 30);
	long_msg[sizeof(long_msg) - 1] = 0;
	ps_error_set(PS_EUPSTREAM, NULL, "%s", long_msg);
	CHECK(strstr(ps_error_message(), "secret") == NULL);
	ps_error_clear();
}

/* A prefix's range ends where no string with it can sort: the listings by prefix rely on it. */
static void test_prefix_end(void)
{
	char *u;

	CHECK_STR((u = ps_prefix_end("src", 3)), "srd");
	free(u);
	CHECK_STR((u = ps_prefix_end("a\xff\xff", 3)), "b");
	free(u);
	CHECK_STR((u = ps_prefix_end("a/b\x7f", 4)), "a/b\x80");
	free(u);
	CHECK(ps_prefix_end("\xff\xff", 2) == NULL && ps_prefix_end("", 0) == NULL);
	CHECK_STR((u = ps_prefix_end("abc", 2)), "ac"); /* only the first len bytes count */
	free(u);
}

PS_TESTS(PS_TEST(test_blob_sha_matches_git), PS_TEST(test_strv_has), PS_TEST(test_prefix_end), PS_TEST(test_buffer_has_a_hard_limit),
	 PS_TEST(test_rfc3339), PS_TEST(test_process_identity), PS_TEST(test_error_slot),
	 PS_TEST(test_json_string_of_invalid_utf8), PS_TEST(test_redact_userinfo))
