"""One worker with 1 slot vs 2 slots rendering the same light animation job.

A Server and a Manager run once; for each run a worker starts with `--slots 1`
or `--slots 2` (so with 2 slots on a 2-core machine each Blender gets
`--threads 1`), a `blender-render` job of the same generated scene (few
samples, small frames) goes through the farm from submission until the Server
says completed, and the worker stops. The variants alternate (1, 2, 2, 1, ...)
so that other load on a shared machine falls on both alike; the load average
is printed with every run.

    .venv/bin/python bench/slots.py [--frames 24] [--chunk 2] [--samples 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import make_scene  # noqa: E402  (160x120, Cycles with `samples`)
from flamenco_cli.farm import Farm  # noqa: E402
from flamenco_cli.main import ServerClient  # noqa: E402


def wait_awake(client: ServerClient, nickname: str) -> None:
    deadline = time.monotonic() + 60
    while not any(w["nickname"] == nickname and w["status"] == "awake" for w in client.get("/api/workers")["workers"]):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: worker {nickname} never came up")
        time.sleep(0.1)


def render(client: ServerClient, blend: Path, out: Path, frames: int, chunk: int) -> float:
    started = time.perf_counter()
    job = client.submit_job({"name": f"bench slots {out.name}", "type": "blender-render",
                             "settings": {"filepath": str(blend), "frames": f"1-{frames}", "chunk_size": chunk,
                                          "render_output": str(out / "######"), "format": "PNG"}})
    while True:
        status = client.job(job["id"])["status"]
        if status == "completed":
            elapsed = time.perf_counter() - started
            break
        if status in ("failed", "canceled"):
            raise SystemExit(f"bench: the job ended {status}")
        time.sleep(0.05)
    if len(list(out.glob("*.png"))) != frames:
        raise SystemExit(f"bench: {out} has not all {frames} frames")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description="a worker with 1 vs 2 slots on the same job")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=2)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant")
    args = parser.parse_args()
    blender = shutil.which("blender")
    if not blender:
        raise SystemExit("bench: Blender is not installed")
    order = [(1, 2) if i % 2 == 0 else (2, 1) for i in range(args.rounds)]
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="flamenco-bench-slots-") as tmp:
        tmp = Path(tmp)
        blend = tmp / "scene.blend"
        make_scene(blender, blend, args.frames, args.samples)
        farm = Farm(tmp / "farm", port=0, workers=0)
        info = farm.start()
        client = ServerClient(info["server_url"], info["admin_token"])
        try:
            run = 0
            for pair in order:
                for slots in pair:
                    run += 1
                    farm.worker_args = ["--slots", str(slots)]
                    farm.start_worker(run - 1)
                    wait_awake(client, f"{socket.gethostname()}-{run}")
                    load = os.getloadavg()[0]
                    seconds = render(client, blend, tmp / f"out-{run}", args.frames, args.chunk)
                    farm.stop_process(f"worker-{run}")
                    times[slots].append(seconds)
                    print(f"run {run}: {slots} slot(s): {seconds:6.2f} s   (load average before: {load:.2f})",
                          flush=True)
        finally:
            farm.stop()

    tasks = -(-args.frames // args.chunk)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"scene: {args.frames} frames 160x120, Cycles {args.samples} samples, chunks of {args.chunk} "
          f"({tasks} render tasks), {psutil.cpu_count()} CPUs, {args.rounds} run(s) of each, interleaved")
    print(f"1 slot:  median {one:.2f} s  ({', '.join(f'{t:.2f}' for t in times[1])})")
    print(f"2 slots: median {two:.2f} s  ({', '.join(f'{t:.2f}' for t in times[2])})")
    print(f"wall time ratio 1 slot / 2 slots: {one / two:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
