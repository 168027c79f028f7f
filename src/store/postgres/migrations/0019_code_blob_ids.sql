-- projsync schema 19 on PostgreSQL: code_blobs.sha is bytea, the blob id's 20 bytes, as
-- file_versions.sha is since schema 16 (src/store/sqlite/migrations/0019_code_blob_ids.sql gives
-- the reasons). Code search joins code_blobs and file_versions with no conversion; blobs.sha stays
-- text, so the joins with blobs convert with ps_unhex()/ps_hex() (migration 0016).
--
-- One transaction: ALTER COLUMN ... TYPE rewrites the table (id, sha, is_binary: no content) and
-- rebuilds its primary key and id index, with the ids kept (code_postings name blobs by them).
-- An id that is not 40 lowercase hex digits (no caller writes one) is kept as the bytes of its
-- text, as 0016 did.

ALTER TABLE code_blobs ALTER COLUMN sha TYPE bytea USING
    CASE WHEN sha ~ '^[0-9a-f]{40}$' THEN decode(sha, 'hex') ELSE convert_to(sha, 'UTF8') END;

-- A search takes the stored blobs the index lacks (normally none) by an anti-join on
-- ps_unhex(blobs.sha) = code_blobs.sha (postgres/pg_code.c). Without statistics on that
-- expression the planner guessed half the blobs unindexed and read every file version of the
-- store to join them (a sequential scan instead of the file_versions_sha index: 7.6 ms against
-- 4.7 ms in one EXPLAIN ANALYZE on libgit2, and growing with the store). With them it sees
-- that ps_unhex(sha) is as distinct as sha, as it saw for the text ids before. ANALYZE fills
-- them (and code_blobs', which the ALTER dropped) now: autovacuum would only once a tenth of
-- the rows had changed.
CREATE STATISTICS blobs_sha_bytes ON (decode(sha, 'hex')) FROM blobs;
ANALYZE blobs, code_blobs;
