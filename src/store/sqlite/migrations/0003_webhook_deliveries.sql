-- projsync schema 3: GitHub webhook deliveries already handled, so a redelivery (same
-- X-GitHub-Delivery id) queues nothing new. Old rows are only a few bytes each.

CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,          -- X-GitHub-Delivery
    event       TEXT,                      -- X-GitHub-Event
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
