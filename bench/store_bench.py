#!/usr/bin/env python3
"""
Store size benchmark (issue 14): what projsync's store costs next to git, for the same content,
measured in one run.

History: a repository synced at REV~N, ..., REV (six syncs evenly spread, N = 200 or as deep as
the history goes); prints the store's size on disk against a bare `git clone --shallow-since` of
the same range, the first sync's time, `cat` of random files at the oldest sync and a
`checkout` of the newest.
Generated: N generated text files (bench/sync_bench.py's generator), one sync; the store against
a tar.gz of the tree and against git's own copy of it (a bare repository after `git gc`), and
the first sync's time.
Generated, the issue's shape (--generated-large N): N generated C-like source files averaging
~4.2 KiB (414 MiB at 100,000; issue 14 names 409 MiB) whose tar.gz is ~4.6x smaller than the
text (the issue's 409 MiB -> 87 MB: 4.9x; libgit2's src/ and include/: 4.8x), one sync with
the code index and one without it (unless --no-code-index: then only without), against the
same tar.gz and git after gc. --no-history skips the history part. Each store is also shown by part (blob content, file versions, directory
trees, code index, commits: SQLite's dbstat) and git's pack by object type, so the gap between
the two can be read where it is.

    PROJSYNC_BIN=build-release/projsync python3 bench/store_bench.py \\
        [--repo PATH] [--rev REV] [--depth N] [--generated N] [--generated-large N]
        [--no-history] [--cat N] [--no-code-index] [--keep]

--repo defaults to this repository. Set PROJSYNC_BIN_BASELINE to a second binary (e.g. one built
from before a change) to measure it side by side. Figures are printed, never asserted.
"""
import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_bench  # noqa: E402  (the generator and git environment)

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def git(repo, *args, env=None):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          env=env or sync_bench.GIT_ENV).stdout.decode().strip()


def du(path):
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    return total


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(binary, db, *args, out=subprocess.DEVNULL):
    """Runs projsync; returns (wall seconds, CPU seconds, stdout). CPU time (user + system) is
    the steadier figure on a shared machine."""
    t, c = time.monotonic(), child_cpu()
    p = subprocess.run([binary, "--db", str(db), *args], stdout=out, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"projsync {' '.join(args)} failed: {p.stderr.decode()}")
    return time.monotonic() - t, child_cpu() - c, p.stdout


def store_size(db):
    """The database's size once the WAL is folded in: what a copy or backup of it takes."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return sum(os.path.getsize(p) for p in (db, f"{db}-wal") if os.path.exists(p))


# Where a store's bytes go, by what they serve (SQLite's dbstat; names not listed are "other").
PARTS = (
    ("blob content", ("blobs", "blobs_base", "blob_packs")),
    # dirs (schema 26): the directory paths file versions and directory trees name by id
    ("file versions", ("file_versions", "dirs")),
    ("directory trees", ("dir_trees",)),
    ("code index", ("code_",)),
    ("commits", ("sync_commits",)),
)


def store_parts(db):
    """MiB per part of the store (tables with their indexes), for the figures beside git's."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT s.name, coalesce(m.tbl_name, s.name), sum(s.pgsize) "
                           "FROM dbstat s LEFT JOIN sqlite_schema m ON m.name = s.name "
                           "GROUP BY s.name").fetchall()
    except sqlite3.DatabaseError:  # a sqlite3 without dbstat
        return None
    finally:
        con.close()
    out = {}
    for name, table, size in rows:
        part = next((label for label, prefixes in PARTS
                     if any(table == x or (x.endswith("_") and table.startswith(x))
                            or name.startswith(x) for x in prefixes)), "other")
        out[part] = out.get(part, 0) + size
    return out


def git_parts(repo):
    """Bytes on disk per object type in a packed repository (git cat-file's %(objectsize:disk))."""
    p = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-all-objects",
                        "--batch-check=%(objecttype) %(objectsize:disk)"],
                       check=True, capture_output=True, env=sync_bench.GIT_ENV)
    out = {}
    for line in p.stdout.decode().splitlines():
        kind, size = line.split()
        out[kind] = out.get(kind, 0) + int(size)
    return out


def fmt_parts(parts):
    return ", ".join(f"{k} {v / MIB:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))


def stats(binary, db):
    p = subprocess.run([binary, "--db", str(db), "stats", "--json"], capture_output=True)
    return json.loads(p.stdout)["store"] if p.returncode == 0 else None


def bench_history(tmp, binary, label, src, revs, ncat, add_opts=()):
    work = tmp / f"src-{label}.git"
    if not work.exists():
        subprocess.run(["git", "clone", "-q", "--bare", str(src), str(work)], check=True,
                       env=sync_bench.GIT_ENV)
    db = tmp / f"store-{label}" / "projsync.db"
    db.parent.mkdir()
    git(work, "update-ref", "refs/heads/benchsync", revs[0])
    run(binary, db, "project", "add", "bench", str(work), "--branch", "benchsync", *add_opts)
    first = None
    later_s = later_cpu = 0.0
    for rev in revs:
        git(work, "update-ref", "refs/heads/benchsync", rev)
        t, c, _ = run(binary, db, "sync", "bench")
        if first is None:
            first = (t, c)
        else:  # the syncs that store new versions of paths (deltas, where they are built)
            later_s, later_cpu = later_s + t, later_cpu + c
    size = store_size(db)
    parts = store_parts(db)
    # cat of random files at the oldest sync, then checkout of the newest.
    _, _, out = run(binary, db, "history", "bench", "--json", out=subprocess.PIPE)
    syncs = sorted(s["id"] for s in json.loads(out) if s["status"] == "succeeded")
    _, _, out = run(binary, db, "files", "bench", "--at", str(syncs[0]), "--json",
                 out=subprocess.PIPE)
    paths = [f["path"] for f in json.loads(out) if f["type"] == "blob" and f["mode"] != "120000"]
    random.seed(14)
    pick = random.sample(paths, min(ncat, len(paths)))
    cat_s = cat_cpu = 0.0
    for p in pick:
        t, c, _ = run(binary, db, "cat", "bench", p, "--at", str(syncs[0]))
        cat_s, cat_cpu = cat_s + t, cat_cpu + c
    # The same at the newest sync, whose changed files are the ends of delta chains (a delta
    # is built against the previous version, so the newest versions cost the most to read).
    _, _, out = run(binary, db, "files", "bench", "--json", out=subprocess.PIPE)
    paths = [f["path"] for f in json.loads(out) if f["type"] == "blob" and f["mode"] != "120000"]
    random.seed(14)
    pick_new = random.sample(paths, min(ncat, len(paths)))
    cat_new_s = cat_new_cpu = 0.0
    for p in pick_new:
        t, c, _ = run(binary, db, "cat", "bench", p)
        cat_new_s, cat_new_cpu = cat_new_s + t, cat_new_cpu + c
    co = tmp / f"checkout-{label}"
    checkout_s, checkout_cpu, _ = run(binary, db, "checkout", "bench", str(co))
    shutil.rmtree(co)
    return {"store": size, "first_sync_s": first[0], "first_sync_cpu": first[1],
            "later_s": later_s, "later_cpu": later_cpu, "cat_s": cat_s,
            "cat_cpu": cat_cpu, "cat_n": len(pick), "cat_new_s": cat_new_s,
            "cat_new_cpu": cat_new_cpu, "checkout_s": checkout_s,
            "checkout_cpu": checkout_cpu, "stats": stats(binary, db), "parts": parts}


def git_shallow_size(tmp, src, revs):
    since = git(src, "log", "-1", "--format=%cI", revs[0])
    work = tmp / "src-git.git"
    if not work.exists():
        subprocess.run(["git", "clone", "-q", "--bare", str(src), str(work)], check=True,
                       env=sync_bench.GIT_ENV)
    git(work, "update-ref", "refs/heads/benchsync", revs[-1])
    dest = tmp / "shallow.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--no-local", "--single-branch",
                    "--branch", "benchsync", f"--shallow-since={since}", f"file://{work}",
                    str(dest)], check=True, env=sync_bench.GIT_ENV)
    return du(dest)


# The generated tree (--generated-large): C-like files whose text is drawn from a
# vocabulary, not repeated. Chosen before the store was measured on it; its one calibration is
# the tar.gz ratio (~4.6x, as the tree and real C code), never the store's figures.
ONSETS = ("b c d f g h j k l m n p r s t v w z br ch cl cr dr fl gr pl pr sh sl sp st str th "
          "tr").split()
VOWELS = "a e i o u ai ea ee io ou oa".split()
CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "ck", "nd", "ng", "nt", "rt", "st", "x")
LARGE_HEADER = ("/*\n * Copyright (C) the generated project contributors. All rights reserved.\n"
                " *\n * This file is part of a generated tree, distributed under the terms of\n"
                " * the license found in the COPYING file in the root of this source tree.\n"
                " */\n\n")
LARGE_TYPES = ("int", "size_t", "const char *", "char *", "unsigned int", "uint32_t", "int64_t",
               "bool", "void *", "double")
_vocab = None


def vocabulary():
    """20,000 pronounceable words, drawn by Zipf's law (s = 1.15) as identifiers and prose."""
    global _vocab
    if _vocab is None:
        rng = random.Random(14)
        words, seen = [], set()
        while len(words) < 20000:
            w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
                        for _ in range(rng.choice((1, 1, 2, 2, 2, 3))))
            if w not in seen:
                seen.add(w)
                words.append(w)
        cum, t = [], 0.0
        for k in range(len(words)):
            t += 1.0 / (k + 1) ** 1.15
            cum.append(t)
        _vocab = (words, cum)
    return _vocab


def large_path_of(i):
    return f"pkg{i // 1000:03}/mod{(i // 100) % 10}/file{i:06}.c"


def large_content_of(i):
    """File i: a license header, includes, then functions (comments, declarations, calls,
    branches, loops) until a size drawn log-normally (median ~3.1 KiB, mean ~4.2 KiB). Each file
    names its own module and 24 identifiers of its own, and draws the rest from the vocabulary."""
    vocab, cum = vocabulary()
    rng = random.Random(i * 7919 + 14)
    rnd = rng.random
    target = int(min(max(rng.lognormvariate(8.05, 0.6), 300), 40000))

    def words(k):
        return rng.choices(vocab, cum_weights=cum, k=k)

    mod = "_".join(words(2))
    local = words(24)
    nl = len(local)
    types = ["struct %s_%s" % (mod, w) for w in words(4)] + list(LARGE_TYPES)
    funcs = ["%s_%s" % (mod, "_".join(words(rng.choice((1, 2))))) for _ in range(12)]

    def ident():
        return local[int(rnd() * nl)] if rnd() < 0.92 else words(1)[0]

    out = [LARGE_HEADER,
           "".join('#include "%s/%s.h"\n' % tuple(words(2)) for _ in range(rng.randint(2, 8))),
           "\n"]
    size = sum(map(len, out))
    while size < target:
        lines = []
        if rnd() < 0.35:
            lines.append("/*\n")
            for _ in range(rng.randint(1, 4)):
                lines.append(" * " + " ".join(words(rng.randint(6, 12))) + "\n")
            lines.append(" */\n")
        args = ", ".join("%s %s" % (rng.choice(types), ident())
                         for _ in range(rng.randint(1, 4)))
        lines.append("%s%s %s(%s)\n{\n" % ("static " if rnd() < 0.5 else "", rng.choice(types),
                                           rng.choice(funcs), args))
        for _ in range(rng.randint(1, 3)):
            lines.append("\t%s %s = %d;\n" % (rng.choice(types), ident(),
                                               rng.choice((0, 0, 0, 1, -1, 64))))
        depth = 1
        for _ in range(rng.randint(4, 30)):
            ind = "\t" * depth
            r = rnd()
            if r < 0.2:
                lines.append("%sif (%s %s %s) {\n" % (ind, ident(),
                                                      rng.choice(("==", "!=", "<", ">=")),
                                                      rng.choice(("NULL", "0", ident(), "1"))))
                depth += 1
            elif r < 0.28 and depth > 1:
                depth -= 1
                lines.append("\t" * depth + "}\n")
            elif r < 0.45:
                lines.append("%s%s = %s(%s);\n" % (ind, ident(), rng.choice(funcs),
                                                   ", ".join(ident()
                                                             for _ in range(rng.randint(0, 3)))))
            elif r < 0.55:
                lines.append("%sif ((error = %s(%s, %s)) < 0)\n%s\tgoto done;\n"
                             % (ind, rng.choice(funcs), ident(), ident(), ind))
            elif r < 0.59:
                lines.append("%s/* %s */\n" % (ind, " ".join(words(rng.randint(3, 9)))))
            elif r < 0.72:
                lines.append('%s%s(%s, "%s");\n'
                             % (ind, rng.choice(("log_error", "log_debug", "set_error")),
                                ident(), " ".join(words(rng.randint(2, 6)))))
            elif r < 0.8:
                lines.append("%sfor (i = 0; i < %s; i++)\n" % (ind, ident()))
                lines.append("%s\t%s[i] = %s->%s;\n" % (ind, ident(), ident(), ident()))
            elif r < 0.9:
                lines.append("%s%s->%s = %s;\n" % (ind, ident(), ident(),
                                                   rng.choice((ident(), "NULL", "0", "1"))))
            else:
                lines.append("%sreturn %s;\n" % (ind, rng.choice(("0", "-1", "error", ident()))))
        while depth > 1:
            depth -= 1
            lines.append("\t" * depth + "}\n")
        lines.append("\ndone:\n\treturn error;\n}\n\n")
        text = "".join(lines)
        out.append(text)
        size += len(text)
    return "".join(out).encode()


def make_large_repo(tmp, n):
    """The issue-shaped tree as one commit, streamed into git fast-import (400 MiB at 100k)."""
    repo = tmp / f"repo-large-{n}.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True,
                   env=sync_bench.GIT_ENV)
    p = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=repo, stdin=subprocess.PIPE,
                         env=sync_bench.GIT_FAST_ENV)
    p.stdin.write(sync_bench.commit_stream(f"{n} files", ()))
    raw = 0
    for i in range(n):
        data = large_content_of(i)
        raw += len(data)
        p.stdin.write(b"M 100644 inline %s\ndata %d\n%s\n"
                      % (large_path_of(i).encode(), len(data), data))
    p.stdin.close()
    if p.wait() != 0:
        sys.exit("git fast-import failed")
    return repo, raw


def bench_generated(tmp, binary, label, n, add_opts=(), key=None):
    key = key or str(n)
    repo = tmp / f"repo-{key}.git"
    if not repo.exists():
        repo = sync_bench.make_repo(tmp, n)
    db = tmp / f"gen-{key}-{label}{'-no-index' if add_opts else ''}" / "projsync.db"
    db.parent.mkdir()
    run(binary, db, "project", "add", "gen", str(repo), *add_opts)
    load = os.getloadavg()[0]
    t, c, _ = run(binary, db, "sync", "gen")
    r = {"store": store_size(db), "first_sync_s": t, "first_sync_cpu": c,
         "load": (load, os.getloadavg()[0]), "stats": stats(binary, db), "parts": store_parts(db)}
    if key != str(n):  # the issue-shaped tree: 200+ MiB a store at 100k, freed even with --keep
        shutil.rmtree(db.parent)
    return r


def tar_gz_size(tmp, n, key=None):
    key = key or str(n)
    repo = tmp / f"repo-{key}.git"
    out = tmp / f"tree-{key}.tar.gz"
    with open(out, "wb") as f:
        subprocess.run(["git", "-C", str(repo), "archive", "--format=tar.gz", "main"],
                       stdout=f, check=True)
    return os.path.getsize(out)


def git_packed_size(tmp, n, key=None):
    """The generated tree as git keeps it: a bare repository after `git gc` (one pack)."""
    repo = tmp / f"repo-{key or n}.git"
    subprocess.run(["git", "-C", str(repo), "gc", "-q"], check=True, env=sync_bench.GIT_ENV)
    return du(repo / "objects")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--repo", default=str(ROOT))
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--depth", type=int, default=200)
    ap.add_argument("--generated", type=int, default=10000)
    ap.add_argument("--generated-large", type=int, default=0, metavar="N",
                    help="also N files of the issue's shape (~4.2 KiB of C-like text each)")
    ap.add_argument("--no-history", action="store_true", help="skip the --repo history part")
    ap.add_argument("--cat", type=int, default=1000)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-code-index", action="store_true",
                    help="add the projects with --no-code-index (the store without the index)")
    args = ap.parse_args()
    bins = [("projsync", os.environ.get("PROJSYNC_BIN") or
             str(ROOT / "build-release" / "projsync"))]
    if os.environ.get("PROJSYNC_BIN_BASELINE"):
        bins.append(("baseline", os.environ["PROJSYNC_BIN_BASELINE"]))
    for _label, b in bins:
        if not os.access(b, os.X_OK):
            sys.exit(f"projsync binary not found at {b} (set PROJSYNC_BIN)")

    add_opts = ("--no-code-index",) if args.no_code_index else ()
    first_parents = git(args.repo, "rev-list", "--first-parent", args.rev).split()
    depth = min(args.depth, len(first_parents) - 1)
    revs = [first_parents[depth - depth * i // 5] for i in range(6)]
    tmp = Path(tempfile.mkdtemp(prefix="projsync-store-bench-"))
    try:
        if args.no_history:
            revs = []
        if revs:
            git_size = git_shallow_size(tmp, args.repo, revs)
            print(f"history: {args.repo} at {args.rev}~{depth} .. {args.rev} (6 syncs)")
            print(f"  git clone --shallow-since (bare): {git_size / MIB:8.2f} MiB "
                  f"(MiB by object type: {fmt_parts(git_parts(tmp / 'shallow.git'))})")
            for label, b in bins:
                r = bench_history(tmp, b, label, args.repo, revs, args.cat, add_opts)
                st = r["stats"] or {}
                extra = (f", blobs {st.get('blobs')} (deltas {st.get('blobs_delta', '-')}) raw "
                         f"{st.get('raw_bytes', 0) / MIB:.1f} MiB stored "
                         f"{st.get('stored_bytes', 0) / MIB:.2f} MiB") if st else ""
                print(f"  {label:9}: store {r['store'] / MIB:8.2f} MiB = "
                      f"{r['store'] / git_size:5.2f}x git; first sync {r['first_sync_s']:.2f}s "
                      f"({r['first_sync_cpu']:.2f}s CPU); "
                      f"5 later syncs {r['later_s']:.2f}s ({r['later_cpu']:.2f}s CPU); "
                      f"cat x{r['cat_n']} oldest {r['cat_s']:.2f}s ({r['cat_cpu']:.2f}s CPU), "
                      f"newest {r['cat_new_s']:.2f}s ({r['cat_new_cpu']:.2f}s CPU); checkout "
                      f"{r['checkout_s']:.2f}s ({r['checkout_cpu']:.2f}s CPU){extra}")
                if r["parts"]:
                    print(f"             MiB by part: {fmt_parts(r['parts'])}")
        if args.generated > 0:
            n = args.generated
            sync_bench.make_repo(tmp, n)
            tgz = tar_gz_size(tmp, n)
            print(f"generated: {n} files")
            print(f"  tar.gz of the tree:               {tgz / MIB:8.2f} MiB")
            packed = git_packed_size(tmp, n)
            print(f"  git, bare after gc (objects):     {packed / MIB:8.2f} MiB")
            for label, b in bins:
                r = bench_generated(tmp, b, label, n, add_opts)
                print(f"  {label:9}: store {r['store'] / MIB:8.2f} MiB = {r['store'] / tgz:5.2f}x "
                      f"tar.gz = {r['store'] / packed:5.2f}x git; first sync {r['first_sync_s']:.2f}s "
                      f"({r['first_sync_cpu']:.2f}s CPU)")
                if r["parts"]:
                    print(f"             MiB by part: {fmt_parts(r['parts'])}")
        if args.generated_large > 0:
            n, key = args.generated_large, f"large-{args.generated_large}"
            t = time.monotonic()
            _repo, raw = make_large_repo(tmp, n)
            made = time.monotonic() - t
            tgz = tar_gz_size(tmp, n, key)
            print(f"generated, the issue's shape: {n} files, {raw / MIB:.1f} MiB of text "
                  f"({raw / n:.0f} bytes a file; made in {made:.0f} s)")
            print(f"  tar.gz of the tree:               {tgz / MIB:8.2f} MiB "
                  f"(the text / tar.gz: {raw / tgz:.2f})")
            packed = git_packed_size(tmp, n, key)
            print(f"  git, bare after gc (objects):     {packed / MIB:8.2f} MiB")
            variants = [add_opts] if args.no_code_index else [(), ("--no-code-index",)]
            for label, b in bins:
                for opts in variants:
                    r = bench_generated(tmp, b, label, n, opts, key)
                    print(f"  {label:9}{' ' + opts[0] if opts else ''}: store "
                          f"{r['store'] / MIB:8.2f} MiB = {r['store'] / tgz:5.2f}x tar.gz = "
                          f"{r['store'] / packed:5.2f}x git; first sync {r['first_sync_s']:.2f}s "
                          f"({r['first_sync_cpu']:.2f}s CPU; load average "
                          f"{r['load'][0]:.1f} -> {r['load'][1]:.1f})")
                    if r["parts"]:
                        print(f"             MiB by part: {fmt_parts(r['parts'])}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
