/*
 * How blob content is kept at rest, the same bytes for every backend (docs/architecture.md,
 * "Blob encoding"). A stored blob is a pair (encoding, bytes) beside its git blob id and its
 * uncompressed size:
 *
 *   PS_BLOB_RAW    (0)  the content itself;
 *   PS_BLOB_ZSTD   (1)  one standard zstd frame (RFC 8878) with the content size and a content
 *                       checksum in its header, decodable by any zstd;
 *   PS_BLOB_DELTA  (2)  one standard zstd frame compressed against another blob's content
 *                       used as a prefix (ZSTD_CCtx_refPrefix): the row names that base blob.
 *                       Decodable by `zstd -d --patch-from=BASE`. The store (store.c) resolves
 *                       the base, which may be a delta itself, up to PS_BLOB_CHAIN_MAX deep.
 *   PS_BLOB_PACKED (3)  no bytes of its own: the content is `size` bytes at `pack_offset` of
 *                       the decoded content of a pack (table blob_packs, schema 27): one zstd
 *                       frame, as PS_BLOB_ZSTD, holding several small blobs one after another,
 *                       so each compresses with its neighbours as context (docs/performance.md,
 *                       "Packs"). A member read back is hashed against its id: a damaged row
 *                       or pack fails naming the blob, never returns another blob's bytes.
 *
 * The encoder picks raw for small content and for content zstd does not shrink enough, so a
 * reader never pays a decompression for nothing. Decoding checks the frame's declared size and
 * checksum against the stored size: a damaged frame fails naming the blob, never returns wrong
 * bytes. The codec holds zstd contexts, so one handle per thread (the store keeps one per store
 * handle, which is per thread already).
 */
#ifndef PS_STORE_BLOBCODEC_H
#define PS_STORE_BLOBCODEC_H

#include <stddef.h>
#include <stdint.h>

enum ps_blob_encoding {
	PS_BLOB_RAW = 0,
	PS_BLOB_ZSTD = 1,
	PS_BLOB_DELTA = 2,
	PS_BLOB_PACKED = 3,
};

/* Content shorter than this is stored raw: a zstd frame's own header and checksum (~13 bytes)
 * eat what it could save, and every read would pay a decompression. */
#define PS_BLOBCODEC_MIN_SIZE 64
/* zstd level, chosen by measurement (docs/performance.md "Choosing the zstd level"). */
#define PS_BLOBCODEC_LEVEL 3
/* A new delta is written only against a base whose own chain holds fewer than this many deltas,
 * so reading any blob costs at most PS_BLOB_CHAIN_MAX + 1 decompressions (docs/performance.md,
 * "Deltas": the bound's cost and gain were measured). */
#define PS_BLOB_CHAIN_MAX 8
/* Blobs of 1 to PS_BLOB_PACK_MEMBER_MAX bytes that are not stored as deltas go into packs
 * (ps_store_blob_put_many); a pack is closed once its content reaches PS_BLOB_PACK_TARGET, so
 * reading a member decompresses at most PS_BLOB_PACK_TARGET + PS_BLOB_PACK_MEMBER_MAX bytes.
 * Larger blobs compress well alone. Both chosen by measurement (docs/performance.md, "Packs"). */
#define PS_BLOB_PACK_MEMBER_MAX (16u << 10)
#define PS_BLOB_PACK_TARGET (64u << 10)
/* What a reader follows before it calls a chain corrupt (a cycle, or a store written with a
 * larger bound by some later projsync): well above the write bound, still bounded. */
#define PS_BLOB_CHAIN_READ_MAX 64

struct ps_blobcodec;

/* A codec handle (owned by the caller, free with ps_blobcodec_free, NULL-safe). */
int ps_blobcodec_new(struct ps_blobcodec **out);
void ps_blobcodec_free(struct ps_blobcodec *c);

/*
 * Encodes `len` bytes of content for storage. Sets *enc; for PS_BLOB_ZSTD *out is a new buffer
 * (caller frees) of *out_len bytes; for PS_BLOB_RAW *out is NULL and the caller stores `data`
 * itself. PS_ENOMEM / PS_EFAIL when zstd fails (the caller may then store raw).
 */
int ps_blobcodec_encode(struct ps_blobcodec *c, const void *data, size_t len, int *enc,
			void **out, size_t *out_len);

/*
 * Encodes `len` bytes of content as a delta against `base` (base_len bytes, the content of the
 * blob the row will name) or as ps_blobcodec_encode would, whichever is smaller: *enc is then
 * PS_BLOB_DELTA, PS_BLOB_ZSTD or PS_BLOB_RAW, *out and *out_len as for ps_blobcodec_encode.
 */
int ps_blobcodec_encode_delta(struct ps_blobcodec *c, const void *base, size_t base_len,
			      const void *data, size_t len, int *enc, void **out, size_t *out_len);

/*
 * Like ps_blobcodec_encode at `level`, compressed against `base` as a prefix when base_len > 0
 * (what a delta would store). Always compresses: for measurements (bench/), not for storage.
 */
int ps_blobcodec_compress(struct ps_blobcodec *c, int level, const void *base, size_t base_len,
			  const void *data, size_t len, void **out, size_t *out_len);
/* The inverse of ps_blobcodec_compress, into exactly `raw_len` bytes (caller frees). */
int ps_blobcodec_decompress(struct ps_blobcodec *c, const char *sha, const void *base,
			    size_t base_len, const void *stored, size_t stored_len, size_t raw_len,
			    void **out);

/*
 * Decodes a stored blob `sha` (named in errors) of encoding `enc` into a new buffer of exactly
 * `raw_len` bytes plus a NUL after them (caller frees). PS_ESTORE (slug "blob_corrupt") when the
 * bytes do not decode to `raw_len` bytes with a good checksum, or the encoding is unknown.
 * PS_BLOB_DELTA needs its base's content: ps_blobcodec_decode_delta.
 */
int ps_blobcodec_decode(struct ps_blobcodec *c, const char *sha, int enc, const void *stored,
			size_t stored_len, size_t raw_len, void **out);

/* Decodes a PS_BLOB_DELTA row of blob `sha` against its base's content (base_len bytes), as
 * ps_blobcodec_decode. A wrong base fails the frame's checksum: PS_ESTORE "blob_corrupt". */
int ps_blobcodec_decode_delta(struct ps_blobcodec *c, const char *sha, const void *base,
			      size_t base_len, const void *stored, size_t stored_len,
			      size_t raw_len, void **out);

/*
 * Decoded packs (PS_BLOB_PACKED) kept by the codec, so the neighbours of a member read just
 * before it cost no decompression: at most PS_BLOBCODEC_PACK_CACHE packs and
 * PS_BLOBCODEC_PACK_CACHE_BYTES of content, least recently used out first. A pack id is
 * never reused by a committed pack, but a rolled back transaction can hand its ids out again:
 * the store clears the cache on every rollback (ps_store_rollback), and a reader hashes every
 * member it takes from a cached pack anyway.
 * - pack_cache_get: the decoded content of pack `id` (*len bytes, valid until the next call
 *   of any pack_cache function on this codec) or NULL.
 * - pack_cache_put: takes `data` (malloc'd, `len` bytes) for pack `id`; frees it instead when
 *   it is larger than the whole cache.
 * - pack_cache_drop: forgets pack `id` (a member of it did not hash to its id).
 */
#define PS_BLOBCODEC_PACK_CACHE 16
#define PS_BLOBCODEC_PACK_CACHE_BYTES ((size_t)2 << 20)
const void *ps_blobcodec_pack_cache_get(struct ps_blobcodec *c, int64_t id, size_t *len);
void ps_blobcodec_pack_cache_put(struct ps_blobcodec *c, int64_t id, void *data, size_t len);
void ps_blobcodec_pack_cache_drop(struct ps_blobcodec *c, int64_t id);
void ps_blobcodec_pack_cache_clear(struct ps_blobcodec *c);

/* A short name of an encoding ("raw", "zstd", "delta", "packed"), for stats and errors. */
const char *ps_blobcodec_name(int enc);

#endif
