"""
Issue 14: blobs are kept compressed (zstd) without anyone seeing a difference, on both backends
and in the same format (store copy moves the bytes as they are); a damaged frame is an error
naming the blob, never wrong bytes; a SQLite store written before schema 10 (raw blobs) is
converted when opened; `projsync stats` tells what the store costs. A new version of a path is
stored as a delta against the previous one (encoding 2), in chains of at most 8 deltas, and
reads back through cat, files, checkout and memory import exactly as before.
"""
import json
import sqlite3

import pytest

from conftest import (UNDO_FOLDED_CHECKS, one_error_line, psql, set_bytes, sqlite_id_functions,
                      sqlite_undo_code_own, sqlite_undo_code_unindexed, sqlite_undo_thin_trees)

TEXT = "".join(f"line {i}: the same kind of source text again and again\n" for i in range(400))
BINARY = bytes(range(256)) * 64


def query(ps, sql):
    """Rows of `sql` on the test's store, either backend, as tuples of strings."""
    if ps.backend == "pg":
        return [tuple(line.split("|")) for line in psql(ps.db, sql).splitlines() if line]
    con = sqlite3.connect(ps.db)
    sqlite_id_functions(con)  # blob ids are 20 bytes (schema 23): ps_hex() reads them
    try:
        return [tuple(str(v) for v in row) for row in con.execute(sql)]
    finally:
        con.close()


def encodings(ps):
    return {sha: int(enc) for sha, enc in query(ps, "SELECT ps_hex(sha), encoding FROM blobs")}


def stored_bytes(ps, sha):
    """The stored (encoded) bytes of one blob, read behind projsync's back."""
    if ps.backend == "pg":
        return bytes.fromhex(psql(ps.db, f"SELECT encode(content, 'hex') FROM blobs "
                                         f"WHERE sha = ps_unhex('{sha}')").strip())
    con = sqlite3.connect(ps.db)
    try:
        return bytes(con.execute("SELECT content FROM blobs WHERE sha = ?",
                                 (bytes.fromhex(sha),)).fetchone()[0])
    finally:
        con.close()


def write_stored_bytes(ps, sha, data):
    set_bytes(ps, "blobs", "content", data, sha=sha)


def fill(repo):
    repo.write("text.txt", TEXT)
    repo.write("small.txt", "x")
    repo.write("empty.txt", "")
    repo.write("bin.dat", BINARY)
    repo.write("runs.txt", "a" * 100000 + "b" * 100000)
    return repo.commit("content")


def check_cat(ps, repo, name, commit, at=None):
    opts = ["--at", str(at)] if at else []
    for f in repo.ls_tree(commit):
        r = ps("cat", name, *opts, "--", f["path"])
        assert r.rc == 0, r
        assert r.outb == repo.blob(f["sha"]), f["path"]


def test_compressed_blobs_read_back_exactly(ps, repo):
    c1 = fill(repo)
    ps.add("p", repo.path)
    first = ps.sync("p")
    repo.write("text.txt", TEXT + "one more line\n")
    c2 = repo.commit("edit")
    ps.sync("p")
    check_cat(ps, repo, "p", c2)
    check_cat(ps, repo, "p", c1, at=first["id"])
    enc = encodings(ps)
    shas = {f["path"]: f["sha"] for f in repo.ls_tree(c2)}
    old = {f["path"]: f["sha"] for f in repo.ls_tree(c1)}
    # The edited file is a delta against its previous version, the first version plain.
    assert enc[shas["text.txt"]] == 2 and enc[old["text.txt"]] == 1
    text_base = f"SELECT ps_hex(base) FROM blobs WHERE sha = ps_unhex('{shas['text.txt']}')"
    assert query(ps, text_base) == [(old["text.txt"],)]
    assert len(stored_bytes(ps, shas["text.txt"])) < len(stored_bytes(ps, old["text.txt"]))
    assert enc[shas["runs.txt"]] == 1
    # Files of 1 byte to 16 KiB are packed together (schema 27): here small.txt with bin.dat.
    assert enc[shas["small.txt"]] == 3 and enc[shas["bin.dat"]] == 3
    assert enc[shas["empty.txt"]] == 0
    # A zstd frame as any zstd reads it: magic number first.
    assert stored_bytes(ps, shas["text.txt"])[:4] == b"\x28\xb5\x2f\xfd"
    assert len(stored_bytes(ps, shas["runs.txt"])) < 1000


def test_damaged_frame_is_an_error_naming_the_blob(ps, repo):
    c1 = fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    sha = {f["path"]: f["sha"] for f in repo.ls_tree(c1)}["text.txt"]
    frame = bytearray(stored_bytes(ps, sha))
    frame[len(frame) // 2] ^= 0x5a
    write_stored_bytes(ps, sha, bytes(frame))
    r = ps("cat", "p", "text.txt")
    assert r.rc == 1 and one_error_line(r.err) and sha in r.err and "corrupt" in r.err, r
    assert r.outb == b""  # never wrong bytes
    # The other files still read; verify --blobs names the damaged one.
    assert ps("cat", "p", "small.txt").outb == b"x"
    r = ps("verify", "p", "--blobs", "--json")
    assert r.rc == 1, r
    rep = json.loads(r.out)
    assert [(p["path"], p["problem"]) for p in rep["problems"]] == [("text.txt", "blob_unreadable")]
    assert sha in rep["problems"][0]["message"]


def test_stats(ps, repo, make_repo):
    # Like every reading command, stats does not create a store behind a mistyped --db.
    r = ps("stats")
    assert r.rc == 3 and one_error_line(r.err) and "no store" in r.err, r
    if ps.backend == "sqlite":
        assert not ps.db.exists()
    fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    other = make_repo("other")
    other.write("text.txt", TEXT)  # the same blob as p's
    other.commit("one file")
    ps.add("q", other.path)
    ps.sync("q")

    p = ps.json("stats", "p")
    assert (p["name"], p["syncs"], p["syncs_succeeded"], p["file_versions"], p["blobs"]) == \
        ("p", 1, 1, 5, 5)
    raw = len(TEXT) + 1 + 0 + len(BINARY) + 200000
    assert p["raw_bytes"] == raw
    assert p["stored_bytes"] < raw / 4
    assert abs(p["ratio"] - raw / p["stored_bytes"]) < 1e-6

    whole = ps.json("stats")
    assert [x["name"] for x in whole["projects"]] == ["p", "q"]
    assert whole["projects"][1]["blobs"] == 1
    store = whole["store"]
    assert (store["projects"], store["syncs"], store["file_versions"], store["blobs"]) == \
        (2, 2, 6, 5)  # the shared blob counts once
    assert store["raw_bytes"] == raw and store["disk_bytes"] > 0
    assert store["unconverted_blobs"] == 0

    out = ps.ok("stats").out
    assert "(store)" in out and "RATIO" in out

    r = ps("stats", "nope")
    assert r.rc == 3 and one_error_line(r.err), r
    r = ps("stats", "p", "q")
    assert r.rc == 2, r


@pytest.mark.sqlite_only
def test_schema9_store_is_converted(ps, repo):
    """A SQLite store as the previous projsync wrote it (raw blob rows, schema 9) reads the same
    and ends up compressed. (PostgreSQL keeps rows written before schema 10 raw: nothing to
    convert.)"""
    c1 = fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    # Turn it back into a schema 9 store: raw content, no encoding column, no conversion table,
    # and none of the commits of migration 0011.
    con = sqlite3.connect(ps.db)
    sqlite_undo_code_own(con)
    sqlite_undo_code_unindexed(con)
    sqlite_undo_thin_trees(con)
    con.executescript(UNDO_FOLDED_CHECKS)
    con.execute("DROP TABLE sync_commits")
    for col in ("head_subject", "head_author_name", "head_author_email", "head_author_date",
                "head_committer_name", "head_committer_email", "head_committer_date",
                "commit_count", "commits_truncated"):
        con.execute(f"ALTER TABLE syncs DROP COLUMN {col}")
    con.execute("CREATE TABLE old (sha TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                "content BLOB NOT NULL) WITHOUT ROWID")
    for (sha,) in con.execute("SELECT sha FROM blobs").fetchall():
        data = repo.blob(sha)
        con.execute("INSERT INTO old VALUES (?, ?, ?)", (sha, len(data), data))
    con.execute("DROP TABLE blobs")
    con.execute("ALTER TABLE old RENAME TO blobs")
    con.execute("DROP TABLE blob_conversion")
    con.execute("PRAGMA user_version = 9")
    con.commit()
    con.close()

    check_cat(ps, repo, "p", c1)  # the first open migrates and converts
    con = sqlite3.connect(ps.db)
    assert con.execute("SELECT done FROM blob_conversion").fetchone() == (1,)
    assert con.execute("PRAGMA user_version").fetchone()[0] >= 10
    shas = {f["path"]: f["sha"] for f in repo.ls_tree(c1)}
    enc = dict(con.execute("SELECT lower(hex(sha)), encoding FROM blobs"))
    con.close()
    assert enc[shas["text.txt"]] == 1 and enc[shas["small.txt"]] == 0
    assert ps.json("stats")["store"]["blobs_compressed"] == 3


def stored_rows(ps):
    """(sha, size, encoding, stored bytes as hex) of every blob row."""
    if ps.backend == "pg":
        sql = "SELECT ps_hex(sha), size, encoding, encode(content, 'hex') FROM blobs ORDER BY sha"
    else:
        sql = "SELECT ps_hex(sha), size, encoding, hex(content) FROM blobs ORDER BY sha"
    return [(sha, int(size), int(enc), data.lower()) for sha, size, enc, data in query(ps, sql)]


@pytest.mark.sqlite_only  # both backends inside: SQLite -> PostgreSQL -> SQLite
def test_store_copy_moves_the_encoded_bytes(tmp_path, pg_database, repo):
    from conftest import Projsync
    c0 = fill(repo)
    src = Projsync(tmp_path / "a")
    src.add("p", repo.path)
    src.sync("p")
    # A second version of text.txt: a delta row, with its base, moves too.
    repo.write("text.txt", TEXT + "the last line\n")
    c1 = repo.commit("edit")
    src.sync("p")
    pg = Projsync(tmp_path / "p", pg_database())
    back = Projsync(tmp_path / "b")
    src.ok("store", "copy", str(src.db), pg.db, db=False)
    src.ok("store", "copy", pg.db, str(back.db), db=False)
    want = stored_rows(src)
    assert any(enc == 1 for _, _, enc, _ in want) and any(enc == 2 for _, _, enc, _ in want)
    assert stored_rows(pg) == want and stored_rows(back) == want
    bases = "SELECT ps_hex(sha), coalesce(ps_hex(base), '-') FROM blobs ORDER BY sha"
    assert query(pg, bases) == query(src, bases) == query(back, bases)
    for copy in (pg, back):
        check_cat(copy, repo, "p", c1)
        check_cat(copy, repo, "p", c0, at=1)
        copy.ok("verify", "p", "--blobs")

    # A damaged frame in the source is refused, naming the blob; the target stays empty.
    sha = {f["path"]: f["sha"] for f in repo.ls_tree(c1)}["text.txt"]
    frame = bytearray(stored_bytes(src, sha))
    frame[len(frame) // 2] ^= 0x5a
    write_stored_bytes(src, sha, bytes(frame))
    target = Projsync(tmp_path / "t", pg_database())
    r = src("store", "copy", str(src.db), target.db, db=False)
    assert r.rc == 1 and one_error_line(r.err) and sha in r.err, r
    assert query(target, "SELECT count(*) FROM projects") == [("0",)]


# ---- deltas between versions of a path ----

DELTA_BOUND = 8  # PS_BLOB_CHAIN_MAX


def doc_version(i):
    """Version i of a 30 KB source file: line i edited, one line more per version."""
    return "".join(f"{'edited' if n == i else 'static'} line {n}: int value_{n} = {n * 7};\n"
                   for n in range(600 + i))


def note_version(i):
    return "# Notes\n\n" + "".join(f"- fact {n}: the build needs step {n} first\n"
                                     for n in range(40 + i))


def delta_history(ps, repo, n):
    """n commits, each editing doc.txt and a memory note; a sync after each."""
    commits, syncs = [], []
    for i in range(n):
        repo.write("doc.txt", doc_version(i))
        repo.write(".memory/notes.md", note_version(i))
        repo.write(f"other{i}.txt", f"file {i}\n")
        commits.append(repo.commit(f"c{i}"))
        if i == 0:
            ps.add("p", repo.path)
        syncs.append(ps.sync("p"))
    return commits, syncs


def test_deltas_chain_to_the_bound_and_read_back(ps, repo, tmp_path):
    n = DELTA_BOUND + 4
    commits, syncs = delta_history(ps, repo, n)
    docs = [next(f["sha"] for f in repo.ls_tree(c) if f["path"] == "doc.txt") for c in commits]
    rows = {sha: (int(enc), base) for sha, enc, base in
            query(ps, "SELECT ps_hex(sha), encoding, coalesce(ps_hex(base), '-') FROM blobs")}
    # Version 0 plain; 1..8 each a delta against the one before; 9 plain again (the chain was
    # at its bound); 10.. deltas again.
    for i, sha in enumerate(docs):
        if i % (DELTA_BOUND + 1) == 0:
            assert rows[sha] == (1, "-"), i
        else:
            assert rows[sha] == (2, docs[i - 1]), i
    # Every version through every reader, byte-exact.
    for c, s in zip(commits, syncs):
        check_cat(ps, repo, "p", c, at=s["id"])
        files = {f["path"]: f["sha"] for f in ps.json("files", "p", "--at", s["id"])}
        assert files == {f["path"]: f["sha"] for f in repo.ls_tree(c)}
    for i in (DELTA_BOUND, n - 1):  # the end of a full chain, and the newest sync
        co = tmp_path / f"co{i}"
        ps.ok("checkout", "p", co, "--at", syncs[i]["id"])
        for f in repo.ls_tree(commits[i]):
            assert (co / f["path"]).read_bytes() == repo.blob(f["sha"]), f["path"]
    # The memory note (a delta too) is imported with its latest text.
    notes = [m for m in ps.json("memory", "list", "p") if m["source_ref"] == ".memory/notes.md"]
    assert len(notes) == 1 and notes[0]["content"].rstrip("\n") == \
        note_version(n - 1).rstrip("\n")
    rep = json.loads(ps.ok("verify", "p", "--blobs", "--json").out)
    assert rep["sound"] and rep["blobs_checked"] > 0, rep
    st = ps.json("stats")["store"]
    assert st["blobs_delta"] >= n - 2
    assert st["raw_bytes"] > 10 * st["stored_bytes"]


def test_damaged_delta_is_an_error_naming_the_blob(ps, repo):
    commits, _ = delta_history(ps, repo, 4)
    docs = [next(f["sha"] for f in repo.ls_tree(c) if f["path"] == "doc.txt") for c in commits]
    assert encodings(ps)[docs[2]] == 2
    frame = bytearray(stored_bytes(ps, docs[2]))
    frame[len(frame) // 2] ^= 0x5a
    write_stored_bytes(ps, docs[2], bytes(frame))
    hist = ps.history("p")  # newest first
    r = ps("cat", "p", "doc.txt", "--at", hist[1]["id"])
    assert r.rc == 1 and one_error_line(r.err) and docs[2] in r.err and "corrupt" in r.err, r
    assert r.outb == b""
    # The version built on it fails too, naming itself; the one before still reads.
    r = ps("cat", "p", "doc.txt")
    assert r.rc == 1 and one_error_line(r.err) and docs[3] in r.err and r.outb == b"", r
    assert ps("cat", "p", "doc.txt", "--at", hist[2]["id"]).outb == doc_version(1).encode()
    r = ps("verify", "p", "--blobs", "--json")
    assert r.rc == 1, r
    assert [p["path"] for p in json.loads(r.out)["problems"]] == ["doc.txt"]
    # The next sync stores its new version plain rather than on a damaged chain.
    repo.write("doc.txt", doc_version(9))
    c = repo.commit("after")
    ps.sync("p")
    new = next(f["sha"] for f in repo.ls_tree(c) if f["path"] == "doc.txt")
    assert encodings(ps)[new] == 1
    assert ps("cat", "p", "doc.txt").outb == doc_version(9).encode()
