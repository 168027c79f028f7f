/*
 * /api/v1/syncs/{id}: a sync, its cancellation and its changes (vs. the previous succeeded sync
 * of its project, like `projsync changes`); /api/v1/syncs/{a}/diff/{b}: the changes between two
 * syncs, with content diffs on request (like `projsync diff --patch`, core/patch.h).
 *
 * Cancel goes through the store's flag (ps_store_sync_request_cancel), not through this
 * process's memory, so it reaches a sync run by any worker or by the CLI in another process:
 * the pipeline checks the flag at every step boundary. A queued sync ends at once; its final
 * `cancelled` event is stored here so its stream ends like every other.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "core/patch.h"
#include "server/http.h"
#include "util/error.h"

static struct ps_sync *load_sync(struct ps_request *rq)
{
	struct ps_sync *s = NULL;
	int64_t id;
	int rc;

	if (!ps_http_parse_id(rq, "sync id", ps_http_param(rq, 0), &id))
		return NULL;
	if ((rc = ps_store_sync_get(rq->store, id, &s)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, "sync_not_found", "sync %" PRId64 " not found", id);
		ps_http_fail(rq, rc);
		return NULL;
	}
	return s;
}

void ps_api_sync_get(struct ps_request *rq)
{
	struct ps_sync *s = load_sync(rq);

	if (!s)
		return;
	if (s->status == PS_SYNC_RUNNING) {
		/* A sync whose owner died shows as interrupted, not as running forever. */
		struct ps_sync *again = NULL;
		if (ps_store_reap(rq->store, s->project_id, NULL) == 0 &&
		    ps_store_sync_get(rq->store, s->id, &again) == 0) {
			ps_sync_free(s);
			s = again;
		}
		ps_error_clear();
	}
	ps_http_json(rq, MHD_HTTP_OK, ps_sync_to_json(s));
	ps_sync_free(s);
}

void ps_api_sync_cancel(struct ps_request *rq)
{
	struct ps_sync *s, *after = NULL;
	int rc;

	if (!ps_http_no_fields(rq) || !(s = load_sync(rq)))
		return;
	if ((rc = ps_store_sync_request_cancel(rq->store, s->id)) < 0) {
		if (rc == PS_ECONFLICT)
			ps_error_set(rc, "sync_ended", "sync %" PRId64 " has already ended (%s)",
				     s->id, ps_sync_status_name(s->status));
		ps_http_fail(rq, rc);
		ps_sync_free(s);
		return;
	}
	/* A queued sync ended right here: give its stream the final event. */
	(void)ps_sse_ensure_final_event(rq->store, s->id);
	ps_hub_poke(rq->srv->hub);
	ps_log("sync %" PRId64 " of %s: cancel requested", s->id, s->project);
	if (ps_store_sync_get(rq->store, s->id, &after) == 0) {
		ps_http_json(rq, MHD_HTTP_ACCEPTED, ps_sync_to_json(after));
		ps_sync_free(after);
	} else {
		ps_http_json(rq, MHD_HTTP_ACCEPTED, ps_sync_to_json(s));
	}
	ps_sync_free(s);
}

void ps_api_sync_changes(struct ps_request *rq)
{
	struct ps_sync *s = load_sync(rq), *prev = NULL;
	struct ps_change *cs = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	if (!s)
		return;
	if (s->status != PS_SYNC_SUCCEEDED) {
		ps_http_error(rq, MHD_HTTP_CONFLICT, "not_succeeded", "sync %" PRId64 " of %s is "
			      "%s: only a succeeded sync has changes", s->id, s->project,
			      ps_sync_status_name(s->status));
		goto cleanup;
	}
	if (s->id > 1) {
		rc = ps_store_sync_last_succeeded(rq->store, s->project_id, s->id - 1, &prev);
		if (rc < 0 && rc != PS_ENOTFOUND) {
			ps_http_fail(rq, rc);
			goto cleanup;
		}
	}
	if ((rc = ps_store_diff(rq->store, s->project_id, prev ? prev->id : 0, s->id, &cs,
				&n)) < 0) {
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, ps_change_to_json(&cs[i]));
	ps_http_json(rq, MHD_HTTP_OK, arr);
cleanup:
	for (size_t i = 0; i < n; i++)
		ps_change_dispose(&cs[i]);
	free(cs);
	ps_sync_free(prev);
	ps_sync_free(s);
}

/* The commits a succeeded sync brought, newest first (`projsync log`): a bare array; the
 * sync object's commit_count and commits_truncated say what the list is not. */
void ps_api_sync_commits(struct ps_request *rq)
{
	struct ps_sync *s = load_sync(rq);
	struct ps_commit *v = NULL;
	size_t n = 0;
	int64_t limit = 0;
	json_t *arr;
	int rc;

	if (!s)
		return;
	if (ps_http_query(rq, "limit") && !ps_api_parse_limit(rq, 0, &limit))
		goto cleanup;
	if (s->status != PS_SYNC_SUCCEEDED) {
		ps_http_error(rq, MHD_HTTP_CONFLICT, "not_succeeded", "sync %" PRId64 " of %s is "
			      "%s: only a succeeded sync has commits", s->id, s->project,
			      ps_sync_status_name(s->status));
		goto cleanup;
	}
	if ((rc = ps_store_sync_commits(rq->store, s->id, limit, &v, &n)) < 0) {
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, ps_commit_to_json(&v[i], true));
	ps_http_json(rq, MHD_HTTP_OK, arr);
cleanup:
	ps_commits_free(v, n);
	ps_sync_free(s);
}

/* ---- /api/v1/syncs/{a}/diff/{b} ---- */

#define MAX_DIFF_PATHS 64

struct paths {
	const char *v[MAX_DIFF_PATHS];
	size_t n;
	bool too_many;
};

static enum MHD_Result collect_path(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct paths *p = cls;

	(void)kind;
	if (strcmp(key, "path") != 0 || !value)
		return MHD_YES;
	if (p->n == MAX_DIFF_PATHS) {
		p->too_many = true;
		return MHD_NO;
	}
	p->v[p->n++] = value;
	return MHD_YES;
}

static int append_buf(void *ud, const char *data, size_t len)
{
	return ps_buf_append(ud, data, len);
}

/* The syncs must be succeeded syncs of one project: replies and returns false otherwise. */
static bool comparable(struct ps_request *rq, const struct ps_sync *a, const struct ps_sync *b)
{
	if (a->project_id != b->project_id) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "different_projects", "sync %" PRId64
			      " is of project %s and sync %" PRId64 " of project %s: compare syncs "
			      "of one project", a->id, a->project, b->id, b->project);
		return false;
	}
	if (a->status != PS_SYNC_SUCCEEDED || b->status != PS_SYNC_SUCCEEDED) {
		const struct ps_sync *bad = a->status != PS_SYNC_SUCCEEDED ? a : b;
		ps_http_error(rq, MHD_HTTP_CONFLICT, "not_succeeded", "sync %" PRId64 " is %s: only "
			      "succeeded syncs have snapshots", bad->id,
			      ps_sync_status_name(bad->status));
		return false;
	}
	return true;
}

void ps_api_sync_diff(struct ps_request *rq)
{
	struct ps_sync *a = NULL, *b = NULL;
	struct paths paths = { 0 };
	struct ps_patch_opts opts = { 0 };
	const char *format = ps_http_query(rq, "format"), *accept = ps_http_header(rq, "Accept");
	bool text, patch, stat, full_index;
	int64_t bid;
	int rc;

	if (!ps_http_query_bool(rq, "patch", &patch) || !ps_http_query_bool(rq, "stat", &stat) ||
	    !ps_http_query_bool(rq, "full_index", &full_index))
		return;
	if (format && strcmp(format, "diff") != 0 && strcmp(format, "json") != 0) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_format", "invalid format '%s': "
			      "give diff or json", format);
		return;
	}
	/* ?format wins; else an Accept that names text/x-diff asks for the patch as text. */
	text = format ? strcmp(format, "diff") == 0 : accept && strstr(accept, "text/x-diff");
	MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, collect_path, &paths);
	if (paths.too_many) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "too_many_paths", "at most %d path "
			      "arguments", MAX_DIFF_PATHS);
		return;
	}
	for (size_t i = 0; i < paths.n; i++) {
		const char *why = ps_patch_path_problem(paths.v[i]);
		if (why) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_path", "invalid path "
				      "'%s': %s", paths.v[i], why);
			return;
		}
	}
	opts.paths = paths.v;
	opts.npaths = paths.n;
	opts.full_index = full_index;
	if (!(a = load_sync(rq)))
		return;
	if (!ps_http_parse_id(rq, "sync id", ps_http_param(rq, 1), &bid))
		goto cleanup;
	if ((rc = ps_store_sync_get(rq->store, bid, &b)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, "sync_not_found", "sync %" PRId64 " not found", bid);
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	if (!comparable(rq, a, b))
		goto cleanup;
	if (text) {
		struct ps_buf out;
		bool truncated = false;
		unsigned what = PS_PATCH_WANT_PATCH | (stat ? PS_PATCH_WANT_STAT : 0);
		ps_buf_init(&out, SIZE_MAX);
		rc = ps_patch_write(rq->store, a->project_id, a->id, b->id, &opts, what, 80,
				    PS_API_DIFF_MAX_BYTES, append_buf, &out, &truncated);
		if (rc < 0) {
			ps_buf_dispose(&out);
			ps_http_fail(rq, rc);
			goto cleanup;
		}
		{
			size_t len = out.len;
			char *data = ps_buf_take(&out, NULL);
			ps_http_raw(rq, MHD_HTTP_OK, "text/x-diff", data ? data : ps_strdup(""), len,
				    true);
		}
		if (truncated)
			ps_http_add_header(rq, "X-Projsync-Truncated", "true");
	} else if (patch) {
		json_t *j = NULL;
		if ((rc = ps_patch_json(rq->store, a->project_id, a->id, b->id, &opts,
					PS_API_DIFF_MAX_BYTES, &j)) < 0) {
			ps_http_fail(rq, rc);
			goto cleanup;
		}
		ps_http_json(rq, MHD_HTTP_OK, j);
	} else {
		struct ps_change *cs = NULL;
		size_t n = 0;
		json_t *arr;
		if ((rc = ps_store_diff(rq->store, a->project_id, a->id, b->id, &cs, &n)) < 0) {
			ps_http_fail(rq, rc);
			goto cleanup;
		}
		arr = json_array();
		for (size_t i = 0; i < n; i++) {
			if (ps_patch_change_matches(&cs[i], opts.paths, opts.npaths))
				json_array_append_new(arr, ps_change_to_json(&cs[i]));
			ps_change_dispose(&cs[i]);
		}
		free(cs);
		ps_http_json(rq, MHD_HTTP_OK, arr);
	}
cleanup:
	ps_sync_free(a);
	ps_sync_free(b);
}
