"""merge_tiles and merge_samples: settings and failures without Blender, then real merges.

The real runs (marked e2e) render a 64x48 scene with Blender -- parts set up by
the same python_expr the 'blender-render-still' job type sends -- and merge them
through the worker's TaskExecution.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backend.server.compilers.blender_render_still import samples_expr, tile_expr
from tests.conftest import ROOT
from worker.commands.merge import SCRIPT, MergeParams


def cmd(name, **settings):
    return {"name": name, "settings": settings}


@pytest.fixture
def blend(tmp_path):
    path = tmp_path / "scene.blend"
    path.write_bytes(b"BLENDER-v304")
    return path


def fake_blender(tmp_path: Path, body: str) -> str:
    script = tmp_path / "blender"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_argv_carries_the_layout_as_json(tmp_path):
    p = MergeParams(["/b"], tmp_path / "s.blend", tmp_path / "out.png", 3, "PNG",
                    tiles=[["/p/a.exr", "/p/b.exr"], ["/p/c.exr", "/p/d.exr"]])
    argv = p.argv()
    assert argv[argv.index("--python") + 1] == str(SCRIPT) and argv[-2] == "--"
    assert json.loads(argv[-1]) == {"mode": "tiles", "output": str(tmp_path / "out.png"), "format": "PNG",
                                    "frame": 3, "tiles": [["/p/a.exr", "/p/b.exr"], ["/p/c.exr", "/p/d.exr"]]}
    s = MergeParams(["/b"], tmp_path / "s.blend", tmp_path / "out.exr", 1, None, input_files=["/p/1.exr", "/p/2.exr"],
                    weights=[3.0, 1.0])
    assert json.loads(s.argv()[-1]) == {"mode": "samples", "output": str(tmp_path / "out.exr"), "format": None,
                                        "frame": 1, "inputs": ["/p/1.exr", "/p/2.exr"], "weights": [3.0, 1.0],
                                        "samples": None}


@pytest.mark.parametrize("name, settings, message", [
    ("merge_tiles", {"tiles": None}, "setting 'tiles': must be a non-empty list of rows"),
    ("merge_tiles", {"tiles": [["/p/a.exr"], ["/p/b.exr", "/p/c.exr"]]},
     "setting 'tiles': every row needs the same number of tiles"),
    ("merge_tiles", {"tiles": [["p/a.exr"]]}, "setting 'tiles': 'p/a.exr' is not an absolute path"),
    ("merge_tiles", {"output_file": "out.png"}, "setting 'output_file': must be an absolute path"),
    ("merge_tiles", {"format": "GIF"}, "setting 'format': must be one of PNG"),
    ("merge_tiles", {"frame": "one"}, "setting 'frame': must be a number"),
    ("merge_samples", {"input_files": []}, "setting 'input_files': must be a non-empty list of file paths"),
    ("merge_samples", {"weights": [1, 2, 3]}, "setting 'weights': must be 2 positive numbers"),
    ("merge_samples", {"weights": [1, 0]}, "setting 'weights': must be 2 positive numbers"),
    ("merge_samples", {"samples": 1}, "setting 'samples': must be at least 2"),
])
def test_bad_settings_fail_naming_the_setting(run_task, blend, tmp_path, name, settings, message):
    base = {"blender_cmd": sys.executable, "filepath": str(blend), "output_file": str(tmp_path / "o.png"),
            "frame": 1, "tiles": [["/p/a.exr", "/p/b.exr"]], "input_files": ["/p/1.exr", "/p/2.exr"]}
    if name == "merge_tiles":
        base.pop("input_files")
    else:
        base.pop("tiles")
    raw = {k: v for k, v in {**base, **settings}.items() if v is not None}
    outcome = run_task([cmd(name, **raw)])
    assert outcome.status == "failed"
    assert message in outcome.message, outcome.message


def test_missing_parts_fail_before_blender_starts(run_task, blend, tmp_path):
    part = tmp_path / "p1.exr"
    part.write_bytes(b"x")
    blender = fake_blender(tmp_path, f"touch {tmp_path}/blender-ran")
    outcome = run_task([cmd("merge_samples", blender_cmd=blender, filepath=str(blend),
                            input_files=[str(part), str(tmp_path / "p2.exr")], output_file=str(tmp_path / "o.png"),
                            frame=1)])
    assert outcome.status == "failed" and "1 part(s) missing, e.g. '" in outcome.message
    assert not (tmp_path / "blender-ran").exists()


def test_the_scripts_error_reaches_the_task(run_task, blend, tmp_path):
    parts = [tmp_path / "a.exr", tmp_path / "b.exr"]
    for p in parts:
        p.write_bytes(b"x")
    blender = fake_blender(tmp_path, "echo 'Error: the tiles of row 0 differ in height: [24, 25]'\nexit 3")
    outcome = run_task([cmd("merge_tiles", blender_cmd=blender, filepath=str(blend), tiles=[[str(p) for p in parts]],
                            output_file=str(tmp_path / "o.png"), frame=1)])
    assert outcome.status == "failed"
    assert "merge_tiles: the tiles of row 0 differ in height: [24, 25]" in outcome.message


# --- real Blender ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def still(tmp_path_factory):
    blender = pytest.importorskip("shutil").which("blender")
    ffmpeg = pytest.importorskip("shutil").which("ffmpeg")
    if not blender or not ffmpeg:
        pytest.skip("blender and ffmpeg are needed")
    d = tmp_path_factory.mktemp("still")
    blend = d / "still.blend"
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "still_scene.py"), "--", str(blend), "64", "48", "8"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([blender, "-b", str(blend), "-o", str(d / "full-#"), "-F", "PNG", "-f", "1"],
                   check=True, capture_output=True, timeout=120)
    return blender, blend, d / "full-1.png"


def render_part(blender, blend, expr, out):
    subprocess.run([blender, "-b", str(blend), "--python-expr", expr, "-o", str(out) + "-#", "-f", "1"],
                   check=True, capture_output=True, timeout=120)
    return Path(str(out) + "-1.exr")


def pixels(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                          check=True, capture_output=True, timeout=60).stdout


@pytest.mark.e2e
def test_tiles_merge_into_the_single_machine_render(run_task, still, tmp_path, transport):
    blender, blend, full = still
    rows = [[str(render_part(blender, blend, tile_expr(c, r, 2, 2), tmp_path / f"t{r}{c}")) for c in range(2)]
            for r in range(2)]
    out = tmp_path / "out" / "merged.png"
    outcome = run_task([cmd("merge_tiles", blender_cmd=blender, filepath=str(blend), tiles=rows,
                            output_file=str(out), format="PNG", frame=1)])
    assert outcome.status == "completed", outcome.message
    assert pixels(out) == pixels(full)
    assert str(out) in transport.outputs()
    assert not list(out.parent.glob("*.merging-*"))


@pytest.mark.e2e
def test_samples_merge_is_the_weighted_mean(run_task, still, tmp_path):
    blender, blend, full = still
    parts = [str(render_part(blender, blend, samples_expr(i, 2), tmp_path / f"s{i}")) for i in range(2)]
    out = tmp_path / "merged.png"
    outcome = run_task([cmd("merge_samples", blender_cmd=blender, filepath=str(blend), input_files=parts,
                            output_file=str(out), frame=1)])
    assert outcome.status == "completed", outcome.message
    merged, ref = pixels(out), pixels(full)
    assert len(merged) == len(ref) == 64 * 48 * 3
    assert sum(abs(a - b) for a, b in zip(merged, ref)) / len(ref) < 4.0
    # The weights are normalised: a part averaged with itself is that part.
    outputs = []
    for name, inputs, weights in (("one", parts[:1], None), ("twice", parts[:1] * 2, [2, 2])):
        path = tmp_path / f"{name}.png"
        outcome = run_task([cmd("merge_samples", blender_cmd=blender, filepath=str(blend), input_files=inputs,
                                weights=weights, output_file=str(path), frame=1)])
        assert outcome.status == "completed", outcome.message
        outputs.append(pixels(path))
    assert outputs[0] == outputs[1] != merged


@pytest.mark.e2e
def test_parts_of_the_wrong_size_are_refused(run_task, still, tmp_path):
    blender, blend, _ = still
    tile = render_part(blender, blend, tile_expr(0, 0, 2, 1), tmp_path / "half")
    outcome = run_task([cmd("merge_samples", blender_cmd=blender, filepath=str(blend), input_files=[str(tile)] * 2,
                            output_file=str(tmp_path / "o.png"), frame=1)])
    assert outcome.status == "failed"
    assert "is 32x48, the frame 64x48" in outcome.message, outcome.message
