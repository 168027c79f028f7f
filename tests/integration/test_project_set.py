"""
`project set`: changed settings take effect on the next sync, what is not given stays, and bad
input changes nothing.
"""
from conftest import one_error_line


def test_settings_apply_to_the_next_sync(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    repo.branch("release/1.x")
    ps.add("p", str(repo.path))
    assert ps.sync("p")["branch"] == "main"

    p = ps.json("project", "set", "p", "--branch", "release/1.x", "--max-blob-size", "10")
    assert p["branch"] == "release/1.x" and p["max_blob_size"] == 10
    assert p["memory_globs"] == [".memory/**/*.md"]          # untouched

    repo.switch("release/1.x")
    repo.write("big.txt", "more than ten bytes\n")
    repo.commit("big")
    s = ps.sync("p")
    assert s["branch"] == "release/1.x" and s["skipped_large"] == 1
    r = ps("cat", "p", "big.txt")
    assert r.rc == 2 and "not stored" in r.err and one_error_line(r.err), r

    p = ps.json("project", "set", "p", "--default-branch", "--memory-glob", "notes/*.md",
                "--memory-glob", "docs/**/*.md")
    assert p["branch"] is None and p["max_blob_size"] == 10
    assert p["memory_globs"] == ["notes/*.md", "docs/**/*.md"]
    assert ps.project("p") == p


def test_bad_input_changes_nothing(ps, repo):
    repo.write("a.txt", "a\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    before = ps.project("p")
    for args, rc in ((("project", "set", "nope", "--branch", "x"), 3),
                     (("project", "set", "p", "--branch", "x", "--default-branch"), 2),
                     (("project", "set", "p", "--max-blob-size", "-5"), 2),
                     # past what the stores can hold, or 100 years
                     (("project", "set", "p", "--max-blob-size", "257M"), 2),
                     (("project", "set", "p", "--max-blob-size", str(256 * 2 ** 20 + 1)), 2),
                     (("project", "set", "p", "--keep-days", "36501"), 2),
                     (("project", "add", "q", str(repo.path), "--max-blob-size", "1G"), 2),
                     (("project", "add", "q", str(repo.path), "--keep-days", "99999"), 2),
                     (("project", "set", "p", "--memory-glob", ""), 2),
                     (("project", "set", "p", "--continue-history"), 2),
                     (("project", "set"), 2),
                     (("project", "set", "p", "extra"), 2)):
        r = ps(*args)
        assert r.rc == rc and one_error_line(r.err), r
    assert ps.project("p") == before
    assert ps("project", "show", "q").rc == 3
    p = ps.json("project", "set", "p", "--max-blob-size", "256M", "--keep-days", "36500")
    assert p["max_blob_size"] == 256 * 2 ** 20 and p["keep_days"] == 36500
