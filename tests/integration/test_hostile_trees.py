"""
Git objects no git command writes, from a repository someone else controls: a tree that names an
entry twice, or names one "", ".", "..", or with a '/' inside. Each would make a snapshot that
is not a tree (two versions of one path, or a path that means something else on disk), so a sync
of such a commit fails with a reason naming the tree, and nothing is stored: the project's
history and files stay those of the last good sync. (GitHub's trees get the same rule in
source/github/; tests/unit/test_source_github.c covers it there, fuzz_github_source found it.)
"""
import binascii
import subprocess

import pytest

from conftest import GIT_ENV, git, one_error_line


def write_object(repo, data, kind="blob"):
    """Writes `data` as an object of `kind` as is (--literally: no checks), -> its SHA."""
    r = subprocess.run(["git", "hash-object", "-t", kind, "-w", "--literally", "--stdin"],
                       cwd=repo.path, input=data, capture_output=True, check=True,
                       env={**GIT_ENV, "PATH": "/usr/bin:/bin"})
    return r.stdout.decode().strip()


def literal_tree(repo, entries):
    """A tree object with exactly `entries` [(mode, name bytes, sha)], in that order."""
    data = b"".join(mode.encode() + b" " + name + b"\0" + binascii.unhexlify(sha)
                    for mode, name, sha in entries)
    return write_object(repo, data, "tree")


def first_good_sync(ps, repo):
    """Project p synced at one good commit -> (that commit, (history, files)) as they stood."""
    repo.write("a.txt", "good\n")
    good = repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    return good, (ps.history("p"), ps.files("p"))


def assert_nothing_stored(ps, before):
    """The project's succeeded syncs and files are those of `before` (first_good_sync)."""
    def succeeded(history):
        return [s for s in history if s["status"] == "succeeded"]
    assert succeeded(ps.history("p")) == succeeded(before[0])
    assert ps.files("p") == before[1]       # the snapshot is still the good one


def commit_tree(repo, tree, parent):
    return git(repo.path, "commit-tree", tree, "-p", parent, "-m", "hostile").strip()


@pytest.mark.parametrize("name,entries_of", [
    ("duplicate", lambda a, b: [("100644", b"a.txt", a), ("100644", b"a.txt", b)]),
    ("duplicate apart", lambda a, b: [("100644", b"a.txt", a), ("100644", b"b", b),
                                      ("100644", b"a.txt", b)]),
    ("dot", lambda a, b: [("100644", b".", a)]),
    ("dotdot", lambda a, b: [("100644", b"..", a)]),
    ("slash", lambda a, b: [("100644", b"a/b", a)]),
    ("empty", lambda a, b: [("100644", b"", a)]),
])
def test_a_tree_no_git_writes_fails_the_sync_and_stores_nothing(ps, repo, name, entries_of):
    good, before = first_good_sync(ps, repo)
    a = write_object(repo, b"x\n")
    b = write_object(repo, b"y\n")
    tree = literal_tree(repo, entries_of(a, b))
    bad = commit_tree(repo, tree, good)
    git(repo.path, "update-ref", "refs/heads/main", bad)

    r = ps("sync", "p")
    assert r.rc == 1, r
    assert one_error_line(r.err), r
    assert tree in r.err, r
    assert_nothing_stored(ps, before)


def test_a_blob_whose_bytes_are_not_its_id_fails_the_sync_and_stores_nothing(ps, repo):
    """libgit2 no longer re-hashes what it reads (source/git.c): the store's own check of each
    blob's id is what refuses a damaged or forged object."""
    _, before = first_good_sync(ps, repo)
    repo.write("b.txt", "the real content\n")
    repo.commit()
    sha = git(repo.path, "rev-parse", "HEAD:b.txt").strip()
    other = write_object(repo, b"other content\n")
    swap_object_and_check_the_sync_fails(ps, repo, sha, other, before)


def swap_object_and_check_the_sync_fails(ps, repo, sha, other, before):
    """Gives loose object `sha` the bytes of `other`: the sync must fail naming `sha`, with
    nothing stored (`before`: history and files as they were)."""
    objects = repo.path / ".git" / "objects"
    dest = objects / sha[:2] / sha[2:]
    dest.chmod(0o644)
    dest.write_bytes((objects / other[:2] / other[2:]).read_bytes())

    r = ps("sync", "p")
    assert r.rc == 1, r
    assert one_error_line(r.err), r
    assert sha in r.err and "verification" in r.err, r
    assert_nothing_stored(ps, before)


def test_a_commit_whose_bytes_are_not_its_id_fails_the_sync_and_stores_nothing(ps, repo):
    """The commit names the tree check_tree holds the snapshot to: with libgit2 no longer
    re-hashing, a commit object holding another commit's bytes (another tree) would have made
    that tree the snapshot of a commit it is not."""
    _, before = first_good_sync(ps, repo)
    repo.write("b.txt", "the real content\n")
    repo.commit()
    sha = git(repo.path, "rev-parse", "HEAD").strip()
    tree = git(repo.path, "rev-parse", "HEAD^{tree}").strip()
    other_tree = literal_tree(repo, [("100644", b"forged.txt",
                                      write_object(repo, b"forged\n"))])
    body = git(repo.path, "cat-file", "commit", sha).replace(tree, other_tree)
    other = write_object(repo, body.encode(), "commit")
    swap_object_and_check_the_sync_fails(ps, repo, sha, other, before)
