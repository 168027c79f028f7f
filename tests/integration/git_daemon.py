"""
`git daemon` for the tests, on a loopback port of the kernel's choosing. The port is bound here
(port 0) and each connection is handed to `git daemon --inetd`: picking a free port, releasing
it and starting the daemon on it would race with every other test binding ports meanwhile
(pytest-xdist runs several), and a daemon that lost the race could leave the test talking to
whoever won it.
"""
import socket
import subprocess
import threading


class GitDaemon:
    """Serves the repositories under `base` at git://127.0.0.1:PORT/NAME. With `silent` set,
    new connections are held open and never answered (a remote gone quiet)."""

    def __init__(self, base):
        self.base = base
        self.silent = False
        self.held = []
        self.procs = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.silent:
                self.held.append(c)
                continue
            with c:
                self.procs.append(subprocess.Popen(
                    ["git", "daemon", "--inetd", "--export-all", "--log-destination=none",
                     f"--base-path={self.base}", str(self.base)],
                    stdin=c.fileno(), stdout=c.fileno(), stderr=subprocess.DEVNULL))
            self.procs = [p for p in self.procs if p.poll() is None]

    def url(self, name):
        return f"git://127.0.0.1:{self.port}/{name}"

    def close(self):
        # shutdown wakes the accept() blocked in the thread; close alone would not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=10)
        for c in self.held:
            c.close()
        for p in self.procs:
            p.terminate()
            p.wait(timeout=10)
