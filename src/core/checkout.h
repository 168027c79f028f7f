/*
 * `checkout`: mirror one snapshot of a project into a folder, so tools that want plain files
 * (editors, indexers, build systems) can use a sync without git.
 *
 * The folder carries a manifest (`.projsync-checkout`) naming the project and the sync it holds
 * and, like git's index, every entry checkout wrote with its mode, blob id and the stat data it
 * had when written (size, mtime, ctime, inode, mode). A re-run compares the manifest with the
 * target snapshot, so it touches only what changed, and compares it with the disk, so it finds
 * local changes cheaply: only an entry whose stat data moved is read and hashed.
 *
 * Checkout never silently discards what it did not write: a non-empty folder without a manifest
 * is refused, and so is a run that would overwrite or remove a local change (an entry modified,
 * deleted, made another type or given another executable bit, or a file the manifest does not
 * own standing at a snapshot path). `force` discards those changes and restores the snapshot.
 * Files the manifest does not own and that stand in no snapshot path's way are left alone,
 * force or not, like git's untracked files.
 *
 * The folder is treated as hostile ground: every repository path (and every manifest path) is
 * checked before anything is written (util/path.h), and writes walk the tree one component at a
 * time with openat/mkdirat and O_NOFOLLOW, so a symlink in the folder (planted, or checked out
 * from the repository itself) is never followed.
 */
#ifndef PS_CORE_CHECKOUT_H
#define PS_CORE_CHECKOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "store/store.h"
#include "util/util.h"

/* The manifest's file name, at the top of a checked-out folder. A snapshot path with this name
 * at the top level cannot be checked out. */
#define PS_CHECKOUT_MANIFEST ".projsync-checkout"

/* A local change found in the folder: it refuses the checkout, or with force is discarded. */
enum ps_checkout_change {
	PS_CHECKOUT_MODIFIED = 1,   /* the content is not what checkout wrote */
	PS_CHECKOUT_DELETED,        /* an entry checkout wrote is gone */
	PS_CHECKOUT_TYPE_CHANGED,   /* a file became a symlink or directory, or the reverse */
	PS_CHECKOUT_MODE_CHANGED,   /* the executable bit differs (the only mode bit git keeps) */
	PS_CHECKOUT_UNTRACKED,      /* not written by checkout, and in the way of a snapshot path */
};

struct ps_checkout_change_entry {
	char *path;
	enum ps_checkout_change change;
};

/* An entry that could not be written for a reason of its own (a symlink target too long for
 * the file system, a non-empty directory in its way...): a warning, the rest is written. */
struct ps_checkout_failure {
	char *path;
	char *reason;
	bool lost;   /* its blob was lost from the store (counted in `missing`) */
};

struct ps_checkout_stats {
	int64_t sync_id;            /* the sync now in the folder */
	int64_t from_sync_id;       /* the sync the folder held before, 0 = full write */
	bool full;                  /* true: no entry of the folder was known (no usable manifest) */
	int64_t written;            /* files, symlinks and submodule directories written */
	int64_t deleted;            /* paths removed */
	int64_t skipped;            /* files whose content is not stored (over the size limit) */
	int64_t failed;             /* entries not written for a reason of their own (failures) */
	int64_t missing;            /* of those, files whose blob the store lost (blob_missing) */
	int64_t unchanged;          /* entries left as they were (total - written - skipped - failed) */
	int64_t total;              /* entries in the target snapshot */
	struct ps_strv skipped_paths; /* the skipped paths, for warnings */
	/* Per skipped path: true when its size is within today's limit, so it was either over
	 * the limit when its snapshot was synced or its blob was lost since (no row says which:
	 * ps_project_content_missing's not_fetched); false when it is over the limit now. */
	bool *skipped_unsure;
	/* Local changes: with PS_ECONFLICT "local_changes" those that refused the checkout; after
	 * a forced checkout those it discarded. Sorted by path. */
	struct ps_checkout_change_entry *changes;
	size_t nchanges;
	struct ps_checkout_failure *failures;
	size_t nfailures;
};

/* Releases what the stats own. */
void ps_checkout_stats_dispose(struct ps_checkout_stats *stats);

/* "modified", "deleted", "type_changed", "mode_changed", "untracked". */
const char *ps_checkout_change_name(enum ps_checkout_change c);

/*
 * Mirrors the snapshot of succeeded sync `at_sync` of project `p` (0 = the latest succeeded)
 * into `dir`, creating `dir` (and its parents) if missing. Blocks on the store and the file
 * system; `stats` is always initialised and must be disposed, and is filled on success (and
 * its `changes` on a local_changes refusal).
 *
 * Plan: the manifest's entries against the target snapshot and the disk. An owned entry the
 * target keeps unchanged is left alone, others are written or removed; a path the manifest
 * does not own is written when free, and taken over when it already holds exactly the
 * snapshot's entry. Every check runs before the first change. Then the manifest is rewritten
 * (atomically) to list both the old and the new state of every path about to change, the
 * changes are applied (deletions first, removing directories they leave empty), and the final
 * manifest is written. A failure or a crash at any point leaves a manifest that describes the
 * folder, so the next run neither trusts nor discards anything wrongly.
 *
 * Entries: 100644 -> a 0644 file, 100755 -> 0755, 120000 -> a symlink whose target is the blob
 * content, 160000 (submodule) -> an empty directory. A file whose blob is not stored is skipped
 * (counted, listed, and any stale entry at its path removed), not an error; one whose blob was
 * lost (ps_project_blob_lost under the snapshot's ps_project_blob_bound) is a failure, also
 * counted in `missing`, which the caller must report as an error (blob_missing). An entry the file
 * system refuses for a reason of its own is a failure (listed), not an error.
 *
 * Returns 0, or:
 *   PS_ENOTFOUND  no succeeded sync (or `at_sync` is not a succeeded sync of this project);
 *   PS_ECONFLICT  the folder's manifest names another project ("other_project"), the folder is
 *                 not empty and has no manifest ("not_a_checkout", unless `force`), or there
 *                 are local changes ("local_changes", unless `force`); nothing is changed;
 *   PS_EINVAL     a path of the snapshot is unsafe (names it; nothing is changed), the
 *                 manifest is unreadable, or `dir` (or a part of its path) is not a folder
 *                 ("not_a_folder");
 *   PS_ECANCELLED ps_checkout_interrupt was called ("interrupted");
 *   PS_EIO        the file system failed as a whole (no space, read-only, I/O error...);
 *   PS_ESTORE     the store failed.
 */
int ps_checkout(struct ps_store *s, const struct ps_project *p, int64_t at_sync, const char *dir,
		bool force, struct ps_checkout_stats *stats);

/* Asks the ps_checkout running in this process to stop before its next entry (a Ctrl-C): it
 * returns PS_ECANCELLED "interrupted", with no temporary file left and a manifest that
 * describes the folder, so the next run finishes. Before the first change nothing is changed,
 * and the stop wins over a plan that found local changes (not PS_ECONFLICT). Once every entry
 * is written the request is not heeded: the final manifest is written and the run succeeds.
 * Async-signal-safe; the request ends with that run (one that comes before it starts stops it
 * at once). */
void ps_checkout_interrupt(void);

#endif
