-- projsync schema 6 (PostgreSQL): code search. The same model as the SQLite step of this number
-- (src/store/sqlite/migrations/0008_code_index.sql explains it): the index is by blob, a binary blob or a
-- stored blob with no row is always a candidate, projects.code_index / code_index_pending as there.
--
-- Schemas 8-16 searched code_blobs.content, an index copy of each text blob made by pg_code.c
-- (ASCII letters folded to lower case, invalid UTF-8 and NUL as U+FFFD; NULL for a binary blob
-- and a text blob over 64 MiB), through pg_trgm's GIN index code_blobs_trgm. Migration 0017
-- replaced both with projsync's own index and drops them (the index IF EXISTS).
-- This step used to create the pg_trgm extension and that GIN index; it no longer does, so a
-- server without the contrib extensions can hold a store. Nothing is lost: a projsync applying
-- this step applies every later one before it serves a query (its queries are schema 18's), so
-- 0017 drops the index unused. A store that applied this step before keeps its GIN index until
-- 0017, and the extension after it (see 0017). The column stays: 0012, 0014 and 0017 name it.
-- content is COLLATE "C" so that LIKE compares bytes whatever the database's collation.
-- (is_binary is the SQLite column `binary`: BINARY is a reserved word in PostgreSQL.)

ALTER TABLE projects ADD COLUMN code_index integer NOT NULL DEFAULT 1;
ALTER TABLE projects ADD COLUMN code_index_pending integer NOT NULL DEFAULT 0;
UPDATE projects SET code_index_pending = 1;

CREATE TABLE code_blobs (
    sha       text PRIMARY KEY,
    is_binary integer NOT NULL DEFAULT 0,
    content   text COLLATE "C"
);
