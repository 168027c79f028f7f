#!/usr/bin/env python3
"""
GitHub sync benchmark: the real projsync binary syncs generated repositories of 1k, 10k and 100k
files (bench/sync_bench.py's generator) as `github:bench/repo-N` through the GitHub emulator
(tests/fakehub, a local subprocess), for a first sync, a no-op re-sync and a re-sync after 10
changed files. For each it prints what GitHub would bill and carry: upstream requests (from the
emulator's log), 304s, bytes of response bodies, and wall time. Printed, never asserted.

    PROJSYNC_BIN=build-release/projsync python3 bench/github_bench.py [1k 10k 100k ...] [--keep]

The emulator is a Python server reading git with the git CLI, so the times include its own cost
(real GitHub is further away but not slower per request); the request and byte counts are the
connector's own.
"""
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import sync_bench  # noqa: E402
from fakehub.client import FakeHub  # noqa: E402

BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-release" / "projsync")


def run(argv, env):
    import subprocess
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, capture_output=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed ({p.returncode}): "
                 f"{p.stderr.decode(errors='replace')[-2000:]}")
    return dt, p.stdout


def measured(hub, argv, env):
    hub.reset()
    dt, _ = run(argv, env)
    c = hub.counters()
    kinds = " ".join(f"{k}:{n}" for k, n in sorted(c["by_kind"].items()) if n)
    return {"time": dt, "requests": c["total"], "not_modified": c["not_modified"],
            "bytes": c["bytes"], "kinds": kinds}


def bench_one(tmp, hub, n):
    repo = sync_bench.make_repo(tmp, n)
    hub.add_repo(f"bench/repo-{n}", repo)
    db = tmp / f"store-{n}" / "projsync.db"
    db.parent.mkdir()
    env = {k: v for k, v in sync_bench.GIT_ENV.items() if not k.startswith("PROJSYNC_")}
    env["PROJSYNC_GITHUB_API"] = hub.url
    env.pop("GITHUB_TOKEN", None)
    ps = [BIN, "--db", str(db)]
    run(ps + ["project", "add", "bench", f"github:bench/repo-{n}"], env)
    rows = {"first": measured(hub, ps + ["sync", "bench"], env),
            "noop": measured(hub, ps + ["sync", "bench"], env)}
    sync_bench.change_files(repo, n)
    rows["incr"] = measured(hub, ps + ["sync", "bench"], env)
    _, listing = run(ps + ["files", "bench", "--json"], env)
    if len(json.loads(listing)) != n:
        sys.exit(f"projsync lists {len(json.loads(listing))} files, the repository has {n}")
    return rows


def human(nbytes):
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000


def main(argv):
    keep = "--keep" in argv
    sizes = [sync_bench.parse_size(a) for a in argv if not a.startswith("--")] or \
        [1000, 10000, 100000]
    if not os.access(BIN, os.X_OK):
        sys.exit(f"projsync binary not found at {BIN} (set PROJSYNC_BIN)")
    tmp = Path(tempfile.mkdtemp(prefix="projsync-ghbench-"))
    print(f"binary: {BIN}\nwork dir: {tmp}\n")
    print(f"{'files':>8} | {'sync':<7} | {'requests':>8} | {'304s':>4} | {'bytes':>9} | "
          f"{'time s':>7} | requests by endpoint")
    print("-" * 100)
    with FakeHub.start() as hub:
        try:
            for n in sizes:
                rows = bench_one(tmp, hub, n)
                for label, key in (("first", "first"), ("no-op", "noop"),
                                   ("+10", "incr")):
                    r = rows[key]
                    print(f"{n:>8} | {label:<7} | {r['requests']:>8} | {r['not_modified']:>4} | "
                          f"{human(r['bytes']):>9} | {r['time']:>7.3f} | {r['kinds']}",
                          flush=True)
        finally:
            if keep:
                print(f"\nkept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    print("\nrequests = upstream HTTP requests (the tarball's redirect and its download count "
          "as two);\nbytes = response bodies received; +10 = re-sync after 10 changed files.")


if __name__ == "__main__":
    main(sys.argv[1:])
