/*
 * Snapshots over HTTP: `GET /api/v1/projects/{name}/files?at&prefix` lists the files of a
 * succeeded sync (the latest by default) in path byte order, and
 * `GET /api/v1/projects/{name}/file?path&at[&download=1]` returns one file's content as raw
 * bytes, with its blob SHA and mode in headers.
 *
 * The file's Content-Type (content_type below): a type its extension names for images, media,
 * fonts and archives; otherwise text/plain with charset=utf-8 when the bytes are text (no NUL,
 * valid UTF-8), else application/octet-stream. Never text/html nor a script type: the bytes are
 * a repository's, and this origin is the page's. Every answer also says nosniff and a sandbox
 * CSP, so even an SVG opened directly runs nothing. ?download=1 adds Content-Disposition:
 * attachment with the file's base name. The file list pages only when asked (?limit, then the Link
 * header's `after` cursor), so a plain GET returns the whole snapshot like `files --json`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/json.h"
#include "core/patch.h"
#include "core/project.h"
#include "server/http.h"
#include "util/error.h"

/* The succeeded sync to read: ?at or the project's last succeeded one. Replies on failure. */
static bool resolve_snapshot(struct ps_request *rq, const struct ps_project *p, int64_t *out)
{
	const char *at_s = ps_http_query(rq, "at");
	struct ps_sync *s = NULL;
	int64_t at = 0;
	int rc;

	if (at_s && !ps_http_parse_id(rq, "?at", at_s, &at))
		return false;
	if (at == 0) {
		if (p->last_sync_id <= 0) {
			ps_http_error(rq, MHD_HTTP_NOT_FOUND, "no_snapshot",
				      "project %s has no snapshot yet: sync it first", p->name);
			return false;
		}
		*out = p->last_sync_id;
		return true;
	}
	if ((rc = ps_store_sync_get(rq->store, at, &s)) < 0 || s->project_id != p->id) {
		if (rc < 0 && rc != PS_ENOTFOUND)
			ps_http_fail(rq, rc);
		else
			ps_http_error(rq, MHD_HTTP_NOT_FOUND, "sync_not_found",
				      "sync %" PRId64 " is not a sync of project %s", at, p->name);
		ps_sync_free(s);
		return false;
	}
	if (s->status != PS_SYNC_SUCCEEDED) {
		ps_http_error(rq, MHD_HTTP_CONFLICT, "not_succeeded", "sync %" PRId64 " of %s is %s: "
			      "only a succeeded sync has a snapshot", at, p->name,
			      ps_sync_status_name(s->status));
		ps_sync_free(s);
		return false;
	}
	ps_sync_free(s);
	*out = at;
	return true;
}

struct files_page {
	struct ps_buf out;
	const char *after;      /* the cursor: the last path of the previous page */
	int64_t limit;          /* 0 = all */
	int64_t n;
	bool more;
	char *last_path;
};

enum { STOP_FULL = 1, STOP_TOOBIG = 2 };

static int add_file(void *ud, const struct ps_file *f)
{
	struct files_page *pg = ud;
	json_t *j;
	char *text;
	int rc;

	if (pg->limit > 0 && pg->n == pg->limit) {
		pg->more = true;
		return STOP_FULL;
	}
	j = ps_file_to_json(f); /* with path_raw for a name that is not UTF-8 */
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	rc = ps_buf_puts(&pg->out, pg->n ? "," : "[");
	if (rc == 0)
		rc = ps_buf_puts(&pg->out, text);
	free(text);
	if (rc < 0)
		return STOP_TOOBIG;
	free(pg->last_path);
	pg->last_path = ps_strdup(f->path);
	pg->n++;
	return 0;
}

void ps_api_project_files(struct ps_request *rq)
{
	struct ps_project *p = NULL;
	struct files_page pg = { 0 };
	const char *prefix = ps_http_query(rq, "prefix");
	int64_t snapshot;
	int rc;

	if (ps_http_query(rq, "limit") && !ps_api_parse_limit(rq, 0, &pg.limit))
		return;
	pg.after = ps_http_query(rq, "after");
	if (prefix && prefix[0] == '/') {
		/* No stored path starts with '/': the listing was empty, without a word. */
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "invalid_path", "invalid ?prefix '%s': %s",
			      prefix, ps_patch_path_problem(prefix));
		return;
	}
	if (!(p = ps_http_project(rq)))
		return;
	if (!resolve_snapshot(rq, p, &snapshot))
		goto cleanup;
	/* 512 MiB of JSON is far past any real snapshot; past it, ask for pages. */
	ps_buf_init(&pg.out, 512u * 1024 * 1024);
	/* From `after` on in the store (a keyset cursor: a page costs about a page), one file
	 * more than the page to know whether another follows. */
	rc = ps_store_snapshot_page(rq->store, p->id, snapshot, prefix, pg.after,
				    pg.limit > 0 ? pg.limit + 1 : 0, add_file, &pg);
	if (rc == STOP_TOOBIG) {
		ps_http_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "too_big",
			      "the listing is too large: use ?limit and follow the Link header");
		goto cleanup;
	}
	if (rc < 0) {
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	ps_buf_puts(&pg.out, pg.n ? "]\n" : "[]\n");
	{
		size_t len;
		char *text = ps_buf_take(&pg.out, &len);
		ps_http_raw(rq, MHD_HTTP_OK, "application/json", text, len, true);
	}
	if (pg.more) {
		char *after = ps_percent_encode(pg.last_path, "/");
		char *pre = prefix ? ps_percent_encode(prefix, "/") : NULL;
		char *link = ps_asprintf("</api/v1/projects/%s/files?at=%" PRId64 "&limit=%" PRId64
					 "%s%s&after=%s>; rel=\"next\"", p->name, snapshot, pg.limit,
					 pre ? "&prefix=" : "", pre ? pre : "", after);
		ps_http_add_header(rq, "Link", link);
		free(link);
		free(pre);
		free(after);
	}
cleanup:
	ps_buf_dispose(&pg.out);
	free(pg.last_path);
	ps_project_free(p);
}

/* If-None-Match (RFC 9110 §13.1.2): "*" or a list of entity tags, compared weakly. */
static bool etag_matches(const char *h, const char *sha)
{
	size_t n = strlen(sha);

	if (!h)
		return false;
	for (const char *p = h; *p;) {
		p += strspn(p, " \t,");
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p == '"' && strncmp(p + 1, sha, n) == 0 && p[n + 1] == '"')
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

/* True when `data` reads as UTF-8 text: no NUL in it, and valid UTF-8 (the characters that start
 * in the first 1 MiB are checked: enough to tell, and bounded). */
static bool is_text(const unsigned char *data, size_t len)
{
	size_t n = len < 1024 * 1024 ? len : 1024 * 1024;

	if (memchr(data, 0, len))
		return false;
	for (size_t i = 0; i < n;) {
		unsigned char c = data[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return false;
		if (i + k >= len)
			return false; /* a character cut by the end of the file */
		for (size_t j = 1; j <= k; j++) {
			if ((data[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (data[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* The Content-Type of a file's bytes (see the comment at the top). */
static const char *file_content_type(const char *path, const void *data, size_t len)
{
	static const struct { const char *ext, *type; } by_ext[] = {
		{ "png", "image/png" }, { "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
		{ "gif", "image/gif" }, { "webp", "image/webp" }, { "avif", "image/avif" },
		{ "bmp", "image/bmp" }, { "ico", "image/vnd.microsoft.icon" },
		{ "svg", "image/svg+xml" }, { "tif", "image/tiff" }, { "tiff", "image/tiff" },
		{ "pdf", "application/pdf" }, { "zip", "application/zip" },
		{ "gz", "application/gzip" }, { "tgz", "application/gzip" },
		{ "bz2", "application/x-bzip2" }, { "xz", "application/x-xz" },
		{ "zst", "application/zstd" }, { "tar", "application/x-tar" },
		{ "7z", "application/x-7z-compressed" }, { "jar", "application/java-archive" },
		{ "wasm", "application/wasm" }, { "woff", "font/woff" }, { "woff2", "font/woff2" },
		{ "ttf", "font/ttf" }, { "otf", "font/otf" }, { "mp3", "audio/mpeg" },
		{ "ogg", "audio/ogg" }, { "wav", "audio/wav" }, { "flac", "audio/flac" },
		{ "mp4", "video/mp4" }, { "webm", "video/webm" }, { "mov", "video/quicktime" },
	};
	const char *base = strrchr(path, '/'), *dot;

	base = base ? base + 1 : path;
	if ((dot = strrchr(base, '.')) && dot != base)
		for (size_t i = 0; i < sizeof(by_ext) / sizeof(*by_ext); i++)
			if (strcasecmp(dot + 1, by_ext[i].ext) == 0)
				return by_ext[i].type;
	return is_text(data, len) ? "text/plain; charset=utf-8" : "application/octet-stream";
}

/* Content-Disposition: attachment with the base name: a quoted ASCII fallback (anything else
 * as `_`) and RFC 8187's filename* with the exact bytes. */
static char *attachment(const char *path)
{
	const char *base = strrchr(path, '/');
	char *fallback, *exact, *out;

	base = base ? base + 1 : path;
	fallback = ps_strdup(base);
	for (char *c = fallback; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f || *c == '"' || *c == '\\' ||
		    *c == '%' || *c == ';')
			*c = '_';
	exact = ps_percent_encode(base, "/");
	out = ps_asprintf("attachment; filename=\"%s\"; filename*=UTF-8''%s", fallback, exact);
	free(fallback);
	free(exact);
	return out;
}

void ps_api_project_file(struct ps_request *rq)
{
	struct ps_project *p = NULL;
	struct ps_file f = { 0 };
	const char *path = ps_http_query(rq, "path");
	void *data = NULL;
	size_t len = 0;
	int64_t snapshot;
	char mode[8], sync_s[24], etag[PS_SHA_HEX + 3];
	int rc;

	const char *type;
	bool download = false;

	if (!path || !path[0]) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "missing_path", "?path= is required");
		return;
	}
	if (!ps_http_query_bool(rq, "download", &download))
		return;
	if (!(p = ps_http_project(rq)))
		return;
	if (!resolve_snapshot(rq, p, &snapshot))
		goto cleanup;
	if ((rc = ps_store_snapshot_file(rq->store, p->id, snapshot, path, &f)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, "file_not_found", "%s: no such file in %s at sync %" PRId64,
				     path, p->name, snapshot);
		ps_http_fail(rq, rc);
		goto cleanup;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", f.sha);
	if (etag_matches(ps_http_header(rq, MHD_HTTP_HEADER_IF_NONE_MATCH), f.sha)) {
		ps_http_raw(rq, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0, false);
		ps_http_add_header(rq, MHD_HTTP_HEADER_ETAG, etag);
		goto cleanup;
	}
	if (f.mode == PS_MODE_COMMIT) {
		ps_http_error(rq, MHD_HTTP_UNPROCESSABLE_CONTENT, "submodule",
			      "%s is a submodule (commit %s): it has no content", path, f.sha);
		goto cleanup;
	}
	if ((rc = ps_project_blob_get(rq->store, p, f.sha, f.size, &data, &len)) < 0) {
		if (rc == PS_ENOTFOUND) {
			/* Kept as metadata only: 422 while over the limit, 409 when a raised
			 * limit lets it in and the next sync fetches it; a lost blob is the
			 * store's fault (500, logged). */
			rc = ps_project_content_missing(rq->store, p, snapshot, &f);
			if (rc == PS_ETOOBIG || rc == PS_ECONFLICT)
				ps_http_error(rq, rc == PS_ETOOBIG ? MHD_HTTP_UNPROCESSABLE_CONTENT
								   : MHD_HTTP_CONFLICT,
					      ps_error_slug(), "%s", ps_error_message());
			else
				ps_http_fail(rq, rc);
		} else
			ps_http_fail(rq, rc);
		goto cleanup;
	}
	type = file_content_type(path, data ? data : "", len);
	ps_http_raw(rq, MHD_HTTP_OK, type, data ? data : ps_strdup(""), len, true);
	data = NULL;
	ps_http_add_header(rq, "X-Content-Type-Options", "nosniff");
	ps_http_add_header(rq, "Content-Security-Policy", "sandbox; default-src 'none'; "
			   "img-src data:; style-src 'unsafe-inline'");
	if (download) {
		char *cd = attachment(path);
		ps_http_add_header(rq, "Content-Disposition", cd);
		free(cd);
	}
	ps_mode_string(f.mode, mode);
	snprintf(sync_s, sizeof(sync_s), "%" PRId64, snapshot);
	ps_http_add_header(rq, "X-Projsync-Sha", f.sha);
	ps_http_add_header(rq, "X-Projsync-Mode", mode);
	ps_http_add_header(rq, "X-Projsync-Sync", sync_s);
	ps_http_add_header(rq, MHD_HTTP_HEADER_ETAG, etag);
cleanup:
	free(data);
	ps_file_dispose(&f);
	ps_project_free(p);
}
