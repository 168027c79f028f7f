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
/*
 * Why file `f` of project `p` has no stored content (its blob is absent; a submodule is not
 * asked about): a sync kept it as metadata only because it was over the size limit. Sets the
 * error and returns PS_ETOOBIG (slug "too_big") when it is still over the project's limit, or
 * PS_ECONFLICT (slug "not_fetched") when a raised limit lets it in but it was not fetched (the
 * next sync does, if it is in the latest snapshot). Never a store failure: blobs are stored
 * before the rows that name them and never removed, so a missing one was skipped for its size.
 * HTTP shows the first as 422 and the second as 409; `cat` prints the message.
 */
int ps_project_content_missing(struct ps_store *s, const struct ps_project *p,
			       const struct ps_file *f);

/* {"project", "running", "last_succeeded", "last_sync"} (new reference). */
json_t *ps_project_status_to_json(const struct ps_project *p, const struct ps_project_status *st);

#endif
