/*
 * The commits of a sync (`projsync log`): the parsers of GitHub's JSON answers (a commit object
 * in either of GitHub's shapes, the commit list of a compare; public in github.h so the unit
 * tests can feed recorded answers) and the source's `commits` op, which reads them from what
 * the resolve and the scan already fetched.
 */
#include "source/github/internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"
#include "util/util.h"

bool ps_github_time_parse(const char *s, int64_t *ms)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
	int64_t frac = 0, offset = 0;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return false;
	p = s + n;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if (*p == 'Z' && p[1] == '\0') {
		offset = 0;
	} else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 &&
		   strlen(p) == 6) {
		offset = (int64_t)(oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
	} else {
		return false;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*ms = ((int64_t)timegm(&tm) - offset) * 1000 + frac;
	return true;
}

static int bad(const char *what, const char *why)
{
	return ps_error_set(PS_EUPSTREAM, "upstream_error", "GitHub's answer to GET %s is not "
			    "what GitHub sends: %s", what, why);
}

static bool signature(json_t *o, struct ps_signature *out)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *email = json_string_value(json_object_get(o, "email"));
	const char *date = json_string_value(json_object_get(o, "date"));

	if (!json_is_object(o))
		return false;
	out->name = ps_strdup(name ? name : "");
	out->email = ps_strdup(email ? email : "");
	if (!date || !ps_github_time_parse(date, &out->date))
		out->date = 0;
	return true;
}

int ps_github_commit_parse(struct ps_commit *out, const void *json_obj, const char *what)
{
	json_t *o = (json_t *)json_obj, *inner, *parents;
	const char *sha = json_string_value(json_object_get(o, "sha")), *msg;
	struct ps_buf b;
	size_t i;
	json_t *p;

	memset(out, 0, sizeof(*out));
	if (!sha || strlen(sha) != 40 || !ps_sha_valid(sha))
		return bad(what, "a commit without its sha");
	inner = json_object_get(o, "commit");
	if (!json_is_object(inner))
		inner = o;
	msg = json_string_value(json_object_get(inner, "message"));
	memcpy(out->sha, sha, PS_SHA_HEX);
	if (!msg || !signature(json_object_get(inner, "author"), &out->author) ||
	    !signature(json_object_get(inner, "committer"), &out->committer)) {
		ps_commit_dispose(out);
		return bad(what, "a commit without its author, committer or message");
	}
	out->subject = ps_commit_subject(msg, strlen(msg));
	out->message = ps_commit_message_bounded(msg, strlen(msg));
	ps_buf_init(&b, SIZE_MAX);
	parents = json_object_get(o, "parents");
	json_array_foreach(parents, i, p) {
		const char *ps = json_string_value(json_object_get(p, "sha"));
		if (ps && strlen(ps) == 40 && ps_sha_valid(ps))
			ps_buf_printf(&b, "%s%s", b.len ? " " : "", ps);
	}
	out->parents = ps_buf_take(&b, NULL);
	return 0;
}

int ps_github_compare_commits_parse(struct ps_commit_list *out, const char *json, size_t len,
				    const char *what)
{
	json_error_t err;
	json_t *root = json_loadb(json, len, 0, &err), *commits, *total;
	size_t n;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->total = -1;
	if (!root)
		return bad(what, "not JSON");
	commits = json_object_get(root, "commits");
	if (!json_is_array(commits)) {
		json_decref(root);
		return bad(what, "a compare without its commits");
	}
	total = json_object_get(root, "total_commits");
	n = json_array_size(commits);
	out->v = n ? ps_calloc(n, sizeof(*out->v)) : NULL;
	/* GitHub lists them oldest first; `log` is newest first. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = ps_github_commit_parse(&out->v[out->n], json_array_get(commits, n - 1 - i),
					    what);
		if (rc == 0)
			out->n++;
	}
	if (rc == 0 && json_is_integer(total))
		out->total = json_integer_value(total);
	if (rc < 0)
		ps_commit_list_dispose(out);
	out->truncated = rc == 0 && out->total >= 0 && (size_t)out->total > out->n;
	json_decref(root);
	return rc;
}

/* ---- the `commits` op ---- */

/* GET git/commits/{sha}: the smallest answer that holds one commit. */
static int get_git_commit(struct gh_source *s, const char *sha, struct ps_commit *out)
{
	struct gh_req r;
	json_t *root = NULL;
	int rc;

	if ((rc = gh_get(s, &r, gh_repo_path(s, "/git/commits/%s", sha), MT_JSON, NULL,
			 JSON_MAX)) < 0)
		goto cleanup;
	if (r.status == 404 || r.status == 422) {
		rc = ps_error_set(PS_ENOTFOUND, NULL, "GitHub has no commit %s", sha);
		goto cleanup;
	}
	if (r.status != 200) {
		rc = gh_unexpected(s, &r);
		goto cleanup;
	}
	if ((rc = gh_parse_body(s, &r, &root)) < 0)
		goto cleanup;
	rc = ps_github_commit_parse(out, root, gh_endpoint(s, r.url));
cleanup:
	json_decref(root);
	gh_req_dispose(&r);
	return rc;
}

/* The head commit: from branches/{b} when a first sync read it, else one request. */
static int head_commit(struct gh_source *s, const char *head, struct ps_commit *out)
{
	if (s->branch_head && strcmp(s->branch_head->sha, head) == 0) {
		struct ps_commit *c = ps_commit_clone(s->branch_head);
		*out = *c;
		free(c);
		return 0;
	}
	return get_git_commit(s, head, out);
}

/*
 * A first sync: the head commit, free after branches/{b}. Later syncs: the compare's commits
 * (up to 250, the newest). Resolve compares a moved head with the last synced commit (the
 * base here), so that compare is reused, answered or not: one compare per moved head at most,
 * none for an unchanged one (which never gets here). GitHub cannot compare with a base it
 * lost (a force-push, then a gc) or one without a common ancestor: the head alone, truncated.
 */
int gh_commits(struct ps_source *src, const char *base, const char *head, size_t max,
	       struct ps_commit_list *out)
{
	struct gh_source *s = (struct gh_source *)src;
	const struct ps_commit_list *cc = &s->cmp_commits;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->total = -1;
	if (!ps_sha_valid(head) || strlen(head) != 40)
		return ps_error_set(PS_EINVAL, NULL, "bad commit id '%s'", head);
	if (base && (!ps_sha_valid(base) || strlen(base) != 40))
		return ps_error_set(PS_EINVAL, NULL, "bad commit id '%s'", base);
	if (base && (rc = gh_fetch_compare(s, base, head)) < 0)
		return rc;
	if (!base || rc == 0 || !s->cmp_commits_ok) {
		out->v = ps_calloc(1, sizeof(*out->v));
		if ((rc = head_commit(s, head, &out->v[0])) < 0) {
			ps_commit_list_dispose(out);
			return rc;
		}
		out->n = 1;
		out->truncated = base != NULL;
		return 0;
	}
	out->total = cc->total >= 0 ? cc->total : (int64_t)cc->n;
	out->v = ps_calloc(cc->n + 1, sizeof(*out->v));
	if (cc->n > 0 && strcmp(cc->v[0].sha, head) != 0) {
		/* A page of the oldest commits: the head comes first all the same. */
		if ((rc = head_commit(s, head, &out->v[0])) < 0) {
			ps_commit_list_dispose(out);
			return rc;
		}
		out->n = 1;
	}
	for (size_t i = 0; i < cc->n && out->n < max; i++) {
		struct ps_commit *c = ps_commit_clone(&cc->v[i]);
		out->v[out->n++] = *c;
		free(c);
	}
	out->truncated = cc->truncated || out->total > (int64_t)out->n;
	return 0;
}
