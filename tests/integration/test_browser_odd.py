"""
The web page in a real browser, for cases a first-time user met (see tests/browser/odd_cases.mjs):
the same machinery as test_browser.py, in the same xdist group.
"""
import os
import urllib.parse

import pytest

from server_util import Server
from test_browser import need_browser, run_flow, serve  # noqa: F401 (serve is a fixture)

pytestmark = pytest.mark.xdist_group("browser")


def test_odd_names_and_a_running_sync_page(serve, make_repo, ps):  # noqa: F811
    need_browser()
    repo = make_repo("repo")
    latin = repo.path / os.fsdecode(b"lat\xe9.txt")  # a Latin-1 name: not UTF-8
    repo.write("README.md", "# odd\n")
    latin.write_bytes("café one\n".encode())
    repo.write("long.txt", "a" * 3000 + "\n")
    # A memory note with links relative to its own file (the default glob, .memory/**/*.md).
    repo.write(".memory/notes/howto.md",
               "# How to\n\nRead [the guide](../../docs/guide.md#L2) and [a sibling](other.md).\n")
    repo.write("docs/guide.md", "# Guide\n\nthe guide's text\n")
    repo.commit("one")
    latin.write_bytes("café two\n".encode())
    repo.write("long.txt", "b" * 3000 + "\n")
    repo.commit("two")
    # No server yet: a second one on the same store could claim the flow's syncs, at full speed.
    ps.add("odd", str(repo.path))
    repo.git("branch", "old", "HEAD~1")
    ps.sync("odd", "--branch", "old")
    second = ps.sync("odd", "--branch", "main")
    repo.write("README.md", "# odd, for the sync the page watches\n")
    repo.commit("three")
    slow = serve(delay="700")  # long enough to open the page of a running sync, and to cancel one
    run_flow("odd_cases.mjs", slow, project="odd", second=second["id"], latin_shown="lat\ufffd.txt", latin_raw="lat%E9.txt",
             repo=str(repo.path))


def test_a_wrong_token_is_said_to_be_refused(serve):  # noqa: F811
    need_browser()
    srv = serve(delay="0", env={"PROJSYNC_API_TOKEN": "right-token-1"})
    run_flow("token.mjs", srv, token="right-token-1")


def test_changes_carry_path_raw_for_a_name_that_is_not_utf8(ps, make_repo):
    """The page opens a change's diff with its exact bytes: /syncs/{id}/changes (and `changes
    --json`) give path_raw / previous_path_raw as the file list does; the diff answers it."""
    repo = make_repo("repo")
    repo.write(os.fsdecode(b"mod\xe9.txt"), "one\n")
    repo.write(os.fsdecode(b"old\xff.txt"), "to be renamed, with enough text to pair\n")
    repo.write("plain.txt", "x\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    first = ps.sync("p")
    repo.write(os.fsdecode(b"mod\xe9.txt"), "two\n")
    repo.git("mv", os.fsdecode(b"old\xff.txt"), os.fsdecode(b"new\xfe.txt"))
    repo.write("plain.txt", "y\n")
    repo.commit("c2")
    second = ps.sync("p")
    cli = ps.json("changes", str(second["id"]))
    srv = Server(ps)
    try:
        st, _, api = srv.get(f"/api/v1/syncs/{second['id']}/changes")
        assert st == 200
        by = {c["status"] + ":" + c.get("path_raw", c["path"]): c for c in api}
        assert set(by) == {"modified:mod%E9.txt", "renamed:new%FE.txt", "modified:plain.txt"}, api
        assert by["renamed:new%FE.txt"]["previous_path_raw"] == "old%FF.txt"
        assert "path_raw" not in by["modified:plain.txt"]
        assert "previous_path_raw" not in by["modified:mod%E9.txt"]
        assert urllib.parse.unquote_to_bytes(by["modified:mod%E9.txt"]["path_raw"]) == b"mod\xe9.txt"
        st, _, d = srv.get(f"/api/v1/syncs/{first['id']}/diff/{second['id']}?patch=1&path=mod%E9.txt")
        assert st == 200 and len(d["files"]) == 1 and d["files"][0]["added"] == 1, d
    finally:
        srv.stop()
    assert cli == api


def test_a_server_without_local_root_offers_no_paths(ps, make_repo):
    """Without serve --local-root the Add form's hint offers no path; a path is refused under
    Source."""
    need_browser()
    repo = make_repo("repo")
    repo.write("a.txt", "a\n")
    repo.commit("one")
    srv = Server(ps, "--quiet", local_root=False)
    try:
        run_flow("local_paths.mjs", srv, repo=str(repo.path))
    finally:
        srv.stop()
