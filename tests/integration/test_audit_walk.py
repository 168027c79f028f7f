"""
Defects found by a later first-time user's and security reviewer's walk through the CLI, the API
and the web page's server, each kept fixed here: help texts that promised another exit code than
the command gives, query arguments read past what they say.
"""
import re

from conftest import one_error_line
from server_util import Server


def test_help_of_branch_states_the_exit_code_a_missing_branch_gives(ps, repo):
    # `project add|set --help` said "must exist (exit 3 otherwise)"; a branch the source does
    # not have is invalid input, exit 2 (docs/cli.md, the API's 422 branch_not_found).
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    for cmd in (("project", "add", "q", str(repo.path)), ("project", "set", "p")):
        helptext = ps.ok(*cmd[:2], "--help").out
        m = re.search(r"must exist\s+\(exit (\d+) otherwise\)", helptext)
        assert m, helptext
        r = ps(*cmd, "--branch", "no-such-branch")
        assert r.rc == int(m.group(1)) and one_error_line(r.err), (cmd, m.group(0), r)
        assert "no-such-branch" in r.err
    assert [p["name"] for p in ps.json("project", "list")] == ["p"]


def test_a_code_search_cursor_is_digits_that_fit_or_400(ps, repo):
    # The `after` cursor's line went through strtoll unchecked: a line past 2^63 became
    # LLONG_MAX and answered an empty page (200, as if nothing followed), and `+1` or ` 1`
    # passed, where every other number of the API is digits only.
    repo.write("a.txt", "alpha\nalpha\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    srv = Server(ps)
    try:
        base = "/api/v1/projects/p/search/code?q=alpha"
        st, _, hits = srv.get(base)
        assert st == 200 and [x["line"] for x in hits] == [1, 2], hits
        st, _, hits = srv.get(base + "&after=1:a.txt")
        assert st == 200 and [x["line"] for x in hits] == [2], hits
        for bad in ("99999999999999999999:a.txt", "%2B1:a.txt", "%201:a.txt", "-1:a.txt",
                    "1", "x:a.txt"):
            st, _, e = srv.get(f"{base}&after={bad}")
            assert st == 400 and e["error"]["code"] == "invalid_parameter", (bad, st, e)
    finally:
        srv.stop()


def test_sync_server_says_which_variable_carries_the_token(ps, repo):
    # `sync --server` printed the server's words, "this server needs 'Authorization: Bearer
    # <token>'", to someone who sends no header by hand: the CLI sends PROJSYNC_API_TOKEN.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    srv = Server(ps, env={"PROJSYNC_API_TOKEN": "api-tok", "PROJSYNC_READ_TOKEN": "read-tok"})
    try:
        cases = ((None, "needs a token"), ("wrong", "refused the token"),
                 ("read-tok", "may only read"))
        for token, says in cases:
            env = {"PROJSYNC_API_TOKEN": token} if token else {}
            r = ps("sync", "p", "--server", srv.base, env=env)
            assert r.rc == 1 and one_error_line(r.err), r
            assert "PROJSYNC_API_TOKEN" in r.err and says in r.err, r.err
            assert "Authorization" not in r.err and (not token or token not in r.err), r.err
        assert ps.json("history", "p") == []
        r = ps("sync", "p", "--server", srv.base, env={"PROJSYNC_API_TOKEN": "api-tok"})
        assert r.rc == 0, r
    finally:
        srv.stop()


def test_credentials_in_a_source_url_are_shown_nowhere(ps, make_repo, tmp_path):
    # A source such as https://user:TOKEN@host/repo.git (the usual way to give a private
    # remote's token) was shown whole: in the API's project (to the read token too), the sync's
    # error, its events, the web page, `project list|show|status` and every error message.
    # Only the server's log redacted it.
    from git_http import GitHttp
    from server_util import stream, wait_status

    secret = "s3cret-Pa55"
    work = make_repo("work")
    work.write("a.txt", "a\n")
    work.commit("c1")
    (tmp_path / "served").mkdir()
    work.git("clone", "-q", "--bare", str(work.path), str(tmp_path / "served" / "up.git"))
    daemon = GitHttp(tmp_path / "served")
    try:
        url = daemon.url("up.git", f"user:{secret}")
        shown = daemon.url("up.git", "[redacted]")
        r = ps("project", "add", "p", url)
        assert r.rc == 0 and secret not in r.out + r.err and shown in r.out, r
        ssh = "ssh://git:" + secret + "@127.0.0.1:1/x.git"
        r = ps("project", "add", "q", ssh)
        assert r.rc != 0 and one_error_line(r.err), r
        assert secret not in r.err and "ssh://git:[redacted]@127.0.0.1:1/x.git" in r.err, r.err
        r = ps("project", "add", "q", f"http://{secret}@127.0.0.1:1/x.git")
        assert r.rc != 0 and secret not in r.err and "http://[redacted]@127.0.0.1:1" in r.err, r
        srv = Server(ps, env={"PROJSYNC_API_TOKEN": "api-tok", "PROJSYNC_READ_TOKEN": "read"})
        try:
            write = {"Authorization": "Bearer api-tok"}
            read = {"Authorization": "Bearer read"}
            st, _, s = srv.post("/api/v1/projects/p/sync", {}, headers=write)
            assert st == 202, s
            wait_status(srv, s["id"], ("succeeded", "failed"), headers=write)
            seen = []
            for path in ("/api/v1/projects", "/api/v1/projects/p", "/api/v1/projects/p/syncs",
                         f"/api/v1/syncs/{s['id']}"):
                st, _, body = srv.get(path, headers=read, raw=True)
                assert st == 200, body
                seen.append(body.decode())
            c = srv.conn()
            c.request("GET", f"/api/v1/events/project-sync/{s['id']}?access_token=read")
            seen.append(c.getresponse().read().decode())
            c.close()
            assert shown in seen[1], seen[1]
            for text in seen:
                assert secret not in text, text
        finally:
            srv.stop()
        assert secret not in srv.stderr()
        r = ps("sync", "p")
        assert secret not in r.out + r.err, r
        for args in (("project", "list"), ("project", "show", "p"), ("status", "p"),
                     ("project", "list", "--json"), ("history", "p", "--json")):
            r = ps.ok(*args)
            assert secret not in r.out + r.err, (args, r.out)
        assert shown in ps.ok("project", "list").out
    finally:
        daemon.close()


def test_a_path_that_starts_with_a_dash_is_told_to_go_after_double_dash(ps, repo):
    # `cat p -leading.txt` said only "unknown option '-l'", a letter the user never typed
    # alone; `--` (which works) was named nowhere.
    repo.write("-leading.txt", "-leading dash\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    for args in (("cat", "p", "-leading.txt"), ("grep", "-leading", "p")):
        r = ps(*args)
        assert r.rc == 2 and one_error_line(r.err), r
        assert "'-leading" in r.err and "'--'" in r.err, r.err
    assert ps.ok("cat", "p", "--", "-leading.txt").out == "-leading dash\n"
    assert ps.ok("grep", "--", "-leading", "p").out == "-leading.txt:1:-leading dash\n"
    r = ps("sync", "p", "-q")
    assert r.rc == 2 and "unknown option '-q'" in r.err and "'--'" not in r.err, r.err


def test_a_large_webhook_body_is_read_in_linear_time(ps):
    # The body grew by each chunk libmicrohttpd hands over (a few KiB: the connection has
    # 16 KiB), copying all of it again each time: a 25 MiB delivery with a wrong signature,
    # which anyone reaching the server may send, held an HTTP thread for about a minute
    # (under ASan; glibc often extends in place, but not when other requests share the arena).
    import time
    srv = Server(ps, env={"PROJSYNC_WEBHOOK_SECRET": "hook-secret"})
    try:
        body = b"a" * (25 * 1024 * 1024 - 100)
        t0 = time.monotonic()
        st, _, e = srv.post("/api/v1/webhooks/github", body, headers={
            "X-GitHub-Event": "push", "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + "0" * 64})
        took = time.monotonic() - t0
        assert st == 401, e
        assert took < 20, f"a 25 MiB body took {took:.1f} s to read"
        st, _, _ = srv.get("/healthz")
        assert st == 200
    finally:
        srv.stop()


def test_request_bodies_held_at_once_are_bounded(ps):
    # Each body was bounded by its route (25 MiB for the webhook, open to anyone), but not
    # their sum: every connection (16384 by default) could hold a delivery it never finished.
    # Past PS_HTTP_MAX_BODIES_TOTAL (128 MiB) a body is refused, 503 server_busy, and what
    # the others held is given back when they end.
    import socket
    srv = Server(ps, env={"PROJSYNC_WEBHOOK_SECRET": "hook-secret"})
    declared = 25 * 1024 * 1024 - 1000
    chunk = b"a" * (24 * 1024 * 1024)
    head = (f"POST /api/v1/webhooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-GitHub-Event: push\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: sha256={'0' * 64}\r\n"
            f"Content-Length: {declared}\r\n\r\n").encode()
    socks, answers = [], []
    try:
        for _ in range(6):
            s = socket.create_connection((srv.host, srv.port), timeout=30)
            socks.append(s)
            try:
                s.sendall(head + chunk)
            except OSError:
                pass  # refused and closed while we were still sending
        for s in socks:
            s.settimeout(2)
            try:
                answers.append(s.recv(4096))
            except socket.timeout:
                answers.append(b"")  # still reading the body: held
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert busy and all(b"server_busy" in a for a in busy), answers
        assert len([a for a in answers if a == b""]) >= 4, answers
        st, _, _ = srv.get("/healthz")
        assert st == 200
    finally:
        for s in socks:
            s.close()
    try:
        import time
        for _ in range(50):  # the server frees a body once it sees its connection end
            try:
                st, _, e = srv.post("/api/v1/webhooks/github", b"a" * declared, headers={
                    "X-GitHub-Event": "push", "Content-Type": "application/json",
                    "X-Hub-Signature-256": "sha256=" + "0" * 64})
            except OSError as err:  # refused before the body, connection closed
                st, e = 503, err
            if st != 503:
                break
            time.sleep(0.2)
        assert st == 401, e
    finally:
        srv.stop()


def test_every_serve_option_is_in_the_api_document(ps):
    # docs/api.md, the server's reference, listed neither --lease-seconds, --max-failures,
    # --prune-every nor --log-format, which `serve --help` and projsync-serve(1) describe.
    import pathlib
    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    table = doc[:doc.index("## Access")]
    opts = set(re.findall(r"^\s+(--[a-z][a-z-]+)", ps.ok("serve", "--help", db=False).out, re.M))
    assert "--listen" in opts and "--prune-every" in opts, opts
    missing = sorted(o for o in opts - {"--routes"} if f"`{o} " not in table and f"`{o}`" not in table)
    assert not missing, missing


def test_a_webhook_push_reaches_a_source_that_carries_credentials(ps, make_repo, tmp_path):
    # A private repository is often given with its token in the URL (https://TOKEN@host/...);
    # GitHub's payload names the repository without it, and the comparison kept the user
    # part: such a project never synced on a push.
    import hashlib
    import hmac
    import json as jsonlib
    from git_http import GitHttp

    work = make_repo("work")
    work.write("a.txt", "a\n")
    work.commit("c1")
    (tmp_path / "served").mkdir()
    work.git("clone", "-q", "--bare", str(work.path), str(tmp_path / "served" / "up.git"))
    daemon = GitHttp(tmp_path / "served")
    secret = "hook-secret"
    try:
        plain = daemon.url("up.git")
        ps.ok("project", "add", "p", daemon.url("up.git", "user:pw"), "--branch", "main")
        srv = Server(ps, env={"PROJSYNC_WEBHOOK_SECRET": secret})
        try:
            body = jsonlib.dumps({"ref": "refs/heads/main", "after": "1" * 40,
                                  "repository": {"full_name": "o/up", "clone_url": plain,
                                                 "default_branch": "main"}}).encode()
            sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            st, _, r = srv.post("/api/v1/webhooks/github", body, headers={
                "X-GitHub-Event": "push", "Content-Type": "application/json",
                "X-Hub-Signature-256": sig, "X-GitHub-Delivery": "d-1"})
            assert st == 202 and [q["project"] for q in r["queued"]] == ["p"], (st, r)
        finally:
            srv.stop()
    finally:
        daemon.close()


def test_every_answer_says_nosniff(ps, repo):
    # Only a file's raw bytes and the page's files said nosniff; JSON answers and errors,
    # which quote repository text and request paths, did not.
    repo.write("<img src=x onerror=alert(1)>.md", "# hi\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    srv = Server(ps)
    try:
        for path in ("/api/v1/projects", "/api/v1/projects/p/files", "/api/v1/projects/%3Cb%3E",
                     "/api/v1/nope%3Cscript%3E", "/api/v1/syncs/1", "/openapi.json", "/metrics",
                     "/healthz", "/", "/api/v1/projects/p/file?path=x", "/api/v1/syncs/x",
                     "/api/v1/events/project-sync/1"):
            st, h, _ = srv.get(path, raw=True)
            assert h.get("x-content-type-options") == "nosniff", (path, st, h)
        st, h, _ = srv.request("DELETE", "/api/v1/projects/nope")
        assert st == 404 and h.get("x-content-type-options") == "nosniff", h
        st, h, _ = srv.get("/api/v1/projects/p/file?path=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.md",
                           raw=True)
        assert st == 200 and h.get("x-content-type-options") == "nosniff", h
    finally:
        srv.stop()


def test_a_local_path_refused_by_the_api_says_the_ways_in(ps, repo, tmp_path):
    # A first project added on the page is a path more often than not (the form's own
    # example is one), and `serve` has no --local-root by default: the answer said only
    # "local paths are not allowed through the API", naming neither way in.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    srv = Server(ps, local_root=False)
    try:
        st, _, e = srv.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
        assert st == 403 and e["error"]["code"] == "local_path_forbidden", e
        msg = e["error"]["message"]
        assert "--local-root" in msg and "projsync project add" in msg, msg
        assert str(repo.path) not in msg
    finally:
        srv.stop()
    (tmp_path / "elsewhere").mkdir()
    srv = Server(ps, local_root=str(tmp_path / "elsewhere"))
    try:
        st, _, e = srv.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
        assert st == 403 and "outside the server's --local-root" in e["error"]["message"], e
    finally:
        srv.stop()


def test_help_command_prints_the_commands_own_help(ps):
    # `projsync help sync` printed the overview whatever followed, where git's `help commit`
    # habit expects sync's own text; and sync's usage line left out --server, which its
    # options describe.
    for words in (("sync",), ("project", "add"), ("memory", "list"), ("store", "copy")):
        want = ps.ok(*words, "--help", db=False).out
        assert ps.ok("help", *words, db=False).out == want, words
    assert "[--server URL]" in ps.ok("sync", "--help", db=False).out.splitlines()[0]
    assert ps.ok("help", db=False).out == ps.ok("--help", db=False).out
    r = ps("help", "nope", db=False)
    assert r.rc == 2 and one_error_line(r.err) and "'nope'" in r.err, r
