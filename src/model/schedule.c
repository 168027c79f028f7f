/*
 * Scheduled syncs as arithmetic (schedule.h): parsing and showing --every, jitter, backoff and
 * what a sync's end does to the schedule. Pure functions of their arguments and `now`.
 */
#include "model/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

bool ps_duration_parse(const char *s, int64_t *ms)
{
	int64_t total = 0;

	if (!s || !*s)
		return false;
	while (*s) {
		char *end;
		unsigned long long v;
		int64_t unit;

		if (*s < '0' || *s > '9')
			return false;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno || v > 1000000000ULL)
			return false;
		switch (*end) {
		case '\0':
			/* Plain seconds, only as the whole value ("90", not "1m30"). */
			if (total)
				return false;
			unit = 1000;
			break;
		case 's': unit = 1000; end++; break;
		case 'm': unit = 60 * 1000; end++; break;
		case 'h': unit = 3600 * 1000; end++; break;
		case 'd': unit = 24LL * 3600 * 1000; end++; break;
		default: return false;
		}
		total += (int64_t)v * unit;
		if (total > 100LL * 365 * 24 * 3600 * 1000)
			return false;
		s = end;
	}
	*ms = total;
	return true;
}

void ps_duration_format(int64_t ms, char *out, size_t outlen)
{
	static const struct { int64_t ms; char unit; } units[] = {
		{ 24LL * 3600 * 1000, 'd' }, { 3600 * 1000, 'h' }, { 60 * 1000, 'm' }, { 1000, 's' },
	};
	size_t used = 0;
	int64_t left = ms < 0 ? 0 : ms;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
		int64_t n = left / units[i].ms;
		if (n > 0 && used < outlen) {
			int w = snprintf(out + used, outlen - used, "%lld%c", (long long)n, units[i].unit);
			used += w > 0 ? (size_t)w : 0;
			left -= n * units[i].ms;
		}
	}
	if (!out[0])
		snprintf(out, outlen, "%llds", (long long)(left / 1000));
}

void ps_project_schedule_defaults(struct ps_project *p)
{
	if (p->auto_min_ms <= 0)
		p->auto_min_ms = PS_SCHEDULE_AUTO_MIN_MS;
	if (p->auto_max_ms <= 0)
		p->auto_max_ms = PS_SCHEDULE_AUTO_MAX_MS;
}

bool ps_schedule_on(const struct ps_project *p)
{
	return p->every_auto || p->every_ms > 0;
}

int ps_schedule_parse_every(const char *s, struct ps_project *p)
{
	int64_t ms;

	if (!strcmp(s, "off")) {
		p->every_ms = 0;
		p->every_auto = false;
		return 0;
	}
	if (!strcmp(s, "auto")) {
		p->every_ms = 0;
		p->every_auto = true;
		return 0;
	}
	if (!ps_duration_parse(s, &ms))
		return ps_error_set(PS_EINVAL, "invalid_every",
				    "invalid --every '%s': give a duration like 30s, 10m or 1h, or "
				    "'auto' or 'off'", s);
	if (ms < PS_SCHEDULE_MIN_EVERY_MS || ms > PS_SCHEDULE_MAX_EVERY_MS)
		return ps_error_set(PS_EINVAL, "invalid_every",
				    "invalid --every '%s': the interval must be from 10s to 30d", s);
	p->every_ms = ms;
	p->every_auto = false;
	return 0;
}

void ps_schedule_every_string(const struct ps_project *p, char *out, size_t outlen)
{
	if (p->every_auto)
		snprintf(out, outlen, "auto");
	else if (p->every_ms > 0)
		ps_duration_format(p->every_ms, out, outlen);
	else
		snprintf(out, outlen, "off");
}

/* splitmix64: a well-mixed 64-bit value from any seed. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int64_t ps_schedule_jitter(int64_t interval_ms, uint64_t seed)
{
	int64_t cap = interval_ms / 10;

	if (cap > PS_SCHEDULE_JITTER_CAP_MS)
		cap = PS_SCHEDULE_JITTER_CAP_MS;
	if (cap <= 0)
		return 0;
	return (int64_t)(mix(seed) % (uint64_t)(cap + 1));
}

int64_t ps_schedule_backoff(int64_t interval_ms, int64_t failures_in_row)
{
	int64_t cap = interval_ms > PS_SCHEDULE_BACKOFF_CAP_MS ? interval_ms
							       : PS_SCHEDULE_BACKOFF_CAP_MS;
	int64_t d = interval_ms;

	for (int64_t i = 0; i < failures_in_row && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void auto_bounds(const struct ps_project *p, int64_t *lo, int64_t *hi)
{
	*lo = p->auto_min_ms > 0 ? p->auto_min_ms : PS_SCHEDULE_AUTO_MIN_MS;
	*hi = p->auto_max_ms > 0 ? p->auto_max_ms : PS_SCHEDULE_AUTO_MAX_MS;
	if (*hi < *lo)
		*hi = *lo;
}

static uint64_t seed_of(const struct ps_project *p, int64_t now)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over the name: stable before an id exists */

	for (const char *c = p->name ? p->name : ""; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	return h ^ (uint64_t)p->id ^ mix((uint64_t)now);
}

void ps_schedule_configure(struct ps_project *p, int64_t now)
{
	int64_t lo, hi;

	if (!ps_schedule_on(p)) {
		p->interval_ms = 0;
		p->next_sync_at = 0;
		return;
	}
	auto_bounds(p, &lo, &hi);
	p->interval_ms = p->every_auto ? lo : p->every_ms;
	if (!p->last_check_at || p->last_check_at + p->interval_ms <= now)
		p->next_sync_at = now;
	else
		p->next_sync_at = p->last_check_at + p->interval_ms;
	p->next_sync_at += ps_schedule_jitter(p->interval_ms, seed_of(p, now));
}

void ps_schedule_after_sync(struct ps_project *p, enum ps_sync_status status, bool changed,
			    int64_t now)
{
	int64_t lo, hi, wait;

	p->last_check_at = now;
	if (status == PS_SYNC_SUCCEEDED) {
		p->paused = false;
		p->paused_at = 0;
		free(p->paused_reason);
		p->paused_reason = NULL;
	}
	if (!ps_schedule_on(p)) {
		p->interval_ms = 0;
		p->next_sync_at = 0;
		return;
	}
	auto_bounds(p, &lo, &hi);
	if (!p->every_auto)
		p->interval_ms = p->every_ms;
	else if (p->interval_ms <= 0)
		p->interval_ms = lo;
	else if (status == PS_SYNC_SUCCEEDED)
		p->interval_ms = clamp(changed ? p->interval_ms / 2 : p->interval_ms * 2, lo, hi);
	else
		p->interval_ms = clamp(p->interval_ms, lo, hi);
	wait = status == PS_SYNC_FAILED ? ps_schedule_backoff(p->interval_ms, p->failures_in_row)
					: p->interval_ms;
	p->next_sync_at = now + wait + ps_schedule_jitter(p->interval_ms, seed_of(p, now));
}

void ps_schedule_resume(struct ps_project *p, int64_t now)
{
	p->paused = false;
	p->paused_at = 0;
	free(p->paused_reason);
	p->paused_reason = NULL;
	p->failures_in_row = 0;
	if (ps_schedule_on(p)) {
		if (p->interval_ms <= 0)
			ps_schedule_configure(p, now);
		/* One project resumed by a person: no herd to spread, due now. */
		p->next_sync_at = now;
	}
}
