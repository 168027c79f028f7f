/* See github_flow.h. */
#include "github_flow.h"

#include "model/diff.h"
#include "model/model.h"
#include "fuzz.h"
#include "source/source.h"
#include "util/error.h"
#include "util/util.h"

#define FLOW_MAX_BLOBS 64

static int on_blob(void *ud, const char *sha, const void *data, size_t len)
{
	char got[PS_SHA_HEX];

	ps_git_blob_sha(data, len, got);
	FUZZ_ASSERT(strcmp(got, sha) == 0);
	(*(size_t *)ud)++;
	return 0;
}

void github_flow(void)
{
	struct ps_source *src = NULL;
	struct ps_source_opts opts = { .cache_dir = "/nonexistent/projsync-fuzz-cache" };
	struct ps_strv names = {0};
	struct ps_head h1, h2;
	char *def = NULL;

	if (ps_github_source_open(&src, "o", "r", &opts) < 0)
		abort();
	if (ps_source_branches(src, &names, &def) == 0) {
		for (size_t i = 1; i < names.n; i++)
			FUZZ_ASSERT(strcmp(names.v[i - 1], names.v[i]) <= 0);
		ps_strv_dispose(&names);
		free(def);
	}
	(void)ps_source_resolve(src, NULL, NULL, &h1);
	if (ps_source_resolve(src, "main", FLOW_KNOWN, &h2) == 0 && h2.tree[0]) {
		struct ps_change *ch = NULL;
		struct ps_file *files = NULL;
		size_t nch = 0, nfiles = 0;

		if (src->ops->changes && src->ops->changes(src, FLOW_KNOWN, &h2, &ch, &nch) == 0)
			ps_changes_free(ch, nch);
		ps_error_clear();
		if (src->ops->list_tree &&
		    src->ops->list_tree(src, h2.tree, &files, &nfiles) == 0) {
			const char *shas[FLOW_MAX_BLOBS];
			/* The pipeline merges this listing with the stored snapshot by path: it must
			 * be sorted and free of duplicates, whatever GitHub said. */
			for (size_t i = 1; i < nfiles; i++)
				FUZZ_ASSERT(strcmp(files[i - 1].path, files[i].path) < 0);
			/* ... and a tree: no file is also a directory ("a" and "a/b"). */
			for (size_t i = 0; i < nfiles; i++) {
				size_t pl = strlen(files[i].path);
				for (size_t k = i + 1; k < nfiles; k++) {
					int c = strncmp(files[k].path, files[i].path, pl);
					if (c != 0)
						break;
					FUZZ_ASSERT(files[k].path[pl] != '/');
				}
			}
			size_t n = 0, delivered = 0;
			bool done = false;

			for (size_t i = 0; i < nfiles && n < FLOW_MAX_BLOBS; i++) {
				bool dup = false;
				if (files[i].mode == PS_MODE_COMMIT)
					continue;
				for (size_t k = 0; k < n && !dup; k++)
					dup = strcmp(shas[k], files[i].sha) == 0;
				if (!dup)
					shas[n++] = files[i].sha;
			}
			if (ps_source_fetch_begin(src, &h2, shas, n) == 0) {
				for (int step = 0; step < 16 && !done; step++)
					if (ps_source_fetch_next(src, 8, on_blob, &delivered, &done) < 0)
						break;
			}
			ps_source_fetch_end(src);
			FUZZ_ASSERT(delivered <= n);
			/* Done means every blob was handed over: the pipeline stores nothing else. */
			if (done)
				FUZZ_ASSERT(delivered == n);
			for (size_t i = 0; i < nfiles; i++)
				ps_file_dispose(&files[i]);
			free(files);
		}
	}
	ps_source_free(src);
	ps_error_clear();
}
