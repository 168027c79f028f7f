-- projsync schema 26: a file version names its directory by id (issue 14; docs/architecture.md,
-- "What a row costs"; docs/performance.md, "Schema 26").
--
-- Each file version held its full path twice, in its row and in its path index (74.5 bytes on
-- average in libgit2, against 49 for a directory path, and there are three file versions per
-- distinct directory or more). Now a directory's path is stored once per project in `dirs`, and
-- file_versions and dir_trees keep the directory's id and, for a file, its own name. Above the
-- backend nothing changes: queries join dirs and hand out full paths
-- (dirs.path || '/' || name, or the name alone in the root, whose path is '').
--
-- The root is the empty path; a path has no trailing slash. A dirs row exists for the directory
-- of every file version and every directory tree row; the prune deletes the rows nothing names
-- any more (sqlite.c). file_versions keeps project_id: the prune, project removal, stats and the
-- superseded index are per project.
--
-- The tables are rebuilt in this one transaction, as 0016 and 0020 did: the rows hold no
-- content, so a store with a million file versions converts in seconds, and a killed
-- conversion leaves schema 25 as it was. Row ids are kept. ps_dirname and ps_basename are
-- SQL functions the backend registers on its connection (sqlite.c): the split of a path into
-- its directory and name lives in one place.

CREATE TABLE dirs (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,                    -- '' is the root; no trailing slash
    UNIQUE (project_id, path)
);
INSERT INTO dirs (project_id, path)
    SELECT project_id, ps_dirname(path) FROM file_versions
    UNION
    SELECT project_id, path FROM dir_trees
    ORDER BY 1, 2;

CREATE TABLE file_versions_26 (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    dir_id        INTEGER NOT NULL REFERENCES dirs(id),
    name          TEXT NOT NULL,                 -- the last component of the path
    mode          INTEGER NOT NULL,
    sha           BLOB NOT NULL,                 -- 20 bytes
    size          INTEGER,                       -- NULL for submodules
    introduced_by INTEGER NOT NULL,
    superseded_by INTEGER
);
INSERT INTO file_versions_26 (id, project_id, dir_id, name, mode, sha, size, introduced_by,
                              superseded_by)
    SELECT fv.id, fv.project_id, d.id, ps_basename(fv.path), fv.mode, fv.sha, fv.size,
           fv.introduced_by, fv.superseded_by
    FROM file_versions fv JOIN dirs d ON d.project_id = fv.project_id
                                     AND d.path = ps_dirname(fv.path)
    ORDER BY fv.id;
DROP TABLE file_versions;
ALTER TABLE file_versions_26 RENAME TO file_versions;
-- dir_id implies the project. Also the index the foreign key's checks use when a dirs row goes.
CREATE INDEX file_versions_path ON file_versions(dir_id, name, introduced_by);
CREATE INDEX file_versions_introduced ON file_versions(introduced_by);
CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by)
    WHERE superseded_by IS NOT NULL;
CREATE INDEX file_versions_sha ON file_versions(sha);

CREATE TABLE dir_trees_26 (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    dir_id        INTEGER NOT NULL REFERENCES dirs(id),
    tree_sha      BLOB NOT NULL,                 -- 20 bytes
    introduced_by INTEGER NOT NULL,
    superseded_by INTEGER
);
INSERT INTO dir_trees_26 (id, project_id, dir_id, tree_sha, introduced_by, superseded_by)
    SELECT dt.id, dt.project_id, d.id, dt.tree_sha, dt.introduced_by, dt.superseded_by
    FROM dir_trees dt JOIN dirs d ON d.project_id = dt.project_id AND d.path = dt.path
    ORDER BY dt.id;
DROP TABLE dir_trees;
ALTER TABLE dir_trees_26 RENAME TO dir_trees;
CREATE INDEX dir_trees_path ON dir_trees(dir_id, introduced_by);
CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by);
CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by)
    WHERE superseded_by IS NOT NULL;
