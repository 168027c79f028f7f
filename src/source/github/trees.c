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

#include "model/diff.h"
#include "model/tree.h"
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

static int collect_tree(struct gh_source *s, const char *sha, const char *prefix, int depth,
			struct file_list *l);
static int cmp_file_path(const void *a, const void *b);

#define TARBALL_READS_MAX 64 /* head trees read to complete a tarball's listing */

static struct ps_file *file_find(struct file_list *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, path) == 0)
			return &l->v[i];
	return NULL;
}

struct pending {
	char *path;
	char sha[PS_SHA_HEX];
};

/*
 * One directory of the head whose id differs from the tarball's: its entries replace what the
 * archive rewrote (export-subst), add what it left out (export-ignore, submodules) and drop
 * what it holds that the tree does not; subdirectories that differ are queued, those the
 * archive lacks entirely are listed whole.
 */
static int complete_dir(struct gh_source *s, struct file_list *l, const struct ps_tree_dir *dirs,
			size_t nd, const char *path, const struct ps_github_tree *t,
			struct pending **q, size_t *nq)
{
	size_t plen = strlen(path);
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < t->n; i++) {
		const struct ps_github_tree_entry *e = &t->v[i];
		char *full = plen ? ps_asprintf("%s/%s", path, e->path) : ps_strdup(e->path);

		if (e->type == 't') {
			const struct ps_tree_dir *d = ps_tree_dirs_find(dirs, nd, full);
			if (!d) {
				char *prefix = ps_asprintf("%s/", full);
				rc = collect_tree(s, e->sha, prefix, 1, l);
				free(prefix);
			} else if (strcmp(d->sha, e->sha) != 0) {
				*q = ps_realloc(*q, (*nq + 1) * sizeof(**q));
				(*q)[*nq].path = full;
				full = NULL;
				memcpy((*q)[*nq].sha, e->sha, PS_SHA_HEX);
				(*nq)++;
			}
		} else {
			struct ps_file *f = file_find(l, full);
			if (!f) {
				struct ps_github_tree_entry copy = *e;
				copy.path = full;
				rc = file_push(l, "", &copy);
			} else if (f->mode != e->mode || strcmp(f->sha, e->sha) != 0) {
				f->mode = e->mode;
				memcpy(f->sha, e->sha, PS_SHA_HEX);
				f->size = e->type == 'b' ? e->size : -1;
			}
		}
		free(full);
	}
	/* The archive's files in this directory that the tree does not name. */
	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		const char *p = l->v[i].path, *name;
		bool named = false;

		if (plen ? strncmp(p, path, plen) != 0 || p[plen] != '/' : false)
			continue;
		name = plen ? p + plen + 1 : p;
		if (strchr(name, '/'))
			continue;
		for (size_t k = 0; k < t->n && !named; k++)
			named = t->v[k].type != 't' && strcmp(t->v[k].path, name) == 0;
		if (!named) {
			free(l->v[i].path);
			l->v[i] = l->v[--l->n];
			i--;
		}
	}
	return rc;
}

/*
 * A first sync of a tree GitHub truncates, from the tarball: one download names every path
 * with its executable bit or symlink and content (blob ids hashed here, content spooled for
 * the fetch). What the archive leaves out or rewrites (export-ignore, export-subst,
 * submodules) makes directories whose ids differ from the head's: only those are read, from
 * the root down, and the result must be the head's tree. PS_ENOTSUPP: walk the trees instead.
 */
static int tarball_files(struct gh_source *s, const char *tree, struct file_list *l)
{
	struct ps_file *v = NULL;
	size_t n = 0, reads = 0;
	int rc;

	if ((rc = gh_tar_listing(s, s->head.commit, &v, &n)) < 0)
		return rc;
	l->v = v;
	l->n = l->cap = n;
	for (int round = 0;; round++) {
		struct ps_tree_dir *dirs = NULL;
		size_t nd = 0, nq = 0;
		struct pending *q = NULL;
		const struct ps_tree_dir *root;

		if (l->n > 1)
			qsort(l->v, l->n, sizeof(*l->v), cmp_file_path);
		if ((rc = ps_tree_build(l->v, l->n, &dirs, &nd)) < 0) {
			ps_error_clear();
			return ps_error_set(PS_ENOTSUPP, NULL, "the tarball's paths make no tree");
		}
		root = ps_tree_dirs_find(dirs, nd, "");
		if (root && strcmp(root->sha, tree) == 0) {
			ps_tree_dirs_free(dirs, nd);
			return 0;
		}
		if (round > 0) {
			ps_tree_dirs_free(dirs, nd);
			return ps_error_set(PS_ENOTSUPP, NULL, "the tarball does not make the tree");
		}
		q = ps_calloc(1, sizeof(*q));
		q[0].path = ps_strdup("");
		memcpy(q[0].sha, tree, PS_SHA_HEX);
		nq = 1;
		for (size_t qi = 0; rc == 0 && qi < nq; qi++) {
			const struct ps_tree_dir *d = ps_tree_dirs_find(dirs, nd, q[qi].path);
			struct ps_github_tree t = {0};

			if (d && strcmp(d->sha, q[qi].sha) == 0)
				continue;
			if (++reads > TARBALL_READS_MAX) {
				rc = ps_error_set(PS_ENOTSUPP, NULL, "too many trees differ");
				break;
			}
			if ((rc = gh_get_tree(s, q[qi].sha, false, &t)) < 0)
				break;
			rc = complete_dir(s, l, dirs, nd, q[qi].path, &t, &q, &nq);
			ps_github_tree_dispose(&t);
		}
		for (size_t i = 0; i < nq; i++)
			free(q[i].path);
		free(q);
		ps_tree_dirs_free(dirs, nd);
		if (rc < 0)
			return rc;
	}
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
	if (t.truncated && depth == 0 && s->head.commit[0] && strcmp(sha, s->head.tree) == 0) {
		if ((rc = tarball_files(s, sha, l)) != PS_ENOTSUPP) {
			ps_github_tree_dispose(&t);
			return rc;
		}
		file_list_dispose(l);
		gh_warn(s, "listing tree %s from GitHub's tarball failed (%s); walking its subtrees",
			sha, ps_error_message());
		ps_error_clear();
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
	 * the result against the head's tree (core/tree_source.h ps_tree_settle). */
	if ((rc = ps_github_compare_changes(&s->cmp, NULL, 0, out, n)) == 0)
		s->from_compare = true;
	return rc;
}
