/*
 * The libgit2 source: a local repository read in place, or a git URL mirrored into a bare cache
 * repository.
 *
 * Local paths are opened directly and nothing is copied: the objects are already on this disk.
 * Remote URLs (file:// included, so the tests exercise the same path as https://) get one bare
 * cache repository per URL under opts->cache_dir. `resolve` lists the remote's refs with libgit2
 * (an ssh remote with `git ls-remote`: remote_list) and, when the head is not in the cache yet,
 * fetches only that branch, one commit deep, with git's own CLI (source/git_cli.c: libgit2 1.5 has
 * no shallow fetch), with a forced refspec so that force-pushes are followed. The cache's earlier
 * commits go out as "haves", so a re-sync transfers only the objects the new commit adds. Objects
 * are never pruned from the cache, because the sync pipeline diffs the new tree against the tree of
 * the last sync, which a force-push may have made unreachable upstream; a cache without it (a fresh
 * one) makes the pipeline compare with the stored snapshot instead. libgit2 reads the shallow cache
 * like any other: it never walks history. `branches` only lists the remote's refs and needs no
 * cache. Every network round trip is counted in src->requests and every pack byte received in
 * src->bytes.
 *
 * libgit2 errors become PS_E* codes carrying libgit2's own message after our context.
 *
 * Network bounds: libgit2 1.5 has no timeouts of its own (GIT_OPT_SET_SERVER_CONNECT_TIMEOUT and
 * GIT_OPT_SET_SERVER_TIMEOUT arrived in 1.7), and its sockets block forever on a peer that
 * accepts and never answers. So projsync registers its own socket stream (git_stream_register,
 * GIT_STREAM_STANDARD), which libgit2 uses for git://, http:// and under its TLS for https://:
 * connect waits at most the network timeout, and every read or write waits at most that long
 * for a byte to move. A thread-local deadline additionally bounds a whole operation (a check, or
 * any operation of a `bounded` source), since a peer trickling bytes would pass the idle bound.
 * The git CLI fetch gets the same two bounds (git_cli.c watches the child and kills it).
 */
#include "source/source.h"
#include "source/git_cli.h"
#include "source/pack_order.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/util.h"

#define HEADS_PREFIX "refs/heads/"
#define HEADS_PREFIX_LEN (sizeof(HEADS_PREFIX) - 1)

/* Where Debian keeps the CA bundle; libgit2 is built with mbedTLS there, which has no default. */
#define CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

struct git_source {
	struct ps_source base;
	char *location;        /* absolute path or URL, as shown in messages */
	bool remote;
	char *cache_path;      /* remote only: the bare cache repository */
	char *ssh_dir;         /* remote only: <data dir>/ssh, known_hosts and key (git_cli.h),
				* handed to git for ssh remotes only */
	bool ssh;              /* remote over ssh: listed with `git ls-remote`, not libgit2 */
	git_repository *repo;  /* local: the repository; remote: the cache, opened on first use */
	bool bounded;          /* each remote operation as a whole within the network timeout */
	char *fetched_ref;     /* remote: the ref resolve fetched (refs/heads/B), for `commits` */
	bool objects_read;     /* local: repo read objects (its odb is open), see keep_repo */
	dev_t git_dev;         /* local: the identity of repo's git directory when opened */
	ino_t git_ino;
	char **fetch;          /* the fetch session's blobs, in pack order (git_fetch_begin) */
	size_t nfetch, fetch_pos;
};

/* State shared with libgit2's callbacks during one connection. */
struct call_state {
	int credential_tries;
};

/* The branches a remote advertises, in its order. */
struct remote_heads {
	struct ps_strv names;  /* short names (without refs/heads/) */
	git_oid *oids;         /* parallel to names */
	char *default_branch;  /* NULL when the remote does not say, or it is empty */
};

static pthread_once_t libgit2_once = PTHREAD_ONCE_INIT;

/* ---- the bounded socket stream ---- */

/*
 * The monotonic time (ms) at which the current remote operation of this thread gives up, or 0
 * for none; and whether a bound was hit, so the failure gets the "upstream_timeout" slug
 * whatever libgit2 makes of our error. libgit2 calls a stream on the thread that called it.
 */
static _Thread_local int64_t op_deadline;
static _Thread_local bool op_timed_out;
/* The stream itself failed (no address, no connection, a reset...): the remote could not be
 * reached, as opposed to a remote that answered and refused (an HTTP 404, "repository not
 * exported"). Only this one is worth retrying later. */
static _Thread_local bool op_net_failed;
/* Our words for the bound that was hit: a TLS layer above the stream replaces the error with
 * its own ("SSL error: ... Generic error"). */
static _Thread_local char op_timeout_msg[256];
/* The source whose operation this is, for its stop hook (ps_source.stop), and whether the
 * hook stopped it, so the failure is "cancelled" whatever libgit2 makes of it. */
static _Thread_local struct ps_source *op_src;
static _Thread_local bool op_stopped;

struct timed_stream {
	git_stream parent;
	/* These three mirror libgit2 1.5's git_socket_stream: its ssh transport reads the socket
	 * of whatever stream is registered through that layout (GIT_CONTAINER_OF) and hands it
	 * to libssh2. Keep them first and in this order. */
	char *host;
	char *port;
	int s;
};

/* Fails a stream call after a bound was hit, in words a user can act on. */
static int stream_timeout(const struct timed_stream *st, const char *what)
{
	char t[32];

	ps_source_net_timeout_text(t, sizeof(t));
	op_timed_out = true;
	snprintf(op_timeout_msg, sizeof(op_timeout_msg),
		 "%s %s:%s timed out (no progress within %s; PROJSYNC_NET_TIMEOUT)", what,
		 st->host, st->port, t);
	git_error_set_str(GIT_ERROR_NET, op_timeout_msg);
	return -1;
}

/* How long the next wait may last: the idle bound, cut short by the operation's deadline;
 * 0 when the deadline has passed. */
static int wait_budget(int64_t idle_ms)
{
	int64_t ms = idle_ms;

	if (op_deadline > 0) {
		int64_t left = op_deadline - ps_mono_ms();
		if (left < ms)
			ms = left > 0 ? left : 0;
	}
	return (int)ms;
}

/* Waits for `events` on the socket: 1 ready, 0 timed out, -1 error. */
static int stream_wait(int fd, short events, int64_t idle_ms)
{
	int64_t start = ps_mono_ms();

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int64_t spent = ps_mono_ms() - start;
		int budget = wait_budget(idle_ms - spent > 0 ? idle_ms - spent : 0);
		int n;

		if (budget <= 0)
			return 0;
		if (op_src && op_src->stop) {
			if (op_src->stop(op_src->stop_ud)) {
				op_stopped = true;
				errno = ECANCELED;
				return -1;
			}
			if (budget > 250)
				budget = 250;
		}
		n = poll(&pfd, 1, budget);
		if (n > 0)
			return 1;
		if (n == 0)
			continue; /* the loop re-checks both bounds */
		if (errno != EINTR)
			return -1;
	}
}

static int timed_connect(git_stream *stream)
{
	struct timed_stream *st = (struct timed_stream *)stream;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct addrinfo *info = NULL;
	int64_t timeout = ps_source_net_timeout_ms(), deadline = ps_mono_ms() + timeout;
	int err, last_errno = 0;
	bool timed_out = false;

	/* The resolver is bounded by its own configuration (resolv.conf timeout and attempts). */
	if ((err = getaddrinfo(st->host, st->port, &hints, &info)) != 0) {
		op_net_failed = true;
		git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s", st->host,
			      gai_strerror(err));
		return -1;
	}
	for (struct addrinfo *p = info; p; p = p->ai_next) {
		int fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				p->ai_protocol);
		int so_err = 0, rc;
		socklen_t sl = sizeof(so_err);

		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, p->ai_addr, p->ai_addrlen) == 0) {
			st->s = fd;
			break;
		}
		if (errno != EINPROGRESS) {
			last_errno = errno;
			close(fd);
			continue;
		}
		/* One connect timeout for all the addresses: the user was promised one bound. */
		rc = stream_wait(fd, POLLOUT, deadline - ps_mono_ms());
		if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &sl) == 0 &&
		    so_err == 0) {
			st->s = fd;
			break;
		}
		if (rc == 0)
			timed_out = true;
		last_errno = rc == 1 ? so_err : errno;
		close(fd);
		if (rc == 0)
			break;
	}
	freeaddrinfo(info);
	if (st->s >= 0)
		return 0;
	if (timed_out)
		return stream_timeout(st, "connecting to");
	op_net_failed = true;
	git_error_set(GIT_ERROR_NET, "failed to connect to %s:%s: %s", st->host, st->port,
		      strerror(last_errno ? last_errno : ECONNREFUSED));
	return -1;
}

static ssize_t timed_read(git_stream *stream, void *data, size_t len)
{
	struct timed_stream *st = (struct timed_stream *)stream;

	for (;;) {
		ssize_t n = recv(st->s, data, len, MSG_DONTWAIT);
		int rc;

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			op_net_failed = true;
			git_error_set(GIT_ERROR_NET, "error receiving data from %s: %s", st->host,
				      strerror(errno));
			return -1;
		}
		if ((rc = stream_wait(st->s, POLLIN, ps_source_net_timeout_ms())) == 0)
			return stream_timeout(st, "reading from");
		if (rc < 0) {
			git_error_set(GIT_ERROR_NET, "error waiting for %s: %s", st->host,
				      strerror(errno));
			return -1;
		}
	}
}

static ssize_t timed_write(git_stream *stream, const char *data, size_t len, int flags)
{
	struct timed_stream *st = (struct timed_stream *)stream;

	for (;;) {
		ssize_t n = send(st->s, data, len, flags | MSG_DONTWAIT | MSG_NOSIGNAL);
		int rc;

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			op_net_failed = true;
			git_error_set(GIT_ERROR_NET, "error sending data to %s: %s", st->host,
				      strerror(errno));
			return -1;
		}
		if ((rc = stream_wait(st->s, POLLOUT, ps_source_net_timeout_ms())) == 0)
			return stream_timeout(st, "writing to");
		if (rc < 0) {
			git_error_set(GIT_ERROR_NET, "error waiting for %s: %s", st->host,
				      strerror(errno));
			return -1;
		}
	}
}

static int timed_close(git_stream *stream)
{
	struct timed_stream *st = (struct timed_stream *)stream;
	int rc = 0;

	if (st->s >= 0)
		rc = close(st->s);
	st->s = -1;
	return rc;
}

static void timed_free(git_stream *stream)
{
	struct timed_stream *st = (struct timed_stream *)stream;

	if (st->s >= 0)
		close(st->s);
	free(st->host);
	free(st->port);
	free(st);
}

static int timed_stream_new(git_stream **out, const char *host, const char *port)
{
	struct timed_stream *st = ps_calloc(1, sizeof(*st));

	st->parent.version = GIT_STREAM_VERSION;
	st->parent.connect = timed_connect;
	st->parent.read = timed_read;
	st->parent.write = timed_write;
	st->parent.close = timed_close;
	st->parent.free = timed_free;
	st->host = ps_strdup(host);
	st->port = ps_strdup(port ? port : "");
	st->s = -1;
	*out = &st->parent;
	return 0;
}

/* Bounds the remote operations this thread makes until op_end: as a whole when `whole`, else
 * each wait only (the stream's own idle bound). */
static void op_begin(bool whole, struct ps_source *src)
{
	op_src = src;
	op_stopped = false;
	op_timed_out = false;
	op_net_failed = false;
	op_deadline = whole ? ps_mono_ms() + ps_source_net_timeout_ms() : 0;
}

/* Every failure of the operation was reported before this: later ones are not timeouts. */
static void op_end(void)
{
	op_src = NULL;
	op_stopped = false;
	op_deadline = 0;
	op_timed_out = false;
	op_net_failed = false;
}

static void libgit2_setup(void)
{
	git_stream_registration reg = {
		.version = GIT_STREAM_VERSION,
		.init = timed_stream_new,
	};

	git_libgit2_init();
	/* A missing bundle only matters for https, and then libgit2's certificate error says so. */
	if (git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, CA_BUNDLE, NULL) < 0)
		git_error_clear();
	/* libgit2 re-hashed every object it read (with sha1dc, ~3x OpenSSL's SHA-1): 12% of a
	 * first sync's CPU, hashing each blob a second time. The pipeline checks what it keeps
	 * itself: the store verifies each blob's git id as it stores it, and check_tree the
	 * snapshot's trees against the commit's tree id; zlib's checksum still guards every
	 * object's bytes on disk. */
	if (git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0) < 0)
		git_error_clear();
	/* Without it a remote could hold a thread forever; libgit2 1.5 only fails on bad input. */
	if (git_stream_register(GIT_STREAM_STANDARD, &reg) < 0) {
		fprintf(stderr, "projsync: warning: git remotes are not time-bounded: %s\n",
			git_error_last() ? git_error_last()->message : "stream registration failed");
		git_error_clear();
	}
}

/* Records a libgit2 failure as `code` with our context, then libgit2's message. */
static int __attribute__((format(printf, 3, 4)))
git_fail(int code, const char *slug, const char *fmt, ...)
{
	const git_error *e = git_error_last();
	char ctx[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	/* A bound we hit, or a cancel, is the cause, whatever libgit2 reported on the way up. */
	if (op_stopped)
		code = ps_error_set(PS_ECANCELLED, "cancelled", "cancelled by request");
	else if (op_timed_out && code == PS_EUPSTREAM)
		code = ps_error_set(code, "upstream_timeout", "%s: %s", ctx, op_timeout_msg);
	else
		code = ps_error_set(code, slug, "%s: %s", ctx,
				    e && e->message ? e->message : "unknown libgit2 error");
	git_error_clear();
	return code;
}

/* A URL or scp-like address (user@host:path) rather than a path. */
static bool looks_remote(const char *location)
{
	const char *colon = strchr(location, ':');
	const char *slash = strchr(location, '/');

	if (strstr(location, "://"))
		return true;
	return location[0] != '/' && location[0] != '.' && colon && (!slash || colon < slash) &&
	       strchr(location, '@') != NULL;
}

/* A remote that is not git://, http(s):// or file://: libgit2 1.5 hands every other remote with a
 * ':' to its ssh transport (transport.c, transport_find_fn; "foo://h/x" included), so all of
 * them are left to git (ssh://, git+ssh://, ssh+git://, user@host:path; git refuses the
 * rest, GIT_ALLOW_PROTOCOL) and libgit2 never makes an ssh connection. */
static bool is_ssh(const char *location)
{
	static const char *const others[] = { "git://", "http://", "https://", "file://", NULL };

	for (size_t i = 0; others[i]; i++)
		if (strncasecmp(location, others[i], strlen(others[i])) == 0)
			return false;
	return true;
}

/*
 * <data dir>/ssh, beside <data dir>/cache, as an absolute path: the listing runs git in it
 * (git_cli.c), so a relative one would send ssh to <it>/<it>/known_hosts and the key there, and
 * GIT_DIR to <it>/<it>/empty.git (a --db given relative makes it relative).
 */
static char *ssh_dir_for(const char *cache_dir)
{
	size_t n = strlen(cache_dir);
	char *dir, *cwd, *abs;

	while (n > 1 && cache_dir[n - 1] == '/')
		n--;
	while (n > 0 && cache_dir[n - 1] != '/')
		n--;
	while (n > 1 && cache_dir[n - 1] == '/')
		n--;
	if (n == 0)
		dir = ps_strdup("ssh");
	else
		dir = ps_asprintf("%.*s/ssh", (int)(n == 1 && cache_dir[0] == '/' ? 0 : n),
				  cache_dir);
	if (dir[0] == '/' || !(cwd = getcwd(NULL, 0)))
		return dir; /* no working directory: ssh fails later, naming the path */
	abs = ps_asprintf("%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", dir);
	free(cwd);
	free(dir);
	return abs;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_strv(struct ps_strv *sv)
{
	if (sv->n > 1)
		qsort(sv->v, sv->n, sizeof(char *), cmp_str);
}

/* The cache directory name of a URL: a hash, so any URL maps to a safe, fixed-length name. */
static char *cache_path_for(const char *cache_dir, const char *url)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char name[33];

	EVP_Digest(url, strlen(url), md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 16; i++) {
		name[2 * i] = hex[md[i] >> 4];
		name[2 * i + 1] = hex[md[i] & 15];
	}
	name[32] = '\0';
	return ps_asprintf("%s/git-%s.git", cache_dir, name);
}

/*
 * Serialises the changes to one cache (its creation, ref updates, fetches): two projects on
 * the same URL (two branches of one repository), in this process or another (a CLI sync beside
 * the server), share the cache, and git refuses a second fetch while the first holds its
 * shallow.lock, as libgit2 refuses a ref (or the config of a new repository) another writer
 * has locked. The lock is a file inside the cache, taken with flock(2) so that a killed
 * holder releases it; a git fetch inherits it (git_cli.h, lock_fd), so it is held while that
 * git runs even when the projsync that started it was killed. The wait is bounded by the
 * operation's deadline when it has one, and ends at a cancel; a holder's fetch is bounded by
 * the network timeout, except the git of a killed projsync, which runs until git itself gives
 * up. Returns the open descriptor in *fd, to be given to cache_unlock.
 */
static int cache_lock(struct git_source *s, int *fd)
{
	char *path = ps_asprintf("%s/projsync-fetch.lock", s->cache_path);
	int rc = 0;

	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		rc = ps_error_set(PS_EIO, "cache_failed", "cannot open the lock of cache %s: %s",
				  s->cache_path, strerror(errno));
		goto out;
	}
	while (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			rc = ps_error_set(PS_EIO, "cache_failed", "cannot lock cache %s: %s",
					  s->cache_path, strerror(errno));
			break;
		}
		if ((rc = ps_source_stopped(&s->base)) < 0)
			break;
		if (op_deadline > 0 && ps_mono_ms() >= op_deadline) {
			rc = ps_error_set(PS_EUPSTREAM, "upstream_timeout", "timed out waiting for "
					  "another sync fetching %s into the same cache", s->location);
			break;
		}
		usleep(20 * 1000);
	}
	if (rc < 0) {
		close(*fd);
		*fd = -1;
		goto out;
	}
	/* Holding the lock, no fetch of projsync's runs in this cache (a git fetch holds it as
	 * long as it lives): a shallow.lock here was left by a git fetch that was killed (a
	 * cancel or a timeout kills it), and git would refuse every later fetch on it. */
	free(path);
	path = ps_asprintf("%s/shallow.lock", s->cache_path);
	if (unlink(path) < 0 && errno != ENOENT) {
		rc = ps_error_set(PS_EIO, "cache_failed", "cannot remove the stale %s: %s", path,
				  strerror(errno));
		close(*fd);
		*fd = -1;
	}
out:
	free(path);
	return rc;
}

static void cache_unlock(int fd)
{
	if (fd >= 0)
		close(fd);  /* releases the flock */
}

/*
 * Opens the cache repository of a remote source, creating it on first use. Under the cache's
 * lock: two syncs of one URL starting at once would otherwise both run git_repository_init
 * (one failing on config.lock), or one would open a cache the other is still creating.
 */
static int cache_open(struct git_source *s)
{
	int rc, fd = -1;

	if (s->repo)
		return 0;
	if ((rc = ps_mkdir_p(s->cache_path)) < 0 || (rc = cache_lock(s, &fd)) < 0)
		return rc;
	if (git_repository_open_bare(&s->repo, s->cache_path) != 0) {
		git_error_clear();
		if (git_repository_init(&s->repo, s->cache_path, 1) < 0)
			rc = git_fail(PS_EIO, "cache_failed", "cannot create cache repository %s",
				      s->cache_path);
	}
	cache_unlock(fd);
	return rc;
}


/* Anonymous access, except for ssh where the agent may hold a key. Asked again after a refusal,
 * we give up rather than loop. */
static int on_credentials(git_credential **out, const char *url, const char *user_from_url,
			  unsigned int allowed, void *payload)
{
	struct call_state *cs = payload;
	const char *user = user_from_url && *user_from_url ? user_from_url : "git";

	if (cs->credential_tries++ > 0)
		return GIT_PASSTHROUGH;
	if (allowed & GIT_CREDENTIAL_SSH_KEY)
		return git_credential_ssh_key_from_agent(out, user);
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	return GIT_PASSTHROUGH;
}

/*
 * ssh remotes are listed and fetched by git and OpenSSH (remote_list), against projsync's own
 * known_hosts. libgit2 1.5.1 would check ~/.ssh/known_hosts instead (there is none under the
 * service, HOME=/), so an ssh connection of libgit2's is refused outright rather than trusted
 * by other rules. TLS certificates keep libgit2's verdict.
 */
static int on_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
	(void)valid;
	(void)payload;
	(void)host;
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		git_error_set_str(GIT_ERROR_SSH, "projsync does not connect to ssh hosts through "
				  "libgit2");
		return GIT_ECERTIFICATE;
	}
	return GIT_PASSTHROUGH;
}

static void callbacks_init(git_remote_callbacks *cbs, struct call_state *cs)
{
	git_remote_init_callbacks(cbs, GIT_REMOTE_CALLBACKS_VERSION);
	cbs->credentials = on_credentials;
	cbs->certificate_check = on_certificate;
	cbs->payload = cs;
}

/*
 * Connects to the remote for fetching and counts the round trip. With `with_cache` the remote
 * is bound to the cache repository (needed to fetch); otherwise it is detached (enough to list).
 */
static int remote_connect(struct git_source *s, bool with_cache, git_remote **out,
			  const git_remote_callbacks *cbs)
{
	git_remote *r = NULL;
	int rc, err;

	if (with_cache) {
		if ((rc = cache_open(s)) < 0)
			return rc;
		git_remote_create_options co;
		git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
		co.repository = s->repo;
		/* url.*.insteadOf rewriting is skipped: the detached remote used for listing cannot
		 * apply it, both must reach the same place, and libgit2 1.5 leaks memory on every
		 * config entry its insteadOf regex does not match. */
		co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
		err = git_remote_create_with_opts(&r, s->location, &co);
	} else {
		err = git_remote_create_detached(&r, s->location);
	}
	if (err < 0)
		return git_fail(PS_EINVAL, "bad_source", "bad git URL %s", s->location);
	s->base.requests++;
	if (git_remote_connect(r, GIT_DIRECTION_FETCH, cbs, NULL, NULL) < 0) {
		/* The words of the GitHub source: unreachable when the network failed, an error
		 * when the remote answered with one (the server answers the two differently). */
		rc = op_net_failed
			     ? git_fail(PS_EUPSTREAM, "upstream_unreachable", "cannot connect to %s",
					s->location)
			     : git_fail(PS_EUPSTREAM, "upstream_error", "%s answered with an error",
					s->location);
		git_remote_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static void remote_heads_dispose(struct remote_heads *h)
{
	ps_strv_dispose(&h->names);
	free(h->oids);
	free(h->default_branch);
	memset(h, 0, sizeof(*h));
}

/* The branches a connected remote advertises and its default branch. */
static int remote_heads_list(struct git_source *s, git_remote *r, struct remote_heads *h)
{
	const git_remote_head **refs;
	git_buf def = GIT_BUF_INIT;
	size_t n;

	memset(h, 0, sizeof(*h));
	if (git_remote_ls(&refs, &n, r) < 0)
		return git_fail(PS_EUPSTREAM, NULL, "cannot list branches of %s", s->location);
	h->oids = ps_calloc(n ? n : 1, sizeof(git_oid));
	for (size_t i = 0; i < n; i++) {
		if (strncmp(refs[i]->name, HEADS_PREFIX, HEADS_PREFIX_LEN) != 0)
			continue;
		git_oid_cpy(&h->oids[h->names.n], &refs[i]->oid);
		ps_strv_push(&h->names, refs[i]->name + HEADS_PREFIX_LEN);
	}
	/* Not knowing the default is not an error: an empty remote has none. */
	if (git_remote_default_branch(&def, r) == 0 &&
	    strncmp(def.ptr, HEADS_PREFIX, HEADS_PREFIX_LEN) == 0) {
		for (size_t i = 0; i < h->names.n; i++)
			if (strcmp(h->names.v[i], def.ptr + HEADS_PREFIX_LEN) == 0)
				h->default_branch = ps_strdup(h->names.v[i]);
	}
	git_buf_dispose(&def);
	git_error_clear();
	return 0;
}

/* remote_heads from `git ls-remote --symref` output: "OID\tREF" lines, and "ref: TARGET\tHEAD"
 * for the default branch. */
static int remote_heads_parse(struct git_source *s, const char *text, struct remote_heads *h)
{
	char *def = NULL;
	size_t cap = 0;

	memset(h, 0, sizeof(*h));
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n'), *tab;
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char *line = ps_strndup(p, len);

		p += len + (e ? 1 : 0);
		if (!(tab = strchr(line, '\t'))) {
			free(line);
			continue;
		}
		if (strncmp(line, "ref: ", 5) == 0) {
			if (strcmp(tab + 1, "HEAD") == 0 &&
			    strncmp(line + 5, HEADS_PREFIX, HEADS_PREFIX_LEN) == 0) {
				free(def);
				def = ps_strndup(line + 5 + HEADS_PREFIX_LEN,
						 (size_t)(tab - line) - 5 - HEADS_PREFIX_LEN);
			}
		} else if (strncmp(tab + 1, HEADS_PREFIX, HEADS_PREFIX_LEN) == 0 &&
			   tab[1 + HEADS_PREFIX_LEN]) {
			if (tab - line != GIT_OID_HEXSZ) {
				int rc = ps_error_set(PS_EUPSTREAM, "upstream_error", "cannot list "
						      "branches of %s: git ls-remote printed "
						      "'%.80s'", s->location, line);
				free(line);
				free(def);
				remote_heads_dispose(h);
				return rc;
			}
			if (h->names.n == cap) {
				cap = cap ? cap * 2 : 16;
				h->oids = ps_realloc(h->oids, cap * sizeof(git_oid));
			}
			if (git_oid_fromstrn(&h->oids[h->names.n], line, GIT_OID_HEXSZ) < 0) {
				git_error_clear();
				free(line);
				continue;
			}
			ps_strv_push(&h->names, tab + 1 + HEADS_PREFIX_LEN);
		}
		free(line);
	}
	if (!h->oids)
		h->oids = ps_calloc(1, sizeof(git_oid));
	for (size_t i = 0; def && i < h->names.n; i++)
		if (strcmp(h->names.v[i], def) == 0)
			h->default_branch = ps_strdup(def);
	free(def);
	return 0;
}

/*
 * The remote's branches and default. Over ssh through `git ls-remote` (git_cli.c), so that one
 * ssh (OpenSSH, with projsync's known_hosts and key) makes every connection: libgit2 1.5.1's
 * libssh2 transport reads ~/.ssh/known_hosts only, knows no accept-new, and needs a second
 * setup of keys. Other remotes: one libgit2 connection. With `with_cache` the cache is opened
 * (created) first, as resolve needs it.
 */
static int remote_list(struct git_source *s, bool with_cache, struct remote_heads *h)
{
	git_remote_callbacks cbs;
	struct call_state cs = {0};
	git_remote *r = NULL;
	int rc;

	memset(h, 0, sizeof(*h));
	if (s->ssh) {
		struct ps_git_cli_ls l = {
			.url = s->location,
			.ssh_dir = s->ssh_dir,
			.deadline_ms = op_deadline,
			.stop = op_src ? op_src->stop : NULL,
			.stop_ud = op_src ? op_src->stop_ud : NULL,
		};
		char *text = NULL;
		size_t len;

		if (with_cache && (rc = cache_open(s)) < 0)
			return rc;
		s->base.requests++;
		if ((rc = ps_git_cli_ls_remote(&l, &text, &len)) < 0)
			return rc;
		rc = remote_heads_parse(s, text, h);
		free(text);
		return rc;
	}
	callbacks_init(&cbs, &cs);
	if ((rc = remote_connect(s, with_cache, &r, &cbs)) < 0)
		return rc;
	rc = remote_heads_list(s, r, h);
	git_remote_free(r);
	return rc;
}

/* Fills `out` from the commit a reference points to (through annotated tags if need be). */
/*
 * The head commit's bytes must hash to its id: libgit2 no longer re-hashes what it reads
 * (libgit2_setup), and the commit names the tree check_tree holds the snapshot to, so a commit
 * object holding another commit's bytes would make another tree the snapshot of this commit.
 * One object per resolve; blobs and trees are checked downstream.
 */
static int verify_commit(struct git_source *s, const git_oid *id)
{
	git_odb *odb = NULL;
	git_odb_object *o = NULL;
	git_oid got = {{0}};
	char want_hex[PS_SHA_HEX], got_hex[PS_SHA_HEX];
	int rc = 0;

	if (git_repository_odb(&odb, s->repo) < 0 || git_odb_read(&o, odb, id) < 0) {
		git_oid_tostr(want_hex, sizeof(want_hex), id);
		rc = git_fail(PS_EUPSTREAM, NULL, "cannot read commit %s in %s", want_hex,
			      s->location);
		goto out;
	}
	if (git_odb_hash(&got, git_odb_object_data(o), git_odb_object_size(o),
			 git_odb_object_type(o)) < 0 || !git_oid_equal(&got, id)) {
		git_error_clear();
		git_oid_tostr(want_hex, sizeof(want_hex), id);
		git_oid_tostr(got_hex, sizeof(got_hex), &got);
		rc = ps_error_set(PS_EUPSTREAM, "sha_mismatch",
				  "commit %s in %s failed verification (content hashes to %s)",
				  want_hex, s->location, got_hex);
	}
out:
	git_odb_object_free(o);
	git_odb_free(odb);
	return rc;
}

/* The head commit and root tree of a branch. When the branch still points at `known` (the
 * last sync's commit; may be NULL) only the commit is filled: its tree cannot have changed and
 * the caller has it (source.h, resolve), so no object is read, the common case of a scheduled
 * check that finds nothing new. */
static int head_from_ref(struct git_source *s, const char *refname, const char *known,
			 struct ps_head *out)
{
	git_reference *ref = NULL, *direct = NULL;
	git_object *obj = NULL;
	git_oid known_oid;
	int rc = 0;

	if (git_reference_lookup(&ref, s->repo, refname) == 0 && known && ps_sha_valid(known) &&
	    known[40] == '\0' && git_oid_fromstr(&known_oid, known) == 0 &&
	    git_reference_resolve(&direct, ref) == 0 && git_reference_target(direct) &&
	    git_oid_equal(git_reference_target(direct), &known_oid)) {
		snprintf(out->commit, PS_SHA_HEX, "%s", known);
		out->tree[0] = '\0';
		goto cleanup;
	}
	git_error_clear();
	s->objects_read = true;
	if ((!ref && git_reference_lookup(&ref, s->repo, refname) < 0) ||
	    git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) < 0) {
		rc = git_fail(PS_EUPSTREAM, NULL, "cannot read %s in %s", refname, s->location);
		goto cleanup;
	}
	if ((rc = verify_commit(s, git_object_id(obj))) < 0)
		goto cleanup;
	git_oid_tostr(out->commit, PS_SHA_HEX, git_object_id(obj));
	git_oid_tostr(out->tree, PS_SHA_HEX, git_commit_tree_id((git_commit *)obj));
cleanup:
	git_object_free(obj);
	git_reference_free(direct);
	git_reference_free(ref);
	return rc;
}

static int branch_not_found(struct git_source *s, const char *branch)
{
	return ps_error_set(PS_ENOTFOUND, "branch_not_found", "branch '%s' not found in %s%s",
			    branch, s->location, ps_source_branch_hint(branch));
}

static int repository_empty(struct git_source *s)
{
	return ps_error_set(PS_EEMPTY, "empty", "repository is empty: %s", s->location);
}

/* "refs/heads/<branch>" for a name git accepts, so a name cannot smuggle in a refspec. */
static int branch_refname(struct git_source *s, const char *branch, char **out)
{
	char *refname = ps_asprintf(HEADS_PREFIX "%s", branch);
	int valid = 0;

	/* git itself refuses to name a branch "-x" (it would read as an option). */
	if (git_reference_name_is_valid(&valid, refname) < 0 || !valid || !*branch ||
	    branch[0] == '-') {
		git_error_clear();
		free(refname);
		return ps_error_set(PS_ENOTFOUND, "branch_not_found",
				    "branch '%s' not found in %s: not a valid branch name", branch,
				    s->location);
	}
	*out = refname;
	return 0;
}

/* ---- local repositories ---- */

static int local_branch_names(struct git_source *s, struct ps_strv *out)
{
	git_branch_iterator *it = NULL;
	git_reference *ref;
	git_branch_t type;
	int err;

	if (git_branch_iterator_new(&it, s->repo, GIT_BRANCH_LOCAL) < 0)
		return git_fail(PS_EUPSTREAM, NULL, "cannot list branches of %s", s->location);
	while ((err = git_branch_next(&ref, &type, it)) == 0) {
		ps_strv_push(out, git_reference_name(ref) + HEADS_PREFIX_LEN);
		git_reference_free(ref);
	}
	git_branch_iterator_free(it);
	if (err != GIT_ITEROVER) {
		ps_strv_dispose(out);
		return git_fail(PS_EUPSTREAM, NULL, "cannot list branches of %s", s->location);
	}
	git_error_clear();
	sort_strv(out);
	return 0;
}

/*
 * The branch HEAD names (it may not exist yet: an unborn HEAD). A detached HEAD names no
 * branch, so the first branch (sorted) at the same commit stands in; *out stays NULL if none.
 */
static int local_head_branch(struct git_source *s, const struct ps_strv *names, char **out)
{
	git_reference *head = NULL;
	int rc = 0;

	*out = NULL;
	if (git_reference_lookup(&head, s->repo, "HEAD") < 0) {
		git_error_clear();
		return 0;
	}
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		const char *target = git_reference_symbolic_target(head);
		if (strncmp(target, HEADS_PREFIX, HEADS_PREFIX_LEN) == 0)
			*out = ps_strdup(target + HEADS_PREFIX_LEN);
	} else {
		const git_oid *head_oid = git_reference_target(head);
		for (size_t i = 0; i < names->n && !*out; i++) {
			char *refname = ps_asprintf(HEADS_PREFIX "%s", names->v[i]);
			git_oid oid;
			if (git_reference_name_to_id(&oid, s->repo, refname) == 0 && head_oid &&
			    git_oid_equal(&oid, head_oid))
				*out = ps_strdup(names->v[i]);
			free(refname);
		}
		git_error_clear();
	}
	git_reference_free(head);
	return rc;
}

/* Whether refs/heads/<name> exists: one lookup, not a listing of every branch. */
static bool local_branch_exists(struct git_source *s, const char *name)
{
	char *refname = ps_asprintf(HEADS_PREFIX "%s", name);
	git_reference *ref = NULL;
	bool found = git_reference_lookup(&ref, s->repo, refname) == 0;

	git_reference_free(ref);
	git_error_clear();
	free(refname);
	return found;
}

static int local_branches(struct git_source *s, struct ps_strv *out, char **default_branch)
{
	struct ps_strv names = {0};
	char *def = NULL;
	int rc;

	/* Only the default asked for (every sync of a project that follows it): a symbolic
	 * HEAD names it, and one lookup says whether it is born. Listing the branches (a
	 * directory walk and the packed refs) is left to a detached HEAD. */
	if (!out) {
		git_reference *head = NULL;
		if (git_reference_lookup(&head, s->repo, "HEAD") < 0) {
			git_error_clear();
			*default_branch = NULL;
			return 0;
		}
		if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC &&
		    strncmp(git_reference_symbolic_target(head), HEADS_PREFIX,
			    HEADS_PREFIX_LEN) == 0) {
			const char *name = git_reference_symbolic_target(head) + HEADS_PREFIX_LEN;
			*default_branch = local_branch_exists(s, name) ? ps_strdup(name) : NULL;
			git_reference_free(head);
			return 0;
		}
		git_reference_free(head);
	}
	if ((rc = local_branch_names(s, &names)) < 0)
		return rc;
	if ((rc = local_head_branch(s, &names, &def)) < 0) {
		ps_strv_dispose(&names);
		return rc;
	}
	/* An unborn HEAD is no default branch anyone can sync. */
	if (def && (names.n == 0 || !bsearch(&def, names.v, names.n, sizeof(char *), cmp_str))) {
		free(def);
		def = NULL;
	}
	if (out)
		*out = names;
	else
		ps_strv_dispose(&names);
	*default_branch = def;
	return 0;
}

static int local_resolve(struct git_source *s, const char *branch, const char *known,
			 struct ps_head *out)
{
	struct ps_strv names = {0};
	char *def = NULL, *refname = NULL;
	int rc;

	/* The common case, a branch that exists: read it without listing every branch. */
	if (branch && branch_refname(s, branch, &refname) == 0) {
		git_reference *ref = NULL;
		bool found = git_reference_lookup(&ref, s->repo, refname) == 0;
		git_reference_free(ref);
		git_error_clear();
		if (found) {
			rc = head_from_ref(s, refname, known, out);
			free(refname);
			return rc;
		}
		free(refname);
		refname = NULL;
	}
	ps_error_clear();
	if ((rc = local_branch_names(s, &names)) < 0)
		return rc;
	if (names.n == 0) {
		rc = repository_empty(s);
		goto cleanup;
	}
	if (!branch) {
		if ((rc = local_head_branch(s, &names, &def)) < 0)
			goto cleanup;
		if (!def) {
			rc = ps_error_set(PS_ENOTFOUND, "branch_not_found",
					  "%s has no default branch (HEAD is detached)", s->location);
			goto cleanup;
		}
		branch = def;
	}
	if ((rc = branch_refname(s, branch, &refname)) < 0)
		goto cleanup;
	if (!bsearch(&branch, names.v, names.n, sizeof(char *), cmp_str)) {
		rc = branch_not_found(s, branch);
		goto cleanup;
	}
	rc = head_from_ref(s, refname, known, out);
cleanup:
	free(refname);
	free(def);
	ps_strv_dispose(&names);
	return rc;
}

/* ---- remote repositories ---- */

static int remote_branches(struct git_source *s, struct ps_strv *out, char **default_branch)
{
	struct remote_heads h;
	int rc;

	op_begin(s->bounded, &s->base);
	rc = remote_list(s, false, &h);
	op_end();
	if (rc < 0)
		return rc;
	sort_strv(&h.names);
	if (out) {
		*out = h.names;
		h.names = (struct ps_strv){0};
	}
	*default_branch = h.default_branch;
	h.default_branch = NULL;
	remote_heads_dispose(&h);
	return 0;
}

/*
 * Deletes cache refs that would collide with `refname` as a directory or a file
 * (refs/heads/a vs refs/heads/a/b): upstream may have deleted one and created the other. Their
 * objects stay in the cache.
 */
static void cache_clear_ref_conflicts(struct git_source *s, const char *refname)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	size_t len = strlen(refname);

	if (git_reference_iterator_glob_new(&it, s->repo, HEADS_PREFIX "*") < 0) {
		git_error_clear();
		return;
	}
	while (git_reference_next(&ref, it) == 0) {
		const char *name = git_reference_name(ref);
		size_t nlen = strlen(name);
		if ((nlen > len && strncmp(name, refname, len) == 0 && name[len] == '/') ||
		    (len > nlen && strncmp(refname, name, nlen) == 0 && refname[nlen] == '/'))
			git_reference_delete(ref);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	git_error_clear();
}

/* The committer time (epoch seconds) of `sha` when the cache holds that commit, else 0. */
static int64_t cached_commit_time(struct git_source *s, const char *sha)
{
	git_commit *c = NULL;
	git_oid oid;
	int64_t t = 0;

	if (!sha || git_oid_fromstrn(&oid, sha, strlen(sha)) < 0 || strlen(sha) != 40)
		return 0;
	if (git_commit_lookup(&c, s->repo, &oid) == 0) {
		t = (int64_t)git_commit_time(c);
		git_commit_free(c);
	}
	git_error_clear();
	return t > 0 ? t : 0;
}

static int remote_resolve(struct git_source *s, const char *branch, const char *known,
			  struct ps_head *out)
{
	struct remote_heads h = {0};
	git_odb *odb = NULL;
	git_reference *ref = NULL;
	char *refname = NULL;
	size_t i;
	int rc, lock_fd = -1;

	op_begin(s->bounded, &s->base);
	/* The fetch, if any, makes its own connection: this one is closed by then. */
	if ((rc = remote_list(s, true, &h)) < 0)
		goto cleanup;
	if (h.names.n == 0) {
		rc = repository_empty(s);
		goto cleanup;
	}
	if (!branch) {
		if (!h.default_branch) {
			rc = ps_error_set(PS_ENOTFOUND, "branch_not_found",
					  "%s does not name a default branch", s->location);
			goto cleanup;
		}
		branch = h.default_branch;
	}
	if ((rc = branch_refname(s, branch, &refname)) < 0)
		goto cleanup;
	for (i = 0; i < h.names.n && strcmp(h.names.v[i], branch) != 0; i++)
		;
	if (i == h.names.n) {
		rc = branch_not_found(s, branch);
		goto cleanup;
	}

	if ((rc = cache_lock(s, &lock_fd)) < 0)
		goto cleanup;
	cache_clear_ref_conflicts(s, refname);
	if (git_repository_odb(&odb, s->repo) < 0) {
		rc = git_fail(PS_EIO, NULL, "cannot open cache %s", s->cache_path);
		goto cleanup;
	}
	if (git_odb_exists(odb, &h.oids[i])) {
		/* Already in the cache (unchanged, or pushed back to an older commit): a fetched
		 * commit always arrives with its whole tree, so no fetch is needed. */
		if (git_reference_create(&ref, s->repo, refname, &h.oids[i], 1, "projsync") < 0) {
			rc = git_fail(PS_EIO, NULL, "cannot update cache %s", s->cache_path);
			goto cleanup;
		}
	} else {
		/* git's own CLI, shallow: libgit2 1.5 can only fetch the whole history. The
		 * commit of the cache's ref goes out as a "have", so only what it lacks comes. */
		struct ps_git_cli_fetch f = {
			.git_dir = s->cache_path,
			.url = s->location,
			.refname = refname,
			.deadline_ms = op_deadline,
			.stop = s->base.stop,
			.stop_ud = s->base.stop_ud,
			.lock_fd = lock_fd,
			.ssh_dir = s->ssh ? s->ssh_dir : NULL,
		};
		s->base.requests++;
		rc = ps_git_cli_fetch(&f, &s->base.bytes);
		if (rc < 0)
			goto cleanup;
	}
	rc = head_from_ref(s, refname, NULL, out);
	if (rc == 0) {
		/* `commits` may deepen the cache along this ref. */
		free(s->fetched_ref);
		s->fetched_ref = refname;
		refname = NULL;
	}
cleanup:
	cache_unlock(lock_fd);
	op_end();
	git_reference_free(ref);
	git_odb_free(odb);
	remote_heads_dispose(&h);
	free(refname);
	return rc;
}

/* ---- commits (`projsync log`) ---- */

static int object_source(struct git_source *s, const char *sha, const char *what, git_oid *oid);

/*
 * `git log BASE..HEAD` over the repository (the cache for a remote), as git 2.39's limit_list
 * walks it: commits in committer-date order (equal dates first come, first served), flags
 * SEEN and UNINTERESTING carried to parents, and the walk ends once every queued commit is
 * uninteresting (after git's five commits of slop for clock skew). Unlike libgit2 1.5's
 * revwalk it tolerates missing parents: a shallow cache and a gc'ed repository have them.
 * A missing parent of a wanted commit means the list may lack commits: `truncated`.
 */
#define WALK_NODES_MAX 200000
#define WALK_SLOP 5

enum { W_SEEN = 1, W_UNINTERESTING = 2, W_PARSED = 4 };

struct walk_node {
	git_oid oid;
	int64_t time;
	unsigned flags;
	size_t *parents;        /* indexes of loaded parents */
	size_t nparents;
	bool parent_missing;
};

struct walk {
	git_repository *repo;
	struct walk_node *nodes;
	size_t n, cap;
	size_t *slots;          /* open addressing over nodes; SIZE_MAX = empty */
	size_t nslots;
	size_t *queue;          /* by time, newest first */
	size_t nq, capq;
	bool too_big;
};

static size_t oid_hash(const git_oid *oid)
{
	size_t h;

	memcpy(&h, oid->id, sizeof(h));
	return h;
}

static void walk_rehash(struct walk *w)
{
	size_t ns = w->nslots ? w->nslots * 2 : 1024;

	free(w->slots);
	w->slots = ps_malloc(ns * sizeof(*w->slots));
	for (size_t i = 0; i < ns; i++)
		w->slots[i] = SIZE_MAX;
	w->nslots = ns;
	for (size_t i = 0; i < w->n; i++) {
		size_t k = oid_hash(&w->nodes[i].oid) & (ns - 1);
		while (w->slots[k] != SIZE_MAX)
			k = (k + 1) & (ns - 1);
		w->slots[k] = i;
	}
}

/* The node of `oid`, loading the commit on first sight; SIZE_MAX when the repository does not
 * have it (or the walk grew past its bound). */
static size_t walk_node(struct walk *w, const git_oid *oid)
{
	git_commit *c = NULL;
	size_t k;

	if (w->n * 2 >= w->nslots)
		walk_rehash(w);
	k = oid_hash(oid) & (w->nslots - 1);
	for (; w->slots[k] != SIZE_MAX; k = (k + 1) & (w->nslots - 1))
		if (git_oid_equal(&w->nodes[w->slots[k]].oid, oid))
			return w->slots[k];
	if (w->n >= WALK_NODES_MAX) {
		w->too_big = true;
		return SIZE_MAX;
	}
	if (git_commit_lookup(&c, w->repo, oid) < 0) {
		git_error_clear();
		return SIZE_MAX;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->nodes = ps_realloc(w->nodes, w->cap * sizeof(*w->nodes));
	}
	memset(&w->nodes[w->n], 0, sizeof(w->nodes[w->n]));
	git_oid_cpy(&w->nodes[w->n].oid, oid);
	w->nodes[w->n].time = (int64_t)git_commit_time(c);
	git_commit_free(c);
	w->slots[k] = w->n;
	return w->n++;
}

/* commit_list_insert_by_date: after every queued commit at least as new. */
static void walk_push(struct walk *w, size_t i)
{
	size_t at = w->nq;

	while (at > 0 && w->nodes[w->queue[at - 1]].time < w->nodes[i].time)
		at--;
	if (w->nq == w->capq) {
		w->capq = w->capq ? w->capq * 2 : 256;
		w->queue = ps_realloc(w->queue, w->capq * sizeof(*w->queue));
	}
	memmove(w->queue + at + 1, w->queue + at, (w->nq - at) * sizeof(*w->queue));
	w->queue[at] = i;
	w->nq++;
}

static void walk_mark_uninteresting(struct walk *w, size_t i)
{
	struct walk_node *n = &w->nodes[i];

	for (size_t k = 0; k < n->nparents; k++) {
		size_t p = n->parents[k];
		if (w->nodes[p].flags & W_UNINTERESTING)
			continue;
		w->nodes[p].flags |= W_UNINTERESTING;
		walk_mark_uninteresting(w, p);
	}
}

/* process_parents: loads the parents of node i, passes its UNINTERESTING on, queues new ones. */
static int walk_parents(struct walk *w, size_t i)
{
	git_commit *c = NULL;
	unsigned np;

	if (w->nodes[i].flags & W_PARSED)
		return 0;
	w->nodes[i].flags |= W_PARSED;
	if (git_commit_lookup(&c, w->repo, &w->nodes[i].oid) < 0) {
		git_error_clear();
		return 0;
	}
	np = git_commit_parentcount(c);
	w->nodes[i].parents = np ? ps_calloc(np, sizeof(size_t)) : NULL;
	for (unsigned k = 0; k < np; k++) {
		size_t p = walk_node(w, git_commit_parent_id(c, k));
		if (p == SIZE_MAX) {
			w->nodes[i].parent_missing = true;
			continue;
		}
		w->nodes[i].parents[w->nodes[i].nparents++] = p;
		if (w->nodes[i].flags & W_UNINTERESTING) {
			if (w->nodes[p].flags & W_SEEN)
				walk_mark_uninteresting(w, p);
			w->nodes[p].flags |= W_UNINTERESTING;
		}
		if (!(w->nodes[p].flags & W_SEEN)) {
			w->nodes[p].flags |= W_SEEN;
			walk_push(w, p);
		}
	}
	git_commit_free(c);
	return 0;
}

static bool walk_all_uninteresting(const struct walk *w)
{
	for (size_t k = 0; k < w->nq; k++)
		if (!(w->nodes[w->queue[k]].flags & W_UNINTERESTING))
			return false;
	return true;
}

static void walk_dispose(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->nodes[i].parents);
	free(w->nodes);
	free(w->slots);
	free(w->queue);
}

static void sig_copy(struct ps_signature *out, const git_signature *sig)
{
	out->name = ps_strdup(sig && sig->name ? sig->name : "");
	out->email = ps_strdup(sig && sig->email ? sig->email : "");
	out->date = sig ? (int64_t)sig->when.time * 1000 : 0;
}

/* The commit `oid` as `log` shows it; -1 when the repository lacks it. */
static int commit_info(git_repository *repo, const git_oid *oid, struct ps_commit *out)
{
	git_commit *c = NULL;
	struct ps_buf parents;
	const char *msg;

	if (git_commit_lookup(&c, repo, oid) < 0) {
		git_error_clear();
		return -1;
	}
	memset(out, 0, sizeof(*out));
	git_oid_tostr(out->sha, sizeof(out->sha), oid);
	ps_buf_init(&parents, SIZE_MAX);
	for (unsigned k = 0; k < git_commit_parentcount(c); k++) {
		char hex[PS_SHA_HEX];
		git_oid_tostr(hex, sizeof(hex), git_commit_parent_id(c, k));
		ps_buf_printf(&parents, "%s%s", k ? " " : "", hex);
	}
	out->parents = ps_buf_take(&parents, NULL);
	sig_copy(&out->author, git_commit_author(c));
	sig_copy(&out->committer, git_commit_committer(c));
	msg = git_commit_message_raw(c);
	msg = msg ? msg : "";
	out->subject = ps_commit_subject(msg, strlen(msg));
	out->message = ps_commit_message_bounded(msg, strlen(msg));
	git_commit_free(c);
	return 0;
}

static int list_range(struct git_source *s, const char *base_commit, const char *head_commit,
		      size_t max, struct ps_commit_list *out, bool *history_cut)
{
	struct walk w = { 0 };
	git_oid head, base;
	size_t hi, bi = SIZE_MAX, wanted = 0, date_slop = WALK_SLOP;
	bool cut = false;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->total = -1;
	*history_cut = false;
	if ((rc = object_source(s, head_commit, "commit", &head)) < 0)
		return rc;
	w.repo = s->repo;
	if ((hi = walk_node(&w, &head)) == SIZE_MAX) {
		walk_dispose(&w);
		return ps_error_set(PS_ENOTFOUND, NULL, "commit %s is not in %s", head_commit,
				    s->location);
	}
	if (base_commit && git_oid_fromstrn(&base, base_commit, strlen(base_commit)) == 0)
		bi = walk_node(&w, &base);
	*history_cut = false;
	if (!base_commit || bi == SIZE_MAX) {
		/* A first sync, or a base the repository lost: only the head is certain. */
		out->v = ps_calloc(1, sizeof(*out->v));
		if (commit_info(s->repo, &head, &out->v[0]) == 0)
			out->n = 1;
		out->truncated = base_commit != NULL;
		walk_dispose(&w);
		return 0;
	}
	w.nodes[bi].flags |= W_SEEN | W_UNINTERESTING;
	w.nodes[hi].flags |= W_SEEN;
	walk_push(&w, hi);
	if (bi != hi)
		walk_push(&w, bi);
	/* limit_list: newest first; `order` collects the interesting ones as they are popped.
	 * `last` is the date of the last one (still_interesting's `date`). */
	size_t *order = NULL, norder = 0, caporder = 0;
	int64_t last = INT64_MAX;
	while (w.nq > 0) {
		size_t i = w.queue[0];
		memmove(w.queue, w.queue + 1, (w.nq - 1) * sizeof(*w.queue));
		w.nq--;
		walk_parents(&w, i);
		if (w.nodes[i].flags & W_UNINTERESTING) {
			walk_mark_uninteresting(&w, i);
			if (w.nq == 0)
				break;
			if (last <= w.nodes[w.queue[0]].time || !walk_all_uninteresting(&w))
				date_slop = WALK_SLOP;
			else
				date_slop--;
			if (date_slop == 0)
				break;
			continue;
		}
		last = w.nodes[i].time;
		if (norder == caporder) {
			caporder = caporder ? caporder * 2 : 256;
			order = ps_realloc(order, caporder * sizeof(*order));
		}
		order[norder++] = i;
		if (w.too_big)
			break;
	}
	for (size_t k = 0; k < norder; k++) {
		struct walk_node *n = &w.nodes[order[k]];
		if (n->flags & W_UNINTERESTING)
			continue;
		if (n->parent_missing)
			cut = true;
		if (wanted < max) {
			if (!out->v)
				out->v = ps_calloc(max, sizeof(*out->v));
			if (commit_info(s->repo, &n->oid, &out->v[out->n]) == 0)
				out->n++;
		}
		wanted++;
	}
	free(order);
	out->truncated = cut || w.too_big || wanted > out->n;
	out->total = cut || w.too_big ? -1 : (int64_t)wanted;
	*history_cut = cut;
	walk_dispose(&w);
	return rc;
}

/*
 * A git URL's cache is shallow: one commit deep per sync (source/git_cli.c). When the range
 * walk runs into its edge, the commits since the last synced one are fetched (`git fetch
 * --shallow-since` its committer time, along the ref resolve fetched) and the walk runs again:
 * the list is then the real one, at the cost of those commits' objects, and only when the
 * head moved by more than one commit (a single new commit's parent is the old head, already
 * here). A fetch that fails leaves the list as it was, marked truncated.
 */
static int git_commits(struct ps_source *src, const char *base_commit, const char *head_commit,
		       size_t max, struct ps_commit_list *out)
{
	struct git_source *s = (struct git_source *)src;
	int64_t since;
	bool cut = false;
	int rc, lock_fd = -1;

	s->objects_read = true;
	if ((rc = list_range(s, base_commit, head_commit, max, out, &cut)) < 0 || !cut ||
	    !s->remote || !s->fetched_ref || !(since = cached_commit_time(s, base_commit)))
		return rc;
	struct ps_git_cli_fetch f = {
		.git_dir = s->cache_path,
		.url = s->location,
		.refname = s->fetched_ref,
		.shallow_since = since,
		.stop = s->base.stop,
		.stop_ud = s->base.stop_ud,
		.ssh_dir = s->ssh ? s->ssh_dir : NULL,
	};
	op_begin(s->bounded, &s->base);
	f.deadline_ms = op_deadline;
	s->base.requests++;
	if ((rc = cache_lock(s, &lock_fd)) == 0) {
		f.lock_fd = lock_fd;
		rc = ps_git_cli_fetch(&f, &s->base.bytes);
	}
	cache_unlock(lock_fd);
	op_end();
	if (rc < 0) {
		char *msg = ps_asprintf("cannot fetch the commits since %.7s, the list of this "
					"sync's commits may be incomplete: %s", base_commit,
					ps_error_message());
		ps_strv_push(&s->base.warnings, msg);
		free(msg);
		ps_error_clear();
		return 0;
	}
	/* The walk's commits were looked up through the odb; new packs must be seen. */
	git_repository_free(s->repo);
	s->repo = NULL;
	if ((rc = cache_open(s)) < 0)
		return rc;
	ps_commit_list_dispose(out);
	return list_range(s, base_commit, head_commit, max, out, &cut);
}

/* ---- local repositories kept open ---- */

/*
 * Local repositories kept open between syncs. Opening one probes its layout and reads config
 * files (the repository's, the user's, the system's): 16% of the CPU of a scheduled check that
 * finds its branch unmoved, at 1,000 projects every 10 s (docs/performance.md). Such a check
 * reads two refs, and libgit2 reads refs from disk at every lookup (a loose ref each time,
 * packed-refs again when its stamp changed), so a kept handle answers what a new one would.
 *
 * Only handles that never read an object are kept: objects open the odb (pack files held
 * open and mapped, an object cache), which a thousand kept handles must not hold, and a new
 * handle sees new packs without relying on libgit2's refresh on a missed lookup. A handle is
 * taken out while a source uses it (a git_repository is not for two threads at once), and
 * dropped when its git directory is no longer the same directory (deleted, replaced by
 * another repository), after REPO_IDLE_MS unused, or beyond REPO_KEPT_MAX, the least recently
 * used first. A kept handle holds no file descriptor.
 */
#define REPO_KEPT_MAX 2048
#define REPO_IDLE_MS (10 * 60 * 1000)

struct kept_repo {
	uint64_t hash;          /* of path, compared first */
	char *path;
	git_repository *repo;
	dev_t dev;
	ino_t ino;
	int64_t used_ms;
};

static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kept_repo *kept;
static size_t nkept, capkept;
static int64_t kept_swept_ms;

static uint64_t path_hash(const char *p)
{
	uint64_t h = 1469598103934665603ull;

	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static bool git_dir_identity(git_repository *repo, dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (stat(git_repository_path(repo), &st) != 0)
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

/* Removes entry i (the caller holds kept_mu); returns its handle. */
static git_repository *kept_remove(size_t i)
{
	git_repository *repo = kept[i].repo;

	free(kept[i].path);
	kept[i] = kept[--nkept];
	return repo;
}

/* A kept handle of `path` whose git directory is still the one it opened, or NULL. */
static git_repository *take_repo(const char *path, dev_t *dev, ino_t *ino)
{
	uint64_t h = path_hash(path);
	git_repository *repo = NULL;
	dev_t d = 0;
	ino_t n = 0;

	pthread_mutex_lock(&kept_mu);
	for (size_t i = 0; i < nkept; i++) {
		if (kept[i].hash == h && strcmp(kept[i].path, path) == 0) {
			d = kept[i].dev;
			n = kept[i].ino;
			repo = kept_remove(i);
			break;
		}
	}
	pthread_mutex_unlock(&kept_mu);
	if (repo && (!git_dir_identity(repo, dev, ino) || *dev != d || *ino != n)) {
		git_repository_free(repo);
		repo = NULL;
	}
	return repo;
}

/* Keeps s->repo for the next source of the same path, or frees it (see above). */
static void keep_repo(struct git_source *s)
{
	git_repository *drop[16];
	size_t ndrop = 0;
	int64_t now = ps_mono_ms();
	uint64_t h = path_hash(s->location);

	if (s->remote || s->objects_read || !s->git_ino) {
		git_repository_free(s->repo);
		return;
	}
	pthread_mutex_lock(&kept_mu);
	for (size_t i = 0; i < nkept; i++) {
		if (kept[i].hash == h && strcmp(kept[i].path, s->location) == 0) {
			/* Another source of the same path kept one meanwhile. */
			pthread_mutex_unlock(&kept_mu);
			git_repository_free(s->repo);
			return;
		}
	}
	/* At most once a minute, and a few at a time: the idle ones. */
	if (now - kept_swept_ms > 60000) {
		kept_swept_ms = now;
		for (size_t i = 0; i < nkept && ndrop < sizeof(drop) / sizeof(*drop) - 1;)
			if (now - kept[i].used_ms > REPO_IDLE_MS)
				drop[ndrop++] = kept_remove(i);
			else
				i++;
	}
	if (nkept == REPO_KEPT_MAX) {
		size_t lru = 0;
		for (size_t i = 1; i < nkept; i++)
			if (kept[i].used_ms < kept[lru].used_ms)
				lru = i;
		drop[ndrop++] = kept_remove(lru); /* the sweep left room for it */
	}
	if (nkept == capkept) {
		capkept = capkept ? capkept * 2 : 64;
		kept = ps_realloc(kept, capkept * sizeof(*kept));
	}
	kept[nkept++] = (struct kept_repo){ .hash = h, .path = ps_strdup(s->location),
					    .repo = s->repo, .dev = s->git_dev,
					    .ino = s->git_ino, .used_ms = now };
	pthread_mutex_unlock(&kept_mu);
	for (size_t i = 0; i < ndrop; i++)
		git_repository_free(drop[i]);
}

size_t ps_git_source_kept(void)
{
	size_t n;

	pthread_mutex_lock(&kept_mu);
	n = nkept;
	pthread_mutex_unlock(&kept_mu);
	return n;
}

/* ---- the ops ---- */

static int git_branches(struct ps_source *src, struct ps_strv *out, char **default_branch)
{
	struct git_source *s = (struct git_source *)src;

	return s->remote ? remote_branches(s, out, default_branch)
			 : local_branches(s, out, default_branch);
}

static int git_resolve(struct ps_source *src, const char *branch, const char *known,
		       struct ps_head *out)
{
	struct git_source *s = (struct git_source *)src;

	/* Listing the remote's refs is the cheap check already; `known` only tells a fetch
	 * since when to bring the commits. A local branch still at `known` costs one ref read. */
	return s->remote ? remote_resolve(s, branch, known, out) : local_resolve(s, branch, known, out);
}

/* The repository objects are read from (the cache for a remote), and `oid` parsed from `sha`. */
static int object_source(struct git_source *s, const char *sha, const char *what, git_oid *oid)
{
	int rc;

	if (!ps_sha_valid(sha) || sha[40] != '\0')
		return ps_error_set(PS_EINVAL, NULL, "bad %s id '%s'", what, sha ? sha : "(null)");
	s->objects_read = true;
	if (s->remote && (rc = cache_open(s)) < 0)
		return rc;
	if (git_oid_fromstr(oid, sha) < 0)
		return git_fail(PS_EINVAL, NULL, "bad %s id '%s'", what, sha);
	return 0;
}

static int cmp_entry_name(const void *a, const void *b)
{
	return strcmp(((const struct ps_tree_entry *)a)->name, ((const struct ps_tree_entry *)b)->name);
}

/*
 * Entry names git itself never writes (fsck: duplicateEntries, hasDot, hasDotdot, fullPathname)
 * but a crafted object can hold: each would make a snapshot that is not a tree (two versions of
 * one path, or a path that means something else on disk). Sorts a copy; `t` is untouched.
 */
static int check_entries(const struct git_source *s, const char *tree_sha, const struct ps_tree *t)
{
	struct ps_tree_entry *v;
	int rc = 0;

	for (size_t i = 0; i < t->n; i++) {
		const char *nm = t->entries[i].name;
		if (!nm[0] || strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 || strchr(nm, '/'))
			return ps_error_set(PS_EUPSTREAM, "bad_tree",
					    "tree %s of %s has an entry named '%.200s', which no git "
					    "tree may hold", tree_sha, s->location, nm);
	}
	if (t->n < 2)
		return 0;
	v = ps_calloc(t->n, sizeof(*v));
	memcpy(v, t->entries, t->n * sizeof(*v));
	qsort(v, t->n, sizeof(*v), cmp_entry_name);
	for (size_t i = 1; i < t->n && rc == 0; i++)
		if (strcmp(v[i - 1].name, v[i].name) == 0)
			rc = ps_error_set(PS_EUPSTREAM, "bad_tree",
					  "tree %s of %s lists '%.200s' twice", tree_sha, s->location,
					  v[i].name);
	free(v);
	return rc;
}

static int git_read_tree(struct ps_source *src, const char *tree_sha, struct ps_tree *out)
{
	struct git_source *s = (struct git_source *)src;
	struct ps_tree t = {0};
	git_tree *tree = NULL;
	git_odb *odb = NULL;
	git_oid oid;
	size_t n;
	int rc, err;

	if ((rc = object_source(s, tree_sha, "tree", &oid)) < 0)
		return rc;
	if ((err = git_tree_lookup(&tree, s->repo, &oid)) < 0)
		return git_fail(err == GIT_ENOTFOUND ? PS_ENOTFOUND : PS_EUPSTREAM, NULL,
				"tree %s not found in %s", tree_sha, s->location);
	if (git_repository_odb(&odb, s->repo) < 0) {
		rc = git_fail(PS_EUPSTREAM, NULL, "cannot open objects of %s", s->location);
		goto cleanup;
	}
	n = git_tree_entrycount(tree);
	t.entries = ps_calloc(n ? n : 1, sizeof(*t.entries));
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		struct ps_tree_entry *pe = &t.entries[t.n++];

		pe->name = ps_strdup(git_tree_entry_name(e));
		/* git's reading of the raw mode, not libgit2's git_tree_entry_filemode (which makes
		 * 120777 an executable file). */
		pe->mode = ps_mode_canonical((uint32_t)git_tree_entry_filemode_raw(e));
		git_oid_tostr(pe->sha, PS_SHA_HEX, git_tree_entry_id(e));
		pe->size = -1;
		if (pe->mode != PS_MODE_TREE && pe->mode != PS_MODE_COMMIT) {
			size_t len;
			git_object_t type;
			/* The header alone: sizes are needed for every file, content for few. */
			if ((err = git_odb_read_header(&len, &type, odb, git_tree_entry_id(e))) < 0) {
				rc = git_fail(err == GIT_ENOTFOUND ? PS_ENOTFOUND : PS_EUPSTREAM, NULL,
					      "blob %s of tree %s not found in %s", pe->sha,
					      tree_sha, s->location);
				goto cleanup;
			}
			/* A crafted tree may give a file's mode to another object: refused, as
			 * its content could not be read as the mode says. */
			if (type != GIT_OBJECT_BLOB) {
				char mode[8];
				ps_mode_string(pe->mode, mode);
				rc = ps_error_set(PS_EUPSTREAM, "bad_tree",
						  "tree %s in %s: entry '%s' has mode %s but is a %s",
						  tree_sha, s->location, pe->name, mode,
						  git_object_type2string(type));
				goto cleanup;
			}
			pe->size = (int64_t)len;
		}
	}
	if ((rc = check_entries(s, tree_sha, &t)) < 0)
		goto cleanup;
	*out = t;
	t = (struct ps_tree){0};
cleanup:
	ps_tree_dispose(&t);
	git_odb_free(odb);
	git_tree_free(tree);
	return rc;
}

static int git_fetch_blobs(struct ps_source *src, const char *const *shas, size_t n,
			   ps_blob_cb cb, void *ud)
{
	struct git_source *s = (struct git_source *)src;

	for (size_t i = 0; i < n; i++) {
		git_blob *blob = NULL;
		git_oid oid;
		int rc, err;

		if ((rc = object_source(s, shas[i], "blob", &oid)) < 0)
			return rc;
		if ((err = git_blob_lookup(&blob, s->repo, &oid)) < 0)
			return git_fail(err == GIT_ENOTFOUND ? PS_ENOTFOUND : PS_EUPSTREAM, NULL,
					"blob %s not found in %s", shas[i], s->location);
		rc = cb(ud, shas[i], git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
		git_blob_free(blob);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void git_fetch_end(struct ps_source *src)
{
	struct git_source *s = (struct git_source *)src;

	for (size_t i = 0; i < s->nfetch; i++)
		free(s->fetch[i]);
	free(s->fetch);
	s->fetch = NULL;
	s->nfetch = s->fetch_pos = 0;
}

/* The set is read in pack order (source/pack_order.h): in id order, as the pipeline gives it,
 * libgit2 inflated each blob's whole delta chain, most of a first sync's time. */
static int git_fetch_begin(struct ps_source *src, const struct ps_head *head,
			   const char *const *shas, size_t n)
{
	struct git_source *s = (struct git_source *)src;
	git_buf objects = {0};
	int rc;

	(void)head;
	git_fetch_end(src);
	s->fetch = ps_calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		s->fetch[i] = ps_strdup(shas[i]);
	s->nfetch = n;
	if (n < 2)
		return 0;
	if (s->remote && (rc = cache_open(s)) < 0)
		return rc;
	if (git_repository_item_path(&objects, s->repo, GIT_REPOSITORY_ITEM_OBJECTS) == 0)
		ps_pack_order(objects.ptr, s->fetch, n);
	git_error_clear();
	git_buf_dispose(&objects);
	return 0;
}

static int git_fetch_next(struct ps_source *src, size_t max, ps_blob_cb cb, void *ud, bool *done)
{
	struct git_source *s = (struct git_source *)src;
	size_t end = s->fetch_pos + max < s->nfetch ? s->fetch_pos + max : s->nfetch;
	int rc;

	if (end > s->fetch_pos &&
	    (rc = git_fetch_blobs(src, (const char *const *)s->fetch + s->fetch_pos,
				  end - s->fetch_pos, cb, ud)) != 0)
		return rc;
	s->fetch_pos = end;
	*done = end >= s->nfetch;
	return 0;
}

static void git_source_free(struct ps_source *src)
{
	struct git_source *s = (struct git_source *)src;

	if (s->repo)
		keep_repo(s);
	free(s->fetched_ref);
	free(s->location);
	free(s->cache_path);
	free(s->ssh_dir);
	free(s);
}

static const struct ps_source_ops git_ops = {
	.kind = "git",
	.branches = git_branches,
	.resolve = git_resolve,
	.read_tree = git_read_tree,
	.fetch_blobs = git_fetch_blobs,
	.fetch_begin = git_fetch_begin,
	.fetch_next = git_fetch_next,
	.fetch_end = git_fetch_end,
	.free = git_source_free,
	.commits = git_commits,
};

int ps_git_source_open(struct ps_source **out, const char *location,
		       const struct ps_source_opts *opts)
{
	struct git_source *s;
	int err;

	if (!location || !*location)
		return ps_error_set(PS_EINVAL, "bad_source", "empty source");
	pthread_once(&libgit2_once, libgit2_setup);
	s = ps_calloc(1, sizeof(*s));
	s->base.ops = &git_ops;
	s->location = ps_strdup(location);
	s->remote = looks_remote(location);
	s->bounded = opts && opts->bounded;
	if (s->remote) {
		if (!opts || !opts->cache_dir || !*opts->cache_dir) {
			git_source_free(&s->base);
			return ps_error_set(PS_EINVAL, NULL,
					    "no cache directory for the remote source %s", location);
		}
		/* The cache is created on first use: opening stays cheap and offline. */
		s->cache_path = cache_path_for(opts->cache_dir, location);
		s->ssh_dir = ssh_dir_for(opts->cache_dir);
		s->ssh = is_ssh(location);
	} else if ((s->repo = take_repo(location, &s->git_dev, &s->git_ino))) {
		/* Kept from an earlier sync of this path (keep_repo). */
	} else if ((err = git_repository_open_ext(&s->repo, location,
						 GIT_REPOSITORY_OPEN_NO_SEARCH, NULL)) < 0) {
		int rc = err == GIT_ENOTFOUND
			 ? ps_error_set(PS_EINVAL, "bad_source", "not a git repository: %s", location)
			 : git_fail(PS_EINVAL, "bad_source", "cannot open repository %s", location);
		git_error_clear();
		git_source_free(&s->base);
		return rc;
	} else if (!git_dir_identity(s->repo, &s->git_dev, &s->git_ino)) {
		s->git_ino = 0; /* not kept */
	}
	*out = &s->base;
	return 0;
}

int ps_git_source_check(const char *location, const struct ps_source_opts *opts)
{
	struct ps_source *src = NULL;
	struct git_source *s;
	struct remote_heads h;
	int rc;

	if ((rc = ps_git_source_open(&src, location, opts)) < 0)
		return rc;
	s = (struct git_source *)src;
	if (s->remote) {
		/* A check answers a user who waits (an HTTP request, `project add`): bounded whole. */
		op_begin(true, NULL);
		if ((rc = remote_list(s, false, &h)) == 0)
			remote_heads_dispose(&h);
		op_end();
	}
	ps_source_free(src);
	return rc;
}
