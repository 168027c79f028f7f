"""
Code search against git itself: for literal and regular-expression patterns, at the latest and
at an older sync, `projsync grep` prints exactly what `git grep -n` prints for that commit
(`-F` for literals, `-P` for -E: projsync's regular expressions are PCRE2, like git's -P), on a
crafted repository (binary files, a NUL past git's 8000-byte probe, long lines, CRLF, non-ASCII
and invalid UTF-8 text, unusual file names, symlinks) and on a clone of this very checkout.

git's side reads the commit's tree through a temporary index (`read-tree` + `grep --cached`),
so its paths carry no "COMMIT:" prefix and nothing has to be checked out.
"""
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (GIT_ENV, PG_UNDO_BLOB_IDS, PG_UNDO_CODE_IDS, PG_UNDO_CODE_OWN, PG_UNDO_CODE_UNINDEXED,
                      PG_UNDO_DIR_IDS,
                      PG_UNDO_THIN_TREES, ROOT,
                      UNDO_FOLDED_CHECKS, Projsync, Repo, git, one_error_line, psql,
                      pg_undo_blob_packs, pg_undo_code_rows_zstd, sqlite_code_tokenizer,
                      sqlite_undo_code_own,
                      sqlite_undo_code_rows_zstd, sqlite_undo_code_unindexed)
from server_util import Server
from test_store_rows import downgrade_sqlite


def git_grep(repo_path, commit, pattern, regex=False, icase=False, path=None, tmp=None):
    """`git grep -n` of `commit` as bytes (what projsync must print)."""
    index = Path(tmp) / f"index-{commit[:12]}"
    env = dict(os.environ)
    env.update(GIT_ENV)
    env["GIT_INDEX_FILE"] = str(index)
    subprocess.run(["git", "read-tree", commit], cwd=repo_path, env=env, check=True)
    args = ["git", "grep", "-n", "--cached", "-P" if regex else "-F"]
    if icase:
        args.append("-i")
    args += ["-e", pattern]
    if path:
        args += ["--", f":(glob){path}"]
    r = subprocess.run(args, cwd=repo_path, env=env, capture_output=True)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


def ps_grep(ps, name, pattern, *opts, regex=False, icase=False, at=None):
    args = ["grep"] + (["-E"] if regex else ["-F"]) + (["-i"] if icase else [])
    args += list(opts) + (["--at", str(at)] if at else []) + ["--", pattern, name]
    r = ps(*args)
    assert r.rc in (0, 1), r
    return r


def check_same(ps, tmp_path, repo_path, name, commit, pattern, at=None, **kw):
    want = git_grep(repo_path, commit, pattern, regex=kw.get("regex", False),
                    icase=kw.get("icase", False), path=kw.get("path"), tmp=tmp_path)
    opts = ["--path", kw["path"]] if kw.get("path") else []
    r = ps_grep(ps, name, pattern, *opts, regex=kw.get("regex", False),
                icase=kw.get("icase", False), at=at)
    assert r.outb == want, (pattern, kw, r, want[:2000])
    assert r.rc == (0 if want else 1), r
    return r


LONG = ("x" * 150_000 + " needle-in-a-long-line " + "y" * 50_000 + "\n").encode()
LATE_NUL = b"text that git calls text\n" + b"a" * 9000 + b"\x00 needle after the probe\n"


def craft_v1(repo):
    repo.write("README.md", "# Demo\nhello world\nHello World\nHELLO\n")
    repo.write("src/main.c", "#include <stdio.h>\nint main(void)\n{\n\tputs(\"hello\");\n"
               "\treturn 0; /* TODO: exit code */\n}\n")
    repo.write("src/util.c", "int foobar(int x) { return x + 1; }\nint fooobar;\n"
               "static int alpha_12, beta_345;\n")
    repo.write("crlf.txt", b"first line\r\nsecond line x\r\nthird\r\n")
    repo.write("utf8.txt", "caf\u00e9 cr\u00e8me\n\u65e5\u672c\u8a9e text\n\u00c9T\u00c9 \u00e9t\u00e9\n")
    repo.write("latin1.txt", b"caf\xe9 bytes hello\n\xff\xfe broken hello\n")
    repo.write("bin/blob.bin", b"\x00\x01\x02hello binary\x00\xff\n" * 20)
    repo.write("late-nul.txt", LATE_NUL)
    repo.write("long.txt", LONG)
    repo.write("no-newline.txt", "last line hello")
    repo.write("empty.txt", "")
    repo.write("caf\u00e9/na\u00efve.txt", "hello from a non-ASCII path\n")
    repo.write("quote\"d.txt", "hello quoted name\n")
    repo.write("fts.txt", 'a"b"c NEAR(x, y) hello* OR ^col:umn\n')
    repo.symlink("link-to-readme", "README.md hello")
    return repo.commit("v1")


def craft_v2(repo):
    repo.write("README.md", "# Demo\nhello again\n")
    repo.rm("src/util.c")
    repo.write("src/new.c", "int foobar2(void);\n/* TODO later */\n")
    repo.write("bin/blob.bin", b"no match here\x00")
    return repo.commit("v2")


PATTERNS = [
    # (pattern, options)
    ("hello", {}),
    ("Hello World", {}),
    ("hello", {"icase": True}),
    ("TODO", {}),
    ("needle", {}),
    ("line x", {}),
    ("caf\u00e9", {}),
    ("\u00e9t\u00e9", {"icase": True}),
    ('a"b"c NEAR(', {}),
    ("hello* OR", {}),
    ("ab", {}),
    ("e", {}),
    ("hello", {"path": "src/**"}),
    ("hello", {"path": "*.txt"}),
    # A plain path is git's pathspec: a file, or everything under a directory ("src" found
    # nothing: it had to match a whole path).
    ("hello", {"path": "src"}),
    ("TODO", {"path": "src/"}),
    ("hello", {"path": "caf\u00e9"}),
    ("hello", {"path": "src/main.c"}),
    ("hello", {"path": "."}),
    ("hello", {"path": "sr"}),
    ("^int ", {"regex": True}),
    ("fo+bar", {"regex": True}),
    (r"(alpha|beta)_\d+", {"regex": True}),
    (r"x\r?$", {"regex": True}),
    ("x$", {"regex": True}),
    ("caf.", {"regex": True}),
    (r"[[:digit:]]{3}", {"regex": True}),
    (r"\bhello\b", {"regex": True, "icase": True}),
    (r"(?i)world", {"regex": True}),
    (r"needle-in-a-(long|short)-line", {"regex": True}),
    (r"re\.turn|puts", {"regex": True}),
    (r"hel{2}o", {"regex": True}),
    (r"\x68ello", {"regex": True}),
    (r"(?x) h e l l o", {"regex": True}),
    (r"hello(?= world)", {"regex": True}),
    (".", {"regex": True}),
]


@pytest.fixture
def crafted(ps, make_repo):
    repo = make_repo("crafted")
    c1 = craft_v1(repo)
    ps.add("crafted", str(repo.path))
    s1 = ps.sync("crafted")
    c2 = craft_v2(repo)
    s2 = ps.sync("crafted")
    return repo, (c1, s1), (c2, s2)


@pytest.mark.parametrize("pattern,kw", PATTERNS, ids=[p for p, _ in PATTERNS])
def test_grep_equals_git_grep_on_crafted_repo(ps, tmp_path, crafted, pattern, kw):
    repo, (c1, s1), (c2, s2) = crafted
    check_same(ps, tmp_path, repo.path, "crafted", c2, pattern, **kw)
    check_same(ps, tmp_path, repo.path, "crafted", c1, pattern, at=s1["id"], **kw)


def test_grep_on_this_checkout_latest_and_older(ps, tmp_path):
    clone = tmp_path / "self"
    git(tmp_path, "clone", "-q", "--no-hardlinks", str(ROOT), str(clone))
    head = git(clone, "rev-parse", "HEAD").strip()
    count = int(git(clone, "rev-list", "--count", "HEAD").strip())
    old = git(clone, "rev-parse", f"HEAD~{min(25, count - 1)}").strip()
    git(clone, "reset", "-q", "--hard", old)
    ps.add("self", str(clone))
    s_old = ps.sync("self")
    git(clone, "reset", "-q", "--hard", head)
    ps.sync("self")
    for pattern, kw in [("ps_store_", {}), ("sqlite3_step(", {}), ("TODO", {"icase": True}),
                        (r"static int [a-z_]+\(struct ps_store", {"regex": True}),
                        (r"^#include <(std|str)", {"regex": True}), ("fo", {}),
                        ("projsync", {"path": "docs/*.md"})]:
        check_same(ps, tmp_path, clone, "self", head, pattern, **kw)
        check_same(ps, tmp_path, clone, "self", old, pattern, at=s_old["id"], **kw)


def test_path_naming_a_directory_selects_the_files_under_it(ps, crafted):
    # CLI and API alike: ?path=src is the directory, a glob still matches whole paths.
    server = Server(ps)
    try:
        for path, want in (("src", {"src/main.c"}), ("src/", {"src/main.c"}),
                           ("src/*", {"src/main.c"}), ("sr", set()), ("src/n*", set()),
                           ("src/main.c", {"src/main.c"}),
                           # git reads ./src as src (it matched nothing)
                           ("./src", {"src/main.c"}), ("././src/", {"src/main.c"}),
                           (".//src/main.c", {"src/main.c"})):
            got = {m["path"] for m in ps.json("grep", "hello", "crafted", "--path", path)} \
                if want else set()
            if not want:
                assert ps("grep", "hello", "crafted", "--path", path).rc == 1, path
            assert got == want, (path, got)
            st, _, body = server.get(f"/api/v1/projects/crafted/search/code?q=hello&path={path}")
            assert st == 200 and {m["path"] for m in body} == want, (path, body)
    finally:
        server.stop()


def test_grep_json_shape_and_max(ps, crafted):
    matches = ps.json("grep", "hello", "crafted")
    assert all(set(m) == {"path", "line", "column", "text", "binary"} for m in matches)
    readme = [m for m in matches if m["path"] == "README.md"]
    assert readme == [{"path": "README.md", "line": 2, "column": 1, "text": "hello again",
                       "binary": False}]
    bad = [m for m in matches if m["path"] == "latin1.txt"]
    assert bad[0]["text"] == "caf\ufffd bytes hello" and bad[0]["column"] == 12
    # --max stops after N matches and says so on stderr.
    r = ps("grep", "hello", "crafted", "--max", "2", "--json")
    assert r.rc == 0 and json.loads(r.out) == matches[:2]
    assert "--max" in r.err


def test_pattern_without_literal_scans_with_a_note(ps, crafted):
    r = ps("grep", "-E", "h.l.o", "crafted")
    assert r.rc == 0 and "README.md:2:hello again" in r.out
    assert "no 3-character literal" in r.err
    r = ps("grep", "hello", "crafted")
    assert r.rc == 0 and r.err == ""


def test_bad_patterns_are_usage_errors_without_sql(ps, crafted):
    r = ps("grep", "-E", "fo(o", "crafted")
    assert r.rc == 2 and one_error_line(r.err) and "missing closing parenthesis" in r.err, r
    for pat in ("", "two\nlines"):
        r = ps("grep", pat, "crafted")
        assert r.rc == 2 and one_error_line(r.err), r
    r = ps("grep", "--timeout", "0", "x", "crafted")
    assert r.rc == 2, r
    r = ps("grep", "hello", "nosuch")
    assert r.rc == 3 and one_error_line(r.err), r
    r = ps("grep", "hello", "crafted", "--at", "999")
    assert r.rc == 3 and one_error_line(r.err), r
    # FTS5 syntax in a pattern is just text.
    for pat in ('"', '""', "NEAR(", "a OR b", "col:umn", "*", "^col"):
        r = ps("grep", pat, "crafted")
        assert r.rc in (0, 1) and "fts5" not in r.err.lower() and "sql" not in r.err.lower(), r


def test_pattern_not_utf8_finds_bytes_as_fixed_string_and_is_refused_by_pcre(ps, tmp_path,
                                                                             crafted):
    repo, (c1, s1), (c2, s2) = crafted
    # \udcXX is the raw byte 0xXX on the command line: latin1.txt holds caf\xe9 and \xff\xfe.
    for pat in ("caf\udce9", "\udcff\udcfe broken"):
        r = check_same(ps, tmp_path, repo.path, "crafted", c2, pat)
        assert r.rc == 0 and b"latin1.txt:" in r.outb, r
    # PCRE2 takes UTF-8 only: the pattern is refused as what it is, not "no match", and not
    # as an invalid regular expression when it was a literal.
    for opts in (["-F", "-i"], ["-E"], ["-E", "-i"]):
        r = ps("grep", *opts, "caf\udce9", "crafted")
        assert r.rc == 2 and one_error_line(r.err) and "not valid UTF-8" in r.err, r
        assert "byte 0xe9 at offset 3" in r.err and "regular expression at" not in r.err, r
    s = Server(ps)
    try:
        st, h, body = s.get("/api/v1/projects/crafted/search/code?q=caf%E9")
        assert st == 200 and [(m["path"], m["line"], m["column"]) for m in body] == \
            [("latin1.txt", 1, 1)], body
        # The Link of a page carries the bytes on: the same matches as the CLI.
        want = ps.json("grep", "--at", s1["id"], "\udcff", "crafted")
        assert len(want) == 2
        got, pages = s.pages(f"/api/v1/projects/crafted/search/code?q=%FF&at={s1['id']}&limit=1")
        assert got == want and pages == 2
        for extra in ("&regex=true", "&ignore_case=true"):
            st, h, body = s.get("/api/v1/projects/crafted/search/code?q=caf%E9" + extra)
            assert st == 400 and body["error"]["code"] == "invalid_pattern", body
            assert "not valid UTF-8" in body["error"]["message"], body
    finally:
        s.stop()


def test_catastrophic_pattern_is_bounded(ps, make_repo):
    repo = make_repo("evil")
    repo.write("a.txt", "a" * 5000 + "!\n")
    for i in range(300):
        repo.write(f"many/f{i}.txt", ("line of filler text %d\n" % i) * 400)
    repo.commit("c")
    ps.add("evil", str(repo.path))
    ps.sync("evil")
    r = ps("grep", "-E", r"(a|aa)+$", "evil", timeout=60)
    assert r.rc == 1 and one_error_line(r.err) and "too costly" in r.err, r
    r = ps("grep", "-E", r"f.l+er", "evil", "--timeout", "0.001", timeout=60)
    assert r.rc == 1 and one_error_line(r.err) and "longer than" in r.err, r


def store_sql(ps, sql):
    """Runs SQL on the test's store directly (either backend); the first column of each row."""
    if ps.backend == "pg":
        return [line.split("|")[0] for line in psql(ps.db, sql).splitlines() if line]
    with sqlite3.connect(ps.db) as db:
        return [str(row[0]) for row in db.execute(sql).fetchall()]


def code_blobs(ps):
    return int(store_sql(ps, "SELECT count(*) FROM code_blobs")[0])


def test_no_code_index_and_catching_up(ps, make_repo, tmp_path):
    repo = make_repo("plain")
    repo.write("a.txt", "alpha hello\n")
    repo.write("b/c.txt", "gamma hello\n")
    c1 = repo.commit("c1")
    p = ps.json("project", "add", "plain", str(repo.path), "--no-code-index")
    assert p["code_index"] is False
    ps.sync("plain")
    assert code_blobs(ps) == 0
    # Still searchable: every file is read, and the note says why.
    r = ps("grep", "hello", "plain")
    assert r.out == "a.txt:1:alpha hello\nb/c.txt:1:gamma hello\n" and "no code index" in r.err
    # Switched back on: the next sync, even with nothing new upstream, indexes the backlog.
    assert ps.json("project", "set", "plain", "--code-index")["code_index"] is True
    r = ps("sync", "plain", "--json")
    assert r.rc == 0, r
    events = [json.loads(line) for line in r.out.splitlines()]
    assert any(e["kind"] == "progress" and e["phase"] == "fetch" and e["files_total"] == 2
               for e in events), events
    assert code_blobs(ps) == 2
    check_same(ps, tmp_path, repo.path, "plain", c1, "hello")


# The columns migration 0011 (the commits of a sync) adds to syncs.
COMMIT_COLUMNS = ("head_subject", "head_author_name", "head_author_email", "head_author_date",
                  "head_committer_name", "head_committer_email", "head_committer_date",
                  "commit_count", "commits_truncated")


def test_existing_store_is_indexed_on_next_sync(ps, make_repo, tmp_path):
    """A store from before the index: the migration marks its projects, their next sync indexes
    every stored blob of their history (older snapshots too)."""
    repo = make_repo("old")
    repo.write("x.txt", "old content marker\n")
    c1 = repo.commit("c1")
    ps.add("old", str(repo.path))
    s1 = ps.sync("old")
    repo.write("x.txt", "new content marker\n")
    c2 = repo.commit("c2")
    ps.sync("old")
    # Back to schema 7 (before the index and the directory trees, blob encoding and commits
    # that came after it); the next command migrates it again. The blobs are small, so stored
    # raw (encoding 0): their bytes are what schema 7 held.
    assert store_sql(ps, "SELECT count(*) FROM blobs WHERE encoding <> 0") == ["0"]
    undo_commits = UNDO_FOLDED_CHECKS + "DROP TABLE sync_commits; " + "".join(
        f"ALTER TABLE syncs DROP COLUMN {c}; " for c in COMMIT_COLUMNS)
    # Schema 13's file versions (20-byte ids, other indexes) back to the hex ids of schema 7.
    undo_ids = ("DROP INDEX file_versions_superseded; "
                "CREATE INDEX file_versions_current ON file_versions(project_id, superseded_by, path); "
                "CREATE INDEX file_versions_superseded ON file_versions(superseded_by) "
                "WHERE superseded_by IS NOT NULL; ")
    if ps.backend == "pg":
        undo_ids += ("ALTER TABLE file_versions ALTER COLUMN sha TYPE text USING encode(sha, 'hex'); "
                     "DROP FUNCTION ps_hex(bytea); DROP FUNCTION ps_unhex(text); ")
    else:
        undo_ids += "UPDATE file_versions SET sha = lower(hex(sha)); "
    undo_commits += undo_ids
    if ps.backend == "pg":
        pg_undo_blob_packs(ps.db)
        psql(ps.db, "; ".join(PG_UNDO_DIR_IDS) + "; " + undo_commits +
             "; ".join(PG_UNDO_CODE_IDS) + "; "
             "DROP FUNCTION ps_dir_entries(bigint, bigint, bytea); "
             "DROP TABLE dir_trees; DROP TABLE code_blobs; "
             "DROP TABLE code_segments; DROP TABLE code_postings; "
             "ALTER TABLE projects DROP COLUMN code_index; "
             "ALTER TABLE projects DROP COLUMN code_index_pending; "
             "ALTER TABLE blobs DROP COLUMN encoding; ALTER TABLE blobs DROP COLUMN base; "
             "UPDATE projsync_schema SET version = 7")
    else:
        db = sqlite3.connect(ps.db)
        sqlite_undo_code_own(db)
        db.close()
        sqlite_code_tokenizer(ps.db, "trigram")
        db = sqlite3.connect(ps.db)
        sqlite_undo_code_unindexed(db)
        db.executescript(undo_commits + """
            DROP TABLE dir_trees; DROP TABLE code_blobs; DROP TABLE code_fts;
            ALTER TABLE projects DROP COLUMN code_index;
            ALTER TABLE projects DROP COLUMN code_index_pending;
            CREATE TABLE old_blobs (sha TEXT PRIMARY KEY, size INTEGER NOT NULL,
                                    content BLOB NOT NULL) WITHOUT ROWID;
            INSERT INTO old_blobs SELECT sha, size, content FROM blobs;
            DROP TABLE blobs; DROP TABLE blob_conversion;
            ALTER TABLE old_blobs RENAME TO blobs;
            PRAGMA user_version = 7;""")
        db.close()
    ps.ok("migrate")
    assert code_blobs(ps) == 0
    # Results are exact even before the index catches up.
    check_same(ps, tmp_path, repo.path, "old", c1, "content marker", at=s1["id"])
    ps.sync("old")
    assert code_blobs(ps) == 2
    assert store_sql(ps, "SELECT code_index_pending FROM projects") == ["0"]
    check_same(ps, tmp_path, repo.path, "old", c1, "content marker", at=s1["id"])
    check_same(ps, tmp_path, repo.path, "old", c2, "content marker")


def test_api_search_code_pages_like_cli_json(ps, crafted):
    want = ps.json("grep", "hello", "crafted")
    s = Server(ps)
    try:
        got, pages = s.pages("/api/v1/projects/crafted/search/code?q=hello&limit=3")
        assert got == want and pages == -(-len(want) // 3)
        st, h, body = s.get("/api/v1/projects/crafted/search/code?q=fo%2Bbar&regex=true")
        assert st == 200 and [m["path"] for m in body] == ["src/new.c"]
        st, h, body = s.get("/api/v1/projects/crafted/search/code?q=fo(o&regex=true")
        assert st == 400 and body["error"]["code"] == "invalid_pattern", body
        assert "missing closing parenthesis" in body["error"]["message"]
        st, h, body = s.get("/api/v1/projects/crafted/search/code?q=h&regex=maybe")
        assert st == 400, body
        st, h, body = s.get("/api/v1/projects/crafted/search/code")
        assert st == 400, body
        st, h, body = s.get("/api/v1/projects/crafted/search/code?q=ab")
        assert st == 200 and "x-projsync-note" in h
    finally:
        s.stop()


# Content for the code index's tokenizer (sqlite_code.c): trigrams are made of printable ASCII
# and tabs only, letters folded, each emitted once per blob; every other byte only separates.
TOKENIZER_FILES = {
    "kelvin.txt": "\u212aey inside, and \u017ftruct too\n".encode(),   # KELVIN SIGN, LONG S
    "mixed.txt": b"MiXeD CaSe Needle\nneedle needle needle needle\n",
    "invalid.txt": b"ab\xffcd whole\xc3 word\x80here\n\xe2\x84 broken kelvin\n",
    "crlf.txt": b"crlf line one\r\ncrlf line two\r\n\r\nend\r\n",
    "tabs.txt": b"col\tsep\tvalue\n",
    "ctrl.txt": b"bell\x07ring vertical\x0btab\n",
    "quote.txt": b'say "hi" and \'bye\'\n',
    "binary.bin": b"\x00\x01run of text here\x00\xfeab\x00cd\x02MiXeD CaSe Needle\x03" * 3,
    "late-nul.txt": b"ordinary text\n" + b"z" * 9000 + b"\x00trailing needle after nul\n",
    "repeat.txt": b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
    "utf8.txt": "na\u00efve caf\u00e9 \u00c9T\u00c9 \u65e5\u672c\n".encode(),
}
TOKENIZER_PATTERNS = [
    ("key", {"icase": True}), ("key", {}), ("KEY", {"icase": True}),
    ("struct", {"icase": True}), ("STRUCT", {"icase": True}), ("struct", {}),
    ("needle", {}), ("Needle", {}), ("NEEDLE", {"icase": True}), ("mixed case", {"icase": True}),
    ("abcd", {}), ("cd whole", {}), ("whole", {}), ("wordhere", {}), ("word", {}),
    ("broken kelvin", {}), ("kelvin", {"icase": True}),
    ("line one", {}), ("one", {}), (r"one\r$", {"regex": True}), (r"two.$", {"regex": True}),
    ("col\tsep", {}), ("sep\tval", {}), ("bellring", {}), ("ring vert", {}),
    ('"hi"', {}), ("'bye'", {}), ("run of text", {}), ("abcd", {"icase": True}),
    ("trailing needle", {}), ("aaaaaaaaa", {}), ("caf\u00e9", {}), ("\u00e9t\u00e9", {"icase": True}),
    ("na\u00efve", {}), (r"ab.cd", {"regex": True}), (r"(?i)MIXED\s+case", {"regex": True}),
    ("here", {}), ("nope nothing", {}),
]


def test_a_file_whose_blob_was_lost_is_counted_not_searched_silently(ps, make_repo):
    # A blob deleted from the store behind projsync's back: grep skipped its file like one over
    # the size limit and said nothing, so "no match there" could be a lost file. It still
    # searches the rest (exit 0) but warns, with the count, as the API's note and header do.
    from test_verify import delete_blob
    repo = make_repo("lost")
    repo.write("keep.txt", "a needle here\n")
    repo.write("other.txt", "another needle\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    ps.sync("p")
    delete_blob(ps, repo.git("rev-parse", "HEAD:keep.txt").strip())
    for pattern, regex in (("needle", ()), ("n.", ("-E",))):  # the index narrows; it cannot
        r = ps("grep", *regex, pattern, "p")
        assert r.rc == 0 and r.out.startswith("other.txt:1:"), r
        assert "keep.txt" not in r.out, r
        assert "warning: 1 file not searched: content lost from the store; 'projsync verify p " \
            "--blobs'" in r.err, r
    srv = Server(ps)
    try:
        st, h, body = srv.get("/api/v1/projects/p/search/code?q=needle")
        assert st == 200 and [m["path"] for m in body] == ["other.txt"], body
        assert h.get("x-projsync-missing") == "1", h
        assert "1 file not searched: content lost from the store" in h.get("x-projsync-note"), h
    finally:
        srv.stop()


def test_code_index_is_exact_on_crafted_content(ps, make_repo, tmp_path):
    """The index narrows (every blob is in it) and results stay exactly git grep's: non-ASCII
    letters -i folds to ASCII, invalid UTF-8, CRLF, tabs, control bytes, binary, a NUL after
    git's probe, repeated trigrams; at the latest and an older sync."""
    repo = make_repo("tok")
    for path, data in TOKENIZER_FILES.items():
        repo.write(path, data)
    c1 = repo.commit("c1")
    ps.add("tok", str(repo.path))
    s1 = ps.sync("tok")
    repo.write("mixed.txt", b"now without the word\n")
    repo.write("kelvin.txt", "K\u212aEY twice \u212a\u212a\n".encode())
    c2 = repo.commit("c2")
    ps.sync("tok")
    assert code_blobs(ps) == len(TOKENIZER_FILES) + 2
    for pattern, kw in TOKENIZER_PATTERNS:
        check_same(ps, tmp_path, repo.path, "tok", c2, pattern, **kw)
        check_same(ps, tmp_path, repo.path, "tok", c1, pattern, at=s1["id"], **kw)


@pytest.mark.sqlite_only
def test_schema_12_store_searches_exactly_and_is_reindexed(ps, make_repo, tmp_path):
    """A store whose code_fts was made by FTS5's own trigram tokenizer (schema 13): migration
    0014 empties the index, results stay exact meanwhile, and the next sync indexes again."""
    repo = make_repo("s12")
    for path, data in TOKENIZER_FILES.items():
        repo.write(path, data)
    c1 = repo.commit("c1")
    ps.add("s12", str(repo.path))
    ps.sync("s12")
    indexed = code_blobs(ps)
    version = int(store_sql(ps, "PRAGMA user_version")[0])
    # Back to schema 13: first undo what came after 0014 (compact rows, folded checks), then
    # code_fts made by `trigram`, with the documents schema 13 gave it (of the blobs stored
    # raw; the compressed ones Python cannot read are left without).
    downgrade_sqlite(ps.db)  # 0017: code_fts again; 0016: object ids as hex again
    db = sqlite3.connect(ps.db)
    db.executescript(UNDO_FOLDED_CHECKS)  # 0015
    db.close()
    sqlite_code_tokenizer(ps.db, "trigram")
    db = sqlite3.connect(ps.db)
    sqlite_undo_code_unindexed(db)
    db.execute("INSERT INTO code_fts (code_fts) VALUES ('delete-all')")
    db.execute("INSERT INTO code_fts (rowid, content) SELECT c.id, CAST(replace(b.content, x'00', "
               "x'20') AS TEXT) FROM code_blobs c JOIN blobs b ON b.sha = c.sha "
               "WHERE b.encoding = 0")
    db.execute("UPDATE projects SET code_index_pending = 0")
    db.execute("PRAGMA user_version = 13")
    db.commit()
    db.close()
    r = ps("grep", "-F", "needle", "s12")
    assert r.rc == 0, r
    assert code_blobs(ps) == 0
    assert store_sql(ps, "SELECT code_index_pending FROM projects") == ["1"]
    assert store_sql(ps, "PRAGMA user_version") == [str(version)]
    for pattern, kw in TOKENIZER_PATTERNS:
        check_same(ps, tmp_path, repo.path, "s12", c1, pattern, **kw)
    r = ps("sync", "s12", "--json")
    assert r.rc == 0, r
    assert any(e["kind"] == "progress" and e["phase"] == "fetch"
               for e in map(json.loads, r.out.splitlines()))
    assert code_blobs(ps) == indexed
    assert store_sql(ps, "SELECT code_index_pending FROM projects") == ["0"]
    for pattern, kw in TOKENIZER_PATTERNS:
        check_same(ps, tmp_path, repo.path, "s12", c1, pattern, **kw)


def test_schema_16_pg_store_is_reindexed(ps, make_repo, tmp_path):
    """A PostgreSQL store of schema 16 (pg_trgm's GIN index over text copies in
    code_blobs.content): migration 0017 drops the copies and the GIN index and empties the index,
    results stay exact meanwhile, and the next sync indexes again in projsync's own format."""
    if ps.backend != "pg":
        pytest.skip("PostgreSQL's migration")
    repo = make_repo("s16")
    for path, data in TOKENIZER_FILES.items():
        repo.write(path, data)
    c1 = repo.commit("c1")
    ps.add("s16", str(repo.path))
    ps.sync("s16")
    indexed = code_blobs(ps)
    version = store_sql(ps, "SELECT max(version) FROM projsync_schema")
    pg_undo_blob_packs(ps.db)
    psql(ps.db, "; ".join(PG_UNDO_CODE_OWN + PG_UNDO_THIN_TREES +
                          ["UPDATE projects SET code_index_pending = 0",
                           "DELETE FROM projsync_schema WHERE version > 16"]))
    r = ps("grep", "-F", "needle", "s16")
    assert r.rc == 0, r
    assert store_sql(ps, "SELECT max(version) FROM projsync_schema") == version
    assert code_blobs(ps) == 0
    assert store_sql(ps, "SELECT code_index_pending FROM projects") == ["1"]
    assert store_sql(ps, "SELECT count(*) FROM pg_indexes WHERE indexname = 'code_blobs_trgm'") == ["0"]
    assert store_sql(ps, "SELECT count(*) FROM information_schema.columns WHERE "
                         "table_name = 'code_blobs' AND column_name = 'content'") == ["0"]
    for pattern, kw in TOKENIZER_PATTERNS:
        check_same(ps, tmp_path, repo.path, "s16", c1, pattern, **kw)
    ps.sync("s16")
    assert code_blobs(ps) == indexed
    assert store_sql(ps, "SELECT code_index_pending FROM projects") == ["0"]
    assert int(store_sql(ps, "SELECT count(*) FROM code_segments")[0]) > 0
    for pattern, kw in TOKENIZER_PATTERNS:
        check_same(ps, tmp_path, repo.path, "s16", c1, pattern, **kw)


# Plays a server without the contrib extensions (a minimal or managed install): any CREATE
# EXTENSION fails as it does there.
NO_EXTENSIONS = [
    "CREATE FUNCTION no_extensions() RETURNS event_trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'extension is not available'; END $$",
    "CREATE EVENT TRIGGER no_extensions ON ddl_command_start WHEN TAG IN ('CREATE EXTENSION') "
    "EXECUTE FUNCTION no_extensions()"]


def test_new_pg_store_needs_no_extension(ps, make_repo, tmp_path, pg_database):
    """Code search has used projsync's own index since schema 17: a new PostgreSQL store
    installs no pg_trgm, and a server that cannot install extensions holds a working store."""
    if ps.backend != "pg":
        pytest.skip("PostgreSQL's migrations")
    repo = make_repo("ext")
    for path, data in TOKENIZER_FILES.items():
        repo.write(path, data)
    c1 = repo.commit("c1")
    bare = Projsync(tmp_path / "bare", pg_database())
    psql(bare.db, "; ".join(NO_EXTENSIONS))
    for store in (ps, bare):
        r = store("project", "add", "ext", str(repo.path))
        assert r.rc == 0, r
        store.sync("ext")
        assert store_sql(store, "SELECT count(*) FROM pg_extension "
                                "WHERE extname = 'pg_trgm'") == ["0"]
        assert code_blobs(store) > 0
        for pattern, kw in TOKENIZER_PATTERNS:
            check_same(store, tmp_path, repo.path, "ext", c1, pattern, **kw)


def test_max_across_candidate_batches_keeps_git_order(ps, make_repo, tmp_path):
    """--max asks the store for candidates in batches in path order (256, then 1,024, ...): a
    literal most files hold, one that a file in eight holds and a regex give git grep's first
    N lines, whichever batch they come from, at the latest and an older sync; API pages too."""
    repo = make_repo("many")
    for i in range(700):
        extra = "\nrare_%d needle" % i if i % 8 == 3 else ""
        repo.write("d%d/f%04d.c" % (i % 7, i), "int common_%d;\nreturn common;%s\n" % (i, extra))
    c1 = repo.commit("c1")
    ps.add("many", str(repo.path))
    s1 = ps.sync("many")
    repo.rm("d0/f0000.c")
    repo.write("d3/f0003.c", "changed\n")
    c2 = repo.commit("c2")
    ps.sync("many")
    for commit, at in ((c2, None), (c1, s1["id"])):
        for pattern, regex, n in (("common", False, 1000), ("needle", False, 80),
                                  (r"rare_\d+ ne+dle", True, 80), ("return common;", False, 1)):
            want = git_grep(repo.path, commit, pattern, regex=regex, tmp=tmp_path)
            lines = want.splitlines(keepends=True)
            assert len(lines) > n or pattern == "return common;", (pattern, len(lines))
            r = ps_grep(ps, "many", pattern, "--max", str(n), regex=regex, at=at)
            assert r.outb == b"".join(lines[:n]), (pattern, r.outb[:300])
    want = ps.json("grep", "needle", "many")
    s = Server(ps)
    try:
        got, _ = s.pages("/api/v1/projects/many/search/code?q=needle&limit=40")
        assert got == want and len(want) == 87
    finally:
        s.stop()


def test_pg_unindexed_count_migrated_while_a_node_writes(ps, make_repo):
    """Migration 0022 counts the stored blobs the code index lacks and adds the triggers that
    keep the count; a node of the previous version may be storing blobs meanwhile. Its rows are
    counted once, whenever it commits: a count too low would let searches skip blobs the index
    lacks."""
    if ps.backend != "pg":
        pytest.skip("PostgreSQL's migration")
    repo = make_repo("mig")
    repo.write("a.txt", "needle one\n")
    repo.commit("c1")
    ps.add("mig", str(repo.path))
    ps.sync("mig")
    version = store_sql(ps, "SELECT max(version) FROM projsync_schema")
    names = sorted(p.name for p in (ROOT / "src/store/postgres/migrations").glob("*.sql"))
    before = names.index("0022_code_unindexed.sql")
    pg_undo_blob_packs(ps.db)
    psql(ps.db, "; ".join(PG_UNDO_BLOB_IDS + PG_UNDO_CODE_UNINDEXED +
                          [f"DELETE FROM projsync_schema WHERE version > {before}"]))
    old = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", ps.db],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    old.stdin.write("BEGIN; INSERT INTO blobs (sha, size, content) "
                    "VALUES (repeat('ab', 20), 3, 'abc'); SELECT 'stored';\n")
    old.stdin.flush()
    assert old.stdout.readline().strip() == "stored"
    migrating = ps.popen("grep", "-F", "needle", "mig")
    time.sleep(1)  # the migration runs into the open transaction
    old.stdin.write("COMMIT;\n")
    old.stdin.close()
    assert old.wait(timeout=30) == 0
    out, err = migrating.communicate(timeout=60)
    assert migrating.returncode == 0, err
    assert store_sql(ps, "SELECT max(version) FROM projsync_schema") == version
    truth = store_sql(ps, "SELECT count(*) FROM blobs b WHERE NOT EXISTS "
                          "(SELECT 1 FROM code_blobs c WHERE c.sha = b.sha)")
    assert truth == ["1"]
    assert store_sql(ps, "SELECT sum(n) FROM code_unindexed") == truth


def code_rows(ps):
    """The code index's rows as stored, in key order, as hex."""
    if ps.backend == "pg":
        return store_sql(ps, "SELECT encode(data, 'hex') FROM code_postings ORDER BY seg, first")
    return store_sql(ps, "SELECT lower(hex(data)) FROM code_postings ORDER BY key")


def test_code_rows_compressed_at_open(ps, make_repo, tmp_path):
    """Schema 25: a store whose code index rows are raw, as a projsync before it wrote them, has
    them compressed when it is next opened, byte for byte as a new store writes them, and every
    search answers exactly as before (and as git grep does)."""
    repo = make_repo("zr")
    for i in range(200):
        repo.write(f"src/f{i:03}.c", "".join(
            f"int fn_{i}_{k}(int x{k}) {{ return x{k} * {i * k + 7}; }} /* Note {k} */\n"
            for k in range(40)))
    repo.write("README", "nothing of the above\n")
    commit = repo.commit("c1")
    ps.add("zr", str(repo.path))
    ps.sync("zr")
    searches = [("fn_17_3(", {}), ("return x39 * 1", {}), (r"fn_1\d\d_39\(", {"regex": True}),
                ("note 12 *", {"icase": True}), ("not in any file", {}), ("above", {})]
    before = [check_same(ps, tmp_path, repo.path, "zr", commit, p, **kw).outb for p, kw in searches]
    written = code_rows(ps)
    assert sum(r.startswith("00") for r in written) >= len(written) - 1, written
    version = store_sql(ps, "SELECT max(version) FROM projsync_schema" if ps.backend == "pg"
                        else "PRAGMA user_version")
    names = sorted(p.name for p in (ROOT / "src/store/sqlite/migrations").glob("*.sql"))
    step = names.index("0025_code_rows_zstd.sql")
    if ps.backend == "pg":
        pg_undo_blob_packs(ps.db)
        psql(ps.db, "; ".join(PG_UNDO_DIR_IDS))
        pg_undo_code_rows_zstd(ps.db)
        psql(ps.db, f"DELETE FROM projsync_schema WHERE version > {step}")
    else:
        con = sqlite3.connect(ps.db)
        sqlite_undo_code_rows_zstd(con)
        con.execute(f"PRAGMA user_version = {step}")
        con.commit()
        con.close()
    raw = code_rows(ps)
    assert len(raw) == len(written) and not any(r.startswith("00") for r in raw)
    after = [check_same(ps, tmp_path, repo.path, "zr", commit, p, **kw).outb for p, kw in searches]
    assert after == before
    assert code_rows(ps) == written
    assert store_sql(ps, "SELECT max(version) FROM projsync_schema" if ps.backend == "pg"
                     else "PRAGMA user_version") == version
    assert store_sql(ps, "SELECT count(*) FROM pg_tables WHERE tablename = 'code_rows_raw'"
                     if ps.backend == "pg" else
                     "SELECT count(*) FROM sqlite_master WHERE name = 'code_rows_raw'") == ["0"]


def test_result_for_a_name_not_utf8_opens_by_path_raw(ps, make_repo):
    # A name that is not UTF-8 shows U+FFFD in `path`, which names no file: a result carries
    # the exact bytes (`path_raw`) as the files and changes endpoints do, in both the CLI's
    # --json and the API, and the file endpoint opens it with them.
    repo = make_repo("odd")
    repo.write("ok.txt", "a needle here\n")
    os.makedirs(os.fsencode(repo.path) + b"/d\xe9", exist_ok=True)
    with open(os.fsencode(repo.path) + b"/d\xe9/caf\xe9 +.txt", "wb") as f:
        f.write(b"one needle\nno\nneedle two\n")
    repo.commit("odd names")
    ps.add("odd", str(repo.path))
    ps.sync("odd")
    cli = ps.json("grep", "needle", "odd")
    odd = [m for m in cli if "\ufffd" in m["path"]]
    assert [m["line"] for m in odd] == [1, 3], cli
    assert all(m["path_raw"] == "d%E9/caf%E9%20%2B.txt" for m in odd), odd
    assert [m for m in cli if "path_raw" not in m] == [m for m in cli if m not in odd]
    assert [m["path"] for m in cli if m not in odd] == ["ok.txt"]
    s = Server(ps)
    try:
        st, _, api = s.get("/api/v1/projects/odd/search/code?q=needle")
        assert st == 200 and api == cli, api
        st, _, data = s.get("/api/v1/projects/odd/file?path=" + odd[0]["path_raw"], raw=True)
        assert st == 200 and data == b"one needle\nno\nneedle two\n"
        st, _, files = s.get("/api/v1/projects/odd/files")
        assert [f["path_raw"] for f in files if "path_raw" in f] == [odd[0]["path_raw"]]
    finally:
        s.stop()
