-- projsync schema 6 (PostgreSQL): code search. The same model as the SQLite step of this number
-- (src/store/sqlite/migrations/0008_code_index.sql explains it): the index is by blob, a binary blob or a
-- stored blob with no row is always a candidate, projects.code_index / code_index_pending as there.
--
-- The trigram index is pg_trgm's (a contrib extension; Debian ships it in the postgresql-15
-- package; it is "trusted", so a database owner without superuser rights may create it). It needs
-- the text in a column: code_blobs.content holds an index copy of each text blob, made by
-- store/postgres/pg_code.c so that a plain LIKE '%literal%' answers the store's query exactly,
-- whatever the database's encoding rules and locale:
--   - ASCII letters folded to lower case (the index serves case-sensitive and -i searches, and
--     lower() of a locale such as tr_TR would fold 'I' to a non-ASCII letter);
--   - every byte that is not valid UTF-8, and NUL, replaced by U+FFFD: literals are ASCII
--     (0x01-0x7f) and an ASCII byte is never part of a multibyte sequence, so every run of ASCII
--     bytes, and so every occurrence of a literal, survives as it was, and no new one appears.
-- content is NULL for a binary blob and for a text blob too large for pg_trgm to take apart in one
-- piece (pg_code.c: over 64 MiB): both are always candidates.
-- content is COLLATE "C" so that LIKE compares bytes whatever the database's collation.
-- (is_binary is the SQLite column `binary`: BINARY is a reserved word in PostgreSQL.)

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE projects ADD COLUMN code_index integer NOT NULL DEFAULT 1;
ALTER TABLE projects ADD COLUMN code_index_pending integer NOT NULL DEFAULT 0;
UPDATE projects SET code_index_pending = 1;

CREATE TABLE code_blobs (
    sha       text PRIMARY KEY,
    is_binary integer NOT NULL DEFAULT 0,
    content   text COLLATE "C"
);
CREATE INDEX code_blobs_trgm ON code_blobs USING gin (content gin_trgm_ops);
