"""
`make run` (scripts/demo): the server comes up first and only then are the hints printed; a
port that is taken ends the demo with a clear message and no hints; Ctrl-C stops the server.
"""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from conftest import BIN, ROOT, Repo, check_sanitizers, Result

DEMO = str(ROOT / "scripts" / "demo")


def demo_env(ps, listen):
    return ps.env_with({"PROJSYNC_DB": str(ps.tmp / "demo" / "projsync.db"),
                        "PROJSYNC_LISTEN": listen})


def test_a_taken_port_fails_before_any_hint(ps):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([DEMO, BIN], env=demo_env(ps, f"127.0.0.1:{port}"),
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r
    assert "Try, from another terminal" not in r.stdout, r.stdout
    assert f"did not start on 127.0.0.1:{port}" in r.stderr, r.stderr
    assert "make run PORT=" in r.stderr, r.stderr
    check_sanitizers(Result(["demo"], r.returncode, b"", r.stderr))


def add_by_path(port, name, path):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/projects", method="POST",
        data=json.dumps({"name": name, "source": str(path)}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_hints_come_once_the_server_answers_and_ctrl_c_stops_it(ps):
    # Port 0: the server binds a port of the kernel's choosing and the demo names the one it
    # got (a port picked here and released would be a race with other tests' servers).
    proc = subprocess.Popen([DEMO, BIN], env=demo_env(ps, "127.0.0.1:0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out = b""
        end = time.monotonic() + 300
        while b"Ctrl-C stops the server" not in out and time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
        text = out.decode()
        m = re.search(r"projsync serve on http://127\.0\.0\.1:(\d+) ", text)
        assert m and int(m.group(1)) != 0, text
        port = int(m.group(1))
        assert f"curl -s http://127.0.0.1:{port}/api/v1/projects" in text, text
        # The hints are out: the server must answer now, not in a moment.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert resp.status == 200
        # A first user adds a repository by path on the page: the demo's folder for them
        # (--local-root) is named in the hints and takes it; a path elsewhere stays refused.
        repos = (ps.tmp / "demo" / "repos").resolve()
        assert f"git clone SOURCE {repos}/NAME" in text, text
        for where in (repos / "mine", ps.tmp / "elsewhere"):
            r = Repo.init(where)
            r.write("a.txt", "a\n")
            r.commit()
        assert add_by_path(port, "mine", repos / "mine") == 201
        assert add_by_path(port, "elsewhere", ps.tmp / "elsewhere") == 403
        # Ctrl-C in a terminal reaches the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=60)
        err = proc.stderr.read().decode()
        assert rc == 0, (rc, err)
        check_sanitizers(Result(["demo"], rc, b"", err))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
