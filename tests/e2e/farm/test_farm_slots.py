"""Workers with slots in a whole farm (separate processes, real Blender): several tasks at once on
one worker, seen in the Server's task records, and one Blender killed among several."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime

import psutil
import pytest

from tests.e2e.farm.test_farm_e2e import FAST_TIMEOUTS, farm_factory, make_scene, render_job  # noqa: F401

pytestmark = pytest.mark.e2e


def span(task) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(task["started"]), datetime.fromisoformat(task["finished"])


def all_overlap(tasks) -> bool:
    """Whether every one of these task runs was going on at one moment."""
    spans = [span(t) for t in tasks]
    return max(s for s, _ in spans) < min(e for _, e in spans)


def sleep_job(name, frames, seconds):
    return {"name": name, "type": "sleep", "settings": {"frames": frames, "chunk_size": 1,
                                                        "time_in_seconds": seconds}}


def test_one_worker_with_three_slots_runs_three_sleep_tasks_at_once(farm_factory):
    farm, api = farm_factory(workers=1, worker_args=["--slots", "3"])
    job = api.post("/api/jobs", sleep_job("three at once", "1-3", 4))
    started = time.monotonic()
    api.wait(job["id"], timeout=60)
    tasks = api.tasks(job["id"])
    assert len(tasks) == 3 and len({t["worker"] for t in tasks}) == 1
    assert all_overlap(tasks), [(t["name"], t["started"], t["finished"]) for t in tasks]
    assert time.monotonic() - started < 3 * 4, "one after the other would take 12 s"
    (worker,) = api.workers()
    assert worker["resources"]["slots"] == 3


def test_a_render_job_and_a_light_job_at_once_on_a_two_slot_worker(farm_factory, tmp_path, blender_exe,
                                                                   ffmpeg_exe):
    blend = make_scene(blender_exe, tmp_path / "scene" / "pair.blend", 3, 320, 240, 32)
    # The Server knows what a worker runs from its task updates; the report (every second here) adds the rest.
    farm, api = farm_factory(workers=1, worker_args=["--slots", "2"],
                             extra="[upstream]\nworker_report_interval = 1.0\n")
    out = tmp_path / "render" / "pair"
    render = api.post("/api/jobs", render_job(blend, out, "1-3", 3, False, "render beside a light job"))
    light = api.post("/api/jobs", sleep_job("light beside a render", "1", 3))
    seen_running = set()

    def record(_):
        for w in api.workers():
            if len(w.get("running_tasks") or []) == 2:
                seen_running.add(tuple(sorted(t["name"] for t in w["running_tasks"])))

    api.wait_all([render["id"], light["id"]], timeout=180, each=record)
    assert sorted(f.name for f in out.glob("*.png")) == [f"{n:06d}.png" for n in range(1, 4)]
    render_task = next(t for t in api.tasks(render["id"]) if t["name"].startswith("blender-render"))
    (light_task,) = api.tasks(light["id"])
    assert all_overlap([render_task, light_task]), (render_task, light_task)
    full = api.task(render_task["id"])
    assert full["needs"] == "" and render_task["worker"] == light_task["worker"]
    assert ("blender-render-1-3", "sleep-1") in seen_running, "the workers page showed both at once"


def worker_blenders(farm, name) -> dict[str, psutil.Process]:
    """The Blender processes a farm worker runs, by the frames they render ('--render-frame' value)."""
    found = {}
    for p in psutil.Process(farm.procs[name].pid).children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if cmd and os.path.basename(cmd[0]) == "blender" and "--render-frame" in cmd:
            found[cmd[cmd.index("--render-frame") + 1]] = p
    return found


def test_a_worker_with_slots_survives_kill_9_of_one_of_its_blenders(farm_factory, tmp_path, blender_exe,
                                                                    ffmpeg_exe):
    blend = make_scene(blender_exe, tmp_path / "scene" / "kill.blend", 4, 320, 240, 60)
    farm, api = farm_factory(workers=2, extra=FAST_TIMEOUTS, worker_args=["--slots", "2"])
    out = tmp_path / "render" / "kill"
    job = api.post("/api/jobs", render_job(blend, out, "1-4", 1, False, "kill one blender"))
    deadline = time.monotonic() + 90
    while len(worker_blenders(farm, "worker-1")) < 2:
        assert time.monotonic() < deadline, "worker-1 never ran two Blenders at once"
        time.sleep(0.2)
    blenders = worker_blenders(farm, "worker-1")
    victim_frame, victim = sorted(blenders.items())[0]
    sibling_frame = sorted(blenders)[1]
    victim.send_signal(signal.SIGKILL)

    done = api.wait(job["id"], lambda j: j["status"] == "completed", timeout=300)
    assert done["status"] == "completed"
    assert sorted(f.name for f in out.glob("*.png")) == [f"{n:06d}.png" for n in range(1, 5)]
    worker1 = next(w for w in api.workers() if w["nickname"].endswith("-1"))
    tasks = {t["name"]: t for t in api.tasks(job["id"])}
    killed, sibling = tasks[f"blender-render-{victim_frame}"], tasks[f"blender-render-{sibling_frame}"]
    failed_by = [f["id"] for f in api.task(killed["id"])["failed_by_workers"]]
    assert failed_by == [worker1["id"]], "the killed render failed on its worker ..."
    assert killed["status"] == "completed" and killed["worker"] not in (worker1["id"], worker1["nickname"]), \
        "... and was retried by the other"
    assert sibling["status"] == "completed" and sibling["worker"] in (worker1["id"], worker1["nickname"]), \
        "its neighbour on the same worker rendered to the end"
    assert api.task(sibling["id"])["failed_by_workers"] == []
    assert farm.procs["worker-1"].poll() is None and worker1["status"] == "awake"
