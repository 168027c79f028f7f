"""
History and failures: the syncs of a project form one chain (newest first, each naming the
sync before it), failed syncs keep their phase and a code + message, and the project's
last-synced commit moves only when a sync succeeds.
"""
import os

from conftest import EMPTY_TREE, Repo, changes_as_git, one_error_line


def check_chain(hist):
    """history is newest first; each entry's previous_sync_id is the next entry's id."""
    ids = [h["id"] for h in hist]
    assert ids == sorted(ids, reverse=True)
    for newer, older in zip(hist, hist[1:]):
        assert newer["previous_sync_id"] == older["id"]
    assert hist[-1]["previous_sync_id"] is None


def test_chain_newest_first(ps, repo):
    ps.add("p", str(repo.path))
    commits, syncs = [], []
    for i in range(4):
        repo.write(f"f{i}.txt", f"{i}\n")
        commits.append(repo.commit(f"c{i}"))
        syncs.append(ps.sync("p"))
    hist = ps.history("p")
    assert [h["id"] for h in hist] == [s["id"] for s in reversed(syncs)]
    assert [h["commit"] for h in hist] == list(reversed(commits))
    assert all(h["status"] == "succeeded" and h["error"] is None for h in hist)
    assert all(h["project"] == "p" and h["trigger"] == "cli" for h in hist)
    check_chain(hist)

    limited = ps.history("p", "--limit", "2")
    assert limited == hist[:2]

    st = ps.json("status", "p")
    proj = st["project"]  # the project object (or its name)
    assert (proj["name"] if isinstance(proj, dict) else proj) == "p"
    assert not st["running"]
    assert st["last_succeeded"]["id"] == syncs[-1]["id"]
    assert st["last_sync"]["id"] == syncs[-1]["id"]
    assert ps.project("p")["last_commit"] == commits[-1]


def test_history_pages_with_before_as_the_api_does(ps, repo):
    # The API pages the history with `before`; the CLI had only --limit, so a user could not
    # see past the newest N syncs without listing them all.
    from server_util import Server
    ps.add("p", str(repo.path))
    for i in range(5):
        repo.write(f"f{i}.txt", f"{i}\n")
        repo.commit(f"c{i}")
        ps.sync("p")
    hist = ps.history("p")
    page = ps.history("p", "--limit", "2", "--before", str(hist[1]["id"]))
    assert page == hist[2:4], page
    assert ps.history("p", "--before", str(hist[3]["id"])) == hist[4:]
    srv = Server(ps)
    try:
        st, _, api = srv.get(f"/api/v1/projects/p/syncs?limit=2&before={hist[1]['id']}")
        assert st == 200 and [s["id"] for s in api] == [s["id"] for s in page], api
    finally:
        srv.stop()
    out = ps.ok("history", "p", "--before", str(hist[-1]["id"])).out
    assert out == f"no syncs of p before sync {hist[-1]['id']}\n", out
    r = ps("history", "p", "--before", "0")
    assert r.rc == 2 and "invalid --before '0'" in r.err, r


def test_deleted_branch_fails_in_prepare(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit("a")
    repo.switch("feat", create=True)
    repo.write("b.txt", "b\n")
    c_feat = repo.commit("b")
    repo.switch("main")
    ps.add("p", str(repo.path), "--branch", "feat")
    good = ps.sync("p")
    assert good["commit"] == c_feat

    repo.git("branch", "-D", "feat")
    r = ps("sync", "p")
    assert r.rc == 1, r
    assert one_error_line(r.err) and "feat" in r.err, r

    hist = ps.history("p")
    failed = hist[0]
    assert failed["status"] == "failed"
    assert failed["phase"] == "prepare"
    assert failed["error"]["code"] and "feat" in failed["error"]["message"]
    assert failed["previous_sync_id"] == good["id"]
    check_chain(hist)

    proj = ps.project("p")
    assert proj["last_commit"] == c_feat
    assert proj["last_sync_id"] == good["id"]
    assert proj["failures_in_row"] == 1
    assert proj["last_error"]["code"] == failed["error"]["code"]

    st = ps.json("status", "p")
    assert st["last_succeeded"]["id"] == good["id"]
    assert st["last_sync"]["id"] == failed["id"] and st["last_sync"]["status"] == "failed"
    assert ps.files("p") == repo.ls_tree(c_feat)

    # The same failure through --json: the last event is `failed`, with a message.
    s = ps.sync("p", expect="failed")
    assert s["phase"] == "prepare" and s["error"]["code"]
    assert ps.project("p")["failures_in_row"] == 2

    # The branch comes back with new work: the next sync diffs from the last good snapshot.
    repo.switch("feat", create=True)
    repo.write("c.txt", "c\n")
    c_new = repo.commit("c")
    ok = ps.sync("p")
    assert ok["commit"] == c_new and ok["previous_sync_id"] == s["id"]
    assert changes_as_git(ps.json("changes", ok["id"])) == repo.diff(c_feat, c_new)
    proj = ps.project("p")
    assert proj["last_commit"] == c_new and proj["failures_in_row"] == 0
    check_chain(ps.history("p"))


def test_source_removed_fails_and_recovers(ps, repo, tmp_path):
    repo.write("a.txt", "a\n")
    c1 = repo.commit("a")
    ps.add("p", str(repo.path))
    good = ps.sync("p")

    moved = tmp_path / "moved-away"
    os.rename(repo.path, moved)
    try:
        r = ps("sync", "p")
        assert r.rc == 1, r
        assert one_error_line(r.err), r
        failed = ps.history("p")[0]
        assert failed["status"] == "failed"
        assert failed["phase"] in ("prepare", "scan", "fetch", "import", "finalize")
        assert failed["error"]["code"] and failed["error"]["message"]
        assert ps.project("p")["last_commit"] == c1
        assert ps.files("p") == repo_ls_tree_at(moved, c1)
        assert ps.ok("cat", "p", "a.txt").outb == b"a\n"
    finally:
        os.rename(moved, repo.path)

    repo.write("b.txt", "b\n")
    c2 = repo.commit("b")
    ok = ps.sync("p")
    assert ok["commit"] == c2
    assert changes_as_git(ps.json("changes", ok["id"])) == repo.diff(c1, c2)
    hist = ps.history("p")
    assert [h["status"] for h in hist] == ["succeeded", "failed", "succeeded"]
    assert hist[2]["id"] == good["id"]
    check_chain(hist)


def repo_ls_tree_at(path, rev):
    return Repo(path).ls_tree(rev)


def test_first_sync_changes_are_all_additions(ps, repo):
    repo.write("x/y.txt", "y\n")
    repo.write("z.txt", "z\n")
    c = repo.commit()
    ps.add("p", str(repo.path))
    s = ps.sync("p")
    assert s["previous_sync_id"] is None
    assert changes_as_git(ps.json("changes", s["id"])) == repo.diff(EMPTY_TREE, c)


def test_project_list_show_rm(ps, repo):
    repo.write("a", "a")
    repo.commit()
    ps.ok("migrate")  # an empty store
    assert ps.json("project", "list") == []
    ps.add("one", str(repo.path))
    ps.add("two", repo.url, "--branch", "main")
    names = [p["name"] for p in ps.json("project", "list")]
    assert sorted(names) == ["one", "two"]
    two = ps.project("two")
    assert two["source"] == repo.url and two["branch"] == "main"
    assert two["last_commit"] is None and two["last_sync_id"] is None
    ps.sync("one")
    ps.ok("project", "rm", "one", "--yes")
    assert [p["name"] for p in ps.json("project", "list")] == ["two"]
    r = ps("project", "show", "one")
    assert r.rc == 3 and one_error_line(r.err), r
    r = ps("history", "one", "--json")
    assert r.rc == 3, r
