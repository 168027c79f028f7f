-- projsync schema 17: SQLite's code index became projsync's own trigram index (its migration
-- 0017). PostgreSQL keeps pg_trgm over code_blobs.content: nothing changes here; the step
-- exists because both backends carry the same numbered steps (store.c).
SELECT 1;
