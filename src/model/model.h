/*
 * The words of projsync as C types: project, sync, file (one file version of a snapshot),
 * change, event. Every part speaks these; the store fills them, the pipeline produces them, the
 * CLI and the server print them with model/json.h. Structures returned through `**out` belong to
 * the caller and are released with the matching ps_*_free (NULL-safe).
 */
#ifndef PS_MODEL_MODEL_H
#define PS_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

#define PS_DEFAULT_MAX_BLOB_SIZE (8 * 1024 * 1024)
/* The highest max_blob_size (256 MiB). A stored blob is at most its content's size (the codec
 * keeps raw what zstd does not shrink), and the tightest place it must fit is PostgreSQL's
 * text form of bytea, which `store copy` reads: 2n + 2 hex characters within its 1 GiB
 * allocation limit, so n under 512 MiB. SQLite's limit is 1e9 bytes and libpq's lengths are
 * ints. Half that leaves room, and bounds what a sync holds per blob (content, its encoding
 * and a delta base: about 3x). */
#define PS_MAX_BLOB_SIZE_LIMIT (256 * 1024 * 1024)
/* The highest keep_days: 100 years, far past any retention anyone means; days in ms must not
 * overflow the cut-off's arithmetic. */
#define PS_MAX_KEEP_DAYS 36500
#define PS_DEFAULT_MEMORY_GLOB ".memory/**/*.md"

/* Git file modes as stored and shown (as octal strings in JSON). */
#define PS_MODE_TREE 0040000u
#define PS_MODE_FILE 0100644u
#define PS_MODE_EXEC 0100755u
#define PS_MODE_LINK 0120000u
#define PS_MODE_COMMIT 0160000u /* submodule */

struct ps_project {
	int64_t id;
	char *name;
	char *source;
	char *branch;                 /* selected branch; NULL follows the source's default */
	int64_t max_blob_size;
	struct ps_strv memory_globs;
	int64_t last_sync_id;         /* last succeeded sync, 0 if none */
	char *last_commit;            /* its commit; NULL if none or the repository was empty */
	char *last_error_code;        /* of the last failed sync since the last success */
	char *last_error_message;
	int64_t failures_in_row;
	int64_t created_at;           /* ms since epoch */
	/* Schedule (model/schedule.h): every_ms 0 and !every_auto = off (syncs start only by hand,
	 * API or webhook); every_auto adapts interval_ms within [auto_min_ms, auto_max_ms]. */
	int64_t every_ms;
	bool every_auto;
	int64_t auto_min_ms, auto_max_ms;
	int64_t interval_ms;          /* the interval in force (auto: the adapted one); 0 = off */
	int64_t next_sync_at;         /* when the scheduler queues its next sync; 0 = never */
	int64_t last_check_at;        /* when its last sync ended, whatever started it; 0 = never */
	int64_t max_failures;         /* failures in a row before pausing; 0 = the server's */
	bool paused;                  /* state `paused`: no scheduled syncs until resumed */
	int64_t paused_at;
	char *paused_reason;
	/* Retention (core/retention.h): 0 = no limit of that kind; both 0 keeps everything. */
	int64_t keep_syncs;
	int64_t keep_days;
	bool no_code_index;           /* `--no-code-index`: its blobs are not indexed for grep */
	bool code_index_pending;      /* its next sync indexes stored blobs the index lacks */
};

enum ps_sync_status {
	PS_SYNC_QUEUED,
	PS_SYNC_RUNNING,
	PS_SYNC_SUCCEEDED,
	PS_SYNC_FAILED,
	PS_SYNC_CANCELLED,
};

enum ps_phase {
	PS_PHASE_NONE = 0,
	PS_PHASE_PREPARE = 1,
	PS_PHASE_SCAN = 2,
	PS_PHASE_FETCH = 3,
	PS_PHASE_IMPORT = 4,
	PS_PHASE_FINALIZE = 5,
};
#define PS_PHASE_COUNT 5

struct ps_counts {
	int64_t added;
	int64_t modified;
	int64_t deleted;
	int64_t renamed;
	int64_t files;   /* files in the snapshot after this sync */
};

/* The author or the committer of a commit. */
struct ps_signature {
	char *name;
	char *email;
	int64_t date;                 /* ms since epoch (UTC; git's zone offset is not kept) */
};

/* One commit as `projsync log` shows it. */
struct ps_commit {
	char sha[PS_SHA_HEX];
	char *parents;                /* the parents' ids, space-separated ("" for a root commit) */
	struct ps_signature author, committer;
	char *subject;                /* git's %s: the message's first paragraph on one line */
	char *message;                /* the whole message, at most PS_COMMIT_MESSAGE_MAX bytes */
};

/* A sync stores at most this many commits of its range (newest first), like one page of
 * GitHub's compare. */
#define PS_COMMITS_MAX 250
#define PS_COMMIT_MESSAGE_MAX (64 * 1024)

/* The commits of a sync's range as a source lists them (source.h `commits`). */
struct ps_commit_list {
	struct ps_commit *v;          /* newest first; v[0] is the head when n > 0 */
	size_t n;
	int64_t total;                /* commits in the range; -1 unknown */
	bool truncated;               /* v is not the whole range (more than the bound, or history
				       * the source cannot see) */
};

struct ps_sync {
	int64_t id;
	int64_t project_id;
	char *project;                /* project name */
	char *branch;
	enum ps_sync_status status;
	enum ps_phase phase;
	char *commit;                 /* head commit synced (NULL until known, or empty repository) */
	char *tree;                   /* its root tree */
	int64_t previous_sync_id;     /* 0 for the first sync of a project */
	int64_t base_sync_id;         /* the last succeeded sync this one diffed against, 0 if none */
	char *trigger;                /* cli | api | webhook | schedule */
	struct ps_counts counts;
	int64_t bytes;                /* content bytes fetched */
	int64_t requests;             /* upstream requests made */
	bool up_to_date;              /* succeeded without a new snapshot: the head had not moved */
	int64_t skipped_large;        /* files kept as metadata only (over the size limit) */
	char *error_code;
	char *error_message;
	int64_t created_at, started_at, finished_at; /* ms since epoch, 0 = not yet */
	int64_t attempt;              /* PostgreSQL: the run's fencing token, raised by a takeover
				       * (0 on SQLite: never checked) */
	/* The head commit (sha = `commit`; parents and message not kept here), NULL when unknown
	 * (not yet synced, an empty repository, a sync from before schema 11). */
	struct ps_commit *head_commit;
	int64_t commit_count;         /* commits since the previous succeeded sync; -1 unknown */
	bool commits_truncated;       /* the stored list (`projsync log`) is not all of them */
	/* A run of up-to-date scheduled checks is kept as one row (store.h, ps_store_sync_finalize):
	 * how many checks this row stands for (1 for every other sync; 0 is read as 1) and when
	 * the first of them ended (0: this row stands for itself, finished_at). */
	int64_t checks;
	int64_t first_check_at;
};

struct ps_file {
	char *path;
	uint32_t mode;
	char sha[PS_SHA_HEX];
	int64_t size;                 /* -1 for submodules */
};

enum ps_change_status {
	PS_CHANGE_ADDED,
	PS_CHANGE_MODIFIED,
	PS_CHANGE_DELETED,
	PS_CHANGE_RENAMED,
	PS_CHANGE_TYPE_CHANGED,
};

struct ps_change {
	enum ps_change_status status;
	char *path;                   /* new path (the old one for deletions) */
	char *previous_path;          /* renames only */
	char sha[PS_SHA_HEX];         /* empty for deletions */
	char previous_sha[PS_SHA_HEX];/* empty for additions */
	uint32_t mode, previous_mode; /* 0 where absent */
	int64_t size;                 /* of the new blob, -1 unknown/submodule */
};

enum ps_event_kind {
	PS_EVENT_QUEUED,
	PS_EVENT_PHASE,
	PS_EVENT_PROGRESS,
	PS_EVENT_WARNING,
	PS_EVENT_SUCCEEDED,
	PS_EVENT_FAILED,
	PS_EVENT_CANCELLED,
};

struct ps_event {
	int64_t sync_id;
	int64_t seq;
	enum ps_event_kind kind;
	enum ps_phase phase;
	double fraction;
	int64_t files_done, files_total;
	int64_t bytes;
	int64_t requests;
	int64_t elapsed_ms;
	char *message;                /* warnings and failures */
	struct ps_sync *summary;      /* end events */
	int64_t attempt;              /* > 0: store only while the sync is at this attempt (a run's
				       * own events on PostgreSQL); never part of the JSON */
};

void ps_project_free(struct ps_project *p);
void ps_commit_dispose(struct ps_commit *c);
void ps_commit_free(struct ps_commit *c);
void ps_commits_free(struct ps_commit *v, size_t n);
void ps_commit_list_dispose(struct ps_commit_list *l);
/* A deep copy (NULL for NULL). */
struct ps_commit *ps_commit_clone(const struct ps_commit *c);
/*
 * git's subject (`%s`) of a commit message: blank lines at its start skipped, then the lines of
 * the first paragraph with their trailing white space removed, joined by one space. A new
 * string owned by the caller. ps_commit_message_bounded: a copy of the message, cut to at most
 * PS_COMMIT_MESSAGE_MAX bytes at a UTF-8 character boundary.
 */
char *ps_commit_subject(const char *msg, size_t len);
char *ps_commit_message_bounded(const char *msg, size_t len);
void ps_sync_free(struct ps_sync *s);
void ps_file_dispose(struct ps_file *f);
void ps_change_dispose(struct ps_change *c);
void ps_event_dispose(struct ps_event *e);

const char *ps_sync_status_name(enum ps_sync_status s);
/* Whether `s` is an up-to-date sync that a prune has made the first of its project's history:
 * its counts then hold its whole snapshot (what `changes` lists for it), not what it found.
 * Only a prune clears the previous sync of a sync that had a base to be up to date with; a
 * sync that brought changes and became the first looks like a project's first sync, so it is
 * not told apart (no store row records the prune). */
bool ps_sync_first_kept(const struct ps_sync *s);
int ps_sync_status_parse(const char *name, enum ps_sync_status *out);
const char *ps_phase_name(enum ps_phase p);
int ps_phase_parse(const char *name, enum ps_phase *out);
const char *ps_change_status_name(enum ps_change_status s);
const char *ps_event_kind_name(enum ps_event_kind k);
bool ps_event_is_final(enum ps_event_kind k);
/* "100644", "120000", ...; `out` holds at least 8 bytes. */
void ps_mode_string(uint32_t mode, char *out);
/* The GitHub tree-entry type of a mode: "blob", "tree" or "commit". */
const char *ps_mode_type(uint32_t mode);
/*
 * The mode git itself makes of a mode read from a tree object (git's canon_mode): a regular
 * file is 100755 when its owner-execute bit is set and 100644 otherwise, any symlink 120000,
 * any directory 040000, and every other type a submodule (160000), so 120777 reads as 120000,
 * 100611 as 100644 and 140000 as 160000, exactly as `git ls-tree` shows them. Sources pass
 * every mode through it, so crafted trees never reach the store with a mode nothing else knows.
 */
uint32_t ps_mode_canonical(uint32_t raw);

#endif
