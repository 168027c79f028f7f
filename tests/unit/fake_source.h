/*
 * An in-memory source for unit tests: trees are built from lists of "path" -> content (mode
 * chosen by prefix: "@link:" symlink, "@exec:" executable, "@sub:" submodule), tree ids are
 * derived from their entries, and the source counts reads and can be told to fail.
 */
#ifndef PS_TEST_FAKE_SOURCE_H
#define PS_TEST_FAKE_SOURCE_H

#include "source/source.h"

struct fake_file {
	const char *path;
	const char *content;
};

struct fake_source;

struct fake_source *fake_new(void);
/* Builds the tree of `files` (n entries) and makes it the head of branch "main" with commit id
 * derived from `commit_name`. Returns the root tree id (static buffer inside the fake). */
const char *fake_commit(struct fake_source *f, const char *commit_name, const struct fake_file *files,
			size_t n);
/* Makes branch `name` (besides "main") point at the current head; later commits move only
 * "main". */
void fake_branch(struct fake_source *f, const char *name);
/* The default branch the source answers (NULL: "main"). */
void fake_set_default(struct fake_source *f, const char *name);
/* Forgets every tree and blob not reachable from the current head (like gc after a force-push). */
void fake_gc(struct fake_source *f);
struct ps_source *fake_as_source(struct fake_source *f); /* borrowed; the fake owns it */
size_t fake_tree_reads(const struct fake_source *f);
size_t fake_blob_reads(const struct fake_source *f);
void fake_reset_counts(struct fake_source *f);
/* Makes the n-th following fetch_blobs call fail with PS_EUPSTREAM (0 = never). */
void fake_fail_fetch_after(struct fake_source *f, int n);
/* Makes blob content returned by fetch wrong (to test verification). */
void fake_corrupt_blobs(struct fake_source *f, bool on);
/* Makes the source lie about `path` of the current head: its tree entry gets `mode` (0: kept)
 * and `sha` (NULL: kept) while every tree id stays the true one, so what the source lists no
 * longer hashes to the commit's tree. */
void fake_lie(struct fake_source *f, const char *path, uint32_t mode, const char *sha);
void fake_free(struct fake_source *f);
/* Offers the optional `changes` and `list_tree` ops (answering PS_ENOTSUPP if `unsupported`). */
void fake_enable_fast_paths(struct fake_source *f, bool on, bool unsupported);
size_t fake_branch_calls(const struct fake_source *f);
size_t fake_changes_calls(const struct fake_source *f);
size_t fake_list_calls(const struct fake_source *f);

/* For ps_sync_ctx.open_source: returns the fake registered with fake_register. */
void fake_register(struct fake_source *f);
int fake_open(struct ps_source **out, const char *spec, const struct ps_source_opts *opts);

#endif
