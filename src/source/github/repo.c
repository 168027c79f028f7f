/*
 * The repository, its branches and heads: GET repos/{o}/{r} (conditional, cached per process),
 * the branch list, and the resolution of a branch to its head commit and tree.
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

/* ---- repository and branches ---- */

/*
 * The repository's ETag and default branch as last seen by this process, so that a project
 * following the default branch asks for it at every sync (it may change upstream) with a
 * conditional request: an unchanged repository answers 304, which GitHub does not count against
 * the rate limit. Bounded; the oldest entry makes room. A separate process (each CLI run) starts
 * empty and pays one counted request.
 */
#define REPO_CACHE_MAX 64
static struct repo_seen {
	char *url, *etag, *default_branch;
} repo_cache[REPO_CACHE_MAX];
static size_t repo_cache_next;
static pthread_mutex_t repo_cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* The cached ETag of `url` (owned by the caller), or NULL. */
static char *repo_cache_etag(const char *url)
{
	char *etag = NULL;

	pthread_mutex_lock(&repo_cache_mu);
	for (size_t i = 0; i < REPO_CACHE_MAX && !etag; i++)
		if (repo_cache[i].url && strcmp(repo_cache[i].url, url) == 0)
			etag = ps_strdup(repo_cache[i].etag);
	pthread_mutex_unlock(&repo_cache_mu);
	return etag;
}

/* The cached default branch of `url` if its ETag is still `etag`: *found, *out owned/NULL. */
static bool repo_cache_branch(const char *url, const char *etag, char **out)
{
	bool found = false;

	pthread_mutex_lock(&repo_cache_mu);
	for (size_t i = 0; i < REPO_CACHE_MAX && !found; i++)
		if (repo_cache[i].url && strcmp(repo_cache[i].url, url) == 0 &&
		    strcmp(repo_cache[i].etag, etag) == 0) {
			*out = ps_strdup(repo_cache[i].default_branch);
			found = true;
		}
	pthread_mutex_unlock(&repo_cache_mu);
	return found;
}

static void repo_cache_put(const char *url, const char *etag, const char *default_branch)
{
	struct repo_seen *slot = NULL;

	pthread_mutex_lock(&repo_cache_mu);
	for (size_t i = 0; i < REPO_CACHE_MAX && !slot; i++)
		if (repo_cache[i].url && strcmp(repo_cache[i].url, url) == 0)
			slot = &repo_cache[i];
	if (!slot) {
		slot = &repo_cache[repo_cache_next];
		repo_cache_next = (repo_cache_next + 1) % REPO_CACHE_MAX;
	}
	free(slot->url);
	free(slot->etag);
	free(slot->default_branch);
	slot->url = ps_strdup(url);
	slot->etag = ps_strdup(etag);
	slot->default_branch = ps_strdup(default_branch);
	pthread_mutex_unlock(&repo_cache_mu);
}

int gh_repo_info(struct gh_source *s)
{
	struct gh_req r, *one = &r;
	json_t *root = NULL;
	char *url;
	int rc;

	if (s->have_repo)
		return 0;
	url = ps_strdup(s->repo_url);
	gh_req_init(&r, s, ps_strdup(url), MT_JSON, JSON_MAX);
	r.if_none_match = repo_cache_etag(url);
	if ((rc = gh_run_requests(s, &one, 1, 1, NULL, NULL)) < 0)
		goto cleanup;
	if (r.status == 304 && r.if_none_match) {
		char *def = NULL;
		if (repo_cache_branch(url, r.if_none_match, &def)) {
			free(s->default_branch);
			s->default_branch = def;
			s->have_repo = true;
			goto cleanup;
		}
		/* Another thread replaced the entry meanwhile: ask again, unconditionally. */
		gh_req_dispose(&r);
		gh_req_init(&r, s, ps_strdup(url), MT_JSON, JSON_MAX);
		if ((rc = gh_run_requests(s, &one, 1, 1, NULL, NULL)) < 0)
			goto cleanup;
	}
	if (r.status == 404) {
		rc = gh_repo_not_found(s);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = gh_unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = gh_parse_body(s, &r, &root)) < 0)
		goto cleanup;
	if (!json_is_object(root)) {
		rc = gh_malformed(gh_endpoint(s, r.url), "expected an object");
		goto cleanup;
	}
	const char *def = json_string_value(json_object_get(root, "default_branch"));
	free(s->default_branch);
	s->default_branch = def && *def ? ps_strdup(def) : NULL;
	s->have_repo = true;
	if (r.etag[0])
		repo_cache_put(url, r.etag, s->default_branch);
cleanup:
	json_decref(root);
	gh_req_dispose(&r);
	free(url);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_branches(struct gh_source *s, struct ps_strv *out)
{
	char *url = gh_repo_path(s, "/branches?per_page=100");
	int rc = 0;

	for (int page = 0; url; page++) {
		struct gh_req r;
		json_t *root = NULL;

		if (page >= BRANCH_PAGES_MAX) {
			gh_warn(s, "more than %d branches; listing only the first %d",
			     BRANCH_PAGES_MAX * 100, BRANCH_PAGES_MAX * 100);
			free(url);
			break;
		}
		if ((rc = gh_get(s, &r, url, MT_JSON, NULL, JSON_MAX)) < 0) {
			gh_req_dispose(&r);
			break;
		}
		url = NULL;
		if (r.status == 404)
			rc = gh_repo_not_found(s);
		else if (r.status != 200)
			rc = gh_unexpected(s, &r);
		else if ((rc = gh_parse_body(s, &r, &root)) == 0 && !json_is_array(root))
			rc = gh_malformed(gh_endpoint(s, r.url), "expected an array");
		for (size_t i = 0; rc == 0 && i < json_array_size(root); i++) {
			const char *name =
				json_string_value(json_object_get(json_array_get(root, i), "name"));
			if (!name) {
				rc = gh_malformed(gh_endpoint(s, r.url), "a branch lacks its name");
				break;
			}
			ps_strv_push(out, name);
		}
		if (rc == 0 && (url = ps_github_link_next(r.link)) && !gh_same_origin(s, url)) {
			rc = ps_error_set(PS_EUPSTREAM, "upstream_error",
					  "GitHub's next page of branches points to another host");
			free(url);
			url = NULL;
		}
		json_decref(root);
		gh_req_dispose(&r);
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		ps_strv_dispose(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(char *), cmp_str);
	return 0;
}

int gh_branches(struct ps_source *src, struct ps_strv *out, char **default_branch)
{
	struct gh_source *s = (struct gh_source *)src;
	struct ps_strv names = {0};
	int rc;

	if ((rc = gh_repo_info(s)) < 0)
		return rc;
	if (out) {
		if ((rc = list_branches(s, &names)) < 0)
			return rc;
		*out = names;
	}
	/* An empty repository has a default branch name on GitHub but nothing to sync. */
	*default_branch = s->default_branch && (!out || out->n > 0) ? ps_strdup(s->default_branch)
								    : NULL;
	return 0;
}

/* ---- heads ---- */

static int resolve_empty_or_missing(struct gh_source *s, const char *branch)
{
	struct gh_req r;
	char *enc;
	int rc;

	/* Told "no such branch": the repository itself may be gone, or empty (GitHub answers
	 * 409 "Git Repository is empty." to the commits endpoint then). */
	if ((rc = gh_repo_info(s)) < 0)
		return rc;
	enc = ps_github_escape(branch);
	rc = gh_get(s, &r, gh_repo_path(s, "/commits/heads/%s", enc), MT_SHA, NULL, 4096);
	free(enc);
	if (rc < 0)
		goto cleanup;
	if (r.status == 409)
		rc = ps_error_set(PS_EEMPTY, "empty", "repository is empty: github:%s/%s", s->owner,
				  s->repo);
	else
		rc = ps_error_set(PS_ENOTFOUND, "branch_not_found",
				  "branch '%s' not found in github:%s/%s%s", branch, s->owner, s->repo,
				  ps_source_branch_hint(branch));
cleanup:
	gh_req_dispose(&r);
	return rc;
}

/* GET compare/{base}...{head}, kept for `changes` and `commits`. 1 when it answered, 0 when
 * GitHub cannot compare them (a base it no longer has). */
int gh_fetch_compare(struct gh_source *s, const char *base, const char *head)
{
	struct gh_req r;
	int rc;

	if ((s->have_cmp || s->cmp_none) && strcmp(s->cmp_base, base) == 0 &&
	    strcmp(s->cmp_head, head) == 0)
		return s->have_cmp ? 1 : 0;
	ps_github_compare_dispose(&s->cmp);
	ps_commit_list_dispose(&s->cmp_commits);
	s->have_cmp = s->cmp_none = s->cmp_commits_ok = false;
	if ((rc = gh_get(s, &r, gh_repo_path(s, "/compare/%s...%s", base, head), MT_JSON, NULL,
		      JSON_MAX)) < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 422 || r.status == 409) {
		memcpy(s->cmp_base, base, PS_SHA_HEX);
		memcpy(s->cmp_head, head, PS_SHA_HEX);
		s->cmp_none = true;
		rc = 0;
		goto cleanup;
	}
	if (r.status != 200) {
		rc = gh_unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = ps_github_compare_parse(&s->cmp, r.body.data, r.body.len, gh_endpoint(s, r.url))) < 0)
		goto cleanup;
	/* Its commits serve `projsync log`; the changes do not depend on them. */
	s->cmp_commits_ok = ps_github_compare_commits_parse(&s->cmp_commits, r.body.data,
							    r.body.len, gh_endpoint(s, r.url)) == 0;
	ps_error_clear();
	memcpy(s->cmp_base, base, PS_SHA_HEX);
	memcpy(s->cmp_head, head, PS_SHA_HEX);
	s->have_cmp = true;
	rc = 1;
cleanup:
	gh_req_dispose(&r);
	return rc;
}

/* Reads the recursive tree of `commit` into s->listing and its root tree's SHA into `tree`. */
static int head_listing(struct gh_source *s, const char *commit, char tree[PS_SHA_HEX])
{
	int rc;

	ps_github_tree_dispose(&s->listing);
	s->have_listing = s->big_tree = false;
	if ((rc = gh_get_tree(s, commit, true, &s->listing)) < 0) {
		if (rc == PS_ENOTFOUND)
			rc = ps_error_set(PS_EUPSTREAM, "upstream_error",
					  "GitHub has no tree for commit %s it just named", commit);
		return rc;
	}
	memcpy(tree, s->listing.sha, PS_SHA_HEX);
	if (s->listing.truncated) {
		s->big_tree = true;
		ps_github_tree_dispose(&s->listing);
	} else {
		s->have_listing = true;
	}
	return 0;
}

/* The compare of `base` with the moved head `commit` when it can stand for the changes (a
 * fast-forward below the file cap that ends at the head and names its tree): 1 with `tree`
 * set, 0 when it cannot. */
static int compare_head(struct gh_source *s, const char *base, const char *commit,
			char tree[PS_SHA_HEX])
{
	int rc = gh_fetch_compare(s, base, commit);

	if (rc <= 0)
		return rc;
	if (strcmp(s->cmp.status, "ahead") != 0 || !ps_github_compare_usable(&s->cmp) ||
	    strcmp(s->cmp.head_commit, commit) != 0 || !s->cmp.head_tree[0])
		return 0;
	memcpy(tree, s->cmp.head_tree, PS_SHA_HEX);
	ps_github_tree_dispose(&s->listing);
	s->have_listing = s->big_tree = false;
	return 1;
}

int gh_resolve(struct ps_source *src, const char *branch, const char *known,
		      struct ps_head *out)
{
	struct gh_source *s = (struct gh_source *)src;
	struct ps_head h;
	struct gh_req r;
	json_t *root = NULL;
	char *enc;
	int rc;

	memset(&h, 0, sizeof(h));
	if (!branch) {
		if ((rc = gh_repo_info(s)) < 0)
			return rc;
		if (!s->default_branch)
			return ps_error_set(PS_EEMPTY, "empty", "repository is empty: github:%s/%s",
					    s->owner, s->repo);
		branch = s->default_branch;
	}
	if (!*branch)
		return ps_error_set(PS_ENOTFOUND, "branch_not_found", "empty branch name");
	enc = ps_github_escape(branch);
	if (known && ps_sha_valid(known) && strlen(known) == 40) {
		/* The conditional request: GitHub's ETag of the sha media type is the quoted SHA,
		 * and a 304 does not count against the rate limit. `heads/` makes it a branch: a
		 * bare ref would also resolve a tag or a commit id. */
		rc = gh_get(s, &r, gh_repo_path(s, "/commits/heads/%s", enc), MT_SHA, known, 4096);
		free(enc);
		if (rc < 0)
			goto cleanup;
		if (r.status == 304) {
			memcpy(h.commit, known, PS_SHA_HEX);
			goto done; /* tree left empty: unchanged */
		}
		if (r.status == 409) {
			rc = ps_error_set(PS_EEMPTY, "empty", "repository is empty: github:%s/%s",
					  s->owner, s->repo);
			goto cleanup;
		}
		if (r.status == 404 || r.status == 422) {
			rc = resolve_empty_or_missing(s, branch);
			goto cleanup;
		}
		if (r.status != 200) {
			rc = gh_unexpected(s, &r);
			goto cleanup;
		}
		size_t len = r.body.len;
		while (len > 0 && (r.body.data[len - 1] == '\n' || r.body.data[len - 1] == '\r' ||
				   r.body.data[len - 1] == ' '))
			len--;
		if (len != 40 || (r.body.data[40] = '\0', !ps_sha_valid(r.body.data))) {
			rc = ps_error_set(PS_EUPSTREAM, "upstream_error",
					  "GitHub's answer to GET %s is not a commit SHA",
					  gh_endpoint(s, r.url));
			goto cleanup;
		}
		memcpy(h.commit, r.body.data, PS_SHA_HEX);
		if (strcmp(h.commit, known) == 0) {
			goto done; /* a 200 for the same commit: still unchanged */
		}
		/* The head moved. A fast-forward below GitHub's cap of files is told by one
		 * compare, which also names the head's tree: bytes that follow the change (the
		 * pipeline carries modes from its snapshot and checks the result against that
		 * tree). Anything else: the recursive tree (GitHub takes a commit for a tree),
		 * which names the root tree and, unless truncated, every path with its mode. */
		s->resync = true;
		if ((rc = compare_head(s, known, h.commit, h.tree)) < 0)
			goto cleanup;
		if (rc == 0 && (rc = head_listing(s, h.commit, h.tree)) < 0)
			goto cleanup;
		goto done;
	}

	rc = gh_get(s, &r, gh_repo_path(s, "/branches/%s", enc), MT_JSON, NULL, JSON_MAX);
	free(enc);
	if (rc < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 409) {
		rc = resolve_empty_or_missing(s, branch);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = gh_unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = gh_parse_body(s, &r, &root)) < 0)
		goto cleanup;
	json_t *commit = json_object_get(root, "commit");
	if (!gh_json_sha(commit, "sha", h.commit) ||
	    !gh_json_sha(json_object_get(json_object_get(commit, "commit"), "tree"), "sha", h.tree)) {
		rc = gh_malformed(gh_endpoint(s, r.url), "the branch lacks its commit or tree sha");
		goto cleanup;
	}
	/* The head commit as `projsync log` shows it, at no extra cost. */
	ps_commit_free(s->branch_head);
	s->branch_head = ps_calloc(1, sizeof(*s->branch_head));
	if (ps_github_commit_parse(s->branch_head, commit, gh_endpoint(s, r.url)) < 0) {
		free(s->branch_head);
		s->branch_head = NULL;
		ps_error_clear();
	}
done:
	*out = h;
	s->head = h;
	rc = 0;
cleanup:
	json_decref(root);
	gh_req_dispose(&r);
	return rc;
}

/* One request for the branch (GET branches/{b}), not every page of the list. */
int gh_check_branch(struct ps_source *src, const char *branch)
{
	struct ps_head h;

	return gh_resolve(src, branch, NULL, &h);
}
