#!/usr/bin/env python3
"""
First sync with and without the code index on PostgreSQL (issue 13's 1.5x goal), with the
server's CPU beside projsync's: the index's cost on PostgreSQL is mostly the server's.

    BENCH_REPO=/path/to/libgit2 PROJSYNC_BIN=build-release/projsync \\
        tests/pg/with-pg python3 bench/pg_code_bench.py [--runs 3] [--back 2000] [BIN ...]

Each run syncs a clone at HEAD~back (libgit2: HEAD~2000, as docs/performance.md's SQLite
figures) into a new database on the private server of tests/pg/with-pg. Several binaries (e.g.
a build before and after a change) are measured in turn, interleaved, so the machine's load
falls on both alike. Prints medians: wall time, projsync's CPU (user + sys), the server's CPU
(its processes' /proc times, the backends that exited counted in the postmaster's children
times), and the code index's tables.
"""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG = os.environ.get("PROJSYNC_TEST_PG_URL")
DATA = os.environ.get("PROJSYNC_TEST_PG_DATA")
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PROJSYNC_")}
ENV.update(GIT_CONFIG_NOSYSTEM="1", HOME=tempfile.gettempdir())


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-At", url, "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


def server_cpu():
    """Seconds of CPU of the server: the postmaster with its reaped children, and the live
    processes it started."""
    master = int(Path(DATA, "postmaster.pid").read_text().split()[0])
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid, ppid = int(d.name), int(f[1])
        if pid == master:
            total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
        elif ppid == master:
            total += int(f[11]) + int(f[12])
    return total / TICK


def run(bin_, *args):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    r = subprocess.run([bin_, *args], env=ENV, capture_output=True)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"{bin_} {' '.join(args)}: {r.stderr.decode(errors='replace')}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


# Searches of the synced snapshot, first 100 matches (grep_bench.py's patterns).
PATTERNS = (("rare literal", ["-F", "git_odb_backend_loose"]), ("common literal", ["-F", "error"]),
            ("regex", ["-E", r"git_repository_\w+\(repo, "]))


def one(bin_, repo, kind, n):
    name = f"codebench_{n}"
    psql(PG, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(PG, f"CREATE DATABASE {name}")
    url = PG.rpartition("/")[0] + "/" + name
    extra = ["--no-code-index"] if kind == "noindex" else []
    run(bin_, "--db", url, "project", "add", "p", str(repo), "--branch", "bench", *extra)
    s0 = server_cpu()
    wall, cpu = run(bin_, "--db", url, "sync", "p")
    server = server_cpu() - s0
    greps = {}
    if kind == "index":
        for label, pat in PATTERNS:
            t = [run(bin_, "--db", url, "grep", *pat, "p", "--max", "100") for _ in range(7)]
            greps[label] = (statistics.median(x[0] for x in t), statistics.median(x[1] for x in t))
    size = int(psql(url, "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relkind = 'r' AND c.relname LIKE 'code%'"))
    total = int(psql(url, "SELECT pg_database_size(current_database())"))
    psql(PG, f"DROP DATABASE {name} WITH (FORCE)")
    return wall, cpu, server, size, total, greps


def main():
    args = sys.argv[1:]
    runs, back = 3, 2000
    while args and args[0].startswith("--"):
        opt, val = args.pop(0), args.pop(0)
        if opt == "--runs":
            runs = int(val)
        elif opt == "--back":
            back = int(val)
    bins = args or [os.environ.get("PROJSYNC_BIN", "build-release/projsync")]
    src = os.environ.get("BENCH_REPO")
    if not PG or not DATA or not src:
        sys.exit("needs BENCH_REPO and tests/pg/with-pg (PROJSYNC_TEST_PG_URL, _DATA)")
    work = Path(tempfile.mkdtemp(prefix="pg-code-bench-"))
    try:
        repo = work / "repo"
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", src, str(repo)], check=True)
        subprocess.run(["git", "-C", str(repo), "branch", "-f", "bench", f"HEAD~{back}"],
                       check=True)
        res = {}
        n = 0
        for _ in range(runs):
            for b in bins:
                for kind in ("index", "noindex"):
                    n += 1
                    res.setdefault((b, kind), []).append(one(b, repo, kind, n))
        for b in bins:
            med = {k: [statistics.median(x[i] for x in res[(b, k)]) for i in range(5)]
                   for k in ("index", "noindex")}
            print(f"{b}:")
            for k in ("index", "noindex"):
                w, c, s, size, total = med[k]
                print(f"  {k:8} wall {w:.2f} s, projsync CPU {c:.2f} s, server CPU {s:.2f} s, "
                      f"code tables {size / MIB:.2f} MiB, database {total / MIB:.1f} MiB")
            wi, ci, si = med["index"][:3]
            wn, cn, sn = med["noindex"][:3]
            print(f"  ratio: wall {wi / wn:.2f}x, projsync+server CPU {(ci + si) / (cn + sn):.2f}x")
            for label, _ in PATTERNS:
                g = [x[5][label] for x in res[(b, "index")]]
                print(f"  grep {label}: {statistics.median(x[0] for x in g) * 1000:.1f} ms wall, "
                      f"{statistics.median(x[1] for x in g) * 1000:.1f} ms projsync CPU")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
