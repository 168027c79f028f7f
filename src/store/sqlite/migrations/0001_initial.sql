-- projsync schema 1: projects, the sync chain, versioned file rows, content-addressed blobs,
-- stored events. Times are milliseconds since the epoch (UTC).

CREATE TABLE projects (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    source             TEXT NOT NULL,
    branch             TEXT,                     -- NULL: follow the source's default branch
    max_blob_size      INTEGER NOT NULL DEFAULT 8388608 CHECK (max_blob_size >= 0),
    memory_globs       TEXT NOT NULL DEFAULT '[".memory/**/*.md"]',  -- JSON array
    last_sync_id       INTEGER,                  -- last succeeded sync
    last_commit        TEXT,
    last_error_code    TEXT,
    last_error_message TEXT,
    failures_in_row    INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);

CREATE TABLE syncs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids order the chain
    project_id       INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    branch           TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
    phase            TEXT NOT NULL DEFAULT 'none',
    commit_sha       TEXT,
    tree_sha         TEXT,
    previous_sync_id INTEGER UNIQUE,             -- rule 2: one chain
    base_sync_id     INTEGER,
    trigger          TEXT NOT NULL DEFAULT 'cli',
    added            INTEGER NOT NULL DEFAULT 0,
    modified         INTEGER NOT NULL DEFAULT 0,
    deleted          INTEGER NOT NULL DEFAULT 0,
    renamed          INTEGER NOT NULL DEFAULT 0,
    files            INTEGER NOT NULL DEFAULT 0,
    bytes            INTEGER NOT NULL DEFAULT 0,
    requests         INTEGER NOT NULL DEFAULT 0,
    up_to_date       INTEGER NOT NULL DEFAULT 0,
    skipped_large    INTEGER NOT NULL DEFAULT 0,
    error_code       TEXT,
    error_message    TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    owner_host       TEXT,
    owner_process    TEXT,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
-- Rule 2: at most one queued-or-running sync per project, and only one chain head.
CREATE UNIQUE INDEX syncs_one_active ON syncs(project_id) WHERE status IN ('queued','running');
CREATE UNIQUE INDEX syncs_one_first ON syncs(project_id) WHERE previous_sync_id IS NULL;
CREATE INDEX syncs_project ON syncs(project_id, id);
CREATE INDEX syncs_running ON syncs(status) WHERE status IN ('queued','running');

-- Rule 3: one row per path per version; visible from the succeeded sync that introduced it
-- until the succeeded sync that superseded it.
CREATE TABLE file_versions (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    mode          INTEGER NOT NULL,
    sha           TEXT NOT NULL,
    size          INTEGER,                       -- NULL for submodules
    introduced_by INTEGER NOT NULL,
    superseded_by INTEGER
);
CREATE INDEX file_versions_current ON file_versions(project_id, superseded_by, path);
CREATE INDEX file_versions_path ON file_versions(project_id, path, introduced_by);
CREATE INDEX file_versions_introduced ON file_versions(introduced_by);
CREATE INDEX file_versions_superseded ON file_versions(superseded_by) WHERE superseded_by IS NOT NULL;

-- Rule 4: content addressed by git blob SHA-1, verified on arrival, shared by every project.
CREATE TABLE blobs (
    sha     TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    content BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    sync_id INTEGER NOT NULL REFERENCES syncs(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (sync_id, seq)
) WITHOUT ROWID;
