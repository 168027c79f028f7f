/*
 * Blob content through the store, for every backend (docs/architecture.md §4a): content is
 * verified against its git blob id and encoded here, read back and decoded here, and delta
 * chains are followed here. A backend only stores and returns rows (backend.h, struct
 * ps_blob_row), so SQLite and PostgreSQL hold the same bytes by construction.
 *
 * A delta (PS_BLOB_DELTA) is a zstd frame compressed against its base blob's content; the base
 * may be a delta itself. The writer keeps chains at most PS_BLOB_CHAIN_MAX deltas long, so a read
 * costs at most PS_BLOB_CHAIN_MAX + 1 decompressions; the reader follows up to
 * PS_BLOB_CHAIN_READ_MAX before it calls a chain corrupt (a cycle cannot loop forever).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/blobcodec.h"
#include "util/error.h"
#include "util/util.h"

static int corrupt(const char *sha, const char *why)
{
	return ps_error_set(PS_ESTORE, "blob_corrupt", "blob %s is corrupt in the store: %s", sha,
			    why);
}

/*
 * Decodes blob `sha` into a new buffer (with a NUL after it), following its delta chain at most
 * `left` more deltas deep; *depth is the number of deltas in its chain (0 for a plain row).
 */
static int get_chain(struct ps_store *s, const char *sha, int left, void **data, size_t *len,
		     int *depth, bool *unconverted)
{
	struct ps_blob_row row = { 0 };
	struct ps_blobcodec *codec = ps_store_blobcodec(s);
	void *base = NULL, *p = NULL;
	size_t base_len = 0;
	int base_depth = 0, rc;

	if ((rc = ps_store_blob_row_get(s, sha, &row)) < 0)
		return rc;
	if (row.size < 0) {
		rc = corrupt(sha, "negative size");
	} else if (row.encoding != PS_BLOB_DELTA) {
		rc = ps_blobcodec_decode(codec, sha, row.encoding, row.content, row.len,
					 (size_t)row.size, &p);
	} else if (!row.base[0]) {
		rc = corrupt(sha, "a delta that names no base");
	} else if (left <= 0) {
		rc = ps_error_set(PS_ESTORE, "blob_corrupt",
				  "blob %s is corrupt in the store: its delta chain is longer than "
				  "%d blobs (a cycle?)", sha, PS_BLOB_CHAIN_READ_MAX);
	} else {
		char bsha[PS_SHA_HEX];

		memcpy(bsha, row.base, sizeof(bsha));
		rc = get_chain(s, bsha, left - 1, &base, &base_len, &base_depth, NULL);
		if (rc == PS_ENOTFOUND) {
			rc = ps_error_set(PS_ESTORE, "blob_corrupt",
					  "blob %s is corrupt in the store: its delta base %s is not "
					  "stored", sha, bsha);
		} else if (rc < 0) {
			/* The base's own message names the base; say which delta needed it. */
			rc = ps_error_wrap(rc, "blob %s (a delta against %s) cannot be read: ", sha,
					   bsha);
		} else {
			rc = ps_blobcodec_decode_delta(codec, sha, base, base_len, row.content,
						       row.len, (size_t)row.size, &p);
			base_depth++;
		}
		free(base);
	}
	free(row.content);
	if (rc < 0)
		return rc;
	*data = p;
	*len = (size_t)row.size;
	*depth = base_depth;
	if (unconverted)
		*unconverted = row.unconverted;
	return 0;
}

int ps_store_blob_get(struct ps_store *s, const char *sha, void **data, size_t *len)
{
	int depth;

	return get_chain(s, sha, PS_BLOB_CHAIN_READ_MAX, data, len, &depth, NULL);
}

/* The error just set says the base's rows are damaged (as opposed to the store failing). */
static bool base_unreadable(void)
{
	const char *slug = ps_error_slug();

	return slug && (!strcmp(slug, "blob_corrupt") || !strcmp(slug, "blob_encoding_unknown"));
}

int ps_store_blob_put_delta(struct ps_store *s, const char *sha, const void *data, size_t len,
			    const char *base)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(s);
	struct ps_blob_row row = { .encoding = PS_BLOB_RAW, .size = (int64_t)len };
	char actual[PS_SHA_HEX];
	void *enc_data = NULL, *base_data = NULL;
	size_t enc_len = len, base_len = 0;
	int enc = PS_BLOB_RAW, depth = 0, rc;
	bool delta = false, unconverted = false;

	ps_git_blob_sha(data, len, actual);
	if (strcmp(actual, sha) != 0)
		return ps_error_set(PS_EINVAL, "sha_mismatch",
				    "blob content does not match its id: expected %s, got %s", sha,
				    actual);
	if (base && base[0] && strcmp(base, sha) != 0 && len >= PS_BLOBCODEC_MIN_SIZE) {
		/* A base that does not read (not stored, kept as metadata only, damaged) or whose
		 * chain is at the bound leaves this blob plain: a delta is an optimisation, and
		 * the plain row starts a new chain. */
		rc = get_chain(s, base, PS_BLOB_CHAIN_READ_MAX, &base_data, &base_len, &depth,
			       &unconverted);
		if (rc == 0)
			delta = depth < PS_BLOB_CHAIN_MAX && base_len > 0 && !unconverted;
		else if (rc == PS_ENOTFOUND || base_unreadable())
			ps_error_clear();
		else
			return rc; /* the store itself failed: not a reason to store plain */
	}
	rc = delta ? ps_blobcodec_encode_delta(codec, base_data, base_len, data, len, &enc,
					       &enc_data, &enc_len)
		   : ps_blobcodec_encode(codec, data, len, &enc, &enc_data, &enc_len);
	free(base_data);
	if (rc < 0)
		return rc;
	row.encoding = enc;
	if (enc == PS_BLOB_DELTA)
		snprintf(row.base, sizeof(row.base), "%s", base);
	row.content = enc_data ? enc_data : (void *)data;
	row.len = enc_data ? enc_len : len;
	rc = ps_store_blob_row_put(s, sha, &row);
	free(enc_data);
	return rc;
}

int ps_store_blob_put(struct ps_store *s, const char *sha, const void *data, size_t len)
{
	return ps_store_blob_put_delta(s, sha, data, len, NULL);
}

int ps_store_blobs_make_plain(struct ps_store *s, char *const *shas, size_t n,
			      int64_t *rewritten)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(s);

	/* Rewritten as plain rather than against an older ancestor: a prune drops the oldest
	 * versions, so the surviving delta's chain is the one being cut, and the plain row is
	 * what the blob would cost without deltas at all (docs/architecture.md §4a). */
	for (size_t i = 0; i < n; i++) {
		struct ps_blob_row row = { 0 };
		void *data = NULL, *enc_data = NULL;
		size_t len = 0, enc_len = 0;
		int enc, depth, rc;

		if ((rc = get_chain(s, shas[i], PS_BLOB_CHAIN_READ_MAX, &data, &len, &depth,
				    NULL)) < 0)
			return ps_error_wrap(rc, "cannot prune the base of blob %s: ", shas[i]);
		if ((rc = ps_blobcodec_encode(codec, data, len, &enc, &enc_data, &enc_len)) < 0) {
			free(data);
			return rc;
		}
		row.encoding = enc;
		row.size = (int64_t)len;
		row.content = enc_data ? enc_data : data;
		row.len = enc_data ? enc_len : len;
		rc = ps_store_blob_row_replace(s, shas[i], &row);
		free(enc_data);
		free(data);
		if (rc < 0)
			return rc;
		(*rewritten)++;
	}
	return 0;
}

/* FIRST CUT (interface commit): no packing yet; replaced by the packing writer. */
int ps_store_blob_put_many(struct ps_store *s, const struct ps_blob_in *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = ps_store_blob_put_delta(s, v[i].sha, v[i].data, v[i].len, v[i].base);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int ps_store_blob_packs_tidy(struct ps_store *s, struct ps_prune_stats *out)
{
	(void)s;
	(void)out;
	return 0;
}
