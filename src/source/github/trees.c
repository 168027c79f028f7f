/*
 * Trees and changes: one tree, every file of a tree (recursive, split when GitHub truncates), and
 * the changes of a compare with the modes taken from the head's trees.
 */
#include "source/github/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/diff.h"
#include "util/error.h"
#include "util/util.h"

/* ---- trees ---- */

int gh_get_tree(struct gh_source *s, const char *sha, bool recursive, struct ps_github_tree *t)
{
	struct gh_req r;
	int rc;

	if (!ps_sha_valid(sha) || strlen(sha) != 40)
		return ps_error_set(PS_EINVAL, NULL, "bad tree id '%s'", sha);
	rc = gh_get(s, &r, gh_repo_path(s, "/git/trees/%s%s", sha, recursive ? "?recursive=1" : ""),
		 MT_JSON, NULL, JSON_MAX);
	if (rc < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 422 || r.status == 409) {
		rc = ps_error_set(PS_ENOTFOUND, NULL, "tree %s not found in github:%s/%s", sha,
				  s->owner, s->repo);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = gh_unexpected(s, &r);
		goto cleanup;
	}
	rc = ps_github_tree_parse(t, r.body.data, r.body.len, gh_endpoint(s, r.url));
	if (rc == 0 && !recursive && t->truncated) {
		ps_github_tree_dispose(t);
		rc = ps_error_set(PS_ETOOBIG, "tree_too_big",
				  "GitHub truncates tree %s even when read alone", sha);
	}
	for (size_t i = 0; rc == 0 && i < t->n; i++)
		if (t->v[i].size > s->max_blob_seen)
			s->max_blob_seen = t->v[i].size;
cleanup:
	gh_req_dispose(&r);
	return rc;
}

int gh_read_tree(struct ps_source *src, const char *tree_sha, struct ps_tree *out)
{
	struct gh_source *s = (struct gh_source *)src;
	struct ps_github_tree t = {0};
	struct ps_tree pt = {0};
	int rc;

	if ((rc = gh_get_tree(s, tree_sha, false, &t)) < 0)
		return rc;
	pt.entries = ps_calloc(t.n + 1, sizeof(*pt.entries));
	for (size_t i = 0; i < t.n; i++) {
		if (strchr(t.v[i].path, '/')) {
			ps_tree_dispose(&pt);
			ps_github_tree_dispose(&t);
			return gh_malformed(tree_sha, "a non-recursive tree lists a nested path");
		}
		pt.entries[i].name = t.v[i].path;
		t.v[i].path = NULL;
		pt.entries[i].mode = t.v[i].mode;
		memcpy(pt.entries[i].sha, t.v[i].sha, PS_SHA_HEX);
		pt.entries[i].size = t.v[i].size;
		pt.n++;
	}
	ps_github_tree_dispose(&t);
	*out = pt;
	return 0;
}

struct file_list {
	struct ps_file *v;
	size_t n, cap;
};

static int file_push(struct file_list *l, const char *prefix, const struct ps_github_tree_entry *e)
{
	if (l->n >= TREE_FILES_MAX)
		return ps_error_set(PS_ETOOBIG, "tree_too_big", "more than %zu files in one tree",
				    TREE_FILES_MAX);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	struct ps_file *f = &l->v[l->n++];
	f->path = ps_asprintf("%s%s", prefix, e->path);
	f->mode = e->mode;
	memcpy(f->sha, e->sha, PS_SHA_HEX);
	f->size = e->type == 'b' ? e->size : -1;
	return 0;
}

static void file_list_dispose(struct file_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Every blob and submodule below `sha`, paths prefixed. One recursive request when GitHub can
 * list it all; when it truncates, the tree alone and then each subtree the same way, as GitHub's
 * documentation advises.
 */
static int collect_tree(struct gh_source *s, const char *sha, const char *prefix, int depth,
			struct file_list *l)
{
	struct ps_github_tree t = {0};
	int rc;

	if (depth > TREE_DEPTH_MAX)
		return ps_error_set(PS_ETOOBIG, "tree_too_big", "trees nest deeper than %d levels",
				    TREE_DEPTH_MAX);
	if ((rc = gh_get_tree(s, sha, true, &t)) < 0)
		return rc;
	if (!t.truncated) {
		for (size_t i = 0; rc == 0 && i < t.n; i++)
			if (t.v[i].type != 't')
				rc = file_push(l, prefix, &t.v[i]);
		ps_github_tree_dispose(&t);
		return rc;
	}
	ps_github_tree_dispose(&t);
	if ((rc = gh_get_tree(s, sha, false, &t)) < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < t.n; i++) {
		if (t.v[i].type != 't') {
			rc = file_push(l, prefix, &t.v[i]);
		} else {
			char *sub = ps_asprintf("%s%s/", prefix, t.v[i].path);
			rc = collect_tree(s, t.v[i].sha, sub, depth + 1, l);
			free(sub);
		}
	}
	ps_github_tree_dispose(&t);
	return rc;
}

static int cmp_file_path(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

int gh_list_tree(struct ps_source *src, const char *tree_sha, struct ps_file **out,
			size_t *n)
{
	struct gh_source *s = (struct gh_source *)src;
	struct file_list l = {0};
	int rc = 0;

	if (s->have_listing && strcmp(s->listing.sha, tree_sha) == 0) {
		for (size_t i = 0; rc == 0 && i < s->listing.n; i++)
			if (s->listing.v[i].type != 't')
				rc = file_push(&l, "", &s->listing.v[i]);
	} else if (s->big_tree) {
		/* A re-sync of a tree GitHub cannot list at once: walking only the subtrees that
		 * changed costs less than listing every one of them. */
		return ps_error_set(PS_ENOTSUPP, NULL, "tree too big to list on a re-sync");
	} else {
		rc = collect_tree(s, tree_sha, "", 0, &l);
	}
	if (rc < 0) {
		file_list_dispose(&l);
		return rc;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_file_path);
	*out = l.v;
	*n = l.n;
	return 0;
}

/* ---- changes (the compare) ---- */

struct dir_cache {
	char **paths;             /* "" for the root, "a/b" below */
	struct ps_github_tree *trees;
	size_t n;
};

static void dir_cache_dispose(struct dir_cache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
		ps_github_tree_dispose(&c->trees[i]);
	}
	free(c->paths);
	free(c->trees);
}

/* The non-recursive listing of directory `dir` of the tree `root`, read once. */
static int dir_listing(struct gh_source *s, struct dir_cache *c, const char *root, const char *dir,
		       const struct ps_github_tree **out)
{
	const struct ps_github_tree *parent;
	const char *slash, *name;
	char sha[PS_SHA_HEX];
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->paths[i], dir) == 0) {
			*out = &c->trees[i];
			return 0;
		}
	}
	if (!*dir) {
		memcpy(sha, root, PS_SHA_HEX);
	} else {
		char *pdir;
		slash = strrchr(dir, '/');
		pdir = slash ? ps_strndup(dir, (size_t)(slash - dir)) : ps_strdup("");
		name = slash ? slash + 1 : dir;
		rc = dir_listing(s, c, root, pdir, &parent);
		free(pdir);
		if (rc < 0)
			return rc;
		size_t i;
		for (i = 0; i < parent->n; i++)
			if (parent->v[i].type == 't' && strcmp(parent->v[i].path, name) == 0)
				break;
		if (i == parent->n)
			return ps_error_set(PS_ENOTSUPP, NULL, "directory %s is not in the head tree",
					    dir);
		memcpy(sha, parent->v[i].sha, PS_SHA_HEX);
	}
	c->paths = ps_realloc(c->paths, (c->n + 1) * sizeof(*c->paths));
	c->trees = ps_realloc(c->trees, (c->n + 1) * sizeof(*c->trees));
	memset(&c->trees[c->n], 0, sizeof(c->trees[c->n]));
	if ((rc = gh_get_tree(s, sha, false, &c->trees[c->n])) < 0)
		return rc;
	c->paths[c->n] = ps_strdup(dir);
	*out = &c->trees[c->n++];
	return 0;
}

/* The head's entries for the paths the compare names as present, sorted by path. */
static int head_entries(struct gh_source *s, const char *tree, const struct ps_github_compare *c,
			struct file_list *l)
{
	bool nested = false, any = false;
	struct dir_cache dc = {0};
	int rc = 0;

	for (size_t i = 0; i < c->nfiles; i++) {
		if (c->files[i].status == PS_GH_REMOVED || c->files[i].status == PS_GH_UNCHANGED)
			continue;
		any = true;
		nested |= strchr(c->files[i].filename, '/') != NULL;
	}
	if (!any)
		return 0;
	if (nested && !s->big_tree) {
		/* One recursive tree names every mode at once, unless GitHub truncates it. */
		struct ps_github_tree t = {0};
		if ((rc = gh_get_tree(s, tree, true, &t)) < 0)
			return rc;
		if (!t.truncated) {
			for (size_t i = 0; rc == 0 && i < t.n; i++)
				if (t.v[i].type != 't')
					rc = file_push(l, "", &t.v[i]);
			ps_github_tree_dispose(&t);
			goto sort;
		}
		ps_github_tree_dispose(&t);
	}
	/* Too big for one answer (or only top-level paths): the directories on the way only. */
	for (size_t i = 0; rc == 0 && i < c->nfiles; i++) {
		const struct ps_github_compare_file *f = &c->files[i];
		const struct ps_github_tree *dir;
		const char *slash = strrchr(f->filename, '/');
		char *dpath;

		if (f->status == PS_GH_REMOVED || f->status == PS_GH_UNCHANGED)
			continue;
		dpath = slash ? ps_strndup(f->filename, (size_t)(slash - f->filename)) : ps_strdup("");
		rc = dir_listing(s, &dc, tree, dpath, &dir);
		free(dpath);
		if (rc < 0)
			break;
		const char *leaf = slash ? slash + 1 : f->filename;
		for (size_t j = 0; j < dir->n; j++) {
			if (dir->v[j].type != 't' && strcmp(dir->v[j].path, leaf) == 0) {
				struct ps_github_tree_entry e = dir->v[j];
				e.path = f->filename;
				rc = file_push(l, "", &e);
				break;
			}
		}
	}
	dir_cache_dispose(&dc);
sort:
	if (rc == 0 && l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_file_path);
	/* Paths named twice (a rename's target also listed): keep one. */
	if (rc == 0 && l->n > 1) {
		size_t w = 1;
		for (size_t i = 1; i < l->n; i++) {
			if (strcmp(l->v[i].path, l->v[w - 1].path) == 0) {
				free(l->v[i].path);
				continue;
			}
			l->v[w++] = l->v[i];
		}
		l->n = w;
	}
	return rc;
}

int gh_changes(struct ps_source *src, const char *base_commit, const struct ps_head *head,
		      struct ps_change **out, size_t *n)
{
	struct gh_source *s = (struct gh_source *)src;
	struct file_list l = {0};
	int rc;

	if (!head->tree[0] || !ps_sha_valid(base_commit) || strlen(base_commit) != 40)
		return ps_error_set(PS_ENOTSUPP, NULL, "no compare without both commits");
	/* The listing read by resolve is exact and costs nothing more: let the pipeline use it
	 * (list_tree) rather than pay for a compare. */
	if (s->have_listing && strcmp(s->listing.sha, head->tree) == 0)
		return ps_error_set(PS_ENOTSUPP, NULL, "the head's listing is at hand");
	if ((rc = gh_fetch_compare(s, base_commit, head->commit)) < 0)
		return rc;
	if (rc == 0 || !ps_github_compare_usable(&s->cmp))
		return ps_error_set(PS_ENOTSUPP, NULL, "not a fast-forward below %d files",
				    COMPARE_FILES_MAX);
	if (strcmp(s->cmp.status, "identical") == 0) {
		*out = NULL;
		*n = 0;
		return 0;
	}
	/* The head commit must be the one compared (not a page of a longer history). */
	if (strcmp(s->cmp.head_commit, head->commit) != 0)
		return ps_error_set(PS_ENOTSUPP, NULL, "compare does not end at the head");
	if ((rc = head_entries(s, head->tree, &s->cmp, &l)) < 0) {
		file_list_dispose(&l);
		return rc;
	}
	rc = ps_github_compare_changes(&s->cmp, l.v, l.n, out, n);
	file_list_dispose(&l);
	return rc;
}
