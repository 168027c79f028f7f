"""
Fixtures for the integration suite: every test runs the real `projsync` binary against its own
temporary store and its own real git repositories, built with the git command line. Nothing here
touches the network or the user's own data: HOME, XDG_DATA_HOME and git's global config point into
the test's temp dir.

The binary is $PROJSYNC_BIN (the Makefile sets it), else build-san/projsync under the repo root.
It is usually built with ASan/UBSan; any sanitizer report on stderr fails the test, whatever the
exit code, so a leak or an overflow is never hidden behind an expected failure.
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-san" / "projsync")

# The empty tree: `git diff EMPTY_TREE C` lists everything in C as added.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
FINAL_KINDS = ("succeeded", "failed", "cancelled")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer", "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C.UTF-8",
}


# The suites that exercise the store run against both backends: SQLite, and PostgreSQL on the
# private server of tests/pg/with-pg (PROJSYNC_TEST_PG_URL). Each PostgreSQL test gets a new
# database, dropped at its end. Tests about SQLite files themselves are marked sqlite_only.
PG_URL = os.environ.get("PROJSYNC_TEST_PG_URL")
BOTH_BACKENDS = {"test_snapshot", "test_history", "test_bad_input", "test_memory", "test_server",
                 "test_server_memory", "test_checkout", "test_project_set", "test_store_copy",
                 "test_schedule", "test_retention", "test_grep"}
BOTH_BACKENDS |= {"test_parity"}  # PATCH, rename, cancel: the rename is a store call of each backend
BOTH_BACKENDS |= {"test_memory_notes"}  # note edit/delete, prefix search: store calls of each backend
BOTH_BACKENDS |= {"test_store_compression"}  # the blob codec behind both backends
BOTH_BACKENDS |= {"test_commits"}  # the commits of a sync: stored by each backend
BOTH_BACKENDS |= {"test_patch_schedule"}  # PATCH of schedule/retention: saved by each backend
BOTH_BACKENDS |= {"test_store_rows"}  # schema 16: object ids at rest, converted by each backend
BOTH_BACKENDS |= {"test_thin_trees"}  # schema 20: directory entries rebuilt by each backend
BOTH_BACKENDS |= {"test_audit"}  # memory tags and globs: stored by each backend
BOTH_BACKENDS |= {"test_packs"}  # schema 27: packs written, read and pruned by each backend


def pytest_report_header(config):
    return (f"projsync binary: {BIN}\n"
            f"PostgreSQL for the tests: {PG_URL or 'none (PostgreSQL runs are skipped)'}")


def pytest_configure(config):
    # make test runs the suites on several processes (pytest-xdist), then the `serial` tests
    # alone: they restart what every test shares (the PostgreSQL server of tests/pg/with-pg).
    config.addinivalue_line("markers", "serial: run alone, after the parallel part")
    config.addinivalue_line("markers", "sqlite_only: about SQLite files, not run on PostgreSQL")


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    backends = ["sqlite"]
    if module in BOTH_BACKENDS and not metafunc.definition.get_closest_marker("sqlite_only"):
        backends.append("pg")
    metafunc.parametrize("backend", backends)


def pg_required():
    return os.environ.get("CI") == "true" or bool(os.environ.get("PROJSYNC_TEST_REQUIRE_PG"))


def psql(url, sql):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"psql {sql!r} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


def set_bytes(ps, table, column, data, **key):
    """Sets `column` of the row of `table` that `key` names (id=N, or sha=HEX for a 20-byte id)
    to the bytes `data`, behind projsync's back, on either backend (a test damaging a store)."""
    (name, value), = key.items()
    if ps.backend == "pg":
        where = f"sha = ps_unhex('{value}')" if name == "sha" else f"{name} = {int(value)}"
        psql(ps.db, f"UPDATE {table} SET {column} = '\\x{data.hex()}'::bytea WHERE {where}")
        return
    con = sqlite3.connect(ps.db)
    with con:
        con.execute(f"UPDATE {table} SET {column} = ? WHERE {name} = ?",
                    (data, bytes.fromhex(value) if name == "sha" else value))
    con.close()


def pg_url_for(db):
    """The test server's URL with another database name."""
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture
def pg_database():
    """new() -> the URL of a new empty database on the test server; all dropped at the end."""
    if not PG_URL:
        if pg_required():
            pytest.fail("PROJSYNC_TEST_PG_URL is not set (make test starts PostgreSQL with "
                        "tests/pg/with-pg)")
        pytest.skip("PostgreSQL runs need PROJSYNC_TEST_PG_URL (tests/pg/with-pg sets it)")
    made = []

    def new():
        name = "it_" + os.urandom(6).hex()
        psql(PG_URL, f"CREATE DATABASE {name}")
        made.append(name)
        return pg_url_for(name)
    yield new
    for name in made:
        psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session", autouse=True)
def _binary_exists():
    if not os.access(BIN, os.X_OK):
        pytest.exit(f"projsync binary not found at {BIN} (set PROJSYNC_BIN)", returncode=2)


def sqlite_code_tokenizer(db_path, tokenizer):
    """Names `tokenizer` as code_fts's in an SQLite store's schema. Python's sqlite3 has FTS5 but
    not projsync's own tokenizer (projsync_trigram, registered by projsync on each connection),
    and FTS5 cannot open the table without it; naming FTS5's `trigram` instead lets a test drop
    the table, fill it as schema 13 did, or run FTS5's integrity-check (structural only on a
    contentless table: it never tokenizes)."""
    import sqlite3
    db = sqlite3.connect(db_path)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'code_fts'").fetchone()[0]
    new = re.sub(r"tokenize = '[a-z_]+'", f"tokenize = '{tokenizer}'", sql)
    version = db.execute("PRAGMA schema_version").fetchone()[0]
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'code_fts'", (new,))
    db.execute(f"PRAGMA schema_version = {version + 1}")
    db.commit()
    db.close()


# Undoes migration 0015 (folded checks), for a test that turns a store back into an older
# schema: the same SQL on both backends.
UNDO_FOLDED_CHECKS = ("DROP INDEX projects_failing; ALTER TABLE syncs DROP COLUMN checks; "
                      "ALTER TABLE syncs DROP COLUMN first_check_at; ")


def sqlite_id_functions(con):
    """Registers projsync's ps_unhex/ps_hex (src/store/sqlite/sqlite.c) on a Python sqlite3
    connection: the store's triggers (migrations 0019, 0023) call them, and a test may too."""
    def unhex(v):
        return bytes.fromhex(v) if isinstance(v, str) and re.fullmatch(r"[0-9a-f]{40}", v) else v

    def tohex(v):
        return v.hex() if isinstance(v, bytes) and len(v) == 20 else v
    con.create_function("ps_unhex", 1, unhex, deterministic=True)
    con.create_function("ps_hex", 1, tohex, deterministic=True)


def code_row_raw(data):
    """A code_postings row as a projsync before schema 25 stored it: a compressed row (a 0 byte,
    then a zstd frame with its content size; src/store/codeindex.h) decompressed by libzstd
    through ctypes (Python has no zstd module, and libzstd1 is there wherever projsync builds;
    its CLI, Debian's zstd package, need not be), any other row as it is."""
    if data[:1] != b"\0":
        return data
    import ctypes
    lib = ctypes.CDLL("libzstd.so.1")
    lib.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
    lib.ZSTD_decompress.restype = ctypes.c_size_t
    lib.ZSTD_isError.restype = ctypes.c_uint
    frame = bytes(data[1:])
    size = lib.ZSTD_getFrameContentSize(frame, ctypes.c_size_t(len(frame)))
    assert size < 1 << 20, size  # also the "unknown" and "error" values, near 2**64
    out = ctypes.create_string_buffer(max(size, 1))
    n = lib.ZSTD_decompress(out, ctypes.c_size_t(size), frame, ctypes.c_size_t(len(frame)))
    assert not lib.ZSTD_isError(ctypes.c_size_t(n)) and n == size, n
    return out.raw[:n]


# Undoes migration 0026 (a file version names its directory by id) in an SQLite store:
# file_versions and dir_trees with their full paths again, as schemas 16 and 20 left them, the
# same row ids, and no dirs table. Does nothing on a store without it.
SQLITE_UNDO_DIR_IDS = """
    CREATE TABLE file_versions_25 (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        path TEXT NOT NULL, mode INTEGER NOT NULL, sha BLOB NOT NULL, size INTEGER,
        introduced_by INTEGER NOT NULL, superseded_by INTEGER);
    INSERT INTO file_versions_25
        SELECT fv.id, fv.project_id, iif(d.path = '', fv.name, d.path || '/' || fv.name),
               fv.mode, fv.sha, fv.size, fv.introduced_by, fv.superseded_by
        FROM file_versions fv JOIN dirs d ON d.id = fv.dir_id ORDER BY fv.id;
    DROP TABLE file_versions;
    ALTER TABLE file_versions_25 RENAME TO file_versions;
    CREATE INDEX file_versions_path ON file_versions(project_id, path, introduced_by);
    CREATE INDEX file_versions_introduced ON file_versions(introduced_by);
    CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by)
        WHERE superseded_by IS NOT NULL;
    CREATE INDEX file_versions_sha ON file_versions(sha);
    CREATE TABLE dir_trees_25 (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        path TEXT NOT NULL, tree_sha BLOB NOT NULL, introduced_by INTEGER NOT NULL,
        superseded_by INTEGER);
    INSERT INTO dir_trees_25
        SELECT dt.id, dt.project_id, d.path, dt.tree_sha, dt.introduced_by, dt.superseded_by
        FROM dir_trees dt JOIN dirs d ON d.id = dt.dir_id ORDER BY dt.id;
    DROP TABLE dir_trees;
    ALTER TABLE dir_trees_25 RENAME TO dir_trees;
    CREATE INDEX dir_trees_path ON dir_trees(project_id, path, introduced_by);
    CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by);
    CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by)
        WHERE superseded_by IS NOT NULL;
    DROP TABLE dirs;
"""


def sqlite_undo_blob_packs(con):
    """Undoes migration 0027 (packs) in an SQLite store: each packed blob raw again (encoding 0,
    its bytes cut from its pack's decoded content), blobs rebuilt as migration 0023 made it
    (SQLite cannot drop a column with a foreign key: the same row ids, its index and the
    code_unindexed triggers, which go with the table) and no blob_packs. Does nothing on a
    store without it. Leaves PRAGMA user_version alone; does not commit."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'blob_packs'").fetchone():
        return
    sqlite_id_functions(con)
    pack, data = None, b""
    for rowid, size, p, off in con.execute("SELECT id, size, pack, pack_offset FROM blobs "
                                           "WHERE pack IS NOT NULL ORDER BY pack").fetchall():
        if p != pack:
            frame = con.execute("SELECT content FROM blob_packs WHERE id = ?", (p,)).fetchone()[0]
            pack, data = p, code_row_raw(b"\0" + bytes(frame))
        con.execute("UPDATE blobs SET encoding = 0, pack = NULL, pack_offset = NULL, content = ? "
                    "WHERE id = ?", (data[off:off + size], rowid))
    for t in ("code_in", "code_out"):
        con.execute(f"DROP TRIGGER code_unindexed_{t}")
    con.execute("CREATE TABLE blobs_26 (id INTEGER PRIMARY KEY, sha BLOB NOT NULL UNIQUE "
                "CHECK (typeof(sha) = 'blob' AND length(sha) = 20), size INTEGER NOT NULL, "
                "encoding INTEGER NOT NULL DEFAULT 0, base BLOB REFERENCES blobs(sha) "
                "DEFERRABLE INITIALLY DEFERRED CHECK (base IS NULL OR "
                "(typeof(base) = 'blob' AND length(base) = 20)), content BLOB NOT NULL)")
    con.execute("INSERT INTO blobs_26 SELECT id, sha, size, encoding, base, content FROM blobs "
                "ORDER BY id")
    con.execute("DROP TABLE blobs")
    con.execute("ALTER TABLE blobs_26 RENAME TO blobs")
    con.execute("DROP TABLE blob_packs")
    con.execute("CREATE INDEX blobs_delta_base ON blobs(base) WHERE base IS NOT NULL")
    step = (ROOT / "src" / "store" / "sqlite" / "migrations" / "0023_blob_ids.sql").read_text()
    for trigger in re.findall(r"CREATE TRIGGER .*?END;", step, re.S):
        if "ON blobs_hex" not in trigger:
            con.execute(trigger)


def sqlite_undo_dir_ids(con):
    """Undoes migration 0026 (SQLITE_UNDO_DIR_IDS) in an SQLite store, first of every undo of
    an older migration: those name file_versions.path and dir_trees.path. Undoes 0027 first
    (sqlite_undo_blob_packs). Leaves PRAGMA user_version alone; does not commit."""
    sqlite_undo_blob_packs(con)
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'dirs'").fetchone():
        return
    for stmt in SQLITE_UNDO_DIR_IDS.split(";"):
        if stmt.strip():
            con.execute(stmt)


def sqlite_undo_code_rows_zstd(con):
    """Undoes migration 0025 (code index rows compressed) in an SQLite store, for a test that
    turns it back into an older schema: every code_postings row raw again (code_row_raw) and
    code_rows_raw gone. Undoes 0026 first. Leaves PRAGMA user_version alone; does not commit."""
    sqlite_undo_dir_ids(con)
    con.execute("DROP TABLE IF EXISTS code_rows_raw")
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'code_postings'").fetchone():
        return
    rows = con.execute("SELECT key, data FROM code_postings WHERE substr(data, 1, 1) = x'00'")
    for key, data in rows.fetchall():
        con.execute("UPDATE code_postings SET data = ? WHERE key = ?", (code_row_raw(data), key))


def pg_undo_code_rows_zstd(url):
    """Undoes PostgreSQL's migration 0025 as sqlite_undo_code_rows_zstd does (the rows go
    through Python: PostgreSQL has no zstd function). Leaves projsync_schema alone."""
    rows = psql(url, "SELECT seg, first, encode(data, 'hex') FROM code_postings "
                     "WHERE get_byte(data, 0) = 0")
    sql = ["BEGIN", "DROP TABLE IF EXISTS code_rows_raw"]
    for line in rows.splitlines():
        seg, first, data = line.split("|")
        raw = code_row_raw(bytes.fromhex(data))
        sql.append(f"UPDATE code_postings SET data = '\\x{raw.hex()}'::bytea "
                   f"WHERE seg = {seg} AND first = {first}")
    sql.append("COMMIT")
    # On stdin: the rows' hex is longer than a command line may be.
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url],
                       input=";\n".join(sql) + ";\n", capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def pg_undo_blob_packs(url):
    """Undoes PostgreSQL's migration 0027 (packs) as sqlite_undo_blob_packs does: each packed
    blob raw again (encoding 0, its bytes cut from its pack's decoded content, through Python:
    PostgreSQL has no zstd function), blobs without pack and pack_offset, no blob_packs. Run it
    before any other PostgreSQL undo (PG_UNDO_DIR_IDS and the lists built on it, which are SQL
    only). Does nothing on a store without it. Leaves projsync_schema alone."""
    if psql(url, "SELECT to_regclass('blob_packs') IS NOT NULL").strip() != "t":
        return
    rows = psql(url, "SELECT encode(sha, 'hex'), size, pack, pack_offset FROM blobs "
                     "WHERE pack IS NOT NULL ORDER BY pack")
    sql, pack, data = ["BEGIN"], None, b""
    for line in rows.splitlines():
        sha, size, p, off = line.split("|")
        if p != pack:
            frame = psql(url, f"SELECT encode(content, 'hex') FROM blob_packs WHERE id = {p}")
            pack, data = p, code_row_raw(b"\0" + bytes.fromhex(frame.strip()))
        raw = data[int(off):int(off) + int(size)]
        sql.append(f"UPDATE blobs SET encoding = 0, pack = NULL, pack_offset = NULL, "
                   f"content = '\\x{raw.hex()}'::bytea WHERE sha = decode('{sha}', 'hex')")
    sql += ["ALTER TABLE blobs DROP COLUMN pack, DROP COLUMN pack_offset",
            "DROP TABLE blob_packs", "COMMIT"]
    # On stdin: the rows' hex is longer than a command line may be.
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url],
                       input=";\n".join(sql) + ";\n", capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def sqlite_undo_blob_ids(con):
    """Undoes migration 0023 (blobs.sha and blobs.base as 20 bytes) in an SQLite store, for a
    test that turns it back into an older schema: blobs as schema 13 left it, hex ids, the same
    row ids, and the code_unindexed triggers as schema 19 made them. Registers ps_unhex/ps_hex on
    the connection (sqlite_id_functions). Undoes 0026 first (sqlite_undo_dir_ids). Leaves PRAGMA
    user_version alone; does not commit."""
    sqlite_id_functions(con)
    sqlite_undo_dir_ids(con)
    if ("sha", "BLOB") not in {(r[1], r[2]) for r in con.execute("PRAGMA table_info(blobs)")}:
        return
    triggers = [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN "
        "('blobs', 'code_blobs') AND name LIKE 'code_unindexed_%'")]
    for t in triggers:
        con.execute(f"DROP TRIGGER {t}")
    con.execute("CREATE TABLE blobs_22 (id INTEGER PRIMARY KEY, sha TEXT NOT NULL UNIQUE, "
                "size INTEGER NOT NULL, encoding INTEGER NOT NULL DEFAULT 0, "
                "content BLOB NOT NULL, "
                "base TEXT REFERENCES blobs(sha) DEFERRABLE INITIALLY DEFERRED)")
    con.execute("INSERT INTO blobs_22 (id, sha, size, encoding, content, base) "
                "SELECT id, ps_hex(sha), size, encoding, content, ps_hex(base) FROM blobs "
                "ORDER BY id")
    con.execute("DROP TABLE blobs")
    con.execute("ALTER TABLE blobs_22 RENAME TO blobs")
    con.execute("CREATE INDEX blobs_base ON blobs(base) WHERE base IS NOT NULL")
    if triggers:
        step = (ROOT / "src" / "store" / "sqlite" / "migrations" /
                "0019_code_blob_ids.sql").read_text()
        for trigger in re.findall(r"CREATE TRIGGER .*?END;", step, re.S):
            con.execute(trigger)


def pg_undo_dir_ids_sql():
    """SQL that undoes PostgreSQL's migration 0026 (a file version names its directory by id):
    file_versions and dir_trees with their full paths again, in schema 25's columns and
    indexes, the same row ids and identities, dirs and ps_path gone, and ps_dir_entries as
    migration 0020 made it. Does nothing on a store without it, so that every undo list may
    start with it (PG_UNDO_BLOB_IDS does). Leaves projsync_schema alone."""
    step = (ROOT / "src" / "store" / "postgres" / "migrations" / "0020_thin_trees.sql").read_text()
    fn = step[step.index("CREATE FUNCTION ps_dir_entries"):step.rindex("$$") + 2]
    fn = fn.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    seq = ("PERFORM setval(pg_get_serial_sequence('{t}_25', 'id'), greatest("
           "(SELECT coalesce(max(id), 0) FROM {t}), coalesce(pg_sequence_last_value("
           "pg_get_serial_sequence('{t}', 'id')::regclass), 0)) + 1, false); ")
    rename = ("DROP TABLE {t}; ALTER TABLE {t}_25 RENAME TO {t}; "
              "ALTER SEQUENCE {t}_25_id_seq RENAME TO {t}_id_seq; "
              "ALTER TABLE {t} RENAME CONSTRAINT {t}_25_pkey TO {t}_pkey; "
              "ALTER TABLE {t} RENAME CONSTRAINT {t}_25_project_id_fkey TO {t}_project_id_fkey; ")
    return (
        "DO $undo$ BEGIN IF to_regclass('dirs') IS NOT NULL THEN "
        "CREATE TABLE file_versions_25 (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
        "path bytea NOT NULL, mode bigint NOT NULL, sha bytea NOT NULL, size bigint, "
        "introduced_by bigint NOT NULL, superseded_by bigint); "
        "INSERT INTO file_versions_25 (id, project_id, path, mode, sha, size, introduced_by, "
        "superseded_by) SELECT fv.id, fv.project_id, ps_path(d.path, fv.name), fv.mode, fv.sha, "
        "fv.size, fv.introduced_by, fv.superseded_by FROM file_versions fv "
        "JOIN dirs d ON d.id = fv.dir_id ORDER BY fv.id; "
        + seq.format(t="file_versions") + rename.format(t="file_versions") +
        "CREATE INDEX file_versions_path ON file_versions(project_id, path, introduced_by); "
        "CREATE INDEX file_versions_introduced ON file_versions(introduced_by); "
        "CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by) "
        "WHERE superseded_by IS NOT NULL; "
        "CREATE INDEX file_versions_sha ON file_versions(sha); "
        "CREATE TABLE dir_trees_25 (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "project_id bigint NOT NULL REFERENCES projects(id) ON DELETE CASCADE, "
        "path bytea NOT NULL, tree_sha bytea NOT NULL, introduced_by bigint NOT NULL, "
        "superseded_by bigint); "
        "INSERT INTO dir_trees_25 (id, project_id, path, tree_sha, introduced_by, superseded_by) "
        "SELECT dt.id, dt.project_id, d.path, dt.tree_sha, dt.introduced_by, dt.superseded_by "
        "FROM dir_trees dt JOIN dirs d ON d.id = dt.dir_id ORDER BY dt.id; "
        + seq.format(t="dir_trees") + rename.format(t="dir_trees") +
        "CREATE INDEX dir_trees_path ON dir_trees(project_id, path, introduced_by); "
        "CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by); "
        "CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by) "
        "WHERE superseded_by IS NOT NULL; "
        "DROP TABLE dirs; DROP FUNCTION ps_path(bytea, bytea); "
        f"EXECUTE $fn${fn}$fn$; "
        "END IF; END $undo$")


# Undoes PostgreSQL's migration 0026 (pg_undo_dir_ids_sql), first of every undo of an older
# migration: the ones below name file versions and directory trees by their paths. Call
# pg_undo_blob_packs (0027) on the store before any of them.
PG_UNDO_DIR_IDS = [pg_undo_dir_ids_sql()]

# Undoes PostgreSQL's migration 0023 (blobs.sha and blobs.base as bytea), for a test that turns
# a store back into an older schema: text ids again, with the statistics of 0019. Does nothing
# on a store without it, so that every undo list may start with it. 0026 is undone first.
PG_UNDO_BLOB_IDS = PG_UNDO_DIR_IDS + [
    "DO $$ BEGIN IF (SELECT data_type FROM information_schema.columns WHERE "
    "table_schema = current_schema() AND table_name = 'blobs' AND column_name = 'sha') "
    "= 'bytea' THEN "
    "ALTER TABLE blobs DROP CONSTRAINT blobs_base_fkey; DROP INDEX blobs_base; "
    "ALTER TABLE blobs DROP CONSTRAINT blobs_pkey; "
    "ALTER TABLE blobs ALTER COLUMN sha TYPE text USING encode(sha, 'hex'), "
    "ALTER COLUMN base TYPE text USING encode(base, 'hex'); "
    "ALTER TABLE blobs ADD PRIMARY KEY (sha); "
    "ALTER TABLE blobs ADD FOREIGN KEY (base) REFERENCES blobs(sha) "
    "DEFERRABLE INITIALLY DEFERRED; "
    "CREATE INDEX blobs_base ON blobs(base) WHERE base IS NOT NULL; "
    "CREATE STATISTICS blobs_sha_bytes ON (decode(sha, 'hex')) FROM blobs; "
    "END IF; END $$"]


def sqlite_undo_code_ids(con):
    """Undoes migration 0019 (code_blobs.sha as 20 bytes) in an SQLite store, for a test that
    turns it back into an older schema: code_blobs as schema 8 made it, hex ids, the same row
    ids, and the code_unindexed triggers as schema 14 made them (Python's sqlite3 has no
    ps_unhex, so the triggers of 0019 go first). Undoes 0023 first (sqlite_undo_blob_ids).
    Leaves PRAGMA user_version alone; commits."""
    sqlite_undo_blob_ids(con)
    if ("sha", "BLOB") not in {(r[1], r[2]) for r in con.execute("PRAGMA table_info(code_blobs)")}:
        return
    for t in ("blob_in", "blob_out", "code_in", "code_out"):
        con.execute(f"DROP TRIGGER IF EXISTS code_unindexed_{t}")
    con.execute("CREATE TABLE code_blobs_18 (id INTEGER PRIMARY KEY, sha TEXT NOT NULL UNIQUE, "
                "binary INTEGER NOT NULL DEFAULT 0)")
    con.execute("INSERT INTO code_blobs_18 (id, sha, binary) "
                "SELECT id, lower(hex(sha)), binary FROM code_blobs ORDER BY id")
    con.execute("DROP TABLE code_blobs")
    con.execute("ALTER TABLE code_blobs_18 RENAME TO code_blobs")
    step = (ROOT / "src" / "store" / "sqlite" / "migrations" /
            "0014_code_index_distinct.sql").read_text()
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'code_unindexed'").fetchone():
        for trigger in re.findall(r"CREATE TRIGGER .*?END;", step, re.S):
            con.execute(trigger)
    con.commit()


# Undoes PostgreSQL's migration 0022 (code_unindexed and its triggers; the rewrite of dir_trees
# needs no undo), first of every undo of an older migration below: the triggers name blobs and
# code_blobs, which such tests change, and 0022 makes them again on the way up.
PG_UNDO_CODE_UNINDEXED = ["DROP FUNCTION IF EXISTS ps_code_unindexed_change() CASCADE",
                          "DROP TABLE IF EXISTS code_unindexed"]

# Undoes PostgreSQL's migration 0019 (code_blobs.sha as 20 bytes, statistics on the blobs' ids
# as bytes), for a test that turns a store back into an older schema (0023 and 0022 first).
PG_UNDO_CODE_IDS = PG_UNDO_BLOB_IDS + PG_UNDO_CODE_UNINDEXED + [
    "ALTER TABLE code_blobs ALTER COLUMN sha TYPE text USING encode(sha, 'hex')",
    "DROP STATISTICS blobs_sha_bytes"]


def sqlite_undo_code_own(con):
    """Undoes migration 0017 (projsync's own code index) in an SQLite store, for a test that
    turns it back into an older schema: drops code_segments and code_postings and makes code_fts
    again as schema 16 had it, empty, naming FTS5's own `trigram` tokenizer (Python's sqlite3
    lacks projsync_trigram; sqlite_code_tokenizer renames it). code_blobs is kept: 0017 empties
    it again on the way up. Undoes 0019 first (sqlite_undo_code_ids). Commits."""
    sqlite_undo_code_ids(con)
    con.execute("DROP TABLE IF EXISTS code_segments")
    con.execute("DROP TABLE IF EXISTS code_postings")
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'code_fts'").fetchone():
        con.execute("CREATE VIRTUAL TABLE code_fts USING fts5(content, content = '', "
                    "detail = 'none', tokenize = 'trigram')")
    con.commit()


# Undoes PostgreSQL's migration 0017 (projsync's own code index), for a test that turns a store
# back into an older schema: schema 16's code_blobs, its copy column filled with a placeholder
# (0017 drops the copies and empties code_blobs again on the way up) and its pg_trgm indexes.
# Undoes 0019 first. A store that reached schema 16 had the pg_trgm extension (0008 created it
# then; it no longer does), so it is created here for the GIN index.
PG_UNDO_CODE_OWN = PG_UNDO_CODE_IDS + [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "DROP TABLE code_segments", "DROP TABLE code_postings",
    "ALTER TABLE code_blobs DROP COLUMN id",
    'ALTER TABLE code_blobs ADD COLUMN content text COLLATE "C"',
    "UPDATE code_blobs SET content = 'a copy schema 16 made'",
    "CREATE INDEX code_blobs_trgm ON code_blobs USING gin (content gin_trgm_ops)",
    "CREATE INDEX code_blobs_uncopied ON code_blobs(sha) WHERE content IS NULL"]


def thin_trees_version():
    """The schema version a store has just before migration 0020 (directory trees without
    their entries): its position among the migrations, which the runners number in order."""
    names = sorted(p.name for p in (ROOT / "src" / "store" / "sqlite" / "migrations").glob("*.sql"))
    return names.index("0020_thin_trees.sql")


def sqlite_undo_segment_docs(con):
    """Undoes migration 0021 (code_segments.docs) in an SQLite store, and 0023 before it
    (sqlite_undo_blob_ids). Does not commit."""
    sqlite_undo_blob_ids(con)
    cols = [r[1] for r in con.execute("PRAGMA table_info(code_segments)")]
    if "docs" in cols:
        con.execute("ALTER TABLE code_segments DROP COLUMN docs")


# Undoes PostgreSQL's migration 0021, as sqlite_undo_segment_docs does (0023 and 0022 first).
PG_UNDO_SEGMENT_DOCS = PG_UNDO_BLOB_IDS + PG_UNDO_CODE_UNINDEXED + [
    "ALTER TABLE IF EXISTS code_segments DROP COLUMN IF EXISTS docs"]


def sqlite_undo_thin_trees(con):
    """Undoes migration 0020 in an SQLite store, for a test that turns it back into an older
    schema (and 0021 before it): dir_trees gets its entries column again, with empty bodies
    (the migrations on the way up copy it and 0020 drops it again; a test that needs the real
    bodies fills them). Does not commit."""
    sqlite_undo_segment_docs(con)
    cols = [r[1] for r in con.execute("PRAGMA table_info(dir_trees)")]
    if cols and "entries" not in cols:
        con.execute("ALTER TABLE dir_trees ADD COLUMN entries BLOB NOT NULL DEFAULT x''")


# Undoes PostgreSQL's migration 0020 (directory trees without entries), as
# sqlite_undo_thin_trees does.
PG_UNDO_THIN_TREES = PG_UNDO_SEGMENT_DOCS + [
    "DROP FUNCTION ps_dir_entries(bigint, bigint, bytea)",
    "ALTER TABLE dir_trees ADD COLUMN entries bytea NOT NULL DEFAULT ''"]


def sqlite_undo_code_unindexed(con):
    """Drops what schema 14 adds beside code_fts (code_unindexed and its triggers), for a test
    that turns an SQLite store back into an older schema: the triggers name blobs and
    code_blobs, which such a test drops or renames."""
    for t in ("blob_in", "blob_out", "code_in", "code_out"):
        con.execute(f"DROP TRIGGER IF EXISTS code_unindexed_{t}")
    con.execute("DROP TABLE IF EXISTS code_unindexed")


def sorted_by_path(entries):
    """Sorts dicts with a "path" key by the path's bytes, the order `files` promises."""
    return sorted(entries, key=lambda e: e["path"].encode("utf-8", "surrogateescape"))


def one_error_line(err):
    """True when stderr is exactly one line starting 'projsync: ' (the error contract)."""
    lines = err.splitlines()
    return len(lines) == 1 and lines[0].startswith("projsync: ") and len(lines[0]) > 11


# --------------------------------------------------------------------------------------------
# git repositories


class Repo:
    """A real git repository with a working tree, driven through the git CLI."""

    def __init__(self, path, bare=False):
        self.path = Path(path)
        self.bare = bare

    @classmethod
    def init(cls, path, bare=False):
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        args = ["init", "-q", "-b", "main"] + (["--bare"] if bare else [])
        git(path, *args)
        return cls(path, bare)

    @property
    def url(self):
        return "file://" + str(self.path)

    def git(self, *args, **kw):
        return git(self.path, *args, **kw)

    # --- working tree
    def write(self, rel, content, exec_bit=None):
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)
        if isinstance(content, str):
            content = content.encode()
        p.write_bytes(content)
        if exec_bit is not None:
            p.chmod(0o755 if exec_bit else 0o644)
        return p

    def symlink(self, rel, target):
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.is_file():
            p.unlink()
        os.symlink(target, p)

    def chmod_exec(self, rel, on):
        (self.path / rel).chmod(0o755 if on else 0o644)

    def rm(self, rel):
        p = self.path / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()

    def mv(self, src, dst):
        (self.path / dst).parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.path / src, self.path / dst)

    def gitlink(self, rel, sha):
        """Stages a submodule entry (mode 160000) without a real submodule checkout."""
        (self.path / rel).mkdir(parents=True, exist_ok=True)
        self.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{rel}")

    def commit(self, msg="change", allow_empty=False):
        self.git("add", "-A")
        self.git("commit", "-q", "-m", msg, *(["--allow-empty"] if allow_empty else []))
        return self.head()

    # --- refs
    def head(self, ref="HEAD"):
        return self.git("rev-parse", ref).strip()

    def branch(self, name, start="HEAD"):
        self.git("branch", "-f", name, start)

    def switch(self, name, create=False):
        self.git("checkout", "-q", *(["-b"] if create else []), name)

    def reset_hard(self, rev):
        self.git("reset", "-q", "--hard", rev)

    def force_push(self, remote, ref="main"):
        self.git("push", "-q", "--force", str(remote), f"HEAD:refs/heads/{ref}")

    # --- what git says a commit holds, in projsync's JSON shapes
    def ls_tree(self, rev):
        """[{path, mode, type, sha, size}] of every blob and gitlink, sorted by path bytes."""
        out = git(self.path, "ls-tree", "-r", "-z", "-l", "--full-tree", rev, raw=True)
        entries = []
        for rec in out.split(b"\0"):
            if not rec:
                continue
            meta, path = rec.split(b"\t", 1)
            mode, typ, sha, size = meta.split()
            entries.append({
                "path": path.decode("utf-8"), "mode": mode.decode(), "type": typ.decode(),
                "sha": sha.decode(), "size": None if size == b"-" else int(size),
            })
        return sorted_by_path(entries)

    def blob(self, sha):
        return git(self.path, "cat-file", "-p", sha, raw=True)

    def diff(self, a, b):
        """Sorted (status, path, sha, mode, previous_sha, previous_mode) tuples of
        `git diff --raw --no-renames A B` (A may be EMPTY_TREE)."""
        out = git(self.path, "diff-tree", "-r", "-z", "--raw", "--no-renames", "--no-abbrev",
                  a, b, raw=True)
        fields = out.split(b"\0")
        rows = []
        i = 0
        while i < len(fields) - 1:
            meta = fields[i].decode()
            path = fields[i + 1].decode("utf-8")
            i += 2
            omode, nmode, osha, nsha, st = meta.lstrip(":").split()
            z = "0" * 40
            rows.append((st, path,
                         None if nsha == z else nsha, None if nmode == "000000" else nmode,
                         None if osha == z else osha, None if omode == "000000" else omode))
        return sorted(rows, key=lambda r: (r[1].encode(), r[0]))


def git(cwd, *args, raw=False, check=True):
    # GLIBC_TUNABLES: fewer brk() calls for git itself (slow in some sandboxes); git only.
    env = dict(os.environ, **GIT_ENV, GLIBC_TUNABLES="glibc.malloc.top_pad=16777216")
    r = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout if raw else r.stdout.decode()


CHANGE_LETTER = {"added": "A", "modified": "M", "deleted": "D", "type_changed": "T"}


def changes_as_git(changes):
    """projsync changes -> the tuples of Repo.diff. An exact rename (same blob) is reported by
    projsync as one `renamed` row; git --no-renames shows it as a deletion of previous_path plus
    an addition of path, so each rename is expanded into those two rows before comparing."""
    rows = []
    for c in changes:
        if c["status"] == "renamed":
            rows.append(("D", c["previous_path"], None, None, c["previous_sha"],
                         c["previous_mode"]))
            rows.append(("A", c["path"], c["sha"], c["mode"], None, None))
        else:
            rows.append((CHANGE_LETTER.get(c["status"], c["status"]), c["path"], c["sha"],
                         c["mode"], c["previous_sha"], c["previous_mode"]))
    return sorted(rows, key=lambda r: (r[1].encode(), r[0]))


# --------------------------------------------------------------------------------------------
# the binary


class Result:
    def __init__(self, args, rc, outb, err):
        self.args, self.rc, self.outb, self.err = args, rc, outb, err
        self.out = outb.decode("utf-8", "surrogateescape")

    def __iter__(self):
        return iter((self.rc, self.out, self.err))

    def __repr__(self):
        return (f"projsync {' '.join(map(str, self.args))} -> rc={self.rc}\n"
                f"stdout: {self.out[:2000]!r}\nstderr: {self.err[:2000]!r}")


class Projsync:
    """Runs the binary against one store. `ps(...)` returns a Result (unpacks to rc, out, err)."""

    def __init__(self, tmp, db=None):
        self.tmp = Path(tmp)
        self.backend = "pg" if db else "sqlite"
        # A path for SQLite; for PostgreSQL the URL of the test's database (a str).
        self.db = db or self.tmp / "store" / "projsync.db"
        (self.tmp / "store").mkdir(parents=True, exist_ok=True)
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PROJSYNC_") and not k.startswith("GIT_")}
        env.update(GIT_ENV)
        env.update({
            "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"),
            # The caller's own options come last, so they win (e.g. a suppressions file).
            "ASAN_OPTIONS": join_opts("exitcode=86:detect_leaks=1:abort_on_error=0",
                                      os.environ.get("ASAN_OPTIONS")),
            "UBSAN_OPTIONS": join_opts("print_stacktrace=1:halt_on_error=1:exitcode=87",
                                       os.environ.get("UBSAN_OPTIONS")),
        })
        self.env = env

    def argv(self, args, db=True):
        return [BIN] + (["--db", str(self.db)] if db else []) + [str(a) for a in args]

    def env_with(self, extra):
        env = dict(self.env)
        env.update(extra or {})
        return env

    def __call__(self, *args, env=None, timeout=120, input=None, db=True):
        r = subprocess.run(self.argv(args, db), env=self.env_with(env), input=input,
                           capture_output=True, timeout=timeout)
        res = Result(args, r.returncode, r.stdout, r.stderr.decode("utf-8", "replace"))
        check_sanitizers(res)
        return res

    def popen(self, *args, env=None):
        return subprocess.Popen(self.argv(args), env=self.env_with(env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.rc == 0, r
        return r

    def json(self, *args, **kw):
        r = self.ok(*args, "--json", **kw)
        try:
            return json.loads(r.out)
        except ValueError as e:
            raise AssertionError(f"not JSON ({e}): {r}")

    # --- common steps
    def add(self, name, source, *opts):
        return self.ok("project", "add", name, source, *opts)

    def sync(self, name, *opts, expect="succeeded", env=None):
        """Runs `sync --json`, checks the event stream and returns the final summary (a sync)."""
        r = self(*("sync", name, *opts, "--json"), env=env)
        events = parse_events(r)
        last = events[-1]
        assert last["kind"] == expect, r
        assert r.rc == (0 if expect == "succeeded" else 1), r
        if expect != "succeeded":
            assert one_error_line(r.err), r
        s = last["summary"]
        assert s["status"] == expect, r
        return s

    def files(self, name, *opts):
        return self.json("files", name, *opts)

    def history(self, name, *opts):
        return self.json("history", name, *opts)

    def project(self, name):
        return self.json("project", "show", name)


def join_opts(ours, theirs):
    return ours + (":" + theirs if theirs else "")


def parse_events(r):
    """The lines of `sync --json`: every line one event, seq 1..n without gaps, one sync id,
    exactly one final event and it is the last."""
    lines = [ln for ln in r.out.splitlines() if ln.strip()]
    assert lines, r
    try:
        events = [json.loads(ln) for ln in lines]
    except ValueError as e:
        raise AssertionError(f"sync --json line is not JSON ({e}): {r}")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), r
    assert len({e["sync_id"] for e in events}) == 1, r
    finals = [i for i, e in enumerate(events) if e["kind"] in FINAL_KINDS]
    assert finals == [len(events) - 1], r
    assert events[-1]["summary"]["id"] == events[0]["sync_id"], r
    return events


def check_sanitizers(res):
    for mark in SANITIZER_MARKS:
        if mark in res.err:
            raise AssertionError(f"sanitizer report from the binary:\n{res!r}")
    if res.rc in (86, 87):
        raise AssertionError(f"sanitizer exit code {res.rc}:\n{res!r}")


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def ps(tmp_path, backend, request):
    if backend == "pg":
        return Projsync(tmp_path, request.getfixturevalue("pg_database")())
    return Projsync(tmp_path)


@pytest.fixture
def make_repo(tmp_path):
    """make_repo("name", bare=False) -> a fresh Repo under the test's temp dir."""
    def make(name="repo", bare=False):
        return Repo.init(tmp_path / name, bare=bare)
    return make


@pytest.fixture
def repo(make_repo):
    return make_repo("repo")


def wait_for(pred, timeout=30.0, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None


def kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
