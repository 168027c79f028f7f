-- projsync schema 15: a run of up-to-date scheduled checks is one history row.
--
-- A project on `--every 10s` checks 360 times an hour; most checks find nothing new. Each was
-- a sync row and its events (about 1.6 KB), so the store grew with the checks, not with the
-- changes. Now, when a scheduled sync ends up to date and the sync before it in the chain is an
-- up-to-date scheduled check of the same head, the finalize transaction folds them
-- (store.c, fold_checks): the older row and its events are deleted, the new one takes its
-- place in the chain and counts the checks it stands for. Manual, API and webhook syncs are
-- never folded.
--
-- checks: how many checks the row stands for (1 for every other sync); first_check_at: when
-- the first of them ended (NULL when the row stands for itself only: then it is finished_at).

ALTER TABLE syncs ADD COLUMN checks INTEGER NOT NULL DEFAULT 1;
ALTER TABLE syncs ADD COLUMN first_check_at INTEGER;

-- The scheduler looks for projects that failed too often (to pause them) each time it queues a
-- sync: without an index that was a scan of every project, a hundred times a second on a
-- server with 1,000 projects at 10 s. Nearly every project has failures_in_row = 0.
CREATE INDEX projects_failing ON projects(failures_in_row) WHERE failures_in_row > 0;
