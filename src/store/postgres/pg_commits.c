/*
 * The commits of syncs in PostgreSQL (migration 0011): the rules of src/store/sqlite/sqlite_commits.c;
 * the list goes in multi-row INSERTs.
 */
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_internal.h"
#include "util/error.h"

/* Rows per multi-row INSERT: 12 parameters each. */
#define PUT_BATCH 250

int ps_pg_sync_commits_put(struct ps_store *s, const struct ps_sync *y, const struct ps_commit *v,
			   size_t n)
{
	static const char head[] =
		"UPDATE syncs SET head_subject = $2, head_author_name = $3, head_author_email = $4, "
		"head_author_date = $5, head_committer_name = $6, head_committer_email = $7, "
		"head_committer_date = $8, commit_count = $9, commits_truncated = $10 WHERE id = $1";
	const struct ps_commit *h = y->head_commit;
	struct ps_pq q = { 0 };
	struct ps_buf sql;
	size_t rows = 0;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	ps_pq_int(&q, y->id);
	ps_pq_text(&q, h ? (h->subject ? h->subject : "") : NULL);
	ps_pq_text(&q, h ? h->author.name : NULL);
	ps_pq_text(&q, h ? h->author.email : NULL);
	if (h)
		ps_pq_int(&q, h->author.date);
	else
		ps_pq_text(&q, NULL);
	ps_pq_text(&q, h ? h->committer.name : NULL);
	ps_pq_text(&q, h ? h->committer.email : NULL);
	if (h)
		ps_pq_int(&q, h->committer.date);
	else
		ps_pq_text(&q, NULL);
	if (y->commit_count >= 0)
		ps_pq_int(&q, y->commit_count);
	else
		ps_pq_text(&q, NULL);
	ps_pq_int(&q, y->commits_truncated ? 1 : 0);
	if ((rc = ps_pg_exec(PSPG(s), head, &q, "record head commit", NULL)) < 0)
		goto fail;
	memset(&q, 0, sizeof(q));
	ps_buf_init(&sql, SIZE_MAX);
	for (size_t i = 0; i <= n; i++) {
		if (i < n) {
			const struct ps_commit *c = &v[i];
			int b = q.n;
			if (rows == 0)
				ps_buf_puts(&sql, "INSERT INTO sync_commits (sync_id, position, sha, "
					    "parents, author_name, author_email, author_date, "
					    "committer_name, committer_email, committer_date, subject, "
					    "message) VALUES ");
			ps_buf_printf(&sql, "%s(", rows ? "," : "");
			for (int k = 1; k <= 12; k++)
				ps_buf_printf(&sql, "%s$%d", k > 1 ? "," : "", b + k);
			ps_buf_puts(&sql, ")");
			ps_pq_int(&q, y->id);
			ps_pq_int(&q, (int64_t)i);
			ps_pq_text(&q, c->sha);
			ps_pq_text(&q, c->parents ? c->parents : "");
			ps_pq_text(&q, c->author.name ? c->author.name : "");
			ps_pq_text(&q, c->author.email ? c->author.email : "");
			ps_pq_int(&q, c->author.date);
			ps_pq_text(&q, c->committer.name ? c->committer.name : "");
			ps_pq_text(&q, c->committer.email ? c->committer.email : "");
			ps_pq_int(&q, c->committer.date);
			ps_pq_text(&q, c->subject ? c->subject : "");
			ps_pq_text(&q, c->message ? c->message : "");
			rows++;
		}
		if (rows > 0 && (rows == PUT_BATCH || i == n)) {
			char *text = ps_buf_take(&sql, NULL);
			rc = ps_pg_exec(PSPG(s), text, &q, "record commits", NULL);
			free(text);
			memset(&q, 0, sizeof(q));
			ps_buf_init(&sql, SIZE_MAX);
			rows = 0;
			if (rc < 0)
				break;
		}
	}
	ps_buf_dispose(&sql);
	ps_pq_dispose(&q);
	if (rc < 0)
		goto fail;
	return ps_pg_commit(s);
fail:
	ps_pg_rollback(s);
	return rc;
}

int ps_pg_sync_commits(struct ps_store *s, int64_t sync_id, int64_t limit, struct ps_commit **out,
		       size_t *n)
{
	static const char sql[] =
		"SELECT sha, parents, author_name, author_email, author_date, committer_name, "
		"committer_email, committer_date, subject, message FROM sync_commits "
		"WHERE sync_id = $1 ORDER BY position LIMIT $2";
	struct ps_pq q = { 0 };
	struct ps_commit *v = NULL;
	PGresult *r;
	int rc = 0, rows;

	ps_pq_int(&q, sync_id);
	ps_pq_int(&q, limit > 0 ? limit : INT64_MAX);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "list commits", &rc)))
		return rc;
	rows = PQntuples(r);
	if (rows > 0)
		v = ps_calloc((size_t)rows, sizeof(*v));
	for (int i = 0; i < rows; i++) {
		struct ps_commit *c = &v[i];
		snprintf(c->sha, sizeof(c->sha), "%s", PQgetvalue(r, i, 0));
		c->parents = ps_pg_col_text(r, i, 1);
		c->author.name = ps_pg_col_text(r, i, 2);
		c->author.email = ps_pg_col_text(r, i, 3);
		c->author.date = ps_pg_col_int(r, i, 4);
		c->committer.name = ps_pg_col_text(r, i, 5);
		c->committer.email = ps_pg_col_text(r, i, 6);
		c->committer.date = ps_pg_col_int(r, i, 7);
		c->subject = ps_pg_col_text(r, i, 8);
		c->message = ps_pg_col_text(r, i, 9);
	}
	PQclear(r);
	*out = v;
	*n = (size_t)rows;
	return 0;
}
