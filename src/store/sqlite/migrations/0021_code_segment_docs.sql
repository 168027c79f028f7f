-- projsync schema 21: each code index segment counts the documents it holds (docs), so that a
-- prune can tell when the segments mostly hold blobs it removed and merge them all into one,
-- which leaves those out (sqlite_code.c code_compact). Without it a pruned blob's postings
-- stayed until its segment merged again, which for the top level may be never.
-- Segments written before have no count (NULL): compaction counts such a segment as its
-- whole id range, so an old store is compacted at most once too often, and the merge gives
-- the new segment its count.
ALTER TABLE code_segments ADD COLUMN docs INTEGER;
