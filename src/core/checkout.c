/*
 * `checkout` (see checkout.h): read, plan and check, then apply.
 *
 * 1. Read the target snapshot and the folder's manifest (the entries checkout wrote, with the
 *    stat data they had, like git's index).
 * 2. Plan and check: walk the manifest and the snapshot together in path order; look at each
 *    path on disk once (lstat through the parent, no following) to find local changes, hashing
 *    only what the stat data cannot vouch for. Every path is checked, and every local change
 *    found, before the first change, so a refused checkout leaves the folder exactly as it was
 *    (not even created).
 * 3. Apply: rewrite the manifest to list the old and the new state of every path about to
 *    change (so a crash leaves a manifest that recognises whatever the folder holds), delete,
 *    write, then write the final manifest. A failure of one entry of its own (a name or target
 *    the file system refuses, a non-empty directory in the way) is listed and the rest goes on;
 *    a failure of the file system as a whole stops, still writing a manifest that describes
 *    what the folder now holds.
 *
 * Every file-system step is relative to a directory descriptor: a path is walked one component
 * at a time with openat(O_NOFOLLOW | O_DIRECTORY), so nothing below the folder is ever resolved
 * through a symlink, whoever put it there. Files are written to a temporary name in their
 * directory and renamed into place, so a reader sees the old or the new content, not half of
 * one.
 *
 * This file uses `goto cleanup` for releases.
 */
#include "core/checkout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/project.h"
#include "util/error.h"
#include "util/path.h"

/* A manifest holds one line per entry (~120 bytes): this allows a couple of million. */
#define MANIFEST_MAX ((size_t)256 << 20)
#define MANIFEST_VERSION 2

/* The stat data of an entry as checkout left it (git's index keeps the same fields). */
struct statrec {
	uint32_t st_mode;       /* 0: unknown, the entry is compared by content */
	int64_t size, ino, mtime_s, mtime_ns, ctime_s, ctime_ns;
};

/* One entry of the target snapshot. */
struct op {
	char *path;
	uint32_t mode;
	char sha[PS_SHA_HEX];
	int64_t size;           /* -1 unknown */
};

/* One entry of the manifest. An unfinished manifest may list a path twice (old and new). */
struct owned {
	char *path;
	uint32_t mode;
	char sha[PS_SHA_HEX];
	struct statrec st;
};

struct manifest {
	bool present;
	bool legacy;            /* version 1: names a sync, lists no entries */
	bool complete;          /* false: an unfinished checkout; a listed path may be absent */
	long tmp_pid;           /* unfinished: the process whose temporary files may be left */
	char *project;
	int64_t project_id;
	int64_t sync_id;
	struct timespec mtime;  /* entries changed at or after it are compared by content (racy) */
	struct owned *v;
	size_t n, cap;
};

enum action { ACT_NONE, ACT_KEEP, ACT_WRITE, ACT_DELETE };

/* One path of the union of manifest and snapshot, in path order. */
struct item {
	const char *path;       /* borrowed from the op or the manifest */
	const struct op *t;     /* the target entry, NULL when the snapshot drops the path */
	enum action act;
	/* What the folder holds at the path as checkout's own: after planning the manifest entry
	 * the disk matched (or a target entry found already in place), after applying what was
	 * written. */
	bool owned;
	uint32_t mode;
	char sha[PS_SHA_HEX];
	struct statrec st;
};

struct targets {
	struct op *v;
	size_t n, cap;
};

/* A test hook like core/sync.c's: PROJSYNC_TEST_CHECKOUT_RAISE=<INT|TERM>:<n> raises that
 * signal in this process after the n-th entry written; <n> = "plan" raises it after the first
 * path planned (before anything is written), "apply" once the plan is done and just before the
 * first entry is changed, "manifest" just before the final manifest is written. A test
 * interrupts a checkout at a known point without racing it. */
enum raise_point { RAISE_AFTER_WRITES, RAISE_PLAN, RAISE_APPLY, RAISE_MANIFEST };

struct raise_hook {
	int sig;                /* 0: no hook */
	enum raise_point at;
	long after;             /* RAISE_AFTER_WRITES: the n-th entry written */
};

static void read_raise_hook(struct raise_hook *h)
{
	const char *v = getenv("PROJSYNC_TEST_CHECKOUT_RAISE");
	char name[8] = "", at[16] = "";
	char *end;

	memset(h, 0, sizeof(*h));
	if (!v || sscanf(v, "%7[A-Z]:%15s", name, at) != 2)
		return;
	if (strcmp(at, "plan") == 0) {
		h->at = RAISE_PLAN;
	} else if (strcmp(at, "manifest") == 0) {
		h->at = RAISE_MANIFEST;
	} else if (strcmp(at, "apply") == 0) {
		h->at = RAISE_APPLY;
	} else {
		h->at = RAISE_AFTER_WRITES;
		h->after = strtol(at, &end, 10);
		if (*end || h->after < 1)
			return;
	}
	h->sig = strcmp(name, "INT") == 0 ? SIGINT : strcmp(name, "TERM") == 0 ? SIGTERM : 0;
}

/* Raises the hook's signal if the run is at its point; once: a second signal kills. */
static void raise_at(struct raise_hook *h, enum raise_point at, long written)
{
	if (h->sig && h->at == at && (at != RAISE_AFTER_WRITES || written == h->after)) {
		raise(h->sig);
		h->sig = 0;
	}
}

/* State while planning and applying. */
struct apply {
	struct ps_store *store;
	const struct ps_project *project;
	const char *dir;        /* for messages */
	int rootfd;
	/* The parent directory of the last write, kept open: paths are sorted, so neighbours
	 * share it. Dropped whenever a directory is removed. */
	char *cached_dir;
	int cached_fd;
	/* The same while planning, without creating anything. */
	char *probe_dir;
	int probe_fd;
	struct timespec manifest_mtime;
	unsigned tmp_counter;
	int err;                /* errno of the last io_error */
	/* ps_project_blob_bound of the target: a file within it whose blob is absent was lost. */
	int64_t blob_bound;
	struct ps_checkout_stats *stats;
	struct raise_hook hook;
};

/* Set by ps_checkout_interrupt (a signal handler): the run stops before its next entry. */
static volatile sig_atomic_t interrupted;

void ps_checkout_interrupt(void)
{
	interrupted = 1;
}

/* A stop asked before the first change: nothing was written. */
static int interrupted_before(const char *dir)
{
	return ps_error_set(PS_ECANCELLED, "interrupted",
			    "checkout interrupted before it changed %s", dir);
}

static int cmp_op(const void *x, const void *y)
{
	return strcmp(((const struct op *)x)->path, ((const struct op *)y)->path);
}

static int cmp_owned(const void *x, const void *y)
{
	return strcmp(((const struct owned *)x)->path, ((const struct owned *)y)->path);
}

static int cmp_change(const void *x, const void *y)
{
	return strcmp(((const struct ps_checkout_change_entry *)x)->path,
		      ((const struct ps_checkout_change_entry *)y)->path);
}

static int collect_snapshot(void *ud, const struct ps_file *f)
{
	struct targets *t = ud;
	struct op *o;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->v = ps_realloc(t->v, t->cap * sizeof(*t->v));
	}
	o = &t->v[t->n++];
	o->path = ps_strdup(f->path);
	o->mode = f->mode;
	snprintf(o->sha, sizeof(o->sha), "%s", f->sha);
	o->size = f->size;
	return 0;
}

static void targets_dispose(struct targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
}

static struct owned *manifest_push(struct manifest *m)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->v = ps_realloc(m->v, m->cap * sizeof(*m->v));
	}
	memset(&m->v[m->n], 0, sizeof(m->v[m->n]));
	return &m->v[m->n++];
}

static int collect_legacy(void *ud, const struct ps_file *f)
{
	struct owned *o = manifest_push(ud);

	o->path = ps_strdup(f->path);
	o->mode = f->mode;
	snprintf(o->sha, sizeof(o->sha), "%s", f->sha);
	return 0;
}

void ps_checkout_stats_dispose(struct ps_checkout_stats *stats)
{
	if (!stats)
		return;
	ps_strv_dispose(&stats->skipped_paths);
	free(stats->skipped_unsure);
	stats->skipped_unsure = NULL;
	for (size_t i = 0; i < stats->nchanges; i++)
		free(stats->changes[i].path);
	free(stats->changes);
	stats->changes = NULL;
	stats->nchanges = 0;
	for (size_t i = 0; i < stats->nfailures; i++) {
		free(stats->failures[i].path);
		free(stats->failures[i].reason);
	}
	free(stats->failures);
	stats->failures = NULL;
	stats->nfailures = 0;
}

const char *ps_checkout_change_name(enum ps_checkout_change c)
{
	switch (c) {
	case PS_CHECKOUT_MODIFIED: return "modified";
	case PS_CHECKOUT_DELETED: return "deleted";
	case PS_CHECKOUT_TYPE_CHANGED: return "type_changed";
	case PS_CHECKOUT_MODE_CHANGED: return "mode_changed";
	case PS_CHECKOUT_UNTRACKED: return "untracked";
	}
	return "changed";
}

static void add_change(struct ps_checkout_stats *st, const char *path, int change)
{
	st->changes = ps_realloc(st->changes, (st->nchanges + 1) * sizeof(*st->changes));
	st->changes[st->nchanges].path = ps_strdup(path);
	st->changes[st->nchanges].change = (enum ps_checkout_change)change;
	st->nchanges++;
}

static void add_failure(struct ps_checkout_stats *st, const char *path, const char *reason)
{
	st->failures = ps_realloc(st->failures, (st->nfailures + 1) * sizeof(*st->failures));
	st->failures[st->nfailures].path = ps_strdup(path);
	st->failures[st->nfailures].reason = ps_strdup(reason);
	st->failures[st->nfailures].lost = false;
	st->nfailures++;
	st->failed++;
}

/* ---- stat data ---- */

static void statrec_of(struct statrec *r, const struct stat *st)
{
	r->st_mode = st->st_mode;
	r->size = (int64_t)st->st_size;
	r->ino = (int64_t)st->st_ino;
	r->mtime_s = (int64_t)st->st_mtim.tv_sec;
	r->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
	r->ctime_s = (int64_t)st->st_ctim.tv_sec;
	r->ctime_ns = (int64_t)st->st_ctim.tv_nsec;
}

static bool statrec_eq(const struct statrec *x, const struct statrec *y)
{
	return x->st_mode == y->st_mode && x->size == y->size && x->ino == y->ino &&
	       x->mtime_s == y->mtime_s && x->mtime_ns == y->mtime_ns &&
	       x->ctime_s == y->ctime_s && x->ctime_ns == y->ctime_ns;
}

/* True when the recorded stat data vouches for the content: known, unchanged, and older than
 * the manifest. A file changed in the same clock tick as the manifest was written may have
 * changed after it was recorded without its stat data showing it (git's "racy" entries). */
static bool statrec_fresh(const struct statrec *rec, const struct stat *st,
			  const struct timespec *manifest_mtime)
{
	struct statrec now;

	if (rec->st_mode == 0)
		return false;
	statrec_of(&now, st);
	if (!statrec_eq(rec, &now))
		return false;
	return rec->mtime_s < (int64_t)manifest_mtime->tv_sec ||
	       (rec->mtime_s == (int64_t)manifest_mtime->tv_sec &&
		rec->mtime_ns < (int64_t)manifest_mtime->tv_nsec);
}

/* ---- the manifest ---- */

static void manifest_dispose(struct manifest *m)
{
	free(m->project);
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].path);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static int manifest_bad(const char *dir, const char *why)
{
	return ps_error_set(PS_EINVAL, "bad_manifest",
			    "%s/%s is not a projsync checkout manifest (%s); remove it to check out "
			    "into this folder", dir, PS_CHECKOUT_MANIFEST, why);
}

static int check_path(const char *path);

/* Paths are stored percent-encoded (spaces, control bytes, '%'), so a line splits on spaces
 * and any byte string survives. NULL when the encoding is broken or hides a NUL. */
static char *path_decode(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *out = ps_malloc(n + 1);

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '%') {
			out[j++] = s[i];
			continue;
		}
		if (i + 2 >= n) {
			free(out);
			return NULL;
		}
		hi = ps_hex_digit((unsigned char)s[i + 1]);
		lo = hi < 0 ? -1 : ps_hex_digit((unsigned char)s[i + 2]);
		if (lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[j++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[j] = '\0';
	return out;
}

static void path_encode(struct ps_buf *b, const char *path)
{
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%')
			ps_buf_printf(b, "%%%02X", *p);
		else
			ps_buf_append(b, p, 1);
	}
}

static bool mode_known(unsigned mode)
{
	return mode == PS_MODE_FILE || mode == PS_MODE_EXEC || mode == PS_MODE_LINK ||
	       mode == PS_MODE_COMMIT;
}

/* One field of an entry line and the space after it, in `base`, within [lo, hi]. False for
 * anything else: sscanf's %lld saturated a field out of range (undefined behaviour, too), so
 * "99999999999999999999999" read as a size that no file has and made it a local change. */
static bool manifest_field(char **p, int base, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	if (!((**p >= '0' && **p <= '9') || (**p == '-' && base == 10)))
		return false;
	errno = 0;
	v = strtoll(*p, &end, base);
	if (errno || end == *p || *end != ' ' || v < lo || v > hi)
		return false;
	*out = v;
	*p = end + 1;
	return true;
}

/* Parses one entry line of a version 2 manifest into `m`. False when malformed. */
static bool manifest_parse_line(struct manifest *m, char *line)
{
	long long mode, st_mode, size, ino, ms, mns, cs, cns;
	char sha[PS_SHA_HEX];
	char *p = line, *path;
	struct owned *o;
	int off;

	if (!manifest_field(&p, 8, 0, 07777777, &mode) || !mode_known((unsigned)mode) ||
	    strspn(p, "0123456789abcdef") != PS_SHA_HEX - 1 || p[PS_SHA_HEX - 1] != ' ')
		return false;
	memcpy(sha, p, PS_SHA_HEX - 1);
	sha[PS_SHA_HEX - 1] = '\0';
	p += PS_SHA_HEX;
	/* Sizes are never negative; the rest are what stat gave, ino_t stored as signed. */
	if (!ps_sha_valid(sha) || !manifest_field(&p, 8, 0, UINT32_MAX, &st_mode) ||
	    !manifest_field(&p, 10, 0, LLONG_MAX, &size) ||
	    !manifest_field(&p, 10, LLONG_MIN, LLONG_MAX, &ino) ||
	    !manifest_field(&p, 10, LLONG_MIN, LLONG_MAX, &ms) ||
	    !manifest_field(&p, 10, 0, 999999999, &mns) ||
	    !manifest_field(&p, 10, LLONG_MIN, LLONG_MAX, &cs) ||
	    !manifest_field(&p, 10, 0, 999999999, &cns))
		return false;
	off = (int)(p - line);
	path = path_decode(line + off);
	if (!path)
		return false;
	if (check_path(path) < 0) {
		/* A manifest naming "../x" must not make us stat or delete outside the folder. */
		ps_error_clear();
		free(path);
		return false;
	}
	o = manifest_push(m);
	o->path = path;
	o->mode = (uint32_t)mode;
	memcpy(o->sha, sha, sizeof(o->sha));
	o->st = (struct statrec){ .st_mode = (uint32_t)st_mode, .size = size, .ino = ino, .mtime_s = ms,
				  .mtime_ns = mns, .ctime_s = cs, .ctime_ns = cns };
	return true;
}

/* Reads the manifest of the folder open at `rootfd` (-1: the folder does not exist). */
static int manifest_read(int rootfd, const char *dir, struct manifest *m)
{
	char *buf = NULL, *nl;
	size_t len = 0, hlen;
	json_t *j = NULL, *project, *sync_id, *project_id, *version, *complete, *pid;
	json_error_t jerr;
	struct stat st;
	ssize_t r;
	int fd, rc = 0;
	json_int_t ver;

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
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return manifest_bad(dir, "not a regular file");
	}
	if ((uint64_t)st.st_size > MANIFEST_MAX) {
		close(fd);
		return manifest_bad(dir, "too large");
	}
	m->mtime = st.st_mtim;
	buf = ps_malloc((size_t)st.st_size + 2);
	while (len <= (size_t)st.st_size &&
	       (r = read(fd, buf + len, (size_t)st.st_size + 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	if (len > (size_t)st.st_size) {
		rc = manifest_bad(dir, "it changed while being read");
		goto cleanup;
	}
	buf[len] = '\0';
	/* Version 2: a one-line JSON header, then one line per entry. Version 1: JSON only. */
	nl = memchr(buf, '\n', len);
	hlen = nl ? (size_t)(nl - buf) : len;
	j = json_loadb(buf, hlen, 0, &jerr);
	if (!j) {
		j = json_loadb(buf, len, 0, &jerr);
		nl = NULL;
	}
	if (!j || !json_is_object(j)) {
		rc = manifest_bad(dir, "not a JSON object");
		goto cleanup;
	}
	project = json_object_get(j, "project");
	sync_id = json_object_get(j, "sync_id");
	project_id = json_object_get(j, "project_id");
	version = json_object_get(j, "version");
	complete = json_object_get(j, "complete");
	pid = json_object_get(j, "pid");
	ver = json_is_integer(version) ? json_integer_value(version) : 1;
	if (!json_is_string(project) || !json_is_integer(sync_id)) {
		rc = manifest_bad(dir, "no project or sync_id");
		goto cleanup;
	}
	if (ver > MANIFEST_VERSION || ver < 1) {
		rc = manifest_bad(dir, "an unknown version, from a newer projsync?");
		goto cleanup;
	}
	m->present = true;
	m->legacy = ver == 1;
	m->complete = m->legacy || json_is_true(complete);
	m->project = ps_strdup(json_string_value(project));
	m->sync_id = json_integer_value(sync_id);
	m->project_id = json_is_integer(project_id) ? json_integer_value(project_id) : 0;
	if (!m->complete && json_is_integer(pid) && json_integer_value(pid) > 0 &&
	    json_integer_value(pid) <= INT_MAX)
		m->tmp_pid = (long)json_integer_value(pid);
	if (!m->legacy && nl) {
		char *line = nl + 1;
		size_t lineno = 1;

		while (*line) {
			char *end = strchr(line, '\n');

			lineno++;
			if (end)
				*end = '\0';
			if (*line && !manifest_parse_line(m, line)) {
				char why[64];
				snprintf(why, sizeof(why), "line %zu is malformed", lineno);
				rc = manifest_bad(dir, why);
				goto cleanup;
			}
			if (!end)
				break;
			line = end + 1;
		}
	}
	if (m->n > 1)
		qsort(m->v, m->n, sizeof(*m->v), cmp_owned);
cleanup:
	json_decref(j);
	free(buf);
	return rc;
}

/* ---- file-system steps, all relative to directory descriptors ---- */

static int io_error(struct apply *a, const char *what, const char *path, int err)
{
	a->err = err;
	return ps_error_set(PS_EIO, NULL, "checkout into %s: cannot %s '%s': %s", a->dir, what,
			    path, strerror(err));
}

/*
 * Opens the directory named by the first `len` bytes of `rel` below `rootfd`, one component at
 * a time and never through a symlink. With `create`, a missing component is made (0777 & umask,
 * like mkdir -p) and a symlink or file standing where a directory is needed is replaced.
 * Returns a new descriptor, or -1 with errno set (ENOENT/ENOTDIR/ELOOP without `create`: the
 * directory is not there as a real directory) and `*done` (if not NULL) at the start of the
 * component that failed.
 */
static int open_dirs(int rootfd, const char *rel, size_t len, bool create, size_t *done)
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
		if (done)
			*done = i;
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
	fd = open_dirs(a->rootfd, path, dlen, true, NULL);
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
		fd = open_dirs(a->rootfd, path, plen, false, NULL);
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
	int fd = open_dirs(a->rootfd, path, dlen, false, NULL), rc = 0;

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
			if (err == ENOTEMPTY || err == EEXIST) {
				a->err = ENOTEMPTY;
				return ps_error_set(PS_EIO, "directory_in_the_way",
						    "checkout into %s: cannot write '%s': a non-empty "
						    "directory is in the way", a->dir, path);
			}
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

/* Errors of the file system as a whole: going on with the next entry would fail the same way. */
static bool fatal_errno(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS || err == ENOMEM ||
	       err == EMFILE || err == ENFILE;
}

/* Removes what stands at the path, unless it is a directory (not ours to remove): the plan
 * allowed replacing it, and stale content must not pass for the snapshot's. */
static void drop_stale(int pfd, const char *name)
{
	struct stat st;

	if (pfd >= 0 && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
		unlinkat(pfd, name, 0);
}

static void skip(struct apply *a, struct item *it, int pfd, const char *name)
{
	drop_stale(pfd, name);
	it->owned = false;
	a->stats->skipped++;
	ps_strv_push(&a->stats->skipped_paths, it->path);
	a->stats->skipped_unsure = ps_realloc(a->stats->skipped_unsure,
					      a->stats->skipped_paths.n *
					      sizeof(*a->stats->skipped_unsure));
	a->stats->skipped_unsure[a->stats->skipped_paths.n - 1] =
		it->t->size <= a->project->max_blob_size;
}

/* An entry that cannot be written for a reason of its own: listed, and the rest goes on. */
static void entry_failed(struct apply *a, struct item *it, int pfd, const char *name,
			 const char *reason)
{
	drop_stale(pfd, name);
	it->owned = false;
	add_failure(a->stats, it->path, reason);
	ps_error_clear();
}

/* After an io_error: a failure of this entry (0) or of the whole file system (the error). */
static int io_outcome(struct apply *a, struct item *it, int pfd, const char *name, int rc)
{
	if (rc != PS_EIO || fatal_errno(a->err))
		return rc;
	entry_failed(a, it, pfd, name,
		     a->err == ENOTEMPTY ? "a non-empty directory is in the way" : strerror(a->err));
	return 0;
}

static void record_written(struct apply *a, struct item *it, int pfd, const char *name)
{
	struct stat st;

	it->owned = true;
	it->mode = it->t->mode;
	memcpy(it->sha, it->t->sha, sizeof(it->sha));
	memset(&it->st, 0, sizeof(it->st));
	/* A submodule's directory is whatever someone put in it: nothing to record. */
	if (it->mode != PS_MODE_COMMIT && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		statrec_of(&it->st, &st);
	a->stats->written++;
}

/* Writes one snapshot entry. Returns 0 (written, skipped or failed on its own), or an error of
 * the store or the file system as a whole. */
static int write_entry(struct apply *a, struct item *it)
{
	const struct op *o = it->t;
	const char *name;
	struct stat st;
	bool exists;
	void *data = NULL;
	size_t len = 0;
	int pfd, rc = 0;

	pfd = parent_fd(a, o->path, &name);
	if (pfd < 0) {
		rc = io_error(a, "create the directory of", o->path, errno);
		return io_outcome(a, it, -1, name, rc);
	}
	exists = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;

	if (o->mode == PS_MODE_COMMIT) {
		/* A submodule is shown as an empty directory; what someone cloned into it stays. */
		if (!(exists && S_ISDIR(st.st_mode))) {
			if (exists && unlinkat(pfd, name, 0) != 0 && errno != ENOENT)
				return io_outcome(a, it, pfd, name,
						  io_error(a, "replace", o->path, errno));
			if (mkdirat(pfd, name, 0777) != 0)
				return io_outcome(a, it, pfd, name,
						  io_error(a, "create the directory", o->path,
							   errno));
		}
		record_written(a, it, pfd, name);
		return 0;
	}
	if ((o->mode & 0170000u) != 0100000u && o->mode != PS_MODE_LINK) {
		char why[64];
		snprintf(why, sizeof(why), "mode %06o cannot be checked out", (unsigned)o->mode);
		entry_failed(a, it, pfd, name, why);
		return 0;
	}
	rc = ps_project_blob_get(a->store, a->project, o->sha, o->size, &data, &len);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear();
		/* Not a file the sync chose to keep without content: the store lost it. The folder
		 * must not pass for the snapshot, so this is a failure the caller reports as an
		 * error, not a skip that only warns. */
		if (ps_project_blob_lost(a->blob_bound, o->size)) {
			char why[128];
			snprintf(why, sizeof(why), "its content is lost: blob %s is not in the store",
				 o->sha);
			a->stats->missing++;
			entry_failed(a, it, pfd, name, why);
			a->stats->failures[a->stats->nfailures - 1].lost = true;
			return 0;
		}
		skip(a, it, pfd, name);
		return 0;
	}
	if (rc < 0)
		return ps_error_wrap(rc, "checkout of '%s': ", o->path);
	if (o->mode == PS_MODE_LINK) {
		/* Linux holds at most PATH_MAX - 1 bytes in a symlink target, and no NUL. */
		if (len == 0 || len >= PATH_MAX || memchr(data, '\0', len)) {
			char why[96];
			snprintf(why, sizeof(why), len == 0 || len >= PATH_MAX
				 ? "no symlink can hold a target of %zu bytes"
				 : "a symlink target cannot hold a NUL byte (%zu bytes)", len);
			free(data);
			entry_failed(a, it, pfd, name, why);
			return 0;
		}
		data = ps_realloc(data, len + 1);
		((char *)data)[len] = '\0';
		rc = write_symlink(a, pfd, name, o, data);
	} else {
		rc = write_regular(a, pfd, name, o->path, (o->mode & 0111u) ? 0755 : 0644, data,
				   len);
	}
	free(data);
	if (rc < 0)
		return io_outcome(a, it, pfd, name, rc);
	record_written(a, it, pfd, name);
	return 0;
}

/*
 * Writes the manifest: the header, then every path checkout owns. `pending` (before applying)
 * marks it unfinished and adds the new state of every path about to be written, so whichever
 * of the two a crash leaves on disk is recognised as checkout's own.
 */
static int manifest_write(struct apply *a, const struct ps_project *p, const struct ps_sync *sync,
			  bool complete, bool pending, const struct item *items, size_t n)
{
	json_t *j = json_pack("{s:i, s:s, s:I, s:I, s:s?, s:b}", "version", MANIFEST_VERSION,
			      "project", p->name, "project_id", (json_int_t)p->id,
			      "sync_id", (json_int_t)sync->id, "commit", sync->commit,
			      "complete", complete);
	char *text = NULL;
	struct ps_buf b;
	size_t len = 0;
	char *body;
	bool bad;
	int rc;

	/* Until the final manifest, this process's temporary files (next_tmp_name) may be left
	 * by a crash: the next run finds them by this pid (remove_stale_tmp). */
	if (j && !complete)
		json_object_set_new(j, "pid", json_integer((json_int_t)getpid()));
	if (j)
		text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (!text)
		return ps_error_set(PS_ENOMEM, NULL, "cannot encode the checkout manifest");
	ps_buf_init(&b, MANIFEST_MAX);
	bad = ps_buf_printf(&b, "%s\n", text) < 0;
	free(text);
	for (size_t i = 0; i < n && !bad; i++) {
		const struct item *it = &items[i];
		const struct statrec *r = &it->st;

		if (it->owned) {
			ps_buf_printf(&b, "%06o %s %o %lld %lld %lld %lld %lld %lld ",
				      (unsigned)it->mode, it->sha, (unsigned)r->st_mode,
				      (long long)r->size, (long long)r->ino, (long long)r->mtime_s,
				      (long long)r->mtime_ns, (long long)r->ctime_s,
				      (long long)r->ctime_ns);
			path_encode(&b, it->path);
			bad = ps_buf_puts(&b, "\n") < 0;
		}
		if (pending && it->act == ACT_WRITE) {
			ps_buf_printf(&b, "%06o %s 0 0 0 0 0 0 0 ", (unsigned)it->t->mode, it->t->sha);
			path_encode(&b, it->path);
			bad = bad || ps_buf_puts(&b, "\n") < 0;
		}
	}
	body = ps_buf_take(&b, &len);
	if (bad || !body) {
		free(body);
		return ps_error_set(PS_ETOOBIG, NULL, "the checkout manifest would be too large");
	}
	rc = write_regular(a, a->rootfd, PS_CHECKOUT_MANIFEST, PS_CHECKOUT_MANIFEST, 0644, body,
			   len);
	free(body);
	return rc;
}

/* ---- planning ---- */

static int check_path(const char *path)
{
	const char *p = path;
	size_t first = strcspn(path, "/");

	if (!ps_path_is_safe(path))
		return ps_error_set(PS_EINVAL, "unsafe_path",
				    "refusing to check out: unsafe path '%s' in the snapshot "
				    "(absolute, '..', '.', empty component or .git); nothing was "
				    "written", path);
	/* The manifest's name at the top, as a file or as a directory: writing there would
	 * replace the manifest or make it unreadable. Case-insensitive, as for .git. */
	if (first == strlen(PS_CHECKOUT_MANIFEST) &&
	    strncasecmp(path, PS_CHECKOUT_MANIFEST, first) == 0)
		return ps_error_set(PS_EINVAL, "unsafe_path",
				    "refusing to check out: the snapshot has '%s', at the name of "
				    "the checkout manifest; nothing was written", path);
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
			/* The words of files, grep and verify for the same state. */
			return ps_error_set(PS_ENOTFOUND, "no_snapshot", "project %s has no "
					    "snapshot yet: run 'projsync sync %s'", p->name,
					    p->name);
		if (rc < 0)
			return rc;
		*out = sync;
		return 0;
	}
	rc = ps_store_sync_get(s, at, &sync);
	if (rc < 0 && rc != PS_ENOTFOUND)
		return rc;
	if (rc == PS_ENOTFOUND || sync->project_id != p->id) {
		ps_sync_free(sync);
		return ps_error_set(PS_ENOTFOUND, "sync_not_found",
				    "sync %lld is not a sync of project %s", (long long)at, p->name);
	}
	/* The same answer as files/cat and the API's 409: the sync exists, its snapshot not. */
	if (sync->status != PS_SYNC_SUCCEEDED) {
		rc = ps_error_set(PS_ECONFLICT, "not_succeeded", "sync %lld of %s is %s: only a "
				  "succeeded sync has a snapshot", (long long)at, p->name,
				  ps_sync_status_name(sync->status));
		ps_sync_free(sync);
		return rc;
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

/* ---- looking at the folder ---- */

enum probe { P_ABSENT, P_PRESENT, P_BLOCKED };

static void drop_probe_dir(struct apply *a)
{
	if (a->probe_fd >= 0)
		close(a->probe_fd);
	a->probe_fd = -1;
	free(a->probe_dir);
	a->probe_dir = NULL;
}

/*
 * Looks at `path` without creating or following anything: P_PRESENT with its lstat data and
 * its parent (borrowed), P_ABSENT, or P_BLOCKED when a parent component is not a real
 * directory (`*blocked_len`: the length of the path of that component). < 0 on an error.
 */
static int probe(struct apply *a, const char *path, struct stat *st, int *pfd, const char **base,
		 size_t *blocked_len)
{
	size_t dlen = ps_path_dirname_len(path, strlen(path));

	*base = dlen ? path + dlen + 1 : path;
	if (a->rootfd < 0)
		return P_ABSENT;
	if (!(a->probe_dir && strlen(a->probe_dir) == dlen &&
	      memcmp(a->probe_dir, path, dlen) == 0)) {
		size_t done = 0;
		int fd;

		drop_probe_dir(a);
		fd = open_dirs(a->rootfd, path, dlen, false, &done);
		if (fd < 0) {
			if (errno == ENOENT)
				return P_ABSENT;
			if (errno == ENOTDIR || errno == ELOOP) {
				size_t j = done;
				while (j < dlen && path[j] != '/')
					j++;
				*blocked_len = j;
				return P_BLOCKED;
			}
			return io_error(a, "look into the directory of", path, errno);
		}
		a->probe_dir = ps_strndup(path, dlen);
		a->probe_fd = fd;
	}
	*pfd = a->probe_fd;
	if (fstatat(a->probe_fd, *base, st, AT_SYMLINK_NOFOLLOW) == 0)
		return P_PRESENT;
	if (errno == ENOENT)
		return P_ABSENT;
	return io_error(a, "look at", path, errno);
}

/*
 * 0 when the entry `name` (lstat data `st`) is blob `sha` with git mode `mode`, else the kind
 * of difference. `rec` is what the manifest recorded for it: when it vouches for the content,
 * the file is not read. `*read` tells whether it was.
 */
static int classify(struct apply *a, int pfd, const char *name, const struct stat *st,
		    uint32_t mode, const char *sha, const struct statrec *rec, bool *read_it)
{
	char got[PS_SHA_HEX];

	*read_it = false;
	if (mode == PS_MODE_COMMIT)
		return S_ISDIR(st->st_mode) ? 0 : PS_CHECKOUT_TYPE_CHANGED;
	if (mode == PS_MODE_LINK) {
		char target[PATH_MAX + 1];
		ssize_t n;

		if (!S_ISLNK(st->st_mode))
			return PS_CHECKOUT_TYPE_CHANGED;
		n = readlinkat(pfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return PS_CHECKOUT_MODIFIED;
		ps_git_blob_sha(target, (size_t)n, got);
		return strcmp(got, sha) == 0 ? 0 : PS_CHECKOUT_MODIFIED;
	}
	if (!S_ISREG(st->st_mode))
		return PS_CHECKOUT_TYPE_CHANGED;
	if (!statrec_fresh(rec, st, &a->manifest_mtime)) {
		struct stat fst;
		bool same = false;
		int fd;

		/* The size was recorded with this content: another size is another content. */
		if (rec->st_mode != 0 && rec->size != (int64_t)st->st_size)
			return PS_CHECKOUT_MODIFIED;
		*read_it = true;
		/* O_NONBLOCK: if the entry was swapped for a FIFO since the stat, do not hang. */
		fd = openat(pfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) &&
			    file_blob_sha(fd, (int64_t)fst.st_size, got))
				same = strcmp(got, sha) == 0;
			close(fd);
		}
		if (!same)
			return PS_CHECKOUT_MODIFIED;
	}
	/* Git keeps only the executable bit; other permission bits are the user's. */
	if (((st->st_mode & S_IXUSR) != 0) != (mode == PS_MODE_EXEC))
		return PS_CHECKOUT_MODE_CHANGED;
	return 0;
}

/* The first manifest entry not sorting before `key`. */
static size_t lower_bound(const struct manifest *m, const char *key)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(m->v[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool owns_path(const struct manifest *m, const char *path)
{
	size_t i = lower_bound(m, path);
	return i < m->n && strcmp(m->v[i].path, path) == 0;
}

/* Whether the manifest owns something below directory `path`. */
static bool owns_below(const struct manifest *m, const char *path)
{
	char *key = ps_asprintf("%s/", path);
	size_t i = lower_bound(m, key), klen = strlen(key);
	bool yes = i < m->n && strncmp(m->v[i].path, key, klen) == 0;

	free(key);
	return yes;
}

/* Whether the directory `name` below `pfd` is empty (false when it cannot be read). */
static bool dir_is_empty_at(int pfd, const char *name)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool empty = d != NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static struct item *push_item(struct item **v, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*v = ps_realloc(*v, *cap * sizeof(**v));
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	return &(*v)[(*n)++];
}

/*
 * Walks the manifest and the snapshot together, looks at every path on disk, and decides what
 * to do with it; local changes in the way go to stats->changes. `*refresh`: the manifest's
 * record of some kept entry is out of date, so it is worth rewriting even with nothing to do.
 */
static int plan(struct apply *a, const struct manifest *m, const struct targets *tg,
		struct item **items, size_t *nitems, bool *refresh)
{
	size_t i = 0, j = 0, cap = 0;
	char *last_blocker = NULL;
	int rc = 0;

	while (i < tg->n || j < m->n) {
		int c = i < tg->n && j < m->n ? strcmp(tg->v[i].path, m->v[j].path)
					      : (i < tg->n ? -1 : 1);
		struct item *it = push_item(items, nitems, &cap);
		size_t g0 = j, blen = 0;
		struct stat st;
		const char *base = NULL;
		int pfd = -1, pr, change = 0;
		bool read_it;

		/* Planning reads (and may hash) every path: a stop asked meanwhile ends it here,
		 * before anything is written. */
		if (interrupted) {
			rc = interrupted_before(a->dir);
			break;
		}
		if (c <= 0) {
			it->t = &tg->v[i++];
			it->path = it->t->path;
		}
		if (c >= 0) {
			it->path = m->v[j].path;
			while (j < m->n && strcmp(m->v[j].path, it->path) == 0)
				j++;
		}
		pr = probe(a, it->path, &st, &pfd, &base, &blen);
		if (pr < 0) {
			rc = pr;
			break;
		}
		if (pr == P_BLOCKED && it->t) {
			/* A file or symlink stands where the path needs a directory. The
			 * manifest's own is replaced as planned for its own path; anything else
			 * is the user's, in the way. */
			char *comp = ps_strndup(it->path, blen);
			if (!owns_path(m, comp) &&
			    (!last_blocker || strcmp(last_blocker, comp) != 0)) {
				add_change(a->stats, comp, PS_CHECKOUT_UNTRACKED);
				free(last_blocker);
				last_blocker = comp;
			} else {
				free(comp);
			}
		}
		if (j > g0) {
			if (pr != P_PRESENT) {
				/* An unfinished checkout may have removed it, or not written it yet. */
				if (m->complete)
					change = PS_CHECKOUT_DELETED;
			} else {
				for (size_t k = g0; k < j && !it->owned; k++) {
					const struct owned *o = &m->v[k];
					int ch = classify(a, pfd, base, &st, o->mode, o->sha, &o->st,
							  &read_it);
					if (ch != 0) {
						change = ch;
						continue;
					}
					it->owned = true;
					it->mode = o->mode;
					memcpy(it->sha, o->sha, sizeof(it->sha));
					statrec_of(&it->st, &st);
					if (o->mode == PS_MODE_COMMIT)
						memset(&it->st, 0, sizeof(it->st));
					/* A record that did not vouch for the content (stale, or
					 * racy) is renewed, so the next run does not read it again. */
					if (read_it || !statrec_eq(&it->st, &o->st))
						*refresh = true;
					change = 0;
				}
			}
		} else if (it->t && pr == P_PRESENT) {
			static const struct statrec unknown;

			if (S_ISDIR(st.st_mode) && it->t->mode != PS_MODE_COMMIT &&
			    owns_below(m, it->path)) {
				/* A directory of the old snapshot: the deletions empty it (or what
				 * is left in it makes this entry fail on its own). */
			} else if (S_ISDIR(st.st_mode) && it->t->mode != PS_MODE_COMMIT &&
				   dir_is_empty_at(pfd, base)) {
				/* An empty directory holds nothing to lose (a directory of an
				 * older snapshot that held a file of the user's, who has since
				 * removed it): replaced when the entry is written, as git does. */
			} else if (classify(a, pfd, base, &st, it->t->mode, it->t->sha, &unknown,
					    &read_it) == 0) {
				/* Exactly the snapshot's entry already: taken over as is. */
				it->owned = true;
				it->mode = it->t->mode;
				memcpy(it->sha, it->t->sha, sizeof(it->sha));
				if (it->t->mode != PS_MODE_COMMIT)
					statrec_of(&it->st, &st);
				*refresh = true;
			} else {
				change = PS_CHECKOUT_UNTRACKED;
			}
		}

		if (it->t) {
			it->act = it->owned && it->mode == it->t->mode &&
				  strcmp(it->sha, it->t->sha) == 0 ? ACT_KEEP : ACT_WRITE;
		} else {
			/* Removed here and in the snapshot alike: nothing is lost, nothing to do. */
			if (change == PS_CHECKOUT_DELETED)
				change = 0;
			it->act = it->owned || (change && pr == P_PRESENT) ? ACT_DELETE : ACT_NONE;
		}
		if (change)
			add_change(a->stats, it->path, change);
		raise_at(&a->hook, RAISE_PLAN, 0);
	}
	free(last_blocker);
	drop_probe_dir(a);
	if (a->stats->nchanges > 1)
		qsort(a->stats->changes, a->stats->nchanges, sizeof(*a->stats->changes),
		      cmp_change);
	return rc;
}

#define TMP_PREFIX ".projsync-"

/* The process id in a name next_tmp_name gives (".projsync-PID-N.tmp"), else 0. */
static long tmp_name_pid(const char *name)
{
	const char *p = name + strlen(TMP_PREFIX);
	char *end;
	long pid;

	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0 || !(*p >= '0' && *p <= '9'))
		return 0;
	errno = 0;
	pid = strtol(p, &end, 10);
	if (errno || pid <= 0 || pid > INT_MAX || *end != '-' || !(end[1] >= '0' && end[1] <= '9'))
		return 0;
	for (p = end + 1; *p >= '0' && *p <= '9'; p++)
		;
	return strcmp(p, ".tmp") == 0 ? pid : 0;
}

/* Whether `name` is a temporary name of a process that no longer runs (a live one may be a
 * checkout at work), or of process `pid` (0: none). */
static bool stale_tmp_name(const char *name, long pid)
{
	long of = tmp_name_pid(name);

	if (of <= 0)
		return false;
	return of == pid || (kill((pid_t)of, 0) != 0 && errno == ESRCH);
}

/*
 * A checkout killed between creating a temporary file and renaming it into place leaves that
 * file behind, at a name no snapshot or manifest lists, so nothing else would ever remove it.
 * The manifest's own temporary file is in the folder itself, even before the folder has a
 * manifest: there, every temporary file of a process that no longer runs is removed. Files
 * are written in their own directories: an unfinished manifest names its process (`pid`) and
 * lists every path it was about to write (with no stat data), so the directories of those
 * paths are looked into too. Only files and symlinks so named are removed, and none that the
 * snapshot or the manifest has at that path (a repository may hold such a name); directories
 * are opened without following symlinks. Best effort: what cannot be removed stays.
 */
static void remove_stale_tmp(struct apply *a, const struct manifest *m, const struct targets *tg)
{
	struct ps_strv dirs = { 0 };
	long pid = m->present && !m->complete ? m->tmp_pid : 0;

	if (a->rootfd < 0)
		return;
	ps_strv_push(&dirs, "");
	for (size_t i = 0; pid > 0 && i < m->n; i++) {
		const char *path = m->v[i].path;
		size_t dlen = ps_path_dirname_len(path, strlen(path));
		char *d;

		if (m->v[i].st.st_mode != 0 || dlen == 0)
			continue;
		d = ps_strndup(path, dlen);
		/* Sorted paths: the entries of one directory mostly come together. */
		if (strcmp(dirs.v[dirs.n - 1], d) != 0)
			ps_strv_push(&dirs, d);
		free(d);
	}
	for (size_t i = 0; i < dirs.n; i++) {
		int dfd = open_dirs(a->rootfd, dirs.v[i], strlen(dirs.v[i]), false, NULL);
		/* A description of its own: the folder's descriptor shares its read offset. */
		int fd = dfd >= 0 ? openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (dfd >= 0)
			close(dfd);
		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			struct stat st;
			struct op key;
			char *path;
			bool listed;

			if (!stale_tmp_name(de->d_name, pid))
				continue;
			path = dirs.v[i][0] ? ps_asprintf("%s/%s", dirs.v[i], de->d_name)
					    : ps_strdup(de->d_name);
			key.path = path;
			listed = owns_path(m, path) ||
				 (tg->n && bsearch(&key, tg->v, tg->n, sizeof(*tg->v), cmp_op));
			free(path);
			if (!listed &&
			    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
				unlinkat(dirfd(d), de->d_name, 0);
		}
		closedir(d);
	}
	ps_strv_dispose(&dirs);
}

/* Whether the folder holds nothing but what killed checkouts left (remove_stale_tmp). */
/*
 * One checkout writes a folder at a time: two would interleave their files and manifests, and
 * each would take the other's temporary files for a killed run's (remove_stale_tmp, whose
 * process test cannot see a writer in another PID namespace). The lock is the folder's own
 * (flock on its descriptor, released when it is closed or the process dies), so nothing is
 * left behind by a crash; a second checkout of the same folder, from any process or thread,
 * fails at once instead of waiting behind a large one.
 */
static int lock_folder(int rootfd, const char *dir)
{
	/* Only a lock another run holds refuses: a file system without locks (NFS maps flock
	 * to a write lock, which a directory opened to read cannot take) checks out as before. */
	if (flock(rootfd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		return 0;
	return ps_error_set(PS_ECONFLICT, "checkout_busy",
			    "another checkout is writing %s: wait for it to finish", dir);
}

static int dir_is_empty(int rootfd, const char *dir, bool *empty)
{
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return ps_error_set(PS_EIO, NULL, "cannot read %s: %s", dir, strerror(errno));
	}
	*empty = true;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* A first checkout killed while writing its manifest (or a top-level entry)
		 * left only that. */
		if (stale_tmp_name(de->d_name, 0) &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
			continue;
		*empty = false;
		break;
	}
	closedir(d);
	return 0;
}

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

static int refuse_changes(const char *dir, const struct ps_checkout_stats *st)
{
	const struct ps_checkout_change_entry *c = &st->changes[0];

	return ps_error_set(PS_ECONFLICT, "local_changes",
			    "checkout into %s would discard %zu local change%s (%s: '%s'%s); commit "
			    "them elsewhere, or use --force to restore the snapshot", dir,
			    st->nchanges, st->nchanges == 1 ? "" : "s",
			    ps_checkout_change_name(c->change), c->path,
			    st->nchanges > 1 ? ", ..." : "");
}

/* The folder itself is the caller's choice and may be reached through a symlink; only what
 * lies below it is walked without following. *out is -1 when it does not exist yet. */
static int open_folder(const char *dir, int *out)
{
	struct stat st;
	int err;

	*out = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*out >= 0 || errno == ENOENT)
		return 0;
	err = errno;
	if (err == ENOTDIR && stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return ps_error_set(PS_EINVAL, "not_a_folder",
				    "%s is not a folder: give a folder or a path that does not "
				    "exist yet", dir);
	if (err == ENOTDIR)
		return ps_error_set(PS_EINVAL, "not_a_folder",
				    "%s: a part of its path is not a folder", dir);
	return ps_error_set(PS_EIO, NULL, "cannot open %s: %s", dir, strerror(err));
}

/* Between two entries: a stop that was asked for ends the run as an error, which still writes
 * the manifest of what the folder holds, so the next run finishes the job. `changed`: an entry
 * was deleted or written already; before the first one the folder holds what it held, and the
 * message says so rather than "part of sync N". */
static int check_interrupted(const char *dir, const struct ps_sync *target, bool changed)
{
	if (!interrupted)
		return 0;
	if (!changed) /* the folder may be new, and its manifest says so: no file changed yet */
		return ps_error_set(PS_ECANCELLED, "interrupted",
				    "checkout interrupted before it changed any file in %s; run the "
				    "checkout again to do it", dir);
	return ps_error_set(PS_ECANCELLED, "interrupted",
			    "checkout interrupted: %s holds part of sync %lld; run the checkout "
			    "again to finish it", dir, (long long)target->id);
}

int ps_checkout(struct ps_store *s, const struct ps_project *p, int64_t at_sync, const char *dir,
		bool force, struct ps_checkout_stats *stats)
{
	struct ps_sync *target = NULL;
	struct manifest m = { 0 };
	struct targets tg = { 0 };
	struct item *items = NULL;
	size_t nitems = 0;
	struct apply a = { .store = s, .project = p, .dir = dir, .rootfd = -1, .cached_fd = -1,
			   .probe_fd = -1, .stats = stats };
	bool refresh = false, any = false, changed = false;
	int rc;

	memset(stats, 0, sizeof(*stats));
	if (!dir || !*dir)
		return ps_error_set(PS_EINVAL, NULL, "checkout needs a folder");

	rc = resolve_target(s, p, at_sync, &target);
	if (rc < 0)
		goto cleanup;
	stats->sync_id = target->id;
	a.blob_bound = ps_project_blob_bound(s, p, target->id);

	if ((rc = open_folder(dir, &a.rootfd)) < 0)
		goto cleanup;
	if (a.rootfd >= 0 && (rc = lock_folder(a.rootfd, dir)) < 0)
		goto cleanup;
	rc = manifest_read(a.rootfd, dir, &m);
	if (rc < 0)
		goto cleanup;
	/* The project's id names it for good; its name may have changed since (project set
	 * --rename). The name alone decides for a manifest without an id (version 1). */
	if (m.present && strcmp(m.project, p->name) != 0 &&
	    !(m.project_id > 0 && m.project_id == p->id)) {
		rc = ps_error_set(PS_ECONFLICT, "other_project",
				  "%s holds a checkout of project '%s', not '%s'; use another "
				  "folder", dir, m.project, p->name);
		goto cleanup;
	}
	if (!m.present && a.rootfd >= 0 && !force) {
		bool empty = true;
		if ((rc = dir_is_empty(a.rootfd, dir, &empty)) < 0)
			goto cleanup;
		if (!empty) {
			rc = ps_error_set(PS_ECONFLICT, "not_a_checkout",
					  "%s is not empty and is not a projsync checkout; use an "
					  "empty or new folder, or --force to write the snapshot "
					  "over what it holds", dir);
			goto cleanup;
		}
	}
	/* A version 1 manifest names its sync only: its entries are that snapshot's, compared
	 * by content this once. A sync that is gone (or another project's under the same
	 * name) tells nothing: everything is compared as if unknown. */
	if (m.legacy && (m.project_id == 0 || m.project_id == p->id) &&
	    usable_base(s, p, m.sync_id)) {
		rc = ps_store_snapshot_each(s, p->id, m.sync_id, NULL, collect_legacy, &m);
		if (rc < 0)
			goto cleanup;
		if (m.n > 1)
			qsort(m.v, m.n, sizeof(*m.v), cmp_owned);
	}
	a.manifest_mtime = m.mtime;
	stats->full = m.n == 0;
	stats->from_sync_id = stats->full ? 0 : m.sync_id;

	rc = ps_store_snapshot_each(s, p->id, target->id, NULL, collect_snapshot, &tg);
	if (rc < 0)
		goto cleanup;
	if (tg.n > 1)
		qsort(tg.v, tg.n, sizeof(*tg.v), cmp_op);
	stats->total = (int64_t)tg.n;

	/* Every path is checked before the first change, so a refused checkout leaves the folder
	 * exactly as it was. */
	for (size_t i = 0; i < tg.n; i++)
		if ((rc = check_path(tg.v[i].path)) < 0)
			goto cleanup;
	read_raise_hook(&a.hook);
	if ((rc = plan(&a, &m, &tg, &items, &nitems, &refresh)) < 0)
		goto cleanup;
	/* A stop asked while planning wins over what the plan found: the user asked to stop,
	 * and nothing was written either way. */
	if (interrupted) {
		rc = interrupted_before(dir);
		goto cleanup;
	}
	if (stats->nchanges > 0 && !force) {
		rc = refuse_changes(dir, stats);
		goto cleanup;
	}

	for (size_t i = 0; i < nitems; i++)
		any = any || items[i].act == ACT_WRITE || items[i].act == ACT_DELETE;
	if (!any && m.present && m.complete && !m.legacy && !refresh &&
	    m.sync_id == target->id && strcmp(m.project, p->name) == 0) {
		remove_stale_tmp(&a, &m, &tg);
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
		if ((rc = lock_folder(a.rootfd, dir)) < 0)
			goto cleanup;
	}
	/* What a killed run left at no path of its own: before the manifest that named it is
	 * replaced. */
	remove_stale_tmp(&a, &m, &tg);
	/* Before the first change: a manifest that knows both states of every path about to
	 * change, so a crash half-way is neither a "local change" nor trusted as finished. */
	if (any && (rc = manifest_write(&a, p, target, false, true, items, nitems)) < 0)
		goto cleanup;
	raise_at(&a.hook, RAISE_APPLY, 0);
	/* Deletions first: a path that was a file or symlink may now be a directory. */
	for (size_t i = 0; i < nitems && rc == 0; i++) {
		struct item *it = &items[i];

		if (it->act != ACT_DELETE)
			continue;
		if ((rc = check_interrupted(dir, target, changed)) < 0)
			break;
		changed = true;
		rc = delete_path(&a, it->path);
		it->owned = false;
		if (rc == PS_EIO && !fatal_errno(a.err)) {
			add_failure(stats, it->path, strerror(a.err));
			ps_error_clear();
			rc = 0;
		}
	}
	for (size_t i = 0; i < nitems && rc == 0; i++) {
		if (items[i].act != ACT_WRITE || (rc = check_interrupted(dir, target, changed)) < 0)
			continue;
		changed = true;
		rc = write_entry(&a, &items[i]);
		raise_at(&a.hook, RAISE_AFTER_WRITES, (long)stats->written);
	}
	drop_cached_dir(&a);
	if (rc < 0) {
		/* Stopped half-way: the manifest must still describe the folder. Best effort,
		 * keeping the first error; the pending manifest written above is also right. */
		char *msg = ps_strdup(ps_error_message());
		if (manifest_write(&a, p, target, false, false, items, nitems) < 0)
			ps_error_set(rc, NULL, "%s", msg);
		free(msg);
		goto cleanup;
	}
	/* A stop asked from here on is not heeded: every entry is written, and the final
	 * manifest ends the run as a success (exit 0), which is what the folder then holds. */
	raise_at(&a.hook, RAISE_MANIFEST, 0);
	rc = manifest_write(&a, p, target, true, false, items, nitems);
	if (rc < 0)
		goto cleanup;
	stats->unchanged = stats->total - stats->written - stats->skipped - stats->failed;
	if (stats->unchanged < 0)
		stats->unchanged = 0;

cleanup:
	drop_cached_dir(&a);
	drop_probe_dir(&a);
	if (a.rootfd >= 0)
		close(a.rootfd);
	manifest_dispose(&m);
	targets_dispose(&tg);
	free(items);
	ps_sync_free(target);
	interrupted = 0; /* it asked this run to stop, not the next one */
	return rc;
}

/* The planning check alone, for fuzz/fuzz_checkout_path.c (core/checkout_internal.h). */
int ps_checkout_check_path(const char *path)
{
	return check_path(path);
}
