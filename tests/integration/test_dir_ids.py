"""
Issue 14, schema 26: a file version names its directory by id (dirs), and keeps only its own
name. Above the backend paths stay full strings: listings are in byte order of the full path
(which is not the order of (directory, name): "b.d/f" < "b/x" < "b0"), a prefix may end inside
a name ("b.", "deep/1/") or at a directory, and a store that schema 25 wrote is converted by the
next command with every answer unchanged: listings, prefixes, diffs, file reads, code search,
verify, checkout. SQLite (migration 0026 of the SQLite backend).
"""
import json
import sqlite3

from conftest import ROOT, sorted_by_path, sqlite_undo_dir_ids
from test_thin_trees import STEPS, first_tree, sync_quietly

PREFIXES = ["", "a", "a.", "b", "b/", "b.", "b.d/", "b/c", "b/c/d/", "deep", "deep/1/", "run",
            "zzz", "b/c/d/e"]


def answers(ps, syncs, tmp_path):
    """Everything a user sees of the project's snapshots, as comparable values."""
    out = {}
    for s in syncs:
        at = str(s)
        for pre in PREFIXES:
            args = ["files", "p", "--at", at, "--json"] + ([pre] if pre else [])
            out[("files", at, pre)] = json.loads(ps.ok(*args).out)
        for f in out[("files", at, "")]:
            if f["mode"] in ("100644", "100755"):
                out[("cat", at, f["path"])] = ps.ok("cat", "p", f["path"], "--at", at).out
        for pat, flags in (("2", ["-F"]), ("a directory|deeper", ["-E"]), ("^[a-z]", ["-E"])):
            r = ps("grep", pat, "p", "--at", at, *flags)
            out[("grep", at, pat)] = (r.rc, r.out)
        rep = json.loads(ps.ok("verify", "p", "--at", at, "--json").out)
        out[("verify", at)] = rep
        dest = tmp_path / f"co-{at}-{len(out)}"
        ps.ok("checkout", "p", str(dest), "--at", at)
        out[("checkout", at)] = sorted(
            (str(p.relative_to(dest)), p.is_symlink() and str(p.readlink()) or
             (p.read_bytes() if p.is_file() else None))
            for p in dest.rglob("*") if ".projsync" not in p.parts)
    for a, b in zip(syncs, syncs[1:]):
        out[("diff", a, b)] = ps.ok("diff", str(a), str(b), "--json").out
        out[("changes", b)] = ps.ok("changes", str(b), "--json").out
    return out


def test_listings_in_full_path_order(ps, repo):
    first_tree(repo)
    repo.commit("c0")
    ps.add("p", repo.path)
    syncs = [sync_quietly(ps)]
    for i, step in enumerate(STEPS):
        step(repo)
        repo.commit(f"c{i + 1}")
        syncs.append(sync_quietly(ps))
    for s in syncs:
        everything = json.loads(ps.ok("files", "p", "--at", str(s), "--json").out)
        assert everything == sorted_by_path(everything)
        for pre in PREFIXES:
            got = json.loads(ps.ok("files", "p", "--at", str(s), "--json", *([pre] if pre else [])).out)
            assert got == [f for f in everything if f["path"].startswith(pre)], (s, pre)
        rep = json.loads(ps.ok("verify", "p", "--at", str(s), "--json").out)
        assert rep["sound"] is True, rep


def test_schema_25_store_converts_unchanged(ps, repo, tmp_path):
    """A store in schema 25's layout (full paths in file_versions and dir_trees) is converted by
    the next command: the same row ids, a dirs row per directory, and every answer as before."""
    if ps.backend == "pg":
        import pytest
        pytest.skip("the SQLite backend's migration")
    first_tree(repo)
    repo.commit("c0")
    ps.add("p", repo.path)
    syncs = [sync_quietly(ps)]
    for i, step in enumerate(STEPS[:3]):
        step(repo)
        repo.commit(f"c{i + 1}")
        syncs.append(sync_quietly(ps))
    before = answers(ps, syncs, tmp_path)
    con = sqlite3.connect(ps.db)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    ids = con.execute("SELECT f.id, f.introduced_by, f.superseded_by, "
                      "iif(d.path = '', f.name, d.path || '/' || f.name) "
                      "FROM file_versions f JOIN dirs d ON d.id = f.dir_id ORDER BY f.id").fetchall()
    tree_ids = con.execute("SELECT t.id, d.path, t.tree_sha FROM dir_trees t "
                           "JOIN dirs d ON d.id = t.dir_id ORDER BY t.id").fetchall()
    sqlite_undo_dir_ids(con)  # and the migrations after 0026
    names = sorted(p.name for p in (ROOT / "src/store/sqlite/migrations").glob("*.sql"))
    con.execute(f"PRAGMA user_version = {names.index('0026_dir_ids.sql')}")
    con.commit()
    assert con.execute("SELECT id, introduced_by, superseded_by, path FROM file_versions "
                       "ORDER BY id").fetchall() == ids
    assert not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'dirs'").fetchone()
    con.close()

    after = answers(ps, syncs, tmp_path)  # the first command converts
    assert after.keys() == before.keys()
    for k in before:
        assert after[k] == before[k], k
    con = sqlite3.connect(ps.db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == version
    assert con.execute("SELECT f.id, f.introduced_by, f.superseded_by, "
                       "iif(d.path = '', f.name, d.path || '/' || f.name) "
                       "FROM file_versions f JOIN dirs d ON d.id = f.dir_id "
                       "ORDER BY f.id").fetchall() == ids
    assert con.execute("SELECT t.id, d.path, t.tree_sha FROM dir_trees t "
                       "JOIN dirs d ON d.id = t.dir_id ORDER BY t.id").fetchall() == tree_ids
    # One row per directory, none repeated, the root as ''.
    dirs = [p for (p,) in con.execute("SELECT path FROM dirs ORDER BY path")]
    assert dirs[0] == "" and len(dirs) == len(set(dirs))
    assert all(not p.endswith("/") for p in dirs)
    con.close()
    # And syncing goes on from the converted rows.
    for i, step in enumerate(STEPS[3:]):
        step(repo)
        repo.commit(f"m{i}")
        syncs.append(sync_quietly(ps))
    for s in syncs:
        rep = json.loads(ps.ok("verify", "p", "--at", str(s), "--json").out)
        assert rep["sound"] is True, rep


def test_prune_drops_directories_nothing_names(ps, repo):
    """A directory whose every version the prune removed leaves no dirs row behind."""
    if ps.backend == "pg":
        import pytest
        pytest.skip("the SQLite backend's table")
    repo.write("gone/deep/f", "1\n")
    repo.write("kept/f", "1\n")
    repo.commit("c0")
    ps.add("p", repo.path, "--keep-syncs", "1")
    sync_quietly(ps)
    repo.rm("gone")
    repo.write("kept/g", "2\n")
    repo.commit("c1")
    sync_quietly(ps)
    con = sqlite3.connect(ps.db)
    assert {"gone", "gone/deep"} <= {p for (p,) in con.execute("SELECT path FROM dirs")}
    con.close()
    ps.ok("prune", "p")
    con = sqlite3.connect(ps.db)
    assert {p for (p,) in con.execute("SELECT path FROM dirs")} == {"", "kept"}
    con.close()
    assert [f["path"] for f in json.loads(ps.ok("files", "p", "--json").out)] == ["kept/f",
                                                                                 "kept/g"]
