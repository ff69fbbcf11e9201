"""Helpers for the worker's unit tests: a real upstream queue whose transport records."""

from __future__ import annotations

import threading

import pytest

from shared.documents import Task
from worker.config import WorkerConfig
from worker.runner import SubprocessRunner
from worker.task_execution import TaskExecution
from worker.upstream_queue import UpstreamQueue


class RecordingTransport:
    """Stands in for the Manager at the far end of the queue: records what arrives."""

    def __init__(self):
        self.sent = []
        self.answers = []  # statuses or exceptions to give, in order; then 204
        self.lock = threading.Lock()

    def __call__(self, item):
        with self.lock:
            answer = self.answers.pop(0) if self.answers else 204
            if isinstance(answer, Exception):
                raise answer
            self.sent.append(item)
            return answer

    def updates(self):
        return [i.json for i in self.sent if i.path.endswith("/update")]

    def log_text(self):
        return "\n".join(u.get("log", "") for u in self.updates())

    def outputs(self):
        return [p for i in self.sent if i.path == "/output-produced" for p in i.json["paths"]]


@pytest.fixture
def transport():
    return RecordingTransport()


@pytest.fixture
def queue(tmp_path, transport):
    q = UpstreamQueue(tmp_path / "queue.sqlite", transport, retry_seconds=0.05)
    yield q
    q.close()


@pytest.fixture
def worker_config(tmp_path):
    return WorkerConfig(manager_url="http://127.0.0.1:9", data_dir=str(tmp_path / "wdata"),
                        push_act_interval_seconds=0, push_log_interval_seconds=0, abort_grace_seconds=1,
                        missing_blendfile_wait_seconds=0.1, output_watch=False)


def _make_task(commands, task_id="t1", job="j1", **extra):
    return Task.from_dict({"_id": task_id, "job": job, "name": "test task", "status": "active",
                           "task_type": "debug", "commands": commands, **extra})


@pytest.fixture
def make_task():
    return _make_task


@pytest.fixture
def run_task(worker_config, queue, transport):
    """Run a task's commands through the real TaskExecution; returns (outcome, transport)."""

    def run(commands, **extra):
        runner = SubprocessRunner(worker_config.pid_path, grace_seconds=1)
        execution = TaskExecution(_make_task(commands, **extra), worker_config, queue, runner)
        outcome = execution.run()
        queue.flush()
        return outcome

    return run
