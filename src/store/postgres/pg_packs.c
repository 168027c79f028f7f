/*
 * Packs of small blobs in PostgreSQL (table blob_packs, schema 27,
 * migrations/0027_blob_packs.sql): the rows blobs.c writes, reads and tidies (store/backend.h
 * says what each op does), the same rows and answers as src/store/sqlite/sqlite_blobs.c's.
 * Every op runs in the caller's transaction.
 */
#include "store/store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres/pg_internal.h"
#include "util/error.h"

int ps_pg_blob_pack_put(struct ps_store *s, const struct ps_blob_pack_row *row, int64_t *id)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, row->size);
	ps_pq_bytes(&q, row->content, row->len);
	/* Sent at once, not deferred (ps_pg_defer): the members' rows need the id. They may wait
	 * in the deferred INSERT after it; the foreign key is checked at commit. */
	if (!(r = ps_pg_run(PSPG(s), "INSERT INTO blob_packs (size, content) VALUES ($1, $2) "
			    "RETURNING id", &q, false, "store a blob pack", &rc)))
		return rc;
	*id = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int ps_pg_blob_pack_get(struct ps_store *s, int64_t id, struct ps_blob_pack_row *out)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	size_t n;
	int rc = 0;

	ps_pq_int(&q, id);
	/* Binary results: the frame arrives as it is stored, without bytea's hex text. */
	if (!(r = ps_pg_run(PSPG(s), "SELECT size, content FROM blob_packs WHERE id = $1", &q,
			    true, "read a blob pack", &rc)))
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "blob_pack_missing", "blob pack %lld is not stored",
				    (long long)id);
	}
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->size = ps_pg_col_binary_int(r, 0, 0);
	n = (size_t)PQgetlength(r, 0, 1);
	out->content = ps_malloc(n + 1);
	if (n)
		memcpy(out->content, PQgetvalue(r, 0, 1), n);
	out->len = n;
	PQclear(r);
	return 0;
}

int ps_pg_blob_pack_members(struct ps_store *s, int64_t id, struct ps_strv *shas)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, id);
	/* The partial index blobs_pack finds them (migration 0027). */
	if (!(r = ps_pg_run(PSPG(s), "SELECT ps_hex(sha) FROM blobs WHERE pack = $1 "
			    "ORDER BY pack_offset, sha", &q, false, "list a blob pack's members", &rc)))
		return rc;
	for (int i = 0; i < PQntuples(r); i++)
		ps_strv_push(shas, PQgetvalue(r, i, 0));
	PQclear(r);
	return 0;
}

int ps_pg_blob_packs_sparse(struct ps_store *s, int64_t **ids, size_t *n)
{
	/* One probe of the partial index blobs_pack per pack (migration 0027): a pack's members'
	 * sizes added up, none (a pack whose members all went) counting 0. "Less than half" in
	 * integers without rounding: twice the sum below the pack's size. */
	static const char sql[] =
		"SELECT p.id FROM blob_packs p WHERE 2 * coalesce((SELECT sum(b.size) FROM blobs b "
		"WHERE b.pack = p.id), 0) < p.size ORDER BY p.id";
	PGresult *r;
	int rc = 0, rows;

	*ids = NULL;
	*n = 0;
	if (!(r = ps_pg_run(PSPG(s), sql, NULL, false, "find sparse blob packs", &rc)))
		return rc;
	rows = PQntuples(r);
	if (rows > 0) {
		*ids = ps_calloc((size_t)rows, sizeof(**ids));
		for (int i = 0; i < rows; i++)
			(*ids)[i] = ps_pg_col_int(r, i, 0);
		*n = (size_t)rows;
	}
	PQclear(r);
	return 0;
}

int ps_pg_blob_pack_delete(struct ps_store *s, int64_t id)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, id);
	return ps_pg_exec(PSPG(s), "DELETE FROM blob_packs WHERE id = $1", &q, "delete a blob pack",
			  NULL);
}

int ps_pg_blobs_unpacked(struct ps_store *s, int64_t max_size, struct ps_strv *shas)
{
	/* As SQLite's (sqlite_blobs.c): in the order of the first version naming each blob,
	 * found through file_versions_sha. */
	static const char sql[] =
		"SELECT ps_hex(b.sha), (SELECT min(f.id) FROM file_versions f WHERE f.sha = b.sha) "
		"AS first FROM blobs b WHERE b.encoding IN (0, 1) AND b.pack IS NULL AND "
		"b.size BETWEEN 1 AND $1 ORDER BY first NULLS LAST, b.sha";
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, max_size);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "list the blobs to pack", &rc)))
		return rc;
	for (int i = 0; i < PQntuples(r); i++)
		ps_strv_push(shas, PQgetvalue(r, i, 0));
	PQclear(r);
	return 0;
}

int ps_pg_blob_packs_lock(struct ps_store *s)
{
	/* Read committed: without it, two runs both read a row as plain, and the second's
	 * UPDATE, let through when the first commits, packs it again (the first's pack then holds
	 * a dead copy, and both count it). The key is "pakexist" in ASCII; it ends with the
	 * transaction, and nothing else takes it, so syncs and readers go on. */
	return ps_pg_exec(PSPG(s), "SELECT pg_advisory_xact_lock(8097871688544908148)", NULL,
			  "wait for another store pack", NULL);
}
