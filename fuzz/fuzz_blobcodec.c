/*
 * Blob content at rest (store/blobcodec.c): every read of a file decodes a row the store holds,
 * and a damaged page can put any bytes there. The promise (blobcodec.h): a damaged frame fails
 * naming the blob, never returns wrong bytes. Properties: rows of any bytes decode without a
 * crash or an over-read, and a success has exactly the declared size; content encoded plain
 * or as a delta against a base decodes back to itself; the same row with one byte changed
 * either fails with PS_ESTORE or still gives exactly the content. Input: a control byte
 * (encoding of the damaged row, where the split and the flip fall), then bytes used both as a
 * stored row and as base + content.
 */
#include "fuzz.h"
#include "store/blobcodec.h"
#include "util/error.h"

static struct ps_blobcodec *codec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (ps_blobcodec_new(&codec) < 0)
		abort();
	return 0;
}

/* Decodes row (enc, stored) of declared size raw_len, against base for a delta. */
static int decode(int enc, const void *base, size_t base_len, const void *stored, size_t len,
		  size_t raw_len, void **out)
{
	if (enc == PS_BLOB_DELTA)
		return ps_blobcodec_decode_delta(codec, "f00d", base, base_len, stored, len, raw_len,
						 out);
	return ps_blobcodec_decode(codec, "f00d", enc, stored, len, raw_len, out);
}

/* A row of any bytes. */
static void decode_any(uint8_t ctl, const uint8_t *data, size_t size)
{
	size_t raw_len = size ? (size_t)data[0] * 97 : 0;
	void *out = NULL;

	if (decode(ctl % 4, data, size / 2, data, size, raw_len, &out) == 0) {
		FUZZ_ASSERT(((const char *)out)[raw_len] == 0);
		free(out);
	} else {
		ps_error_clear();
	}
}

/* Content encoded, decoded back, and decoded again with one stored byte changed. */
static void round_trip(uint8_t ctl, const uint8_t *data, size_t size)
{
	size_t split = size ? (size_t)ctl * size / 256 : 0;
	const uint8_t *base = data, *content = data + split;
	size_t base_len = split, len = size - split;
	void *enc_out = NULL, *out = NULL;
	size_t enc_len = 0;
	int enc;

	FUZZ_ASSERT(ps_blobcodec_encode_delta(codec, base, base_len, content, len, &enc, &enc_out,
					      &enc_len) == 0);
	const uint8_t *stored = enc == PS_BLOB_RAW ? content : enc_out;
	size_t stored_len = enc == PS_BLOB_RAW ? len : enc_len;
	FUZZ_ASSERT(decode(enc, base, base_len, stored, stored_len, len, &out) == 0);
	FUZZ_ASSERT(memcmp(out, content, len) == 0);
	free(out);
	out = NULL;
	if (enc != PS_BLOB_RAW && stored_len) {
		uint8_t *bad = malloc(stored_len);
		size_t at = ((size_t)ctl * 131 + size) % stored_len;

		memcpy(bad, stored, stored_len);
		bad[at] ^= (uint8_t)(1u << (ctl % 8));
		if (decode(enc, base, base_len, bad, stored_len, len, &out) == 0) {
			FUZZ_ASSERT(memcmp(out, content, len) == 0);
			free(out);
		} else {
			FUZZ_ASSERT(ps_error_code() == PS_ESTORE);
			ps_error_clear();
		}
		free(bad);
	}
	free(enc_out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	decode_any(data[0], data + 1, size - 1);
	round_trip(data[0], data + 1, size - 1);
	return 0;
}
