"""`flamenco-worker` as a real process: signals, sign-off, returning the running task."""

import os
import signal
import subprocess
import sys
import time

import psutil

from tests.integration.worker.worker_it_helpers import task_doc, wait_for


def spawn(manager, tmp_path, *extra):
    cfg = tmp_path / "worker.toml"
    cfg.write_text(
        "may_i_run_interval_seconds = 0.5\n"
        "push_act_interval_seconds = 0.5\n"
        "push_log_interval_seconds = 0.5\n"
        "long_poll_seconds = 5\n"
        "abort_grace_seconds = 1\n")
    return subprocess.Popen([sys.executable, "-m", "worker", "--manager", manager.url, "--config", str(cfg),
                             "--data-dir", str(tmp_path / "wdata"), "--nickname", "proc", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def long_exec(seconds=60):
    return [{"name": "exec", "settings": {
        "cmd": f"{sys.executable} -c \"import time; print('working', flush=True); time.sleep({seconds})\""}}]


def test_sigterm_returns_the_task_and_signs_off(manager, tmp_path):
    proc = spawn(manager, tmp_path)
    try:
        manager.add_tasks(task_doc("t1", long_exec(), task_type="debug"))
        wait_for(lambda: manager.task("t1")["status"] == "active", what="task active")
        wait_for(lambda: any(c.cmdline()[-1:] != [] and "working" in " ".join(c.cmdline())
                             for c in psutil.Process(proc.pid).children(recursive=True)), what="subprocess")
        children = psutil.Process(proc.pid).children(recursive=True)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert time.monotonic() - started < 8
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
        assert manager.task("t1")["status"] in ("claimed-by-manager", "queued")
        (info,) = manager.workers()
        assert info["status"] == "offline"
        assert "signed off" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigusr1_sleeps_and_sigusr2_wakes(manager, tmp_path):
    proc = spawn(manager, tmp_path)
    try:
        wait_for(lambda: manager.workers() and manager.workers()[0]["status"] == "awake", what="awake")
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: manager.workers()[0]["status"] == "asleep", what="asleep")
        proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: manager.workers()[0]["status"] == "awake", what="awake again")
        manager.add_tasks(task_doc("t1", [{"name": "echo", "settings": {"message": "hi"}}]))
        wait_for(lambda: manager.task("t1")["status"] == "completed", what="task done")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_single_runs_one_task_and_exits(manager, tmp_path):
    manager.add_tasks(task_doc("t1", [{"name": "echo", "settings": {"message": "one"}}]),
                      task_doc("t2", [{"name": "echo", "settings": {"message": "two"}}]))
    proc = spawn(manager, tmp_path, "--single")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    statuses = sorted(t["status"] for t in manager.tasks().values())
    assert statuses.count("completed") == 1, statuses
