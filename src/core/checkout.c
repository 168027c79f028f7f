/*
 * `checkout` (see checkout.h): plan, check, then apply.
 *
 * 1. Plan: find the target sync, read the folder's manifest, and list what to delete and what to
 *    write (the store's diff from the manifest's sync, or the whole snapshot).
 * 2. Check every planned path before touching the disk, so an unsafe path refuses the checkout
 *    with the folder exactly as it was (not even created).
 * 3. Apply: remove the old manifest, delete, write, then write the new manifest atomically.
 *
 * Every file-system step is relative to a directory descriptor: a path is walked one component
 * at a time with openat(O_NOFOLLOW | O_DIRECTORY), so nothing below the folder is ever resolved
 * through a symlink, whoever put it there. Where a directory is needed and a symlink or file
 * stands, that entry is ours (it was in a snapshot, or at the snapshot's own path) and is
 * replaced, never followed. Files are written to a temporary name in their directory and renamed
 * into place, so a reader sees the old or the new content, not half of one.
 *
 * This file uses `goto cleanup` for releases.
 */
#include "core/checkout.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/path.h"

#define MANIFEST_MAX (64 * 1024)  /* a manifest is a few dozen bytes; refuse anything huge */
#define MANIFEST_VERSION 1

/* One entry to write: a snapshot file or the new side of a change. */
struct op {
	char *path;
	uint32_t mode;
	char sha[PS_SHA_HEX];
	int64_t size;           /* -1 unknown */
};

struct plan {
	struct op *writes;
	size_t nwrites, capwrites;
	struct ps_strv deletes;
};

/* State while applying. */
struct apply {
	struct ps_store *store;
	const char *dir;        /* for messages */
	int rootfd;
	/* The parent directory of the last write, kept open: snapshots are sorted by path, so
	 * neighbours share it. Dropped whenever a directory is removed. */
	char *cached_dir;
	int cached_fd;
	unsigned tmp_counter;
	struct ps_checkout_stats *stats;
};

static void plan_dispose(struct plan *pl)
{
	for (size_t i = 0; i < pl->nwrites; i++)
		free(pl->writes[i].path);
	free(pl->writes);
	ps_strv_dispose(&pl->deletes);
}

static void plan_add_write(struct plan *pl, const char *path, uint32_t mode, const char *sha,
			   int64_t size)
{
	struct op *o;

	if (pl->nwrites == pl->capwrites) {
		pl->capwrites = pl->capwrites ? pl->capwrites * 2 : 64;
		pl->writes = ps_realloc(pl->writes, pl->capwrites * sizeof(*pl->writes));
	}
	o = &pl->writes[pl->nwrites++];
	o->path = ps_strdup(path);
	o->mode = mode;
	snprintf(o->sha, sizeof(o->sha), "%s", sha);
	o->size = size;
}

static int collect_snapshot(void *ud, const struct ps_file *f)
{
	plan_add_write(ud, f->path, f->mode, f->sha, f->size);
	return 0;
}

static int count_snapshot(void *ud, const struct ps_file *f)
{
	(void)f;
	(*(int64_t *)ud)++;
	return 0;
}

void ps_checkout_stats_dispose(struct ps_checkout_stats *stats)
{
	if (stats)
		ps_strv_dispose(&stats->skipped_paths);
}

/* ---- the manifest ---- */

struct manifest {
	bool present;
	char *project;
	int64_t project_id;
	int64_t sync_id;
};

static int manifest_bad(const char *dir, const char *why)
{
	return ps_error_set(PS_EINVAL, "bad_manifest",
			    "%s/%s is not a projsync checkout manifest (%s); remove it to check out "
			    "into this folder", dir, PS_CHECKOUT_MANIFEST, why);
}

/* Reads the manifest of the folder open at `rootfd` (-1: the folder does not exist). */
static int manifest_read(int rootfd, const char *dir, struct manifest *m)
{
	char buf[MANIFEST_MAX + 1];
	size_t len = 0;
	json_t *j = NULL, *project, *sync_id, *project_id;
	json_error_t jerr;
	ssize_t r;
	int fd, rc = 0;

	memset(m, 0, sizeof(*m));
	if (rootfd < 0)
		return 0;
	fd = openat(rootfd, PS_CHECKOUT_MANIFEST, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP)
			return manifest_bad(dir, "it is a symlink");
		return ps_error_set(PS_EIO, NULL, "cannot read %s/%s: %s", dir,
				    PS_CHECKOUT_MANIFEST, strerror(errno));
	}
	while (len <= MANIFEST_MAX && (r = read(fd, buf + len, MANIFEST_MAX + 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	if (len > MANIFEST_MAX)
		return manifest_bad(dir, "too large");
	j = json_loadb(buf, len, 0, &jerr);
	if (!j || !json_is_object(j)) {
		rc = manifest_bad(dir, "not a JSON object");
		goto cleanup;
	}
	project = json_object_get(j, "project");
	sync_id = json_object_get(j, "sync_id");
	project_id = json_object_get(j, "project_id");
	if (!json_is_string(project) || !json_is_integer(sync_id)) {
		rc = manifest_bad(dir, "no project or sync_id");
		goto cleanup;
	}
	m->present = true;
	m->project = ps_strdup(json_string_value(project));
	m->sync_id = json_integer_value(sync_id);
	m->project_id = json_is_integer(project_id) ? json_integer_value(project_id) : 0;
cleanup:
	json_decref(j);
	return rc;
}

static void manifest_dispose(struct manifest *m)
{
	free(m->project);
	m->project = NULL;
}

/* ---- file-system steps, all relative to directory descriptors ---- */

static int io_error(const struct apply *a, const char *what, const char *path, int err)
{
	return ps_error_set(PS_EIO, NULL, "checkout into %s: cannot %s '%s': %s", a->dir, what,
			    path, strerror(err));
}

/*
 * Opens the directory named by the first `len` bytes of `rel` below `rootfd`, one component at
 * a time and never through a symlink. With `create`, a missing component is made (0777 & umask,
 * like mkdir -p) and a symlink or file standing where a directory is needed is replaced.
 * Returns a new descriptor, or -1 with errno set (ENOENT/ENOTDIR/ELOOP without `create`: the
 * directory is not there as a real directory).
 */
static int open_dirs(int rootfd, const char *rel, size_t len, bool create)
{
	char name[NAME_MAX + 1];
	size_t i = 0;
	int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);

	while (fd >= 0 && i < len) {
		size_t j = i;
		int next, err;

		while (j < len && rel[j] != '/')
			j++;
		if (j - i > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, rel + i, j - i);
		name[j - i] = '\0';
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && create) {
			if (errno == ELOOP || errno == ENOTDIR) {
				/* A symlink or a file of an older snapshot where the new one has a
				 * directory: remove the entry itself (unlinkat never follows). */
				if (unlinkat(fd, name, 0) != 0 && errno != ENOENT)
					goto fail;
			} else if (errno != ENOENT) {
				goto fail;
			}
			if (mkdirat(fd, name, 0777) != 0 && errno != EEXIST)
				goto fail;
			next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0)
			goto fail;
		close(fd);
		fd = next;
		i = j < len ? j + 1 : j;
		continue;
fail:
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static void drop_cached_dir(struct apply *a)
{
	if (a->cached_fd >= 0)
		close(a->cached_fd);
	a->cached_fd = -1;
	free(a->cached_dir);
	a->cached_dir = NULL;
}

/* The parent directory of `path` (created as needed), borrowed from the cache. */
static int parent_fd(struct apply *a, const char *path, const char **base)
{
	size_t dlen = ps_path_dirname_len(path, strlen(path));
	int fd;

	*base = dlen ? path + dlen + 1 : path;
	if (a->cached_dir && strlen(a->cached_dir) == dlen &&
	    memcmp(a->cached_dir, path, dlen) == 0)
		return a->cached_fd;
	drop_cached_dir(a);
	fd = open_dirs(a->rootfd, path, dlen, true);
	if (fd < 0)
		return -1;
	a->cached_dir = ps_strndup(path, dlen);
	a->cached_fd = fd;
	return fd;
}

/*
 * Removes the empty directories along `path` from its parent up, stopping at the first one that
 * is not empty (or not ours to remove) and never touching the folder itself.
 */
static void prune_empty_parents(struct apply *a, const char *path)
{
	size_t dlen = ps_path_dirname_len(path, strlen(path));

	while (dlen > 0) {
		size_t plen = ps_path_dirname_len(path, dlen);
		const char *base = plen ? path + plen + 1 : path;
		char name[NAME_MAX + 1];
		size_t blen = dlen - (size_t)(base - path);
		int fd, rc;

		if (blen > NAME_MAX)
			return;
		fd = open_dirs(a->rootfd, path, plen, false);
		if (fd < 0)
			return;
		memcpy(name, base, blen);
		name[blen] = '\0';
		rc = unlinkat(fd, name, AT_REMOVEDIR);
		close(fd);
		if (rc != 0)
			return;
		drop_cached_dir(a);
		dlen = plen;
	}
}

/* Deletes one path of the previous snapshot, if it is still there. */
static int delete_path(struct apply *a, const char *path)
{
	size_t dlen = ps_path_dirname_len(path, strlen(path));
	const char *base = dlen ? path + dlen + 1 : path;
	int fd = open_dirs(a->rootfd, path, dlen, false), rc = 0;

	if (fd < 0) {
		/* A parent is gone, or is no longer a real directory: nothing of ours is below. */
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return 0;
		return io_error(a, "open the directory of", path, errno);
	}
	if (unlinkat(fd, base, 0) == 0) {
		a->stats->deleted++;
	} else if (errno == EISDIR || errno == EPERM) {
		/* A submodule's directory: removed when empty; anything inside was put there by
		 * someone else and stays. */
		if (unlinkat(fd, base, AT_REMOVEDIR) == 0) {
			a->stats->deleted++;
			drop_cached_dir(a);
		} else if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
			rc = io_error(a, "remove", path, errno);
		}
	} else if (errno != ENOENT) {
		rc = io_error(a, "remove", path, errno);
	}
	close(fd);
	if (rc == 0)
		prune_empty_parents(a, path);
	return rc;
}

/* Streams a regular file through git's blob hash. False when it cannot be read. */
static bool file_blob_sha(int fd, int64_t size, char out[PS_SHA_HEX])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
	char header[64];
	unsigned mdlen = 0;
	int64_t total = 0;
	ssize_t r;
	bool ok = false;

	if (!ctx)
		return false;
	snprintf(header, sizeof(header), "blob %lld", (long long)size);
	if (!EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
	    !EVP_DigestUpdate(ctx, header, strlen(header) + 1))
		goto cleanup;
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		total += r;
		if (total > size || !EVP_DigestUpdate(ctx, buf, (size_t)r))
			goto cleanup;
	}
	if (r < 0 || total != size || !EVP_DigestFinal_ex(ctx, md, &mdlen))
		goto cleanup;
	for (unsigned i = 0; i < mdlen && i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	ok = true;
cleanup:
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* True when the regular file `name` already holds blob `sha` with permission bits `perm`. */
static bool file_is_current(int pfd, const char *name, const struct stat *st, unsigned perm,
			    const struct op *o)
{
	char sha[PS_SHA_HEX];
	struct stat fst;
	bool same = false;
	int fd;

	if (!S_ISREG(st->st_mode) || (st->st_mode & 07777) != perm ||
	    (o->size >= 0 && st->st_size != o->size))
		return false;
	/* O_NONBLOCK: if the entry was swapped for a FIFO since the stat, do not hang on it. */
	fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) &&
	    file_blob_sha(fd, (int64_t)fst.st_size, sha))
		same = strcmp(sha, o->sha) == 0;
	close(fd);
	return same;
}

/* Puts the temporary entry `tmp` in place of `name`, replacing an empty directory if one is in
 * the way. Removes `tmp` on failure. */
static int put_in_place(struct apply *a, int pfd, const char *tmp, const char *name,
			const char *path)
{
	int err;

	if (renameat(pfd, tmp, pfd, name) == 0)
		return 0;
	err = errno;
	if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
		/* The cached directory is pfd itself, the parent of what is removed here, so
		 * the cache stays valid. */
		if (unlinkat(pfd, name, AT_REMOVEDIR) == 0) {
			if (renameat(pfd, tmp, pfd, name) == 0)
				return 0;
			err = errno;
		} else {
			err = errno;
			unlinkat(pfd, tmp, 0);
			if (err == ENOTEMPTY || err == EEXIST)
				return ps_error_set(PS_EIO, "directory_in_the_way",
						    "checkout into %s: cannot write '%s': a non-empty "
						    "directory is in the way", a->dir, path);
			return io_error(a, "replace the directory", path, err);
		}
	}
	unlinkat(pfd, tmp, 0);
	return io_error(a, "write", path, err);
}

static void next_tmp_name(struct apply *a, char *out, size_t outlen)
{
	snprintf(out, outlen, ".projsync-%ld-%u.tmp", (long)getpid(), a->tmp_counter++);
}

static int write_regular(struct apply *a, int pfd, const char *name, const char *path,
			 unsigned perm, const void *data, size_t len)
{
	char tmp[64];
	const char *p = data;
	int fd = -1, tries = 0, err;

	do {
		next_tmp_name(a, tmp, sizeof(tmp));
		fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
	} while (fd < 0 && errno == EEXIST && ++tries < 100);
	if (fd < 0)
		return io_error(a, "create a file for", path, errno);
	/* The mode is the snapshot's, not the umask's: 0755 must stay executable. */
	if (fchmod(fd, perm) != 0)
		goto fail;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += w;
		len -= (size_t)w;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	return put_in_place(a, pfd, tmp, name, path);
fail:
	err = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(pfd, tmp, 0);
	return io_error(a, "write", path, err);
}

static int write_symlink(struct apply *a, int pfd, const char *name, const struct op *o,
			 const char *target)
{
	char tmp[64];
	int tries = 0, rc;

	do {
		next_tmp_name(a, tmp, sizeof(tmp));
		rc = symlinkat(target, pfd, tmp);
	} while (rc != 0 && errno == EEXIST && ++tries < 100);
	if (rc != 0)
		return io_error(a, "create a symlink for", o->path, errno);
	return put_in_place(a, pfd, tmp, name, o->path);
}

static void skip(struct apply *a, int pfd, const char *name, const struct stat *st, bool exists,
		 const char *path)
{
	/* The entry at this path, if any, is not this snapshot's content: remove it rather than
	 * let it pass for the snapshot's. A directory there is not ours and stays. */
	if (exists && !S_ISDIR(st->st_mode))
		unlinkat(pfd, name, 0);
	a->stats->skipped++;
	ps_strv_push(&a->stats->skipped_paths, path);
}

/* Writes one snapshot entry and counts it as written or skipped; an entry already in place is
 * left untouched (the unchanged count is derived from the others at the end). */
static int write_entry(struct apply *a, const struct op *o)
{
	const char *name;
	struct stat st;
	bool exists;
	void *data = NULL;
	size_t len = 0;
	int pfd, rc = 0;

	pfd = parent_fd(a, o->path, &name);
	if (pfd < 0)
		return io_error(a, "create the directory of", o->path, errno);
	exists = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;

	if (o->mode == PS_MODE_COMMIT) {
		/* A submodule is shown as an empty directory; what someone cloned into it stays. */
		if (exists && S_ISDIR(st.st_mode)) {
			return 0; /* unchanged: counted at the end */
		}
		if (exists && unlinkat(pfd, name, 0) != 0 && errno != ENOENT)
			return io_error(a, "replace", o->path, errno);
		if (mkdirat(pfd, name, 0777) != 0)
			return io_error(a, "create the directory", o->path, errno);
		a->stats->written++;
		return 0;
	}

	if ((o->mode & 0170000u) == 0100000u) {
		unsigned perm = (o->mode & 0111u) ? 0755 : 0644;

		if (exists && file_is_current(pfd, name, &st, perm, o)) {
			return 0; /* unchanged: counted at the end */
		}
		rc = ps_store_blob_get(a->store, o->sha, &data, &len);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear();
			skip(a, pfd, name, &st, exists, o->path);
			return 0;
		}
		if (rc < 0)
			return ps_error_wrap(rc, "checkout of '%s': ", o->path);
		rc = write_regular(a, pfd, name, o->path, perm, data, len);
	} else if (o->mode == PS_MODE_LINK) {
		char cur[PATH_MAX + 1];
		ssize_t curlen;

		rc = ps_store_blob_get(a->store, o->sha, &data, &len);
		if (rc == PS_ENOTFOUND) {
			ps_error_clear();
			skip(a, pfd, name, &st, exists, o->path);
			return 0;
		}
		if (rc < 0)
			return ps_error_wrap(rc, "checkout of '%s': ", o->path);
		if (len == 0 || len > PATH_MAX || memchr(data, '\0', len)) {
			/* No symlink can hold this target. */
			free(data);
			skip(a, pfd, name, &st, exists, o->path);
			return 0;
		}
		data = ps_realloc(data, len + 1);
		((char *)data)[len] = '\0';
		if (exists && S_ISLNK(st.st_mode) &&
		    (curlen = readlinkat(pfd, name, cur, sizeof(cur) - 1)) >= 0 &&
		    (size_t)curlen == len && memcmp(cur, data, len) == 0) {
			free(data);
			return 0; /* unchanged: counted at the end */
		}
		rc = write_symlink(a, pfd, name, o, data);
	} else {
		/* A mode git does not produce for a blob: nothing sensible to write. */
		skip(a, pfd, name, &st, false, o->path);
		return 0;
	}
	free(data);
	if (rc == 0)
		a->stats->written++;
	return rc;
}

static int manifest_write(struct apply *a, const struct ps_project *p, const struct ps_sync *sync)
{
	json_t *j = json_pack("{s:i, s:s, s:I, s:I, s:s?}", "version", MANIFEST_VERSION,
			      "project", p->name, "project_id", (json_int_t)p->id,
			      "sync_id", (json_int_t)sync->id, "commit", sync->commit);
	char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	char *body;
	int rc;

	json_decref(j);
	if (!text)
		return ps_error_set(PS_ENOMEM, NULL, "cannot encode the checkout manifest");
	body = ps_asprintf("%s\n", text);
	free(text);
	rc = write_regular(a, a->rootfd, PS_CHECKOUT_MANIFEST, PS_CHECKOUT_MANIFEST, 0644, body,
			   strlen(body));
	free(body);
	return rc;
}

/* ---- planning ---- */

static int check_path(const char *path)
{
	const char *p = path;

	if (!ps_path_is_safe(path))
		return ps_error_set(PS_EINVAL, "unsafe_path",
				    "refusing to check out: unsafe path '%s' in the snapshot "
				    "(absolute, '..', '.', empty component or .git); nothing was "
				    "written", path);
	if (strcasecmp(path, PS_CHECKOUT_MANIFEST) == 0)
		return ps_error_set(PS_EINVAL, "unsafe_path",
				    "refusing to check out: the snapshot has a file '%s', the name "
				    "of the checkout manifest; nothing was written", path);
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (len > NAME_MAX)
			return ps_error_set(PS_EINVAL, "path_too_long",
					    "refusing to check out: a component of '%s' is longer "
					    "than %d bytes; nothing was written", path, NAME_MAX);
		if (!slash)
			break;
		p = slash + 1;
	}
	if (strlen(path) >= PATH_MAX)
		return ps_error_set(PS_EINVAL, "path_too_long",
				    "refusing to check out: path '%.80s...' is too long; nothing "
				    "was written", path);
	return 0;
}

/* The target: sync `at` if it is a succeeded sync of `p`, or the latest succeeded one. */
static int resolve_target(struct ps_store *s, const struct ps_project *p, int64_t at,
			  struct ps_sync **out)
{
	struct ps_sync *sync = NULL;
	int rc;

	if (at <= 0) {
		rc = ps_store_sync_last_succeeded(s, p->id, 0, &sync);
		if (rc == PS_ENOTFOUND)
			return ps_error_set(PS_ENOTFOUND, "no_snapshot",
					    "project '%s' has no succeeded sync to check out",
					    p->name);
		if (rc < 0)
			return rc;
		*out = sync;
		return 0;
	}
	rc = ps_store_sync_get(s, at, &sync);
	if (rc < 0 && rc != PS_ENOTFOUND)
		return rc;
	if (rc == PS_ENOTFOUND || sync->project_id != p->id ||
	    sync->status != PS_SYNC_SUCCEEDED) {
		ps_sync_free(sync);
		return ps_error_set(PS_ENOTFOUND, "sync_not_found",
				    "sync %lld is not a succeeded sync of project '%s'",
				    (long long)at, p->name);
	}
	*out = sync;
	return 0;
}

/* Whether sync `id` is a succeeded sync of `p` (the manifest's sync may be long gone). */
static bool usable_base(struct ps_store *s, const struct ps_project *p, int64_t id)
{
	struct ps_sync *sync = NULL;
	bool ok;

	if (id <= 0 || ps_store_sync_get(s, id, &sync) < 0) {
		ps_error_clear();
		return false;
	}
	ok = sync->project_id == p->id && sync->status == PS_SYNC_SUCCEEDED;
	ps_sync_free(sync);
	return ok;
}

static int plan_from_diff(struct ps_store *s, const struct ps_project *p, int64_t from,
			  int64_t to, struct plan *pl)
{
	struct ps_change *ch = NULL;
	size_t n = 0;
	int rc = ps_store_diff(s, p->id, from, to, &ch, &n);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const struct ps_change *c = &ch[i];
		switch (c->status) {
		case PS_CHANGE_DELETED:
			ps_strv_push(&pl->deletes, c->path);
			break;
		case PS_CHANGE_RENAMED:
			ps_strv_push(&pl->deletes, c->previous_path);
			plan_add_write(pl, c->path, c->mode, c->sha, c->size);
			break;
		case PS_CHANGE_ADDED:
		case PS_CHANGE_MODIFIED:
		case PS_CHANGE_TYPE_CHANGED:
			plan_add_write(pl, c->path, c->mode, c->sha, c->size);
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		ps_change_dispose(&ch[i]);
	free(ch);
	return 0;
}

/* ---- the whole ---- */

/* Like mkdir -p, with the umask's modes (a checkout is an ordinary folder). */
static int make_dir(const char *dir)
{
	char *p = ps_strdup(dir);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0777) != 0 && errno != EEXIST) {
				rc = ps_error_set(PS_EIO, NULL, "cannot create directory %s: %s", p,
						  strerror(errno));
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}

int ps_checkout(struct ps_store *s, const struct ps_project *p, int64_t at_sync, const char *dir,
		struct ps_checkout_stats *stats)
{
	struct ps_sync *target = NULL;
	struct manifest m = { 0 };
	struct plan pl = { 0 };
	struct apply a = { .store = s, .dir = dir, .rootfd = -1, .cached_fd = -1, .stats = stats };
	int rc;

	memset(stats, 0, sizeof(*stats));
	if (!dir || !*dir)
		return ps_error_set(PS_EINVAL, NULL, "checkout needs a folder");

	rc = resolve_target(s, p, at_sync, &target);
	if (rc < 0)
		goto cleanup;
	stats->sync_id = target->id;

	/* The folder itself is the caller's choice and may be reached through a symlink; only
	 * what lies below it is walked without following. */
	a.rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (a.rootfd < 0 && errno != ENOENT) {
		rc = ps_error_set(PS_EIO, NULL, "cannot open %s: %s", dir, strerror(errno));
		goto cleanup;
	}
	rc = manifest_read(a.rootfd, dir, &m);
	if (rc < 0)
		goto cleanup;
	if (m.present && strcmp(m.project, p->name) != 0) {
		rc = ps_error_set(PS_ECONFLICT, "other_project",
				  "%s holds a checkout of project '%s', not '%s'; use another "
				  "folder", dir, m.project, p->name);
		goto cleanup;
	}

	/* A manifest of a project that was removed and added again under the same name names
	 * syncs that are not this project's: then write everything. */
	if (m.present && (m.project_id == 0 || m.project_id == p->id) &&
	    usable_base(s, p, m.sync_id)) {
		stats->from_sync_id = m.sync_id;
		rc = ps_store_snapshot_each(s, p->id, target->id, NULL, count_snapshot,
					    &stats->total);
		if (rc == 0 && m.sync_id != target->id)
			rc = plan_from_diff(s, p, m.sync_id, target->id, &pl);
	} else {
		stats->full = true;
		rc = ps_store_snapshot_each(s, p->id, target->id, NULL, collect_snapshot, &pl);
		stats->total = (int64_t)pl.nwrites;
	}
	if (rc < 0)
		goto cleanup;

	/* Every path is checked before the first change, so a refused checkout leaves the folder
	 * exactly as it was. */
	for (size_t i = 0; i < pl.deletes.n; i++)
		if ((rc = check_path(pl.deletes.v[i])) < 0)
			goto cleanup;
	for (size_t i = 0; i < pl.nwrites; i++)
		if ((rc = check_path(pl.writes[i].path)) < 0)
			goto cleanup;

	if (!stats->full && m.sync_id == target->id) {
		stats->unchanged = stats->total;
		goto cleanup; /* already there; the manifest stays as it is */
	}

	if (a.rootfd < 0) {
		rc = make_dir(dir);
		if (rc < 0)
			goto cleanup;
		a.rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (a.rootfd < 0) {
			rc = ps_error_set(PS_EIO, NULL, "cannot open %s: %s", dir, strerror(errno));
			goto cleanup;
		}
	}
	/* From here the folder no longer holds the manifest's sync: if we stop half-way, the next
	 * run must write everything rather than trust a diff from a state that is not there. */
	if (m.present && unlinkat(a.rootfd, PS_CHECKOUT_MANIFEST, 0) != 0 && errno != ENOENT) {
		rc = io_error(&a, "remove", PS_CHECKOUT_MANIFEST, errno);
		goto cleanup;
	}
	/* Deletions first: a path that was a file or symlink may now be a directory. */
	for (size_t i = 0; i < pl.deletes.n; i++)
		if ((rc = delete_path(&a, pl.deletes.v[i])) < 0)
			goto cleanup;
	for (size_t i = 0; i < pl.nwrites; i++)
		if ((rc = write_entry(&a, &pl.writes[i])) < 0)
			goto cleanup;
	drop_cached_dir(&a);
	rc = manifest_write(&a, p, target);
	if (rc < 0)
		goto cleanup;
	stats->unchanged = stats->total - stats->written - stats->skipped;
	if (stats->unchanged < 0)
		stats->unchanged = 0;

cleanup:
	drop_cached_dir(&a);
	if (a.rootfd >= 0)
		close(a.rootfd);
	manifest_dispose(&m);
	plan_dispose(&pl);
	ps_sync_free(target);
	return rc;
}

/* The planning check alone, for fuzz/fuzz_checkout_path.c (core/checkout_internal.h). */
int ps_checkout_check_path(const char *path)
{
	return check_path(path);
}
