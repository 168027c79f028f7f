"""
Issue 14: blobs are kept compressed (zstd) without anyone seeing a difference, a store written
by the previous schema (raw blobs) is converted when opened, and `projsync stats` tells what the
store costs.
"""
import sqlite3

from conftest import one_error_line

TEXT = "".join(f"line {i}: the same kind of source text again and again\n" for i in range(400))
BINARY = bytes(range(256)) * 64


def fill(repo):
    repo.write("text.txt", TEXT)
    repo.write("small.txt", "x")
    repo.write("empty.txt", "")
    repo.write("bin.dat", BINARY)
    repo.write("runs.txt", "a" * 100000 + "b" * 100000)
    return repo.commit("content")


def check_cat(ps, repo, name, commit, at=None):
    opts = ["--at", str(at)] if at else []
    for f in repo.ls_tree(commit):
        r = ps("cat", name, *opts, "--", f["path"])
        assert r.rc == 0, r
        assert r.outb == repo.blob(f["sha"]), f["path"]


def test_compressed_blobs_read_back_exactly(ps, repo):
    c1 = fill(repo)
    ps.add("p", repo.path)
    first = ps.sync("p")
    repo.write("text.txt", TEXT + "one more line\n")
    c2 = repo.commit("edit")
    ps.sync("p")
    check_cat(ps, repo, "p", c2)
    check_cat(ps, repo, "p", c1, at=first["id"])
    con = sqlite3.connect(ps.db)
    enc = dict(con.execute("SELECT sha, encoding FROM blobs"))
    con.close()
    shas = {f["path"]: f["sha"] for f in repo.ls_tree(c2)}
    assert enc[shas["text.txt"]] == 1 and enc[shas["runs.txt"]] == 1
    assert enc[shas["small.txt"]] == 0 and enc[shas["empty.txt"]] == 0


def test_stats(ps, repo, make_repo):
    fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    other = make_repo("other")
    other.write("text.txt", TEXT)  # the same blob as p's
    other.commit("one file")
    ps.add("q", other.path)
    ps.sync("q")

    p = ps.json("stats", "p")
    assert (p["name"], p["syncs"], p["syncs_succeeded"], p["file_versions"], p["blobs"]) == \
        ("p", 1, 1, 5, 5)
    raw = len(TEXT) + 1 + 0 + len(BINARY) + 200000
    assert p["raw_bytes"] == raw
    assert p["stored_bytes"] < raw / 4
    assert abs(p["ratio"] - raw / p["stored_bytes"]) < 1e-6

    whole = ps.json("stats")
    assert [x["name"] for x in whole["projects"]] == ["p", "q"]
    assert whole["projects"][1]["blobs"] == 1
    store = whole["store"]
    assert (store["projects"], store["syncs"], store["file_versions"], store["blobs"]) == \
        (2, 2, 6, 5)  # the shared blob counts once
    assert store["raw_bytes"] == raw and store["disk_bytes"] > 0
    assert store["unconverted_blobs"] == 0

    out = ps.ok("stats").out
    assert "(store)" in out and "RATIO" in out

    r = ps("stats", "nope")
    assert r.rc == 3 and one_error_line(r.err), r
    r = ps("stats", "p", "q")
    assert r.rc == 2, r


def test_schema4_store_is_converted(ps, repo):
    """A store as the previous projsync wrote it (raw blob rows, schema 4) reads the same and
    ends up compressed."""
    c1 = fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    # Turn it back into a schema 4 store: raw content, no encoding column, no conversion table.
    con = sqlite3.connect(ps.db)
    con.execute("CREATE TABLE old (sha TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "content BLOB NOT NULL) WITHOUT ROWID")
    for (sha,) in con.execute("SELECT sha FROM blobs").fetchall():
        data = repo.blob(sha)
        con.execute("INSERT INTO old VALUES (?, ?, ?)", (sha, len(data), data))
    con.execute("DROP TABLE blobs")
    con.execute("ALTER TABLE old RENAME TO blobs")
    con.execute("DROP TABLE blob_conversion")
    con.execute("PRAGMA user_version = 4")
    con.commit()
    con.close()

    check_cat(ps, repo, "p", c1)  # the first open migrates and converts
    con = sqlite3.connect(ps.db)
    assert con.execute("SELECT done FROM blob_conversion").fetchone() == (1,)
    assert con.execute("PRAGMA user_version").fetchone()[0] >= 5
    shas = {f["path"]: f["sha"] for f in repo.ls_tree(c1)}
    enc = dict(con.execute("SELECT sha, encoding FROM blobs"))
    con.close()
    assert enc[shas["text.txt"]] == 1 and enc[shas["small.txt"]] == 0
    assert ps.json("stats")["store"]["blobs_compressed"] == 3
