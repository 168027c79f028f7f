"""
The web page in a real browser, for cases a first-time user met (see tests/browser/odd_cases.mjs):
the same machinery as test_browser.py, in the same xdist group.
"""
import os

import pytest

from test_browser import need_browser, run_flow, serve  # noqa: F401 (serve is a fixture)

pytestmark = pytest.mark.xdist_group("browser")


def test_odd_names_and_a_running_sync_page(serve, make_repo, ps):  # noqa: F811
    need_browser()
    repo = make_repo("repo")
    latin = repo.path / os.fsdecode(b"lat\xe9.txt")  # a Latin-1 name: not UTF-8
    repo.write("README.md", "# odd\n")
    latin.write_bytes("café one\n".encode())
    repo.commit("one")
    latin.write_bytes("café two\n".encode())
    repo.commit("two")
    srv = serve(delay="0")
    st, _, _ = srv.post("/api/v1/projects", {"name": "odd", "source": str(repo.path)})
    assert st == 201
    repo.git("branch", "old", "HEAD~1")
    ps.sync("odd", "--branch", "old")
    second = ps.sync("odd", "--branch", "main")
    repo.write("README.md", "# odd, for the sync the page watches\n")
    repo.commit("three")
    slow = serve(delay="400")
    run_flow("odd_cases.mjs", slow, project="odd", second=second["id"], latin_shown="lat\ufffd.txt",
             repo=str(repo.path))


def test_a_wrong_token_is_said_to_be_refused(serve):  # noqa: F811
    need_browser()
    srv = serve(delay="0", env={"PROJSYNC_API_TOKEN": "right-token-1"})
    run_flow("token.mjs", srv, token="right-token-1")
