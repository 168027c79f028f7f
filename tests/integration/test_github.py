"""
The GitHub source end to end: the real projsync binary syncs `github:OWNER/REPO` through the
GitHub REST emulator (tests/fakehub, a subprocess on a loopback port serving real git
repositories), with PROJSYNC_GITHUB_API pointing at it.

What a user relies on, each checked against git itself and the emulator's request log:
- a repository synced through GitHub and the same repository synced as a local path give the same
  snapshot (path, mode, blob SHA) and the same bytes, whatever the shapes (thousands of files,
  symlinks, submodules, non-ASCII names, branches with slashes, export-subst/export-ignore in the
  tarball, trees GitHub truncates);
- a no-op re-sync costs one request, answered 304; k changed files cost at most 2 + k requests;
  a force-push still gives the exact snapshot;
- every fault the emulator injects, in every phase, ends succeeded (after retries, which are
  spaced by the configured backoff and by GitHub's retry-after) or failed with a phase and a
  reason, with history and files unchanged;
- bad credentials, unknown repositories, empty repositories, renamed repositories and a spent rate
  limit each get the behaviour GitHub's documentation calls for.
"""
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace
from pathlib import Path

import pytest

from conftest import Projsync, changes_as_git, parse_events, one_error_line, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fakehub.client import FakeHub  # noqa: E402

BACKOFF_MS = 50
# The connector's per-request timeout, shortened so a hanging GitHub costs the tests seconds.
TIMEOUT_ENV = {"PROJSYNC_GITHUB_TIMEOUT_MS": "2000"}
HANG_SECONDS = 4


@pytest.fixture(scope="module")
def hub_proc():
    h = FakeHub.start()
    yield h
    h.stop()


@pytest.fixture
def hub(hub_proc):
    h = hub_proc
    h.clear_faults()
    h.config(tokens=None, truncate_at=100000, hang_seconds=HANG_SECONDS, renames={},
             private=[], blobs_as_json=False)
    h.rate_limit(5000, reset_in=3600)
    h.reset()
    return h


@pytest.fixture
def gh(ps, hub):
    """The projsync runner, its environment pointed at the emulator."""
    ps.env.update({"PROJSYNC_GITHUB_API": hub.url,
                   "PROJSYNC_GITHUB_BACKOFF_MS": str(BACKOFF_MS)})
    ps.env.update(TIMEOUT_ENV)
    ps.env.pop("GITHUB_TOKEN", None)
    return ps


_names = iter(range(1, 10 ** 6))


def publish(hub, repo, name=None):
    """Serves `repo` (a conftest Repo) as octo/NAME; returns the `github:` source string."""
    full = f"octo/{name or 'r%d' % next(_names)}"
    hub.add_repo(full, repo.path)
    return f"github:{full}"


def sync_events(ps, name, *opts, env=None):
    r = ps("sync", name, *opts, "--json", env=env)
    return r, parse_events(r)


def requests_summary(hub):
    return [(e["kind"], e["status"], e["path"], e["fault"]) for e in hub.log()]


def check_same(ps, repo, rev, *names, cat=None):
    """Every project in `names` lists exactly `git ls-tree -r rev`; `cat` (paths, default all)
    serves exactly git's bytes."""
    want = repo.ls_tree(rev)
    for name in names:
        assert ps.files(name) == want, f"{name}: files differ from git ls-tree {rev}"
    paths = [f for f in want if f["type"] == "blob" and (cat is None or f["path"] in cat)]
    for f in paths:
        for name in names:
            r = ps("cat", name, "--", f["path"])
            assert r.rc == 0, r
            assert r.outb == repo.blob(f["sha"]), f"{name}: cat {f['path']} differs from git"
    return want


def shapes(repo, nfiles=0):
    """A commit with every shape a snapshot must keep."""
    sub = repo.head() if repo.git("rev-parse", "--verify", "-q", "HEAD", check=False) else \
        "1" * 40
    repo.write("README.md", "hello\n")
    repo.write("bin/run.sh", "#!/bin/sh\necho run\n", exec_bit=True)
    repo.symlink("link", "README.md")
    repo.symlink("dirlink", "src/a")
    repo.symlink("dangling", "no/such/target")
    repo.write("src/a/b/c/deep.txt", "deep\n")
    repo.write("ünï cødé/ñame ü.txt", "ünïcødé\n")
    repo.write("with space/file name.txt", "spaces\n")
    repo.write("-leading-dash.txt", "dash\n")
    repo.write("bin.dat", b"\x00\x01\xff\xfe" * 300)
    repo.write("empty.txt", b"")
    repo.write("big.bin", os.urandom(300 * 1024))
    repo.gitlink("sub", sub)
    for i in range(nfiles):
        repo.write(f"many/d{i % 37:02d}/e{i % 5}/f{i:05d}.txt", f"file {i}\n" * (1 + i % 3))
    return repo.commit("shapes")


SPECIAL = {"README.md", "bin/run.sh", "link", "dirlink", "dangling", "src/a/b/c/deep.txt",
           "ünï cødé/ñame ü.txt", "with space/file name.txt", "-leading-dash.txt", "bin.dat",
           "empty.txt", "big.bin", "many/d00/e0/f00000.txt", "many/d01/e4/f01999.txt"}


# ------------------------------------------------------------------------------------------
# snapshots: GitHub == local path == git


def test_github_and_local_path_give_identical_snapshots(gh, hub, repo):
    c1 = shapes(repo, nfiles=2000)
    src = publish(hub, repo)
    gh.add("gh", src)
    gh.add("local", str(repo.path))
    s = gh.sync("gh")
    assert s["commit"] == c1 and s["counts"]["files"] == len(repo.ls_tree(c1))
    gh.sync("local")
    check_same(gh, repo, c1, "gh", "local", cat=SPECIAL)
    first = requests_summary(hub)
    # A first sync of 2000 files is a handful of requests (tree + tarball), not one per file.
    assert len(first) <= 20, first
    # Every API request says who it is and which API version it speaks, as GitHub asks.
    for e in hub.log():
        if e["kind"] != "codeload":
            assert e["user_agent"] and e["api_version"] == "2022-11-28", e
            assert "application/vnd.github" in (e["accept"] or ""), e

    # Branches with slashes, and through the GitHub branch listing.
    repo.switch("feature/x/y", create=True)
    repo.write("feature only.txt", "f\n")
    c2 = repo.commit("on a branch with slashes")
    repo.switch("main")
    branches = gh.json("branches", "gh")
    names = [b["name"] if isinstance(b, dict) else b for b in branches]
    assert "feature/x/y" in names and "main" in names
    gh.add("ghb", src, "--branch", "feature/x/y")
    gh.add("localb", str(repo.path), "--branch", "feature/x/y")
    assert gh.sync("ghb")["commit"] == c2
    gh.sync("localb")
    check_same(gh, repo, c2, "ghb", "localb", cat={"feature only.txt", "README.md"})


def test_branch_listing_follows_every_link_page(gh, hub, repo):
    repo.write("a", "a\n")
    c = repo.commit()
    stdin = "".join(f"create refs/heads/topic/{i:03d} {c}\n" for i in range(230))
    import subprocess
    subprocess.run(["git", "update-ref", "--stdin"], cwd=repo.path, input=stdin.encode(),
                   check=True)
    gh.add("p", publish(hub, repo))
    hub.reset()
    branches = gh.json("branches", "p")
    names = sorted(b["name"] if isinstance(b, dict) else b for b in branches)
    assert names == sorted(["main"] + [f"topic/{i:03d}" for i in range(230)])
    pages = [e for e in hub.log() if e["kind"] == "branches"]
    assert len(pages) == 3, requests_summary(hub)          # 100 + 100 + 31
    assert "per_page=100" in pages[0]["path"]
    assert pages[1]["path"].startswith("/repositories/")   # the Link URL, followed as given


def test_tarball_with_export_attributes_is_verified_and_completed(gh, hub, repo):
    """GitHub's tarballs honour export-ignore and export-subst, so some tarball content is not
    the blob git stores: the connector must verify each SHA-1 and fetch those blobs instead."""
    repo.write(".gitattributes", "version.txt export-subst\nsecret.txt export-ignore\n")
    repo.write("version.txt", "commit $Format:%H$\n")
    repo.write("secret.txt", "not in archives\n")
    for i in range(200):
        repo.write(f"f/{i:03d}.txt", f"{i}\n")
    c = repo.commit()
    gh.add("p", publish(hub, repo))
    gh.sync("p")
    check_same(gh, repo, c, "p", cat={"version.txt", "secret.txt", ".gitattributes"})


def test_truncated_tree_still_syncs_completely(gh, hub, repo):
    """Above GitHub's recursive-tree limit a first sync lists the tree from the tarball it
    downloads anyway: the truncated tree, the tarball, nothing per directory."""
    for i in range(1500):
        repo.write(f"d{i % 4}/s{i % 9}/f{i:04d}.txt", f"{i}\n")
    repo.symlink("d0/link", "s0")
    repo.write("d1/run.sh", "#!/bin/sh\n", exec_bit=True)
    c = repo.commit()
    hub.truncate_at(400)
    gh.add("p", publish(hub, repo), "--branch", "main")
    gh.sync("p")
    check_same(gh, repo, c, "p", cat={"d0/link", "d3/s8/f1499.txt", "d1/run.sh"})
    kinds = [e["kind"] for e in hub.log()]
    assert kinds.count("tree") == 1 and kinds.count("tarball") == 1, requests_summary(hub)
    assert "blob" not in kinds, requests_summary(hub)


def test_a_full_ref_as_branch_is_refused_with_the_way_out(gh, hub, repo):
    """`--branch refs/heads/main` is not a branch name: refused as a missing branch, with the
    hint to give the name (as for git sources, test_audit)."""
    repo.write("a.txt", "a\n")
    repo.commit()
    src = publish(hub, repo)
    for args in (("project", "add", "q", src, "--branch"), ("sync", "p", "--branch")):
        if args[0] == "sync" and gh("project", "show", "p").rc != 0:
            gh.add("p", src)
        r, nope = gh(*args, "refs/heads/main"), gh(*args, "nope")
        assert r.rc == nope.rc != 0 and one_error_line(r.err), (r, nope)
        assert "not found" in r.err and "without refs/heads/" in r.err, r
        assert "refs/heads/" not in nope.err, nope


def test_tarball_listing_completes_what_the_archive_leaves_out(gh, hub, repo):
    """The tarball leaves out export-ignore paths and submodules and rewrites export-subst
    files: those directories' ids differ from the head's, and only they are read (tree API),
    the rewritten blobs fetched (blob API). The anonymous 60/h limit suffices: at most 10
    requests plus one per submodule, whatever the size."""
    for i in range(3000):
        repo.write(f"src/m{i % 30:02d}/f{i:04d}.c", f"int f{i};\n")
    repo.write(".gitattributes", "/VERSION export-subst\n/ci export-ignore\n"
               "src/m07/secret.txt export-ignore\n")
    repo.write("VERSION", "$Format:%H$\n")
    repo.write("ci/build.sh", "#!/bin/sh\nmake\n", exec_bit=True)
    repo.write("src/m07/secret.txt", "kept out of archives\n")
    repo.symlink("src/current", "m01")
    repo.gitlink("deps/lib", "2" * 40)
    repo.gitlink("vendor", "3" * 40)
    c = repo.commit()
    hub.truncate_at(3000)
    hub.rate_limit(60, reset_in=3600)
    gh.add("p", publish(hub, repo), "--branch", "main")
    hub.reset()
    gh.sync("p")
    check_same(gh, repo, c, "p", cat={"VERSION", "ci/build.sh", "src/m07/secret.txt",
                                      "src/current", ".gitattributes"})
    log = requests_summary(hub)
    kinds = [e[0] for e in log]
    assert kinds.count("tarball") == 1, log
    assert len(log) <= 10 + 2, log
    assert hub.counters()["rate"]["used"] <= 10 + 2


# ------------------------------------------------------------------------------------------
# request economy


def test_noop_resync_is_exactly_one_request_answered_304(gh, hub, repo):
    """With its branch set. A project following the default branch also asks for the
    repository (see test_default_branch_is_asked_at_every_sync)."""
    shapes(repo, nfiles=50)
    gh.add("p", publish(hub, repo), "--branch", "main")
    first = gh.sync("p")
    hub.reset()
    used = hub.counters()["rate"]["used"]
    r, events = sync_events(gh, "p")
    assert events[-1]["kind"] == "succeeded", r
    log = hub.log()
    assert [(e["status"]) for e in log] == [304], requests_summary(hub)
    assert log[0]["if_none_match"], log
    assert hub.counters()["rate"]["used"] == used      # a 304 costs no rate limit
    assert events[-1]["summary"]["commit"] == first["commit"]
    assert events[-1]["requests"] == 1


@pytest.mark.parametrize("k,truncate_at", [(1, None), (7, None), (3, 100)],
                         ids=["k1", "k7", "k3-tree-above-githubs-limit"])
def test_fast_forward_of_k_files_costs_at_most_2_plus_k(gh, hub, repo, k, truncate_at):
    """2 + k for a project with its branch set: the conditional head request, the compare of
    the last synced commit with the head (paths, blob ids and the head's tree; the modes come
    from the stored snapshot and the result is checked against that tree; its commits are the
    ones `projsync log` lists, issue 16) and one request per changed blob. No tree is read, so a
    tree above GitHub's recursive limit costs the same."""
    for i in range(300):
        repo.write(f"src/m{i % 10}/f{i:03d}.c", f"int v{i} = {i};\n")
    c1 = repo.commit()
    gh.add("p", publish(hub, repo), "--branch", "main")
    if truncate_at:
        hub.truncate_at(truncate_at)
    gh.sync("p")
    for i in range(k):
        repo.write(f"src/m{i % 10}/f{i:03d}.c", f"int v{i} = {i + 1000};\n")
    c2 = repo.commit(f"{k} files")
    hub.reset()
    s = gh.sync("p")
    log = requests_summary(hub)
    assert len(log) == 2 + k, f"{len(log)} requests for {k} changed files: {log}"
    assert sorted(e[0] for e in log) == sorted(["commit", "compare"] + ["blob"] * k), log
    assert s["commit"] == c2
    assert changes_as_git(gh.json("changes", s["id"])) == repo.diff(c1, c2)
    check_same(gh, repo, c2, "p", cat={f"src/m{i % 10}/f{i:03d}.c" for i in range(k)})


def test_resync_bytes_follow_the_change_not_the_repository(gh, hub, repo):
    """The bytes of a 10-file re-sync do not grow with the repository: no tree (let alone the
    recursive one of every path) and no tarball, only the compare and the 10 blobs."""
    sizes = {}
    for n in (500, 4000):
        for i in range(n):
            repo.write(f"t{n}/d{i % 40:02d}/f{i:05d}.txt", f"file {i} of {n}\n")
        repo.commit(f"{n} files")
        name = f"p{n}"
        gh.add(name, publish(hub, repo), "--branch", "main")
        gh.sync(name)
        for i in range(10):
            repo.write(f"t{n}/d{i:02d}/f{i:05d}.txt", f"changed {i} of {n}\n")
        c = repo.commit("10 files")
        hub.reset()
        gh.sync(name)
        counters = hub.counters()
        kinds = {k: v for k, v in counters["by_kind"].items() if v}
        assert kinds == {"commit": 1, "compare": 1, "blob": 10}, kinds
        sizes[n] = counters["bytes"]
        check_same(gh, repo, c, name, cat={f"t{n}/d00/f00000.txt"})
    # The compare lists the same 10 files for both; only the commit objects in it differ.
    assert sizes[4000] < 2 * sizes[500] and sizes[4000] < 64 * 1024, sizes


def test_guessed_modes_are_corrected_from_the_differing_trees_only(gh, hub, repo):
    """GitHub's compare has no modes: a new executable, a symlink and a file made executable are
    first guessed wrong, the computed tree differs from the head's, and the head's trees are
    read down from the root only where their ids differ from the computed ones (one request
    each), never the recursive tree. The snapshot is exact."""
    for i in range(200):
        repo.write(f"a/b{i % 4}/f{i:03d}.txt", f"{i}\n")
    repo.write("c/plain.sh", "#!/bin/sh\n")
    c1 = repo.commit()
    gh.add("p", publish(hub, repo), "--branch", "main")
    gh.sync("p")
    repo.write("a/b1/new.sh", "#!/bin/sh\necho new\n", exec_bit=True)   # added, executable
    repo.symlink("a/b2/link", "../b1/new.sh")                             # added, symlink
    repo.chmod_exec("c/plain.sh", True)                                  # mode only
    repo.write("a/b3/f003.txt", "edited\n")                               # plain edit
    c2 = repo.commit("modes")
    hub.reset()
    s = gh.sync("p")
    log = hub.log()
    trees = sorted(e["path"].rsplit("/", 1)[-1] for e in log if e["kind"] == "tree")
    assert not any("recursive" in t for t in trees), trees
    # root, a, a/b1, a/b2, c: the directories whose computed ids differ; not a/b0 nor a/b3.
    assert len(trees) == 5, requests_summary(hub)
    assert len(log) == 2 + 3 + 5, requests_summary(hub)    # head, compare, 3 new blobs, trees
    assert changes_as_git(gh.json("changes", s["id"])) == repo.diff(c1, c2)
    check_same(gh, repo, c2, "p", cat={"a/b1/new.sh", "a/b2/link", "c/plain.sh"})


def test_compare_that_does_not_fast_forward_falls_back_to_the_tree(gh, hub, repo):
    """A force-push: GitHub's compare says "diverged" (the last synced commit is not an
    ancestor), so the changes come from the head's recursive tree against the snapshot."""
    repo.write("a.txt", "a\n")
    c1 = repo.commit()
    repo.write("b.txt", "b\n")
    c2 = repo.commit()
    gh.add("p", publish(hub, repo), "--branch", "main")
    assert gh.sync("p")["commit"] == c2
    repo.reset_hard(c1)
    repo.write("c.txt", "c\n", exec_bit=True)
    c3 = repo.commit("diverged")
    hub.reset()
    s = gh.sync("p")
    kinds = [e["kind"] for e in hub.log()]
    assert kinds[:3] == ["commit", "compare", "tree"], requests_summary(hub)
    assert "recursive=1" in hub.log()[2]["path"], requests_summary(hub)
    assert changes_as_git(gh.json("changes", s["id"])) == repo.diff(c2, c3)
    check_same(gh, repo, c3, "p")


def test_incremental_changes_of_every_kind_are_exact(gh, hub, repo):
    shapes(repo, nfiles=120)
    c1 = repo.head()
    gh.add("p", publish(hub, repo))
    gh.add("local", str(repo.path))
    gh.sync("p")
    repo.write("README.md", "changed\n")                           # modify
    repo.rm("empty.txt")                                           # delete
    repo.mv("with space/file name.txt", "moved/file name.txt")    # rename
    repo.chmod_exec("bin/run.sh", False)                           # mode only
    repo.write("src/a/b/c/deep.txt", "deep and executable\n", exec_bit=True)  # content + mode
    repo.write("new/tool.sh", "#!/bin/sh\n", exec_bit=True)      # added, executable
    repo.symlink("new/link", "../README.md")                      # added symlink
    repo.rm("link")
    repo.write("link", "a file where a symlink was\n")            # type change
    repo.gitlink("sub", c1)                                        # submodule moved
    c2 = repo.commit("every kind")
    s = gh.sync("p")
    gh.sync("local")
    assert changes_as_git(gh.json("changes", s["id"])) == repo.diff(c1, c2)
    check_same(gh, repo, c2, "p", "local",
               cat={"README.md", "link", "new/link", "new/tool.sh", "src/a/b/c/deep.txt"})


def test_force_push_gives_the_exact_snapshot(gh, hub, repo):
    repo.write("a.txt", "a\n")
    c1 = repo.commit()
    repo.write("b.txt", "b\n")
    repo.write("dir/c.txt", "c\n")
    c2 = repo.commit()
    gh.add("p", publish(hub, repo))
    assert gh.sync("p")["commit"] == c2
    repo.reset_hard(c1)
    repo.write("a.txt", "rewritten\n")
    repo.write("dir/d.txt", "d\n", exec_bit=True)
    c3 = repo.commit("rewritten history")
    s = gh.sync("p")
    assert s["commit"] == c3
    assert changes_as_git(gh.json("changes", s["id"])) == repo.diff(c2, c3)
    check_same(gh, repo, c3, "p")
    # And back to an ancestor (GitHub compare says "behind").
    repo.reset_hard(c1)
    s = gh.sync("p")
    assert s["commit"] == c1
    check_same(gh, repo, c1, "p")


# ------------------------------------------------------------------------------------------
# repositories GitHub treats specially


def test_empty_repository_gives_an_empty_snapshot_then_fills(gh, hub, repo):
    src = publish(hub, repo)
    gh.add("p", src)
    s = gh.sync("p")
    assert s["counts"]["files"] == 0 and gh.files("p") == []
    repo.write("first.txt", "1\n")
    c = repo.commit()
    assert gh.sync("p")["commit"] == c
    check_same(gh, repo, c, "p")


def test_unknown_or_hidden_repository_is_refused_at_add(gh, hub, repo):
    r = gh("project", "add", "p", "github:octo/does-not-exist")
    assert r.rc != 0 and one_error_line(r.err), r
    assert "not found" in r.err.lower(), r
    repo.write("a", "a\n")
    repo.commit()
    src = publish(hub, repo, "hidden")
    hub.config(private=["octo/hidden"])
    r = gh("project", "add", "p", src)
    assert r.rc != 0 and one_error_line(r.err), r
    assert gh.json("project", "list") == []


def test_github_url_form_names_the_same_repository(gh, hub, repo):
    repo.write("a.txt", "a\n")
    c = repo.commit()
    publish(hub, repo, "url-form")
    gh.add("p", "https://github.com/octo/url-form.git")
    assert gh.sync("p")["commit"] == c
    check_same(gh, repo, c, "p")
    assert all(e["path"].split("?")[0].split("/")[2:4] == ["octo", "url-form"]
               or e["kind"] == "codeload" for e in hub.log()), requests_summary(hub)


def test_renamed_repository_is_followed(gh, hub, repo):
    repo.write("a.txt", "a\n")
    repo.commit()
    src = publish(hub, repo, "before-rename")
    gh.add("p", src)
    gh.sync("p")
    hub.add_repo("octo/after-rename", repo.path)
    hub.rename("octo/before-rename", "octo/after-rename")
    repo.write("b.txt", "b\n")
    c2 = repo.commit()
    hub.reset()
    assert gh.sync("p")["commit"] == c2
    check_same(gh, repo, c2, "p")
    assert any(e["status"] == 301 for e in hub.log()), requests_summary(hub)


# ------------------------------------------------------------------------------------------
# credentials and rate limits


def test_bad_credentials_fail_the_sync_clearly_and_never_show_the_token(gh, hub, repo):
    repo.write("a.txt", "a\n")
    c = repo.commit()
    hub.tokens(["good-token-123"])
    gh.ok("project", "add", "p", publish(hub, repo), env={"GITHUB_TOKEN": "good-token-123"})
    s = gh.sync("p", env={"GITHUB_TOKEN": "good-token-123"})
    assert s["commit"] == c
    repo.write("b.txt", "b\n")
    repo.commit()
    secret = "bad-token-SECRET-456"
    r = gh("sync", "p", "--json", env={"GITHUB_TOKEN": secret})
    events = parse_events(r)
    assert events[-1]["kind"] == "failed" and r.rc == 1, r
    err = events[-1]["summary"]["error"]
    assert "bad credentials" in err["message"].lower(), err
    assert secret not in r.out and secret not in r.err
    assert secret not in json.dumps(gh.history("p")) + json.dumps(gh.project("p"))
    assert gh.files("p") == repo.ls_tree(c)     # the failed sync changed nothing
    # Authorization is sent as GitHub documents it.
    assert all(e["authorization"] == "yes" for e in hub.log())


def test_spent_rate_limit_warns_then_waits_for_the_reset(gh, hub, repo):
    repo.write("a.txt", "a\n")
    c = repo.commit()
    gh.add("p", publish(hub, repo))
    hub.rate_limit(limit=60, remaining=0, reset_in=2)
    t0 = time.monotonic()
    r, events = sync_events(gh, "p")
    assert events[-1]["kind"] == "succeeded", r
    warnings = [e for e in events if e["kind"] == "warning"]
    assert warnings and "rate limit" in warnings[0]["message"].lower(), events
    assert time.monotonic() - t0 >= 1.0
    check_same(gh, repo, c, "p")


def test_spent_rate_limit_with_a_far_reset_fails_clearly(gh, hub, repo):
    repo.write("a.txt", "a\n")
    repo.commit()
    gh.add("p", publish(hub, repo))
    hub.rate_limit(limit=60, remaining=0, reset_in=3 * 3600)
    t0 = time.monotonic()
    r, events = sync_events(gh, "p")
    assert events[-1]["kind"] == "failed", r
    assert "rate limit" in events[-1]["summary"]["error"]["message"].lower()
    assert any(e["kind"] == "warning" for e in events), events
    assert time.monotonic() - t0 < 60
    assert snapshot_or_none(gh, "p") is None      # nothing was half-applied


@pytest.mark.parametrize("fault,words", [
    ("primary_far", ["rate limit exhausted", "an unreadable time (999999999999999)"]),
    ("secondary_far", ["secondary rate limit", "retry after 999999999999999 s"]),
])
def test_a_wait_beyond_the_limit_fails_at_once_without_overflow(gh, hub, repo, fault, words):
    # 18-digit reset and retry-after values: scaled to milliseconds they overflowed (UBSan
    # reports fail the test), and the reset was printed from an unset clock.
    repo.write("a.txt", "a\n")
    repo.commit()
    gh.add("p", publish(hub, repo))
    hub.reset()
    hub.fault("*", fault, nth=1)
    t0 = time.monotonic()
    r, events = sync_events(gh, "p")
    assert events[-1]["kind"] == "failed", r
    msg = events[-1]["summary"]["error"]["message"]
    assert all(w in msg for w in words), msg
    assert "PROJSYNC_GITHUB_MAX_WAIT" in msg
    assert time.monotonic() - t0 < 10
    assert len(hub.log()) == 1, requests_summary(hub)     # no wait, no retry
    assert snapshot_or_none(gh, "p") is None


def test_blobs_in_json_form_sync_whatever_their_size(gh, hub, repo):
    # GitHub may answer a blob in its JSON form (base64, a third larger) even when the raw
    # media type is asked for: a 1.5 MiB blob must still fit.
    repo.write("big.bin", os.urandom(1536 * 1024))
    repo.write("small.txt", "small\n")
    c = repo.commit()
    hub.config(blobs_as_json=True)
    gh.add("p", publish(hub, repo))
    gh.sync("p")
    check_same(gh, repo, c, "p")
    assert [e["status"] for e in hub.log() if e["kind"] == "blob"] == [200, 200], \
        requests_summary(hub)


def test_an_unresolvable_host_fails_at_once_naming_it(gh):
    # The default backoff: retried like a 5xx, a DNS failure took 15 s to report.
    host = "projsync-no-such-host.invalid"
    env = {"PROJSYNC_GITHUB_API": f"http://{host}", "PROJSYNC_GITHUB_BACKOFF_MS": "60000"}
    t0 = time.monotonic()
    r = gh("project", "add", "p", "github:octo/r", env=env)
    assert time.monotonic() - t0 < 5
    assert r.rc == 1, r
    assert one_error_line(r.err), r.err
    assert f"cannot resolve host name {host}" in r.err, r.err
    assert gh.json("project", "list") == []


def test_a_silent_github_bounds_the_check(gh, hub, repo):
    # `project add` waits for GitHub's answer: at most the network timeout in all, retries
    # included, then a clear error.
    gh.env.pop("PROJSYNC_GITHUB_TIMEOUT_MS")
    gh.env["PROJSYNC_NET_TIMEOUT"] = "1.5"
    source = publish(hub, repo)
    hub.fault("repo", "hang", nth=1, times=100)
    t0 = time.monotonic()
    r = gh("project", "add", "p", source)
    took = time.monotonic() - t0
    assert r.rc == 1, r
    assert one_error_line(r.err), r.err
    assert "did not answer" in r.err and "PROJSYNC_NET_TIMEOUT" in r.err, r.err
    assert 1.2 < took < 4, took


def test_a_failing_github_is_no_bad_source(gh, hub, repo):
    # GitHub answering 503 to every retry of the check is the host failing, not a repository
    # it does not have: `project add` exits 1 (a retry may succeed), not 2, and stores nothing.
    source = publish(hub, repo)
    hub.fault("repo", "503", nth=1, times=100)
    r = gh("project", "add", "p", source)
    assert r.rc == 1, r
    assert one_error_line(r.err) and "503" in r.err, r.err
    assert gh.json("project", "list") == []


# ------------------------------------------------------------------------------------------
# faults in every phase


def retried(log, kind):
    """The (time, status) of each request of `kind`."""
    return [(e["time"], e["status"]) for e in log if e["kind"] == kind]


def test_retries_are_spaced_by_the_backoff_and_by_retry_after(gh, hub, repo):
    repo.write("a.txt", "a\n")
    c1 = repo.commit()
    gh.add("p", publish(hub, repo))
    gh.sync("p")
    repo.write("a.txt", "b\n")
    c2 = repo.commit()
    hub.reset()
    hub.fault("commit", "503", nth=1, times=2)
    assert gh.sync("p")["commit"] == c2
    tries = retried(hub.log(), "commit")
    assert [st for _, st in tries][:3] == [503, 503, 200], requests_summary(hub)
    gaps = [b[0] - a[0] for a, b in zip(tries, tries[1:3])]
    assert gaps[0] >= BACKOFF_MS / 1000 * 0.9, gaps
    assert gaps[1] >= gaps[0] * 1.5 or gaps[1] >= 2 * BACKOFF_MS / 1000 * 0.9, gaps
    # GitHub's secondary limit says how long to wait: retry-after: 1.
    repo.write("a.txt", "c\n")
    c3 = repo.commit()
    hub.clear_faults()
    hub.reset()
    hub.fault("commit", "secondary", nth=1)
    assert gh.sync("p")["commit"] == c3
    tries = retried(hub.log(), "commit")
    assert [st for _, st in tries][:2] == [403, 200], requests_summary(hub)
    assert tries[1][0] - tries[0][0] >= 0.95
    check_same(gh, repo, c3, "p")
    assert c1 != c3


def test_a_persistent_fault_fails_after_bounded_retries(gh, hub, repo):
    repo.write("a.txt", "a\n")
    c1 = repo.commit()
    gh.add("p", publish(hub, repo))
    gh.sync("p")
    before = gh.history("p")
    repo.write("a.txt", "b\n")
    repo.commit()
    hub.fault("*", "502", nth=1, times=10 ** 6)
    t0 = time.monotonic()
    s = gh.sync("p", expect="failed")
    assert s["error"] and s["error"]["message"] and s["phase"]
    assert time.monotonic() - t0 < 60
    attempts = len(hub.log())
    assert 2 <= attempts <= 12, requests_summary(hub)
    assert gh.history("p")[1:] == before
    assert gh.files("p") == repo.ls_tree(c1)
    hub.clear_faults()
    gh.sync("p")


# Every fault in every phase: on one endpoint of each phase (the first the sync uses, in name
# order) every kind of fault; on the phase's other endpoints the quick ones (the slow ones,
# a hang and a secondary limit, take the same retry path whatever the endpoint), to keep the
# suite's time in bounds.
FAULTS = ["500", "cut", "truncated_json", "hang", "secondary"]
HEAD_FAULTS = FAULTS + ["503", "secondary_429"]      # the first request of a sync
QUICK_FAULTS = ["cut", "truncated_json"]
PREPARE_KINDS = {"repo", "branch", "branches", "commit", "git_commit"}
PHASES = {"prepare": PREPARE_KINDS, "scan": {"tree", "compare"},
          "fetch": {"blob", "tarball", "codeload"}}


def fault_matrix(kinds):
    """[(kind, fault)] covering every phase `kinds` (the endpoints a clean sync used) touch."""
    out = []
    for phase, members in PHASES.items():
        used = sorted(members & set(kinds))
        for i, kind in enumerate(used):
            full = HEAD_FAULTS if phase == "prepare" else FAULTS
            out += [(kind, f) for f in (full if i == 0 else QUICK_FAULTS)]
    assert {k for k, _ in out} == set(kinds), f"endpoints outside any phase: {kinds}"
    return out


def fault_round(gh, hub, repo, name, kind, fault, first=False):
    """Injects `fault` into the first request of `kind` of one sync of `name` and checks the
    outcome: succeeded with the exact snapshot, or (only for malformed JSON, which is not
    transient) failed with a phase and a reason and history and files unchanged, after which a
    clean sync succeeds. Returns whether the fault was met."""
    hub.reset()
    hub.fault(kind, fault, nth=1)
    # A first sync starts from nothing: no history, no snapshot (no need to ask).
    before_hist = [] if first else gh.history(name)
    before_files = None if first else snapshot_or_none(gh, name)
    r = gh("sync", name, "--json")
    events = parse_events(r)
    last = events[-1]
    hit = any(e["fault"] for e in hub.log())
    label = f"fault {fault} on the first {kind} request: {requests_summary(hub)}\n{r!r}"
    head = repo.head()
    if last["kind"] == "succeeded":
        assert r.rc == 0, label
        assert last["summary"]["commit"] == head, label
        assert gh.files(name) == repo.ls_tree(head), label
        return hit
    assert last["kind"] == "failed", label
    assert r.rc == 1 and one_error_line(r.err), label
    s = last["summary"]
    assert s["error"] and s["error"]["message"] and s["phase"], label
    assert fault == "truncated_json", f"a single transient fault must be retried: {label}"
    assert gh.history(name)[1:] == before_hist, label
    assert snapshot_or_none(gh, name) == before_files, label
    hub.clear_faults()
    assert gh.sync(name)["commit"] == head
    assert gh.files(name) == repo.ls_tree(head), label
    return hit


def snapshot_or_none(ps, name):
    """`files --json`, or None for a project without a succeeded sync (exit code 3)."""
    r = ps("files", name, "--json")
    if r.rc == 3 and "no snapshot yet" in r.err:
        return None
    assert r.rc == 0, r
    return json.loads(r.out)


def kinds_of_a_clean_sync(gh, hub, name):
    hub.reset()
    gh.sync(name)
    return sorted({e["kind"] for e in hub.log()})


def test_every_fault_in_every_phase_of_a_first_sync(gh, hub, repo, tmp_path):
    shapes(repo, nfiles=150)
    src = publish(hub, repo)
    gh.add("probe", src)
    kinds = kinds_of_a_clean_sync(gh, hub, "probe")
    assert PREPARE_KINDS & set(kinds) and "tree" in kinds, kinds
    assert {"codeload", "blob"} & set(kinds), kinds
    n = 0
    for kind, fault in fault_matrix(kinds):
        n += 1
        # A store of its own: blobs are never fetched twice within one store.
        ps = Projsync(tmp_path / f"store{n}")
        ps.env = dict(gh.env)
        ps.add("p", src)
        hub.clear_faults()
        assert fault_round(ps, hub, repo, "p", kind, fault, first=True), (kind, fault)


def test_every_fault_in_every_phase_of_an_incremental_sync(gh, hub, repo):
    for i in range(60):
        repo.write(f"d{i % 3}/f{i:02d}.txt", f"{i}\n")
    repo.commit()
    gh.add("p", publish(hub, repo))
    gh.sync("p")
    step = 0

    def change():
        nonlocal step
        step += 1
        repo.write(f"d{step % 3}/f{step % 60:02d}.txt", f"step {step}\n")
        repo.write(f"new/{step}.txt", f"new {step}\n")
        repo.commit(f"step {step}")

    change()
    kinds = kinds_of_a_clean_sync(gh, hub, "p")
    assert PREPARE_KINDS & set(kinds) and "blob" in kinds, kinds
    for kind, fault in fault_matrix(kinds):
        change()
        hub.clear_faults()
        assert fault_round(gh, hub, repo, "p", kind, fault), (kind, fault)
    ok = [h for h in gh.history("p") if h["status"] == "succeeded"]
    assert ok[0]["commit"] == repo.head()
    assert gh.files("p") == repo.ls_tree(repo.head())


# ------------------------------------------------------------------------------------------
# `projsync serve` /metrics: upstream requests by source kind and GitHub's rate limit


def metric(text, name):
    """The value of the sample `name` (with its labels, as printed) in a /metrics answer, or
    None when the server does not print it."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ", 1)[1])
    return None


def test_metrics_count_upstream_requests_by_kind_and_show_githubs_rate_limit(gh, hub, repo):
    from server_util import Server, wait_status

    shapes(repo, nfiles=20)
    hub.rate_limit(5000, remaining=4321, reset_in=3600)
    gh.add("hubbed", publish(hub, repo))
    gh.add("local", str(repo.path))
    srv = Server(gh)
    try:
        st, _, m = srv.get("/metrics")
        text = m.decode()
        # A fresh process has seen no GitHub answer: no gauge that would read as "0 left".
        assert metric(text, "projsync_github_rate_limit_remaining") is None, text
        assert metric(text, "projsync_github_rate_limit_reset_seconds") is None, text
        assert metric(text, 'projsync_upstream_requests_total{source_kind="github"}') == 0

        def run(name):
            st, _, s = srv.post(f"/api/v1/projects/{name}/sync")
            assert st == 202, s
            done = wait_status(srv, s["id"], ("succeeded", "failed", "cancelled"))
            assert done["status"] == "succeeded", done
            return done

        hub.reset()
        first = run("hubbed")
        sent = len(hub.log())
        rate = hub.get_json("/rate_limit")[2]["resources"]["core"]
        loc = run("local")
        st, _, m = srv.get("/metrics")
        text = m.decode()
        github = metric(text, 'projsync_upstream_requests_total{source_kind="github"}')
        assert github == first["requests"] == sent > 0, text
        assert metric(text, 'projsync_upstream_requests_total{source_kind="git"}') == \
            loc["requests"], text
        # The gauges are what the emulator said in its last answer (nothing asked it since).
        assert rate["remaining"] < 4321
        assert metric(text, "projsync_github_rate_limit_remaining") == rate["remaining"], text
        assert metric(text, "projsync_github_rate_limit_reset_seconds") == rate["reset"], text

        # A counter: a second (no-op: the repository and the head, both conditional and
        # answered 304, since this process saw the repository's ETag) sync adds to it.
        hub.reset()
        second = run("hubbed")
        assert second["requests"] == 2
        assert [e["status"] for e in hub.log()] == [304, 304], requests_summary(hub)
        st, _, m = srv.get("/metrics")
        assert metric(m.decode(), 'projsync_upstream_requests_total{source_kind="github"}') \
            == github + 2
    finally:
        srv.stop()


def test_default_branch_is_asked_at_every_sync(gh, hub, repo):
    """A one-off --branch does not stick, and a default branch changed upstream is followed;
    the repository request that tells the default costs one request per CLI run."""
    repo.write("main.txt", "main\n")
    repo.commit()
    repo.branch("feature")
    repo.switch("feature")
    repo.write("feature.txt", "feature\n")
    repo.commit()
    repo.switch("main")
    gh.add("p", publish(hub, repo))
    assert gh.sync("p")["branch"] == "main"
    assert gh.sync("p", "--branch", "feature")["branch"] == "feature"
    hub.reset()
    again = gh.sync("p")
    assert again["branch"] == "main"
    assert [f["path"] for f in gh.files("p")] == ["main.txt"]
    kinds = [e["kind"] for e in hub.log()]
    assert kinds.count("repo") == 1, requests_summary(hub)

    repo.git("symbolic-ref", "HEAD", "refs/heads/feature")     # the default moves upstream
    moved = gh.sync("p")
    assert moved["branch"] == "feature"
    assert sorted(f["path"] for f in gh.files("p")) == ["feature.txt", "main.txt"]


def test_tag_or_commit_is_not_a_branch(gh, hub, repo):
    """commits/{ref} resolves any ref: a re-sync must ask for heads/{branch}."""
    repo.write("a.txt", "a\n")
    c1 = repo.commit()
    repo.git("tag", "v1")
    src = publish(hub, repo)
    gh.add("p", src)
    gh.sync("p")
    for ref in ("v1", c1):
        r = gh("sync", "p", "--branch", ref)
        assert r.rc != 0, r
        assert f"branch '{ref}' not found" in r.err, r
    # Setting a branch checks it like the source: invalid input (exit 2, as the API's 422),
    # nothing stored.
    r = gh("project", "set", "p", "--branch", "v1")
    assert r.rc == 2 and "branch 'v1' not found" in r.err, r
    r = gh("project", "add", "q", src, "--branch", "nope")
    assert r.rc == 2 and "branch 'nope' not found" in r.err, r
    assert gh("project", "show", "q").rc == 3
    assert gh.json("project", "show", "p")["branch"] is None
    gh.ok("project", "set", "p", "--branch", "main")


def test_raised_size_limit_fetches_what_now_fits(gh, hub, repo):
    repo.write("big.bin", "x" * 5000)
    repo.write("small.txt", "small\n")
    repo.commit()
    gh.add("p", publish(hub, repo), "--max-blob-size", "1K")
    gh.sync("p")
    r = gh("cat", "p", "big.bin")
    # Exit codes follow the API's answer: 422 too_big (2), then 409 not_fetched (4).
    assert r.rc == 2 and "exceeds the project's limit" in r.err, r
    gh.ok("project", "set", "p", "--max-blob-size", "8K")
    r = gh("cat", "p", "big.bin")
    assert r.rc == 4 and "the next sync fetches it" in r.err, r
    s = gh.sync("p")
    assert s["up_to_date"], s
    r = gh("cat", "p", "big.bin")
    assert r.rc == 0 and r.outb == b"x" * 5000, r


@pytest.mark.parametrize("how,kind", [("signal", "tarball"), ("cancel command", "blob")])
def test_cancel_ends_a_sync_waiting_on_github_at_once(gh, hub, repo, how, kind):
    """A sync stuck in a transfer (here a tarball GitHub does not answer) stops within a
    second or two of a cancel, not when the network timeout ends the wait: Ctrl-C of the CLI
    (its own flag) or `projsync cancel` from another process (the store's flag)."""
    for i in range(4):
        repo.write(f"f{i}.txt", f"{i}\n")
    repo.commit()
    gh("project", "add", "p", publish(hub, repo))
    gh.env.pop("PROJSYNC_GITHUB_TIMEOUT_MS")
    gh.env["PROJSYNC_NET_TIMEOUT"] = "60"
    gh.env["PROJSYNC_GITHUB_TARBALL_MIN"] = "1" if kind == "tarball" else "1000"
    hub.config(hang_seconds=60)
    hub.fault(kind, "hang", nth=1, times=100)
    proc = subprocess.Popen(gh.argv(["sync", "p", "--json"]), env=gh.env_with(None),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: any(e["kind"] == kind for e in hub.log()), timeout=30)
        time.sleep(0.5)
        t0 = time.monotonic()
        if how == "signal":
            proc.send_signal(signal.SIGINT)
        else:
            sync_id = gh.history("p")[0]["id"]
            r = gh("cancel", str(sync_id))
            assert r.rc == 0, r
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        hub.clear_faults()
    assert proc.returncode == 1, err
    assert took < 5, took  # the hang would have lasted 60 s
    last = parse_events(SimpleNamespace(out=out.decode()))[-1]
    assert last["kind"] == "cancelled", last
    assert gh.history("p")[0]["status"] == "cancelled"
    # Nothing half-done: the next sync is complete.
    gh.sync("p")
    check_same(gh, repo, "HEAD", "p")
