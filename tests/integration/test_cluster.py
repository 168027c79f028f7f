"""
Several `projsync serve` nodes on one PostgreSQL database (README, "Several nodes"): a node that
dies mid-sync has its sync taken over by another node under the same id, watchers on any node
see one contiguous event stream with the final event, and two nodes starting the same project at
once give one 202 and one 409. PostgreSQL only: SQLite is one machine's store.
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import wait_for
from server_util import Server, check_stream, read_sse, open_sse, stream, wait_status
from tcp_relay import Relay


@pytest.fixture
def cluster(tmp_path, pg_database, repo):
    from conftest import Projsync
    ps = Projsync(tmp_path, pg_database())
    for i in range(40):
        repo.write(f"src/f{i:02}.txt", f"file {i}\n" * (i + 1))
    repo.write("README.md", "# cluster\n")
    repo.write(".memory/notes.md", "# Notes\nshared by every node\n")
    c1 = repo.commit("c1")
    ps.ok("project", "add", "demo", str(repo.path))
    nodes = []

    def start(*args, env=None):
        s = Server(ps, "--lease-seconds", "2", *args, env=env)
        nodes.append(s)
        return s
    yield ps, repo, c1, start
    for s in nodes:
        if s.proc.poll() is None:
            s.stop()


def test_dead_node_sync_taken_over_under_same_id(cluster):
    ps, repo, c1, start = cluster
    # Node A runs slowly in small batches and SIGKILLs itself at its second fetch step
    # (PROJSYNC_TEST_KILL_AT, the crash tests' hook): a node dying mid-fetch.
    a = start(env={"PROJSYNC_TEST_KILL_AT": "fetch:2", "PROJSYNC_TEST_STEP_DELAY_MS": "150",
                   "PROJSYNC_TEST_BATCH": "4"})
    st, _, sync = a.post("/api/v1/projects/demo/sync")
    assert st == 202, sync
    sid = sync["id"]
    # A claims it (poked at once; the others are not running yet).
    assert wait_for(lambda: a.get(f"/api/v1/syncs/{sid}")[2]["status"] == "running", 30)
    b = start()
    c = start()
    conn, resp = open_sse(c, sid, timeout=120)
    assert resp.status == 200
    got = []
    reader = threading.Thread(target=lambda: got.extend(read_sse(resp)), daemon=True)
    reader.start()

    a.proc.wait(timeout=60)             # killed by its own hook mid-fetch
    assert a.proc.returncode == -9, a.stderr()
    t_dead = time.monotonic()
    reader.join(timeout=120)
    conn.close()
    final = check_stream(got)           # contiguous seq from 1, one final event, last
    assert final[1] == "succeeded", got
    assert final[2]["summary"]["id"] == sid
    assert time.monotonic() - t_dead < 2 + 10 + 30, "taken over too late"
    warnings = [e for e in got if e[1] == "warning" and "taken over" in e[2]["message"]]
    assert len(warnings) == 1, got
    # The snapshot is the commit's, whichever node finished it.
    st, _, files = b.get("/api/v1/projects/demo/files")
    assert st == 200, files
    want = {(e["path"], e["sha"]) for e in repo.ls_tree(c1)}
    assert {(f["path"], f["sha"]) for f in files} == want
    st, _, s = c.get(f"/api/v1/syncs/{sid}")
    assert s["status"] == "succeeded" and s["commit"] == c1
    # Memory came through the taken-over sync too.
    st, _, mem = b.get("/api/v1/projects/demo/memory?q=shared")
    assert st == 200 and len(mem) == 1, mem
    a.stop(expect_rc=None)


def test_racing_starts_on_two_nodes(cluster):
    ps, repo, c1, start = cluster
    slow = {"PROJSYNC_TEST_STEP_DELAY_MS": "100"}
    b, c = start(env=slow), start(env=slow)
    results = []
    barrier = threading.Barrier(2)

    def go(node):
        conn = node.conn()
        barrier.wait()
        results.append(node.post("/api/v1/projects/demo/sync", conn=conn))
        conn.close()
    ts = [threading.Thread(target=go, args=(n,)) for n in (b, c)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(r[0] for r in results) == [202, 409], results
    winner = next(r[2] for r in results if r[0] == 202)
    loser = next(r[2] for r in results if r[0] == 409)
    assert loser["error"]["code"] == "sync_running"
    conn, resp = open_sse(c, winner["id"], timeout=120)
    events = read_sse(resp)
    conn.close()
    assert check_stream(events)[1] == "succeeded"


def test_cli_sync_against_pg_streams_to_a_node(cluster):
    ps, repo, c1, start = cluster
    b = start()
    s = ps.sync("demo")
    assert s["commit"] == c1
    st, _, got = b.get(f"/api/v1/syncs/{s['id']}")
    assert st == 200 and got["status"] == "succeeded"


def sse_timed(resp):
    """Like read_sse, with the time each event arrived: [(seq, kind, data, monotonic)]."""
    events, cur = [], {}
    while True:
        line = resp.readline()
        if not line:
            return events
        line = line.decode().rstrip("\n")
        if line == "":
            if "data" in cur:
                events.append((int(cur["id"]), cur.get("event"), json.loads(cur["data"]),
                               time.monotonic()))
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            cur[k] = v[1:] if v.startswith(" ") else v


def test_sse_across_nodes_is_notified_not_polled(cluster):
    # A CLI sync (another process) stores events; a watcher on node B, whose safety poll is
    # 20 s, must get each one as it is stored: LISTEN/NOTIFY, not the poll.
    ps, repo, c1, start = cluster
    b = start("--poll-ms", "20000")
    env = {"PROJSYNC_TEST_STEP_DELAY_MS": "200", "PROJSYNC_TEST_BATCH": "4"}
    cli = ps.popen("sync", "demo", "--json", env=env)
    sid = None
    deadline = time.monotonic() + 60
    while sid is None and time.monotonic() < deadline:
        st, _, hist = b.get("/api/v1/projects/demo/syncs")
        if st == 200 and hist:
            sid = hist[0]["id"]
        time.sleep(0.05)
    assert sid, "the CLI sync never appeared"
    conn, resp = open_sse(b, sid, timeout=120)
    t_open = time.monotonic()
    got = sse_timed(resp)
    conn.close()
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    check_stream([e[:3] for e in got])
    # Events stored after the watcher joined: each arrives a steady time after the run stored
    # it (elapsed_ms is the run's clock), never held back until a poll.
    live = [e for e in got if e[3] > t_open + 0.5]
    assert len(live) >= 5, got
    lag = [e[3] - e[2]["elapsed_ms"] / 1000 for e in live]
    assert max(lag) - min(lag) < 1.0, [(e[0], e[1], round(l, 3)) for e, l in zip(live, lag)]


def test_stalled_node_is_fenced_after_takeover(cluster):
    # Node A (playing another host, so only its lease speaks for it) stalls mid-fetch without
    # dying (SIGSTOP). Node B takes the sync over under the same id and finishes it; when A
    # wakes up its run is refused at its next write and stops without writing anything.
    ps, repo, c1, start = cluster
    a = start(env={"PROJSYNC_TEST_HOST": "host-a", "PROJSYNC_TEST_STEP_DELAY_MS": "300",
                   "PROJSYNC_TEST_BATCH": "4"})
    st, _, sync = a.post("/api/v1/projects/demo/sync")
    assert st == 202, sync
    sid = sync["id"]
    assert wait_for(lambda: a.get(f"/api/v1/syncs/{sid}")[2]["phase"] == "fetch", 60)
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        b = start()
        final = wait_status(b, sid, ("succeeded", "failed", "cancelled"), timeout=60)
        assert final["status"] == "succeeded", final
        n_events = len(stream(b, sid))
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    # A's stale run meets the fence and says so; A itself goes on.
    assert wait_for(lambda: "was taken over by node" in a.stderr(), 30), a.stderr()
    time.sleep(0.5)
    assert a.proc.poll() is None
    events = stream(b, sid)
    assert len(events) == n_events       # A wrote no event after the takeover
    assert check_stream(events)[1] == "succeeded"
    warnings = [e for e in events if e[1] == "warning" and "taken over" in e[2]["message"]]
    assert len(warnings) == 1 and "host-a" in warnings[0][2]["message"], warnings
    st, _, files = b.get("/api/v1/projects/demo/files")
    assert {(f["path"], f["sha"]) for f in files} == {(e["path"], e["sha"])
                                                      for e in repo.ls_tree(c1)}
    # A still runs syncs.
    repo.write("src/new.txt", "new\n")
    c2 = repo.commit("c2")
    st, _, s2 = a.post("/api/v1/projects/demo/sync")
    assert st == 202, s2
    assert wait_status(a, s2["id"], ("succeeded", "failed"), timeout=60)["commit"] == c2


def test_killed_cli_sync_is_taken_over_by_a_live_node(cluster):
    ps, repo, c1, start = cluster
    b = start()
    r = ps("sync", "demo", "--json", env={"PROJSYNC_TEST_KILL_AT": "fetch:2",
                                          "PROJSYNC_TEST_BATCH": "4"})
    assert r.rc == -9, r
    sid = json.loads(r.out.splitlines()[0])["sync_id"]
    # A reap by the CLI while a node lives leaves the sync to the node: never `interrupted`.
    ps.ok("status", "demo")
    final = wait_status(b, sid, ("succeeded", "failed", "cancelled"), timeout=60)
    assert final["status"] == "succeeded" and final["commit"] == c1, final
    events = stream(b, sid)
    check_stream(events)
    assert any(e[1] == "warning" and "taken over" in e[2]["message"] for e in events)


def test_killed_cli_sync_without_nodes_is_interrupted(cluster):
    ps, repo, c1, start = cluster
    r = ps("sync", "demo", "--json", env={"PROJSYNC_TEST_KILL_AT": "fetch:2",
                                          "PROJSYNC_TEST_BATCH": "4"})
    assert r.rc == -9, r
    st = ps.json("status", "demo")
    assert st["running"] is None and st["last_sync"]["error"]["code"] == "interrupted", st
    ps.sync("demo")


class PgRelay(Relay):
    """A loopback TCP relay to the test server's PostgreSQL, on a port bound here (port 0) and
    held for the test: the node under test reaches the database through it, so a restart
    that has to move the server to another port (its own was taken while it was down) does
    not cut the node off for good (pg_restart sets `up`). A client that connects while the
    database is down sees its connection fail; one whose database went down is cut both ways."""

    def __init__(self, port):
        super().__init__(port, backlog=128, cut_both=True)

    def url(self, url):
        return re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{self.port}/", url)


def pg_restart(relay):
    """Stops the test server and starts it again, on its port when that is still free; when the
    log says another process took it meanwhile, on a new port of the kernel's choosing (tried
    again while the log says the same), which `relay` and this run's PostgreSQL URL follow."""
    import conftest
    data, bindir = os.environ["PROJSYNC_TEST_PG_DATA"], os.environ["PROJSYNC_TEST_PG_BINDIR"]
    user = os.environ.get("PROJSYNC_TEST_PG_USER")
    as_user = ["runuser", "-u", user, "--"] if user else []
    # The options with-pg started it with (postmaster.opts: the postgres command line), but
    # the data folder, which pg_ctl gives, and the port, which may change.
    with open(os.path.join(data, "postmaster.opts")) as f:
        words = shlex.split(f.read())[1:]
    opts, port, i = [], None, 0
    while i < len(words):
        if words[i] in ("-D", "-p"):
            if words[i] == "-p":
                port = int(words[i + 1])
            i += 2
            continue
        opts.append(words[i])
        i += 1
    subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", data, "-w", "-t", "60", "-m", "fast",
                              "stop"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=90)
    for _ in range(5):
        # -l: a log of its own for each start, which holds no pipe of ours open.
        log = os.path.join(os.path.dirname(data), f"restart-{port}-{time.monotonic_ns()}.log")
        r = subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t",
                                      "60", "start", "-o", shlex.join(opts + ["-p", str(port)])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, timeout=90)
        if r.returncode == 0:
            break
        with open(log, errors="replace") as f:
            text = f.read()
        if "Address already in use" not in text:
            raise AssertionError(f"PostgreSQL did not start again:\n{text}")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    else:
        raise AssertionError("PostgreSQL found no free port to start again on")
    relay.up = port
    url = re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{port}/", conftest.PG_URL)
    conftest.PG_URL = os.environ["PROJSYNC_TEST_PG_URL"] = url


@pytest.mark.serial
def test_database_restart_under_a_running_node(cluster):
    if not os.environ.get("PROJSYNC_TEST_PG_DATA"):
        pytest.skip("needs the private server of tests/pg/with-pg (PROJSYNC_TEST_PG_DATA)")
    ps, repo, c1, start = cluster
    relay = PgRelay(int(re.search(r"@127\.0\.0\.1:(\d+)/", ps.db).group(1)))
    ps.db = relay.url(ps.db)
    a = start(env={"PROJSYNC_TEST_STEP_DELAY_MS": "300", "PROJSYNC_TEST_BATCH": "4"})
    st, _, sync = a.post("/api/v1/projects/demo/sync")
    assert st == 202, sync
    sid = sync["id"]
    conn, resp = open_sse(a, sid, timeout=120)
    got = []
    reader = threading.Thread(target=lambda: got.extend(read_sse(resp)), daemon=True)
    reader.start()
    assert wait_for(lambda: a.get(f"/api/v1/syncs/{sid}")[2]["phase"] == "fetch", 60)
    pg_restart(relay)
    # The node stays up, and the sync ends: carried on, or failed with a reason.
    final = wait_status(a, sid, ("succeeded", "failed", "cancelled"), timeout=90)
    assert a.proc.poll() is None, a.stderr()
    if final["status"] != "succeeded":
        assert final["status"] == "failed" and final["error"]["message"], final
    reader.join(timeout=60)
    conn.close()
    assert got and got[-1][1] == final["status"], got
    # The next sync succeeds, and its watcher (fed by the re-established LISTEN) sees it end.
    repo.write("src/after.txt", "after the restart\n")
    c2 = repo.commit("c2")
    st, _, s2 = a.post("/api/v1/projects/demo/sync")
    assert st == 202, s2
    assert check_stream(stream(a, s2["id"], timeout=90))[1] == "succeeded"
    st, _, s2 = a.get(f"/api/v1/syncs/{s2['id']}")
    assert s2["status"] == "succeeded" and s2["commit"] == c2, s2
