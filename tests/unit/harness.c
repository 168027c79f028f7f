/*
 * The unit-test harness (see harness.h).
 */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

int ps_test_failures;

static struct ps_strv tmpdirs;

static void cleanup_tmpdirs(void)
{
	if (!getenv("PS_TEST_KEEP"))
		for (size_t i = 0; i < tmpdirs.n; i++)
			ps_test_sh("/", "rm -rf '%s'", tmpdirs.v[i]);
	ps_strv_dispose(&tmpdirs);
}

int ps_test_main(int argc, char **argv, const struct ps_test *tests, size_t n)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	int ran = 0;

	atexit(cleanup_tmpdirs);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
	for (size_t i = 0; i < n; i++) {
		int before = ps_test_failures;
		if (only && strcmp(only, tests[i].name) != 0)
			continue;
		tests[i].fn();
		ran++;
		printf("%s %s\n", ps_test_failures == before ? "ok  " : "FAIL", tests[i].name);
	}
	printf("%d tests, %d failed checks\n", ran, ps_test_failures);
	return ps_test_failures ? 1 : 0;
}

char *ps_test_tmpdir(void)
{
	char tmpl[] = "/tmp/ps-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	if (!d) {
		perror("mkdtemp");
		exit(2);
	}
	ps_strv_push(&tmpdirs, d);
	return ps_strdup(d);
}

static char *vformat(const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		exit(2);
	return s;
}

int ps_test_sh(const char *dir, const char *fmt, ...)
{
	va_list ap;
	char *cmd, *full;
	int rc;

	va_start(ap, fmt);
	cmd = vformat(fmt, ap);
	va_end(ap);
	full = ps_asprintf("cd '%s' && ( %s ) 1>&2", dir, cmd);
	rc = system(full);
	free(cmd);
	free(full);
	return rc;
}

char *ps_test_sh_out(const char *dir, const char *fmt, ...)
{
	va_list ap;
	char *cmd, *full;
	struct ps_buf b;
	char chunk[4096];
	size_t n;
	FILE *p;

	va_start(ap, fmt);
	cmd = vformat(fmt, ap);
	va_end(ap);
	full = ps_asprintf("cd '%s' && ( %s )", dir, cmd);
	p = popen(full, "r");
	ps_buf_init(&b, (size_t)1 << 30);
	while (p && (n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		ps_buf_append(&b, chunk, n);
	if (p)
		pclose(p);
	free(cmd);
	free(full);
	while (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	return ps_buf_take(&b, NULL);
}

void ps_test_write(const char *dir, const char *rel, const char *content)
{
	char *path = ps_asprintf("%s/%s", dir, rel);
	char *slash = strrchr(path, '/');
	FILE *f;

	*slash = '\0';
	ps_mkdir_p(path);
	*slash = '/';
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(content, f);
	fclose(f);
	free(path);
}

char *ps_test_git_init(void)
{
	char *d = ps_test_tmpdir();
	ps_test_sh(d, "git init -q -b main . && git config user.name Test && "
		      "git config user.email test@example.com && git config commit.gpgsign false");
	return d;
}

char *ps_test_git_commit(const char *repo, const char *msg)
{
	ps_test_sh(repo, "git add -A && git commit -q --allow-empty -m '%s'", msg);
	return ps_test_sh_out(repo, "git rev-parse HEAD");
}
