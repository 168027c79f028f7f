-- projsync schema 25 on PostgreSQL: the code index's rows (code_postings, 0017) are stored
-- compressed when that makes them smaller, the same bytes as on SQLite (the reasons and the
-- conversion: src/store/sqlite/migrations/0025_code_rows_zstd.sql; the format:
-- src/store/codeindex.h). code_rows_raw holds the key of the last row already looked at; the
-- conversion that ps_store_migrate runs after the SQL migrations, still under the migration
-- lock (pg_code.c, ps_pg_code_convert), compresses the rows after it in bounded batches, one
-- transaction each, and drops the table after the last row. A killed conversion loses at most
-- one batch; the next node to open the store resumes it, the others wait on the lock.
--
-- code_postings.data stays STORAGE EXTERNAL (0017): out of line when large, never
-- pglz-compressed, which the zstd frames would only cost time for.
ALTER TABLE code_postings ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE code_rows_raw (seg bigint NOT NULL, first integer NOT NULL);
INSERT INTO code_rows_raw VALUES (-1, -1);
