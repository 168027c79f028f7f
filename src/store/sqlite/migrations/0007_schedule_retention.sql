-- projsync schema (issue 11): scheduled syncs, failure states and retention.
--
-- Schedule: every_ms > 0 syncs at a fixed interval, every_auto adapts interval_ms between
-- auto_min_ms and auto_max_ms (model/schedule.c); both unset is off, as before. next_sync_at is
-- when the scheduler queues the next sync (NULL: never). The store decides which node queues a
-- due project: one guarded UPDATE of next_sync_at (store.h ps_store_schedule_next), and the
-- syncs_one_active index allows one queued-or-running sync anyway. Every sync's end sets
-- last_check_at and the next due time, whatever started it.
--
-- Failure states: state 'paused' stops scheduled syncs after max_failures failures in a row
-- (0: the server's --max-failures); a succeeded sync or a resume makes it 'active' again.
--
-- Retention: keep_syncs / keep_days (0: no limit) for `projsync prune`. file_versions_sha lets
-- the blob step find blobs no version references without scanning every version per blob.

ALTER TABLE projects ADD COLUMN every_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN every_auto INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN auto_min_ms INTEGER NOT NULL DEFAULT 60000;
ALTER TABLE projects ADD COLUMN auto_max_ms INTEGER NOT NULL DEFAULT 28800000;
ALTER TABLE projects ADD COLUMN interval_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN next_sync_at INTEGER;
ALTER TABLE projects ADD COLUMN last_check_at INTEGER;
ALTER TABLE projects ADD COLUMN max_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'paused'));
ALTER TABLE projects ADD COLUMN paused_at INTEGER;
ALTER TABLE projects ADD COLUMN paused_reason TEXT;
ALTER TABLE projects ADD COLUMN keep_syncs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN keep_days INTEGER NOT NULL DEFAULT 0;

UPDATE projects SET last_check_at =
    (SELECT max(finished_at) FROM syncs WHERE syncs.project_id = projects.id);

CREATE INDEX projects_due ON projects(next_sync_at)
    WHERE state = 'active' AND next_sync_at IS NOT NULL;
CREATE INDEX file_versions_sha ON file_versions(sha);
