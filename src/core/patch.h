/*
 * Content diffs between two succeeded syncs: what `git diff A B` prints, from the store's blobs.
 *
 * The line diff is libgit2's (git's xdiff: Myers with the indent heuristic, 3 lines of context,
 * the same hunk headers), run on the stored contents. This module decides everything around it
 * the way git does: which entries are compared (a type change is a deletion and an addition),
 * binary detection (a NUL in the first 8000 bytes), the submodule text ("Subproject commit X"),
 * headers with modes and abbreviated blob ids, path quoting, and `--stat`.
 *
 * Renames are the exact renames the store pairs (model/diff.h), printed as git prints them with
 * `-M100%`. Content that the store does not hold (over the project's size limit) and content or
 * diffs over the limits below get a note line instead of hunks, so one huge file cannot take
 * the time or memory of the whole diff.
 */
#ifndef PS_CORE_PATCH_H
#define PS_CORE_PATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "model/model.h"
#include "util/util.h"

struct ps_store;

#define PS_PATCH_MAX_FILE_BYTES (16 * 1024 * 1024) /* per side: larger content is not diffed */
#define PS_PATCH_MAX_FILE_LINES 100000             /* diff lines of one file */
#define PS_PATCH_ABBREV 7                          /* blob id digits in `index` lines */

/* One line of a hunk. `text` (borrowed from the file) holds the line without its '\n';
 * `no_newline` marks the last line of a side that has no newline at its end. Line numbers
 * are 1-based, 0 where the line does not exist on that side. */
struct ps_patch_line {
	char origin;          /* ' ', '+' or '-' */
	bool no_newline;
	int64_t old_lineno, new_lineno;
	size_t off, len;      /* into ps_patch_file.text */
};

struct ps_patch_hunk {
	int64_t old_start, old_lines, new_start, new_lines;
	char *header;         /* "@@ -1,3 +1,4 @@ context", without '\n' */
	size_t first, n;      /* lines[first .. first+n) */
};

/* Why a file has no hunks although its content changed. */
enum ps_patch_skip {
	PS_PATCH_SHOWN = 0,
	PS_PATCH_NOT_STORED,  /* a side's content is not in the store (over the size limit) */
	PS_PATCH_TOO_LARGE,   /* content or diff over PS_PATCH_MAX_FILE_* */
	PS_PATCH_OMITTED,     /* the caller's output limit was reached before this file */
	PS_PATCH_MISSING,     /* a side's blob was lost from the store (blob_missing: within the
	                         size limit of the latest snapshot, ps_project_blob_bound) */
};

/*
 * One `diff --git` entry. A type change (file <-> symlink <-> submodule) yields two entries,
 * like git: the old entry deleted, then the new one added (status stays TYPE_CHANGED). Absent
 * sides have mode 0 and an empty sha. Everything is borrowed by the callback.
 */
struct ps_patch_file {
	enum ps_change_status status;
	const char *path;          /* the new path (the old one for deletions) */
	const char *old_path;      /* the old path (== path unless renamed) */
	uint32_t old_mode, new_mode;
	const char *old_sha, *new_sha;
	int64_t old_size, new_size; /* content bytes, -1 when unknown */
	bool binary;
	enum ps_patch_skip skip;
	/* With PS_PATCH_NOT_STORED: a side within today's size limit lacks its content, so it
	 * was over the limit when its snapshot was synced or its blob was lost since (no row
	 * says which; the note says both, as cat's not_fetched does). */
	bool maybe_lost;
	const char *note;          /* the note line printed instead of hunks, or NULL */
	struct ps_patch_hunk *hunks;
	size_t nhunks;
	struct ps_patch_line *lines;
	size_t nlines;
	const char *text;          /* line texts */
	int64_t added, deleted;    /* lines (0 for binary or skipped content) */
};

struct ps_patch_opts {
	const char *const *paths;  /* git-like pathspecs (a path or a directory); NULL/0 = all */
	size_t npaths;
	bool stat_only;            /* count lines, keep no hunks, do not split type changes */
	size_t max_file_bytes;     /* 0 = PS_PATCH_MAX_FILE_BYTES */
	size_t max_file_lines;     /* 0 = PS_PATCH_MAX_FILE_LINES */
	bool full_index;           /* whole blob ids in `index` lines, as git's --full-index */
};

/* Called once per entry, in path order; a non-zero return stops the walk and is returned.
 * The callback may set `*omit_rest` to have the remaining entries reported with
 * skip = PS_PATCH_OMITTED and no content read (an output limit). */
typedef int (*ps_patch_cb)(void *ud, const struct ps_patch_file *f, bool *omit_rest);

/*
 * Walks the diff from succeeded sync `sync_a` (0 = nothing: everything added) to `sync_b` of
 * one project, reading contents from the store one file at a time. Memory follows the largest
 * file (bounded by the limits), not the size of the diff. Returns 0, a store error, or the
 * callback's value.
 */
int ps_patch_each(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b,
		  const struct ps_patch_opts *opts, ps_patch_cb cb, void *ud);

/* Appends the entry as `git diff` prints it (headers, hunks or note); `full_index` prints
 * whole blob ids instead of PS_PATCH_ABBREV digits. */
int ps_patch_format(const struct ps_patch_file *f, bool full_index, struct ps_buf *out);

/* The entry as JSON (docs/api.md, the diff endpoint). Text that is not UTF-8 gets U+FFFD per
 * invalid byte, like every string of the API. */
json_t *ps_patch_file_to_json(const struct ps_patch_file *f);

/* `git diff --stat`: collect entries (walked with stat_only), then format. */
struct ps_patch_stat;
struct ps_patch_stat *ps_patch_stat_new(void);
void ps_patch_stat_add(struct ps_patch_stat *st, const struct ps_patch_file *f);
/* Appends the stat lines and the summary line for a total width of `width` columns (git
 * uses the terminal's, 80 when output is not a terminal). Nothing when no file changed. */
int ps_patch_stat_format(const struct ps_patch_stat *st, int width, struct ps_buf *out);
void ps_patch_stat_free(struct ps_patch_stat *st);

/* True when change `c` (its path, or a rename's old path) is under one of `paths` (git-like
 * pathspecs: a file or a directory, "." for all); always true for n == 0. */
bool ps_patch_change_matches(const struct ps_change *c, const char *const *paths, size_t n);

/* NULL when `path` can be a pathspec for ps_patch_change_matches, else why not, to follow
 * "invalid path '...': ". Like git, an empty path is refused (it read as "everything"), and so
 * is one with a leading '/' (it read as nothing: stored paths never start with one). */
const char *ps_patch_path_problem(const char *path);

enum {
	PS_PATCH_WANT_PATCH = 1 << 0,
	PS_PATCH_WANT_STAT = 1 << 1,
};
/* Receives output; a non-zero return stops the walk and is returned. */
typedef int (*ps_patch_write_fn)(void *ud, const char *data, size_t len);

/*
 * The whole diff as `git diff [--stat] [--patch]` prints it, handed to `write` piece by piece
 * (one file at a time, so a CLI streams it). `what` is a mask of PS_PATCH_WANT_*; with both,
 * the stat comes first, then an empty line, then the patch. With `max_bytes` > 0, once the
 * output would pass it, the remaining files show as "omitted" lines and *truncated is set.
 */
int ps_patch_write(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b,
		   const struct ps_patch_opts *opts, unsigned what, int stat_width,
		   size_t max_bytes, ps_patch_write_fn write, void *ud, bool *truncated);

/*
 * The diff as JSON: {"from", "to", "truncated", "files": [ps_patch_file_to_json...]}. The
 * output limit `max_bytes` counts the git-format size of the files (0 = none); past it the
 * remaining files are listed as omitted, without hunks. The caller owns *out.
 */
int ps_patch_json(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b,
		  const struct ps_patch_opts *opts, size_t max_bytes, json_t **out);

/* Appends `s` quoted as git quotes paths (core.quotePath): in double quotes with C escapes
 * and octal for bytes >= 0x80, when it holds such a byte, a control character, '"' or '\\';
 * unchanged otherwise. `prefix` ("a/") goes inside the quotes. */
void ps_patch_quote(struct ps_buf *out, const char *prefix, const char *s);

#endif
