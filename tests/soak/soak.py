#!/usr/bin/env python3
"""
The soak run of issue 12 (`make soak`; a 1-minute version runs in `make test` through
tests/integration/test_soak.py): one `projsync serve` under everything at once for
SOAK_MINUTES, then checks that it held.

Load, all from one asyncio loop (1,000 threads would cost more than the server on 2 cores):
  - repositories that keep changing: local ones (named through --local-root) and ones served by
    the GitHub emulator (tests/fakehub), whose faults are switched on at random;
  - a driver per project that starts syncs through the API in a loop;
  - CLI syncs (`projsync sync`, another process on the same store) killed with SIGKILL at a
    random moment;
  - SSE watchers that come and go: each follows a recent sync, drops its connection at random
    and resumes with Last-Event-ID;
  - API reads at a steady rate.

At the end (exit 1 and the reason when any fails):
  - RSS and open fds of the server, measured while it is idle, within 10% of their value after
    warm-up (idle too);
  - every stream complete: seqs 1..n without a gap or a repeat across resumes, one final event,
    last;
  - every sync succeeded, or failed/cancelled with a code and a message;
  - every snapshot exact: `files --json --at SYNC` equals `git ls-tree -r COMMIT`, for every
    succeeded sync;
  - the store consistent: PRAGMA integrity_check says ok.
A summary is printed (and written as JSON with --summary FILE).
"""
import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from fakehub.client import FakeHub  # noqa: E402

FINAL = ("succeeded", "failed", "cancelled")
GIT_ENV = {"GIT_AUTHOR_NAME": "soak", "GIT_AUTHOR_EMAIL": "soak@example.com",
           "GIT_COMMITTER_NAME": "soak", "GIT_COMMITTER_EMAIL": "soak@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
FAULTS = ["500", "502", "503", "hang", "cut", "truncated_json", "secondary", "secondary_429",
          "primary", "secondary_far"]
KINDS = ["*", "repo", "branch", "branches", "commit", "git_commit", "tree", "blob", "compare",
         "tarball"]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def git(cwd, *args):
    env = dict(os.environ, **GIT_ENV)
    r = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, timeout=60)
    if r.returncode:
        raise RuntimeError(f"git {args}: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


class Stats:
    def __init__(self):
        self.api_reads = self.api_errors = 0
        self.streams_ok = self.streams_bad = self.resumes = self.server_drops = 0
        self.streams_cut_by_harness = 0
        self.events_seen = 0
        self.cli_started = self.cli_killed = 0
        self.faults_set = 0
        self.commits = 0
        self.sync_409 = 0
        self.failures = []           # (what, detail): each one fails the run


class Soak:
    def __init__(self, args):
        self.a = args
        self.bin = args.bin
        self.tmp = Path(tempfile.mkdtemp(prefix="projsync-soak-"))
        self.db = self.tmp / "store" / "projsync.db"
        self.db.parent.mkdir()
        self.st = Stats()
        self.syncs = {}          # id -> project
        self.recent = []         # recent sync ids, newest last
        self.repos = {}          # project -> repo path
        self.stop = False
        self.open_streams = self.peak_streams = 0
        self.heap = []
        self.rng = random.Random(args.seed)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("PROJSYNC_") and not k.startswith("GIT_")}
        self.env.update(GIT_ENV)
        self.env.update({"HOME": str(self.tmp), "PROJSYNC_GITHUB_BACKOFF_MS": "50",
                         "PROJSYNC_GITHUB_TIMEOUT_MS": "2000", "PROJSYNC_GITHUB_MAX_WAIT": "10",
                         # Each sync step sleeps a little (a test hook of core/sync.c), so
                         # syncs last about a second: watchers stay on running syncs and a
                         # SIGKILL lands mid-sync, as with real repositories.
                         "PROJSYNC_TEST_STEP_DELAY_MS": str(args.step_delay_ms),
                         "ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=4:"
                                         "malloc_context_size=5"})

    # ---------------------------------------------------------------- setup
    def make_repo(self, name, files=40):
        path = self.tmp / "repos" / name
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        for i in range(files):
            (path / f"d{i % 5}").mkdir(exist_ok=True)
            (path / f"d{i % 5}" / f"f{i}.txt").write_text(f"{name} file {i}\n" * (i + 1))
        os.symlink("d0/f0.txt", path / "link")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "first")
        return path

    def mutate(self, path):
        n = self.rng.randint(1, 4)
        for _ in range(n):
            d = path / f"d{self.rng.randrange(7)}"
            d.mkdir(exist_ok=True)
            f = d / f"f{self.rng.randrange(80)}.txt"
            r = self.rng.random()
            if r < 0.2 and f.exists():
                f.unlink()
            elif r < 0.3:
                f.write_bytes(os.urandom(self.rng.randrange(1, 3000)))
                f.chmod(0o755 if self.rng.random() < 0.5 else 0o644)
            else:
                f.write_text(f"{time.time()} {self.rng.random()}\n" * self.rng.randrange(1, 50))
        git(path, "add", "-A")
        git(path, "commit", "-q", "--allow-empty", "-m", f"change {self.st.commits}")
        self.st.commits += 1

    def start_server(self):
        args = [self.bin, "--db", str(self.db), "serve", "--listen", "127.0.0.1:0", "--quiet",
                "--local-root", str(self.tmp / "repos"), "--max-connections", "8000",
                "--heartbeat-ms", "2000", "--workers", "2"]
        env = dict(self.env, PROJSYNC_GITHUB_API=self.hub.url)
        self.err = open(self.tmp / "server.log", "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=self.err)
        line = self.proc.stdout.readline().decode()
        self.port = int(line.rsplit(":", 1)[1].split()[0])
        log(f"server pid {self.proc.pid} on port {self.port}, store {self.db}")

    # ---------------------------------------------------------------- HTTP
    async def http(self, method, path, body=None, headers=None, timeout=30):
        data = b"" if body is None else json.dumps(body).encode()
        hdrs = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs["Content-Length"] = str(len(data))
        req = f"{method} {path} HTTP/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), timeout)
        try:
            w.write(req.encode() + b"\r\n" + data)
            await w.drain()
            raw = await asyncio.wait_for(r.read(), timeout)
        finally:
            w.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        ctype = b"application/json" in head.lower()
        return status, (json.loads(payload) if ctype and payload else payload)

    # ---------------------------------------------------------------- load
    async def mutator(self):
        while not self.stop:
            await asyncio.sleep(self.rng.uniform(0.5, 2.0) * self.a.scale)
            path = self.rng.choice(list(self.repos.values()))
            await asyncio.to_thread(self.mutate, path)

    def note_sync(self, sid, project):
        if sid not in self.syncs:
            self.syncs[sid] = project
            self.recent.append(sid)
            del self.recent[:-30]

    async def driver(self, project):
        while not self.stop:
            try:
                st, s = await self.http("POST", f"/api/v1/projects/{project}/sync", {})
                if st == 202:
                    self.note_sync(s["id"], project)
                    while not self.stop:
                        await asyncio.sleep(0.3)
                        st, s2 = await self.http("GET", f"/api/v1/syncs/{s['id']}")
                        if st == 200 and s2["status"] in FINAL:
                            break
                elif st == 409:
                    # A CLI sync (maybe killed) holds the project: reading its syncs lets the
                    # server see a dead owner.
                    self.st.sync_409 += 1
                    st, lst = await self.http("GET", f"/api/v1/projects/{project}/syncs?limit=3")
                    for s2 in lst if st == 200 else []:
                        if s2["status"] not in FINAL:
                            await self.http("GET", f"/api/v1/syncs/{s2['id']}")
                else:
                    self.st.failures.append(("sync start", f"{project}: {st} {s}"))
            except (OSError, asyncio.TimeoutError) as e:
                self.st.failures.append(("sync driver", f"{project}: {e!r}"))
            await asyncio.sleep(self.rng.uniform(0.2, 1.5) * self.a.scale)

    async def cli_killer(self):
        env = dict(self.env, PROJSYNC_GITHUB_API=self.hub.url)
        while not self.stop:
            await asyncio.sleep(self.rng.uniform(2, 6) * self.a.scale)
            project = self.rng.choice(list(self.repos))
            p = await asyncio.create_subprocess_exec(
                self.bin, "--db", str(self.db), "sync", project, "--json", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            self.st.cli_started += 1
            # Killed at a random moment: before it claims the sync, mid-phase or (rarely)
            # after it ended.
            await asyncio.sleep(self.rng.uniform(0.02, 0.8))
            if p.returncode is None:
                p.send_signal(signal.SIGKILL)
                self.st.cli_killed += 1
            out = await p.stdout.read()
            await p.wait()
            for line in out.splitlines()[:1]:
                try:
                    self.note_sync(json.loads(line)["sync_id"], project)
                except (ValueError, KeyError):
                    pass

    async def faults(self):
        while not self.stop:
            await asyncio.sleep(self.rng.uniform(1, 5) * self.a.scale)
            kind, fault = self.rng.choice(KINDS), self.rng.choice(FAULTS)
            await asyncio.to_thread(self.hub.fault, kind, fault, self.rng.randint(1, 5),
                                    self.rng.randint(1, 8))
            self.st.faults_set += 1

    async def reader(self):
        paths = ["/api/v1/projects", "/healthz", "/metrics"]
        interval = 1.0 / self.a.read_rate
        while not self.stop:
            t0 = time.monotonic()
            project = self.rng.choice(list(self.repos))
            path = self.rng.choice(paths + [f"/api/v1/projects/{project}",
                                            f"/api/v1/projects/{project}/syncs",
                                            f"/api/v1/projects/{project}/sync",
                                            f"/api/v1/projects/{project}/files"])
            try:
                st, _ = await self.http("GET", path)
                self.st.api_reads += 1
                if st not in (200, 404):  # 404: files before a first snapshot
                    self.st.api_errors += 1
                    self.st.failures.append(("api read", f"{path}: {st}"))
            except (OSError, asyncio.TimeoutError) as e:
                self.st.api_errors += 1
                self.st.failures.append(("api read", f"{path}: {e!r}"))
            await asyncio.sleep(max(0, interval - (time.monotonic() - t0)))

    async def watch_once(self, sid):
        """Follows sync `sid` to its final event, dropping and resuming at random."""
        seqs, last, final = [], None, None
        deadline = time.monotonic() + 300
        while final is None:
            if time.monotonic() > deadline:
                self.st.streams_bad += 1
                self.st.failures.append(("stream", f"sync {sid}: no final event in 300 s "
                                         f"(seqs {seqs[-5:]})"))
                return
            drop_after = self.rng.randint(1, 8) if self.rng.random() < 0.4 else None
            hdrs = f"Last-Event-ID: {last}\r\n" if last is not None else ""
            r, w = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
            dropped = False
            self.open_streams += 1
            self.peak_streams = max(self.peak_streams, self.open_streams)
            try:
                w.write(f"GET /api/v1/events/project-sync/{sid} HTTP/1.0\r\n"
                        f"Host: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n"
                        f"{hdrs}\r\n".encode())
                await w.drain()
                status = (await asyncio.wait_for(r.readline(), 60)).split(b" ")[1]
                if status != b"200":
                    self.st.streams_bad += 1
                    self.st.failures.append(("stream", f"sync {sid}: status {status}"))
                    return
                while (await asyncio.wait_for(r.readline(), 60)) not in (b"\r\n", b""):
                    pass
                cur, n = {}, 0
                while True:
                    line = await asyncio.wait_for(r.readline(), 60)
                    if not line:
                        break
                    line = line.decode().rstrip("\r\n")
                    if line.startswith(":"):
                        continue
                    if line == "":
                        if "data" in cur:
                            seq = int(cur["id"])
                            seqs.append(seq)
                            last = seq
                            self.st.events_seen += 1
                            n += 1
                            if cur.get("event") in FINAL:
                                final = cur["event"]
                                break
                            if drop_after and n >= drop_after:
                                dropped = True
                                break
                        cur = {}
                        continue
                    k, _, v = line.partition(":")
                    cur[k] = v[1:] if v.startswith(" ") else v
            except asyncio.TimeoutError:
                dropped = True
            finally:
                self.open_streams -= 1
                w.close()
            if final is None:
                self.st.resumes += 1
                if not dropped:
                    self.st.server_drops += 1
        if seqs != list(range(1, len(seqs) + 1)):
            self.st.streams_bad += 1
            self.st.failures.append(("stream", f"sync {sid}: seqs {seqs}"))
        else:
            self.st.streams_ok += 1

    async def watcher(self):
        while not self.stop:
            await asyncio.sleep(self.rng.uniform(0.5, self.a.think))
            if not self.recent:
                continue
            sid = self.rng.choice(self.recent[-4:])
            try:
                await self.watch_once(sid)
            except asyncio.CancelledError:
                self.st.streams_cut_by_harness += 1
                raise
            except OSError as e:
                self.st.streams_bad += 1
                self.st.failures.append(("stream", f"sync {sid}: {e!r}"))

    # ---------------------------------------------------------------- measuring
    def resources(self):
        pid = self.proc.pid
        rss = 0
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        return rss, len(os.listdir(f"/proc/{pid}/fd"))

    def heap_in_use(self):
        """With --malloc-stats: the bytes glibc's malloc has handed out and not had back, from
        malloc_stats() called in the server through gdb (it writes to the server's stderr).
        Tells a leak (this grows) from arenas that grew and keep their pages (only RSS
        grows). None without the option or when gdb cannot attach."""
        if not self.a.malloc_stats:
            return None
        log_path = self.tmp / "server.log"
        before = log_path.stat().st_size
        g = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-nx", "-ex",
                            "call ((void (*)(void)) malloc_stats)()", "-ex",
                            "print ((long long (*)(void)) sqlite3_memory_used)()"],
                           capture_output=True, timeout=120, text=True)
        sqlite_mem = None
        for line in g.stdout.splitlines():
            if line.startswith("$1 = "):
                sqlite_mem = int(line.split("=")[1])
        time.sleep(0.5)
        with open(log_path, "rb") as f:
            f.seek(before)
            text = f.read().decode(errors="replace")
        total = text.rsplit("Total (incl. mmap):", 1)
        if len(total) < 2:
            return None
        for line in total[1].splitlines():
            if line.strip().startswith("in use bytes"):
                return {"malloc_in_use": int(line.split("=")[1]), "sqlite": sqlite_mem}
        return None

    async def quiesce_and_measure(self, label):
        """Stops the load, lets every sync end and every stream close, then measures."""
        self.stop = True
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.to_thread(self.hub.clear_faults)
        for _ in range(600):
            st, lst = await self.http("GET", "/api/v1/projects")
            busy = False
            for p in lst:
                st, s = await self.http("GET", f"/api/v1/projects/{p['name']}/syncs?limit=3")
                for x in s:
                    if x["status"] not in FINAL:
                        busy = True
                        await self.http("GET", f"/api/v1/syncs/{x['id']}")  # reaps dead owners
            if not busy:
                break
            await asyncio.sleep(0.5)
        # Longer than the server's malloc_trim period (10 s, http.c): idle means trimmed.
        await asyncio.sleep(12)
        rss, fds = self.resources()
        heap = await asyncio.to_thread(self.heap_in_use)
        self.heap.append(heap)
        log(f"{label}: RSS {rss / 1024:.1f} MiB, {fds} open fds, store "
            f"{self.db.stat().st_size / 1e6:.1f} MB" +
            (f", malloc in use {heap['malloc_in_use'] / 1048576:.1f} MiB (SQLite's part "
             f"{(heap['sqlite'] or 0) / 1048576:.1f} MiB)" if heap else ""))
        return rss, fds

    def start_load(self):
        self.stop = False
        self.tasks = [asyncio.create_task(self.mutator()), asyncio.create_task(self.faults()),
                      asyncio.create_task(self.cli_killer()), asyncio.create_task(self.reader())]
        self.tasks += [asyncio.create_task(self.driver(p)) for p in self.repos]
        self.tasks += [asyncio.create_task(self.watcher()) for _ in range(self.a.watchers)]

    # ---------------------------------------------------------------- checks
    async def check_syncs(self):
        """Every sync in the store, whoever started it (the API, a CLI process killed or not)."""
        ok = failed = 0
        reasons = {}
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        ids = [r[0] for r in con.execute("SELECT id FROM syncs")]
        con.close()
        self.all_syncs = len(ids)
        for sid in sorted(ids):
            st, s = await self.http("GET", f"/api/v1/syncs/{sid}")
            if st != 200 or s["status"] not in FINAL:
                self.st.failures.append(("sync", f"{sid}: {st} {s}"))
                continue
            if s["status"] == "succeeded":
                ok += 1
                continue
            failed += 1
            err = s.get("error") or {}
            if not err.get("code") or not err.get("message"):
                self.st.failures.append(("sync", f"{sid} {s['status']} without a reason: {s}"))
            reasons[err.get("code")] = reasons.get(err.get("code"), 0) + 1
        return ok, failed, reasons

    def check_snapshots(self):
        """Every succeeded sync of the store (API, CLI, ...) against git."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        rows = con.execute("SELECT s.id, p.name, s.commit_sha FROM syncs s JOIN projects p "
                           "ON p.id = s.project_id WHERE s.status = 'succeeded'").fetchall()
        con.close()
        checked = 0
        for sid, project, commit in rows:
            out = subprocess.run([self.bin, "--db", str(self.db), "files", project, "--at",
                                  str(sid), "--json"], capture_output=True, env=self.env,
                                 timeout=120)
            if out.returncode:
                self.st.failures.append(("snapshot", f"files --at {sid}: {out.stderr[:300]}"))
                continue
            got = json.loads(out.stdout)
            got = got.get("files", got) if isinstance(got, dict) else got
            ours = sorted((f["path"], f["mode"], f["sha"]) for f in got)
            tree = git(self.repos[project], "ls-tree", "-r", "-z", "--full-tree", commit)
            want = sorted((rec.split("\t", 1)[1], rec.split()[0], rec.split()[2])
                          for rec in tree.split("\0") if rec)
            if ours != want:
                self.st.failures.append(("snapshot", f"sync {sid} ({project} {commit}): "
                                         f"{len(ours)} files vs git's {len(want)}"))
            checked += 1
        return checked

    def integrity(self):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        res = con.execute("PRAGMA integrity_check").fetchall()
        con.close()
        return [r[0] for r in res]

    # ---------------------------------------------------------------- the run
    async def run(self):
        a = self.a
        self.hub = await asyncio.to_thread(FakeHub.start)
        self.hub.config(hang_seconds=2)
        # A spent primary limit resets within seconds (the syncs wait it out, up to
        # PROJSYNC_GITHUB_MAX_WAIT), so GitHub projects keep syncing after a "primary" fault.
        self.hub.rate_limit(5000, reset_in=5)
        for i in range(a.local_repos):
            self.repos[f"local{i}"] = self.make_repo(f"local{i}")
        for i in range(a.hub_repos):
            path = self.make_repo(f"hub{i}")
            self.hub.add_repo(f"octo/hub{i}", path)
            self.repos[f"hub{i}"] = path
        self.start_server()
        for name, path in self.repos.items():
            source = f"github:octo/{name}" if name.startswith("hub") else str(path)
            st, body = await self.http("POST", "/api/v1/projects", {"name": name, "source": source})
            assert st == 201, body

        total = a.minutes * 60
        warm = a.warmup if a.warmup else max(15.0, total * 0.2)
        t0 = time.monotonic()
        log(f"soak: {a.minutes} min, {a.watchers} watchers, {len(self.repos)} projects; "
            f"warm-up {warm:.0f} s")
        self.start_load()
        await asyncio.sleep(warm)
        base_rss, base_fds = await self.quiesce_and_measure("after warm-up")
        samples = []
        self.start_load()
        end = t0 + total
        while time.monotonic() < end:
            await asyncio.sleep(min(10, max(0.1, end - time.monotonic())))
            rss, fds = self.resources()
            samples.append((rss, fds))
            log(f"  RSS {rss / 1024:.1f} MiB, fds {fds}, open streams {self.open_streams}, "
                f"syncs {len(self.syncs)}, streams "
                f"{self.st.streams_ok}, reads {self.st.api_reads}, failures "
                f"{len(self.st.failures)}")
        end_rss, end_fds = await self.quiesce_and_measure("at the end")
        elapsed = time.monotonic() - t0

        ok, failed, reasons = await self.check_syncs()
        self.proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(self.proc.wait, 120)
        self.err.close()
        if rc != 0:
            self.st.failures.append(("server", f"exit {rc}; see {self.tmp / 'server.log'}"))
        errlog = (self.tmp / "server.log").read_text(errors="replace")
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in errlog:
                self.st.failures.append(("server", f"sanitizer report ({mark}) in "
                                         f"{self.tmp / 'server.log'}"))
        checked = await asyncio.to_thread(self.check_snapshots)
        integ = self.integrity()
        if integ != ["ok"]:
            self.st.failures.append(("store", f"integrity_check: {integ[:5]}"))
        self.hub.stop()
        for what, base, now, tol in (("RSS", base_rss, end_rss, a.rss_tolerance),
                                     ("fds", base_fds, end_fds, 0.10)):
            if now > base * (1 + tol):
                self.st.failures.append(("resources", f"{what} {base} after warm-up, {now} at "
                                         f"the end (more than {tol:.0%})"))

        s = self.st
        summary = {
            "minutes": round(elapsed / 60, 1), "watchers": a.watchers,
            "projects": len(self.repos), "commits": s.commits,
            "syncs": self.all_syncs, "succeeded": ok, "failed_with_reason": failed,
            "failure_codes": reasons, "cli_syncs": s.cli_started, "cli_killed": s.cli_killed,
            "faults_switched_on": s.faults_set, "sync_start_409": s.sync_409,
            "streams_complete": s.streams_ok, "streams_bad": s.streams_bad,
            "resumes": s.resumes, "server_ended_streams_early": s.server_drops,
            "events_read": s.events_seen, "api_reads": s.api_reads,
            "peak_open_streams": self.peak_streams,
            "store_mb_end": round(self.db.stat().st_size / 1e6, 1),
            "rss_growth": round(end_rss / base_rss - 1, 3),
            "rss_kib_after_warmup": base_rss, "rss_kib_end": end_rss,
            "rss_peak_kib": max([r for r, _ in samples] + [end_rss]),
            "heap_after_warmup_and_end": self.heap,
            "fds_after_warmup": base_fds, "fds_end": end_fds,
            "fds_peak_under_load": max([f for _, f in samples] + [end_fds]),
            "snapshots_checked": checked, "integrity_check": integ[0] if integ else None,
            "failures": [f"{w}: {d}" for w, d in s.failures[:20]],
            "failure_count": len(s.failures),
        }
        print(json.dumps(summary, indent=1))
        if a.summary:
            Path(a.summary).write_text(json.dumps(summary, indent=1) + "\n")
        ok_run = not s.failures
        log("soak: " + ("PASSED" if ok_run else f"FAILED ({len(s.failures)} problems)"))
        if not ok_run:
            log(f"kept {self.tmp} (store, repositories, server.log)")
        elif not a.keep:
            subprocess.run(["rm", "-rf", str(self.tmp)])
        return 0 if ok_run else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float,
                    default=float(os.environ.get("SOAK_MINUTES", "30")))
    ap.add_argument("--watchers", type=int, default=int(os.environ.get("SOAK_WATCHERS", "1000")))
    ap.add_argument("--step-delay-ms", type=int, default=100)
    ap.add_argument("--rss-tolerance", type=float, default=0.10,
                    help="how much RSS may grow from warm-up to the end (fds: always 10%%)")
    ap.add_argument("--think", type=float, default=3.0,
                    help="a watcher waits up to this many seconds between streams")
    ap.add_argument("--read-rate", type=float, default=20.0, help="API reads per second")
    ap.add_argument("--local-repos", type=int, default=3)
    ap.add_argument("--hub-repos", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=0,
                    help="seconds of load before the baseline (default: a fifth of the run)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiplies the pauses of commits, syncs, kills and faults")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--bin", default=os.environ.get("PROJSYNC_BIN",
                                                    str(ROOT / "build" / "projsync")))
    ap.add_argument("--malloc-stats", action="store_true",
                    help="at each idle measurement, also ask the server's malloc (through gdb) "
                         "how much it has handed out")
    ap.add_argument("--summary", help="also write the summary (JSON) here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    log(f"seed {a.seed}")
    sys.exit(asyncio.run(Soak(a).run()))


if __name__ == "__main__":
    main()
