/*
 * The web page of `projsync serve`: the files of web/ (plain HTML, CSS and ES modules, no build
 * step), embedded into the binary at build time by scripts/embed.py as ps_web_assets, served at
 * `/` outside the API's route table (so they are not API routes and not in openapi.json).
 *
 *   /assets/NAME                  the file NAME of web/ (404 if there is none)
 *   /, /projects, /projects/...   index.html: the page routes with the History API, so a
 *                                 reloaded or shared address of a view opens that view
 *                                 (one with a bad percent-escape too: http.c keeps it as sent)
 *
 * The router (http.c) asks ps_web_claims only for a path no API route matched, so `/api/`,
 * `/healthz`, `/metrics` and `/openapi.json` are never shadowed, and nothing under `/api/` is
 * ever claimed (an unknown API path keeps its JSON 404).
 *
 * Caching: file names carry no content hash, so every answer says `Cache-Control: no-cache`
 * (the browser keeps the file but asks each time) with a strong ETag computed from the bytes;
 * the question costs a 304 with no body. Each answer carries a Content-Security-Policy that
 * allows only this origin's scripts, styles and connections: the page never needs inline code,
 * so text from a repository that slipped into the DOM as markup still could not run. Images
 * may also be blob: URLs: the file view shows a snapshot's image from the bytes it fetched
 * (with the token, which an <img src> could not send).
 *
 * /assets/ also serves the viewers' libraries (highlight.min.js, marked.umd.min.js,
 * purify.min.js), embedded from their Debian packages' files at build time (meson.build).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/http.h"

struct ps_embedded { const char *name; const char *text; size_t len; };
extern const struct ps_embedded ps_web_assets[];
extern const size_t ps_web_assets_count;

#define ASSET_PREFIX "/assets/"
#define MAX_ASSETS 64

static const char csp[] =
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
	"frame-ancestors 'none'";

const struct ps_route ps_web_route = { "GET", "/", ps_web_serve, false, PS_HTTP_MAX_SMALL_BODY,
					  NULL };

/* Strong validators, computed once: 64-bit FNV-1a of the bytes, as 16 hex digits. */
static char etags[MAX_ASSETS][24];
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void etags_init(void)
{
	for (size_t i = 0; i < ps_web_assets_count && i < MAX_ASSETS; i++) {
		uint64_t h = 0xcbf29ce484222325ULL;
		for (size_t k = 0; k < ps_web_assets[i].len; k++) {
			h ^= (unsigned char)ps_web_assets[i].text[k];
			h *= 0x100000001b3ULL;
		}
		snprintf(etags[i], sizeof(etags[i]), "\"%016" PRIx64 "\"", h);
	}
}

static const char *content_type(const char *name)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".json", "application/json" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(*types); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* The embedded file a path names; -1 for none. */
static int asset_index(const char *path)
{
	const char *name;

	if (strcmp(path, "/") == 0 || strcmp(path, "/projects") == 0 ||
	    strncmp(path, "/projects/", 10) == 0)
		name = "index.html";
	else if (strncmp(path, ASSET_PREFIX, strlen(ASSET_PREFIX)) == 0)
		name = path + strlen(ASSET_PREFIX);
	else
		return -1;
	for (size_t i = 0; i < ps_web_assets_count && i < MAX_ASSETS; i++)
		if (strcmp(ps_web_assets[i].name, name) == 0)
			return (int)i;
	return -1;
}

bool ps_web_claims(const char *path)
{
	if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0)
		return false;
	return strcmp(path, "/") == 0 || strcmp(path, "/projects") == 0 ||
	       strncmp(path, "/projects/", 10) == 0 ||
	       strncmp(path, ASSET_PREFIX, strlen(ASSET_PREFIX)) == 0;
}

/* True when an If-None-Match header lists `etag` (or is "*"). */
static bool etag_matches(const char *header, const char *etag)
{
	size_t len = strlen(etag);

	if (!header)
		return false;
	for (const char *p = header; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncmp(p, "W/", 2) == 0)
			p += 2; /* weak comparison, as RFC 9110 asks for If-None-Match */
		if (*p == '*' || strncmp(p, etag, len) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

void ps_web_serve(struct ps_request *rq)
{
	int i;

	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
		ps_http_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			      "%s is not allowed on %s", rq->method, rq->url);
		ps_http_add_header(rq, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
		return;
	}
	if ((i = asset_index(rq->url)) < 0) {
		ps_http_error(rq, MHD_HTTP_NOT_FOUND, "not_found", "no such file: %s", rq->url);
		return;
	}
	pthread_once(&etags_once, etags_init);
	if (etag_matches(ps_http_header(rq, MHD_HTTP_HEADER_IF_NONE_MATCH), etags[i]))
		ps_http_raw(rq, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0, false);
	else
		ps_http_raw(rq, MHD_HTTP_OK, content_type(ps_web_assets[i].name),
			    (void *)ps_web_assets[i].text, ps_web_assets[i].len, false);
	ps_http_add_header(rq, MHD_HTTP_HEADER_ETAG, etags[i]);
	ps_http_add_header(rq, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	ps_http_add_header(rq, "X-Content-Type-Options", "nosniff");
	ps_http_add_header(rq, "Referrer-Policy", "no-referrer");
	ps_http_add_header(rq, "Content-Security-Policy", csp);
}
