"""
Issue 14, schema 26 on PostgreSQL (migration 0026): a file version names its directory by id
(table dirs) and holds its last path component; a directory tree row names its directory by id.
Paths stay full strings above the backend, so everything a user sees must be what schema 25
showed: listings in byte order of the full path (names sorting around '/': "b-x" and "b.y" <
"b/..." < "b0"), prefixes that end inside a name, diffs, file reads, code search (its batches
from a path on), checkout and `verify`. A store that schema 25 wrote is converted at open with the
same row ids. PostgreSQL only: the SQLite half has its own tests.
"""
import json

import pytest

from conftest import PG_UNDO_DIR_IDS, ROOT, Projsync, pg_undo_blob_packs, psql
from test_thin_trees import STEPS, first_tree, sync_quietly


def schema_25():
    """The schema before migration 0026 (the one these tests undo)."""
    names = sorted(p.name for p in (ROOT / "src/store/postgres/migrations").glob("*.sql"))
    return names.index("0026_dir_ids.sql")


PREFIXES = ["", "a", "b", "b/", "b.", "b/c", "b/c/d/", "deep/1", "deep/1/", "nothing", "z"]


@pytest.fixture
def pg(tmp_path, pg_database):
    return Projsync(tmp_path, pg_database())


def files(pg, prefix="", at=None):
    args = ["files", "p"] + ([prefix] if prefix else []) + (["--at", str(at)] if at else [])
    return json.loads(pg.ok(*args, "--json").out)


def seen(pg, repo, syncs, tmp_path, tag):
    """Everything a user reads of the snapshots, as comparable values."""
    out = {}
    for s, commit in syncs:
        for prefix in PREFIXES:
            out[("files", s, prefix)] = files(pg, prefix, s)
        rep = json.loads(pg.ok("verify", "p", "--at", str(s), "--json").out)
        assert rep["sound"] is True and rep["problems"] == [], rep
        assert rep["computed_tree"] == repo.git("rev-parse", f"{commit}^{{tree}}").strip()
        out[("verify", s)] = rep
        for f in files(pg, "", s):
            if f["type"] == "blob" and "path_raw" not in f:
                out[("cat", s, f["path"])] = pg.ok("cat", "p", f["path"], "--at", str(s)).outb
        dest = tmp_path / f"co-{tag}-{s}"
        pg.ok("checkout", "p", str(dest), "--at", str(s))
        out[("checkout", s)] = sorted(
            (str(p.relative_to(dest)), p.is_symlink() or p.read_bytes())
            for p in dest.rglob("*") if (p.is_file() or p.is_symlink())
            and not p.name.startswith(".projsync"))  # inode numbers and times
    for (a, _), (b, _) in zip(syncs, syncs[1:]):
        out[("diff", a, b)] = json.loads(pg.ok("diff", str(a), str(b), "--json").out)
        out[("diff", b, a)] = json.loads(pg.ok("diff", str(b), str(a), "--json").out)
    for pattern, extra in [("a", []), ("f", ["--max", "3"]), ("x2", []), (".", ["-E"]),
                           ("new", ["--path", "b/**"]), ("e", ["--max", "1"])]:
        r = pg("grep", pattern, "p", *extra, "--json")
        out[("grep", pattern, *extra)] = (r.rc, r.out)
    return out


def test_listings_follow_full_path_order(pg, repo):
    """The files of a snapshot come in byte order of their full paths, which is not the order
    of (directory, name): every prefix lists exactly the paths starting with it."""
    first_tree(repo)
    repo.commit("c0")
    pg.ok("project", "add", "p", str(repo.path))
    sync_quietly(pg)
    every = [f["path"] for f in files(pg)]
    assert every == sorted(every, key=lambda p: p.encode())
    assert every.index("b.y") < every.index("b/c/d/e") < every.index("b/x") < every.index("b0")
    for prefix in PREFIXES:
        assert [f["path"] for f in files(pg, prefix)] == [p for p in every if p.startswith(prefix)]
    # A search without a literal the index can use asks for its candidates in batches from a
    # path, each read directory by directory (pg_code.c, walk): the first N matches are those
    # of the whole search, for every N, in every scope.
    for scope in ([], ["--path", "b/**"], ["--path", "b*"], ["--path", "deep/1/**"]):
        whole = pg("grep", "-E", ".", "p", *scope).out.splitlines()
        assert whole
        if not scope:  # every file once (a symlink is not searched), in path order
            assert [ln.split(":")[0] for ln in whole] == [p for p in every if p != "link"]
        for m in range(1, len(whole) + 1):
            assert pg("grep", "-E", ".", "p", "--max", str(m), *scope).out.splitlines() == \
                whole[:m], (scope, m)
    # One row per directory of the project, the root's path empty.
    dirs = psql(pg.db, "SELECT encode(path, 'escape') FROM dirs ORDER BY path").split("\n")[:-1]
    assert dirs == sorted({p.rpartition("/")[0] for p in every} | {"b/c", "deep/1/2", "deep"},
                          key=lambda p: p.encode())


def test_store_of_schema_25_converts_with_same_answers(pg, repo, tmp_path):
    """A store that schema 25 wrote (rows with full paths) is converted by the next open: the
    same rows with the same ids, and every listing, diff, read, search, checkout and verify
    answers as before; later syncs go on from it."""
    first_tree(repo)
    repo.write("bin\udcffname", "not utf-8\n")
    syncs = []
    repo.commit("c0")
    pg.ok("project", "add", "p", str(repo.path))
    syncs.append((sync_quietly(pg), repo.head()))
    for step in STEPS[:3]:
        step(repo)
        repo.commit("c")
        syncs.append((sync_quietly(pg), repo.head()))
    rows = "SELECT fv.id, encode(ps_path(d.path, fv.name), 'hex'), fv.introduced_by, " \
           "fv.superseded_by FROM file_versions fv JOIN dirs d ON d.id = fv.dir_id ORDER BY 1"
    trees = "SELECT dt.id, encode(d.path, 'hex'), encode(dt.tree_sha, 'hex'), " \
            "dt.introduced_by FROM dir_trees dt JOIN dirs d ON d.id = dt.dir_id ORDER BY 1"
    want_rows, want_trees = psql(pg.db, rows), psql(pg.db, trees)
    version = psql(pg.db, "SELECT max(version) FROM projsync_schema").strip()
    before = seen(pg, repo, syncs, tmp_path, "before")

    pg_undo_blob_packs(pg.db)  # the migrations after 0026 first
    psql(pg.db, "BEGIN; " + "; ".join(PG_UNDO_DIR_IDS + [
        f"DELETE FROM projsync_schema WHERE version > {schema_25()}"]) + "; COMMIT")
    assert psql(pg.db, "SELECT to_regclass('dirs') IS NULL").strip() == "t"
    assert psql(pg.db, "SELECT id, encode(path, 'hex'), introduced_by, superseded_by "
                       "FROM file_versions ORDER BY 1") == want_rows

    after = seen(pg, repo, syncs, tmp_path, "after")  # the first command migrates
    assert psql(pg.db, "SELECT max(version) FROM projsync_schema").strip() == version
    assert psql(pg.db, rows) == want_rows
    assert psql(pg.db, trees) == want_trees
    assert after.keys() == before.keys()
    for k in before:
        assert after[k] == before[k], k
    # New rows get new ids past the old ones, and syncs go on.
    top = int(psql(pg.db, "SELECT max(id) FROM file_versions"))
    STEPS[3](repo)
    repo.commit("c")
    syncs.append((sync_quietly(pg), repo.head()))
    assert int(psql(pg.db, "SELECT min(id) FROM file_versions WHERE introduced_by = "
                           f"{syncs[-1][0]}")) > top
    seen(pg, repo, syncs[-2:], tmp_path, "later")


def test_prune_drops_directories_nothing_names(pg, repo):
    """Directories only pruned history named go with it; the ones still named stay."""
    repo.write("keep/a", "a\n")
    repo.write("gone/deep/b", "b\n")
    repo.commit("c0")
    pg.ok("project", "add", "p", str(repo.path), "--keep-syncs", "1")
    sync_quietly(pg)
    repo.rm("gone")
    repo.write("keep/new/c", "c\n")
    repo.commit("c1")
    sync_quietly(pg)
    listed = "SELECT encode(path, 'escape') FROM dirs ORDER BY path"
    assert psql(pg.db, listed).split("\n")[:-1] == ["", "gone", "gone/deep", "keep", "keep/new"]
    pg.ok("prune", "p")
    assert psql(pg.db, listed).split("\n")[:-1] == ["", "keep", "keep/new"]
    assert [f["path"] for f in files(pg)] == ["keep/a", "keep/new/c"]
    # A directory that comes back gets a row again.
    repo.write("gone/deep/b", "b again\n")
    repo.commit("c2")
    sync_quietly(pg)
    assert [f["path"] for f in files(pg)] == ["gone/deep/b", "keep/a", "keep/new/c"]
    pg.ok("project", "rm", "p", "--yes")
    assert psql(pg.db, "SELECT count(*) FROM dirs").strip() == "0"


def test_odd_stored_paths_convert_as_stored(pg, repo):
    """Paths no source writes (a leading '/', empty components, a trailing '/') that a schema-25
    store holds come back as stored after the conversion, in byte order: a leading '/' is part
    of a name of the root ("/x"), not an empty first directory."""
    repo.write("a/b", "b\n")
    repo.write("z", "z\n")
    repo.commit("c0")
    pg.ok("project", "add", "p", str(repo.path))
    s = sync_quietly(pg)
    version = psql(pg.db, "SELECT max(version) FROM projsync_schema").strip()
    odd = ["/x", "//y", "/etc/evil", "a//b", "a/", "a/b/"]
    pg_undo_blob_packs(pg.db)
    psql(pg.db, "BEGIN; " + "; ".join(PG_UNDO_DIR_IDS + [
        f"DELETE FROM projsync_schema WHERE version > {schema_25()}"] + [
        "INSERT INTO file_versions (project_id, path, mode, sha, size, introduced_by) "
        f"SELECT project_id, convert_to('{p}', 'UTF8'), mode, sha, size, introduced_by "
        "FROM file_versions WHERE path = 'z'" for p in odd]) + "; COMMIT")
    listed = [f["path"] for f in files(pg, "", s)]  # the first command migrates
    assert listed == sorted(odd + ["a/b", "z"], key=lambda p: p.encode())
    assert psql(pg.db, "SELECT encode(d.path, 'escape') || '|' || encode(fv.name, 'escape') "
                       "FROM file_versions fv JOIN dirs d ON d.id = fv.dir_id "
                       "WHERE fv.name = '/x'").strip() == "|/x"
    for p in odd[3:]:  # the CLI takes no path with a leading '/'
        assert json.loads(pg.ok("files", "p", p, "--json").out)[0]["path"] == p
        assert pg.ok("cat", "p", p).out == "z\n"


def test_code_search_batches_over_many_directories(pg, repo):
    """A search without a literal the index can use reads its candidates in batches in path
    order (256, then 4x more, each from just after the last path; an API page from its
    cursor), walking the project's directories in order (pg_code.c, walk). With many
    directories, names sorting around '/' (`d1` < `d1-x` < `d1.y` < `d1/s`, whose files sort
    `d1-x/..` < `d1.y/..` < `d1/..`) and files in the root between them, every batch boundary
    and every page gives exactly the whole search's matches, in every scope. (Each batch
    reads only the directories it needs since the walk resumes from the previous one's last
    path; docs/performance.md has the cost.)"""
    for i in range(300):
        repo.write(f"a/f{i:03}", "a file of the first directory\n")
    for i in range(150):
        d = f"d{i:03}"
        for sub in (d, f"{d}-x", f"{d}.y", f"{d}/s", f"{d}/s/t"):
            repo.write(f"{sub}/f", f"{sub}\n")
        repo.write(f"{d}/s-z", "beside s/\n")
        repo.write(f"{d}0", "a root file between directories\n")
    repo.commit("many")
    pg.ok("project", "add", "p", str(repo.path))
    sync_quietly(pg)
    ndirs = int(psql(pg.db, "SELECT count(*) FROM dirs"))
    assert ndirs > 750
    for scope in ([], ["--path", "d01*"], ["--path", "d014/**"], ["--path", "d14*"]):
        whole = pg("grep", "-E", "^.", "p", *scope).out.splitlines()
        paths = [ln.split(":")[0] for ln in whole]
        assert paths == sorted(paths, key=lambda p: p.encode()), scope
        if not scope:
            assert len(whole) == 300 + 150 * 7 and paths[300:308] == [
                "d000-x/f", "d000.y/f", "d000/f", "d000/s-z", "d000/s/f", "d000/s/t/f",
                "d0000", "d001-x/f"], paths[300:308]
        for m in {1, 7, 255, 256, 257, 1279, 1280, 1281, len(whole) - 1, len(whole)}:
            if 0 < m <= len(whole):
                got = pg("grep", "-E", "^.", "p", "--max", str(m), *scope).out.splitlines()
                assert got == whole[:m], (scope, m)
    # The API pages resume from their cursor, one at every offset of the 7 files of a group
    # (pages of 6): the pages put together are the whole search.
    from server_util import Server
    want = pg.json("grep", "-E", "^.", "p")
    s = Server(pg)
    try:
        got, _ = s.pages("/api/v1/projects/p/search/code?q=%5E.&regex=true&limit=6")
        assert got == want
    finally:
        s.stop()
