-- projsync schema 11 on PostgreSQL: the commits a sync brought (the rules are in
-- src/store/sqlite/migrations/0011_commits.sql).

ALTER TABLE syncs ADD COLUMN head_subject text;
ALTER TABLE syncs ADD COLUMN head_author_name text;
ALTER TABLE syncs ADD COLUMN head_author_email text;
ALTER TABLE syncs ADD COLUMN head_author_date bigint;
ALTER TABLE syncs ADD COLUMN head_committer_name text;
ALTER TABLE syncs ADD COLUMN head_committer_email text;
ALTER TABLE syncs ADD COLUMN head_committer_date bigint;
ALTER TABLE syncs ADD COLUMN commit_count bigint;
ALTER TABLE syncs ADD COLUMN commits_truncated integer NOT NULL DEFAULT 0;

CREATE TABLE sync_commits (
    sync_id         bigint NOT NULL REFERENCES syncs(id) ON DELETE CASCADE,
    position        bigint NOT NULL,
    sha             text NOT NULL,
    parents         text NOT NULL,
    author_name     text NOT NULL,
    author_email    text NOT NULL,
    author_date     bigint NOT NULL,
    committer_name  text NOT NULL,
    committer_email text NOT NULL,
    committer_date  bigint NOT NULL,
    subject         text NOT NULL,
    message         text NOT NULL,
    PRIMARY KEY (sync_id, position)
);
