-- projsync schema 13 on PostgreSQL: a run of up-to-date scheduled checks is one history row
-- (the rules are in src/store/sqlite/migrations/0013_folded_checks.sql).

ALTER TABLE syncs ADD COLUMN checks bigint NOT NULL DEFAULT 1;
ALTER TABLE syncs ADD COLUMN first_check_at bigint;
