"""The example job type in examples/job_types/, loaded the way the Server loads a studio's own."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import pytest

from backend.server.compilers import CompileContext, Registry, SettingError
from tests.unit.server.compile_helpers import compile_job

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "job_types"
CTX = CompileContext("job1", "thumbs", dt.datetime(2024, 3, 5), "shared", {}, frozenset({"video-encoding"}))


@pytest.fixture(scope="module")
def jt():
    reg = Registry.builtin()
    assert reg.load_directory(EXAMPLES) == ["ffmpeg-thumbnails"]
    return reg.get("ffmpeg-thumbnails")


def compile_(jt, raw, ctx=CTX):
    return compile_job(jt, raw, ctx)


def test_one_task_per_video_running_ffmpeg_through_exec(jt):
    tasks = compile_(jt, {"inputs": ["{render}/shot 1/final.mp4", "/r/shot2/final.v2.mov"], "width": 160,
                          "at_seconds": 1.5})
    assert [(t.name, t.task_type, t.parents) for t in tasks] == [("thumbnail-1", "video-encoding", []),
                                                                 ("thumbnail-2", "video-encoding", [])]
    assert jt.task_types(jt.validate({"inputs": ["/a.mp4"]}), CTX) == {"video-encoding"}
    (command,) = tasks[0].commands
    assert command["name"] == "exec"
    # As the worker will split it once the Manager has put in '{ffmpeg}' and '{render}':
    expanded = command["settings"]["cmd"].replace("{ffmpeg}", "/usr/bin/ffmpeg").replace("{render}", "/mnt/render")
    assert shlex.split(expanded) == ["/usr/bin/ffmpeg", "-hide_banner", "-nostdin", "-y", "-ss", "1.5", "-i",
                                     "/mnt/render/shot 1/final.mp4", "-frames:v", "1", "-vf", "scale=160:-2",
                                     "/mnt/render/shot 1/final-thumb.jpg"]
    assert shlex.split(tasks[1].commands[0]["settings"]["cmd"])[-1] == "/r/shot2/final.v2-thumb.jpg"


@pytest.mark.parametrize("raw, key, words", [
    ({}, "inputs", "required"),
    ({"inputs": []}, "inputs", "at least one"),
    ({"inputs": ["relative.mp4"]}, "inputs", "item 1 ('relative.mp4') must be an absolute path"),
    ({"inputs": ["/a/x.mp4", "/a/x.mov"]}, "inputs", "same image"),
    ({"inputs": ["/a/x.mp4"], "suffix": ".txt"}, "suffix", "ending such as"),
    ({"inputs": ["/a/x.mp4"], "width": 8}, "width", "at least 16"),
    ({"inputs": "/a/x.mp4"}, "inputs", "list of strings"),
])
def test_bad_settings_name_the_setting(jt, raw, key, words):
    with pytest.raises(SettingError) as info:
        compile_(jt, raw)
    assert info.value.key == key and words in str(info.value)


def test_upload_mode_is_refused(jt):
    ctx = CompileContext("job1", "t", dt.datetime(2024, 3, 5), "upload", {"a.mp4": {"sha256": "a" * 64, "size": 1}})
    with pytest.raises(SettingError, match="shared storage"):
        compile_(jt, {"inputs": ["/a.mp4"]}, ctx)
    # The schema says so, and validating for upload mode refuses it before anything else.
    assert jt.describe()["files_modes"] == ["shared"]
    with pytest.raises(SettingError, match="needs shared storage; this job's files are uploaded files"):
        jt.validate({"inputs": ["/a.mp4"]}, files_mode="upload")
    assert jt.validate({"inputs": ["/a.mp4"]}, files_mode="shared")["inputs"] == ["/a.mp4"]
