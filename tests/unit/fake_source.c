/*
 * The in-memory test source (see fake_source.h).
 */
#include "fake_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/diff.h"
#include "model/tree.h"
#include "util/error.h"

struct object {
	char sha[PS_SHA_HEX];
	bool is_tree;
	struct ps_tree tree;   /* trees */
	char *data;            /* blobs */
	size_t len;
	bool reachable;
};

struct fake_source {
	struct ps_source base;
	struct object *objs;
	size_t nobjs;
	char head_commit[PS_SHA_HEX];
	char head_tree[PS_SHA_HEX];
	bool has_head;
	size_t tree_reads, blob_reads;
	int fail_fetch_after;
	bool corrupt;
	bool fast;             /* offer the optional changes/list_tree ops */
	bool fast_unsupported; /* ... but answer PS_ENOTSUPP */
	size_t branch_calls, changes_calls, list_calls;
	struct ps_head commits[16]; /* commit id -> tree, for `changes` */
	size_t ncommits;
	struct { char name[32]; struct ps_head head; } branches[8]; /* besides "main" */
	size_t nbranches;
	char default_branch[32];    /* "" = "main" */
};

static struct fake_source *registered;

static struct object *find(struct fake_source *f, const char *sha)
{
	for (size_t i = 0; i < f->nobjs; i++)
		if (strcmp(f->objs[i].sha, sha) == 0)
			return &f->objs[i];
	return NULL;
}

static struct object *add_obj(struct fake_source *f, const char *sha)
{
	struct object *o = find(f, sha);
	if (o)
		return NULL;
	f->objs = ps_realloc(f->objs, (f->nobjs + 1) * sizeof(*f->objs));
	o = &f->objs[f->nobjs++];
	memset(o, 0, sizeof(*o));
	memcpy(o->sha, sha, PS_SHA_HEX);
	return o;
}

static void blob(struct fake_source *f, const char *content, char sha[PS_SHA_HEX])
{
	struct object *o;
	ps_git_blob_sha(content, strlen(content), sha);
	if ((o = add_obj(f, sha))) {
		o->data = ps_strdup(content);
		o->len = strlen(content);
	}
}

/* Builds the tree for files whose paths start with `prefix`; returns its id. */
static void build_tree(struct fake_source *f, const struct fake_file *files, size_t n,
		       const char *prefix, char sha[PS_SHA_HEX])
{
	struct ps_tree t = { 0 };
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < n; i++) {
		const char *rel = files[i].path;
		const char *slash;
		char *name;
		bool dup = false;

		if (strncmp(rel, prefix, plen) != 0)
			continue;
		rel += plen;
		slash = strchr(rel, '/');
		name = slash ? ps_strndup(rel, (size_t)(slash - rel)) : ps_strdup(rel);
		for (size_t k = 0; k < t.n; k++)
			if (strcmp(t.entries[k].name, name) == 0)
				dup = true;
		if (dup) {
			free(name);
			continue;
		}
		t.entries = ps_realloc(t.entries, (t.n + 1) * sizeof(*t.entries));
		struct ps_tree_entry *e = &t.entries[t.n++];
		memset(e, 0, sizeof(*e));
		e->name = name;
		e->size = -1;
		if (slash) {
			char *sub = ps_asprintf("%s%s/", prefix, name);
			e->mode = PS_MODE_TREE;
			build_tree(f, files, n, sub, e->sha);
			free(sub);
		} else {
			const char *c = files[i].content;
			if (!strncmp(c, "@sub:", 5)) {
				e->mode = PS_MODE_COMMIT;
				ps_git_blob_sha(c, strlen(c), e->sha);
			} else {
				e->mode = !strncmp(c, "@link:", 6) ? PS_MODE_LINK
					  : !strncmp(c, "@exec:", 6) ? PS_MODE_EXEC : PS_MODE_FILE;
				if (e->mode != PS_MODE_FILE)
					c += 6;
				blob(f, c, e->sha);
				e->size = (int64_t)strlen(c);
			}
		}
	}
	{
		/* Real git tree ids: the pipeline checks every snapshot against them. */
		unsigned char *body = NULL;
		size_t len = 0;
		if (ps_tree_serialize(&t, &body, &len) < 0)
			abort();
		ps_tree_hash(body, len, sha);
		free(body);
	}
	struct object *o = add_obj(f, sha);
	if (o) {
		o->is_tree = true;
		o->tree = t;
	} else {
		ps_tree_dispose(&t);
	}
}

static void list_into(struct fake_source *f, const char *tree, const char *prefix,
		      struct ps_file **v, size_t *n)
{
	struct object *o = find(f, tree);
	for (size_t i = 0; o && i < o->tree.n; i++) {
		const struct ps_tree_entry *e = &o->tree.entries[i];
		char *path = ps_asprintf("%s%s", prefix, e->name);
		if (e->mode == PS_MODE_TREE) {
			char *sub = ps_asprintf("%s/", path);
			list_into(f, e->sha, sub, v, n);
			free(sub);
			free(path);
			continue;
		}
		*v = ps_realloc(*v, (*n + 1) * sizeof(**v));
		(*v)[*n] = (struct ps_file){ .path = path, .mode = e->mode, .size = e->size };
		memcpy((*v)[*n].sha, e->sha, PS_SHA_HEX);
		(*n)++;
	}
}

static int cmp_fpath(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

static void list_sorted(struct fake_source *f, const char *tree, struct ps_file **v, size_t *n)
{
	*v = NULL;
	*n = 0;
	list_into(f, tree, "", v, n);
	if (*n > 1)
		qsort(*v, *n, sizeof(**v), cmp_fpath);
}

static void free_files(struct ps_file *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

static int f_list_tree(struct ps_source *src, const char *tree, struct ps_file **out, size_t *n)
{
	struct fake_source *f = (struct fake_source *)src;
	f->list_calls++;
	if (f->fast_unsupported)
		return ps_error_set(PS_ENOTSUPP, NULL, "not now");
	list_sorted(f, tree, out, n);
	return 0;
}

static int f_changes(struct ps_source *src, const char *base_commit, const struct ps_head *head,
		     struct ps_change **out, size_t *n)
{
	struct fake_source *f = (struct fake_source *)src;
	const char *base_tree = NULL;
	struct ps_file *a, *b;
	size_t na, nb;
	int rc;

	f->changes_calls++;
	if (f->fast_unsupported)
		return ps_error_set(PS_ENOTSUPP, NULL, "not now");
	for (size_t i = 0; i < f->ncommits; i++)
		if (strcmp(f->commits[i].commit, base_commit) == 0)
			base_tree = f->commits[i].tree;
	if (!base_tree)
		return ps_error_set(PS_ENOTSUPP, NULL, "unknown base");
	list_sorted(f, base_tree, &a, &na);
	list_sorted(f, head->tree, &b, &nb);
	rc = ps_diff_files(a, na, b, nb, out, n);
	free_files(a, na);
	free_files(b, nb);
	return rc;
}

static const char *default_name(const struct fake_source *f)
{
	return f->default_branch[0] ? f->default_branch : "main";
}

static int f_branches(struct ps_source *src, struct ps_strv *out, char **def)
{
	struct fake_source *f = (struct fake_source *)src;
	f->branch_calls++;
	if (f->has_head && out) {
		ps_strv_push(out, "main");
		for (size_t i = 0; i < f->nbranches; i++)
			ps_strv_push(out, f->branches[i].name);
	}
	*def = f->has_head ? ps_strdup(default_name(f)) : NULL;
	return 0;
}

static int f_resolve(struct ps_source *src, const char *branch, const char *known,
		     struct ps_head *out)
{
	struct fake_source *f = (struct fake_source *)src;
	src->requests++;
	if (!f->has_head)
		return ps_error_set(PS_EEMPTY, NULL, "repository is empty");
	if (!branch)
		branch = default_name(f);
	for (size_t i = 0; i < f->nbranches; i++)
		if (strcmp(branch, f->branches[i].name) == 0) {
			*out = f->branches[i].head;
			return 0;
		}
	if (strcmp(branch, "main") != 0)
		return ps_error_set(PS_ENOTFOUND, "branch_not_found", "branch '%s' not found", branch);
	memcpy(out->commit, f->head_commit, PS_SHA_HEX);
	memcpy(out->tree, f->head_tree, PS_SHA_HEX);
	return 0;
}

static int f_read_tree(struct ps_source *src, const char *sha, struct ps_tree *out)
{
	struct fake_source *f = (struct fake_source *)src;
	struct object *o = find(f, sha);

	src->requests++;
	f->tree_reads++;
	if (!o || !o->is_tree)
		return ps_error_set(PS_ENOTFOUND, NULL, "tree %s not found", sha);
	out->n = o->tree.n;
	out->entries = ps_calloc(o->tree.n, sizeof(*out->entries));
	for (size_t i = 0; i < o->tree.n; i++) {
		out->entries[i] = o->tree.entries[i];
		out->entries[i].name = ps_strdup(o->tree.entries[i].name);
	}
	return 0;
}

static int f_fetch(struct ps_source *src, const char *const *shas, size_t n, ps_blob_cb cb,
		   void *ud)
{
	struct fake_source *f = (struct fake_source *)src;

	src->requests++;
	if (f->fail_fetch_after > 0 && --f->fail_fetch_after == 0)
		return ps_error_set(PS_EUPSTREAM, "upstream", "fake upstream failure");
	for (size_t i = 0; i < n; i++) {
		struct object *o = find(f, shas[i]);
		int rc;
		if (!o || o->is_tree)
			return ps_error_set(PS_ENOTFOUND, NULL, "blob %s not found", shas[i]);
		f->blob_reads++;
		rc = cb(ud, shas[i], f->corrupt ? "corrupted!" : o->data, f->corrupt ? 10 : o->len);
		if (rc)
			return rc;
	}
	return 0;
}

static void f_free(struct ps_source *src)
{
	(void)src; /* owned by the test through fake_free */
}

static const struct ps_source_ops fake_ops = {
	.kind = "fake",
	.branches = f_branches,
	.resolve = f_resolve,
	.read_tree = f_read_tree,
	.fetch_blobs = f_fetch,
	.free = f_free,
};

static const struct ps_source_ops fake_fast_ops = {
	.kind = "fake",
	.branches = f_branches,
	.resolve = f_resolve,
	.read_tree = f_read_tree,
	.fetch_blobs = f_fetch,
	.free = f_free,
	.changes = f_changes,
	.list_tree = f_list_tree,
};

void fake_enable_fast_paths(struct fake_source *f, bool on, bool unsupported)
{
	f->fast = on;
	f->fast_unsupported = unsupported;
	f->base.ops = on ? &fake_fast_ops : &fake_ops;
}

size_t fake_branch_calls(const struct fake_source *f) { return f->branch_calls; }
size_t fake_changes_calls(const struct fake_source *f) { return f->changes_calls; }
size_t fake_list_calls(const struct fake_source *f) { return f->list_calls; }

struct fake_source *fake_new(void)
{
	struct fake_source *f = ps_calloc(1, sizeof(*f));
	f->base.ops = &fake_ops;
	return f;
}

const char *fake_commit(struct fake_source *f, const char *commit_name, const struct fake_file *files,
			size_t n)
{
	build_tree(f, files, n, "", f->head_tree);
	ps_git_blob_sha(commit_name, strlen(commit_name), f->head_commit);
	f->has_head = true;
	if (f->ncommits < sizeof(f->commits) / sizeof(*f->commits)) {
		memcpy(f->commits[f->ncommits].commit, f->head_commit, PS_SHA_HEX);
		memcpy(f->commits[f->ncommits].tree, f->head_tree, PS_SHA_HEX);
		f->ncommits++;
	}
	return f->head_tree;
}

void fake_branch(struct fake_source *f, const char *name)
{
	size_t i = 0;

	while (i < f->nbranches && strcmp(f->branches[i].name, name) != 0)
		i++;
	if (i == f->nbranches && f->nbranches < sizeof(f->branches) / sizeof(*f->branches))
		f->nbranches++;
	snprintf(f->branches[i].name, sizeof(f->branches[i].name), "%s", name);
	memcpy(f->branches[i].head.commit, f->head_commit, PS_SHA_HEX);
	memcpy(f->branches[i].head.tree, f->head_tree, PS_SHA_HEX);
}

void fake_set_default(struct fake_source *f, const char *name)
{
	snprintf(f->default_branch, sizeof(f->default_branch), "%s", name ? name : "");
}

static void mark(struct fake_source *f, const char *sha)
{
	struct object *o = find(f, sha);
	if (!o || o->reachable)
		return;
	o->reachable = true;
	if (o->is_tree)
		for (size_t i = 0; i < o->tree.n; i++)
			mark(f, o->tree.entries[i].sha);
}

void fake_gc(struct fake_source *f)
{
	size_t keep = 0;
	for (size_t i = 0; i < f->nobjs; i++)
		f->objs[i].reachable = false;
	if (f->has_head)
		mark(f, f->head_tree);
	for (size_t i = 0; i < f->nobjs; i++) {
		if (f->objs[i].reachable) {
			f->objs[keep++] = f->objs[i];
		} else {
			ps_tree_dispose(&f->objs[i].tree);
			free(f->objs[i].data);
		}
	}
	f->nobjs = keep;
}

struct ps_source *fake_as_source(struct fake_source *f) { return &f->base; }
size_t fake_tree_reads(const struct fake_source *f) { return f->tree_reads; }
size_t fake_blob_reads(const struct fake_source *f) { return f->blob_reads; }
void fake_reset_counts(struct fake_source *f) { f->tree_reads = f->blob_reads = 0; }
void fake_fail_fetch_after(struct fake_source *f, int n) { f->fail_fetch_after = n; }
void fake_corrupt_blobs(struct fake_source *f, bool on) { f->corrupt = on; }

void fake_lie(struct fake_source *f, const char *path, uint32_t mode, const char *sha)
{
	char tree[PS_SHA_HEX];
	const char *p = path;

	memcpy(tree, f->head_tree, PS_SHA_HEX);
	for (;;) {
		struct object *o = find(f, tree);
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		struct ps_tree_entry *e = NULL;

		for (size_t i = 0; o && i < o->tree.n; i++)
			if (strlen(o->tree.entries[i].name) == len &&
			    strncmp(o->tree.entries[i].name, p, len) == 0)
				e = &o->tree.entries[i];
		if (!e)
			abort();
		if (slash) {
			memcpy(tree, e->sha, PS_SHA_HEX);
			p = slash + 1;
			continue;
		}
		if (mode)
			e->mode = mode;
		if (sha)
			snprintf(e->sha, PS_SHA_HEX, "%s", sha);
		return;
	}
}

void fake_free(struct fake_source *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nobjs; i++) {
		ps_tree_dispose(&f->objs[i].tree);
		free(f->objs[i].data);
	}
	free(f->objs);
	free(f);
}

void fake_register(struct fake_source *f) { registered = f; }

int fake_open(struct ps_source **out, const char *spec, const struct ps_source_opts *opts)
{
	(void)spec;
	(void)opts;
	*out = &registered->base;
	return 0;
}
