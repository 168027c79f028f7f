"""
Defects found by a first-time user's walk through the CLI and the API, each kept fixed here:
text that is not UTF-8 where the store keeps JSON (memory tags, memory globs), ...
Arguments that are bytes go in through os.fsdecode, which the subprocess turns back into the
same bytes.
"""
import json
import os

from conftest import one_error_line


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

