/*
 * The `diff` attribute of .gitattributes, as `git diff` applies it: `-diff` (or the `binary`
 * macro) makes a file binary, `diff` makes it text, anything else leaves it to the content.
 * git reads the attributes of its work tree; a diff between two syncs reads those of the
 * newer of the two (what a checkout of it holds), in either direction.
 */
#ifndef PS_CORE_PATCH_ATTR_H
#define PS_CORE_PATCH_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ps_store;

enum ps_attr_diff {
	PS_ATTR_DIFF_UNSPECIFIED, /* decided by the content (or a named driver: same) */
	PS_ATTR_DIFF_SET,         /* always text */
	PS_ATTR_DIFF_UNSET,       /* always binary */
};

struct ps_patch_attr;

/* Attributes of sync `at` of the project (0 = none: every path is unspecified). */
struct ps_patch_attr *ps_patch_attr_new(struct ps_store *s, int64_t project_id, int64_t at);
void ps_patch_attr_free(struct ps_patch_attr *a);

/* The `diff` attribute of `path`; .gitattributes files are read from the store on demand. */
enum ps_attr_diff ps_patch_attr_diff(struct ps_patch_attr *a, const char *path);

/* The state one attribute file gives `path` (relative to the file's directory), for tests:
 * the last matching line that names `diff` (or a macro that does) wins. */
enum ps_attr_diff ps_patch_attr_match_text(const char *text, size_t len, bool root,
					   const char *path, bool *decided);

/* gitattributes glob: `*`, `?`, `[...]`, `\x`, and `**` across directories. */
bool ps_patch_attr_glob(const char *pat, const char *s, bool pathname);

#endif
