"""blender-render: settings checks and task graphs (shared storage and upload), without Blender."""

from __future__ import annotations

import ast

import pytest

from backend.server.compilers import CompileContext, SettingError
from backend.server.compilers.blender_render import EXTENSIONS, FORMATS, RENDER_FORMAT_ARGS, overrides_path
from tests.unit.server.compile_helpers import CREATED, JobTypeCase, by_name

ALL = frozenset({"blender-render", "file-management", "video-encoding"})
INTERM = "/render/shot1/frames__intermediate-2024-03-05_140709-abc123"
CASE = JobTypeCase("blender-render", "Shot one", ALL,
                   {"filepath": "/shared/shot1/scene.flamenco.blend", "frames": "1-10", "chunk_size": 4,
                    "render_output": "/render/shot1/frames/######", "format": "PNG"})
ctx, settings, compile_ = CASE.ctx, CASE.settings, CASE.compile


def test_chunks_render_into_an_intermediate_dir_then_move_to_final(jt):
    tasks = compile_(jt, settings())
    assert [t.name for t in tasks] == ["blender-render-1-4", "blender-render-5-8", "blender-render-9-10",
                                       "move-to-final"]
    assert [c["settings"]["frames"] for t in tasks[:3] for c in t.commands] == ["1..4", "5..8", "9,10"]
    assert all(t.task_type == "blender-render" and t.parents == [] for t in tasks[:3])
    assert tasks[0].commands[0]["settings"]["render_output"] == f"{INTERM}/######"
    final = tasks[-1]
    assert final.commands == [{"name": "move_to_final", "settings": {"src": INTERM, "dest": "/render/shot1/frames"}}]
    assert final.parents == tasks[:3]


def test_the_intermediate_dir_is_unique_per_job(jt):
    """Two jobs created in the same second on the same output must not share a directory."""
    a = compile_(jt, settings(), CompileContext("0190aa00aaaa111111", "a", CREATED, "shared", {}, ALL))
    b = compile_(jt, settings(), CompileContext("0190aa00aaaa222222", "b", CREATED, "shared", {}, ALL))
    assert a[-1].commands[0]["settings"]["src"] != b[-1].commands[0]["settings"]["src"]
    assert a[-1].commands[0]["settings"]["dest"] == b[-1].commands[0]["settings"]["dest"]


def test_rna_overrides_task_is_the_parent_of_every_render(jt):
    lines = ["bpy.context.scene.render.resolution_percentage = 50",
             "bpy.data.objects['Cube'].hide_render = False"]
    tasks = compile_(jt, settings(rna_overrides=lines))
    rna = tasks[0]
    assert rna.name == "rna-overrides" and rna.task_type == "file-management" and rna.priority == 80
    (cmd,) = rna.commands
    assert cmd["name"] == "create_python_file"
    assert cmd["settings"]["filepath"] == "/shared/shot1/scene.flamenco-overrides.py"
    contents = cmd["settings"]["contents"]
    ast.parse(contents)
    assert "import bpy" in contents and contents.endswith("\n".join(lines) + "\n")
    renders = [t for t in tasks if t.task_type == "blender-render"]
    assert len(renders) == 3 and all(t.parents == [rna] for t in renders)
    final = tasks[-1]
    assert [c["name"] for c in final.commands] == ["move_to_final", "remove_file"]
    assert final.commands[1]["settings"] == {"path": "/shared/shot1/scene.flamenco-overrides.py"}


def test_overrides_file_sits_where_blender_render_looks_for_it():
    # worker/commands/blender.py: filepath.with_name(filepath.stem + "-overrides.py")
    assert overrides_path("/a/b/scene.blend") == "/a/b/scene-overrides.py"
    assert overrides_path("/a/b/scene.flamenco.blend") == "/a/b/scene.flamenco-overrides.py"
    assert overrides_path("{job_files}/sub/x.blend") == "{job_files}/sub/x-overrides.py"
    assert overrides_path("C:\\shots\\x.blend") == "C:\\shots/x-overrides.py"


@pytest.mark.parametrize("lines, line_no, words", [
    (["bpy.context.scene.render.resolution_percentage = "], 1, "invalid syntax"),
    (["bpy.context.scene.frame_start = 1", "bpy.context.scene.frame_end = (2", "z = 3"], 2, "line 2"),
    (["for ob in bpy.data.objects:", "ob.hide_render = False"], 2, "indented block"),
    (["bpy.context.scene.frame_start = 1", "bpy.context.scene.frame_end = 2\nc = = 3"], 2, "line 2"),
    (["bpy.context.scene.frame_start = 1", "import os"], 2, "only assignments"),
    (["bpy.context.scene.frame_start = __import__('os').system('id')"], 1, "must be a literal"),
    (["bpy.app.driver_namespace['x'] = 1"], 1, "data path under bpy.context.scene"),
])
def test_rna_overrides_syntax_errors_name_the_setting_and_line(jt, lines, line_no, words):
    with pytest.raises(SettingError) as info:
        compile_(jt, settings(rna_overrides=lines))
    assert info.value.key == "rna_overrides"
    assert f"line {line_no} (" in str(info.value) and words in str(info.value)


def test_rna_overrides_must_be_a_list_of_strings(jt):
    for bad in ("bpy.x = 1", [1, 2], [None]):
        with pytest.raises(SettingError) as info:
            jt.validate(settings(rna_overrides=bad))
        assert info.value.key == "rna_overrides"


def test_empty_overrides_add_no_task(jt):
    assert [t.name for t in compile_(jt, settings(rna_overrides=[]))][0] == "blender-render-1-4"


UP_INTERM = "frames__intermediate-2024-03-05_140709-abc123"


def test_upload_mode_writes_the_overrides_in_each_render_task(jt):
    files = {"shots/scene.blend": {"sha256": "a" * 64, "size": 3}}
    tasks = compile_(jt, settings(filepath="shots/scene.blend", render_output="frames/######",
                                  rna_overrides=["bpy.context.scene.cycles.samples = 1"]), ctx("upload", files))
    assert [t.name for t in tasks] == ["blender-render-1-4", "blender-render-5-8", "blender-render-9-10",
                                       "move-to-final"]
    for t in tasks[:-1]:
        assert [c["name"] for c in t.commands] == ["create_python_file", "blender_render"]
        assert t.commands[0]["settings"]["filepath"] == "{job_files}/shots/scene-overrides.py"
        assert t.commands[1]["settings"]["filepath"] == "{job_files}/shots/scene.blend"
        assert t.commands[1]["settings"]["render_output"] == f"{{job_output}}/{UP_INTERM}/######"
        assert t.parents == []
        assert t.io() == {"inputs": [], "outputs": [UP_INTERM]}
    move = tasks[-1]
    assert move.commands == [{"name": "move_to_final", "settings": {"src": f"{{job_output}}/{UP_INTERM}",
                                                                    "dest": "{job_output}/frames"}}]
    assert move.io() == {"inputs": [UP_INTERM], "outputs": [UP_INTERM, "frames"]}


def test_upload_mode_makes_the_video_from_frames_fetched_through_the_manager(jt):
    files = {"scene.blend": {"sha256": "a" * 64, "size": 3}}
    tasks = by_name(compile_(jt, settings(filepath="scene.blend", render_output="out/shot/f_####",
                                          create_video=True, fps=24), ctx("upload", files)))
    interm = "out/shot__intermediate-2024-03-05_140709-abc123"
    video = tasks["create-video"]
    assert video.commands[0]["settings"]["input_files"] == f"{{job_output}}/{interm}/*.png"
    assert video.commands[0]["settings"]["output_file"] == f"{{job_output}}/{interm}/scene-1-10.mkv"
    assert video.io() == {"inputs": [interm], "outputs": [f"{interm}/scene-1-10.mkv"]}
    assert tasks["move-to-final"].parents == [video]
    assert tasks["move-to-final"].io()["outputs"] == [interm, "out/shot"]
    assert jt.task_types(jt.validate(settings(create_video=True, fps=24)), ctx("upload", files)) == ALL


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_has_an_extension_and_a_name_blender_accepts(jt, fmt):
    # Names Blender 3.4's --render-format accepts (it silently writes PNG for others).
    accepted = {"TGA", "RAWTGA", "JPEG", "IRIS", "PNG", "BMP", "HDR", "TIFF", "OPEN_EXR", "OPEN_EXR_MULTILAYER",
                "CINEON", "DPX", "JP2", "WEBP"}
    assert EXTENSIONS[fmt].startswith(".")
    (first,) = compile_(jt, settings(format=fmt, frames="1", chunk_size=1))[:1]
    assert first.commands[0]["settings"]["format"] == RENDER_FORMAT_ARGS.get(fmt, fmt)
    assert first.commands[0]["settings"]["format"] in accepted


def test_no_format_keeps_the_blend_files_own(jt):
    tasks = compile_(jt, settings(format=None))
    assert "format" not in tasks[0].commands[0]["settings"]


def test_video_follows_all_renders_and_precedes_the_move(jt):
    tasks = by_name(compile_(jt, settings(create_video=True, fps=25, format="JPEG")))
    video = tasks["create-video"]
    assert video.task_type == "video-encoding"
    assert video.commands[0]["settings"] == {"input_files": f"{INTERM}/*.jpg",
                                             "output_file": f"{INTERM}/scene-1-10.mkv", "fps": 25.0,
                                             "ffmpeg_cmd": "{ffmpeg}"}
    assert [p.name for p in video.parents] == ["blender-render-1-4", "blender-render-5-8", "blender-render-9-10"]
    assert tasks["move-to-final"].parents == [video]
    assert jt.task_types(jt.validate(settings(create_video=True, fps=25)), ctx()) == ALL


@pytest.mark.parametrize("extra, key, words", [
    ({"render_output": "/render/shot1/frames/"}, "render_output", "file name pattern"),
    ({"render_output": "/render/shot1/frames/frame_"}, "render_output", "needs '#'"),
    ({"render_output": "/render/##/frames/####"}, "render_output", "only be in the file name"),
    ({"render_output": "######"}, "render_output", "directory"),
    ({"format": "GIF"}, "format", "one of"),
    ({"chunk_size": 0}, "chunk_size", "at least 1"),
    ({"frames": "10-1"}, "frames", "ends before it starts"),
    ({"filepath": None}, "filepath", "required"),
    ({"create_video": True}, "fps", "required"),
    ({"create_video": True, "fps": 24, "format": "OPEN_EXR"}, "format", "cannot be encoded"),
    ({"create_video": True, "fps": 24, "frames": "3"}, "frames", "at least 2 frames"),
    ({"create_video": True, "fps": 24, "format": None}, "output_file_extension", "required"),
    ({"create_video": True, "fps": 24, "images_or_video": "video"}, "create_video", "images"),
    ({"samples": 4}, "samples", "unknown setting"),
])
def test_impossible_settings_are_refused_naming_the_setting(jt, extra, key, words):
    with pytest.raises(SettingError) as info:
        compile_(jt, settings(**extra))
    assert info.value.key == key, str(info.value)
    assert words in str(info.value)
    assert str(info.value).startswith(f"setting '{key}': ")


def test_upload_mode_refuses_absolute_escaping_or_bare_output(jt):
    files = {"scene.blend": {"sha256": "a" * 64, "size": 3}}
    up = ctx("upload", files)
    for output in ("/abs/######", "{render}/x/######", "../x/######", "C:/x/######", "######"):
        with pytest.raises(SettingError, match="render_output"):
            compile_(jt, settings(filepath="scene.blend", render_output=output), up)
    with pytest.raises(SettingError, match="uploaded files"):
        compile_(jt, settings(filepath="other.blend", render_output="f/####"), up)


def test_stepped_and_scattered_frames_chunk_in_blender_form(jt):
    tasks = compile_(jt, settings(frames="1-9x2,20", chunk_size=3))
    assert [t.name for t in tasks[:-1]] == ["blender-render-1-5", "blender-render-7-20"]
    assert [t.commands[0]["settings"]["frames"] for t in tasks[:-1]] == ["1,3,5", "7,9,20"]


def test_gpu_renders_need_a_gpu_and_the_other_tasks_what_their_types_need(jt):
    tasks = by_name(compile_(jt, settings(gpu=True, rna_overrides=["bpy.context.scene.render.fps = 30"])))
    assert {t.needs for name, t in tasks.items() if name.startswith("blender-render-")} == {"gpu"}
    assert tasks["rna-overrides"].needs == tasks["move-to-final"].needs == ""
    assert {t.needs for t in compile_(jt, settings())} == {""}
