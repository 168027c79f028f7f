"""
`project set`: changed settings take effect on the next sync, what is not given stays, and bad
input changes nothing.
"""
import sqlite3

from conftest import (PG_UNDO_DIR_IDS, ROOT, one_error_line, pg_undo_blob_packs, psql,
                      sqlite_undo_dir_ids)


def test_settings_apply_to_the_next_sync(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    repo.branch("release/1.x")
    ps.add("p", str(repo.path))
    assert ps.sync("p")["branch"] == "main"

    p = ps.json("project", "set", "p", "--branch", "release/1.x", "--max-blob-size", "10")
    assert p["branch"] == "release/1.x" and p["max_blob_size"] == 10
    assert p["memory_globs"] == [".memory/**/*.md"]          # untouched

    repo.switch("release/1.x")
    repo.write("big.txt", "more than ten bytes\n")
    repo.commit("big")
    s = ps.sync("p")
    assert s["branch"] == "release/1.x" and s["skipped_large"] == 1
    r = ps("cat", "p", "big.txt")
    assert r.rc == 2 and "not stored" in r.err and one_error_line(r.err), r

    p = ps.json("project", "set", "p", "--default-branch", "--memory-glob", "notes/*.md",
                "--memory-glob", "docs/**/*.md")
    assert p["branch"] is None and p["max_blob_size"] == 10
    assert p["memory_globs"] == ["notes/*.md", "docs/**/*.md"]
    assert ps.project("p") == p


def test_bad_input_changes_nothing(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    before = ps.project("p")
    for args, rc in ((("project", "set", "nope", "--branch", "x"), 3),
                     (("project", "set", "p", "--branch", "x", "--default-branch"), 2),
                     (("project", "set", "p", "--max-blob-size", "-5"), 2),
                     # past what the stores can hold, or 100 years
                     (("project", "set", "p", "--max-blob-size", "257M"), 2),
                     (("project", "set", "p", "--max-blob-size", str(256 * 2 ** 20 + 1)), 2),
                     (("project", "set", "p", "--keep-days", "36501"), 2),
                     (("project", "add", "q", str(repo.path), "--max-blob-size", "1G"), 2),
                     (("project", "add", "q", str(repo.path), "--keep-days", "99999"), 2),
                     (("project", "set", "p", "--memory-glob", ""), 2),
                     (("project", "set", "p", "--continue-history"), 2),
                     (("project", "set"), 2),
                     (("project", "set", "p", "extra"), 2)):
        r = ps(*args)
        assert r.rc == rc and one_error_line(r.err), r
    assert ps.project("p") == before
    assert ps("project", "show", "q").rc == 3
    p = ps.json("project", "set", "p", "--max-blob-size", "256M", "--keep-days", "36500")
    assert p["max_blob_size"] == 256 * 2 ** 20 and p["keep_days"] == 36500


def test_settings_stored_over_the_bounds_are_brought_within_them(ps, repo):
    """Before schema 24 a project could hold any max_blob_size and keep_days; the upgrade brings
    them within today's bounds, so `project show` (and a client writing a project back) sees
    values the API accepts, and a sync never asks for more than the store can hold."""
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", str(repo.path), "--keep-days", "7")
    names = sorted(p.name for p in (ROOT / "src/store/sqlite/migrations").glob("*.sql"))
    before = names.index("0024_setting_bounds.sql")
    set_old = "UPDATE projects SET max_blob_size = 1073741824, keep_days = 99999"
    if ps.backend == "pg":
        pg_undo_blob_packs(ps.db)
        psql(ps.db, "; ".join(PG_UNDO_DIR_IDS + [
            set_old, f"DELETE FROM projsync_schema WHERE version > {before}"]))
    else:
        with sqlite3.connect(ps.db) as db:
            db.execute(set_old)
            sqlite_undo_dir_ids(db)  # 0026 runs again on the way up
            db.execute(f"PRAGMA user_version = {before}")
    p = ps.json("project", "show", "p")
    assert p["max_blob_size"] == 256 << 20 and p["keep_days"] == 36500
    assert ps.sync("p")["status"] == "succeeded"
