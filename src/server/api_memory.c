/*
 * A project's memory entries over HTTP (docs/architecture.md §7, JSON shape in §6): list and full-text
 * search (`GET /api/v1/projects/{name}/memory?q&include_superseded&limit&offset`), one entry and
 * its versions (`GET /api/v1/memory/{id}`, `.../history`), a note added by hand
 * (`POST /api/v1/projects/{name}/memory`) and restoring an older version
 * (`POST /api/v1/memory/{id}/restore`); a manual note edited (`PATCH /api/v1/memory/{id}`: a new
 * version supersedes it) or deleted (`DELETE /api/v1/memory/{id}`: superseded with no successor,
 * restorable). Entries a sync imported answer 409 "not_manual": their file is the truth. The work is the store's (store.h, memory entries); the
 * JSON is ps_memory_entry_to_json, the shape `projsync memory --json` prints.
 *
 * Search text is the user's, never FTS syntax (ps_memory_fts_query quotes every word), so
 * quotes, `-`, `*` and parentheses are words. A failure the user cannot cause is answered
 * 500 with a generic message: whatever the store's message says (it may quote SQLite) stays in
 * the server's log.
 *
 * A restore that makes a new entry answers 201 with its Location. Restoring a version that is
 * already current (store.h, ps_store_memory_restore) changes nothing and answers 200 with the
 * current entry, so "make this version current" is safe to retry; `"restored"` in the body
 * and `X-Projsync-Restored` say which of the two happened.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "core/memory.h"
#include "server/http.h"
#include "util/error.h"

#define MEMORY_PAGE 50 /* entries per page when ?limit is absent */

/* Replies for a store failure: the user's mistakes keep their message, anything else is a
 * generic 500 (logged with the real message). */
static void memory_fail(struct ps_request *rq, int rc, const char *what)
{
	switch (rc) {
	case PS_EINVAL:
	case PS_ENOTFOUND:
	case PS_ECONFLICT:
		ps_http_fail(rq, rc);
		return;
	case PS_ETOOBIG:
		/* A query or content over a size limit is bad input, not a large body. */
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST,
			      ps_error_slug()[0] ? ps_error_slug() : "too_big", "%s",
			      ps_error_message());
		return;
	default:
		ps_log_at("error", "%s %s: %s failed: %s", rq->method, rq->url, what, ps_error_message());
		ps_http_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
			      "%s failed (see the server log)", what);
	}
}

/* ?offset: a count from 0; 0 when absent. */
static bool parse_offset(struct ps_request *rq, int64_t *out)
{
	const char *s = ps_http_query(rq, "offset");
	char *end;
	long long v;

	*out = 0;
	if (!s)
		return true;
	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!errno && !*end) {
			*out = v;
			return true;
		}
	}
	ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_offset",
		      "invalid offset '%.50s': give a number from 0", s);
	return false;
}

static json_t *entries_json(const struct ps_memory_entry *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, ps_memory_entry_to_json(&v[i]));
	return a;
}

void ps_api_project_memory(struct ps_request *rq)
{
	struct ps_project *p = NULL;
	struct ps_memory_entry *v = NULL;
	const char *q = ps_http_query(rq, "q");
	int64_t limit, offset;
	bool superseded;
	size_t n = 0;
	int rc;

	if (!ps_api_parse_limit(rq, MEMORY_PAGE, &limit) || !parse_offset(rq, &offset) ||
	    !ps_http_query_bool(rq, "include_superseded", &superseded))
		return;
	if (q) {
		/* Checked before anything else: a query without a word is the client's
		 * mistake whichever project it names. */
		char *fts = NULL;
		if ((rc = ps_memory_fts_query(&fts, q)) < 0) {
			memory_fail(rq, rc, "the search");
			return;
		}
		free(fts);
	}
	if (!(p = ps_http_project(rq)))
		return;
	/* One more than asked tells whether there is a next page. */
	if ((rc = ps_store_memory_search(rq->store, p->id, q, superseded, limit + 1, offset, &v,
					 &n)) < 0) {
		memory_fail(rq, rc, q ? "the search" : "listing memory entries");
		goto cleanup;
	}
	ps_http_json(rq, MHD_HTTP_OK, entries_json(v, (int64_t)n > limit ? (size_t)limit : n));
	if ((int64_t)n > limit) {
		char *eq = q ? ps_percent_encode(q, "") : NULL;
		char *link = ps_asprintf("</api/v1/projects/%s/memory?limit=%" PRId64 "&offset=%"
					 PRId64 "%s%s%s>; rel=\"next\"", p->name, limit,
					 offset + limit, eq ? "&q=" : "", eq ? eq : "",
					 superseded ? "&include_superseded=true" : "");
		ps_http_add_header(rq, "Link", link);
		free(link);
		free(eq);
	}
cleanup:
	ps_memory_entries_free(v, n);
	ps_project_free(p);
}

/* Path parameter 0 as a memory entry id; replies 400 and returns false if bad. */
static bool entry_id(struct ps_request *rq, int64_t *id)
{
	return ps_http_parse_id(rq, "memory entry id", ps_http_param(rq, 0), id);
}

void ps_api_memory_get(struct ps_request *rq)
{
	struct ps_memory_entry *e = NULL;
	int64_t id;
	int rc;

	if (!entry_id(rq, &id))
		return;
	if ((rc = ps_store_memory_get(rq->store, id, &e)) < 0) {
		memory_fail(rq, rc, "reading the memory entry");
		return;
	}
	ps_http_json(rq, MHD_HTTP_OK, ps_memory_entry_to_json(e));
	ps_memory_entry_free(e);
}

void ps_api_memory_history(struct ps_request *rq)
{
	struct ps_memory_entry *v = NULL;
	size_t n = 0;
	int64_t id;
	int rc;

	if (!entry_id(rq, &id))
		return;
	if ((rc = ps_store_memory_history(rq->store, id, &v, &n)) < 0) {
		memory_fail(rq, rc, "reading the entry's history");
		return;
	}
	ps_http_json(rq, MHD_HTTP_OK, entries_json(v, n));
	ps_memory_entries_free(v, n);
}

void ps_api_memory_restore(struct ps_request *rq)
{
	struct ps_memory_entry *e = NULL;
	bool restored = false;
	json_t *j;
	int64_t id;
	int rc;

	if (!entry_id(rq, &id) || !ps_http_no_fields(rq))
		return;
	if ((rc = ps_store_memory_restore(rq->store, id, &e, &restored)) < 0) {
		memory_fail(rq, rc, "the restore");
		return;
	}
	if (restored)
		ps_log("memory entry %" PRId64 " of %s restored as entry %" PRId64, id, e->project,
		       e->id);
	j = ps_memory_entry_to_json(e);
	json_object_set_new(j, "restored", json_boolean(restored));
	ps_http_json(rq, restored ? MHD_HTTP_CREATED : MHD_HTTP_OK, j);
	ps_http_add_header(rq, "X-Projsync-Restored", restored ? "true" : "false");
	if (restored) {
		char loc[64];
		snprintf(loc, sizeof(loc), "/api/v1/memory/%" PRId64, e->id);
		ps_http_add_header(rq, MHD_HTTP_HEADER_LOCATION, loc);
	}
	ps_memory_entry_free(e);
}

/* A required string member: 400 when absent or not a string. */
static bool need_string(struct ps_request *rq, json_t *body, const char *key, const char **out)
{
	json_t *v = json_object_get(body, key);

	/* A present member of the wrong type is not a missing one (PATCH requires none). */
	if (!v || !json_is_string(v)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, v ? "invalid_field" : "missing_field",
			      v ? "'%s' must be a string" : "'%s' is required and must be a string",
			      key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* A JSON array of strings into `tags`; 400 otherwise. */
static bool parse_tags(struct ps_request *rq, json_t *v, struct ps_strv *tags)
{
	size_t i;
	json_t *t;

	if (!json_is_array(v))
		goto bad;
	json_array_foreach(v, i, t) {
		if (!json_is_string(t))
			goto bad;
		ps_strv_push(tags, json_string_value(t));
	}
	return true;
bad:
	ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field", "'tags' must be an array of strings");
	return false;
}

/* Replies for a failed edit or delete: bad values 422, like adding a note. */
static void note_fail(struct ps_request *rq, int rc, const char *what)
{
	if (rc == PS_EINVAL || rc == PS_ETOOBIG)
		ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT,
			      ps_error_slug()[0] ? ps_error_slug() : "invalid_field", "%s",
			      ps_error_message());
	else
		memory_fail(rq, rc, what);
}

void ps_api_memory_patch(struct ps_request *rq)
{
	static const char *const known[] = { "title", "content", "tags", NULL };
	struct ps_memory_entry *e = NULL;
	struct ps_strv tags = { 0 };
	const char *title = NULL, *content = NULL;
	bool changed = false, have_tags = false;
	json_t *body, *v;
	int64_t id;
	int rc;

	if (!entry_id(rq, &id) || !(body = ps_http_body_fields(rq, false, known)))
		return;
	if (json_object_size(body) == 0) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "nothing_to_change",
			      "give at least one of title, content, tags");
		goto cleanup;
	}
	if ((v = json_object_get(body, "title")) && !need_string(rq, body, "title", &title))
		goto cleanup;
	if ((v = json_object_get(body, "content")) && !need_string(rq, body, "content", &content))
		goto cleanup;
	if ((v = json_object_get(body, "tags"))) {
		/* null or [] both clear them */
		if (!json_is_null(v) && !parse_tags(rq, v, &tags))
			goto cleanup;
		have_tags = true;
	}
	if ((rc = ps_store_memory_edit(rq->store, id, title, content, have_tags ? &tags : NULL, &e,
				       &changed)) < 0) {
		note_fail(rq, rc, "the edit");
		goto cleanup;
	}
	if (changed)
		ps_log("memory entry %" PRId64 " of %s edited as entry %" PRId64, id, e->project,
		       e->id);
	v = ps_memory_entry_to_json(e);
	json_object_set_new(v, "changed", json_boolean(changed));
	ps_http_json(rq, MHD_HTTP_OK, v);
	if (changed) {
		char loc[64];
		snprintf(loc, sizeof(loc), "/api/v1/memory/%" PRId64, e->id);
		ps_http_add_header(rq, MHD_HTTP_HEADER_LOCATION, loc);
	}
cleanup:
	ps_memory_entry_free(e);
	ps_strv_dispose(&tags);
	json_decref(body);
}

void ps_api_memory_delete(struct ps_request *rq)
{
	struct ps_memory_entry *e = NULL;
	int64_t id;
	int rc;

	if (!entry_id(rq, &id) || !ps_http_no_fields(rq))
		return;
	if ((rc = ps_store_memory_delete(rq->store, id, &e)) < 0) {
		note_fail(rq, rc, "the delete");
		return;
	}
	ps_log("memory entry %" PRId64 " of %s deleted", id, e->project);
	ps_http_json(rq, MHD_HTTP_OK, ps_memory_entry_to_json(e));
	ps_memory_entry_free(e);
}

void ps_api_project_memory_add(struct ps_request *rq)
{
	static const char *const known[] = { "title", "content", "tags", NULL };
	struct ps_project *p = NULL;
	struct ps_memory_entry *e = NULL;
	struct ps_strv tags = { 0 };
	const char *title, *content;
	json_t *body, *v;
	char loc[64];
	int rc;

	if (!(body = ps_http_body_fields(rq, false, known)))
		return;
	if (!need_string(rq, body, "title", &title) || !need_string(rq, body, "content", &content))
		goto cleanup;
	if ((v = json_object_get(body, "tags")) && !json_is_null(v) && !parse_tags(rq, v, &tags))
		goto cleanup;
	if (!(p = ps_http_project(rq)))
		goto cleanup;
	if ((rc = ps_store_memory_add(rq->store, p->id, title, content, &tags, &e)) < 0) {
		/* Well-formed but unacceptable values (an empty or multi-line title, an empty
		 * or over-long tag) are 422, like a source that is not a repository. */
		if (rc == PS_EINVAL || rc == PS_ETOOBIG)
			ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT,
				      ps_error_slug()[0] ? ps_error_slug() : "invalid_field", "%s",
				      ps_error_message());
		else
			memory_fail(rq, rc, "adding the memory entry");
		goto cleanup;
	}
	ps_log("memory entry %" PRId64 " added to %s", e->id, p->name);
	ps_http_json(rq, MHD_HTTP_CREATED, ps_memory_entry_to_json(e));
	snprintf(loc, sizeof(loc), "/api/v1/memory/%" PRId64, e->id);
	ps_http_add_header(rq, MHD_HTTP_HEADER_LOCATION, loc);
cleanup:
	ps_memory_entry_free(e);
	ps_strv_dispose(&tags);
	ps_project_free(p);
	json_decref(body);
}
