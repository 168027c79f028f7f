/*
 * The PostgreSQL backend of the store (store.h), through libpq. It keeps the data rules of the
 * SQLite backend (store/sqlite/sqlite.c has the reasoning) with PostgreSQL's means:
 *   - visibility: a file version is in the snapshot of succeeded sync S when a succeeded sync at
 *     or before S introduced it and none at or before S superseded it; superseded_by is written
 *     only in finalize's transaction;
 *   - one chain and one queued/running sync per project: the unique indexes, so two nodes that
 *     append at the same moment get one row and one unique violation (PS_ECONFLICT);
 *   - several processes on several hosts share the database: writes rely on row locks and the
 *     `status = 'running'` guards, never on a single writer as SQLite's BEGIN IMMEDIATE gives;
 *   - migrations run under an advisory lock, each in its own transaction, so nodes that start
 *     together apply each step once; the version lives in projsync_schema.
 * Paths are bytea (any bytes, sorted bytewise); other text that is not valid UTF-8 (error
 * messages quoting a path, memory notes) is stored with U+FFFD for the invalid bytes.
 * Every stored event also sends NOTIFY projsync_events (payload: "SYNC_ID:SEQ"), delivered at
 * commit, so event streams on every node wake without polling.
 */
#include "store/postgres/pg_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/diff.h"
#include "model/json.h"
#include "model/schedule.h"
#include "store/blobcodec.h"
#include "util/error.h"

struct ps_embedded {
	const char *name;
	const char *text;
	size_t len;
};
extern const struct ps_embedded ps_pg_migrations[];
extern const size_t ps_pg_migrations_count;

/* pg_advisory_lock key of the migrations: "projsync" in ASCII. */
#define MIGRATION_LOCK "7022364615730913648"

/* ---- parameters ---- */

static void pq_grow(struct ps_pq *p)
{
	if (p->n < p->cap)
		return;
	p->cap = p->cap ? p->cap * 2 : 16;
	p->v = ps_realloc(p->v, (size_t)p->cap * sizeof(*p->v));
	p->len = ps_realloc(p->len, (size_t)p->cap * sizeof(*p->len));
	p->fmt = ps_realloc(p->fmt, (size_t)p->cap * sizeof(*p->fmt));
	p->own = ps_realloc(p->own, (size_t)p->cap * sizeof(*p->own));
}

static void pq_add(struct ps_pq *p, const char *v, int len, int fmt, bool own)
{
	pq_grow(p);
	p->v[p->n] = v;
	p->len[p->n] = len;
	p->fmt[p->n] = fmt;
	p->n++;
	if (own)
		p->own[p->nown++] = (char *)v;
}

/* Length of the valid UTF-8 sequence at s (0 if invalid). */
static size_t utf8_seq(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* `s` with every invalid byte replaced by U+FFFD, or NULL when it is valid as it is. */
static char *utf8_mend(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	struct ps_buf b;
	size_t i = 0, k;

	while (u[i] && (k = utf8_seq(u + i)) > 0)
		i += k;
	if (!u[i])
		return NULL;
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_append(&b, s, i);
	while (u[i]) {
		if ((k = utf8_seq(u + i)) > 0) {
			ps_buf_append(&b, u + i, k);
			i += k;
		} else {
			ps_buf_puts(&b, "\xef\xbf\xbd");
			i++;
		}
	}
	return ps_buf_take(&b, NULL);
}

void ps_pq_text(struct ps_pq *p, const char *v)
{
	char *mended = v ? utf8_mend(v) : NULL;

	if (mended)
		pq_add(p, mended, 0, 0, true);
	else
		pq_add(p, v, 0, 0, false);
}

void ps_pq_int(struct ps_pq *p, int64_t v)
{
	pq_add(p, ps_asprintf("%lld", (long long)v), 0, 0, true);
}

void ps_pq_id(struct ps_pq *p, int64_t v)
{
	if (v > 0)
		ps_pq_int(p, v);
	else
		pq_add(p, NULL, 0, 0, false);
}

void ps_pq_bytes(struct ps_pq *p, const void *d, size_t n)
{
	pq_add(p, d ? d : "", (int)n, 1, false);
}

void ps_pq_path(struct ps_pq *p, const char *path)
{
	if (path)
		ps_pq_bytes(p, path, strlen(path));
	else
		pq_add(p, NULL, 0, 0, false);
}

void ps_pq_dispose(struct ps_pq *p)
{
	for (int i = 0; i < p->nown; i++)
		free(p->own[i]);
	free(p->v);
	free(p->len);
	free(p->fmt);
	free(p->own);
	memset(p, 0, sizeof(*p));
}

/* ---- running statements ---- */

/* The first line of libpq's message (it may continue with DETAIL/HINT lines). */
static char *first_line(const char *msg)
{
	const char *nl = msg ? strchr(msg, '\n') : NULL;

	if (!msg)
		return ps_strdup("unknown error");
	return nl ? ps_strndup(msg, (size_t)(nl - msg)) : ps_strdup(msg);
}

static int pg_error(struct ps_pg *g, PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char *msg = first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(g->conn));
	int rc;

	if (g->tx_depth > 0)
		g->tx_aborted = true; /* PostgreSQL aborts the whole transaction on an error */
	if (state && !strcmp(state, "23505"))
		rc = ps_error_set(PS_ECONFLICT, "constraint", "store %s: %s: %s", g->where, what, msg);
	else if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
			   !strcmp(state, "55P03")))
		rc = ps_error_set(PS_ESTORE, "store_busy", "store %s is busy (%s): %s", g->where, what,
				  msg);
	else if (state && !strncmp(state, "53", 2))
		rc = ps_error_set(PS_ESTORE, "store_full", "store %s: out of resources (%s): %s",
				  g->where, what, msg);
	else if (state && (!strcmp(state, "25006") || !strcmp(state, "42501")))
		rc = ps_error_set(PS_ESTORE, "store_read_only", "store %s cannot be written (%s): %s",
				  g->where, what, msg);
	else
		rc = ps_error_set(PS_ESTORE, "store", "store %s: %s: %s", g->where, what, msg);
	free(msg);
	return rc;
}

static void no_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGresult *run_now(struct ps_pg *g, const char *sql, struct ps_pq *p, bool binary,
			 const char *what, int *rc)
{
	struct ps_pq none = { 0 };
	PGresult *r;

	if (!p)
		p = &none;
	for (int attempt = 0;; attempt++) {
		ExecStatusType st;

		r = PQexecParams(g->conn, sql, p->n, NULL, p->v, p->len, p->fmt, binary ? 1 : 0);
		st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			ps_pq_dispose(p);
			return r;
		}
		/* A lost connection outside a transaction (the server restarted): reconnect and
		 * run the statement again, once. Inside a transaction its work is gone. */
		if (attempt == 0 && PQstatus(g->conn) == CONNECTION_BAD && g->tx_depth == 0) {
			PQclear(r);
			PQreset(g->conn);
			if (PQstatus(g->conn) == CONNECTION_OK) {
				PQsetNoticeProcessor(g->conn, no_notices, NULL);
				continue;
			}
			r = NULL;
		}
		*rc = pg_error(g, r, what);
		PQclear(r);
		ps_pq_dispose(p);
		return NULL;
	}
}

/* ---- deferred inserts (ps_pg_defer) ---- */

static const struct {
	const char *head, *tail, *what;
	int ncols;
	unsigned unhex; /* the columns (bit i: column i) sent as hex and stored as bytes */
} deferred_sql[PS_PG_DEFER_N] = {
	[PS_PG_DEFER_BLOBS] = { "INSERT INTO blobs (sha, size, encoding, base, pack, pack_offset, "
				"content) VALUES ", " ON CONFLICT (sha) DO NOTHING", "store blobs", 7,
				(1u << 0) | (1u << 3) }, /* sha and base are bytea (migration 0023) */
	/* code_blobs.sha is bytea (migration 0019). */
	[PS_PG_DEFER_CODE_BLOBS] = { "INSERT INTO code_blobs (id, sha, is_binary) VALUES ",
				     " ON CONFLICT (sha) DO NOTHING", "index blobs", 3, 1u << 1 },
};

/* A batch stays well under libpq's 65,535 parameters and holds bounded memory. */
#define DEFER_MAX_ROWS 1000
#define DEFER_MAX_BYTES (16u << 20)

static void defer_drop(struct ps_pg *g)
{
	for (int w = 0; w < PS_PG_DEFER_N; w++) {
		ps_pq_dispose(&g->defer[w].q);
		g->defer[w].rows = g->defer[w].bytes = 0;
	}
}

/* Sends the waiting rows, blobs first (the order the pipeline put them in). */
static int defer_flush(struct ps_pg *g)
{
	int rc = 0;

	g->flushing = true;
	for (int w = 0; w < PS_PG_DEFER_N && rc == 0; w++) {
		struct ps_pg_deferred *d = &g->defer[w];
		struct ps_buf b;
		PGresult *r;
		size_t param = 0;
		char *sql;

		if (d->rows == 0)
			continue;
		ps_buf_init(&b, SIZE_MAX);
		ps_buf_puts(&b, deferred_sql[w].head);
		for (size_t i = 0; i < d->rows; i++) {
			ps_buf_puts(&b, i ? ", (" : "(");
			for (int c = 0; c < deferred_sql[w].ncols; c++)
				ps_buf_printf(&b, deferred_sql[w].unhex & (1u << c) ? "%sps_unhex($%zu)"
										     : "%s$%zu",
					      c ? ", " : "", ++param);
			ps_buf_puts(&b, ")");
		}
		ps_buf_puts(&b, deferred_sql[w].tail);
		sql = ps_buf_take(&b, NULL);
		d->rows = d->bytes = 0;
		r = run_now(g, sql, &d->q, false, deferred_sql[w].what, &rc); /* disposes d->q */
		free(sql);
		PQclear(r);
	}
	g->flushing = false;
	if (rc < 0)
		defer_drop(g);
	return rc;
}

int ps_pg_defer(struct ps_pg *g, int which, struct ps_pq *row)
{
	struct ps_pg_deferred *d = &g->defer[which];

	/* Copies: the caller's buffers are gone by the time the batch is sent. */
	for (int i = 0; i < row->n; i++) {
		size_t len;
		char *copy;

		if (!row->v[i]) {
			pq_add(&d->q, NULL, 0, 0, false);
			continue;
		}
		len = row->fmt[i] ? (size_t)row->len[i] : strlen(row->v[i]);
		copy = ps_malloc(len + 1);
		memcpy(copy, row->v[i], len);
		copy[len] = '\0';
		pq_add(&d->q, copy, (int)len, row->fmt[i], true);
		d->bytes += len;
	}
	ps_pq_dispose(row);
	d->rows++;
	if (g->tx_depth == 0 || d->rows >= DEFER_MAX_ROWS || d->bytes >= DEFER_MAX_BYTES)
		return defer_flush(g);
	return 0;
}

PGresult *ps_pg_run(struct ps_pg *g, const char *sql, struct ps_pq *p, bool binary,
		    const char *what, int *rc)
{
	/* Waiting rows go first, so this statement (a read, COMMIT) sees them. */
	if (!g->flushing &&
	    (g->defer[PS_PG_DEFER_BLOBS].rows || g->defer[PS_PG_DEFER_CODE_BLOBS].rows) &&
	    (*rc = defer_flush(g)) < 0) {
		if (p)
			ps_pq_dispose(p);
		return NULL;
	}
	return run_now(g, sql, p, binary, what, rc);
}

int ps_pg_exec(struct ps_pg *g, const char *sql, struct ps_pq *p, const char *what,
	       int64_t *changed)
{
	int rc = 0;
	PGresult *r = ps_pg_run(g, sql, p, false, what, &rc);

	if (!r)
		return rc;
	if (changed) {
		const char *t = PQcmdTuples(r);
		*changed = t && *t ? strtoll(t, NULL, 10) : 0;
	}
	PQclear(r);
	return 0;
}

int64_t ps_pg_col_int(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

char *ps_pg_col_text(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return ps_strndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

char *ps_pg_col_bytea(const PGresult *r, int row, int col)
{
	size_t n = 0;
	unsigned char *raw;
	char *out;

	if (PQgetisnull(r, row, col))
		return NULL;
	raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
	if (!raw)
		return ps_strdup("");
	out = ps_strndup((const char *)raw, n);
	PQfreemem(raw);
	return out;
}

static int exec_simple(struct ps_pg *g, const char *sql, const char *what)
{
	return ps_pg_exec(g, sql, NULL, what, NULL);
}

/* ---- transactions ---- */

int ps_pg_begin(struct ps_store *s)
{
	struct ps_pg *g = PSPG(s);

	if (g->tx_depth > 0) {
		g->tx_depth++;
		return 0;
	}
	g->tx_aborted = false;
	/* BEGIN runs outside the transaction count, so that a connection the database dropped
	 * since the last statement (a restart) is opened again first (ps_pg_run). */
	if (exec_simple(g, "BEGIN", "begin transaction") < 0)
		return PS_ESTORE;
	g->tx_depth = 1;
	return 0;
}

static void forget_last_dir(struct ps_pg *g);

static void rollback_now(struct ps_pg *g)
{
	defer_drop(g);
	forget_last_dir(g);
	ps_pg_code_discard((struct ps_store *)g);
	PQclear(PQexec(g->conn, "ROLLBACK"));
}

int ps_pg_commit(struct ps_store *s)
{
	struct ps_pg *g = PSPG(s);
	int rc;

	if (g->tx_depth <= 0)
		return ps_error_set(PS_ESTORE, NULL, "commit without a transaction");
	if (g->tx_depth > 1) {
		g->tx_depth--;
		return 0;
	}
	if (g->tx_aborted) {
		g->tx_depth = 0;
		rollback_now(g);
		return ps_error_set(PS_ESTORE, NULL, "transaction was rolled back by an inner failure");
	}
	/* The code index's postings go in the transaction of the code_blobs rows they cover. */
	if ((rc = ps_pg_code_flush(s)) < 0) {
		g->tx_depth = 0;
		rollback_now(g);
		return rc;
	}
	rc = exec_simple(g, "COMMIT", "commit");
	g->tx_depth = 0;
	/* Its row was locked until now (ps_pg_dir_ids): a prune may delete it from here on. */
	forget_last_dir(g);
	if (rc < 0)
		rollback_now(g);
	return rc;
}

void ps_pg_rollback(struct ps_store *s)
{
	struct ps_pg *g = PSPG(s);

	if (g->tx_depth <= 0)
		return;
	g->tx_aborted = true;
	if (--g->tx_depth == 0)
		rollback_now(g);
}

/* ---- open and migrations ---- */

int ps_pg_schema_version(void)
{
	return (int)ps_pg_migrations_count;
}

/* The schema version; 0 for an empty database. PS_ESTORE for someone else's database. */
static int read_version(struct ps_pg *g, int *out)
{
	static const char has_sql[] = "SELECT to_regclass('projsync_schema') IS NOT NULL, "
				      "(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
				      "n.oid = c.relnamespace WHERE n.nspname = current_schema())";
	int rc = 0;
	PGresult *r = ps_pg_run(g, has_sql, NULL, false, "read schema version", &rc);
	bool has;
	int64_t objects;

	if (!r)
		return rc;
	has = PQgetvalue(r, 0, 0)[0] == 't';
	objects = ps_pg_col_int(r, 0, 1);
	PQclear(r);
	if (!has) {
		if (objects > 0)
			return ps_error_set(PS_ESTORE, "store_foreign",
					    "%s is a PostgreSQL database but not a projsync store",
					    g->where);
		*out = 0;
		return 0;
	}
	if (!(r = ps_pg_run(g, "SELECT max(version) FROM projsync_schema", NULL, false,
			    "read schema version", &rc)))
		return rc;
	*out = (int)ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

static int too_new(struct ps_pg *g, int version)
{
	return ps_error_set(PS_ESTORE, "schema_too_new",
			    "store %s has schema version %d, newer than this projsync knows (%d): "
			    "upgrade projsync", g->where, version, ps_pg_schema_version());
}

int ps_pg_migrate(struct ps_store *s, int *from, int *to)
{
	struct ps_pg *g = PSPG(s);
	int version = 0, rc;

	/* Nodes starting together queue here; each then sees the steps the others applied. */
	if ((rc = exec_simple(g, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", "lock schema")) < 0)
		return rc;
	if ((rc = read_version(g, &version)) < 0)
		goto out;
	if (from)
		*from = version;
	if (version > ps_pg_schema_version()) {
		rc = too_new(g, version);
		goto out;
	}
	for (size_t i = (size_t)version; i < ps_pg_migrations_count; i++) {
		struct ps_pq p = { 0 };

		if ((rc = ps_pg_begin(s)) < 0)
			goto out;
		if (i == 0)
			rc = exec_simple(g, "CREATE TABLE projsync_schema (version integer NOT NULL)",
					 "create schema version");
		if (rc == 0) {
			/* The migration text holds several statements: the simple protocol runs
			 * them all (PQexecParams takes one). */
			PGresult *r = PQexec(g->conn, ps_pg_migrations[i].text);
			if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
				rc = pg_error(g, r, ps_pg_migrations[i].name);
			PQclear(r);
		}
		if (rc == 0) {
			ps_pq_int(&p, (int64_t)i + 1);
			rc = ps_pg_exec(g, "INSERT INTO projsync_schema (version) VALUES ($1)", &p,
					"set schema version", NULL);
		}
		if (rc < 0) {
			ps_pg_rollback(s);
			rc = ps_error_wrap(rc, "migration %s failed: ", ps_pg_migrations[i].name);
			goto out;
		}
		if ((rc = ps_pg_commit(s)) < 0)
			goto out;
	}
	/* Still under the lock: a node that opens meanwhile waits for the whole conversion
	 * (migrations/0023_blob_ids.sql), so none reads a half-converted table. */
	if ((rc = ps_pg_blob_convert(s, 0, NULL, NULL)) < 0) {
		rc = ps_error_wrap(rc, "converting blob ids to bytes: ");
		goto out;
	}
	/* Code index rows written before schema 25 are compressed the same way
	 * (migrations/0025_code_rows_zstd.sql). */
	if ((rc = ps_pg_code_convert(s, 0, NULL, NULL)) < 0) {
		rc = ps_error_wrap(rc, "compressing the code index: ");
		goto out;
	}
	if (to)
		*to = ps_pg_schema_version();
out:
	PQclear(PQexec(g->conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")"));
	return rc;
}

/* ---- schema 23: blob ids to bytea (migrations/0023_blob_ids.sql) ---- */

/* Rows per batch: an UPDATE that leaves the TOASTed content alone writes a small row version
 * (content under ~2 kB is inline and is copied), so rows, not bytes, bound a batch. */
#define ID_BATCH_ROWS 1000

/* The bytea of a hex id, as 0016 converted file_versions (a non-hex id keeps its bytes). */
#define ID_BYTES(col) \
	"CASE WHEN " col " ~ '^[0-9a-f]{40}$' THEN decode(" col ", 'hex') " \
	"ELSE convert_to(" col ", 'UTF8') END"

static int hex_ids_left(struct ps_pg *g, bool *columns, bool *rows)
{
	static const char cols_sql[] =
		"SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('blobs') "
		"AND attname = 'sha_hex' AND NOT attisdropped)";
	PGresult *r;
	int rc = 0;

	*rows = false;
	if (!(r = ps_pg_run(g, cols_sql, NULL, false, "look for hex blob ids", &rc)))
		return rc;
	*columns = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!*columns)
		return 0;
	if (!(r = ps_pg_run(g, "SELECT EXISTS (SELECT 1 FROM blobs WHERE sha_hex IS NOT NULL)",
			    NULL, false, "look for hex blob ids", &rc)))
		return rc;
	*rows = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return 0;
}

int ps_pg_blob_convert(struct ps_store *s, size_t batch_rows,
		       void (*after_row)(void *ud, size_t row), void *ud)
{
	/* The next rows after $2 in sha_hex order whose base (if any) is converted already: the
	 * foreign key on the bytea columns holds at every commit. count and the last key. */
	static const char batch[] =
		"WITH pick AS (SELECT b.sha_hex FROM blobs b WHERE b.sha_hex IS NOT NULL "
		"AND b.sha_hex > $2 AND (b.base_hex IS NULL OR EXISTS (SELECT 1 FROM blobs p "
		"WHERE p.sha = " ID_BYTES("b.base_hex") ")) ORDER BY b.sha_hex LIMIT $1), "
		"moved AS (UPDATE blobs b SET sha = " ID_BYTES("b.sha_hex") ", "
		"base = " ID_BYTES("b.base_hex") ", sha_hex = NULL, base_hex = NULL "
		"FROM pick WHERE b.sha_hex = pick.sha_hex RETURNING pick.sha_hex AS k) "
		"SELECT count(*), max(k) FROM moved";
	/* A catalog change and a scan of the small row versions (SET NOT NULL): the hex columns'
	 * bytes were set NULL by the batches already. */
	static const char finish[] =
		"ALTER TABLE blobs DROP COLUMN sha_hex, DROP COLUMN base_hex, "
		"ALTER COLUMN sha SET NOT NULL; "
		"ALTER TABLE blobs ADD CONSTRAINT blobs_pkey PRIMARY KEY USING INDEX blobs_pkey; "
		"ANALYZE blobs";
	struct ps_pg *g = PSPG(s);
	char *last = ps_strdup("");
	bool columns, rows, pass_moved = false;
	size_t row_no = 0;
	int rc;

	if (batch_rows == 0)
		batch_rows = ID_BATCH_ROWS;
	if ((rc = hex_ids_left(g, &columns, &rows)) < 0 || !columns)
		goto out;
	for (;;) {
		struct ps_pq q = { 0 };
		PGresult *r;
		int64_t n;

		if ((rc = ps_pg_begin(s)) < 0)
			goto out;
		ps_pq_int(&q, (int64_t)batch_rows);
		ps_pq_text(&q, last);
		if (!(r = ps_pg_run(g, batch, &q, false, "convert blob ids", &rc))) {
			ps_pg_rollback(s);
			goto out;
		}
		n = ps_pg_col_int(r, 0, 0);
		if (n > 0) {
			free(last);
			last = ps_pg_col_text(r, 0, 1);
		}
		PQclear(r);
		for (int64_t i = 0; i < n && after_row; i++)
			after_row(ud, row_no++);
		if ((rc = ps_pg_commit(s)) < 0)
			goto out;
		if (n > 0) {
			pass_moved = true;
			continue;
		}
		/* The end of a pass: the deltas whose base this pass converted are left. */
		if ((rc = hex_ids_left(g, &columns, &rows)) < 0)
			goto out;
		if (!rows)
			break;
		if (!pass_moved) {
			/* Only a store changed behind projsync's back gets here (the foreign key
			 * keeps bases): name one such blob, for whoever repairs it. */
			PGresult *e = ps_pg_run(g, "SELECT sha_hex, base_hex FROM blobs WHERE "
						"sha_hex IS NOT NULL ORDER BY sha_hex LIMIT 1",
						NULL, false, "look for hex blob ids", &rc);
			if (e && PQntuples(e) == 1)
				rc = ps_error_set(PS_ESTORE, "blob_base_missing",
						  "delta blob %s names base %s, which is not stored "
						  "(and so may others): its content cannot be read",
						  PQgetvalue(e, 0, 0), PQgetvalue(e, 0, 1));
			else if (e)
				rc = ps_error_set(PS_ESTORE, "blob_base_missing",
						  "some delta blobs name a base that is not stored");
			PQclear(e);
			goto out;
		}
		free(last);
		last = ps_strdup("");
		pass_moved = false;
	}
	if ((rc = ps_pg_begin(s)) < 0)
		goto out;
	{
		/* Several statements: the simple protocol. */
		PGresult *r = PQexec(g->conn, finish);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = pg_error(g, r, "finish the blob id conversion");
		PQclear(r);
	}
	if (rc < 0) {
		ps_pg_rollback(s);
		goto out;
	}
	rc = ps_pg_commit(s);
out:
	free(last);
	return rc;
}

char *ps_pg_location(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
	char *out;

	if (!opts)
		return ps_strdup("postgresql://(unparsable URL)");
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
		else if (!strcmp(o->keyword, "user"))
			user = o->val;
	}
	out = ps_asprintf("postgresql://%s%s%s%s%s/%s", user ? user : "", user ? "@" : "",
			  host ? host : "localhost", port ? ":" : "", port ? port : "",
			  db ? db : (user ? user : ""));
	PQconninfoFree(opts);
	return out;
}

int ps_pg_server_supported(int server_version, const char *where)
{
	char have[32];

	if (server_version <= 0 || server_version >= PS_PG_MIN_SERVER_VERSION)
		return 0;
	/* Since 10 the number is major * 10000 + minor; before, major.minor * 100 + patch. */
	if (server_version >= 100000)
		snprintf(have, sizeof(have), "%d.%d", server_version / 10000, server_version % 10000);
	else
		snprintf(have, sizeof(have), "%d.%d.%d", server_version / 10000,
			 server_version / 100 % 100, server_version % 100);
	return ps_error_set(PS_ESTORE, "server_too_old",
			    "cannot open store %s: PostgreSQL %d or later is required (the server "
			    "is %s)", where, PS_PG_MIN_SERVER_VERSION / 10000, have);
}

/* Whether a failed connection was refused because its database does not exist (SQLSTATE 3D000,
 * invalid_catalog_name). libpq keeps no SQLSTATE of a failed connection, only the server's
 * message, so this matches that message for exactly this database name: PostgreSQL's
 * `FATAL:  database "NAME" does not exist` (an untranslated server; a translated one stays the
 * generic "cannot open store", never a wrong "no store"). */
static bool database_missing(PGconn *conn)
{
	const char *db = PQdb(conn), *msg = PQerrorMessage(conn);
	char *want;
	bool found;

	if (!db || !*db || !msg)
		return false;
	want = ps_asprintf("FATAL:  database \"%s\" does not exist", db);
	found = strstr(msg, want) != NULL;
	free(want);
	return found;
}

int ps_pg_open(struct ps_store **out, const char *url, unsigned flags)
{
	struct ps_pg *g = ps_calloc(1, sizeof(*g));
	const char *keys[] = { "dbname", "client_encoding", "application_name", "connect_timeout",
			       NULL };
	const char *vals[] = { url, "UTF8", "projsync", "10", NULL };
	int rc, version;

	g->head.ops = &ps_pg_ops;
	g->url = ps_strdup(url);
	g->where = ps_pg_location(url);
	if ((rc = ps_blobcodec_new(&g->codec)) < 0) {
		ps_pg_free((struct ps_store *)g);
		return rc;
	}
	/* expand_dbname: the URL gives every setting; the others fill what it does not say.
	 * connect_timeout unless the URL sets one: an unreachable host fails, never hangs. */
	g->conn = PQconnectdbParams(keys, vals, 1);
	if (!g->conn || PQstatus(g->conn) != CONNECTION_OK) {
		if (g->conn && database_missing(g->conn)) {
			/* A database that does not exist is no store there, as a missing SQLite file
			 * is (exit 3), not a server failing; projsync cannot create it. */
			rc = ps_error_set(PS_ENOTFOUND, "no_database", "no store at %s: database "
					  "\"%s\" does not exist (create it, e.g. with createdb, or "
					  "check --db and $PROJSYNC_DB)", g->where, PQdb(g->conn));
			ps_pg_free((struct ps_store *)g);
			return rc;
		}
		char *msg = first_line(g->conn ? PQerrorMessage(g->conn) : "out of memory");
		ps_error_set(PS_ESTORE, "store_open", "cannot open store %s: %s", g->where, msg);
		free(msg);
		ps_pg_free((struct ps_store *)g);
		return PS_ESTORE;
	}
	PQsetNoticeProcessor(g->conn, no_notices, NULL);
	/* Before any statement: an older server would otherwise fail a migration (or a query of
	 * an existing store) with a syntax error that does not say what is wrong. */
	if ((rc = ps_pg_server_supported(PQserverVersion(g->conn), g->where)) < 0)
		goto fail;
	if (flags & PS_STORE_NO_CREATE) {
		/* An empty database is no store yet: a read command must not create one. */
		if ((rc = read_version(g, &version)) < 0)
			goto fail;
		if (version == 0) {
			rc = ps_error_set(PS_ENOTFOUND, "no_store", "no store at %s", g->where);
			goto fail;
		}
	}
	if (!(flags & PS_STORE_NO_MIGRATE)) {
		if ((rc = ps_pg_migrate((struct ps_store *)g, NULL, NULL)) < 0)
			goto fail;
	} else {
		if ((rc = read_version(g, &version)) < 0)
			goto fail;
		if (version > ps_pg_schema_version()) {
			rc = too_new(g, version);
			goto fail;
		}
	}
	*out = (struct ps_store *)g;
	return 0;
fail:
	ps_pg_free((struct ps_store *)g);
	return rc;
}

void ps_pg_free(struct ps_store *s)
{
	struct ps_pg *g = PSPG(s);

	if (!g)
		return;
	if (g->tx_depth > 0 && g->conn)
		rollback_now(g);
	defer_drop(g);
	forget_last_dir(g);
	ps_pg_code_free(s);
	PQfinish(g->conn);
	ps_blobcodec_free(g->codec);
	free(g->url);
	free(g->where);
	free(g);
}

/* ---- projects ---- */

#define PROJECT_COLS "id, name, source, branch, max_blob_size, memory_globs, last_sync_id, " \
	"last_commit, last_error_code, last_error_message, failures_in_row, created_at, " \
	"every_ms, every_auto, auto_min_ms, auto_max_ms, interval_ms, next_sync_at, " \
	"last_check_at, max_failures, state, paused_at, paused_reason, keep_syncs, keep_days, " \
	"code_index, code_index_pending"

static struct ps_project *project_from_row(const PGresult *r, int i)
{
	struct ps_project *p = ps_calloc(1, sizeof(*p));
	json_t *globs;

	p->id = ps_pg_col_int(r, i, 0);
	p->name = ps_pg_col_text(r, i, 1);
	p->source = ps_pg_col_text(r, i, 2);
	p->branch = ps_pg_col_text(r, i, 3);
	p->max_blob_size = ps_pg_col_int(r, i, 4);
	globs = json_loads(PQgetvalue(r, i, 5), 0, NULL);
	for (size_t k = 0; globs && k < json_array_size(globs); k++)
		if (json_is_string(json_array_get(globs, k)))
			ps_strv_push(&p->memory_globs, json_string_value(json_array_get(globs, k)));
	json_decref(globs);
	p->last_sync_id = ps_pg_col_int(r, i, 6);
	p->last_commit = ps_pg_col_text(r, i, 7);
	p->last_error_code = ps_pg_col_text(r, i, 8);
	p->last_error_message = ps_pg_col_text(r, i, 9);
	p->failures_in_row = ps_pg_col_int(r, i, 10);
	p->created_at = ps_pg_col_int(r, i, 11);
	p->every_ms = ps_pg_col_int(r, i, 12);
	p->every_auto = ps_pg_col_int(r, i, 13) != 0;
	p->auto_min_ms = ps_pg_col_int(r, i, 14);
	p->auto_max_ms = ps_pg_col_int(r, i, 15);
	p->interval_ms = ps_pg_col_int(r, i, 16);
	p->next_sync_at = ps_pg_col_int(r, i, 17);
	p->last_check_at = ps_pg_col_int(r, i, 18);
	p->max_failures = ps_pg_col_int(r, i, 19);
	p->paused = !strcmp(PQgetvalue(r, i, 20), "paused");
	p->paused_at = ps_pg_col_int(r, i, 21);
	p->paused_reason = ps_pg_col_text(r, i, 22);
	p->keep_syncs = ps_pg_col_int(r, i, 23);
	p->keep_days = ps_pg_col_int(r, i, 24);
	p->no_code_index = ps_pg_col_int(r, i, 25) == 0;
	p->code_index_pending = ps_pg_col_int(r, i, 26) != 0;
	return p;
}

/* The schedule and retention settings, 9 parameters, in the order of project_add and
 * project_update (see sqlite.c bind_schedule). */
static void pq_schedule(struct ps_pq *q, const struct ps_project *p)
{
	ps_pq_int(q, p->every_ms);
	ps_pq_int(q, p->every_auto ? 1 : 0);
	ps_pq_int(q, p->auto_min_ms);
	ps_pq_int(q, p->auto_max_ms);
	ps_pq_int(q, p->interval_ms);
	ps_pq_id(q, p->next_sync_at);
	ps_pq_int(q, p->max_failures);
	ps_pq_int(q, p->keep_syncs);
	ps_pq_int(q, p->keep_days);
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

int ps_pg_project_add(struct ps_store *s, struct ps_project *p)
{
	static const char sql[] =
		"INSERT INTO projects (name, source, branch, max_blob_size, memory_globs, created_at, "
		"every_ms, every_auto, auto_min_ms, auto_max_ms, interval_ms, next_sync_at, "
		"max_failures, keep_syncs, keep_days, code_index) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id";
	struct ps_pq q = { 0 };
	PGresult *r;
	char *globs;
	int rc = 0;

	if (p->memory_globs.n == 0)
		ps_strv_push(&p->memory_globs, PS_DEFAULT_MEMORY_GLOB);
	if (p->max_blob_size <= 0)
		p->max_blob_size = PS_DEFAULT_MAX_BLOB_SIZE;
	ps_project_schedule_defaults(p);
	globs = globs_json(p);
	p->created_at = ps_now_ms();
	ps_pq_text(&q, p->name);
	ps_pq_text(&q, p->source);
	ps_pq_text(&q, p->branch);
	ps_pq_int(&q, p->max_blob_size);
	ps_pq_text(&q, globs);
	ps_pq_int(&q, p->created_at);
	pq_schedule(&q, p);
	ps_pq_int(&q, !p->no_code_index);
	r = ps_pg_run(PSPG(s), sql, &q, false, "add project", &rc);
	free(globs);
	if (!r)
		return rc == PS_ECONFLICT ? ps_error_set(PS_ECONFLICT, "project_exists",
							 "project '%s' already exists", p->name)
					  : rc;
	p->id = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int ps_pg_project_update(struct ps_store *s, const struct ps_project *p)
{
	static const char sql[] =
		"UPDATE projects SET branch = $1, max_blob_size = $2, memory_globs = $3, "
		/* Other globs: the next sync re-evaluates memory (migrations/0004). */
		"memory_rescan_gen = memory_rescan_gen + (memory_globs IS DISTINCT FROM $3)::int, "
		"memory_rescan = CASE WHEN memory_globs IS DISTINCT FROM $3 "
		"THEN memory_rescan_gen + 1 ELSE memory_rescan END, "
		/* A higher size limit: the next sync fetches what now fits (migrations/0005). */
		"blob_rescan_gen = blob_rescan_gen + ($2 > max_blob_size)::int, "
		"blob_rescan = CASE WHEN $2 > max_blob_size THEN blob_rescan_gen + 1 "
		"ELSE blob_rescan END, every_ms = $5, every_auto = $6, auto_min_ms = $7, "
		"auto_max_ms = $8, interval_ms = $9, next_sync_at = $10, max_failures = $11, "
		"keep_syncs = $12, keep_days = $13, "
		/* Switched back on: its next sync indexes what came in while it was off. */
		"code_index_pending = CASE WHEN code_index = 0 AND $14 = 1 THEN 1 "
		"ELSE code_index_pending END, code_index = $14 WHERE id = $4";
	struct ps_pq q = { 0 };
	char *globs = globs_json(p);
	int64_t changed = 0;
	int rc;

	ps_pq_text(&q, p->branch);
	ps_pq_int(&q, p->max_blob_size);
	ps_pq_text(&q, globs);
	ps_pq_int(&q, p->id);
	pq_schedule(&q, p);
	ps_pq_int(&q, !p->no_code_index);
	rc = ps_pg_exec(PSPG(s), sql, &q, "update project", &changed);
	free(globs);
	if (rc < 0)
		return rc;
	if (changed == 0)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)p->id);
	return 0;
}

int ps_pg_project_rename(struct ps_store *s, int64_t id, const char *name, const char *source)
{
	static const char sql[] = "UPDATE projects SET name = $1, source = $2 WHERE id = $3";
	struct ps_pq q = { 0 };
	int64_t changed = 0;
	int rc;

	ps_pq_text(&q, name);
	ps_pq_text(&q, source);
	ps_pq_int(&q, id);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "rename project", &changed)) < 0)
		return rc == PS_ECONFLICT ? ps_error_set(PS_ECONFLICT, "project_exists",
							 "project '%s' already exists", name)
					  : rc;
	if (changed == 0)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)id);
	return 0;
}

static int project_query(struct ps_store *s, const char *sql, struct ps_pq *q, const char *what,
			 struct ps_project **out)
{
	int rc = 0;
	PGresult *r = ps_pg_run(PSPG(s), sql, q, false, "read project", &rc);

	if (!r)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project '%s' not found", what);
	}
	*out = project_from_row(r, 0);
	PQclear(r);
	return 0;
}

int ps_pg_project_get(struct ps_store *s, const char *name, struct ps_project **out)
{
	struct ps_pq q = { 0 };

	ps_pq_text(&q, name);
	return project_query(s, "SELECT " PROJECT_COLS " FROM projects WHERE name = $1", &q, name,
			     out);
}

int ps_pg_project_get_by_id(struct ps_store *s, int64_t id, struct ps_project **out)
{
	struct ps_pq q = { 0 };
	char what[32];

	snprintf(what, sizeof(what), "#%lld", (long long)id);
	ps_pq_int(&q, id);
	return project_query(s, "SELECT " PROJECT_COLS " FROM projects WHERE id = $1", &q, what,
			     out);
}

int ps_pg_project_list(struct ps_store *s, struct ps_project ***out, size_t *n)
{
	/* COLLATE "C": byte order, as SQLite's BINARY sorts names. */
	static const char sql[] = "SELECT " PROJECT_COLS " FROM projects ORDER BY name COLLATE \"C\"";
	int rc = 0;
	PGresult *r = ps_pg_run(PSPG(s), sql, NULL, false, "list projects", &rc);
	struct ps_project **v;
	int count;

	if (!r)
		return rc;
	count = PQntuples(r);
	v = count ? ps_calloc((size_t)count, sizeof(*v)) : NULL;
	for (int i = 0; i < count; i++)
		v[i] = project_from_row(r, i);
	PQclear(r);
	*out = v;
	*n = (size_t)count;
	return 0;
}

int ps_pg_project_remove(struct ps_store *s, const char *name)
{
	static const char *const steps[] = {
		"DELETE FROM events WHERE sync_id IN (SELECT id FROM syncs WHERE project_id = $1)",
		/* By directory: the rows' indexes start with dir_id (migration 0026). */
		"DELETE FROM file_versions WHERE dir_id IN (SELECT id FROM dirs WHERE project_id = $1)",
		"DELETE FROM dir_trees WHERE dir_id IN (SELECT id FROM dirs WHERE project_id = $1)",
		"DELETE FROM dirs WHERE project_id = $1",
		"DELETE FROM syncs WHERE project_id = $1",
		"DELETE FROM projects WHERE id = $1",
	};
	struct ps_project *p = NULL;
	struct ps_sync *active = NULL;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = ps_pg_project_get(s, name, &p)) < 0)
		goto fail;
	ps_pg_reap(s, p->id, NULL);
	if (ps_pg_sync_active(s, p->id, &active) == 0) {
		rc = ps_error_set(PS_ECONFLICT, "sync_running",
				  "project '%s' has a %s sync (%lld); cancel it or wait before removing",
				  name, ps_sync_status_name(active->status), (long long)active->id);
		goto fail;
	}
	if ((rc = ps_pg_memory_remove_project(s, p->id)) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		struct ps_pq q = { 0 };
		ps_pq_int(&q, p->id);
		if ((rc = ps_pg_exec(PSPG(s), steps[i], &q, "remove project", NULL)) < 0)
			goto fail;
	}
	ps_project_free(p);
	return ps_pg_commit(s);
fail:
	ps_sync_free(active);
	ps_project_free(p);
	ps_pg_rollback(s);
	return rc;
}

/* ---- syncs ---- */

#define SYNC_COLS "s.id, s.project_id, p.name, s.branch, s.status, s.phase, s.commit_sha, " \
	"s.tree_sha, s.previous_sync_id, s.base_sync_id, s.trigger, s.added, s.modified, " \
	"s.deleted, s.renamed, s.files, s.bytes, s.requests, s.up_to_date, s.skipped_large, " \
	"s.error_code, s.error_message, s.created_at, s.started_at, s.finished_at, s.attempt, " \
	"s.head_subject, s.head_author_name, s.head_author_email, s.head_author_date, " \
	"s.head_committer_name, s.head_committer_email, s.head_committer_date, " \
	"s.commit_count, s.commits_truncated, s.checks, s.first_check_at"
#define SYNC_FROM " FROM syncs s JOIN projects p ON p.id = s.project_id "

static struct ps_sync *sync_from_row(const PGresult *r, int i)
{
	struct ps_sync *s = ps_calloc(1, sizeof(*s));

	s->id = ps_pg_col_int(r, i, 0);
	s->project_id = ps_pg_col_int(r, i, 1);
	s->project = ps_pg_col_text(r, i, 2);
	s->branch = ps_pg_col_text(r, i, 3);
	if (ps_sync_status_parse(PQgetvalue(r, i, 4), &s->status) < 0)
		s->status = PS_SYNC_FAILED;
	ps_phase_parse(PQgetvalue(r, i, 5), &s->phase);
	s->commit = ps_pg_col_text(r, i, 6);
	s->tree = ps_pg_col_text(r, i, 7);
	s->previous_sync_id = ps_pg_col_int(r, i, 8);
	s->base_sync_id = ps_pg_col_int(r, i, 9);
	s->trigger = ps_pg_col_text(r, i, 10);
	s->counts.added = ps_pg_col_int(r, i, 11);
	s->counts.modified = ps_pg_col_int(r, i, 12);
	s->counts.deleted = ps_pg_col_int(r, i, 13);
	s->counts.renamed = ps_pg_col_int(r, i, 14);
	s->counts.files = ps_pg_col_int(r, i, 15);
	s->bytes = ps_pg_col_int(r, i, 16);
	s->requests = ps_pg_col_int(r, i, 17);
	s->up_to_date = ps_pg_col_int(r, i, 18) != 0;
	s->skipped_large = ps_pg_col_int(r, i, 19);
	s->error_code = ps_pg_col_text(r, i, 20);
	s->error_message = ps_pg_col_text(r, i, 21);
	s->created_at = ps_pg_col_int(r, i, 22);
	s->started_at = ps_pg_col_int(r, i, 23);
	s->finished_at = ps_pg_col_int(r, i, 24);
	s->attempt = ps_pg_col_int(r, i, 25);
	if (!PQgetisnull(r, i, 26)) {
		struct ps_commit *c = ps_calloc(1, sizeof(*c));
		snprintf(c->sha, sizeof(c->sha), "%s", s->commit ? s->commit : "");
		c->subject = ps_pg_col_text(r, i, 26);
		c->author.name = ps_pg_col_text(r, i, 27);
		c->author.email = ps_pg_col_text(r, i, 28);
		c->author.date = ps_pg_col_int(r, i, 29);
		c->committer.name = ps_pg_col_text(r, i, 30);
		c->committer.email = ps_pg_col_text(r, i, 31);
		c->committer.date = ps_pg_col_int(r, i, 32);
		s->head_commit = c;
	}
	s->commit_count = PQgetisnull(r, i, 33) ? -1 : ps_pg_col_int(r, i, 33);
	s->commits_truncated = ps_pg_col_int(r, i, 34) != 0;
	s->checks = ps_pg_col_int(r, i, 35);
	s->first_check_at = ps_pg_col_int(r, i, 36);
	return s;
}

static int sync_query_one(struct ps_store *s, const char *sql, struct ps_pq *q,
			  const char *missing, struct ps_sync **out)
{
	int rc = 0;
	PGresult *r = ps_pg_run(PSPG(s), sql, q, false, "read sync", &rc);

	if (!r)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "sync_not_found", "%s", missing);
	}
	*out = sync_from_row(r, 0);
	PQclear(r);
	return 0;
}

int ps_pg_sync_get(struct ps_store *s, int64_t id, struct ps_sync **out)
{
	struct ps_pq q = { 0 };
	char msg[64];

	snprintf(msg, sizeof(msg), "sync %lld not found", (long long)id);
	ps_pq_int(&q, id);
	return sync_query_one(s, "SELECT " SYNC_COLS SYNC_FROM "WHERE s.id = $1", &q, msg, out);
}

int ps_pg_sync_active(struct ps_store *s, int64_t project_id, struct ps_sync **out)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, project_id);
	return sync_query_one(s, "SELECT " SYNC_COLS SYNC_FROM
			      "WHERE s.project_id = $1 AND s.status IN ('queued','running')", &q,
			      "no sync is queued or running", out);
}

int ps_pg_sync_last_succeeded(struct ps_store *s, int64_t project_id, int64_t at_or_before,
			      struct ps_sync **out)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, project_id);
	ps_pq_int(&q, at_or_before);
	return sync_query_one(s, "SELECT " SYNC_COLS SYNC_FROM
			      "WHERE s.project_id = $1 AND s.status = 'succeeded' "
			      "AND ($2::bigint <= 0 OR s.id <= $2) ORDER BY s.id DESC LIMIT 1", &q,
			      "no succeeded sync", out);
}

int ps_pg_sync_list(struct ps_store *s, int64_t project_id, int64_t limit, int64_t before_id,
		    struct ps_sync ***out, size_t *n)
{
	static const char sql[] = "SELECT " SYNC_COLS SYNC_FROM
		"WHERE s.project_id = $1 AND ($2::bigint <= 0 OR s.id < $2) ORDER BY s.id DESC "
		"LIMIT $3";
	struct ps_pq q = { 0 };
	struct ps_sync **v;
	PGresult *r;
	int rc = 0, count;

	ps_pq_int(&q, project_id);
	ps_pq_int(&q, before_id);
	ps_pq_id(&q, limit); /* NULL: no limit */
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "list syncs", &rc)))
		return rc;
	count = PQntuples(r);
	v = count ? ps_calloc((size_t)count, sizeof(*v)) : NULL;
	for (int i = 0; i < count; i++)
		v[i] = sync_from_row(r, i);
	PQclear(r);
	*out = v;
	*n = (size_t)count;
	return 0;
}

static int purge_unsucceeded(struct ps_store *s, int64_t project_id)
{
	static const char sql[] =
		"DELETE FROM file_versions WHERE project_id = $1 AND introduced_by IN "
		"(SELECT id FROM syncs WHERE project_id = $1 AND status IN ('failed','cancelled'))";
	struct ps_pq q = { 0 };

	int rc;

	ps_pq_int(&q, project_id);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "purge failed syncs", NULL)) < 0)
		return rc;
	return ps_pg_trees_purge(s, project_id);
}

int ps_pg_sync_create(struct ps_store *s, int64_t project_id, const char *branch,
		      const char *trigger, const struct ps_owner *owner, struct ps_sync **out)
{
	static const char ins_sql[] =
		"INSERT INTO syncs (project_id, branch, status, previous_sync_id, trigger, "
		"owner_host, owner_process, lease_until, created_at, started_at) "
		"VALUES ($1, $2, $3, (SELECT max(id) FROM syncs WHERE project_id = $1), $4, $5, $6, "
		"$7, $8, $9) RETURNING id";
	struct ps_sync *active = NULL;
	struct ps_pq q = { 0 };
	int64_t now = ps_now_ms(), id;
	PGresult *r;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = ps_pg_reap(s, project_id, NULL)) < 0)
		goto fail;
	rc = ps_pg_sync_active(s, project_id, &active);
	if (rc == 0) {
		rc = ps_store_sync_conflict(active);
		ps_sync_free(active);
		goto fail;
	}
	if (rc != PS_ENOTFOUND)
		goto fail;
	if ((rc = purge_unsucceeded(s, project_id)) < 0)
		goto fail;
	ps_pq_int(&q, project_id);
	ps_pq_text(&q, branch);
	ps_pq_text(&q, owner ? "running" : "queued");
	ps_pq_text(&q, trigger ? trigger : "cli");
	ps_pq_text(&q, owner ? owner->host : NULL);
	ps_pq_text(&q, owner ? owner->process : NULL);
	if (owner)
		ps_pq_int(&q, now + owner->lease_ms);
	else
		ps_pq_text(&q, NULL);
	ps_pq_int(&q, now);
	if (owner)
		ps_pq_int(&q, now);
	else
		ps_pq_text(&q, NULL);
	if (!(r = ps_pg_run(PSPG(s), ins_sql, &q, false, "create sync", &rc))) {
		/* Another writer appended between our check and insert (the indexes hold rule 2). */
		if (rc == PS_ECONFLICT)
			rc = ps_error_set(PS_ECONFLICT, "sync_running",
					  "another sync of this project was started at the same time");
		goto fail;
	}
	id = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	if ((rc = ps_pg_commit(s)) < 0)
		return rc;
	return out ? ps_pg_sync_get(s, id, out) : 0;
fail:
	ps_pg_rollback(s);
	return rc;
}

/*
 * Why a write of run `attempt` of sync `id` touched nothing: the sync was taken over (its
 * attempt moved on: slug "taken_over", the stale run stops without writing) or it ended.
 */
static int not_ours(struct ps_store *s, int64_t id, int64_t attempt)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, id);
	if (!(r = ps_pg_run(PSPG(s), "SELECT attempt, owner_host, owner_process, status "
			    "FROM syncs WHERE id = $1", &q, false, "read sync owner", &rc)))
		return rc;
	if (PQntuples(r) == 1 && attempt > 0 && ps_pg_col_int(r, 0, 0) != attempt) {
		rc = ps_error_set(PS_ECONFLICT, "taken_over",
				  "sync %lld was taken over by node %s (process %s) after this "
				  "node's lease ran out; this run stops without writing",
				  (long long)id, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
	} else {
		rc = ps_error_set(PS_ECONFLICT, "sync_not_running",
				  "sync %lld is no longer running (another process ended it)",
				  (long long)id);
	}
	PQclear(r);
	return rc;
}

int ps_pg_fence(struct ps_store *s, const struct ps_sync *y)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	bool ok;
	int rc = 0;

	if (y->attempt <= 0)
		return 0;
	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->attempt);
	/* FOR SHARE: a takeover (which updates the row) waits until this transaction's staged
	 * rows are committed, and then deletes them with the rest of the stale attempt's. */
	if (!(r = ps_pg_run(PSPG(s), "SELECT 1 FROM syncs WHERE id = $1 AND attempt = $2 "
			    "AND status = 'running' FOR SHARE", &q, false, "check sync owner", &rc)))
		return rc;
	ok = PQntuples(r) == 1;
	PQclear(r);
	return ok ? 0 : not_ours(s, y->id, y->attempt);
}

int ps_pg_sync_claim(struct ps_store *s, int64_t sync_id, const struct ps_owner *owner)
{
	static const char sql[] =
		"UPDATE syncs SET status = 'running', owner_host = $1, owner_process = $2, "
		"lease_until = $3, started_at = $4 WHERE id = $5 AND status = 'queued'";
	struct ps_pq q = { 0 };
	int64_t now = ps_now_ms(), changed = 0;
	int rc;

	ps_pq_text(&q, owner->host);
	ps_pq_text(&q, owner->process);
	ps_pq_int(&q, now + owner->lease_ms);
	ps_pq_int(&q, now);
	ps_pq_int(&q, sync_id);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "claim sync", &changed)) < 0)
		return rc;
	if (changed != 1)
		return ps_error_set(PS_ECONFLICT, "not_queued", "sync %lld is not queued",
				    (long long)sync_id);
	return 0;
}

int ps_pg_sync_save_progress(struct ps_store *s, const struct ps_sync *y, int64_t lease_ms)
{
	static const char sql[] =
		"UPDATE syncs SET phase = $1, commit_sha = $2, tree_sha = $3, base_sync_id = $4, "
		"added = $5, modified = $6, deleted = $7, renamed = $8, files = $9, bytes = $10, "
		"requests = $11, up_to_date = $12, skipped_large = $13, lease_until = $14, "
		"branch = $15 WHERE id = $16 AND status = 'running' AND ($17 <= 0 OR attempt = $17)";
	struct ps_pq q = { 0 };
	int64_t changed = 0;
	int rc;

	ps_pq_text(&q, ps_phase_name(y->phase));
	ps_pq_text(&q, y->commit);
	ps_pq_text(&q, y->tree);
	ps_pq_id(&q, y->base_sync_id);
	ps_pq_int(&q, y->counts.added);
	ps_pq_int(&q, y->counts.modified);
	ps_pq_int(&q, y->counts.deleted);
	ps_pq_int(&q, y->counts.renamed);
	ps_pq_int(&q, y->counts.files);
	ps_pq_int(&q, y->bytes);
	ps_pq_int(&q, y->requests);
	ps_pq_int(&q, y->up_to_date);
	ps_pq_int(&q, y->skipped_large);
	ps_pq_int(&q, ps_now_ms() + lease_ms);
	ps_pq_text(&q, y->branch);
	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->attempt);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "save sync progress", &changed)) < 0)
		return rc;
	if (changed != 1)
		return not_ours(s, y->id, y->attempt);
	return 0;
}

int ps_pg_sync_request_cancel(struct ps_store *s, int64_t id)
{
	static const char sql[] = "UPDATE syncs SET cancel_requested = 1 "
				  "WHERE id = $1 AND status IN ('queued','running')";
	struct ps_sync *y = NULL;
	struct ps_pq q = { 0 };
	int64_t changed = 0;
	int rc;

	if ((rc = ps_pg_sync_get(s, id, &y)) < 0)
		return rc;
	if (y->status == PS_SYNC_QUEUED) {
		/* Nobody runs it yet: it ends now. */
		rc = ps_pg_sync_fail(s, y, PS_SYNC_CANCELLED, "cancelled",
				     "cancelled before it started", NULL);
		ps_sync_free(y);
		return rc;
	}
	ps_sync_free(y);
	ps_pq_int(&q, id);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "cancel sync", &changed)) < 0)
		return rc;
	if (changed != 1)
		return ps_error_set(PS_ECONFLICT, "sync_ended", "sync %lld has already ended",
				    (long long)id);
	return 0;
}

int ps_pg_sync_cancel_requested(struct ps_store *s, int64_t id, bool *out)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, id);
	if (!(r = ps_pg_run(PSPG(s), "SELECT cancel_requested FROM syncs WHERE id = $1", &q, false,
			    "read cancel flag", &rc)))
		return rc;
	*out = PQntuples(r) == 1 && ps_pg_col_int(r, 0, 0) != 0;
	PQclear(r);
	return 0;
}

static int64_t last_event_seq(struct ps_store *s, int64_t sync_id)
{
	struct ps_pq q = { 0 };
	int64_t seq = 0;
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, sync_id);
	r = ps_pg_run(PSPG(s), "SELECT coalesce(max(seq), 0) FROM events WHERE sync_id = $1", &q,
		      false, "read events", &rc);
	if (r) {
		seq = ps_pg_col_int(r, 0, 0);
		PQclear(r);
	}
	return seq;
}

int ps_pg_sync_fail(struct ps_store *s, struct ps_sync *y, enum ps_sync_status status,
		    const char *code, const char *message, const struct ps_event *final_event)
{
	static const char upd[] =
		"UPDATE syncs SET status = $1, phase = $2, error_code = $3, error_message = $4, "
		"finished_at = $5, lease_until = NULL, added = 0, modified = 0, deleted = 0, "
		"renamed = 0, files = 0, skipped_large = 0 WHERE id = $6 "
		"AND status IN ('queued','running') AND ($7 <= 0 OR attempt = $7)";
	static const char del[] = "DELETE FROM file_versions WHERE introduced_by = $1";
	static const char proj[] =
		"UPDATE projects SET failures_in_row = failures_in_row + 1, last_error_code = $1, "
		"last_error_message = $2 WHERE id = $3";
	struct ps_pq q = { 0 };
	int64_t changed = 0;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	y->status = status;
	free(y->error_code);
	free(y->error_message);
	y->error_code = ps_strdup(code);
	y->error_message = ps_strdup(message);
	/* It applied nothing: what it had found before it stopped is not a change. */
	memset(&y->counts, 0, sizeof(y->counts));
	y->skipped_large = 0;
	if (!y->finished_at)
		y->finished_at = ps_now_ms();
	ps_pq_text(&q, ps_sync_status_name(status));
	ps_pq_text(&q, ps_phase_name(y->phase));
	ps_pq_text(&q, code);
	ps_pq_text(&q, message);
	ps_pq_int(&q, y->finished_at);
	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->attempt);
	if ((rc = ps_pg_exec(PSPG(s), upd, &q, "end sync", &changed)) < 0)
		goto fail;
	if (changed != 1) {
		rc = not_ours(s, y->id, y->attempt);
		if (strcmp(ps_error_slug(), "taken_over") != 0)
			rc = ps_error_set(PS_ECONFLICT, "sync_ended", "sync %lld has already ended",
					  (long long)y->id);
		goto fail;
	}
	ps_pq_int(&q, y->id);
	if ((rc = ps_pg_exec(PSPG(s), del, &q, "discard staged files", NULL)) < 0)
		goto fail;
	if ((rc = ps_pg_memory_discard(s, y->id)) < 0 ||
	    (rc = ps_pg_trees_discard(s, y->id)) < 0)
		goto fail;
	if (status == PS_SYNC_FAILED) {
		ps_pq_text(&q, code);
		ps_pq_text(&q, message);
		ps_pq_int(&q, y->project_id);
		if ((rc = ps_pg_exec(PSPG(s), proj, &q, "count failure", NULL)) < 0)
			goto fail;
	}
	if (final_event) {
		if ((rc = ps_pg_event_append(s, final_event)) < 0)
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
		if ((rc = ps_pg_event_append(s, &ev)) < 0)
			goto fail;
	}
	return ps_pg_commit(s);
fail:
	ps_pq_dispose(&q);
	ps_pg_rollback(s);
	return rc;
}

/* store.c fold_checks: returns 1 when `y` took the place of its predecessor, 0 when that one
 * is not an up-to-date scheduled check of the same head. Inside the finalize transaction; the
 * older row is locked, so a prune making it a chain's start waits for the fold or is waited
 * for (and then the fold reads its cleared previous_sync_id). */
int ps_pg_sync_fold(struct ps_store *s, struct ps_sync *y)
{
	static const char find[] =
		"SELECT p.id, p.previous_sync_id, p.base_sync_id, p.checks, "
		"coalesce(p.first_check_at, p.finished_at), p.added, p.modified, p.deleted, "
		"p.renamed "
		"FROM syncs n JOIN syncs p ON p.id = n.previous_sync_id "
		"WHERE n.id = $1 AND n.status = 'running' AND ($4 <= 0 OR n.attempt = $4) "
		"AND n.memory_rescan = 0 AND n.blob_rescan = 0 AND p.status = 'succeeded' "
		"AND p.trigger = 'schedule' AND p.up_to_date = 1 AND p.memory_rescan = 0 "
		"AND p.blob_rescan = 0 AND p.branch = n.branch "
		"AND p.commit_sha IS NOT DISTINCT FROM $2 AND p.tree_sha IS NOT DISTINCT FROM $3 "
		"AND NOT EXISTS (SELECT 1 FROM events e WHERE e.sync_id = p.id "
		"AND e.kind = 'warning') FOR UPDATE OF p";
	static const char del_events[] = "DELETE FROM events WHERE sync_id = $1";
	static const char del_sync[] = "DELETE FROM syncs WHERE id = $1";
	/* After the delete: previous_sync_id is UNIQUE, and the older row held this value. */
	static const char relink[] =
		"UPDATE syncs SET previous_sync_id = $2, base_sync_id = $3, checks = $4, "
		"first_check_at = $5 WHERE id = $1";
	/* The rows of a check that a prune made the chain's start go to the row that takes its
	 * place (sqlite.c, ps_sqlite_sync_fold, says why). */
	static const char *const move[] = {
		"UPDATE file_versions SET introduced_by = $2 WHERE introduced_by = $1",
		"UPDATE file_versions SET superseded_by = $2 WHERE project_id = $3 "
		"AND superseded_by = $1",
		"UPDATE dir_trees SET introduced_by = $2 WHERE introduced_by = $1",
		"UPDATE dir_trees SET superseded_by = $2 WHERE project_id = $3 "
		"AND superseded_by = $1",
	};
	struct ps_pq q = { 0 };
	PGresult *r;
	int64_t old, prev, base, checks, first;
	int rc = 0;

	ps_pq_int(&q, y->id);
	ps_pq_text(&q, y->commit);
	ps_pq_text(&q, y->tree);
	ps_pq_int(&q, y->attempt);
	if (!(r = ps_pg_run(PSPG(s), find, &q, false, "find the check to fold", &rc)))
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	old = ps_pg_col_int(r, 0, 0);
	prev = ps_pg_col_int(r, 0, 1);
	base = ps_pg_col_int(r, 0, 2);
	checks = ps_pg_col_int(r, 0, 3);
	first = ps_pg_col_int(r, 0, 4);
	if (!prev) {
		/* The start a prune made: the new row takes its counts too (sqlite.c). */
		y->counts.added = ps_pg_col_int(r, 0, 5);
		y->counts.modified = ps_pg_col_int(r, 0, 6);
		y->counts.deleted = ps_pg_col_int(r, 0, 7);
		y->counts.renamed = ps_pg_col_int(r, 0, 8);
	}
	PQclear(r);
	ps_pq_int(&q, old);
	if ((rc = ps_pg_exec(PSPG(s), del_events, &q, "fold checks", NULL)) < 0)
		return rc;
	ps_pq_int(&q, old);
	if ((rc = ps_pg_exec(PSPG(s), del_sync, &q, "fold checks", NULL)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(move) / sizeof(*move); i++) {
		ps_pq_int(&q, old);
		ps_pq_int(&q, y->id);
		if (i % 2)
			ps_pq_int(&q, y->project_id);
		if ((rc = ps_pg_exec(PSPG(s), move[i], &q, "fold checks", NULL)) < 0)
			return rc;
	}
	y->previous_sync_id = prev;
	y->base_sync_id = base;
	y->checks = (checks > 1 ? checks : 1) + 1;
	y->first_check_at = first;
	ps_pq_int(&q, y->id);
	ps_pq_id(&q, prev);
	ps_pq_id(&q, base);
	ps_pq_int(&q, y->checks);
	ps_pq_id(&q, first);
	if ((rc = ps_pg_exec(PSPG(s), relink, &q, "fold checks", NULL)) < 0)
		return rc;
	return 1;
}

int ps_pg_sync_finalize(struct ps_store *s, struct ps_sync *y, const struct ps_change *changes,
			size_t n, const struct ps_event *final_event)
{
	static const char upd[] =
		"UPDATE syncs SET status = 'succeeded', phase = 'finalize', commit_sha = $1, "
		"tree_sha = $2, base_sync_id = $3, added = $4, modified = $5, deleted = $6, "
		"renamed = $7, files = $8, bytes = $9, requests = $10, up_to_date = $11, "
		"skipped_large = $12, finished_at = $13, lease_until = NULL, error_code = NULL, "
		"error_message = NULL WHERE id = $14 AND status = 'running' "
		"AND ($15 <= 0 OR attempt = $15)";
	/* All superseded paths in one statement: one round trip, not one per change. Each is
	 * its directory and name (migration 0026): one probe of the path index per path. */
	static const char supersede[] =
		"UPDATE file_versions fv SET superseded_by = $1 FROM dirs d, "
		"unnest($3::bytea[], $4::bytea[]) AS x(dir, name) "
		"WHERE d.project_id = $2 AND d.path = x.dir AND fv.dir_id = d.id AND fv.name = x.name "
		"AND fv.superseded_by IS NULL AND fv.introduced_by < $1";
	static const char proj[] =
		"UPDATE projects SET last_sync_id = $1, last_commit = $2, failures_in_row = 0, "
		"last_error_code = NULL, last_error_message = NULL WHERE id = $3";
	/* Only the raise this sync rescanned for: a later one still waits. */
	static const char blobs_rescanned[] =
		"UPDATE projects SET blob_rescan = 0 WHERE id = $2 AND blob_rescan != 0 "
		"AND blob_rescan = (SELECT blob_rescan FROM syncs WHERE id = $1)";
	struct ps_pq q = { 0 };
	struct ps_buf arr, names;
	int64_t changed = 0;
	size_t npaths = 0;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if (!y->finished_at)
		y->finished_at = ps_now_ms();
	ps_pq_text(&q, y->commit);
	ps_pq_text(&q, y->tree);
	ps_pq_id(&q, y->base_sync_id);
	ps_pq_int(&q, y->counts.added);
	ps_pq_int(&q, y->counts.modified);
	ps_pq_int(&q, y->counts.deleted);
	ps_pq_int(&q, y->counts.renamed);
	ps_pq_int(&q, y->counts.files);
	ps_pq_int(&q, y->bytes);
	ps_pq_int(&q, y->requests);
	ps_pq_int(&q, y->up_to_date);
	ps_pq_int(&q, y->skipped_large);
	ps_pq_int(&q, y->finished_at);
	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->attempt);
	if ((rc = ps_pg_exec(PSPG(s), upd, &q, "finish sync", &changed)) < 0)
		goto fail;
	if (changed != 1) {
		rc = not_ours(s, y->id, y->attempt);
		goto fail;
	}
	/* The paths' directories and names as array literals of hex bytea: {"\\x6162",...}. */
	ps_buf_init(&arr, SIZE_MAX);
	ps_buf_init(&names, SIZE_MAX);
	ps_buf_puts(&arr, "{");
	ps_buf_puts(&names, "{");
	for (size_t i = 0; i < n; i++) {
		/* An added path had no version in the base snapshot: nothing to supersede. */
		if (changes[i].status == PS_CHANGE_ADDED)
			continue;
		const char *paths[2] = { changes[i].path,
					 changes[i].status == PS_CHANGE_RENAMED ? changes[i].previous_path
										 : NULL };
		for (int k = 0; k < 2 && paths[k]; k++) {
			size_t at = ps_pg_name_at(paths[k]);

			ps_pg_bytea_elem(&arr, paths[k], ps_pg_dir_len(paths[k]), npaths == 0);
			ps_pg_bytea_elem(&names, paths[k] + at, strlen(paths[k] + at), npaths == 0);
			npaths++;
		}
	}
	ps_buf_puts(&arr, "}");
	ps_buf_puts(&names, "}");
	if (npaths > 0) {
		char *text = ps_buf_take(&arr, NULL);
		char *ntext = ps_buf_take(&names, NULL);
		ps_pq_int(&q, y->id);
		ps_pq_int(&q, y->project_id);
		ps_pq_text(&q, text);
		ps_pq_text(&q, ntext);
		rc = ps_pg_exec(PSPG(s), supersede, &q, "supersede file versions", NULL);
		free(text);
		free(ntext);
		if (rc < 0)
			goto fail;
	} else {
		ps_buf_dispose(&arr);
		ps_buf_dispose(&names);
	}
	if ((rc = ps_pg_memory_finalize(s, y)) < 0 ||
	    (rc = ps_pg_trees_finalize(s, y, changes, n)) < 0)
		goto fail;
	ps_pq_int(&q, y->id);
	ps_pq_text(&q, y->commit);
	ps_pq_int(&q, y->project_id);
	if ((rc = ps_pg_exec(PSPG(s), proj, &q, "advance project", NULL)) < 0)
		goto fail;
	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->project_id);
	if ((rc = ps_pg_exec(PSPG(s), blobs_rescanned, &q, "finish blob rescan", NULL)) < 0)
		goto fail;
	y->status = PS_SYNC_SUCCEEDED;
	if (final_event && (rc = ps_pg_event_append(s, final_event)) < 0)
		goto fail;
	return ps_pg_commit(s);
fail:
	ps_pq_dispose(&q);
	ps_pg_rollback(s);
	return rc;
}

int ps_pg_reap(struct ps_store *s, int64_t project_id, int *reaped)
{
	static const char sql[] =
		"SELECT id, owner_host, owner_process, lease_until FROM syncs "
		"WHERE status = 'running' AND ($1::bigint <= 0 OR project_id = $1)";
	struct ps_pq q = { 0 };
	int64_t now = ps_now_ms();
	int64_t *dead;
	size_t ndead = 0;
	PGresult *r;
	int rc = 0, count = 0;

	ps_pq_int(&q, project_id);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "find dead syncs", &rc)))
		return rc;
	dead = ps_calloc((size_t)PQntuples(r) + 1, sizeof(*dead));
	for (int i = 0; i < PQntuples(r); i++) {
		const char *host = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
		const char *proc = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
		int64_t lease = ps_pg_col_int(r, i, 3);
		bool gone;

		/* As in the SQLite backend: on this host the process table is the truth, elsewhere
		 * only the lease can tell. */
		if (host && proc && strcmp(host, ps_hostname()) == 0)
			gone = !ps_process_alive(proc);
		else
			gone = lease > 0 && lease < now;
		if (gone)
			dead[ndead++] = ps_pg_col_int(r, i, 0);
	}
	PQclear(r);
	rc = 0;
	if (ndead > 0) {
		/* While a serve node is alive it takes these over (ps_pg_sync_takeover) and runs
		 * them to their end: marking them interrupted here would pre-empt that. */
		bool nodes = false;
		if ((rc = ps_pg_nodes_alive(s, &nodes)) < 0) {
			free(dead);
			return rc;
		}
		if (nodes)
			ndead = 0;
	}
	for (size_t i = 0; i < ndead; i++) {
		struct ps_sync *y = NULL;
		if (ps_pg_sync_get(s, dead[i], &y) < 0)
			continue;
		rc = ps_pg_sync_fail(s, y, PS_SYNC_FAILED, "interrupted",
				     "interrupted: the process running this sync stopped before it "
				     "finished", NULL);
		ps_sync_free(y);
		if (rc == 0)
			count++;
		else if (rc != PS_ECONFLICT) /* someone else reaped it first: fine */
			break;
		rc = 0;
	}
	free(dead);
	if (rc < 0)
		return rc;
	if (reaped)
		*reaped = count;
	return 0;
}

int ps_pg_sync_next_queued(struct ps_store *s, int64_t *id)
{
	int rc = 0;
	PGresult *r = ps_pg_run(PSPG(s), "SELECT min(id) FROM syncs WHERE status = 'queued'", NULL,
				false, "find queued sync", &rc);

	if (!r)
		return rc;
	if (PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "none_queued", "no sync is queued");
	}
	*id = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int ps_pg_sync_claim_next(struct ps_store *s, const struct ps_owner *owner, int64_t *id)
{
	/* SKIP LOCKED: nodes claiming at the same moment each take a different row instead of
	 * queueing behind one and then finding it claimed. The prune gate (store.h) is read by
	 * the same statement, one round trip per claim instead of two (workers claim every
	 * second on every node); its row answers whether the gate held the claim back. */
	static const char sql[] =
		"WITH gate AS (SELECT coalesce((SELECT blob_prune_until > $4 FROM prune_gate "
		"WHERE id = 1), false) AS shut), "
		"claimed AS (UPDATE syncs SET status = 'running', owner_host = $1, "
		"owner_process = $2, lease_until = $3, started_at = $4 WHERE id = (SELECT id "
		"FROM syncs WHERE status = 'queued' AND NOT (SELECT shut FROM gate) ORDER BY id "
		"LIMIT 1 FOR UPDATE SKIP LOCKED) AND status = 'queued' RETURNING id) "
		"SELECT (SELECT shut FROM gate), (SELECT id FROM claimed)";
	struct ps_pq q = { 0 };
	int64_t now = ps_now_ms();
	PGresult *r;
	int rc = 0;
	bool shut, none;

	ps_pq_text(&q, owner->host);
	ps_pq_text(&q, owner->process);
	ps_pq_int(&q, now + owner->lease_ms);
	ps_pq_int(&q, now);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "claim a queued sync", &rc)))
		return rc;
	shut = PQgetvalue(r, 0, 0)[0] == 't';
	none = PQgetisnull(r, 0, 1);
	if (!none)
		*id = ps_pg_col_int(r, 0, 1);
	PQclear(r);
	if (shut)
		return ps_error_set(PS_ENOTFOUND, "prune_gate", "blobs are being pruned");
	if (none)
		return ps_error_set(PS_ENOTFOUND, "none_queued", "no sync is queued");
	return 0;
}

int ps_pg_sync_takeover(struct ps_store *s, const struct ps_owner *owner, int64_t *id)
{
	/* A shut prune gate (store.h) holds takeovers back as it does claims: read in the pick,
	 * not by a statement of its own. */
	static const char pick[] =
		"SELECT id, owner_host, owner_process, lease_until FROM syncs "
		"WHERE status = 'running' AND NOT EXISTS (SELECT 1 FROM prune_gate WHERE id = 1 "
		"AND blob_prune_until > $1) ORDER BY id FOR UPDATE SKIP LOCKED";
	/* The new attempt starts from the beginning: what the dead one had found goes. */
	static const char own[] =
		"UPDATE syncs SET owner_host = $1, owner_process = $2, lease_until = $3, "
		"attempt = attempt + 1, commit_sha = NULL, tree_sha = NULL, base_sync_id = NULL, added = 0, modified = 0, "
		"deleted = 0, renamed = 0, files = 0, bytes = 0, requests = 0, up_to_date = 0, "
		"skipped_large = 0 WHERE id = $4";
	struct ps_pq q = { 0 };
	int64_t now = ps_now_ms(), found = 0;
	char *old_host = NULL, *old_proc = NULL;
	PGresult *r;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	ps_pq_int(&q, now);
	if (!(r = ps_pg_run(PSPG(s), pick, &q, false, "find syncs to take over", &rc)))
		goto fail;
	for (int i = 0; i < PQntuples(r) && !found; i++) {
		const char *host = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
		const char *proc = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
		int64_t lease = ps_pg_col_int(r, i, 3);
		bool gone;

		/* The test of ps_pg_reap: the process table on its host, the lease elsewhere. */
		if (host && proc && strcmp(host, ps_hostname()) == 0)
			gone = !ps_process_alive(proc);
		else
			gone = lease > 0 && lease < now;
		if (gone) {
			found = ps_pg_col_int(r, i, 0);
			old_host = ps_strdup(host ? host : "?");
			old_proc = ps_strdup(proc ? proc : "?");
		}
	}
	PQclear(r);
	if (!found) {
		ps_pg_commit(s);
		return ps_error_set(PS_ENOTFOUND, "none_to_take_over", "no sync to take over");
	}
	ps_pq_text(&q, owner->host);
	ps_pq_text(&q, owner->process);
	ps_pq_int(&q, now + owner->lease_ms);
	ps_pq_int(&q, found);
	if ((rc = ps_pg_exec(PSPG(s), own, &q, "take over sync", NULL)) < 0)
		goto fail;
	/* The dead attempt's staged rows go; the new attempt stages its own. */
	ps_pq_int(&q, found);
	if ((rc = ps_pg_exec(PSPG(s), "DELETE FROM file_versions WHERE introduced_by = $1", &q,
			     "discard staged files", NULL)) < 0 ||
	    (rc = ps_pg_memory_discard(s, found)) < 0 ||
	    (rc = ps_pg_trees_discard(s, found)) < 0)
		goto fail;
	{
		struct ps_sync *y = NULL;
		char *msg = ps_asprintf("taken over by node %s (process %s): node %s (process %s) "
					"stopped while running this sync; it runs again from the start",
					owner->host, owner->process, old_host, old_proc);
		struct ps_event ev = {
			.sync_id = found,
			.seq = last_event_seq(s, found) + 1,
			.kind = PS_EVENT_WARNING,
			.message = msg,
		};
		if (ps_pg_sync_get(s, found, &y) == 0)
			ev.phase = y->phase;
		rc = ps_pg_event_append(s, &ev);
		ps_sync_free(y);
		free(msg);
		if (rc < 0)
			goto fail;
	}
	free(old_host);
	free(old_proc);
	if ((rc = ps_pg_commit(s)) < 0)
		return rc;
	*id = found;
	return 0;
fail:
	free(old_host);
	free(old_proc);
	ps_pg_rollback(s);
	return rc;
}

int ps_pg_sync_count_by_status(struct ps_store *s, int64_t counts[PS_SYNC_CANCELLED + 1])
{
	int rc = 0;
	PGresult *r = ps_pg_run(PSPG(s), "SELECT status, count(*) FROM syncs GROUP BY status",
				NULL, false, "count syncs", &rc);

	if (!r)
		return rc;
	for (int i = 0; i <= PS_SYNC_CANCELLED; i++)
		counts[i] = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		enum ps_sync_status status;
		if (ps_sync_status_parse(PQgetvalue(r, i, 0), &status) == 0)
			counts[status] = ps_pg_col_int(r, i, 1);
	}
	PQclear(r);
	return 0;
}

/* ---- events ---- */

int ps_pg_event_append(struct ps_store *s, const struct ps_event *ev)
{
	/* The notification is delivered when the transaction commits, never before the row is
	 * visible: a watcher woken by it finds the event. */
	static const char sql[] =
		"WITH e AS (INSERT INTO events (sync_id, seq, kind, payload) "
		"VALUES ($1, $2, $3, $4) RETURNING sync_id, seq) "
		"SELECT pg_notify('projsync_events', sync_id || ':' || seq) FROM e";
	/* A run's own event: only while the sync is still at the run's attempt. FOR SHARE makes
	 * a takeover wait for this insert (and then number after it) or this insert wait for the
	 * takeover (and then find the attempt raised). */
	static const char fenced[] =
		"WITH ok AS (SELECT id FROM syncs WHERE id = $1 AND attempt = $5 FOR SHARE), "
		"e AS (INSERT INTO events (sync_id, seq, kind, payload) "
		"SELECT $1, $2, $3, $4 FROM ok RETURNING sync_id, seq) "
		"SELECT pg_notify('projsync_events', sync_id || ':' || seq) FROM e";
	struct ps_pq q = { 0 };
	json_t *j = ps_event_to_json(ev);
	char *text = json_dumps(j, JSON_COMPACT);
	int64_t stored = 0;
	int rc;

	json_decref(j);
	ps_pq_int(&q, ev->sync_id);
	ps_pq_int(&q, ev->seq);
	ps_pq_text(&q, ps_event_kind_name(ev->kind));
	ps_pq_text(&q, text);
	if (ev->attempt > 0)
		ps_pq_int(&q, ev->attempt);
	rc = ps_pg_exec(PSPG(s), ev->attempt > 0 ? fenced : sql, &q, "store event", &stored);
	free(text);
	if (rc == 0 && ev->attempt > 0 && stored != 1)
		return not_ours(s, ev->sync_id, ev->attempt);
	if (rc == PS_ECONFLICT)
		return ps_error_set(PS_ECONFLICT, "event_exists", "event %lld of sync %lld exists",
				    (long long)ev->seq, (long long)ev->sync_id);
	return rc;
}

int ps_pg_event_list(struct ps_store *s, int64_t sync_id, int64_t after_seq, int64_t limit,
		     struct ps_stored_event **out, size_t *n)
{
	static const char sql[] = "SELECT seq, kind, payload FROM events WHERE sync_id = $1 "
				  "AND seq > $2 ORDER BY seq LIMIT $3";
	struct ps_pq q = { 0 };
	struct ps_stored_event *v;
	PGresult *r;
	int rc = 0, count;

	ps_pq_int(&q, sync_id);
	ps_pq_int(&q, after_seq);
	ps_pq_id(&q, limit);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "list events", &rc)))
		return rc;
	count = PQntuples(r);
	v = count ? ps_calloc((size_t)count, sizeof(*v)) : NULL;
	for (int i = 0; i < count; i++) {
		const char *kind = PQgetvalue(r, i, 1);
		v[i].seq = ps_pg_col_int(r, i, 0);
		v[i].kind = PS_EVENT_PROGRESS;
		for (int k = PS_EVENT_QUEUED; k <= PS_EVENT_CANCELLED; k++)
			if (strcmp(kind, ps_event_kind_name((enum ps_event_kind)k)) == 0)
				v[i].kind = (enum ps_event_kind)k;
		v[i].json = ps_pg_col_text(r, i, 2);
	}
	PQclear(r);
	*out = v;
	*n = (size_t)count;
	return 0;
}

/* ---- directories (schema 26, migrations/0026_dir_ids.sql) ---- */

size_t ps_pg_name_at(const char *path)
{
	const char *slash = strrchr(path, '/');

	/* Not a leading '/': "/x" (no source writes one, but the store keeps what it is given)
	 * is the root's "/x", since the root's path '' cannot be told from an empty first
	 * component (as sqlite.c ps_sqlite_split_path). */
	return slash && slash > path ? (size_t)(slash - path) + 1 : 0;
}

size_t ps_pg_dir_len(const char *path)
{
	size_t at = ps_pg_name_at(path);

	return at ? at - 1 : 0;
}

void ps_pg_bytea_elem(struct ps_buf *arr, const void *p, size_t len, bool first)
{
	const unsigned char *c = p;

	ps_buf_puts(arr, first ? "\"\\\\x" : ",\"\\\\x");
	for (size_t i = 0; i < len; i++)
		ps_buf_printf(arr, "%02x", c[i]);
	ps_buf_puts(arr, "\"");
}

/* A directory to look up: its project, bytes, and the row of ids it came from. */
struct dir_key {
	int64_t project_id;
	const char *path;
	size_t len;
	size_t at;
};

static int cmp_dir_key(const void *a, const void *b)
{
	const struct dir_key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c;

	if (x->project_id != y->project_id)
		return x->project_id < y->project_id ? -1 : 1;
	if ((c = memcmp(x->path, y->path, n)) != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static bool is_last_dir(const struct ps_pg *g, int64_t project_id, const char *path, size_t len)
{
	return g->last_dir.path && g->last_dir.project_id == project_id && g->last_dir.len == len &&
	       memcmp(g->last_dir.path, path, len) == 0;
}

static void set_last_dir(struct ps_pg *g, int64_t project_id, const char *path, size_t len,
			 int64_t id)
{
	free(g->last_dir.path);
	g->last_dir.path = ps_strndup(path, len);
	g->last_dir.len = len;
	g->last_dir.project_id = project_id;
	g->last_dir.id = id;
}

static void forget_last_dir(struct ps_pg *g)
{
	free(g->last_dir.path);
	memset(&g->last_dir, 0, sizeof(g->last_dir));
}

int ps_pg_dir_ids(struct ps_pg *g, const int64_t *project_ids, const char *const *paths,
		  const size_t *lens, size_t n, int64_t *ids)
{
	/*
	 * The rows found are locked against the prune's delete (which skips locked rows); the
	 * missing ones inserted. A directory another transaction inserts at the same moment is
	 * in neither part (its row is not in this statement's snapshot, and ON CONFLICT skips
	 * it): the loop asks again, in a new statement that sees it.
	 */
	static const char sql[] =
		"WITH x AS (SELECT DISTINCT p, d FROM unnest($1::bigint[], $2::bytea[]) AS u(p, d)), "
		"old AS (SELECT dr.id, dr.project_id, dr.path FROM dirs dr JOIN x "
		"ON dr.project_id = x.p AND dr.path = x.d FOR KEY SHARE OF dr), "
		"ins AS (INSERT INTO dirs (project_id, path) SELECT x.p, x.d FROM x "
		"WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.project_id = x.p AND old.path = x.d) "
		"ORDER BY x.p, x.d ON CONFLICT DO NOTHING RETURNING id, project_id, path) "
		"SELECT project_id, path, id FROM old UNION ALL SELECT project_id, path, id FROM ins";
	struct dir_key *keys = ps_calloc(n + 1, sizeof(*keys));
	size_t nkeys = 0, left;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		ids[i] = 0;
		if (is_last_dir(g, project_ids[i], paths[i], lens[i]))
			ids[i] = g->last_dir.id;
		else
			keys[nkeys++] = (struct dir_key){ project_ids[i], paths[i], lens[i], i };
	}
	qsort(keys, nkeys, sizeof(*keys), cmp_dir_key);
	left = nkeys;
	for (int attempt = 0; left > 0 && rc == 0; attempt++) {
		struct ps_buf pa, da;
		struct ps_pq q = { 0 };
		PGresult *r;
		bool first = true;
		char *ptext, *dtext;

		if (attempt == 5) {
			rc = ps_error_set(PS_ESTORE, NULL, "directories could not be stored");
			break;
		}
		ps_buf_init(&pa, SIZE_MAX);
		ps_buf_init(&da, SIZE_MAX);
		ps_buf_puts(&pa, "{");
		ps_buf_puts(&da, "{");
		for (size_t k = 0; k < nkeys; k++) {
			if (ids[keys[k].at] || (k > 0 && cmp_dir_key(&keys[k - 1], &keys[k]) == 0))
				continue;
			ps_buf_printf(&pa, "%s%lld", first ? "" : ",", (long long)keys[k].project_id);
			ps_pg_bytea_elem(&da, keys[k].path, keys[k].len, first);
			first = false;
		}
		ps_buf_puts(&pa, "}");
		ps_buf_puts(&da, "}");
		ptext = ps_buf_take(&pa, NULL);
		dtext = ps_buf_take(&da, NULL);
		ps_pq_text(&q, ptext);
		ps_pq_text(&q, dtext);
		r = ps_pg_run(g, sql, &q, false, "store directories", &rc);
		free(ptext);
		free(dtext);
		if (!r)
			break;
		for (int i = 0; i < PQntuples(r); i++) {
			char *path = ps_pg_col_bytea(r, i, 1);
			struct dir_key want = { ps_pg_col_int(r, i, 0), path, strlen(path), 0 };
			struct dir_key *hit = bsearch(&want, keys, nkeys, sizeof(*keys), cmp_dir_key);

			/* Every key equal to it: bsearch finds one of them. */
			if (hit) {
				while (hit > keys && cmp_dir_key(hit - 1, &want) == 0)
					hit--;
				for (; hit < keys + nkeys && cmp_dir_key(hit, &want) == 0; hit++)
					if (!ids[hit->at]) {
						ids[hit->at] = ps_pg_col_int(r, i, 2);
						left--;
					}
			}
			free(path);
		}
		PQclear(r);
	}
	/* Only inside a transaction, which holds its row locked (forgotten at its end). */
	if (rc == 0 && n > 0 && g->tx_depth > 0)
		set_last_dir(g, project_ids[n - 1], paths[n - 1], lens[n - 1], ids[n - 1]);
	free(keys);
	return rc;
}

void ps_pg_prefix_cond(struct ps_buf *sql, struct ps_pq *q, const char *prefix)
{
	size_t len, dir_len;
	char *upper;

	if (!prefix || !*prefix)
		return;
	/* Paths with the prefix are those in [prefix, prefix with its last byte + 1). */
	upper = ps_prefix_end(prefix, strlen(prefix));
	len = upper ? strlen(upper) : 0;
	/* "src/gi": the files of "src" (those whose name starts with "gi") and of every
	 * directory whose path starts with "src/gi". */
	dir_len = ps_pg_dir_len(prefix);
	ps_pq_bytes(q, prefix, dir_len);
	ps_buf_printf(sql, "AND (d.path = $%d ", q->n);
	ps_pq_path(q, prefix);
	ps_buf_printf(sql, "OR (d.path >= $%d ", q->n);
	if (len > 0) {
		pq_add(q, upper, (int)len, 1, true); /* q owns it */
		ps_buf_printf(sql, "AND d.path < $%d", q->n);
	}
	ps_buf_printf(sql, ")) AND " FV_PATH " >= $%d ", q->n - (len > 0));
	if (len > 0)
		ps_buf_printf(sql, "AND " FV_PATH " < $%d ", q->n);
	else
		free(upper);
}

/* ---- file versions ---- */

/* Rows per multi-row INSERT: 7 parameters each, far below the protocol's 65535. */
#define STAGE_BATCH 1000

int ps_pg_files_stage(struct ps_store *s, const struct ps_sync *y,
		      const struct ps_change *changes, size_t n)
{
	struct ps_buf sql;
	struct ps_pq q = { 0 };
	size_t rows = 0;
	int rc = 0;
	int64_t *pids = ps_calloc(STAGE_BATCH, sizeof(*pids));
	int64_t *ids = ps_calloc(STAGE_BATCH, sizeof(*ids));
	const char **dirs = ps_calloc(STAGE_BATCH, sizeof(*dirs));
	size_t *lens = ps_calloc(STAGE_BATCH, sizeof(*lens));
	const struct ps_change **batch = ps_calloc(STAGE_BATCH, sizeof(*batch));

	if ((rc = ps_pg_begin(s)) < 0)
		goto out;
	if ((rc = ps_pg_fence(s, y)) < 0) {
		ps_pg_rollback(s);
		goto out;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n && changes[i].status != PS_CHANGE_DELETED) {
			pids[rows] = y->project_id;
			dirs[rows] = changes[i].path;
			lens[rows] = ps_pg_dir_len(changes[i].path);
			batch[rows++] = &changes[i];
		}
		if (rows == 0 || (rows < STAGE_BATCH && i < n))
			continue;
		/* The directories first (one statement), then the rows naming them. */
		if ((rc = ps_pg_dir_ids(PSPG(s), pids, dirs, lens, rows, ids)) < 0)
			break;
		ps_buf_init(&sql, SIZE_MAX);
		ps_buf_puts(&sql, "INSERT INTO file_versions (project_id, dir_id, name, mode, sha, "
			    "size, introduced_by) VALUES ");
		for (size_t k = 0; k < rows; k++) {
			const struct ps_change *c = batch[k];
			int b = q.n;

			ps_buf_printf(&sql, "%s($%d,$%d,$%d,$%d,ps_unhex($%d),$%d,$%d)", k ? "," : "",
				      b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7);
			ps_pq_int(&q, y->project_id);
			ps_pq_int(&q, ids[k]);
			ps_pq_path(&q, c->path + ps_pg_name_at(c->path));
			ps_pq_int(&q, c->mode);
			ps_pq_text(&q, c->sha);
			if (c->size >= 0)
				ps_pq_int(&q, c->size);
			else
				ps_pq_text(&q, NULL);
			ps_pq_int(&q, y->id);
		}
		{
			char *text = ps_buf_take(&sql, NULL);
			rc = ps_pg_exec(PSPG(s), text, &q, "stage file versions", NULL);
			free(text);
		}
		rows = 0;
		if (rc < 0)
			break;
	}
	ps_pq_dispose(&q);
	if (rc < 0)
		ps_pg_rollback(s);
	else
		rc = ps_pg_commit(s);
out:
	free(pids);
	free(ids);
	free(dirs);
	free(lens);
	free(batch);
	return rc;
}

/* Resolves `at` (0 = latest) to a succeeded sync of the project (pg_internal.h). */
int ps_pg_resolve_snapshot(struct ps_store *s, int64_t project_id, int64_t at, int64_t *out)
{
	struct ps_sync *y = NULL;
	int rc;

	if (at <= 0) {
		rc = ps_pg_sync_last_succeeded(s, project_id, 0, &y);
		if (rc == PS_ENOTFOUND)
			return ps_error_set(PS_ENOTFOUND, "no_snapshot",
					    "the project has no succeeded sync yet");
		if (rc < 0)
			return rc;
	} else {
		if ((rc = ps_pg_sync_get(s, at, &y)) < 0)
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

/* A row (path, mode, sha, size) as a file; the path is new. */
static void file_from_row(const PGresult *r, int i, struct ps_file *f)
{
	f->path = ps_pg_col_bytea(r, i, 0);
	f->mode = (uint32_t)ps_pg_col_int(r, i, 1);
	snprintf(f->sha, sizeof(f->sha), "%s", PQgetvalue(r, i, 2));
	f->size = PQgetisnull(r, i, 3) ? -1 : ps_pg_col_int(r, i, 3);
}

static int snapshot_all(struct ps_store *s, int64_t project_id, int64_t snap, const char *prefix,
			ps_file_cb cb, void *ud)
{
	/* In byte order of the full path, which is not the order of (directory, name): sorted. */
	struct ps_pq q = { 0 };
	struct ps_buf sql;
	PGresult *r;
	char *text;
	int rc = 0;

	ps_pq_int(&q, project_id);
	ps_pq_int(&q, snap);
	ps_buf_init(&sql, SIZE_MAX);
	ps_buf_puts(&sql, "SELECT " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size FROM " DIR_FILES " "
		    "WHERE d.project_id = $1 AND " VISIBLE_AT("$2") " ");
	ps_pg_prefix_cond(&sql, &q, prefix);
	ps_buf_puts(&sql, "ORDER BY 1");
	text = ps_buf_take(&sql, NULL);
	r = ps_pg_run(PSPG(s), text, &q, false, "list snapshot", &rc);
	free(text);
	if (!r)
		return rc;
	rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		struct ps_file f;
		file_from_row(r, i, &f);
		rc = cb(ud, &f);
		free(f.path);
	}
	PQclear(r);
	return rc;
}

struct page_files {
	struct ps_file *v;
	size_t n, cap;
};

static int cmp_page_file(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

/* Adds the result's files (columns from `col`: path, mode, sha, size; a NULL path is a
 * directory without a file) in [lower, upper) to pf. */
static void page_add(struct page_files *pf, const PGresult *r, int col, const char *lower,
		     const char *upper)
{
	for (int i = 0; i < PQntuples(r); i++) {
		struct ps_file f;

		if (PQgetisnull(r, i, col))
			continue;
		f.path = ps_pg_col_bytea(r, i, col);
		if (strcmp(f.path, lower) < 0 || (upper && strcmp(f.path, upper) >= 0)) {
			free(f.path);
			continue;
		}
		f.mode = (uint32_t)ps_pg_col_int(r, i, col + 1);
		snprintf(f.sha, sizeof(f.sha), "%s", PQgetvalue(r, i, col + 2));
		f.size = PQgetisnull(r, i, col + 3) ? -1 : ps_pg_col_int(r, i, col + 3);
		if (pf->n == pf->cap) {
			pf->cap = pf->cap ? pf->cap * 2 : 256;
			pf->v = ps_realloc(pf->v, pf->cap * sizeof(*pf->v));
		}
		pf->v[pf->n++] = f;
	}
}

/* One directory's visible rows from name $lo on, at most $4 (NULL: all), in name order. */
#define PAGE_DIR_FILES(lo) \
	"(SELECT fv.name, fv.mode, fv.sha, fv.size FROM file_versions fv WHERE fv.dir_id = d.id " \
	"AND fv.name >= " lo " AND " VISIBLE_AT("$2") " ORDER BY fv.name LIMIT $4) fv"

/*
 * The files in [lower, upper) (upper NULL: unbounded), at most `limit` (0: all), without
 * sorting the snapshot nor reading what lies before `lower`. A file's full path is its
 * directory's path, '/' and its name, so the directories that can hold a path >= lower are
 * those whose path is >= lower, and the ancestors of `lower`: the root and each proper prefix
 * P of it followed by a byte at or below '/' (P = "a" for "a-b/x": "a/..." sorts after it);
 * an ancestor's rows are read from lower's rest on (all of them when the byte is below '/').
 * The ancestors are read first, then the directories from `lower` on in path order, a chunk
 * at a time (8, then twice as many each time): every file not read yet is in a directory whose
 * path is past the chunk's last, so it sorts after that path, and the files read that sort at
 * or before it are final. A directory's rows are read up to the number of files still wanted
 * (its later rows cannot be among them).
 */
static int snapshot_seek(struct ps_store *s, int64_t project_id, int64_t snap,
			 const char *lower, const char *upper, int64_t limit, ps_file_cb cb,
			 void *ud)
{
	static const char anc_sql[] =
		"SELECT " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size "
		"FROM unnest($3::bytea[], $5::bytea[]) a(path, lo) "
		"JOIN dirs d ON d.project_id = $1 AND d.path = a.path "
		"CROSS JOIN LATERAL " PAGE_DIR_FILES("a.lo");
#define CHUNK_SQL(op) \
		"SELECT d.path, " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size " \
		"FROM (SELECT id, path FROM dirs WHERE project_id = $1 AND path " op " $3 " \
		"AND ($6::bytea IS NULL OR path < $6) ORDER BY path LIMIT $5) d " \
		"LEFT JOIN LATERAL " PAGE_DIR_FILES("''::bytea") " ON true ORDER BY 1"
	static const char *const chunk_sql[2] = { CHUNK_SQL(">="), CHUNK_SQL(">") };
#undef CHUNK_SQL
	struct page_files pf = { 0 };
	size_t llen = strlen(lower), done = 0, chunk = 8;
	int64_t emitted = 0;
	char *last = NULL;
	bool more = true;
	PGresult *r;
	int rc = 0;

	if (llen > 0) {
		struct ps_buf paths, los;
		struct ps_pq q = { 0 };
		char *ptext, *ltext;

		ps_buf_init(&paths, SIZE_MAX);
		ps_buf_init(&los, SIZE_MAX);
		ps_buf_puts(&paths, "{");
		ps_buf_puts(&los, "{");
		ps_pg_bytea_elem(&paths, "", 0, true);
		ps_pg_bytea_elem(&los, lower, llen, true);
		for (size_t k = 1; k < llen; k++) {
			if ((unsigned char)lower[k] > '/')
				continue;
			ps_pg_bytea_elem(&paths, lower, k, false);
			if (lower[k] == '/')
				ps_pg_bytea_elem(&los, lower + k + 1, llen - k - 1, false);
			else
				ps_pg_bytea_elem(&los, "", 0, false);
		}
		ps_buf_puts(&paths, "}");
		ps_buf_puts(&los, "}");
		ptext = ps_buf_take(&paths, NULL);
		ltext = ps_buf_take(&los, NULL);
		ps_pq_int(&q, project_id);
		ps_pq_int(&q, snap);
		ps_pq_text(&q, ptext);
		if (limit > 0)
			ps_pq_int(&q, limit);
		else
			ps_pq_text(&q, NULL);
		ps_pq_text(&q, ltext);
		r = ps_pg_run(PSPG(s), anc_sql, &q, false, "list snapshot", &rc);
		free(ptext); /* the parameters point into them */
		free(ltext);
		if (!r)
			return rc;
		page_add(&pf, r, 0, lower, upper);
		PQclear(r);
	}
	while (rc == 0 && (limit == 0 || emitted < limit)) {
		struct ps_pq q = { 0 };
		size_t dirs = 0;

		if (more) {
			ps_pq_int(&q, project_id);
			ps_pq_int(&q, snap);
			ps_pq_path(&q, last ? last : lower);
			if (limit > 0)
				ps_pq_int(&q, limit - emitted);
			else
				ps_pq_text(&q, NULL);
			ps_pq_int(&q, (int64_t)chunk);
			ps_pq_path(&q, upper);
			if (!(r = ps_pg_run(PSPG(s), chunk_sql[last != NULL], &q, false,
					    "list snapshot", &rc)))
				break;
			for (int i = 0; i < PQntuples(r); i++) {
				char *d = ps_pg_col_bytea(r, i, 0);

				if (!last || strcmp(d, last) != 0) {
					free(last);
					last = d;
					dirs++;
				} else
					free(d);
			}
			page_add(&pf, r, 1, lower, upper);
			PQclear(r);
			more = dirs == chunk;
			if (chunk < 4096)
				chunk *= 2;
		}
		/* The files read so far in order; those at or before the last directory's path
		 * are final (all of them once the directories are done). */
		if (pf.n > done)
			qsort(pf.v + done, pf.n - done, sizeof(*pf.v), cmp_page_file);
		while (done < pf.n && (limit == 0 || emitted < limit) &&
		       (!more || strcmp(pf.v[done].path, last) <= 0)) {
			rc = cb(ud, &pf.v[done]);
			done++;
			emitted++;
			if (rc != 0)
				break;
		}
		if (!more)
			break;
	}
	for (size_t k = 0; k < pf.n; k++)
		free(pf.v[k].path);
	free(pf.v);
	free(last);
	return rc;
}

int ps_pg_snapshot_page(struct ps_store *s, int64_t project_id, int64_t at, const char *prefix,
			const char *after, int64_t limit, ps_file_cb cb, void *ud)
{
	char *lower = NULL, *upper = NULL;
	int64_t snap;
	int rc;

	if ((rc = ps_pg_resolve_snapshot(s, project_id, at, &snap)) < 0)
		return rc;
	if (!after && limit == 0)
		return snapshot_all(s, project_id, snap, prefix, cb, ud);
	/* [lower, upper): paths after `after` are those at or after after + "\x01" (no path
	 * holds a NUL); with a prefix, within [prefix, its successor). */
	lower = after ? ps_asprintf("%s\x01", after) : ps_strdup("");
	if (prefix && *prefix) {
		if (strcmp(prefix, lower) > 0) {
			free(lower);
			lower = ps_strdup(prefix);
		}
		upper = ps_prefix_end(prefix, strlen(prefix));
	}
	rc = snapshot_seek(s, project_id, snap, lower, upper, limit, cb, ud);
	free(lower);
	free(upper);
	return rc;
}

int ps_pg_snapshot_file(struct ps_store *s, int64_t project_id, int64_t at, const char *path,
			struct ps_file *out)
{
	static const char sql[] =
		"SELECT " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size FROM dirs d "
		"JOIN file_versions fv ON fv.dir_id = d.id WHERE d.project_id = $1 AND d.path = $3 "
		"AND fv.name = $4 AND " VISIBLE_AT("$2");
	struct ps_pq q = { 0 };
	int64_t snap;
	PGresult *r;
	int rc = 0;

	if ((rc = ps_pg_resolve_snapshot(s, project_id, at, &snap)) < 0)
		return rc;
	ps_pq_int(&q, project_id);
	ps_pq_int(&q, snap);
	ps_pq_bytes(&q, path, ps_pg_dir_len(path));
	ps_pq_path(&q, path + ps_pg_name_at(path));
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "read file", &rc)))
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "path_not_found",
				    "'%s' is not in the snapshot of sync %lld", path, (long long)snap);
	}
	file_from_row(r, 0, out);
	PQclear(r);
	return 0;
}

struct file_list {
	struct ps_file *v;
	size_t n;
};

static int collect_files(struct ps_store *s, const char *sql, int64_t project_id, int64_t a,
			 int64_t b, struct file_list *out)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, project_id);
	ps_pq_int(&q, a);
	ps_pq_int(&q, b);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "diff snapshots", &rc)))
		return rc;
	out->n = (size_t)PQntuples(r);
	out->v = ps_calloc(out->n + 1, sizeof(*out->v));
	for (size_t i = 0; i < out->n; i++)
		file_from_row(r, (int)i, &out->v[i]);
	PQclear(r);
	return 0;
}

int ps_pg_diff(struct ps_store *s, int64_t project_id, int64_t a, int64_t b,
	       struct ps_change **out, size_t *n)
{
	/* Rows visible at a but not at b, and at b but not at a (a < b): their ids lie in (a, b]. */
	static const char old_sql[] =
		"SELECT " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size FROM file_versions fv "
		"JOIN dirs d ON d.id = fv.dir_id "
		"WHERE fv.project_id = $1 AND fv.superseded_by > $2 AND fv.superseded_by <= $3 AND "
		VISIBLE_AT("$2") " ORDER BY 1";
	static const char new_sql[] =
		"SELECT " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size FROM file_versions fv "
		"JOIN dirs d ON d.id = fv.dir_id "
		"WHERE fv.project_id = $1 AND fv.introduced_by > $2 AND fv.introduced_by <= $3 AND "
		VISIBLE_AT("$3") " ORDER BY 1";
	struct file_list olds = { 0 }, news = { 0 };
	bool swap = false;
	int64_t snap;
	int rc;

	if (a > 0 && (rc = ps_pg_resolve_snapshot(s, project_id, a, &snap)) < 0)
		return rc;
	if (b > 0 && (rc = ps_pg_resolve_snapshot(s, project_id, b, &snap)) < 0)
		return rc;
	if (a > b) {
		int64_t t = a;
		a = b;
		b = t;
		swap = true;
	}
	if (a < 0)
		a = 0;
	if ((rc = collect_files(s, old_sql, project_id, a, b, &olds)) < 0 ||
	    (rc = collect_files(s, new_sql, project_id, a, b, &news)) < 0)
		goto out;
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

struct ps_blobcodec *ps_pg_blobcodec(struct ps_store *s)
{
	return PSPG(s)->codec;
}

/* A row's pack and offset (schema 27): both NULL but for a packed row, which is all the partial
 * index blobs_pack holds (as sqlite.c bind_row). */
static void pq_pack(struct ps_pq *q, const struct ps_blob_row *row)
{
	if (row->encoding == PS_BLOB_PACKED && row->pack > 0) {
		ps_pq_int(q, row->pack);
		ps_pq_int(q, row->pack_offset);
	} else {
		ps_pq_text(q, NULL);
		ps_pq_text(q, NULL);
	}
}

int ps_pg_blob_row_put(struct ps_store *s, const char *sha, const struct ps_blob_row *row)
{
	struct ps_pq q = { 0 };

	ps_pq_text(&q, sha);
	ps_pq_int(&q, row->size);
	ps_pq_int(&q, row->encoding);
	ps_pq_text(&q, row->base[0] ? row->base : NULL);
	pq_pack(&q, row);
	ps_pq_bytes(&q, row->content, row->len);
	/* One multi-row INSERT per batch of the fetch's transaction (ps_pg_defer), not a round
	 * trip per blob. */
	return ps_pg_defer(PSPG(s), PS_PG_DEFER_BLOBS, &q);
}

int ps_pg_blob_row_replace(struct ps_store *s, const char *sha, const struct ps_blob_row *row)
{
	struct ps_pq q = { 0 };
	int64_t n = 0;
	int rc;

	/* Ids are bytea (migration 0023): what is not one is not stored (decode() would fail). */
	if (!ps_sha_valid(sha))
		return ps_error_set(PS_ENOTFOUND, "blob_not_stored", "blob %s is not stored", sha);
	ps_pq_int(&q, row->encoding);
	ps_pq_text(&q, row->base[0] ? row->base : NULL);
	pq_pack(&q, row);
	ps_pq_bytes(&q, row->content, row->len);
	ps_pq_text(&q, sha);
	if ((rc = ps_pg_exec(PSPG(s), "UPDATE blobs SET encoding = $1, base = ps_unhex($2), "
			     "pack = $3, pack_offset = $4, content = $5 WHERE sha = ps_unhex($6)",
			     &q, "rewrite blob", &n)) < 0)
		return rc;
	if (n != 1)
		return ps_error_set(PS_ENOTFOUND, "blob_not_stored", "blob %s is not stored", sha);
	return 0;
}

/* A binary-format integer column (network byte order, 2, 4 or 8 bytes). */
int64_t ps_pg_col_binary_int(const PGresult *r, int row, int col)
{
	const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
	int n = PQgetlength(r, row, col);
	uint64_t u = 0;

	for (int i = 0; i < n; i++)
		u = (u << 8) | v[i];
	if (n == 2)
		return (int16_t)u;
	if (n == 4)
		return (int32_t)u;
	return (int64_t)u;
}

int ps_pg_blob_row_get(struct ps_store *s, const char *sha, struct ps_blob_row *out)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	size_t n;
	int rc = 0;

	if (!ps_sha_valid(sha))
		return ps_error_set(PS_ENOTFOUND, "blob_not_stored", "blob %s is not stored", sha);
	ps_pq_text(&q, sha);
	/* Binary results: the content arrives as it is stored, without bytea's hex text. */
	if (!(r = ps_pg_run(PSPG(s), "SELECT encoding, size, ps_hex(base), content, pack, "
			    "pack_offset FROM blobs WHERE sha = ps_unhex($1)", &q, true, "read blob",
			    &rc)))
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "blob_not_stored", "blob %s is not stored", sha);
	}
	memset(out, 0, sizeof(*out));
	out->encoding = (int)ps_pg_col_binary_int(r, 0, 0);
	out->size = ps_pg_col_binary_int(r, 0, 1);
	if (!PQgetisnull(r, 0, 2)) {
		/* text in binary format is its bytes */
		if (PQgetlength(r, 0, 2) < PS_SHA_HEX)
			memcpy(out->base, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2));
		else
			strcpy(out->base, "?"); /* not a SHA: the decoder reports it missing */
	}
	n = (size_t)PQgetlength(r, 0, 3);
	out->content = ps_malloc(n + 1);
	if (n)
		memcpy(out->content, PQgetvalue(r, 0, 3), n);
	out->len = n;
	if (!PQgetisnull(r, 0, 4))
		out->pack = ps_pg_col_binary_int(r, 0, 4);
	if (!PQgetisnull(r, 0, 5))
		out->pack_offset = ps_pg_col_binary_int(r, 0, 5);
	PQclear(r);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ps_pg_blob_have(struct ps_store *s, const char *const *shas, size_t n, bool *have)
{
	/* One round trip per chunk, not per SHA. SHAs are hex: safe in an array literal. */
	const size_t chunk = 5000;

	for (size_t at = 0; at < n; at += chunk) {
		size_t m = n - at < chunk ? n - at : chunk;
		struct ps_pq q = { 0 };
		struct ps_buf arr;
		PGresult *r;
		char *text, **found;
		int rc = 0, nf;

		ps_buf_init(&arr, SIZE_MAX);
		ps_buf_puts(&arr, "{");
		for (size_t i = 0; i < m; i++) {
			bool hex = shas[at + i][0] != '\0';
			for (const char *c = shas[at + i]; *c; c++)
				hex = hex && ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
			/* "00" is no blob id: what is not hex matches nothing. */
			hex = hex && strlen(shas[at + i]) % 2 == 0;
			ps_buf_printf(&arr, "%s%s", i ? "," : "", hex ? shas[at + i] : "00");
		}
		ps_buf_puts(&arr, "}");
		text = ps_buf_take(&arr, NULL);
		ps_pq_text(&q, text);
		r = ps_pg_run(PSPG(s), "SELECT ps_hex(sha) FROM blobs WHERE sha = ANY(ARRAY("
			      "SELECT ps_unhex(x) FROM unnest($1::text[]) x))", &q, false,
			      "look up blobs", &rc);
		free(text);
		if (!r)
			return rc;
		nf = PQntuples(r);
		found = ps_calloc((size_t)nf + 1, sizeof(*found));
		for (int i = 0; i < nf; i++)
			found[i] = PQgetvalue(r, i, 0);
		qsort(found, (size_t)nf, sizeof(*found), cmp_str);
		for (size_t i = 0; i < m; i++) {
			const char *key = shas[at + i];
			have[at + i] = bsearch(&key, found, (size_t)nf, sizeof(*found), cmp_str) != NULL;
		}
		free(found);
		PQclear(r);
	}
	return 0;
}

/* ---- webhook deliveries ---- */

int ps_pg_webhook_delivery_add(struct ps_store *s, const char *delivery_id, const char *event)
{
	struct ps_pq q = { 0 };
	int rc;

	ps_pq_text(&q, delivery_id);
	ps_pq_text(&q, event);
	ps_pq_int(&q, ps_now_ms());
	rc = ps_pg_exec(PSPG(s), "INSERT INTO webhook_deliveries (id, event, received_at) "
			"VALUES ($1, $2, $3)", &q, "record webhook delivery", NULL);
	if (rc == PS_ECONFLICT)
		return ps_error_set(PS_ECONFLICT, "duplicate_delivery",
				    "webhook delivery %s was received before", delivery_id);
	return rc;
}

int ps_pg_snapshot_missing_blobs(struct ps_store *s, int64_t project_id, int64_t at,
				int64_t max_size, ps_file_cb cb, void *ud)
{
	static const char sql[] =
		"SELECT " FV_PATH ", fv.mode, ps_hex(fv.sha), fv.size FROM " DIR_FILES " "
		"WHERE d.project_id = $1 AND " VISIBLE_AT("$2") " "
		"AND fv.mode != 57344 AND fv.size >= 0 AND fv.size <= $3 "
		"AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha = fv.sha) "
		"ORDER BY 1";
	struct ps_pq q = { 0 };
	int64_t snap;
	PGresult *r;
	int rc = 0;

	if ((rc = ps_pg_resolve_snapshot(s, project_id, at, &snap)) < 0)
		return rc;
	ps_pq_int(&q, project_id);
	ps_pq_int(&q, snap);
	ps_pq_int(&q, max_size);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "list missing blobs", &rc)))
		return rc;
	rc = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		struct ps_file f;
		file_from_row(r, i, &f);
		rc = cb(ud, &f);
		free(f.path);
	}
	PQclear(r);
	return rc;
}

int ps_pg_project_blob_rescan(struct ps_store *s, int64_t project_id, int64_t *generation)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, project_id);
	if (!(r = ps_pg_run(PSPG(s), "SELECT blob_rescan FROM projects WHERE id = $1", &q, false,
			    "read blob rescan", &rc)))
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)project_id);
	}
	*generation = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int ps_pg_sync_blob_rescan(struct ps_store *s, int64_t sync_id, int64_t generation)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, generation);
	ps_pq_int(&q, sync_id);
	return ps_pg_exec(PSPG(s), "UPDATE syncs SET blob_rescan = $1 WHERE id = $2", &q,
			  "record blob rescan", NULL);
}

/* ---- schedule and retention ---- */

int ps_pg_project_schedule_save(struct ps_store *s, const struct ps_project *p)
{
	static const char sql[] =
		"UPDATE projects SET interval_ms = $1, next_sync_at = $2, last_check_at = $3, "
		"state = $4, paused_at = $5, paused_reason = $6, failures_in_row = $7 WHERE id = $8";
	struct ps_pq q = { 0 };
	int64_t changed = 0;
	int rc;

	ps_pq_int(&q, p->interval_ms);
	ps_pq_id(&q, p->next_sync_at);
	ps_pq_id(&q, p->last_check_at);
	ps_pq_text(&q, p->paused ? "paused" : "active");
	ps_pq_id(&q, p->paused ? p->paused_at : 0);
	ps_pq_text(&q, p->paused ? p->paused_reason : NULL);
	ps_pq_int(&q, p->failures_in_row);
	ps_pq_int(&q, p->id);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "save schedule", &changed)) < 0)
		return rc;
	if (changed == 0)
		return ps_error_set(PS_ENOTFOUND, "project_not_found", "project %lld not found",
				    (long long)p->id);
	return 0;
}

int ps_pg_schedule_pending(struct ps_store *s, int64_t now, int64_t default_max_failures,
			   bool *pending)
{
	/* The conditions of schedule_claim's pause and take, read without a lock. */
	static const char sql[] =
		"SELECT CASE WHEN EXISTS (SELECT 1 FROM projects WHERE state = 'active' "
		"AND next_sync_at IS NOT NULL AND next_sync_at <= $1) OR EXISTS (SELECT 1 FROM "
		"projects WHERE state = 'active' AND (every_ms > 0 OR every_auto != 0) AND "
		"failures_in_row > 0 AND "
		"failures_in_row >= CASE WHEN max_failures > 0 THEN max_failures ELSE $2 END) "
		"THEN 1 ELSE 0 END";
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, now);
	ps_pq_int(&q, default_max_failures > 0 ? default_max_failures : PS_SCHEDULE_MAX_FAILURES);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "look for due projects", &rc)))
		return rc;
	*pending = ps_pg_col_int(r, 0, 0) != 0;
	PQclear(r);
	return 0;
}

int ps_pg_schedule_claim(struct ps_store *s, int64_t now, int64_t default_max_failures,
			 int64_t *project_id)
{
	static const char pause[] =
		"UPDATE projects SET state = 'paused', paused_at = $1, paused_reason = "
		"'failed ' || failures_in_row || ' times in a row' || "
		"coalesce(': ' || last_error_message, '') "
		"WHERE state = 'active' AND (every_ms > 0 OR every_auto != 0) AND failures_in_row > 0 "
		"AND failures_in_row >= "
		"CASE WHEN max_failures > 0 THEN max_failures ELSE $2 END";
	/* One statement: the due row is locked (SKIP LOCKED: nodes claiming at once take
	 * different projects) and moved only if it is still due, so a due project is taken by
	 * exactly one node. */
	static const char take[] =
		"UPDATE projects SET next_sync_at = $1 + greatest(interval_ms, 10000) "
		"WHERE id = (SELECT id FROM projects WHERE state = 'active' "
		"AND next_sync_at IS NOT NULL AND next_sync_at <= $1 "
		"ORDER BY next_sync_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
		"AND next_sync_at <= $1 AND state = 'active' RETURNING id";
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	ps_pq_int(&q, now);
	ps_pq_int(&q, default_max_failures > 0 ? default_max_failures : PS_SCHEDULE_MAX_FAILURES);
	if ((rc = ps_pg_exec(PSPG(s), pause, &q, "pause failing projects", NULL)) < 0)
		goto fail;
	ps_pq_int(&q, now);
	if (!(r = ps_pg_run(PSPG(s), take, &q, false, "take a due project", &rc)))
		goto fail;
	if (PQntuples(r) == 0) {
		PQclear(r);
		if ((rc = ps_pg_commit(s)) < 0)
			return rc;
		return ps_error_set(PS_ENOTFOUND, "none_due", "no project is due");
	}
	*project_id = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return ps_pg_commit(s);
fail:
	ps_pg_rollback(s);
	return rc;
}

static int64_t pg_scalar(struct ps_store *s, const char *sql, int64_t a, int64_t b, int nparams,
			 int *rc)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int64_t v;

	if (nparams > 0)
		ps_pq_int(&q, a);
	if (nparams > 1)
		ps_pq_int(&q, b);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "prune", rc)))
		return 0;
	v = PQntuples(r) ? ps_pg_col_int(r, 0, 0) : 0;
	PQclear(r);
	return v;
}

static int pg_run2(struct ps_store *s, const char *sql, int64_t a, int64_t b, int64_t *changed)
{
	struct ps_pq q = { 0 };
	int64_t n = 0;
	int rc;

	ps_pq_int(&q, a);
	ps_pq_int(&q, b);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "prune", &n)) < 0)
		return rc;
	if (changed)
		*changed += n;
	return 0;
}

int ps_pg_prune_syncs(struct ps_store *s, int64_t project_id, int64_t start,
		      struct ps_prune_stats *out)
{
	/* The same steps as sqlite.c ps_sqlite_prune_syncs, which says why each is there. */
	static const char count_syncs[] =
		"SELECT count(*) FROM syncs WHERE project_id = $1 AND id < $2";
	/* The start is locked before anything changes: a finalize that folds it away (a
	 * scheduled check after it, sqlite.c ps_sqlite_sync_fold) holds it locked until it
	 * commits, and then this finds it gone, rather than rebasing the snapshot onto a row that
	 * is being deleted (SQLite's write lock serializes the two the same way). */
	static const char check_start[] =
		"SELECT count(*) FROM (SELECT id FROM syncs WHERE project_id = $1 AND id = $2 "
		"AND status = 'succeeded' FOR UPDATE) AS start";
	static const char del_unsucceeded[] =
		"DELETE FROM file_versions WHERE project_id = $1 AND introduced_by < $2 AND "
		"introduced_by NOT IN (SELECT id FROM syncs WHERE project_id = $1 "
		"AND status = 'succeeded')";
	static const char del_versions[] =
		"DELETE FROM file_versions WHERE project_id = $1 AND superseded_by IS NOT NULL "
		"AND superseded_by <= $2";
	static const char rebase[] =
		"UPDATE file_versions SET introduced_by = $2 WHERE project_id = $1 "
		"AND introduced_by < $2";
	/* Directory trees (migration 0009) are versioned like file versions: the same three
	 * steps keep the trees of the start and of every later snapshot. */
	static const char dt_unsucceeded[] =
		"DELETE FROM dir_trees WHERE project_id = $1 AND introduced_by < $2 AND "
		"introduced_by NOT IN (SELECT id FROM syncs WHERE project_id = $1 "
		"AND status = 'succeeded')";
	static const char dt_superseded[] =
		"DELETE FROM dir_trees WHERE project_id = $1 AND superseded_by IS NOT NULL "
		"AND superseded_by <= $2";
	static const char dt_rebase[] =
		"UPDATE dir_trees SET introduced_by = $2 WHERE project_id = $1 "
		"AND introduced_by < $2";
	static const char del_events[] =
		"DELETE FROM events WHERE sync_id IN (SELECT id FROM syncs WHERE project_id = $1 "
		"AND id < $2)";
	static const char del_syncs[] = "DELETE FROM syncs WHERE project_id = $1 AND id < $2";
	static const char new_start[] =
		"UPDATE syncs SET previous_sync_id = NULL, base_sync_id = NULL, "
		"added = (SELECT count(*) FROM file_versions WHERE project_id = $1 "
		"AND introduced_by = $2), modified = 0, deleted = 0, renamed = 0 "
		"WHERE project_id = $1 AND id = $2";
	static const char bases[] =
		"UPDATE syncs SET base_sync_id = NULL WHERE project_id = $1 AND base_sync_id < $2";
	/* The directories no row names any more (migration 0026); one a writer has just looked
	 * up and not yet named holds a lock (ps_pg_dir_ids) and stays. */
	static const char del_dirs[] =
		"DELETE FROM dirs WHERE id IN (SELECT d.id FROM dirs d WHERE d.project_id = $1 "
		"AND NOT EXISTS (SELECT 1 FROM file_versions f WHERE f.dir_id = d.id) "
		"AND NOT EXISTS (SELECT 1 FROM dir_trees t WHERE t.dir_id = d.id) "
		"FOR UPDATE SKIP LOCKED)";
	int rc = 0;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if (pg_scalar(s, check_start, project_id, start, 2, &rc) != 1) {
		if (rc == 0)
			rc = ps_error_set(PS_EINVAL, "not_a_start",
					  "sync %lld is not a succeeded sync of the project",
					  (long long)start);
		goto fail;
	}
	out->syncs += pg_scalar(s, count_syncs, project_id, start, 2, &rc);
	if (rc < 0 ||
	    (rc = pg_run2(s, del_unsucceeded, project_id, start, &out->file_versions)) < 0 ||
	    (rc = pg_run2(s, del_versions, project_id, start, &out->file_versions)) < 0 ||
	    (rc = pg_run2(s, rebase, project_id, start, NULL)) < 0 ||
	    (rc = pg_run2(s, dt_unsucceeded, project_id, start, NULL)) < 0 ||
	    (rc = pg_run2(s, dt_superseded, project_id, start, NULL)) < 0 ||
	    (rc = pg_run2(s, dt_rebase, project_id, start, NULL)) < 0 ||
	    (rc = pg_run2(s, del_events, project_id, start, &out->events)) < 0 ||
	    (rc = pg_run2(s, del_syncs, project_id, start, NULL)) < 0 ||
	    (rc = pg_run2(s, new_start, project_id, start, NULL)) < 0 ||
	    (rc = pg_run2(s, bases, project_id, start, NULL)) < 0)
		goto fail;
	{
		struct ps_pq q = { 0 };

		ps_pq_int(&q, project_id);
		if ((rc = ps_pg_exec(PSPG(s), del_dirs, &q, "prune directories", NULL)) < 0)
			goto fail;
	}
	return ps_pg_commit(s);
fail:
	ps_pg_rollback(s);
	return rc;
}

int ps_pg_prune_blobs(struct ps_store *s, struct ps_prune_stats *out)
{
	/* The lock first, then the look for running syncs: a sync that starts after the look
	 * reads the blob table only once this transaction is over (ACCESS EXCLUSIVE also holds
	 * back its blob_have), so it never counts on a blob deleted here; one that runs already
	 * may hold blobs it has not staged a version of yet, so blob pruning waits for a moment
	 * without one (see sqlite.c). */
	static const char lock[] = "LOCK TABLE blobs IN ACCESS EXCLUSIVE MODE";
	static const char running[] = "SELECT count(*) FROM syncs WHERE status = 'running'";
	static const char any_unreferenced[] =
		"SELECT count(*) FROM (SELECT 1 FROM blobs b WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = b.sha) LIMIT 1) x";
	/* The bytes freed are the stored (encoded) ones: octet_length reads the TOAST pointer's
	 * size, not the content. */
	static const char del[] =
		"WITH gone AS (DELETE FROM blobs b WHERE NOT EXISTS "
		"(SELECT 1 FROM file_versions f WHERE f.sha = b.sha) RETURNING octet_length(content) AS n) "
		"SELECT count(*), coalesce(sum(n), 0) FROM gone";
	/* Kept deltas whose base goes: rewritten plain before the delete (blobs.c). */
	static const char orphans[] =
		"SELECT ps_hex(sha) FROM blobs b WHERE base IS NOT NULL AND "
		"EXISTS (SELECT 1 FROM file_versions f WHERE f.sha = b.sha) AND "
		"NOT EXISTS (SELECT 1 FROM file_versions f WHERE f.sha = b.base)";
	struct ps_pq none = { 0 };
	struct ps_strv keep = { 0 };
	PGresult *r;
	int rc = 0;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = ps_pg_exec(PSPG(s), lock, &none, "lock blobs", NULL)) < 0)
		goto fail;
	if (pg_scalar(s, running, 0, 0, 0, &rc) > 0) {
		/* Skipped only if there is something to prune: the server holds syncs back
		 * for a skipped prune (server/scheduler.c, the prune gate). */
		out->blobs_skipped = rc == 0 && pg_scalar(s, any_unreferenced, 0, 0, 0, &rc) > 0;
		return rc < 0 ? (ps_pg_rollback(s), rc) : ps_pg_commit(s);
	}
	if (rc < 0)
		goto fail;
	if (!(r = ps_pg_run(PSPG(s), orphans, NULL, false, "find deltas whose base goes", &rc)))
		goto fail;
	for (int i = 0; i < PQntuples(r); i++)
		ps_strv_push(&keep, PQgetvalue(r, i, 0));
	PQclear(r);
	if ((rc = ps_store_blobs_make_plain(s, keep.v, keep.n, out)) < 0)
		goto fail;
	/* The code index goes with its blobs. */
	if ((rc = ps_pg_exec(PSPG(s), "DELETE FROM code_blobs c WHERE NOT EXISTS "
			     "(SELECT 1 FROM file_versions f WHERE f.sha = c.sha)", &none,
			     "prune the code index", NULL)) < 0)
		goto fail;
	/* Their postings stay until ps_pg_compact merges them away, after this transaction: a
	 * merge of the whole index under the blobs lock would hold back every sync meanwhile. A
	 * posting whose document row is gone matches nothing (ids come from a sequence). */
	if (!(r = ps_pg_run(PSPG(s), del, NULL, false, "prune blobs", &rc)))
		goto fail;
	out->blobs += ps_pg_col_int(r, 0, 0);
	out->blob_bytes += ps_pg_col_int(r, 0, 1);
	PQclear(r);
	/* A packed blob's row holds no bytes (schema 27): its pack's space comes back when the
	 * pack is deleted or rewritten without it, in this transaction, under the same lock
	 * (blob_packs changes only with blobs rows). */
	if ((rc = ps_store_blob_packs_tidy(s, out)) < 0)
		goto fail;
	ps_strv_dispose(&keep);
	return ps_pg_commit(s);
fail:
	ps_strv_dispose(&keep);
	ps_pg_rollback(s);
	return rc;
}

int ps_pg_prune_gate_set(struct ps_store *s, int64_t until, int64_t only_if)
{
	return pg_run2(s, "UPDATE prune_gate SET blob_prune_until = $1 WHERE id = 1 AND "
		       "($2::bigint < 0 OR blob_prune_until = $2)", until, only_if, NULL);
}

int ps_pg_prune_gate_get(struct ps_store *s, int64_t *until)
{
	int rc = 0;

	*until = pg_scalar(s, "SELECT blob_prune_until FROM prune_gate WHERE id = 1", 0, 0, 0, &rc);
	return rc;
}

int ps_pg_compact(struct ps_store *s)
{
	int rc;

	if (PSPG(s)->tx_depth > 0)
		return 0; /* a dry run: nothing was freed */
	/* The code index's postings of pruned blobs, when most of what it holds is such
	 * (pg_code.c), in a transaction of its own: its merge locks only the segments it takes. */
	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = ps_pg_code_compact(PSPG(s))) < 0) {
		ps_pg_rollback(s);
		return rc;
	}
	if ((rc = ps_pg_commit(s)) < 0)
		return rc;
	/* Plain VACUUM makes the space reusable (and returns trailing pages); VACUUM FULL would
	 * lock the tables for the whole rewrite, too much for a server that keeps syncing. The
	 * packs (schema 27) the prune deleted or rewrote free their space in blob_packs. */
	return exec_simple(PSPG(s), "VACUUM blobs, blob_packs", "vacuum");
}

/* ---- what the store costs ---- */

int ps_pg_stats(struct ps_store *s, int64_t project_id, struct ps_store_stats *out)
{
	/* The same figures as sqlite_blobs.c ps_sqlite_stats, from sizes only: octet_length of
	 * a TOASTed value reads its pointer, not its content. */
	static const char all_syncs[] =
		"SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), "
		"(SELECT count(*) FROM projects), (SELECT count(*) FROM file_versions) FROM syncs";
	static const char one_syncs[] =
		"SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), 1, "
		"(SELECT count(*) FROM " DIR_FILES " WHERE d.project_id = $1) FROM syncs "
		"WHERE project_id = $1";
	/* Packs (schema 27): the whole store counts every pack whole; a project counts, for each
	 * of its packed blobs, its share of its pack's stored bytes by raw size (a packed row's
	 * own content is empty). */
	static const char all_blobs[] =
		"SELECT count(*), count(*) FILTER (WHERE encoding <> 0), coalesce(sum(size), 0), "
		"coalesce(sum(octet_length(content)), 0) + "
		"(SELECT coalesce(sum(octet_length(p.content)), 0) FROM blob_packs p), "
		"count(*) FILTER (WHERE encoding = 2), count(*) FILTER (WHERE encoding = 3), "
		"(SELECT count(*) FROM blob_packs) FROM blobs";
	static const char one_blobs[] =
		"SELECT count(*), count(*) FILTER (WHERE b.encoding <> 0), coalesce(sum(b.size), 0), "
		"coalesce(sum(octet_length(b.content)), 0) + coalesce(sum(b.size * "
		"octet_length(p.content) / nullif(p.size, 0)), 0), "
		"count(*) FILTER (WHERE b.encoding = 2), count(*) FILTER (WHERE b.encoding = 3), 0 "
		"FROM blobs b LEFT JOIN blob_packs p ON p.id = b.pack AND b.encoding = 3 "
		"WHERE b.sha IN (SELECT fv.sha FROM " DIR_FILES " WHERE d.project_id = $1)";
	/* Every table of the schema projsync's tables are in, with its indexes and TOAST. */
	static const char disk[] =
		"SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
		"JOIN pg_namespace n ON n.oid = c.relnamespace "
		"WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname = current_schema()";
	struct ps_store_stats st = { 0 };
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	if (project_id) {
		struct ps_project *p = NULL;
		if ((rc = ps_pg_project_get_by_id(s, project_id, &p)) < 0)
			return rc;
		ps_project_free(p);
		ps_pq_int(&q, project_id);
	}
	if (!(r = ps_pg_run(PSPG(s), project_id ? one_syncs : all_syncs, &q, false, "count syncs",
			    &rc)))
		return rc;
	st.syncs = ps_pg_col_int(r, 0, 0);
	st.syncs_succeeded = ps_pg_col_int(r, 0, 1);
	st.projects = ps_pg_col_int(r, 0, 2);
	st.file_versions = ps_pg_col_int(r, 0, 3);
	PQclear(r);
	memset(&q, 0, sizeof(q));
	if (project_id)
		ps_pq_int(&q, project_id);
	if (!(r = ps_pg_run(PSPG(s), project_id ? one_blobs : all_blobs, &q, false, "count blobs",
			    &rc)))
		return rc;
	st.blobs = ps_pg_col_int(r, 0, 0);
	st.blobs_compressed = ps_pg_col_int(r, 0, 1);
	st.raw_bytes = ps_pg_col_int(r, 0, 2);
	st.stored_bytes = ps_pg_col_int(r, 0, 3);
	st.blobs_delta = ps_pg_col_int(r, 0, 4);
	st.blobs_packed = ps_pg_col_int(r, 0, 5);
	st.packs = ps_pg_col_int(r, 0, 6);
	PQclear(r);
	if (!project_id) {
		if (!(r = ps_pg_run(PSPG(s), disk, NULL, false, "measure the store", &rc)))
			return rc;
		st.disk_bytes = ps_pg_col_int(r, 0, 0);
		PQclear(r);
	}
	/* unconverted_blobs stays 0: rows written before schema 10 stay raw (encoding 0) and
	 * are read as they are; nothing waits for a conversion. */
	*out = st;
	return 0;
}
