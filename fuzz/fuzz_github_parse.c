/*
 * The pure parsers of GitHub's answers (source/github.h): trees, compares (and the changes a
 * compare maps to against a head tree), the Link header, the rate-limit headers and the path
 * escaper. The first byte picks the parser, the rest is its input. fuzz_github_source drives
 * the same code through the real HTTP layer; this target reaches it a thousand times faster.
 *
 * Properties checked beyond "no crash": a parsed tree holds only the paths, types and SHAs the
 * header promises; compare changes come out sorted by path; the next link is a piece of the
 * header; an escaped segment holds only unreserved bytes and %XX.
 */
#include <ctype.h>

#include "model/diff.h"
#include "model/model.h"
#include "fuzz.h"
#include "source/github.h"
#include "util/error.h"

static bool sha_ok(const char *s)
{
	if (strlen(s) != 40)
		return false;
	for (size_t i = 0; i < 40; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* What the tree parser promises of a path, stated independently of its code. */
static bool tree_path_ok(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (const char *c = p;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!slash)
			return true;
		c = slash + 1;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_tree(const struct ps_github_tree *t)
{
	char **paths = calloc(t->n + 1, sizeof(*paths));

	FUZZ_ASSERT(sha_ok(t->sha));
	/* A snapshot holds each path once: a listing that names one twice is not a tree. */
	for (size_t i = 0; i < t->n; i++)
		paths[i] = t->v[i].path;
	qsort(paths, t->n, sizeof(*paths), cmp_str);
	for (size_t i = 1; i < t->n; i++)
		FUZZ_ASSERT(strcmp(paths[i - 1], paths[i]) != 0);
	free(paths);
	for (size_t i = 0; i < t->n; i++) {
		const struct ps_github_tree_entry *e = &t->v[i];
		FUZZ_ASSERT(tree_path_ok(e->path));
		FUZZ_ASSERT(e->type == 'b' || e->type == 't' || e->type == 'c');
		FUZZ_ASSERT(sha_ok(e->sha));
		FUZZ_ASSERT(e->type == 'b' ? e->size >= 0 : e->size == -1);
	}
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct ps_file *)a)->path, ((const struct ps_file *)b)->path);
}

static void compare(const char *json, size_t len, const char *tree_json, size_t tree_len)
{
	struct ps_github_compare c = {0};
	struct ps_github_tree t = {0};
	struct ps_file *head = NULL;
	struct ps_change *ch = NULL;
	size_t nhead = 0, n = 0;

	if (ps_github_compare_parse(&c, json, len, "compare") < 0)
		return;
	for (size_t i = 0; i < c.nfiles; i++)
		FUZZ_ASSERT(c.files[i].filename && tree_path_ok(c.files[i].filename));
	if (ps_github_compare_usable(&c) && tree_json &&
	    ps_github_tree_parse(&t, tree_json, tree_len, "tree") == 0) {
		head = calloc(t.n + 1, sizeof(*head));
		for (size_t i = 0; i < t.n; i++) {
			if (t.v[i].type == 't')
				continue;
			head[nhead].path = t.v[i].path;
			head[nhead].mode = t.v[i].mode;
			memcpy(head[nhead].sha, t.v[i].sha, PS_SHA_HEX);
			head[nhead].size = t.v[i].size;
			nhead++;
		}
		qsort(head, nhead, sizeof(*head), cmp_file);
		if (ps_github_compare_changes(&c, head, nhead, &ch, &n) == 0) {
			/* One change per path: the pipeline applies them to the snapshot by path. */
			for (size_t i = 1; i < n; i++)
				FUZZ_ASSERT(strcmp(ch[i - 1].path, ch[i].path) < 0);
			ps_changes_free(ch, n);
		}
		free(head);
		ps_github_tree_dispose(&t);
	}
	ps_github_compare_dispose(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* A copy of exactly the payload, so reads past its end are caught. */
	size_t len = size - 1;
	char *p = malloc(len ? len : 1), *s;
	memcpy(p, data + 1, len);

	switch (data[0] % 5) {
	case 0: {
		struct ps_github_tree t = {0};
		if (ps_github_tree_parse(&t, p, len, "tree") == 0) {
			check_tree(&t);
			ps_github_tree_dispose(&t);
		}
		break;
	}
	case 1: {
		/* "COMPARE\0TREE": the tree is the head the compare's changes are mapped onto. */
		char *nul = memchr(p, 0, len);
		if (nul)
			compare(p, (size_t)(nul - p), nul + 1, len - (size_t)(nul + 1 - p));
		else
			compare(p, len, NULL, 0);
		break;
	}
	case 2: {
		s = fuzz_cstr(data + 1, len);
		char *next = ps_github_link_next(s);
		if (next) {
			FUZZ_ASSERT(strstr(s, next) != NULL);
			free(next);
		}
		free(s);
		break;
	}
	case 3: {
		struct ps_github_rate rl;
		ps_github_rate_init(&rl);
		for (size_t i = 0; i < len;) {
			const char *nl = memchr(p + i, '\n', len - i);
			size_t l = nl ? (size_t)(nl - (p + i)) + 1 : len - i;
			(void)ps_github_rate_header(&rl, p + i, l);
			i += l;
		}
		break;
	}
	case 4: {
		s = fuzz_cstr(data + 1, len);
		char *e = ps_github_escape(s);
		size_t plain = 0, escaped = 0;
		for (const char *c = s; *c; c++) {
			if (isalnum((unsigned char)*c) && (unsigned char)*c < 0x80)
				plain++;
			else if (strchr("-._~", *c))
				plain++;
			else
				escaped++;
		}
		FUZZ_ASSERT(strlen(e) == plain + 3 * escaped);
		for (const char *c = e; *c; c++)
			FUZZ_ASSERT(isalnum((unsigned char)*c) || strchr("-._~%", *c));
		free(e);
		free(s);
		break;
	}
	}
	free(p);
	ps_error_clear();
	return 0;
}
