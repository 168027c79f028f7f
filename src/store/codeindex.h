/*
 * projsync's own trigram index format (store.h, "code index"), independent of any backend: the
 * SQLite backend stores it (sqlite/sqlite_code.c, migration 0017), and so does PostgreSQL
 * (postgres/pg_code.c, its migration 0017).
 *
 * A document is a blob, named by a 32-bit id. Its terms are the DISTINCT trigrams of printable
 * ASCII bytes and tabs in its content, ASCII letters folded to lower case, U+212A (KELVIN
 * SIGN) read as `k` and U+017F (LONG S) as `s` (PCRE2's caseless matching lets `k` and `s`
 * match them); any other byte only separates. A trigram is a number below PS_TRI_CODES.
 *
 * The index is a set of segments; a segment is a few rows, each holding the posting lists of
 * consecutive trigrams: a directory, then the lists.
 *
 *     row   := varint ntri, varint (bytes of the entries), ntri x entry, ntri x list
 *     entry := varint (trigram - previous trigram; the row's first trigram for the first),
 *              varint (ndocs * 2 + dense)
 *     list  := varint first id, then
 *              sparse: varint (id - previous id) for each next one (all > 0)
 *              dense:  varint span (last id - first id), then span bits (LSB first): bit k
 *                      set if first id + k + 1 is in the list
 *
 * The writer takes whichever form is smaller (dense: a trigram in most documents of the
 * segment). A list's length in bytes is not stored: a reader skips it by its varints or its
 * span, so a lookup scans at most one row (PS_TRI_ROW_BYTES, or PS_TRI_ROW_STORED compressed).
 *
 * A row is keyed by its first trigram, so the row that may hold trigram t is the one with the
 * largest key <= t.
 *
 * A row is stored as it is, or compressed (schema 25):
 *
 *     stored := row                   (starts with varint ntri >= 1: never a 0x00 byte)
 *             | 0x00, zstd frame      (one frame, content size and checksum in its header, of a
 *                                      row of at most PS_TRI_ZROW_MAX bytes)
 *
 * The writer compresses every row it finishes (PS_TRI_ZSTD_LEVEL) and keeps the frame when the
 * stored row is smaller that way (the lists' varints and bitmaps shrink by about a quarter:
 * docs/performance.md, "Schema 25"). A reader decompresses into a buffer it owns and reuses
 * (struct ps_tri_zbuf); a frame that is damaged, holds more than one frame, declares no size or
 * more than PS_TRI_ZROW_MAX, or whose content is not a row, is a malformed row, as a damaged raw
 * row is. Rows written before schema 25 are raw; opening the store compresses them
 * (sqlite/sqlite_code.c and postgres/pg_code.c, ps_*_code_convert).
 */
#ifndef PS_STORE_CODEINDEX_H
#define PS_STORE_CODEINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A trigram's number: its three folded bytes (7 bits each; tab, ' '..'~' without 'A'..'Z'),
 * the first in the high bits, so a rolling shift makes it. */
#define PS_TRI_BITS 21
#define PS_TRI_CODES ((uint32_t)1 << PS_TRI_BITS)
/* A row is closed once its lists reach this many bytes (one long list may exceed it). A lookup
 * reads and scans one row per segment: 8 KiB searched as fast as FTS5 did on libgit2, 16 KiB
 * took ~0.5 ms more per rare literal; the index is the same size either way. */
#define PS_TRI_ROW_BYTES (8u * 1024)
/* A compressed row is closed once its lists reach about this many bytes as stored (the writer
 * estimates from the previous row's ratio, between PS_TRI_ROW_BYTES and twice that raw): a
 * lookup reads as many bytes as from a raw row of PS_TRI_ROW_BYTES, and SQLite keeps a record of
 * 8,153-9,200 bytes in two overflow pages and under 1 KiB of its leaf page (with 4 KiB
 * pages; records of 5-8 KiB keep 1.5-3.5 KiB in the leaf, which packs them badly: 0.65 MiB of
 * leaf space unused on libgit2's index, docs/performance.md, "Schema 25"). */
#define PS_TRI_ROW_STORED 8700u
/* The largest row that is stored compressed (larger ones stay raw), and so the most a reader
 * ever decompresses: a row is at most 2 x PS_TRI_ROW_BYTES plus its last list, a list at most a
 * bitmap of its segment's ids (1 MiB: 8M documents in one segment; a row beyond that is a list
 * of a store far larger than any measured, and stays readable raw). */
#define PS_TRI_ZROW_MAX (1u << 20)
/* zstd's level for rows: on libgit2's index level 1 left 3.14 MB of 4.09, 3 left 3.09 and 19
 * 3.03 (docs/performance.md, "Schema 25"); decompression costs the same at every level. */
#define PS_TRI_ZSTD_LEVEL 3

/* The folded byte a byte stands for (0: it separates), and the trigram of 3 bytes (-1 if one
 * separates). */
unsigned ps_tri_symbol(unsigned char c);
int32_t ps_tri_of(const char *three);

/*
 * The distinct trigrams of one document. `seen` is one bit per trigram (256 KiB, in the
 * CPU's cache), cleared after each document through the list of the trigrams it set.
 */
struct ps_tri_doc {
	uint64_t *seen; /* PS_TRI_CODES bits, allocated on first use */
	uint32_t *codes; /* the trigrams of the last document, in order of first occurrence */
	size_t n, cap;
};
void ps_tri_doc_extract(struct ps_tri_doc *d, const void *data, size_t len);
void ps_tri_doc_dispose(struct ps_tri_doc *d);

/* Postings collected in memory: (trigram, id) pairs, ids added in increasing order. */
struct ps_tri_acc {
	uint32_t *code, *id;
	size_t n, cap;
	uint32_t max_id;
	size_t docs; /* documents with a trigram added since the last clear (a segment's docs) */
};
void ps_tri_acc_add(struct ps_tri_acc *a, uint32_t id, const uint32_t *codes, size_t n);
void ps_tri_acc_clear(struct ps_tri_acc *a);
void ps_tri_acc_dispose(struct ps_tri_acc *a);

/* zstd state for rows, created on first use and reused row after row: the bytes a compressed
 * row decompresses to (or a packed row), and the contexts. */
struct ps_tri_zbuf {
	unsigned char *data;
	size_t cap;
	void *cctx, *dctx; /* ZSTD_CCtx, ZSTD_DCtx */
};
void ps_tri_zbuf_dispose(struct ps_tri_zbuf *z);
/* The bytes to store for the raw row `row`: its compressed form in z->data when that is
 * smaller, else `row` itself (*out points at one of the two); 0 or PS_EFAIL (zstd failed). */
int ps_tri_row_pack(struct ps_tri_zbuf *z, const unsigned char *row, size_t len,
		    const unsigned char **out, size_t *out_len);
/* Whether stored bytes are a compressed row. */
bool ps_tri_row_compressed(const unsigned char *data, size_t len);
/* The raw row of stored bytes: `data` itself, or, compressed, decompressed into z->data
 * (valid until z's next use); false if the frame is malformed (see the format above). */
bool ps_tri_row_unpack(struct ps_tri_zbuf *z, const unsigned char *data, size_t len,
		       const unsigned char **out, size_t *out_len);

/* Writes rows: called once per finished row with its first trigram and its bytes as stored
 * (ps_tri_row_pack). */
typedef int (*ps_tri_emit_fn)(void *ctx, uint32_t first, const unsigned char *data, size_t len);

struct ps_tri_writer {
	ps_tri_emit_fn emit;
	void *ctx;
	unsigned char *dir, *post;
	size_t ndir, npost, capdir, cappost;
	uint32_t ntri, first, prev;
	uint64_t postings; /* written in all */
	size_t target; /* the raw bytes at which the row is closed (0: not estimated yet) */
	struct ps_tri_zbuf z;
	int rc;
};
void ps_tri_writer_init(struct ps_tri_writer *w, ps_tri_emit_fn emit, void *ctx);
/* Adds trigram `code`'s list (ids strictly increasing; codes added in increasing order). */
int ps_tri_writer_add(struct ps_tri_writer *w, uint32_t code, const uint32_t *ids, size_t n);
/* Writes the last row; frees the writer's buffers. */
int ps_tri_writer_finish(struct ps_tri_writer *w);

/* Sorts the accumulator's pairs by trigram and writes them as one segment. */
int ps_tri_acc_write(struct ps_tri_acc *a, struct ps_tri_writer *w);

/* One row, parsed: its directory is read entry by entry. */
struct ps_tri_row {
	const unsigned char *p, *dir_end, *end, *post;
	uint32_t left, code;
	uint32_t ndocs;
	bool dense;
	const unsigned char *list; /* the current entry's list */
};
/* Opens a row as stored, raw or compressed (decompressed into z, which must outlive the reading
 * of the row; NULL: a compressed row is refused); false if the row is malformed. */
bool ps_tri_row_open(struct ps_tri_row *r, uint32_t first, const unsigned char *data, size_t len,
		     struct ps_tri_zbuf *z);
/* Moves to the next entry: false at the end (or on a malformed row). */
bool ps_tri_row_next(struct ps_tri_row *r);
/* Decodes the current entry's list into ids[] (room for r->ndocs); returns how many. */
size_t ps_tri_list_decode(const struct ps_tri_row *r, uint32_t *ids);
/* Calls fn for each id of the current entry's list. */
void ps_tri_list_each(const struct ps_tri_row *r, void (*fn)(void *ctx, uint32_t id), void *ctx);

/* ---- queries (the same evaluation on every backend) ---- */

struct ps_code_query;

/* Trigrams per literal: a long literal's trigrams mostly agree; a handful spread over it
 * narrows as well as all of them and keeps the rows to read few. */
#define PS_TRI_PICKS_MAX 6
/* How many trigrams of a literal a query reads, and the k-th of them (spread over the literal,
 * its first and last always; -1 if it holds a byte no document's trigram does). */
size_t ps_tri_picks(const char *literal);
int32_t ps_tri_pick(const char *literal, size_t k, size_t picks);

/* ORs into the row's bitmap `bits` (ids < nbits) the ids of the current row's list for trigram
 * `code`, if the row (parsed from `first`, data, len as stored; z as for ps_tri_row_open)
 * holds it; false if the row is damaged. */
bool ps_tri_row_bits(uint32_t first, const void *data, size_t len, uint32_t code, uint64_t *bits,
		     int64_t nbits, struct ps_tri_zbuf *z);

/* A backend's lookup: ORs into `bits` the ids of the documents holding trigram `code`, from
 * every segment; 0 or a negative PS_E* code. */
typedef int (*ps_tri_lookup_fn)(void *ctx, uint32_t code, uint64_t *bits);
/* The ids (a new bitmap of `words` 64-bit words) whose document may satisfy `q`: a literal's
 * picked trigrams intersected, AND / OR of the kids; every id for a literal with no trigram. */
int ps_tri_eval(const struct ps_code_query *q, size_t words, ps_tri_lookup_fn lookup, void *ctx,
		uint64_t **out);

/* For a merge: keeps the ids[0..n) whose bit is set in `live` (a bitmap of the ids lo..hi that
 * still have a code_blobs row), in increasing order and once each (the lists of several input
 * segments, which may overlap when several processes wrote them); returns how many. */
size_t ps_tri_ids_keep(uint32_t *ids, size_t n, const uint64_t *live, int64_t lo, int64_t hi);
/*
 * A merge of segments, streamed: input i is a backend's cursor over one segment's rows, whose
 * current entry `entry` gives (NULL once the input ended) and `next` moves on (reading the
 * segment's next row when the entry was its row's last; 0 or a PS_E* code).
 */
typedef struct ps_tri_row *(*ps_tri_entry_fn)(void *ctx, size_t i);
typedef int (*ps_tri_next_fn)(void *ctx, size_t i);
/* What a merge wrote: the range of ids and the documents the new segment holds. */
struct ps_tri_merged {
	uint32_t min_id, max_id;
	int64_t docs;
};
/* Writes the inputs' lists into `w` trigram by trigram, each list the union of the inputs'
 * lists of that trigram with only the ids `live` has (ps_tri_ids_keep; lo..hi covers every
 * input); 0 or the first error of `next` or the writer. */
int ps_tri_merge(size_t n, ps_tri_entry_fn entry, ps_tri_next_fn next, void *ctx,
		 const uint64_t *live, int64_t lo, int64_t hi, struct ps_tri_writer *w,
		 struct ps_tri_merged *out);

/* For a merge: sets the bits of ids[0..n) in `seen` (a bitmap of the ids from lo, which all
 * are) and returns how many were not set yet, so that the merged segment's documents are
 * counted once across all its trigrams (code_segments.docs). */
size_t ps_tri_ids_mark(uint64_t *seen, int64_t lo, const uint32_t *ids, size_t n);

#endif
