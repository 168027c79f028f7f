"""
Retention (issue 11 item 3): after 20 syncs of a changing repository, `prune --keep-syncs 5`
keeps 5 snapshots that are byte-exact against git (`cat` of every file), the oldest kept one
listing its whole snapshot; blobs only the removed syncs saw are really gone; the SQLite file is
smaller; every memory entry is still there with its content. `--dry-run` reports the same
numbers and changes nothing. A SIGKILL at any moment inside prune leaves a consistent store,
and running prune again finishes the work.
"""
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import Projsync, psql, wait_for
from server_util import Server

KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)


def make_history(ps, repo, n=20):
    """n commits, each changing a big file, editing a line of a text file (its versions are
    stored as deltas, each against the one before), adding one, deleting an older one and
    editing a memory note; a sync after each. Returns the commits in order."""
    commits = []
    for i in range(n):
        repo.write("big.txt", f"version {i}\n" + os.urandom(20000).hex())
        repo.write("doc.txt", "".join(f"{'edited' if k == i else 'static'} line {k}\n"
                                      for k in range(500)))
        repo.write(f"add/f{i:02}.txt", f"file {i}\n")
        if i >= 3:
            repo.rm(f"add/f{i - 3:02}.txt")
        repo.write(".memory/notes.md", f"# Notes {i}\n\nfact number {i}\n")
        repo.write(f".memory/n{i:02}.md", f"# Note {i}\n\nsingle {i}\n")
        commits.append(repo.commit(f"c{i}"))
        if i == 0:
            ps.add("p", str(repo.path))
        assert ps.sync("p")["commit"] == commits[-1]
    return commits


def stored_shas(ps, table="blobs"):
    """The blob ids in `table`, as hex (both tables hold their 20 bytes: schemas 19 and 23)."""
    col = "encode(sha, 'hex')" if ps.backend == "pg" else "lower(hex(sha))"
    sql = f"SELECT {col} FROM {table}"
    if ps.backend == "pg":
        return set(psql(ps.db, sql).split())
    with sqlite3.connect(ps.db) as db:
        return {r[0] for r in db.execute(sql)}


def check_snapshot(ps, repo, sync_id, commit):
    files = ps.json("files", "p", "--at", sync_id)
    tree = {e["path"]: e for e in repo.ls_tree(commit)}
    assert [f["path"] for f in files] == sorted(tree), sync_id
    for f in files:
        assert f["sha"] == tree[f["path"]]["sha"]
        r = ps("cat", "p", f["path"], "--at", sync_id)
        assert r.rc == 0, r
        assert r.outb == repo.blob(f["sha"]), f


def memory(ps):
    return sorted((m["id"], m["source_ref"], m["content"], m["status"])
                  for m in ps.json("memory", "list", "p", "--include-superseded"))


def test_prune_keeps_five_byte_exact(ps, make_repo):
    repo = make_repo()
    commits = make_history(ps, repo)
    before_mem = memory(ps)
    assert len(before_mem) > 20
    hist = ps.history("p")
    assert len(hist) == 20
    shas_before = stored_shas(ps)
    size_before = os.path.getsize(ps.db) if ps.backend == "sqlite" else None

    assert ps.json("stats")["store"]["blobs_delta"] > 0
    ps.ok("project", "set", "p", "--keep-syncs", "5")
    dry = ps.json("prune", "--dry-run")
    assert dry["dry_run"] and dry["syncs"] == 15 and dry["blobs"] > 0 and dry["bytes"] > 20000
    assert dry["projects"][0]["start_sync_id"] == hist[4]["id"]
    assert len(ps.history("p")) == 20 and stored_shas(ps) == shas_before
    out = ps.ok("prune", "p", "--dry-run").out
    assert "would remove 15 syncs" in out and f"{dry['bytes']} bytes" in out

    done = ps.json("prune", "p")
    assert not done["dry_run"]
    for k in ("syncs", "file_versions", "blobs", "bytes", "deltas_rewritten"):
        assert done[k] == dry[k], k
    # The oldest kept doc.txt was a delta against a pruned version: rewritten plain first.
    assert done["deltas_rewritten"] >= 1
    ps.ok("verify", "p", "--blobs")
    kept = ps.history("p")
    assert [s["id"] for s in kept] == [s["id"] for s in hist[:5]]
    assert kept[-1]["previous_sync_id"] is None
    for s, c in zip(kept, reversed(commits[-5:])):
        assert s["commit"] == c
        check_snapshot(ps, repo, s["id"], c)
        # The directory trees stored with each kept snapshot still make its commit's tree.
        v = ps.json("verify", "p", "--at", s["id"])
        assert v["sound"] and v["directories_stored"], v
    # What only the removed syncs saw is gone; what the kept ones see is all there.
    needed = {e["sha"] for c in commits[-5:] for e in repo.ls_tree(c)}
    shas_after = stored_shas(ps)
    assert needed <= shas_after
    gone = shas_before - shas_after
    assert len(gone) == dry["blobs"]
    old_big = {e["sha"] for c in commits[:15] for e in repo.ls_tree(c)
               if e["path"] == "big.txt"}
    assert old_big <= gone
    # The code index lost the pruned blobs with them, and still finds what the kept ones hold.
    assert not (gone & stored_shas(ps, "code_blobs"))
    assert stored_shas(ps, "code_blobs") <= shas_after
    if ps.backend == "sqlite":
        # Every row of the code index belongs to a segment it lists (none left by a merge).
        with sqlite3.connect(ps.db) as db:
            assert db.execute("SELECT count(*) FROM code_postings WHERE (key >> 24) NOT IN "
                              "(SELECT id FROM code_segments)").fetchone() == (0,)
            assert db.execute("SELECT count(*) FROM code_segments").fetchone()[0] > 0
    r = ps("files", "p", "--at", hist[5]["id"])
    assert r.rc == 3
    if size_before is not None:
        assert os.path.getsize(ps.db) < size_before
    # Memory entries are never pruned; their text is their own.
    assert memory(ps) == before_mem
    # Nothing left to do, and the chain goes on.
    assert ps.json("prune")["syncs"] == 0
    repo.write("z.txt", "after\n")
    z = repo.commit("after")
    s = ps.sync("p")
    assert s["commit"] == z and s["counts"]["added"] == 1
    check_snapshot(ps, repo, s["id"], z)


@pytest.mark.sqlite_only
def test_sigkill_inside_prune_leaves_a_consistent_store(ps, make_repo, tmp_path):
    if ps.backend != "sqlite":
        pytest.skip("SQLite file copies")
    repo = make_repo()
    commits = make_history(ps, repo)
    ps.ok("project", "set", "p", "--keep-syncs", "5")
    base = ps.db.parent
    kills = 0
    for attempt in range(6):
        work = Projsync(tmp_path / f"k{attempt}")
        shutil.rmtree(work.db.parent)
        shutil.copytree(base, work.db.parent)
        # Step delays stretch the prune so the kill lands inside it: between its
        # transactions for the later attempts, inside the first ones for the early ones.
        env = {"PROJSYNC_TEST_PRUNE_STEP_DELAY_MS": "400"}
        proc = work.popen("prune", env=env)
        time.sleep([0.02, 0.08, 0.15, 0.3, 0.6, 0.9][attempt] + random.random() * 0.05)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=30)
        kills += rc in KILLED
        with sqlite3.connect(work.db) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            # No sync points into a chain that is not there, and one chain start.
            firsts = db.execute("SELECT count(*) FROM syncs WHERE previous_sync_id IS NULL"
                                ).fetchone()[0]
            assert firsts == 1
            # Every version of every remaining snapshot has its blob (nothing is large). A
            # version's id and a blob's are the same 20 bytes (schemas 16 and 23).
            missing = db.execute(
                "SELECT count(*) FROM file_versions f WHERE NOT EXISTS "
                "(SELECT 1 FROM blobs b WHERE b.sha = f.sha)").fetchone()[0]
            assert missing == 0
            # No delta outlived its base.
            assert db.execute("PRAGMA foreign_key_check(blobs)").fetchall() == []
            orphans = db.execute(
                "SELECT count(*) FROM blobs d WHERE d.base IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM blobs b WHERE b.sha = d.base)").fetchone()[0]
            assert orphans == 0
        hist = work.history("p")
        assert len(hist) in (5, 20)
        for s in hist[:5]:
            c = commits[len(commits) - 1 - hist.index(s)]
            check_snapshot(work, repo, s["id"], c)
        # Running it again finishes the work.
        again = work.json("prune")
        assert len(work.history("p")) == 5
        assert again["syncs"] in (0, 15)
        work.ok("verify", "p", "--blobs")
    assert kills >= 4


def test_server_prunes_blobs_while_syncs_keep_running(ps, make_repo):
    """The server's periodic prune on a busy store: three projects whose syncs (slowed, each
    fetching a new blob) keep one running nearly all the time. Blob pruning waits for a moment
    without a running sync, which such a server never has by itself: the prune holds new
    syncs back (the store's prune gate) until the running ones end, then the blobs only the
    removed syncs saw are deleted. The syncs that ran meanwhile all succeed with every blob
    they stored: a running sync's blobs are never deleted."""
    repo = make_repo()
    for i in range(4):
        repo.write("big.txt", f"version {i}\n" + os.urandom(5000).hex())
        head = repo.commit(f"c{i}")
        if i == 0:
            ps.add("p", str(repo.path))
        assert ps.sync("p")["commit"] == head
    ps.ok("project", "set", "p", "--keep-syncs", "1")
    old = stored_shas(ps) - {e["sha"] for e in repo.ls_tree(head)}
    assert len(old) == 3
    busy = []
    for k in range(3):
        r = make_repo(f"busy{k}")
        r.write("a.txt", f"busy {k}\n")
        r.commit("one")
        ps.add(f"busy{k}", str(r.path))
        busy.append(r)

    srv = Server(ps, "--prune-every", "1s", "--workers", "3",
                 env={"PROJSYNC_TEST_STEP_DELAY_MS": "250"})
    stop = threading.Event()
    started = []

    def keep_busy():
        n = 0
        while not stop.is_set():
            for k, r in enumerate(busy):
                n += 1
                r.write(f"f{n}.txt", f"busy {k} change {n}\n" + os.urandom(200).hex())
                r.commit(f"c{n}")
                st, _, body = srv.post(f"/api/v1/projects/busy{k}/sync")
                if st == 202:
                    started.append(body["id"])
            time.sleep(0.05)

    t = threading.Thread(target=keep_busy, daemon=True)
    t.start()
    try:
        gone = wait_for(lambda: not (old & stored_shas(ps)), timeout=60, interval=0.5)
        # Syncs keep running after the prune: the gate opened again.
        n = len(started)
        more = wait_for(lambda: len(started) > n + 3, timeout=30)
    finally:
        stop.set()
        t.join(timeout=30)
        srv.stop()
    assert gone, srv.stderr()
    assert more, srv.stderr()
    assert "new syncs wait" in srv.stderr()
    check_snapshot(ps, repo, ps.history("p")[0]["id"], head)
    for k, r in enumerate(busy):
        # The one running when the server stopped is cancelled (one queued stays); none failed.
        hist = ps.history(f"busy{k}")
        done = [s for s in hist if s["status"] == "succeeded"]
        assert len(done) >= 2 and {s["status"] for s in hist} <= {"succeeded", "cancelled", "queued"}, hist
        last = done[0]
        files = ps.json("files", f"busy{k}", "--at", last["id"])
        tree = {e["path"]: e for e in r.ls_tree(last["commit"])}
        assert [f["path"] for f in files] == sorted(tree)
        for f in files:
            got = ps("cat", f"busy{k}", f["path"], "--at", last["id"])
            assert got.rc == 0 and got.outb == r.blob(f["sha"]), (f, got)
    for name in ("p", "busy0", "busy1", "busy2"):
        ps.ok("verify", name)


def index_bytes(ps):
    """The bytes of the code index's posting rows and how many segments hold them."""
    sql = "SELECT coalesce(sum(length(data)), 0), (SELECT count(*) FROM code_segments) " \
          "FROM code_postings"
    if ps.backend == "pg":
        size, segs = psql(ps.db, sql).split("|")
        return int(size), int(segs)
    with sqlite3.connect(ps.db) as db:
        return db.execute(sql).fetchone()


@pytest.mark.parametrize("counted", [True, False], ids=["counted", "uncounted"])
def test_prune_takes_pruned_blobs_out_of_the_code_index(ps, make_repo, counted):
    """A prune that removes most indexed blobs takes their postings out of the code index at
    once, not at some later merge of their segments (the top level may never merge again), and
    searches stay exact; also with segments written before they counted their documents
    (schema 20 and older: docs is NULL)."""
    repo = make_repo("idx")
    rnd = random.Random(7)
    words = [f"w{rnd.randrange(10**9):09d}" for _ in range(4000)]
    for i in range(12):
        for k in range(15):
            repo.write(f"src/f{k}.c", f"int v{i}_{k};\n" +
                       " ".join(rnd.sample(words, 300)) + "\n")
        repo.commit(f"c{i}")
        if i == 0:
            ps.add("p", str(repo.path))
        ps.sync("p")
    before, _ = index_bytes(ps)
    if not counted:
        sql = "UPDATE code_segments SET docs = NULL"
        if ps.backend == "pg":
            psql(ps.db, sql)
        else:
            with sqlite3.connect(ps.db) as db:
                db.execute(sql)
    ps.ok("project", "set", "p", "--keep-syncs", "1")
    done = ps.json("prune", "p")
    assert done["syncs"] == 11, done
    after, segs = index_bytes(ps)
    # One snapshot of twelve is left: its postings, in one segment, not the twelve's.
    assert segs == 1 and after < before / 4, (before, after, segs)
    assert stored_shas(ps, "code_blobs") == stored_shas(ps)
    hits = ps.json("grep", "v11_3", "p")
    assert [(m["path"], m["line"]) for m in hits] == [("src/f3.c", 1)], hits
    r = ps("grep", "v10_3", "p")
    assert r.rc == 1 and r.out == "", r   # gone with its sync: no match, as git grep


def test_the_oldest_kept_sync_counts_what_its_changes_list(ps, repo):
    # After a prune the oldest kept sync has no predecessor: its changes (CLI and API) list its
    # whole snapshot as added, while its counts still said "+1 ~1" against the sync pruned
    # before it.
    repo.write("a.txt", "a\n")
    repo.write("b.txt", "b\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    for i in range(3):
        repo.write("a.txt", f"a {i}\n")
        repo.write(f"n{i}.txt", f"{i}\n")
        repo.commit(f"c{i + 2}")
        ps.sync("p")
    ps.ok("project", "set", "p", "--keep-syncs", "1")
    ps.ok("prune")
    hist = ps.history("p")
    assert len(hist) == 1
    start = hist[0]
    changes = ps.json("changes", str(start["id"]))
    assert [c["status"] for c in changes] == ["added"] * 5, changes
    want = {"added": 5, "modified": 0, "deleted": 0, "renamed": 0}
    assert {k: start["counts"][k] for k in want} == want, start
    srv = Server(ps)
    try:
        st, _, y = srv.get(f"/api/v1/syncs/{start['id']}")
        st2, _, ch = srv.get(f"/api/v1/syncs/{start['id']}/changes")
        assert st == st2 == 200 and len(ch) == 5 and {c["status"] for c in ch} == {"added"}
        assert {k: y["counts"][k] for k in want} == want, y
    finally:
        srv.stop()
    # A prune with nothing to remove changes nothing, and later syncs count as before.
    ps.ok("prune")
    assert ps.history("p") == hist
    repo.write("b.txt", "b changed\n")
    repo.commit("c5")
    ps.ok("project", "set", "p", "--keep-syncs", "5")
    s = ps.sync("p")
    assert (s["counts"]["added"], s["counts"]["modified"]) == (0, 1), s


def test_an_up_to_date_sync_that_a_prune_made_first_is_not_shown_as_up_to_date_plus_n(
        ps, make_repo):
    # The prune makes the first kept sync's counts its whole snapshot (+2); status and history
    # printed "(up to date), +2": the note says what the row now is.
    repo = make_repo()
    repo.write("a", "a\n")
    repo.write("b", "b\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    ps.sync("p")
    kept = ps.sync("p")
    assert kept["up_to_date"]
    assert "up to date" in ps.ok("history", "p").out
    ps.ok("project", "set", "p", "--keep-syncs", "1")
    ps.ok("prune", "p")
    [row] = ps.json("history", "p")
    assert row["id"] == kept["id"] and row["counts"]["added"] == 2, row
    for out in (ps.ok("status", "p").out, ps.ok("history", "p").out):
        assert "first kept sync" in out and "(up to date)" not in out, out
        assert " up to date\n" not in out, out


def test_the_api_says_which_up_to_date_sync_a_prune_made_first(ps, make_repo):
    # The CLI's note ("first kept sync; up to date when it ran") had no word in the JSON: the API
    # said up_to_date: true beside added: 2. up_to_date stays what the sync found; first_kept
    # says its counts are now its whole snapshot.
    repo = make_repo()
    repo.write("a", "a\n")
    repo.write("b", "b\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    first = ps.sync("p")
    kept = ps.sync("p")
    assert kept["up_to_date"] and not kept["first_kept"] and not first["first_kept"], kept
    ps.ok("project", "set", "p", "--keep-syncs", "1")
    ps.ok("prune", "p")
    repo.write("c", "c\n")
    repo.commit("c2")
    later = ps.sync("p")
    srv = Server(ps)
    try:
        st, _, rows = srv.get("/api/v1/projects/p/syncs")
        assert st == 200 and [r["id"] for r in rows] == [later["id"], kept["id"]], rows
        st2, _, one = srv.get(f"/api/v1/syncs/{kept['id']}")
        assert st2 == 200
        for y in (rows[1], one):
            assert y["up_to_date"] and y["first_kept"] and y["counts"]["added"] == 2, y
            assert y["previous_sync_id"] is None, y
        assert not rows[0]["first_kept"] and not rows[0]["up_to_date"], rows[0]
        assert rows[0]["counts"]["added"] == 1, rows[0]
    finally:
        srv.stop()
    # --json prints the same object.
    [_, row] = ps.json("history", "p")
    assert row["first_kept"] and row["up_to_date"], row
