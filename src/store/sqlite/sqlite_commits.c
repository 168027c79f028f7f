/*
 * The commits of syncs in SQLite (migration 0011): the head commit on the sync's row, the list
 * in sync_commits. Written once, in the transaction that finalizes the sync; removed with the
 * sync (ON DELETE CASCADE: pruning and project removal delete syncs, never their commits alone).
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"

int ps_sqlite_sync_commits_put(struct ps_store *s, const struct ps_sync *y,
			       const struct ps_commit *v, size_t n)
{
	static const char head[] =
		"UPDATE syncs SET head_subject = ?2, head_author_name = ?3, head_author_email = ?4, "
		"head_author_date = ?5, head_committer_name = ?6, head_committer_email = ?7, "
		"head_committer_date = ?8, commit_count = ?9, commits_truncated = ?10 WHERE id = ?1";
	static const char ins[] =
		"INSERT INTO sync_commits (sync_id, position, sha, parents, author_name, "
		"author_email, author_date, committer_name, committer_email, committer_date, "
		"subject, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	const struct ps_commit *h = y->head_commit;
	sqlite3_stmt *st;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, head)))
		goto fail_store;
	sqlite3_bind_int64(st, 1, y->id);
	ps_sqlite_bind_text(st, 2, h ? (h->subject ? h->subject : "") : NULL);
	ps_sqlite_bind_text(st, 3, h ? h->author.name : NULL);
	ps_sqlite_bind_text(st, 4, h ? h->author.email : NULL);
	if (h)
		sqlite3_bind_int64(st, 5, h->author.date);
	ps_sqlite_bind_text(st, 6, h ? h->committer.name : NULL);
	ps_sqlite_bind_text(st, 7, h ? h->committer.email : NULL);
	if (h)
		sqlite3_bind_int64(st, 8, h->committer.date);
	if (y->commit_count >= 0)
		sqlite3_bind_int64(st, 9, y->commit_count);
	sqlite3_bind_int(st, 10, y->commits_truncated);
	if ((rc = ps_sqlite_step_done(s, st, "record head commit")) < 0)
		goto fail;
	if (!(st = ps_sqlite_stmt(s, ins)))
		goto fail_store;
	for (size_t i = 0; i < n; i++) {
		const struct ps_commit *c = &v[i];
		sqlite3_bind_int64(st, 1, y->id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		ps_sqlite_bind_text(st, 3, c->sha);
		ps_sqlite_bind_text(st, 4, c->parents ? c->parents : "");
		ps_sqlite_bind_text(st, 5, c->author.name ? c->author.name : "");
		ps_sqlite_bind_text(st, 6, c->author.email ? c->author.email : "");
		sqlite3_bind_int64(st, 7, c->author.date);
		ps_sqlite_bind_text(st, 8, c->committer.name ? c->committer.name : "");
		ps_sqlite_bind_text(st, 9, c->committer.email ? c->committer.email : "");
		sqlite3_bind_int64(st, 10, c->committer.date);
		ps_sqlite_bind_text(st, 11, c->subject ? c->subject : "");
		ps_sqlite_bind_text(st, 12, c->message ? c->message : "");
		if ((rc = ps_sqlite_step_done(s, st, "record commits")) < 0)
			goto fail;
	}
	return ps_store_commit(s);
fail_store:
	rc = PS_ESTORE;
fail:
	ps_store_rollback(s);
	return rc;
}

int ps_sqlite_sync_commits(struct ps_store *s, int64_t sync_id, int64_t limit,
			   struct ps_commit **out, size_t *n)
{
	static const char sql[] =
		"SELECT sha, parents, author_name, author_email, author_date, committer_name, "
		"committer_email, committer_date, subject, message FROM sync_commits "
		"WHERE sync_id = ?1 ORDER BY position LIMIT ?2";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	struct ps_commit *v = NULL;
	size_t count = 0, cap = 0;
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, sync_id);
	sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ps_commit *c;
		const unsigned char *sha = sqlite3_column_text(st, 0);

		if (count == cap) {
			cap = cap ? cap * 2 : 32;
			v = ps_realloc(v, cap * sizeof(*v));
		}
		c = &v[count++];
		memset(c, 0, sizeof(*c));
		snprintf(c->sha, sizeof(c->sha), "%s", sha ? (const char *)sha : "");
		c->parents = ps_sqlite_col_text(st, 1);
		c->author.name = ps_sqlite_col_text(st, 2);
		c->author.email = ps_sqlite_col_text(st, 3);
		c->author.date = sqlite3_column_int64(st, 4);
		c->committer.name = ps_sqlite_col_text(st, 5);
		c->committer.email = ps_sqlite_col_text(st, 6);
		c->committer.date = sqlite3_column_int64(st, 7);
		c->subject = ps_sqlite_col_text(st, 8);
		c->message = ps_sqlite_col_text(st, 9);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ps_commits_free(v, count);
		return ps_sqlite_error(s, "list commits");
	}
	*out = v;
	*n = count;
	return 0;
}
