"""
Issue 14, the store's metadata: schema 16 keeps the object ids of file versions and directory
trees as their 20 bytes and drops the (project_id, superseded_by, path) indexes, on both
backends. A store written by schema 15 is converted when opened, and every snapshot it held is
still exact: the same files, verified against the commits' trees, every blob's content what git
has, the same diffs and code search results; and syncing goes on from it.
"""
import json
import re
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import (PG_UNDO_CODE_IDS, PG_UNDO_CODE_OWN, PG_UNDO_DIR_IDS, PG_UNDO_THIN_TREES,
                      pg_undo_blob_packs, psql,
                      sqlite_undo_blob_ids, sqlite_undo_code_ids, sqlite_undo_code_own, sqlite_undo_thin_trees)

ROOT = Path(__file__).resolve().parents[2]


def statements(backend, migration, table):
    """The CREATE statements for `table` and its indexes in one migration file, verbatim: the
    schema 12 DDL (unchanged up to 15) as the old projsync ran it."""
    sql = (ROOT / "src" / "store" / ("postgres" if backend == "pg" else "sqlite") / "migrations"
           / migration).read_text()
    sql = re.sub(r"--[^\n]*", "", sql)
    return [s.strip() for s in sql.split(";")
            if re.match(rf"\s*CREATE (TABLE|INDEX \w+ ON) {table}\b", s)]


def schema12_ddl(backend):
    out = []
    for table, steps in (("file_versions", ("0001_initial.sql", "0007_schedule_retention.sql")),
                         ("dir_trees", ("0009_dir_trees.sql",))):
        out += [s for step in steps for s in statements(backend, step, table)]
    return out


def downgrade_sqlite(db):
    """Turns a schema 20 SQLite store into what schema 15 wrote: the FTS5 code index (empty),
    hex ids, the old indexes."""
    ddl = schema12_ddl("sqlite")
    con = sqlite3.connect(db)
    sqlite_undo_code_own(con)
    sqlite_undo_thin_trees(con)
    con.execute("PRAGMA foreign_keys = OFF")
    for table, col in (("file_versions", "sha"), ("dir_trees", "tree_sha")):
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_13")
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                   f"AND tbl_name = '{table}_13' AND sql IS NOT NULL").fetchall():
            con.execute(f"DROP INDEX {name}")
        for s in ddl:
            if re.match(rf"CREATE (TABLE|INDEX \w+ ON) {table}\b", s):
                con.execute(s)
        sel = ", ".join(f"lower(hex({c}))" if c == col else c for c in cols)
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {sel} FROM {table}_13")
        con.execute(f"DROP TABLE {table}_13")
    con.execute("PRAGMA user_version = 15")
    con.commit()
    con.close()


def downgrade_pg(url):
    ddl = [s for s in schema12_ddl("pg") if s.startswith("CREATE INDEX")]
    pg_undo_blob_packs(url)
    sql = PG_UNDO_DIR_IDS + [
           "DROP INDEX file_versions_superseded", "DROP INDEX dir_trees_superseded",
           "ALTER TABLE file_versions ALTER COLUMN sha TYPE text USING encode(sha, 'hex')",
           "ALTER TABLE dir_trees ALTER COLUMN tree_sha TYPE text USING encode(tree_sha, 'hex')",
           "DROP FUNCTION ps_hex(bytea)", "DROP FUNCTION ps_unhex(text)",
           "DELETE FROM projsync_schema WHERE version > 15"] + PG_UNDO_CODE_OWN + \
        PG_UNDO_THIN_TREES
    # The indexes schema 15 had and 16 does not (the others are still there, same names).
    have = set(psql(url, "SELECT indexname FROM pg_indexes WHERE tablename IN "
                         "('file_versions', 'dir_trees')").split())
    for s in ddl:
        name = s.split()[2]
        if name not in have or name.endswith("_superseded"):
            sql.append(s)
    psql(url, "BEGIN; " + "; ".join(sql) + "; COMMIT")


def stored_form(ps):
    """(type of file_versions.sha, type of dir_trees.tree_sha, indexes of both tables)."""
    if ps.backend == "pg":
        types = psql(ps.db, "SELECT table_name || '.' || data_type FROM information_schema.columns "
                            "WHERE (table_name, column_name) IN (('file_versions', 'sha'), "
                            "('dir_trees', 'tree_sha')) ORDER BY 1").split()
        idx = psql(ps.db, "SELECT indexname FROM pg_indexes WHERE tablename IN "
                          "('file_versions', 'dir_trees')").split()
        return types, set(idx)
    con = sqlite3.connect(ps.db)
    try:
        types = [f"dir_trees.{t}" for (t,) in con.execute("SELECT DISTINCT typeof(tree_sha) FROM dir_trees")]
        types += [f"file_versions.{t}" for (t,) in con.execute("SELECT DISTINCT typeof(sha) FROM file_versions")]
        idx = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                         "AND tbl_name IN ('file_versions', 'dir_trees')")}
        return types, idx
    finally:
        con.close()


def history(repo, ps):
    """Five commits with every kind of entry and change, each synced; returns [(sync, commit)]."""
    out = []

    def sync():
        s = ps.sync("p")
        out.append((s["id"], repo.head()))

    repo.write("README.md", "# demo\n")
    for i in range(5):
        repo.write(f"src/lib/f{i}.c", f"int f{i}(void) {{ return {i}; }}\n")
    repo.write("src/run.sh", "#!/bin/sh\necho run\n", exec_bit=True)
    repo.symlink("link", "src/run.sh")
    repo.write("caf\u00e9/\u00fc.md", "umlaut\n")
    repo.write("a.b", "dot\n")
    repo.write("a/x", "dir a\n")
    repo.gitlink("vendor/sub", "0000000000000000000000000000000000000fff")
    repo.commit("c1")
    ps.add("p", repo.path)
    sync()
    repo.write("src/lib/f1.c", "int f1(void) { return 100; }\n")
    repo.write("src/new/deep/g.c", "int g;\n")
    repo.rm("a.b")
    repo.commit("c2")
    sync()
    repo.mv("src/lib/f2.c", "src/moved/f2.c")
    repo.chmod_exec("src/run.sh", False)
    repo.commit("c3")
    sync()
    repo.rm("src/new/deep/g.c")
    repo.write("a/x", "dir a, again\n")
    repo.gitlink("vendor/sub", "ffff000000000000000000000000000000000000")
    repo.commit("c4")
    sync()
    return out


def views(ps, syncs):
    """Everything a user reads from the snapshots."""
    v = {}
    ids = [s for s, _ in syncs]
    for s in ids:
        v[f"files {s}"] = ps.files("p", "--at", str(s))
    for a in [0] + ids:
        for b in ids:
            if a < b:
                v[f"diff {a} {b}"] = ps.ok("diff", str(a), str(b), "--patch").out if a else \
                    ps.ok("changes", str(b), "--patch").out
    for s in ids:
        v[f"grep {s}"] = ps("grep", "return", "p", "--at", str(s)).out
    return v


def check_exact(ps, repo, syncs):
    for s, commit in syncs:
        rep = json.loads(ps.ok("verify", "p", "--at", str(s), "--blobs", "--json").out)
        assert rep["sound"] is True and rep["problems"] == [], rep
        assert rep["tree"] == repo.git("rev-parse", f"{commit}^{{tree}}").strip()
        for f in repo.ls_tree(commit):
            if f["mode"] == "160000":
                continue
            r = ps("cat", "p", "--at", str(s), "--", f["path"])
            assert r.rc == 0, r
            assert r.outb == repo.blob(f["sha"]), (s, f["path"])


def test_schema12_store_converts_exactly(ps, repo):
    syncs = history(repo, ps)
    before = views(ps, syncs)
    types, idx = stored_form(ps)
    assert "file_versions_current" not in idx and "dir_trees_current" not in idx
    assert all(t.endswith(("blob", "bytea")) for t in types), types

    if ps.backend == "pg":
        downgrade_pg(ps.db)
    else:
        downgrade_sqlite(ps.db)
    types, idx = stored_form(ps)
    assert all(t.endswith(("text", "text")) for t in types), types  # schema 15's form
    assert {"file_versions_current", "dir_trees_current"} <= idx

    # The first command opens the store and converts it.
    check_exact(ps, repo, syncs)
    types, idx = stored_form(ps)
    assert all(t.endswith(("blob", "bytea")) for t in types), types
    assert "file_versions_current" not in idx and "dir_trees_current" not in idx
    assert views(ps, syncs) == before

    # Syncing goes on from the converted store: a change, its diff, and a sound snapshot.
    repo.write("src/lib/f0.c", "int f0(void) { return -1; }\n")
    repo.commit("c5")
    s = ps.sync("p")
    syncs.append((s["id"], repo.head()))
    check_exact(ps, repo, syncs[-1:])
    ch = ps.json("changes", str(s["id"]))
    assert [(c["status"], c["path"]) for c in ch] == [("modified", "src/lib/f0.c")], ch


def code_rows(ps):
    """(type of code_blobs.sha, [(id, blob id in hex, binary)] of code_blobs by id, the count of
    stored blobs the index lacks as SQLite's triggers keep it, or None on PostgreSQL)."""
    if ps.backend == "pg":
        kind = psql(ps.db, "SELECT data_type FROM information_schema.columns WHERE "
                           "table_name = 'code_blobs' AND column_name = 'sha'").strip()
        sha = "encode(sha, 'hex')" if kind == "bytea" else "sha"
        rows = [line.split("|") for line in psql(
            ps.db, f"SELECT id, {sha}, is_binary FROM code_blobs ORDER BY id").split()]
        return kind, [(int(i), s, int(b)) for i, s, b in rows], None
    con = sqlite3.connect(ps.db)
    try:
        kind = {r[1]: r[2] for r in con.execute("PRAGMA table_info(code_blobs)")}["sha"]
        rows = [(i, s.hex() if isinstance(s, bytes) else s, b) for i, s, b in con.execute(
            "SELECT id, sha, binary FROM code_blobs ORDER BY id")]
        unindexed = con.execute("SELECT n FROM code_unindexed").fetchone()[0]
        return kind.lower(), rows, unindexed
    finally:
        con.close()


def downgrade_code_ids(ps, drop_sha=None):
    """Turns the store back into schema 18 (code_blobs.sha as hex); with `drop_sha`, also
    leaves that blob out of the index as schema 18 would have kept it: unindexed, its project
    owing the backlog."""
    if ps.backend == "pg":
        pg_undo_blob_packs(ps.db)
        sql = PG_UNDO_THIN_TREES + PG_UNDO_CODE_IDS + \
            ["DELETE FROM projsync_schema WHERE version > 18"]
        if drop_sha:
            sql += [f"DELETE FROM code_blobs WHERE sha = '{drop_sha}'",
                    "UPDATE projects SET code_index_pending = 1"]
        psql(ps.db, "BEGIN; " + "; ".join(sql) + "; COMMIT")
        return
    con = sqlite3.connect(ps.db)
    sqlite_undo_thin_trees(con)
    sqlite_undo_code_ids(con)
    if drop_sha:  # schema 18's triggers count it as unindexed
        con.execute("DELETE FROM code_blobs WHERE sha = ?", (drop_sha,))
        con.execute("UPDATE projects SET code_index_pending = 1")
    con.execute("PRAGMA user_version = 18")
    con.commit()
    con.close()


def test_schema18_code_index_converts_in_place(ps, repo):
    """Schema 19 keeps code_blobs.sha as the blob id's 20 bytes. A store written by schema 18
    (hex) is converted when opened: the same rows under the same ids (the postings name blobs by
    id), so nothing is indexed again; code search answers as before, a blob the index lacked is
    still searched and indexed by the next sync, and every snapshot still verifies."""
    syncs = history(repo, ps)
    before = views(ps, syncs)
    kind, rows, unindexed = code_rows(ps)
    assert kind in ("blob", "bytea") and rows, (kind, rows)
    assert unindexed in (0, None)
    umlaut = repo.git("rev-parse", "HEAD:caf\u00e9/\u00fc.md").strip()
    assert umlaut in {s for _, s, _ in rows}

    downgrade_code_ids(ps, drop_sha=umlaut)
    kind, old_rows, unindexed = code_rows(ps)
    assert kind == "text", kind  # schema 18's form
    assert old_rows == [r for r in rows if r[1] != umlaut]
    assert unindexed in (1, None)

    # The first command opens the store and converts it; the blob left out is still found.
    found = ps.json("grep", "-F", "umlaut", "p")
    assert [m["path"] for m in found] == ["caf\u00e9/\u00fc.md"], found
    kind, new_rows, unindexed = code_rows(ps)
    assert kind in ("blob", "bytea") and new_rows == old_rows, (kind, new_rows)
    assert unindexed in (1, None)
    assert views(ps, syncs) == before
    check_exact(ps, repo, syncs)

    # The next sync indexes what the index owes, under a new id, and goes on indexing.
    repo.write("src/lib/f3.c", "int f3(void) { return 333; }\n")
    repo.commit("c5")
    s = ps.sync("p")
    syncs.append((s["id"], repo.head()))
    kind, rows, unindexed = code_rows(ps)
    shas = {sha: i for i, sha, _ in rows}
    assert umlaut in shas and shas[umlaut] > max(i for i, _, _ in old_rows)
    assert repo.git("rev-parse", "HEAD:src/lib/f3.c").strip() in shas
    assert unindexed in (0, None)
    assert ps.json("grep", "-F", "umlaut", "p") == found
    assert [m["path"] for m in ps.json("grep", "-F", "333", "p")] == ["src/lib/f3.c"]
    check_exact(ps, repo, syncs[-1:])


def test_two_processes_upgrading_one_sqlite_store_both_open_it(ps, repo):
    """A server and a CLI opening a store of the previous schema at the same moment (after an
    upgrade) both open it: the second to get the write lock finds the step applied and skips it,
    rather than running it again and failing (0023's tables would exist twice)."""
    if ps.backend != "sqlite":
        pytest.skip("SQLite's migration runner; PostgreSQL's reads the version under its lock")
    repo.write("a.txt", "one\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    names = sorted(p.name for p in (ROOT / "src/store/sqlite/migrations").glob("*.sql"))
    before = names.index("0023_blob_ids.sql")
    con = sqlite3.connect(ps.db)
    sqlite_undo_blob_ids(con)
    con.execute(f"PRAGMA user_version = {before}")
    con.commit()
    # Both read the old version, then wait for the write lock this connection holds.
    con.execute("BEGIN IMMEDIATE")
    procs = [ps.popen("stats", "--json") for _ in range(2)]
    time.sleep(0.5)
    con.rollback()
    con.close()
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert json.loads(out)["store"]["blobs"] == 1
    assert ps.ok("cat", "p", "a.txt").out == "one\n"
