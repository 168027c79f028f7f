"""
Issue 14: `projsync store pack` packs the small blobs of a store written before packs existed
(schema 26 and older kept each blob in a row of its own), as a sync now stores them: every file
reads back byte-exact afterwards, verify passes, the store shrinks on disk, a second run has
nothing to do, and the blobs a later sync adds are packed by the sync itself.
"""
import json
import os
import sqlite3

from conftest import Projsync, pg_undo_blob_packs, psql, sqlite_undo_blob_packs

SNIPPET = [f"static int handler_{i}(struct request *req) {{ return respond(req, {i}); }}\n"
           for i in range(200)]


def small_file(i):
    return "".join(SNIPPET[(i * 7 + k) % 200] for k in range(20 + i % 60)) + f"/* {i} */\n"


def unpack_store(db):
    """The store as schema 26 left it: each blob in its own row, no blob_packs."""
    con = sqlite3.connect(db)
    with con:
        sqlite_undo_blob_packs(con)
        con.execute("PRAGMA user_version = 26")
    con.execute("VACUUM")
    con.close()


def packed_rows(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM blobs WHERE encoding = 3").fetchone()[0]
    finally:
        con.close()


def test_store_pack_packs_an_old_store(ps, repo):
    for i in range(300):
        repo.write(f"src/mod{i % 7}/file{i:03d}.c", small_file(i))
    repo.write("big.bin", os.urandom(40000))
    repo.write("empty.txt", "")
    commit = repo.commit("many small files")
    ps.add("p", repo.path)
    assert ps("sync", "p").rc == 0
    assert packed_rows(ps.db) > 250  # a sync packs them itself

    unpack_store(ps.db)
    assert ps.json("stats")["store"]["packs"] == 0  # opening migrates to 27, packs nothing
    size_before = os.path.getsize(ps.db)
    stored_before = ps.json("stats")["store"]["stored_bytes"]

    r = ps("store", "pack")
    assert r.rc == 0, r
    assert r.out.startswith("packed "), r.out
    st = ps.json("stats")["store"]
    assert st["packs"] > 0 and st["blobs_packed"] >= 299
    assert st["stored_bytes"] < stored_before / 2  # alike files: far better together
    assert os.path.getsize(ps.db) < size_before  # compacted: the file shrank
    for f in repo.ls_tree(commit):
        r = ps("cat", "p", "--", f["path"])
        assert r.rc == 0, r
        assert r.outb == repo.blob(f["sha"]), f["path"]
    assert ps("verify", "--blobs", "p").rc == 0
    assert ps("grep", "handler_199", "p").rc == 0

    again = ps.json("store", "pack")
    assert again["blobs"] == 0 and again["packs"] == 0
    assert ps("store", "pack").out.startswith("nothing to pack")

    # A later sync's new small files are packed by the sync; changed ones become deltas
    # against their packed versions, and read back.
    for i in range(0, 300, 10):
        repo.write(f"src/mod{i % 7}/file{i:03d}.c", small_file(i) + "/* changed */\n")
    repo.write("src/new.c", small_file(1000))
    c2 = repo.commit("change some")
    assert ps("sync", "p").rc == 0
    for f in repo.ls_tree(c2):
        assert ps("cat", "p", "--", f["path"]).outb == repo.blob(f["sha"]), f["path"]
    assert ps("verify", "--blobs", "p").rc == 0


def test_store_pack_usage(ps):
    r = ps("store", "pack", "extra")
    assert r.rc == 2
    assert "no arguments" in r.err
    r = ps("store", "frobnicate")
    assert r.rc == 2 and "unknown store command 'frobnicate'" in r.err
    # No store yet: not found, and nothing created.
    r = ps("store", "pack")
    assert r.rc == 3 and "no store" in r.err
    # An empty store: nothing to do, and it says so.
    assert ps("migrate").rc == 0
    r = ps("store", "pack", "--json")
    assert r.rc == 0, r
    assert json.loads(r.out) == {"candidates": 0, "blobs": 0, "packs": 0, "damaged": 0,
                                 "bytes_before": 0, "bytes_after": 0}


def test_store_pack_twice_at_once_on_postgresql(tmp_path, pg_database, repo):
    """Two `store pack` runs at once on PostgreSQL (read committed: each reads a row, then
    rewrites it) pack each blob once: the second run does not pack again what the first is
    packing, so no pack is left holding a dead copy and the savings are not counted twice."""
    for i in range(600):
        repo.write(f"src/mod{i % 7}/file{i:03d}.c", small_file(i))
    c1 = repo.commit("many small files")
    pg = Projsync(tmp_path / "pg", pg_database())
    pg.add("p", repo.path)
    assert pg("sync", "p").rc == 0
    pg_undo_blob_packs(pg.db)
    psql(pg.db, "DELETE FROM projsync_schema WHERE version > 26")
    runs = [pg.popen("store", "pack", "--json") for _ in range(2)]
    reports = []
    for r in runs:
        out, err = r.communicate(timeout=300)
        assert r.returncode == 0, err
        reports.append(json.loads(out))
    assert sum(r["blobs"] for r in reports) == 600, reports
    st = pg.json("stats")["store"]
    assert st["blobs_packed"] == 600 and st["packs"] == sum(r["packs"] for r in reports), st
    for f in repo.ls_tree(c1)[::60]:  # verify --blobs reads them all
        r = pg("cat", "p", "--", f["path"])
        assert r.rc == 0 and r.outb == repo.blob(f["sha"]), f["path"]
    assert pg("verify", "--blobs", "p").rc == 0


def test_prune_says_when_the_store_grows(ps, repo):
    """A third of the files edited, then the older sync pruned: the edits were deltas against
    packed bases that now go, so they are stored whole again, while the packs, two thirds
    alive, stay as they are: the store grows, and prune says so rather than reporting bytes
    freed that were not."""
    texts = [os.urandom(2000).hex() + "\n" for _ in range(60)]  # little for zstd to share
    for i in range(60):
        repo.write(f"f{i:02d}.c", texts[i])
    repo.commit("one")
    ps.add("p", repo.path)
    assert ps("sync", "p").rc == 0
    for i in range(0, 60, 3):
        repo.write(f"f{i:02d}.c", texts[i] + "/* edited */\n")
    c2 = repo.commit("two")
    assert ps("sync", "p").rc == 0
    assert ps("project", "set", "p", "--keep-syncs", "1").rc == 0
    before = ps.json("stats")["store"]["stored_bytes"]
    r = ps("prune")
    assert r.rc == 0, r
    after = ps.json("stats")["store"]["stored_bytes"]
    assert after > before  # the case this test is about
    assert f"the store grew by" in r.out and f"({after - before} bytes)" in r.out, r.out
    for f in repo.ls_tree(c2):
        assert ps("cat", "p", "--", f["path"]).outb == repo.blob(f["sha"])
