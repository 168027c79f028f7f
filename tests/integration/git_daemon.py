"""
`git daemon` for the tests, on a loopback port of the kernel's choosing. The port is bound here
(tcp_relay.Listener, port 0) and each connection is handed to `git daemon --inetd`: picking a
free port, releasing it and starting the daemon on it would race with every other test binding
ports meanwhile (pytest-xdist runs several), and a daemon that lost the race could leave the
test talking to whoever won it.
"""
import subprocess

from tcp_relay import Listener


class GitDaemon(Listener):
    """Serves the repositories under `base` at git://127.0.0.1:PORT/NAME. With `silent` set,
    new connections are held open and never answered (a remote gone quiet)."""

    def __init__(self, base):
        # Set before the listener starts: its accept thread reads them at once.
        self.base = base
        self.silent = False
        self.held = []
        self.procs = []
        super().__init__()

    def on_connect(self, c):
        if self.silent:
            self.held.append(c)
            return
        with c:
            self.procs.append(subprocess.Popen(
                ["git", "daemon", "--inetd", "--export-all", "--log-destination=none",
                 f"--base-path={self.base}", str(self.base)],
                stdin=c.fileno(), stdout=c.fileno(), stderr=subprocess.DEVNULL))
        self.procs = [p for p in self.procs if p.poll() is None]

    def url(self, name):
        return f"git://127.0.0.1:{self.port}/{name}"

    def close(self):
        super().close()
        for c in self.held:
            c.close()
        for p in self.procs:
            p.terminate()
            p.wait(timeout=10)
