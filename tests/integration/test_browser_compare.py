"""
The web page in a real browser: comparing two syncs, a note's #fragment links, file addresses of
names that are not UTF-8, an empty repository's sync, the first sync a prune kept (the flows in tests/browser/; the same
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


def test_the_first_kept_sync_is_said_to_be_so(serve, make_repo, ps):  # noqa: F811
    need_browser()
    repo = make_repo("repo")
    repo.write("a", "a\n")
    repo.write("b", "b\n")
    repo.commit("c1")
    ps.add("kept", str(repo.path))
    ps.sync("kept")
    kept = ps.sync("kept")
    ps.ok("project", "set", "kept", "--keep-syncs", "1")
    ps.ok("prune", "kept")
    later = ps.sync("kept")
    assert kept["up_to_date"] and later["up_to_date"]
    run_flow("first_kept.mjs", serve(delay="0"), project="kept", kept=kept["id"], later=later["id"])


def test_names_that_differ_in_bytes_not_utf8_have_their_own_addresses(serve, make_repo, ps):  # noqa: F811
    need_browser()
    repo = make_repo("repo")
    (repo.path / os.fsdecode(b"lat\xe9.txt")).write_bytes(b"e-acute content\n")
    (repo.path / os.fsdecode(b"lat\xe8.txt")).write_bytes(b"e-grave content\n")
    repo.write("docs/a b+c.md", "plain name\n")
    for byte, name in ((b"\xe9", "acute"), (b"\xe8", "grave")):
        folder = repo.path / os.fsdecode(b"d" + byte)
        folder.mkdir()
        (folder / f"{name}-inside.txt").write_bytes(f"inside e-{name}\n".encode())
    repo.commit("one")
    ps.add("raw", str(repo.path))
    first = ps.sync("raw")
    run_flow("raw_names.mjs", serve(delay="0"), project="raw", sync=first["id"])


def test_compare_two_syncs(serve, make_repo, ps):  # noqa: F811
    """History ticks two syncs, a sync's page compares with its base, the picker takes any two:
    the changed files with counts, each file's diff (its address shared), the way back, the same
    sync twice, a failed sync and one not in the store, and many changes a page at a time."""
    need_browser()
    repo = make_repo("repo")
    repo.write("a.txt", "one\ntwo\nthree\n")
    repo.write("b.txt", "to be deleted\n")
    repo.write("old.txt", "a file renamed without a change, long enough to pair\n")
    (repo.path / os.fsdecode(b"lat\xe9.txt")).write_bytes(b"latin one\n")
    repo.commit("one")
    repo.write("a.txt", "zero\n")
    repo.commit("zero")
    ps.add("cmp", str(repo.path))
    s0 = ps.sync("cmp")  # pruned below: a sync not in the store any more
    repo.write("a.txt", "one\ntwo\nthree\n")
    repo.commit("one again")
    s1 = ps.sync("cmp")
    repo.write("a.txt", "one\nTWO\nthree\n")
    repo.write("c.txt", "added\n")
    repo.rm("b.txt")
    repo.mv("old.txt", "new.txt")
    (repo.path / os.fsdecode(b"lat\xe9.txt")).write_bytes(b"latin two\n")
    repo.git("add", "-A")
    repo.commit("two")
    s2 = ps.sync("cmp")
    for i in range(250):
        repo.write(f"many/f{i:03d}.txt", f"file {i}\n")
    repo.commit("many")
    s3 = ps.sync("cmp")
    ps.ok("project", "set", "cmp", "--keep-syncs", "3")
    ps.ok("prune", "cmp")
    repo.branch("doomed")  # the flow deletes it and syncs it: a failed sync
    run_flow("compare.mjs", serve(delay="0"), project="cmp", s0=s0["id"], s1=s1["id"], s2=s2["id"], s3=s3["id"],
             repo=str(repo.path))
