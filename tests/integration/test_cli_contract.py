"""
The CLI's contract across commands: one exit-code rule that agrees with the HTTP status the API
answers for the same mistake (400/422 -> 2, 404 -> 3, 409 -> 4), a store that read commands
never create, `project rm` that asks before it removes, and the wording of a few outputs.
"""
import os
import pty
import select
import subprocess
import time

import pytest

from conftest import BIN, one_error_line
from server_util import Server

EXIT_OF_STATUS = {400: 2, 422: 2, 404: 3, 409: 4}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Project p with a succeeded sync (ok) then a failed one (failed); project q with its own
    succeeded sync (other); p's snapshot holds a file, one over p's size limit and a
    submodule."""
    from conftest import Projsync, Repo
    tmp = tmp_path_factory.mktemp("contract")
    ps = Projsync(tmp)
    repo = Repo.init(tmp / "repo")
    repo.write("a.txt", "a\n")
    repo.write("big.txt", "more than sixteen bytes\n")
    repo.gitlink("sub", "1" * 40)
    repo.commit()
    ps.add("p", str(repo.path), "--max-blob-size", "16")
    ok = ps.sync("p")["id"]
    failed = ps.sync("p", "--branch", "no-such-branch", expect="failed")["id"]
    ps.add("q", str(repo.path), "--max-blob-size", "16")
    other = ps.sync("q")["id"]
    server = Server(ps)
    yield ps, server, {"ok": ok, "failed": failed, "other": other}
    server.stop()


# (CLI arguments, the API request for the same thing or None, the exit code). {ok}, {failed}
# and {other} are sync ids of the `world` fixture; {dir} a fresh folder.
CASES = [
    # a sync that exists but is not succeeded, used as a snapshot: 409 -> 4
    (("files", "p", "--at", "{failed}"), "/api/v1/projects/p/files?at={failed}", 4),
    (("cat", "p", "a.txt", "--at", "{failed}"), "/api/v1/projects/p/file?path=a.txt&at={failed}",
     4),
    (("changes", "{failed}"), "/api/v1/syncs/{failed}/changes", 4),
    (("diff", "{ok}", "{failed}"), None, 4),
    (("diff", "{failed}", "{ok}"), None, 4),
    (("checkout", "p", "{dir}", "--at", "{failed}"), None, 4),
    # a sync of another project, or no such sync: 404 -> 3
    (("files", "p", "--at", "{other}"), "/api/v1/projects/p/files?at={other}", 3),
    (("cat", "p", "a.txt", "--at", "{other}"), "/api/v1/projects/p/file?path=a.txt&at={other}",
     3),
    (("checkout", "p", "{dir}", "--at", "{other}"), None, 3),
    (("files", "p", "--at", "999999"), "/api/v1/projects/p/files?at=999999", 3),
    (("changes", "999999"), "/api/v1/syncs/999999/changes", 3),
    (("diff", "{ok}", "999999"), None, 3),
    (("checkout", "p", "{dir}", "--at", "999999"), None, 3),
    # no such project or path: 404 -> 3
    (("history", "nope"), "/api/v1/projects/nope/syncs", 3),
    (("status", "nope"), "/api/v1/projects/nope/sync", 3),
    (("files", "nope"), "/api/v1/projects/nope/files", 3),
    (("cat", "p", "no/such.txt"), "/api/v1/projects/p/file?path=no/such.txt", 3),
    (("project", "show", "nope"), "/api/v1/projects/nope", 3),
    # a path that has no content, malformed numbers: 422/400 -> 2
    (("cat", "p", "sub"), "/api/v1/projects/p/file?path=sub", 2),
    (("cat", "p", "big.txt"), "/api/v1/projects/p/file?path=big.txt", 2),
    (("files", "p", "--at", "abc"), "/api/v1/projects/p/files?at=abc", 2),
    (("history", "p", "--limit", "abc"), "/api/v1/projects/p/syncs?limit=abc", 2),
    (("changes", "abc"), "/api/v1/syncs/abc/changes", 2),
    # syncs of two projects cannot be compared (no API counterpart)
    (("diff", "{ok}", "{other}"), None, 2),
]


@pytest.mark.parametrize("args,api,code", CASES,
                         ids=[" ".join(c[0]) for c in CASES])
def test_one_exit_code_rule_agrees_with_the_api(world, tmp_path, args, api, code):
    ps, server, ids = world
    fill = dict(ids, dir=str(tmp_path / "co"))
    r = ps(*[a.format(**fill) for a in args])
    assert r.rc == code, r
    assert r.err.startswith("projsync: ") and r.err.splitlines()[0].count("projsync:") == 1, r
    assert r.out == "", r
    assert not (tmp_path / "co").exists() or not any((tmp_path / "co").iterdir()), r
    if api:
        st, _, body = server.get(api.format(**fill))
        assert EXIT_OF_STATUS.get(st) == code, (st, body)


def test_a_branch_the_source_lacks_is_invalid_input_in_both(world, tmp_path):
    """`project set --branch` and `project add --branch` with a branch the source does not have
    exit as PATCH/POST /api/v1/projects answer it (422 branch_not_found -> 2), not 3 as if
    projsync's own object were missing; nothing is stored."""
    ps, server, _ = world
    before = ps.json("project", "list")
    st, _, body = server.request("PATCH", "/api/v1/projects/p", body={"branch": "no-such"})
    assert st == 422 and body["error"]["code"] == "branch_not_found", body
    repo = ps.project("p")["source"]
    for args in (("project", "set", "p", "--branch", "no-such"),
                 ("project", "add", "p2", repo, "--branch", "no-such")):
        r = ps(*args)
        assert r.rc == EXIT_OF_STATUS[st], r
        assert one_error_line(r.err) and "no-such" in r.err, r
    assert ps.json("project", "list") == before
    # A project that is not there is still 3.
    assert ps("project", "set", "nope", "--branch", "no-such").rc == 3

def test_api_names_bad_numbers_plainly(world):
    _, server, _ = world
    st, _, body = server.get("/api/v1/projects/p/syncs?limit=abc")
    assert st == 400 and body["error"]["code"] == "invalid_limit", body
    st, _, body = server.get("/api/v1/projects/p/syncs?limit=5000")
    assert st == 400 and body["error"]["code"] == "invalid_limit", body
    st, _, body = server.get("/api/v1/projects/p/files?at=abc")
    assert st == 400, body
    assert body["error"]["message"] == "invalid ?at 'abc': give a positive number", body


# ------------------------------------------------------------------------------------------
# wording


def test_status_and_history_wording(ps, repo):
    repo.write("only.txt", "one\n")
    repo.commit()
    ps.add("p", str(repo.path))
    r = ps.ok("sync", "p")
    assert ", 1 file," in r.out and "1 files" not in r.out, r
    ps.sync("p")  # nothing new: up to date
    out = ps.ok("status", "p").out
    assert ", 1 file (" in out and "1 files" not in out, out
    header, *rows = ps.ok("history", "p").out.splitlines()
    assert "ERROR" not in header and header.rstrip().endswith("NOTE"), header
    assert rows[0].rstrip().endswith("up to date") and "(up to date)" not in rows[0], rows


def test_status_of_an_empty_repository_names_it(ps, tmp_path):
    # status said "succeeded 0s ago at -," for a sync of an empty repository.
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "empty.git")], check=True)
    ps.add("e", str(tmp_path / "empty.git"))
    ps.sync("e")
    out = ps.ok("status", "e").out
    assert "succeeded" in out and " at -" not in out, out
    assert out.count(" ago at an empty repository, +0 ~0 -0") == 2, out


def test_memory_search_shows_a_manual_note_once_parenthesised(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.ok("memory", "add", "p", "--title", "On call", "--text", "rotate the pager weekly")
    out = ps.ok("memory", "p", "--search", "pager").out
    assert "(manual)" in out and "((manual))" not in out, out


@pytest.mark.parametrize("args", [("cat", "p", "-hidden.txt"), ("memory", "search", "p", "-hello"),
                                  ("files", "p", "-hx")])
def test_a_dash_word_with_an_h_is_not_a_request_for_help(ps, repo, args):
    # getopt read "-hidden.txt" as -h -i -d...: it met the h first, and the command printed
    # its usage on stdout with exit 0, which a script took for the file's content. Like any
    # other such word it is an unknown option, pointing at `--`.
    repo.write("-hidden.txt", "secret\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    r = ps(*args)
    assert r.rc == 2 and r.out == "", r
    assert f"in '{args[-1]}' (an argument that starts with '-' goes after '--')" in r.err, r
    assert ps.ok(*args[:-1], "--", args[-1]).rc == 0
    # -h alone, and a word of known letters that holds h, still ask for the usage.
    assert ps.ok(*args[:-1], "-h").out.startswith("usage: projsync ")
    assert ps.ok("grep", "x", "p", "-ih").out.startswith("usage: projsync grep")


# ------------------------------------------------------------------------------------------
# a store that does not exist


READ_COMMANDS = [
    ("project", "list"), ("project", "show", "p"), ("project", "set", "p", "--branch", "x"),
    ("project", "rm", "p", "--yes"), ("branches", "p"), ("sync", "p"), ("status", "p"),
    ("history", "p"), ("changes", "1"), ("diff", "1", "2"), ("files", "p"), ("cat", "p", "a"),
    ("checkout", "p", "{dir}"), ("memory", "p"), ("memory", "p", "--search", "x"),
    ("memory", "show", "1"), ("memory", "history", "1"), ("memory", "restore", "1"),
]


@pytest.mark.parametrize("args", READ_COMMANDS, ids=[" ".join(a) for a in READ_COMMANDS])
def test_a_mistyped_store_is_not_created(ps, tmp_path, args):
    db = tmp_path / "typo" / "projsync.db"
    co = tmp_path / "co"
    r = ps("--db", str(db), *[a.format(dir=co) for a in args], db=False)
    assert r.rc == 3, r
    assert one_error_line(r.err), r
    assert f"no store at {db}" in r.err and "--db" in r.err, r
    assert not db.parent.exists(), r
    assert not co.exists(), r


def test_a_missing_store_named_by_the_environment_is_not_created(ps, tmp_path):
    db = tmp_path / "projsync.db"
    r = ps("project", "list", env={"PROJSYNC_DB": str(db)}, db=False)
    assert r.rc == 3 and "no store at" in r.err, r
    assert not db.exists()


def test_commands_that_write_create_the_store(ps, tmp_path, repo):
    repo.write("a.txt", "a\n")
    repo.commit()
    db = tmp_path / "new" / "projsync.db"
    ps.ok("--db", str(db), "project", "add", "p", str(repo.path), db=False)
    assert db.exists()
    ps.ok("--db", str(db), "sync", "p", db=False)
    assert ps("--db", str(db), "files", "p", db=False).out.endswith("a.txt\n")
    db2 = tmp_path / "other" / "projsync.db"
    ps.ok("--db", str(db2), "migrate", db=False)
    assert db2.exists()
    ps.ok("--db", str(db2), "project", "list", db=False)


# ------------------------------------------------------------------------------------------
# project rm


@pytest.fixture
def two(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    return ps


def names(ps):
    return [p["name"] for p in ps.json("project", "list")]


def test_rm_without_a_terminal_needs_yes(two):
    r = two("project", "rm", "p", input=b"y\n")
    assert r.rc == 2, r
    assert "--yes" in r.err and one_error_line(r.err), r
    assert names(two) == ["p"]
    r = two.ok("project", "rm", "p", "--yes")
    assert r.out == "removed project p\n", r
    assert names(two) == []


def run_on_terminal(ps, args, answer):
    """Runs projsync with stdin, stdout and stderr on a pseudo-terminal and types `answer` once
    the question is shown. -> (exit code, everything the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(ps.argv(args), env=ps.env, stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True)
    os.close(slave)
    shown = b""
    answered = False
    end = time.monotonic() + 60
    while time.monotonic() < end:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        if not answered and b"[y/N]" in shown:
            os.write(master, answer)
            answered = True
        if proc.poll() is not None and not ready:
            break
    rc = proc.wait(timeout=30)
    os.close(master)
    return rc, shown.decode("utf-8", "replace")


@pytest.mark.parametrize("answer,removed", [(b"y\n", True), (b"yes\n", True), (b"n\n", False),
                                            (b"\n", False), (b"\x04", False)])
def test_rm_on_a_terminal_asks(two, answer, removed):
    rc, shown = run_on_terminal(two, ["project", "rm", "p"], answer)
    assert "remove project p" in shown and "[y/N]" in shown, shown
    if removed:
        assert rc == 0 and "removed project p" in shown, shown
        assert names(two) == []
    else:
        assert rc == 1 and "project p not removed" in shown, shown
        assert names(two) == ["p"]
    assert "Sanitizer" not in shown and "runtime error" not in shown, shown


def test_rm_yes_on_a_terminal_does_not_ask(two):
    rc, shown = run_on_terminal(two, ["project", "rm", "p", "--yes"], b"")
    assert rc == 0 and "[y/N]" not in shown and "removed project p" in shown, shown
    assert names(two) == []
