#!/usr/bin/env python3
"""
Schema 26 benchmark (issue 14: a file version names its directory by id): the same store read
by two binaries, one run side by side, so that only the layout differs.

A generated repository of N files (bench/sync_bench.py's generator, 100 files per directory) is
synced once by the BASELINE binary (a build before schema 26) into store A; A is copied to B and
B is migrated by the new binary (timed: migration 0026 on N file versions). Then each binary on
its own store: the store's size (VACUUMed copy), `files --json` of the whole snapshot and of a
directory and a name prefix, paging through the files API (`?limit=1000&after=`, every page,
through `serve`), `cat` of 50 files, `grep` of a rare literal and of a common one (--max 100) and
a regex, `checkout`, and the re-sync after 10 changed files. Figures are printed, never
asserted; each time is the median of 3 runs (1 for the re-sync and the migration).

    PROJSYNC_BIN=build-release/projsync PROJSYNC_BIN_BASELINE=/path/to/old/projsync \\
        python3 bench/dirs_bench.py [N]

With --paging [N], only the files API's pages, both binaries on one store (SQLite, or the
PostgreSQL database PROJSYNC_BENCH_PG_URL): the whole walk and the first and last ten pages.
"""
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_bench  # noqa: E402

NEW = os.environ.get("PROJSYNC_BIN") or str(sync_bench.ROOT / "build-release" / "projsync")
OLD = os.environ.get("PROJSYNC_BIN_BASELINE")
ENV = {k: v for k, v in sync_bench.GIT_ENV.items() if not k.startswith("PROJSYNC_")}


def run(binary, db, *args):
    p = subprocess.run([binary, "--db", str(db), *map(str, args)], env=ENV, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"{binary} {' '.join(map(str, args))}: {p.stderr.decode(errors='replace')}")
    return p.stdout


def timed(fn, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def size_mib(db):
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "c.db"
        src = sqlite3.connect(db)
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.execute("VACUUM")
        dst.close()
        return copy.stat().st_size / (1 << 20)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_all(binary, db):
    """Every page of the files API at 1,000 files a page: (seconds, pages, files)."""
    port = free_port()
    srv = subprocess.Popen([binary, "--db", str(db), "serve", "--listen", f"127.0.0.1:{port}",
                            ], env=ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/api/v1/projects", timeout=5).read()
                break
            except OSError:
                time.sleep(0.05)
        t0 = time.perf_counter()
        url, pages, files = base + "/api/v1/projects/bench/files?limit=1000", 0, 0
        page_times = []
        while url:
            t1 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=600) as r:
                files += len(json.loads(r.read()))
                link = r.headers.get("Link")
            page_times.append(time.perf_counter() - t1)
            pages += 1
            url = base + link[1:link.index(">")] if link else None
        page_all.page_times = page_times
        return time.perf_counter() - t0, pages, files
    finally:
        srv.terminate()
        srv.wait()


def measure(binary, db, n, tmp, label):
    row = {"size": size_mib(db)}
    row["files"] = timed(lambda: run(binary, db, "files", "bench", "--json"))
    row["files_dir"] = timed(lambda: run(binary, db, "files", "bench", "--json", "pkg050/"))
    row["files_name"] = timed(lambda: run(binary, db, "files", "bench", "--json",
                                          "pkg050/mod5/file0505"))
    row["paging"], row["pages"], got = page_all(binary, db)
    if got != n:
        sys.exit(f"{label}: paging listed {got} files of {n}")
    rnd = random.Random(7)
    picks = [sync_bench.path_of(rnd.randrange(n)) for _ in range(50)]
    row["cat50"] = timed(lambda: [run(binary, db, "cat", "bench", p) for p in picks], 1)
    row["grep_rare"] = timed(lambda: run(binary, db, "grep", "-F", f"file {n // 2} generation",
                                         "bench"))
    row["grep_common"] = timed(lambda: subprocess.run(
        [binary, "--db", str(db), "grep", "-F", "lorem", "bench", "--max", "100"], env=ENV,
        capture_output=True))
    row["grep_regex"] = timed(lambda: subprocess.run(
        [binary, "--db", str(db), "grep", "-E", "file 0[0-9]*77 gen", "bench"], env=ENV,
        capture_output=True))
    dest = tmp / f"co-{label}"
    row["checkout"] = timed(lambda: (shutil.rmtree(dest, ignore_errors=True),
                                     run(binary, db, "checkout", "bench", dest)), 1)
    return row


def paging_only(n):
    """--paging: only the files API's pages (the keyset cursor), both binaries on one store
    made by PROJSYNC_BIN: SQLite, or the PostgreSQL database PROJSYNC_BENCH_PG_URL (emptied
    first by the caller) when set. Medians of 3 of the whole walk, and of the first and the
    last ten pages; then the prefix listings and a limited common search (medians of 3)."""
    tmp = Path(tempfile.mkdtemp(prefix="projsync-paging-"))
    try:
        repo = sync_bench.make_repo(tmp, n)
        db = os.environ.get("PROJSYNC_BENCH_PG_URL") or tmp / "p.db"
        run(NEW, db, "project", "add", "bench", repo)
        run(NEW, db, "sync", "bench")
        print(f"{n} generated files, {'PostgreSQL' if isinstance(db, str) else 'SQLite'}")
        print(f"{'':<10}{'all pages (s)':>15}{'first 10 (ms/page)':>20}"
              f"{'last 10 (ms/page)':>20}")
        for label, binary in (("baseline", OLD), ("cursor", NEW)):
            runs = []
            for _ in range(3):
                total, pages, got = page_all(binary, db)
                if got != n:
                    sys.exit(f"{label}: paging listed {got} files of {n}")
                t = page_all.page_times
                runs.append((total, 1000 * sum(t[:10]) / 10, 1000 * sum(t[-10:]) / 10))
            med = [statistics.median(r[k] for r in runs) for k in range(3)]
            print(f"{label:<10}{med[0]:>15.3f}{med[1]:>20.1f}{med[2]:>20.1f}")
        print(f"(pages: {pages})")
        # The other listings the walk serves (a prefix is a range of it; code search's
        # batches resume from a path).
        print(f"\n{'':<10}{'files pkg050/':>15}{'pkg050/mod5/file0505':>22}"
              f"{'grep common --max 100':>23}")
        for label, binary in (("baseline", OLD), ("cursor", NEW)):
            d = timed(lambda: run(binary, db, "files", "bench", "--json", "pkg050/"))
            f = timed(lambda: run(binary, db, "files", "bench", "--json",
                                  "pkg050/mod5/file0505"))
            g = timed(lambda: subprocess.run(
                [binary, "--db", str(db), "grep", "-F", "lorem", "bench", "--max", "100"],
                env=ENV, capture_output=True))
            print(f"{label:<10}{d:>15.3f}{f:>22.3f}{g:>23.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    if argv and argv[0] == "--paging":
        if not OLD:
            sys.exit("set PROJSYNC_BIN_BASELINE to the projsync to compare with")
        paging_only(sync_bench.parse_size(argv[1]) if len(argv) > 1 else 100000)
        return
    n = sync_bench.parse_size(argv[0]) if argv else 100000
    if not OLD:
        sys.exit("set PROJSYNC_BIN_BASELINE to a projsync from before schema 26")
    tmp = Path(tempfile.mkdtemp(prefix="projsync-dirs-"))
    try:
        repo = sync_bench.make_repo(tmp, n)
        a, b = tmp / "a" / "projsync.db", tmp / "b" / "projsync.db"
        a.parent.mkdir()
        b.parent.mkdir()
        run(OLD, a, "project", "add", "bench", repo)
        run(OLD, a, "sync", "bench")
        src = sqlite3.connect(a)
        dst = sqlite3.connect(b)
        src.backup(dst)
        src.close()
        dst.close()
        migrate = timed(lambda: run(NEW, b, "migrate"), 1)
        old = measure(OLD, a, n, tmp, "old")
        new = measure(NEW, b, n, tmp, "new")
        sync_bench.change_files(repo, n)
        old["resync"] = timed(lambda: run(OLD, a, "sync", "bench"), 1)
        new["resync"] = timed(lambda: run(NEW, b, "sync", "bench"), 1)
        for label, db, binary in (("old", a, OLD), ("new", b, NEW)):
            out = json.loads(run(binary, db, "verify", "bench", "--json"))
            if not out["sound"]:
                sys.exit(f"{label}: the re-synced snapshot is not sound: {out}")
        print(f"{n} generated files; migration 0026 of store B: {migrate:.2f} s\n")
        print(f"{'':<28}{'baseline':>12}{'schema 26':>12}{'ratio':>8}")
        names = [("size", "store MiB (VACUUMed)"), ("files", "files --json (s)"),
                 ("files_dir", "files pkg050/ (s)"), ("files_name", "files pkg050/mod5/file0505"),
                 ("paging", "API pages of 1000 (s)"), ("cat50", "cat x50 (s)"),
                 ("grep_rare", "grep rare (s)"), ("grep_common", "grep common --max 100"),
                 ("grep_regex", "grep regex (s)"), ("checkout", "checkout (s)"),
                 ("resync", "re-sync +10 files (s)")]
        for key, title in names:
            print(f"{title:<28}{old[key]:>12.3f}{new[key]:>12.3f}{new[key] / old[key]:>8.2f}")
        print(f"\n(pages: {old['pages']})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
