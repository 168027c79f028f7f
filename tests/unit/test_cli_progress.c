/*
 * The sync progress renderer of `projsync sync` (src/cli/progress.c): fed events, it must draw
 * one redrawable line on a terminal (never wider than the terminal), one line per phase in a
 * log, exactly one JSON document per event with --json, and a summary a person can act on.
 */
#include "harness.h"

#include <jansson.h>
#include <stdlib.h>

#include "cli/progress.h"

struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static void capture_open(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
}

static void capture_close(struct capture *c)
{
	fclose(c->f);
	free(c->buf);
}

static struct ps_event event(enum ps_event_kind kind, enum ps_phase phase, int64_t seq)
{
	return (struct ps_event){ .sync_id = 7, .seq = seq, .kind = kind, .phase = phase,
				  .elapsed_ms = 1500 };
}

static struct ps_sync *summary(enum ps_sync_status status)
{
	struct ps_sync *s = ps_calloc(1, sizeof(*s));

	s->id = 7;
	s->project = ps_strdup("demo");
	s->branch = ps_strdup("main");
	s->status = status;
	s->phase = PS_PHASE_FINALIZE;
	s->commit = ps_strdup("abcdef0123456789abcdef0123456789abcdef01");
	s->counts = (struct ps_counts){ .added = 2, .modified = 1, .deleted = 0, .renamed = 1,
					.files = 5 };
	s->bytes = 2048;
	return s;
}

static int count_char(const char *s, size_t len, char ch)
{
	int n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == ch;
	return n;
}

static void test_format_units(void)
{
	char b[32];

	ps_format_bytes(0, b, sizeof(b));
	CHECK_STR(b, "0 B");
	ps_format_bytes(1023, b, sizeof(b));
	CHECK_STR(b, "1023 B");
	ps_format_bytes(1536, b, sizeof(b));
	CHECK_STR(b, "1.5 KiB");
	ps_format_bytes(8 * 1024 * 1024, b, sizeof(b));
	CHECK_STR(b, "8.0 MiB");
	ps_format_bytes(3LL * 1024 * 1024 * 1024, b, sizeof(b));
	CHECK_STR(b, "3.0 GiB");
	ps_format_duration(850, b, sizeof(b));
	CHECK_STR(b, "850ms");
	ps_format_duration(3400, b, sizeof(b));
	CHECK_STR(b, "3.4s");
	ps_format_duration(125000, b, sizeof(b));
	CHECK_STR(b, "2m05s");
	ps_format_duration(3720000, b, sizeof(b));
	CHECK_STR(b, "1h02m");
	CHECK_INT(ps_display_width("●◉○ ab"), 6);
}

static void test_live_line_shows_phase_bar_and_counters(void)
{
	struct capture c;
	struct ps_progress p;
	struct ps_event ev = event(PS_EVENT_PROGRESS, PS_PHASE_SCAN, 3);

	capture_open(&c);
	ps_progress_init(&p, c.f, PS_PROGRESS_LIVE, true, 200, "demo");
	ev.fraction = 0.5;
	ev.files_done = 3;
	ev.files_total = 10;
	ev.bytes = 1536;
	ps_progress_event(&p, &ev);
	CHECK(c.len > 0 && c.buf[0] == '\r');
	CHECK(strstr(c.buf, "\033[K") != NULL);
	CHECK(strstr(c.buf, "●◉○○○ scan") != NULL);
	CHECK(strstr(c.buf, "[██████████░░░░░░░░░░]") != NULL);
	CHECK(strstr(c.buf, " 50%") != NULL);
	CHECK(strstr(c.buf, "3/10 files") != NULL);
	CHECK(strstr(c.buf, "1.5 KiB") != NULL);
	CHECK(strstr(c.buf, "1.5s") != NULL);
	CHECK_INT(count_char(c.buf, c.len, '\n'), 0);   /* redrawn in place, never scrolled */

	/* The next event redraws the same line. */
	ev.phase = PS_PHASE_FETCH;
	ev.fraction = 1.0;
	ps_progress_event(&p, &ev);
	CHECK_INT(count_char(c.buf, c.len, '\r'), 2);
	CHECK_INT(count_char(c.buf, c.len, '\n'), 0);
	CHECK(strstr(c.buf, "●●◉○○ fetch") != NULL);
	CHECK(strstr(c.buf, "[████████████████████]") != NULL);
	CHECK(strstr(c.buf, "100%") != NULL);
	ps_progress_dispose(&p);
	capture_close(&c);
}

static void test_live_line_fits_the_terminal(void)
{
	for (int width = 10; width <= 90; width += 7) {
		struct capture c;
		struct ps_progress p;
		struct ps_event ev = event(PS_EVENT_PROGRESS, PS_PHASE_IMPORT, 5);
		char *start, *end;

		capture_open(&c);
		ps_progress_init(&p, c.f, PS_PROGRESS_LIVE, true, width, "demo");
		ev.fraction = 0.75;
		ev.files_done = 123456;
		ev.files_total = 999999;
		ev.bytes = 5LL * 1024 * 1024 * 1024;
		ps_progress_event(&p, &ev);
		start = c.buf + 1;
		end = strstr(c.buf, "\033[K");
		CHECK(end != NULL);
		if (end) {
			*end = '\0';
			if (ps_display_width(start) > (size_t)width - 1) {
				ps_test_failures++;
				fprintf(stderr, "width %d: line of %zu columns: %s\n", width,
					ps_display_width(start), start);
			}
		}
		ps_progress_dispose(&p);
		capture_close(&c);
	}
}

static void test_live_warning_prints_above_and_redraws(void)
{
	struct capture c;
	struct ps_progress p;
	struct ps_event ev = event(PS_EVENT_PHASE, PS_PHASE_FETCH, 4);
	const char *warn;

	capture_open(&c);
	ps_progress_init(&p, c.f, PS_PROGRESS_LIVE, true, 100, "demo");
	ps_progress_event(&p, &ev);
	ev = event(PS_EVENT_WARNING, PS_PHASE_FETCH, 5);
	ev.message = "big.bin is over the size limit";
	ps_progress_event(&p, &ev);
	warn = strstr(c.buf, "\r\033[Kwarning: big.bin is over the size limit\n");
	CHECK(warn != NULL);
	/* ...and the progress line is back below it. */
	if (warn)
		CHECK(strstr(warn + 1, "●●◉○○ fetch") != NULL);
	ps_progress_dispose(&p);
	capture_close(&c);
}

static void test_live_final_line_replaces_progress(void)
{
	struct capture c;
	struct ps_progress p;
	struct ps_event ev = event(PS_EVENT_PHASE, PS_PHASE_FINALIZE, 9);
	const char *last;

	capture_open(&c);
	ps_progress_init(&p, c.f, PS_PROGRESS_LIVE, true, 120, "demo");
	ps_progress_event(&p, &ev);
	ev = event(PS_EVENT_SUCCEEDED, PS_PHASE_FINALIZE, 10);
	ev.summary = summary(PS_SYNC_SUCCEEDED);
	ps_progress_event(&p, &ev);
	last = strstr(c.buf, "\r\033[K✓ ");
	CHECK(last != NULL);
	if (last)
		CHECK_STR(last + 4, "✓ synced demo #7 at abcdef0: +2 ~1 -0 →1, 5 files, 2.0 KiB "
				    "fetched in 1.5s\n");
	CHECK(p.finished);
	ps_progress_abort(&p);   /* nothing left to end */
	CHECK_INT(count_char(c.buf, c.len, '\n'), 1);
	ps_event_dispose(&ev);
	ps_progress_dispose(&p);
	capture_close(&c);
}

static void test_lines_mode_one_line_per_phase(void)
{
	struct capture c;
	struct ps_progress p;
	struct ps_event ev;
	int64_t seq = 1;

	capture_open(&c);
	ps_progress_init(&p, c.f, PS_PROGRESS_LINES, false, 0, "demo");
	for (int ph = PS_PHASE_PREPARE; ph <= PS_PHASE_FETCH; ph++) {
		ev = event(PS_EVENT_PHASE, (enum ps_phase)ph, seq++);
		ps_progress_event(&p, &ev);
		ev = event(PS_EVENT_PROGRESS, (enum ps_phase)ph, seq++);
		ev.files_done = 1;
		ps_progress_event(&p, &ev);   /* counters only: no line */
	}
	ev = event(PS_EVENT_FAILED, PS_PHASE_FETCH, seq++);
	ev.message = ps_strdup("connection reset by peer");
	ev.summary = summary(PS_SYNC_FAILED);
	ev.summary->phase = PS_PHASE_FETCH;
	ps_progress_event(&p, &ev);
	CHECK_INT(count_char(c.buf, c.len, '\n'), 4);
	CHECK(strchr(c.buf, '\r') == NULL && strchr(c.buf, '\033') == NULL);
	CHECK(strncmp(c.buf, "demo #7 [1/5] prepare", 21) == 0);
	CHECK(strstr(c.buf, "\ndemo #7 [3/5] fetch") != NULL);
	CHECK(strstr(c.buf, "sync #7 of demo failed in fetch: connection reset by peer\n") != NULL);
	/* The summary names the failed phase even when the event's own phase is unset. */
	ev.phase = PS_PHASE_NONE;
	ev.summary->phase = PS_PHASE_NONE;
	{
		char *s = ps_progress_summary(&p, &ev);
		CHECK_STR(s, "sync #7 of demo failed in fetch: connection reset by peer");
		free(s);
	}
	ps_event_dispose(&ev);
	ps_progress_dispose(&p);
	capture_close(&c);
}

static void test_summaries(void)
{
	struct ps_progress p;
	struct ps_event ev = event(PS_EVENT_SUCCEEDED, PS_PHASE_PREPARE, 3);
	char *s;

	ps_progress_init(&p, stdout, PS_PROGRESS_LINES, false, 0, "demo");
	ev.summary = summary(PS_SYNC_SUCCEEDED);
	ev.summary->up_to_date = true;
	s = ps_progress_summary(&p, &ev);
	CHECK_STR(s, "demo is up to date at abcdef0 (sync #7, 1.5s)");
	free(s);

	ev.summary->up_to_date = false;
	s = ps_progress_summary(&p, &ev);   /* ASCII stand-in for the rename arrow */
	CHECK_STR(s, "synced demo #7 at abcdef0: +2 ~1 -0 ->1, 5 files, 2.0 KiB fetched in 1.5s");
	free(s);

	ev.kind = PS_EVENT_CANCELLED;
	ev.summary->status = PS_SYNC_CANCELLED;
	ev.summary->phase = PS_PHASE_SCAN;
	s = ps_progress_summary(&p, &ev);
	CHECK_STR(s, "sync #7 of demo cancelled in scan after 1.5s");
	free(s);
	ps_event_dispose(&ev);
	ps_progress_dispose(&p);
}

static void test_json_mode_one_document_per_event(void)
{
	struct capture c;
	struct ps_progress p;
	struct ps_event ev;
	char *line, *save = NULL;
	int64_t expect = 1;

	capture_open(&c);
	ps_progress_init(&p, c.f, PS_PROGRESS_JSON, true, 80, "demo");
	ev = event(PS_EVENT_PHASE, PS_PHASE_PREPARE, 1);
	ps_progress_event(&p, &ev);
	ev = event(PS_EVENT_PROGRESS, PS_PHASE_PREPARE, 2);
	ev.fraction = 0.1;
	ps_progress_event(&p, &ev);
	ev = event(PS_EVENT_WARNING, PS_PHASE_PREPARE, 3);
	ev.message = "careful";
	ps_progress_event(&p, &ev);
	ev = event(PS_EVENT_SUCCEEDED, PS_PHASE_FINALIZE, 4);
	ev.summary = summary(PS_SYNC_SUCCEEDED);
	ps_progress_event(&p, &ev);
	ps_event_dispose(&ev);

	CHECK_INT(count_char(c.buf, c.len, '\n'), 4);
	for (line = strtok_r(c.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);
		CHECK(j != NULL);
		if (!j)
			continue;
		CHECK_INT(json_integer_value(json_object_get(j, "seq")), expect);
		CHECK_INT(json_integer_value(json_object_get(j, "sync_id")), 7);
		if (expect == 3)
			CHECK_STR(json_string_value(json_object_get(j, "message")), "careful");
		if (expect == 4) {
			CHECK_STR(json_string_value(json_object_get(j, "kind")), "succeeded");
			CHECK(json_is_object(json_object_get(j, "summary")));
		}
		json_decref(j);
		expect++;
	}
	CHECK_INT(expect, 5);
	ps_progress_dispose(&p);
	capture_close(&c);
}

PS_TESTS(
	PS_TEST(test_format_units),
	PS_TEST(test_live_line_shows_phase_bar_and_counters),
	PS_TEST(test_live_line_fits_the_terminal),
	PS_TEST(test_live_warning_prints_above_and_redraws),
	PS_TEST(test_live_final_line_replaces_progress),
	PS_TEST(test_lines_mode_one_line_per_phase),
	PS_TEST(test_summaries),
	PS_TEST(test_json_mode_one_document_per_event)
)
