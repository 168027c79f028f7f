/*
 * A snapshot's trees checked against the source's: naming where a snapshot differs from its
 * commit, and completing changes a source gave without modes. The hashing itself is pure and
 * lives below the sources (model/tree.h); these read trees from a source, so they sit above it.
 */
#ifndef PS_CORE_TREE_SOURCE_H
#define PS_CORE_TREE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/tree.h"
#include "source/source.h"

/*
 * After a root id that differs from the commit's `want` tree: descends from the root through
 * the subtrees whose ids differ, reading the source's trees (`src`, one read per level) and our
 * own directories (`ours`, NULL: not known), and names the first differing directory ("" for
 * the root) in *dir and what differs in *detail (both malloc'd).
 */
typedef int (*ps_tree_ours_cb)(void *ud, const char *path, struct ps_tree_dir *out);
void ps_tree_first_difference(struct ps_source *src, const char *want, ps_tree_ours_cb ours,
			      void *ud, char **dir, char **detail);

/*
 * Completes changes whose source named paths and blob ids but not every mode (mode 0 where it
 * did not know: GitHub's compare). Deletions and modifications take what they replace, and
 * modifications their mode, from the previous snapshot's directories (`load`); new paths the
 * mode of a deleted path with the same blob, else PS_MODE_FILE. The result is checked against
 * the head's tree `want`: when its root differs, the head's directories whose ids differ from
 * ours are read from `src` (non-recursive, from the root down, at most `max_reads`; *reads
 * counts them) and give the changed paths in them their exact mode and id. *exact tells
 * whether the changes now make exactly `want`; false also when the previous snapshot has no
 * stored directories or the changes contradict it (then the caller lists the tree instead).
 * Errors: the loader's and the source's (but PS_ENOTFOUND, which is "not exact").
 */
int ps_tree_settle(struct ps_change *changes, size_t n, ps_tree_load_cb load, void *ud,
		   struct ps_source *src, const char *want, size_t max_reads, size_t *reads,
		   bool *exact);

#endif
