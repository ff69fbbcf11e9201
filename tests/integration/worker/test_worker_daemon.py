"""The real worker daemon against the real Manager, over real HTTP."""

import sys
import time

from backend.manager.state_machine import Report
from tests.integration.worker.worker_it_helpers import Manager, WorkerThread, task_doc, wait_for, worker_config


def echo_sleep(message="hello from the worker", seconds=0.2):
    return [{"name": "echo", "settings": {"message": message}},
            {"name": "sleep", "settings": {"time_in_seconds": seconds}}]


def test_runs_tasks_and_signs_off(manager, start_worker):
    wt = start_worker()
    manager.add_tasks(task_doc("t1", echo_sleep()), task_doc("t2", echo_sleep("second")))
    wait_for(lambda: all(t["status"] == "completed" for t in manager.tasks().values()), what="tasks completed")
    assert manager.task("t1")["task_progress_percentage"] == 100
    assert "hello from the worker" in manager.task_log("job1", "t1")
    assert wt.stop() == 0
    kinds = wt.kinds()
    assert kinds[:2] == ["registered", "signed-on"]
    assert kinds.count("task-completed") == 2 and kinds[-1] == "signed-off"
    (info,) = manager.workers()
    assert info["status"] == "offline"


def test_credentials_are_reused_and_a_forgotten_worker_registers_again(manager, start_worker, tmp_path):
    wt = start_worker()
    wait_for(lambda: "signed-on" in wt.kinds())
    first_id = wt.worker.client.worker_id
    wt.stop()
    wt2 = start_worker()
    wait_for(lambda: "signed-on" in wt2.kinds())
    assert "registered" not in wt2.kinds()
    assert wt2.worker.client.worker_id == first_id
    # The Manager forgets it (as after a lost database): the next call is 401, the worker registers anew.
    assert manager.admin("DELETE", f"/api/admin/workers/{first_id}").status_code in (200, 204)
    manager.add_tasks(task_doc("t1", echo_sleep()))
    wait_for(lambda: manager.task("t1")["status"] == "completed", what="task done after re-registering")
    assert wt2.worker.client.worker_id != first_id
    wt2.stop()


def test_immediate_sleep_returns_the_task_and_kills_the_process(manager, start_worker):
    wt = start_worker()
    manager.add_tasks(task_doc("t1", [{"name": "exec", "settings": {
        "cmd": f"{sys.executable} -c \"import time; print('busy', flush=True); time.sleep(60)\""}}],
        task_type="debug"))
    wait_for(lambda: wt.worker.runner.current_pid, what="subprocess running")
    pid = wt.worker.runner.current_pid
    worker_id = wt.worker.client.worker_id
    started = time.monotonic()
    r = manager.admin("POST", f"/api/admin/workers/{worker_id}/set-status", json={"status": "asleep", "lazy": False})
    assert r.status_code == 200, r.text
    wait_for(lambda: wt.worker.state == "asleep", what="worker asleep")
    assert time.monotonic() - started < 5
    import psutil
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    task = manager.task("t1")
    assert task["status"] in ("claimed-by-manager", "queued"), task
    assert "task-returned" in wt.kinds() and "task-canceled" not in wt.kinds()
    assert ("ack", "asleep") in wt.worker.events
    wait_for(lambda: manager.worker_info(worker_id)["status"] == "asleep", what="Manager sees asleep")
    # Wake it up: it takes the task again and finishes it... after we make it short.
    r = manager.admin("POST", f"/api/admin/workers/{worker_id}/set-status", json={"status": "awake"})
    assert r.status_code == 200
    wait_for(lambda: wt.worker.state == "awake", what="awake again")
    wt.stop()


def test_cancel_requested_task_is_stopped_via_may_i_run(manager, start_worker):
    wt = start_worker()
    manager.add_tasks(task_doc("t1", echo_sleep(seconds=60)))
    wait_for(lambda: manager.task("t1")["status"] == "active", what="task active")
    core = manager.core
    with core.db.write():
        task = core.db.m.Task.get_by_id("t1")
        assert core.state.change_status(task, "cancel-requested", Report("test cancels it"))
    started = time.monotonic()
    wait_for(lambda: "task-returned" in wt.kinds(), timeout=10, what="task returned")
    assert time.monotonic() - started < 3
    assert "may-i-run-no" in wt.kinds()
    wait_for(lambda: manager.task("t1")["status"] in ("canceled", "claimed-by-manager"), what="manager settles")
    assert wt.worker.state == "awake"
    wt.stop()


def test_updates_queued_while_the_manager_is_down_arrive_after_restart(manager, start_worker):
    wt = start_worker()
    manager.add_tasks(task_doc("t1", [{"name": "echo", "settings": {"message": "before the outage"}},
                                      {"name": "sleep", "settings": {"time_in_seconds": 2.0}},
                                      {"name": "echo", "settings": {"message": "during the outage"}}]))
    wait_for(lambda: manager.task("t1")["status"] == "active", what="task active")
    manager.stop()
    wait_for(lambda: "task-completed" in wt.kinds(), timeout=15, what="task done while the Manager is down")
    assert len(wt.worker.queue) > 0, "updates wait in the queue"
    manager.start()  # same port, same database
    wait_for(lambda: manager.task("t1")["status"] == "completed", timeout=20, what="completion arrives")
    wait_for(lambda: len(wt.worker.queue) == 0, what="queue drained")
    log = manager.task_log("job1", "t1")
    assert "before the outage" in log and "during the outage" in log
    assert log.index("before the outage") < log.index("during the outage")
    wt.stop()


def test_resources_reach_the_manager(manager, start_worker):
    wt = start_worker()
    wait_for(lambda: "signed-on" in wt.kinds())
    info = manager.worker_info(wt.worker.client.worker_id)
    resources = info["resources"]
    assert resources["cpu_count"] >= 1 and resources["mem_total_mb"] > 0 and resources["disk_free_mb"] > 0
    assert set(resources) >= {"cpu_count", "mem_total_mb", "mem_free_mb", "load_avg", "disk_free_mb"}
    wt.stop()


def test_failed_pre_task_check_puts_the_worker_in_error(manager, start_worker, tmp_path):
    wt = start_worker(pre_task_check_write=[str(tmp_path / "not-mounted")])
    wait_for(lambda: wt.worker.state == "error", what="error state")
    worker_id = wt.worker.client.worker_id
    wait_for(lambda: manager.worker_info(worker_id)["status"] == "error", what="Manager sees error")
    (tmp_path / "not-mounted").mkdir()
    wait_for(lambda: wt.worker.state == "awake", what="back to awake")
    manager.add_tasks(task_doc("t1", echo_sleep()))
    wait_for(lambda: manager.task("t1")["status"] == "completed")
    wt.stop()


def test_registration_secret(tmp_path):
    manager = Manager(tmp_path / "m", registration_secret="s3cret-for-workers").start()
    try:
        good = WorkerThread(worker_config(tmp_path, manager.url, "good", registration_secret="s3cret-for-workers")).start()
        wait_for(lambda: "signed-on" in good.kinds(), what="registered with the secret")
        assert good.stop() == 0
        bad = WorkerThread(worker_config(tmp_path, manager.url, "bad", registration_secret="wrong")).start()
        bad.thread.join(20)
        assert bad.exit_code == 2, bad.worker.events
        assert bad.kinds()[-1] == "fatal"
    finally:
        manager.stop()


def test_shutdown_requested_by_the_manager(manager, start_worker):
    wt = start_worker()
    wait_for(lambda: "signed-on" in wt.kinds())
    worker_id = wt.worker.client.worker_id
    r = manager.admin("POST", f"/api/admin/workers/{worker_id}/shutdown", json={"lazy": True})
    assert r.status_code == 200, r.text
    wt.thread.join(15)
    assert not wt.thread.is_alive() and wt.exit_code == 0
    assert ("ack", "shutdown") in wt.worker.events and wt.kinds()[-1] == "signed-off"
    assert manager.worker_info(worker_id)["status"] == "offline"
