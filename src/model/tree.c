/*
 * Git tree ids from a snapshot's rows (see tree.h).
 */
#include "model/tree.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

struct bytes {
	unsigned char *p;
	size_t n, cap;
};

static void bytes_put(struct bytes *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		while (b->cap < b->n + n)
			b->cap *= 2;
		b->p = ps_realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static bool hex_to_id(const char *hex, unsigned char id[20])
{
	for (int i = 0; i < 20; i++) {
		int hi = ps_hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : ps_hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		id[i] = (unsigned char)(hi << 4 | lo);
	}
	return hex[40] == '\0';
}

static void id_to_hex(const unsigned char id[20], char out[PS_SHA_HEX])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 20; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[40] = '\0';
}

static bool is_tree_mode(uint32_t mode)
{
	return (mode & 0170000u) == PS_MODE_TREE;
}

/* "<mode> <name>\0<id>" */
static bool put_entry(struct bytes *b, uint32_t mode, const char *name, size_t nlen,
		      const char *sha)
{
	char m[16];
	unsigned char id[20];
	size_t mlen = 0;

	if (!hex_to_id(sha, id))
		return false;
	/* Octal without leading zeros (40000, 100644), by hand: this runs once per file. */
	for (unsigned v = mode; v || mlen == 0; v >>= 3)
		m[mlen++] = (char)('0' + (v & 7));
	for (size_t i = 0; i < mlen / 2; i++) {
		char t = m[i];
		m[i] = m[mlen - 1 - i];
		m[mlen - 1 - i] = t;
	}
	m[mlen++] = ' ';
	bytes_put(b, m, mlen);
	bytes_put(b, name, nlen);
	bytes_put(b, "", 1);
	bytes_put(b, id, 20);
	return true;
}

void ps_tree_dispose(struct ps_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->entries[i].name);
	free(t->entries);
	t->entries = NULL;
	t->n = 0;
}

void ps_tree_dirs_free(struct ps_tree_dir *dirs, size_t n)
{
	for (size_t i = 0; dirs && i < n; i++) {
		free(dirs[i].path);
		free(dirs[i].body);
	}
	free(dirs);
}

void ps_tree_hash(const void *body, size_t len, char out[PS_SHA_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char header[32];
	int hlen = snprintf(header, sizeof(header), "tree %zu", len);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx)
		abort();
	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	EVP_DigestUpdate(ctx, header, (size_t)hlen + 1); /* with its NUL */
	if (len)
		EVP_DigestUpdate(ctx, body, len);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	id_to_hex(md, out);
}

int ps_tree_entry_cmp(const char *a, uint32_t mode_a, const char *b, uint32_t mode_b)
{
	size_t la = strlen(a), lb = strlen(b), l = la < lb ? la : lb;
	int c = memcmp(a, b, l);
	unsigned char ca, cb;

	if (c)
		return c;
	ca = la > l ? (unsigned char)a[l] : is_tree_mode(mode_a) ? '/' : '\0';
	cb = lb > l ? (unsigned char)b[l] : is_tree_mode(mode_b) ? '/' : '\0';
	return (int)ca - (int)cb;
}

static int cmp_entry(const void *x, const void *y)
{
	const struct ps_tree_entry *a = x, *b = y;

	return ps_tree_entry_cmp(a->name, a->mode, b->name, b->mode);
}

int ps_tree_parse(const void *body, size_t len, struct ps_tree *out)
{
	const unsigned char *p = body, *end = p + len;
	size_t cap = 0;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const unsigned char *sp = memchr(p, ' ', (size_t)(end - p)), *nul;
		uint32_t mode = 0;
		struct ps_tree_entry *e;

		if (!sp || sp == p)
			goto bad;
		for (const unsigned char *q = p; q < sp; q++) {
			if (*q < '0' || *q > '7')
				goto bad;
			mode = mode * 8 + (uint32_t)(*q - '0');
		}
		nul = memchr(sp + 1, '\0', (size_t)(end - sp - 1));
		if (!nul || nul == sp + 1 || end - nul - 1 < 20)
			goto bad;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			out->entries = ps_realloc(out->entries, cap * sizeof(*out->entries));
		}
		e = &out->entries[out->n++];
		e->name = ps_strndup((const char *)sp + 1, (size_t)(nul - sp - 1));
		e->mode = mode;
		e->size = -1;
		id_to_hex(nul + 1, e->sha);
		p = nul + 21;
	}
	return 0;
bad:
	ps_tree_dispose(out);
	return ps_error_set(PS_EINVAL, "bad_tree", "a stored tree object is not in git's format");
}

int ps_tree_serialize(struct ps_tree *t, unsigned char **body, size_t *len)
{
	struct bytes b = { 0 };

	if (t->n > 1)
		qsort(t->entries, t->n, sizeof(*t->entries), cmp_entry);
	for (size_t i = 0; i < t->n; i++) {
		const struct ps_tree_entry *e = &t->entries[i];

		if (!e->name[0] || strchr(e->name, '/') ||
		    (i > 0 && cmp_entry(&t->entries[i - 1], e) == 0) ||
		    !put_entry(&b, e->mode, e->name, strlen(e->name), e->sha)) {
			free(b.p);
			return ps_error_set(PS_EINVAL, "bad_tree", "tree entry '%s' cannot be written "
					    "(empty, repeated or with a bad id)", e->name);
		}
	}
	*body = b.p;
	*len = b.n;
	return 0;
}

int ps_tree_dir_make(const char *path, struct ps_tree *t, struct ps_tree_dir *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ps_tree_serialize(t, &out->body, &out->len)) < 0)
		return ps_error_wrap(rc, "directory '%s': ", path);
	if (!out->len) {
		free(out->body);
		out->body = NULL;
	}
	ps_tree_hash(out->body, out->len, out->sha);
	out->path = ps_strdup(path);
	return 0;
}

/* ---- the whole snapshot ---- */

struct level {
	char *path;
	struct bytes body;
};

struct dir_list {
	struct ps_tree_dir *v;
	size_t n, cap;
};

static void dirs_push(struct dir_list *l, char *path, unsigned char *body, size_t len,
		      const char *sha)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].path = path;
	l->v[l->n].body = body;
	l->v[l->n].len = len;
	snprintf(l->v[l->n].sha, PS_SHA_HEX, "%s", sha);
	l->n++;
}

static int cmp_dir(const void *a, const void *b)
{
	return strcmp(((const struct ps_tree_dir *)a)->path, ((const struct ps_tree_dir *)b)->path);
}

static int cmp_file_ptr(const void *a, const void *b)
{
	return strcmp((*(const struct ps_file *const *)a)->path,
		      (*(const struct ps_file *const *)b)->path);
}

/* Closes the deepest open directory: hashes it and enters it in its parent. */
static void close_level(struct level *levels, size_t *depth, struct dir_list *out)
{
	struct level *lv = &levels[*depth - 1];
	char sha[PS_SHA_HEX];

	ps_tree_hash(lv->body.p, lv->body.n, sha);
	if (*depth > 1) {
		const char *slash = strrchr(lv->path, '/');
		const char *name = slash ? slash + 1 : lv->path;
		put_entry(&levels[*depth - 2].body, PS_MODE_TREE, name, strlen(name), sha);
	}
	dirs_push(out, lv->path, lv->body.p, lv->body.n, sha);
	lv->path = NULL;
	memset(&lv->body, 0, sizeof(lv->body));
	(*depth)--;
}

int ps_tree_build(const struct ps_file *files, size_t n, struct ps_tree_dir **out, size_t *nout)
{
	const struct ps_file **sorted = ps_calloc(n + 1, sizeof(*sorted));
	struct level *levels = NULL;
	size_t depth = 0, caplevels = 0;
	struct dir_list dirs = { 0 };
	bool in_order = true;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		sorted[i] = &files[i];
		if (i && strcmp(files[i - 1].path, files[i].path) > 0)
			in_order = false;
	}
	/* Path byte order is git's entry order in every directory: a directory's files all
	 * start with "name/", and '/' sorts where git puts a directory's name. */
	if (!in_order)
		qsort(sorted, n, sizeof(*sorted), cmp_file_ptr);
	caplevels = 16;
	levels = ps_calloc(caplevels, sizeof(*levels));
	levels[depth++].path = ps_strdup("");
	for (size_t i = 0; i < n; i++) {
		const char *p = sorted[i]->path;
		size_t start;

		while (depth > 1) {
			size_t l = strlen(levels[depth - 1].path);
			if (strncmp(p, levels[depth - 1].path, l) == 0 && p[l] == '/')
				break;
			close_level(levels, &depth, &dirs);
		}
		start = depth > 1 ? strlen(levels[depth - 1].path) + 1 : 0;
		for (;;) {
			const char *slash = strchr(p + start, '/');
			if (!slash)
				break;
			if (slash == p + start) {
				rc = ps_error_set(PS_EINVAL, "bad_path", "path '%s' has an empty "
						  "component", p);
				goto out;
			}
			if (depth == caplevels) {
				caplevels *= 2;
				levels = ps_realloc(levels, caplevels * sizeof(*levels));
			}
			memset(&levels[depth], 0, sizeof(levels[depth]));
			levels[depth++].path = ps_strndup(p, (size_t)(slash - p));
			start = (size_t)(slash - p) + 1;
		}
		if (!p[start]) {
			rc = ps_error_set(PS_EINVAL, "bad_path", "path '%s' has an empty component",
					  p);
			goto out;
		}
		if (!put_entry(&levels[depth - 1].body, sorted[i]->mode, p + start,
			       strlen(p + start), sorted[i]->sha)) {
			rc = ps_error_set(PS_EINVAL, "bad_tree", "'%s' has no valid object id", p);
			goto out;
		}
	}
	while (depth > 0)
		close_level(levels, &depth, &dirs);
	if (dirs.n > 1)
		qsort(dirs.v, dirs.n, sizeof(*dirs.v), cmp_dir);
	*out = dirs.v;
	*nout = dirs.n;
	dirs.v = NULL;
	dirs.n = 0;
out:
	for (size_t i = 0; i < depth; i++) {
		free(levels[i].path);
		free(levels[i].body.p);
	}
	free(levels);
	ps_tree_dirs_free(dirs.v, dirs.n);
	free(sorted);
	return rc;
}

/* ---- the changed directories only ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct str_list {
	char **v;
	size_t n, cap;
};

static void str_push(struct str_list *l, char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = ps_realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
}

/* Adds the ancestors of `path`, unless its parent is `*last` (then they are in already). */
static void add_ancestors(struct str_list *l, const char *path, char **last)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;

	if (*last && strlen(*last) == plen && strncmp(*last, path, plen) == 0)
		return;
	free(*last);
	*last = ps_strndup(path, plen);
	str_push(l, ps_strdup(""));
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/'))
		str_push(l, ps_strndup(path, (size_t)(s - path)));
}

void ps_tree_changed_dirs(const struct ps_change *changes, size_t n, char ***out, size_t *nout)
{
	struct str_list l = { 0 };
	char *last = NULL, *last_prev = NULL;
	size_t uniq = 0;

	for (size_t i = 0; i < n; i++) {
		add_ancestors(&l, changes[i].path, &last);
		if (changes[i].status == PS_CHANGE_RENAMED && changes[i].previous_path)
			add_ancestors(&l, changes[i].previous_path, &last_prev);
	}
	free(last);
	free(last_prev);
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_str);
	for (size_t i = 0; i < l.n; i++) {
		if (uniq && strcmp(l.v[uniq - 1], l.v[i]) == 0)
			free(l.v[i]);
		else
			l.v[uniq++] = l.v[i];
	}
	*out = l.v;
	*nout = uniq;
}

const struct ps_tree_dir *ps_tree_dirs_find(const struct ps_tree_dir *dirs, size_t n,
					    const char *path)
{
	struct ps_tree_dir key = { .path = (char *)path };

	return n ? bsearch(&key, dirs, n, sizeof(*dirs), cmp_dir) : NULL;
}

struct udir {
	struct ps_tree t;       /* entries: [0, nsorted) from the old body, in order; then new */
	bool *gone;             /* per entry of [0, nsorted) */
	size_t nsorted, cap;
	size_t depth;
};

static size_t depth_of(const char *path)
{
	size_t d = path[0] ? 1 : 0;

	for (; *path; path++)
		d += *path == '/';
	return d;
}

static struct udir *udir_of(struct udir *u, char **paths, size_t n, const char *path)
{
	char **hit = bsearch(&path, paths, n, sizeof(*paths), cmp_str);

	return hit ? &u[hit - paths] : NULL;
}

static struct ps_tree_entry *udir_lookup(struct udir *d, const char *name, uint32_t mode)
{
	struct ps_tree_entry key = { .name = (char *)name, .mode = mode };

	return d->nsorted ? bsearch(&key, d->t.entries, d->nsorted, sizeof(key), cmp_entry) : NULL;
}

static void udir_remove(struct udir *d, const char *name, uint32_t mode)
{
	struct ps_tree_entry *e = udir_lookup(d, name, mode);

	if (e)
		d->gone[e - d->t.entries] = true;
}

static void udir_set(struct udir *d, const char *name, uint32_t mode, const char *sha)
{
	struct ps_tree_entry *e = udir_lookup(d, name, mode);

	if (!e) {
		if (d->t.n == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 16;
			d->t.entries = ps_realloc(d->t.entries, d->cap * sizeof(*d->t.entries));
		}
		e = &d->t.entries[d->t.n++];
		e->name = ps_strdup(name);
		e->size = -1;
	} else {
		d->gone[e - d->t.entries] = false;
	}
	e->mode = mode;
	snprintf(e->sha, PS_SHA_HEX, "%s", sha);
}

/* Splits "a/b/c" into the udir of "a/b" and the name "c". */
static struct udir *parent_of(struct udir *u, char **paths, size_t n, const char *path,
			      const char **name)
{
	const char *slash = strrchr(path, '/');
	char *dir = ps_strndup(path, slash ? (size_t)(slash - path) : 0);
	struct udir *d = udir_of(u, paths, n, dir);

	free(dir);
	*name = slash ? slash + 1 : path;
	return d;
}

struct by_depth {
	size_t depth, index;
};

static int cmp_depth_desc(const void *a, const void *b)
{
	const struct by_depth *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? 1 : -1;
	return x->index < y->index ? -1 : x->index > y->index;
}

int ps_tree_update(const struct ps_change *changes, size_t n, ps_tree_load_cb load, void *ud,
		   struct ps_tree_dir **out, size_t *nout)
{
	char **paths = NULL;
	size_t npaths = 0;
	struct by_depth *order = NULL;
	struct udir *u = NULL;
	struct ps_tree_dir *res = NULL;
	int rc = 0;

	ps_tree_changed_dirs(changes, n, &paths, &npaths);
	u = ps_calloc(npaths + 1, sizeof(*u));
	res = ps_calloc(npaths + 1, sizeof(*res));
	for (size_t i = 0; i < npaths; i++) {
		struct ps_tree_dir old = { 0 };

		u[i].depth = depth_of(paths[i]);
		rc = load(ud, paths[i], &old);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear();
			rc = 0;
			continue;
		}
		if (rc == 0)
			rc = ps_tree_parse(old.body, old.len, &u[i].t);
		free(old.path);
		free(old.body);
		if (rc < 0)
			goto out;
		if (u[i].t.n > 1)
			qsort(u[i].t.entries, u[i].t.n, sizeof(*u[i].t.entries), cmp_entry);
		u[i].nsorted = u[i].cap = u[i].t.n;
		u[i].gone = ps_calloc(u[i].t.n + 1, sizeof(bool));
	}
	/* Removals first: a file that becomes a directory (or back) is a removal and an addition
	 * of the same name with another kind. */
	for (size_t i = 0; i < n; i++) {
		const struct ps_change *c = &changes[i];
		const char *p = c->status == PS_CHANGE_RENAMED ? c->previous_path
			       : c->status == PS_CHANGE_DELETED ? c->path : NULL;
		const char *name;
		struct udir *d;

		if (p && (d = parent_of(u, paths, npaths, p, &name)))
			udir_remove(d, name, PS_MODE_FILE);
	}
	for (size_t i = 0; i < n; i++) {
		const struct ps_change *c = &changes[i];
		const char *name;
		struct udir *d;

		if (c->status == PS_CHANGE_DELETED)
			continue;
		if (!(d = parent_of(u, paths, npaths, c->path, &name)) || !name[0]) {
			rc = ps_error_set(PS_EINVAL, "bad_path", "path '%s' has an empty component",
					  c->path);
			goto out;
		}
		udir_set(d, name, c->mode, c->sha);
	}
	/* Deepest first, so each directory is final before its parent takes its id. */
	order = ps_calloc(npaths + 1, sizeof(*order));
	for (size_t i = 0; i < npaths; i++)
		order[i] = (struct by_depth){ u[i].depth, i };
	if (npaths > 1)
		qsort(order, npaths, sizeof(*order), cmp_depth_desc);
	for (size_t oi = 0; oi < npaths; oi++) {
		size_t i = order[oi].index;
		struct udir *d = &u[i];
		size_t keep = 0;
		const char *name;
		struct udir *parent;

		for (size_t k = 0; k < d->t.n; k++) {
			if (k < d->nsorted && d->gone[k]) {
				free(d->t.entries[k].name);
				continue;
			}
			d->t.entries[keep++] = d->t.entries[k];
		}
		d->t.n = keep;
		d->nsorted = 0; /* the gone flags no longer apply */
		res[i].path = ps_strdup(paths[i]);
		if (keep == 0 && paths[i][0]) {
			res[i].sha[0] = '\0';
			if ((parent = parent_of(u, paths, npaths, paths[i], &name)))
				udir_remove(parent, name, PS_MODE_TREE);
			continue;
		}
		if ((rc = ps_tree_serialize(&d->t, &res[i].body, &res[i].len)) < 0) {
			ps_error_wrap(rc, "directory '%s': ", paths[i]);
			goto out;
		}
		ps_tree_hash(res[i].body, res[i].len, res[i].sha);
		if (paths[i][0] && (parent = parent_of(u, paths, npaths, paths[i], &name)))
			udir_set(parent, name, PS_MODE_TREE, res[i].sha);
	}
	*out = res;
	*nout = npaths;
	res = NULL;
out:
	for (size_t i = 0; i < npaths; i++) {
		ps_tree_dispose(&u[i].t);
		free(u[i].gone);
		free(paths[i]);
	}
	if (res)
		ps_tree_dirs_free(res, npaths);
	free(order);
	free(paths);
	free(u);
	return rc;
}
