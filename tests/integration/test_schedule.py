"""
Scheduled syncs and failure states (issue 11 items 1-2), end to end: `projsync serve` queues a
`schedule` sync of a project with --every that picks up a new commit; a project whose source is
gone fails in plain words, pauses after --max-failures failures in a row (state, reason and
since when in `project list`, `status`, the API), and `project resume` / POST .../resume clears
it. The timing rules themselves (auto, backoff, jitter) are unit-tested on a fake clock
(tests/unit/test_schedule.c).
"""
import shutil
import sqlite3

from conftest import one_error_line, psql, wait_for
from server_util import Server, check_stream, stream, wait_status


def test_serve_schedules_a_sync_that_picks_up_a_commit(ps, make_repo):
    repo = make_repo()
    repo.write("a.txt", "one\n")
    repo.commit("one")
    p = ps.json("project", "add", "p", str(repo.path), "--every", "10s")
    assert p["every"] == "10s" and p["state"] == "active"
    assert p["next_sync_at"] is not None and p["interval_seconds"] == 10
    srv = Server(ps)
    try:
        # Never checked: due at once.
        first = wait_for(lambda: [s for s in srv.get("/api/v1/projects/p/syncs")[2]
                                  if s["trigger"] == "schedule" and s["status"] == "succeeded"],
                         timeout=30)
        assert first, srv.stderr()
        repo.write("b.txt", "two\n")
        head = repo.commit("two")
        picked = wait_for(lambda: [s for s in srv.get("/api/v1/projects/p/syncs")[2]
                                   if s["trigger"] == "schedule" and s["commit"] == head
                                   and s["status"] == "succeeded"], timeout=40)
        assert picked, srv.stderr()
        assert picked[0]["counts"]["added"] == 1
        st, _, proj = srv.get("/api/v1/projects/p")
        assert st == 200 and proj["every"] == "10s" and proj["next_sync_at"]
        assert proj["last_check_at"]
    finally:
        srv.stop()
    hist = ps.history("p")
    assert {s["trigger"] for s in hist} == {"schedule"}
    assert ps.ok("cat", "p", "b.txt").out == "two\n"
    out = ps.ok("project", "list").out
    assert "EVERY" in out and "10s" in out and "active" in out


def test_source_gone_pauses_and_resume_clears(ps, make_repo, tmp_path):
    repo = make_repo()
    repo.write("a.txt", "one\n")
    repo.commit("one")
    ps.add("p", str(repo.path), "--every", "1h")
    ps.sync("p")
    backup = tmp_path / "backup"
    shutil.copytree(repo.path, backup)
    shutil.rmtree(repo.path)
    for _ in range(2):
        s = ps.sync("p", expect="failed")
        assert s["error"]["code"] == "source_gone"
        assert "the source is gone" in s["error"]["message"]
    # The server's limit: 2 failures in a row pause a scheduled project at its next look.
    srv = Server(ps, "--max-failures", "2")
    try:
        proj = wait_for(lambda: (lambda p: p if p["state"] == "paused" else None)(
            srv.get("/api/v1/projects/p")[2]), timeout=20)
        assert proj, srv.stderr()
        assert "failed 2 times in a row" in proj["paused_reason"]
        assert "the source is gone" in proj["paused_reason"]
        assert proj["paused_at"] and proj["next_sync_at"] is None
        listed = ps.ok("project", "list").out
        assert "paused" in listed
        status = ps.ok("status", "p").out
        assert "paused since" in status and "project resume p" in status
        # The API's resume clears it; the restored source syncs again.
        shutil.copytree(backup, repo.path)
        st, _, body = srv.post("/api/v1/projects/p/resume")
        assert st == 200 and body["state"] == "active" and body["failures_in_row"] == 0
        assert body["paused_reason"] is None
        done = wait_for(lambda: [s for s in srv.get("/api/v1/projects/p/syncs")[2]
                                 if s["trigger"] == "schedule" and s["status"] == "succeeded"],
                        timeout=30)
        assert done, srv.stderr()
        st, _, missing = srv.post("/api/v1/projects/nope/resume")
        assert st == 404
    finally:
        srv.stop()
    assert ps.project("p")["state"] == "active"


def test_project_resume_cli(ps, make_repo):
    repo = make_repo()
    repo.write("a.txt", "one\n")
    repo.commit("one")
    ps.add("p", str(repo.path), "--every", "auto", "--max-failures", "1")
    shutil.rmtree(repo.path)
    s = ps.sync("p", expect="failed")
    assert s["error"]["code"] != "source_gone"  # never synced: a bad source, not a gone one
    srv = Server(ps)
    try:
        assert wait_for(lambda: srv.get("/api/v1/projects/p")[2]["state"] == "paused",
                        timeout=20), srv.stderr()
    finally:
        srv.stop()
    p = ps.json("project", "resume", "p")
    assert p["state"] == "active" and p["failures_in_row"] == 0 and p["every"] == "auto"
    assert p["max_failures"] == 1
    r = ps("project", "resume", "nope")
    assert r.rc == 3 and one_error_line(r.err)


def test_schedule_and_retention_settings(ps, make_repo):
    repo = make_repo()
    repo.write("a.txt", "one\n")
    repo.commit("one")
    ps.add("p", str(repo.path))
    p = ps.project("p")
    assert p["every"] == "off" and p["next_sync_at"] is None and p["keep_syncs"] is None
    p = ps.json("project", "set", "p", "--every", "auto", "--auto-min", "2m", "--auto-max", "1h",
                "--keep-syncs", "5", "--keep-days", "30", "--max-failures", "3")
    assert p["every"] == "auto" and p["interval_seconds"] == 120
    assert p["auto_min_seconds"] == 120 and p["auto_max_seconds"] == 3600
    assert p["keep_syncs"] == 5 and p["keep_days"] == 30 and p["max_failures"] == 3
    assert p["next_sync_at"] is not None
    p = ps.json("project", "set", "p", "--every", "off", "--keep-syncs", "0")
    assert p["every"] == "off" and p["next_sync_at"] is None and p["keep_syncs"] is None
    assert p["keep_days"] == 30
    for bad in (["--every", "5s"], ["--every", "soon"], ["--keep-syncs", "-1"],
                ["--keep-days", "x"], ["--auto-min", "1h", "--auto-max", "1m", "--every", "auto"],
                ["--max-failures", "2.5"]):
        r = ps("project", "set", "p", *bad)
        assert r.rc == 2 and one_error_line(r.err), r
    assert ps.project("p")["every"] == "off"
    r = ps("project", "add", "q", str(repo.path), "--every", "9s")
    assert r.rc == 2 and "10s" in r.err
    assert [x["name"] for x in ps.json("project", "list")] == ["p"]
    r = ps("serve", "--max-failures", "0")
    assert r.rc == 2 and one_error_line(r.err)


def _due_now(ps):
    """Makes the project due at once, as the passing of its interval would (the store decides
    who is due; the scheduler reads it every second), so the test need not wait 10 s a check."""
    sql = "UPDATE projects SET next_sync_at = 1 WHERE name = 'p'"
    if ps.backend == "pg":
        psql(str(ps.db), sql)
    else:
        con = sqlite3.connect(str(ps.db), timeout=30)
        try:
            con.execute(sql)
            con.commit()
        finally:
            con.close()


def _next_check(ps, srv):
    """Makes the project due and waits until a new check ended; returns the syncs (API)."""
    before = srv.get("/api/v1/projects/p")[2]["last_check_at"]
    _due_now(ps)
    assert wait_for(lambda: srv.get("/api/v1/projects/p")[2]["last_check_at"] != before
                    and not [s for s in srv.get("/api/v1/projects/p/syncs")[2]
                             if s["status"] in ("queued", "running")], timeout=30), srv.stderr()
    return srv.get("/api/v1/projects/p/syncs")[2]


def test_unchanged_checks_are_one_history_row(ps, make_repo):
    """Issue 11's benchmark goal: the store grows with the changes, not with the checks. A run
    of up-to-date scheduled checks is one row counting them; a commit makes a new row."""
    repo = make_repo()
    repo.write("a.txt", "one\n")
    first_head = repo.commit("one")
    ps.add("p", str(repo.path), "--every", "10s")
    srv = Server(ps)
    try:
        # Never checked: due at once; the first sync brings the snapshot.
        assert wait_for(lambda: [s for s in srv.get("/api/v1/projects/p/syncs")[2]
                                 if s["status"] == "succeeded"], timeout=30), srv.stderr()
        for n in range(1, 5):
            syncs = _next_check(ps, srv)
            assert len(syncs) == 2, syncs
            top = syncs[0]
            assert top["up_to_date"] and top["trigger"] == "schedule"
            assert top["checks"] == n and top["commit"] == first_head
            assert top["previous_sync_id"] == syncs[1]["id"]
            assert top["first_checked_at"] <= top["finished_at"]
        # The folded row's own stream is whole, and the rows it replaced are gone with theirs.
        # A check answered from the ref alone is queued, then succeeded: no phase events
        # (each would be one more write per check, deleted by the next fold).
        events = stream(srv, top["id"])
        last = check_stream(events)
        assert last[1] == "succeeded" and last[2]["summary"]["checks"] == 4
        assert [e[1] for e in events] == ["queued", "succeeded"], events
        assert last[2]["summary"]["up_to_date"]
        # Its log: one record at its start, one at its end; none for its queueing.
        recs = [line for line in srv.stderr().splitlines() if f"sync_id={top['id']} " in line
                or f"sync {top['id']} " in line]
        assert [r.split('msg="')[1].split('"')[0] for r in recs] == \
            ["sync started", "sync succeeded"], recs
        assert all("trigger=schedule" in r for r in recs), recs
        st, _, _ = srv.get(f"/api/v1/syncs/{top['id'] - 1}")
        assert st == 404
        # A commit: a new row with the change; the checks after it start a new run.
        repo.write("b.txt", "two\n")
        head = repo.commit("two")
        syncs = _next_check(ps, srv)
        assert len(syncs) == 3 and syncs[0]["commit"] == head
        assert syncs[0]["counts"]["added"] == 1 and not syncs[0]["up_to_date"]
        assert syncs[0]["checks"] == 1 and syncs[1]["checks"] == 4
        # A check that found a change shows its phases, as any sync does.
        events = stream(srv, syncs[0]["id"])
        check_stream(events)
        phases = [e[2]["phase"] for e in events if e[1] == "phase"]
        assert phases[:2] == ["prepare", "scan"] and phases[-1] == "finalize", events
        syncs = _next_check(ps, srv)
        assert len(syncs) == 4 and syncs[0]["checks"] == 1  # after a change: its own row
        syncs = _next_check(ps, srv)
        assert len(syncs) == 4 and syncs[0]["checks"] == 2
        # A manual sync is never folded: it counts as the latest check, in a row of its own.
        st, _, manual = srv.post("/api/v1/projects/p/sync")
        assert st == 202, manual
        wait_status(srv, manual["id"], ("succeeded",))
        syncs = srv.get("/api/v1/projects/p/syncs")[2]
        assert len(syncs) == 5 and syncs[0]["id"] == manual["id"] and syncs[0]["checks"] == 1
    finally:
        srv.stop()
    hist = ps.history("p")
    assert [s["checks"] for s in hist] == [1, 2, 1, 4, 1]
    # Each row names the one before it: the chain survived the folds.
    assert [s["previous_sync_id"] for s in hist[:-1]] == [s["id"] for s in hist[1:]]
    out = ps.ok("history", "p").out
    assert "up to date, checked 4 times" in out and "up to date, checked 2 times" in out
    assert ps.ok("cat", "p", "b.txt").out == "two\n"
