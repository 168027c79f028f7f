/*
 * Code search (core/grep.h): the pattern's index query, the PCRE2 matcher and the search loop.
 *
 * Exactness rests on one rule: the index query may only leave requirements out. The analysis
 * below walks the pattern and keeps a literal only where every match must contain it; anything
 * it does not fully understand ends the literal run (or, for syntax that changes how the rest
 * reads, such as the x flag, drops the whole query), so the worst it does is read more files.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/grep.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/project.h"
#include "model/json.h"
#include "core/memory.h"
#include "util/error.h"

/* Per line: backtracking steps, and the heap PCRE2 may take (KiB); a line that needs more is a
 * pattern too costly for a shared server, not a result. */
#define MATCH_LIMIT 5000000u
#define HEAP_LIMIT_KIB (64u * 1024)
#define JIT_STACK_MAX (4u * 1024 * 1024)

bool ps_grep_is_binary(const void *data, size_t len)
{
	return memchr(data, 0, len < PS_GREP_BINARY_PROBE ? len : PS_GREP_BINARY_PROBE) != NULL;
}

int ps_grep_index_blob(struct ps_store *s, const char *sha, const void *data, size_t len)
{
	return ps_store_code_index_put(s, sha, data, len, ps_grep_is_binary(data, len));
}

/* ---- the index query ---- */

void ps_code_query_free(struct ps_code_query *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->nkids; i++)
		ps_code_query_free(q->kids[i]);
	free(q->kids);
	free(q->literal);
	free(q);
}

/* A list of requirements that all hold (an AND under construction). */
struct reqs {
	struct ps_code_query **v;
	size_t n;
};

static void reqs_add(struct reqs *r, struct ps_code_query *q)
{
	if (!q)
		return;
	r->v = ps_realloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->v[r->n++] = q;
}

static void reqs_dispose(struct reqs *r)
{
	for (size_t i = 0; i < r->n; i++)
		ps_code_query_free(r->v[i]);
	free(r->v);
}

/* AND (or OR) of the list, taking it over; NULL for an empty list. */
static struct ps_code_query *reqs_take(struct reqs *r, enum ps_code_query_op op)
{
	struct ps_code_query *q;

	if (r->n == 0) {
		free(r->v);
		return NULL;
	}
	if (r->n == 1) {
		q = r->v[0];
		free(r->v);
		return q;
	}
	q = ps_calloc(1, sizeof(*q));
	q->op = op;
	q->kids = r->v;
	q->nkids = r->n;
	return q;
}

/* The literal run being read: ASCII characters that must appear in a row. */
struct run {
	char buf[256];
	size_t len;
};

static void run_flush(struct run *rn, struct reqs *r)
{
	if (rn->len >= 3) {
		struct ps_code_query *q = ps_calloc(1, sizeof(*q));
		q->op = PS_CODE_LITERAL;
		q->literal = ps_strndup(rn->buf, rn->len);
		reqs_add(r, q);
	}
	rn->len = 0;
}

static void run_push(struct run *rn, struct reqs *r, char c)
{
	/* Literals hold printable ASCII and tabs only: a binary blob's index document keeps no
	 * other bytes (store.h), so another control byte ends the literal. */
	if ((c < 0x20 && c != '\t') || c == 0x7f) {
		run_flush(rn, r);
		return;
	}
	if (rn->len == sizeof(rn->buf))
		run_flush(rn, r);
	rn->buf[rn->len++] = c;
}

struct parser {
	const char *p;
	bool bail;     /* syntax this analysis does not follow: no query at all */
};

/* Reads a quantifier at p->p if there is one: its minimum (0 or more), or -1 for none. */
static long quantifier(struct parser *ps)
{
	const char *p = ps->p;
	long min = -1;

	if (*p == '*' || *p == '?') {
		min = 0;
		p++;
	} else if (*p == '+') {
		min = 1;
		p++;
	} else if (*p == '{' && isdigit((unsigned char)p[1])) {
		/* {n}, {n,}, {n,m}; anything else is a literal '{' to PCRE2 10.42. */
		const char *q = p + 1;
		long n = 0;
		while (isdigit((unsigned char)*q) && n < 100000)
			n = n * 10 + (*q++ - '0');
		if (*q == ',') {
			q++;
			while (isdigit((unsigned char)*q))
				q++;
		}
		if (*q != '}')
			return -1;
		min = n;
		p = q + 1;
	} else {
		return -1;
	}
	if (*p == '+' || *p == '?')
		p++; /* possessive or lazy: the same minimum */
	ps->p = p;
	return min;
}

/* Skips a character class starting at '['. False when it does not end. */
static bool skip_class(struct parser *ps)
{
	const char *p = ps->p + 1;

	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	for (; *p; p++) {
		if (*p == '\\') {
			if (p[1] == 'Q' || !p[1])
				return false;
			p++;
		} else if (*p == '[' && p[1] == ':') {
			const char *end = strstr(p + 2, ":]");
			if (!end)
				return false;
			p = end + 1;
		} else if (*p == ']') {
			ps->p = p + 1;
			return true;
		}
	}
	return false;
}

/* Escapes that stand for one unknown character or a zero-width test, and take no argument. */
static bool simple_escape(char c)
{
	return c && strchr("dDwWsSbBAzZGhHvVRXKntrfeaN", c) != NULL;
}

static struct ps_code_query *parse_alt(struct parser *ps, int depth);

/* Skips a group whose content is not analysed (lookaround, named or special group). */
static bool skip_group(struct parser *ps)
{
	int level = 0;

	while (*ps->p) {
		char c = *ps->p;
		if (c == '\\') {
			if (!ps->p[1] || ps->p[1] == 'Q')
				return false;
			ps->p += 2;
			continue;
		}
		if (c == '[') {
			if (!skip_class(ps))
				return false;
			continue;
		}
		ps->p++;
		if (c == '(')
			level++;
		else if (c == ')' && --level == 0)
			return true;
	}
	return false;
}

/* A sequence up to ')' or '|' or the end: the AND of what it requires, or NULL. */
static struct ps_code_query *parse_seq(struct parser *ps, int depth)
{
	struct reqs r = { 0 };
	struct run rn = { .len = 0 };

	while (*ps->p && *ps->p != ')' && *ps->p != '|' && !ps->bail) {
		unsigned char c = (unsigned char)*ps->p;
		long min;

		if (c == '(') {
			struct ps_code_query *sub = NULL;
			const char *g = ps->p;

			run_flush(&rn, &r);
			if (g[1] == '?' && (isalpha((unsigned char)g[2]) || g[2] == '-' || g[2] == '^') &&
			    g[2] != 'P' && g[2] != 'R' && g[2] != 'C') {
				/* Option letters, (?i) or (?i:...). Case never matters to the index,
				 * but x changes how everything after it reads. */
				const char *q = g + 2;
				while (isalpha((unsigned char)*q) || *q == '-' || *q == '^') {
					if (*q == 'x' || *q == 'n' || *q == 'J')
						ps->bail = true;
					q++;
				}
				if (ps->bail)
					break;
				if (*q == ')') {
					ps->p = q + 1;
					continue;
				}
				if (*q != ':') {
					ps->bail = true;
					break;
				}
				ps->p = q + 1;
				sub = parse_alt(ps, depth + 1);
			} else if (g[1] == '?' && g[2] == ':') {
				ps->p = g + 3;
				sub = parse_alt(ps, depth + 1);
			} else if (g[1] != '?' && g[1] != '*') {
				ps->p = g + 1;
				sub = parse_alt(ps, depth + 1);
			} else {
				if (!skip_group(ps))
					ps->bail = true;
				if ((min = quantifier(ps)) < 0)
					min = 1;
				continue;
			}
			if (ps->bail || *ps->p != ')') {
				ps_code_query_free(sub);
				ps->bail = true;
				break;
			}
			ps->p++;
			min = quantifier(ps);
			if (min == 0)
				ps_code_query_free(sub);
			else
				reqs_add(&r, sub);
			continue;
		}
		if (c == '[') {
			run_flush(&rn, &r);
			if (!skip_class(ps)) {
				ps->bail = true;
				break;
			}
			quantifier(ps);
			continue;
		}
		if (c == '\\') {
			char e = ps->p[1];
			if (e == 'Q') {
				/* \Q...\E: every character literal. */
				const char *end = strstr(ps->p + 2, "\\E");
				const char *q = ps->p + 2, *stop = end ? end : q + strlen(q);
				for (; q < stop; q++) {
					if ((unsigned char)*q >= 0x80) {
						run_flush(&rn, &r);
						continue;
					}
					run_push(&rn, &r, *q);
				}
				ps->p = end ? end + 2 : stop;
				if (rn.len && (min = quantifier(ps)) >= 0) {
					rn.len--; /* the quantifier binds to the last one */
					run_flush(&rn, &r);
				}
				continue;
			}
			if (isalnum((unsigned char)e)) {
				/* A stray \E is nothing to PCRE2, so a quantifier after it binds to
				 * the atom before: too subtle to follow. */
				if (!simple_escape(e) || e == 'E') {
					ps->bail = true; /* \x41, \1, \p{..}: arguments we do not read */
					break;
				}
				run_flush(&rn, &r);
				ps->p += 2;
				quantifier(ps);
				continue;
			}
			if (!e) {
				ps->bail = true;
				break;
			}
			c = (unsigned char)e;
			ps->p += 2;
		} else if (c == '.' || c == '^' || c == '$' || c >= 0x80) {
			run_flush(&rn, &r);
			ps->p++;
			quantifier(ps);
			continue;
		} else if (c == '*' || c == '+' || c == '?') {
			ps->bail = true; /* a quantifier with nothing to repeat: PCRE2 refuses it */
			break;
		} else {
			ps->p++;
		}
		if (c >= 0x80) {
			run_flush(&rn, &r);
			quantifier(ps);
			continue;
		}
		/* One literal character; a quantifier after it changes what is certain. */
		min = quantifier(ps);
		if (min == 0) {
			run_flush(&rn, &r);
		} else if (min > 0) {
			run_push(&rn, &r, (char)c);
			run_flush(&rn, &r);
			run_push(&rn, &r, (char)c);
		} else {
			run_push(&rn, &r, (char)c);
		}
	}
	run_flush(&rn, &r);
	if (ps->bail) {
		reqs_dispose(&r);
		return NULL;
	}
	return reqs_take(&r, PS_CODE_AND);
}

static struct ps_code_query *parse_alt(struct parser *ps, int depth)
{
	struct reqs r = { 0 };
	bool open = false; /* a branch requires nothing: so does the whole */

	if (depth > 50) {
		ps->bail = true;
		return NULL;
	}
	for (;;) {
		struct ps_code_query *b = parse_seq(ps, depth);
		if (!b)
			open = true;
		else
			reqs_add(&r, b);
		if (ps->bail || *ps->p != '|')
			break;
		ps->p++;
	}
	if (open || ps->bail) {
		reqs_dispose(&r);
		return NULL;
	}
	return reqs_take(&r, PS_CODE_OR);
}

void ps_grep_query(const char *pattern, bool regex, struct ps_code_query **out)
{
	*out = NULL;
	if (!regex) {
		struct reqs r = { 0 };
		struct run rn = { .len = 0 };
		for (const char *p = pattern; *p; p++) {
			if ((unsigned char)*p >= 0x80)
				run_flush(&rn, &r);
			else
				run_push(&rn, &r, *p);
		}
		run_flush(&rn, &r);
		*out = reqs_take(&r, PS_CODE_AND);
		return;
	}
	struct parser ps = { .p = pattern };
	struct ps_code_query *q = parse_alt(&ps, 0);
	if (ps.bail || *ps.p) {
		/* Stopped early (an unbalanced ')' and the like): trust nothing. */
		ps_code_query_free(q);
		return;
	}
	*out = q;
}

/* ---- the matcher ---- */

struct matcher {
	pcre2_code *code;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit_stack;
	/* A case-sensitive literal is matched with memmem, as it is bytes to git as well. */
	const char *literal;
	size_t literal_len;
};

static void matcher_dispose(struct matcher *m)
{
	pcre2_match_data_free(m->md);
	pcre2_match_context_free(m->mctx);
	pcre2_jit_stack_free(m->jit_stack);
	pcre2_code_free(m->code);
}

static int matcher_init(struct matcher *m, const struct ps_grep_opts *o)
{
	/* git 2.39 in a UTF-8 locale (grep.c compile_pcre2_pattern): UTF matching that tolerates
	 * invalid bytes, except for a case-sensitive literal. */
	uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
	int err;
	PCRE2_SIZE off;
	size_t bad;

	memset(m, 0, sizeof(*m));
	if (!o->regex && !o->ignore_case) {
		m->literal = o->pattern;
		m->literal_len = strlen(o->pattern);
		return 0;
	}
	/* PCRE2 in UTF mode takes only a UTF-8 pattern; its own words ("invalid regular
	 * expression ... UTF-8 error") misnamed a literal -i search. Raw bytes (a Latin-1 file)
	 * are still found by the case-sensitive literal above, as `git grep -F` finds them. */
	if ((bad = ps_utf8_first_bad(o->pattern)) != SIZE_MAX)
		return ps_error_set(PS_EINVAL, "invalid_pattern",
				    "the pattern is not valid UTF-8 (byte 0x%02x at offset %zu): a "
				    "regular expression or case-insensitive search needs UTF-8 text; "
				    "only a case-sensitive fixed-string search matches other bytes",
				    (unsigned char)o->pattern[bad], bad);
	if (!o->regex)
		options |= PCRE2_LITERAL;
	if (o->ignore_case)
		options |= PCRE2_CASELESS;
	m->code = pcre2_compile((PCRE2_SPTR)o->pattern, PCRE2_ZERO_TERMINATED, options, &err, &off,
				NULL);
	if (!m->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(err, msg, sizeof(msg));
		return ps_error_set(PS_EINVAL, "invalid_pattern",
				    "invalid regular expression at offset %zu: %s", (size_t)off,
				    (const char *)msg);
	}
	m->md = pcre2_match_data_create(1, NULL);
	m->mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(m->mctx, MATCH_LIMIT);
	pcre2_set_heap_limit(m->mctx, HEAP_LIMIT_KIB);
	if (pcre2_jit_compile(m->code, PCRE2_JIT_COMPLETE) == 0) {
		m->jit_stack = pcre2_jit_stack_create(32 * 1024, JIT_STACK_MAX, NULL);
		if (m->jit_stack)
			pcre2_jit_stack_assign(m->mctx, NULL, m->jit_stack);
	}
	return 0;
}

/* 1: the line matches (*col = 0-based start), 0: it does not, < 0: a limit was hit. */
static int matcher_line(struct matcher *m, const char *line, size_t len, size_t *col)
{
	int rc;

	if (m->literal) {
		const char *hit = m->literal_len ? memmem(line, len, m->literal, m->literal_len)
						 : line;
		if (!hit)
			return 0;
		*col = (size_t)(hit - line);
		return 1;
	}
	rc = pcre2_match(m->code, (PCRE2_SPTR)line, len, 0, 0, m->md, m->mctx);
	if (rc >= 0 || rc == PCRE2_ERROR_NOMATCH) {
		if (rc < 0)
			return 0;
		*col = pcre2_get_ovector_pointer(m->md)[0];
		return 1;
	}
	if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
	    rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT ||
	    rc == PCRE2_ERROR_NOMEMORY)
		return ps_error_set(PS_EFAIL, "pattern_too_costly",
				    "the pattern is too costly to match (it exhausted the match limit "
				    "on one line): simplify it, e.g. avoid nested repetition");
	{
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(rc, msg, sizeof(msg));
		return ps_error_set(PS_EFAIL, "match_failed", "matching failed: %s",
				    (const char *)msg);
	}
}

json_t *ps_grep_match_to_json(const struct ps_grep_match *m)
{
	json_t *j;

	if (m->binary)
		j = json_pack("{s:o, s:n, s:n, s:n, s:b}", "path", ps_json_string(m->path), "line",
			      "column", "text", "binary", 1);
	else
		j = json_pack("{s:o, s:I, s:I, s:o, s:b}", "path", ps_json_string(m->path), "line",
			      (json_int_t)m->line, "column", (json_int_t)m->column, "text",
			      ps_json_stringn(m->text, m->text_len), "binary", 0);
	/* As for files and changes: `path` shows a name that is not UTF-8 with U+FFFD, which
	 * names no file, so a result could not be opened without its exact bytes. */
	if (j)
		ps_json_set_raw(j, "path_raw", m->path);
	return j;
}

/* ---- the search ---- */

static int timed_out(const struct ps_grep_opts *o)
{
	return ps_error_set(PS_EFAIL, "search_timeout",
			    "the search took longer than %.1f s and was stopped: use a more "
			    "specific pattern or --path (or a larger --timeout)",
			    (double)(o->timeout_ms > 0 ? o->timeout_ms : PS_GREP_DEFAULT_TIMEOUT_MS) /
				    1000.0);
}

/* The part of a glob before its first wildcard: every matching path starts with it. */
static char *glob_prefix(const char *glob)
{
	size_t n = 0;

	while (*glob == '/')
		glob++;
	while (glob[n] && !strchr("*?[\\", glob[n]))
		n++;
	return ps_strndup(glob, n);
}

/* The length of a --path that is a plain path ("src", "src/", "/src", ".", "./src"), without
 * its slashes and leading "./" around; -1 for a glob. */
static ssize_t plain_path(const char *spec, const char **start)
{
	size_t n;

	if (strpbrk(spec, "*?[\\"))
		return -1;
	/* git reads "./src" (and "././src", ".//src") as "src": stored paths have no "./". */
	for (;;) {
		while (*spec == '/')
			spec++;
		if (spec[0] != '.' || spec[1] != '/')
			break;
		spec += 2;
	}
	n = strlen(spec);
	while (n > 0 && spec[n - 1] == '/')
		n--;
	if (n == 1 && spec[0] == '.')
		n = 0;
	*start = spec;
	return (ssize_t)n;
}

/*
 * Whether `path` is selected by --path `spec`. A glob matches the whole path (ps_memory_glob
 * rules); a plain path is git's pathspec: the file itself or everything under the directory
 * it names ("src" selects src/a.c, "." everything), so `grep --path src` finds what
 * `git grep -- src` does instead of nothing.
 */
static bool path_selected(const char *spec, const char *path)
{
	const char *dir;
	ssize_t n = plain_path(spec, &dir);

	if (n < 0)
		return ps_memory_glob_match(spec, path);
	return n == 0 || (strncmp(path, dir, (size_t)n) == 0 &&
			  (path[n] == '\0' || path[n] == '/'));
}

/* Candidates of the first batch when the matches wanted are counted (grows 4x a batch). */
#define FIRST_BATCH 256

struct search {
	const struct ps_grep_opts *o;
	struct matcher m;
	ps_grep_cb cb;
	void *ud;
	int64_t deadline;
	int64_t found;
	struct ps_grep_info *info;
};

/* Searches one file's content; returns the callback's stop value, or < 0. */
static int search_file(struct search *se, const struct ps_file *f, const char *data, size_t len)
{
	const struct ps_grep_opts *o = se->o;
	bool binary = ps_grep_is_binary(data, len);
	bool same = o->after_path && strcmp(f->path, o->after_path) == 0;
	const char *bol = data, *end = data + len;
	int64_t lno = 1;
	int rc;

	if (same && binary)
		return 0; /* its one result was on an earlier page */
	while (bol < end) {
		const char *nl = memchr(bol, '\n', (size_t)(end - bol));
		const char *eol = nl ? nl : end;
		size_t col = 0;

		if ((lno & 4095) == 0 && ps_mono_ms() > se->deadline)
			return timed_out(o);
		if (!(same && lno <= o->after_line)) {
			if (se->m.literal && !se->m.literal_len) {
				col = 0;
				rc = 1;
			} else if (se->m.literal) {
				/* Jump to the next line holding the literal, as git's look_ahead. */
				const char *hit = memmem(bol, (size_t)(end - bol), se->m.literal,
							 se->m.literal_len);
				if (!hit)
					break;
				if (hit >= eol) {
					const char *nbol = hit;
					while (nbol > bol && nbol[-1] != '\n')
						nbol--;
					for (const char *q = bol; q < nbol; q++)
						lno += *q == '\n';
					bol = nbol;
					continue;
				}
				col = (size_t)(hit - bol);
				rc = 1;
			} else if ((rc = matcher_line(&se->m, bol, (size_t)(eol - bol), &col)) < 0) {
				return rc;
			}
			if (rc == 1) {
				struct ps_grep_match mt = {
					.path = f->path, .line = binary ? 0 : lno,
					.column = binary ? 0 : (int64_t)col + 1, .text = binary ? NULL : bol,
					.text_len = binary ? 0 : (size_t)(eol - bol), .binary = binary,
				};
				if (o->max > 0 && se->found == o->max) {
					se->info->more = true;
					return 1;
				}
				se->found++;
				if ((rc = se->cb(se->ud, &mt)) != 0)
					return rc;
				if (binary)
					return 0;
			}
		}
		if (!nl)
			break;
		bol = nl + 1;
		lno++;
	}
	return 0;
}

int ps_grep_run(struct ps_store *s, const struct ps_project *p, const struct ps_grep_opts *o,
		ps_grep_cb cb, void *ud, struct ps_grep_info *info)
{
	struct search se = { .o = o, .cb = cb, .ud = ud, .info = info };
	struct ps_code_query *q = NULL;
	struct ps_code_candidate *cand = NULL;
	size_t ncand = 0, batch;
	char *prefix = NULL, *from = NULL;
	int64_t bound = -1;
	bool bound_known = false;
	int rc;

	memset(info, 0, sizeof(*info));
	if (!o->pattern || !*o->pattern)
		return ps_error_set(PS_EINVAL, "invalid_pattern", "the pattern is empty");
	if (strchr(o->pattern, '\n'))
		return ps_error_set(PS_EINVAL, "invalid_pattern",
				    "the pattern contains a newline: search one line at a time");
	if ((rc = matcher_init(&se.m, o)) < 0)
		return rc;
	se.deadline = ps_mono_ms() + (o->timeout_ms > 0 ? o->timeout_ms : PS_GREP_DEFAULT_TIMEOUT_MS);
	ps_grep_query(o->pattern, o->regex, &q);
	info->scanned = !q || p->no_code_index;
	if (o->path_glob && *o->path_glob) {
		const char *dir;
		ssize_t n = plain_path(o->path_glob, &dir);
		prefix = n < 0 ? glob_prefix(o->path_glob) : n > 0 ? ps_strndup(dir, (size_t)n) : NULL;
	}
	/*
	 * With --max (or a page of the API) the candidates come in batches, in path order, each
	 * from just after the last one: a pattern that most files hold finds its first matches in
	 * the first few files, and the store need not list (and sort) the whole snapshot for them.
	 * Batches grow, as each one runs the index query again. Later batches name the sync the
	 * first resolved, so a sync finishing meanwhile changes nothing.
	 */
	batch = o->max > 0 ? FIRST_BATCH : 0;
	from = o->after_path ? ps_strdup(o->after_path) : NULL;
	for (int64_t at = o->at;; at = info->sync_id) {
		rc = ps_store_code_candidates(s, p->id, at, p->no_code_index ? NULL : q, prefix, from,
					      batch, &info->sync_id, &cand, &ncand);
		if (rc < 0)
			goto out;
		for (size_t i = 0; i < ncand && rc == 0; i++) {
			const struct ps_file *f = &cand[i].file;
			void *data = NULL;
			size_t len = 0;

			if (o->path_glob && *o->path_glob && !path_selected(o->path_glob, f->path))
				continue;
			if (ps_mono_ms() > se.deadline) {
				rc = timed_out(o);
				break;
			}
			if ((rc = ps_project_blob_get(s, p, f->sha, f->size, &data, &len)) < 0) {
				if (rc != PS_ENOTFOUND)
					break;
				ps_error_clear();
				/* Kept as metadata only: nothing to search. Lost: skipped too (the
				 * other files still answer), but counted, so the caller says so. */
				if (!bound_known) {
					bound = ps_project_blob_bound(s, p, info->sync_id);
					bound_known = true;
				}
				if (ps_project_blob_lost(bound, f->size))
					info->missing++;
				rc = 0;
				continue;
			}
			info->candidates++;
			rc = search_file(&se, f, data, len);
			free(data);
		}
		if (rc != 0 || batch == 0 || ncand < batch)
			break;
		/* The smallest path after the last one: paths hold no NUL. */
		free(from);
		from = ps_asprintf("%s\x01", cand[ncand - 1].file.path);
		ps_code_candidates_free(cand, ncand);
		cand = NULL;
		ncand = 0;
		batch *= 4;
	}
	if (rc == 1 && info->more)
		rc = 0;
out:
	ps_code_candidates_free(cand, ncand);
	ps_code_query_free(q);
	free(prefix);
	free(from);
	matcher_dispose(&se.m);
	return rc;
}

int ps_grep_content(const struct ps_grep_opts *o, const char *path, const void *data, size_t len,
		    ps_grep_cb cb, void *ud)
{
	struct ps_grep_info info = { 0 };
	struct search se = { .o = o, .cb = cb, .ud = ud, .info = &info };
	struct ps_file f = { .path = (char *)path };
	int rc;

	if (!o->pattern || !*o->pattern || strchr(o->pattern, '\n'))
		return ps_error_set(PS_EINVAL, "invalid_pattern", "the pattern is empty or spans "
				    "lines");
	if ((rc = matcher_init(&se.m, o)) < 0)
		return rc;
	se.deadline = ps_mono_ms() + (o->timeout_ms > 0 ? o->timeout_ms : PS_GREP_DEFAULT_TIMEOUT_MS);
	rc = search_file(&se, &f, data, len);
	matcher_dispose(&se.m);
	return rc == 1 && info.more ? 0 : rc;
}
