#!/usr/bin/env python3
"""
Memory search benchmark: a generated repository with 10k and 100k markdown notes under
.memory/ (made with `git fast-import`), imported by one real `projsync sync`, then full-text
searches through the real binary (`projsync memory p --search Q --limit 20 --json`, so each
figure includes process start and store open) for a rare word, a common word, two words and a
title word. As a peer in the same run, the same FTS5 query straight from Python's sqlite3 on
the same database file (no process start): the gap is projsync's own overhead.
Figures are printed, never asserted; `make test` does not run this.

    PROJSYNC_BIN=build-release/projsync python3 bench/memory_bench.py [10k 100k ...] [--keep]
"""
import json
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
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GLIBC_TUNABLES="glibc.malloc.top_pad=67108864:glibc.malloc.trim_threshold=1073741824")
RUNS = 7
QUERIES = [("rare word", "quokka"), ("common word", "deploy"), ("two words", "cache latency"),
           ("title word", "runbook")]
WORDS = ("deploy release cache latency database index query schema migration backup restore "
         "incident alert metric dashboard queue worker lease token secret rotate review build "
         "test flaky retry timeout network proxy branch merge rebase commit tag version").split()


def note(i, rng):
    title = f"Runbook {i}" if i % 50 == 0 else f"Note {i} on {rng.choice(WORDS)}"
    body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 160)))
    if i % 997 == 0:
        body += " quokka"
    return f"---\ntitle: {title}\ntags: [{rng.choice(WORDS)}, {rng.choice(WORDS)}]\n---\n{body}\n"


def make_repo(path, n):
    rng = random.Random(n)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=GIT_ENV)
    out = []
    for i in range(n):
        data = note(i, rng).encode()
        out.append(b"blob\nmark :%d\ndata %d\n%s\n" % (i + 1, len(data), data))
    out.append(b"commit refs/heads/main\ncommitter bench <bench@example.com> 0 +0000\n"
               b"data 3\nc1\n")
    for i in range(n):
        out.append(b"M 100644 :%d .memory/d%03d/n%06d.md\n" % (i + 1, i % 500, i))
    subprocess.run(["git", "fast-import", "--quiet"], input=b"".join(out), cwd=path,
                   check=True, env=GIT_ENV)


def ps(db, *args):
    r = subprocess.run([BIN, "--db", str(db), *args], capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"projsync {' '.join(args)} failed: {r.stderr.decode()}")
    return r.stdout


def median_ms(fn):
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[len(times) // 2]


def bench(size, keep):
    n = int(size[:-1]) * 1000 if size.endswith("k") else int(size)
    tmp = Path(tempfile.mkdtemp(prefix=f"memory-bench-{size}-"))
    try:
        repo, db = tmp / "repo", tmp / "projsync.db"
        t = time.perf_counter()
        make_repo(repo, n)
        made = time.perf_counter() - t
        ps(db, "project", "add", "p", str(repo))
        t = time.perf_counter()
        ps(db, "sync", "p")
        synced = time.perf_counter() - t
        print(f"\n{size}: {n} notes (repo made in {made:.1f} s); first sync with import "
              f"{synced:.2f} s")
        print(f"  {'query':<12} {'hits':>6}  {'projsync CLI':>13}  {'sqlite3 FTS5 peer':>18}")
        con = sqlite3.connect(str(db))
        for label, q in QUERIES:
            hits = len(json.loads(
                ps(db, "memory", "search", "p", "--json", "--", q)))
            cli = median_ms(lambda: ps(db, "memory", "search", "p", "--limit", "20", "--json",
                                       "--", q))
            fts = " ".join(f'"{w}"' for w in q.split())
            peer = median_ms(lambda: con.execute(
                "SELECT e.id, snippet(memory_fts, 1, '<mark>', '</mark>', '...', 24), "
                "bm25(memory_fts, 10.0, 1.0, 5.0) AS r FROM memory_fts "
                "JOIN memory_entries e ON e.id = memory_fts.rowid "
                "WHERE memory_fts MATCH ? AND e.project_id = 1 AND e.state = 'active' "
                "ORDER BY r LIMIT 20", (fts,)).fetchall())
            print(f"  {label:<12} {hits:>6}  {cli:>10.1f} ms  {peer:>15.1f} ms")
        con.close()
        startup = median_ms(lambda: ps(db, "memory", "show", "1", "--json"))
        print(f"  (process start + store open + one row: {startup:.1f} ms)")
    finally:
        if keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep" in sys.argv
    if not os.access(BIN, os.X_OK):
        raise SystemExit(f"projsync binary not found at {BIN} (set PROJSYNC_BIN)")
    print(f"projsync memory search: median of {RUNS} runs, --limit 20; binary {BIN}")
    for size in args or ["10k", "100k"]:
        bench(size, keep)


if __name__ == "__main__":
    main()
