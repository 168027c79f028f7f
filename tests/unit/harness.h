/*
 * A minimal test harness: each test file defines `static void test_x(void)` functions and lists
 * them in a `PS_TESTS(...)` table. A failed check prints file:line and the values, counts the
 * failure and lets the test go on; the process exits non-zero if any check failed.
 * Helpers make temporary directories and real git repositories with the git command line.
 */
#ifndef PS_TEST_HARNESS_H
#define PS_TEST_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

extern int ps_test_failures;

#define CHECK(cond) do { if (!(cond)) { ps_test_failures++; \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); if (_a != _b) { \
	ps_test_failures++; fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
	__FILE__, __LINE__, #a, #b, _a, _b); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (!_a || !_b || strcmp(_a, _b) != 0) { ps_test_failures++; \
	fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
	#a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); } } while (0)
/* For calls returning 0 / negative PS_E*: prints the error message on failure. */
#define CHECK_OK(call) do { int _rc = (call); if (_rc != 0) { ps_test_failures++; \
	fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, _rc, \
	ps_error_message()); } } while (0)

struct ps_test { const char *name; void (*fn)(void); };
#define PS_TEST(fn) { #fn, fn }
int ps_test_main(int argc, char **argv, const struct ps_test *tests, size_t n);
#define PS_TESTS(...) \
	int main(int argc, char **argv) { \
		static const struct ps_test tests[] = { __VA_ARGS__ }; \
		return ps_test_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0])); \
	}

/*
 * Backends. A test binary runs against SQLite, or against PostgreSQL when PS_TEST_BACKEND=pg
 * (tests/unit/meson.build registers the store tests a second time that way); the server is the
 * private one `make test` starts (tests/pg/with-pg), named by PROJSYNC_TEST_PG_URL.
 */
bool ps_test_pg(void);
/* A location for a new, empty store: a file in a new temp dir, or a new database. */
char *ps_test_store_url(void);
/* Runs SQL on a store's database directly (not through projsync) and returns every row, each
 * column followed by '|' and each row by '\n' (NULL as "-"); "error: ..." on failure. */
char *ps_test_sql(const char *url, const char *sql);

/* A fresh temporary directory (malloc'd path), removed at exit unless PS_TEST_KEEP is set. */
char *ps_test_tmpdir(void);
/* Runs a shell command (printf-style) in `dir`; returns its exit status. Output goes to stderr. */
int ps_test_sh(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs a shell command in `dir` and returns its stdout (malloc'd, trailing newline trimmed). */
char *ps_test_sh_out(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes a file below dir (creating parents). */
void ps_test_write(const char *dir, const char *rel, const char *content);
/* Makes an empty git repository in a new temp dir with user config set; returns its path. */
char *ps_test_git_init(void);
/* `git add -A && git commit -m msg` in repo; returns the new commit SHA (malloc'd). */
char *ps_test_git_commit(const char *repo, const char *msg);

/* The files a snapshot listing hands out (ps_file_cb), each copied with its path: pass
 * ps_test_files_add as the callback and the list as its data; free with ps_test_files_dispose. */
struct ps_file;
struct ps_test_files {
	struct ps_file *v;
	size_t n;
};
int ps_test_files_add(void *ud, const struct ps_file *f);
void ps_test_files_dispose(struct ps_test_files *l);

#endif
