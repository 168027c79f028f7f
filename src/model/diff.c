/*
 * Change lists (see diff.h).
 */
#include "model/diff.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY_BLOB "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"

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

static bool renamable(const char *sha, uint32_t mode)
{
	return sha[0] && strcmp(sha, EMPTY_BLOB) != 0 && (mode & 0170000u) != PS_MODE_COMMIT;
}

struct idx {
	const char *sha;
	const char *path;
	size_t i;
};

static int cmp_idx(const void *a, const void *b)
{
	const struct idx *x = a, *y = b;
	int c = strcmp(x->sha, y->sha);
	return c ? c : strcmp(x->path, y->path);
}

void ps_diff_pair_renames(struct ps_change **changes, size_t *n)
{
	struct ps_change *v = *changes;
	struct idx *dels = ps_calloc(*n, sizeof(*dels)), *adds = ps_calloc(*n, sizeof(*adds));
	size_t nd = 0, na = 0, out = 0;
	bool *drop = ps_calloc(*n, sizeof(bool));

	for (size_t i = 0; i < *n; i++) {
		if (v[i].status == PS_CHANGE_DELETED && renamable(v[i].previous_sha, v[i].previous_mode))
			dels[nd++] = (struct idx){ v[i].previous_sha, v[i].path, i };
		else if (v[i].status == PS_CHANGE_ADDED && renamable(v[i].sha, v[i].mode))
			adds[na++] = (struct idx){ v[i].sha, v[i].path, i };
	}
	if (nd > 1)
		qsort(dels, nd, sizeof(*dels), cmp_idx);
	if (na > 1)
		qsort(adds, na, sizeof(*adds), cmp_idx);
	for (size_t d = 0, a = 0; d < nd && a < na;) {
		int c = strcmp(dels[d].sha, adds[a].sha);
		if (c < 0) {
			d++;
		} else if (c > 0) {
			a++;
		} else {
			struct ps_change *add = &v[adds[a].i], *del = &v[dels[d].i];
			add->status = PS_CHANGE_RENAMED;
			add->previous_path = del->path;
			del->path = NULL;
			memcpy(add->previous_sha, del->previous_sha, PS_SHA_HEX);
			add->previous_mode = del->previous_mode;
			drop[dels[d].i] = true;
			d++;
			a++;
		}
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
