"""The farm's overhead on an animation render, against running the same Blender commands by hand.

One run renders the same generated scene in the same chunks twice per round:
  direct: `blender --background scene.blend --render-output ... --render-frame a..b`
          for each chunk, one after another (the argv the worker builds);
  farm:   a `blender-render` job on a farm of Server + Manager + 1 worker,
          from submission until the Server says completed.
It prints both wall times, their ratio (target <= 1.05), the idle gap between
tasks on the worker (from its log; target p50 <= 50 ms) and the idle worker's RSS.

    .venv/bin/python bench/overhead.py [--frames 24] [--chunk 4] [--samples 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flamenco_cli.main import ServerClient  # noqa: E402
from flamenco_cli.farm import Farm  # noqa: E402
from shared.frames import chunk_frames  # noqa: E402

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*task (\S+)(?: \(.*\))?: (starting|completed)")


def make_scene(blender: str, path: Path, frames: int, samples: int) -> None:
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "animation.py"), "--", str(path), str(frames),
                    "160", "120", str(samples)], check=True, stdout=subprocess.DEVNULL)


def render_direct(blender: str, blend: Path, out: Path, frames: list[int], chunk: int) -> float:
    started = time.perf_counter()
    for part in chunk_frames(frames, chunk):
        rng = f"{part[0]}..{part[-1]}" if len(part) > 1 else str(part[0])
        subprocess.run([blender, "--enable-autoexec", "-noaudio", "--background", str(blend),
                        "--render-output", str(out / "######"), "--render-format", "PNG",
                        "--render-frame", rng], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def render_farm(client: ServerClient, blend: Path, out: Path, frames: int, chunk: int) -> float:
    started = time.perf_counter()
    job = client.submit_job({"name": "bench overhead", "type": "blender-render",
                         "settings": {"filepath": str(blend), "frames": f"1-{frames}", "chunk_size": chunk,
                                      "render_output": str(out / "######"), "format": "PNG"}})
    while True:
        status = client.job(job["id"])["status"]
        if status == "completed":
            return time.perf_counter() - started
        if status in ("failed", "canceled"):
            raise SystemExit(f"bench: the farm job ended {status}")
        time.sleep(0.02)


def task_gaps(worker_log: Path) -> list[float]:
    """Seconds between a task's completion and the next task's start, from the worker's log."""
    events = []
    for line in worker_log.read_text().splitlines():
        m = LOG_LINE.match(line)
        if m:
            events.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), m.group(3)))
    gaps = []
    for (t0, e0), (t1, e1) in zip(events, events[1:]):
        if e0 == "completed" and e1 == "starting":
            gaps.append((t1 - t0).total_seconds())
    return gaps


def main() -> int:
    parser = argparse.ArgumentParser(description="farm overhead vs. direct Blender")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    blender = shutil.which("blender")
    if not blender:
        raise SystemExit("bench: Blender is not installed")

    with tempfile.TemporaryDirectory(prefix="flamenco-bench-") as tmp:
        tmp = Path(tmp)
        blend = tmp / "scene.blend"
        make_scene(blender, blend, args.frames, args.samples)
        farm = Farm(tmp / "farm", port=0, workers=1)
        info = farm.start()
        client = ServerClient(info["server_url"], info["admin_token"])
        while not any(w["status"] == "awake" for w in client.get("/api/workers")["workers"]):
            time.sleep(0.1)
        direct, through_farm = [], []
        try:
            frames = list(range(1, args.frames + 1))
            for i in range(args.rounds):
                direct.append(render_direct(blender, blend, tmp / f"direct-{i}", frames, args.chunk))
                through_farm.append(render_farm(client, blend, tmp / f"farm-{i}" / "frames", args.frames,
                                                args.chunk))
            time.sleep(3)
            worker = psutil.Process(farm.procs["worker-1"].pid)
            rss = [worker.memory_info().rss / 2**20 for _ in range(5) if not time.sleep(0.2)]
        finally:
            farm.stop()
        gaps = task_gaps(tmp / "farm" / "logs" / "worker-1.log")

    tasks = -(-args.frames // args.chunk)
    print(f"scene: {args.frames} frames 160x120, Cycles {args.samples} samples, chunks of {args.chunk} "
          f"({tasks} render tasks + move-to-final), {args.rounds} rounds")
    print(f"direct blender loop: {', '.join(f'{t:.2f}' for t in direct)} s (best {min(direct):.2f} s)")
    print(f"farm, 1 worker:      {', '.join(f'{t:.2f}' for t in through_farm)} s (best {min(through_farm):.2f} s)")
    print(f"ratio farm/direct:   {min(through_farm) / min(direct):.3f} (best of each; target <= 1.05); "
          f"mean {statistics.mean(through_farm) / statistics.mean(direct):.3f}")
    if gaps:
        gaps_ms = sorted(g * 1000 for g in gaps)
        print(f"idle gap between tasks: p50 {statistics.median(gaps_ms):.0f} ms, max {gaps_ms[-1]:.0f} ms "
              f"over {len(gaps_ms)} gaps (target p50 <= 50 ms)")
    print(f"idle worker RSS: {statistics.median(rss):.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
