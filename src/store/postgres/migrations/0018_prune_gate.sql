-- projsync schema 18: the blob prune's gate (see the SQLite migration of the same number).
CREATE TABLE IF NOT EXISTS prune_gate (
    id               integer PRIMARY KEY CHECK (id = 1),
    blob_prune_until bigint NOT NULL DEFAULT 0
);
INSERT INTO prune_gate (id, blob_prune_until) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
