-- projsync schema 19: code_blobs.sha holds the blob id's 20 bytes, as file_versions.sha does
-- since schema 16 (issue 14; docs/architecture.md, "What a row costs").
--
-- Why: code search goes from code_blobs to file_versions and back by blob id (sqlite_code.c),
-- and every such join converted one side with ps_hex()/ps_unhex(); now both sides are the same
-- 20 bytes. Each row (and its UNIQUE index entry) also holds 20 bytes less. blobs.sha stays hex
-- (converting it would rewrite every content row in one transaction), so the joins with blobs,
-- and the code_unindexed triggers of migration 0014, convert instead: they use ps_unhex() and
-- ps_hex(), which every projsync connection registers (sqlite.c ps_sqlite_functions). A tool
-- without them can read the store but not add or delete blobs or code_blobs rows.
--
-- The table is rebuilt in this one transaction under the same ids (code_postings name blobs by
-- them): the rows hold no content, so this takes a moment even for a large index, and a killed
-- conversion leaves schema 18 as it was. An id that is not 40 lowercase hex digits (no caller
-- writes one) is kept as the text it is, as schema 16 did.

DROP TRIGGER code_unindexed_blob_in;
DROP TRIGGER code_unindexed_blob_out;
DROP TRIGGER code_unindexed_code_in;
DROP TRIGGER code_unindexed_code_out;

CREATE TABLE code_blobs_19 (
    id     INTEGER PRIMARY KEY,                -- the document id in code_postings
    sha    BLOB NOT NULL UNIQUE,               -- 20 bytes
    binary INTEGER NOT NULL DEFAULT 0
);
INSERT INTO code_blobs_19 (id, sha, binary)
    SELECT id, ps_unhex(sha), binary FROM code_blobs ORDER BY id;
DROP TABLE code_blobs;
ALTER TABLE code_blobs_19 RENAME TO code_blobs;

-- code_unindexed keeps its count: the same blobs are indexed as before.
CREATE TRIGGER code_unindexed_blob_in AFTER INSERT ON blobs
WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_unhex(NEW.sha))
BEGIN UPDATE code_unindexed SET n = n + 1; END;

CREATE TRIGGER code_unindexed_blob_out AFTER DELETE ON blobs
WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = ps_unhex(OLD.sha))
BEGIN UPDATE code_unindexed SET n = n - 1; END;

CREATE TRIGGER code_unindexed_code_in AFTER INSERT ON code_blobs
WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(NEW.sha))
BEGIN UPDATE code_unindexed SET n = n - 1; END;

CREATE TRIGGER code_unindexed_code_out AFTER DELETE ON code_blobs
WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = ps_hex(OLD.sha))
BEGIN UPDATE code_unindexed SET n = n + 1; END;
