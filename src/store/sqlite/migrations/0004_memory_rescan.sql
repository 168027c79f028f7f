-- projsync schema 4: a change of a project's memory globs makes its next sync re-evaluate
-- memory against the whole snapshot it produces (core/sync.c, the memory rescan).
--
-- projects.memory_rescan_gen counts glob changes and never goes down; projects.memory_rescan
-- is the generation still waiting for a rescan (0: none). ps_store_project_update bumps both
-- when the globs differ from the stored ones. A sync that rescans records the generation it
-- read in syncs.memory_rescan; its finalize clears the project's flag only if that is still the
-- pending generation, so a `project set` made while the sync ran is not lost.

ALTER TABLE projects ADD COLUMN memory_rescan INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN memory_rescan_gen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE syncs ADD COLUMN memory_rescan INTEGER NOT NULL DEFAULT 0;
