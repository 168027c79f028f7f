/*
 * `POST /api/v1/webhooks/github`: GitHub webhook deliveries. Every delivery is authenticated by
 * its X-Hub-Signature-256 header, the HMAC-SHA256 of the raw body under the shared secret
 * (PROJSYNC_WEBHOOK_SECRET), compared in constant time; without a configured secret the
 * endpoint refuses everything. Then:
 *
 *   ping  200
 *   push  to refs/heads/<B> of a repository a project syncs, where B is the project's branch
 *         (or the repository's default branch for a project that follows the default): queues
 *         a sync with trigger "webhook" for each such project (202). A redelivery (same
 *         X-GitHub-Delivery, recorded in the store) queues nothing new.
 *   other 202, ignored.
 *
 * A repository matches a project when its source is github:OWNER/REPO for the payload's
 * repository.full_name, or a URL (or local path) equal to one of the payload's clone_url,
 * html_url, ssh_url, git_url, compared without a trailing ".git" or "/".
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "server/http.h"
#include "util/error.h"

bool ps_webhook_signature_valid(const char *secret, const void *body, size_t len,
				const char *header)
{
	unsigned char mac[EVP_MAX_MD_SIZE], given[32];
	unsigned int maclen = 0;

	if (!secret || !secret[0] || !header || strncmp(header, "sha256=", 7) != 0 ||
	    strlen(header + 7) != 64)
		return false;
	for (size_t i = 0; i < 32; i++) {
		int hi = ps_hex_digit(header[7 + 2 * i]), lo = ps_hex_digit(header[8 + 2 * i]);
		if (hi < 0 || lo < 0)
			return false;
		given[i] = (unsigned char)(hi << 4 | lo);
	}
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &maclen) ||
	    maclen != 32)
		return false;
	return CRYPTO_memcmp(mac, given, 32) == 0;
}

/* A comparable form of a repository location: no file:// scheme, no trailing "/" or ".git",
 * no user part, host part lowercased for URLs. */
static char *normalize_location(const char *s)
{
	char *n = ps_strdup(strncmp(s, "file://", 7) == 0 ? s + 7 : s);
	size_t len = strlen(n);
	char *host;

	while (len && n[len - 1] == '/')
		n[--len] = 0;
	if (len > 4 && strcmp(n + len - 4, ".git") == 0)
		n[len -= 4] = 0;
	if ((host = strstr(n, "://"))) {
		char *auth = host + 3, *end = auth + strcspn(auth, "/"), *at = NULL;
		/* Credentials a source carries to fetch with (https://TOKEN@host/...) are not
		 * part of which repository it is: GitHub's URLs never have them. */
		for (char *p = auth; p < end; p++)
			if (*p == '@')
				at = p;
		if (at)
			memmove(auth, at + 1, strlen(at + 1) + 1);
		for (char *p = auth; *p && *p != '/'; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	return n;
}

static bool source_matches(const char *source, json_t *repo)
{
	static const char *const keys[] = { "clone_url", "html_url", "ssh_url", "git_url", "url",
					    NULL };
	const char *full = json_string_value(json_object_get(repo, "full_name"));
	char *src;
	bool match = false;

	if (strncmp(source, "github:", 7) == 0)
		return full && strcasecmp(source + 7, full) == 0;
	src = normalize_location(source);
	for (size_t i = 0; keys[i] && !match; i++) {
		const char *u = json_string_value(json_object_get(repo, keys[i]));
		if (u && u[0]) {
			char *nu = normalize_location(u);
			match = strcmp(nu, src) == 0;
			free(nu);
		}
	}
	/* https://github.com/OWNER/REPO stored as a URL also matches by full name. */
	if (!match && full && strncasecmp(src, "https://github.com/", 19) == 0)
		match = strcasecmp(src + 19, full) == 0;
	free(src);
	return match;
}

/* GitHub also delivers as application/x-www-form-urlencoded: payload=<url-encoded JSON>. */
static char *form_payload(const char *body, size_t len, size_t *outlen)
{
	char *out = ps_malloc(len + 1);
	size_t n = 0;

	for (size_t i = 8; i < len; i++) {
		if (body[i] == '+') {
			out[n++] = ' ';
		} else if (body[i] == '%' && i + 2 < len && ps_hex_digit(body[i + 1]) >= 0 &&
			   ps_hex_digit(body[i + 2]) >= 0) {
			out[n++] = (char)(ps_hex_digit(body[i + 1]) << 4 | ps_hex_digit(body[i + 2]));
			i += 2;
		} else if (body[i] == '&') {
			break;
		} else {
			out[n++] = body[i];
		}
	}
	out[n] = 0;
	*outlen = n;
	return out;
}

static void ignored(struct ps_request *rq, const char *reason)
{
	ps_http_json(rq, MHD_HTTP_ACCEPTED, json_pack("{s:b, s:s}", "ignored", 1, "reason", reason));
}

static void handle_push(struct ps_request *rq, json_t *payload, const char *delivery)
{
	json_t *repo = json_object_get(payload, "repository");
	const char *ref = json_string_value(json_object_get(payload, "ref"));
	const char *def = json_string_value(json_object_get(repo, "default_branch"));
	struct ps_project **ps = NULL;
	size_t n = 0;
	json_t *queued, *running;
	int rc;

	if (!ref || !json_is_object(repo)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_payload",
			      "a push payload needs 'ref' and 'repository'");
		return;
	}
	if (delivery && (rc = ps_store_webhook_delivery_add(rq->store, delivery, "push")) < 0) {
		if (rc == PS_ECONFLICT) {
			ps_http_json(rq, MHD_HTTP_OK, json_pack("{s:b, s:[]}", "duplicate", 1,
								"queued"));
			return;
		}
		ps_http_fail(rq, rc);
		return;
	}
	if (strncmp(ref, "refs/heads/", 11) != 0) {
		ignored(rq, "not a branch push");
		return;
	}
	if (json_is_true(json_object_get(payload, "deleted"))) {
		ignored(rq, "branch deleted");
		return;
	}
	if ((rc = ps_store_project_list(rq->store, &ps, &n)) < 0) {
		ps_http_fail(rq, rc);
		return;
	}
	queued = json_array();
	running = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *branch = ps[i]->branch ? ps[i]->branch : def;
		struct ps_sync *sync = NULL;

		if (!branch || strcmp(branch, ref + 11) != 0 || !source_matches(ps[i]->source, repo))
			continue;
		rc = ps_server_queue_sync(rq->srv, rq->store, ps[i], ref + 11, "webhook", &sync);
		if (rc == 0)
			json_array_append_new(queued, ps_sync_to_json(sync));
		else if (rc == PS_ECONFLICT)
			json_array_append_new(running, ps_json_string(ps[i]->name));
		else
			ps_log_at("error", "webhook: queueing a sync of %s failed: %s", ps[i]->name,
			       ps_error_message());
		ps_sync_free(sync);
	}
	for (size_t i = 0; i < n; i++)
		ps_project_free(ps[i]);
	free(ps);
	if (json_array_size(queued) == 0 && json_array_size(running) == 0) {
		json_decref(queued);
		json_decref(running);
		ignored(rq, "no project follows this repository and branch");
		return;
	}
	ps_http_json(rq, MHD_HTTP_ACCEPTED, json_pack("{s:o, s:o}", "queued", queued,
						      "already_running", running));
}

void ps_webhook_check_headers(struct ps_request *rq)
{
	const char *secret = rq->srv->cfg.webhook_secret;

	/* Decided before the body is read: up to 25 MiB per delivery are not buffered only to be
	 * refused. */
	if (!secret || !secret[0])
		ps_http_error(rq, MHD_HTTP_FORBIDDEN, "webhook_disabled",
			      "webhooks are disabled: set PROJSYNC_WEBHOOK_SECRET on the server");
	else if (!ps_http_header(rq, "X-Hub-Signature-256"))
		ps_http_error(rq, MHD_HTTP_UNAUTHORIZED, "signature_missing",
			      "X-Hub-Signature-256 is required");
}

void ps_api_webhook_github(struct ps_request *rq)
{
	const char *secret = rq->srv->cfg.webhook_secret;
	const char *sig = ps_http_header(rq, "X-Hub-Signature-256");
	const char *event = ps_http_header(rq, "X-GitHub-Event");
	const char *delivery = ps_http_header(rq, "X-GitHub-Delivery");
	char *form = NULL;
	const char *json_text = rq->body;
	size_t json_len = rq->body_len;
	json_t *payload;
	json_error_t err;

	if (!secret || !secret[0]) {
		ps_http_error(rq, MHD_HTTP_FORBIDDEN, "webhook_disabled",
			      "webhooks are disabled: set PROJSYNC_WEBHOOK_SECRET on the server");
		return;
	}
	if (!sig) {
		ps_http_error(rq, MHD_HTTP_UNAUTHORIZED, "signature_missing",
			      "X-Hub-Signature-256 is required");
		return;
	}
	if (!ps_webhook_signature_valid(secret, rq->body, rq->body_len, sig)) {
		ps_log_at("warn", "webhook: delivery %s has a bad signature", delivery ? delivery : "-");
		ps_http_error(rq, MHD_HTTP_UNAUTHORIZED, "bad_signature",
			      "X-Hub-Signature-256 does not match the body");
		return;
	}
	if (!event || !event[0]) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "event_missing", "X-GitHub-Event is required");
		return;
	}
	if (delivery && (!delivery[0] || strlen(delivery) > 100)) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_delivery", "invalid X-GitHub-Delivery");
		return;
	}
	ps_log("webhook: %s delivery %s", event, delivery ? delivery : "-");
	if (strcmp(event, "ping") == 0) {
		ps_http_json(rq, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
		return;
	}
	if (strcmp(event, "push") != 0) {
		ignored(rq, "event not handled");
		return;
	}
	if (rq->body_len > 8 && strncmp(rq->body, "payload=", 8) == 0) {
		form = form_payload(rq->body, rq->body_len, &json_len);
		json_text = form;
	}
	/* Nesting is bounded like every other body (GitHub payloads are shallow). */
	if (ps_http_json_depth(json_text, json_len) > PS_HTTP_MAX_JSON_DEPTH) {
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json", "payload nested too deep");
		free(form);
		return;
	}
	payload = json_loadb(json_text, json_len, 0, &err);
	free(form);
	if (!json_is_object(payload)) {
		json_decref(payload);
		ps_http_error(rq, MHD_HTTP_BAD_REQUEST, "bad_json", "the payload is not a JSON object");
		return;
	}
	handle_push(rq, payload, delivery);
	json_decref(payload);
}
