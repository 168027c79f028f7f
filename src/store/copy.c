/*
 * `projsync store copy FROM TO`: a whole store into an empty one, between any two backends, as
 * raw rows through store.h (ps_store_rows_each / ps_store_rows_insert), so neither backend knows
 * the other. The tables are listed here once, parents before children; ids are copied as they
 * are (the sync chain, restored_from links and superseded_by pointers stay true), and each
 * identity table's id generator is moved past them afterwards.
 *
 * Adding a table to the store: add it to `tables` below with its columns (the same names on
 * both backends; a column only one backend has stays out), its key, whether its first column
 * is a generated id, and a batch size (small when rows hold content). Derived data (SQLite's
 * memory_fts, PostgreSQL's tsvector column) is not copied: the target builds its own. Per-node
 * state (PostgreSQL's nodes table, syncs.attempt) is not copied either.
 *
 * The code index is derived data too, but costly to rebuild (every blob read and tokenized
 * again) and in one format on both backends (store/codeindex.h): it moves as it is, ids
 * included, so a search on the copy reads what it read on the source. The rows' meaning does
 * not depend on anything the copy renumbers: code_blobs names blobs by SHA and postings name
 * code_blobs ids, which move unchanged. Neutrally, code_blobs is (id, sha as its 20 bytes,
 * binary) and code_postings (seg, first, data); SQLite packs (seg, first) into one key and
 * PostgreSQL names `binary` is_binary, which their row functions translate. The backend's count
 * of unindexed blobs (code_unindexed) follows from its own triggers, and the next code_blobs id
 * is above every id a segment holds (ps_store_rows_done), as each backend's index_put keeps it.
 *
 * Contract with the backends' row functions (sqlite_rows.c, pg_rows.c) for file versions and
 * directory trees, whatever the backend's layout (schema 26 names a version's directory by id,
 * docs/architecture.md): the row interface speaks FULL PATHS. `file_versions` moves as
 * (id, project_id, path, mode, sha, size, introduced_by, superseded_by) and `dir_trees` as
 * (id, project_id, path, tree_sha, introduced_by, superseded_by), `path` being the full path
 * ("src/a/b.c"; a tree's directory without a trailing slash, '' for the root), exactly as before
 * schema 26. A backend that keeps directories in a table of their own joins them in when it reads
 * (rows_each) and splits the path into directory and name when it writes (rows_insert), finding
 * or creating the directory row there; its `dirs` table is therefore not in `tables` below and
 * is never copied (its ids are the target's own). Rows are still read in order of their id, and
 * the ids themselves move as they are. So a schema-26 store and one still in schema 25's layout
 * copy both ways.
 */
#include <stdlib.h>
#include <string.h>

#include "store/blobcodec.h"
#include "store/store.h"
#include "util/error.h"
#include "util/util.h"

#define C(n, t) { n, PS_COL_##t }

static const struct ps_copy_col project_cols[] = {
	C("id", INT), C("name", TEXT), C("source", TEXT), C("branch", TEXT),
	C("max_blob_size", INT), C("memory_globs", TEXT), C("last_sync_id", INT),
	C("last_commit", TEXT), C("last_error_code", TEXT), C("last_error_message", TEXT),
	C("failures_in_row", INT), C("created_at", INT), C("memory_rescan", INT),
	C("memory_rescan_gen", INT), C("blob_rescan", INT), C("blob_rescan_gen", INT),
	/* the schedule, failure state and retention (migration 0007) */
	C("every_ms", INT), C("every_auto", INT), C("auto_min_ms", INT), C("auto_max_ms", INT),
	C("interval_ms", INT), C("next_sync_at", INT), C("last_check_at", INT),
	C("max_failures", INT), C("state", TEXT), C("paused_at", INT), C("paused_reason", TEXT),
	C("keep_syncs", INT), C("keep_days", INT),
	/* code search (migration 0008): the index moves too (code_*_cols below), so a project
	 * owes on the target exactly the backlog it owed on the source */
	C("code_index", INT), C("code_index_pending", INT),
};
static const struct ps_copy_col sync_cols[] = {
	C("id", INT), C("project_id", INT), C("branch", TEXT), C("status", TEXT), C("phase", TEXT),
	C("commit_sha", TEXT), C("tree_sha", TEXT), C("previous_sync_id", INT),
	C("base_sync_id", INT), C("trigger", TEXT), C("added", INT), C("modified", INT),
	C("deleted", INT), C("renamed", INT), C("files", INT), C("bytes", INT), C("requests", INT),
	C("up_to_date", INT), C("skipped_large", INT), C("error_code", TEXT),
	C("error_message", TEXT), C("cancel_requested", INT), C("owner_host", TEXT),
	C("owner_process", TEXT), C("lease_until", INT), C("created_at", INT),
	C("started_at", INT), C("finished_at", INT), C("memory_rescan", INT),
	C("blob_rescan", INT),
	/* the head commit (migration 0011) */
	C("head_subject", TEXT), C("head_author_name", TEXT), C("head_author_email", TEXT),
	C("head_author_date", INT), C("head_committer_name", TEXT),
	C("head_committer_email", TEXT), C("head_committer_date", INT), C("commit_count", INT),
	C("commits_truncated", INT),
	/* a run of folded up-to-date checks (migration 0015) */
	C("checks", INT), C("first_check_at", INT),
};
static const struct ps_copy_col commit_cols[] = {
	C("sync_id", INT), C("position", INT), C("sha", TEXT), C("parents", TEXT),
	C("author_name", TEXT), C("author_email", TEXT), C("author_date", INT),
	C("committer_name", TEXT), C("committer_email", TEXT), C("committer_date", INT),
	C("subject", TEXT), C("message", TEXT),
};
static const struct ps_copy_col event_cols[] = {
	C("sync_id", INT), C("seq", INT), C("kind", TEXT), C("payload", TEXT),
};
static const struct ps_copy_col file_cols[] = {
	C("id", INT), C("project_id", INT), C("path", BYTES), C("mode", INT), C("sha", TEXT),
	C("size", INT), C("introduced_by", INT), C("superseded_by", INT),
};
/* The stored bytes and their encoding move as they are: both backends hold the same format
 * (store/blobcodec.h), so nothing is decoded and encoded again. A delta's base (migration 0013)
 * moves with it; the foreign key is checked at the copy's commit, so the sha order of the copy
 * may bring a delta before its base. */
static const struct ps_copy_col blob_cols[] = {
	C("sha", TEXT), C("size", INT), C("encoding", INT), C("content", BLOB), C("base", TEXT),
	/* a packed blob's pack and place in it (migration 0027), NULL for any other row */
	C("pack", INT), C("pack_offset", INT),
};
/* Packs (migration 0027) move before the blobs that name them, ids and frames as they are. */
static const struct ps_copy_col blob_pack_cols[] = {
	C("id", INT), C("size", INT), C("content", BLOB),
};
static const struct ps_copy_col memory_cols[] = {
	C("id", INT), C("project_id", INT), C("origin", TEXT), C("source", TEXT),
	C("source_ref", BYTES), C("title", TEXT), C("tags", TEXT), C("content", TEXT),
	C("blob_sha", TEXT), C("state", TEXT), C("introduced_by_sync", INT),
	C("restored_from", INT), C("superseded_by_sync", INT), C("superseded_by_entry", INT),
	C("superseded_at", INT), C("created_at", INT),
};
static const struct ps_copy_col removal_cols[] = {
	C("sync_id", INT), C("source_ref", BYTES), C("project_id", INT),
};
/* Directory trees (migration 0009) are versioned with the snapshots, like file versions; their
 * entries are rebuilt from the rows (migration 0020), so only the ids move. */
static const struct ps_copy_col dir_tree_cols[] = {
	C("id", INT), C("project_id", INT), C("path", BYTES), C("tree_sha", TEXT),
	C("introduced_by", INT), C("superseded_by", INT),
};
static const struct ps_copy_col webhook_cols[] = {
	C("id", TEXT), C("event", TEXT), C("received_at", INT),
};

/* The code index (schema 17, store/codeindex.h; docs/architecture.md §7a), read in one snapshot
 * with the blobs: a code_blobs row commits with its postings, so none lacks them in the copy. */
static const struct ps_copy_col code_segment_cols[] = {
	C("id", INT), C("level", INT), C("postings", INT), C("min_id", INT), C("max_id", INT),
	C("docs", INT),
};
static const struct ps_copy_col code_posting_cols[] = {
	C("seg", INT), C("first", INT), C("data", BLOB),
};
static const struct ps_copy_col code_blob_cols[] = {
	C("id", INT), C("sha", BLOB), C("binary", INT),
};

#define T(name, cols, nkeys, identity, batch) \
	{ name, cols, sizeof(cols) / sizeof(*cols), nkeys, identity, batch }

static const struct ps_copy_table tables[] = {
	T("projects", project_cols, 1, true, 500),
	T("syncs", sync_cols, 1, true, 500),
	T("events", event_cols, 2, false, 1000),
	T("sync_commits", commit_cols, 2, false, 500),
	T("file_versions", file_cols, 1, true, 1000),
	T("dir_trees", dir_tree_cols, 1, true, 1000),
	/* ~20 KiB a pack (a 64 KiB frame of small files, compressed) */
	T("blob_packs", blob_pack_cols, 1, true, 16),
	T("blobs", blob_cols, 1, false, 32),
	T("memory_entries", memory_cols, 1, true, 200),
	T("memory_staged_removals", removal_cols, 2, false, 1000),
	T("webhook_deliveries", webhook_cols, 1, false, 1000),
	/* ~8 KiB a postings row; code_blobs last, so its ps_store_rows_done sees the segments */
	T("code_segments", code_segment_cols, 1, true, 500),
	T("code_postings", code_posting_cols, 2, false, 64),
	T("code_blobs", code_blob_cols, 1, true, 1000),
};
#define NTABLES (sizeof(tables) / sizeof(*tables))
_Static_assert(NTABLES <= sizeof(((struct ps_copy_counts *)0)->rows) /
			  sizeof(((struct ps_copy_counts *)0)->rows[0]),
	       "struct ps_copy_counts holds a count per table");

struct batch {
	struct ps_store *from;
	struct ps_store *to;
	const struct ps_copy_table *t;
	struct ps_copy_value *rows;
	size_t n;
	int64_t total;
	struct ps_blobcodec *codec; /* to check blobs */
};

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n * b->t->ncols; i++)
		free(b->rows[i].s);
	b->n = 0;
}

static int flush(struct batch *b)
{
	int rc;

	if (b->n == 0)
		return 0;
	rc = ps_store_rows_insert(b->to, b->t, b->rows, b->n);
	b->total += (int64_t)b->n;
	batch_clear(b);
	return rc;
}

/* Content addressing holds across the move too: a blob whose stored bytes do not decode to
 * content that hashes to its SHA is refused here, as ps_store_blob_put and ps_store_blob_get
 * would refuse it. Decoding checks the frame too, so what arrives reads back. */
static int check_blob(struct batch *b, const struct ps_copy_value *row)
{
	char sha[PS_SHA_HEX];
	void *data = NULL;
	size_t len = 0;
	int rc;

	if (row[0].null || row[1].null || row[2].null || row[3].null || row[1].i < 0)
		return ps_error_set(PS_ESTORE, "sha_mismatch", "blob without SHA, size or content");
	/* A delta decodes only against its base, and a pack member only out of its pack: the
	 * source store resolves both (a chain is bounded, a pack is decoded once into its cache);
	 * the bytes copied are still the row's own. */
	if (row[2].i == PS_BLOB_DELTA || row[2].i == PS_BLOB_PACKED)
		rc = ps_store_blob_get(b->from, row[0].s, &data, &len);
	else
		rc = ps_blobcodec_decode(b->codec, row[0].s, (int)row[2].i, row[3].s, row[3].len,
					 (size_t)row[1].i, &data);
	if (rc < 0)
		return ps_error_wrap(rc, "not copied: ");
	ps_git_blob_sha(data, (size_t)row[1].i, sha);
	free(data);
	if (strcmp(sha, row[0].s) != 0)
		return ps_error_set(PS_ESTORE, "sha_mismatch",
				    "blob %s in the source does not hash to its SHA (%s): not copied",
				    row[0].s, sha);
	return 0;
}

static size_t col_index(const struct ps_copy_table *t, const char *name)
{
	for (size_t c = 0; c < t->ncols; c++)
		if (!strcmp(t->cols[c].name, name))
			return c;
	abort(); /* a name of sync_cols below: a typo is a bug */
}

static void set_text(struct ps_copy_value *v, const char *text)
{
	free(v->s);
	v->s = text ? ps_strdup(text) : NULL;
	v->len = text ? strlen(text) : 0;
	v->null = text == NULL;
	v->i = 0;
}

static void set_int(struct ps_copy_value *v, int64_t i, bool null)
{
	free(v->s);
	v->s = NULL;
	v->len = 0;
	v->i = i;
	v->null = null;
}

/*
 * A sync queued or running in the source (a live store) has no owner in the copy: its work is
 * not there, and its owner (a process of the source's host) would keep it "running" on the
 * target for as long as it lives, or a queued one would block every sync of its project until a
 * server of the target ran it. So the copy gets it as it would end up: a running one failed as
 * interrupted, a queued one cancelled before it started, both finished at the copy and owned by
 * no process. A sync of the project on the target runs anew (its staged rows are purged then,
 * as a reaped sync's are).
 */
static void end_unfinished_sync(const struct ps_copy_table *t, struct ps_copy_value *row)
{
	struct ps_copy_value *status = &row[col_index(t, "status")];
	bool running;

	if (status->null || (strcmp(status->s, "running") && strcmp(status->s, "queued")))
		return;
	running = !strcmp(status->s, "running");
	set_text(status, running ? "failed" : "cancelled");
	set_text(&row[col_index(t, "error_code")], running ? "interrupted" : "cancelled");
	set_text(&row[col_index(t, "error_message")],
		 running ? "interrupted: the sync was running in the source store when it was "
			   "copied (store copy), and its work is not in the copy"
			 : "cancelled before it started: the sync was queued in the source store "
			   "when it was copied (store copy)");
	set_int(&row[col_index(t, "finished_at")], ps_now_ms(), false);
	set_text(&row[col_index(t, "owner_host")], NULL);
	set_text(&row[col_index(t, "owner_process")], NULL);
	set_int(&row[col_index(t, "lease_until")], 0, true);
}

static int take_row(void *ud, const struct ps_copy_value *row)
{
	struct batch *b = ud;
	struct ps_copy_value *dst;
	int rc;

	if (b->t->cols == blob_cols && (rc = check_blob(b, row)) < 0)
		return rc;
	dst = b->rows + b->n * b->t->ncols;
	for (size_t c = 0; c < b->t->ncols; c++) {
		dst[c] = row[c];
		if (row[c].s) {
			dst[c].s = ps_malloc(row[c].len + 1);
			memcpy(dst[c].s, row[c].s, row[c].len);
			dst[c].s[row[c].len] = '\0';
		}
	}
	if (b->t->cols == sync_cols)
		end_unfinished_sync(b->t, dst);
	if (++b->n == b->t->batch)
		return flush(b);
	return 0;
}

static int any_row(void *ud, const struct ps_copy_value *row)
{
	(void)row;
	*(bool *)ud = true;
	return 1; /* one is enough */
}

int ps_store_copy(struct ps_store *from, struct ps_store *to, struct ps_copy_counts *counts)
{
	struct ps_blobcodec *codec = NULL;
	int rc;

	memset(counts, 0, sizeof(*counts));
	/* Refuse before writing anything: the target must hold no row at all. */
	for (size_t i = 0; i < NTABLES; i++) {
		bool found = false;
		rc = ps_store_rows_each(to, &tables[i], any_row, &found);
		if (rc < 0)
			return rc;
		if (found)
			return ps_error_set(PS_ECONFLICT, "store_not_empty",
					    "the target store is not empty (table %s has rows): "
					    "store copy only fills an empty store", tables[i].name);
	}
	if ((rc = ps_blobcodec_new(&codec)) < 0)
		return rc;
	if ((rc = ps_store_begin_snapshot(from)) < 0) {
		ps_blobcodec_free(codec);
		return rc;
	}
	if ((rc = ps_store_begin(to)) < 0) {
		ps_store_rollback(from);
		ps_blobcodec_free(codec);
		return rc;
	}
	for (size_t i = 0; i < NTABLES && rc == 0; i++) {
		struct batch b = { from, to, &tables[i], NULL, 0, 0, codec };

		b.rows = ps_calloc(tables[i].batch * tables[i].ncols, sizeof(*b.rows));
		rc = ps_store_rows_each(from, &tables[i], take_row, &b);
		if (rc == 0)
			rc = flush(&b);
		if (rc == 0 && tables[i].identity)
			rc = ps_store_rows_done(to, &tables[i]);
		batch_clear(&b);
		free(b.rows);
		counts->table[i] = tables[i].name;
		counts->rows[i] = b.total;
		counts->ntables = i + 1;
	}
	ps_store_rollback(from); /* it only read */
	ps_blobcodec_free(codec);
	if (rc < 0) {
		ps_store_rollback(to);
		return rc;
	}
	return ps_store_commit(to);
}
