"""
The documentation ships with projsync: every document the code, the page and the docs point at
is in the repository, and every numbered section they cite exists. Nothing refers to notes that
only the team that wrote projsync had.
"""
import re
import subprocess

from conftest import ROOT

# Where references are made for readers (tests are scanned only for notes outside the tree:
# their fixtures name many made-up markdown files).
READER_DIRS = ("src/", "web/", "docs/", "scripts/")
READER_FILES = ("README.md", "Makefile", "meson.build")
OUTSIDE = re.compile(r"DESIGN(\.md)?\s*§|DESIGN\.md|STACK\.md|STYLE\.md|shared design|"
                     r"design note|\.\./shared/|/work/")
MD_REF = re.compile(r"(?<![\w*/.-])((?:[\w-]+/)*[\w-]+\.md)\b")
SECTION_REF = re.compile(r"((?:docs/)?architecture\.md)`?\s*§\s*(\d+)")


def tracked():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    names = [n for n in out.stdout.decode().split("\0") if n]
    return [n for n in names if not n.startswith("tests/node_modules/")
            and n != "tests/package-lock.json" and (ROOT / n).is_file()]


def text(name):
    try:
        return (ROOT / name).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""


def test_no_reference_leaves_the_repository():
    bad = []
    for name in tracked():
        if name == "tests/integration/test_docs.py":
            continue
        for i, line in enumerate(text(name).splitlines(), 1):
            if OUTSIDE.search(line):
                bad.append(f"{name}:{i}: {line.strip()}")
    assert not bad, "references to documents that do not ship:\n" + "\n".join(bad)


def test_every_cited_document_exists():
    missing = []
    for name in tracked():
        if not (name.startswith(READER_DIRS) or name in READER_FILES):
            continue
        for i, line in enumerate(text(name).splitlines(), 1):
            for ref in MD_REF.findall(line):
                if ref.startswith(".memory/") or "/.memory/" in ref:
                    continue  # memory notes of a project, not documents of projsync
                here = (ROOT / name).parent / ref
                if not ((ROOT / ref).is_file() or here.is_file() or (ROOT / "docs" / ref).is_file()):
                    missing.append(f"{name}:{i}: {ref}")
    assert not missing, "cited documents not in the repository:\n" + "\n".join(missing)


def test_every_cited_section_exists():
    arch = text("docs/architecture.md")
    sections = set(re.findall(r"^## (\d+)\.", arch, re.M))
    assert sections, "docs/architecture.md has no numbered sections"
    bad = []
    for name in tracked():
        for i, line in enumerate(text(name).splitlines(), 1):
            for _, num in SECTION_REF.findall(line):
                if num not in sections:
                    bad.append(f"{name}:{i}: §{num}")
    assert not bad, "sections of docs/architecture.md that do not exist:\n" + "\n".join(bad)
