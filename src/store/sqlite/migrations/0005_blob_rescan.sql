-- projsync schema 5: raising a project's size limit makes its next sync fetch the files it kept
-- as metadata only under the lower limit (core/sync.c, the blob rescan), like a change of the
-- memory globs makes it rescan memory (0004).
--
-- projects.blob_rescan_gen counts raises of max_blob_size and never goes down;
-- projects.blob_rescan is the raise still waiting for a rescan (0: none).
-- ps_store_project_update bumps both when the new limit is above the stored one. A sync that
-- rescans records the generation it read in syncs.blob_rescan; its finalize clears the
-- project's flag only if that is still the pending generation.
--
-- A store from before this schema may already hold files skipped under a limit raised since:
-- every project that has synced rescans once.

ALTER TABLE projects ADD COLUMN blob_rescan INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN blob_rescan_gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE syncs ADD COLUMN blob_rescan INTEGER NOT NULL DEFAULT 0;
UPDATE projects SET blob_rescan_gen = 1, blob_rescan = 1 WHERE last_sync_id IS NOT NULL;

-- A sync that did not succeed applied nothing: its counts are zero (ps_store_sync_fail now
-- stores them so); older ones kept what their scan had found.
UPDATE syncs SET added = 0, modified = 0, deleted = 0, renamed = 0, files = 0, skipped_large = 0
WHERE status IN ('failed', 'cancelled');
