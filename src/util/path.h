/*
 * Repository paths meet the local file system here. A path comes from a repository someone else
 * controls (a snapshot we checkout, a file we cat), so before it names anything on disk it must be
 * proven harmless: relative, made of plain components, never climbing out with "..", and never
 * reaching into a `.git` directory (which would let a repository plant hooks or config). The
 * rules follow Git's own verify_path() for the cases that matter on Linux, with `.git` compared
 * case-insensitively because the folder may live on a case-insensitive file system.
 */
#ifndef PS_UTIL_PATH_H
#define PS_UTIL_PATH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when `rel` may be written below a folder: non-NULL, non-empty, relative (no leading '/'),
 * no empty components ("a//b", trailing '/'), no "." or ".." component, and no component that
 * names `.git` on any file system we may meet (see ps_path_component_is_dotgit). Backslashes
 * and other bytes are ordinary characters on POSIX and are allowed; the C string ends at NUL,
 * so an embedded NUL cannot occur here (callers holding byte counts check that themselves).
 */
bool ps_path_is_safe(const char *rel);

/*
 * True when the component `name` (length `len`, no '/') would be taken for `.git`: ".git" in
 * any letter case, also with trailing dots or spaces (Windows and some network shares strip
 * them, so ".git." and ".git " reach the same directory). NTFS short names ("git~1") are not
 * handled: projsync writes to POSIX file systems.
 */
bool ps_path_component_is_dotgit(const char *name, size_t len);

/*
 * Length of the directory part of the first `len` bytes of `rel` ("a/b/c" -> 3 for "a/b";
 * "c" -> 0). Walks a path's parents without copying it: call again with the result.
 */
size_t ps_path_dirname_len(const char *rel, size_t len);

#endif
