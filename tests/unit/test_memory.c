/*
 * Memory entries: front matter and titles (core/memory.c), memory globs, the search-text
 * sanitiser, and the full life of an entry through real syncs over the in-memory source:
 * created, superseded by a change, restored, kept by a sync that does not touch it, superseded
 * again, removed with its file; a failed sync and a staged-then-failed sync leave memory exactly
 * as it was; search never mixes projects and ranks a title match above a body mention.
 */
#include "harness.h"

#include <stdlib.h>
#include <unistd.h>

#include "core/memory.h"
#include "core/sync.h"
#include "fake_source.h"
#include "store/store.h"
#include "util/error.h"

/* ---- front matter ---- */

static void parse(struct ps_memory_entry *e, const char *path, const char *text)
{
	memset(e, 0, sizeof(*e));
	ps_memory_parse(e, path, text, strlen(text));
}

static void test_front_matter_title_and_tags(void)
{
	struct ps_memory_entry e;

	parse(&e, ".memory/a.md",
	      "---\ntitle: Deploy notes\ntags: [ops, \"deploy, prod\", ops]\nowner: me\n---\n"
	      "# Heading\nBody text\n");
	CHECK_STR(e.title, "Deploy notes");
	CHECK_INT(e.tags.n, 2); /* duplicates dropped, a quoted comma kept */
	CHECK_STR(e.tags.n > 0 ? e.tags.v[0] : NULL, "ops");
	CHECK_STR(e.tags.n > 1 ? e.tags.v[1] : NULL, "deploy, prod");
	CHECK_STR(e.content, "# Heading\nBody text\n");
	ps_memory_entry_dispose(&e);

	/* A block list, a quoted title holding '#', a comment, CRLF line ends. */
	parse(&e, "n.md",
	      "---\r\n# a comment\r\ntitle: \"C# tips\" # trailing comment\r\ntags:\r\n  - one\r\n"
	      "  - 'two'\r\n- three\r\n...\r\nbody\r\n");
	CHECK_STR(e.title, "C# tips");
	CHECK_INT(e.tags.n, 3);
	CHECK_STR(e.tags.n > 2 ? e.tags.v[2] : NULL, "three");
	CHECK_STR(e.content, "body\r\n");
	ps_memory_entry_dispose(&e);

	/* Plain comma list; no title key: the first level-1 heading of the body. */
	parse(&e, "n.md", "---\ntags: a, b\n---\nintro\n## Not this\n# The Title ##\n");
	CHECK_STR(e.title, "The Title");
	CHECK_INT(e.tags.n, 2);
	ps_memory_entry_dispose(&e);

	/* YAML's escapes in double quotes: \u, \U and \x are characters (they lost their
	 * backslash: "caf\u00e9" became "cafu00e9"), \t and \n a space, no valid code point
	 * U+FFFD; a backslash before what is no escape's digits stays as written. */
	parse(&e, "n.md",
	      "---\ntitle: \"caf\\u00e9 \\x41\\U0001F600 \\\"q\\\" a\\tb\\nc \\\\ \\ud800\"\n"
	      "tags: [\"\\u00fcber\", \"x\\u12\"]\n---\nbody\n");
	CHECK_STR(e.title, "caf\xc3\xa9 A\xf0\x9f\x98\x80 \"q\" a b c \\ \xef\xbf\xbd");
	CHECK_INT(e.tags.n, 2);
	CHECK_STR(e.tags.n > 0 ? e.tags.v[0] : NULL, "\xc3\xbc" "ber");
	CHECK_STR(e.tags.n > 1 ? e.tags.v[1] : NULL, "x\\u12");
	ps_memory_entry_dispose(&e);

	/* A UTF-8 byte order mark before the block. */
	parse(&e, "n.md", "\xef\xbb\xbf---\ntitle: BOM\n---\nx");
	CHECK_STR(e.title, "BOM");
	CHECK_STR(e.content, "x");
	ps_memory_entry_dispose(&e);
}

static void check_tags(const struct ps_memory_entry *e, const char *const *want, size_t n)
{
	CHECK_INT(e->tags.n, n);
	for (size_t i = 0; i < n && i < e->tags.n; i++)
		CHECK_STR(e->tags.v[i], want[i]);
}

/* Values over several lines, as YAML writers produce them: block scalars (literal `|` and
 * folded `>`, with chomping and indentation indicators), block lists, plain and quoted
 * scalars and flow lists continued on indented lines. */
static void test_front_matter_multiline(void)
{
	struct ps_memory_entry e;

	parse(&e, "n.md", "---\ntitle: |\n  Literal title\ntags: |\n  a\n  b, c\n---\nbody\n");
	CHECK_STR(e.title, "Literal title");
	check_tags(&e, (const char *const[]){ "a", "b", "c" }, 3);
	CHECK_STR(e.content, "body\n");
	ps_memory_entry_dispose(&e);

	/* Folded, lines joined; a block's text is as written: '#', quotes, '- ' and `k: v`. */
	parse(&e, "n.md",
	      "---\ntitle: >-\n  Folded \"title\"\n\n  # over lines\n  - x\n  k: v\n"
	      "tags: >+ # a comment\n  one,\n  two\n\nowner: me\n---\nbody\n");
	CHECK_STR(e.title, "Folded \"title\" # over lines - x k: v");
	check_tags(&e, (const char *const[]){ "one", "two" }, 2);
	ps_memory_entry_dispose(&e);

	/* Indentation indicators, CRLF line ends, the block last before the closing line. */
	parse(&e, "n.md", "---\r\ntags: [z]\r\ntitle: |2+\r\n    Indented\r\n  more\r\n---\r\nb\r\n");
	CHECK_STR(e.title, "Indented more");
	check_tags(&e, (const char *const[]){ "z" }, 1);
	CHECK_STR(e.content, "b\r\n");
	ps_memory_entry_dispose(&e);

	/* Block lists after `tags:` with a comment, at the margin or indented, items with
	 * comments and quotes; a value on the key's line comes first. */
	parse(&e, "n.md",
	      "---\ntags: # the tags\n  - c1\n  - 'c2' # second\n- c3\ntitle: T\n---\nx\n");
	check_tags(&e, (const char *const[]){ "c1", "c2", "c3" }, 3);
	CHECK_STR(e.title, "T");
	ps_memory_entry_dispose(&e);
	parse(&e, "n.md", "---\ntags: first\n  - second\n---\nx\n");
	check_tags(&e, (const char *const[]){ "first", "second" }, 2);
	ps_memory_entry_dispose(&e);

	/* Plain and quoted scalars and flow lists continued on indented lines. */
	parse(&e, "n.md",
	      "---\ntitle:\n  A plain title\n  over lines\ntags: [one,\n  \"t, two\",\n  three]\n"
	      "---\nx\n");
	CHECK_STR(e.title, "A plain title over lines");
	check_tags(&e, (const char *const[]){ "one", "t, two", "three" }, 3);
	ps_memory_entry_dispose(&e);
	parse(&e, "n.md", "---\ntitle: \"A quoted\n  title\" # c\n---\nx\n");
	CHECK_STR(e.title, "A quoted title");
	ps_memory_entry_dispose(&e);

	/* Other keys' blocks are skipped whatever they hold; a title that is a list is none;
	 * an empty block is no title. */
	parse(&e, "d/n.md",
	      "---\ndescription: |\n  title: no\n  - no\ntitle:\n  - a\n  - b\ntags: |\n---\n# H\n");
	CHECK_STR(e.title, "H");
	CHECK_INT(e.tags.n, 0);
	ps_memory_entry_dispose(&e);
	parse(&e, "d/n.md", "---\ntitle: >\n\ntags: x\n---\nbody\n");
	CHECK_STR(e.title, "n.md");
	check_tags(&e, (const char *const[]){ "x" }, 1);
	ps_memory_entry_dispose(&e);

	/* `|x` is no block header: a plain value; a flow list never closed is no front matter. */
	parse(&e, "n.md", "---\ntitle: |x\n---\nb\n");
	CHECK_STR(e.title, "|x");
	ps_memory_entry_dispose(&e);
	parse(&e, "n.md", "---\ntags: [a,\n  b\n---\n# H\n");
	CHECK_STR(e.title, "H");
	CHECK_INT(e.tags.n, 0);
	ps_memory_entry_dispose(&e);
}

static void test_front_matter_tolerant(void)
{
	struct ps_memory_entry e;
	struct ps_buf big;

	/* Unterminated: not front matter, the whole text is content, title from the heading. */
	parse(&e, "d/n.md", "---\ntitle: Never closed\n# Real title\ntext\n");
	CHECK_STR(e.title, "Real title");
	CHECK_INT(e.tags.n, 0);
	CHECK_STR(e.content, "---\ntitle: Never closed\n# Real title\ntext\n");
	ps_memory_entry_dispose(&e);

	/* A line that is not `key: value`: malformed, plain content. */
	parse(&e, "d/n.md", "---\ntitle: X\nthis is not yaml\n---\nbody\n");
	CHECK_STR(e.title, "n.md");
	CHECK(strncmp(e.content, "---\ntitle: X", 12) == 0);
	ps_memory_entry_dispose(&e);

	/* An unclosed flow list. */
	parse(&e, "d/n.md", "---\ntags: [a, b\n---\n# T\n");
	CHECK_INT(e.tags.n, 0);
	CHECK_STR(e.title, "T");
	ps_memory_entry_dispose(&e);

	/* A heading inside a code fence is not the title; the file name is. */
	parse(&e, "x/notes.md", "```\n# not a title\n```\nplain\n#NoSpace\n");
	CHECK_STR(e.title, "notes.md");
	ps_memory_entry_dispose(&e);

	/* Empty file; NUL byte cuts the content. */
	parse(&e, "empty.md", "");
	CHECK_STR(e.title, "empty.md");
	CHECK_STR(e.content, "");
	ps_memory_entry_dispose(&e);
	memset(&e, 0, sizeof(e));
	ps_memory_parse(&e, "bin.md", "# B\nab\0cd", 10);
	CHECK_STR(e.content, "# B\nab");
	ps_memory_entry_dispose(&e);

	/* Too many lines: bounded, taken as plain content. */
	ps_buf_init(&big, 1 << 20);
	ps_buf_puts(&big, "---\n");
	for (int i = 0; i < PS_MEMORY_MAX_FRONT_LINES + 10; i++)
		ps_buf_printf(&big, "k%d: v\n", i);
	ps_buf_puts(&big, "title: Late\n---\nbody\n");
	parse(&e, "big.md", big.data);
	CHECK_STR(e.title, "big.md");
	CHECK(strncmp(e.content, "---\nk0: v", 9) == 0);
	ps_memory_entry_dispose(&e);
	ps_buf_dispose(&big);

	/* A tag's bound holds for the tag as stored: bytes that are not UTF-8 become U+FFFD
	 * (3 bytes each), so 41 of them (41 bytes given) would be a 123-byte tag. Dropped, as
	 * a tag over the bound is; one that fits as stored is kept. */
	ps_buf_init(&big, 1024);
	ps_buf_puts(&big, "---\ntags: ok, ");
	for (int i = 0; i < 41; i++)
		ps_buf_puts(&big, "\xff");
	ps_buf_puts(&big, ", ");
	for (int i = 0; i < 33; i++)
		ps_buf_puts(&big, "\xff");
	ps_buf_puts(&big, "\n---\nbody\n");
	parse(&e, "t.md", big.data);
	CHECK_INT(e.tags.n, 2);
	for (size_t i = 0; i < e.tags.n; i++)
		CHECK(strlen(e.tags.v[i]) <= PS_MEMORY_MAX_TAG);
	CHECK(e.tags.n == 2 && strcmp(e.tags.v[0], "ok") == 0 && strlen(e.tags.v[1]) == 99);
	ps_memory_entry_dispose(&e);
	ps_buf_dispose(&big);

	/* A huge title is cut at a character boundary. */
	ps_buf_init(&big, 1 << 20);
	ps_buf_puts(&big, "# ");
	for (int i = 0; i < 400; i++)
		ps_buf_puts(&big, "\xc3\xa9"); /* é */
	parse(&e, "t.md", big.data);
	CHECK(strlen(e.title) <= PS_MEMORY_MAX_TITLE);
	CHECK(strlen(e.title) % 2 == 0);
	ps_memory_entry_dispose(&e);
	ps_buf_dispose(&big);
}

/* ---- globs ---- */

static void test_glob(void)
{
	const char *g = PS_DEFAULT_MEMORY_GLOB;
	struct ps_buf path;

	CHECK(ps_memory_glob_match(g, ".memory/a.md"));
	CHECK(ps_memory_glob_match(g, ".memory/x/a.md"));
	CHECK(ps_memory_glob_match(g, ".memory/x/y/z/a.md"));
	CHECK(!ps_memory_glob_match(g, ".memory/a.txt"));
	CHECK(!ps_memory_glob_match(g, "memory/a.md"));
	CHECK(!ps_memory_glob_match(g, "x/.memory/a.md"));
	CHECK(!ps_memory_glob_match(g, ".memory/a.md/b"));
	CHECK(!ps_memory_glob_match(g, ".memory"));
	CHECK(ps_memory_glob_match("**/*.md", "a.md"));
	CHECK(ps_memory_glob_match("**/*.md", "d/e/a.md"));
	CHECK(ps_memory_glob_match("/docs/*.md", "docs/a.md"));
	CHECK(!ps_memory_glob_match("docs/*.md", "docs/x/a.md"));
	CHECK(ps_memory_glob_match("docs/**", "docs/x/a.md"));
	CHECK(ps_memory_glob_match("NOTES.md", "NOTES.md"));
	CHECK(!ps_memory_glob_match("NOTES.md", "notes.md"));
	CHECK(ps_memory_glob_match("n?te[sx].md", "notex.md"));
	CHECK(!ps_memory_glob_match("n?te[!sx].md", "notes.md"));
	CHECK(ps_memory_glob_match("[a-c]*.md", "b1.md"));
	CHECK(ps_memory_glob_match("a\\*.md", "a*.md"));
	CHECK(!ps_memory_glob_match("a\\*.md", "ab.md"));
	CHECK(ps_memory_glob_match("a/**/b/**/c.md", "a/x/b/y/z/c.md"));
	CHECK(!ps_memory_glob_match("a/**/b/**/c.md", "a/x/y/z/c.md"));
	CHECK(!ps_memory_glob_match("", "a.md"));

	/* Hostile input stays fast: many stars against a long component, deep paths. */
	ps_buf_init(&path, 1 << 20);
	for (int i = 0; i < 4000; i++)
		ps_buf_puts(&path, "a");
	CHECK(!ps_memory_glob_match("*a*a*a*a*a*a*a*a*b", path.data));
	ps_buf_dispose(&path);
	ps_buf_init(&path, 1 << 20);
	for (int i = 0; i < 2000; i++)
		ps_buf_puts(&path, "a/");
	ps_buf_puts(&path, "x");
	CHECK(!ps_memory_glob_match("**/a/**/a/**/a/**/b", path.data));
	CHECK(ps_memory_glob_match("**/a/**/x", path.data));
	ps_buf_dispose(&path);
}

/* ---- search text ---- */

static void check_query(const char *in, const char *want)
{
	char *q = NULL;
	int rc = ps_memory_fts_query(&q, in);

	if (want) {
		CHECK_INT(rc, 0);
		CHECK_STR(q, want);
	} else {
		CHECK_INT(rc, PS_EINVAL);
		CHECK_STR(ps_error_slug(), "empty_query");
	}
	free(q);
}

static void test_query_sanitising(void)
{
	struct ps_buf big;
	char *q = NULL;

	check_query("hello world", "\"hello\" \"world\"");
	check_query("  say \"hi\" ", "\"say\" \"\"\"hi\"\"\"");
	check_query("-foo bar*", "\"-foo\" \"bar*\"");
	check_query("(a OR b", "\"(a\" \"OR\" \"b\"");
	check_query("NEAR(a b) AND c", "\"NEAR(a\" \"b)\" \"AND\" \"c\"");
	check_query("title:x ^y", "\"title:x\" \"^y\"");
	check_query("café", "\"café\"");
	check_query("", NULL);
	check_query(NULL, NULL);
	check_query(" \t\n", NULL);
	check_query("- * ( ) \" :", NULL);
	ps_buf_init(&big, 1 << 16);
	for (int i = 0; i < PS_MEMORY_MAX_QUERY + 1; i++)
		ps_buf_puts(&big, "x");
	CHECK_INT(ps_memory_fts_query(&q, big.data), PS_ETOOBIG);
	ps_buf_dispose(&big);

	/* Text that is not UTF-8 is refused by name, whatever the word around it; every
	 * well-formed sequence length still passes. */
	static const char *const bad[] = { "\xff", "kiwi\xff", "\xc0\x80", "caf\xc3",
					   "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80",
					   "a \xf8\x88\x80\x80\x80", "\xe0\x80\xaf" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q = NULL;
		CHECK_INT(ps_memory_fts_query(&q, bad[i]), PS_EINVAL);
		CHECK_STR(ps_error_slug(), "invalid_query");
		CHECK(strstr(ps_error_message(), "not valid UTF-8") != NULL);
		CHECK(q == NULL);
		CHECK_INT(ps_memory_fts_prefix_query(&q, bad[i]), PS_EINVAL);
	}
	check_query("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
		    "\"\xc3\xa9\" \"\xe2\x82\xac\" \"\xf0\x9f\x98\x80\" \"\xf4\x8f\xbf\xbf\"");
}

/* ---- the store and the pipeline ---- */

struct env {
	char *dir;
	char *db;
	struct ps_store *store;
	struct ps_sync_ctx ctx;
	struct fake_source *fake;
	int64_t project_id;
};

static void env_init(struct env *e)
{
	struct ps_project p = { .name = (char *)"p", .source = (char *)"fake:" };

	memset(e, 0, sizeof(*e));
	e->dir = ps_test_tmpdir();
	e->db = ps_test_store_url();
	CHECK_OK(ps_store_open(&e->store, e->db, 0));
	CHECK_OK(ps_store_project_add(e->store, &p)); /* default memory glob */
	e->project_id = p.id;
	ps_strv_dispose(&p.memory_globs);
	e->fake = fake_new();
	fake_register(e->fake);
	e->ctx.store = e->store;
	e->ctx.open_source = fake_open;
}

static void env_dispose(struct env *e)
{
	ps_store_free(e->store);
	fake_free(e->fake);
	free(e->db);
	free(e->dir);
}

/* Runs a sync to its end; returns its id, or 0 if it did not succeed. */
static int64_t sync_now(struct env *e)
{
	struct ps_sync_run *r = NULL;
	const struct ps_event *ev;
	int64_t id = 0;
	bool ok = false;

	if (ps_sync_begin(&r, &e->ctx, "p", NULL) < 0) {
		CHECK(!"begin failed");
		return 0;
	}
	while (ps_sync_next(r, &ev) == PS_SYNC_MORE)
		if (ev->kind == PS_EVENT_SUCCEEDED)
			ok = true;
	id = ps_sync_run_sync(r)->id;
	ps_sync_end(r);
	return ok ? id : 0;
}

/* The active entry of a path (copy into *out), or false. */
static bool active_of(struct env *e, const char *path, struct ps_memory_entry *out)
{
	struct ps_memory_entry *v = NULL;
	size_t n = 0;
	bool found = false;

	CHECK_OK(ps_store_memory_search(e->store, e->project_id, NULL, false, 0, 0, &v, &n));
	for (size_t i = 0; i < n; i++)
		if (v[i].source_ref && strcmp(v[i].source_ref, path) == 0 && !found) {
			CHECK_INT(v[i].status, PS_MEMORY_ACTIVE);
			*out = v[i];
			memset(&v[i], 0, sizeof(v[i]));
			found = true;
		}
	ps_memory_entries_free(v, n);
	return found;
}

/* Ids of a search's results, as "1,4,7" (for compact checks). */
static char *search_ids(struct env *e, int64_t project, const char *q, bool superseded)
{
	struct ps_memory_entry *v = NULL;
	struct ps_buf b;
	size_t n = 0;
	int rc = ps_store_memory_search(e->store, project, q, superseded, 0, 0, &v, &n);

	ps_buf_init(&b, 1 << 16);
	if (rc < 0)
		ps_buf_printf(&b, "error %d", rc);
	for (size_t i = 0; i < n; i++)
		ps_buf_printf(&b, "%s%lld%s", i ? "," : "", (long long)v[i].id,
			      v[i].status == PS_MEMORY_SUPERSEDED ? "s" : "");
	ps_memory_entries_free(v, n);
	return ps_buf_take(&b, NULL);
}

#define CHECK_IDS(e, project, q, sup, want) do { char *_ids = search_ids(e, project, q, sup); \
	CHECK_STR(_ids, want); free(_ids); } while (0)

static char *ids_text(int64_t a)
{
	return ps_asprintf("%lld", (long long)a);
}

static void test_lifecycle(void)
{
	struct env e;
	struct fake_file v1[] = {
		{ ".memory/a.md", "---\ntitle: Alpha\ntags: [fruit]\n---\nfirst version about kiwi\n" },
		{ ".memory/team/b.md", "# Bravo\nabout the team\n" },
		{ "src/x.c", "kiwi in code is not memory\n" },
	};
	struct fake_file v2[] = {
		{ ".memory/a.md", "---\ntitle: Alpha\n---\nsecond version about mango\n" },
		{ ".memory/team/b.md", "# Bravo\nabout the team\n" },
		{ "src/x.c", "kiwi in code is not memory\n" },
	};
	struct fake_file v3[] = {
		{ ".memory/a.md", "---\ntitle: Alpha\n---\nsecond version about mango\n" },
		{ ".memory/team/b.md", "# Bravo\nabout the team, changed\n" },
		{ "src/x.c", "kiwi in code is not memory\n" },
	};
	struct fake_file v4[] = {
		{ ".memory/a.md", "# Alpha\nthird version about papaya\n" },
		{ ".memory/team/b.md", "# Bravo\nabout the team, changed\n" },
		{ "src/x.c", "kiwi in code is not memory\n" },
	};
	struct fake_file v5[] = {
		{ ".memory/c.md", "# Bravo\nabout the team, changed\n" }, /* b renamed */
		{ "src/x.c", "kiwi in code is not memory\n" },
	};
	struct ps_memory_entry a1 = { 0 }, a2 = { 0 }, ar = { 0 }, a4 = { 0 }, b = { 0 }, tmp = { 0 };
	struct ps_memory_entry *got = NULL, *hist = NULL, *manual = NULL;
	int64_t s1, s2, s3, s4, s5;
	bool restored = true;
	size_t n = 0;
	char *want;

	env_init(&e);

	/* Sync 1 creates the entries of the files under .memory/, nothing else. */
	fake_commit(e.fake, "c1", v1, 3);
	CHECK((s1 = sync_now(&e)) > 0);
	CHECK(active_of(&e, ".memory/a.md", &a1));
	CHECK(active_of(&e, ".memory/team/b.md", &b));
	CHECK(!active_of(&e, "src/x.c", &tmp));
	CHECK_STR(a1.title, "Alpha");
	CHECK_STR(a1.source, "fake"); /* the source's kind: git or github for real sources */
	CHECK_INT(a1.tags.n, 1);
	CHECK_STR(a1.content, "first version about kiwi\n");
	CHECK_INT(a1.introduced_by_sync, s1);
	CHECK_STR(b.title, "Bravo");
	want = ids_text(a1.id);
	CHECK_IDS(&e, e.project_id, "kiwi", false, want);
	free(want);

	/* A manual entry: never touched by syncs. */
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Manual note", "written by hand", NULL,
				     &manual));

	/* Sync 2 modifies a.md: a new active entry, the old one superseded and out of search. */
	fake_commit(e.fake, "c2", v2, 3);
	CHECK((s2 = sync_now(&e)) > 0);
	CHECK(active_of(&e, ".memory/a.md", &a2));
	CHECK(a2.id != a1.id);
	CHECK_INT(a2.introduced_by_sync, s2);
	CHECK_OK(ps_store_memory_get(e.store, a1.id, &got));
	CHECK_INT(got->status, PS_MEMORY_SUPERSEDED);
	CHECK_INT(got->superseded_by_sync, s2);
	CHECK_INT(got->superseded_by_entry, a2.id);
	ps_memory_entry_free(got);
	CHECK_IDS(&e, e.project_id, "kiwi", false, "");
	want = ps_asprintf("%llds", (long long)a1.id);
	CHECK_IDS(&e, e.project_id, "kiwi", true, want);
	free(want);
	want = ids_text(a2.id);
	CHECK_IDS(&e, e.project_id, "mango", false, want);
	free(want);

	/* Restore the sync-1 version: a new active copy; the sync-2 entry superseded by it. */
	CHECK_OK(ps_store_memory_restore(e.store, a1.id, &got, &restored));
	CHECK(restored);
	CHECK_INT(got->status, PS_MEMORY_ACTIVE);
	CHECK_INT(got->restored_from, a1.id);
	CHECK_INT(got->introduced_by_sync, 0);
	CHECK_INT(got->origin, PS_MEMORY_FROM_RESTORE);
	CHECK_STR(got->content, "first version about kiwi\n");
	CHECK_STR(got->source_ref, ".memory/a.md");
	ps_memory_entry_free(got);
	CHECK(active_of(&e, ".memory/a.md", &ar));
	CHECK_INT(ar.restored_from, a1.id);
	CHECK_OK(ps_store_memory_get(e.store, a2.id, &got));
	CHECK_INT(got->status, PS_MEMORY_SUPERSEDED);
	CHECK_INT(got->superseded_by_sync, 0);
	CHECK_INT(got->superseded_by_entry, ar.id);
	ps_memory_entry_free(got);
	want = ids_text(ar.id);
	CHECK_IDS(&e, e.project_id, "kiwi", false, want);
	free(want);
	CHECK_IDS(&e, e.project_id, "mango", false, "");

	/* Restoring an active entry is a no-op; an unknown id is not found. */
	CHECK_OK(ps_store_memory_restore(e.store, ar.id, &got, &restored));
	CHECK(!restored);
	CHECK_INT(got->id, ar.id);
	ps_memory_entry_free(got);
	CHECK_INT(ps_store_memory_restore(e.store, 999999, NULL, NULL), PS_ENOTFOUND);
	CHECK_INT(ps_store_memory_get(e.store, 999999, &got), PS_ENOTFOUND);

	/* Sync 3 changes only b.md: the restored entry stays active. */
	fake_commit(e.fake, "c3", v3, 3);
	CHECK((s3 = sync_now(&e)) > 0);
	CHECK(active_of(&e, ".memory/a.md", &tmp));
	CHECK_INT(tmp.id, ar.id);
	ps_memory_entry_dispose(&tmp);
	CHECK(active_of(&e, ".memory/team/b.md", &tmp));
	CHECK_INT(tmp.introduced_by_sync, s3);
	ps_memory_entry_dispose(&tmp);

	/* Sync 4 changes a.md again: the restored entry is superseded by that sync. */
	fake_commit(e.fake, "c4", v4, 3);
	CHECK((s4 = sync_now(&e)) > 0);
	CHECK(active_of(&e, ".memory/a.md", &a4));
	CHECK_INT(a4.introduced_by_sync, s4);
	CHECK_OK(ps_store_memory_get(e.store, ar.id, &got));
	CHECK_INT(got->status, PS_MEMORY_SUPERSEDED);
	CHECK_INT(got->superseded_by_sync, s4);
	CHECK_INT(got->superseded_by_entry, a4.id);
	ps_memory_entry_free(got);

	/* Sync 5 deletes a.md and renames b.md to c.md. */
	fake_commit(e.fake, "c5", v5, 2);
	CHECK((s5 = sync_now(&e)) > 0);
	CHECK(!active_of(&e, ".memory/a.md", &tmp));
	CHECK(!active_of(&e, ".memory/team/b.md", &tmp));
	CHECK(active_of(&e, ".memory/c.md", &tmp));
	CHECK_STR(tmp.title, "Bravo");
	ps_memory_entry_dispose(&tmp);
	CHECK_OK(ps_store_memory_get(e.store, a4.id, &got));
	CHECK_INT(got->status, PS_MEMORY_SUPERSEDED);
	CHECK_INT(got->superseded_by_sync, s5);
	CHECK_INT(got->superseded_by_entry, 0);
	ps_memory_entry_free(got);
	CHECK_IDS(&e, e.project_id, "papaya", false, "");

	/* The manual entry outlived every sync. */
	CHECK_OK(ps_store_memory_get(e.store, manual->id, &got));
	CHECK_INT(got->status, PS_MEMORY_ACTIVE);
	want = ids_text(manual->id);
	CHECK_IDS(&e, e.project_id, "hand", false, want);
	free(want);
	CHECK_STR(got->source, "manual");
	ps_memory_entry_free(got);

	/* The history of a.md, newest first, from any of its entries. */
	CHECK_OK(ps_store_memory_history(e.store, a1.id, &hist, &n));
	CHECK_INT(n, 4);
	if (n == 4) {
		CHECK_INT(hist[0].id, a4.id);
		CHECK_INT(hist[1].id, ar.id);
		CHECK_INT(hist[1].restored_from, a1.id);
		CHECK_INT(hist[2].id, a2.id);
		CHECK_INT(hist[3].id, a1.id);
		CHECK_INT(hist[3].introduced_by_sync, s1);
	}
	ps_memory_entries_free(hist, n);
	CHECK_OK(ps_store_memory_history(e.store, manual->id, &hist, &n));
	CHECK_INT(n, 1);
	ps_memory_entries_free(hist, n);

	/* The JSON shape. */
	{
		json_t *j = ps_memory_entry_to_json(&ar);
		CHECK_STR(json_string_value(json_object_get(j, "status")), "active");
		CHECK_STR(json_string_value(json_object_get(j, "project")), "p");
		CHECK_INT(json_integer_value(json_object_get(j, "restored_from")), a1.id);
		CHECK(json_is_null(json_object_get(j, "introduced_by_sync")));
		CHECK(json_is_null(json_object_get(j, "superseded_by_sync")));
		CHECK(json_is_array(json_object_get(j, "tags")));
		CHECK(json_is_string(json_object_get(j, "created_at")));
		CHECK(json_object_get(j, "snippet") == NULL);
		json_decref(j);
	}

	ps_memory_entry_free(manual);
	ps_memory_entry_dispose(&a1);
	ps_memory_entry_dispose(&a2);
	ps_memory_entry_dispose(&ar);
	ps_memory_entry_dispose(&a4);
	ps_memory_entry_dispose(&b);
	env_dispose(&e);
}

/* Every memory row as text (state and links included), and the raw row counts. */
static char *memory_dump(const char *db)
{
	static const char sqlite_sql[] =
		"SELECT id, state, source_ref, content, introduced_by_sync, "
		"superseded_by_sync, superseded_by_entry, restored_from FROM memory_entries "
		"UNION ALL SELECT count(*), 'removals', NULL, NULL, NULL, NULL, NULL, NULL "
		"FROM memory_staged_removals "
		"UNION ALL SELECT count(*), 'fts', NULL, NULL, NULL, NULL, NULL, NULL "
		"FROM memory_fts WHERE memory_fts MATCH '\"kiwi\"' ORDER BY 2, 1";
	static const char pg_sql[] =
		"SELECT id, state, convert_from(source_ref, 'UTF8'), content, introduced_by_sync, "
		"superseded_by_sync, superseded_by_entry, restored_from FROM memory_entries "
		"UNION ALL SELECT count(*), 'removals', NULL, NULL, NULL, NULL, NULL, NULL "
		"FROM memory_staged_removals "
		"UNION ALL SELECT count(*), 'fts', NULL, NULL, NULL, NULL, NULL, NULL "
		"FROM memory_entries WHERE fts @@ to_tsquery('simple', 'kiwi') ORDER BY 2, 1";
	char *out = ps_test_sql(db, ps_test_pg() ? pg_sql : sqlite_sql);

	CHECK(strncmp(out, "error", 5) != 0);
	return out;
}

static void test_failed_sync_leaves_memory(void)
{
	struct env e;
	struct fake_file v1[] = { { ".memory/a.md", "# A\nkiwi\n" }, { ".memory/b.md", "# B\n" } };
	struct fake_file v2[] = { { ".memory/a.md", "# A\nchanged kiwi\n" } }; /* b deleted */
	char *before, *after;

	env_init(&e);
	fake_commit(e.fake, "c1", v1, 2);
	CHECK(sync_now(&e) > 0);
	before = memory_dump(e.db);
	CHECK(strstr(before, ".memory/a.md") != NULL);

	fake_commit(e.fake, "c2", v2, 1);
	fake_fail_fetch_after(e.fake, 1);
	CHECK_INT(sync_now(&e), 0);
	after = memory_dump(e.db);
	CHECK_STR(after, before);
	free(after);

	/* The next sync applies both changes. */
	fake_fail_fetch_after(e.fake, 0);
	CHECK(sync_now(&e) > 0);
	after = memory_dump(e.db);
	CHECK(strcmp(after, before) != 0);
	free(after);
	CHECK_IDS(&e, e.project_id, "changed", false, "3");
	free(before);
	env_dispose(&e);
}

static struct ps_owner me(void)
{
	static char proc[64];
	ps_process_identity(getpid(), proc, sizeof(proc));
	return (struct ps_owner){ ps_hostname(), proc, 60000 };
}

/* Staged entries and removals are invisible until finalize; a failed sync discards them. */
static void test_staged_invisible_then_discarded(void)
{
	struct env e;
	struct fake_file v1[] = { { ".memory/a.md", "# A\nkiwi\n" }, { ".memory/b.md", "# B\n" } };
	struct ps_owner owner = me();
	struct ps_sync *y = NULL;
	struct ps_memory_entry staged = { 0 }, tmp = { 0 }, *got = NULL;
	const char *gone[] = { ".memory/b.md" };
	char *before, *after;

	env_init(&e);
	fake_commit(e.fake, "c1", v1, 2);
	CHECK(sync_now(&e) > 0);
	before = memory_dump(e.db);

	for (int round = 0; round < 2; round++) {
		CHECK_OK(ps_store_sync_create(e.store, e.project_id, "main", "cli", &owner, &y));
		ps_memory_parse(&staged, ".memory/a.md", "# A2\nstaged kiwi\n", 17);
		staged.source = ps_strdup("git");
		staged.source_ref = ps_strdup(".memory/a.md");
		CHECK_OK(ps_store_memory_stage(e.store, y, &staged, 1));
		CHECK_OK(ps_store_memory_stage_removals(e.store, y, gone, 1));
		ps_memory_entry_dispose(&staged);
		/* Invisible: search, listing, get. */
		CHECK_IDS(&e, e.project_id, "staged", true, "");
		CHECK_INT(ps_store_memory_get(e.store, 3, &got), PS_ENOTFOUND);
		CHECK(active_of(&e, ".memory/b.md", &tmp));
		ps_memory_entry_dispose(&tmp);
		if (round == 0) {
			CHECK_OK(ps_store_sync_fail(e.store, y, PS_SYNC_FAILED, "test", "test", NULL));
			after = memory_dump(e.db);
			CHECK_STR(after, before);
			free(after);
		} else {
			CHECK_OK(ps_store_sync_finalize(e.store, y, NULL, 0, NULL));
			CHECK_IDS(&e, e.project_id, "staged", false, "4");
			CHECK(!active_of(&e, ".memory/b.md", &tmp));
			CHECK(active_of(&e, ".memory/a.md", &tmp));
			CHECK_STR(tmp.title, "A2");
			ps_memory_entry_dispose(&tmp);
		}
		ps_sync_free(y);
		y = NULL;
	}
	free(before);
	env_dispose(&e);
}

static void test_search_isolation_and_ranking(void)
{
	struct env e;
	struct ps_project q = { .name = (char *)"q", .source = (char *)"fake:" };
	struct ps_memory_entry *v = NULL, *x = NULL;
	struct ps_strv tags = { 0 };
	const char *tricky[] = { "\"", "zebra\"", "-zebra", "zebra*", "(zebra", "zebra)",
				 "NEAR(zebra", "zebra AND", "OR zebra", "zebra:x", "^zebra",
				 "'zebra'", "zebra NOT", "{zebra}", "zebra + -", "\"zebra" };
	size_t n = 0;
	char *want;

	env_init(&e);
	CHECK_OK(ps_store_project_add(e.store, &q));
	ps_strv_dispose(&q.memory_globs);

	/* Body mention first (older), title match second, other project's title match last. */
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Animals",
				     "A long note that mentions the zebra once among many other "
				     "words about lions, giraffes, elephants and rivers.", NULL, &x));
	ps_memory_entry_free(x);
	ps_strv_push(&tags, "stripes");
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Zebra care", "Feeding and housing.",
				     &tags, &x));
	ps_memory_entry_free(x);
	ps_strv_dispose(&tags);
	CHECK_OK(ps_store_memory_add(e.store, q.id, "Zebra elsewhere", "zebra zebra zebra", NULL,
				     &x));
	ps_memory_entry_free(x);

	CHECK_IDS(&e, e.project_id, "zebra", false, "2,1");
	CHECK_IDS(&e, q.id, "zebra", true, "3");
	CHECK_IDS(&e, e.project_id, "STRIPES", false, "2"); /* tags are searched, case-folded */
	CHECK_IDS(&e, e.project_id, "giraffes rivers", false, "1");

	/* Snippet with marks, rank in order. */
	CHECK_OK(ps_store_memory_search(e.store, e.project_id, "zebra", false, 0, 0, &v, &n));
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK(v[0].rank <= v[1].rank);
		CHECK(strstr(v[1].snippet, "<mark>zebra</mark>") != NULL);
	}
	ps_memory_entries_free(v, n);

	/* Paging. */
	CHECK_IDS(&e, e.project_id, NULL, false, "2,1");
	CHECK_OK(ps_store_memory_search(e.store, e.project_id, NULL, false, 1, 1, &v, &n));
	CHECK_INT(n, 1);
	CHECK_INT(n == 1 ? v[0].id : 0, 1);
	ps_memory_entries_free(v, n);

	/* What a user might type never reaches FTS as syntax and never errors. */
	for (size_t i = 0; i < sizeof(tricky) / sizeof(*tricky); i++) {
		int rc = ps_store_memory_search(e.store, e.project_id, tricky[i], true, 0, 0, &v, &n);
		if (rc == 0) {
			ps_memory_entries_free(v, n);
		} else {
			CHECK_INT(rc, PS_EINVAL);
			CHECK(strstr(ps_error_message(), "SQL") == NULL);
			CHECK(strstr(ps_error_message(), "fts5") == NULL);
		}
	}
	CHECK_IDS(&e, e.project_id, "zebra\"", false, "2,1"); /* the quote is just text */
	want = search_ids(&e, e.project_id, "-zebra", false);  /* a word, not NOT zebra */
	CHECK_STR(want, "2,1");
	free(want);
	CHECK_INT(ps_store_memory_search(e.store, e.project_id, "", false, 0, 0, &v, &n), PS_EINVAL);

	/* Bad manual entries. */
	CHECK_INT(ps_store_memory_add(e.store, e.project_id, " ", "x", NULL, NULL), PS_EINVAL);
	CHECK_INT(ps_store_memory_add(e.store, e.project_id, "a\nb", "x", NULL, NULL), PS_EINVAL);
	CHECK_INT(ps_store_memory_add(e.store, 4242, "t", "x", NULL, NULL), PS_ENOTFOUND);

	/* Removing a project removes its entries (and their index rows). */
	CHECK_OK(ps_store_project_remove(e.store, "q"));
	CHECK_INT(ps_store_memory_get(e.store, 3, &x), PS_ENOTFOUND);
	CHECK_IDS(&e, e.project_id, "elsewhere", false, "");
	env_dispose(&e);
}

static int64_t active_id(struct env *e, const char *path);

/* A word also finds the words it starts ("cach" finds "caching"); entries with the whole word
 * come first even when bm25 alone would put a prefix match (in the title) above them. */
static void test_prefix_search(void)
{
	struct env e;
	struct ps_memory_entry *x = NULL, *v = NULL;
	char *q = NULL;
	size_t n = 0;

	env_init(&e);
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Caching caches cached",
				     "caching layers", NULL, &x));               /* 1: prefix only */
	ps_memory_entry_free(x);
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Notes",
				     "a long body that says cache once among many other words "
				     "about rivers, lions and giraffes", NULL, &x)); /* 2: whole word */
	ps_memory_entry_free(x);
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Unrelated", "nothing here", NULL,
				     &x));                                        /* 3 */
	ps_memory_entry_free(x);

	CHECK_IDS(&e, e.project_id, "cach", false, "1,2");
	CHECK_IDS(&e, e.project_id, "cache", false, "2,1");      /* whole word ranks first */
	CHECK_IDS(&e, e.project_id, "caching", false, "1");
	CHECK_IDS(&e, e.project_id, "CACH layer", false, "1");   /* every word a prefix */
	CHECK_IDS(&e, e.project_id, "cach layersx", false, "");
	CHECK_IDS(&e, e.project_id, "ach", false, "");           /* a prefix, not a substring */
	/* The snippet marks what the prefix matched. */
	CHECK_OK(ps_store_memory_search(e.store, e.project_id, "cach", false, 0, 0, &v, &n));
	CHECK(n == 2 && strstr(v[0].snippet, "<mark>caching</mark>") != NULL);
	ps_memory_entries_free(v, n);
	/* Syntax in the user's text stays text in the prefix form too. */
	CHECK_OK(ps_memory_fts_prefix_query(&q, "say \"hi\" a*"));
	CHECK_STR(q, "\"say\"* \"\"\"hi\"\"\"* \"a*\"*");
	free(q);
	CHECK_IDS(&e, e.project_id, "cach*", false, "1,2");
	CHECK_IDS(&e, e.project_id, "\"cach", false, "1,2");
	env_dispose(&e);
}

/* A manual note is edited into a new version (the old one kept, restorable), deleted (restorable
 * too), and its versions are its history; imported entries and old versions refuse both. */
static void test_edit_delete_notes(void)
{
	struct env e;
	struct fake_file v1[] = { { ".memory/a.md", "# Imported\nfrom a file\n" } };
	struct ps_memory_entry *x = NULL, *v = NULL;
	struct ps_strv tags = { 0 };
	int64_t imported, n1, n2, n3;
	bool changed = true;
	size_t n = 0;

	env_init(&e);
	fake_commit(e.fake, "main", v1, 1);
	CHECK(sync_now(&e) > 0);
	imported = active_id(&e, ".memory/a.md");
	CHECK(imported > 0);
	ps_strv_push(&tags, "t1");
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Deploy", "use the blue button",
				     &tags, &x));
	n1 = x->id;
	ps_memory_entry_free(x);
	ps_strv_dispose(&tags);

	/* Edit: a new active version; the old one superseded by it. */
	CHECK_OK(ps_store_memory_edit(e.store, n1, NULL, "use the green button", NULL, &x,
				      &changed));
	CHECK(changed);
	n2 = x ? x->id : 0;
	CHECK(n2 > n1);
	CHECK_STR(x->title, "Deploy");
	CHECK_INT(x->tags.n, 1);
	CHECK_INT(x->status, PS_MEMORY_ACTIVE);
	CHECK_INT(x->origin, PS_MEMORY_FROM_MANUAL);
	ps_memory_entry_free(x);
	CHECK_OK(ps_store_memory_get(e.store, n1, &x));
	CHECK_INT(x->status, PS_MEMORY_SUPERSEDED);
	CHECK_INT(x->superseded_by_entry, n2);
	CHECK(!ps_memory_deleted(x));
	ps_memory_entry_free(x);
	CHECK_IDS(&e, e.project_id, "green", false, "3");
	CHECK_IDS(&e, e.project_id, "blue", false, "");
	CHECK_IDS(&e, e.project_id, "blue", true, "2s");

	/* The same text again: no new version. Clearing the tags is a change. */
	CHECK_OK(ps_store_memory_edit(e.store, n2, "Deploy", NULL, NULL, &x, &changed));
	CHECK(!changed);
	CHECK_INT(x->id, n2);
	ps_memory_entry_free(x);
	CHECK_OK(ps_store_memory_edit(e.store, n2, NULL, NULL, &tags, &x, &changed));
	CHECK(changed);
	n3 = x->id;
	CHECK_INT(x->tags.n, 0);
	ps_memory_entry_free(x);

	/* Refused: an old version, an imported entry, bad values, unknown ids; nothing changes. */
	CHECK_INT(ps_store_memory_edit(e.store, n1, "x", NULL, NULL, NULL, NULL), PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "not_active");
	CHECK_INT(ps_store_memory_edit(e.store, imported, "x", NULL, NULL, NULL, NULL),
		  PS_ECONFLICT);
	CHECK_STR(ps_error_slug(), "not_manual");
	CHECK_INT(ps_store_memory_delete(e.store, imported, NULL), PS_ECONFLICT);
	CHECK_INT(ps_store_memory_edit(e.store, n3, "a\nb", NULL, NULL, NULL, NULL), PS_EINVAL);
	CHECK_INT(ps_store_memory_edit(e.store, n3, " ", NULL, NULL, NULL, NULL), PS_EINVAL);
	CHECK_INT(ps_store_memory_edit(e.store, 9999, "x", NULL, NULL, NULL, NULL), PS_ENOTFOUND);
	CHECK_INT(ps_store_memory_delete(e.store, 9999, NULL), PS_ENOTFOUND);
	CHECK_INT(active_id(&e, ".memory/a.md"), imported);

	/* History: every version of the note, newest first, whichever version is asked. */
	CHECK_OK(ps_store_memory_history(e.store, n1, &v, &n));
	CHECK_INT(n, 3);
	CHECK(n == 3 && v[0].id == n3 && v[1].id == n2 && v[2].id == n1);
	ps_memory_entries_free(v, n);

	/* Delete: out of lists and searches, in its history, restorable. */
	CHECK_OK(ps_store_memory_delete(e.store, n3, &x));
	CHECK(ps_memory_deleted(x));
	ps_memory_entry_free(x);
	CHECK_INT(ps_store_memory_delete(e.store, n3, NULL), PS_ECONFLICT);
	CHECK_IDS(&e, e.project_id, "green", false, "");
	{
		char *want = ids_text(imported);
		CHECK_IDS(&e, e.project_id, NULL, false, want);
		free(want);
	}
	{
		bool restored = false;
		int64_t r1, r2;

		CHECK_OK(ps_store_memory_restore(e.store, n3, &x, &restored));
		CHECK(restored);
		r1 = x->id;
		CHECK_INT(x->restored_from, n3);
		ps_memory_entry_free(x);
		CHECK_IDS(&e, e.project_id, "green", false, "5");
		/* Restoring an older version replaces the current one: one active version. */
		CHECK_OK(ps_store_memory_restore(e.store, n1, &x, &restored));
		CHECK(restored);
		r2 = x->id;
		CHECK_STR(x->content, "use the blue button");
		ps_memory_entry_free(x);
		CHECK_OK(ps_store_memory_get(e.store, r1, &x));
		CHECK_INT(x->status, PS_MEMORY_SUPERSEDED);
		CHECK_INT(x->superseded_by_entry, r2);
		ps_memory_entry_free(x);
		CHECK_OK(ps_store_memory_history(e.store, n2, &v, &n));
		CHECK_INT(n, 5);
		for (size_t i = 0, active = 0; i < n; i++) {
			active += v[i].status == PS_MEMORY_ACTIVE;
			CHECK(active <= 1);
		}
		ps_memory_entries_free(v, n);
		/* Again: already current, nothing new. */
		CHECK_OK(ps_store_memory_restore(e.store, n1, &x, &restored));
		CHECK(!restored);
		CHECK_INT(x->id, r2);
		ps_memory_entry_free(x);
	}
	env_dispose(&e);
}

/* The project's globs decide; an empty glob list imports nothing. */
static void test_custom_globs(void)
{
	struct env e;
	struct ps_project *p = NULL;
	struct fake_file v1[] = { { "docs/notes/x.md", "# X\n" }, { ".memory/a.md", "# A\n" },
				  { "docs/y.txt", "y" } };
	struct ps_memory_entry tmp = { 0 };

	env_init(&e);
	CHECK_OK(ps_store_project_get(e.store, "p", &p));
	ps_strv_dispose(&p->memory_globs);
	ps_strv_push(&p->memory_globs, "docs/**/*.md");
	CHECK_OK(ps_store_project_update(e.store, p));
	ps_project_free(p);
	fake_commit(e.fake, "c1", v1, 3);
	CHECK(sync_now(&e) > 0);
	CHECK(active_of(&e, "docs/notes/x.md", &tmp));
	ps_memory_entry_dispose(&tmp);
	CHECK(!active_of(&e, ".memory/a.md", &tmp));
	CHECK(!active_of(&e, "docs/y.txt", &tmp));
	env_dispose(&e);
}

static void set_globs(struct env *e, const char *a, const char *b)
{
	struct ps_project *p = NULL;

	CHECK_OK(ps_store_project_get(e->store, "p", &p));
	ps_strv_dispose(&p->memory_globs);
	ps_strv_push(&p->memory_globs, a);
	if (b)
		ps_strv_push(&p->memory_globs, b);
	CHECK_OK(ps_store_project_update(e->store, p));
	ps_project_free(p);
}

static int64_t rescan_pending(struct env *e)
{
	int64_t gen = -1;

	CHECK_OK(ps_store_project_memory_rescan(e->store, e->project_id, &gen));
	return gen;
}

/* Id of the active entry of a path, 0 if none. */
static int64_t active_id(struct env *e, const char *path)
{
	struct ps_memory_entry tmp = { 0 };
	int64_t id = 0;

	if (active_of(e, path, &tmp))
		id = tmp.id;
	ps_memory_entry_dispose(&tmp);
	return id;
}

/*
 * A change of the memory globs takes effect on the next sync, even one whose head did not move:
 * the whole snapshot is re-evaluated (new matches imported, entries outside the globs
 * superseded, manual entries and unchanged imports kept). A failed sync leaves memory and the
 * pending rescan as they were; a succeeded one clears it, so the sync after it does nothing.
 */
static void test_glob_change_rescans(void)
{
	struct env e;
	struct fake_file v1[] = {
		{ ".memory/a.md", "# A\nkiwi\n" }, { ".memory/b.md", "# B\n" },
		{ "docs/x.md", "# X\n" }, { "docs/sub/y.md", "# Y\n" }, { "docs/z.txt", "z" },
	};
	struct fake_file v2[] = {
		{ ".memory/a.md", "# A\nkiwi\n" }, { ".memory/b.md", "# B\n" },
		{ "docs/x.md", "# X2\n" }, { "docs/sub/y.md", "# Y\n" }, { "docs/z.txt", "z" },
	};
	struct ps_memory_entry *manual = NULL;
	struct ps_sync *y = NULL;
	int64_t a_id, b_id, s2, s4;
	char *before, *after, *mid = NULL;

	env_init(&e);
	fake_commit(e.fake, "c1", v1, 5);
	CHECK(sync_now(&e) > 0);
	a_id = active_id(&e, ".memory/a.md");
	b_id = active_id(&e, ".memory/b.md");
	CHECK(a_id > 0 && b_id > 0);
	CHECK(!active_id(&e, "docs/x.md"));
	CHECK_OK(ps_store_memory_add(e.store, e.project_id, "Hand", "by hand", NULL, &manual));
	CHECK_INT(rescan_pending(&e), 0);

	/* Same globs again: no rescan asked for. */
	set_globs(&e, PS_DEFAULT_MEMORY_GLOB, NULL);
	CHECK_INT(rescan_pending(&e), 0);

	set_globs(&e, "docs/**/*.md", ".memory/a.md");
	CHECK(rescan_pending(&e) > 0);
	s2 = sync_now(&e); /* head unchanged */
	CHECK(s2 > 0);
	CHECK_OK(ps_store_sync_get(e.store, s2, &y));
	CHECK(y && y->up_to_date);
	ps_sync_free(y);
	y = NULL;
	CHECK(active_id(&e, "docs/x.md") > 0);
	CHECK(active_id(&e, "docs/sub/y.md") > 0);
	CHECK(!active_id(&e, "docs/z.txt"));
	CHECK_INT(active_id(&e, ".memory/a.md"), a_id); /* same blob: kept, not re-imported */
	CHECK(!active_id(&e, ".memory/b.md"));
	{
		struct ps_memory_entry *old = NULL;
		CHECK_OK(ps_store_memory_get(e.store, b_id, &old));
		CHECK(old && old->status == PS_MEMORY_SUPERSEDED);
		CHECK_INT(old ? old->superseded_by_sync : -1, s2);
		ps_memory_entry_free(old);
	}
	mid = ids_text(manual->id);
	CHECK_IDS(&e, e.project_id, "hand", false, mid);
	CHECK_INT(rescan_pending(&e), 0);

	/* The flag is cleared: the next sync changes nothing. */
	before = memory_dump(e.db);
	CHECK(sync_now(&e) > 0);
	after = memory_dump(e.db);
	CHECK_STR(after, before);
	free(after);
	free(before);

	/* Globs changed again, and the head moves, but the sync fails: nothing changes and the
	 * rescan is still pending; the next sync does both. */
	set_globs(&e, "docs/*.md", ".memory/*.md");
	fake_commit(e.fake, "c2", v2, 5);
	before = memory_dump(e.db);
	fake_fail_fetch_after(e.fake, 1);
	CHECK_INT(sync_now(&e), 0);
	after = memory_dump(e.db);
	CHECK_STR(after, before);
	free(after);
	free(before);
	CHECK(rescan_pending(&e) > 0);
	fake_fail_fetch_after(e.fake, 0);
	s4 = sync_now(&e);
	CHECK(s4 > 0);
	CHECK(active_id(&e, ".memory/b.md") > b_id); /* matches again: a new entry */
	CHECK_INT(active_id(&e, ".memory/a.md"), a_id);
	CHECK(!active_id(&e, "docs/sub/y.md"));        /* `*` stays in one directory */
	{
		struct ps_memory_entry x = { 0 };
		CHECK(active_of(&e, "docs/x.md", &x));
		CHECK_STR(x.title, "X2");
		ps_memory_entry_dispose(&x);
	}
	CHECK_IDS(&e, e.project_id, "hand", false, mid); /* the manual entry, untouched */
	CHECK_INT(rescan_pending(&e), 0);

	/* A glob change while a sync runs is not lost by that sync's finalize. */
	{
		struct ps_owner owner = me();
		int64_t gen;

		set_globs(&e, ".memory/**/*.md", NULL);
		gen = rescan_pending(&e);
		CHECK(gen > 0);
		CHECK_OK(ps_store_sync_create(e.store, e.project_id, "main", "cli", &owner, &y));
		CHECK_OK(ps_store_sync_memory_rescan(e.store, y->id, gen));
		set_globs(&e, ".memory/**/*.md", "docs/**");
		CHECK(rescan_pending(&e) > gen);
		CHECK_OK(ps_store_sync_finalize(e.store, y, NULL, 0, NULL));
		CHECK(rescan_pending(&e) > gen);
		ps_sync_free(y);
		CHECK(sync_now(&e) > 0);
		CHECK_INT(rescan_pending(&e), 0);
		CHECK(active_id(&e, "docs/sub/y.md") > 0);
	}
	free(mid);
	ps_memory_entry_free(manual);
	env_dispose(&e);
}

/* Restores an entry; returns the id of the entry the store answers with (0 on error). */
static int64_t restore(struct env *e, int64_t id, bool *restored)
{
	struct ps_memory_entry *got = NULL;
	int64_t out = 0;

	*restored = false;
	CHECK_OK(ps_store_memory_restore(e->store, id, &got, restored));
	if (got) {
		CHECK_INT(got->status, PS_MEMORY_ACTIVE);
		out = got->id;
	}
	ps_memory_entry_free(got);
	return out;
}

/*
 * Restore is safe to retry: restoring a version that is already current (the entry itself, or
 * the active entry of its path is a restored copy of it, directly or through other restores)
 * changes nothing and answers the current entry. Another version is still restored.
 */
static void test_restore_idempotent(void)
{
	struct env e;
	struct fake_file v1[] = { { ".memory/a.md", "# A\nfirst about kiwi\n" } };
	struct fake_file v2[] = { { ".memory/a.md", "# A\nsecond about mango\n" } };
	struct fake_file v3[] = { { ".memory/a.md", "# A\nthird about papaya\n" } };
	int64_t a1, a2, a3, r1, r2, r3;
	bool restored;
	char *before, *after;

	env_init(&e);
	fake_commit(e.fake, "c1", v1, 1);
	CHECK(sync_now(&e) > 0);
	a1 = active_id(&e, ".memory/a.md");
	fake_commit(e.fake, "c2", v2, 1);
	CHECK(sync_now(&e) > 0);
	a2 = active_id(&e, ".memory/a.md");
	CHECK(a1 > 0 && a2 > a1);

	r1 = restore(&e, a1, &restored);
	CHECK(restored && r1 > a2);

	/* The same restore again: nothing written, the current copy answered. */
	before = memory_dump(e.db);
	CHECK_INT(restore(&e, a1, &restored), r1);
	CHECK(!restored);
	CHECK_INT(restore(&e, r1, &restored), r1);
	CHECK(!restored);
	after = memory_dump(e.db);
	CHECK_STR(after, before);
	free(after);
	free(before);
	CHECK_INT(active_id(&e, ".memory/a.md"), r1);

	/* A sync changes the file; the copy is restored (a copy of a copy): restoring the
	 * original or either copy is then a no-op. */
	fake_commit(e.fake, "c3", v3, 1);
	CHECK(sync_now(&e) > 0);
	a3 = active_id(&e, ".memory/a.md");
	CHECK(a3 > r1);
	r2 = restore(&e, r1, &restored);
	CHECK(restored && r2 > a3);
	before = memory_dump(e.db);
	CHECK_INT(restore(&e, a1, &restored), r2);
	CHECK(!restored);
	CHECK_INT(restore(&e, r1, &restored), r2);
	CHECK(!restored);
	after = memory_dump(e.db);
	CHECK_STR(after, before);
	free(after);
	free(before);

	/* Another version is a real restore, once. */
	r3 = restore(&e, a2, &restored);
	CHECK(restored && r3 > r2);
	CHECK_INT(restore(&e, a2, &restored), r3);
	CHECK(!restored);
	CHECK_INT(active_id(&e, ".memory/a.md"), r3);
	env_dispose(&e);
}

/*
 * A glob change supersedes every active entry of a path the globs no longer match, restored
 * ones included (a restore pins a version of a note, not a file outside the globs); a restored
 * entry of a path still matched stays, as it does through syncs that do not touch its file.
 */
static void test_rescan_supersedes_restores(void)
{
	struct env e;
	struct fake_file v1[] = { { ".memory/a.md", "# A\nfirst about kiwi\n" },
				  { ".memory/b.md", "# B\nfirst about fig\n" } };
	struct fake_file v2[] = { { ".memory/a.md", "# A\nsecond about mango\n" },
				  { ".memory/b.md", "# B\nsecond about lime\n" } };
	struct ps_memory_entry *old = NULL;
	int64_t a1, b1, a2, ra, rb, s3;
	bool restored;

	env_init(&e);
	fake_commit(e.fake, "c1", v1, 2);
	CHECK(sync_now(&e) > 0);
	a1 = active_id(&e, ".memory/a.md");
	b1 = active_id(&e, ".memory/b.md");
	fake_commit(e.fake, "c2", v2, 2);
	CHECK(sync_now(&e) > 0);
	a2 = active_id(&e, ".memory/a.md");
	ra = restore(&e, a1, &restored);
	CHECK(restored);
	rb = restore(&e, b1, &restored);
	CHECK(restored);

	set_globs(&e, ".memory/b.md", NULL);
	s3 = sync_now(&e);
	CHECK(s3 > 0);
	CHECK_INT(active_id(&e, ".memory/a.md"), 0);
	CHECK_OK(ps_store_memory_get(e.store, ra, &old));
	CHECK(old && old->status == PS_MEMORY_SUPERSEDED);
	CHECK_INT(old ? old->superseded_by_sync : -1, s3);
	ps_memory_entry_free(old);
	CHECK_INT(active_id(&e, ".memory/b.md"), rb);
	CHECK_IDS(&e, e.project_id, "kiwi", false, "");
	CHECK_INT(rescan_pending(&e), 0);

	/* Matched again: the file's current content comes back as a new import. */
	set_globs(&e, ".memory/*.md", NULL);
	CHECK(sync_now(&e) > 0);
	{
		struct ps_memory_entry x = { 0 };
		CHECK(active_of(&e, ".memory/a.md", &x));
		CHECK(x.id > ra && x.id != a2);
		CHECK_STR(x.content, "# A\nsecond about mango\n");
		ps_memory_entry_dispose(&x);
	}
	CHECK_INT(active_id(&e, ".memory/b.md"), rb);
	env_dispose(&e);
}

PS_TESTS(
	PS_TEST(test_front_matter_title_and_tags),
	PS_TEST(test_front_matter_multiline),
	PS_TEST(test_front_matter_tolerant),
	PS_TEST(test_glob),
	PS_TEST(test_query_sanitising),
	PS_TEST(test_lifecycle),
	PS_TEST(test_failed_sync_leaves_memory),
	PS_TEST(test_staged_invisible_then_discarded),
	PS_TEST(test_search_isolation_and_ranking),
	PS_TEST(test_prefix_search),
	PS_TEST(test_edit_delete_notes),
	PS_TEST(test_custom_globs),
	PS_TEST(test_glob_change_rescans),
	PS_TEST(test_restore_idempotent),
	PS_TEST(test_rescan_supersedes_restores),
)
