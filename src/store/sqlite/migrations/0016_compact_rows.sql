-- projsync schema 16: file versions and directory trees cost less per row (issue 14; the
-- figures are in docs/performance.md, "Store size").
--
-- - Object ids (file_versions.sha, dir_trees.tree_sha) are stored as their 20 bytes, not 40 hex
--   digits. The backend converts at its boundary with ps_unhex() and ps_hex(), functions it
--   registers on its connection (sqlite.c). The store refuses to stage an id that is not 40
--   lowercase hex digits (store.c); a row written before that by a broken caller is kept as
--   the text it is and reads back exactly. blobs.sha and code_blobs.sha stay hex (another
--   change owns blobs): queries joining them convert.
-- - The (project_id, superseded_by, path) indexes are gone: they held every path a third time
--   (a third of file_versions' cost). Every query they served uses the (project_id, path,
--   introduced_by) index instead: listing a snapshot walks the project's rows in path order,
--   the superseded ones included, which costs in proportion to the history kept, not to the
--   snapshot (pruning bounds it). The partial index of superseded rows gains project_id, so
--   the rows a project's later syncs replaced (a diff's old side, pruning) are still one range
--   read: it holds only superseded rows, and no path.
--
-- The tables are rebuilt in this one transaction (a migration is one): the rows are small and
-- hold no content, so a store with a million file versions converts in seconds, and a killed
-- conversion leaves schema 15 as it was. The old pages go to SQLite's free list and are reused
-- as the store grows (VACUUM gives them back to the file system at once).

CREATE TABLE file_versions_13 (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    mode          INTEGER NOT NULL,
    sha           BLOB NOT NULL,                 -- 20 bytes
    size          INTEGER,                       -- NULL for submodules
    introduced_by INTEGER NOT NULL,
    superseded_by INTEGER
);
INSERT INTO file_versions_13 (id, project_id, path, mode, sha, size, introduced_by, superseded_by)
    SELECT id, project_id, path, mode, ps_unhex(sha), size, introduced_by, superseded_by
    FROM file_versions ORDER BY id;
DROP TABLE file_versions;
ALTER TABLE file_versions_13 RENAME TO file_versions;
CREATE INDEX file_versions_path ON file_versions(project_id, path, introduced_by);
CREATE INDEX file_versions_introduced ON file_versions(introduced_by);
CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by)
    WHERE superseded_by IS NOT NULL;
CREATE INDEX file_versions_sha ON file_versions(sha);

CREATE TABLE dir_trees_13 (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    tree_sha      BLOB NOT NULL,                 -- 20 bytes
    entries       BLOB NOT NULL,
    introduced_by INTEGER NOT NULL,
    superseded_by INTEGER
);
INSERT INTO dir_trees_13 (id, project_id, path, tree_sha, entries, introduced_by, superseded_by)
    SELECT id, project_id, path, ps_unhex(tree_sha), entries, introduced_by, superseded_by
    FROM dir_trees ORDER BY id;
DROP TABLE dir_trees;
ALTER TABLE dir_trees_13 RENAME TO dir_trees;
CREATE INDEX dir_trees_path ON dir_trees(project_id, path, introduced_by);
CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by);
CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by)
    WHERE superseded_by IS NOT NULL;
