/*
 * Re-checking a stored snapshot (see verify.h).
 */
#include "core/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/project.h"
#include "model/json.h"
#include "model/tree.h"
#include "util/error.h"

struct files {
	struct ps_file *v;
	size_t n, cap;
};

static int collect(void *ud, const struct ps_file *f)
{
	struct files *l = ud;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n] = *f;
	l->v[l->n].path = ps_strdup(f->path);
	l->n++;
	return 0;
}

struct dirs {
	struct ps_tree_dir *v;
	size_t n, cap;
};

static int collect_dir(void *ud, const struct ps_tree_dir *d)
{
	struct dirs *l = ud;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n] = *d;
	l->v[l->n].path = ps_strdup(d->path);
	l->v[l->n].body = NULL; /* the store keeps only the id */
	l->v[l->n].len = 0;
	l->n++;
	return 0;
}

static void problem(struct ps_verify_report *r, char *path, const char *code, char *message)
{
	r->problems = ps_realloc(r->problems, (r->nproblems + 1) * sizeof(*r->problems));
	r->problems[r->nproblems++] = (struct ps_verify_problem){ path, ps_strdup(code), message };
}

static char *dir_label(const char *path)
{
	return path[0] ? ps_asprintf("%s/", path) : ps_strdup("/");
}

static bool is_tree(uint32_t mode)
{
	return (mode & 0170000u) == PS_MODE_TREE;
}

/*
 * A directory whose id from the files differs from the stored one (trusted: the stored root is
 * the commit's). The store keeps directory ids, not entries (migration 0020), so the files
 * that differ cannot be named; the directory that holds them can: the one whose own entries,
 * with each subdirectory given its stored id, still do not hash to its stored id. A directory
 * whose difference lies only in its subdirectories is left to them.
 */
static void own_entries_problem(struct ps_verify_report *r, const struct ps_tree_dir *ours,
				const struct ps_tree_dir *stored, const struct dirs *all)
{
	struct ps_tree o = { 0 };
	unsigned char *body = NULL;
	size_t len = 0;
	char sha[PS_SHA_HEX] = "";

	if (ps_tree_parse(ours->body, ours->len, &o) == 0) {
		for (size_t i = 0; i < o.n; i++) {
			char *sub;
			const struct ps_tree_dir *d;

			if (!is_tree(o.entries[i].mode))
				continue;
			sub = ours->path[0] ? ps_asprintf("%s/%s", ours->path, o.entries[i].name)
					    : ps_strdup(o.entries[i].name);
			d = ps_tree_dirs_find(all->v, all->n, sub);
			free(sub);
			if (d)
				memcpy(o.entries[i].sha, d->sha, PS_SHA_HEX);
		}
		if (ps_tree_serialize(&o, &body, &len) == 0)
			ps_tree_hash(body, len, sha);
	}
	ps_error_clear();
	if (strcmp(sha, stored->sha) != 0)
		problem(r, dir_label(ours->path), "tree_mismatch",
			ps_asprintf("its files hash to tree %s, the commit has %s: an entry directly "
				    "in it (a file's mode, id or name, or a subdirectory) differs",
				    ours->sha, stored->sha));
	free(body);
	ps_tree_dispose(&o);
}

static void check_dirs(struct ps_verify_report *r, const struct ps_tree_dir *mine, size_t nmine,
		       const struct dirs *stored)
{
	const struct ps_tree_dir *sroot = ps_tree_dirs_find(stored->v, stored->n, "");
	bool rows_ok = strcmp(r->computed, r->tree) == 0;
	bool stored_ok = sroot && strcmp(sroot->sha, r->tree) == 0;
	size_t i = 0, k = 0;

	if (!rows_ok && !stored_ok) {
		problem(r, ps_strdup("/"), "tree_mismatch",
			ps_asprintf("the files hash to tree %s, the commit's tree is %s", r->computed,
				    r->tree));
		return;
	}
	while (i < nmine || k < stored->n) {
		const struct ps_tree_dir *a = i < nmine ? &mine[i] : NULL;
		const struct ps_tree_dir *b = k < stored->n ? &stored->v[k] : NULL;
		int c = !a ? 1 : !b ? -1 : strcmp(a->path, b->path);

		if (c == 0 && strcmp(a->sha, b->sha) == 0) {
			i++;
			k++;
			continue;
		}
		if (rows_ok) {
			/* The files are the commit's; the stored directory is not what they make
			 * (the next sync hashes every directory again from the files). */
			const struct ps_tree_dir *d = c <= 0 ? a : b;
			problem(r, dir_label(d->path), "dir_tree_mismatch",
				ps_strdup(c < 0 ? "no directory tree stored for it"
					  : c > 0 ? "a directory tree is stored for it, but no file "
						    "of the snapshot is in it"
					  : "its stored directory tree differs from its files'"));
		} else if (c == 0) {
			own_entries_problem(r, a, b, stored);
		}
		/* Directories on one side only show as entries of their parents. */
		if (c <= 0)
			i++;
		if (c >= 0)
			k++;
	}
}

static int cmp_file_sha(const void *a, const void *b)
{
	const struct ps_file *x = a, *y = b;
	int c = strcmp(x->sha, y->sha);

	return c ? c : strcmp(x->path, y->path);
}

/* `must_hold`: ps_project_blob_bound of the snapshot, under which a blob not found was lost,
 * not a file kept as metadata only. */
struct blob_group {
	size_t start, end;  /* the files of one blob: v[start..end), by path */
	const char *first;  /* the first of their paths */
};

static int cmp_group_path(const void *a, const void *b)
{
	return strcmp(((const struct blob_group *)a)->first, ((const struct blob_group *)b)->first);
}

static int check_blobs(struct ps_store *s, const struct ps_project *p, struct ps_verify_report *r,
		       struct files *f, int64_t must_hold)
{
	struct ps_file *v = ps_calloc(f->n + 1, sizeof(*v));
	struct blob_group *g = ps_calloc(f->n + 1, sizeof(*g));
	size_t n = 0, ng = 0;
	int rc = 0;

	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].mode != PS_MODE_COMMIT)
			v[n++] = f->v[i]; /* borrowed paths */
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_file_sha);
	/* Each blob once, read in the order of its first path: small blobs are packed with
	 * their neighbours in the tree (store/blobcodec.h PS_BLOB_PACKED), so path order reads
	 * each pack once where id order would decode one per blob. */
	for (size_t i = 0; i < n;) {
		size_t end = i + 1;

		while (end < n && strcmp(v[end].sha, v[i].sha) == 0)
			end++;
		g[ng++] = (struct blob_group){ i, end, v[i].path };
		i = end;
	}
	if (ng > 1)
		qsort(g, ng, sizeof(*g), cmp_group_path);
	for (size_t k = 0; k < ng; k++) {
		size_t i = g[k].start, end = g[k].end;
		void *data = NULL;
		size_t len = 0;
		char got[PS_SHA_HEX];
		const char *code = NULL;
		char *why = NULL;

		/* One blob, one size: over the project's limit it is not this project's to check,
		 * whoever stored it. */
		rc = ps_project_blob_get(s, p, v[i].sha, v[i].size, &data, &len);
		if (rc == PS_ENOTFOUND && ps_project_blob_lost(must_hold, v[i].size)) {
			ps_error_clear();
			code = "blob_missing";
			why = ps_asprintf("blob %s (%lld bytes, within the project's size limit) is "
					  "not in the store", v[i].sha, (long long)v[i].size);
			rc = 0;
		} else if (rc == PS_ENOTFOUND) {
			ps_error_clear();
			r->blobs_not_stored += (int64_t)(end - i);
			rc = 0;
		} else if (rc < 0) {
			if (rc == PS_ENOMEM)
				break;
			code = "blob_unreadable";
			why = ps_strdup(ps_error_message());
			ps_error_clear();
			rc = 0;
		} else {
			r->blobs_checked++;
			ps_git_blob_sha(data, len, got);
			if (strcmp(got, v[i].sha) != 0) {
				code = "blob_mismatch";
				why = ps_asprintf("the stored content of blob %s hashes to %s", v[i].sha,
						  got);
			}
		}
		free(data);
		for (size_t j = i; code && j < end; j++)
			problem(r, ps_strdup(v[j].path), code, ps_strdup(why));
		free(why);
	}
	free(g);
	free(v);
	return rc;
}

static int cmp_problem(const void *a, const void *b)
{
	const struct ps_verify_problem *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c ? c : strcmp(x->code, y->code);
}

static int resolve(struct ps_store *s, const struct ps_project *p, int64_t at, struct ps_sync **y)
{
	int rc;

	if (at <= 0) {
		rc = ps_store_sync_last_succeeded(s, p->id, 0, y);
		if (rc == PS_ENOTFOUND)
			return ps_error_set(PS_ENOTFOUND, "no_snapshot", "project %s has no snapshot "
					    "yet: run 'projsync sync %s'", p->name, p->name);
		return rc;
	}
	if ((rc = ps_store_sync_get(s, at, y)) < 0) {
		if (rc == PS_ENOTFOUND)
			ps_error_set(rc, "sync_not_found", "sync %lld not found", (long long)at);
		return rc;
	}
	if ((*y)->project_id != p->id)
		rc = ps_error_set(PS_ENOTFOUND, "sync_not_found", "sync %lld is not a sync of "
				  "project %s", (long long)at, p->name);
	else if ((*y)->status != PS_SYNC_SUCCEEDED)
		rc = ps_error_set(PS_ECONFLICT, "not_succeeded", "sync %lld of %s is %s: only a "
				  "succeeded sync has a snapshot", (long long)at, p->name,
				  ps_sync_status_name((*y)->status));
	if (rc < 0) {
		ps_sync_free(*y);
		*y = NULL;
	}
	return rc;
}

int ps_verify(struct ps_store *s, const struct ps_project *p, int64_t at, bool blobs,
	      struct ps_verify_report *out)
{
	struct ps_sync *y = NULL;
	struct files files = { 0 };
	struct dirs stored = { 0 };
	struct ps_tree_dir *mine = NULL;
	size_t nmine = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = resolve(s, p, at, &y)) < 0)
		return rc;
	out->project = ps_strdup(p->name);
	out->sync_id = y->id;
	out->commit = ps_strdup(y->commit);
	out->tree = ps_strdup(y->commit ? y->tree : NULL);
	out->blobs = blobs;
	if ((rc = ps_store_snapshot_each(s, p->id, y->id, NULL, collect, &files)) < 0 ||
	    (rc = ps_store_dir_trees_each(s, p->id, y->id, collect_dir, &stored)) < 0)
		goto out;
	out->files = (int64_t)files.n;
	if ((rc = ps_tree_build(files.v, files.n, &mine, &nmine)) < 0) {
		/* Rows that make no tree (an empty path component): a problem of the snapshot. */
		problem(out, ps_strdup("/"), "tree_mismatch", ps_strdup(ps_error_message()));
		ps_error_clear();
		rc = 0;
	} else {
		const struct ps_tree_dir *root = ps_tree_dirs_find(mine, nmine, "");
		snprintf(out->computed, sizeof(out->computed), "%s", root ? root->sha : "");
		/* An empty repository has no commit to compare with: sound when it has no file. */
		if (!out->commit && files.n)
			problem(out, ps_strdup("/"), "tree_mismatch",
				ps_strdup("the sync saw an empty repository but has files"));
		else if (out->commit && !out->tree)
			problem(out, ps_strdup("/"), "tree_mismatch",
				ps_strdup("the sync recorded no tree for its commit"));
		else if (out->commit && !stored.n && strcmp(out->computed, out->tree) != 0)
			problem(out, ps_strdup("/"), "tree_mismatch",
				ps_asprintf("the files hash to tree %s, the commit's tree is %s",
					    out->computed, out->tree));
		else if (out->commit && stored.n)
			check_dirs(out, mine, nmine, &stored);
	}
	out->directories = out->commit ? (int64_t)nmine : 0;
	out->directories_stored = stored.n > 0;
	if (blobs && (rc = check_blobs(s, p, out, &files, ps_project_blob_bound(s, p, y->id))) < 0)
		goto out;
	if (out->nproblems > 1)
		qsort(out->problems, out->nproblems, sizeof(*out->problems), cmp_problem);
out:
	for (size_t i = 0; i < files.n; i++)
		free(files.v[i].path);
	free(files.v);
	ps_tree_dirs_free(stored.v, stored.n);
	ps_tree_dirs_free(mine, nmine);
	ps_sync_free(y);
	if (rc < 0)
		ps_verify_report_dispose(out);
	return rc;
}

void ps_verify_report_dispose(struct ps_verify_report *r)
{
	free(r->project);
	free(r->commit);
	free(r->tree);
	for (size_t i = 0; i < r->nproblems; i++) {
		free(r->problems[i].path);
		free(r->problems[i].code);
		free(r->problems[i].message);
	}
	free(r->problems);
	memset(r, 0, sizeof(*r));
}

json_t *ps_verify_report_to_json(const struct ps_verify_report *r)
{
	json_t *problems = json_array();
	json_t *j = json_object();

	for (size_t i = 0; i < r->nproblems; i++) {
		json_t *p = json_object();
		json_object_set_new(p, "path", ps_json_string(r->problems[i].path));
		json_object_set_new(p, "problem", json_string(r->problems[i].code));
		json_object_set_new(p, "message", ps_json_string(r->problems[i].message));
		json_array_append_new(problems, p);
	}
	json_object_set_new(j, "project", ps_json_string(r->project));
	json_object_set_new(j, "sync_id", json_integer(r->sync_id));
	json_object_set_new(j, "sound", json_boolean(r->nproblems == 0));
	json_object_set_new(j, "commit", r->commit ? json_string(r->commit) : json_null());
	json_object_set_new(j, "tree", r->tree ? json_string(r->tree) : json_null());
	json_object_set_new(j, "computed_tree",
			    r->commit && r->computed[0] ? json_string(r->computed) : json_null());
	json_object_set_new(j, "files", json_integer(r->files));
	json_object_set_new(j, "directories", json_integer(r->directories));
	json_object_set_new(j, "directories_stored", json_boolean(r->directories_stored));
	json_object_set_new(j, "blobs_checked", r->blobs ? json_integer(r->blobs_checked)
							  : json_null());
	json_object_set_new(j, "blobs_not_stored", r->blobs ? json_integer(r->blobs_not_stored)
							     : json_null());
	json_object_set_new(j, "problems", problems);
	return j;
}

char *ps_verify_summary(const struct ps_verify_report *r)
{
	char blobs[128] = "";

	if (r->blobs)
		snprintf(blobs, sizeof(blobs), ", %lld blob%s verified%s", (long long)r->blobs_checked,
			 r->blobs_checked == 1 ? "" : "s",
			 r->blobs_not_stored ? " (some files kept as metadata only)" : "");
	if (!r->commit)
		return ps_asprintf("%s at sync %lld: sound (an empty repository)", r->project,
				   (long long)r->sync_id);
	return ps_asprintf("%s at sync %lld: sound, tree %.12s of commit %.12s matches its %lld "
			   "file%s in %lld director%s%s", r->project, (long long)r->sync_id,
			   r->tree, r->commit, (long long)r->files, r->files == 1 ? "" : "s",
			   (long long)r->directories, r->directories == 1 ? "y" : "ies", blobs);
}
