"""
The web page in a real browser: comparing two syncs, a note's #fragment links, file addresses of
names that are not UTF-8, an empty repository's sync (the flows in tests/browser/; the same
machinery as test_browser.py, in the same xdist group).
"""
import os

import pytest

from test_browser import need_browser, run_flow, serve  # noqa: F401 (serve is a fixture)

pytestmark = pytest.mark.xdist_group("browser")


def test_note_fragment_links_move_within_the_note(serve, make_repo, ps):  # noqa: F811
    need_browser()
    repo = make_repo("repo")
    repo.write("README.md", "x\n")
    repo.commit("one")
    ps.add("anchors", str(repo.path))
    run_flow("note_anchors.mjs", serve(delay="0"), project="anchors")


def test_an_empty_repository_is_said_to_be_empty(serve, make_repo, ps):  # noqa: F811
    need_browser()
    repo = make_repo("repo")  # no commit: no branch either
    ps.add("void", str(repo.path))
    first = ps.sync("void")
    assert first["commit"] is None
    run_flow("empty_repo.mjs", serve(delay="0"), project="void", first=first["id"])


def test_names_that_differ_in_bytes_not_utf8_have_their_own_addresses(serve, make_repo, ps):  # noqa: F811
    need_browser()
    repo = make_repo("repo")
    (repo.path / os.fsdecode(b"lat\xe9.txt")).write_bytes(b"e-acute content\n")
    (repo.path / os.fsdecode(b"lat\xe8.txt")).write_bytes(b"e-grave content\n")
    repo.write("docs/a b+c.md", "plain name\n")
    repo.commit("one")
    ps.add("raw", str(repo.path))
    first = ps.sync("raw")
    run_flow("raw_names.mjs", serve(delay="0"), project="raw", sync=first["id"])
