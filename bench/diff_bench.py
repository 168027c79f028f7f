#!/usr/bin/env python3
"""
Content diff benchmark (issue 16), `git diff` of the same commits as the peer in the same run:
`projsync diff A B --patch` of two syncs $BENCH_APART commits apart (default 200, first parent;
all files) against `git diff -M100% A B` in a clone: wall time (median of $BENCH_RUNS) and
peak memory (max RSS of the child, from wait4), and whether the two outputs are equal.

The repository is $BENCH_REPO (e.g. a clone of libgit2) at $BENCH_BRANCH (default HEAD).
The page's diff view is measured by bench/diff_page_bench.mjs. Figures are printed, never
asserted.

    BENCH_REPO=/path/to/libgit2 PROJSYNC_BIN=build-release/projsync python3 bench/diff_bench.py
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-release" / "projsync")
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def git(*args, cwd=None):
    r = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="replace").strip()


def measure(argv, env=None, cwd=None):
    """(seconds, stdout) of one run of argv."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    dt = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        sys.exit(f"{argv[0]} failed ({p.returncode}): {err.decode(errors='replace')}")
    return dt, out


def peak_rss_mib(argv, env=None, cwd=None):
    """Max RSS of one run, from wait4 on the child (not the whole process tree)."""
    pid = os.fork()
    if pid == 0:
        if cwd:
            os.chdir(cwd)
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execvpe(argv[0], argv, env or os.environ)
    _, status, ru = os.wait4(pid, 0)
    return ru.ru_maxrss / 1024


def main():
    src = os.environ.get("BENCH_REPO")
    if not src:
        sys.exit("set BENCH_REPO to a git repository (e.g. a clone of libgit2)")
    apart = int(os.environ.get("BENCH_APART", "200"))
    work = Path(tempfile.mkdtemp(prefix="diff-bench-"))
    try:
        repo = work / "repo"
        git("clone", "-q", "--no-hardlinks", src, str(repo))
        head = git("rev-parse", os.environ.get("BENCH_BRANCH") or "HEAD", cwd=repo)
        old = git("rev-parse", f"{head}~{apart}", cwd=repo)
        git("branch", "-f", "bench", old, cwd=repo)
        env = dict(os.environ, PROJSYNC_DB=str(work / "store" / "projsync.db"))
        (work / "store").mkdir()
        subprocess.run([BIN, "project", "add", "p", str(repo), "--branch", "bench"], env=env, check=True,
                       capture_output=True)
        subprocess.run([BIN, "sync", "p"], env=env, check=True, capture_output=True)
        git("branch", "-f", "bench", head, cwd=repo)
        subprocess.run([BIN, "sync", "p"], env=env, check=True, capture_output=True)
        hist = json.loads(subprocess.run([BIN, "history", "p", "--json"], env=env, check=True,
                                         capture_output=True).stdout)
        b, a = hist[0]["id"], hist[1]["id"]
        # Whole blob ids on both sides: git's default abbreviation grows with the repository's
        # object count, which the store cannot know (docs/performance.md).
        mine = [BIN, "diff", str(a), str(b), "--patch", "--full-index"]
        peer = ["git", "diff", "-M100%", "--full-index", old, head]
        stat = git("diff", "--shortstat", old, head, cwd=repo)
        print(f"repository {src}: {old[:10]}..{head[:10]} ({apart} commits): {stat}")
        res = {}
        for label, argv, e, cwd in (("projsync diff --patch", mine, env, None),
                                    ("git diff", peer, GIT_ENV, repo)):
            dt, out = measure(argv, e, cwd)
            times = [dt] + [measure(argv, e, cwd)[0] for _ in range(RUNS - 1)]
            rss = max(peak_rss_mib(argv, e, cwd) for _ in range(2))
            res[label] = out
            print(f"  {label:24} {statistics.median(times) * 1000:8.0f} ms  max RSS {rss:6.1f} MiB  "
                  f"{len(out) / 1024 / 1024:.2f} MiB of diff")
        same = res["projsync diff --patch"] == res["git diff"]
        print(f"  outputs equal: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
