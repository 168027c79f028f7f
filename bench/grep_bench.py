#!/usr/bin/env python3
"""
Code search benchmark (issue 13), `git grep` on a checkout as the peer in the same run:

- `projsync grep` (the CLI, process start included) of a rare literal and a common one (first
  100 matches, `--max 100`), and of a regex with a literal core, at the latest sync and at an
  old one; `git grep -n` (piped into `head -n 100`, so it stops there too) on a checkout of the
  same commit;
- the first sync with the code index against the first sync of a project with
  `--no-code-index` (each in a store of its own);
- the index size: what the indexed store weighs more than the other one, per MiB of the text
  files it indexed;
- the same on a generated repository of $BENCH_SCALE_FILES files (default 100,000) to show how
  it scales.

The repository is $BENCH_REPO (any git repository; e.g. a clone of libgit2, 15,606 files), at
$BENCH_BRANCH (default: its HEAD); the old sync is $BENCH_OLD commits back (default 2000,
first parent). Without BENCH_REPO only the generated repository is measured. Figures are printed,
never asserted.

    BENCH_REPO=/path/to/libgit2 PROJSYNC_BIN=build-release/projsync python3 bench/grep_bench.py
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

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-release" / "projsync")
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MIB = 1024 * 1024


def git(*args, cwd=None, inp=None):
    r = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, input=inp)
    if r.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="replace").strip()


def ps(db, *args, check=True):
    """Runs projsync; returns the result and the wall time. ps.cpu is its CPU time (user + sys):
    on a shared machine wall time mostly measures the other load."""
    env = dict(os.environ, PROJSYNC_DB=str(db))
    u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([BIN, *args], env=env, capture_output=True)
    dt = time.perf_counter() - t0
    u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ps.cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
    if check and r.returncode not in (0, 1):
        sys.exit(f"projsync {' '.join(args)} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r, dt


def db_bytes(db):
    return sum(p.stat().st_size for p in Path(db).parent.glob(Path(db).name + "*"))


def text_bytes(repo, rev):
    """Bytes of the text files at rev (git's binary test: a NUL in the first 8000 bytes)."""
    ids = git("ls-tree", "-r", rev, cwd=repo).splitlines()
    blobs = [ln.split()[2] for ln in ids if ln.split()[1] == "blob"]
    r = subprocess.run(["git", "cat-file", "--batch"], cwd=repo, env=GIT_ENV, capture_output=True,
                       input=("\n".join(blobs) + "\n").encode())
    out, pos, total = r.stdout, 0, 0
    while pos < len(out):
        nl = out.index(b"\n", pos)
        size = int(out[pos:nl].split()[2])
        body = out[nl + 1:nl + 1 + size]
        if b"\0" not in body[:8000] and size <= 8 * MIB:
            total += size
        pos = nl + 1 + size + 1
    return total


def median_ms(fn):
    times = []
    for _ in range(RUNS):
        times.append(fn())
    return statistics.median(times) * 1000


def first_syncs(work, repo, branch, label):
    """First sync with and without the code index, each in its own store."""
    res = {}
    for kind, extra in (("index", []), ("noindex", ["--no-code-index"])):
        db = work / f"{label}-{kind}" / "projsync.db"
        db.parent.mkdir(parents=True)
        ps(db, "project", "add", "p", str(repo), "--branch", branch, *extra)
        r, dt = ps(db, "sync", "p", "--json")
        if r.returncode != 0:
            sys.exit(f"sync failed: {r.stderr.decode(errors='replace')}")
        res[kind] = (db, dt, db_bytes(db))
        print(f"first sync {kind}: {dt:.2f} s wall, {ps.cpu:.2f} s CPU")
    return res


def last_sync_id(db):
    import json
    r, _ = ps(db, "history", "p", "--json")
    return json.loads(r.stdout)[0]["id"]


def grep_table(db, sync_id, checkout, patterns):
    rows = []
    for label, pat, regex in patterns:
        args = ["grep", pat, "p", "--at", str(sync_id), "--max", "100"] + (["-E"] if regex else ["-F"])
        r, _ = ps(db, *args)
        n = len(r.stdout.splitlines())
        cpus = []

        def run():
            dt = ps(db, *args)[1]
            cpus.append(ps.cpu)
            return dt
        ms = median_ms(run)
        label = f"{label} (cpu {statistics.median(cpus) * 1000:.0f} ms)"
        gargs = ["git", "grep", "-n", "-P" if regex else "-F", "-e", pat]

        def peer():
            t0 = time.perf_counter()
            p1 = subprocess.Popen(gargs, cwd=checkout, env=GIT_ENV, stdout=subprocess.PIPE)
            out = subprocess.run(["head", "-n", "100"], stdin=p1.stdout, capture_output=True).stdout
            p1.stdout.close()
            p1.wait()
            peer.lines = out.count(b"\n")
            return time.perf_counter() - t0
        gms = median_ms(peer)
        rows.append((label, pat, n, ms, peer.lines, gms))
    return rows


def print_rows(title, rows):
    print(f"\n{title}")
    print(f"  {'pattern':34} {'lines':>5} {'projsync':>10} {'git grep':>10}")
    for label, pat, n, ms, gn, gms in rows:
        print(f"  {label + ' ' + repr(pat):34} {n:5d} {ms:8.1f} ms {gms:8.1f} ms"
              + ("" if n == gn else f"  (git: {gn} lines)"))


def checkout(repo, rev, dest):
    git("worktree", "add", "-q", "--detach", str(dest), rev, cwd=repo)
    return dest


def bench_repo(work, src, branch, old_back, patterns):
    repo = work / "repo"
    git("clone", "-q", "--no-hardlinks", str(src), str(repo))
    head = git("rev-parse", branch, cwd=repo)
    old = git("rev-parse", f"{head}~{old_back}", cwd=repo)
    git("branch", "-f", "bench", old, cwd=repo)
    files = len(git("ls-tree", "-r", "--name-only", old, cwd=repo).splitlines())
    text = text_bytes(repo, old)
    print(f"repository {src}: old {old[:10]} ({old_back} back, {files} files, "
          f"{text / MIB:.1f} MiB of text), head {head[:10]}")
    res = first_syncs(work, repo, "bench", "lib")
    (db, t_idx, b_idx), (_, t_no, b_no) = res["index"], res["noindex"]
    print(f"first sync: with the code index {t_idx:.2f} s, --no-code-index {t_no:.2f} s "
          f"({t_idx / t_no:.2f}x)")
    print(f"store: {b_idx / MIB:.1f} MiB with the index, {b_no / MIB:.1f} MiB without: "
          f"index {(b_idx - b_no) / MIB:.1f} MiB = {(b_idx - b_no) / text:.2f} MiB per MiB of text")
    old_id = last_sync_id(db)
    git("branch", "-f", "bench", head, cwd=repo)
    r, dt = ps(db, "sync", "p", "--json")
    print(f"re-sync to the head ({old_back} commits): {dt:.2f} s")
    new_id = last_sync_id(db)
    co_new = checkout(repo, head, work / "co-new")
    co_old = checkout(repo, old, work / "co-old")
    print_rows(f"latest sync #{new_id} (median of {RUNS})", grep_table(db, new_id, co_new, patterns))
    print_rows(f"old sync #{old_id} (median of {RUNS})", grep_table(db, old_id, co_old, patterns))


def generate(bare, nfiles):
    """nfiles C-like text files (~1 KiB each) in 1,000 directories, one commit."""
    git("init", "-q", "--bare", "-b", "main", str(bare))
    words = [b"alpha", b"beta", b"gamma", b"delta", b"buffer", b"return", b"struct", b"index"]
    out = [b"commit refs/heads/main\ncommitter bench <bench@example.com> 1700000000 +0000\n"
           b"data 4\ngen\n"]
    for i in range(nfiles):
        lines = [b"/* file %d */" % i]
        for j in range(30):
            w = words[(i * 7 + j) % len(words)]
            lines.append(b"static int %s_%d_%d(int x) { return x + %d; }" % (w, i % 97, j, j))
        if i % 5000 == 0:
            lines.append(b"const char *marker = \"zebra_quartz_%d\";" % i)
        body = b"\n".join(lines) + b"\n"
        path = b"d%03d/f%06d.c" % (i % 1000, i)
        out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(body), body))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input=b"".join(out), env=GIT_ENV,
                   check=True)


def bench_scale(work, nfiles):
    bare = work / "gen.git"
    generate(bare, nfiles)
    text = text_bytes(bare, "main")
    print(f"\ngenerated repository: {nfiles} files, {text / MIB:.1f} MiB of text")
    res = first_syncs(work, bare, "main", "gen")
    (db, t_idx, b_idx), (_, t_no, b_no) = res["index"], res["noindex"]
    print(f"first sync: with the code index {t_idx:.2f} s, --no-code-index {t_no:.2f} s "
          f"({t_idx / t_no:.2f}x)")
    print(f"index {(b_idx - b_no) / MIB:.1f} MiB = {(b_idx - b_no) / text:.2f} MiB per MiB of text")
    co = work / "gen-co"
    git("clone", "-q", str(bare), str(co))
    rows = grep_table(db, last_sync_id(db), co, [
        ("rare", "zebra_quartz_5000", False),
        ("common", "return", False),
        ("regex", r"buffer_\d+_29\(", True)])
    print_rows(f"{nfiles} files (median of {RUNS})", rows)


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"no projsync binary at {BIN} (meson setup build-release --buildtype=release; ninja)")
    work = Path(tempfile.mkdtemp(prefix="grep-bench-"))
    try:
        src = os.environ.get("BENCH_REPO")
        if src:
            branch = os.environ.get("BENCH_BRANCH") or "HEAD"
            bench_repo(work, src, branch, int(os.environ.get("BENCH_OLD", "2000")), [
                ("rare", os.environ.get("BENCH_RARE", "git_odb_backend_loose"), False),
                ("common", os.environ.get("BENCH_COMMON", "error"), False),
                ("regex", os.environ.get("BENCH_REGEX", r"git_repository_\w+\(repo, "), True)])
        n = int(os.environ.get("BENCH_SCALE_FILES", "100000"))
        if n:
            bench_scale(work, n)
    finally:
        if "--keep" in sys.argv:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
