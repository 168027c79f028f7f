"""
PATCH /api/v1/projects/{name} with the schedule and retention fields (issue 11): the values are
applied as `project set` applies them and shown in the project JSON (next_sync_at included);
a bad value is refused with 400 before anything changes, even beside good fields; a PATCH of a
retention field alone leaves the schedule as it is (the adapted `auto` interval and the due
time are not recomputed).
"""
from datetime import datetime

import pytest

from server_util import Server


@pytest.fixture
def server(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    s = Server(ps)
    st, _, p = s.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
    assert st == 201, p
    yield s
    if s.proc.poll() is None:
        s.stop()


def patch(server, name, body):
    return server.request("PATCH", f"/api/v1/projects/{name}", body=body)


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_patch_schedule_and_retention_applied(server, ps):
    p = ps.project("p")
    assert p["every"] == "off" and p["next_sync_at"] is None and p["keep_syncs"] is None
    ps.sync("p")
    checked = ts(ps.project("p")["last_check_at"])
    st, _, p = patch(server, "p", {"every": "10m", "max_failures": 3, "keep_syncs": 5,
                                   "keep_days": 30, "code_index": False})
    assert st == 200, p
    assert p["every"] == "10m" and p["interval_seconds"] == 600 and p["state"] == "active"
    assert p["max_failures"] == 3 and p["keep_syncs"] == 5 and p["keep_days"] == 30
    assert p["code_index"] is False
    # Due one interval after the latest check (the manual sync), plus at most a minute of jitter.
    due = ts(p["next_sync_at"])
    assert checked + 600 <= due <= checked + 660, (checked, p)
    assert ps.project("p") == p  # stored: the CLI sees the same
    assert server.get("/api/v1/projects/p")[2] == p

    st, _, p = patch(server, "p", {"every": "auto", "auto_min_seconds": 120,
                                   "auto_max_seconds": 7200})
    assert st == 200, p
    assert p["every"] == "auto" and p["auto_min_seconds"] == 120
    assert p["auto_max_seconds"] == 7200 and p["interval_seconds"] == 120  # auto starts low
    assert p["keep_syncs"] == 5 and p["max_failures"] == 3  # not given: unchanged

    # 0 clears a count; off clears the schedule and its due time.
    st, _, p = patch(server, "p", {"every": "off", "keep_syncs": 0, "max_failures": 0})
    assert st == 200, p
    assert p["every"] == "off" and p["next_sync_at"] is None and p["interval_seconds"] is None
    assert p["keep_syncs"] is None and p["max_failures"] is None and p["keep_days"] == 30
    assert ps.project("p") == p


@pytest.mark.parametrize("body,code", [
    ({"every": "5s"}, "invalid_every"),
    ({"every": "31d"}, "invalid_every"),
    ({"every": "soon"}, "invalid_every"),
    ({"every": 600}, "invalid_every"),
    ({"auto_min_seconds": 5}, "invalid_field"),
    ({"auto_min_seconds": "60"}, "invalid_field"),
    ({"auto_min_seconds": 600, "auto_max_seconds": 300}, "invalid_field"),
    ({"max_failures": -1}, "invalid_field"),
    ({"keep_syncs": 2.5}, "invalid_field"),
    ({"keep_days": "7"}, "invalid_field"),
    ({"code_index": "no"}, "invalid_field"),
    # Never null when read back: null is refused, not taken as "not given" (a 200 that
    # changed nothing).
    ({"every": None}, "invalid_field"),
    ({"auto_min_seconds": None}, "invalid_field"),
    ({"auto_max_seconds": None, "keep_syncs": None}, "invalid_field"),
    # A good field beside a bad one: nothing of it is applied, not even the rename.
    ({"keep_syncs": 9, "every": "1s"}, "invalid_every"),
    ({"name": "q", "every": "10m", "keep_days": -3}, "invalid_field"),
])
def test_patch_bad_schedule_values_refused_before_any_change(server, ps, body, code):
    assert patch(server, "p", {"every": "1h", "keep_syncs": 4})[0] == 200
    before = ps.project("p")
    st, _, e = patch(server, "p", body)
    assert st == 400 and e["error"]["code"] == code, (body, e)
    assert "\n" not in e["error"]["message"] and e["error"]["message"]
    assert ps.project("p") == before
    assert server.get("/api/v1/projects/q")[0] == 404


def test_patch_retention_alone_keeps_the_schedule(server, ps):
    ps.sync("p")  # the first check finds the head: auto's interval starts at its minimum
    st, _, p = patch(server, "p", {"every": "auto", "auto_min_seconds": 600})
    assert st == 200 and p["interval_seconds"] == 600, p
    ps.sync("p")  # up to date: auto doubles the interval
    adapted = ps.project("p")
    assert adapted["interval_seconds"] == 1200, adapted
    for body in ({"keep_syncs": 3}, {"keep_days": 7}, {"max_failures": 4},
                 {"code_index": False}):
        st, _, p = patch(server, "p", body)
        assert st == 200, p
        for key in ("every", "interval_seconds", "next_sync_at", "last_check_at", "state"):
            assert p[key] == adapted[key], (body, key, p, adapted)
    assert p["keep_syncs"] == 3 and p["keep_days"] == 7 and p["max_failures"] == 4
    assert ps.project("p") == p


def test_patch_null_clears_a_limit_as_it_reads_back(server, ps):
    # A limit reads back as null when there is none, but a PATCH with null changed nothing
    # (200, the old limit kept): sending back what a GET gave must mean what it says.
    st, _, p = patch(server, "p", {"every": "1h", "max_failures": 3, "keep_syncs": 5,
                                   "keep_days": 30})
    assert st == 200, p
    st, _, p = patch(server, "p", {"keep_syncs": None})
    assert st == 200 and p["keep_syncs"] is None, p
    assert p["keep_days"] == 30 and p["max_failures"] == 3 and p["every"] == "1h", p
    st, _, p = patch(server, "p", {"keep_days": None, "max_failures": None})
    assert st == 200 and p["keep_days"] is None and p["max_failures"] is None, p
    assert ps.project("p") == p
    assert ps.project("p")["keep_syncs"] is None
    # The round trip: a project as read back, patched with its own nullable members.
    st, _, got = server.get("/api/v1/projects/p")
    body = {k: got[k] for k in ("max_failures", "keep_syncs", "keep_days")}
    st, _, p = patch(server, "p", body)
    assert st == 200 and p == got, (p, got)
