"""
The source tree is layered (docs/architecture.md §2): util -> model -> store | source -> core ->
server | cli, every arrow pointing down. A file may include its own part and the parts below it,
never one above or beside it (the store never sees a source, a source never the store), so the
domain types stay where both the store and the sources can use them without reaching up into the
pipeline. This reads every `#include "part/..."` under src/ and fails on an arrow up.
"""
import re

from conftest import ROOT

# What each part may include besides itself. The CLI starts the server (`projsync serve`), so
# the server is below it; main.c is the program and may include anything.
BELOW = {
    "util": set(),
    "model": {"util"},
    "store": {"util", "model"},
    "source": {"util", "model"},
    "core": {"util", "model", "store", "source"},
    "server": {"util", "model", "store", "source", "core"},
    "cli": {"util", "model", "store", "source", "core", "server"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def arrows_up(src):
    """Every include that breaks the layering, as "file: include (part -> other)" lines."""
    bad = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".c", ".h") or not path.is_file():
            continue
        rel = path.relative_to(src)
        if len(rel.parts) < 2:
            continue                      # main.c
        part = rel.parts[0]
        if part not in BELOW:
            bad.append(f"{rel}: src/{part}/ is not a known layer")
            continue
        for inc in INCLUDE.findall(path.read_text(encoding="utf-8", errors="replace")):
            other = inc.split("/", 1)[0] if "/" in inc else None
            if other is None:
                bad.append(f'{rel}: "{inc}" does not name its part (write "{part}/...")')
            elif other != part and other not in BELOW[part]:
                bad.append(f'{rel}: "{inc}" ({part} -> {other})')
    return bad


def test_no_include_points_up_a_layer():
    assert not arrows_up(ROOT / "src"), "\n".join(arrows_up(ROOT / "src"))


def test_every_part_of_src_is_a_layer():
    parts = {p.name for p in (ROOT / "src").iterdir() if p.is_dir()}
    assert parts == set(BELOW), f"layers in src/ {sorted(parts)} vs the rules {sorted(BELOW)}"


def test_an_arrow_up_is_caught(tmp_path):
    # The check itself: the store reaching into core, a model header reaching a source, and a
    # source reaching the store (beside, not below) are each reported; a file of main's is not.
    for rel, text in {
        "store/x.c": '#include "store/store.h"\n#include "core/json.h"\n',
        "model/y.h": '#include "util/util.h"\n# include "source/source.h"\n',
        "source/z.c": '#include "store/store.h"\n',
        "main.c": '#include "cli/cli.h"\n',
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert arrows_up(tmp_path) == [
        'model/y.h: "source/source.h" (model -> source)',
        'source/z.c: "store/store.h" (source -> store)',
        'store/x.c: "core/json.h" (store -> core)',
    ]
