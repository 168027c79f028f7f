/*
 * Rendering a sync's events for `projsync sync`. The renderer is fed the events of the sync
 * generator (core/sync.h) one at a time and writes to a FILE, so it is tested by feeding it
 * events and reading what it wrote (tests/unit/test_cli_progress.c). Three modes:
 *
 *   live   a terminal: ONE line redrawn in place (`\r` + the line + clear-to-end-of-line), made
 *          of five phase dots, the phase name, a bar of the overall fraction, files done/total,
 *          bytes and elapsed time, cut to the terminal width so it never wraps; warnings are
 *          printed above it; the final event replaces it with a summary line.
 *   lines  not a terminal (logs, pipes): one line per phase and per warning, plus the summary.
 *   json   every event as one compact JSON line (model/json.h ps_event_to_json), nothing else.
 */
#ifndef PS_CLI_PROGRESS_H
#define PS_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"

enum ps_progress_mode {
	PS_PROGRESS_LIVE,
	PS_PROGRESS_LINES,
	PS_PROGRESS_JSON,
};

struct ps_progress {
	FILE *out;                 /* borrowed */
	enum ps_progress_mode mode;
	bool unicode;              /* ● ◉ ○ █ ✓ ✗ →; else ASCII stand-ins */
	int width;                 /* columns available to the live line (default 80) */
	char *project;             /* for the summary line (owned) */
	/* What the live line shows: the latest state, redrawn after a warning. */
	int64_t sync_id;
	enum ps_phase phase;
	double fraction;
	int64_t files_done, files_total, bytes, elapsed_ms;
	bool line_drawn;           /* a live line is on screen, not yet ended by '\n' */
	bool finished;             /* the final event was rendered */
	enum ps_event_kind final_kind;
};

/* Prepares a renderer writing to `out` (borrowed). `project` is copied. */
void ps_progress_init(struct ps_progress *p, FILE *out, enum ps_progress_mode mode,
		      bool unicode, int width, const char *project);
void ps_progress_dispose(struct ps_progress *p);

/* Renders one event and flushes `out`. After a final event (succeeded, failed, cancelled) the
 * summary line has been written and ended with '\n'. */
void ps_progress_event(struct ps_progress *p, const struct ps_event *ev);

/* Ends a live line still on screen with '\n' (the run stopped without a final event). */
void ps_progress_abort(struct ps_progress *p);

/* The summary line of a final event, without newline (malloc'd): "synced NAME #3 at abc1234:
 * +1 ~2 -0 →1, 40 files, 1.2 MiB fetched in 3.4s", "NAME is up to date at abc1234 (sync #4)",
 * "sync #5 of NAME failed in fetch: <message>", "sync #5 of NAME cancelled in scan". */
char *ps_progress_summary(const struct ps_progress *p, const struct ps_event *ev);

/* Human units: "512 B", "1.5 KiB", "8.0 MiB", "2.3 GiB" (1024-based). */
void ps_format_bytes(int64_t bytes, char *out, size_t outlen);
/* Durations: "850ms", "3.4s", "2m05s", "1h02m". */
void ps_format_duration(int64_t ms, char *out, size_t outlen);
/* Display columns of a UTF-8 string (code points; projsync's glyphs are all one column). */
size_t ps_display_width(const char *s);

#endif
