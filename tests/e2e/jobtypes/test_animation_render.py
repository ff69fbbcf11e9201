"""blender-render on a whole farm (Server, Manager, 2 workers as processes) with real Blender.

Frames are 64x48, Cycles at 4 samples on the CPU (about a second per Blender
start); the jobs of a test are submitted together so the two workers share them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.jobtypes.jobtypes_support import ffprobe, framemd5, image_size, make_scene

pytestmark = pytest.mark.e2e

CUBE_BLUE = ("bpy.data.materials['Cube'].node_tree.nodes['Principled BSDF'].inputs['Base Color'].default_value"
             " = (0.05, 0.2, 0.9, 1)")
OVERRIDES = ["bpy.context.scene.render.resolution_percentage = 50", CUBE_BLUE]


def render_settings(blend: Path, out: Path, frames: str, chunk: int, **extra) -> dict:
    return {"filepath": str(blend), "frames": frames, "chunk_size": chunk, "render_output": str(out / "######"),
            "format": "PNG", **extra}


def render_directly(blender: str, blend: Path, out: Path, frame: int, python: Path | None = None) -> Path:
    """The same frame rendered by Blender itself, with the arguments the worker uses."""
    argv = [blender, "--enable-autoexec", "-noaudio", "--background", str(blend)]
    if python:
        argv += ["--python-exit-code", "42", "--python", str(python)]
    argv += ["--render-output", str(out / "######"), "--render-format", "PNG", "--render-frame", str(frame)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    return out / f"{frame:06d}.png"


def mean_rgb(path: Path) -> tuple[float, float, float]:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True, timeout=60).stdout
    n = len(raw) // 3
    return tuple(sum(raw[c::3]) / n for c in range(3))


@pytest.fixture(scope="module")
def scene(jobtypes_farm, blender_exe):
    return make_scene(blender_exe, jobtypes_farm.root / "anim" / "scene" / "anim.blend", 6)


def test_animation_in_chunks_with_video_matches_a_direct_render(jobtypes_farm, scene, blender_exe, tmp_path):
    api = jobtypes_farm.api
    out = jobtypes_farm.root / "anim" / "render" / "plain"
    over_blend = scene.with_name("anim_overrides.blend")
    over_blend.write_bytes(scene.read_bytes())
    over_out = jobtypes_farm.root / "anim" / "render" / "overridden"
    plain = api.submit("blender-render", "anim plain", render_settings(scene, out, "1-6", 2, create_video=True,
                                                                        fps=24))
    overridden = api.submit("blender-render", "anim overrides",
                            render_settings(over_blend, over_out, "1-2", 1, rna_overrides=OVERRIDES))
    names = [t["name"] for t in api.tasks(overridden["id"])]
    assert names == ["rna-overrides", "blender-render-1", "blender-render-2", "move-to-final"]
    api.wait_all([plain["id"], overridden["id"]])

    # Every frame, in the final directory only, plus the video of them.
    assert sorted(p.name for p in out.iterdir()) == [f"{n:06d}.png" for n in range(1, 7)] + ["anim-1-6.mkv"]
    assert all(image_size(f) == (64, 48) for f in out.glob("*.png"))
    video = ffprobe(out / "anim-1-6.mkv")["streams"][0]
    assert int(video["nb_read_frames"]) == 6 and video["avg_frame_rate"] == "24/1"
    assert sorted(p.name for p in out.parent.iterdir()) == ["overridden", "plain"]  # no intermediate left

    # A frame from the farm is pixel-identical to the frame rendered directly.
    direct = render_directly(blender_exe, scene, tmp_path / "direct", 4)
    assert framemd5(out / "000004.png") == framemd5(direct)

    # The overrides ran: half the resolution and a blue cube, exactly what Blender gives with the same
    # lines run directly; and the overrides file is gone again.
    assert sorted(p.name for p in over_out.iterdir()) == ["000001.png", "000002.png"]
    assert image_size(over_out / "000001.png") == (32, 24)
    py = tmp_path / "same-overrides.py"
    py.write_text("import bpy\n" + "\n".join(OVERRIDES) + "\n")
    direct_over = render_directly(blender_exe, over_blend, tmp_path / "direct-over", 1, py)
    assert framemd5(over_out / "000001.png") == framemd5(direct_over)
    plain_half = render_directly(blender_exe, scene, tmp_path / "direct-half", 1,
                                 _write(tmp_path / "half.py", "import bpy\n" + OVERRIDES[0]))
    r, g, b = mean_rgb(over_out / "000001.png")
    r0, g0, b0 = mean_rgb(plain_half)
    assert b - r > b0 - r0 + 5, ((r, g, b), (r0, g0, b0))  # the orange cube turned blue
    assert not list(over_blend.parent.glob("*-overrides.py"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_rerun_replaces_the_frames_and_keeps_the_old_ones_aside(jobtypes_farm, scene):
    """A second job on the same output (fewer frames, another format) never mixes with the first's."""
    api = jobtypes_farm.api
    out = jobtypes_farm.root / "anim" / "rerun" / "frames"
    first = api.submit("blender-render", "rerun 1", render_settings(scene, out, "1-4", 2))
    api.wait(first["id"])
    assert sorted(p.name for p in out.iterdir()) == [f"{n:06d}.png" for n in range(1, 5)]
    second = api.submit("blender-render", "rerun 2", render_settings(scene, out, "2,3", 2, format="OPEN_EXR"))
    api.wait(second["id"])
    assert sorted(p.name for p in out.iterdir()) == ["000002.exr", "000003.exr"]
    (old,) = [p for p in out.parent.iterdir() if p.name != "frames"]
    assert old.name.startswith("frames-")  # moved out of the way: frames-YYYY-MM-DD_HHMMSS
    assert sorted(p.name for p in old.iterdir()) == [f"{n:06d}.png" for n in range(1, 5)]
    assert ffprobe(out / "000002.exr", count_frames=False)["streams"][0]["codec_name"] == "exr"


def test_bad_overrides_are_refused_or_fail_the_render_clearly(jobtypes_farm, scene):
    api = jobtypes_farm.api
    out = jobtypes_farm.root / "anim" / "bad" / "frames"
    r = api.post_raw("/api/jobs", {"name": "bad syntax", "type": "blender-render", "settings": render_settings(
        scene, out, "1", 1, rna_overrides=["bpy.context.scene.render.fps = 24", "scene.render.fps = = 2"])})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_setting"
    assert r.json()["message"].startswith("setting 'rna_overrides': line 2 ('scene.render.fps = = 2')")

    blend = scene.with_name("anim_bad.blend")
    blend.write_bytes(scene.read_bytes())
    job = api.submit("blender-render", "bad at run time", render_settings(
        blend, out, "1", 1, rna_overrides=["bpy.context.scene.render.no_such_setting = 1"]))
    done = api.wait(job["id"], lambda j: j["status"] in ("failed", "completed"), allow_failure=True, timeout=120)
    assert done["status"] == "failed"
    render = next(t for t in api.tasks(job["id"]) if t["name"] == "blender-render-1")
    full = api.task(render["id"])
    assert "exited with code 42" in full["activity"], full["activity"]
    assert "no_such_setting" in (full["log_tail"] or ""), full["log_tail"]
    assert not out.exists()
