/*
 * The JSON shapes of docs/architecture.md §6. One place builds them, so `--json` output and the
 * HTTP API stay identical. Times are RFC 3339 UTC; absent values are JSON null.
 */
#include "model/json.h"
#include "model/schedule.h"
#include "util/util.h"

#include <stdlib.h>
#include <string.h>

/* Git paths are bytes; JSON strings must be UTF-8. Valid input passes through unchanged;
 * each invalid byte becomes U+FFFD, so output is always valid JSON. */
json_t *ps_json_string(const char *s)
{
	return s ? ps_json_stringn(s, strlen(s)) : json_null();
}

json_t *ps_json_stringn(const char *s, size_t len)
{
	json_t *j;
	size_t i = 0;
	struct ps_buf b;

	j = json_stringn(s, len);
	if (j)
		return j;
	ps_buf_init(&b, len * 3 + 16);
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		json_t *probe = need && i + need <= len ? json_stringn(s + i, need) : NULL;
		if (probe) {
			ps_buf_append(&b, s + i, need);
			json_decref(probe);
			i += need;
		} else {
			ps_buf_append(&b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	j = json_stringn(b.data ? b.data : "", b.len);
	ps_buf_dispose(&b);
	return j;
}

json_t *ps_json_time(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return json_null();
	ps_time_rfc3339(ms, buf, sizeof(buf));
	return json_string(buf);
}

json_t *ps_json_id(int64_t id)
{
	return id > 0 ? json_integer(id) : json_null();
}

json_t *ps_project_to_json(const struct ps_project *p)
{
	json_t *globs = json_array();
	/* Credentials in a source URL are for fetching: the API shows a project to read-only
	 * tokens too, and the CLI's JSON goes into logs and scripts. */
	char *source = p->source ? ps_redact_userinfo(p->source) : NULL;

	for (size_t i = 0; i < p->memory_globs.n; i++)
		json_array_append_new(globs, ps_json_string(p->memory_globs.v[i]));
	json_t *j = json_pack("{s:I, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:I, s:o, s:b}",
			 "id", (json_int_t)p->id,
			 "name", ps_json_string(p->name),
			 "source", ps_json_string(source),
			 "branch", ps_json_string(p->branch),
			 "max_blob_size", (json_int_t)p->max_blob_size,
			 "memory_globs", globs,
			 "last_sync_id", ps_json_id(p->last_sync_id),
			 "last_commit", ps_json_string(p->last_commit),
			 "last_error", p->last_error_code
				 ? json_pack("{s:o, s:o}", "code", ps_json_string(p->last_error_code),
					     "message", ps_json_string(p->last_error_message))
				 : json_null(),
			 "failures_in_row", (json_int_t)p->failures_in_row,
			 "created_at", ps_json_time(p->created_at),
			 "code_index", !p->no_code_index);
	char every[32];

	ps_schedule_every_string(p, every, sizeof(every));
	free(source);
	json_object_set_new(j, "every", json_string(every));
	json_object_set_new(j, "interval_seconds", ps_schedule_on(p) && p->interval_ms > 0
				    ? json_integer(p->interval_ms / 1000) : json_null());
	json_object_set_new(j, "auto_min_seconds", json_integer(p->auto_min_ms / 1000));
	json_object_set_new(j, "auto_max_seconds", json_integer(p->auto_max_ms / 1000));
	json_object_set_new(j, "next_sync_at", ps_schedule_on(p) && !p->paused && p->next_sync_at
				    ? ps_json_time(p->next_sync_at) : json_null());
	json_object_set_new(j, "last_check_at", p->last_check_at ? ps_json_time(p->last_check_at)
								   : json_null());
	json_object_set_new(j, "max_failures", p->max_failures > 0
				    ? json_integer(p->max_failures) : json_null());
	json_object_set_new(j, "state", json_string(p->paused ? "paused" : "active"));
	json_object_set_new(j, "paused_at", p->paused ? ps_json_time(p->paused_at) : json_null());
	json_object_set_new(j, "paused_reason", p->paused ? ps_json_string(p->paused_reason)
							  : json_null());
	json_object_set_new(j, "keep_syncs", p->keep_syncs > 0 ? json_integer(p->keep_syncs)
							       : json_null());
	json_object_set_new(j, "keep_days", p->keep_days > 0 ? json_integer(p->keep_days)
							     : json_null());
	return j;
}

json_t *ps_sync_to_json(const struct ps_sync *s)
{
	json_t *counts = json_pack("{s:I, s:I, s:I, s:I, s:I}",
				   "added", (json_int_t)s->counts.added,
				   "modified", (json_int_t)s->counts.modified,
				   "deleted", (json_int_t)s->counts.deleted,
				   "renamed", (json_int_t)s->counts.renamed,
				   "files", (json_int_t)s->counts.files);
	json_t *error = s->error_code
		? json_pack("{s:o, s:o}", "code", ps_json_string(s->error_code),
			    "message", ps_json_string(s->error_message))
		: json_null();
	json_t *j = json_pack("{s:I, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o}",
			      "id", (json_int_t)s->id,
			      "project", ps_json_string(s->project),
			      /* "" in the model: following the default branch, not resolved yet
			       * (a queued sync, or an empty repository) */
			      "branch", s->branch && s->branch[0] ? ps_json_string(s->branch)
								  : json_null(),
			      "status", ps_sync_status_name(s->status),
			      "phase", ps_phase_name(s->phase),
			      "commit", ps_json_string(s->commit),
			      "previous_sync_id", ps_json_id(s->previous_sync_id),
			      "trigger", ps_json_string(s->trigger),
			      "counts", counts,
			      "error", error);

	json_object_set_new(j, "up_to_date", json_boolean(s->up_to_date));
	/* Beside up_to_date (what the sync found), so that a reader of "added": N knows those
	 * counts are the whole snapshot a prune rebased onto it, as the CLI's note says. */
	json_object_set_new(j, "first_kept", json_boolean(ps_sync_first_kept(s)));
	json_object_set_new(j, "base_sync_id", ps_json_id(s->base_sync_id));
	json_object_set_new(j, "bytes", json_integer(s->bytes));
	json_object_set_new(j, "requests", json_integer(s->requests));
	json_object_set_new(j, "skipped_large", json_integer(s->skipped_large));
	json_object_set_new(j, "created_at", ps_json_time(s->created_at));
	json_object_set_new(j, "started_at", ps_json_time(s->started_at));
	json_object_set_new(j, "finished_at", ps_json_time(s->finished_at));
	json_object_set_new(j, "checks", json_integer(s->checks > 1 ? s->checks : 1));
	json_object_set_new(j, "first_checked_at",
			    ps_json_time(s->first_check_at ? s->first_check_at : s->finished_at));
	json_object_set_new(j, "head_commit", s->head_commit && s->commit
				    ? ps_commit_to_json(s->head_commit, false) : json_null());
	json_object_set_new(j, "commit_count", s->status == PS_SYNC_SUCCEEDED &&
				    s->commit_count >= 0 ? json_integer(s->commit_count)
							 : json_null());
	json_object_set_new(j, "commits_truncated", json_boolean(s->commits_truncated));
	return j;
}

static json_t *signature_to_json(const struct ps_signature *g)
{
	return json_pack("{s:o, s:o, s:o}", "name", ps_json_string(g->name ? g->name : ""),
			 "email", ps_json_string(g->email ? g->email : ""),
			 "date", ps_json_time(g->date));
}

json_t *ps_commit_to_json(const struct ps_commit *c, bool full)
{
	json_t *j = json_pack("{s:s, s:o, s:o, s:o}", "sha", c->sha,
			      "subject", ps_json_string(c->subject ? c->subject : ""),
			      "author", signature_to_json(&c->author),
			      "committer", signature_to_json(&c->committer));

	if (full) {
		json_t *parents = json_array();
		const char *p = c->parents ? c->parents : "";

		while (*p) {
			size_t n = strcspn(p, " ");
			if (n)
				json_array_append_new(parents, json_stringn(p, n));
			p += n;
			p += strspn(p, " ");
		}
		json_object_set_new(j, "parents", parents);
		json_object_set_new(j, "message", ps_json_string(c->message ? c->message : ""));
	}
	return j;
}

json_t *ps_sync_to_json_or_null(const struct ps_sync *s)
{
	return s ? ps_sync_to_json(s) : json_null();
}

/* Sets `key` to `path`'s bytes percent-encoded when `path` is not UTF-8: the U+FFFD that
 * ps_json_string shows instead of each invalid byte names no file, and the API's ?path= takes
 * this value as it is. */
void ps_json_set_raw(json_t *j, const char *key, const char *path)
{
	json_t *probe;
	char *raw;

	if (!path)
		return;
	probe = json_string(path);
	if (probe) {
		json_decref(probe);
		return;
	}
	raw = ps_percent_encode(path, "/");
	json_object_set_new(j, key, json_string(raw));
	free(raw);
}

json_t *ps_file_to_json(const struct ps_file *f)
{
	char mode[8];
	json_t *j;

	ps_mode_string(f->mode, mode);
	j = json_pack("{s:o, s:s, s:s, s:s, s:o}",
		      "path", ps_json_string(f->path),
		      "mode", mode,
		      "type", ps_mode_type(f->mode),
		      "sha", f->sha,
		      "size", f->size >= 0 ? json_integer(f->size) : json_null());
	/* `path` shows a name that is not UTF-8 with U+FFFD, which names no file: `path_raw` has
	 * its exact bytes, percent-encoded (the API's ?path= takes it as is). Here, not in the
	 * API alone, so that `files --json` gives a script the same way to the file. */
	ps_json_set_raw(j, "path_raw", f->path);
	return j;
}

static json_t *mode_or_null(uint32_t mode)
{
	char buf[8];

	if (!mode)
		return json_null();
	ps_mode_string(mode, buf);
	return json_string(buf);
}

static json_t *sha_or_null(const char *sha)
{
	return sha[0] ? json_string(sha) : json_null();
}

json_t *ps_change_to_json(const struct ps_change *c)
{
	json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "status", ps_change_status_name(c->status),
			 "path", ps_json_string(c->path),
			 "previous_path", ps_json_string(c->status == PS_CHANGE_RENAMED
							 ? c->previous_path : NULL),
			 "sha", sha_or_null(c->sha),
			 "previous_sha", sha_or_null(c->previous_sha),
			 "mode", mode_or_null(c->mode),
			 "previous_mode", mode_or_null(c->previous_mode));

	/* As for files: the page asks for a change's diff with the path's exact bytes. */
	ps_json_set_raw(j, "path_raw", c->path);
	if (c->status == PS_CHANGE_RENAMED)
		ps_json_set_raw(j, "previous_path_raw", c->previous_path);
	return j;
}

json_t *ps_event_to_json(const struct ps_event *e)
{
	json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:i, s:i, s:f, s:I, s:I, s:I, s:I, s:I}",
			      "sync_id", (json_int_t)e->sync_id,
			      "seq", (json_int_t)e->seq,
			      "kind", ps_event_kind_name(e->kind),
			      "phase", ps_phase_name(e->phase),
			      "phase_index", (int)e->phase,
			      "phase_count", PS_PHASE_COUNT,
			      "fraction", e->fraction,
			      "files_done", (json_int_t)e->files_done,
			      "files_total", (json_int_t)e->files_total,
			      "bytes", (json_int_t)e->bytes,
			      "requests", (json_int_t)e->requests,
			      "elapsed_ms", (json_int_t)e->elapsed_ms);

	if (e->message)
		json_object_set_new(j, "message", ps_json_string(e->message));
	if (e->summary)
		json_object_set_new(j, "summary", ps_sync_to_json(e->summary));
	return j;
}
