/*
 * The store's data rules (docs/architecture.md §4), each with a test that fails if the rule is
 * broken: atomic visibility, one chain, versioned rows, content addressing, crash safety (reap),
 * the marker moving only on success, and schema migrations.
 */
#include "harness.h"

#include <signal.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/diff.h"
#include "model/tree.h"
#include "store/backend.h"
#include "store/blobcodec.h"
#include "store/codeindex.h"
#include "store/sqlite/sqlite_internal.h"
#include "store/store.h"
#include "util/error.h"

static struct ps_store *open_store(char **path_out)
{
	char *path = ps_test_store_url();
	struct ps_store *s = NULL;

	CHECK_OK(ps_store_open(&s, path, 0));
	if (path_out)
		*path_out = path;
	else
		free(path);
	return s;
}

static struct ps_project *add_project(struct ps_store *s, const char *name)
{
	struct ps_project p = { .name = (char *)name, .source = (char *)"/nowhere" };
	struct ps_project *out = NULL;

	CHECK_OK(ps_store_project_add(s, &p));
	ps_strv_dispose(&p.memory_globs);
	CHECK_OK(ps_store_project_get(s, name, &out));
	return out;
}

static struct ps_owner me(void)
{
	static char proc[64];
	ps_process_identity(getpid(), proc, sizeof(proc));
	return (struct ps_owner){ ps_hostname(), proc, 60000 };
}

static void fake_sha(char out[PS_SHA_HEX], const char *content)
{
	ps_git_blob_sha(content, strlen(content), out);
}

static struct ps_change change(enum ps_change_status st, const char *path, const char *content)
{
	struct ps_change c = { .status = st, .path = (char *)path, .mode = PS_MODE_FILE };
	if (content) {
		fake_sha(c.sha, content);
		c.size = (int64_t)strlen(content);
	} else {
		c.mode = 0;
		c.size = -1;
	}
	return c;
}

/* Runs one whole sync directly against the store: create, stage, finalize. */
static int64_t commit_sync(struct ps_store *s, const struct ps_project *p, struct ps_change *c,
			   size_t n, const char *commit)
{
	struct ps_owner o = me();
	struct ps_sync *y = NULL;
	int64_t id;

	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
	if (!y)
		return 0;
	CHECK_OK(ps_store_files_stage(s, y, c, n));
	y->commit = ps_strdup(commit);
	ps_changes_count(c, n, &y->counts);
	CHECK_OK(ps_store_sync_finalize(s, y, c, n, NULL));
	id = y->id;
	ps_sync_free(y);
	return id;
}

struct listing {
	char text[4096];
};

static int list_cb(void *ud, const struct ps_file *f)
{
	struct listing *l = ud;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof(l->text) - len, "%s:%.7s ", f->path, f->sha);
	return 0;
}

static char *snapshot(struct ps_store *s, int64_t project, int64_t at)
{
	struct listing l = { "" };
	int rc = ps_store_snapshot_each(s, project, at, NULL, list_cb, &l);
	return rc < 0 ? ps_asprintf("error %d", rc) : ps_strdup(l.text);
}

static void expect_snapshot(struct ps_store *s, int64_t project, int64_t at, const char *want)
{
	char *got = snapshot(s, project, at);
	CHECK_STR(got, want);
	free(got);
}

static char *short_sha(const char *content)
{
	char sha[PS_SHA_HEX];
	fake_sha(sha, content);
	return ps_strndup(sha, 7);
}

/* Rule 1: readers never see a half-applied sync. */
static void test_atomic_visibility(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "vis");
	struct ps_change c1[] = { change(PS_CHANGE_ADDED, "a.txt", "one") };
	struct ps_change c2[] = { change(PS_CHANGE_MODIFIED, "a.txt", "two"),
				  change(PS_CHANGE_ADDED, "b.txt", "bee") };
	struct ps_owner o = me();
	struct ps_sync *y = NULL;
	char *one = short_sha("one"), *two = short_sha("two"), *bee = short_sha("bee");
	char want1[128], want2[128];

	commit_sync(s, p, c1, 1, "c1");
	snprintf(want1, sizeof(want1), "a.txt:%s ", one);
	snprintf(want2, sizeof(want2), "a.txt:%s b.txt:%s ", two, bee);

	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
	CHECK_OK(ps_store_files_stage(s, y, c2, 2));
	/* Staged, not finalized: the previous snapshot is still the answer. */
	expect_snapshot(s, p->id, 0, want1);
	struct ps_file f = { 0 };
	CHECK_INT(ps_store_snapshot_file(s, p->id, 0, "b.txt", &f), PS_ENOTFOUND);
	/* A snapshot of the running sync itself is not readable. */
	char *running = snapshot(s, p->id, y->id);
	CHECK(strncmp(running, "error", 5) == 0);
	free(running);

	/* A finalize that fails half-way (inside an outer transaction rolled back) shows nothing. */
	CHECK_OK(ps_store_begin(s));
	CHECK_OK(ps_store_sync_finalize(s, y, c2, 2, NULL));
	ps_store_rollback(s);
	expect_snapshot(s, p->id, 0, want1);

	y->status = PS_SYNC_RUNNING;
	CHECK_OK(ps_store_sync_finalize(s, y, c2, 2, NULL));
	expect_snapshot(s, p->id, 0, want2);
	ps_sync_free(y);
	free(one);
	free(two);
	free(bee);
	ps_project_free(p);
	ps_store_free(s);
}

/* Rule 2: one chain, at most one queued/running sync per project. */
static void test_one_chain(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "chain"), *q = add_project(s, "other");
	struct ps_owner o = me();
	struct ps_sync *a = NULL, *b = NULL, *qa = NULL;
	struct ps_sync **list = NULL;
	size_t n = 0;

	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &a));
	CHECK_INT(a->previous_sync_id, 0);
	CHECK_INT(ps_store_sync_create(s, p->id, "main", "cli", &o, &b), PS_ECONFLICT);
	CHECK_INT(ps_store_sync_create(s, p->id, "main", "api", NULL, &b), PS_ECONFLICT);
	/* Another project is independent. */
	CHECK_OK(ps_store_sync_create(s, q->id, "main", "cli", &o, &qa));
	CHECK_OK(ps_store_sync_fail(s, a, PS_SYNC_FAILED, "boom", "boom", NULL));
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", NULL, &b));
	CHECK_INT(b->status, PS_SYNC_QUEUED);
	CHECK_INT(b->previous_sync_id, a->id);
	CHECK_OK(ps_store_sync_list(s, p->id, 0, 0, &list, &n));
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(list[0]->id, b->id);
		CHECK_INT(list[1]->id, a->id);
	}
	for (size_t i = 0; i < n; i++)
		ps_sync_free(list[i]);
	free(list);

	/* The schema itself refuses a fork of the chain, whoever writes. */
	char *sql = ps_asprintf(
		"INSERT INTO syncs (project_id, branch, status, previous_sync_id, created_at) "
		"VALUES (%lld, 'main', 'failed', %lld, 0)", (long long)p->id, (long long)a->id);
	char *out = ps_test_sql(path, sql);
	CHECK(strncmp(out, "error", 5) == 0 && strcasestr(out, "unique") != NULL);
	free(out);
	free(sql);
	sql = ps_asprintf("INSERT INTO syncs (project_id, branch, status, created_at) "
			  "VALUES (%lld, 'main', 'failed', 0)", (long long)p->id);
	out = ps_test_sql(path, sql);
	CHECK(strncmp(out, "error", 5) == 0 && strcasestr(out, "unique") != NULL);
	free(out);
	free(sql);

	ps_sync_free(a);
	ps_sync_free(b);
	ps_sync_free(qa);
	ps_project_free(p);
	ps_project_free(q);
	ps_store_free(s);
	free(path);
}

/* Rule 3: versioned rows; any past snapshot can be listed and any two compared; storage grows
 * with changes, not with the number of syncs. */
static void test_versioned_rows(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "ver");
	struct ps_change c1[] = { change(PS_CHANGE_ADDED, "a", "A1"), change(PS_CHANGE_ADDED, "b", "B1"),
				  change(PS_CHANGE_ADDED, "c", "C1") };
	struct ps_change c2[] = { change(PS_CHANGE_MODIFIED, "a", "A2"),
				  change(PS_CHANGE_DELETED, "b", NULL) };
	struct ps_change c4[] = { change(PS_CHANGE_ADDED, "b", "B1") };
	struct ps_change *d = NULL;
	size_t n = 0;
	int64_t s1, s2, s3, s4;

	s1 = commit_sync(s, p, c1, 3, "c1");
	s2 = commit_sync(s, p, c2, 2, "c2");
	s3 = commit_sync(s, p, NULL, 0, "c2"); /* an up-to-date sync */
	s4 = commit_sync(s, p, c4, 1, "c4");

	char *a1 = short_sha("A1"), *a2 = short_sha("A2"), *b1 = short_sha("B1"), *c1s = short_sha("C1");
	char w1[128], w2[128], w4[128];
	snprintf(w1, sizeof(w1), "a:%s b:%s c:%s ", a1, b1, c1s);
	snprintf(w2, sizeof(w2), "a:%s c:%s ", a2, c1s);
	snprintf(w4, sizeof(w4), "a:%s b:%s c:%s ", a2, b1, c1s);
	expect_snapshot(s, p->id, s1, w1);
	expect_snapshot(s, p->id, s2, w2);
	expect_snapshot(s, p->id, s3, w2);
	expect_snapshot(s, p->id, s4, w4);
	expect_snapshot(s, p->id, 0, w4);

	CHECK_OK(ps_store_diff(s, p->id, s1, s2, &d, &n));
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(d[0].path, "a");
		CHECK_INT(d[0].status, PS_CHANGE_MODIFIED);
		CHECK_STR(d[1].path, "b");
		CHECK_INT(d[1].status, PS_CHANGE_DELETED);
	}
	ps_changes_free(d, n);
	/* b deleted then re-added with the same content: no change between s1 and s4 for b. */
	CHECK_OK(ps_store_diff(s, p->id, s1, s4, &d, &n));
	CHECK_INT(n, 1);
	ps_changes_free(d, n);
	/* Reversed order reverses the statuses. */
	CHECK_OK(ps_store_diff(s, p->id, s2, s1, &d, &n));
	CHECK_INT(n, 2);
	if (n == 2)
		CHECK_INT(d[1].status, PS_CHANGE_ADDED);
	ps_changes_free(d, n);
	/* From the empty snapshot: everything is added. */
	CHECK_OK(ps_store_diff(s, p->id, 0, s1, &d, &n));
	CHECK_INT(n, 3);
	ps_changes_free(d, n);

	/* One row per change: 3 + 1 + 0 + 1. */
	char *count = ps_test_sql(path, "SELECT count(*) FROM file_versions");
	CHECK_STR(count, "5|\n");
	free(count);

	/* Prefix listing. */
	struct listing l = { "" };
	CHECK_OK(ps_store_snapshot_each(s, p->id, 0, "b", list_cb, &l));
	char wb[64];
	snprintf(wb, sizeof(wb), "b:%s ", b1);
	CHECK_STR(l.text, wb);

	free(a1);
	free(a2);
	free(b1);
	free(c1s);
	ps_project_free(p);
	ps_store_free(s);
	free(path);
}

/* Rule 4: blobs keyed by git blob SHA-1, verified, stored once. */
static void test_content_addressing(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	char sha[PS_SHA_HEX];
	const char bin[] = "bin\0ary\xff";
	void *data = NULL;
	size_t len = 0;
	bool have[2];
	const char *shas[2];

	ps_git_blob_sha("hello\n", 6, sha);
	/* The id git itself gives "hello\n". */
	CHECK_STR(sha, "ce013625030ba8dba906f756967f9e9ca394464a");
	CHECK_OK(ps_store_blob_put(s, sha, "hello\n", 6));
	CHECK_OK(ps_store_blob_put(s, sha, "hello\n", 6));
	CHECK_INT(ps_store_blob_put(s, sha, "hellO\n", 6), PS_EINVAL);
	CHECK_STR(ps_error_slug(), "sha_mismatch");
	CHECK_OK(ps_store_blob_get(s, sha, &data, &len));
	CHECK_INT(len, 6);
	CHECK(data && memcmp(data, "hello\n", 6) == 0);
	free(data);

	ps_git_blob_sha(bin, sizeof(bin) - 1, sha);
	CHECK_OK(ps_store_blob_put(s, sha, bin, sizeof(bin) - 1));
	CHECK_OK(ps_store_blob_get(s, sha, &data, &len));
	CHECK_INT(len, sizeof(bin) - 1);
	CHECK(data && memcmp(data, bin, len) == 0);
	free(data);

	shas[0] = sha;
	shas[1] = "0000000000000000000000000000000000000000";
	CHECK_OK(ps_store_blob_have(s, shas, 2, have));
	CHECK(have[0] && !have[1]);
	CHECK_INT(ps_store_blob_get(s, shas[1], &data, &len), PS_ENOTFOUND);

	char *count = ps_test_sql(path, "SELECT count(*) FROM blobs");
	CHECK_STR(count, "2|\n");
	free(count);
	ps_store_free(s);
	free(path);
}

/* Rule 5: a dead owner's sync is marked interrupted and its rows vanish; a live owner's sync is
 * never taken, even past its lease. */
static void test_crash_reap(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "crash");
	struct ps_change c1[] = { change(PS_CHANGE_ADDED, "a", "A1") };
	struct ps_change c2[] = { change(PS_CHANGE_ADDED, "z", "Z") };
	struct ps_sync *y = NULL, *got = NULL;
	char dead_proc[64];
	int reaped = -1;
	pid_t child;

	commit_sync(s, p, c1, 1, "c1");

	/* A live owner on this host with an expired lease keeps its sync. */
	struct ps_owner live = me();
	live.lease_ms = -1000;
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &live, &y));
	CHECK_OK(ps_store_reap(s, p->id, &reaped));
	CHECK_INT(reaped, 0);
	CHECK_OK(ps_store_sync_get(s, y->id, &got));
	CHECK_INT(got->status, PS_SYNC_RUNNING);
	ps_sync_free(got);
	CHECK_OK(ps_store_sync_fail(s, y, PS_SYNC_FAILED, "x", "x", NULL));
	ps_sync_free(y);

	/* A dead process on this host loses it at once, lease or not. */
	child = fork();
	if (child == 0)
		_exit(0);
	ps_process_identity(child, dead_proc, sizeof(dead_proc));
	waitpid(child, NULL, 0);
	struct ps_owner dead = { ps_hostname(), dead_proc, 600000 };
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &dead, &y));
	CHECK_OK(ps_store_files_stage(s, y, c2, 1));
	CHECK_OK(ps_store_reap(s, p->id, &reaped));
	CHECK_INT(reaped, 1);
	CHECK_OK(ps_store_sync_get(s, y->id, &got));
	CHECK_INT(got->status, PS_SYNC_FAILED);
	CHECK_STR(got->error_code, "interrupted");
	ps_sync_free(got);
	/* Its final event closes the stream. */
	struct ps_stored_event *evs = NULL;
	size_t nev = 0;
	CHECK_OK(ps_store_event_list(s, y->id, 0, 0, &evs, &nev));
	CHECK_INT(nev, 1);
	if (nev == 1)
		CHECK_INT(evs[0].kind, PS_EVENT_FAILED);
	ps_stored_events_free(evs, nev);
	/* The dead sync's finalize can no longer land. */
	CHECK_INT(ps_store_sync_finalize(s, y, c2, 1, NULL), PS_ECONFLICT);
	ps_sync_free(y);
	char *a1 = short_sha("A1"), want[64];
	snprintf(want, sizeof(want), "a:%s ", a1);
	expect_snapshot(s, p->id, 0, want);
	free(a1);

	/* Another host: only the lease counts. */
	struct ps_owner far_ok = { "some-other-host", "1:1", 600000 };
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &far_ok, &y));
	CHECK_OK(ps_store_reap(s, 0, &reaped));
	CHECK_INT(reaped, 0);
	CHECK_OK(ps_store_sync_fail(s, y, PS_SYNC_CANCELLED, "c", "c", NULL));
	ps_sync_free(y);
	struct ps_owner far_expired = { "some-other-host", "1:1", -1 };
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &far_expired, &y));
	CHECK_OK(ps_store_reap(s, 0, &reaped));
	CHECK_INT(reaped, 1);
	ps_sync_free(y);

	/* The next sync succeeds. */
	struct ps_change c3[] = { change(PS_CHANGE_ADDED, "n", "N") };
	CHECK(commit_sync(s, p, c3, 1, "c3") > 0);
	ps_project_free(p);
	ps_store_free(s);
}

/* Rules 6 and 7: the marker moves only on success; failures are counted and kept. */
static void test_marker_moves_only_on_success(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "marker"), *after = NULL;
	struct ps_change c1[] = { change(PS_CHANGE_ADDED, "a", "A1") };
	struct ps_owner o = me();
	struct ps_sync *y = NULL, *got = NULL;
	int64_t s1 = commit_sync(s, p, c1, 1, "commit1");

	for (int i = 0; i < 2; i++) {
		CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
		y->phase = PS_PHASE_FETCH;
		CHECK_OK(ps_store_sync_fail(s, y, PS_SYNC_FAILED, "upstream", "network down", NULL));
		ps_sync_free(y);
	}
	CHECK_OK(ps_store_project_get(s, "marker", &after));
	CHECK_STR(after->last_commit, "commit1");
	CHECK_INT(after->last_sync_id, s1);
	CHECK_INT(after->failures_in_row, 2);
	CHECK_STR(after->last_error_message, "network down");
	ps_project_free(after);
	CHECK_OK(ps_store_sync_last_succeeded(s, p->id, 0, &got));
	CHECK_INT(got->id, s1);
	ps_sync_free(got);

	struct ps_sync **list = NULL;
	size_t n = 0;
	CHECK_OK(ps_store_sync_list(s, p->id, 1, 0, &list, &n));
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_STR(ps_phase_name(list[0]->phase), "fetch");
		CHECK_STR(list[0]->error_code, "upstream");
		ps_sync_free(list[0]);
	}
	free(list);

	struct ps_change c2[] = { change(PS_CHANGE_ADDED, "b", "B") };
	commit_sync(s, p, c2, 1, "commit2");
	CHECK_OK(ps_store_project_get(s, "marker", &after));
	CHECK_STR(after->last_commit, "commit2");
	CHECK_INT(after->failures_in_row, 0);
	CHECK(after->last_error_code == NULL);
	ps_project_free(after);
	ps_project_free(p);
	ps_store_free(s);
}

/* Rule 8: migrations on open; a newer schema and foreign databases are refused. */
static void test_migrations(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	int from = -1, to = -1;
	char *out;

	CHECK_OK(ps_store_migrate(s, &from, &to));
	CHECK_INT(from, ps_store_schema_version());
	CHECK_INT(to, ps_store_schema_version());
	ps_store_free(s);

	out = ps_test_sql(path, ps_test_pg() ? "UPDATE projsync_schema SET version = 999"
					     : "PRAGMA user_version = 999");
	CHECK_STR(out, "");
	free(out);
	s = NULL;
	CHECK_INT(ps_store_open(&s, path, 0), PS_ESTORE);
	CHECK(strstr(ps_error_message(), "newer") != NULL);
	CHECK(s == NULL);
	CHECK_INT(ps_store_open(&s, path, PS_STORE_NO_MIGRATE), PS_ESTORE);
	CHECK(strstr(ps_error_message(), "newer") != NULL);

	char *foreign = ps_test_store_url();
	out = ps_test_sql(foreign, "CREATE TABLE t(x integer)");
	CHECK_STR(out, "");
	free(out);
	CHECK_INT(ps_store_open(&s, foreign, 0), PS_ESTORE);
	CHECK(strstr(ps_error_message(), "not a projsync store") != NULL);
	out = ps_test_sql(foreign, "SELECT count(*) FROM t");
	CHECK_STR(out, "0|\n"); /* untouched */
	free(out);
	free(foreign);

	if (!ps_test_pg()) {
		char *dir = ps_test_tmpdir(), *garbage = ps_asprintf("%s/garbage.db", dir);
		ps_test_write(dir, "garbage.db", "this is not a database at all, not even close.........");
		CHECK_INT(ps_store_open(&s, garbage, 0), PS_ESTORE);
		CHECK(strstr(ps_error_message(), "not a valid projsync database") != NULL);
		char *content = ps_test_sh_out(dir, "cat garbage.db");
		CHECK_STR(content, "this is not a database at all, not even close.........");
		free(content);
		free(garbage);
		free(dir);
	}

	/* An unreachable database: one message naming the host, never the password. */
	CHECK_INT(ps_store_open(&s, "postgresql://someone:s3cr3t-pw@127.0.0.1:1/db", 0), PS_ESTORE);
	CHECK(strstr(ps_error_message(), "127.0.0.1") != NULL);
	CHECK(strstr(ps_error_message(), "s3cr3t") == NULL);
	CHECK(strchr(ps_error_message(), '\n') == NULL);
	char *shown = ps_store_location("postgres://someone:s3cr3t-pw@db.example:5433/projsync");
	CHECK_STR(shown, "postgresql://someone@db.example:5433/projsync");
	free(shown);
	free(path);
}

/* Both backends carry the same numbered schema steps, so a version means the same in both. */
static void test_backends_share_schema_numbers(void)
{
	extern const size_t ps_migrations_count, ps_pg_migrations_count;
	CHECK_INT(ps_migrations_count, ps_pg_migrations_count);
}

/* A server older than PostgreSQL 14 cannot run migration 0016 (SQL-standard function bodies):
 * the store refuses it by version, with one message that says so, instead of a syntax error
 * halfway through the migrations. The suite's server is recent, so the decision is tested on
 * version numbers as libpq's PQserverVersion gives them. */
static void test_pg_server_version(void)
{
	const char *where = "postgresql://u@db.example/x";

	CHECK_INT(ps_pg_server_supported(150004, where), 0);
	CHECK_INT(ps_pg_server_supported(140000, where), 0);
	CHECK_INT(ps_pg_server_supported(170002, where), 0);

	CHECK_INT(ps_pg_server_supported(130011, where), PS_ESTORE);
	CHECK_STR(ps_error_slug(), "server_too_old");
	CHECK_STR(ps_error_message(), "cannot open store postgresql://u@db.example/x: PostgreSQL 14 "
				      "or later is required (the server is 13.11)");
	CHECK_INT(ps_pg_server_supported(139999, where), PS_ESTORE);
	CHECK(strstr(ps_error_message(), "(the server is 13.9999)") != NULL);
	/* Before 10 the number has three parts: 90624 is 9.6.24. */
	CHECK_INT(ps_pg_server_supported(90624, where), PS_ESTORE);
	CHECK(strstr(ps_error_message(), "(the server is 9.6.24)") != NULL);
	ps_error_clear();
}

/* ---- directory trees rebuilt from the rows (migration 0020) ---- */

struct at_store {
	struct ps_store *s;
	int64_t project, at;
};

static int load_stored_dir(void *ud, const char *path, struct ps_tree_dir *out)
{
	struct at_store *a = ud;
	return ps_store_dir_tree_get(a->s, a->project, a->at, path, out);
}

/* Every directory of the snapshot at `at`, hashed from its full listing: what the rebuilt
 * ones must be, byte for byte. */
static void expect_dirs(struct ps_store *s, int64_t project, int64_t at, size_t want_dirs)
{
	struct ps_test_files files = { 0 };
	struct ps_tree_dir *dirs = NULL;
	size_t ndirs = 0;

	CHECK_OK(ps_store_snapshot_each(s, project, at, NULL, ps_test_files_add, &files));
	CHECK_OK(ps_tree_build(files.v, files.n, &dirs, &ndirs));
	CHECK_INT(ndirs, want_dirs);
	for (size_t i = 0; i < ndirs; i++) {
		struct ps_tree_dir got = { 0 };

		CHECK_OK(ps_store_dir_tree_get(s, project, at, dirs[i].path, &got));
		CHECK_STR(got.path, dirs[i].path);
		CHECK_STR(got.sha, dirs[i].sha);
		CHECK_INT(got.len, dirs[i].len);
		CHECK(got.len == dirs[i].len && memcmp(got.body, dirs[i].body, got.len) == 0);
		free(got.path);
		free(got.body);
	}
	ps_tree_dirs_free(dirs, ndirs);
	ps_test_files_dispose(&files);
}

/* One sync as core/sync.c makes it: the directories on the changed paths re-hashed from the
 * base's stored ones (rebuilt from the rows), staged with the files. */
static int64_t tree_sync(struct ps_store *s, const struct ps_project *p, int64_t base,
			 struct ps_change *c, size_t n)
{
	struct at_store a = { s, p->id, base };
	struct ps_owner o = me();
	struct ps_sync *y = NULL;
	struct ps_tree_dir *dirs = NULL;
	size_t ndirs = 0;
	int64_t id;

	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
	if (!y)
		return 0;
	y->base_sync_id = base; /* what core/sync.c sets */
	CHECK_OK(ps_store_files_stage(s, y, c, n));
	CHECK_OK(ps_tree_update(c, n, load_stored_dir, &a, &dirs, &ndirs));
	CHECK_OK(ps_store_dir_trees_stage(s, y, dirs, ndirs));
	ps_tree_dirs_free(dirs, ndirs);
	y->commit = ps_strdup("c");
	ps_changes_count(c, n, &y->counts);
	CHECK_OK(ps_store_sync_finalize(s, y, c, n, NULL));
	id = y->id;
	ps_sync_free(y);
	return id;
}

static struct ps_change with_mode(struct ps_change c, uint32_t mode)
{
	c.mode = mode;
	if (mode == PS_MODE_COMMIT)
		c.size = -1;
	return c;
}

/* A directory's entries are rebuilt from its files' rows and its subdirectories' ids: names
 * sorting around '/' ("b-x", "b.y" < "b/" < "b0"), every mode, directories several levels
 * deep that change, empty, disappear and come back, a rename between directories; every
 * directory of every snapshot, old ones included, is the one its files make. */
static void test_dir_trees_rebuilt(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "trees");
	struct ps_change c1[] = {
		change(PS_CHANGE_ADDED, "a", "1"), change(PS_CHANGE_ADDED, "a-b", "2"),
		change(PS_CHANGE_ADDED, "a.c", "3"), change(PS_CHANGE_ADDED, "a0", "4"),
		change(PS_CHANGE_ADDED, "b/x", "5"), change(PS_CHANGE_ADDED, "b/c/d/e", "6"),
		change(PS_CHANGE_ADDED, "b/c/d/f", "7"), change(PS_CHANGE_ADDED, "b-x", "8"),
		change(PS_CHANGE_ADDED, "b.y", "9"), change(PS_CHANGE_ADDED, "b0", "10"),
		change(PS_CHANGE_ADDED, "b.d/g", "11"),
		with_mode(change(PS_CHANGE_ADDED, "l", "b/x"), PS_MODE_LINK),
		with_mode(change(PS_CHANGE_ADDED, "x", "#!"), PS_MODE_EXEC),
		with_mode(change(PS_CHANGE_ADDED, "m", "sub"), PS_MODE_COMMIT),
		change(PS_CHANGE_ADDED, "deep/1/2/3/4", "12"),
	};
	struct ps_change c2[] = {
		change(PS_CHANGE_MODIFIED, "a0", "4'"), change(PS_CHANGE_DELETED, "b/c/d/e", NULL),
		change(PS_CHANGE_ADDED, "b/c/n", "13"), change(PS_CHANGE_RENAMED, "b.e/g", "11"),
		change(PS_CHANGE_DELETED, "deep/1/2/3/4", NULL),
	};
	struct ps_change c3[] = {
		change(PS_CHANGE_ADDED, "deep/1/x", "14"), change(PS_CHANGE_DELETED, "b/c/d/f", NULL),
		with_mode(change(PS_CHANGE_MODIFIED, "x", "#!2"), PS_MODE_EXEC),
		change(PS_CHANGE_ADDED, "b/c/d0", "15"),
	};
	struct ps_tree_dir none = { 0 };
	int64_t s1, s2, s3;

	c2[3].previous_path = (char *)"b.d/g";
	s1 = tree_sync(s, p, 0, c1, sizeof(c1) / sizeof(*c1));
	expect_dirs(s, p->id, s1, 9); /* "", b, b/c, b/c/d, b.d, deep, deep/1, deep/1/2, .../3 */
	s2 = tree_sync(s, p, s1, c2, sizeof(c2) / sizeof(*c2));
	expect_dirs(s, p->id, s2, 5); /* "", b, b/c, b/c/d, b.e */
	s3 = tree_sync(s, p, s2, c3, sizeof(c3) / sizeof(*c3));
	expect_dirs(s, p->id, s3, 6); /* "", b, b/c, b.e, deep, deep/1 */
	expect_dirs(s, p->id, s1, 9);
	expect_dirs(s, p->id, s2, 5);
	/* A directory the snapshot does not have: not found, as before. */
	CHECK_INT(ps_store_dir_tree_get(s, p->id, s3, "b/c/d", &none), PS_ENOTFOUND);
	CHECK_INT(ps_store_dir_tree_get(s, p->id, s2, "deep", &none), PS_ENOTFOUND);
	ps_error_clear();
	ps_project_free(p);
	ps_store_free(s);
}

/* Schema 26 keeps a file's directory by id and its name: the full paths still list in byte
 * order (not (directory, name) order: "a/b.c" < "a/b/x" < "a/c"), a page that stops early is the
 * start of that order, prefixes may end inside a name or at a directory, a path reads back by
 * itself, a modification supersedes by directory and name, and paths no source writes (a
 * leading '/', empty components, a trailing '/', bytes that are not UTF-8) come back as stored.
 * Both backends. */
static int stop_after_3(void *ud, const struct ps_file *f)
{
	struct ps_test_files *l = ud;

	ps_test_files_add(l, f);
	return l->n == 3 ? 7 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_paths_in_byte_order(void)
{
	static const char *const paths[] = {
		"a/b.c", "a/b/x", "a/c", "a", "a-b", "a.c", "a0", "b/c/d/e", "b.d/f", "b/x",
		"README", "/etc/evil", "/x", "a//b", "a/", "//y", "z/\xff\xfe/q", "z/\xff",
		"deep/1/2/3/4/5", "deep/1/2/x", "deep.x/f", "deep/1-a/g",
	};
	static const char *const prefixes[] = {
		"a", "a/", "a/b", "a/b/", "a.", "b", "/", "/e", "//", "a//", "z/\xff", "deep/1/2/",
		"deep/1/2/3/4/5", "nothing", "R", "deep", "deep/",
	};
	enum { N = sizeof(paths) / sizeof(*paths) };
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "order");
	struct ps_change c1[N], c2[2];
	const char *sorted[N];
	struct ps_test_files all = { 0 }, page = { 0 };
	int64_t s1, s2;

	for (size_t i = 0; i < N; i++) {
		c1[i] = change(PS_CHANGE_ADDED, paths[i], paths[i]);
		sorted[i] = paths[i];
	}
	qsort(sorted, N, sizeof(*sorted), cmp_str);
	s1 = commit_sync(s, p, c1, N, "c1");
	c2[0] = change(PS_CHANGE_MODIFIED, "a/b/x", "x2");
	c2[1] = change(PS_CHANGE_MODIFIED, "/x", "x3");
	s2 = commit_sync(s, p, c2, 2, "c2");
	CHECK_OK(ps_store_snapshot_each(s, p->id, s2, NULL, ps_test_files_add, &all));
	CHECK_INT(all.n, N);
	for (size_t i = 0; i < all.n && i < N; i++)
		CHECK_STR(all.v[i].path, sorted[i]);
	CHECK_INT(ps_store_snapshot_each(s, p->id, s2, NULL, stop_after_3, &page), 7);
	CHECK_INT(page.n, 3);
	for (size_t i = 0; i < page.n; i++)
		CHECK_STR(page.v[i].path, sorted[i]);
	for (size_t k = 0; k < sizeof(prefixes) / sizeof(*prefixes); k++) {
		struct ps_test_files got = { 0 };
		size_t j = 0;

		CHECK_OK(ps_store_snapshot_each(s, p->id, s2, prefixes[k], ps_test_files_add, &got));
		for (size_t i = 0; i < N; i++) {
			if (strncmp(sorted[i], prefixes[k], strlen(prefixes[k])) != 0)
				continue;
			CHECK(j < got.n);
			if (j < got.n)
				CHECK_STR(got.v[j].path, sorted[i]);
			j++;
		}
		CHECK_INT(got.n, j);
		ps_test_files_dispose(&got);
	}
	for (size_t i = 0; i < N; i++) {
		struct ps_file f = { 0 };
		const char *want = !strcmp(paths[i], "a/b/x") ? "x2" : !strcmp(paths[i], "/x") ? "x3"
												 : paths[i];
		char sha[PS_SHA_HEX];

		fake_sha(sha, want);
		CHECK_OK(ps_store_snapshot_file(s, p->id, s2, paths[i], &f));
		CHECK_STR(f.path, paths[i]);
		CHECK_STR(f.sha, sha);
		free(f.path);
		fake_sha(sha, paths[i]);
		CHECK_OK(ps_store_snapshot_file(s, p->id, s1, paths[i], &f));
		CHECK_STR(f.sha, sha);
		free(f.path);
	}
	{
		struct ps_file none = { 0 };

		/* A directory is no file. */
		CHECK_INT(ps_store_snapshot_file(s, p->id, s2, "a/b", &none), PS_ENOTFOUND);
	}
	ps_error_clear();
	ps_test_files_dispose(&all);
	ps_test_files_dispose(&page);
	ps_project_free(p);
	ps_store_free(s);
}

/* The files of `sorted` (n, in byte order) after `after` (NULL: all) that start with `prefix`
 * (NULL: all), at most `limit` (0: all), are what a page lists, in that order. */
static void check_page(struct ps_store *s, int64_t project, int64_t at, const char *const *sorted,
		       size_t n, const char *prefix, const char *after, int64_t limit,
		       struct ps_test_files *got)
{
	size_t j = 0;

	CHECK_OK(ps_store_snapshot_page(s, project, at, prefix, after, limit, ps_test_files_add,
					got));
	for (size_t i = 0; i < n && (limit == 0 || (int64_t)j < limit); i++) {
		if ((after && strcmp(sorted[i], after) <= 0) ||
		    (prefix && strncmp(sorted[i], prefix, strlen(prefix)) != 0))
			continue;
		CHECK(j < got->n);
		if (j < got->n && strcmp(got->v[j].path, sorted[i]) != 0) {
			fprintf(stderr, "page after '%s' prefix '%s' limit %lld: row %zu is '%s', "
				"not '%s'\n", after ? after : "(null)", prefix ? prefix : "(null)",
				(long long)limit, j, got->v[j].path, sorted[i]);
			ps_test_failures++;
		}
		j++;
	}
	CHECK_INT(got->n, j);
}

/* Pages through the snapshot `size` files at a time, each page from the last path of the one
 * before: the whole of `sorted` (n), each file once, in order. */
static void page_through(struct ps_store *s, int64_t project, int64_t at,
			 const char *const *sorted, size_t n, int64_t size)
{
	char *last = NULL;
	size_t seen = 0;
	int pages = 0;

	for (;;) {
		struct ps_test_files got = { 0 };

		check_page(s, project, at, sorted, n, NULL, last, size, &got);
		for (size_t i = 0; i < got.n; i++, seen++)
			if (seen < n)
				CHECK_STR(got.v[i].path, sorted[seen]);
		if (got.n == 0 || ++pages > (int)n + 2) {
			ps_test_files_dispose(&got);
			break;
		}
		free(last);
		last = ps_strdup(got.v[got.n - 1].path);
		ps_test_files_dispose(&got);
	}
	CHECK_INT(seen, n);
	free(last);
}

/* Stores `paths` (n) in one sync and deletes every `del`-th of them (0: none) in a second,
 * whose snapshot is returned; `sorted` gets the paths left, in byte order. */
static int64_t store_tree(struct ps_store *s, const struct ps_project *p, const char *const *paths,
			  size_t n, size_t del, const char **sorted, size_t *nsorted)
{
	struct ps_change *c = ps_calloc(n, sizeof(*c));
	size_t nd = 0;
	int64_t at;

	for (size_t i = 0; i < n; i++)
		c[i] = change(PS_CHANGE_ADDED, paths[i], paths[i]);
	at = commit_sync(s, p, c, n, "c1");
	*nsorted = 0;
	for (size_t i = 0; i < n; i++) {
		if (del && i % del == 0)
			c[nd++] = change(PS_CHANGE_DELETED, paths[i], NULL);
		else
			sorted[(*nsorted)++] = paths[i];
	}
	if (nd)
		at = commit_sync(s, p, c, nd, "c2");
	free(c);
	qsort(sorted, *nsorted, sizeof(*sorted), cmp_str);
	return at;
}

/*
 * The keyset cursor (ps_store_snapshot_page): paging with every page size from 1 to N through
 * odd names (bytes below '/', `a-b` / `a.b` / `a/b`, prefixes of siblings, empty components, a
 * leading '/', bytes that are not UTF-8, deleted files among them) lists each file once, in
 * byte order, the whole listing; so does a directory of more files than SQLite's walk reads at
 * once (256, then 512) at the page sizes around its batches; a cursor that is no path (between
 * paths, a directory, before or past everything) starts right after it, alone and with a
 * prefix. Both backends.
 */
static void test_paging_by_cursor(void)
{
	static const char *const odd[] = {
		"a/b.c", "a/b/x", "a/c", "a", "a-b", "a.c", "a0", "b/c/d/e", "b.d/f", "b/x",
		"README", "/etc/evil", "/x", "a//b", "a/", "//y", "z/\xff\xfe/q", "z/\xff",
		"deep/1/2/3/4/5", "deep/1/2/x", "deep.x/f", "deep/1-a/g", "a!/q", "a b/c", "a\x01",
		"a-b.d/e", "a.b/c", "a/b-c/d", "a/b!", "c/\xc3\xa9/\xe2\x82\xac", "c/\xc3\xa9.x",
		"flat/x/y", "flat/x-y", "flat/x.y/z", "flat-a/b", "q/r/s/t/u", "q/r.s", "q/r/s.t",
		"b/y", "b/z", "d",
	};
	static const char *const cursors[] = {
		"", "\x01", " ", "/", "//", "a", "a/", "a//", "a/b", "a/b/", "a-", "a.", "a.b",
		"a/b.c/", "b/c", "b/c/d/e/f", "deep/1", "deep/1/", "deep/1-", "flat/f05",
		"flat/f050", "flat/f050/", "flat/x", "flat/x/", "flat0", "q/r", "q/r/", "z/\xff", "z/\xff\xff",
		"\xff", "zz", "a\x01\x01", "c/\xc3", "c/\xc3\xa9/", "flat/f59", "flat/f599",
	};
	static const char *const prefixes[] = { "a", "a/", "a/b", "flat/", "flat/f0", "q/r", "/",
						"z/\xff", "deep/1/2/" };
	static const int64_t flat_sizes[] = { 1, 7, 100, 255, 256, 257, 511, 512, 513, 1000 };
	enum { NODD = sizeof(odd) / sizeof(*odd), NFLAT = 600, NBIG = NODD + NFLAT };
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "paging"), *q = add_project(s, "flat");
	const char *big[NBIG], *sorted[NBIG];
	char *flat[NFLAT];
	size_t n = 0;
	int64_t at;

	/* The odd names, every tenth deleted: every page size. */
	at = store_tree(s, p, odd, NODD, 10, sorted, &n);
	for (int64_t size = 1; size <= (int64_t)n + 1; size++)
		page_through(s, p->id, at, sorted, n, size);
	for (size_t k = 0; k < sizeof(cursors) / sizeof(*cursors); k++) {
		struct ps_test_files got = { 0 };

		check_page(s, p->id, at, sorted, n, NULL, cursors[k], 0, &got);
		ps_test_files_dispose(&got);
		for (size_t x = 0; x < sizeof(prefixes) / sizeof(*prefixes); x++) {
			struct ps_test_files pg = { 0 };

			check_page(s, p->id, at, sorted, n, prefixes[x], cursors[k], 3, &pg);
			ps_test_files_dispose(&pg);
		}
	}
	/* Every path as the cursor, and a page of every prefix from it. */
	for (size_t i = 0; i < n; i++) {
		struct ps_test_files got = { 0 };

		check_page(s, p->id, at, sorted, n, NULL, sorted[i], 2, &got);
		ps_test_files_dispose(&got);
		for (size_t x = 0; x < sizeof(prefixes) / sizeof(*prefixes); x++) {
			struct ps_test_files pg = { 0 };

			check_page(s, p->id, at, sorted, n, prefixes[x], sorted[i], 2, &pg);
			ps_test_files_dispose(&pg);
		}
	}

	/* The odd names beside a directory of 600 files, every seventh deleted. */
	for (size_t i = 0; i < NODD; i++)
		big[i] = odd[i];
	for (size_t i = 0; i < NFLAT; i++)
		big[NODD + i] = flat[i] = ps_asprintf("flat/f%03zu", i);
	at = store_tree(s, q, big, NBIG, 7, sorted, &n);
	for (size_t k = 0; k < sizeof(flat_sizes) / sizeof(*flat_sizes); k++)
		page_through(s, q->id, at, sorted, n, flat_sizes[k]);
	for (size_t k = 0; k < sizeof(cursors) / sizeof(*cursors); k++) {
		struct ps_test_files got = { 0 };

		check_page(s, q->id, at, sorted, n, NULL, cursors[k], 0, &got);
		ps_test_files_dispose(&got);
		for (size_t x = 0; x < sizeof(prefixes) / sizeof(*prefixes); x++) {
			struct ps_test_files pg = { 0 };

			check_page(s, q->id, at, sorted, n, prefixes[x], cursors[k], 300, &pg);
			ps_test_files_dispose(&pg);
		}
	}
	for (size_t i = 0; i < NFLAT; i++)
		free(flat[i]);
	ps_project_free(p);
	ps_project_free(q);
	ps_store_free(s);
}

/*
 * The first candidates without a query (the early-stopping walk) where the scope holds nothing:
 * a prefix no directory has, a resume point past every file. None, and no undefined behaviour
 * on the way (PostgreSQL's walk once copied from a list never allocated: UBSan, fatal here).
 */
static void test_code_walk_empty_scope(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "walk-empty");
	struct ps_change c[] = { change(PS_CHANGE_ADDED, "a/x.txt", "xx\n") };
	struct { const char *prefix, *from; } scopes[] = {
		{ "nothing/", NULL }, { "b", NULL }, { NULL, "b" }, { "a/", "a/y" },
	};
	char sha[PS_SHA_HEX];
	int64_t at;

	fake_sha(sha, "xx\n");
	CHECK_OK(ps_store_blob_put(s, sha, "xx\n", 3));
	at = commit_sync(s, p, c, 1, "c1");
	for (size_t k = 0; k < sizeof(scopes) / sizeof(*scopes); k++) {
		struct ps_code_candidate *v = NULL;
		size_t n = 99;
		int64_t snap = 0;

		CHECK_OK(ps_store_code_candidates(s, p->id, at, NULL, scopes[k].prefix,
						  scopes[k].from, 5, &snap, &v, &n));
		CHECK_INT(n, 0);
		CHECK_INT(snap, at);
		ps_code_candidates_free(v, n);
	}
	ps_project_free(p);
	ps_store_free(s);
}

/* ---- blob encoding (issue 14) ---- */

struct ps_embedded {
	const char *name;
	const char *text;
	size_t len;
};
extern const struct ps_embedded ps_migrations[];

/* A deterministic PRNG: incompressible bytes that are the same on every run. */
static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The first column of the first row of `sql`, run on the store behind projsync's back (either
 * backend); -1 when there is no row. */
static int64_t db_int(const char *path, const char *sql)
{
	char *out = ps_test_sql(path, sql);
	int64_t v = -1;

	if (!strncmp(out, "error:", 6)) {
		fprintf(stderr, "sql failed: %s: %s\n", sql, out);
		ps_test_failures++;
	} else if (*out) {
		v = strtoll(out, NULL, 10);
	}
	free(out);
	return v;
}

static void db_exec(const char *path, const char *sql)
{
	char *out = ps_test_sql(path, sql);

	if (!strncmp(out, "error:", 6)) {
		fprintf(stderr, "sql failed: %s: %s\n", sql, out);
		ps_test_failures++;
	}
	free(out);
}

/* Puts `data`, reads it back byte-exact, and returns the encoding the row got. */
static int round_trip(struct ps_store *s, const char *path, const void *data, size_t len)
{
	char sha[PS_SHA_HEX], *sql;
	void *back = NULL;
	size_t back_len = 0;
	int64_t enc;

	ps_git_blob_sha(data, len, sha);
	CHECK_OK(ps_store_blob_put(s, sha, data, len));
	CHECK_OK(ps_store_blob_get(s, sha, &back, &back_len));
	CHECK_INT(back_len, len);
	CHECK(back && (len == 0 || memcmp(back, data, len) == 0));
	CHECK(back && ((char *)back)[len] == '\0');
	free(back);
	sql = ps_asprintf("SELECT encoding FROM blobs WHERE sha = ps_unhex('%s')", sha);
	enc = db_int(path, sql);
	free(sql);
	sql = ps_asprintf("SELECT size FROM blobs WHERE sha = ps_unhex('%s')", sha);
	CHECK_INT(db_int(path, sql), len);
	free(sql);
	return (int)enc;
}

/* Every kind of content comes back byte-exact; small and incompressible content stays raw. */
static void test_blob_round_trips(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	size_t big = 8u << 20, n;
	unsigned char *buf = malloc(big);
	uint64_t x = 0x9e3779b97f4a7c15ull;

	CHECK_INT(round_trip(s, path, "", 0), PS_BLOB_RAW);
	CHECK_INT(round_trip(s, path, "x", 1), PS_BLOB_RAW);
	for (n = 0; n < 256; n++)
		buf[n] = (unsigned char)n;
	CHECK_INT(round_trip(s, path, buf, 256), PS_BLOB_RAW); /* every byte value once */
	/* Just below and at the size floor, compressible or not. */
	memset(buf, 'a', PS_BLOBCODEC_MIN_SIZE);
	CHECK_INT(round_trip(s, path, buf, PS_BLOBCODEC_MIN_SIZE - 1), PS_BLOB_RAW);
	CHECK_INT(round_trip(s, path, buf, PS_BLOBCODEC_MIN_SIZE), PS_BLOB_ZSTD);
	/* Incompressible: random bytes. */
	for (n = 0; n < (1u << 20); n += 8) {
		uint64_t r = rng_next(&x);
		memcpy(buf + n, &r, 8);
	}
	CHECK_INT(round_trip(s, path, buf, 1u << 20), PS_BLOB_RAW);
	/* Binary with NULs and long runs, then text: compressed. */
	memset(buf, 0, 100000);
	memset(buf + 100000, 0xff, 100000);
	CHECK_INT(round_trip(s, path, buf, 200000), PS_BLOB_ZSTD);
	memset(buf, 'z', 1u << 20);
	CHECK_INT(round_trip(s, path, buf, 1u << 20), PS_BLOB_ZSTD);
	CHECK(db_int(path, "SELECT max(length(content)) FROM blobs WHERE size = 1048576 AND "
		     "encoding = 1") < 1000);
	/* 8 MiB of text-like lines with some variety (the default max blob size). */
	for (n = 0; n + 64 <= big; n += 64)
		snprintf((char *)buf + n, 65, "line %010zu of a long file, value %016llx\n", n / 64,
			 (unsigned long long)(rng_next(&x) & 0xffff));
	memset(buf + n, '\n', big - n);
	CHECK_INT(round_trip(s, path, buf, big), PS_BLOB_ZSTD);

	free(buf);
	ps_store_free(s);
	free(path);
}

/* Blobs put inside a transaction are seen by every later read of it, a repeat is a no-op, a
 * rollback keeps none of them and a commit keeps all (PostgreSQL holds them back and sends them
 * in multi-row batches: this is what the batching must not change). */
static void test_blob_put_in_transaction(void)
{
	enum { N = 2500 };
	struct ps_store *s = open_store(NULL);
	char (*shas)[PS_SHA_HEX] = calloc(N, sizeof(*shas));
	const char **ptrs = calloc(N, sizeof(*ptrs));
	bool *have = calloc(N, sizeof(*have));
	char buf[256];
	void *data = NULL;
	size_t len = 0;
	int n;

	for (int i = 0; i < N; i++) {
		n = snprintf(buf, sizeof(buf), "blob %d: %s\n", i,
			     "some text long enough to be compressed, some text long enough");
		ps_git_blob_sha(buf, (size_t)n, shas[i]);
		ptrs[i] = shas[i];
	}
	/* Rolled back: nothing stays, though a read inside saw it. */
	CHECK_OK(ps_store_begin(s));
	n = snprintf(buf, sizeof(buf), "blob %d: %s\n", 0,
		     "some text long enough to be compressed, some text long enough");
	CHECK_OK(ps_store_blob_put(s, shas[0], buf, (size_t)n));
	CHECK_OK(ps_store_blob_have(s, ptrs, 1, have));
	CHECK(have[0]);
	ps_store_rollback(s);
	CHECK_OK(ps_store_blob_have(s, ptrs, 1, have));
	CHECK(!have[0]);

	CHECK_OK(ps_store_begin(s));
	for (int i = 0; i < N; i++) {
		n = snprintf(buf, sizeof(buf), "blob %d: %s\n", i,
			     "some text long enough to be compressed, some text long enough");
		CHECK_OK(ps_store_blob_put(s, shas[i], buf, (size_t)n));
		if (i % 7 == 0) /* again, in the same batch */
			CHECK_OK(ps_store_blob_put(s, shas[i], buf, (size_t)n));
		CHECK_OK(ps_store_code_index_put(s, shas[i], buf, (size_t)n, false));
	}
	CHECK_OK(ps_store_blob_get(s, shas[N - 1], &data, &len));
	CHECK(data && len > 0 && !strncmp(data, "blob 2499: ", 11));
	free(data);
	CHECK_OK(ps_store_commit(s));
	memset(have, 0, N * sizeof(*have));
	CHECK_OK(ps_store_blob_have(s, ptrs, N, have));
	n = 0;
	for (int i = 0; i < N; i++)
		n += have[i];
	CHECK_INT(n, N);
	memset(have, 0, N * sizeof(*have));
	CHECK_OK(ps_store_code_index_have(s, ptrs, N, have));
	n = 0;
	for (int i = 0; i < N; i++)
		n += have[i];
	CHECK_INT(n, N);
	free(shas);
	free(ptrs);
	free(have);
	ps_store_free(s);
}

/* A damaged stored blob is an error that names it, never wrong bytes. */
static void test_blob_corrupt(void)
{
	char *path, sha[PS_SHA_HEX], *sql;
	struct ps_store *s = open_store(&path);
	char text[4096];
	void *data = NULL;
	size_t len = 0;

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "abcdefgh\n"[i % 9];
	ps_git_blob_sha(text, sizeof(text), sha);
	CHECK_OK(ps_store_blob_put(s, sha, text, sizeof(text)));
	ps_store_free(s);
	sql = ps_asprintf("SELECT encoding FROM blobs WHERE sha = ps_unhex('%s')", sha);
	CHECK_INT(db_int(path, sql), PS_BLOB_ZSTD);
	free(sql);

	/* One byte flipped in the middle of the frame. */
	if (ps_test_pg())
		sql = ps_asprintf("UPDATE blobs SET content = overlay(content placing "
				  "'\\x5a'::bytea from length(content) / 2 + 1 for 1) WHERE sha = ps_unhex('%s')",
				  sha);
	else
		sql = ps_asprintf("UPDATE blobs SET content = substr(content, 1, length(content) / 2) "
				  "|| x'5a' || substr(content, length(content) / 2 + 2) WHERE sha = ps_unhex('%s')",
				  sha);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_INT(ps_store_blob_get(s, sha, &data, &len), PS_ESTORE);
	CHECK_STR(ps_error_slug(), "blob_corrupt");
	CHECK(strstr(ps_error_message(), sha) != NULL);
	CHECK(data == NULL);
	ps_store_free(s);

	/* Cut short, and a size that disagrees with the frame. */
	sql = ps_asprintf(ps_test_pg() ? "UPDATE blobs SET content = substring(content from 1 for 10) "
					 "WHERE sha = ps_unhex('%s')"
				       : "UPDATE blobs SET content = substr(content, 1, 10) WHERE sha = ps_unhex('%s')",
			  sha);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_INT(ps_store_blob_get(s, sha, &data, &len), PS_ESTORE);
	CHECK(strstr(ps_error_message(), sha) != NULL);
	ps_store_free(s);

	/* A delta that names no base is damaged, never read as a plain frame. */
	sql = ps_asprintf("UPDATE blobs SET encoding = 2 WHERE sha = ps_unhex('%s')", sha);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_INT(ps_store_blob_get(s, sha, &data, &len), PS_ESTORE);
	CHECK_STR(ps_error_slug(), "blob_corrupt");
	CHECK(strstr(ps_error_message(), sha) != NULL);
	ps_store_free(s);

	/* An encoding from a newer projsync is refused, naming the blob. */
	sql = ps_asprintf("UPDATE blobs SET encoding = 7 WHERE sha = ps_unhex('%s')", sha);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_INT(ps_store_blob_get(s, sha, &data, &len), PS_ESTORE);
	CHECK(strstr(ps_error_message(), sha) != NULL);
	CHECK(strstr(ps_error_message(), "upgrade") != NULL);
	ps_store_free(s);
	free(path);
}

/* Version i of a ~12 KB source file: the same lines with line i edited and one line added per
 * version, as a history of small edits gives. */
#define DELTA_VERSIONS (2 * PS_BLOB_CHAIN_MAX + 3)
static size_t delta_version(int i, char *buf, size_t cap)
{
	size_t n = 0;

	for (int line = 0; line < 300 + i && n + 80 < cap; line++)
		n += (size_t)snprintf(buf + n, cap - n, "%s line %d: int value_%d = %d;\n",
				      line == i ? "edited" : "static", line, line, line * 7 + (line == i ? i : 0));
	return n;
}

static char *blob_col(const char *path, const char *col, const char *sha)
{
	char *sql = ps_asprintf("SELECT %s FROM blobs WHERE sha = ps_unhex('%s')", col, sha);
	char *out = ps_test_sql(path, sql);

	free(sql);
	return out;
}

/* Versions of one path stored as deltas, each against the one before: a chain grows to
 * PS_BLOB_CHAIN_MAX deltas, the next version is plain and starts a new chain, and every
 * version reads back byte-exact (also through a new handle, from the rows alone). */
static void test_blob_delta_chain(void)
{
	char *path, shas[DELTA_VERSIONS][PS_SHA_HEX], buf[32768];
	struct ps_store *s = open_store(&path);
	struct ps_store_stats st;
	int64_t plain_bytes = 0, stored_bytes = 0;

	for (int i = 0; i < DELTA_VERSIONS; i++) {
		size_t n = delta_version(i, buf, sizeof(buf));
		char *enc, *base, *want;

		ps_git_blob_sha(buf, n, shas[i]);
		CHECK_OK(ps_store_blob_put_delta(s, shas[i], buf, n, i ? shas[i - 1] : NULL));
		enc = blob_col(path, "encoding", shas[i]);
		base = blob_col(path, "coalesce(ps_hex(base), '-')", shas[i]);
		/* Version 0 has no base; versions 1..MAX chain; MAX+1 is plain again. */
		if (i % (PS_BLOB_CHAIN_MAX + 1) == 0) {
			CHECK_STR(enc, "1|\n");
			CHECK_STR(base, "-|\n");
		} else {
			CHECK_STR(enc, "2|\n");
			want = ps_asprintf("%s|\n", shas[i - 1]);
			CHECK_STR(base, want);
			free(want);
		}
		free(enc);
		free(base);
	}
	/* A put again (the same content, another base) leaves the row as it is. */
	{
		size_t n = delta_version(3, buf, sizeof(buf));
		char *base;
		CHECK_OK(ps_store_blob_put_delta(s, shas[3], buf, n, shas[0]));
		base = blob_col(path, "ps_hex(base)", shas[3]);
		char *want = ps_asprintf("%s|\n", shas[2]);
		CHECK_STR(base, want);
		free(want);
		free(base);
	}
	/* A base that is not stored, or the blob itself, leaves a plain row. */
	{
		size_t n = snprintf(buf, sizeof(buf), "%s", "a new file with no stored base, long "
				    "enough to be compressed: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
		char sha[PS_SHA_HEX], *enc;
		ps_git_blob_sha(buf, n, sha);
		CHECK_OK(ps_store_blob_put_delta(s, sha, buf, n,
						 "1111111111111111111111111111111111111111"));
		enc = blob_col(path, "encoding", sha);
		CHECK_STR(enc, "1|\n");
		free(enc);
		/* And the content is still verified on the way in. */
		CHECK_INT(ps_store_blob_put_delta(s, shas[0], buf, n, shas[1]), PS_EINVAL);
		CHECK_STR(ps_error_slug(), "sha_mismatch");
	}
	ps_store_free(s);
	CHECK_OK(ps_store_open(&s, path, 0));
	for (int i = 0; i < DELTA_VERSIONS; i++) {
		size_t n = delta_version(i, buf, sizeof(buf)), len = 0;
		void *data = NULL;
		CHECK_OK(ps_store_blob_get(s, shas[i], &data, &len));
		CHECK_INT(len, n);
		CHECK(data && memcmp(data, buf, n) == 0 && ((char *)data)[n] == '\0');
		free(data);
		plain_bytes += (int64_t)n;
	}
	CHECK_OK(ps_store_stats(s, 0, &st));
	CHECK_INT(st.blobs_delta, DELTA_VERSIONS - 3);
	stored_bytes = st.stored_bytes;
	/* The deltas are what make the store small: far below the content's own size. */
	CHECK(stored_bytes * 20 < plain_bytes);
	ps_store_free(s);
	free(path);
}

/* A damaged delta, or one whose base is gone, is an error naming the blob: never wrong bytes,
 * and the versions before it still read. */
static void test_blob_delta_corrupt(void)
{
	char *path, shas[4][PS_SHA_HEX], buf[32768], *sql;
	struct ps_store *s = open_store(&path);
	void *data = NULL;
	size_t len = 0;

	for (int i = 0; i < 4; i++) {
		size_t n = delta_version(i, buf, sizeof(buf));
		ps_git_blob_sha(buf, n, shas[i]);
		CHECK_OK(ps_store_blob_put_delta(s, shas[i], buf, n, i ? shas[i - 1] : NULL));
	}
	ps_store_free(s);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 2"), 3);

	/* One byte flipped in the middle of version 2's delta frame. */
	if (ps_test_pg())
		sql = ps_asprintf("UPDATE blobs SET content = overlay(content placing "
				  "'\\x5a'::bytea from length(content) / 2 + 1 for 1) WHERE sha = ps_unhex('%s')",
				  shas[2]);
	else
		sql = ps_asprintf("UPDATE blobs SET content = substr(content, 1, length(content) / 2) "
				  "|| x'5a' || substr(content, length(content) / 2 + 2) WHERE sha = ps_unhex('%s')",
				  shas[2]);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_INT(ps_store_blob_get(s, shas[2], &data, &len), PS_ESTORE);
	CHECK_STR(ps_error_slug(), "blob_corrupt");
	CHECK(strstr(ps_error_message(), shas[2]) != NULL);
	CHECK(data == NULL);
	/* Its dependant fails too, naming itself and the damaged base. */
	CHECK_INT(ps_store_blob_get(s, shas[3], &data, &len), PS_ESTORE);
	CHECK_STR(ps_error_slug(), "blob_corrupt");
	CHECK(strstr(ps_error_message(), shas[3]) != NULL);
	CHECK(strstr(ps_error_message(), shas[2]) != NULL);
	CHECK(data == NULL);
	CHECK_OK(ps_store_blob_get(s, shas[1], &data, &len));
	free(data);
	data = NULL;
	/* A new version against the damaged one is stored plain, not refused. */
	{
		size_t n = delta_version(4, buf, sizeof(buf));
		char sha[PS_SHA_HEX], *enc;
		ps_git_blob_sha(buf, n, sha);
		CHECK_OK(ps_store_blob_put_delta(s, sha, buf, n, shas[3]));
		enc = blob_col(path, "encoding", sha);
		CHECK_STR(enc, "1|\n");
		free(enc);
	}
	ps_store_free(s);

	/* Version 1's base gone behind the store's back (the foreign key would refuse it). */
	if (ps_test_pg())
		db_exec(path, "ALTER TABLE blobs DROP CONSTRAINT blobs_base_fkey");
	sql = ps_asprintf("DELETE FROM blobs WHERE sha = ps_unhex('%s')", shas[0]);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_INT(ps_store_blob_get(s, shas[1], &data, &len), PS_ESTORE);
	CHECK_STR(ps_error_slug(), "blob_corrupt");
	CHECK(strstr(ps_error_message(), shas[1]) != NULL);
	CHECK(strstr(ps_error_message(), shas[0]) != NULL);
	CHECK(strstr(ps_error_message(), "not stored") != NULL);
	CHECK(data == NULL);
	ps_store_free(s);
	free(path);
}

/* Schema 26: a directory only a failed sync named is deleted by the prune, and a later sync of
 * the same writer (one store handle, as a server's worker) that names it again gets a new row,
 * not the id it looked up before (the writer remembers a directory only within a transaction).
 * Both backends. */
static void test_dir_rows_after_prune(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "p");
	struct ps_prune_stats pr = { 0 };
	struct ps_change keep = change(PS_CHANGE_ADDED, "keep/a", "a");
	struct ps_change gone = change(PS_CHANGE_ADDED, "gone/x", "x");
	struct ps_change back = change(PS_CHANGE_ADDED, "gone/y", "y");
	struct ps_owner o = me();
	struct ps_sync *y = NULL;
	int64_t s1, s2;

	s1 = commit_sync(s, p, &keep, 1, "c1");
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
	CHECK_OK(ps_store_files_stage(s, y, &gone, 1));
	CHECK_OK(ps_store_sync_fail(s, y, PS_SYNC_FAILED, "boom", "failed on purpose", NULL));
	ps_sync_free(y);
	CHECK_INT(db_int(path, "SELECT count(*) FROM dirs WHERE path = 'gone'"), 1);
	CHECK_OK(ps_store_prune_syncs(s, p->id, s1, &pr));
	CHECK_INT(db_int(path, "SELECT count(*) FROM dirs WHERE path = 'gone'"), 0);
	CHECK_INT(db_int(path, "SELECT count(*) FROM dirs WHERE path = 'keep'"), 1);
	s2 = commit_sync(s, p, &back, 1, "c2");
	CHECK(s2 > s1);
	{
		char *ys = short_sha("y"), *as = short_sha("a"), want[64];

		snprintf(want, sizeof(want), "gone/y:%s keep/a:%s ", ys, as);
		expect_snapshot(s, p->id, s2, want);
		free(ys);
		free(as);
	}
	ps_project_free(p);
	ps_store_free(s);
	free(path);
}

/* Pruning the versions a kept delta was built on rewrites the delta as a plain row first, in
 * the same transaction: the kept version reads back byte-exact, and its bases are gone. */
static void test_blob_delta_prune(void)
{
	char *path, shas[3][PS_SHA_HEX], buf[32768], *out;
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "p");
	struct ps_prune_stats pr = { 0 };
	struct ps_store_stats before, after;
	int64_t ids[3];
	void *data = NULL;
	size_t len = 0, n = 0;

	for (int i = 0; i < 3; i++) {
		struct ps_change c = { .status = i ? PS_CHANGE_MODIFIED : PS_CHANGE_ADDED,
				       .path = (char *)"a.c", .mode = PS_MODE_FILE };
		char *commit = ps_asprintf("c%d", i);
		n = delta_version(i, buf, sizeof(buf));
		ps_git_blob_sha(buf, n, shas[i]);
		memcpy(c.sha, shas[i], PS_SHA_HEX);
		if (i) {
			memcpy(c.previous_sha, shas[i - 1], PS_SHA_HEX);
			c.previous_mode = PS_MODE_FILE;
		}
		c.size = (int64_t)n;
		CHECK_OK(ps_store_blob_put_delta(s, shas[i], buf, n, i ? shas[i - 1] : NULL));
		ids[i] = commit_sync(s, p, &c, 1, commit);
		free(commit);
	}
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 2"), 2);
	CHECK_OK(ps_store_stats(s, 0, &before));
	CHECK_OK(ps_store_prune_syncs(s, p->id, ids[2], &pr));
	CHECK_OK(ps_store_prune_blobs(s, &pr));
	CHECK_INT(pr.blobs, 2);
	CHECK_INT(pr.blobs_rewritten, 1);
	/* The bytes reported are what the store gave back: the kept delta's plain row, larger
	 * than the delta it replaced, is taken off what the removed rows freed. */
	CHECK_OK(ps_store_stats(s, 0, &after));
	CHECK_INT(pr.blob_bytes, before.stored_bytes - after.stored_bytes);
	out = ps_test_sql(path, "SELECT encoding, coalesce(ps_hex(base), '-') FROM blobs");
	CHECK_STR(out, "1|-|\n");
	free(out);
	CHECK_OK(ps_store_blob_get(s, shas[2], &data, &len));
	CHECK_INT(len, n);
	CHECK(data && memcmp(data, buf, n) == 0);
	free(data);
	/* Nothing left to do. */
	memset(&pr, 0, sizeof(pr));
	CHECK_OK(ps_store_prune_blobs(s, &pr));
	CHECK_INT(pr.blobs, 0);
	CHECK_INT(pr.blobs_rewritten, 0);
	ps_project_free(p);
	ps_store_free(s);
	free(path);
}

/* `len` bytes of text that differ with `seed` (a blob of the pack tests). */
static void pack_member(int seed, char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (seed * 7 + (int)i / 5) % 26);
}

static void expect_members(struct ps_store *s, int64_t pack, const char *want0, const char *want1)
{
	struct ps_strv got = { 0 };

	CHECK_OK(ps_store_blob_pack_members(s, pack, &got));
	CHECK_INT(got.n, want1 ? 2 : want0 ? 1 : 0);
	if (got.n > 0 && want0)
		CHECK_STR(got.v[0], want0);
	if (got.n > 1 && want1)
		CHECK_STR(got.v[1], want1);
	ps_strv_dispose(&got);
}

static void expect_sparse(struct ps_store *s, const int64_t *want, size_t nwant)
{
	int64_t *ids = NULL;
	size_t n = 0;

	CHECK_OK(ps_store_blob_packs_sparse(s, &ids, &n));
	CHECK_INT(n, nwant);
	for (size_t i = 0; i < n && i < nwant; i++)
		CHECK_INT(ids[i], want[i]);
	free(ids);
}

/* Where pack_rows_copy puts the rows it reads. */
struct rows_to {
	struct ps_store *to;
	const struct ps_copy_table *t;
	size_t n;
};

static int rows_copy_one(void *ud, const struct ps_copy_value *row)
{
	struct rows_to *r = ud;

	r->n++;
	return ps_store_rows_insert(r->to, r->t, row, 1);
}

/* Copies blob_packs, then blobs (with pack and pack_offset), from `from` into `to` through the
 * backends' row interface, as store copy does; returns the rows copied. */
static size_t pack_rows_copy(struct ps_store *from, struct ps_store *to)
{
	static const struct ps_copy_col pack_cols[] = {
		{ "id", PS_COL_INT }, { "size", PS_COL_INT }, { "content", PS_COL_BLOB },
	};
	static const struct ps_copy_col blob_cols[] = {
		{ "sha", PS_COL_TEXT }, { "size", PS_COL_INT }, { "encoding", PS_COL_INT },
		{ "content", PS_COL_BLOB }, { "base", PS_COL_TEXT }, { "pack", PS_COL_INT },
		{ "pack_offset", PS_COL_INT },
	};
	const struct ps_copy_table tables[2] = { { "blob_packs", pack_cols, 3, 1, true, 2 },
						 { "blobs", blob_cols, 7, 1, false, 2 } };
	struct rows_to r = { .to = to };

	CHECK_OK(ps_store_begin(to));
	for (int i = 0; i < 2; i++) {
		r.t = &tables[i];
		CHECK_OK(ps_store_rows_each(from, &tables[i], rows_copy_one, &r));
		CHECK_OK(ps_store_rows_done(to, &tables[i]));
	}
	CHECK_OK(ps_store_commit(to));
	return r.n;
}

/* A packed member's row: encoding 3, no content of its own. */
static void put_member(struct ps_store *s, const char *sha, int64_t size, int64_t pack,
		       int64_t offset)
{
	struct ps_blob_row row = { .encoding = PS_BLOB_PACKED, .size = size, .pack = pack,
				   .pack_offset = offset };

	CHECK_OK(ps_store_blob_row_put(s, sha, &row));
}

/*
 * The backend's pack rows (schema 27, store/backend.h): a pack reads back as written, its
 * members come in offset order, a member's row carries its pack and offset until it is
 * rewritten plain, the sparse packs are those whose members hold less than half their bytes
 * (no member at all included), a pack still named cannot go, a deleted one is gone and its id
 * is not handed out again, and the stats count packs whole for the store and by share for a
 * project. Both backends; a store of schema 26 (SQLite) gets the new table on open.
 */
static void test_blob_packs(void)
{
	char *path, bytes[4][300], shas[5][PS_SHA_HEX], *sql;
	const size_t sizes[4] = { 100, 100, 100, 300 }; /* a, b in pack 1; c, d in pack 2 */
	/* Opaque to the backend: no frames needed. */
	const char frame1[] = "pack one, 40 bytes......................";
	const char frame2[] = "pack two, 60 bytes..........................................";
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "p");
	struct ps_blob_pack_row pk = { 0 }, got = { 0 };
	struct ps_blob_row row = { 0 };
	struct ps_store_stats st;
	struct ps_change c[3];
	int64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0, rows_bytes;

	for (int i = 0; i < 4; i++) {
		pack_member(i, bytes[i], sizes[i]);
		ps_git_blob_sha(bytes[i], sizes[i], shas[i]);
	}
	ps_git_blob_sha("a plain blob\n", 13, shas[4]);

	CHECK_OK(ps_store_begin(s));
	pk = (struct ps_blob_pack_row){ .size = 200, .content = (void *)frame1,
					.len = sizeof(frame1) - 1 };
	CHECK_OK(ps_store_blob_pack_put(s, &pk, &id1));
	/* Rows in the reverse order of their offsets: members still list by offset. */
	put_member(s, shas[1], 100, id1, 100);
	put_member(s, shas[0], 100, id1, 0);
	pk = (struct ps_blob_pack_row){ .size = 400, .content = (void *)frame2,
					.len = sizeof(frame2) - 1 };
	CHECK_OK(ps_store_blob_pack_put(s, &pk, &id2));
	put_member(s, shas[3], 300, id2, 100);
	put_member(s, shas[2], 100, id2, 0);
	pk = (struct ps_blob_pack_row){ .size = 50, .content = (void *)"0123456789", .len = 10 };
	CHECK_OK(ps_store_blob_pack_put(s, &pk, &id3));
	CHECK_OK(ps_store_blob_put(s, shas[4], "a plain blob\n", 13));
	CHECK_OK(ps_store_commit(s));
	CHECK(id1 > 0 && id2 > id1 && id3 > id2);

	CHECK_OK(ps_store_blob_pack_get(s, id2, &got));
	CHECK_INT(got.id, id2);
	CHECK_INT(got.size, 400);
	CHECK_INT(got.len, sizeof(frame2) - 1);
	CHECK(got.content && memcmp(got.content, frame2, sizeof(frame2) - 1) == 0);
	free(got.content);

	CHECK_OK(ps_store_blob_row_get(s, shas[1], &row));
	CHECK_INT(row.encoding, PS_BLOB_PACKED);
	CHECK_INT(row.size, 100);
	CHECK_INT(row.pack, id1);
	CHECK_INT(row.pack_offset, 100);
	CHECK_INT(row.len, 0);
	CHECK_STR(row.base, "");
	free(row.content);
	CHECK_OK(ps_store_blob_row_get(s, shas[4], &row));
	CHECK_INT(row.pack, 0);
	CHECK_INT(row.pack_offset, 0);
	free(row.content);

	expect_members(s, id1, shas[0], shas[1]);
	expect_members(s, id2, shas[2], shas[3]);
	expect_members(s, id3, NULL, NULL);
	expect_sparse(s, (int64_t[]){ id3 }, 1);

	/* b and d leave their packs (as the prune's tidy rewrites them): pack 1 keeps exactly
	 * half its bytes (not sparse), pack 2 a quarter. */
	for (int i = 1; i < 4; i += 2) {
		struct ps_blob_row plain = { .encoding = PS_BLOB_RAW, .size = (int64_t)sizes[i],
					     .pack = i == 1 ? id1 : id2, .content = bytes[i],
					     .len = sizes[i] };

		CHECK_OK(ps_store_blob_row_replace(s, shas[i], &plain));
		CHECK_OK(ps_store_blob_row_get(s, shas[i], &row));
		CHECK_INT(row.encoding, PS_BLOB_RAW);
		CHECK_INT(row.pack, 0);
		CHECK_INT(row.len, sizes[i]);
		free(row.content);
	}
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE pack IS NOT NULL OR "
			       "pack_offset IS NOT NULL"), 2);
	expect_members(s, id1, shas[0], NULL);
	expect_members(s, id2, shas[2], NULL);
	expect_sparse(s, (int64_t[]){ id2, id3 }, 2);

	/* Stats: the store counts its packs whole; a project its packed blobs' share of them. */
	rows_bytes = db_int(path, "SELECT sum(length(content)) FROM blobs");
	CHECK_OK(ps_store_stats(s, 0, &st));
	CHECK_INT(st.blobs, 5);
	CHECK_INT(st.blobs_packed, 2);
	CHECK_INT(st.packs, 3);
	CHECK_INT(st.stored_bytes,
		  rows_bytes + (int64_t)(sizeof(frame1) - 1 + sizeof(frame2) - 1) + 10);
	for (int i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof(name), "%c.c", 'a' + i);
		c[i] = (struct ps_change){ .status = PS_CHANGE_ADDED, .path = ps_strdup(name),
					   .mode = PS_MODE_FILE, .size = (int64_t)sizes[i] };
		memcpy(c[i].sha, shas[i], PS_SHA_HEX);
	}
	commit_sync(s, p, c, 3, "c1");
	for (int i = 0; i < 3; i++)
		free(c[i].path);
	CHECK_OK(ps_store_stats(s, p->id, &st));
	CHECK_INT(st.blobs, 3);
	CHECK_INT(st.blobs_packed, 2);
	CHECK_INT(st.packs, 0);
	CHECK_INT(st.raw_bytes, 300);
	CHECK_INT(st.stored_bytes, 100 * (int64_t)(sizeof(frame1) - 1) / 200 + 100 +
					   100 * (int64_t)(sizeof(frame2) - 1) / 400);

	/* store copy's rows: packs with their ids, member rows with their pack and offset, and
	 * the copy's next pack id after the copied ones. */
	{
		struct ps_store *t = open_store(NULL);

		CHECK_INT(pack_rows_copy(s, t), 3 + 5);
		CHECK_OK(ps_store_blob_pack_get(t, id2, &got));
		CHECK_INT(got.size, 400);
		CHECK(got.len == sizeof(frame2) - 1 && !memcmp(got.content, frame2, got.len));
		free(got.content);
		CHECK_OK(ps_store_blob_row_get(t, shas[2], &row));
		CHECK_INT(row.encoding, PS_BLOB_PACKED);
		CHECK_INT(row.pack, id2);
		CHECK_INT(row.pack_offset, 0);
		free(row.content);
		CHECK_OK(ps_store_blob_row_get(t, shas[3], &row));
		CHECK_INT(row.pack, 0);
		CHECK_INT(row.len, 300);
		free(row.content);
		expect_members(t, id1, shas[0], NULL);
		CHECK_OK(ps_store_blob_pack_put(t, &pk, &id4));
		CHECK(id4 > id3);
		ps_store_free(t);
	}

	/* A pack a row still names cannot go: the foreign key refuses it at commit. */
	CHECK_OK(ps_store_begin(s));
	CHECK_OK(ps_store_blob_pack_delete(s, id1));
	CHECK(ps_store_commit(s) < 0);
	ps_error_clear();
	CHECK_OK(ps_store_blob_pack_get(s, id1, &got));
	free(got.content);

	/* One no row names goes; deleting it again is no error, reading it is PS_ENOTFOUND. */
	CHECK_OK(ps_store_blob_pack_delete(s, id3));
	CHECK_OK(ps_store_blob_pack_delete(s, id3));
	CHECK_INT(ps_store_blob_pack_get(s, id3, &got), PS_ENOTFOUND);
	CHECK_STR(ps_error_slug(), "blob_pack_missing");
	ps_error_clear();
	expect_sparse(s, (int64_t[]){ id2 }, 1);
	/* The highest id went: the next pack still gets a new one (a reader caches by id). */
	CHECK_OK(ps_store_blob_pack_put(s, &pk, &id4));
	CHECK(id4 > id3);
	CHECK_OK(ps_store_blob_pack_delete(s, id4));
	ps_project_free(p);
	ps_store_free(s);
	free(path);

	/* A store of schema 26 gets the table on open; its rows stay as they were, in no pack. */
	if (!ps_test_pg()) {
		char *dir = ps_test_tmpdir(), *old = ps_asprintf("%s/old26.db", dir);
		void *data = NULL;
		size_t len = 0;
		sqlite3 *raw = NULL;

		CHECK_INT(sqlite3_open(old, &raw), SQLITE_OK);
		CHECK_INT(ps_sqlite_functions(raw), SQLITE_OK);
		CHECK_OK(ps_sqlite_code_register(raw));
		for (int i = 0; i < 26; i++)
			CHECK_INT(sqlite3_exec(raw, ps_migrations[i].text, NULL, NULL, NULL),
				  SQLITE_OK);
		CHECK(strstr(ps_migrations[26].name, "0027_blob_packs") != NULL);
		sql = ps_asprintf("PRAGMA user_version = 26; INSERT INTO blobs (sha, size, encoding, "
				  "content) VALUES (ps_unhex('%s'), 13, 0, 'a plain blob\n')",
				  shas[4]);
		CHECK_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
		free(sql);
		sqlite3_close(raw);
		CHECK_INT(db_int(old, "SELECT count(*) FROM sqlite_master WHERE name = 'blob_packs'"),
			  0);

		CHECK_OK(ps_store_open(&s, old, 0));
		CHECK_INT(db_int(old, "PRAGMA user_version"), 27);
		CHECK_INT(db_int(old, "SELECT count(*) FROM sqlite_master WHERE name IN "
				      "('blob_packs', 'blobs_pack')"), 2);
		CHECK_OK(ps_store_blob_get(s, shas[4], &data, &len));
		CHECK(len == 13 && data && memcmp(data, "a plain blob\n", 13) == 0);
		free(data);
		CHECK_OK(ps_store_blob_row_get(s, shas[4], &row));
		CHECK_INT(row.pack, 0);
		free(row.content);
		expect_sparse(s, NULL, 0);
		CHECK_OK(ps_store_begin(s));
		CHECK_OK(ps_store_blob_pack_put(s, &pk, &id1));
		put_member(s, shas[0], 100, id1, 0);
		CHECK_OK(ps_store_commit(s));
		expect_members(s, id1, shas[0], NULL);
		ps_store_free(s);
		free(old);
		free(dir);
	}
}

/* ---- packs (schema 27): small blobs compressed together ---- */

/* File i of a generated tree: `len` bytes of C-like lines, alike across files (what packs
 * are for: neighbours compress together). */
static char *pack_file(int i, size_t len)
{
	char *buf = malloc(len + 128);
	size_t n = 0;

	for (int line = 0; n < len; line++)
		n += (size_t)snprintf(buf + n, 128, "static int f%d_%d(int x) { return x * %d + %d; }\n",
				      i, line, (line * 31 + i) % 97, line);
	buf[len] = '\0';
	return buf;
}

/* Reads every blob of `v` back through `s`: byte-exact, with the NUL after it. */
static void expect_blobs(struct ps_store *s, const struct ps_blob_in *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		void *data = NULL;
		size_t len = 0;

		CHECK_OK(ps_store_blob_get(s, v[i].sha, &data, &len));
		CHECK_INT(len, v[i].len);
		CHECK(data && (len == 0 || memcmp(data, v[i].data, len) == 0) &&
		      ((char *)data)[len] == '\0');
		free(data);
	}
}

static int64_t blob_int(const char *path, const char *col, const char *sha)
{
	char *sql = ps_asprintf("SELECT %s FROM blobs WHERE sha = ps_unhex('%s')", col, sha);
	int64_t v = db_int(path, sql);

	free(sql);
	return v;
}

/* What the whole store's stats must say its blobs take: every row's own bytes and every pack
 * whole. */
static int64_t stored_by_rows(const char *path)
{
	return db_int(path, "SELECT (SELECT coalesce(sum(length(content)), 0) FROM blobs) + "
			    "(SELECT coalesce(sum(length(content)), 0) FROM blob_packs)");
}

enum { PK_EMPTY, PK_ONE, PK_BINARY, PK_RANDOM, PK_MAX, PK_OVER, PK_STORED, PK_FILES };
#define PK_NFILES 60 /* ~4.3 KiB each: PS_BLOB_PACK_TARGET crossed several times */

/* Every kind of blob through ps_store_blob_put_many comes back byte-exact, from the handle
 * that wrote it and from a new one (the rows alone); small ones are packed in the order given,
 * each pack closed once it reaches PS_BLOB_PACK_TARGET, larger and empty ones get rows of their
 * own, repeats and blobs already stored are left as they are, and stats count it all. */
static void test_blob_packs_round_trips(void)
{
	enum { N = PK_FILES + PK_NFILES + 3 };
	char *path, (*shas)[PS_SHA_HEX] = calloc(N, sizeof(*shas)), *bufs[N] = { 0 };
	struct ps_store *s = open_store(&path);
	struct ps_blob_in v[N];
	struct ps_store_stats st;
	uint64_t x = 0x243f6a8885a308d3ull;
	size_t n = 0, files_bytes = 0;
	int64_t stored_row;

	memset(v, 0, sizeof(v));
	bufs[PK_EMPTY] = ps_strdup("");
	bufs[PK_ONE] = ps_strdup("x");
	bufs[PK_BINARY] = malloc(300);
	for (int i = 0; i < 300; i++)
		bufs[PK_BINARY][i] = (char)(i * 7);
	bufs[PK_RANDOM] = malloc(4096);
	for (int i = 0; i < 4096; i += 8) {
		uint64_t r = rng_next(&x);
		memcpy(bufs[PK_RANDOM] + i, &r, 8);
	}
	bufs[PK_MAX] = pack_file(1000, PS_BLOB_PACK_MEMBER_MAX);
	bufs[PK_OVER] = pack_file(1001, PS_BLOB_PACK_MEMBER_MAX + 1);
	bufs[PK_STORED] = pack_file(1002, 3000);
	for (int i = PK_EMPTY; i < PK_FILES; i++) {
		size_t len = i == PK_EMPTY ? 0 : i == PK_ONE ? 1 : i == PK_BINARY ? 300
			   : i == PK_RANDOM ? 4096 : i == PK_MAX ? PS_BLOB_PACK_MEMBER_MAX
			   : i == PK_OVER ? PS_BLOB_PACK_MEMBER_MAX + 1 : 3000;
		v[n++] = (struct ps_blob_in){ shas[i], bufs[i], len, NULL };
	}
	for (int i = 0; i < PK_NFILES; i++) {
		size_t len = 4000 + (size_t)(i * 37 % 700);
		bufs[PK_FILES + i] = pack_file(i, len);
		v[n++] = (struct ps_blob_in){ shas[PK_FILES + i], bufs[PK_FILES + i], len, NULL };
		files_bytes += len;
	}
	/* Repeats within the batch: a packed file, the one byte, the large one. */
	v[n++] = v[PK_FILES + 5];
	v[n++] = v[PK_ONE];
	v[n++] = v[PK_OVER];
	CHECK_INT(n, N);
	for (size_t i = 0; i < PK_FILES + PK_NFILES; i++)
		ps_git_blob_sha(v[i].data, v[i].len, shas[i]);

	/* One of them is stored already, alone: it stays as it is. */
	CHECK_OK(ps_store_blob_put(s, shas[PK_STORED], bufs[PK_STORED], 3000));
	stored_row = blob_int(path, "length(content)", shas[PK_STORED]);
	CHECK_OK(ps_store_begin(s));
	CHECK_OK(ps_store_blob_put_many(s, v, n));
	expect_blobs(s, v, n); /* inside the transaction */
	CHECK_OK(ps_store_commit(s));
	CHECK_OK(ps_store_blob_put_many(s, v, n)); /* all stored: nothing to do */

	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs"), PK_FILES + PK_NFILES);
	CHECK_INT(blob_int(path, "encoding", shas[PK_EMPTY]), PS_BLOB_RAW);
	CHECK_INT(blob_int(path, "encoding", shas[PK_ONE]), PS_BLOB_PACKED);
	CHECK_INT(blob_int(path, "encoding", shas[PK_BINARY]), PS_BLOB_PACKED);
	CHECK_INT(blob_int(path, "encoding", shas[PK_RANDOM]), PS_BLOB_PACKED);
	CHECK_INT(blob_int(path, "encoding", shas[PK_MAX]), PS_BLOB_PACKED);
	CHECK_INT(blob_int(path, "encoding", shas[PK_OVER]), PS_BLOB_ZSTD);
	CHECK_INT(blob_int(path, "encoding", shas[PK_STORED]), PS_BLOB_ZSTD);
	CHECK_INT(blob_int(path, "length(content)", shas[PK_STORED]), stored_row);
	for (int i = 0; i < PK_NFILES; i++)
		CHECK_INT(blob_int(path, "encoding", shas[PK_FILES + i]), PS_BLOB_PACKED);
	/* Packed rows hold no bytes and name a pack; the others name none. */
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 3 AND "
			       "(length(content) <> 0 OR pack IS NULL OR pack_offset IS NULL)"), 0);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding <> 3 AND "
			       "(pack IS NOT NULL OR pack_offset IS NOT NULL)"), 0);
	/* Neighbours in the order given: a pack's members follow each other. */
	CHECK_INT(blob_int(path, "pack", shas[PK_FILES + 1]), blob_int(path, "pack", shas[PK_FILES + 2]));
	CHECK_INT(blob_int(path, "pack_offset", shas[PK_FILES + 2]),
		  blob_int(path, "pack_offset", shas[PK_FILES + 1]) + (int64_t)v[PK_FILES + 1].len);
	/* Each pack closed at the target, but the last; its size the sum of its members'. */
	CHECK(db_int(path, "SELECT count(*) FROM blob_packs") >= 5);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs WHERE size < 65536 AND id < "
			       "(SELECT max(id) FROM blob_packs)"), 0);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs WHERE size >= 65536 + 16384"), 0);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs p WHERE size <> (SELECT sum(size) "
			       "FROM blobs b WHERE b.pack = p.id)"), 0);
	CHECK(db_int(path, "SELECT sum(length(content)) FROM blob_packs") * 3 <
	      (int64_t)files_bytes);

	CHECK_OK(ps_store_stats(s, 0, &st));
	CHECK_INT(st.blobs_packed, db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 3"));
	CHECK_INT(st.packs, db_int(path, "SELECT count(*) FROM blob_packs"));
	CHECK_INT(st.stored_bytes, stored_by_rows(path));
	ps_store_free(s);

	/* From the rows alone. */
	CHECK_OK(ps_store_open(&s, path, 0));
	expect_blobs(s, v, n);

	/* A lone small blob left at the end of a call gets a plain row, not a pack of one. */
	{
		char *small = pack_file(2000, 900), *big = pack_file(2001, 40000), ssha[PS_SHA_HEX],
		     bsha[PS_SHA_HEX];
		int64_t packs = db_int(path, "SELECT count(*) FROM blob_packs");
		struct ps_blob_in w[2] = { { ssha, small, 900, NULL }, { bsha, big, 40000, NULL } };

		ps_git_blob_sha(small, 900, ssha);
		ps_git_blob_sha(big, 40000, bsha);
		CHECK_OK(ps_store_blob_put_many(s, w, 2));
		CHECK_INT(blob_int(path, "encoding", ssha), PS_BLOB_ZSTD);
		CHECK_INT(blob_int(path, "encoding", bsha), PS_BLOB_ZSTD);
		CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs"), packs);
		expect_blobs(s, w, 2);
		/* A wrong id anywhere in a batch: nothing of it is stored. */
		small[0] = 'X';
		w[0].sha = "0123456789012345678901234567890123456789";
		big[0] = 'Y';
		ps_git_blob_sha(big, 40000, bsha);
		CHECK_INT(ps_store_blob_put_many(s, w, 2), PS_EINVAL);
		CHECK_STR(ps_error_slug(), "sha_mismatch");
		CHECK(strstr(ps_error_message(), w[0].sha) != NULL);
		CHECK_INT(blob_int(path, "count(*)", bsha), 0);
		free(small);
		free(big);
	}
	ps_store_free(s);
	for (int i = 0; i < N; i++)
		free(bufs[i]);
	free(shas);
	free(path);
}

/* Deltas and packs together: a delta whose base is packed reads, a blob whose base waits in
 * the same batch's pending pack is stored after that pack (so the base reads), and
 * ps_store_blobs_make_plain rewrites a delta against a packed base. */
static void test_blob_packs_deltas(void)
{
	char *path, vs[4][32768], shas[4][PS_SHA_HEX], fsha[2][PS_SHA_HEX], *filler[2];
	struct ps_store *s = open_store(&path);
	struct ps_blob_in v[4];
	size_t lens[4];
	struct ps_prune_stats rewritten = { 0 };

	for (int i = 0; i < 4; i++) {
		lens[i] = delta_version(i, vs[i], sizeof(vs[i]));
		CHECK(lens[i] <= PS_BLOB_PACK_MEMBER_MAX);
		ps_git_blob_sha(vs[i], lens[i], shas[i]);
	}
	for (int i = 0; i < 2; i++) {
		filler[i] = pack_file(3000 + i, 2000);
		ps_git_blob_sha(filler[i], 2000, fsha[i]);
	}
	/* Version 0 packed with a neighbour, then version 1 against it in the same batch. */
	v[0] = (struct ps_blob_in){ fsha[0], filler[0], 2000, NULL };
	v[1] = (struct ps_blob_in){ shas[0], vs[0], lens[0], NULL };
	v[2] = (struct ps_blob_in){ shas[1], vs[1], lens[1], shas[0] };
	v[3] = (struct ps_blob_in){ fsha[1], filler[1], 2000, NULL };
	CHECK_OK(ps_store_blob_put_many(s, v, 4));
	CHECK_INT(blob_int(path, "encoding", shas[0]), PS_BLOB_PACKED);
	CHECK_INT(blob_int(path, "encoding", shas[1]), PS_BLOB_DELTA);
	{
		char *base = blob_col(path, "ps_hex(base)", shas[1]), *want = ps_asprintf("%s|\n", shas[0]);
		CHECK_STR(base, want);
		free(base);
		free(want);
	}
	expect_blobs(s, v, 4);
	/* In a later call: version 2 against version 1 (a delta), version 3 against the packed
	 * version 0. */
	v[0] = (struct ps_blob_in){ shas[2], vs[2], lens[2], shas[1] };
	v[1] = (struct ps_blob_in){ shas[3], vs[3], lens[3], shas[0] };
	CHECK_OK(ps_store_blob_put_many(s, v, 2));
	CHECK_INT(blob_int(path, "encoding", shas[2]), PS_BLOB_DELTA);
	CHECK_INT(blob_int(path, "encoding", shas[3]), PS_BLOB_DELTA);
	ps_store_free(s);
	CHECK_OK(ps_store_open(&s, path, 0));
	for (int i = 0; i < 4; i++) {
		struct ps_blob_in b = { shas[i], vs[i], lens[i], NULL };
		expect_blobs(s, &b, 1);
	}
	/* A base alone in the pending pack: it gets its own row first, the delta follows. */
	{
		char a[32768], b[32768], asha[PS_SHA_HEX], bsha[PS_SHA_HEX];
		size_t al = delta_version(40, a, sizeof(a)), bl = delta_version(41, b, sizeof(b));
		struct ps_blob_in w[2] = { { asha, a, al, NULL }, { bsha, b, bl, asha } };

		ps_git_blob_sha(a, al, asha);
		ps_git_blob_sha(b, bl, bsha);
		CHECK_OK(ps_store_blob_put_many(s, w, 2));
		CHECK_INT(blob_int(path, "encoding", asha), PS_BLOB_ZSTD);
		CHECK_INT(blob_int(path, "encoding", bsha), PS_BLOB_DELTA);
		expect_blobs(s, w, 2);
	}
	/* Cut from its packed base: the delta becomes plain, and reads the same. */
	CHECK_OK(ps_store_begin(s));
	{
		char *list[1] = { shas[3] };
		CHECK_OK(ps_store_blobs_make_plain(s, list, 1, &rewritten));
	}
	CHECK_OK(ps_store_commit(s));
	CHECK_INT(rewritten.blobs_rewritten, 1);
	CHECK_INT(blob_int(path, "encoding", shas[3]), PS_BLOB_ZSTD);
	{
		struct ps_blob_in b = { shas[3], vs[3], lens[3], NULL };
		expect_blobs(s, &b, 1);
	}
	ps_store_free(s);
	free(filler[0]);
	free(filler[1]);
	free(path);
}

/* Writes `n` small files as one pack; their shas in `shas`, contents in `bufs`. */
static void put_pack(struct ps_store *s, int first, int n, char (*shas)[PS_SHA_HEX], char **bufs,
		     size_t len)
{
	struct ps_blob_in *v = calloc((size_t)n, sizeof(*v));

	for (int i = 0; i < n; i++) {
		bufs[i] = pack_file(first + i, len);
		ps_git_blob_sha(bufs[i], len, shas[i]);
		v[i] = (struct ps_blob_in){ shas[i], bufs[i], len, NULL };
	}
	CHECK_OK(ps_store_blob_put_many(s, v, (size_t)n));
	free(v);
}

static void expect_corrupt(struct ps_store *s, const char *sha, const char *also)
{
	void *data = NULL;
	size_t len = 0;

	CHECK_INT(ps_store_blob_get(s, sha, &data, &len), PS_ESTORE);
	CHECK_STR(ps_error_slug(), "blob_corrupt");
	CHECK(strstr(ps_error_message(), sha) != NULL);
	if (also && !strstr(ps_error_message(), also)) {
		fprintf(stderr, "error lacks '%s': %s\n", also, ps_error_message());
		ps_test_failures++;
	}
	CHECK(data == NULL);
	free(data);
}

/* A damaged pack or member row is an error naming the blob (and the pack), never another
 * blob's bytes, whether the pack is in the reader's cache or not. */
static void test_blob_packs_corrupt(void)
{
	enum { N = 12 };
	char *path, shas[N][PS_SHA_HEX], *bufs[N], *sql, pack_name[32];
	struct ps_store *s = open_store(&path);
	struct ps_blob_in ok[2];
	int64_t pack, off;

	put_pack(s, 0, N, shas, bufs, 2500);
	pack = blob_int(path, "pack", shas[0]);
	CHECK(pack > 0);
	snprintf(pack_name, sizeof(pack_name), "pack %lld", (long long)pack);
	ok[0] = (struct ps_blob_in){ shas[0], bufs[0], 2500, NULL };
	ok[1] = (struct ps_blob_in){ shas[N - 1], bufs[N - 1], 2500, NULL };
	expect_blobs(s, ok, 2); /* the pack is in this handle's cache from here on */

	/* A member row pointing one byte off, then outside the pack: fails from the cache and
	 * from the store alike. */
	off = blob_int(path, "pack_offset", shas[3]);
	sql = ps_asprintf("UPDATE blobs SET pack_offset = pack_offset + 1 WHERE sha = ps_unhex('%s')",
			  shas[3]);
	db_exec(path, sql);
	free(sql);
	expect_corrupt(s, shas[3], pack_name);
	expect_blobs(s, ok, 2);
	/* Another member's place: its bytes, which must not pass for this blob's. */
	sql = ps_asprintf("UPDATE blobs SET pack_offset = %lld WHERE sha = ps_unhex('%s')",
			  (long long)blob_int(path, "pack_offset", shas[4]), shas[3]);
	db_exec(path, sql);
	free(sql);
	expect_corrupt(s, shas[3], pack_name);
	sql = ps_asprintf("UPDATE blobs SET pack_offset = 10000000 WHERE sha = ps_unhex('%s')",
			  shas[3]);
	db_exec(path, sql);
	free(sql);
	expect_corrupt(s, shas[3], pack_name);
	sql = ps_asprintf("UPDATE blobs SET pack_offset = %lld WHERE sha = ps_unhex('%s')",
			  (long long)off, shas[3]);
	db_exec(path, sql);
	free(sql);
	{
		struct ps_blob_in b = { shas[3], bufs[3], 2500, NULL };
		expect_blobs(s, &b, 1);
	}
	/* A member row given bytes of its own (its content altered in place). */
	sql = ps_asprintf(ps_test_pg() ? "UPDATE blobs SET content = '\\x3f'::bytea WHERE sha = ps_unhex('%s')"
				       : "UPDATE blobs SET content = X'3f' WHERE sha = ps_unhex('%s')",
			  shas[2]);
	db_exec(path, sql);
	free(sql);
	expect_corrupt(s, shas[2], NULL);
	ps_store_free(s);

	/* The pack's frame damaged: every member fails, naming itself and the pack. */
	sql = ps_asprintf(ps_test_pg()
			  ? "UPDATE blob_packs SET content = overlay(content placing "
			    "'\\x5a5a5a5a'::bytea from length(content) / 2 + 1 for 4) WHERE id = %lld"
			  : "UPDATE blob_packs SET content = substr(content, 1, length(content) / 2) "
			    "|| x'5a5a5a5a' || substr(content, length(content) / 2 + 5) WHERE id = %lld",
			  (long long)pack);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	expect_corrupt(s, shas[0], pack_name);
	expect_corrupt(s, shas[7], pack_name);
	ps_store_free(s);

	/* The pack gone behind the store's back (the foreign key would refuse it). */
	if (ps_test_pg())
		db_exec(path, "ALTER TABLE blobs DROP CONSTRAINT blobs_pack_fkey");
	sql = ps_asprintf("DELETE FROM blob_packs WHERE id = %lld", (long long)pack);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_open(&s, path, 0));
	expect_corrupt(s, shas[5], "not stored");
	expect_corrupt(s, shas[5], pack_name);
	ps_store_free(s);
	for (int i = 0; i < N; i++)
		free(bufs[i]);
	free(path);
}

/* A pack written in a transaction that rolls back is gone, and its id may come back for
 * another pack (SQLite's AUTOINCREMENT rolls back too): the reader's cache never answers for
 * the new one with the old content. */
static void test_blob_packs_rollback(void)
{
	enum { N = 6 };
	char *path, a[N][PS_SHA_HEX], b[N][PS_SHA_HEX], *abuf[N], *bbuf[N];
	struct ps_store *s = open_store(&path);
	struct ps_blob_in v[N];
	void *data = NULL;
	size_t len = 0;
	int64_t pack_a;

	CHECK_OK(ps_store_begin(s));
	put_pack(s, 0, N, a, abuf, 1500);
	{
		struct ps_blob_row row = { 0 };
		CHECK_OK(ps_store_blob_row_get(s, a[0], &row)); /* uncommitted: through the handle */
		CHECK_INT(row.encoding, PS_BLOB_PACKED);
		pack_a = row.pack;
		free(row.content);
	}
	for (int i = 0; i < N; i++)
		v[i] = (struct ps_blob_in){ a[i], abuf[i], 1500, NULL };
	expect_blobs(s, v, N);
	ps_store_rollback(s);
	CHECK_INT(ps_store_blob_get(s, a[0], &data, &len), PS_ENOTFOUND);
	free(data);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs"), 0);

	/* Other blobs, same sizes, so the same offsets in a pack of (on SQLite) the same id. */
	CHECK_OK(ps_store_begin(s));
	put_pack(s, 100, N, b, bbuf, 1500);
	CHECK_OK(ps_store_commit(s));
	if (!ps_test_pg())
		CHECK_INT(blob_int(path, "pack", b[0]), pack_a);
	for (int i = 0; i < N; i++)
		v[i] = (struct ps_blob_in){ b[i], bbuf[i], 1500, NULL };
	expect_blobs(s, v, N);
	/* And the first ones again, after. */
	for (int i = 0; i < N; i++) {
		free(abuf[i]);
		abuf[i] = NULL;
	}
	put_pack(s, 0, N, a, abuf, 1500);
	for (int i = 0; i < N; i++)
		v[i] = (struct ps_blob_in){ a[i], abuf[i], 1500, NULL };
	expect_blobs(s, v, N);
	ps_store_free(s);
	CHECK_OK(ps_store_open(&s, path, 0));
	expect_blobs(s, v, N);
	ps_store_free(s);
	for (int i = 0; i < N; i++) {
		free(abuf[i]);
		free(bbuf[i]);
	}
	free(path);
}

/* A prune gives back the space of pruned pack members: a pack whose members all went is
 * deleted, a sparse one rewritten into a new pack with the members left (all still read),
 * a dense one left alone; the bytes it reports are what the store's stats lose. */
static void test_blob_packs_prune(void)
{
	enum { NA = 30, NB = 12, NC = 20 };
	char *path, a[NA][PS_SHA_HEX], b[NB][PS_SHA_HEX], c[NC][PS_SHA_HEX];
	char *abuf[NA], *bbuf[NB], *cbuf[NC];
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "p");
	struct ps_change ch[NA + NB + NC];
	struct ps_prune_stats pr = { 0 };
	struct ps_store_stats before, after;
	struct ps_blob_in keep[3];
	int64_t s1, s2, pack_a, pack_c;
	char names[NA + NB + NC][16];
	size_t n = 0;

	put_pack(s, 0, NA, a, abuf, 3000);   /* 90 KB: one full pack and a leftover pack */
	put_pack(s, 100, NB, b, bbuf, 3000); /* 36 KB: one pack */
	put_pack(s, 200, NC, c, cbuf, 2000); /* 40 KB: one pack, kept whole */
	pack_a = blob_int(path, "pack", a[0]);
	pack_c = blob_int(path, "pack", c[0]);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs"), 4);
	for (int i = 0; i < NA + NB + NC; i++) {
		const char *sha = i < NA ? a[i] : i < NA + NB ? b[i - NA] : c[i - NA - NB];
		snprintf(names[i], sizeof(names[i]), "f%03d.c", i);
		ch[i] = (struct ps_change){ .status = PS_CHANGE_ADDED, .path = names[i],
					    .mode = PS_MODE_FILE, .size = i < NA + NB ? 3000 : 2000 };
		memcpy(ch[i].sha, sha, PS_SHA_HEX);
	}
	s1 = commit_sync(s, p, ch, NA + NB + NC, "c1");
	CHECK(s1 > 0);
	/* Sync 2 keeps a[0], a[1], a[29] and every c; the rest goes. */
	for (int i = 0; i < NA + NB; i++) {
		if (i == 0 || i == 1 || i == NA - 1)
			continue;
		ch[n] = change(PS_CHANGE_DELETED, names[i], NULL);
		n++;
	}
	s2 = commit_sync(s, p, ch, n, "c2");
	CHECK_OK(ps_store_stats(s, 0, &before));
	CHECK_INT(before.stored_bytes, stored_by_rows(path));
	CHECK_OK(ps_store_prune_syncs(s, p->id, s2, &pr));
	CHECK_OK(ps_store_prune_blobs(s, &pr));
	CHECK_INT(pr.blobs, NA + NB - 3);
	CHECK_INT(pr.packs_rewritten, 3);
	CHECK_OK(ps_store_stats(s, 0, &after));
	CHECK_INT(after.stored_bytes, stored_by_rows(path));
	CHECK(after.stored_bytes < before.stored_bytes);
	CHECK_INT(pr.blob_bytes, before.stored_bytes - after.stored_bytes);
	/* The dense pack stays as it was; the three members left share one new pack. */
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs"), 2);
	CHECK_INT(blob_int(path, "pack", c[NC - 1]), pack_c);
	CHECK(blob_int(path, "pack", a[0]) > pack_c);
	CHECK_INT(blob_int(path, "pack", a[29]), blob_int(path, "pack", a[0]));
	CHECK_INT(blob_int(path, "encoding", a[1]), PS_BLOB_PACKED);
	CHECK(blob_int(path, "pack", a[0]) != pack_a);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs p WHERE size <> (SELECT sum(size) "
			       "FROM blobs b WHERE b.pack = p.id)"), 0);
	keep[0] = (struct ps_blob_in){ a[0], abuf[0], 3000, NULL };
	keep[1] = (struct ps_blob_in){ a[1], abuf[1], 3000, NULL };
	keep[2] = (struct ps_blob_in){ a[NA - 1], abuf[NA - 1], 3000, NULL };
	expect_blobs(s, keep, 3);
	for (int i = 0; i < NC; i++) {
		struct ps_blob_in k = { c[i], cbuf[i], 2000, NULL };
		expect_blobs(s, &k, 1);
	}
	ps_store_free(s);
	CHECK_OK(ps_store_open(&s, path, 0));
	expect_blobs(s, keep, 3);
	/* Nothing left to do. */
	memset(&pr, 0, sizeof(pr));
	CHECK_OK(ps_store_prune_blobs(s, &pr));
	CHECK_INT(pr.blobs, 0);
	CHECK_INT(pr.packs_rewritten, 0);
	CHECK_INT(pr.blob_bytes, 0);
	ps_project_free(p);
	ps_store_free(s);
	for (int i = 0; i < NA; i++)
		free(abuf[i]);
	for (int i = 0; i < NB; i++)
		free(bbuf[i]);
	for (int i = 0; i < NC; i++)
		free(cbuf[i]);
	free(path);
}

/* Deltas a prune cuts from their (packed) bases are rewritten packed together, not one frame
 * each: the store does not grow back to what it was without packs. */
static void test_blob_packs_prune_deltas(void)
{
	enum { N = 10 };
	char *path, old[N][PS_SHA_HEX], neu[N][PS_SHA_HEX], *obuf[N], *nbuf[N], names[N][16];
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "p");
	struct ps_change ch[N];
	struct ps_blob_in v[N];
	struct ps_prune_stats pr = { 0 };
	struct ps_store_stats before, after;
	int64_t s2;

	put_pack(s, 0, N, old, obuf, 3000);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "f%02d.c", i);
		ch[i] = (struct ps_change){ .status = PS_CHANGE_ADDED, .path = names[i],
					    .mode = PS_MODE_FILE, .size = 3000 };
		memcpy(ch[i].sha, old[i], PS_SHA_HEX);
	}
	commit_sync(s, p, ch, N, "c1");
	for (int i = 0; i < N; i++) {
		nbuf[i] = ps_strdup(obuf[i]);
		memcpy(nbuf[i] + 100, "EDITED", 6);
		ps_git_blob_sha(nbuf[i], 3000, neu[i]);
		v[i] = (struct ps_blob_in){ neu[i], nbuf[i], 3000, old[i] };
		ch[i].status = PS_CHANGE_MODIFIED;
		memcpy(ch[i].sha, neu[i], PS_SHA_HEX);
		memcpy(ch[i].previous_sha, old[i], PS_SHA_HEX);
		ch[i].previous_mode = PS_MODE_FILE;
	}
	CHECK_OK(ps_store_blob_put_many(s, v, N));
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 2"), N);
	s2 = commit_sync(s, p, ch, N, "c2");
	CHECK_OK(ps_store_stats(s, 0, &before));
	CHECK_OK(ps_store_prune_syncs(s, p->id, s2, &pr));
	CHECK_OK(ps_store_prune_blobs(s, &pr));
	CHECK_INT(pr.blobs, N);
	CHECK_INT(pr.blobs_rewritten, N);
	CHECK_INT(pr.packs_rewritten, 1);
	/* What the store gave back: the old pack, less the new pack of the rewritten deltas
	 * and the deltas' own rows. */
	CHECK_OK(ps_store_stats(s, 0, &after));
	CHECK_INT(pr.blob_bytes, before.stored_bytes - after.stored_bytes);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 3"), N);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blob_packs"), 1);
	expect_blobs(s, v, N);
	ps_store_free(s);
	CHECK_OK(ps_store_open(&s, path, 0));
	expect_blobs(s, v, N);
	ps_project_free(p);
	ps_store_free(s);
	for (int i = 0; i < N; i++) {
		free(obuf[i]);
		free(nbuf[i]);
	}
	free(path);
}

/* `projsync store pack`: blobs stored one by one (ps_store_blob_put, as every blob was before
 * schema 27) are packed in place, every one still reads byte-exact, the stored bytes shrink,
 * deltas naming them still read, a damaged row is left as it is, large ones and deltas stay,
 * and a second run finds only what was stored plain since. */
static void test_blob_packs_existing(void)
{
	enum { N = 40 };
	char *path, shas[N + 4][PS_SHA_HEX], *bufs[N + 4], *sql;
	struct ps_store *s = open_store(&path);
	struct ps_blob_in v[N + 4];
	struct ps_pack_report r;
	struct ps_store_stats before, after;
	char *big = pack_file(9999, PS_BLOB_PACK_MEMBER_MAX + 100), *delta;
	size_t delta_len;

	for (int i = 0; i < N; i++) {
		size_t len = 3000 + (size_t)(i * 53 % 1500);
		bufs[i] = pack_file(i, len);
		ps_git_blob_sha(bufs[i], len, shas[i]);
		v[i] = (struct ps_blob_in){ shas[i], bufs[i], len, NULL };
		CHECK_OK(ps_store_blob_put(s, shas[i], bufs[i], len));
	}
	/* A large blob (stays alone) and a delta against one of the small ones (stays a delta,
	 * its base now packed). */
	ps_git_blob_sha(big, PS_BLOB_PACK_MEMBER_MAX + 100, shas[N]);
	CHECK_OK(ps_store_blob_put(s, shas[N], big, PS_BLOB_PACK_MEMBER_MAX + 100));
	v[N] = (struct ps_blob_in){ shas[N], big, PS_BLOB_PACK_MEMBER_MAX + 100, NULL };
	delta_len = v[7].len + 20;
	delta = malloc(delta_len + 1);
	memcpy(delta, bufs[7], v[7].len);
	memcpy(delta + v[7].len, "/* one more line */\n", 20);
	ps_git_blob_sha(delta, delta_len, shas[N + 1]);
	CHECK_OK(ps_store_blob_put_delta(s, shas[N + 1], delta, delta_len, shas[7]));
	CHECK_INT(blob_int(path, "encoding", shas[N + 1]), PS_BLOB_DELTA);
	v[N + 1] = (struct ps_blob_in){ shas[N + 1], delta, delta_len, NULL };
	/* A damaged plain row: its bytes no longer give its id. */
	sql = ps_asprintf("UPDATE blobs SET encoding = 0, content = ps_unhex('%040d'), size = 20 "
			  "WHERE sha = ps_unhex('%s')", 7, shas[11]);
	db_exec(path, sql);
	free(sql);
	CHECK_OK(ps_store_stats(s, 0, &before));

	CHECK_OK(ps_store_blobs_pack_existing(s, 16384, NULL, NULL, &r));
	CHECK_INT(r.candidates, N);
	CHECK_INT(r.damaged, 1);
	/* All the good ones but a lone last one (the list's order is the backend's). */
	CHECK(r.blobs == N - 1 || r.blobs == N - 2);
	CHECK(r.packs >= 2); /* 16 KiB batches: several transactions, each its own packs */
	CHECK(r.bytes_after < r.bytes_before);
	CHECK_OK(ps_store_stats(s, 0, &after));
	CHECK(after.stored_bytes < before.stored_bytes);
	CHECK_INT(after.stored_bytes, stored_by_rows(path));
	CHECK_INT(after.packs, r.packs);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 3"), after.blobs_packed);
	CHECK_INT(after.blobs_packed, r.blobs); /* what it says it packed, it packed */
	CHECK_INT(blob_int(path, "encoding", shas[11]), 0);
	CHECK_INT(blob_int(path, "encoding", shas[N]), PS_BLOB_ZSTD);
	CHECK_INT(blob_int(path, "encoding", shas[N + 1]), PS_BLOB_DELTA);
	/* Its base: packed, or the lone last blob of the list (the list's order is the
	 * backend's: by first file version, then row id or id). It reads either way. */
	CHECK(blob_int(path, "encoding", shas[7]) == PS_BLOB_PACKED ||
	      blob_int(path, "encoding", shas[7]) == PS_BLOB_ZSTD);
	for (int i = 0; i < N + 2; i++)
		if (i != 11)
			expect_blobs(s, &v[i], 1);
	ps_store_free(s);
	/* A new handle (no cache) reads the same. */
	CHECK_OK(ps_store_open(&s, path, 0));
	for (int i = 0; i < N + 2; i++)
		if (i != 11)
			expect_blobs(s, &v[i], 1);

	/* Again: nothing new but the damaged row and a lone leftover stay candidates. */
	CHECK_OK(ps_store_blobs_pack_existing(s, 0, NULL, NULL, &r));
	CHECK(r.candidates <= 2);
	CHECK_INT(r.damaged, 1);
	/* Two more stored alone later: packed by the next run, with what was left. */
	for (int i = N + 2; i < N + 4; i++) {
		size_t len = 2000 + (size_t)i;
		bufs[i] = pack_file(i, len);
		ps_git_blob_sha(bufs[i], len, shas[i]);
		v[i] = (struct ps_blob_in){ shas[i], bufs[i], len, NULL };
		CHECK_OK(ps_store_blob_put(s, shas[i], bufs[i], len));
	}
	CHECK_OK(ps_store_blobs_pack_existing(s, 0, NULL, NULL, &r));
	CHECK(r.blobs >= 2);
	CHECK_INT(blob_int(path, "encoding", shas[N + 2]), PS_BLOB_PACKED);
	CHECK_INT(blob_int(path, "encoding", shas[N + 3]), PS_BLOB_PACKED);
	for (int i = 0; i < N + 4; i++)
		if (i != 11)
			expect_blobs(s, &v[i], 1);

	for (int i = 0; i < N; i++)
		free(bufs[i]);
	free(bufs[N + 2]);
	free(bufs[N + 3]);
	free(big);
	free(delta);
	ps_store_free(s);
	free(path);
}

/* A lone small blob left at the end of `store pack`'s list cannot be packed (a pack of one
 * saves nothing): it stays as it is and is not reported as packed, so a second run over a store
 * with nothing else to pack says so, rather than rewriting that blob (and compacting) each time. */
static void test_blob_packs_existing_lone(void)
{
	char *path, sha[PS_SHA_HEX], *buf = pack_file(4242, 3000);
	struct ps_store *s = open_store(&path);
	struct ps_pack_report r;
	struct ps_blob_in v = { sha, buf, 3000, NULL };
	int64_t row_len;

	ps_git_blob_sha(buf, 3000, sha);
	CHECK_OK(ps_store_blob_put(s, sha, buf, 3000));
	row_len = blob_int(path, "length(content)", sha);
	for (int run = 0; run < 2; run++) {
		CHECK_OK(ps_store_blobs_pack_existing(s, 0, NULL, NULL, &r));
		CHECK_INT(r.candidates, 1);
		CHECK_INT(r.blobs, 0);
		CHECK_INT(r.packs, 0);
		CHECK_INT(r.bytes_before, 0);
		CHECK_INT(r.bytes_after, 0);
		CHECK_INT(blob_int(path, "encoding", sha), PS_BLOB_ZSTD);
		CHECK_INT(blob_int(path, "length(content)", sha), row_len);
		expect_blobs(s, &v, 1);
	}
	ps_store_free(s);
	free(buf);
	free(path);
}

/* store copy moves packs with their ids before the blobs naming them: every packed blob and
 * a delta against one read back from the copy, and the copy's next pack gets a new id. */
static void test_blob_packs_copy(void)
{
	enum { N = 40 };
	char *path, *target = ps_test_store_url(), shas[N][PS_SHA_HEX], *bufs[N];
	char d[32768], dsha[PS_SHA_HEX], *out, *want;
	struct ps_store *s = open_store(&path), *to = NULL;
	struct ps_copy_counts counts;
	struct ps_blob_in v[N + 1];
	size_t dl = delta_version(1, d, sizeof(d));
	char base[32768], bsha[PS_SHA_HEX];
	size_t bl = delta_version(0, base, sizeof(base));
	int64_t max_pack;

	ps_git_blob_sha(base, bl, bsha);
	ps_git_blob_sha(d, dl, dsha);
	{
		struct ps_blob_in w[3] = { { bsha, base, bl, NULL }, { dsha, d, dl, bsha } };
		char *f = pack_file(999, 1000), fsha[PS_SHA_HEX];
		ps_git_blob_sha(f, 1000, fsha);
		w[2] = (struct ps_blob_in){ fsha, f, 1000, NULL };
		/* base packed with f (the delta's row is written once the base's pack is) */
		struct ps_blob_in order[3] = { w[0], w[2], w[1] };
		CHECK_OK(ps_store_blob_put_many(s, order, 3));
		free(f);
	}
	CHECK_INT(blob_int(path, "encoding", bsha), PS_BLOB_PACKED);
	CHECK_INT(blob_int(path, "encoding", dsha), PS_BLOB_DELTA);
	put_pack(s, 0, N, shas, bufs, 4000);
	ps_store_free(s);
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_OK(ps_store_open(&to, target, 0));
	CHECK_OK(ps_store_copy(s, to, &counts));
	out = ps_test_sql(target, "SELECT id, size, length(content) FROM blob_packs ORDER BY id");
	want = ps_test_sql(path, "SELECT id, size, length(content) FROM blob_packs ORDER BY id");
	CHECK_STR(out, want);
	free(out);
	free(want);
	for (int i = 0; i < N; i++)
		v[i] = (struct ps_blob_in){ shas[i], bufs[i], 4000, NULL };
	v[N] = (struct ps_blob_in){ dsha, d, dl, NULL };
	expect_blobs(to, v, N + 1);
	max_pack = db_int(target, "SELECT max(id) FROM blob_packs");
	{
		char *more[N];
		char msha[N][PS_SHA_HEX];
		put_pack(to, 500, 4, msha, more, 1000);
		CHECK(blob_int(target, "pack", msha[0]) > max_pack);
		for (int i = 0; i < 4; i++)
			free(more[i]);
	}
	ps_store_free(to);
	ps_store_free(s);
	for (int i = 0; i < N; i++)
		free(bufs[i]);
	free(target);
	free(path);
}

#define OLD_BLOBS 100
/* Index of migrations/0010_blob_encoding.sql among the embedded migrations. */
#define BLOB_ENCODING_STEP 9

static void old_content(int i, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	while (n + 40 < cap && n < 600 + (size_t)i * 7)
		n += (size_t)snprintf(buf + n, cap - n, "blob %d line %zu: some source text\n", i, n);
	*len = n;
}

static void kill_at(void *ud, size_t row)
{
	if (row == *(size_t *)ud)
		raise(SIGKILL);
}

/* A store written by schema 9 (raw blobs, the schema before 0010) converts in batches; a
 * conversion killed in the middle of a batch resumes after the last committed batch, and every
 * blob still verifies. SQLite only: PostgreSQL keeps the rows it had raw (encoding 0). */
static void test_blob_conversion(void)
{
	char *dir = ps_test_tmpdir(), *path = ps_asprintf("%s/old.db", dir), buf[4096];
	char shas[OLD_BLOBS + 2][PS_SHA_HEX];
	sqlite3 *raw = NULL;
	sqlite3_stmt *st = NULL;
	struct ps_store *s = NULL;
	struct ps_store_stats stats;
	size_t len, kill_row = 40;
	uint64_t x = 42;
	pid_t pid;
	int status = 0;

	if (ps_test_pg()) {
		free(path);
		free(dir);
		return;
	}
	/* Schema 9 as the previous projsync wrote it, with raw blob rows. */
	CHECK_INT(sqlite3_open(path, &raw), SQLITE_OK);
	CHECK_INT(ps_sqlite_functions(raw), SQLITE_OK); /* for the migrations from 16 on */
	/* Migration 0014 names code_fts's tokenizer, which only projsync's connections know. */
	CHECK_OK(ps_sqlite_code_register(raw));
	for (int i = 0; i < BLOB_ENCODING_STEP; i++)
		CHECK_INT(sqlite3_exec(raw, ps_migrations[i].text, NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_exec(raw, "PRAGMA user_version = 9; PRAGMA journal_mode=WAL", NULL, NULL,
			       NULL), SQLITE_OK);
	sqlite3_prepare_v2(raw, "INSERT INTO blobs (sha, size, content) VALUES (?, ?, ?)", -1, &st,
			   NULL);
	for (int i = 0; i < OLD_BLOBS + 2; i++) {
		if (i == OLD_BLOBS) { /* incompressible */
			for (len = 0; len < 2048; len += 8) {
				uint64_t r = rng_next(&x);
				memcpy(buf + len, &r, 8);
			}
		} else {
			old_content(i, buf, sizeof(buf), &len);
		}
		ps_git_blob_sha(buf, len, shas[i]);
		if (i == OLD_BLOBS + 1) /* damaged before the upgrade: left as it is */
			buf[0] ^= 1;
		sqlite3_bind_text(st, 1, shas[i], -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
		sqlite3_bind_blob(st, 3, buf, (int)len, SQLITE_TRANSIENT);
		CHECK_INT(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	/* The SQL migrations from 10 on (what ps_store_migrate runs before converting). */
	CHECK(strstr(ps_migrations[BLOB_ENCODING_STEP].name, "0010_blob_encoding") != NULL);
	{
		extern const size_t ps_migrations_count;
		char *pragma = ps_asprintf("PRAGMA user_version = %zu", ps_migrations_count);

		for (size_t i = BLOB_ENCODING_STEP; i < ps_migrations_count; i++)
			CHECK_INT(sqlite3_exec(raw, ps_migrations[i].text, NULL, NULL, NULL),
				  SQLITE_OK);
		CHECK_INT(sqlite3_exec(raw, pragma, NULL, NULL, NULL), SQLITE_OK);
		free(pragma);
	}
	sqlite3_close(raw);
	CHECK_INT(db_int(path, "SELECT done FROM blob_conversion"), 0);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs_raw"), OLD_BLOBS + 2);

	/* Killed in the middle of the third batch of 16: two batches are kept. */
	pid = fork();
	if (pid == 0) {
		if (ps_store_open(&s, path, PS_STORE_NO_MIGRATE) < 0)
			_exit(3);
		ps_sqlite_blob_convert(s, 16, kill_at, &kill_row);
		_exit(4);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_INT(db_int(path, "SELECT done FROM blob_conversion"), 0);
	CHECK_INT(db_int(path, "SELECT converted FROM blob_conversion"), 32);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs"), 32);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs_raw"), OLD_BLOBS + 2 - 32);
	CHECK(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 1") >= 30);

	/* Meanwhile every blob reads back, from either table. */
	CHECK_OK(ps_store_open(&s, path, PS_STORE_NO_MIGRATE));
	for (int i = 0; i < OLD_BLOBS; i++) {
		void *data = NULL;
		size_t n = 0;
		bool have = false;
		const char *one = shas[i];
		char actual[PS_SHA_HEX];

		CHECK_OK(ps_store_blob_have(s, &one, 1, &have));
		CHECK(have);
		CHECK_OK(ps_store_blob_get(s, shas[i], &data, &n));
		ps_git_blob_sha(data, n, actual);
		CHECK_STR(actual, shas[i]);
		free(data);
	}
	CHECK_OK(ps_store_stats(s, 0, &stats));
	CHECK_INT(stats.blobs, OLD_BLOBS + 2);
	CHECK_INT(stats.unconverted_blobs, OLD_BLOBS + 2 - 32);
	ps_store_free(s);

	/* store copy meanwhile takes the rows of both tables: on a snapshot of the half-converted
	 * store (without the damaged row, which the copy would rightly refuse), every blob
	 * arrives and reads back. */
	{
		char *half = ps_asprintf("%s/half.db", dir), *sql = ps_asprintf("VACUUM INTO '%s'", half);
		char *target = ps_test_store_url();
		struct ps_store *from = NULL, *to = NULL;
		struct ps_copy_counts counts;

		db_exec(path, sql);
		free(sql);
		sql = ps_asprintf("DELETE FROM blobs WHERE sha = ps_unhex('%s'); DELETE FROM "
				  "blobs_raw WHERE sha = '%s'", shas[OLD_BLOBS + 1], shas[OLD_BLOBS + 1]);
		db_exec(half, sql);
		free(sql);
		CHECK_OK(ps_store_open(&from, half, PS_STORE_NO_MIGRATE));
		CHECK_OK(ps_store_open(&to, target, 0));
		CHECK_OK(ps_store_copy(from, to, &counts));
		CHECK_INT(db_int(target, "SELECT count(*) FROM blobs"), OLD_BLOBS + 1);
		for (int i = 0; i <= OLD_BLOBS; i++) {
			void *data = NULL;
			size_t n = 0;
			char actual[PS_SHA_HEX] = "";

			CHECK_OK(ps_store_blob_get(to, shas[i], &data, &n));
			if (data)
				ps_git_blob_sha(data, n, actual);
			CHECK_STR(actual, shas[i]);
			free(data);
		}
		ps_store_free(from);
		ps_store_free(to);
		free(target);
		free(half);
	}

	/* Opening resumes and finishes it. */
	CHECK_OK(ps_store_open(&s, path, 0));
	CHECK_INT(db_int(path, "SELECT done FROM blob_conversion"), 1);
	CHECK_INT(db_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'blobs_raw'"), 0);
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 1"), OLD_BLOBS);
	CHECK_INT(db_int(path, "SELECT converted FROM blob_conversion"), OLD_BLOBS + 2);
	for (int i = 0; i < OLD_BLOBS + 2; i++) {
		void *data = NULL;
		size_t n = 0;
		char actual[PS_SHA_HEX];

		CHECK_OK(ps_store_blob_get(s, shas[i], &data, &n));
		ps_git_blob_sha(data, n, actual);
		if (i == OLD_BLOBS + 1)
			CHECK(strcmp(actual, shas[i]) != 0); /* still the damaged raw bytes */
		else
			CHECK_STR(actual, shas[i]);
		free(data);
	}
	CHECK_OK(ps_store_stats(s, 0, &stats));
	CHECK_INT(stats.blobs, OLD_BLOBS + 2);
	CHECK_INT(stats.blobs_compressed, OLD_BLOBS);
	CHECK_INT(stats.unconverted_blobs, 0);
	CHECK(stats.stored_bytes < stats.raw_bytes / 2);
	ps_store_free(s);
	free(path);
	free(dir);
}

/* ps_store_stats: a project counts the blobs its versions use; the store counts each once. */
static void test_stats(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *a = add_project(s, "a"), *b = add_project(s, "b");
	struct ps_change ca[2] = { change(PS_CHANGE_ADDED, "x.txt", "shared content\n"),
				   change(PS_CHANGE_ADDED, "y.txt", "only in a\n") };
	struct ps_change cb[1] = { change(PS_CHANGE_ADDED, "z.txt", "shared content\n") };
	struct ps_store_stats st;

	CHECK_OK(ps_store_blob_put(s, ca[0].sha, "shared content\n", 15));
	CHECK_OK(ps_store_blob_put(s, ca[1].sha, "only in a\n", 10));
	commit_sync(s, a, ca, 2, "c1");
	commit_sync(s, b, cb, 1, "c2");
	CHECK_OK(ps_store_stats(s, a->id, &st));
	CHECK_INT(st.syncs, 1);
	CHECK_INT(st.syncs_succeeded, 1);
	CHECK_INT(st.file_versions, 2);
	CHECK_INT(st.blobs, 2);
	CHECK_INT(st.raw_bytes, 25);
	CHECK_INT(st.stored_bytes, 25);
	CHECK_OK(ps_store_stats(s, b->id, &st));
	CHECK_INT(st.blobs, 1);
	CHECK_INT(st.raw_bytes, 15);
	CHECK_OK(ps_store_stats(s, 0, &st));
	CHECK_INT(st.projects, 2);
	CHECK_INT(st.syncs, 2);
	CHECK_INT(st.file_versions, 3);
	CHECK_INT(st.blobs, 2);
	CHECK_INT(st.raw_bytes, 25);
	CHECK(st.disk_bytes > 0);
	CHECK_INT(ps_store_stats(s, 999, &st), PS_ENOTFOUND);
	ps_project_free(a);
	ps_project_free(b);
	ps_store_free(s);
}

static void test_projects(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "proj"), *got = NULL;
	struct ps_project dup = { .name = (char *)"proj", .source = (char *)"/x" };
	struct ps_project **list = NULL;
	struct ps_sync *y = NULL;
	struct ps_owner o = me();
	size_t n = 0;

	CHECK_INT(ps_store_project_add(s, &dup), PS_ECONFLICT);
	ps_strv_dispose(&dup.memory_globs);
	CHECK_INT(p->max_blob_size, PS_DEFAULT_MAX_BLOB_SIZE);
	CHECK_INT(p->memory_globs.n, 1);
	CHECK_STR(p->memory_globs.v[0], PS_DEFAULT_MEMORY_GLOB);
	CHECK_INT(ps_store_project_get(s, "nope", &got), PS_ENOTFOUND);
	CHECK_OK(ps_store_project_list(s, &list, &n));
	CHECK_INT(n, 1);
	for (size_t i = 0; i < n; i++)
		ps_project_free(list[i]);
	free(list);

	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
	CHECK_INT(ps_store_project_remove(s, "proj"), PS_ECONFLICT);
	CHECK_OK(ps_store_sync_request_cancel(s, y->id));
	bool req = false;
	CHECK_OK(ps_store_sync_cancel_requested(s, y->id, &req));
	CHECK(req);
	CHECK_OK(ps_store_sync_fail(s, y, PS_SYNC_CANCELLED, "cancelled", "cancelled", NULL));
	ps_sync_free(y);
	CHECK_OK(ps_store_project_remove(s, "proj"));
	CHECK_INT(ps_store_project_get(s, "proj", &got), PS_ENOTFOUND);
	ps_project_free(p);
	ps_store_free(s);
}

/*
 * Fencing (PostgreSQL): a run that stalled past its lease and whose sync another node took over
 * (a higher attempt) is refused on every write — progress, staged files and memory, events, its
 * end — with PS_ECONFLICT "taken_over", and writes nothing; the new attempt goes on.
 */
static void test_takeover_fences_the_stale_run(void)
{
	struct ps_store *s, *other;
	struct ps_project *p;
	struct ps_sync *stale = NULL, *got = NULL;
	struct ps_change c1[] = { change(PS_CHANGE_ADDED, "a", "A1") };
	struct ps_owner far = { "stalled-host", "1:1", -1 }; /* its lease already ran out */
	struct ps_owner mine = me();
	struct ps_event ev = { 0 };
	struct ps_stored_event *evs = NULL;
	size_t nev = 0;
	int64_t id = 0;
	char *url = NULL;

	if (!ps_test_pg())
		return; /* SQLite: one process per sync, reaped by its pid, never taken over */
	s = open_store(&url);
	p = add_project(s, "fenced");
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &far, &stale));
	CHECK_INT(stale->attempt, 1);
	ev.sync_id = stale->id;
	ev.seq = 1;
	ev.kind = PS_EVENT_PHASE;
	ev.attempt = stale->attempt;
	CHECK_OK(ps_store_event_append(s, &ev));

	/* Another node takes it over: attempt 2, a warning event as seq 2. */
	CHECK_OK(ps_store_open(&other, url, 0));
	CHECK_OK(ps_store_sync_takeover(other, &mine, &id));
	CHECK_INT(id, stale->id);
	CHECK_OK(ps_store_sync_get(other, id, &got));
	CHECK_INT(got->attempt, 2);

	/* The stale run wakes up: every write is refused. */
	CHECK_INT(ps_store_sync_save_progress(s, stale, 60000), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "taken_over");
	CHECK_INT(ps_store_files_stage(s, stale, c1, 1), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "taken_over");
	ev.seq = 3;
	CHECK_INT(ps_store_event_append(s, &ev), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "taken_over");
	stale->commit = ps_strdup("c1");
	CHECK_INT(ps_store_sync_finalize(s, stale, c1, 1, NULL), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "taken_over");
	CHECK_INT(ps_store_sync_fail(s, stale, PS_SYNC_FAILED, "x", "x", NULL), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "taken_over");
	CHECK_OK(ps_store_event_list(s, id, 0, 0, &evs, &nev));
	CHECK_INT(nev, 2);
	if (nev == 2)
		CHECK_INT(evs[1].kind, PS_EVENT_WARNING);
	ps_stored_events_free(evs, nev);

	/* The new attempt is untouched by all that and finishes. */
	ev.seq = 3;
	ev.attempt = got->attempt;
	CHECK_OK(ps_store_event_append(other, &ev));
	CHECK_OK(ps_store_files_stage(other, got, c1, 1));
	got->commit = ps_strdup("c1");
	ps_changes_count(c1, 1, &got->counts);
	CHECK_OK(ps_store_sync_finalize(other, got, c1, 1, NULL));
	char *a1 = short_sha("A1"), want[64];
	snprintf(want, sizeof(want), "a:%s ", a1);
	expect_snapshot(s, p->id, 0, want);
	free(a1);
	ps_sync_free(got);
	ps_sync_free(stale);
	ps_project_free(p);
	ps_store_free(other);
	ps_store_free(s);
	free(url);
}

/* Reaping vs takeover (PostgreSQL): while a serve node is alive, a reap leaves a dead owner's
 * sync to the nodes; with none alive it is marked interrupted as before. */
static void test_reap_leaves_syncs_to_live_nodes(void)
{
	struct ps_store *s;
	struct ps_project *p;
	struct ps_sync *y = NULL, *got = NULL;
	struct ps_owner far = { "gone-host", "1:1", -1 };
	struct ps_owner node = me();
	struct ps_owner far_node = { "node-host", "2:2", 60000 };
	int reaped = -1;

	if (!ps_test_pg())
		return;
	s = open_store(NULL);
	p = add_project(s, "nodes");
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &far, &y));
	/* A node on another host, renewed just now. */
	CHECK_OK(ps_store_node_beat(s, &far_node));
	CHECK_OK(ps_store_reap(s, 0, &reaped));
	CHECK_INT(reaped, 0);
	CHECK_OK(ps_store_sync_get(s, y->id, &got));
	CHECK_INT(got->status, PS_SYNC_RUNNING);
	ps_sync_free(got);
	/* It left; a node on this host (this very process) counts while it lives. */
	CHECK_OK(ps_store_node_leave(s, &far_node));
	CHECK_OK(ps_store_node_beat(s, &node));
	CHECK_OK(ps_store_reap(s, 0, &reaped));
	CHECK_INT(reaped, 0);
	CHECK_OK(ps_store_node_leave(s, &node));
	/* No node: interrupted. */
	CHECK_OK(ps_store_reap(s, 0, &reaped));
	CHECK_INT(reaped, 1);
	CHECK_OK(ps_store_sync_get(s, y->id, &got));
	CHECK_STR(got->error_code, "interrupted");
	ps_sync_free(got);
	ps_sync_free(y);
	ps_project_free(p);
	ps_store_free(s);
}

/* ---- code index ---- */

static void put_blob(struct ps_store *s, const char *data, size_t len, char sha[PS_SHA_HEX])
{
	ps_git_blob_sha(data, len, sha);
	CHECK_OK(ps_store_blob_put(s, sha, data, len));
}

/* The candidates of a query as "path:state ..." (state u, t or b). */
static char *candidates(struct ps_store *s, int64_t project, int64_t at,
			const struct ps_code_query *q, const char *prefix, const char *from,
			size_t limit)
{
	struct ps_code_candidate *v = NULL;
	struct ps_buf b;
	size_t n = 0;
	int64_t snap = 0;
	int rc = ps_store_code_candidates(s, project, at, q, prefix, from, limit, &snap, &v, &n);

	if (rc < 0)
		return ps_asprintf("error %d: %s", rc, ps_error_message());
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "");
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(&b, "%s:%c ", v[i].file.path,
			      "utb"[v[i].state == PS_CODE_UNINDEXED ? 0
				    : v[i].state == PS_CODE_TEXT   ? 1
								   : 2]);
	ps_code_candidates_free(v, n);
	return b.data ? ps_buf_take(&b, NULL) : ps_strdup("");
}

#define EXPECT_CANDIDATES_LIMIT(s, project, at, q, prefix, from, limit, want) do { \
	char *_got = candidates(s, project, at, q, prefix, from, limit); \
	CHECK_STR(_got, want); \
	free(_got); } while (0)
#define EXPECT_CANDIDATES(s, project, at, q, prefix, from, want) \
	EXPECT_CANDIDATES_LIMIT(s, project, at, q, prefix, from, 0, want)

/*
 * The code index on either backend: a query narrows text blobs to those holding its literals
 * (ASCII case folded, AND / OR), whatever bytes they hold (invalid UTF-8, NUL, characters the
 * query language of the backend treats specially), binary blobs too (by their ASCII runs:
 * before schema 12 every binary file was read by every search); unindexed blobs always stay
 * candidates; blobs kept as metadata only and symlinks never are; a search sees one snapshot.
 */
static void test_code_index(void)
{
	struct ps_store *s = open_store(NULL);
	struct ps_project *p = add_project(s, "code"), *got = NULL;
	static const char hello[] = "Hello World\n", meta[] = "100%_done C:\\%TEMP%\\_x\n",
			  near[] = "100xydone C:x%TEMPy\\z_x\n", latin1[] = "caf\xe9 Needle\xff\xfe\n",
			  nul[] = "abc\0def needle\n", bin[] = "\0binary\xff\xfe\x80 hello\x01\xc3\n",
			  later[] = "nothing here\n", fts[] = "a\"b NEAR(x) OR col:umn*\n";
	char sh[PS_SHA_HEX], sm[PS_SHA_HEX], sn[PS_SHA_HEX], sl[PS_SHA_HEX], s0[PS_SHA_HEX],
		sb[PS_SHA_HEX], su[PS_SHA_HEX], slater[PS_SHA_HEX], sf[PS_SHA_HEX];
	struct ps_strv unindexed = { 0 };
	bool indexed[3];

	CHECK(!p->no_code_index && !p->code_index_pending);
	put_blob(s, hello, sizeof(hello) - 1, sh);
	put_blob(s, meta, sizeof(meta) - 1, sm);
	put_blob(s, near, sizeof(near) - 1, sn);
	put_blob(s, latin1, sizeof(latin1) - 1, sl);
	put_blob(s, nul, sizeof(nul) - 1, s0);
	put_blob(s, bin, sizeof(bin) - 1, sb);
	put_blob(s, "unindexed hello\n", 16, su);
	put_blob(s, later, sizeof(later) - 1, slater);
	put_blob(s, fts, sizeof(fts) - 1, sf);
	CHECK_OK(ps_store_code_index_put(s, sh, hello, sizeof(hello) - 1, false));
	CHECK_OK(ps_store_code_index_put(s, sh, hello, sizeof(hello) - 1, false)); /* no-op */
	CHECK_OK(ps_store_code_index_put(s, sm, meta, sizeof(meta) - 1, false));
	CHECK_OK(ps_store_code_index_put(s, sn, near, sizeof(near) - 1, false));
	CHECK_OK(ps_store_code_index_put(s, sl, latin1, sizeof(latin1) - 1, false));
	CHECK_OK(ps_store_code_index_put(s, s0, nul, sizeof(nul) - 1, false));
	CHECK_OK(ps_store_code_index_put(s, sb, bin, sizeof(bin) - 1, true));
	CHECK_OK(ps_store_code_index_put(s, slater, later, sizeof(later) - 1, false));
	CHECK_OK(ps_store_code_index_put(s, sf, fts, sizeof(fts) - 1, false));

	struct ps_change c1[] = {
		change(PS_CHANGE_ADDED, "a/hello.txt", hello),
		change(PS_CHANGE_ADDED, "a/meta.txt", meta),
		change(PS_CHANGE_ADDED, "b/near.txt", near),
		change(PS_CHANGE_ADDED, "b/latin1.txt", latin1),
		change(PS_CHANGE_ADDED, "c/nul.txt", NULL),
		change(PS_CHANGE_ADDED, "c/bin.dat", NULL),
		change(PS_CHANGE_ADDED, "c/unindexed.txt", "unindexed hello\n"),
		change(PS_CHANGE_ADDED, "d/metadata-only.txt", "not stored hello\n"),
		change(PS_CHANGE_ADDED, "d/link", hello),
		change(PS_CHANGE_ADDED, "fts.txt", fts),
	};
	c1[4] = (struct ps_change){ .status = PS_CHANGE_ADDED, .path = (char *)"c/nul.txt",
				    .mode = PS_MODE_FILE, .size = sizeof(nul) - 1 };
	memcpy(c1[4].sha, s0, PS_SHA_HEX);
	c1[5] = (struct ps_change){ .status = PS_CHANGE_ADDED, .path = (char *)"c/bin.dat",
				    .mode = PS_MODE_FILE, .size = sizeof(bin) - 1 };
	memcpy(c1[5].sha, sb, PS_SHA_HEX);
	c1[8].mode = PS_MODE_LINK;
	int64_t s1 = commit_sync(s, p, c1, sizeof(c1) / sizeof(c1[0]), "c1");
	struct ps_change c2[] = { change(PS_CHANGE_MODIFIED, "a/hello.txt", later) };
	int64_t s2 = commit_sync(s, p, c2, 1, "c2");

	struct ps_code_query hello_q = { .op = PS_CODE_LITERAL, .literal = (char *)"HELLO wOrLd" };
	struct ps_code_query meta_q = { .op = PS_CODE_LITERAL, .literal = (char *)"100%_done" };
	struct ps_code_query esc_q = { .op = PS_CODE_LITERAL, .literal = (char *)"\\%TEMP%\\_" };
	struct ps_code_query needle_q = { .op = PS_CODE_LITERAL, .literal = (char *)"needle" };
	struct ps_code_query world_q = { .op = PS_CODE_LITERAL, .literal = (char *)"world" };
	struct ps_code_query def_q = { .op = PS_CODE_LITERAL, .literal = (char *)"def" };
	struct ps_code_query fts_q = { .op = PS_CODE_LITERAL, .literal = (char *)"a\"b NEAR(" };
	struct ps_code_query none_q = { .op = PS_CODE_LITERAL, .literal = (char *)"zzz" };
	struct ps_code_query *either[] = { &needle_q, &world_q }, *both[] = { &needle_q, &def_q };
	struct ps_code_query or_q = { .op = PS_CODE_OR, .kids = either, .nkids = 2 };
	struct ps_code_query and_q = { .op = PS_CODE_AND, .kids = both, .nkids = 2 };
	struct ps_code_query bin_q = { .op = PS_CODE_LITERAL, .literal = (char *)"BINARY" };
	struct ps_code_query bin_hello_q = { .op = PS_CODE_LITERAL, .literal = (char *)" hello" };
	const char *always = "c/unindexed.txt:u ";

	/* Without a query: every stored regular file, sorted by path. */
	EXPECT_CANDIDATES(s, p->id, s1, NULL, NULL, NULL,
			  "a/hello.txt:t a/meta.txt:t b/latin1.txt:t b/near.txt:t c/bin.dat:b "
			  "c/nul.txt:t c/unindexed.txt:u fts.txt:t ");
	char *want = ps_asprintf("a/hello.txt:t %s", always);
	EXPECT_CANDIDATES(s, p->id, s1, &hello_q, NULL, NULL, want);
	free(want);
	/* The file changed in the next sync: that snapshot does not hold the text any more. */
	EXPECT_CANDIDATES(s, p->id, s2, &hello_q, NULL, NULL, always);
	EXPECT_CANDIDATES(s, p->id, 0, &hello_q, NULL, NULL, always);
	want = ps_asprintf("a/meta.txt:t %s", always);
	EXPECT_CANDIDATES(s, p->id, s1, &meta_q, NULL, NULL, want);
	EXPECT_CANDIDATES(s, p->id, s1, &esc_q, NULL, NULL, want);
	free(want);
	EXPECT_CANDIDATES(s, p->id, s1, &needle_q, NULL, NULL,
			  "b/latin1.txt:t c/nul.txt:t c/unindexed.txt:u ");
	EXPECT_CANDIDATES(s, p->id, s1, &or_q, NULL, NULL,
			  "a/hello.txt:t b/latin1.txt:t c/nul.txt:t c/unindexed.txt:u ");
	EXPECT_CANDIDATES(s, p->id, s1, &and_q, NULL, NULL,
			  "c/nul.txt:t c/unindexed.txt:u ");
	/* A binary blob is narrowed like text, by the ASCII between its other bytes. */
	EXPECT_CANDIDATES(s, p->id, s1, &bin_q, NULL, NULL, "c/bin.dat:b c/unindexed.txt:u ");
	EXPECT_CANDIDATES(s, p->id, s1, &bin_hello_q, NULL, NULL, "c/bin.dat:b c/unindexed.txt:u ");
	want = ps_asprintf("%sfts.txt:t ", always);
	EXPECT_CANDIDATES(s, p->id, s1, &fts_q, NULL, NULL, want);
	free(want);
	EXPECT_CANDIDATES(s, p->id, s1, &none_q, NULL, NULL, always);
	/* A prefix and a resume point. */
	EXPECT_CANDIDATES(s, p->id, s1, &or_q, "b/", NULL, "b/latin1.txt:t ");
	EXPECT_CANDIDATES(s, p->id, s1, &or_q, NULL, "c/nul.txt", "c/nul.txt:t c/unindexed.txt:u ");
	EXPECT_CANDIDATES(s, p->id, s1, &or_q, "c/", "c/c", "c/nul.txt:t c/unindexed.txt:u ");
	/*
	 * The first `limit` candidates by path, and the next ones from just after the last: the
	 * same files whether the store lists the matching blobs first (few hits, or a large limit)
	 * or walks the snapshot in path order (a query most blobs satisfy, a small limit).
	 */
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, NULL, NULL, NULL, 3,
				"a/hello.txt:t a/meta.txt:t b/latin1.txt:t ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, NULL, NULL, "b/latin1.txt\x01", 2,
				"b/near.txt:t c/bin.dat:b ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, &or_q, NULL, NULL, 1, "a/hello.txt:t ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, &or_q, NULL, NULL, 2, "a/hello.txt:t b/latin1.txt:t ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, &or_q, NULL, "b/latin1.txt\x01", 2,
				"c/nul.txt:t c/unindexed.txt:u ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, &or_q, NULL, NULL, 100,
				"a/hello.txt:t b/latin1.txt:t c/nul.txt:t c/unindexed.txt:u ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s2, &or_q, NULL, NULL, 1, "b/latin1.txt:t ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, &or_q, "c/", NULL, 1, "c/nul.txt:t ");
	EXPECT_CANDIDATES_LIMIT(s, p->id, s1, &none_q, NULL, NULL, 1, always);
	struct ps_code_candidate *none = NULL;
	size_t nnone = 0;
	int64_t snap = 0;
	CHECK_INT(ps_store_code_candidates(s, p->id, 9999, &or_q, NULL, NULL, 0, &snap, &none, &nnone),
		  PS_ENOTFOUND);

	/* What the index lacks: the stored blob no sync indexed, nothing else. */
	CHECK_OK(ps_store_code_unindexed(s, p->id, &unindexed));
	CHECK_INT(unindexed.n, 1);
	if (unindexed.n == 1)
		CHECK_STR(unindexed.v[0], su);
	ps_strv_dispose(&unindexed);
	const char *shas[] = { sh, su, sb };
	CHECK_OK(ps_store_code_index_have(s, shas, 3, indexed));
	CHECK(indexed[0] && !indexed[1] && indexed[2]);
	/* Once every stored blob is indexed there is no unindexed candidate (SQLite then skips
	 * looking for them), and a new stored blob the index lacks is one again. */
	CHECK_OK(ps_store_code_index_put(s, su, "unindexed hello\n", 16, false));
	EXPECT_CANDIDATES(s, p->id, s1, &needle_q, NULL, NULL, "b/latin1.txt:t c/nul.txt:t ");
	EXPECT_CANDIDATES(s, p->id, s1, &none_q, NULL, NULL, "");
	EXPECT_CANDIDATES(s, p->id, s1, &bin_hello_q, NULL, NULL, "c/bin.dat:b c/unindexed.txt:t ");
	{
		struct ps_change c3[] = { change(PS_CHANGE_ADDED, "e/new.txt", "fresh needle\n") };
		char sfresh[PS_SHA_HEX];
		int64_t s3;

		put_blob(s, "fresh needle\n", 13, sfresh);
		s3 = commit_sync(s, p, c3, 1, "c3");

		EXPECT_CANDIDATES(s, p->id, s3, &none_q, NULL, NULL, "e/new.txt:u ");
		EXPECT_CANDIDATES(s, p->id, s3, &needle_q, NULL, NULL,
				  "b/latin1.txt:t c/nul.txt:t e/new.txt:u ");
	}

	/* Switched off and on again: the next sync owes the backlog until it is done. */
	p->no_code_index = true;
	CHECK_OK(ps_store_project_update(s, p));
	CHECK_OK(ps_store_project_get(s, "code", &got));
	CHECK(got && got->no_code_index && !got->code_index_pending);
	ps_project_free(got);
	p->no_code_index = false;
	CHECK_OK(ps_store_project_update(s, p));
	CHECK_OK(ps_store_project_get(s, "code", &got));
	CHECK(got && !got->no_code_index && got->code_index_pending);
	ps_project_free(got);
	CHECK_OK(ps_store_code_index_done(s, p->id));
	CHECK_OK(ps_store_project_get(s, "code", &got));
	CHECK(got && !got->code_index_pending);
	ps_project_free(got);
	/* A project added with the index off says so. */
	struct ps_project off = { .name = (char *)"off", .source = (char *)"/x",
				  .no_code_index = true };
	CHECK_OK(ps_store_project_add(s, &off));
	ps_strv_dispose(&off.memory_globs);
	CHECK_OK(ps_store_project_get(s, "off", &got));
	CHECK(got && got->no_code_index);
	ps_project_free(got);
	ps_project_free(p);
	ps_store_free(s);
}

/* code_unindexed as a search reads it: the count, or -1 without one. */
static int64_t unindexed_count(const char *path)
{
	return db_int(path, "SELECT sum(n) FROM code_unindexed");
}

/* The blobs ps_store_code_unindexed lists for the project, as "sha sha ...". */
static char *unindexed_list(struct ps_store *s, int64_t project)
{
	struct ps_strv v = { 0 };
	struct ps_buf b;

	CHECK_OK(ps_store_code_unindexed(s, project, &v));
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "");
	for (size_t i = 0; i < v.n; i++)
		ps_buf_printf(&b, "%s ", v.v[i]);
	ps_strv_dispose(&v);
	return ps_buf_take(&b, NULL);
}

#define EXPECT_UNINDEXED(s, project, want) do { \
	char *_got = unindexed_list(s, project); \
	CHECK_STR(_got, want); \
	free(_got); \
} while (0)

/*
 * The count of stored blobs the code index lacks (code_unindexed, kept by triggers: SQLite's
 * since schema 14, PostgreSQL's since 22) is exact through every way blobs and index entries
 * come and go: stored before or after being indexed, in one transaction or several, stored
 * twice, and removed with a project by the blob prune. A search trusts a count of 0 and then
 * does not look for unindexed blobs, so a count too low would hide files from searches.
 */
static void test_code_unindexed_count(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	struct ps_project *p1 = add_project(s, "keep"), *p2 = add_project(s, "gone");
	static const char *const text[] = { "alpha\n", "beta\n", "gamma\n", "delta\n",
					    "epsilon\n", "zeta\n" };
	enum { A, B, C, D, E, F, N };
	char sha[N][PS_SHA_HEX];
	struct ps_prune_stats st = { 0 };
	char *want;

	for (int i = 0; i < N; i++)
		fake_sha(sha[i], text[i]);
	CHECK_INT(unindexed_count(path), 0);
	for (int i = A; i <= C; i++)
		put_blob(s, text[i], strlen(text[i]), sha[i]);
	CHECK_INT(unindexed_count(path), 3);
	CHECK_OK(ps_store_code_index_put(s, sha[A], text[A], strlen(text[A]), false));
	CHECK_OK(ps_store_code_index_put(s, sha[B], text[B], strlen(text[B]), false));
	CHECK_INT(unindexed_count(path), 1);
	/* Indexed before it is stored: never unindexed. */
	CHECK_OK(ps_store_code_index_put(s, sha[D], text[D], strlen(text[D]), false));
	CHECK_INT(unindexed_count(path), 1);
	put_blob(s, text[D], strlen(text[D]), sha[D]);
	CHECK_INT(unindexed_count(path), 1);
	/* One transaction (a sync's batch): E stored and indexed, F only stored; A again. */
	CHECK_OK(ps_store_begin(s));
	put_blob(s, text[E], strlen(text[E]), sha[E]);
	CHECK_OK(ps_store_code_index_put(s, sha[E], text[E], strlen(text[E]), false));
	put_blob(s, text[F], strlen(text[F]), sha[F]);
	put_blob(s, text[A], strlen(text[A]), sha[A]);
	CHECK_OK(ps_store_commit(s));
	CHECK_INT(unindexed_count(path), 2);

	struct ps_change keep[] = { change(PS_CHANGE_ADDED, "a", text[A]),
				    change(PS_CHANGE_ADDED, "c", text[C]) };
	struct ps_change gone[] = { change(PS_CHANGE_ADDED, "b", text[B]),
				    change(PS_CHANGE_ADDED, "f", text[F]) };
	int64_t s1 = commit_sync(s, p1, keep, 2, "k1");
	commit_sync(s, p2, gone, 2, "g1");
	want = ps_asprintf("%s ", sha[C]);
	EXPECT_UNINDEXED(s, p1->id, want);
	free(want);
	/* The project goes, then the blobs no file version names (B, D, E, F) and their index
	 * entries: C is the one stored blob left without one. */
	CHECK_OK(ps_store_project_remove(s, "gone"));
	CHECK_INT(unindexed_count(path), 2);
	CHECK_OK(ps_store_prune_blobs(s, &st));
	CHECK_INT(st.blobs, 4);
	CHECK_INT(unindexed_count(path), 1);
	struct ps_code_query alpha = { .op = PS_CODE_LITERAL, .literal = (char *)"alpha" };
	EXPECT_CANDIDATES(s, p1->id, s1, &alpha, NULL, NULL, "a:t c:u ");
	CHECK_OK(ps_store_code_index_put(s, sha[C], text[C], strlen(text[C]), false));
	CHECK_INT(unindexed_count(path), 0);
	EXPECT_UNINDEXED(s, p1->id, "");
	EXPECT_CANDIDATES(s, p1->id, s1, &alpha, NULL, NULL, "a:t ");
	if (ps_test_pg()) {
		/* Nodes change the count at once without waiting for each other: another
		 * connection's open transaction has changed it (its delta is its own until it
		 * commits), and this store's blob insert neither waits for it (a lock wait
		 * would fail after lock_timeout) nor counts it early. */
		struct ps_store *s2 = NULL;
		char eta[PS_SHA_HEX];
		PGconn *other = PQconnectdb(path);
		PGresult *r;

		CHECK_INT(PQstatus(other), CONNECTION_OK);
		PQclear(PQexec(other, "BEGIN"));
		r = PQexec(other, "DELETE FROM code_blobs WHERE id = (SELECT max(id) FROM code_blobs)");
		CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
		CHECK_STR(PQcmdTuples(r), "1"); /* C's, the last indexed */
		PQclear(r);
		setenv("PGOPTIONS", "-c lock_timeout=5s", 1);
		CHECK_OK(ps_store_open(&s2, path, 0));
		unsetenv("PGOPTIONS");
		put_blob(s2, "eta\n", 4, eta);
		CHECK_INT(unindexed_count(path), 1);
		PQclear(PQexec(other, "COMMIT"));
		PQfinish(other);
		CHECK_INT(unindexed_count(path), 2);
		ps_store_free(s2);
	}
	ps_project_free(p1);
	ps_project_free(p2);
	ps_store_free(s);
	free(path);
}

/* The count of unindexed blobs (migrations 0014/0022) stays exact with packs (schema 27): a
 * member's row is inserted and deleted like any row, and the prune's repacking of a sparse pack
 * only rewrites rows (no count change). The count equals the blobs without an index entry at
 * every step. Both backends. */
static void test_code_unindexed_count_packed(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "p");
	enum { N = 4 };
	char text[N][256], sha[N][PS_SHA_HEX];
	struct ps_blob_in in[N];
	struct ps_prune_stats st = { 0 };
	const char *anti = "SELECT count(*) FROM blobs b WHERE NOT EXISTS "
			   "(SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)";
	void *data = NULL;
	size_t len = 0;

	for (int i = 0; i < N; i++) {
		snprintf(text[i], sizeof(text[i]), "int f%d(void) { return %d; } /* %0200d */\n", i,
			 i * 7, i);
		fake_sha(sha[i], text[i]);
		in[i] = (struct ps_blob_in){ .sha = sha[i], .data = text[i], .len = strlen(text[i]) };
	}
	CHECK_OK(ps_store_begin(s));
	CHECK_OK(ps_store_blob_put_many(s, in, N));
	CHECK_OK(ps_store_code_index_put(s, sha[0], text[0], strlen(text[0]), false));
	CHECK_OK(ps_store_commit(s));
	CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE encoding = 3"), N);
	CHECK_INT(unindexed_count(path), N - 1);
	CHECK_INT(unindexed_count(path), db_int(path, anti));

	/* Only blob 1 stays referenced: 3 members go, the pack is rewritten for the last one. */
	struct ps_change keep[] = { change(PS_CHANGE_ADDED, "one.c", text[1]) };
	commit_sync(s, p, keep, 1, "c1");
	CHECK_OK(ps_store_prune_blobs(s, &st));
	CHECK_INT(st.blobs, N - 1);
	CHECK_INT(st.packs_rewritten, 1);
	CHECK_INT(unindexed_count(path), 1);
	CHECK_INT(unindexed_count(path), db_int(path, anti));
	CHECK_OK(ps_store_blob_get(s, sha[1], &data, &len));
	CHECK(len == strlen(text[1]) && memcmp(data, text[1], len) == 0);
	free(data);
	CHECK_OK(ps_store_code_index_put(s, sha[1], text[1], strlen(text[1]), false));
	CHECK_INT(unindexed_count(path), 0);
	ps_project_free(p);
	ps_store_free(s);
	free(path);
}

static int dir_sha_cb(void *ud, const struct ps_tree_dir *d)
{
	snprintf(ud, PS_SHA_HEX, "%s", d->sha);
	return 0;
}

/* Object ids are kept as their 20 bytes (schema 16) and read back as the 40 hex digits they
 * were, leading zeros and all; an id with no such form is refused before anything is written. */
static void test_object_ids_at_rest(void)
{
	char *path;
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "ids");
	struct ps_change c[2] = { change(PS_CHANGE_ADDED, "zero", "x"),
				  change(PS_CHANGE_ADDED, "high", "y") };
	struct ps_owner o = me();
	struct ps_sync *y = NULL;
	struct ps_file f = { 0 };
	struct ps_tree_dir d = { .path = (char *)"", .body = (unsigned char *)"x", .len = 1 };
	char *out;
	int64_t id;

	snprintf(c[0].sha, PS_SHA_HEX, "%s", "00000000000000000000000000000000000000a1");
	snprintf(c[1].sha, PS_SHA_HEX, "%s", "ffffffffffffffffffffffffffffffffffff0000");
	CHECK_OK(ps_store_sync_create(s, p->id, "main", "cli", &o, &y));
	if (!y)
		goto out;
	/* Upper case, short, not hex: refused, nothing staged. */
	for (int k = 0; k < 3; k++) {
		struct ps_change bad[2] = { c[0], c[1] };
		static const char *const ids[] = { "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF0000", "abc",
						   "zz00000000000000000000000000000000000000" };

		snprintf(bad[1].sha, PS_SHA_HEX, "%s", ids[k]);
		CHECK_INT(ps_store_files_stage(s, y, bad, 2), PS_EINVAL);
		CHECK_STR(ps_error_slug(), "bad_object_id");
		snprintf(d.sha, PS_SHA_HEX, "%s", ids[k]);
		CHECK_INT(ps_store_dir_trees_stage(s, y, &d, 1), PS_EINVAL);
	}
	out = ps_test_sql(path, "SELECT count(*) FROM file_versions");
	CHECK_STR(out, "0|\n");
	free(out);
	out = ps_test_sql(path, "SELECT count(*) FROM dir_trees");
	CHECK_STR(out, "0|\n");
	free(out);

	CHECK_OK(ps_store_files_stage(s, y, c, 2));
	snprintf(d.sha, PS_SHA_HEX, "%s", "0123456789abcdef0123456789abcdef01234567");
	CHECK_OK(ps_store_dir_trees_stage(s, y, &d, 1));
	y->commit = ps_strdup("c1");
	ps_changes_count(c, 2, &y->counts);
	CHECK_OK(ps_store_sync_finalize(s, y, c, 2, NULL));
	id = y->id;
	for (int k = 0; k < 2; k++) {
		CHECK_OK(ps_store_snapshot_file(s, p->id, id, c[k].path, &f));
		CHECK_STR(f.sha, c[k].sha);
		free(f.path);
	}
	{
		/* The directory's entries come back from the file rows with their ids as they
		 * were; its own stored id reads back as staged. */
		struct ps_tree_dir back = { 0 };
		struct ps_tree t = { 0 };

		CHECK_OK(ps_store_dir_tree_get(s, p->id, id, "", &back));
		CHECK_OK(ps_tree_parse(back.body, back.len, &t));
		CHECK_INT(t.n, 2);
		if (t.n == 2) {
			CHECK_STR(t.entries[0].name, "high");
			CHECK_STR(t.entries[0].sha, c[1].sha);
			CHECK_STR(t.entries[1].sha, c[0].sha);
		}
		ps_tree_dispose(&t);
		free(back.path);
		free(back.body);
		CHECK_OK(ps_store_dir_trees_each(s, p->id, id, dir_sha_cb, back.sha));
		CHECK_STR(back.sha, d.sha);
	}
	/* At rest: 20 bytes each. */
	out = ps_test_sql(path, ps_test_pg() ? "SELECT DISTINCT octet_length(sha) FROM file_versions"
					     : "SELECT DISTINCT length(sha) FROM file_versions");
	CHECK_STR(out, "20|\n");
	free(out);
	out = ps_test_sql(path, ps_test_pg() ? "SELECT octet_length(tree_sha) FROM dir_trees"
					     : "SELECT length(tree_sha) FROM dir_trees");
	CHECK_STR(out, "20|\n");
	free(out);
out:
	ps_sync_free(y);
	ps_project_free(p);
	ps_store_free(s);
	free(path);
}

/* Where the tests read code index rows decompress into. */
static struct ps_tri_zbuf tz;

/* Every id in the code index's rows (SQLite), sorted with repeats, as "id id ...". */
static char *posting_ids(const char *path, size_t *count)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint32_t *all = NULL;
	size_t n = 0, cap = 0;
	struct ps_buf b;

	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT key, data FROM code_postings", -1, &st, NULL),
		  SQLITE_OK);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		struct ps_tri_row row;

		CHECK(ps_tri_row_open(&row, (uint32_t)(sqlite3_column_int64(st, 0) & 0xffffff),
				      sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &tz));
		while (ps_tri_row_next(&row)) {
			if (n + row.ndocs > cap) {
				cap = 2 * (n + row.ndocs);
				all = ps_realloc(all, cap * sizeof(*all));
			}
			n += ps_tri_list_decode(&row, all + n);
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "");
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = all[k] == all[i];
		if (!seen)
			ps_buf_printf(&b, "%u ", all[i]);
	}
	free(all);
	*count = n;
	return ps_buf_take(&b, NULL);
}

/*
 * SQLite's own index format (migration 0017): a transaction's postings are written with its
 * code_blobs rows or not at all; many small transactions leave few segments (merged level by
 * level), and queries see every blob through them; the ids of pruned blobs leave the rows when a
 * merge rewrites their segment, and are never given to a new blob.
 */
static void test_code_segments(void)
{
	enum { GONE = 16, KEPT = 64 };
	char *path = NULL;
	struct ps_store *s;
	struct ps_project *p;
	static char text[GONE + KEPT][64], names[KEPT][32];
	char shas[GONE + KEPT][PS_SHA_HEX];
	struct ps_change ch[KEPT];
	char *out, *ids, *want;
	size_t npostings = 0;
	/* PostgreSQL's ids come from a sequence: the rolled-back put used id 1 for good. */
	const int off = ps_test_pg() ? 1 : 0;

	s = open_store(&path);
	p = add_project(s, "seg");
	for (int i = 0; i < GONE + KEPT; i++) {
		snprintf(text[i], sizeof(text[i]), "%s %d zq%dvx end\n", i < GONE ? "gone" : "kept", i,
			 i * 7919);
		put_blob(s, text[i], strlen(text[i]), shas[i]);
	}
	/* Rolled back: neither the code_blobs row nor postings. */
	CHECK_OK(ps_store_begin(s));
	CHECK_OK(ps_store_code_index_put(s, shas[0], text[0], strlen(text[0]), false));
	ps_store_rollback(s);
	out = ps_test_sql(path, "SELECT (SELECT count(*) FROM code_blobs), "
				"(SELECT count(*) FROM code_segments), (SELECT count(*) FROM code_postings)");
	CHECK_STR(out, "0|0|0|\n");
	free(out);
	/* One transaction per blob (a lone call is one). */
	for (int i = 0; i < GONE; i++)
		CHECK_OK(ps_store_code_index_put(s, shas[i], text[i], strlen(text[i]), false));
	/* The gone blobs lose their rows (no file version references them); the kept blobs
	 * come after, and their flushes merge the segments that hold the gone ones. (A prune's
	 * last step would also compact the index at once: test_code_compaction_after_prune.) */
	out = ps_test_sql(path, "DELETE FROM code_blobs WHERE NOT EXISTS (SELECT 1 FROM "
				"file_versions f WHERE f.sha = code_blobs.sha)");
	CHECK_STR(out, "");
	free(out);
	for (int i = GONE; i < GONE + KEPT; i++)
		CHECK_OK(ps_store_code_index_put(s, shas[i], text[i], strlen(text[i]), false));
	out = ps_test_sql(path, "SELECT min(id), max(id), count(*) FROM code_blobs");
	want = ps_asprintf("%d|%d|64|\n", 17 + off, 80 + off);
	CHECK_STR(out, want); /* ids 1-16 not given again */
	free(want);
	free(out);
	/* 80 flushes, 8 segments per level: 64 merged into one at level 2, 16 into two at 1. */
	out = ps_test_sql(path, "SELECT level, count(*), min(min_id), max(max_id) FROM code_segments "
				"GROUP BY level ORDER BY level");
	want = ps_asprintf("1|2|%d|%d|\n2|1|%d|%d|\n", 65 + off, 80 + off, 17 + off, 64 + off);
	CHECK_STR(out, want);
	free(want);
	free(out);
	if (ps_test_pg())
		goto search; /* posting_ids reads SQLite's rows */
	ids = posting_ids(path, &npostings);
	want = ps_strdup("");
	for (int i = 17; i <= 80; i++) {
		char *w = ps_asprintf("%s%d ", want, i);
		free(want);
		want = w;
	}
	CHECK_STR(ids, want);
	free(want);
	free(ids);
	CHECK(npostings > 64 * 10);
search:

	/* Every kept blob is found by its own literal, and only it. */
	for (int i = 0; i < KEPT; i++) {
		snprintf(names[i], sizeof(names[i]), "f%02d.txt", i);
		ch[i] = change(PS_CHANGE_ADDED, names[i], text[GONE + i]);
	}
	int64_t s1 = commit_sync(s, p, ch, KEPT, "c1");
	for (int i = 0; i < KEPT; i += 7) {
		char lit[32], *w;
		snprintf(lit, sizeof(lit), "ZQ%dVX", (GONE + i) * 7919);
		struct ps_code_query q = { .op = PS_CODE_LITERAL, .literal = lit };
		w = ps_asprintf("f%02d.txt:t ", i);
		EXPECT_CANDIDATES(s, p->id, s1, &q, NULL, NULL, w);
		free(w);
	}
	struct ps_code_query kept = { .op = PS_CODE_LITERAL, .literal = (char *)"kept " };
	char *got = candidates(s, p->id, s1, &kept, NULL, NULL, 0);
	CHECK_INT(strlen(got), KEPT * strlen("f00.txt:t "));
	free(got);
	ps_project_free(p);
	ps_store_free(s);
	free(path);
}

/* Blob i of test_code_compaction_after_prune: "kept" ones (referenced), then "gone" ones. */
enum { CMP_KEPT = 16, CMP_GONE = 48, CMP_NEW = CMP_KEPT + CMP_GONE };

static void cmp_text(int i, char *out, size_t len)
{
	snprintf(out, len, "%s %d zq%dvx end\n", i < CMP_KEPT || i == CMP_NEW ? "kept" : "gone", i,
		 i * 7919);
}

/* Searches at sync `at` find each kept blob's literal in its file only, a gone blob's nowhere;
 * with `with_new` the blob indexed after the prune is found as new.txt. */
static void cmp_check_searches(struct ps_store *s, int64_t project, int64_t at, bool with_new)
{
	struct ps_code_query gone = { .op = PS_CODE_LITERAL, .literal = (char *)"gone " };
	struct ps_code_query kept = { .op = PS_CODE_LITERAL, .literal = (char *)"kept " };
	char lit[32], *w, *got;

	for (int i = 0; i <= CMP_NEW; i++) {
		struct ps_code_query q = { .op = PS_CODE_LITERAL, .literal = lit };

		snprintf(lit, sizeof(lit), "ZQ%dVX", i * 7919);
		if (i < CMP_KEPT)
			w = ps_asprintf("f%02d.txt:t ", i);
		else
			w = ps_strdup(i == CMP_NEW && with_new ? "new.txt:t " : "");
		EXPECT_CANDIDATES(s, project, at, &q, NULL, NULL, w);
		free(w);
	}
	EXPECT_CANDIDATES(s, project, at, &gone, NULL, NULL, "");
	got = candidates(s, project, at, &kept, NULL, NULL, 0);
	CHECK_INT(strlen(got), (CMP_KEPT + with_new) * strlen("f00.txt:t "));
	free(got);
}

/*
 * The blob prune takes pruned blobs' rows out of the code index in its transaction and leaves
 * the merge that drops their postings to ps_store_compact, in a transaction of its own: a merge
 * of the whole index inside the prune held the write lock (SQLite) or the blobs table lock
 * (PostgreSQL) for its duration, and syncs waited. Searches are right at every point: between
 * the steps a posting whose row is gone matches nothing and a blob indexed meanwhile gets an id
 * no segment holds (the pruned ids are the highest here: given again, they would bring their
 * postings along); after the merge only live ids are left.
 */
static void test_code_compaction_after_prune(void)
{
	char text[CMP_NEW + 1][64], shas[CMP_NEW + 1][PS_SHA_HEX], names[CMP_KEPT][16];
	struct ps_change ch[CMP_KEPT];
	struct ps_prune_stats pr = { 0 };
	struct ps_project *p;
	struct ps_store *s;
	char *path = NULL, *before, *out;
	int64_t s1, s2, held;

	s = open_store(&path);
	p = add_project(s, "cmp");
	for (int i = 0; i <= CMP_NEW; i++) {
		cmp_text(i, text[i], sizeof(text[i]));
		ps_git_blob_sha(text[i], strlen(text[i]), shas[i]);
	}
	for (int i = 0; i < CMP_NEW; i++) {
		put_blob(s, text[i], strlen(text[i]), shas[i]);
		CHECK_OK(ps_store_code_index_put(s, shas[i], text[i], strlen(text[i]), false));
	}
	for (int i = 0; i < CMP_KEPT; i++) {
		snprintf(names[i], sizeof(names[i]), "f%02d.txt", i);
		ch[i] = change(PS_CHANGE_ADDED, names[i], text[i]);
	}
	s1 = commit_sync(s, p, ch, CMP_KEPT, "c1");
	cmp_check_searches(s, p->id, s1, false);
	before = ps_test_sql(path, "SELECT id, level, min_id, max_id FROM code_segments ORDER BY id");

	CHECK_OK(ps_store_prune_blobs(s, &pr));
	CHECK_INT(pr.blobs, CMP_GONE);
	/* The prune's transaction merged nothing: the segments are as they were. */
	out = ps_test_sql(path, "SELECT id, level, min_id, max_id FROM code_segments ORDER BY id");
	CHECK_STR(out, before);
	free(out);
	CHECK_INT(db_int(path, "SELECT count(*) FROM code_blobs"), CMP_KEPT);
	cmp_check_searches(s, p->id, s1, false);

	/* A sync between the prune and the merge indexes a new blob. */
	held = db_int(path, "SELECT max(max_id) FROM code_segments");
	put_blob(s, text[CMP_NEW], strlen(text[CMP_NEW]), shas[CMP_NEW]);
	CHECK_OK(ps_store_code_index_put(s, shas[CMP_NEW], text[CMP_NEW], strlen(text[CMP_NEW]),
					 false));
	ch[0] = change(PS_CHANGE_ADDED, "new.txt", text[CMP_NEW]);
	s2 = commit_sync(s, p, ch, 1, "c2");
	CHECK(db_int(path, "SELECT max(id) FROM code_blobs") > held);
	cmp_check_searches(s, p->id, s2, true);

	/* Step 3: the merge, in its own transaction, leaves one segment of the live documents. */
	CHECK_OK(ps_store_compact(s));
	CHECK_INT(db_int(path, "SELECT count(*) FROM code_segments"), 1);
	CHECK_INT(db_int(path, "SELECT sum(docs) FROM code_segments"), CMP_KEPT + 1);
	cmp_check_searches(s, p->id, s2, true);
	cmp_check_searches(s, p->id, s1, false);

	free(before);
	ps_project_free(p);
	ps_store_free(s);
	free(path);
}

/*
 * PostgreSQL shared by several processes: a merge skips the segments another transaction holds
 * (FOR UPDATE SKIP LOCKED) instead of waiting for it or merging them too; transactions of two
 * handles open at once each write their own segment; queries see every blob either way.
 */
static void test_code_segments_shared(void)
{
	enum { N = 12 };
	char *path = NULL, *out;
	struct ps_store *s, *s2;
	struct ps_project *p;
	static char text[N][64], names[N][32];
	char shas[N][PS_SHA_HEX];
	struct ps_change ch[N];
	PGconn *other;
	PGresult *r;

	if (!ps_test_pg())
		return;
	s = open_store(&path);
	CHECK_OK(ps_store_open(&s2, path, 0));
	p = add_project(s, "shared");
	for (int i = 0; i < N; i++) {
		snprintf(text[i], sizeof(text[i]), "blob %d qz%dxv end\n", i, i * 7907);
		put_blob(s, text[i], strlen(text[i]), shas[i]);
	}
	for (int i = 0; i < 7; i++)
		CHECK_OK(ps_store_code_index_put(i % 2 ? s2 : s, shas[i], text[i], strlen(text[i]),
						 false));
	/* Another process holds the 7 segments of level 0 (as its merge would). */
	other = PQconnectdb(path);
	CHECK_INT(PQstatus(other), CONNECTION_OK);
	PQclear(PQexec(other, "BEGIN"));
	r = PQexec(other, "SELECT id FROM code_segments WHERE level = 0 FOR UPDATE");
	CHECK_INT(PQntuples(r), 7);
	PQclear(r);
	/* The 8th segment: its commit neither waits for them nor merges them. */
	CHECK_OK(ps_store_code_index_put(s, shas[7], text[7], strlen(text[7]), false));
	out = ps_test_sql(path, "SELECT level, count(*) FROM code_segments GROUP BY level");
	CHECK_STR(out, "0|8|\n");
	free(out);
	PQclear(PQexec(other, "ROLLBACK"));
	PQfinish(other);
	/* Two transactions open at once, one per handle: each writes its segment; the first
	 * commit merges the 9 segments of level 0 it sees, the other's is not among them. */
	CHECK_OK(ps_store_begin(s));
	CHECK_OK(ps_store_begin(s2));
	CHECK_OK(ps_store_code_index_put(s, shas[8], text[8], strlen(text[8]), false));
	CHECK_OK(ps_store_code_index_put(s2, shas[9], text[9], strlen(text[9]), false));
	CHECK_OK(ps_store_code_index_put(s, shas[10], text[10], strlen(text[10]), false));
	CHECK_OK(ps_store_commit(s2));
	CHECK_OK(ps_store_commit(s));
	CHECK_OK(ps_store_code_index_put(s2, shas[11], text[11], strlen(text[11]), false));
	out = ps_test_sql(path, "SELECT level, count(*) FROM code_segments GROUP BY level "
				"ORDER BY level");
	CHECK_STR(out, "0|2|\n1|1|\n");
	free(out);
	out = ps_test_sql(path, "SELECT count(*), count(DISTINCT id) FROM code_blobs");
	CHECK_STR(out, "12|12|\n");
	free(out);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "f%02d.txt", i);
		ch[i] = change(PS_CHANGE_ADDED, names[i], text[i]);
	}
	int64_t s1 = commit_sync(s, p, ch, N, "c1");
	for (int i = 0; i < N; i++) {
		char lit[32], *w;
		snprintf(lit, sizeof(lit), "QZ%dXV", i * 7907);
		struct ps_code_query q = { .op = PS_CODE_LITERAL, .literal = lit };
		w = ps_asprintf("f%02d.txt:t ", i);
		EXPECT_CANDIDATES(s2, p->id, s1, &q, NULL, NULL, w);
		free(w);
	}
	ps_project_free(p);
	ps_store_free(s2);
	ps_store_free(s);
	free(path);
}

/* How many code_blobs rows have an id no posting holds (every blob of the crash test has
 * trigrams, so each must be in some list). */
static int64_t ids_without_postings(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint8_t *in = NULL;
	int64_t max = db_int(path, "SELECT coalesce(max(id), 0) FROM code_blobs"), missing = 0;

	in = ps_calloc((size_t)max + 1, 1);
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT key, data FROM code_postings", -1, &st, NULL),
		  SQLITE_OK);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		struct ps_tri_row row;
		uint32_t *ids;

		CHECK(ps_tri_row_open(&row, (uint32_t)(sqlite3_column_int64(st, 0) & 0xffffff),
				      sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &tz));
		while (ps_tri_row_next(&row)) {
			size_t n;
			ids = ps_malloc(row.ndocs * sizeof(*ids) + 1);
			n = ps_tri_list_decode(&row, ids);
			for (size_t i = 0; i < n; i++)
				if (ids[i] <= max)
					in[ids[i]] = 1;
			free(ids);
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT id FROM code_blobs", -1, &st, NULL), SQLITE_OK);
	while (st && sqlite3_step(st) == SQLITE_ROW)
		missing += !in[sqlite3_column_int64(st, 0)];
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(in);
	return missing;
}

/*
 * A process killed while it indexes (SQLite): every code_blobs row that committed has its
 * postings, because they commit in the same transaction; the next process goes on (ids,
 * merges) from there.
 */
static void test_code_index_crash(void)
{
	char *path = NULL;
	struct ps_store *s;
	int64_t rows = 0;

	if (ps_test_pg())
		return;
	s = open_store(&path);
	ps_store_free(s);
	for (int attempt = 0; attempt < 6 && rows < 20; attempt++) {
		int status = 0;
		pid_t pid = fork();

		if (pid == 0) {
			if (ps_store_open(&s, path, 0) < 0)
				_exit(3);
			for (int i = 0; i < 100000; i++) {
				char text[64], sha[PS_SHA_HEX];
				int n = snprintf(text, sizeof(text), "crash %d a%dq%d\n", i, attempt, i * 31);

				ps_git_blob_sha(text, (size_t)n, sha);
				if (i % 7 == 0 && ps_store_begin(s) < 0)
					_exit(4);
				if (ps_store_code_index_put(s, sha, text, (size_t)n, false) < 0)
					_exit(5);
				if (i % 7 == 6 && ps_store_commit(s) < 0)
					_exit(6);
			}
			_exit(0);
		}
		usleep((useconds_t)(150000 + 150000 * attempt));
		kill(pid, SIGKILL);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		rows = db_int(path, "SELECT count(*) FROM code_blobs");
		CHECK_INT(ids_without_postings(path), 0);
	}
	CHECK(rows >= 20); /* the kills did land while indexing */
	/* The next process indexes on: new ids above the old, merges, nothing lost. */
	CHECK_OK(ps_store_open(&s, path, 0));
	for (int i = 0; i < 50; i++) {
		char text[64], sha[PS_SHA_HEX];
		int n = snprintf(text, sizeof(text), "after %d b%dq\n", i, i * 17);

		ps_git_blob_sha(text, (size_t)n, sha);
		CHECK_OK(ps_store_code_index_put(s, sha, text, (size_t)n, false));
	}
	ps_store_free(s);
	CHECK_INT(db_int(path, "SELECT count(*) FROM code_blobs"), rows + 50);
	CHECK_INT(ids_without_postings(path), 0);
	free(path);
}

/* The layout of schema 26 (no packs: blobs as 0023 made it, no blob_packs), rebuilt from a
 * store at the current schema that has no packed blobs: what a projsync before migration 0027
 * wrote. SQLite cannot drop a column with a foreign key, so blobs is rebuilt, the same row ids,
 * and with it the code_unindexed triggers (a trigger on blobs goes with the table). */
#define UNDO_BLOB_PACKS_SQLITE                                                                  \
	"DROP TRIGGER code_unindexed_code_in; DROP TRIGGER code_unindexed_code_out; "           \
	"CREATE TABLE blobs_26 (id INTEGER PRIMARY KEY, sha BLOB NOT NULL UNIQUE "              \
	"CHECK (typeof(sha) = 'blob' AND length(sha) = 20), size INTEGER NOT NULL, "            \
	"encoding INTEGER NOT NULL DEFAULT 0, base BLOB REFERENCES blobs(sha) DEFERRABLE "     \
	"INITIALLY DEFERRED CHECK (base IS NULL OR (typeof(base) = 'blob' AND "                \
	"length(base) = 20)), content BLOB NOT NULL); "                                         \
	"INSERT INTO blobs_26 SELECT id, sha, size, encoding, base, content FROM blobs "       \
	"ORDER BY id; "                                                                         \
	"DROP TABLE blobs; ALTER TABLE blobs_26 RENAME TO blobs; DROP TABLE blob_packs; "      \
	"CREATE INDEX blobs_delta_base ON blobs(base) WHERE base IS NOT NULL; "                 \
	"CREATE TRIGGER code_unindexed_blob_in AFTER INSERT ON blobs "                          \
	"WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = NEW.sha) "                   \
	"BEGIN UPDATE code_unindexed SET n = n + 1; END; "                                      \
	"CREATE TRIGGER code_unindexed_blob_out AFTER DELETE ON blobs "                         \
	"WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = OLD.sha) "                   \
	"BEGIN UPDATE code_unindexed SET n = n - 1; END; "                                      \
	"CREATE TRIGGER code_unindexed_code_in AFTER INSERT ON code_blobs "                     \
	"WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = NEW.sha) "                            \
	"BEGIN UPDATE code_unindexed SET n = n - 1; END; "                                      \
	"CREATE TRIGGER code_unindexed_code_out AFTER DELETE ON code_blobs "                    \
	"WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = OLD.sha) "                            \
	"BEGIN UPDATE code_unindexed SET n = n + 1; END; "

/* The layout of schema 25 (file_versions and dir_trees by full path, no dirs), rebuilt from a
 * store at the current schema: what a projsync before migration 0026 wrote
 * (tests/integration/conftest.py, SQLITE_UNDO_DIR_IDS, is the same). Schema 27's packs are
 * undone first. */
static const char undo_dir_ids_sqlite[] =
	UNDO_BLOB_PACKS_SQLITE
	"CREATE TABLE file_versions_25 (id INTEGER PRIMARY KEY, "
	"project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
	"path TEXT NOT NULL, mode INTEGER NOT NULL, sha BLOB NOT NULL, size INTEGER, "
	"introduced_by INTEGER NOT NULL, superseded_by INTEGER); "
	"INSERT INTO file_versions_25 SELECT fv.id, fv.project_id, "
	"iif(d.path = '', fv.name, d.path || '/' || fv.name), fv.mode, fv.sha, fv.size, "
	"fv.introduced_by, fv.superseded_by FROM file_versions fv JOIN dirs d ON d.id = fv.dir_id "
	"ORDER BY fv.id; "
	"DROP TABLE file_versions; ALTER TABLE file_versions_25 RENAME TO file_versions; "
	"CREATE INDEX file_versions_path ON file_versions(project_id, path, introduced_by); "
	"CREATE INDEX file_versions_introduced ON file_versions(introduced_by); "
	"CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by) "
	"WHERE superseded_by IS NOT NULL; "
	"CREATE INDEX file_versions_sha ON file_versions(sha); "
	"CREATE TABLE dir_trees_25 (id INTEGER PRIMARY KEY, "
	"project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
	"path TEXT NOT NULL, tree_sha BLOB NOT NULL, introduced_by INTEGER NOT NULL, "
	"superseded_by INTEGER); "
	"INSERT INTO dir_trees_25 SELECT dt.id, dt.project_id, d.path, dt.tree_sha, "
	"dt.introduced_by, dt.superseded_by FROM dir_trees dt JOIN dirs d ON d.id = dt.dir_id "
	"ORDER BY dt.id; "
	"DROP TABLE dir_trees; ALTER TABLE dir_trees_25 RENAME TO dir_trees; "
	"CREATE INDEX dir_trees_path ON dir_trees(project_id, path, introduced_by); "
	"CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by); "
	"CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by) "
	"WHERE superseded_by IS NOT NULL; "
	"DROP TABLE dirs; "
	"PRAGMA user_version = 25";

/* The layout of schema 22 (blobs.sha and blobs.base as hex text), rebuilt from a store at the
 * current schema: what a projsync before migration 0023 wrote (tests/integration/conftest.py
 * undoes 0023 the same way). */
static const char undo_blob_ids_sqlite[] =
	"DROP TRIGGER code_unindexed_blob_in; DROP TRIGGER code_unindexed_blob_out; "
	"DROP TRIGGER code_unindexed_code_in; DROP TRIGGER code_unindexed_code_out; "
	"CREATE TABLE blobs_22 (id INTEGER PRIMARY KEY, sha TEXT NOT NULL UNIQUE, "
	"size INTEGER NOT NULL, encoding INTEGER NOT NULL DEFAULT 0, content BLOB NOT NULL, "
	"base TEXT REFERENCES blobs(sha) DEFERRABLE INITIALLY DEFERRED); "
	"INSERT INTO blobs_22 SELECT id, ps_hex(sha), size, encoding, content, ps_hex(base) "
	"FROM blobs ORDER BY id; "
	"DROP TABLE blobs; ALTER TABLE blobs_22 RENAME TO blobs; "
	"CREATE INDEX blobs_base ON blobs(base) WHERE base IS NOT NULL; "
	"CREATE TRIGGER code_unindexed_blob_in AFTER INSERT ON blobs "
	"WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_unhex(NEW.sha)) "
	"BEGIN UPDATE code_unindexed SET n = n + 1; END; "
	"CREATE TRIGGER code_unindexed_blob_out AFTER DELETE ON blobs "
	"WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_unhex(OLD.sha)) "
	"BEGIN UPDATE code_unindexed SET n = n - 1; END; "
	"CREATE TRIGGER code_unindexed_code_in AFTER INSERT ON code_blobs "
	"WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(NEW.sha)) "
	"BEGIN UPDATE code_unindexed SET n = n - 1; END; "
	"CREATE TRIGGER code_unindexed_code_out AFTER DELETE ON code_blobs "
	"WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(OLD.sha)) "
	"BEGIN UPDATE code_unindexed SET n = n + 1; END; "
	"PRAGMA user_version = 22";
static const char undo_blob_ids_pg[] =
	"ALTER TABLE blobs DROP CONSTRAINT blobs_base_fkey; DROP INDEX blobs_base; "
	"ALTER TABLE blobs DROP CONSTRAINT blobs_pkey; "
	"ALTER TABLE blobs ALTER COLUMN sha TYPE text USING encode(sha, 'hex'), "
	"ALTER COLUMN base TYPE text USING encode(base, 'hex'); "
	"ALTER TABLE blobs ADD PRIMARY KEY (sha); "
	"ALTER TABLE blobs ADD FOREIGN KEY (base) REFERENCES blobs(sha) "
	"DEFERRABLE INITIALLY DEFERRED; "
	"CREATE INDEX blobs_base ON blobs(base) WHERE base IS NOT NULL; "
	"CREATE STATISTICS blobs_sha_bytes ON (decode(sha, 'hex')) FROM blobs; "
	"DELETE FROM projsync_schema WHERE version > 22";

int ps_pg_blob_convert(struct ps_store *s, size_t batch_rows,
		       void (*after_row)(void *ud, size_t row), void *ud);

/* Index of migrations/0020_thin_trees.sql among the embedded migrations. */
#define THIN_TREES_STEP 19

/* Undoes PostgreSQL's migrations 0027 (packs; the store must hold no packed blob) and 0026
 * (directories by id) for a test that steps a store back to an older schema: schema 25's
 * file_versions and dir_trees with full paths, the same row ids, and ps_dir_entries as 0020
 * made it (tests/integration/conftest.py, pg_undo_dir_ids_sql, does the same for 0026). Leaves
 * projsync_schema alone. */
static void undo_dir_ids_pg(const char *path)
{
	extern const struct ps_embedded ps_pg_migrations[];
	const struct ps_embedded *m = &ps_pg_migrations[THIN_TREES_STEP];
	const char *fn = strstr(m->text, "CREATE FUNCTION ps_dir_entries"), *end = NULL;
	char *sql;

	CHECK(strstr(m->name, "0020_thin_trees") != NULL && fn != NULL);
	for (const char *p = fn; (p = strstr(p, "$$")) != NULL; p += 2)
		end = p + 2;
	sql = ps_asprintf(
		"ALTER TABLE blobs DROP COLUMN pack, DROP COLUMN pack_offset; DROP TABLE blob_packs; "
		"CREATE TABLE file_versions_25 (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
		"project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
		"path bytea NOT NULL, mode bigint NOT NULL, sha bytea NOT NULL, size bigint, "
		"introduced_by bigint NOT NULL, superseded_by bigint); "
		"INSERT INTO file_versions_25 SELECT fv.id, fv.project_id, ps_path(d.path, fv.name), "
		"fv.mode, fv.sha, fv.size, fv.introduced_by, fv.superseded_by FROM file_versions fv "
		"JOIN dirs d ON d.id = fv.dir_id; "
		"SELECT setval(pg_get_serial_sequence('file_versions_25', 'id'), "
		"(SELECT coalesce(max(id), 0) + 1 FROM file_versions), false); "
		"DROP TABLE file_versions; ALTER TABLE file_versions_25 RENAME TO file_versions; "
		"CREATE INDEX file_versions_path ON file_versions(project_id, path, introduced_by); "
		"CREATE INDEX file_versions_introduced ON file_versions(introduced_by); "
		"CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by) "
		"WHERE superseded_by IS NOT NULL; "
		"CREATE INDEX file_versions_sha ON file_versions(sha); "
		"CREATE TABLE dir_trees_25 (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
		"project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
		"path bytea NOT NULL, tree_sha bytea NOT NULL, introduced_by bigint NOT NULL, "
		"superseded_by bigint); "
		"INSERT INTO dir_trees_25 SELECT dt.id, dt.project_id, d.path, dt.tree_sha, "
		"dt.introduced_by, dt.superseded_by FROM dir_trees dt JOIN dirs d ON d.id = dt.dir_id; "
		"SELECT setval(pg_get_serial_sequence('dir_trees_25', 'id'), "
		"(SELECT coalesce(max(id), 0) + 1 FROM dir_trees), false); "
		"DROP TABLE dir_trees; ALTER TABLE dir_trees_25 RENAME TO dir_trees; "
		"CREATE INDEX dir_trees_path ON dir_trees(project_id, path, introduced_by); "
		"CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by); "
		"CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by) "
		"WHERE superseded_by IS NOT NULL; "
		"DROP TABLE dirs; DROP FUNCTION ps_path(bytea, bytea); CREATE OR REPLACE %.*s",
		(int)(end - fn - 7), fn + 7);
	db_exec(path, sql);
	free(sql);
}

#define ID_BLOBS 12
/* Index of migrations/0023_blob_ids.sql among the embedded migrations. */
#define BLOB_IDS_STEP 22

/* The store at `path` back to schema 22's hex ids, then migration 0023's SQL on it, as
 * ps_store_migrate runs it before converting: a store whose rows wait in the old layout. */
static void back_to_hex_ids(const char *path)
{
	extern const struct ps_embedded ps_pg_migrations[];
	const struct ps_embedded *m = ps_test_pg() ? &ps_pg_migrations[BLOB_IDS_STEP]
						   : &ps_migrations[BLOB_IDS_STEP];
	char *out, *sql;

	if (ps_test_pg())
		undo_dir_ids_pg(path);
	else
		db_exec(path, undo_dir_ids_sqlite);
	db_exec(path, ps_test_pg() ? undo_blob_ids_pg : undo_blob_ids_sqlite);
	out = ps_test_sql(path, "SELECT count(*) FROM blobs WHERE sha = ps_hex(ps_unhex(sha)) AND "
				"(base IS NULL OR base = ps_hex(ps_unhex(base)))");
	sql = ps_asprintf("%d|\n", ID_BLOBS);
	CHECK_STR(out, sql); /* hex text, as schema 22 held it */
	free(out);
	free(sql);
	CHECK(strstr(m->name, "0023_blob_ids") != NULL);
	sql = ps_asprintf("%s; %s", m->text,
			  ps_test_pg() ? "INSERT INTO projsync_schema VALUES (23)"
				       : "PRAGMA user_version = 23");
	db_exec(path, sql);
	free(sql);
}

/* Every blob reads back byte-exact with its encoding, the delta keeps its base, and every id
 * is 20 bytes. */
static void check_blob_ids(const char *path, char shas[][PS_SHA_HEX], const int *encodings)
{
	struct ps_store *s = NULL;
	char *out, *want;

	CHECK_OK(ps_store_open(&s, path, 0));
	for (int i = 0; i < ID_BLOBS; i++) {
		void *data = NULL;
		size_t len = 0;
		char actual[PS_SHA_HEX] = "", *enc;

		CHECK_OK(ps_store_blob_get(s, shas[i], &data, &len));
		if (data)
			ps_git_blob_sha(data, len, actual);
		CHECK_STR(actual, shas[i]);
		free(data);
		enc = blob_col(path, "encoding", shas[i]);
		CHECK_INT(atoi(enc), encodings[i]);
		free(enc);
	}
	ps_store_free(s);
	out = blob_col(path, "ps_hex(base)", shas[6]);
	want = ps_asprintf("%s|\n", shas[5]);
	CHECK_STR(out, want);
	free(out);
	free(want);
	out = ps_test_sql(path, ps_test_pg() ? "SELECT DISTINCT octet_length(sha) FROM blobs"
					     : "SELECT DISTINCT length(sha) FROM blobs");
	CHECK_STR(out, "20|\n");
	free(out);
	if (ps_test_pg()) {
		CHECK_INT(db_int(path, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
				       "'blobs'::regclass AND attname LIKE '%hex' AND NOT attisdropped"), 0);
		CHECK_INT(db_int(path, "SELECT count(*) FROM pg_constraint WHERE conname = "
				       "'blobs_pkey' AND contype = 'p'"), 1);
	} else {
		CHECK_INT(db_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'blobs_hex'"),
			  0);
		CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE typeof(sha) <> 'blob'"), 0);
		/* The counter of unindexed blobs (migration 0014) came through the moves exact. */
		CHECK_INT(db_int(path, "SELECT n FROM code_unindexed"),
			  db_int(path, "SELECT count(*) FROM blobs b WHERE NOT EXISTS "
				       "(SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)"));
	}
}


/* A store written at schema 22 (hex blob ids) with plain, zstd and delta blobs converts to
 * 20-byte ids (migration 0023) in batches: a conversion killed in its second batch keeps the
 * first, the next open finishes it, and every blob reads back byte-exact, still verifies and
 * keeps its encoding and delta base. Both backends. */
static void test_blob_id_conversion(void)
{
	char *path = NULL, shas[ID_BLOBS][PS_SHA_HEX], buf[32768], *out;
	int encodings[ID_BLOBS];
	struct ps_store *s = open_store(&path);
	size_t kill_row = 3, n;
	uint64_t x = 7;
	pid_t pid, pids[2];
	int status = 0;

	/* Rows in id order: raw, zstd, incompressible (raw), a chain of four versions of a path
	 * (zstd, then deltas), then more zstd rows. */
	for (int i = 0; i < ID_BLOBS; i++) {
		if (i == 0) {
			n = 1;
			buf[0] = 'x';
		} else if (i == 2) {
			for (n = 0; n < 4096; n += 8) {
				uint64_t r = rng_next(&x);
				memcpy(buf + n, &r, 8);
			}
		} else if (i >= 3 && i <= 6) {
			n = delta_version(i - 3, buf, sizeof(buf));
		} else {
			old_content(i, buf, sizeof(buf), &n);
		}
		ps_git_blob_sha(buf, n, shas[i]);
		CHECK_OK(ps_store_blob_put_delta(s, shas[i], buf, n, i >= 4 && i <= 6 ? shas[i - 1]
										 : NULL));
	}
	ps_store_free(s);
	for (int i = 0; i < ID_BLOBS; i++) {
		char *enc = blob_col(path, "encoding", shas[i]);
		encodings[i] = atoi(enc);
		free(enc);
	}
	CHECK_INT(encodings[0], PS_BLOB_RAW);
	CHECK_INT(encodings[1], PS_BLOB_ZSTD);
	CHECK_INT(encodings[2], PS_BLOB_RAW);
	CHECK_INT(encodings[6], PS_BLOB_DELTA);

	back_to_hex_ids(path);

	/* Killed in the second batch of two rows (which takes the delta family along on SQLite):
	 * the first is kept, and every delta's base is converted no later than the delta. */
	pid = fork();
	if (pid == 0) {
		if (ps_store_open(&s, path, PS_STORE_NO_MIGRATE) < 0)
			_exit(3);
		if (ps_test_pg())
			ps_pg_blob_convert(s, 2, kill_at, &kill_row);
		else
			ps_sqlite_blob_convert(s, 2, kill_at, &kill_row);
		_exit(4);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	if (ps_test_pg()) {
		CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE sha IS NOT NULL"), 2);
		CHECK_INT(db_int(path, "SELECT count(*) FROM blobs WHERE sha_hex IS NOT NULL"),
			  ID_BLOBS - 2);
	} else {
		CHECK_INT(db_int(path, "SELECT count(*) FROM blobs"), 2);
		CHECK_INT(db_int(path, "SELECT count(*) FROM blobs_hex"), ID_BLOBS - 2);
		out = ps_test_sql(path, "PRAGMA foreign_key_check");
		CHECK_STR(out, "");
		free(out);
	}

	/* Opening finishes it. */
	check_blob_ids(path, shas, encodings);

	/* Two processes converting at once take turns batch by batch (SQLite: batches of one
	 * row; PostgreSQL: the open of each, one waiting on the migration lock), and the store
	 * ends up converted once. */
	back_to_hex_ids(path);
	for (int k = 0; k < 2; k++) {
		pids[k] = fork();
		if (pids[k] == 0) {
			if (ps_store_open(&s, path, ps_test_pg() ? 0 : PS_STORE_NO_MIGRATE) < 0)
				_exit(3);
			if (!ps_test_pg() && ps_sqlite_blob_convert(s, 1, NULL, NULL) < 0)
				_exit(4);
			ps_store_free(s);
			_exit(0);
		}
	}
	for (int k = 0; k < 2; k++) {
		CHECK(waitpid(pids[k], &status, 0) == pids[k]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	check_blob_ids(path, shas, encodings);
	free(path);
}


/* ---- schema 25: code index rows compressed (migrations/0025_code_rows_zstd.sql) ---- */

int ps_pg_code_convert(struct ps_store *s, size_t batch_rows,
		       void (*after_row)(void *ud, size_t row), void *ud);

/* Index of migrations/0025_code_rows_zstd.sql among the embedded migrations. */
#define CODE_ZSTD_STEP 24

/* code_postings as stored, in key order (either backend). */
struct stored_rows {
	int64_t seg[512], first[512];
	unsigned char *data[512];
	size_t len[512], n;
};

static void stored_rows_free(struct stored_rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->data[i]);
	r->n = 0;
}

static void stored_rows_read(const char *path, struct stored_rows *r)
{
	r->n = 0;
	if (ps_test_pg()) {
		PGconn *c = PQconnectdb(path);
		PGresult *res = PQexecParams(c, "SELECT seg, first, data FROM code_postings ORDER BY "
						"seg, first", 0, NULL, NULL, NULL, NULL, 1);

		CHECK_INT(PQresultStatus(res), PGRES_TUPLES_OK);
		for (int i = 0; i < PQntuples(res) && r->n < 512; i++, r->n++) {
			uint64_t seg = 0;
			uint32_t first = 0;

			memcpy(&seg, PQgetvalue(res, i, 0), 8);
			memcpy(&first, PQgetvalue(res, i, 1), 4);
			r->seg[r->n] = (int64_t)__builtin_bswap64(seg);
			r->first[r->n] = (int64_t)__builtin_bswap32(first);
			r->len[r->n] = (size_t)PQgetlength(res, i, 2);
			r->data[r->n] = ps_malloc(r->len[r->n] + 1);
			memcpy(r->data[r->n], PQgetvalue(res, i, 2), r->len[r->n]);
		}
		PQclear(res);
		PQfinish(c);
		return;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT key, data FROM code_postings ORDER BY key", -1, &st,
				     NULL), SQLITE_OK);
	while (st && sqlite3_step(st) == SQLITE_ROW && r->n < 512) {
		int64_t key = sqlite3_column_int64(st, 0);

		r->seg[r->n] = key >> 24;
		r->first[r->n] = key & 0xffffff;
		r->len[r->n] = (size_t)sqlite3_column_bytes(st, 1);
		r->data[r->n] = ps_malloc(r->len[r->n] + 1);
		memcpy(r->data[r->n], sqlite3_column_blob(st, 1), r->len[r->n]);
		r->n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Sets one row's bytes behind projsync's back. */
static void stored_row_write(const char *path, int64_t seg, int64_t first, const void *data,
			     size_t len)
{
	if (ps_test_pg()) {
		PGconn *c = PQconnectdb(path);
		char a[32], b[32];
		const char *vals[3] = { a, b, data };
		int lens[3] = { 0, 0, (int)len }, fmts[3] = { 0, 0, 1 };
		PGresult *res;

		snprintf(a, sizeof(a), "%lld", (long long)seg);
		snprintf(b, sizeof(b), "%lld", (long long)first);
		res = PQexecParams(c, "UPDATE code_postings SET data = $3 WHERE seg = $1 AND first = $2",
				   3, NULL, vals, lens, fmts, 0);
		CHECK_INT(PQresultStatus(res), PGRES_COMMAND_OK);
		CHECK_STR(PQcmdTuples(res), "1");
		PQclear(res);
		PQfinish(c);
		return;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "UPDATE code_postings SET data = ? WHERE key = ?", -1, &st,
				     NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, data, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, seg << 24 | first);
	CHECK_INT(sqlite3_step(st), SQLITE_DONE);
	CHECK_INT(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static size_t count_compressed(const struct stored_rows *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += ps_tri_row_compressed(r->data[i], r->len[i]);
	return n;
}

/* The store at `path` back to schema 24, its code index rows raw as a projsync before 0025 wrote
 * them (tests/integration/conftest.py, sqlite_undo_code_rows_zstd, does the same), then
 * migration 0025's SQL on it, as ps_store_migrate runs it before converting. */
static void back_to_raw_rows(const char *path)
{
	extern const struct ps_embedded ps_pg_migrations[];
	const struct ps_embedded *m = ps_test_pg() ? &ps_pg_migrations[CODE_ZSTD_STEP]
						   : &ps_migrations[CODE_ZSTD_STEP];
	struct stored_rows r;
	char *sql;

	if (ps_test_pg())
		undo_dir_ids_pg(path);
	else
		db_exec(path, undo_dir_ids_sqlite);
	stored_rows_read(path, &r);
	for (size_t i = 0; i < r.n; i++) {
		const unsigned char *raw;
		size_t len;

		if (!ps_tri_row_compressed(r.data[i], r.len[i]))
			continue;
		CHECK(ps_tri_row_unpack(&tz, r.data[i], r.len[i], &raw, &len));
		stored_row_write(path, r.seg[i], r.first[i], raw, len);
	}
	stored_rows_free(&r);
	db_exec(path, ps_test_pg() ? "DELETE FROM projsync_schema WHERE version > 24"
				   : "PRAGMA user_version = 24");
	stored_rows_read(path, &r);
	CHECK_INT(count_compressed(&r), 0);
	stored_rows_free(&r);
	CHECK(strstr(m->name, "0025_code_rows_zstd") != NULL);
	sql = ps_asprintf("%s; %s", m->text,
			  ps_test_pg() ? "INSERT INTO projsync_schema VALUES (25)"
				       : "PRAGMA user_version = 25");
	db_exec(path, sql);
	free(sql);
}

/*
 * A store whose code index rows are raw (written before schema 25) has them compressed at open
 * (migration 0025) in batches: a conversion killed in its second batch keeps the first, the next
 * open finishes it, the rows end up byte for byte as a new store writes them, and every search
 * answers as before. A compressed row that is damaged fails a search with the same error as a
 * damaged raw row. Both backends.
 */
static void test_code_rows_conversion(void)
{
	enum { N = 160 };
	char *path = NULL, *want[8], *err_raw, *err_zstd;
	static char text[N][512], names[N][32];
	const char *lits[8];
	char shas[N][PS_SHA_HEX], lit[8][16];
	struct ps_change ch[N];
	struct stored_rows before, after, mid;
	struct ps_store *s = open_store(&path);
	struct ps_project *p = add_project(s, "zrows");
	size_t kill_row = 3, compressed;
	uint64_t x = 99;
	int64_t s1;
	pid_t pid;
	int status = 0;

	/* One large segment (one transaction: several rows of ~8 KiB), then small ones. */
	for (int i = 0; i < N; i++) {
		size_t n = 0;

		while (n < 400) {
			uint64_t r = rng_next(&x);
			for (int k = 0; k < 5; k++, r >>= 5)
				text[i][n++] = (char)('a' + r % 26);
			text[i][n++] = ' ';
		}
		text[i][n++] = '\n';
		text[i][n] = 0;
		put_blob(s, text[i], n, shas[i]);
	}
	CHECK_OK(ps_store_begin(s));
	for (int i = 0; i < N - 4; i++)
		CHECK_OK(ps_store_code_index_put(s, shas[i], text[i], strlen(text[i]), false));
	CHECK_OK(ps_store_commit(s));
	for (int i = N - 4; i < N; i++)
		CHECK_OK(ps_store_code_index_put(s, shas[i], text[i], strlen(text[i]), false));
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "f%03d.txt", i);
		ch[i] = change(PS_CHANGE_ADDED, names[i], text[i]);
	}
	s1 = commit_sync(s, p, ch, N, "c1");
	/* Literals from the texts (a word, a word's end and the next's start), a rare one. */
	for (int k = 0; k < 8; k++) {
		const char *t = text[(k * 37) % N];
		memcpy(lit[k], t + (k % 2 ? 6 * k : 6 * k + 3), 5);
		lit[k][5] = 0;
		lits[k] = lit[k];
	}
	for (int k = 0; k < 8; k++) {
		struct ps_code_query q = { .op = PS_CODE_LITERAL, .literal = (char *)lits[k] };
		want[k] = candidates(s, p->id, s1, &q, NULL, NULL, 0);
		CHECK(strncmp(want[k], "error", 5) != 0 && *want[k]);
	}
	ps_store_free(s);
	stored_rows_read(path, &before);
	CHECK(before.n >= 6);
	CHECK(count_compressed(&before) >= before.n - 4); /* the small segments' rows may not shrink */

	back_to_raw_rows(path);
	/* Killed in the second batch of two rows: the first batch stays compressed, the rest raw. */
	pid = fork();
	if (pid == 0) {
		if (ps_store_open(&s, path, PS_STORE_NO_MIGRATE) < 0)
			_exit(3);
		if (ps_test_pg())
			ps_pg_code_convert(s, 2, kill_at, &kill_row);
		else
			ps_sqlite_code_convert(s, 2, kill_at, &kill_row);
		_exit(4);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	stored_rows_read(path, &mid);
	compressed = count_compressed(&mid);
	CHECK_INT(compressed, 2);
	for (size_t i = 0; i < mid.n; i++)
		CHECK(ps_tri_row_compressed(mid.data[i], mid.len[i]) == (i < 2));
	stored_rows_free(&mid);
	CHECK_INT(db_int(path, "SELECT count(*) FROM code_rows_raw"), 1);

	/* Opening finishes it: the rows are what a new store holds, the marker is gone, and
	 * every search answers as before. */
	CHECK_OK(ps_store_open(&s, path, 0));
	stored_rows_read(path, &after);
	CHECK_INT(after.n, before.n);
	for (size_t i = 0; i < after.n && i < before.n; i++) {
		CHECK(after.seg[i] == before.seg[i] && after.first[i] == before.first[i]);
		CHECK(after.len[i] == before.len[i] &&
		      memcmp(after.data[i], before.data[i], after.len[i]) == 0);
	}
	CHECK_INT(db_int(path, ps_test_pg() ? "SELECT count(*) FROM pg_tables WHERE tablename = "
					      "'code_rows_raw'"
					    : "SELECT count(*) FROM sqlite_master WHERE name = "
					      "'code_rows_raw'"), 0);
	for (int k = 0; k < 8; k++) {
		struct ps_code_query q = { .op = PS_CODE_LITERAL, .literal = (char *)lits[k] };
		EXPECT_CANDIDATES(s, p->id, s1, &q, NULL, NULL, want[k]);
	}

	/* Damaged rows fail a search, compressed (its checksum's last byte changed) exactly as
	 * raw (a directory longer than the row) do. */
	{
		struct ps_code_query q = { .op = PS_CODE_LITERAL, .literal = (char *)lits[0] };

		for (size_t i = 0; i < after.n; i++) {
			if (!ps_tri_row_compressed(after.data[i], after.len[i]))
				continue;
			after.data[i][after.len[i] - 1] ^= 0x40;
			stored_row_write(path, after.seg[i], after.first[i], after.data[i],
					 after.len[i]);
			after.data[i][after.len[i] - 1] ^= 0x40;
		}
		err_zstd = candidates(s, p->id, s1, &q, NULL, NULL, 0);
		for (size_t i = 0; i < after.n; i++)
			if (ps_tri_row_compressed(after.data[i], after.len[i]))
				stored_row_write(path, after.seg[i], after.first[i], "\x05\xff\x01", 3);
		err_raw = candidates(s, p->id, s1, &q, NULL, NULL, 0);
		CHECK(strstr(err_zstd, "code index segment") && strstr(err_zstd, "is damaged"));
		CHECK_STR(err_zstd, err_raw);
		free(err_zstd);
		free(err_raw);
		for (size_t i = 0; i < after.n; i++)
			stored_row_write(path, after.seg[i], after.first[i], after.data[i],
					 after.len[i]);
		EXPECT_CANDIDATES(s, p->id, s1, &q, NULL, NULL, want[0]);
	}
	ps_store_free(s);

	/* A store converted already: an open writes nothing, the rows stay as they are. */
	CHECK_OK(ps_store_open(&s, path, 0));
	ps_store_free(s);
	stored_rows_read(path, &mid);
	CHECK_INT(mid.n, after.n);
	for (size_t i = 0; i < mid.n && i < after.n; i++)
		CHECK(mid.len[i] == after.len[i] && !memcmp(mid.data[i], after.data[i], mid.len[i]));
	stored_rows_free(&mid);
	for (int k = 0; k < 8; k++)
		free(want[k]);
	stored_rows_free(&before);
	stored_rows_free(&after);
	ps_project_free(p);
	free(path);
}

/* PostgreSQL's blob_packs.content (migration 0027) is stored as blobs.content is: out of line,
 * never pglz-compressed, which a zstd frame would only cost time for; and the prune's compact
 * step vacuums blob_packs too, so the space of the packs a prune deleted is reused. */
static void test_pg_blob_packs_storage(void)
{
	char *path = NULL;
	struct ps_store *s;

	if (!ps_test_pg())
		return;
	s = open_store(&path);
	CHECK_INT(db_int(path, "SELECT count(*) FROM pg_attribute WHERE attrelid = "
			       "'blob_packs'::regclass AND attname = 'content' AND attstorage = 'e'"),
		  1);
	CHECK_OK(ps_store_compact(s));
	CHECK_INT(db_int(path, "SELECT count(*) FROM pg_stat_user_tables WHERE relname = "
			       "'blob_packs' AND vacuum_count > 0"), 1);
	ps_store_free(s);
	free(path);
}

PS_TESTS(PS_TEST(test_atomic_visibility), PS_TEST(test_one_chain), PS_TEST(test_versioned_rows),
	 PS_TEST(test_content_addressing), PS_TEST(test_crash_reap),
	 PS_TEST(test_marker_moves_only_on_success), PS_TEST(test_migrations),
	 PS_TEST(test_backends_share_schema_numbers), PS_TEST(test_pg_server_version),
	 PS_TEST(test_code_unindexed_count), PS_TEST(test_code_unindexed_count_packed),
	 PS_TEST(test_projects),
	 PS_TEST(test_takeover_fences_the_stale_run), PS_TEST(test_reap_leaves_syncs_to_live_nodes),
	 PS_TEST(test_code_index), PS_TEST(test_code_segments), PS_TEST(test_code_compaction_after_prune), PS_TEST(test_code_segments_shared), PS_TEST(test_code_index_crash), PS_TEST(test_blob_round_trips), PS_TEST(test_blob_put_in_transaction),
	 PS_TEST(test_blob_corrupt), PS_TEST(test_blob_delta_chain), PS_TEST(test_blob_delta_corrupt),
	 PS_TEST(test_blob_delta_prune), PS_TEST(test_blob_packs),
	 PS_TEST(test_dir_rows_after_prune),
	 PS_TEST(test_blob_packs_round_trips), PS_TEST(test_blob_packs_deltas),
	 PS_TEST(test_blob_packs_corrupt), PS_TEST(test_blob_packs_rollback),
	 PS_TEST(test_blob_packs_prune), PS_TEST(test_blob_packs_prune_deltas),
	 PS_TEST(test_blob_packs_copy), PS_TEST(test_blob_packs_existing),
	 PS_TEST(test_blob_packs_existing_lone),
	 PS_TEST(test_blob_conversion), PS_TEST(test_blob_id_conversion), PS_TEST(test_code_rows_conversion), PS_TEST(test_stats), PS_TEST(test_object_ids_at_rest), PS_TEST(test_pg_blob_packs_storage),
	 PS_TEST(test_dir_trees_rebuilt), PS_TEST(test_paths_in_byte_order),
	 PS_TEST(test_paging_by_cursor), PS_TEST(test_code_walk_empty_scope))
