#!/usr/bin/env python3
"""
fakehub: a GitHub REST API emulator for projsync's tests, serving real git repositories.

The GitHub connector (src/source/github/) is tested against this server over real HTTP, so what
it answers must be what GitHub answers: the same paths, status codes, headers (ETag, Link,
x-ratelimit-*, retry-after, Location) and JSON shapes. tests/fakehub/test_fakehub.py checks every
JSON body against GitHub's own OpenAPI description and the recorded real responses of
@octokit/fixtures, so the emulator cannot silently drift from GitHub.

Repositories are plain git repositories on disk, read with the git CLI. OWNER/REPO maps to
REPOS_DIR/OWNER/REPO (or REPOS_DIR/OWNER/REPO.git), or to any path registered through the control
API. Served endpoints (also under /repositories/{id}/..., where GitHub's own Link and Location
headers point):

  GET /repos/{o}/{r}                          repository (301 for a renamed one)
  GET /repos/{o}/{r}/branches?per_page&page   Link pagination like GitHub's
  GET /repos/{o}/{r}/branches/{branch}
  GET /repos/{o}/{r}/commits/{ref}            JSON, or the bare SHA (application/vnd.github.sha)
  GET /repos/{o}/{r}/git/commits/{sha}
  GET /repos/{o}/{r}/git/trees/{sha}[?recursive=1]   truncated past a threshold
  GET /repos/{o}/{r}/git/blobs/{sha}          base64 in 60-character lines, or raw
  GET /repos/{o}/{r}/compare/{base}...{head}  at most 300 files, like GitHub
  GET /repos/{o}/{r}/tarball/{ref}            302 to /_codeload/... (codeload.github.com)
  GET /rate_limit

Test control (never counted, never rate limited), JSON in and out:

  GET  /_fakehub/counters      {"total", "not_modified", "bytes", "by_kind", "by_status"}
  GET  /_fakehub/log           [{"seq","method","path","kind","status","bytes","fault",...}]
  POST /_fakehub/reset         counters and log to zero (faults, limits and config stay)
  POST /_fakehub/config        any of: repos {"o/r": path}, tokens [..] | null, rate_limit
                               {"limit","remaining","reset_in"}, truncate_at N, hang_seconds S,
                               renames {"old/name": "new/name"}, private ["o/r"], per_page_max N,
                               blobs_as_json true|false (blobs in their JSON form, base64 in
                               60-column lines, even when the raw media type is asked for)
  POST /_fakehub/faults        {"kind", "nth", "fault", "times"}: the nth request of `kind` from
                               now on (and the times-1 after it) misbehaves; kind "*" = any
  DELETE /_fakehub/faults      no more faults

Faults: "500" "502" "503" (JSON error bodies), "hang" (no answer for hang_seconds, then the
connection closes), "cut" (headers announce the full length, half the body is sent, the socket
closes), "truncated_json" (200 with a well-formed length but half a JSON document), "secondary"
(403 secondary rate limit with retry-after: 1), "secondary_429" (the same as 429), "primary"
(403 primary rate limit, remaining 0), "primary_far" (the same with an x-ratelimit-reset of 10^18-1
s), "secondary_far" (403 secondary rate limit with a retry-after of 10^18-1 s).

Run: python3 tests/fakehub/server.py --port 0 --repos DIR   (prints "PORT <n>" on its first
line), or python3 -m tests.fakehub ... from the repository root.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCS = "https://docs.github.com/rest"
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", LC_ALL="C",
               GIT_LITERAL_PATHSPECS="1")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
COMPARE_FILES_MAX = 300      # GitHub: "up to 300 changed files for the entire comparison"
COMPARE_COMMITS_MAX = 250    # GitHub: without paging parameters, at most 250 commits
TREE_LIMIT = 100000          # GitHub: 100,000 entries per (recursive) tree
KINDS = ("repo", "branches", "branch", "commit", "git_commit", "tree", "blob", "compare",
         "tarball", "codeload", "rate_limit", "other")


class HttpError(Exception):
    """An answer other than 200: status, JSON body (or None), extra headers."""

    def __init__(self, status, message, headers=None, doc=DOCS, body=None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        if body is None and message is not None:
            body = {"message": message, "documentation_url": doc, "status": str(status)}
        self.body = body


def not_found(doc=DOCS):
    return HttpError(404, "Not Found", doc=doc)


def empty_repo():
    return HttpError(409, "Git Repository is empty.")


def iso(ts):
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64_lines(data):
    """Base64 the way GitHub's blobs carry it (Ruby's encode64): 60-character lines, each ending
    with a newline, the last one included."""
    enc = base64.b64encode(data).decode()
    return "".join(enc[i:i + 60] + "\n" for i in range(0, len(enc), 60))


# ------------------------------------------------------------------------------------------
# git access


class GitRepo:
    """One repository on disk. Objects are read through one long-lived `git cat-file --batch`
    (under a lock), everything else through short git commands."""

    def __init__(self, path):
        self.path = str(path)
        self.lock = threading.Lock()
        self.batch = None

    def git(self, *args, check=True):
        r = subprocess.run(["git", "-C", self.path, *args], env=GIT_ENV, capture_output=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {r.stderr.decode(errors='replace')}")
        return r.stdout if r.returncode == 0 else None

    def read_object(self, sha):
        """(type, bytes) of an object, or (None, None) when it does not exist."""
        with self.lock:
            for attempt in (0, 1):
                try:
                    if self.batch is None or self.batch.poll() is not None:
                        self.batch = subprocess.Popen(
                            ["git", "-C", self.path, "cat-file", "--batch"], env=GIT_ENV,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
                    self.batch.stdin.write(sha.encode() + b"\n")
                    self.batch.stdin.flush()
                    header = self.batch.stdout.readline().split()
                    if len(header) != 3:
                        return None, None
                    size = int(header[2])
                    data = self.batch.stdout.read(size)
                    self.batch.stdout.read(1)
                    return header[1].decode(), data
                except (BrokenPipeError, ValueError, OSError):
                    self.close()
                    if attempt:
                        raise
        return None, None

    def close(self):
        if self.batch is not None:
            try:
                self.batch.kill()
                self.batch.wait()
            except OSError:
                pass
            self.batch = None

    def default_branch(self):
        out = self.git("symbolic-ref", "--short", "HEAD", check=False)
        return out.decode().strip() if out else "main"

    def branches(self):
        """[(name, sha)] sorted by name, like GitHub's list."""
        out = self.git("for-each-ref", "--format=%(refname:lstrip=2)%00%(objectname)",
                       "refs/heads/")
        rows = []
        for line in out.decode("utf-8", "replace").splitlines():
            name, sha = line.split("\0")
            rows.append((name, sha))
        return sorted(rows, key=lambda r: r[0].encode())

    def is_empty(self):
        out = self.git("for-each-ref", "--count=1", "refs/", check=False)
        return not out

    def resolve_commit(self, ref):
        """A branch, tag, full or abbreviated SHA -> the commit SHA, or None."""
        if ref is None or ref == "" or ref.startswith("-"):
            return None
        # GitHub's qualified forms come first: heads/B names only a branch, tags/T only a tag.
        cands = [f"refs/{ref}"] if ref.startswith(("heads/", "tags/")) else []
        cands += [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        if re.fullmatch(r"[0-9a-fA-F]{7,40}", ref):
            cands.append(ref.lower())
        if ref == "HEAD":
            cands.append("HEAD")
        for c in cands:
            out = self.git("rev-parse", "--verify", "--quiet", "--end-of-options",
                           c + "^{commit}", check=False)
            if out:
                return out.decode().strip()
        return None

    def resolve_tree(self, ref):
        """A tree SHA, a commit SHA or a ref -> the tree SHA, or None."""
        if SHA_RE.match(ref or ""):
            typ, data = self.read_object(ref)
            if typ == "tree":
                return ref
            if typ == "commit":
                return parse_commit(data)["tree"]
            return None
        c = self.resolve_commit(ref)
        if c is None:
            return None
        return parse_commit(self.read_object(c)[1])["tree"]

    def commit(self, sha):
        typ, data = self.read_object(sha)
        if typ != "commit":
            return None
        info = parse_commit(data)
        info["sha"] = sha
        return info


def parse_person(value):
    m = re.match(r"^(.*) <(.*)> (\d+) ([+-]\d{4})$", value)
    if not m:
        return {"name": value, "email": "", "date": iso(0)}
    return {"name": m.group(1), "email": m.group(2), "date": iso(m.group(3))}


def parse_commit(data):
    head, _, message = data.partition(b"\n\n")
    info = {"parents": [], "message": message.decode("utf-8", "replace")}
    for line in head.decode("utf-8", "replace").split("\n"):
        if line.startswith(" "):
            continue   # continuation of a multi-line header (gpgsig)
        key, _, value = line.partition(" ")
        if key == "tree":
            info["tree"] = value
        elif key == "parent":
            info["parents"].append(value)
        elif key in ("author", "committer"):
            info[key] = parse_person(value)
    return info


def ls_tree(repo, tree_sha, recursive):
    """[(mode, type, sha, size or None, path)] in git's (and GitHub's) order: a directory just
    before its contents."""
    args = ["ls-tree", "-z", "-l", "--full-tree"]
    if recursive:
        args += ["-r", "-t"]
    out = repo.git(*args, tree_sha)
    rows = []
    for rec in out.split(b"\0"):
        if not rec:
            continue
        meta, path = rec.split(b"\t", 1)
        mode, typ, sha, size = meta.split()
        rows.append((mode.decode(), typ.decode(), sha.decode(),
                     None if size == b"-" else int(size), path.decode("utf-8", "replace")))
    return rows


def diff_files(repo, base, head, limit=COMPARE_FILES_MAX):
    """The changed files from base to head as GitHub's compare lists them: rename detection on,
    statuses added/removed/modified/renamed/changed, line counts; at most `limit` of them."""
    raw = repo.git("diff-tree", "-r", "-z", "-M", "--raw", "--no-abbrev", base, head)
    files = []
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields) - 1 and len(files) < limit:
        meta = fields[i].decode()
        i += 1
        if not meta:
            continue
        omode, nmode, osha, nsha, st = meta.lstrip(":").split()
        letter = st[0]
        prev = None
        if letter in "RC":
            prev = fields[i]
            path = fields[i + 1]
            i += 2
        else:
            path = fields[i]
            i += 1
        status = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied",
                  "T": "changed"}.get(letter, "changed")
        if letter == "M" and osha == nsha:
            status = "changed"            # only the mode moved
        files.append({"raw_path": path, "raw_prev": prev, "status": status,
                      "sha": osha if letter == "D" else nsha})
    # Line counts, only for the files listed (a 100k-file root commit must stay cheap).
    spec = []
    if i < len(fields) - 1:
        for f in files:
            spec += [f["raw_path"]] + ([f["raw_prev"]] if f["raw_prev"] else [])
    num = repo.git("diff-tree", "-r", "-z", "-M", "--numstat", base, head, "--",
                   *[p.decode("utf-8", "surrogateescape") for p in spec]) if files else b""
    counts = {}
    nf = num.split(b"\0")
    j = 0
    while j < len(nf):
        rec = nf[j]
        j += 1
        if not rec:
            continue
        add, dele, path = rec.split(b"\t", 2)
        if path == b"":          # a rename: the two paths follow
            path = nf[j + 1]
            j += 2
        counts[path] = (0 if add == b"-" else int(add), 0 if dele == b"-" else int(dele))
    for f in files:
        add, dele = counts.get(f["raw_path"], (0, 0))
        f["path"] = f.pop("raw_path").decode("utf-8", "replace")
        prev = f.pop("raw_prev")
        f["previous_filename"] = None if prev is None else prev.decode("utf-8", "replace")
        f["additions"], f["deletions"] = add, dele
    return files


# ------------------------------------------------------------------------------------------
# state shared by the handler threads


class Fault:
    def __init__(self, kind, nth, fault, times, base):
        self.kind, self.nth, self.fault, self.times, self.base = kind, nth, fault, times, base


class State:
    def __init__(self, repos_dir):
        self.lock = threading.Lock()
        self.started = int(time.time())
        self.repos_dir = repos_dir
        self.mapped = {}        # "o/r" -> path
        self.git = {}           # path -> GitRepo
        self.ids = {}           # "o/r" -> id
        self.tokens = None      # None: any token is good
        self.renames = {}       # "old/name" -> "new/name"
        self.private = set()
        self.truncate_at = TREE_LIMIT
        self.hang_seconds = 30.0
        self.per_page_max = 100
        self.blobs_as_json = False
        self.rl_limit = 5000
        self.rl_used = 0
        self.rl_reset_in = 3600
        self.rl_reset = int(time.time()) + self.rl_reset_in
        self.faults = []
        self.wake = threading.Event()   # set to end hangs early (reset, shutdown)
        self.reset_counters()

    def reset_counters(self):
        self.seq = 0
        self.log = []
        self.kind_counts = {k: 0 for k in KINDS}
        self.by_status = {}
        self.bytes = 0
        self.not_modified = 0

    # --- repositories
    def repo_id(self, full):
        with self.lock:
            if full not in self.ids:
                self.ids[full] = 1000 + len(self.ids) + 1
            return self.ids[full]

    def path_of(self, full):
        with self.lock:
            p = self.mapped.get(full.lower()) or self.mapped.get(full)
        if p:
            return p
        if self.repos_dir and "/" in full and ".." not in full:
            for cand in (os.path.join(self.repos_dir, full),
                         os.path.join(self.repos_dir, full + ".git")):
                if os.path.isdir(cand):
                    return cand
        return None

    def gitrepo(self, path):
        with self.lock:
            g = self.git.get(path)
            if g is None:
                g = self.git[path] = GitRepo(path)
            return g

    def full_name_by_id(self, rid):
        with self.lock:
            for full, i in self.ids.items():
                if i == rid:
                    return full
        return None

    # --- rate limit
    def rate_window(self):
        now = time.time()
        if now >= self.rl_reset:
            self.rl_used = 0
            self.rl_reset = int(now) + self.rl_reset_in
        return self.rl_limit, max(0, self.rl_limit - self.rl_used), self.rl_used, self.rl_reset


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


# ------------------------------------------------------------------------------------------
# the handler


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""

    def log_message(self, *a):
        pass

    @property
    def st(self):
        return self.server.state

    def base_url(self):
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        return f"http://{host}"

    # ---------------------------------------------------------------- dispatch
    def do_GET(self):
        self.handle_any("GET")

    def do_HEAD(self):
        self.handle_any("HEAD")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def handle_any(self, method):
        raw_path, _, query = self.path.partition("?")
        self.query = urllib.parse.parse_qs(query)
        self.fault_name = None
        if raw_path.startswith("/_fakehub/"):
            return self.control(method, raw_path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.kind = "other"
        self.route = None
        try:
            self.kind, self.route = self.classify(raw_path)
        except HttpError:
            pass
        with self.st.lock:
            self.st.kind_counts[self.kind] = self.st.kind_counts.get(self.kind, 0) + 1
            self.st.seq += 1
            self.seq = self.st.seq
            n = self.st.kind_counts[self.kind]
            total = sum(self.st.kind_counts.values())
            fault = None
            for f in self.st.faults:
                count = total if f.kind == "*" else (n if f.kind == self.kind else None)
                if count is not None and f.nth <= count - f.base < f.nth + f.times:
                    fault = f.fault
                    break
        self.fault_name = fault
        try:
            if method not in ("GET", "HEAD"):
                raise HttpError(404, "Not Found")
            if fault:
                self.apply_fault(fault)
                return
            self.check_auth()
            if self.kind == "codeload":
                return self.serve_codeload()
            if self.kind != "rate_limit":
                self.take_rate()
            if self.route is None:
                raise not_found()
            handler, args = self.route
            handler(*args)
        except HttpError as e:
            self.send_json(e.status, e.body, e.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a bug of the emulator: say so loudly, as a 500
            import traceback
            traceback.print_exc()
            try:
                self.send_json(500, {"message": f"fakehub internal error: {e}"})
            except OSError:
                pass

    def classify(self, path):
        """(kind, (handler, args)) for an API path. Paths are matched on their raw (encoded)
        form, so an encoded slash in a branch name stays part of the name."""
        segs = path.split("/")[1:]
        if segs == ["rate_limit"]:
            return "rate_limit", (self.get_rate_limit, ())
        if segs[:1] == ["_codeload"]:
            return "codeload", None
        if len(segs) >= 2 and segs[0] == "repositories":
            full = self.st.full_name_by_id(int(segs[1])) if segs[1].isdigit() else None
            rest = segs[2:]
            if full is None:
                return self.kind_of(rest), None
        elif len(segs) >= 3 and segs[0] == "repos":
            full = urllib.parse.unquote(segs[1]) + "/" + urllib.parse.unquote(segs[2])
            rest = segs[3:]
        else:
            return "other", None
        kind = self.kind_of(rest)
        return kind, (self.repo_endpoint, (full, rest, path))

    @staticmethod
    def kind_of(rest):
        if not rest or rest == [""]:
            return "repo"
        if rest[0] == "branches":
            return "branches" if len(rest) == 1 else "branch"
        if rest[0] == "commits" and len(rest) >= 2:
            return "commit"
        if rest[0] == "git" and len(rest) >= 3:
            return {"commits": "git_commit", "trees": "tree", "blobs": "blob"}.get(rest[1], "other")
        if rest[0] == "compare":
            return "compare"
        if rest[0] == "tarball":
            return "tarball"
        return "other"

    # ---------------------------------------------------------------- auth and limits
    def token(self):
        auth = self.headers.get("Authorization") or ""
        parts = auth.split(None, 1)
        if len(parts) == 2 and parts[0].lower() in ("bearer", "token"):
            return parts[1].strip()
        return None if not auth else auth

    def check_auth(self):
        tok = self.token()
        if tok is not None and self.st.tokens is not None and tok not in self.st.tokens:
            raise HttpError(401, "Bad credentials")

    def take_rate(self):
        """Counts this request against the primary limit, or refuses it when spent. A request
        that ends up a 304 gives its unit back (GitHub does not count those)."""
        with self.st.lock:
            limit, remaining, used, reset = self.st.rate_window()
            if remaining <= 0:
                who = "user ID 1" if self.token() else self.client_address[0]
                raise HttpError(403, f"API rate limit exceeded for {who}. (But here's the good "
                                "news: Authenticated requests get a higher rate limit. Check out "
                                "the documentation for more details.)",
                                doc="https://docs.github.com/rest/overview/rate-limits-for-the-"
                                "rest-api#about-primary-rate-limits")
            self.st.rl_used += 1
            self.counted = True

    def give_back_rate(self):
        with self.st.lock:
            if getattr(self, "counted", False) and self.st.rl_used > 0:
                self.st.rl_used -= 1
                self.counted = False

    def rate_headers(self):
        with self.st.lock:
            limit, remaining, used, reset = self.st.rate_window()
        return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(remaining),
                "x-ratelimit-used": str(used), "x-ratelimit-reset": str(reset),
                "x-ratelimit-resource": "core"}

    # ---------------------------------------------------------------- faults
    def apply_fault(self, fault):
        if fault in ("500", "502", "503"):
            msg = {"500": "Server Error", "502": "Server Error",
                   "503": "Service Unavailable"}[fault]
            return self.send_json(int(fault), {"message": msg})
        if fault == "hang":
            self.log_request_done(0, 0)       # status 0: no answer
            self.st.wake.wait(self.st.hang_seconds)
            self.close_connection = True
            return
        if fault in ("secondary", "secondary_429", "secondary_far"):
            return self.send_json(
                429 if fault == "secondary_429" else 403,
                {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                            "before you try again. If you reach out to GitHub Support for help, "
                            "please include the request ID 0000:0000:0000000:0000000:00000000.",
                 "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/"
                                      "overview/rate-limits-for-the-rest-api#about-secondary-"
                                      "rate-limits",
                 "status": "429" if fault == "secondary_429" else "403"},
                {"retry-after": "1" if fault != "secondary_far" else "9" * 18})
        if fault in ("primary", "primary_far"):
            with self.st.lock:
                self.st.rl_used = self.st.rl_limit
            far = {"x-ratelimit-reset": "9" * 18} if fault == "primary_far" else None
            return self.send_json(403, {"message": "API rate limit exceeded for user ID 1.",
                                        "documentation_url": DOCS, "status": "403"}, far)
        # "cut" and "truncated_json" damage a real answer: produce it, then damage it.
        self.damage = fault
        self.check_auth()
        if self.kind not in ("codeload", "rate_limit"):
            self.take_rate()
        if self.kind == "codeload":
            return self.serve_codeload()
        if self.route is None:
            raise not_found()
        handler, args = self.route
        handler(*args)

    # ---------------------------------------------------------------- responses
    def log_request_done(self, status, nbytes, extra=None):
        with self.st.lock:
            self.st.by_status[str(status)] = self.st.by_status.get(str(status), 0) + 1
            self.st.bytes += nbytes
            if status == 304:
                self.st.not_modified += 1
            entry = {"seq": self.seq, "method": self.command, "path": self.path,
                     "kind": self.kind, "status": status, "bytes": nbytes,
                     "fault": self.fault_name,
                     "accept": self.headers.get("Accept"),
                     "if_none_match": self.headers.get("If-None-Match"),
                     "authorization": "yes" if self.headers.get("Authorization") else None,
                     "user_agent": self.headers.get("User-Agent"),
                     "api_version": self.headers.get("X-GitHub-Api-Version"),
                     "time": time.time()}
            if extra:
                entry.update(extra)
            self.st.log.append(entry)
        return entry

    def send_body(self, status, body, ctype, headers=None, etag=None):
        """Sends one answer (with ETag/If-None-Match handling and the rate-limit headers)."""
        hdrs = {}
        if self.kind not in ("codeload",):
            hdrs.update(self.rate_headers())
        if etag:
            inm = self.headers.get("If-None-Match")
            if status == 200 and inm and etag_matches(inm, etag):
                self.give_back_rate()
                hdrs = self.rate_headers()
                hdrs["ETag"] = etag
                self.log_request_done(304, 0)   # logged first: a client may ask at once
                self.send_response(304)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            hdrs["ETag"] = etag
        hdrs.update(headers or {})
        damage = getattr(self, "damage", None) if status == 200 else None
        full_len = len(body)
        if damage == "truncated_json":
            body = body[:max(1, len(body) // 2)]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(full_len if damage == "cut" else len(body)))
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for k, v in hdrs.items():
            self.send_header(k, v)
        if damage == "cut" or status >= 500:
            self.send_header("Connection", "close")
            self.close_connection = True
        part = b"" if self.command == "HEAD" else body[:len(body) // 2] if damage == "cut" \
            else body
        # Logged before the body goes out: a client that has its answer may read the log at once.
        self.log_request_done(status, len(part))
        self.end_headers()
        try:
            self.wfile.write(part)
            self.wfile.flush()
        except OSError:
            pass
        if damage == "cut":
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True

    def send_json(self, status, obj, headers=None, etag=False):
        body = b"" if obj is None else json.dumps(obj, ensure_ascii=False).encode()
        tag = None
        if etag is True:
            tag = 'W/"' + hashlib.sha1(body + (self.headers.get("Accept") or "").encode()
                                       ).hexdigest() + '"'
        elif etag:
            tag = etag
        self.send_body(status, body, "application/json; charset=utf-8", headers, tag)

    # ---------------------------------------------------------------- control API
    def control(self, method, path):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except ValueError:
            req = None
        st = self.st
        out = {"ok": True}
        status = 200
        if path == "/_fakehub/counters" and method == "GET":
            with st.lock:
                out = {"total": sum(st.kind_counts.values()), "not_modified": st.not_modified,
                       "bytes": st.bytes, "by_kind": dict(st.kind_counts),
                       "by_status": dict(st.by_status),
                       "rate": {"limit": st.rl_limit, "used": st.rl_used}}
        elif path == "/_fakehub/log" and method == "GET":
            with st.lock:
                out = list(st.log)
        elif path == "/_fakehub/reset" and method == "POST":
            with st.lock:
                st.reset_counters()
                for f in st.faults:
                    f.base = 0
        elif path == "/_fakehub/config" and method == "POST" and isinstance(req, dict):
            with st.lock:
                for full, p in (req.get("repos") or {}).items():
                    st.mapped[full] = p
                    st.mapped[full.lower()] = p
                if "tokens" in req:
                    st.tokens = None if req["tokens"] is None else set(req["tokens"])
                for old, new in (req.get("renames") or {}).items():
                    st.renames[old.lower()] = new
                if "private" in req:
                    st.private = {x.lower() for x in req["private"]}
                if "truncate_at" in req:
                    st.truncate_at = int(req["truncate_at"])
                if "hang_seconds" in req:
                    st.hang_seconds = float(req["hang_seconds"])
                if "per_page_max" in req:
                    st.per_page_max = int(req["per_page_max"])
                if "blobs_as_json" in req:
                    st.blobs_as_json = bool(req["blobs_as_json"])
                rl = req.get("rate_limit")
                if rl:
                    if "limit" in rl:
                        st.rl_limit = int(rl["limit"])
                    if "reset_in" in rl:
                        st.rl_reset_in = float(rl["reset_in"])
                    st.rl_reset = int(time.time() + st.rl_reset_in + 0.999)
                    st.rl_used = st.rl_limit - int(rl.get("remaining", st.rl_limit))
        elif path == "/_fakehub/faults" and method == "POST" and isinstance(req, dict):
            with st.lock:
                kind = req.get("kind", "*")
                base = (sum(st.kind_counts.values()) if kind == "*"
                        else st.kind_counts.get(kind, 0))
                st.faults.append(Fault(kind, int(req.get("nth", 1)), str(req["fault"]),
                                       int(req.get("times", 1)), base))
        elif path == "/_fakehub/faults" and method == "DELETE":
            with st.lock:
                st.faults = []
            st.wake.set()
            st.wake = threading.Event()
        else:
            status, out = 404, {"message": "Not Found"}
        body = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # ---------------------------------------------------------------- API endpoints
    def api(self, full):
        return f"{self.base_url()}/repos/{full}"

    def html(self, full):
        return f"https://github.com/{full}"

    def open_repo(self, full):
        """(canonical full name, GitRepo) or an HttpError (404, or 301 for a renamed one)."""
        st = self.st
        with st.lock:
            new = st.renames.get(full.lower())
        if new is not None:
            rid = st.repo_id(new)
            raise RedirectTo(rid)
        path = st.path_of(full)
        if path is None:
            raise not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
        with st.lock:
            private = full.lower() in st.private
        if private and self.token() is None:
            raise not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
        st.repo_id(full)
        return full, st.gitrepo(path)

    def repo_endpoint(self, full, rest, raw_path):
        try:
            full, repo = self.open_repo(full)
        except RedirectTo as r:
            # GitHub answers a renamed repository with a 301 to /repositories/{id}/...
            tail = raw_path.split("/", 4)[4] if raw_path.count("/") >= 4 else ""
            q = self.path.partition("?")[2]
            loc = f"{self.base_url()}/repositories/{r.rid}" + (f"/{tail}" if tail else "") + \
                (f"?{q}" if q else "")
            raise HttpError(301, None, {"Location": loc},
                            body={"message": "Moved Permanently", "url": loc,
                                  "documentation_url": "https://docs.github.com/v3/#http-"
                                                       "redirects"})
        self.full = full
        self.repo = repo
        k = self.kind
        if k == "repo":
            return self.get_repo()
        if k == "branches":
            return self.get_branches()
        if k == "branch":
            return self.get_branch(urllib.parse.unquote("/".join(rest[1:])))
        if k == "commit":
            return self.get_commit(urllib.parse.unquote("/".join(rest[1:])))
        if k == "git_commit":
            return self.get_git_commit(urllib.parse.unquote("/".join(rest[2:])))
        if k == "tree":
            return self.get_tree(urllib.parse.unquote("/".join(rest[2:])))
        if k == "blob":
            return self.get_blob(urllib.parse.unquote("/".join(rest[2:])))
        if k == "compare":
            return self.get_compare(urllib.parse.unquote("/".join(rest[1:])))
        if k == "tarball":
            return self.get_tarball(urllib.parse.unquote("/".join(rest[1:])))
        raise not_found()

    # --- objects in GitHub's shapes
    def user(self, login="octocat", uid=1):
        u = f"https://api.github.com/users/{login}"
        return {"login": login, "id": uid, "node_id": "MDQ6VXNlcjE=",
                "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
                "gravatar_id": "", "url": u, "html_url": f"https://github.com/{login}",
                "followers_url": u + "/followers",
                "following_url": u + "/following{/other_user}",
                "gists_url": u + "/gists{/gist_id}", "starred_url": u + "/starred{/owner}{/repo}",
                "subscriptions_url": u + "/subscriptions", "organizations_url": u + "/orgs",
                "repos_url": u + "/repos", "events_url": u + "/events{/privacy}",
                "received_events_url": u + "/received_events", "type": "User",
                "site_admin": False}

    def commit_obj(self, info, files=None):
        full, sha = self.full, info["sha"]
        api = self.api(full)
        obj = {
            "url": f"{api}/commits/{sha}", "sha": sha,
            "node_id": "C_" + base64.b64encode(sha.encode()[:12]).decode(),
            "html_url": f"{self.html(full)}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{sha}",
                "author": info.get("author"), "committer": info.get("committer"),
                "message": info["message"].rstrip("\n"), "comment_count": 0,
                "tree": {"sha": info["tree"], "url": f"{api}/git/trees/{info['tree']}"},
                "verification": {"verified": False, "reason": "unsigned", "signature": None,
                                 "payload": None, "verified_at": None},
            },
            "author": None, "committer": None,
            "parents": [{"sha": p, "url": f"{api}/commits/{p}",
                         "html_url": f"{self.html(full)}/commit/{p}"} for p in info["parents"]],
        }
        if files is not None:
            adds = sum(f["additions"] for f in files)
            dels = sum(f["deletions"] for f in files)
            obj["stats"] = {"total": adds + dels, "additions": adds, "deletions": dels}
            obj["files"] = [self.diff_entry(f, sha) for f in files]
        return obj

    def diff_entry(self, f, ref):
        full = self.full
        q = urllib.parse.quote(f["path"])
        e = {"sha": f["sha"], "filename": f["path"], "status": f["status"],
             "additions": f["additions"], "deletions": f["deletions"],
             "changes": f["additions"] + f["deletions"],
             "blob_url": f"{self.html(full)}/blob/{ref}/{q}",
             "raw_url": f"{self.html(full)}/raw/{ref}/{q}",
             "contents_url": f"{self.api(full)}/contents/{q}?ref={ref}"}
        if f["previous_filename"] is not None:
            e["previous_filename"] = f["previous_filename"]
        return e

    def require_not_empty(self):
        if self.repo.is_empty():
            raise empty_repo()

    # --- endpoints
    def get_repo(self):
        full, repo = self.full, self.repo
        owner, name = full.split("/", 1)
        api = self.api(full)
        rid = self.st.repo_id(full)
        # Stable while nothing changes, like GitHub's (so its ETag is too): the newest commit
        # date of the branches stands for pushed_at.
        newest = repo.git("for-each-ref", "--sort=-committerdate", "--count=1",
                          "--format=%(committerdate:unix)", "refs/heads/", check=False)
        now = iso(int(newest.decode().strip() or 0) if newest else self.st.started)
        with self.st.lock:
            private = full.lower() in self.st.private
        o = {"id": rid, "node_id": "R_kgDO" + str(rid), "name": name, "full_name": full,
             "private": private, "owner": self.user(owner, 1),
             "html_url": self.html(full), "description": None, "fork": False, "url": api}
        for key, suffix in [
                ("archive_url", "/{archive_format}{/ref}"), ("assignees_url", "/assignees{/user}"),
                ("blobs_url", "/git/blobs{/sha}"), ("branches_url", "/branches{/branch}"),
                ("collaborators_url", "/collaborators{/collaborator}"),
                ("comments_url", "/comments{/number}"), ("commits_url", "/commits{/sha}"),
                ("compare_url", "/compare/{base}...{head}"), ("contents_url", "/contents/{+path}"),
                ("contributors_url", "/contributors"), ("deployments_url", "/deployments"),
                ("downloads_url", "/downloads"), ("events_url", "/events"),
                ("forks_url", "/forks"), ("git_commits_url", "/git/commits{/sha}"),
                ("git_refs_url", "/git/refs{/sha}"), ("git_tags_url", "/git/tags{/sha}"),
                ("hooks_url", "/hooks"), ("issue_comment_url", "/issues/comments{/number}"),
                ("issue_events_url", "/issues/events{/number}"),
                ("issues_url", "/issues{/number}"), ("keys_url", "/keys{/key_id}"),
                ("labels_url", "/labels{/name}"), ("languages_url", "/languages"),
                ("merges_url", "/merges"), ("milestones_url", "/milestones{/number}"),
                ("notifications_url", "/notifications{?since,all,participating}"),
                ("pulls_url", "/pulls{/number}"), ("releases_url", "/releases{/id}"),
                ("stargazers_url", "/stargazers"), ("statuses_url", "/statuses/{sha}"),
                ("subscribers_url", "/subscribers"), ("subscription_url", "/subscription"),
                ("tags_url", "/tags"), ("teams_url", "/teams"), ("trees_url", "/git/trees{/sha}")]:
            o[key] = api + suffix
        o.update({
            "created_at": now, "updated_at": now, "pushed_at": now,
            "git_url": f"git://github.com/{full}.git", "ssh_url": f"git@github.com:{full}.git",
            "clone_url": f"https://github.com/{full}.git", "svn_url": self.html(full),
            "homepage": None, "size": 0, "stargazers_count": 0, "watchers_count": 0,
            "language": None, "has_issues": True, "has_projects": True, "has_downloads": True,
            "has_wiki": True, "has_pages": False, "has_discussions": False, "forks_count": 0,
            "mirror_url": None, "archived": False, "disabled": False, "open_issues_count": 0,
            "license": None, "allow_forking": True, "is_template": False,
            "web_commit_signoff_required": False, "topics": [], "visibility":
            "private" if private else "public", "forks": 0, "open_issues": 0, "watchers": 0,
            "default_branch": repo.default_branch(), "temp_clone_token": None,
            "network_count": 0, "subscribers_count": 0,
        })
        self.send_json(200, o, etag=True)

    def get_branches(self):
        try:
            per_page = int((self.query.get("per_page") or ["30"])[0])
            page = int((self.query.get("page") or ["1"])[0])
        except ValueError:
            per_page, page = 30, 1
        per_page = max(1, min(per_page, self.st.per_page_max))
        page = max(1, page)
        rows = self.repo.branches()
        last = max(1, (len(rows) + per_page - 1) // per_page)
        chunk = rows[(page - 1) * per_page: page * per_page]
        api = self.api(self.full)
        out = [{"name": n, "commit": {"sha": s, "url": f"{api}/commits/{s}"}, "protected": False}
               for n, s in chunk]
        # Like GitHub: links point at /repositories/{id}, keep every other query parameter and
        # come in the order next, last (first page); prev, next, last, first; prev, first.
        rid = self.st.repo_id(self.full)
        params = [(k, v) for k, vs in self.query.items() for v in vs if k not in ("page",)]
        if not any(k == "per_page" for k, _ in params) and per_page != 30:
            params.append(("per_page", str(per_page)))

        def link(p):
            q = urllib.parse.urlencode(params + [("page", str(p))])
            return f"<{self.base_url()}/repositories/{rid}/branches?{q}>"
        links = []
        if page > 1:
            links.append(f'{link(min(page - 1, last))}; rel="prev"')
        if page < last:
            links.append(f'{link(page + 1)}; rel="next"')
            links.append(f'{link(last)}; rel="last"')
        if page > 1:
            links.append(f'{link(1)}; rel="first"')
        headers = {"Link": ", ".join(links)} if links else {}
        self.send_json(200, out, headers, etag=True)

    def get_branch(self, name):
        sha = None
        for n, s in self.repo.branches():
            if n == name:
                sha = s
        if sha is None:
            raise HttpError(404, "Branch not found",
                            doc="https://docs.github.com/rest/branches/branches#get-a-branch")
        info = self.repo.commit(sha)
        api = self.api(self.full)
        q = urllib.parse.quote(name, safe="")
        out = {"name": name, "commit": self.commit_obj(info),
               "_links": {"self": f"{api}/branches/{q}",
                          "html": f"{self.html(self.full)}/tree/{name}"},
               "protected": False, "protection": {"enabled": False, "required_status_checks": {
                   "enforcement_level": "off", "contexts": [], "checks": []}},
               "protection_url": f"{api}/branches/{q}/protection"}
        self.send_json(200, out, etag=True)

    def get_commit(self, ref):
        self.require_not_empty()
        sha = self.repo.resolve_commit(ref)
        if sha is None:
            raise HttpError(422, f"No commit found for SHA: {ref}",
                            doc="https://docs.github.com/rest/commits/commits#get-a-commit")
        accept = (self.headers.get("Accept") or "").lower()
        if "application/vnd.github.sha" in accept:
            # GitHub: the local SHA may be given as the ETag to learn whether a ref moved.
            return self.send_body(200, sha.encode(), "application/vnd.github.sha; charset=utf-8",
                                  etag=f'"{sha}"')
        info = self.repo.commit(sha)
        base = info["parents"][0] if info["parents"] else EMPTY_TREE
        files = diff_files(self.repo, base, sha)
        headers = {}
        self.send_json(200, self.commit_obj(info, files), headers,
                       etag='W/"' + hashlib.sha1(("json:" + sha).encode()).hexdigest() + '"')

    def get_git_commit(self, sha):
        self.require_not_empty()
        info = self.repo.commit(sha) if SHA_RE.match(sha) else None
        if info is None:
            raise not_found("https://docs.github.com/rest/git/commits#get-a-commit-object")
        api = self.api(self.full)
        out = {"sha": sha, "node_id": "C_" + sha[:12], "url": f"{api}/git/commits/{sha}",
               "html_url": f"{self.html(self.full)}/commit/{sha}",
               "author": info["author"], "committer": info["committer"],
               "tree": {"sha": info["tree"], "url": f"{api}/git/trees/{info['tree']}"},
               "message": info["message"],
               "parents": [{"sha": p, "url": f"{api}/git/commits/{p}",
                            "html_url": f"{self.html(self.full)}/commit/{p}"}
                           for p in info["parents"]],
               "verification": {"verified": False, "reason": "unsigned", "signature": None,
                                "payload": None, "verified_at": None}}
        self.send_json(200, out, etag=True)

    def get_tree(self, ref):
        self.require_not_empty()
        tree = self.repo.resolve_tree(ref)
        if tree is None:
            raise not_found("https://docs.github.com/rest/git/trees#get-a-tree")
        recursive = bool((self.query.get("recursive") or [""])[0])
        rows = ls_tree(self.repo, tree, recursive)
        truncated = len(rows) > self.st.truncate_at
        if truncated:
            rows = rows[:self.st.truncate_at]
        api = self.api(self.full)
        entries = []
        for mode, typ, sha, size, path in rows:
            e = {"path": path, "mode": mode, "type": typ, "sha": sha}
            if typ == "blob":
                e["size"] = size
                e["url"] = f"{api}/git/blobs/{sha}"
            elif typ == "tree":
                e["url"] = f"{api}/git/trees/{sha}"
            entries.append(e)
        out = {"sha": tree, "url": f"{api}/git/trees/{tree}", "tree": entries,
               "truncated": truncated}
        self.send_json(200, out, etag='W/"' + hashlib.sha1(
            f"tree:{tree}:{recursive}:{self.st.truncate_at}".encode()).hexdigest() + '"')

    def get_blob(self, sha):
        self.require_not_empty()
        if not SHA_RE.match(sha):
            raise HttpError(422, "The sha parameter must be exactly 40 characters and contain "
                            "only [0-9a-f].")
        typ, data = self.repo.read_object(sha)
        if typ != "blob":
            raise not_found("https://docs.github.com/rest/git/blobs#get-a-blob")
        etag = f'"{sha}"'
        accept = (self.headers.get("Accept") or "").lower()
        if "application/vnd.github.raw" in accept and not self.st.blobs_as_json:
            return self.send_body(200, data, "application/vnd.github.raw", etag=etag)
        api = self.api(self.full)
        out = {"sha": sha, "node_id": "B_" + sha[:12], "size": len(data),
               "url": f"{api}/git/blobs/{sha}", "content": b64_lines(data),
               "encoding": "base64"}
        self.send_json(200, out, etag=etag)

    def get_compare(self, basehead):
        self.require_not_empty()
        if "..." in basehead:
            base_ref, head_ref = basehead.split("...", 1)
        elif ".." in basehead:
            base_ref, head_ref = basehead.split("..", 1)
        else:
            raise not_found("https://docs.github.com/rest/commits/commits#compare-two-commits")
        base = self.repo.resolve_commit(base_ref)
        head = self.repo.resolve_commit(head_ref)
        if base is None or head is None:
            raise not_found("https://docs.github.com/rest/commits/commits#compare-two-commits")
        mb = self.repo.git("merge-base", base, head, check=False)
        if not mb:
            raise HttpError(404, f"No common ancestor between {base_ref} and {head_ref}.")
        mb = mb.decode().split()[0]
        ahead = int(self.repo.git("rev-list", "--count", f"{base}..{head}").strip())
        behind = int(self.repo.git("rev-list", "--count", f"{head}..{base}").strip())
        status = ("identical" if ahead == 0 and behind == 0 else "ahead" if behind == 0
                  else "behind" if ahead == 0 else "diverged")
        shas = self.repo.git("rev-list", "--reverse", f"{base}..{head}").decode().split()
        shas = shas[-COMPARE_COMMITS_MAX:]
        files = diff_files(self.repo, mb, head)
        api = self.api(self.full)
        html = self.html(self.full)
        out = {"url": f"{api}/compare/{basehead}", "html_url": f"{html}/compare/{basehead}",
               "permalink_url": f"{html}/compare/{self.full.split('/')[0]}:{base[:7]}..."
                                f"{self.full.split('/')[0]}:{head[:7]}",
               "diff_url": f"{html}/compare/{basehead}.diff",
               "patch_url": f"{html}/compare/{basehead}.patch",
               "base_commit": self.commit_obj(self.repo.commit(base)),
               "merge_base_commit": self.commit_obj(self.repo.commit(mb)),
               "status": status, "ahead_by": ahead, "behind_by": behind,
               "total_commits": ahead,
               "commits": [self.commit_obj(self.repo.commit(s)) for s in shas],
               "files": [self.diff_entry(f, head) for f in files]}
        self.send_json(200, out, etag='W/"' + hashlib.sha1(
            f"compare:{base}:{head}".encode()).hexdigest() + '"')

    def get_tarball(self, ref):
        self.require_not_empty()
        sha = self.repo.resolve_commit(ref) if ref else self.repo.resolve_commit("HEAD")
        if sha is None:
            raise not_found("https://docs.github.com/rest/repos/contents#download-a-repository-"
                            "archive-tar")
        loc = (f"{self.base_url()}/_codeload/{self.full}/legacy.tar.gz/"
               f"{urllib.parse.quote(ref or sha, safe='')}")
        self.send_body(302, b"", "text/html;charset=utf-8", {"Location": loc})

    def serve_codeload(self):
        # /_codeload/{o}/{r}/legacy.tar.gz/{ref}: codeload.github.com serves the archive with a
        # top folder OWNER-REPO-SHORTSHA/, honouring export-ignore/export-subst like GitHub.
        parts = self.path.partition("?")[0].split("/")
        if len(parts) < 6 or parts[4] != "legacy.tar.gz":
            raise not_found()
        full = urllib.parse.unquote(parts[2]) + "/" + urllib.parse.unquote(parts[3])
        ref = urllib.parse.unquote("/".join(parts[5:]))
        path = self.st.path_of(full)
        if path is None:
            raise not_found()
        self.full = full
        repo = self.st.gitrepo(path)
        sha = repo.resolve_commit(ref)
        if sha is None:
            raise not_found()
        prefix = f"{full.replace('/', '-')}-{sha[:7]}/"
        # codeload streams: chunked, no length known in advance, bytes as git makes them.
        damage = getattr(self, "damage", None)
        proc = subprocess.Popen(["git", "-C", repo.path, "archive", "--format=tar.gz",
                                 f"--prefix={prefix}", sha], env=GIT_ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        data = proc.stdout.read1(65536)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-gzip")
        self.send_header("Content-Disposition", f"attachment; filename={prefix[:-1]}.tar.gz")
        self.send_header("ETag", f'"{sha}"')
        self.send_header("Transfer-Encoding", "chunked")
        if damage:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            if damage:
                # Read whole so that "cut" and "truncated_json" can stop at half of it.
                body = data + proc.stdout.read()
                stop = len(body) // 2
                self.log_request_done(200, stop)
                self.wfile.write(b"%x\r\n%s\r\n" % (stop, body[:stop]))
                self.wfile.flush()
                if damage == "cut":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                # "truncated_json" here: a well-formed HTTP answer carrying half a gzip stream.
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            entry = self.log_request_done(200, 0)
            while data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                with self.st.lock:
                    entry["bytes"] += len(data)
                    self.st.bytes += len(data)
                data = proc.stdout.read1(65536)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        finally:
            proc.stdout.close()
            proc.wait()

    def get_rate_limit(self):
        with self.st.lock:
            limit, remaining, used, reset = self.st.rate_window()
        core = {"limit": limit, "remaining": remaining, "reset": reset, "used": used,
                "resource": "core"}
        other = {"limit": 30, "remaining": 30, "reset": int(time.time()) + 60, "used": 0}
        out = {"resources": {"core": core, "search": dict(other, resource="search"),
                             "graphql": dict(other, limit=5000, remaining=5000,
                                             resource="graphql")},
               "rate": core}
        self.send_json(200, out)


class RedirectTo(Exception):
    def __init__(self, rid):
        super().__init__(rid)
        self.rid = rid


def etag_matches(inm, etag):
    def norm(t):
        t = t.strip()
        if t.startswith("W/"):
            t = t[2:]
        return t.strip('"')
    want = norm(etag)
    return any(norm(t) == want or t.strip() == "*" for t in inm.split(","))


def serve(port=0, repos_dir=None, host="127.0.0.1"):
    """Starts the emulator in this process (a daemon thread) and returns the server."""
    srv = Server((host, port), Handler)
    srv.state = State(repos_dir)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--repos", default=None, help="directory holding OWNER/REPO repositories")
    ap.add_argument("--tokens", default=None,
                    help="comma-separated accepted tokens (default: any token)")
    args = ap.parse_args(argv)
    srv = Server((args.host, args.port), Handler)
    srv.state = State(args.repos)
    if args.tokens is not None:
        srv.state.tokens = set(t for t in args.tokens.split(",") if t)
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
