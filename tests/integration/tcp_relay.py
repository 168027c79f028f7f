"""
Loopback TCP peers for the tests and benchmarks (shared with bench/, like git_daemon.py): a
listener on a port of the kernel's choosing whose accept loop runs on a thread, and a relay
built on it that pipes each connection to an upstream port. The port is bound here (port 0)
and held while the object lives: picking a free port and binding it later would race with the
other tests binding ports meanwhile (pytest-xdist runs several).
"""
import socket
import threading


class Listener:
    """Accepts connections on 127.0.0.1:`port` and hands each to `on_connect(conn)` (the
    argument, or a subclass's method), on the accept thread: a handler that blocks holds up
    the next accept. close() stops the loop and joins the thread."""

    def __init__(self, on_connect=None, backlog=64):
        if on_connect is not None:
            self.on_connect = on_connect
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def on_connect(self, conn):
        conn.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.on_connect(c)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close alone would not
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=10)


class Relay(Listener):
    """Pipes every connection to 127.0.0.1:`up`, both ways, on two threads per connection.
    `up` may be changed while it runs (an upstream restarted on another port): later
    connections go there. An upstream that cannot be reached closes the client's connection,
    so the client sees its connection fail. `received` counts the bytes sent back to clients
    (take() reads and resets it).

    When one direction ends, the relay passes the end on as TCP does: the other side's write
    half is shut, and what still flows the other way goes on (git's protocol). With
    `cut_both`, it cuts the whole connection instead: a client of a database that went down
    loses its connection both ways at once, as it would without the relay."""

    def __init__(self, up, backlog=64, cut_both=False, connect_timeout=10):
        self.up = up
        self.cut_both = cut_both
        self.connect_timeout = connect_timeout
        self.received = 0
        self.lock = threading.Lock()
        super().__init__(backlog=backlog)

    def on_connect(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.up), timeout=self.connect_timeout)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        threading.Thread(target=self._pipe, args=(c, u, False), daemon=True).start()
        threading.Thread(target=self._pipe, args=(u, c, True), daemon=True).start()

    def _pipe(self, a, b, back):
        try:
            while data := a.recv(262144):
                if back:
                    with self.lock:
                        self.received += len(data)
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                how = socket.SHUT_RDWR if self.cut_both else \
                    socket.SHUT_WR if s is b else socket.SHUT_RD
                try:
                    s.shutdown(how)
                except OSError:
                    pass

    def take(self):
        with self.lock:
            n, self.received = self.received, 0
        return n
