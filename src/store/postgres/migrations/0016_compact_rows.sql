-- projsync schema 16 on PostgreSQL: file versions and directory trees cost less per row
-- (src/store/sqlite/migrations/0016_compact_rows.sql gives the reasons; the figures are in
-- docs/performance.md, "Store size").
--
-- - Object ids in file_versions.sha and dir_trees.tree_sha are bytea, their 20 bytes (21 on
--   disk with the varlena header, against 41 for the hex text). The queries convert with
--   ps_unhex() and ps_hex(), SQL functions of immutable built-ins, which the planner inlines.
--   The store refuses to stage an id that is not 40 lowercase hex digits (store.c); a row
--   written before that by a broken caller is kept as the bytes of its text.
--   blobs.sha and code_blobs.sha stay text: queries joining them convert.
-- - The (project_id, superseded_by, path) indexes are dropped: every query they served uses
--   the (project_id, path, introduced_by) index; the partial index of superseded rows gains
--   project_id so a diff's old side and pruning stay one range read.
--
-- One transaction (each migration step is one): ALTER COLUMN ... TYPE rewrites each table and
-- rebuilds its indexes once; the rows hold no content, so this takes seconds even for a large
-- store, and an interrupted step leaves schema 15 as it was.

CREATE FUNCTION ps_unhex(t text) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN decode(t, 'hex');
CREATE FUNCTION ps_hex(b bytea) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN encode(b, 'hex');

DROP INDEX file_versions_current;
DROP INDEX file_versions_superseded;
ALTER TABLE file_versions ALTER COLUMN sha TYPE bytea USING
    CASE WHEN sha ~ '^[0-9a-f]{40}$' THEN decode(sha, 'hex') ELSE convert_to(sha, 'UTF8') END;
CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by)
    WHERE superseded_by IS NOT NULL;

DROP INDEX dir_trees_current;
DROP INDEX dir_trees_superseded;
ALTER TABLE dir_trees ALTER COLUMN tree_sha TYPE bytea USING
    CASE WHEN tree_sha ~ '^[0-9a-f]{40}$' THEN decode(tree_sha, 'hex')
    ELSE convert_to(tree_sha, 'UTF8') END;
CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by)
    WHERE superseded_by IS NOT NULL;
