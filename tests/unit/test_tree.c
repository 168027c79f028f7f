/*
 * Git tree ids computed from rows (model/tree.c) against git itself: this checkout's HEAD
 * (`git ls-tree`), a generated index with every mode, submodules, odd and non-ASCII names and
 * names that sort differently as files and as directories (`git write-tree`), and the
 * incremental re-hash against a full build after random changes.
 */
#include "harness.h"

#include <stdlib.h>
#include <unistd.h>

#include "model/diff.h"
#include "model/tree.h"
#include "util/error.h"

struct flist {
	struct ps_file *v;
	size_t n, cap;
};

static void fl_add(struct flist *l, const char *path, uint32_t mode, const char *sha)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n] = (struct ps_file){ .path = strdup(path), .mode = mode, .size = -1 };
	snprintf(l->v[l->n].sha, PS_SHA_HEX, "%s", sha);
	l->n++;
}

static void fl_free(struct flist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static char *source_root(void)
{
	char *dir = strdup(__FILE__), *slash = strrchr(dir, '/');
	char *top;

	if (slash)
		*slash = '\0';
	top = ps_test_sh_out(slash ? dir : ".", "git rev-parse --show-toplevel");
	free(dir);
	return top;
}

/* This checkout's HEAD: the root and every directory as git has them. */
static void test_this_checkout(void)
{
	char *top = source_root();
	char *listing, *trees, *want, *line, *save = NULL;
	struct flist files = { 0 };
	struct ps_tree_dir *dirs = NULL;
	size_t ndirs = 0, ntrees = 0;

	if (!top || !top[0] || access(top, R_OK) != 0) {
		fprintf(stderr, "no checkout to compare with; skipped\n");
		free(top);
		return;
	}
	listing = ps_test_sh_out(top, "git ls-tree -r --full-tree HEAD");
	for (line = strtok_r(listing, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char mode[16], type[16], sha[64];
		const char *tab = strchr(line, '\t');

		if (!tab || sscanf(line, "%15s %15s %63s", mode, type, sha) != 3)
			continue;
		fl_add(&files, tab + 1, (uint32_t)strtoul(mode, NULL, 8), sha);
	}
	CHECK(files.n > 50);
	CHECK_OK(ps_tree_build(files.v, files.n, &dirs, &ndirs));
	want = ps_test_sh_out(top, "git rev-parse 'HEAD^{tree}'");
	CHECK(ndirs > 0);
	if (ndirs)
		CHECK_STR(dirs[0].sha, want);
	trees = ps_test_sh_out(top, "git ls-tree -r -d --full-tree HEAD");
	save = NULL;
	for (line = strtok_r(trees, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char sha[64];
		const char *tab = strchr(line, '\t');
		const struct ps_tree_dir *d;

		if (!tab || sscanf(line, "%*s %*s %63s", sha) != 1)
			continue;
		ntrees++;
		d = ps_tree_dirs_find(dirs, ndirs, tab + 1);
		CHECK(d != NULL);
		if (d)
			CHECK_STR(d->sha, sha);
	}
	CHECK_INT(ndirs, ntrees + 1);
	ps_tree_dirs_free(dirs, ndirs);
	fl_free(&files);
	free(want);
	free(trees);
	free(listing);
	free(top);
}

/* Every mode, submodules, odd names and names that sort differently as files and as
 * directories, against `git write-tree` of the same index. */
static void test_generated_against_git(void)
{
	static const struct {
		const char *path;
		uint32_t mode;
	} entries[] = {
		{ "a/x", 0100644 },        /* directory "a" sorts as "a/": after "a.b", "a-" */
		{ "a.b", 0100644 },
		{ "a-", 0100755 },
		{ "a0", 0120000 },
		{ "a/y/z", 0100644 },
		{ "a/y.txt", 0100644 },
		{ "b", 0160000 },          /* a submodule named like a directory's prefix */
		{ "b.c/d", 0100644 },
		{ "b-", 0100644 },
		{ "with space", 0100644 },
		{ "tab\there", 0100644 },
		{ "new\nline", 0100644 },
		{ "caf\xc3\xa9/\xc3\xbc.md", 0100644 },
		{ "\xe6\x97\xa5\xe6\x9c\xac", 0100755 },
		{ "Z", 0100644 },
		{ "~tilde", 0100644 },
		{ "!bang/deep/deeper/deepest", 0120000 },
		{ "x\x01y", 0100644 },
		{ "lib/sub", 0160000 },
		{ "lib/sub.h", 0100644 },
		{ "lib/sub-a/file", 0100644 },
	};
	char *repo = ps_test_git_init();
	char *idx = ps_asprintf("%s/index-info", repo);
	FILE *f = fopen(idx, "wb");
	struct flist files = { 0 };
	struct ps_tree_dir *dirs = NULL;
	size_t ndirs = 0;
	char *want;

	for (size_t i = 0; i < sizeof(entries) / sizeof(*entries); i++) {
		char sha[PS_SHA_HEX];
		ps_git_blob_sha(entries[i].path, strlen(entries[i].path), sha);
		fprintf(f, "%o %s\t%s%c", entries[i].mode, sha, entries[i].path, 0);
		fl_add(&files, entries[i].path, entries[i].mode, sha);
	}
	fclose(f);
	CHECK_INT(ps_test_sh(repo, "git update-index -z --index-info < index-info"), 0);
	want = ps_test_sh_out(repo, "git write-tree --missing-ok");
	CHECK_OK(ps_tree_build(files.v, files.n, &dirs, &ndirs));
	CHECK(ndirs > 0);
	if (ndirs)
		CHECK_STR(dirs[0].sha, want);
	/* Every directory, as git wrote it. */
	for (size_t i = 1; i < ndirs; i++) {
		char *q = ps_asprintf("git rev-parse \"%s:%s\"", want, dirs[i].path);
		char *got = ps_test_sh_out(repo, "%s", q);
		CHECK_STR(dirs[i].sha, got);
		free(got);
		free(q);
	}
	ps_tree_dirs_free(dirs, ndirs);

	/* The empty tree. */
	CHECK_OK(ps_tree_build(NULL, 0, &dirs, &ndirs));
	CHECK_INT(ndirs, 1);
	CHECK_STR(dirs[0].sha, PS_EMPTY_TREE);
	ps_tree_dirs_free(dirs, ndirs);

	/* A path with an empty component makes no tree. */
	fl_add(&files, "bad//path", 0100644, files.v[0].sha);
	CHECK(ps_tree_build(files.v, files.n, &dirs, &ndirs) == PS_EINVAL);
	CHECK_STR(ps_error_slug(), "bad_path");
	fl_free(&files);
	free(want);
	free(idx);
	free(repo);
}

/* Serialize and parse are inverses, in git's order. */
static void test_parse_serialize(void)
{
	struct ps_tree t = { 0 }, back = { 0 };
	unsigned char *body = NULL;
	size_t len = 0;
	const char *names[] = { "a", "a.b", "a", "b" };
	const uint32_t modes[] = { 0100644, 0100644, 040000, 0160000 };

	t.n = 4;
	t.entries = calloc(4, sizeof(*t.entries));
	for (int i = 0; i < 4; i++) {
		t.entries[i].name = strdup(names[i]);
		t.entries[i].mode = modes[i];
		ps_git_blob_sha(names[i], strlen(names[i]), t.entries[i].sha);
	}
	CHECK_OK(ps_tree_serialize(&t, &body, &len));
	CHECK_OK(ps_tree_parse(body, len, &back));
	CHECK_INT(back.n, 4);
	if (back.n == 4) {
		/* File "a", then "a.b", then directory "a" (as "a/"), then "b". */
		CHECK_STR(back.entries[0].name, "a");
		CHECK_INT(back.entries[0].mode, 0100644);
		CHECK_STR(back.entries[1].name, "a.b");
		CHECK_STR(back.entries[2].name, "a");
		CHECK_INT(back.entries[2].mode, 040000);
		CHECK_STR(back.entries[3].name, "b");
	}
	{
		struct ps_tree bad = { 0 };
		CHECK(ps_tree_parse("100644 x", 8, &bad) == PS_EINVAL);
	}
	free(body);
	ps_tree_dispose(&t);
	ps_tree_dispose(&back);
}

/* ---- incremental against full ---- */

static uint32_t rnd_state = 12345;
static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static const char *const parts[] = { "a", "a.b", "a-", "b", "src", "lib", "x", "\xc3\xa9" };

static char *random_path(void)
{
	char buf[128] = "";
	int depth = 1 + (int)rnd(4);

	for (int d = 0; d < depth; d++) {
		if (d)
			strcat(buf, "/");
		strcat(buf, parts[rnd(sizeof(parts) / sizeof(*parts))]);
	}
	return strdup(buf);
}

/* Whether `path` can join `l` without being a file and a directory at once. */
static bool fits(const struct flist *l, const char *path)
{
	size_t pl = strlen(path);

	for (size_t i = 0; i < l->n; i++) {
		size_t ql = strlen(l->v[i].path);
		const char *q = l->v[i].path;
		if (strcmp(q, path) == 0 || (ql < pl && strncmp(q, path, ql) == 0 && path[ql] == '/') ||
		    (pl < ql && strncmp(q, path, pl) == 0 && q[pl] == '/'))
			return false;
	}
	return true;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

struct loader {
	struct ps_tree_dir *dirs;
	size_t n;
	int loads;
};

static int load(void *ud, const char *path, struct ps_tree_dir *out)
{
	struct loader *l = ud;
	const struct ps_tree_dir *d = ps_tree_dirs_find(l->dirs, l->n, path);

	l->loads++;
	if (!d)
		return ps_error_set(PS_ENOTFOUND, NULL, "no dir");
	out->path = strdup(d->path);
	memcpy(out->sha, d->sha, PS_SHA_HEX);
	out->len = d->len;
	out->body = malloc(d->len + 1);
	memcpy(out->body, d->body, d->len);
	return 0;
}

static void test_incremental_equals_full(void)
{
	static const uint32_t modes[] = { 0100644, 0100755, 0120000, 0160000 };
	struct flist cur = { 0 };

	while (cur.n < 200) {
		char *p = random_path(), sha[PS_SHA_HEX];
		if (fits(&cur, p)) {
			ps_git_blob_sha(p, strlen(p), sha);
			fl_add(&cur, p, modes[rnd(4)], sha);
		}
		free(p);
	}
	for (int round = 0; round < 60; round++) {
		struct flist next = { 0 };
		struct loader old = { 0 };
		struct ps_tree_dir *want = NULL, *got = NULL;
		size_t nwant = 0, ngot = 0;
		struct ps_change *changes = NULL;
		size_t nchanges = 0;
		int edits = 1 + (int)rnd(round % 3 == 0 ? 40 : 4);

		/* Edit a copy: delete, modify, change modes, add (files that replace directories
		 * and directories that replace files included). */
		for (size_t i = 0; i < cur.n; i++)
			fl_add(&next, cur.v[i].path, cur.v[i].mode, cur.v[i].sha);
		for (int k = 0; k < edits; k++) {
			uint32_t what = rnd(4);
			if (what == 0 && next.n > 1) {
				size_t i = rnd((uint32_t)next.n);
				free(next.v[i].path);
				next.v[i] = next.v[--next.n];
			} else if (what == 1 && next.n) {
				size_t i = rnd((uint32_t)next.n);
				char c[32];
				snprintf(c, sizeof(c), "%d.%d", round, k);
				ps_git_blob_sha(c, strlen(c), next.v[i].sha);
			} else if (what == 2 && next.n) {
				next.v[rnd((uint32_t)next.n)].mode = modes[rnd(4)];
			} else {
				char *p = random_path(), sha[PS_SHA_HEX];
				/* Make room: whatever collides with the new path goes. */
				for (size_t i = 0; i < next.n;) {
					struct flist one = { .v = &next.v[i], .n = 1 };
					if (!fits(&one, p)) {
						free(next.v[i].path);
						next.v[i] = next.v[--next.n];
					} else {
						i++;
					}
				}
				ps_git_blob_sha(p, strlen(p), sha);
				fl_add(&next, p, modes[rnd(4)], sha);
				free(p);
			}
		}
		qsort(cur.v, cur.n, sizeof(*cur.v), cmp_path);
		qsort(next.v, next.n, sizeof(*next.v), cmp_path);
		CHECK_OK(ps_tree_build(cur.v, cur.n, &old.dirs, &old.n));
		CHECK_OK(ps_tree_build(next.v, next.n, &want, &nwant));
		CHECK_OK(ps_diff_files(cur.v, cur.n, next.v, next.n, &changes, &nchanges));
		ps_diff_pair_renames(&changes, &nchanges);
		CHECK_OK(ps_tree_update(changes, nchanges, load, &old, &got, &ngot));
		/* Each re-hashed directory is the full build's; each removed one is gone from it;
		 * the others kept their ids. */
		for (size_t i = 0; i < ngot; i++) {
			const struct ps_tree_dir *w = ps_tree_dirs_find(want, nwant, got[i].path);
			if (!got[i].sha[0]) {
				CHECK(w == NULL);
				continue;
			}
			CHECK(w != NULL);
			if (w)
				CHECK_STR(got[i].sha, w->sha);
		}
		for (size_t i = 0; i < nwant; i++)
			if (!ps_tree_dirs_find(got, ngot, want[i].path)) {
				const struct ps_tree_dir *o = ps_tree_dirs_find(old.dirs, old.n,
										 want[i].path);
				CHECK(o != NULL);
				if (o)
					CHECK_STR(o->sha, want[i].sha);
			}
		/* Only directories on changed paths were loaded. */
		CHECK(old.loads <= (int)ngot);
		ps_changes_free(changes, nchanges);
		ps_tree_dirs_free(old.dirs, old.n);
		ps_tree_dirs_free(want, nwant);
		ps_tree_dirs_free(got, ngot);
		fl_free(&cur);
		cur = next;
	}
	fl_free(&cur);
}

PS_TESTS(PS_TEST(test_this_checkout), PS_TEST(test_generated_against_git),
	 PS_TEST(test_parse_serialize), PS_TEST(test_incremental_equals_full))
