/*
 * core/grep.c: the index query a pattern yields, and its one safety rule: it may leave
 * requirements out, never demand something a matching line lacks. The rule is checked against
 * PCRE2 itself on random patterns and subjects, besides the exact queries of typical patterns.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/grep.h"
#include "harness.h"
#include "util/util.h"

static void show(struct ps_buf *b, const struct ps_code_query *q)
{
	if (q->op == PS_CODE_LITERAL) {
		ps_buf_printf(b, "'%s'", q->literal);
		return;
	}
	ps_buf_puts(b, q->op == PS_CODE_AND ? "AND(" : "OR(");
	for (size_t i = 0; i < q->nkids; i++) {
		if (i)
			ps_buf_puts(b, ",");
		show(b, q->kids[i]);
	}
	ps_buf_puts(b, ")");
}

/* The query as text, "-" for none (malloc'd). */
static char *query_text(const char *pattern, bool regex)
{
	struct ps_code_query *q;
	struct ps_buf b;

	ps_grep_query(pattern, regex, &q);
	ps_buf_init(&b, 1 << 16);
	if (q)
		show(&b, q);
	else
		ps_buf_puts(&b, "-");
	ps_code_query_free(q);
	return ps_buf_take(&b, NULL);
}

#define CHECK_QUERY(pattern, regex, want) do { char *_t = query_text(pattern, regex); \
	CHECK_STR(_t, want); free(_t); } while (0)

static void test_literal_queries(void)
{
	CHECK_QUERY("hello world", false, "'hello world'");
	CHECK_QUERY("ab", false, "-");
	CHECK_QUERY("caf\xc3\xa9 au lait", false, "AND('caf',' au lait')");
	CHECK_QUERY("a\"b\" OR NEAR(", false, "'a\"b\" OR NEAR('");
	/* Control bytes other than a tab end a literal: a binary blob's index document keeps
	 * only printable runs (store.h), so a literal across one would exclude the blob. */
	CHECK_QUERY("key\x01value\tx", false, "AND('key','value\tx')");
	CHECK_QUERY("ab\x7f" "cde", false, "'cde'");
}

static void test_regex_queries(void)
{
	CHECK_QUERY("fo+bar", true, "'obar'");
	CHECK_QUERY("ab?cde", true, "'cde'");
	CHECK_QUERY("(alpha|beta)_\\d+", true, "OR('alpha','beta')");
	CHECK_QUERY("foo|ba", true, "-");
	CHECK_QUERY("foo|bar", true, "OR('foo','bar')");
	CHECK_QUERY("(?i)hello", true, "'hello'");
	CHECK_QUERY("a\\.bcd", true, "'a.bcd'");
	CHECK_QUERY("[abc]def", true, "'def'");
	CHECK_QUERY("hel{2}o", true, "'hel'");
	CHECK_QUERY("\\Qa.b*c\\E", true, "'a.b*c'");
	CHECK_QUERY("abc(?=def)ghi", true, "AND('abc','ghi')");
	CHECK_QUERY("(abc)?def", true, "'def'");
	CHECK_QUERY("x(abc)+yz", true, "'abc'");
	CHECK_QUERY("static int [a-z_]+\\(", true, "'static int '");
	/* Syntax that changes how the rest reads, or that this analysis does not follow. */
	CHECK_QUERY("(?x)abc def", true, "-");
	CHECK_QUERY("\\x41BCD", true, "-");
	CHECK_QUERY("\\1abc", true, "-");
	CHECK_QUERY("abc)", true, "-");
	CHECK_QUERY("h.l.o", true, "-");
}

static void test_binary_rule(void)
{
	char buf[9000];

	memset(buf, 'a', sizeof(buf));
	CHECK(!ps_grep_is_binary(buf, sizeof(buf)));
	buf[7999] = '\0';
	CHECK(ps_grep_is_binary(buf, sizeof(buf)));
	buf[7999] = 'a';
	buf[8000] = '\0';
	CHECK(!ps_grep_is_binary(buf, sizeof(buf))); /* past git's probe: text */
}

/* Whether `s` satisfies `q` (literals compared without ASCII case, as the index does). */
static bool holds(const struct ps_code_query *q, const char *s)
{
	if (q->op == PS_CODE_LITERAL) {
		size_t n = strlen(q->literal);
		for (const char *p = s; strlen(p) >= n; p++)
			if (strncasecmp(p, q->literal, n) == 0)
				return true;
		return false;
	}
	for (size_t i = 0; i < q->nkids; i++) {
		bool h = holds(q->kids[i], s);
		if (q->op == PS_CODE_AND && !h)
			return false;
		if (q->op == PS_CODE_OR && h)
			return true;
	}
	return q->op == PS_CODE_AND;
}

/* Random patterns over a small syntax; every subject PCRE2 matches must satisfy the query. */
static void test_query_never_excludes_a_match(void)
{
	static const char *const atoms[] = { "a", "b", "c", "ab", "abc", "(", ")", "|", "?", "*",
					     "+", "{2}", "{0,1}", ".", "[ab]", "\\d", "\\.", "(?:",
					     "(?i)", "\\Q", "\\E", "^", "$", "bca", "(?=a)" };
	unsigned seed = 12345;
	int checked = 0;

	for (int t = 0; t < 20000; t++) {
		char pat[64] = "";
		struct ps_code_query *q;
		pcre2_code *code;
		pcre2_match_data *md;
		int err;
		PCRE2_SIZE off;
		int natoms = 1 + (int)(rand_r(&seed) % 8);

		for (int i = 0; i < natoms; i++)
			strcat(pat, atoms[rand_r(&seed) % (sizeof(atoms) / sizeof(*atoms))]);
		code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off,
				     NULL);
		if (!code)
			continue;
		ps_grep_query(pat, true, &q);
		md = pcre2_match_data_create(1, NULL);
		for (int k = 0; q && k < 200; k++) {
			char subj[16];
			int len = (int)(rand_r(&seed) % 12);
			for (int i = 0; i < len; i++)
				subj[i] = "abcabcA.1"[rand_r(&seed) % 9];
			subj[len] = '\0';
			if (pcre2_match(code, (PCRE2_SPTR)subj, (size_t)len, 0, 0, md, NULL) >= 0) {
				checked++;
				if (!holds(q, subj)) {
					fprintf(stderr, "pattern %s matches \"%s\" but its query "
						"excludes it\n", pat, subj);
					CHECK(false);
					k = 200;
				}
			}
		}
		pcre2_match_data_free(md);
		ps_code_query_free(q);
		pcre2_code_free(code);
	}
	fprintf(stderr, "%d matching subjects checked\n", checked);
	CHECK(checked > 1000); /* the test did look at matches */
}

PS_TESTS(PS_TEST(test_literal_queries), PS_TEST(test_regex_queries), PS_TEST(test_binary_rule),
	 PS_TEST(test_query_never_excludes_a_match))
