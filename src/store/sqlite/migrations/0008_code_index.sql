-- projsync schema 6: code search (`projsync grep`, GET /projects/{name}/search/code).
--
-- The index is by blob, not by file version: a blob enters it once, whatever project, branch or
-- sync brought it, and a search is scoped to one snapshot by joining the candidate blobs with
-- the file versions that snapshot sees (store/sqlite/sqlite_code.c).
--
-- code_blobs has one row per indexed blob. A text blob's row id is its document id in code_fts;
-- a binary blob (a NUL in its first 8000 bytes, git's rule) is recorded with binary = 1 and no
-- document: it is always a candidate, as `git grep` searches binary files too. A stored blob
-- with no row (stored before this schema, or only by projects with the index off) is also
-- always a candidate, so results stay exact while the index catches up.
--
-- code_fts is contentless (the text lives in blobs, read through ps_store_blob_get) with
-- detail=none (rowids only: the index answers "which blobs hold all these trigrams", the
-- matcher confirms on the real content, so positions would only cost space). The trigram
-- tokenizer folds case, so one index serves case-sensitive and -i searches.
--
-- projects.code_index = 0 is `project add|set --no-code-index`; code_index_pending asks the
-- project's next sync to index every stored blob of its snapshots that the index lacks (set here
-- for the projects of an existing store, and when the index is switched back on).

ALTER TABLE projects ADD COLUMN code_index INTEGER NOT NULL DEFAULT 1;
ALTER TABLE projects ADD COLUMN code_index_pending INTEGER NOT NULL DEFAULT 0;
UPDATE projects SET code_index_pending = 1;

CREATE TABLE code_blobs (
    id     INTEGER PRIMARY KEY,            -- the code_fts rowid of a text blob
    sha    TEXT NOT NULL UNIQUE,
    binary INTEGER NOT NULL DEFAULT 0
);

CREATE VIRTUAL TABLE code_fts USING fts5(
    content,
    content = '', detail = 'none',
    tokenize = 'trigram'
);
