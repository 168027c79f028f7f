#!/usr/bin/env python3
"""
Scheduled syncs at scale (issue 11): a server with N projects on `--every 10s` against local
repositories of which 1% change per minute. Figures are printed, never asserted; not run by
`make test`.

- CPU: the server's process CPU time (utime + stime from /proc/PID/stat) over the run, minus
  the same server idle for the same time (the same projects with the schedule off): what the
  schedule costs, scheduler thread and the workers' up-to-date checks together, as a share of
  one core.
- Store growth: the store's bytes (database, WAL) and its rows before and after, extrapolated to
  an hour. An up-to-date check writes no file rows, and a run of up-to-date scheduled checks is
  one sync row that counts them (syncs.checks, schema 15): sync and event rows follow the
  changes too. Checks are counted from syncs.checks (each row before schema 15 is one).

    PROJSYNC_BIN=build-release/projsync python3 bench/schedule_bench.py [PROJECTS [SECONDS]]

Defaults: 1,000 projects, 300 s (each phase). The projects' first syncs happen before the
measurement, and the scheduled phase is measured after a 20 s warm-up (every project's first
scheduled check follows a manual sync, so it is a row of its own once).
"""
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-release" / "projsync")
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
TICKS = os.sysconf("SC_CLK_TCK")


def run(*args, env=None, cwd=None):
    subprocess.run(args, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def store_bytes(db):
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def counts(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        n = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
             for t in ("syncs", "file_versions", "blobs", "events")}
        try:
            n["checks"] = c.execute("SELECT coalesce(sum(checks), 0) FROM syncs").fetchone()[0]
        except sqlite3.OperationalError:  # a store before schema 15: a row is a check
            n["checks"] = n["syncs"]
        return n
    finally:
        c.close()


def commit(repo, i, gen):
    (repo / f"f{gen % 5}.txt").write_text(f"project {i} generation {gen}\n" * 20)
    run("git", "add", "-A", cwd=repo, env=GIT_ENV)
    run("git", "commit", "-qm", f"gen {gen}", cwd=repo, env=GIT_ENV)


def serve(env, port):
    # Its log goes to a file: a pipe nobody reads would fill and stall the server.
    log = open(Path(env["PROJSYNC_DB"]).parent / "serve.log", "ab")
    proc = subprocess.Popen([BIN, "serve", "--quiet", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    time.sleep(1.5)
    assert proc.poll() is None, "the server did not start (see serve.log)"
    return proc


def used_bytes(db):
    """The pages the store's tables and indexes take (page_count - freelist_count, WAL
    included): what it grew by, whatever the files' sizes (a WAL file keeps its size between
    checkpoints, a database file keeps freed pages for reuse)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        free = c.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * c.execute("PRAGMA page_size").fetchone()[0]
    finally:
        c.close()


def phase(env, port, seconds, repos, changing, db=None, warmup=0):
    """Runs the server for `warmup` + `seconds`; 1% of the repositories get a commit per minute.
    CPU and (with `db`) the store are measured over the last `seconds` only, so a project's
    first scheduled check after the manual sync (a row of its own, once) is not extrapolated."""
    proc = serve(env, port)
    try:
        per_min = max(1, len(repos) // 100) if changing else 0
        gen, next_change = 1000, time.monotonic()
        start = time.monotonic() + warmup
        c0 = t0 = None
        before = after = None
        while True:
            now = time.monotonic()
            if c0 is None and now >= start:
                c0, t0 = cpu_seconds(proc.pid), now
                if db:
                    before = counts(db), store_bytes(db), used_bytes(db)
            if t0 is not None and now - t0 >= seconds:
                break
            if per_min and now >= next_change:
                for i in random.sample(range(len(repos)), per_min):
                    gen += 1
                    commit(repos[i], i, gen)
                next_change += 60
            time.sleep(0.5)
        cpu, wall = cpu_seconds(proc.pid) - c0, time.monotonic() - t0
        if db:
            after = counts(db), store_bytes(db), used_bytes(db)
        return cpu, wall, before, after
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 1000
    seconds = int(argv[2]) if len(argv) > 2 else 300
    tmp = Path(tempfile.mkdtemp(prefix="schedule-bench-"))
    db = tmp / "projsync.db"
    env = dict(os.environ, PROJSYNC_DB=str(db))
    port = 18500 + os.getpid() % 1000
    print(f"{n} projects, {seconds} s per phase, {os.cpu_count()} cores, store {db}")
    repos = []
    for i in range(n):
        repo = tmp / "repos" / f"r{i}"
        repo.mkdir(parents=True)
        run("git", "init", "-q", "-b", "main", cwd=repo, env=GIT_ENV)
        commit(repo, i, 0)
        repos.append(repo)
        run(BIN, "project", "add", f"p{i}", str(repo), env=env)
        run(BIN, "sync", f"p{i}", env=env)

    idle_cpu, idle_s, _, _ = phase(env, port, seconds, repos, changing=False)
    for i in range(n):
        run(BIN, "project", "set", f"p{i}", "--every", "10s", env=env)
    busy_cpu, busy_s, b, a = phase(env, port, seconds, repos, changing=True, db=db, warmup=20)
    (before, size0, used0), (after, size1, used1) = b, a

    hour = 3600 / busy_s
    extra = busy_cpu / busy_s - idle_cpu / idle_s
    checks = after["checks"] - before["checks"]
    print(f"idle server: {100 * idle_cpu / idle_s:.2f}% of a core")
    print(f"scheduled:   {100 * busy_cpu / busy_s:.2f}% of a core; the schedule costs "
          f"{100 * extra:.2f}% ({checks} checks, {checks / busy_s:.1f}/s; "
          f"{n / 10:.1f}/s asked for; {1000 * busy_cpu / max(checks, 1):.2f} ms of CPU a check)")
    for t in ("syncs", "events", "file_versions", "blobs"):
        print(f"  {t:14} +{after[t] - before[t]:7d}  ({(after[t] - before[t]) * hour:,.0f} per hour)")
    print(f"  store used     +{used1 - used0:7d}  ({(used1 - used0) * hour / 1e6:,.1f} MB per hour)")
    print(f"  store files    +{size1 - size0:7d}  ({(size1 - size0) * hour / 1e6:,.1f} MB per hour; "
          f"{size1 / 1e6:.1f} MB now, WAL included)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main(sys.argv)
