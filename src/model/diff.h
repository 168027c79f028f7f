/*
 * Change lists: comparing two path-sorted file lists, pairing exact renames, and ordering and
 * counting changes. Used by the store's snapshot diff and by the pipeline's scan, so both report
 * renames the same way.
 *
 * Renames: a deleted path and an added path with the same blob (not empty, not a submodule)
 * become one `renamed` change. Pairs are chosen deterministically (by blob, then path order),
 * like `git diff -M100%` but without similarity scoring: a rename with edits shows as a
 * deletion and an addition.
 */
#ifndef PS_MODEL_DIFF_H
#define PS_MODEL_DIFF_H

#include <stddef.h>

#include "model/model.h"

/* Compares `old` and `new_` (each sorted by path bytes, one entry per path) and returns the
 * changes sorted by path, renames paired. The caller owns *out (ps_changes_free). */
int ps_diff_files(const struct ps_file *old, size_t nold, const struct ps_file *new_,
		  size_t nnew, struct ps_change **out, size_t *n);

/* Pairs exact renames in place among the changes and sorts them by path. */
void ps_diff_pair_renames(struct ps_change **changes, size_t *n);

/* Sorts changes by path bytes. */
void ps_changes_sort(struct ps_change *changes, size_t n);

/* Adds the changes to counts (added, modified incl. type changes, deleted, renamed). */
void ps_changes_count(const struct ps_change *changes, size_t n, struct ps_counts *counts);

void ps_changes_free(struct ps_change *changes, size_t n);

/* The status of a path whose entry moved from (old_mode, old_sha) to (mode, sha): modified, or
 * type_changed when the kind of entry (file, symlink, submodule) differs. */
enum ps_change_status ps_change_kind(uint32_t old_mode, uint32_t mode);

#endif
