/*
 * The `diff` attribute (see patch_attr.h). Pattern and precedence rules follow git's attr.c:
 * a pattern without '/' matches the basename at any depth below its file's directory, one with
 * '/' matches the path relative to that directory (a leading '/' only anchors); a pattern
 * ending in '/' names a directory and matches no file; deeper files win over shallower ones
 * and later lines over earlier ones. Macros come from the top-level file only, plus git's
 * built-in `binary` (-diff -merge -text).
 */
#include "core/patch_attr.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "store/store.h"
#include "util/error.h"

/* ---- glob ---- */

static bool glob_at(const char *pat0, const char *p, const char *s, bool pathname)
{
	for (; *p; p++, s++) {
		switch (*p) {
		case '\\':
			if (!p[1] || *s != p[1])
				return false;
			p++;
			break;
		case '?':
			if (!*s || (pathname && *s == '/'))
				return false;
			break;
		case '[': {
			const char *j = p + 1;
			char cls[256], one[2] = { *s, 0 };
			size_t n;
			if (*j == '!' || *j == '^')
				j++;
			if (*j == ']')
				j++;
			while (*j && *j != ']')
				j++;
			n = (size_t)(j - p) + 1;
			if (!*j || n >= sizeof(cls)) {
				if (*s != '[')  /* no closing bracket: a literal '[' */
					return false;
				break;
			}
			if (!*s || (pathname && *s == '/'))
				return false;
			memcpy(cls, p, n);
			cls[n] = 0;
			if (fnmatch(cls, one, 0) != 0)
				return false;
			p = j;
			break;
		}
		case '*': {
			const char *start = p;
			bool special;
			while (p[1] == '*')
				p++;
			/* "**" crosses directories only as a whole path component. */
			special = !pathname || (p > start && (start == pat0 || start[-1] == '/') &&
						(p[1] == '/' || p[1] == '\0'));
			if (pathname && special && p[1] == '/') {
				if (glob_at(pat0, p + 2, s, pathname))
					return true;
				for (const char *q = s; *q; q++)
					if (*q == '/' && glob_at(pat0, p + 2, q + 1, pathname))
						return true;
				return false;
			}
			if (p[1] == '\0')
				return special || !strchr(s, '/');
			for (const char *q = s;; q++) {
				if (glob_at(pat0, p + 1, q, pathname))
					return true;
				if (!*q || (!special && *q == '/'))
					return false;
			}
		}
		default:
			if (*s != *p)
				return false;
		}
	}
	return *s == '\0';
}

bool ps_patch_attr_glob(const char *pat, const char *s, bool pathname)
{
	return glob_at(pat, pat, s, pathname);
}

/* ---- one attribute file ---- */

struct macro {
	char *name;
	enum ps_attr_diff state;
};

struct rule {
	char *pattern;
	bool has_slash;
	enum ps_attr_diff state;
};

struct macros {
	struct macro *v;
	size_t n, cap;
};

struct attr_file {
	char *dir;            /* "" for the top level, else "a/b/" */
	bool present;
	struct rule *rules;
	size_t n;
};

/* What one attribute token says about `diff`; false when it says nothing. */
static bool token_state(const char *tok, const struct macro *macros, size_t nmacros,
			enum ps_attr_diff *st)
{
	if (strcmp(tok, "diff") == 0 || strncmp(tok, "diff=", 5) == 0) {
		/* A named driver has no binary setting without config: the content decides. */
		*st = tok[4] ? PS_ATTR_DIFF_UNSPECIFIED : PS_ATTR_DIFF_SET;
		return true;
	}
	if (strcmp(tok, "-diff") == 0) {
		*st = PS_ATTR_DIFF_UNSET;
		return true;
	}
	if (strcmp(tok, "!diff") == 0) {
		*st = PS_ATTR_DIFF_UNSPECIFIED;
		return true;
	}
	if (strcmp(tok, "binary") == 0) {
		*st = PS_ATTR_DIFF_UNSET;
		return true;
	}
	for (size_t i = 0; i < nmacros; i++)
		if (strcmp(tok, macros[i].name) == 0) {
			*st = macros[i].state;
			return true;
		}
	return false;
}

/* Parses `text` into the rules that touch `diff`; macros are defined only when `root`. */
static void parse(struct attr_file *f, const char *text, size_t len, bool root,
		  struct macros *m)
{
	char *buf = ps_malloc(len + 1), *save = NULL;

	memcpy(buf, text, len);
	buf[len] = 0;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tsave = NULL, *pat = strtok_r(line, " \t\r", &tsave), *tok;
		enum ps_attr_diff st = PS_ATTR_DIFF_UNSPECIFIED;
		bool said = false, is_macro;
		size_t plen;

		/* Quoted patterns and negations: git warns and skips or needs unquoting. */
		if (!pat || pat[0] == '#' || pat[0] == '"' || pat[0] == '!')
			continue;
		is_macro = strncmp(pat, "[attr]", 6) == 0;
		while ((tok = strtok_r(NULL, " \t\r", &tsave)))
			if (token_state(tok, m->v, m->n, &st))
				said = true;
		if (!said)
			continue;
		if (is_macro) {
			if (!root)
				continue;
			if (m->n == m->cap) {
				m->cap = m->cap ? m->cap * 2 : 4;
				m->v = ps_realloc(m->v, m->cap * sizeof(*m->v));
			}
			m->v[m->n++] = (struct macro){ ps_strdup(pat + 6), st };
			continue;
		}
		plen = strlen(pat);
		if (plen == 0 || pat[plen - 1] == '/')
			continue; /* a directory pattern matches no file */
		f->rules = ps_realloc(f->rules, (f->n + 1) * sizeof(*f->rules));
		f->rules[f->n++] = (struct rule){
			.pattern = ps_strdup(pat[0] == '/' ? pat + 1 : pat),
			.has_slash = strchr(pat, '/') != NULL, .state = st };
	}
	free(buf);
}

static void macros_dispose(struct macros *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].name);
	free(m->v);
}

/* The last matching rule of `f` for `rel` (the path below f's directory). */
static bool file_match(const struct attr_file *f, const char *rel, enum ps_attr_diff *st)
{
	const char *base = strrchr(rel, '/');

	base = base ? base + 1 : rel;
	for (size_t i = f->n; i-- > 0;) {
		const struct rule *r = &f->rules[i];
		if (r->has_slash ? ps_patch_attr_glob(r->pattern, rel, true)
				 : ps_patch_attr_glob(r->pattern, base, false)) {
			*st = r->state;
			return true;
		}
	}
	return false;
}

static void file_dispose(struct attr_file *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->rules[i].pattern);
	free(f->rules);
	free(f->dir);
}

enum ps_attr_diff ps_patch_attr_match_text(const char *text, size_t len, bool root,
					   const char *path, bool *decided)
{
	struct attr_file f = { 0 };
	struct macros m = { 0 };
	enum ps_attr_diff st = PS_ATTR_DIFF_UNSPECIFIED;

	parse(&f, text, len, root, &m);
	*decided = file_match(&f, path, &st);
	file_dispose(&f);
	macros_dispose(&m);
	return st;
}

/* ---- the files of one sync ---- */

struct ps_patch_attr {
	struct ps_store *s;
	int64_t project_id, at;
	struct attr_file *files; /* one per directory looked at */
	size_t n, cap;
	struct macros macros;  /* the top-level file's, which hold for every file */
};

struct ps_patch_attr *ps_patch_attr_new(struct ps_store *s, int64_t project_id, int64_t at)
{
	struct ps_patch_attr *a = ps_calloc(1, sizeof(*a));

	a->s = s;
	a->project_id = project_id;
	a->at = at;
	return a;
}

void ps_patch_attr_free(struct ps_patch_attr *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		file_dispose(&a->files[i]);
	free(a->files);
	macros_dispose(&a->macros);
	free(a);
}

/* The attribute file of directory `dir` ("" or "a/b/"), read once. A file the store cannot
 * give (not there, a symlink, over the size limit) counts as absent, as git ignores a
 * symlinked .gitattributes. */
static const struct attr_file *dir_file(struct ps_patch_attr *a, const char *dir, size_t dlen)
{
	struct attr_file *f;
	struct ps_file pf = { 0 };
	char *path;

	for (size_t i = 0; i < a->n; i++)
		if (strlen(a->files[i].dir) == dlen && memcmp(a->files[i].dir, dir, dlen) == 0)
			return &a->files[i];
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 16;
		a->files = ps_realloc(a->files, a->cap * sizeof(*a->files));
	}
	f = &a->files[a->n++];
	*f = (struct attr_file){ .dir = ps_strndup(dir, dlen) };
	path = ps_malloc(dlen + sizeof(".gitattributes"));
	memcpy(path, dir, dlen);
	memcpy(path + dlen, ".gitattributes", sizeof(".gitattributes"));
	if (ps_store_snapshot_file(a->s, a->project_id, a->at, path, &pf) == 0 &&
	    (pf.mode & 0170000u) == 0100000u) {
		void *data = NULL;
		size_t len = 0;
		if (ps_store_blob_get(a->s, pf.sha, &data, &len) == 0) {
			f->present = true;
			parse(f, data, len, dlen == 0, &a->macros);
		}
		free(data);
	}
	ps_error_clear();
	ps_file_dispose(&pf);
	free(path);
	return f;
}

enum ps_attr_diff ps_patch_attr_diff(struct ps_patch_attr *a, const char *path)
{
	enum ps_attr_diff st = PS_ATTR_DIFF_UNSPECIFIED;
	const char *slash;

	if (!a || a->at <= 0 || !path)
		return st;
	dir_file(a, "", 0); /* the top level first: its macros hold below */
	/* Deepest directory first: the first file with a matching line decides. */
	for (slash = strrchr(path, '/');; ) {
		size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
		const struct attr_file *f = dir_file(a, path, dlen);
		if (f->present && file_match(f, path + dlen, &st))
			return st;
		if (!slash)
			return PS_ATTR_DIFF_UNSPECIFIED;
		slash = dlen >= 2 ? memrchr(path, '/', dlen - 1) : NULL;
	}
}
