/*
 * Code search over any snapshot (`projsync grep`, GET /projects/{name}/search/code): what
 * `git grep -n` prints on a checkout of that sync's commit, from the store.
 *
 * The matcher is PCRE2 (Debian's libpcre2-8), as `git grep` itself uses it: a literal pattern
 * (-F, the default) and a regular expression (-E, Perl syntax: what `git grep -P` takes), each
 * line matched on its own without its newline, with the options git 2.39 picks in a UTF-8
 * locale (UTF with invalid bytes tolerated, except for a case-sensitive literal, which matches
 * bytes). A match limit, a heap limit and a deadline bound every search.
 *
 * The code index (store.h) only narrows which files are read: ps_grep_query derives from the
 * pattern the literals every match must contain, the store returns the files whose blobs may
 * hold them, and the matcher confirms each on the content read with ps_store_blob_get. A pattern
 * with no literal of 3 ASCII characters reads every file of the snapshot (`scanned`).
 */
#ifndef PS_CORE_GREP_H
#define PS_CORE_GREP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define PS_GREP_DEFAULT_TIMEOUT_MS 10000
/* git's rule (buffer_is_binary): a NUL in the first 8000 bytes. */
#define PS_GREP_BINARY_PROBE 8000

/* True when `git grep` would treat this content as binary ("Binary file x matches"). */
bool ps_grep_is_binary(const void *data, size_t len);

/* Adds a stored blob to the code index (ps_store_code_index_put), binary or text by git's rule.
 * Called by the sync as blobs enter the store. */
int ps_grep_index_blob(struct ps_store *s, const char *sha, const void *data, size_t len);

/*
 * The index query for a pattern: the literals every match must contain (store.h). Sets *out
 * to NULL when the pattern offers none (fewer than 3 ASCII characters in a row, or syntax this
 * analysis does not follow), which means "read every file". Never fails for a valid pattern;
 * the analysis only ever leaves requirements out, never adds one a match could lack.
 */
void ps_grep_query(const char *pattern, bool regex, struct ps_code_query **out);
void ps_code_query_free(struct ps_code_query *q);

struct ps_grep_opts {
	const char *pattern;
	bool regex;                /* -E: PCRE2 syntax; otherwise a literal string (-F) */
	bool ignore_case;          /* -i */
	const char *path_glob;     /* --path: core/memory.h glob rules; NULL: every path */
	int64_t at;                /* succeeded sync; 0: the latest */
	int64_t max;               /* stop after this many matches; <= 0: all */
	int64_t timeout_ms;        /* <= 0: PS_GREP_DEFAULT_TIMEOUT_MS */
	/* Paging: only matches after (after_path, after_line); a binary file's match has line 0. */
	const char *after_path;
	int64_t after_line;
};

/* One matching line, or one binary file that matches (binary: line, column 0, no text). */
struct ps_grep_match {
	const char *path;
	int64_t line;              /* 1-based */
	int64_t column;            /* 1-based byte offset of the first match in the line */
	const char *text;          /* the line without its newline; not NUL-terminated */
	size_t text_len;
	bool binary;
};

/* The JSON shape (`grep --json`, the API): {"path", "line", "column", "text", "binary"} (and
 * "path_raw" for a path that is not UTF-8); a binary
 * file's match has line, column and text null. Invalid UTF-8 in text becomes U+FFFD. */
json_t *ps_grep_match_to_json(const struct ps_grep_match *m);

/* Called for each match in path, then line order; borrowed pointers. Non-zero stops. */
typedef int (*ps_grep_cb)(void *ud, const struct ps_grep_match *m);

struct ps_grep_info {
	int64_t sync_id;           /* the snapshot searched */
	bool scanned;              /* the index could not narrow: every file was read */
	bool more;                 /* stopped at `max` with more matches left */
	size_t candidates;         /* files read */
	/* Files not searched because the store lost their blob (within the limit of the latest
	 * snapshot, ps_project_blob_bound: what `verify --blobs` calls blob_missing). A file kept
	 * as metadata only (over the size limit) is not counted: it has no content to search. */
	size_t missing;
};

/*
 * Searches project `p` at opts->at. PS_EINVAL ("invalid_pattern") for an empty pattern, one
 * with a newline or a regular expression PCRE2 rejects (the message names the error and its
 * offset); PS_ENOTFOUND as ps_store_snapshot_each; PS_EFAIL with slug "search_timeout" past the
 * deadline or "pattern_too_costly" when one line exhausts the match or memory limit. Returns
 * the callback's non-zero value when it stops the search.
 */
int ps_grep_run(struct ps_store *s, const struct ps_project *p, const struct ps_grep_opts *o,
		ps_grep_cb cb, void *ud, struct ps_grep_info *info);

/* The matches of o's pattern in one file's content, as ps_grep_run reports them for a file
 * named `path` (o->at and path_glob are ignored): what the fuzz target of the index query
 * holds the query to. Errors as ps_grep_run. */
int ps_grep_content(const struct ps_grep_opts *o, const char *path, const void *data, size_t len,
		    ps_grep_cb cb, void *ud);

#endif
