-- projsync schema 18: the blob prune's gate. Blobs are pruned only at a moment when no sync runs
-- (a running sync may hold blobs no file version names yet). On a busy server such a moment
-- rarely comes by itself, so the server's prune shuts the gate: until `blob_prune_until` (ms
-- since the epoch) no worker of any node claims a queued sync, the running ones end, the blobs
-- are pruned and the gate opens again. The time bounds it: a prune that dies leaves it shut for
-- at most that long. IF NOT EXISTS / OR IGNORE: a store turned back into an older schema by a
-- test runs this again.
CREATE TABLE IF NOT EXISTS prune_gate (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    blob_prune_until INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO prune_gate (id, blob_prune_until) VALUES (1, 0);
