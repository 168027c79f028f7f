/*
 * Checkout path checks: the rules a repository path must pass before `checkout` writes it under
 * a folder (util/path.c ps_path_is_safe, and core/checkout.c's planning check on top of it).
 * Each input line is one path. The properties restate the rules independently: an accepted path
 * is relative, has no empty, "." or ".." component, no component that a file system would take
 * for ".git", is not the manifest, and fits NAME_MAX/PATH_MAX.
 */
#include <ctype.h>
#include <limits.h>
#include <strings.h>

#include "core/checkout.h"
#include "core/checkout_internal.h"
#include "fuzz.h"
#include "util/error.h"
#include "util/path.h"

static bool dotgit_like(const char *c, size_t len)
{
	if (len < 4 || tolower((unsigned char)c[0]) != '.' || tolower((unsigned char)c[1]) != 'g' ||
	    tolower((unsigned char)c[2]) != 'i' || tolower((unsigned char)c[3]) != 't')
		return false;
	for (size_t i = 4; i < len; i++)
		if (c[i] != '.' && c[i] != ' ')
			return false;
	return true;
}

static void check_one(const char *path)
{
	bool safe = ps_path_is_safe(path);
	int rc = ps_checkout_check_path(path);

	FUZZ_ASSERT(rc == 0 || rc == PS_EINVAL);
	if (rc == 0)
		FUZZ_ASSERT(safe);
	if (!safe)
		return;
	FUZZ_ASSERT(path[0] && path[0] != '/');
	for (const char *c = path;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		FUZZ_ASSERT(len > 0);
		FUZZ_ASSERT(!(len == 1 && c[0] == '.'));
		FUZZ_ASSERT(!(len == 2 && c[0] == '.' && c[1] == '.'));
		FUZZ_ASSERT(!dotgit_like(c, len));
		if (rc == 0)
			FUZZ_ASSERT(len <= NAME_MAX);
		if (!slash)
			break;
		c = slash + 1;
	}
	if (rc == 0) {
		FUZZ_ASSERT(strlen(path) < PATH_MAX);
		FUZZ_ASSERT(strcasecmp(path, PS_CHECKOUT_MANIFEST) != 0);
	}
	size_t len = strlen(path), d = ps_path_dirname_len(path, len);
	FUZZ_ASSERT(d < len && (d == 0 || path[d] == '/'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	for (char *line = s, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		check_one(line);
	}
	ps_error_clear();
	free(s);
	return 0;
}
