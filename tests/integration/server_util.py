"""
Helpers for the server tests: spawn `projsync serve` on a free port (port 0: the server prints
the one it bound) against the test's store, talk HTTP/1.1 to it with the standard library, and
read its SSE streams. Each server is stopped with SIGTERM at the end and must exit 0 with no
sanitizer report on stderr.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

from conftest import Result, check_sanitizers

FINAL = ("succeeded", "failed", "cancelled")


class Server:
    def __init__(self, ps, *args, env=None, listen="127.0.0.1:0", local_root=True):
        """`local_root`: True lets the API name repositories under the test's directory
        (--local-root TMP), a path names another root, False gives none."""
        self.ps = ps
        root = ([] if local_root is False or "--local-root" in args else
                ["--local-root", str(ps.tmp if local_root is True else local_root)])
        self.args = ["serve", "--listen", listen, "--heartbeat-ms", "500", *root, *args]
        self.env = ps.env_with(env)
        self.proc = subprocess.Popen(ps.argv(self.args), env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.err_lines = []
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()
        line = self.proc.stdout.readline().decode()
        m = re.search(r"http://(\S+):(\d+)", line)
        if not m:
            self.proc.wait(timeout=30)
            raise AssertionError(f"server did not start: {line!r}\n{self.stderr()}")
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
        self.base = f"http://{m.group(1)}:{self.port}"

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.err_lines.append(line.decode("utf-8", "replace"))

    def stderr(self):
        return "".join(self.err_lines)

    def conn(self, timeout=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, raw=False, conn=None):
        """-> (status, headers dict (lowercase keys), parsed JSON or bytes)."""
        c = conn or self.conn()
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        if conn is None:
            c.close()
        if raw or not h.get("content-type", "").startswith("application/json"):
            return r.status, h, data
        return r.status, h, json.loads(data) if data else None

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def pages(self, path):
        """Follows a list's `Link: <...>; rel="next"` from `path` to its end: (items, pages)."""
        items, n = [], 0
        while path:
            st, h, body = self.get(path)
            assert st == 200, (path, body)
            items += body
            n += 1
            link = h.get("link")
            if link:
                assert link.endswith('>; rel="next"') and link.startswith("</api/v1/"), link
                path = link[1:link.index(">")]
            else:
                path = None
        return items, n

    def stop(self, sig=signal.SIGTERM, expect_rc=0, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self._err_thread.join(timeout=10)
        self.proc.stdout.close()
        res = Result(self.args, rc, b"", self.stderr())
        check_sanitizers(res)
        if expect_rc is not None:
            assert rc == expect_rc, res
        return rc

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._err_thread.join(timeout=10)
        self.proc.stdout.close()


def read_sse(resp, stop_after=None):
    """Parses an SSE response until it ends (or `stop_after` events): [(id, event, data)]."""
    events = []
    cur = {}
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.decode().rstrip("\n")
        if line == "":
            if "data" in cur:
                events.append((int(cur["id"]), cur.get("event", "message"), json.loads(cur["data"])))
                if stop_after and len(events) >= stop_after:
                    break
            cur = {}
            continue
        if line.startswith(":"):
            continue
        k, _, v = line.partition(":")
        cur[k] = v[1:] if v.startswith(" ") else v
    return events


def open_sse(server, sync_id, last_event_id=None, timeout=60):
    c = server.conn(timeout=timeout)
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    c.request("GET", f"/api/v1/events/project-sync/{sync_id}", headers=headers)
    r = c.getresponse()
    return c, r


def stream(server, sync_id, last_event_id=None, timeout=60):
    c, r = open_sse(server, sync_id, last_event_id, timeout)
    assert r.status == 200, r.read()
    assert r.getheader("Content-Type") == "text/event-stream"
    try:
        return read_sse(r)
    finally:
        c.close()


def check_stream(events, first_seq=1):
    """Seqs consecutive from first_seq, one sync, exactly one final event and it is last, the
    SSE id/event fields agree with the JSON."""
    assert events, "no events"
    assert [e[0] for e in events] == list(range(first_seq, first_seq + len(events))), events
    for sid, kind, data in events:
        assert data["seq"] == sid and data["kind"] == kind
    assert len({e[2]["sync_id"] for e in events}) == 1
    finals = [i for i, e in enumerate(events) if e[1] in FINAL]
    assert finals == [len(events) - 1], events
    return events[-1]


def wait_status(server, sync_id, statuses, timeout=60, headers=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st, _, s = server.get(f"/api/v1/syncs/{sync_id}", headers=headers)
        assert st == 200, s
        if s["status"] in statuses:
            return s
        time.sleep(0.05)
    raise AssertionError(f"sync {sync_id} never reached {statuses}: {s}")
