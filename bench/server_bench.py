#!/usr/bin/env python3
"""
Server benchmarks for `projsync serve`. Figures are printed, never asserted; not run by
`make test`.

1. Requests/s of GET /api/v1/projects/{name}/sync with wrk (keep-alive, 64 connections), and
   the same for GET /healthz as the yardstick of the HTTP layer alone.
2. SSE fan-out: N watchers (1,000 / 5,000 / 10,000 by default) on one running sync. For each
   event emitted after all watchers are connected, the latency from its emission (the sync's
   started_at + the event's elapsed_ms, both wall clock) to its arrival at each watcher;
   p50/p99 over all (event, watcher) pairs. RSS per watcher = the server's RSS growth from
   before the watchers connected to when all are connected, divided by N. The client is one
   Python epoll loop on the same cores, so latency includes the client reading 10,000 sockets.

    PROJSYNC_BIN=build-release/projsync python3 bench/server_bench.py [1000 5000 10000]
"""
import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-release" / "projsync")
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")


def http(port, method, path, body=None):
    s = socket.create_connection(("127.0.0.1", port))
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
              + data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_server(tmp, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    p = subprocess.Popen([BIN, "--db", str(tmp / "db.sqlite"), "serve", "--listen", "127.0.0.1:0",
                          "--quiet", "--max-connections", "20000",
                          "--local-root", str(tmp)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    port = int(re.search(r":(\d+) ", line).group(1))
    return p, port


def make_repo(path, nfiles):
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=GIT_ENV)
    for i in range(nfiles):
        (path / f"f{i:04}.txt").write_text(f"file {i}\n" * 20)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(path), "commit", "-qm", "c"], check=True, env=GIT_ENV)


def bench_wrk(tmp, repo):
    p, port = start_server(tmp)
    try:
        st, _ = http(port, "POST", "/api/v1/projects", {"name": "demo", "source": str(repo)})
        assert st == 201
        st, _ = http(port, "POST", "/api/v1/projects/demo/sync")
        time.sleep(2)
        if not shutil.which("wrk"):
            print("wrk not installed (apt-get install wrk): skipping the request-rate benchmark")
            return
        for path in ("/api/v1/projects/demo/sync", "/healthz"):
            r = subprocess.run(["wrk", "-t2", "-c64", "-d10s", "--latency",
                                f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True)
            rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
            p99 = re.search(r"99%\s+(\S+)", r.stdout)
            print(f"wrk GET {path:32} {float(rps.group(1)) if rps else 0:10.0f} req/s  "
                  f"p99 {p99.group(1) if p99 else '?'}  (keep-alive, 64 connections, 2 threads)")
    finally:
        p.terminate()
        p.wait()


def parse_ms(ts):
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp() * 1000


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def fanout(tmp, n):
    db_dir = tmp / f"fan{n}"
    db_dir.mkdir()
    p, port = start_server(db_dir, {"PROJSYNC_TEST_STEP_DELAY_MS": "150",
                                    "PROJSYNC_TEST_BATCH": "1"})
    socks, datas = [], []
    try:
        st, _ = http(port, "POST", "/api/v1/projects", {"name": "demo", "source": str(tmp / "repo")})
        assert st == 201, st
        st, body = http(port, "POST", "/api/v1/projects/demo/sync")
        sync_id = json.loads(body[body.index(b"{"):body.rindex(b"}") + 1])["id"]
        base_rss = rss_kb(p.pid)
        sel = selectors.EpollSelector()
        req = (f"GET /api/v1/events/project-sync/{sync_id} HTTP/1.1\r\nHost: x\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
        t0 = time.time()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(req)
            s.setblocking(False)
            d = {"buf": b"", "arrivals": {}}
            socks.append(s)
            datas.append(d)
            sel.register(s, selectors.EVENT_READ, d)
        all_connected = time.time() * 1000
        connect_s = time.time() - t0
        rss = None
        open_ = n
        deadline = time.time() + 300
        while open_ and time.time() < deadline:
            if rss is None and time.time() * 1000 - all_connected > 1000:
                rss = rss_kb(p.pid)
            for key, _ in sel.select(timeout=0.5):
                d = key.data
                try:
                    chunk = key.fileobj.recv(65536)
                except (BlockingIOError, ConnectionResetError):
                    continue
                now = time.time() * 1000
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_ -= 1
                    continue
                d["buf"] += chunk
                while b"\n\n" in d["buf"]:
                    block, d["buf"] = d["buf"].split(b"\n\n", 1)
                    m = re.search(rb"data: (\{.*\})", block)
                    if m:
                        ev = json.loads(m.group(1))
                        d["arrivals"][ev["seq"]] = (now, ev["elapsed_ms"])
        st, body = http(port, "GET", f"/api/v1/syncs/{sync_id}")
        sync = json.loads(body[body.index(b"{"):body.rindex(b"}") + 1])
        started = parse_ms(sync["started_at"])
        lat, complete = [], 0
        nevents = max((max(d["arrivals"]) for d in datas if d["arrivals"]), default=0)
        for d in datas:
            complete += len(d["arrivals"]) == nevents
            for seq, (arrived, elapsed) in d["arrivals"].items():
                emitted = started + elapsed
                if emitted > all_connected + 1000:  # live events only, after the connect storm
                    lat.append(arrived - emitted)
        rss = rss or rss_kb(p.pid)
        print(f"SSE {n:6} watchers: connect {connect_s:5.1f}s, {complete}/{n} got all "
              f"{nevents} events; live fan-out latency over {len(lat)} deliveries: "
              f"p50 {pct(lat, 0.5):6.1f} ms, p99 {pct(lat, 0.99):6.1f} ms; "
              f"RSS {(rss - base_rss) / n:5.1f} KiB per watcher")
    finally:
        for s in socks:
            s.close()
        p.terminate()
        p.wait()


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 5000, 10000]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="projsync-server-bench-"))
    try:
        make_repo(tmp / "repo", 60)
        print(f"binary: {BIN}")
        (tmp / "wrk").mkdir()
        bench_wrk(tmp / "wrk", tmp / "repo")
        for n in sizes:
            if n + 100 > hard:
                print(f"SSE {n:6} watchers: skipped (open-file limit {hard})")
                continue
            fanout(tmp, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
