-- projsync schema 14: code_fts is tokenized by projsync's own tokenizer, "projsync_trigram"
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

-- FTS5 keeps new terms in memory until this many bytes (default 1 MiB) and then writes a segment
-- that its automatic merges later rewrite: fewer, larger first segments cost a first sync less.
INSERT INTO code_fts (code_fts, rank) VALUES ('hashsize', 16777216);

UPDATE projects SET code_index_pending = 1 WHERE code_index = 1;

-- How many stored blobs the index lacks (those are candidates of every search), kept by triggers
-- so that a search need not find out: counting them is an anti-join of blobs with code_blobs,
-- ~30 ms at 100,000 blobs, which every search paid although the answer is normally none. Only 0
-- is trusted (store/sqlite/sqlite_code.c); blobs and code_blobs rows are only ever inserted (OR
-- IGNORE: an ignored row fires nothing) and deleted, never updated or replaced.
CREATE TABLE code_unindexed (n INTEGER NOT NULL);
INSERT INTO code_unindexed (n) SELECT count(*) FROM blobs;

CREATE TRIGGER code_unindexed_blob_in AFTER INSERT ON blobs
WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = NEW.sha)
BEGIN UPDATE code_unindexed SET n = n + 1; END;

CREATE TRIGGER code_unindexed_blob_out AFTER DELETE ON blobs
WHEN NOT EXISTS (SELECT 1 FROM code_blobs c WHERE c.sha = OLD.sha)
BEGIN UPDATE code_unindexed SET n = n - 1; END;

CREATE TRIGGER code_unindexed_code_in AFTER INSERT ON code_blobs
WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = NEW.sha)
BEGIN UPDATE code_unindexed SET n = n - 1; END;

CREATE TRIGGER code_unindexed_code_out AFTER DELETE ON code_blobs
WHEN EXISTS (SELECT 1 FROM blobs b WHERE b.sha = OLD.sha)
BEGIN UPDATE code_unindexed SET n = n + 1; END;
