"""Context switches and CPU of a running process's threads over a window, by thread name.

    .venv/bin/python bench/profiles/round3/thread_switches.py PID [SECONDS]

Thread names come from `py-spy dump` (Python names its threads; the kernel does not know
them); a trailing number is dropped, so cheroot's pool threads add up to one row. Run it
on the Manager while bench/end_to_end.py runs a 10,000-task job.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dispatch import thread_switches  # noqa: E402 - bench/dispatch.py


def cpu_ticks(pid: int) -> dict[int, int]:
    out = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            out[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return out


def thread_names(pid: int) -> dict[int, str]:
    spy = Path(sys.executable).parent / "py-spy"
    dump = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True).stdout
    return {int(m.group(1)): re.sub(r"\d+$", "N", m.group(2))
            for m in re.finditer(r'^Thread (\d+) \(\w+\): "([^"]*)"', dump, re.M)}


def main() -> int:
    pid = int(sys.argv[1])
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    names = thread_names(pid)
    s0, c0 = thread_switches(pid), cpu_ticks(pid)
    time.sleep(window)
    s1, c1 = thread_switches(pid), cpu_ticks(pid)
    rows = collections.defaultdict(lambda: [0, 0, 0, 0])
    for tid, (vol, invol) in s1.items():
        v0, i0 = s0.get(tid, (0, 0))
        row = rows[names.get(tid, f"(thread {tid})")]
        row[0] += 1
        row[1] += vol - v0
        row[2] += invol - i0
        row[3] += c1.get(tid, 0) - c0.get(tid, 0)
    hz = os.sysconf("SC_CLK_TCK")
    print(f"{sum(r[1] + r[2] for r in rows.values())} switches in {window:g} s")
    print(f"{'thread':36} {'threads':>7} {'voluntary':>10} {'involuntary':>12} {'CPU s':>6}")
    for name, (n, vol, invol, ticks) in sorted(rows.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        if vol + invol:
            print(f"{name:36} {n:7d} {vol:10d} {invol:12d} {ticks / hz:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
