-- projsync schema 27: packs, small blobs compressed together (issue 14; store/blobcodec.h
-- PS_BLOB_PACKED; docs/performance.md, "Packs").
--
-- A source tree is mostly small files, and a small file compressed alone gives little: zstd has
-- no context to draw on (2.94x on the issue's generated tree, against 4.18x for the same files
-- concatenated in 64 KiB chunks). So the writer (store/blobs.c) now puts blobs of up to
-- PS_BLOB_PACK_MEMBER_MAX bytes, in the order a sync brings them, into packs of about
-- PS_BLOB_PACK_TARGET bytes: one zstd frame each (as encoding 1, so `zstd -d` reads it), in
-- blob_packs. A member's blobs row keeps its id and size with encoding 3, no content of its
-- own (a zero-length BLOB: the column stays NOT NULL, and length(content) still counts what
-- the row itself stores), and names its pack and where its bytes start in the pack's decoded
-- content.
--
-- A pack is written once and never changed; the prune deletes one no row names any more and
-- rewrites one that lost most of its members (ps_store_blob_packs_tidy). AUTOINCREMENT: an id
-- is never handed out twice, not even after the last pack was deleted, so a reader may keep a
-- decoded pack in a cache by id. The foreign key is checked at commit (the writer inserts the
-- pack before its rows, store copy the packs before the blobs); the partial index makes the
-- look-ups by pack (the members, the check when a pack goes, the sparse packs) index reads
-- and costs nothing for the rows outside packs.
--
-- Existing rows stay as they are; nothing is converted. The code_unindexed triggers (0023)
-- count rows by sha only, and no CHECK looks at content, so members count like any blob.
CREATE TABLE blob_packs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    size    INTEGER NOT NULL,                 -- of the decoded content
    content BLOB NOT NULL                     -- one zstd frame
);
ALTER TABLE blobs ADD COLUMN pack INTEGER REFERENCES blob_packs(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE blobs ADD COLUMN pack_offset INTEGER;
CREATE INDEX blobs_pack ON blobs(pack) WHERE pack IS NOT NULL;
