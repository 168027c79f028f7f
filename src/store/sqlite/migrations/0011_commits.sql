-- projsync schema 11: the commits a sync brought (docs/architecture.md §4b).
--
-- Each succeeded sync records its head commit (subject, author, committer) on its own row, and
-- the commits between it and the sync before it in sync_commits, newest first, at most 250
-- (core/commits.h): what `projsync log`, GET /syncs/{id}/commits and the page list. They are
-- stored when the sync runs because the source may lose them later (a force-push and a gc, a
-- shallow cache). commit_count is how many commits the range holds (NULL: unknown, e.g. the
-- source could not compare); commits_truncated says the stored list is not all of them.
-- Syncs from before this schema have neither (head_subject NULL).

ALTER TABLE syncs ADD COLUMN head_subject TEXT;
ALTER TABLE syncs ADD COLUMN head_author_name TEXT;
ALTER TABLE syncs ADD COLUMN head_author_email TEXT;
ALTER TABLE syncs ADD COLUMN head_author_date INTEGER;
ALTER TABLE syncs ADD COLUMN head_committer_name TEXT;
ALTER TABLE syncs ADD COLUMN head_committer_email TEXT;
ALTER TABLE syncs ADD COLUMN head_committer_date INTEGER;
ALTER TABLE syncs ADD COLUMN commit_count INTEGER;
ALTER TABLE syncs ADD COLUMN commits_truncated INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sync_commits (
    sync_id         INTEGER NOT NULL REFERENCES syncs(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,          -- 0 = the head, then older
    sha             TEXT NOT NULL,
    parents         TEXT NOT NULL,             -- parent ids, space-separated
    author_name     TEXT NOT NULL,
    author_email    TEXT NOT NULL,
    author_date     INTEGER NOT NULL,          -- ms since the epoch
    committer_name  TEXT NOT NULL,
    committer_email TEXT NOT NULL,
    committer_date  INTEGER NOT NULL,
    subject         TEXT NOT NULL,
    message         TEXT NOT NULL,
    PRIMARY KEY (sync_id, position)
);
