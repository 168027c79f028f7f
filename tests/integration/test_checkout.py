"""
`checkout NAME DIR`: the folder mirrors the snapshot (content, exec bits, symlinks; submodules
as empty directories), a re-run applies only what changed (untouched files keep their inode and
mtime; deleted files go, with the directories they leave empty), and `--at` checks out an older
sync. The folder's manifest (.projsync-checkout) is projsync's own and not compared.

A snapshot path with `..` cannot be made with git (it refuses such paths in trees it writes),
so path safety is left to the C unit tests.
"""
import os
import stat

import pytest

from conftest import one_error_line

MANIFEST = ".projsync-checkout"


def tree_of_dir(root):
    """{path: (kind, data)} for every file and symlink (and empty directory) under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel == MANIFEST:
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("120000", os.readlink(full).encode())
            else:
                mode = "100755" if st.st_mode & 0o111 else "100644"
                with open(full, "rb") as f:
                    out[rel] = (mode, f.read())
        if not dirnames and not filenames and rel_dir != ".":
            out[os.path.normpath(rel_dir)] = ("dir", b"")
    return out


def tree_of_commit(repo, rev):
    out = {}
    for f in repo.ls_tree(rev):
        if f["type"] == "commit":
            out[f["path"]] = ("dir", b"")  # a submodule is an empty directory
        else:
            out[f["path"]] = (f["mode"], repo.blob(f["sha"]))
    return out


def build_v1(repo, other_sha):
    repo.write("README.md", "readme\n")
    repo.write("keep/untouched.txt", "never changes\n")
    repo.write("bin/run", "#!/bin/sh\n", exec_bit=True)
    repo.write("gone/soon/deleted.txt", "bye\n")
    repo.write("mod.txt", "v1\n")
    repo.write("ünï cødé.txt", "ü\n")
    repo.write("bin.dat", b"\x00\x01\x02" * 100)
    repo.symlink("link", "README.md")
    repo.gitlink("sub", other_sha)
    return repo.commit("v1")


def build_v2(repo):
    repo.rm("gone")
    repo.write("mod.txt", "v2\n")
    repo.write("added/new.txt", "new\n")
    repo.chmod_exec("bin/run", False)
    repo.rm("link")
    repo.symlink("link", "mod.txt")
    return repo.commit("v2")


@pytest.fixture
def other_sha(make_repo):
    o = make_repo("other")
    o.write("x", "x")
    return o.commit()


def test_checkout_mirrors_and_updates_incrementally(ps, repo, other_sha, tmp_path):
    c1 = build_v1(repo, other_sha)
    ps.add("p", str(repo.path))
    s1 = ps.sync("p")
    co = tmp_path / "co" / "nested"  # parents are created
    ps.ok("checkout", "p", co)
    assert tree_of_dir(co) == tree_of_commit(repo, c1)

    keep = co / "keep" / "untouched.txt"
    st_before = os.stat(keep)
    c2 = build_v2(repo)
    ps.sync("p")
    ps.ok("checkout", "p", co)
    assert tree_of_dir(co) == tree_of_commit(repo, c2)
    st_after = os.stat(keep)
    assert (st_after.st_ino, st_after.st_mtime_ns) == (st_before.st_ino, st_before.st_mtime_ns)
    assert not (co / "gone").exists()  # emptied directories go too

    # A file the user put there is left alone.
    (co / "mine.txt").write_text("user data\n")
    # Back to the first sync.
    ps.ok("checkout", "p", co, "--at", s1["id"])
    got = tree_of_dir(co)
    assert got.pop("mine.txt") == ("100644", b"user data\n")
    assert got == tree_of_commit(repo, c1)

    # Re-running with nothing to do changes nothing.
    st_before = os.stat(co / "mod.txt")
    ps.ok("checkout", "p", co, "--at", s1["id"])
    st_after = os.stat(co / "mod.txt")
    assert (st_after.st_ino, st_after.st_mtime_ns) == (st_before.st_ino, st_before.st_mtime_ns)


def test_checkout_into_fresh_dir_at_old_sync(ps, repo, other_sha, tmp_path):
    c1 = build_v1(repo, other_sha)
    ps.add("p", str(repo.path))
    s1 = ps.sync("p")
    build_v2(repo)
    ps.sync("p")
    ps.ok("checkout", "p", tmp_path / "old", "--at", s1["id"])
    assert tree_of_dir(tmp_path / "old") == tree_of_commit(repo, c1)


def test_checkout_errors(ps, repo, make_repo, tmp_path):
    repo.write("a", "a")
    repo.commit()
    ps.add("p", str(repo.path))
    # No succeeded sync yet: nothing to check out.
    r = ps("checkout", "p", tmp_path / "co")
    assert r.rc == 3 and one_error_line(r.err), r
    ps.sync("p")
    ps.ok("checkout", "p", tmp_path / "co")
    # Another project's folder is refused, and left as it was.
    other = make_repo("o")
    other.write("b", "b")
    other.commit()
    ps.add("q", str(other.path))
    ps.sync("q")
    before = tree_of_dir(tmp_path / "co")
    r = ps("checkout", "q", tmp_path / "co")
    assert r.rc == 4 and one_error_line(r.err), r
    assert tree_of_dir(tmp_path / "co") == before
    # A file in the way of a directory path cannot be overwritten into a folder.
    (tmp_path / "afile").write_text("x")
    r = ps("checkout", "p", tmp_path / "afile")
    assert r.rc == 1 and one_error_line(r.err), r


def test_checkout_skips_unstored_large_files(ps, repo, tmp_path):
    repo.write("small.txt", "s\n")
    repo.write("large.bin", b"L" * 5000)
    repo.commit()
    ps.add("p", str(repo.path), "--max-blob-size", "1000")
    ps.sync("p")
    r = ps.ok("checkout", "p", tmp_path / "co")
    assert (tmp_path / "co" / "small.txt").read_bytes() == b"s\n"
    assert not (tmp_path / "co" / "large.bin").exists()
    assert "large.bin" in r.out + r.err
