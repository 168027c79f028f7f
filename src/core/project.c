/*
 * Project names and status (see project.h).
 */
#include "core/project.h"

#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "util/util.h"
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

int ps_project_blob_get(struct ps_store *s, const struct ps_project *p, const char *sha,
			int64_t size, void **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	if (size > p->max_blob_size)
		return ps_error_set(PS_ENOTFOUND, "not_stored",
				    "blob %s not stored: %lld bytes exceeds the project's limit", sha,
				    (long long)size);
	return ps_store_blob_get(s, sha, data, len);
}

int64_t ps_project_blob_bound(struct ps_store *s, const struct ps_project *p, int64_t sync_id)
{
	struct ps_sync *last = NULL;
	int64_t pending = 0, bound = -1;

	if (ps_store_project_blob_rescan(s, p->id, &pending) == 0 && pending == 0 &&
	    ps_store_sync_last_succeeded(s, p->id, 0, &last) == 0 && last->id == sync_id)
		bound = p->max_blob_size;
	ps_sync_free(last);
	ps_error_clear();
	return bound;
}

int ps_project_content_missing(struct ps_store *s, const struct ps_project *p, int64_t sync_id,
			       const struct ps_file *f)
{
	int64_t pending = 0;

	if (f->size > p->max_blob_size)
		return ps_error_set(PS_ETOOBIG, "too_big",
				    "content of %s not stored: %lld bytes exceeds the project's limit "
				    "of %lld bytes", f->path, (long long)f->size,
				    (long long)p->max_blob_size);
	if (ps_project_blob_lost(ps_project_blob_bound(s, p, sync_id), f->size))
		return ps_error_set(PS_ESTORE, "blob_missing",
				    "content of %s is lost: blob %s (%lld bytes, within the project's "
				    "size limit) is not in the store; 'projsync verify %s --blobs' "
				    "lists every file that lost its content", f->path, f->sha,
				    (long long)f->size, p->name);
	if (ps_store_project_blob_rescan(s, p->id, &pending) < 0) {
		pending = 0;
		ps_error_clear();
	}
	/* An older snapshot, or one a raised limit has not been applied to: no row says which
	 * limit held when it was synced, so skipped and lost look alike. */
	return ps_error_set(PS_ECONFLICT, "not_fetched",
			    "content of %s not stored: it was over the project's size limit when it "
			    "was synced, or its blob %s was lost since (%lld bytes, the limit is now "
			    "%lld)%s", f->path, f->sha, (long long)f->size,
			    (long long)p->max_blob_size, pending ? "; the next sync fetches it" : "");
}

json_t *ps_project_status_to_json(const struct ps_project *p, const struct ps_project_status *st)
{
	return json_pack("{s:o, s:o, s:o, s:o}",
			 "project", ps_project_to_json(p),
			 "running", ps_sync_to_json_or_null(st->running),
			 "last_succeeded", ps_sync_to_json_or_null(st->last_succeeded),
			 "last_sync", ps_sync_to_json_or_null(st->last_sync));
}

/* ---- settings changes ---- */

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The branch the project syncs after the change (NULL: the source's default). */
static const char *branch_after(const struct ps_project *p, const struct ps_project_change *c)
{
	if (c->branch)
		return c->branch;
	return c->default_branch ? NULL : p->branch;
}

static bool source_changes(const struct ps_project *p, const struct ps_project_change *c)
{
	return c->source && strcmp(c->source, p->source) != 0;
}

bool ps_project_change_needs_check(const struct ps_project *p, const struct ps_project_change *c)
{
	return source_changes(p, c) || (c->branch && !str_eq(c->branch, p->branch));
}

int ps_project_change_check(const struct ps_project *p, const struct ps_project_change *c,
			    const struct ps_source_opts *opts)
{
	if (!ps_project_change_needs_check(p, c))
		return 0;
	return ps_source_check_branch(c->source ? c->source : p->source, branch_after(p, c), opts);
}

/* One repository spelled two ways: github:O/R and https://github.com/O/R(.git), a trailing
 * ".git" or "/", case of GitHub names. Nothing that needs the network. */
static char *repository_key(const char *source)
{
	char *k;
	size_t n;

	if (strncmp(source, "https://github.com/", 19) == 0)
		k = ps_asprintf("github:%s", source + 19);
	else
		k = ps_strdup(source);
	n = strlen(k);
	while (n > 0 && k[n - 1] == '/')
		k[--n] = 0;
	if (n > 4 && strcmp(k + n - 4, ".git") == 0)
		k[n -= 4] = 0;
	if (strncmp(k, "github:", 7) == 0)
		for (char *q = k; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
	return k;
}

int ps_project_change_allowed(struct ps_store *s, const struct ps_project *p,
			      const struct ps_project_change *c)
{
	struct ps_project *other = NULL;
	struct ps_sync *active = NULL;
	bool renames = c->name && strcmp(c->name, p->name) != 0;
	int rc;

	/* Alone it changes nothing: a caller who gives it means to change the source and forgot
	 * to say to what. */
	if (c->continue_history && !c->source)
		return ps_error_set(PS_EINVAL, "continue_history_without_source",
				    "continuing the history (--continue-history, \"continue_history\") "
				    "goes with a new source (--source, \"source\"): give the source "
				    "whose history the project continues");
	if (renames) {
		rc = ps_store_project_get(s, c->name, &other);
		ps_project_free(other);
		if (rc == 0)
			return ps_error_set(PS_ECONFLICT, "project_exists",
					    "project '%s' already exists", c->name);
		if (rc != PS_ENOTFOUND)
			return rc;
		ps_error_clear();
	}
	if (!renames && !source_changes(p, c))
		return 0;
	rc = ps_store_sync_active(s, p->id, &active);
	if (rc == 0) {
		rc = ps_error_set(PS_ECONFLICT, "sync_active", "project '%s' has a %s sync (%lld): "
				  "wait for it or cancel it before changing its %s", p->name,
				  ps_sync_status_name(active->status), (long long)active->id,
				  renames ? "name" : "source");
		ps_sync_free(active);
		return rc;
	}
	if (rc != PS_ENOTFOUND)
		return rc;
	ps_error_clear();
	if (source_changes(p, c) && p->last_sync_id > 0 && !c->continue_history) {
		char *a = repository_key(p->source), *b = repository_key(c->source);
		bool same = strcmp(a, b) == 0;
		free(a);
		free(b);
		if (!same)
			return ps_error_set(PS_ECONFLICT, "source_has_history",
					    "project '%s' has synced history from %s: add %s as a "
					    "new project, or ask to continue this project's history "
					    "from it (the next sync records what differs)", p->name,
					    p->source, c->source);
	}
	return 0;
}

int ps_project_change_apply(struct ps_store *s, struct ps_project *p,
			    const struct ps_project_change *c)
{
	bool renames = c->name && strcmp(c->name, p->name) != 0;
	bool settings = c->branch || c->default_branch ||
			(c->memory_globs && c->memory_globs->n) || c->max_blob_size > 0 ||
			c->schedule;
	int rc;

	if ((rc = ps_store_begin(s)) < 0)
		return rc;
	if ((rc = ps_project_change_allowed(s, p, c)) < 0)
		goto fail;
	if ((renames || source_changes(p, c)) &&
	    (rc = ps_store_project_rename(s, p->id, c->name ? c->name : p->name,
					  c->source ? c->source : p->source)) < 0)
		goto fail;
	if (c->name) {
		free(p->name);
		p->name = ps_strdup(c->name);
	}
	if (c->source) {
		free(p->source);
		p->source = ps_strdup(c->source);
	}
	if (c->branch || c->default_branch) {
		free(p->branch);
		p->branch = c->branch ? ps_strdup(c->branch) : NULL;
	}
	if (c->memory_globs && c->memory_globs->n) {
		ps_strv_dispose(&p->memory_globs);
		for (size_t i = 0; i < c->memory_globs->n; i++)
			ps_strv_push(&p->memory_globs, c->memory_globs->v[i]);
	}
	if (c->max_blob_size > 0)
		p->max_blob_size = c->max_blob_size;
	if (settings && (rc = ps_store_project_update(s, p)) < 0)
		goto fail;
	return ps_store_commit(s);
fail:
	ps_store_rollback(s);
	return rc;
}
