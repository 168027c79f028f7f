"""
Issue 14, directory trees without their entries (migration 0020): the store keeps each
directory's tree id only and rebuilds its entries from the snapshot's rows when a sync re-hashes
the directories on its changed paths. If a rebuilt directory were wrong, the sync's root would
not be the commit's and the sync would fall back to hashing every directory from the rows with
a warning event ("... do not match its files ..."): every sync here must succeed without one,
and `projsync verify` must find every snapshot sound. On both backends, and on a store that
schema 19 wrote (with the bodies) and this projsync migrated.
"""
import json
import sqlite3
import subprocess

from conftest import (PG_UNDO_THIN_TREES, parse_events, pg_undo_blob_packs, psql,
                      sqlite_undo_thin_trees, thin_trees_version)


def sync_quietly(ps, name="p"):
    """Syncs; the sync must succeed with no warning event. Returns its id."""
    r = ps("sync", name, "--json")
    events = parse_events(r)
    assert events[-1]["kind"] == "succeeded", r
    warnings = [e for e in events if e["kind"] == "warning"]
    assert not warnings, warnings
    return events[-1]["summary"]["id"]


def check_sound(ps, repo, syncs, name="p"):
    for s, commit in syncs:
        rep = json.loads(ps.ok("verify", name, "--at", str(s), "--json").out)
        assert rep["sound"] is True and rep["problems"] == [], rep
        assert rep["directories_stored"] is True, rep
        assert rep["computed_tree"] == repo.git("rev-parse", f"{commit}^{{tree}}").strip()


def first_tree(repo):
    # Names sorting around '/': "b-x" and "b.y" < "b/" < "b0"; "b.d/" beside "b/".
    for path in ("a", "a-b", "a.c", "a0", "b/x", "b-x", "b.y", "b0", "b.d/f",
                 "deep/1/2/3/f", "deep/1/g", "b/c/d/e"):
        repo.write(path, f"{path}\n")
    repo.write("run.sh", "#!/bin/sh\n", exec_bit=True)
    repo.symlink("link", "b/x")


# Each step changes files at several depths and renames, deletes or adds directories.
STEPS = [
    lambda r: (r.write("deep/1/2/3/f", "f2\n"), r.write("b/x", "x2\n"), r.write("a0", "a0'\n"),
               r.write("b/c/d/e2", "new\n"), r.write("b/c/d0", "d0\n")),
    lambda r: (r.mv("b.d", "b.e"), r.rm("deep/1/2"), r.chmod_exec("run.sh", False),
               r.write("b/c/d/e", "e2\n")),
    # b becomes a file: its old rows ("b/...") sort between "b.y" and "b0".
    lambda r: (r.rm("b"), r.write("b", "now a file\n"), r.write("deep/1/2/y", "back\n"),
               r.symlink("link", "deep/1/g")),
    lambda r: (r.rm("b"), r.write("b/z/z/z", "a directory again\n"), r.rm("a-b"),
               r.write("b.e/f", "f3\n"), r.write("b.e/sub/1/2", "deeper\n")),
    lambda r: (r.rm("deep"), r.write("b/z/y", "beside\n"), r.write("b/z-", "dash\n")),
]


def test_resyncs_rebuild_directories_exactly(ps, repo):
    first_tree(repo)
    repo.commit("c0")
    ps.add("p", repo.path)
    syncs = [(sync_quietly(ps), repo.head())]
    check_sound(ps, repo, syncs)
    for i, step in enumerate(STEPS):
        step(repo)
        repo.commit(f"c{i + 1}")
        syncs.append((sync_quietly(ps), repo.head()))
        check_sound(ps, repo, syncs[-1:])
    # Every older snapshot still is its commit's, and its stored directories too.
    check_sound(ps, repo, syncs)


def fill_entries(ps, repo):
    """Gives every dir_trees row the body git has for its tree id, as schema 19 stored it."""
    def body(sha):
        return subprocess.run(["git", "-C", str(repo.path), "cat-file", "tree", sha],
                              capture_output=True, check=True).stdout

    if ps.backend == "pg":
        rows = psql(ps.db, "SELECT id, encode(tree_sha, 'hex') FROM dir_trees").split()
        sql = [f"UPDATE dir_trees SET entries = '\\x{body(sha).hex()}'::bytea WHERE id = {i}"
               for i, sha in (r.split("|") for r in rows)]
        psql(ps.db, "; ".join(sql))
        return len(rows)
    con = sqlite3.connect(ps.db)
    rows = con.execute("SELECT id, lower(hex(tree_sha)) FROM dir_trees").fetchall()
    for i, sha in rows:
        con.execute("UPDATE dir_trees SET entries = ? WHERE id = ?", (body(sha), i))
    con.commit()
    con.close()
    return len(rows)


def has_entries(ps):
    if ps.backend == "pg":
        return psql(ps.db, "SELECT count(*) FROM information_schema.columns WHERE "
                           "table_name = 'dir_trees' AND column_name = 'entries'").strip() == "1"
    con = sqlite3.connect(ps.db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(dir_trees)")]
    con.close()
    return "entries" in cols


def pg_dir_trees_shape(ps):
    """dir_trees' columns (name, type, nullability, default), constraints and indexes."""
    return psql(ps.db, """
        SELECT 'column|' || column_name || '|' || data_type || '|' || is_nullable || '|' ||
               coalesce(column_default, '')
        FROM information_schema.columns WHERE table_name = 'dir_trees'
        UNION ALL SELECT 'constraint|' || conname || '|' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE conrelid = 'dir_trees'::regclass
        UNION ALL SELECT 'index|' || indexdef FROM pg_indexes WHERE tablename = 'dir_trees'
        ORDER BY 1""").splitlines()


def test_store_with_entries_is_migrated(ps, repo):
    """A store as schema 19 wrote it (every directory with its body) is migrated by the next
    command: the bodies are gone, the ids and snapshots stay, and re-syncs rebuild the
    directories from the rows without a warning."""
    first_tree(repo)
    repo.commit("c0")
    ps.add("p", repo.path)
    syncs = [(sync_quietly(ps), repo.head())]
    STEPS[0](repo)
    repo.commit("c1")
    syncs.append((sync_quietly(ps), repo.head()))
    version = thin_trees_version()
    if ps.backend == "pg":
        before = psql(ps.db, "SELECT max(version) FROM projsync_schema").strip()
        current = pg_dir_trees_shape(ps)  # later migrations (0026) reshape the table
        pg_undo_blob_packs(ps.db)
        psql(ps.db, "BEGIN; " + "; ".join(PG_UNDO_THIN_TREES + [
            f"DELETE FROM projsync_schema WHERE version > {version}"]) + "; COMMIT")
        ids = psql(ps.db, "SELECT id, encode(tree_sha, 'hex') FROM dir_trees ORDER BY id")
    else:
        con = sqlite3.connect(ps.db)
        before = str(con.execute("PRAGMA user_version").fetchone()[0])
        sqlite_undo_thin_trees(con)
        con.execute(f"PRAGMA user_version = {version}")
        con.commit()
        ids = con.execute("SELECT id, lower(hex(tree_sha)) FROM dir_trees ORDER BY id").fetchall()
        con.close()
    assert fill_entries(ps, repo) > 5
    assert has_entries(ps)
    if ps.backend == "pg":
        # Bodies as large as a big directory's (~8 KB, stored out of line), so that what
        # they hold shows in the table's size; VACUUM leaves the live rows only.
        psql(ps.db, "UPDATE dir_trees SET entries = entries || (SELECT decode(string_agg("
                    "md5(id::text || '.' || k::text), ''), 'hex') FROM generate_series(1, 500) k)")
        psql(ps.db, "VACUUM dir_trees")
        full = int(psql(ps.db, "SELECT pg_total_relation_size('dir_trees')"))

    check_sound(ps, repo, syncs)  # the first command migrates
    assert not has_entries(ps)
    if ps.backend == "pg":
        assert psql(ps.db, "SELECT max(version) FROM projsync_schema").strip() == before
        assert psql(ps.db, "SELECT id, encode(tree_sha, 'hex') FROM dir_trees ORDER BY id") == ids
        # DROP COLUMN (0020) frees nothing; 0022 rewrites the rows without the bodies, and the
        # table keeps its columns, constraints and indexes.
        thin = int(psql(ps.db, "SELECT pg_total_relation_size('dir_trees')"))
        assert thin < full / 2, (thin, full)
        assert pg_dir_trees_shape(ps) == current
    else:
        con = sqlite3.connect(ps.db)
        assert str(con.execute("PRAGMA user_version").fetchone()[0]) == before
        assert con.execute("SELECT id, lower(hex(tree_sha)) FROM dir_trees "
                           "ORDER BY id").fetchall() == ids
        idx = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                         "AND tbl_name = 'dir_trees'")}
        con.close()
        assert idx == {"dir_trees_path", "dir_trees_introduced", "dir_trees_superseded"}
    for i, step in enumerate(STEPS[1:]):
        step(repo)
        repo.commit(f"m{i}")
        syncs.append((sync_quietly(ps), repo.head()))
    check_sound(ps, repo, syncs)
