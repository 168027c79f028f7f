-- projsync schema 4 (PostgreSQL): the memory rescan after a change of memory globs
-- (src/store/sqlite/migrations/0004_memory_rescan.sql explains the columns).

ALTER TABLE projects ADD COLUMN memory_rescan bigint NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN memory_rescan_gen bigint NOT NULL DEFAULT 0;
ALTER TABLE syncs ADD COLUMN memory_rescan bigint NOT NULL DEFAULT 0;
