-- projsync schema 15 on PostgreSQL: a run of up-to-date scheduled checks is one history row
-- (the rules are in src/store/sqlite/migrations/0015_folded_checks.sql).

ALTER TABLE syncs ADD COLUMN checks bigint NOT NULL DEFAULT 1;
ALTER TABLE syncs ADD COLUMN first_check_at bigint;

-- The scheduler's look for projects that failed too often (to pause them), without a scan of
-- every project (src/store/sqlite/migrations/0015_folded_checks.sql).
CREATE INDEX projects_failing ON projects(failures_in_row) WHERE failures_in_row > 0;
