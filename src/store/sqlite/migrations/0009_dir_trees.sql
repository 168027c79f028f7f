-- projsync schema 8: the git tree of every directory of a snapshot, so each sync checks its
-- snapshot against the commit's root tree (model/tree.c, core/sync.c) and re-hashes only the
-- directories on its changed paths.
--
-- Versioned exactly like file_versions (docs/architecture.md §4, rule 3): a row is part of the
-- snapshot of succeeded sync S when introduced by a succeeded sync at or before S and not
-- superseded at or before S. A sync stages the directories it re-hashed (invisible until
-- finalize); its finalize supersedes the previous rows of every directory on a changed path
-- (re-hashed or emptied) and of every directory it staged; a sync that does not succeed has its
-- rows deleted. `entries` is the tree object without its header (git's format), `path` '' is
-- the root, whose tree_sha equals the sync's tree_sha.
--
-- Snapshots synced before this schema have no rows: the next sync that changes something
-- computes every directory from the rows of its base snapshot and stages them all.

CREATE TABLE dir_trees (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    tree_sha      TEXT NOT NULL,
    entries       BLOB NOT NULL,
    introduced_by INTEGER NOT NULL,
    superseded_by INTEGER
);
CREATE INDEX dir_trees_current ON dir_trees(project_id, superseded_by, path);
CREATE INDEX dir_trees_path ON dir_trees(project_id, path, introduced_by);
CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by);
CREATE INDEX dir_trees_superseded ON dir_trees(superseded_by) WHERE superseded_by IS NOT NULL;
