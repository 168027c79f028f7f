-- projsync schema (issue 11) on PostgreSQL: scheduled syncs, failure states and retention
-- (src/store/sqlite/migrations/0007_schedule_retention.sql explains each column).

ALTER TABLE projects ADD COLUMN every_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN every_auto integer NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN auto_min_ms bigint NOT NULL DEFAULT 60000;
ALTER TABLE projects ADD COLUMN auto_max_ms bigint NOT NULL DEFAULT 28800000;
ALTER TABLE projects ADD COLUMN interval_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN next_sync_at bigint;
ALTER TABLE projects ADD COLUMN last_check_at bigint;
ALTER TABLE projects ADD COLUMN max_failures bigint NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN state text NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'paused'));
ALTER TABLE projects ADD COLUMN paused_at bigint;
ALTER TABLE projects ADD COLUMN paused_reason text;
ALTER TABLE projects ADD COLUMN keep_syncs bigint NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN keep_days bigint NOT NULL DEFAULT 0;

UPDATE projects SET last_check_at =
    (SELECT max(finished_at) FROM syncs WHERE syncs.project_id = projects.id);

CREATE INDEX projects_due ON projects(next_sync_at)
    WHERE state = 'active' AND next_sync_at IS NOT NULL;
CREATE INDEX file_versions_sha ON file_versions(sha);
