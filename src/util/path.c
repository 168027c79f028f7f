/*
 * Repository path checks (see path.h). Kept free of I/O so the rules can be unit-tested and
 * fuzzed on their own.
 */
#include "util/path.h"

#include <string.h>
#include <strings.h>

bool ps_path_component_is_dotgit(const char *name, size_t len)
{
	if (len < 4 || strncasecmp(name, ".git", 4) != 0)
		return false;
	/* ".git" followed only by dots or spaces names the same entry on file systems that strip
	 * them; Git refuses those too (is_ntfs_dotgit). */
	for (size_t i = 4; i < len; i++)
		if (name[i] != '.' && name[i] != ' ')
			return false;
	return true;
}

bool ps_path_is_safe(const char *rel)
{
	const char *p = rel;

	if (!rel || !*rel || *rel == '/')
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len == 0)
			return false; /* "a//b" or a trailing '/' */
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (ps_path_component_is_dotgit(p, len))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

size_t ps_path_dirname_len(const char *rel, size_t len)
{
	const char *slash = memrchr(rel, '/', len);
	return slash ? (size_t)(slash - rel) : 0;
}
