/*
 * The memory entry every layer speaks (docs/architecture.md §7): its type, its limits, the
 * names of its states, and how a user's search text becomes a safe full-text query. Pure and
 * below the store, which keeps the entries; importing files as entries is core/memory.h.
 */
#ifndef PS_MODEL_MEMORY_H
#define PS_MODEL_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* Bounds on what a file (a peer) can make us keep or parse. */
#define PS_MEMORY_MAX_FRONT_MATTER (64 * 1024) /* bytes between the --- lines */
#define PS_MEMORY_MAX_FRONT_LINES 256
#define PS_MEMORY_MAX_TITLE 300                /* bytes; longer titles are cut (UTF-8 safe) */
#define PS_MEMORY_MAX_TAGS 64
#define PS_MEMORY_MAX_TAG 100                  /* bytes; longer tags are dropped */
#define PS_MEMORY_MAX_CONTENT (8 * 1024 * 1024)/* manual entries */
#define PS_MEMORY_MAX_QUERY 1000               /* bytes of search text */
#define PS_MEMORY_MAX_QUERY_WORDS 32

enum ps_memory_status {
	PS_MEMORY_ACTIVE,
	PS_MEMORY_SUPERSEDED,
};

/* Where an entry came from. */
enum ps_memory_origin {
	PS_MEMORY_FROM_SYNC,     /* imported from a file by a sync */
	PS_MEMORY_FROM_RESTORE,  /* a restored copy of an older version */
	PS_MEMORY_FROM_MANUAL,   /* written by hand (memory add, POST /projects/{name}/memory) */
};

struct ps_memory_entry {
	int64_t id;
	int64_t project_id;
	char *project;                 /* project name */
	enum ps_memory_origin origin;
	char *source;                  /* "git" | "github" | "manual" */
	char *source_ref;              /* the file's path; NULL for manual entries */
	char *title;
	struct ps_strv tags;
	char *content;
	char sha[PS_SHA_HEX];          /* the file's blob for entries from a sync (and their
					  restores); empty for manual entries */
	enum ps_memory_status status;
	int64_t introduced_by_sync;    /* 0: not introduced by a sync (restore, manual) */
	int64_t restored_from;         /* 0: not a restore */
	int64_t superseded_by_sync;    /* 0: active, or superseded by a restore */
	int64_t superseded_by_entry;   /* the entry that replaced it (0: none, e.g. file deleted) */
	int64_t superseded_at;         /* ms since epoch; 0 while active */
	int64_t created_at;
	/* Search results only. `snippet` marks matches with <mark>...</mark> (text not
	 * HTML-escaped); `rank` is FTS5's bm25 (lower is better; results are sorted by it). */
	char *snippet;
	double rank;
};

void ps_memory_entry_dispose(struct ps_memory_entry *e);
/* Disposes and frees a heap entry (NULL-safe). */
void ps_memory_entry_free(struct ps_memory_entry *e);
/* Disposes each of n entries and frees the array (NULL-safe). */
void ps_memory_entries_free(struct ps_memory_entry *v, size_t n);

const char *ps_memory_status_name(enum ps_memory_status s);
const char *ps_memory_origin_name(enum ps_memory_origin o);
int ps_memory_origin_parse(const char *name, enum ps_memory_origin *out);

/* Whether two entries hold the same note as a reader sees it: equal title, tags (in order) and
 * content. What a restore compares to tell an already-current version (store.h). */
bool ps_memory_same_text(const struct ps_memory_entry *a, const struct ps_memory_entry *b);

/*
 * Turns what a user typed into an FTS5 query that cannot carry syntax: the text is split at
 * white space, every piece that holds a letter or digit becomes a double-quoted phrase (quotes
 * inside doubled), and the phrases are ANDed. `"`, `-`, `*`, `(`, `NEAR`, `AND`, `OR`, `:` are
 * all just text. PS_EINVAL ("empty_query") when nothing searchable remains, PS_EINVAL
 * ("invalid_query") when the text is not valid UTF-8, PS_ETOOBIG for more than
 * PS_MEMORY_MAX_QUERY bytes. Words beyond PS_MEMORY_MAX_QUERY_WORDS are ignored.
 * *out is malloc'd.
 */
int ps_memory_fts_query(char **out, const char *user_query);
/* The same words, each phrase's last word also matching as a prefix (`"cach"*`): what a search
 * matches; ps_memory_fts_query's whole-word matches rank first (store.h). */
int ps_memory_fts_prefix_query(char **out, const char *user_query);

/* The checks a manual note passes (add and edit, both backends): PS_EINVAL for an empty or
 * multi-line title, too many or empty or over-long tags; PS_ETOOBIG for content over
 * PS_MEMORY_MAX_CONTENT. `content` and `tags` may be NULL (not checked). */
int ps_memory_check_note(const char *title, const char *content, const struct ps_strv *tags);

/* `in` without repeats, each tag where it first appears: the rule of imported front matter,
 * applied to the tags of manual notes too (add and edit, CLI and API). Each tag is taken as it
 * is stored, with U+FFFD for every byte that is not UTF-8 (ps_memory_tag_text), before it is
 * compared: two tags that differ only in such bytes are one tag. */
void ps_memory_tags_unique(struct ps_strv *out, const struct ps_strv *in);
/* `s` as a tag is stored and shown: valid UTF-8 unchanged, each invalid byte U+FFFD. The
 * caller frees it. */
char *ps_memory_tag_text(const char *s);

/* A manual note deleted by hand: superseded with no successor (neither an entry nor a sync). */
bool ps_memory_deleted(const struct ps_memory_entry *e);

#endif
