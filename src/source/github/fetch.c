/*
 * The fetch session: blobs as raw blob requests in parallel, or the head's tarball streamed
 * through libarchive, each file hashed as a git blob and handed over when wanted.
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

/* ---- blobs ---- */

static int64_t blob_cap(const struct gh_source *s)
{
	int64_t cap = s->max_blob_seen > BLOB_CAP_MIN ? s->max_blob_seen : 64 * BLOB_CAP_MIN;

	return cap > BLOB_CAP_MAX ? BLOB_CAP_MAX : cap;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes base64 with line breaks (GitHub's 60-column blobs) in place; -1 when malformed. */
static ssize_t b64_decode(char *s, size_t len)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;
		if (c == '\n' || c == '\r' || c == ' ')
			continue;
		if (c == '=')
			break;
		if ((v = b64_value(c)) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			s[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return (ssize_t)o;
}

struct blob_run {
	struct gh_source *s;
	struct fetch_session *fs;
	ps_blob_cb cb;
	void *ud;
	size_t *delivered;
};

static void mark_delivered(struct fetch_session *fs, size_t i)
{
	if (!fs->delivered[i]) {
		fs->delivered[i] = true;
		fs->ndone++;
	}
}

static int on_blob(void *ud, struct gh_req *r)
{
	struct blob_run *br = ud;
	const char *want = br->fs->want[r->index];
	char sha[PS_SHA_HEX];
	const char *data = r->body.data ? r->body.data : "";
	size_t len = r->body.len;
	int rc;

	if (r->status == 404 || r->status == 422)
		return ps_error_set(PS_ENOTFOUND, "blob_not_found",
				    "blob %s not found in github:%s/%s", want, br->s->owner,
				    br->s->repo);
	if (r->status != 200)
		return gh_unexpected(br->s, r);
	ps_git_blob_sha(data, len, sha);
	if (strcmp(sha, want) != 0 && strstr(r->content_type, "json")) {
		/* Not the raw media type after all: the JSON form with base64 content. */
		json_t *root = json_loadb(data, len, 0, NULL);
		const char *content = json_string_value(json_object_get(root, "content"));
		if (content) {
			size_t clen = strlen(content);
			char *copy = ps_strndup(content, clen);
			ssize_t dl = b64_decode(copy, clen);
			if (dl >= 0) {
				ps_git_blob_sha(copy, (size_t)dl, sha);
				if (strcmp(sha, want) == 0) {
					json_decref(root);
					rc = br->cb(br->ud, want, copy, (size_t)dl);
					free(copy);
					if (rc == 0) {
						mark_delivered(br->fs, r->index);
						(*br->delivered)++;
					}
					return rc;
				}
			}
			free(copy);
		}
		json_decref(root);
	}
	if (strcmp(sha, want) != 0)
		return ps_error_set(PS_EUPSTREAM, "blob_mismatch",
				    "blob %s from GitHub failed verification (content hashes to %s)",
				    want, sha);
	if ((rc = br->cb(br->ud, want, data, len)) != 0)
		return rc;
	mark_delivered(br->fs, r->index);
	(*br->delivered)++;
	/* The content is handed over: free it now rather than when the batch ends. */
	ps_buf_dispose(&r->body);
	ps_buf_init(&r->body, r->max_body);
	return 0;
}

/* Fetches up to `max` undelivered blobs of the session as raw blobs, in parallel. */
static int blobs_next(struct gh_source *s, struct fetch_session *fs, size_t max, ps_blob_cb cb,
		      void *ud, size_t *delivered)
{
	struct gh_req *reqs, **ptrs;
	struct blob_run br = { s, fs, cb, ud, delivered };
	size_t k = 0;
	int rc;

	reqs = ps_calloc(max + 1, sizeof(*reqs));
	ptrs = ps_calloc(max + 1, sizeof(*ptrs));
	for (; fs->blob_pos < fs->n && k < max; fs->blob_pos++) {
		if (fs->delivered[fs->blob_pos])
			continue;
		/* Asked raw, a blob may still come in its JSON form, a third larger and more. */
		gh_req_init(&reqs[k], s, gh_repo_path(s, "/git/blobs/%s", fs->want[fs->blob_pos]), MT_RAW,
			 (size_t)ps_github_blob_answer_max(blob_cap(s)));
		reqs[k].index = fs->blob_pos;
		ptrs[k] = &reqs[k];
		k++;
	}
	rc = k ? gh_run_requests(s, ptrs, k, (size_t)s->concurrency, on_blob, &br) : 0;
	for (size_t i = 0; i < k; i++)
		gh_req_dispose(&reqs[i]);
	free(reqs);
	free(ptrs);
	return rc;
}

/* ---- the tarball ---- */

static void tar_close(struct gh_source *s, struct fetch_session *fs)
{
	struct tar_stream *ts = fs->ts;

	if (!ts)
		return;
	if (ts->a)
		archive_read_free(ts->a);
	gh_req_dispose(&ts->req);
	ps_buf_dispose(&ts->pending);
	ps_buf_dispose(&ts->handed);
	free(ts);
	fs->ts = NULL;
}

/* Drives the transfer until bytes are buffered or it ended. */
static void tar_pump(struct gh_source *s, struct tar_stream *ts)
{
	while (ts->pending.len == 0 && !ts->transfer_done) {
		int running = 0, left;
		CURLMsg *m;

		if (s->base.stop && s->base.stop(s->base.stop_ud)) {
			ts->stopped = true;
			return;
		}
		if (ts->paused) {
			ts->paused = false;
			curl_easy_pause(ts->req.easy, CURLPAUSE_CONT);
			if (ts->pending.len)
				break;
		}
		curl_multi_perform(s->multi, &running);
		while ((m = curl_multi_info_read(s->multi, &left))) {
			if (m->msg == CURLMSG_DONE && m->easy_handle == ts->req.easy) {
				gh_req_finish(s, &ts->req, m->data.result);
				ts->transfer_done = true;
			}
		}
		if (ts->pending.len == 0 && !ts->transfer_done)
			curl_multi_poll(s->multi, NULL, 0, 100, NULL);
	}
}

static la_ssize_t tar_read(struct archive *a, void *ud, const void **buf)
{
	struct tar_stream *ts = ud;
	struct ps_buf tmp;

	tar_pump(ts->req.src, ts);
	if (ts->stopped) {
		archive_set_error(a, ECANCELED, "cancelled by request");
		return -1;
	}
	if (ts->pending.len == 0) {
		if (ts->req.cc == CURLE_OK && ts->req.status == 200)
			return 0;
		archive_set_error(a, EIO, "download of the tarball failed");
		return -1;
	}
	tmp = ts->handed;
	ts->handed = ts->pending;
	ts->pending = tmp;
	ts->pending.len = 0;
	*buf = ts->handed.data;
	return (la_ssize_t)ts->handed.len;
}

static int tar_open(struct gh_source *s, struct fetch_session *fs)
{
	struct tar_stream *ts = ps_calloc(1, sizeof(*ts));
	int rc;

	fs->ts = ts;
	gh_req_init(&ts->req, s, gh_repo_path(s, "/tarball/%s", fs->commit), MT_JSON, ERROR_BODY_MAX);
	ts->req.stream = ts;
	ts->req.attempts = fs->tar_attempts;
	ts->req.rate_waits = fs->tar_rate_waits;
	ps_buf_init(&ts->pending, STREAM_PAUSE + ((size_t)64 << 20));
	ps_buf_init(&ts->handed, STREAM_PAUSE + ((size_t)64 << 20));
	if ((rc = gh_req_start(s, &ts->req)) < 0)
		return rc;
	ts->a = archive_read_new();
	archive_read_support_filter_gzip(ts->a);
	archive_read_support_filter_none(ts->a);
	archive_read_support_format_tar(ts->a);
	if (archive_read_open(ts->a, ts, NULL, tar_read, NULL) != ARCHIVE_OK)
		return 1; /* the caller looks at the transfer */
	ts->opened = true;
	return 0;
}

/*
 * The tarball could not be read further: decides between another attempt (after a delay),
 * the blob requests instead, or failing.
 */
static int tar_failed(struct gh_source *s, struct fetch_session *fs)
{
	struct tar_stream *ts = fs->ts;
	char why[256];
	int64_t delay = 0;
	int act;

	if (ts->stopped) {
		tar_close(s, fs);
		return ps_error_set(PS_ECANCELLED, "cancelled", "cancelled by request");
	}
	snprintf(why, sizeof(why), "%s",
		 ts->a && archive_error_string(ts->a) ? archive_error_string(ts->a) : "unreadable");
	if (!ts->transfer_done) {
		/* libarchive gave up while bytes still flow: a corrupt archive. */
		curl_multi_remove_handle(s->multi, ts->req.easy);
		gh_req_finish(s, &ts->req, CURLE_RECV_ERROR);
		ts->req.cc = CURLE_PARTIAL_FILE;
	}
	act = gh_classify(s, &ts->req, &delay);
	if (act == ACT_DONE) {
		if (ts->req.status == 200) {
			/* Complete as far as HTTP is concerned, yet unreadable: truncated. */
			if (ts->req.attempts >= s->retries) {
				act = ps_error_set(PS_EUPSTREAM, "upstream_error",
						   "GitHub's tarball of %s is unreadable after %d "
						   "attempts: %s", fs->commit, ts->req.attempts + 1,
						   why);
			} else {
				delay = gh_retry_delay(s, ts->req.attempts);
				ts->req.attempts++;
				act = ACT_RETRY;
			}
		} else {
			/* No tarball for us (404, 403 without a rate limit...): ask blob by blob. */
			gh_warn(s, "GitHub answered %ld for the tarball of %s; fetching %zu blobs one "
			     "by one", ts->req.status, fs->commit, fs->n - fs->ndone);
			fs->tarball = false;
			tar_close(s, fs);
			return 0;
		}
	}
	fs->tar_attempts = ts->req.attempts;
	fs->tar_rate_waits = ts->req.rate_waits;
	tar_close(s, fs);
	if (act < 0)
		return act;
	return gh_wait_ms(s, delay);
}

static int want_index(const struct fetch_session *fs, const char *sha)
{
	size_t lo = 0, hi = fs->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(fs->want[mid], sha);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Reads tarball entries until `max` wanted blobs were handed over or the archive ends. */
static int tar_next(struct gh_source *s, struct fetch_session *fs, size_t max, ps_blob_cb cb,
		    void *ud, size_t *delivered)
{
	struct ps_buf content;
	int rc = 0;

	ps_buf_init(&content, (size_t)blob_cap(s));
	while (fs->tarball && *delivered < max && fs->ndone < fs->n) {
		struct archive_entry *e;
		int ar;

		if (!fs->ts) {
			if ((rc = tar_open(s, fs)) < 0)
				break;
			if (rc == 1) {
				rc = tar_failed(s, fs);
				if (rc < 0)
					break;
				continue;
			}
		}
		ar = archive_read_next_header(fs->ts->a, &e);
		if (ar == ARCHIVE_EOF) {
			tar_close(s, fs);
			fs->tarball = false;
			if (fs->ndone < fs->n)
				gh_warn(s, "%zu blob(s) were not in GitHub's tarball as stored "
				     "(export-ignore, export-subst or LFS); fetching them one by one",
				     fs->n - fs->ndone);
			break;
		}
		if (ar < ARCHIVE_WARN) {
			if ((rc = tar_failed(s, fs)) < 0)
				break;
			continue;
		}
		char sha[PS_SHA_HEX];
		int idx;
		if (archive_entry_filetype(e) == AE_IFLNK) {
			const char *target = archive_entry_symlink(e);
			if (!target)
				continue;
			ps_git_blob_sha(target, strlen(target), sha);
			if ((idx = want_index(fs, sha)) < 0 || fs->delivered[idx])
				continue;
			if ((rc = cb(ud, fs->want[idx], target, strlen(target))) != 0)
				break;
		} else if (archive_entry_filetype(e) == AE_IFREG) {
			la_int64_t size = archive_entry_size(e);
			bool failed = false;
			if (size < 0 || size > blob_cap(s))
				continue; /* not one we can want: skipped as the next header is read */
			content.len = 0;
			for (;;) {
				char chunk[65536];
				la_ssize_t got = archive_read_data(fs->ts->a, chunk, sizeof(chunk));
				if (got == 0)
					break;
				if (got < 0 || ps_buf_append(&content, chunk, (size_t)got) < 0) {
					failed = true;
					break;
				}
			}
			if (failed) {
				ps_error_clear();
				if ((rc = tar_failed(s, fs)) < 0)
					break;
				continue;
			}
			ps_git_blob_sha(content.data ? content.data : "", content.len, sha);
			if ((idx = want_index(fs, sha)) < 0 || fs->delivered[idx])
				continue;
			if ((rc = cb(ud, fs->want[idx], content.data ? content.data : "",
				     content.len)) != 0)
				break;
		} else {
			continue;
		}
		mark_delivered(fs, (size_t)idx);
		(*delivered)++;
	}
	ps_buf_dispose(&content);
	return rc;
}

/* ---- the tarball as a listing (first syncs of trees GitHub truncates) ---- */

void gh_spool_free(struct gh_source *s)
{
	if (!s->spool)
		return;
	if (s->spool->f)
		fclose(s->spool->f);
	free(s->spool->v);
	free(s->spool);
	s->spool = NULL;
}

static int cmp_spool(const void *a, const void *b)
{
	return strcmp(((const struct spool_entry *)a)->sha, ((const struct spool_entry *)b)->sha);
}

static int spool_put(struct tar_spool *sp, const char *sha, const void *data, size_t len)
{
	if (len && fwrite(data, 1, len, sp->f) != len)
		return ps_error_set(PS_EIO, NULL, "cannot spool the tarball: %s", strerror(errno));
	if (sp->n == sp->cap) {
		sp->cap = sp->cap ? 2 * sp->cap : 1024;
		sp->v = ps_realloc(sp->v, sp->cap * sizeof(*sp->v));
	}
	memcpy(sp->v[sp->n].sha, sha, PS_SHA_HEX);
	sp->v[sp->n].off = sp->end;
	sp->v[sp->n].len = len;
	sp->n++;
	sp->end += (int64_t)len;
	return 0;
}

struct listing {
	struct ps_file *v;
	size_t n, cap;
};

static void listing_dispose(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The path below the archive's top folder (OWNER-REPO-SHORTSHA/), or NULL for the folder. */
static const char *below_top(const char *name)
{
	const char *slash = name ? strchr(name, '/') : NULL;

	return slash && slash[1] ? slash + 1 : NULL;
}

static int cmp_listing_path(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

int gh_tar_listing(struct gh_source *s, const char *commit, struct ps_file **out, size_t *nout)
{
	struct fetch_session fs = {0};
	struct listing l = {0};
	struct ps_buf content;
	bool complete = false;
	int rc = 0;

	gh_spool_free(s);
	memcpy(fs.commit, commit, PS_SHA_HEX);
	fs.tarball = true;
	ps_buf_init(&content, (size_t)blob_cap(s));
	while (fs.tarball) {
		struct archive_entry *e;
		int ar;

		if (!fs.ts) {
			/* A fresh start (also after a failed attempt): nothing half-read is kept. */
			listing_dispose(&l);
			gh_spool_free(s);
			s->spool = ps_calloc(1, sizeof(*s->spool));
			if (!(s->spool->f = tmpfile())) {
				rc = ps_error_set(PS_EIO, NULL, "cannot create a temporary file: %s",
						  strerror(errno));
				break;
			}
			if ((rc = tar_open(s, &fs)) < 0)
				break;
			if (rc == 1 && (rc = tar_failed(s, &fs)) < 0)
				break;
			if (!fs.ts)
				continue;
		}
		ar = archive_read_next_header(fs.ts->a, &e);
		if (ar == ARCHIVE_EOF) {
			tar_close(s, &fs);
			complete = true;
			break;
		}
		if (ar < ARCHIVE_WARN) {
			if ((rc = tar_failed(s, &fs)) < 0)
				break;
			continue;
		}
		const char *path = below_top(archive_entry_pathname(e));
		struct ps_file f = {0};
		if (!path)
			continue;
		if (archive_entry_filetype(e) == AE_IFLNK) {
			const char *target = archive_entry_symlink(e);
			if (!target)
				continue;
			f.mode = PS_MODE_LINK;
			f.size = (int64_t)strlen(target);
			ps_git_blob_sha(target, strlen(target), f.sha);
			if ((rc = spool_put(s->spool, f.sha, target, strlen(target))) < 0)
				break;
		} else if (archive_entry_filetype(e) == AE_IFREG) {
			la_int64_t size = archive_entry_size(e);
			bool failed = false;
			if (size < 0 || size > blob_cap(s))
				continue; /* left out: the check against the head's tree finds it */
			content.len = 0;
			for (;;) {
				char chunk[65536];
				la_ssize_t got = archive_read_data(fs.ts->a, chunk, sizeof(chunk));
				if (got == 0)
					break;
				if (got < 0 || ps_buf_append(&content, chunk, (size_t)got) < 0) {
					failed = true;
					break;
				}
			}
			if (failed) {
				ps_error_clear();
				if ((rc = tar_failed(s, &fs)) < 0)
					break;
				continue;
			}
			f.mode = (archive_entry_perm(e) & 0111) ? PS_MODE_EXEC : PS_MODE_FILE;
			f.size = (int64_t)content.len;
			ps_git_blob_sha(content.data ? content.data : "", content.len, f.sha);
			if ((rc = spool_put(s->spool, f.sha, content.data ? content.data : "",
					    content.len)) < 0)
				break;
		} else {
			continue; /* directories; submodules come from the head's trees */
		}
		if (l.n == l.cap) {
			l.cap = l.cap ? 2 * l.cap : 1024;
			l.v = ps_realloc(l.v, l.cap * sizeof(*l.v));
		}
		f.path = ps_strdup(path);
		l.v[l.n++] = f;
	}
	ps_buf_dispose(&content);
	tar_close(s, &fs);
	if (rc == 0 && !s->spool)
		rc = ps_error_set(PS_ENOTSUPP, NULL, "no tarball");
	if (rc == 0 && fflush(s->spool->f) != 0)
		rc = ps_error_set(PS_EIO, NULL, "cannot spool the tarball: %s", strerror(errno));
	if (rc == 0 && !complete) /* tar_failed gave up on it: GitHub has no tarball for us */
		rc = ps_error_set(PS_ENOTSUPP, NULL, "no tarball");
	if (rc < 0) {
		listing_dispose(&l);
		gh_spool_free(s);
		return rc;
	}
	if (s->spool->n > 1)
		qsort(s->spool->v, s->spool->n, sizeof(*s->spool->v), cmp_spool);
	memcpy(s->spool->commit, commit, PS_SHA_HEX);
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_listing_path);
	*out = l.v;
	*nout = l.n;
	return 0;
}

/* Hands over up to `max` wanted blobs from the spool. */
static int spool_next(struct gh_source *s, struct fetch_session *fs, size_t max, ps_blob_cb cb,
		      void *ud, size_t *delivered)
{
	struct tar_spool *sp = s->spool;
	int rc = 0;

	for (; fs->blob_pos < fs->n && *delivered < max; fs->blob_pos++) {
		struct spool_entry key, *hit;
		char *data;

		if (fs->delivered[fs->blob_pos])
			continue;
		memcpy(key.sha, fs->want[fs->blob_pos], PS_SHA_HEX);
		if (!(hit = bsearch(&key, sp->v, sp->n, sizeof(*sp->v), cmp_spool)))
			continue;
		data = ps_malloc(hit->len + 1);
		if (fseeko(sp->f, (off_t)hit->off, SEEK_SET) != 0 ||
		    (hit->len && fread(data, 1, hit->len, sp->f) != hit->len)) {
			free(data);
			return ps_error_set(PS_EIO, NULL, "cannot read the spooled tarball");
		}
		rc = cb(ud, hit->sha, data, hit->len);
		free(data);
		if (rc != 0)
			return rc;
		mark_delivered(fs, fs->blob_pos);
		(*delivered)++;
	}
	if (fs->blob_pos >= fs->n) {
		/* What the archive left out or rewrote: blob requests from the start. */
		fs->spooled = false;
		fs->blob_pos = 0;
	}
	return rc;
}

/* ---- the fetch session ---- */

void gh_fetch_end(struct ps_source *src)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *fs = s->fs;

	if (!fs)
		return;
	tar_close(s, fs);
	free(fs->want);
	free(fs->delivered);
	free(fs);
	s->fs = NULL;
}

static int cmp_sha(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/*
 * Whether `n` blobs of a re-sync told by the compare are fetched one by one rather than from
 * the tarball: the compare caps them below 300, and the tarball costs the whole repository's
 * bytes. Unless the requests left in the rate limit would not suffice: then the tarball's
 * two requests.
 */
static bool few_blobs(const struct gh_source *s, size_t n)
{
	int64_t remaining, reset;

	if (!s->from_compare)
		return false;
	ps_github_rate_limit_last(&remaining, &reset);
	return remaining < 0 || (int64_t)n < remaining;
}

int gh_fetch_begin(struct ps_source *src, const struct ps_head *head,
			  const char *const *shas, size_t n)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *fs;
	size_t w = 0;

	gh_fetch_end(src);
	fs = ps_calloc(1, sizeof(*fs));
	fs->want = ps_calloc(n + 1, sizeof(*fs->want));
	for (size_t i = 0; i < n; i++) {
		if (!ps_sha_valid(shas[i]) || strlen(shas[i]) != 40) {
			free(fs->want);
			free(fs);
			return ps_error_set(PS_EINVAL, NULL, "bad blob id '%s'", shas[i]);
		}
		memcpy(fs->want[i], shas[i], PS_SHA_HEX);
	}
	if (n > 1)
		qsort(fs->want, n, sizeof(*fs->want), cmp_sha);
	for (size_t i = 0; i < n; i++)
		if (w == 0 || strcmp(fs->want[w - 1], fs->want[i]) != 0)
			memmove(fs->want[w++], fs->want[i], PS_SHA_HEX);
	fs->n = w;
	fs->delivered = ps_calloc(w + 1, sizeof(bool));
	if (head && ps_sha_valid(head->commit) && strlen(head->commit) == 40) {
		memcpy(fs->commit, head->commit, PS_SHA_HEX);
		fs->tarball = w >= s->tarball_min && !few_blobs(s, w);
		if (s->spool && strcmp(s->spool->commit, head->commit) == 0) {
			fs->spooled = true;
			fs->tarball = false;
		}
	}
	s->fs = fs;
	return 0;
}

int gh_fetch_next(struct ps_source *src, size_t max, ps_blob_cb cb, void *ud, bool *done)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *fs = s->fs;
	size_t delivered = 0;
	int rc = 0;

	if (!fs)
		return ps_error_set(PS_EINVAL, NULL, "no fetch session");
	if (max == 0)
		max = 1;
	if (fs->spooled)
		rc = spool_next(s, fs, max, cb, ud, &delivered);
	if (rc == 0 && fs->tarball)
		rc = tar_next(s, fs, max, cb, ud, &delivered);
	if (rc == 0 && !fs->tarball && !fs->spooled && delivered < max && fs->ndone < fs->n)
		rc = blobs_next(s, fs, max - delivered, cb, ud, &delivered);
	if (rc == 0 && !fs->tarball && !fs->spooled && fs->blob_pos >= fs->n && fs->ndone < fs->n)
		return ps_error_set(PS_EUPSTREAM, "blobs_missing",
				    "GitHub did not deliver %zu blob(s)", fs->n - fs->ndone);
	*done = fs->ndone >= fs->n;
	return rc;
}

int gh_fetch_blobs(struct ps_source *src, const char *const *shas, size_t n, ps_blob_cb cb,
			  void *ud)
{
	struct gh_source *s = (struct gh_source *)src;
	struct fetch_session *saved = s->fs, *fs;
	size_t delivered = 0;
	int rc;

	/* A session of its own, by blob requests, leaving a running session alone. */
	s->fs = NULL;
	if ((rc = gh_fetch_begin(src, NULL, shas, n)) == 0) {
		fs = s->fs;
		while (rc == 0 && fs->ndone < fs->n && fs->blob_pos < fs->n)
			rc = blobs_next(s, fs, 64, cb, ud, &delivered);
		if (rc == 0 && fs->ndone < fs->n)
			rc = ps_error_set(PS_EUPSTREAM, "blobs_missing",
					  "GitHub did not deliver %zu blob(s)", fs->n - fs->ndone);
		gh_fetch_end(src);
	}
	s->fs = saved;
	return rc;
}

/* ---- life ---- */
