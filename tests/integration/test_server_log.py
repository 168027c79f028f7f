"""
The server's log (issue 11 item 5): `serve --log-format logfmt|json` writes one record per line
on stderr; a sync logs its start and its end (or failure) with project, sync id, trigger and
duration; requests are logged in the same format; tokens from the environment never appear,
not even when they are part of a path that a request or an error message carries.
"""
import json
import re
import shutil
import time

import pytest

from conftest import Repo
from server_util import Server

API_TOKEN = "api-tok-5e3f9a1c"
GH_TOKEN = "ghp_logtest0123456789"
HOOK_SECRET = "hook-secret-77b2"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}

LOGFMT_PAIR = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "=]+)(?: |$)')


def parse_logfmt(line):
    rec, pos = {}, 0
    while pos < len(line):
        m = LOGFMT_PAIR.match(line, pos)
        assert m, f"not logfmt at {pos}: {line!r}"
        k, v = m.group(1), m.group(2)
        rec[k] = json.loads(v) if v.startswith('"') else v
        pos = m.end()
    return rec


def records(srv, fmt):
    lines = srv.stderr().splitlines()
    assert lines
    if fmt == "json":
        return [json.loads(line) for line in lines]
    return [parse_logfmt(line) for line in lines]


@pytest.fixture
def projects(ps, repo, tmp_path):
    """`demo` syncs; `gone` points at a repository, under a directory named after the API
    token, that is deleted after it was added (its sync fails quoting that path)."""
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("demo", repo.path)
    secret_dir = tmp_path / f"x-{API_TOKEN}"
    other = Repo.init(secret_dir / "repo")
    other.write("b.txt", "b\n")
    other.commit("c1")
    ps.add("gone", other.path)
    shutil.rmtree(secret_dir)


@pytest.mark.parametrize("fmt", ["json", "logfmt", None])
def test_sync_records_in_each_format(ps, projects, fmt):
    env = {"PROJSYNC_API_TOKEN": API_TOKEN, "GITHUB_TOKEN": GH_TOKEN,
           "PROJSYNC_WEBHOOK_SECRET": HOOK_SECRET}
    srv = Server(ps, *(["--log-format", fmt] if fmt else []), env=env)
    try:
        st, _, ok = srv.post("/api/v1/projects/demo/sync", headers=AUTH)
        assert st == 202, ok
        done = wait_done(srv, ok["id"])
        assert done["status"] == "succeeded", done
        st, _, bad = srv.post("/api/v1/projects/gone/sync", headers=AUTH)
        assert st == 202, bad
        failed = wait_done(srv, bad["id"])
        assert failed["status"] == "failed", failed
        # A request whose path carries a secret, and one with a wrong token.
        st, _, _ = srv.get(f"/api/v1/projects/{API_TOKEN}", headers=AUTH)
        assert st == 404
        st, _, _ = srv.get(f"/api/v1/projects/{GH_TOKEN}", headers={"Authorization": "Bearer x"})
        assert st == 401
    finally:
        srv.stop()

    raw = srv.stderr()
    for secret in (API_TOKEN, GH_TOKEN, HOOK_SECRET):
        assert secret not in raw
    recs = records(srv, fmt or "logfmt")
    for r in recs:
        assert {"time", "level", "msg"} <= r.keys(), r
        assert r["level"] in ("info", "warn", "error"), r

    def one(msg, sync_id):
        found = [r for r in recs if r["msg"] == msg and str(r.get("sync_id")) == str(sync_id)]
        assert len(found) == 1, (msg, sync_id, raw)
        return found[0]

    for sid, name in ((ok["id"], "demo"), (bad["id"], "gone")):
        started = one("sync started", sid)
        assert started["project"] == name and started["trigger"] == "api"
    end = one("sync succeeded", ok["id"])
    assert end["project"] == "demo" and end["trigger"] == "api" and end["level"] == "info"
    assert int(end["duration_ms"]) >= 0 and end["commit"] == done["commit"]
    assert str(end["files"]) == "1"
    fail = one("sync failed", bad["id"])
    assert fail["project"] == "gone" and fail["trigger"] == "api" and fail["level"] == "error"
    assert int(fail["duration_ms"]) >= 0 and fail["phase"]
    # The error quotes the deleted path, with the token's part of it redacted.
    assert "[redacted]" in fail["error"] and failed["error"]["message"], fail
    if fmt == "json":
        assert isinstance(end["sync_id"], int) and isinstance(end["duration_ms"], int)
    # The request log is in the same format, one record per request.
    http = [r["msg"] for r in recs if r["msg"].startswith("http ")]
    assert any(m.startswith("http POST /api/v1/projects/demo/sync 202") for m in http), http
    assert any(m.startswith("http GET /api/v1/projects/[redacted] 404") for m in http), http


def wait_done(srv, sync_id, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st, _, s = srv.get(f"/api/v1/syncs/{sync_id}", headers=AUTH)
        assert st == 200, s
        if s["status"] in ("succeeded", "failed", "cancelled"):
            return s
        time.sleep(0.05)
    raise AssertionError(f"sync {sync_id} did not end: {s}")


def test_bad_log_format_is_a_usage_error(ps):
    r = ps("serve", "--listen", "127.0.0.1:0", "--log-format", "xml")
    assert r.rc == 2
    assert r.err.startswith("projsync: --log-format must be logfmt or json")
    assert len(r.err.splitlines()) == 1
