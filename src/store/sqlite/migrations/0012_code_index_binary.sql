-- projsync schema 12: binary blobs get a code index document too (store/sqlite/sqlite_code.c,
-- fts_text). Before, a binary blob was recorded with no document and was a candidate of every
-- search, so each search read (and decompressed) every binary file of the snapshot: on libgit2,
-- 5,421 of 15,606 files.
--
-- The rows of binary blobs indexed before have no document: they are dropped, and every project
-- with the index on owes its backlog again, so its next sync indexes them (only them: the rest is
-- indexed). Until then they are unindexed, which is a candidate as before: results stay exact.

DELETE FROM code_blobs WHERE binary = 1;
UPDATE projects SET code_index_pending = 1 WHERE code_index = 1;
