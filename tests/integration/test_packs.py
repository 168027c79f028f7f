"""
Issue 14, packs (schema 27): blobs of 1 byte to 16 KiB that are not deltas are stored together
in zstd frames of about 64 KiB (table blob_packs), so each compresses with its neighbours as
context. Nobody sees a difference: every file of a repository of a few hundred small files,
text and binary, reads back byte-exact through cat, checkout and code search, at every sync;
later versions are deltas against packed bases; a prune rewrites the packs its removals thinned
out and frees their bytes; a damaged pack is an error naming the blob, never wrong bytes; and
`store copy` moves packs between the backends.
"""
import io
import json
import os
import random
import sqlite3
import tarfile

import pytest

from conftest import Projsync, one_error_line, psql, set_bytes, sqlite_id_functions

MEMBER_MAX = 16 << 10  # PS_BLOB_PACK_MEMBER_MAX
MANIFEST = ".projsync-checkout"
WORDS = ("buffer", "count", "node", "parse", "write", "error", "index", "value", "store",
         "entry", "offset", "length", "result", "flags", "table", "cursor", "frame", "limit")


def c_source(rng, i, size):
    """A C-like file of about `size` bytes (at least 100) with a line only file i has."""
    lines = [f"/* file {i}: generated for the packs test */\n",
             f"static const char *marker = \"packmarker_{i:04d}_unique\";\n"]
    n = head = sum(len(x) for x in lines)
    while n < size:
        a, b, c = rng.choice(WORDS), rng.choice(WORDS), rng.choice(WORDS)
        line = f"int {a}_{b}_{i}(struct {c} *p, size_t n) {{ return p->{a} + n * {rng.randint(0, 999)}; }}\n"
        lines.append(line)
        n += len(line)
    return "".join(lines)[:max(size, head)]


def fill(repo, seed=14):
    """A few hundred files of 100 B to 10 KiB, C-like text and binary, in a dozen directories,
    plus the edges: an empty file, a 1-byte file, one of exactly 16 KiB (the largest member) and
    one of 16 KiB + 1 (stored alone). Returns the commit."""
    rng = random.Random(seed)
    for i in range(280):
        repo.write(f"src/mod{i // 25:02d}/file{i:04d}.c", c_source(rng, i, rng.randint(100, 10240)))
    for i in range(30):
        size = rng.randint(100, 10240)
        if i % 2:
            data = rng.randbytes(size)  # incompressible: a pack holds it anyway
        else:
            data = bytes(rng.randrange(16) for _ in range(size))  # binary, compressible
        repo.write(f"assets/blob{i:02d}.bin", data)
    repo.write("edge/empty.txt", "")
    repo.write("edge/one.txt", "x")
    repo.write("edge/exactly16k.txt", c_source(rng, 9000, MEMBER_MAX).encode()[:MEMBER_MAX])
    repo.write("edge/over16k.txt", c_source(rng, 9001, MEMBER_MAX + 1).encode()[:MEMBER_MAX + 1])
    return repo.commit("many small files")


def edit(repo, commit, seed=15, n=60):
    """A second version: n files edited a little (deltas against their packed versions), a few
    new and a few deleted. Returns the new commit."""
    rng = random.Random(seed)
    paths = [f["path"] for f in repo.ls_tree(commit) if f["path"].startswith("src/")]
    for p in rng.sample(paths, n):
        old = (repo.path / p).read_text()
        repo.write(p, old.replace("return p->", "return 1 + p->", 1) + "/* edited */\n")
    for i in range(5):
        repo.write(f"src/new/added{i}.c", c_source(rng, 5000 + i, rng.randint(200, 4000)))
    for p in rng.sample([x for x in paths if not x.endswith("0.c")], 5):
        repo.rm(p)
    return repo.commit("edit some")


# ---- reading the store behind projsync's back (either backend) ----

def query(ps, sql):
    if ps.backend == "pg":
        return [tuple(line.split("|")) for line in psql(ps.db, sql).splitlines() if line]
    con = sqlite3.connect(ps.db)
    sqlite_id_functions(con)
    try:
        return [tuple("" if v is None else str(v) for v in row) for row in con.execute(sql)]
    finally:
        con.close()


def blob_rows(ps):
    """{sha: (size, encoding, pack or None, pack_offset or None)}."""
    rows = query(ps, "SELECT ps_hex(sha), size, encoding, pack, pack_offset FROM blobs")
    return {sha: (int(size), int(enc), int(pack) if pack else None, int(off) if off else None)
            for sha, size, enc, pack, off in rows}


def pack_rows(ps):
    """{id: (size, content as hex)} of every pack."""
    content = "encode(content, 'hex')" if ps.backend == "pg" else "lower(hex(content))"
    return {int(i): (int(size), data)
            for i, size, data in query(ps, f"SELECT id, size, {content} FROM blob_packs")}


def write_pack_content(ps, pack_id, data):
    set_bytes(ps, "blob_packs", "content", data, id=pack_id)


def execute(ps, sql):
    if ps.backend == "pg":
        psql(ps.db, sql)
        return
    con = sqlite3.connect(ps.db)
    sqlite_id_functions(con)
    with con:
        con.execute(sql)
    con.close()


# ---- what a user sees ----

def check_cat(ps, repo, commit, at=None):
    opts = ["--at", str(at)] if at else []
    for f in repo.ls_tree(commit):
        r = ps("cat", "p", *opts, "--", f["path"])
        assert r.rc == 0, r
        assert r.outb == repo.blob(f["sha"]), f["path"]


def archive(repo, commit):
    """{path: bytes} of every file of `git archive COMMIT`."""
    tar = tarfile.open(fileobj=io.BytesIO(repo.git("archive", "--format=tar", commit, raw=True)))
    return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def folder(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if rel != MANIFEST:
                with open(os.path.join(dirpath, name), "rb") as f:
                    out[rel] = f.read()
    return out


def check_checkout(ps, repo, commit, target, at=None):
    ps.ok("checkout", "p", target, *(["--at", str(at)] if at else []))
    assert folder(target) == archive(repo, commit)


def sound(ps, at=None):
    rep = json.loads(ps.ok("verify", "p", "--blobs", "--json",
                           *(["--at", str(at)] if at else [])).out)
    assert rep["sound"] and rep["problems"] == [] and rep["blobs_checked"] > 0, rep
    return rep


def by_path(repo, commit):
    return {f["path"]: f["sha"] for f in repo.ls_tree(commit)}


# ---- tests ----

def test_small_files_are_packed_and_read_back_exactly(ps, repo, tmp_path):
    c1 = fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    shas = by_path(repo, c1)
    rows = blob_rows(ps)
    st = ps.json("stats")["store"]
    small = {sha for sha, (size, _, _, _) in rows.items() if 1 <= size <= MEMBER_MAX}
    packed = {sha for sha, (_, enc, _, _) in rows.items() if enc == 3}
    # Every member-sized blob is in a pack but perhaps a last one left alone; nothing else is.
    assert packed <= small and len(small - packed) <= 1, (len(small), len(packed))
    assert rows[shas["edge/exactly16k.txt"]][1] == 3
    assert rows[shas["edge/over16k.txt"]][1] != 3 and rows[shas["edge/empty.txt"]][1] != 3
    packs = pack_rows(ps)
    assert st["blobs_packed"] == len(packed) and st["packs"] == len(packs)
    # About 64 KiB of members each: far fewer packs than members, each a zstd frame.
    assert 2 <= len(packs) <= len(packed) // 5, len(packs)
    assert all(data.startswith("28b52ffd") for _, data in packs.values())
    for sha in packed:
        size, _, pack, off = rows[sha]
        assert pack in packs and 0 <= off and off + size <= packs[pack][0], sha
    # Packing is what makes the store small: raw / stored well above what each file alone gives.
    assert st["raw_bytes"] > 2.5 * st["stored_bytes"], st
    assert ps.json("stats", "p")["stored_bytes"] <= st["stored_bytes"]

    check_cat(ps, repo, c1)
    check_checkout(ps, repo, c1, tmp_path / "co")
    sound(ps)
    # Code search finds the text of packed files, each in its own file.
    for i in (0, 137, 279):
        want = f"packmarker_{i:04d}_unique"
        found = ps.json("grep", "-F", want, "p")
        assert [(m["path"], m["line"]) for m in found] == \
            [(f"src/mod{i // 25:02d}/file{i:04d}.c", 2)], found
        assert shas[found[0]["path"]] in packed


def test_a_second_sync_stores_deltas_against_packed_bases(ps, repo, tmp_path):
    c1 = fill(repo)
    ps.add("p", repo.path)
    s1 = ps.sync("p")
    c2 = edit(repo, c1)
    s2 = ps.sync("p")
    old, new = by_path(repo, c1), by_path(repo, c2)
    rows = blob_rows(ps)
    bases = dict(query(ps, "SELECT ps_hex(sha), ps_hex(base) FROM blobs WHERE base IS NOT NULL"))
    on_packed = [p for p, sha in new.items()
                 if rows[sha][1] == 2 and bases.get(sha) == old.get(p) and rows[old[p]][1] == 3]
    assert len(on_packed) >= 30, len(on_packed)
    # The new files of the second sync were packed too.
    assert sum(rows[new[f"src/new/added{i}.c"]][1] == 3 for i in range(5)) >= 3
    for commit, s in ((c1, s1), (c2, s2)):
        check_cat(ps, repo, commit, at=s["id"])
        check_checkout(ps, repo, commit, tmp_path / f"co{s['id']}", at=s["id"])
        sound(ps, at=s["id"])
    found = ps.json("grep", "-F", "return 1 + p->", "p")
    want = {p for p, sha in new.items() if b"return 1 + p->" in repo.blob(sha)}
    assert len(want) >= 30 and {m["path"] for m in found} == want


def test_prune_rewrites_thinned_packs_and_everything_kept_reads(ps, repo, tmp_path):
    c1 = fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    # Half the files go and most of the rest change (deltas against packed bases): the first
    # sync's packs keep few members each, and the deltas lose their bases.
    gone = [f["path"] for f in repo.ls_tree(c1) if f["path"].startswith("src/")][::2]
    for path in gone:
        repo.rm(path)
    repo.commit("half gone")
    c2 = edit(repo, repo.head(), n=100)
    s2 = ps.sync("p")
    before = ps.json("stats")["store"]
    packs_before = pack_rows(ps)
    ps.ok("project", "set", "p", "--keep-syncs", "1")
    done = ps.json("prune", "p")
    assert done["syncs"] == 1 and done["blobs"] > 0 and done["bytes"] > 0, done
    assert done["packs_rewritten"] > 0, done
    after = ps.json("stats")["store"]
    assert after["stored_bytes"] < before["stored_bytes"], (before, after)
    assert done["deltas_rewritten"] > 50, done
    # What is left costs about what a new store of the kept commit does: the rewritten deltas
    # are packed again, and a pack kept as it is has at least half of its bytes alive.
    fresh = Projsync(tmp_path / "fresh")
    fresh.add("p", repo.path)
    fresh.sync("p")
    assert after["stored_bytes"] < 2 * fresh.json("stats")["store"]["stored_bytes"], after
    assert [s["id"] for s in ps.history("p")] == [s2["id"]]
    rows = blob_rows(ps)
    packs = pack_rows(ps)
    assert set(rows) >= set(by_path(repo, c2).values())
    # No pack is left that no blob names; every member's slice lies inside its pack.
    assert {r[2] for r in rows.values() if r[1] == 3} == set(packs)
    for sha, (size, enc, pack, off) in rows.items():
        if enc == 3:
            assert off + size <= packs[pack][0], sha
    # Packs the prune rewrote are new packs: their ids come after every earlier one.
    rewritten = set(packs) - set(packs_before)
    assert rewritten and min(rewritten) > max(packs_before), (sorted(packs_before), sorted(packs))
    check_cat(ps, repo, c2)
    check_checkout(ps, repo, c2, tmp_path / "co")
    sound(ps)
    for i in (0, 279):
        path = f"src/mod{i // 25:02d}/file{i:04d}.c"
        if path in by_path(repo, c2):
            assert [m["path"] for m in ps.json("grep", "-F", f"packmarker_{i:04d}_unique", "p")] \
                == [path]
    # Nothing left to do; a later sync packs again, with ids never used before.
    again = ps.json("prune", "p")
    assert again["syncs"] == 0 and again["blobs"] == 0 and again["packs_rewritten"] == 0, again
    assert pack_rows(ps) == packs
    for i in range(8):
        repo.write(f"later/f{i}.c", c_source(random.Random(i), 7000 + i, 3000))
    c3 = repo.commit("later")
    ps.sync("p")
    newer = set(pack_rows(ps)) - set(packs)
    assert newer and min(newer) > max(set(packs) | set(packs_before))
    check_cat(ps, repo, c3)
    sound(ps)


def test_damaged_pack_is_an_error_naming_the_blob(ps, repo):
    c1 = fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    shas = by_path(repo, c1)
    rows = blob_rows(ps)
    packs = pack_rows(ps)
    path = "src/mod05/file0137.c"
    victim = rows[shas[path]][2]
    assert victim is not None
    members = {p for p, sha in shas.items() if rows[sha][2] == victim}
    others = [p for p, sha in shas.items() if rows[sha][2] not in (None, victim)]
    frame = bytearray(bytes.fromhex(packs[victim][1]))
    for k in range(len(frame) // 3, len(frame) // 3 + 8):
        frame[k] ^= 0x5a
    write_pack_content(ps, victim, bytes(frame))
    for p in sorted(members)[:5] + [path]:
        r = ps("cat", "p", "--", p)
        assert r.rc == 1 and one_error_line(r.err), r
        assert shas[p] in r.err and "corrupt" in r.err, r
        assert r.outb == b""  # never wrong bytes
    # Members of the other packs still read.
    for p in others[:10]:
        assert ps("cat", "p", "--", p).outb == repo.blob(shas[p])
    r = ps("verify", "p", "--blobs", "--json")
    assert r.rc == 1, r
    rep = json.loads(r.out)
    assert {x["path"] for x in rep["problems"]} == members
    assert all(x["problem"] == "blob_unreadable" for x in rep["problems"])


def test_a_member_pointing_at_the_wrong_bytes_is_corrupt(ps, repo):
    """A pack that decodes fine but a row whose offset is off (or whose pack is gone): the slice
    is hashed against the blob's id, so the read fails instead of returning another file."""
    c1 = fill(repo)
    ps.add("p", repo.path)
    ps.sync("p")
    shas = by_path(repo, c1)
    rows = blob_rows(ps)
    a, b = "src/mod01/file0030.c", "src/mod01/file0031.c"
    assert rows[shas[a]][1] == 3 and rows[shas[b]][1] == 3
    execute(ps, f"UPDATE blobs SET pack_offset = pack_offset + 1 "
                f"WHERE sha = ps_unhex('{shas[a]}')")
    r = ps("cat", "p", "--", a)
    assert r.rc == 1 and one_error_line(r.err) and shas[a] in r.err and "corrupt" in r.err, r
    assert r.outb == b""
    # An offset past the pack's end.
    execute(ps, f"UPDATE blobs SET pack_offset = {10 ** 9} WHERE sha = ps_unhex('{shas[a]}')")
    r = ps("cat", "p", "--", a)
    assert r.rc == 1 and one_error_line(r.err) and shas[a] in r.err and "corrupt" in r.err, r
    assert r.outb == b""
    # A member whose pack is not stored (on PostgreSQL past the foreign key, as a damaged store
    # would be: replica mode skips its trigger).
    execute(ps, ("SET session_replication_role = replica; " if ps.backend == "pg" else "") +
            f"UPDATE blobs SET pack = {max(pack_rows(ps)) + 1000} "
            f"WHERE sha = ps_unhex('{shas[b]}')")
    r = ps("cat", "p", "--", b)
    assert r.rc == 1 and one_error_line(r.err) and shas[b] in r.err and "corrupt" in r.err, r
    assert r.outb == b""
    assert ps("cat", "p", "--", "src/mod02/file0050.c").outb == \
        repo.blob(shas["src/mod02/file0050.c"])


@pytest.mark.sqlite_only  # both backends inside: SQLite -> PostgreSQL -> SQLite
def test_store_copy_moves_packs(tmp_path, pg_database, repo):
    c1 = fill(repo)
    src = Projsync(tmp_path / "a")
    src.add("p", repo.path)
    s1 = src.sync("p")
    c2 = edit(repo, c1)
    src.sync("p")
    pg = Projsync(tmp_path / "pg", pg_database())
    back = Projsync(tmp_path / "b")
    src.ok("store", "copy", str(src.db), pg.db, db=False)
    src.ok("store", "copy", pg.db, str(back.db), db=False)
    want_rows, want_packs = blob_rows(src), pack_rows(src)
    assert any(r[1] == 3 for r in want_rows.values()) and want_packs
    for copy in (pg, back):
        assert blob_rows(copy) == want_rows and pack_rows(copy) == want_packs
        check_cat(copy, repo, c2)
        check_cat(copy, repo, c1, at=s1["id"])
        sound(copy)
        assert copy.json("stats")["store"]["packs"] == len(want_packs)
    # The copied stores go on packing with ids after the copied ones.
    for i in range(6):
        repo.write(f"later/f{i}.c", c_source(random.Random(i), 8000 + i, 2500))
    c3 = repo.commit("later")
    for copy in (pg, back):
        copy.sync("p")
        newer = set(pack_rows(copy)) - set(want_packs)
        assert newer and min(newer) > max(want_packs)
        check_cat(copy, repo, c3)
