"""
Snapshots against git itself: after every sync, what projsync lists and serves must be exactly
what git says the synced commit holds (`git ls-tree -r`, `git cat-file`), and what it reports as
changed must be exactly `git diff --no-renames` between the synced commits.

About renames: projsync reports an exact rename (same blob, new path) as one `renamed` change
with `previous_path`; git with --no-renames reports a deletion plus an addition. The comparison
(conftest.changes_as_git) expands every `renamed` into `D previous_path` + `A path`.
"""
import json
import os

import pytest

from conftest import EMPTY_TREE, Repo, changes_as_git

BINARY = b"\x00\x01\x02NUL\x00inside\xff\xfe" * 64
BIG = os.urandom(200 * 1024)


def check_snapshot(ps, repo, name, commit, at=None, cat=True, seen=None):
    """files --json == git ls-tree; cat == git cat-file for every blob. `seen` (a set) skips
    the (path, sha, --at or not) reads an earlier check of the same test already made: `files`
    has just shown the path still maps to that blob, so reading it again adds only time."""
    opts = ["--at", str(at)] if at is not None else []
    files = ps.files(name, *opts)
    want = repo.ls_tree(commit)
    assert files == want
    for f in want if cat else ():
        if f["type"] != "blob":
            continue
        if seen is not None:
            key = (f["path"], f["sha"], at is not None)
            if key in seen:
                continue
            seen.add(key)
        # `--` ends the options, so a path like "-leading-dash.txt" is a path.
        r = ps("cat", *opts, name, "--", f["path"])
        assert r.rc == 0, r
        assert r.outb == repo.blob(f["sha"]), f"cat {f['path']} differs from git"
    return files


def check_changes(ps, repo, sync, base_commit):
    changes = ps.json("changes", sync["id"])
    want = repo.diff(base_commit or EMPTY_TREE, sync["commit"])
    assert changes_as_git(changes) == want
    # The summary's counts agree with the rows (counts has no type_changed key: a type change
    # counts as modified), and `files` with the snapshot.
    for kind in ("added", "modified", "deleted", "renamed"):
        also = ("type_changed",) if kind == "modified" else ()
        assert sync["counts"][kind] == sum(1 for c in changes if c["status"] in (kind,) + also), \
            kind
    assert sync["counts"]["files"] == len(repo.ls_tree(sync["commit"]))
    return changes


def shapes_v1(repo, sub_sha):
    repo.write("README.md", "hello\n")
    repo.write("src/a/b/c/deep.txt", "deep\n")
    repo.write("src/a/keep.c", "int main(void) { return 0; }\n")
    repo.write("bin/run.sh", "#!/bin/sh\necho run\n", exec_bit=True)
    repo.write("tools/flip.sh", "#!/bin/sh\n", exec_bit=False)
    repo.symlink("link", "README.md")
    repo.symlink("dirlink", "src/a")
    repo.write("ünï cødé.txt", "ünïcødé\n")
    repo.write("with space/file name.txt", "spaces\n")
    repo.write("-leading-dash.txt", "dash\n")
    repo.write("bin.dat", BINARY)
    repo.write("big.bin", BIG)
    repo.write("empty.txt", b"")
    repo.write("thing", "a file that becomes a directory\n")
    repo.write("later/dir/x.txt", "a directory that becomes a file\n")
    repo.write(".memory/notes.md", "# notes\n")
    repo.gitlink("sub", sub_sha)
    return repo.commit("v1: many shapes")


def shapes_v2(repo, sub_sha):
    repo.write("README.md", "hello again\n")                  # modify
    repo.rm("empty.txt")                                      # delete
    repo.write("new/added.txt", "added\n")                    # add
    repo.mv("src/a/b/c/deep.txt", "src/moved.txt")            # exact rename
    repo.rm("thing")                                          # file -> dir
    repo.write("thing/inner.txt", "inside\n")
    repo.chmod_exec("bin/run.sh", False)                      # exec bit off
    repo.chmod_exec("tools/flip.sh", True)                    # exec bit on
    repo.rm("link")                                           # symlink -> file
    repo.write("link", "now a regular file\n")
    repo.write("bin.dat", BINARY + b"\x00more")               # binary modify
    repo.gitlink("sub", sub_sha)                              # submodule moves
    return repo.commit("v2: every kind of change")


def shapes_v3(repo):
    repo.rm("later")                                          # dir -> file
    repo.write("later", "now a file\n")
    repo.write("ünï cødé.txt", "ünïcødé 2\n")
    repo.rm("-leading-dash.txt")
    repo.write("new/added.txt", "added\n", exec_bit=True)
    repo.symlink("README.md.link", "README.md")
    return repo.commit("v3: more")


@pytest.fixture
def sub_shas(make_repo):
    other = make_repo("other")
    other.write("x", "1")
    a = other.commit()
    other.write("x", "2")
    return a, other.commit()


def run_history(ps, repo, name, sub_shas, cat_old=True):
    """Syncs v1, v2, v3 of the shapes repo, checking each snapshot and its changes."""
    seen = set()
    c1 = shapes_v1(repo, sub_shas[0])
    s1 = ps.sync(name)
    assert s1["commit"] == c1 and s1["up_to_date"] is False
    check_snapshot(ps, repo, name, c1, seen=seen)
    first = check_changes(ps, repo, s1, None)
    assert all(c["status"] == "added" for c in first)

    c2 = shapes_v2(repo, sub_shas[1])
    s2 = ps.sync(name)
    assert s2["commit"] == c2 and s2["previous_sync_id"] == s1["id"]
    check_snapshot(ps, repo, name, c2, seen=seen)
    ch2 = check_changes(ps, repo, s2, c1)
    renamed = [c for c in ch2 if c["status"] == "renamed"]
    assert [(c["previous_path"], c["path"]) for c in renamed] == \
        [("src/a/b/c/deep.txt", "src/moved.txt")]

    c3 = shapes_v3(repo)
    s3 = ps.sync(name)
    check_snapshot(ps, repo, name, c3, seen=seen)
    check_changes(ps, repo, s3, c2)

    # Old snapshots stay listable and readable; non-adjacent syncs compare like git.
    check_snapshot(ps, repo, name, c1, at=s1["id"], cat=cat_old, seen=seen)
    check_snapshot(ps, repo, name, c2, at=s2["id"], cat=cat_old, seen=seen)
    assert changes_as_git(ps.json("diff", s1["id"], s3["id"])) == repo.diff(c1, c3)
    assert changes_as_git(ps.json("diff", s3["id"], s1["id"])) == repo.diff(c3, c1)
    assert ps.json("diff", s2["id"], s2["id"]) == []
    return (c1, c2, c3), (s1, s2, s3)


def test_local_path_source(ps, repo, sub_shas):
    ps.add("p", str(repo.path))
    run_history(ps, repo, "p", sub_shas)


def test_file_url_source_bare_remote(ps, make_repo, sub_shas):
    """The source is a bare repository named by a file:// URL; the work repo pushes to it."""
    work = make_repo("work")
    bare = make_repo("upstream.git", bare=True)
    work.write("seed", "seed\n")
    work.commit("seed")
    work.force_push(bare.path)
    ps.add("p", bare.url)

    class Pushing(Repo):
        def commit(self, msg="change", allow_empty=False):
            sha = super().commit(msg, allow_empty)
            self.force_push(bare.path)
            return sha

    pushing = Pushing(work.path)
    run_history(ps, pushing, "p", sub_shas, cat_old=False)  # `cat --at`: see above


def test_prefix_filter(ps, repo, sub_shas):
    c1 = shapes_v1(repo, sub_shas[0])
    ps.add("p", str(repo.path))
    ps.sync("p")
    want = [f for f in repo.ls_tree(c1) if f["path"].startswith("src/")]
    assert want and ps.files("p", "src/") == want


def test_noop_resync_is_up_to_date(ps, repo, sub_shas):
    c1 = shapes_v1(repo, sub_shas[0])
    ps.add("p", str(repo.path))
    s1 = ps.sync("p")
    before = ps.files("p")
    s2 = ps.sync("p")
    assert s2["up_to_date"] is True
    assert s2["commit"] == c1
    assert s2["previous_sync_id"] == s1["id"]
    assert ps.files("p") == before == repo.ls_tree(c1)
    assert ps.json("changes", s2["id"]) == []


def test_force_push_syncs_new_tree_and_diffs_from_last_good(ps, repo, sub_shas):
    ps.add("p", str(repo.path))
    c1 = shapes_v1(repo, sub_shas[0])
    ps.sync("p")
    c2 = shapes_v2(repo, sub_shas[1])
    ps.sync("p")
    # Rewrite history: back to c1, then a different commit on top.
    repo.reset_hard(c1)
    repo.write("README.md", "rewritten\n")
    repo.write("only-after-force.txt", "x\n")
    c2b = repo.commit("rewritten history")
    s = ps.sync("p")
    assert s["commit"] == c2b
    check_snapshot(ps, repo, "p", c2b)
    check_changes(ps, repo, s, c2)


def test_branch_with_slashes(ps, repo):
    repo.write("a.txt", "main\n")
    repo.commit("main")
    repo.switch("feature/a/b", create=True)
    repo.write("a.txt", "feature\n")
    repo.write("feature-only/f.txt", "f\n")
    cf = repo.commit("feature")
    repo.switch("main")
    repo.write("main-only.txt", "m\n")
    repo.commit("main moves on")

    ps.add("p", str(repo.path), "--branch", "feature/a/b")
    r = ps.ok("branches", "p")
    assert "feature/a/b" in r.out.split() and "main" in r.out.split()
    s = ps.sync("p")
    assert s["branch"] == "feature/a/b" and s["commit"] == cf
    check_snapshot(ps, repo, "p", cf)

    # The same branch asked for explicitly on a project that follows the default.
    ps.add("q", str(repo.path))
    s = ps.sync("q", "--branch", "feature/a/b")
    assert s["branch"] == "feature/a/b" and s["commit"] == cf
    check_snapshot(ps, repo, "q", cf)


def test_empty_repository_syncs_to_empty_snapshot(ps, repo):
    ps.add("p", str(repo.path))
    s = ps.sync("p")
    assert s["counts"]["files"] == 0
    assert ps.files("p") == []
    # Once it gets a first commit, the next sync has it all as additions.
    repo.write("first.txt", "1\n")
    c = repo.commit("first")
    s2 = ps.sync("p")
    assert s2["commit"] == c
    check_snapshot(ps, repo, "p", c)
    check_changes(ps, repo, s2, None)


def test_large_file_kept_as_metadata(ps, repo):
    repo.write("small.txt", "small\n")
    repo.write("large.bin", b"L" * 5000)
    c = repo.commit("sizes")
    ps.add("p", str(repo.path), "--max-blob-size", "1000")
    s = ps.sync("p")
    assert s["status"] == "succeeded"
    assert ps.files("p") == repo.ls_tree(c)  # listed with sha and size all the same
    assert ps.ok("cat", "p", "small.txt").outb == b"small\n"
    r = ps("cat", "p", "large.bin")
    assert r.rc == 2, r  # the API's 422: the file is there, its content is not kept
    assert "not stored" in r.err and r.outb == b"", r


def test_identical_content_across_projects(ps, make_repo):
    """Two projects with the same files: both list and serve them (content stored once is an
    internal matter; what a user relies on is that neither copy is lost)."""
    a, b = make_repo("a"), make_repo("b")
    for r in (a, b):
        r.write("same.txt", "shared content\n")
    ca, cb = a.commit(), b.commit()
    ps.add("a", str(a.path))
    ps.add("b", str(b.path))
    ps.sync("a")
    ps.sync("b")
    ps.ok("project", "rm", "a", "--yes")
    assert ps.ok("cat", "b", "same.txt").outb == b"shared content\n"
    assert ps.files("b") == b.ls_tree(cb)


def test_a_projects_size_limit_decides_whatever_another_project_stored(ps, repo, tmp_path):
    # cat printed a file over the project's limit (exit 0) when another project of the store
    # held its blob; files/grep/verify said it was not stored. A project's view must not
    # depend on the other projects: its own limit decides, everywhere.
    from server_util import Server
    big = b"needle " * 20 + b"\n"
    repo.write("a.txt", "needle a\n")
    repo.write("big.txt", big)
    repo.write(".memory/big.md", b"# Big note\n" + big)
    repo.commit("c1")
    ps.add("whole", repo.path)
    ps.sync("whole")
    ps.add("small", repo.path, "--max-blob-size", "64")
    s1 = ps.sync("small")
    assert ps.ok("cat", "whole", "big.txt").outb == big
    r = ps("cat", "small", "big.txt")
    assert r.rc == 2 and r.out == "" and "limit" in r.err, r
    # grep finds the needle in a.txt only, verify has one blob it does not check.
    hits = ps.json("grep", "needle", "small")
    assert [h["path"] for h in hits] == ["a.txt"], hits
    # A memory file over the limit is no note of the small project, as its own sync alone
    # would have had it.
    assert [e["title"] for e in ps.json("memory", "list", "whole")] == ["Big note"]
    assert ps.json("memory", "list", "small") == []
    v = ps.json("verify", "small", "--blobs")
    assert v["sound"] and v["blobs_not_stored"] == 2 and v["blobs_checked"] == 1, v
    # checkout leaves it out; the diff against the next sync says it is not stored.
    ps.ok("checkout", "small", tmp_path / "co")
    assert (tmp_path / "co" / "a.txt").exists() and not (tmp_path / "co" / "big.txt").exists()
    assert not (tmp_path / "co" / ".memory" / "big.md").exists()
    repo.write("big.txt", big + b"more\n")
    repo.commit("c2")
    ps.sync("whole")
    s2 = ps.sync("small")
    d = ps.json("diff", str(s1["id"]), str(s2["id"]), "--patch")
    assert [(f["path"], f.get("skipped")) for f in d["files"]] == [("big.txt", "not_stored")], d
    srv = Server(ps)
    try:
        st, _, body = srv.get("/api/v1/projects/small/file?path=big.txt")
        assert st == 422 and body["error"]["code"] == "too_big", body
        st, _, body = srv.get("/api/v1/projects/whole/file?path=big.txt", raw=True)
        assert st == 200, body
        st, _, body = srv.get("/api/v1/projects/small/search/code?q=needle")
        assert st == 200 and [h["path"] for h in body] == ["a.txt"], body
        st, _, body = srv.get("/api/v1/projects/small/memory")
        assert st == 200 and body == [], body
    finally:
        srv.stop()


def test_cat_of_a_lost_blob_says_it_was_lost_not_skipped(ps, repo):
    # A blob deleted from the store behind projsync's back: `cat` and the file endpoint said
    # the file "was over the project's size limit when it was synced" (exit 4, 409). In the
    # latest snapshot (no rescan owed, within the limit) the store knows it was lost, as
    # `verify --blobs` does: a store fault (exit 1, 500 blob_missing) naming the blob and verify.
    from server_util import Server
    from test_verify import delete_blob
    repo.write("keep.txt", "kept in both snapshots\n")
    repo.write("other.txt", "one\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    first = ps.sync("p")
    repo.write("other.txt", "two\n")
    repo.commit("c2")
    ps.sync("p")
    sha = repo.git("rev-parse", "HEAD:keep.txt").strip()
    delete_blob(ps, sha)
    assert "blob_missing" in ps("verify", "p", "--blobs").out
    r = ps("cat", "p", "keep.txt")
    assert r.rc == 1 and r.outb == b"", r
    assert sha in r.err and "lost" in r.err and "projsync verify p --blobs" in r.err, r
    assert "size limit when it was synced" not in r.err, r
    # An older snapshot: no row says which limit held when it was synced, so skipped and lost
    # are both said, neither as certain.
    old = ps("cat", "p", "keep.txt", "--at", str(first["id"]))
    assert old.rc == 4 and "over the project's size limit when it was synced, or its blob " \
        f"{sha} was lost" in old.err, old
    srv = Server(ps)
    try:
        st, _, body = srv.get("/api/v1/projects/p/file?path=keep.txt")
        assert st == 500 and body["error"]["code"] == "blob_missing", (st, body)
        assert sha in body["error"]["message"], body
        st, _, body = srv.get(f"/api/v1/projects/p/file?path=keep.txt&at={first['id']}")
        assert st == 409 and body["error"]["code"] == "not_fetched", (st, body)
        # Other files are served as before.
        st, _, body = srv.get("/api/v1/projects/p/file?path=other.txt")
        assert st == 200, (st, body)
    finally:
        srv.stop()


def test_checkout_and_diff_of_an_old_lost_blob_say_both_causes_as_cat_does(ps, repo, tmp_path):
    # In an older snapshot a file within today's limit whose blob is absent was either over
    # the limit when it was synced or lost since: `cat` says both (409 not_fetched), while
    # `checkout` warned "(over the size limit)" and `diff` noted "not stored: over the
    # project's size limit", as if the limit were the only cause.
    from test_verify import delete_blob
    repo.write("keep.txt", "first version\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    first = ps.sync("p")
    old_sha = repo.git("rev-parse", "HEAD:keep.txt").strip()
    repo.write("keep.txt", "second version\n")
    repo.commit("c2")
    second = ps.sync("p")
    delete_blob(ps, old_sha)
    cat = ps("cat", "p", "keep.txt", "--at", str(first["id"]))
    assert cat.rc == 4 and "or its blob" in cat.err and "was lost since" in cat.err, cat
    co = ps("checkout", "p", tmp_path / "co", "--at", str(first["id"]))
    assert co.rc == 0 and not (tmp_path / "co" / "keep.txt").exists(), co
    assert "keep.txt not written: its content is not stored (over the project's size limit " \
        "when it was synced, or lost since), ignoring" in co.err, co
    # --json marks the file as the warning does.
    co = ps("checkout", "p", tmp_path / "co2", "--at", str(first["id"]), "--json")
    out = json.loads(co.out)
    assert co.rc == 0 and out["skipped_paths"] == ["keep.txt"], co
    assert out["skipped_files"] == [{
        "path": "keep.txt", "may_be_lost": True,
        "reason": "over the project's size limit when it was synced, or lost since"}], out
    d = ps.json("diff", str(first["id"]), str(second["id"]), "--patch")
    f = d["files"][0]
    assert f["path"] == "keep.txt" and f["skipped"] == "not_stored", d
    assert f["note"] == "content not stored: over the project's size limit when it was " \
        "synced, or lost since", d
    text = ps("diff", str(first["id"]), str(second["id"]), "--patch").out
    assert "Files a/keep.txt and b/keep.txt differ (content not stored: over the project's " \
        "size limit when it was synced, or lost since)" in text, text


def test_checkout_and_diff_of_a_file_over_the_limit_name_the_limit_only(ps, repo, tmp_path):
    # Over today's limit the file was kept as metadata only for certain: no "lost since".
    repo.write("big.txt", "x" * 4000 + "\n")
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", str(repo.path), "--max-blob-size", "1000")
    first = ps.sync("p")
    repo.write("big.txt", "y" * 4000 + "\n")
    repo.commit("c2")
    second = ps.sync("p")
    co = ps("checkout", "p", tmp_path / "co", "--at", str(first["id"]))
    assert co.rc == 0 and "big.txt not written: its content is not stored (over the " \
        "project's size limit), ignoring" in co.err, co
    out = json.loads(ps.ok("checkout", "p", tmp_path / "co2", "--at", str(first["id"]),
                           "--json").out)
    assert out["skipped_files"] == [{"path": "big.txt", "may_be_lost": False,
                                     "reason": "over the project's size limit"}], out
    d = ps.json("diff", str(first["id"]), str(second["id"]), "--patch")
    assert [(f["path"], f["note"]) for f in d["files"]] == [
        ("big.txt", "content not stored: over the project's size limit")], d
