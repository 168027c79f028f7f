-- projsync schema 13: deltas between versions of a path (store/blobcodec.h, encoding 2). A
-- delta row's content is a zstd frame compressed against the content of blob `base` as a
-- prefix; `base` is NULL for every other row. A base may be a delta itself, up to
-- PS_BLOB_CHAIN_MAX deep (the writer keeps to that bound).
--
-- A base must outlive its deltas: pruning rewrites a remaining delta whose base goes as a
-- plain row first (ps_store_prune_blobs). The foreign key makes the store refuse a delete that
-- would break that rule anyway (checked at commit, so a copy may insert a delta before its
-- base in the same transaction); the partial index keeps that check a look-up, not a scan of
-- the table for every blob deleted.
ALTER TABLE blobs ADD COLUMN base TEXT REFERENCES blobs(sha) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX blobs_base ON blobs(base) WHERE base IS NOT NULL;
