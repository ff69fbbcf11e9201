"""blender-render-still on a whole farm (Server, Manager, 2 workers as processes) with real Blender.

The scene (scripts/scenes/still_scene.py): glossy, diffuse and emissive objects
under an area light, 120x90, Cycles on the CPU, adaptive sampling off, and a
compositor blur (a filter that reads neighbouring pixels, so compositing tiles
one by one would show seams).

Tolerances:
* tiles: none. Cycles seeds every pixel from its position in the whole frame,
  the parts are float EXR, and the merge applies view transform, dither and
  compositing to the whole image, so the result is pixel-identical to a render
  on one machine. (With adaptive sampling on, Cycles' convergence test looks at
  neighbouring pixels within the rendered region, and a few pixels near the
  tile edges come out differently: see docs/job-types-bake-still.md.)
* samples: the merge is another random estimate of the same image, so it is
  compared statistically, against the noise floor: the mean absolute difference
  (RGB, 8-bit levels) between two single-machine renders at the full sample
  count that differ only in their seed. The merge's difference to a full render
  must be at most 1.25 times that floor -- as good as rendering again on one
  machine, give or take a quarter -- and below the difference of every part
  alone (a quarter of the samples each). Measured for this scene at 64 samples:
  floor 0.57, merge 0.51, parts 0.72 to 0.93.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.jobtypes.jobtypes_support import framemd5, image_size

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 120, 90
SAMPLES_TOLERANCE = 1.25
"""How much further from a full render the merged samples may be than another full render (another seed)."""


def make_still_scene(blender: str, path: Path, samples: int) -> Path:
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "still_scene.py"), "--", str(path), str(WIDTH), str(HEIGHT),
                    str(samples), "0"], check=True, capture_output=True, timeout=120)
    return path


def render_directly(blender: str, blend: Path, out: Path, frame: int, python_expr: str | None = None) -> Path:
    """The frame rendered by Blender itself, with the arguments the worker uses."""
    argv = [blender, "--enable-autoexec", "-noaudio", "--background", str(blend)]
    if python_expr:
        argv += ["--python-expr", python_expr]
    argv += ["--render-output", str(out / "######"), "--render-format", "PNG", "--render-frame", str(frame)]
    subprocess.run(argv, check=True, capture_output=True, timeout=180)
    return out / f"{frame:06d}.png"


def rgb(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                          check=True, capture_output=True, timeout=60).stdout


def mean_abs_diff(a: Path, b: Path) -> float:
    pa, pb = rgb(a), rgb(b)
    assert len(pa) == len(pb) == WIDTH * HEIGHT * 3
    return sum(abs(x - y) for x, y in zip(pa, pb)) / len(pa)


def as_png(blender: str, blend: Path, exr: Path, out: Path) -> Path:
    """One part on its own, through the same output path as the merge (view transform, compositor)."""
    args = {"mode": "samples", "inputs": [str(exr)], "weights": [1], "output": str(out), "format": "PNG", "frame": 1}
    subprocess.run([blender, "-b", str(blend), "--python-exit-code", "3", "--python",
                    str(ROOT / "worker" / "commands" / "merge_script.py"), "--", json.dumps(args)],
                   check=True, capture_output=True, timeout=120)
    return out


def test_tiles_merge_pixel_identical_to_one_machine(jobtypes_farm, blender_exe, tmp_path):
    api = jobtypes_farm.api
    root = jobtypes_farm.root / "still-tiles"
    blend = make_still_scene(blender_exe, root / "scene" / "still.blend", 32)
    job = api.submit("blender-render-still", "poster tiles", {
        "filepath": str(blend), "frame": 1, "render_output": str(root / "out" / "poster-####"),
        "strategy": "tiles", "parts": 6})
    tasks = api.tasks(job["id"])
    renders = sorted(t["name"] for t in tasks if t["name"].startswith("render-tile-"))
    assert renders == [f"render-tile-r{r}-c{c}" for r in range(2) for c in range(3)]
    api.wait(job["id"], timeout=180)

    merged = root / "out" / "poster-0001.png"
    assert image_size(merged) == (WIDTH, HEIGHT)
    assert [p.name for p in (root / "out").iterdir()] == ["poster-0001.png"], "parts left behind"
    merge = next(t for t in api.tasks(job["id"]) if t["name"] == "merge-tiles")
    assert merge["status"] == "completed"
    direct = render_directly(blender_exe, blend, tmp_path / "direct", 1)
    assert framemd5(merged) == framemd5(direct)


def test_samples_merge_beats_every_part(jobtypes_farm, blender_exe, tmp_path):
    api = jobtypes_farm.api
    root = jobtypes_farm.root / "still-samples"
    blend = make_still_scene(blender_exe, root / "scene" / "still.blend", 16)
    job = api.submit("blender-render-still", "poster samples", {
        "filepath": str(blend), "frame": 1, "render_output": str(root / "out" / "poster-####"),
        "strategy": "samples", "parts": 4, "samples": 64, "keep_parts": True})
    api.wait(job["id"], timeout=180)

    merged = root / "out" / "poster-0001.png"
    assert image_size(merged) == (WIDTH, HEIGHT)
    full = "import bpy; c = bpy.context.scene.cycles; c.samples = 64; c.seed = {}"
    reference = render_directly(blender_exe, blend, tmp_path / "direct", 1, full.format(0))
    another = render_directly(blender_exe, blend, tmp_path / "another", 1, full.format(1))
    (parts_dir,) = [p for p in (root / "out").iterdir() if p.is_dir()]
    parts = sorted(parts_dir.glob("samples-*.exr"))
    assert [p.name for p in parts] == [f"samples-{i:02d}-000001.exr" for i in range(1, 5)]

    floor = mean_abs_diff(another, reference)
    merged_diff = mean_abs_diff(merged, reference)
    part_diffs = [mean_abs_diff(as_png(blender_exe, blend, p, tmp_path / f"{p.stem}.png"), reference)
                  for p in parts]
    print(f"mean |x - full render|: another seed {floor:.3f}, merged {merged_diff:.3f}, "
          f"parts {', '.join(f'{d:.3f}' for d in part_diffs)}")
    assert merged_diff <= SAMPLES_TOLERANCE * floor, (merged_diff, floor)
    assert merged_diff < min(part_diffs), (merged_diff, part_diffs)
    assert len(set(framemd5(tmp_path / f"{p.stem}.png")[0] for p in parts)) == 4, "parts share a seed"


@pytest.mark.parametrize("settings, words", [
    ({"strategy": "slices"}, "setting 'strategy': must be one of tiles, samples"),
    ({"parts": 1}, "setting 'parts': must be at least 2"),
    ({"frame": None}, "setting 'frame': is required"),
    ({"render_output": "poster-####"}, "setting 'render_output': must be an absolute path"),
    ({"strategy": "samples", "samples": 3}, "setting 'samples': 3 samples cannot be shared by 4 parts"),
])
def test_bad_still_settings_answer_400_naming_the_setting(jobtypes_farm, settings, words):
    raw = {k: v for k, v in {"filepath": "/tmp/x.blend", "frame": 1, "render_output": "/tmp/out/poster-####",
                             **settings}.items() if v is not None}
    r = jobtypes_farm.api.post_raw("/api/jobs", {"name": "bad still", "type": "blender-render-still",
                                                 "settings": raw})
    assert r.status_code == 400 and r.json()["code"] == "invalid_setting"
    assert words in r.json()["message"]
