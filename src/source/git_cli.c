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
#include <sys/wait.h>
#include <unistd.h>

#include "source/source.h"
#include "util/error.h"
#include "util/util.h"

extern char **environ;

#define TAIL_MAX 4096  /* the end of git's stderr kept for the error message */

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

/* The last "fatal:"/"error:" line of git's stderr, else its last line; into `out`. */
static void git_message(const char *tail, size_t len, char *out, size_t outlen)
{
	const char *best = NULL, *last = NULL;
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
				best = last + 7;
				best_len = last_len - 7;
			}
		}
		i = j + 1;
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

/* A clean environment: what git, ssh and curl need, and the bounds. */
static char **child_env(int64_t timeout_ms)
{
	static const char *const keep[] = { "PATH", "HOME", "SSH_AUTH_SOCK", NULL };
	long secs = (long)((timeout_ms + 999) / 1000);
	char **env = ps_calloc(32, sizeof(char *));
	size_t n = 0;

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
	env[n++] = ps_strdup("GIT_ALLOW_PROTOCOL=http:https:git:ssh:file");
	env[n++] = ps_asprintf("GIT_SSH_COMMAND=ssh -o BatchMode=yes "
			       "-o StrictHostKeyChecking=accept-new -o ConnectTimeout=%ld "
			       "-o ServerAliveInterval=%ld -o ServerAliveCountMax=1", secs, secs);
	env[n++] = ps_asprintf("GIT_HTTP_LOW_SPEED_LIMIT=1");
	env[n++] = ps_asprintf("GIT_HTTP_LOW_SPEED_TIME=%ld", secs);
	env[n++] = ps_strdup("GIT_PROGRESS_DELAY=0");
	env[n++] = ps_strdup("GIT_TRACE_PACKET=3");
	env[n++] = ps_strdup("GIT_TRACE_PACKFILE=4");
	env[n] = NULL;
	return env;
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

int ps_git_cli_fetch(const struct ps_git_cli_fetch *f, int64_t *bytes)
{
	int64_t idle_ms = ps_source_net_timeout_ms();
	char *dir_arg = NULL, *refspec = NULL, *depth_arg = NULL, **env = NULL;
	int fds[OUT_N][2], rc = 0, status = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char tail[TAIL_MAX];
	size_t tail_len = 0;
	int64_t received = 0, last_move;
	bool open_fds[OUT_N], timed_out = false, spawned = false;
	pid_t pid = -1;

	if (!arg_safe(f->url))
		return ps_error_set(PS_EINVAL, "bad_source", "bad git URL '%s'", f->url);
	if (!arg_safe(f->refname) || strncmp(f->refname, "refs/heads/", 11) != 0 ||
	    f->refname[11] == '-')
		return ps_error_set(PS_ENOTFOUND, "branch_not_found", "not a valid branch: '%s'",
				    f->refname);

	for (int i = 0; i < OUT_N; i++)
		fds[i][0] = fds[i][1] = -1;
	for (int i = 0; i < OUT_N; i++) {
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			rc = ps_error_set(PS_EIO, "fetch_failed", "cannot run git: %s",
					  strerror(errno));
			goto cleanup;
		}
	}
	dir_arg = ps_asprintf("--git-dir=%s", f->git_dir);
	refspec = ps_asprintf("+%s:%s", f->refname, f->refname);
	/* git's "@SECONDS +ZONE" date form: no parsing of a date in words, no locale. */
	depth_arg = f->shallow_since > 0
		    ? ps_asprintf("--shallow-since=@%lld +0000", (long long)f->shallow_since)
		    : ps_strdup("--depth=1");
	env = child_env(idle_ms);
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

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		for (int i = 0; i < OUT_N; i++)
			posix_spawn_file_actions_adddup2(&fa, fds[i][1], i + 1);
		/* The cache's lock goes with git (git_cli.h, lock_fd): a dup2'd descriptor is
		 * not close-on-exec, and it is the same open file, so the same flock. */
		if (f->lock_fd > 2)
			posix_spawn_file_actions_adddup2(&fa, f->lock_fd, OUT_N + 1);
		posix_spawn_file_actions_addclosefrom_np(&fa, f->lock_fd > 2 ? OUT_N + 2 : OUT_N + 1);
		posix_spawnattr_init(&attr);
		/* A session of its own: no terminal to prompt on, and one group to kill. Signals a
		 * server thread blocks or ignores must not stay so in git. */
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
		rc = posix_spawnp(&pid, "git", &fa, &attr, (char *const *)argv, env);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&attr);
		if (rc != 0) {
			rc = ps_error_set(PS_EUPSTREAM, "fetch_failed",
					  "cannot fetch from %s: cannot run git: %s (is git installed?)",
					  f->url, strerror(rc));
			goto cleanup;
		}
		spawned = true;
	}
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
		if (f->deadline_ms > 0 && f->deadline_ms - now < wait)
			wait = f->deadline_ms - now;
		if (wait <= 0) {
			timed_out = true;
			break;
		}
		if (f->stop && f->stop(f->stop_ud)) {
			rc = ps_error_set(PS_ECANCELLED, "cancelled", "cancelled by request");
			break;
		}
		if (f->stop && wait > 250)
			wait = 250;
		n = poll(p, (nfds_t)np, (int)wait);
		if (n < 0 && errno != EINTR) {
			rc = ps_error_set(PS_EIO, "fetch_failed", "cannot watch git: %s",
					  strerror(errno));
			break;
		}
		for (int k = 0; n > 0 && k < np; k++) {
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
				received += got;
			if (i == OUT_STDERR) {
				size_t g = (size_t)got;
				if (g >= TAIL_MAX) {
					memcpy(tail, buf + g - TAIL_MAX, TAIL_MAX);
					tail_len = TAIL_MAX;
				} else {
					if (tail_len + g > TAIL_MAX) {
						size_t drop = tail_len + g - TAIL_MAX;
						memmove(tail, tail + drop, tail_len - drop);
						tail_len -= drop;
					}
					memcpy(tail + tail_len, buf, g);
					tail_len += g;
				}
			}
		}
	}
	if (timed_out || rc < 0) {
		kill_and_reap(pid);
		spawned = false;
		*bytes += received;
		if (timed_out) {
			char t[32];
			ps_source_net_timeout_text(t, sizeof(t));
			rc = ps_error_set(PS_EUPSTREAM, "upstream_timeout",
					  "cannot fetch from %s: git fetch timed out (no progress "
					  "within %s; PROJSYNC_NET_TIMEOUT)", f->url, t);
		}
		goto cleanup;
	}
	/* Every pipe is closed: git has exited or is about to. */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	spawned = false;
	*bytes += received;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char msg[512];
		git_message(tail, tail_len, msg, sizeof(msg));
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			snprintf(msg, sizeof(msg), "cannot run git (is git installed?)");
		rc = ps_error_set(PS_EUPSTREAM, "fetch_failed", "cannot fetch from %s: %s", f->url,
				  msg);
	}
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
	free(dir_arg);
	free(refspec);
	free(depth_arg);
	return rc;
}
