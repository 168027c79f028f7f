/*
 * The SOURCE string parser (source/source.c ps_source_open): what a user or an API client names
 * as a project's repository. Opening is offline for every kind (remote sources connect on
 * first use), so the real entry point is fuzzed. Properties: a GitHub source is only made from
 * "github:" or "https://github.com/" specs; a failure always carries a message.
 */
#include <strings.h>

#include "fuzz.h"
#include "source/source.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec = fuzz_cstr(data, size);
	struct ps_source *src = NULL;
	/* Never created: opening a remote source only computes its cache path. */
	struct ps_source_opts opts = { .cache_dir = "/nonexistent/projsync-fuzz-cache" };
	int rc = ps_source_open(&src, spec, &opts);

	if (rc == 0) {
		FUZZ_ASSERT(src != NULL);
		if (strcmp(src->ops->kind, "github") == 0)
			FUZZ_ASSERT(strncmp(spec, "github:", 7) == 0 ||
				    strncasecmp(spec, "https://github.com/", 19) == 0);
		ps_source_free(src);
	} else {
		FUZZ_ASSERT(ps_error_message()[0] != '\0');
	}
	ps_error_clear();
	free(spec);
	return 0;
}
