"""Job types: settings schemas, validation and the task graphs they compile to."""

from __future__ import annotations

import textwrap

import pytest

from backend.server.compilers import CompileContext, Registry, RegistryError, SettingError
from backend.server.compilers.base import Setting, validate_settings
from tests.unit.server.compile_helpers import CREATED, compile_job

ALL = frozenset({"sleep", "blender-render", "file-management", "video-encoding", "debug"})


def ctx(mode="shared", files=None, types=ALL) -> CompileContext:
    return CompileContext("job1", "Job one", CREATED, mode, files or {}, types)


@pytest.fixture(scope="module")
def registry():
    return Registry.builtin()


def compile_(registry, job_type, settings, context=None):
    return compile_job(registry.get(job_type), settings, context or ctx())


def test_builtin_job_types_have_complete_schemas(registry):
    assert set(registry.names()) >= {"blender-render", "exec-command", "sleep", "video-encode"}
    for desc in registry.describe():
        assert desc["name"] and desc["label"] and desc["description"]
        for s in desc["settings"]:
            assert set(s) >= {"key", "type", "default", "required", "choices", "label", "description"}
            assert s["label"] and s["description"], s["key"]


def test_sleep_chunks_frames(registry):
    tasks = compile_(registry, "sleep", {"frames": "1-5,8", "chunk_size": 2, "time_in_seconds": 0.5})
    assert [t.name for t in tasks] == ["sleep-1-2", "sleep-3-4", "sleep-5-8"]
    assert {t.task_type for t in tasks} == {"sleep"}
    assert [c["name"] for c in tasks[0].commands] == ["echo", "sleep"]
    assert tasks[0].commands[1]["settings"] == {"time_in_seconds": 0.5}


def test_exec_command_is_one_debug_task(registry):
    (task,) = compile_(registry, "exec-command", {"cmd": "echo 'hello world'"})
    assert task.task_type == "debug"
    assert task.commands == [{"name": "exec", "settings": {"cmd": "echo 'hello world'"}}]
    with pytest.raises(SettingError, match="cmd"):
        compile_(registry, "exec-command", {"cmd": "echo 'unbalanced"})


@pytest.mark.parametrize("settings, key, words", [
    ({}, "frames", "required"),
    ({"frames": "5-1"}, "frames", "ends before it starts"),
    ({"frames": "1-3", "chunk_size": 0}, "chunk_size", "at least 1"),
    ({"frames": "1-3", "chunk_size": "2"}, "chunk_size", "integer"),
    ({"frames": "1-3", "chunksize": 2}, "chunksize", "unknown setting"),
    ({"frames": 12}, "frames", "string"),
])
def test_sleep_settings_errors_name_the_setting(registry, settings, key, words):
    with pytest.raises(SettingError) as info:
        registry.get("sleep").validate(settings)
    assert info.value.key == key
    assert words in str(info.value)


def test_validation_fills_defaults_and_checks_choices():
    schema = [Setting("a", "integer", default=3), Setting("b", "choice", choices=("x", "y"), default="x"),
              Setting("c", "boolean"), Setting("d", "number", minimum=0, maximum=1)]
    assert validate_settings(schema, {}) == {"a": 3, "b": "x"}
    assert validate_settings(schema, {"a": 4.0, "d": 1}) == {"a": 4, "b": "x", "d": 1.0}
    with pytest.raises(SettingError, match="one of x, y"):
        validate_settings(schema, {"b": "z"})
    with pytest.raises(SettingError, match="true or false"):
        validate_settings(schema, {"c": "yes"})
    with pytest.raises(SettingError, match="at most 1"):
        validate_settings(schema, {"d": 2})


def render_settings(**kw):
    return {"filepath": "/shared/shot1/scene.flamenco.blend", "frames": "1-10", "chunk_size": 4,
            "render_output": "/render/shot1/frames/######", "format": "PNG", **kw}


def test_blender_render_shared_graph(registry):
    tasks = compile_(registry, "blender-render", render_settings())
    names = [t.name for t in tasks]
    assert names == ["blender-render-1-4", "blender-render-5-8", "blender-render-9-10", "move-to-final"]
    interm = "/render/shot1/frames__intermediate-2024-03-05_140709-job1"
    first = tasks[0].commands[0]
    assert first == {"name": "blender_render", "settings": {
        "blender_cmd": "{blender}", "filepath": "/shared/shot1/scene.flamenco.blend", "format": "PNG",
        "render_output": f"{interm}/######", "frames": "1..4"}}
    assert tasks[2].commands[0]["settings"]["frames"] == "9,10"
    final = tasks[-1]
    assert final.task_type == "file-management"
    assert final.commands == [{"name": "move_to_final", "settings": {"src": interm, "dest": "/render/shot1/frames"}}]
    assert final.parents == tasks[:3]
    assert registry.get("blender-render").task_types(render_settings(), ctx()) == {"blender-render",
                                                                                  "file-management"}


def test_blender_render_with_video(registry):
    tasks = compile_(registry, "blender-render", render_settings(create_video=True, fps=24))
    assert [t.name for t in tasks][-2:] == ["create-video", "move-to-final"]
    video, final = tasks[-2], tasks[-1]
    interm = "/render/shot1/frames__intermediate-2024-03-05_140709-job1"
    assert video.task_type == "video-encoding"
    assert video.commands[0]["settings"] == {"input_files": f"{interm}/*.png",
                                             "output_file": f"{interm}/scene-1-10.mkv", "fps": 24.0,
                                             "ffmpeg_cmd": "{ffmpeg}"}
    assert video.parents == tasks[:3]
    assert final.parents == [video]
    assert "video-encoding" in registry.get("blender-render").task_types(
        render_settings(create_video=True, fps=24), ctx())


@pytest.mark.parametrize("extra, key", [
    ({"create_video": True}, "fps"),
    ({"create_video": True, "fps": 24, "format": "OPEN_EXR"}, "format"),
    ({"create_video": True, "fps": 24, "frames": "3"}, "frames"),
    ({"create_video": True, "fps": 24, "format": None}, "output_file_extension"),
    ({"render_output": "frames"}, "render_output"),
    ({"format": "GIF"}, "format"),
])
def test_blender_render_refuses_impossible_settings(registry, extra, key):
    settings = {k: v for k, v in render_settings(**extra).items() if v is not None}
    with pytest.raises(SettingError) as info:
        compile_(registry, "blender-render", settings)
    assert info.value.key == key


def test_blender_render_upload_mode(registry):
    files = {"scene.blend": {"sha256": "a" * 64, "size": 3}}
    settings = render_settings(filepath="scene.blend", render_output="frames/######")
    tasks = compile_(registry, "blender-render", settings, ctx("upload", files))
    assert [t.name for t in tasks] == ["blender-render-1-4", "blender-render-5-8", "blender-render-9-10",
                                       "move-to-final"]
    s = tasks[0].commands[0]["settings"]
    assert s["filepath"] == "{job_files}/scene.blend"
    assert s["render_output"].startswith("{job_output}/frames__intermediate-")
    with pytest.raises(SettingError, match="uploaded files"):
        compile_(registry, "blender-render", render_settings(filepath="other.blend",
                                                             render_output="frames/######"),
                 ctx("upload", files))
    with pytest.raises(SettingError, match="relative"):
        compile_(registry, "blender-render", render_settings(filepath="scene.blend"), ctx("upload", files))


def test_large_frame_range_compiles_quickly(registry):
    tasks = compile_(registry, "blender-render", render_settings(frames="1-100000", chunk_size=1))
    assert len(tasks) == 100_001
    assert len(tasks[-1].parents) == 100_000


def test_job_types_load_from_a_directory(tmp_path):
    (tmp_path / "turntable.py").write_text(textwrap.dedent('''
        from backend.server.compilers import JobType, Setting, TaskSpec, command, register_compiler

        @register_compiler("turntable")
        class Turntable(JobType):
            label = "Turntable"
            description = "Spins the camera."
            settings_schema = [Setting("steps", "integer", default=4, minimum=1)]

            def task_types(self, settings, ctx):
                return {"sleep"}

            def compile(self, settings, ctx):
                return [TaskSpec(f"step-{i}", "sleep", [command("sleep", time_in_seconds=i)])
                        for i in range(settings["steps"])]
        '''))
    (tmp_path / "_private.py").write_text("raise RuntimeError('not loaded')\n")
    reg = Registry.builtin()
    assert reg.load_directory(tmp_path) == ["turntable"]
    assert "turntable" in reg.names()
    jt = reg.get("turntable")
    assert len(jt.compile(jt.validate({"steps": 3}), ctx())) == 3
    (tmp_path / "broken.py").write_text("import nonexistent_module_xyz\n")
    with pytest.raises(RegistryError, match="broken.py"):
        Registry.builtin().load_directory(tmp_path)
    with pytest.raises(RegistryError, match="does not exist"):
        Registry.builtin().load_directory(tmp_path / "nope")
