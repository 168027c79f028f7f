/*
 * Names and release functions of the domain types.
 */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ps_project_free(struct ps_project *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->source);
	free(p->branch);
	ps_strv_dispose(&p->memory_globs);
	free(p->last_commit);
	free(p->last_error_code);
	free(p->last_error_message);
	free(p->paused_reason);
	free(p);
}

void ps_commit_dispose(struct ps_commit *c)
{
	if (!c)
		return;
	free(c->parents);
	free(c->author.name);
	free(c->author.email);
	free(c->committer.name);
	free(c->committer.email);
	free(c->subject);
	free(c->message);
	memset(c, 0, sizeof(*c));
}

void ps_commit_free(struct ps_commit *c)
{
	ps_commit_dispose(c);
	free(c);
}

void ps_commits_free(struct ps_commit *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ps_commit_dispose(&v[i]);
	free(v);
}

void ps_commit_list_dispose(struct ps_commit_list *l)
{
	ps_commits_free(l->v, l->n);
	l->v = NULL;
	l->n = 0;
}

struct ps_commit *ps_commit_clone(const struct ps_commit *c)
{
	struct ps_commit *d;

	if (!c)
		return NULL;
	d = ps_calloc(1, sizeof(*d));
	memcpy(d->sha, c->sha, PS_SHA_HEX);
	d->parents = ps_strdup(c->parents);
	d->author.name = ps_strdup(c->author.name);
	d->author.email = ps_strdup(c->author.email);
	d->author.date = c->author.date;
	d->committer.name = ps_strdup(c->committer.name);
	d->committer.email = ps_strdup(c->committer.email);
	d->committer.date = c->committer.date;
	d->subject = ps_strdup(c->subject);
	d->message = ps_strdup(c->message);
	return d;
}

static bool blank_line(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\v' &&
		    line[i] != '\f')
			return false;
	return true;
}

/* pretty.c's format_subject over skip_blank_lines, as git 2.39 has them. */
char *ps_commit_subject(const char *msg, size_t len)
{
	struct ps_buf b;
	size_t pos = 0;
	bool first = true, started = false;

	ps_buf_init(&b, len + 1);
	while (pos < len) {
		const char *nl = memchr(msg + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - msg) : len, n = end - pos;

		if (blank_line(msg + pos, n)) {
			if (started)
				break;
		} else {
			while (n > 0 && strchr(" \t\r\v\f", msg[pos + n - 1]))
				n--;
			if (!first)
				ps_buf_append(&b, " ", 1);
			ps_buf_append(&b, msg + pos, n);
			first = false;
			started = true;
		}
		pos = end + 1;
	}
	ps_buf_append(&b, "", 0);
	return ps_buf_take(&b, NULL);
}

char *ps_commit_message_bounded(const char *msg, size_t len)
{
	if (len > PS_COMMIT_MESSAGE_MAX) {
		len = PS_COMMIT_MESSAGE_MAX;
		/* Not in the middle of a UTF-8 character. */
		while (len > 0 && ((unsigned char)msg[len] & 0xc0) == 0x80)
			len--;
	}
	return ps_strndup(msg, len);
}

void ps_sync_free(struct ps_sync *s)
{
	if (!s)
		return;
	ps_commit_free(s->head_commit);
	free(s->project);
	free(s->branch);
	free(s->commit);
	free(s->tree);
	free(s->trigger);
	free(s->error_code);
	free(s->error_message);
	free(s);
}

void ps_file_dispose(struct ps_file *f)
{
	free(f->path);
	f->path = NULL;
}

void ps_change_dispose(struct ps_change *c)
{
	free(c->path);
	free(c->previous_path);
	c->path = c->previous_path = NULL;
}

void ps_event_dispose(struct ps_event *e)
{
	free(e->message);
	ps_sync_free(e->summary);
	e->message = NULL;
	e->summary = NULL;
}

static const char *const status_names[] = { "queued", "running", "succeeded", "failed", "cancelled" };
static const char *const phase_names[] = { "none", "prepare", "scan", "fetch", "import", "finalize" };
static const char *const change_names[] = { "added", "modified", "deleted", "renamed", "type_changed" };
static const char *const event_names[] = { "queued", "phase", "progress", "warning",
					   "succeeded", "failed", "cancelled" };

const char *ps_sync_status_name(enum ps_sync_status s) { return status_names[s]; }

bool ps_sync_first_kept(const struct ps_sync *s)
{
	return s->status == PS_SYNC_SUCCEEDED && s->up_to_date && !s->previous_sync_id;
}

int ps_sync_status_parse(const char *name, enum ps_sync_status *out)
{
	for (size_t i = 0; i < sizeof(status_names) / sizeof(*status_names); i++)
		if (strcmp(name, status_names[i]) == 0) {
			*out = (enum ps_sync_status)i;
			return 0;
		}
	return -1;
}

const char *ps_phase_name(enum ps_phase p) { return phase_names[p]; }

int ps_phase_parse(const char *name, enum ps_phase *out)
{
	for (size_t i = 0; i < sizeof(phase_names) / sizeof(*phase_names); i++)
		if (name && strcmp(name, phase_names[i]) == 0) {
			*out = (enum ps_phase)i;
			return 0;
		}
	*out = PS_PHASE_NONE;
	return -1;
}

const char *ps_change_status_name(enum ps_change_status s) { return change_names[s]; }
const char *ps_event_kind_name(enum ps_event_kind k) { return event_names[k]; }

bool ps_event_is_final(enum ps_event_kind k)
{
	return k == PS_EVENT_SUCCEEDED || k == PS_EVENT_FAILED || k == PS_EVENT_CANCELLED;
}

void ps_mode_string(uint32_t mode, char *out)
{
	snprintf(out, 8, "%06o", mode);
}

uint32_t ps_mode_canonical(uint32_t raw)
{
	switch (raw & 0170000u) {
	case 0100000u: return (raw & 0100u) ? PS_MODE_EXEC : PS_MODE_FILE;
	case 0120000u: return PS_MODE_LINK;
	case 0040000u: return PS_MODE_TREE;
	default: return PS_MODE_COMMIT;
	}
}

const char *ps_mode_type(uint32_t mode)
{
	switch (mode & 0170000u) {
	case 0040000u: return "tree";
	case 0160000u: return "commit";
	default: return "blob";
	}
}
