/*
 * git's own command line as the fetch transport of git URLs (source/git.c). libgit2 1.5 cannot
 * fetch shallow (shallow support arrived in 1.7), so a first sync of a long history would
 * transfer all of it; `git fetch --depth 1` transfers one commit's objects, and a later one only
 * what the cache lacks. libgit2 then reads the objects from the same bare cache.
 */
#ifndef PS_SOURCE_GIT_CLI_H
#define PS_SOURCE_GIT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ps_git_cli_fetch {
	const char *git_dir;   /* the bare cache repository (ours) */
	const char *url;       /* the remote, as the user gave it */
	const char *refname;   /* "refs/heads/<branch>", a valid ref name */
	int64_t deadline_ms;   /* monotonic ms at which the fetch gives up as a whole; 0: none */
	/* > 0: `--shallow-since` this time (epoch seconds) instead of `--depth 1`, so that the
	 * commits since the last synced one arrive too (`projsync log`, docs/architecture.md §5). */
	int64_t shallow_since;
	/* Polled at least every 250 ms: true kills git and fails with PS_ECANCELLED. */
	bool (*stop)(void *ud);
	void *stop_ud;
	/* > 2: the descriptor of the cache's flock (git.c, cache_lock), which git inherits, so
	 * the cache stays locked while git writes it even if this process dies first (git runs
	 * in a session of its own and outlives a killed projsync). */
	int lock_fd;
	/* <data dir>/ssh: projsync's known_hosts and default key (ps_git_ssh_key), for an ssh
	 * remote; created (0700) when missing. NULL for any other remote: git may then not use
	 * ssh, and the ssh settings are not read. */
	const char *ssh_dir;
};

/*
 * Runs `git fetch --depth 1 -- URL +REF:REF` (or --shallow-since) into f->git_dir, in a clean environment that can
 * never prompt, and adds the pack bytes received to *bytes. The child is killed when nothing
 * moves (no protocol line, pack byte or progress output) for the network timeout
 * (PROJSYNC_NET_TIMEOUT), or at f->deadline_ms. Blocks for the duration of the fetch.
 * Returns 0; PS_EINVAL (slug bad_source) for a URL or ref name that could pass for an option;
 * PS_EUPSTREAM with slug upstream_timeout after a bound; host_key_changed, host_key_unknown or
 * bad_credentials when ssh refused the host or the login (in projsync's words, with the host
 * and the known_hosts file); fetch_failed with git's own message otherwise (git missing
 * included). PS_EINVAL from the ssh settings (ps_git_ssh_key, ps_git_ssh_strict), read for
 * an ssh remote only (f->ssh_dir set).
 */
int ps_git_cli_fetch(const struct ps_git_cli_fetch *f, int64_t *bytes);

/* The key an ssh connection offers: PROJSYNC_SSH_KEY (made absolute; PS_EINVAL with slug
 * bad_ssh_key when it cannot be read), else <ssh_dir>/id_ed25519 when that exists, else none
 * (*out NULL: ssh's own choice, the agent included). *out is owned by the caller. */
#define PS_GIT_SSH_DEFAULT_KEY "id_ed25519"
int ps_git_ssh_key(const char *ssh_dir, char **out);
/* PROJSYNC_SSH_STRICT: 1 for yes (only hosts already in known_hosts), 0 for no, unset or empty
 * (a new host's key is recorded on first contact), PS_EINVAL (slug bad_ssh_strict) otherwise. */
int ps_git_ssh_strict(void);

struct ps_git_cli_ls {
	const char *url;
	/* as in ps_git_cli_fetch, never NULL; also where git runs, with GIT_DIR set to the empty
	 * bare repository <ssh_dir>/empty.git (made when missing), so git reads no repository's
	 * configuration but that empty one's */
	const char *ssh_dir;
	int64_t deadline_ms;
	bool (*stop)(void *ud);
	void *stop_ud;
};

/*
 * `git ls-remote --symref -- URL HEAD 'refs/heads/<any>'` under the same bounds, environment and
 * ssh settings as a fetch: *out gets its output (owned, NUL-terminated; *len bytes). The
 * transport of ssh remotes' listings (source/git.c). Errors as ps_git_cli_fetch's, after
 * "cannot list branches of URL".
 */
int ps_git_cli_ls_remote(const struct ps_git_cli_ls *l, char **out, size_t *len);

#endif
