"""
The web page in a real browser: each test starts the real `projsync serve` (free port, the
test's own store, real git repositories) and runs one flow of tests/browser/ with node and
playwright-core driving Debian's chromium (/usr/bin/chromium; scripts/install-deps --test
installs it, scripts/install-test-tools installs playwright-core). The flows fail on any console
error and save screenshots of each page under $SCREENSHOT_DIR (the Makefile sets it; default
build/screenshots). Syncs are slowed with PROJSYNC_TEST_STEP_DELAY_MS so their phases can be
watched.

test_web_assets needs no browser: it checks how the page's files are served.
"""
import json
import os
import shutil
import subprocess

import pytest

from conftest import GIT_ENV, ROOT, wait_for
from server_util import Server, wait_status

# One browser at a time: under pytest-xdist (make test) the browser tests share a process, so two
# chromiums never compete for the two cores while a page waits on its 15 s budget.
pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
BROWSER_DIR = ROOT / "tests" / "browser"
SHOTS = os.environ.get("SCREENSHOT_DIR") or str(ROOT / "build" / "screenshots")
STEP_DELAY_MS = "300"


def need_browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM} "
                    "(scripts/install-deps --test installs it)")
    assert NODE, "node is not installed (scripts/install-deps --test installs nodejs)"
    assert (ROOT / "tests" / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core is missing: run scripts/install-test-tools"


def run_flow(name, srv, **cfg):
    cfg.update(base_url=srv.base, git_env=GIT_ENV)
    env = dict(os.environ, BROWSER_TEST=json.dumps(cfg), SCREENSHOT_DIR=SHOTS,
               CHROMIUM=CHROMIUM)
    r = subprocess.run([NODE, str(BROWSER_DIR / name)], cwd=ROOT / "tests", env=env,
                       capture_output=True, text=True, timeout=170)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{name} failed:\n{out}\n--- server stderr (tail) ---\n" \
                              f"{srv.stderr()[-4000:]}"
    print(out)


@pytest.fixture
def serve(ps):
    servers = []

    def start(delay=STEP_DELAY_MS, env=None):
        srv = Server(ps, "--quiet", env={"PROJSYNC_TEST_STEP_DELAY_MS": delay, **(env or {})})
        servers.append(srv)
        return srv
    yield start
    for s in servers:
        s.stop()


def small_repo(make_repo):
    """main: 3 files; feature: 3 more (a path full of markup characters, a binary file)."""
    repo = make_repo("repo")
    repo.write("README.md", "# demo\n\nA small repository.\n")
    repo.write("src/app.c", "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
    repo.write("docs/guide.md", "Guide\n" + "line\n" * 50)
    main = repo.commit("main")
    repo.switch("feature", create=True)
    repo.write('weird <b>&"name".txt', "<b>not bold</b> & <script>alert(1)</script>\n")
    repo.write("assets/logo.bin", bytes(range(256)) * 4)
    repo.write("src/new.c", "int x;\n")
    repo.commit("feature")
    repo.switch("main")
    return repo, main


def test_web_assets(serve):
    """Every file of web/ is served byte for byte with its type, an ETag and no-cache; the
    page's addresses get index.html; the API, /healthz, /metrics and /openapi.json are not
    shadowed."""
    srv = serve("0")
    web = ROOT / "web"
    index = (web / "index.html").read_bytes()
    for path in ("/", "/projects", "/projects/demo", "/projects/a.b/syncs/3?dir=x/"):
        st, h, body = srv.get(path, raw=True)
        assert st == 200 and body == index, path
        assert h["content-type"] == "text/html; charset=utf-8"
        assert h["cache-control"] == "no-cache" and h["etag"].startswith('"')
        assert "script-src 'self'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
             ".svg": "image/svg+xml"}
    files = sorted(p for p in web.iterdir() if p.is_file())
    assert len(files) >= 10
    etags = set()
    for f in files:
        st, h, body = srv.get(f"/assets/{f.name}", raw=True)
        assert st == 200 and body == f.read_bytes(), f.name
        assert h["content-type"].startswith(types[f.suffix]), (f.name, h["content-type"])
        etags.add(h["etag"])
        st, h2, body = srv.get(f"/assets/{f.name}", headers={"If-None-Match": h["etag"]},
                               raw=True)
        assert st == 304 and body == b"" and h2["etag"] == h["etag"], f.name
        st, _, body = srv.get(f"/assets/{f.name}", headers={"If-None-Match": '"other"'},
                              raw=True)
        assert st == 200 and body == f.read_bytes()
    assert len(etags) == len(files)
    # The viewers' libraries: the Debian packages' files, byte for byte (meson.build).
    for name, debian in (("highlight.min.js", "/usr/share/javascript/highlight.js/highlight.min.js"),
                         ("marked.umd.min.js", "/usr/share/javascript/marked/marked.umd.min.js"),
                         ("purify.min.js", "/usr/share/nodejs/dompurify/dist/purify.min.js")):
        st, h, body = srv.get(f"/assets/{name}", raw=True)
        assert st == 200 and body == open(debian, "rb").read(), name
        assert h["content-type"].startswith("text/javascript"), name
    st, _, e = srv.get("/assets/nope.js")
    assert st == 404 and e["error"]["code"] == "not_found"
    st, _, e = srv.get("/assets/../meson.build")
    assert st == 404
    st, h, _ = srv.post("/", {})
    assert st == 405 and "GET" in h["allow"]
    st, _, e = srv.get("/api/v1/nothing")
    assert st == 404 and e["error"]["code"] == "not_found"
    st, _, e = srv.get("/api/v1/projects")
    assert st == 200 and e == []
    st, _, e = srv.get("/healthz")
    assert st == 200 and e["status"] == "ok"
    st, h, _ = srv.get("/metrics", raw=True)
    assert st == 200 and h["content-type"].startswith("text/plain")
    st, _, doc = srv.get("/openapi.json")
    assert st == 200 and doc["openapi"].startswith("3.")
    assert not any(p == "/" or p.startswith("/assets") for p in doc["paths"])
    st, _, _ = srv.get("/other")
    assert st == 404


def test_sync_flow(serve, make_repo):
    """Add a project in the form, pick a branch, Sync Now, watch the phases, succeed; history,
    changes and files."""
    need_browser()
    repo, main = small_repo(make_repo)
    srv = serve()
    run_flow("sync_flow.mjs", srv, repo=str(repo.path), main_head=main, feature_files=6,
             weird_name='weird <b>&"name".txt', local_root=os.path.realpath(srv.ps.tmp))


def test_failing_sync_shows_its_reason(serve, make_repo):
    need_browser()
    repo, _ = small_repo(make_repo)
    repo.branch("doomed")
    srv = serve()
    run_flow("failure.mjs", srv, repo=str(repo.path))


def test_sync_started_elsewhere_disables_sync_now(serve, make_repo):
    need_browser()
    repo, _ = small_repo(make_repo)
    srv = serve(delay="700")  # long enough to open a second page mid-sync
    run_flow("external.mjs", srv, repo=str(repo.path))


def test_memory_search_superseded_restore(serve, make_repo):
    need_browser()
    repo, _ = small_repo(make_repo)
    (repo.path / ".memory").mkdir()
    srv = serve(delay="0")
    run_flow("memory.mjs", srv, repo=str(repo.path))


def test_every_view_fits_a_phone(serve, make_repo, ps):
    """At 390 px no view is wider than the screen: the projects, an overview, history with a
    long error, a sync with its changes, a file with long lines open, memory."""
    need_browser()
    repo = make_repo("repo")
    long_dir = "a-rather-long-directory-name/with-another-long-one-inside/"
    long_file = long_dir + "and-a-file-whose-name-alone-is-wider-than-a-phone-screen.txt"
    repo.write(long_file, "x = '" + "0123456789" * 40 + "'\n" + "short line\n" * 5)
    repo.write("README.md", "# a readme\n\n" + "word " * 200 + "\n")
    repo.write(".memory/deploy.md", "---\ntitle: How we deploy on a very long title line that "
               "goes on\ntags: [ops, deploy, a-quite-long-tag-name-here]\n---\n"
               "Deploy with " + "https://example.com/" + "a" * 120 + " then roll back.\n")
    repo.commit("long things")
    srv = serve(delay="0")
    st, _, _ = srv.post("/api/v1/projects", {"name": "phone", "source": str(repo.path)})
    assert st == 201
    sync = ps.sync("phone")
    ps.sync("phone", "--branch", "a-branch-that-does-not-exist-and-has-a-long-name",
             expect="failed")
    run_flow("phone.mjs", srv, project="phone", sync_id=sync["id"], long_file=long_file)


def test_page_does_what_the_cli_does(serve, make_repo, ps):
    """Settings (PATCH), rename, delete with confirmation, cancel a running sync, add a note,
    page through more than 200 memory entries, and each change's diff (unified and side by
    side, word highlights, collapsed unchanged lines, a large one built as it is scrolled);
    every new view at 390 px too."""
    need_browser()
    repo = make_repo("repo")
    lines = [f"line {i} of the file" for i in range(1, 41)]
    repo.write("src/long.txt", "\n".join(lines) + "\n")
    repo.write("README.md", "# readme\n")
    # every line rewritten: 600 diff rows, more than the view builds at once
    repo.write("src/big.txt", "".join(f"big {i} first\n" for i in range(1, 301)))
    repo.commit("c1")
    lines[4] = "line 5 of the changed file"
    lines[29] = "line 30 of the file, edited"
    repo.write("src/long.txt", "\n".join(lines) + "\n")
    repo.write("src/big.txt", "".join(f"big {i} second\n" for i in range(1, 301)))
    repo.commit("c2")
    srv = serve(delay="0")
    st, _, _ = srv.post("/api/v1/projects", {"name": "par", "source": str(repo.path)})
    assert st == 201
    ps.sync("par", "--branch", "main")
    repo.git("checkout", "-q", "HEAD~1")
    repo.git("branch", "-f", "old")
    repo.git("checkout", "-q", "main")
    # sync 2: the first commit, sync 3: the second one again, so sync 3 changes long.txt
    ps.sync("par", "--branch", "old")
    last = ps.sync("par", "--branch", "main")
    for i in range(205):
        st, _, _ = srv.post("/api/v1/projects/par/memory", {"title": f"note {i}", "content": "x"})
        assert st == 201
    # The one sync the flow starts (and cancels) has a new commit to take, so it runs through
    # every phase, 700 ms a step: one with nothing new ends after a step or two, which on a
    # loaded machine came before the page showed its Cancel button.
    repo.write("src/new.txt", "for the sync the page cancels\n")
    repo.commit("c3")
    # Servers on one store share its queue: the fast one left running could claim the sync the
    # page starts and end it before its Cancel button shows.
    srv.stop()
    srv_slow = serve(delay="700")
    run_flow("parity.mjs", srv_slow, project="par", sync_id=last["id"], repo=str(repo.path))


def tiny_png():
    """A real 2x2 PNG (RGB), made here."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    rows = b"".join(b"\x00" + bytes([255, 0, 0, 0, 128, 255]) for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


HOSTILE_MD = """# Hostile note

**bold** and a [fine link](https://example.com/docs).

<script>alert('script')</script>

<img src=x onerror="alert('img'); window.__pwned = 1">

<svg onload="alert('svg')"></svg>

<iframe src="javascript:alert('iframe')"></iframe>

[click me](javascript:alert('link'))

<a href="javascript:alert('a')">raw link</a>

<details open ontoggle="alert('details')">x</details>

<style>body { display: none }</style>
"""


def test_viewers_and_note_editing(serve, make_repo, ps):
    """File view: line numbers, highlighting, Raw, Download, an image, a markdown file rendered
    and its source; memory markdown with
    hostile markup that must not run; a note edited, deleted and restored on the page; 390 px."""
    need_browser()
    repo = make_repo("repo")
    app_c = ("#include <stdio.h>\n\n/* a comment */\nstatic int twice(int x) { return 2 * x; }\n\n"
             "int main(void)\n{\n\tprintf(\"%d <b>\\n\", twice(21));\n\treturn 0;\n}\n")
    repo.write("src/app.c", app_c)
    repo.write("notes.unknownext", "one\ntwo\n")
    repo.write("img/dot.png", tiny_png())
    long_file = "src/" + "long-name-" * 6 + ".py"
    repo.write(long_file, "x = '" + "0123456789" * 40 + "'\n")
    repo.write(".memory/guide.md", "# Guide\nImported from the repository.\n")
    repo.write("docs/readme.md", "---\ntitle: Front matter\n---\n# Read me\n\nSome **bold** text, "
               "[the program](../src/app.c) and <script>alert('md')</script>.\n")
    repo.commit("viewers")
    srv = serve(delay="0")
    st, _, _ = srv.post("/api/v1/projects", {"name": "view", "source": str(repo.path)})
    assert st == 201
    sync = ps.sync("view")
    for title, content in (("Hostile", HOSTILE_MD), ("Runbook", "Restart the cache nightly.")):
        st, _, e = srv.post("/api/v1/projects/view/memory",
                            {"title": title, "content": content, "tags": ["ops"]})
        assert st == 201, e
    run_flow("viewers.mjs", srv, project="view", sync_id=sync["id"], app_c=app_c,
             long_file=long_file)


def test_code_search_on_the_page(serve, make_repo, ps):
    """The file browser's search box: results equal `git grep -n` at the synced commit, grouped
    by file, the match marked, hostile lines shown as text, "More" through the Link header, the
    regex and case toggles and the path glob, a 400 for a bad regex and the note when the index
    cannot narrow; a result opens the file at its line; an older sync searches its own files;
    390 px."""
    need_browser()
    repo = make_repo("repo")
    repo.write("src/app.c", "int needle_one;\nint other;\n/* NEEDLE in caps */\nint needle_two;\n")
    repo.write("src/deep/lib.c", "static int needle3 = 3;\n")
    repo.write("docs/notes.md", "A needle in the docs.\n<img src=x onerror=alert(1)> needle here\n")
    repo.write("big.txt", "".join(f"line {i} has a needle\n" if i % 2 else f"line {i}\n"
                                  for i in range(1, 301)))
    old = repo.commit("old")
    srv = serve(delay="0")
    st, _, _ = srv.post("/api/v1/projects", {"name": "cs", "source": str(repo.path)})
    assert st == 201
    old_sync = ps.sync("cs")
    repo.write("src/added.c", "int needle_added;\n")
    new = repo.commit("new")
    latest = ps.sync("cs")

    def grep(*args, rev=new):
        r = subprocess.run(["git", "grep", "-n", *args, rev, "--"], cwd=repo.path, env=GIT_ENV,
                           capture_output=True, text=True)
        assert r.returncode in (0, 1), r.stderr
        return [[path, int(line)] for _, path, line, _ in
                (ln.split(":", 3) for ln in r.stdout.splitlines())]

    needle = grep("-F", "needle")
    run_flow("code_search.mjs", srv, project="cs", sync_id=latest["id"], old_sync_id=old_sync["id"],
             needle=needle, needle_old=grep("-F", "needle", rev=old),
             needle_icase=grep("-F", "-i", "needle"), regex=grep("-P", r"needle_?\d"),
             glob_src=[x for x in needle if x[0].startswith("src/")],
             big_txt=(repo.path / "big.txt").read_text())


def test_schedule_and_paused_state_on_the_page(make_repo, ps, tmp_path):
    """A project with --every shows its next due time; one whose source is gone pauses (serve
    --max-failures 2) with a badge, its reason and since when; Resume clears it; 390 px too."""
    need_browser()
    repo = make_repo("repo")
    repo.write("a.txt", "a\n")
    repo.commit("one")
    gone = make_repo("gone")
    gone.write("a.txt", "a\n")
    gone.commit("one")
    ps.add("timed", str(repo.path), "--every", "10m")
    ps.sync("timed")
    ps.add("gone", str(gone.path), "--every", "1h")
    ps.sync("gone")
    backup = tmp_path / "backup"
    shutil.copytree(gone.path, backup)
    shutil.rmtree(gone.path)
    for _ in range(2):
        ps.sync("gone", expect="failed")
    srv = Server(ps, "--quiet", "--max-failures", "2")
    try:
        # The scheduler pauses it at its first look, before the page opens.
        assert wait_for(lambda: srv.get("/api/v1/projects/gone")[2]["state"] == "paused",
                        timeout=20), srv.stderr()
        run_flow("schedule.mjs", srv, gone=str(gone.path), backup=str(backup))
    finally:
        srv.stop()


def test_a_read_only_token_gets_no_controls_that_write(serve, make_repo, ps):
    need_browser()
    repo, _ = small_repo(make_repo)
    tokens = {"PROJSYNC_API_TOKEN": "api-tok-1", "PROJSYNC_READ_TOKEN": "read-tok-2"}
    srv = serve(delay="0", env=tokens)
    auth = {"Authorization": "Bearer api-tok-1"}
    st, _, _ = srv.post("/api/v1/projects", {"name": "demo", "source": str(repo.path)},
                        headers=auth)
    assert st == 201
    st, _, s = srv.post("/api/v1/projects/demo/sync", headers=auth)
    assert st == 202
    wait_status(srv, s["id"], ("succeeded",), headers=auth)
    run_flow("read_only.mjs", srv, read_token="read-tok-2", api_token="api-tok-1")


def test_schedule_and_retention_in_the_settings(serve, make_repo, ps):
    """The settings page sets and clears the schedule, pause threshold and retention; errors
    under their fields."""
    need_browser()
    repo, _ = small_repo(make_repo)
    ps.add("cfg", str(repo.path))
    ps.add("other", str(repo.path))
    srv = serve(delay="0")
    run_flow("settings.mjs", srv, project="cfg", other="other", max_blob_size=8 * 1024 * 1024)
