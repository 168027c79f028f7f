/*
 * Memory globs (core/memory.c ps_memory_glob_match): a project's globs are set through the API
 * and matched against every path of hostile repositories. Input: "GLOB\nPATH". Properties: no
 * crash, bounded time (libFuzzer's -timeout catches a blow-up the header promises against),
 * and a glob with no special characters matches exactly itself.
 */
#include "core/memory.h"
#include "fuzz.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	char *nl = strchr(s, '\n');
	const char *glob = s, *path = "";

	if (nl) {
		*nl = 0;
		path = nl + 1;
	}
	(void)ps_memory_glob_match(glob, path);
	(void)ps_memory_glob_match(path, glob);
	if (*path && !strpbrk(path, "*?[\\") && path[0] != '/')
		FUZZ_ASSERT(ps_memory_glob_match(path, path));
	struct ps_strv globs = {0};
	ps_strv_push(&globs, glob);
	ps_strv_push(&globs, path);
	(void)ps_memory_globs_match(&globs, path);
	ps_strv_dispose(&globs);
	free(s);
	return 0;
}
