"""Fixtures for the worker's e2e tests: a tiny scene made by Blender's Python, and a way
to run a task through the real TaskExecution with the Manager end recorded. The scene and
probe helpers are in worker_e2e_helpers.py."""

from __future__ import annotations

import subprocess

import pytest

from shared.documents import Task
from tests.e2e.worker.worker_e2e_helpers import make_scene
from worker.config import WorkerConfig
from worker.runner import SubprocessRunner
from worker.task_execution import TaskExecution
from worker.upstream_queue import UpstreamQueue


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
