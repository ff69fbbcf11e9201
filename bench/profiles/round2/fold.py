"""Sum py-spy's collapsed stacks (`--format raw`, gzipped here) per function.

    python3 bench/profiles/round2/fold.py FILE.txt.gz [ONLY_STACKS_WITH] [TOP]

Prints the samples each function was on the stack for (inclusive), then the functions the
samples were in (self). `ONLY_STACKS_WITH`: only stacks with a frame containing this text.
"""

from __future__ import annotations

import collections
import gzip
import sys


def main() -> int:
    path = sys.argv[1]
    only = sys.argv[2] if len(sys.argv) > 2 else ""
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            if only and not any(only in fr for fr in frames):
                continue
            total += int(n)
            names = []
            for fr in frames:
                func, _, where = fr.partition(" (")
                names.append(f"{func} {where.split(':')[0].rsplit('/', 1)[-1]}")
            for name in set(names):
                inclusive[name] += int(n)
            own[names[-1]] += int(n)
    print(f"samples: {total}")
    for name, n in inclusive.most_common(top):
        print(f"{n:7d} {n * 100 / total:5.1f} %  {name}")
    print("-- self")
    for name, n in own.most_common(top // 2):
        print(f"{n:7d} {n * 100 / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
