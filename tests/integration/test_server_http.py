"""
`projsync serve` at the HTTP level (issue 15, items 13-19): what is refused on the request line
and the headers before a body is read, cross-site requests and DNS rebinding in the default
loopback mode, paths and header values libmicrohttpd would truncate at a NUL, log injection,
event streams that must end, protocol abuse that must get an answer at once, and the details
of Location, flags without a value, relative sources, non-UTF-8 file names and ETags.
Raw sockets where http.client would refuse to send the bytes.
"""
import hashlib
import hmac
import json
import os
import socket
import time
import urllib.parse

import pytest

from server_util import Server, wait_status

FAST = 5  # seconds: every refusal here must come at once, not after a body or a timeout


@pytest.fixture
def demo(ps, repo):
    repo.write("a.txt", "alpha\n")
    repo.write(".memory/note.md", "# Note\nfirst kiwi\n")
    repo.commit("c1")
    servers = []

    def start(*args, env=None, add=True):
        s = Server(ps, *args, env=env)
        servers.append(s)
        if add:
            hdr = {"Authorization": "Bearer t0ken"} if env and "PROJSYNC_API_TOKEN" in env else {}
            st, _, p = s.post("/api/v1/projects", {"name": "demo", "source": str(repo.path)},
                              headers=hdr)
            assert st == 201, p
        return s

    yield start
    for s in servers:
        if s.proc.poll() is None:
            s.stop()


def raw(srv, data, timeout=FAST, shut=False):
    """Sends bytes, returns (status, headers, body) of the answer that comes within timeout."""
    s = socket.create_connection((srv.host, srv.port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, f"connection closed without an answer: {buf!r}"
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body
    finally:
        s.close()


def req(srv, method, path, headers=(), body=b""):
    lines = [f"{method} {path} HTTP/1.1".encode("latin-1"),
             f"Host: 127.0.0.1:{srv.port}".encode()]
    lines += [h if isinstance(h, bytes) else h.encode("latin-1") for h in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def err_code(body):
    return json.loads(body)["error"]["code"]


def sync_done(srv, name="demo", headers=None):
    st, _, s = srv.post(f"/api/v1/projects/{name}/sync", headers=headers)
    assert st == 202, s
    s = wait_status(srv, s["id"], ("succeeded", "failed", "cancelled"))
    assert s["status"] == "succeeded", s
    return s


# ---- 13: refusals decided on the headers, before the body -------------------------------

def test_refused_on_headers_before_the_body(demo):
    big = 24 * 1024 * 1024  # under the webhook's 25 MiB: only the headers can refuse it
    srv = demo(add=False)  # no webhook secret
    st, _, body = raw(srv, req(srv, "POST", "/api/v1/webhooks/github",
                               ["Content-Type: application/json", f"Content-Length: {big}",
                                "X-GitHub-Event: push", "X-Hub-Signature-256: sha256=00"]))
    assert st == 403 and err_code(body) == "webhook_disabled"

    srv = demo(env={"PROJSYNC_WEBHOOK_SECRET": "s3cret", "PROJSYNC_API_TOKEN": "t0ken"},
               add=False)
    st, _, body = raw(srv, req(srv, "POST", "/api/v1/webhooks/github",
                               ["Content-Type: application/json", f"Content-Length: {big}",
                                "X-GitHub-Event: push"]))
    assert st == 401 and err_code(body) == "signature_missing"
    # A wrong token is refused before a 1 MiB project body is read.
    st, _, body = raw(srv, req(srv, "POST", "/api/v1/projects",
                               ["Content-Type: application/json", "Content-Length: 1000000",
                                "Authorization: Bearer nope"]))
    assert st == 401 and err_code(body) == "unauthorized"
    # Per-route limits: starting a sync takes at most 4 KiB.
    st, _, body = raw(srv, req(srv, "POST", "/api/v1/projects/demo/sync",
                               ["Content-Type: application/json", "Content-Length: 5000",
                                "Authorization: Bearer t0ken"]))
    assert st == 413 and err_code(body) == "body_too_large"
    # A signed delivery still works.
    payload = json.dumps({"zen": "hi"}).encode()
    sig = "sha256=" + hmac.new(b"s3cret", payload, hashlib.sha256).hexdigest()
    st, _, body = srv.post("/api/v1/webhooks/github", payload, headers={
        "X-GitHub-Event": "ping", "X-Hub-Signature-256": sig,
        "Content-Type": "application/json"})
    assert st == 200, body


def test_chunked_body_past_the_limit_is_cut_off(demo):
    srv = demo()
    s = socket.create_connection((srv.host, srv.port), timeout=FAST)
    s.sendall(req(srv, "POST", "/api/v1/projects/demo/sync",
                  ["Content-Type: application/json", "Transfer-Encoding: chunked"]))
    chunk = b"x" * 1024
    sent = 0
    answer = b""
    try:
        # 4 KiB is the limit: keep streaming well past it; the server must answer and close
        # instead of reading on.
        for _ in range(64):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        s.settimeout(FAST)
        while True:
            d = s.recv(65536)
            if not d:
                break
            answer += d
    except (BrokenPipeError, ConnectionResetError):
        s.settimeout(FAST)
        try:
            answer += s.recv(65536)
        except OSError:
            pass
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"body_too_large" in answer


# ---- 14: cross-site requests and DNS rebinding -------------------------------------------

def test_cross_site_and_rebinding_refused(demo, repo):
    srv = demo()
    own = f"127.0.0.1:{srv.port}"
    # A page on another site can send text/plain without asking first: refused.
    st, _, e = srv.post("/api/v1/projects", json.dumps({"name": "x", "source": str(repo.path)}),
                        headers={"Content-Type": "text/plain"})
    assert st == 415 and e["error"]["code"] == "unsupported_media_type"
    st, _, e = srv.post("/api/v1/projects/demo/memory", '{"title": "t", "content": "c"}')
    assert st == 415
    # Origin of another site on a state-changing request: 403, even with JSON.
    st, _, e = srv.post("/api/v1/projects/demo/sync", {}, headers={"Origin": "http://evil.example"})
    assert st == 403 and e["error"]["code"] == "cross_origin"
    st, _, e = srv.request("DELETE", "/api/v1/projects/demo", headers={"Origin": "null"})
    assert st == 403
    # DNS rebinding: evil.example resolving to 127.0.0.1 sends its own name as Host.
    for host in ("evil.example", f"evil.example:{srv.port}", f"127.0.0.1:{srv.port + 1}"):
        st, _, e = srv.get("/api/v1/projects", headers={"Host": host})
        assert st == 421 and e["error"]["code"] == "wrong_host", host
    st, _, _ = srv.get("/", headers={"Host": "evil.example"})
    assert st == 421
    # What the server's own page, the CLI and curl send passes.
    for host in (own, f"localhost:{srv.port}", "127.0.0.1", f"127.1.2.3:{srv.port}"):
        st, _, _ = srv.get("/api/v1/projects", headers={"Host": host})
        assert st == 200, host
    # Whitespace around a header value is not part of it (RFC 9110 5.5).
    for host in (f"{own} ", f"{own}\t", f" {own} \t "):
        st, _, body = raw(srv, f"GET /api/v1/projects HTTP/1.1\r\nHost:{host}\r\n\r\n".encode())
        assert st == 200, (host, body)
    st, _, s = srv.post("/api/v1/projects/demo/sync", {},
                        headers={"Origin": f"http://{own}"})
    assert st == 202, s
    wait_status(srv, s["id"], ("succeeded",))
    st, _, _ = srv.post(f"/api/v1/syncs/{s['id']}/cancel")  # no body, no type: fine
    assert st == 409
    # The project is untouched by all the refused requests.
    st, _, p = srv.get("/api/v1/projects/demo")
    assert st == 200 and p["name"] == "demo"
    st, _, lst = srv.get("/api/v1/projects/demo/memory")
    assert st == 200 and all(m["source"] != "manual" for m in lst)


def test_public_url_and_token_modes(demo):
    srv = demo("--public-url", "https://projsync.example", add=False)
    st, _, _ = srv.get("/api/v1/projects", headers={"Host": "projsync.example"})
    assert st == 200
    st, _, _ = srv.get("/api/v1/projects", headers={"Host": "other.example"})
    assert st == 421
    st, _, e = srv.post("/api/v1/projects", {"name": "p"}, headers={
        "Host": "projsync.example", "Origin": "https://projsync.example"})
    assert st == 400, e  # past the checks: the body's own error
    # With a token the token authenticates; Host is not checked (a proxy's name is fine).
    srv = demo(env={"PROJSYNC_API_TOKEN": "t0ken"}, add=False)
    st, _, _ = srv.get("/api/v1/projects", headers={"Host": "proxy.example",
                                                  "Authorization": "Bearer t0ken"})
    assert st == 200


# ---- 15: NUL and bad escapes in the path ---------------------------------------------------

def test_nul_or_bad_escape_in_path_is_400_before_routing(demo):
    srv = demo()
    for path in ("/api/v1/projects/demo%00/memory", "/api/v1/projects/demo%00",
                 "/api/v1/projects/de%zzmo", "/api/v1/projects/demo%4", "/healthz%00x"):
        st, _, body = raw(srv, req(srv, "DELETE" if "memory" in path else "GET", path))
        assert st == 400 and err_code(body) == "bad_path", (path, body)
    st, _, body = raw(srv, req(srv, "DELETE", "/api/v1/projects/demo%00/memory"))
    assert st == 400
    # A raw NUL byte in the request line truncates just the same.
    st, _, body = raw(srv, b"DELETE /api/v1/projects/demo\x00/memory HTTP/1.1\r\n"
                           b"Host: 127.0.0.1\r\n\r\n")
    assert st == 400
    st, _, body = raw(srv, req(srv, "GET", "/api/v1/projects/demo/file?path=a.txt%00.png"))
    assert st == 400 and err_code(body) == "bad_query"
    st, _, p = srv.get("/api/v1/projects/demo")
    assert st == 200 and p["name"] == "demo"
    # Percent-encoding itself still works.
    st, _, p = srv.get("/api/v1/projects/%64emo")
    assert st == 200 and p["name"] == "demo"


def test_a_page_address_with_a_bad_escape_gets_the_page(demo):
    """A browser opening a page address with malformed percent-encoding (a link cut short)
    gets the page, which says Not found itself, not a 400 in JSON; the API keeps its 400."""
    srv = demo()
    _, _, page = raw(srv, req(srv, "GET", "/"))
    for path in ("/projects/%E0%A4%A", "/projects/demo/syncs/1?file=%ZZ", "/?dir=%4",
                 "/projects/demo%00/memory", "/projects/demo?file=a%00b"):
        st, hdrs, body = raw(srv, req(srv, "GET", path))
        assert st == 200, (path, st, body)
        assert hdrs["content-type"].startswith("text/html"), (path, hdrs)
        assert body == page and b"<html" in body.lower(), path
    # The API, and paths outside the page, keep their JSON 400.
    for path, code in (("/api/v1/projects/%E0%A4%A", "bad_path"), ("/healthz%zz", "bad_path"),
                       ("/projects%zz", "bad_path"),
                       ("/api/v1/projects/demo/file?path=%ZZ", "bad_query"),
                       ("/assets/app%zz.js", "bad_path")):
        st, hdrs, body = raw(srv, req(srv, "GET", path))
        assert st == 400 and err_code(body) == code, (path, body)
    # A control byte is still refused, on a page address too.
    st, _, body = raw(srv, req(srv, "GET", "/projects/a\x01b"))
    assert st == 400


# ---- 16: log injection -------------------------------------------------------------------

def test_request_log_is_escaped(demo):
    srv = demo()
    st, _, _ = raw(srv, req(srv, "GET", "/nope%0A2030-01-01T00:00:00Z%20projsync:%20forged"))
    assert st == 404
    st, _, _ = raw(srv, req(srv, "GET", "/api/v1/projects/x%0D%0Aforged2"))
    assert st == 404
    time.sleep(0.3)
    err = srv.stderr()
    assert all(not ln.startswith(("2030", "forged")) for ln in err.splitlines()), err
    assert "/nope%0A2030" in err


def read_within(resp, seconds):
    """The whole body, which must end within `seconds` (heartbeats keep a socket timeout from
    ever firing on a stream that does not end)."""
    end = time.monotonic() + seconds
    out = []
    while True:
        line = resp.readline()
        if not line:
            return "".join(out)
        out.append(line.decode())
        assert time.monotonic() < end, f"the stream did not end: {''.join(out)!r}"


# ---- 17: event streams that have nothing more to send end at once --------------------------

def test_event_stream_past_the_final_event_ends(demo):
    srv = demo()
    s = sync_done(srv)
    c = srv.conn(timeout=60)
    c.request("GET", f"/api/v1/events/project-sync/{s['id']}")
    r = c.getresponse()
    events = [ln for ln in r.read().decode().splitlines() if ln.startswith("id: ")]
    c.close()
    final = int(events[-1][4:])
    for lei, how in ((final, "header"), (final + 1, "header"), (10 ** 15, "header"),
                     (2 ** 63 - 1, "query"), (final, "query")):
        c = srv.conn(timeout=FAST)
        if how == "header":
            c.request("GET", f"/api/v1/events/project-sync/{s['id']}",
                      headers={"Last-Event-ID": str(lei)})
        else:
            c.request("GET", f"/api/v1/events/project-sync/{s['id']}?last_event_id={lei}")
        r = c.getresponse()
        body = read_within(r, 2)
        c.close()
        assert r.status == 200, lei
        assert "id:" not in body and "hb" not in body, (lei, body)
    # One before the final event replays exactly that event.
    c = srv.conn(timeout=FAST)
    c.request("GET", f"/api/v1/events/project-sync/{s['id']}",
              headers={"Last-Event-ID": str(final - 1)})
    body = read_within(c.getresponse(), 2)
    c.close()
    assert [ln for ln in body.splitlines() if ln.startswith("id: ")] == [f"id: {final}"]
    # Whitespace around the header's value is not part of it: the same number.
    st, hdrs, _ = raw(srv, req(srv, "GET", f"/api/v1/events/project-sync/{s['id']}",
                               [f"Last-Event-ID: {final} \t"]))
    assert st == 200 and hdrs["content-type"].startswith("text/event-stream"), hdrs
    for bad in ("99999999999999999999", "abc", "-1", "1e3", " 5"):
        st, _, e = srv.get(f"/api/v1/events/project-sync/{s['id']}?last_event_id="
                           + urllib.parse.quote(bad))
        assert st == 400 and e["error"]["code"] == "invalid_event_id", bad


# ---- 18: protocol abuse gets a clear 4xx at once -------------------------------------------

def test_protocol_abuse_answered_at_once(demo):
    srv = demo(env={"PROJSYNC_API_TOKEN": "t0ken"}, add=False)
    auth = "Authorization: Bearer t0ken"
    q = "&".join(f"a{i}=1" for i in range(250))
    st, _, body = raw(srv, req(srv, "GET", f"/api/v1/projects?{q}", [auth]))
    assert st == 400 and err_code(body) == "too_many_arguments"
    st, _, _ = raw(srv, req(srv, "GET", "/api/v1/projects?" + "&".join(["x"] * 60), [auth]))
    assert st == 200
    st, _, body = raw(srv, req(srv, "POST", "/api/v1/projects",
                               [auth, "Content-Type: application/json", "Content-Length: 2",
                                "Content-Length: 40"], b"{}"))
    assert st == 400 and err_code(body) == "bad_length"
    for te in ("gzip, chunked", "gzip", "identity", "chunked "):
        st, _, body = raw(srv, req(srv, "POST", "/api/v1/projects",
                                   [auth, "Content-Type: application/json",
                                    f"Transfer-Encoding: {te}"], b"2\r\n{}\r\n0\r\n\r\n"))
        assert st == 501 and err_code(body) == "unsupported_transfer_encoding", te
    st, _, body = raw(srv, req(srv, "GET", "/api/v1/projects",
                               [b"Authorization: Bearer t0ken\x00junk"]))
    assert st == 400 and err_code(body) == "bad_header"
    st, _, body = raw(srv, req(srv, "GET", "/api/v1/projects",
                               [b"X-Other: a\x00b", auth]))
    assert st == 400
    # Well-formed requests, one header or many, still pass.
    st, _, _ = raw(srv, req(srv, "GET", "/api/v1/projects", [auth, "X-A: 1", "X-B:", "X-C:  3 "]))
    assert st == 200
    st, _, _ = raw(srv, req(srv, "GET", "/api/v1/projects", [auth + " \t"]))
    assert st == 200
    st, _, _ = raw(srv, req(srv, "GET", "/api/v1/projects", [auth]))
    assert st == 200



def answer_or_close(srv, data):
    """(status, body) of the answer, or None when the server closes without one; a request
    left unanswered past FAST fails (socket.timeout)."""
    try:
        st, _, body = raw(srv, data)
    except AssertionError:
        return None
    return st, body


def test_long_request_target_answered_at_once(demo):
    """A long query used to fill libmicrohttpd's per-connection pool with its arguments: near
    16 KiB it was never answered (the client waited for the connection timeout). A target over
    12 KiB is refused with a JSON 414; one just under it is served."""
    srv = demo()
    sync_done(srv)
    st, _, body = raw(srv, req(srv, "GET", "/api/v1/projects/demo/files?prefix="
                              + "a" * 12000 + "&limit=2"))
    assert st == 200 and json.loads(body) == [], body
    st, _, body = raw(srv, req(srv, "GET", "/api/v1/projects/demo/file?path=" + "a" * 13000))
    assert st == 414 and err_code(body) == "uri_too_long", body
    st, _, body = raw(srv, req(srv, "GET", "/api/v1/projects/" + "a" * 13000))
    assert st == 414 and err_code(body) == "uri_too_long", body
    for n in range(15700, 16500, 25):
        for target in (f"/api/v1/projects/demo/files?prefix={'a' * n}&limit=2",
                       f"/api/v1/projects/demo/file?path={'a' * n}"):
            got = answer_or_close(srv, req(srv, "GET", target))
            # At the pool's very end no answer fits: the connection is closed at once.
            assert got is None or got[0] in (414, 431), (n, got)
    st, _, _ = raw(srv, req(srv, "GET", "/api/v1/projects"))
    assert st == 200


def test_method_not_allowed_lists_head_beside_get(demo):
    """A 405's Allow lists every method the path answers: HEAD wherever GET is."""
    srv = demo()
    for path, methods in (("/api/v1/projects", {"GET", "HEAD", "POST"}),
                          ("/api/v1/projects/demo", {"GET", "HEAD", "PATCH", "DELETE"}),
                          ("/api/v1/projects/demo/sync", {"GET", "HEAD", "POST"}),
                          ("/api/v1/syncs/1/cancel", {"POST"}),
                          ("/healthz", {"GET", "HEAD"})):
        st, h, body = srv.request("OPTIONS", path)
        assert st == 405 and err_code(json.dumps(body)) == "method_not_allowed", (path, body)
        assert set(h["allow"].split(", ")) == methods, (path, h["allow"])
        if "HEAD" in methods:
            st, _, body = srv.request("HEAD", path, raw=True)
            assert st == 200 and body == b"", (path, st)


def test_routes_without_fields_refuse_a_body_with_fields(demo):
    """Cancel, resume, restore and the deletes take no fields: a field sent to them (or a
    body that is not JSON) is a 400, with nothing changed, never silently ignored. No body,
    or {}, is what they take."""
    srv = demo()
    sync_done(srv)
    st, _, note = srv.post("/api/v1/projects/demo/memory", {"title": "n", "content": "c"})
    assert st == 201, note
    routes = (("POST", "/api/v1/projects/demo/resume"),
              ("POST", "/api/v1/syncs/1/cancel"),
              ("POST", f"/api/v1/memory/{note['id']}/restore"),
              ("DELETE", f"/api/v1/memory/{note['id']}"),
              ("DELETE", "/api/v1/projects/demo"))
    json_type = {"Content-Type": "application/json"}
    for method, path in routes:
        st, _, e = srv.request(method, path, body={"force": True})
        assert st == 400 and e["error"]["code"] == "unknown_field", (path, e)
        assert "force" in e["error"]["message"]
        st, _, e = srv.request(method, path, body="garbage", headers=json_type)
        assert st == 400 and e["error"]["code"] == "bad_json", (path, e)
    assert srv.get(f"/api/v1/memory/{note['id']}")[2]["status"] == "active"
    assert srv.get("/api/v1/projects/demo")[0] == 200
    st, _, _ = srv.request("POST", "/api/v1/projects/demo/resume", body={})
    assert st == 200
    st, _, _ = srv.request("DELETE", f"/api/v1/memory/{note['id']}")
    assert st == 200
    st, _, _ = srv.request("DELETE", "/api/v1/projects/demo", body="{}", headers=json_type)
    assert st == 204

# ---- 19: Location, bare flags, relative sources, raw paths, ETags ---------------------------

def test_location_of_a_long_name(demo, repo):
    srv = demo(add=False)
    name = "p" + "-long" * 19  # 96 characters
    st, h, p = srv.post("/api/v1/projects", {"name": name, "source": str(repo.path)})
    assert st == 201, p
    assert h["location"] == f"/api/v1/projects/{name}"
    st, _, got = srv.get(h["location"])
    assert st == 200 and got["name"] == name


def test_bare_include_superseded(demo, repo):
    srv = demo()
    sync_done(srv)
    repo.write(".memory/note.md", "# Note\nsecond mango\n")
    repo.commit("c2")
    sync_done(srv)
    st, _, plain = srv.get("/api/v1/projects/demo/memory")
    st2, _, bare = srv.get("/api/v1/projects/demo/memory?include_superseded")
    assert st == 200 and st2 == 200
    assert [e["status"] for e in plain] == ["active"]
    assert sorted(e["status"] for e in bare) == ["active", "superseded"]



def test_true_false_query_arguments_read_alike(demo, repo):
    """Every true/false query argument reads one way: absent, false or 0 is false; true, 1 or
    no value at all is true; anything else is 400 invalid_parameter. `?patch` bare, or
    `?patch=yes`, used to give the name-status list silently, `?ignore_case` bare a
    case-sensitive search, and `?download` bare a 400."""
    srv = demo()
    a = sync_done(srv)
    repo.write("a.txt", "alpha\nbeta\n")
    repo.commit("c2")
    b = sync_done(srv)
    diff = f"/api/v1/syncs/{a['id']}/diff/{b['id']}"
    st, _, full = srv.get(diff + "?patch=1")
    assert st == 200 and full["files"][0]["path"] == "a.txt", full
    for form in ("?patch", "?patch=true", "?patch&stat=0"):
        st, _, got = srv.get(diff + form)
        assert st == 200 and got == full, (form, got)
    st, _, names = srv.get(diff + "?patch=false")
    assert st == 200 and isinstance(names, list) and names[0]["path"] == "a.txt", names
    st, _, text = srv.get(diff + "?format=diff&stat", raw=True)
    assert st == 200 and b" 1 file changed" in text, text
    for form in ("?patch=yes", "?patch=2", "?format=diff&stat=on", "?full_index=TRUE"):
        st, _, e = srv.get(diff + form)
        assert st == 400 and e["error"]["code"] == "invalid_parameter", (form, e)
        assert form.split("?")[1].split("&")[-1].split("=")[0] in e["error"]["message"]
    st, _, hits = srv.get("/api/v1/projects/demo/search/code?q=ALPHA&ignore_case")
    assert st == 200 and [h["path"] for h in hits] == ["a.txt"], hits
    st, _, hits = srv.get("/api/v1/projects/demo/search/code?q=ALPHA&ignore_case=0")
    assert st == 200 and hits == [], hits
    st, h, body = srv.get("/api/v1/projects/demo/file?path=a.txt&download", raw=True)
    assert st == 200 and h["content-disposition"].startswith("attachment"), (h, body)
    st, h, _ = srv.get("/api/v1/projects/demo/file?path=a.txt&download=0", raw=True)
    assert st == 200 and "content-disposition" not in h
    st, _, e = srv.get("/api/v1/projects/demo/file?path=a.txt&download=yes")
    assert st == 400 and e["error"]["code"] == "invalid_parameter", e

def test_relative_source_with_at_sign_refused(demo, repo, tmp_path, monkeypatch):
    # A repository in the server's working directory under a name with '@' (not the
    # user@host:path form, which has a ':').
    os.symlink(repo.path, tmp_path / "r@1")
    monkeypatch.chdir(tmp_path)
    srv = demo(add=False)
    st, _, e = srv.post("/api/v1/projects", {"name": "rel", "source": "r@1"})
    assert st == 422 and e["error"]["code"] == "invalid_source", e
    st, _, _ = srv.get("/api/v1/projects/rel")
    assert st == 404


def test_non_utf8_names_fetchable_and_etag(ps, repo):
    repo.write("a.txt", "alpha\n")
    with open(os.fsencode(repo.path) + b"/caf\xe9 + x.txt", "wb") as f:
        f.write(b"latin-1 name\n")
    repo.commit("c1")
    srv = Server(ps)
    try:
        st, _, _ = srv.post("/api/v1/projects", {"name": "demo", "source": str(repo.path)})
        assert st == 201
        sync_done(srv)
        st, _, files = srv.get("/api/v1/projects/demo/files")
        assert st == 200
        odd = [f for f in files if "\ufffd" in f["path"]]
        assert len(odd) == 1 and odd[0]["path_raw"] == "caf%E9%20%2B%20x.txt", odd
        assert all("path_raw" not in f for f in files if f is not odd[0])
        st, h, data = srv.get("/api/v1/projects/demo/file?path=" + odd[0]["path_raw"], raw=True)
        assert st == 200 and data == b"latin-1 name\n"
        # ETag: a matching If-None-Match gets 304 with the tag and no body.
        st, h, data = srv.get("/api/v1/projects/demo/file?path=a.txt", raw=True)
        assert st == 200 and h["etag"] == f"\"{h['x-projsync-sha']}\""
        etag = h["etag"]
        for inm in (etag, f"W/{etag}", f"\"nope\", {etag}", "*"):
            st, h2, data = srv.get("/api/v1/projects/demo/file?path=a.txt", raw=True,
                                   headers={"If-None-Match": inm})
            assert st == 304 and h2["etag"] == etag and data == b"", inm
        st, _, data = srv.get("/api/v1/projects/demo/file?path=a.txt", raw=True,
                              headers={"If-None-Match": "\"other\""})
        assert st == 200 and data == b"alpha\n"
    finally:
        srv.stop()
