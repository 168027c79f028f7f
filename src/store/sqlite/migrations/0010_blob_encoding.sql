-- projsync schema 10: blob content at rest is encoded (store/blobcodec.h): raw, or one zstd frame.
-- blobs.size stays the uncompressed size and blobs.sha the git blob id of the uncompressed
-- content; blobs.encoding says how blobs.content holds it (0 raw, 1 zstd).
--
-- blobs becomes a rowid table: in a WITHOUT ROWID table (an index b-tree) any row over ~1000
-- bytes spills to overflow pages and leaves on average half a page empty, which cost about as
-- much as the compressed content itself (docs/performance.md). A rowid table keeps rows up to a
-- page inline and sizes its overflow chains to fill their pages.
--
-- The existing rows are not copied here: a migration is one transaction, and a large store
-- must not be rewritten in one. They move to blobs_raw, and the conversion that
-- ps_store_migrate runs after the SQL migrations moves them back into blobs, compressed, in
-- bounded batches; each batch is one transaction that inserts the converted rows and deletes
-- them from blobs_raw, so a killed conversion loses nothing and resumes where it stopped.
-- Readers look in blobs_raw for what they do not find in blobs until it is dropped (at the
-- end of the conversion, when blob_conversion.done becomes 1).

ALTER TABLE blobs RENAME TO blobs_raw;

CREATE TABLE blobs (
    id       INTEGER PRIMARY KEY,
    sha      TEXT NOT NULL UNIQUE,
    size     INTEGER NOT NULL,
    encoding INTEGER NOT NULL DEFAULT 0,
    content  BLOB NOT NULL
);

CREATE TABLE blob_conversion (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    converted INTEGER NOT NULL DEFAULT 0,   -- rows moved so far
    done      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO blob_conversion (id) VALUES (1);
