-- projsync schema 5 on PostgreSQL: the blob rescan a raised size limit asks for, and zero counts
-- for syncs that did not succeed (src/store/sqlite/migrations/0005_blob_rescan.sql explains both).

ALTER TABLE projects ADD COLUMN blob_rescan bigint NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN blob_rescan_gen bigint NOT NULL DEFAULT 0;
ALTER TABLE syncs ADD COLUMN blob_rescan bigint NOT NULL DEFAULT 0;
UPDATE projects SET blob_rescan_gen = 1, blob_rescan = 1 WHERE last_sync_id IS NOT NULL;
UPDATE syncs SET added = 0, modified = 0, deleted = 0, renamed = 0, files = 0, skipped_large = 0
WHERE status IN ('failed', 'cancelled');
