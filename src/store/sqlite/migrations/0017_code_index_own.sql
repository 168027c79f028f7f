-- projsync schema 17: the code index is projsync's own trigram index (store/codeindex.h,
-- store/sqlite/sqlite_code.c) instead of an FTS5 table.
--
-- Why: feeding FTS5 cost ~0.3 us per (blob, distinct trigram) inside FTS5 itself (its
-- pending-terms hash, segment writing and merges), so a first sync with the index took 2-2.3x
-- the CPU of one without, against the 1.5x goal of issue 13; the table was also ~6 MiB of a
-- 21 MiB store on libgit2. Now the postings of a transaction are collected in memory in an
-- array (no hashing), sorted by trigram once, and written at commit as one segment of a few
-- ~8 KiB rows of delta-varint (or bitmap) lists; segments are merged level by level
-- (docs/performance.md, "Code search"). On libgit2 the first sync with the index now costs
-- 1.3-1.35x the CPU of one without, and the index is smaller.
--
-- code_segments: one row per segment: its merge level, postings and the range of ids it
-- holds. code_postings: the segments' rows, keyed by (segment << 24) | first trigram of the row
-- (the rowid: one range read finds a trigram's row, no extra index).
--
-- code_blobs keeps its meaning (one row per indexed blob; its id is the document id; ids are
-- never reused, see sqlite_code.c). FTS5's documents cannot be turned into the new rows without
-- reading every blob again, so, as migration 0014 did, the index is emptied and every project
-- with the index on owes its backlog, which its next sync indexes with progress; until then an
-- unindexed blob is a candidate of every search, so results stay exact.

DROP TABLE code_fts;
DELETE FROM code_blobs;

CREATE TABLE code_segments (
    id       INTEGER PRIMARY KEY,
    level    INTEGER NOT NULL,
    postings INTEGER NOT NULL,
    min_id   INTEGER NOT NULL,
    max_id   INTEGER NOT NULL
);

CREATE TABLE code_postings (
    key  INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);

UPDATE projects SET code_index_pending = 1 WHERE code_index = 1;
