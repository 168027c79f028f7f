-- projsync schema 23 on PostgreSQL: blobs.sha and blobs.base are bytea, the blob id's 20 bytes,
-- as file_versions.sha (0016) and code_blobs.sha (0019) are (the reasons:
-- src/store/sqlite/migrations/0023_blob_ids.sql). Each row and its primary key entry hold 20
-- bytes less than the 41 of the text id, and the joins with file_versions and code_blobs (prune,
-- code search, stats) compare bytea with bytea, no decode() per row.
--
-- ALTER COLUMN ... TYPE would rewrite the whole table, content included, in this one
-- transaction. Instead the hex columns are renamed sha_hex and base_hex and new bytea columns
-- added; the conversion that ps_store_migrate runs after the SQL migrations, still under the
-- migration lock (postgres/pg.c, ps_pg_blob_convert), fills them in bounded batches, one
-- transaction each, setting the hex ones to NULL: an UPDATE that leaves content alone writes a
-- new small row version pointing at the same TOASTed content, so the content is neither copied
-- nor written to the WAL again (moving rows to a new table would copy all of it). When no hex id
-- is left, one short transaction drops the hex columns (a catalog change: their bytes were
-- already NULL) and makes sha the primary key again. A killed conversion loses at most one
-- batch; the next node to open the store resumes it, and the others wait on the migration lock
-- until it finished, so no node ever reads a half-converted table.
--
-- Delta bases (0013): the foreign key moves to the bytea columns at once and still holds at
-- every commit, because a batch converts a delta only once its base has been converted (plain
-- rows first, then deltas level by level: at most PS_BLOB_CHAIN_MAX + 1 passes).

DROP STATISTICS IF EXISTS blobs_sha_bytes;
ALTER TABLE blobs DROP CONSTRAINT blobs_base_fkey;
DROP INDEX blobs_base;
ALTER TABLE blobs DROP CONSTRAINT blobs_pkey;
ALTER TABLE blobs RENAME COLUMN sha TO sha_hex;
ALTER TABLE blobs RENAME COLUMN base TO base_hex;
ALTER TABLE blobs ALTER COLUMN sha_hex DROP NOT NULL;
-- A node of the previous version still running fails on these columns (its text ids meet
-- bytea: no operator), rather than storing rows no lookup finds.
ALTER TABLE blobs ADD COLUMN sha bytea, ADD COLUMN base bytea;
-- Becomes the primary key once every row has its sha (ALTER TABLE ... USING INDEX).
CREATE UNIQUE INDEX blobs_pkey ON blobs(sha);
ALTER TABLE blobs ADD CONSTRAINT blobs_base_fkey FOREIGN KEY (base) REFERENCES blobs(sha)
    DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX blobs_base ON blobs(base) WHERE base IS NOT NULL;
-- The rows left to convert, in id order (the batches page through it).
CREATE INDEX blobs_hex_left ON blobs(sha_hex) WHERE sha_hex IS NOT NULL;

-- 0022's count of unindexed blobs compares blobs.sha with code_blobs.sha in this one function:
-- both are bytes now. No trigger fires during the conversion (it updates rows; other nodes wait
-- on the migration lock), so the count stays exact across it.
CREATE OR REPLACE FUNCTION ps_code_unindexed_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d bigint;
BEGIN
    -- `changed` is the statement's inserted or deleted rows (0022's triggers).
    IF TG_TABLE_NAME = 'blobs' THEN
        EXECUTE 'SELECT count(*) FROM changed b WHERE NOT EXISTS '
                '(SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)' INTO d;
        IF TG_OP = 'DELETE' THEN d := -d; END IF;
    ELSE
        EXECUTE 'SELECT count(*) FROM changed c WHERE EXISTS '
                '(SELECT 1 FROM blobs b WHERE b.sha = c.sha)' INTO d;
        IF TG_OP = 'INSERT' THEN d := -d; END IF;
    END IF;
    IF d <> 0 THEN
        WITH folded AS (
            DELETE FROM code_unindexed WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM code_unindexed FOR UPDATE SKIP LOCKED))
            RETURNING n)
        INSERT INTO code_unindexed (n) SELECT d + coalesce(sum(n), 0) FROM folded;
    END IF;
    RETURN NULL;
END
$$;
