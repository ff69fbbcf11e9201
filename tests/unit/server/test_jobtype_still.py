"""blender-render-still: settings checks, task graphs and the part set-up code, without Blender.

The python_expr each part runs is executed here against a stand-in `bpy`
(a namespace with the scene fields the code touches), so the tile borders and
sample shares are checked as numbers.
"""

from __future__ import annotations

import sys
import types

import pytest

from backend.server import jobs
from backend.server.compilers import SettingError
from backend.server.compilers.blender_render_still import (MERGE_TASK_TYPE, RENDER_TASK_TYPE, final_path, grid,
                                                           sample_shares, samples_expr, tile_expr)
from backend.web import ApiError
from shared.protocol import DEFAULT_WORKER_TASK_TYPES
from tests.unit.server.compile_helpers import JobTypeCase

BLEND = "/shared/shot1/scene.flamenco.blend"
PARTS = "/render/stills/shot1-0012__parts-2024-03-05_140709-abc123"
CASE = JobTypeCase("blender-render-still", "Poster", DEFAULT_WORKER_TASK_TYPES,
                   {"filepath": BLEND, "frame": 12, "render_output": "/render/stills/shot1-####"})
ctx, settings, compile_ = CASE.ctx, CASE.settings, CASE.compile


# --- graphs -------------------------------------------------------------------------

def test_tiles_render_in_parallel_then_one_merge(jt):
    tasks = compile_(jt, settings(parts=6))
    *renders, merge = tasks
    assert [t.name for t in renders] == ["render-tile-r0-c0", "render-tile-r0-c1", "render-tile-r0-c2",
                                         "render-tile-r1-c0", "render-tile-r1-c1", "render-tile-r1-c2"]
    assert all(t.task_type == RENDER_TASK_TYPE and t.parents == [] for t in renders)
    for t in renders:
        (cmd,) = t.commands
        s = cmd["settings"]
        assert cmd["name"] == "blender_render"
        assert s["frames"] == "12" and s["filepath"] == BLEND and s["blender_cmd"] == "{blender}"
        assert s["render_output"] == f"{PARTS}/{t.name[len('render-'):]}-######"
        assert "format" not in s  # the part sets OPEN_EXR itself; --render-format would override it
        compile(s["python_expr"], t.name, "exec")
    assert merge.name == "merge-tiles" and merge.task_type == MERGE_TASK_TYPE and merge.parents == renders
    m, cleanup = merge.commands
    assert m["name"] == "merge_tiles"
    assert m["settings"]["tiles"] == [[f"{PARTS}/tile-r{r}-c{c}-000012.exr" for c in range(3)] for r in range(2)]
    assert m["settings"]["output_file"] == "/render/stills/shot1-0012.png"
    assert m["settings"]["format"] == "PNG" and m["settings"]["frame"] == 12 and m["settings"]["filepath"] == BLEND
    assert cleanup == {"name": "remove_tree", "settings": {"path": PARTS}}


def test_samples_render_the_whole_frame_with_a_share_each(jt):
    tasks = compile_(jt, settings(strategy="samples", parts=3, samples=100, format="OPEN_EXR", keep_parts=True))
    *renders, merge = tasks
    assert [t.name for t in renders] == ["render-samples-01", "render-samples-02", "render-samples-03"]
    (m,) = merge.commands  # keep_parts: no clean-up
    assert merge.name == "merge-samples" and merge.parents == renders
    assert m["name"] == "merge_samples"
    assert m["settings"]["input_files"] == [f"{PARTS}/samples-0{i}-000012.exr" for i in (1, 2, 3)]
    assert m["settings"]["samples"] == 100
    assert m["settings"]["output_file"] == "/render/stills/shot1-0012.exr"


def test_merge_tasks_run_on_any_default_worker(jt):
    for strategy in ("tiles", "samples"):
        values = jt.validate(settings(strategy=strategy))
        assert jt.task_types(values, ctx()) <= set(DEFAULT_WORKER_TASK_TYPES)


@pytest.mark.parametrize("parts, expected", [(2, (2, 1)), (3, (3, 1)), (4, (2, 2)), (6, (3, 2)), (8, (4, 2)),
                                             (9, (3, 3)), (12, (4, 3)), (16, (4, 4)), (64, (8, 8))])
def test_tile_grids_are_as_square_as_the_count_allows(parts, expected):
    assert grid(parts) == expected


@pytest.mark.parametrize("output, frame, fmt, expected", [
    ("/r/stills/shot1-####", 12, "PNG", "/r/stills/shot1-0012.png"),
    ("/r/stills/######", 7, "JPEG", "/r/stills/000007.jpg"),
    ("/r/stills/poster.png", 3, "PNG", "/r/stills/poster.png"),
    ("/r/stills/poster", 3, "OPEN_EXR", "/r/stills/poster.exr"),
    ("{render}/a/b_##_final", 5, "TIFF", "{render}/a/b_05_final.tif"),
])
def test_the_output_name(output, frame, fmt, expected):
    assert final_path(output, frame, fmt) == expected


def test_sample_shares_add_up():
    assert sample_shares(100, 3) == [34, 33, 33]
    assert sample_shares(64, 4) == [16] * 4
    assert all(sum(sample_shares(s, k)) == s for s in range(5, 200, 7) for k in range(2, 6))


# --- what a part does in Blender, against a stand-in bpy ---------------------------------

def fake_scene(width=160, height=120, percentage=100, engine="CYCLES", samples=64, seed=0):
    ns = types.SimpleNamespace
    render = ns(resolution_x=width, resolution_y=height, resolution_percentage=percentage, engine=engine,
                use_multiview=False, use_compositing=True, use_sequencer=True, use_stamp=True,
                use_single_layer=False, use_border=False, use_crop_to_border=False,
                border_min_x=0.0, border_max_x=1.0, border_min_y=0.0, border_max_y=1.0,
                image_settings=ns(file_format="PNG", color_depth="8", color_mode="RGB", exr_codec="PIZ",
                                  use_preview=True))
    return ns(render=render, cycles=ns(samples=samples, seed=seed, use_denoising=True), use_nodes=False,
              node_tree=None)


def run_part(expr, scene, monkeypatch):
    bpy = types.ModuleType("bpy")
    bpy.context = types.SimpleNamespace(scene=scene)
    monkeypatch.setitem(sys.modules, "bpy", bpy)
    try:
        exec(compile(expr, "<python_expr>", "exec"), {})
    except SystemExit as ex:
        return ex.code
    return 0


def pixels(lo, hi, size):
    """The pixel span Blender renders for border fractions: int(border * size)."""
    return int(lo * size), int(hi * size)


@pytest.mark.parametrize("width, height, columns, rows", [(160, 120, 2, 2), (121, 89, 3, 2), (1920, 1080, 4, 3),
                                                          (7, 5, 7, 1)])
def test_tiles_cover_the_frame_exactly_once(monkeypatch, width, height, columns, rows):
    spans = {}
    for r in range(rows):
        for c in range(columns):
            scene = fake_scene(width, height)
            assert run_part(tile_expr(c, r, columns, rows), scene, monkeypatch) == 0
            rd = scene.render
            assert rd.use_border and rd.use_crop_to_border
            spans[r, c] = (pixels(rd.border_min_x, rd.border_max_x, width),
                           pixels(rd.border_min_y, rd.border_max_y, height))
    for r in range(rows):
        xs = [spans[r, c][0] for c in range(columns)]
        assert xs[0][0] == 0 and xs[-1][1] == width
        assert all(a[1] == b[0] for a, b in zip(xs, xs[1:]))
    for c in range(columns):
        ys = [spans[r, c][1] for r in range(rows)]  # row 0 is the top: the highest y
        assert ys[0][1] == height and ys[-1][0] == 0
        assert all(a[0] == b[1] for a, b in zip(ys, ys[1:]))


def test_a_part_renders_raw_float_exr(monkeypatch):
    scene = fake_scene()
    assert run_part(tile_expr(0, 0, 2, 2, samples=48), scene, monkeypatch) == 0
    rd, im = scene.render, scene.render.image_settings
    assert (im.file_format, im.color_depth, im.color_mode, im.exr_codec, im.use_preview) == \
        ("OPEN_EXR", "32", "RGBA", "ZIP", False)
    assert not rd.use_compositing and not rd.use_sequencer and not rd.use_stamp and rd.use_single_layer
    assert scene.cycles.samples == 48


def test_sample_parts_get_a_seed_and_a_share_each(monkeypatch):
    got = []
    for i in range(3):
        scene = fake_scene(samples=100, seed=5)
        assert run_part(samples_expr(i, 3), scene, monkeypatch) == 0
        got.append((scene.cycles.samples, scene.cycles.seed, scene.cycles.use_denoising, scene.render.use_border))
    assert got == [(34, 5, False, False), (33, 6, False, False), (33, 7, False, False)]
    scene = fake_scene(samples=10)
    assert run_part(samples_expr(1, 2, samples=40), scene, monkeypatch) == 0
    assert scene.cycles.samples == 20


@pytest.mark.parametrize("make_expr, scene_kw, words", [
    (lambda: samples_expr(0, 2), {"engine": "BLENDER_EEVEE"}, "the samples strategy needs Cycles"),
    (lambda: samples_expr(0, 8), {"samples": 4}, "4 samples cannot be shared by 8 parts"),
    (lambda: tile_expr(0, 0, 8, 1), {"width": 6, "height": 4}, "6x4 pixels cannot be cut into 8x1 tiles"),
])
def test_a_part_that_cannot_work_exits_with_an_error_line(monkeypatch, capsys, make_expr, scene_kw, words):
    assert run_part(make_expr(), fake_scene(**scene_kw), monkeypatch) == 3
    out = capsys.readouterr().out
    assert out.startswith("Error: distributed still: ") and words in out


# --- settings -----------------------------------------------------------------------

@pytest.mark.parametrize("extra, key, words", [
    ({"frame": None}, "frame", "is required"),
    ({"frame": -1}, "frame", "must be at least 0"),
    ({"frame": "12"}, "frame", "must be an integer"),
    ({"filepath": "/shared/shot1/scene.exr"}, "filepath", "is not a .blend file"),
    ({"render_output": "/render/stills/"}, "render_output", "must end in a file name"),
    ({"render_output": "stills/shot1-####"}, "render_output", "must be an absolute path"),
    ({"render_output": "/render/##/shot1"}, "render_output", "only appear in the file name"),
    ({"render_output": "/render/stills/#-shot-##"}, "render_output", "one run of '#'"),
    ({"strategy": "pixels"}, "strategy", "must be one of tiles, samples"),
    ({"parts": 1}, "parts", "must be at least 2"),
    ({"parts": 65}, "parts", "must be at most 64"),
    ({"format": "OPEN_EXR_MULTILAYER"}, "format", "must be one of"),
    ({"samples": 0}, "samples", "must be at least 1"),
    ({"strategy": "samples", "parts": 8, "samples": 4}, "samples", "4 samples cannot be shared by 8 parts"),
    ({"keep_parts": 1}, "keep_parts", "must be true or false"),
    ({"frames": "1-10"}, "frames", "unknown setting"),
])
def test_bad_settings_are_refused_naming_the_setting(jt, extra, key, words):
    with pytest.raises(SettingError) as err:
        compile_(jt, settings(**extra))
    assert err.value.key == key and words in str(err.value), str(err.value)


@pytest.mark.parametrize("keep", [False, True])
def test_upload_mode_sends_the_parts_to_the_merge_through_the_manager(jt, keep):
    files = {"scene.blend": {"sha256": "a" * 64, "size": 10}}
    tasks = compile_(jt, settings(filepath="scene.blend", render_output="stills/x-####", parts=2,
                                  keep_parts=keep), ctx("upload", files))
    parts = "stills/x-0012__parts-2024-03-05_140709-abc123"
    *renders, merge = tasks
    assert [t.io() for t in renders] == [
        {"inputs": [], "outputs": [f"{parts}/tile-r0-c0-000012.exr"], **({} if keep else {"scratch": True})},
        {"inputs": [], "outputs": [f"{parts}/tile-r0-c1-000012.exr"], **({} if keep else {"scratch": True})}]
    assert renders[0].commands[0]["settings"]["filepath"] == "{job_files}/scene.blend"
    assert renders[0].commands[0]["settings"]["render_output"] == f"{{job_output}}/{parts}/tile-r0-c0-######"
    s = merge.commands[0]["settings"]
    assert s["tiles"] == [[f"{{job_output}}/{parts}/tile-r0-c0-000012.exr",
                           f"{{job_output}}/{parts}/tile-r0-c1-000012.exr"]]
    assert s["output_file"] == "{job_output}/stills/x-0012.png"
    assert merge.io() == {"inputs": [parts], "outputs": ["stills/x-0012.png"] + ([] if keep else [parts])}
    assert [c["name"] for c in merge.commands] == ["merge_tiles"] + ([] if keep else ["remove_tree"])


def test_upload_mode_output_must_stay_in_the_job(jt):
    files = {"scene.blend": {"sha256": "a" * 64, "size": 10}}
    for bad in ("/render/x-####", "{render}/x-####", "../x-####"):
        with pytest.raises(SettingError) as err:
            compile_(jt, settings(filepath="scene.blend", render_output=bad), ctx("upload", files))
        assert err.value.key == "render_output"
    (merge,) = compile_(jt, settings(filepath="scene.blend", render_output="x-####"), ctx("upload", files))[-1:]
    assert merge.commands[0]["settings"]["output_file"] == "{job_output}/x-0012.png"


def test_the_server_answers_400_naming_the_setting(seeded_server):
    body = {"name": "poster", "type": "blender-render-still", "settings": settings(strategy="halves")}
    with pytest.raises(ApiError) as err:
        jobs.submit_job(seeded_server.ctx, seeded_server.artist, body)
    assert err.value.status == 400 and err.value.code == "invalid_setting"
    assert err.value.message.startswith("setting 'strategy': must be one of tiles, samples")


def test_a_valid_still_job_is_stored_with_its_tasks(seeded_server):
    job = jobs.submit_job(seeded_server.ctx, seeded_server.artist, {"name": "poster", "type": "blender-render-still",
                                                                    "settings": settings(parts=4)})
    assert job.status in ("queued", "active")


def compositor(outputs, layer="ViewLayer", scene=None, mute=False):
    ns = types.SimpleNamespace
    node = ns(bl_idname="CompositorNodeRLayers", mute=mute, layer=layer, scene=scene, name="Render Layers",
              outputs=[ns(name=name, is_linked=True) for name in outputs])
    return ns(nodes=[ns(bl_idname="CompositorNodeComposite", mute=False, outputs=[]), node])


@pytest.mark.parametrize("tree, words", [
    (compositor(["Image", "Alpha"]), None),
    (compositor(["Image", "Depth"], mute=True), None),
    (compositor(["Image", "Depth", "Normal"]), "the compositor uses render pass(es) Depth, Normal of node"),
    (compositor(["Image"], layer="Background"), "reads another scene or view layer"),
])
def test_parts_refuse_compositing_they_cannot_reproduce(monkeypatch, capsys, tree, words):
    scene = fake_scene()
    scene.use_nodes, scene.node_tree = True, tree
    bpy_context_layer = types.SimpleNamespace(name="ViewLayer")
    bpy = types.ModuleType("bpy")
    bpy.context = types.SimpleNamespace(scene=scene, view_layer=bpy_context_layer)
    monkeypatch.setitem(sys.modules, "bpy", bpy)
    try:
        exec(compile(tile_expr(0, 0, 2, 2), "<python_expr>", "exec"), {})
        code = 0
    except SystemExit as ex:
        code = ex.code
    if words is None:
        assert code == 0 and not scene.render.use_compositing
    else:
        assert code == 3 and words in capsys.readouterr().out
