-- projsync schema 3 (PostgreSQL): GitHub webhook deliveries already handled
-- (src/store/sqlite/migrations/0003_webhook_deliveries.sql).

CREATE TABLE webhook_deliveries (
    id          text PRIMARY KEY,
    event       text,
    received_at bigint NOT NULL
);
