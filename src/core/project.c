/*
 * Project names and status (see project.h).
 */
#include "core/project.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "util/error.h"

bool ps_project_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

int ps_project_status_load(struct ps_store *s, const struct ps_project *p,
			   struct ps_project_status *out)
{
	struct ps_sync **last = NULL;
	size_t nlast = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = ps_store_sync_active(s, p->id, &out->running)) < 0 && rc != PS_ENOTFOUND)
		goto fail;
	if ((rc = ps_store_sync_last_succeeded(s, p->id, 0, &out->last_succeeded)) < 0 &&
	    rc != PS_ENOTFOUND)
		goto fail;
	if ((rc = ps_store_sync_list(s, p->id, 1, 0, &last, &nlast)) < 0)
		goto fail;
	out->last_sync = nlast ? last[0] : NULL;
	free(last);
	ps_error_clear();
	return 0;
fail:
	ps_project_status_dispose(out);
	return rc;
}

void ps_project_status_dispose(struct ps_project_status *st)
{
	ps_sync_free(st->running);
	ps_sync_free(st->last_succeeded);
	ps_sync_free(st->last_sync);
	memset(st, 0, sizeof(*st));
}

int ps_project_content_missing(struct ps_store *s, const struct ps_project *p,
			       const struct ps_file *f)
{
	int64_t pending = 0;

	if (f->size > p->max_blob_size)
		return ps_error_set(PS_ETOOBIG, "too_big",
				    "content of %s not stored: %lld bytes exceeds the project's limit "
				    "of %lld bytes", f->path, (long long)f->size,
				    (long long)p->max_blob_size);
	if (ps_store_project_blob_rescan(s, p->id, &pending) < 0) {
		pending = 0;
		ps_error_clear();
	}
	return ps_error_set(PS_ECONFLICT, "not_fetched",
			    "content of %s not stored: it was over the project's size limit when it "
			    "was synced (%lld bytes, the limit is now %lld)%s", f->path,
			    (long long)f->size, (long long)p->max_blob_size,
			    pending ? "; the next sync fetches it" : "");
}

json_t *ps_project_status_to_json(const struct ps_project *p, const struct ps_project_status *st)
{
	return json_pack("{s:o, s:o, s:o, s:o}",
			 "project", ps_project_to_json(p),
			 "running", ps_sync_to_json_or_null(st->running),
			 "last_succeeded", ps_sync_to_json_or_null(st->last_succeeded),
			 "last_sync", ps_sync_to_json_or_null(st->last_sync));
}
