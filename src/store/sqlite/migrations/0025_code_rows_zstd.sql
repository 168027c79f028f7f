-- projsync schema 25: the code index's rows (code_postings, schema 17) are stored compressed
-- when that makes them smaller: a 0 byte, then a zstd frame of the row (issue 14; the format:
-- src/store/codeindex.h). On libgit2 the rows weigh a quarter less (docs/performance.md,
-- "Schema 25"). Readers take both forms, so rows written before stay readable as they are.
--
-- Compressing them rewrites every row, which a large store must not do in one transaction. So
-- this migration only creates code_rows_raw, the key of the last row already looked at; the
-- conversion that ps_store_migrate runs after the SQL migrations (sqlite_code.c,
-- ps_sqlite_code_convert) compresses the rows after it in key order in bounded batches, one
-- transaction each that also moves the key on, and drops the table after the last row: a
-- killed conversion loses at most one batch and the next open resumes it, and an open after
-- it looks for this table only. Each row is compressed on its own, under its own key; a row
-- written meanwhile (a merge, another process) is compressed already.
CREATE TABLE code_rows_raw (after INTEGER NOT NULL);
INSERT INTO code_rows_raw VALUES (-1);
