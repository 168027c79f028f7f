/*
 * Memory entries: the project's knowledge base (docs/architecture.md §7). The entry type, its
 * limits and the search text the store needs are below the store (model/memory.h); this module
 * is the importing side, still with no I/O: how a markdown file becomes an entry (front matter,
 * title, tags), which paths the project's memory globs select, and the JSON shape (§6).
 *
 * The store keeps the entries and their versions (store.h, "memory entries"); the sync pipeline
 * stages entries for changed files that match the globs; the CLI and the HTTP API call the
 * store functions and print with ps_memory_entry_to_json.
 */
#ifndef PS_CORE_MEMORY_H
#define PS_CORE_MEMORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/memory.h"
#include "model/model.h"

/*
 * A markdown file as a memory entry: reads a leading YAML front matter block (`---` ... `---`
 * or `...`) for `title:` and `tags:` (`[a, b]`, a `- item` list, or `a, b`), else takes the
 * title from the first `# ` heading outside code fences, else the file name (last path
 * component). `content` is the text after the front matter, cut at the first NUL byte.
 * Tolerant by design: a block that is unterminated, too big or malformed is not front matter
 * and the whole text is the content; this never fails. Fills title, tags and content of `out`
 * (other fields untouched); dispose with ps_memory_entry_dispose.
 */
void ps_memory_parse(struct ps_memory_entry *out, const char *path, const char *text, size_t len);

/*
 * Whether `path` matches `glob`: `*` and `?` within one path component, `[abc]`/`[a-z]`/`[!x]`
 * classes, `\` escapes, and `**` as a whole component for zero or more components (so the
 * default glob PS_DEFAULT_MEMORY_GLOB matches both `.memory/a.md` and `.memory/x/y/a.md`).
 * A leading `/` in the glob is ignored. Backtracking only to the last star, per level: no
 * exponential blow-up on hostile paths.
 */
bool ps_memory_glob_match(const char *glob, const char *path);
/* True when any of the globs matches. */
bool ps_memory_globs_match(const struct ps_strv *globs, const char *path);

/*
 * The JSON shape of docs/architecture.md §6: {"id", "project", "source", "source_ref", "title", "tags",
 * "content", "status", "introduced_by_sync", "superseded_by_sync", "restored_from",
 * "created_at"} plus "origin", "sha", "superseded_by_entry", "superseded_at", and on search results
 * "snippet" and "rank", and "deleted" (ps_memory_deleted). New reference owned by the caller.
 */
json_t *ps_memory_entry_to_json(const struct ps_memory_entry *e);

#endif
