#!/usr/bin/env python3
"""
Git URL benchmark: projsync syncing a repository served by `git daemon` on loopback, side by
side with git itself in the same run (issue 10, item 5):

- first sync, against `git clone --depth 1 --no-checkout` of the same URL (time);
- a re-sync from main~40 to main~35, against `git fetch --depth 1` in a depth-1 clone made at
  main~40.

Both talk to the daemon through the same counting TCP relay, so "received" is every byte the
server sent on every connection (ref listings included), for projsync and git alike.

The repository is $BENCH_REPO (any git directory with the branch $BENCH_BRANCH, default main;
e.g. a clone of libgit2), else one generated with `git fast-import`: 20,000 files and 200
commits that each touch 1% of them, so that the history weighs far more than the head.
Figures are printed, never asserted.

    PROJSYNC_BIN=build-release/projsync python3 bench/git_url_bench.py [--keep]
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
FILES, COMMITS, TOUCH = 20000, 200, 200

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from git_daemon import GitDaemon  # noqa: E402  (a port bound here, each connection to git daemon --inetd)
from tcp_relay import Relay  # noqa: E402  (counts the bytes sent back to clients: received, take())


def git(*args, cwd=None, env=None, capture=True):
    r = subprocess.run(["git", *args], cwd=cwd, env=env or GIT_ENV, capture_output=capture)
    if r.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode().strip() if capture else ""


def generate(bare):
    """A history much heavier than its head, written with fast-import."""
    git("init", "-q", "--bare", "-b", "main", str(bare))
    out = []
    for c in range(COMMITS):
        out.append(b"commit refs/heads/main\n")
        out.append(b"committer bench <bench@example.com> %d +0000\n" % (1700000000 + c))
        msg = b"commit %d" % c
        out.append(b"data %d\n%s\n" % (len(msg), msg))
        files = range(FILES) if c == 0 else range((c * TOUCH) % FILES, (c * TOUCH) % FILES + TOUCH)
        for i in files:
            body = (b"file %d generation %d\n" % (i, c)) + b"lorem ipsum dolor sit amet " * (1 + i % 8)
            path = b"pkg%03d/mod%d/file%06d.txt" % (i // 1000, (i // 100) % 10, i)
            out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path, len(body), body))
    p = subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input=b"".join(out),
                       env=GIT_ENV, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"git fast-import failed: {p.stderr.decode()}")


def timed(argv, env=None, cwd=None):
    t = time.monotonic()
    r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
    took = time.monotonic() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed: {r.stderr.decode(errors='replace')}")
    return took, r


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def main(argv):
    keep = "--keep" in argv
    tmp = Path(tempfile.mkdtemp(prefix="projsync-git-url-bench-"))
    branch = os.environ.get("BENCH_BRANCH", "main")
    served = tmp / "served"
    served.mkdir()
    bare = served / "r.git"
    src = os.environ.get("BENCH_REPO")
    if src:
        # Objects borrowed through alternates: the served repository is complete for the
        # daemon, and nothing is copied.
        git("init", "-q", "--bare", "-b", "main", str(bare))
        objects = Path(git("rev-parse", "--path-format=absolute", "--git-path", "objects",
                           cwd=src))
        (bare / "objects" / "info" / "alternates").write_text(f"{objects}\n")
        tip = git("rev-parse", f"{branch}^{{commit}}", cwd=src)
    else:
        generate(bare)
        tip = git("rev-parse", "main", cwd=bare)
    old, new = (git("rev-parse", f"{tip}~{n}", cwd=bare) for n in (40, 35))
    changed = len(git("diff-tree", "-r", "--name-only", old, new, cwd=bare).splitlines())
    total = len(git("ls-tree", "-r", "--name-only", old, cwd=bare).splitlines())
    commits = git("rev-list", "--count", old, cwd=bare)
    git("update-ref", "refs/heads/main", old, cwd=bare)

    daemon = GitDaemon(served)
    relay = Relay(daemon.port)
    url = f"git://127.0.0.1:{relay.port}/r.git"
    try:
        genv = GIT_ENV
        t_clone, _ = timed(["git", "clone", "-q", "--depth", "1", "--no-checkout", url,
                            str(tmp / "clone")], env=genv)
        clone_bytes = relay.take()

        env = {k: v for k, v in os.environ.items() if not k.startswith("PROJSYNC_")}
        env.update(HOME=str(tmp / "home"), XDG_DATA_HOME=str(tmp / "home" / "data"))
        db = tmp / "store" / "projsync.db"
        ps = [BIN, "--db", str(db)]
        timed(ps + ["project", "add", "p", url], env=env)
        relay.take()
        t_first, r = timed(ps + ["sync", "p", "--json"], env=env)
        first = json.loads(r.stdout.decode().splitlines()[-1])["summary"]
        first_bytes = relay.take()

        git("update-ref", "refs/heads/main", new, cwd=bare)
        t_re, r = timed(ps + ["sync", "p", "--json"], env=env)
        re = json.loads(r.stdout.decode().splitlines()[-1])["summary"]
        re_bytes = relay.take()
        t_fetch, _ = timed(["git", "-C", str(tmp / "clone"), "fetch", "-q", "--depth", "1",
                            "origin", "main"], env=genv)
        fetch_bytes = relay.take()
    finally:
        daemon.close()

    print(f"repository: {src or 'generated'}: {total} files at main~40, {commits} commits "
          f"of history; main~40 -> main~35 changes {changed} files")
    print(f"first sync:  projsync {t_first:.2f} s, {human(first_bytes)}, "
          f"{first['requests']} requests; git clone --depth 1 --no-checkout {t_clone:.2f} s, "
          f"{human(clone_bytes)}; ratio {t_first / t_clone:.2f}")
    print(f"re-sync:     projsync {t_re:.2f} s, {human(re_bytes)}, {re['requests']} requests; "
          f"git fetch --depth 1 {t_fetch:.2f} s, {human(fetch_bytes)}; bytes ratio "
          f"{re_bytes / max(fetch_bytes, 1):.2f}")
    if keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
