/*
 * Measures the blob codec on content fed by bench/codec_measure.py: for each zstd level, what
 * the store would keep (raw below the size floor or when zstd does not pay) and how long
 * compressing and decompressing take; and for versions that have a previous version of their
 * path, what a delta against it (zstd with the previous version as a prefix) would keep.
 *
 * Levels: the arguments, else 1 3 6 9 12 19. Input on stdin, repeated: "<base_len> <len>\n", then base_len bytes of the previous version
 * (0: none), then len bytes of the content. Output: one JSON object on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/blobcodec.h"
#include "util/util.h"

static int levels[16] = {1, 3, 6, 9, 12, 19};
static size_t NLEVELS = 6;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What the store keeps for content compressed to n bytes (blobcodec.c's rule). */
static size_t kept(size_t len, size_t n)
{
	if (len < PS_BLOBCODEC_MIN_SIZE || n > len - len / 16)
		return len;
	return n;
}

int main(int argc, char **argv)
{
	struct ps_blobcodec *c;
	size_t blobs = 0, with_base = 0, raw = 0, raw_with_base = 0;
	size_t plain[16] = {0}, plain_with_base[16] = {0}, delta[16] = {0}, best[16] = {0};
	double ctime[16] = {0}, dtime[16] = {0}, deltatime[16] = {0};
	size_t base_len, len;

	if (argc > 1) {
		NLEVELS = 0;
		for (int i = 1; i < argc && NLEVELS < 16; i++)
			levels[NLEVELS++] = atoi(argv[i]);
	}

	if (ps_blobcodec_new(&c) < 0)
		return 1;
	while (scanf("%zu %zu", &base_len, &len) == 2) {
		char *base, *data;
		if (getchar() != '\n')
			return 1;
		base = malloc(base_len + 1);
		data = malloc(len + 1);
		if (fread(base, 1, base_len, stdin) != base_len || fread(data, 1, len, stdin) != len)
			return 1;
		blobs++;
		raw += len;
		if (base_len) {
			with_base++;
			raw_with_base += len;
		}
		for (size_t l = 0; l < NLEVELS; l++) {
			void *out, *back;
			size_t n, p;
			double t = now_s();
			if (ps_blobcodec_compress(c, levels[l], NULL, 0, data, len, &out, &n) < 0)
				return 1;
			ctime[l] += now_s() - t;
			t = now_s();
			if (ps_blobcodec_decompress(c, "x", NULL, 0, out, n, len, &back) < 0 ||
			    memcmp(back, data, len) != 0)
				return 1;
			dtime[l] += now_s() - t;
			free(back);
			free(out);
			p = kept(len, n);
			plain[l] += p;
			if (!base_len) {
				best[l] += p;
				continue;
			}
			plain_with_base[l] += p;
			t = now_s();
			if (ps_blobcodec_compress(c, levels[l], base, base_len, data, len, &out, &n) < 0)
				return 1;
			deltatime[l] += now_s() - t;
			if (ps_blobcodec_decompress(c, "x", base, base_len, out, n, len, &back) < 0 ||
			    memcmp(back, data, len) != 0)
				return 1;
			free(back);
			free(out);
			delta[l] += n;
			best[l] += n < p ? n : p;
		}
		free(base);
		free(data);
	}
	printf("{\"blobs\": %zu, \"raw\": %zu, \"with_base\": %zu, \"raw_with_base\": %zu, "
	       "\"levels\": [", blobs, raw, with_base, raw_with_base);
	for (size_t l = 0; l < NLEVELS; l++)
		printf("%s{\"level\": %d, \"stored\": %zu, \"compress_s\": %.3f, \"decompress_s\": %.3f, "
		       "\"plain_with_base\": %zu, \"delta_with_base\": %zu, \"delta_s\": %.3f, "
		       "\"stored_with_deltas\": %zu}", l ? ", " : "", levels[l], plain[l], ctime[l],
		       dtime[l], plain_with_base[l], delta[l], deltatime[l], best[l]);
	printf("]}\n");
	ps_blobcodec_free(c);
	return 0;
}
