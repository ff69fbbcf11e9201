"""A worker with slots runs several tasks at once, each on its own, against the real Manager."""

from __future__ import annotations

import sys
import time

import psutil

from backend.manager.state_machine import Report
from tests.integration.worker.worker_it_helpers import task_doc, wait_for


def sleep_task(task_id, seconds, **extra):
    return task_doc(task_id, [{"name": "sleep", "settings": {"time_in_seconds": seconds}}], **extra)


def python_task(task_id, code, **extra):
    extra.setdefault("task_type", "debug")
    return task_doc(task_id, [{"name": "exec", "settings": {"cmd": f'{sys.executable} -c "{code}"'}}], **extra)


def statuses(manager, *ids):
    tasks = manager.tasks()
    return [tasks[i]["status"] for i in ids]


def overlap_at_start(worker, n) -> bool:
    """Whether `n` tasks had started before the first one ended (from the worker's own events)."""
    kinds = [k for k, _ in worker.events if k.startswith("task-")]
    first_end = next(i for i, k in enumerate(kinds) if k != "task-start")
    return kinds[:first_end].count("task-start") >= n


def test_three_slots_run_three_tasks_at_once(manager, start_worker):
    wt = start_worker(slots=3)
    wait_for(lambda: "signed-on" in wt.kinds())
    worker_id = wt.worker.client.worker_id
    manager.add_tasks(*[sleep_task(f"t{i}", 1.5) for i in range(4)])
    wait_for(lambda: len(manager.worker_info(worker_id)["running_tasks"]) == 3, what="three tasks at once")
    assert len(manager.worker_info(worker_id)["running_tasks"]) == 3, "never a fourth"
    wait_for(lambda: statuses(manager, "t0", "t1", "t2", "t3") == ["completed"] * 4, timeout=30)
    assert overlap_at_start(wt.worker, 3)
    info = manager.worker_info(worker_id)
    assert info["running_tasks"] == [] and info.get("current_task") is None
    assert info["resources"]["slots"] == 3
    wt.stop()


def test_a_cancel_and_a_failure_leave_the_other_tasks_alone(manager, start_worker):
    wt = start_worker(slots=3)
    manager.add_tasks(sleep_task("steady", 3.0, priority=90), sleep_task("victim", 60, priority=80),
                      python_task("broken", "import sys; sys.exit(3)", priority=70))
    wait_for(lambda: statuses(manager, "steady", "victim") == ["active", "active"], what="both running")
    core = manager.core
    with core.db.write():
        assert core.state.change_status(core.db.tasks.get("victim"), "cancel-requested", Report("test cancels it"))
    wait_for(lambda: statuses(manager, "victim")[0] != "cancel-requested", timeout=10, what="victim stopped")
    wait_for(lambda: statuses(manager, "broken")[0] == "failed", timeout=10, what="broken failed")
    assert statuses(manager, "steady") == ["active"], "its neighbours' ends did not stop it"
    wait_for(lambda: statuses(manager, "steady") == ["completed"], timeout=15)
    assert statuses(manager, "victim")[0] in ("canceled", "claimed-by-manager")
    assert wt.worker.state == "awake"
    wt.stop()


def test_sigterm_returns_every_running_task_and_each_slot_had_its_own_pid_file(manager, start_worker, tmp_path):
    wt = start_worker(slots=2)
    busy = "import time; print('busy', flush=True); time.sleep(60)"
    manager.add_tasks(python_task("a", busy), python_task("b", busy))
    wait_for(lambda: all(r.current_pid for r in wt.worker.slots.runners), what="two subprocesses running")
    pids = [r.current_pid for r in wt.worker.slots.runners]
    data = tmp_path / "w1"
    pid_files = {p.name: int(p.read_text().split()[0]) for p in data.glob("subprocess*.pid")}
    assert pid_files == {"subprocess.pid": pids[0], "subprocess-1.pid": pids[1]}
    started = time.monotonic()
    assert wt.stop() == 0
    assert time.monotonic() - started < 10, "both were stopped at once, not one after the other"
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert set(statuses(manager, "a", "b")) <= {"claimed-by-manager", "queued"}
    assert wt.kinds().count("task-returned") == 2 and wt.kinds()[-1] == "signed-off"
    assert not list(data.glob("subprocess*.pid"))


def test_a_lazy_sleep_waits_for_every_running_task(manager, start_worker):
    wt = start_worker(slots=2)
    wait_for(lambda: "signed-on" in wt.kinds())
    worker_id = wt.worker.client.worker_id
    manager.add_tasks(sleep_task("a", 1.5, priority=90), sleep_task("b", 2.5, priority=80),
                      sleep_task("later", 0.1, priority=10))
    wait_for(lambda: statuses(manager, "a", "b") == ["active", "active"], what="both running")
    r = manager.admin("POST", f"/api/admin/workers/{worker_id}/set-status", json={"status": "asleep", "lazy": True})
    assert r.status_code == 200, r.text
    wait_for(lambda: wt.worker.state == "asleep", timeout=15, what="asleep after its tasks")
    assert statuses(manager, "a", "b", "later") == ["completed", "completed", "queued"]
    kinds = wt.kinds()
    assert kinds.index("state") > max(i for i, k in enumerate(kinds) if k == "task-completed")
    wait_for(lambda: manager.worker_info(worker_id)["status"] == "asleep")
    wt.stop()


def test_an_immediate_sleep_returns_every_running_task(manager, start_worker):
    wt = start_worker(slots=2)
    wait_for(lambda: "signed-on" in wt.kinds())
    worker_id = wt.worker.client.worker_id
    manager.add_tasks(sleep_task("a", 60), sleep_task("b", 60))
    wait_for(lambda: statuses(manager, "a", "b") == ["active", "active"], what="both running")
    r = manager.admin("POST", f"/api/admin/workers/{worker_id}/set-status", json={"status": "asleep", "lazy": False})
    assert r.status_code == 200, r.text
    wait_for(lambda: wt.worker.state == "asleep", timeout=10, what="asleep")
    assert set(statuses(manager, "a", "b")) <= {"claimed-by-manager", "queued"}
    assert wt.kinds().count("task-returned") == 2
    wt.stop()


def test_gpu_tasks_get_a_gpu_each_and_the_others_none(manager, start_worker):
    wt = start_worker(slots=3, gpus=[0, 1])
    show = "import os, time; print('device=' + os.environ['CUDA_VISIBLE_DEVICES'], flush=True); time.sleep(1.5)"
    manager.add_tasks(python_task("gpu-a", show, needs="gpu", priority=90),
                      python_task("gpu-b", show, needs="gpu", priority=80),
                      python_task("gpu-c", show, needs="gpu", priority=70),
                      python_task("cpu", show, needs="cpu", priority=60))
    ids = ["gpu-a", "gpu-b", "gpu-c", "cpu"]
    wait_for(lambda: statuses(manager, *ids) == ["completed"] * 4, timeout=30)

    def device(task_id):
        log = manager.task_log("job1", task_id)
        return log.split("> device=", 1)[1].split()[0]

    assert {device("gpu-a"), device("gpu-b")} == {"0", "1"}
    assert device("gpu-c") in ("0", "1") and device("cpu") == "-1"
    # Two GPUs: the third GPU task waited for one; the CPU task did not wait for it.
    kinds = [(k, d) for k, d in wt.worker.events if k.startswith("task-")]
    assert kinds[:3] == [("task-start", "gpu-a"), ("task-start", "gpu-b"), ("task-start", "cpu")]
    wt.stop()


def test_single_with_slots_runs_one_task(manager, start_worker):
    wt = start_worker(slots=3, single=True)
    manager.add_tasks(sleep_task("a", 0.2), sleep_task("b", 0.2))
    wt.thread.join(20)
    assert not wt.thread.is_alive() and wt.exit_code == 0
    assert wt.kinds().count("task-start") == 1 and "task-completed" in wt.kinds()
    assert sorted(statuses(manager, "a", "b")) == ["completed", "queued"]
