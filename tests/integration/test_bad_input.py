"""
Bad input and bad surroundings: the documented exit codes (1 failure, 2 usage, 3 not found,
4 conflict), exactly one `projsync: ` line on stderr, and nothing stored or damaged on the way.
"""
import os
import shutil
import sqlite3
import subprocess

import pytest

from conftest import one_error_line, psql

COMMANDS_WITH_HELP = [
    (), ("project",), ("project", "add"), ("project", "list"), ("project", "show"),
    ("project", "rm"), ("branches",), ("sync",), ("status",), ("history",), ("changes",),
    ("diff",), ("files",), ("cat",), ("checkout",), ("migrate",),
]


def expect(r, rc):
    assert r.rc == rc, r
    if rc == 2:
        usage_error(r)
    else:
        assert one_error_line(r.err), r
    return r


def usage_error(r):
    """A usage error: exactly one `projsync: ` line, which points at --help."""
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("projsync: "), r
    assert "--help" in lines[0], r


@pytest.fixture
def synced(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit()
    ps.add("p", str(repo.path))
    return ps.sync("p")


def test_unknown_project_is_not_found(ps, synced):
    for args in (("project", "show", "nope"), ("project", "rm", "nope"), ("sync", "nope"),
                 ("status", "nope"), ("history", "nope"), ("files", "nope"),
                 ("cat", "nope", "a.txt"), ("branches", "nope"),
                 ("checkout", "nope", str(ps.tmp / "co"))):
        expect(ps(*args), 3)
    assert not (ps.tmp / "co").exists()


def test_unknown_ids_and_paths_are_not_found(ps, synced):
    expect(ps("changes", "999999"), 3)
    expect(ps("diff", str(synced["id"]), "999999"), 3)
    expect(ps("files", "p", "--at", "999999"), 3)
    expect(ps("cat", "p", "no/such/file"), 3)


@pytest.mark.parametrize("kind", ["missing", "plain-dir", "plain-file", "bad-url"])
def test_bad_source_at_add_stores_nothing(ps, tmp_path, kind):
    if kind == "missing":
        src = str(tmp_path / "does-not-exist")
    elif kind == "plain-dir":
        (tmp_path / "plain").mkdir()
        (tmp_path / "plain" / "x.txt").write_text("not a repo\n")
        src = str(tmp_path / "plain")
    elif kind == "plain-file":
        (tmp_path / "file").write_text("x")
        src = str(tmp_path / "file")
    else:
        src = "file://" + str(tmp_path / "nowhere.git")
    r = ps("project", "add", "p", src)
    assert r.rc != 0, r
    assert one_error_line(r.err), r
    assert ps.json("project", "list") == []


def test_duplicate_name_is_a_conflict(ps, repo, synced):
    expect(ps("project", "add", "p", str(repo.path)), 4)
    assert len(ps.json("project", "list")) == 1
    assert ps.project("p")["source"] == str(repo.path)


def test_missing_branch(ps, repo):
    repo.write("a", "a")
    repo.commit()
    r = ps("project", "add", "p", str(repo.path), "--branch", "no-such-branch")
    if r.rc != 0:
        # Refusing at once is fine too: then nothing is stored.
        assert one_error_line(r.err), r
        assert ps.json("project", "list") == []
        return
    r = expect(ps("sync", "p"), 1)
    assert "no-such-branch" in r.err, r
    h = ps.history("p")[0]
    assert h["status"] == "failed" and h["error"]["code"], h
    r = expect(ps("sync", "p", "--branch", "also-missing"), 1)
    assert "also-missing" in r.err


@pytest.mark.parametrize("bad", ["abc", "-1", "", "2x", "99999999999999999999999"])
def test_bad_limit_is_usage(ps, synced, bad):
    expect(ps("history", "p", "--limit", bad), 2)


@pytest.mark.parametrize("args", [
    ("frobnicate",), ("project", "frobnicate"), ("sync",), ("project", "add", "only-name"),
    ("history", "p", "--bogus"), ("files", "p", "--at", "abc"), ("changes", "abc"),
    ("diff", "1"), ("cat", "p"), ("checkout", "p"), ("sync", "p", "extra", "args"),
])
def test_usage_errors(ps, synced, args):
    expect(ps(*args), 2)


def test_no_command_is_usage(ps):
    r = ps()
    assert r.rc == 2, r


@pytest.mark.parametrize("cmd", COMMANDS_WITH_HELP, ids=lambda c: " ".join(c) or "top")
def test_help_everywhere(ps, cmd):
    r = ps(*cmd, "--help")
    assert r.rc == 0, r
    assert r.out.strip(), r
    assert "usage" in r.out.lower(), r


@pytest.mark.sqlite_only
def test_corrupt_store_is_refused_unchanged(ps):
    garbage = b"this is not a database, just some bytes\n" * 200
    ps.db.write_bytes(garbage)
    for args in (("project", "list"), ("migrate",), ("status", "p")):
        r = expect(ps(*args), 1)
        assert str(ps.db) in r.err or "database" in r.err.lower() or "store" in r.err.lower(), r
    assert ps.db.read_bytes() == garbage


@pytest.mark.sqlite_only
def test_store_newer_than_binary_is_refused(ps, repo):
    ps.ok("migrate")
    con = sqlite3.connect(str(ps.db))
    con.execute("PRAGMA user_version = 9999")
    con.commit()
    con.close()
    before = ps.db.read_bytes()
    r = expect(ps("project", "list"), 1)
    assert "newer" in r.err, r
    expect(ps("project", "add", "p", str(repo.path)), 1)
    assert ps.db.read_bytes() == before


def test_pg_store_newer_than_binary_is_refused(ps, repo):
    if ps.backend != "pg":
        pytest.skip("the SQLite form is test_store_newer_than_binary_is_refused")
    ps.ok("migrate")
    psql(ps.db, "UPDATE projsync_schema SET version = 9999")
    r = expect(ps("project", "list"), 1)
    assert "newer" in r.err, r
    expect(ps("project", "add", "p", str(repo.path)), 1)
    assert psql(ps.db, "SELECT count(*) FROM projects").strip() == "0"


def test_unreachable_database_names_the_host_never_the_password(ps):
    # Port 1 on the loopback refuses at once; nothing listens there.
    url = "postgresql://someone:pa55-w0rd@127.0.0.1:1/projsync"
    for env in ({}, {"PROJSYNC_DB": url}):
        r = ps("project", "list", db=not env, env=env) if env else ps("--db", url, "project",
                                                                       "list", db=False)
        assert r.rc == 1, r
        assert one_error_line(r.err), r
        assert "127.0.0.1" in r.err, r
        assert "pa55-w0rd" not in r.err and "pa55-w0rd" not in r.out, r


def test_migrate_is_idempotent(ps):
    ps.ok("migrate")
    ps.ok("migrate")
    assert ps.json("project", "list") == []


@pytest.mark.sqlite_only
def test_store_from_env_and_default_location(ps, repo):
    repo.write("a", "a")
    repo.commit()
    # PROJSYNC_DB chooses the store when --db is absent.
    alt = ps.tmp / "alt" / "env.db"
    alt.parent.mkdir()
    r = ps("project", "add", "viaenv", str(repo.path), db=False, env={"PROJSYNC_DB": str(alt)})
    assert r.rc == 0, r
    assert alt.exists()
    r = ps("project", "list", "--json", db=False, env={"PROJSYNC_DB": str(alt)})
    assert r.rc == 0 and "viaenv" in r.out, r
    # Without either, the store lives under $XDG_DATA_HOME/projsync/.
    r = ps("project", "add", "viaxdg", str(repo.path), db=False)
    assert r.rc == 0, r
    assert list((ps.tmp / "home" / ".local" / "share" / "projsync").iterdir())
    assert not ps.db.exists()


def _chattr(flag, *paths):
    if not shutil.which("chattr"):
        return False
    r = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True)
    return r.returncode == 0


@pytest.mark.sqlite_only
def test_read_only_store(ps, repo):
    repo.write("a", "a")
    repo.commit()
    ps.add("p", str(repo.path))
    ps.sync("p")
    ps.ok("project", "list")  # leaves the store closed cleanly
    d = ps.db.parent
    if os.geteuid() == 0:
        # chmod does not stop root; an immutable flag does, where the file system has one.
        paths = [d, *d.iterdir()]
        if not _chattr("+i", *paths):
            pytest.skip("running as root and chattr +i is not supported here")
        undo = lambda: _chattr("-i", *paths)  # noqa: E731
    else:
        d.chmod(0o555)
        ps.db.chmod(0o444)
        undo = lambda: (d.chmod(0o755), ps.db.chmod(0o644))  # noqa: E731
    try:
        before = ps.db.read_bytes()
        repo.write("b", "b")
        repo.commit()
        for args in (("sync", "p"), ("project", "add", "q", str(repo.path))):
            r = ps(*args)
            assert r.rc == 1, r
            assert one_error_line(r.err), r
        assert ps.db.read_bytes() == before
    finally:
        undo()
