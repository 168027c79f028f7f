/*
 * A snapshot's trees against the source's (see tree_source.h): the pure hashing is model/tree.c;
 * this part reads the source's trees.
 */
#include "core/tree_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static bool is_tree_mode(uint32_t mode)
{
	return (mode & 0170000u) == PS_MODE_TREE;
}

static int cmp_entry(const void *x, const void *y)
{
	const struct ps_tree_entry *a = x, *b = y;

	return ps_tree_entry_cmp(a->name, a->mode, b->name, b->mode);
}

/* ---- naming what differs ---- */

void ps_tree_first_difference(struct ps_source *src, const char *want, ps_tree_ours_cb ours,
			      void *ud, char **dir, char **detail)
{
	char *path = ps_strdup("");
	char theirs_id[PS_SHA_HEX];

	snprintf(theirs_id, sizeof(theirs_id), "%s", want);
	for (int guard = 0; guard < 4096; guard++) {
		struct ps_tree_dir od = { 0 };
		struct ps_tree o = { 0 }, t = { 0 };
		size_t i = 0, k = 0;
		char *next = NULL;

		if (!ours || ours(ud, path, &od) < 0 || ps_tree_parse(od.body, od.len, &o) < 0) {
			*detail = ps_asprintf("the commit's tree is %s", theirs_id);
			goto done;
		}
		if (!src || ps_source_read_tree(src, theirs_id, &t) < 0) {
			*detail = ps_asprintf("the snapshot's tree is %s, the commit's %s", od.sha,
					      theirs_id);
			free(od.path);
			free(od.body);
			ps_tree_dispose(&o);
			goto done;
		}
		if (o.n > 1)
			qsort(o.entries, o.n, sizeof(*o.entries), cmp_entry);
		if (t.n > 1)
			qsort(t.entries, t.n, sizeof(*t.entries), cmp_entry);
		*detail = NULL;
		while (!*detail && !next && (i < o.n || k < t.n)) {
			int c = i == o.n ? 1 : k == t.n ? -1 : cmp_entry(&o.entries[i], &t.entries[k]);
			char om[8], tm[8];

			if (c < 0) {
				*detail = ps_asprintf("'%s' is in the snapshot, not in the commit",
						      o.entries[i].name);
			} else if (c > 0) {
				*detail = ps_asprintf("'%s' is in the commit, not in the snapshot",
						      t.entries[k].name);
			} else if (o.entries[i].mode != t.entries[k].mode ||
				   strcmp(o.entries[i].sha, t.entries[k].sha) != 0) {
				if (is_tree_mode(o.entries[i].mode) && is_tree_mode(t.entries[k].mode)) {
					next = path[0] ? ps_asprintf("%s/%s", path, o.entries[i].name)
						       : ps_strdup(o.entries[i].name);
					snprintf(theirs_id, sizeof(theirs_id), "%s", t.entries[k].sha);
				} else {
					ps_mode_string(o.entries[i].mode, om);
					ps_mode_string(t.entries[k].mode, tm);
					*detail = ps_asprintf("'%s' is %s %s in the snapshot, %s %s in "
							      "the commit", o.entries[i].name, om,
							      o.entries[i].sha, tm, t.entries[k].sha);
				}
			}
			i++;
			k++;
		}
		if (!*detail && !next)
			*detail = ps_asprintf("the source lists the same entries but names the tree "
					      "%s; they hash to %s", theirs_id, od.sha);
		free(od.path);
		free(od.body);
		ps_tree_dispose(&o);
		ps_tree_dispose(&t);
		if (*detail) {
			free(next);
			goto done;
		}
		free(path);
		path = next;
	}
	*detail = ps_strdup("the trees nest too deep to compare");
done:
	*dir = path;
}

/* ---- changes without modes (ps_tree_settle) ---- */

/* The previous snapshot's directories, each loaded and parsed once. */
struct base_cache {
	char **paths;
	struct ps_tree *trees;   /* empty for a directory the previous snapshot lacked */
	size_t n;
};

static void base_cache_dispose(struct base_cache *bc)
{
	for (size_t i = 0; i < bc->n; i++) {
		free(bc->paths[i]);
		ps_tree_dispose(&bc->trees[i]);
	}
	free(bc->paths);
	free(bc->trees);
}

/* The previous snapshot's entry at `path` (a file, link or submodule), *out NULL when absent. */
static int base_entry(struct base_cache *bc, ps_tree_load_cb load, void *ud, const char *path,
		      const struct ps_tree_entry **out)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	char *dir = slash ? ps_strndup(path, (size_t)(slash - path)) : ps_strdup("");
	struct ps_tree *t = NULL;
	int rc = 0;

	*out = NULL;
	for (size_t i = 0; i < bc->n && !t; i++)
		if (strcmp(bc->paths[i], dir) == 0)
			t = &bc->trees[i];
	if (!t) {
		struct ps_tree_dir d = { 0 };

		bc->paths = ps_realloc(bc->paths, (bc->n + 1) * sizeof(*bc->paths));
		bc->trees = ps_realloc(bc->trees, (bc->n + 1) * sizeof(*bc->trees));
		t = &bc->trees[bc->n];
		memset(t, 0, sizeof(*t));
		bc->paths[bc->n++] = dir;
		dir = NULL;
		rc = load(ud, bc->paths[bc->n - 1], &d);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear();
			rc = 0;
		} else if (rc == 0) {
			rc = ps_tree_parse(d.body, d.len, t);
		}
		free(d.path);
		free(d.body);
	}
	free(dir);
	for (size_t i = 0; rc == 0 && i < t->n; i++)
		if (!is_tree_mode(t->entries[i].mode) && strcmp(t->entries[i].name, name) == 0)
			*out = &t->entries[i];
	return rc;
}

static struct ps_change *change_at(struct ps_change *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].status != PS_CHANGE_DELETED && strcmp(v[i].path, path) == 0)
			return &v[i];
	return NULL;
}

/* The root id the changes give the previous snapshot ("" when they cannot be applied). */
static int settled_root(const struct ps_change *v, size_t n, ps_tree_load_cb load, void *ud,
			struct ps_tree_dir **dirs, size_t *ndirs, char root[PS_SHA_HEX])
{
	const struct ps_tree_dir *r;
	int rc;

	ps_tree_dirs_free(*dirs, *ndirs);
	*dirs = NULL;
	*ndirs = 0;
	root[0] = '\0';
	rc = ps_tree_update(v, n, load, ud, dirs, ndirs);
	if (rc == PS_EINVAL) {
		ps_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	r = ps_tree_dirs_find(*dirs, *ndirs, "");
	snprintf(root, PS_SHA_HEX, "%s", r && r->sha[0] ? r->sha : PS_EMPTY_TREE);
	return 0;
}

struct pending_dir {
	char *path;
	char sha[PS_SHA_HEX];
};

/*
 * One directory of the head whose id differs from ours: its entries decide the modes and ids
 * of the changed paths in it, and name the subdirectories to look into. *ok false when it
 * holds a difference no change names (the changes are incomplete).
 */
static int settle_dir(struct ps_change *v, size_t n, const struct ps_tree_dir *ours,
		      struct ps_tree *theirs, struct pending_dir **q, size_t *nq, bool *ok)
{
	struct ps_tree o = { 0 };
	size_t i = 0, k = 0;
	int rc;

	if ((rc = ps_tree_parse(ours->body, ours->len, &o)) < 0)
		return rc;
	if (o.n > 1)
		qsort(o.entries, o.n, sizeof(*o.entries), cmp_entry);
	if (theirs->n > 1)
		qsort(theirs->entries, theirs->n, sizeof(*theirs->entries), cmp_entry);
	while (*ok && (i < o.n || k < theirs->n)) {
		int c = i == o.n ? 1 : k == theirs->n ? -1 : cmp_entry(&o.entries[i], &theirs->entries[k]);
		const struct ps_tree_entry *t = c >= 0 ? &theirs->entries[k] : NULL;
		char *full;

		if (c != 0) {
			*ok = false; /* a path only one side has: nothing a mode could fix */
			break;
		}
		i++;
		k++;
		if (o.entries[i - 1].mode == t->mode && strcmp(o.entries[i - 1].sha, t->sha) == 0)
			continue;
		full = ours->path[0] ? ps_asprintf("%s/%s", ours->path, t->name) : ps_strdup(t->name);
		if (is_tree_mode(t->mode)) {
			*q = ps_realloc(*q, (*nq + 1) * sizeof(**q));
			(*q)[*nq].path = full;
			memcpy((*q)[*nq].sha, t->sha, PS_SHA_HEX);
			(*nq)++;
			continue;
		}
		struct ps_change *ch = change_at(v, n, full);
		free(full);
		if (!ch) {
			*ok = false;
			break;
		}
		if (strcmp(ch->sha, t->sha) != 0)
			ch->size = -1;
		ch->mode = t->mode;
		memcpy(ch->sha, t->sha, PS_SHA_HEX);
		if (ch->status == PS_CHANGE_MODIFIED && ch->previous_mode &&
		    (ch->previous_mode & 0170000u) != (t->mode & 0170000u))
			ch->status = PS_CHANGE_TYPE_CHANGED;
	}
	ps_tree_dispose(&o);
	return 0;
}

int ps_tree_settle(struct ps_change *v, size_t n, ps_tree_load_cb load, void *ud,
		   struct ps_source *src, const char *want, size_t max_reads, size_t *reads,
		   bool *exact)
{
	struct base_cache bc = { 0 };
	struct ps_tree_dir *dirs = NULL, root_dir = { 0 };
	struct pending_dir *q = NULL;
	size_t ndirs = 0, nq = 0, qpos = 0;
	char root[PS_SHA_HEX];
	bool ok = true;
	int rc;

	*exact = false;
	*reads = 0;
	/* Without the previous snapshot's directories there is nothing to carry modes from. */
	rc = load(ud, "", &root_dir);
	free(root_dir.path);
	free(root_dir.body);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	/* Modes carried from the previous snapshot, which also names what the deletions and
	 * modifications replace; a path the changes contradict it about ends the attempt. */
	for (size_t i = 0; ok && i < n; i++) {
		struct ps_change *c = &v[i];
		const struct ps_tree_entry *old;

		if ((rc = base_entry(&bc, load, ud, c->path, &old)) < 0)
			goto out;
		if (c->status == PS_CHANGE_ADDED || c->status == PS_CHANGE_RENAMED) {
			ok = !old;
			continue;
		}
		if (!old) {
			ok = false;
			break;
		}
		if (!c->previous_sha[0])
			memcpy(c->previous_sha, old->sha, PS_SHA_HEX);
		if (!c->previous_mode)
			c->previous_mode = old->mode;
		if (c->status != PS_CHANGE_DELETED && !c->mode)
			c->mode = old->mode;
	}
	/* A new path takes the mode of a deleted path with the same blob (a rename), else the
	 * usual one; the check below corrects what this guesses wrong. */
	for (size_t i = 0; ok && i < n; i++) {
		if (v[i].status == PS_CHANGE_DELETED || v[i].mode)
			continue;
		v[i].mode = PS_MODE_FILE;
		for (size_t j = 0; j < n; j++)
			if (v[j].status == PS_CHANGE_DELETED && v[j].previous_mode &&
			    strcmp(v[j].previous_sha, v[i].sha) == 0)
				v[i].mode = v[j].previous_mode;
	}
	if (!ok || (rc = settled_root(v, n, load, ud, &dirs, &ndirs, root)) < 0 || !root[0])
		goto out;
	if (strcmp(root, want) == 0) {
		*exact = true;
		goto out;
	}
	/* Down from the head's root into just the directories whose ids differ from ours. */
	q = ps_calloc(1, sizeof(*q));
	q[0].path = ps_strdup("");
	memcpy(q[0].sha, want, PS_SHA_HEX);
	nq = 1;
	for (; ok && qpos < nq; qpos++) {
		const struct ps_tree_dir *d = ps_tree_dirs_find(dirs, ndirs, q[qpos].path);
		struct ps_tree theirs = { 0 };

		if (!d || !d->sha[0] || *reads >= max_reads) {
			ok = false; /* a directory the changes did not touch, or too many */
			break;
		}
		if (strcmp(d->sha, q[qpos].sha) == 0)
			continue;
		(*reads)++;
		if ((rc = ps_source_read_tree(src, q[qpos].sha, &theirs)) < 0) {
			if (rc == PS_ENOTFOUND) {
				ps_error_clear();
				rc = 0;
				ok = false;
			}
			break;
		}
		rc = settle_dir(v, n, d, &theirs, &q, &nq, &ok);
		ps_tree_dispose(&theirs);
		if (rc < 0)
			break;
	}
	if (rc < 0 || !ok)
		goto out;
	if ((rc = settled_root(v, n, load, ud, &dirs, &ndirs, root)) == 0)
		*exact = strcmp(root, want) == 0;
out:
	for (size_t i = 0; i < nq; i++)
		free(q[i].path);
	free(q);
	ps_tree_dirs_free(dirs, ndirs);
	base_cache_dispose(&bc);
	return rc;
}
