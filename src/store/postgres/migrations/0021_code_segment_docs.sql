-- projsync schema 21 on PostgreSQL: code index segments count their documents
-- (src/store/sqlite/migrations/0021_code_segment_docs.sql gives the reasons; pg_code.c
-- code_compact).
ALTER TABLE code_segments ADD COLUMN docs bigint;
