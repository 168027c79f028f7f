"""
What the CLI can do, the API can too (and the reverse): PATCH /api/v1/projects/{name} changes
the settings `project set` changes, with the same checks and store rules (one code path:
core/project.h ps_project_change_*), renames a project and changes its source; `projsync
cancel SYNC` stops a sync like POST /syncs/{id}/cancel.
"""
import time

import pytest

from conftest import one_error_line
from server_util import FINAL, Server, wait_status


@pytest.fixture
def server(ps, repo):
    repo.write("a.txt", "a\n")
    repo.write("big.bin", "x" * 100 + "\n")
    repo.commit("c1")
    repo.branch("dev")
    s = Server(ps)
    st, _, p = s.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
    assert st == 201, p
    yield s
    if s.proc.poll() is None:
        s.stop()


def patch(server, name, body, **kw):
    return server.request("PATCH", f"/api/v1/projects/{name}", body=body, **kw)


def test_patch_settings_like_project_set(server, ps, repo):
    st, _, p = patch(server, "p", {"branch": "dev", "memory_globs": ["notes/*.md"],
                                   "max_blob_size": 10})
    assert st == 200, p
    assert p["branch"] == "dev" and p["memory_globs"] == ["notes/*.md"]
    assert p["max_blob_size"] == 10
    assert ps.project("p") == p  # stored, the CLI sees it
    # null: follow the source's default branch; what is not given stays
    st, _, p = patch(server, "p", {"branch": None})
    assert st == 200 and p["branch"] is None and p["max_blob_size"] == 10, p
    # a branch the source does not have, a tag: refused like `project set`, nothing stored
    before = ps.project("p")
    for body, status, code in (({"branch": "nope"}, 422, "branch_not_found"),
                               ({"bogus": 1}, 400, "unknown_field"),
                               ({"max_blob_size": 0}, 400, "invalid_field"),
                               ({"max_blob_size": None}, 400, "invalid_field"),
                               ({"memory_globs": []}, 400, "invalid_field"),
                               ({"memory_globs": "x"}, 400, "invalid_field"),
                               ({"branch": 5}, 400, "invalid_field"),
                               ({"name": "bad name"}, 400, "invalid_name"),
                               ({"source": "relative/path"}, 422, "invalid_source")):
        st, _, e = patch(server, "p", body)
        assert st == status and e["error"]["code"] == code, (body, e)
    assert ps.project("p") == before
    # Past the bounds (what the stores can hold; 100 years): 422, nothing stored, on creation
    # too; the bounds themselves are fine.
    for body, code in (({"max_blob_size": 256 * 2 ** 20 + 1}, "max_blob_size_too_large"),
                       ({"max_blob_size": 2 ** 62}, "max_blob_size_too_large"),
                       ({"keep_days": 36501}, "keep_days_too_large")):
        st, _, e = patch(server, "p", body)
        assert st == 422 and e["error"]["code"] == code, (body, e)
        st, _, e = server.post("/api/v1/projects", {"name": "n", "source": str(repo.path), **body})
        assert st == 422 and e["error"]["code"] == code, (body, e)
    assert ps.project("p") == before
    assert server.get("/api/v1/projects/n")[0] == 404
    st, _, p = patch(server, "p", {"max_blob_size": 256 * 2 ** 20, "keep_days": 36500})
    assert st == 200 and p["max_blob_size"] == 256 * 2 ** 20 and p["keep_days"] == 36500, p
    st, _, e = patch(server, "nope", {"branch": "dev"})
    assert st == 404 and e["error"]["code"] == "project_not_found", e


def test_patch_raised_size_limit_fetches_what_now_fits(server, ps):
    """The store rule of `project set`: a raised limit makes the next sync fetch skipped files."""
    assert patch(server, "p", {"max_blob_size": 10})[0] == 200
    s = ps.sync("p")
    assert s["skipped_large"] == 1
    assert ps("cat", "p", "big.bin").rc != 0
    assert patch(server, "p", {"max_blob_size": 1000})[0] == 200
    ps.sync("p")
    r = ps("cat", "p", "big.bin")
    assert r.rc == 0 and r.out == "x" * 100 + "\n", r


def test_rename_and_change_source(server, ps, repo, make_repo):
    ps.sync("p")
    st, h, p = patch(server, "p", {"name": "q"})
    assert st == 200 and p["name"] == "q", p
    assert server.get("/api/v1/projects/p")[0] == 404
    st, _, syncs = server.get("/api/v1/projects/q/syncs")
    assert st == 200 and len(syncs) == 1 and syncs[0]["project"] == "q", syncs
    st, _, other = server.post("/api/v1/projects", {"name": "r", "source": str(repo.path)})
    assert st == 201
    st, _, e = patch(server, "q", {"name": "r"})
    assert st == 409 and e["error"]["code"] == "project_exists", e

    # another repository: refused for a project with history, unless asked to continue it
    other_repo = make_repo("other")
    other_repo.write("b.txt", "b\n")
    other_repo.commit("o1")
    st, _, e = patch(server, "q", {"source": str(other_repo.path)})
    assert st == 409 and e["error"]["code"] == "source_has_history", e
    assert str(other_repo.path) in e["error"]["message"]
    # asking to continue the history without naming the new source changes nothing
    st, _, e = patch(server, "q", {"continue_history": True})
    assert st == 400 and e["error"]["code"] == "continue_history_without_source", e
    # checked like a new source: not a repository, a branch it lacks
    st, _, e = patch(server, "q", {"source": str(repo.path.parent / "nonexistent"),
                                   "continue_history": True})
    assert st == 422, e
    # and, like a new project's, only inside the server's --local-root (403 elsewhere)
    st, _, e = patch(server, "q", {"source": "/nonexistent/x", "continue_history": True})
    assert st == 403 and e["error"]["code"] == "local_path_forbidden", e
    st, _, e = patch(server, "q", {"source": str(other_repo.path), "branch": "dev",
                                   "continue_history": True})
    assert st == 422 and e["error"]["code"] == "branch_not_found", e
    assert ps.project("q")["source"] == str(repo.path)
    st, _, p = patch(server, "q", {"source": str(other_repo.path), "continue_history": True})
    assert st == 200 and p["source"] == str(other_repo.path), p
    s = ps.sync("q")
    assert s["status"] == "succeeded"
    files = sorted(f["path"] for f in ps.json("files", "q"))
    assert files == ["b.txt"], files
    # a project without history takes any valid source
    st, _, p = patch(server, "r", {"source": str(other_repo.path)})
    assert st == 200, p


def test_cli_set_rename_and_source(ps, repo, make_repo):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    ps.sync("p")
    p = ps.json("project", "set", "p", "--rename", "p2")
    assert p["name"] == "p2"
    assert ps("project", "show", "p").rc == 3
    other = make_repo("other")
    other.write("b.txt", "b\n")
    other.commit("o1")
    r = ps("project", "set", "p2", "--source", str(other.path))
    assert r.rc == 4 and one_error_line(r.err) and "--continue-history" not in r.err, r
    assert "history" in r.err
    p = ps.json("project", "set", "p2", "--source", str(other.path), "--continue-history")
    assert p["source"] == str(other.path)
    r = ps("project", "set", "p2", "--rename", "bad name")
    assert r.rc == 2 and one_error_line(r.err), r


def test_cancel_command(server, ps):
    # Only the slow server may run the sync: the fixture's server shares the store and would
    # claim it too (several nodes on one store), finishing it before the cancel.
    server.stop()
    slow = {"PROJSYNC_TEST_STEP_DELAY_MS": "300", "PROJSYNC_TEST_BATCH": "1"}
    srv = Server(ps, env=slow)
    try:
        st, _, s = srv.post("/api/v1/projects/p/sync")
        assert st == 202, s
        wait_status(srv, s["id"], ("running",))
        r = ps("cancel", str(s["id"]))
        assert r.rc == 0 and "cancel requested" in r.out, r
        done = wait_status(srv, s["id"], FINAL)
        assert done["status"] == "cancelled", done
        r = ps("cancel", str(s["id"]))
        assert r.rc == 4 and one_error_line(r.err) and "already ended" in r.err, r
    finally:
        srv.stop()
    for args, rc in ((("cancel", "999"), 3), (("cancel", "x"), 2), (("cancel",), 2)):
        r = ps(*args)
        assert r.rc == rc and one_error_line(r.err), r
