#!/usr/bin/env python3
"""
Feeds real content to build-*/codec_measure (bench/codec_measure.c) to choose the zstd level and
to decide whether deltas between versions of a path pay (docs/performance.md).

    python3 bench/codec_measure.py REPO REV [REV ...]     (CODEC_LEVELS="1 3" to pick levels)

With one REV: every blob of that tree, no bases (the level choice). With several (oldest
first): what a store synced at each REV would hold; the first tree's blobs without a base, then
each later sync's added or modified blobs, a modified one with its path's previous version as the
base a delta would use. Prints codec_measure's JSON with a summary line.

CHAIN_BOUND=N (the choice of PS_BLOB_CHAIN_MAX): a version whose base already ends a chain of N
deltas gets no base (stored plain, starting a new chain), as the store does; the summary adds
the mean and longest chain a read of a version follows. Every version with a base is counted
as a delta (they are 5-20x smaller than plain frames, so the store keeps nearly all of them).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = os.environ.get("CODEC_MEASURE") or str(ROOT / "build-release" / "codec_measure")


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True).stdout


class Cat:
    def __init__(self, repo):
        self.p = subprocess.Popen(["git", "-C", repo, "cat-file", "--batch"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def get(self, sha):
        self.p.stdin.write(sha.encode() + b"\n")
        self.p.stdin.flush()
        header = self.p.stdout.readline().split()
        size = int(header[2])
        data = self.p.stdout.read(size)
        self.p.stdout.read(1)
        return data


def records(repo, revs):
    """(base sha or None, sha) of each distinct blob a store synced at revs would hold."""
    seen = set()
    for line in git(repo, "ls-tree", "-r", "-z", revs[0]).split(b"\0"):
        if not line:
            continue
        meta, _path = line.split(b"\t", 1)
        _mode, kind, sha = meta.split()
        if kind == b"blob" and sha not in seen:
            seen.add(sha)
            yield None, sha.decode()
    for a, b in zip(revs, revs[1:]):
        out = git(repo, "diff-tree", "-r", "-z", "--no-renames", a, b).split(b"\0")
        for meta, _path in zip(out[0::2], out[1::2]):
            if not meta.startswith(b":"):
                continue
            _om, nm, osha, nsha, status = meta[1:].split()
            if status == b"D" or nm.startswith(b"16") or nsha in seen:
                continue
            seen.add(nsha)
            base = osha.decode() if status == b"M" and not osha.startswith(b"0000") else None
            yield base, nsha.decode()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    repo, revs = sys.argv[1], sys.argv[2:]
    cat = Cat(repo)
    tool = subprocess.Popen([TOOL, *os.environ.get("CODEC_LEVELS", "").split()], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    bound = int(os.environ.get("CHAIN_BOUND", "0")) or None
    depth = {}
    for base, sha in records(repo, revs):
        if bound is not None:
            if base is not None and depth.get(base, bound) >= bound:
                base = None  # at the bound, or a base the store would not have: plain
            depth[sha] = depth[base] + 1 if base is not None else 0
        bdata = cat.get(base) if base else b""
        data = cat.get(sha)
        tool.stdin.write(b"%d %d\n" % (len(bdata), len(data)) + bdata + data)
    tool.stdin.close()
    res = json.loads(tool.stdout.read())
    tool.wait()
    res["repo"], res["revs"] = repo, revs
    print(json.dumps(res, indent=1))
    mib = 1 << 20
    if bound is not None:
        d = list(depth.values())
        print(f"# chain bound {bound}: mean chain {sum(d) / len(d):.2f} deltas, longest {max(d)}",
              file=sys.stderr)
    print(f"# {res['blobs']} blobs, {res['raw'] / mib:.1f} MiB raw, "
          f"{res['with_base']} with a previous version ({res['raw_with_base'] / mib:.1f} MiB)",
          file=sys.stderr)
    for lv in res["levels"]:
        pw = lv["plain_with_base"] or 1
        print(f"# level {lv['level']:2}: stored {lv['stored'] / mib:6.2f} MiB "
              f"(ratio {res['raw'] / max(lv['stored'], 1):4.2f}) compress {lv['compress_s']:.2f}s "
              f"decompress {lv['decompress_s']:.2f}s | versions with a base: plain "
              f"{lv['plain_with_base'] / mib:.2f} MiB, delta {lv['delta_with_base'] / mib:.2f} "
              f"MiB ({lv['delta_with_base'] / pw:.2f}x); store with deltas "
              f"{lv['stored_with_deltas'] / mib:.2f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
