-- projsync schema 13 on PostgreSQL: deltas between versions of a path, the same rows as SQLite's
-- (src/store/sqlite/migrations/0013_blob_deltas.sql): `base` names the blob whose content a
-- delta (encoding 2) was compressed against, NULL for every other row. The foreign key is
-- checked at commit (a copy may insert a delta before its base) and refuses a prune that would
-- delete a remaining delta's base; the partial index serves that check.
ALTER TABLE blobs ADD COLUMN base text REFERENCES blobs(sha) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX blobs_base ON blobs(base) WHERE base IS NOT NULL;
