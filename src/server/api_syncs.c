/*
 * /api/v1/syncs/{id}: a sync, its cancellation and its changes (vs. the previous succeeded sync
 * of its project, like `projsync changes`).
 *
 * Cancel goes through the store's flag (ps_store_sync_request_cancel), not through this
 * process's memory, so it reaches a sync run by any worker or by the CLI in another process:
 * the pipeline checks the flag at every step boundary. A queued sync ends at once; its final
 * `cancelled` event is stored here so its stream ends like every other.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "core/json.h"
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
	struct ps_sync *s = load_sync(rq), *after = NULL;
	int rc;

	if (!s)
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
