#!/usr/bin/env python3
"""
Schema 26 on PostgreSQL (a file version names its directory by id, issue 14): what the tables
weigh and what listings cost, against a baseline binary of the schema before, side by side on
the same PostgreSQL server (docs/performance.md, "Schema 26"). Figures are printed, never
asserted.

  1. History: a repository (--repo, e.g. a clone of libgit2) synced at REV~N .. REV (six syncs
     evenly spread, as bench/store_bench.py does): pg_total_relation_size of file_versions,
     dir_trees, dirs and of the whole store, and the six syncs' wall time.
  2. Generated repository of --generated files (bench/sync_bench.py's layout: ~100 files per
     directory, two levels deep): first sync; `files --json` of the whole snapshot and of one
     prefix; the files API paged by `after` (the first pages, and one page from the middle);
     `grep` of a rare literal, a common one (--max 100), a regex with a literal core and one
     without 3 literal characters (--max 100: the candidates come in batches in path order);
     the +10-file re-sync. Each figure the median of --runs runs.

  3. With --many-dirs N: a generated repository of N directories holding one file each
     (`dNNN/eNNN/f`, two levels): code search without a usable trigram (`^f.l`), whose
     batches walk the directories in path order (pg_code.c, walk): `grep --max 100`, the API's
     first page of 100 and one page from the middle (`after`), each the median of --runs runs,
     the binaries interleaved run by run.

    PROJSYNC_BIN=build-release/projsync PROJSYNC_BIN_BASELINE=/path/to/old/projsync \\
        tests/pg/with-pg python3 bench/pg_dir_ids_bench.py --repo /path/to/libgit2 --rev main
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_bench as sb  # noqa: E402

PG = os.environ.get("PROJSYNC_TEST_PG_URL")
MIB = 1 << 20


def new_db(name):
    for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", "-X", "-q", PG, "-c", sql], check=True, capture_output=True)
    return PG.rpartition("/")[0] + "/" + name


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", url, "-c", sql], check=True,
                          capture_output=True, text=True).stdout.strip()


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          env=sb.GIT_ENV, text=True).stdout.strip()


def run(binary, db, *args, out=None):
    return sb.timed([binary, "--db", db, *map(str, args)], sb.GIT_ENV, out=out)


def median(f, runs):
    return statistics.median(f() for _ in range(runs))


def sizes(db):
    q = ("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
         "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema()")
    psql(db, "VACUUM ANALYZE")
    out = {}
    for line in psql(db, q).splitlines():
        name, size = line.split("|")
        out[name] = int(size)
    return out


def history(tmp, label, binary, src, revs):
    work = tmp / f"src-{label}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(src), str(work)], check=True,
                   env=sb.GIT_ENV)
    db = new_db(f"hist_{label}")
    git(work, "update-ref", "refs/heads/benchsync", revs[0])
    run(binary, db, "project", "add", "bench", work, "--branch", "benchsync")
    t = 0.0
    for rev in revs:
        git(work, "update-ref", "refs/heads/benchsync", rev)
        t += run(binary, db, "sync", "bench")
    s = sizes(db)
    rows = psql(db, "SELECT count(*) FROM file_versions") + " file versions, " + \
        psql(db, "SELECT count(*) FROM dir_trees") + " tree rows" + \
        (", " + psql(db, "SELECT count(*) FROM dirs") + " dirs" if "dirs" in s else "")
    meta = sum(s.get(k, 0) for k in ("file_versions", "dir_trees", "dirs"))
    print(f"  {label:9}: store {sum(s.values()) / MIB:7.2f} MiB; file_versions "
          f"{s['file_versions'] / MIB:5.2f}, dir_trees {s['dir_trees'] / MIB:5.2f}, dirs "
          f"{s.get('dirs', 0) / MIB:5.2f} (together {meta / MIB:5.2f} MiB); {rows}; "
          f"6 syncs {t:.2f}s", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
    return time.perf_counter() - t0, json.loads(body)


def generated(tmp, label, binary, repo, n, runs):
    db = new_db(f"gen_{label}")
    run(binary, db, "project", "add", "bench", repo)
    first = run(binary, db, "sync", "bench")
    files = median(lambda: run(binary, db, "files", "bench", "--json"), runs)
    prefix = median(lambda: run(binary, db, "files", "bench", "pkg050/", "--json"), runs)
    port = free_port()
    srv = subprocess.Popen([binary, "--db", db, "serve", "--listen", f"127.0.0.1:{port}",
                            "--workers", "1"], env=sb.GIT_ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/v1/projects/bench/files?limit=1000"
        for _ in range(100):
            try:
                get(base)
                break
            except OSError:
                time.sleep(0.1)
        pages = []
        after = None
        for _ in range(5):
            dt, page = get(base + (f"&after={after}" if after else ""))
            pages.append(dt)
            after = page[-1]["path"]
        mid = median(lambda: get(base + f"&after={sb.path_of(n // 2)}")[0], runs)
    finally:
        srv.terminate()
        srv.wait()
    greps = {}
    for key, opts, pattern, extra in [
            ("rare", ["-F"], f"file {n // 2 + 7} generation", []),
            ("common", ["-F"], "lorem ipsum", ["--max", "100"]),
            ("regex", ["-E"], r"file 5\d\d07 gen", ["--max", "100"]),
            ("no-trigram", ["-E"], r"^f.l", ["--max", "100"])]:
        argv = [binary, "--db", db, "grep", *opts, pattern, "bench", *extra]

        def one(argv=argv):
            t0 = time.perf_counter()
            subprocess.run(argv, env=sb.GIT_ENV, capture_output=True)
            return time.perf_counter() - t0
        greps[key] = median(one, runs)
    sb.change_files(Path(repo), n)
    resync = run(binary, db, "sync", "bench")
    print(f"  {label:9}: first sync {first:.2f}s; files --json {files * 1000:.0f} ms, "
          f"prefix pkg050/ {prefix * 1000:.0f} ms; API pages of 1000: first five "
          + "/".join(f"{p * 1000:.0f}" for p in pages) + f" ms, one from the middle "
          f"{mid * 1000:.0f} ms; grep " + ", ".join(f"{k} {v * 1000:.0f} ms"
                                                  for k, v in greps.items())
          + f"; +10-file re-sync {resync:.2f}s", flush=True)


def many_dirs(tmp, bins, n, runs):
    """Section 3: the walk of code search over many directories, the binaries interleaved."""
    width = len(str(n - 1))
    paths = [f"d{i // 100:0{width}}/e{i:0{width}}/f" for i in range(n)]
    repo = tmp / "many-dirs.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True,
                   env=sb.GIT_ENV)
    sb.fast_import(repo, sb.commit_stream(f"{n} directories",
                                          ((p, f"file {i}\n".encode())
                                           for i, p in enumerate(paths))))
    setups = []
    for label, binary in bins:
        db = new_db(f"many_{label}")
        run(binary, db, "project", "add", "bench", repo)
        first = run(binary, db, "sync", "bench")
        psql(db, "VACUUM ANALYZE")
        port = free_port()
        srv = subprocess.Popen([binary, "--db", db, "serve", "--listen", f"127.0.0.1:{port}",
                                "--workers", "1"], env=sb.GIT_ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        setups.append((label, binary, db, port, srv, first))
    api = "/api/v1/projects/bench/search/code?q=%5Ef.l&regex=true&limit=100"
    mid = f"{api}&after=1:{paths[n // 2]}"
    times = {label: {"grep": [], "page": [], "mid": []} for label, *_ in setups}
    try:
        for _, _, _, port, _, _ in setups:
            for _ in range(100):
                try:
                    get(f"http://127.0.0.1:{port}{api}")
                    break
                except OSError:
                    time.sleep(0.1)
        for _ in range(runs):
            for label, binary, db, port, _, _ in setups:
                t0 = time.perf_counter()
                subprocess.run([binary, "--db", db, "grep", "-E", "^f.l", "bench", "--max",
                                "100"], env=sb.GIT_ENV, capture_output=True, check=True)
                times[label]["grep"].append(time.perf_counter() - t0)
                times[label]["page"].append(get(f"http://127.0.0.1:{port}{api}")[0])
                dt, body = get(f"http://127.0.0.1:{port}{mid}")
                assert len(body) == 100 and body[0]["path"] > paths[n // 2], body[:1]
                times[label]["mid"].append(dt)
    finally:
        for *_, srv, _ in setups:
            srv.terminate()
            srv.wait()
    for label, _, db, _, _, first in setups:
        t = {k: sorted(v) for k, v in times[label].items()}
        print(f"  {label:9}: {psql(db, 'SELECT count(*) FROM dirs')} dirs, first sync "
              f"{first:.2f}s; ^f.l: grep --max 100 " + ", API first page ".join(
                  f"{v[0] * 1000:.1f} / {statistics.median(v) * 1000:.1f}" for v in
                  (t["grep"], t["page"])) + f", API page from the middle "
              f"{t['mid'][0] * 1000:.1f} / {statistics.median(t['mid']) * 1000:.1f} ms "
              "(min / median)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--depth", type=int, default=200)
    ap.add_argument("--generated", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--many-dirs", type=int, default=0)
    args = ap.parse_args()
    if not PG:
        sys.exit("PROJSYNC_TEST_PG_URL is not set (run under tests/pg/with-pg)")
    bins = [("projsync", os.environ.get("PROJSYNC_BIN") or str(sb.ROOT / "build-release" /
                                                              "projsync"))]
    if os.environ.get("PROJSYNC_BIN_BASELINE"):
        bins.append(("baseline", os.environ["PROJSYNC_BIN_BASELINE"]))
    tmp = Path(tempfile.mkdtemp(prefix="projsync-pg-dirids-"))
    try:
        if args.repo:
            fp = git(args.repo, "rev-list", "--first-parent", args.rev).split()
            depth = min(args.depth, len(fp) - 1)
            revs = [fp[depth - depth * i // 5] for i in range(6)]
            print(f"history: {args.repo} at {args.rev}~{depth} .. {args.rev} (6 syncs)")
            for label, b in bins:
                history(tmp, label, b, args.repo, revs)
        if args.generated:
            print(f"generated: {args.generated} files")
            for label, b in bins:
                (tmp / label).mkdir()
                repo = sb.make_repo(tmp / label, args.generated)
                generated(tmp, label, b, str(repo), args.generated, args.runs)
        if args.many_dirs:
            print(f"many directories: {args.many_dirs} of one file each")
            many_dirs(tmp, bins, args.many_dirs, args.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
