/*
 * Scheduled syncs as arithmetic: when a project is next due, how `--every auto` adapts, how a
 * failing source backs off, when a project pauses. No clock of its own and no I/O: every
 * function takes `now` (ms since the epoch), so the tests drive it with a fake clock. The store
 * (store.c) applies these rules when a sync ends, and decides which node queues a due project.
 */
#ifndef PS_MODEL_SCHEDULE_H
#define PS_MODEL_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

#define PS_SCHEDULE_MIN_EVERY_MS (10 * 1000)               /* --every below 10 s is refused */
#define PS_SCHEDULE_MAX_EVERY_MS (30LL * 24 * 3600 * 1000) /* and above 30 days */
#define PS_SCHEDULE_AUTO_MIN_MS (60 * 1000)                /* auto: 1 min .. 8 h by default */
#define PS_SCHEDULE_AUTO_MAX_MS (8LL * 3600 * 1000)
#define PS_SCHEDULE_BACKOFF_CAP_MS (8LL * 3600 * 1000)     /* backoff grows up to this (or the interval) */
#define PS_SCHEDULE_MAX_FAILURES 10                        /* failures in a row before pausing */
#define PS_SCHEDULE_JITTER_CAP_MS (60 * 1000)

/*
 * Parses a duration: a number with a unit (`30s`, `10m`, `1h`, `2d`), several of them in a row
 * (`1h30m`), or plain seconds (`90`). Returns false for anything else or an overflow.
 */
bool ps_duration_parse(const char *s, int64_t *ms);
/* Formats a duration compactly ("10s", "1h30m", "2d"); `out` holds at least 32 bytes. */
void ps_duration_format(int64_t ms, char *out, size_t outlen);

/*
 * Parses an --every value into the project: "off", "auto" or a duration of 10 s to 30 days.
 * PS_EINVAL with a one-line message otherwise (slug "invalid_every").
 */
int ps_schedule_parse_every(const char *s, struct ps_project *p);
/* The --every value as shown: "off", "auto" or a duration (`out` >= 32 bytes). */
void ps_schedule_every_string(const struct ps_project *p, char *out, size_t outlen);
/* Fills unset auto bounds with the defaults (1 min, 8 h). */
void ps_project_schedule_defaults(struct ps_project *p);
/* True when the project has a schedule (not off). */
bool ps_schedule_on(const struct ps_project *p);

/* A little delay, 0 .. min(interval / 10, 60 s), the same for the same seed: projects added
 * together do not fire together. */
int64_t ps_schedule_jitter(int64_t interval_ms, uint64_t seed);
/* How long to wait after the n-th failure in a row: interval * 2^n, capped at 8 h (or the
 * interval when that is longer). */
int64_t ps_schedule_backoff(int64_t interval_ms, int64_t failures_in_row);

/*
 * After `project add|set` changed the schedule: resets the interval (auto starts at its minimum)
 * and sets next_sync_at: soon (jitter only) for a project never checked, else its last check
 * plus the interval (never in the past). Off clears both.
 */
void ps_schedule_configure(struct ps_project *p, int64_t now);
/*
 * After a sync of the project ended at `now`, whatever started it (it counts as the latest
 * check): `status` succeeded, failed or cancelled; `changed` for a succeeded sync that found a
 * new head. Auto halves the interval on a change and doubles it when up to date. A failure
 * (p->failures_in_row already counts it) waits ps_schedule_backoff instead of the interval. A
 * success clears the paused state.
 */
void ps_schedule_after_sync(struct ps_project *p, enum ps_sync_status status, bool changed,
			    int64_t now);
/* Clears the paused state and the failure count; a scheduled project is due at once. */
void ps_schedule_resume(struct ps_project *p, int64_t now);

#endif
