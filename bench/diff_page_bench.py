#!/usr/bin/env python3
"""
The page's diff view of a 10,000-line change (issue 16): a repository whose second commit
rewrites every line of a 10,000-line file (10,000 lines removed, 10,000 added), synced twice,
served by `projsync serve`; bench/diff_page_bench.mjs opens the second sync's page in Debian's
chromium (playwright-core from tests/node_modules: scripts/install-test-tools) and times it
until the diff table is visible. Figures are printed, never asserted.

    PROJSYNC_BIN=build-release/projsync python3 bench/diff_page_bench.py
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = os.environ.get("PROJSYNC_BIN") or str(ROOT / "build-release" / "projsync")
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
LINES = int(os.environ.get("BENCH_LINES", "10000"))


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def main():
    work = Path(tempfile.mkdtemp(prefix="diff-page-bench-"))
    srv = None
    try:
        repo = work / "repo"
        repo.mkdir()
        git("init", "-q", "-b", "main", cwd=repo)
        f = repo / "src" / "big.c"
        f.parent.mkdir()
        f.write_text("".join(f"int value_{i} = {i}; /* the first version */\n" for i in range(LINES)))
        git("add", "-A", cwd=repo)
        git("commit", "-q", "-m", "one", cwd=repo)
        f.write_text("".join(f"int value_{i} = {i * 2}; /* the second version */\n" for i in range(LINES)))
        git("commit", "-qam", "two", cwd=repo)
        env = dict(os.environ, PROJSYNC_DB=str(work / "projsync.db"))
        git("checkout", "-q", "HEAD~1", cwd=repo)
        git("branch", "-f", "bench", "HEAD", cwd=repo)
        subprocess.run([BIN, "project", "add", "big", str(repo), "--branch", "bench"], env=env,
                       check=True, capture_output=True)
        subprocess.run([BIN, "sync", "big"], env=env, check=True, capture_output=True)
        git("branch", "-f", "bench", "main", cwd=repo)
        subprocess.run([BIN, "sync", "big"], env=env, check=True, capture_output=True)
        sync_id = json.loads(subprocess.run([BIN, "history", "big", "--json"], env=env, check=True,
                                            capture_output=True).stdout)[0]["id"]
        # Port 0: the server binds a port of the kernel's choosing and names it on its first
        # line (a port picked here and released could be taken by another process first).
        srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--quiet"], env=env,
                               stdout=subprocess.PIPE)
        line = srv.stdout.readline().decode()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            sys.exit(f"the server did not start: {line!r}")
        base = f"http://127.0.0.1:{m.group(1)}"
        threading.Thread(target=srv.stdout.read, daemon=True).start()  # never a full pipe
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        print(f"a change of {LINES} lines removed and {LINES} added (src/big.c), Debian chromium:")
        r = subprocess.run(["node", str(ROOT / "bench" / "diff_page_bench.mjs")],
                           env=dict(os.environ, BENCH=json.dumps(
                               {"url": f"{base}/projects/big/syncs/{sync_id}",
                                "runs": int(os.environ.get("BENCH_RUNS", "5"))})))
        if r.returncode:
            sys.exit("the browser benchmark failed")
    finally:
        if srv:
            srv.terminate()
            srv.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
