/*
 * The JSON parsers of github.h: trees and compares as GitHub answers them, bounded and checked,
 * and the mapping of a compare to changes. They know nothing of HTTP.
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
#include "util/error.h"
#include "util/util.h"

int gh_malformed(const char *what, const char *why)
{
	return ps_error_set(PS_EUPSTREAM, "malformed_json", "GitHub returned malformed JSON for %s: %s",
			    what, why);
}

json_t *gh_load_json(const char *json, size_t len, const char *what, int *rc)
{
	json_error_t err;
	json_t *root = json_loadb(json ? json : "", len, 0, &err);

	if (!root) {
		char why[256];
		snprintf(why, sizeof(why), "%s (line %d)", err.text, err.line);
		*rc = gh_malformed(what, why);
	}
	return root;
}

/* A 40-hex SHA from a JSON string member (lowercased copies are not accepted: GitHub always
 * writes lowercase). */
bool gh_json_sha(json_t *obj, const char *key, char out[PS_SHA_HEX])
{
	const char *v = json_string_value(json_object_get(obj, key));

	if (!v || strlen(v) != 40 || !ps_sha_valid(v))
		return false;
	memcpy(out, v, PS_SHA_HEX);
	return true;
}

static bool parse_mode(const char *v, uint32_t *out)
{
	uint32_t m = 0;

	if (!v || !*v || strlen(v) > 7)
		return false;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '7')
			return false;
		m = m * 8 + (uint32_t)(*p - '0');
	}
	*out = m;
	return true;
}

/* A path git could hold: non-empty components, none "." or "..", no NUL. */
static bool path_ok(const char *p, size_t len)
{
	size_t start = 0;

	if (len == 0 || memchr(p, '\0', len))
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '/') {
			size_t cl = i - start;
			if (cl == 0 || (cl == 1 && p[start] == '.') ||
			    (cl == 2 && p[start] == '.' && p[start + 1] == '.'))
				return false;
			start = i + 1;
		}
	}
	return true;
}

void ps_github_tree_dispose(struct ps_github_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int cmp_entry_ptr(const void *a, const void *b)
{
	return strcmp((*(const struct ps_github_tree_entry *const *)a)->path,
		      (*(const struct ps_github_tree_entry *const *)b)->path);
}

/* The listed entry at `path` (of length len), or NULL; `v` sorted by path. */
static const struct ps_github_tree_entry *find_entry(const struct ps_github_tree_entry **v,
						     size_t n, const char *path, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(v[mid]->path, path, len);
		if (c == 0 && v[mid]->path[len] != '\0')
			c = 1;
		if (c == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A listing is a tree: each path once, and nothing inside an entry that is not a tree ("a" a
 * file and "a/b" too). The pipeline takes a listing as a snapshot, and only a broken or hostile
 * answer can break these (two versions of one path, a file that is also a directory). */
static int tree_shape_ok(const struct ps_github_tree *t, const char *what)
{
	const struct ps_github_tree_entry **v;
	char why[400];
	int rc = 0;

	if (t->n < 2)
		return 0;
	v = ps_calloc(t->n, sizeof(*v));
	for (size_t i = 0; i < t->n; i++)
		v[i] = &t->v[i];
	qsort(v, t->n, sizeof(*v), cmp_entry_ptr);
	for (size_t i = 1; i < t->n && rc == 0; i++) {
		if (strcmp(v[i - 1]->path, v[i]->path) == 0) {
			snprintf(why, sizeof(why), "path '%.200s' is listed twice", v[i]->path);
			rc = gh_malformed(what, why);
		}
	}
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		const char *slash = strrchr(v[i]->path, '/');
		const struct ps_github_tree_entry *parent =
			slash ? find_entry(v, t->n, v[i]->path, (size_t)(slash - v[i]->path)) : NULL;
		if (parent && parent->type != 't') {
			snprintf(why, sizeof(why), "path '%.200s' is inside '%.80s', which is not a tree",
				 v[i]->path, parent->path);
			rc = gh_malformed(what, why);
		}
	}
	free(v);
	return rc;
}

int ps_github_tree_parse(struct ps_github_tree *out, const char *json, size_t len,
			 const char *what)
{
	struct ps_github_tree t = {0};
	json_t *root, *arr;
	int rc = 0;

	if (!(root = gh_load_json(json, len, what, &rc)))
		return rc;
	arr = json_object_get(root, "tree");
	if (!json_is_object(root) || !json_is_array(arr) || !gh_json_sha(root, "sha", t.sha)) {
		rc = gh_malformed(what, "expected an object with 'sha' and a 'tree' array");
		goto cleanup;
	}
	t.truncated = json_is_true(json_object_get(root, "truncated"));
	t.v = ps_calloc(json_array_size(arr) + 1, sizeof(*t.v));
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *e = json_array_get(arr, i);
		json_t *jp = json_object_get(e, "path");
		const char *type = json_string_value(json_object_get(e, "type"));
		struct ps_github_tree_entry *te = &t.v[t.n];
		json_t *jsize = json_object_get(e, "size");

		if (!json_is_string(jp) || !path_ok(json_string_value(jp), json_string_length(jp)) ||
		    !type || !parse_mode(json_string_value(json_object_get(e, "mode")), &te->mode) ||
		    !gh_json_sha(e, "sha", te->sha)) {
			rc = gh_malformed(what, "a tree entry lacks a valid path, mode, type or sha");
			goto cleanup;
		}
		if (strcmp(type, "blob") == 0)
			te->type = 'b';
		else if (strcmp(type, "tree") == 0)
			te->type = 't';
		else if (strcmp(type, "commit") == 0)
			te->type = 'c';
		else {
			rc = gh_malformed(what, "a tree entry has an unknown type");
			goto cleanup;
		}
		/* git's reading of the mode (a crafted tree's 120777 is a symlink, 100611 a file);
		 * an entry whose type then contradicts its mode cannot be read as either. */
		te->mode = ps_mode_canonical(te->mode);
		if (ps_mode_type(te->mode)[0] != te->type) {
			char msg[160];
			snprintf(msg, sizeof(msg), "entry '%.80s' has mode %s but is a %s",
				 json_string_value(jp), json_string_value(json_object_get(e, "mode")),
				 type);
			rc = ps_error_set(PS_EUPSTREAM, "bad_tree", "%s: %s", what, msg);
			goto cleanup;
		}
		te->size = -1;
		if (te->type == 'b') {
			if (!json_is_integer(jsize) || json_integer_value(jsize) < 0) {
				rc = gh_malformed(what, "a blob entry lacks its size");
				goto cleanup;
			}
			te->size = json_integer_value(jsize);
		}
		te->path = ps_strdup(json_string_value(jp));
		t.n++;
	}
	if ((rc = tree_shape_ok(&t, what)) < 0)
		goto cleanup;
	*out = t;
	memset(&t, 0, sizeof(t));
cleanup:
	ps_github_tree_dispose(&t);
	json_decref(root);
	return rc;
}

void ps_github_compare_dispose(struct ps_github_compare *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nfiles; i++) {
		free(c->files[i].filename);
		free(c->files[i].previous);
	}
	free(c->files);
	memset(c, 0, sizeof(*c));
}

static bool file_status(const char *s, enum ps_github_file_status *out)
{
	static const char *const names[] = { "added", "removed", "modified", "renamed",
					     "copied", "changed", "unchanged" };

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum ps_github_file_status)i;
			return true;
		}
	}
	return false;
}

int ps_github_compare_parse(struct ps_github_compare *out, const char *json, size_t len,
			    const char *what)
{
	struct ps_github_compare c = {0};
	json_t *root, *files, *commits;
	const char *status;
	int rc = 0;

	if (!(root = gh_load_json(json, len, what, &rc)))
		return rc;
	status = json_string_value(json_object_get(root, "status"));
	if (!json_is_object(root) || !status || strlen(status) >= sizeof(c.status)) {
		rc = gh_malformed(what, "expected an object with a 'status'");
		goto cleanup;
	}
	snprintf(c.status, sizeof(c.status), "%s", status);
	commits = json_object_get(root, "commits");
	if (json_is_array(commits) && json_array_size(commits) > 0) {
		json_t *last = json_array_get(commits, json_array_size(commits) - 1);
		if (!gh_json_sha(last, "sha", c.head_commit)) {
			rc = gh_malformed(what, "a commit lacks its sha");
			goto cleanup;
		}
		gh_json_sha(json_object_get(json_object_get(last, "commit"), "tree"), "sha",
			 c.head_tree);
	}
	files = json_object_get(root, "files");
	if (json_is_array(files)) {
		c.has_files = true;
		c.files = ps_calloc(json_array_size(files) + 1, sizeof(*c.files));
		for (size_t i = 0; i < json_array_size(files); i++) {
			json_t *f = json_array_get(files, i);
			json_t *jn = json_object_get(f, "filename");
			json_t *jp = json_object_get(f, "previous_filename");
			json_t *jc = json_object_get(f, "changes");
			struct ps_github_compare_file *cf = &c.files[c.nfiles];

			if (!json_is_string(jn) ||
			    !path_ok(json_string_value(jn), json_string_length(jn)) ||
			    !file_status(json_string_value(json_object_get(f, "status")),
					 &cf->status) ||
			    (jp && !json_is_null(jp) &&
			     (!json_is_string(jp) ||
			      !path_ok(json_string_value(jp), json_string_length(jp))))) {
				rc = gh_malformed(what, "a file lacks a valid filename or status");
				goto cleanup;
			}
			if (!gh_json_sha(f, "sha", cf->sha))
				cf->sha[0] = '\0';
			cf->changes = json_is_integer(jc) ? json_integer_value(jc) : -1;
			cf->filename = ps_strdup(json_string_value(jn));
			if (json_is_string(jp))
				cf->previous = ps_strdup(json_string_value(jp));
			c.nfiles++;
		}
	}
	*out = c;
	memset(&c, 0, sizeof(c));
cleanup:
	ps_github_compare_dispose(&c);
	json_decref(root);
	return rc;
}

bool ps_github_compare_usable(const struct ps_github_compare *c)
{
	if (strcmp(c->status, "identical") == 0)
		return true;
	return strcmp(c->status, "ahead") == 0 && c->has_files && c->nfiles < COMPARE_FILES_MAX;
}

static int cmp_file_key(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const struct ps_file *)elem)->path);
}

static int cmp_change(const void *a, const void *b)
{
	const struct ps_change *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	/* A deletion before an addition of the same path, so that they merge. */
	int rx = x->status == PS_CHANGE_DELETED ? -1 : (int)x->status;
	int ry = y->status == PS_CHANGE_DELETED ? -1 : (int)y->status;
	return c ? c : rx - ry;
}

struct change_list {
	struct ps_change *v;
	size_t n, cap;
};

static struct ps_change *change_push(struct change_list *l, enum ps_change_status st,
				     const char *path)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	struct ps_change *c = &l->v[l->n++];
	memset(c, 0, sizeof(*c));
	c->status = st;
	c->path = ps_strdup(path);
	c->size = -1;
	return c;
}

/* Fills the new side of `c` from the head's entry for its path. */
static int change_from_head(struct ps_change *c, const struct ps_github_compare_file *f,
			    const struct ps_file *head, size_t nhead)
{
	const struct ps_file *e;

	if (!head) {
		/* Paths and blob ids only, the mode left for the caller to settle. */
		if (!f->sha[0])
			return ps_error_set(PS_ENOTSUPP, NULL, "compare names no blob for %s",
					    c->path);
		memcpy(c->sha, f->sha, PS_SHA_HEX);
		return 0;
	}
	e = bsearch(c->path, head, nhead, sizeof(*head), cmp_file_key);
	if (!e)
		return ps_error_set(PS_ENOTSUPP, NULL, "compare names %s, absent from the head tree",
				    c->path);
	/* A blob SHA GitHub names must be the tree's (submodules may be written differently). */
	if (f->sha[0] && (e->mode & 0170000u) != PS_MODE_COMMIT && strcmp(f->sha, e->sha) != 0)
		return ps_error_set(PS_ENOTSUPP, NULL, "compare and tree disagree about %s",
				    c->path);
	memcpy(c->sha, e->sha, PS_SHA_HEX);
	c->mode = e->mode;
	c->size = e->size;
	return 0;
}

int ps_github_compare_changes(const struct ps_github_compare *c, const struct ps_file *head,
			      size_t nhead, struct ps_change **out, size_t *n)
{
	struct change_list l = {0};
	size_t w = 0;
	int rc = 0;

	if (!ps_github_compare_usable(c))
		return ps_error_set(PS_ENOTSUPP, NULL, "compare is not a fast-forward below %d files",
				    COMPARE_FILES_MAX);
	for (size_t i = 0; i < c->nfiles && rc == 0; i++) {
		const struct ps_github_compare_file *f = &c->files[i];
		struct ps_change *ch;

		switch (f->status) {
		case PS_GH_UNCHANGED:
			break;
		case PS_GH_REMOVED:
			ch = change_push(&l, PS_CHANGE_DELETED, f->filename);
			memcpy(ch->previous_sha, f->sha, PS_SHA_HEX);
			break;
		case PS_GH_RENAMED:
			if (f->previous && strcmp(f->previous, f->filename) != 0) {
				ch = change_push(&l, PS_CHANGE_DELETED, f->previous);
				/* Without edits the old blob is the new one: an exact rename. */
				if (f->changes == 0)
					memcpy(ch->previous_sha, f->sha, PS_SHA_HEX);
			}
			/* fall through */
		case PS_GH_ADDED:
		case PS_GH_COPIED:
			ch = change_push(&l, PS_CHANGE_ADDED, f->filename);
			rc = change_from_head(ch, f, head, nhead);
			break;
		case PS_GH_MODIFIED:
		case PS_GH_CHANGED:
			ch = change_push(&l, f->status == PS_GH_CHANGED ? PS_CHANGE_TYPE_CHANGED
								       : PS_CHANGE_MODIFIED,
					 f->filename);
			rc = change_from_head(ch, f, head, nhead);
			break;
		}
	}
	if (rc < 0)
		goto fail;
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_change);
	/* One change per path: a deletion and an addition of one path are a modification; any
	 * other repeat means the compare is not what we think it is. */
	for (size_t i = 0; i < l.n; i++) {
		if (w > 0 && strcmp(l.v[w - 1].path, l.v[i].path) == 0) {
			struct ps_change *prev = &l.v[w - 1];
			if (prev->status == PS_CHANGE_DELETED && l.v[i].status == PS_CHANGE_ADDED) {
				char psha[PS_SHA_HEX];
				memcpy(psha, prev->previous_sha, PS_SHA_HEX);
				ps_change_dispose(prev);
				*prev = l.v[i];
				prev->status = PS_CHANGE_MODIFIED;
				memcpy(prev->previous_sha, psha, PS_SHA_HEX);
				continue;
			}
			rc = ps_error_set(PS_ENOTSUPP, NULL, "compare names %s twice", l.v[i].path);
			for (size_t j = i; j < l.n; j++)
				ps_change_dispose(&l.v[j]);
			l.n = w;
			goto fail;
		}
		l.v[w++] = l.v[i];
	}
	*out = l.v;
	*n = w;
	return 0;
fail:
	ps_changes_free(l.v, l.n);
	return rc;
}
