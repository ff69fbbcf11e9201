"""blender_bake: settings, command line, progress from Blender's bake lines; then real Blender.

The command-level tests run through the worker's real TaskExecution with a
stand-in 'blender' (a script printing what Blender prints), so they need no
Blender; the runs marked e2e bake a generated scene with the real one.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from worker.commands.bake import SCRIPT, BakeParams, BakeProgress


def cmd(**settings):
    return {"name": "blender_bake", "settings": settings}


def fake_blender(tmp_path: Path, body: str) -> str:
    """A 'blender' that prints `body` (shell) and nothing else."""
    script = tmp_path / "blender"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.fixture
def blend(tmp_path):
    path = tmp_path / "shot" / "scene.blend"
    path.parent.mkdir()
    path.write_bytes(b"BLENDER-v304")
    return path


# --- pure parts --------------------------------------------------------------------

def test_progress_follows_the_bake_lines_and_restarts_per_pass():
    p = BakeProgress()
    assert p.feed("Read blend: /x.blend") is None
    assert p.feed("bake: frame 1 :: 12") == pytest.approx(1 / 12)
    assert p.feed("bake: frame 6 :: 12") == pytest.approx(6 / 12)
    assert p.feed("bake: frame 12 :: 12") == 1.0
    assert p.feed("bake: frame 5 :: 24") == pytest.approx(1 / 20)  # a second bake, from frame 5
    assert p.feed("bake: frame 24 :: 24") == 1.0 and p.passes == 2
    assert BakeProgress().feed("bake: frame -3 :: 2") == pytest.approx(1 / 6)


def test_argv_runs_the_bake_script_with_its_arguments_as_json(tmp_path):
    params = BakeParams(["/opt/blender/blender", "--factory-startup"], tmp_path / "s.blend", "bake", part=2,
                        parts=3, cache_types=["cloth"], objects=["Sheet"], frame_end=40, mute_unrelated=False)
    argv = params.argv()
    assert argv[:8] == ["/opt/blender/blender", "--factory-startup", "--disable-autoexec", "-noaudio",
                        "--background", str(tmp_path / "s.blend"), "--python-exit-code", "3"]
    assert argv[8:11] == ["--python", str(SCRIPT), "--"]
    assert json.loads(argv[11]) == {"action": "bake", "part": 2, "parts": 3, "cache_types": ["cloth"],
                                    "objects": ["Sheet"], "frame_end": 40, "mute_unrelated": False}
    prepare = BakeParams(["b"], tmp_path / "s.blend", "prepare")
    assert "part" not in json.loads(prepare.argv()[-1]) and SCRIPT.is_file()


# --- through the worker's task execution --------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    ({"action": None}, "setting 'action': is required"),
    ({"action": "cook"}, "setting 'action': must be one of prepare, bake, finish, not 'cook'"),
    ({"action": "bake", "parts": 2}, "setting 'part': is required"),
    ({"action": "bake", "part": 3, "parts": 2}, "setting 'part': 3 is more than parts (2)"),
    ({"action": "bake", "part": 0, "parts": 2}, "setting 'part': must be at least 1"),
    ({"action": "bake", "part": 1.5, "parts": 2}, "setting 'part': must be a whole number"),
    ({"cache_types": ["cloth", "goo"]}, "setting 'cache_types': unknown goo"),
    ({"objects": "Sheet"}, "setting 'objects': must be a list of non-empty strings"),
    ({"mute_unrelated": "no"}, "setting 'mute_unrelated': must be true or false"),
    ({"filepath": "/x/scene.txt"}, "setting 'filepath': '/x/scene.txt' is not a .blend file"),
    ({"blender_cmd": "{blender}"}, "variable 'blender'"),
    ({"blender_cmd": "/no/such/blender"}, "setting 'blender_cmd': executable '/no/such/blender' not found"),
])
def test_bad_settings_fail_naming_the_setting(run_task, blend, settings, message):
    base = {"blender_cmd": sys.executable, "filepath": str(blend), "action": "prepare"}
    outcome = run_task([cmd(**{k: v for k, v in {**base, **settings}.items() if v is not None})])
    assert outcome.status == "failed"
    assert message in outcome.message, outcome.message
    assert outcome.message.startswith("command 0 (blender_bake): ")


def test_bake_lines_become_progress_and_the_log_keeps_them(run_task, transport, blend, tmp_path):
    lines = "\n".join(f"echo 'bake: frame {n} :: 8'" for n in range(1, 9))
    blender = fake_blender(tmp_path, "echo 'Read blend: x'\necho 'flamenco-bake: baking Sheet'\n"
                                     + lines + "\necho 'flamenco-bake: baked cloth of Sheet: 8 frames'")
    outcome = run_task([cmd(blender_cmd=blender, filepath=str(blend), action="bake", part=1, parts=2)])
    assert outcome.status == "completed", outcome.message
    log = transport.log_text()
    assert all(f"bake: frame {n} :: 8" in log for n in range(1, 9))
    activities = [u.get("activity", "") for u in transport.updates()]
    assert "bake part 1 of 2: baking Sheet" in activities
    assert "bake part 1 of 2: frame 4 of 8" in activities
    progress = [u["command_progress_percentage"] for u in transport.updates() if "command_progress_percentage" in u]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < p < 100 for p in progress)


def test_the_scripts_error_fails_the_task_with_its_message(run_task, blend, tmp_path):
    blender = fake_blender(tmp_path, "echo 'Error: the cloth of Sheet is missing frame(s) 4, 5'\nexit 3")
    outcome = run_task([cmd(blender_cmd=blender, filepath=str(blend), action="finish")])
    assert outcome.status == "failed"
    assert "blender_bake finish: the cloth of Sheet is missing frame(s) 4, 5" in outcome.message


def test_a_missing_blend_file_fails_naming_it(run_task, tmp_path):
    outcome = run_task([cmd(blender_cmd=sys.executable, filepath=str(tmp_path / "gone.blend"), action="prepare")])
    assert outcome.status == "failed" and "gone.blend' does not exist" in outcome.message


# --- real Blender ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def bake_scene(tmp_path_factory):
    blender = pytest.importorskip("shutil").which("blender")
    if not blender:
        pytest.skip("blender is not available")
    path = tmp_path_factory.mktemp("bake") / "scene.blend"
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "bake_scene.py"), "--", str(path), "6"],
                   check=True, capture_output=True, timeout=120)
    return blender, path


@pytest.mark.e2e
def test_prepare_bake_finish_in_one_place(run_task, bake_scene, transport):
    blender, blend = bake_scene
    common = {"blender_cmd": blender, "filepath": str(blend)}
    outcome = run_task([cmd(action="prepare", **common), cmd(action="bake", part=1, parts=1, **common),
                        cmd(action="finish", **common)])
    assert outcome.status == "completed", outcome.message
    files = sorted(p.name for p in (blend.parent / "blendcache_scene").iterdir())
    sheet, flag = "5368656574", "466C6167"  # hex of the object names, as Blender names the files
    for prefix in (sheet, flag):
        assert [f for f in files if f.startswith(prefix)] == [f"{prefix}_{n:06d}_00.bphys" for n in range(1, 7)]
    assert not list(blend.parent.glob(".flamenco-bake-*")), "staging left behind"
    log = transport.log_text()
    assert "rigid body world: 6 frames in memory" in log and "marked baked" in log


@pytest.mark.e2e
def test_finish_without_the_parts_refuses_to_mark_anything_baked(run_task, bake_scene, tmp_path):
    blender, blend = bake_scene
    copy = tmp_path / "copy" / "scene.blend"
    copy.parent.mkdir()
    copy.write_bytes(blend.read_bytes())
    common = {"blender_cmd": blender, "filepath": str(copy)}
    outcome = run_task([cmd(action="prepare", **common), cmd(action="finish", **common)])
    assert outcome.status == "failed"
    assert outcome.message.startswith("command 1 (blender_bake) failed: blender_bake finish: ")
    assert "the cloth 'Cloth' of 'Flag' is missing frame(s) 1, 2, 3, 4, 5, 6" in outcome.message
    assert "the particles 'Particles' of 'Emitter' has no cache files" in outcome.message


@pytest.mark.e2e
def test_an_unknown_object_fails_naming_it(run_task, bake_scene):
    blender, blend = bake_scene
    outcome = run_task([cmd(action="prepare", blender_cmd=blender, filepath=str(blend), objects=["Nope"])])
    assert outcome.status == "failed" and "no object(s) Nope in view layer" in outcome.message, outcome.message


MIXED_SCENE = """
import bpy, math, sys
out = sys.argv[sys.argv.index('--') + 1]
bpy.ops.wm.read_factory_settings(use_empty=True)
s = bpy.context.scene
s.frame_start, s.frame_end = 1, 6
s.render.engine = 'CYCLES'; s.cycles.samples = 2; s.cycles.use_denoising = False
s.render.resolution_x, s.render.resolution_y = 64, 48
bpy.ops.object.camera_add(location=(7, -7, 5), rotation=(math.radians(62), 0, math.radians(45)))
s.camera = bpy.context.object
bpy.ops.object.light_add(type='SUN')
bpy.ops.mesh.primitive_plane_add(size=8)
bpy.context.object.modifiers.new('Collision', 'COLLISION')
bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6, location=(-1.5, 0, 1.2), segments=12, ring_count=8)
soft = bpy.context.object; soft.name = 'Softy'
soft.modifiers.new('Softbody', 'SOFT_BODY').settings.use_goal = False
bpy.ops.mesh.primitive_grid_add(x_subdivisions=16, y_subdivisions=16, size=3, location=(2, 0, 0.01))
canvas = bpy.context.object; canvas.name = 'Canvas'
canvas.modifiers.new('Paint', 'DYNAMIC_PAINT')
with bpy.context.temp_override(object=canvas, active_object=canvas):
    bpy.ops.dpaint.type_toggle(type='CANVAS')
surface = canvas.modifiers['Paint'].canvas_settings.canvas_surfaces[0]
surface.surface_format = 'VERTEX'; surface.frame_end = 6
mat = bpy.data.materials.new('paint'); mat.use_nodes = True
vc = mat.node_tree.nodes.new('ShaderNodeVertexColor'); vc.layer_name = 'dp_paintmap'
mat.node_tree.links.new(vc.outputs[0], mat.node_tree.nodes['Principled BSDF'].inputs[0])
canvas.data.materials.append(mat)
bpy.ops.mesh.primitive_cube_add(size=0.5, location=(1, 0, 0.1))
brush = bpy.context.object; brush.name = 'Brush'
brush.modifiers.new('Paint', 'DYNAMIC_PAINT')
with bpy.context.temp_override(object=brush, active_object=brush):
    bpy.ops.dpaint.type_toggle(type='BRUSH')
for f, x in ((1, 1.0), (6, 3.0)):
    brush.location.x = x; brush.keyframe_insert('location', frame=f)
bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 3, 1))
domain = bpy.context.object; domain.name = 'Smoke'
fluid = domain.modifiers.new('Fluid', 'FLUID'); fluid.fluid_type = 'DOMAIN'
fluid.domain_settings.domain_type = 'GAS'; fluid.domain_settings.resolution_max = 12
fluid.domain_settings.cache_frame_end = 6
smoke = bpy.data.materials.new('smoke'); smoke.use_nodes = True
nodes = smoke.node_tree.nodes; nodes.remove(nodes['Principled BSDF'])
volume = nodes.new('ShaderNodeVolumePrincipled'); volume.inputs['Density'].default_value = 20
smoke.node_tree.links.new(volume.outputs[0], nodes['Material Output'].inputs['Volume'])
domain.data.materials.append(smoke)
bpy.ops.mesh.primitive_uv_sphere_add(radius=0.3, location=(0, 3, 0.5))
flow = bpy.context.object.modifiers.new('Fluid', 'FLUID'); flow.fluid_type = 'FLOW'
flow.flow_settings.flow_type = 'SMOKE'
bpy.ops.wm.save_as_mainfile(filepath=out)
"""

LOCAL_BAKE_ALL = """
import bpy
for ob in bpy.context.scene.objects:
    for md in ob.modifiers:
        if md.type == 'SOFT_BODY': md.point_cache.use_disk_cache = True
        if md.type == 'FLUID' and md.fluid_type == 'DOMAIN':
            md.domain_settings.cache_directory = '//cache_fluid_' + ob.name
            md.domain_settings.cache_type = 'ALL'
            with bpy.context.temp_override(active_object=ob, object=ob): bpy.ops.fluid.bake_all()
bpy.ops.ptcache.bake_all(bake=True)
bpy.ops.wm.save_mainfile()
"""


def frame_md5(blender: str, blend: Path, out: Path, frame: int) -> str:
    subprocess.run([blender, "-b", str(blend), "-o", str(out / "#"), "-F", "PNG", "-f", str(frame)], check=True,
                   capture_output=True, timeout=120)
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(out / f"{frame}.png"), "-f", "md5", "-"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.mark.e2e
def test_soft_body_dynamic_paint_and_fluid_bake_in_parts_like_a_local_bake(run_task, bake_scene, tmp_path):
    blender, _ = bake_scene
    farm, local, unbaked = (tmp_path / d / "mixed.blend" for d in ("farm", "local", "unbaked"))
    script = tmp_path / "mixed_scene.py"
    script.write_text(MIXED_SCENE)
    farm.parent.mkdir()
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(script), "--", str(farm)], check=True, capture_output=True, timeout=120)
    for copy in (local, unbaked):
        copy.parent.mkdir()
        copy.write_bytes(farm.read_bytes())
    common = {"blender_cmd": blender, "filepath": str(farm)}
    outcome = run_task([cmd(action="prepare", **common), cmd(action="bake", part=1, parts=2, **common),
                        cmd(action="bake", part=2, parts=2, **common), cmd(action="finish", **common)])
    assert outcome.status == "completed", outcome.message
    assert (farm.parent / "cache_fluid_Smoke" / "data").is_dir()
    names = {p.name for p in (farm.parent / "blendcache_mixed").iterdir()}
    softy, canvas = "536F667479", "43616E766173"
    assert {f"{canvas}_{n:06d}_00.bphys" for n in range(1, 7)} <= names
    assert {f"{softy}_{n:06d}_00.bphys" for n in range(1, 7)} <= names
    subprocess.run([blender, "-b", str(local), "--python-exit-code", "1", "--python-expr", LOCAL_BAKE_ALL],
                   check=True, capture_output=True, timeout=120)
    baked = frame_md5(blender, farm, tmp_path / "out-farm", 5)
    assert baked == frame_md5(blender, local, tmp_path / "out-local", 5)
    assert baked != frame_md5(blender, unbaked, tmp_path / "out-unbaked", 5)


@pytest.mark.e2e
def test_a_part_rerun_after_the_bake_keeps_the_other_parts_caches(run_task, bake_scene, tmp_path):
    """Requeueing one part requeues the finishing step too; the other part's bake must survive it."""
    blender, blend = bake_scene
    copy = tmp_path / "rerun" / "scene.blend"
    copy.parent.mkdir()
    copy.write_bytes(blend.read_bytes())
    common = {"blender_cmd": blender, "filepath": str(copy)}
    outcome = run_task([cmd(action="prepare", **common), cmd(action="bake", part=1, parts=2, **common),
                        cmd(action="bake", part=2, parts=2, **common), cmd(action="finish", **common)])
    assert outcome.status == "completed", outcome.message
    cache = copy.parent / "blendcache_scene"
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    outcome = run_task([cmd(action="bake", part=2, parts=2, **common), cmd(action="finish", **common)],
                       task_id="t2")
    assert outcome.status == "completed", outcome.message
    after = {p.name: p.read_bytes() for p in cache.iterdir()}
    assert after == before  # the same simulation, baked again, gives the same bytes
