"""
Notes written by hand are edited and deleted, over HTTP (PATCH / DELETE /api/v1/memory/{id}) and
the CLI (`memory edit`, `memory rm`), on both store backends: an edit is a new version that
supersedes the old one (kept, restorable), an edit that changes nothing makes none, a delete
hides the note from lists and searches and `restore` brings it back; entries a sync imported and
old versions are refused with a reason and nothing changes. Also: search finds word prefixes,
whole words first; a file's content type and its download.
"""
import json

import pytest

from server_util import Server, wait_status


@pytest.fixture
def srv(ps, repo):
    repo.write(".memory/deploy.md", "# Deploy guide\nShip with make release.\n")
    repo.write("src/main.c", "int main(void) { return 0; }\n")
    repo.write("docs/page.html", "<script>alert(1)</script>\n")
    repo.write("img/dot.png", b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    repo.write("bin/blob.dat", bytes(range(256)))
    repo.write("odd name \"q\";.txt", "x\n")
    repo.commit("c1")
    s = Server(ps)
    st, _, p = s.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
    assert st == 201, p
    st, _, y = s.post("/api/v1/projects/p/sync")
    assert st == 202, y
    assert wait_status(s, y["id"], ("succeeded", "failed"))["status"] == "succeeded"
    yield s
    if s.proc.poll() is None:
        s.stop()


def note(srv, title="Runbook", content="restart the cache nightly", tags=("ops",)):
    st, _, e = srv.post("/api/v1/projects/p/memory",
                        {"title": title, "content": content, "tags": list(tags)})
    assert st == 201, e
    return e


def patch(srv, id_, body):
    return srv.request("PATCH", f"/api/v1/memory/{id_}", body=body)


def delete(srv, id_):
    return srv.request("DELETE", f"/api/v1/memory/{id_}")


def listed(srv, **q):
    qs = "&".join(f"{k}={v}" for k, v in q.items())
    st, _, v = srv.get("/api/v1/projects/p/memory" + (f"?{qs}" if qs else ""))
    assert st == 200, v
    return v


def test_edit_makes_a_version_over_http(srv):
    n = note(srv)
    st, h, e = patch(srv, n["id"], {"content": "restart the cache weekly"})
    assert st == 200 and e["changed"] is True, e
    assert e["id"] > n["id"] and e["status"] == "active" and e["origin"] == "manual"
    assert e["title"] == "Runbook" and e["tags"] == ["ops"]       # what was not given stays
    assert h["location"] == f"/api/v1/memory/{e['id']}"
    st, _, old = srv.get(f"/api/v1/memory/{n['id']}")
    assert old["status"] == "superseded" and old["superseded_by_entry"] == e["id"]
    assert old["deleted"] is False
    assert [x["id"] for x in listed(srv, q="weekly")] == [e["id"]]
    assert listed(srv, q="nightly") == []
    st, _, hist = srv.get(f"/api/v1/memory/{n['id']}/history")
    assert [x["id"] for x in hist] == [e["id"], n["id"]]

    # The same values again: no new version.
    st, h, same = patch(srv, e["id"], {"title": "Runbook", "tags": ["ops"]})
    assert st == 200 and same["changed"] is False and same["id"] == e["id"]
    assert "location" not in h
    # Tags replaced, then cleared with null.
    st, _, t = patch(srv, e["id"], {"tags": ["a", "b"]})
    assert st == 200 and t["tags"] == ["a", "b"]
    st, _, t2 = patch(srv, t["id"], {"tags": None})
    assert st == 200 and t2["tags"] == []


def test_edit_and_delete_refusals(srv):
    n = note(srv)
    imported = [x for x in listed(srv) if x["source_ref"] == ".memory/deploy.md"][0]
    before = listed(srv, include_superseded="true")

    st, _, e = patch(srv, imported["id"], {"title": "x"})
    assert st == 409 and e["error"]["code"] == "not_manual", e
    assert ".memory/deploy.md" in e["error"]["message"]
    st, _, e = delete(srv, imported["id"])
    assert st == 409 and e["error"]["code"] == "not_manual", e
    for body, code in (({}, "nothing_to_change"), ({"title": 5}, "invalid_field"),
                       ({"tags": "ops"}, "invalid_field"), ({"owner": "x"}, "unknown_field")):
        st, _, e = patch(srv, n["id"], body)
        assert st == 400 and e["error"]["code"] == code, (body, e)
    for body in ({"title": " "}, {"title": "a\nb"}, {"tags": [""]}):
        st, _, e = patch(srv, n["id"], body)
        assert st == 422, (body, e)
    st, _, e = patch(srv, 99999, {"title": "x"})
    assert st == 404 and e["error"]["code"] == "memory_not_found"
    st, _, e = delete(srv, 99999)
    assert st == 404
    st, _, e = delete(srv, "abc")
    assert st == 400
    assert listed(srv, include_superseded="true") == before       # nothing changed

    st, _, v2 = patch(srv, n["id"], {"title": "Runbook 2"})
    st, _, e = patch(srv, n["id"], {"title": "again"})              # an old version
    assert st == 409 and e["error"]["code"] == "not_active", e


def test_delete_and_restore_over_http(srv):
    n = note(srv, content="the cache is warm")
    st, _, d = delete(srv, n["id"])
    assert st == 200 and d["status"] == "superseded" and d["deleted"] is True, d
    assert n["id"] not in [x["id"] for x in listed(srv)]
    assert listed(srv, q="warm") == []
    assert [x["id"] for x in listed(srv, q="warm", include_superseded="true")] == [n["id"]]
    st, _, e = delete(srv, n["id"])
    assert st == 409 and e["error"]["code"] == "not_active"
    st, _, r = srv.post(f"/api/v1/memory/{n['id']}/restore")
    assert st == 201 and r["restored"] is True and r["restored_from"] == n["id"], r
    assert [x["id"] for x in listed(srv, q="warm")] == [r["id"]]
    st, _, hist = srv.get(f"/api/v1/memory/{r['id']}/history")
    assert [x["id"] for x in hist] == [r["id"], n["id"]]


def test_prefix_search_whole_words_first(srv):
    a = note(srv, title="Caching", content="caching layers and cached pages", tags=())
    b = note(srv, title="Misc", content="a long note that says cache once, among many other "
             "words about rivers and lions and giraffes", tags=())
    assert [x["id"] for x in listed(srv, q="cach")] == [a["id"], b["id"]]
    assert [x["id"] for x in listed(srv, q="cache")] == [b["id"], a["id"]]
    assert "<mark>caching</mark>" in listed(srv, q="cach")[0]["snippet"].lower()


def test_cli_edit_and_rm(ps, srv):
    e = json.loads(ps.ok("memory", "add", "p", "--title", "CLI note", "--text", "v1",
                         "--tag", "x", "--json").out)
    r = ps.ok("memory", "edit", str(e["id"]), "--text", "v2")
    assert f"edited memory entry {e['id']}" in r.out
    cur = [x for x in ps.json("memory", "list", "p") if x["title"] == "CLI note"][0]
    assert cur["content"] == "v2" and cur["tags"] == ["x"] and cur["id"] != e["id"]
    j = ps.json("memory", "edit", str(cur["id"]), "--no-tags", "--title", "CLI note 2")
    assert j["tags"] == [] and j["title"] == "CLI note 2"
    r = ps.ok("memory", "edit", str(j["id"]), "--title", "CLI note 2")
    assert "nothing to change" in r.out
    r = ps("memory", "edit", str(j["id"]))
    assert r.rc == 2 and r.err.startswith("projsync: ") and "something to change" in r.err
    r = ps("memory", "edit", str(j["id"]), "--tag", "a", "--no-tags")
    assert r.rc == 2
    r = ps("memory", "edit", str(e["id"]), "--title", "old")
    assert r.rc != 0 and "superseded" in r.err and len(r.err.strip().splitlines()) == 1
    imported = [x for x in ps.json("memory", "list", "p") if x["source_ref"]][0]
    r = ps("memory", "rm", str(imported["id"]))
    assert r.rc != 0 and "only notes added by hand" in r.err
    r = ps.ok("memory", "rm", str(j["id"]))
    assert "deleted memory entry" in r.out and "restore" in r.out
    assert all(x["id"] != j["id"] for x in ps.json("memory", "list", "p"))
    h = ps.ok("memory", "history", str(j["id"])).out
    assert "deleted" in h
    ps.ok("memory", "restore", str(j["id"]))
    assert any(x["title"] == "CLI note 2" for x in ps.json("memory", "list", "p"))


def test_file_content_type_and_download(srv):
    def get(path, extra=""):
        return srv.get(f"/api/v1/projects/p/file?path={path}{extra}", raw=True)

    st, h, body = get("src/main.c")
    assert st == 200 and h["content-type"] == "text/plain; charset=utf-8"
    assert h["x-content-type-options"] == "nosniff"
    assert h["content-security-policy"].startswith("sandbox")
    assert "content-disposition" not in h
    st, h, _ = get("docs/page.html")          # never text/html from a repository
    assert h["content-type"] == "text/plain; charset=utf-8"
    st, h, _ = get("img/dot.png")
    assert h["content-type"] == "image/png"
    st, h, _ = get("bin/blob.dat")
    assert h["content-type"] == "application/octet-stream"
    st, h, body = get("src/main.c", "&download=1")
    assert st == 200 and body.startswith(b"int main")
    assert h["content-disposition"] == "attachment; filename=\"main.c\"; filename*=UTF-8''main.c"
    st, h, _ = get("odd%20name%20%22q%22%3B.txt", "&download=true")
    assert h["content-disposition"] == ("attachment; filename=\"odd name _q__.txt\"; "
                                        "filename*=UTF-8''odd%20name%20%22q%22%3B.txt")
    st, _, e = srv.get("/api/v1/projects/p/file?path=src/main.c&download=yes")
    assert st == 400 and e["error"]["code"] == "invalid_parameter"
