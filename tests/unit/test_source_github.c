/*
 * Unit tests of the GitHub source's pure parts (source/github.h): Link headers, rate-limit
 * headers, path escaping, tree and compare answers and their mapping to changes. Fixtures are
 * GitHub's own: recorded responses from @octokit/fixtures 23.1.2 and the examples of GitHub's
 * OpenAPI description (@octokit/openapi 23.0.2), copied verbatim where marked.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "model/diff.h"
#include "source/github.h"
#include "util/error.h"

/* components/examples/commit-comparison of GitHub's OpenAPI description (@octokit/openapi
 * 23.0.2, api.github.com.json), verbatim. */
static const char compare_example[] =
	"{\"url\": \"https://api.github.com/repos/octocat/Hello-World/compare/master...topic\", \"html_url\": \""
	"https://github.com/octocat/Hello-World/compare/master...topic\", \"permalink_url\": \"https://github"
	".com/octocat/Hello-World/compare/octocat:bbcd538c8e72b8c175046e27cc8f907076331401...octocat:0328"
	"041d1152db8ae77652d1618a02e57f745f17\", \"diff_url\": \"https://github.com/octocat/Hello-World/compa"
	"re/master...topic.diff\", \"patch_url\": \"https://github.com/octocat/Hello-World/compare/master...t"
	"opic.patch\", \"base_commit\": {\"url\": \"https://api.github.com/repos/octocat/Hello-World/commits/6d"
	"cb09b5b57875f334f61aebed695e2e4193db5e\", \"sha\": \"6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"nod"
	"e_id\": \"MDY6Q29tbWl0NmRjYjA5YjViNTc4NzVmMzM0ZjYxYWViZWQ2OTVlMmU0MTkzZGI1ZQ==\", \"html_url\": \"http"
	"s://github.com/octocat/Hello-World/commit/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"comments_u"
	"rl\": \"https://api.github.com/repos/octocat/Hello-World/commits/6dcb09b5b57875f334f61aebed695e2e4"
	"193db5e/comments\", \"commit\": {\"url\": \"https://api.github.com/repos/octocat/Hello-World/git/commi"
	"ts/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"author\": {\"name\": \"Monalisa Octocat\", \"email\": \"m"
	"ona@github.com\", \"date\": \"2011-04-14T16:00:49Z\"}, \"committer\": {\"name\": \"Monalisa Octocat\", \"ema"
	"il\": \"mona@github.com\", \"date\": \"2011-04-14T16:00:49Z\"}, \"message\": \"Fix all the bugs\", \"tree\": "
	"{\"url\": \"https://api.github.com/repos/octocat/Hello-World/tree/6dcb09b5b57875f334f61aebed695e2e4"
	"193db5e\", \"sha\": \"6dcb09b5b57875f334f61aebed695e2e4193db5e\"}, \"comment_count\": 0, \"verification\""
	": {\"verified\": false, \"reason\": \"unsigned\", \"signature\": null, \"payload\": null, \"verified_at\": n"
	"ull}}, \"author\": {\"login\": \"octocat\", \"id\": 1, \"node_id\": \"MDQ6VXNlcjE=\", \"avatar_url\": \"https:/"
	"/github.com/images/error/octocat_happy.gif\", \"gravatar_id\": \"\", \"url\": \"https://api.github.com/u"
	"sers/octocat\", \"html_url\": \"https://github.com/octocat\", \"followers_url\": \"https://api.github.co"
	"m/users/octocat/followers\", \"following_url\": \"https://api.github.com/users/octocat/following{/ot"
	"her_user}\", \"gists_url\": \"https://api.github.com/users/octocat/gists{/gist_id}\", \"starred_url\": "
	"\"https://api.github.com/users/octocat/starred{/owner}{/repo}\", \"subscriptions_url\": \"https://api"
	".github.com/users/octocat/subscriptions\", \"organizations_url\": \"https://api.github.com/users/oct"
	"ocat/orgs\", \"repos_url\": \"https://api.github.com/users/octocat/repos\", \"events_url\": \"https://ap"
	"i.github.com/users/octocat/events{/privacy}\", \"received_events_url\": \"https://api.github.com/use"
	"rs/octocat/received_events\", \"type\": \"User\", \"site_admin\": false}, \"committer\": {\"login\": \"octoc"
	"at\", \"id\": 1, \"node_id\": \"MDQ6VXNlcjE=\", \"avatar_url\": \"https://github.com/images/error/octocat_"
	"happy.gif\", \"gravatar_id\": \"\", \"url\": \"https://api.github.com/users/octocat\", \"html_url\": \"https"
	"://github.com/octocat\", \"followers_url\": \"https://api.github.com/users/octocat/followers\", \"foll"
	"owing_url\": \"https://api.github.com/users/octocat/following{/other_user}\", \"gists_url\": \"https:/"
	"/api.github.com/users/octocat/gists{/gist_id}\", \"starred_url\": \"https://api.github.com/users/oct"
	"ocat/starred{/owner}{/repo}\", \"subscriptions_url\": \"https://api.github.com/users/octocat/subscri"
	"ptions\", \"organizations_url\": \"https://api.github.com/users/octocat/orgs\", \"repos_url\": \"https:/"
	"/api.github.com/users/octocat/repos\", \"events_url\": \"https://api.github.com/users/octocat/events"
	"{/privacy}\", \"received_events_url\": \"https://api.github.com/users/octocat/received_events\", \"typ"
	"e\": \"User\", \"site_admin\": false}, \"parents\": [{\"url\": \"https://api.github.com/repos/octocat/Hell"
	"o-World/commits/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"sha\": \"6dcb09b5b57875f334f61aebed695"
	"e2e4193db5e\"}]}, \"merge_base_commit\": {\"url\": \"https://api.github.com/repos/octocat/Hello-World/"
	"commits/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"sha\": \"6dcb09b5b57875f334f61aebed695e2e4193d"
	"b5e\", \"node_id\": \"MDY6Q29tbWl0NmRjYjA5YjViNTc4NzVmMzM0ZjYxYWViZWQ2OTVlMmU0MTkzZGI1ZQ==\", \"html_u"
	"rl\": \"https://github.com/octocat/Hello-World/commit/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \""
	"comments_url\": \"https://api.github.com/repos/octocat/Hello-World/commits/6dcb09b5b57875f334f61ae"
	"bed695e2e4193db5e/comments\", \"commit\": {\"url\": \"https://api.github.com/repos/octocat/Hello-World"
	"/git/commits/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"author\": {\"name\": \"Monalisa Octocat\", \""
	"email\": \"mona@github.com\", \"date\": \"2011-04-14T16:00:49Z\"}, \"committer\": {\"name\": \"Monalisa Octo"
	"cat\", \"email\": \"mona@github.com\", \"date\": \"2011-04-14T16:00:49Z\"}, \"message\": \"Fix all the bugs\""
	", \"tree\": {\"url\": \"https://api.github.com/repos/octocat/Hello-World/tree/6dcb09b5b57875f334f61ae"
	"bed695e2e4193db5e\", \"sha\": \"6dcb09b5b57875f334f61aebed695e2e4193db5e\"}, \"comment_count\": 0, \"ver"
	"ification\": {\"verified\": false, \"reason\": \"unsigned\", \"signature\": null, \"payload\": null, \"verif"
	"ied_at\": null}}, \"author\": {\"login\": \"octocat\", \"id\": 1, \"node_id\": \"MDQ6VXNlcjE=\", \"avatar_url\""
	": \"https://github.com/images/error/octocat_happy.gif\", \"gravatar_id\": \"\", \"url\": \"https://api.gi"
	"thub.com/users/octocat\", \"html_url\": \"https://github.com/octocat\", \"followers_url\": \"https://api"
	".github.com/users/octocat/followers\", \"following_url\": \"https://api.github.com/users/octocat/fol"
	"lowing{/other_user}\", \"gists_url\": \"https://api.github.com/users/octocat/gists{/gist_id}\", \"star"
	"red_url\": \"https://api.github.com/users/octocat/starred{/owner}{/repo}\", \"subscriptions_url\": \"h"
	"ttps://api.github.com/users/octocat/subscriptions\", \"organizations_url\": \"https://api.github.com"
	"/users/octocat/orgs\", \"repos_url\": \"https://api.github.com/users/octocat/repos\", \"events_url\": \""
	"https://api.github.com/users/octocat/events{/privacy}\", \"received_events_url\": \"https://api.gith"
	"ub.com/users/octocat/received_events\", \"type\": \"User\", \"site_admin\": false}, \"committer\": {\"logi"
	"n\": \"octocat\", \"id\": 1, \"node_id\": \"MDQ6VXNlcjE=\", \"avatar_url\": \"https://github.com/images/erro"
	"r/octocat_happy.gif\", \"gravatar_id\": \"\", \"url\": \"https://api.github.com/users/octocat\", \"html_ur"
	"l\": \"https://github.com/octocat\", \"followers_url\": \"https://api.github.com/users/octocat/followe"
	"rs\", \"following_url\": \"https://api.github.com/users/octocat/following{/other_user}\", \"gists_url\""
	": \"https://api.github.com/users/octocat/gists{/gist_id}\", \"starred_url\": \"https://api.github.com"
	"/users/octocat/starred{/owner}{/repo}\", \"subscriptions_url\": \"https://api.github.com/users/octoc"
	"at/subscriptions\", \"organizations_url\": \"https://api.github.com/users/octocat/orgs\", \"repos_url\""
	": \"https://api.github.com/users/octocat/repos\", \"events_url\": \"https://api.github.com/users/octo"
	"cat/events{/privacy}\", \"received_events_url\": \"https://api.github.com/users/octocat/received_eve"
	"nts\", \"type\": \"User\", \"site_admin\": false}, \"parents\": [{\"url\": \"https://api.github.com/repos/oc"
	"tocat/Hello-World/commits/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"sha\": \"6dcb09b5b57875f334f"
	"61aebed695e2e4193db5e\"}]}, \"status\": \"behind\", \"ahead_by\": 1, \"behind_by\": 2, \"total_commits\": 1"
	", \"commits\": [{\"url\": \"https://api.github.com/repos/octocat/Hello-World/commits/6dcb09b5b57875f3"
	"34f61aebed695e2e4193db5e\", \"sha\": \"6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"node_id\": \"MDY6Q2"
	"9tbWl0NmRjYjA5YjViNTc4NzVmMzM0ZjYxYWViZWQ2OTVlMmU0MTkzZGI1ZQ==\", \"html_url\": \"https://github.com"
	"/octocat/Hello-World/commit/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"comments_url\": \"https://"
	"api.github.com/repos/octocat/Hello-World/commits/6dcb09b5b57875f334f61aebed695e2e4193db5e/commen"
	"ts\", \"commit\": {\"url\": \"https://api.github.com/repos/octocat/Hello-World/git/commits/6dcb09b5b57"
	"875f334f61aebed695e2e4193db5e\", \"author\": {\"name\": \"Monalisa Octocat\", \"email\": \"mona@github.com"
	"\", \"date\": \"2011-04-14T16:00:49Z\"}, \"committer\": {\"name\": \"Monalisa Octocat\", \"email\": \"mona@git"
	"hub.com\", \"date\": \"2011-04-14T16:00:49Z\"}, \"message\": \"Fix all the bugs\", \"tree\": {\"url\": \"https"
	"://api.github.com/repos/octocat/Hello-World/tree/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"sha"
	"\": \"6dcb09b5b57875f334f61aebed695e2e4193db5e\"}, \"comment_count\": 0, \"verification\": {\"verified\":"
	" false, \"reason\": \"unsigned\", \"signature\": null, \"payload\": null, \"verified_at\": null}}, \"author"
	"\": {\"login\": \"octocat\", \"id\": 1, \"node_id\": \"MDQ6VXNlcjE=\", \"avatar_url\": \"https://github.com/im"
	"ages/error/octocat_happy.gif\", \"gravatar_id\": \"\", \"url\": \"https://api.github.com/users/octocat\","
	" \"html_url\": \"https://github.com/octocat\", \"followers_url\": \"https://api.github.com/users/octoca"
	"t/followers\", \"following_url\": \"https://api.github.com/users/octocat/following{/other_user}\", \"g"
	"ists_url\": \"https://api.github.com/users/octocat/gists{/gist_id}\", \"starred_url\": \"https://api.g"
	"ithub.com/users/octocat/starred{/owner}{/repo}\", \"subscriptions_url\": \"https://api.github.com/us"
	"ers/octocat/subscriptions\", \"organizations_url\": \"https://api.github.com/users/octocat/orgs\", \"r"
	"epos_url\": \"https://api.github.com/users/octocat/repos\", \"events_url\": \"https://api.github.com/u"
	"sers/octocat/events{/privacy}\", \"received_events_url\": \"https://api.github.com/users/octocat/rec"
	"eived_events\", \"type\": \"User\", \"site_admin\": false}, \"committer\": {\"login\": \"octocat\", \"id\": 1, "
	"\"node_id\": \"MDQ6VXNlcjE=\", \"avatar_url\": \"https://github.com/images/error/octocat_happy.gif\", \"g"
	"ravatar_id\": \"\", \"url\": \"https://api.github.com/users/octocat\", \"html_url\": \"https://github.com/"
	"octocat\", \"followers_url\": \"https://api.github.com/users/octocat/followers\", \"following_url\": \"h"
	"ttps://api.github.com/users/octocat/following{/other_user}\", \"gists_url\": \"https://api.github.co"
	"m/users/octocat/gists{/gist_id}\", \"starred_url\": \"https://api.github.com/users/octocat/starred{/"
	"owner}{/repo}\", \"subscriptions_url\": \"https://api.github.com/users/octocat/subscriptions\", \"orga"
	"nizations_url\": \"https://api.github.com/users/octocat/orgs\", \"repos_url\": \"https://api.github.co"
	"m/users/octocat/repos\", \"events_url\": \"https://api.github.com/users/octocat/events{/privacy}\", \""
	"received_events_url\": \"https://api.github.com/users/octocat/received_events\", \"type\": \"User\", \"s"
	"ite_admin\": false}, \"parents\": [{\"url\": \"https://api.github.com/repos/octocat/Hello-World/commit"
	"s/6dcb09b5b57875f334f61aebed695e2e4193db5e\", \"sha\": \"6dcb09b5b57875f334f61aebed695e2e4193db5e\"}]"
	"}], \"files\": [{\"sha\": \"bbcd538c8e72b8c175046e27cc8f907076331401\", \"filename\": \"file1.txt\", \"stat"
	"us\": \"added\", \"additions\": 103, \"deletions\": 21, \"changes\": 124, \"blob_url\": \"https://github.com"
	"/octocat/Hello-World/blob/6dcb09b5b57875f334f61aebed695e2e4193db5e/file1.txt\", \"raw_url\": \"https"
	"://github.com/octocat/Hello-World/raw/6dcb09b5b57875f334f61aebed695e2e4193db5e/file1.txt\", \"cont"
	"ents_url\": \"https://api.github.com/repos/octocat/Hello-World/contents/file1.txt?ref=6dcb09b5b578"
	"75f334f61aebed695e2e4193db5e\", \"patch\": \"@@ -132,7 +132,7 @@ module Test @@ -1000,7 +1000,7 @@ m"
	"odule Test\"}]}";

/* ---- Link ---- */

static void check_next(const char *link, const char *want)
{
	char *got = ps_github_link_next(link);

	if (want)
		CHECK_STR(got, want);
	else if (got) {
		ps_test_failures++;
		fprintf(stderr, "unexpected next link '%s' in '%s'\n", got, link ? link : "(none)");
	}
	free(got);
}

static void test_link_next(void)
{
	/* Recorded (@octokit/fixtures scenarios/api.github.com/paginate-issues): first page,
	 * a middle page, the last page. */
	check_next("<https://api.github.com/repositories/1000/issues?per_page=3&page=2>; "
		   "rel=\"next\", <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; "
		   "rel=\"last\"",
		   "https://api.github.com/repositories/1000/issues?per_page=3&page=2");
	check_next("<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"prev\", "
		   "<https://api.github.com/repositories/1000/issues?per_page=3&page=3>; rel=\"next\", "
		   "<https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\", "
		   "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"",
		   "https://api.github.com/repositories/1000/issues?per_page=3&page=3");
	check_next("<https://api.github.com/repositories/1000/issues?per_page=3&page=4>; rel=\"prev\", "
		   "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"",
		   NULL);
	/* RFC 8288 variants: unquoted, several relation types, odd spacing, case. */
	check_next("<http://127.0.0.1:8080/b?page=2>;rel=next", "http://127.0.0.1:8080/b?page=2");
	check_next("<https://x/a?p=1>; rel=\"prev\",<https://x/a?p=3>;  rel=\"last next\"",
		   "https://x/a?p=3");
	check_next("<https://x/a?p=3>; REL=\"Next\"", "https://x/a?p=3");
	/* "next" must be the relation, not part of another word or the URL. */
	check_next("<https://x/next?p=3>; rel=\"nextish\"", NULL);
	check_next("<https://x/a,b?p=2>; rel=\"next\"", "https://x/a,b?p=2");
	check_next("", NULL);
	check_next(NULL, NULL);
	check_next("garbage; rel=\"next\"", NULL);
}

/* ---- rate-limit headers ---- */

static bool feed(struct ps_github_rate *rl, const char *line)
{
	return ps_github_rate_header(rl, line, strlen(line));
}

static void test_rate_headers(void)
{
	struct ps_github_rate rl;

	ps_github_rate_init(&rl);
	CHECK_INT(rl.remaining, -1);
	CHECK_INT(rl.reset, -1);
	CHECK_INT(rl.retry_after, -1);
	/* As GitHub sends them (lowercase on HTTP/2, mixed case in its documentation). */
	CHECK(feed(&rl, "x-ratelimit-limit: 5000\r\n"));
	CHECK(feed(&rl, "X-RateLimit-Remaining: 0\r\n"));
	CHECK(feed(&rl, "x-ratelimit-used: 5000\r\n"));
	CHECK(feed(&rl, "X-RateLimit-Reset: 1372700873\r\n"));
	CHECK(!feed(&rl, "x-ratelimit-resource: core\r\n"));
	CHECK(!feed(&rl, "content-type: application/json; charset=utf-8\r\n"));
	CHECK_INT(rl.limit, 5000);
	CHECK_INT(rl.remaining, 0);
	CHECK_INT(rl.used, 5000);
	CHECK_INT(rl.reset, 1372700873);
	CHECK_INT(rl.retry_after, -1);
	CHECK(feed(&rl, "Retry-After: 60\r\n"));
	CHECK_INT(rl.retry_after, 60);
	/* An HTTP date is not a number of seconds: recognised, not taken. */
	ps_github_rate_init(&rl);
	CHECK(feed(&rl, "retry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n"));
	CHECK_INT(rl.retry_after, -1);
	CHECK(feed(&rl, "x-ratelimit-remaining:   12  \r\n"));
	CHECK_INT(rl.remaining, 12);
	CHECK(feed(&rl, "x-ratelimit-remaining: -3\r\n"));
	CHECK_INT(rl.remaining, 12);
	/* A header whose name merely starts the same is another header. */
	CHECK(!feed(&rl, "x-ratelimit-remaining-extra: 0\r\n"));
	CHECK_INT(rl.remaining, 12);
}

/* Huge values are taken as "very far", not dropped and not wrapped: the waits they lead to must
 * fail at once, without signed overflow (UBSan runs these tests). */
static void test_rate_headers_strict_and_saturating(void)
{
	struct ps_github_rate rl;

	ps_github_rate_init(&rl);
	CHECK(feed(&rl, "retry-after: 100000000000000000000\r\n"));
	CHECK_INT(rl.retry_after, PS_GITHUB_NUM_MAX);
	CHECK(feed(&rl, "x-ratelimit-reset: 99999999999999999999999999999999999999\r\n"));
	CHECK_INT(rl.reset, PS_GITHUB_NUM_MAX);
	CHECK(feed(&rl, "x-ratelimit-reset: 0001700000000\r\n"));
	CHECK_INT(rl.reset, 1700000000);
	/* Anything but digits is no number of seconds. */
	const char *bad[] = { "x-ratelimit-reset: +5\r\n", "x-ratelimit-reset: 1e9\r\n",
			      "x-ratelimit-reset: 12 34\r\n", "x-ratelimit-reset: 0x10\r\n",
			      "x-ratelimit-reset: 17000s\r\n", "x-ratelimit-reset: \r\n",
			      "x-ratelimit-reset: 1.5\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(feed(&rl, bad[i]));
		CHECK_INT(rl.reset, 1700000000);
	}
}

static void test_rate_wait(void)
{
	struct ps_github_rate rl;
	const int64_t now = 1700000000;
	bool primary;

	ps_github_rate_init(&rl);
	CHECK_INT(ps_github_rate_wait(&rl, now, 600, &primary), 0);
	/* Primary: until the reset, plus a second; never less than one. */
	rl.remaining = 0;
	rl.reset = now + 30;
	CHECK_INT(ps_github_rate_wait(&rl, now, 600, &primary), 31);
	CHECK(primary);
	rl.reset = now - 100;
	CHECK_INT(ps_github_rate_wait(&rl, now, 600, &primary), 1);
	/* Beyond the limit: max + 1, whatever the header said, so * 1000 is safe. */
	rl.reset = PS_GITHUB_NUM_MAX;
	CHECK_INT(ps_github_rate_wait(&rl, now, 600, &primary), 601);
	CHECK_INT(ps_github_rate_wait(&rl, now, 86400, &primary), 86401);
	/* Secondary: retry-after, when the primary limit is not spent. */
	rl.remaining = 10;
	rl.retry_after = PS_GITHUB_NUM_MAX;
	CHECK_INT(ps_github_rate_wait(&rl, now, 600, &primary), 601);
	CHECK(!primary);
	rl.retry_after = 0;
	CHECK_INT(ps_github_rate_wait(&rl, now, 600, &primary), 1);
	rl.retry_after = 42;
	CHECK_INT(ps_github_rate_wait(&rl, now, 600, &primary), 42);
	CHECK_INT(ps_github_rate_wait(&rl, now, 0, &primary), 1);
}

/* The process's rate-limit figures (the /metrics gauges) come from answers to parallel requests,
 * processed in any order: they keep the newest state, never the figures of the answer that
 * happened to be processed last. */
static void test_rate_merge(void)
{
	int64_t rem = -1, reset = -1;

	/* An answer without the headers tells nothing. */
	ps_github_rate_merge(&rem, &reset, -1, -1);
	CHECK_INT(rem, -1);
	CHECK_INT(reset, -1);
	ps_github_rate_merge(&rem, &reset, 4321, 1700003600);
	CHECK_INT(rem, 4321);
	CHECK_INT(reset, 1700003600);
	/* Same window: GitHub counted this one later (4319) but it was processed before the one it
	 * counted earlier (4320). */
	ps_github_rate_merge(&rem, &reset, 4319, 1700003600);
	ps_github_rate_merge(&rem, &reset, 4320, 1700003600);
	CHECK_INT(rem, 4319);
	CHECK_INT(reset, 1700003600);
	ps_github_rate_merge(&rem, &reset, -1, 1700003600);
	CHECK_INT(rem, 4319);
	/* A new window: more left again, and a later reset. */
	ps_github_rate_merge(&rem, &reset, 4999, 1700007200);
	CHECK_INT(rem, 4999);
	CHECK_INT(reset, 1700007200);
	/* A late answer from the window that is over changes nothing, however few it says. */
	ps_github_rate_merge(&rem, &reset, 3, 1700003600);
	CHECK_INT(rem, 4999);
	CHECK_INT(reset, 1700007200);
	ps_github_rate_merge(&rem, &reset, 4998, 1700007200);
	CHECK_INT(rem, 4998);
	/* An exhausted limit shows as 0. */
	ps_github_rate_merge(&rem, &reset, 0, 1700007200);
	CHECK_INT(rem, 0);
	/* No reset to place the answer by: it replaces the figures. */
	ps_github_rate_merge(&rem, &reset, 57, -1);
	CHECK_INT(rem, 57);
	CHECK_INT(reset, -1);
	ps_github_rate_merge(&rem, &reset, 60, 1700010800);
	CHECK_INT(rem, 60);
	CHECK_INT(reset, 1700010800);
}

static void test_rate_clock(void)
{
	char buf[64];

	ps_github_clock(1372700873, buf, sizeof(buf));
	CHECK_STR(buf, "2013-07-01 17:47:53 UTC");
	ps_github_clock(0, buf, sizeof(buf));
	CHECK_STR(buf, "1970-01-01 00:00:00 UTC");
	/* No date a clock can show: said so, with the number, never garbage. */
	ps_github_clock(PS_GITHUB_NUM_MAX, buf, sizeof(buf));
	CHECK_STR(buf, "an unreadable time (999999999999999)");
	ps_github_clock(-5, buf, sizeof(buf));
	CHECK_STR(buf, "an unreadable time (-5)");
}

/* GitHub's JSON form of a blob of `n` bytes, written the way GitHub (and fakehub) write it. */
static size_t json_blob_answer_len(size_t n)
{
	size_t b64 = (n + 2) / 3 * 4, lines = (b64 + 59) / 60;
	static const char fields[] =
		"{\"sha\": \"0123456789012345678901234567890123456789\", \"node_id\": "
		"\"B_012345678901\", \"size\": 1073741824, \"url\": \"https://api.github.com/repos/"
		"a-thirty-nine-character-owner-name-xxxx/a-repository-name-of-one-hundred-chara"
		"cters-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/git/"
		"blobs/0123456789012345678901234567890123456789\", \"content\": \"\", "
		"\"encoding\": \"base64\"}";

	/* Every line ends in "\n", two characters once escaped in the JSON string. */
	return sizeof(fields) - 1 + b64 + 2 * lines;
}

static void test_blob_answer_max(void)
{
	const size_t sizes[] = { 0, 1, 2, 3, 44, 45, 46, 1 << 20, (1 << 20) + 1, 3 << 20,
				 (size_t)1 << 30 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int64_t cap = ps_github_blob_answer_max((int64_t)sizes[i]);
		size_t json = json_blob_answer_len(sizes[i]);
		if ((int64_t)json > cap)
			fprintf(stderr, "blob of %zu: JSON form %zu > cap %lld\n", sizes[i], json,
				(long long)cap);
		CHECK((int64_t)json <= cap);
		/* ... and not wildly more: still a bound. */
		CHECK(cap <= (int64_t)sizes[i] * 3 / 2 + 8192);
	}
}

/* ---- escaping ---- */

static void check_escape(const char *in, const char *want)
{
	char *got = ps_github_escape(in);
	CHECK_STR(got, want);
	free(got);
}

static void test_escape(void)
{
	check_escape("main", "main");
	check_escape("feature/x", "feature%2Fx");
	check_escape("release/v1.2_rc-1~3", "release%2Fv1.2_rc-1~3");
	check_escape("na\xc3\xafve", "na%C3%AFve");
	check_escape("a b#c?d%e", "a%20b%23c%3Fd%25e");
	check_escape("", "");
}

/* ---- trees ---- */

/* components/examples/git-tree-response-recursively-retrieving-a-tree, verbatim. */
static const char tree_recursive[] =
	"{\"sha\": \"fc6274d15fa3ae2ab983129fb037999f264ba9a7\", \"url\": \"https://api.github.com/"
	"repos/octocat/Hello-World/trees/fc6274d15fa3ae2ab983129fb037999f264ba9a7\", \"tree\": "
	"[{\"path\": \"subdir/file.txt\", \"mode\": \"100644\", \"type\": \"blob\", \"size\": 132, "
	"\"sha\": \"7c258a9869f33c1e1e1f74fbb32f07c86cb5a75b\", \"url\": \"https://api.github.com/"
	"repos/octocat/Hello-World/git/7c258a9869f33c1e1e1f74fbb32f07c86cb5a75b\"}], "
	"\"truncated\": false}";

/* components/examples/git-tree, verbatim (GitHub's example of a truncated answer). */
static const char tree_truncated[] =
	"{\"sha\": \"cd8274d15fa3ae2ab983129fb037999f264ba9a7\", \"url\": \"https://api.github.com/"
	"repos/octocat/Hello-World/trees/cd8274d15fa3ae2ab983129fb037999f264ba9a7\", \"tree\": "
	"[{\"path\": \"file.rb\", \"mode\": \"100644\", \"type\": \"blob\", \"size\": 132, \"sha\": "
	"\"7c258a9869f33c1e1e1f74fbb32f07c86cb5a75b\", \"url\": \"https://api.github.com/repos/"
	"octocat/Hello-World/git/blobs/7c258a9869f33c1e1e1f74fbb32f07c86cb5a75b\"}], "
	"\"truncated\": true}";

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_C "cccccccccccccccccccccccccccccccccccccccc"
#define SHA_D "dddddddddddddddddddddddddddddddddddddddd"
#define SHA_E "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

static void test_tree_parse(void)
{
	struct ps_github_tree t = {0};

	CHECK_OK(ps_github_tree_parse(&t, tree_recursive, strlen(tree_recursive), "GET /t"));
	CHECK_STR(t.sha, "fc6274d15fa3ae2ab983129fb037999f264ba9a7");
	CHECK(!t.truncated);
	CHECK_INT(t.n, 1);
	if (t.n == 1) {
		CHECK_STR(t.v[0].path, "subdir/file.txt");
		CHECK_INT(t.v[0].mode, 0100644);
		CHECK_INT(t.v[0].type, 'b');
		CHECK_INT(t.v[0].size, 132);
		CHECK_STR(t.v[0].sha, "7c258a9869f33c1e1e1f74fbb32f07c86cb5a75b");
	}
	ps_github_tree_dispose(&t);

	CHECK_OK(ps_github_tree_parse(&t, tree_truncated, strlen(tree_truncated), "GET /t"));
	CHECK(t.truncated);
	ps_github_tree_dispose(&t);

	/* Every kind of entry as GitHub lists them: trees and submodules have no size. */
	static const char kinds[] =
		"{\"sha\":\"" SHA_A "\",\"truncated\":false,\"tree\":["
		"{\"path\":\"bin\",\"mode\":\"040000\",\"type\":\"tree\",\"sha\":\"" SHA_B "\"},"
		"{\"path\":\"bin/run\",\"mode\":\"100755\",\"type\":\"blob\",\"size\":0,\"sha\":\"" SHA_C "\"},"
		"{\"path\":\"link\",\"mode\":\"120000\",\"type\":\"blob\",\"size\":7,\"sha\":\"" SHA_D "\"},"
		"{\"path\":\"vendor/lib\",\"mode\":\"160000\",\"type\":\"commit\",\"sha\":\"" SHA_E "\"},"
		"{\"path\":\"caf\\u00e9 \\u65e5\\u672c.txt\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":3,\"sha\":\"" SHA_A "\"}]}";
	CHECK_OK(ps_github_tree_parse(&t, kinds, strlen(kinds), "GET /t"));
	CHECK_INT(t.n, 5);
	if (t.n == 5) {
		CHECK_INT(t.v[0].type, 't');
		CHECK_INT(t.v[0].mode, 0040000);
		CHECK_INT(t.v[0].size, -1);
		CHECK_INT(t.v[1].mode, 0100755);
		CHECK_INT(t.v[1].size, 0);
		CHECK_INT(t.v[2].mode, 0120000);
		CHECK_INT(t.v[3].type, 'c');
		CHECK_INT(t.v[3].mode, 0160000);
		CHECK_INT(t.v[3].size, -1);
		CHECK_STR(t.v[4].path, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac.txt");
	}
	ps_github_tree_dispose(&t);
}

/* Modes of crafted trees are read as git reads them; a type that contradicts the mode is
 * refused with the entry named. */
static void test_tree_noncanonical_modes(void)
{
	struct ps_github_tree t = {0};
	static const char odd[] =
		"{\"sha\":\"" SHA_A "\",\"truncated\":false,\"tree\":["
		"{\"path\":\"f\",\"mode\":\"100611\",\"type\":\"blob\",\"size\":1,\"sha\":\"" SHA_B "\"},"
		"{\"path\":\"l\",\"mode\":\"120777\",\"type\":\"blob\",\"size\":1,\"sha\":\"" SHA_B "\"},"
		"{\"path\":\"s\",\"mode\":\"140000\",\"type\":\"commit\",\"sha\":\"" SHA_C "\"},"
		"{\"path\":\"x\",\"mode\":\"100700\",\"type\":\"blob\",\"size\":1,\"sha\":\"" SHA_B "\"}]}";
	static const char contradiction[] =
		"{\"sha\":\"" SHA_A "\",\"truncated\":false,\"tree\":["
		"{\"path\":\"d\",\"mode\":\"140000\",\"type\":\"tree\",\"sha\":\"" SHA_C "\"}]}";

	CHECK_OK(ps_github_tree_parse(&t, odd, strlen(odd), "GET /t"));
	CHECK_INT(t.n, 4);
	if (t.n == 4) {
		CHECK_INT(t.v[0].mode, PS_MODE_FILE);
		CHECK_INT(t.v[1].mode, PS_MODE_LINK);
		CHECK_INT(t.v[2].mode, PS_MODE_COMMIT);
		CHECK_INT(t.v[3].mode, PS_MODE_EXEC);
	}
	ps_github_tree_dispose(&t);
	CHECK_INT(ps_github_tree_parse(&t, contradiction, strlen(contradiction), "GET /t"),
		  PS_EUPSTREAM);
	CHECK_STR(ps_error_slug(), "bad_tree");
	CHECK(strstr(ps_error_message(), "entry 'd' has mode 140000 but is a tree") != NULL);
	CHECK_INT(t.n, 0);
}

static void expect_tree_malformed(const char *json, const char *part)
{
	struct ps_github_tree t = {0};
	int rc = ps_github_tree_parse(&t, json, strlen(json), "GET /repos/o/r/git/trees/x");

	CHECK_INT(rc, PS_EUPSTREAM);
	CHECK_STR(ps_error_slug(), "malformed_json");
	CHECK(strstr(ps_error_message(),
		     "GitHub returned malformed JSON for GET /repos/o/r/git/trees/x") != NULL);
	if (part && !strstr(ps_error_message(), part)) {
		ps_test_failures++;
		fprintf(stderr, "message '%s' lacks '%s'\n", ps_error_message(), part);
	}
	CHECK_INT(t.n, 0);
	ps_github_tree_dispose(&t);
}

#define ENTRY(path, extra) \
	"{\"sha\":\"" SHA_A "\",\"tree\":[{\"path\":\"" path "\",\"mode\":\"100644\"," \
	"\"type\":\"blob\",\"size\":1,\"sha\":\"" SHA_B "\"" extra "}]}"

static void test_tree_malformed(void)
{
	/* Cut in the middle, as a dropped connection with a complete-looking answer leaves it. */
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":[{\"path\":\"a\",\"mo", NULL);
	expect_tree_malformed("", NULL);
	expect_tree_malformed("[]", "'tree'");
	expect_tree_malformed("{\"sha\":\"xyz\",\"tree\":[]}", NULL);
	/* Paths that could escape a checkout or are not git paths. */
	expect_tree_malformed(ENTRY("../etc/passwd", ""), NULL);
	expect_tree_malformed(ENTRY("/abs", ""), NULL);
	expect_tree_malformed(ENTRY("a//b", ""), NULL);
	expect_tree_malformed(ENTRY("a/./b", ""), NULL);
	expect_tree_malformed(ENTRY("a/", ""), NULL);
	expect_tree_malformed(ENTRY("nul\\u0000byte", ""), NULL);
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":[{\"path\":\"a\",\"mode\":\"10064x\","
			      "\"type\":\"blob\",\"size\":1,\"sha\":\"" SHA_B "\"}]}", NULL);
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":[{\"path\":\"a\",\"mode\":\"100644\","
			      "\"type\":\"blob\",\"sha\":\"" SHA_B "\"}]}", "size");
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":[{\"path\":\"a\",\"mode\":\"100644\","
			      "\"type\":\"tag\",\"size\":1,\"sha\":\"" SHA_B "\"}]}", "type");
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":[{\"path\":\"a\",\"mode\":\"100644\","
			      "\"type\":\"blob\",\"size\":1,\"sha\":\"" SHA_B "0\"}]}", NULL);
	/* A path listed twice (found by fuzz_github_source): the listing would put two versions
	 * of one file into one snapshot. Also as a blob and a tree, and apart in the list. */
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":["
			      "{\"path\":\"d/x\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			      "\"sha\":\"" SHA_B "\"},"
			      "{\"path\":\"e\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			      "\"sha\":\"" SHA_B "\"},"
			      "{\"path\":\"d/x\",\"mode\":\"100755\",\"type\":\"blob\",\"size\":2,"
			      "\"sha\":\"" SHA_A "\"}]}", "'d/x' is listed twice");
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":["
			      "{\"path\":\"d\",\"mode\":\"040000\",\"type\":\"tree\","
			      "\"sha\":\"" SHA_B "\"},"
			      "{\"path\":\"d\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			      "\"sha\":\"" SHA_B "\"}]}", "listed twice");
	/* A file that is also a directory (found by fuzz_github_source); a missing parent is
	 * fine (a truncated listing may lack it). */
	expect_tree_malformed("{\"sha\":\"" SHA_A "\",\"tree\":["
			      "{\"path\":\"a\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			      "\"sha\":\"" SHA_B "\"},"
			      "{\"path\":\"a-b\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			      "\"sha\":\"" SHA_B "\"},"
			      "{\"path\":\"a/b\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			      "\"sha\":\"" SHA_B "\"}]}", "'a/b' is inside 'a', which is not a tree");
	{
		static const char nested[] =
			"{\"sha\":\"" SHA_A "\",\"truncated\":true,\"tree\":["
			"{\"path\":\"d\",\"mode\":\"040000\",\"type\":\"tree\",\"sha\":\"" SHA_B "\"},"
			"{\"path\":\"d/e/f\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			"\"sha\":\"" SHA_B "\"},"
			"{\"path\":\"d-x\",\"mode\":\"100644\",\"type\":\"blob\",\"size\":1,"
			"\"sha\":\"" SHA_B "\"}]}";
		struct ps_github_tree t = {0};
		CHECK_OK(ps_github_tree_parse(&t, nested, strlen(nested), "GET /t"));
		CHECK_INT(t.n, 3);
		ps_github_tree_dispose(&t);
	}
}

/* ---- compare ---- */

static void test_compare_example(void)
{
	struct ps_github_compare c = {0};
	char *ahead;
	char *p;

	CHECK_OK(ps_github_compare_parse(&c, compare_example, strlen(compare_example),
					 "GET /compare"));
	CHECK_STR(c.status, "behind");
	CHECK_STR(c.head_commit, "6dcb09b5b57875f334f61aebed695e2e4193db5e");
	CHECK_STR(c.head_tree, "6dcb09b5b57875f334f61aebed695e2e4193db5e");
	CHECK(c.has_files);
	CHECK_INT(c.nfiles, 1);
	if (c.nfiles == 1) {
		CHECK_STR(c.files[0].filename, "file1.txt");
		CHECK_INT(c.files[0].status, PS_GH_ADDED);
		CHECK_STR(c.files[0].sha, "bbcd538c8e72b8c175046e27cc8f907076331401");
		CHECK_INT(c.files[0].changes, 124);
		CHECK(c.files[0].previous == NULL);
	}
	/* "behind" is no fast-forward: its files are not the changes from base to head. */
	CHECK(!ps_github_compare_usable(&c));
	ps_github_compare_dispose(&c);

	/* The same answer for a fast-forward maps to the change, the mode from the head tree. */
	ahead = strdup(compare_example);
	p = strstr(ahead, "\"status\": \"behind\"");
	CHECK(p != NULL);
	if (p) {
		memcpy(p, "\"status\": \"ahead\" ", 18);
		struct ps_file head[] = {
			{ .path = (char *)"file1.txt", .mode = 0100755,
			  .sha = "bbcd538c8e72b8c175046e27cc8f907076331401", .size = 1234 },
		};
		struct ps_change *ch = NULL;
		size_t n = 0;
		CHECK_OK(ps_github_compare_parse(&c, ahead, strlen(ahead), "GET /compare"));
		CHECK(ps_github_compare_usable(&c));
		CHECK_OK(ps_github_compare_changes(&c, head, 1, &ch, &n));
		CHECK_INT(n, 1);
		if (n == 1) {
			CHECK_INT(ch[0].status, PS_CHANGE_ADDED);
			CHECK_STR(ch[0].path, "file1.txt");
			CHECK_INT(ch[0].mode, 0100755);
			CHECK_INT(ch[0].size, 1234);
			CHECK_STR(ch[0].sha, "bbcd538c8e72b8c175046e27cc8f907076331401");
		}
		ps_changes_free(ch, n);
		/* A tree that does not hold the path: the compare cannot be trusted. */
		head[0].path = (char *)"file2.txt";
		CHECK_INT(ps_github_compare_changes(&c, head, 1, &ch, &n), PS_ENOTSUPP);
		/* Nor one that holds another blob there. */
		head[0].path = (char *)"file1.txt";
		memcpy(head[0].sha, SHA_A, 41);
		CHECK_INT(ps_github_compare_changes(&c, head, 1, &ch, &n), PS_ENOTSUPP);
		ps_github_compare_dispose(&c);
	}
	free(ahead);
}

#define FILE_JSON(name, status, sha, changes, extra) \
	"{\"sha\":" sha ",\"filename\":\"" name "\",\"status\":\"" status "\",\"additions\":0," \
	"\"deletions\":0,\"changes\":" #changes ",\"blob_url\":\"https://github.com/o/r/blob/x\"," \
	"\"raw_url\":\"https://github.com/o/r/raw/x\",\"contents_url\":\"https://api.github.com/x\"" \
	extra "}"
#define Q(s) "\"" s "\""

static void test_compare_mapping(void)
{
	static const char json[] =
		"{\"status\":\"ahead\",\"ahead_by\":1,\"behind_by\":0,\"total_commits\":1,"
		"\"commits\":[{\"sha\":\"" SHA_E "\",\"commit\":{\"tree\":{\"sha\":\"" SHA_D "\"}}}],"
		"\"files\":["
		FILE_JSON("gone.txt", "removed", Q(SHA_A), 3, "") ","
		FILE_JSON("new/name.txt", "renamed", Q(SHA_B), 0, ",\"previous_filename\":\"old/name.txt\"") ","
		FILE_JSON("edited.txt", "renamed", Q(SHA_C), 4, ",\"previous_filename\":\"before.txt\"") ","
		FILE_JSON("mod.sh", "modified", Q(SHA_D), 2, "") ","
		FILE_JSON("link", "changed", Q(SHA_E), 1, "") ","
		FILE_JSON("same.txt", "unchanged", Q(SHA_A), 0, "") ","
		FILE_JSON("copy.txt", "copied", Q(SHA_D), 2, ",\"previous_filename\":\"mod.sh\"") ","
		/* A rename onto a path that was itself removed: one change for that path. */
		FILE_JSON("spot.txt", "renamed", Q(SHA_C), 0, ",\"previous_filename\":\"elsewhere.txt\"") ","
		FILE_JSON("elsewhere.txt", "added", "null", 1, "") "]}";
	/* The head's entries, sorted by path bytes. */
	struct ps_file head[] = {
		{ .path = (char *)"copy.txt", .mode = 0100644, .sha = SHA_D, .size = 10 },
		{ .path = (char *)"edited.txt", .mode = 0100644, .sha = SHA_C, .size = 11 },
		{ .path = (char *)"elsewhere.txt", .mode = 0100644, .sha = SHA_A, .size = 12 },
		{ .path = (char *)"link", .mode = 0120000, .sha = SHA_E, .size = 5 },
		{ .path = (char *)"mod.sh", .mode = 0100755, .sha = SHA_D, .size = 13 },
		{ .path = (char *)"new/name.txt", .mode = 0100644, .sha = SHA_B, .size = 10 },
		{ .path = (char *)"spot.txt", .mode = 0100644, .sha = SHA_C, .size = 11 },
	};
	struct ps_github_compare c = {0};
	struct ps_change *ch = NULL;
	size_t n = 0;

	CHECK_OK(ps_github_compare_parse(&c, json, strlen(json), "GET /compare"));
	CHECK_STR(c.head_commit, SHA_E);
	CHECK_STR(c.head_tree, SHA_D);
	CHECK_INT(c.nfiles, 9);
	CHECK_OK(ps_github_compare_changes(&c, head, sizeof(head) / sizeof(head[0]), &ch, &n));
	/* Renames are pairs the pipeline pairs again (exact ones only, like a local diff). */
	ps_diff_pair_renames(&ch, &n);
	static const struct {
		const char *path;
		enum ps_change_status st;
		uint32_t mode;
		const char *prev;
	} want[] = {
		{ "before.txt", PS_CHANGE_DELETED, 0, NULL },
		{ "copy.txt", PS_CHANGE_ADDED, 0100644, NULL },
		{ "edited.txt", PS_CHANGE_ADDED, 0100644, NULL },
		{ "elsewhere.txt", PS_CHANGE_MODIFIED, 0100644, NULL },
		{ "gone.txt", PS_CHANGE_DELETED, 0, NULL },
		{ "link", PS_CHANGE_TYPE_CHANGED, 0120000, NULL },
		{ "mod.sh", PS_CHANGE_MODIFIED, 0100755, NULL },
		{ "new/name.txt", PS_CHANGE_RENAMED, 0100644, "old/name.txt" },
		{ "spot.txt", PS_CHANGE_ADDED, 0100644, NULL },
	};
	CHECK_INT(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n && i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_STR(ch[i].path, want[i].path);
		CHECK_INT(ch[i].status, want[i].st);
		CHECK_INT(ch[i].mode, want[i].mode);
		if (want[i].prev)
			CHECK_STR(ch[i].previous_path, want[i].prev);
		if (want[i].st != PS_CHANGE_DELETED)
			CHECK(ch[i].size > 0);
	}
	/* The removed file keeps its old blob, the modified one its previous (elsewhere.txt was
	 * the source of a rename and is added again). */
	if (n == 9) {
		CHECK_STR(ch[4].previous_sha, SHA_A);
		CHECK_STR(ch[3].previous_sha, SHA_C);
		CHECK_STR(ch[3].sha, SHA_A);
		CHECK_STR(ch[7].previous_sha, SHA_B);
	}
	ps_changes_free(ch, n);
	ps_github_compare_dispose(&c);
}

static void test_compare_limits(void)
{
	struct ps_github_compare c = {0};
	struct ps_change *ch = NULL;
	size_t n = 0;
	char *json;
	size_t cap = 400 * 400, len;

	/* 300 files is GitHub's cap: the list may be cut, so it is not used. */
	json = malloc(cap);
	len = (size_t)snprintf(json, cap, "{\"status\":\"ahead\",\"commits\":[],\"files\":[");
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(json + len, cap - len,
					"%s{\"sha\":\"%s\",\"filename\":\"f%03d\",\"status\":\"removed\","
					"\"changes\":1}", i ? "," : "", SHA_A, i);
	snprintf(json + len, cap - len, "]}");
	CHECK_OK(ps_github_compare_parse(&c, json, strlen(json), "GET /compare"));
	CHECK_INT(c.nfiles, 300);
	CHECK(!ps_github_compare_usable(&c));
	CHECK_INT(ps_github_compare_changes(&c, NULL, 0, &ch, &n), PS_ENOTSUPP);
	ps_github_compare_dispose(&c);
	free(json);

	static const char *const unusable[] = {
		"{\"status\":\"diverged\",\"files\":[]}",
		"{\"status\":\"behind\",\"files\":[]}",
		"{\"status\":\"ahead\"}", /* no file list at all */
	};
	for (size_t i = 0; i < sizeof(unusable) / sizeof(unusable[0]); i++) {
		CHECK_OK(ps_github_compare_parse(&c, unusable[i], strlen(unusable[i]), "x"));
		CHECK(!ps_github_compare_usable(&c));
		ps_github_compare_dispose(&c);
	}
	static const char identical[] = "{\"status\":\"identical\",\"commits\":[],\"files\":[]}";
	CHECK_OK(ps_github_compare_parse(&c, identical, strlen(identical), "x"));
	CHECK(ps_github_compare_usable(&c));
	CHECK_OK(ps_github_compare_changes(&c, NULL, 0, &ch, &n));
	CHECK_INT(n, 0);
	ps_changes_free(ch, n);
	ps_github_compare_dispose(&c);

	static const char bad_status[] =
		"{\"status\":\"ahead\",\"files\":[{\"filename\":\"a\",\"status\":\"mangled\"}]}";
	CHECK_INT(ps_github_compare_parse(&c, bad_status, strlen(bad_status), "GET /compare/x...y"),
		  PS_EUPSTREAM);
	CHECK(strstr(ps_error_message(), "malformed JSON for GET /compare/x...y") != NULL);
	CHECK_INT(ps_github_compare_parse(&c, "{\"status\":", 10, "GET /c"), PS_EUPSTREAM);
}

/* Commits (`projsync log`): GitHub's times, both commit shapes, a compare's list newest first,
 * and git's subject rule. */
static void test_commits_parse(void)
{
	int64_t ms = 0;
	CHECK(ps_github_time_parse("2011-04-14T16:00:49Z", &ms));
	CHECK_INT(ms, 1302796849000LL);
	CHECK(ps_github_time_parse("2011-04-14T18:00:49+02:00", &ms));
	CHECK_INT(ms, 1302796849000LL);
	CHECK(ps_github_time_parse("2011-04-14T16:00:49.5Z", &ms));
	CHECK_INT(ms, 1302796849500LL);
	CHECK(!ps_github_time_parse("2011-04-14 16:00:49Z", &ms));
	CHECK(!ps_github_time_parse("2011-04-14T16:00:49", &ms));

	static const char cmp[] =
		"{\"total_commits\":3,\"commits\":["
		"{\"sha\":\"1111111111111111111111111111111111111111\",\"commit\":{\"message\":\"old\","
		"\"author\":{\"name\":\"A\",\"email\":\"a@x\",\"date\":\"2011-04-14T16:00:49Z\"},"
		"\"committer\":{\"name\":\"C\",\"email\":\"c@x\",\"date\":\"2011-04-14T16:00:50Z\"}},"
		"\"parents\":[]},"
		"{\"sha\":\"2222222222222222222222222222222222222222\",\"commit\":{\"message\":"
		"\"\\n\\nTwo  \\nlines\\n\\nbody\",\"author\":{\"name\":\"A\",\"email\":\"a@x\","
		"\"date\":\"2011-04-14T16:00:49Z\"},\"committer\":{\"name\":\"C\",\"email\":\"c@x\","
		"\"date\":\"2011-04-14T16:00:51Z\"}},\"parents\":[{\"sha\":"
		"\"1111111111111111111111111111111111111111\"},{\"sha\":"
		"\"3333333333333333333333333333333333333333\"}]}]}";
	struct ps_commit_list l;
	CHECK_OK(ps_github_compare_commits_parse(&l, cmp, strlen(cmp), "x"));
	CHECK_INT(l.n, 2);
	CHECK_INT(l.total, 3);
	CHECK(l.truncated);
	CHECK_STR(l.v[0].sha, "2222222222222222222222222222222222222222");
	CHECK_STR(l.v[0].subject, "Two lines");
	CHECK_STR(l.v[0].parents, "1111111111111111111111111111111111111111 "
		  "3333333333333333333333333333333333333333");
	CHECK_INT(l.v[0].committer.date, 1302796851000LL);
	CHECK_STR(l.v[1].subject, "old");
	CHECK_STR(l.v[1].parents, "");
	CHECK_STR(l.v[1].author.email, "a@x");
	ps_commit_list_dispose(&l);

	static const char no_sha[] = "{\"commits\":[{\"commit\":{\"message\":\"m\"}}]}";
	CHECK_INT(ps_github_compare_commits_parse(&l, no_sha, strlen(no_sha), "x"), PS_EUPSTREAM);
	CHECK_INT(ps_github_compare_commits_parse(&l, "{}", 2, "x"), PS_EUPSTREAM);

	char *sub = ps_commit_subject("\n \nfirst line \t\r\nsecond\n\nbody\n", 30);
	CHECK_STR(sub, "first line second");
	free(sub);
	sub = ps_commit_subject("", 0);
	CHECK_STR(sub, "");
	free(sub);
}

PS_TESTS(PS_TEST(test_link_next), PS_TEST(test_rate_headers),
	 PS_TEST(test_rate_headers_strict_and_saturating), PS_TEST(test_rate_wait),
	 PS_TEST(test_rate_merge), PS_TEST(test_rate_clock), PS_TEST(test_blob_answer_max),
	 PS_TEST(test_escape),
	 PS_TEST(test_tree_parse), PS_TEST(test_tree_noncanonical_modes),
	 PS_TEST(test_tree_malformed), PS_TEST(test_compare_example),
	 PS_TEST(test_compare_mapping), PS_TEST(test_compare_limits),
	 PS_TEST(test_commits_parse))
