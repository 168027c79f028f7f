/*
 * The differential tree walk: the changes it finds, and that it reads only the subtrees whose
 * id changed (the cost of a scan follows what changed, not the size of the repository).
 */
#include "harness.h"

#include <stdlib.h>

#include "model/diff.h"
#include "core/scan.h"
#include "fake_source.h"
#include "util/error.h"

static char *run_scan(struct fake_source *f, const char *base, const char *new_)
{
	struct ps_scan *sc = NULL;
	struct ps_change *c = NULL;
	size_t n = 0;
	bool done = false;
	struct ps_buf out;

	CHECK_OK(ps_scan_new(&sc, fake_as_source(f), base, new_));
	while (!done)
		if (ps_scan_step(sc, 3, &done) < 0) {
			CHECK(!"scan step failed");
			break;
		}
	ps_scan_take_changes(sc, &c, &n);
	ps_buf_init(&out, 1 << 20);
	for (size_t i = 0; i < n; i++) {
		if (c[i].status == PS_CHANGE_RENAMED)
			ps_buf_printf(&out, "R %s->%s;", c[i].previous_path, c[i].path);
		else
			ps_buf_printf(&out, "%c %s;", "AMDRT"[c[i].status], c[i].path);
	}
	ps_changes_free(c, n);
	ps_scan_free(sc);
	return ps_buf_take(&out, NULL);
}

static void test_first_scan_lists_everything(void)
{
	struct fake_source *f = fake_new();
	const struct fake_file files[] = {
		{ "README", "hi" }, { "src/a.c", "a" }, { "src/lib/b.c", "b" },
		{ "bin/run", "@exec:#!/bin/sh" }, { "link", "@link:README" }, { "sub", "@sub:x" },
	};
	char tree[PS_SHA_HEX];
	char *got;

	snprintf(tree, sizeof(tree), "%s", fake_commit(f, "c1", files, 6));
	got = run_scan(f, NULL, tree);
	CHECK_STR(got, "A README;A bin/run;A link;A src/a.c;A src/lib/b.c;A sub;");
	free(got);
	fake_free(f);
}

static void test_changes_of_every_kind(void)
{
	struct fake_source *f = fake_new();
	const struct fake_file v1[] = {
		{ "keep.txt", "same" }, { "mod.txt", "old" }, { "del.txt", "gone" },
		{ "moved/from.txt", "moving content" }, { "tochange", "file" }, { "becomes_dir", "x" },
		{ "was_dir/inner", "y" }, { "mode.sh", "echo" }, { "deep/a/b/c/d.txt", "deep" },
	};
	const struct fake_file v2[] = {
		{ "keep.txt", "same" }, { "mod.txt", "new" }, { "moved/to.txt", "moving content" },
		{ "tochange", "@link:keep.txt" }, { "becomes_dir/inner", "x2" }, { "was_dir", "now a file" },
		{ "mode.sh", "@exec:echo" }, { "deep/a/b/c/d.txt", "deep" }, { "new.txt", "n" },
	};
	char t1[PS_SHA_HEX], t2[PS_SHA_HEX];
	char *got;

	snprintf(t1, sizeof(t1), "%s", fake_commit(f, "c1", v1, 9));
	snprintf(t2, sizeof(t2), "%s", fake_commit(f, "c2", v2, 9));
	got = run_scan(f, t1, t2);
	CHECK_STR(got, "D becomes_dir;A becomes_dir/inner;D del.txt;M mod.txt;M mode.sh;"
		       "R moved/from.txt->moved/to.txt;A new.txt;T tochange;A was_dir;D was_dir/inner;");
	free(got);
	/* Back the other way. */
	got = run_scan(f, t2, t1);
	CHECK_STR(got, "A becomes_dir;D becomes_dir/inner;A del.txt;M mod.txt;M mode.sh;"
		       "R moved/to.txt->moved/from.txt;D new.txt;T tochange;D was_dir;A was_dir/inner;");
	free(got);
	/* To and from the empty tree. */
	got = run_scan(f, t1, NULL);
	CHECK(strncmp(got, "D becomes_dir;D deep/a/b/c/d.txt;", 33) == 0);
	free(got);
	fake_free(f);
}

/* A repository of 40 directories x 25 files; one file changes deep inside one directory. */
static void test_scan_reads_only_changed_subtrees(void)
{
	struct fake_source *f = fake_new();
	size_t n = 40 * 25 + 1;
	struct fake_file *files = ps_calloc(n, sizeof(*files));
	char **bufs = ps_calloc(2 * n, sizeof(char *));
	char t1[PS_SHA_HEX], t2[PS_SHA_HEX];
	char *got;

	for (size_t d = 0, k = 0; d < 40; d++)
		for (size_t i = 0; i < 25; i++, k++) {
			bufs[2 * k] = ps_asprintf("dir%02zu/sub/file%02zu.txt", d, i);
			bufs[2 * k + 1] = ps_asprintf("content %zu %zu", d, i);
			files[k].path = bufs[2 * k];
			files[k].content = bufs[2 * k + 1];
		}
	files[n - 1].path = "top.txt";
	files[n - 1].content = "top";
	snprintf(t1, sizeof(t1), "%s", fake_commit(f, "c1", files, n));
	files[17 * 25 + 3].content = "changed";
	snprintf(t2, sizeof(t2), "%s", fake_commit(f, "c2", files, n));

	fake_reset_counts(f);
	got = run_scan(f, t1, t2);
	CHECK_STR(got, "M dir17/sub/file03.txt;");
	/* root, dir17, dir17/sub on both sides: 6 reads, not 81. */
	CHECK_INT(fake_tree_reads(f), 6);
	free(got);

	fake_reset_counts(f);
	got = run_scan(f, t2, t2);
	CHECK_STR(got, "");
	CHECK_INT(fake_tree_reads(f), 0);
	free(got);

	for (size_t i = 0; i < 2 * n; i++)
		free(bufs[i]);
	free(bufs);
	free(files);
	fake_free(f);
}

static void test_missing_base_tree_is_reported(void)
{
	struct fake_source *f = fake_new();
	const struct fake_file v1[] = { { "a", "1" } }, v2[] = { { "a", "2" } };
	char t1[PS_SHA_HEX], t2[PS_SHA_HEX];
	struct ps_scan *sc = NULL;
	bool done = false;

	snprintf(t1, sizeof(t1), "%s", fake_commit(f, "c1", v1, 1));
	snprintf(t2, sizeof(t2), "%s", fake_commit(f, "c2", v2, 1));
	fake_gc(f);
	CHECK_OK(ps_scan_new(&sc, fake_as_source(f), t1, t2));
	CHECK_INT(ps_scan_step(sc, 10, &done), PS_ENOTFOUND);
	ps_scan_free(sc);
	fake_free(f);
}

static void test_rename_pairing_rules(void)
{
	/* As git diff -M pairs them (diffcore-rename.c, find_identical_files): two identical files
	 * deleted and one added make one rename and one deletion; empty files and submodules pair
	 * too; a same base name wins over path order; a symlink pairs only with a symlink. */
	struct ps_file old[] = {
		{ (char *)"a", PS_MODE_FILE, "1111111111111111111111111111111111111111", 3 },
		{ (char *)"b", PS_MODE_FILE, "1111111111111111111111111111111111111111", 3 },
		{ (char *)"d/p.txt", PS_MODE_FILE, "2222222222222222222222222222222222222222", 3 },
		{ (char *)"d/q.txt", PS_MODE_FILE, "2222222222222222222222222222222222222222", 3 },
		{ (char *)"e", PS_MODE_FILE, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", 0 },
		{ (char *)"lf", PS_MODE_FILE, "3333333333333333333333333333333333333333", 3 },
		{ (char *)"ll", PS_MODE_LINK, "3333333333333333333333333333333333333333", 3 },
		{ (char *)"sub1", PS_MODE_COMMIT, "4444444444444444444444444444444444444444", 0 },
	};
	struct ps_file new_[] = {
		{ (char *)"c", PS_MODE_FILE, "1111111111111111111111111111111111111111", 3 },
		{ (char *)"f", PS_MODE_FILE, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", 0 },
		{ (char *)"n/l1", PS_MODE_LINK, "3333333333333333333333333333333333333333", 3 },
		{ (char *)"n/l2", PS_MODE_FILE, "3333333333333333333333333333333333333333", 3 },
		{ (char *)"n/q.txt", PS_MODE_EXEC, "2222222222222222222222222222222222222222", 3 },
		{ (char *)"sub2", PS_MODE_COMMIT, "4444444444444444444444444444444444444444", 0 },
	};
	static const struct {
		const char *path;
		enum ps_change_status st;
		const char *prev;
	} want[] = {
		{ "b", PS_CHANGE_DELETED, NULL },
		{ "c", PS_CHANGE_RENAMED, "a" },
		{ "d/p.txt", PS_CHANGE_DELETED, NULL },
		{ "f", PS_CHANGE_RENAMED, "e" },
		{ "n/l1", PS_CHANGE_RENAMED, "ll" },
		{ "n/l2", PS_CHANGE_RENAMED, "lf" },
		{ "n/q.txt", PS_CHANGE_RENAMED, "d/q.txt" },
		{ "sub2", PS_CHANGE_RENAMED, "sub1" },
	};
	struct ps_change *c = NULL;
	size_t n = 0;

	CHECK_OK(ps_diff_files(old, sizeof(old) / sizeof(old[0]), new_,
			       sizeof(new_) / sizeof(new_[0]), &c, &n));
	CHECK_INT(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n && i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_STR(c[i].path, want[i].path);
		CHECK_INT(c[i].status, want[i].st);
		if (want[i].prev)
			CHECK_STR(c[i].previous_path, want[i].prev);
	}
	ps_changes_free(c, n);
}

PS_TESTS(PS_TEST(test_first_scan_lists_everything), PS_TEST(test_changes_of_every_kind),
	 PS_TEST(test_scan_reads_only_changed_subtrees), PS_TEST(test_missing_base_tree_is_reported),
	 PS_TEST(test_rename_pairing_rules))
