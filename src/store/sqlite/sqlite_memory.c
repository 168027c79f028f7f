/*
 * Memory entries in the SQLite backend (store.h, "memory entries"; schema and the meaning of
 * every column in migrations/0002_memory.sql).
 *
 * Visibility follows the file versions' rule by other means: a sync writes its entries as
 * `staged` rows, which no query returns; ps_store_sync_finalize calls
 * ps_sqlite_memory_finalize inside its transaction to supersede the replaced entries and make
 * the staged ones active, so a sync's memory appears exactly when its snapshot does, and a sync
 * that fails or dies leaves nothing behind (ps_sqlite_memory_discard, from ps_store_sync_fail).
 * Restores and manual entries are not part of any sync: each is its own short transaction and
 * visible at once.
 *
 * The full-text index (memory_fts) is an external-content FTS5 table maintained by triggers;
 * searches join it to the entries and filter by project and state, so staged rows and other
 * projects' entries can never be returned.
 */
#include "store/store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "model/memory.h"
#include "store/sqlite/sqlite_internal.h"
#include "util/error.h"

#define MEM_COLS "e.id, e.project_id, p.name, e.origin, e.source, e.source_ref, e.title, " \
	"e.tags, e.content, e.blob_sha, e.state, e.introduced_by_sync, e.restored_from, " \
	"e.superseded_by_sync, e.superseded_by_entry, e.superseded_at, e.created_at"
#define MEM_FROM " FROM memory_entries e JOIN projects p ON p.id = e.project_id "

/*
 * The ids of every version of manual note ?1 in project ?2: the entries reachable from it over
 * the links edits, deletes and restores leave (superseded_by_entry: the next version; restored_from:
 * the version a restore copied), followed both ways. Manual notes have no path to group them by,
 * and these links are already stored for every version, so no column is needed for it.
 */
#define NOTE_VERSIONS \
	"WITH RECURSIVE v(id) AS (VALUES(?1) UNION " \
	"SELECT e.id FROM v JOIN memory_entries x ON x.id = v.id " \
	"JOIN memory_entries e ON e.project_id = ?2 AND e.origin = 'manual' " \
	"AND e.state != 'staged' AND (e.superseded_by_entry = x.id OR e.restored_from = x.id " \
	"OR e.id = x.superseded_by_entry OR e.id = x.restored_from)) SELECT id FROM v"

/* Snippets: up to this many tokens around the best match of the body. */
#define SNIPPET_TOKENS "24"

static void bind_id(sqlite3_stmt *st, int i, int64_t v)
{
	if (v > 0)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

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

static void entry_from_row(sqlite3_stmt *st, struct ps_memory_entry *e)
{
	const char *origin = (const char *)sqlite3_column_text(st, 3);
	const char *tags = (const char *)sqlite3_column_text(st, 7);
	const char *sha = (const char *)sqlite3_column_text(st, 9);
	const char *state = (const char *)sqlite3_column_text(st, 10);
	json_t *j;

	memset(e, 0, sizeof(*e));
	e->id = sqlite3_column_int64(st, 0);
	e->project_id = sqlite3_column_int64(st, 1);
	e->project = ps_sqlite_col_text(st, 2);
	if (ps_memory_origin_parse(origin, &e->origin) < 0) {
		ps_error_clear();
		e->origin = PS_MEMORY_FROM_SYNC;
	}
	e->source = ps_sqlite_col_text(st, 4);
	e->source_ref = ps_sqlite_col_text(st, 5);
	e->title = ps_sqlite_col_text(st, 6);
	j = tags ? json_loads(tags, 0, NULL) : NULL;
	for (size_t i = 0; j && i < json_array_size(j); i++)
		if (json_is_string(json_array_get(j, i)))
			ps_strv_push(&e->tags, json_string_value(json_array_get(j, i)));
	json_decref(j);
	e->content = ps_sqlite_col_text(st, 8);
	snprintf(e->sha, sizeof(e->sha), "%s", sha ? sha : "");
	e->status = state && strcmp(state, "active") == 0 ? PS_MEMORY_ACTIVE : PS_MEMORY_SUPERSEDED;
	e->introduced_by_sync = sqlite3_column_int64(st, 11);
	e->restored_from = sqlite3_column_int64(st, 12);
	e->superseded_by_sync = sqlite3_column_int64(st, 13);
	e->superseded_by_entry = sqlite3_column_int64(st, 14);
	e->superseded_at = sqlite3_column_int64(st, 15);
	e->created_at = sqlite3_column_int64(st, 16);
}

/* Collects the rows of a prepared statement (MEM_COLS, optionally snippet and rank after). */
static int collect(struct ps_store *s, sqlite3_stmt *st, bool ranked, const char *what,
		   struct ps_memory_entry **out, size_t *n)
{
	struct ps_memory_entry *v = NULL;
	size_t count = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			v = ps_realloc(v, cap * sizeof(*v));
		}
		entry_from_row(st, &v[count]);
		if (ranked) {
			v[count].snippet = ps_sqlite_col_text(st, 17);
			if (!v[count].snippet)
				v[count].snippet = ps_strdup("");
			v[count].rank = sqlite3_column_double(st, 18);
		}
		count++;
	}
	if (rc != SQLITE_DONE) {
		int ext = sqlite3_errcode(s->db);
		sqlite3_reset(st);
		ps_memory_entries_free(v, count);
		/* Never hand the engine's text to a user for a search: it could quote the query. */
		if (ranked && ext == SQLITE_ERROR)
			return ps_error_set(PS_ESTORE, "search_failed", "the search could not be run");
		return ps_sqlite_error(s, what);
	}
	sqlite3_reset(st);
	*out = v;
	*n = count;
	return 0;
}

/* ---- the sync's side ---- */

int ps_sqlite_memory_stage(struct ps_store *s, const struct ps_sync *y,
			  const struct ps_memory_entry *entries, size_t n)
{
	/* The path index must answer, not memory_introduced (which would scan everything the
	 * sync staged so far, quadratic over a batch): the unary + keeps the planner off it. */
	static const char drop[] =
		"DELETE FROM memory_entries WHERE project_id = ?3 AND source_ref = ?2 "
		"AND +introduced_by_sync = ?1 AND state = 'staged'";
	static const char ins[] =
		"INSERT INTO memory_entries (project_id, origin, source, source_ref, title, tags, "
		"content, blob_sha, state, introduced_by_sync, created_at) "
		"VALUES (?1, 'sync', ?2, ?3, ?4, ?5, ?6, ?7, 'staged', ?8, ?9)";
	int64_t now = ps_now_ms();
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const struct ps_memory_entry *e = &entries[i];
		sqlite3_stmt *st;
		char *tags;

		/* One staged entry per path and sync, whatever the caller repeats. */
		if (!(st = ps_sqlite_stmt(s, drop))) {
			rc = PS_ESTORE;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, y->id);
		ps_sqlite_bind_text(st, 2, e->source_ref);
		sqlite3_bind_int64(st, 3, y->project_id);
		if ((rc = ps_sqlite_step_done(s, st, "stage memory entries")) < 0)
			goto fail;
		if (!(st = ps_sqlite_stmt(s, ins))) {
			rc = PS_ESTORE;
			goto fail;
		}
		tags = tags_json(&e->tags);
		sqlite3_bind_int64(st, 1, y->project_id);
		ps_sqlite_bind_text(st, 2, e->source ? e->source : "git");
		ps_sqlite_bind_text(st, 3, e->source_ref);
		ps_sqlite_bind_text(st, 4, e->title ? e->title : "");
		ps_sqlite_bind_text(st, 5, tags);
		ps_sqlite_bind_text(st, 6, e->content ? e->content : "");
		ps_sqlite_bind_text(st, 7, e->sha[0] ? e->sha : NULL);
		sqlite3_bind_int64(st, 8, y->id);
		sqlite3_bind_int64(st, 9, now);
		rc = ps_sqlite_step_done(s, st, "stage memory entries");
		free(tags);
		if (rc < 0)
			goto fail;
	}
	return ps_store_commit(s);
fail:
	ps_store_rollback(s);
	return rc;
}

int ps_sqlite_memory_stage_removals(struct ps_store *s, const struct ps_sync *y,
				   const char *const *paths, size_t n)
{
	static const char sql[] =
		"INSERT OR IGNORE INTO memory_staged_removals (sync_id, project_id, source_ref) "
		"VALUES (?, ?, ?)";
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
		if (!st) {
			ps_store_rollback(s);
			return PS_ESTORE;
		}
		sqlite3_bind_int64(st, 1, y->id);
		sqlite3_bind_int64(st, 2, y->project_id);
		ps_sqlite_bind_text(st, 3, paths[i]);
		if ((rc = ps_sqlite_step_done(s, st, "stage memory removals")) < 0) {
			ps_store_rollback(s);
			return rc;
		}
	}
	return ps_store_commit(s);
}

int ps_sqlite_memory_finalize(struct ps_store *s, const struct ps_sync *y)
{
	/* Order matters: the replaced entries leave `active` before the staged ones enter it
	 * (memory_one_active allows one active entry per path). */
	static const char supersede[] =
		"UPDATE memory_entries SET state = 'superseded', superseded_by_sync = ?1, "
		"superseded_at = ?3, superseded_by_entry = (SELECT n.id FROM memory_entries n "
		"  WHERE n.project_id = ?2 AND n.source_ref = memory_entries.source_ref "
		"  AND +n.introduced_by_sync = ?1 AND n.state = 'staged') "
		"WHERE project_id = ?2 AND state = 'active' AND source_ref IN ("
		"  SELECT source_ref FROM memory_entries WHERE introduced_by_sync = ?1 "
		"  AND state = 'staged' "
		"  UNION SELECT source_ref FROM memory_staged_removals WHERE sync_id = ?1)";
	static const char activate[] =
		"UPDATE memory_entries SET state = 'active' WHERE introduced_by_sync = ? "
		"AND state = 'staged'";
	static const char forget[] = "DELETE FROM memory_staged_removals WHERE sync_id = ?";
	/* Only the generation this sync rescanned: a later glob change still waits. */
	static const char rescanned[] =
		"UPDATE projects SET memory_rescan = 0 WHERE id = ?2 AND memory_rescan != 0 "
		"AND memory_rescan = (SELECT memory_rescan FROM syncs WHERE id = ?1)";
	sqlite3_stmt *st;
	int rc;

	if (!(st = ps_sqlite_stmt(s, supersede)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, y->id);
	sqlite3_bind_int64(st, 2, y->project_id);
	sqlite3_bind_int64(st, 3, y->finished_at ? y->finished_at : ps_now_ms());
	if ((rc = ps_sqlite_step_done(s, st, "supersede memory entries")) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, activate)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, y->id);
	if ((rc = ps_sqlite_step_done(s, st, "activate memory entries")) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, forget)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, y->id);
	if ((rc = ps_sqlite_step_done(s, st, "finish memory removals")) < 0)
		return rc;
	if (!(st = ps_sqlite_stmt(s, rescanned)))
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, y->id);
	sqlite3_bind_int64(st, 2, y->project_id);
	return ps_sqlite_step_done(s, st, "finish memory rescan");
}

int ps_sqlite_project_memory_rescan(struct ps_store *s, int64_t project_id, int64_t *generation)
{
	static const char sql[] = "SELECT memory_rescan FROM projects WHERE id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
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
	return rc == SQLITE_ROW ? 0 : ps_sqlite_error(s, "read memory rescan");
}

int ps_sqlite_sync_memory_rescan(struct ps_store *s, int64_t sync_id, int64_t generation)
{
	static const char sql[] = "UPDATE syncs SET memory_rescan = ? WHERE id = ?";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, generation);
	sqlite3_bind_int64(st, 2, sync_id);
	return ps_sqlite_step_done(s, st, "record memory rescan");
}

int ps_sqlite_memory_active_paths(struct ps_store *s, int64_t project_id,
				 struct ps_memory_entry **out, size_t *n)
{
	static const char sql[] =
		"SELECT id, origin, source_ref, blob_sha FROM memory_entries "
		"WHERE project_id = ? AND state = 'active' AND source_ref IS NOT NULL "
		"ORDER BY source_ref";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	struct ps_memory_entry *v = NULL;
	size_t count = 0, cap = 0;
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, project_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *origin = (const char *)sqlite3_column_text(st, 1);
		const char *sha = (const char *)sqlite3_column_text(st, 3);
		struct ps_memory_entry *e;

		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			v = ps_realloc(v, cap * sizeof(*v));
		}
		e = &v[count++];
		memset(e, 0, sizeof(*e));
		e->id = sqlite3_column_int64(st, 0);
		e->project_id = project_id;
		if (ps_memory_origin_parse(origin, &e->origin) < 0) {
			ps_error_clear();
			e->origin = PS_MEMORY_FROM_SYNC;
		}
		e->source_ref = ps_sqlite_col_text(st, 2);
		snprintf(e->sha, sizeof(e->sha), "%s", sha ? sha : "");
		e->status = PS_MEMORY_ACTIVE;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ps_memory_entries_free(v, count);
		return ps_sqlite_error(s, "list memory paths");
	}
	*out = v;
	*n = count;
	return 0;
}

int ps_sqlite_memory_discard(struct ps_store *s, int64_t sync_id)
{
	static const char entries[] =
		"DELETE FROM memory_entries WHERE introduced_by_sync = ? AND state = 'staged'";
	static const char removals[] = "DELETE FROM memory_staged_removals WHERE sync_id = ?";
	const char *const steps[] = { entries, removals };

	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *st = ps_sqlite_stmt(s, steps[i]);
		int rc;
		if (!st)
			return PS_ESTORE;
		sqlite3_bind_int64(st, 1, sync_id);
		if ((rc = ps_sqlite_step_done(s, st, "discard staged memory entries")) < 0)
			return rc;
	}
	return 0;
}

int ps_sqlite_memory_remove_project(struct ps_store *s, int64_t project_id)
{
	static const char entries[] = "DELETE FROM memory_entries WHERE project_id = ?";
	static const char removals[] = "DELETE FROM memory_staged_removals WHERE project_id = ?";
	const char *const steps[] = { entries, removals };

	for (size_t i = 0; i < 2; i++) {
		sqlite3_stmt *st = ps_sqlite_stmt(s, steps[i]);
		int rc;
		if (!st)
			return PS_ESTORE;
		sqlite3_bind_int64(st, 1, project_id);
		if ((rc = ps_sqlite_step_done(s, st, "remove memory entries")) < 0)
			return rc;
	}
	return 0;
}

/* ---- reading ---- */

int ps_sqlite_memory_search(struct ps_store *s, int64_t project_id, const char *query,
			   bool include_superseded, int64_t limit, int64_t offset,
			   struct ps_memory_entry **out, size_t *n)
{
	/* Every word also matches as a prefix ("cach" finds "caching"); entries where every word
	 * matches whole come first. Then bm25 with weights title 10, body 1, tags 5, so a word in
	 * the title outranks the same word in the body. Ties: newest first. */
	static const char search_sql[] =
		"SELECT " MEM_COLS ", snippet(memory_fts, 1, '<mark>', '</mark>', '…', "
		SNIPPET_TOKENS "), bm25(memory_fts, 10.0, 1.0, 5.0) AS r "
		"FROM memory_fts JOIN memory_entries e ON e.id = memory_fts.rowid "
		"JOIN projects p ON p.id = e.project_id "
		"WHERE memory_fts MATCH ?1 AND e.project_id = ?2 "
		"AND (e.state = 'active' OR (?3 AND e.state = 'superseded')) "
		"ORDER BY e.id NOT IN (SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?6), "
		"r, e.id DESC LIMIT ?4 OFFSET ?5";
	static const char list_sql[] =
		"SELECT " MEM_COLS MEM_FROM
		"WHERE e.project_id = ?2 AND (e.state = 'active' OR (?3 AND e.state = 'superseded')) "
		"ORDER BY e.id DESC LIMIT ?4 OFFSET ?5";
	char *fts = NULL, *whole = NULL;
	sqlite3_stmt *st;
	int rc;

	if (query && ((rc = ps_memory_fts_prefix_query(&fts, query)) < 0 ||
		      (rc = ps_memory_fts_query(&whole, query)) < 0)) {
		free(fts);
		return rc;
	}
	if (!(st = ps_sqlite_stmt(s, query ? search_sql : list_sql))) {
		free(fts);
		free(whole);
		return PS_ESTORE;
	}
	if (fts) {
		ps_sqlite_bind_text(st, 1, fts);
		ps_sqlite_bind_text(st, 6, whole);
	}
	sqlite3_bind_int64(st, 2, project_id);
	sqlite3_bind_int(st, 3, include_superseded);
	sqlite3_bind_int64(st, 4, limit > 0 ? limit : -1);
	sqlite3_bind_int64(st, 5, offset > 0 ? offset : 0);
	rc = collect(s, st, query != NULL, "list memory entries", out, n);
	free(fts);
	free(whole);
	return rc;
}

static int get_entry(struct ps_store *s, int64_t id, struct ps_memory_entry *out)
{
	static const char sql[] = "SELECT " MEM_COLS MEM_FROM "WHERE e.id = ? AND e.state != 'staged'";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		entry_from_row(st, out);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return ps_error_set(PS_ENOTFOUND, "memory_not_found", "memory entry %lld not found",
				    (long long)id);
	return ps_sqlite_error(s, "read memory entry");
}

int ps_sqlite_memory_get(struct ps_store *s, int64_t id, struct ps_memory_entry **out)
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

int ps_sqlite_memory_history(struct ps_store *s, int64_t id, struct ps_memory_entry **out,
			    size_t *n)
{
	static const char sql[] =
		"SELECT " MEM_COLS MEM_FROM "WHERE e.project_id = ?1 AND e.source_ref = ?2 "
		"AND e.state != 'staged' ORDER BY e.id DESC";
	struct ps_memory_entry e;
	sqlite3_stmt *st;
	int rc;

	if ((rc = get_entry(s, id, &e)) < 0)
		return rc;
	if (!e.source_ref) {
		/* A manual note has no path: its versions are the entries linked to it by edits,
		 * deletes and restores. */
		if (!(st = ps_sqlite_stmt(s, "SELECT " MEM_COLS MEM_FROM "WHERE e.id IN ("
					      NOTE_VERSIONS ") ORDER BY e.id DESC"))) {
			ps_memory_entry_dispose(&e);
			return PS_ESTORE;
		}
		sqlite3_bind_int64(st, 1, e.id);
		sqlite3_bind_int64(st, 2, e.project_id);
		rc = collect(s, st, false, "read memory history", out, n);
		ps_memory_entry_dispose(&e);
		return rc;
	}
	if (!(st = ps_sqlite_stmt(s, sql))) {
		ps_memory_entry_dispose(&e);
		return PS_ESTORE;
	}
	sqlite3_bind_int64(st, 1, e.project_id);
	ps_sqlite_bind_text(st, 2, e.source_ref);
	rc = collect(s, st, false, "read memory history", out, n);
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
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	char *tj;
	int rc;

	if (!st)
		return PS_ESTORE;
	tj = tags_json(tags);
	sqlite3_bind_int64(st, 1, project_id);
	ps_sqlite_bind_text(st, 2, ps_memory_origin_name(origin));
	ps_sqlite_bind_text(st, 3, source);
	ps_sqlite_bind_text(st, 4, source_ref);
	ps_sqlite_bind_text(st, 5, title);
	ps_sqlite_bind_text(st, 6, tj);
	ps_sqlite_bind_text(st, 7, content ? content : "");
	ps_sqlite_bind_text(st, 8, sha && sha[0] ? sha : NULL);
	bind_id(st, 9, restored_from);
	sqlite3_bind_int64(st, 10, ps_now_ms());
	rc = ps_sqlite_step_done(s, st, "add memory entry");
	free(tj);
	if (rc < 0)
		return rc;
	*id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int ps_sqlite_memory_add(struct ps_store *s, int64_t project_id, const char *title,
			const char *content, const struct ps_strv *tags,
			struct ps_memory_entry **out)
{
	struct ps_project *p = NULL;
	int64_t id;
	int rc;

	if ((rc = ps_memory_check_note(title, content, tags)) < 0)
		return rc;
	if ((rc = ps_store_project_get_by_id(s, project_id, &p)) < 0)
		return rc;
	ps_project_free(p);
	if ((rc = insert_entry(s, project_id, PS_MEMORY_FROM_MANUAL, "manual", NULL, title, tags,
			       content, NULL, 0, &id)) < 0)
		return rc;
	return out ? ps_store_memory_get(s, id, out) : 0;
}

/* The entry an edit or a delete may change: an active manual note; PS_ECONFLICT otherwise. */
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

/* Supersedes active entry `id` (successor `next`, 0: none); PS_ECONFLICT if it was no longer
 * active (another writer got there first). */
static int supersede_active(struct ps_store *s, int64_t id, int64_t next)
{
	static const char sql[] =
		"UPDATE memory_entries SET state = 'superseded', superseded_at = ?1, "
		"superseded_by_entry = ?2 WHERE id = ?3 AND state = 'active'";
	sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
	int rc;

	if (!st)
		return PS_ESTORE;
	sqlite3_bind_int64(st, 1, ps_now_ms());
	bind_id(st, 2, next);
	sqlite3_bind_int64(st, 3, id);
	if ((rc = ps_sqlite_step_done(s, st, "supersede memory entry")) < 0)
		return rc;
	if (sqlite3_changes(s->db) != 1)
		return ps_error_set(PS_ECONFLICT, "not_active",
				    "memory entry %lld changed meanwhile: reload it", (long long)id);
	return 0;
}

int ps_sqlite_memory_edit(struct ps_store *s, int64_t id, const char *title,
			 const char *content, const struct ps_strv *tags,
			 struct ps_memory_entry **out, bool *changed)
{
	struct ps_memory_entry old, next = { 0 };
	int64_t new_id = 0;
	int rc;

	if (changed)
		*changed = false;
	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = get_entry(s, id, &old)) < 0) {
		ps_store_rollback(s);
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
		/* Nothing changes: no new version, so a retried edit does not stack them up. */
		ps_memory_entry_dispose(&old);
		ps_store_commit(s);
		return out ? ps_store_memory_get(s, id, out) : 0;
	}
	/* Out of `active` first, then linked to its successor once that exists. */
	if ((rc = supersede_active(s, id, 0)) < 0 ||
	    (rc = insert_entry(s, old.project_id, PS_MEMORY_FROM_MANUAL, "manual", NULL,
			       next.title, &next.tags, next.content, NULL, 0, &new_id)) < 0)
		goto done;
	{
		sqlite3_stmt *st = ps_sqlite_stmt(s, "UPDATE memory_entries SET superseded_by_entry "
						     "= ?1 WHERE id = ?2");
		if (!st) {
			rc = PS_ESTORE;
			goto done;
		}
		sqlite3_bind_int64(st, 1, new_id);
		sqlite3_bind_int64(st, 2, id);
		if ((rc = ps_sqlite_step_done(s, st, "link the edited note")) < 0)
			goto done;
	}
	ps_memory_entry_dispose(&old);
	if ((rc = ps_store_commit(s)) < 0)
		return rc;
	if (changed)
		*changed = true;
	return out ? ps_store_memory_get(s, new_id, out) : 0;
done:
	ps_memory_entry_dispose(&old);
	ps_store_rollback(s);
	return rc;
}

int ps_sqlite_memory_delete(struct ps_store *s, int64_t id, struct ps_memory_entry **out)
{
	struct ps_memory_entry old;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = get_entry(s, id, &old)) < 0) {
		ps_store_rollback(s);
		return rc;
	}
	rc = editable(&old, "deleted");
	ps_memory_entry_dispose(&old);
	if (rc < 0 || (rc = supersede_active(s, id, 0)) < 0) {
		ps_store_rollback(s);
		return rc;
	}
	if ((rc = ps_store_commit(s)) < 0)
		return rc;
	return out ? ps_store_memory_get(s, id, out) : 0;
}

/*
 * The version an entry is a copy of: its restored_from chain followed to the entry no restore
 * made. Ids only go down along the chain (a copy is newer than what it copies), so it ends; the
 * bound only guards against a damaged store.
 */
static int original_of(struct ps_store *s, int64_t id, int64_t *out)
{
	static const char sql[] = "SELECT restored_from FROM memory_entries WHERE id = ?";

	*out = id;
	for (int steps = 0; steps < 100000; steps++) {
		sqlite3_stmt *st = ps_sqlite_stmt(s, sql);
		int64_t from = 0;
		int rc;

		if (!st)
			return PS_ESTORE;
		sqlite3_bind_int64(st, 1, *out);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			from = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return ps_sqlite_error(s, "follow a restored entry");
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

int ps_sqlite_memory_restore(struct ps_store *s, int64_t id, struct ps_memory_entry **out,
			    bool *restored)
{
	static const char current_sql[] =
		"SELECT id FROM memory_entries WHERE project_id = ? AND source_ref = ? "
		"AND state = 'active'";
	static const char current_note_sql[] =
		"SELECT id FROM memory_entries WHERE id IN (" NOTE_VERSIONS ") AND state = 'active'";
	static const char supersede_sql[] =
		"UPDATE memory_entries SET state = 'superseded', superseded_at = ?1, "
		"superseded_by_entry = ?2 WHERE id = ?3";
	struct ps_memory_entry old, cur = { 0 };
	int64_t current = 0, new_id = 0;
	sqlite3_stmt *st;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = get_entry(s, id, &old)) < 0) {
		ps_store_rollback(s);
		return rc;
	}
	if (old.status == PS_MEMORY_ACTIVE) {
		/* Nothing to do: say so, and hand back the entry as it is. */
		ps_store_commit(s);
		return restore_noop(&old, out, restored);
	}
	{
		/* A path's current entry; a manual note's: its active version, if not deleted. */
		if (!(st = ps_sqlite_stmt(s, old.source_ref ? current_sql : current_note_sql))) {
			rc = PS_ESTORE;
			goto fail;
		}
		if (old.source_ref) {
			sqlite3_bind_int64(st, 1, old.project_id);
			ps_sqlite_bind_text(st, 2, old.source_ref);
		} else {
			sqlite3_bind_int64(st, 1, old.id);
			sqlite3_bind_int64(st, 2, old.project_id);
		}
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			current = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			rc = ps_sqlite_error(s, "find the current memory entry");
			goto fail;
		}
	}
	if (current) {
		/* Already current: the path's active entry is a copy of the same version (restored
		 * from it, or from a copy of it) and reads the same. A retried restore must not
		 * stack up identical versions. */
		int64_t a = 0, b = 0;

		if ((rc = get_entry(s, current, &cur)) < 0 || (rc = original_of(s, id, &a)) < 0 ||
		    (rc = original_of(s, current, &b)) < 0)
			goto fail;
		if (a == b && ps_memory_same_text(&cur, &old)) {
			ps_memory_entry_dispose(&old);
			ps_store_commit(s);
			return restore_noop(&cur, out, restored);
		}
		ps_memory_entry_dispose(&cur);
		/* Out of `active` first (one active entry per path); linked to its successor
		 * once that exists. */
		if (!(st = ps_sqlite_stmt(s, supersede_sql))) {
			rc = PS_ESTORE;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, ps_now_ms());
		sqlite3_bind_null(st, 2);
		sqlite3_bind_int64(st, 3, current);
		if ((rc = ps_sqlite_step_done(s, st, "supersede memory entry")) < 0)
			goto fail;
	}
	if ((rc = insert_entry(s, old.project_id,
			       old.origin == PS_MEMORY_FROM_MANUAL ? PS_MEMORY_FROM_MANUAL
								   : PS_MEMORY_FROM_RESTORE,
			       old.source, old.source_ref, old.title, &old.tags, old.content, old.sha,
			       old.id, &new_id)) < 0)
		goto fail;
	if (current) {
		if (!(st = ps_sqlite_stmt(s, supersede_sql))) {
			rc = PS_ESTORE;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, ps_now_ms());
		sqlite3_bind_int64(st, 2, new_id);
		sqlite3_bind_int64(st, 3, current);
		if ((rc = ps_sqlite_step_done(s, st, "supersede memory entry")) < 0)
			goto fail;
	}
	ps_memory_entry_dispose(&old);
	if ((rc = ps_store_commit(s)) < 0)
		return rc;
	if (restored)
		*restored = true;
	return out ? ps_store_memory_get(s, new_id, out) : 0;
fail:
	ps_memory_entry_dispose(&cur);
	ps_memory_entry_dispose(&old);
	ps_store_rollback(s);
	return rc;
}
