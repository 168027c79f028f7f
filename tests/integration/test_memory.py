"""
Memory entries through the real binary and a real git repository (docs/architecture.md §7):
the full life of an entry (created by sync 1; superseded by a change in sync 2 and hidden from
search unless asked; restored; kept by a sync that does not touch the file; superseded by a sync
that changes it; superseded when the file is deleted), manual entries, search that treats any
text as words, never mixes projects and ranks a title match above a body mention, the exit
codes, and a sync killed inside its finalize transaction leaving memory exactly as it was.
A change of the memory globs (`project set --memory-glob`) takes effect on the next sync, even
one whose head did not move; a killed sync leaves it pending.
"""
import json
import signal
import sqlite3

import pytest

from conftest import one_error_line, psql

KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)


def entries(ps, name, *opts):
    return ps.json("memory", "list", name, *opts)


def active_by_path(ps, name):
    return {e["source_ref"]: e for e in entries(ps, name) if e["source_ref"]}


def search_ids(ps, name, q, *opts):
    # `--` so that text starting with '-' is text (ps.json would add --json after it).
    r = ps.ok("memory", "search", name, "--json", *opts, "--", q)
    return [e["id"] for e in json.loads(r.out)]


@pytest.fixture
def world(ps, repo):
    repo.write(".memory/deploy.md",
               "---\ntitle: Deploy guide\ntags: [ops, release]\n---\n"
               "Ship with make release; first version mentions kiwi.\n")
    repo.write(".memory/team/people.md", "# Team\nWho owns what.\n")
    repo.write("README.md", "kiwi in the readme is not memory\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    return ps, repo


def test_entry_life(world):
    ps, repo = world

    # Sync 1 creates one entry per memory file, nothing for other files.
    s1 = ps.sync("p")
    act = active_by_path(ps, "p")
    assert set(act) == {".memory/deploy.md", ".memory/team/people.md"}
    e1 = act[".memory/deploy.md"]
    assert e1["title"] == "Deploy guide"
    assert e1["tags"] == ["ops", "release"]
    assert e1["source"] == "git"
    assert e1["status"] == "active"
    assert e1["introduced_by_sync"] == s1["id"]
    assert e1["superseded_by_sync"] is None and e1["restored_from"] is None
    assert "kiwi" in e1["content"] and "title:" not in e1["content"]
    assert act[".memory/team/people.md"]["title"] == "Team"
    assert search_ids(ps, "p", "kiwi") == [e1["id"]]

    # Sync 2 modifies the file: new active entry; the old one superseded, hidden from search,
    # shown (marked) with --include-superseded.
    repo.write(".memory/deploy.md", "# Deploy guide\nSecond version mentions mango.\n")
    repo.commit()
    s2 = ps.sync("p")
    e2 = active_by_path(ps, "p")[".memory/deploy.md"]
    assert e2["id"] != e1["id"] and e2["introduced_by_sync"] == s2["id"]
    assert search_ids(ps, "p", "kiwi") == []
    found = entries(ps, "p", "--search", "kiwi", "--include-superseded")
    assert [(e["id"], e["status"]) for e in found] == [(e1["id"], "superseded")]
    assert "<mark>kiwi</mark>" in found[0]["snippet"]
    old = ps.json("memory", "show", e1["id"])
    assert old["status"] == "superseded" and old["superseded_by_sync"] == s2["id"]

    # Restore the sync-1 version: a new active copy; the sync-2 entry superseded by it.
    r = ps.ok("memory", "restore", e1["id"], "--json")
    restored = json.loads(r.out)
    assert restored["status"] == "active" and restored["restored_from"] == e1["id"]
    assert restored["content"] == e1["content"] and restored["title"] == e1["title"]
    assert active_by_path(ps, "p")[".memory/deploy.md"]["id"] == restored["id"]
    was2 = ps.json("memory", "show", e2["id"])
    assert was2["status"] == "superseded" and was2["superseded_by_sync"] is None
    assert search_ids(ps, "p", "kiwi") == [restored["id"]]
    assert search_ids(ps, "p", "mango") == []

    # Restoring an active entry is a no-op with a clear message; so is restoring the same old
    # version again (safe to retry: no second copy); unknown ids are exit 3.
    r = ps.ok("memory", "restore", restored["id"])
    assert "already active" in r.out
    assert len(entries(ps, "p", "--include-superseded")) == 4
    r = ps.ok("memory", "restore", e1["id"])
    assert "already current as entry %d" % restored["id"] in r.out, r.out
    r = ps.ok("memory", "restore", e1["id"], "--json")
    assert json.loads(r.out)["id"] == restored["id"]
    assert "already current" in r.err
    assert len(entries(ps, "p", "--include-superseded")) == 4
    assert active_by_path(ps, "p")[".memory/deploy.md"]["id"] == restored["id"]
    r = ps("memory", "restore", "999999")
    assert r.rc == 3 and one_error_line(r.err), r
    assert ps("memory", "show", "999999").rc == 3
    assert ps("memory", "history", "999999").rc == 3

    # Sync 3 does not touch the file: the restored entry stays active.
    repo.write(".memory/team/people.md", "# Team\nWho owns what, updated.\n")
    repo.commit()
    ps.sync("p")
    assert active_by_path(ps, "p")[".memory/deploy.md"]["id"] == restored["id"]

    # Sync 4 changes the file: the restored entry is superseded by that sync.
    repo.write(".memory/deploy.md", "# Deploy guide\nThird version mentions papaya.\n")
    repo.commit()
    s4 = ps.sync("p")
    e4 = active_by_path(ps, "p")[".memory/deploy.md"]
    assert e4["introduced_by_sync"] == s4["id"]
    was_r = ps.json("memory", "show", restored["id"])
    assert was_r["status"] == "superseded" and was_r["superseded_by_sync"] == s4["id"]

    # A manual entry, then deleting the file: its entry is superseded, the manual one stays.
    added = ps.json("memory", "add", "p", "--title", "Handwritten", "--text", "papaya by hand",
                    "--tag", "note")
    assert added["source"] == "manual" and added["source_ref"] is None
    repo.rm(".memory/deploy.md")
    repo.commit()
    s5 = ps.sync("p")
    assert ".memory/deploy.md" not in active_by_path(ps, "p")
    gone = ps.json("memory", "show", e4["id"])
    assert gone["status"] == "superseded" and gone["superseded_by_sync"] == s5["id"]
    assert search_ids(ps, "p", "papaya") == [added["id"]]
    assert ps.json("memory", "show", added["id"])["status"] == "active"

    # The version list of the path, newest first, from any of its entries.
    hist = ps.json("memory", "history", e1["id"])
    assert [h["id"] for h in hist] == [e4["id"], restored["id"], e2["id"], e1["id"]]
    assert hist[1]["restored_from"] == e1["id"]
    assert [h["introduced_by_sync"] for h in hist] == [s4["id"], None, s2["id"], s1["id"]]
    assert all(h["status"] == "superseded" for h in hist)

    # The tables for people.
    out = ps.ok("memory", "history", e1["id"]).out
    assert "restore of %d" % e1["id"] in out
    out = ps.ok("memory", "search", "p", "handwritten").out
    assert "Handwritten" in out
    assert ps.ok("memory", "p", "--search", "handwritten").out == out   # the short form


def test_search_input_and_isolation(world, make_repo):
    ps, repo = world
    ps.sync("p")
    ps.ok("memory", "add", "p", "--title", "Zebra care", "--text", "Feeding and housing.")
    ps.ok("memory", "add", "p", "--title", "Animals",
          "--text", "A note about lions and rivers that mentions the zebra once.")
    other = make_repo("other")
    other.write(".memory/z.md", "# Zebra elsewhere\nzebra zebra zebra\n")
    other.commit("c1")
    ps.add("q", str(other.path))
    ps.sync("q")

    found = entries(ps, "p", "--search", "zebra")
    assert [e["title"] for e in found] == ["Zebra care", "Animals"]  # title above body
    assert all(e["project"] == "p" for e in found)
    assert [e["project"] for e in entries(ps, "q", "--search", "zebra")] == ["q"]

    for q in ['"', 'zebra"', "-zebra", "zebra*", "(zebra", "NEAR(zebra", "zebra AND",
              "OR zebra", "zebra:x", "^zebra", "{zebra}", "zebra NOT"]:
        r = ps("memory", "p", "--search", q, "--json")
        assert r.rc in (0, 2), r
        assert "SQL" not in r.err and "fts5" not in r.err and "syntax" not in r.err, r
    assert len(search_ids(ps, "p", "-zebra")) == 2  # a word, not "NOT zebra"
    for q in ["", "   ", "- * ("]:
        r = ps("memory", "p", "--search", q)
        assert r.rc == 2 and one_error_line(r.err) and "empty query" in r.err, r
    # Bytes that are not UTF-8 (a surrogate escape is passed as the raw byte) are refused as
    # the bad input they are, not answered with "no entries match".
    for args in (["search", "p", "--", "\udcff"], ["search", "p", "--", "zebra\udcff"],
                 ["p", "--search", "caf\udcc3"]):
        r = ps("memory", *args)
        assert r.rc == 2 and one_error_line(r.err) and "not valid UTF-8" in r.err, r
        assert r.out == "", r

    assert ps("memory", "nosuch").rc == 3
    assert ps("memory", "nosuch", "--search", "x").rc == 3
    assert ps("memory", "show", "abc").rc == 2
    assert ps("memory", "add", "p", "--title", "x").rc == 2                    # no content
    assert ps("memory", "add", "p", "--title", "x", "--text", "a", "--file", "f").rc == 2
    assert ps("memory", "add", "nosuch", "--title", "x", "--text", "a").rc == 3
    assert ps("memory", "add", "p", "--title", "", "--text", "a").rc == 2
    for args in (["--help"], ["list", "--help"], ["search", "--help"], ["show", "--help"],
                 ["history", "--help"], ["restore", "--help"], ["add", "--help"]):
        r = ps.ok("memory", *args)
        assert r.out.startswith("usage: projsync memory"), r


SUBCOMMANDS = ("list", "search", "show", "history", "restore", "add")


def test_a_page_past_the_end_does_not_say_the_project_has_no_entries(ps, repo):
    # `memory list p --offset 5` on a project with two notes said "p has no memory entries".
    repo.write(".memory/a.md", "# Alpha\nkiwi\n")
    repo.write(".memory/b.md", "# Beta\nkiwi\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    ps.sync("p")
    assert len(ps.json("memory", "list", "p", "--limit", "1", "--offset", "1")) == 1
    out = ps.ok("memory", "list", "p", "--offset", "5").out
    assert out == "p has no more memory entries past the first 5\n", out
    out = ps.ok("memory", "search", "p", "kiwi", "--offset", "2").out
    assert out == "no memory entries of p match past the first 2\n", out
    # Without an offset the plain answers stay.
    assert ps.ok("memory", "search", "p", "papaya").out == "no memory entries of p match\n"
    ps.add("empty", str(repo.path))
    assert ps.ok("memory", "list", "empty").out == "empty has no memory entries\n"


def test_a_tag_holding_a_comma_is_quoted_in_text_output(ps, repo):
    # Tags are shown joined with ", ": the one tag "deploy, prod" read as two tags.
    repo.write(".memory/a.md", '---\ntitle: Alpha\ntags: ["deploy, prod", ops]\n---\nkiwi\n')
    repo.commit("c1")
    ps.add("p", str(repo.path))
    ps.sync("p")
    assert ps.json("memory", "list", "p")[0]["tags"] == ["deploy, prod", "ops"]
    listed = ps.ok("memory", "list", "p").out.splitlines()[1]
    assert listed.rstrip().endswith('"deploy, prod", ops'), listed
    assert 'tags        "deploy, prod", ops\n' in ps.ok("memory", "show", "1").out
    found = ps.ok("memory", "search", "p", "kiwi").out
    assert '["deploy, prod", ops]' in found, found
    # A plain tag stays bare.
    ps.ok("memory", "add", "p", "--title", "Hand", "--text", "x", "--tag", "solo")
    assert ps.ok("memory", "list", "p").out.splitlines()[1].rstrip().endswith("solo")


def test_front_matter_over_several_lines(ps, repo):
    # Block scalars (`title: |`, `title: >-`, `tags: |`) were skipped: the title fell back to
    # the file name and `|` became a tag. Block lists and wrapped flow lists read too.
    repo.write(".memory/lit.md", "---\ntitle: |\n  Literal title\ntags: |\n  ops\n  deploy\n---\n"
               "kiwi one\n")
    repo.write(".memory/fold.md", "---\ntitle: >-\n  A folded\n  title\ntags:\n  - a\n- b\n---\n"
               "kiwi two\n")
    repo.write(".memory/wrap.md", "---\ntitle: Wrapped\ntags: [x,\n  y]\n---\nkiwi three\n")
    repo.commit("c1")
    ps.add("p", str(repo.path))
    ps.sync("p")
    got = {e["source_ref"]: (e["title"], e["tags"], e["content"]) for e in ps.json("memory", "list", "p")}
    assert got == {
        ".memory/lit.md": ("Literal title", ["ops", "deploy"], "kiwi one\n"),
        ".memory/fold.md": ("A folded title", ["a", "b"], "kiwi two\n"),
        ".memory/wrap.md": ("Wrapped", ["x", "y"], "kiwi three\n"),
    }, got
    # The title is searchable as the title.
    assert [e["source_ref"] for e in ps.json("memory", "search", "p", "folded")] == [".memory/fold.md"]


def test_projects_named_like_subcommands(ps, repo):
    """A project may be named like any memory subcommand: `memory list NAME` and `memory search
    NAME TEXT` reach it, the subcommand words keep their meaning, and the short form `memory
    NAME [--search Q]` still works for every other name."""
    repo.write(".memory/a.md", "# Alpha\nkiwi and mango\n")
    repo.commit("c1")
    for name in SUBCOMMANDS + ("plain",):
        ps.add(name, str(repo.path))
        ps.sync(name)
    for name in SUBCOMMANDS + ("plain",):
        listed = ps.json("memory", "list", name)
        assert [e["project"] for e in listed] == [name], (name, listed)
        out = ps.ok("memory", "list", name).out
        assert "Alpha" in out and ".memory/a.md" in out, (name, out)
        found = ps.json("memory", "search", name, "kiwi", "mango")   # words joined
        assert [e["project"] for e in found] == [name] and "<mark>" in found[0]["snippet"]
        assert ps.json("memory", "search", name, "papaya") == []
        # Options anywhere, before the subcommand too.
        assert ps.json("memory", "--include-superseded", "list", name) == listed
        assert ps.json("memory", "--json", "search", name, "kiwi") == \
            ps.json("memory", "search", name, "kiwi")
    history_id = ps.json("memory", "list", "history")[0]["id"]

    # The subcommand words are never read as project names.
    r = ps("memory", "history")
    assert r.rc == 2 and one_error_line(r.err), r
    assert "needs a memory entry ID" in r.err and "memory list history" in r.err, r
    r = ps("memory", "show", "show")
    assert r.rc == 2 and "memory list show" in r.err, r
    out = ps.json("memory", "history", str(history_id))
    assert [e["project"] for e in out] == ["history"]
    assert ps.json("memory", "--json", "show", str(history_id))["id"] == history_id
    assert ps("memory", "search", "plain").rc == 2           # no text
    assert ps("memory", "list").rc == 2                      # no name
    assert ps("memory", "list", "plain", "extra").rc == 2
    assert ps("memory", "list", "nosuch").rc == 3
    assert ps("memory", "search", "nosuch", "kiwi").rc == 3

    # The short forms, kept: any name that is not a subcommand word; option values may be
    # subcommand words.
    assert ps.json("memory", "plain") == ps.json("memory", "list", "plain")
    assert ps.json("memory", "plain", "--search", "kiwi") == \
        ps.json("memory", "search", "plain", "kiwi")
    assert ps.json("memory", "--search", "show", "plain") == []
    assert ps.json("memory", "--db", str(ps.db), "list", "show")[0]["project"] == "show"
    # Text that starts with '-' after `--`.
    assert len(json.loads(ps.ok("memory", "search", "plain", "--json", "--", "-kiwi").out)) == 1


def test_killed_sync_leaves_memory(world):
    ps, repo = world
    ps.sync("p")
    before = entries(ps, "p", "--include-superseded")

    repo.write(".memory/deploy.md", "# Deploy guide\nchanged by the killed sync\n")
    repo.rm(".memory/team/people.md")
    repo.write(".memory/new.md", "# New\nadded by the killed sync\n")
    repo.commit("c2")
    r = ps("sync", "p", "--json", env={"PROJSYNC_TEST_KILL_AT": "finalize:1"})
    assert r.rc in KILLED, r

    assert entries(ps, "p", "--include-superseded") == before
    assert search_ids(ps, "p", "killed", "--include-superseded") == []
    assert ps.json("status", "p")["running"] is None  # reaped: interrupted

    # The next sync applies all of it.
    ps.sync("p")
    act = active_by_path(ps, "p")
    assert set(act) == {".memory/deploy.md", ".memory/new.md"}
    assert "changed by the killed sync" in act[".memory/deploy.md"]["content"]
    assert len(search_ids(ps, "p", "killed")) == 2


def rescan_pending(ps):
    if ps.backend == "pg":
        return int(psql(ps.db, "SELECT memory_rescan FROM projects WHERE name = 'p'"))
    db = sqlite3.connect(ps.db)
    try:
        return db.execute("SELECT memory_rescan FROM projects WHERE name = 'p'").fetchone()[0]
    finally:
        db.close()


@pytest.fixture
def with_docs(world):
    ps, repo = world
    repo.write("docs/guide.md", "# Guide\nhow to use it, mentions mango\n")
    repo.write("docs/deep/faq.md", "# FAQ\nquestions\n")
    repo.write("docs/notes.txt", "not markdown\n")
    repo.commit("docs")
    ps.sync("p")
    manual = ps.json("memory", "add", "p", "--title", "By hand", "--text", "mango by hand")
    assert set(active_by_path(ps, "p")) == {".memory/deploy.md", ".memory/team/people.md"}
    return ps, repo, manual


def test_glob_change_applies_on_next_sync(with_docs):
    ps, repo, manual = with_docs
    before = active_by_path(ps, "p")
    ps.ok("project", "set", "p", "--memory-glob", "docs/**/*.md",
          "--memory-glob", ".memory/deploy.md")

    # The head did not move: the sync is up to date, and still applies the new globs.
    s = ps.sync("p")
    assert s["up_to_date"] is True
    act = active_by_path(ps, "p")
    assert set(act) == {".memory/deploy.md", "docs/guide.md", "docs/deep/faq.md"}
    assert act["docs/guide.md"]["title"] == "Guide"
    assert act["docs/guide.md"]["introduced_by_sync"] == s["id"]
    # Same blob, still matching: the entry is kept, not re-imported.
    assert act[".memory/deploy.md"]["id"] == before[".memory/deploy.md"]["id"]
    people = ps.json("memory", "show", str(before[".memory/team/people.md"]["id"]))
    assert people["status"] == "superseded" and people["superseded_by_sync"] == s["id"]
    # The manual entry is untouched.
    assert ps.json("memory", "show", str(manual["id"]))["status"] == "active"
    assert sorted(search_ids(ps, "p", "mango")) == sorted([manual["id"],
                                                          act["docs/guide.md"]["id"]])
    assert rescan_pending(ps) == 0

    # Done once: the following sync changes nothing.
    everything = entries(ps, "p", "--include-superseded")
    ps.sync("p")
    assert entries(ps, "p", "--include-superseded") == everything

    # The same globs again ask for nothing.
    ps.ok("project", "set", "p", "--memory-glob", "docs/**/*.md",
          "--memory-glob", ".memory/deploy.md")
    assert rescan_pending(ps) == 0


def test_glob_change_with_new_commit(with_docs):
    ps, repo, manual = with_docs
    ps.ok("project", "set", "p", "--memory-glob", "docs/*.md")
    repo.write("docs/guide.md", "# Guide v2\nchanged\n")
    repo.write(".memory/deploy.md", "# Deploy\nchanged, but no longer memory\n")
    repo.commit("c3")
    s = ps.sync("p")
    assert s["up_to_date"] is False
    act = active_by_path(ps, "p")
    assert set(act) == {"docs/guide.md"}
    assert act["docs/guide.md"]["title"] == "Guide v2"
    assert ps.json("memory", "show", str(manual["id"]))["status"] == "active"


def test_killed_sync_keeps_the_rescan_pending(with_docs):
    ps, repo, manual = with_docs
    ps.ok("project", "set", "p", "--memory-glob", "docs/**/*.md")
    before = entries(ps, "p", "--include-superseded")
    r = ps("sync", "p", "--json", env={"PROJSYNC_TEST_KILL_AT": "finalize:1"})
    assert r.rc in KILLED, r
    assert entries(ps, "p", "--include-superseded") == before
    assert rescan_pending(ps) != 0

    ps.sync("p")
    assert set(active_by_path(ps, "p")) == {"docs/guide.md", "docs/deep/faq.md"}
    assert rescan_pending(ps) == 0
    assert ps.json("memory", "show", str(manual["id"]))["status"] == "active"
