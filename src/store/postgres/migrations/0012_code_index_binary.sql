-- projsync schema 12 on PostgreSQL: binary blobs get an index copy too
-- (src/store/sqlite/migrations/0012_code_index_binary.sql explains why; postgres/pg_code.c).
-- Rows of binary blobs indexed before have no copy: they are dropped, and every project with the
-- index on owes its backlog again, so its next sync indexes them. Until then they are unindexed,
-- a candidate as before: results stay exact.

DELETE FROM code_blobs WHERE is_binary = 1 AND content IS NULL;
UPDATE projects SET code_index_pending = 1 WHERE code_index = 1;

-- A search takes the blobs without a copy (text too large to index) as candidates by this index
-- instead of reading all of code_blobs (postgres/pg_code.c ps_pg_code_candidates).
CREATE INDEX code_blobs_uncopied ON code_blobs(sha) WHERE content IS NULL;
