"""
The commits of a sync (issue 16 item 2): every sync records its head commit (subject, author,
committer) and the commits since the previous succeeded sync; `projsync log`, the API, history
and status show them. The expected answers are git's own: `git log PREV..HEAD` on the same real
repositories (merges, a force-push, a multi-line subject), served locally, over file:// (the
shallow cache) and through the GitHub emulator (the compare's commits).
"""
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import Projsync
from server_util import Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fakehub.client import FakeHub  # noqa: E402

# One committer time per commit, a minute apart, so git's date order is not left to ties.
_clock = iter(range(1_700_000_000, 1_800_000_000, 60))


def commit(repo, monkeypatch, msg, path=None, author=None):
    t = next(_clock)
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{t} +0000")
    monkeypatch.setenv("GIT_AUTHOR_DATE", f"@{t - 3600} +0200")
    if author:
        monkeypatch.setenv("GIT_AUTHOR_NAME", author[0])
        monkeypatch.setenv("GIT_AUTHOR_EMAIL", author[1])
    repo.write(path or f"f{t}.txt", f"{msg}\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", msg)
    monkeypatch.delenv("GIT_AUTHOR_NAME", raising=False)
    monkeypatch.delenv("GIT_AUTHOR_EMAIL", raising=False)
    return repo.head()


def merge(repo, monkeypatch, branch, msg):
    t = next(_clock)
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"@{t} +0000")
    monkeypatch.setenv("GIT_AUTHOR_DATE", f"@{t} +0000")
    repo.git("merge", "-q", "--no-ff", "-m", msg, branch)
    return repo.head()


def git_log(repo, rng):
    """`git log RANGE` as log --json shapes it (dates in UTC)."""
    from datetime import datetime, timezone

    def iso(s):
        return datetime.fromtimestamp(int(s), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    out = repo.git("log", "-z", "--format=%H%x01%P%x01%an%x01%ae%x01%at%x01%cn%x01%ce%x01%ct"
                   "%x01%s%x01%B", rng)
    rows = []
    for rec in out.split("\0"):
        if not rec.strip("\n"):
            continue
        h, p, an, ae, at, cn, ce, ct, s, b = rec.lstrip("\n").split("\x01")
        rows.append({"sha": h, "parents": p.split(), "subject": s,
                     "author": {"name": an, "email": ae, "date": iso(at)},
                     "committer": {"name": cn, "email": ce, "date": iso(ct)}, "message": b})
    return rows


def same_commits(got, want):
    assert [c["sha"] for c in got] == [c["sha"] for c in want]
    for g, w in zip(got, want):
        # %B is the message with its trailing newline; GitHub strips it: compare the text.
        assert g["message"].rstrip("\n") == w["message"].rstrip("\n"), g
        assert {k: v for k, v in g.items() if k != "message"} == \
            {k: v for k, v in w.items() if k != "message"}


def history_with_merge_and_force_push(ps, repo, monkeypatch, name, source, push=None):
    """Syncs `repo` through `source` four times and checks `log` against git at each step;
    push() publishes the repository before each sync (a git URL's upstream)."""
    def sync():
        if push:
            push()
        return ps.sync(name)
    c1 = commit(repo, monkeypatch, "first")
    if push:
        push()
    ps.add(name, source)
    s1 = sync()
    log1 = ps.json("log", str(s1["id"]))
    same_commits(log1, git_log(repo, "-1"))
    assert s1["head_commit"]["subject"] == "first" and s1["commit_count"] is None
    assert "first: only its head commit" in ps.ok("log", str(s1["id"])).err

    # A side branch merged with --no-ff, and a subject over two lines with a body.
    repo.branch("side")
    repo.switch("side")
    commit(repo, monkeypatch, "side one", author=("Zoë Side", "zoe@example.com"))
    commit(repo, monkeypatch, "side two")
    repo.switch("main")
    commit(repo, monkeypatch, "main one")
    merge(repo, monkeypatch, "side", "Merge side")
    c2 = commit(repo, monkeypatch, "Subject over\ntwo lines\n\nand a body\n")
    s2 = sync()
    want = git_log(repo, f"{c1}..{c2}")
    assert len(want) == 5
    same_commits(ps.json("log", str(s2["id"])), want)
    assert s2["commit_count"] == 5 and s2["commits_truncated"] is False
    assert s2["head_commit"]["subject"] == "Subject over two lines"
    assert s2["head_commit"]["sha"] == c2
    same_commits(ps.json("log", str(s2["id"]), "--limit", "2"), want[:2])

    # A force-push: the new head's commits that the old one does not reach.
    repo.reset_hard(f"{c2}~2")
    commit(repo, monkeypatch, "rewritten one")
    c3 = commit(repo, monkeypatch, "rewritten two")
    s3 = sync()
    want = git_log(repo, f"{c2}..{c3}")
    assert [c["subject"] for c in want] == ["rewritten two", "rewritten one"]
    same_commits(ps.json("log", str(s3["id"])), want)
    assert s3["commit_count"] == 2

    # Up to date: no commits, the same head commit.
    s4 = sync()
    assert s4["up_to_date"] and s4["commit_count"] == 0
    assert s4["head_commit"] == s3["head_commit"]
    assert ps.json("log", str(s4["id"])) == []
    return s1, s2, s3, s4


def test_log_equals_git_log_local(ps, repo, monkeypatch):
    s1, s2, s3, s4 = history_with_merge_and_force_push(ps, repo, monkeypatch, "p",
                                                       str(repo.path))
    # history and status show the subject; their JSON the head commit.
    hist = ps.json("history", "p")
    assert [h["head_commit"]["subject"] for h in hist] == \
        ["rewritten two", "rewritten two", "Subject over two lines", "first"]
    assert "rewritten two" in ps.ok("history", "p").out
    out = ps.ok("status", "p").out
    assert "rewritten two" in out and "Test Author <author@example.com>" in out
    assert ps.json("status", "p")["last_succeeded"]["head_commit"]["sha"] == s3["commit"]
    # git log's medium format.
    text = ps.ok("log", str(s2["id"])).out
    assert text.startswith(f"commit {s2['commit']}\nAuthor: Test Author <author@example.com>\n")
    assert "\n    Subject over\n    two lines\n\n    and a body\n" in text
    assert "\nMerge: " in text

    # The API answers what the CLI does.
    srv = Server(ps)
    try:
        st, _, body = srv.get(f"/api/v1/syncs/{s2['id']}/commits")
        assert st == 200 and body == ps.json("log", str(s2["id"]))
        st, _, body = srv.get(f"/api/v1/syncs/{s2['id']}/commits?limit=1")
        assert st == 200 and [c["sha"] for c in body] == [s2["commit"]]
        st, _, body = srv.get(f"/api/v1/syncs/{s2['id']}")
        assert body["head_commit"]["subject"] == "Subject over two lines"
        assert srv.get("/api/v1/syncs/999/commits")[0] == 404
        assert srv.get(f"/api/v1/syncs/{s2['id']}/commits?limit=0")[0] == 400
    finally:
        srv.stop()


def test_log_errors(ps, repo, monkeypatch):
    commit(repo, monkeypatch, "one")
    ps.add("p", str(repo.path))
    ps.sync("p")
    r = ps("log", "999")
    assert r.rc == 3 and "not found" in r.err
    r = ps("log", "x")
    assert r.rc == 2
    r = ps("log")
    assert r.rc == 2
    # A failed sync has no commits.
    repo.git("branch", "-m", "main", "gone")
    bad = ps("sync", "p", "--branch", "main")
    assert bad.rc != 0
    failed = [h for h in ps.json("history", "p") if h["status"] == "failed"][0]
    r = ps("log", str(failed["id"]))
    assert r.rc == 4 and "only a succeeded sync has commits" in r.err
    assert failed["head_commit"] is None and failed["commit_count"] is None


def test_log_of_an_empty_repository_says_it_was_empty(ps, make_repo):
    # `log` of an empty repository's sync said "has no commits recorded (synced before
    # projsync recorded them...)", untrue there: the repository had no commit yet.
    repo = make_repo("void")  # no commit
    ps.add("void", str(repo.path))
    first = ps.sync("void")
    assert first["status"] == "succeeded" and first["commit"] is None, first
    r = ps("log", str(first["id"]))
    assert r.rc == 0 and r.out == "", r
    assert r.err == f"projsync: sync {first['id']} found the repository empty: no commit yet\n", r


def test_head_moved_back_keeps_its_head_commit(ps, repo, monkeypatch):
    """A head moved to a commit the last sync's head already reaches: no commit, but the
    head commit is still recorded (it is not in the range)."""
    c1 = commit(repo, monkeypatch, "older")
    commit(repo, monkeypatch, "newer")
    ps.add("p", str(repo.path))
    ps.sync("p")
    repo.reset_hard(c1)
    s = ps.sync("p")
    assert not s["up_to_date"] and s["commit_count"] == 0
    assert s["head_commit"]["sha"] == c1 and s["head_commit"]["subject"] == "older"
    r = ps.ok("log", str(s["id"]), "--json")
    assert r.out.strip() == "[]" and "no new commits" in r.err


@pytest.mark.sqlite_only
def test_log_bounded_at_250_and_pruned_with_its_sync(ps, repo, monkeypatch):
    commit(repo, monkeypatch, "base")
    ps.add("p", str(repo.path))
    ps.sync("p")
    # 300 commits in one go, through fast-import (git commit 300 times is slow).
    base = repo.head()
    lines = []
    for i in range(300):
        t = next(_clock)
        msg = f"bulk {i}\n".encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(f"committer Bulk <bulk@example.com> {t} +0000\n".encode())
        lines.append(b"data %d\n%s" % (len(msg), msg))
        if i == 0:
            lines.append(f"from {base}\n".encode())
        lines.append(f"M 100644 inline bulk.txt\ndata {len(msg)}\n".encode() + msg)
    import subprocess
    subprocess.run(["git", "-C", str(repo.path), "fast-import", "--quiet"], input=b"".join(lines),
                   check=True)
    repo.reset_hard("main")
    s = ps.sync("p")
    assert s["commit_count"] == 300 and s["commits_truncated"] is True
    got = ps.json("log", str(s["id"]))
    assert [c["sha"] for c in got] == repo.git("log", "-250", "--format=%H").split()
    assert "300 commits since sync" in ps.ok("log", str(s["id"])).err

    # Retention: the rows of pruned syncs go with them.
    for _ in range(2):
        commit(repo, monkeypatch, "more")
        ps.sync("p")
    ps.ok("project", "set", "p", "--keep-syncs", "1")
    ps.ok("prune", "p")
    db = sqlite3.connect(ps.db)
    kept = {r[0] for r in db.execute("SELECT id FROM syncs")}
    listed = {r[0] for r in db.execute("SELECT DISTINCT sync_id FROM sync_commits")}
    db.close()
    assert listed and listed <= kept and len(kept) == 1


# ---- git URLs: the shallow cache is deepened for the log


@pytest.mark.sqlite_only
def test_log_equals_git_log_git_url(ps, make_repo, monkeypatch):
    work = make_repo("work")
    bare = make_repo("up.git", bare=True)

    def push():
        work.git("push", "-q", "--force", str(bare.path), "HEAD:refs/heads/main")
    s1, s2, s3, s4 = history_with_merge_and_force_push(ps, work, monkeypatch, "g", bare.url,
                                                       push)
    # A single new commit needs no second fetch: its parent is the last synced head.
    commit(work, monkeypatch, "one more")
    push()
    s5 = ps.sync("g")
    same_commits(ps.json("log", str(s5["id"])), git_log(work, "-1"))
    assert s5["commit_count"] == 1
    # The merge's five commits needed one more fetch (the walk ran into the shallow edge).
    assert s2["requests"] == s5["requests"] + 1, (s2["requests"], s5["requests"])


# ---- GitHub: the branch answer and the compare


@pytest.fixture(scope="module")
def hub():
    h = FakeHub.start()
    yield h
    h.stop()


@pytest.mark.sqlite_only
def test_log_through_github(ps, repo, monkeypatch, hub):
    hub.clear_faults()
    hub.config(tokens=None, truncate_at=100000)
    ps.env.update({"PROJSYNC_GITHUB_API": hub.url, "PROJSYNC_GITHUB_BACKOFF_MS": "50"})
    ps.env.pop("GITHUB_TOKEN", None)
    hub.add_repo("octo/commits", repo.path)
    hub.reset()
    s1, s2, s3, s4 = history_with_merge_and_force_push(ps, repo, monkeypatch, "h",
                                                       "github:octo/commits")
    kinds = [e["kind"] for e in hub.log()]
    # The head commits came with answers the sync needed anyway, plus one compare per moved
    # head (two); never a commit request, and nothing for the unchanged head.
    assert kinds.count("compare") == 2 and kinds.count("git_commit") == 0, kinds
    hub.reset()
    s5 = ps.sync("h")
    assert s5["up_to_date"]
    kinds = [e["kind"] for e in hub.log()]
    assert "compare" not in kinds and "git_commit" not in kinds, kinds


@pytest.mark.sqlite_only
def test_github_unrelated_history_asks_the_compare_once(ps, repo, monkeypatch, hub):
    """A branch replaced by a history without a common ancestor: GitHub cannot compare (404).
    The sync still records the head commit (one git/commits request), marked truncated with an
    unknown count, and asks the compare once: the scan's answer, a 404 included, serves the
    commits too."""
    hub.clear_faults()
    hub.config(tokens=None, truncate_at=100000)
    ps.env.update({"PROJSYNC_GITHUB_API": hub.url, "PROJSYNC_GITHUB_BACKOFF_MS": "50"})
    ps.env.pop("GITHUB_TOKEN", None)
    commit(repo, monkeypatch, "old root")
    hub.add_repo("octo/unrelated", repo.path)
    ps.add("u", "github:octo/unrelated", "--branch", "main")
    ps.sync("u")
    repo.git("checkout", "-q", "--orphan", "fresh")
    repo.git("rm", "-q", "-rf", ".")
    c2 = commit(repo, monkeypatch, "new root")
    repo.git("branch", "-q", "-M", "fresh", "main")
    hub.reset()
    s = ps.sync("u")
    kinds = [e["kind"] for e in hub.log()]
    assert kinds.count("compare") == 1 and kinds.count("git_commit") == 1, kinds
    assert s["commit"] == c2 and s["head_commit"]["subject"] == "new root"
    assert s["commit_count"] is None and s["commits_truncated"] is True
    same_commits(ps.json("log", str(s["id"])), git_log(repo, "-1"))
