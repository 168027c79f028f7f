/*
 * Code search over HTTP: `GET /api/v1/projects/{name}/search/code?q&at&regex&ignore_case&path
 * &limit&after` answers what `projsync grep --json` prints (core/grep.h), a page at a time: a
 * bare JSON array of {"path", "line", "column", "text", "binary"} and, when there is more, a
 * `Link: <...>; rel="next"` whose `after` cursor ("LINE:PATH", 0 for a binary file) and pinned
 * `at` continue the same snapshot. A pattern PCRE2 rejects is a 400 naming the error; a search
 * past its time or match limit is a 422. Headers: X-Projsync-Sync (the snapshot searched) and,
 * X-Projsync-Note when the index could not narrow the search or files were not searched because
 * the store lost their content, whose count X-Projsync-Missing also gives.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grep.h"
#include "server/http.h"
#include "util/error.h"

#define DEFAULT_LIMIT 100

struct page {
	json_t *arr;
	int64_t limit;
	char *last_path;
	int64_t last_line;
};

static int add_match(void *ud, const struct ps_grep_match *m)
{
	struct page *pg = ud;

	json_array_append_new(pg->arr, ps_grep_match_to_json(m));
	free(pg->last_path);
	pg->last_path = ps_strdup(m->path);
	pg->last_line = m->line;
	return 0;
}

void ps_api_project_search_code(struct ps_request *rq)
{
	struct ps_grep_opts go = { .timeout_ms = PS_GREP_DEFAULT_TIMEOUT_MS };
	struct page pg = { 0 };
	struct ps_grep_info info;
	struct ps_project *p = NULL;
	const char *at_s = ps_http_query(rq, "at"), *after = ps_http_query(rq, "after");
	char *after_path = NULL;
	int rc;

	go.pattern = ps_http_query(rq, "q");
	go.path_glob = ps_http_query(rq, "path");
	if (!go.pattern || !*go.pattern) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "missing_parameter",
			      "'q' (the pattern to search for) is required");
		return;
	}
	if (!ps_http_query_bool(rq, "regex", &go.regex) ||
	    !ps_http_query_bool(rq, "ignore_case", &go.ignore_case) ||
	    !ps_api_parse_limit(rq, DEFAULT_LIMIT, &pg.limit))
		return;
	if (at_s && !ps_http_parse_id(rq, "?at", at_s, &go.at))
		return;
	if (after) {
		/* "LINE:PATH" from our own Link header: digits only, as every number of the API
		 * reads (an overflowing line went on as LLONG_MAX and answered an empty page). */
		char *end = NULL;
		long long line = -1;
		if (after[0] >= '0' && after[0] <= '9') {
			errno = 0;
			line = strtoll(after, &end, 10);
			if (errno)
				line = -1;
		}
		if (line < 0 || !end || *end != ':') {
			ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
				      "'after' must be a cursor from a Link header (LINE:PATH)");
			return;
		}
		after_path = ps_strdup(end + 1);
		go.after_path = after_path;
		go.after_line = line;
	}
	go.max = pg.limit;
	if (!(p = ps_http_project(rq)))
		goto cleanup;
	if (go.at == 0 && p->last_sync_id <= 0) {
		/* As GET /files answers it: the store's message names no project. */
		ps_http_error(rq, MHD_HTTP_NOT_FOUND, "no_snapshot",
			      "project %s has no snapshot yet: sync it first", p->name);
		goto cleanup;
	}
	pg.arr = json_array();
	rc = ps_grep_run(rq->store, p, &go, add_match, &pg, &info);
	if (rc < 0) {
		const char *slug = ps_error_slug();
		if (!strcmp(slug, "search_timeout") || !strcmp(slug, "pattern_too_costly"))
			ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, slug, "%s",
				      ps_error_message());
		else
			ps_http_fail(rq, rc);
		goto cleanup;
	}
	ps_http_json(rq, MHD_HTTP_OK, pg.arr);
	pg.arr = NULL;
	{
		char sync_s[24];
		snprintf(sync_s, sizeof(sync_s), "%" PRId64, info.sync_id);
		ps_http_add_header(rq, "X-Projsync-Sync", sync_s);
	}
	if (info.scanned || info.missing) {
		/* One note, which the page shows as it is; the count also on its own for scripts. */
		char *lost = info.missing
			? ps_asprintf("%zu file%s not searched: content lost from the store "
				      "(projsync verify %s --blobs)", info.missing,
				      info.missing == 1 ? "" : "s", p->name)
			: NULL;
		char *note = ps_asprintf(
			"%s%s%s",
			!info.scanned ? ""
			: p->no_code_index ? "the project has no code index: every file was read"
			: "the pattern has no 3-character literal the index can use: every file "
			  "was read",
			info.scanned && lost ? "; " : "", lost ? lost : "");
		char count[24];

		ps_http_add_header(rq, "X-Projsync-Note", note);
		if (lost) {
			snprintf(count, sizeof(count), "%zu", info.missing);
			ps_http_add_header(rq, "X-Projsync-Missing", count);
		}
		free(note);
		free(lost);
	}
	if (info.more && pg.last_path) {
		char *q = ps_percent_encode(go.pattern, "/"), *cursor, *cur_e, *path_e = NULL, *link;
		cursor = ps_asprintf("%" PRId64 ":%s", pg.last_line, pg.last_path);
		cur_e = ps_percent_encode(cursor, "/");
		if (go.path_glob)
			path_e = ps_percent_encode(go.path_glob, "/");
		link = ps_asprintf("</api/v1/projects/%s/search/code?q=%s&at=%" PRId64
				   "&limit=%" PRId64 "%s%s%s%s&after=%s>; rel=\"next\"",
				   p->name, q, info.sync_id, pg.limit, go.regex ? "&regex=true" : "",
				   go.ignore_case ? "&ignore_case=true" : "", path_e ? "&path=" : "",
				   path_e ? path_e : "", cur_e);
		ps_http_add_header(rq, "Link", link);
		free(link);
		free(path_e);
		free(cur_e);
		free(cursor);
		free(q);
	}
cleanup:
	json_decref(pg.arr);
	free(pg.last_path);
	free(after_path);
	ps_project_free(p);
}
