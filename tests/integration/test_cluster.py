"""
Several `projsync serve` nodes on one PostgreSQL database (README, "Several nodes"): a node that
dies mid-sync has its sync taken over by another node under the same id, watchers on any node
see one contiguous event stream with the final event, and two nodes starting the same project at
once give one 202 and one 409. PostgreSQL only: SQLite is one machine's store.
"""
import threading
import time

import pytest

from conftest import wait_for
from server_util import Server, check_stream, read_sse, open_sse


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
