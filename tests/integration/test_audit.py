"""
Defects found by a first-time user's and a security reviewer's walk through the CLI and the API,
each kept fixed here: text that is not UTF-8 where the store keeps JSON (memory tags, memory
globs), exit codes and messages that disagreed with docs/cli.md and docs/api.md (a directory as
--file, --server URLs, grep of a failed sync, bounds, required fields), repeated Host and
Authorization headers, --public-url hosts no client can send, an empty file taken as a store,
and repository text (file names, commit subjects) that could drive the terminal.
Arguments that are bytes go in through os.fsdecode, which the subprocess turns back into the
same bytes.
"""
import json
import os
import shutil
import socket
import urllib.parse

import pytest

from conftest import one_error_line
from server_util import Server


def test_a_tag_that_is_not_utf8_is_kept_not_dropped(ps, repo):
    # The tags of an entry are stored as a JSON array: json_string() refuses bytes that are not
    # UTF-8, and such a tag vanished from the note without a word.
    repo.write(".memory/cafe.md", b"---\ntags: [caf\xe9, ops]\n---\n# Cafe\nbeans\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    imported = [e for e in ps.json("memory", "list", "p") if e["source_ref"] == ".memory/cafe.md"]
    assert [e["tags"] for e in imported] == [["caf\ufffd", "ops"]]

    r = ps.ok("memory", "add", "p", "--title", "t", "--text", "x",
              "--tag", os.fsdecode(b"a\xff"), "--tag", "b", "--json")
    assert ps.json("memory", "show", json.loads(r.out)["id"])["tags"] == ["a\ufffd", "b"]


def test_a_memory_glob_that_is_not_utf8_is_refused(ps, repo):
    # The project's globs are a JSON array too: such a glob was dropped and the project left
    # with no glob at all ("memory globs: (none)"), which the API never allows.
    repo.write("a.md", "# A\n")
    repo.commit("c1")
    bad = os.fsdecode(b"\xff*.md")
    r = ps("project", "add", "p", repo.path, "--memory-glob", bad)
    assert r.rc == 2 and one_error_line(r.err) and "--memory-glob" in r.err, (r.rc, r.err)
    assert ps("project", "show", "p").rc == 3
    ps.add("q", repo.path)
    r = ps("project", "set", "q", "--memory-glob", bad)
    assert r.rc == 2 and one_error_line(r.err), (r.rc, r.err)
    assert ps.json("project", "show", "q")["memory_globs"] == [".memory/**/*.md"]


def test_memory_file_that_is_a_directory_is_invalid_input(ps, repo, tmp_path):
    # fopen() succeeds on a directory and only the read fails: that was exit 1 (a failure of
    # projsync) where a missing file is exit 2 (a mistake in the input).
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    for args in (("memory", "add", "p", "--title", "t", "--file", tmp_path),
                 ("memory", "add", "p", "--title", "t", "--file", tmp_path / "missing")):
        r = ps(*args)
        assert r.rc == 2 and one_error_line(r.err) and "cannot read" in r.err, r
    assert ps.json("memory", "list", "p") == []
    e = ps.json("memory", "add", "p", "--title", "t", "--text", "x")
    r = ps("memory", "edit", e["id"], "--file", tmp_path)
    assert r.rc == 2 and one_error_line(r.err), r
    assert ps.json("memory", "show", e["id"])["content"] == "x"


def raw_status(srv, head):
    s = socket.create_connection((srv.host, srv.port), timeout=10)
    try:
        s.sendall(head)
        out = b""
        while b"\r\n" not in out:
            d = s.recv(4096)
            if not d:
                break
            out += d
    finally:
        s.close()
    return int(out.split(b" ", 2)[1])


def test_repeated_host_or_authorization_header_is_400(ps):
    # Only the first of two Host headers was checked: "Host: 127.0.0.1" then "Host: evil" was
    # answered 200 (RFC 9112 §3.2: 400). Of two Authorization headers only the first decided.
    get = b"GET /api/v1/projects HTTP/1.1\r\n"
    end = b"Connection: close\r\n\r\n"
    srv = Server(ps)
    try:
        assert raw_status(srv, get + b"Host: 127.0.0.1\r\n" + end) == 200
        assert raw_status(srv, get + b"Host: 127.0.0.1\r\nHost: evil\r\n" + end) == 400
        assert raw_status(srv, get + b"Host: evil\r\nHost: 127.0.0.1\r\n" + end) == 400
    finally:
        srv.stop()
    srv = Server(ps, env={"PROJSYNC_API_TOKEN": "tok"})
    try:
        auth = b"Authorization: Bearer tok\r\n"
        other = b"Authorization: Bearer other\r\n"
        host = b"Host: 127.0.0.1\r\n"
        assert raw_status(srv, get + host + auth + end) == 200
        assert raw_status(srv, get + host + auth + other + end) == 400
        assert raw_status(srv, get + host + other + auth + end) == 400
    finally:
        srv.stop()


def test_sync_server_that_is_not_http_is_a_usage_error(ps, repo, tmp_path):
    # libcurl read file: URLs (and tried ftp:, or http for a bare name): "cannot reach the
    # server", exit 1, for a mistyped URL, and a file: URL read a local file as the answer.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    for url in (f"file://{tmp_path}", f"file:{tmp_path}", "ftp://127.0.0.1:1", "ftp:x"):
        r = ps("sync", "p", "--server", url)
        assert r.rc == 2 and one_error_line(r.err) and "--server" in r.err, r
        r = ps("sync", "p", env={"PROJSYNC_SERVER": url})
        assert r.rc == 2 and one_error_line(r.err) and "PROJSYNC_SERVER" in r.err, r
    assert ps.json("history", "p") == []
    # HOST:PORT without a scheme is http://HOST:PORT, as it was before these refusals (a
    # $PROJSYNC_SERVER of long standing must keep working; found by review).
    srv = Server(ps)
    try:
        hostport = srv.base[len("http://"):]
        r = ps("sync", "p", "--server", hostport)
        assert r.rc == 0, r
        r = ps("sync", "p", env={"PROJSYNC_SERVER": hostport})
        assert r.rc == 0, r
    finally:
        srv.stop()
    assert len(ps.json("history", "p")) == 2


def test_bad_at_reads_alike_on_files_and_code_search(ps, repo):
    # The code search said "invalid sync id 'at' 'x'", the file list "invalid ?at 'x'".
    repo.write("a.txt", "alpha\n")
    repo.commit("c1")
    srv = Server(ps)
    try:
        st, _, p = srv.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
        assert st == 201, p
        msgs = []
        for path in ("/api/v1/projects/p/files?at=x", "/api/v1/projects/p/search/code?q=alpha&at=x"):
            st, _, e = srv.get(path)
            assert st == 400 and e["error"]["code"] == "invalid_id", e
            msgs.append(e["error"]["message"])
        assert msgs[0] == msgs[1] == "invalid ?at 'x': give a positive number"
    finally:
        srv.stop()


def test_public_url_with_a_host_no_client_can_send_is_refused(ps):
    # 'http://a b' was accepted: the server started and answered 421 to every request meant
    # for that name. A mistyped option is exit 2 at start, like 'ftp://x'.
    for url in ("http://a b", "http://a\"b", "https://a<b>:8080", "http://a%20b"):
        r = ps("serve", "--listen", "127.0.0.1:0", "--public-url", url, timeout=20)
        assert r.rc == 2 and one_error_line(r.err) and "--public-url" in r.err, r
    srv = Server(ps, "--public-url", "https://my_host.example:8443")
    try:
        st, _, _ = srv.request("GET", "/api/v1/projects",
                               headers={"Host": "my_host.example:8443"})
        assert st == 200
    finally:
        srv.stop()


def test_continue_history_without_source_names_the_cli_options(ps, make_repo):
    # The CLI printed the API's words ("continue_history goes with a new source"): a CLI user
    # was not told which option was missing. (The refusal of another repository deliberately
    # does not name --continue-history: test_parity.)
    a, b = make_repo("a"), make_repo("b")
    for r in (a, b):
        r.write("x.txt", "x\n")
        r.commit("c1")
    ps.add("p", a.path)
    ps.sync("p")
    r = ps("project", "set", "p", "--continue-history")
    assert r.rc == 2 and one_error_line(r.err) and "--continue-history" in r.err \
        and "--source" in r.err, r
    assert ps.json("project", "show", "p")["source"] == str(a.path)


def test_code_search_at_a_failed_sync_is_409_like_every_snapshot(ps, repo):
    # grep --at / ?at of a failed sync answered 404 no_snapshot (exit 3) where files, cat,
    # checkout and verify answer 409 not_succeeded (exit 4).
    repo.write("a.txt", "alpha\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    failed = ps.sync("p", "--branch", "nope", expect="failed")["id"]
    for cmd in (("grep", "alpha", "p"), ("files", "p"), ("cat", "p", "a.txt")):
        r = ps(*cmd, "--at", failed)
        assert r.rc == 4 and one_error_line(r.err) and "succeeded" in r.err, r
    srv = Server(ps)
    try:
        for path in (f"/api/v1/projects/p/search/code?q=alpha&at={failed}",
                     f"/api/v1/projects/p/files?at={failed}"):
            st, _, e = srv.get(path)
            assert st == 409 and e["error"]["code"] == "not_succeeded", (path, e)
    finally:
        srv.stop()


def test_an_empty_file_is_no_store_for_a_read_command(ps, repo, tmp_path):
    # `touch store.db; projsync --db store.db project list` made the empty file a store (schema,
    # WAL) on a read command; an empty PostgreSQL database is refused as "no store" already.
    if ps.backend != "sqlite":
        pytest.skip("about SQLite files")
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    db = tmp_path / "empty.db"
    db.write_bytes(b"")
    for args in (("project", "list"), ("history", "p"), ("stats",)):
        r = ps("--db", db, *args, db=False)
        assert r.rc == 3 and one_error_line(r.err) and "no store at" in r.err, r
    assert db.stat().st_size == 0 and not (tmp_path / "empty.db-wal").exists()
    # project add still makes a store of it.
    assert ps("--db", db, "project", "add", "p", repo.path, db=False).rc == 0
    assert ps("--db", db, "project", "list", "--json", db=False).rc == 0


def test_a_missing_postgresql_database_is_no_store(ps, repo):
    # `--db postgresql://HOST/nosuchdb project list` exited 1 ("cannot open store ... database
    # "nosuchdb" does not exist") where a missing store is exit 3, as a missing SQLite file is.
    if ps.backend != "pg":
        pytest.skip("about PostgreSQL databases")
    import conftest
    url = conftest.pg_url_for("it_missing_" + os.urandom(4).hex())
    for args in (("project", "list"), ("history", "p"), ("project", "add", "p", str(repo.path))):
        r = ps("--db", url, *args, db=False)
        assert r.rc == 3 and one_error_line(r.err), r
        assert "no store at" in r.err and "does not exist" in r.err, r
    # Another refused connection (a role that does not exist) stays a store failure (exit 1).
    scheme, _, rest = conftest.PG_URL.partition("://")
    bad_user = f"{scheme}://it_nosuchrole@{rest.split('@', 1)[-1]}"
    r = ps("--db", bad_user, "project", "list", db=False)
    assert r.rc == 1 and "no store" not in r.err, r


def test_listed_paths_are_quoted_with_gits_escapes(ps, repo):
    # changes/files quoted control characters as \x1b, \x7f where git writes \033, \177, and
    # printed bytes that are not UTF-8 raw: "bad\xff" garbled the terminal, a C1 control (U+009B
    # is CSI) could drive it.
    names = {"a\"b": '"a\\"b"', "a\\b": '"a\\\\b"', "tab\there": '"tab\\there"',
             "esc\x1b[31m": '"esc\\033[31m"', "del\x7f": '"del\\177"', "caf\u00e9": "caf\u00e9",
             "bell\x07": '"bell\\a"', "c1\u009b": '"c1\\302\\233"'}
    for n in names:
        repo.write(n, "x\n")
    repo.write(os.fsdecode(b"bad\xff\xfe"), "y\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    sync = ps.sync("p")["id"]
    want = dict(names)
    want[os.fsdecode(b"bad\xff\xfe")] = '"bad\\377\\376"'
    lines = ps.ok("changes", sync).out.splitlines()
    assert sorted(lines) == sorted("A " + q for q in want.values())
    files = [ln.split(None, 4)[4] for ln in ps.ok("files", "p").out.splitlines()]
    assert sorted(files) == sorted(want.values())
    # git agrees wherever the name is UTF-8 text (core.quotePath=false).
    out = repo.git("-c", "core.quotePath=false", "diff", "--name-status",
                   "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "HEAD",
                   raw=True).decode("utf-8", "surrogateescape")
    gits = {ln.split("\t", 1)[1] for ln in out.splitlines()}
    for n, q in names.items():
        if n != "c1\u009b":
            assert q in gits, (q, gits)


def test_repository_text_in_tables_cannot_drive_the_terminal(ps, repo):
    # A commit subject (or author) with ESC sequences went raw into history's SUBJECT column
    # and status' head commit: the repository's author could recolour or clear the terminal
    # of whoever lists its syncs.
    repo.write("a.txt", "a\n")
    repo.git("add", "-A")
    repo.git("-c", "user.name=Ev\x1b]0;x\x07il", "commit", "-q", "-m",
             "evil \x1b[2J\x1b[31mred\x9b\u009b\x7f\x07 subject")
    ps.add("p", repo.path)
    ps.sync("p")
    for args in (("history", "p"), ("status", "p"), ("project", "list")):
        out = ps.ok(*args).outb
        assert not any(b in out for b in (b"\x1b", b"\x07", b"\x7f", b"\xc2\x9b")), (args, out)
        assert b"red" in out or args == ("project", "list")
    assert "\x1b[2J" in ps.json("history", "p")[0]["head_commit"]["subject"]


def test_log_and_lone_c1_bytes_cannot_drive_the_terminal(ps, repo, tmp_path):
    # `log` printed a commit's author and message raw, and a lone 0x9b byte (an 8-bit CSI to
    # some terminals; not UTF-8) passed the tables' filter, which knew C1 only as UTF-8.
    repo.write("a.txt", "a\n")
    repo.git("add", "-A")
    msg = tmp_path / "msg"
    msg.write_bytes(b"lone \x9b2J csi and \x1b]52;c;eA==\x07 osc\n\nbody \x1b[31mred\tx\n")
    repo.git("-c", "user.name=Ev\x1b[31mil", "-c", "i18n.commitEncoding=ISO-8859-1",
             "commit", "-q", "-F", str(msg))
    ps.add("p", repo.path)
    sync = ps.sync("p")
    for args in (("log", str(sync["id"])), ("history", "p"), ("status", "p")):
        out = ps.ok(*args).outb
        assert not any(b in out for b in (b"\x1b", b"\x07", b"\x9b")), (args, out)
        assert b"csi" in out, (args, out)
    out = ps.ok("log", str(sync["id"])).outb
    assert b"body" in out and b"red\tx" in out and b"Author: " in out, out


def test_count_settings_say_their_upper_bound(ps, repo):
    # --keep-syncs 99999999999 was refused with "give a whole number, 0 or more", which it is;
    # the API said the same for keep_syncs and max_failures over 10^9.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    for opt in ("--keep-syncs", "--max-failures"):
        r = ps("project", "set", "p", opt, "99999999999")
        assert r.rc == 2 and one_error_line(r.err) and "1000000000" in r.err, r
    srv = Server(ps)
    try:
        for field in ("keep_syncs", "max_failures"):
            st, _, e = srv.request("PATCH", "/api/v1/projects/p", body={field: 99999999999})
            assert st == 400 and "1000000000" in e["error"]["message"], e
            st, _, e = srv.request("PATCH", "/api/v1/projects/p", body={field: 1000000000})
            assert st == 200 and e[field] == 1000000000, e
    finally:
        srv.stop()


def test_patch_of_a_note_with_a_null_title_does_not_say_required(ps, repo):
    # PATCH /memory/{id} requires no field, yet {"title": null} answered "'title' is required".
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    srv = Server(ps)
    try:
        st, _, p = srv.post("/api/v1/projects", {"name": "p", "source": str(repo.path)})
        assert st == 201, p
        st, _, n = srv.post("/api/v1/projects/p/memory", {"title": "t", "content": "c"})
        assert st == 201, n
        for field in ("title", "content"):
            st, _, e = srv.request("PATCH", f"/api/v1/memory/{n['id']}", body={field: None})
            assert st == 400 and e["error"]["code"] == "invalid_field", e
            assert e["error"]["message"] == f"'{field}' must be a string", e
        st, _, e = srv.post("/api/v1/projects/p/memory", {"title": "t"})
        assert st == 400 and e["error"]["code"] == "missing_field" \
            and "required" in e["error"]["message"], e
    finally:
        srv.stop()


def test_files_json_of_the_cli_has_path_raw_like_the_api(ps, repo):
    # The API's file list gives a name that is not UTF-8 as path_raw (its exact bytes); the
    # CLI's `files --json`, "the same shapes", gave only the U+FFFD form, which names no file.
    repo.write(os.fsdecode(b"bad\xff name"), "y\n")
    repo.write("good.txt", "x\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    cli = ps.json("files", "p")
    srv = Server(ps)
    try:
        st, _, api = srv.get("/api/v1/projects/p/files")
        assert st == 200
    finally:
        srv.stop()
    assert cli == api
    bad = [f for f in cli if f["path"] != "good.txt"]
    assert [f["path_raw"] for f in bad] == ["bad%FF%20name"]
    assert "path_raw" not in [f for f in cli if f["path"] == "good.txt"][0]
    raw = urllib.parse.unquote_to_bytes(bad[0]["path_raw"])
    assert raw == b"bad\xff name"
    assert ps.ok("cat", "p", os.fsdecode(raw)).outb == b"y\n"


def test_store_copy_json_keeps_a_path_that_is_not_utf8(ps, repo, tmp_path):
    # "to" went missing from `store copy --json` for a target path that is not UTF-8.
    if ps.backend != "sqlite":
        pytest.skip("about SQLite file names")
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    to = os.fsdecode(bytes(tmp_path) + b"/c\xff.db")
    out = json.loads(ps.ok("store", "copy", ps.db, to, "--json", db=False).outb)
    assert out["from"] == str(ps.db) and out["to"] == os.fsdecode(bytes(tmp_path)) + "/c\ufffd.db"
    assert out["rows"]["projects"] == 1


def test_branches_of_a_gone_source_is_exit_1_like_the_apis_502(ps, make_repo):
    # The API answers 502 when a project's source cannot list its branches; the CLI said
    # exit 2 (a usage error) for the same request, against the one rule of docs/cli.md.
    gone = make_repo("gone")
    gone.write("a.txt", "a\n")
    gone.commit("c1")
    ps.add("p", gone.path)
    shutil.rmtree(gone.path)
    r = ps("branches", "p")
    assert r.rc == 1 and one_error_line(r.err), r
    srv = Server(ps)
    try:
        st, _, e = srv.get("/api/v1/projects/p/branches")
        assert st == 502, e
    finally:
        srv.stop()


def test_a_token_no_client_can_send_is_refused_at_start(ps):
    # "abc " (a trailing blank, as an EnvironmentFile line may have) was taken as the token;
    # clients' headers arrive trimmed, so every call was 401 with nothing saying why.
    for env in ({"PROJSYNC_API_TOKEN": "abc "}, {"PROJSYNC_API_TOKEN": " abc"},
                {"PROJSYNC_API_TOKEN": "a\nb"},
                {"PROJSYNC_API_TOKEN": "abc", "PROJSYNC_READ_TOKEN": "rd\t"}):
        r = ps("serve", "--listen", "127.0.0.1:0", env=env, timeout=20)
        assert r.rc == 2 and one_error_line(r.err) and "TOKEN" in r.err, r
    srv = Server(ps, env={"PROJSYNC_API_TOKEN": "a b"})
    try:
        st, _, _ = srv.get("/api/v1/projects", headers={"Authorization": "Bearer a b"})
        assert st == 200
    finally:
        srv.stop()


def test_a_memory_file_with_a_nul_byte_is_not_a_note_and_is_warned_of(ps, repo):
    # ps_memory_parse stopped at the first NUL: `a\0b` became a note "a" without a word, where
    # `memory add --file` refuses the same file as not text.
    repo.write(".memory/ok.md", "# Ok\nfine\n")
    repo.write(".memory/bin.md", b"# Bin\na\x00b\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    r = ps("sync", "p", "--json")
    assert r.rc == 0, r
    warnings = [e["message"] for e in map(json.loads, r.out.splitlines()) if e["kind"] == "warning"]
    assert len(warnings) == 1 and ".memory/bin.md" in warnings[0] and "NUL" in warnings[0], r
    assert [e["source_ref"] for e in ps.json("memory", "list", "p")] == [".memory/ok.md"]
    r = ps("memory", "add", "p", "--title", "t", "--file", repo.path / ".memory/bin.md")
    assert r.rc == 2 and "NUL" in r.err, r

    # A note whose file gains a NUL is gone, not cut; without --json the warning is a line of
    # the sync's report, like the one about files over the size limit.
    repo.write(".memory/ok.md", b"# Ok\nfine\x00tail\n")
    repo.commit("c2")
    r = ps("sync", "p")
    assert r.rc == 0 and any(ln.startswith("warning: ") and ".memory/ok.md" in ln and "NUL" in ln
                             for ln in r.out.splitlines()), r
    assert ps.json("memory", "list", "p") == []
    repo.write(".memory/ok.md", "# Ok\nagain\n")
    repo.commit("c3")
    ps.sync("p")
    assert [e["content"] for e in ps.json("memory", "list", "p")] == ["# Ok\nagain\n"]


def test_tags_that_differ_only_in_bytes_that_are_not_utf8_are_one_tag(ps, repo):
    # "a\xff" and "a\xfe" were both kept (compared raw), then both stored as "a\ufffd": a
    # note showed the same tag twice. The dedupe compares what is stored.
    repo.write(".memory/n.md", b"---\ntags: [a\xff, a\xfe, b]\n---\n# N\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    assert [e["tags"] for e in ps.json("memory", "list", "p")] == [["a\ufffd", "b"]]
    e = ps.json("memory", "add", "p", "--title", "t", "--text", "x",
                "--tag", "a\udcff", "--tag", "a\udcfe", "--tag", "a\ufffd")
    assert e["tags"] == ["a\ufffd"], e
    assert ps.json("memory", "show", e["id"])["tags"] == ["a\ufffd"]
    # Given again in other invalid bytes, they are the same tags: no new version.
    r = ps.json("memory", "edit", e["id"], "--tag", "a\udc80", "--tag", "a\udc81")
    assert r["id"] == e["id"] and r["tags"] == ["a\ufffd"], r


def test_a_tag_given_twice_is_kept_once_like_front_matter(ps, repo):
    # Front matter `tags: [b, a, b]` is imported as [b, a]; a note by hand kept ["a", "a"].
    repo.write(".memory/n.md", "---\ntags: [b, a, b]\n---\n# N\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    assert [e["tags"] for e in ps.json("memory", "list", "p")] == [["b", "a"]]

    e = ps.json("memory", "add", "p", "--title", "t", "--text", "x",
                "--tag", "b", "--tag", "a", "--tag", "b")
    assert e["tags"] == ["b", "a"]
    e2 = ps.json("memory", "edit", e["id"], "--tag", "c", "--tag", "c", "--tag", "a")
    assert ps.json("memory", "show", e2["id"])["tags"] == ["c", "a"]
    # The same tags given again, repeated, are no change: no new version.
    r = ps.json("memory", "edit", e2["id"], "--tag", "c", "--tag", "a", "--tag", "a")
    assert r["id"] == e2["id"]
    # 65 tags of which 64 differ are 64 tags, not too many.
    many = [f"t{i}" for i in range(64)] + ["t0"]
    srv = Server(ps)
    try:
        st, _, body = srv.post("/api/v1/projects/p/memory",
                               {"title": "api", "content": "y", "tags": ["a", "z", "a"]})
        assert st == 201 and body["tags"] == ["a", "z"], body
        st, _, got = srv.get(f"/api/v1/memory/{body['id']}")
        assert got["tags"] == ["a", "z"]
        st, _, body = srv.request("PATCH", f"/api/v1/memory/{body['id']}",
                                  {"tags": ["y", "y", "x"]})
        assert st == 200 and body["tags"] == ["y", "x"] and body["changed"], body
        st, _, body = srv.request("PATCH", f"/api/v1/memory/{body['id']}", {"tags": many})
        assert st == 200 and body["tags"] == many[:64], body
        # Past 16 x 64 given, refused before the dedupe (which compares each with those kept:
        # 100,000 tags kept a server thread busy for seconds), whatever they repeat.
        st, _, e = srv.request("PATCH", f"/api/v1/memory/{body['id']}",
                               {"tags": ["t"] * (16 * 64 + 1)})
        assert st == 422 and e["error"]["code"] == "too_many_tags", e
    finally:
        srv.stop()


def test_a_bad_net_timeout_is_refused_at_start_not_replaced_by_30s(ps, repo):
    # PROJSYNC_NET_TIMEOUT=abc (or -1, nan, 0) silently became 30 s: a user who meant a short
    # bound got a long one and nothing said so.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    for bad in ("abc", "-1", "nan", "0", "5s", "1e9", " 5", "5 ", "1e1", "0x10", "inf"):
        env = {"PROJSYNC_NET_TIMEOUT": bad}
        for args in (("sync", "p"), ("branches", "p"), ("project", "add", "q", repo.path),
                     ("project", "set", "p", "--branch", "main"),
                     ("serve", "--listen", "127.0.0.1:0")):
            r = ps(*args, env=env, timeout=20)
            assert r.rc == 2 and one_error_line(r.err) and "PROJSYNC_NET_TIMEOUT" in r.err, r
    assert ps.json("history", "p") == [] and ps("project", "show", "q").rc == 3
    # Refused before a store is created: no new store is left behind.
    fresh = ps.tmp / "fresh" / "new.db"
    fresh.parent.mkdir()
    for args in (("project", "add", "q", repo.path), ("serve", "--listen", "127.0.0.1:0")):
        r = ps("--db", fresh, *args, env={"PROJSYNC_NET_TIMEOUT": "abc"}, db=False, timeout=20)
        assert r.rc == 2 and "PROJSYNC_NET_TIMEOUT" in r.err, r
        assert list(fresh.parent.iterdir()) == [], (args, list(fresh.parent.iterdir()))
    # Commands that never reach a source are not stopped by it; help is help.
    env = {"PROJSYNC_NET_TIMEOUT": "abc"}
    assert ps("project", "show", "p", env=env).rc == 0
    assert ps("sync", "--help", env=env).rc == 0
    # Settings that touch no source need no network: they were refused by a guess from argv.
    r = ps("project", "set", "p", "--keep-syncs", "3", env=env)
    assert r.rc == 0, r
    assert ps.json("project", "show", "p")["keep_syncs"] == 3
    # sync --server runs the sync on the server (whose own bound applies): this process never
    # reaches a source, so only the unreachable server stops it, not the setting.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = ps("sync", "p", "--server", f"127.0.0.1:{port}", env=env, timeout=20)
    assert r.rc == 1 and "PROJSYNC_NET_TIMEOUT" not in r.err, r
    for good in ("", "0.5", "30", "3600"):
        assert ps("branches", "p", env={"PROJSYNC_NET_TIMEOUT": good}).rc == 0, good


def test_grep_before_any_sync_says_what_files_says(ps, repo):
    # grep said "the project has no succeeded sync yet": no project name, no way out, where
    # files, cat and verify name the project and the command to run.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    files = ps("files", "p")
    grep = ps("grep", "a", "p")
    assert files.rc == grep.rc == 3 and one_error_line(grep.err), grep
    assert grep.err == files.err and "project p" in grep.err and "projsync sync p" in grep.err
    srv = Server(ps)
    try:
        st_f, _, f = srv.get("/api/v1/projects/p/files")
        st_g, _, g = srv.get("/api/v1/projects/p/search/code?q=a")
        assert st_f == st_g == 404 and g["error"] == f["error"], (f, g)
    finally:
        srv.stop()


def test_a_full_ref_as_branch_is_refused_with_the_way_out(ps, repo):
    # `--branch refs/heads/main` said "branch ... not found" and nothing more, though the
    # branch exists: a branch is given by its name, and the message now says so. Refused as a
    # missing branch is (same exit code); a name that is simply not there gets no such hint.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    full = "refs/heads/main"
    ps.add("p", repo.url)
    for args in (("project", "add", "q", str(repo.path), "--branch"),
                 ("project", "add", "q", repo.url, "--branch"),
                 ("project", "set", "p", "--branch"), ("sync", "p", "--branch")):
        r, nope = ps(*args, full), ps(*args, "nope")
        assert r.rc == nope.rc != 0 and one_error_line(r.err), (r, nope)
        assert "not found" in r.err and "without refs/heads/" in r.err, r
        assert "not found" in nope.err and "refs/heads/" not in nope.err, nope
    assert ps("project", "show", "q").rc == 3
    assert ps.json("project", "show", "p")["branch"] is None
    ps.sync("p", "--branch", "main")
    srv = Server(ps)
    try:
        st, _, e = srv.post("/api/v1/projects", {"name": "api", "source": repo.url,
                                                 "branch": full})
        assert st == 422 and e["error"]["code"] == "branch_not_found", e
        assert "without refs/heads/" in e["error"]["message"], e
    finally:
        srv.stop()


def test_grep_with_both_pattern_kinds_is_a_usage_error(ps, repo):
    # `grep -F -E` let the last flag win: a literal searched as a regex (or the other way)
    # without a word. Each flag alone, or repeated, still works.
    repo.write("a.txt", "a.c\nabc\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    for flags in (("-F", "-E"), ("-E", "-F"), ("--fixed-strings", "--extended-regexp"),
                  ("-E", "-F", "-E")):
        r = ps("grep", *flags, "a.c", "p")
        assert r.rc == 2 and one_error_line(r.err) and r.out == "", (flags, r)
        assert "-F" in r.err and "-E" in r.err, r
    assert ps("grep", "-F", "-F", "a.c", "p").out == "a.txt:1:a.c\n"
    assert ps("grep", "-E", "-E", "a.c", "p").out == "a.txt:1:a.c\na.txt:2:abc\n"


def test_diff_refuses_an_empty_path_and_a_leading_slash(ps, repo):
    # `diff A B ''` matched everything and `diff A B /src` nothing, both without a word: git
    # refuses an empty pathspec and a path outside the repository. Paths are relative to the
    # repository root; "." and "src/" still work.
    repo.write("src/a.c", "a\n")
    repo.write("b.txt", "b\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    a = str(ps.sync("p")["id"])
    repo.write("src/a.c", "a2\n")
    repo.write("b.txt", "b2\n")
    repo.commit("c2")
    b = str(ps.sync("p")["id"])
    assert ps.ok("diff", a, b, "src").out == ps.ok("diff", a, b, "src/").out == "M src/a.c\n"
    assert ps.ok("diff", a, b, ".").out == ps.ok("diff", a, b).out
    for bad in ("", "/src", "/"):
        for extra in ((), ("--patch",), ("--stat",)):
            r = ps("diff", a, b, "src", bad, *extra)
            assert r.rc == 2 and one_error_line(r.err) and r.out == "", (bad, extra, r)
            assert f"'{bad}'" in r.err, r
            if bad:
                assert "relative to the repository root" in r.err, r
    srv = Server(ps)
    try:
        base = f"/api/v1/syncs/{a}/diff/{b}"
        st, _, ok = srv.get(base + "?path=src")
        assert st == 200 and [c["path"] for c in ok] == ["src/a.c"], ok
        for q in ("?path=", "?path=%2Fsrc", "?path=src&path=/", "?path=&format=diff",
                  "?path=/src&patch=1"):
            st, _, e = srv.get(base + q)
            assert st == 400 and e["error"]["code"] == "invalid_path", (q, e)
    finally:
        srv.stop()


def test_checkout_before_any_sync_says_what_files_says(ps, repo, tmp_path):
    # checkout said "project 'p' has no succeeded sync to check out", files, grep and verify
    # "project p has no snapshot yet: run 'projsync sync p'" (the way out). Same exit code.
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    files = ps("files", "p")
    co = ps("checkout", "p", tmp_path / "co")
    assert files.rc == co.rc == 3 and one_error_line(co.err), co
    assert co.err == files.err and "projsync sync p" in co.err, (co, files)
    assert not (tmp_path / "co").exists() or not any((tmp_path / "co").iterdir())


def test_files_refuses_a_prefix_with_a_leading_slash(ps, repo):
    # `files p /src` and ?prefix=/src listed nothing, without a word: no stored path starts
    # with '/'. Like diff's paths, a prefix is relative to the repository root.
    repo.write("src/a.c", "a\n")
    repo.commit("c1")
    ps.add("p", repo.path)
    ps.sync("p")
    assert "src/a.c" in ps.ok("files", "p", "src").out
    r = ps("files", "p", "/src")
    assert r.rc == 2 and one_error_line(r.err) and r.out == "", r
    assert "'/src'" in r.err and "relative to the repository root" in r.err, r
    srv = Server(ps)
    try:
        st, _, ok = srv.get("/api/v1/projects/p/files?prefix=src")
        assert st == 200 and [f["path"] for f in ok] == ["src/a.c"], ok
        st, _, e = srv.get("/api/v1/projects/p/files?prefix=%2Fsrc")
        assert st == 400 and e["error"]["code"] == "invalid_path", e
        assert "relative to the repository root" in e["error"]["message"], e
    finally:
        srv.stop()
