/*
 * Content diffs (see patch.h). The layout of every header line follows git's diff.c
 * (builtin_diff, fill_metainfo, show_stats) so the output can be compared byte for byte with
 * `git diff`; the line diff itself is libgit2's xdiff on the two stored contents.
 */
#include "core/patch.h"
#include "core/patch_attr.h"
#include "core/project.h"

#include <git2.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model/diff.h"
#include "model/json.h"
#include "store/store.h"
#include "util/error.h"

#define EMPTY_BLOB "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
#define NULL_SHA "0000000000000000000000000000000000000000"
/* git's buffer_is_binary looks for a NUL in this many leading bytes. */
#define BINARY_PROBE 8000

/* ---- quoting (git's quote_c_style with core.quotePath) ---- */

static bool needs_quote(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
			return true;
	return false;
}

static void quote_into(struct ps_buf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		static const char named[] = "abtnvfr"; /* \a .. \r are 7 .. 13 */
		char esc[5];
		if (*p >= 7 && *p <= 13) {
			esc[0] = '\\';
			esc[1] = named[*p - 7];
			ps_buf_append(out, esc, 2);
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			ps_buf_append(out, esc, 2);
		} else if (*p < 0x20 || *p >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\%03o", *p);
			ps_buf_append(out, esc, 4);
		} else {
			ps_buf_append(out, p, 1);
		}
	}
}

void ps_patch_quote(struct ps_buf *out, const char *prefix, const char *s)
{
	if (!needs_quote(s)) {
		ps_buf_puts(out, prefix);
		ps_buf_puts(out, s);
		return;
	}
	ps_buf_puts(out, "\"");
	quote_into(out, prefix);
	quote_into(out, s);
	ps_buf_puts(out, "\"");
}

/* ---- one side's content ---- */

struct side {
	bool present;        /* the entry exists on this side */
	uint32_t mode;
	const char *sha;
	void *data;          /* owned unless `fixed` */
	size_t len;
	bool fixed;          /* data points at `inline_text` */
	char inline_text[64];
	enum ps_patch_skip skip;
	bool maybe_lost;     /* with PS_PATCH_NOT_STORED: within today's limit (ps_patch_file) */
	int64_t size;
};

static void side_dispose(struct side *sd)
{
	if (!sd->fixed)
		free(sd->data);
	sd->data = NULL;
}

/* Loads a side's content: a submodule is its "Subproject commit" line (as git diffs it), the
 * empty blob needs no store, anything else comes from the store within the size limit. */
static int side_load(struct ps_store *s, struct side *sd, int64_t known_size, size_t max,
		     int64_t max_blob_size, int64_t blob_bound)
{
	int rc;

	sd->size = known_size;
	if (!sd->present)
		return 0;
	if ((sd->mode & 0170000u) == PS_MODE_COMMIT) {
		int n = snprintf(sd->inline_text, sizeof(sd->inline_text), "Subproject commit %s\n",
				 sd->sha);
		sd->data = sd->inline_text;
		sd->len = (size_t)n;
		sd->fixed = true;
		sd->size = n;
		return 0;
	}
	if (strcmp(sd->sha, EMPTY_BLOB) == 0) {
		sd->data = sd->inline_text;
		sd->len = 0;
		sd->fixed = true;
		sd->size = 0;
		return 0;
	}
	if (known_size >= 0 && (uint64_t)known_size > max) {
		sd->skip = PS_PATCH_TOO_LARGE;
		return 0;
	}
	/* Over the project's own limit the content is not the project's, whoever stored it
	 * (ps_project_blob_get). */
	rc = known_size > max_blob_size
		     ? ps_error_set(PS_ENOTFOUND, "not_stored", "over the project's size limit")
		     : ps_store_blob_get(s, sd->sha, &sd->data, &sd->len);
	if (rc == PS_ENOTFOUND) {
		ps_error_clear();
		/* Within the bound of its snapshot the content was not left out by a sync: the
		 * store lost it, which the diff must not pass off as the size limit. */
		sd->skip = ps_project_blob_lost(blob_bound, known_size) ? PS_PATCH_MISSING
									  : PS_PATCH_NOT_STORED;
		sd->maybe_lost = sd->skip == PS_PATCH_NOT_STORED && known_size <= max_blob_size;
		return 0;
	}
	if (rc < 0)
		return rc;
	sd->size = (int64_t)sd->len;
	if (sd->len > max) {
		side_dispose(sd);
		sd->skip = PS_PATCH_TOO_LARGE;
	}
	return 0;
}

static bool is_binary(const struct side *sd)
{
	return sd->present && sd->data &&
	       memchr(sd->data, 0, sd->len < BINARY_PROBE ? sd->len : BINARY_PROBE) != NULL;
}

/* git's diff_filespec_is_binary: for a regular file the `diff` attribute decides when set or
 * unset (`-diff`, `binary`), otherwise the content does. */
static bool side_binary(struct ps_patch_attr *attr, const struct side *sd, const char *path)
{
	if (sd->present && (sd->mode & 0170000u) == 0100000u) {
		switch (ps_patch_attr_diff(attr, path)) {
		case PS_ATTR_DIFF_UNSET:
			return true;
		case PS_ATTR_DIFF_SET:
			return false;
		default:
			break;
		}
	}
	return is_binary(sd);
}

/* ---- running xdiff ---- */

struct collect {
	struct ps_patch_file *f;
	struct ps_buf text;
	size_t cap_lines, cap_hunks;
	size_t max_lines;
	bool keep_lines;       /* false for --stat: count only */
	bool too_many;
};

/* git's hunk header: "@@ -a,b +c,d @@" and the function context xdiff found (truncated to 80
 * bytes and right-trimmed by git; libgit2 trims before truncating, so trim again). */
static char *hunk_header(const git_diff_hunk *h)
{
	struct ps_buf b;
	const char *ctx = NULL;
	size_t ctxlen = 0;
	const char *end = memmem(h->header + 2, h->header_len > 2 ? h->header_len - 2 : 0, "@@",
				 2);

	if (end) {
		ctx = end + 2;
		ctxlen = h->header_len - (size_t)(ctx - h->header);
		while (ctxlen && (*ctx == ' '))
			ctx++, ctxlen--;
		while (ctxlen && (ctx[ctxlen - 1] == '\n' || ctx[ctxlen - 1] == ' ' ||
				  ctx[ctxlen - 1] == '\t' || ctx[ctxlen - 1] == '\r' ||
				  ctx[ctxlen - 1] == '\v' || ctx[ctxlen - 1] == '\f'))
			ctxlen--;
	}
	ps_buf_init(&b, 1024);
	ps_buf_puts(&b, "@@ -");
	if (h->old_lines == 1)
		ps_buf_printf(&b, "%d", h->old_start);
	else
		ps_buf_printf(&b, "%d,%d", h->old_start, h->old_lines);
	ps_buf_puts(&b, " +");
	if (h->new_lines == 1)
		ps_buf_printf(&b, "%d", h->new_start);
	else
		ps_buf_printf(&b, "%d,%d", h->new_start, h->new_lines);
	ps_buf_puts(&b, " @@");
	if (ctxlen) {
		ps_buf_puts(&b, " ");
		ps_buf_append(&b, ctx, ctxlen);
	}
	return ps_buf_take(&b, NULL);
}

static int on_hunk(const git_diff_delta *d, const git_diff_hunk *h, void *payload)
{
	struct collect *c = payload;
	struct ps_patch_file *f = c->f;
	struct ps_patch_hunk *hk;

	(void)d;
	if (!c->keep_lines)
		return 0;
	if (f->nhunks == c->cap_hunks) {
		c->cap_hunks = c->cap_hunks ? c->cap_hunks * 2 : 8;
		f->hunks = ps_realloc(f->hunks, c->cap_hunks * sizeof(*f->hunks));
	}
	hk = &f->hunks[f->nhunks++];
	*hk = (struct ps_patch_hunk){ .old_start = h->old_start, .old_lines = h->old_lines,
		.new_start = h->new_start, .new_lines = h->new_lines, .header = hunk_header(h),
		.first = f->nlines };
	return 0;
}

static int on_line(const git_diff_delta *d, const git_diff_hunk *h, const git_diff_line *l,
		   void *payload)
{
	struct collect *c = payload;
	struct ps_patch_file *f = c->f;
	struct ps_patch_line *ln;
	size_t len = l->content_len;
	bool nl;

	(void)d;
	(void)h;
	/* The "\ No newline" pseudo-lines: the line without '\n' already says it. */
	if (l->origin != GIT_DIFF_LINE_CONTEXT && l->origin != GIT_DIFF_LINE_ADDITION &&
	    l->origin != GIT_DIFF_LINE_DELETION)
		return 0;
	if (l->origin == GIT_DIFF_LINE_ADDITION)
		f->added++;
	else if (l->origin == GIT_DIFF_LINE_DELETION)
		f->deleted++;
	if (!c->keep_lines)
		return 0;
	if (f->nlines >= c->max_lines) {
		c->too_many = true;
		return 1; /* stops xdiff */
	}
	nl = len > 0 && l->content[len - 1] == '\n';
	if (nl)
		len--;
	if (f->nlines == c->cap_lines) {
		c->cap_lines = c->cap_lines ? c->cap_lines * 2 : 64;
		f->lines = ps_realloc(f->lines, c->cap_lines * sizeof(*f->lines));
	}
	ln = &f->lines[f->nlines++];
	*ln = (struct ps_patch_line){ .origin = (char)l->origin, .no_newline = !nl,
		.old_lineno = l->old_lineno > 0 ? l->old_lineno : 0,
		.new_lineno = l->new_lineno > 0 ? l->new_lineno : 0,
		.off = c->text.len, .len = len };
	ps_buf_append(&c->text, l->content, len);
	f->hunks[f->nhunks - 1].n++;
	return 0;
}

static int run_xdiff(struct collect *c, const struct side *o, const struct side *n)
{
	git_diff_options opts;
	int rc;

	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	/* Binary detection is ours (git's rule); xdiff gets text. git's default since 2.14 is
	 * the indent heuristic, libgit2's is not. */
	opts.flags = GIT_DIFF_FORCE_TEXT | GIT_DIFF_INDENT_HEURISTIC;
	opts.context_lines = 3;
	opts.interhunk_lines = 0;
	rc = git_diff_buffers(o->present ? o->data : NULL, o->present ? o->len : 0, NULL,
			      n->present ? n->data : NULL, n->present ? n->len : 0, NULL, &opts,
			      NULL, NULL, on_hunk, on_line, c);
	if (rc == 1 && c->too_many)
		return 0;
	if (rc < 0) {
		const git_error *e = git_error_last();
		return ps_error_set(PS_EFAIL, "diff_failed", "diff failed: %s",
				    e && e->message ? e->message : "libgit2 error");
	}
	return 0;
}

/* ---- walking the changes ---- */

static bool path_matches(const char *path, const struct ps_patch_opts *o)
{
	if (!path)
		return false;
	for (size_t i = 0; i < o->npaths; i++) {
		const char *p = o->paths[i];
		size_t len = strlen(p);
		while (len > 0 && p[len - 1] == '/')
			len--;
		if (len == 0 || (len == 1 && p[0] == '.'))
			return true;
		if (strncmp(path, p, len) == 0 && (path[len] == '\0' || path[len] == '/'))
			return true;
	}
	return false;
}

static const char *note_for(const struct ps_patch_file *f, const struct ps_patch_opts *o,
			    char *buf, size_t len)
{
	switch (f->skip) {
	case PS_PATCH_NOT_STORED:
		return f->maybe_lost ? "content not stored: over the project's size limit when it "
				       "was synced, or lost since"
				     : "content not stored: over the project's size limit";
	case PS_PATCH_TOO_LARGE:
		snprintf(buf, len, "diff too large: over %zu MiB of content or %zu lines",
			 (o->max_file_bytes ? o->max_file_bytes : PS_PATCH_MAX_FILE_BYTES) >> 20,
			 o->max_file_lines ? o->max_file_lines : PS_PATCH_MAX_FILE_LINES);
		return buf;
	case PS_PATCH_OMITTED:
		return "omitted: output limit reached";
	case PS_PATCH_MISSING:
		return "content missing: its blob was lost from the store; see projsync verify --blobs";
	default:
		return NULL;
	}
}

struct walk {
	struct ps_store *s;
	int64_t project_id, sync_a;
	int64_t max_blob_size; /* the project's */
	/* ps_project_blob_bound of sync_a's and sync_b's snapshots: which absent blob was lost */
	int64_t bound_a, bound_b;
	const struct ps_patch_opts *opts;
	ps_patch_cb cb;
	void *ud;
	bool omit_rest;
	struct ps_patch_attr *attr; /* .gitattributes' `diff` */
};

/* Diffs `o` against `n` (either may be absent) and hands the entry to the callback. */
static int emit(struct walk *w, const struct ps_change *ch, struct side *o, struct side *n)
{
	struct ps_patch_file f = { 0 };
	struct collect c = { .f = &f, .keep_lines = !w->opts->stat_only };
	size_t max_bytes = w->opts->max_file_bytes ? w->opts->max_file_bytes
						    : PS_PATCH_MAX_FILE_BYTES;
	char note[128];
	int rc = 0;

	c.max_lines = w->opts->max_file_lines ? w->opts->max_file_lines : PS_PATCH_MAX_FILE_LINES;
	ps_buf_init(&c.text, SIZE_MAX);
	f.status = ch->status;
	f.path = ch->path;
	f.old_path = ch->status == PS_CHANGE_RENAMED && ch->previous_path ? ch->previous_path
									   : ch->path;
	f.old_mode = o->present ? o->mode : 0;
	f.new_mode = n->present ? n->mode : 0;
	f.old_sha = o->present ? o->sha : "";
	f.new_sha = n->present ? n->sha : "";
	f.old_size = f.new_size = -1;

	if (w->omit_rest) {
		f.skip = PS_PATCH_OMITTED;
	} else if (!(o->present && n->present && strcmp(o->sha, n->sha) == 0 &&
		     (o->mode & 0170000u) != PS_MODE_COMMIT)) {
		/* Content differs (or one side is absent): load both. A rename or mode change
		 * with the same blob needs no content, except to tell binary for --stat. */
		int64_t old_known = -1;
		if (o->present && (o->mode & 0170000u) != PS_MODE_COMMIT && w->sync_a > 0) {
			struct ps_file of = { 0 };
			if (ps_store_snapshot_file(w->s, w->project_id, w->sync_a, f.old_path,
						   &of) == 0)
				old_known = of.size;
			ps_error_clear();
			ps_file_dispose(&of);
		}
		if ((rc = side_load(w->s, o, old_known, max_bytes, w->max_blob_size,
				    w->bound_a)) < 0 ||
		    (rc = side_load(w->s, n, ch->size, max_bytes, w->max_blob_size,
				    w->bound_b)) < 0)
			goto cleanup;
		f.old_size = o->size;
		f.new_size = n->size;
		if (o->skip || n->skip) {
			/* A lost side is said first: it is a fault, the others are limits. */
			f.skip = o->skip == PS_PATCH_MISSING || n->skip == PS_PATCH_MISSING
				? PS_PATCH_MISSING
				: o->skip == PS_PATCH_TOO_LARGE || n->skip == PS_PATCH_TOO_LARGE
				? PS_PATCH_TOO_LARGE : PS_PATCH_NOT_STORED;
			f.maybe_lost = f.skip == PS_PATCH_NOT_STORED &&
				       (o->maybe_lost || n->maybe_lost);
		} else if (side_binary(w->attr, o, f.old_path) || side_binary(w->attr, n, f.path)) {
			f.binary = true;
		} else {
			if ((rc = run_xdiff(&c, o, n)) < 0)
				goto cleanup;
			if (c.too_many) {
				f.skip = PS_PATCH_TOO_LARGE;
				for (size_t i = 0; i < f.nhunks; i++)
					free(f.hunks[i].header);
				f.nhunks = f.nlines = 0;
			}
		}
	} else if (w->opts->stat_only) {
		/* Same blob: git's --stat still says "Bin" for a binary one. */
		if ((rc = side_load(w->s, n, ch->size, max_bytes, w->max_blob_size,
				    w->bound_b)) < 0)
			goto cleanup;
		f.binary = side_binary(w->attr, n, f.path);
		f.old_size = f.new_size = n->size;
	} else if (ch->size >= 0 && (n->mode & 0170000u) != PS_MODE_COMMIT) {
		/* Same blob (a rename, a mode change): the change knows its size without reading
		 * it, so the patch says what --stat says rather than null. */
		f.old_size = f.new_size = ch->size;
	}
	f.note = note_for(&f, w->opts, note, sizeof(note));
	f.text = c.text.data ? c.text.data : "";
	rc = w->cb(w->ud, &f, &w->omit_rest);
cleanup:
	for (size_t i = 0; i < f.nhunks; i++)
		free(f.hunks[i].header);
	free(f.hunks);
	free(f.lines);
	ps_buf_dispose(&c.text);
	side_dispose(o);
	side_dispose(n);
	return rc;
}

int ps_patch_each(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b,
		  const struct ps_patch_opts *opts, ps_patch_cb cb, void *ud)
{
	static const struct ps_patch_opts defaults = { 0 };
	struct ps_change *cs = NULL;
	size_t n = 0;
	struct walk w = { .s = s, .project_id = project_id, .sync_a = sync_a,
		.opts = opts ? opts : &defaults, .cb = cb, .ud = ud };
	struct ps_project *p = NULL;
	int rc;

	if ((rc = ps_store_project_get_by_id(s, project_id, &p)) < 0)
		return rc;
	w.max_blob_size = p->max_blob_size;
	w.bound_a = sync_a > 0 ? ps_project_blob_bound(s, p, sync_a) : -1;
	w.bound_b = ps_project_blob_bound(s, p, sync_b);
	ps_project_free(p);
	if ((rc = ps_store_diff(s, project_id, sync_a, sync_b, &cs, &n)) < 0)
		return rc;
	git_libgit2_init();
	/* The newer sync's attributes in either direction, like git's from a work tree at the
	 * newer commit (git reads the work tree's, not either commit's). */
	w.attr = ps_patch_attr_new(s, project_id, sync_a > sync_b ? sync_a : sync_b);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct ps_change *ch = &cs[i];
		struct side o = { .present = ch->status != PS_CHANGE_ADDED, .mode = ch->previous_mode,
			.sha = ch->previous_sha };
		struct side nw = { .present = ch->status != PS_CHANGE_DELETED, .mode = ch->mode,
			.sha = ch->sha };

		if (w.opts->npaths && !path_matches(ch->path, w.opts) &&
		    !(ch->status == PS_CHANGE_RENAMED && path_matches(ch->previous_path, w.opts)))
			continue;
		if (ch->status == PS_CHANGE_TYPE_CHANGED && !w.opts->stat_only) {
			/* git splits a change of kind into a deletion and a creation. */
			struct side none_new = { 0 }, none_old = { 0 };
			if ((rc = emit(&w, ch, &o, &none_new)) == 0)
				rc = emit(&w, ch, &none_old, &nw);
		} else {
			rc = emit(&w, ch, &o, &nw);
		}
	}
	ps_patch_attr_free(w.attr);
	git_libgit2_shutdown();
	ps_changes_free(cs, n);
	return rc;
}

/* ---- git diff text ---- */

static void label(struct ps_buf *b, bool present, const char *prefix, const char *path)
{
	if (present)
		ps_patch_quote(b, prefix, path);
	else
		ps_buf_puts(b, "/dev/null");
}

/* A "--- a/x" line. git ends a name holding a space with a tab, so patch(1) finds its end. */
static void file_line(struct ps_buf *b, const char *lead, bool present, const char *prefix,
		      const char *path)
{
	size_t mark;

	ps_buf_puts(b, lead);
	mark = b->len;
	label(b, present, prefix, path);
	ps_buf_puts(b, memchr(b->data + mark, ' ', b->len - mark) ? "\t\n" : "\n");
}

static void abbrev(struct ps_buf *b, const char *sha, bool full)
{
	const char *id = sha[0] ? sha : NULL_SHA;

	ps_buf_append(b, id, full ? strlen(id) : PS_PATCH_ABBREV);
}

int ps_patch_format(const struct ps_patch_file *f, bool full_index, struct ps_buf *out)
{
	bool has_old = f->old_mode != 0, has_new = f->new_mode != 0;

	ps_buf_puts(out, "diff --git ");
	ps_patch_quote(out, "a/", f->old_path);
	ps_buf_puts(out, " ");
	ps_patch_quote(out, "b/", f->path);
	ps_buf_puts(out, "\n");
	if (!has_old) {
		ps_buf_printf(out, "new file mode %06o\n", f->new_mode);
	} else if (!has_new) {
		ps_buf_printf(out, "deleted file mode %06o\n", f->old_mode);
	} else {
		if (f->old_mode != f->new_mode)
			ps_buf_printf(out, "old mode %06o\nnew mode %06o\n", f->old_mode,
				      f->new_mode);
		if (strcmp(f->old_path, f->path) != 0) {
			ps_buf_puts(out, "similarity index 100%\nrename from ");
			ps_patch_quote(out, "", f->old_path);
			ps_buf_puts(out, "\nrename to ");
			ps_patch_quote(out, "", f->path);
			ps_buf_puts(out, "\n");
		}
	}
	if (strcmp(f->old_sha, f->new_sha) != 0) {
		ps_buf_puts(out, "index ");
		abbrev(out, f->old_sha, full_index);
		ps_buf_puts(out, "..");
		abbrev(out, f->new_sha, full_index);
		if (f->old_mode == f->new_mode)
			ps_buf_printf(out, " %06o", f->old_mode);
		ps_buf_puts(out, "\n");
	}
	if (f->note || f->binary) {
		/* Equal contents print no "Binary files" line: the same blob, or the empty blob
		 * against /dev/null (an empty file marked binary). */
		if (!f->note && (strcmp(f->old_sha, f->new_sha) == 0 ||
				 (!has_old && strcmp(f->new_sha, EMPTY_BLOB) == 0) ||
				 (!has_new && strcmp(f->old_sha, EMPTY_BLOB) == 0)))
			return 0;
		ps_buf_puts(out, f->binary ? "Binary files " : "Files ");
		label(out, has_old, "a/", f->old_path);
		ps_buf_puts(out, " and ");
		label(out, has_new, "b/", f->path);
		ps_buf_puts(out, " differ");
		if (f->note)
			ps_buf_printf(out, " (%s)", f->note);
		ps_buf_puts(out, "\n");
		return 0;
	}
	if (f->nhunks) {
		file_line(out, "--- ", has_old, "a/", f->old_path);
		file_line(out, "+++ ", has_new, "b/", f->path);
	}
	for (size_t i = 0; i < f->nhunks; i++) {
		const struct ps_patch_hunk *h = &f->hunks[i];
		ps_buf_puts(out, h->header);
		ps_buf_puts(out, "\n");
		for (size_t j = h->first; j < h->first + h->n; j++) {
			const struct ps_patch_line *l = &f->lines[j];
			ps_buf_append(out, &l->origin, 1);
			ps_buf_append(out, f->text + l->off, l->len);
			ps_buf_puts(out, l->no_newline ? "\n\\ No newline at end of file\n" : "\n");
		}
	}
	return 0;
}

/* ---- JSON ---- */

static json_t *mode_json(uint32_t mode)
{
	char m[8];

	if (!mode)
		return json_null();
	ps_mode_string(mode, m);
	return json_string(m);
}

static json_t *sha_json(const char *sha)
{
	return sha && sha[0] ? json_string(sha) : json_null();
}

json_t *ps_patch_file_to_json(const struct ps_patch_file *f)
{
	static const char *const skips[] = { NULL, "not_stored", "too_large", "omitted",
					     "missing" };
	json_t *hunks = json_array();
	json_t *j;

	for (size_t i = 0; i < f->nhunks; i++) {
		const struct ps_patch_hunk *h = &f->hunks[i];
		json_t *lines = json_array();
		for (size_t k = h->first; k < h->first + h->n; k++) {
			const struct ps_patch_line *l = &f->lines[k];
			char origin[2] = { l->origin, 0 };
			json_t *lj = json_pack("{s:s, s:o, s:o, s:o}", "origin", origin,
					       "old_lineno", l->old_lineno ? json_integer(l->old_lineno)
									   : json_null(),
					       "new_lineno", l->new_lineno ? json_integer(l->new_lineno)
									   : json_null(),
					       "text", ps_json_stringn(f->text + l->off, l->len));
			if (l->no_newline)
				json_object_set_new(lj, "no_newline", json_true());
			json_array_append_new(lines, lj);
		}
		json_array_append_new(hunks, json_pack("{s:I, s:I, s:I, s:I, s:o, s:o}",
			"old_start", (json_int_t)h->old_start, "old_lines", (json_int_t)h->old_lines,
			"new_start", (json_int_t)h->new_start, "new_lines", (json_int_t)h->new_lines,
			"header", ps_json_string(h->header), "lines", lines));
	}
	j = json_pack("{s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:o, s:o, s:I, s:I,"
		      " s:o}",
		      "path", ps_json_string(f->path),
		      "previous_path", ps_json_string(strcmp(f->old_path, f->path) ? f->old_path
										  : NULL),
		      "status", ps_change_status_name(f->status),
		      "old_mode", mode_json(f->old_mode),
		      "new_mode", mode_json(f->new_mode),
		      "old_sha", sha_json(f->old_sha),
		      "new_sha", sha_json(f->new_sha),
		      "old_size", f->old_size >= 0 ? json_integer(f->old_size) : json_null(),
		      "new_size", f->new_size >= 0 ? json_integer(f->new_size) : json_null(),
		      "binary", f->binary,
		      "too_large", f->skip == PS_PATCH_TOO_LARGE,
		      "skipped", skips[f->skip] ? json_string(skips[f->skip]) : json_null(),
		      "note", ps_json_string(f->note),
		      "added", (json_int_t)f->added,
		      "deleted", (json_int_t)f->deleted,
		      "hunks", hunks);
	return j;
}

/* ---- --stat (git's show_stats) ---- */

struct stat_entry {
	char *name;            /* git's print name: quoted, renames as "a/{x => y}" */
	int64_t added, deleted;/* lines, or bytes new/old for binary */
	bool binary;
	const char *slot;      /* text in place of the count for skipped content */
};

struct ps_patch_stat {
	struct stat_entry *v;
	size_t n, cap;
};

struct ps_patch_stat *ps_patch_stat_new(void)
{
	return ps_calloc(1, sizeof(struct ps_patch_stat));
}

void ps_patch_stat_free(struct ps_patch_stat *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		free(st->v[i].name);
	free(st->v);
	free(st);
}

/* git's pprint_rename: the common directory prefix and suffix outside braces. */
static char *rename_name(const char *a, const char *b)
{
	struct ps_buf out;
	size_t len_a = strlen(a), len_b = strlen(b), pfx = 0, sfx = 0;
	const char *old = a, *new_ = b;
	long a_mid, b_mid;

	ps_buf_init(&out, SIZE_MAX);
	if (needs_quote(a) || needs_quote(b)) {
		ps_patch_quote(&out, "", a);
		ps_buf_puts(&out, " => ");
		ps_patch_quote(&out, "", b);
		return ps_buf_take(&out, NULL);
	}
	while (*old && *new_ && *old == *new_) {
		if (*old == '/')
			pfx = (size_t)(old - a) + 1;
		old++;
		new_++;
	}
	/* With a common prefix (it ends in '/'), the suffix scan may run one into it to see the
	 * same slash; without one it must stay inside the strings. a[len_a] is the NUL. */
	{
		long stop = (long)pfx - (pfx ? 1 : 0), ia = (long)len_a, ib = (long)len_b;
		while (stop <= ia && stop <= ib && a[ia] == b[ib]) {
			if (a[ia] == '/')
				sfx = len_a - (size_t)ia;
			ia--;
			ib--;
		}
	}
	a_mid = (long)len_a - (long)pfx - (long)sfx;
	b_mid = (long)len_b - (long)pfx - (long)sfx;
	if (a_mid < 0)
		a_mid = 0;
	if (b_mid < 0)
		b_mid = 0;
	if (pfx + sfx) {
		ps_buf_append(&out, a, pfx);
		ps_buf_puts(&out, "{");
	}
	ps_buf_append(&out, a + pfx, (size_t)a_mid);
	ps_buf_puts(&out, " => ");
	ps_buf_append(&out, b + pfx, (size_t)b_mid);
	if (pfx + sfx) {
		ps_buf_puts(&out, "}");
		ps_buf_append(&out, a + len_a - sfx, sfx);
	}
	return ps_buf_take(&out, NULL);
}

void ps_patch_stat_add(struct ps_patch_stat *st, const struct ps_patch_file *f)
{
	struct stat_entry *e;
	struct ps_buf name;

	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 64;
		st->v = ps_realloc(st->v, st->cap * sizeof(*st->v));
	}
	e = &st->v[st->n++];
	memset(e, 0, sizeof(*e));
	if (strcmp(f->old_path, f->path) != 0) {
		e->name = rename_name(f->old_path, f->path);
	} else {
		ps_buf_init(&name, SIZE_MAX);
		ps_patch_quote(&name, "", f->path);
		e->name = ps_buf_take(&name, NULL);
	}
	if (f->skip) {
		e->slot = f->skip == PS_PATCH_NOT_STORED ? "not stored"
			  : f->skip == PS_PATCH_TOO_LARGE ? "too large"
			  : f->skip == PS_PATCH_MISSING ? "missing" : "omitted";
	} else if (f->binary) {
		e->binary = true;
		if (strcmp(f->old_sha, f->new_sha) != 0) {
			e->added = f->new_size > 0 ? f->new_size : 0;
			e->deleted = f->old_size > 0 ? f->old_size : 0;
		}
	} else {
		e->added = f->added;
		e->deleted = f->deleted;
	}
}

static int decimal_width(int64_t n)
{
	int w = 1;

	while (n >= 10) {
		n /= 10;
		w++;
	}
	return w;
}

static int64_t scale_linear(int64_t it, int64_t width, int64_t max_change)
{
	if (!it)
		return 0;
	/* At least one '+' or '-' for any change: scale as if one column shorter, add one. */
	return 1 + (it * (width - 1) / max_change);
}

int ps_patch_stat_format(const struct ps_patch_stat *st, int width, struct ps_buf *out)
{
	int64_t max_change = 0, max_len = 0, adds = 0, dels = 0;
	int64_t number_width = 0, bin_width = 0, graph_width, name_width;

	if (st->n == 0)
		return 0;
	for (size_t i = 0; i < st->n; i++) {
		const struct stat_entry *e = &st->v[i];
		int64_t len = (int64_t)strlen(e->name);
		if (max_len < len)
			max_len = len;
		if (e->slot) {
			int64_t w = (int64_t)strlen(e->slot);
			if (bin_width < w)
				bin_width = w;
			continue;
		}
		if (e->binary) {
			/* "Bin XXX -> YYY bytes" */
			int64_t w = 14 + decimal_width(e->added) + decimal_width(e->deleted);
			if (bin_width < w)
				bin_width = w;
			number_width = 3; /* counts align with "Bin" */
			continue;
		}
		if (max_change < e->added + e->deleted)
			max_change = e->added + e->deleted;
	}
	if (decimal_width(max_change) > number_width)
		number_width = decimal_width(max_change);
	/* Guarantee 3/8*16 == 6 columns for the graph and 5/8*16 == 10 for the name. */
	if (width < 16 + 6 + number_width)
		width = (int)(16 + 6 + number_width);
	graph_width = max_change + 4 > bin_width ? max_change : bin_width - 4;
	name_width = max_len;
	if (name_width + number_width + 6 + graph_width > width) {
		if (graph_width > width * 3 / 8 - number_width - 6) {
			graph_width = width * 3 / 8 - number_width - 6;
			if (graph_width < 6)
				graph_width = 6;
		}
		if (name_width > width - number_width - 6 - graph_width)
			name_width = width - number_width - 6 - graph_width;
		else
			graph_width = width - number_width - 6 - name_width;
	}
	for (size_t i = 0; i < st->n; i++) {
		const struct stat_entry *e = &st->v[i];
		const char *name = e->name, *prefix = "";
		int64_t len = name_width, name_len = (int64_t)strlen(name), add, del;

		if (name_width < name_len) {
			const char *slash;
			prefix = "...";
			len -= 3;
			if (len < 0)
				len = 0;
			name += name_len - len;
			if ((slash = strchr(name, '/')))
				name = slash;
		}
		ps_buf_printf(out, " %s%-*s |", prefix, (int)len, name);
		if (e->slot) {
			ps_buf_printf(out, " %s\n", e->slot);
			continue;
		}
		if (e->binary) {
			ps_buf_printf(out, " %*s", (int)number_width, "Bin");
			if (e->added || e->deleted)
				ps_buf_printf(out, " %" PRId64 " -> %" PRId64 " bytes", e->deleted,
					      e->added);
			ps_buf_puts(out, "\n");
			continue;
		}
		add = e->added;
		del = e->deleted;
		adds += add;
		dels += del;
		if (graph_width <= max_change) {
			int64_t total = scale_linear(add + del, graph_width, max_change);
			if (total < 2 && add && del)
				total = 2;
			if (add < del) {
				add = scale_linear(add, graph_width, max_change);
				del = total - add;
			} else {
				del = scale_linear(del, graph_width, max_change);
				add = total - del;
			}
		}
		ps_buf_printf(out, " %*" PRId64 "%s", (int)number_width, e->added + e->deleted,
			      e->added + e->deleted ? " " : "");
		for (int64_t k = 0; k < add; k++)
			ps_buf_puts(out, "+");
		for (int64_t k = 0; k < del; k++)
			ps_buf_puts(out, "-");
		ps_buf_puts(out, "\n");
	}
	ps_buf_printf(out, " %zu file%s changed", st->n, st->n == 1 ? "" : "s");
	if (adds || dels == 0)
		ps_buf_printf(out, ", %" PRId64 " insertion%s(+)", adds, adds == 1 ? "" : "s");
	if (dels || adds == 0)
		ps_buf_printf(out, ", %" PRId64 " deletion%s(-)", dels, dels == 1 ? "" : "s");
	ps_buf_puts(out, "\n");
	return 0;
}

/* ---- whole diffs: text (CLI, text/x-diff) and JSON (API) ---- */

bool ps_patch_change_matches(const struct ps_change *c, const char *const *paths, size_t n)
{
	struct ps_patch_opts o = { .paths = paths, .npaths = n };

	return n == 0 || path_matches(c->path, &o) ||
	       (c->status == PS_CHANGE_RENAMED && path_matches(c->previous_path, &o));
}

const char *ps_patch_path_problem(const char *path)
{
	if (!*path)
		return "give a file or a directory ('.' for all)";
	if (path[0] == '/')
		return "paths are relative to the repository root (no leading '/')";
	return NULL;
}

struct limited {
	size_t max, used;
	bool truncated, full_index;
	struct ps_buf scratch;
	ps_patch_write_fn write;
	void *ud;
	json_t *files;
	struct ps_patch_stat *stat;
};

/* Renders `f`, or its omitted form once the output limit is reached. */
static int render_limited(struct limited *l, const struct ps_patch_file *f, bool *omit_rest)
{
	l->scratch.len = 0;
	ps_patch_format(f, l->full_index, &l->scratch);
	if (l->max && l->used + l->scratch.len > l->max && f->skip != PS_PATCH_OMITTED) {
		struct ps_patch_file cut = *f;
		cut.skip = PS_PATCH_OMITTED;
		cut.note = "omitted: output limit reached";
		cut.binary = false;
		cut.nhunks = cut.nlines = 0;
		cut.added = cut.deleted = 0;
		l->truncated = true;
		*omit_rest = true;
		l->scratch.len = 0;
		ps_patch_format(&cut, l->full_index, &l->scratch);
		l->used += l->scratch.len;
		return 1;
	}
	l->used += l->scratch.len;
	return 0;
}

static int on_text(void *ud, const struct ps_patch_file *f, bool *omit_rest)
{
	struct limited *l = ud;

	render_limited(l, f, omit_rest);
	return l->write(l->ud, l->scratch.data ? l->scratch.data : "", l->scratch.len);
}

static int on_stat(void *ud, const struct ps_patch_file *f, bool *omit_rest)
{
	struct limited *l = ud;

	(void)omit_rest;
	ps_patch_stat_add(l->stat, f);
	return 0;
}

int ps_patch_write(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b,
		   const struct ps_patch_opts *opts, unsigned what, int stat_width,
		   size_t max_bytes, ps_patch_write_fn write, void *ud, bool *truncated)
{
	struct ps_patch_opts o = opts ? *opts : (struct ps_patch_opts){ 0 };
	struct limited l = { .max = max_bytes, .write = write, .ud = ud,
			     .full_index = o.full_index };
	int rc = 0;

	ps_buf_init(&l.scratch, SIZE_MAX);
	if (what & PS_PATCH_WANT_STAT) {
		struct ps_buf b;
		o.stat_only = true;
		l.stat = ps_patch_stat_new();
		rc = ps_patch_each(s, project_id, sync_a, sync_b, &o, on_stat, &l);
		ps_buf_init(&b, SIZE_MAX);
		if (rc == 0)
			ps_patch_stat_format(l.stat, stat_width, &b);
		/* git separates the stat from the patch by an empty line. */
		if (rc == 0 && b.len && (what & PS_PATCH_WANT_PATCH))
			ps_buf_puts(&b, "\n");
		if (rc == 0 && b.len)
			rc = write(ud, b.data, b.len);
		l.used += b.len;
		ps_buf_dispose(&b);
		ps_patch_stat_free(l.stat);
		o.stat_only = false;
	}
	if (rc == 0 && (what & PS_PATCH_WANT_PATCH))
		rc = ps_patch_each(s, project_id, sync_a, sync_b, &o, on_text, &l);
	ps_buf_dispose(&l.scratch);
	if (truncated)
		*truncated = l.truncated;
	return rc;
}

static int on_json(void *ud, const struct ps_patch_file *f, bool *omit_rest)
{
	struct limited *l = ud;

	if (render_limited(l, f, omit_rest)) {
		struct ps_patch_file cut = *f;
		cut.skip = PS_PATCH_OMITTED;
		cut.note = "omitted: output limit reached";
		cut.binary = false;
		cut.nhunks = cut.nlines = 0;
		cut.added = cut.deleted = 0;
		json_array_append_new(l->files, ps_patch_file_to_json(&cut));
		return 0;
	}
	json_array_append_new(l->files, ps_patch_file_to_json(f));
	return 0;
}

int ps_patch_json(struct ps_store *s, int64_t project_id, int64_t sync_a, int64_t sync_b,
		  const struct ps_patch_opts *opts, size_t max_bytes, json_t **out)
{
	struct limited l = { .max = max_bytes, .files = json_array(),
			     .full_index = opts && opts->full_index };
	int rc;

	ps_buf_init(&l.scratch, SIZE_MAX);
	rc = ps_patch_each(s, project_id, sync_a, sync_b, opts, on_json, &l);
	ps_buf_dispose(&l.scratch);
	if (rc < 0) {
		json_decref(l.files);
		return rc;
	}
	*out = json_pack("{s:o, s:o, s:b, s:o}", "from", ps_json_id(sync_a), "to",
			 ps_json_id(sync_b), "truncated", l.truncated, "files", l.files);
	return 0;
}
