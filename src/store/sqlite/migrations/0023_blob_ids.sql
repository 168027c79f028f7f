-- projsync schema 23: blobs.sha and blobs.base hold the blob id's 20 bytes, as file_versions.sha
-- (schema 16) and code_blobs.sha (schema 19) do (issue 14; docs/architecture.md, "What a row
-- costs"). Each blob row and its UNIQUE index entry hold 40 bytes less (docs/performance.md,
-- "Schema 23"), and the joins of blobs with file_versions and code_blobs (prune, code search,
-- stats) compare the same 20 bytes instead of converting one side row by row.
--
-- Converting rewrites every content row, and a large store must not be rewritten in one
-- transaction. So, as schema 10 did (0010_blob_encoding.sql), this migration only renames the
-- table to blobs_hex and creates the new one; the conversion that ps_store_migrate runs after
-- the SQL migrations (sqlite_blobs.c, ps_sqlite_blob_convert) moves the rows across in bounded
-- batches, one transaction each, and drops blobs_hex once it is empty. A killed conversion
-- loses at most one batch and the next open resumes it; open returns only once it finished, so
-- nothing but the conversion ever sees the two tables. Two processes opening the store at once
-- take turns batch by batch (each batch reads what it moves inside its write transaction).
--
-- Delta bases (schema 13): in both tables a delta's base must be a row of the same table at
-- every commit (the foreign keys, checked at commit). A batch therefore moves whole delta
-- families: the rows it picks, their bases and their deltas, transitively (a family is a tree
-- at most PS_BLOB_CHAIN_MAX deep).
--
-- `base` comes before `content` now, so reading it (the prune's look for deltas whose base
-- goes, the foreign key checks) no longer walks the content's overflow pages.

-- The renamed table keeps its index blobs_base (building another would read every row), so the
-- new table's is blobs_delta_base.
ALTER TABLE blobs RENAME TO blobs_hex;

CREATE TABLE blobs (
    id       INTEGER PRIMARY KEY,
    sha      BLOB NOT NULL UNIQUE                  -- 20 bytes
             CHECK (typeof(sha) = 'blob' AND length(sha) = 20),
    size     INTEGER NOT NULL,
    encoding INTEGER NOT NULL DEFAULT 0,
    base     BLOB REFERENCES blobs(sha) DEFERRABLE INITIALLY DEFERRED
             CHECK (base IS NULL OR (typeof(base) = 'blob' AND length(base) = 20)),
    content  BLOB NOT NULL
);
-- The CHECKs: a process of the previous version still running (a server the upgrade has not
-- restarted) would store its 40 hex digits here as text, rows no lookup by bytes ever finds;
-- it fails instead.
CREATE INDEX blobs_delta_base ON blobs(base) WHERE base IS NOT NULL;

-- code_unindexed (0014) keeps counting the stored blobs code_blobs lacks: a row leaving
-- blobs_hex counts out, the same row arriving in blobs counts in. The renamed table took the
-- old triggers along; the code_blobs ones now look in blobs.
DROP TRIGGER code_unindexed_blob_in;
DROP TRIGGER code_unindexed_blob_out;
DROP TRIGGER code_unindexed_code_in;
DROP TRIGGER code_unindexed_code_out;

CREATE TRIGGER code_unindexed_blob_hex_out AFTER DELETE ON blobs_hex
WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_unhex(OLD.sha))
BEGIN UPDATE code_unindexed SET n = n - 1; END;

CREATE TRIGGER code_unindexed_blob_in AFTER INSERT ON blobs
WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = NEW.sha)
BEGIN UPDATE code_unindexed SET n = n + 1; END;

CREATE TRIGGER code_unindexed_blob_out AFTER DELETE ON blobs
WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = OLD.sha)
BEGIN UPDATE code_unindexed SET n = n - 1; END;

CREATE TRIGGER code_unindexed_code_in AFTER INSERT ON code_blobs
WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = NEW.sha)
BEGIN UPDATE code_unindexed SET n = n - 1; END;

CREATE TRIGGER code_unindexed_code_out AFTER DELETE ON code_blobs
WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = OLD.sha)
BEGIN UPDATE code_unindexed SET n = n + 1; END;
