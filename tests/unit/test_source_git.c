/*
 * The libgit2 source (src/source/git.c) and SOURCE parsing (src/source/source.c), checked
 * against real repositories made with the git command line: what git itself says
 * (rev-parse, cat-file) is the expected answer. Remote behaviour goes through file:// URLs and
 * bare repositories, so nothing touches the network; the network bounds are checked against
 * loopback listeners that never answer, and a local `git daemon` proves the bounded socket
 * stream carries real git traffic.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "source/source.h"
#include "util/error.h"
#include "util/util.h"

#define SUB_SHA "1234567890abcdef1234567890abcdef12345678"

static struct ps_source_opts opts_with_cache(void)
{
	static char *cache; /* one per test process is enough; each URL gets its own repository */
	if (!cache)
		cache = ps_test_tmpdir();
	return (struct ps_source_opts){.cache_dir = cache};
}

static struct ps_source *open_ok(const char *spec, const struct ps_source_opts *o)
{
	struct ps_source *src = NULL;
	int rc = ps_source_open(&src, spec, o);
	if (rc != 0)
		fprintf(stderr, "open %s: %d %s\n", spec, rc, ps_error_message());
	CHECK(src != NULL);
	return src;
}

static const struct ps_tree_entry *find_entry(const struct ps_tree *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->entries[i].name, name) == 0)
			return &t->entries[i];
	return NULL;
}

/* Collects blob contents by SHA for comparison. */
struct collected {
	struct ps_strv shas;
	struct ps_strv data; /* may hold NULs: lens says how much */
	size_t lens[16];
	int stop_after;      /* return 7 from the callback after this many calls (0 = never) */
};

static int collect_cb(void *ud, const char *sha, const void *data, size_t len)
{
	struct collected *c = ud;
	char *copy = ps_malloc(len + 1);

	memcpy(copy, data, len);
	copy[len] = '\0';
	ps_strv_push(&c->shas, sha);
	if (c->data.n == 16) {
		free(copy);
		return 8;
	}
	if (c->data.n == c->data.cap) {
		c->data.cap = c->data.cap ? c->data.cap * 2 : 8;
		c->data.v = ps_realloc(c->data.v, c->data.cap * sizeof(char *));
	}
	c->lens[c->data.n] = len;
	c->data.v[c->data.n++] = copy;
	if (c->stop_after && (int)c->shas.n >= c->stop_after)
		return 7;
	return 0;
}

static void collected_dispose(struct collected *c)
{
	ps_strv_dispose(&c->shas);
	ps_strv_dispose(&c->data);
}

/* A repository with every kind of entry and awkward names; returns its path. */
static char *make_fancy_repo(void)
{
	char *repo = ps_test_git_init();

	ps_test_write(repo, "README.md", "# hello\n");
	ps_test_write(repo, "run.sh", "#!/bin/sh\necho hi\n");
	ps_test_write(repo, "target.txt", "the target\n");
	ps_test_write(repo, "dir/inner.txt", "inner\n");
	ps_test_write(repo, "ünï cødé.txt", "unicode\n");
	ps_test_write(repo, "with space", "space\n");
	ps_test_write(repo, "-dash", "dash\n");
	CHECK_INT(ps_test_sh(repo, "chmod +x run.sh && ln -s target.txt link && "
				   "printf 'a\\000b\\000\\377z' > bin.dat"), 0);
	CHECK_INT(ps_test_sh(repo, "git add -A && "
				   "git update-index --add --cacheinfo 160000," SUB_SHA ",sub && "
				   "git commit -q -m fancy"), 0);
	return repo;
}

static void test_local_branches(void)
{
	char *repo = ps_test_git_init();
	struct ps_source *src;
	struct ps_strv names = {0};
	char *def = NULL;

	ps_test_write(repo, "a.txt", "a\n");
	free(ps_test_git_commit(repo, "one"));
	CHECK_INT(ps_test_sh(repo, "git branch zeta && git branch feature/x/y && git branch dev"), 0);

	src = open_ok(repo, NULL);
	if (!src)
		goto out;
	CHECK_STR(src->ops->kind, "git");
	CHECK_OK(ps_source_branches(src, &names, &def));
	CHECK_INT(names.n, 4);
	if (names.n == 4) {
		CHECK_STR(names.v[0], "dev");
		CHECK_STR(names.v[1], "feature/x/y");
		CHECK_STR(names.v[2], "main");
		CHECK_STR(names.v[3], "zeta");
	}
	CHECK_STR(def, "main");
	ps_strv_dispose(&names);
	free(def);
	def = NULL;

	/* The default branch is whatever HEAD names. */
	CHECK_INT(ps_test_sh(repo, "git symbolic-ref HEAD refs/heads/feature/x/y"), 0);
	CHECK_OK(ps_source_branches(src, &names, &def));
	CHECK_STR(def, "feature/x/y");
	ps_strv_dispose(&names);
	free(def);
	ps_source_free(src);
out:
	free(repo);
}

static void test_local_resolve(void)
{
	char *repo = ps_test_git_init();
	struct ps_source *src;
	struct ps_head head = {0};
	char *c1, *c2, *t1, *t2;

	ps_test_write(repo, "a.txt", "a\n");
	c1 = ps_test_git_commit(repo, "one");
	t1 = ps_test_sh_out(repo, "git rev-parse HEAD^{tree}");
	CHECK_INT(ps_test_sh(repo, "git checkout -q -b feature/a/b"), 0);
	ps_test_write(repo, "b.txt", "b\n");
	c2 = ps_test_git_commit(repo, "two");
	t2 = ps_test_sh_out(repo, "git rev-parse HEAD^{tree}");
	CHECK_INT(ps_test_sh(repo, "git checkout -q main"), 0);

	src = open_ok(repo, NULL);
	if (!src)
		goto out;
	CHECK_OK(ps_source_resolve(src, NULL, NULL, &head));
	CHECK_STR(head.commit, c1);
	CHECK_STR(head.tree, t1);
	CHECK_OK(ps_source_resolve(src, "main", c1, &head));
	CHECK_STR(head.commit, c1);
	/* Still at the known commit: answered from the ref alone, the tree is the caller's. */
	CHECK_STR(head.tree, "");
	CHECK_OK(ps_source_resolve(src, "main", c2, &head));
	CHECK_STR(head.commit, c1);
	CHECK_STR(head.tree, t1);
	CHECK_OK(ps_source_resolve(src, "feature/a/b", NULL, &head));
	CHECK_STR(head.commit, c2);
	CHECK_STR(head.tree, t2);
	CHECK(ps_sha_valid(head.commit) && strlen(head.commit) == 40);

	CHECK_INT(ps_source_resolve(src, "nope", NULL, &head), PS_ENOTFOUND);
	CHECK_STR(ps_error_slug(), "branch_not_found");
	CHECK(strstr(ps_error_message(), "branch 'nope' not found") != NULL);
	/* A prefix of a branch with slashes is not a branch. */
	CHECK_INT(ps_source_resolve(src, "feature/a", NULL, &head), PS_ENOTFOUND);
	/* Nor is something that only parses as a refspec. */
	CHECK_INT(ps_source_resolve(src, "main:x", NULL, &head), PS_ENOTFOUND);

	/* The repository moves on: the source sees it without reopening. */
	ps_test_write(repo, "c.txt", "c\n");
	free(c1);
	c1 = ps_test_git_commit(repo, "three");
	CHECK_OK(ps_source_resolve(src, NULL, NULL, &head));
	CHECK_STR(head.commit, c1);
	CHECK_INT(src->requests, 0);
	ps_source_free(src);
out:
	free(c1);
	free(c2);
	free(t1);
	free(t2);
	free(repo);
}

/*
 * A local repository's handle is kept between sources of the same path when it read no object
 * (git.c keep_repo): a later source must still see what a newly opened one would, a moved
 * branch, packed refs, new objects, another repository put at the same path.
 */
static void test_kept_repository_sees_changes(void)
{
	char *repo = ps_test_git_init();
	struct ps_source *src;
	struct ps_head head = {0};
	struct ps_tree t = { 0 };
	char *c1, *c2, *c3, *t2, *other, *path;

	ps_test_write(repo, "a.txt", "a\n");
	c1 = ps_test_git_commit(repo, "one");
	/* Unmoved: answered from the ref alone, so the handle is kept at free. */
	size_t kept = ps_git_source_kept();
	src = open_ok(repo, NULL);
	CHECK_OK(ps_source_resolve(src, "main", c1, &head));
	CHECK_STR(head.tree, "");
	ps_source_free(src);
	CHECK_INT(ps_git_source_kept(), kept + 1);

	/* A new commit, its objects packed and the refs packed: the next source sees them. */
	ps_test_write(repo, "b.txt", "b\n");
	c2 = ps_test_git_commit(repo, "two");
	t2 = ps_test_sh_out(repo, "git rev-parse HEAD^{tree}");
	CHECK_INT(ps_test_sh(repo, "git gc -q && git pack-refs --all"), 0);
	src = open_ok(repo, NULL);
	CHECK_INT(ps_git_source_kept(), kept); /* taken out while in use */
	CHECK_OK(ps_source_resolve(src, NULL, c1, &head));
	CHECK_STR(head.commit, c2);
	CHECK_STR(head.tree, t2);
	CHECK_OK(ps_source_read_tree(src, t2, &t));
	CHECK_INT(t.n, 2);
	ps_tree_dispose(&t);
	ps_source_free(src);
	/* It read objects: not kept (its odb would stay open). */
	CHECK_INT(ps_git_source_kept(), kept);

	/* Unmoved again (kept again), then a loose ref over the packed one. */
	src = open_ok(repo, NULL);
	CHECK_OK(ps_source_resolve(src, "main", c2, &head));
	CHECK_STR(head.tree, "");
	ps_source_free(src);
	ps_test_write(repo, "c.txt", "c\n");
	c3 = ps_test_git_commit(repo, "three");
	src = open_ok(repo, NULL);
	CHECK_OK(ps_source_resolve(src, "main", c2, &head));
	CHECK_STR(head.commit, c3);
	ps_source_free(src);

	/* Kept, then the repository is replaced by another one at the same path. */
	src = open_ok(repo, NULL);
	CHECK_OK(ps_source_resolve(src, "main", c3, &head));
	ps_source_free(src);
	other = ps_test_git_init();
	ps_test_write(other, "z.txt", "z\n");
	free(c1);
	c1 = ps_test_git_commit(other, "elsewhere");
	CHECK_INT(ps_test_sh(repo, "rm -rf .git && cp -r '%s/.git' .git", other), 0);
	src = open_ok(repo, NULL);
	CHECK_OK(ps_source_resolve(src, "main", c3, &head));
	CHECK_STR(head.commit, c1);
	ps_source_free(src);

	/* Kept, then gone: the path says so, as for a repository never opened. */
	src = open_ok(repo, NULL);
	CHECK_OK(ps_source_resolve(src, "main", c1, &head));
	ps_source_free(src);
	path = ps_strdup(repo);
	CHECK_INT(ps_test_sh(repo, "rm -rf .git"), 0);
	src = NULL;
	CHECK_INT(ps_source_open(&src, path, NULL), PS_EINVAL);
	CHECK(strstr(ps_error_message(), "not a git repository") != NULL);
	ps_source_free(src);
	free(path);
	free(other);
	free(c1);
	free(c2);
	free(c3);
	free(t2);
	free(repo);
}

static void test_bare_local(void)
{
	char *repo = ps_test_git_init();
	char *bare = ps_test_tmpdir();
	char *c1, *path;
	struct ps_source *src;
	struct ps_head head = {0};

	ps_test_write(repo, "a.txt", "a\n");
	c1 = ps_test_git_commit(repo, "one");
	CHECK_INT(ps_test_sh(bare, "git clone -q --bare '%s' b.git", repo), 0);
	path = ps_asprintf("%s/b.git", bare);
	src = open_ok(path, NULL);
	if (src) {
		CHECK_OK(ps_source_resolve(src, NULL, NULL, &head));
		CHECK_STR(head.commit, c1);
		ps_source_free(src);
	}
	free(path);
	free(c1);
	free(bare);
	free(repo);
}

static void check_empty(const char *spec)
{
	struct ps_source_opts o = opts_with_cache();
	struct ps_source *src = open_ok(spec, &o);
	struct ps_strv names = {0};
	struct ps_head head = {0};
	char *def = (char *)"x";

	if (!src)
		return;
	CHECK_OK(ps_source_branches(src, &names, &def));
	CHECK_INT(names.n, 0);
	CHECK(def == NULL);
	ps_strv_dispose(&names);
	CHECK_INT(ps_source_resolve(src, NULL, NULL, &head), PS_EEMPTY);
	CHECK(strstr(ps_error_message(), "repository is empty") != NULL);
	CHECK_INT(ps_source_resolve(src, "main", NULL, &head), PS_EEMPTY);
	ps_source_free(src);
}

static void test_empty_repository(void)
{
	char *repo = ps_test_git_init();
	char *bare = ps_test_tmpdir();
	char *url = ps_asprintf("file://%s", bare);

	check_empty(repo);
	CHECK_INT(ps_test_sh(bare, "git init -q --bare -b main ."), 0);
	check_empty(url);
	free(url);
	free(bare);
	free(repo);
}

/* read_tree and fetch_blobs on the fancy repository through `spec`. */
static void check_fancy(const char *repo, const char *spec)
{
	struct ps_source_opts o = opts_with_cache();
	struct ps_source *src = open_ok(spec, &o);
	struct ps_tree tree = {0}, sub = {0};
	struct ps_head head = {0};
	struct collected col = {0};
	const struct ps_tree_entry *e;
	const char *shas[4];
	char *expect_tree, *s;

	if (!src)
		return;
	CHECK_OK(ps_source_resolve(src, NULL, NULL, &head));
	expect_tree = ps_test_sh_out(repo, "git rev-parse HEAD^{tree}");
	CHECK_STR(head.tree, expect_tree);
	free(expect_tree);

	CHECK_OK(ps_source_read_tree(src, head.tree, &tree));
	CHECK_INT(tree.n, 10);

	e = find_entry(&tree, "README.md");
	CHECK(e && e->mode == PS_MODE_FILE && e->size == 8);
	if (e) {
		s = ps_test_sh_out(repo, "git rev-parse HEAD:README.md");
		CHECK_STR(e->sha, s);
		free(s);
	}
	e = find_entry(&tree, "run.sh");
	CHECK(e && e->mode == PS_MODE_EXEC);
	e = find_entry(&tree, "link");
	CHECK(e && e->mode == PS_MODE_LINK && e->size == (int64_t)strlen("target.txt"));
	e = find_entry(&tree, "sub");
	CHECK(e && e->mode == PS_MODE_COMMIT && e->size == -1);
	if (e)
		CHECK_STR(e->sha, SUB_SHA);
	e = find_entry(&tree, "dir");
	CHECK(e && e->mode == PS_MODE_TREE && e->size == -1);
	if (e) {
		CHECK_OK(ps_source_read_tree(src, e->sha, &sub));
		CHECK_INT(sub.n, 1);
		if (sub.n == 1) {
			CHECK_STR(sub.entries[0].name, "inner.txt");
			CHECK_INT(sub.entries[0].size, 6);
		}
		ps_tree_dispose(&sub);
	}
	e = find_entry(&tree, "ünï cødé.txt");
	CHECK(e && e->mode == PS_MODE_FILE);
	if (e) {
		s = ps_test_sh_out(repo, "git rev-parse 'HEAD:ünï cødé.txt'");
		CHECK_STR(e->sha, s);
		free(s);
	}
	CHECK(find_entry(&tree, "with space") != NULL);
	CHECK(find_entry(&tree, "-dash") != NULL);
	CHECK(find_entry(&tree, "target.txt") != NULL);

	/* Blob content equals what git prints, binary included. */
	shas[0] = find_entry(&tree, "README.md") ? find_entry(&tree, "README.md")->sha : "";
	shas[1] = find_entry(&tree, "link") ? find_entry(&tree, "link")->sha : "";
	shas[2] = find_entry(&tree, "bin.dat") ? find_entry(&tree, "bin.dat")->sha : "";
	shas[3] = find_entry(&tree, "-dash") ? find_entry(&tree, "-dash")->sha : "";
	CHECK_OK(ps_source_fetch_blobs(src, shas, 4, collect_cb, &col));
	CHECK_INT(col.shas.n, 4);
	if (col.shas.n == 4) {
		s = ps_test_sh_out(repo, "git cat-file -p %s", shas[0]);
		CHECK_STR(col.data.v[0], "# hello\n"); /* sh_out trims the newline */
		CHECK_INT(col.lens[0], 8);
		CHECK(strncmp(col.data.v[0], s, strlen(s)) == 0);
		free(s);
		CHECK_STR(col.data.v[1], "target.txt");
		CHECK_INT(col.lens[2], 6);
		CHECK(memcmp(col.data.v[2], "a\0b\0\377z", 6) == 0);
		CHECK_STR(col.data.v[3], "dash\n");
		CHECK_STR(col.shas.v[2], shas[2]);
		e = find_entry(&tree, "bin.dat");
		CHECK(e && e->size == 6);
	}
	collected_dispose(&col);

	/* A callback's non-zero return stops the fetch and comes back. */
	col = (struct collected){.stop_after = 1};
	CHECK_INT(ps_source_fetch_blobs(src, shas, 4, collect_cb, &col), 7);
	CHECK_INT(col.shas.n, 1);
	collected_dispose(&col);

	/* Unknown objects. */
	{
		const char *missing[1] = {"0123456789012345678901234567890123456789"};
		col = (struct collected){0};
		CHECK_INT(ps_source_fetch_blobs(src, missing, 1, collect_cb, &col),
			  PS_ENOTFOUND);
		CHECK_INT(col.shas.n, 0);
		collected_dispose(&col);
		CHECK_INT(ps_source_read_tree(src, missing[0], &sub), PS_ENOTFOUND);
		/* A blob is not a tree. */
		CHECK_INT(ps_source_read_tree(src, shas[0], &sub), PS_ENOTFOUND);
		CHECK_INT(ps_source_read_tree(src, "not-a-sha", &sub), PS_EINVAL);
	}
	ps_tree_dispose(&tree);
	ps_source_free(src);
}

static void test_read_tree_local(void)
{
	char *repo = make_fancy_repo();
	check_fancy(repo, repo);
	free(repo);
}

static void test_read_tree_url(void)
{
	char *repo = make_fancy_repo();
	char *url = ps_asprintf("file://%s", repo);
	check_fancy(repo, url);
	free(url);
	free(repo);
}

/* A bare "upstream" with a work clone to push from; returns the upstream's file:// URL. */
static char *make_upstream(char **work_out, char **bare_out)
{
	char *bare = ps_test_tmpdir();
	char *work = ps_test_git_init();

	CHECK_INT(ps_test_sh(bare, "git init -q --bare -b main ."), 0);
	CHECK_INT(ps_test_sh(work, "git remote add origin '%s'", bare), 0);
	*work_out = work;
	*bare_out = bare;
	return ps_asprintf("file://%s", bare);
}

static size_t count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n;
}

static void test_url_source(void)
{
	char *work, *bare, *url = make_upstream(&work, &bare);
	struct ps_source_opts o = {.cache_dir = NULL};
	char *cache = ps_test_tmpdir();
	char *cache_sub = ps_asprintf("%s/nested/caches", cache);
	struct ps_source *src;
	struct ps_strv names = {0};
	char *def = NULL, *c1, *c2, *t1;
	struct ps_head head = {0};
	int64_t req;

	ps_test_write(work, "a.txt", "a\n");
	c1 = ps_test_git_commit(work, "one");
	t1 = ps_test_sh_out(work, "git rev-parse HEAD^{tree}");
	CHECK_INT(ps_test_sh(work, "git checkout -q -b feature/x/y && echo b > b.txt && "
				   "git add -A && git commit -q -m two && git checkout -q main && "
				   "git push -q origin main feature/x/y"), 0);
	c2 = ps_test_sh_out(work, "git rev-parse feature/x/y");

	/* A remote source needs somewhere to cache. */
	CHECK_INT(ps_source_open(&src, url, &o), PS_EINVAL);

	o.cache_dir = cache_sub;
	src = open_ok(url, &o);
	if (!src)
		goto out;
	CHECK_INT(count_dir(cache), 0); /* opening stays offline and lazy */
	CHECK_INT(src->requests, 0);

	CHECK_OK(ps_source_branches(src, &names, &def));
	CHECK_INT(names.n, 2);
	if (names.n == 2) {
		CHECK_STR(names.v[0], "feature/x/y");
		CHECK_STR(names.v[1], "main");
	}
	CHECK_STR(def, "main");
	CHECK_INT(src->requests, 1);
	ps_strv_dispose(&names);
	free(def);

	CHECK_OK(ps_source_resolve(src, NULL, NULL, &head));
	CHECK_STR(head.commit, c1);
	CHECK_STR(head.tree, t1);
	CHECK_INT(src->requests, 3); /* list, then list + fetch */
	CHECK(src->bytes > 0);
	CHECK_INT(count_dir(cache_sub), 1);

	CHECK_OK(ps_source_resolve(src, "feature/x/y", NULL, &head));
	CHECK_STR(head.commit, c2);

	/* Nothing moved: answered from the listing, no fetch. */
	req = src->requests;
	CHECK_OK(ps_source_resolve(src, "main", c1, &head));
	CHECK_STR(head.commit, c1);
	CHECK_INT(src->requests, req + 1);

	CHECK_INT(ps_source_resolve(src, "feature/x", NULL, &head), PS_ENOTFOUND);
	CHECK_STR(ps_error_slug(), "branch_not_found");
	CHECK(strstr(ps_error_message(), "branch 'feature/x' not found in") != NULL);
	ps_source_free(src);

	/* A second source on the same URL reuses the cache: reading needs no network at all. */
	src = open_ok(url, &o);
	if (src) {
		struct ps_tree tree = {0};
		CHECK_OK(ps_source_read_tree(src, t1, &tree));
		CHECK_INT(tree.n, 1);
		CHECK_INT(src->requests, 0);
		ps_tree_dispose(&tree);
		ps_source_free(src);
	}
	CHECK_INT(count_dir(cache_sub), 1);
out:
	free(c1);
	free(c2);
	free(t1);
	free(cache_sub);
	free(cache);
	free(url);
	free(work);
	free(bare);
}

static void test_force_push(void)
{
	char *work, *bare, *url = make_upstream(&work, &bare);
	struct ps_source_opts o = opts_with_cache();
	struct ps_source *src;
	struct ps_head head = {0};
	struct ps_tree tree = {0};
	char *c1, *t1, *c2, *t2;

	ps_test_write(work, "a.txt", "first\n");
	c1 = ps_test_git_commit(work, "one");
	t1 = ps_test_sh_out(work, "git rev-parse HEAD^{tree}");
	CHECK_INT(ps_test_sh(work, "git push -q origin main"), 0);

	src = open_ok(url, &o);
	if (!src)
		goto out;
	CHECK_OK(ps_source_resolve(src, "main", NULL, &head));
	CHECK_STR(head.commit, c1);

	/* Rewrite history upstream and drop the old objects there. */
	ps_test_write(work, "a.txt", "rewritten\n");
	CHECK_INT(ps_test_sh(work, "git add -A && git commit -q --amend -m rewritten && "
				   "git push -q --force origin main"), 0);
	CHECK_INT(ps_test_sh(bare, "git reflog expire --expire=now --all && "
				   "git gc -q --prune=now"), 0);
	CHECK_INT(ps_test_sh(bare, "git cat-file -e %s 2>/dev/null", t1) != 0, 1);
	c2 = ps_test_sh_out(work, "git rev-parse HEAD");
	t2 = ps_test_sh_out(work, "git rev-parse HEAD^{tree}");
	CHECK(strcmp(c1, c2) != 0);

	CHECK_OK(ps_source_resolve(src, "main", c1, &head));
	CHECK_STR(head.commit, c2);
	CHECK_STR(head.tree, t2);
	/* The tree of the last sync is still in the cache to diff against. */
	CHECK_OK(ps_source_read_tree(src, t1, &tree));
	CHECK_INT(tree.n, 1);
	if (tree.n == 1) {
		struct collected col = {0};
		const char *sha = tree.entries[0].sha;
		CHECK_OK(ps_source_fetch_blobs(src, &sha, 1, collect_cb, &col));
		if (col.data.n == 1)
			CHECK_STR(col.data.v[0], "first\n");
		collected_dispose(&col);
	}
	ps_tree_dispose(&tree);

	/* Pushed back to the old commit: it is still resolved correctly. */
	CHECK_INT(ps_test_sh(work, "git push -q --force origin %s:refs/heads/main", c1), 0);
	CHECK_OK(ps_source_resolve(src, "main", NULL, &head));
	CHECK_STR(head.commit, c1);
	ps_source_free(src);
	free(c2);
	free(t2);
out:
	free(c1);
	free(t1);
	free(url);
	free(work);
	free(bare);
}

/* How many objects the cache repository of `url` holds, reachable or not. */
static long cache_objects(const char *cache_dir)
{
	char *out = ps_test_sh_out(cache_dir, "for d in git-*.git; do git --git-dir=$d cat-file "
					      "--batch-all-objects --batch-check | wc -l; done");
	long n = out ? atol(out) : -1;

	free(out);
	return n;
}

/*
 * A git URL is fetched one commit deep: a long history costs the head's objects only, a
 * re-sync only the objects the new commit adds, and libgit2 reads the shallow cache.
 */
static void test_shallow_fetch(void)
{
	char *work, *bare, *url = make_upstream(&work, &bare);
	char *cache = ps_test_tmpdir();
	struct ps_source_opts o = {.cache_dir = cache};
	struct ps_source *src = NULL;
	struct ps_head head = {0};
	struct ps_tree tree = {0};
	char *head_objs = NULL, *c2 = NULL, *t2 = NULL, *shallow = NULL;
	int64_t first_bytes, before;
	long objs;

	/* 40 commits that each rewrite 20 files: the history is 40 times the head. */
	CHECK_INT(ps_test_sh(work, "for i in $(seq 1 40); do for j in $(seq 1 20); do "
				   "mkdir -p d$((j %% 3)) && echo \"$i $j\" > d$((j %% 3))/f$j.txt; "
				   "done; git add -A && git commit -q -m c$i || exit 1; done && "
				   "git push -q origin main"), 0);
	/* The commit, the root tree and every tree and blob below it. */
	head_objs = ps_test_sh_out(work, "echo $(( $(git ls-tree -r -t HEAD | wc -l) + 2 ))");
	src = open_ok(url, &o);
	if (!src)
		goto out;
	CHECK_OK(ps_source_resolve(src, "main", NULL, &head));
	/* Exactly the head commit, its trees and its blobs: no history. */
	objs = cache_objects(cache);
	CHECK_INT(objs, atol(head_objs));
	shallow = ps_test_sh_out(cache, "cat git-*.git/shallow");
	CHECK_STR(shallow, head.commit);
	first_bytes = src->bytes;
	CHECK(first_bytes > 0);
	CHECK_OK(ps_source_read_tree(src, head.tree, &tree));
	CHECK_INT(tree.n, 3);
	ps_tree_dispose(&tree);

	/* One file changes: the commit, two trees and the blob come, nothing else. */
	ps_test_write(work, "d1/f1.txt", "changed\n");
	c2 = ps_test_git_commit(work, "small");
	t2 = ps_test_sh_out(work, "git rev-parse HEAD^{tree}");
	CHECK_INT(ps_test_sh(work, "git push -q origin main"), 0);
	before = src->bytes;
	CHECK_OK(ps_source_resolve(src, "main", head.commit, &head));
	CHECK_STR(head.commit, c2);
	CHECK_STR(head.tree, t2);
	CHECK_INT(cache_objects(cache), objs + 4);
	CHECK(src->bytes > before && src->bytes - before < first_bytes / 2);
	CHECK_OK(ps_source_read_tree(src, t2, &tree));
	CHECK_INT(tree.n, 3);
	ps_tree_dispose(&tree);
out:
	ps_source_free(src);
	free(shallow);
	free(head_objs);
	free(c2);
	free(t2);
	free(cache);
	free(url);
	free(work);
	free(bare);
}

/* Branch names that could read as an option never reach git. */
static void test_dash_branch_refused(void)
{
	char *work, *bare, *url = make_upstream(&work, &bare);
	struct ps_source_opts o = opts_with_cache();
	struct ps_source *src;
	struct ps_head head = {0};

	ps_test_write(work, "a.txt", "a\n");
	free(ps_test_git_commit(work, "one"));
	CHECK_INT(ps_test_sh(work, "git update-ref refs/heads/-x HEAD && "
				   "git push -q origin main refs/heads/-x:refs/heads/-x"), 0);
	src = open_ok(url, &o);
	if (src) {
		CHECK_INT(ps_source_resolve(src, "-x", NULL, &head), PS_ENOTFOUND);
		CHECK_STR(ps_error_slug(), "branch_not_found");
		CHECK(strstr(ps_error_message(), "not a valid branch name") != NULL);
		CHECK_OK(ps_source_resolve(src, "main", NULL, &head));
		ps_source_free(src);
	}
	free(url);
	free(work);
	free(bare);
}

/* Upstream deletes branch "a" and creates "a/b": the cache's old ref must not block the fetch. */
static void test_branch_dir_file_conflict(void)
{
	char *work, *bare, *url = make_upstream(&work, &bare);
	struct ps_source_opts o = opts_with_cache();
	struct ps_source *src;
	struct ps_head head = {0};
	char *c1, *c2;

	ps_test_write(work, "a.txt", "a\n");
	c1 = ps_test_git_commit(work, "one");
	CHECK_INT(ps_test_sh(work, "git push -q origin main:refs/heads/a main"), 0);
	src = open_ok(url, &o);
	if (!src)
		goto out;
	CHECK_OK(ps_source_resolve(src, "a", NULL, &head));
	CHECK_STR(head.commit, c1);

	ps_test_write(work, "b.txt", "b\n");
	c2 = ps_test_git_commit(work, "two");
	CHECK_INT(ps_test_sh(work, "git push -q origin :refs/heads/a && "
				   "git push -q origin main:refs/heads/a/b"), 0);
	CHECK_OK(ps_source_resolve(src, "a/b", NULL, &head));
	CHECK_STR(head.commit, c2);
	CHECK_INT(ps_source_resolve(src, "a", NULL, &head), PS_ENOTFOUND);
	ps_source_free(src);
	free(c2);
out:
	free(c1);
	free(url);
	free(work);
	free(bare);
}

static void expect_invalid(const char *spec, const char *slug, const char *msg_part)
{
	struct ps_source_opts o = opts_with_cache();
	struct ps_source *src = NULL;
	int rc = ps_source_open(&src, spec, &o);

	if (rc != PS_EINVAL)
		fprintf(stderr, "spec '%s' gave %d\n", spec, rc);
	CHECK_INT(rc, PS_EINVAL);
	CHECK(src == NULL);
	if (slug)
		CHECK_STR(ps_error_slug(), slug);
	if (msg_part && !strstr(ps_error_message(), msg_part))
		CHECK_STR(ps_error_message(), msg_part);
	CHECK_INT(ps_source_check(spec, &o), PS_EINVAL);
	ps_source_free(src);
}

static void test_bad_sources(void)
{
	char *plain = ps_test_tmpdir();
	char *file = ps_asprintf("%s/f.txt", plain);
	char *missing = ps_asprintf("%s/missing", plain);
	char *repo = ps_test_git_init();
	char *inside = ps_asprintf("%s/subdir", repo);

	ps_test_write(plain, "f.txt", "x");
	ps_test_write(repo, "subdir/x.txt", "x");
	expect_invalid(missing, "bad_source", "no such directory: ");
	expect_invalid(plain, "bad_source", "not a git repository: ");
	expect_invalid(file, "bad_source", "not a git repository: ");
	/* A directory inside a repository is not the repository. */
	expect_invalid(inside, "bad_source", "not a git repository: ");
	expect_invalid("", "bad_source", NULL);
	expect_invalid("github:octo", "bad_source", "OWNER/REPO");
	expect_invalid("github:-octo/repo", "bad_source", "owner");
	expect_invalid("github:octo_x/repo", "bad_source", "owner");
	expect_invalid("github:0123456789012345678901234567890123456789/repo", "bad_source", "owner");
	expect_invalid("github:/repo", "bad_source", "owner");
	expect_invalid("github:octo/", "bad_source", "repository");
	expect_invalid("github:octo/..", "bad_source", "repository");
	expect_invalid("github:octo/.", "bad_source", "repository");
	expect_invalid("github:octo/re po", "bad_source", "repository");
	expect_invalid("github:octo/a/b", "bad_source", "repository");
	expect_invalid("https://github.com/octo", "bad_source", NULL);
	expect_invalid("https://github.com/octo/repo/tree/main", "bad_source", NULL);
	free(plain);
	free(file);
	free(missing);
	free(inside);
	free(repo);
}

/* GitHub names and other URLs open without any network: remote sources connect lazily. */
static void test_remote_specs_parse(void)
{
	static const char *const specs[] = {
		"github:octo/repo",
		"github:octo-cat/my.repo_x-1",
		"https://github.com/octo/repo",
		"https://github.com/octo/repo.git",
		"https://github.com/octo/repo/",
		"git@example.invalid:octo/repo.git",
		"ssh://git@example.invalid/octo/repo.git",
	};
	struct ps_source_opts o = opts_with_cache();
	char *cache_before = ps_asprintf("%zu", count_dir(o.cache_dir));

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		struct ps_source *src = open_ok(specs[i], &o);
		if (!src)
			continue;
		/* GitHub names go to the REST connector, other URLs to libgit2. */
		CHECK_STR(src->ops->kind, i < 5 ? "github" : "git");
		CHECK_INT(src->requests, 0);
		ps_source_free(src);
	}
	{
		char *after = ps_asprintf("%zu", count_dir(o.cache_dir));
		CHECK_STR(after, cache_before);
		free(after);
	}
	free(cache_before);
}

static void test_relative_path(void)
{
	char *repo = ps_test_git_init();
	char cwd[4096];
	struct ps_source *src = NULL;
	struct ps_head head = {0};
	char *c1, *parent = ps_strdup(repo), *base;

	ps_test_write(repo, "a.txt", "a\n");
	c1 = ps_test_git_commit(repo, "one");
	base = strrchr(parent, '/');
	*base++ = '\0';
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT(chdir(parent), 0);
	CHECK_OK(ps_source_open(&src, base, NULL));
	CHECK_INT(chdir(cwd), 0);
	if (src) {
		/* Still the same repository after the working directory changed. */
		CHECK_OK(ps_source_resolve(src, NULL, NULL, &head));
		CHECK_STR(head.commit, c1);
		ps_source_free(src);
	}
	free(c1);
	free(parent);
	free(repo);
}

static void test_check(void)
{
	char *repo = ps_test_git_init();
	char *bare = ps_test_tmpdir();
	char *url = ps_asprintf("file://%s", bare);
	char *gone = ps_asprintf("file://%s/nothing-here", bare);
	struct ps_source_opts o = opts_with_cache();

	CHECK_OK(ps_source_check(repo, &o));
	CHECK_INT(ps_test_sh(bare, "git init -q --bare -b main ."), 0);
	CHECK_OK(ps_source_check(url, &o));
	CHECK_INT(ps_source_check(gone, &o), PS_EUPSTREAM);
	CHECK(strstr(ps_error_message(), gone) != NULL);
	/* The same failure surfaces from the source itself. */
	{
		struct ps_source *src = open_ok(gone, &o);
		struct ps_head head = {0};
		struct ps_strv names = {0};
		char *def = NULL;
		if (src) {
			CHECK_INT(ps_source_resolve(src, NULL, NULL, &head), PS_EUPSTREAM);
			CHECK_INT(ps_source_branches(src, &names, &def), PS_EUPSTREAM);
			ps_source_free(src);
		}
	}
	free(gone);
	free(url);
	free(bare);
	free(repo);
}

/* ---- network bounds ---- */

/* A loopback listener on a free port. With `fill`, its accept queue is filled first, so the
 * kernel drops further SYNs: a connect to it never completes. Otherwise the kernel completes
 * handshakes for it and nobody ever reads: a peer that accepts and never answers. */
static int listener(int *port, bool fill, int *fillers, size_t nfill)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(fd >= 0);
	CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_INT(listen(fd, fill ? 0 : 64), 0);
	CHECK_INT(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	for (size_t i = 0; fill && i < nfill; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
	}
	return fd;
}

static double since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* `rc` is a timeout reported within the bound (0.5 s here, plus slack for a loaded machine). */
static void check_timed_out(int rc, const struct timespec *t0, const char *what)
{
	double took = since(t0);

	if (rc != PS_EUPSTREAM || strcmp(ps_error_slug(), "upstream_timeout") != 0 || took > 3.0)
		fprintf(stderr, "%s: rc %d slug %s after %.2f s: %s\n", what, rc, ps_error_slug(),
			took, ps_error_message());
	CHECK_INT(rc, PS_EUPSTREAM);
	CHECK_STR(ps_error_slug(), "upstream_timeout");
	CHECK(strstr(ps_error_message(), "PROJSYNC_NET_TIMEOUT") != NULL);
	CHECK(took >= 0.4 && took < 3.0);
}

static void test_silent_remotes_time_out(void)
{
	struct ps_source_opts o = opts_with_cache(), ob = o;
	int fillers[4], port_silent, port_full;
	int silent = listener(&port_silent, false, NULL, 0);
	int full = listener(&port_full, true, fillers, 4);
	const char *schemes[] = { "http", "git", "https" };
	struct timespec t0;
	int rc;

	/* Before the bound existed these calls blocked forever: let the test die instead. */
	alarm(60);
	setenv("PROJSYNC_NET_TIMEOUT", "0.5", 1);
	ob.bounded = true;
	for (size_t i = 0; i < 3; i++) {
		char *url = ps_asprintf("%s://127.0.0.1:%d/r.git", schemes[i], port_silent);
		struct ps_source *src;
		struct ps_head head = {0};
		struct ps_strv names = {0};
		char *def = NULL;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		check_timed_out(ps_source_check(url, &o), &t0, url);
		CHECK(strstr(ps_error_message(), url) != NULL);
		/* The branch list of a request thread and a sync's resolve are bounded too. */
		src = open_ok(url, &ob);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		check_timed_out(src ? ps_source_branches(src, &names, &def) : -1, &t0, url);
		ps_source_free(src);
		src = open_ok(url, &o);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		check_timed_out(src ? ps_source_resolve(src, NULL, NULL, &head) : -1, &t0, url);
		ps_source_free(src);
		free(url);
	}
	{
		char *url = ps_asprintf("http://127.0.0.1:%d/r.git", port_full);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = ps_source_check(url, &o);
		check_timed_out(rc, &t0, url);
		CHECK(strstr(ps_error_message(), "connecting to") != NULL);
		free(url);
	}
	/* A failure of another kind after a timeout is not called a timeout. */
	{
		char *bare = ps_test_tmpdir();
		char *gone = ps_asprintf("file://%s/nothing-here", bare);
		CHECK_INT(ps_source_check(gone, &o), PS_EUPSTREAM);
		CHECK(strcmp(ps_error_slug(), "upstream_timeout") != 0);
		free(gone);
		free(bare);
	}
	unsetenv("PROJSYNC_NET_TIMEOUT");
	alarm(0);
	for (size_t i = 0; i < 4; i++)
		close(fillers[i]);
	close(full);
	close(silent);
}

/* A peer that answers one byte at a time, each well within the idle bound, for ever. */
struct trickler {
	int fd;
	volatile bool stop;
};

static void *trickle(void *ud)
{
	struct trickler *t = ud;
	static const char head[] = "HTTP/1.1 200 OK\r\nX-Slow: ";
	int c = accept(t->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	(void)!write(c, head, sizeof(head) - 1);
	while (!t->stop) {
		struct timespec d = { 0, 100 * 1000000 };
		if (write(c, "a", 1) != 1)
			break;
		nanosleep(&d, NULL);
	}
	close(c);
	return NULL;
}

static void test_trickling_remote_is_bounded_as_a_whole(void)
{
	struct ps_source_opts o = opts_with_cache();
	struct trickler t = { 0 };
	struct timespec t0;
	pthread_t th;
	int port;
	char *url;

	t.fd = listener(&port, false, NULL, 0);
	url = ps_asprintf("http://127.0.0.1:%d/r.git", port);
	CHECK_INT(pthread_create(&th, NULL, trickle, &t), 0);
	alarm(60);
	setenv("PROJSYNC_NET_TIMEOUT", "0.5", 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	check_timed_out(ps_source_check(url, &o), &t0, url);
	unsetenv("PROJSYNC_NET_TIMEOUT");
	alarm(0);
	t.stop = true;
	shutdown(t.fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(t.fd);
	free(url);
}

/*
 * A git:// server that answers the first connection (the listing) with a valid advertisement
 * and the second (the fetch, made by git's CLI) with the same advertisement, then either says
 * nothing more (`trickle` false) or sends one more advertised ref every 100 ms for ever: a
 * peer whose every line is within the idle bound.
 */
struct fake_daemon {
	int fd;
	bool trickle;
	volatile bool stop;
};

static void pkt(int c, const char *fmt, ...)
{
	char body[512], line[520];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%04x%s", n + 4, body);
	(void)!write(c, line, (size_t)n + 4);
}

static void *fake_daemon_run(void *ud)
{
	struct fake_daemon *d = ud;
	static const char sha[] = "1111111111111111111111111111111111111111";

	for (int conn = 0; conn < 2 && !d->stop; conn++) {
		char req[1024];
		int c = accept(d->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		(void)!read(c, req, sizeof(req));
		pkt(c, "%s HEAD%cmulti_ack_detailed side-band-64k ofs-delta shallow "
		       "no-progress symref=HEAD:refs/heads/main\n", sha, 0);
		pkt(c, "%s refs/heads/main\n", sha);
		if (conn == 0) {
			(void)!write(c, "0000", 4);
			close(c);
			continue;
		}
		for (int i = 0; d->trickle && !d->stop; i++) {
			struct timespec t = { 0, 100 * 1000000 };
			pkt(c, "%s refs/heads/more%d\n", sha, i);
			nanosleep(&t, NULL);
		}
		while (!d->stop) {
			struct timespec t = { 0, 50 * 1000000 };
			nanosleep(&t, NULL);
		}
		close(c);
	}
	return NULL;
}

/* The fetch after a good listing is bounded too: git's CLI is killed, not waited for. */
static void test_stalled_fetch_is_bounded(void)
{
	alarm(60);
	setenv("PROJSYNC_NET_TIMEOUT", "0.5", 1);
	for (int trickle = 0; trickle < 2; trickle++) {
		struct ps_source_opts o = opts_with_cache();
		struct fake_daemon d = { .trickle = trickle };
		struct ps_source *src;
		struct ps_head head = {0};
		struct timespec t0;
		pthread_t th;
		int port;
		char *url;

		d.fd = listener(&port, false, NULL, 0);
		url = ps_asprintf("git://127.0.0.1:%d/r.git", port);
		CHECK_INT(pthread_create(&th, NULL, fake_daemon_run, &d), 0);
		/* A trickling peer passes the idle bound: only a bounded source stops it. */
		o.bounded = trickle;
		src = open_ok(url, &o);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		check_timed_out(src ? ps_source_resolve(src, NULL, NULL, &head) : -1, &t0, url);
		CHECK(strstr(ps_error_message(), "git fetch timed out") != NULL);
		ps_source_free(src);
		d.stop = true;
		shutdown(d.fd, SHUT_RDWR);
		pthread_join(th, NULL);
		close(d.fd);
		free(url);
	}
	unsetenv("PROJSYNC_NET_TIMEOUT");
	alarm(0);
}

/* A git daemon on the bound listener `fd`: a child process accepts each connection and hands
 * it to `git daemon --inetd`. The port stays bound from the start: a port picked, released and
 * then given to a daemon races with every other test binding ports meanwhile. Returns the
 * child's pid; kill it with SIGTERM. */
static pid_t serve_git_daemon(int fd, const char *base)
{
	char *base_path = ps_asprintf("--base-path=%s", base);
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid != 0) {
		free(base_path);
		return pid;
	}
	for (;;) {
		int c = accept(fd, NULL, NULL);
		/* Reaped here, not with SIGCHLD ignored: the daemon would inherit that and lose
		 * its own children's exit status. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;

		if (c < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (fork() == 0) {
			dup2(c, 0);
			dup2(c, 1);
			close(c);
			close(fd);
			execlp("git", "git", "daemon", "--inetd", "--export-all",
			       "--log-destination=none", base_path, base, (char *)NULL);
			_exit(127);
		}
		close(c);
	}
}

/* The bounded stream carries real git traffic: a git daemon on loopback, listed and fetched. */
static void test_git_daemon_through_the_bounded_stream(void)
{
	char *base = ps_test_tmpdir();
	char *repo = ps_test_git_init();
	struct ps_source_opts o = opts_with_cache();
	struct ps_source *src;
	struct ps_strv names = {0};
	struct ps_head head = {0};
	char *def = NULL, *c1, *url;
	pid_t dpid;
	int port, fd;

	ps_test_write(repo, "a.txt", "over git://\n");
	c1 = ps_test_git_commit(repo, "one");
	CHECK_INT(ps_test_sh(base, "git clone -q --bare '%s' r.git", repo), 0);
	if (ps_test_sh(base, "test -x \"$(git --exec-path)/git-daemon\"") != 0) {
		fprintf(stderr, "git daemon unavailable: skipped\n");
		goto cleanup;
	}
	fd = listener(&port, false, NULL, 0);
	dpid = serve_git_daemon(fd, base);
	close(fd);
	url = ps_asprintf("git://127.0.0.1:%d/r.git", port);
	setenv("PROJSYNC_NET_TIMEOUT", "10", 1);
	CHECK_OK(ps_source_check(url, &o));
	src = open_ok(url, &o);
	if (src) {
		CHECK_OK(ps_source_branches(src, &names, &def));
		CHECK_INT(names.n, 1);
		CHECK_STR(def, "main");
		CHECK_OK(ps_source_resolve(src, NULL, NULL, &head));
		CHECK_STR(head.commit, c1);
		ps_source_free(src);
	}
	unsetenv("PROJSYNC_NET_TIMEOUT");
	kill(dpid, SIGTERM);
	waitpid(dpid, NULL, 0);
	ps_strv_dispose(&names);
	free(def);
	free(url);
cleanup:
	free(c1);
	free(repo);
	free(base);
}

/* A branch set on a project must exist as a branch: a tag or a commit id is not one. */
static void test_check_branch(void)
{
	char *repo = ps_test_git_init(), *sha, *empty = ps_test_git_init();
	char *bare = ps_test_tmpdir();
	char *url = ps_asprintf("file://%s", bare);
	struct ps_source_opts o = opts_with_cache();

	ps_test_write(repo, "a.txt", "a\n");
	sha = ps_test_git_commit(repo, "one");
	CHECK_INT(ps_test_sh(repo, "git tag v1 && git branch dev"), 0);
	CHECK_OK(ps_source_check_branch(repo, NULL, &o));
	CHECK_OK(ps_source_check_branch(repo, "dev", &o));
	CHECK_INT(ps_source_check_branch(repo, "v1", &o), PS_ENOTFOUND);
	CHECK_STR(ps_error_slug(), "branch_not_found");
	CHECK(strstr(ps_error_message(), "branch 'v1' not found") != NULL);
	CHECK_INT(ps_source_check_branch(repo, sha, &o), PS_ENOTFOUND);
	CHECK_INT(ps_source_check_branch(repo, "nope", &o), PS_ENOTFOUND);
	/* Through a URL: the remote's branches. */
	CHECK_INT(ps_test_sh(bare, "git clone -q --bare %s . && git -C . tag v2", repo), 0);
	CHECK_OK(ps_source_check_branch(url, "dev", &o));
	CHECK_INT(ps_source_check_branch(url, "v2", &o), PS_ENOTFOUND);
	/* An empty repository has no branch to compare with: any name is taken. */
	CHECK_OK(ps_source_check_branch(empty, "main", &o));
	free(url);
	free(bare);
	free(sha);
	free(empty);
	free(repo);
}

/* Crafted trees with modes git itself would not write: read as git reads them (git ls-tree
 * is the expected answer), never handed on raw. */
static void test_noncanonical_modes(void)
{
	char *repo = ps_test_git_init(), *tree, *ls;
	struct ps_source *src;
	struct ps_tree t = {0};

	ps_test_write(repo, "a.txt", "a\n");
	free(ps_test_git_commit(repo, "one"));
	tree = ps_test_sh_out(repo,
		"b=$(git rev-parse HEAD:a.txt) && t=$(git rev-parse HEAD^{tree}) && "
		"python3 -c 'import sys; b=bytes.fromhex(sys.argv[1]); t=bytes.fromhex(sys.argv[2]); "
		"sys.stdout.buffer.write(b\"100611 f\\0\"+b+b\"120777 l\\0\"+b+b\"140000 s\\0\"+t+"
		"b\"100711 x\\0\"+b)' $b $t | git hash-object -t tree --literally -w --stdin");
	ls = ps_test_sh_out(repo, "git ls-tree %s | cut -c1-6 | tr '\\n' ' '", tree);
	CHECK_STR(ls, "100644 120000 160000 100755 ");
	src = open_ok(repo, NULL);
	if (src && tree) {
		CHECK_OK(ps_source_read_tree(src, tree, &t));
		CHECK_INT(t.n, 4);
		if (t.n == 4) {
			CHECK_INT(find_entry(&t, "f")->mode, PS_MODE_FILE);
			CHECK_INT(find_entry(&t, "l")->mode, PS_MODE_LINK);
			CHECK_INT(find_entry(&t, "s")->mode, PS_MODE_COMMIT);
			CHECK_INT(find_entry(&t, "s")->size, -1);
			CHECK_INT(find_entry(&t, "x")->mode, PS_MODE_EXEC);
			CHECK_INT(find_entry(&t, "l")->size, 2);
		}
		ps_tree_dispose(&t);
	}
	ps_source_free(src);
	free(ls);
	free(tree);
	free(repo);
}

/*
 * A fetch session delivers a packed repository's blobs in pack order whatever order it was
 * given (the pipeline gives ids sorted): libgit2 then finds each delta's base in its cache
 * instead of inflating the whole chain again. Blobs in no pack (loose) come last, each once.
 */
static void test_fetch_in_pack_order(void)
{
	char *repo = ps_test_git_init();
	struct ps_source *src;
	struct ps_head head = {0};
	struct collected col = {0};
	struct ps_strv want = {0}, packed = {0};
	char *out, *line, *save = NULL, *loose;
	bool done = false;
	int steps = 0;

	/* Similar files, so that gc stores most of them as deltas of one another. */
	for (int i = 0; i < 12; i++) {
		char name[32], body[512];
		snprintf(name, sizeof(name), "f%02d.c", i);
		snprintf(body, sizeof(body), "/* a shared header line, long enough to delta */\n"
			 "int f%d(void)\n{\n\treturn %d;\n}\n/* %*s */\n", i, i * 7, 40 + i, "x");
		ps_test_write(repo, name, body);
	}
	free(ps_test_git_commit(repo, "files"));
	CHECK_INT(ps_test_sh(repo, "git gc -q"), 0);
	ps_test_write(repo, "loose.txt", "not in any pack\n");
	free(ps_test_git_commit(repo, "loose"));
	loose = ps_test_sh_out(repo, "git rev-parse HEAD:loose.txt");

	/* The blobs by offset in the one pack, as git's own index says. */
	out = ps_test_sh_out(repo, "for b in $(git ls-tree HEAD | awk '$2 == \"blob\" {print $3}'); "
				   "do git show-index < $(ls .git/objects/pack/*.idx) | "
				   "awk -v b=$b '$2 == b {print $1, $2}'; done | sort -n | "
				   "awk '{print $2}'");
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		ps_strv_push(&packed, line);
	free(out);
	CHECK_INT(packed.n, 12);
	if (packed.n != 12)
		return;
	out = ps_test_sh_out(repo, "git ls-tree HEAD | awk '{print $3}' | sort");
	save = NULL;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		ps_strv_push(&want, line);
	CHECK_INT(want.n, 13);
	free(out);
	/* Else the test could not tell the orders apart. */
	{
		size_t differ = 0, j = 0;
		for (size_t i = 0; i < want.n; i++)
			if (strcmp(want.v[i], loose) != 0)
				differ += strcmp(want.v[i], packed.v[j++]) != 0;
		CHECK(differ > 0);
	}

	src = open_ok(repo, NULL);
	CHECK_OK(ps_source_resolve(src, "main", NULL, &head));
	CHECK_OK(ps_source_fetch_begin(src, &head, (const char *const *)want.v, want.n));
	while (!done && steps++ < 10)
		CHECK_OK(ps_source_fetch_next(src, 5, collect_cb, &col, &done));
	CHECK(done);
	CHECK_INT(col.shas.n, 13);
	for (size_t i = 0; i < packed.n && i < col.shas.n; i++)
		CHECK_STR(col.shas.v[i], packed.v[i]);
	CHECK_STR(col.shas.v[12], loose);
	CHECK_STR(col.data.v[12], "not in any pack\n");
	ps_source_free(src);
	collected_dispose(&col);
	ps_strv_dispose(&want);
	ps_strv_dispose(&packed);
	free(loose);
	free(repo);
}

/*
 * A local source is a repository the user points at, maybe someone else's: whatever sits in
 * its objects/pack under a .idx name (a FIFO, a directory, truncated or random indexes, offsets
 * out of range) must neither hang nor crash the fetch, which still delivers every blob once,
 * with its bytes. A FIFO blocked the index's open() forever: libgit2 ignores an .idx without
 * its .pack, the pack order read every one.
 */
static void test_fetch_hostile_pack_indexes(void)
{
	char *repo = ps_test_git_init();
	struct ps_source *src;
	struct ps_head head = {0};
	struct ps_strv want = {0};
	char *out, *got, *line, *save = NULL;

	for (int i = 0; i < 12; i++) {
		char name[32], body[256];
		snprintf(name, sizeof(name), "f%02d.c", i);
		snprintf(body, sizeof(body), "/* a shared header line, long enough to delta */\n"
			 "int f%d(void)\n{\n\treturn %d;\n}\n", i, i * 7);
		ps_test_write(repo, name, body);
	}
	free(ps_test_git_commit(repo, "files"));
	CHECK_INT(ps_test_sh(repo, "git gc -q"), 0);
	out = ps_test_sh_out(repo, "git ls-tree HEAD | awk '{print $3}' | sort");
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		ps_strv_push(&want, line);
	free(out);
	CHECK_INT(want.n, 12);
	CHECK_INT(ps_test_sh(repo,
		"cd .git/objects/pack && real=$(ls *.idx) && size=$(stat -c %%s $real) && "
		"mkfifo fifo.idx && mkdir dir.idx && : > empty.idx && "
		"for n in 4 8 1031 1032 1040 $((size / 2)) $((size - 41)) $((size - 1)); do "
		"  head -c $n $real > cut$n.idx; done && "
		/* a header claiming 2^32-1 objects, then nothing */
		"{ printf '\\377tOc\\0\\0\\0\\2'; for i in $(seq 256); do printf '\\377\\377\\377\\377'; done; } > huge.idx && "
		/* every offset a 64-bit one, indexing far past the end */
		"{ head -c $((1032 + 12 * 24)) $real; for i in $(seq 12); do printf '\\377\\377\\377\\377'; done; "
		"  tail -c 40 $real; } > large.idx && "
		/* the real fan-out and ids, random bytes after */
		"for i in $(seq 20); do { head -c $((1032 + 12 * 20)) $real; "
		"  head -c $((i * 37)) /dev/urandom; } > rnd$i.idx; done && "
		/* a valid header, random fan-out and beyond */
		"for i in $(seq 20); do { printf '\\377tOc\\0\\0\\0\\2'; "
		"  head -c $((1024 + i * 97)) /dev/urandom; } > fan$i.idx; done"), 0);

	alarm(60); /* a hang fails the test rather than the whole run */
	src = open_ok(repo, NULL);
	for (int round = 0; round < 2; round++) {
		struct collected col = {0};
		bool done = false;
		int steps = 0;

		CHECK_OK(ps_source_resolve(src, "main", NULL, &head));
		CHECK_OK(ps_source_fetch_begin(src, &head, (const char *const *)want.v, want.n));
		while (!done && steps++ < 10)
			CHECK_OK(ps_source_fetch_next(src, 5, collect_cb, &col, &done));
		CHECK(done);
		CHECK_INT(col.shas.n, want.n);
		for (size_t i = 0; i < want.n; i++) {
			size_t seen = 0;
			for (size_t j = 0; j < col.shas.n; j++) {
				if (strcmp(col.shas.v[j], want.v[i]) != 0)
					continue;
				seen++;
				/* the x keeps the blob's final newline, which sh_out strips */
				out = ps_test_sh_out(repo, "git cat-file blob %s; printf x", want.v[i]);
				got = ps_asprintf("%sx", col.data.v[j]);
				CHECK_STR(got, out);
				free(got);
				free(out);
			}
			CHECK_INT(seen, 1);
		}
		ps_source_fetch_end(src);
		collected_dispose(&col);
	}
	alarm(0);
	ps_source_free(src);
	ps_strv_dispose(&want);
	free(repo);
}

PS_TESTS(PS_TEST(test_fetch_hostile_pack_indexes), PS_TEST(test_fetch_in_pack_order), PS_TEST(test_check_branch), PS_TEST(test_noncanonical_modes),
	 PS_TEST(test_local_branches),
	 PS_TEST(test_local_resolve),
	 PS_TEST(test_kept_repository_sees_changes),
	 PS_TEST(test_bare_local),
	 PS_TEST(test_empty_repository),
	 PS_TEST(test_read_tree_local),
	 PS_TEST(test_read_tree_url),
	 PS_TEST(test_url_source),
	 PS_TEST(test_force_push),
	 PS_TEST(test_branch_dir_file_conflict),
	 PS_TEST(test_bad_sources),
	 PS_TEST(test_remote_specs_parse),
	 PS_TEST(test_relative_path),
	 PS_TEST(test_check),
	 PS_TEST(test_silent_remotes_time_out),
	 PS_TEST(test_trickling_remote_is_bounded_as_a_whole),
	 PS_TEST(test_stalled_fetch_is_bounded),
	 PS_TEST(test_shallow_fetch),
	 PS_TEST(test_dash_branch_refused),
	 PS_TEST(test_git_daemon_through_the_bounded_stream))
