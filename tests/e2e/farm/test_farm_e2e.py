"""The whole farm as separate processes — Server, Manager, workers — with real Blender and FFmpeg.

Each test starts its own farm (`flamenco_cli.farm.Farm`, what `flamenco farm`
runs) in a temp dir, submits through the Server's API and inspects the files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from flamenco_cli.farm import Farm
from tests.conftest import ROOT
from tests.farm_api import Api

pytestmark = pytest.mark.e2e

FAST_TIMEOUTS = """
[timeouts]
worker_timeout = 6.0
task_timeout = 60.0
check_interval = 1.0
"""


def make_scene(blender: str, path: Path, frames: int, width=160, height=120, samples=4) -> Path:
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "animation.py"), "--", str(path), str(frames),
                    str(width), str(height), str(samples)], check=True, capture_output=True, timeout=120)
    assert path.exists()
    return path


def probe(ffprobe_args: list[str], path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *ffprobe_args, str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def start_farm(tmp_path: Path, workers: int, extra: str = "", worker_args=()) -> tuple[Farm, Api]:
    farm = Farm(tmp_path / "farm", port=0, workers=workers, manager_extra_config=extra, worker_args=list(worker_args))
    info = farm.start()
    api = Api(info)
    deadline = time.monotonic() + 60
    while sum(w["status"] == "awake" for w in api.workers()) < workers:
        assert time.monotonic() < deadline, api.workers()
        time.sleep(0.2)
    return farm, api


@pytest.fixture
def farm_factory(tmp_path):
    farms = []

    def factory(workers: int, extra: str = "", worker_args=()):
        farm, api = start_farm(tmp_path, workers, extra, worker_args)
        farms.append(farm)
        return farm, api

    yield factory
    for farm in farms:
        farm.stop(timeout=10)


def render_job(blend: Path, out: Path, frames: str, chunk: int, video: bool, name: str) -> dict:
    settings = {"filepath": str(blend), "frames": frames, "chunk_size": chunk,
                "render_output": str(out / "######"), "format": "PNG"}
    if video:
        settings.update({"create_video": True, "fps": 24})
    return {"name": name, "type": "blender-render", "settings": settings}


def blender_processes(under: Path) -> list[psutil.Process]:
    """Blender processes working on files under `under` (other tests on this machine run Blender too)."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            cmdline = p.info["cmdline"] or [""]
            if (p.info["name"] == "blender" or cmdline[0].endswith("/blender")) and \
                    any(str(under) in arg for arg in cmdline):
                found.append(p)
        except psutil.Error:
            continue
    return found


def test_two_workers_render_a_12_frame_animation_with_video(farm_factory, tmp_path, blender_exe, ffmpeg_exe):
    # Heavy enough (about 2 s a frame) that a chunk outlives the worker's 3 s progress throttle.
    blend = make_scene(blender_exe, tmp_path / "scene" / "anim.blend", 12, 320, 240, 48)
    farm, api = farm_factory(workers=2)
    out = tmp_path / "render" / "anim"
    job = api.post("/api/jobs", render_job(blend, out, "1-12", 3, True, "anim 12 frames"))

    seen_job_progress, seen_task_progress, workers_used = [], set(), set()

    def record(j):
        seen_job_progress.append(j["progress"])
        for t in api.tasks(job["id"]):
            if t["status"] == "active" and 0 < (t["progress"] or 0) < 100:
                seen_task_progress.add(round(t["progress"]))
            if t.get("worker"):
                workers_used.add(t["worker"])

    done = api.wait(job["id"], lambda j: j["status"] == "completed", each=record)
    assert done["progress"] == 100

    frames = sorted(out.glob("*.png"))
    assert [f.name for f in frames] == [f"{n:06d}.png" for n in range(1, 13)]
    for frame in frames:
        size = probe(["-show_entries", "stream=width,height"], frame)["streams"][0]
        assert (size["width"], size["height"]) == (320, 240)
    videos = list(out.glob("*.mkv"))
    assert len(videos) == 1, list(out.iterdir())
    stream = probe(["-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"],
                   videos[0])["streams"][0]
    assert int(stream["nb_read_frames"]) == 12
    # No intermediate directory left behind.
    assert [p.name for p in out.parent.iterdir()] == ["anim"]

    # Progress rose while it ran: the job's figure never went down, and went through
    # values between 0 and 100; tasks reported partial progress of their own.
    assert seen_job_progress == sorted(seen_job_progress)
    assert any(0 < p < 100 for p in seen_job_progress)
    assert seen_task_progress, "no task ever showed partial progress"
    assert len(workers_used) == 2, f"both workers should have rendered, saw {workers_used}"


def test_a_killed_worker_s_task_is_done_by_the_other(farm_factory, tmp_path, blender_exe, ffmpeg_exe):
    blend = make_scene(blender_exe, tmp_path / "scene" / "slow.blend", 4, 320, 240, 120)
    farm, api = farm_factory(workers=2, extra=FAST_TIMEOUTS)
    out = tmp_path / "render" / "slow"
    job = api.post("/api/jobs", render_job(blend, out, "1-4", 2, False, "kill a worker"))

    def some_task_active(_):
        return any(t["status"] == "active" for t in api.tasks(job["id"]))

    api.wait(job["id"], some_task_active, timeout=60)
    victim_task = next(t for t in api.tasks(job["id"]) if t["status"] == "active")
    victim = next(w for w in api.workers() if w["current_task"] == victim_task["id"]
                  or victim_task["worker"] in (w["id"], w["nickname"]))
    name = "worker-" + victim["nickname"].rsplit("-", 1)[1]
    proc = farm.procs.pop(name)
    os.killpg(proc.pid, signal.SIGKILL)  # the worker and its Blender, no goodbye
    proc.wait()

    done = api.wait(job["id"], lambda j: j["status"] == "completed", timeout=300)
    assert done["status"] == "completed"
    assert sorted(f.name for f in out.glob("*.png")) == [f"{n:06d}.png" for n in range(1, 5)]
    task = next(t for t in api.tasks(job["id"]) if t["id"] == victim_task["id"])
    assert task["status"] == "completed"
    assert task["worker"] not in (victim["id"], victim["nickname"])
    statuses = {w["nickname"]: w["status"] for w in api.workers()}
    assert statuses[victim["nickname"]] in ("timeout", "offline"), statuses


def test_manager_restart_mid_job_loses_nothing(farm_factory, tmp_path, blender_exe, ffmpeg_exe):
    blend = make_scene(blender_exe, tmp_path / "scene" / "restart.blend", 6, 320, 240, 60)
    farm, api = farm_factory(workers=2, extra=FAST_TIMEOUTS.replace("worker_timeout = 6.0",
                                                                    "worker_timeout = 120.0"))
    out = tmp_path / "render" / "restart"
    job = api.post("/api/jobs", render_job(blend, out, "1-6", 2, False, "restart the manager"))
    api.wait(job["id"], lambda j: any(t["status"] == "active" for t in api.tasks(job["id"])), timeout=60)

    farm.stop_process("manager")
    time.sleep(8)  # the workers render on and queue their updates
    farm.start_manager()

    done = api.wait(job["id"], lambda j: j["status"] == "completed", timeout=300)
    assert done["task_counts"].get("completed") == done["tasks_total"]
    assert sorted(f.name for f in out.glob("*.png")) == [f"{n:06d}.png" for n in range(1, 7)]
    for task in api.tasks(job["id"]):
        if task["name"].startswith("blender-render"):
            full = api.get(f"/api/tasks/{task['id']}")
            assert "Saved:" in (full.get("log_tail") or "") or full["progress"] == 100


def test_cancel_stops_blender_within_seconds(farm_factory, tmp_path, blender_exe, ffmpeg_exe):
    blend = make_scene(blender_exe, tmp_path / "scene" / "cancel.blend", 4, 320, 240, 400)
    farm, api = farm_factory(workers=1)
    out = tmp_path / "render" / "cancel"
    job = api.post("/api/jobs", render_job(blend, out, "1-4", 4, False, "cancel me"))
    deadline = time.monotonic() + 60
    while not blender_processes(tmp_path):
        assert time.monotonic() < deadline, "Blender never started"
        time.sleep(0.2)
    time.sleep(1)
    api.post(f"/api/jobs/{job['id']}/status", {"status": "cancel-requested"})
    asked = time.monotonic()
    while blender_processes(tmp_path):
        assert time.monotonic() - asked < 15, "Blender still runs 15 s after the cancel"
        time.sleep(0.2)
    gone_after = time.monotonic() - asked
    done = api.wait(job["id"], lambda j: j["status"] == "canceled", timeout=60)
    assert done["status"] == "canceled"
    assert gone_after < 15
