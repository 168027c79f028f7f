/*
 * The SQLite backend of the store (store.h). One database file in WAL mode: readers never block
 * the sync that writes, and a process killed at any moment leaves the last committed state.
 *
 * Visibility (data rule 1 and 3): a file version row is part of the snapshot of succeeded sync S
 * when it was introduced by a succeeded sync at or before S and not superseded at or before S.
 * superseded_by is only ever written by ps_store_sync_finalize, in the same transaction that marks
 * the sync succeeded, so every superseding sync is a succeeded one. Rows staged by a sync that
 * then fails are deleted when it is marked failed, and never visible before that because their
 * sync is not succeeded.
 *
 * Sync ids come from AUTOINCREMENT and are never reused, so within a project the chain order is
 * the id order; the snapshot queries rely on that.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/sqlite/sqlite_internal.h"
#include "store/blobcodec.h"
#include "model/diff.h"
#include "model/json.h"
#include "model/schedule.h"
#include "util/error.h"

struct ps_embedded {
	const char *name;
	const char *text;
	size_t len;
};
extern const struct ps_embedded ps_migrations[];
extern const size_t ps_migrations_count;


/* ---- plumbing ---- */

static int db_error(struct ps_store *s, const char *what)
{
	int err = sqlite3_errcode(s->db);
	int ext = sqlite3_extended_errcode(s->db);

	if (err == SQLITE_READONLY || ext == SQLITE_CANTOPEN)
		return ps_error_set(PS_ESTORE, "store_read_only", "store %s cannot be written (%s): %s",
				    s->path, what, sqlite3_errmsg(s->db));
	if (err == SQLITE_NOTADB || err == SQLITE_CORRUPT)
		return ps_error_set(PS_ESTORE, "store_corrupt",
				    "store %s is not a valid projsync database (%s)", s->path,
				    sqlite3_errmsg(s->db));
	if (err == SQLITE_BUSY || err == SQLITE_LOCKED)
		return ps_error_set(PS_ESTORE, "store_busy", "store %s is busy (%s): %s", s->path,
				    what, sqlite3_errmsg(s->db));
	if (err == SQLITE_FULL)
		return ps_error_set(PS_ESTORE, "store_full", "store %s: disk full (%s)", s->path, what);
	return ps_error_set(PS_ESTORE, "store", "store %s: %s: %s", s->path, what,
			    sqlite3_errmsg(s->db));
}

/* A cached prepared statement for a SQL string literal, reset and unbound. */
static sqlite3_stmt *stmt(struct ps_store *s, const char *sql)
{
	int free_slot = -1;

	for (int i = 0; i < STMT_CACHE; i++) {
		if (s->cache[i].sql == sql) {
			sqlite3_reset(s->cache[i].stmt);
			sqlite3_clear_bindings(s->cache[i].stmt);
			return s->cache[i].stmt;
		}
		if (!s->cache[i].sql && free_slot < 0)
			free_slot = i;
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		db_error(s, "prepare");
		return NULL;
	}
	if (free_slot >= 0) {
		s->cache[free_slot].sql = sql;
		s->cache[free_slot].stmt = st;
	}
	/* With a full cache the statement leaks until close; the cache is sized above the number
	 * of distinct statements in this file, so that does not happen. */
	return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_id(sqlite3_stmt *st, int i, int64_t v)
{
	if (v > 0)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? ps_strndup((const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

/* Runs a statement that returns no rows. */
static int step_done(struct ps_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		int code = db_error(s, what);
		sqlite3_reset(st);
		return code;
	}
	sqlite3_reset(st);
	return 0;
}

static int exec(struct ps_store *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(s, what);
	return 0;
}

/* exec for the statements of every transaction: kept prepared, not parsed at each call. */
static int exec_cached(struct ps_store *s, const char *sql, const char *what)
{
	sqlite3_stmt *st = stmt(s, sql);

	return st ? step_done(s, st, what) : PS_ESTORE;
}

static const char begin_sql[] = "BEGIN IMMEDIATE";
static const char commit_sql[] = "COMMIT";

sqlite3_stmt *ps_sqlite_stmt(struct ps_store *s, const char *sql) { return stmt(s, sql); }
int ps_sqlite_error(struct ps_store *s, const char *what) { return db_error(s, what); }
int ps_sqlite_step_done(struct ps_store *s, sqlite3_stmt *st, const char *what)
{
	return step_done(s, st, what);
}
void ps_sqlite_bind_text(sqlite3_stmt *st, int i, const char *v) { bind_text(st, i, v); }
char *ps_sqlite_col_text(sqlite3_stmt *st, int i) { return col_text(st, i); }

int ps_sqlite_begin(struct ps_store *s)
{
	if (s->tx_depth++ > 0)
		return 0;
	s->tx_aborted = false;
	if (exec_cached(s, begin_sql, "begin transaction") < 0) {
		s->tx_depth = 0;
		return PS_ESTORE;
	}
	return 0;
}

int ps_sqlite_commit(struct ps_store *s)
{
	if (s->tx_depth <= 0)
		return ps_error_set(PS_ESTORE, NULL, "commit without a transaction");
	if (--s->tx_depth > 0)
		return 0;
	if (s->tx_aborted) {
		ps_sqlite_code_discard(s);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return ps_error_set(PS_ESTORE, NULL, "transaction was rolled back by an inner failure");
	}
	/* The code index's postings go in the transaction of the code_blobs rows they cover. */
	if (ps_sqlite_code_flush(s) < 0) {
		int code = ps_error_code();
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return code ? code : PS_ESTORE;
	}
	if (exec_cached(s, commit_sql, "commit") < 0) {
		int code = ps_error_code();
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return code;
	}
	return 0;
}

void ps_sqlite_rollback(struct ps_store *s)
{
	if (s->tx_depth <= 0)
		return;
	s->tx_aborted = true;
	if (--s->tx_depth == 0) {
		ps_sqlite_code_discard(s);
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	}
}

/* ---- object ids at rest ---- */

/*
 * file_versions.sha and dir_trees.tree_sha hold an object id as its 20 bytes (schema 16); the
 * rest of projsync speaks 40 hex digits. The conversion is done by these two SQL functions, in
 * the queries, so that every statement, the migration and store copy convert the same way.
 * A value that is not 40 lowercase hex digits (no source writes one) is kept as the text it is,
 * so whatever was stored reads back exactly; the two forms never compare equal.
 */
static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void sql_unhex(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const unsigned char *t;
	unsigned char out[20];

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_TEXT || sqlite3_value_bytes(argv[0]) != 40) {
		sqlite3_result_value(cx, argv[0]);
		return;
	}
	t = sqlite3_value_text(argv[0]);
	for (int i = 0; i < 20; i++) {
		int hi = hexval(t[2 * i]), lo = hexval(t[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			sqlite3_result_value(cx, argv[0]);
			return;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	sqlite3_result_blob(cx, out, 20, SQLITE_TRANSIENT);
}

static void sql_hex(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b;
	char out[40];

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_bytes(argv[0]) != 20) {
		sqlite3_result_value(cx, argv[0]);
		return;
	}
	b = sqlite3_value_blob(argv[0]);
	for (int i = 0; i < 20; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	sqlite3_result_text(cx, out, 40, SQLITE_TRANSIENT);
}

/* ---- directories by id (schema 26) ---- */

void ps_sqlite_split_path(const char *path, size_t len, size_t *dirlen, const char **name)
{
	const char *slash = NULL;

	/* Not at a leading '/': "/x" (no source writes one, but the store keeps what it is
	 * given) is the root's "/x", since the root's path '' cannot be told from an empty
	 * first component. */
	for (size_t i = len; i > 1; i--)
		if (path[i - 1] == '/') {
			slash = path + i - 1;
			break;
		}
	*dirlen = slash ? (size_t)(slash - path) : 0;
	*name = slash ? slash + 1 : path;
}

/* ps_dirname(path), ps_basename(path): the two halves of ps_sqlite_split_path, for migration
 * 0026. A value that is not text is returned as it is. */
static void sql_split(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const char *p, *name;
	size_t len, dirlen;

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
		sqlite3_result_value(cx, argv[0]);
		return;
	}
	p = (const char *)sqlite3_value_text(argv[0]);
	len = (size_t)sqlite3_value_bytes(argv[0]);
	ps_sqlite_split_path(p, len, &dirlen, &name);
	if (sqlite3_user_data(cx))
		sqlite3_result_text64(cx, name, len - (size_t)(name - p), SQLITE_TRANSIENT, SQLITE_UTF8);
	else
		sqlite3_result_text64(cx, p, dirlen, SQLITE_TRANSIENT, SQLITE_UTF8);
}

int ps_sqlite_dir_id(struct ps_store *s, int64_t project_id, const char *dir, size_t len,
		     bool create, int64_t *id)
{
	static const char find[] = "SELECT id FROM dirs WHERE project_id = ?1 AND path = ?2";
	static const char add[] = "INSERT INTO dirs (project_id, path) VALUES (?1, ?2)";
	sqlite3_stmt *st = stmt(s, find);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_text64(st, 2, dir, len, SQLITE_STATIC, SQLITE_UTF8);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return db_error(s, "find directory");
	if (!create)
		return PS_ENOTFOUND;
	if (!(st = stmt(s, add)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_text64(st, 2, dir, len, SQLITE_STATIC, SQLITE_UTF8);
	if ((rc = step_done(s, st, "add directory")) < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int ps_sqlite_functions(sqlite3 *db)
{
	const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
	static int basename_tag;
	int rc = sqlite3_create_function(db, "ps_unhex", 1, flags, NULL, sql_unhex, NULL, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "ps_hex", 1, flags, NULL, sql_hex, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "ps_dirname", 1, flags, NULL, sql_split, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(db, "ps_basename", 1, flags, &basename_tag, sql_split,
					     NULL, NULL);
	return rc;
}

/* ---- open and migrations ---- */

int ps_sqlite_schema_version(void)
{
	return (int)ps_migrations_count;
}

static int user_version(struct ps_store *s, int *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_error(s, "read schema version");
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = db_error(s, "read schema version");
		sqlite3_finalize(st);
		return rc;
	}
	*out = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int ps_sqlite_migrate(struct ps_store *s, int *from, int *to)
{
	int version, rc, objects = 0;
	sqlite3_stmt *st = NULL;

	if ((rc = user_version(s, &version)) < 0)
		return rc;
	if (from)
		*from = version;
	if (version > ps_store_schema_version())
		return ps_error_set(PS_ESTORE, "schema_too_new",
				    "store %s has schema version %d, newer than this projsync knows (%d): "
				    "upgrade projsync", s->path, version, ps_store_schema_version());
	if (version == 0) {
		/* A database with tables but no version is someone else's file: do not touch it. */
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
			    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			objects = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (objects > 0)
			return ps_error_set(PS_ESTORE, "store_foreign",
					    "%s is an SQLite database but not a projsync store", s->path);
	}
	for (size_t i = (size_t)version; i < ps_migrations_count; i++) {
		char pragma[64];
		int now;

		if ((rc = ps_store_begin(s)) < 0)
			return rc;
		/* Read again under the write lock: another process opening the store at the same
		 * moment may have applied this step since (a server and a CLI after an upgrade);
		 * running it twice fails (its tables exist) or, worse, would apply it twice. */
		if ((rc = user_version(s, &now)) < 0) {
			ps_store_rollback(s);
			return rc;
		}
		if ((size_t)now > i) {
			ps_store_rollback(s);
			if (now > ps_store_schema_version())
				return ps_error_set(PS_ESTORE, "schema_too_new",
						    "store %s has schema version %d, newer than this "
						    "projsync knows (%d): upgrade projsync",
						    s->path, now, ps_store_schema_version());
			i = (size_t)now - 1;
			continue;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", i + 1);
		if (exec(s, ps_migrations[i].text, ps_migrations[i].name) < 0 ||
		    exec(s, pragma, "set schema version") < 0) {
			rc = ps_error_code();
			ps_store_rollback(s);
			return ps_error_wrap(rc, "migration %s failed: ", ps_migrations[i].name);
		}
		if ((rc = ps_store_commit(s)) < 0)
			return rc;
	}
	/* Blobs written before schema 10 are compressed, and those written before schema 23 get
	 * 20-byte ids, in resumable batches outside the one-transaction SQL migrations
	 * (migrations/0010_blob_encoding.sql, 0023_blob_ids.sql). */
	if ((rc = ps_sqlite_blob_convert(s, 0, NULL, NULL)) < 0)
		return ps_error_wrap(rc, "converting blobs to the current format: ");
	/* Code index rows written before schema 25 are compressed the same way
	 * (migrations/0025_code_rows_zstd.sql). */
	if ((rc = ps_sqlite_code_convert(s, 0, NULL, NULL)) < 0)
		return ps_error_wrap(rc, "compressing the code index: ");
	if (to)
		*to = ps_store_schema_version();
	return 0;
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/* Once, before SQLite's first use. Its memory statistics (nothing here reads them) take one
 * global mutex around every allocation of every connection: with the workers, the scheduler
 * and the request threads each on their own connection, that lock was contended (futex
 * wake-ups in a profile of scheduled checks, docs/performance.md). Fails harmlessly when
 * SQLite was already initialized. */
static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/*
 * Creates the store file 0600 when it does not exist yet, so that SQLite finds it instead of
 * creating it with the umask's mode (0644 usually): the store holds sources with their
 * credentials and the server's data, and a --db in an existing folder has no 0700 folder
 * around it. SQLite gives its -wal, -shm and -journal files the main file's mode, so they
 * follow. A file that exists keeps its mode: it is the user's. True when this call created
 * it. Any failure is left to SQLite's open, which says it in its own words.
 */
static bool create_private(const char *path)
{
	int fd;

	if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
		return false;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int ps_sqlite_open(struct ps_store **out, const char *url, unsigned flags)
{
	struct ps_store *s;
	bool created = false;
	int rc;

	pthread_once(&sqlite_once, sqlite_setup);

	if (flags & PS_STORE_NO_CREATE) {
		struct stat st;
		/* Without SQLITE_OPEN_CREATE SQLite would only say "unable to open database file";
		 * a missing file deserves its own answer. */
		int sr = stat(url, &st);
		if (sr < 0 && errno == ENOENT)
			return ps_error_set(PS_ENOTFOUND, "no_store", "no store at %s", url);
		/* An empty file (`touch`) is no store either, as an empty PostgreSQL database is
		 * not: opening it would make it one on a read command. Unless its WAL holds what
		 * was not checkpointed into it yet. */
		if (sr == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
			char *wal = ps_asprintf("%s-wal", url);
			struct stat ws;
			bool none = stat(wal, &ws) < 0 || ws.st_size == 0;
			free(wal);
			if (none)
				return ps_error_set(PS_ENOTFOUND, "no_store", "no store at %s", url);
		}
	}
	s = ps_calloc(1, sizeof(*s));
	s->path = ps_strdup(url);
	if ((rc = ps_blobcodec_new(&s->codec)) < 0) {
		ps_sqlite_free(s);
		return rc;
	}
	if (!(flags & PS_STORE_NO_CREATE))
		created = create_private(url);
	rc = sqlite3_open_v2(url, &s->db, SQLITE_OPEN_READWRITE |
			     (flags & PS_STORE_NO_CREATE ? 0 : SQLITE_OPEN_CREATE), NULL);
	if (rc != SQLITE_OK) {
		ps_error_set(PS_ESTORE, "store_open", "cannot open store %s: %s", url,
			     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		ps_store_free(s);
		if (created)
			(void)unlink(url);
		return PS_ESTORE;
	}
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_timeout(s->db, 10000);
	if (ps_sqlite_functions(s->db) != SQLITE_OK) {
		db_error(s, "open");
		goto fail;
	}
	/* Before any statement reads code_fts, which cannot be opened without its tokenizer. */
	if (ps_sqlite_code_register(s->db) < 0) {
		ps_error_set(PS_ESTORE, "store_open",
			     "cannot open store %s: this SQLite has no FTS5 (needed by the code index)",
			     url);
		goto fail;
	}
	/* WAL: readers see the last committed state while a sync writes; NORMAL sync is durable
	 * against a killed process (the case the crash rules are about). */
	if (exec(s, "PRAGMA journal_mode=WAL", "open") < 0 ||
	    exec(s, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", "open") < 0)
		goto fail;
	if ((flags & PS_STORE_SMALL_CACHE) && exec(s, "PRAGMA cache_size=-512", "open") < 0)
		goto fail;
	if (!(flags & PS_STORE_NO_MIGRATE)) {
		if (ps_store_migrate(s, NULL, NULL) < 0)
			goto fail;
	} else {
		int v;
		if (user_version(s, &v) < 0)
			goto fail;
		if (v > ps_store_schema_version()) {
			ps_error_set(PS_ESTORE, "schema_too_new",
				     "store %s has schema version %d, newer than this projsync knows (%d): "
				     "upgrade projsync", s->path, v, ps_store_schema_version());
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	rc = ps_error_code();
	ps_store_free(s);
	return rc ? rc : PS_ESTORE;
}

void ps_sqlite_free(struct ps_store *s)
{
	if (!s)
		return;
	while (s->tx_depth > 0)
		ps_store_rollback(s);
	for (int i = 0; i < STMT_CACHE; i++)
		sqlite3_finalize(s->cache[i].stmt);
	sqlite3_close(s->db);
	ps_sqlite_code_free(s);
	ps_blobcodec_free(s->codec);
	free(s->path);
	free(s);
}

/* ---- projects ---- */

#define PROJECT_COLS "id, name, source, branch, max_blob_size, memory_globs, last_sync_id, " \
	"last_commit, last_error_code, last_error_message, failures_in_row, created_at, " \
	"every_ms, every_auto, auto_min_ms, auto_max_ms, interval_ms, next_sync_at, " \
	"last_check_at, max_failures, state, paused_at, paused_reason, keep_syncs, keep_days, " \
	"code_index, code_index_pending"

static struct ps_project *project_from_row(sqlite3_stmt *st)
{
	struct ps_project *p = ps_calloc(1, sizeof(*p));
	json_t *globs;

	p->id = sqlite3_column_int64(st, 0);
	p->name = col_text(st, 1);
	p->source = col_text(st, 2);
	p->branch = col_text(st, 3);
	p->max_blob_size = sqlite3_column_int64(st, 4);
	globs = json_loads((const char *)sqlite3_column_text(st, 5), 0, NULL);
	for (size_t i = 0; globs && i < json_array_size(globs); i++)
		if (json_is_string(json_array_get(globs, i)))
			ps_strv_push(&p->memory_globs, json_string_value(json_array_get(globs, i)));
	json_decref(globs);
	p->last_sync_id = sqlite3_column_int64(st, 6);
	p->last_commit = col_text(st, 7);
	p->last_error_code = col_text(st, 8);
	p->last_error_message = col_text(st, 9);
	p->failures_in_row = sqlite3_column_int64(st, 10);
	p->created_at = sqlite3_column_int64(st, 11);
	p->every_ms = sqlite3_column_int64(st, 12);
	p->every_auto = sqlite3_column_int(st, 13) != 0;
	p->auto_min_ms = sqlite3_column_int64(st, 14);
	p->auto_max_ms = sqlite3_column_int64(st, 15);
	p->interval_ms = sqlite3_column_int64(st, 16);
	p->next_sync_at = sqlite3_column_int64(st, 17);
	p->last_check_at = sqlite3_column_int64(st, 18);
	p->max_failures = sqlite3_column_int64(st, 19);
	p->paused = sqlite3_column_text(st, 20) &&
		    !strcmp((const char *)sqlite3_column_text(st, 20), "paused");
	p->paused_at = sqlite3_column_int64(st, 21);
	p->paused_reason = col_text(st, 22);
	p->keep_syncs = sqlite3_column_int64(st, 23);
	p->keep_days = sqlite3_column_int64(st, 24);
	p->no_code_index = sqlite3_column_int(st, 25) == 0;
	p->code_index_pending = sqlite3_column_int(st, 26) != 0;
	return p;
}

/* The schedule and retention settings, 9 parameters from `i`, in the order of project_add and
 * project_update: every_ms, every_auto, auto_min_ms, auto_max_ms, interval_ms, next_sync_at,
 * max_failures, keep_syncs, keep_days. */
static void bind_schedule(sqlite3_stmt *st, int i, const struct ps_project *p)
{
	sqlite3_bind_int64(st, i, p->every_ms);
	sqlite3_bind_int(st, i + 1, p->every_auto);
	sqlite3_bind_int64(st, i + 2, p->auto_min_ms);
	sqlite3_bind_int64(st, i + 3, p->auto_max_ms);
	sqlite3_bind_int64(st, i + 4, p->interval_ms);
	bind_id(st, i + 5, p->next_sync_at);
	sqlite3_bind_int64(st, i + 6, p->max_failures);
	sqlite3_bind_int64(st, i + 7, p->keep_syncs);
	sqlite3_bind_int64(st, i + 8, p->keep_days);
}

static char *globs_json(const struct ps_project *p)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = 0; i < p->memory_globs.n; i++)
		json_array_append_new(a, json_string(p->memory_globs.v[i]));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return text;
}

int ps_sqlite_project_add(struct ps_store *s, struct ps_project *p)
{
	static const char sql[] =
		"INSERT INTO projects (name, source, branch, max_blob_size, memory_globs, created_at, "
		"every_ms, every_auto, auto_min_ms, auto_max_ms, interval_ms, next_sync_at, "
		"max_failures, keep_syncs, keep_days, code_index) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	sqlite3_stmt *st = stmt(s, sql);
	char *globs;
	int rc;

	if (!st)
		return PS_ESTORE;
	if (p->memory_globs.n == 0)
		ps_strv_push(&p->memory_globs, PS_DEFAULT_MEMORY_GLOB);
	if (p->max_blob_size <= 0)
		p->max_blob_size = PS_DEFAULT_MAX_BLOB_SIZE;
	ps_project_schedule_defaults(p);
	globs = globs_json(p);
	p->created_at = ps_now_ms();
	bind_text(st, 1, p->name);
	bind_text(st, 2, p->source);
	bind_text(st, 3, p->branch);
	sqlite3_bind_int64(st, 4, p->max_blob_size);
	bind_text(st, 5, globs);
	sqlite3_bind_int64(st, 6, p->created_at);
	bind_schedule(st, 7, p);
	sqlite3_bind_int(st, 16, !p->no_code_index);
	free(globs);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT)
		return ps_error_set(PS_ECONFLICT, "project_exists", "project '%s' already exists",
				    p->name);
	if (rc != SQLITE_DONE)
		return db_error(s, "add project");
	p->id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int ps_sqlite_project_update(struct ps_store *s, const struct ps_project *p)
{
	static const char sql[] =
		"UPDATE projects SET branch = ?1, max_blob_size = ?2, memory_globs = ?3, "
		/* Other globs: the next sync re-evaluates memory against its whole snapshot
		 * (migrations/0004; the right-hand sides read the old values). */
		"memory_rescan_gen = memory_rescan_gen + (memory_globs IS NOT ?3), "
		"memory_rescan = CASE WHEN memory_globs IS NOT ?3 THEN memory_rescan_gen + 1 "
		"ELSE memory_rescan END, "
		/* A higher size limit: the next sync fetches what now fits (migrations/0005). */
		"blob_rescan_gen = blob_rescan_gen + (?2 > max_blob_size), "
		"blob_rescan = CASE WHEN ?2 > max_blob_size THEN blob_rescan_gen + 1 "
		"ELSE blob_rescan END, every_ms = ?5, every_auto = ?6, auto_min_ms = ?7, "
		"auto_max_ms = ?8, interval_ms = ?9, next_sync_at = ?10, max_failures = ?11, "
		"keep_syncs = ?12, keep_days = ?13, "
		/* Switched back on: its next sync indexes what came in while it was off. */
		"code_index_pending = CASE WHEN code_index = 0 AND ?14 = 1 THEN 1 "
		"ELSE code_index_pending END, code_index = ?14 WHERE id = ?4";
	sqlite3_stmt *st = stmt(s, sql);
	char *globs;
	int rc;

	if (!st)
		return PS_ESTORE;
	globs = globs_json(p);
	bind_text(st, 1, p->branch);
	sqlite3_bind_int64(st, 2, p->max_blob_size);
	bind_text(st, 3, globs);
	sqlite3_bind_int64(st, 4, p->id);
	bind_schedule(st, 5, p);
	sqlite3_bind_int(st, 14, !p->no_code_index);
	free(globs);
	if ((rc = step_done(s, st, "update project")) < 0)
		return rc;
	if (sqlite3_changes(s->db) == 0)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)p->id);
	return 0;
}

int ps_sqlite_project_rename(struct ps_store *s, int64_t id, const char *name, const char *source)
{
	static const char sql[] = "UPDATE projects SET name = ?1, source = ?2 WHERE id = ?3";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	bind_text(st, 1, name);
	bind_text(st, 2, source);
	sqlite3_bind_int64(st, 3, id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT)
		return ps_error_set(PS_ECONFLICT, "project_exists", "project '%s' already exists",
				    name);
	if (rc != SQLITE_DONE)
		return db_error(s, "rename project");
	if (sqlite3_changes(s->db) == 0)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)id);
	return 0;
}

static int project_query(struct ps_store *s, sqlite3_stmt *st, const char *what,
			 struct ps_project **out)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*out = project_from_row(st);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project '%s' not found", what);
	return db_error(s, "read project");
}

int ps_sqlite_project_get(struct ps_store *s, const char *name, struct ps_project **out)
{
	static const char sql[] = "SELECT " PROJECT_COLS " FROM projects WHERE name = ?";
	sqlite3_stmt *st = stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	bind_text(st, 1, name);
	return project_query(s, st, name, out);
}

int ps_sqlite_project_get_by_id(struct ps_store *s, int64_t id, struct ps_project **out)
{
	static const char sql[] = "SELECT " PROJECT_COLS " FROM projects WHERE id = ?";
	sqlite3_stmt *st = stmt(s, sql);
	char what[32];

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, id);
	snprintf(what, sizeof(what), "#%lld", (long long)id);
	return project_query(s, st, what, out);
}

int ps_sqlite_project_list(struct ps_store *s, struct ps_project ***out, size_t *n)
{
	static const char sql[] = "SELECT " PROJECT_COLS " FROM projects ORDER BY name";
	sqlite3_stmt *st = stmt(s, sql);
	struct ps_project **v = NULL;
	size_t count = 0;
	int rc;

	if (!st)
		return PS_ESTORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = ps_realloc(v, (count + 1) * sizeof(*v));
		v[count++] = project_from_row(st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < count; i++)
			ps_project_free(v[i]);
		free(v);
		return db_error(s, "list projects");
	}
	*out = v;
	*n = count;
	return 0;
}

int ps_sqlite_project_remove(struct ps_store *s, const char *name)
{
	static const char del_events[] =
		"DELETE FROM events WHERE sync_id IN (SELECT id FROM syncs WHERE project_id = ?)";
	/* By the project's directories (schema 26): no index of file_versions starts with
	 * project_id but the partial one of superseded rows. */
	static const char del_files[] =
		"DELETE FROM file_versions WHERE dir_id IN (SELECT id FROM dirs WHERE project_id = ?)";
	static const char del_syncs[] = "DELETE FROM syncs WHERE project_id = ?";
	static const char del_project[] = "DELETE FROM projects WHERE id = ?";
	const char *const steps[] = { del_events, del_files, del_syncs, del_project };
	struct ps_project *p = NULL;
	struct ps_sync *active = NULL;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = ps_store_project_get(s, name, &p)) < 0)
		goto fail;
	ps_store_reap(s, p->id, NULL);
	if (ps_store_sync_active(s, p->id, &active) == 0) {
		rc = ps_error_set(PS_ECONFLICT, "sync_running",
				  "project '%s' has a %s sync (%lld); cancel it or wait before removing",
				  name, ps_sync_status_name(active->status), (long long)active->id);
		goto fail;
	}
	if ((rc = ps_sqlite_memory_remove_project(s, p->id)) < 0 ||
	    (rc = ps_sqlite_trees_remove_project(s, p->id)) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		sqlite3_stmt *st = stmt(s, steps[i]);
		if (!st) {
			rc = PS_ESTORE;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, p->id);
		if ((rc = step_done(s, st, "remove project")) < 0)
			goto fail;
	}
	ps_project_free(p);
	return ps_store_commit(s);
fail:
	ps_sync_free(active);
	ps_project_free(p);
	ps_store_rollback(s);
	return rc;
}

/* ---- syncs ---- */

#define SYNC_COLS "s.id, s.project_id, p.name, s.branch, s.status, s.phase, s.commit_sha, " \
	"s.tree_sha, s.previous_sync_id, s.base_sync_id, s.trigger, s.added, s.modified, " \
	"s.deleted, s.renamed, s.files, s.bytes, s.requests, s.up_to_date, s.skipped_large, " \
	"s.error_code, s.error_message, s.created_at, s.started_at, s.finished_at, " \
	"s.head_subject, s.head_author_name, s.head_author_email, s.head_author_date, " \
	"s.head_committer_name, s.head_committer_email, s.head_committer_date, " \
	"s.commit_count, s.commits_truncated, s.checks, s.first_check_at"
#define SYNC_FROM " FROM syncs s JOIN projects p ON p.id = s.project_id "

static struct ps_sync *sync_from_row(sqlite3_stmt *st)
{
	struct ps_sync *s = ps_calloc(1, sizeof(*s));
	const char *status = (const char *)sqlite3_column_text(st, 4);
	const char *phase = (const char *)sqlite3_column_text(st, 5);

	s->id = sqlite3_column_int64(st, 0);
	s->project_id = sqlite3_column_int64(st, 1);
	s->project = col_text(st, 2);
	s->branch = col_text(st, 3);
	if (ps_sync_status_parse(status ? status : "", &s->status) < 0)
		s->status = PS_SYNC_FAILED;
	ps_phase_parse(phase, &s->phase);
	s->commit = col_text(st, 6);
	s->tree = col_text(st, 7);
	s->previous_sync_id = sqlite3_column_int64(st, 8);
	s->base_sync_id = sqlite3_column_int64(st, 9);
	s->trigger = col_text(st, 10);
	s->counts.added = sqlite3_column_int64(st, 11);
	s->counts.modified = sqlite3_column_int64(st, 12);
	s->counts.deleted = sqlite3_column_int64(st, 13);
	s->counts.renamed = sqlite3_column_int64(st, 14);
	s->counts.files = sqlite3_column_int64(st, 15);
	s->bytes = sqlite3_column_int64(st, 16);
	s->requests = sqlite3_column_int64(st, 17);
	s->up_to_date = sqlite3_column_int(st, 18) != 0;
	s->skipped_large = sqlite3_column_int64(st, 19);
	s->error_code = col_text(st, 20);
	s->error_message = col_text(st, 21);
	s->created_at = sqlite3_column_int64(st, 22);
	s->started_at = sqlite3_column_int64(st, 23);
	s->finished_at = sqlite3_column_int64(st, 24);
	if (sqlite3_column_type(st, 25) != SQLITE_NULL) {
		struct ps_commit *c = ps_calloc(1, sizeof(*c));
		snprintf(c->sha, sizeof(c->sha), "%s", s->commit ? s->commit : "");
		c->subject = col_text(st, 25);
		c->author.name = col_text(st, 26);
		c->author.email = col_text(st, 27);
		c->author.date = sqlite3_column_int64(st, 28);
		c->committer.name = col_text(st, 29);
		c->committer.email = col_text(st, 30);
		c->committer.date = sqlite3_column_int64(st, 31);
		s->head_commit = c;
	}
	s->commit_count = sqlite3_column_type(st, 32) == SQLITE_NULL
			  ? -1 : sqlite3_column_int64(st, 32);
	s->commits_truncated = sqlite3_column_int(st, 33) != 0;
	s->checks = sqlite3_column_int64(st, 34);
	s->first_check_at = sqlite3_column_int64(st, 35);
	return s;
}

static int sync_query_one(struct ps_store *s, sqlite3_stmt *st, const char *missing,
			  struct ps_sync **out)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*out = sync_from_row(st);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return ps_error_set(PS_ENOTFOUND, "sync_not_found", "%s", missing);
	return db_error(s, "read sync");
}

int ps_sqlite_sync_get(struct ps_store *s, int64_t id, struct ps_sync **out)
{
	static const char sql[] = "SELECT " SYNC_COLS SYNC_FROM "WHERE s.id = ?";
	sqlite3_stmt *st = stmt(s, sql);
	char msg[64];

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, id);
	snprintf(msg, sizeof(msg), "sync %lld not found", (long long)id);
	return sync_query_one(s, st, msg, out);
}

int ps_sqlite_sync_active(struct ps_store *s, int64_t project_id, struct ps_sync **out)
{
	static const char sql[] = "SELECT " SYNC_COLS SYNC_FROM
		"WHERE s.project_id = ? AND s.status IN ('queued','running')";
	sqlite3_stmt *st = stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	return sync_query_one(s, st, "no sync is queued or running", out);
}

int ps_sqlite_sync_last_succeeded(struct ps_store *s, int64_t project_id, int64_t at_or_before,
				 struct ps_sync **out)
{
	static const char sql[] = "SELECT " SYNC_COLS SYNC_FROM
		"WHERE s.project_id = ?1 AND s.status = 'succeeded' AND (?2 <= 0 OR s.id <= ?2) "
		"ORDER BY s.id DESC LIMIT 1";
	sqlite3_stmt *st = stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, at_or_before);
	return sync_query_one(s, st, "no succeeded sync", out);
}

int ps_sqlite_sync_list(struct ps_store *s, int64_t project_id, int64_t limit, int64_t before_id,
		       struct ps_sync ***out, size_t *n)
{
	static const char sql[] = "SELECT " SYNC_COLS SYNC_FROM
		"WHERE s.project_id = ?1 AND (?2 <= 0 OR s.id < ?2) ORDER BY s.id DESC LIMIT ?3";
	sqlite3_stmt *st = stmt(s, sql);
	struct ps_sync **v = NULL;
	size_t count = 0;
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, before_id);
	sqlite3_bind_int64(st, 3, limit > 0 ? limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = ps_realloc(v, (count + 1) * sizeof(*v));
		v[count++] = sync_from_row(st);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < count; i++)
			ps_sync_free(v[i]);
		free(v);
		return db_error(s, "list syncs");
	}
	*out = v;
	*n = count;
	return 0;
}

static int purge_unsucceeded(struct ps_store *s, int64_t project_id)
{
	static const char sql[] =
		"DELETE FROM file_versions WHERE project_id = ?1 AND introduced_by IN "
		"(SELECT id FROM syncs WHERE project_id = ?1 AND status IN ('failed','cancelled'))";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	if ((rc = step_done(s, st, "purge failed syncs")) < 0)
		return rc;
	return ps_sqlite_trees_purge(s, project_id);
}

int ps_sqlite_sync_create(struct ps_store *s, int64_t project_id, const char *branch,
			 const char *trigger, const struct ps_owner *owner, struct ps_sync **out)
{
	static const char tail_sql[] = "SELECT max(id) FROM syncs WHERE project_id = ?";
	static const char ins_sql[] =
		"INSERT INTO syncs (project_id, branch, status, previous_sync_id, trigger, "
		"owner_host, owner_process, lease_until, created_at, started_at) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	struct ps_sync *active = NULL;
	sqlite3_stmt *st;
	int64_t tail = 0, now = ps_now_ms(), id;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = ps_store_reap(s, project_id, NULL)) < 0)
		goto fail;
	rc = ps_store_sync_active(s, project_id, &active);
	if (rc == 0) {
		rc = ps_store_sync_conflict(active);
		ps_sync_free(active);
		goto fail;
	}
	if (rc != PS_ENOTFOUND)
		goto fail;
	if ((rc = purge_unsucceeded(s, project_id)) < 0)
		goto fail;
	if (!(st = stmt(s, tail_sql))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, project_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		tail = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (!(st = stmt(s, ins_sql))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, project_id);
	bind_text(st, 2, branch);
	bind_text(st, 3, owner ? "running" : "queued");
	bind_id(st, 4, tail);
	bind_text(st, 5, trigger ? trigger : "cli");
	bind_text(st, 6, owner ? owner->host : NULL);
	bind_text(st, 7, owner ? owner->process : NULL);
	if (owner)
		sqlite3_bind_int64(st, 8, now + owner->lease_ms);
	sqlite3_bind_int64(st, 9, now);
	if (owner)
		sqlite3_bind_int64(st, 10, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT) {
		/* Another writer appended between our check and insert (rule 2 held by the indexes). */
		rc = ps_error_set(PS_ECONFLICT, "sync_running",
				  "another sync of this project was started at the same time");
		goto fail;
	}
	if (rc != SQLITE_DONE) {
		rc = db_error(s, "create sync");
		goto fail;
	}
	id = sqlite3_last_insert_rowid(s->db);
	if ((rc = ps_store_commit(s)) < 0)
		return rc;
	return out ? ps_store_sync_get(s, id, out) : 0;
fail:
	ps_store_rollback(s);
	return rc;
}

int ps_sqlite_sync_claim(struct ps_store *s, int64_t sync_id, const struct ps_owner *owner)
{
	static const char sql[] =
		"UPDATE syncs SET status = 'running', owner_host = ?, owner_process = ?, "
		"lease_until = ?, started_at = ? WHERE id = ? AND status = 'queued'";
	sqlite3_stmt *st = stmt(s, sql);
	int64_t now = ps_now_ms();
	int rc;

	if (!st)
		return PS_ESTORE;
	bind_text(st, 1, owner->host);
	bind_text(st, 2, owner->process);
	sqlite3_bind_int64(st, 3, now + owner->lease_ms);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, sync_id);
	if ((rc = step_done(s, st, "claim sync")) < 0)
		return rc;
	if (sqlite3_changes(s->db) != 1)
		return ps_error_set(PS_ECONFLICT, "not_queued", "sync %lld is not queued",
				    (long long)sync_id);
	return 0;
}

int ps_sqlite_sync_save_progress(struct ps_store *s, const struct ps_sync *y, int64_t lease_ms)
{
	static const char sql[] =
		"UPDATE syncs SET phase = ?, commit_sha = ?, tree_sha = ?, base_sync_id = ?, "
		"added = ?, modified = ?, deleted = ?, renamed = ?, files = ?, bytes = ?, "
		"requests = ?, up_to_date = ?, skipped_large = ?, lease_until = ?, branch = ? "
		"WHERE id = ? AND status = 'running'";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	bind_text(st, 1, ps_phase_name(y->phase));
	bind_text(st, 2, y->commit);
	bind_text(st, 3, y->tree);
	bind_id(st, 4, y->base_sync_id);
	sqlite3_bind_int64(st, 5, y->counts.added);
	sqlite3_bind_int64(st, 6, y->counts.modified);
	sqlite3_bind_int64(st, 7, y->counts.deleted);
	sqlite3_bind_int64(st, 8, y->counts.renamed);
	sqlite3_bind_int64(st, 9, y->counts.files);
	sqlite3_bind_int64(st, 10, y->bytes);
	sqlite3_bind_int64(st, 11, y->requests);
	sqlite3_bind_int(st, 12, y->up_to_date);
	sqlite3_bind_int64(st, 13, y->skipped_large);
	sqlite3_bind_int64(st, 14, ps_now_ms() + lease_ms);
	bind_text(st, 15, y->branch);
	sqlite3_bind_int64(st, 16, y->id);
	if ((rc = step_done(s, st, "save sync progress")) < 0)
		return rc;
	if (sqlite3_changes(s->db) != 1)
		return ps_error_set(PS_ECONFLICT, "sync_not_running",
				    "sync %lld is no longer running (another process ended it)",
				    (long long)y->id);
	return 0;
}

int ps_sqlite_sync_request_cancel(struct ps_store *s, int64_t id)
{
	static const char sql[] = "UPDATE syncs SET cancel_requested = 1 "
				  "WHERE id = ? AND status IN ('queued','running')";
	struct ps_sync *y = NULL;
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	if ((rc = ps_store_sync_get(s, id, &y)) < 0)
		return rc;
	if (y->status == PS_SYNC_QUEUED) {
		/* Nobody runs it yet: it ends now. */
		rc = ps_store_sync_fail(s, y, PS_SYNC_CANCELLED, "cancelled", "cancelled before it started",
					NULL);
		ps_sync_free(y);
		return rc;
	}
	ps_sync_free(y);
	sqlite3_bind_int64(st, 1, id);
	if ((rc = step_done(s, st, "cancel sync")) < 0)
		return rc;
	if (sqlite3_changes(s->db) != 1)
		return ps_error_set(PS_ECONFLICT, "sync_ended", "sync %lld has already ended",
				    (long long)id);
	return 0;
}

int ps_sqlite_sync_cancel_requested(struct ps_store *s, int64_t id, bool *out)
{
	static const char sql[] = "SELECT cancel_requested FROM syncs WHERE id = ?";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(s, "read cancel flag");
}

static int64_t last_event_seq(struct ps_store *s, int64_t sync_id)
{
	static const char sql[] = "SELECT coalesce(max(seq), 0) FROM events WHERE sync_id = ?";
	sqlite3_stmt *st = stmt(s, sql);
	int64_t seq = 0;

	if (!st)
		return 0;
	sqlite3_bind_int64(st, 1, sync_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		seq = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return seq;
}

int ps_sqlite_sync_fail(struct ps_store *s, struct ps_sync *y, enum ps_sync_status status,
		       const char *code, const char *message, const struct ps_event *final_event)
{
	static const char upd[] =
		"UPDATE syncs SET status = ?, phase = ?, error_code = ?, error_message = ?, "
		"finished_at = ?, lease_until = NULL, added = 0, modified = 0, deleted = 0, "
		"renamed = 0, files = 0, skipped_large = 0 "
		"WHERE id = ? AND status IN ('queued','running')";
	static const char del[] = "DELETE FROM file_versions WHERE introduced_by = ?";
	static const char proj[] =
		"UPDATE projects SET failures_in_row = failures_in_row + 1, last_error_code = ?, "
		"last_error_message = ? WHERE id = ?";
	sqlite3_stmt *st;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	y->status = status;
	free(y->error_code);
	free(y->error_message);
	y->error_code = ps_strdup(code);
	y->error_message = ps_strdup(message);
	/* It applied nothing: what it had found before it stopped is not a change (history
	 * would show an `ADD 60000` that never happened). */
	memset(&y->counts, 0, sizeof(y->counts));
	y->skipped_large = 0;
	if (!y->finished_at)
		y->finished_at = ps_now_ms();
	if (!(st = stmt(s, upd))) {
		rc = PS_ESTORE;
		goto fail;
	}
	bind_text(st, 1, ps_sync_status_name(status));
	bind_text(st, 2, ps_phase_name(y->phase));
	bind_text(st, 3, code);
	bind_text(st, 4, message);
	sqlite3_bind_int64(st, 5, y->finished_at);
	sqlite3_bind_int64(st, 6, y->id);
	if ((rc = step_done(s, st, "end sync")) < 0)
		goto fail;
	if (sqlite3_changes(s->db) != 1) {
		rc = ps_error_set(PS_ECONFLICT, "sync_ended", "sync %lld has already ended",
				  (long long)y->id);
		goto fail;
	}
	if (!(st = stmt(s, del))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, y->id);
	if ((rc = step_done(s, st, "discard staged files")) < 0)
		goto fail;
	if ((rc = ps_sqlite_memory_discard(s, y->id)) < 0 ||
	    (rc = ps_sqlite_trees_discard(s, y->id)) < 0)
		goto fail;
	if (status == PS_SYNC_FAILED) {
		if (!(st = stmt(s, proj))) {
			rc = PS_ESTORE;
			goto fail;
		}
		bind_text(st, 1, code);
		bind_text(st, 2, message);
		sqlite3_bind_int64(st, 3, y->project_id);
		if ((rc = step_done(s, st, "count failure")) < 0)
			goto fail;
	}
	if (final_event) {
		if ((rc = ps_store_event_append(s, final_event)) < 0)
			goto fail;
	} else {
		/* Ended from outside the run (reaped, cancelled while queued): still close its
		 * event stream with a final event so watchers stop. */
		struct ps_event ev = {
			.sync_id = y->id,
			.seq = last_event_seq(s, y->id) + 1,
			.kind = status == PS_SYNC_CANCELLED ? PS_EVENT_CANCELLED : PS_EVENT_FAILED,
			.phase = y->phase,
			.message = (char *)message,
			.summary = y,
		};
		if ((rc = ps_store_event_append(s, &ev)) < 0)
			goto fail;
	}
	return ps_store_commit(s);
fail:
	ps_store_rollback(s);
	return rc;
}

int ps_sqlite_sync_finalize(struct ps_store *s, struct ps_sync *y, const struct ps_change *changes,
			   size_t n, const struct ps_event *final_event)
{
	static const char upd[] =
		"UPDATE syncs SET status = 'succeeded', phase = 'finalize', commit_sha = ?, "
		"tree_sha = ?, base_sync_id = ?, added = ?, modified = ?, deleted = ?, renamed = ?, "
		"files = ?, bytes = ?, requests = ?, up_to_date = ?, skipped_large = ?, "
		"finished_at = ?, lease_until = NULL, error_code = NULL, error_message = NULL "
		"WHERE id = ? AND status = 'running'";
	static const char supersede[] =
		"UPDATE file_versions SET superseded_by = ?1 "
		"WHERE dir_id = (SELECT id FROM dirs WHERE project_id = ?2 AND path = ?3) "
		"AND name = ?4 AND superseded_by IS NULL AND introduced_by < ?1";
	static const char proj[] =
		"UPDATE projects SET last_sync_id = ?, last_commit = ?, failures_in_row = 0, "
		"last_error_code = NULL, last_error_message = NULL WHERE id = ?";
	/* Only the raise this sync rescanned for: a later one still waits. */
	static const char blobs_rescanned[] =
		"UPDATE projects SET blob_rescan = 0 WHERE id = ?2 AND blob_rescan != 0 "
		"AND blob_rescan = (SELECT blob_rescan FROM syncs WHERE id = ?1)";
	sqlite3_stmt *st;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if (!y->finished_at)
		y->finished_at = ps_now_ms();
	if (!(st = stmt(s, upd))) {
		rc = PS_ESTORE;
		goto fail;
	}
	bind_text(st, 1, y->commit);
	bind_text(st, 2, y->tree);
	bind_id(st, 3, y->base_sync_id);
	sqlite3_bind_int64(st, 4, y->counts.added);
	sqlite3_bind_int64(st, 5, y->counts.modified);
	sqlite3_bind_int64(st, 6, y->counts.deleted);
	sqlite3_bind_int64(st, 7, y->counts.renamed);
	sqlite3_bind_int64(st, 8, y->counts.files);
	sqlite3_bind_int64(st, 9, y->bytes);
	sqlite3_bind_int64(st, 10, y->requests);
	sqlite3_bind_int(st, 11, y->up_to_date);
	sqlite3_bind_int64(st, 12, y->skipped_large);
	sqlite3_bind_int64(st, 13, y->finished_at);
	sqlite3_bind_int64(st, 14, y->id);
	if ((rc = step_done(s, st, "finish sync")) < 0)
		goto fail;
	if (sqlite3_changes(s->db) != 1) {
		rc = ps_error_set(PS_ECONFLICT, "sync_not_running",
				  "sync %lld is no longer running (another process ended it)",
				  (long long)y->id);
		goto fail;
	}
	if (!(st = stmt(s, supersede))) {
		rc = PS_ESTORE;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		/* An added path had no version in the base snapshot: nothing to supersede. */
		if (changes[i].status == PS_CHANGE_ADDED)
			continue;
		const char *paths[2] = { changes[i].path,
					 changes[i].status == PS_CHANGE_RENAMED ? changes[i].previous_path
										 : NULL };
		for (int k = 0; k < 2 && paths[k]; k++) {
			size_t len = strlen(paths[k]), dirlen;
			const char *name;

			ps_sqlite_split_path(paths[k], len, &dirlen, &name);
			sqlite3_bind_int64(st, 1, y->id);
			sqlite3_bind_int64(st, 2, y->project_id);
			sqlite3_bind_text64(st, 3, paths[k], dirlen, SQLITE_STATIC, SQLITE_UTF8);
			bind_text(st, 4, name);
			if ((rc = step_done(s, st, "supersede file versions")) < 0)
				goto fail;
		}
	}
	if ((rc = ps_sqlite_memory_finalize(s, y)) < 0 ||
	    (rc = ps_sqlite_trees_finalize(s, y, changes, n)) < 0)
		goto fail;
	if (!(st = stmt(s, proj))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, y->id);
	bind_text(st, 2, y->commit);
	sqlite3_bind_int64(st, 3, y->project_id);
	if ((rc = step_done(s, st, "advance project")) < 0)
		goto fail;
	if (!(st = stmt(s, blobs_rescanned))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, y->id);
	sqlite3_bind_int64(st, 2, y->project_id);
	if ((rc = step_done(s, st, "finish blob rescan")) < 0)
		goto fail;
	y->status = PS_SYNC_SUCCEEDED;
	if (final_event && (rc = ps_store_event_append(s, final_event)) < 0)
		goto fail;
	return ps_store_commit(s);
fail:
	ps_store_rollback(s);
	return rc;
}

/* store.c fold_checks: returns 1 when `y` took the place of its predecessor, 0 when that one
 * is not an up-to-date scheduled check of the same head. Inside the finalize transaction. */
int ps_sqlite_sync_fold(struct ps_store *s, struct ps_sync *y)
{
	static const char find[] =
		"SELECT p.id, p.previous_sync_id, p.base_sync_id, p.checks, "
		"coalesce(p.first_check_at, p.finished_at), p.added, p.modified, p.deleted, "
		"p.renamed "
		"FROM syncs n JOIN syncs p ON p.id = n.previous_sync_id "
		"WHERE n.id = ?1 AND n.status = 'running' AND n.memory_rescan = 0 "
		"AND n.blob_rescan = 0 AND p.status = 'succeeded' AND p.trigger = 'schedule' "
		"AND p.up_to_date = 1 AND p.memory_rescan = 0 AND p.blob_rescan = 0 "
		"AND p.branch = n.branch AND p.commit_sha IS ?2 AND p.tree_sha IS ?3 "
		"AND NOT EXISTS (SELECT 1 FROM events e WHERE e.sync_id = p.id "
		"AND e.kind = 'warning')";
	static const char del_events[] = "DELETE FROM events WHERE sync_id = ?";
	static const char del_sync[] = "DELETE FROM syncs WHERE id = ?";
	/* After the delete: previous_sync_id is UNIQUE, and the older row held this value. */
	static const char relink[] =
		"UPDATE syncs SET previous_sync_id = ?2, base_sync_id = ?3, checks = ?4, "
		"first_check_at = ?5 WHERE id = ?1";
	/* A check normally owns no rows, but one that became the chain's start by a prune owns
	 * the start's whole snapshot (prune rebases it there): the new row takes them over, or
	 * they would name a sync that is gone, which VISIBLE_AT hides and the next prune
	 * deletes as a failed sync's leftovers. No sync lies between the two, so moving the
	 * rows changes no snapshot. */
	static const char *const move[] = {
		"UPDATE file_versions SET introduced_by = ?2 WHERE introduced_by = ?1",
		"UPDATE file_versions SET superseded_by = ?2 WHERE project_id = ?3 "
		"AND superseded_by = ?1",
		"UPDATE dir_trees SET introduced_by = ?2 WHERE introduced_by = ?1",
		"UPDATE dir_trees SET superseded_by = ?2 WHERE project_id = ?3 "
		"AND superseded_by = ?1",
	};
	sqlite3_stmt *st = stmt(s, find);
	int64_t old, prev, base, checks, first;
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, y->id);
	bind_text(st, 2, y->commit);
	bind_text(st, 3, y->tree);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : db_error(s, "find the check to fold");
	}
	old = sqlite3_column_int64(st, 0);
	prev = sqlite3_column_int64(st, 1);
	base = sqlite3_column_int64(st, 2);
	checks = sqlite3_column_int64(st, 3);
	first = sqlite3_column_int64(st, 4);
	if (!prev) {
		/* The start a prune made, with its whole snapshot: so are its counts, and the new
		 * row takes both (store.c fold_checks). */
		y->counts.added = sqlite3_column_int64(st, 5);
		y->counts.modified = sqlite3_column_int64(st, 6);
		y->counts.deleted = sqlite3_column_int64(st, 7);
		y->counts.renamed = sqlite3_column_int64(st, 8);
	}
	sqlite3_reset(st);
	if (!(st = stmt(s, del_events)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, old);
	if ((rc = step_done(s, st, "fold checks")) < 0)
		return rc;
	if (!(st = stmt(s, del_sync)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, old);
	if ((rc = step_done(s, st, "fold checks")) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(move) / sizeof(*move); i++) {
		if (!(st = stmt(s, move[i])))
			return PS_ESTORE;
		sqlite3_bind_int64(st, 1, old);
		sqlite3_bind_int64(st, 2, y->id);
		sqlite3_bind_int64(st, 3, y->project_id);
		if ((rc = step_done(s, st, "fold checks")) < 0)
			return rc;
	}
	if (!(st = stmt(s, relink)))
		return PS_ESTORE;
	y->previous_sync_id = prev;
	y->base_sync_id = base;
	y->checks = (checks > 1 ? checks : 1) + 1;
	y->first_check_at = first;
	sqlite3_bind_int64(st, 1, y->id);
	bind_id(st, 2, prev);
	bind_id(st, 3, base);
	sqlite3_bind_int64(st, 4, y->checks);
	bind_id(st, 5, first);
	if ((rc = step_done(s, st, "fold checks")) < 0)
		return rc;
	return 1;
}

int ps_sqlite_reap(struct ps_store *s, int64_t project_id, int *reaped)
{
	static const char sql[] =
		"SELECT id, owner_host, owner_process, lease_until FROM syncs "
		"WHERE status IN ('queued','running') AND status = 'running' "
		"AND (?1 <= 0 OR project_id = ?1)";
	sqlite3_stmt *st = stmt(s, sql);
	int64_t dead[64];
	size_t ndead = 0;
	int64_t now = ps_now_ms();
	int rc, count = 0;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && ndead < sizeof(dead) / sizeof(*dead)) {
		const char *host = (const char *)sqlite3_column_text(st, 1);
		const char *proc = (const char *)sqlite3_column_text(st, 2);
		int64_t lease = sqlite3_column_int64(st, 3);
		bool gone;

		/* On this host the process table is the truth: a live owner keeps its sync even
		 * past its lease (it may be stopped or blocked), a dead one loses it at once.
		 * Elsewhere only the lease can tell. */
		if (host && proc && strcmp(host, ps_hostname()) == 0)
			gone = !ps_process_alive(proc);
		else
			gone = lease > 0 && lease < now;
		if (gone)
			dead[ndead++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_error(s, "find dead syncs");
	for (size_t i = 0; i < ndead; i++) {
		struct ps_sync *y = NULL;
		if (ps_store_sync_get(s, dead[i], &y) < 0)
			continue;
		rc = ps_store_sync_fail(s, y, PS_SYNC_FAILED, "interrupted",
					"interrupted: the process running this sync stopped before it "
					"finished", NULL);
		ps_sync_free(y);
		if (rc == 0)
			count++;
		else if (rc != PS_ECONFLICT) /* someone else reaped it first: fine */
			return rc;
	}
	if (reaped)
		*reaped = count;
	return 0;
}

int ps_sqlite_sync_next_queued(struct ps_store *s, int64_t *id)
{
	/* The IN term is the partial index's own WHERE, word for word: SQLite uses a partial
	 * index only for a query that repeats it, and without it both queries scanned every
	 * sync, several times per scheduled check (docs/performance.md). */
	static const char sql[] =
		"SELECT min(id) FROM syncs WHERE status IN ('queued','running') AND status = 'queued'";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s, "find queued sync");
	return ps_error_set(PS_ENOTFOUND, "none_queued", "no sync is queued");
}

int ps_sqlite_sync_count_by_status(struct ps_store *s, int64_t counts[PS_SYNC_CANCELLED + 1])
{
	static const char sql[] = "SELECT status, count(*) FROM syncs GROUP BY status";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	for (int i = 0; i <= PS_SYNC_CANCELLED; i++)
		counts[i] = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		enum ps_sync_status status;
		if (ps_sync_status_parse((const char *)sqlite3_column_text(st, 0), &status) == 0)
			counts[status] = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_error(s, "count syncs");
}

/* ---- events ---- */

void ps_stored_events_free(struct ps_stored_event *evs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(evs[i].json);
	free(evs);
}

int ps_sqlite_event_append(struct ps_store *s, const struct ps_event *ev)
{
	static const char sql[] = "INSERT INTO events (sync_id, seq, kind, payload) VALUES (?, ?, ?, ?)";
	sqlite3_stmt *st = stmt(s, sql);
	json_t *j;
	char *text;
	int rc;

	if (!st)
		return PS_ESTORE;
	j = ps_event_to_json(ev);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	sqlite3_bind_int64(st, 1, ev->sync_id);
	sqlite3_bind_int64(st, 2, ev->seq);
	bind_text(st, 3, ps_event_kind_name(ev->kind));
	bind_text(st, 4, text);
	free(text);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT)
		return ps_error_set(PS_ECONFLICT, "event_exists", "event %lld of sync %lld exists",
				    (long long)ev->seq, (long long)ev->sync_id);
	return rc == SQLITE_DONE ? 0 : db_error(s, "store event");
}

int ps_sqlite_event_list(struct ps_store *s, int64_t sync_id, int64_t after_seq, int64_t limit,
			struct ps_stored_event **out, size_t *n)
{
	static const char sql[] = "SELECT seq, kind, payload FROM events WHERE sync_id = ? "
				  "AND seq > ? ORDER BY seq LIMIT ?";
	sqlite3_stmt *st = stmt(s, sql);
	struct ps_stored_event *v = NULL;
	size_t count = 0, cap = 0;
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, sync_id);
	sqlite3_bind_int64(st, 2, after_seq);
	sqlite3_bind_int64(st, 3, limit > 0 ? limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			v = ps_realloc(v, cap * sizeof(*v));
		}
		v[count].seq = sqlite3_column_int64(st, 0);
		v[count].kind = PS_EVENT_PROGRESS;
		for (int k = PS_EVENT_QUEUED; k <= PS_EVENT_CANCELLED; k++)
			if (kind && strcmp(kind, ps_event_kind_name((enum ps_event_kind)k)) == 0)
				v[count].kind = (enum ps_event_kind)k;
		v[count].json = col_text(st, 2);
		count++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ps_stored_events_free(v, count);
		return db_error(s, "list events");
	}
	*out = v;
	*n = count;
	return 0;
}

/* ---- file versions ---- */

int ps_sqlite_files_stage(struct ps_store *s, const struct ps_sync *y,
			 const struct ps_change *changes, size_t n)
{
	static const char sql[] =
		"INSERT INTO file_versions (project_id, dir_id, name, mode, sha, size, introduced_by) "
		"VALUES (?, ?, ?, ?, ps_unhex(?), ?, ?)";
	sqlite3_stmt *st;
	/* The last directory looked up: a sync's paths come in order, so runs share it. */
	char *last_dir = NULL;
	size_t last_len = 0;
	int64_t dir_id = 0;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if (!(st = stmt(s, sql))) {
		ps_store_rollback(s);
		return PS_ESTORE;
	}
	for (size_t i = 0; i < n; i++) {
		const struct ps_change *c = &changes[i];
		size_t dirlen;
		const char *name;

		if (c->status == PS_CHANGE_DELETED)
			continue;
		ps_sqlite_split_path(c->path, strlen(c->path), &dirlen, &name);
		if (!last_dir || last_len != dirlen || memcmp(last_dir, c->path, dirlen) != 0) {
			/* Looked up with its own statement: `st` is bound again below. */
			if ((rc = ps_sqlite_dir_id(s, y->project_id, c->path, dirlen, true,
						   &dir_id)) < 0)
				goto fail;
			free(last_dir);
			last_dir = ps_strndup(c->path, dirlen);
			last_len = dirlen;
		}
		sqlite3_bind_int64(st, 1, y->project_id);
		sqlite3_bind_int64(st, 2, dir_id);
		bind_text(st, 3, name);
		sqlite3_bind_int64(st, 4, c->mode);
		bind_text(st, 5, c->sha);
		if (c->size >= 0)
			sqlite3_bind_int64(st, 6, c->size);
		else
			sqlite3_bind_null(st, 6);
		sqlite3_bind_int64(st, 7, y->id);
		if ((rc = step_done(s, st, "stage file versions")) < 0)
			goto fail;
	}
	free(last_dir);
	return ps_store_commit(s);
fail:
	free(last_dir);
	ps_store_rollback(s);
	return rc;
}

/* Resolves `at` (0 = latest) to a succeeded sync of the project. */
static int resolve_snapshot(struct ps_store *s, int64_t project_id, int64_t at, int64_t *out)
{
	struct ps_sync *y = NULL;
	int rc;

	if (at <= 0) {
		rc = ps_store_sync_last_succeeded(s, project_id, 0, &y);
		if (rc == PS_ENOTFOUND)
			return ps_error_set(PS_ENOTFOUND, "no_snapshot",
					    "the project has no succeeded sync yet");
		if (rc < 0)
			return rc;
	} else {
		if ((rc = ps_store_sync_get(s, at, &y)) < 0)
			return rc;
		if (y->project_id != project_id) {
			ps_sync_free(y);
			return ps_error_set(PS_ENOTFOUND, "sync_not_found",
					    "sync %lld does not belong to this project", (long long)at);
		}
		/* 409 not_succeeded, as everywhere a sync that did not succeed is used as a
		 * snapshot (docs/cli.md): code search, which relies on this check, said 404. */
		if (y->status != PS_SYNC_SUCCEEDED) {
			rc = ps_error_set(PS_ECONFLICT, "not_succeeded", "sync %lld is %s: only a "
					  "succeeded sync has a snapshot", (long long)at,
					  ps_sync_status_name(y->status));
			ps_sync_free(y);
			return rc;
		}
	}
	*out = y->id;
	ps_sync_free(y);
	return 0;
}

int ps_sqlite_resolve_snapshot(struct ps_store *s, int64_t project_id, int64_t at, int64_t *out)
{
	return resolve_snapshot(s, project_id, at, out);
}

#define VISIBLE_AT(at) \
	"fv.introduced_by <= " at " AND (fv.superseded_by IS NULL OR fv.superseded_by > " at ") " \
	"AND EXISTS (SELECT 1 FROM syncs i WHERE i.id = fv.introduced_by AND i.status = 'succeeded')"

/* A file version's columns as file_from_row reads them, its full path first (sorting by
 * column 1 is full-path byte order); `d` is its dirs row. */
#define FILE_COLS \
	"SELECT " PS_SQLITE_FULL_PATH("d", "fv.name") ", fv.mode, ps_hex(fv.sha), fv.size "
/* A project's file versions, directory by directory: the project's range of dirs' unique
 * index, then each directory's range of file_versions_path. */
#define PROJECT_FILES "FROM dirs d JOIN file_versions fv ON fv.dir_id = d.id WHERE d.project_id = ?1 "

static void file_from_row(sqlite3_stmt *st, struct ps_file *f)
{
	const unsigned char *sha = sqlite3_column_text(st, 2);

	f->path = (char *)sqlite3_column_text(st, 0);
	f->mode = (uint32_t)sqlite3_column_int64(st, 1);
	snprintf(f->sha, sizeof(f->sha), "%s", sha ? (const char *)sha : "");
	f->size = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
}

struct walk_page {
	ps_file_cb cb;
	void *ud;
	int64_t left; /* files still wanted, -1: all */
};

enum { PAGE_DONE = 1 << 21 }; /* not a callback's value: the page is full */

static int page_file(void *ud, const struct ps_file *f, int state)
{
	struct walk_page *pg = ud;
	int rc;

	(void)state;
	if (pg->left == 0)
		return PAGE_DONE;
	if ((rc = pg->cb(pg->ud, f)) != 0)
		return rc;
	if (pg->left > 0)
		pg->left--;
	return 0;
}

int ps_sqlite_snapshot_page(struct ps_store *s, int64_t project_id, int64_t at,
			    const char *prefix, const char *after, int64_t limit, ps_file_cb cb,
			    void *ud)
{
	/* Walked in full-path order (ps_sqlite_walk), from `after` on: a page costs about what
	 * it lists and the directories on the way, neither a sort of the snapshot nor a read of
	 * what lies before `after` (docs/performance.md, "Schema 26"). A prefix is the range
	 * [prefix, the prefix's successor) of the same walk. */
	static const char dir_files[] =
		"SELECT fv.name, fv.mode, ps_hex(fv.sha), fv.size FROM dirs d "
		"JOIN file_versions fv ON fv.dir_id = d.id WHERE d.project_id = ?1 AND d.path = ?2 "
		"AND fv.name >= ?4 AND " VISIBLE_AT("?3") " ORDER BY fv.name LIMIT ?5";
	struct walk_page pg = { cb, ud, limit > 0 ? limit : -1 };
	struct ps_sqlite_walk w = { .project_id = project_id, .files_sql = dir_files,
				    .cb = page_file, .ud = &pg };
	char *lower = NULL, *upper = NULL;
	int64_t snap;
	int rc;

	if ((rc = resolve_snapshot(s, project_id, at, &snap)) < 0)
		return rc;
	w.at = snap;
	if (prefix && *prefix) {
		w.upper = upper = ps_prefix_end(prefix, strlen(prefix));
		w.lower = prefix;
	}
	if (after) {
		/* Paths after `after` are those at or after after + "\x01": no path holds a NUL. */
		lower = ps_asprintf("%s\x01", after);
		if (!w.lower || strcmp(lower, w.lower) > 0)
			w.lower = lower;
	}
	rc = ps_sqlite_walk(s, &w);
	free(lower);
	free(upper);
	return rc == PAGE_DONE ? 0 : rc;
}

/* ---- the ordered walk (schema 26) ---- */

struct walk_row {
	char *name;
	size_t len;
	uint32_t mode;
	char sha[PS_SHA_HEX];
	int64_t size;
	int state;
};

struct walk_child {
	char *key; /* the child's path and its '/': where its subtree sorts */
	size_t len;
};

static int cmp_child(const void *a, const void *b)
{
	const struct walk_child *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Byte order of a (`alen` bytes) and b (NUL-terminated). */
static int cmp_bytes(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b), n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);

	return c ? c : (alen > blen) - (alen < blen);
}

enum { WALK_PAST_UPPER = 1 << 20 }; /* not a callback's value: the walk is done */

/* Rows of a directory read at a time: a page reads a few batches, a flat directory of 100,000
 * files is not read whole for one of them. */
enum { WALK_BATCH_FIRST = 256, WALK_BATCH_MAX = 4096 };

static void walk_rows_free(struct walk_row *rows, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(rows[k].name);
}

/* Up to `max` of the directory's rows from name `from` on (inclusive) into rows (replacing
 * what it held); *full: there may be more. */
static int walk_read(struct ps_store *s, const struct ps_sqlite_walk *w, const char *dir,
		     size_t dlen, const char *from, size_t fromlen, size_t max,
		     struct walk_row **rows, size_t *nrows, size_t *cap, bool *full)
{
	sqlite3_stmt *st = stmt(s, w->files_sql);
	size_t stepped = 0;
	int rc, six;

	walk_rows_free(*rows, *nrows);
	*nrows = 0;
	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, w->project_id);
	sqlite3_bind_text64(st, 2, dir, dlen, SQLITE_STATIC, SQLITE_UTF8);
	sqlite3_bind_int64(st, 3, w->at);
	sqlite3_bind_text64(st, 4, from, fromlen, SQLITE_STATIC, SQLITE_UTF8);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)max);
	if (w->bind)
		w->bind(st, w->ud);
	six = sqlite3_column_count(st) >= 6;
	/* Read whole before going down: the statement is the same one at every depth. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct walk_row *r;
		const unsigned char *sha = sqlite3_column_text(st, 2);

		stepped++;
		if (!sqlite3_column_text(st, 0))
			continue;
		if (*nrows == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			*rows = ps_realloc(*rows, *cap * sizeof(**rows));
		}
		r = &(*rows)[(*nrows)++];
		r->len = (size_t)sqlite3_column_bytes(st, 0);
		r->name = ps_strndup((const char *)sqlite3_column_text(st, 0), r->len);
		r->mode = (uint32_t)sqlite3_column_int64(st, 1);
		if (sha && sqlite3_column_bytes(st, 2) == PS_SHA_HEX - 1)
			memcpy(r->sha, sha, PS_SHA_HEX);
		else
			snprintf(r->sha, sizeof(r->sha), "%s", sha ? (const char *)sha : "");
		r->size = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
		r->state = !six || sqlite3_column_type(st, 4) == SQLITE_NULL ? 0
			   : sqlite3_column_int(st, 5)                      ? 2
									    : 1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st); /* a bound pointer must not outlive the call */
	if (rc != SQLITE_DONE)
		return db_error(s, "walk snapshot");
	/* Only a short batch is the last. */
	*full = stepped >= max && *nrows > 0;
	return 0;
}

static int walk_dir(struct ps_store *s, const struct ps_sqlite_walk *w, const char *dir)
{
	struct walk_row *rows = NULL;
	struct walk_child *kids = NULL;
	struct ps_strv children = { 0 };
	size_t nrows = 0, cap = 0, dlen = strlen(dir), plen = dlen ? dlen + 1 : 0, i = 0, j = 0;
	size_t batch = WALK_BATCH_FIRST, fromlen = 0;
	const char *from = "";
	char *next = NULL, *start = NULL;
	struct ps_buf path;
	bool full = false;
	int rc;

	/*
	 * The seek: when the lower bound L lies in this directory (it starts with "D/"), its
	 * rows are read from L's rest R on (a name >= R is a path >= L), and its children from
	 * R's first bytes up to the first one at or below '/': a child C is needed when C + "/"
	 * can hold a path >= L, that is C >= R's first component, or C a prefix of it followed
	 * by a byte below '/' (C = "a" for R = "a-b/x": "a/..." sorts after "a-b/x"); every one
	 * of them is at or after that start. A lower bound before "D/" leaves the whole
	 * directory (the walk enters no directory wholly before it).
	 */
	if (w->lower && strncmp(w->lower, dir, dlen) == 0 && (!dlen || w->lower[dlen] == '/')) {
		size_t k = 0;

		from = w->lower + plen;
		fromlen = strlen(from);
		while (k < fromlen && (unsigned char)from[k] > '/')
			k++;
		start = ps_strndup(from, k);
	}
	if ((rc = walk_read(s, w, dir, dlen, from, fromlen, batch, &rows, &nrows, &cap, &full)) < 0)
		goto out;
	if ((rc = ps_sqlite_child_dirs_range(s, w->project_id, dir, start, w->upper,
					     &children)) < 0)
		goto out;
	kids = ps_calloc(children.n ? children.n : 1, sizeof(*kids));
	for (size_t k = 0; k < children.n; k++) {
		kids[k].key = ps_asprintf("%s/", children.v[k]);
		kids[k].len = strlen(kids[k].key);
	}
	qsort(kids, children.n, sizeof(*kids), cmp_child);
	/* The directory's prefix once; each file's name goes after it. */
	ps_buf_init(&path, SIZE_MAX);
	if (dlen)
		ps_buf_printf(&path, "%s/", dir);
	rc = 0;
	while (rc == 0) {
		if (i == nrows && full) {
			/* The next batch: from just after the last name (no name holds a NUL, so
			 * none sorts between it and it + "\x01"). */
			free(next);
			next = ps_asprintf("%s\x01", rows[nrows - 1].name);
			if (batch < WALK_BATCH_MAX)
				batch *= 2;
			i = 0;
			rc = walk_read(s, w, dir, dlen, next, strlen(next), batch, &rows, &nrows, &cap,
				       &full);
			if (rc < 0)
				break;
		}
		if (i == nrows && j == children.n)
			break;
		path.len = plen;
		if (i < nrows)
			ps_buf_append(&path, rows[i].name, rows[i].len);
		if (i < nrows && (j == children.n || cmp_bytes(path.data, path.len, kids[j].key) < 0)) {
			struct ps_file f = { .path = path.data, .mode = rows[i].mode,
					     .size = rows[i].size };

			i++;
			if (w->upper && cmp_bytes(path.data, path.len, w->upper) >= 0)
				rc = WALK_PAST_UPPER;
			else if (!w->lower || cmp_bytes(path.data, path.len, w->lower) >= 0) {
				memcpy(f.sha, rows[i - 1].sha, sizeof(f.sha));
				rc = w->cb(w->ud, &f, rows[i - 1].state);
			}
			continue;
		}
		/* The child's subtree: [C/, C0). */
		{
			struct walk_child *c = &kids[j++];

			if (w->upper && cmp_bytes(c->key, c->len, w->upper) >= 0) {
				rc = WALK_PAST_UPPER;
				break;
			}
			c->key[c->len - 1] = '0';
			if (w->lower && cmp_bytes(c->key, c->len, w->lower) <= 0)
				continue; /* all of it before the lower bound */
			c->key[c->len - 1] = '\0';
			rc = walk_dir(s, w, c->key);
		}
	}
	ps_buf_dispose(&path);
out:
	walk_rows_free(rows, nrows);
	free(rows);
	for (size_t k = 0; kids && k < children.n; k++)
		free(kids[k].key);
	free(kids);
	ps_strv_dispose(&children);
	free(next);
	free(start);
	return rc;
}

int ps_sqlite_walk(struct ps_store *s, const struct ps_sqlite_walk *w)
{
	int rc = walk_dir(s, w, "");

	return rc == WALK_PAST_UPPER ? 0 : rc;
}

int ps_sqlite_snapshot_missing_blobs(struct ps_store *s, int64_t project_id, int64_t at,
				    int64_t max_size, ps_file_cb cb, void *ud)
{
	static const char sql[] =
		FILE_COLS PROJECT_FILES "AND " VISIBLE_AT("?2") " "
		"AND fv.mode != 57344 AND fv.size >= 0 AND fv.size <= ?3 "
		"AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha) "
		"ORDER BY 1";
	sqlite3_stmt *st;
	int64_t snap;
	int rc;

	if ((rc = resolve_snapshot(s, project_id, at, &snap)) < 0)
		return rc;
	if (!(st = stmt(s, sql)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, snap);
	sqlite3_bind_int64(st, 3, max_size);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ps_file f;
		int stop;

		file_from_row(st, &f);
		if ((stop = cb(ud, &f)) != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_error(s, "list missing blobs");
}

int ps_sqlite_project_blob_rescan(struct ps_store *s, int64_t project_id, int64_t *generation)
{
	static const char sql[] = "SELECT blob_rescan FROM projects WHERE id = ?";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*generation = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)project_id);
	return rc == SQLITE_ROW ? 0 : db_error(s, "read blob rescan");
}

int ps_sqlite_sync_blob_rescan(struct ps_store *s, int64_t sync_id, int64_t generation)
{
	static const char sql[] = "UPDATE syncs SET blob_rescan = ? WHERE id = ?";
	sqlite3_stmt *st = stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, generation);
	sqlite3_bind_int64(st, 2, sync_id);
	return step_done(s, st, "record blob rescan");
}

int ps_sqlite_snapshot_file(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			   struct ps_file *out)
{
	static const char sql[] =
		FILE_COLS PROJECT_FILES "AND d.path = ?3 AND fv.name = ?4 AND " VISIBLE_AT("?2");
	sqlite3_stmt *st;
	const char *name;
	size_t dirlen;
	int64_t snap;
	int rc;

	if ((rc = resolve_snapshot(s, project_id, at, &snap)) < 0)
		return rc;
	if (!(st = stmt(s, sql)))
		return PS_ESTORE;
	ps_sqlite_split_path(path, strlen(path), &dirlen, &name);
	sqlite3_bind_int64(st, 1, project_id);
	sqlite3_bind_int64(st, 2, snap);
	sqlite3_bind_text64(st, 3, path, dirlen, SQLITE_STATIC, SQLITE_UTF8);
	bind_text(st, 4, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		file_from_row(st, out);
		out->path = ps_strdup(out->path);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return ps_error_set(PS_ENOTFOUND, "path_not_found", "'%s' is not in the snapshot of sync %lld",
				    path, (long long)snap);
	return db_error(s, "read file");
}

struct file_list {
	struct ps_file *v;
	size_t n, cap;
};

static int collect_files(struct ps_store *s, sqlite3_stmt *st, struct file_list *out)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ps_file f;
		file_from_row(st, &f);
		f.path = ps_strdup(f.path);
		if (out->n == out->cap) {
			out->cap = out->cap ? out->cap * 2 : 64;
			out->v = ps_realloc(out->v, out->cap * sizeof(*out->v));
		}
		out->v[out->n++] = f;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_error(s, "diff snapshots");
}

int ps_sqlite_diff(struct ps_store *s, int64_t project_id, int64_t a, int64_t b,
		  struct ps_change **out, size_t *n)
{
	/* Rows visible at a but not at b, and at b but not at a (a < b): their ids lie in (a, b],
	 * so the cost follows what changed, not the snapshot size. */
	static const char old_sql[] =
		FILE_COLS "FROM file_versions fv JOIN dirs d ON d.id = fv.dir_id "
		"WHERE fv.project_id = ?1 AND fv.superseded_by > ?2 AND fv.superseded_by <= ?3 AND "
		VISIBLE_AT("?2") " ORDER BY 1";
	/* "+fv.project_id": the planner would otherwise walk the project's rows of
	 * file_versions_superseded rather than the range of file_versions_introduced. */
	static const char new_sql[] =
		FILE_COLS "FROM file_versions fv JOIN dirs d ON d.id = fv.dir_id "
		"WHERE +fv.project_id = ?1 AND fv.introduced_by > ?2 AND fv.introduced_by <= ?3 AND "
		VISIBLE_AT("?3") " ORDER BY 1";
	struct file_list olds = { 0 }, news = { 0 };
	bool swap = false;
	int64_t snap;
	int rc;

	if (a > 0 && (rc = resolve_snapshot(s, project_id, a, &snap)) < 0)
		return rc;
	if (b > 0 && (rc = resolve_snapshot(s, project_id, b, &snap)) < 0)
		return rc;
	if (a > b) {
		int64_t t = a;
		a = b;
		b = t;
		swap = true;
	}
	if (a < 0)
		a = 0;
	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *st = stmt(s, k == 0 ? old_sql : new_sql);
		if (!st) {
			rc = PS_ESTORE;
			goto out;
		}
		sqlite3_bind_int64(st, 1, project_id);
		sqlite3_bind_int64(st, 2, a);
		sqlite3_bind_int64(st, 3, b);
		if ((rc = collect_files(s, st, k == 0 ? &olds : &news)) < 0)
			goto out;
	}
	rc = swap ? ps_diff_files(news.v, news.n, olds.v, olds.n, out, n)
		  : ps_diff_files(olds.v, olds.n, news.v, news.n, out, n);
out:
	for (size_t i = 0; i < olds.n; i++)
		free(olds.v[i].path);
	for (size_t i = 0; i < news.n; i++)
		free(news.v[i].path);
	free(olds.v);
	free(news.v);
	return rc;
}

/* ---- blobs ---- */

struct ps_blobcodec *ps_sqlite_blobcodec(struct ps_store *s)
{
	return s->codec;
}

/* Binds encoding, base, pack, pack_offset and content from ?i on: pack and pack_offset are NULL
 * but for a packed row (schema 27), which is all the partial index blobs_pack holds. */
static void bind_row(sqlite3_stmt *st, int i, const struct ps_blob_row *row)
{
	bool packed = row->encoding == PS_BLOB_PACKED;

	sqlite3_bind_int(st, i, row->encoding);
	bind_text(st, i + 1, row->base[0] ? row->base : NULL);
	if (packed && row->pack) {
		sqlite3_bind_int64(st, i + 2, (sqlite3_int64)row->pack);
		sqlite3_bind_int64(st, i + 3, (sqlite3_int64)row->pack_offset);
	} else {
		sqlite3_bind_null(st, i + 2);
		sqlite3_bind_null(st, i + 3);
	}
	sqlite3_bind_blob64(st, i + 4, row->len ? row->content : "", row->len, SQLITE_STATIC);
}

int ps_sqlite_blob_row_put(struct ps_store *s, const char *sha, const struct ps_blob_row *row)
{
	static const char sql[] = "INSERT OR IGNORE INTO blobs (sha, size, encoding, base, pack, "
				  "pack_offset, content) "
				  "VALUES (ps_unhex(?), ?, ?, ps_unhex(?), ?, ?, ?)";
	sqlite3_stmt *st;
	int rc;
	bool have = false;

	/* Storing again is a no-op (INSERT OR IGNORE). The pipeline fetches only blobs the store
	 * lacks (ps_store_blob_have), so a look-up here would cost every new blob a query to spare
	 * a rare repeat one compression. A row written before schema 10, still in blobs_raw, is not duplicated. */
	if (ps_sqlite_blobs_raw_left(s)) {
		if ((rc = ps_sqlite_blob_have(s, &sha, 1, &have)) < 0)
			return rc;
		if (have)
			return 0;
	}
	st = stmt(s, sql);
	if (!st)
		return PS_ESTORE;
	bind_text(st, 1, sha);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)row->size);
	bind_row(st, 3, row);
	return step_done(s, st, "store blob");
}

int ps_sqlite_blob_row_replace(struct ps_store *s, const char *sha, const struct ps_blob_row *row)
{
	static const char sql[] = "UPDATE blobs SET encoding = ?, base = ps_unhex(?), pack = ?, "
				  "pack_offset = ?, content = ? WHERE sha = ps_unhex(?)";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	bind_row(st, 1, row);
	bind_text(st, 6, sha);
	if ((rc = step_done(s, st, "rewrite blob")) < 0)
		return rc;
	if (sqlite3_changes(s->db) != 1)
		return ps_error_set(PS_ENOTFOUND, "blob_not_stored", "blob %s is not stored", sha);
	return 0;
}

int ps_sqlite_blob_row_get(struct ps_store *s, const char *sha, struct ps_blob_row *out)
{
	static const char sql[] = "SELECT encoding, size, ps_hex(base), content, 0, pack, "
				  "pack_offset FROM blobs WHERE sha = ps_unhex(?)";
	/* Rows written before schema 10 that the conversion has not moved yet (sqlite_blobs.c). */
	static const char raw_sql[] = "SELECT 0, size, NULL, content, 1, NULL, NULL FROM blobs_raw "
				      "WHERE sha = ?";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	bind_text(st, 1, sha);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE && ps_sqlite_blobs_raw_left(s)) {
		sqlite3_reset(st);
		if (!(st = stmt(s, raw_sql)))
			return PS_ESTORE;
		bind_text(st, 1, sha);
		rc = sqlite3_step(st);
		/* Dropped by a conversion that finished meanwhile: the row is in blobs now. */
		if (rc != SQLITE_ROW && !ps_sqlite_blobs_raw_left(s)) {
			sqlite3_reset(st);
			return ps_sqlite_blob_row_get(s, sha, out);
		}
	}
	if (rc == SQLITE_ROW) {
		const unsigned char *base = sqlite3_column_text(st, 2);
		size_t n = (size_t)sqlite3_column_bytes(st, 3);

		memset(out, 0, sizeof(*out));
		out->encoding = sqlite3_column_int(st, 0);
		out->size = sqlite3_column_int64(st, 1);
		if (base && strlen((const char *)base) < PS_SHA_HEX)
			strcpy(out->base, (const char *)base);
		else if (base)
			strcpy(out->base, "?"); /* not a SHA: the decoder reports it missing */
		out->content = ps_malloc(n + 1);
		if (n)
			memcpy(out->content, sqlite3_column_blob(st, 3), n);
		out->len = n;
		out->unconverted = sqlite3_column_int(st, 4) != 0;
		/* NULL (0) but for a packed row: the reader then reports the pack missing. */
		out->pack = sqlite3_column_int64(st, 5);
		out->pack_offset = sqlite3_column_int64(st, 6);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return ps_error_set(PS_ENOTFOUND, "blob_not_stored", "blob %s is not stored", sha);
	return db_error(s, "read blob");
}

int ps_sqlite_blob_have(struct ps_store *s, const char *const *shas, size_t n, bool *have)
{
	static const char sql[] = "SELECT 1 FROM blobs WHERE sha = ps_unhex(?)";
	/* Until the schema-10 conversion finished, a blob may still be in blobs_raw. */
	static const char raw_sql[] = "SELECT 1 FROM blobs WHERE sha = ps_unhex(?1) UNION ALL "
				      "SELECT 1 FROM blobs_raw WHERE sha = ?1";
	bool raw_left = ps_sqlite_blobs_raw_left(s);
	sqlite3_stmt *st = stmt(s, raw_left ? raw_sql : sql);

	if (!st)
		return PS_ESTORE;
	for (size_t i = 0; i < n; i++) {
		int rc;
		sqlite3_reset(st);
		bind_text(st, 1, shas[i]);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			sqlite3_reset(st);
			return db_error(s, "look up blobs");
		}
		have[i] = rc == SQLITE_ROW;
	}
	sqlite3_reset(st);
	return 0;
}

/* ---- webhook deliveries ---- */

int ps_sqlite_webhook_delivery_add(struct ps_store *s, const char *delivery_id, const char *event)
{
	static const char sql[] = "INSERT INTO webhook_deliveries (id, event, received_at) "
				  "VALUES (?, ?, ?)";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	bind_text(st, 1, delivery_id);
	bind_text(st, 2, event);
	sqlite3_bind_int64(st, 3, ps_now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_CONSTRAINT)
		return ps_error_set(PS_ECONFLICT, "duplicate_delivery",
				    "webhook delivery %s was received before", delivery_id);
	return rc == SQLITE_DONE ? 0 : db_error(s, "record webhook delivery");
}

/* ---- schedule and retention ---- */

int ps_sqlite_project_schedule_save(struct ps_store *s, const struct ps_project *p)
{
	static const char sql[] =
		"UPDATE projects SET interval_ms = ?, next_sync_at = ?, last_check_at = ?, state = ?, "
		"paused_at = ?, paused_reason = ?, failures_in_row = ? WHERE id = ?";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, p->interval_ms);
	bind_id(st, 2, p->next_sync_at);
	bind_id(st, 3, p->last_check_at);
	bind_text(st, 4, p->paused ? "paused" : "active");
	bind_id(st, 5, p->paused ? p->paused_at : 0);
	bind_text(st, 6, p->paused ? p->paused_reason : NULL);
	sqlite3_bind_int64(st, 7, p->failures_in_row);
	sqlite3_bind_int64(st, 8, p->id);
	if ((rc = step_done(s, st, "save schedule")) < 0)
		return rc;
	if (sqlite3_changes(s->db) == 0)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)p->id);
	return 0;
}

int ps_sqlite_schedule_pending(struct ps_store *s, int64_t now, int64_t default_max_failures,
			       bool *pending)
{
	/* The conditions of schedule_claim's pause and pick; the pick is served by the partial
	 * index projects_due. */
	static const char sql[] =
		"SELECT EXISTS (SELECT 1 FROM projects WHERE state = 'active' AND next_sync_at IS NOT "
		"NULL AND next_sync_at <= ?1) OR EXISTS (SELECT 1 FROM projects WHERE state = 'active' "
		"AND (every_ms > 0 OR every_auto != 0) AND failures_in_row > 0 AND failures_in_row >= "
		"CASE WHEN max_failures > 0 THEN max_failures ELSE ?2 END)";
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, default_max_failures > 0 ? default_max_failures
							  : PS_SCHEDULE_MAX_FAILURES);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*pending = sqlite3_column_int64(st, 0) != 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : db_error(s, "look for due projects");
}

int ps_sqlite_schedule_claim(struct ps_store *s, int64_t now, int64_t default_max_failures,
			     int64_t *project_id)
{
	/* A project that failed too often stops being scheduled: paused, with the reason. */
	static const char pause[] =
		"UPDATE projects SET state = 'paused', paused_at = ?1, paused_reason = "
		"'failed ' || failures_in_row || ' times in a row' || "
		"coalesce(': ' || last_error_message, '') "
		"WHERE state = 'active' AND (every_ms > 0 OR every_auto != 0) AND failures_in_row > 0 "
		"AND failures_in_row >= "
		"CASE WHEN max_failures > 0 THEN max_failures ELSE ?2 END";
	static const char pick[] =
		"SELECT id, next_sync_at FROM projects WHERE state = 'active' "
		"AND next_sync_at IS NOT NULL AND next_sync_at <= ? ORDER BY next_sync_at, id LIMIT 1";
	/* Guarded: only the writer that still sees it due moves it. The sync's end sets the real
	 * next time; this one holds if no sync can be queued (one is already running). */
	static const char take[] =
		"UPDATE projects SET next_sync_at = ?1 + max(interval_ms, 10000) "
		"WHERE id = ?2 AND next_sync_at = ?3 AND state = 'active'";
	sqlite3_stmt *st;
	int64_t id = 0, due = 0;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if (!(st = stmt(s, pause))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, default_max_failures > 0 ? default_max_failures
							  : PS_SCHEDULE_MAX_FAILURES);
	if ((rc = step_done(s, st, "pause failing projects")) < 0)
		goto fail;
	if (!(st = stmt(s, pick))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		due = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = db_error(s, "find a due project");
		goto fail;
	}
	if (!id) {
		if ((rc = ps_store_commit(s)) < 0)
			return rc;
		return ps_error_set(PS_ENOTFOUND, "none_due", "no project is due");
	}
	if (!(st = stmt(s, take))) {
		rc = PS_ESTORE;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, id);
	sqlite3_bind_int64(st, 3, due);
	if ((rc = step_done(s, st, "take a due project")) < 0)
		goto fail;
	if (sqlite3_changes(s->db) != 1) {
		rc = ps_error_set(PS_ECONFLICT, "not_due", "project %lld is no longer due",
				  (long long)id);
		goto fail;
	}
	*project_id = id;
	return ps_store_commit(s);
fail:
	ps_store_rollback(s);
	return rc;
}

/* One number from a statement with up to two parameters (extra binds are ignored). */
static int64_t scalar(struct ps_store *s, const char *sql, int64_t a, int64_t b, int *rc)
{
	sqlite3_stmt *st = stmt(s, sql);
	int64_t v = 0;
	int r;

	if (!st) {
		*rc = PS_ESTORE;
		return 0;
	}
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		*rc = db_error(s, "prune");
	return v;
}

static int run2(struct ps_store *s, const char *sql, int64_t a, int64_t b, int64_t *changed)
{
	sqlite3_stmt *st = stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	if ((rc = step_done(s, st, "prune")) < 0)
		return rc;
	if (changed)
		*changed += sqlite3_changes(s->db);
	return 0;
}

int ps_sqlite_prune_syncs(struct ps_store *s, int64_t project_id, int64_t start,
			  struct ps_prune_stats *out)
{
	static const char count_syncs[] =
		"SELECT count(*) FROM syncs WHERE project_id = ?1 AND id < ?2";
	static const char check_start[] =
		"SELECT count(*) FROM syncs WHERE project_id = ?1 AND id = ?2 AND status = 'succeeded'";
	/* Rows a sync that did not succeed left (purged at the next start, but not yet): they
	 * must not become visible below. */
	static const char del_unsucceeded[] =
		"DELETE FROM file_versions WHERE project_id = ?1 AND introduced_by < ?2 AND "
		"introduced_by NOT IN (SELECT id FROM syncs WHERE project_id = ?1 "
		"AND status = 'succeeded')";
	/* Superseded at or before the new start: only the syncs that go could see them. */
	static const char del_versions[] =
		"DELETE FROM file_versions WHERE project_id = ?1 AND superseded_by IS NOT NULL "
		"AND superseded_by <= ?2";
	/* What the start sees from older syncs becomes its own: it lists its full snapshot. */
	static const char rebase[] =
		"UPDATE file_versions SET introduced_by = ?2 WHERE project_id = ?1 "
		"AND introduced_by < ?2";
	/* Directory trees (migration 0009) are versioned like file versions: the same three
	 * steps keep the trees of the start and of every later snapshot. */
	static const char dt_unsucceeded[] =
		"DELETE FROM dir_trees WHERE project_id = ?1 AND introduced_by < ?2 AND "
		"introduced_by NOT IN (SELECT id FROM syncs WHERE project_id = ?1 "
		"AND status = 'succeeded')";
	static const char dt_superseded[] =
		"DELETE FROM dir_trees WHERE project_id = ?1 AND superseded_by IS NOT NULL "
		"AND superseded_by <= ?2";
	static const char dt_rebase[] =
		"UPDATE dir_trees SET introduced_by = ?2 WHERE project_id = ?1 "
		"AND introduced_by < ?2";
	/* Directories (schema 26) no file version and no tree names any more; ?2 only keeps
	 * run2's binding valid. */
	static const char del_dirs[] =
		"DELETE FROM dirs WHERE project_id = ?1 AND ?2 IS NOT NULL "
		"AND NOT EXISTS (SELECT 1 FROM file_versions f WHERE f.dir_id = dirs.id) "
		"AND NOT EXISTS (SELECT 1 FROM dir_trees t WHERE t.dir_id = dirs.id)";
	static const char del_events[] =
		"DELETE FROM events WHERE sync_id IN (SELECT id FROM syncs WHERE project_id = ?1 "
		"AND id < ?2)";
	static const char del_syncs[] = "DELETE FROM syncs WHERE project_id = ?1 AND id < ?2";
	/* The start has no predecessor now: its changes are its whole snapshot (every path
	 * added, as `changes` and the API list them), and its counts say so, not what it
	 * changed relative to a sync that is gone. */
	static const char new_start[] =
		"UPDATE syncs SET previous_sync_id = NULL, base_sync_id = NULL, "
		"added = (SELECT count(*) FROM file_versions WHERE project_id = ?1 "
		"AND introduced_by = ?2), modified = 0, deleted = 0, renamed = 0 "
		"WHERE project_id = ?1 AND id = ?2";
	static const char bases[] =
		"UPDATE syncs SET base_sync_id = NULL WHERE project_id = ?1 AND base_sync_id < ?2";
	int rc = 0;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if (scalar(s, check_start, project_id, start, &rc) != 1) {
		if (rc == 0)
			rc = ps_error_set(PS_EINVAL, "not_a_start",
					  "sync %lld is not a succeeded sync of the project",
					  (long long)start);
		goto fail;
	}
	out->syncs += scalar(s, count_syncs, project_id, start, &rc);
	if (rc < 0 ||
	    (rc = run2(s, del_unsucceeded, project_id, start, &out->file_versions)) < 0 ||
	    (rc = run2(s, del_versions, project_id, start, &out->file_versions)) < 0 ||
	    (rc = run2(s, rebase, project_id, start, NULL)) < 0 ||
	    (rc = run2(s, dt_unsucceeded, project_id, start, NULL)) < 0 ||
	    (rc = run2(s, dt_superseded, project_id, start, NULL)) < 0 ||
	    (rc = run2(s, dt_rebase, project_id, start, NULL)) < 0 ||
	    (rc = run2(s, del_dirs, project_id, start, NULL)) < 0 ||
	    (rc = run2(s, del_events, project_id, start, &out->events)) < 0 ||
	    (rc = run2(s, del_syncs, project_id, start, NULL)) < 0 ||
	    (rc = run2(s, new_start, project_id, start, NULL)) < 0 ||
	    (rc = run2(s, bases, project_id, start, NULL)) < 0)
		goto fail;
	return ps_store_commit(s);
fail:
	ps_store_rollback(s);
	return rc;
}

int ps_sqlite_prune_blobs(struct ps_store *s, struct ps_prune_stats *out)
{
	/* A running sync may hold blobs it fetched but has not staged a version of yet: they
	 * look unreferenced. Blob pruning waits for a moment without one (the write lock of
	 * this transaction keeps new syncs from starting meanwhile). */
	static const char running[] =
		"SELECT count(*) FROM syncs WHERE status IN ('queued','running') AND status = 'running'";
	static const char any_unreferenced[] =
		"SELECT EXISTS (SELECT 1 FROM blobs b WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = b.sha))";
	static const char measure[] =
		"SELECT count(*) FROM blobs b WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = b.sha)";
	/* The bytes the store frees: length() of the stored (encoded) content, read from the row
	 * header without decoding; rows still in blobs_raw (a conversion under way in another
	 * process) are left for a later prune, once they have moved. */
	static const char measure_bytes[] =
		"SELECT coalesce(sum(length(content)), 0) FROM blobs b WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = b.sha)";
	static const char del[] =
		"DELETE FROM blobs WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = blobs.sha)";
	/* Kept deltas whose base goes: rewritten plain before the delete (blobs.c). */
	static const char orphans[] =
		"SELECT ps_hex(sha) FROM blobs b WHERE base IS NOT NULL AND "
		"EXISTS (SELECT 1 FROM file_versions f WHERE f.sha = b.sha) AND "
		"NOT EXISTS (SELECT 1 FROM file_versions f WHERE f.sha = b.base)";
	struct ps_strv keep = { 0 };
	sqlite3_stmt *st;
	int rc = 0, step;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if (scalar(s, running, 0, 0, &rc) > 0) {
		/* Skipped only if there is something to prune: the server holds syncs back
		 * for a skipped prune (server/scheduler.c, the prune gate). */
		out->blobs_skipped = rc == 0 && scalar(s, any_unreferenced, 0, 0, &rc) > 0;
		return rc < 0 ? (ps_store_rollback(s), rc) : ps_store_commit(s);
	}
	out->blob_bytes += scalar(s, measure_bytes, 0, 0, &rc);
	if (rc < 0)
		goto fail;
	out->blobs += scalar(s, measure, 0, 0, &rc);
	if (rc < 0)
		goto fail;
	if (!(st = stmt(s, orphans))) {
		rc = PS_ESTORE;
		goto fail;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		ps_strv_push(&keep, (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		rc = db_error(s, "find deltas whose base goes");
		goto fail;
	}
	if ((rc = ps_store_blobs_make_plain(s, keep.v, keep.n, out)) < 0)
		goto fail;
	/* The code index goes with its blobs (read before they go: a document leaves the FTS
	 * index with the text it came with). */
	if ((rc = ps_sqlite_code_forget_unreferenced(s)) < 0 ||
	    (rc = run2(s, del, 0, 0, NULL)) < 0)
		goto fail;
	/* The packs whose members just went (all or most of them): deleted or rewritten smaller
	 * (blobs.c), in this transaction, so the space of pruned members comes back. */
	if ((rc = ps_store_blob_packs_tidy(s, out)) < 0)
		goto fail;
	ps_strv_dispose(&keep);
	return ps_store_commit(s);
fail:
	ps_strv_dispose(&keep);
	ps_store_rollback(s);
	return rc;
}

int ps_sqlite_prune_gate_set(struct ps_store *s, int64_t until, int64_t only_if)
{
	return run2(s, "UPDATE prune_gate SET blob_prune_until = ?1 WHERE id = 1 AND "
		    "(?2 < 0 OR blob_prune_until = ?2)", until, only_if, NULL);
}

int ps_sqlite_prune_gate_get(struct ps_store *s, int64_t *until)
{
	int rc = 0;

	*until = scalar(s, "SELECT blob_prune_until FROM prune_gate WHERE id = 1", 0, 0, &rc);
	return rc;
}

int ps_sqlite_compact(struct ps_store *s)
{
	int rc;

	if (s->tx_depth > 0)
		return 0; /* a dry run: nothing was freed */
	/* The code index's postings of pruned blobs first, so VACUUM gives their pages back too.
	 * Not in the prune's transaction: a merge of the whole index holds the write lock for
	 * as long as it takes, and syncs wait. Until it runs, or if it fails or the process dies
	 * first, searches are still right: a posting whose document row the prune removed
	 * matches nothing, and ids are never reused. */
	if ((rc = ps_sqlite_code_compact(s)) < 0)
		return rc;
	/* VACUUM rewrites the file without the freed pages; the checkpoint moves the result out
	 * of the WAL so the file on disk shrinks now, not at the next checkpoint. */
	if (exec(s, "VACUUM", "vacuum") < 0)
		return PS_ESTORE;
	return exec(s, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint");
}
