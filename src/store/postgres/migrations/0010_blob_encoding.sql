-- projsync schema 10 on PostgreSQL: blob content at rest is encoded by store/blobcodec.h, the
-- same bytes as in SQLite (src/store/sqlite/migrations/0010_blob_encoding.sql): blobs.encoding says how
-- blobs.content holds the content (0 raw, 1 zstd); sha and size stay those of the uncompressed
-- content.
--
-- Existing rows keep encoding 0 (raw) and read as before; they are not converted. A PostgreSQL
-- store is recent enough that its raw rows are few next to what later syncs add, and rewriting
-- them here would hold one transaction (and its WAL) for the whole table.

ALTER TABLE blobs ADD COLUMN encoding smallint NOT NULL DEFAULT 0;

-- A zstd frame does not compress again, and a raw row is one zstd could not shrink by 1/16:
-- TOAST's pglz would only spend time on them (0001 set it already; kept here as the rule).
ALTER TABLE blobs ALTER COLUMN content SET STORAGE EXTERNAL;
