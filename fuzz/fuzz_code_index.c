/*
 * The code index's rows (store/codeindex.c): every search and every merge reads them back from
 * the store, where a damaged page or a hand-edited row can hold any bytes. Properties: a row of
 * any bytes is read without a crash, an out-of-bounds access or an allocation beyond its size,
 * its trigrams strictly increase and stay below PS_TRI_CODES (a merge writes them back as row
 * keys); and posting lists written by ps_tri_writer read back exactly, through both readers
 * (row walk, ps_tri_row_bits), whether the writer stored them compressed or raw (schema 25),
 * and a compressed row's frame with a byte changed is refused. Input: 3 bytes of the row's first
 * trigram, then the row (a leading 0 byte: a zstd frame follows); the same bytes also describe
 * the lists of the round trip.
 */
#include "fuzz.h"
#include "store/codeindex.h"
#include "util/util.h"

/* Rows decompress here, reused from input to input as a backend's cursor reuses its own; the
 * lookups of the round trip into their own, as a search's are apart from a merge's. */
static struct ps_tri_zbuf z, zlook;

/* Reads a row of any bytes the way a merge does. */
static void read_any(const uint8_t *data, size_t size)
{
	struct ps_tri_row r;
	uint32_t first, prev = 0;
	bool any = false;

	if (size < 3)
		return;
	first = (uint32_t)data[0] << 16 | (uint32_t)data[1] << 8 | data[2];
	if (!ps_tri_row_open(&r, first, data + 3, size - 3, &z))
		return;
	while (ps_tri_row_next(&r)) {
		FUZZ_ASSERT(r.code < PS_TRI_CODES);
		FUZZ_ASSERT(!any || r.code > prev);
		FUZZ_ASSERT(r.ndocs <= (size - 3) * 8 + 1);
		uint32_t *ids = ps_malloc((r.ndocs ? r.ndocs : 1) * sizeof(*ids));
		size_t n = ps_tri_list_decode(&r, ids);
		FUZZ_ASSERT(n <= r.ndocs);
		free(ids);
		prev = r.code;
		any = true;
	}
	uint64_t bits[4] = { 0 };
	(void)ps_tri_row_bits(first, data + 3, size - 3, first + 1, bits, 256, &z);
}

struct list {
	uint32_t code;
	uint32_t *ids;
	size_t n;
};

struct rows {
	uint32_t *first;
	unsigned char **data;
	size_t *len;
	size_t n;
};

static int emit(void *ctx, uint32_t first, const unsigned char *data, size_t len)
{
	struct rows *rs = ctx;

	rs->first = ps_realloc(rs->first, (rs->n + 1) * sizeof(*rs->first));
	rs->data = ps_realloc(rs->data, (rs->n + 1) * sizeof(*rs->data));
	rs->len = ps_realloc(rs->len, (rs->n + 1) * sizeof(*rs->len));
	rs->first[rs->n] = first;
	rs->data[rs->n] = ps_malloc(len ? len : 1);
	memcpy(rs->data[rs->n], data, len);
	rs->len[rs->n] = len;
	rs->n++;
	return 0;
}

/* Lists from the input bytes: two bytes per list (trigram step, length), one per id gap; a gap
 * byte's high bit makes a long jump, so both list forms (varint gaps, bitmaps) occur. */
static size_t make_lists(const uint8_t *data, size_t size, struct list **out)
{
	struct list *v = NULL;
	size_t n = 0, i = 0;
	uint32_t code = 0;

	while (i + 2 <= size) {
		uint32_t step = data[i] | (data[i] & 0x80 ? (uint32_t)data[i] << 9 : 0);
		size_t len = 1 + data[i + 1] % 64;
		uint64_t id = 0;

		i += 2;
		if ((uint64_t)code + 1 + step >= PS_TRI_CODES)
			break;
		code = n ? code + 1 + step : step;
		v = ps_realloc(v, (n + 1) * sizeof(*v));
		v[n].code = code;
		v[n].ids = ps_malloc(len * sizeof(uint32_t));
		v[n].n = 0;
		for (size_t k = 0; k < len; k++) {
			uint8_t g = i < size ? data[i++] : 1;
			uint64_t gap = g & 0x80 ? (uint64_t)g * 977 : g & 0x7f;
			id = k ? id + 1 + gap : gap;
			if (id > UINT32_MAX)
				break;
			v[n].ids[v[n].n++] = (uint32_t)id;
		}
		n++;
	}
	*out = v;
	return n;
}

static void round_trip(const uint8_t *data, size_t size)
{
	struct list *lists;
	size_t n = make_lists(data, size, &lists), at = 0;
	struct rows rs = { 0 };
	struct ps_tri_writer w;

	ps_tri_writer_init(&w, emit, &rs);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT(ps_tri_writer_add(&w, lists[i].code, lists[i].ids, lists[i].n) == 0);
	FUZZ_ASSERT(ps_tri_writer_finish(&w) == 0);
	for (size_t r = 0; r < rs.n; r++) {
		struct ps_tri_row row;

		/* A compressed row with a byte of its frame changed is refused (its checksum, its
		 * declared size, one frame), or decompresses to the very same row (a byte zstd
		 * did not use): never to other lists. */
		if (ps_tri_row_compressed(rs.data[r], rs.len[r]) && rs.len[r] > 1 && size) {
			size_t at = 1 + (data[r % size] * 131u + r) % (rs.len[r] - 1), n1, n2;
			const unsigned char *p1, *p2;

			rs.data[r][at] ^= 0x5a;
			if (ps_tri_row_unpack(&z, rs.data[r], rs.len[r], &p1, &n1)) {
				rs.data[r][at] ^= 0x5a;
				FUZZ_ASSERT(ps_tri_row_unpack(&zlook, rs.data[r], rs.len[r], &p2, &n2));
				FUZZ_ASSERT(n1 == n2 && memcmp(p1, p2, n1) == 0);
			} else {
				rs.data[r][at] ^= 0x5a;
			}
		}
		FUZZ_ASSERT(ps_tri_row_open(&row, rs.first[r], rs.data[r], rs.len[r], &z));
		while (ps_tri_row_next(&row)) {
			FUZZ_ASSERT(at < n);
			const struct list *l = &lists[at++];
			FUZZ_ASSERT(row.code == l->code && row.ndocs == l->n);
			uint32_t *ids = ps_malloc(l->n * sizeof(*ids));
			FUZZ_ASSERT(ps_tri_list_decode(&row, ids) == l->n);
			FUZZ_ASSERT(memcmp(ids, l->ids, l->n * sizeof(*ids)) == 0);
			free(ids);
			/* The lookup a search makes finds the same ids among the first 4096. */
			uint64_t bits[64] = { 0 };
			FUZZ_ASSERT(ps_tri_row_bits(rs.first[r], rs.data[r], rs.len[r], l->code, bits,
						    4096, &zlook));
			for (size_t k = 0; k < l->n; k++)
				if (l->ids[k] < 4096)
					FUZZ_ASSERT((bits[l->ids[k] / 64] >> (l->ids[k] % 64)) & 1);
		}
		free(rs.data[r]);
	}
	FUZZ_ASSERT(at == n);
	for (size_t i = 0; i < n; i++)
		free(lists[i].ids);
	free(lists);
	free(rs.first);
	free(rs.data);
	free(rs.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_any(data, size);
	round_trip(data, size);
	return 0;
}
