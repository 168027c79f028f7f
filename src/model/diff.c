/*
 * Change lists (see diff.h).
 */
#include "model/diff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


enum ps_change_status ps_change_kind(uint32_t old_mode, uint32_t mode)
{
	/* 100644 <-> 100755 is a modification; file <-> symlink <-> submodule is a type change,
	 * as `git diff --name-status` reports it (T). */
	return (old_mode & 0170000u) == (mode & 0170000u) ? PS_CHANGE_MODIFIED
							   : PS_CHANGE_TYPE_CHANGED;
}

static int cmp_path(const void *a, const void *b)
{
	const struct ps_change *x = a, *y = b;
	return strcmp(x->path, y->path);
}

void ps_changes_sort(struct ps_change *changes, size_t n)
{
	if (n > 1)
		qsort(changes, n, sizeof(*changes), cmp_path);
}

void ps_changes_free(struct ps_change *changes, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ps_change_dispose(&changes[i]);
	free(changes);
}

void ps_changes_count(const struct ps_change *changes, size_t n, struct ps_counts *counts)
{
	for (size_t i = 0; i < n; i++) {
		switch (changes[i].status) {
		case PS_CHANGE_ADDED: counts->added++; break;
		case PS_CHANGE_MODIFIED:
		case PS_CHANGE_TYPE_CHANGED: counts->modified++; break;
		case PS_CHANGE_DELETED: counts->deleted++; break;
		case PS_CHANGE_RENAMED: counts->renamed++; break;
		}
	}
}

/* git diff pairs any deleted and added entry with the same object id: empty files and
 * submodules too (git's rename_empty is on for diff). */
static bool renamable(const char *sha)
{
	return sha[0] != '\0';
}

static bool is_regular(uint32_t mode)
{
	return (mode & 0170000u) == 0100000u;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

struct idx {
	const char *sha;
	const char *path;
	uint32_t mode;
	size_t i;
};

static int cmp_idx(const void *a, const void *b)
{
	const struct idx *x = a, *y = b;
	int c = strcmp(x->sha, y->sha);
	return c ? c : strcmp(x->path, y->path);
}

/* How many eligible sources git weighs for one destination before it takes the best so far. */
#define RENAME_CANDIDATES 100

/*
 * git's exact rename detection (diffcore-rename.c, find_identical_files), so that `changes`
 * and `diff --patch` pair what `git diff -M` pairs: each added path, in path order, takes a
 * deleted path with the same object id that no earlier one took, preferring the first one (in
 * path order) with the same base name, else the first one; a symlink or a submodule only pairs
 * with the same mode, a regular file with a regular file (the executable bit may change).
 */
void ps_diff_pair_renames(struct ps_change **changes, size_t *n)
{
	struct ps_change *v = *changes;
	struct idx *dels = ps_calloc(*n, sizeof(*dels)), *adds = ps_calloc(*n, sizeof(*adds));
	size_t nd = 0, na = 0, out = 0;
	bool *drop = ps_calloc(*n, sizeof(bool)), *used = ps_calloc(*n, sizeof(bool));

	for (size_t i = 0; i < *n; i++) {
		if (v[i].status == PS_CHANGE_DELETED && renamable(v[i].previous_sha))
			dels[nd++] = (struct idx){ v[i].previous_sha, v[i].path, v[i].previous_mode,
						   i };
		else if (v[i].status == PS_CHANGE_ADDED && renamable(v[i].sha))
			adds[na++] = (struct idx){ v[i].sha, v[i].path, v[i].mode, i };
	}
	if (nd > 1)
		qsort(dels, nd, sizeof(*dels), cmp_idx);
	if (na > 1)
		qsort(adds, na, sizeof(*adds), cmp_idx);
	for (size_t d = 0, a = 0; d < nd && a < na;) {
		int c = strcmp(dels[d].sha, adds[a].sha);
		if (c < 0) {
			d++;
			continue;
		}
		if (c > 0) {
			a++;
			continue;
		}
		/* dels[d..dend) and adds[a..aend) share one object id, each in path order. */
		size_t dend = d, aend = a;
		while (dend < nd && strcmp(dels[dend].sha, dels[d].sha) == 0)
			dend++;
		while (aend < na && strcmp(adds[aend].sha, adds[a].sha) == 0)
			aend++;
		for (size_t k = a; k < aend; k++) {
			const struct idx *dst = &adds[k];
			size_t best = SIZE_MAX, weighed = 0;
			int best_score = -1;

			for (size_t j = d; j < dend && weighed < RENAME_CANDIDATES; j++) {
				const struct idx *src = &dels[j];
				int score;

				if (used[j])
					continue;
				/* Mode 0: not known yet (a compare before the pipeline settled
				 * it), so it cannot refuse. */
				if (src->mode && dst->mode && src->mode != dst->mode &&
				    (!is_regular(src->mode) || !is_regular(dst->mode)))
					continue;
				weighed++;
				score = 1 + (strcmp(base_name(src->path), base_name(dst->path)) == 0);
				if (score > best_score) {
					best = j;
					best_score = score;
					if (score == 2)
						break;
				}
			}
			if (best == SIZE_MAX)
				continue;
			used[best] = true;
			struct ps_change *add = &v[dst->i], *del = &v[dels[best].i];
			add->status = PS_CHANGE_RENAMED;
			add->previous_path = del->path;
			del->path = NULL;
			memcpy(add->previous_sha, del->previous_sha, PS_SHA_HEX);
			add->previous_mode = del->previous_mode;
			drop[dels[best].i] = true;
		}
		d = dend;
		a = aend;
	}
	for (size_t i = 0; i < *n; i++) {
		if (drop[i]) {
			ps_change_dispose(&v[i]);
			continue;
		}
		v[out++] = v[i];
	}
	*n = out;
	ps_changes_sort(v, out);
	free(dels);
	free(adds);
	free(drop);
	free(used);
}

static void push(struct ps_change **v, size_t *n, size_t *cap, struct ps_change c)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = ps_realloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = c;
}

int ps_diff_files(const struct ps_file *old, size_t nold, const struct ps_file *new_,
		  size_t nnew, struct ps_change **out, size_t *n)
{
	struct ps_change *v = NULL;
	size_t count = 0, cap = 0, i = 0, j = 0;

	while (i < nold || j < nnew) {
		int c = i == nold ? 1 : j == nnew ? -1 : strcmp(old[i].path, new_[j].path);
		struct ps_change ch = { .size = -1 };

		if (c < 0) {
			ch.status = PS_CHANGE_DELETED;
			ch.path = ps_strdup(old[i].path);
			memcpy(ch.previous_sha, old[i].sha, PS_SHA_HEX);
			ch.previous_mode = old[i].mode;
			i++;
		} else if (c > 0) {
			ch.status = PS_CHANGE_ADDED;
			ch.path = ps_strdup(new_[j].path);
			memcpy(ch.sha, new_[j].sha, PS_SHA_HEX);
			ch.mode = new_[j].mode;
			ch.size = new_[j].size;
			j++;
		} else {
			if (old[i].mode == new_[j].mode && strcmp(old[i].sha, new_[j].sha) == 0) {
				i++;
				j++;
				continue;
			}
			ch.status = ps_change_kind(old[i].mode, new_[j].mode);
			ch.path = ps_strdup(new_[j].path);
			memcpy(ch.sha, new_[j].sha, PS_SHA_HEX);
			memcpy(ch.previous_sha, old[i].sha, PS_SHA_HEX);
			ch.mode = new_[j].mode;
			ch.previous_mode = old[i].mode;
			ch.size = new_[j].size;
			i++;
			j++;
		}
		push(&v, &count, &cap, ch);
	}
	ps_diff_pair_renames(&v, &count);
	*out = v;
	*n = count;
	return 0;
}
