/*
 * The memory entry's pure helpers (see model/memory.h). The search text is a user's, so its
 * loop is bounded by PS_MEMORY_MAX_QUERY and PS_MEMORY_MAX_QUERY_WORDS.
 */
#include "model/memory.h"

#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "util/error.h"
#include "util/util.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* ---- the entry ---- */

void ps_memory_entry_dispose(struct ps_memory_entry *e)
{
	if (!e)
		return;
	free(e->project);
	free(e->source);
	free(e->source_ref);
	free(e->title);
	ps_strv_dispose(&e->tags);
	free(e->content);
	free(e->snippet);
	memset(e, 0, sizeof(*e));
}

void ps_memory_entry_free(struct ps_memory_entry *e)
{
	ps_memory_entry_dispose(e);
	free(e);
}

void ps_memory_entries_free(struct ps_memory_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		ps_memory_entry_dispose(&v[i]);
	free(v);
}

const char *ps_memory_status_name(enum ps_memory_status s)
{
	return s == PS_MEMORY_ACTIVE ? "active" : "superseded";
}

static const char *const origin_names[] = { "sync", "restore", "manual" };

const char *ps_memory_origin_name(enum ps_memory_origin o)
{
	return (unsigned)o < 3 ? origin_names[o] : "sync";
}

int ps_memory_origin_parse(const char *name, enum ps_memory_origin *out)
{
	for (int i = 0; i < 3; i++)
		if (name && strcmp(name, origin_names[i]) == 0) {
			*out = (enum ps_memory_origin)i;
			return 0;
		}
	return ps_error_set(PS_EINVAL, NULL, "unknown memory entry origin '%s'", name ? name : "");
}

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

bool ps_memory_same_text(const struct ps_memory_entry *a, const struct ps_memory_entry *b)
{
	if (!str_eq(a->title, b->title) || !str_eq(a->content, b->content) ||
	    a->tags.n != b->tags.n)
		return false;
	for (size_t i = 0; i < a->tags.n; i++)
		if (!str_eq(a->tags.v[i], b->tags.v[i]))
			return false;
	return true;
}

/* ---- search text ---- */

/* The FTS5 query of ps_memory_fts_query; with `prefix`, every phrase's last word also matches
 * as the start of a longer word ("cach"* finds "caching"). */
static int fts_query(char **out, const char *q, bool prefix)
{
	struct ps_buf b;
	size_t words = 0, bad;
	const char *p = q ? q : "";

	if (strlen(p) > PS_MEMORY_MAX_QUERY)
		return ps_error_set(PS_ETOOBIG, "query_too_long",
				    "search query too long (%zu bytes; at most %d)", strlen(p),
				    PS_MEMORY_MAX_QUERY);
	/* Bytes that are not UTF-8 match nothing (the index holds text) and the PostgreSQL
	 * backend cannot even send them: the user's mistake, said so, not "no match". */
	if ((bad = ps_utf8_first_bad(p)) != SIZE_MAX)
		return ps_error_set(PS_EINVAL, "invalid_query",
				    "search query is not valid UTF-8 (byte 0x%02x at offset %zu)",
				    (unsigned char)p[bad], bad);
	ps_buf_init(&b, PS_MEMORY_MAX_QUERY * 2 + PS_MEMORY_MAX_QUERY_WORDS * 4 + 16);
	while (*p && words < PS_MEMORY_MAX_QUERY_WORDS) {
		const char *s, *e;
		bool word = false;

		while (*p && is_space(*p))
			p++;
		s = p;
		while (*p && !is_space(*p))
			p++;
		e = p;
		for (const char *c = s; c < e && !word; c++) {
			unsigned char u = (unsigned char)*c;
			word = u >= 0x80 || (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z');
		}
		if (!word)
			continue;               /* only punctuation: the tokenizer would drop it anyway */
		if (words++)
			ps_buf_puts(&b, " ");
		ps_buf_puts(&b, "\"");
		for (const char *c = s; c < e; c++)
			ps_buf_append(&b, *c == '"' ? "\"\"" : c, *c == '"' ? 2 : 1);
		ps_buf_puts(&b, prefix ? "\"*" : "\"");
	}
	if (words == 0) {
		ps_buf_dispose(&b);
		return ps_error_set(PS_EINVAL, "empty_query",
				    "empty query: give at least one word to search for");
	}
	*out = ps_buf_take(&b, NULL);
	return 0;
}

int ps_memory_fts_query(char **out, const char *q)
{
	return fts_query(out, q, false);
}

int ps_memory_fts_prefix_query(char **out, const char *q)
{
	return fts_query(out, q, true);
}

int ps_memory_check_note(const char *title, const char *content, const struct ps_strv *tags)
{
	const char *t = title ? title : "";

	while (*t == ' ' || *t == '\t')
		t++;
	if (!*t)
		return ps_error_set(PS_EINVAL, "title_required", "a memory entry needs a title");
	/* A carriage return breaks a line as well as a newline does, in a terminal and in the
	 * markdown a note is shown as. */
	if (strlen(title) > PS_MEMORY_MAX_TITLE || strpbrk(title, "\r\n"))
		return ps_error_set(PS_EINVAL, "bad_title",
				    "the title must be one line of at most %d bytes",
				    PS_MEMORY_MAX_TITLE);
	if (content && strlen(content) > PS_MEMORY_MAX_CONTENT)
		return ps_error_set(PS_ETOOBIG, "content_too_big",
				    "the content is larger than %d bytes", PS_MEMORY_MAX_CONTENT);
	if (tags && tags->n > PS_MEMORY_MAX_TAGS)
		return ps_error_set(PS_EINVAL, "too_many_tags", "at most %d tags", PS_MEMORY_MAX_TAGS);
	for (size_t i = 0; tags && i < tags->n; i++)
		if (!tags->v[i][0] || strlen(tags->v[i]) > PS_MEMORY_MAX_TAG ||
		    strpbrk(tags->v[i], "\r\n"))
			return ps_error_set(PS_EINVAL, "bad_tag",
					    "a tag must be one line of 1 to %d bytes", PS_MEMORY_MAX_TAG);
	return 0;
}

char *ps_memory_tag_text(const char *s)
{
	json_t *j = ps_json_string(s);
	char *t = ps_strdup(json_string_value(j));

	json_decref(j);
	return t;
}

void ps_memory_tags_unique(struct ps_strv *out, const struct ps_strv *in)
{
	for (size_t i = 0; i < in->n; i++) {
		/* The stores keep tags as JSON text: compared raw, two tags that differ only in
		 * invalid bytes were both kept and then stored as the same text. */
		char *t = ps_memory_tag_text(in->v[i]);

		if (!ps_strv_has(out, t))
			ps_strv_push(out, t);
		free(t);
	}
}

bool ps_memory_deleted(const struct ps_memory_entry *e)
{
	return e->origin == PS_MEMORY_FROM_MANUAL && e->status == PS_MEMORY_SUPERSEDED &&
	       !e->superseded_by_entry && !e->superseded_by_sync;
}

