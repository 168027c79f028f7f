"""
`checkout NAME DIR`: the folder mirrors the snapshot (content, exec bits, symlinks; submodules
as empty directories), a re-run applies only what changed (untouched files keep their inode and
mtime; deleted files go, with the directories they leave empty), and `--at` checks out an older
sync. The folder's manifest (.projsync-checkout) is projsync's own and not compared.

A snapshot path with `..` cannot be made with git (it refuses such paths in trees it writes),
so path safety is left to the C unit tests.
"""
import fcntl
import json
import os
import random
import shutil
import signal
import stat
import time

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
    # A file named as the folder, or as a part of its path, is invalid input, left as it was.
    (tmp_path / "afile").write_text("x")
    for target in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        r = ps("checkout", "p", target)
        assert r.rc == 2 and one_error_line(r.err), r
        assert f"{target}" in r.err and "not a folder" in r.err, r
    assert (tmp_path / "afile").read_text() == "x"


def test_one_checkout_writes_a_folder_at_a_time(ps, repo, tmp_path):
    """A second checkout of a folder another one is writing fails at once (exit 4) and
    changes nothing; once the first is done, it goes on."""
    repo.write("a", "a")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    ps.ok("checkout", "p", tmp_path / "co")
    repo.write("b", "b")
    c2 = repo.commit()
    ps.sync("p")
    before = tree_of_dir(tmp_path / "co")
    # The first writer's lock, held as a running checkout holds it.
    fd = os.open(tmp_path / "co", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = ps("checkout", "p", tmp_path / "co")
        assert r.rc == 4 and one_error_line(r.err) and "another checkout" in r.err, r
        assert tree_of_dir(tmp_path / "co") == before
    finally:
        os.close(fd)
    ps.ok("checkout", "p", tmp_path / "co")
    assert tree_of_dir(tmp_path / "co") == tree_of_commit(repo, c2)


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


def test_checkout_of_a_lost_blob_fails_instead_of_passing_for_the_snapshot(ps, repo, tmp_path):
    # A blob deleted from the store behind projsync's back was skipped like a file over the
    # size limit: a warning that blamed the limit, exit 0, and a folder that was not the
    # snapshot. It is lost (within the limit, latest snapshot): listed, the rest written, and
    # the checkout fails (exit 1, blob_missing) naming verify; a stale copy is not left behind.
    from test_verify import delete_blob
    repo.write("keep.txt", "kept\n")
    repo.write("other.txt", "one\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"
    ps.ok("checkout", "p", co)
    repo.write("keep.txt", "changed, then lost\n")
    repo.write("other.txt", "two\n")
    repo.commit("c2")
    ps.sync("p")
    sha = repo.git("rev-parse", "HEAD:keep.txt").strip()
    delete_blob(ps, sha)
    r = ps("checkout", "p", co, "--json")
    assert r.rc == 1, r
    out = json.loads(r.out)
    assert out["missing"] == 1 and out["skipped"] == 0, out
    assert [(f["path"], f["lost"]) for f in out["failures"]] == [("keep.txt", True)], out
    assert sha in out["failures"][0]["reason"], out
    err = r.err.splitlines()[-1]
    assert "blob_missing" not in err and "lost" in err and "projsync verify p --blobs" in err, r
    assert "size limit" not in r.err, r
    assert (co / "other.txt").read_text() == "two\n"
    assert not (co / "keep.txt").exists()
    # Still not the snapshot on the next run, which tries again.
    assert ps("checkout", "p", co).rc == 1


def test_checkout_never_discards_what_it_did_not_write(ps, repo, tmp_path):
    """Issue 15 item 6: a folder of the user's is refused; local changes are listed and refuse
    the checkout (exit 4) until --force restores the snapshot; other files stay."""
    repo.write("a.txt", "upstream a\n")
    repo.write("b.txt", "upstream b\n")
    repo.write("tool", "#!/bin/sh\n", exec_bit=True)
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")

    own = tmp_path / "own"
    own.mkdir()
    (own / "a.txt").write_text("the user's own a\n")
    r = ps("checkout", "p", own)
    assert r.rc == 4 and one_error_line(r.err), r
    assert "not a projsync checkout" in r.err
    assert (own / "a.txt").read_text() == "the user's own a\n"
    assert not (own / MANIFEST).exists()

    co = tmp_path / "co"
    ps.ok("checkout", "p", co)
    (co / "a.txt").write_text("edited locally\n")
    (co / "b.txt").unlink()
    (co / "tool").chmod(0o644)
    (co / "notes.txt").write_text("mine\n")
    r = ps("checkout", "p", co)
    assert r.rc == 4 and one_error_line(r.err), r
    assert r.out.split("\n")[:-1] == ["modified      a.txt", "deleted       b.txt",
                                      "mode_changed  tool"], r
    assert (co / "a.txt").read_text() == "edited locally\n"
    r = ps("checkout", "p", co, "--json")
    assert r.rc == 4, r
    assert json.loads(r.out) == {"conflicts": [
        {"path": "a.txt", "change": "modified"}, {"path": "b.txt", "change": "deleted"},
        {"path": "tool", "change": "mode_changed"}]}

    # A file of the user's at a path the next snapshot adds is in the way as well.
    repo.write("c.txt", "upstream c\n")
    repo.commit()
    ps.sync("p")
    (co / "c.txt").write_text("the user's c\n")
    r = ps("checkout", "p", co, "--json")
    assert r.rc == 4, r
    assert {"path": "c.txt", "change": "untracked"} in json.loads(r.out)["conflicts"]

    r = ps.ok("checkout", "p", co, "--force", "--json")
    out = json.loads(r.out)
    assert len(out["discarded"]) == 4 and "discarded local change" in r.err
    assert tree_of_dir(co) == {**tree_of_commit(repo, "HEAD"), "notes.txt": ("100644", b"mine\n")}
    r = ps.ok("checkout", "p", co, "--json")
    assert json.loads(r.out)["written"] == 0 and r.err == ""


def test_checkout_refuses_a_directory_named_like_the_manifest(ps, repo, tmp_path):
    """Issue 15 item 7: refused like other unsafe paths, before anything is written."""
    repo.write("ok.txt", "ok\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"
    ps.ok("checkout", "p", co)
    before = (co / MANIFEST).read_bytes()
    repo.write(f"{MANIFEST}/sync_id", "planted\n")
    repo.write("later.txt", "later\n")
    repo.commit()
    ps.sync("p")
    r = ps("checkout", "p", co)
    assert r.rc == 2 and one_error_line(r.err) and MANIFEST in r.err, r
    assert (co / MANIFEST).read_bytes() == before and not (co / "later.txt").exists()
    r = ps("checkout", "p", tmp_path / "fresh")
    assert r.rc == 2 and not (tmp_path / "fresh").exists(), r
    # The folder is still a working checkout.
    repo.rm(MANIFEST)
    repo.commit()
    ps.sync("p")
    ps.ok("checkout", "p", co)
    assert (co / "later.txt").read_text() == "later\n"


def test_checkout_skips_a_symlink_no_file_system_can_hold(ps, repo, tmp_path):
    """Issue 15 item 8: a 4096-byte symlink target fails that entry alone, with a warning."""
    repo.write("a.txt", "a\n")
    repo.write("z.txt", "z\n")
    target = tmp_path / "target"
    target.write_bytes(b"x" * 4096)
    sha = repo.git("hash-object", "-w", str(target)).strip()
    repo.git("add", "-A")
    repo.git("update-index", "--add", "--cacheinfo", f"120000,{sha},long-link")
    repo.git("commit", "-q", "-m", "long link")
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"
    r = ps.ok("checkout", "p", co, "--json")
    out = json.loads(r.out)
    assert out["failed"] == 1 and out["written"] == 2, r
    assert [(f["path"], f["lost"]) for f in out["failures"]] == [("long-link", False)]
    assert "long-link" in r.err and "warning" in r.err
    assert (co / "a.txt").read_text() == "a\n" and (co / "z.txt").read_text() == "z\n"
    assert not os.path.lexists(co / "long-link")
    assert (co / MANIFEST).exists()
    # The next run applies what changed and keeps the folder a checkout.
    repo.write("a.txt", "a2\n")
    repo.git("add", "a.txt")
    repo.git("commit", "-q", "-m", "a2")
    ps.sync("p")
    r = ps.ok("checkout", "p", co)
    assert (co / "a.txt").read_text() == "a2\n" and (co / MANIFEST).exists()


def test_killed_checkout_leaves_no_temporary_file_behind(ps, repo, tmp_path):
    """A checkout killed while a file is being written leaves its temporary file (the file is
    written under a temporary name, then renamed into place). The next run finishes the
    checkout and removes that file: the folder then holds the snapshot and nothing else."""
    rnd = random.Random(7)
    for i in range(12):
        repo.write(f"d{i % 2}/f{i:02}.bin", rnd.randbytes(3_000_000))
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"

    def temporaries():
        return [os.path.join(d, n) for d, _, names in os.walk(co) for n in names
                if n.endswith(".tmp")]

    left = []
    for _ in range(20):
        shutil.rmtree(co, ignore_errors=True)
        proc = ps.popen("checkout", "p", co)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if co.exists() and temporaries():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        proc.communicate()
        left = temporaries()
        if proc.returncode == -signal.SIGKILL and left:
            break
    assert left, "no run was killed while writing a file"

    ps.ok("checkout", "p", co)
    assert temporaries() == []
    assert tree_of_dir(co) == tree_of_commit(repo, "HEAD")


@pytest.mark.parametrize("sig,code", [("INT", 130), ("TERM", 143)])
def test_interrupted_checkout_stops_cleanly_and_the_next_run_finishes(ps, repo, tmp_path, sig,
                                                                     code):
    """Ctrl-C (or SIGTERM) stops a checkout before its next file: no temporary file, a manifest
    that describes the folder, the shell's exit code for the signal; the next run finishes.
    The test hook raises the signal in the process after the 2nd file written, so the
    interruption falls mid-checkout every time."""
    for i in range(6):
        repo.write(f"d/f{i}.txt", f"{i}\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"
    r = ps("checkout", "p", co, env={"PROJSYNC_TEST_CHECKOUT_RAISE": f"{sig}:2"})
    assert r.rc == code and r.out == "" and one_error_line(r.err), r
    assert "interrupted" in r.err and str(co) in r.err, r
    names = [n for _, _, ns in os.walk(co) for n in ns]
    assert not [n for n in names if n.endswith(".tmp")], names
    assert MANIFEST in names and 0 < len(names) - 1 < 6, names
    r = ps.ok("checkout", "p", co)
    assert tree_of_dir(co) == tree_of_commit(repo, "HEAD")


def snapshot_of_folder(root):
    """Every byte and inode under root, the manifest included: to show nothing was written."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            with open(full, "rb") as f:
                out[os.path.relpath(full, root)] = (st.st_ino, st.st_mtime_ns, f.read())
    return out


@pytest.mark.parametrize("sig,code", [("INT", 130), ("TERM", 143)])
def test_a_signal_while_planning_wins_over_local_changes(ps, repo, tmp_path, sig, code):
    """A Ctrl-C (or SIGTERM) that arrives while checkout is still planning stops it with the
    signal's exit code, not exit 4, even when the plan then finds local changes: the user
    asked to stop. Nothing is written and no conflict list is printed. The test hook raises
    the signal after the first path planned."""
    for i in range(4):
        repo.write(f"f{i}.txt", f"{i}\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"
    ps.ok("checkout", "p", co)
    repo.write("f0.txt", "new upstream\n")
    repo.commit()
    ps.sync("p")
    (co / "f3.txt").write_text("mine\n")  # a local change the plan finds last
    before = snapshot_of_folder(co)

    r = ps("checkout", "p", co, env={"PROJSYNC_TEST_CHECKOUT_RAISE": f"{sig}:plan"})
    assert r.rc == code and r.out == "" and one_error_line(r.err), r
    assert "interrupted" in r.err and "local change" not in r.err, r
    assert snapshot_of_folder(co) == before

    # Without the signal the same run is refused for the local change, as before.
    r = ps("checkout", "p", co)
    assert r.rc == 4 and "f3.txt" in r.out, r


@pytest.mark.parametrize("sig,code", [("INT", 130), ("TERM", 143)])
def test_a_signal_after_the_plan_before_the_first_write_says_nothing_changed(ps, repo, tmp_path,
                                                                            sig, code):
    """A signal between the plan and the first entry said "DIR holds part of sync N" though
    no file was touched: it says no file changed, the files are the previous sync's, and the
    next run finishes."""
    for i in range(3):
        repo.write(f"f{i}.txt", f"{i}\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"
    ps.ok("checkout", "p", co)
    old = tree_of_dir(co)
    repo.write("f0.txt", "new\n")
    repo.rm("f1.txt")
    repo.commit()
    s2 = ps.sync("p")
    r = ps("checkout", "p", co, env={"PROJSYNC_TEST_CHECKOUT_RAISE": f"{sig}:apply"})
    assert r.rc == code and r.out == "" and one_error_line(r.err), r
    assert "before it changed any file" in r.err and "part of sync" not in r.err, r
    assert tree_of_dir(co) == old
    ps.ok("checkout", "p", co)
    assert tree_of_dir(co) == tree_of_commit(repo, "HEAD")
    # A new folder: created, still no file of the snapshot in it.
    new = tmp_path / "new"
    r = ps("checkout", "p", new, "--at", str(s2["id"]),
           env={"PROJSYNC_TEST_CHECKOUT_RAISE": f"{sig}:apply"})
    assert r.rc == code and "before it changed any file" in r.err, r
    assert [n for n in os.listdir(new) if n != MANIFEST] == [], os.listdir(new)
    ps.ok("checkout", "p", new)
    assert tree_of_dir(new) == tree_of_commit(repo, "HEAD")


def test_a_signal_during_the_final_manifest_write_is_not_heeded(ps, repo, tmp_path):
    """A signal that arrives once every entry is written, while the final manifest is being
    written, does not undo a finished checkout: it exits 0 with its summary, and the folder
    holds the snapshot with a complete manifest (a re-run has nothing to do)."""
    for i in range(3):
        repo.write(f"d/f{i}.txt", f"{i}\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    co = tmp_path / "co"
    r = ps("checkout", "p", co, env={"PROJSYNC_TEST_CHECKOUT_RAISE": "INT:manifest"})
    assert r.rc == 0 and "3 written" in r.out, r
    assert tree_of_dir(co) == tree_of_commit(repo, "HEAD")
    header = json.loads((co / MANIFEST).read_text().splitlines()[0])
    assert header["complete"] is True, header
    r = ps.ok("checkout", "p", co, "--json")
    assert json.loads(r.out)["written"] == 0, r


def test_a_manifest_field_out_of_range_is_a_malformed_manifest(ps, repo, tmp_path):
    # sscanf's %lld saturated a size of 99999999999999999999999: the file looked changed by
    # hand ("local modifications") instead of the manifest being refused as not ours, as bad
    # JSON or an absolute path is. Every field of an entry line is held to its range.
    repo.write("a.txt", "a\n")
    repo.write("b.txt", "b\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    co = tmp_path / "co"
    ps.ok("checkout", "p", co)
    good = (co / MANIFEST).read_text()
    head, *lines = good.splitlines(keepends=True)
    line = next(ln for ln in lines if ln.rstrip("\n").endswith(" a.txt"))
    f = line.split(" ")
    huge = "99999999999999999999999"
    bad_lines = [" ".join(f[:3] + [huge] + f[4:]),           # size
                 " ".join(f[:3] + ["-1"] + f[4:]),           # a negative size
                 " ".join(f[:4] + [huge] + f[5:]),           # inode
                 " ".join(f[:5] + ["1" + huge] + f[6:]),     # mtime
                 " ".join(f[:2] + ["7" * 30] + f[3:]),       # st_mode, octal
                 " ".join(["1" + "0" * 30] + f[1:]),         # mode
                 " ".join(f[:3] + ["12x"] + f[4:])]
    for bad in bad_lines:
        (co / MANIFEST).write_text(head + "".join(bad if ln == line else ln for ln in lines))
        for force in ((), ("--force",)):
            r = ps("checkout", "p", co, *force)
            assert r.rc == 2 and one_error_line(r.err), (bad, r)
            assert "not a projsync checkout manifest" in r.err and "malformed" in r.err, r
    (co / MANIFEST).write_text(good)
    r = ps.ok("checkout", "p", co)
    assert (co / "a.txt").read_text() == "a\n"
