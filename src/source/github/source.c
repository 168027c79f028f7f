/*
 * The GitHub source's life: settings from the environment, the ops table, the check.
 */
#include "source/github/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "model/diff.h"
#include "util/error.h"
#include "util/util.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- life ---- */

static void gh_free(struct ps_source *src)
{
	struct gh_source *s = (struct gh_source *)src;

	gh_fetch_end(src);
	gh_spool_free(s);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	ps_github_compare_dispose(&s->cmp);
	ps_commit_list_dispose(&s->cmp_commits);
	ps_commit_free(s->branch_head);
	ps_github_tree_dispose(&s->listing);
	free(s->api);
	free(s->origin);
	free(s->owner);
	free(s->repo);
	free(s->repo_url);
	if (s->auth) {
		/* The token should not linger in freed memory. */
		explicit_bzero(s->auth, strlen(s->auth));
		free(s->auth);
	}
	free(s->default_branch);
	free(s);
}

static const struct ps_source_ops github_ops = {
	.kind = "github",
	.branches = gh_branches,
	.resolve = gh_resolve,
	.read_tree = gh_read_tree,
	.fetch_blobs = gh_fetch_blobs,
	.free = gh_free,
	.changes = gh_changes,
	.list_tree = gh_list_tree,
	.fetch_begin = gh_fetch_begin,
	.fetch_next = gh_fetch_next,
	.fetch_end = gh_fetch_end,
	.check_branch = gh_check_branch,
	.commits = gh_commits,
};

int ps_github_source_open(struct ps_source **out, const char *owner, const char *repo,
			  const struct ps_source_opts *opts)
{
	const char *api = getenv("PROJSYNC_GITHUB_API");
	const char *token = getenv("GITHUB_TOKEN");
	struct gh_source *s;
	size_t len;

	if (!owner || !*owner || !repo || !*repo)
		return ps_error_set(PS_EINVAL, "bad_source", "a GitHub source needs OWNER/REPO");
	pthread_once(&curl_once, curl_setup);
	if (!api || !*api)
		api = DEFAULT_API;
	len = strlen(api);
	while (len > 0 && api[len - 1] == '/')
		len--;
	s = ps_calloc(1, sizeof(*s));
	s->base.ops = &github_ops;
	s->api = ps_strndup(api, len);
	s->origin = gh_url_origin(s->api);
	if (!s->origin || (strncasecmp(s->api, "https://", 8) != 0 &&
			   strncasecmp(s->api, "http://", 7) != 0)) {
		gh_free(&s->base);
		return ps_error_set(PS_EINVAL, "bad_source",
				    "PROJSYNC_GITHUB_API must be an http(s) URL");
	}
	s->owner = ps_strdup(owner);
	s->repo = ps_strdup(repo);
	s->repo_url = ps_asprintf("%s/repos/%s/%s", s->api, owner, repo);
	if (token && *token)
		s->auth = ps_asprintf("Authorization: Bearer %s", token);
	s->concurrency = (int)gh_env_int("PROJSYNC_GITHUB_CONCURRENCY", 8, 1, 100);
	/* PROJSYNC_GITHUB_TIMEOUT_MS, the older and finer knob, wins over the common bound. */
	s->timeout_ms = gh_env_int("PROJSYNC_GITHUB_TIMEOUT_MS", ps_source_net_timeout_ms(), 10,
				3600000);
	s->bounded = opts && opts->bounded;
	s->backoff_ms = gh_env_int("PROJSYNC_GITHUB_BACKOFF_MS", 60000, 0, 3600000);
	s->max_wait_ms = gh_env_int("PROJSYNC_GITHUB_MAX_WAIT", 600, 0, 86400) * 1000;
	s->retries = (int)gh_env_int("PROJSYNC_GITHUB_RETRIES", 4, 0, 20);
	s->tarball_min = (size_t)gh_env_int("PROJSYNC_GITHUB_TARBALL_MIN", 50, 1, INT32_MAX);
	s->multi = curl_multi_init();
	if (!s->multi) {
		gh_free(&s->base);
		return ps_error_set(PS_ENOMEM, NULL, "cannot create an HTTP session");
	}
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->concurrency);
	*out = &s->base;
	return 0;
}

int ps_github_source_check(const char *owner, const char *repo, const struct ps_source_opts *opts)
{
	struct ps_source *src = NULL;
	int rc;

	if ((rc = ps_github_source_open(&src, owner, repo, opts)) < 0)
		return rc;
	/* Someone waits for the answer (an HTTP request, `project add`). */
	((struct gh_source *)src)->bounded = true;
	rc = gh_repo_info((struct gh_source *)src);
	ps_source_free(src);
	return rc;
}
