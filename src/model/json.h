/*
 * The JSON shapes of docs/architecture.md §6, shared by `--json` output and the HTTP API so the
 * two cannot drift. Each function returns a new reference (jansson) owned by the caller.
 * Strings that are not valid UTF-8 (git paths are bytes) are emitted with each invalid byte
 * replaced by U+FFFD.
 */
#ifndef PS_MODEL_JSON_H
#define PS_MODEL_JSON_H

#include <jansson.h>

#include "model/model.h"

json_t *ps_json_string(const char *s);
/* The same for `len` bytes that may hold NUL (kept, as \u0000). */
json_t *ps_json_stringn(const char *s, size_t len);
/* An id, or null for 0 (absent). */
json_t *ps_json_id(int64_t id);
/* RFC 3339 UTC time of ms since the epoch, or null for 0. */
json_t *ps_json_time(int64_t ms);
json_t *ps_project_to_json(const struct ps_project *p);
json_t *ps_sync_to_json(const struct ps_sync *s);
json_t *ps_file_to_json(const struct ps_file *f);
/* Sets `key` to `path`'s exact bytes, percent-encoded, only when `path` is not valid UTF-8
 * (files, changes and code search results all name such a path the same way). */
void ps_json_set_raw(json_t *j, const char *key, const char *path);
json_t *ps_change_to_json(const struct ps_change *c);
json_t *ps_event_to_json(const struct ps_event *e);
json_t *ps_sync_to_json_or_null(const struct ps_sync *s);
/* A commit: {"sha", "subject", "author": {"name", "email", "date"}, "committer": {...}}, with
 * `full` also "parents" (ids) and "message" (as `projsync log --json` lists them). */
json_t *ps_commit_to_json(const struct ps_commit *c, bool full);

#endif
