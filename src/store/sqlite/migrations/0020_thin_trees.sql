-- projsync schema 20: directory trees without their entries (issue 14).
--
-- dir_trees.entries held the git tree body of every stored directory version: ~1.3 MiB of a
-- ~20 MiB libgit2 store, and redundant. A directory's entries are its direct files' (mode,
-- name, blob id) in file_versions plus its direct subdirectories' tree ids in dir_trees, all
-- visible at the same sync; the backend rebuilds a body from those rows when one is needed
-- (sqlite_trees.c: a skip scan over file_versions_path that reads the directory's own files'
-- rows and seeks once per subdirectory, never reading a subdirectory's rows). What stays is the tree id of every directory of
-- every snapshot, which is what lets a sync re-hash only the directories on its changed paths.
--
-- The table is rebuilt in this one transaction (SQLite drops a column only by rebuilding its
-- table when indexes name it, and this frees the bodies' pages for reuse): ids, rows and the
-- indexes schema 16 left are kept.

CREATE TABLE dir_trees_20 (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    tree_sha      BLOB NOT NULL,                 -- 20 bytes
    introduced_by INTEGER NOT NULL,
    superseded_by INTEGER
);
INSERT INTO dir_trees_20 (id, project_id, path, tree_sha, introduced_by, superseded_by)
    SELECT id, project_id, path, tree_sha, introduced_by, superseded_by
    FROM dir_trees ORDER BY id;
DROP TABLE dir_trees;
ALTER TABLE dir_trees_20 RENAME TO dir_trees;
CREATE INDEX dir_trees_path ON dir_trees(project_id, path, introduced_by);
CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by);
CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by)
    WHERE superseded_by IS NOT NULL;
