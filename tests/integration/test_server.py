"""
`projsync serve` over real HTTP (docs/api.md): every endpoint with its error statuses, the
sync queue and its chain rule (two racing starts: one 202, one 409), cancel, the SSE stream
(order without gaps, Last-Event-ID resume, 200 concurrent watchers, syncs run by the CLI in
another process), SIGKILL and restart, SIGTERM, auth, the GitHub webhook and the OpenAPI
document. The server is the real binary on a free port with the test's temporary store.
"""
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import (BIN, Projsync, git, one_error_line, parse_events, sorted_by_path,
                      wait_for)
from git_daemon import GitDaemon
from server_util import (FINAL, Server, check_stream, open_sse, read_sse, stream,
                         wait_status)
from tcp_relay import Listener

SLOW = {"PROJSYNC_TEST_STEP_DELAY_MS": "150", "PROJSYNC_TEST_BATCH": "2"}


@pytest.fixture
def served(ps, repo):
    """A repository with a few files, a project `demo` on it, and a server factory."""
    for i in range(6):
        repo.write(f"src/f{i}.txt", f"file {i}\n")
    repo.write("README.md", "# demo\n")
    repo.commit("c1")
    servers = []

    def start(*args, env=None, add=True, **kw):
        s = Server(ps, *args, env=env, **kw)
        servers.append(s)
        if add and not getattr(start, "added", False):
            st, _, p = s.post("/api/v1/projects", {"name": "demo", "source": str(repo.path)})
            assert st == 201, p
            start.added = True
        return s

    yield start
    for s in servers:
        if s.proc.poll() is None:
            s.stop()


def start_sync(server, name="demo", body=None):
    st, h, s = server.post(f"/api/v1/projects/{name}/sync", body)
    assert st == 202, s
    assert h["location"] == f"/api/v1/syncs/{s['id']}"
    assert s["status"] == "queued" and s["trigger"] == "api"
    return s


# ------------------------------------------------------------------------------------------
# projects


def test_projects_crud_and_errors(served, repo, tmp_path):
    srv = served(add=False)
    st, h, p = srv.post("/api/v1/projects", {"name": "demo", "source": str(repo.path),
                                             "branch": "main"})
    assert st == 201, p
    assert h["location"] == "/api/v1/projects/demo"
    assert p["name"] == "demo" and p["source"] == str(repo.path) and p["branch"] == "main"

    st, _, e = srv.post("/api/v1/projects", {"name": "demo", "source": str(repo.path)})
    assert st == 409 and e["error"]["code"] and e["error"]["message"]

    bad = [
        ("{not json", 400), ("[1,2]", 400), ("", 400),
        ({"name": "x"}, 400), ({"source": str(repo.path)}, 400),
        ({"name": "-bad", "source": str(repo.path)}, 400),
        ({"name": "a/b", "source": str(repo.path)}, 400),
        ({"name": "x", "source": 5}, 400),
        ({"name": "x", "source": str(repo.path), "colour": "red"}, 400),
        ({"name": "x", "source": str(repo.path), "max_blob_size": -1}, 400),
        ({"name": "x", "source": "relative/path"}, 422),
        ({"name": "x", "source": str(tmp_path / "nothing-here")}, 422),
        ({"name": "x", "source": str(tmp_path)}, 422),  # a directory, not a repository
    ]
    for body, want in bad:
        st, _, e = srv.post("/api/v1/projects", body if not isinstance(body, str) else body,
                            headers={"Content-Type": "application/json"})
        assert st == want, (body, st, e)
        assert set(e["error"]) == {"code", "message"}, e
    # Nothing of the refused ones was stored.
    st, _, lst = srv.get("/api/v1/projects")
    assert st == 200 and [p["name"] for p in lst] == ["demo"]

    st, _, p = srv.get("/api/v1/projects/demo")
    assert st == 200 and p["name"] == "demo"
    st, _, e = srv.get("/api/v1/projects/nope")
    assert st == 404 and e["error"]["code"] == "project_not_found"

    st, _, b = srv.get("/api/v1/projects/demo/branches")
    assert st == 200 and b == [{"name": "main", "default": True, "selected": True}]
    st, _, _ = srv.get("/api/v1/projects/nope/branches")
    assert st == 404

    st, _, body = srv.request("DELETE", "/api/v1/projects/demo")
    assert st == 204 and body == b""
    st, _, _ = srv.request("DELETE", "/api/v1/projects/demo")
    assert st == 404
    st, _, lst = srv.get("/api/v1/projects")
    assert lst == []


def test_limits_unknown_routes_and_methods(served):
    srv = served(add=False)
    # A declared body over 1 MiB is refused from its headers; sending the body as well would
    # race with the server closing the connection (a broken pipe on the client's side).
    c = srv.conn()
    c.putrequest("POST", "/api/v1/projects")
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(1024 * 1024 + 10))
    c.endheaders()
    r = c.getresponse()
    assert r.status == 413 and json.loads(r.read())["error"]["code"] == "body_too_large"
    c.close()
    deep = "[" * 100 + "]" * 100
    st, _, e = srv.post("/api/v1/projects", '{"name": ' + deep + "}",
                        headers={"Content-Type": "application/json"})
    assert st == 400 and "deep" in e["error"]["message"]

    st, _, e = srv.get("/api/v1/nothing")
    assert st == 404 and e["error"]["code"] == "not_found"
    st, h, e = srv.request("PUT", "/api/v1/projects")
    assert st == 405 and "GET" in h["allow"] and "POST" in h["allow"]
    for path in ("/api/v1/syncs/abc", "/api/v1/syncs/0", "/api/v1/syncs/-1"):
        st, _, e = srv.get(path)
        assert st == 400, path
    st, _, e = srv.get("/api/v1/syncs/999")
    assert st == 404
    st, _, e = srv.post("/api/v1/syncs/999/cancel")
    assert st == 404
    st, _, e = srv.get("/api/v1/events/project-sync/999")
    assert st == 404


def test_keep_alive(served):
    srv = served(add=False)
    c = srv.conn()
    for _ in range(3):
        st, h, _ = srv.get("/healthz", conn=c)
        assert st == 200
        assert h.get("connection", "").lower() != "close"
    c.close()


@pytest.mark.sqlite_only
def test_store_locked_past_busy_timeout_is_503_with_retry_after(served, ps):
    """Another writer holding the store's lock longer than the busy timeout (10 s) is
    congestion, not a fault: 503 store_busy with Retry-After, nothing half-written, and the
    same request succeeds once the lock is gone."""
    import sqlite3
    srv = served()
    st, _, before = srv.get("/api/v1/projects/demo/syncs")
    assert st == 200
    lock = sqlite3.connect(str(ps.db), timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        t0 = time.monotonic()
        st, h, e = srv.post("/api/v1/projects/demo/sync")
        waited = time.monotonic() - t0
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert st == 503, e
    assert e["error"]["code"] == "store_busy" and "busy" in e["error"]["message"]
    assert h["retry-after"] == "1"
    assert waited >= 9, waited  # the busy timeout was waited out, not given up at once
    assert srv.get("/api/v1/projects/demo/syncs")[2] == before
    s = start_sync(srv)
    assert check_stream(stream(srv, s["id"]))[1] == "succeeded"


# ------------------------------------------------------------------------------------------
# syncs, snapshots


def test_sync_flow_and_queries(served, repo):
    srv = served()
    st, _, status = srv.get("/api/v1/projects/demo/sync")
    assert st == 200 and status["running"] is None and status["last_succeeded"] is None

    s1 = start_sync(srv)
    # The project follows the default branch: not known until the sync asks the source.
    assert s1["branch"] is None, s1
    final = check_stream(stream(srv, s1["id"]))
    assert final[1] == "succeeded"
    assert final[2]["summary"]["commit"] == repo.head()
    assert final[2]["summary"]["branch"] == "main"
    c1 = repo.head()

    st, _, s = srv.get(f"/api/v1/syncs/{s1['id']}")
    assert st == 200 and s["status"] == "succeeded" and s["counts"]["files"] == 7
    assert s["branch"] == "main"

    st, _, files = srv.get("/api/v1/projects/demo/files")
    assert st == 200 and files == repo.ls_tree("HEAD")
    st, _, files = srv.get("/api/v1/projects/demo/files?prefix=src/")
    assert [f["path"] for f in files] == [f"src/f{i}.txt" for i in range(6)]
    # Paged listing follows Link headers to the same result.
    got, url = [], "/api/v1/projects/demo/files?limit=3"
    while url:
        st, h, page = srv.get(url)
        assert st == 200 and len(page) <= 3
        got += page
        m = re.match(r'<([^>]+)>; rel="next"', h.get("link", ""))
        url = m.group(1) if m else None
    assert got == repo.ls_tree("HEAD")

    st, h, data = srv.get("/api/v1/projects/demo/file?path=src/f3.txt")
    assert st == 200 and data == b"file 3\n"
    assert h["x-projsync-sha"] == hashlib.sha1(b"blob 7\0file 3\n").hexdigest()
    assert h["x-projsync-mode"] == "100644"
    st, _, e = srv.get("/api/v1/projects/demo/file?path=nope.txt")
    assert st == 404
    st, _, e = srv.get("/api/v1/projects/demo/file")
    assert st == 400

    # A second sync with changes; the first snapshot stays readable with ?at.
    repo.write("src/f0.txt", "changed\n")
    repo.rm("README.md")
    repo.write("new.txt", "new\n")
    repo.commit("c2")
    s2 = start_sync(srv)
    assert check_stream(stream(srv, s2["id"]))[1] == "succeeded"
    st, _, ch = srv.get(f"/api/v1/syncs/{s2['id']}/changes")
    assert st == 200
    assert sorted((c["status"], c["path"]) for c in ch) == [
        ("added", "new.txt"), ("deleted", "README.md"), ("modified", "src/f0.txt")]
    st, _, old = srv.get(f"/api/v1/projects/demo/files?at={s1['id']}")
    assert old == repo.ls_tree(c1)
    st, _, data = srv.get(f"/api/v1/projects/demo/file?path=README.md&at={s1['id']}")
    assert st == 200 and data == b"# demo\n"
    st, _, _ = srv.get("/api/v1/projects/demo/file?path=README.md")
    assert st == 404

    # History, newest first, paged with limit/before and a Link header.
    for _ in range(2):
        s = start_sync(srv)
        check_stream(stream(srv, s["id"]))
    st, h, hist = srv.get("/api/v1/projects/demo/syncs")
    assert st == 200 and [x["id"] for x in hist] == sorted([x["id"] for x in hist], reverse=True)
    assert len(hist) == 4 and "link" not in h
    st, h, page = srv.get("/api/v1/projects/demo/syncs?limit=3")
    assert len(page) == 3 and page == hist[:3]
    nxt = re.match(r'<([^>]+)>; rel="next"', h["link"]).group(1)
    st, h, page2 = srv.get(nxt)
    assert page2 == hist[3:] and "link" not in h
    st, _, _ = srv.get("/api/v1/projects/demo/syncs?limit=0")
    assert st == 400

    st, _, status = srv.get("/api/v1/projects/demo/sync")
    assert status["running"] is None and status["last_succeeded"]["id"] == hist[0]["id"]

    # A sync of a branch that does not exist fails, visibly, and changes nothing.
    s = start_sync(srv, body={"branch": "nope"})
    final = check_stream(stream(srv, s["id"]))
    assert final[1] == "failed" and final[2]["message"]
    st, _, e = srv.get(f"/api/v1/syncs/{s['id']}/changes")
    assert st == 409
    st, _, e = srv.get(f"/api/v1/projects/demo/files?at={s['id']}")
    assert st == 409
    st, _, files = srv.get("/api/v1/projects/demo/files")
    assert files == repo.ls_tree("HEAD")
    st, _, e = srv.post("/api/v1/projects/demo/sync", {"branch": 3})
    assert st == 400
    st, _, e = srv.post("/api/v1/projects/demo/sync", {"colour": "red"})
    assert st == 400
    st, _, e = srv.post("/api/v1/projects/nope/sync")
    assert st == 404


def test_files_pages_through_odd_names(ps, make_repo):
    """Paging the file list with every page size from 1 up lists the whole snapshot once, in
    byte order of the paths, through names whose order trips a (directory, name) sort (a-b,
    a.b, a/b, bytes below '/', a name that is not UTF-8); a cursor that is no path starts
    right after it, with or without a prefix (the store seeks to it: ps_store_snapshot_page)."""
    r = make_repo()
    names = ["a0", "a-b", "a.b/c", "a/b-c/d", "a/b.c", "a/b/c", "a b", "a!x",
             "a/b!", "\u00e9/x", "z", os.fsdecode(b"y/bad\xff name"), "y/b"]
    for i, n in enumerate(names):
        r.write(n, f"{i}\n")
    r.commit("odd")
    srv = Server(ps)
    try:
        st, _, p = srv.post("/api/v1/projects", {"name": "odd", "source": str(r.path)})
        assert st == 201, p
        s = start_sync(srv, "odd")
        assert check_stream(stream(srv, s["id"]))[1] == "succeeded"
        st, _, full = srv.get("/api/v1/projects/odd/files")
        assert st == 200 and len(full) == len(names)

        def raw(f):
            return (urllib.parse.unquote_to_bytes(f["path_raw"]) if "path_raw" in f
                    else f["path"].encode())
        assert [raw(f) for f in full] == sorted(os.fsencode(n) for n in names)
        for size in range(1, len(names) + 2):
            got, url, pages = [], f"/api/v1/projects/odd/files?limit={size}", 0
            while url:
                st, h, page = srv.get(url)
                assert st == 200 and len(page) <= size
                got += page
                pages += 1
                m = re.match(r'<([^>]+)>; rel="next"', h.get("link", ""))
                url = m.group(1) if m else None
            assert got == full, size
            assert pages == -(-len(names) // size), size
        for after, prefix in [(b"a-", None), (b"a/", None), (b"a/b", "a/"), (b"a", "a"),
                              (b"y/bad", None), (b"\x01", None), (b"\xff", None),
                              (b"a/b-", "a/b")]:
            q = f"limit=3&after={urllib.parse.quote(after)}"
            if prefix:
                q += f"&prefix={urllib.parse.quote(prefix)}"
            st, _, page = srv.get(f"/api/v1/projects/odd/files?{q}")
            want = [f for f in full if raw(f) > after and
                    (not prefix or raw(f).startswith(prefix.encode()))][:3]
            assert st == 200 and page == want, (after, prefix)
    finally:
        srv.stop()


def test_racing_starts_one_wins(served):
    srv = served(env=SLOW)
    results = []
    barrier = threading.Barrier(2)

    def go():
        c = srv.conn()
        barrier.wait()
        results.append(srv.post("/api/v1/projects/demo/sync", conn=c))
        c.close()

    ts = [threading.Thread(target=go) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    statuses = sorted(r[0] for r in results)
    assert statuses == [202, 409], results
    winner = next(r[2] for r in results if r[0] == 202)
    loser = next(r[2] for r in results if r[0] == 409)
    assert loser["error"]["code"] == "sync_running"
    # And while it runs, a third start is refused too.
    st, _, _ = srv.post("/api/v1/projects/demo/sync")
    assert st == 409
    check_stream(stream(srv, winner["id"]))


def add_other_project(srv, make_repo):
    """A second project, "other", with one commit, for a sync that must wait in the queue."""
    other = make_repo("other")
    other.write("a.txt", "a\n")
    other.commit("o1")
    st, _, _ = srv.post("/api/v1/projects", {"name": "other", "source": str(other.path)})
    assert st == 201


def test_a_left_queued_sync_says_how_to_clear_it(served, ps, make_repo):
    # A sync queued while the only worker was busy, then the server stopped: `projsync sync`
    # answered "already queued (sync N)" with no word of what runs or clears it.
    srv = served("--workers", "1", env=SLOW)
    add_other_project(srv, make_repo)
    s = start_sync(srv)
    wait_status(srv, s["id"], ("running",))
    q = start_sync(srv, "other")
    srv.stop()
    r = ps("sync", "other")
    assert r.rc == 4 and one_error_line(r.err), r
    assert f"already queued (sync {q['id']})" in r.err and "projsync serve" in r.err, r
    cmd = re.search(r"'(projsync cancel \d+)'", r.err)
    assert cmd and cmd.group(1) == f"projsync cancel {q['id']}", r
    # What it says works: the queued sync is cleared and the next sync runs.
    ps.ok(*cmd.group(1).split()[1:])
    assert ps("sync", "other").rc == 0


def test_cancel_running_and_queued(served, ps, make_repo):
    srv = served("--workers", "1", env=SLOW)
    add_other_project(srv, make_repo)

    s = start_sync(srv)
    wait_status(srv, s["id"], ("running",))
    # One worker is busy: this one waits in the queue, its branch not known yet (null, not "").
    q = start_sync(srv, "other")
    st, _, body = srv.get(f"/api/v1/syncs/{q['id']}")
    assert st == 200 and body["status"] == "queued" and body["branch"] is None, body
    st, _, hist = srv.get("/api/v1/projects/other/syncs")
    assert st == 200 and hist[0]["id"] == q["id"] and hist[0]["branch"] is None, hist
    r = ps("history", "other")
    assert r.rc == 0 and "(default)" in r.out.splitlines()[1], r
    st, _, body = srv.post(f"/api/v1/syncs/{q['id']}/cancel")
    assert st == 202 and body["status"] == "cancelled"
    final = check_stream(stream(srv, q["id"]))
    assert final[1] == "cancelled"
    # It never ran: history shows no duration for it (its time in the queue was shown as one).
    lines = ps.ok("history", "other").out.splitlines()
    cols = re.split(r"\s{2,}", lines[0].strip())
    row = next(ln for ln in lines[1:] if ln.split()[0] == str(q["id"]))
    assert "cancelled before it started" in row, lines
    took = row[lines[0].index("DURATION"):].split()[0]
    assert "DURATION" in cols and took == "-", lines

    c, r = open_sse(srv, s["id"])
    first = read_sse(r, stop_after=3)
    st, _, body = srv.post(f"/api/v1/syncs/{s['id']}/cancel")
    assert st == 202 and body["status"] in ("running", "cancelled")
    rest = read_sse(r)
    c.close()
    final = check_stream(first + rest)
    assert final[1] == "cancelled"
    assert final[2]["summary"]["status"] == "cancelled"
    st, _, e = srv.post(f"/api/v1/syncs/{s['id']}/cancel")
    assert st == 409
    # Nothing of the cancelled sync is visible; the next one succeeds.
    st, _, e = srv.get("/api/v1/projects/demo/files")
    assert st == 404 and e["error"]["code"] == "no_snapshot"
    s2 = start_sync(srv)
    assert check_stream(stream(srv, s2["id"]))[1] == "succeeded"


# ------------------------------------------------------------------------------------------
# SSE


def test_sse_resume_with_last_event_id(served):
    srv = served(env=SLOW)
    s = start_sync(srv)
    c, r = open_sse(srv, s["id"])
    first = read_sse(r, stop_after=3)
    c.close()  # the connection drops mid-sync
    assert [e[0] for e in first] == [1, 2, 3]
    rest = stream(srv, s["id"], last_event_id=3)
    assert rest[0][0] == 4
    check_stream(first + rest)
    # A finished sync's stream replays everything and ends; from the end it is empty-but-ends
    # only after the final event, so resuming after the last one gives nothing more.
    full = stream(srv, s["id"])
    assert full == first + rest
    assert stream(srv, s["id"], last_event_id=len(full) - 2) == full[-2:]


def test_sse_200_watchers_get_every_event(served):
    srv = served(env=SLOW)
    s = start_sync(srv)
    results = [None] * 200
    errors = []

    def watch(i):
        try:
            results[i] = stream(srv, s["id"], timeout=120)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=watch, args=(i,)) for i in range(200)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=180)
    assert not errors, errors[:3]
    check_stream(results[0])
    assert results[0][-1][1] == "succeeded"
    for r in results:
        assert r == results[0]
    st, _, m = srv.get("/metrics")
    assert b"projsync_sse_watchers 0" in m


def test_cli_sync_in_another_process_streams_live(served, ps):
    srv = served()
    cli = ps.popen("sync", "demo", "--json", env=SLOW)
    running = wait_for(lambda: srv.get("/api/v1/projects/demo/sync")[2]["running"], timeout=30)
    assert running and running["trigger"] == "cli"
    events = stream(srv, running["id"])
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    cli_events = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
    check_stream(events)
    assert [e[2] for e in events] == cli_events


def test_heartbeats(served):
    srv = served(env={"PROJSYNC_TEST_STEP_DELAY_MS": "700"})
    s = start_sync(srv)
    c, r = open_sse(srv, s["id"])
    saw_hb = False
    while True:
        line = r.readline()
        if not line:
            break
        if line.startswith(b": hb"):
            saw_hb = True
    c.close()
    assert saw_hb


# ------------------------------------------------------------------------------------------
# crashes and shutdown


def test_sigkill_mid_sync_then_restart(served, ps, repo):
    srv = served(env={"PROJSYNC_TEST_STEP_DELAY_MS": "400", "PROJSYNC_TEST_BATCH": "1"})
    s = start_sync(srv)
    wait_for(lambda: srv.get(f"/api/v1/syncs/{s['id']}")[2]["phase"] in ("fetch", "import"),
             timeout=60)
    srv.kill()

    srv2 = served(add=False)
    st, _, dead = srv2.get(f"/api/v1/syncs/{s['id']}")
    assert st == 200 and dead["status"] == "failed", dead
    assert dead["error"]["code"] == "interrupted"
    # Its stream ends with the failure, like every stream.
    final = check_stream(stream(srv2, s["id"]))
    assert final[1] == "failed"
    st, _, e = srv2.get("/api/v1/projects/demo/files")
    assert st == 404
    s2 = start_sync(srv2)
    assert check_stream(stream(srv2, s2["id"]))[1] == "succeeded"
    st, _, files = srv2.get("/api/v1/projects/demo/files")
    assert files == repo.ls_tree("HEAD")
    assert ps.ok("status", "demo").rc == 0


def test_sigterm_cancels_running_sync_and_ends_streams(served):
    srv = served(env=SLOW)
    s = start_sync(srv)
    c, r = open_sse(srv, s["id"])
    first = read_sse(r, stop_after=2)
    srv.proc.send_signal(signal.SIGTERM)
    rest = read_sse(r)
    c.close()
    assert srv.stop() == 0
    final = check_stream(first + rest)
    assert final[1] == "cancelled"
    st = Projsync(srv.ps.tmp, srv.ps.db if srv.ps.backend == "pg" else None).json("status", "demo")
    assert st["last_sync"]["status"] == "cancelled" and st["running"] is None


# ------------------------------------------------------------------------------------------
# auth, webhook, operations


def test_token_auth_and_binding(served, ps):
    srv = served(env={"PROJSYNC_API_TOKEN": "s3cret-token"}, add=False)
    st, h, e = srv.get("/api/v1/projects")
    assert st == 401 and e["error"]["code"] == "unauthorized" and h["www-authenticate"] == "Bearer"
    st, _, _ = srv.get("/api/v1/projects", headers={"Authorization": "Bearer wrong"})
    assert st == 401
    st, _, lst = srv.get("/api/v1/projects", headers={"Authorization": "Bearer s3cret-token"})
    assert st == 200 and lst == []
    st, _, _ = srv.get("/healthz")
    assert st == 200
    # Event streams also take the token in the query (a browser's EventSource has no headers),
    # and only event streams do.
    st, _, _ = srv.get("/api/v1/events/project-sync/999?access_token=wrong")
    assert st == 401
    st, _, _ = srv.get("/api/v1/events/project-sync/999?access_token=s3cret-token")
    assert st == 404
    st, _, _ = srv.get("/api/v1/projects?access_token=s3cret-token")
    assert st == 401
    srv.stop()
    assert "s3cret-token" not in srv.stderr()

    r = ps("serve", "--listen", "0.0.0.0:0", timeout=30)
    assert r.rc == 2 and "PROJSYNC_API_TOKEN" in r.err
    # A port in use: projsync's own line alone, not libmicrohttpd's log before it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = ps("serve", "--listen", f"127.0.0.1:{port}", timeout=30)
    assert r.rc == 1 and r.out == ""
    assert r.err == f"projsync: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    srv2 = served(env={"PROJSYNC_API_TOKEN": "tok"}, listen="0.0.0.0:0", add=False)
    st, _, _ = Server.request(srv2, "GET", "/api/v1/projects",
                              headers={"Authorization": "Bearer tok"})
    assert st == 200


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_payload(repo_url, ref="refs/heads/main", full_name="octo/demo"):
    """A push delivery shaped like GitHub's (trimmed to what a receiver reads)."""
    return {
        "ref": ref, "before": "0" * 40, "after": "1" * 40, "created": False, "deleted": False,
        "forced": False, "compare": "https://github.com/octo/demo/compare/abc...def",
        "commits": [{"id": "1" * 40, "message": "c2", "timestamp": "2026-01-01T00:00:00Z",
                     "author": {"name": "A", "email": "a@example.com"},
                     "added": ["new.txt"], "removed": [], "modified": []}],
        "repository": {"id": 1, "name": "demo", "full_name": full_name, "private": False,
                       "html_url": "https://github.com/" + full_name,
                       "clone_url": repo_url, "git_url": "git://github.com/octo/demo.git",
                       "ssh_url": "git@github.com:octo/demo.git", "default_branch": "main"},
        "pusher": {"name": "octo", "email": "octo@example.com"},
        "sender": {"login": "octo", "id": 1},
    }


def test_webhook(served, repo):
    secret = "It's a Secret to Everybody"
    srv = served(env={"PROJSYNC_WEBHOOK_SECRET": secret})

    def deliver(event, body, sig=None, delivery=None):
        headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
        if sig is not False:
            headers["X-Hub-Signature-256"] = sig or sign(secret, body)
        if delivery:
            headers["X-GitHub-Delivery"] = delivery
        return srv.post("/api/v1/webhooks/github", body, headers=headers)

    # GitHub's documented test vector.
    vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(secret, b"Hello, World!") == vector
    st, _, _ = deliver("ping", b"Hello, World!", sig=vector)
    assert st == 200
    st, _, e = deliver("ping", b"Hello, World!", sig=vector.replace("7571", "7572"))
    assert st == 401 and e["error"]["code"] == "bad_signature"
    st, _, e = deliver("ping", b"Hello, World!", sig=False)
    assert st == 401
    st, _, e = deliver("ping", b"Hello, World!", sig="sha1=abc")
    assert st == 401

    body = json.dumps(push_payload("file://" + str(repo.path) + ".git")).encode()
    # Tampered body, good signature of the original: refused.
    st, _, _ = deliver("push", body + b" ", sig=sign(secret, body), delivery="d-0")
    assert st == 401
    st, _, r = deliver("push", body, delivery="d-1")
    assert st == 202 and len(r["queued"]) == 1, r
    sync = r["queued"][0]
    assert sync["trigger"] == "webhook" and sync["project"] == "demo"
    st, _, r = deliver("push", body, delivery="d-1")  # redelivery
    assert st == 200 and r["duplicate"] is True and r["queued"] == []
    assert check_stream(stream(srv, sync["id"]))[1] == "succeeded"
    st, _, hist = srv.get("/api/v1/projects/demo/syncs")
    assert [h["trigger"] for h in hist] == ["webhook"]

    for other, why in ((push_payload("file://" + str(repo.path), ref="refs/heads/dev"), "branch"),
                       (push_payload("https://example.com/else.git"), "repository"),
                       (push_payload(str(repo.path), ref="refs/tags/v1"), "tag")):
        st, _, r = deliver("push", json.dumps(other).encode(), delivery="d-" + why)
        assert st == 202 and r["ignored"] is True, (why, r)
    st, _, r = deliver("issues", b'{"action": "opened"}', delivery="d-issue")
    assert st == 202 and r["ignored"] is True
    st, _, e = deliver("push", b"{nope", delivery="d-bad")
    assert st == 400
    st, _, hist = srv.get("/api/v1/projects/demo/syncs")
    assert len(hist) == 1


def test_webhook_disabled_without_secret(served):
    srv = served(add=False)
    body = b"Hello, World!"
    st, _, e = srv.post("/api/v1/webhooks/github", body, headers={
        "X-GitHub-Event": "ping", "X-Hub-Signature-256": sign("x", body)})
    assert st == 403 and e["error"]["code"] == "webhook_disabled"


def test_openapi_covers_every_route(served, ps):
    r = ps.ok("serve", "--routes")
    routes = [tuple(line.split(" ", 1)) for line in r.out.splitlines()]
    assert ("GET", "/api/v1/projects") in routes and len(routes) >= 15
    srv = served(add=False)
    st, _, doc = srv.get("/openapi.json")
    assert st == 200 and doc["openapi"].startswith("3.")
    for method, path in routes:
        assert path in doc["paths"], path
        assert method.lower() in doc["paths"][path], (method, path)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops
                  if m in ("get", "post", "put", "delete", "patch")}
    assert documented == set(routes)


def test_healthz_and_metrics(served):
    srv = served()
    s = start_sync(srv)
    check_stream(stream(srv, s["id"]))
    srv.get("/api/v1/projects/nope")
    st, _, h = srv.get("/healthz")
    assert st == 200 and h["status"] == "ok"
    # The worker counts a sync's duration just after storing its final event, so a client that
    # has read that event may ask /metrics a moment before the count lands: wait for it briefly.
    deadline = time.monotonic() + 5
    while True:
        st, hdr, m = srv.get("/metrics")
        text = m.decode()
        if "projsync_sync_duration_seconds_count 1" in text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert st == 200 and hdr["content-type"].startswith("text/plain")
    assert 'projsync_syncs{status="succeeded"} 1' in text
    assert "projsync_sync_duration_seconds_count 1" in text
    assert 'projsync_syncs_finished_total{status="succeeded"} 1' in text
    assert ('projsync_http_requests_total{route="/api/v1/projects/{name}",method="GET",'
            'status="404"} 1') in text
    assert 'route="/api/v1/projects/{name}/sync",method="POST",status="202"} 1' in text
    # Every sample line is `name{labels} value` or `name value`.
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r'^[a-z_]+(\{.*\})? [0-9.e+-]+$', line), line


def test_metrics_count_each_answer_under_the_route_it_came_to(served):
    """A 405 is a known route asked with the wrong method, the page is the page, a 421 asked
    for a route with the wrong Host: none is 'unmatched', which is left to requests no route
    took or refused on their request line."""
    srv = served(add=False)
    assert srv.request("PUT", "/api/v1/projects")[0] == 405
    assert srv.request("BREW", "/api/v1/projects")[0] == 405
    assert srv.get("/")[0] == 200
    assert srv.get("/api/v1/nothing")[0] == 404
    # A wrong Host is refused after a sound request line: it counts under the route it asked
    # for (it counted as "unmatched", mixed with 404s), or the page's; an unknown path stays
    # unmatched.
    assert srv.get("/api/v1/projects", headers={"Host": "evil.example"})[0] == 421
    assert srv.request("DELETE", "/api/v1/projects/p", headers={"Host": "evil.example"})[0] == 421
    assert srv.get("/projects/p", headers={"Host": "evil.example"})[0] == 421
    assert srv.get("/api/v1/nothing", headers={"Host": "evil.example"})[0] == 421
    st, _, _ = srv.post("/api/v1/projects", "x" * 10,
                        headers={"Content-Type": "application/json",
                                 "Content-Length": str(1 << 30)})
    assert st == 413
    st, _, m = srv.get("/metrics")
    assert st == 200
    counts = {}
    for line in m.decode().splitlines():
        g = re.match(r'^projsync_http_requests_total\{route="([^"]*)",method="([^"]*)",'
                     r'status="(\d+)"\} (\d+)$', line)
        if g:
            counts[g.group(1, 2, 3)] = int(g.group(4))
    assert counts.get(("/api/v1/projects", "PUT", "405")) == 1, counts
    # Any other method token is one label, so a client cannot add series at will.
    assert counts.get(("/api/v1/projects", "other", "405")) == 1, counts
    assert counts.get(("web", "GET", "200")) == 1, counts
    assert counts.get(("unmatched", "GET", "404")) == 1, counts
    assert counts.get(("/api/v1/projects", "GET", "421")) == 1, counts
    assert counts.get(("/api/v1/projects/{name}", "DELETE", "421")) == 1, counts
    assert counts.get(("web", "GET", "421")) == 1, counts
    assert counts.get(("unmatched", "GET", "421")) == 1, counts
    assert counts.get(("/api/v1/projects", "POST", "413")) == 1, counts
    assert all(meth for (_, meth, _) in counts), counts


def test_cli_sync_with_server_flag(served, ps, repo):
    srv = served(env=SLOW)
    r = ps("sync", "demo", "--json", "--server", srv.base + "/")
    events = parse_events(r)
    assert r.rc == 0, r
    assert events[0]["kind"] == "queued" and events[-1]["kind"] == "succeeded"
    assert events[-1]["summary"]["trigger"] == "api"
    assert events[-1]["summary"]["commit"] == repo.head()
    # Lines mode through PROJSYNC_SERVER: the same summary line a local sync prints.
    r = ps("sync", "demo", env={"PROJSYNC_SERVER": srv.base})
    assert r.rc == 0 and "demo is up to date" in r.out, r
    r = ps("sync", "nope", "--server", srv.base)
    assert r.rc == 3 and "not found" in r.err, r
    s = start_sync(srv)
    r = ps("sync", "demo", "--server", srv.base)
    assert r.rc == 4, r
    check_stream(stream(srv, s["id"]))
    srv.stop()
    r = ps("sync", "demo", "--server", srv.base)
    assert r.rc == 1 and "cannot reach" in r.err, r


# ------------------------------------------------------------------------------------------
# slow remotes: every network wait of a source is bounded (PROJSYNC_NET_TIMEOUT)

NET_TIMEOUT = 1.5


class SilentRemotes:
    """Two loopback ports that never answer: `accepting` accepts every connection and holds it
    open, never reading or writing; on `full` the accept queue is full, so a connect never
    completes (the SYN is dropped). `accepting` takes its connections off the accept queue at
    once: left there, a loaded machine could fill the queue and the kernel reset a connection
    (seen as a check that failed with "Connection reset by peer" instead of waiting)."""

    def __init__(self):
        self.held = []
        self.accepting = Listener(self.held.append)
        self.full = socket.socket()
        self.full.bind(("127.0.0.1", 0))
        self.full.listen(0)
        self.fillers = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(self.full.getsockname())
            except BlockingIOError:
                pass
            self.fillers.append(c)

    def urls(self):
        a, f = self.accepting.port, self.full.getsockname()[1]
        return [f"http://127.0.0.1:{a}/r.git", f"git://127.0.0.1:{a}/r.git",
                f"http://127.0.0.1:{f}/r.git"]

    def close(self):
        self.accepting.close()
        for s in self.fillers + self.held + [self.full]:
            s.close()


class ResettingRemote(Listener):
    """A loopback port whose every connection is accepted and reset at once (SO_LINGER 0, then
    close: the kernel sends RST): a git host whose network fails under the check."""

    def on_connect(self, c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()


@pytest.fixture
def silent():
    s = SilentRemotes()
    yield s
    s.close()


def test_silent_remotes_never_freeze_the_server(served, silent):
    server = served(env={"PROJSYNC_NET_TIMEOUT": str(NET_TIMEOUT)}, add=False)
    urls = silent.urls() * 2
    results = [None] * len(urls)

    def create(i):
        t0 = time.monotonic()
        st, h, body = server.post("/api/v1/projects", {"name": f"p{i}", "source": urls[i]})
        results[i] = (st, h, body, time.monotonic() - t0)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    # While the checks wait on the remotes, the server keeps answering.
    health = []
    while any(t.is_alive() for t in threads):
        t0 = time.monotonic()
        st, _, _ = server.get("/healthz")
        health.append((st, time.monotonic() - t0))
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert health and all(st == 200 and took < 1.0 for st, took in health), health
    for st, h, body, took in results:
        if st == 503:
            # Beyond the concurrent checks allowed: refused at once, with when to retry.
            assert body["error"]["code"] == "remote_busy", body
            assert int(h["retry-after"]) >= 1
        else:
            assert st == 504, body
            assert body["error"]["code"] == "upstream_timeout", body
            assert "PROJSYNC_NET_TIMEOUT" in body["error"]["message"], body
        # The checks run on helper threads, never on the thread that reads the request:
        # none waits behind another, each ends within one bound.
        assert took < NET_TIMEOUT + 2, results
    assert any(r[0] == 504 for r in results), results
    st, _, projects = server.get("/api/v1/projects")
    assert st == 200 and projects == []


def test_remote_checks_never_delay_keep_alive_requests(served, silent):
    """libmicrohttpd hands many connections to each of its threads: a check that blocked a
    thread would stall every keep-alive connection it serves. Requests on connections opened
    before the checks (spread over all the threads) are answered at once while the checks
    wait on their remotes."""
    server = served("--threads", "2", env={"PROJSYNC_NET_TIMEOUT": "3"}, add=False)
    conns = [server.conn() for _ in range(12)]
    for c in conns:
        assert server.get("/healthz", conn=c)[0] == 200
    url = silent.urls()[0]
    results = []

    def create(i):
        results.append(server.post("/api/v1/projects", {"name": f"p{i}", "source": url}))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.5)  # both checks are waiting on the silent remote now
    slow = []
    for _ in range(2):
        for i, c in enumerate(conns):
            t0 = time.monotonic()
            st, _, body = server.get("/api/v1/projects", conn=c)
            took = time.monotonic() - t0
            assert st == 200 and body == [], body
            if took > 0.5:
                slow.append((i, took))
    assert not slow, slow
    assert time.monotonic() - t_start < 2.5, "the checks ended before the requests were made"
    for t in threads:
        t.join()
    assert [r[0] for r in results] == [504, 504], results
    # The same connections go on serving after the checks ended.
    for c in conns:
        assert server.get("/api/v1/projects", conn=c)[0] == 200
        c.close()


def test_cli_project_add_against_a_silent_remote_fails_within_the_bound(ps, silent):
    for url in silent.urls():
        t0 = time.monotonic()
        r = ps("project", "add", "p", url, env={"PROJSYNC_NET_TIMEOUT": "1"})
        took = time.monotonic() - t0
        assert r.rc == 1, r
        assert one_error_line(r.err), r.err
        assert url in r.err and "timed out" in r.err and "PROJSYNC_NET_TIMEOUT" in r.err, r.err
        assert 0.8 < took < 3.5, (url, took)
    assert ps.json("project", "list") == []


def test_a_remote_gone_silent_bounds_branch_lists_and_syncs(served, tmp_path, make_repo):
    origin = make_repo("origin")
    origin.write("a.txt", "a\n")
    origin.commit("c1")
    base = tmp_path / "served"
    base.mkdir()
    git(base, "clone", "-q", "--bare", str(origin.path), "r.git")
    gate = GitDaemon(base)
    try:
        server = served(env={"PROJSYNC_NET_TIMEOUT": str(NET_TIMEOUT)}, add=False)
        st, _, p = server.post("/api/v1/projects", {"name": "g", "source": gate.url("r.git")})
        assert st == 201, p
        st, _, branches = server.get("/api/v1/projects/g/branches")
        assert st == 200 and [b["name"] for b in branches] == ["main"], branches
        s = wait_status(server, start_sync(server, "g")["id"], FINAL)
        assert s["status"] == "succeeded", s

        gate.silent = True
        t0 = time.monotonic()
        st, _, body = server.get("/api/v1/projects/g/branches")
        assert st == 504 and body["error"]["code"] == "upstream_timeout", body
        assert time.monotonic() - t0 < NET_TIMEOUT + 2
        # A sync run by a worker is bounded the same way: it fails, it does not hang.
        t0 = time.monotonic()
        s = wait_status(server, start_sync(server, "g")["id"], FINAL, timeout=30)
        assert s["status"] == "failed", s
        assert "timed out" in s["error"]["message"], s
        assert time.monotonic() - t0 < NET_TIMEOUT + 5
        st, _, _ = server.get("/healthz")
        assert st == 200
    finally:
        gate.close()


def test_sigterm_while_a_remote_check_waits(served, silent):
    """A connection suspended for a check is resumed and answered before the server stops."""
    server = served(env={"PROJSYNC_NET_TIMEOUT": "3"}, add=False)
    out = []
    t = threading.Thread(target=lambda: out.append(server.post(
        "/api/v1/projects", {"name": "p", "source": silent.urls()[0]})))
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    server.stop()
    t.join(timeout=10)
    assert out and out[0][0] == 503 and out[0][2]["error"]["code"] == "shutting_down", out
    assert time.monotonic() - t0 < 3 + 3


def test_a_remote_that_resets_is_unreachable_not_a_bad_source(served, ps, repo, tmp_path):
    """A source check whose connection is reset failed on the network, not on what the client
    asked for: 502 upstream_unreachable (as `project add` exits 1 for it), for a new project
    and a changed source alike, and nothing is stored. A remote that answers that it has no
    such repository is still the client's mistake: 422."""
    rst = ResettingRemote()
    base = tmp_path / "served"
    base.mkdir()
    daemon = GitDaemon(base)
    try:
        server = served(env={"PROJSYNC_NET_TIMEOUT": "5"})
        for url in (f"git://127.0.0.1:{rst.port}/r.git", f"http://127.0.0.1:{rst.port}/r.git"):
            st, _, body = server.post("/api/v1/projects", {"name": "r", "source": url})
            assert st == 502 and body["error"]["code"] == "upstream_unreachable", (url, body)
            assert "reset" in body["error"]["message"], body
            st, _, body = server.request("PATCH", "/api/v1/projects/demo", {"source": url})
            assert st == 502 and body["error"]["code"] == "upstream_unreachable", (url, body)
        st, _, projects = server.get("/api/v1/projects")
        assert [(p["name"], p["source"]) for p in projects] == [("demo", str(repo.path))], \
            projects
        r = ps("project", "add", "r", f"git://127.0.0.1:{rst.port}/r.git")
        assert r.rc == 1 and one_error_line(r.err) and "reset" in r.err, r

        st, _, body = server.post("/api/v1/projects",
                                  {"name": "n", "source": daemon.url("nope.git")})
        assert st == 422 and body["error"]["code"] == "upstream_error", body
        assert "not exported" in body["error"]["message"], body
        # ... and `project add` says the same, exit 2 (it exited 1, as for a network failure),
        # with a message that does not claim it could not connect.
        r = ps("project", "add", "n", daemon.url("nope.git"))
        assert r.rc == 2 and one_error_line(r.err) and "not exported" in r.err, r
        assert "cannot connect" not in r.err and ps("project", "show", "n").rc == 3, r
        r = ps("project", "set", "demo", "--source", daemon.url("nope.git"))
        assert r.rc == 2 and one_error_line(r.err) and "not exported" in r.err, r
    finally:
        daemon.close()
        rst.close()
