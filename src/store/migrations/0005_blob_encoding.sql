-- projsync schema 5: blob content at rest is encoded (store/blobcodec.h): raw, or one zstd frame.
-- blobs.size stays the uncompressed size and blobs.sha the git blob id of the uncompressed
-- content; blobs.encoding says how blobs.content holds it (0 raw, 1 zstd). Rows written before
-- this migration are raw and keep working as they are.
--
-- Compressing the existing rows is not done here: a migration is one transaction, and a large
-- store must not be rewritten in one. blob_conversion records a resumable pass that
-- ps_store_open runs after the migrations, in bounded batches, each its own transaction that
-- also moves the cursor (after_sha: every blob up to it, in sha order, was converted). A killed
-- conversion loses at most the batch in flight and resumes after the last committed one.

ALTER TABLE blobs ADD COLUMN encoding INTEGER NOT NULL DEFAULT 0;

CREATE TABLE blob_conversion (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    after_sha TEXT NOT NULL DEFAULT '',
    converted INTEGER NOT NULL DEFAULT 0,   -- rows rewritten so far
    done      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO blob_conversion (id, done) SELECT 1, NOT EXISTS (SELECT 1 FROM blobs);
