/*
 * Code search's index query (core/grep.c ps_grep_query): the pattern comes from any user of the
 * CLI or the API, and the analysis is projsync's own reading of PCRE2's syntax. Its promise is
 * that it only ever leaves requirements out: when grep's own matcher finds the pattern in a
 * text, the query evaluated on that text's trigrams (store/codeindex.c, what every backend
 * runs) admits it; otherwise a search silently misses files. Properties: that, no crash, and
 * bounded time. Input: one flags byte (bit 0 a regular expression, bit 1 ignore case), the
 * pattern up to the first newline, then the text of one file.
 */
#include "core/grep.h"
#include "fuzz.h"
#include "store/codeindex.h"
#include "util/error.h"

struct doc {
	uint32_t *codes; /* sorted */
	size_t n;
};

static int cmp_code(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The one document, id 0, holds `code` or not. */
static int lookup(void *ctx, uint32_t code, uint64_t *bits)
{
	const struct doc *d = ctx;

	if (bsearch(&code, d->codes, d->n, sizeof(code), cmp_code))
		bits[0] |= 1;
	return 0;
}

static int count(void *ud, const struct ps_grep_match *m)
{
	(void)m;
	++*(int *)ud;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	const uint8_t *nl = memchr(data + 1, '\n', size - 1);
	size_t plen = nl ? (size_t)(nl - data - 1) : size - 1;
	if (plen == 0 || memchr(data + 1, 0, plen))
		return 0;
	char *pattern = fuzz_cstr(data + 1, plen);
	const char *text = nl ? (const char *)nl + 1 : "";
	size_t tlen = nl ? size - plen - 2 : 0;
	struct ps_grep_opts o = { .pattern = pattern, .regex = data[0] & 1,
				  .ignore_case = (data[0] & 2) != 0, .timeout_ms = 2000 };
	struct ps_code_query *q = NULL;
	int matches = 0, rc;

	ps_grep_query(pattern, o.regex, &q);
	rc = ps_grep_content(&o, "f", text, tlen, count, &matches);
	ps_error_clear();
	/* A binary file is never narrowed by the index (code_blobs.binary): no promise to check. */
	if (rc == 0 && matches > 0 && q && !ps_grep_is_binary(text, tlen)) {
		struct ps_tri_doc td = { 0 };
		struct doc d;
		uint64_t *bits = NULL;

		ps_tri_doc_extract(&td, text, tlen);
		d.codes = td.codes;
		d.n = td.n;
		qsort(d.codes, d.n, sizeof(*d.codes), cmp_code);
		FUZZ_ASSERT(ps_tri_eval(q, 1, lookup, &d, &bits) == 0);
		/* The text matches: the index must keep it a candidate. */
		FUZZ_ASSERT(bits[0] & 1);
		free(bits);
		ps_tri_doc_dispose(&td);
	}
	ps_code_query_free(q);
	free(pattern);
	return 0;
}
