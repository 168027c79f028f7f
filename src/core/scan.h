/*
 * The scan phase's differential tree walk: compares the tree of the last succeeded sync with the
 * new head's tree and descends only into subtrees whose SHA differs, so its cost follows what
 * changed. It works on any source through ps_source_read_tree. The walk is resumable in steps
 * (a bounded number of tree reads each), which is what lets the pipeline report progress and
 * honour a cancel request in the middle of a large first scan.
 */
#ifndef PS_CORE_SCAN_H
#define PS_CORE_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"
#include "source/source.h"

struct ps_scan;

/* Starts a walk from `base_tree` (NULL: nothing, every file is added) to `new_tree` (NULL: the
 * empty tree, every file is deleted). The source is borrowed for the scan's life. */
int ps_scan_new(struct ps_scan **out, struct ps_source *src, const char *base_tree,
		const char *new_tree);

/* Reads up to `max_trees` trees. Sets *done when the walk is complete. PS_ENOTFOUND when the
 * source no longer has a tree (e.g. the base after a force-push and gc): the caller falls back
 * to comparing against the stored snapshot. */
int ps_scan_step(struct ps_scan *sc, size_t max_trees, bool *done);

/* Counters for progress: trees read and trees known to be pending. */
size_t ps_scan_trees_read(const struct ps_scan *sc);
size_t ps_scan_trees_pending(const struct ps_scan *sc);
size_t ps_scan_changes_found(const struct ps_scan *sc);

/* Hands over the changes of a completed walk, renames paired, sorted by path. */
void ps_scan_take_changes(struct ps_scan *sc, struct ps_change **out, size_t *n);

void ps_scan_free(struct ps_scan *sc);

#endif
