"""
Crash safety (docs/architecture.md §4, rule 5): a sync killed at any moment leaves the store consistent. Nothing it
wrote is visible, the next command that reaps (status, history, sync) marks it failed with
error.code "interrupted" keeping its phase, and the next sync succeeds with the right snapshot,
diffed from the last good one. A live sync in another process is never taken for a dead one.

The binary's test hooks: PROJSYNC_TEST_KILL_AT=<phase>:<n> makes `sync` SIGKILL itself at the
start of the n-th step of that phase (finalize:1 = inside the finalize transaction, before
commit); PROJSYNC_TEST_STEP_DELAY_MS=<ms> sleeps before each step.
"""
import random
import shutil
import signal
import sqlite3
import time

import pytest

from conftest import Projsync, Repo, Result, changes_as_git, one_error_line, parse_events, wait_for

PHASES = ("prepare", "scan", "fetch", "import", "finalize")
KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A repository with two quite different commits c1 -> c2 (branch `target` at c2), and a
    store synced at c1 that each test copies, so every case starts from the same state."""
    base = tmp_path_factory.mktemp("crash")
    repo = Repo.init(base / "repo")
    for d in range(20):
        for f in range(60):
            repo.write(f"d{d:02}/sub/f{f:03}.txt", f"dir {d} file {f}\n" * (1 + f % 7))
    repo.write("bin/tool", "#!/bin/sh\n", exec_bit=True)
    c1 = repo.commit("c1")
    for d in range(20):
        for f in range(0, 60, 4):
            repo.write(f"d{d:02}/sub/f{f:03}.txt", f"changed {d} {f}\n")
        repo.rm(f"d{d:02}/sub/f001.txt")
        repo.mv(f"d{d:02}/sub/f002.txt", f"d{d:02}/renamed{d}.txt")
        for f in range(10):
            repo.write(f"new{d:02}/n{f}.txt", f"new {d} {f} " + "x" * (f * 100))
    repo.chmod_exec("bin/tool", False)
    c2 = repo.commit("c2")
    repo.git("gc", "-q")
    repo.branch("target", c1)

    ps = Projsync(base / "baseline")
    ps.add("p", str(repo.path), "--branch", "target")
    s = ps.sync("p")
    assert s["commit"] == c1
    repo.branch("target", c2)
    return {"repo": repo, "c1": c1, "c2": c2, "baseline": ps.db.parent}


def store_at_c1(world, tmp_path):
    ps = Projsync(tmp_path)
    shutil.rmtree(ps.db.parent)
    shutil.copytree(world["baseline"], ps.db.parent)
    return ps


def integrity_ok(db):
    con = sqlite3.connect(str(db))
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def check_recovers(ps, world, killed_id):
    """The next sync reaches c2 exactly, diffed against c1, chained after the dead one."""
    repo, c1, c2 = world["repo"], world["c1"], world["c2"]
    s = ps.sync("p")
    assert s["commit"] == c2
    assert s["previous_sync_id"] == killed_id
    assert ps.files("p") == repo.ls_tree(c2)
    assert changes_as_git(ps.json("changes", s["id"])) == repo.diff(c1, c2)
    assert ps.project("p")["last_commit"] == c2
    assert ps.ok("cat", "p", "d00/renamed0.txt").outb == repo.blob(
        repo.head(f"{c2}:d00/renamed0.txt"))
    assert integrity_ok(ps.db)


# prepare is a single step; the others run several for this repository: killed on the
# phase's first step (the boundary) and on a later one (mid-phase, with work already done).
@pytest.mark.parametrize("phase,n", [("prepare", 1)] + [(p, n) for p in PHASES[1:]
                                                        for n in (1, 3, 6)])
def test_kill_at_phase_step(world, tmp_path, phase, n):
    ps = store_at_c1(world, tmp_path)
    repo, c1 = world["repo"], world["c1"]
    # Small batches give every phase several steps on this repository, so step 3 is always
    # mid-phase, with work of the phase already written.
    r = ps("sync", "p", "--json", env={"PROJSYNC_TEST_KILL_AT": f"{phase}:{n}",
                                        "PROJSYNC_TEST_BATCH": "2"})
    assert r.rc in KILLED, r

    # Before anything reaps it: readers see exactly the previous snapshot.
    assert ps.files("p") == repo.ls_tree(c1)
    assert ps.project("p")["last_commit"] == c1
    assert ps.ok("cat", "p", "d00/sub/f001.txt").outb == repo.blob(
        repo.head(f"{c1}:d00/sub/f001.txt"))

    hist = ps.history("p")
    dead = hist[0]
    assert dead["status"] == "failed", dead
    assert dead["error"] and dead["error"]["code"] == "interrupted", dead
    if n == 1:
        # Killed on the boundary: the phase's first step is the one that records it, so the
        # sync may still show the phase before (`none` before prepare).
        assert dead["phase"] in (phase, (("none",) + PHASES)[PHASES.index(phase)]), dead
    else:
        assert dead["phase"] == phase, dead
    assert hist[1]["status"] == "succeeded" and hist[1]["commit"] == c1
    assert ps.json("status", "p")["last_succeeded"]["commit"] == c1
    assert integrity_ok(ps.db)
    check_recovers(ps, world, dead["id"])


@pytest.mark.parametrize("phase", PHASES)
def test_kill_first_sync(world, tmp_path, phase):
    """Killed during a project's very first sync: no snapshot appears; the next sync makes it."""
    repo, c2 = world["repo"], world["c2"]
    ps = Projsync(tmp_path)
    ps.add("p", str(repo.path), "--branch", "target")
    r = ps("sync", "p", env={"PROJSYNC_TEST_KILL_AT": f"{phase}:1"})
    assert r.rc in KILLED, r
    assert ps.project("p")["last_commit"] is None
    dead = ps.history("p")[0]
    assert dead["status"] == "failed" and dead["error"]["code"] == "interrupted", dead
    s = ps.sync("p")
    assert s["commit"] == c2 and s["previous_sync_id"] == dead["id"]
    assert ps.files("p") == repo.ls_tree(c2)


@pytest.mark.parametrize("reaper", ["sync", "status"])
def test_reaped_by_sync_and_status(world, tmp_path, reaper):
    """`sync` right after a crash reaps the dead sync itself instead of reporting a conflict;
    `status` reaps it too."""
    ps = store_at_c1(world, tmp_path)
    r = ps("sync", "p", env={"PROJSYNC_TEST_KILL_AT": "import:1"})
    assert r.rc in KILLED, r
    if reaper == "status":
        st = ps.json("status", "p")
        assert not st["running"], st
        assert st["last_sync"]["status"] == "failed", st
        assert st["last_sync"]["error"]["code"] == "interrupted", st
        check_recovers(ps, world, st["last_sync"]["id"])
    else:
        s = ps.sync("p")
        assert s["commit"] == world["c2"]
        hist = ps.history("p")
        assert hist[1]["id"] == s["previous_sync_id"]
        assert hist[1]["error"]["code"] == "interrupted"
        assert ps.files("p") == world["repo"].ls_tree(world["c2"])


def test_kill_from_outside_at_random_moments(world, tmp_path):
    repo, c1, c2 = world["repo"], world["c1"], world["c2"]
    repo.branch("moving", c1)
    ps = Projsync(tmp_path)
    ps.add("q", str(repo.path), "--branch", "moving")
    ps.sync("q")

    delay = {"PROJSYNC_TEST_STEP_DELAY_MS": "25"}
    repo.branch("moving", c2)
    t0 = time.monotonic()
    ps.sync("q", env=delay)
    span = time.monotonic() - t0
    good = c2

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    kills = 0
    for i in range(10):
        target = c1 if good == c2 else c2
        repo.branch("moving", target)
        proc = ps.popen("sync", "q", "--json", env=delay)
        time.sleep(rng.uniform(0.0, span))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        ctx = f"seed={seed} round={i} rc={proc.returncode} stderr={err[-500:]!r}"
        assert proc.returncode in (0,) + KILLED, ctx
        kills += proc.returncode != 0

        # Readers see one whole snapshot: the old one or (if finalize committed) the new one.
        last = ps.project("q")["last_commit"]
        assert last in (good, target), ctx
        if proc.returncode == 0:
            assert last == target, ctx
        assert ps.files("q") == repo.ls_tree(last), ctx
        hist = ps.history("q")
        assert hist[0]["status"] in ("succeeded", "failed"), ctx
        if hist[0]["status"] == "failed":
            assert hist[0]["error"]["code"] == "interrupted", ctx
            assert last == good, ctx
        for newer, older in zip(hist, hist[1:]):
            assert newer["previous_sync_id"] == older["id"], ctx
        good = last

    assert kills >= 3, f"seed={seed}: only {kills} of 10 syncs were killed mid-way"
    assert integrity_ok(ps.db)
    final = c1 if good == c2 else c2
    repo.branch("moving", final)
    s = ps.sync("q")
    assert s["commit"] == final
    assert ps.files("q") == repo.ls_tree(final)
    assert changes_as_git(ps.json("changes", s["id"])) == repo.diff(good, final)


def test_second_sync_while_one_runs_is_a_conflict(world, tmp_path):
    ps = store_at_c1(world, tmp_path)
    first = ps.popen("sync", "p", "--json", env={"PROJSYNC_TEST_STEP_DELAY_MS": "700"})
    try:
        running = wait_for(lambda: ps.json("status", "p")["running"], timeout=30)
        assert running, "the first sync never showed as running"
        for args in (("sync", "p"), ("sync", "p", "--json")):
            r = ps(*args)
            assert r.rc == 4, r
            assert one_error_line(r.err), r
        # Readers that reap must not take the live sync for a dead one.
        hist = ps.history("p")
        assert hist[0]["status"] == "running" and hist[0]["error"] is None, hist[0]
        st = ps.json("status", "p")
        assert st["running"] and st["running"]["id"] == hist[0]["id"], st
        assert first.poll() is None, "the first sync ended too early for this test to mean much"
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err
    events = parse_events(Result(("sync", "p", "--json"), first.returncode, out, err.decode()))
    assert events[-1]["kind"] == "succeeded"
    hist = ps.history("p")
    assert [h["status"] for h in hist] == ["succeeded", "succeeded"]  # nothing else created
    assert hist[0]["commit"] == world["c2"]
