-- projsync schema 13 on PostgreSQL: file versions and directory trees cost less per row
-- (src/store/sqlite/migrations/0013_compact_rows.sql gives the reasons; the figures are in
-- docs/performance.md, "Store size").
--
-- - Object ids in file_versions.sha and dir_trees.tree_sha are bytea, their 20 bytes (21 on
--   disk with the varlena header, against 41 for the hex text). The queries convert with
--   ps_unhex() and ps_hex(), defined here in SQL so the planner inlines them: a value that is
--   not 40 lowercase hex digits (no source writes one) is kept as its UTF-8 bytes and reads
--   back as that text. blobs.sha and code_blobs.sha stay text: queries joining them convert.
-- - The (project_id, superseded_by, path) indexes are dropped: every query they served uses
--   the (project_id, path, introduced_by) index.
--
-- One transaction (each migration step is one): ALTER COLUMN ... TYPE rewrites each table and
-- rebuilds its indexes once; the rows hold no content, so this takes seconds even for a large
-- store, and an interrupted step leaves schema 12 as it was.

CREATE FUNCTION ps_unhex(t text) RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN t ~ '^[0-9a-f]{40}$' THEN decode(t, 'hex') ELSE convert_to(t, 'UTF8') END $$;

CREATE FUNCTION ps_hex(b bytea) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN octet_length(b) = 20 THEN encode(b, 'hex') ELSE convert_from(b, 'UTF8') END $$;

DROP INDEX file_versions_current;
ALTER TABLE file_versions ALTER COLUMN sha TYPE bytea USING ps_unhex(sha);

DROP INDEX dir_trees_current;
ALTER TABLE dir_trees ALTER COLUMN tree_sha TYPE bytea USING ps_unhex(tree_sha);
