"""Soft-fail, blocklist and hard-fail over real HTTP (thresholds 3 / 3 and configured)."""

from __future__ import annotations

from tests.integration.manager.manager_helpers import Worker, task_doc


def fail(worker, task_id):
    r = worker.update(task_id, task_status="failed", activity="exit code 1",
                      log="2024-01-01T00:00:00+00:00: Error: Build without OpenImageDenoiser")
    assert r.status_code == 204, r.text


def tasks_by_id(manager):
    return {t["_id"]: t for t in manager.admin("GET", "/api/admin/tasks").json()["tasks"]}


def test_soft_fail_then_runs_elsewhere_then_hard_fail_after_three_workers(manager, worker_factory):
    manager.add_tasks(task_doc("t"))
    ws = [worker_factory() for _ in range(4)]
    for i, w in enumerate(ws[:3]):
        r = w.fetch()
        assert r.status_code == 200 and r.json()["_id"] == "t"
        if i:
            assert [f["id"] for f in r.json()["failed_by_workers"]] == [x.id for x in ws[:i]]
        fail(w, "t")
        status = tasks_by_id(manager)["t"]["status"]
        assert status == ("soft-failed" if i < 2 else "failed")
        assert w.fetch().status_code == 204, "a worker never gets a task it failed"
    assert ws[3].fetch().status_code == 204


def test_blocklist_after_three_failures_of_a_job_and_type(manager, worker_factory):
    manager.add_tasks(*[task_doc(f"t{i}") for i in range(5)], task_doc("other", job="job2"))
    bad, good = worker_factory(), worker_factory()
    for _ in range(3):
        r = bad.fetch()
        assert r.status_code == 200 and r.json()["job"] == "job1"
        fail(bad, r.json()["_id"])
    blocklist = manager.admin("GET", "/api/admin/blocklist").json()["blocklist"]
    assert [(b["worker"], b["job"], b["task_type"]) for b in blocklist] == [(bad.id, "job1", "sleep")]
    r = bad.fetch()
    assert r.status_code == 200 and r.json()["_id"] == "other", "blocklisted for job1 only"
    # Clearing the blocklist lets it back in.
    assert manager.admin("DELETE", f"/api/admin/workers/{bad.id}/blocklist").json() == {"removed": 1}
    assert good.fetch().status_code == 200


def test_no_other_worker_means_hard_fail(manager, worker_factory):
    manager.add_tasks(task_doc("solo", task_type="exr-merge"))
    w = worker_factory(task_types=["exr-merge"])
    worker_factory(task_types=["sleep"])  # cannot run exr-merge
    assert w.fetch().json()["_id"] == "solo"
    fail(w, "solo")
    assert tasks_by_id(manager)["solo"]["status"] == "failed"


def test_configured_thresholds(manager_factory):
    m = manager_factory(failures={"blocklist_threshold": 1, "task_fail_after_softfail_count": 2})
    m.add_tasks(task_doc("a"), task_doc("b"))
    w1, w2, w3 = (Worker(m.url).register() for _ in range(3))
    tid = w1.fetch().json()["_id"]
    fail(w1, tid)
    assert w1.fetch().status_code == 204, "blocklisted after one failure"
    assert w2.fetch().json()["_id"] == tid
    fail(w2, tid)
    statuses = {t["_id"]: t["status"] for t in m.admin("GET", "/api/admin/tasks").json()["tasks"]}
    assert statuses[tid] == "failed"


def test_blocklisting_hard_fails_orphaned_soft_fails(manager_factory):
    m = manager_factory(failures={"blocklist_threshold": 2, "task_fail_after_softfail_count": 3})
    m.add_tasks(task_doc("a", priority=90), task_doc("b", priority=80))
    w1, w2 = Worker(m.url).register(), Worker(m.url).register()
    assert w1.fetch().json()["_id"] == "a"
    fail(w1, "a")                      # a soft-failed (w2 may run it)
    assert w2.fetch().json()["_id"] == "a"
    fail(w2, "a")                      # a: 2 workers failed; nobody left -> failed
    assert w2.fetch().json()["_id"] == "b"
    fail(w2, "b")                      # w2: 2 failures in job1 -> blocklisted; b soft-failed for w1
    assert w1.fetch().json()["_id"] == "b"
    fail(w1, "b")                      # w1 blocklisted too: b has nobody left
    statuses = {t["_id"]: t["status"] for t in m.admin("GET", "/api/admin/tasks").json()["tasks"]}
    assert statuses == {"a": "failed", "b": "failed"}


def test_updates_for_a_task_no_longer_active_keep_only_logs(manager, worker_factory):
    manager.add_tasks(task_doc("t"))
    w = worker_factory()
    assert w.fetch().json()["_id"] == "t"
    assert w.post("/tasks/t/return").status_code == 204
    # Returned: the task is no longer this worker's.
    assert w.update("t", task_status="completed").status_code == 409
    w2 = worker_factory()
    assert w2.fetch().json()["_id"] == "t"
    assert w2.update("t", task_status="completed", log="2024-01-01T00:00:00+00:00: done").status_code == 204
    assert w2.update("t", task_status="failed", log="2024-01-01T00:00:01+00:00: late line").status_code == 204
    assert tasks_by_id(manager)["t"]["status"] == "completed"


def test_log_cap_and_rotation_on_rerun(manager_factory):
    import requests
    m = manager_factory(logs={"max_log_bytes_per_update": 1000})
    m.add_tasks(task_doc("t"))
    w = Worker(m.url).register()
    assert w.fetch().status_code == 200
    assert w.update("t", log="x" * 5000).status_code == 204
    text = m.admin("GET", "/logfile/job1/t?full=1").text
    assert "bytes of this update's log were cut" in text and len(text) < 2000
    assert w.post("/tasks/t/return").status_code == 204
    assert w.fetch().status_code == 200
    m.core.logs.flush()  # the files as the writer thread leaves them
    log_dir = m.config.task_log_dir / "job-job1" / "job1"
    assert (log_dir / "task-t.txt").exists() and (log_dir / "task-t.txt.1").exists()
    assert "xxxx" in (log_dir / "task-t.txt.1").read_text()
    assert "xxxx" not in (log_dir / "task-t.txt").read_text()


def test_busy_database_is_503_with_retry_after(manager_factory):
    import sqlite3
    m = manager_factory(busy_timeout_ms=200)
    m.add_tasks(task_doc("t"))
    w = Worker(m.url).register()
    other = sqlite3.connect(str(m.config.data_dir / "flamenco-manager.sqlite"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        r = w.fetch()
        assert r.status_code == 503 and r.headers["Retry-After"] == "1" and r.json()["code"] == "busy"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert w.fetch().status_code == 200, "and the same request works once the database is free"
