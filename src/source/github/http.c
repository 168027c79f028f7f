/*
 * The HTTP engine of the GitHub source: one libcurl multi handle for every request, retries of
 * transient faults with backoff, primary and secondary rate limits waited out or failed,
 * bounded batches; and the small pure helpers of github.h about HTTP (Link, rate headers).
 */
#include "source/github/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "model/diff.h"
#include "util/error.h"
#include "util/util.h"

/* ---- small helpers ---- */

int64_t gh_env_int(const char *name, int64_t def, int64_t min, int64_t max)
{
	const char *v = getenv(name);
	char *end;
	long long x;

	if (!v || !*v)
		return def;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || *end || x < min || x > max)
		return def;
	return x;
}

void gh_sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int gh_wait_ms(struct gh_source *s, int64_t ms)
{
	int64_t end = ps_mono_ms() + ms, left;
	int rc;

	while ((rc = ps_source_stopped(&s->base)) == 0 && (left = end - ps_mono_ms()) > 0)
		gh_sleep_ms(s->base.stop && left > 250 ? 250 : left);
	return rc;
}

void gh_warn(struct gh_source *s, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg) {
		ps_strv_push(&s->base.warnings, msg);
		free(msg);
	}
}

/* The endpoint of a URL for messages: the path below the API root (never a token). */
const char *gh_endpoint(const struct gh_source *s, const char *url)
{
	size_t n = strlen(s->api);

	return strncmp(url, s->api, n) == 0 && url[n] == '/' ? url + n : url;
}

const char *gh_repo_name(const struct gh_source *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", s->owner, s->repo);
	return buf;
}

/* scheme://authority of an absolute URL, or NULL. */
char *gh_url_origin(const char *url)
{
	const char *p = strstr(url, "://");
	size_t n;

	if (!p)
		return NULL;
	p += 3;
	n = strcspn(p, "/?#");
	return ps_strndup(url, (size_t)(p - url) + n);
}

/* The host of an absolute URL, for messages ("?" when it has none). */
static void url_host(const char *url, char *out, size_t len)
{
	CURLU *u = curl_url();
	char *host = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		snprintf(out, len, "%s", host);
	else
		snprintf(out, len, "?");
	curl_free(host);
	curl_url_cleanup(u);
}

bool gh_same_origin(const struct gh_source *s, const char *url)
{
	size_t n = strlen(s->origin);

	return strncasecmp(url, s->origin, n) == 0 &&
	       (url[n] == '/' || url[n] == '?' || url[n] == '\0');
}


/* ---- the pure parsers (github.h) ---- */

char *ps_github_link_next(const char *link)
{
	const char *p = link;

	if (!link)
		return NULL;
	while (*p) {
		const char *lt, *gt, *end, *q;
		bool next = false;

		lt = strchr(p, '<');
		if (!lt)
			return NULL;
		gt = strchr(lt, '>');
		if (!gt)
			return NULL;
		/* The parameters run to the next ',' that starts a new link (URLs are inside <>). */
		end = gt + 1;
		while (*end && *end != ',')
			end++;
		for (q = gt + 1; q < end; q++) {
			/* rel="next" or rel=next, possibly among other relation types. */
			if (strncasecmp(q, "rel", 3) != 0)
				continue;
			const char *v = q + 3;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			if (v >= end || *v != '=')
				continue;
			v++;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			bool quoted = v < end && *v == '"';
			if (quoted)
				v++;
			while (v < end && *v != '"' && *v != ';') {
				size_t w = 0;
				while (v + w < end && v[w] != ' ' && v[w] != '"' && v[w] != ';')
					w++;
				if (w == 4 && strncasecmp(v, "next", 4) == 0)
					next = true;
				v += w;
				if (!quoted)
					break;
				while (v < end && *v == ' ')
					v++;
			}
		}
		if (next && gt > lt + 1)
			return ps_strndup(lt + 1, (size_t)(gt - lt - 1));
		p = *end ? end + 1 : end;
	}
	return NULL;
}

void ps_github_rate_init(struct ps_github_rate *rl)
{
	rl->limit = rl->remaining = rl->used = rl->reset = rl->retry_after = -1;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
		      size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	const char *v = line + n + 1;
	const char *e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*value = v;
	*vlen = (size_t)(e - v);
	return true;
}

/* Strictly digits; saturates at PS_GITHUB_NUM_MAX instead of overflowing. */
static bool parse_num(const char *v, size_t len, int64_t *out)
{
	int64_t x = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		if (x <= (PS_GITHUB_NUM_MAX - 9) / 10)
			x = x * 10 + (v[i] - '0');
		else
			x = PS_GITHUB_NUM_MAX;
	}
	*out = x;
	return true;
}

bool ps_github_rate_header(struct ps_github_rate *rl, const char *line, size_t len)
{
	static const struct {
		const char *name;
		size_t off;
	} names[] = {
		{ "x-ratelimit-limit", offsetof(struct ps_github_rate, limit) },
		{ "x-ratelimit-remaining", offsetof(struct ps_github_rate, remaining) },
		{ "x-ratelimit-used", offsetof(struct ps_github_rate, used) },
		{ "x-ratelimit-reset", offsetof(struct ps_github_rate, reset) },
		{ "retry-after", offsetof(struct ps_github_rate, retry_after) },
	};
	const char *v;
	size_t vlen;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (header_is(line, len, names[i].name, &v, &vlen)) {
			int64_t x;
			if (parse_num(v, vlen, &x))
				*(int64_t *)((char *)rl + names[i].off) = x;
			return true;
		}
	}
	return false;
}

void ps_github_rate_merge(int64_t *kept_remaining, int64_t *kept_reset, int64_t remaining,
			  int64_t reset)
{
	if (remaining < 0)
		return;
	if (*kept_remaining >= 0 && reset >= 0 && *kept_reset >= 0) {
		if (reset < *kept_reset)
			return;
		if (reset == *kept_reset && remaining >= *kept_remaining)
			return;
	}
	*kept_remaining = remaining;
	*kept_reset = reset;
}

int64_t ps_github_rate_wait(const struct ps_github_rate *rl, int64_t now_s, int64_t max_s,
			    bool *primary)
{
	int64_t wait;

	*primary = false;
	if (max_s < 0)
		max_s = 0;
	if (rl->remaining == 0 && rl->reset >= 0) {
		*primary = true;
		/* Both sides are bounded (PS_GITHUB_NUM_MAX, a clock): no overflow. */
		wait = rl->reset - now_s + 1;
	} else if (rl->retry_after >= 0) {
		wait = rl->retry_after;
	} else {
		return 0;
	}
	if (wait < 1)
		wait = 1;
	return wait > max_s ? max_s + 1 : wait;
}

void ps_github_clock(int64_t epoch_s, char *out, size_t len)
{
	/* 9999-12-31T23:59:59Z: beyond it the text would not be a date anyone can read. */
	static const int64_t last = INT64_C(253402300799);
	time_t t = (time_t)epoch_s;
	struct tm tm;

	if (epoch_s < 0 || epoch_s > last || !gmtime_r(&t, &tm) ||
	    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, len, "an unreadable time (%lld)", (long long)epoch_s);
}

int64_t ps_github_blob_answer_max(int64_t raw)
{
	int64_t b64 = (raw + 2) / 3 * 4;

	/* Each 60-column line ends in "\n", written as two characters in JSON; the fields around
	 * the content (sha, node_id, size, url with the repository's name, encoding) stay well
	 * under 4 KiB. */
	return b64 + 2 * (b64 / 60 + 1) + 4096;
}

char *ps_github_escape(const char *s)
{
	return ps_percent_encode(s, "");
}

/* ---- HTTP: one engine for every request ---- */

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
	struct gh_req *r = ud;
	size_t len = size * nmemb;
	const char *v;
	size_t vlen;

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or a 100): forget the previous one's. */
		const char *sp = memchr(line, ' ', len);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		ps_github_rate_init(&r->rate);
		r->content_type[0] = '\0';
		r->etag[0] = '\0';
		free(r->link);
		r->link = NULL;
		if (!r->stream || r->status != 200)
			r->body.len = 0;
		return len;
	}
	if (ps_github_rate_header(&r->rate, line, len))
		return len;
	if (header_is(line, len, "content-type", &v, &vlen)) {
		snprintf(r->content_type, sizeof(r->content_type), "%.*s", (int)vlen, v);
	} else if (header_is(line, len, "etag", &v, &vlen)) {
		if (vlen < sizeof(r->etag))
			snprintf(r->etag, sizeof(r->etag), "%.*s", (int)vlen, v);
	} else if (header_is(line, len, "link", &v, &vlen) && vlen < 16384) {
		free(r->link);
		r->link = ps_strndup(v, vlen);
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct gh_req *r = ud;
	size_t len = size * nmemb;

	if (r->stream && r->status == 200) {
		struct tar_stream *ts = r->stream;
		if (ts->pending.len >= STREAM_PAUSE) {
			ts->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		if (ps_buf_append(&ts->pending, data, len) < 0) {
			r->too_big = true;
			return 0;
		}
		r->src->base.bytes += (int64_t)len;
		return len;
	}
	r->src->base.bytes += (int64_t)len;
	if (ps_buf_append(&r->body, data, len) < 0) {
		r->too_big = true;
		return 0;
	}
	return len;
}

/* Aborts a transfer that made no progress for the timeout (a hung peer). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct gh_req *r = ud;
	int64_t now = ps_mono_ms();

	if (dlnow != r->last_bytes) {
		r->last_bytes = dlnow;
		r->last_progress = now;
		return 0;
	}
	if (r->stream && r->stream->paused)
		r->last_progress = now; /* we are the slow side */
	if (now - r->last_progress > r->src->timeout_ms) {
		r->stalled = true;
		return 1;
	}
	return 0;
}

static void req_reset_result(struct gh_req *r)
{
	r->status = 0;
	r->body.len = 0;
	ps_github_rate_init(&r->rate);
	r->content_type[0] = '\0';
	r->etag[0] = '\0';
	free(r->link);
	r->link = NULL;
	free(r->effective_url);
	r->effective_url = NULL;
	r->redirects = 0;
	r->cc = CURLE_OK;
	r->errbuf[0] = '\0';
	r->too_big = r->stalled = false;
}

void gh_req_init(struct gh_req *r, struct gh_source *s, char *url, const char *accept,
		     size_t max_body)
{
	memset(r, 0, sizeof(*r));
	r->src = s;
	r->url = url;
	r->accept = accept;
	r->max_body = max_body;
	ps_buf_init(&r->body, max_body);
	ps_github_rate_init(&r->rate);
}

void gh_req_dispose(struct gh_req *r)
{
	if (r->easy) {
		if (r->state == 1)
			curl_multi_remove_handle(r->src->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	ps_buf_dispose(&r->body);
	free(r->url);
	free(r->if_none_match);
	free(r->link);
	free(r->effective_url);
	r->url = r->if_none_match = r->link = r->effective_url = NULL;
}

int gh_req_start(struct gh_source *s, struct gh_req *r)
{
	char *h;
	CURL *e = curl_easy_init();

	if (!e)
		return ps_error_set(PS_ENOMEM, NULL, "cannot create an HTTP handle");
	req_reset_result(r);
	curl_slist_free_all(r->headers);
	r->headers = NULL;
	h = ps_asprintf("Accept: %s", r->accept);
	r->headers = curl_slist_append(r->headers, h);
	free(h);
	r->headers = curl_slist_append(r->headers, USER_AGENT);
	r->headers = curl_slist_append(r->headers, API_VERSION);
	if (s->auth)
		r->headers = curl_slist_append(r->headers, s->auth);
	if (r->if_none_match) {
		h = ps_asprintf("If-None-Match: %s", r->if_none_match);
		r->headers = curl_slist_append(r->headers, h);
		free(h);
	}
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* Never forward the token to another host after a redirect (curl's default; kept). */
	curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
	if (s->deadline > 0) {
		int64_t left = s->deadline - ps_mono_ms();
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
	}
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, r);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	r->easy = e;
	r->last_progress = ps_mono_ms();
	r->last_bytes = 0;
	if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		r->easy = NULL;
		return ps_error_set(PS_EFAIL, NULL, "cannot start an HTTP request");
	}
	r->state = 1;
	return 0;
}

/* Records what a finished transfer tells, counts it, and notices a renamed repository. */
void gh_req_finish(struct gh_source *s, struct gh_req *r, CURLcode cc)
{
	char *eff = NULL;
	long redirects = 0;

	r->cc = cc;
	curl_easy_getinfo(r->easy, CURLINFO_REDIRECT_COUNT, &redirects);
	curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &eff);
	r->redirects = redirects;
	r->effective_url = eff ? ps_strdup(eff) : NULL;
	curl_multi_remove_handle(s->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	r->state = 0;
	s->base.requests += 1 + redirects;

	/* A repository GitHub redirects (renamed or transferred) is reached at its new place
	 * for the rest of this source's life; the path below the repository stays the same. */
	size_t blen = strlen(s->repo_url);
	if (redirects > 0 && r->effective_url && r->status >= 200 && r->status < 400 &&
	    strncmp(r->url, s->repo_url, blen) == 0 && gh_same_origin(s, r->effective_url)) {
		const char *suffix = r->url + blen;
		size_t slen = strlen(suffix), elen = strlen(r->effective_url);
		if (elen > slen && strcmp(r->effective_url + elen - slen, suffix) == 0 &&
		    strncmp(r->effective_url, s->repo_url, blen) != 0) {
			free(s->repo_url);
			s->repo_url = ps_strndup(r->effective_url, elen - slen);
			if (!s->moved_warned) {
				char name[200];
				gh_warn(s, "GitHub redirects repository %s to %s (renamed or "
				     "transferred); following it",
				     gh_repo_name(s, name, sizeof(name)), gh_endpoint(s, s->repo_url));
				s->moved_warned = true;
			}
		}
	}
}

static bool transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_ABORTED_BY_CALLBACK: /* our stall detector */
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		return true;
	default:
		return false;
	}
}

/* GitHub's "message" of an error body, for our messages (bounded). */
static void body_message(const struct gh_req *r, char *out, size_t len)
{
	json_t *root;

	out[0] = '\0';
	if (!r->body.len || !(root = json_loadb(r->body.data, r->body.len, 0, NULL)))
		return;
	const char *m = json_string_value(json_object_get(root, "message"));
	if (m)
		snprintf(out, len, "%.200s", m);
	json_decref(root);
}

/* Back-off for a secondary rate limit without retry-after: from the base (one minute by
 * default, as GitHub asks), doubling, bounded by the maximum wait. */
static int64_t backoff_delay(const struct gh_source *s, int n)
{
	int64_t d = s->backoff_ms;

	for (int i = 0; i < n && d < s->max_wait_ms; i++)
		d *= 2;
	return d < s->max_wait_ms ? d : s->max_wait_ms;
}

/*
 * What to do with a finished transfer: ACT_DONE (hand it to the caller, whatever the status),
 * ACT_RETRY after *delay ms, or a negative error. Rate limits and transient faults are handled
 * here, so that every caller gets them the same way.
 */
/* Back-off for transient faults (5xx, timeouts, cut connections): they are usually short, so
 * from a sixtieth of the rate-limit base (one second by default), doubling. */
int64_t gh_retry_delay(const struct gh_source *s, int n)
{
	int64_t d = s->backoff_ms / 60 > 0 ? s->backoff_ms / 60 : 1;

	for (int i = 0; i < n && d < s->max_wait_ms; i++)
		d *= 2;
	return d < s->max_wait_ms ? d : s->max_wait_ms;
}

/* The newest rate-limit figures of the answers that carried them, across every GitHub source of
 * the process (they share one limit per token), for `projsync serve`'s /metrics and the choice
 * of a fetch's requests (fetch.c few_blobs). Merged by ps_github_rate_merge, not overwritten:
 * a fetch's parallel requests finish in any order, and the last answer processed could say one
 * more request left than an earlier-processed one that GitHub counted later. */
static pthread_mutex_t last_rate_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_rate_remaining = -1, last_rate_reset = -1;

void ps_github_rate_limit_last(int64_t *remaining, int64_t *reset)
{
	pthread_mutex_lock(&last_rate_mu);
	*remaining = last_rate_remaining;
	*reset = last_rate_reset;
	pthread_mutex_unlock(&last_rate_mu);
}

int gh_classify(struct gh_source *s, struct gh_req *r, int64_t *delay)
{
	const char *what = gh_endpoint(s, r->url);
	char msg[256];
	bool transient = false;
	char reason[CURL_ERROR_SIZE + 64];

	if (r->rate.remaining >= 0) {
		pthread_mutex_lock(&last_rate_mu);
		ps_github_rate_merge(&last_rate_remaining, &last_rate_reset, r->rate.remaining,
				     r->rate.reset);
		pthread_mutex_unlock(&last_rate_mu);
	}

	*delay = 0;
	if (r->too_big)
		return ps_error_set(PS_ETOOBIG, "response_too_big",
				    "GitHub's answer to GET %s exceeds %zu bytes", what, r->max_body);
	if (r->cc != CURLE_OK) {
		if (r->stalled)
			snprintf(reason, sizeof(reason), "no data for %lld ms",
				 (long long)s->timeout_ms);
		else
			snprintf(reason, sizeof(reason), "%s",
				 r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc));
		/* A name that does not resolve will not resolve in a few seconds either: say which
		 * name at once rather than retrying it like a 5xx. */
		if (r->cc == CURLE_COULDNT_RESOLVE_HOST || r->cc == CURLE_COULDNT_RESOLVE_PROXY) {
			char host[256];
			url_host(r->effective_url ? r->effective_url : r->url, host, sizeof(host));
			return ps_error_set(PS_EUPSTREAM, "upstream_unreachable",
					    r->cc == CURLE_COULDNT_RESOLVE_PROXY
					    ? "cannot resolve the proxy's host name (GET %s of %s): %s"
					    : "cannot resolve host name %s (GET %s): %s",
					    r->cc == CURLE_COULDNT_RESOLVE_PROXY ? what : host,
					    r->cc == CURLE_COULDNT_RESOLVE_PROXY ? host : what, reason);
		}
		if (!transient_curl(r->cc) || r->cc == CURLE_ABORTED_BY_CALLBACK) {
			if (!r->stalled)
				return ps_error_set(PS_EUPSTREAM, "upstream_unreachable",
						    "GET %s failed: %s", what, reason);
		}
		transient = true;
	} else if (r->status >= 500) {
		snprintf(reason, sizeof(reason), "HTTP %ld", r->status);
		transient = true;
	} else if (r->status == 401) {
		return ps_error_set(PS_EUPSTREAM, "bad_credentials",
				    "GitHub rejected the token (bad credentials)");
	} else if (r->status == 403 || r->status == 429) {
		int64_t max_s = s->max_wait_ms / 1000, wait_s;
		bool primary;
		char clock[64];

		body_message(r, msg, sizeof(msg));
		/* Clamped to max_s + 1: a huge header means "beyond the limit", never an overflow. */
		wait_s = ps_github_rate_wait(&r->rate, ps_now_ms() / 1000, max_s, &primary);
		if (primary) {
			ps_github_clock(r->rate.reset, clock, sizeof(clock));
			if (wait_s > max_s || r->rate_waits >= RATE_WAITS_MAX) {
				gh_warn(s, "GitHub rate limit exhausted; it resets at %s, beyond the %lld s "
				     "this sync may wait", clock, (long long)max_s);
				return ps_error_set(PS_EUPSTREAM, "rate_limited",
						    "GitHub rate limit exhausted; it resets at %s "
						    "(in %lld s), beyond the %lld s this sync may wait "
						    "(PROJSYNC_GITHUB_MAX_WAIT)", clock,
						    (long long)(r->rate.reset - ps_now_ms() / 1000),
						    (long long)max_s);
			}
			gh_warn(s, "GitHub rate limit exhausted; waiting until %s (resets in %lld s)",
			     clock, (long long)wait_s);
			r->rate_waits++;
			*delay = wait_s * 1000;
			return ACT_RETRY;
		}
		if (wait_s > 0) {
			if (wait_s > max_s || r->rate_waits >= RATE_WAITS_MAX) {
				if (r->rate.retry_after > max_s)
					return ps_error_set(PS_EUPSTREAM, "rate_limited",
							    "GitHub secondary rate limit: retry after "
							    "%lld s, beyond the %lld s this sync may wait "
							    "(PROJSYNC_GITHUB_MAX_WAIT)",
							    (long long)r->rate.retry_after,
							    (long long)max_s);
				return ps_error_set(PS_EUPSTREAM, "rate_limited",
						    "GitHub secondary rate limit persists after %d "
						    "waits (GET %s)", r->rate_waits, what);
			}
			gh_warn(s, "GitHub secondary rate limit; waiting %lld s as GitHub asks",
			     (long long)wait_s);
			r->rate_waits++;
			*delay = wait_s * 1000;
			return ACT_RETRY;
		}
		if (r->status == 429 || strcasestr(msg, "rate limit")) {
			if (r->rate_waits >= RATE_WAITS_MAX)
				return ps_error_set(PS_EUPSTREAM, "rate_limited",
						    "GitHub secondary rate limit persists after %d "
						    "waits (GET %s)", r->rate_waits, what);
			*delay = backoff_delay(s, r->rate_waits);
			gh_warn(s, "GitHub secondary rate limit; backing off %lld ms",
			     (long long)*delay);
			r->rate_waits++;
			return ACT_RETRY;
		}
		return ps_error_set(PS_EUPSTREAM, "forbidden", "GitHub refused GET %s: %s", what,
				    msg[0] ? msg : "403 Forbidden");
	}
	if (!transient)
		return ACT_DONE;
	if (r->attempts >= s->retries)
		return ps_error_set(PS_EUPSTREAM,
				    r->stalled || r->cc == CURLE_OPERATION_TIMEDOUT ? "upstream_timeout"
				    : r->cc != CURLE_OK ? "upstream_unreachable" : "upstream_error",
				    "GET %s failed after %d attempts: %s", what, r->attempts + 1,
				    reason);
	*delay = gh_retry_delay(s, r->attempts);
	r->attempts++;
	return ACT_RETRY;
}


/* The failure of a bounded batch whose time is up (or would be before the next attempt). */
static int bound_exceeded(struct gh_source *s, const struct gh_req *r)
{
	char reason[CURL_ERROR_SIZE + 64];

	if (r->stalled || r->cc == CURLE_OPERATION_TIMEDOUT)
		snprintf(reason, sizeof(reason), "no answer");
	else if (r->cc != CURLE_OK)
		snprintf(reason, sizeof(reason), "%s",
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc));
	else
		snprintf(reason, sizeof(reason), "HTTP %ld", r->status);
	return ps_error_set(PS_EUPSTREAM, "upstream_timeout",
			    "GitHub did not answer GET %s within %lld ms (last attempt: %s; "
			    "PROJSYNC_NET_TIMEOUT)", gh_endpoint(s, r->url), (long long)s->timeout_ms,
			    reason);
}

/*
 * Runs `n` requests, at most `cap` at a time, retrying as classify says, and calls on_done for
 * each in completion order (a non-zero return stops everything and is returned). Blocks.
 */
int gh_run_requests(struct gh_source *s, struct gh_req **reqs, size_t n, size_t cap,
			req_done_fn on_done, void *ud)
{
	size_t active = 0, finished = 0;
	int rc = 0;

	s->deadline = s->bounded ? ps_mono_ms() + s->timeout_ms : 0;
	for (size_t i = 0; i < n; i++) {
		reqs[i]->state = 0;
		reqs[i]->not_before = 0;
	}
	while (finished < n) {
		int64_t now = ps_mono_ms(), next_start = -1;
		int running = 0;
		CURLMsg *m;
		int left;

		if ((rc = ps_source_stopped(&s->base)) < 0)
			goto abort;
		for (size_t i = 0; i < n && active < cap; i++) {
			struct gh_req *r = reqs[i];
			if (r->state != 0)
				continue;
			if (r->not_before > now) {
				if (next_start < 0 || r->not_before < next_start)
					next_start = r->not_before;
				continue;
			}
			if ((rc = gh_req_start(s, r)) < 0)
				goto abort;
			active++;
		}
		curl_multi_perform(s->multi, &running);
		while ((m = curl_multi_info_read(s->multi, &left))) {
			struct gh_req *r = NULL;
			int64_t delay;
			int act;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			gh_req_finish(s, r, m->data.result);
			active--;
			act = gh_classify(s, r, &delay);
			if (act < 0) {
				rc = act;
				goto abort;
			}
			if (act == ACT_RETRY && s->deadline > 0 &&
			    ps_mono_ms() + delay >= s->deadline) {
				rc = bound_exceeded(s, r);
				goto abort;
			}
			if (act == ACT_RETRY) {
				r->state = 0;
				r->not_before = ps_mono_ms() + delay;
				continue;
			}
			r->state = 2;
			finished++;
			if (on_done && (rc = on_done(ud, r)) != 0)
				goto abort;
		}
		if (finished == n)
			break;
		int timeout = 100;
		if (active == 0 && next_start >= 0) {
			int64_t d = next_start - ps_mono_ms();
			timeout = d < 0 ? 0 : d > 250 ? 250 : (int)d;
		}
		curl_multi_poll(s->multi, NULL, 0, timeout, NULL);
	}
	s->deadline = 0;
	return 0;
abort:
	s->deadline = 0;
	for (size_t i = 0; i < n; i++) {
		if (reqs[i]->state == 1 && reqs[i]->easy) {
			curl_multi_remove_handle(s->multi, reqs[i]->easy);
			curl_easy_cleanup(reqs[i]->easy);
			reqs[i]->easy = NULL;
			reqs[i]->state = 0;
		}
	}
	return rc;
}

/* One GET, retried as needed. The caller owns *r afterwards (req_dispose). */
int gh_get(struct gh_source *s, struct gh_req *r, char *url, const char *accept,
	       const char *if_none_match, size_t max_body)
{
	struct gh_req *one = r;

	gh_req_init(r, s, url, accept, max_body);
	if (if_none_match)
		r->if_none_match = ps_asprintf("\"%s\"", if_none_match);
	return gh_run_requests(s, &one, 1, 1, NULL, NULL);
}

char *gh_repo_path(struct gh_source *s, const char *fmt, ...)
{
	va_list ap;
	char *rest, *url;

	va_start(ap, fmt);
	if (vasprintf(&rest, fmt, ap) < 0)
		rest = NULL;
	va_end(ap);
	url = ps_asprintf("%s%s", s->repo_url, rest ? rest : "");
	free(rest);
	return url;
}

int gh_repo_not_found(struct gh_source *s)
{
	char name[200];

	return ps_error_set(PS_ENOTFOUND, "repository_not_found",
			    "repository %s not found or no access", gh_repo_name(s, name, sizeof(name)));
}

/* A status the caller did not expect, as an error naming the endpoint and GitHub's message. */
int gh_unexpected(struct gh_source *s, const struct gh_req *r)
{
	char msg[256];

	body_message(r, msg, sizeof(msg));
	return ps_error_set(PS_EUPSTREAM, "upstream_error", "GitHub answered %ld to GET %s%s%s",
			    r->status, gh_endpoint(s, r->url), msg[0] ? ": " : "", msg);
}

int gh_parse_body(struct gh_source *s, struct gh_req *r, json_t **out)
{
	int rc = 0;

	*out = gh_load_json(r->body.data, r->body.len, gh_endpoint(s, r->url), &rc);
	return rc;
}
