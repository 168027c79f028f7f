/*
 * core/patch.c without a store: git's path quoting, the header lines of entries that have no
 * hunks, and --stat layout. tests/integration/test_diff_patch.py compares whole diffs with git.
 */
#include "core/patch.h"
#include "core/patch_attr.h"

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "util/error.h"

static char *quoted(const char *prefix, const char *s)
{
	struct ps_buf b;

	ps_buf_init(&b, 4096);
	ps_patch_quote(&b, prefix, s);
	return ps_buf_take(&b, NULL);
}

static void test_quote_like_core_quotepath(void)
{
	char *q;

	CHECK_STR(q = quoted("a/", "plain name.txt"), "a/plain name.txt");
	free(q);
	/* The prefix goes inside the quotes, as in "a/t\303\251st". */
	CHECK_STR(q = quoted("a/", "t\xc3\xa9st"), "\"a/t\\303\\251st\"");
	free(q);
	CHECK_STR(q = quoted("", "tab\there \"q\" back\\slash\x01\x7f\n"),
		  "\"tab\\there \\\"q\\\" back\\\\slash\\001\\177\\n\"");
	free(q);
}

static char *format(const struct ps_patch_file *f)
{
	struct ps_buf b;

	ps_buf_init(&b, 1 << 20);
	CHECK_OK(ps_patch_format(f, false, &b));
	return ps_buf_take(&b, NULL);
}

static void test_headers_without_hunks(void)
{
	struct ps_patch_file f = { .status = PS_CHANGE_ADDED, .path = "e", .old_path = "e",
		.new_mode = PS_MODE_FILE, .old_sha = "",
		.new_sha = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", .text = "" };
	char *s;

	/* An added empty file: no ---/+++ lines, as git prints it. */
	CHECK_STR(s = format(&f), "diff --git a/e b/e\nnew file mode 100644\n"
		  "index 0000000..e69de29\n");
	free(s);
	/* A mode change of the same blob: no index line. */
	f.status = PS_CHANGE_MODIFIED;
	f.old_mode = PS_MODE_FILE;
	f.new_mode = PS_MODE_EXEC;
	f.old_sha = f.new_sha;
	CHECK_STR(s = format(&f), "diff --git a/e b/e\nold mode 100644\nnew mode 100755\n");
	free(s);
	/* Skipped content: a note where hunks would be. */
	f.new_sha = "1111111111111111111111111111111111111111";
	f.new_mode = PS_MODE_FILE;
	f.skip = PS_PATCH_NOT_STORED;
	f.note = "content not stored";
	CHECK_STR(s = format(&f), "diff --git a/e b/e\nindex e69de29..1111111 100644\n"
		  "Files a/e and b/e differ (content not stored)\n");
	free(s);
}

static void add(struct ps_patch_stat *st, const char *old, const char *path, int64_t a,
		int64_t d)
{
	struct ps_patch_file f = { .status = PS_CHANGE_MODIFIED, .path = path, .old_path = old,
		.old_mode = PS_MODE_FILE, .new_mode = PS_MODE_FILE, .old_sha = "1", .new_sha = "2",
		.added = a, .deleted = d, .text = "" };
	ps_patch_stat_add(st, &f);
}

static void test_stat_layout(void)
{
	struct ps_patch_stat *st = ps_patch_stat_new();
	struct ps_buf b;

	ps_buf_init(&b, 1 << 20);
	add(st, "src/a.c", "src/a.c", 1, 0);
	add(st, "src/old/x.h", "src/new/x.h", 0, 0);
	/* More changes than fit: the graph is scaled, but keeps one column for a change. */
	add(st, "big", "big", 300, 100);
	CHECK_OK(ps_patch_stat_format(st, 80, &b));
	/* git's widths: name 20 (the longest), counts 3, graph 80 - 3 - 6 - 20 = 51 columns;
	 * 400 changes scale to 51 marks: 1 + 100 * 50 / 400 = 13 '-' and 38 '+'. */
	CHECK_STR(b.data, " src/a.c              |   1 +\n"
		  " src/{old => new}/x.h |   0\n"
		  " big                  | 400 ++++++++++++++++++++++++++++++++++++++-------------\n"
		  " 3 files changed, 301 insertions(+), 100 deletions(-)\n");
	ps_buf_dispose(&b);
	ps_patch_stat_free(st);

	/* Nothing changed: nothing printed (git prints no "0 files changed"). */
	st = ps_patch_stat_new();
	ps_buf_init(&b, 1 << 20);
	CHECK_OK(ps_patch_stat_format(st, 80, &b));
	CHECK_INT(b.len, 0);
	ps_buf_dispose(&b);
	ps_patch_stat_free(st);
}

/* gitattributes globs (git's wildmatch with WM_PATHNAME for patterns holding '/'). */
static void test_attr_glob(void)
{
	CHECK(ps_patch_attr_glob("*.c", "a.c", false));
	CHECK(!ps_patch_attr_glob("*.c", "a.h", false));
	CHECK(ps_patch_attr_glob("a/*.c", "a/b.c", true));
	CHECK(!ps_patch_attr_glob("a/*.c", "a/x/b.c", true));
	CHECK(ps_patch_attr_glob("a/**", "a/x/y/z", true));
	CHECK(ps_patch_attr_glob("**/z", "z", true));
	CHECK(ps_patch_attr_glob("**/z", "a/b/z", true));
	CHECK(ps_patch_attr_glob("a/**/z", "a/z", true));
	CHECK(ps_patch_attr_glob("a/**/z", "a/b/c/z", true));
	CHECK(!ps_patch_attr_glob("a/**/z", "b/a/z", true));
	CHECK(!ps_patch_attr_glob("a**/z", "ab/c/z", true)); /* not a whole component */
	CHECK(ps_patch_attr_glob("f[0-9]?.txt", "f1x.txt", false));
	CHECK(!ps_patch_attr_glob("f[!0-9].txt", "f1.txt", false));
	CHECK(ps_patch_attr_glob("\\*", "\\x", false) == false);
	CHECK(ps_patch_attr_glob("a\\*b", "a*b", false));
}

/* Within one file the last matching line naming `diff` (or a macro of it) wins. */
static void test_attr_lines(void)
{
	static const char text[] = "[attr]nd -diff\n* binary\n*.txt diff\n# x -diff\n"
				   "docs/*.txt nd\nlog* !diff\nsub/ -diff\n*.c text\n";
	bool decided;

	CHECK_INT(ps_patch_attr_match_text(text, strlen(text), true, "a.bin", &decided),
		  PS_ATTR_DIFF_UNSET);
	CHECK(decided);
	CHECK_INT(ps_patch_attr_match_text(text, strlen(text), true, "x/a.txt", &decided),
		  PS_ATTR_DIFF_SET);
	CHECK_INT(ps_patch_attr_match_text(text, strlen(text), true, "docs/a.txt", &decided),
		  PS_ATTR_DIFF_UNSET);
	CHECK_INT(ps_patch_attr_match_text(text, strlen(text), true, "log.txt", &decided),
		  PS_ATTR_DIFF_UNSPECIFIED);
	CHECK(decided);
	/* "*.c text" says nothing of diff: "* binary" still holds. */
	CHECK_INT(ps_patch_attr_match_text(text, strlen(text), true, "m.c", &decided),
		  PS_ATTR_DIFF_UNSET);
	/* Macros are defined only at the top level. */
	CHECK_INT(ps_patch_attr_match_text("[attr]nd -diff\nz nd\n", 20, false, "z", &decided),
		  PS_ATTR_DIFF_UNSPECIFIED);
	CHECK(!decided);
}

PS_TESTS(PS_TEST(test_quote_like_core_quotepath), PS_TEST(test_headers_without_hunks),
	 PS_TEST(test_stat_layout), PS_TEST(test_attr_glob), PS_TEST(test_attr_lines))
