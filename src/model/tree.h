/*
 * Git tree objects computed from a snapshot's own rows: what lets every sync check its snapshot
 * against the commit it came from (core/sync.c), `projsync verify` re-check a stored one
 * (core/verify.c), and a source that only knows part of a tree (GitHub's compare, a tarball)
 * find out which subtrees it got right.
 *
 * Git's format: a tree object is "tree <len>\0" followed by its entries sorted by name, a
 * directory compared as if its name ended in '/'; each entry is "<mode in octal, no leading
 * zero> <name>\0<20-byte id>". Its id is the SHA-1 of the whole object. The empty tree (an
 * empty commit) is PS_EMPTY_TREE. Directories without files do not exist in git, nor here.
 *
 * A directory is handled with its entries (`body`, the object without its header) so that a
 * later snapshot re-hashes only the directories on its changed paths (ps_tree_update) from the
 * bodies of the previous one, the way git writes a new commit's trees. The store keeps only
 * each directory's id and rebuilds a body from the snapshot's rows when asked (store.h,
 * ps_store_dir_tree_get).
 */
#ifndef PS_MODEL_TREE_H
#define PS_MODEL_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define PS_EMPTY_TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

/* One entry of one tree, as git stores it. */
struct ps_tree_entry {
	char *name;            /* a single path component (arbitrary bytes but '/' and NUL) */
	uint32_t mode;         /* PS_MODE_* */
	char sha[PS_SHA_HEX];
	int64_t size;          /* blob size; -1 for trees and submodules */
};

struct ps_tree {
	struct ps_tree_entry *entries;
	size_t n;
};
void ps_tree_dispose(struct ps_tree *t);

/* One directory of a snapshot. `path` is "" for the root, else "a/b" (no trailing slash). */
struct ps_tree_dir {
	char *path;
	char sha[PS_SHA_HEX];         /* "" for a directory a change removed (ps_tree_update) */
	unsigned char *body;          /* its entries in git's format; NULL when len is 0 */
	size_t len;
};
void ps_tree_dirs_free(struct ps_tree_dir *dirs, size_t n);

/* The id of the tree object whose entries are `body`. */
void ps_tree_hash(const void *body, size_t len, char out[PS_SHA_HEX]);

/* Git's order of two entries (a directory's name compared with a trailing '/'). */
int ps_tree_entry_cmp(const char *a, uint32_t mode_a, const char *b, uint32_t mode_b);

/* The entries of a body, in its order (sizes -1). PS_EINVAL (slug "bad_tree") when the body is
 * not git's format. */
int ps_tree_parse(const void *body, size_t len, struct ps_tree *out);
/* A body from entries in any order (sorted here; `t` is sorted in place). PS_EINVAL for a name
 * that is empty, holds '/', or repeats, or an id that is not 40 hex digits. */
int ps_tree_serialize(struct ps_tree *t, unsigned char **body, size_t *len);

/* The directory `path` whose entries are `t` (sorted here): `out` gets a copy of `path`, the
 * body and the id it hashes to, in new memory. PS_EINVAL as ps_tree_serialize. */
int ps_tree_dir_make(const char *path, struct ps_tree *t, struct ps_tree_dir *out);

/*
 * Every directory of the snapshot made of `files` (blobs, symlinks and submodules with their
 * full paths, in any order), sorted by path bytes: the root ("") first, its id that of the
 * commit's tree. PS_EINVAL (slug "bad_path") for a path with an empty component, and for a
 * path that is both a file and a directory.
 */
int ps_tree_build(const struct ps_file *files, size_t n, struct ps_tree_dir **out, size_t *nout);

/* A directory of the previous snapshot (its body, path and id), or PS_ENOTFOUND when it had no
 * such directory. The callee fills `out` with new memory. */
typedef int (*ps_tree_load_cb)(void *ud, const char *path, struct ps_tree_dir *out);

/*
 * The directories that `changes` (model/diff.h) touch, re-hashed from the previous snapshot's
 * directories (loaded once each through `load`): every ancestor of a changed path, the old
 * path of a rename included, sorted by path bytes, the root first. A directory the changes
 * empty is returned with an empty `sha` (removed). Cost follows the changed directories, not
 * the snapshot.
 */
int ps_tree_update(const struct ps_change *changes, size_t n, ps_tree_load_cb load, void *ud,
		   struct ps_tree_dir **out, size_t *nout);

/* The directories holding the changed paths (every ancestor, "" included), sorted and unique:
 * what a finalize supersedes. Free each string and the array. */
void ps_tree_changed_dirs(const struct ps_change *changes, size_t n, char ***out, size_t *nout);

/* Finds a directory in a sorted array (ps_tree_build, ps_tree_update), NULL if absent. */
const struct ps_tree_dir *ps_tree_dirs_find(const struct ps_tree_dir *dirs, size_t n,
					    const char *path);

#endif
