"""
Memory entries over HTTP (docs/architecture.md §6-7; docs/api.md): the life of an entry
driven through the server (a sync creates it, a change supersedes it and hides it from search
unless include_superseded, restore makes the old content active again, history lists the
versions), manual notes with their validation, paging with Link, search that treats any text
as words (never a 500, never SQL text in an answer), project isolation and the 404s. Syncs are
started over HTTP and run by the server's workers.
"""
import json
import urllib.parse

import pytest

from server_util import Server, wait_status


@pytest.fixture
def mem(ps, repo):
    """A repository with two memory files and a README, project `p` on it, a server."""
    repo.write(".memory/deploy.md",
               "---\ntitle: Deploy guide\ntags: [ops, release]\n---\n"
               "Ship with make release; first version mentions kiwi.\n")
    repo.write(".memory/team/people.md", "# Team\nWho owns what.\n")
    repo.write("README.md", "kiwi in the readme is not memory\n")
    repo.commit("c1")
    srv = Server(ps)
    st, _, p = srv.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
    assert st == 201, p
    yield srv, repo
    if srv.proc.poll() is None:
        srv.stop()


def sync(srv, name="p"):
    st, _, s = srv.post(f"/api/v1/projects/{name}/sync")
    assert st == 202, s
    s = wait_status(srv, s["id"], ("succeeded", "failed", "cancelled"))
    assert s["status"] == "succeeded", s
    return s


def memory(srv, name="p", **query):
    path = f"/api/v1/projects/{name}/memory"
    if query:
        path += "?" + urllib.parse.urlencode(query)
    st, h, body = srv.get(path)
    assert st == 200, (path, body)
    assert isinstance(body, list)
    return body


def active_by_path(srv, name="p"):
    return {e["source_ref"]: e for e in memory(srv, name) if e["source_ref"]}


def search_ids(srv, q, name="p", **more):
    return [e["id"] for e in memory(srv, name, q=q, **more)]


def test_entry_life_over_http(mem):
    srv, repo = mem

    # Sync 1 creates one entry per memory file.
    s1 = sync(srv)
    act = active_by_path(srv)
    assert set(act) == {".memory/deploy.md", ".memory/team/people.md"}
    e1 = act[".memory/deploy.md"]
    assert e1["title"] == "Deploy guide" and e1["tags"] == ["ops", "release"]
    assert e1["status"] == "active" and e1["introduced_by_sync"] == s1["id"]
    assert e1["project"] == "p" and e1["source"] == "git"
    st, _, got = srv.get(f"/api/v1/memory/{e1['id']}")
    assert st == 200 and got == e1
    found = memory(srv, q="kiwi")
    assert [e["id"] for e in found] == [e1["id"]]
    assert "<mark>kiwi</mark>" in found[0]["snippet"] and isinstance(found[0]["rank"], float)
    assert "snippet" not in e1  # only search results carry snippet and rank

    # Sync 2 modifies the file: a new active entry; the old one superseded and hidden from
    # search unless include_superseded.
    repo.write(".memory/deploy.md", "# Deploy guide\nSecond version mentions mango.\n")
    repo.commit()
    s2 = sync(srv)
    e2 = active_by_path(srv)[".memory/deploy.md"]
    assert e2["id"] != e1["id"] and e2["introduced_by_sync"] == s2["id"]
    assert search_ids(srv, "kiwi") == []
    for flag in ("true", "1", ""):
        found = memory(srv, q="kiwi", include_superseded=flag)
        assert [(e["id"], e["status"]) for e in found] == [(e1["id"], "superseded")], flag
    assert search_ids(srv, "kiwi", include_superseded="false") == []
    st, _, old = srv.get(f"/api/v1/memory/{e1['id']}")
    assert st == 200 and old["status"] == "superseded" and old["superseded_by_sync"] == s2["id"]
    assert len(memory(srv, include_superseded="true")) == 3

    # Restore the sync-1 version: 201, the new active copy; the sync-2 entry superseded.
    st, h, r = srv.post(f"/api/v1/memory/{e1['id']}/restore")
    assert st == 201, r
    assert r["restored"] is True and h["x-projsync-restored"] == "true"
    assert r["status"] == "active" and r["restored_from"] == e1["id"]
    assert r["content"] == e1["content"] and r["title"] == e1["title"]
    assert h["location"] == f"/api/v1/memory/{r['id']}"
    assert active_by_path(srv)[".memory/deploy.md"]["id"] == r["id"]
    st, _, was2 = srv.get(f"/api/v1/memory/{e2['id']}")
    assert was2["status"] == "superseded" and was2["superseded_by_entry"] == r["id"]
    assert search_ids(srv, "kiwi") == [r["id"]] and search_ids(srv, "mango") == []

    # Restoring an active entry changes nothing, and says so.
    before = memory(srv, include_superseded="true")
    st, h, again = srv.post(f"/api/v1/memory/{r['id']}/restore")
    assert st == 200 and again["restored"] is False and h["x-projsync-restored"] == "false"
    assert again["id"] == r["id"] and "location" not in h
    assert memory(srv, include_superseded="true") == before
    # So is restoring the sync-1 version again: a retry answers the current copy, 200.
    for _ in range(2):
        st, h, again = srv.post(f"/api/v1/memory/{e1['id']}/restore")
        assert st == 200 and again["restored"] is False and h["x-projsync-restored"] == "false"
        assert again["id"] == r["id"] and again["restored_from"] == e1["id"]
        assert "location" not in h
    assert memory(srv, include_superseded="true") == before

    # A sync that does not touch the file keeps the restored entry; one that changes it
    # supersedes it.
    repo.write(".memory/team/people.md", "# Team\nupdated\n")
    repo.commit()
    sync(srv)
    assert active_by_path(srv)[".memory/deploy.md"]["id"] == r["id"]
    repo.write(".memory/deploy.md", "# Deploy guide\nThird version mentions papaya.\n")
    repo.commit()
    s4 = sync(srv)
    e4 = active_by_path(srv)[".memory/deploy.md"]
    assert e4["introduced_by_sync"] == s4["id"]

    # History from any version: every version of the path, newest first.
    st, _, hist = srv.get(f"/api/v1/memory/{e1['id']}/history")
    assert st == 200
    assert [v["id"] for v in hist] == [e4["id"], r["id"], e2["id"], e1["id"]]
    assert hist[1]["restored_from"] == e1["id"]
    assert [v["status"] for v in hist] == ["active", "superseded", "superseded", "superseded"]
    st, _, hist4 = srv.get(f"/api/v1/memory/{e4['id']}/history")
    assert hist4 == hist

    # Deleting the file supersedes its entry.
    repo.rm(".memory/deploy.md")
    repo.commit()
    s5 = sync(srv)
    assert ".memory/deploy.md" not in active_by_path(srv)
    st, _, gone = srv.get(f"/api/v1/memory/{e4['id']}")
    assert gone["status"] == "superseded" and gone["superseded_by_sync"] == s5["id"]


def test_manual_entries_and_validation(mem):
    srv, repo = mem
    sync(srv)
    st, h, e = srv.post("/api/v1/projects/p/memory",
                        {"title": "Handwritten", "content": "guava by hand\n",
                         "tags": ["note", "x y"]})
    assert st == 201, e
    assert h["location"] == f"/api/v1/memory/{e['id']}"
    assert e["source"] == "manual" and e["source_ref"] is None and e["origin"] == "manual"
    assert e["tags"] == ["note", "x y"] and e["content"] == "guava by hand\n"
    assert e["status"] == "active" and e["project"] == "p"
    st, _, got = srv.get(f"/api/v1/memory/{e['id']}")
    assert got == e
    assert search_ids(srv, "guava") == [e["id"]]
    st, _, hist = srv.get(f"/api/v1/memory/{e['id']}/history")
    assert [v["id"] for v in hist] == [e["id"]]
    # Without tags, and with tags null.
    for body in ({"title": "No tags", "content": "a"}, {"title": "Null", "content": "b",
                                                        "tags": None}):
        st, _, e2 = srv.post("/api/v1/projects/p/memory", body)
        assert st == 201 and e2["tags"] == [], e2

    # A sync never touches manual entries.
    repo.write(".memory/deploy.md", "# changed\n")
    repo.commit()
    sync(srv)
    st, _, got = srv.get(f"/api/v1/memory/{e['id']}")
    assert got["status"] == "active"

    count = len(memory(srv, include_superseded="true", limit=1000))
    bad = [
        ("{nope", 400), ("[]", 400), ("", 400), ('"text"', 400),
        ({"content": "x"}, 400),                             # no title
        ({"title": "x"}, 400),                               # no content
        ({"title": 5, "content": "x"}, 400),
        ({"title": "x", "content": ["x"]}, 400),
        ({"title": "x", "content": "x", "tags": "a"}, 400),
        ({"title": "x", "content": "x", "tags": [1]}, 400),
        ({"title": "x", "content": "x", "colour": "red"}, 400),
        ('{"title": "a\\u0000b", "content": "x"}', 400),     # NUL: not text
        ({"title": "", "content": "x"}, 422),
        ({"title": "   ", "content": "x"}, 422),
        ({"title": "two\nlines", "content": "x"}, 422),
        ({"title": "two\rlines", "content": "x"}, 422),
        ({"title": "x", "content": "x", "tags": ["two\nlines"]}, 422),
        ({"title": "t" * 301, "content": "x"}, 422),
        ({"title": "x", "content": "x", "tags": [""]}, 422),
        ({"title": "x", "content": "x", "tags": ["t" * 101]}, 422),
        # 65 different tags (a repeated tag is kept once, so it counts once).
        ({"title": "x", "content": "x", "tags": [f"t{i}" for i in range(65)]}, 422),
    ]
    for body, want in bad:
        st, _, err = srv.post("/api/v1/projects/p/memory", body,
                              headers={"Content-Type": "application/json"})
        assert st == want, (body, st, err)
        assert set(err["error"]) == {"code", "message"} and err["error"]["message"], err
        # jansson's text named its flag ("not allowed without JSON_ALLOW_NUL").
        assert "JSON_" not in err["error"]["message"], err
    st, _, err = srv.post("/api/v1/projects/p/memory", '{"title": "a\\u0000b", "content": "x"}',
                          headers={"Content-Type": "application/json"})
    assert err["error"]["message"] == "invalid JSON at line 1: a string holds \\u0000 (a NUL " \
        "byte): text takes no NUL bytes", err
    st, _, err = srv.post("/api/v1/projects/nosuch/memory", {"title": "x", "content": "x"})
    assert st == 404 and err["error"]["code"] == "project_not_found"
    # A declared body over 1 MiB is refused from its headers (sending the body too would race
    # with the server closing the connection).
    c = srv.conn()
    c.putrequest("POST", "/api/v1/projects/p/memory")
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(1024 * 1024 + 1))
    c.endheaders()
    r = c.getresponse()
    assert r.status == 413 and json.loads(r.read())["error"]["code"] == "body_too_large"
    c.close()
    # Nothing of the refused ones was stored.
    assert len(memory(srv, include_superseded="true", limit=1000)) == count


def test_paging(mem):
    srv, _ = mem
    ids = []
    for i in range(7):
        st, _, e = srv.post("/api/v1/projects/p/memory",
                            {"title": f"Note {i}", "content": f"quince number {i}"})
        assert st == 201, e
        ids.append(e["id"])

    def walk(path):
        entries, pages = srv.pages(path)
        return [e["id"] for e in entries], pages

    seen, pages = walk("/api/v1/projects/p/memory?limit=3")
    assert seen == ids[::-1] and pages == 3  # newest first, no entry twice
    seen, pages = walk("/api/v1/projects/p/memory?limit=2&q=" +
                       urllib.parse.quote('quince "number"'))
    assert sorted(seen) == sorted(ids) and pages == 4
    seen, pages = walk("/api/v1/projects/p/memory?limit=7")
    assert pages == 1 and len(seen) == 7  # a full last page has no next link
    assert len(memory(srv)) == 7          # default page holds them all
    assert [e["id"] for e in memory(srv, limit=2, offset=5)] == ids[1::-1]
    assert memory(srv, offset=100) == []
    for q in ("limit=0", "limit=1001", "limit=x", "offset=-1", "offset=abc",
              "include_superseded=maybe"):
        st, _, err = srv.get("/api/v1/projects/p/memory?" + q)
        assert st == 400 and err["error"]["message"], (q, err)


def test_bad_queries_never_fail_the_server(mem):
    srv, _ = mem
    sync(srv)
    st, _, e = srv.post("/api/v1/projects/p/memory",
                        {"title": "Zebra care", "content": "Feeding and housing."})
    assert st == 201
    odd = ['"', 'zebra"', '"zebra', "-zebra", "zebra*", "*", "(zebra", "zebra)", "NEAR(zebra",
           "zebra AND", "OR zebra", "NOT zebra", "zebra:x", "title:zebra", "^zebra", "{zebra}",
           "zebra NOT", "'; DROP TABLE memory_entries; --", "\u00fcber", "z\u00e9bra",
           "a" * 1000]
    for q in odd:
        st, _, body = srv.get("/api/v1/projects/p/memory?q=" + urllib.parse.quote(q))
        assert st in (200, 400), (q, st, body)
        text = json.dumps(body)
        for leak in ("SQL", "sqlite", "fts5", "syntax error", "MATCH"):
            assert leak not in text, (q, body)
    assert search_ids(srv, "-zebra") == [e["id"]]       # a word, not "NOT zebra"
    assert search_ids(srv, "(zebra") == [e["id"]]
    assert search_ids(srv, 'zebra"') == [e["id"]]
    assert search_ids(srv, "zebra*") == [e["id"]]
    # Empty and wordless queries are the client's mistake: 400 with a clear message.
    for q in ["", "   ", "- * (", '"', "*", "()"]:
        st, _, err = srv.get("/api/v1/projects/p/memory?q=" + urllib.parse.quote(q))
        assert st == 400, (q, err)
        assert err["error"]["code"] == "empty_query" and "empty query" in err["error"]["message"]
    st, _, err = srv.get("/api/v1/projects/p/memory?q=" + "a" * 1001)
    assert st == 400 and err["error"]["code"] == "query_too_long", err
    # A query that is not UTF-8 names the problem instead of matching nothing.
    for q in ["%FF", "zebra%FF", "caf%C3", "%ED%A0%80"]:
        st, _, err = srv.get("/api/v1/projects/p/memory?q=" + q)
        assert st == 400 and err["error"]["code"] == "invalid_query", (q, err)
        assert "not valid UTF-8" in err["error"]["message"], err
    # The server is still fine.
    st, _, _ = srv.get("/healthz")
    assert st == 200


def test_project_isolation(mem, make_repo):
    srv, _ = mem
    sync(srv)
    other = make_repo("other")
    other.write(".memory/z.md", "# Kiwi elsewhere\nkiwi kiwi kiwi\n")
    other.commit("c1")
    st, _, _ = srv.post("/api/v1/projects", {"name": "q", "source": str(other.path)})
    assert st == 201
    sync(srv, "q")
    mine = memory(srv, "p", q="kiwi")
    theirs = memory(srv, "q", q="kiwi")
    assert [e["project"] for e in mine] == ["p"] and [e["project"] for e in theirs] == ["q"]
    assert {e["project"] for e in memory(srv, "p", include_superseded="true")} == {"p"}
    assert [e["source_ref"] for e in memory(srv, "q")] == [".memory/z.md"]
    st, _, e = srv.post("/api/v1/projects/q/memory", {"title": "Only q", "content": "kiwi"})
    assert st == 201
    assert e["id"] not in search_ids(srv, "kiwi", "p")
    # Deleting a project leaves the other's memory alone.
    st, _, _ = srv.request("DELETE", "/api/v1/projects/q")
    assert st == 204
    assert [x["project"] for x in memory(srv, "p", q="kiwi")] == ["p"]
    st, _, err = srv.get("/api/v1/projects/q/memory")
    assert st == 404


def test_not_found_and_bad_ids(mem):
    srv, _ = mem
    for path in ("/api/v1/memory/999999", "/api/v1/memory/999999/history"):
        st, _, err = srv.get(path)
        assert st == 404 and err["error"]["code"] == "memory_not_found", (path, err)
    st, _, err = srv.post("/api/v1/memory/999999/restore")
    assert st == 404 and err["error"]["code"] == "memory_not_found"
    for path in ("/api/v1/projects/nosuch/memory", "/api/v1/projects/nosuch/memory?q=x"):
        st, _, err = srv.get(path)
        assert st == 404 and err["error"]["code"] == "project_not_found", (path, err)
    for bad in ("abc", "0", "-1", "1x", "99999999999999999999"):
        for method, path in (("GET", f"/api/v1/memory/{bad}"),
                             ("GET", f"/api/v1/memory/{bad}/history"),
                             ("POST", f"/api/v1/memory/{bad}/restore")):
            st, _, err = srv.request(method, path)
            assert st == 400 and err["error"]["code"] == "invalid_id", (method, path, err)
    st, h, _ = srv.request("PUT", "/api/v1/memory/1")
    assert st == 405 and h["allow"] == "GET, HEAD, PATCH, DELETE"
    st, _, err = srv.request("DELETE", "/api/v1/memory/1")
    assert st == 404 and err["error"]["code"] == "memory_not_found"
    st, h, _ = srv.get("/api/v1/memory/1/restore")
    assert st == 405 and h["allow"] == "POST"
    # No sync yet: an empty list, not an error.
    assert memory(srv) == []


def test_memory_endpoints_need_the_token(ps, repo):
    repo.write(".memory/a.md", "# A\n")
    repo.commit("c1")
    srv = Server(ps, env={"PROJSYNC_API_TOKEN": "s3cret"})
    try:
        auth = {"Authorization": "Bearer s3cret"}
        st, _, _ = srv.post("/api/v1/projects", {"name": "p", "source": str(repo.path)},
                            headers=auth)
        assert st == 201
        for method, path in (("GET", "/api/v1/projects/p/memory"),
                             ("POST", "/api/v1/projects/p/memory"),
                             ("GET", "/api/v1/memory/1"), ("GET", "/api/v1/memory/1/history"),
                             ("POST", "/api/v1/memory/1/restore")):
            st, _, _ = srv.request(method, path)
            assert st == 401, (method, path)
        st, _, body = srv.get("/api/v1/projects/p/memory", headers=auth)
        assert st == 200 and body == []
    finally:
        srv.stop()
