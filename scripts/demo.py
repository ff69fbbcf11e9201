"""`make demo`: a whole farm on this machine renders an animation and makes a video of it.

1. `flamenco farm` starts (Server, Manager linked to it, two workers; SQLite in ./demo-data),
2. Blender's Python generates a small animated scene (the repository holds no .blend files),
3. a `blender-render` job with a video is submitted through the Server's API,
4. a progress bar follows it to the end, and the paths of the frames and the video are printed.

`--keep` leaves the farm running afterwards (Ctrl-C stops it), so you can look
around with `flamenco --farm demo-data jobs` or submit more jobs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flamenco_cli.main import ServerClient  # noqa: E402
from flamenco_cli.farm import Farm, FarmError  # noqa: E402
from flamenco_cli.main import watch  # noqa: E402


def make_scene(blend: Path, frames: int) -> None:
    blender = shutil.which("blender")
    if not blender:
        raise SystemExit("demo: Blender is not installed; run `bash scripts/bootstrap` first")
    print(f"demo: generating a {frames}-frame scene with Blender's Python -> {blend}")
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "animation.py"), "--", str(blend), str(frames),
                    "320", "180", "8"], check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(ROOT / "demo-data"))
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the farm running afterwards")
    args = parser.parse_args()

    data = Path(args.data_dir).absolute()
    if data.exists():
        shutil.rmtree(data)
    blend = data / "project" / "demo.blend"
    make_scene(blend, args.frames)

    farm = Farm(data / "farm", port=0, workers=args.workers)
    try:
        info = farm.start()
        print(f"demo: farm running — Server {info['server_url']}, Manager {info['manager_url']}, "
              f"{args.workers} workers (logs in {data / 'farm' / 'logs'})")
        client = ServerClient(info["server_url"], info["admin_token"])
        deadline = time.monotonic() + 30
        while sum(w.get("status") == "awake" for w in client.get("/api/workers")["workers"]) < args.workers:
            if time.monotonic() > deadline:
                raise FarmError("the workers did not sign on within 30 s")
            time.sleep(0.2)

        output = data / "render" / "demo"
        job = client.submit_job({
            "name": "make demo: animation with video",
            "type": "blender-render",
            "settings": {"filepath": str(blend), "frames": f"1-{args.frames}", "chunk_size": 4,
                         "render_output": str(output / "######"), "format": "PNG",
                         "create_video": True, "fps": 24},
        })
        print(f"demo: submitted job {job['id']} with {job['tasks_total']} tasks")
        status = watch(client, job["id"], interval=0.5)
        if status != 0:
            print("demo: the job did not complete; see the task logs:", file=sys.stderr)
            for task in client.tasks(job["id"]):
                print(f"  {task['name']}: {task['status']} {task.get('activity') or ''}", file=sys.stderr)
            return 1
        frames = sorted(output.glob("*.png"))
        videos = sorted(output.glob("*.mkv"))
        print(f"demo: {len(frames)} frames in {output}/")
        for video in videos:
            print(f"demo: video {video}")
        if args.keep:
            print("demo: the farm keeps running; Ctrl-C stops it.\n"
                  f"      try: .venv/bin/flamenco --farm {data / 'farm'} jobs\n"
                  f"      pages: {info['server_url']}/ (sign in as admin after "
                  f"`flamenco-server set-password admin --data-dir {farm.server_dir}`), and the Manager's at "
                  f"{info['manager_url']}/ after `flamenco-manager set-admin-password --data-dir {farm.manager_dir}`")
            try:
                while not farm.dead():
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        return 0 if frames and videos else 1
    except FarmError as ex:
        print(f"demo: {ex}", file=sys.stderr)
        return 1
    finally:
        farm.stop()


if __name__ == "__main__":
    sys.exit(main())
