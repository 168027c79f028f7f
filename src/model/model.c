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

void ps_sync_free(struct ps_sync *s)
{
	if (!s)
		return;
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
