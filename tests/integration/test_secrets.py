"""
Secrets never leak. GITHUB_TOKEN, PROJSYNC_API_TOKEN and PROJSYNC_WEBHOOK_SECRET are set to
unique marker strings; syncs that succeed and syncs that fail (401, 404, 5xx, spent and secondary
rate limits) run through the GitHub emulator from the CLI (with and without --json) and through
`projsync serve`, every endpoint of the server is asked (with good, bad and no credentials),
/metrics and the web page's files included, a webhook is delivered with a good and a bad
signature, and `sync --server` runs the client side. Then every byte projsync wrote (stdout,
stderr, HTTP bodies and headers, SSE streams, logs, events, error messages) and the store's
files on disk are searched for the markers: there must be none.

(No PostgreSQL backend exists in this tree; when one lands, its password joins the markers.)
"""
import hashlib
import hmac
import json
import sys
import uuid
from pathlib import Path

import pytest

from conftest import parse_events
from server_util import Server, read_sse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fakehub.client import FakeHub  # noqa: E402

TAG = uuid.uuid4().hex[:12]
GH_TOKEN = f"ghp_SECRETgh{TAG}"
API_TOKEN = f"SECRETapi{TAG}"
HOOK_SECRET = f"SECREThook{TAG}"
MARKERS = (GH_TOKEN, API_TOKEN, HOOK_SECRET)


class Transcript:
    """Everything projsync said, in one place to be searched."""

    def __init__(self):
        self.parts = []

    def add(self, what, data):
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        self.parts.append((what, str(data)))

    def cli(self, what, r):
        self.add(what + " stdout", r.out)
        self.add(what + " stderr", r.err)
        return r

    def http(self, what, res):
        status, headers, body = res
        self.add(f"{what} headers", headers)
        self.add(f"{what} body", body)
        return res

    def leaks(self):
        return [(what, m) for what, text in self.parts for m in MARKERS if m in text]


@pytest.fixture
def hub():
    h = FakeHub.start()
    h.tokens([GH_TOKEN])
    yield h
    h.stop()


def test_no_secret_reaches_any_output_log_event_or_the_store(ps, hub, make_repo):
    t = Transcript()
    env = {"PROJSYNC_GITHUB_API": hub.url, "PROJSYNC_GITHUB_BACKOFF_MS": "50",
           "PROJSYNC_GITHUB_TIMEOUT_MS": "2000", "PROJSYNC_GITHUB_MAX_WAIT": "1",
           "GITHUB_TOKEN": GH_TOKEN, "PROJSYNC_API_TOKEN": API_TOKEN,
           "PROJSYNC_WEBHOOK_SECRET": HOOK_SECRET}
    ps.env.update(env)
    repo = make_repo()
    repo.write("README.md", "hello\n")
    repo.write(".memory/deploy.md", "---\ntitle: Deploy\ntags: [ops]\n---\nhow we deploy\n")
    repo.commit()
    hub.add_repo("octo/r", repo.path)

    # The CLI: a sync that succeeds, in both output modes, and what reads the store.
    t.cli("add", ps.ok("project", "add", "p", "github:octo/r"))
    r = t.cli("sync json", ps("sync", "p", "--json"))
    assert parse_events(r)[-1]["kind"] == "succeeded", r
    repo.write("b.txt", "b\n")
    repo.commit()
    t.cli("sync text", ps.ok("sync", "p"))
    for args in (("project", "list"), ("project", "show", "p"), ("history", "p"), ("files", "p"),
                 ("memory", "list", "p"), ("memory", "search", "p", "deploy")):
        t.cli(" ".join(args), ps(*args))
        t.cli(" ".join(args) + " --json", ps(*args, "--json"))
    t.cli("cat", ps("cat", "p", "README.md"))

    # Syncs that fail, each in both output modes.
    repo.write("c.txt", "c\n")
    repo.commit()
    failures = {
        "401": lambda: hub.tokens(["another-token"]),
        "5xx": lambda: hub.fault("*", "502", nth=1, times=10 ** 6),
        "secondary": lambda: hub.fault("*", "secondary", nth=1, times=10 ** 6),
        "rate_limit": lambda: hub.rate_limit(limit=60, remaining=0, reset_in=3 * 3600),
    }
    for name, arm in failures.items():
        arm()
        for mode in ((), ("--json",)):
            r = t.cli(f"sync {name} {mode}", ps("sync", "p", *mode))
            assert r.rc == 1, (name, r)
        hub.clear_faults()
        hub.tokens([GH_TOKEN])
        hub.rate_limit(5000, reset_in=3600)
    r = t.cli("add 404", ps("project", "add", "gone", "github:octo/nothere"))
    assert r.rc != 0, r
    r = t.cli("add 404 json", ps("project", "add", "gone", "github:octo/nothere", "--json"))

    # The server: every endpoint, with the token, with a wrong one and with none.
    srv = Server(ps, env=env)
    try:
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        wrong = {"Authorization": "Bearer not-the-token"}
        st, _, started = t.http("POST sync", srv.post("/api/v1/projects/p/sync", {}, headers=auth))
        assert st == 202, started
        sid = started["id"]
        c = srv.conn()
        c.request("GET", f"/api/v1/events/project-sync/{sid}?access_token={API_TOKEN}")
        resp = c.getresponse()
        t.add("SSE", read_sse(resp))
        c.close()
        paths = ["/api/v1/projects", "/api/v1/projects/p", "/api/v1/projects/p/branches",
                 "/api/v1/projects/p/sync", "/api/v1/projects/p/syncs",
                 "/api/v1/projects/p/files", "/api/v1/projects/p/file?path=README.md",
                 f"/api/v1/syncs/{sid}", f"/api/v1/syncs/{sid}/changes",
                 "/api/v1/projects/p/memory", "/api/v1/projects/p/memory?q=deploy",
                 "/api/v1/memory/1", "/api/v1/memory/1/history", "/api/v1/projects/nothere",
                 "/healthz", "/metrics", "/openapi.json", "/", "/projects/p"]
        web = Path(__file__).resolve().parents[2] / "web"
        paths += [f"/assets/{f.name}" for f in sorted(web.iterdir()) if f.name != "index.html"]
        for p in paths:
            for name, h in (("auth", auth), ("wrong", wrong), ("none", {})):
                t.http(f"GET {p} {name}", srv.get(p, headers=h))
        # A failing sync through the server (the token GitHub no longer accepts).
        hub.tokens(["another-token"])
        st, _, started = t.http("POST failing sync",
                                srv.post("/api/v1/projects/p/sync", {}, headers=auth))
        c = srv.conn()
        c.request("GET", f"/api/v1/events/project-sync/{started['id']}", headers=auth)
        events = read_sse(c.getresponse())
        c.close()
        t.add("SSE failing", events)
        assert events[-1][1] == "failed", events
        t.http("GET failed sync", srv.get(f"/api/v1/syncs/{started['id']}", headers=auth))
        hub.tokens([GH_TOKEN])
        t.http("POST project 404", srv.post("/api/v1/projects", {"name": "q", "source":
                                                                 "github:octo/nothere"},
                                            headers=auth))
        t.http("POST memory", srv.post("/api/v1/projects/p/memory",
                                       {"title": "t", "content": "c"}, headers=auth))
        # Webhooks: a good signature and a bad one.
        body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40,
                           "repository": {"full_name": "octo/r",
                                          "html_url": "https://github.com/octo/r"}})
        sig = "sha256=" + hmac.new(HOOK_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        for name, s in (("good", sig), ("bad", "sha256=" + "0" * 64)):
            t.http(f"webhook {name}", srv.post("/api/v1/webhooks/github", body, headers={
                "X-GitHub-Event": "push", "X-GitHub-Delivery": name,
                "X-Hub-Signature-256": s, "Content-Type": "application/json"}))
        # The client side of sync --server, in both modes, with the right and a wrong token.
        for mode in ((), ("--json",)):
            t.cli(f"sync --server {mode}", ps("sync", "p", "--server", srv.base, *mode))
            t.cli(f"sync --server wrong {mode}", ps("sync", "p", "--server", srv.base, *mode,
                                                    env={"PROJSYNC_API_TOKEN": "nope"}))
        t.http("metrics after", srv.get("/metrics"))
    finally:
        srv.stop()
    t.add("server stderr", srv.stderr())

    assert t.leaks() == []
    # The store's files, byte for byte (the database, its WAL, the remote caches beside it).
    for f in ps.db.parent.rglob("*"):
        if not f.is_file():
            continue
        data = f.read_bytes()
        for m in MARKERS:
            assert m.encode() not in data, (f, m)
    # The search itself works: the transcript holds what a leak would sit beside.
    assert any("bad credentials" in text.lower() for _, text in t.parts)


def test_a_new_sqlite_store_and_its_wal_are_private_an_existing_one_keeps_its_mode(ps, repo):
    # The store holds sources with their credentials. In a folder that exists (not the default
    # one, created 0700) it was created with the umask's mode, 0644: readable by every user.
    import os
    import stat
    if ps.backend != "sqlite":
        pytest.skip("a SQLite store file")
    old = os.umask(0o022)
    try:
        db = Path(ps.db)
        assert db.parent.is_dir() and not db.exists()
        ps.add("p", repo.url)
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        srv = Server(ps)  # holds the store open: its -wal and -shm exist meanwhile
        try:
            ps.sync("p")
            for side in ("-wal", "-shm"):
                f = Path(f"{db}{side}")
                assert f.exists() and stat.S_IMODE(f.stat().st_mode) == 0o600, side
        finally:
            srv.stop()
        # A store the user made readable stays so: projsync does not chmod a user's file.
        os.chmod(db, 0o640)
        ps.sync("p")
        assert stat.S_IMODE(db.stat().st_mode) == 0o640
    finally:
        os.umask(old)
