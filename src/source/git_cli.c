/*
 * The git command line as a fetch transport, under the same network bounds as libgit2's
 * bounded stream (source/git.c).
 *
 * git has no timeout of its own for git:// or for a peer that stalls mid-transfer, so the
 * child is watched: its stderr (progress, forced on), its protocol lines (GIT_TRACE_PACKET) and
 * the pack bytes it receives (GIT_TRACE_PACKFILE, which also gives the byte count) come back
 * on pipes, and when none of them moves for the network timeout, or the operation's deadline
 * passes, its whole process group (remote helpers, ssh, index-pack) is killed. A git:// or
 * http peer that trickles protocol bytes slower than one line per timeout counts as stalled:
 * the line, not the byte, is what can be observed from outside.
 *
 * The child runs in its own session with stdin on /dev/null and an environment built from
 * nothing: no system or global git configuration (credential helpers, hooks, insteadOf, as the
 * libgit2 side), no prompt of any kind, only the network protocols projsync accepts anywhere
 * (GIT_ALLOW_PROTOCOL: never ext:: or other remote helpers), and ssh in batch mode. User input
 * (the URL and the branch) goes after `--` and is refused when it could still read as an
 * option or carries control characters.
 *
 * ssh (git's child) gets projsync's own host-key list and key (ssh_command): the same for the
 * fetch and for the listing of ssh remotes (`git ls-remote`, which source/git.c uses instead of
 * libgit2's libssh2 transport), so one policy decides which host is trusted.
 */
#include "source/git_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "source/source.h"
#include "util/error.h"
#include "util/util.h"

extern char **environ;

#define TAIL_MAX 4096  /* the end of git's stderr kept for the error message */
/* ls-remote's answer: HEAD and the branches; 64 MiB is a million branches. */
#define LS_REMOTE_MAX (64u << 20)

enum { OUT_STDOUT, OUT_STDERR, OUT_PACKET, OUT_PACK, OUT_N };

static bool arg_safe(const char *s)
{
	if (!s || !*s || s[0] == '-')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* The git fatal that follows any ssh failure, saying nothing of its own. */
#define GENERIC_FATAL "Could not read from remote repository."

/*
 * The last "fatal:"/"error:" line of git's stderr, or ssh's own ("ssh: connect to host ...")
 * and a host's ("ERROR: Repository not found."), else its last line; into `out`. git's
 * GENERIC_FATAL counts only when nothing else was said.
 */
static void git_message(const char *tail, size_t len, char *out, size_t outlen)
{
	const char *best = NULL, *last = NULL, *generic = NULL;
	size_t best_len = 0, last_len = 0;
	size_t i = 0;

	while (i < len) {
		size_t j = i;
		while (j < len && tail[j] != '\n' && tail[j] != '\r')
			j++;
		if (j > i) {
			last = tail + i;
			last_len = j - i;
			if ((last_len > 7 && strncmp(last, "fatal: ", 7) == 0) ||
			    (last_len > 7 && strncmp(last, "error: ", 7) == 0)) {
				if (last_len - 7 == strlen(GENERIC_FATAL) &&
				    strncmp(last + 7, GENERIC_FATAL, last_len - 7) == 0) {
					generic = last + 7;
				} else {
					best = last + 7;
					best_len = last_len - 7;
				}
			} else if ((last_len > 5 && strncmp(last, "ssh: ", 5) == 0) ||
				   (last_len > 7 && strncmp(last, "ERROR: ", 7) == 0)) {
				best = last;
				best_len = last_len;
			}
		}
		i = j + 1;
	}
	if (!best && generic) {
		best = generic;
		best_len = strlen(GENERIC_FATAL);
	}
	if (!best) {
		best = last;
		best_len = last_len;
	}
	if (!best)
		snprintf(out, outlen, "git said nothing");
	else
		snprintf(out, outlen, "%.*s", (int)(best_len < 400 ? best_len : 400), best);
}

/*
 * `word` as one word of a shell command line (git runs GIT_SSH_COMMAND through sh), holding
 * `-oNAME="VALUE"`: ssh reads an -o argument as a configuration line, which splits on blanks
 * unless quoted and expands '%' tokens in file names.
 */
static void ssh_path_opt(struct ps_buf *b, const char *name, const char *value)
{
	ps_buf_printf(b, " '-o%s=\"", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\'')
			ps_buf_puts(b, "'\\''");
		else if (*p == '"' || *p == '\\')
			ps_buf_printf(b, "\\%c", *p);
		else if (*p == '%')
			ps_buf_puts(b, "%%");
		else
			ps_buf_append(b, p, 1);
	}
	ps_buf_puts(b, "\"'");
}

int ps_git_ssh_key(const char *ssh_dir, char **out)
{
	const char *v = getenv("PROJSYNC_SSH_KEY");
	char *path;

	*out = NULL;
	if (v && *v) {
		/* ssh would skip a key it cannot read and try the next way in silence: a key set
		 * on purpose that is not there is a mistake to report. */
		if (!(path = realpath(v, NULL)) || access(path, R_OK) != 0) {
			int e = errno;
			free(path);
			return ps_error_set(PS_EINVAL, "bad_ssh_key", "PROJSYNC_SSH_KEY: cannot read %s: %s",
					    v, strerror(e));
		}
		*out = path;
		return 0;
	}
	if (!ssh_dir)
		return 0;
	path = ps_asprintf("%s/" PS_GIT_SSH_DEFAULT_KEY, ssh_dir);
	if (access(path, F_OK) == 0)
		*out = path;
	else
		free(path);
	return 0;
}

int ps_git_ssh_strict(void)
{
	const char *v = getenv("PROJSYNC_SSH_STRICT");

	if (!v || !*v || strcmp(v, "no") == 0)
		return 0;
	if (strcmp(v, "yes") == 0)
		return 1;
	return ps_error_set(PS_EINVAL, "bad_ssh_strict", "PROJSYNC_SSH_STRICT must be yes or no "
			    "(unset: no, a new host's key is recorded on first contact)");
}

/* The ssh command line of every connection (docs/architecture.md, "Git URLs"). */
static int ssh_command(const char *ssh_dir, long secs, char **out)
{
	struct ps_buf b;
	char *key = NULL, *kh;
	int rc, strict;

	if ((strict = ps_git_ssh_strict()) < 0)
		return strict;
	if ((rc = ps_git_ssh_key(ssh_dir, &key)) < 0)
		return rc;
	ps_buf_init(&b, 1 << 16);
	ps_buf_printf(&b, "ssh -o BatchMode=yes -o StrictHostKeyChecking=%s -o HashKnownHosts=no "
		      "-o UpdateHostKeys=no -o ConnectTimeout=%ld -o ServerAliveInterval=%ld "
		      "-o ServerAliveCountMax=1", strict ? "yes" : "accept-new", secs, secs);
	if (ssh_dir) {
		kh = ps_asprintf("%s/known_hosts", ssh_dir);
		ssh_path_opt(&b, "UserKnownHostsFile", kh);
		free(kh);
	}
	if (key) {
		ssh_path_opt(&b, "IdentityFile", key);
		ps_buf_puts(&b, " -o IdentitiesOnly=yes");
		free(key);
	}
	*out = ps_buf_take(&b, NULL);
	return 0;
}

/*
 * A clean environment: what git, ssh and curl need, and the bounds. `ssh_dir` NULL: the remote
 * is not an ssh one, so ssh is not allowed and its settings are not read (a key gone since
 * start-up fails the ssh sources, not the others). `git_dir`: GIT_DIR, or NULL.
 */
static int child_env(int64_t timeout_ms, const char *ssh_dir, const char *git_dir, char ***out)
{
	static const char *const keep[] = { "PATH", "HOME", "SSH_AUTH_SOCK", NULL };
	long secs = (long)((timeout_ms + 999) / 1000);
	char **env, *ssh = NULL;
	size_t n = 0;
	int rc;

	if (ssh_dir && (rc = ssh_command(ssh_dir, secs, &ssh)) < 0)
		return rc;
	env = ps_calloc(32, sizeof(char *));
	for (size_t i = 0; keep[i]; i++) {
		const char *v = getenv(keep[i]);
		if (v)
			env[n++] = ps_asprintf("%s=%s", keep[i], v);
	}
	if (!getenv("PATH"))
		env[n++] = ps_strdup("PATH=/usr/local/bin:/usr/bin:/bin");
	env[n++] = ps_strdup("LC_ALL=C");
	env[n++] = ps_strdup("GIT_CONFIG_NOSYSTEM=1");
	env[n++] = ps_strdup("GIT_CONFIG_GLOBAL=/dev/null");
	env[n++] = ps_strdup("GIT_TERMINAL_PROMPT=0");
	/* Set and empty: git then asks neither core.askPass nor SSH_ASKPASS. */
	env[n++] = ps_strdup("GIT_ASKPASS=");
	if (ssh) {
		env[n++] = ps_strdup("GIT_ALLOW_PROTOCOL=http:https:git:ssh:file");
		env[n++] = ps_asprintf("GIT_SSH_COMMAND=%s", ssh);
		/* Not plink or tortoiseplink, whatever the command's name would suggest to git. */
		env[n++] = ps_strdup("GIT_SSH_VARIANT=ssh");
	} else {
		env[n++] = ps_strdup("GIT_ALLOW_PROTOCOL=http:https:git:file");
	}
	env[n++] = ps_asprintf("GIT_HTTP_LOW_SPEED_LIMIT=1");
	env[n++] = ps_asprintf("GIT_HTTP_LOW_SPEED_TIME=%ld", secs);
	env[n++] = ps_strdup("GIT_PROGRESS_DELAY=0");
	env[n++] = ps_strdup("GIT_TRACE_PACKET=3");
	env[n++] = ps_strdup("GIT_TRACE_PACKFILE=4");
	if (git_dir)
		env[n++] = ps_asprintf("GIT_DIR=%s", git_dir);
	env[n] = NULL;
	free(ssh);
	*out = env;
	return 0;
}

static void strs_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Kills the child's whole session and reaps it. */
static void kill_and_reap(pid_t pid)
{
	int status;

	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}


/* One run of git: what it said and how it ended. */
struct run {
	const char *const *argv;
	const char *name;      /* "git fetch", for messages */
	const char *cwd;       /* NULL: ours */
	const char *ssh_dir;
	const char *git_dir;   /* GIT_DIR; NULL: none */
	int lock_fd;
	int64_t deadline_ms;
	bool (*stop)(void *ud);
	void *stop_ud;
	struct ps_buf *out;    /* NULL: stdout is dropped */
	/* results */
	char tail[TAIL_MAX];   /* the end of stderr */
	size_t tail_len;
	int64_t received;      /* pack bytes */
	bool timed_out;
	int status;
};

static void tail_add(struct run *r, const char *buf, size_t g)
{
	if (g >= TAIL_MAX) {
		memcpy(r->tail, buf + g - TAIL_MAX, TAIL_MAX);
		r->tail_len = TAIL_MAX;
		return;
	}
	if (r->tail_len + g > TAIL_MAX) {
		size_t drop = r->tail_len + g - TAIL_MAX;
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, buf, g);
	r->tail_len += g;
}

/*
 * Runs git under the bounds and collects its output. Returns 0 when git ran to its end
 * (r->status), or when a bound stopped it (r->timed_out); < 0 with the error set when it could
 * not run, was cancelled, or printed more than r->out takes. `what` begins the messages.
 */
static int run_git(struct run *r, const char *what)
{
	int64_t idle_ms = ps_source_net_timeout_ms();
	int fds[OUT_N][2], rc = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char **env = NULL;
	int64_t last_move;
	bool open_fds[OUT_N], spawned = false;
	pid_t pid = -1;

	r->tail_len = 0;
	r->received = 0;
	r->timed_out = false;
	r->status = 0;
	if (r->ssh_dir && mkdir(r->ssh_dir, 0700) < 0 && errno != EEXIST)
		return ps_error_set(PS_EIO, "fetch_failed", "%s: cannot create %s: %s", what,
				    r->ssh_dir, strerror(errno));
	if ((rc = child_env(idle_ms, r->ssh_dir, r->git_dir, &env)) < 0)
		return rc;
	for (int i = 0; i < OUT_N; i++)
		fds[i][0] = fds[i][1] = -1;
	for (int i = 0; i < OUT_N; i++) {
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			rc = ps_error_set(PS_EIO, "fetch_failed", "%s: cannot run git: %s", what,
					  strerror(errno));
			goto cleanup;
		}
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	for (int i = 0; i < OUT_N; i++)
		posix_spawn_file_actions_adddup2(&fa, fds[i][1], i + 1);
	/* The cache's lock goes with git (git_cli.h, lock_fd): a dup2'd descriptor is not
	 * close-on-exec, and it is the same open file, so the same flock. */
	if (r->lock_fd > 2)
		posix_spawn_file_actions_adddup2(&fa, r->lock_fd, OUT_N + 1);
	posix_spawn_file_actions_addclosefrom_np(&fa, r->lock_fd > 2 ? OUT_N + 2 : OUT_N + 1);
	if (r->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, r->cwd);
	posix_spawnattr_init(&attr);
	/* A session of its own: no terminal to prompt on, and one group to kill. Signals a server
	 * thread blocks or ignores must not stay so in git. */
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawnp(&pid, "git", &fa, &attr, (char *const *)r->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		rc = ps_error_set(PS_EUPSTREAM, "fetch_failed",
				  "%s: cannot run git: %s (is git installed?)", what, strerror(rc));
		goto cleanup;
	}
	spawned = true;
	for (int i = 0; i < OUT_N; i++) {
		close(fds[i][1]);
		fds[i][1] = -1;
		open_fds[i] = true;
	}

	last_move = ps_mono_ms();
	for (;;) {
		struct pollfd p[OUT_N];
		int idx[OUT_N], np = 0, n;
		int64_t now = ps_mono_ms(), wait = last_move + idle_ms - now;

		for (int i = 0; i < OUT_N; i++) {
			if (!open_fds[i])
				continue;
			p[np] = (struct pollfd){ .fd = fds[i][0], .events = POLLIN };
			idx[np++] = i;
		}
		if (np == 0)
			break;
		if (r->deadline_ms > 0 && r->deadline_ms - now < wait)
			wait = r->deadline_ms - now;
		if (wait <= 0) {
			r->timed_out = true;
			break;
		}
		if (r->stop && r->stop(r->stop_ud)) {
			rc = ps_error_set(PS_ECANCELLED, "cancelled", "cancelled by request");
			break;
		}
		if (r->stop && wait > 250)
			wait = 250;
		n = poll(p, (nfds_t)np, (int)wait);
		if (n < 0 && errno != EINTR) {
			rc = ps_error_set(PS_EIO, "fetch_failed", "%s: cannot watch git: %s", what,
					  strerror(errno));
			break;
		}
		for (int k = 0; n > 0 && k < np && rc == 0; k++) {
			char buf[65536];
			ssize_t got;
			int i = idx[k];

			if (!p[k].revents)
				continue;
			got = read(fds[i][0], buf, sizeof(buf));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				open_fds[i] = false;
				continue;
			}
			last_move = ps_mono_ms();
			if (i == OUT_PACK)
				r->received += got;
			else if (i == OUT_STDERR)
				tail_add(r, buf, (size_t)got);
			else if (i == OUT_STDOUT && r->out &&
				 ps_buf_append(r->out, buf, (size_t)got) < 0)
				rc = ps_error_set(PS_EUPSTREAM, "upstream_error",
						  "%s: the remote's answer is over %zu bytes", what,
						  r->out->max);
		}
		if (rc < 0)
			break;
	}
	if (r->timed_out || rc < 0) {
		kill_and_reap(pid);
		spawned = false;
		goto cleanup;
	}
	/* Every pipe is closed: git has exited or is about to. */
	while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
		;
	spawned = false;
cleanup:
	if (spawned)
		kill_and_reap(pid);
	for (int i = 0; i < OUT_N; i++) {
		if (fds[i][0] >= 0)
			close(fds[i][0]);
		if (fds[i][1] >= 0)
			close(fds[i][1]);
	}
	strs_free(env);
	return rc;
}

/* What follows `prefix` (at the start of a line of `tail`, or at `tail`), up to `end` or the
 * line's end, into out; false when there is no such line. */
static bool line_after(const char *tail, const char *prefix, const char *end, char *out,
		       size_t outlen)
{
	const char *p = strstr(tail, prefix), *e;

	if (!p || (p != tail && p[-1] != '\n' && p[-1] != '\r'))
		return false;
	p += strlen(prefix);
	e = p + strcspn(p, "\r\n");
	if (end) {
		const char *q = strstr(p, end);
		if (q && q < e)
			e = q;
	}
	snprintf(out, outlen, "%.*s", (int)(e - p < 200 ? e - p : 200), p);
	return true;
}

/*
 * A failed run's error, after `what`: ssh's refusals in projsync's words (the host key, the
 * login), else git's own last error line. ssh prints its warnings on git's stderr.
 */
static int run_failure(const struct run *r, const char *what)
{
	char tail[TAIL_MAX + 1], host[256], msg[512], *kh;
	const char *p;
	int rc;

	if (r->timed_out) {
		char t[32];
		ps_source_net_timeout_text(t, sizeof(t));
		return ps_error_set(PS_EUPSTREAM, "upstream_timeout", "%s: %s timed out (no progress "
				    "within %s; PROJSYNC_NET_TIMEOUT)", what, r->name, t);
	}
	memcpy(tail, r->tail, r->tail_len);
	tail[r->tail_len] = '\0';
	kh = r->ssh_dir ? ps_asprintf("%s/known_hosts", r->ssh_dir) : ps_strdup("known_hosts");
	if (line_after(tail, "Host key for ", " has changed", host, sizeof(host)) ||
	    (strstr(tail, "REMOTE HOST IDENTIFICATION HAS CHANGED") &&
	     snprintf(host, sizeof(host), "the host") > 0)) {
		rc = ps_error_set(PS_EUPSTREAM, "host_key_changed",
				  "%s: the ssh host key of %s has changed: it does not match the one "
				  "recorded in %s (someone may be intercepting the connection; if the "
				  "server's key was replaced on purpose, remove the old one with "
				  "ssh-keygen -R '%s' -f %s)", what, host, kh, host, kh);
	} else if ((p = strstr(tail, " host key is known for ")) &&
		   line_after(p, " host key is known for ", " and you have", host, sizeof(host))) {
		rc = ps_error_set(PS_EUPSTREAM, "host_key_unknown",
				  "%s: the ssh host key of %s is not known and PROJSYNC_SSH_STRICT=yes "
				  "accepts no new one: add it to %s", what, host, kh);
	} else if (strstr(tail, "Host key verification failed.")) {
		rc = ps_error_set(PS_EUPSTREAM, "host_key_unknown",
				  "%s: ssh could not verify the host key against %s", what, kh);
	} else if (line_after(tail, "Load key \"", "\": bad permissions", msg, sizeof(msg))) {
		rc = ps_error_set(PS_EUPSTREAM, "bad_credentials",
				  "%s: ssh refused to use the key %s: others may read it (it must be "
				  "readable by its owner only: chmod 600)", what, msg);
	} else if ((p = strstr(tail, ": Permission denied ("))) {
		size_t l = strcspn(p + 2, "\r\n");
		rc = ps_error_set(PS_EUPSTREAM, "bad_credentials",
				  "%s: the ssh server refused the login (%.*s): projsync offers the "
				  "key in PROJSYNC_SSH_KEY or %s/" PS_GIT_SSH_DEFAULT_KEY ", else the ssh "
				  "agent's keys", what, (int)(l < 200 ? l : 200), p + 2,
				  r->ssh_dir ? r->ssh_dir : "<data dir>/ssh");
	} else {
		const char *slug = "fetch_failed";
		int code = PS_EUPSTREAM;

		git_message(r->tail, r->tail_len, msg, sizeof(msg));
		if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 127) {
			snprintf(msg, sizeof(msg), "cannot run git (is git installed?)");
		} else if (r->out) {
			/* A listing is the check of `project add` and of project creation, which
			 * tell a remote that refused (upstream_error: no such repository, 422,
			 * exit 2) from one that could not be reached (retry later), as the libgit2
			 * listing does (git.c, remote_connect). */
			if (strstr(tail, "transport '") && strstr(tail, "' not allowed")) {
				code = PS_EINVAL;
				slug = "bad_source";
			} else if (strncmp(msg, "ssh: ", 5) == 0 ||
				   strstr(tail, "Connection closed by") ||
				   strstr(tail, "Connection reset by") ||
				   strstr(tail, "kex_exchange_identification")) {
				slug = "upstream_unreachable";
			} else {
				slug = "upstream_error";
			}
		}
		rc = ps_error_set(code, slug, "%s: %s", what, msg);
	}
	free(kh);
	return rc;
}

static bool run_ok(const struct run *r)
{
	return !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

int ps_git_cli_fetch(const struct ps_git_cli_fetch *f, int64_t *bytes)
{
	char *dir_arg, *refspec, *depth_arg, *what;
	struct run *r;
	int rc;

	if (!arg_safe(f->url))
		return ps_error_set(PS_EINVAL, "bad_source", "bad git URL '%s'", f->url);
	if (!arg_safe(f->refname) || strncmp(f->refname, "refs/heads/", 11) != 0 ||
	    f->refname[11] == '-')
		return ps_error_set(PS_ENOTFOUND, "branch_not_found", "not a valid branch: '%s'",
				    f->refname);

	dir_arg = ps_asprintf("--git-dir=%s", f->git_dir);
	refspec = ps_asprintf("+%s:%s", f->refname, f->refname);
	/* git's "@SECONDS +ZONE" date form: no parsing of a date in words, no locale. */
	depth_arg = f->shallow_since > 0
		    ? ps_asprintf("--shallow-since=@%lld +0000", (long long)f->shallow_since)
		    : ps_strdup("--depth=1");
	what = ps_asprintf("cannot fetch from %s", f->url);
	{
		/* Old objects are never pruned (the last synced tree must stay readable after a
		 * force-push), hence no gc or maintenance; hooks and commit-graphs are not ours. */
		const char *argv[] = {
			"git", dir_arg,
			"-c", "gc.auto=0", "-c", "maintenance.auto=false",
			"-c", "core.hooksPath=/dev/null", "-c", "fetch.writeCommitGraph=false",
			"-c", "credential.helper=", "-c", "protocol.version=2",
			"fetch", depth_arg, "--no-tags", "--no-write-fetch-head",
			"--no-recurse-submodules", "--no-auto-maintenance", "--no-show-forced-updates",
			"--progress", "--", f->url, refspec, NULL,
		};

		r = ps_calloc(1, sizeof(*r));
		*r = (struct run){ .argv = argv, .name = "git fetch", .ssh_dir = f->ssh_dir,
				   .lock_fd = f->lock_fd,
				   .deadline_ms = f->deadline_ms, .stop = f->stop,
				   .stop_ud = f->stop_ud };
		rc = run_git(r, what);
	}
	*bytes += r->received;
	if (rc == 0 && !run_ok(r))
		rc = run_failure(r, what);
	free(r);
	free(what);
	free(dir_arg);
	free(refspec);
	free(depth_arg);
	return rc;
}

/*
 * <ssh_dir>/empty.git, an empty bare repository of ours, made when missing. The listing runs
 * with GIT_DIR set to it, so git searches for no repository around the ssh directory (whose
 * configuration, an insteadOf say, would steer it) and reads no configuration but this empty
 * one's. GIT_CEILING_DIRECTORIES cannot fence every path: it is a ':'-separated list without
 * escapes. The layout is the least git takes for a repository (gitrepository-layout(5)).
 */
static int empty_repo(const char *ssh_dir, const char *what, char **out)
{
	static const char head_text[] = "ref: refs/heads/main\n";
	char *dir = ps_asprintf("%s/empty.git", ssh_dir), *head = ps_asprintf("%s/HEAD", dir);
	char *objects = ps_asprintf("%s/objects", dir), *refs = ps_asprintf("%s/refs", dir);
	char *tmp = NULL;
	const char *failed = NULL;
	int fd, rc = 0;

	if (access(head, F_OK) == 0)
		goto done;
	if (mkdir(ssh_dir, 0700) < 0 && errno != EEXIST)
		failed = ssh_dir;
	else if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		failed = dir;
	else if (mkdir(objects, 0700) < 0 && errno != EEXIST)
		failed = objects;
	else if (mkdir(refs, 0700) < 0 && errno != EEXIST)
		failed = refs;
	if (failed)
		goto done;
	/* Written aside then renamed: a listing that runs at the same time never sees half a HEAD. */
	tmp = ps_asprintf("%s/HEAD.XXXXXX", dir);
	if ((fd = mkstemp(tmp)) < 0) {
		failed = tmp;
		goto done;
	}
	if (write(fd, head_text, sizeof(head_text) - 1) != (ssize_t)(sizeof(head_text) - 1) ||
	    close(fd) < 0 || rename(tmp, head) < 0) {
		int e = errno;
		(void)unlink(tmp);
		errno = e;
		failed = head;
	}
done:
	if (failed)
		rc = ps_error_set(PS_EIO, "fetch_failed", "%s: cannot create %s: %s", what, failed,
				  strerror(errno));
	free(tmp);
	free(head);
	free(objects);
	free(refs);
	if (rc == 0)
		*out = dir;
	else
		free(dir);
	return rc;
}

int ps_git_cli_ls_remote(const struct ps_git_cli_ls *l, char **out, size_t *len)
{
	const char *argv[] = {
		"git", "-c", "credential.helper=", "-c", "protocol.version=2",
		"-c", "core.hooksPath=/dev/null",
		"ls-remote", "--symref", "--", l->url, "HEAD", "refs/heads/*", NULL,
	};
	struct ps_buf b;
	struct run *r;
	char *what, *git_dir;
	int rc;

	*out = NULL;
	*len = 0;
	if (!arg_safe(l->url))
		return ps_error_set(PS_EINVAL, "bad_source", "bad git URL '%s'", l->url);
	what = ps_asprintf("cannot list branches of %s", l->url);
	if ((rc = empty_repo(l->ssh_dir, what, &git_dir)) < 0) {
		free(what);
		return rc;
	}
	ps_buf_init(&b, LS_REMOTE_MAX);
	r = ps_calloc(1, sizeof(*r));
	*r = (struct run){ .argv = argv, .name = "git ls-remote", .cwd = l->ssh_dir,
			   .ssh_dir = l->ssh_dir, .git_dir = git_dir, .lock_fd = -1,
			   .deadline_ms = l->deadline_ms, .stop = l->stop, .stop_ud = l->stop_ud,
			   .out = &b };
	rc = run_git(r, what);
	if (rc == 0 && !run_ok(r))
		rc = run_failure(r, what);
	if (rc == 0)
		*out = ps_buf_take(&b, len);
	if (!*out && rc == 0)
		*out = ps_strdup("");
	ps_buf_dispose(&b);
	free(r);
	free(what);
	free(git_dir);
	return rc;
}
