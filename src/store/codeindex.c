/*
 * projsync's own trigram index format (codeindex.h). Why not FTS5: feeding FTS5 one token per
 * (blob, distinct trigram) cost ~0.3 us each inside FTS5 (its pending-terms hash and segment
 * merges), which kept a first sync with the index at 2-2.3x one without; here a posting is an
 * array append, a counting sort by trigram and a varint (docs/performance.md, "Code search").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "store/codeindex.h"
#include "store/store.h"
#include "util/error.h"
#include "util/util.h"

static unsigned char sym[256];
static pthread_once_t sym_once = PTHREAD_ONCE_INIT;

static void sym_init(void)
{
	sym['\t'] = '\t';
	for (int c = 0x20; c < 0x7f; c++)
		sym[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

unsigned ps_tri_symbol(unsigned char c)
{
	pthread_once(&sym_once, sym_init);
	return sym[c];
}

int32_t ps_tri_of(const char *three)
{
	unsigned a = ps_tri_symbol((unsigned char)three[0]), b = ps_tri_symbol((unsigned char)three[1]),
		 c = ps_tri_symbol((unsigned char)three[2]);

	if (!a || !b || !c)
		return -1;
	return (int32_t)(a << 14 | b << 7 | c);
}

void ps_tri_doc_extract(struct ps_tri_doc *d, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t *seen;
	uint32_t code = 0;
	unsigned run = 0; /* symbols in a row so far */
	size_t n = 0;

	pthread_once(&sym_once, sym_init);
	if (!d->seen)
		d->seen = ps_calloc(PS_TRI_CODES / 64, sizeof(*d->seen));
	seen = d->seen;
	/* A document has at most len - 2 distinct trigrams, and there are PS_TRI_CODES. */
	if (d->cap < len && d->cap < PS_TRI_CODES) {
		d->cap = len < PS_TRI_CODES ? len : PS_TRI_CODES;
		d->codes = ps_realloc(d->codes, d->cap * sizeof(*d->codes));
	}
	for (size_t i = 0; i < len;) {
		unsigned c = sym[p[i]];

		if (c) {
			i++;
		} else if (p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x84 && p[i + 2] == 0xaa) {
			c = 'k'; /* U+212A KELVIN SIGN */
			i += 3;
		} else if (p[i] == 0xc5 && i + 1 < len && p[i + 1] == 0xbf) {
			c = 's'; /* U+017F LATIN SMALL LETTER LONG S */
			i += 2;
		} else {
			i++;
			run = 0;
			continue;
		}
		code = ((code << 7) | c) & (PS_TRI_CODES - 1);
		if (++run >= 3) {
			uint64_t bit = (uint64_t)1 << (code % 64);

			if (!(seen[code / 64] & bit)) {
				seen[code / 64] |= bit;
				d->codes[n++] = code;
			}
		}
	}
	for (size_t k = 0; k < n; k++)
		seen[d->codes[k] / 64] = 0;
	d->n = n;
}

void ps_tri_doc_dispose(struct ps_tri_doc *d)
{
	free(d->seen);
	free(d->codes);
	memset(d, 0, sizeof(*d));
}

void ps_tri_acc_add(struct ps_tri_acc *a, uint32_t id, const uint32_t *codes, size_t n)
{
	if (id > a->max_id)
		a->max_id = id;
	if (!n) /* an empty document: `codes` may be NULL */
		return;
	a->docs++;
	if (a->n + n > a->cap) {
		size_t cap = a->cap ? a->cap : 65536;

		while (cap < a->n + n)
			cap *= 2;
		a->code = ps_realloc(a->code, cap * sizeof(*a->code));
		a->id = ps_realloc(a->id, cap * sizeof(*a->id));
		a->cap = cap;
	}
	memcpy(a->code + a->n, codes, n * sizeof(*codes));
	for (size_t i = 0; i < n; i++)
		a->id[a->n + i] = id;
	a->n += n;
}

void ps_tri_acc_clear(struct ps_tri_acc *a)
{
	a->n = 0;
	a->max_id = 0;
	a->docs = 0;
}

void ps_tri_acc_dispose(struct ps_tri_acc *a)
{
	free(a->code);
	free(a->id);
	memset(a, 0, sizeof(*a));
}

/* ---- stored rows: raw or compressed ---- */

void ps_tri_zbuf_dispose(struct ps_tri_zbuf *z)
{
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	free(z->data);
	memset(z, 0, sizeof(*z));
}

int ps_tri_row_pack(struct ps_tri_zbuf *z, const unsigned char *row, size_t len,
		    const unsigned char **out, size_t *out_len)
{
	size_t cap = 1 + ZSTD_compressBound(len), n;

	*out = row;
	*out_len = len;
	if (len < 2 || len > PS_TRI_ZROW_MAX)
		return 0;
	if (!z->cctx) {
		/* The checksum turns a damaged frame into a malformed row instead of other ids;
		 * the content size is what a reader bounds its buffer by. */
		if (!(z->cctx = ZSTD_createCCtx()) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel,
							PS_TRI_ZSTD_LEVEL)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_contentSizeFlag, 1))) {
			ZSTD_freeCCtx(z->cctx);
			z->cctx = NULL;
			return ps_error_set(PS_EFAIL, NULL, "zstd: cannot set up code index rows");
		}
	}
	if (cap > z->cap) {
		z->data = ps_realloc(z->data, cap);
		z->cap = cap;
	}
	z->data[0] = 0;
	n = ZSTD_compress2(z->cctx, z->data + 1, cap - 1, row, len);
	if (ZSTD_isError(n))
		return ps_error_set(PS_EFAIL, NULL, "zstd: %s", ZSTD_getErrorName(n));
	if (1 + n < len) {
		*out = z->data;
		*out_len = 1 + n;
	}
	return 0;
}

bool ps_tri_row_compressed(const unsigned char *data, size_t len)
{
	return len > 0 && data[0] == 0;
}

bool ps_tri_row_unpack(struct ps_tri_zbuf *z, const unsigned char *data, size_t len,
		       const unsigned char **out, size_t *out_len)
{
	unsigned long long size;
	size_t n;

	if (!ps_tri_row_compressed(data, len)) {
		*out = data;
		*out_len = len;
		return true;
	}
	data++;
	len--;
	/* Exactly one frame, whose header declares a size a row may have: the buffer is sized by
	 * it, and a second frame (or trailing bytes) would be bytes no writer produced. */
	size = ZSTD_getFrameContentSize(data, len);
	if (!z || size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size < 2 ||
	    size > PS_TRI_ZROW_MAX || ZSTD_findFrameCompressedSize(data, len) != len)
		return false;
	if (!z->dctx && !(z->dctx = ZSTD_createDCtx()))
		return false;
	if (size > z->cap) {
		z->data = ps_realloc(z->data, (size_t)size);
		z->cap = (size_t)size;
	}
	n = ZSTD_decompressDCtx(z->dctx, z->data, (size_t)size, data, len);
	if (ZSTD_isError(n) || n != size || z->data[0] == 0)
		return false; /* a compressed row holds a raw one, never another compressed one */
	*out = z->data;
	*out_len = n;
	return true;
}

/* ---- writing rows ---- */

static size_t put_varint(unsigned char *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (unsigned char)v;
	return n;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return false;
		unsigned char b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return true;
		}
	}
	return false;
}

static void reserve(unsigned char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	*buf = ps_realloc(*buf, c);
	*cap = c;
}

void ps_tri_writer_init(struct ps_tri_writer *w, ps_tri_emit_fn emit, void *ctx)
{
	memset(w, 0, sizeof(*w));
	w->emit = emit;
	w->ctx = ctx;
}

static int flush_row(struct ps_tri_writer *w)
{
	unsigned char head[20];
	size_t h, len;
	unsigned char *row;
	const unsigned char *stored;
	int rc;

	if (!w->ntri || w->rc < 0)
		return w->rc;
	h = put_varint(head, w->ntri);
	h += put_varint(head + h, w->ndir);
	row = ps_malloc(h + w->ndir + w->npost);
	memcpy(row, head, h);
	memcpy(row + h, w->dir, w->ndir);
	memcpy(row + h + w->ndir, w->post, w->npost);
	rc = ps_tri_row_pack(&w->z, row, h + w->ndir + w->npost, &stored, &len);
	if (rc == 0)
		rc = w->emit(w->ctx, w->first, stored, len);
	/* The next row's size from this one's ratio (consecutive rows of a segment compress
	 * alike); after a row that stayed raw, PS_TRI_ROW_BYTES raw. */
	if (rc == 0) {
		uint64_t t = stored != row ? (uint64_t)PS_TRI_ROW_STORED * (h + w->ndir + w->npost) /
						     (len ? len : 1)
					   : PS_TRI_ROW_BYTES;

		w->target = (size_t)(t < PS_TRI_ROW_BYTES ? PS_TRI_ROW_BYTES
				     : t > 2 * PS_TRI_ROW_BYTES ? 2 * PS_TRI_ROW_BYTES : t);
	}
	free(row);
	w->ntri = 0;
	w->ndir = w->npost = 0;
	if (rc < 0)
		w->rc = rc;
	return w->rc;
}

int ps_tri_writer_add(struct ps_tri_writer *w, uint32_t code, const uint32_t *ids, size_t n)
{
	uint64_t span, bitmap, gaps = 0;
	bool dense;

	if (!n || w->rc < 0)
		return w->rc;
	if (!w->ntri) {
		w->first = code;
		w->prev = code;
	}
	/* The cheaper of the two forms: gaps as varints, or a bitmap of the ids after the first
	 * (the common trigrams, in most documents of a segment). */
	span = ids[n - 1] - ids[0];
	for (size_t i = 1; i < n; i++)
		gaps += varint_len(ids[i] - ids[i - 1]);
	bitmap = varint_len(span) + (span + 7) / 8;
	dense = n > 1 && bitmap < gaps;
	reserve(&w->post, &w->cappost, w->npost + 10 + (dense ? bitmap : gaps));
	w->npost += put_varint(w->post + w->npost, ids[0]);
	if (dense) {
		unsigned char *bits = w->post + w->npost + varint_len(span);

		w->npost += put_varint(w->post + w->npost, span);
		memset(bits, 0, (size_t)(span + 7) / 8);
		for (size_t i = 1; i < n; i++) {
			uint64_t at = (uint64_t)(ids[i] - ids[0]) - 1;
			bits[at / 8] |= (unsigned char)(1u << (at % 8));
		}
		w->npost += (size_t)(span + 7) / 8;
	} else {
		for (size_t i = 1; i < n; i++)
			w->npost += put_varint(w->post + w->npost, ids[i] - ids[i - 1]);
	}
	reserve(&w->dir, &w->capdir, w->ndir + 20);
	w->ndir += put_varint(w->dir + w->ndir, code - w->prev);
	w->ndir += put_varint(w->dir + w->ndir, (uint64_t)n * 2 + dense);
	w->prev = code;
	w->ntri++;
	w->postings += n;
	if (!w->target) /* the first row: zstd takes a quarter off these lists, about */
		w->target = PS_TRI_ROW_BYTES * 4u / 3u;
	if (w->npost + w->ndir >= w->target)
		return flush_row(w);
	return 0;
}

int ps_tri_writer_finish(struct ps_tri_writer *w)
{
	int rc = flush_row(w);

	free(w->dir);
	free(w->post);
	w->dir = w->post = NULL;
	w->capdir = w->cappost = 0;
	ps_tri_zbuf_dispose(&w->z);
	return rc;
}

int ps_tri_acc_write(struct ps_tri_acc *a, struct ps_tri_writer *w)
{
	/* An LSD radix sort by trigram, 11 bits then 10: stable, so each trigram's ids stay in
	 * the increasing order they were added in. */
	enum { LOW = 11, HIGH = PS_TRI_BITS - LOW };
	uint32_t count[1u << LOW];
	size_t n = a->n ? a->n : 1;
	uint32_t *code2 = ps_malloc(n * sizeof(*code2)), *id2 = ps_malloc(n * sizeof(*id2));
	int rc = 0;

	for (int pass = 0; pass < 2; pass++) {
		unsigned shift = pass ? LOW : 0, buckets = pass ? 1u << HIGH : 1u << LOW;
		const uint32_t *fc = pass ? code2 : a->code, *fi = pass ? id2 : a->id;
		uint32_t *tc = pass ? a->code : code2, *ti = pass ? a->id : id2, sum = 0;

		memset(count, 0, buckets * sizeof(*count));
		for (size_t i = 0; i < a->n; i++)
			count[(fc[i] >> shift) & (buckets - 1)]++;
		for (unsigned b = 0; b < buckets; b++) {
			uint32_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < a->n; i++) {
			uint32_t at = count[(fc[i] >> shift) & (buckets - 1)]++;
			tc[at] = fc[i];
			ti[at] = fi[i];
		}
	}
	free(code2);
	free(id2);
	for (size_t i = 0; i < a->n && rc == 0;) {
		size_t j = i + 1;

		while (j < a->n && a->code[j] == a->code[i])
			j++;
		rc = ps_tri_writer_add(w, a->code[i], a->id + i, j - i);
		i = j;
	}
	/* The pairs are sorted in place: the accumulator is spent. */
	a->n = 0;
	return rc;
}

/* ---- reading rows ---- */

bool ps_tri_row_open(struct ps_tri_row *r, uint32_t first, const unsigned char *data, size_t len,
		     struct ps_tri_zbuf *z)
{
	const unsigned char *p, *end;
	uint64_t n, dir;

	memset(r, 0, sizeof(*r));
	if (!ps_tri_row_unpack(z, data, len, &data, &len))
		return false;
	p = data;
	end = data + len;
	/* ntri >= 1: a writer never writes an empty row, and a leading 0 marks a compressed one. */
	if (first >= PS_TRI_CODES || !get_varint(&p, end, &n) || n == 0 || n > len ||
	    !get_varint(&p, end, &dir) || dir > (uint64_t)(end - p))
		return false;
	r->p = p;
	r->dir_end = p + dir;
	r->end = end;
	r->post = p + dir;
	r->left = (uint32_t)n;
	r->code = first;
	r->list = NULL;
	return true;
}

/* Whether a bitmap of `bits` bits fits in [p, end): not as (bits + 7) / 8, which a damaged
 * span near 2^64 wraps to a few bytes. */
static bool bits_fit(uint64_t bits, const unsigned char *p, const unsigned char *end)
{
	return bits / 8 + (bits % 8 != 0) <= (uint64_t)(end - p);
}

/* Where the current list ends (NULL if it runs past the row). */
static const unsigned char *list_end(const struct ps_tri_row *r)
{
	const unsigned char *p = r->list;
	uint64_t v;

	if (!get_varint(&p, r->end, &v))
		return NULL;
	if (r->dense) {
		if (!get_varint(&p, r->end, &v) || !bits_fit(v, p, r->end))
			return NULL;
		return p + (v + 7) / 8;
	}
	for (uint32_t i = 1; i < r->ndocs; i++) {
		/* A varint ends at a byte below 0x80. */
		while (p < r->end && (*p & 0x80))
			p++;
		if (p >= r->end)
			return NULL;
		p++;
	}
	return p;
}

bool ps_tri_row_next(struct ps_tri_row *r)
{
	uint64_t delta, count;

	if (!r->left)
		return false;
	if (r->list && !(r->post = list_end(r))) {
		r->left = 0;
		return false;
	}
	/* Trigrams strictly increase and stay below PS_TRI_CODES: a merge writes them back into
	 * row keys, where a larger one would land in another segment's rows. */
	if (!get_varint(&r->p, r->dir_end, &delta) || !get_varint(&r->p, r->dir_end, &count) ||
	    delta >= PS_TRI_CODES - r->code || (r->list && delta == 0) || count < 2 ||
	    count / 2 > UINT32_MAX) {
		r->left = 0;
		return false;
	}
	/* A list takes at least a bit per id: more ids than that is a damaged row (and would
	 * make a reader allocate for them). */
	if (count / 2 > (uint64_t)(r->end - r->post) * 8 + 1) {
		r->left = 0;
		return false;
	}
	r->left--;
	r->code += (uint32_t)delta;
	r->ndocs = (uint32_t)(count / 2);
	r->dense = count & 1;
	r->list = r->post;
	return true;
}

/* Calls fn for each id of the current list, at most r->ndocs; returns how many. */
static size_t list_walk(const struct ps_tri_row *r, void (*fn)(void *ctx, uint32_t id), void *ctx,
			uint32_t *out)
{
	const unsigned char *p = r->list;
	uint64_t first, v;
	size_t n = 0;

	if (!get_varint(&p, r->end, &first) || first > UINT32_MAX)
		return 0;
	if (fn)
		fn(ctx, (uint32_t)first);
	else
		out[0] = (uint32_t)first;
	n = 1;
	if (r->dense) {
		if (!get_varint(&p, r->end, &v) || !bits_fit(v, p, r->end) || first + v > UINT32_MAX)
			return n;
		for (uint64_t at = 0; at < v && n < r->ndocs; at++) {
			if (!((p[at / 8] >> (at % 8)) & 1))
				continue;
			if (fn)
				fn(ctx, (uint32_t)(first + at + 1));
			else
				out[n] = (uint32_t)(first + at + 1);
			n++;
		}
		return n;
	}
	uint64_t id = first;
	while (n < r->ndocs && get_varint(&p, r->end, &v)) {
		id += v;
		if (id > UINT32_MAX)
			break;
		if (fn)
			fn(ctx, (uint32_t)id);
		else
			out[n] = (uint32_t)id;
		n++;
	}
	return n;
}

void ps_tri_list_each(const struct ps_tri_row *r, void (*fn)(void *ctx, uint32_t id), void *ctx)
{
	list_walk(r, fn, ctx, NULL);
}

size_t ps_tri_list_decode(const struct ps_tri_row *r, uint32_t *ids)
{
	return list_walk(r, NULL, NULL, ids);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

size_t ps_tri_ids_keep(uint32_t *ids, size_t n, const uint64_t *live, int64_t lo, int64_t hi)
{
	size_t k = 0;
	bool sorted = true;

	for (size_t i = 0; i < n; i++) {
		int64_t id = (int64_t)ids[i] - lo;

		if (id < 0 || id > hi - lo || !((live[id / 64] >> (id % 64)) & 1))
			continue;
		if (k && ids[i] <= ids[k - 1])
			sorted = false;
		ids[k++] = ids[i];
	}
	if (!sorted) {
		size_t u = 0;

		qsort(ids, k, sizeof(*ids), cmp_u32);
		for (size_t i = 0; i < k; i++)
			if (!u || ids[i] != ids[u - 1])
				ids[u++] = ids[i];
		k = u;
	}
	return k;
}

size_t ps_tri_ids_mark(uint64_t *seen, int64_t lo, const uint32_t *ids, size_t n)
{
	size_t fresh = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t at = (uint64_t)((int64_t)ids[i] - lo);
		uint64_t bit = (uint64_t)1 << (at % 64);

		fresh += !(seen[at / 64] & bit);
		seen[at / 64] |= bit;
	}
	return fresh;
}

int ps_tri_merge(size_t n, ps_tri_entry_fn entry, ps_tri_next_fn next, void *ctx,
		 const uint64_t *live, int64_t lo, int64_t hi, struct ps_tri_writer *w,
		 struct ps_tri_merged *out)
{
	/* The ids written so far, to count each document once across its trigrams. */
	uint64_t *kept = hi >= lo ? ps_calloc((size_t)(hi - lo) / 64 + 1, sizeof(*kept)) : NULL;
	uint32_t *ids = NULL;
	size_t cap = 0;
	int rc = 0;

	out->min_id = UINT32_MAX;
	out->max_id = 0;
	out->docs = 0;
	while (rc == 0) {
		uint32_t code = UINT32_MAX;
		size_t count = 0, k;
		struct ps_tri_row *r;

		for (size_t i = 0; i < n; i++)
			if ((r = entry(ctx, i)) && r->code < code)
				code = r->code;
		if (code == UINT32_MAX)
			break;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (!(r = entry(ctx, i)) || r->code != code)
				continue;
			if (count + r->ndocs > cap) {
				cap = 2 * (count + r->ndocs);
				ids = ps_realloc(ids, cap * sizeof(*ids));
			}
			count += ps_tri_list_decode(r, ids + count);
			rc = next(ctx, i);
		}
		k = ps_tri_ids_keep(ids, count, live, lo, hi);
		out->docs += (int64_t)ps_tri_ids_mark(kept, lo, ids, k);
		if (k) {
			if (ids[0] < out->min_id)
				out->min_id = ids[0];
			if (ids[k - 1] > out->max_id)
				out->max_id = ids[k - 1];
		}
		if (rc == 0)
			rc = ps_tri_writer_add(w, code, ids, k);
	}
	free(ids);
	free(kept);
	return rc;
}

/* ---- queries ---- */

size_t ps_tri_picks(const char *literal)
{
	size_t len = strlen(literal), count = len >= 3 ? len - 2 : 0;

	return count < PS_TRI_PICKS_MAX ? count : PS_TRI_PICKS_MAX;
}

int32_t ps_tri_pick(const char *literal, size_t k, size_t picks)
{
	size_t count = strlen(literal) - 2;
	size_t at = picks > 1 ? k * (count - 1) / (picks - 1) : 0;

	return ps_tri_of(literal + at);
}

struct bitset {
	uint64_t *bits;
	int64_t nbits;
};

static void set_bit(void *ctx, uint32_t id)
{
	struct bitset *b = ctx;

	if ((int64_t)id < b->nbits)
		b->bits[id / 64] |= (uint64_t)1 << (id % 64);
}

bool ps_tri_row_bits(uint32_t first, const void *data, size_t len, uint32_t code, uint64_t *bits,
		     int64_t nbits, struct ps_tri_zbuf *z)
{
	struct bitset b = { bits, nbits };
	struct ps_tri_row row;

	if (!ps_tri_row_open(&row, first, data, len, z))
		return false;
	while (ps_tri_row_next(&row) && row.code < code)
		;
	if (row.list && row.code == code)
		ps_tri_list_each(&row, set_bit, &b);
	return true;
}

int ps_tri_eval(const struct ps_code_query *q, size_t words, ps_tri_lookup_fn lookup, void *ctx,
		uint64_t **out)
{
	size_t n = words ? words : 1;
	uint64_t *bits = ps_calloc(n, sizeof(*bits));
	int rc = 0;

	*out = NULL;
	if (q->op == PS_CODE_LITERAL) {
		size_t take = ps_tri_picks(q->literal), used = 0;
		uint64_t *one = ps_calloc(n, sizeof(*one));

		for (size_t k = 0; k < take && rc == 0; k++) {
			int32_t code = ps_tri_pick(q->literal, k, take);
			uint64_t *dst = used ? one : bits;
			bool any = false;

			if (code < 0)
				continue; /* cannot be: literals hold only printable bytes (store.h) */
			if (used)
				memset(one, 0, n * sizeof(*one));
			if ((rc = lookup(ctx, (uint32_t)code, dst)) < 0)
				break;
			for (size_t i = 0; i < words; i++)
				any |= (used ? (bits[i] &= one[i]) : bits[i]) != 0;
			used++;
			if (!any)
				break; /* no document holds them all */
		}
		free(one);
		if (!used) /* nothing to narrow by: every id */
			memset(bits, 0xff, n * sizeof(*bits));
	} else {
		for (size_t k = 0; k < q->nkids && rc == 0; k++) {
			uint64_t *kid;

			if ((rc = ps_tri_eval(q->kids[k], words, lookup, ctx, &kid)) < 0)
				break;
			for (size_t i = 0; i < words; i++)
				bits[i] = k == 0 ? kid[i]
					  : q->op == PS_CODE_AND ? bits[i] & kid[i] : bits[i] | kid[i];
			free(kid);
		}
	}
	if (rc < 0) {
		free(bits);
		return rc;
	}
	*out = bits;
	return 0;
}
