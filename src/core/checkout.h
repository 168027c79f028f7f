/*
 * `checkout`: mirror one snapshot of a project into a folder, so tools that want plain files
 * (editors, indexers, build systems) can use a sync without git. Re-runs are incremental: the
 * folder carries a small manifest (`.projsync-checkout`) naming the project and the sync it holds,
 * and the next checkout applies only the store's diff between that sync and the target.
 *
 * The folder is treated as hostile ground: every repository path is checked before anything is
 * written (util/path.h), and writes walk the tree one component at a time with openat/mkdirat
 * and O_NOFOLLOW, so a symlink in the folder (planted, or checked out from the repository
 * itself) is never followed. Files the folder holds that are not in the snapshot are left alone.
 */
#ifndef PS_CORE_CHECKOUT_H
#define PS_CORE_CHECKOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/model.h"
#include "store/store.h"
#include "util/util.h"

/* The manifest's file name, at the top of a checked-out folder. A snapshot path with this name
 * at the top level cannot be checked out. */
#define PS_CHECKOUT_MANIFEST ".projsync-checkout"

struct ps_checkout_stats {
	int64_t sync_id;            /* the sync now in the folder */
	int64_t from_sync_id;       /* the sync the folder held before, 0 = full write */
	bool full;                  /* true: the whole snapshot was written (no usable manifest) */
	int64_t written;            /* files, symlinks and submodule directories written */
	int64_t deleted;            /* paths removed */
	int64_t skipped;            /* files whose content is not stored (over the size limit) */
	int64_t unchanged;          /* entries this run left as they were (total - written - skipped) */
	int64_t total;              /* entries in the target snapshot */
	struct ps_strv skipped_paths; /* the skipped paths, for warnings */
};

/* Releases what the stats own (skipped_paths). */
void ps_checkout_stats_dispose(struct ps_checkout_stats *stats);

/*
 * Mirrors the snapshot of succeeded sync `at_sync` of project `p` (0 = the latest succeeded)
 * into `dir`, creating `dir` (and its parents) if missing. Blocks on the store and the file
 * system; `stats` is always initialised and must be disposed, and is filled on success.
 *
 * With a manifest naming the same project and one of its succeeded syncs S0, only
 * ps_store_diff(S0 -> target) is applied; otherwise every snapshot entry is written (files
 * already there are overwritten, unknown files are left alone). The manifest is removed before
 * the first change and written last (atomically), so an interrupted checkout re-runs as a full
 * write. Deletions run before writes and remove directories they leave empty.
 *
 * Entries: 100644 -> a 0644 file, 100755 -> 0755, 120000 -> a symlink whose target is the blob
 * content, 160000 (submodule) -> an empty directory. A file whose blob is not stored is skipped
 * (counted, listed, and any stale entry at its path removed), not an error.
 *
 * Returns 0, or:
 *   PS_ENOTFOUND  no succeeded sync (or `at_sync` is not a succeeded sync of this project);
 *   PS_ECONFLICT  the folder's manifest names another project (nothing is changed);
 *   PS_EINVAL     a path of the snapshot is unsafe (names it; nothing is changed), or the
 *                 manifest is unreadable;
 *   PS_EIO        the file system refused (a non-empty directory in the way, permissions...);
 *   PS_ESTORE     the store failed.
 */
int ps_checkout(struct ps_store *s, const struct ps_project *p, int64_t at_sync, const char *dir,
		struct ps_checkout_stats *stats);

#endif
