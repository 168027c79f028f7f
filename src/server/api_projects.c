/*
 * /api/v1/projects: list, create, show, delete, branches, sync status, start a sync and the
 * sync history of a project. The JSON shapes are model/json.h's, the same `--json` prints.
 * Creating a project checks its source and branch first (ps_source_check_branch, as `project add`
 * does): a source that names no repository, or a branch it does not have, is refused with 422
 * and nothing is stored.
 *
 * Checking a remote source (here, for the branch list and for a change of source or branch)
 * waits on the network, up to PROJSYNC_NET_TIMEOUT (then 504). It never runs on a request
 * thread: the handler hands it to a helper thread (offload.c) with its connection suspended,
 * and answers when called again, so the other connections of that thread are served meanwhile.
 * A local source (an absolute path) is checked in place: it never waits on a network.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "model/schedule.h"
#include "core/project.h"
#include "core/verify.h"
#include "server/http.h"
#include "source/source.h"
#include "util/error.h"


/* A local source is an absolute path (the API refuses relative ones; the CLI stores absolute
 * paths): reading it never waits on a network. */
static bool source_is_remote(const char *source)
{
	return source[0] != '/';
}

/* A source check or a branch list, run on a helper thread for a remote source. Everything
 * the request needs afterwards travels in it (the thread-local error does not cross threads). */
struct remote_job {
	bool list;               /* list the branches; else check source and branch */
	char *source, *branch;   /* owned */
	const char *cache_dir;   /* the server's (lives as long as it) */
	int rc;
	char *slug, *message;    /* the error when rc < 0 */
	struct ps_strv names;    /* list: the branches and the default one */
	char *def;
	struct ps_project p;     /* the project to store once the check passed (owned fields) */
	json_t *body;            /* the parsed request body, kept for the second call */
};

static void remote_job_run(void *arg)
{
	struct remote_job *job = arg;
	struct ps_source_opts sopts = { .cache_dir = job->cache_dir, .bounded = true };
	struct ps_source *src = NULL;

	ps_error_clear();
	if (!job->list) {
		job->rc = ps_source_check_branch(job->source, job->branch, &sopts);
	} else if ((job->rc = ps_source_open(&src, job->source, &sopts)) == 0) {
		job->rc = ps_source_branches(src, &job->names, &job->def);
	}
	if (src)
		ps_source_free(src);
	if (job->rc < 0) {
		job->slug = ps_strdup(ps_error_slug());
		job->message = ps_strdup(ps_error_message());
	}
}

static void remote_job_free(void *arg)
{
	struct remote_job *job = arg;

	if (!job)
		return;
	free(job->source);
	free(job->branch);
	free(job->slug);
	free(job->message);
	ps_strv_dispose(&job->names);
	free(job->def);
	free(job->p.name);
	free(job->p.source);
	free(job->p.branch);
	ps_strv_dispose(&job->p.memory_globs);
	json_decref(job->body);
	free(job);
}

/* Runs the job here for a local source, on a helper for a remote one. True when the result is
 * in `job` now; false when the request waits for a helper (or was refused with 503, the job
 * freed): the handler returns and is called again with ps_http_offloaded. */
static bool remote_job_start(struct ps_request *rq, struct remote_job *job)
{
	job->cache_dir = rq->srv->cfg.cache_dir;
	if (!source_is_remote(job->source)) {
		remote_job_run(job);
		return true;
	}
	(void)ps_http_offload(rq, remote_job_run, job, remote_job_free);
	return false;
}

/* Puts the job's error back as this thread's error, for the reply helpers. */
static int remote_job_error(const struct remote_job *job)
{
	return ps_error_set(job->rc, job->slug && job->slug[0] ? job->slug : NULL, "%s",
			    job->message && job->message[0] ? job->message : "bad source");
}

/* Answers a failed source check (its error set): 422 when the source answered that it is not a
 * usable repository or branch (the request is wrong: `project add` exits 2), 504 for a remote
 * that did not answer in time, else what the failure is (502 for a remote that could not be
 * reached or failed: a retry may succeed, `project add` exits 1). ps_source_check_refused
 * decides for both. */
static void check_failed(struct ps_request *rq, const char *spec, int rc)
{
	if (ps_source_check_refused(spec, rc))
		ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT,
			      ps_error_slug()[0] ? ps_error_slug() : "invalid_source", "%s",
			      ps_error_message());
	else if (strcmp(ps_error_slug(), "upstream_timeout") == 0)
		ps_http_error(rq, MHD_HTTP_GATEWAY_TIMEOUT, "upstream_timeout", "%s",
			      ps_error_message());
	else
		ps_http_fail(rq, rc);
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

/* 'max_blob_size': absent or null leaves *out as it is; else a positive integer (or 400) up
 * to PS_MAX_BLOB_SIZE_LIMIT (or 422). */
static bool parse_max_blob_size(struct ps_request *rq, json_t *body, int64_t *out)
{
	json_t *v = json_object_get(body, "max_blob_size");

	if (!v || json_is_null(v))
		return true;
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'max_blob_size' must be a positive integer (bytes)");
		return false;
	}
	if (json_integer_value(v) > PS_MAX_BLOB_SIZE_LIMIT) {
		ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, "max_blob_size_too_large",
			      "'max_blob_size' must be at most %d bytes (256 MiB)",
			      PS_MAX_BLOB_SIZE_LIMIT);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

/* 'memory_globs': absent or null adds nothing; else at most 100 non-empty strings, or 400. */
static bool parse_memory_globs(struct ps_request *rq, json_t *body, struct ps_strv *out)
{
	json_t *v = json_object_get(body, "memory_globs"), *g;
	size_t i;

	if (!v || json_is_null(v))
		return true;
	if (!json_is_array(v) || json_array_size(v) > 100) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'memory_globs' must be an array of at most 100 patterns");
		return false;
	}
	json_array_foreach(v, i, g) {
		if (!json_is_string(g) || json_string_length(g) == 0 ||
		    strlen(json_string_value(g)) != json_string_length(g)) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
				      "'memory_globs' must hold non-empty strings");
			return false;
		}
		ps_strv_push(out, json_string_value(g));
	}
	return true;
}

/* A server has no useful working directory: a local path must be absolute (else 422). */
static bool source_acceptable(struct ps_request *rq, const char *source)
{
	if (ps_source_is_local_path(source) && source[0] != '/') {
		ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_source",
			      "source '%.200s': give an absolute path, a git URL or "
			      "github:OWNER/REPO", source);
		return false;
	}
	return true;
}

/* The schedule and retention members of a project body (the options of `project add`);
 * false after a 400. */
static bool schedule_fields(struct ps_request *rq, json_t *body, struct ps_project *p)
{
	static const char *const counts[] = { "max_failures", "keep_syncs", "keep_days" };
	bool timing = false;
	json_t *v;

	if ((v = json_object_get(body, "every")) && !json_is_null(v)) {
		if (!json_is_string(v) || ps_schedule_parse_every(json_string_value(v), p) < 0) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_every",
				      "'every' must be a duration from 10s to 30d (30s, 10m, 1h), "
				      "\"auto\" or \"off\"");
			return false;
		}
		timing = true;
	}
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "auto_max_seconds" : "auto_min_seconds";
		if ((v = json_object_get(body, key)) && !json_is_null(v)) {
			if (!json_is_integer(v) || json_integer_value(v) < 10 ||
			    json_integer_value(v) > PS_SCHEDULE_MAX_EVERY_MS / 1000) {
				ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
					      "'%s' must be an integer from 10 to 2592000", key);
				return false;
			}
			*(k ? &p->auto_max_ms : &p->auto_min_ms) = json_integer_value(v) * 1000;
			timing = true;
		}
	}
	ps_project_schedule_defaults(p);
	if (p->auto_max_ms < p->auto_min_ms) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'auto_max_seconds' must not be below 'auto_min_seconds'");
		return false;
	}
	for (size_t k = 0; k < sizeof(counts) / sizeof(*counts); k++) {
		if ((v = json_object_get(body, counts[k])) && !json_is_null(v)) {
			if (k == 2 && json_is_integer(v) &&
			    json_integer_value(v) > PS_MAX_KEEP_DAYS) {
				ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT,
					      "keep_days_too_large",
					      "'keep_days' must be at most %d (100 years)",
					      PS_MAX_KEEP_DAYS);
				return false;
			}
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 1000000000) {
				ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
					      "'%s' must be an integer from 0 to 1000000000",
					      counts[k]);
				return false;
			}
			*(k == 0 ? &p->max_failures : k == 1 ? &p->keep_syncs : &p->keep_days) =
				json_integer_value(v);
		}
	}
	/* Only a new timing computes the next due time anew (as `project set` does): a change of
	 * retention or of the failure limit keeps an adapted `auto` interval and its due time. */
	if (timing)
		ps_schedule_configure(p, ps_now_ms());
	return true;
}

/* The project a creation asks for, checked but for its source; NULL after replying 400/422. */
static struct remote_job *create_parse(struct ps_request *rq)
{
	static const char *const known[] = { "name", "source", "branch", "memory_globs",
					     "max_blob_size", "every", "auto_min_seconds",
					     "auto_max_seconds", "max_failures", "keep_syncs",
					     "keep_days", "code_index", NULL };
	struct remote_job *job = ps_calloc(1, sizeof(*job));
	struct ps_project *p = &job->p;
	const char *name, *source, *branch;
	json_t *v;

	p->max_blob_size = PS_DEFAULT_MAX_BLOB_SIZE;
	if (!(job->body = ps_http_body_fields(rq, false, known)))
		goto fail;
	if (!opt_string(rq, job->body, "name", &name) ||
	    !opt_string(rq, job->body, "source", &source) ||
	    !opt_string(rq, job->body, "branch", &branch))
		goto fail;
	if (!name || !source) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "missing_field",
			      "'name' and 'source' are required");
		goto fail;
	}
	if (!ps_project_name_valid(name)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_name",
			      "invalid project name: use letters, digits, '.', '_' and '-', "
			      "starting with a letter or digit, at most 100 characters");
		goto fail;
	}
	if (!parse_max_blob_size(rq, job->body, &p->max_blob_size) ||
	    !parse_memory_globs(rq, job->body, &p->memory_globs))
		goto fail;
	if (p->memory_globs.n == 0)
		ps_strv_push(&p->memory_globs, PS_DEFAULT_MEMORY_GLOB);
	p->name = (char *)name; /* the jitter's seed, until the copy below */
	if (!schedule_fields(rq, job->body, p)) {
		p->name = NULL;
		goto fail;
	}
	p->name = NULL;
	if ((v = json_object_get(job->body, "code_index")) && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
				      "'code_index' must be true or false");
			goto fail;
		}
		p->no_code_index = !json_is_true(v);
	}
	if (!source_acceptable(rq, source) || !ps_access_source_allowed(rq, source))
		goto fail;
	p->name = ps_strdup(name);
	p->source = ps_strdup(source);
	p->branch = branch ? ps_strdup(branch) : NULL;
	job->source = ps_strdup(source);
	job->branch = branch ? ps_strdup(branch) : NULL;
	return job;
fail:
	remote_job_free(job);
	return NULL;
}

static void create_finish(struct ps_request *rq, struct remote_job *job)
{
	char *loc;
	int rc;

	if (job->rc < 0) {
		check_failed(rq, job->source, remote_job_error(job));
		return;
	}
	if ((rc = ps_store_project_add(rq->store, &job->p)) < 0) {
		ps_http_fail(rq, rc);
		return;
	}
	ps_log("project %s added (%s)", job->p.name, job->p.source);
	ps_http_json(rq, MHD_HTTP_CREATED, ps_project_to_json(&job->p));
	loc = ps_asprintf("/api/v1/projects/%s", job->p.name); /* names are URL-safe */
	ps_http_add_header(rq, MHD_HTTP_HEADER_LOCATION, loc);
	free(loc);
}

void ps_api_projects_create(struct ps_request *rq)
{
	struct remote_job *job = ps_http_offloaded(rq);

	if (job) {
		create_finish(rq, job); /* the task owns the job */
		return;
	}
	if (!(job = create_parse(rq)) || !remote_job_start(rq, job))
		return;
	create_finish(rq, job);
	remote_job_free(job);
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
	struct ps_project *p;
	int rc;

	if (!ps_http_no_fields(rq) || !(p = ps_http_project(rq)))
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
	struct remote_job *job = ps_http_offloaded(rq);
	struct ps_project *p;
	const char *selected;
	bool owned = false;
	json_t *arr;

	if (!(p = ps_http_project(rq)))
		return;
	if (!job) {
		job = ps_calloc(1, sizeof(*job));
		job->list = true;
		job->source = ps_strdup(p->source);
		if (!remote_job_start(rq, job))
			goto cleanup;
		owned = true;
	}
	if (job->rc < 0) {
		int rc = remote_job_error(job);
		ps_error_wrap(rc, "project '%s': ", p->name);
		if (strcmp(ps_error_slug(), "upstream_timeout") == 0)
			ps_http_error(rq, MHD_HTTP_GATEWAY_TIMEOUT, "upstream_timeout", "%s",
				      ps_error_message());
		else
			ps_http_fail(rq, rc == PS_ENOTFOUND || rc == PS_EINVAL ? PS_EUPSTREAM : rc);
		goto cleanup;
	}
	selected = p->branch ? p->branch : job->def;
	arr = json_array();
	for (size_t i = 0; i < job->names.n; i++)
		json_array_append_new(arr, json_pack("{s:o, s:b, s:b}",
			"name", ps_json_string(job->names.v[i]),
			"default", job->def && strcmp(job->def, job->names.v[i]) == 0,
			"selected", selected && strcmp(selected, job->names.v[i]) == 0));
	ps_http_json(rq, MHD_HTTP_OK, arr);
cleanup:
	if (owned)
		remote_job_free(job);
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

void ps_api_project_resume(struct ps_request *rq)
{
	struct ps_project *p, *after = NULL;
	int rc;

	if (!ps_http_no_fields(rq) || !(p = ps_http_project(rq)))
		return;
	if ((rc = ps_store_project_resume(rq->store, p->id, ps_now_ms())) < 0 ||
	    (rc = ps_store_project_get_by_id(rq->store, p->id, &after)) < 0) {
		ps_http_fail(rq, rc);
	} else {
		if (p->paused)
			ps_log("project %s resumed", p->name);
		if (rq->srv->scheduler)
			ps_scheduler_poke(rq->srv->scheduler);
		ps_http_json(rq, MHD_HTTP_OK, ps_project_to_json(after));
	}
	ps_project_free(after);
	ps_project_free(p);
}

/*
 * POST /projects/{name}/verify {"at": SYNC_ID, "blobs": bool} (both optional): the report of
 * core/verify.h, 200 whether the snapshot is sound or not ("sound" says which), so a client
 * reads the bad paths from one answer; 404/409 as for any snapshot.
 */
void ps_api_project_verify(struct ps_request *rq)
{
	static const char *const known[] = { "at", "blobs", NULL };
	struct ps_verify_report rep;
	struct ps_project *p = NULL;
	int64_t at = 0;
	bool blobs = false;
	json_t *body, *v;
	int rc;

	if (!(body = ps_http_body_fields(rq, true, known)))
		return;
	if ((v = json_object_get(body, "at")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
				      "'at' must be a sync id (a positive integer)");
			goto cleanup;
		}
		at = json_integer_value(v);
	}
	if ((v = json_object_get(body, "blobs")) && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
				      "'blobs' must be true or false");
			goto cleanup;
		}
		blobs = json_is_true(v);
	}
	if (!(p = ps_http_project(rq)))
		goto cleanup;
	if ((rc = ps_verify(rq->store, p, at, blobs, &rep)) < 0) {
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	ps_http_json(rq, MHD_HTTP_OK, ps_verify_report_to_json(&rep));
	ps_verify_report_dispose(&rep);
cleanup:
	json_decref(body);
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

/* ---- PATCH /projects/{name} ---- */

/* A settings change: the parsed body, then the check's result (run on a helper for a remote
 * source, like the checks above). */
struct patch_job {
	struct ps_project_change chg;  /* points into the fields below */
	char *name, *source, *branch;
	struct ps_strv globs;
	json_t *schedule;              /* the schedule and retention members, validated */
	const char *cur_key;           /* the member being parsed (patch_parse) */
	int code_index;                /* 1 on, -1 off, 0 not given */
	struct ps_project *p;          /* the project as it was when the request came */
	const char *cache_dir;
	int rc;
	char *slug, *message;
};

static void patch_job_free(void *arg)
{
	struct patch_job *job = arg;

	if (!job)
		return;
	free(job->name);
	free(job->source);
	free(job->branch);
	ps_strv_dispose(&job->globs);
	json_decref(job->schedule);
	ps_project_free(job->p);
	free(job->slug);
	free(job->message);
	free(job);
}

static void patch_job_run(void *arg)
{
	struct patch_job *job = arg;
	struct ps_source_opts sopts = { .cache_dir = job->cache_dir, .bounded = true };

	ps_error_clear();
	if ((job->rc = ps_project_change_check(job->p, &job->chg, &sopts)) < 0) {
		job->slug = ps_strdup(ps_error_slug());
		job->message = ps_strdup(ps_error_message());
	}
}

/* One parser per field: false after replying 400/422. New settings (a schedule, a retention)
 * are one line in the table and one parser. */
static bool patch_name(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	if (!json_is_string(v) || !ps_project_name_valid(json_string_value(v)) ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_name",
			      "invalid project name: use letters, digits, '.', '_' and '-', "
			      "starting with a letter or digit, at most 100 characters");
		return false;
	}
	job->chg.name = job->name = ps_strdup(json_string_value(v));
	return true;
}

static bool patch_source(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'source' must be a non-empty string");
		return false;
	}
	if (!source_acceptable(rq, json_string_value(v)) ||
	    !ps_access_source_allowed(rq, json_string_value(v)))
		return false;
	job->chg.source = job->source = ps_strdup(json_string_value(v));
	return true;
}

static bool patch_continue_history(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	if (!json_is_boolean(v)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'continue_history' must be true or false");
		return false;
	}
	job->chg.continue_history = json_is_true(v);
	return true;
}

/* A branch name, or null to follow the source's default branch. */
static bool patch_branch(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	if (json_is_null(v)) {
		job->chg.default_branch = true;
		return true;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'branch' must be a non-empty string, or null for the source's "
			      "default branch");
		return false;
	}
	job->chg.branch = job->branch = ps_strdup(json_string_value(v));
	return true;
}

static bool patch_globs(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	json_t *body = json_pack("{s:O}", "memory_globs", v);
	bool ok = parse_memory_globs(rq, body, &job->globs);

	json_decref(body);
	if (ok && job->globs.n == 0) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'memory_globs' must hold at least one pattern");
		return false;
	}
	job->chg.memory_globs = &job->globs;
	return ok;
}

static bool patch_max_blob_size(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	json_t *body = json_pack("{s:O}", "max_blob_size", v);
	bool ok = !json_is_null(v) && parse_max_blob_size(rq, body, &job->chg.max_blob_size);

	json_decref(body);
	if (!ok && json_is_null(v))
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'max_blob_size' must be a positive integer (bytes)");
	return ok;
}

static bool patch_code_index(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	if (!json_is_boolean(v)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'code_index' must be true or false");
		return false;
	}
	job->code_index = json_is_true(v) ? 1 : -1;
	return true;
}

/* The schedule and retention members are parsed together (schedule_fields, as at creation):
 * collected here, validated once the body is read, applied to the project as it is then. */
static bool patch_schedule(struct ps_request *rq, json_t *v, struct patch_job *job);

static const struct {
	const char *key;
	bool (*parse)(struct ps_request *rq, json_t *v, struct patch_job *job);
} patch_fields[] = {
	{ "name", patch_name },
	{ "source", patch_source },
	{ "continue_history", patch_continue_history },
	{ "branch", patch_branch },
	{ "memory_globs", patch_globs },
	{ "max_blob_size", patch_max_blob_size },
	{ "every", patch_schedule },
	{ "auto_min_seconds", patch_schedule },
	{ "auto_max_seconds", patch_schedule },
	{ "max_failures", patch_schedule },
	{ "keep_syncs", patch_schedule },
	{ "keep_days", patch_schedule },
	{ "code_index", patch_code_index },
};

static bool patch_schedule(struct ps_request *rq, json_t *v, struct patch_job *job)
{
	bool limit = !strcmp(job->cur_key, "max_failures") || !strcmp(job->cur_key, "keep_syncs") ||
		     !strcmp(job->cur_key, "keep_days");

	if (json_is_null(v) && !limit) {
		/* Never null when read back: taking null as "not given" would answer 200 and
		 * change nothing the client asked to change. */
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_field",
			      "'%s' cannot be null: give a value (\"every\": \"off\" stops the "
			      "schedule)", job->cur_key);
		return false;
	}
	if (!job->schedule)
		job->schedule = json_object();
	/* A limit reads back as null when there is none (the server's --max-failures for
	 * max_failures): null clears it, as 0 does, so what a GET gave can be sent back. */
	json_object_set_new(job->schedule, job->cur_key,
			    json_is_null(v) ? json_integer(0) : json_incref(v));
	return true;
}

#define NPATCH_FIELDS (sizeof(patch_fields) / sizeof(*patch_fields))

static struct patch_job *patch_parse(struct ps_request *rq)
{
	const char *known[NPATCH_FIELDS + 1];
	struct patch_job *job = ps_calloc(1, sizeof(*job));
	json_t *body, *v;

	for (size_t i = 0; i < NPATCH_FIELDS; i++)
		known[i] = patch_fields[i].key;
	known[NPATCH_FIELDS] = NULL;
	if (!(body = ps_http_body_fields(rq, false, known)))
		goto fail;
	for (size_t i = 0; i < NPATCH_FIELDS; i++) {
		job->cur_key = patch_fields[i].key;
		if ((v = json_object_get(body, patch_fields[i].key)) &&
		    !patch_fields[i].parse(rq, v, job))
			goto fail;
	}
	job->cur_key = NULL;
	if (job->schedule) {
		/* Refused now (400) rather than after a remote check. */
		struct ps_project scratch = { .name = (char *)"scratch" };
		if (!schedule_fields(rq, job->schedule, &scratch))
			goto fail;
	}
	json_decref(body);
	return job;
fail:
	json_decref(body);
	patch_job_free(job);
	return NULL;
}

static void patch_finish(struct ps_request *rq, struct patch_job *job)
{
	struct ps_project *p = NULL;
	int rc;

	if (job->rc < 0) {
		check_failed(rq, job->chg.source ? job->chg.source : job->p->source,
			     ps_error_set(job->rc, job->slug && job->slug[0] ? job->slug : NULL,
					      "%s", job->message && job->message[0] ? job->message
										: "bad source"));
		return;
	}
	/* Read again: the check may have waited on a remote while the project changed. A new
	 * schedule or retention goes on that project (the next due time is computed anew). */
	if ((rc = ps_store_project_get_by_id(rq->store, job->p->id, &p)) == 0 && job->schedule) {
		if (!schedule_fields(rq, job->schedule, p)) {
			ps_project_free(p);
			return;
		}
		job->chg.schedule = true;
	}
	if (rc == 0 && job->code_index) {
		p->no_code_index = job->code_index < 0;
		job->chg.schedule = true;
	}
	if (rc < 0 || (rc = ps_project_change_apply(rq->store, p, &job->chg)) < 0) {
		ps_http_fail(rq, rc);
	} else {
		ps_log("project %s changed", p->name);
		ps_http_json(rq, MHD_HTTP_OK, ps_project_to_json(p));
	}
	ps_project_free(p);
}

void ps_api_project_patch(struct ps_request *rq)
{
	struct patch_job *job = ps_http_offloaded(rq);
	int rc;

	if (job) {
		patch_finish(rq, job); /* the task owns the job */
		return;
	}
	if (!(job = patch_parse(rq)))
		return;
	if (!(job->p = ps_http_project(rq)))
		goto done;
	/* Refused by the store's rules before anyone waits on a remote. */
	if ((rc = ps_project_change_allowed(rq->store, job->p, &job->chg)) < 0) {
		ps_http_fail(rq, rc);
		goto done;
	}
	job->cache_dir = rq->srv->cfg.cache_dir;
	if (ps_project_change_needs_check(job->p, &job->chg) &&
	    source_is_remote(job->source ? job->source : job->p->source)) {
		(void)ps_http_offload(rq, patch_job_run, job, patch_job_free);
		return;
	}
	patch_job_run(job);
	patch_finish(rq, job);
done:
	patch_job_free(job);
}
