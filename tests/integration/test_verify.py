"""
`projsync verify` and POST /api/v1/projects/{name}/verify (docs/cli.md, docs/api.md): a stored
snapshot re-checked from the store alone: its tree id against the commit's (what `git` says),
with --blobs every blob's content against its id; a blob altered in the store behind
projsync's back is found and named, with exit 1.
"""
import json
import sqlite3

import pytest

from conftest import psql
from server_util import Server


def alter_blob(ps, sha, content=b"tampered\n"):
    if ps.backend == "pg":
        psql(ps.db, f"UPDATE blobs SET content = '\\x{content.hex()}'::bytea "
                    f"WHERE sha = ps_unhex('{sha}')")
    else:
        db = sqlite3.connect(ps.db)
        with db:
            n = db.execute("UPDATE blobs SET content = ? WHERE sha = ?",
                           (content, bytes.fromhex(sha))).rowcount
        db.close()
        assert n == 1


@pytest.fixture
def synced(ps, repo):
    """A project on a repository with every kind of entry, synced twice."""
    repo.write("README.md", "# demo\n")
    for i in range(4):
        repo.write(f"src/lib/f{i}.c", f"int f{i};\n")
    repo.write("src/run.sh", "#!/bin/sh\n", exec_bit=True)
    repo.symlink("link", "src/run.sh")
    repo.write("caf\u00e9/\u00fc.md", "umlaut\n")
    repo.write("a.b", "dot\n")
    repo.write("a/x", "dir a\n")
    repo.gitlink("vendor/sub", "0123456789abcdef0123456789abcdef01234567")
    repo.commit("c1")
    ps.ok("project", "add", "demo", repo.path)
    ps.ok("sync", "demo")
    repo.write("src/lib/f1.c", "int f1 = 1;\n")
    repo.write("src/new/g.c", "int g;\n")
    repo.rm("a.b")
    repo.commit("c2")
    ps.ok("sync", "demo")
    return repo


def test_verify_sound_snapshots(ps, synced):
    tree = synced.git("rev-parse", "HEAD^{tree}").strip()
    r = ps.ok("verify", "demo")
    lines = r.out.splitlines()
    assert len(lines) == 1 and "sound" in lines[0] and tree[:12] in lines[0], r
    rep = json.loads(ps.ok("verify", "demo", "--blobs", "--json").out)
    assert rep["sound"] is True and rep["problems"] == []
    assert rep["tree"] == tree and rep["computed_tree"] == tree
    assert rep["directories_stored"] is True
    files = synced.ls_tree("HEAD")
    assert rep["files"] == len(files)
    blobs = {f["sha"] for f in files if f["mode"] != "160000"}
    assert rep["blobs_checked"] == len(blobs) and rep["blobs_not_stored"] == 0
    # The first snapshot, as git has its commit.
    old = json.loads(ps.ok("verify", "demo", "--at", "1", "--json").out)
    assert old["sound"] and old["sync_id"] == 1
    assert old["tree"] == synced.git("rev-parse", "HEAD~1^{tree}").strip()


def test_verify_blobs_finds_altered_blob(ps, synced):
    sha = synced.git("rev-parse", "HEAD:src/lib/f2.c").strip()
    alter_blob(ps, sha)
    # The tree does not read content: still sound without --blobs.
    ps.ok("verify", "demo")
    r = ps("verify", "demo", "--blobs")
    assert r.rc == 1, r
    bad = [line for line in r.out.splitlines() if line]
    assert len(bad) == 1 and bad[0].startswith("src/lib/f2.c: blob_"), r
    assert "not sound" in r.err and r.err.count("\n") == 1
    rep = json.loads(ps("verify", "demo", "--blobs", "--json").out)
    assert rep["sound"] is False
    assert [p["path"] for p in rep["problems"]] == ["src/lib/f2.c"]


def test_verify_errors(ps, synced):
    assert ps("verify", "nope").rc == 3
    assert ps("verify", "demo", "--at", "999").rc == 3
    assert ps("verify", "demo", "--at", "x").rc == 2
    assert ps("verify").rc == 2


def test_verify_over_http(ps, synced):
    sha = synced.git("rev-parse", "HEAD:README.md").strip()
    srv = Server(ps)
    try:
        st, _, rep = srv.post("/api/v1/projects/demo/verify")
        assert st == 200 and rep["sound"] is True and rep["blobs_checked"] is None, rep
        alter_blob(ps, sha)
        st, _, rep = srv.post("/api/v1/projects/demo/verify", {"blobs": True})
        assert st == 200 and rep["sound"] is False, rep
        assert [p["path"] for p in rep["problems"]] == ["README.md"]
        st, _, rep = srv.post("/api/v1/projects/demo/verify", {"at": 1})
        assert st == 200 and rep["sync_id"] == 1 and rep["sound"] is True
        st, _, err = srv.post("/api/v1/projects/demo/verify", {"at": "1"})
        assert st == 400, err
        st, _, err = srv.post("/api/v1/projects/demo/verify", {"bogus": 1})
        assert st == 400, err
        st, _, err = srv.post("/api/v1/projects/nope/verify")
        assert st == 404, err
        st, _, err = srv.post("/api/v1/projects/demo/verify", {"at": 999})
        assert st == 404, err
    finally:
        srv.stop()


def delete_blob(ps, sha):
    if ps.backend == "pg":
        psql(ps.db, f"DELETE FROM blobs WHERE sha = ps_unhex('{sha}')")
    else:
        db = sqlite3.connect(ps.db)
        with db:
            n = db.execute("DELETE FROM blobs WHERE sha = ?", (bytes.fromhex(sha),)).rowcount
        db.close()
        assert n == 1


def test_verify_blobs_finds_a_lost_blob(ps, synced):
    """Before: a blob gone from the store counted as a file kept as metadata only (over the size
    limit), and `verify --blobs` called the snapshot sound."""
    sha = synced.git("rev-parse", "HEAD:src/lib/f3.c").strip()
    delete_blob(ps, sha)
    r = ps("verify", "demo", "--blobs")
    assert r.rc == 1, r
    assert r.out.startswith("src/lib/f3.c: blob_missing: blob " + sha), r
    rep = json.loads(ps("verify", "demo", "--blobs", "--json").out)
    assert rep["sound"] is False and rep["blobs_not_stored"] == 0, rep
    assert [(p["path"], p["problem"]) for p in rep["problems"]] == [("src/lib/f3.c",
                                                                     "blob_missing")]


def test_verify_blobs_files_kept_as_metadata_stay_sound(ps, repo):
    """Files over the size limit have no blob on purpose, also while a raise of the limit is
    owed to the next sync."""
    repo.write("small.txt", "small\n")
    repo.write("big.bin", "x" * 5000)
    repo.commit("c1")
    ps.ok("project", "add", "lim", repo.path, "--max-blob-size", "1000")
    ps.ok("sync", "lim")
    rep = json.loads(ps.ok("verify", "lim", "--blobs", "--json").out)
    assert rep["sound"] and rep["blobs_not_stored"] == 1, rep
    ps.ok("project", "set", "lim", "--max-blob-size", "10000")
    rep = json.loads(ps.ok("verify", "lim", "--blobs", "--json").out)
    assert rep["sound"] and rep["blobs_not_stored"] == 1, rep
    ps.ok("sync", "lim")
    rep = json.loads(ps.ok("verify", "lim", "--blobs", "--json").out)
    assert rep["sound"] and rep["blobs_not_stored"] == 0, rep
