/*
 * Operations endpoints: `/healthz` (the store answers; workers and streams counted) and
 * `/metrics` in the Prometheus text format (version 0.0.4):
 *
 *   projsync_syncs{status}                         syncs in the store by status (gauge)
 *   projsync_projects{state}                       projects by state: active, paused (gauge)
 *   projsync_sync_duration_seconds                 histogram of syncs run by this server
 *   projsync_syncs_finished_total{status}          syncs this server's workers ended
 *   projsync_upstream_requests_total{source_kind}  upstream requests made by those syncs
 *   projsync_syncs_running                         syncs running in this server now
 *   projsync_sse_watchers                          open SSE streams
 *   projsync_http_requests_total{route,method,status}
 *   projsync_github_rate_limit_remaining           GitHub's latest figures in its answers to
 *   projsync_github_rate_limit_reset_seconds       this process (gauges; absent before one)
 *
 * The rate-limit gauges are the newest state GitHub's answers told, not the figures of the
 * answer processed last: a fetch's parallel requests finish in any order, so the last one
 * processed may be one GitHub counted earlier (one more left). Within a window (the same reset
 * time) the smallest remaining wins; a later reset is a new window and replaces both figures;
 * an answer from a window already over is ignored (ps_github_rate_merge, source/github.h).
 *
 * Counters are kept under one mutex: they are touched once per request and once per sync, far
 * below the point where contention would show.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"
#include "source/source.h"
#include "util/error.h"

static const double buckets[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900 };
#define NBUCKETS (sizeof(buckets) / sizeof(*buckets))
#define NSTATUS 600

struct http_count {
	const char *route, *method; /* static strings: the route table's, http.c's labels */
	unsigned status;
	uint64_t count;
};

struct ps_metrics {
	pthread_mutex_t mu;
	struct http_count *http;
	size_t nhttp, caphttp;
	uint64_t dur_buckets[NBUCKETS];
	uint64_t dur_count;
	double dur_sum;
	uint64_t finished[3];   /* succeeded, failed, cancelled */
	uint64_t upstream_requests[2]; /* by source kind: git, github */
};

int ps_metrics_new(struct ps_metrics **out)
{
	struct ps_metrics *m = ps_calloc(1, sizeof(*m));

	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return 0;
}

void ps_metrics_free(struct ps_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->http);
	free(m);
}

void ps_metrics_http(struct ps_metrics *m, const char *route, const char *method,
		     unsigned status)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	/* By value: the same label can come from two tables ("GET" of a route, of a 405). */
	for (i = 0; i < m->nhttp; i++)
		if (m->http[i].status == status && strcmp(m->http[i].route, route) == 0 &&
		    strcmp(m->http[i].method, method) == 0)
			break;
	if (i == m->nhttp) {
		if (m->nhttp == m->caphttp) {
			m->caphttp = m->caphttp ? m->caphttp * 2 : 32;
			m->http = ps_realloc(m->http, m->caphttp * sizeof(*m->http));
		}
		m->http[m->nhttp++] = (struct http_count){ route, method, status, 0 };
	}
	m->http[i].count++;
	pthread_mutex_unlock(&m->mu);
}

void ps_metrics_sync_done(struct ps_metrics *m, const char *status, int64_t duration_ms,
			  const char *source_kind, int64_t requests)
{
	double s = (double)duration_ms / 1000.0;
	int kind = source_kind && strcmp(source_kind, "github") == 0 ? 1 : 0;

	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < NBUCKETS; i++)
		if (s <= buckets[i])
			m->dur_buckets[i]++;
	m->dur_count++;
	m->dur_sum += s;
	if (strcmp(status, "succeeded") == 0)
		m->finished[0]++;
	else if (strcmp(status, "failed") == 0)
		m->finished[1]++;
	else
		m->finished[2]++;
	if (requests > 0)
		m->upstream_requests[kind] += (uint64_t)requests;
	pthread_mutex_unlock(&m->mu);
}

void ps_api_metrics(struct ps_request *rq)
{
	struct ps_metrics *m = rq->srv->metrics;
	int64_t counts[PS_SYNC_CANCELLED + 1] = { 0 };
	struct ps_buf b;
	int64_t rl_remaining, rl_reset;
	bool have_counts = ps_store_sync_count_by_status(rq->store, counts) == 0;

	ps_buf_init(&b, 16 * 1024 * 1024);
	ps_buf_puts(&b, "# HELP projsync_syncs Syncs in the store by status.\n"
			"# TYPE projsync_syncs gauge\n");
	for (int s = PS_SYNC_QUEUED; have_counts && s <= PS_SYNC_CANCELLED; s++)
		ps_buf_printf(&b, "projsync_syncs{status=\"%s\"} %lld\n",
			      ps_sync_status_name((enum ps_sync_status)s), (long long)counts[s]);
	/* A project paused by its failures stops syncing without anything else saying so; this
	 * is what an alert can watch. */
	{
		struct ps_project **ps = NULL;
		size_t n = 0;
		int64_t paused = 0;

		if (ps_store_project_list(rq->store, &ps, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				paused += ps[i]->paused;
			ps_buf_printf(&b, "# HELP projsync_projects Projects in the store by state "
					  "(paused: its scheduled syncs failed too often).\n"
					  "# TYPE projsync_projects gauge\n"
					  "projsync_projects{state=\"active\"} %lld\n"
					  "projsync_projects{state=\"paused\"} %lld\n",
				      (long long)((int64_t)n - paused), (long long)paused);
		} else {
			ps_error_clear();
		}
		for (size_t i = 0; i < n; i++)
			ps_project_free(ps[i]);
		free(ps);
	}
	ps_buf_printf(&b, "# HELP projsync_syncs_running Syncs running in this server.\n"
			  "# TYPE projsync_syncs_running gauge\n"
			  "projsync_syncs_running %zu\n", ps_workers_running(rq->srv->workers));
	ps_buf_printf(&b, "# HELP projsync_sse_watchers Open SSE event streams.\n"
			  "# TYPE projsync_sse_watchers gauge\n"
			  "projsync_sse_watchers %zu\n", ps_hub_watchers(rq->srv->hub));

	pthread_mutex_lock(&m->mu);
	ps_buf_puts(&b, "# HELP projsync_sync_duration_seconds Duration of syncs run by this "
			"server.\n# TYPE projsync_sync_duration_seconds histogram\n");
	for (size_t i = 0; i < NBUCKETS; i++)
		ps_buf_printf(&b, "projsync_sync_duration_seconds_bucket{le=\"%g\"} %llu\n",
			      buckets[i], (unsigned long long)m->dur_buckets[i]);
	ps_buf_printf(&b, "projsync_sync_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
			  "projsync_sync_duration_seconds_sum %.3f\n"
			  "projsync_sync_duration_seconds_count %llu\n",
		      (unsigned long long)m->dur_count, m->dur_sum,
		      (unsigned long long)m->dur_count);
	ps_buf_printf(&b, "# HELP projsync_syncs_finished_total Syncs this server's workers ended.\n"
			  "# TYPE projsync_syncs_finished_total counter\n"
			  "projsync_syncs_finished_total{status=\"succeeded\"} %llu\n"
			  "projsync_syncs_finished_total{status=\"failed\"} %llu\n"
			  "projsync_syncs_finished_total{status=\"cancelled\"} %llu\n",
		      (unsigned long long)m->finished[0], (unsigned long long)m->finished[1],
		      (unsigned long long)m->finished[2]);
	ps_buf_printf(&b, "# HELP projsync_upstream_requests_total Upstream requests made by syncs "
			  "of this server.\n# TYPE projsync_upstream_requests_total counter\n"
			  "projsync_upstream_requests_total{source_kind=\"git\"} %llu\n"
			  "projsync_upstream_requests_total{source_kind=\"github\"} %llu\n",
		      (unsigned long long)m->upstream_requests[0],
		      (unsigned long long)m->upstream_requests[1]);
	ps_buf_puts(&b, "# HELP projsync_http_requests_total HTTP requests by route and status.\n"
			"# TYPE projsync_http_requests_total counter\n");
	for (size_t i = 0; i < m->nhttp; i++) {
		const struct http_count *h = &m->http[i];
		ps_buf_printf(&b, "projsync_http_requests_total{route=\"%s\",method=\"%s\","
				  "status=\"%u\"} %llu\n",
			      h->route, h->method, h->status, (unsigned long long)h->count);
	}
	pthread_mutex_unlock(&m->mu);
	/* Omitted until a GitHub answer carried them: 0 would read as an exhausted limit. */
	ps_github_rate_limit_last(&rl_remaining, &rl_reset);
	if (rl_remaining >= 0)
		ps_buf_printf(&b, "# HELP projsync_github_rate_limit_remaining GitHub API requests "
				  "left in the current window, as GitHub's latest answer said.\n"
				  "# TYPE projsync_github_rate_limit_remaining gauge\n"
				  "projsync_github_rate_limit_remaining %lld\n",
			      (long long)rl_remaining);
	if (rl_remaining >= 0 && rl_reset >= 0)
		ps_buf_printf(&b, "# HELP projsync_github_rate_limit_reset_seconds When GitHub's "
				  "rate-limit window resets (unix seconds).\n"
				  "# TYPE projsync_github_rate_limit_reset_seconds gauge\n"
				  "projsync_github_rate_limit_reset_seconds %lld\n",
			      (long long)rl_reset);
	{
		size_t len;
		char *text = ps_buf_take(&b, &len);
		ps_http_raw(rq, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			    text ? text : ps_strdup(""), text ? len : 0, true);
	}
}

void ps_api_healthz(struct ps_request *rq)
{
	int64_t counts[PS_SYNC_CANCELLED + 1];
	int rc = ps_store_sync_count_by_status(rq->store, counts);

	if (rc < 0) {
		ps_http_error(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable", "store: %s",
			      ps_error_message());
		return;
	}
	ps_http_json(rq, rq->srv->stopping ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
		     json_pack("{s:s, s:I, s:I, s:I}",
			       "status", rq->srv->stopping ? "stopping" : "ok",
			       "syncs_running", (json_int_t)ps_workers_running(rq->srv->workers),
			       "syncs_queued", (json_int_t)counts[PS_SYNC_QUEUED],
			       "sse_watchers", (json_int_t)ps_hub_watchers(rq->srv->hub)));
}
