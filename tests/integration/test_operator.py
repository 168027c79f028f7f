"""
What an operator running `projsync serve` as a service meets (the operations audit): the server
under the file descriptor limit of a systemd service, stops and restarts, and what the log and
the history say about them.
"""
import json
import signal
import socket
import time

import pytest

from conftest import Projsync, wait_for
from server_util import Server, open_sse, read_sse, wait_status


class _FewFds:
    """The test's Projsync, whose commands run with `n` file descriptors at most (soft and
    hard: the server cannot raise it), as a service's LimitNOFILE would give."""

    def __init__(self, ps, n):
        self._ps, self._n = ps, n

    def __getattr__(self, name):
        return getattr(self._ps, name)

    def argv(self, args, db=True):
        return ["prlimit", f"--nofile={self._n}:{self._n}", "--"] + self._ps.argv(args, db)


def _request(conn, method, path):
    conn.request(method, path)
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"null")


def test_idle_connections_beyond_the_fd_limit_leave_syncs_working_and_the_log_readable(
        ps, repo):
    """Before: --max-connections (16384) was handed to libmicrohttpd whatever the process's
    descriptor limit; idle connections used them all, libmicrohttpd busy-waited logging tens of
    thousands of lines a second, and a sync could not open its repository."""
    repo.write("a.txt", "one\n")
    repo.commit("one")
    ps.add("web", str(repo.path))
    ps.sync("web")
    srv = Server(_FewFds(ps, 200), "--quiet")
    try:
        c0 = srv.conn()  # accepted before the flood: stays usable
        assert _request(c0, "GET", "/healthz")[0] == 200
        idle = []
        try:
            for _ in range(400):
                idle.append(socket.create_connection((srv.host, srv.port), timeout=5))
            time.sleep(2)
            repo.write("a.txt", "two\n")
            repo.commit("two")
            st, body = _request(c0, "POST", "/api/v1/projects/web/sync")
            assert st == 202, body
            deadline = time.monotonic() + 60
            while True:
                st, s = _request(c0, "GET", f"/api/v1/syncs/{body['id']}")
                if s["status"] not in ("queued", "running") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert s["status"] == "succeeded", s
            assert s["counts"]["modified"] == 1, s
            lines = srv.stderr().splitlines()
            assert len(lines) < 200, f"{len(lines)} log lines, e.g. {lines[-3:]}"
            # Said once, at the start, with what to do.
            assert sum("too few file descriptors for --max-connections" in ln and
                       "LimitNOFILE" in ln for ln in lines) == 1, lines[:5]
        finally:
            for s in idle:
                s.close()
        c0.close()
        # The connections given back, the server takes new ones again.
        deadline = time.monotonic() + 30
        while True:
            try:
                if srv.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, srv.stderr()[-2000:]
            time.sleep(0.5)
    finally:
        srv.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_cancels_running_syncs_saying_the_server_stopped(ps, repo, sig):
    """Before: a sync the server cancelled because it was stopping (systemctl restart, an apt
    upgrade) ended "cancelled by request", the words of a cancel someone asked for; and SIGHUP
    (a foreground server's terminal closing) killed the server on the spot, leaving its sync
    `running`."""
    for i in range(40):
        repo.write(f"f{i}.txt", f"{i}\n")
    repo.commit("many")
    ps.add("web", str(repo.path))
    srv = Server(ps, env={"PROJSYNC_TEST_STEP_DELAY_MS": "200"})
    stopped = False
    try:
        st, _, s = srv.post("/api/v1/projects/web/sync")
        assert st == 202, s
        wait_status(srv, s["id"], ("running",))
        c, r = open_sse(srv, s["id"])
        assert r.status == 200
        srv.stop(sig)
        stopped = True
        events = read_sse(r)
        c.close()
    finally:
        if not stopped:
            srv.stop()
    assert events[-1][1] == "cancelled", events[-1]
    (h,) = [x for x in ps.history("web") if x["id"] == s["id"]]
    for said in (h["error"]["message"], events[-1][2]["message"]):
        assert "server stopped" in said and "by request" not in said, said
    assert h["error"]["code"] == "cancelled", h
    log = srv.stderr()
    assert 'msg="sync cancelled"' in log and "server stopped" in log, log[-2000:]



def test_takeover_is_logged_with_the_project_and_sync(tmp_path, pg_database, repo):
    """Before: the node that took a dead node's sync over logged "worker 1: took over sync 7
    from a node that stopped", a record without project or sync_id fields, so a search of the
    log for the project (journalctl ... | grep project=web) missed it."""
    ps = Projsync(tmp_path, pg_database())
    for i in range(30):
        repo.write(f"f{i:02}.txt", f"file {i}\n")
    repo.commit("c1")
    ps.add("web", str(repo.path))
    a = Server(ps, "--lease-seconds", "2",
               env={"PROJSYNC_TEST_KILL_AT": "fetch:2", "PROJSYNC_TEST_STEP_DELAY_MS": "150",
                    "PROJSYNC_TEST_BATCH": "4"})
    b = None
    try:
        st, _, s = a.post("/api/v1/projects/web/sync")
        assert st == 202, s
        wait_status(a, s["id"], ("running",))
        b = Server(ps, "--lease-seconds", "2")
        a.proc.wait(timeout=60)  # killed by its own hook mid-fetch
        assert wait_status(b, s["id"], ("succeeded",), timeout=90)["status"] == "succeeded"
        recs = [ln for ln in b.stderr().splitlines() if 'msg="sync taken over"' in ln]
        assert len(recs) == 1, b.stderr()[-3000:]
        assert "level=warn" in recs[0] and "project=web" in recs[0] and \
            f"sync_id={s['id']}" in recs[0], recs
    finally:
        a.stop(expect_rc=None)
        if b:
            b.stop()


def test_serve_option_errors_after_local_root_exit_2(ps, tmp_path):
    """Before: a bad --max-failures or --prune-every after --local-root leaked the resolved
    root, which the sanitizer build reports at exit (exit 86, not 2)."""
    for bad in (["--max-failures", "0"], ["--prune-every", "1ms"]):
        r = ps("serve", "--local-root", str(tmp_path), *bad, "--listen", "127.0.0.1:0")
        assert r.rc == 2, r
        assert r.err.startswith("projsync: --max-failures") or \
            r.err.startswith("projsync: invalid --prune-every"), r


def test_a_project_paused_by_its_failures_shows_in_the_log_and_metrics(ps, make_repo, tmp_path):
    """Before: the server paused a scheduled project after --max-failures failures in a row
    without a log record, and /metrics had nothing to alert on: its syncs just stopped."""
    import shutil
    repo = make_repo()
    repo.write("a.txt", "one\n")
    repo.commit("one")
    other = make_repo("other")
    other.write("b.txt", "b\n")
    other.commit("b")
    ps.add("p", str(repo.path), "--every", "1h")
    ps.add("q", str(other.path))
    ps.sync("p")
    shutil.rmtree(repo.path)
    srv = Server(ps, "--max-failures", "2")
    try:
        def metric(state):
            st, _, text = srv.get("/metrics")
            assert st == 200
            for ln in text.decode().splitlines():
                if ln.startswith(f'projsync_projects{{state="{state}"}} '):
                    return int(ln.split()[-1])
            raise AssertionError(text.decode())
        assert metric("paused") == 0 and metric("active") == 2
        # Failures started by hand count too (README: "failures in a row").
        for _ in range(2):
            st, _, s = srv.post("/api/v1/projects/p/sync")
            assert st == 202, s
            assert wait_status(srv, s["id"], ("failed",))["error"]["code"] == "source_gone"
        assert wait_for(lambda: srv.get("/api/v1/projects/p")[2]["state"] == "paused",
                        timeout=60), srv.stderr()[-3000:]
        assert metric("paused") == 1 and metric("active") == 1
        recs = [ln for ln in srv.stderr().splitlines() if 'msg="project paused"' in ln]
        assert len(recs) == 1, srv.stderr()[-3000:]
        assert "project=p " in recs[0] and "failures_in_row=2" in recs[0] and \
            "the source is gone" in recs[0] and "project resume p" in recs[0], recs
    finally:
        srv.stop()


def test_default_file_offers_every_setting_the_server_reads():
    """Before: /etc/default/projsync, which projsync-serve(1) calls "the environment variables
    above", left out PROJSYNC_NET_TIMEOUT, so an operator editing it did not learn of it."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    man = (root / "docs/man/projsync-serve.1.scd").read_text()
    env = man.split("# ENVIRONMENT", 1)[1].split("\n# ", 1)[0]
    documented = set(re.findall(r"^\*([A-Z_]+)\*$", env, re.M))
    assert {"PROJSYNC_DB", "PROJSYNC_NET_TIMEOUT", "GITHUB_TOKEN"} <= documented, documented
    # Not the server's: the clients' default, and the unit's own (the file sets it).
    documented -= {"PROJSYNC_SERVER"}
    offered = set(re.findall(r"^#([A-Z_]+)=", (root / "dist/projsync.default").read_text(), re.M))
    assert documented <= offered, documented - offered


def test_a_store_that_refuses_connections_is_logged_as_an_error_once(tmp_path, pg_database):
    """Before: a worker that could not open the store logged it every second, at level=info,
    like the scheduler and the event hub: a database outage filled the log with records an
    operator filtering by level (warn, error) never saw."""
    import re
    from conftest import psql
    import os
    admin = pg_database()
    db = admin.rsplit("/", 1)[1]
    # A role of its own: connection limits do not hold for the superuser of the tests.
    role = "lim_" + os.urandom(4).hex()
    psql(admin, f"CREATE ROLE {role} LOGIN")
    psql(admin, f"ALTER DATABASE {db} OWNER TO {role}")
    base, _, _ = admin.rpartition("/")
    url = base.replace("://projsync@", f"://{role}@") + "/" + db
    ps = Projsync(tmp_path, url)
    ps.ok("migrate")
    # Room for a few of the server's connections: the other threads cannot open the store.
    psql(admin, f"ALTER ROLE {role} CONNECTION LIMIT 4")
    srv = Server(ps, "--workers", "8", "--quiet")
    try:
        time.sleep(4)
        lines = [ln for ln in srv.stderr().splitlines() if "cannot open the store" in ln]
        assert lines, srv.stderr()[-3000:]
        assert all("level=error" in ln for ln in lines), lines[:3]
        per_thread = {}
        for ln in lines:
            who = re.search(r'msg="([a-z]+(?: \d+)?):', ln)
            key = who.group(1) if who else ln
            per_thread[key] = per_thread.get(key, 0) + 1
        assert max(per_thread.values()) == 1, per_thread
    finally:
        srv.stop()
        psql(admin, f"REASSIGN OWNED BY {role} TO projsync")
        psql(admin, f"ALTER DATABASE {db} OWNER TO projsync")
        psql(admin, f"DROP ROLE {role}")


def test_serve_usage_errors_leave_no_store_behind(ps, tmp_path):
    """Before: a --public-url with a bad host ('http://a b') was refused only once the store had
    been created, so the usage error left a new empty store (and its cache folder) behind."""
    where = tmp_path / "fresh"
    where.mkdir()
    db = where / "projsync.db"
    r = ps("serve", "--public-url", "http://a b", "--listen", "127.0.0.1:0", db=False,
           env={"PROJSYNC_DB": str(db)})
    assert r.rc == 2, r
    assert r.err.startswith("projsync: invalid --public-url 'http://a b'"), r
    assert list(where.iterdir()) == [], list(where.iterdir())
    # ":PORT" is every address: said so, not as an empty name.
    r = ps("serve", "--listen", ":0", db=False, env={"PROJSYNC_DB": str(db)})
    assert r.rc == 2 and "refusing to listen on '*'" in r.err, r
    assert list(where.iterdir()) == []


def test_a_second_server_on_a_port_in_use_leaves_queued_syncs_alone(ps, make_repo):
    """Before: a `serve` whose port was taken (a second instance, a restart racing the old
    process) started its workers before it bound the port, claimed the queued syncs of the
    store in that moment and cancelled them when its start failed."""
    for name in ("w", "w2"):
        r = make_repo(name)
        r.write("a.txt", f"{name}\n")
        r.commit("one")
        ps.add(name, str(r.path))
    # One worker, kept busy by a slow sync: the next one stays queued.
    a = Server(ps, "--workers", "1", env={"PROJSYNC_TEST_STEP_DELAY_MS": "300"})
    try:
        st, _, first = a.post("/api/v1/projects/w/sync")
        assert st == 202, first
        wait_status(a, first["id"], ("running",))
        st, _, queued = a.post("/api/v1/projects/w2/sync")
        assert st == 202 and queued["status"] == "queued", queued
        r = ps("serve", "--listen", f"127.0.0.1:{a.port}", "--workers", "4")
        assert r.rc == 1, r
        assert r.err == (f"projsync: cannot listen on 127.0.0.1:{a.port}: Address already "
                         "in use\n"), r
        assert "sync started" not in r.err
        st, _, s = a.get(f"/api/v1/syncs/{queued['id']}")
        assert s["status"] in ("queued", "running"), s
        assert wait_status(a, queued["id"], ("succeeded", "failed", "cancelled"),
                           timeout=120)["status"] == "succeeded"
    finally:
        a.stop()
