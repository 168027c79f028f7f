-- projsync schema 6 on PostgreSQL: several nodes.
--
-- syncs.attempt is the fencing token of a running sync: takeover increments it, and every write
-- of a run (progress, staged files and memory, events, the end) names the attempt it belongs to,
-- so a node that stalled past its lease and wakes up after another node took its sync over is
-- refused instead of racing the new attempt.
--
-- nodes: one row per live `projsync serve` process, renewed every second; a reap by the CLI or
-- the API leaves an expired sync to the nodes (takeover) while any node is alive.

ALTER TABLE syncs ADD COLUMN attempt bigint NOT NULL DEFAULT 1;

CREATE TABLE nodes (
    host       text   NOT NULL,
    process    text   NOT NULL,
    started_at bigint NOT NULL,
    seen_at    bigint NOT NULL,
    lease_ms   bigint NOT NULL,
    PRIMARY KEY (host, process)
);
