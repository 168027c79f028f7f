/*
 * /api/v1/projects: list, create, show, delete, branches, sync status, start a sync and the
 * sync history of a project. The JSON shapes are core/json.h's, the same `--json` prints.
 * Creating a project checks its source and branch first (ps_source_check_branch, as `project add`
 * does): a source that names no repository, or a branch it does not have, is refused with 422
 * and nothing is stored.
 *
 * Checking a remote source (here and for the branch list) blocks a request thread on the
 * network, so it is bounded twice: each check fails after the network timeout (504), and at most
 * half the HTTP threads may wait on remotes at once (503 beyond), so the others keep answering
 * /healthz and everything else whatever the remotes do.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/project.h"
#include "server/http.h"
#include "source/source.h"
#include "util/error.h"


static atomic_int remote_waits;

/* A local source is an absolute path (the API refuses relative ones; the CLI stores absolute
 * paths): reading it never waits on a network. */
static bool source_is_remote(const char *source)
{
	return source[0] != '/';
}

/* Takes a slot for a request thread about to wait on a remote; false (503 sent) when none is
 * free. remote_wait_leave gives it back. */
static bool remote_wait_enter(struct ps_request *rq)
{
	int threads = rq->srv->cfg.http_threads > 0 ? rq->srv->cfg.http_threads : 1;
	int cap = threads / 2 > 0 ? threads / 2 : 1;
	char after[24];

	if (atomic_fetch_add(&remote_waits, 1) < cap)
		return true;
	atomic_fetch_sub(&remote_waits, 1);
	/* Every wait ends within the network timeout: by then a slot is free. */
	snprintf(after, sizeof(after), "%lld",
		 (long long)((ps_source_net_timeout_ms() + 999) / 1000));
	ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "remote_busy",
		      "%d remote source checks are already in progress; retry in %s s", cap,
		      after);
	ps_http_add_header(rq, MHD_HTTP_HEADER_RETRY_AFTER, after);
	return false;
}

static void remote_wait_leave(void)
{
	atomic_fetch_sub(&remote_waits, 1);
}

/* 504 for a remote that did not answer in time, else `status`. */
static unsigned check_status(unsigned status)
{
	return strcmp(ps_error_slug(), "upstream_timeout") == 0 ? MHD_HTTP_GATEWAY_TIMEOUT
								 : status;
}

void ps_api_projects_list(struct ps_request *rq)
{
	struct ps_project **ps = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	if ((rc = ps_store_project_list(rq->store, &ps, &n)) < 0) {
		ps_http_fail(rq, rc);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(arr, ps_project_to_json(ps[i]));
		ps_project_free(ps[i]);
	}
	free(ps);
	ps_http_json(rq, MHD_HTTP_OK, arr);
}

/* A string member: absent (NULL, true), a non-empty string (true), else 400 and false. */
static bool opt_string(struct ps_request *rq, json_t *body, const char *key, const char **out)
{
	json_t *v = json_object_get(body, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'%s' must be a non-empty string", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

void ps_api_projects_create(struct ps_request *rq)
{
	static const char *const known[] = { "name", "source", "branch", "memory_globs",
					     "max_blob_size", NULL };
	struct ps_project p = { .max_blob_size = PS_DEFAULT_MAX_BLOB_SIZE };
	struct ps_source_opts sopts = { .cache_dir = rq->srv->cfg.cache_dir, .bounded = true };
	const char *name, *source, *branch;
	bool remote;
	json_t *body, *v;
	char *loc;
	int rc;

	if (!(body = ps_http_body_fields(rq, false, known)))
		return;
	if (!opt_string(rq, body, "name", &name) || !opt_string(rq, body, "source", &source) ||
	    !opt_string(rq, body, "branch", &branch))
		goto cleanup;
	if (!name || !source) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "missing_field",
			      "'name' and 'source' are required");
		goto cleanup;
	}
	if (!ps_project_name_valid(name)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_name",
			      "invalid project name: use letters, digits, '.', '_' and '-', "
			      "starting with a letter or digit, at most 100 characters");
		goto cleanup;
	}
	if ((v = json_object_get(body, "max_blob_size")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
				      "'max_blob_size' must be a positive integer (bytes)");
			goto cleanup;
		}
		p.max_blob_size = json_integer_value(v);
	}
	if ((v = json_object_get(body, "memory_globs")) && !json_is_null(v)) {
		size_t i;
		json_t *g;
		if (!json_is_array(v) || json_array_size(v) > 100) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
				      "'memory_globs' must be an array of at most 100 patterns");
			goto cleanup;
		}
		json_array_foreach(v, i, g) {
			if (!json_is_string(g) || json_string_length(g) == 0) {
				ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
					      "'memory_globs' must hold non-empty strings");
				goto cleanup;
			}
			ps_strv_push(&p.memory_globs, json_string_value(g));
		}
	}
	if (p.memory_globs.n == 0)
		ps_strv_push(&p.memory_globs, PS_DEFAULT_MEMORY_GLOB);
	/* A server has no useful working directory: a local path must be absolute. */
	if (ps_source_is_local_path(source) && source[0] != '/') {
		ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_source",
			      "source '%.200s': give an absolute path, a git URL or "
			      "github:OWNER/REPO", source);
		goto cleanup;
	}
	if (!ps_access_source_allowed(rq, source))
		goto cleanup;
	if ((remote = source_is_remote(source)) && !remote_wait_enter(rq))
		goto cleanup;
	rc = ps_source_check_branch(source, branch, &sopts);
	if (remote)
		remote_wait_leave();
	if (rc < 0) {
		ps_http_error(rq, check_status(MHD_HTTP_UNPROCESSABLE_CONTENT),
			      ps_error_slug()[0] ? ps_error_slug() : "invalid_source", "%s",
			      ps_error_message()[0] ? ps_error_message() : "bad source");
		goto cleanup;
	}
	p.name = ps_strdup(name);
	p.source = ps_strdup(source);
	p.branch = branch ? ps_strdup(branch) : NULL;
	if ((rc = ps_store_project_add(rq->store, &p)) < 0) {
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	ps_log("project %s added (%s)", p.name, p.source);
	ps_http_json(rq, MHD_HTTP_CREATED, ps_project_to_json(&p));
	loc = ps_asprintf("/api/v1/projects/%s", p.name); /* names are URL-safe */
	ps_http_add_header(rq, MHD_HTTP_HEADER_LOCATION, loc);
	free(loc);
cleanup:
	json_decref(body);
	free(p.name);
	free(p.source);
	free(p.branch);
	ps_strv_dispose(&p.memory_globs);
}

void ps_api_project_get(struct ps_request *rq)
{
	struct ps_project *p = ps_http_project(rq);

	if (!p)
		return;
	ps_http_json(rq, MHD_HTTP_OK, ps_project_to_json(p));
	ps_project_free(p);
}

void ps_api_project_delete(struct ps_request *rq)
{
	struct ps_project *p = ps_http_project(rq);
	int rc;

	if (!p)
		return;
	(void)ps_store_reap(rq->store, p->id, NULL);
	if ((rc = ps_store_project_remove(rq->store, p->name)) < 0) {
		ps_http_fail(rq, rc);
	} else {
		ps_log("project %s removed", p->name);
		ps_http_raw(rq, MHD_HTTP_NO_CONTENT, NULL, NULL, 0, false);
	}
	ps_project_free(p);
}

void ps_api_project_branches(struct ps_request *rq)
{
	struct ps_project *p = ps_http_project(rq);
	struct ps_source_opts sopts = { .cache_dir = rq->srv->cfg.cache_dir, .bounded = true };
	struct ps_source *src = NULL;
	struct ps_strv names = { 0 };
	char *def = NULL;
	const char *selected;
	bool remote;
	json_t *arr;
	int rc;

	if (!p)
		return;
	if ((remote = source_is_remote(p->source)) && !remote_wait_enter(rq))
		goto cleanup;
	if ((rc = ps_source_open(&src, p->source, &sopts)) == 0)
		rc = ps_source_branches(src, &names, &def);
	if (remote)
		remote_wait_leave();
	if (rc < 0) {
		ps_error_wrap(rc, "project '%s': ", p->name);
		if (strcmp(ps_error_slug(), "upstream_timeout") == 0)
			ps_http_error(rq, MHD_HTTP_GATEWAY_TIMEOUT, "upstream_timeout", "%s",
				      ps_error_message());
		else
			ps_http_fail(rq, rc == PS_ENOTFOUND || rc == PS_EINVAL ? PS_EUPSTREAM : rc);
		goto cleanup;
	}
	selected = p->branch ? p->branch : def;
	arr = json_array();
	for (size_t i = 0; i < names.n; i++)
		json_array_append_new(arr, json_pack("{s:o, s:b, s:b}",
			"name", ps_json_string(names.v[i]),
			"default", def && strcmp(def, names.v[i]) == 0,
			"selected", selected && strcmp(selected, names.v[i]) == 0));
	ps_http_json(rq, MHD_HTTP_OK, arr);
cleanup:
	ps_strv_dispose(&names);
	free(def);
	if (src)
		ps_source_free(src);
	ps_project_free(p);
}

void ps_api_project_sync_status(struct ps_request *rq)
{
	struct ps_project *p = ps_http_project(rq);
	struct ps_project_status st;
	int rc;

	if (!p)
		return;
	if ((rc = ps_project_status_load(rq->store, p, &st)) < 0) {
		ps_http_fail(rq, rc);
	} else {
		/* The same object `projsync status --json` prints. */
		ps_http_json(rq, MHD_HTTP_OK, ps_project_status_to_json(p, &st));
		ps_project_status_dispose(&st);
	}
	ps_project_free(p);
}

void ps_api_project_sync_start(struct ps_request *rq)
{
	struct ps_project *p = NULL;
	struct ps_sync *sync = NULL;
	const char *branch = NULL;
	json_t *body;
	char loc[64];
	int rc;

	static const char *const known[] = { "branch", NULL };

	if (!(body = ps_http_body_fields(rq, true, known)))
		return;
	if (!opt_string(rq, body, "branch", &branch))
		goto cleanup;
	if (!(p = ps_http_project(rq)))
		goto cleanup;
	if ((rc = ps_server_queue_sync(rq->srv, rq->store, p, branch, "api", &sync)) < 0) {
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	ps_http_json(rq, MHD_HTTP_ACCEPTED, ps_sync_to_json(sync));
	snprintf(loc, sizeof(loc), "/api/v1/syncs/%" PRId64, sync->id);
	ps_http_add_header(rq, MHD_HTTP_HEADER_LOCATION, loc);
cleanup:
	json_decref(body);
	ps_sync_free(sync);
	ps_project_free(p);
}

/* Appends `rel="next"` for a page that was full. */
static void link_next(struct ps_request *rq, const char *path, int64_t limit, const char *key,
		      const char *cursor)
{
	char *link = ps_asprintf("<%s?limit=%" PRId64 "&%s=%s>; rel=\"next\"", path, limit, key,
				 cursor);

	ps_http_add_header(rq, "Link", link);
	free(link);
}

/* ?limit: 1..1000; 30 is GitHub's page size. */
bool ps_api_parse_limit(struct ps_request *rq, int64_t def, int64_t *out)
{
	const char *s = ps_http_query(rq, "limit");

	char *end = NULL;
	long long v;

	*out = def;
	if (!s)
		return true;
	/* Its own slug: "invalid_id" would send a client looking for an id it never gave. */
	errno = 0;
	v = *s >= '0' && *s <= '9' ? strtoll(s, &end, 10) : 0;
	if (errno || v <= 0 || *end || v > 1000) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_limit", "invalid limit '%s': give "
			      "a number from 1 to 1000", s);
		return false;
	}
	*out = v;
	return true;
}

void ps_api_project_syncs(struct ps_request *rq)
{
	struct ps_project *p = NULL;
	struct ps_sync **syncs = NULL;
	size_t n = 0;
	int64_t limit, before = 0;
	const char *b = ps_http_query(rq, "before");
	json_t *arr;
	int rc;

	if (!ps_api_parse_limit(rq, 30, &limit))
		return;
	if (b && !ps_http_parse_id(rq, "before", b, &before))
		return;
	if (!(p = ps_http_project(rq)))
		return;
	/* One more than asked tells whether there is a next page. */
	if ((rc = ps_store_sync_list(rq->store, p->id, limit + 1, before, &syncs, &n)) < 0) {
		ps_http_fail(rq, rc);
		ps_project_free(p);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n && (int64_t)i < limit; i++)
		json_array_append_new(arr, ps_sync_to_json(syncs[i]));
	ps_http_json(rq, MHD_HTTP_OK, arr);
	if ((int64_t)n > limit) {
		char path[200], cursor[24];
		snprintf(path, sizeof(path), "/api/v1/projects/%s/syncs", p->name);
		snprintf(cursor, sizeof(cursor), "%" PRId64, syncs[limit - 1]->id);
		link_next(rq, path, limit, "before", cursor);
	}
	for (size_t i = 0; i < n; i++)
		ps_sync_free(syncs[i]);
	free(syncs);
	ps_project_free(p);
}
