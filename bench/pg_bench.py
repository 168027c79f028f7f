#!/usr/bin/env python3
"""
PostgreSQL beside SQLite, and several nodes (issue 9). Figures are printed, never asserted.

  1. Syncs on both backends side by side: first sync of generated repositories (10k and 100k
     files by default), a no-op re-sync, a 10-file re-sync, `files --json` of the snapshot.
  2. SSE across nodes: a sync run by node A, watched by N (1,000) connections on node B: the
     delay of each event at B's watchers behind a reference watcher on node A, whose hub is
     poked by A's own worker the moment the event is stored (so the figure is B's share:
     NOTIFY, B's read, fan-out), p50/p99/max.
  3. Throughput: 30 projects (small repositories), each synced once, with 1, 2 and 3 nodes on
     one database: syncs per minute.

    PROJSYNC_BIN=build-release/projsync tests/pg/with-pg python3 bench/pg_bench.py \\
        [--sizes 10k,100k] [--watchers 1000] [--skip-sync]

It needs PROJSYNC_TEST_PG_URL (tests/pg/with-pg starts a private PostgreSQL and sets it);
each part uses a new database on that server.
"""
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_bench as sb  # noqa: E402  (make_repo, change_files, timed, parse_size)

BIN = sb.BIN
PG = os.environ.get("PROJSYNC_TEST_PG_URL")


def new_db(name):
    subprocess.run(["psql", "-X", "-q", PG, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   check=True, capture_output=True)
    subprocess.run(["psql", "-X", "-q", PG, "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    return PG.rpartition("/")[0] + "/" + name


def env():
    return {k: v for k, v in sb.GIT_ENV.items() if not k.startswith("PROJSYNC_")}


# ---- 1. syncs on both backends

def sync_row(tmp, repo, n, db):
    ps = [BIN, "--db", str(db)]
    e = env()
    sb.timed(ps + ["project", "add", "bench", str(repo)], e)
    row = {"first": sb.timed(ps + ["sync", "bench"], e),
           "noop": sb.timed(ps + ["sync", "bench"], e)}
    return row


def bench_syncs(tmp, sizes):
    print("1. syncs, SQLite beside PostgreSQL (seconds)\n")
    hdr = f"{'files':>8} {'backend':>8} {'first':>8} {'no-op':>8} {'+10':>8} {'files':>8}"
    print(hdr + "\n" + "-" * len(hdr))
    for n in sizes:
        repo = sb.make_repo(tmp, n)
        stores = {"sqlite": tmp / f"s-{n}.db", "pg": new_db(f"bench_sync_{n}")}
        rows = {k: sync_row(tmp, repo, n, db) for k, db in stores.items()}
        sb.change_files(repo, n)
        for k, db in stores.items():
            ps = [BIN, "--db", str(db)]
            rows[k]["incr"] = sb.timed(ps + ["sync", "bench"], env())
            out = []
            rows[k]["list"] = sb.timed(ps + ["files", "bench", "--json"], env(), out=out)
            if len(json.loads(out[0])) != n:
                sys.exit(f"{k}: {len(json.loads(out[0]))} files listed, {n} expected")
            r = rows[k]
            print(f"{n:>8} {k:>8} {r['first']:>8.3f} {r['noop']:>8.3f} {r['incr']:>8.3f} "
                  f"{r['list']:>8.3f}", flush=True)
        shutil.rmtree(repo, ignore_errors=True)
    print()


# ---- nodes

class Node:
    def __init__(self, db, *args, extra_env=None):
        e = env()
        e.update(extra_env or {})
        self.proc = subprocess.Popen([BIN, "--db", db, "serve", "--listen", "127.0.0.1:0",
                                      "--quiet", *args], env=e, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        if not m:
            sys.exit(f"node did not start: {line!r}")
        self.host, self.port = m.group(1), int(m.group(2))

    def call(self, method, path):
        req = urllib.request.Request(f"http://{self.host}:{self.port}{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


async def watch(host, port, sid, arrivals, ready):
    r, w = await asyncio.open_connection(host, port)
    w.write(f"GET /api/v1/events/project-sync/{sid} HTTP/1.1\r\nHost: x\r\n"
            "Accept: text/event-stream\r\n\r\n".encode())
    await w.drain()
    ready.append(1)
    seq = None
    while True:
        line = await r.readline()
        if not line:
            break
        if line.startswith(b"id: "):
            seq = int(line[4:])
            arrivals.append((seq, time.monotonic()))
        if line.startswith(b"event: ") and line[7:].strip() in (b"succeeded", b"failed",
                                                                 b"cancelled"):
            break
    w.close()


def bench_sse(tmp, watchers):
    print(f"2. SSE across nodes: a sync on node A, {watchers} watchers on node B\n")
    db = new_db("bench_sse")
    repo = sb.make_repo(tmp, 2000)
    subprocess.run([BIN, "--db", db, "project", "add", "demo", str(repo)], env=env(), check=True,
                   capture_output=True)
    # A runs the sync slowly (many events); B only watches (no workers would matter anyway:
    # the sync is claimed by A at once).
    a = Node(db, extra_env={"PROJSYNC_TEST_STEP_DELAY_MS": "20", "PROJSYNC_TEST_BATCH": "20"})
    b = Node(db, "--max-connections", str(watchers + 100))
    st, sync = a.call("POST", "/api/v1/projects/demo/sync")
    sid = sync["id"]
    ref, remote = [], [[] for _ in range(watchers)]

    async def main():
        ready = []
        tasks = [asyncio.create_task(watch(a.host, a.port, sid, ref, ready))]
        tasks += [asyncio.create_task(watch(b.host, b.port, sid, remote[i], ready))
                  for i in range(watchers)]
        await asyncio.gather(*tasks)
    asyncio.run(main())
    first = {}
    for seq, t in ref:
        first.setdefault(seq, t)
    # Only live events: those the reference saw well after every watcher was connected.
    t_live = max(t for w in remote for _, t in w[:1]) + 0.2 if remote[0] else 0
    delays = sorted((t - first[seq]) * 1000 for w in remote for seq, t in w
                    if seq in first and first[seq] > t_live)
    a.stop()
    b.stop()
    if not delays:
        print("   no live events measured (the sync ended before the watchers joined)\n")
        return
    pct = lambda p: delays[min(len(delays) - 1, int(len(delays) * p))]  # noqa: E731
    print(f"   {len(delays)} deliveries ({len(delays) // watchers} live events x {watchers}): "
          f"p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {delays[-1]:.1f} ms\n")


def bench_throughput(tmp, projects=30):
    print(f"3. throughput: {projects} projects synced once, 1-3 nodes on one database\n")
    repos = [sb.make_repo(tmp / f"r{i}", 200) for i in range(projects)]
    for nodes in (1, 2, 3):
        db = new_db(f"bench_tp_{nodes}")
        for i, r in enumerate(repos):
            subprocess.run([BIN, "--db", db, "project", "add", f"p{i}", str(r)], env=env(),
                           check=True, capture_output=True)
        ns = [Node(db, "--workers", "2") for _ in range(nodes)]
        t0 = time.monotonic()
        # Spread the starts over the nodes, as a load balancer would.
        ids = [ns[i % nodes].call("POST", f"/api/v1/projects/p{i}/sync")[1]["id"]
               for i in range(projects)]
        while True:
            out = subprocess.run(["psql", "-X", "-At", db, "-c",
                                  "SELECT count(*) FROM syncs WHERE status IN "
                                  "('succeeded','failed','cancelled')"],
                                 capture_output=True, check=True).stdout
            if int(out) >= len(ids):
                break
            time.sleep(0.02)
        dt = time.monotonic() - t0
        failed = subprocess.run(["psql", "-X", "-At", db, "-c",
                                 "SELECT count(*) FROM syncs WHERE status <> 'succeeded'"],
                                capture_output=True, check=True).stdout.strip()
        for n in ns:
            n.stop()
        print(f"   {nodes} node(s) x 2 workers: {dt:6.2f} s, {projects / dt * 60:6.0f} syncs/min"
              f" ({failed.decode()} not succeeded)", flush=True)
    print()


def main(argv):
    if not PG:
        sys.exit("PROJSYNC_TEST_PG_URL is not set: run under tests/pg/with-pg")
    sizes, watchers, skip_sync = [10000, 100000], 1000, False
    for i, a in enumerate(argv):
        if a == "--sizes":
            sizes = [sb.parse_size(s) for s in argv[i + 1].split(",")]
        elif a == "--watchers":
            watchers = int(argv[i + 1])
        elif a == "--skip-sync":
            skip_sync = True
    tmp = Path(tempfile.mkdtemp(prefix="projsync-pgbench-"))
    print(f"binary: {BIN}\nPostgreSQL: {PG}\n")
    try:
        if not skip_sync:
            bench_syncs(tmp, sizes)
        bench_sse(tmp, watchers)
        bench_throughput(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
