/*
 * The unit-test harness (see harness.h).
 */
#include "harness.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "store/sqlite/sqlite_internal.h"
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

/* ---- backends ---- */

static struct ps_strv pg_databases;

bool ps_test_pg(void)
{
	const char *b = getenv("PS_TEST_BACKEND");
	return b && strcmp(b, "pg") == 0;
}

/* The test server's URL with another database name. */
static char *pg_url_for(const char *db)
{
	PQconninfoOption *opts = PQconninfoParse(getenv("PROJSYNC_TEST_PG_URL"), NULL);
	const char *host = "127.0.0.1", *port = "5432", *user = NULL;
	char *url;

	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "user"))
			user = o->val;
	}
	url = ps_asprintf("postgresql://%s%s%s:%s/%s", user ? user : "", user ? "@" : "", host, port,
			  db);
	PQconninfoFree(opts);
	return url;
}

static PGconn *pg_admin(void)
{
	PGconn *c = PQconnectdb(getenv("PROJSYNC_TEST_PG_URL"));
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "cannot reach the test PostgreSQL: %s", PQerrorMessage(c));
		exit(2);
	}
	return c;
}

static void drop_pg_databases(void)
{
	PGconn *c;

	if (!pg_databases.n)
		return;
	c = pg_admin();
	for (size_t i = 0; i < pg_databases.n; i++) {
		char *sql = ps_asprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_databases.v[i]);
		PQclear(PQexec(c, sql));
		free(sql);
	}
	PQfinish(c);
	ps_strv_dispose(&pg_databases);
}

char *ps_test_store_url(void)
{
	static int counter;
	char *dir, *url, *name, *sql;
	PGconn *c;
	PGresult *r;

	if (!ps_test_pg()) {
		dir = ps_test_tmpdir();
		url = ps_asprintf("%s/projsync.db", dir);
		free(dir);
		return url;
	}
	name = ps_asprintf("ps_unit_%d_%d", (int)getpid(), ++counter);
	c = pg_admin();
	sql = ps_asprintf("CREATE DATABASE %s", name);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "cannot create a test database: %s", PQerrorMessage(c));
		exit(2);
	}
	PQclear(r);
	PQfinish(c);
	free(sql);
	ps_strv_push(&pg_databases, name);
	url = pg_url_for(name);
	free(name);
	return url;
}

static int sqlite_row(void *ud, int n, char **vals, char **names)
{
	(void)names;
	for (int i = 0; i < n; i++)
		ps_buf_printf(ud, "%s|", vals[i] ? vals[i] : "-");
	ps_buf_puts(ud, "\n");
	return 0;
}

char *ps_test_sql(const char *url, const char *sql)
{
	struct ps_buf b;

	ps_buf_init(&b, 1 << 24);
	if (strncmp(url, "postgres", 8) == 0) {
		PGconn *c = PQconnectdb(url);
		PGresult *r = PQexec(c, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			for (int i = 0; i < PQntuples(r); i++) {
				for (int k = 0; k < PQnfields(r); k++)
					ps_buf_printf(&b, "%s|", PQgetisnull(r, i, k) ? "-"
							: PQgetvalue(r, i, k));
				ps_buf_puts(&b, "\n");
			}
		} else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			ps_buf_printf(&b, "error: %s", PQerrorMessage(c));
		}
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db = NULL;
		char *err = NULL;
		/* ps_unhex/ps_hex: the store's triggers and id columns need them (sqlite.c). */
		if (sqlite3_open(url, &db) != SQLITE_OK || ps_sqlite_functions(db) != SQLITE_OK ||
		    sqlite3_exec(db, sql, sqlite_row, &b, &err) != SQLITE_OK)
			ps_buf_printf(&b, "error: %s", err ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		sqlite3_close(db);
	}
	return ps_buf_take(&b, NULL);
}

int ps_test_main(int argc, char **argv, const struct ps_test *tests, size_t n)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	int ran = 0;

	if (ps_test_pg() && !getenv("PROJSYNC_TEST_PG_URL")) {
		const char *ci = getenv("CI");
		/* Under make test and in CI the server is part of the run: its absence is a
		 * failure, not a reason to skip. */
		if ((ci && strcmp(ci, "true") == 0) || getenv("PROJSYNC_TEST_REQUIRE_PG")) {
			fprintf(stderr, "PROJSYNC_TEST_PG_URL is not set: no PostgreSQL for the "
				"PostgreSQL run (make test starts one with tests/pg/with-pg)\n");
			return 1;
		}
		printf("SKIP: PostgreSQL tests need PROJSYNC_TEST_PG_URL (tests/pg/with-pg sets it)\n");
		return 77;
	}
	atexit(cleanup_tmpdirs);
	atexit(drop_pg_databases);
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

int ps_test_files_add(void *ud, const struct ps_file *f)
{
	struct ps_test_files *l = ud;

	l->v = ps_realloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n] = *f;
	l->v[l->n++].path = ps_strdup(f->path);
	return 0;
}

void ps_test_files_dispose(struct ps_test_files *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
