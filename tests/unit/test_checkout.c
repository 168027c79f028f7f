/*
 * Tests of core/checkout.c and util/path.c: a snapshot mirrored into a folder equals the
 * snapshot (content, modes, symlinks, submodules); re-runs apply only the changes; --at rolls
 * back; unsafe paths refuse the checkout before anything is written; symlinks in the folder are
 * never followed. Snapshots are made either through the store directly (to plant paths no git
 * repository would produce) or through the real pipeline on a git repository.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/checkout.h"
#include "core/sync.h"
#include "store/store.h"
#include "util/error.h"
#include "util/path.h"
#include "util/util.h"

/* ---- fixtures ---- */

/* One entry of a snapshot to make. `content` is the blob (symlink target for links); a
 * submodule has none. `unstored` leaves the blob out of the store (over the size limit). */
struct entry {
	const char *path;
	uint32_t mode;
	const char *content;
	bool unstored;
};

struct fx {
	char *tmp;
	struct ps_store *s;
	struct ps_project *p;
};

static void fx_init(struct fx *f, const char *name, const char *source)
{
	char *db;
	struct ps_project p = { 0 };

	f->tmp = ps_test_tmpdir();
	db = ps_asprintf("%s/store.db", f->tmp);
	CHECK_OK(ps_store_open(&f->s, db, 0));
	free(db);
	p.name = (char *)name;
	p.source = (char *)(source ? source : "/nonexistent");
	p.max_blob_size = PS_DEFAULT_MAX_BLOB_SIZE;
	CHECK_OK(ps_store_project_add(f->s, &p));
	ps_strv_dispose(&p.memory_globs); /* the store fills in the default globs */
	CHECK_OK(ps_store_project_get(f->s, name, &f->p));
}

static void fx_add_project(struct fx *f, const char *name, struct ps_project **out)
{
	struct ps_project p = { .name = (char *)name, .source = "/nonexistent",
				.max_blob_size = PS_DEFAULT_MAX_BLOB_SIZE };
	CHECK_OK(ps_store_project_add(f->s, &p));
	ps_strv_dispose(&p.memory_globs);
	CHECK_OK(ps_store_project_get(f->s, name, out));
}

static void fx_dispose(struct fx *f)
{
	ps_project_free(f->p);
	ps_store_free(f->s);
	free(f->tmp);
}

static void entry_sha(const struct entry *e, char sha[PS_SHA_HEX])
{
	if (e->mode == PS_MODE_COMMIT)
		snprintf(sha, PS_SHA_HEX, "%s", "1234567890123456789012345678901234567890");
	else
		ps_git_blob_sha(e->content, strlen(e->content), sha);
}

/*
 * Makes a succeeded sync of project `p` whose snapshot is exactly `entries`, staging the changes
 * against the current snapshot the way the pipeline does. Returns the sync id.
 */
static int64_t make_sync_of(struct fx *f, struct ps_project *p, const struct entry *entries,
			    size_t n)
{
	struct ps_test_files old = { 0 };
	struct ps_change *ch = ps_calloc(n + 64, sizeof(*ch));
	struct ps_sync *y = NULL;
	char ident[64];
	struct ps_owner owner = { ps_hostname(), ident, 60000 };
	size_t nch = 0;
	int64_t id = 0;
	int rc;

	ps_process_identity(getpid(), ident, sizeof(ident));
	rc = ps_store_snapshot_each(f->s, p->id, 0, NULL, ps_test_files_add, &old);
	CHECK(rc == 0 || rc == PS_ENOTFOUND);
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = &entries[i];
		struct ps_change *c = &ch[nch];
		const struct ps_file *prev = NULL;
		char sha[PS_SHA_HEX];

		entry_sha(e, sha);
		if (e->mode != PS_MODE_COMMIT && !e->unstored)
			CHECK_OK(ps_store_blob_put(f->s, sha, e->content, strlen(e->content)));
		for (size_t k = 0; k < old.n; k++)
			if (strcmp(old.v[k].path, e->path) == 0)
				prev = &old.v[k];
		if (prev && strcmp(prev->sha, sha) == 0 && prev->mode == e->mode)
			continue;
		c->status = !prev ? PS_CHANGE_ADDED
			    : (strcmp(ps_mode_type(prev->mode), ps_mode_type(e->mode)) != 0 ||
			       (prev->mode == PS_MODE_LINK) != (e->mode == PS_MODE_LINK))
				? PS_CHANGE_TYPE_CHANGED : PS_CHANGE_MODIFIED;
		c->path = ps_strdup(e->path);
		snprintf(c->sha, sizeof(c->sha), "%s", sha);
		c->mode = e->mode;
		/* An unstored file is one over the size limit, as a sync keeps it; a file within
		 * the limit without its blob would be a lost one (blob_missing). */
		c->size = e->mode == PS_MODE_COMMIT ? -1
			  : e->unstored ? p->max_blob_size + 1 : (int64_t)strlen(e->content);
		if (prev) {
			snprintf(c->previous_sha, sizeof(c->previous_sha), "%s", prev->sha);
			c->previous_mode = prev->mode;
		}
		nch++;
	}
	for (size_t k = 0; k < old.n; k++) {
		bool kept = false;
		for (size_t i = 0; i < n; i++)
			kept = kept || strcmp(old.v[k].path, entries[i].path) == 0;
		if (kept)
			continue;
		ch = ps_realloc(ch, (nch + 1) * sizeof(*ch));
		memset(&ch[nch], 0, sizeof(ch[nch]));
		ch[nch].status = PS_CHANGE_DELETED;
		ch[nch].path = ps_strdup(old.v[k].path);
		snprintf(ch[nch].previous_sha, PS_SHA_HEX, "%s", old.v[k].sha);
		ch[nch].previous_mode = old.v[k].mode;
		ch[nch].size = -1;
		nch++;
	}
	CHECK_OK(ps_store_sync_create(f->s, p->id, "main", "cli", &owner, &y));
	if (y) {
		y->counts.files = (int64_t)n;
		CHECK_OK(ps_store_files_stage(f->s, y, ch, nch));
		CHECK_OK(ps_store_sync_finalize(f->s, y, ch, nch, NULL));
		id = y->id;
	}
	for (size_t i = 0; i < nch; i++)
		ps_change_dispose(&ch[i]);
	free(ch);
	ps_test_files_dispose(&old);
	ps_sync_free(y);
	return id;
}

static int64_t make_sync(struct fx *f, const struct entry *entries, size_t n)
{
	return make_sync_of(f, f->p, entries, n);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- file-system helpers ---- */

static char *slurp(const char *dir, const char *rel)
{
	char *path = ps_asprintf("%s/%s", dir, rel);
	FILE *fp = fopen(path, "rb");
	struct ps_buf b;
	char chunk[4096];
	size_t n;

	free(path);
	if (!fp)
		return NULL;
	ps_buf_init(&b, (size_t)1 << 26);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		ps_buf_append(&b, chunk, n);
	fclose(fp);
	return b.data ? ps_buf_take(&b, NULL) : ps_strdup("");
}

#define CHECK_FILE(dir, rel, want) do { char *_c = slurp(dir, rel); CHECK_STR(_c, want); \
	free(_c); } while (0)

static bool lstat_at(const char *dir, const char *rel, struct stat *st)
{
	char *path = ps_asprintf("%s/%s", dir, rel);
	bool ok = lstat(path, st) == 0;
	free(path);
	return ok;
}

static bool exists(const char *dir, const char *rel)
{
	struct stat st;
	return lstat_at(dir, rel, &st);
}

static unsigned perm_of(const char *dir, const char *rel)
{
	struct stat st;
	return lstat_at(dir, rel, &st) ? (unsigned)(st.st_mode & 07777) : 0;
}

static char *link_of(const char *dir, const char *rel)
{
	char *path = ps_asprintf("%s/%s", dir, rel), buf[4096];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);
	free(path);
	if (n < 0)
		return NULL;
	return ps_strndup(buf, (size_t)n);
}

#define CHECK_LINK(dir, rel, want) do { char *_l = link_of(dir, rel); CHECK_STR(_l, want); \
	free(_l); } while (0)

/* Every entry below dir with its type, mode, size and content digest, for "unchanged" checks. */
static char *listing(const char *dir)
{
	return ps_test_sh_out(dir, "find . -printf '%%y %%m %%s %%p %%l\\n' | sort; "
				   "find . -type f -exec sha1sum {} + | sort");
}

/* The manifest's sync_id, or -1. */
static int64_t manifest_sync(const char *dir)
{
	char *m = slurp(dir, PS_CHECKOUT_MANIFEST);
	const char *k = m ? strstr(m, "\"sync_id\":") : NULL;
	int64_t id = k ? strtoll(k + 10, NULL, 10) : -1;
	free(m);
	return id;
}

/* ---- path rules ---- */

static void test_path_is_safe(void)
{
	static const char *const safe[] = {
		"a", "a/b/c.txt", ".gitignore", ".github/workflows/ci.yml", "a/.gitkeep",
		"git", "a..b", "...", ".a", "back\\slash", "x/.git-foo", "..a/b", "sp ace",
	};
	static const char *const unsafe[] = {
		"", "/etc/passwd", "..", "../x", "a/../../x", "a/..", ".", "./a", "a/./b",
		"a//b", "a/", "/", ".git", ".git/hooks/pre-commit", "a/.git/config", ".GIT/x",
		"sub/.Git", ".git.", ".git /x", "a/.GiT../b",
	};

	for (size_t i = 0; i < NELEM(safe); i++) {
		if (!ps_path_is_safe(safe[i]))
			fprintf(stderr, "wrongly unsafe: '%s'\n", safe[i]);
		CHECK(ps_path_is_safe(safe[i]));
	}
	for (size_t i = 0; i < NELEM(unsafe); i++) {
		if (ps_path_is_safe(unsafe[i]))
			fprintf(stderr, "wrongly safe: '%s'\n", unsafe[i]);
		CHECK(!ps_path_is_safe(unsafe[i]));
	}
	CHECK(!ps_path_is_safe(NULL));
	CHECK(ps_path_component_is_dotgit(".GIT", 4));
	CHECK(!ps_path_component_is_dotgit(".gitx", 5));
	CHECK(!ps_path_component_is_dotgit(".gi", 3));
	CHECK_INT(ps_path_dirname_len("a/b/c", 5), 3);
	CHECK_INT(ps_path_dirname_len("a/b/c", 3), 1);
	CHECK_INT(ps_path_dirname_len("c", 1), 0);
}

/* ---- checkout from store-made snapshots ---- */

static void test_full_checkout(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry snap[] = {
		{ "README.md", PS_MODE_FILE, "hello\n", false },
		{ "bin/run.sh", PS_MODE_EXEC, "#!/bin/sh\necho hi\n", false },
		{ "big.bin", PS_MODE_FILE, "pretend this is huge", true },
		{ "deep/er/still/file.txt", PS_MODE_FILE, "deep\n", false },
		{ "empty", PS_MODE_FILE, "", false },
		{ "link", PS_MODE_LINK, "README.md", false },
		{ "link-out", PS_MODE_LINK, "../../etc/passwd", false },
		{ "vendor/lib", PS_MODE_COMMIT, NULL, false },
	};
	char *dir;
	struct stat sb;
	mode_t old_umask;
	int64_t id;

	fx_init(&f, "demo", NULL);
	id = make_sync(&f, snap, NELEM(snap));
	dir = ps_asprintf("%s/co/nested", f.tmp); /* parents are created too */
	old_umask = umask(077); /* file modes are the snapshot's, whatever the umask */
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	umask(old_umask);
	CHECK_INT(st.sync_id, id);
	CHECK(st.full);
	CHECK_INT(st.from_sync_id, 0);
	CHECK_INT(st.total, 8);
	CHECK_INT(st.written, 7);
	CHECK_INT(st.skipped, 1);
	CHECK_INT(st.deleted, 0);
	CHECK_INT(st.unchanged, 0);
	CHECK_INT(st.skipped_paths.n, 1);
	CHECK_STR(st.skipped_paths.n ? st.skipped_paths.v[0] : NULL, "big.bin");
	ps_checkout_stats_dispose(&st);

	CHECK_FILE(dir, "README.md", "hello\n");
	CHECK_INT(perm_of(dir, "README.md"), 0644);
	CHECK_FILE(dir, "bin/run.sh", "#!/bin/sh\necho hi\n");
	CHECK_INT(perm_of(dir, "bin/run.sh"), 0755);
	CHECK_FILE(dir, "deep/er/still/file.txt", "deep\n");
	CHECK_FILE(dir, "empty", "");
	CHECK(!exists(dir, "big.bin"));
	CHECK_LINK(dir, "link", "README.md");
	CHECK_LINK(dir, "link-out", "../../etc/passwd");
	CHECK(lstat_at(dir, "vendor/lib", &sb) && S_ISDIR(sb.st_mode));
	CHECK_INT(manifest_sync(dir), id);
	/* No temporary files are left behind. */
	{
		char *tmps = ps_test_sh_out(dir, "find . -name '.projsync-*.tmp'");
		CHECK_STR(tmps, "");
		free(tmps);
	}

	/* A second run with nothing new changes nothing (the file whose content is not stored
	 * is still missing, and said so again). */
	{
		char *before = listing(dir), *after;
		CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
		CHECK(!st.full);
		CHECK_INT(st.from_sync_id, id);
		CHECK_INT(st.written + st.deleted + st.failed, 0);
		CHECK_INT(st.skipped, 1);
		CHECK_INT(st.unchanged, 7);
		ps_checkout_stats_dispose(&st);
		after = listing(dir);
		CHECK_STR(after, before);
		free(before);
		free(after);
	}
	free(dir);
	fx_dispose(&f);
}

static void test_incremental(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = {
		{ "keep.txt", PS_MODE_FILE, "keep\n", false },
		{ "mod.txt", PS_MODE_FILE, "one\n", false },
		{ "del.txt", PS_MODE_FILE, "bye\n", false },
		{ "gone/only.txt", PS_MODE_FILE, "only\n", false },
		{ "f", PS_MODE_FILE, "f was a file\n", false },
		{ "l", PS_MODE_LINK, "keep.txt", false },
		{ "x/y.txt", PS_MODE_FILE, "x was a dir\n", false },
		{ "tool", PS_MODE_FILE, "#!/bin/sh\n", false },
		{ "old-name.txt", PS_MODE_FILE, "moving\n", false },
		{ "grows.bin", PS_MODE_FILE, "small\n", false },
		{ "emptied/deep/z.txt", PS_MODE_FILE, "z\n", false },
	};
	static const struct entry v2[] = {
		{ "keep.txt", PS_MODE_FILE, "keep\n", false },
		{ "mod.txt", PS_MODE_FILE, "two\n", false },
		{ "new.txt", PS_MODE_FILE, "new\n", false },
		{ "f/inner.txt", PS_MODE_FILE, "f is a dir now\n", false },
		{ "l", PS_MODE_FILE, "l is a file now\n", false },
		{ "x", PS_MODE_LINK, "keep.txt", false },
		{ "tool", PS_MODE_EXEC, "#!/bin/sh\n", false },
		{ "new-name.txt", PS_MODE_FILE, "moving\n", false },
		{ "grows.bin", PS_MODE_FILE, "now over the size limit\n", true },
	};
	char *dir, *untracked_before, *untracked_after;
	struct stat keep1, keep2;
	int64_t id1, id2;

	fx_init(&f, "demo", NULL);
	id1 = make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	ps_checkout_stats_dispose(&st);
	CHECK_INT(manifest_sync(dir), id1);
	ps_test_write(dir, "untracked.txt", "mine\n");
	ps_test_write(dir, "gone/mine.txt", "also mine\n");
	CHECK(lstat_at(dir, "keep.txt", &keep1));
	untracked_before = slurp(dir, "untracked.txt");

	id2 = make_sync(&f, v2, NELEM(v2));
	usleep(20000); /* so a rewrite of keep.txt would show in its mtime */
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK(!st.full);
	CHECK_INT(st.from_sync_id, id1);
	CHECK_INT(st.sync_id, id2);
	/* written: mod, new, f/inner, l, x, tool, new-name; deleted: del, gone/only, f, x/y,
	 * old-name, emptied/deep/z (a renamed path counts as one deletion and one write);
	 * skipped: grows.bin, whose new content is not stored. */
	CHECK_INT(st.written, 7);
	CHECK_INT(st.deleted, 6);
	CHECK_INT(st.skipped, 1);
	CHECK_INT(st.total, 9);
	CHECK_INT(st.unchanged, 1);
	ps_checkout_stats_dispose(&st);

	CHECK(lstat_at(dir, "keep.txt", &keep2));
	CHECK_INT(keep2.st_ino, keep1.st_ino);
	CHECK_INT(keep2.st_mtim.tv_sec, keep1.st_mtim.tv_sec);
	CHECK_INT(keep2.st_mtim.tv_nsec, keep1.st_mtim.tv_nsec);
	CHECK_FILE(dir, "mod.txt", "two\n");
	CHECK_FILE(dir, "new.txt", "new\n");
	CHECK(!exists(dir, "del.txt"));
	CHECK(!exists(dir, "gone/only.txt"));
	CHECK_FILE(dir, "gone/mine.txt", "also mine\n"); /* its directory stays for it */
	CHECK(!exists(dir, "emptied")); /* directories left empty go */
	CHECK(!exists(dir, "grows.bin")); /* the old content must not pass for the new */
	CHECK_FILE(dir, "f/inner.txt", "f is a dir now\n");
	CHECK_FILE(dir, "l", "l is a file now\n");
	{
		struct stat sb;
		CHECK(lstat_at(dir, "l", &sb) && S_ISREG(sb.st_mode));
	}
	CHECK_LINK(dir, "x", "keep.txt");
	CHECK_INT(perm_of(dir, "tool"), 0755);
	CHECK(!exists(dir, "old-name.txt"));
	CHECK_FILE(dir, "new-name.txt", "moving\n");
	untracked_after = slurp(dir, "untracked.txt");
	CHECK_STR(untracked_after, untracked_before);
	CHECK_INT(manifest_sync(dir), id2);

	/* The folder now equals a fresh full checkout of the same sync (untracked files aside). */
	{
		char *fresh = ps_asprintf("%s/fresh", f.tmp);
		char *d;
		CHECK_OK(ps_checkout(f.s, f.p, id2, fresh, false, &st));
		ps_checkout_stats_dispose(&st);
		ps_test_sh(dir, "rm -rf untracked.txt gone");
		d = ps_test_sh_out(f.tmp, "diff -r --no-dereference -x .projsync-checkout co fresh && echo same");
		CHECK_STR(d, "same");
		free(d);
		free(fresh);
	}
	free(untracked_before);
	free(untracked_after);
	free(dir);
	fx_dispose(&f);
}

static void test_at_rolls_back(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = {
		{ "a.txt", PS_MODE_FILE, "a1\n", false },
		{ "d/b.txt", PS_MODE_FILE, "b1\n", false },
		{ "s", PS_MODE_LINK, "a.txt", false },
	};
	static const struct entry v2[] = {
		{ "a.txt", PS_MODE_FILE, "a2\n", false },
		{ "d", PS_MODE_FILE, "d is a file\n", false },
		{ "s/inner", PS_MODE_FILE, "s is a dir\n", false },
		{ "c.txt", PS_MODE_EXEC, "c\n", false },
	};
	static const struct entry v3[] = {
		{ "a.txt", PS_MODE_FILE, "a3\n", false },
	};
	int64_t id1, id2, id3;
	char *d;

	fx_init(&f, "demo", NULL);
	id1 = make_sync(&f, v1, NELEM(v1));
	id2 = make_sync(&f, v2, NELEM(v2));
	id3 = make_sync(&f, v3, NELEM(v3));
	(void)id3;
	d = ps_asprintf("%s/co", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, 0, d, false, &st));
	CHECK_INT(st.sync_id, id3);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(d, "a.txt", "a3\n");

	/* Back to the first sync: the diff runs backwards. */
	CHECK_OK(ps_checkout(f.s, f.p, id1, d, false, &st));
	CHECK(!st.full);
	CHECK_INT(st.sync_id, id1);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(d, "a.txt", "a1\n");
	CHECK_FILE(d, "d/b.txt", "b1\n");
	CHECK_LINK(d, "s", "a.txt");
	CHECK_INT(manifest_sync(d), id1);

	/* Forward to the middle one, across file <-> directory and symlink <-> directory. */
	CHECK_OK(ps_checkout(f.s, f.p, id2, d, false, &st));
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(d, "a.txt", "a2\n");
	CHECK_FILE(d, "d", "d is a file\n");
	CHECK_FILE(d, "s/inner", "s is a dir\n");
	CHECK_INT(perm_of(d, "c.txt"), 0755);
	{
		char *fresh = ps_asprintf("%s/fresh", f.tmp), *out;
		CHECK_OK(ps_checkout(f.s, f.p, id2, fresh, false, &st));
		ps_checkout_stats_dispose(&st);
		out = ps_test_sh_out(f.tmp, "diff -r --no-dereference -x .projsync-checkout co fresh && echo same");
		CHECK_STR(out, "same");
		free(out);
		free(fresh);
	}

	/* A sync that is not this project's, or does not exist, is not found. */
	CHECK_INT(ps_checkout(f.s, f.p, 9999, d, false, &st), PS_ENOTFOUND);
	ps_checkout_stats_dispose(&st);
	CHECK_INT(manifest_sync(d), id2);
	free(d);
	fx_dispose(&f);
}

static void check_refused(struct fx *f, const char *bad)
{
	struct ps_checkout_stats st;
	struct entry snap[] = {
		{ "ok.txt", PS_MODE_FILE, "fine\n", false },
		{ bad, PS_MODE_FILE, "evil\n", false },
		{ "zzz.txt", PS_MODE_FILE, "fine\n", false },
	};
	static int calls;
	char *fresh = ps_asprintf("%s/fresh-%d", f->tmp, calls++);
	char *before, *after;
	int rc;

	make_sync(f, snap, NELEM(snap));
	/* Into a folder that does not exist: it is not even created. */
	rc = ps_checkout(f->s, f->p, 0, fresh, false, &st);
	ps_checkout_stats_dispose(&st);
	CHECK_INT(rc, PS_EINVAL);
	if (!strstr(ps_error_message(), bad))
		fprintf(stderr, "message does not name '%s': %s\n", bad, ps_error_message());
	CHECK(strstr(ps_error_message(), bad) != NULL);
	CHECK(access(fresh, F_OK) != 0);

	/* Into an existing checkout: nothing changes, its manifest still names the old sync. */
	before = listing("co"); /* the caller made it our working directory's "co" */
	rc = ps_checkout(f->s, f->p, 0, "co", false, &st);
	ps_checkout_stats_dispose(&st);
	CHECK_INT(rc, PS_EINVAL);
	after = listing("co");
	CHECK_STR(after, before);
	free(before);
	free(after);
	free(fresh);
}

static void test_unsafe_paths_refused(void)
{
	static const char *const bad[] = {
		"../escape.txt", "a/../../escape.txt", ".git/hooks/post-checkout", ".GIT/config",
		"sub/.Git/hooks/x", "/etc/evil", "a//b", PS_CHECKOUT_MANIFEST,
		PS_CHECKOUT_MANIFEST "/sync_id", ".PROJSYNC-Checkout/x/y",
	};
	static const struct entry v1[] = { { "ok.txt", PS_MODE_FILE, "first\n", false } };
	struct ps_checkout_stats st;
	struct fx f;
	char cwd[4096];
	int64_t id1;

	fx_init(&f, "demo", NULL);
	id1 = make_sync(&f, v1, NELEM(v1));
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(chdir(f.tmp) == 0);
	CHECK_OK(ps_checkout(f.s, f.p, 0, "co", false, &st));
	ps_checkout_stats_dispose(&st);
	for (size_t i = 0; i < NELEM(bad); i++)
		check_refused(&f, bad[i]);
	CHECK_INT(manifest_sync("co"), id1);
	CHECK_FILE("co", "ok.txt", "first\n");
	CHECK(access("escape.txt", F_OK) != 0);
	CHECK(chdir(cwd) == 0);
	fx_dispose(&f);
}

static void test_symlinks_never_followed(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = {
		{ "d/f.txt", PS_MODE_FILE, "f1\n", false },
		{ "d/g.txt", PS_MODE_FILE, "g1\n", false },
		{ "esc/x.txt", PS_MODE_FILE, "planted?\n", false },
		{ "victim.txt", PS_MODE_FILE, "ours\n", false },
	};
	static const struct entry v2[] = {
		{ "d/f.txt", PS_MODE_FILE, "f2\n", false },
		{ "esc/x.txt", PS_MODE_FILE, "planted?\n", false },
		{ "victim.txt", PS_MODE_FILE, "ours\n", false },
	};
	char *dir, *out, *before, *after;

	fx_init(&f, "demo", NULL);
	out = ps_asprintf("%s/outside", f.tmp);
	dir = ps_asprintf("%s/co", f.tmp);
	ps_test_write(out, "victim.txt", "outside, untouched\n");
	ps_test_write(out, "g.txt", "outside g\n");
	ps_test_write(out, "f.txt", "outside f\n");
	/* A folder prepared by someone else: symlinks where the snapshot has a directory and a
	 * file, both pointing outside. */
	ps_test_sh(f.tmp, "mkdir co && ln -s ../outside co/esc && ln -s ../outside/victim.txt "
			  "co/victim.txt");
	make_sync(&f, v1, NELEM(v1));
	before = listing(out);
	/* Not a checkout yet, and not empty: only --force writes into it, and replaces the
	 * planted links (listed as discarded) rather than writing through them. */
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	ps_checkout_stats_dispose(&st);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
	CHECK_INT(st.nchanges, 2);
	if (st.nchanges == 2) {
		CHECK_STR(st.changes[0].path, "esc");
		CHECK_STR(st.changes[1].path, "victim.txt");
		CHECK_INT(st.changes[1].change, PS_CHECKOUT_UNTRACKED);
	}
	ps_checkout_stats_dispose(&st);
	after = listing(out);
	CHECK_STR(after, before);
	free(after);
	{
		struct stat sb;
		CHECK(lstat_at(dir, "esc", &sb) && S_ISDIR(sb.st_mode));
		CHECK(lstat_at(dir, "victim.txt", &sb) && S_ISREG(sb.st_mode));
	}
	CHECK_FILE(dir, "esc/x.txt", "planted?\n");
	CHECK_FILE(dir, "victim.txt", "ours\n");
	CHECK(!exists(out, "x.txt"));

	/* After the checkout, a directory of the snapshot is swapped for a symlink outside; the
	 * next run modifies and deletes below it: neither reaches through the link. */
	ps_test_sh(f.tmp, "rm -rf co/d && ln -s ../outside co/d");
	make_sync(&f, v2, NELEM(v2));
	/* The entries below co/d are gone as far as the folder shows: local changes. */
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	ps_checkout_stats_dispose(&st);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
	ps_checkout_stats_dispose(&st);
	after = listing(out);
	CHECK_STR(after, before);
	CHECK_FILE(out, "g.txt", "outside g\n");
	CHECK_FILE(out, "f.txt", "outside f\n");
	CHECK_FILE(dir, "d/f.txt", "f2\n");
	{
		struct stat sb;
		CHECK(lstat_at(dir, "d", &sb) && S_ISDIR(sb.st_mode));
	}
	free(before);
	free(after);
	free(out);
	free(dir);
	fx_dispose(&f);
}

static void test_manifest_rules(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	struct ps_project *other = NULL;
	static const struct entry v1[] = {
		{ "a.txt", PS_MODE_FILE, "a\n", false },
		{ "b.txt", PS_MODE_FILE, "b\n", false },
	};
	static const struct entry w1[] = { { "other.txt", PS_MODE_FILE, "o\n", false } };
	char *dir, *before, *after;
	struct stat b1, b2;
	int64_t id1;

	fx_init(&f, "demo", NULL);
	fx_add_project(&f, "other", &other);
	id1 = make_sync(&f, v1, NELEM(v1));
	make_sync_of(&f, other, w1, NELEM(w1));
	dir = ps_asprintf("%s/co", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	ps_checkout_stats_dispose(&st);

	/* Another project's checkout in the same folder is refused, and nothing changes. */
	before = listing(dir);
	CHECK_INT(ps_checkout(f.s, other, 0, dir, false, &st), PS_ECONFLICT);
	ps_checkout_stats_dispose(&st);
	CHECK(strstr(ps_error_message(), "demo") != NULL);
	after = listing(dir);
	CHECK_STR(after, before);
	free(before);
	free(after);

	/* A renamed project is the same project: its checkout goes on, and the manifest takes
	 * the new name. The other project is still refused. */
	{
		struct ps_project *renamed = NULL;
		char *m;

		CHECK_OK(ps_store_project_rename(f.s, f.p->id, "demo2", f.p->source));
		CHECK_OK(ps_store_project_get(f.s, "demo2", &renamed));
		if (renamed) {
			CHECK_OK(ps_checkout(f.s, renamed, 0, dir, false, &st));
			CHECK_INT(st.nchanges, 0);
			CHECK_INT(st.written, 0);
			ps_checkout_stats_dispose(&st);
			m = slurp(dir, PS_CHECKOUT_MANIFEST);
			CHECK(m && strstr(m, "\"project\":\"demo2\""));
			free(m);
			CHECK_INT(ps_checkout(f.s, other, 0, dir, false, &st), PS_ECONFLICT);
			ps_checkout_stats_dispose(&st);
			CHECK_OK(ps_store_project_rename(f.s, f.p->id, "demo", f.p->source));
		}
		ps_project_free(renamed);
	}

	/* Without a manifest the folder is not a checkout: refused, unchanged. With --force
	 * everything is written; a file already right is left as it is, another is replaced. */
	CHECK(lstat_at(dir, "b.txt", &b1));
	ps_test_sh(dir, "rm .projsync-checkout && printf damaged > a.txt");
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "not_a_checkout");
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a.txt", "damaged");
	CHECK(!exists(dir, PS_CHECKOUT_MANIFEST));
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
	CHECK(st.full);
	CHECK_INT(st.written, 1);
	CHECK_INT(st.unchanged, 1);
	CHECK_INT(st.nchanges, 1); /* a.txt, discarded */
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a.txt", "a\n");
	CHECK(lstat_at(dir, "b.txt", &b2));
	CHECK_INT(b2.st_ino, b1.st_ino);
	CHECK_INT(manifest_sync(dir), id1);

	/* A manifest that is not one is refused rather than guessed at. */
	ps_test_sh(dir, "echo garbage > .projsync-checkout");
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_EINVAL);
	ps_checkout_stats_dispose(&st);

	/* A manifest naming a sync that is gone (or not this project's) means a full write. */
	ps_test_sh(dir, "printf '{\"project\": \"demo\", \"sync_id\": 424242}' > "
			".projsync-checkout");
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK(st.full);
	ps_checkout_stats_dispose(&st);
	CHECK_INT(manifest_sync(dir), id1);

	/* A version 1 manifest (header only) of a sync still there: its entries are that
	 * snapshot's, compared by content once; a local edit is found, and the manifest is
	 * rewritten as version 2. */
	{
		char *m, *cmd = ps_asprintf("printf '{\"project\": \"demo\", \"sync_id\": %lld}' "
					    "> .projsync-checkout", (long long)id1);
		ps_test_sh(dir, "%s", cmd);
		free(cmd);
		CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
		CHECK(!st.full);
		CHECK_INT(st.from_sync_id, id1);
		CHECK_INT(st.written + st.nchanges, 0);
		ps_checkout_stats_dispose(&st);
		m = slurp(dir, PS_CHECKOUT_MANIFEST);
		CHECK(m && strstr(m, "\"version\":2") && strstr(m, " b.txt\n"));
		free(m);
		ps_test_sh(dir, "printf '{\"project\": \"demo\", \"sync_id\": %lld}' > "
				".projsync-checkout && printf 'b edited\\n' > b.txt", (long long)id1);
		CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
		CHECK_INT(st.nchanges, 1);
		ps_checkout_stats_dispose(&st);
		CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
		ps_checkout_stats_dispose(&st);
		CHECK_FILE(dir, "b.txt", "b\n");
	}

	/* A project without a succeeded sync has nothing to check out. */
	{
		struct ps_project *empty = NULL;
		char *d2 = ps_asprintf("%s/empty", f.tmp);
		fx_add_project(&f, "nothing", &empty);
		CHECK_INT(ps_checkout(f.s, empty, 0, d2, false, &st), PS_ENOTFOUND);
		ps_checkout_stats_dispose(&st);
		CHECK(access(d2, F_OK) != 0);
		ps_project_free(empty);
		free(d2);
	}
	ps_project_free(other);
	free(dir);
	fx_dispose(&f);
}

/* A non-empty directory of someone else's where the snapshot has a file: a local change in
 * the way; with --force that one entry fails (the directory is not ours to empty), the rest is
 * written, and the manifest describes what the folder holds. */
static void test_directory_in_the_way(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = {
		{ "a", PS_MODE_FILE, "a\n", false },
		{ "z", PS_MODE_FILE, "z\n", false },
	};
	static const struct entry v2[] = {
		{ "a", PS_MODE_FILE, "a2\n", false },
		{ "b", PS_MODE_FILE, "b\n", false },
		{ "z", PS_MODE_FILE, "z\n", false },
	};
	char *dir;

	fx_init(&f, "demo", NULL);
	make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);
	ps_test_write(dir, "a/precious.txt", "keep me\n");
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	ps_checkout_stats_dispose(&st);
	CHECK(!exists(dir, "z"));
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
	CHECK_INT(st.failed, 1);
	CHECK_INT(st.written, 1);
	CHECK_INT(st.nfailures, 1);
	if (st.nfailures == 1) {
		CHECK_STR(st.failures[0].path, "a");
		CHECK(strstr(st.failures[0].reason, "directory") != NULL);
	}
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a/precious.txt", "keep me\n");
	CHECK_FILE(dir, "z", "z\n");
	CHECK(exists(dir, PS_CHECKOUT_MANIFEST));

	/* Once the directory is gone, the entry is written; nothing else is a local change. */
	ps_test_sh(dir, "rm -rf a");
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.written, 1);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a", "a\n");

	/* The same in an incremental run: a.txt is updated, b fails, the next run recovers. */
	make_sync(&f, v2, NELEM(v2));
	ps_test_write(dir, "b/precious.txt", "keep me too\n");
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a", "a\n");
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
	CHECK_INT(st.failed, 1);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a", "a2\n");
	CHECK_FILE(dir, "b/precious.txt", "keep me too\n");
	ps_test_sh(dir, "rm -rf b");
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.written, 1);
	CHECK_INT(st.unchanged, 2);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "b", "b\n");

	/* A directory of an older snapshot that kept a file of the user's: once the user has
	 * emptied it (what the warning asks), it is no local change, and the file is written. */
	{
		static const struct entry v3[] = {
			{ "c/inner", PS_MODE_FILE, "inner\n", false },
		};
		static const struct entry v4[] = {
			{ "c", PS_MODE_FILE, "c is a file\n", false },
		};
		int64_t id3 = make_sync(&f, v3, NELEM(v3));

		CHECK_OK(ps_checkout(f.s, f.p, id3, dir, false, &st));
		ps_checkout_stats_dispose(&st);
		ps_test_write(dir, "c/mine.txt", "mine\n");
		make_sync(&f, v4, NELEM(v4));
		CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
		CHECK_INT(st.failed, 1);
		ps_checkout_stats_dispose(&st);
		CHECK_FILE(dir, "c/mine.txt", "mine\n");
		ps_test_sh(dir, "rm c/mine.txt");
		CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
		CHECK_INT(st.nchanges, 0);
		CHECK_INT(st.written, 1);
		ps_checkout_stats_dispose(&st);
		CHECK_FILE(dir, "c", "c is a file\n");
		/* A non-empty directory of the user's at a file path still refuses. */
		ps_test_sh(dir, "rm c && mkdir c && echo x > c/y");
		CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
		ps_checkout_stats_dispose(&st);
	}
	free(dir);
	fx_dispose(&f);
}

static bool has_change(const struct ps_checkout_stats *st, const char *path,
		       enum ps_checkout_change c)
{
	for (size_t i = 0; i < st->nchanges; i++)
		if (strcmp(st->changes[i].path, path) == 0 && st->changes[i].change == c)
			return true;
	return false;
}

/* Issue 15 item 6: checkout never discards what it did not write, and finds local changes. */
static void test_local_changes(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = {
		{ "deleted.txt", PS_MODE_FILE, "will be deleted locally\n", false },
		{ "dropped.txt", PS_MODE_FILE, "deleted locally and upstream\n", false },
		{ "edited.txt", PS_MODE_FILE, "original\n", false },
		{ "link", PS_MODE_LINK, "edited.txt", false },
		{ "same-size.txt", PS_MODE_FILE, "aaaa\n", false },
		{ "script", PS_MODE_FILE, "#!/bin/sh\n", false },
		{ "untouched.txt", PS_MODE_FILE, "untouched\n", false },
	};
	static const struct entry v2[] = {
		{ "deleted.txt", PS_MODE_FILE, "will be deleted locally\n", false },
		{ "edited.txt", PS_MODE_FILE, "original\n", false },
		{ "link", PS_MODE_LINK, "edited.txt", false },
		{ "new.txt", PS_MODE_FILE, "new upstream\n", false },
		{ "same-size.txt", PS_MODE_FILE, "aaaa\n", false },
		{ "script", PS_MODE_FILE, "#!/bin/sh\n", false },
		{ "taken.txt", PS_MODE_FILE, "identical\n", false },
		{ "untouched.txt", PS_MODE_FILE, "untouched v2\n", false },
	};
	char *dir, *fresh, *before, *after, *d;
	struct stat u1, u2;
	int64_t id2;

	fx_init(&f, "demo", NULL);
	make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);

	/* A folder holding the user's own files is not a checkout: refused, untouched. */
	ps_test_write(dir, "edited.txt", "the user's own\n");
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "not_a_checkout");
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "edited.txt", "the user's own\n");
	CHECK(!exists(dir, PS_CHECKOUT_MANIFEST));
	ps_test_sh(dir, "rm edited.txt");

	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	ps_checkout_stats_dispose(&st);
	CHECK(lstat_at(dir, "untouched.txt", &u1));

	/* Local changes of every kind, and files of the user's. The same-size edit keeps the
	 * mtime: the ctime still gives it away. */
	ps_test_sh(dir, "rm deleted.txt dropped.txt && printf 'edited locally\\n' > edited.txt && "
			
			"cp -p same-size.txt ref && printf 'bbbb\\n' > same-size.txt && "
			"touch -r ref same-size.txt && rm ref && chmod +x script && "
			"rm link && echo not-a-link > link && echo mine > mine.txt && "
			"echo different > new.txt && echo identical > taken.txt");
	usleep(20000);
	before = listing(dir);

	/* The same sync again: each change is found, nothing is written. */
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "local_changes");
	CHECK(has_change(&st, "deleted.txt", PS_CHECKOUT_DELETED));
	CHECK(has_change(&st, "dropped.txt", PS_CHECKOUT_DELETED));
	CHECK(has_change(&st, "edited.txt", PS_CHECKOUT_MODIFIED));
	CHECK(has_change(&st, "same-size.txt", PS_CHECKOUT_MODIFIED));
	CHECK(has_change(&st, "script", PS_CHECKOUT_MODE_CHANGED));
	CHECK(has_change(&st, "link", PS_CHECKOUT_TYPE_CHANGED));
	CHECK_INT(st.nchanges, 6); /* mine.txt, new.txt and taken.txt are in no path's way */
	ps_checkout_stats_dispose(&st);
	after = listing(dir);
	CHECK_STR(after, before);
	free(after);

	/* Towards v2: a file of the user's at a new path is in the way too, one identical to
	 * the snapshot's is not; a file deleted here and upstream is no longer a change. */
	id2 = make_sync(&f, v2, NELEM(v2));
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	CHECK(has_change(&st, "new.txt", PS_CHECKOUT_UNTRACKED));
	CHECK(!has_change(&st, "taken.txt", PS_CHECKOUT_UNTRACKED));
	CHECK(!has_change(&st, "dropped.txt", PS_CHECKOUT_DELETED));
	CHECK_INT(st.nchanges, 6);
	CHECK_INT(st.changes[0].change, PS_CHECKOUT_DELETED); /* sorted by path */
	CHECK_STR(st.changes[0].path, "deleted.txt");
	ps_checkout_stats_dispose(&st);
	after = listing(dir);
	CHECK_STR(after, before);
	free(after);
	free(before);

	/* --force restores exactly the snapshot; the user's other files stay. */
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
	CHECK_INT(st.sync_id, id2);
	CHECK_INT(st.nchanges, 6);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "mine.txt", "mine\n");
	fresh = ps_asprintf("%s/fresh", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, id2, fresh, false, &st));
	ps_checkout_stats_dispose(&st);
	d = ps_test_sh_out(f.tmp, "diff -r --no-dereference -x .projsync-checkout -x mine.txt co "
				  "fresh && echo same");
	CHECK_STR(d, "same");
	free(d);
	CHECK_INT(perm_of(dir, "script"), 0644);

	/* Clean again: a re-run finds nothing, and writes nothing. */
	before = listing(dir);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.written + st.deleted + st.nchanges, 0);
	ps_checkout_stats_dispose(&st);
	after = listing(dir);
	CHECK_STR(after, before);
	free(after);
	free(before);
	CHECK(lstat_at(dir, "untouched.txt", &u2));
	CHECK(u2.st_ino != u1.st_ino); /* its content changed in v2 */

	/* A permission change other than the executable bit is not one git keeps: ignored. */
	ps_test_sh(dir, "chmod 600 mine.txt edited.txt");
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.nchanges, 0);
	ps_checkout_stats_dispose(&st);
	free(fresh);
	free(dir);
	fx_dispose(&f);
}

/* A crash between the pending manifest and the final one: whatever state each path is in
 * (old, new, gone) is checkout's own, not a local change. */
static void test_unfinished_manifest(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = {
		{ "a.txt", PS_MODE_FILE, "a1\n", false },
		{ "b.txt", PS_MODE_FILE, "b1\n", false },
		{ "c.txt", PS_MODE_FILE, "c1\n", false },
	};
	static const struct entry v2[] = {
		{ "a.txt", PS_MODE_FILE, "a2\n", false },
		{ "b.txt", PS_MODE_FILE, "b2\n", false },
		{ "d.txt", PS_MODE_FILE, "d2\n", false },
	};
	char *dir, *m1, *m2;

	fx_init(&f, "demo", NULL);
	make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	ps_checkout_stats_dispose(&st);
	/* Forge what a crash leaves: the manifests of both states merged, marked unfinished,
	 * with a.txt already new, b.txt still old, c.txt already gone, d.txt not yet there. */
	m1 = slurp(dir, PS_CHECKOUT_MANIFEST);
	make_sync(&f, v2, NELEM(v2));
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	ps_checkout_stats_dispose(&st);
	m2 = slurp(dir, PS_CHECKOUT_MANIFEST);
	ps_test_sh(dir, "printf 'b1\\n' > b.txt && rm d.txt");
	{
		char *h = strchr(m1, '\n'), *body2 = strchr(m2, '\n');
		char *out = ps_asprintf("%s/m", f.tmp), *cmd;
		FILE *fp = fopen(out, "w");
		CHECK(h && body2 && fp);
		if (h && body2 && fp) {
			fprintf(fp, "{\"complete\": false, \"project\": \"demo\", "
				    "\"sync_id\": 2, \"version\": 2}\n%s%s", h + 1, body2 + 1);
			fclose(fp);
		}
		cmd = ps_asprintf("sort -k10 -o body <(tail -n +2 m) && head -1 m > m2 && "
				  "cat body >> m2 && mv m2 co/.projsync-checkout");
		CHECK_INT(ps_test_sh(f.tmp, "bash -c '%s'", cmd), 0);
		free(cmd);
		free(out);
	}
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.nchanges, 0);
	CHECK_INT(st.written, 2); /* b.txt, d.txt */
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a.txt", "a2\n");
	CHECK_FILE(dir, "b.txt", "b2\n");
	CHECK_FILE(dir, "d.txt", "d2\n");
	CHECK(!exists(dir, "c.txt"));
	free(m1);
	free(m2);
	free(dir);
	fx_dispose(&f);
}

/* A run killed between writing a file under its temporary name and renaming it leaves that
 * file; the unfinished manifest names the process, and the next run removes what it left, but
 * nothing the snapshot or the manifest has, nor another process's, nor a directory. */
static void test_killed_run_temporaries_removed(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = {
		{ "a.txt", PS_MODE_FILE, "a\n", false },
		{ "d/.projsync-4242-1.tmp", PS_MODE_FILE, "a file of the repository\n", false },
		{ "d/b.txt", PS_MODE_FILE, "b\n", false },
	};
	char sha[PS_SHA_HEX];
	char *dir, *m, *body, *forged;

	fx_init(&f, "demo", NULL);
	make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	ps_checkout_stats_dispose(&st);
	/* What process 4242 leaves when killed while writing d/b.txt (listed as pending, with no
	 * stat data) and its manifest. */
	m = slurp(dir, PS_CHECKOUT_MANIFEST);
	body = m ? strchr(m, '\n') : NULL;
	CHECK(body != NULL);
	ps_git_blob_sha("b\n", 2, sha);
	forged = ps_asprintf("{\"complete\":false,\"pid\":4242,\"project\":\"demo\",\"sync_id\":1,"
			     "\"version\":2}\n%s100644 %s 0 0 0 0 0 0 0 d/b.txt\n",
			     body ? body + 1 : "", sha);
	{
		char *path = ps_asprintf("%s/%s", dir, PS_CHECKOUT_MANIFEST);
		FILE *fp = fopen(path, "w");
		CHECK(fp != NULL);
		if (fp) {
			fputs(forged, fp);
			fclose(fp);
		}
		free(path);
	}
	/* The parent of this test runs: its temporary files may be a checkout at work. */
	CHECK_INT(ps_test_sh(dir, "echo half > d/.projsync-4242-7.tmp && "
				  "ln -s /nonexistent d/.projsync-4242-8.tmp && "
				  "echo half > .projsync-4242-0.tmp && "
				  "echo theirs > d/.projsync-%ld-1.tmp && "
				  "echo mine > d/.projsync-4242-x.tmp && mkdir d/.projsync-4242-9.tmp",
			     (long)getppid()), 0);

	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.nchanges, 0);
	ps_checkout_stats_dispose(&st);
	CHECK(!exists(dir, "d/.projsync-4242-7.tmp"));
	CHECK(!exists(dir, "d/.projsync-4242-8.tmp"));
	CHECK(!exists(dir, ".projsync-4242-0.tmp"));
	CHECK_FILE(dir, "d/.projsync-4242-1.tmp", "a file of the repository\n");
	{
		char *theirs = ps_asprintf("d/.projsync-%ld-1.tmp", (long)getppid());
		CHECK_FILE(dir, theirs, "theirs\n");
		free(theirs);
	}
	CHECK_FILE(dir, "d/.projsync-4242-x.tmp", "mine\n");
	CHECK(exists(dir, "d/.projsync-4242-9.tmp"));
	CHECK_FILE(dir, "d/b.txt", "b\n");
	m = (free(m), slurp(dir, PS_CHECKOUT_MANIFEST));
	CHECK(m && strstr(m, "\"complete\":true") && !strstr(m, "\"pid\""));
	free(m);
	free(forged);
	free(dir);
	fx_dispose(&f);
}

/* A process that has ended: its pid names no running process (until reused). */
static long dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return (long)pid;
}

/* A first checkout killed while writing its manifest leaves the folder holding only the
 * manifest's temporary file: the next run is no "non-empty folder" refusal, and removes it.
 * The same file left by a later run goes at the next run, even one with nothing to do. A
 * running process's temporary file may be a checkout at work: it stays, and counts. */
static void test_killed_first_run_is_no_foreign_folder(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	static const struct entry v1[] = { { "a.txt", PS_MODE_FILE, "a\n", false } };
	long dead = dead_pid();
	char *dir, *stray, *live;

	fx_init(&f, "demo", NULL);
	make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);
	stray = ps_asprintf(".projsync-%ld-0.tmp", dead);
	live = ps_asprintf(".projsync-%ld-0.tmp", (long)getppid());
	CHECK(dead > 0);
	CHECK_INT(ps_test_sh(f.tmp, "mkdir co && printf '{\"version\":2,' > co/%s", stray), 0);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.written, 1);
	ps_checkout_stats_dispose(&st);
	CHECK(!exists(dir, stray));
	CHECK_FILE(dir, "a.txt", "a\n");

	CHECK_INT(ps_test_sh(dir, "echo half > %s", stray), 0);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	ps_checkout_stats_dispose(&st);
	CHECK(!exists(dir, stray));

	CHECK_INT(ps_test_sh(f.tmp, "mkdir co2 && echo x > co2/%s", live), 0);
	free(dir);
	dir = ps_asprintf("%s/co2", f.tmp);
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECONFLICT);
	ps_checkout_stats_dispose(&st);
	CHECK_STR(ps_error_slug(), "not_a_checkout");
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, true, &st));
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, live, "x\n");
	free(live);
	free(stray);
	free(dir);
	fx_dispose(&f);
}

/* Issue 15 item 8: a symlink target Linux cannot hold fails that entry only. */
/* A stop asked for before the run (a Ctrl-C as it starts) changes nothing, and ends with that
 * run; a file named as the folder is invalid input. */
static void test_interrupt_and_not_a_folder(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	struct entry v1[] = { { "a.txt", PS_MODE_FILE, "a\n", false } };
	struct stat sb;
	char *dir, *file, *under;
	FILE *fp;

	fx_init(&f, "demo", NULL);
	make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);
	ps_checkout_interrupt();
	CHECK_INT(ps_checkout(f.s, f.p, 0, dir, false, &st), PS_ECANCELLED);
	CHECK_STR(ps_error_slug(), "interrupted");
	CHECK(stat(dir, &sb) != 0); /* not even created */
	ps_checkout_stats_dispose(&st);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st)); /* the request was that run's */
	CHECK_FILE(dir, "a.txt", "a\n");
	ps_checkout_stats_dispose(&st);

	file = ps_asprintf("%s/afile", f.tmp);
	under = ps_asprintf("%s/afile/sub", f.tmp);
	fp = fopen(file, "w");
	CHECK(fp != NULL);
	if (fp)
		fclose(fp);
	CHECK_INT(ps_checkout(f.s, f.p, 0, file, false, &st), PS_EINVAL);
	CHECK_STR(ps_error_slug(), "not_a_folder");
	CHECK(strstr(ps_error_message(), file) != NULL);
	ps_checkout_stats_dispose(&st);
	CHECK_INT(ps_checkout(f.s, f.p, 0, under, false, &st), PS_EINVAL);
	CHECK_STR(ps_error_slug(), "not_a_folder");
	ps_checkout_stats_dispose(&st);
	CHECK(stat(file, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0);
	free(under);
	free(file);
	free(dir);
	fx_dispose(&f);
}

static void test_entry_failure_is_local(void)
{
	struct fx f;
	struct ps_checkout_stats st;
	char *long_target = ps_malloc(4097), *ok_target = ps_malloc(4096);
	struct entry v1[] = {
		{ "a.txt", PS_MODE_FILE, "a\n", false },
		{ "long", PS_MODE_LINK, NULL, false },
		{ "ok-link", PS_MODE_LINK, NULL, false },
		{ "z.txt", PS_MODE_FILE, "z\n", false },
	};
	struct entry v2[] = {
		{ "a.txt", PS_MODE_FILE, "a2\n", false },
		{ "long", PS_MODE_LINK, NULL, false },
		{ "ok-link", PS_MODE_LINK, NULL, false },
		{ "z.txt", PS_MODE_FILE, "z\n", false },
	};
	char *dir, *l;

	memset(long_target, 'x', 4096);
	long_target[4096] = '\0';
	memset(ok_target, 'y', 4095);
	ok_target[4095] = '\0';
	v1[1].content = v2[1].content = long_target;
	v1[2].content = v2[2].content = ok_target;
	fx_init(&f, "demo", NULL);
	make_sync(&f, v1, NELEM(v1));
	dir = ps_asprintf("%s/co", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.failed, 1);
	CHECK_INT(st.written, 3);
	CHECK_INT(st.nfailures, 1);
	if (st.nfailures == 1)
		CHECK_STR(st.failures[0].path, "long");
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a.txt", "a\n");
	CHECK_FILE(dir, "z.txt", "z\n");
	CHECK(!exists(dir, "long"));
	l = link_of(dir, "ok-link");
	CHECK(l && strlen(l) == 4095);
	free(l);
	CHECK(exists(dir, PS_CHECKOUT_MANIFEST));

	/* An incremental run: the rest is applied, the manifest stays, no local change. */
	make_sync(&f, v2, NELEM(v2));
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.nchanges, 0);
	CHECK_INT(st.failed, 1);
	ps_checkout_stats_dispose(&st);
	CHECK_FILE(dir, "a.txt", "a2\n");
	CHECK(exists(dir, PS_CHECKOUT_MANIFEST));
	free(long_target);
	free(ok_target);
	free(dir);
	fx_dispose(&f);
}

/* ---- through the real pipeline ---- */

static int64_t run_sync(struct ps_store *s, const char *project)
{
	struct ps_sync_ctx ctx = { .store = s };
	struct ps_sync_opts opts = { 0 };
	struct ps_sync_run *run = NULL;
	const struct ps_event *ev = NULL;
	enum ps_event_kind last = PS_EVENT_QUEUED;
	int64_t id = 0;

	CHECK_OK(ps_sync_begin(&run, &ctx, project, &opts));
	if (!run)
		return 0;
	while (ps_sync_next(run, &ev) == PS_SYNC_MORE) {
		last = ev->kind;
		if (ev->kind == PS_EVENT_FAILED)
			fprintf(stderr, "sync failed: %s\n", ev->message ? ev->message : "");
	}
	CHECK_INT(last, PS_EVENT_SUCCEEDED);
	id = ps_sync_run_sync(run)->id;
	ps_sync_end(run);
	return id;
}

/* The checkout equals the committed tree: `git ls-files -s` modes and the blobs' content. */
static void check_equals_git(const char *repo, const char *dir)
{
	char *got = ps_test_sh_out(dir,
		"find . -path ./.projsync-checkout -prune -o \\( -type f -o -type l \\) -print | "
		"sed 's|^\\./||' | sort | while IFS= read -r p; do "
		"if [ -L \"$p\" ]; then echo \"120000 $p\"; "
		"elif [ -x \"$p\" ]; then echo \"100755 $p\"; else echo \"100644 $p\"; fi; done");
	char *cmp = ps_test_sh_out(repo,
		"git ls-files -s | while read -r mode sha stage p; do "
		"if [ \"$mode\" = 120000 ]; then "
		"  [ \"$(git cat-file blob $sha)\" = \"$(readlink '%s'/\"$p\")\" ] || echo \"differs: $p\"; "
		"else git cat-file blob $sha | cmp -s - '%s'/\"$p\" || echo \"differs: $p\"; fi; done",
		dir, dir);
	char *sorted_want = ps_test_sh_out(repo, "git ls-files -s | awk '{print $1, $4}' | "
						 "sort -k2");

	CHECK_STR(got, sorted_want);
	CHECK_STR(cmp, "");
	free(got);
	free(cmp);
	free(sorted_want);
}

static void test_pipeline_checkout(void)
{
	char *repo = ps_test_git_init();
	struct fx f;
	struct ps_checkout_stats st;
	struct stat u1, u2;
	char *dir, *c;
	int64_t id1, id2, id3;

	ps_test_write(repo, "README.md", "# demo\n");
	ps_test_write(repo, "src/main.c", "int main(void) { return 0; }\n");
	ps_test_write(repo, "src/util.c", "/* util */\n");
	ps_test_write(repo, "docs/old.md", "old\n");
	ps_test_write(repo, "untouched/file.txt", "never changes\n");
	ps_test_write(repo, "becomes-dir", "a file for now\n");
	ps_test_write(repo, "script.sh", "#!/bin/sh\necho hi\n");
	ps_test_sh(repo, "chmod +x script.sh && ln -s README.md readme-link && "
			 "ln -s src linkdir");
	c = ps_test_git_commit(repo, "first");
	free(c);

	fx_init(&f, "repo", repo);
	id1 = run_sync(f.s, "repo");
	dir = ps_asprintf("%s/co", f.tmp);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.sync_id, id1);
	CHECK(st.full);
	CHECK_INT(st.total, 9);
	CHECK_INT(st.written, 9);
	ps_checkout_stats_dispose(&st);
	check_equals_git(repo, dir);
	CHECK(lstat_at(dir, "untouched/file.txt", &u1));

	/* Modify, delete, add, file -> directory, symlink -> file, mode change. */
	ps_test_write(repo, "src/main.c", "int main(void) { return 1; }\n");
	ps_test_sh(repo, "git rm -q docs/old.md && rm becomes-dir && rm readme-link && "
			 "chmod -x script.sh");
	ps_test_write(repo, "becomes-dir/inside.txt", "now a directory\n");
	ps_test_write(repo, "readme-link", "a plain file now\n");
	ps_test_write(repo, "added.txt", "added\n");
	c = ps_test_git_commit(repo, "second");
	free(c);
	id2 = run_sync(f.s, "repo");
	usleep(20000);
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK(!st.full);
	CHECK_INT(st.from_sync_id, id1);
	CHECK_INT(st.sync_id, id2);
	/* written: src/main.c, becomes-dir/inside.txt, readme-link, added.txt, script.sh;
	 * deleted: docs/old.md, becomes-dir. */
	CHECK_INT(st.written, 5);
	CHECK_INT(st.deleted, 2);
	CHECK_INT(st.skipped, 0);
	ps_checkout_stats_dispose(&st);
	check_equals_git(repo, dir);
	CHECK(!exists(dir, "docs"));
	CHECK(lstat_at(dir, "untouched/file.txt", &u2));
	CHECK_INT(u2.st_ino, u1.st_ino);
	CHECK_INT(u2.st_mtim.tv_sec, u1.st_mtim.tv_sec);
	CHECK_INT(u2.st_mtim.tv_nsec, u1.st_mtim.tv_nsec);

	/* A third commit, then back to the first sync with --at. */
	ps_test_sh(repo, "git rm -q -r src");
	c = ps_test_git_commit(repo, "third");
	free(c);
	id3 = run_sync(f.s, "repo");
	CHECK_OK(ps_checkout(f.s, f.p, 0, dir, false, &st));
	CHECK_INT(st.sync_id, id3);
	ps_checkout_stats_dispose(&st);
	CHECK(!exists(dir, "src"));
	check_equals_git(repo, dir);
	CHECK_OK(ps_checkout(f.s, f.p, id1, dir, false, &st));
	CHECK_INT(st.sync_id, id1);
	ps_checkout_stats_dispose(&st);
	ps_test_sh(repo, "git checkout -q HEAD~2");
	check_equals_git(repo, dir);
	CHECK_INT(manifest_sync(dir), id1);

	free(dir);
	free(repo);
	fx_dispose(&f);
}

PS_TESTS(
	PS_TEST(test_path_is_safe),
	PS_TEST(test_full_checkout),
	PS_TEST(test_incremental),
	PS_TEST(test_at_rolls_back),
	PS_TEST(test_unsafe_paths_refused),
	PS_TEST(test_symlinks_never_followed),
	PS_TEST(test_manifest_rules),
	PS_TEST(test_directory_in_the_way),
	PS_TEST(test_local_changes),
	PS_TEST(test_unfinished_manifest),
	PS_TEST(test_killed_run_temporaries_removed),
	PS_TEST(test_killed_first_run_is_no_foreign_folder),
	PS_TEST(test_entry_failure_is_local),
	PS_TEST(test_interrupt_and_not_a_folder),
	PS_TEST(test_pipeline_checkout),
)
