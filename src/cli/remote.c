/*
 * The client side of `projsync sync --server` (see remote.h): libcurl for the two requests,
 * a small line parser for the event stream, and a JSON-to-event converter so the progress
 * renderer (cli/progress.h) gets the same struct ps_event a local sync hands it.
 */
#include "cli/remote.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/json.h"
#include "util/error.h"

#define MAX_LINE (4 * 1024 * 1024)
#define MAX_RECONNECTS 5

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct stream {
	struct ps_progress *progress;
	bool json;
	struct ps_buf line;     /* the line being read */
	char *id, *event;       /* fields of the event being read */
	struct ps_buf data;
	int64_t last_seq;
	bool final;
	enum ps_event_kind final_kind;
	char *final_message;
	bool cancel_sent;
};

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int64_t jint(json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static struct ps_sync *sync_from_json(json_t *j)
{
	struct ps_sync *s;
	json_t *counts = json_object_get(j, "counts"), *err = json_object_get(j, "error");

	if (!json_is_object(j))
		return NULL;
	s = ps_calloc(1, sizeof(*s));
	s->id = jint(j, "id");
	s->project = jstr(j, "project") ? ps_strdup(jstr(j, "project")) : NULL;
	s->branch = ps_strdup(jstr(j, "branch") ? jstr(j, "branch") : "");
	(void)ps_sync_status_parse(jstr(j, "status") ? jstr(j, "status") : "", &s->status);
	(void)ps_phase_parse(jstr(j, "phase") ? jstr(j, "phase") : "", &s->phase);
	s->commit = jstr(j, "commit") ? ps_strdup(jstr(j, "commit")) : NULL;
	s->trigger = ps_strdup(jstr(j, "trigger") ? jstr(j, "trigger") : "api");
	s->previous_sync_id = jint(j, "previous_sync_id"); /* for ps_sync_first_kept */
	s->counts.added = jint(counts, "added");
	s->counts.modified = jint(counts, "modified");
	s->counts.deleted = jint(counts, "deleted");
	s->counts.renamed = jint(counts, "renamed");
	s->counts.files = jint(counts, "files");
	s->bytes = jint(j, "bytes");
	s->requests = jint(j, "requests");
	s->up_to_date = json_is_true(json_object_get(j, "up_to_date"));
	s->skipped_large = jint(j, "skipped_large");
	s->checks = jint(j, "checks");
	if (json_is_object(err)) {
		s->error_code = jstr(err, "code") ? ps_strdup(jstr(err, "code")) : NULL;
		s->error_message = jstr(err, "message") ? ps_strdup(jstr(err, "message")) : NULL;
	}
	return s;
}

static bool event_from_json(json_t *j, struct ps_event *ev)
{
	const char *kind = jstr(j, "kind");
	bool found = false;

	memset(ev, 0, sizeof(*ev));
	for (int k = PS_EVENT_QUEUED; kind && k <= PS_EVENT_CANCELLED; k++)
		if (strcmp(kind, ps_event_kind_name((enum ps_event_kind)k)) == 0) {
			ev->kind = (enum ps_event_kind)k;
			found = true;
		}
	if (!found)
		return false;
	ev->sync_id = jint(j, "sync_id");
	ev->seq = jint(j, "seq");
	(void)ps_phase_parse(jstr(j, "phase") ? jstr(j, "phase") : "", &ev->phase);
	ev->fraction = json_number_value(json_object_get(j, "fraction"));
	ev->files_done = jint(j, "files_done");
	ev->files_total = jint(j, "files_total");
	ev->bytes = jint(j, "bytes");
	ev->requests = jint(j, "requests");
	ev->elapsed_ms = jint(j, "elapsed_ms");
	ev->message = jstr(j, "message") ? ps_strdup(jstr(j, "message")) : NULL;
	ev->summary = sync_from_json(json_object_get(j, "summary"));
	return true;
}

static void dispatch_event(struct stream *st)
{
	struct ps_event ev;
	json_t *j;

	if (!st->data.len)
		goto reset;
	j = json_loadb(st->data.data, st->data.len, 0, NULL);
	if (j && event_from_json(j, &ev)) {
		if (ev.seq > st->last_seq) {
			st->last_seq = ev.seq;
			if (st->json) {
				fwrite(st->data.data, 1, st->data.len, stdout);
				fputc('\n', stdout);
				fflush(stdout);
			} else {
				ps_progress_event(st->progress, &ev);
			}
			if (ps_event_is_final(ev.kind)) {
				st->final = true;
				st->final_kind = ev.kind;
				free(st->final_message);
				st->final_message = ps_progress_summary(st->progress, &ev);
			}
		}
		ps_event_dispose(&ev);
	}
	json_decref(j);
reset:
	ps_buf_dispose(&st->data);
	ps_buf_init(&st->data, MAX_LINE);
}

static void handle_line(struct stream *st, char *line, size_t len)
{
	char *colon, *value;

	if (len && line[len - 1] == '\r')
		line[--len] = 0;
	if (len == 0) {
		dispatch_event(st);
		return;
	}
	if (line[0] == ':')
		return; /* heartbeat or comment */
	colon = strchr(line, ':');
	value = colon ? colon + 1 : line + len;
	if (colon)
		*colon = 0;
	if (*value == ' ')
		value++;
	if (strcmp(line, "data") == 0) {
		if (st->data.len)
			ps_buf_puts(&st->data, "\n");
		ps_buf_puts(&st->data, value);
	}
	/* id and event are in the JSON too; retry is for browsers. */
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct stream *st = ud;
	size_t n = size * nmemb;

	for (size_t i = 0; i < n; i++) {
		if (ptr[i] == '\n') {
			char *line = st->line.len ? st->line.data : (char *)"";
			char *copy = ps_strndup(line, st->line.len);
			handle_line(st, copy, st->line.len);
			free(copy);
			ps_buf_dispose(&st->line);
			ps_buf_init(&st->line, MAX_LINE);
		} else if (ps_buf_append(&st->line, ptr + i, 1) < 0) {
			return 0; /* a line past any sane size: stop */
		}
	}
	return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct stream *st = ud;

	(void)a, (void)b, (void)c, (void)d;
	/* Ctrl-C: leave the transfer, ask the server to cancel, then read on. */
	return interrupted && !st->cancel_sent ? 1 : 0;
}

struct body {
	struct ps_buf b;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body *bd = ud;

	return ps_buf_append(&bd->b, ptr, size * nmemb) < 0 ? 0 : size * nmemb;
}

static struct curl_slist *auth_headers(struct curl_slist *h)
{
	const char *token = getenv("PROJSYNC_API_TOKEN");

	if (token && token[0]) {
		char *line = ps_asprintf("Authorization: Bearer %s", token);
		h = curl_slist_append(h, line);
		free(line);
	}
	return h;
}

/* POST with a JSON body; returns the HTTP status (0 on a transport error) and the body. */
static long post(const char *url, const char *json, struct body *out, char *err)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = auth_headers(curl_slist_append(NULL,
					    "Content-Type: application/json"));
	long status = 0;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json ? json : "");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

static const char *error_message(struct body *b, long status, const char *base)
{
	static __thread char msg[512];
	json_t *j = b->b.len ? json_loadb(b->b.data, b->b.len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *m = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *token = getenv("PROJSYNC_API_TOKEN");

	/* The server's words name a header, which is how an HTTP client fixes it; the CLI's user
	 * fixes it with the variable the CLI sends. */
	if (status == 401 && code && strcmp(code, "unauthorized") == 0)
		snprintf(msg, sizeof(msg), token && token[0]
			 ? "the server at %s refused the token in PROJSYNC_API_TOKEN"
			 : "the server at %s needs a token: set PROJSYNC_API_TOKEN to its API token",
			 base);
	else if (status == 403 && code && strcmp(code, "read_only_token") == 0)
		snprintf(msg, sizeof(msg), "PROJSYNC_API_TOKEN holds a token that may only read on "
			 "the server at %s: a sync needs its API token", base);
	else
		snprintf(msg, sizeof(msg), "%s", m ? m : "unexpected answer from the server");
	json_decref(j);
	return msg;
}

/* Follows the stream once; returns the curl result and the HTTP status. */
static CURLcode follow(const char *url, struct stream *st, long *status, char *err)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = auth_headers(curl_slist_append(NULL, "Accept: text/event-stream"));
	CURLcode rc;

	if (st->last_seq > 0) {
		char *line = ps_asprintf("Last-Event-ID: %lld", (long long)st->last_seq);
		h = curl_slist_append(h, line);
		free(line);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, st);
	/* Heartbeats arrive every 15 s; a minute of silence means the connection is gone. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(c);
	*status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

int ps_remote_sync(struct ps_cli *cli, const char *server_url, const char *project,
		   const char *branch, struct ps_progress *progress, bool live)
{
	struct stream st = { .progress = progress, .json = cli->json };
	struct body resp;
	struct sigaction sa = { 0 }, old[2];
	char err[CURL_ERROR_SIZE] = "", *base, *url, *body = NULL;
	json_t *req, *j;
	int64_t sync_id = 0;
	long status;
	int exit_code = PS_EXIT_FAILURE, tries = 0;
	size_t blen;

	base = ps_strdup(server_url);
	blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		base[--blen] = 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ps_buf_init(&resp.b, 1024 * 1024);
	ps_buf_init(&st.line, MAX_LINE);
	ps_buf_init(&st.data, MAX_LINE);

	{
		char *esc = curl_easy_escape(NULL, project, 0);
		url = ps_asprintf("%s/api/v1/projects/%s/sync", base, esc);
		curl_free(esc);
	}
	req = branch ? json_pack("{s:s}", "branch", branch) : json_object();
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	status = post(url, body, &resp, err);
	free(url);
	if (status != 202) {
		if (status == 0)
			fprintf(stderr, "projsync: cannot reach the server at %s: %s\n", base,
				err[0] ? err : "no answer");
		else
			fprintf(stderr, "projsync: %s\n", error_message(&resp, status, base));
		exit_code = status == 404 ? PS_EXIT_NOTFOUND : status == 409 ? PS_EXIT_CONFLICT
			  : status == 400 ? PS_EXIT_USAGE : PS_EXIT_FAILURE;
		goto cleanup;
	}
	j = json_loadb(resp.b.data, resp.b.len, 0, NULL);
	sync_id = jint(j, "id");
	json_decref(j);
	if (sync_id <= 0) {
		fprintf(stderr, "projsync: the server's answer has no sync id\n");
		goto cleanup;
	}

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old[0]);
	sigaction(SIGTERM, &sa, &old[1]);
	url = ps_asprintf("%s/api/v1/events/project-sync/%lld", base, (long long)sync_id);
	while (!st.final && tries <= MAX_RECONNECTS) {
		CURLcode rc;

		err[0] = 0;
		rc = follow(url, &st, &status, err);
		if (st.final)
			break;
		if (interrupted && !st.cancel_sent) {
			char *curl_url = ps_asprintf("%s/api/v1/syncs/%lld/cancel", base,
						     (long long)sync_id);
			struct body cb;
			ps_buf_init(&cb.b, 1024 * 1024);
			(void)post(curl_url, NULL, &cb, err);
			ps_buf_dispose(&cb.b);
			free(curl_url);
			st.cancel_sent = true;
			continue;
		}
		if (status && status != 200) {
			fprintf(stderr, "projsync: event stream of sync %lld: HTTP %ld\n",
				(long long)sync_id, status);
			break;
		}
		/* The stream ended without a final event: reconnect and resume after what we
		 * have. */
		tries++;
		if (tries <= MAX_RECONNECTS)
			sleep(1);
		(void)rc;
	}
	free(url);
	sigaction(SIGINT, &old[0], NULL);
	sigaction(SIGTERM, &old[1], NULL);

	if (!st.final) {
		ps_progress_abort(progress);
		fprintf(stderr, "projsync: lost the event stream of sync %lld on %s%s%s\n",
			(long long)sync_id, base, err[0] ? ": " : "", err);
		goto cleanup;
	}
	if (st.final_kind == PS_EVENT_SUCCEEDED) {
		exit_code = PS_EXIT_OK;
	} else if (!(live && isatty(STDERR_FILENO))) {
		if (st.final_kind == PS_EVENT_CANCELLED)
			fputs("projsync: cancelled\n", stderr);
		else
			fprintf(stderr, "projsync: %s\n",
				st.final_message ? st.final_message : "sync failed");
	}
cleanup:
	free(body);
	free(base);
	free(st.final_message);
	ps_buf_dispose(&resp.b);
	ps_buf_dispose(&st.line);
	ps_buf_dispose(&st.data);
	curl_global_cleanup();
	return exit_code;
}
