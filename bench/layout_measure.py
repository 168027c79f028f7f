#!/usr/bin/env python3
"""
What other layouts of the per-version metadata would cost (issue 14), measured on a real store
instead of guessed: docs/performance.md, "What 1.5x git would take".

    python3 bench/layout_measure.py STORE.db

STORE.db is a SQLite store, e.g. the one `bench/store_bench.py --keep` leaves behind. It is
copied; the copy is rewritten into each layout below, VACUUMed (so page space left by inserts
does not count for one layout and not the other), and measured by part with SQLite's dbstat:

  today          the store as it is
  dir ids        a file version names its directory by id (`dirs(project_id, path)`, once per
                 distinct directory) and keeps only its own name; directory trees likewise
  + thin trees   directory trees keep their id, not their entries (a re-sync would rebuild the
                 entries of the directories on changed paths from the rows)
  + binary ids   blobs.sha and code_blobs.sha hold 20 bytes, not 40 hex digits

Each layout keeps the indexes today's queries need, with the directory id where the path was.
Nothing here is used by projsync; it prints figures, never asserts.
"""
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

MIB = 1 << 20
CODE = ("code_",)


def parts(db):
    db.execute("VACUUM")
    out = {}
    for name, size in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        out[name] = size
    return out


def summary(label, p):
    def total(*prefixes):
        return sum(v for k, v in p.items() if k.startswith(prefixes)) / MIB
    meta = total("file_versions", "dir_trees", "dirs", "sqlite_autoindex_dirs")
    code = total("code_", "sqlite_autoindex_code_")
    allm = sum(p.values()) / MIB
    print(f"{label:14s} total {allm:6.2f} MiB  without the code index {allm - code:6.2f}  "
          f"file versions + directory trees {meta:5.2f}  blobs "
          f"{total('blobs', 'sqlite_autoindex_blobs'):5.2f}  code index {code:5.2f}")


# The indexes today's directory-tree queries need, with the directory id where the path was.
DIR_TREES_INDEXES = """
    CREATE INDEX dir_trees_path ON dir_trees(project_id, dir_id, introduced_by);
    CREATE INDEX dir_trees_introduced ON dir_trees(introduced_by);
    CREATE INDEX dir_trees_superseded ON dir_trees(project_id, superseded_by)
        WHERE superseded_by IS NOT NULL;
"""


def split(path):
    i = path.rfind("/")
    return ("", path) if i < 0 else (path[:i], path[i + 1:])


def dir_ids(db):
    db.executescript("""
        CREATE TABLE dirs (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,
                           path TEXT NOT NULL, UNIQUE (project_id, path));
        CREATE TABLE fv (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,
                         dir_id INTEGER NOT NULL, name TEXT NOT NULL, mode INTEGER NOT NULL,
                         sha BLOB NOT NULL, size INTEGER, introduced_by INTEGER NOT NULL,
                         superseded_by INTEGER);
        CREATE TABLE dt (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,
                         dir_id INTEGER NOT NULL, tree_sha BLOB NOT NULL, entries BLOB NOT NULL,
                         introduced_by INTEGER NOT NULL, superseded_by INTEGER);
    """)
    ids = {}

    def did(pid, path):
        if (pid, path) not in ids:
            ids[pid, path] = len(ids) + 1
            db.execute("INSERT INTO dirs VALUES (?, ?, ?)", (ids[pid, path], pid, path))
        return ids[pid, path]

    for r in db.execute("SELECT id, project_id, path, mode, sha, size, introduced_by, "
                        "superseded_by FROM file_versions ORDER BY id").fetchall():
        d, name = split(r[2])
        db.execute("INSERT INTO fv VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (r[0], r[1], did(r[1], d), name, *r[3:]))
    # A store from schema 20 on has no entries (thin trees already): an empty body each.
    cols = [r[1] for r in db.execute("PRAGMA table_info(dir_trees)")]
    entries = "entries" if "entries" in cols else "x''"
    for r in db.execute(f"SELECT id, project_id, path, tree_sha, {entries}, introduced_by, "
                        "superseded_by FROM dir_trees ORDER BY id").fetchall():
        db.execute("INSERT INTO dt VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (r[0], r[1], did(r[1], r[2]), *r[3:]))
    db.executescript("""
        DROP TABLE file_versions; DROP TABLE dir_trees;
        ALTER TABLE fv RENAME TO file_versions; ALTER TABLE dt RENAME TO dir_trees;
        CREATE INDEX file_versions_path ON file_versions(project_id, dir_id, name, introduced_by);
        CREATE INDEX file_versions_introduced ON file_versions(introduced_by);
        CREATE INDEX file_versions_superseded ON file_versions(project_id, superseded_by)
            WHERE superseded_by IS NOT NULL;
        CREATE INDEX file_versions_sha ON file_versions(sha);
    """ + DIR_TREES_INDEXES)
    db.commit()


def thin_trees(db):
    # Rebuilt rather than emptied in place so the column costs nothing at all.
    db.executescript("""
        CREATE TABLE dt (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,
                         dir_id INTEGER NOT NULL, tree_sha BLOB NOT NULL,
                         introduced_by INTEGER NOT NULL, superseded_by INTEGER);
        INSERT INTO dt SELECT id, project_id, dir_id, tree_sha, introduced_by, superseded_by
            FROM dir_trees;
        DROP TABLE dir_trees; ALTER TABLE dt RENAME TO dir_trees;
    """ + DIR_TREES_INDEXES)
    db.commit()


def binary_ids(db):
    db.create_function("unhex", 1, lambda h: bytes.fromhex(h) if isinstance(h, str) else h)
    db.executescript("""
        UPDATE blobs SET sha = unhex(sha);
        UPDATE code_blobs SET sha = unhex(sha);
    """)
    db.commit()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="projsync-layout-") as tmp:
        copy = Path(tmp) / "store.db"
        src = sqlite3.connect(sys.argv[1])
        dst = sqlite3.connect(copy)
        src.backup(dst)  # a consistent copy, WAL included
        src.close()
        summary("today", parts(dst))
        if dst.execute("SELECT 1 FROM sqlite_master WHERE name = 'dirs'").fetchone():
            print("(the store already names directories by id: schema 26)")
        else:
            dir_ids(dst)
            summary("dir ids", parts(dst))
        thin_trees(dst)
        summary("+ thin trees", parts(dst))
        binary_ids(dst)
        summary("+ binary ids", parts(dst))
        dst.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
