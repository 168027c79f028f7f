"""
`projsync store copy FROM TO` (README, "Several nodes"): a whole store moved between backends.
The round trip SQLite -> PostgreSQL -> SQLite gives the same files, history, changes, cat and
memory answers as the original, byte for byte; a non-empty target is refused (exit 4) with
nothing written; the copied store goes on syncing with new ids after the copied ones.
"""
import json
import sqlite3

import pytest

from conftest import Projsync, one_error_line, psql


def build_history(ps, repo):
    """A store with a bit of everything: renames, deletions, binary and unicode paths, a failed
    sync, memory imported, changed, restored and added by hand."""
    repo.write("README.md", "# copy\n")
    repo.write("src/a.txt", "a\n" * 50)
    repo.write("src/b.bin", bytes(range(256)) * 4)
    repo.write("docs/ünïcode name.md", "unicode path\n")
    repo.write(".memory/deploy.md", "# Deploy guide\nfirst version, kiwi\n")
    repo.commit("c1")
    ps.ok("project", "add", "demo", str(repo.path))
    ps.sync("demo")
    repo.mv("src/a.txt", "src/renamed.txt")
    repo.rm("src/b.bin")
    repo.write(".memory/deploy.md", "# Deploy guide\nsecond version, mango\n")
    repo.write("src/new.txt", "new\n")
    repo.commit("c2")
    ps.sync("demo")
    # A failed sync (its events and error stay in the history).
    ps.sync("demo", "--branch", "no-such-branch", expect="failed")
    old = [e for e in ps.json("memory", "list", "demo", "--include-superseded")
           if e["status"] == "superseded"]
    ps.ok("memory", "restore", str(old[0]["id"]))
    ps.ok("memory", "add", "demo", "--title", "Hand note", "--text", "written by hand, papaya",
          "--tag", "ops")


def answers(ps, same_backend=True):
    """Everything a user can ask of the store, as text. Across backends a search finds the
    same entries but ranks and cuts snippets its own way (docs/architecture.md §4): those two
    fields are left out then."""
    out = {}
    hist = ps.json("history", "demo")
    out["history"] = hist
    out["status"] = ps.json("status", "demo")
    for s in hist:
        if s["status"] == "succeeded":
            out[f"files@{s['id']}"] = ps.json("files", "demo", "--at", str(s["id"]))
            out[f"changes@{s['id']}"] = ps.json("changes", str(s["id"]))
            out[f"patch@{s['id']}"] = ps.ok("changes", str(s["id"]), "--patch").out
            out[f"log@{s['id']}"] = ps.json("log", str(s["id"]))
    for f in out[f"files@{hist[-1]['id']}"] + ps.json("files", "demo"):
        r = ps("cat", "demo", f["path"], "--at", str(hist[-1]["id"]))
        out[f"cat {f['path']}"] = (r.rc, r.outb)
    mem = ps.json("memory", "list", "demo", "--include-superseded")
    out["memory"] = mem
    for e in mem:
        out[f"memory history {e['id']}"] = ps.json("memory", "history", str(e["id"]))
    # Directory trees come along: every snapshot verifies with its stored trees.
    for s in hist:
        if s["status"] == "succeeded":
            v = ps.json("verify", "demo", "--at", str(s["id"]), "--blobs")
            out[f"verify@{s['id']}"] = (v["sound"], v["directories_stored"], v["files"])
    # Code search answers the same, in every snapshot (the index comes along: code_index below).
    r = ps("grep", "-F", "a", "demo", "--json")
    out["grep"] = (r.rc, r.out)
    for s in hist:
        if s["status"] == "succeeded":
            for args in (("-F", "version"), ("-i", "-E", "DEPLOY|Kiwi"), ("-E", "^a$")):
                r = ps("grep", *args, "demo", "--at", str(s["id"]), "--json")
                out[f"grep {args}@{s['id']}"] = (r.rc, r.out, r.err)
    for q in ("kiwi", "mango", "papaya", "deploy guide"):
        found = ps.json("memory", "search", "demo", q, "--include-superseded")
        if not same_backend:
            found = sorted(({k: v for k, v in e.items() if k not in ("rank", "snippet")}
                            for e in found), key=lambda e: e["id"])
        out[f"search {q}"] = found
    return out


def code_index(ps):
    """The code index as stored, backend-neutrally: code_blobs (id, sha, binary), the segments,
    each postings row as (segment, first trigram, bytes), each project's code_index_pending and
    the count of stored blobs the index lacks."""
    if ps.backend == "pg":
        def q(sql):
            return [tuple(line.split("|")) for line in psql(ps.db, sql).splitlines() if line]
        return (q("SELECT id, encode(sha, 'hex'), is_binary FROM code_blobs ORDER BY id"),
                q("SELECT id, level, postings, min_id, max_id, docs FROM code_segments "
                  "ORDER BY id"),
                q("SELECT seg, first, encode(data, 'hex') FROM code_postings ORDER BY 1, 2"),
                q("SELECT id, code_index, code_index_pending FROM projects ORDER BY id"),
                q("SELECT coalesce(sum(n), 0) FROM code_unindexed"))
    con = sqlite3.connect(ps.db)

    def q(sql):
        return [tuple("" if v is None else str(v) for v in row) for row in con.execute(sql)]
    out = (q("SELECT id, lower(hex(sha)), binary FROM code_blobs ORDER BY id"),
           q("SELECT id, level, postings, min_id, max_id, docs FROM code_segments ORDER BY id"),
           q("SELECT key >> 24, key & 16777215, lower(hex(data)) FROM code_postings "
             "ORDER BY key"),
           q("SELECT id, code_index, code_index_pending FROM projects ORDER BY id"),
           q("SELECT n FROM code_unindexed"))
    con.close()
    return out


def sqlite_rows(db):
    con = sqlite3.connect(db)
    full = "iif(d.path = '', f.name, d.path || '/' || f.name)"
    out = (con.execute(f"SELECT f.id, f.project_id, {full}, f.mode, f.sha, f.size, "
                       "f.introduced_by, f.superseded_by FROM file_versions f "
                       "JOIN dirs d ON d.id = f.dir_id ORDER BY f.id").fetchall(),
           con.execute("SELECT t.id, t.project_id, d.path, t.tree_sha, t.introduced_by, "
                       "t.superseded_by FROM dir_trees t JOIN dirs d ON d.id = t.dir_id "
                       "ORDER BY t.id").fetchall(),
           con.execute("SELECT project_id, path FROM dirs ORDER BY 1, 2").fetchall())
    con.close()
    assert ("", ) in [(p,) for _, p in out[2]] and len(out[0]) > 0
    return out


def test_round_trip_sqlite_postgres_sqlite(tmp_path, pg_database, repo):
    original = Projsync(tmp_path / "a")
    build_history(original, repo)
    want = answers(original)
    want_across = answers(original, same_backend=False)
    pg = Projsync(tmp_path / "p", pg_database())
    back = Projsync(tmp_path / "b")

    r = original.json("store", "copy", str(original.db), pg.db, db=False)
    assert r["rows"]["projects"] == 1 and r["rows"]["blobs"] > 0, r
    assert answers(pg, same_backend=False) == want_across
    back_db = tmp_path / "b" / "store" / "copied.db"
    back.db = back_db
    original.ok("store", "copy", pg.db, str(back_db), db=False)
    assert answers(back) == want
    # Content went through byte for byte (cat writes what is stored).
    assert back.ok("cat", "demo", "src/renamed.txt").outb == b"a\n" * 50
    assert back.ok("cat", "demo", "src/b.bin", "--at", str(want["history"][-1]["id"])).outb \
        == bytes(range(256)) * 4

    assert all(v[0] and v[1] for k, v in want.items() if k.startswith("verify@")), want
    # Row for row: file versions and directory trees keep their ids and full paths through a
    # backend in another layout (schema 26: the row interface speaks full paths, store/copy.c),
    # and the copy has a dirs row for each directory named, the root included.
    assert sqlite_rows(back.db) == sqlite_rows(original.db)
    # The code index comes along as it is, both ways: every blob the source indexed is indexed
    # in the copy under the same id with the same postings, nothing is left unindexed (a search
    # reads the files the index names, not every file of the snapshot), and no project owes a
    # rebuild. Before, the copy arrived with an empty index: every search read every file until
    # each project's next sync had indexed its whole history again.
    index = code_index(original)
    assert index[0] and index[1] and index[2] and index[4] == [("0",)], index
    assert index[3] == [("1", "1", "0")], index
    for ps in (pg, back):
        assert ps.json("project", "show", "demo")["code_index"] is True
        assert code_index(ps) == index

    # The copies go on: the next sync gets a new id after the copied ones, on both backends,
    # and indexes only what is new.
    repo.write("src/after.txt", "after the move\n")
    head = repo.commit("c3")
    last = max(s["id"] for s in want["history"])
    for ps in (pg, back):
        s = ps.sync("demo")
        assert s["id"] == last + 1 and s["commit"] == head, s
        assert code_index(ps)[0][:-1] == index[0], code_index(ps)[0]
        assert ps.ok("grep", "after the", "demo").out == "src/after.txt:1:after the move\n"
        e = ps.json("memory", "add", "demo", "--title", "After", "--text", "x")
        assert e["id"] > max(m["id"] for m in want["memory"]), e


def test_code_index_ids_stay_past_pruned_ones(tmp_path, pg_database, repo):
    """A pruned blob's postings stay in its segment until a merge (docs/architecture.md §7a), so
    the copy hands out code_blobs ids above every id a segment holds, not only above the
    copied rows: a new blob given a pruned blob's id would inherit its postings."""
    a = Projsync(tmp_path / "a")
    for i in range(4):
        repo.write(f"f{i}.txt", f"kept file {i}\n")
    repo.commit("c1")
    a.ok("project", "add", "demo", str(repo.path))
    a.sync("demo")
    repo.write("gone.txt", "zebra crossing\n")
    repo.commit("c2")
    a.sync("demo")
    repo.rm("gone.txt")
    repo.commit("c3")
    a.sync("demo")
    a.ok("project", "set", "demo", "--keep-syncs", "1")
    a.ok("prune", "demo")
    blobs, segments = code_index(a)[:2]
    top = max(int(seg[4]) for seg in segments)
    assert top > max(int(b[0]) for b in blobs), (blobs, segments)

    repo.write("new.txt", "zebra newcomer\n")
    repo.commit("c4")
    for t in (Projsync(tmp_path / "p", pg_database()), Projsync(tmp_path / "t")):
        a.ok("store", "copy", str(a.db), str(t.db), db=False)
        assert code_index(t)[:2] == (blobs, segments)
        t.sync("demo")
        new = code_index(t)[0]
        assert len(new) == len(blobs) + 1 and int(new[-1][0]) > top, new
        assert t.ok("grep", "zebra", "demo").out == "new.txt:1:zebra newcomer\n"


def test_refuses_a_non_empty_target(tmp_path, pg_database, repo):
    a = Projsync(tmp_path / "a")
    build_history(a, repo)
    target = Projsync(tmp_path / "t", pg_database())
    target.ok("project", "add", "other", str(repo.path))
    r = a("store", "copy", str(a.db), target.db, db=False)
    assert r.rc == 4 and one_error_line(r.err) and "not empty" in r.err, r
    # Nothing was written: the target holds its one project, no syncs.
    assert [p["name"] for p in target.json("project", "list")] == ["other"]
    assert target.json("history", "other") == []


def test_bad_arguments(tmp_path, pg_database):
    a = Projsync(tmp_path / "a")
    r = a("store", "copy", str(tmp_path / "missing.db"), str(tmp_path / "t.db"), db=False)
    assert r.rc == 3 and one_error_line(r.err), r
    assert not (tmp_path / "missing.db").exists()
    r = a("store", "copy", str(tmp_path / "x.db"), db=False)
    assert r.rc == 2, r
    r = a("store", "copy", str(tmp_path / "x.db"), str(tmp_path / "x.db"), db=False)
    assert r.rc == 2 and one_error_line(r.err), r


def test_a_live_stores_unfinished_syncs_arrive_ended(tmp_path, pg_database, make_repo):
    # A copy of a live store carried its running and queued syncs as they were: on the target the
    # running one stayed "running" while the source's server (its owner, alive on this host)
    # lived, and the queued one blocked every sync of its project. Their work is not in the
    # copy: the running one arrives failed (interrupted), the queued one cancelled unstarted.
    from server_util import Server, wait_status
    a = Projsync(tmp_path / "a")
    for name in ("w", "w2"):
        r = make_repo(name)
        for i in range(8):
            r.write(f"f{i}.txt", f"{name} {i}\n")
        r.commit("one")
        a.ok("project", "add", name, str(r.path))
    srv = Server(a, "--workers", "1", env={"PROJSYNC_TEST_STEP_DELAY_MS": "300",
                                          "PROJSYNC_TEST_BATCH": "1"})
    try:
        st, _, run = srv.post("/api/v1/projects/w/sync")
        assert st == 202, run
        wait_status(srv, run["id"], ("running",))
        st, _, queued = srv.post("/api/v1/projects/w2/sync")
        assert st == 202 and queued["status"] == "queued", queued
        targets = [Projsync(tmp_path / "p", pg_database()), Projsync(tmp_path / "t")]
        for t in targets:
            a.ok("store", "copy", str(a.db), str(t.db), db=False)
        # The source's own syncs are untouched.
        st, _, s = srv.get(f"/api/v1/syncs/{queued['id']}")
        assert s["status"] in ("queued", "running", "succeeded"), s
    finally:
        srv.stop()
    for t in targets:
        got = {s["id"]: s for s in t.json("history", "w") + t.json("history", "w2")}
        r, q = got[run["id"]], got[queued["id"]]
        assert r["status"] == "failed" and r["error"]["code"] == "interrupted", r
        assert "store copy" in r["error"]["message"], r
        assert r["finished_at"] and r["started_at"], r
        assert q["status"] == "cancelled" and q["error"]["code"] == "cancelled", q
        assert q["finished_at"] and not q["started_at"], q
        # Nothing blocks the target: both projects sync there.
        for name in ("w", "w2"):
            assert t.sync(name)["status"] == "succeeded"
