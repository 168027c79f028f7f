-- projsync schema 13: code_fts is tokenized by projsync's own tokenizer, "projsync_trigram"
-- (store/sqlite/sqlite_code.c, registered on every connection), instead of FTS5's `trigram`.
--
-- It emits each distinct trigram of a document once, and only trigrams of printable ASCII bytes
-- and tabs (the bytes a query literal may hold; ASCII letters folded), the same rule for text
-- and binary blobs. The index is detail=none, so what it answers is unchanged, but a first sync
-- no longer spends most of its time feeding FTS5 one token per byte of text (4-6x a sync
-- without the index on libgit2; see docs/performance.md, "Code search").
--
-- The old documents cannot be turned into the new ones without the content, so the table is
-- made again empty and every blob is unindexed: every project with the index on owes its backlog,
-- which its next sync indexes, with progress. Until then an unindexed blob is a candidate of
-- every search, read and matched: results stay exact, searches are slower meanwhile.

DROP TABLE code_fts;
DELETE FROM code_blobs;

CREATE VIRTUAL TABLE code_fts USING fts5(
    content,
    content = '', detail = 'none',
    tokenize = 'projsync_trigram'
);

UPDATE projects SET code_index_pending = 1 WHERE code_index = 1;
