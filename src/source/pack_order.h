#ifndef PS_SOURCE_PACK_ORDER_H
#define PS_SOURCE_PACK_ORDER_H

#include <stddef.h>

/*
 * Reorders `shas` (40-hex object ids) by where the packs under `objects_dir` keep them: pack by
 * pack (as readdir lists the .idx files), by offset within a pack, ids in no pack (loose, in an
 * alternate, unknown) last in their given order.
 *
 * Why: libgit2 1.5 rebuilds a deltified blob by inflating its whole delta chain (git gc makes
 * chains up to 50 deep) unless a base is in its per-pack cache, which keeps only the bases it
 * met on the way (not the objects asked for) and is emptied whole once it holds 16 MiB. Asked
 * in id order, consecutive blobs share no chain and every read inflates ~25 deltas; in pack
 * order a delta's base was written (and read) just before it, so a read inflates about two.
 * Only an order: anything unreadable in an index leaves that pack's ids where they were.
 */
void ps_pack_order(const char *objects_dir, char **shas, size_t n);

#endif
