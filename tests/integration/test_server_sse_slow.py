"""
A slow SSE watcher (src/server/sse.c; docs/api.md "Live progress"): one that does not read is
dropped once its bounded queue (256 KiB) has been full and unread for a while, with its memory
freed, while the other watchers of the same sync receive every event; the dropped client
reconnects with Last-Event-ID and loses nothing. A fast watcher replaying a history much larger
than its queue is paced by its socket, never dropped.

Loopback sockets buffer megabytes, so a real sync (a few events a second) cannot fill a queue
behind them. The test gives a finished sync a long history instead: it writes ~8 MB of filler
progress events (seq consecutive, the final event moved to the end) straight into the store,
which is exactly what the hub reads and streams.
"""
import json
import re
import socket
import sqlite3
import threading
import time

from server_util import Server, check_stream, open_sse, read_sse, wait_status

FILLER = 8000   # events of ~1 KiB: far more than kernel buffers + one queue
QUEUE = 256 * 1024


def long_history(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    srv = Server(ps)
    st, _, _ = srv.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
    assert st == 201
    st, _, s = srv.post("/api/v1/projects/p/sync")
    assert st == 202
    wait_status(srv, s["id"], ("succeeded",))
    db = sqlite3.connect(str(ps.db), timeout=30)
    with db:
        rows = db.execute("SELECT seq, kind, payload FROM events WHERE sync_id = ? ORDER BY seq",
                          (s["id"],)).fetchall()
        final_seq, final_kind, final_payload = rows[-1]
        assert final_kind == "succeeded"
        base = json.loads(rows[-2][2])
        db.execute("DELETE FROM events WHERE sync_id = ? AND seq = ?", (s["id"], final_seq))
        filler = []
        for k in range(FILLER):
            seq = final_seq + k
            ev = dict(base, seq=seq, kind="progress", message="x" * 900)
            filler.append((s["id"], seq, "progress", json.dumps(ev)))
        db.executemany("INSERT INTO events (sync_id, seq, kind, payload) VALUES (?, ?, ?, ?)",
                       filler)
        final = json.loads(final_payload)
        final["seq"] = final_seq + FILLER
        db.execute("INSERT INTO events (sync_id, seq, kind, payload) VALUES (?, ?, ?, ?)",
                   (s["id"], final["seq"], final_kind, json.dumps(final)))
    db.close()
    return srv, s["id"], final_seq + FILLER


def raw_sse_request(srv, sync_id):
    """A watcher that sends its request and then reads nothing (a tiny receive buffer, so the
    server's side fills first)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((srv.host, srv.port))
    sock.sendall(f"GET /api/v1/events/project-sync/{sync_id} HTTP/1.1\r\n"
                 f"Host: 127.0.0.1:{srv.port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    return sock


def parse_raw_events(data):
    """Events (id, kind, data) of a raw chunked SSE response, whole events only."""
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    # De-chunk what is complete.
    out, pos = bytearray(), 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            break
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0 or end + 2 + size > len(body):
            out += body[end + 2:end + 2 + size]
            break
        out += body[end + 2:end + 2 + size]
        pos = end + 2 + size + 2
    events = []
    for block in bytes(out).decode("utf-8", "replace").split("\n\n")[:-1]:
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            k, _, v = line.partition(":")
            fields[k] = v[1:] if v.startswith(" ") else v
        if "data" in fields:
            try:
                events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
            except ValueError:
                break  # the tail of a cut stream
    return events


def metric(srv, name):
    st, _, text = srv.get("/metrics")
    m = re.search(rf"^{name} (\d+)", text.decode(), re.M)
    return int(m.group(1))


def test_slow_watcher_is_dropped_others_get_everything(ps, repo):
    srv, sync_id, last = long_history(ps, repo)
    try:
        slow = raw_sse_request(srv, sync_id)
        time.sleep(0.3)  # the slow one is first: it holds the replay back until it is dropped
        fast = []
        results = {}

        def watch(i):
            try:
                results[i] = read_sse(open_sse(srv, sync_id, timeout=120)[1])
            except Exception as e:  # reported below
                results[i] = e

        for i in range(3):
            t = threading.Thread(target=watch, args=(i,))
            t.start()
            fast.append(t)
        for t in fast:
            t.join(timeout=120)
        # Every fast watcher got every event, in order, ending with the final one.
        for i in range(3):
            assert not isinstance(results[i], Exception), results[i]
            assert len(results[i]) == last, (i, len(results[i]))
            check_stream(results[i])

        # The slow one was dropped, with no more than its queue's worth held for it.
        m = None
        for _ in range(200):
            m = re.search(r"dropping a slow watcher of sync (\d+) \((\d+) bytes queued",
                          srv.stderr())
            if m:
                break
            time.sleep(0.05)
        assert m, srv.stderr()[-3000:]
        assert int(m.group(1)) == sync_id and int(m.group(2)) <= QUEUE
        assert srv.stderr().count("dropping a slow watcher") == 1  # only the slow one

        # Reading now, it gets what was in flight and then the end of the connection: a
        # prefix of the events, gap-free, without the final event.
        slow.settimeout(30)
        data = bytearray()
        while True:
            try:
                chunk = slow.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        slow.close()
        got = parse_raw_events(bytes(data))
        assert got, data[:300]
        assert [e[0] for e in got] == list(range(1, len(got) + 1))
        assert len(got) < last and got[-1][1] != "succeeded"

        # It reconnects with Last-Event-ID and loses nothing.
        c, r = open_sse(srv, sync_id, last_event_id=got[-1][0], timeout=120)
        rest = read_sse(r)
        c.close()
        check_stream(rest, first_seq=got[-1][0] + 1)
        assert rest[-1][0] == last

        # Nothing is left behind.
        for _ in range(100):
            if metric(srv, "projsync_sse_watchers") == 0:
                break
            time.sleep(0.05)
        assert metric(srv, "projsync_sse_watchers") == 0
    finally:
        srv.stop()
