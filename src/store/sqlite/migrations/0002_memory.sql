-- projsync schema 2: memory entries (the project's knowledge base) and their full-text index.
--
-- An entry is one version of one note. Notes imported from the repository (origin 'sync') are
-- keyed by their path (source_ref); a restore (origin 'restore') re-activates an older version
-- of such a note under the same source_ref; a note written by hand (origin 'manual') has no
-- path and is never touched by a sync.
--
-- Life of a row (state):
--   staged      written by a running sync (introduced_by_sync = that sync); invisible to every
--               query. ps_store_sync_finalize flips it to 'active' in the transaction that
--               marks the sync succeeded; ps_store_sync_fail deletes it.
--   active      the current version of its note. At most one active row per (project, path)
--               (memory_one_active); manual entries have no path and are always active.
--   superseded  replaced. Two things supersede a row, and the columns say which:
--                 a succeeded sync that changed or deleted the file:
--                   superseded_by_sync = the sync, superseded_by_entry = the sync's new entry
--                   for the path (NULL when the file was deleted);
--                 a restore (no sync involved, immediate):
--                   superseded_by_sync = NULL, superseded_by_entry = the restored copy.
--               superseded_at is set in both cases. superseded_by_sync is only ever written in
--               a finalize transaction, so it always names a succeeded sync.
--
-- Why a state column instead of deriving visibility from the syncs table (as file_versions
-- does): memory is only ever queried "as of now", and restores supersede without a sync, so a
-- single indexed column answers every query and keeps the one-active-per-path rule enforceable
-- by a partial unique index.
--
-- A deletion (or the old path of a rename) stages no entry; the sync records it in
-- memory_staged_removals, which finalize consumes (and fail discards).

CREATE TABLE memory_entries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids order versions
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    origin              TEXT NOT NULL CHECK (origin IN ('sync','restore','manual')),
    source              TEXT NOT NULL,          -- git | github | manual
    source_ref          TEXT,                   -- the file's path; NULL for manual entries
    title               TEXT NOT NULL,
    tags                TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    content             TEXT NOT NULL,
    blob_sha            TEXT,                   -- the file's blob when imported from a sync
    state               TEXT NOT NULL CHECK (state IN ('staged','active','superseded')),
    introduced_by_sync  INTEGER,                -- NULL for restore and manual entries
    restored_from       INTEGER,                -- the entry a restore copied
    superseded_by_sync  INTEGER,
    superseded_by_entry INTEGER,
    superseded_at       INTEGER,
    created_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX memory_one_active ON memory_entries(project_id, source_ref)
    WHERE state = 'active' AND source_ref IS NOT NULL;
CREATE INDEX memory_project ON memory_entries(project_id, state, id);
CREATE INDEX memory_path ON memory_entries(project_id, source_ref, id);
CREATE INDEX memory_introduced ON memory_entries(introduced_by_sync)
    WHERE introduced_by_sync IS NOT NULL;

CREATE TABLE memory_staged_removals (
    sync_id    INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    source_ref TEXT NOT NULL,
    PRIMARY KEY (sync_id, source_ref)
) WITHOUT ROWID;

-- External-content FTS5 index over title, body and tags; the triggers keep it equal to the
-- table (entries are immutable apart from their state columns, so only insert and delete
-- matter). unicode61 with diacritics removed: "cafe" finds "café".
CREATE VIRTUAL TABLE memory_fts USING fts5(
    title, content, tags,
    content = 'memory_entries', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER memory_fts_insert AFTER INSERT ON memory_entries BEGIN
    INSERT INTO memory_fts (rowid, title, content, tags)
    VALUES (new.id, new.title, new.content, new.tags);
END;
CREATE TRIGGER memory_fts_delete AFTER DELETE ON memory_entries BEGIN
    INSERT INTO memory_fts (memory_fts, rowid, title, content, tags)
    VALUES ('delete', old.id, old.title, old.content, old.tags);
END;
CREATE TRIGGER memory_fts_update AFTER UPDATE OF title, content, tags ON memory_entries BEGIN
    INSERT INTO memory_fts (memory_fts, rowid, title, content, tags)
    VALUES ('delete', old.id, old.title, old.content, old.tags);
    INSERT INTO memory_fts (rowid, title, content, tags)
    VALUES (new.id, new.title, new.content, new.tags);
END;
