"""
Content diffs: `projsync diff A B --patch/--stat` and `changes SYNC --patch` must print exactly
what `git diff` prints for the two synced commits, from the store's contents. Every comparison
runs the real git on the same repository. projsync pairs exact renames only, so git runs with
-M100% (exact renames), never with its similarity scoring.

Crafted cases cover text edits, additions, deletions, binary files, an exact rename, mode
changes, symlink targets, submodule commits, missing final newlines, CRLF, several hunks, a type
change, quoted paths; then the real history of this very checkout.
"""
import json
import os
import re
import subprocess

import pytest

from conftest import EMPTY_TREE, ROOT, Repo, git
from server_util import Server

SUB1 = "1" * 40
SUB2 = "2" * 40


def git_diff(repo, a, b, *opts, paths=()):
    """`git diff` as a user runs it, without colour, external tools or a terminal width."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run(["git", "-c", "core.quotepath=true", "diff", "--no-color",
                        "--no-ext-diff", "--no-textconv", "-M100%", *opts, a, b, "--", *paths],
                       cwd=repo.path, capture_output=True, timeout=120,
                       env=dict(env, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1"))
    assert r.returncode == 0, r.stderr
    return r.stdout


def ps_out(ps, *args):
    r = ps(*args, env={"COLUMNS": ""})
    assert r.rc == 0, r
    return r.outb


def lines_of(n, fmt="line {}\n"):
    return "".join(fmt.format(i) for i in range(1, n + 1))


@pytest.fixture
def crafted(ps, repo):
    """Two commits that between them hold one of every kind of change; synced as s1, s2."""
    r = repo
    r.write("text.txt", lines_of(30))
    r.write("multi.txt", lines_of(120))
    r.write("gone.txt", "bye\nbye\n")
    r.write("bin.dat", b"\x00\x01\x02binary\x00" * 50)
    r.write("bin_gone.dat", b"\x00gone\x00")
    r.write("moved/a.txt", "i move\nwithout change\n")
    r.write("run.sh", "#!/bin/sh\necho hi\n", exec_bit=False)
    r.write("run2.sh", "#!/bin/sh\necho one\n", exec_bit=False)
    r.symlink("link", "target-one")
    r.gitlink("sub", SUB1)
    r.write("nonl.txt", "a\nb")
    r.write("nonl2.txt", "x\ny\n")
    r.write("crlf.txt", "first\r\nsecond\r\nthird\r\n")
    r.write("tc", "a file\nthat becomes a link\n")
    r.write("sp ace.txt", "space\n")
    r.write("ünï.txt", "unicode name\n")
    r.write("funcs.c", "".join(
        f"int f{i}(void)\n{{\n\tint x = {i};\n\treturn x;\n}}\n\n" for i in range(1, 8)))
    r.write("tail.txt", "keep\n")
    r.write("old/deep/file.md", "# deep\nrenamed across directories\n")
    r.write("pic.bin", b"\x89PNG\x00\x00same bytes")
    c1 = r.commit("one")

    r.write("text.txt", lines_of(30).replace("line 15\n", "line fifteen\n"))
    m = lines_of(120).replace("line 3\n", "line three\n").replace("line 60\n", "")
    m = m.replace("line 110\n", "line 110\nline 110.5\n")
    r.write("multi.txt", m)
    r.rm("gone.txt")
    r.write("bin.dat", b"\x00\x01\x02binary\x00" * 49 + b"changed\x00")
    r.rm("bin_gone.dat")
    r.write("bin_new.dat", b"new\x00bin")
    r.mv("moved/a.txt", "moved/b.txt")
    r.chmod_exec("run.sh", True)
    r.write("run2.sh", "#!/bin/sh\necho two\n", exec_bit=True)
    r.symlink("link", "target-two")
    r.git("update-index", "--cacheinfo", f"160000,{SUB2},sub")
    r.gitlink("sub_new", SUB1)
    r.write("nonl.txt", "a\nc")
    r.write("nonl2.txt", "x\ny")
    r.write("crlf.txt", "first\r\nSECOND\r\nthird\r\n")
    r.rm("tc")
    r.symlink("tc", "somewhere")
    r.write("sp ace.txt", "space!\n")
    r.write("ünï.txt", "unicode name changed\n")
    r.write("funcs.c", "".join(
        f"int f{i}(void)\n{{\n\tint x = {i};\n\treturn x{' + 1' if i in (2, 6) else ''};\n}}\n\n"
        for i in range(1, 8)))
    r.write("empty.txt", "")
    r.write("new.txt", "brand\nnew\n")
    r.write("tail.txt", "keep\nmore\n")
    r.mv("old/deep/file.md", "new/deep/file.md")
    r.mv("pic.bin", "img/pic.bin")
    c2 = r.commit("two")

    ps.add("p", str(r.path))
    s1 = ps.sync("p")
    # The sync reads the repository's commits, not its index: point HEAD at c1 first.
    return r, c1, c2, s1


def sync_to(ps, repo, commit):
    repo.git("update-ref", "refs/heads/main", commit)
    return ps.sync("p")


def test_crafted_patch_equals_git_diff(ps, crafted):
    repo, c1, c2, _ = crafted
    # The fixture synced c2 (the head); sync c1 and c2 again in order to diff c1 -> c2.
    a = sync_to(ps, repo, c1)
    b = sync_to(ps, repo, c2)
    want = git_diff(repo, c1, c2)
    got = ps_out(ps, "diff", a["id"], b["id"], "--patch")
    assert got.decode("utf-8", "replace") == want.decode("utf-8", "replace")
    assert got == want
    # Each kind of change is really in there (so the test cannot pass on an empty diff).
    for needle in (b"Binary files a/bin.dat and b/bin.dat differ",
                   b"similarity index 100%\nrename from moved/a.txt\nrename to moved/b.txt",
                   b"old mode 100644\nnew mode 100755",
                   b"-Subproject commit " + SUB1.encode(),
                   b"+Subproject commit " + SUB2.encode(),
                   b"\\ No newline at end of file",
                   b"-target-one", b"deleted file mode 100644\nindex",
                   b"new file mode 120000", b"SECOND\r\n", b'"a/\\303\\274n\\303\\257.txt"',
                   b"--- a/sp ace.txt\t\n"):
        assert needle in got, needle
    # Hunk headers carry git's function context.
    assert re.search(rb"^@@ -\d+,7 \+\d+,7 @@ int f\d\(void\)$", got, re.M), got

    # The reverse direction too (additions become deletions, a rename goes back).
    assert ps_out(ps, "diff", b["id"], a["id"], "--patch") == git_diff(repo, c2, c1)

    # --full-index: whole blob ids, as git prints them with the same option.
    full = ps_out(ps, "diff", a["id"], b["id"], "--patch", "--full-index")
    assert full == git_diff(repo, c1, c2, "--full-index")
    assert re.search(rb"^index [0-9a-f]{40}\.\.[0-9a-f]{40}", full, re.M), full
    assert ps_out(ps, "changes", b["id"], "--patch", "--full-index") == \
        git_diff(repo, c1, c2, "--full-index")


def test_crafted_stat_equals_git_diff_stat(ps, crafted):
    repo, c1, c2, _ = crafted
    a = sync_to(ps, repo, c1)
    b = sync_to(ps, repo, c2)
    assert ps_out(ps, "diff", a["id"], b["id"], "--stat") == git_diff(repo, c1, c2, "--stat")
    assert ps_out(ps, "diff", a["id"], b["id"], "--stat", "--patch") == \
        git_diff(repo, c1, c2, "--stat", "--patch")
    # A narrow terminal scales names and graphs as git does.
    r = ps("diff", a["id"], b["id"], "--stat", env={"COLUMNS": "40"})
    env = dict(os.environ, COLUMNS="40", GIT_CONFIG_GLOBAL="/dev/null")
    want = subprocess.run(["git", "diff", "--stat", "-M100%", c1, c2], cwd=repo.path,
                          capture_output=True, env=env).stdout
    assert r.outb == want


def test_pathspec_limits_patch_and_name_status(ps, crafted):
    repo, c1, c2, _ = crafted
    a = sync_to(ps, repo, c1)
    b = sync_to(ps, repo, c2)
    got = ps_out(ps, "diff", a["id"], b["id"], "--patch", "text.txt", "moved")
    assert got == git_diff(repo, c1, c2, paths=("text.txt", "moved"))
    names = ps_out(ps, "diff", a["id"], b["id"], "text.txt", "funcs.c").decode()
    assert names.splitlines() == ["M funcs.c", "M text.txt"]


def test_changes_patch_and_first_sync(ps, crafted):
    repo, c1, c2, _ = crafted
    a = sync_to(ps, repo, c1)
    b = sync_to(ps, repo, c2)
    assert ps_out(ps, "changes", b["id"], "--patch") == git_diff(repo, c1, c2)
    # The project's first sync (of c2) diffs against nothing: everything added.
    assert ps_out(ps, "changes", 1, "--patch") == git_diff(repo, EMPTY_TREE, c2)
    assert ps_out(ps, "changes", 1, "--stat") == git_diff(repo, EMPTY_TREE, c2, "--stat")
    # Without --patch the name-status output stays.
    assert ps_out(ps, "changes", b["id"]).decode().splitlines()[0].startswith(("A ", "M ", "D ",
                                                                                  "R ", "T "))


def test_json_patch_hunks(ps, crafted):
    repo, c1, c2, _ = crafted
    a = sync_to(ps, repo, c1)
    b = sync_to(ps, repo, c2)
    doc = ps.json("diff", a["id"], b["id"], "--patch")
    assert doc["from"] == a["id"] and doc["to"] == b["id"] and doc["truncated"] is False
    files = {(f["path"], f["old_mode"] or "-", f["new_mode"] or "-"): f for f in doc["files"]}
    text = files[("text.txt", "100644", "100644")]
    assert text["status"] == "modified" and not text["binary"] and not text["too_large"]
    (h,) = text["hunks"]
    assert (h["old_start"], h["old_lines"], h["new_start"], h["new_lines"]) == (12, 7, 12, 7)
    assert h["header"] == "@@ -12,7 +12,7 @@ line 11"  # git's function context
    minus = [ln for ln in h["lines"] if ln["origin"] == "-"]
    plus = [ln for ln in h["lines"] if ln["origin"] == "+"]
    assert minus == [{"origin": "-", "old_lineno": 15, "new_lineno": None, "text": "line 15"}]
    assert plus == [{"origin": "+", "old_lineno": None, "new_lineno": 15,
                     "text": "line fifteen"}]
    assert len(files[("multi.txt", "100644", "100644")]["hunks"]) == 3
    assert files[("bin.dat", "100644", "100644")]["binary"] is True
    moved = files[("moved/b.txt", "100644", "100644")]
    assert moved["status"] == "renamed" and moved["previous_path"] == "moved/a.txt"
    assert moved["hunks"] == []
    nonl = files[("nonl.txt", "100644", "100644")]["hunks"][0]["lines"]
    assert [ln.get("no_newline", False) for ln in nonl] == [False, True, True]
    # A type change is two entries, like git: the file deleted, the link added.
    assert files[("tc", "100644", "-")]["status"] == "type_changed"
    assert files[("tc", "-", "120000")]["hunks"][0]["lines"][0]["text"] == "somewhere"
    assert files[("crlf.txt", "100644", "100644")]["hunks"][0]["lines"][1]["text"] == \
        "second\r"
    # The added/deleted counts agree with git's numstat.
    numstat = git(repo.path, "diff", "--numstat", "-M100%", c1, c2)
    for row in numstat.splitlines():
        add, dele, path = row.split("\t")
        if add == "-" or "=>" in path or path.startswith('"') or path == "tc":
            continue
        (f,) = [f for f in doc["files"] if f["path"] == path]
        assert (f["added"], f["deleted"]) == (int(add), int(dele)), path


def test_not_stored_and_too_large(ps, repo):
    repo.write("big.txt", "x" * 2000 + "\n")
    repo.write("small.txt", "a\n")
    c1 = repo.commit("one")
    repo.write("big.txt", "y" * 2000 + "\n")
    repo.write("small.txt", "b\n")
    c2 = repo.commit("two")
    ps.add("p", str(repo.path), "--max-blob-size", "1000")
    repo.git("update-ref", "refs/heads/main", c1)
    a = ps.sync("p")
    repo.git("update-ref", "refs/heads/main", c2)
    b = ps.sync("p")
    out = ps_out(ps, "diff", a["id"], b["id"], "--patch").decode()
    want = git_diff(repo, c1, c2).decode()
    # small.txt is diffed as git does; big.txt has git's header and a note instead of hunks.
    assert want.split("diff --git a/small.txt")[1] == out.split("diff --git a/small.txt")[1]
    big = out.split("diff --git a/small.txt")[0]
    assert big.startswith("diff --git a/big.txt b/big.txt\nindex ")
    assert big.endswith("Files a/big.txt and b/big.txt differ (content not stored: over the "
                        "project's size limit)\n")
    doc = ps.json("diff", a["id"], b["id"], "--patch")
    big_j = doc["files"][0]
    assert big_j["skipped"] == "not_stored" and big_j["hunks"] == [] and big_j["note"]
    stat = ps_out(ps, "diff", a["id"], b["id"], "--stat").decode()
    assert " big.txt   | not stored\n" in stat


def test_a_lost_blob_is_said_missing_not_over_the_size_limit(ps, repo):
    # A blob deleted from the store behind projsync's back: the diff blamed the size limit
    # ("not stored"), which the project's limit contradicts. In the latest snapshot (no rescan
    # owed, within the limit) the store knows it was lost, as `cat` and `verify --blobs` say.
    from test_verify import delete_blob
    repo.write("keep.txt", "one\n")
    repo.write("small.txt", "a\n")
    repo.commit("one")
    ps.add("p", str(repo.path))
    a = ps.sync("p")
    repo.write("keep.txt", "two\n")
    repo.write("small.txt", "b\n")
    c2 = repo.commit("two")
    b = ps.sync("p")
    delete_blob(ps, repo.git("rev-parse", f"{c2}:keep.txt").strip())
    out = ps_out(ps, "diff", a["id"], b["id"], "--patch").decode()
    keep = out.split("diff --git a/small.txt")[0]
    assert "Files a/keep.txt and b/keep.txt differ (content missing: its blob was lost from " \
        "the store; see projsync verify --blobs)\n" in keep, out
    assert "size limit" not in out, out
    doc = ps.json("diff", a["id"], b["id"], "--patch")
    assert doc["files"][0]["skipped"] == "missing" and doc["files"][0]["hunks"] == [], doc
    assert doc["files"][1]["skipped"] is None and doc["files"][1]["hunks"], doc
    stat = ps_out(ps, "diff", a["id"], b["id"], "--stat").decode()
    assert " keep.txt  | missing\n" in stat, stat
    # Reversed, the lost blob is the old side's: the same.
    doc = ps.json("diff", b["id"], a["id"], "--patch")
    assert doc["files"][0]["skipped"] == "missing", doc


def test_too_many_lines_gives_too_large(ps, repo):
    repo.write("huge.txt", lines_of(120000))
    c1 = repo.commit("one")
    repo.write("huge.txt", lines_of(120000, "changed {}\n"))
    c2 = repo.commit("two")
    ps.add("p", str(repo.path))
    repo.git("update-ref", "refs/heads/main", c1)
    a = ps.sync("p")
    repo.git("update-ref", "refs/heads/main", c2)
    b = ps.sync("p")
    out = ps_out(ps, "diff", a["id"], b["id"], "--patch").decode()
    assert out.endswith("Files a/huge.txt and b/huge.txt differ (diff too large: over 16 MiB "
                        "of content or 100000 lines)\n"), out[-300:]
    assert out.count("\n") == 3


def test_rename_pairing_equals_git(ps, repo):
    """Which deleted path a new one is paired with, as git diff -M decides it: a same base
    name first, then path order; empty files and submodules pair too; a symlink pairs only
    with a symlink."""
    repo.write("keep.txt", "keep\n")
    repo.write("d/p.txt", "same\n")
    repo.write("d/q.txt", "same\n")
    repo.write("e/empty", "")
    repo.write("lf", "tgt")
    repo.symlink("ll", "tgt")
    repo.gitlink("sub1", SUB1)
    c1 = repo.commit("one")
    for path in ("d/p.txt", "d/q.txt", "e/empty", "lf", "ll"):
        repo.rm(path)
    repo.git("rm", "-q", "--cached", "sub1")
    repo.rm("sub1")
    repo.write("n/q.txt", "same\n")
    repo.write("n/empty2", "")
    repo.symlink("n/l1", "tgt")
    repo.write("n/l2", "tgt")
    repo.gitlink("sub2", SUB1)
    c2 = repo.commit("two")
    ps.add("p", str(repo.path))
    a = sync_to(ps, repo, c1)
    b = sync_to(ps, repo, c2)
    want = git_diff(repo, c1, c2, "--name-status").decode()
    assert want.count("R100") == 5, want  # the case is what it claims to be
    got = []
    for ch in ps.json("changes", b["id"]):
        if ch["status"] == "renamed":
            got.append(f"R100\t{ch['previous_path']}\t{ch['path']}")
        else:
            got.append(f"{ch['status'][0].upper()}\t{ch['path']}")
    assert sorted(got) == sorted(want.splitlines())
    assert ps_out(ps, "diff", a["id"], b["id"], "--patch") == git_diff(repo, c1, c2)


def test_bad_arguments(ps, crafted):
    r = ps("diff", "1", "--patch")
    assert r.rc == 2 and "SYNC_A and SYNC_B" in r.err
    r = ps("diff", "1", "99", "--patch")
    assert r.rc == 3


def test_real_history_equals_git_diff(ps, tmp_path):
    """This checkout's own history, first commit to last, synced as two snapshots."""
    clone = tmp_path / "self"
    git(tmp_path, "clone", "-q", "--no-local", str(ROOT), str(clone))
    repo = Repo(clone)
    commits = repo.git("rev-list", "--reverse", "HEAD").split()
    if len(commits) < 2:
        pytest.skip("this checkout has a single commit")
    first, last = commits[0], commits[-1]
    repo.git("checkout", "-q", "-B", "main", last)
    ps.add("self", str(clone), "--branch", "main")
    repo.git("update-ref", "refs/heads/main", first)
    a = ps.sync("self")
    repo.git("update-ref", "refs/heads/main", last)
    b = ps.sync("self")
    want = git_diff(repo, first, last)
    got = ps_out(ps, "diff", a["id"], b["id"], "--patch")
    assert len(want) > 10000
    assert got == want
    assert ps_out(ps, "diff", a["id"], b["id"], "--patch", "--full-index") == \
        git_diff(repo, first, last, "--full-index")
    assert ps_out(ps, "diff", a["id"], b["id"], "--stat") == git_diff(repo, first, last, "--stat")
    # A middle commit against the last one as well: different hunks, same rule.
    mid = commits[len(commits) // 2]
    repo.git("update-ref", "refs/heads/main", mid)
    m = ps.sync("self")
    assert ps_out(ps, "diff", m["id"], b["id"], "--patch") == git_diff(repo, mid, last)


# --------------------------------------------------------------------------------------------
# HTTP: GET /api/v1/syncs/{a}/diff/{b}


@pytest.fixture
def server(ps):
    srv = Server(ps)
    yield srv
    srv.stop()


def test_http_diff_text_and_json(ps, crafted, server):
    repo, c1, c2, _ = crafted
    a = sync_to(ps, repo, c1)
    b = sync_to(ps, repo, c2)
    base = f"/api/v1/syncs/{a['id']}/diff/{b['id']}"
    want = git_diff(repo, c1, c2)

    st, h, body = server.get(base + "?format=diff")
    assert st == 200 and h["content-type"] == "text/x-diff", (st, h)
    assert body == want and "x-projsync-truncated" not in h
    st, h, body = server.get(base, headers={"Accept": "text/x-diff"})
    assert st == 200 and h["content-type"] == "text/x-diff" and body == want
    st, h, body = server.get(base + "?format=diff&stat=1")
    assert body == git_diff(repo, c1, c2, "--stat", "--patch")
    st, h, body = server.get(base + "?format=diff&path=text.txt&path=moved")
    assert body == git_diff(repo, c1, c2, paths=("text.txt", "moved"))
    st, h, body = server.get(base + "?format=diff&full_index=1")
    assert st == 200 and body == git_diff(repo, c1, c2, "--full-index") and body != want
    # The API's own description names every query parameter used here.
    st, _, doc = server.get("/openapi.json")
    op = doc["paths"]["/api/v1/syncs/{id}/diff/{other}"]["get"]
    assert {"patch", "format", "stat", "path", "full_index"} <= {p["name"] for p in op["parameters"]}

    # JSON with hunks: the same document as the CLI's --patch --json.
    st, h, doc = server.get(base + "?patch=1")
    assert st == 200 and h["content-type"].startswith("application/json")
    assert doc == ps.json("diff", a["id"], b["id"], "--patch")
    assert doc["truncated"] is False and len(doc["files"]) > 15
    assert any(f["hunks"] for f in doc["files"])

    # Without patch: the name-status changes, as /changes gives them for the same pair.
    st, _, names = server.get(base)
    assert st == 200 and names == server.get(f"/api/v1/syncs/{b['id']}/changes")[2]
    st, _, names = server.get(base + "?path=moved")
    assert [(c["status"], c["path"]) for c in names] == [("renamed", "moved/b.txt")]


def test_patch_json_gives_the_size_of_a_renamed_or_mode_changed_file(ps, repo, server):
    # A rename or a mode change keeps its blob: the patch did not read it and said
    # old_size/new_size null, while --stat (and the blob) know the size.
    repo.write("old name.txt", "twelve bytes")
    repo.write("run.sh", "#!/bin/sh\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    a = ps.sync("p")
    repo.git("mv", "old name.txt", "new name.txt")
    os.chmod(repo.path / "run.sh", 0o755)
    repo.commit("c2")
    b = ps.sync("p")
    want = {"new name.txt": 12, "run.sh": 10}
    for args in (("--patch",), ("--stat",)):
        doc = ps.json("diff", a["id"], b["id"], *args)
        assert {f["path"]: (f["old_size"], f["new_size"]) for f in doc["files"]} == \
            {p: (n, n) for p, n in want.items()}, (args, doc)
    st, _, doc = server.get(f"/api/v1/syncs/{a['id']}/diff/{b['id']}?patch=1")
    assert st == 200 and [(f["old_size"], f["new_size"]) for f in doc["files"]] == \
        [(12, 12), (10, 10)], doc


def test_http_diff_non_utf8_text_becomes_replacement_char(ps, repo, server):
    repo.write("latin1.txt", b"caf\xe9\n")
    c1 = repo.commit("one")
    repo.write("latin1.txt", b"caf\xe9 au lait\n")
    c2 = repo.commit("two")
    ps.add("p", str(repo.path))
    repo.git("update-ref", "refs/heads/main", c1)
    a = ps.sync("p")
    repo.git("update-ref", "refs/heads/main", c2)
    b = ps.sync("p")
    st, _, doc = server.get(f"/api/v1/syncs/{a['id']}/diff/{b['id']}?patch=1")
    lines = doc["files"][0]["hunks"][0]["lines"]
    assert [ln["text"] for ln in lines] == ["caf\ufffd", "caf\ufffd au lait"]
    # The text form keeps the bytes.
    st, _, body = server.get(f"/api/v1/syncs/{a['id']}/diff/{b['id']}?format=diff")
    assert body == git_diff(repo, c1, c2) and b"-caf\xe9\n" in body


def test_http_diff_errors(ps, crafted, make_repo, server):
    repo, c1, c2, s1 = crafted
    other = make_repo("other")
    other.write("x", "x\n")
    other.commit("x")
    ps.add("q", str(other.path))
    q = ps.sync("q")
    st, _, e = server.get(f"/api/v1/syncs/{s1['id']}/diff/{q['id']}?patch=1")
    assert st == 400 and e["error"]["code"] == "different_projects"
    st, _, e = server.get(f"/api/v1/syncs/{s1['id']}/diff/999?patch=1")
    assert st == 404 and e["error"]["code"] == "sync_not_found"
    st, _, e = server.get(f"/api/v1/syncs/{s1['id']}/diff/abc")
    assert st == 400
    st, _, e = server.get(f"/api/v1/syncs/{s1['id']}/diff/{s1['id']}?format=html")
    assert st == 400 and e["error"]["code"] == "invalid_format"
    st, _, doc = server.get(f"/api/v1/syncs/{s1['id']}/diff/{s1['id']}?patch=1")
    assert st == 200 and doc["files"] == []


def test_http_output_limit_lists_rest_as_omitted(ps, repo, server):
    """Past 16 MiB of diff text the response stops adding hunks: later files are listed as
    omitted, and the text form says so in a header."""
    for i in range(10):   # 1 MB each, 2 MB of diff each when rewritten
        repo.write(f"f{i}.txt", "".join(f"{i} old line {k:090}\n" for k in range(10000)))
    c1 = repo.commit("one")
    for i in range(10):
        repo.write(f"f{i}.txt", "".join(f"{i} new line {k:090}\n" for k in range(10000)))
    c2 = repo.commit("two")
    ps.add("p", str(repo.path))
    repo.git("update-ref", "refs/heads/main", c1)
    a = ps.sync("p")
    repo.git("update-ref", "refs/heads/main", c2)
    b = ps.sync("p")
    base = f"/api/v1/syncs/{a['id']}/diff/{b['id']}"
    st, h, body = server.get(base + "?format=diff")
    assert st == 200 and h.get("x-projsync-truncated") == "true"
    assert len(body) <= 16 * 1024 * 1024
    full = git_diff(repo, c1, c2)
    assert len(full) > 16 * 1024 * 1024
    # Whole files up to the limit, as git prints them; then each remaining file omitted.
    cut = body.rfind(b"diff --git ", 0, body.index(b"(omitted: output limit reached)"))
    assert cut > 0 and full.startswith(body[:cut])
    rest = body[cut:].split(b"diff --git ")[1:]
    assert len(rest) >= 2 and all(r.endswith(b"differ (omitted: output limit reached)\n")
                                  for r in rest)
    assert body.count(b"diff --git ") == 10
    st, _, doc = server.get(base + "?patch=1")
    assert doc["truncated"] is True
    assert [f["skipped"] for f in doc["files"]][-1] == "omitted"
    assert doc["files"][0]["skipped"] is None and doc["files"][0]["hunks"]
    assert len(doc["files"]) == 10


def test_gitattributes_diff_decides_binary_like_git(ps, repo):
    """git diff reads .gitattributes: `-diff`/`binary` (and macros naming them) print "Binary
    files ... differ" for text, `diff` prints text hunks for content with NUL bytes, deeper files
    and later lines win. libgit2's tests/resources (`* binary`) made 1,411 files of a 200-commit
    libgit2 range differ from git before projsync read attributes."""
    r = repo
    r.write("a.gen", "generated\n")
    r.write("forced.dat", "text\x00with nul\n")
    r.write("top.txt", "plain\n")
    r.write("sub/top.txt", "anchored only at the top\n")
    r.write("data/x/y.txt", "deep data\n")
    r.write("vendor/keep.txt", "kept as text\n")
    r.write("vendor/lib.c", "int x;\n")
    r.write("vendor/same.txt", "renamed, same blob\n")
    c1 = r.commit("one")
    r.write(".gitattributes", "[attr]nodiff -diff -merge\n"
            "*.gen -diff\n*.dat diff\n/top.txt binary\ndata/** nodiff\n")
    r.write("vendor/.gitattributes", "* binary\nkeep.txt !diff\n")
    r.write("a.gen", "generated again\n")
    r.write("forced.dat", "text\x00with nul, changed\n")
    r.write("top.txt", "plain, changed\n")
    r.write("sub/top.txt", "anchored only at the top, changed\n")
    r.write("data/x/y.txt", "deep data, changed\n")
    r.write("vendor/keep.txt", "kept as text, changed\n")
    r.write("vendor/lib.c", "int y;\n")
    r.write("vendor/new.txt", "new\n")
    r.write("vendor/empty", "")
    r.mv("vendor/same.txt", "vendor/moved.txt")
    c2 = r.commit("two")
    ps.add("p", str(r.path))
    a = sync_to(ps, r, c1)
    b = sync_to(ps, r, c2)
    # git reads the work tree's attributes: it holds c2, the newer commit, for both directions.
    want = git_diff(r, c1, c2)
    got = ps_out(ps, "diff", a["id"], b["id"], "--patch")
    assert got == want
    for needle in (b"Binary files a/a.gen and b/a.gen differ",
                   b"Binary files a/top.txt and b/top.txt differ",
                   b"+anchored only at the top, changed",
                   b"Binary files a/data/x/y.txt and b/data/x/y.txt differ",
                   b"+kept as text, changed", b"Binary files a/vendor/lib.c and b/vendor/lib.c differ",
                   b"Binary files /dev/null and b/vendor/new.txt differ",
                   b"+text\x00with nul, changed"):
        assert needle in got, needle
    assert b"b/vendor/empty differ" not in got
    assert ps_out(ps, "diff", b["id"], a["id"], "--patch") == git_diff(r, c2, c1)
    assert ps_out(ps, "diff", a["id"], b["id"], "--stat") == git_diff(r, c1, c2, "--stat")
    j = json.loads(ps_out(ps, "diff", a["id"], b["id"], "--patch", "--json"))
    by_path = {f["path"]: f for f in j["files"]}
    assert by_path["a.gen"]["binary"] and not by_path["a.gen"]["hunks"]
    assert not by_path["forced.dat"]["binary"] and by_path["forced.dat"]["hunks"]
