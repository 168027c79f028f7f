#!/usr/bin/env python3
"""
GitHub bytes and requests of issue 10 (items 3 and 4), through the GitHub emulator
(tests/fakehub), printed side by side with git's own transfer of the same change:

- re-sync from main~40 to main~35 (libgit2's shape: 15,606 files, 75 changed) — requests and
  bytes received; bound: <= 2 + 75 requests, <= 0.2 MiB;
- first sync of the same tree with the emulator's recursive-tree limit lowered to 3,000 —
  requests; bound: <= 10 plus one per submodule.

The repository is $BENCH_REPO (a clone of libgit2, branch $BENCH_BRANCH, default main) when
set, else one generated with `git fast-import`: 15,606 files of 0.2-2 KB in 600 directories,
45 commits after the first each touching 15 files (main~40..main~35: 75 files). The 100k-file,
10-changed figure is bench/github_bench.py's "+10" row. Printed, never asserted.

    PROJSYNC_BIN=build-release/projsync python3 bench/github_issue10_bench.py [--keep]
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fakehub.client import FakeHub  # noqa: E402

BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-release" / "projsync")
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", LC_ALL="C",
               GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@e", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@e")
FILES, COMMITS, TOUCH = 15606, 46, 15


def git(*args, cwd=None):
    r = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode().strip()


def generate(bare):
    git("init", "-q", "--bare", "-b", "main", str(bare))
    out = []
    for c in range(COMMITS):
        out.append(b"commit refs/heads/main\ncommitter b <b@e> %d +0000\n" % (1700000000 + c))
        out.append(b"data 9\ncommit %02d\n" % c)
        files = range(FILES) if c == 0 else [(c * 977 + k * 1031) % FILES for k in range(TOUCH)]
        for i in files:
            body = (b"/* file %d, generation %d */\n" % (i, c)) + \
                b"int value_%d = %d;\n" % (i, c) * (5 + (i * 7919) % 60)
            path = b"src/d%03d/f%05d.c" % (i % 600, i)
            out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(body), body))
    p = subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input=b"".join(out),
                       env=GIT_ENV, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"git fast-import failed: {p.stderr.decode()}")


def run(argv, env):
    p = subprocess.run(argv, env=env, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed: {p.stderr.decode(errors='replace')}")


def main(argv):
    tmp = Path(tempfile.mkdtemp(prefix="projsync-gh10-"))
    branch = os.environ.get("BENCH_BRANCH", "main")
    bare = tmp / "r.git"
    if os.environ.get("BENCH_REPO"):
        git("clone", "-q", "--bare", "--no-local", os.environ["BENCH_REPO"], str(bare))
        tip = git("rev-parse", f"{branch}^{{commit}}", cwd=bare)
    else:
        generate(bare)
        tip = git("rev-parse", "main", cwd=bare)
    old, new = (git("rev-parse", f"{tip}~{n}", cwd=bare) for n in (40, 35))
    changed = len(git("diff-tree", "-r", "--name-only", old, new, cwd=bare).splitlines())
    total = len(git("ls-tree", "-r", "--name-only", old, cwd=bare).splitlines())
    subs = sum(1 for line in git("ls-tree", "-r", old, cwd=bare).splitlines()
               if line.startswith("160000"))
    env = {k: v for k, v in GIT_ENV.items() if not k.startswith("PROJSYNC_")}
    env.pop("GITHUB_TOKEN", None)
    try:
        with FakeHub.start() as hub:
            env["PROJSYNC_GITHUB_API"] = hub.url
            hub.add_repo("bench/r", str(bare))
            ps = [BIN, "--db", str(tmp / "db" / "projsync.db")]
            (tmp / "db").mkdir()
            git("update-ref", f"refs/heads/{branch}", old, cwd=bare)
            run(ps + ["project", "add", "p", "github:bench/r", "--branch", branch], env)
            hub.truncate_at(3000)
            hub.reset()
            run(ps + ["sync", "p"], env)
            first = hub.counters()
            hub.truncate_at(100000)
            git("update-ref", f"refs/heads/{branch}", new, cwd=bare)
            hub.reset()
            run(ps + ["sync", "p"], env)
            resync = hub.counters()
    finally:
        if "--keep" in argv:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    kinds = lambda c: " ".join(f"{k}:{n}" for k, n in sorted(c["by_kind"].items()) if n)
    print(f"repository: {total} files, {subs} submodule(s); main~40 -> main~35: {changed} files")
    print(f"first sync, tree limit 3,000: {first['total']} requests "
          f"(bound {10 + subs}), {first['bytes'] / 2**20:.2f} MiB; {kinds(first)}")
    print(f"re-sync main~40 -> main~35: {resync['total']} requests (bound {2 + changed}), "
          f"{resync['bytes'] / 2**20:.3f} MiB received (bound 0.2); {kinds(resync)}")


if __name__ == "__main__":
    main(sys.argv[1:])
