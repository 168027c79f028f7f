/*
 * The sync progress renderer (see progress.h). It keeps the latest counters so the live line can
 * be redrawn after a warning is printed above it, and it never writes a live line wider than
 * the terminal: a wrapped line cannot be redrawn with '\r' and would smear down the screen.
 */
#include "cli/progress.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"

#define BAR_WIDTH 20
#define CLEAR_EOL "\033[K"

struct glyphs {
	const char *done, *current, *pending, *bar_full, *bar_empty, *ok, *fail, *renamed;
};
static const struct glyphs unicode_glyphs = { "●", "◉", "○", "█", "░", "✓ ", "✗ ", "→" };
static const struct glyphs ascii_glyphs = { "*", "@", ".", "#", "-", "", "", "->" };

static const struct glyphs *glyphs_of(const struct ps_progress *p)
{
	return p->unicode ? &unicode_glyphs : &ascii_glyphs;
}

void ps_format_bytes(int64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(out, outlen, "%" PRId64 " B", bytes < 0 ? 0 : bytes);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(*units)) {
		v /= 1024;
		u++;
	}
	snprintf(out, outlen, "%.1f %s", v, units[u]);
}

void ps_format_duration(int64_t ms, char *out, size_t outlen)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(out, outlen, "%" PRId64 "ms", ms);
	else if (ms < 60 * 1000)
		snprintf(out, outlen, "%.1fs", (double)ms / 1000);
	else if (ms < 3600 * 1000)
		snprintf(out, outlen, "%" PRId64 "m%02" PRId64 "s", ms / 60000, ms / 1000 % 60);
	else
		snprintf(out, outlen, "%" PRId64 "h%02" PRId64 "m", ms / 3600000, ms / 60000 % 60);
}

size_t ps_display_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Cuts `b` to at most `cols` code points. */
static void cut_to_width(struct ps_buf *b, size_t cols)
{
	size_t n = 0;

	for (size_t i = 0; i < b->len; i++) {
		if (((unsigned char)b->data[i] & 0xc0) != 0x80 && n++ == cols) {
			b->len = i;
			b->data[i] = '\0';
			return;
		}
	}
}

void ps_progress_init(struct ps_progress *p, FILE *out, enum ps_progress_mode mode,
		      bool unicode, int width, const char *project)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	p->mode = mode;
	p->unicode = unicode;
	p->width = width > 0 ? width : 80;
	p->project = ps_strdup(project ? project : "");
}

void ps_progress_dispose(struct ps_progress *p)
{
	free(p->project);
	p->project = NULL;
}

static void remember(struct ps_progress *p, const struct ps_event *ev)
{
	p->sync_id = ev->sync_id;
	if (ev->phase != PS_PHASE_NONE)
		p->phase = ev->phase;
	p->fraction = ev->fraction < 0 ? 0 : ev->fraction > 1 ? 1 : ev->fraction;
	p->files_done = ev->files_done;
	p->files_total = ev->files_total;
	p->bytes = ev->bytes;
	p->elapsed_ms = ev->elapsed_ms;
}

/* files, bytes and elapsed time as "  120/300 files  1.2 MiB  3.4s" (each part when known). */
static void append_counters(const struct ps_progress *p, struct ps_buf *b)
{
	char tmp[32];

	if (p->files_total > 0)
		ps_buf_printf(b, "  %" PRId64 "/%" PRId64 " %s", p->files_done, p->files_total,
			      p->files_total == 1 ? "file" : "files");
	else if (p->files_done > 0)
		ps_buf_printf(b, "  %" PRId64 " %s", p->files_done,
			      p->files_done == 1 ? "file" : "files");
	if (p->bytes > 0) {
		ps_format_bytes(p->bytes, tmp, sizeof(tmp));
		ps_buf_printf(b, "  %s", tmp);
	}
	ps_format_duration(p->elapsed_ms, tmp, sizeof(tmp));
	ps_buf_printf(b, "  %s", tmp);
}

static void build_live_line(const struct ps_progress *p, int bar_width, struct ps_buf *b)
{
	const struct glyphs *g = glyphs_of(p);

	for (int i = 1; i <= PS_PHASE_COUNT; i++)
		ps_buf_puts(b, i < (int)p->phase ? g->done : i == (int)p->phase ? g->current
								      : g->pending);
	ps_buf_printf(b, " %-8s", p->phase == PS_PHASE_NONE ? "queued" : ps_phase_name(p->phase));
	if (bar_width > 0) {
		int full = (int)(p->fraction * bar_width + 0.5);
		ps_buf_puts(b, " [");
		for (int i = 0; i < bar_width; i++)
			ps_buf_puts(b, i < full ? g->bar_full : g->bar_empty);
		ps_buf_puts(b, "]");
	}
	ps_buf_printf(b, " %3d%%", (int)(p->fraction * 100));
	append_counters(p, b);
}

static void draw_live(struct ps_progress *p)
{
	static const int bars[] = { BAR_WIDTH, 10, 0 };
	size_t max = (size_t)(p->width > 1 ? p->width - 1 : 1);
	struct ps_buf b;

	ps_buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(bars) / sizeof(*bars); i++) {
		b.len = 0;
		build_live_line(p, bars[i], &b);
		if (ps_display_width(b.data) <= max)
			break;
	}
	cut_to_width(&b, max);
	fprintf(p->out, "\r%s" CLEAR_EOL, b.data);
	p->line_drawn = true;
	ps_buf_dispose(&b);
}

/* Takes a drawn live line off the screen so a whole line can be printed in its place. */
static void clear_live(struct ps_progress *p)
{
	if (p->line_drawn) {
		fputs("\r" CLEAR_EOL, p->out);
		p->line_drawn = false;
	}
}

char *ps_progress_summary(const struct ps_progress *p, const struct ps_event *ev)
{
	const struct glyphs *g = glyphs_of(p);
	const struct ps_sync *s = ev->summary;
	const char *project = s && s->project ? s->project : p->project;
	int64_t id = s ? s->id : ev->sync_id;
	enum ps_phase phase = s && s->phase != PS_PHASE_NONE ? s->phase
			      : ev->phase != PS_PHASE_NONE ? ev->phase : p->phase;
	char took[32], bytes[32], commit[8];
	struct ps_buf b;

	ps_buf_init(&b, 8192);
	ps_format_duration(ev->elapsed_ms, took, sizeof(took));
	snprintf(commit, sizeof(commit), "%.7s", s && s->commit ? s->commit : "");
	switch (ev->kind) {
	case PS_EVENT_SUCCEEDED:
		if (s && s->up_to_date) {
			ps_buf_printf(&b, "%s is up to date at %s (sync #%" PRId64 ", %s)", project,
				      commit[0] ? commit : "an empty repository", id, took);
			break;
		}
		ps_buf_printf(&b, "synced %s #%" PRId64, project, id);
		if (commit[0])
			ps_buf_printf(&b, " at %s", commit);
		else
			ps_buf_puts(&b, " (empty repository)");
		if (s)
			ps_buf_printf(&b, ": +%" PRId64 " ~%" PRId64 " -%" PRId64 " %s%" PRId64
				      ", %" PRId64 " %s", s->counts.added, s->counts.modified,
				      s->counts.deleted, g->renamed, s->counts.renamed, s->counts.files,
				      s->counts.files == 1 ? "file" : "files");
		ps_format_bytes(s ? s->bytes : ev->bytes, bytes, sizeof(bytes));
		ps_buf_printf(&b, ", %s fetched in %s", bytes, took);
		if (s && s->skipped_large > 0)
			ps_buf_printf(&b, " (%" PRId64 " over the size limit kept without content)",
				      s->skipped_large);
		break;
	case PS_EVENT_FAILED: {
		const char *msg = ev->message ? ev->message
				  : s && s->error_message ? s->error_message : "unknown error";
		ps_buf_printf(&b, "sync #%" PRId64 " of %s failed in %s: %s", id, project,
			      ps_phase_name(phase), msg);
		break;
	}
	case PS_EVENT_CANCELLED:
		ps_buf_printf(&b, "sync #%" PRId64 " of %s cancelled in %s after %s", id, project,
			      ps_phase_name(phase), took);
		break;
	default:
		ps_buf_printf(&b, "sync #%" PRId64 " of %s: %s", id, project,
			      ps_event_kind_name(ev->kind));
		break;
	}
	return ps_buf_take(&b, NULL);
}

static void render_final(struct ps_progress *p, const struct ps_event *ev)
{
	const struct glyphs *g = glyphs_of(p);
	char *line = ps_progress_summary(p, ev);

	if (p->mode == PS_PROGRESS_LIVE)
		clear_live(p);
	fprintf(p->out, "%s%s\n", ev->kind == PS_EVENT_SUCCEEDED ? g->ok : g->fail, line);
	free(line);
	p->finished = true;
	p->final_kind = ev->kind;
}

static void render_phase_line(struct ps_progress *p, const struct ps_event *ev)
{
	struct ps_buf b;

	ps_buf_init(&b, 4096);
	if (ev->kind == PS_EVENT_QUEUED)
		ps_buf_printf(&b, "%s #%" PRId64 " queued", p->project, ev->sync_id);
	else
		ps_buf_printf(&b, "%s #%" PRId64 " [%d/%d] %s", p->project, ev->sync_id,
			      (int)ev->phase, PS_PHASE_COUNT, ps_phase_name(ev->phase));
	append_counters(p, &b);
	fprintf(p->out, "%s\n", b.data);
	ps_buf_dispose(&b);
}

void ps_progress_event(struct ps_progress *p, const struct ps_event *ev)
{
	if (p->mode == PS_PROGRESS_JSON) {
		json_t *j = ps_event_to_json(ev);
		json_dumpf(j, p->out, JSON_COMPACT);
		fputc('\n', p->out);
		json_decref(j);
		fflush(p->out);
		return;
	}
	remember(p, ev);
	if (ps_event_is_final(ev->kind)) {
		render_final(p, ev);
	} else if (ev->kind == PS_EVENT_WARNING) {
		if (p->mode == PS_PROGRESS_LIVE)
			clear_live(p);
		fprintf(p->out, "warning: %s\n", ev->message ? ev->message : "");
		if (p->mode == PS_PROGRESS_LIVE)
			draw_live(p);
	} else if (p->mode == PS_PROGRESS_LIVE) {
		draw_live(p);
	} else if (ev->kind == PS_EVENT_PHASE || ev->kind == PS_EVENT_QUEUED) {
		render_phase_line(p, ev);
	}
	fflush(p->out);
}

void ps_progress_abort(struct ps_progress *p)
{
	if (p->mode == PS_PROGRESS_LIVE && p->line_drawn) {
		fputc('\n', p->out);
		p->line_drawn = false;
		fflush(p->out);
	}
}
