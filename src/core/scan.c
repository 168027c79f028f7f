/*
 * Differential tree walk (see scan.h). A stack of (base subtree, new subtree, path prefix)
 * pairs; each step pops pairs, reads both trees and merges their entries by name. Identical
 * entries (same SHA and mode) are skipped, which is what prunes unchanged subtrees.
 */
#include "core/scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/diff.h"
#include "util/error.h"

struct pair {
	char base[PS_SHA_HEX]; /* "" = absent */
	char new_[PS_SHA_HEX];
	char *prefix;          /* "" or "dir/sub/" */
};

struct ps_scan {
	struct ps_source *src;
	struct pair *stack;
	size_t nstack, capstack;
	struct ps_change *changes;
	size_t nchanges, capchanges;
	size_t trees_read;
};

static void push_pair(struct ps_scan *sc, const char *base, const char *new_, char *prefix)
{
	struct pair *p;

	if (sc->nstack == sc->capstack) {
		sc->capstack = sc->capstack ? sc->capstack * 2 : 32;
		sc->stack = ps_realloc(sc->stack, sc->capstack * sizeof(*sc->stack));
	}
	p = &sc->stack[sc->nstack++];
	snprintf(p->base, sizeof(p->base), "%s", base ? base : "");
	snprintf(p->new_, sizeof(p->new_), "%s", new_ ? new_ : "");
	p->prefix = prefix;
}

int ps_scan_new(struct ps_scan **out, struct ps_source *src, const char *base_tree,
		const char *new_tree)
{
	struct ps_scan *sc = ps_calloc(1, sizeof(*sc));

	sc->src = src;
	if ((base_tree || new_tree) && !(base_tree && new_tree && strcmp(base_tree, new_tree) == 0))
		push_pair(sc, base_tree, new_tree, ps_strdup(""));
	*out = sc;
	return 0;
}

static void add_change(struct ps_scan *sc, enum ps_change_status status, char *path,
		       const struct ps_tree_entry *old, const struct ps_tree_entry *new_)
{
	struct ps_change *c;

	if (sc->nchanges == sc->capchanges) {
		sc->capchanges = sc->capchanges ? sc->capchanges * 2 : 256;
		sc->changes = ps_realloc(sc->changes, sc->capchanges * sizeof(*sc->changes));
	}
	c = &sc->changes[sc->nchanges++];
	memset(c, 0, sizeof(*c));
	c->status = status;
	c->path = path;
	c->size = -1;
	if (old) {
		memcpy(c->previous_sha, old->sha, PS_SHA_HEX);
		c->previous_mode = old->mode;
	}
	if (new_) {
		memcpy(c->sha, new_->sha, PS_SHA_HEX);
		c->mode = new_->mode;
		c->size = new_->size;
	}
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct ps_tree_entry *)a)->name, ((const struct ps_tree_entry *)b)->name);
}

static bool is_tree(const struct ps_tree_entry *e)
{
	return (e->mode & 0170000u) == PS_MODE_TREE;
}

static char *join(const char *prefix, const char *name)
{
	return ps_asprintf("%s%s", prefix, name);
}

/* Merges one pair of trees: emits file changes, pushes subtree pairs that differ. */
static void merge(struct ps_scan *sc, const struct pair *p, struct ps_tree *bt, struct ps_tree *nt)
{
	size_t i = 0, j = 0;

	if (bt->n > 1)
		qsort(bt->entries, bt->n, sizeof(*bt->entries), cmp_entry);
	if (nt->n > 1)
		qsort(nt->entries, nt->n, sizeof(*nt->entries), cmp_entry);
	while (i < bt->n || j < nt->n) {
		const struct ps_tree_entry *b = i < bt->n ? &bt->entries[i] : NULL;
		const struct ps_tree_entry *n = j < nt->n ? &nt->entries[j] : NULL;
		int c = !b ? 1 : !n ? -1 : strcmp(b->name, n->name);

		if (c < 0) {
			if (is_tree(b))
				push_pair(sc, b->sha, NULL, ps_asprintf("%s%s/", p->prefix, b->name));
			else
				add_change(sc, PS_CHANGE_DELETED, join(p->prefix, b->name), b, NULL);
			i++;
			continue;
		}
		if (c > 0) {
			if (is_tree(n))
				push_pair(sc, NULL, n->sha, ps_asprintf("%s%s/", p->prefix, n->name));
			else
				add_change(sc, PS_CHANGE_ADDED, join(p->prefix, n->name), NULL, n);
			j++;
			continue;
		}
		/* The same name on both sides. */
		if (b->mode == n->mode && strcmp(b->sha, n->sha) == 0) {
			/* identical: an unchanged file, or a subtree not worth a look */
		} else if (is_tree(b) && is_tree(n)) {
			push_pair(sc, b->sha, n->sha, ps_asprintf("%s%s/", p->prefix, n->name));
		} else if (is_tree(b)) {
			push_pair(sc, b->sha, NULL, ps_asprintf("%s%s/", p->prefix, b->name));
			add_change(sc, PS_CHANGE_ADDED, join(p->prefix, n->name), NULL, n);
		} else if (is_tree(n)) {
			add_change(sc, PS_CHANGE_DELETED, join(p->prefix, b->name), b, NULL);
			push_pair(sc, NULL, n->sha, ps_asprintf("%s%s/", p->prefix, n->name));
		} else {
			add_change(sc, ps_change_kind(b->mode, n->mode), join(p->prefix, n->name), b, n);
		}
		i++;
		j++;
	}
}

int ps_scan_step(struct ps_scan *sc, size_t max_trees, bool *done)
{
	size_t read = 0;

	while (sc->nstack > 0 && read < max_trees) {
		struct pair p = sc->stack[--sc->nstack];
		struct ps_tree bt = { 0 }, nt = { 0 };
		int rc = 0;

		if (p.base[0] && (rc = ps_source_read_tree(sc->src, p.base, &bt)) < 0) {
			/* Put it back so the scan stays consistent for the caller's fallback. */
			sc->nstack++;
			return rc;
		}
		if (p.new_[0] && (rc = ps_source_read_tree(sc->src, p.new_, &nt)) < 0) {
			ps_tree_dispose(&bt);
			sc->nstack++;
			return rc;
		}
		read += (p.base[0] != 0) + (p.new_[0] != 0);
		sc->trees_read += (p.base[0] != 0) + (p.new_[0] != 0);
		merge(sc, &p, &bt, &nt);
		ps_tree_dispose(&bt);
		ps_tree_dispose(&nt);
		free(p.prefix);
	}
	*done = sc->nstack == 0;
	return 0;
}

size_t ps_scan_trees_read(const struct ps_scan *sc) { return sc->trees_read; }
size_t ps_scan_trees_pending(const struct ps_scan *sc) { return sc->nstack; }
size_t ps_scan_changes_found(const struct ps_scan *sc) { return sc->nchanges; }

void ps_scan_take_changes(struct ps_scan *sc, struct ps_change **out, size_t *n)
{
	ps_diff_pair_renames(&sc->changes, &sc->nchanges);
	*out = sc->changes;
	*n = sc->nchanges;
	sc->changes = NULL;
	sc->nchanges = sc->capchanges = 0;
}

void ps_scan_free(struct ps_scan *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->nstack; i++)
		free(sc->stack[i].prefix);
	free(sc->stack);
	ps_changes_free(sc->changes, sc->nchanges);
	free(sc);
}
