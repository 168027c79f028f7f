/*
 * The blob codec (blobcodec.h): zstd frames with the content size and checksum in them, or the
 * content as it is. Backend-neutral: SQLite and PostgreSQL store exactly these bytes.
 */
#include "store/blobcodec.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "util/error.h"
#include "util/util.h"

struct pack_entry {
	int64_t id;        /* 0: a free slot */
	void *data;
	size_t len;
	uint64_t used;     /* the codec's clock at the last hit, for least recently used */
};

struct ps_blobcodec {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	int level; /* the level cctx is set to */
	struct pack_entry packs[PS_BLOBCODEC_PACK_CACHE];
	size_t pack_bytes;
	uint64_t clock;
};

int ps_blobcodec_new(struct ps_blobcodec **out)
{
	struct ps_blobcodec *c = ps_calloc(1, sizeof(*c));

	c->cctx = ZSTD_createCCtx();
	c->dctx = ZSTD_createDCtx();
	if (!c->cctx || !c->dctx) {
		ps_blobcodec_free(c);
		return ps_error_set(PS_ENOMEM, NULL, "cannot create zstd contexts");
	}
	/* Parameters stay set between blobs: setting them for every small blob cost as much as
	 * compressing it. The checksum is what turns a damaged frame into an error instead of
	 * wrong bytes. */
	c->level = PS_BLOBCODEC_LEVEL;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, c->level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_contentSizeFlag, 1))) {
		ps_blobcodec_free(c);
		return ps_error_set(PS_EFAIL, NULL, "zstd: cannot set compression parameters");
	}
	*out = c;
	return 0;
}

void ps_blobcodec_free(struct ps_blobcodec *c)
{
	if (!c)
		return;
	ps_blobcodec_pack_cache_clear(c);
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c);
}

const char *ps_blobcodec_name(int enc)
{
	switch (enc) {
	case PS_BLOB_RAW: return "raw";
	case PS_BLOB_ZSTD: return "zstd";
	case PS_BLOB_DELTA: return "delta";
	case PS_BLOB_PACKED: return "packed";
	default: return "unknown";
	}
}

int ps_blobcodec_compress(struct ps_blobcodec *c, int level, const void *base, size_t base_len,
			  const void *data, size_t len, void **out, size_t *out_len)
{
	size_t cap = ZSTD_compressBound(len), n;
	void *buf;

	ZSTD_CCtx_reset(c->cctx, ZSTD_reset_session_only);
	if (level != c->level) {
		if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, level)))
			return ps_error_set(PS_EFAIL, NULL, "zstd: cannot set level %d", level);
		c->level = level;
	}
	if (base_len > 0 && ZSTD_isError(ZSTD_CCtx_refPrefix(c->cctx, base, base_len)))
		return ps_error_set(PS_EFAIL, NULL, "zstd: cannot use the base as a prefix");
	buf = ps_malloc(cap ? cap : 1);
	n = ZSTD_compress2(c->cctx, buf, cap, data, len);
	if (ZSTD_isError(n)) {
		free(buf);
		return ps_error_set(PS_EFAIL, NULL, "zstd: %s", ZSTD_getErrorName(n));
	}
	*out = buf;
	*out_len = n;
	return 0;
}

int ps_blobcodec_encode(struct ps_blobcodec *c, const void *data, size_t len, int *enc,
			void **out, size_t *out_len)
{
	void *buf;
	size_t n;
	int rc;

	*enc = PS_BLOB_RAW;
	*out = NULL;
	*out_len = len;
	if (len < PS_BLOBCODEC_MIN_SIZE)
		return 0;
	if ((rc = ps_blobcodec_compress(c, PS_BLOBCODEC_LEVEL, NULL, 0, data, len, &buf, &n)) < 0)
		return rc;
	/* Keep the frame only when it saves at least 1/16 of the content: below that (already
	 * compressed images, archives, random data) every read would pay a decompression for a
	 * few bytes. */
	if (n > len - len / 16) {
		free(buf);
		return 0;
	}
	*enc = PS_BLOB_ZSTD;
	*out = buf;
	*out_len = n;
	return 0;
}

int ps_blobcodec_encode_delta(struct ps_blobcodec *c, const void *base, size_t base_len,
			      const void *data, size_t len, int *enc, void **out, size_t *out_len)
{
	void *delta;
	size_t n;
	int rc;

	if ((rc = ps_blobcodec_encode(c, data, len, enc, out, out_len)) < 0)
		return rc;
	/* An empty base is no prefix at all (zstd would compress plainly), and a tiny content is
	 * raw whatever its base. */
	if (base_len == 0 || len < PS_BLOBCODEC_MIN_SIZE)
		return 0;
	if ((rc = ps_blobcodec_compress(c, PS_BLOBCODEC_LEVEL, base, base_len, data, len, &delta,
					&n)) < 0) {
		/* The plain encoding stands: a delta is an optimisation. */
		ps_error_clear();
		return 0;
	}
	/* The delta must beat the plain row by enough to pay for the base's decompression on
	 * every read of this blob: the same 1/16 rule as zstd against raw. */
	if (n > *out_len - *out_len / 16) {
		free(delta);
		return 0;
	}
	free(*out);
	*enc = PS_BLOB_DELTA;
	*out = delta;
	*out_len = n;
	return 0;
}

int ps_blobcodec_decompress(struct ps_blobcodec *c, const char *sha, const void *base,
			    size_t base_len, const void *stored, size_t stored_len, size_t raw_len,
			    void **out)
{
	unsigned long long declared = ZSTD_getFrameContentSize(stored, stored_len);
	char *buf;
	size_t n;

	if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN)
		return ps_error_set(PS_ESTORE, "blob_corrupt",
				    "blob %s is corrupt in the store: not a zstd frame with a size", sha);
	if (declared != (unsigned long long)raw_len)
		return ps_error_set(PS_ESTORE, "blob_corrupt",
				    "blob %s is corrupt in the store: frame holds %llu bytes, expected "
				    "%zu", sha, declared, raw_len);
	ZSTD_DCtx_reset(c->dctx, ZSTD_reset_session_only);
	if (base_len > 0 && ZSTD_isError(ZSTD_DCtx_refPrefix(c->dctx, base, base_len)))
		return ps_error_set(PS_EFAIL, NULL, "zstd: cannot use the base as a prefix");
	buf = ps_malloc(raw_len + 1);
	n = ZSTD_decompressDCtx(c->dctx, buf, raw_len, stored, stored_len);
	if (ZSTD_isError(n) || n != raw_len) {
		free(buf);
		return ps_error_set(PS_ESTORE, "blob_corrupt", "blob %s is corrupt in the store: %s",
				    sha, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame");
	}
	buf[raw_len] = '\0';
	*out = buf;
	return 0;
}

int ps_blobcodec_decode(struct ps_blobcodec *c, const char *sha, int enc, const void *stored,
			size_t stored_len, size_t raw_len, void **out)
{
	char *buf;

	switch (enc) {
	case PS_BLOB_RAW:
		if (stored_len != raw_len)
			return ps_error_set(PS_ESTORE, "blob_corrupt",
					    "blob %s is corrupt in the store: %zu bytes, expected %zu",
					    sha, stored_len, raw_len);
		buf = ps_malloc(raw_len + 1);
		if (raw_len)
			memcpy(buf, stored, raw_len);
		buf[raw_len] = '\0';
		*out = buf;
		return 0;
	case PS_BLOB_ZSTD:
		return ps_blobcodec_decompress(c, sha, NULL, 0, stored, stored_len, raw_len, out);
	case PS_BLOB_DELTA:
		return ps_error_set(PS_ESTORE, "blob_corrupt",
				    "blob %s is corrupt in the store: a delta read without its base",
				    sha);
	case PS_BLOB_PACKED:
		return ps_error_set(PS_ESTORE, "blob_corrupt",
				    "blob %s is corrupt in the store: a pack member read without its "
				    "pack", sha);
	default:
		return ps_error_set(PS_ESTORE, "blob_encoding_unknown",
				    "blob %s has encoding %d (%s), which this projsync cannot read: "
				    "upgrade projsync", sha, enc, ps_blobcodec_name(enc));
	}
}

int ps_blobcodec_decode_delta(struct ps_blobcodec *c, const char *sha, const void *base,
			      size_t base_len, const void *stored, size_t stored_len,
			      size_t raw_len, void **out)
{
	/* An empty base would decompress as a plain frame: a delta is never written against
	 * one (ps_blobcodec_encode_delta), so a row that claims it is damaged. */
	if (base_len == 0)
		return ps_error_set(PS_ESTORE, "blob_corrupt",
				    "blob %s is corrupt in the store: a delta against an empty base",
				    sha);
	return ps_blobcodec_decompress(c, sha, base, base_len, stored, stored_len, raw_len, out);
}

static void entry_free(struct ps_blobcodec *c, struct pack_entry *e)
{
	c->pack_bytes -= e->len;
	free(e->data);
	*e = (struct pack_entry){ 0 };
}

const void *ps_blobcodec_pack_cache_get(struct ps_blobcodec *c, int64_t id, size_t *len)
{
	for (size_t i = 0; i < PS_BLOBCODEC_PACK_CACHE; i++) {
		struct pack_entry *e = &c->packs[i];
		if (e->id == id && e->data) {
			e->used = ++c->clock;
			*len = e->len;
			return e->data;
		}
	}
	return NULL;
}

void ps_blobcodec_pack_cache_put(struct ps_blobcodec *c, int64_t id, void *data, size_t len)
{
	struct pack_entry *slot = NULL;

	if (len > PS_BLOBCODEC_PACK_CACHE_BYTES || id <= 0) {
		free(data);
		return;
	}
	ps_blobcodec_pack_cache_drop(c, id);
	/* Evict the least recently used until both bounds hold with the new one in. */
	for (;;) {
		struct pack_entry *lru = NULL;

		slot = NULL;
		for (size_t i = 0; i < PS_BLOBCODEC_PACK_CACHE; i++) {
			struct pack_entry *e = &c->packs[i];
			if (!e->data)
				slot = slot ? slot : e;
			else if (!lru || e->used < lru->used)
				lru = e;
		}
		if ((slot && c->pack_bytes + len <= PS_BLOBCODEC_PACK_CACHE_BYTES) || !lru)
			break; /* an empty cache has a slot, and len fits it (checked above) */
		entry_free(c, lru);
	}
	slot->id = id;
	slot->data = data;
	slot->len = len;
	slot->used = ++c->clock;
	c->pack_bytes += len;
}

void ps_blobcodec_pack_cache_drop(struct ps_blobcodec *c, int64_t id)
{
	for (size_t i = 0; i < PS_BLOBCODEC_PACK_CACHE; i++)
		if (c->packs[i].data && c->packs[i].id == id)
			entry_free(c, &c->packs[i]);
}

void ps_blobcodec_pack_cache_clear(struct ps_blobcodec *c)
{
	for (size_t i = 0; i < PS_BLOBCODEC_PACK_CACHE; i++)
		if (c->packs[i].data)
			entry_free(c, &c->packs[i]);
	c->pack_bytes = 0;
}
