/*
 * Memory entries in the PostgreSQL backend (store.h, "memory entries"; the life of a row in
 * src/store/sqlite/migrations/0002_memory.sql, the PostgreSQL table in postgres/migrations/0002).
 * The rules are the SQLite backend's (store/sqlite/sqlite_memory.c): staged rows are invisible, finalize
 * activates them inside the sync's transaction, a failed sync's rows are deleted.
 *
 * Search: the stored tsvector (title A, tags B, content C, 'simple' configuration). The query is
 * never parsed as tsquery syntax: every word of the user's text (split on white space, as
 * ps_memory_fts_query does) becomes phraseto_tsquery('simple', word), which keeps only its
 * lexemes, and the words are joined with AND. Rank: ts_rank with weights title 1.0, tags 0.5,
 * content 0.2, returned negated so that, as with SQLite's bm25, lower is better.
 */
#include "store/postgres/pg_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "model/memory.h"
#include "util/error.h"

#define MEM_COLS "e.id, e.project_id, p.name, e.origin, e.source, e.source_ref, e.title, " \
	"e.tags, e.content, e.blob_sha, e.state, e.introduced_by_sync, e.restored_from, " \
	"e.superseded_by_sync, e.superseded_by_entry, e.superseded_at, e.created_at"
#define MEM_FROM " FROM memory_entries e JOIN projects p ON p.id = e.project_id "

/* The ids of every version of manual note $1 in project $2 (sqlite_memory.c, NOTE_VERSIONS). */
#define NOTE_VERSIONS \
	"WITH RECURSIVE v(id) AS (VALUES($1::bigint) UNION " \
	"SELECT e.id FROM v JOIN memory_entries x ON x.id = v.id " \
	"JOIN memory_entries e ON e.project_id = $2 AND e.origin = 'manual' " \
	"AND e.state != 'staged' AND (e.superseded_by_entry = x.id OR e.restored_from = x.id " \
	"OR e.id = x.superseded_by_entry OR e.id = x.restored_from)) SELECT id FROM v"

static char *tags_json(const struct ps_strv *tags)
{
	json_t *a = json_array();
	char *text;

	/* ps_json_string: a tag that is not UTF-8 (front matter and --tag are bytes) is kept with
	 * U+FFFD for each invalid byte; json_string() returns NULL for it and the tag was lost. */
	for (size_t i = 0; tags && i < tags->n; i++)
		json_array_append_new(a, ps_json_string(tags->v[i]));
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return text ? text : ps_strdup("[]");
}

static void entry_from_row(const PGresult *r, int i, struct ps_memory_entry *e)
{
	const char *state = PQgetvalue(r, i, 10);
	json_t *j;

	memset(e, 0, sizeof(*e));
	e->id = ps_pg_col_int(r, i, 0);
	e->project_id = ps_pg_col_int(r, i, 1);
	e->project = ps_pg_col_text(r, i, 2);
	if (ps_memory_origin_parse(PQgetvalue(r, i, 3), &e->origin) < 0) {
		ps_error_clear();
		e->origin = PS_MEMORY_FROM_SYNC;
	}
	e->source = ps_pg_col_text(r, i, 4);
	e->source_ref = ps_pg_col_bytea(r, i, 5);
	e->title = ps_pg_col_text(r, i, 6);
	j = json_loads(PQgetvalue(r, i, 7), 0, NULL);
	for (size_t k = 0; j && k < json_array_size(j); k++)
		if (json_is_string(json_array_get(j, k)))
			ps_strv_push(&e->tags, json_string_value(json_array_get(j, k)));
	json_decref(j);
	e->content = ps_pg_col_text(r, i, 8);
	snprintf(e->sha, sizeof(e->sha), "%s", PQgetvalue(r, i, 9));
	e->status = strcmp(state, "active") == 0 ? PS_MEMORY_ACTIVE : PS_MEMORY_SUPERSEDED;
	e->introduced_by_sync = ps_pg_col_int(r, i, 11);
	e->restored_from = ps_pg_col_int(r, i, 12);
	e->superseded_by_sync = ps_pg_col_int(r, i, 13);
	e->superseded_by_entry = ps_pg_col_int(r, i, 14);
	e->superseded_at = ps_pg_col_int(r, i, 15);
	e->created_at = ps_pg_col_int(r, i, 16);
}

static int collect(struct ps_store *s, const char *sql, struct ps_pq *q, bool ranked,
		   const char *what, struct ps_memory_entry **out, size_t *n)
{
	struct ps_memory_entry *v;
	PGresult *r;
	int rc = 0, count;

	if (!(r = ps_pg_run(PSPG(s), sql, q, false, what, &rc))) {
		/* Never hand the engine's text to a user for a search: it could quote the query. */
		if (ranked && rc == PS_ESTORE)
			return ps_error_set(PS_ESTORE, "search_failed", "the search could not be run");
		return rc;
	}
	count = PQntuples(r);
	v = count ? ps_calloc((size_t)count, sizeof(*v)) : NULL;
	for (int i = 0; i < count; i++) {
		entry_from_row(r, i, &v[i]);
		if (ranked) {
			v[i].snippet = ps_pg_col_text(r, i, 17);
			if (!v[i].snippet)
				v[i].snippet = ps_strdup("");
			v[i].rank = strtod(PQgetvalue(r, i, 18), NULL);
		}
	}
	PQclear(r);
	*out = v;
	*n = (size_t)count;
	return 0;
}

/* ---- the sync's side ---- */

int ps_pg_memory_stage(struct ps_store *s, const struct ps_sync *y,
		       const struct ps_memory_entry *entries, size_t n)
{
	static const char drop[] =
		"DELETE FROM memory_entries WHERE project_id = $3 AND source_ref = $2 "
		"AND introduced_by_sync = $1 AND state = 'staged'";
	static const char ins[] =
		"INSERT INTO memory_entries (project_id, origin, source, source_ref, title, tags, "
		"content, blob_sha, state, introduced_by_sync, created_at) "
		"VALUES ($1, 'sync', $2, $3, $4, $5, $6, $7, 'staged', $8, $9)";
	int64_t now = ps_now_ms();
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = ps_pg_fence(s, y)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct ps_memory_entry *e = &entries[i];
		struct ps_pq q = { 0 };
		char *tags;

		/* One staged entry per path and sync, whatever the caller repeats. */
		ps_pq_int(&q, y->id);
		ps_pq_path(&q, e->source_ref);
		ps_pq_int(&q, y->project_id);
		if ((rc = ps_pg_exec(PSPG(s), drop, &q, "stage memory entries", NULL)) < 0)
			goto fail;
		tags = tags_json(&e->tags);
		ps_pq_int(&q, y->project_id);
		ps_pq_text(&q, e->source ? e->source : "git");
		ps_pq_path(&q, e->source_ref);
		ps_pq_text(&q, e->title ? e->title : "");
		ps_pq_text(&q, tags);
		ps_pq_text(&q, e->content ? e->content : "");
		ps_pq_text(&q, e->sha[0] ? e->sha : NULL);
		ps_pq_int(&q, y->id);
		ps_pq_int(&q, now);
		rc = ps_pg_exec(PSPG(s), ins, &q, "stage memory entries", NULL);
		free(tags);
		if (rc < 0)
			goto fail;
	}
	return ps_pg_commit(s);
fail:
	ps_pg_rollback(s);
	return rc;
}

int ps_pg_memory_stage_removals(struct ps_store *s, const struct ps_sync *y,
				const char *const *paths, size_t n)
{
	static const char sql[] =
		"INSERT INTO memory_staged_removals (sync_id, project_id, source_ref) "
		"VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = ps_pg_fence(s, y)) < 0) {
		ps_pg_rollback(s);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		struct ps_pq q = { 0 };
		ps_pq_int(&q, y->id);
		ps_pq_int(&q, y->project_id);
		ps_pq_path(&q, paths[i]);
		if ((rc = ps_pg_exec(PSPG(s), sql, &q, "stage memory removals", NULL)) < 0) {
			ps_pg_rollback(s);
			return rc;
		}
	}
	return ps_pg_commit(s);
}

int ps_pg_memory_finalize(struct ps_store *s, const struct ps_sync *y)
{
	/* Order matters: the replaced entries leave `active` before the staged ones enter it. */
	static const char supersede[] =
		"UPDATE memory_entries SET state = 'superseded', superseded_by_sync = $1, "
		"superseded_at = $3, superseded_by_entry = (SELECT n.id FROM memory_entries n "
		"  WHERE n.project_id = $2 AND n.source_ref = memory_entries.source_ref "
		"  AND n.introduced_by_sync = $1 AND n.state = 'staged') "
		"WHERE project_id = $2 AND state = 'active' AND source_ref IN ("
		"  SELECT source_ref FROM memory_entries WHERE introduced_by_sync = $1 "
		"  AND state = 'staged' "
		"  UNION SELECT source_ref FROM memory_staged_removals WHERE sync_id = $1)";
	static const char activate[] =
		"UPDATE memory_entries SET state = 'active' WHERE introduced_by_sync = $1 "
		"AND state = 'staged'";
	static const char forget[] = "DELETE FROM memory_staged_removals WHERE sync_id = $1";
	static const char rescanned[] =
		"UPDATE projects SET memory_rescan = 0 WHERE id = $2 AND memory_rescan != 0 "
		"AND memory_rescan = (SELECT memory_rescan FROM syncs WHERE id = $1)";
	struct ps_pq q = { 0 };
	int rc;

	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->project_id);
	ps_pq_int(&q, y->finished_at ? y->finished_at : ps_now_ms());
	if ((rc = ps_pg_exec(PSPG(s), supersede, &q, "supersede memory entries", NULL)) < 0)
		return rc;
	ps_pq_int(&q, y->id);
	if ((rc = ps_pg_exec(PSPG(s), activate, &q, "activate memory entries", NULL)) < 0)
		return rc;
	ps_pq_int(&q, y->id);
	if ((rc = ps_pg_exec(PSPG(s), forget, &q, "finish memory removals", NULL)) < 0)
		return rc;
	ps_pq_int(&q, y->id);
	ps_pq_int(&q, y->project_id);
	return ps_pg_exec(PSPG(s), rescanned, &q, "finish memory rescan", NULL);
}

int ps_pg_project_memory_rescan(struct ps_store *s, int64_t project_id, int64_t *generation)
{
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, project_id);
	if (!(r = ps_pg_run(PSPG(s), "SELECT memory_rescan FROM projects WHERE id = $1", &q, false,
			    "read memory rescan", &rc)))
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

int ps_pg_sync_memory_rescan(struct ps_store *s, int64_t sync_id, int64_t generation)
{
	struct ps_pq q = { 0 };

	ps_pq_int(&q, generation);
	ps_pq_int(&q, sync_id);
	return ps_pg_exec(PSPG(s), "UPDATE syncs SET memory_rescan = $1 WHERE id = $2", &q,
			  "record memory rescan", NULL);
}

int ps_pg_memory_active_paths(struct ps_store *s, int64_t project_id,
			      struct ps_memory_entry **out, size_t *n)
{
	static const char sql[] =
		"SELECT id, origin, source_ref, blob_sha FROM memory_entries "
		"WHERE project_id = $1 AND state = 'active' AND source_ref IS NOT NULL "
		"ORDER BY source_ref";
	struct ps_memory_entry *v;
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0, count;

	ps_pq_int(&q, project_id);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "list memory paths", &rc)))
		return rc;
	count = PQntuples(r);
	v = count ? ps_calloc((size_t)count, sizeof(*v)) : NULL;
	for (int i = 0; i < count; i++) {
		struct ps_memory_entry *e = &v[i];
		e->id = ps_pg_col_int(r, i, 0);
		e->project_id = project_id;
		if (ps_memory_origin_parse(PQgetvalue(r, i, 1), &e->origin) < 0) {
			ps_error_clear();
			e->origin = PS_MEMORY_FROM_SYNC;
		}
		e->source_ref = ps_pg_col_bytea(r, i, 2);
		snprintf(e->sha, sizeof(e->sha), "%s", PQgetvalue(r, i, 3));
		e->status = PS_MEMORY_ACTIVE;
	}
	PQclear(r);
	*out = v;
	*n = (size_t)count;
	return 0;
}

int ps_pg_memory_discard(struct ps_store *s, int64_t sync_id)
{
	static const char *const steps[] = {
		"DELETE FROM memory_entries WHERE introduced_by_sync = $1 AND state = 'staged'",
		"DELETE FROM memory_staged_removals WHERE sync_id = $1",
	};

	for (size_t i = 0; i < 2; i++) {
		struct ps_pq q = { 0 };
		int rc;
		ps_pq_int(&q, sync_id);
		if ((rc = ps_pg_exec(PSPG(s), steps[i], &q, "discard staged memory entries",
				     NULL)) < 0)
			return rc;
	}
	return 0;
}

int ps_pg_memory_remove_project(struct ps_store *s, int64_t project_id)
{
	static const char *const steps[] = {
		"DELETE FROM memory_entries WHERE project_id = $1",
		"DELETE FROM memory_staged_removals WHERE project_id = $1",
	};

	for (size_t i = 0; i < 2; i++) {
		struct ps_pq q = { 0 };
		int rc;
		ps_pq_int(&q, project_id);
		if ((rc = ps_pg_exec(PSPG(s), steps[i], &q, "remove memory entries", NULL)) < 0)
			return rc;
	}
	return 0;
}

/* ---- reading ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int ps_pg_memory_search(struct ps_store *s, int64_t project_id, const char *query,
			bool include_superseded, int64_t limit, int64_t offset,
			struct ps_memory_entry **out, size_t *n)
{
	static const char list_sql[] =
		"SELECT " MEM_COLS MEM_FROM
		"WHERE e.project_id = $1 AND (e.state = 'active' OR ($2::int = 1 AND "
		"e.state = 'superseded')) ORDER BY e.id DESC LIMIT $3 OFFSET $4";
	struct ps_pq q = { 0 };
	struct ps_buf sql, tsq;
	struct ps_strv words = { 0 };
	char *fts = NULL, *text;
	int rc;

	ps_pq_int(&q, project_id);
	ps_pq_int(&q, include_superseded ? 1 : 0);
	ps_pq_id(&q, limit);
	ps_pq_int(&q, offset > 0 ? offset : 0);
	if (!query)
		return collect(s, list_sql, &q, false, "list memory entries", out, n);
	/* The same validation and word limit as the SQLite backend (empty, too long). */
	if ((rc = ps_memory_fts_query(&fts, query)) < 0) {
		ps_pq_dispose(&q);
		return rc;
	}
	free(fts);
	ps_buf_init(&tsq, SIZE_MAX);
	for (const char *p = query; *p && words.n < PS_MEMORY_MAX_QUERY_WORDS;) {
		const char *b, *e;
		bool word = false;

		while (*p && is_space(*p))
			p++;
		b = p;
		while (*p && !is_space(*p))
			p++;
		e = p;
		for (const char *c = b; c < e && !word; c++) {
			unsigned char u = (unsigned char)*c;
			word = u >= 0x80 || (u >= '0' && u <= '9') ||
			       ((u | 0x20) >= 'a' && (u | 0x20) <= 'z');
		}
		if (!word)
			continue;
		text = ps_strndup(b, (size_t)(e - b));
		ps_strv_push(&words, text);
		free(text);
	}
	/* Each word twice: whole (phraseto_tsquery) and with its last lexeme as a prefix. The
	 * prefix form is PostgreSQL's own text of the phrase with `:*` after it, so what the user
	 * typed is never read as tsquery syntax; a word with no lexeme stays an empty query. */
	for (size_t i = 0; i < words.n; i++) {
		ps_pq_text(&q, words.v[i]);
		ps_buf_printf(&tsq, "%sphraseto_tsquery('simple', $%d) AS w%zu", i ? ", " : "",
			      q.n, i);
	}
	text = ps_buf_take(&tsq, NULL);
	ps_buf_init(&tsq, SIZE_MAX);
	ps_buf_puts(&tsq, "SELECT ");
	for (size_t i = 0; i < words.n; i++)
		ps_buf_printf(&tsq, "%sw%zu", i ? " && " : "", i);
	ps_buf_puts(&tsq, " AS tsq, ");
	for (size_t i = 0; i < words.n; i++)
		ps_buf_printf(&tsq, "%s(CASE WHEN numnode(w%zu) = 0 THEN w%zu "
			      "ELSE (w%zu::text || ':*')::tsquery END)", i ? " && " : "", i, i, i);
	ps_buf_printf(&tsq, " AS ptsq FROM (SELECT %s) w", text);
	free(text);
	text = ps_buf_take(&tsq, NULL);
	ps_buf_init(&sql, SIZE_MAX);
	/* Prefix matches count; entries where every word matches whole come first, as with
	 * SQLite. Ties: newest first. The snippet comes from the content, as SQLite's does. */
	ps_buf_printf(&sql,
		      "WITH q AS (%s) "
		      "SELECT " MEM_COLS ", ts_headline('simple', e.content, q.ptsq, "
		      "'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, ShortWord=0, "
		      "MaxFragments=1, FragmentDelimiter=\"…\"'), "
		      "-ts_rank('{0.1, 0.2, 0.5, 1.0}', e.fts, q.ptsq) AS r "
		      "FROM q, memory_entries e JOIN projects p ON p.id = e.project_id "
		      "WHERE e.fts @@ q.ptsq AND e.project_id = $1 "
		      "AND (e.state = 'active' OR ($2::int = 1 AND e.state = 'superseded')) "
		      "ORDER BY NOT (e.fts @@ q.tsq), r, e.id DESC LIMIT $3 OFFSET $4", text);
	free(text);
	text = ps_buf_take(&sql, NULL);
	rc = collect(s, text, &q, true, "search memory", out, n);
	free(text);
	ps_strv_dispose(&words);
	return rc;
}

static int get_entry(struct ps_store *s, int64_t id, struct ps_memory_entry *out)
{
	static const char sql[] = "SELECT " MEM_COLS MEM_FROM
				  "WHERE e.id = $1 AND e.state != 'staged'";
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, id);
	if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "read memory entry", &rc)))
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return ps_error_set(PS_ENOTFOUND, "memory_not_found", "memory entry %lld not found",
				    (long long)id);
	}
	entry_from_row(r, 0, out);
	PQclear(r);
	return 0;
}

int ps_pg_memory_get(struct ps_store *s, int64_t id, struct ps_memory_entry **out)
{
	struct ps_memory_entry *e = ps_calloc(1, sizeof(*e));
	int rc = get_entry(s, id, e);

	if (rc < 0) {
		free(e);
		return rc;
	}
	*out = e;
	return 0;
}

int ps_pg_memory_history(struct ps_store *s, int64_t id, struct ps_memory_entry **out,
			 size_t *n)
{
	static const char sql[] =
		"SELECT " MEM_COLS MEM_FROM "WHERE e.project_id = $1 AND e.source_ref = $2 "
		"AND e.state != 'staged' ORDER BY e.id DESC";
	struct ps_memory_entry e;
	struct ps_pq q = { 0 };
	int rc;

	if ((rc = get_entry(s, id, &e)) < 0)
		return rc;
	if (!e.source_ref) {
		/* A manual note: the versions its edits, deletes and restores link. */
		ps_pq_int(&q, e.id);
		ps_pq_int(&q, e.project_id);
		rc = collect(s, "SELECT " MEM_COLS MEM_FROM "WHERE e.id IN (" NOTE_VERSIONS
			     ") ORDER BY e.id DESC", &q, false, "read memory history", out, n);
		ps_memory_entry_dispose(&e);
		return rc;
	}
	ps_pq_int(&q, e.project_id);
	ps_pq_path(&q, e.source_ref);
	rc = collect(s, sql, &q, false, "read memory history", out, n);
	ps_memory_entry_dispose(&e);
	return rc;
}

/* ---- writes outside syncs ---- */

static int insert_entry(struct ps_store *s, int64_t project_id, enum ps_memory_origin origin,
			const char *source, const char *source_ref, const char *title,
			const struct ps_strv *tags, const char *content, const char *sha,
			int64_t restored_from, int64_t *id)
{
	static const char sql[] =
		"INSERT INTO memory_entries (project_id, origin, source, source_ref, title, tags, "
		"content, blob_sha, state, restored_from, created_at) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10) RETURNING id";
	struct ps_pq q = { 0 };
	char *tj = tags_json(tags);
	PGresult *r;
	int rc = 0;

	ps_pq_int(&q, project_id);
	ps_pq_text(&q, ps_memory_origin_name(origin));
	ps_pq_text(&q, source);
	ps_pq_path(&q, source_ref);
	ps_pq_text(&q, title);
	ps_pq_text(&q, tj);
	ps_pq_text(&q, content ? content : "");
	ps_pq_text(&q, sha && sha[0] ? sha : NULL);
	ps_pq_id(&q, restored_from);
	ps_pq_int(&q, ps_now_ms());
	r = ps_pg_run(PSPG(s), sql, &q, false, "add memory entry", &rc);
	free(tj);
	if (!r)
		return rc;
	*id = ps_pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int ps_pg_memory_add(struct ps_store *s, int64_t project_id, const char *title,
		     const char *content, const struct ps_strv *tags, struct ps_memory_entry **out)
{
	struct ps_project *p = NULL;
	int64_t id;
	int rc;

	if ((rc = ps_memory_check_note(title, content, tags)) < 0)
		return rc;
	if ((rc = ps_pg_project_get_by_id(s, project_id, &p)) < 0)
		return rc;
	ps_project_free(p);
	if ((rc = insert_entry(s, project_id, PS_MEMORY_FROM_MANUAL, "manual", NULL, title, tags,
			       content, NULL, 0, &id)) < 0)
		return rc;
	return out ? ps_pg_memory_get(s, id, out) : 0;
}

/* The entry an edit or a delete may change: an active manual note (sqlite_memory.c). */
static int editable(const struct ps_memory_entry *e, const char *verb)
{
	if (e->origin != PS_MEMORY_FROM_MANUAL)
		return ps_error_set(PS_ECONFLICT, "not_manual",
				    "memory entry %lld comes from %s in the repository: only notes "
				    "added by hand can be %s (change the file instead)",
				    (long long)e->id, e->source_ref ? e->source_ref : "a file", verb);
	if (e->status != PS_MEMORY_ACTIVE)
		return ps_error_set(PS_ECONFLICT, "not_active",
				    "memory entry %lld is %s: only the current version of a note "
				    "can be %s (see its history; restore it first)",
				    (long long)e->id, ps_memory_deleted(e) ? "deleted" : "superseded",
				    verb);
	return 0;
}

/* Supersedes active entry `id` (successor `next`, 0: none); PS_ECONFLICT if another writer
 * got there first. */
static int supersede_active(struct ps_store *s, int64_t id, int64_t next)
{
	static const char sql[] =
		"UPDATE memory_entries SET state = 'superseded', superseded_at = $1, "
		"superseded_by_entry = $2 WHERE id = $3 AND state = 'active'";
	struct ps_pq q = { 0 };
	int64_t changed = 0;
	int rc;

	ps_pq_int(&q, ps_now_ms());
	ps_pq_id(&q, next);
	ps_pq_int(&q, id);
	if ((rc = ps_pg_exec(PSPG(s), sql, &q, "supersede memory entry", &changed)) < 0)
		return rc;
	if (changed != 1)
		return ps_error_set(PS_ECONFLICT, "not_active",
				    "memory entry %lld changed meanwhile: reload it", (long long)id);
	return 0;
}

/* The entry, its row locked for the rest of the transaction. */
static int get_entry_locked(struct ps_store *s, int64_t id, struct ps_memory_entry *out)
{
	struct ps_pq q = { 0 };
	int rc;

	ps_pq_int(&q, id);
	if ((rc = ps_pg_exec(PSPG(s), "SELECT 1 FROM memory_entries WHERE id = $1 FOR UPDATE",
			     &q, "lock memory entry", NULL)) < 0)
		return rc;
	return get_entry(s, id, out);
}

int ps_pg_memory_edit(struct ps_store *s, int64_t id, const char *title, const char *content,
		      const struct ps_strv *tags, struct ps_memory_entry **out, bool *changed)
{
	struct ps_memory_entry old, next = { 0 };
	struct ps_pq q = { 0 };
	int64_t new_id = 0;
	int rc;

	if (changed)
		*changed = false;
	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = get_entry_locked(s, id, &old)) < 0) {
		ps_pg_rollback(s);
		return rc;
	}
	if ((rc = editable(&old, "edited")) < 0)
		goto done;
	next.title = (char *)(title ? title : old.title);
	next.content = (char *)(content ? content : old.content);
	next.tags = tags ? *tags : old.tags;
	if ((rc = ps_memory_check_note(next.title, next.content, &next.tags)) < 0)
		goto done;
	if (ps_memory_same_text(&old, &next)) {
		ps_memory_entry_dispose(&old);
		ps_pg_commit(s);
		return out ? ps_pg_memory_get(s, id, out) : 0;
	}
	if ((rc = supersede_active(s, id, 0)) < 0 ||
	    (rc = insert_entry(s, old.project_id, PS_MEMORY_FROM_MANUAL, "manual", NULL,
			       next.title, &next.tags, next.content, NULL, 0, &new_id)) < 0)
		goto done;
	ps_pq_int(&q, new_id);
	ps_pq_int(&q, id);
	if ((rc = ps_pg_exec(PSPG(s), "UPDATE memory_entries SET superseded_by_entry = $1 "
			     "WHERE id = $2", &q, "link the edited note", NULL)) < 0)
		goto done;
	ps_memory_entry_dispose(&old);
	if ((rc = ps_pg_commit(s)) < 0)
		return rc;
	if (changed)
		*changed = true;
	return out ? ps_pg_memory_get(s, new_id, out) : 0;
done:
	ps_memory_entry_dispose(&old);
	ps_pg_rollback(s);
	return rc;
}

int ps_pg_memory_delete(struct ps_store *s, int64_t id, struct ps_memory_entry **out)
{
	struct ps_memory_entry old;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = get_entry_locked(s, id, &old)) < 0) {
		ps_pg_rollback(s);
		return rc;
	}
	rc = editable(&old, "deleted");
	ps_memory_entry_dispose(&old);
	if (rc < 0 || (rc = supersede_active(s, id, 0)) < 0) {
		ps_pg_rollback(s);
		return rc;
	}
	if ((rc = ps_pg_commit(s)) < 0)
		return rc;
	return out ? ps_pg_memory_get(s, id, out) : 0;
}

/* The version an entry is a copy of: its restored_from chain followed to the entry no restore
 * made (ids only go down along the chain; the bound guards against a damaged store). */
static int original_of(struct ps_store *s, int64_t id, int64_t *out)
{
	static const char sql[] = "SELECT restored_from FROM memory_entries WHERE id = $1";
	struct ps_pq q = { 0 };

	*out = id;
	for (int steps = 0; steps < 100000; steps++) {
		int64_t from = 0;
		PGresult *r;
		int rc;

		ps_pq_int(&q, *out);
		if (!(r = ps_pg_run(PSPG(s), sql, &q, false, "follow a restored entry", &rc)))
			return rc;
		if (PQntuples(r) > 0)
			from = ps_pg_col_int(r, 0, 0);
		PQclear(r);
		if (from <= 0 || from >= *out)
			return 0;
		*out = from;
	}
	return 0;
}

/* Hands `e` back through `out` (or disposes it) and says nothing was restored. */
static int restore_noop(struct ps_memory_entry *e, struct ps_memory_entry **out, bool *restored)
{
	if (restored)
		*restored = false;
	if (out) {
		*out = ps_malloc(sizeof(**out));
		**out = *e;
	} else {
		ps_memory_entry_dispose(e);
	}
	return 0;
}

int ps_pg_memory_restore(struct ps_store *s, int64_t id, struct ps_memory_entry **out,
			 bool *restored)
{
	static const char current_sql[] =
		"SELECT id FROM memory_entries WHERE project_id = $1 AND source_ref = $2 "
		"AND state = 'active' FOR UPDATE";
	static const char current_note_sql[] =
		"SELECT id FROM memory_entries WHERE id IN (" NOTE_VERSIONS ") "
		"AND state = 'active' FOR UPDATE";
	static const char supersede_sql[] =
		"UPDATE memory_entries SET state = 'superseded', superseded_at = $1, "
		"superseded_by_entry = $2 WHERE id = $3";
	struct ps_memory_entry old, cur = { 0 };
	int64_t current = 0, new_id = 0;
	struct ps_pq q = { 0 };
	PGresult *r;
	int rc;

	if ((rc = ps_pg_begin(s)) < 0)
		return rc;
	if ((rc = get_entry(s, id, &old)) < 0) {
		ps_pg_rollback(s);
		return rc;
	}
	if (old.status == PS_MEMORY_ACTIVE) {
		ps_pg_commit(s);
		return restore_noop(&old, out, restored);
	}
	{
		/* A path's current entry; a manual note's: its active version, if not deleted. */
		if (old.source_ref) {
			ps_pq_int(&q, old.project_id);
			ps_pq_path(&q, old.source_ref);
		} else {
			ps_pq_int(&q, old.id);
			ps_pq_int(&q, old.project_id);
		}
		if (!(r = ps_pg_run(PSPG(s), old.source_ref ? current_sql : current_note_sql, &q,
				    false, "find the current memory entry", &rc)))
			goto fail;
		if (PQntuples(r) > 0)
			current = ps_pg_col_int(r, 0, 0);
		PQclear(r);
	}
	if (current) {
		/* Already current (a copy of the same version that reads the same): a retried
		 * restore must not stack up identical versions; see store.h. */
		int64_t a = 0, b = 0;

		if ((rc = get_entry(s, current, &cur)) < 0 || (rc = original_of(s, id, &a)) < 0 ||
		    (rc = original_of(s, current, &b)) < 0)
			goto fail;
		if (a == b && ps_memory_same_text(&cur, &old)) {
			ps_memory_entry_dispose(&old);
			ps_pg_commit(s);
			return restore_noop(&cur, out, restored);
		}
		ps_memory_entry_dispose(&cur);
		ps_pq_int(&q, ps_now_ms());
		ps_pq_id(&q, 0);
		ps_pq_int(&q, current);
		if ((rc = ps_pg_exec(PSPG(s), supersede_sql, &q, "supersede memory entry", NULL)) < 0)
			goto fail;
	}
	if ((rc = insert_entry(s, old.project_id,
			       old.origin == PS_MEMORY_FROM_MANUAL ? PS_MEMORY_FROM_MANUAL
								   : PS_MEMORY_FROM_RESTORE,
			       old.source, old.source_ref, old.title, &old.tags, old.content, old.sha,
			       old.id, &new_id)) < 0)
		goto fail;
	if (current) {
		ps_pq_int(&q, ps_now_ms());
		ps_pq_int(&q, new_id);
		ps_pq_int(&q, current);
		if ((rc = ps_pg_exec(PSPG(s), supersede_sql, &q, "supersede memory entry", NULL)) < 0)
			goto fail;
	}
	ps_memory_entry_dispose(&old);
	if ((rc = ps_pg_commit(s)) < 0)
		return rc;
	if (restored)
		*restored = true;
	return out ? ps_pg_memory_get(s, new_id, out) : 0;
fail:
	ps_memory_entry_dispose(&cur);
	ps_memory_entry_dispose(&old);
	ps_pg_rollback(s);
	return rc;
}
