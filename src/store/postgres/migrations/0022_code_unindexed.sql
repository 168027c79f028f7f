-- projsync schema 22 on PostgreSQL: how many stored blobs the code index lacks, kept by
-- triggers as SQLite's code_unindexed has been since schema 14; and dir_trees rewritten so that
-- the entries 0020 dropped give their space back.
--
-- 1. The count. A search takes the stored blobs the index lacks (they are candidates of every
-- search) by an anti-join of blobs with code_blobs, ~4.5 ms per search on a libgit2 store and
-- growing with the blobs, although the answer is normally none. When the count is 0 the search
-- and ps_pg_code_unindexed skip it (pg_code.c); only 0 is trusted, as on SQLite.
--
-- Not one row updated by every writer: several nodes insert blobs and code_blobs rows at once
-- (READ COMMITTED), and a single counter row would be locked by each sync's transaction from
-- its blobs' INSERT to its COMMIT, serialising the nodes' syncs, and could deadlock them (one
-- holds the row and waits for a blob id the other inserted; the other waits for the row).
-- Instead each change inserts its delta as a row, and the count is the sum of the rows. To keep
-- them few, the insert folds in the rows no other transaction holds (FOR UPDATE SKIP LOCKED:
-- never a wait): the table holds about one row, one more per transaction in flight, and a dead
-- row per change for VACUUM. A change is a statement, not a row (statement triggers over the
-- rows the statement changed: a batch of blobs costs one probe per row and one delta). On one
-- node this costs what one counter row would: a first sync of libgit2 at HEAD~2000 (4,806
-- files), median of 7, server CPU 0.28 s without the count, 0.31 s with it, either way
-- (bench/pg_code_bench.py, docs/performance.md).
--
-- Exact under concurrency because the count changes only with blobs and code_blobs rows, and
-- every such transaction holds a lock on blobs to its end (it writes blobs, or its trigger reads
-- them): a sync inserts a blob before the index entry for it, and a blob another transaction
-- inserts and has not committed blocks its own insert (ON CONFLICT waits), so the code_blobs
-- trigger sees the blob; deletes happen only in the blob prune, under ACCESS EXCLUSIVE on blobs
-- (postgres/pg.c ps_pg_prune_blobs). A count too high (a code_blobs row inserted for a blob the
-- transaction never saw) would only slow searches; too low cannot happen that way.
--
-- The comparison of blobs.sha (hex text) with code_blobs.sha (20 bytes) is in one function,
-- ps_code_unindexed_change, the only place to change when blobs.sha changes type.

-- Writers of blobs and code_blobs wait from here to this migration's end, and the ones at work
-- (a node of the previous version) end first, so the count below sees every row written without
-- the triggers and every later row fires them.
LOCK TABLE blobs, code_blobs IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE code_unindexed (n bigint NOT NULL);
INSERT INTO code_unindexed (n)
    SELECT count(*) FROM blobs b
    WHERE NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_unhex(b.sha));

-- The counts are planned at each run (EXECUTE), with the tables' and the statement's sizes as
-- they are: a plan made once per connection, while the tables were small (a new store, a first
-- sync), scanned the whole other table for each changed row, which cost a first sync of libgit2
-- 0.5 s more server CPU, growing with the square of its blobs.
CREATE FUNCTION ps_code_unindexed_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d bigint;
BEGIN
    -- `changed` is the statement's inserted or deleted rows (the triggers below).
    IF TG_TABLE_NAME = 'blobs' THEN
        EXECUTE 'SELECT count(*) FROM changed b WHERE NOT EXISTS '
                '(SELECT 1 FROM code_blobs c WHERE c.sha = ps_unhex(b.sha))' INTO d;
        IF TG_OP = 'DELETE' THEN d := -d; END IF;
    ELSE
        EXECUTE 'SELECT count(*) FROM changed c WHERE EXISTS '
                '(SELECT 1 FROM blobs b WHERE b.sha = ps_hex(c.sha))' INTO d;
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

CREATE TRIGGER code_unindexed_blob_in AFTER INSERT ON blobs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION ps_code_unindexed_change();
CREATE TRIGGER code_unindexed_blob_out AFTER DELETE ON blobs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION ps_code_unindexed_change();
CREATE TRIGGER code_unindexed_code_in AFTER INSERT ON code_blobs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION ps_code_unindexed_change();
CREATE TRIGGER code_unindexed_code_out AFTER DELETE ON code_blobs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION ps_code_unindexed_change();

-- 2. DROP COLUMN (0020) only marks dir_trees.entries dropped: every row written before keeps
-- its bytes (and TOAST) until it is rewritten. A type change whose USING is not a plain column
-- reference rewrites the table (the dropped column stored as NULL) with its indexes, under the
-- lock this transaction holds anyway; the rows hold only ids and sync numbers, so it takes a
-- moment. The type stays bytea and every value the same bytes. (VACUUM FULL would do the same
-- but cannot run in a transaction.)
ALTER TABLE dir_trees ALTER COLUMN tree_sha TYPE bytea USING tree_sha || ''::bytea;
