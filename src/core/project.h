/*
 * Project-level rules and views shared by the CLI and the server: what a project name may be,
 * and a project's status (its running sync, last succeeded sync and last sync), so that
 * `projsync status --json` and `GET /projects/{name}/sync` cannot drift apart.
 */
#ifndef PS_CORE_PROJECT_H
#define PS_CORE_PROJECT_H

#include <jansson.h>
#include <stdbool.h>

#include "core/model.h"
#include "store/store.h"

/* `[A-Za-z0-9][A-Za-z0-9._-]{0,99}`: safe in URLs, file names and shells. */
bool ps_project_name_valid(const char *name);

struct ps_project_status {
	struct ps_sync *running;        /* queued or running sync, or NULL */
	struct ps_sync *last_succeeded;
	struct ps_sync *last_sync;      /* the newest sync, whatever its status */
};

/* Loads the status of `p`; the caller disposes it. */
int ps_project_status_load(struct ps_store *s, const struct ps_project *p,
			   struct ps_project_status *out);
void ps_project_status_dispose(struct ps_project_status *st);
/* {"project", "running", "last_succeeded", "last_sync"} (new reference). */
json_t *ps_project_status_to_json(const struct ps_project *p, const struct ps_project_status *st);

#endif
