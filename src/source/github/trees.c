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
	if (t.truncated && depth == 0 && s->resync) {
		/* A re-sync of a tree GitHub cannot list at once: walking only the subtrees that
		 * changed costs less than listing every one of them. */
		ps_github_tree_dispose(&t);
		s->big_tree = true;
		return ps_error_set(PS_ENOTSUPP, NULL, "tree too big to list on a re-sync");
	}
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

	s->from_compare = false;
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

int gh_changes(struct ps_source *src, const char *base_commit, const struct ps_head *head,
		      struct ps_change **out, size_t *n)
{
	struct gh_source *s = (struct gh_source *)src;
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
	/* Paths and blob ids only: the pipeline carries the modes from its snapshot and checks
	 * the result against the head's tree (core/tree.h ps_tree_settle). */
	if ((rc = ps_github_compare_changes(&s->cmp, NULL, 0, out, n)) == 0)
		s->from_compare = true;
	return rc;
}
