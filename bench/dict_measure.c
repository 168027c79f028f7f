/*
 * Measures whether a zstd dictionary would pay for the store's per-blob frames (issue 14's
 * question): trains a dictionary (ZDICT_trainFromBuffer) on one set of blobs, then compresses
 * each blob of another set alone at the store's level, without and with the dictionary, and
 * applies the store's rule to both (raw below PS_BLOBCODEC_MIN_SIZE or when zstd saves less
 * than 1/16; blobcodec.c). Frames carry the content size and a checksum, as the store's do; the
 * dictionary's id is left out (a store would know its dictionary from the row).
 *
 * Arguments: [LEVEL [DICT_BYTES ...]] (default 3 and 112640, zstd --train's default size).
 * Input on stdin, repeated: "T <len>\n" or "A <len>\n", then len bytes: T a training sample, A a
 * blob to measure. Output: one JSON object on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>

#include "store/blobcodec.h"

struct buf {
	char *p;
	size_t len, cap;
};

static void append(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			exit(1);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* What the store keeps for content compressed to n bytes (blobcodec.c's rule). */
static size_t kept(size_t len, size_t n)
{
	if (len < PS_BLOBCODEC_MIN_SIZE || n > len - len / 16)
		return len;
	return n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t frame(ZSTD_CCtx *cctx, const ZSTD_CDict *dict, const char *data, size_t len,
		    void *out, size_t cap)
{
	size_t n;
	if (ZSTD_isError(ZSTD_CCtx_refCDict(cctx, dict)))
		exit(1);
	n = ZSTD_compress2(cctx, out, cap, data, len);
	if (ZSTD_isError(n)) {
		fprintf(stderr, "dict_measure: %s\n", ZSTD_getErrorName(n));
		exit(1);
	}
	return n;
}

int main(int argc, char **argv)
{
	int level = argc > 1 ? atoi(argv[1]) : 3;
	size_t dict_sizes[16] = {112640}, ndicts = 1;
	struct buf train = {0}, apply = {0};
	size_t *train_sizes = NULL, *apply_sizes = NULL, ntrain = 0, napply = 0, cap_t = 0, cap_a = 0;
	size_t raw_train = 0, raw_apply = 0, plain = 0;
	char kind;
	size_t len;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	char *out;
	size_t outcap = 0;

	if (argc > 2) {
		ndicts = 0;
		for (int i = 2; i < argc && ndicts < 16; i++)
			dict_sizes[ndicts++] = strtoul(argv[i], NULL, 10);
	}
	if (!cctx || ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_dictIDFlag, 0)))
		return 1;

	while (scanf(" %c %zu", &kind, &len) == 2) {
		char *data;
		if (getchar() != '\n' || (kind != 'T' && kind != 'A'))
			return 1;
		data = malloc(len + 1);
		if (!data || fread(data, 1, len, stdin) != len)
			return 1;
		if (kind == 'T') {
			if (ntrain == cap_t) {
				cap_t = cap_t ? cap_t * 2 : 1024;
				train_sizes = realloc(train_sizes, cap_t * sizeof(*train_sizes));
			}
			train_sizes[ntrain++] = len;
			append(&train, data, len);
			raw_train += len;
		} else {
			if (napply == cap_a) {
				cap_a = cap_a ? cap_a * 2 : 1024;
				apply_sizes = realloc(apply_sizes, cap_a * sizeof(*apply_sizes));
			}
			apply_sizes[napply++] = len;
			append(&apply, data, len);
			raw_apply += len;
			if (ZSTD_compressBound(len) > outcap)
				outcap = ZSTD_compressBound(len);
		}
		free(data);
	}
	out = malloc(outcap ? outcap : 1);
	for (size_t i = 0, off = 0; i < napply; off += apply_sizes[i++])
		plain += kept(apply_sizes[i],
			      frame(cctx, NULL, apply.p + off, apply_sizes[i], out, outcap));
	printf("{\"level\": %d, \"train_blobs\": %zu, \"train_raw\": %zu, \"blobs\": %zu, "
	       "\"raw\": %zu, \"plain\": %zu, \"dicts\": [", level, ntrain, raw_train, napply,
	       raw_apply, plain);
	for (size_t d = 0; d < ndicts; d++) {
		void *dict = malloc(dict_sizes[d]);
		double t = now_s();
		size_t dlen = ZDICT_trainFromBuffer(dict, dict_sizes[d], train.p, train_sizes,
						    (unsigned)ntrain);
		double train_s = now_s() - t, comp_s;
		size_t with = 0, helped = 0;
		ZSTD_CDict *cdict;
		if (ZDICT_isError(dlen)) {
			fprintf(stderr, "dict_measure: training: %s\n", ZDICT_getErrorName(dlen));
			return 1;
		}
		cdict = ZSTD_createCDict(dict, dlen, level);
		t = now_s();
		for (size_t i = 0, off = 0; i < napply; off += apply_sizes[i++]) {
			size_t a = kept(apply_sizes[i], frame(cctx, NULL, apply.p + off,
							      apply_sizes[i], out, outcap));
			size_t b = kept(apply_sizes[i], frame(cctx, cdict, apply.p + off,
							      apply_sizes[i], out, outcap));
			with += b;
			helped += b < a;
		}
		comp_s = now_s() - t;
		printf("%s{\"dict_bytes\": %zu, \"with_dict\": %zu, \"blobs_smaller\": %zu, "
		       "\"train_s\": %.2f, \"compress_both_s\": %.2f}", d ? ", " : "", dlen, with,
		       helped, train_s, comp_s);
		ZSTD_freeCDict(cdict);
		free(dict);
	}
	printf("]}\n");
	free(out);
	free(train.p);
	free(apply.p);
	free(train_sizes);
	free(apply_sizes);
	ZSTD_freeCCtx(cctx);
	return 0;
}
