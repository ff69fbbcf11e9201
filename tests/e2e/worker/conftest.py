"""Fixtures for the worker's e2e tests: a tiny scene made by Blender's Python, and a way
to run a task through the real TaskExecution with the Manager end recorded."""

from __future__ import annotations

import json
import subprocess

import pytest

from shared.documents import Task
from worker.config import WorkerConfig
from worker.runner import SubprocessRunner
from worker.task_execution import TaskExecution
from worker.upstream_queue import UpstreamQueue

SCENE_SCRIPT = """
import bpy
s = bpy.context.scene
s.render.engine = 'CYCLES'
s.cycles.samples = 4
s.cycles.use_denoising = {denoise}
s.render.resolution_x, s.render.resolution_y = 160, 120
s.render.resolution_percentage = 100
s.frame_start, s.frame_end = 1, 6
s.render.fps = 24
cube = bpy.data.objects.get('Cube')
if cube:
    cube.rotation_euler = (0, 0, 0)
    cube.keyframe_insert('rotation_euler', frame=1)
    cube.rotation_euler = (0, 0, 1.5)
    cube.keyframe_insert('rotation_euler', frame=6)
sound = {sound!r}
if sound:
    s.sequence_editor_create()
    s.sequence_editor.sequences.new_sound('tone', sound, 1, 1)
bpy.ops.wm.save_as_mainfile(filepath={path!r})
"""


def make_scene(blender_exe, path, denoise=False, sound=""):
    script = SCENE_SCRIPT.format(denoise=denoise, path=str(path), sound=str(sound))
    subprocess.run([blender_exe, "-b", "--factory-startup", "-noaudio", "--python-expr", script],
                   check=True, capture_output=True, timeout=120)
    assert path.exists()
    return path


@pytest.fixture(scope="session")
def tone_wav(tmp_path_factory, ffmpeg_exe):
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    subprocess.run([ffmpeg_exe, "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="session")
def scene(tmp_path_factory, blender_exe):
    return make_scene(blender_exe, tmp_path_factory.mktemp("scene") / "tiny.blend")


class Recorder:
    def __init__(self):
        self.sent = []

    def __call__(self, item):
        self.sent.append(item)
        return 204

    def updates(self):
        return [i.json for i in self.sent if i.path.endswith("/update")]

    def outputs(self):
        return [p for i in self.sent if i.path == "/output-produced" for p in i.json["paths"]]

    def log_text(self):
        return "\n".join(u.get("log", "") for u in self.updates())


@pytest.fixture
def run_task(tmp_path):
    """Run commands as one task; returns (outcome, recorder)."""

    def run(commands, task_id="t1", **cfg):
        recorder = Recorder()
        config = WorkerConfig(manager_url="http://127.0.0.1:9", data_dir=str(tmp_path / "wdata"),
                              push_act_interval_seconds=0.2, push_log_interval_seconds=1,
                              missing_blendfile_wait_seconds=0.1, **cfg)
        queue = UpstreamQueue(tmp_path / f"queue-{task_id}.sqlite", recorder)
        task = Task.from_dict({"_id": task_id, "job": "j1", "name": "e2e", "status": "active",
                               "task_type": "blender-render", "commands": commands})
        execution = TaskExecution(task, config, queue, SubprocessRunner(config.pid_path, 2))
        outcome = execution.run()
        queue.flush()
        queue.close()
        return outcome, recorder

    return run


def ffprobe(path, *entries, stream="v:0"):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", stream, "-show_entries",
                          "stream=" + ",".join(entries), "-of", "json", str(path)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    streams = json.loads(out)["streams"]
    return streams[0] if streams else {}
