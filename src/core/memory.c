/*
 * Importing memory entries (see memory.h): markdown front matter, titles and tags; the memory
 * globs; the JSON shape.
 *
 * Everything here reads text a repository (a peer) controls, so every loop is bounded by the
 * input's length and the PS_MEMORY_MAX_* limits, and nothing can fail a sync: a file we cannot
 * make sense of still becomes an entry, with its whole text as content.
 */
#include "core/memory.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "model/json.h"
#include "util/error.h"

/* ---- front matter, title, tags ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* [*s, *e) without surrounding white space. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_space(**s))
		(*s)++;
	while (*e > *s && is_space((*e)[-1]))
		(*e)--;
}

/* A new string of at most `max` bytes, cut at a UTF-8 character boundary. */
static char *utf8_cut(const char *s, size_t len, size_t max)
{
	if (len > max) {
		len = max;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	return ps_strndup(s, len);
}

/* One escape of a double-quoted YAML scalar, `p` just after its backslash, into `b`: \x, \u
 * and \U as UTF-8 (U+FFFD for what is no character), \t \n \r as a space (a title and a tag
 * are one line), \0 and YAML's control escapes dropped, any other character as itself (\"
 * \\ \/ \ ). Returns the last byte it read. */
static const char *yaml_escape(struct ps_buf *b, const char *p, const char *e)
{
	int digits = *p == 'x' ? 2 : *p == 'u' ? 4 : *p == 'U' ? 8 : 0;
	uint32_t cp = 0;
	char utf8[4];
	size_t n;

	if (!digits) {
		if (strchr("tnr", *p))
			ps_buf_append(b, " ", 1);
		else if (!strchr("0abefvLNP_", *p))
			ps_buf_append(b, p, 1);
		return p;
	}
	for (int i = 1; i <= digits; i++) {
		int v = p + i >= e || !isxdigit((unsigned char)p[i]) ? -1
			: isdigit((unsigned char)p[i]) ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10;
		if (v < 0) {
			/* Not an escape after all: kept as it was written. */
			ps_buf_append(b, p - 1, 2);
			return p;
		}
		cp = cp << 4 | (uint32_t)v;
	}
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		utf8[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		utf8[0] = (char)(0xc0 | cp >> 6);
		utf8[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		utf8[0] = (char)(0xe0 | cp >> 12);
		utf8[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		utf8[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		utf8[0] = (char)(0xf0 | cp >> 18);
		utf8[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		utf8[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		utf8[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	ps_buf_append(b, utf8, n);
	return p + digits;
}

/* A YAML scalar as plain text: quotes removed ("..." with its escapes: yaml_escape; '...'
 * with ''), and a trailing ` # comment` dropped. An unclosed quote is kept as text. */
static char *scalar(const char *s, const char *e)
{
	trim(&s, &e);
	if (s < e && (*s == '"' || *s == '\'')) {
		char q = *s;
		struct ps_buf b;

		ps_buf_init(&b, (size_t)(e - s) + 1);
		for (const char *p = s + 1; p < e; p++) {
			if (q == '"' && *p == '\\' && p + 1 < e) {
				p = yaml_escape(&b, p + 1, e);
				continue;
			} else if (q == '\'' && *p == '\'' && p + 1 < e && p[1] == '\'') {
				p++;
			} else if (*p == q) {
				char *out = ps_buf_take(&b, NULL);
				return out ? out : ps_strdup("");
			}
			ps_buf_append(&b, p, 1);
		}
		ps_buf_dispose(&b);
	}
	for (const char *p = s; p < e; p++)
		if (*p == '#' && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			e = p;
			break;
		}
	trim(&s, &e);
	return ps_strndup(s, (size_t)(e - s));
}

static void add_tag(struct ps_strv *tags, const char *s, const char *e)
{
	char *raw = scalar(s, e), *t = ps_memory_tag_text(raw);
	size_t len = strlen(raw);

	/* Compared as stored (U+FFFD for bytes that are not UTF-8), like a note's tags. The
	 * length bound holds for the bytes given, as for a note, and for the tag as stored:
	 * each byte that is not UTF-8 grows to three, past what memory.h promises. */
	free(raw);
	if (t[0] && len <= PS_MEMORY_MAX_TAG && strlen(t) <= PS_MEMORY_MAX_TAG &&
	    tags->n < PS_MEMORY_MAX_TAGS &&
	    !ps_strv_has(tags, t))
		ps_strv_push(tags, t);
	free(t);
}

/* "a, b" -> tags (commas inside quotes are not separators). */
static void add_tag_list(struct ps_strv *tags, const char *s, const char *e)
{
	const char *start = s;
	char quote = 0;

	for (const char *p = s; p <= e; p++) {
		if (p < e && quote) {
			if (*p == quote)
				quote = 0;
		} else if (p < e && (*p == '"' || *p == '\'') && p == start + strspn(start, " \t")) {
			quote = *p;
		} else if (p == e || *p == ',') {
			add_tag(tags, start, p);
			start = p + 1;
		}
	}
}

/* Is [s, e) a delimiter line of the front matter ("---", or "..." to close), spaces allowed
 * after it? */
static bool delimiter(const char *s, const char *e, bool closing)
{
	trim(&s, &e);
	return e - s == 3 && (memcmp(s, "---", 3) == 0 || (closing && memcmp(s, "...", 3) == 0));
}

/*
 * The value of a `title:` or `tags:` key, which may run over the lines after the key: a plain
 * (or quoted, or flow `[...]`) scalar continued on indented lines, folded with spaces as YAML
 * does; or a block scalar (`|` literal, `>` folded, with YAML's optional chomping and
 * indentation indicators), whose indented lines are its text as written (no quotes, no
 * comments). A block list (`- a` lines) is not a value here: its items are read as they come.
 */
struct fm_value {
	enum { K_OTHER, K_TITLE, K_TAGS } key;
	enum { V_PLAIN, V_LITERAL, V_FOLDED } style;
	bool list;        /* the title is a block list: no title */
	struct ps_buf text; /* plain: the lines joined with spaces; block: its lines, '\n' after each */
};

/* Is [s, e) a block scalar header: `|` or `>`, then at most one chomping indicator (+ -) and
 * one indentation digit in either order, then nothing or a comment? */
static bool block_header(const char *s, const char *e, bool *folded)
{
	bool chomp = false, indent = false;

	if (s == e || (*s != '|' && *s != '>'))
		return false;
	*folded = *s == '>';
	for (s++; s < e; s++) {
		if ((*s == '+' || *s == '-') && !chomp)
			chomp = true;
		else if (*s >= '1' && *s <= '9' && !indent)
			indent = true;
		else
			break;
	}
	/* [s, e) is trimmed: white space here is followed by more text. */
	return s == e || ((*s == ' ' || *s == '\t') && s[strspn(s, " \t")] == '#');
}

static void text_clear(struct ps_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static void value_start(struct fm_value *v, int key, const char *vs, const char *ve)
{
	bool folded;

	v->key = key;
	v->list = false;
	text_clear(&v->text);
	v->style = V_PLAIN;
	if (vs < ve && *vs == '#')
		return;                                /* `tags: # comment`: no value yet */
	if (block_header(vs, ve, &folded))
		v->style = folded ? V_FOLDED : V_LITERAL;
	else
		ps_buf_append(&v->text, vs, (size_t)(ve - vs));
}

/* One more line [s, e) of the value, trimmed. */
static void value_line(struct fm_value *v, const char *s, const char *e)
{
	if (v->style == V_PLAIN) {
		if (v->text.len)
			ps_buf_append(&v->text, " ", 1);
		ps_buf_append(&v->text, s, (size_t)(e - s));
	} else {
		ps_buf_append(&v->text, s, (size_t)(e - s));
		ps_buf_append(&v->text, "\n", 1);
	}
}

/* Takes the value in: the title, or tags. False for a flow list without its `]`. */
static bool value_end(struct fm_value *v, char **title, struct ps_strv *tags)
{
	const char *s = v->text.len ? v->text.data : "", *e = s + v->text.len;
	bool ok = true;

	if (v->key == K_TITLE && !v->list && s < e) {
		free(*title);
		if (v->style == V_PLAIN) {
			*title = scalar(s, e);
		} else {
			/* A title is one line: a block's lines (literal or folded) join with spaces. */
			trim(&s, &e);
			*title = ps_strndup(s, (size_t)(e - s));
			for (char *c = *title; *c; c++)
				if (*c == '\n')
					*c = ' ';
		}
	} else if (v->key == K_TAGS && v->style == V_PLAIN && s < e && *s == '[') {
		const char *close = e;
		while (close > s && close[-1] != ']')
			close--;
		if (close == s)
			ok = false;                        /* `[a, b` without its `]` */
		else
			add_tag_list(tags, s + 1, close - 1);
	} else if (v->key == K_TAGS && v->style == V_LITERAL) {
		/* Each line a tag, or a comma list of them, as on one `tags:` line. */
		for (const char *l = s; l < e;) {
			const char *nl = memchr(l, '\n', (size_t)(e - l));
			add_tag_list(tags, l, nl);
			l = nl + 1;
		}
	} else if (v->key == K_TAGS && s < e) {
		/* Plain, or folded: the lines joined with spaces, a comma list. */
		char *joined = ps_strndup(s, (size_t)(e - s));
		for (char *c = joined; *c; c++)
			if (*c == '\n')
				*c = ' ';
		add_tag_list(tags, joined, joined + strlen(joined));
		free(joined);
	}
	text_clear(&v->text);
	v->style = V_PLAIN;
	return ok;
}

/*
 * Parses the front matter at the start of text. On success sets *title (malloc'd or NULL),
 * fills tags and *body (the offset after the closing line) and returns true. Returns false for
 * anything that is not a well-formed, bounded block; then *title is NULL and tags are empty.
 */
static bool front_matter(const char *text, size_t len, char **title, struct ps_strv *tags,
			 size_t *body)
{
	const char *p = text, *end = text + len, *nl;
	struct fm_value v = { .key = K_OTHER };
	int lines = 0;

	*title = NULL;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl || !delimiter(p, nl, false))
		return false;
	/* Bounded by the front matter's own limit: a value is some of its lines. */
	ps_buf_init(&v.text, PS_MEMORY_MAX_FRONT_MATTER + 1);
	p = nl + 1;
	while (p < end) {
		const char *ls = p, *le;

		nl = memchr(p, '\n', (size_t)(end - p));
		le = nl ? nl : end;
		p = nl ? nl + 1 : end;
		if (++lines > PS_MEMORY_MAX_FRONT_LINES || (size_t)(ls - text) > PS_MEMORY_MAX_FRONT_MATTER)
			break;
		if (delimiter(ls, le, true)) {
			if (!value_end(&v, title, tags))
				break;
			ps_buf_dispose(&v.text);
			*body = (size_t)(p - text);
			return true;
		}
		const char *s = ls, *e = le;
		bool indented = ls < le && (ls[0] == ' ' || ls[0] == '\t');
		trim(&s, &e);
		if (v.style != V_PLAIN) {
			/* A block scalar: its indented lines (blank ones too) are text, '#' and all;
			 * the first line back at the left margin ends it. */
			if (s == e)
				continue;
			if (indented) {
				value_line(&v, s, e);
				continue;
			}
			value_end(&v, title, tags);
		}
		if (s == e || *s == '#')
			continue;                      /* blank or comment */
		if (indented || ls[0] == '-') {
			bool item = *s == '-' && (s + 1 == e || s[1] == ' ' || s[1] == '\t');
			if (item && v.key == K_TAGS) {
				/* A block list's item; a value before it (`tags: a`) goes first. */
				if (!value_end(&v, title, tags))
					break;
				add_tag(tags, s + 1, e);
			} else if (item && v.key == K_TITLE && !v.text.len) {
				v.list = true;             /* `title:` then `- x`: a list, no title */
			} else if (!item && indented && v.key != K_OTHER && !v.list) {
				value_line(&v, s, e);      /* a plain value continued */
			}
			continue;
		}
		if (!value_end(&v, title, tags))
			break;
		const char *colon = s;
		while (colon < e && (((*colon | 0x20) >= 'a' && (*colon | 0x20) <= 'z') ||
				     (*colon >= '0' && *colon <= '9') || *colon == '_' || *colon == '-'))
			colon++;
		if (colon == s || colon == e || *colon != ':' ||
		    (colon + 1 < e && colon[1] != ' ' && colon[1] != '\t'))
			break;                         /* not `key: value`: not YAML we understand */
		size_t klen = (size_t)(colon - s);
		const char *vs = colon + 1, *ve = e;
		trim(&vs, &ve);
		if (klen == 5 && memcmp(s, "title", 5) == 0)
			value_start(&v, K_TITLE, vs, ve);
		else if (klen == 4 && memcmp(s, "tags", 4) == 0)
			value_start(&v, K_TAGS, vs, ve);
		else
			value_start(&v, K_OTHER, vs, ve);
	}
	ps_buf_dispose(&v.text);
	free(*title);
	*title = NULL;
	ps_strv_dispose(tags);
	return false;
}

/* The text of the first level-1 ATX heading (`# Title`) outside fenced code, or NULL. */
static char *first_heading(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	char fence = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *ls = p, *le = nl ? nl : end;
		int indent = 0;

		p = nl ? nl + 1 : end;
		while (ls < le && *ls == ' ' && indent < 4)
			ls++, indent++;
		if (indent >= 4)
			continue;
		if (le - ls >= 3 && (*ls == '`' || *ls == '~') && ls[1] == *ls && ls[2] == *ls) {
			if (!fence)
				fence = *ls;
			else if (fence == *ls)
				fence = 0;
			continue;
		}
		if (fence || le - ls < 2 || ls[0] != '#' || (ls[1] != ' ' && ls[1] != '\t'))
			continue;
		const char *s = ls + 1, *e = le;
		trim(&s, &e);
		/* An optional closing sequence of #s, preceded by a space. */
		const char *c = e;
		while (c > s && c[-1] == '#')
			c--;
		if (c < e && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
			e = c;
			trim(&s, &e);
		}
		if (s < e)
			return utf8_cut(s, (size_t)(e - s), PS_MEMORY_MAX_TITLE);
	}
	return NULL;
}

void ps_memory_parse(struct ps_memory_entry *out, const char *path, const char *text, size_t len)
{
	struct ps_strv tags = { 0 };
	char *title = NULL;
	size_t body = 0;

	len = text ? strnlen(text, len) : 0;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) { /* a UTF-8 byte order mark */
		text += 3;
		len -= 3;
	}
	if (!front_matter(text, len, &title, &tags, &body))
		body = 0;
	if (title && !title[0]) {
		free(title);
		title = NULL;
	}
	if (title && strlen(title) > PS_MEMORY_MAX_TITLE) {
		char *cut = utf8_cut(title, strlen(title), PS_MEMORY_MAX_TITLE);
		free(title);
		title = cut;
	}
	if (!title)
		title = first_heading(text + body, len - body);
	if (!title) {
		const char *slash = path ? strrchr(path, '/') : NULL;
		const char *base = slash ? slash + 1 : path ? path : "";
		title = utf8_cut(base, strlen(base), PS_MEMORY_MAX_TITLE);
	}
	free(out->title);
	free(out->content);
	ps_strv_dispose(&out->tags);
	out->title = title;
	out->tags = tags;
	out->content = ps_strndup(text + body, len - body);
}

/* ---- globs ---- */

/* Matches one pattern token at *pp against byte c; advances *pp past the token on success. */
static bool token_match(const char **pp, const char *pe, char c)
{
	const char *p = *pp;

	if (*p == '?') {
		*pp = p + 1;
		return true;
	}
	if (*p == '\\' && p + 1 < pe) {
		*pp = p + 2;
		return p[1] == c;
	}
	if (*p == '[') {
		const char *q = p + 1;
		bool negate = false, hit = false;

		if (q < pe && (*q == '!' || *q == '^')) {
			negate = true;
			q++;
		}
		for (const char *first = q; q < pe && (*q != ']' || q == first); q++) {
			unsigned char lo = (unsigned char)*q, hi = lo;
			if (q + 2 < pe && q[1] == '-' && q[2] != ']') {
				hi = (unsigned char)q[2];
				q += 2;
			}
			if ((unsigned char)c >= lo && (unsigned char)c <= hi)
				hit = true;
		}
		if (q < pe) {                  /* a closed class */
			*pp = q + 1;
			return hit != negate;
		}
		/* An unclosed '[' is a literal. */
	}
	*pp = p + 1;
	return *p == c;
}

/* One path component against one glob component: `*` backtracks to its last position only. */
static bool component_match(const char *p, const char *pe, const char *s, const char *se)
{
	const char *star_p = NULL, *star_s = NULL;

	while (s < se) {
		const char *next = p;
		if (p < pe && *p == '*') {
			while (p < pe && *p == '*')
				p++;
			star_p = p;
			star_s = s;
			continue;
		}
		if (p < pe && token_match(&next, pe, *s)) {
			p = next;
			s++;
			continue;
		}
		if (!star_p)
			return false;
		p = star_p;
		s = ++star_s;
	}
	while (p < pe && *p == '*')
		p++;
	return p == pe;
}

struct span {
	const char *s, *e;
};

static struct span *split(const char *s, size_t *n)
{
	size_t count = 1;
	struct span *v;

	for (const char *p = s; *p; p++)
		count += *p == '/';
	v = ps_malloc(count * sizeof(*v));
	*n = 0;
	for (const char *p = s;; p++) {
		if (*p == '/' || !*p) {
			v[(*n)++] = (struct span){ s, p };
			if (!*p)
				break;
			s = p + 1;
		}
	}
	return v;
}

static bool is_globstar(const struct span *c)
{
	return c->e - c->s == 2 && c->s[0] == '*' && c->s[1] == '*';
}

bool ps_memory_glob_match(const char *glob, const char *path)
{
	struct span *g, *s;
	size_t ng, ns, gi = 0, si = 0, star_g = 0, star_s = 0;
	bool star = false, ok;

	if (!glob || !path || !*glob)
		return false;
	while (*glob == '/')
		glob++;
	g = split(glob, &ng);
	s = split(path, &ns);
	/* The same backtracking as within a component, one level up: `**` is the star, a
	 * component is the character. */
	while (si < ns) {
		if (gi < ng && is_globstar(&g[gi])) {
			star = true;
			star_g = ++gi;
			star_s = si;
			continue;
		}
		if (gi < ng && component_match(g[gi].s, g[gi].e, s[si].s, s[si].e)) {
			gi++;
			si++;
			continue;
		}
		if (!star)
			break;
		gi = star_g;
		si = ++star_s;
	}
	while (si == ns && gi < ng && is_globstar(&g[gi]))
		gi++;
	ok = si == ns && gi == ng;
	free(g);
	free(s);
	return ok;
}

bool ps_memory_globs_match(const struct ps_strv *globs, const char *path)
{
	for (size_t i = 0; globs && i < globs->n; i++)
		if (ps_memory_glob_match(globs->v[i], path))
			return true;
	return false;
}

/* ---- JSON ---- */

json_t *ps_memory_entry_to_json(const struct ps_memory_entry *e)
{
	json_t *o = json_object(), *tags = json_array();

	for (size_t i = 0; i < e->tags.n; i++)
		json_array_append_new(tags, ps_json_string(e->tags.v[i]));
	json_object_set_new(o, "id", json_integer(e->id));
	json_object_set_new(o, "project", ps_json_string(e->project));
	json_object_set_new(o, "source", ps_json_string(e->source));
	json_object_set_new(o, "source_ref", ps_json_string(e->source_ref));
	json_object_set_new(o, "title", ps_json_string(e->title));
	json_object_set_new(o, "tags", tags);
	json_object_set_new(o, "content", ps_json_string(e->content ? e->content : ""));
	json_object_set_new(o, "status", json_string(ps_memory_status_name(e->status)));
	json_object_set_new(o, "introduced_by_sync", ps_json_id(e->introduced_by_sync));
	json_object_set_new(o, "superseded_by_sync", ps_json_id(e->superseded_by_sync));
	json_object_set_new(o, "restored_from", ps_json_id(e->restored_from));
	json_object_set_new(o, "created_at", ps_json_time(e->created_at));
	json_object_set_new(o, "origin", json_string(ps_memory_origin_name(e->origin)));
	json_object_set_new(o, "sha", e->sha[0] ? json_string(e->sha) : json_null());
	json_object_set_new(o, "superseded_by_entry", ps_json_id(e->superseded_by_entry));
	json_object_set_new(o, "superseded_at", ps_json_time(e->superseded_at));
	json_object_set_new(o, "deleted", json_boolean(ps_memory_deleted(e)));
	if (e->snippet) {
		json_object_set_new(o, "snippet", ps_json_string(e->snippet));
		json_object_set_new(o, "rank", json_real(e->rank));
	}
	return o;
}
