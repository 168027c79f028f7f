#!/usr/bin/env python3
"""
Would a zstd dictionary pay for the store's per-blob frames? (issue 14's question; figures in
docs/performance.md.) Takes the distinct blobs of a tree in path order, trains a dictionary on
the even ones (a holdout half, at most --train-max MiB of them, evenly spaced) and compresses
each odd one alone with build-*/dict_measure (bench/dict_measure.c): without a dictionary and
with one, under the store's rule (level 3; raw below 64 bytes or when zstd saves less than 1/16).

    python3 bench/dict_measure.py --repo PATH [--rev REV]
    python3 bench/dict_measure.py --generated N          (bench/sync_bench.py's small files)
    python3 bench/dict_measure.py --generated-large N    (bench/store_bench.py's issue-shaped tree)
        [--dict-bytes 16384 112640 ...] [--level 3] [--train-max MIB]
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_bench  # noqa: E402
import sync_bench  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOOL = os.environ.get("DICT_MEASURE") or str(ROOT / "build-release" / "dict_measure")
MIB = 1 << 20


def tree_blobs(repo, rev):
    """The distinct blobs of rev's tree, in path order (what a first sync stores)."""
    out = subprocess.run(["git", "-C", repo, "ls-tree", "-r", "-z", rev], check=True,
                         capture_output=True).stdout
    seen, shas = set(), []
    for line in out.split(b"\0"):
        if not line:
            continue
        _mode, kind, sha = line.split(b"\t", 1)[0].split()
        if kind == b"blob" and sha not in seen:
            seen.add(sha)
            shas.append(sha)
    cat = subprocess.Popen(["git", "-C", repo, "cat-file", "--batch"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)
    for sha in shas:
        cat.stdin.write(sha + b"\n")
        cat.stdin.flush()
        size = int(cat.stdout.readline().split()[2])
        yield cat.stdout.read(size)
        cat.stdout.read(1)
    cat.stdin.close()
    cat.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--repo")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--generated", type=int, default=0)
    ap.add_argument("--generated-large", type=int, default=0)
    ap.add_argument("--level", type=int, default=3)
    ap.add_argument("--dict-bytes", type=int, nargs="+", default=[16384, 112640, 1048576])
    ap.add_argument("--train-max", type=float, default=32.0, metavar="MIB")
    args = ap.parse_args()
    if args.repo:
        blobs, what = list(tree_blobs(args.repo, args.rev)), f"{args.repo} at {args.rev}"
    elif args.generated:
        blobs = [sync_bench.content_of(i) for i in range(args.generated)]
        what = f"{args.generated} generated files (sync_bench.py)"
    elif args.generated_large:
        blobs = [store_bench.large_content_of(i) for i in range(args.generated_large)]
        what = f"{args.generated_large} generated files, the issue's shape (store_bench.py)"
    else:
        sys.exit("dict_measure.py: give --repo, --generated or --generated-large")
    if not os.access(TOOL, os.X_OK):
        sys.exit(f"dict_measure not found at {TOOL} (ninja -C build-release dict_measure)")
    train, apply = blobs[0::2], blobs[1::2]
    cap = int(args.train_max * MIB)
    total = sum(map(len, train))
    if total > cap:  # evenly spaced samples of the holdout half, up to the cap
        step = total / cap
        train = train[::max(1, int(step + 0.999))]
    p = subprocess.Popen([TOOL, str(args.level), *map(str, args.dict_bytes)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for kind, items in ((b"T", train), (b"A", apply)):
        for data in items:
            p.stdin.write(b"%s %d\n" % (kind, len(data)))
            p.stdin.write(data)
    p.stdin.close()
    r = json.loads(p.stdout.read())
    if p.wait() != 0:
        sys.exit("dict_measure failed")
    print(f"{what}: {len(blobs)} distinct blobs; trained on {r['train_blobs']} even ones "
          f"({r['train_raw'] / MIB:.1f} MiB), measured on the {r['blobs']} odd ones "
          f"({r['raw'] / MIB:.1f} MiB), zstd level {r['level']}")
    print(f"  no dictionary: {r['plain'] / MIB:8.3f} MiB stored ({r['raw'] / r['plain']:.2f}x)")
    for d in r["dicts"]:
        # A store would keep one dictionary for the whole tree: twice the half's saving, the
        # dictionary paid once.
        net = 2 * (r["plain"] - d["with_dict"]) - d["dict_bytes"]
        print(f"  dictionary of {d['dict_bytes']:>8} bytes: {d['with_dict'] / MIB:8.3f} MiB "
              f"({(d['with_dict'] - r['plain']) / r['plain'] * 100:+.1f}%; the whole tree with "
              f"the dictionary stored once {-net / (2 * r['plain']) * 100:+.1f}%), "
              f"{d['blobs_smaller']} of {r['blobs']} blobs smaller; trained in "
              f"{d['train_s']:.1f} s")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
