"""
Access to `projsync serve` (docs/api.md, "Access"): the read-only token, tokens in the query on
event streams only, local-path sources only inside `serve --local-root`, judged after symlinks
and `..` are resolved, and the CLI left unlimited.
"""
import http.client
import os

import pytest

from server_util import Server, read_sse, wait_status

API, READ = "api-token-0123456789", "read-token-9876543210"
TOKENS = {"PROJSYNC_API_TOKEN": API, "PROJSYNC_READ_TOKEN": READ}


def bearer(t):
    return {"Authorization": f"Bearer {t}"}


def code(body):
    return body["error"]["code"] if isinstance(body, dict) and "error" in body else body


@pytest.fixture
def servers():
    started = []

    def start(ps, *args, **kw):
        s = Server(ps, *args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.stop()


@pytest.fixture
def demo(ps, repo, servers):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    srv = servers(ps, env=TOKENS)
    st, _, p = srv.post("/api/v1/projects", {"name": "demo", "source": str(repo.path)},
                        headers=bearer(API))
    assert st == 201, p
    return srv


# ------------------------------------------------------------------------------------------
# tokens


def test_read_token_reads_and_streams_but_never_writes(demo):
    srv = demo
    st, _, s = srv.post("/api/v1/projects/demo/sync", headers=bearer(API))
    assert st == 202, s
    wait_status(srv, s["id"], ("succeeded",), headers=bearer(READ))

    for path in ("/api/v1/projects", "/api/v1/projects/demo", "/api/v1/projects/demo/syncs",
                 f"/api/v1/syncs/{s['id']}", "/api/v1/projects/demo/files"):
        st, _, body = srv.get(path, headers=bearer(READ))
        assert st == 200, (path, body)
    st, _, _ = srv.request("HEAD", "/api/v1/projects", headers=bearer(READ))
    assert st == 200

    # The event stream, with the header and (as a browser's EventSource sends it) in the query.
    for headers, q in ((bearer(READ), ""), ({}, f"?access_token={READ}")):
        c = srv.conn()
        c.request("GET", f"/api/v1/events/project-sync/{s['id']}{q}", headers=headers)
        r = c.getresponse()
        assert r.status == 200
        events = read_sse(r)
        c.close()
        assert [e[0] for e in events] == list(range(1, len(events) + 1))
        assert events[-1][1] == "succeeded"

    writes = [("POST", "/api/v1/projects", {"name": "x", "source": "github:o/r"}),
              ("POST", "/api/v1/projects/demo/sync", {}),
              ("POST", f"/api/v1/syncs/{s['id']}/cancel", None),
              ("POST", "/api/v1/projects/demo/memory", {"title": "t", "content": "c"}),
              ("POST", "/api/v1/memory/1/restore", None),
              ("DELETE", "/api/v1/projects/demo", None)]
    for method, path, body in writes:
        st, _, e = srv.request(method, path, body=body, headers=bearer(READ))
        assert st == 403 and code(e) == "read_only_token", (method, path, e)
        assert "read" in e["error"]["message"]
    # Nothing changed: the project is there, with the one sync.
    st, _, syncs = srv.get("/api/v1/projects/demo/syncs", headers=bearer(READ))
    assert st == 200 and [x["id"] for x in syncs] == [s["id"]]

    # Refused on the headers: a huge declared body is never waited for (no 413, no hang).
    c = srv.conn(timeout=10)
    c.putrequest("POST", "/api/v1/projects/demo/sync")
    c.putheader("Authorization", f"Bearer {READ}")
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", "100000000")
    c.endheaders()
    r = c.getresponse()
    assert r.status == 403 and b"read_only_token" in r.read()
    c.close()

    # The API token still writes.
    st, _, _ = srv.request("DELETE", "/api/v1/projects/demo", headers=bearer(API))
    assert st == 204
    srv.stop()
    assert API not in srv.stderr() and READ not in srv.stderr()


def test_whoami_tells_the_page_what_it_may_do(demo, ps, servers, tmp_path):
    # The server's folder is told to who may add a project there, never to a read token.
    st, _, me = demo.get("/api/v1/whoami", headers=bearer(READ))
    assert st == 200 and me == {"access": "read", "token": "read", "local_paths": True,
                                "local_root": None}
    st, _, me = demo.get("/api/v1/whoami", headers=bearer(API))
    assert st == 200 and me == {"access": "write", "token": "api", "local_paths": True,
                                "local_root": os.path.realpath(ps.tmp)}
    st, h, e = demo.get("/api/v1/whoami")
    assert st == 401 and code(e) == "unauthorized" and h["www-authenticate"] == "Bearer"

    open_srv = servers(ps, local_root=False)
    st, _, me = open_srv.get("/api/v1/whoami")
    assert st == 200 and me == {"access": "write", "token": "none", "local_paths": False,
                                "local_root": None}
    # Resolved as the server judges paths: a symlink to the folder names the folder.
    (tmp_path / "real root").mkdir()
    (tmp_path / "via-link").symlink_to(tmp_path / "real root")
    linked = servers(ps, local_root=tmp_path / "via-link")
    st, _, me = linked.get("/api/v1/whoami")
    assert st == 200 and me["local_root"] == os.path.realpath(tmp_path / "real root"), me


def test_wrong_tokens_are_refused(demo):
    for t in ("", "wrong", API[:-1], API + "x", READ[:-1], READ + "\tx", API.upper()):
        st, _, e = demo.get("/api/v1/projects", headers=bearer(t))
        assert st == 401 and code(e) == "unauthorized", t
    # Whitespace after the value is not part of it (RFC 9110 5.5): the same token.
    st, _, _ = demo.get("/api/v1/projects", headers=bearer(READ + "\t"))
    assert st == 200
    st, _, e = demo.get("/api/v1/projects", headers={"Authorization": f"Basic {API}"})
    assert st == 401
    st, _, e = demo.get("/api/v1/events/project-sync/1?access_token=wrong")
    assert st == 401


def test_a_token_in_the_query_counts_on_event_streams_only(demo):
    for t in (API, READ):
        st, _, e = demo.get(f"/api/v1/projects?access_token={t}")
        assert st == 401 and code(e) == "token_in_query", e
        assert "event streams" in e["error"]["message"]
        # Even beside a valid header: the URL already carried the token somewhere it is logged.
        st, _, e = demo.get(f"/api/v1/projects/demo?access_token={t}", headers=bearer(API))
        assert st == 401 and code(e) == "token_in_query"
    st, _, e = demo.post(f"/api/v1/projects/demo/sync?access_token={API}")
    assert st == 401 and code(e) == "token_in_query"
    # Routes outside the token's reach ignore it.
    st, _, _ = demo.get(f"/healthz?access_token={API}")
    assert st == 200
    demo.stop()
    assert API not in demo.stderr()


def test_the_read_token_needs_a_different_api_token(ps):
    r = ps("serve", "--listen", "127.0.0.1:0", env={"PROJSYNC_READ_TOKEN": READ}, timeout=30)
    assert r.rc == 2 and "PROJSYNC_READ_TOKEN" in r.err and READ not in r.err
    r = ps("serve", "--listen", "127.0.0.1:0",
           env={"PROJSYNC_READ_TOKEN": API, "PROJSYNC_API_TOKEN": API}, timeout=30)
    assert r.rc == 2 and "PROJSYNC_READ_TOKEN" in r.err and API not in r.err


# ------------------------------------------------------------------------------------------
# local paths


def add(srv, source, name="p"):
    return srv.post("/api/v1/projects", {"name": name, "source": source})


def assert_local_refused(res, source, root=None):
    st, _, e = res
    assert st == 403 and code(e) == "local_path_forbidden", (source, e)
    msg = e["error"]["message"]
    assert "local paths are not allowed through the API" in msg and "\n" not in msg, e
    if root:
        # The folder they are allowed under is named (resolved, as paths are judged), and
        # the path refused.
        assert f"--local-root '{os.path.realpath(root)}'" in msg and f"'{source}'" in msg, e
    else:
        assert "--local-root DIR" in msg and "projsync project add" in msg, e


def test_without_local_root_the_api_refuses_every_local_form(ps, repo, servers):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    srv = servers(ps, local_root=False)
    for source in (str(repo.path), f"file://{repo.path}", f"file://localhost{repo.path}",
                   f"FILE://{repo.path}", "/"):
        assert_local_refused(add(srv, source), source)
    # Remote forms are not local: refused for what they are, not for being local.
    st, _, e = add(srv, "https://127.0.0.1:9/nothing.git")
    assert st not in (201, 403), e
    st, _, lst = srv.get("/api/v1/projects")
    assert st == 200 and lst == []
    # The CLI is not limited.
    ps.add("viacli", str(repo.path))
    assert ps.project("viacli")["source"] == str(repo.path)


def test_local_root_is_judged_on_resolved_paths(ps, make_repo, tmp_path, servers):
    root = tmp_path / "root"
    root.mkdir()
    inside = make_repo("root/inside")
    inside.write("a.txt", "a\n")
    inside.commit("c1")
    # /…/rootx shares root's prefix but is another directory.
    outside = make_repo("rootx")
    outside.write("b.txt", "b\n")
    outside.commit("c1")
    os.symlink(outside.path, root / "link-out")
    os.symlink(root, tmp_path / "root-link")
    # The root given through a symlink is resolved too.
    srv = servers(ps, local_root=tmp_path / "root-link")

    refused = [str(outside.path), str(root / "link-out"), str(root / ".." / "rootx"),
               str(root / "inside" / ".." / ".." / "rootx"),
               str(root / "missing" / ".." / ".." / "rootx"),
               f"file://{outside.path}", f"file://{root}/link-out",
               f"file://{root}/%2e%2e/rootx", "/etc"]
    for source in refused:
        assert_local_refused(add(srv, source), source, root)

    accepted = [str(inside.path), str(tmp_path / "root-link" / "inside"),
                str(root / "inside" / ".." / "inside"), f"file://{inside.path}",
                f"file://localhost{inside.path}"]
    for i, source in enumerate(accepted):
        st, _, p = add(srv, source, name=f"ok{i}")
        assert st == 201, (source, p)
        assert p["source"] == source

    # Inside the root but not there: the source check says what is wrong, as before.
    st, _, e = add(srv, str(root / "missing"))
    assert st == 422, e
    for source in ("relative/path", f"file:{inside.path}"):  # the latter: a relative path
        st, _, e = add(srv, source)
        assert st == 422 and code(e) == "invalid_source", e

    st, _, lst = srv.get("/api/v1/projects")
    assert sorted(p["name"] for p in lst) == [f"ok{i}" for i in range(len(accepted))]
    # A new source outside the root is refused the same way, naming the root.
    res = srv.request("PATCH", "/api/v1/projects/ok0", body={"source": str(outside.path)})
    assert_local_refused(res, str(outside.path), root)
    # An accepted project syncs like any other.
    st, _, s = srv.post("/api/v1/projects/ok0/sync")
    assert st == 202
    wait_status(srv, s["id"], ("succeeded",))


def test_local_root_must_be_a_directory(ps, tmp_path):
    r = ps("serve", "--listen", "127.0.0.1:0", "--local-root", str(tmp_path / "nope"),
           timeout=30)
    assert r.rc == 2 and "--local-root" in r.err
    (tmp_path / "file").write_text("x")
    r = ps("serve", "--listen", "127.0.0.1:0", "--local-root", str(tmp_path / "file"),
           timeout=30)
    assert r.rc == 2 and "not a directory" in r.err
    r = ps("serve", "--help", timeout=30)
    assert r.rc == 0 and "--local-root" in r.out and "PROJSYNC_READ_TOKEN" in r.out
