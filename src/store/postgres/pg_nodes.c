/*
 * Several nodes on one PostgreSQL database: which `projsync serve` processes are alive (the
 * nodes table, a row per node renewed every second), and the notifications of stored events
 * (LISTEN projsync_events) that feed the SSE hub of every node.
 */
#include "store/postgres/pg_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "util/util.h"

int ps_pg_node_beat(struct ps_store *s, const struct ps_owner *me)
{
	static const char sql[] =
		"INSERT INTO nodes (host, process, started_at, seen_at, lease_ms) "
		"VALUES ($1, $2, $3, $3, $4) ON CONFLICT (host, process) "
		"DO UPDATE SET seen_at = EXCLUDED.seen_at, lease_ms = EXCLUDED.lease_ms";
	/* Rows of nodes that stopped without leaving (killed) go once they are long expired. */
	static const char tidy[] = "DELETE FROM nodes WHERE seen_at + 10 * lease_ms < $1";
	struct ps_pq q = { 0 };
	int64_t now = ps_now_ms();
	int rc;

	ps_pq_text(&q, me->host);
	ps_pq_text(&q, me->process);
	ps_pq_int(&q, now);
	ps_pq_int(&q, me->lease_ms);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "record node", NULL)) < 0)
		return rc;
	ps_pq_int(&q, now);
	return ps_pg_exec(PSPG(s), tidy, &q, "forget stopped nodes", NULL);
}

int ps_pg_node_leave(struct ps_store *s, const struct ps_owner *me)
{
	struct ps_pq q = { 0 };

	ps_pq_text(&q, me->host);
	ps_pq_text(&q, me->process);
	return ps_pg_exec(PSPG(s), "DELETE FROM nodes WHERE host = $1 AND process = $2", &q,
			  "remove node", NULL);
}

int ps_pg_nodes_alive(struct ps_store *s, bool *any)
{
	struct ps_pq q = { 0 };
	int64_t now = ps_now_ms();
	PGresult *r;
	int rc = 0;

	*any = false;
	ps_pq_int(&q, now);
	if (!(r = ps_pg_run(PSPG(s), "SELECT host, process FROM nodes WHERE seen_at + lease_ms >= $1",
			    &q, false, "find live nodes", &rc)))
		return rc;
	for (int i = 0; i < PQntuples(r) && !*any; i++) {
		/* On this host the process table is the truth (a node killed a moment ago has a
		 * fresh row but no process); elsewhere the row's renewal. */
		if (strcmp(PQgetvalue(r, i, 0), ps_hostname()) == 0)
			*any = ps_process_alive(PQgetvalue(r, i, 1));
		else
			*any = true;
	}
	PQclear(r);
	return 0;
}

/* ---- notifications ---- */

static int listen_now(struct ps_pg *g)
{
	PGresult *r = PQexec(g->conn, "LISTEN projsync_events");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	if (!ok)
		return ps_error_set(PS_ESTORE, "store", "store %s: cannot listen for events: %s",
				    g->where, PQerrorMessage(g->conn));
	g->listening = true;
	return 0;
}

int ps_pg_listen(struct ps_store *s)
{
	return listen_now(PSPG(s));
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Moves what libpq has received into ids (each sync once). */
static void collect(struct ps_pg *g, int64_t *ids, size_t max, size_t *n)
{
	PGnotify *nt;

	while ((nt = PQnotifies(g->conn))) {
		int64_t id = strtoll(nt->extra, NULL, 10);
		bool seen = false;
		for (size_t i = 0; i < *n && !seen; i++)
			seen = ids[i] == id;
		if (!seen && id > 0 && *n < max)
			ids[(*n)++] = id;
		PQfreemem(nt);
	}
}

int ps_pg_wait_events(struct ps_store *s, int timeout_ms, int64_t *ids, size_t max, size_t *n,
		      bool *lost)
{
	struct ps_pg *g = PSPG(s);
	struct pollfd pfd;

	*n = 0;
	*lost = false;
	if (PQstatus(g->conn) != CONNECTION_OK || !g->listening) {
		/* The database went away (restarted, network): try again; what was notified
		 * meanwhile is lost, so the caller looks at everything once. */
		g->listening = false;
		PQreset(g->conn);
		if (PQstatus(g->conn) != CONNECTION_OK || listen_now(g) < 0) {
			sleep_ms(timeout_ms);
			return ps_error_set(PS_ESTORE, "store_unavailable",
					    "store %s: the notification connection is down",
					    g->where);
		}
		*lost = true;
	}
	collect(g, ids, max, n);
	if (*n)
		return 0;
	pfd.fd = PQsocket(g->conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0 || poll(&pfd, 1, timeout_ms) < 0) {
		if (errno == EINTR)
			return 0;
		g->listening = false;
		return ps_error_set(PS_ESTORE, "store_unavailable",
				    "store %s: the notification connection is down", g->where);
	}
	if (pfd.revents && !PQconsumeInput(g->conn)) {
		g->listening = false;
		return ps_error_set(PS_ESTORE, "store_unavailable",
				    "store %s: the notification connection was lost", g->where);
	}
	collect(g, ids, max, n);
	return 0;
}
