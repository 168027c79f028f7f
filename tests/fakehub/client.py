"""
The tests' handle on a running emulator: FakeHub.start() runs tests/fakehub/server.py as a
subprocess on a free loopback port (so the projsync binary talks to it over real HTTP, exactly as
it would to api.github.com) and drives its /_fakehub/ control API with urllib.
"""
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "server.py"


class FakeHub:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, repos_dir=None, tokens=None):
        args = [sys.executable, str(SERVER), "--port", "0"]
        if repos_dir is not None:
            args += ["--repos", str(repos_dir)]
        if tokens is not None:
            args += ["--tokens", ",".join(tokens)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=None, text=True)
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            proc.kill()
            raise RuntimeError(f"fakehub did not start: {line!r}")
        return cls(proc, int(line.split()[1]))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.control("DELETE", "faults")   # ends hanging handlers
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- control API
    def control(self, method, what, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_fakehub/{what}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def config(self, **kw):
        return self.control("POST", "config", kw)

    def add_repo(self, full_name, path):
        return self.config(repos={full_name: str(path)})

    def reset(self):
        return self.control("POST", "reset", {})

    def counters(self):
        return self.control("GET", "counters")

    def log(self):
        return self.control("GET", "log")

    def fault(self, kind, fault, nth=1, times=1):
        return self.control("POST", "faults",
                            {"kind": kind, "nth": nth, "fault": fault, "times": times})

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def rate_limit(self, limit=5000, remaining=None, reset_in=3600):
        rl = {"limit": limit, "reset_in": reset_in}
        if remaining is not None:
            rl["remaining"] = remaining
        return self.config(rate_limit=rl)

    def truncate_at(self, n):
        return self.config(truncate_at=n)

    def rename(self, old, new):
        return self.config(renames={old: new})

    def tokens(self, toks):
        return self.config(tokens=None if toks is None else list(toks))

    # --- plain requests (tests of the emulator itself)
    def get(self, path, headers=None, follow=True):
        """(status, headers dict (lower-case keys), body bytes) of GET path."""
        req = urllib.request.Request(self.url + path if path.startswith("/") else path,
                                     headers=headers or {})
        opener = urllib.request.build_opener() if follow else \
            urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def get_json(self, path, headers=None):
        st, h, body = self.get(path, headers)
        return st, h, (json.loads(body) if body else None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def env_for(hub, token=None, backoff_ms=50):
    """The environment a projsync process needs to use `hub` as its GitHub."""
    env = {"PROJSYNC_GITHUB_API": hub.url, "PROJSYNC_GITHUB_BACKOFF_MS": str(backoff_ms)}
    if token is not None:
        env["GITHUB_TOKEN"] = token
    return env


__all__ = ["FakeHub", "env_for", "SERVER"]
