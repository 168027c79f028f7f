/*
 * store/codeindex.c: projsync's own trigram index format. A document's trigrams against a
 * plain reference implementation of the rule (random bytes, folding, the two non-ASCII letters),
 * and posting lists written as rows and read back exactly (row boundaries, long lists, large
 * ids, malformed rows, rows stored raw and compressed).
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "harness.h"
#include "store/codeindex.h"
#include "util/error.h"
#include "util/util.h"

/* The rule, written plainly: fold, split at any other byte, every window of 3. */
static size_t reference(const unsigned char *p, size_t len, uint32_t *out)
{
	unsigned char *sym = malloc(len + 1);
	size_t n = 0, k = 0;

	for (size_t i = 0; i < len;) {
		if (i + 2 < len && p[i] == 0xe2 && p[i + 1] == 0x84 && p[i + 2] == 0xaa) {
			sym[k++] = 'k';
			i += 3;
		} else if (i + 1 < len && p[i] == 0xc5 && p[i + 1] == 0xbf) {
			sym[k++] = 's';
			i += 2;
		} else if (p[i] == '\t' || (p[i] >= 0x20 && p[i] < 0x7f)) {
			sym[k++] = (unsigned char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
			i++;
		} else {
			sym[k++] = 0;
			i++;
		}
	}
	for (size_t i = 0; i + 2 < k; i++) {
		if (!sym[i] || !sym[i + 1] || !sym[i + 2])
			continue;
		uint32_t c = (uint32_t)sym[i] << 14 | (uint32_t)sym[i + 1] << 7 | sym[i + 2];
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++)
			dup = out[j] == c;
		if (!dup)
			out[n++] = c;
	}
	free(sym);
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void test_extract(void)
{
	static const char *pieces[] = { "a", "B", "\t", " ", "\n", "\0", "\xff", "\xe2\x84\xaa",
					"\xc5\xbf", "\xe2\x84", "\xc5", "~", "Z", "\x7f", "z" };
	struct ps_tri_doc d = { 0 };
	unsigned seed = 13;
	uint32_t want[512];

	/* Folding: the same trigram whatever the case, and the two letters PCRE2 folds. */
	ps_tri_doc_extract(&d, "HeLlo hello", 11);
	CHECK_INT(d.n, 6); /* hel ell llo "lo " "o h" " he", then hel ell llo again */
	ps_tri_doc_extract(&d, "\xe2\x84\xaa" "EY", 5);
	CHECK_INT(d.n, 1);
	CHECK_INT(d.codes[0], ps_tri_of("key"));
	ps_tri_doc_extract(&d, "ab\0cd\x01" "ef", 8);
	CHECK_INT(d.n, 0);
	/* A large document: its list is bounded by the trigrams there are, not by its length. */
	{
		size_t big = (size_t)24 << 20;
		unsigned char *text = ps_malloc(big);

		for (size_t i = 0; i < big; i++)
			text[i] = (unsigned char)("abcdefghij"[i % 10]);
		ps_tri_doc_extract(&d, text, big);
		CHECK_INT(d.n, 10);
		CHECK(d.cap <= PS_TRI_CODES);
		free(text);
	}
	CHECK_INT(ps_tri_of("a\nb"), -1);
	for (int round = 0; round < 3000; round++) {
		unsigned char buf[200];
		size_t len = 0, nwant;

		while (len < sizeof(buf) - 4 && rand_r(&seed) % 60) {
			const char *p = pieces[rand_r(&seed) % (sizeof(pieces) / sizeof(*pieces))];
			size_t l = *p ? strlen(p) : 1;
			memcpy(buf + len, p, l);
			len += l;
		}
		nwant = reference(buf, len, want);
		ps_tri_doc_extract(&d, buf, len);
		CHECK_INT(d.n, nwant);
		if (d.n != nwant)
			break;
		qsort(want, nwant, sizeof(*want), cmp_u32);
		qsort(d.codes, d.n, sizeof(*d.codes), cmp_u32);
		CHECK(memcmp(want, d.codes, nwant * sizeof(*want)) == 0);
	}
	ps_tri_doc_dispose(&d);
}

/* Rows as written: their first trigram and bytes. */
struct rows {
	uint32_t first[4096];
	unsigned char *data[4096];
	size_t len[4096], n;
};

static int keep_row(void *ctx, uint32_t first, const unsigned char *data, size_t len)
{
	struct rows *r = ctx;

	if (r->n == 4096)
		return -1;
	r->first[r->n] = first;
	r->data[r->n] = ps_malloc(len);
	memcpy(r->data[r->n], data, len);
	r->len[r->n++] = len;
	return 0;
}

static void free_rows(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->data[i]);
	r->n = 0;
}

/* Where the tests decompress rows into, as a backend's cursor does. */
static struct ps_tri_zbuf tz;

/* The list of trigram `code` as the rows hold it (the row with the largest first <= code). */
static size_t lookup(const struct rows *r, uint32_t code, uint32_t *ids)
{
	size_t at = SIZE_MAX;
	struct ps_tri_row row;

	for (size_t i = 0; i < r->n; i++)
		if (r->first[i] <= code)
			at = i;
	if (at == SIZE_MAX || !ps_tri_row_open(&row, r->first[at], r->data[at], r->len[at], &tz))
		return 0;
	while (ps_tri_row_next(&row))
		if (row.code == code)
			return ps_tri_list_decode(&row, ids);
	return 0;
}

/* List i of the round trip: dense and sparse runs, one very long list, ids near 2^32 / 14. */
static size_t random_list(int i, unsigned *seed, uint32_t *ids)
{
	size_t n = i == 150 ? 100000 : 1 + rand_r(seed) % 700;
	uint32_t id = i % 7 == 0 ? 300000000u + (uint32_t)i : 1 + (uint32_t)(rand_r(seed) % 3);

	for (size_t k = 0; k < n; k++) {
		ids[k] = id;
		id += 1 + (uint32_t)(rand_r(seed) % (k % 5 ? 3 : 5000));
	}
	return n;
}

static void test_rows_round_trip(void)
{
	static struct rows r;
	struct ps_tri_writer w;
	static uint32_t ids[200000], got[200000];
	unsigned seed = 7;
	uint32_t codes[300];
	size_t compressed = 0;

	/* Trigrams with lists of 1 to 100,000 ids, some above 2^28 (5-byte varints). */
	ps_tri_writer_init(&w, keep_row, &r);
	for (int i = 0; i < 300; i++) {
		codes[i] = (uint32_t)(i * 6983 + 5) % PS_TRI_CODES;
		if (i && codes[i] <= codes[i - 1])
			codes[i] = codes[i - 1] + 1;
	}
	for (int i = 0; i < 300; i++) {
		size_t n = random_list(i, &seed, ids);
		CHECK_OK(ps_tri_writer_add(&w, codes[i], ids, n));
	}
	CHECK_OK(ps_tri_writer_finish(&w));
	CHECK(r.n > 5); /* several rows */
	fprintf(stderr, "%zu rows\n", r.n);
	for (size_t i = 0; i < r.n; i++) {
		struct ps_tri_row row;
		const unsigned char *raw;
		size_t entries = 0, raw_len;

		CHECK(ps_tri_row_open(&row, r.first[i], r.data[i], r.len[i], &tz));
		while (ps_tri_row_next(&row))
			entries++;
		CHECK(entries >= 1);
		/* A row closes once it reaches the target: only the last row is small. */
		CHECK(ps_tri_row_unpack(&tz, r.data[i], r.len[i], &raw, &raw_len));
		CHECK(i == r.n - 1 || raw_len >= PS_TRI_ROW_BYTES);
		/* Compressed when that is smaller (these lists' varints and bitmaps are), with the
		 * leading 0 a raw row never has; stored raw otherwise. */
		CHECK(ps_tri_row_compressed(r.data[i], r.len[i]) == (raw_len > r.len[i]));
		compressed += ps_tri_row_compressed(r.data[i], r.len[i]);
		if (i)
			CHECK(r.first[i] > r.first[i - 1]);
	}
	CHECK(compressed >= r.n - 1);
	/* Every list reads back exactly (the same random sequence again). */
	seed = 7;
	for (int i = 0; i < 300; i++) {
		size_t n = random_list(i, &seed, ids);
		CHECK_INT(lookup(&r, codes[i], got), n);
		CHECK(memcmp(ids, got, n * sizeof(*ids)) == 0);
		/* A trigram between two written ones has no list. */
		if (i && codes[i] > codes[i - 1] + 1)
			CHECK_INT(lookup(&r, codes[i] - 1, got), 0);
	}
	/* A damaged row is refused or ends early, never read past its end (ASan watches the
	 * copies, which are exactly as long as the cut). */
	for (size_t i = 0; i < r.n; i++) {
		for (size_t k = 0; k < 40; k++) {
			size_t cut = k < 20 ? k : (size_t)rand_r(&seed) % r.len[i];
			unsigned char *copy = ps_malloc(cut ? cut : 1);
			struct ps_tri_row row;

			memcpy(copy, r.data[i], cut);
			if (k % 3 == 2 && cut) /* a flipped byte too */
				copy[rand_r(&seed) % cut] ^= (unsigned char)(1 + rand_r(&seed) % 255);
			if (ps_tri_row_open(&row, r.first[i], copy, cut, &tz))
				while (ps_tri_row_next(&row))
					if (row.ndocs <= 200000)
						CHECK(ps_tri_list_decode(&row, got) <= row.ndocs);
			free(copy);
		}
	}
	free_rows(&r);
}

/* Every entry of a stored row (raw or compressed) as "code:id,id;..." (NULL if it is refused). */
static char *row_text(uint32_t first, const unsigned char *data, size_t len,
		      struct ps_tri_zbuf *z)
{
	struct ps_tri_row row;
	struct ps_buf b;
	static uint32_t ids[200000];

	if (!ps_tri_row_open(&row, first, data, len, z))
		return NULL;
	ps_buf_init(&b, SIZE_MAX);
	ps_buf_puts(&b, "");
	while (ps_tri_row_next(&row)) {
		size_t n = ps_tri_list_decode(&row, ids);

		ps_buf_printf(&b, "%u:", row.code);
		for (size_t k = 0; k < n; k++)
			ps_buf_printf(&b, "%u,", ids[k]);
		ps_buf_puts(&b, ";");
	}
	return ps_buf_take(&b, NULL);
}

/*
 * Rows stored compressed (schema 25) read exactly as their raw form, which rows written before
 * it are (and still read); a damaged, truncated, extended or oversized frame is refused as a
 * malformed raw row is, never read as other ids.
 */
static void test_rows_compressed(void)
{
	static struct rows r;
	static uint32_t ids[200000];
	struct ps_tri_writer w;
	unsigned seed = 11;
	size_t compressed = 0;

	ps_tri_writer_init(&w, keep_row, &r);
	for (int i = 0; i < 300; i++) {
		size_t n = random_list(i, &seed, ids);
		CHECK_OK(ps_tri_writer_add(&w, (uint32_t)i * 3 + 1, ids, n));
	}
	CHECK_OK(ps_tri_writer_finish(&w));
	/* A row of one id: a few bytes, which zstd's frame would only make larger. */
	{
		static struct rows one;

		ps_tri_writer_init(&w, keep_row, &one);
		CHECK_OK(ps_tri_writer_add(&w, 5000, (const uint32_t[]){ 7 }, 1));
		CHECK_OK(ps_tri_writer_finish(&w));
		CHECK_INT(one.n, 1);
		CHECK(!ps_tri_row_compressed(one.data[0], one.len[0]));
		free_rows(&one);
	}
	for (size_t i = 0; i < r.n; i++) {
		const unsigned char *raw;
		size_t raw_len;
		char *a, *b;
		unsigned char *copy;

		CHECK(ps_tri_row_unpack(&tz, r.data[i], r.len[i], &raw, &raw_len));
		copy = ps_malloc(raw_len);
		memcpy(copy, raw, raw_len);
		/* The raw form, as an older projsync stored it: the same entries. */
		a = row_text(r.first[i], r.data[i], r.len[i], &tz);
		b = row_text(r.first[i], copy, raw_len, NULL);
		CHECK(a && b && strcmp(a, b) == 0);
		free(b);
		free(copy);
		if (!ps_tri_row_compressed(r.data[i], r.len[i])) {
			free(a);
			continue;
		}
		compressed++;
		/* Without a buffer to decompress into, a compressed row is refused, not misread. */
		CHECK(row_text(r.first[i], r.data[i], r.len[i], NULL) == NULL);
		/* Every flipped byte, every cut, and a frame with bytes after it: refused (the frame's
		 * checksum, its declared size, exactly one frame). ASan watches the copies. */
		for (size_t k = 0; k < r.len[i]; k += 1 + k / 64) {
			copy = ps_malloc(r.len[i] + 4);
			memcpy(copy, r.data[i], r.len[i]);
			copy[k] ^= (unsigned char)(1 + rand_r(&seed) % 255);
			if (k > 0) {
				/* Refused, or (a byte zstd does not use, e.g. of a table it
				 * ends up not needing) exactly the row: the checksum passed. */
				char *t = row_text(r.first[i], copy, r.len[i], &tz);
				CHECK(t == NULL || strcmp(t, a) == 0);
				free(t);
			}
			else
				free(row_text(r.first[i], copy, r.len[i], &tz)); /* read raw, maybe */
			memcpy(copy, r.data[i], r.len[i]);
			CHECK(row_text(r.first[i], copy, k, &tz) == NULL);
			memcpy(copy + r.len[i], "\0\0\0\0", 4);
			CHECK(row_text(r.first[i], copy, r.len[i] + 4, &tz) == NULL);
			free(copy);
		}
		free(a);
	}
	CHECK(compressed >= r.n - 1);
	/* Compressed rows are closed by their size as stored (the writer's estimate from the
	 * row before): about PS_TRI_ROW_STORED each, not the ~6 KiB that 8 KiB of lists take. */
	{
		size_t sum = 0, count = 0;

		for (size_t i = 1; i + 1 < r.n; i++) {
			const unsigned char *raw;
			size_t raw_len;

			CHECK(ps_tri_row_unpack(&tz, r.data[i], r.len[i], &raw, &raw_len));
			if (raw_len > 2 * PS_TRI_ROW_BYTES + 1024)
				continue; /* one long list */
			sum += r.len[i];
			count++;
		}
		CHECK(count >= 5);
		CHECK(count && sum / count > PS_TRI_ROW_STORED * 9 / 10 &&
		      sum / count < PS_TRI_ROW_STORED * 11 / 10);
	}

	/* A frame declaring more than PS_TRI_ZROW_MAX is refused before anything is allocated
	 * for it; the writer stores such a row raw. */
	{
		size_t big = PS_TRI_ZROW_MAX + 1, cap = 1 + ZSTD_compressBound(big);
		unsigned char *src = ps_calloc(big, 1), *frame = ps_malloc(cap);
		const unsigned char *out;
		size_t n, out_len;

		src[0] = 1; /* ntri 1, as a row starts */
		frame[0] = 0;
		n = ZSTD_compress(frame + 1, cap - 1, src, big, 3);
		CHECK(!ZSTD_isError(n));
		CHECK(row_text(0, frame, 1 + n, &tz) == NULL);
		CHECK(tz.cap < big);
		CHECK_OK(ps_tri_row_pack(&tz, src, big, &out, &out_len));
		CHECK(out == src && out_len == big);
		/* A frame holding a compressed row (a leading 0 again): refused. */
		src[0] = 0;
		n = ZSTD_compress(frame + 1, cap - 1, src, 4096, 3);
		CHECK(!ZSTD_isError(n));
		CHECK(row_text(0, frame, 1 + n, &tz) == NULL);
		/* A frame without a content size: refused (the buffer is sized by it). */
		{
			ZSTD_CCtx *c = ZSTD_createCCtx();
			src[0] = 1;
			CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
			n = ZSTD_compress2(c, frame + 1, cap - 1, src, 4096);
			CHECK(!ZSTD_isError(n));
			CHECK(row_text(0, frame, 1 + n, &tz) == NULL);
			ZSTD_freeCCtx(c);
		}
		free(src);
		free(frame);
	}
	/* A raw row of ntri 0 (a lone 0 byte is the marker with no frame): malformed. */
	CHECK(row_text(0, (const unsigned char *)"\0\0", 2, &tz) == NULL);
	CHECK(row_text(0, (const unsigned char *)"\0", 1, &tz) == NULL);
	free_rows(&r);
	ps_tri_zbuf_dispose(&tz);
}

/* An accumulator: documents in id order, written sorted by trigram, each list in id order. */
static void test_accumulator(void)
{
	static struct rows r;
	struct ps_tri_acc a = { 0 };
	struct ps_tri_doc d = { 0 };
	struct ps_tri_writer w;
	static const char *docs[] = { "hello world", "WORLD peace", "", "\x01\x02", "worlds apart",
				      "hello" };
	uint32_t got[16];

	/* An empty document first: no trigram, nothing allocated yet. */
	ps_tri_doc_extract(&d, "", 0);
	CHECK_INT(d.n, 0);
	ps_tri_acc_add(&a, 9, d.codes, d.n);
	CHECK_INT(a.n, 0);
	for (uint32_t id = 0; id < 6; id++) {
		ps_tri_doc_extract(&d, docs[id], strlen(docs[id]));
		ps_tri_acc_add(&a, 10 + id, d.codes, d.n);
	}
	CHECK_INT(a.max_id, 15);
	CHECK_INT(a.docs, 4); /* "" and "\x01\x02" hold no trigram: no document of the segment */
	ps_tri_writer_init(&w, keep_row, &r);
	CHECK_OK(ps_tri_acc_write(&a, &w));
	CHECK_OK(ps_tri_writer_finish(&w));
	CHECK_INT(w.postings, 9 + 9 + 10 + 3);
	CHECK_INT(lookup(&r, (uint32_t)ps_tri_of("wor"), got), 3);
	CHECK(got[0] == 10 && got[1] == 11 && got[2] == 14);
	CHECK_INT(lookup(&r, (uint32_t)ps_tri_of("HEL"), got), 2);
	CHECK(got[0] == 10 && got[1] == 15);
	CHECK_INT(lookup(&r, (uint32_t)ps_tri_of("ace"), got), 1);
	CHECK_INT(lookup(&r, (uint32_t)ps_tri_of("zzz"), got), 0);
	ps_tri_acc_clear(&a);
	CHECK_INT(a.n, 0);
	CHECK_INT(a.docs, 0);
	free_rows(&r);
	ps_tri_acc_dispose(&a);
	ps_tri_doc_dispose(&d);
}

/* A merge's ids: the lists of overlapping segments, pruned ids among them. */
static void test_ids_keep(void)
{
	/* ids 100..107; 102 and 105 were pruned (no code_blobs row) */
	uint64_t live[1] = { 0xffu & ~((1u << 2) | (1u << 5)) };
	uint32_t in_order[] = { 100, 101, 102, 103 };
	uint32_t overlap[] = { 103, 104, 105, 106, 100, 103, 107, 99, 108 };
	uint32_t want[] = { 100, 103, 104, 106, 107 };

	CHECK_INT(ps_tri_ids_keep(in_order, 4, live, 100, 107), 3);
	CHECK_INT(in_order[0], 100);
	CHECK_INT(in_order[1], 101);
	CHECK_INT(in_order[2], 103);
	CHECK_INT(ps_tri_ids_keep(overlap, 9, live, 100, 107), 5);
	CHECK(memcmp(overlap, want, sizeof(want)) == 0);
	/* no live id at all (an empty range) */
	CHECK_INT(ps_tri_ids_keep(in_order, 3, NULL, 1, 0), 0);
}

/* A merged segment's documents: each id counted once across the lists of all its trigrams. */
static void test_ids_mark(void)
{
	uint64_t seen[3] = { 0 };
	uint32_t first[] = { 100, 103, 164, 228 };
	uint32_t second[] = { 103, 104, 228 };

	CHECK_INT(ps_tri_ids_mark(seen, 100, first, 4), 4);
	CHECK_INT(ps_tri_ids_mark(seen, 100, second, 3), 1);
	CHECK_INT(ps_tri_ids_mark(seen, 100, first, 4), 0);
	CHECK(seen[0] == ((1u << 0) | (1u << 3) | (1u << 4)) && seen[1] == 1 && seen[2] == 1);
}

PS_TESTS(PS_TEST(test_extract), PS_TEST(test_rows_round_trip), PS_TEST(test_rows_compressed),
	 PS_TEST(test_accumulator),
	 PS_TEST(test_ids_keep), PS_TEST(test_ids_mark))
