"""The Manager against the real Server (in this process, over real HTTP): depsgraph pull,
batched update push, Server outage without loss, cancels, log upload."""

from __future__ import annotations

import threading
import time

import pytest

from manager_helpers import Worker
from real_server import RealServer


@pytest.fixture
def server(tmp_path):
    srv = RealServer(tmp_path / "server").start()
    yield srv
    srv.stop()


@pytest.fixture
def linked(manager_factory, server):
    def start(**kw):
        return manager_factory(upstream={"server_url": server.url, "manager_id": server.manager_id,
                                         "token": server.manager_token, "backoff_initial": 0.1,
                                         "backoff_max": 0.5}, **kw)
    return start


def run_task(w, tid, status="completed"):
    assert w.update(tid, task_status="active").status_code == 204
    assert w.update(tid, task_status=status, task_progress_percentage=100, command_progress_percentage=100,
                    current_command_idx=1, log="2024-01-01T00:00:00+00:00: slept").status_code == 204


def test_startup_workers_depsgraph_and_push(linked, server):
    m = linked()
    up = m.core.upstream
    w = Worker(m.url, task_types=["sleep"]).register()
    assert up.notify_tick() is True and up.report_tick() is True
    job = server.submit_sleep("1-3")
    assert up.fetch_tick()["new"] == 3
    assert {t["status"] for t in server.tasks(job["id"])} == {"claimed-by-manager"}
    assert up.fetch_tick() is None, "incremental: nothing new"
    done = []
    while (r := w.fetch()).status_code == 200:
        run_task(w, r.json()["_id"])
        done.append(r.json()["_id"])
    assert len(done) == 3
    assert up.push_tick() == 9 and up.queue_length() == 0
    assert server.job(job["id"])["status"] == "completed"
    assert {t["status"] for t in server.tasks(job["id"])} == {"completed"}


def test_server_down_nothing_lost_and_order_kept(linked, server):
    m = linked()
    up = m.core.upstream
    w = Worker(m.url, task_types=["sleep"]).register()
    up.notify_tick()
    job = server.submit_sleep("1-4")
    up.fetch_tick()
    server.stop()
    for _ in range(4):
        r = w.fetch()
        assert r.status_code == 200
        run_task(w, r.json()["_id"])
    now = time.time()
    assert up.push_tick(now) == 0 and up.queue_length() == 12
    server.start()
    assert up.push_tick(now + 5) == 12 and up.queue_length() == 0
    assert server.job(job["id"])["status"] == "completed"


def test_cancel_job_reaches_running_and_held_tasks(linked, server):
    m = linked()
    up = m.core.upstream
    w = Worker(m.url, task_types=["sleep"]).register()
    up.notify_tick()
    job = server.submit_sleep("1-3")
    up.fetch_tick()
    running = w.fetch().json()["_id"]
    assert w.update(running, task_status="active").status_code == 204
    up.push_tick()
    assert server.set_job_status(job["id"], "cancel-requested").status_code in (200, 204)
    up.push_tick(time.time() + 60)
    local = {t.id: t.status for t in m.core.store.m.Task.select()}
    assert local[running] == "cancel-requested"
    assert sorted(s for tid, s in local.items() if tid != running) == ["canceled", "canceled"]
    assert w.get(f"/may-i-run/{running}").json()["may_keep_running"] is False
    assert w.post(f"/tasks/{running}/return").status_code == 204
    up.push_tick(time.time() + 120)
    assert server.job(job["id"])["status"] == "canceled"
    assert {t["status"] for t in server.tasks(job["id"])} == {"canceled"}


def test_failed_task_soft_fails_upstream(linked, server):
    m = linked()
    up = m.core.upstream
    w1, w2 = (Worker(m.url, task_types=["sleep"]).register() for _ in range(2))
    up.notify_tick()
    job = server.submit_sleep("1")
    up.fetch_tick()
    tid = w1.fetch().json()["_id"]
    run_task(w1, tid, "failed")
    up.push_tick()
    task = [t for t in server.tasks(job["id"]) if t["id"] == tid][0]
    assert task["status"] == "soft-failed" and [f["id"] for f in task["failed_by_workers"]] == [w1.id]
    assert w2.fetch().json()["_id"] == tid


def test_log_upload_when_the_server_asks(linked, server):
    m = linked()
    up = m.core.upstream
    w = Worker(m.url, task_types=["sleep"]).register()
    up.notify_tick()
    server.submit_sleep("1")
    up.fetch_tick()
    tid = w.fetch().json()["_id"]
    run_task(w, tid)
    up.push_tick()
    r = server.session.post(server.url + f"/api/tasks/{tid}/log-request", timeout=10)
    assert r.status_code in (200, 202, 204), r.text
    up.push_tick(time.time() + 60)
    up.push_tick(time.time() + 120)
    log = server.session.get(server.url + f"/api/tasks/{tid}/log", timeout=10)
    assert log.status_code == 200 and "slept" in log.text


def test_submit_to_start_reaches_idle_long_polling_worker(linked, server):
    m = linked()
    w = Worker(m.url, task_types=["sleep"]).register()
    m.core.upstream.notify_tick()
    m.core.start_loops()
    got = {}

    def poll():
        r = w.fetch(long_poll=15)
        got["t"], got["r"] = time.monotonic(), r

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.8)
    t0 = time.monotonic()
    server.submit_sleep("1")
    t.join(20)
    assert got["r"].status_code == 200
    assert got["t"] - t0 < 2.0
