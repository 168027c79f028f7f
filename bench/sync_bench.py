#!/usr/bin/env python3
"""
Sync benchmark: times the real projsync binary on generated repositories of 1k, 10k and 100k
files (made fast with `git fast-import`), for a first sync, a no-op re-sync and an incremental
re-sync after 10 changed files. git itself is measured in the same run as a peer (a full local
clone; a fetch of the 10-file change), so the figures can be read against a known yardstick.
Figures are printed, never asserted.

    PROJSYNC_BIN=build-release/projsync python3 bench/sync_bench.py [1k 10k 100k ...] [--keep]

`make bench` runs it against a release build.
"""
import json
import os
import shutil
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
CHANGED = 10
# git's own allocations only: some sandboxes make each brk() cost ~100 us, which turns a
# 100k-file fast-import from a second into minutes. Never set for the projsync runs.
GIT_FAST_ENV = dict(GIT_ENV, GLIBC_TUNABLES="glibc.malloc.top_pad=67108864:"
                    "glibc.malloc.trim_threshold=1073741824")


def parse_size(s):
    s = s.lower()
    mult = 1000 if s.endswith("k") else 1
    return int(s.rstrip("k")) * mult


def path_of(i):
    # Nested like a real project: ~100 files per directory, two levels deep.
    return f"pkg{i // 1000:03}/mod{(i // 100) % 10}/file{i:06}.txt"


def content_of(i, gen=0):
    return (f"file {i} generation {gen}\n" + "lorem ipsum dolor sit amet " * (1 + i % 8)).encode()


def fast_import(repo, commands):
    p = subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=commands,
                       env=GIT_FAST_ENV, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"git fast-import failed: {p.stderr.decode()}")


def commit_stream(msg, files, parent=None):
    out = [b"commit refs/heads/main\n", b"committer bench <bench@example.com> 1700000000 +0000\n",
           b"data %d\n%s\n" % (len(msg), msg.encode())]
    if parent:
        out.append(b"from %s\n" % parent.encode())
    for path, data in files:
        out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    return b"".join(out)


def make_repo(dirpath, n):
    repo = dirpath / f"repo-{n}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True,
                   env=GIT_ENV)
    fast_import(repo, commit_stream(f"{n} files", ((path_of(i), content_of(i))
                                                   for i in range(n))))
    return repo


def change_files(repo, n):
    head = git_out(repo, "rev-parse", "main")
    step = max(1, n // CHANGED)
    files = [(path_of(i), content_of(i, 1)) for i in range(0, n, step)][:CHANGED]
    fast_import(repo, commit_stream("change 10 files", files, parent=head))


def git_out(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True,
                          capture_output=True).stdout.decode().strip()


def timed(argv, env=None, cwd=None, out=None):
    """Wall time of one run; a failed run ends the benchmark. `out` (a list) gets stdout."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed ({p.returncode}): "
                 f"{p.stderr.decode(errors='replace')[-2000:]}")
    if out is not None:
        out.append(p.stdout)
    return dt


def bench_one(tmp, n):
    t0 = time.perf_counter()
    repo = make_repo(tmp, n)
    gen = time.perf_counter() - t0
    db = tmp / f"store-{n}" / "projsync.db"
    db.parent.mkdir()
    env = {k: v for k, v in GIT_ENV.items() if not k.startswith("PROJSYNC_")}
    ps = [BIN, "--db", str(db)]
    timed(ps + ["project", "add", "bench", str(repo)], env)
    row = {"files": n, "generate": gen}
    row["first"] = timed(ps + ["sync", "bench"], env)
    row["noop"] = timed(ps + ["sync", "bench"], env)
    # Peer: git itself moving the same data: a full clone (--no-local: through the pack
    # protocol, not hard links), then a fetch of the 10-file change.
    clone = tmp / f"clone-{n}.git"
    row["git_clone"] = timed(["git", "clone", "-q", "--bare", "--no-local", str(repo),
                              str(clone)], GIT_ENV)
    change_files(repo, n)
    row["git_fetch"] = timed(["git", "fetch", "-q", "origin", "main:main"], GIT_ENV, clone)
    row["incr"] = timed(ps + ["sync", "bench"], env)
    listing = []
    row["files_list"] = timed(ps + ["files", "bench", "--json"], env, out=listing)
    # Not a figure but a sanity check: a fast sync of the wrong snapshot measures nothing.
    if len(json.loads(listing[0])) != n:
        sys.exit(f"projsync lists {len(json.loads(listing[0]))} files, the repository has {n}")
    row["store_mb"] = sum(f.stat().st_size for f in db.parent.iterdir()) / 1e6
    return row


def main(argv):
    keep = "--keep" in argv
    sizes = [parse_size(a) for a in argv if not a.startswith("--")] or [1000, 10000, 100000]
    if not os.access(BIN, os.X_OK):
        sys.exit(f"projsync binary not found at {BIN} (set PROJSYNC_BIN)")
    tmp = Path(tempfile.mkdtemp(prefix="projsync-bench-"))
    print(f"binary: {BIN}\nwork dir: {tmp}\n")
    cols = [("files", "files", "{:>8}"), ("generate", "gen s", "{:>7.2f}"),
            ("first", "first s", "{:>8.3f}"), ("noop", "no-op s", "{:>8.3f}"),
            ("incr", f"+{CHANGED} s", "{:>8.3f}"), ("files_list", "files s", "{:>8.3f}"),
            ("store_mb", "store MB", "{:>9.1f}"), ("git_clone", "git clone", "{:>10.3f}"),
            ("git_fetch", "git fetch", "{:>10.3f}")]
    header = " ".join(f"{title:>{len(fmt.format(0))}}" for _, title, fmt in cols)
    print(header)
    print("-" * len(header))
    try:
        for n in sizes:
            row = bench_one(tmp, n)
            print(" ".join(fmt.format(row[key]) for key, _, fmt in cols), flush=True)
    finally:
        if keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\nfirst = first sync; no-op = re-sync with an unmoved head; "
          f"+{CHANGED} = re-sync after {CHANGED} changed files;\nfiles = `files --json` of the "
          "snapshot; git clone/fetch = the same transfers done by git, for comparison.")


if __name__ == "__main__":
    main(sys.argv[1:])
