/*
 * The pack order of objects, read from git's pack index files (version 2, git's default since
 * 1.5.2): "\377tOc", version 2, a fan-out table of 256 cumulative counts, the sorted ids (20
 * bytes each), their CRC32s, their 31-bit offsets (the top bit set: an index into a table of
 * 64-bit offsets that follows). Version 1 indexes and SHA-256 repositories are left unordered.
 */
#include "source/pack_order.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define OID_RAW 20
#define IDX_HEADER (8 + 256 * 4)

struct want {
	char *sha;
	unsigned char raw[OID_RAW];
	unsigned pack;   /* UINT32_MAX: in no pack read */
	uint64_t offset;
	size_t given;
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool to_raw(const char *sha, unsigned char *raw)
{
	for (size_t i = 0; i < OID_RAW; i++) {
		int hi = ps_hex_digit(sha[2 * i]), lo = hi < 0 ? -1 : ps_hex_digit(sha[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		raw[i] = (unsigned char)(hi << 4 | lo);
	}
	return sha[2 * OID_RAW] == '\0';
}

/* Mapped, not read: an incremental sync of a few blobs touches a few pages of a large index. */
static unsigned char *map_index(const char *path, size_t *len)
{
	struct stat st;
	void *map;
	/* O_NONBLOCK: a FIFO named *.idx (libgit2 skips an index without its pack, so nothing
	 * else opens it) would block the open until a writer came, hanging the sync. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		return NULL;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return NULL;
	*len = (size_t)st.st_size;
	return map;
}

/* Locates the still unplaced wants in one index; a malformed index places none. */
static void read_index(const char *path, unsigned pack, struct want *w, size_t n)
{
	size_t len = 0, count, large_at, nlarge;
	unsigned char *idx = map_index(path, &len);
	const unsigned char *ids, *offs;

	if (!idx)
		return;
	if (len < IDX_HEADER || memcmp(idx, "\377tOc", 4) != 0 || be32(idx + 4) != 2)
		goto out;
	count = be32(idx + 8 + 255 * 4);
	/* ids, CRCs, offsets and the trailing pack and index checksums */
	if (count > (len - IDX_HEADER) / (OID_RAW + 8) ||
	    len < IDX_HEADER + count * (OID_RAW + 8) + 2 * OID_RAW)
		goto out;
	ids = idx + IDX_HEADER;
	offs = ids + count * (OID_RAW + 4);
	large_at = IDX_HEADER + count * (OID_RAW + 8);
	nlarge = (len - large_at - 2 * OID_RAW) / 8;
	for (size_t i = 0; i < n; i++) {
		size_t lo, hi;
		uint32_t off;

		if (w[i].pack != UINT32_MAX)
			continue;
		lo = w[i].raw[0] ? be32(idx + 8 + (w[i].raw[0] - 1) * 4) : 0;
		hi = be32(idx + 8 + w[i].raw[0] * 4);
		if (hi > count || lo > hi)
			goto out;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = memcmp(ids + mid * OID_RAW, w[i].raw, OID_RAW);
			if (c == 0) {
				lo = mid;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo >= hi)
			continue;
		off = be32(offs + lo * 4);
		if (off & 0x80000000u) {
			const unsigned char *p;
			if ((off & 0x7fffffffu) >= nlarge)
				continue;
			p = idx + large_at + (size_t)(off & 0x7fffffffu) * 8;
			w[i].offset = (uint64_t)be32(p) << 32 | be32(p + 4);
		} else {
			w[i].offset = off;
		}
		w[i].pack = pack;
	}
out:
	munmap(idx, len);
}

static int cmp_want(const void *a, const void *b)
{
	const struct want *x = a, *y = b;

	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->given < y->given ? -1 : x->given > y->given;
}

void ps_pack_order(const char *objects_dir, char **shas, size_t n)
{
	struct want *w;
	char *packdir;
	DIR *d;
	struct dirent *de;
	unsigned pack = 0;

	if (n < 2)
		return;
	packdir = ps_asprintf("%s/pack", objects_dir);
	d = opendir(packdir);
	if (!d) {
		free(packdir);
		return;
	}
	w = ps_calloc(n, sizeof(*w));
	for (size_t i = 0; i < n; i++) {
		w[i].sha = shas[i];
		w[i].given = i;
		w[i].pack = UINT32_MAX;
		if (!to_raw(shas[i], w[i].raw))
			w[i].pack = UINT32_MAX - 1; /* not an id: left for the reader to refuse */
	}
	while ((de = readdir(d)) != NULL && pack < UINT32_MAX - 1) {
		size_t l = strlen(de->d_name);
		char *path;

		if (l <= 4 || strcmp(de->d_name + l - 4, ".idx") != 0)
			continue;
		path = ps_asprintf("%s/%s", packdir, de->d_name);
		read_index(path, pack++, w, n);
		free(path);
	}
	closedir(d);
	free(packdir);
	for (size_t i = 0; i < n; i++)
		if (w[i].pack >= UINT32_MAX - 1)
			w[i].pack = UINT32_MAX;
	qsort(w, n, sizeof(*w), cmp_want);
	for (size_t i = 0; i < n; i++)
		shas[i] = w[i].sha;
	free(w);
}
