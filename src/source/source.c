/*
 * Turns a SOURCE string into a source object. This is the one place that knows the SOURCE
 * grammar (see source.h): GitHub names, git URLs (including scp-like user@host:path) and local
 * paths. GitHub names are validated here so that a typo fails when the project is added, not at
 * the first sync. GitHub repositories go to the REST connector (source/github/), everything
 * else to the libgit2 source (source/git.c).
 */
#include "source/source.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/error.h"
#include "util/util.h"

#define NET_TIMEOUT_DEFAULT_MS 30000

/* The timeout PROJSYNC_NET_TIMEOUT sets, in ms: 0 when it is set to something else than a plain
 * number of seconds in range, NET_TIMEOUT_DEFAULT_MS when it is unset or empty. Plain means
 * digits with at most one '.', nothing around them: strtod alone would take " 5" (it skips
 * leading blanks) but not "5 ", and "1e1", "0x10" or "inf" besides. */
static int64_t net_timeout_setting(void)
{
	const char *v = getenv("PROJSYNC_NET_TIMEOUT");
	int digits = 0, dots = 0;
	double x;

	if (!v || !*v)
		return NET_TIMEOUT_DEFAULT_MS;
	for (const char *q = v; *q; q++) {
		if (*q >= '0' && *q <= '9')
			digits++;
		else if (*q == '.' && dots++ == 0)
			continue;
		else
			return 0;
	}
	if (digits == 0)
		return 0;
	x = strtod(v, NULL);
	if (!(x >= 0.1 && x <= 3600))
		return 0;
	return (int64_t)(x * 1000 + 0.5);
}

int ps_source_net_timeout_check(void)
{
	if (net_timeout_setting() == 0)
		return ps_error_set(PS_EINVAL, "bad_net_timeout",
				    "PROJSYNC_NET_TIMEOUT must be a number of seconds from 0.1 to "
				    "3600 (unset: %d)", NET_TIMEOUT_DEFAULT_MS / 1000);
	return 0;
}

int64_t ps_source_net_timeout_ms(void)
{
	int64_t ms = net_timeout_setting();

	/* The commands that reach a source refuse a bad value at start (ps_source_net_timeout_check);
	 * anything else that gets here still never runs unbounded. */
	return ms ? ms : NET_TIMEOUT_DEFAULT_MS;
}

const char *ps_source_branch_hint(const char *branch)
{
	return branch && strncmp(branch, "refs/heads/", 11) == 0
		       ? ": give the branch name without refs/heads/"
		       : "";
}

void ps_source_net_timeout_text(char *out, size_t len)
{
	int64_t ms = ps_source_net_timeout_ms();

	if (ms % 1000 == 0)
		snprintf(out, len, "%lld s", (long long)(ms / 1000));
	else
		snprintf(out, len, "%.1f s", (double)ms / 1000);
}

/* GitHub's own rules: an owner is 1..39 alphanumerics or hyphens, not starting with one. */
static bool github_owner_valid(const char *s, size_t len)
{
	if (len < 1 || len > 39 || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

/* A repository name is 1..100 of [A-Za-z0-9._-], and "." and ".." are reserved. */
static bool github_repo_valid(const char *s, size_t len)
{
	if (len < 1 || len > 100)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/*
 * Parses "OWNER/REPO" (the part after "github:" or "https://github.com/"). With `url_form`, a
 * trailing ".git" and one trailing slash are accepted, as people paste clone URLs.
 * On success *out is "OWNER/REPO" (owned by the caller).
 */
static int parse_github(const char *spec, const char *rest, bool url_form, char **out)
{
	const char *slash = strchr(rest, '/');
	size_t olen, rlen;
	const char *repo;

	if (!slash)
		return ps_error_set(PS_EINVAL, "bad_source",
				    "bad GitHub source '%s': expected OWNER/REPO", spec);
	olen = (size_t)(slash - rest);
	repo = slash + 1;
	rlen = strlen(repo);
	if (url_form && rlen > 0 && repo[rlen - 1] == '/')
		rlen--;
	if (url_form && rlen > 4 && strncmp(repo + rlen - 4, ".git", 4) == 0)
		rlen -= 4;
	if (!github_owner_valid(rest, olen))
		return ps_error_set(PS_EINVAL, "bad_source",
				    "bad GitHub source '%s': owner must be 1-39 letters, digits "
				    "or '-', not starting with '-'", spec);
	if (!github_repo_valid(repo, rlen))
		return ps_error_set(PS_EINVAL, "bad_source",
				    "bad GitHub source '%s': repository must be 1-100 letters, "
				    "digits, '.', '_' or '-' (and not '.' or '..')", spec);
	*out = ps_asprintf("%.*s/%.*s", (int)olen, rest, (int)rlen, repo);
	return 0;
}

/* git's rule for scp-like addresses, restricted to the user@host:path form: a ':' before any
 * '/', and an '@' before that ':'. */
static bool is_scp_like(const char *spec)
{
	const char *colon = strchr(spec, ':');
	const char *slash = strchr(spec, '/');
	const char *at = strchr(spec, '@');

	return colon && (!slash || colon < slash) && at && at < colon && at > spec &&
	       colon > at + 1;
}

bool ps_source_is_local_path(const char *spec)
{
	return spec && *spec && strncmp(spec, "github:", 7) != 0 &&
	       strncasecmp(spec, "https://github.com/", 19) != 0 && !strstr(spec, "://") &&
	       !is_scp_like(spec);
}

/* git:// has no authentication, so a "user:pw@" there is a mistake, and not a harmless one:
 * libgit2 ignores it when listing branches, but git fetch takes "user:pw@host" for the host,
 * so the project would pass its check at add and fail every sync. Refused rather than
 * stripped: stripping would keep credentials in the store that no request ever sends. */
static bool git_url_has_userinfo(const char *spec)
{
	if (strncasecmp(spec, "git://", 6) != 0)
		return false;
	for (const char *p = spec + 6; *p && !strchr("/?#", *p); p++)
		if (*p == '@')
			return true;
	return false;
}

/*
 * Classifies `spec` and returns its location: "OWNER/REPO" for GitHub (*github set), a URL as
 * given, a path made absolute. Fails with PS_EINVAL and a message that names the problem.
 */
static int source_location(const char *spec, char **out, bool *github)
{
	char resolved[PATH_MAX];
	struct stat st;

	*github = false;
	if (!spec || !*spec)
		return ps_error_set(PS_EINVAL, "bad_source", "empty source");
	*github = true;
	if (strncmp(spec, "github:", 7) == 0)
		return parse_github(spec, spec + 7, false, out);
	if (strncasecmp(spec, "https://github.com/", 19) == 0)
		return parse_github(spec, spec + 19, true, out);
	*github = false;
	if (!ps_source_is_local_path(spec)) {
		if (git_url_has_userinfo(spec))
			return ps_error_set(PS_EINVAL, "bad_source",
					    "a git:// URL has no authentication: remove the user "
					    "name and password from %s (git://HOST/PATH)", spec);
		*out = ps_strdup(spec);
		return 0;
	}
	if (!realpath(spec, resolved)) {
		if (errno == ENOENT || errno == ENOTDIR)
			return ps_error_set(PS_EINVAL, "bad_source", "no such directory: %s", spec);
		return ps_error_set(PS_EINVAL, "bad_source", "cannot resolve path %s: %s", spec,
				    strerror(errno));
	}
	if (stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode))
		return ps_error_set(PS_EINVAL, "bad_source", "not a git repository: %s", resolved);
	*out = ps_strdup(resolved);
	return 0;
}

/* Calls the GitHub constructor or checker with the OWNER and REPO of "OWNER/REPO". */
static int github_call(const char *location, struct ps_source **out,
		       const struct ps_source_opts *opts)
{
	const char *slash = strchr(location, '/');
	char *owner = ps_strndup(location, (size_t)(slash - location));
	int rc = out ? ps_github_source_open(out, owner, slash + 1, opts)
		     : ps_github_source_check(owner, slash + 1, opts);

	free(owner);
	return rc;
}

int ps_source_open(struct ps_source **out, const char *spec, const struct ps_source_opts *opts)
{
	char *location = NULL;
	bool github;
	int rc;

	if ((rc = source_location(spec, &location, &github)) < 0)
		return rc;
	rc = github ? github_call(location, out, opts) : ps_git_source_open(out, location, opts);
	free(location);
	return rc;
}

int ps_source_stopped(struct ps_source *src)
{
	if (src && src->stop && src->stop(src->stop_ud))
		return ps_error_set(PS_ECANCELLED, "cancelled", "cancelled by request");
	return 0;
}

void ps_source_free(struct ps_source *src)
{
	if (!src)
		return;
	ps_source_fetch_end(src);
	ps_strv_dispose(&src->warnings);
	src->ops->free(src);
}

int ps_source_fetch_begin(struct ps_source *s, const struct ps_head *head, const char *const *shas,
			  size_t n)
{
	ps_source_fetch_end(s);
	if (s->ops->fetch_begin)
		return s->ops->fetch_begin(s, head, shas, n);
	s->generic_fetch.shas = ps_calloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		s->generic_fetch.shas[i] = ps_strdup(shas[i]);
	s->generic_fetch.n = n;
	s->generic_fetch.pos = 0;
	return 0;
}

int ps_source_fetch_next(struct ps_source *s, size_t max, ps_blob_cb cb, void *ud, bool *done)
{
	size_t end;
	int rc;

	if (s->ops->fetch_begin)
		return s->ops->fetch_next(s, max, cb, ud, done);
	end = s->generic_fetch.pos + max;
	if (end > s->generic_fetch.n)
		end = s->generic_fetch.n;
	if (end > s->generic_fetch.pos) {
		rc = s->ops->fetch_blobs(s, (const char *const *)s->generic_fetch.shas +
					       s->generic_fetch.pos, end - s->generic_fetch.pos, cb, ud);
		if (rc != 0)
			return rc;
	}
	s->generic_fetch.pos = end;
	*done = end >= s->generic_fetch.n;
	return 0;
}

void ps_source_fetch_end(struct ps_source *s)
{
	if (s->ops->fetch_begin && s->ops->fetch_end)
		s->ops->fetch_end(s);
	for (size_t i = 0; i < s->generic_fetch.n; i++)
		free(s->generic_fetch.shas[i]);
	free(s->generic_fetch.shas);
	s->generic_fetch.shas = NULL;
	s->generic_fetch.n = s->generic_fetch.pos = 0;
}

int ps_source_check(const char *spec, const struct ps_source_opts *opts)
{
	char *location = NULL;
	bool github;
	int rc;

	if ((rc = source_location(spec, &location, &github)) < 0)
		return rc;
	rc = github ? github_call(location, NULL, opts) : ps_git_source_check(location, opts);
	free(location);
	return rc;
}

bool ps_source_check_refused(const char *spec, int rc)
{
	/* GitHub says "no such repository" as repository_not_found (PS_ENOTFOUND); its
	 * upstream_error is a status it should not have answered, 5xx after every retry
	 * included: the host failing, not the request. */
	bool github = spec && (strncmp(spec, "github:", 7) == 0 ||
			       strncasecmp(spec, "https://github.com/", 19) == 0);

	return rc == PS_EINVAL || rc == PS_ENOTFOUND ||
	       (rc == PS_EUPSTREAM && !github && strcmp(ps_error_slug(), "upstream_error") == 0);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ps_source_check_branch(const char *spec, const char *branch,
			   const struct ps_source_opts *opts)
{
	struct ps_source *src = NULL;
	struct ps_strv names = { 0 };
	char *def = NULL;
	int rc;

	if (!branch)
		return ps_source_check(spec, opts);
	/* Asking for the branches (or the one branch) checks the repository on the way. */
	if ((rc = ps_source_open(&src, spec, opts)) < 0)
		return rc;
	if (src->ops->check_branch) {
		rc = src->ops->check_branch(src, branch);
	} else if ((rc = ps_source_branches(src, &names, &def)) == 0 && names.n > 0 &&
		   !bsearch(&branch, names.v, names.n, sizeof(*names.v), cmp_name)) {
		rc = ps_error_set(PS_ENOTFOUND, "branch_not_found", "branch '%s' not found in %s%s",
				  branch, spec, ps_source_branch_hint(branch));
	}
	if (rc == PS_EEMPTY) {
		ps_error_clear();
		rc = 0;
	}
	ps_strv_dispose(&names);
	free(def);
	ps_source_free(src);
	return rc;
}
