-- projsync schema 17 on PostgreSQL: the code index is projsync's own trigram index
-- (store/codeindex.h, store/postgres/pg_code.c), as on SQLite (its migration 0017 explains the
-- format), instead of pg_trgm's GIN index over code_blobs.content.
--
-- Why: a first sync with the GIN index cost 3.6x one without (the server's GIN insertion per
-- distinct trigram and row, and a TOASTed copy of every blob's text, which also doubled the
-- text the database stored). Now projsync collects a transaction's postings in memory and
-- writes them just before its outermost COMMIT, in the same transaction as the code_blobs rows,
-- as one segment: a few ~8 KiB bytea rows in code_postings (stored EXTERNAL: the varint lists
-- do not compress, so PostgreSQL does not try). Segments are merged 8 per level; several nodes
-- may write segments at once, and a merge takes its inputs with FOR UPDATE SKIP LOCKED, so two
-- merges never take the same segment and none waits for another (docs/architecture.md,
-- "Code search").
--
-- code_blobs.id is the document id: from a sequence, so ids are never reused (a pruned blob's
-- postings stay in their segment until a merge drops them; a new blob given that id would
-- inherit them). The copies cannot be turned into postings without reading every blob again,
-- so, as SQLite's 0017, the index is emptied and every project with the index on owes its
-- backlog, which its next sync indexes with progress; meanwhile an unindexed blob is a
-- candidate of every search, so results stay exact. The pg_trgm extension, which 0008 created
-- before it stopped doing so, is left installed (dropping it needs its owner; nothing uses it
-- any more); the index is dropped IF EXISTS because 0008 no longer makes it.

DROP INDEX IF EXISTS code_blobs_trgm;
DROP INDEX IF EXISTS code_blobs_uncopied;
DELETE FROM code_blobs;
ALTER TABLE code_blobs DROP COLUMN content;

CREATE SEQUENCE code_blobs_id_seq;
ALTER TABLE code_blobs ADD COLUMN id bigint NOT NULL DEFAULT nextval('code_blobs_id_seq');
ALTER SEQUENCE code_blobs_id_seq OWNED BY code_blobs.id;
CREATE UNIQUE INDEX code_blobs_id ON code_blobs(id);

CREATE TABLE code_segments (
    id       bigserial PRIMARY KEY,
    level    integer NOT NULL,
    postings bigint NOT NULL,
    min_id   bigint NOT NULL,
    max_id   bigint NOT NULL
);

CREATE TABLE code_postings (
    seg   bigint NOT NULL,
    first integer NOT NULL,
    data  bytea NOT NULL,
    PRIMARY KEY (seg, first)
);
ALTER TABLE code_postings ALTER COLUMN data SET STORAGE EXTERNAL;

UPDATE projects SET code_index_pending = 1 WHERE code_index = 1;
