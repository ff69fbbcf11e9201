"""blender-bake on a whole farm (Server, Manager, 2 workers as processes) with real Blender,
followed by a blender-render job that depends on it.

The scene (scripts/scenes/bake_scene.py): a rigid body cube falls onto a floor,
a cloth sheet falls onto the cube (so the cloth depends on the rigid body
simulation), a pinned flag flaps, an emitter sprays particles; 12 frames at
96x72, Cycles at 4 samples. The check that the render uses the bake: its frames
are pixel-identical to a local `bake_all` then render of the same file, and
differ from a render of the unbaked file (which shows the simulations at rest).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.jobtypes.jobtypes_support import framemd5

pytestmark = pytest.mark.e2e

FRAMES = 12
SHEET, FLAG, EMITTER = "5368656574", "466C6167", "456D6974746572"  # hex object names: Blender's cache file names
LOCAL_BAKE = ("import bpy\n"
              "for ob in bpy.context.scene.objects:\n"
              "    for ps in ob.particle_systems: ps.point_cache.use_disk_cache = True\n"
              "    for md in ob.modifiers:\n"
              "        if md.type == 'CLOTH': md.point_cache.use_disk_cache = True\n"
              "bpy.ops.ptcache.bake_all(bake=True)\n"
              "bpy.ops.wm.save_mainfile()\n")


def make_bake_scene(blender: str, path: Path) -> Path:
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "bake_scene.py"), "--", str(path), str(FRAMES)],
                   check=True, capture_output=True, timeout=120)
    return path


def render_directly(blender: str, blend: Path, out: Path, frames: str) -> None:
    """Frames rendered by Blender itself, with the arguments the worker uses."""
    subprocess.run([blender, "--enable-autoexec", "-noaudio", "--background", str(blend), "--render-output",
                    str(out / "######"), "--render-format", "PNG", "--render-frame", frames],
                   check=True, capture_output=True, timeout=180)


def task_log(farm, task_id: str) -> str:
    (path,) = list(farm.manager_dir.rglob(f"task-{task_id}.txt"))
    return path.read_text()


def test_bake_then_dependent_render_uses_the_cache(jobtypes_farm, blender_exe, tmp_path):
    api, farm = jobtypes_farm.api, jobtypes_farm.farm
    shot = jobtypes_farm.root / "bake" / "shot"
    blend = make_bake_scene(blender_exe, shot / "scene.blend")
    local = tmp_path / "local"
    local.mkdir()
    shutil.copy(blend, local / "scene.blend")
    shutil.copy(blend, local / "unbaked.blend")
    out = jobtypes_farm.root / "bake" / "render"

    bake = api.submit("blender-bake", "sim bake", {"filepath": str(blend), "frames": f"1-{FRAMES}", "parts": 2})
    render = api.submit("blender-render", "sim render", {
        "filepath": str(blend), "frames": f"1-{FRAMES}", "chunk_size": 6, "render_output": str(out / "######"),
        "format": "PNG"}, depends_on=[bake["id"]])
    assert render["blocked"] is True and render["depends_on"] == [bake["id"]]

    # While the bake runs, no render task may start; record what was seen, in order.
    seen = []
    deadline = time.monotonic() + 180
    while True:
        b, r = api.job(bake["id"]), api.job(render["id"])
        started = [t["name"] for t in api.tasks(render["id"]) if t["status"] in ("active", "completed")]
        seen.append((b["status"], r["blocked"], started))
        if r["status"] == "completed":
            break
        assert b["status"] not in ("failed", "canceled"), api.failed_task_summary(bake["id"])
        assert r["status"] not in ("failed", "canceled"), api.failed_task_summary(render["id"])
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(0.2)
    for bake_status, blocked, started in seen:
        if bake_status != "completed":
            assert blocked and not started, f"render started before the bake completed: {seen}"
    assert any(status != "completed" for status, _, _ in seen), "the bake finished before the first poll"

    # The bake graph ran as designed, and its tasks logged Blender's frame-by-frame progress.
    tasks = {t["name"]: t for t in api.tasks(bake["id"])}
    assert sorted(tasks) == ["bake-1-of-2", "bake-2-of-2", "bake-finish", "bake-prepare"]
    assert all(t["status"] == "completed" and t["progress"] == 100 for t in tasks.values())
    for name in ("bake-1-of-2", "bake-2-of-2"):
        log = task_log(farm, tasks[name]["id"])
        assert all(f"bake: frame {n} :: {FRAMES}" in log for n in range(1, FRAMES + 1)), log[-2000:]
    finish_log = task_log(farm, tasks["bake-finish"]["id"])
    assert f"rigid body world: {FRAMES} frames in memory" in finish_log

    # A cache file for every frame, next to the .blend; nothing left in staging.
    files = {p.name for p in (shot / "blendcache_scene").iterdir()}
    for prefix in (SHEET, FLAG, EMITTER):
        expected = {f"{prefix}_{n:06d}_00.bphys" for n in range(1, FRAMES + 1)}
        assert expected <= files, sorted(expected - files)
    assert not list(shot.glob(".flamenco-bake-*"))

    # The same file baked and rendered locally gives the same pixels; unbaked it does not.
    subprocess.run([blender_exe, "-b", str(local / "scene.blend"), "--python-exit-code", "1", "--python-expr",
                    LOCAL_BAKE], check=True, capture_output=True, timeout=180)
    render_directly(blender_exe, local / "scene.blend", local / "baked", "4,8,12")
    render_directly(blender_exe, local / "unbaked.blend", local / "unbaked", "12")
    assert sorted(p.name for p in out.glob("*.png")) == [f"{n:06d}.png" for n in range(1, FRAMES + 1)]
    for n in (4, 8, 12):
        assert framemd5(out / f"{n:06d}.png") == framemd5(local / "baked" / f"{n:06d}.png"), f"frame {n}"
    assert framemd5(out / "000012.png") != framemd5(local / "unbaked" / "000012.png")


@pytest.mark.parametrize("settings, words", [
    ({"parts": 0}, "setting 'parts': must be at least 1"),
    ({"cache_types": ["cloth", "smoke"]}, "setting 'cache_types': unknown smoke"),
    ({"frames": "12-1"}, "setting 'frames': '12-1' ends before it starts"),
    ({"filepath": None}, "setting 'filepath': is required"),
])
def test_bad_bake_settings_answer_400_naming_the_setting(jobtypes_farm, settings, words):
    raw = {k: v for k, v in {"filepath": "/tmp/x.blend", **settings}.items() if v is not None}
    r = jobtypes_farm.api.post_raw("/api/jobs", {"name": "bad bake", "type": "blender-bake", "settings": raw})
    assert r.status_code == 400 and r.json()["code"] == "invalid_setting"
    assert words in r.json()["message"]


def test_a_bake_that_cannot_run_fails_with_the_reason(jobtypes_farm, blender_exe):
    api = jobtypes_farm.api
    blend = make_bake_scene(blender_exe, jobtypes_farm.root / "bake" / "bad" / "scene.blend")
    job = api.submit("blender-bake", "bake nothing", {"filepath": str(blend), "objects": ["NoSuchObject"],
                                                      "parts": 1})
    done = api.wait(job["id"], lambda j: j["status"] == "failed", timeout=120, allow_failure=True)
    assert done["status"] == "failed"
    prepare = next(t for t in api.tasks(job["id"]) if t["name"] == "bake-prepare")
    detail = api.task(prepare["id"])
    assert "no object(s) NoSuchObject in view layer" in (detail.get("activity") or "") + str(detail.get("log_tail"))
