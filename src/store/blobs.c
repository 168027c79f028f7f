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
 *
 * A pack (PS_BLOB_PACKED, schema 27) is one zstd frame of several small blobs one after another
 * (ps_store_blob_put_many writes them); a member's row names the pack and where its bytes start.
 * A reader decodes the pack once into the codec's small cache (blobcodec.h), so the neighbours
 * read next cost no decompression, and hashes every member it takes out against its id.
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

/* Pack `id`, decoded into a new buffer of *len bytes, read from the store (not the cache);
 * *stored: its stored (encoded) length. Errors name blob `sha`, the member that needed it. */
static int pack_load(struct ps_store *s, const char *sha, int64_t id, void **data, size_t *len,
		     size_t *stored)
{
	struct ps_blob_pack_row pk = { 0 };
	char who[PS_SHA_HEX + 40];
	int rc;

	rc = ps_store_blob_pack_get(s, id, &pk);
	if (rc == PS_ENOTFOUND)
		return ps_error_set(PS_ESTORE, "blob_corrupt",
				    "blob %s is corrupt in the store: its pack %lld is not stored", sha,
				    (long long)id);
	if (rc < 0)
		return rc;
	if (pk.size < 0) {
		rc = ps_error_set(PS_ESTORE, "blob_corrupt",
				  "blob %s is corrupt in the store: its pack %lld has a negative size",
				  sha, (long long)id);
	} else {
		snprintf(who, sizeof(who), "%s (in pack %lld)", sha, (long long)id);
		rc = ps_blobcodec_decode(ps_store_blobcodec(s), who, PS_BLOB_ZSTD, pk.content, pk.len,
					 (size_t)pk.size, data);
	}
	free(pk.content);
	if (rc < 0)
		return rc;
	*len = (size_t)pk.size;
	if (stored)
		*stored = pk.len;
	return 0;
}

/* The member's bytes in a decoded pack, when its row's bounds hold and they hash to its id;
 * NULL (and *why) otherwise. */
static const char *member_slice(const char *sha, const struct ps_blob_row *row, const void *pack,
				size_t pack_len, const char **why)
{
	char actual[PS_SHA_HEX];
	const char *slice;

	if (row->pack_offset < 0 || (uint64_t)row->pack_offset > pack_len ||
	    (uint64_t)row->size > pack_len - (size_t)row->pack_offset) {
		*why = "lie outside the pack";
		return NULL;
	}
	slice = (const char *)pack + row->pack_offset;
	ps_git_blob_sha(slice, (size_t)row->size, actual);
	if (strcmp(actual, sha) != 0) {
		*why = "do not hash to its id";
		return NULL;
	}
	return slice;
}

/* A PS_BLOB_PACKED row's content: its slice of the pack, from the cache when the pack is in it.
 * A slice of a cached pack that fails is tried once more from the store: the cache is a
 * shortcut, never the reason a blob fails. */
static int read_member(struct ps_store *s, const char *sha, const struct ps_blob_row *row,
		       void **out)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(s);
	const char *why = NULL;
	int rc;

	if (row->pack <= 0)
		return corrupt(sha, "a pack member that names no pack");
	/* Its bytes are in the pack: a row that holds some was written by something else. */
	if (row->len != 0)
		return corrupt(sha, "a pack member with bytes of its own");
	for (int attempt = 0; attempt < 2; attempt++) {
		size_t pack_len = 0;
		const void *pack = attempt ? NULL : ps_blobcodec_pack_cache_get(codec, row->pack,
										 &pack_len);
		const char *slice;
		void *fresh = NULL;
		char *buf;

		if (!pack) {
			if ((rc = pack_load(s, sha, row->pack, &fresh, &pack_len, NULL)) < 0)
				return rc;
			pack = fresh;
		}
		if ((slice = member_slice(sha, row, pack, pack_len, &why)) != NULL) {
			buf = ps_malloc((size_t)row->size + 1);
			memcpy(buf, slice, (size_t)row->size);
			buf[row->size] = '\0';
			*out = buf;
			if (fresh)
				ps_blobcodec_pack_cache_put(codec, row->pack, fresh, pack_len);
			return 0;
		}
		if (fresh) {
			free(fresh);
			break; /* the store's own pack: no second opinion to ask */
		}
		ps_blobcodec_pack_cache_drop(codec, row->pack);
	}
	return ps_error_set(PS_ESTORE, "blob_corrupt",
			    "blob %s is corrupt in the store: its %lld bytes at offset %lld of pack "
			    "%lld %s", sha, (long long)row->size, (long long)row->pack_offset,
			    (long long)row->pack, why);
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
	} else if (row.encoding == PS_BLOB_PACKED) {
		rc = read_member(s, sha, &row, &p);
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
	const char *slug;
	int depth, rc;

	rc = get_chain(s, sha, PS_BLOB_CHAIN_READ_MAX, data, len, &depth, NULL);
	/* Outside a transaction a blob is read in several statements (its row, then its pack or
	 * its delta base), and a prune committing between them may have rewritten the row and
	 * deleted what it named: the pack or base looks missing, the blob corrupt. Read once
	 * more from the start: a prune leaves every kept blob readable, so only real damage
	 * fails twice. */
	if (rc == PS_ESTORE && (slug = ps_error_slug()) && !strcmp(slug, "blob_corrupt")) {
		ps_error_clear();
		rc = get_chain(s, sha, PS_BLOB_CHAIN_READ_MAX, data, len, &depth, NULL);
	}
	return rc;
}

/* The error just set says the base's rows are damaged (as opposed to the store failing). */
static bool base_unreadable(void)
{
	const char *slug = ps_error_slug();

	return slug && (!strcmp(slug, "blob_corrupt") || !strcmp(slug, "blob_encoding_unknown"));
}

static int check_sha(const char *sha, const void *data, size_t len)
{
	char actual[PS_SHA_HEX];

	ps_git_blob_sha(data, len, actual);
	if (strcmp(actual, sha) != 0)
		return ps_error_set(PS_EINVAL, "sha_mismatch",
				    "blob content does not match its id: expected %s, got %s", sha,
				    actual);
	return 0;
}

/*
 * Encodes verified content for its own row: as a delta against `base` when the base reads and
 * the delta pays, else plainly (ps_blobcodec_encode). *enc; *out a new buffer of *out_len bytes,
 * or NULL when the row holds `data` itself.
 */
static int encode_against(struct ps_store *s, const char *sha, const void *data, size_t len,
			  const char *base, int *enc, void **out, size_t *out_len)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(s);
	void *base_data = NULL;
	size_t base_len = 0;
	int depth = 0, rc;
	bool delta = false, unconverted = false;

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
	rc = delta ? ps_blobcodec_encode_delta(codec, base_data, base_len, data, len, enc, out,
					       out_len)
		   : ps_blobcodec_encode(codec, data, len, enc, out, out_len);
	free(base_data);
	return rc;
}

/* Writes (or, `replace`, rewrites) blob `sha`'s own row: `enc_data` when given, else `data`. */
static int put_row(struct ps_store *s, const char *sha, const void *data, size_t len, int enc,
		   const char *base, const void *enc_data, size_t enc_len, bool replace)
{
	struct ps_blob_row row = { .encoding = enc, .size = (int64_t)len };

	if (enc == PS_BLOB_DELTA)
		snprintf(row.base, sizeof(row.base), "%s", base);
	row.content = (void *)(enc_data ? enc_data : data);
	row.len = enc_data ? enc_len : len;
	return replace ? ps_store_blob_row_replace(s, sha, &row) : ps_store_blob_row_put(s, sha, &row);
}

int ps_store_blob_put_delta(struct ps_store *s, const char *sha, const void *data, size_t len,
			    const char *base)
{
	void *enc_data = NULL;
	size_t enc_len = len;
	int enc = PS_BLOB_RAW, rc;

	if ((rc = check_sha(sha, data, len)) < 0)
		return rc;
	if ((rc = encode_against(s, sha, data, len, base, &enc, &enc_data, &enc_len)) < 0)
		return rc;
	rc = put_row(s, sha, data, len, enc, base, enc_data, enc_len, false);
	free(enc_data);
	return rc;
}

int ps_store_blob_put(struct ps_store *s, const char *sha, const void *data, size_t len)
{
	return ps_store_blob_put_delta(s, sha, data, len, NULL);
}

/* ---- packs ---- */

#define PACK_CAP (PS_BLOB_PACK_TARGET + PS_BLOB_PACK_MEMBER_MAX)

struct member {
	char sha[PS_SHA_HEX];
	size_t off, len;
	size_t idx; /* its place in the caller's batch (ps_store_blob_put_many) */
};

/* The pending pack: members' bytes copied one after another, written once they reach
 * PS_BLOB_PACK_TARGET (or the caller is done). */
struct packer {
	struct ps_store *s;
	bool replace;    /* prune's repacking: the members' rows exist, rewrite them */
	char *buf;       /* PACK_CAP bytes, allocated per pack (the cache keeps the written one) */
	size_t len;
	struct member *m;
	size_t n, cap;
	unsigned char *state; /* put_many: the batch's blobs' states (below), or NULL */
	int64_t stored;  /* encoded bytes written: packs' frames and lone members' rows */
	int64_t packs;   /* packs written */
};

enum { BLOB_TODO = 0, BLOB_PENDING, BLOB_DONE };

static const char no_content[1] = "";

/* Writes the pending members: one pack of them all, or a lone member's own plain row (a pack
 * of one saves nothing and costs a pack row). */
static int packer_flush(struct packer *p)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(p->s);
	struct ps_blob_pack_row pk = { 0 };
	void *frame = NULL;
	size_t frame_len = 0;
	int64_t id = 0;
	int rc = 0;

	if (p->n == 0)
		return 0;
	if (p->n == 1) {
		int enc;

		rc = ps_blobcodec_encode(codec, p->buf, p->len, &enc, &frame, &frame_len);
		if (rc == 0)
			rc = put_row(p->s, p->m[0].sha, p->buf, p->len, enc, NULL, frame, frame_len,
				     p->replace);
		p->stored += (int64_t)(frame ? frame_len : p->len);
		free(frame);
		goto out;
	}
	if ((rc = ps_blobcodec_compress(codec, PS_BLOBCODEC_LEVEL, NULL, 0, p->buf, p->len, &frame,
					&frame_len)) < 0)
		goto out;
	pk.size = (int64_t)p->len;
	pk.content = frame;
	pk.len = frame_len;
	rc = ps_store_blob_pack_put(p->s, &pk, &id);
	free(frame);
	if (rc < 0)
		goto out;
	p->stored += (int64_t)frame_len;
	p->packs++;
	for (size_t i = 0; i < p->n && rc == 0; i++) {
		struct ps_blob_row row = { .encoding = PS_BLOB_PACKED, .size = (int64_t)p->m[i].len,
					   .pack = id, .pack_offset = (int64_t)p->m[i].off,
					   .content = (void *)no_content, .len = 0 };

		rc = p->replace ? ps_store_blob_row_replace(p->s, p->m[i].sha, &row)
				: ps_store_blob_row_put(p->s, p->m[i].sha, &row);
	}
	if (rc == 0) {
		/* Its members are often read soon (a delta's base, the next sync's neighbours):
		 * the content is at hand, so the first read costs no decompression. */
		ps_blobcodec_pack_cache_put(codec, id, p->buf, p->len);
		p->buf = NULL;
	}
out:
	if (p->state)
		for (size_t i = 0; i < p->n; i++)
			p->state[p->m[i].idx] = BLOB_DONE;
	p->n = 0;
	p->len = 0;
	return rc;
}

static int packer_add(struct packer *p, const char *sha, const void *data, size_t len,
		      size_t idx)
{
	struct member *m;

	if (!p->buf)
		p->buf = ps_malloc(PACK_CAP);
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 32;
		p->m = ps_realloc(p->m, p->cap * sizeof(*p->m));
	}
	m = &p->m[p->n++];
	snprintf(m->sha, sizeof(m->sha), "%s", sha);
	m->off = p->len;
	m->len = len;
	m->idx = idx;
	memcpy(p->buf + p->len, data, len);
	p->len += len;
	if (p->state)
		p->state[idx] = BLOB_PENDING;
	return p->len >= PS_BLOB_PACK_TARGET ? packer_flush(p) : 0;
}

static void packer_dispose(struct packer *p)
{
	free(p->buf);
	free(p->m);
}

struct by_sha {
	const char *sha;
	size_t i;
};

static int cmp_by_sha(const void *a, const void *b)
{
	const struct by_sha *x = a, *y = b;
	int c = strcmp(x->sha, y->sha);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* The batch index of blob `sha`'s first occurrence in the batch, or SIZE_MAX. */
static size_t batch_find(const struct by_sha *sorted, size_t n, const char *sha)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(sorted[mid].sha, sha) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && !strcmp(sorted[lo].sha, sha) ? sorted[lo].i : SIZE_MAX;
}

static bool packable(size_t len)
{
	return len >= 1 && len <= PS_BLOB_PACK_MEMBER_MAX;
}

int ps_store_blob_put_many(struct ps_store *s, const struct ps_blob_in *v, size_t n)
{
	struct packer p = { .s = s };
	struct by_sha *sorted = NULL;
	const char **shas = NULL;
	bool *have = NULL;
	int rc = 0;

	if (n == 0)
		return 0;
	/* Nothing is written unless every blob is what it claims to be. */
	for (size_t i = 0; i < n; i++)
		if ((rc = check_sha(v[i].sha, v[i].data, v[i].len)) < 0)
			return rc;
	sorted = ps_malloc(n * sizeof(*sorted));
	shas = ps_malloc(n * sizeof(*shas));
	have = ps_calloc(n, sizeof(*have));
	p.state = ps_calloc(n, 1);
	for (size_t i = 0; i < n; i++) {
		sorted[i] = (struct by_sha){ v[i].sha, i };
		shas[i] = v[i].sha;
	}
	qsort(sorted, n, sizeof(*sorted), cmp_by_sha);
	/* A repeat within the batch is done when its first occurrence is. */
	for (size_t k = 1; k < n; k++)
		if (!strcmp(sorted[k].sha, sorted[k - 1].sha))
			p.state[sorted[k].i] = BLOB_DONE;
	if ((rc = ps_store_blob_have(s, shas, n, have)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct ps_blob_in *b = &v[i];
		const char *base = b->base && b->base[0] ? b->base : NULL;
		void *enc_data = NULL;
		size_t enc_len = 0;
		int enc = PS_BLOB_RAW;

		if (have[i] || p.state[i] != BLOB_TODO)
			continue;
		if (base && b->len >= PS_BLOBCODEC_MIN_SIZE) {
			size_t j = batch_find(sorted, n, base);

			/* Its base waits in the pending pack: write that first, so the base reads. */
			if (j != SIZE_MAX && p.state[j] == BLOB_PENDING && (rc = packer_flush(&p)) < 0)
				break;
			if ((rc = encode_against(s, b->sha, b->data, b->len, base, &enc, &enc_data,
						 &enc_len)) < 0)
				break;
			if (enc == PS_BLOB_DELTA || !packable(b->len)) {
				rc = put_row(s, b->sha, b->data, b->len, enc, base, enc_data, enc_len,
					     false);
				free(enc_data);
				p.state[i] = BLOB_DONE;
				continue;
			}
			free(enc_data); /* no delta: it goes into a pack after all */
			enc_data = NULL;
		}
		if (packable(b->len)) {
			rc = packer_add(&p, b->sha, b->data, b->len, i);
			continue;
		}
		if ((rc = ps_blobcodec_encode(ps_store_blobcodec(s), b->data, b->len, &enc, &enc_data,
					      &enc_len)) == 0)
			rc = put_row(s, b->sha, b->data, b->len, enc, NULL, enc_data, enc_len, false);
		free(enc_data);
		p.state[i] = BLOB_DONE;
	}
	if (rc == 0)
		rc = packer_flush(&p);
out:
	packer_dispose(&p);
	free(p.state);
	free(sorted);
	free(shas);
	free(have);
	return rc;
}

struct by_place {
	int64_t pack, off; /* the base's place when it is packed; INT64_MAX after the others */
	size_t i;
};

static int cmp_by_place(const void *a, const void *b)
{
	const struct by_place *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

/* The order to rewrite deltas in: by where their bases sit in packs, which is the order the
 * sync wrote them (paths near each other), so the rewritten versions are packed with the
 * neighbours they compress best with, not in the order of their ids. */
static int order_by_base(struct ps_store *s, char *const *shas, size_t n, struct by_place *v,
			 int64_t *stored)
{
	for (size_t i = 0; i < n; i++) {
		struct ps_blob_row row = { 0 }, base = { 0 };
		int rc;

		v[i] = (struct by_place){ INT64_MAX, 0, i };
		if ((rc = ps_store_blob_row_get(s, shas[i], &row)) < 0)
			return rc;
		free(row.content);
		*stored += (int64_t)row.len;
		if (row.encoding != PS_BLOB_DELTA || !row.base[0])
			continue;
		rc = ps_store_blob_row_get(s, row.base, &base);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear(); /* get_chain says so below, naming the blob */
			continue;
		}
		if (rc < 0)
			return rc;
		free(base.content);
		if (base.encoding == PS_BLOB_PACKED)
			v[i] = (struct by_place){ base.pack, base.pack_offset, i };
	}
	qsort(v, n, sizeof(*v), cmp_by_place);
	return 0;
}

int ps_store_blobs_make_plain(struct ps_store *s, char *const *shas, size_t n,
			      struct ps_prune_stats *out)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(s);
	struct packer p = { .s = s, .replace = true };
	struct by_place *order = ps_malloc((n ? n : 1) * sizeof(*order));
	int64_t old_bytes = 0, rewritten = 0;
	int rc;

	if ((rc = order_by_base(s, shas, n, order, &old_bytes)) < 0) {
		free(order);
		return rc;
	}

	/* Rewritten as plain rather than against an older ancestor: a prune drops the oldest
	 * versions, so the surviving delta's chain is the one being cut, and the plain row is
	 * what the blob would cost without deltas at all (docs/architecture.md §4a): small ones
	 * packed together, as ps_store_blob_put_many would store them. A delta waiting in the
	 * pending pack still reads as the delta it is: its base goes only after this returns. */
	for (size_t k = 0; k < n && rc == 0; k++) {
		size_t i = order[k].i;
		void *data = NULL, *enc_data = NULL;
		size_t len = 0, enc_len = 0;
		int enc, depth;

		if ((rc = get_chain(s, shas[i], PS_BLOB_CHAIN_READ_MAX, &data, &len, &depth,
				    NULL)) < 0) {
			rc = ps_error_wrap(rc, "cannot prune the base of blob %s: ", shas[i]);
			break;
		}
		if (packable(len)) {
			rc = packer_add(&p, shas[i], data, len, 0);
		} else if ((rc = ps_blobcodec_encode(codec, data, len, &enc, &enc_data,
						     &enc_len)) == 0) {
			rc = put_row(s, shas[i], data, len, enc, NULL, enc_data, enc_len, true);
			p.stored += (int64_t)(enc_data ? enc_len : len);
		}
		free(enc_data);
		free(data);
		if (rc == 0)
			rewritten++;
	}
	if (rc == 0)
		rc = packer_flush(&p);
	packer_dispose(&p);
	free(order);
	if (rc < 0)
		return rc;
	/* A plain row costs more than the delta it replaces: the prune reports what the store
	 * gives back, so the growth comes off the bytes the removed rows free. */
	out->blobs_rewritten += rewritten;
	out->blob_bytes -= p.stored - old_bytes;
	return 0;
}

/* Hands pack `id`'s members to the packer (`members` its shas, from the store): each read
 * from the pack decoded once, checked against its row and its id. *stored: the pack's stored
 * bytes. */
static int repack_members(struct ps_store *s, struct packer *p, int64_t id,
			  const struct ps_strv *members, size_t *stored)
{
	void *pack = NULL;
	size_t pack_len = 0;
	int rc;

	if ((rc = pack_load(s, members->v[0], id, &pack, &pack_len, stored)) < 0)
		return ps_error_wrap(rc, "cannot repack pack %lld: ", (long long)id);
	for (size_t i = 0; i < members->n && rc == 0; i++) {
		struct ps_blob_row row = { 0 };
		const char *slice, *why = NULL;

		if ((rc = ps_store_blob_row_get(s, members->v[i], &row)) < 0)
			break;
		if (row.encoding != PS_BLOB_PACKED || row.pack != id || row.size < 0 || row.len) {
			rc = corrupt(members->v[i], "its row does not name the pack that lists it");
		} else if (!(slice = member_slice(members->v[i], &row, pack, pack_len, &why))) {
			rc = ps_error_set(PS_ESTORE, "blob_corrupt",
					  "blob %s is corrupt in the store: its %lld bytes at offset "
					  "%lld of pack %lld %s", members->v[i], (long long)row.size,
					  (long long)row.pack_offset, (long long)id, why);
		} else {
			rc = packer_add(p, members->v[i], slice, (size_t)row.size, 0);
		}
		free(row.content);
		if (rc < 0)
			rc = ps_error_wrap(rc, "cannot repack blob %s: ", members->v[i]);
	}
	free(pack);
	return rc;
}

int ps_store_blob_packs_tidy(struct ps_store *s, struct ps_prune_stats *out)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(s);
	struct packer p = { .s = s, .replace = true };
	int64_t *ids = NULL, freed = 0, rewritten = 0;
	size_t n = 0;
	int rc;

	if ((rc = ps_store_blob_packs_sparse(s, &ids, &n)) < 0)
		return rc;
	/* Members of several sparse packs share new packs, written in the same transaction as
	 * the old ones are deleted (each pack's foreign key is checked at commit). */
	for (size_t k = 0; k < n && rc == 0; k++) {
		struct ps_blob_pack_row pk = { 0 };
		struct ps_strv members = { 0 };

		if ((rc = ps_store_blob_pack_members(s, ids[k], &members)) < 0)
			break;
		if (members.n) {
			size_t stored = 0;

			if ((rc = repack_members(s, &p, ids[k], &members, &stored)) == 0)
				freed += (int64_t)stored;
		} else if ((rc = ps_store_blob_pack_get(s, ids[k], &pk)) == 0) {
			freed += (int64_t)pk.len;
			free(pk.content);
		} else if (rc == PS_ENOTFOUND) {
			ps_error_clear(); /* gone already: nothing to free */
			rc = 0;
		}
		if (rc == 0)
			rc = ps_store_blob_pack_delete(s, ids[k]);
		if (rc == 0) {
			ps_blobcodec_pack_cache_drop(codec, ids[k]);
			rewritten++;
		}
		ps_strv_dispose(&members);
	}
	if (rc == 0)
		rc = packer_flush(&p);
	packer_dispose(&p);
	free(ids);
	if (rc < 0)
		return rc;
	out->blob_bytes += freed - p.stored;
	out->packs_rewritten += rewritten;
	return 0;
}

/* One transaction of ps_store_blobs_pack_existing: from shas[*i] on, until about `batch_bytes`
 * of content went into packs (stopping where a pack was just written). */
static int pack_existing_batch(struct ps_store *s, char *const *shas, size_t n, size_t *i,
			       size_t batch_bytes, struct ps_pack_report *out)
{
	struct ps_blobcodec *codec = ps_store_blobcodec(s);
	struct packer p = { .s = s, .replace = true };
	int64_t before = 0, blobs = 0, last_len = 0;
	size_t bytes = 0;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	/* Another run packing the same rows at the same time would pack them twice. */
	if ((rc = ps_store_blob_packs_lock(s)) < 0) {
		ps_store_rollback(s);
		return rc;
	}
	for (; *i < n && rc == 0 && (bytes < batch_bytes || p.n > 0); (*i)++) {
		struct ps_blob_row row = { 0 };
		char actual[PS_SHA_HEX];
		void *data = NULL;

		/* Read again inside the transaction: a sync or prune of another process may have
		 * changed or removed it since the list was made. */
		rc = ps_store_blob_row_get(s, shas[*i], &row);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear();
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if ((row.encoding == PS_BLOB_RAW || row.encoding == PS_BLOB_ZSTD) && !row.pack &&
		    !row.unconverted && row.size >= 1 && row.size <= PS_BLOB_PACK_MEMBER_MAX) {
			if (ps_blobcodec_decode(codec, shas[*i], row.encoding, row.content, row.len,
						(size_t)row.size, &data) < 0) {
				/* A damaged row stays as it is, for verify to report, rather
				 * than being sealed into a pack with a good checksum. */
				ps_error_clear();
				out->damaged++;
			} else {
				ps_git_blob_sha(data, (size_t)row.size, actual);
				if (strcmp(actual, shas[*i]) != 0) {
					out->damaged++;
				} else {
					before += (int64_t)row.len;
					last_len = (int64_t)row.len;
					bytes += (size_t)row.size;
					blobs++;
					rc = packer_add(&p, shas[*i], data, (size_t)row.size, 0);
				}
				free(data);
			}
		}
		free(row.content);
	}
	/* A lone member left at the end of the list (the pending pack empties at each write)
	 * would only be rewritten as the plain row it already is, and found again by every
	 * later run: it stays as it is, not counted as packed. */
	if (rc == 0 && p.n == 1) {
		p.n = 0;
		p.len = 0;
		blobs--;
		before -= last_len;
	}
	if (rc == 0)
		rc = packer_flush(&p);
	packer_dispose(&p);
	if (rc < 0) {
		ps_store_rollback(s);
		return rc;
	}
	if ((rc = ps_store_commit(s)) < 0)
		return rc;
	out->blobs += blobs;
	out->packs += p.packs;
	out->bytes_before += before;
	out->bytes_after += p.stored;
	return 0;
}

int ps_store_blobs_pack_existing(struct ps_store *s, size_t batch_bytes,
				 void (*progress)(void *ud, size_t done, size_t total), void *ud,
				 struct ps_pack_report *out)
{
	struct ps_strv shas = { 0 };
	size_t i = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (batch_bytes == 0)
		batch_bytes = (size_t)4 << 20;
	if ((rc = ps_store_blobs_unpacked(s, PS_BLOB_PACK_MEMBER_MAX, &shas)) < 0)
		return rc;
	out->candidates = (int64_t)shas.n;
	while (i < shas.n) {
		if ((rc = pack_existing_batch(s, shas.v, shas.n, &i, batch_bytes, out)) < 0)
			break;
		if (progress)
			progress(ud, i, shas.n);
	}
	ps_strv_dispose(&shas);
	return rc;
}
