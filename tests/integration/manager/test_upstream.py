"""Manager <-> Server sync against a scripted Server (fake_server.py): depsgraph pull,
batched pushes in order, outage without loss, cancels, log uploads, upload-mode files.
The same scenarios run against the real Server in test_upstream_real.py."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import requests

from fake_server import FakeServer
from manager_helpers import Worker, task_doc


@pytest.fixture
def server():
    fs = FakeServer().start()
    yield fs
    fs.stop()


@pytest.fixture
def linked(manager_factory, server):
    def start(**kw):
        return manager_factory(upstream={"server_url": server.url, "manager_id": "m1", "token": "tok",
                                         "backoff_initial": 0.1, "backoff_max": 0.5,
                                         **kw.pop("upstream", {})}, **kw)
    return start


def complete(w, tid):
    assert w.update(tid, task_status="completed", task_progress_percentage=100, command_progress_percentage=100,
                    current_command_idx=1, log="2024-01-01T00:00:00+00:00: done").status_code == 204


def test_startup_notification_and_worker_report(linked, server):
    m = linked()
    up = m.core.upstream
    assert up.notify_tick() is True
    assert server.notifications[0][0] == "startup"
    note = server.notifications[0][1]
    assert note["_meta"] == {"version": 2} and note["manager_url"] == "http://manager.test"
    assert "blender" in note["variables"] and note["nr_of_workers"] == 0
    w = Worker(m.url, task_types=["sleep", "exr-merge"]).register()
    assert up.notify_tick() is True
    kind, note = server.notifications[-1]
    assert kind == "update" and note["nr_of_workers"] == 1 and note["worker_task_types"] == ["exr-merge", "sleep"]
    assert up.notify_tick() is False, "nothing changed"
    assert up.report_tick() is True
    report = server.worker_reports[-1]
    assert report["complete"] is True and report["workers"][0]["_id"] == w.id
    assert report["workers"][0]["status"] == "awake"


def test_depsgraph_pull_incremental(linked, server):
    m = linked()
    server.add_task(task_doc("t1"))
    server.add_task(task_doc("t2", parents=["t1"]))
    up = m.core.upstream
    assert up.fetch_tick()["new"] == 2
    assert server.depsgraph_headers == [None]
    assert server.tasks["t1"]["status"] == "claimed-by-manager"
    assert up.fetch_tick() is None, "304: nothing new"
    assert server.depsgraph_headers[1] is not None
    server.add_task(task_doc("t3"))
    assert up.fetch_tick()["new"] == 1
    w = Worker(m.url).register()
    got = w.fetch().json()
    assert got["_id"] == "t1" and got["status"] == "active"


def test_batched_push_in_order(linked, server):
    m = linked()
    for i in range(3):
        server.add_task(task_doc(f"t{i}"))
    m.core.upstream.fetch_tick()
    w = Worker(m.url).register()
    for _ in range(3):
        complete(w, w.fetch().json()["_id"])
    assert m.core.upstream.queue_length() == 6
    m.core.upstream.push_tick()
    assert server.batches == [6]
    assert [(u["task_id"], u["task_status"]) for u in server.updates] == [
        ("t0", "active"), ("t0", "completed"), ("t1", "active"), ("t1", "completed"),
        ("t2", "active"), ("t2", "completed")]
    assert server.updates[1]["log_tail"] == "2024-01-01T00:00:00+00:00: done"
    assert server.updates[1]["worker"] == w.id
    assert m.core.upstream.queue_length() == 0
    assert {t["status"] for t in server.tasks.values()} == {"completed"}


def test_server_down_workers_keep_working_nothing_lost(linked, server):
    m = linked()
    for i in range(4):
        server.add_task(task_doc(f"t{i}"))
    up = m.core.upstream
    up.fetch_tick()
    server.stop()
    w = Worker(m.url).register()
    done = []
    for _ in range(4):
        r = w.fetch()
        assert r.status_code == 200, "held tasks are served while the Server is down"
        complete(w, r.json()["_id"])
        done.append(r.json()["_id"])
    now = time.time()
    assert up.push_tick(now) == 0
    assert up.queue_length() == 8
    status = requests.get(m.url + "/api/admin/status", timeout=5).json()["upstream"]
    assert status["queue_length"] == 8 and status["healthy"] is False and status["consecutive_failures"] >= 1
    assert up.fetch_tick(now) is None
    # Backoff: an immediate retry does not even try.
    assert up.push_tick(now + 0.01) == 0
    server.start()
    assert up.push_tick(now + 5) == 8
    assert [(u["task_id"], u["task_status"]) for u in server.updates] == \
        [(t, s) for t in done for s in ("active", "completed")]
    assert up.queue_length() == 0
    assert requests.get(m.url + "/api/admin/status", timeout=5).json()["upstream"]["healthy"] is True


def test_resent_batch_is_applied_once(linked, server):
    m = linked()
    server.add_task(task_doc("t0"))
    m.core.upstream.fetch_tick()
    w = Worker(m.url).register()
    complete(w, w.fetch().json()["_id"])
    items = list(m.core.store.m.UpstreamItem.select())
    m.core.upstream.client.push_batch([i.payload for i in items])  # a push whose answer got lost
    m.core.upstream.push_tick()
    assert len(server.updates) == 2 and m.core.upstream.queue_length() == 0


def test_cancel_task_ids(linked, server):
    m = linked()
    server.add_task(task_doc("held"))
    server.add_task(task_doc("running", priority=99))
    up = m.core.upstream
    up.fetch_tick()
    w = Worker(m.url).register()
    assert w.fetch().json()["_id"] == "running"
    up.push_tick()
    server.set_status("held", "cancel-requested")
    server.set_status("running", "cancel-requested")
    up.push_tick(time.time() + 60)  # the periodic empty push polls for cancels
    local = {t.id: t.status for t in m.core.store.m.Task.select()}
    assert local == {"held": "canceled", "running": "cancel-requested"}
    answer = w.get("/may-i-run/running").json()
    assert answer["may_keep_running"] is False
    assert w.post("/tasks/running/return").status_code == 204
    up.push_tick(time.time() + 120)
    assert server.tasks["held"]["status"] == "canceled"
    assert server.tasks["running"]["status"] == "canceled"
    assert w.fetch().status_code == 204


def test_cancel_of_running_task_completed_meanwhile(linked, server):
    m = linked()
    server.add_task(task_doc("t"))
    up = m.core.upstream
    up.fetch_tick()
    w = Worker(m.url).register()
    w.fetch()
    up.push_tick()
    server.set_status("t", "cancel-requested")
    up.push_tick(time.time() + 60)
    complete(w, "t")  # cancel-requested accepts completed
    up.push_tick(time.time() + 120)
    assert server.tasks["t"]["status"] == "completed"


def test_log_upload_on_request(linked, server):
    m = linked()
    server.add_task(task_doc("t"))
    up = m.core.upstream
    up.fetch_tick()
    w = Worker(m.url).register()
    w.fetch()
    complete(w, "t")
    server.log_requests.append({"job": "job1", "task": "t"})
    up.push_tick()
    up.push_tick(time.time() + 60)
    assert b"done" in server.logs["t"] and b"assigned to worker" in server.logs["t"]


def test_requeue_on_server_reaches_manager(linked, server):
    m = linked()
    server.add_task(task_doc("t"))
    up = m.core.upstream
    up.fetch_tick()
    w = Worker(m.url).register()
    w.fetch()
    complete(w, "t")
    up.push_tick()
    server.set_status("t", "queued")
    up.fetch_tick()
    assert m.core.store.m.Task.get_by_id("t").status in ("queued", "claimed-by-manager")
    assert w.fetch().json()["_id"] == "t"


def test_upload_mode_files_cached_and_outputs_queued(linked, server):
    m = linked()
    blend = b"BLENDER-v300" + bytes(range(256)) * 100
    sha = server.add_file(blend)
    server.job_files["job1"] = {"scene.blend": {"sha256": sha, "size": len(blend)}}
    w = Worker(m.url).register()
    assert w.get("/jobs/job1/files").json() == {"files": {"scene.blend": {"sha256": sha, "size": len(blend)}}}
    for _ in range(2):
        r = w.get(f"/files/{sha}")
        assert r.status_code == 200 and r.content == blend
    assert server.file_fetches == [sha], "fetched from the Server once"
    assert w.get("/files/" + "0" * 64).status_code == 404
    assert w.get("/jobs/nojob/files").status_code == 404

    out = b"\x89PNG fake frame"
    out_sha = hashlib.sha256(out).hexdigest()
    r = w.session.put(m.url + "/jobs/job1/outputs/frames/0001.png", params={"task": "t1"}, data=out,
                      headers={"X-Flamenco-SHA256": out_sha}, timeout=10)
    assert r.status_code == 204, r.text
    r = w.session.put(m.url + "/jobs/job1/outputs/../evil.png", data=out, timeout=10)
    assert r.status_code in (400, 404)
    r = w.session.put(m.url + "/jobs/job1/outputs/x.png", data=out, headers={"X-Flamenco-SHA256": "1" * 64},
                      timeout=10)
    assert r.status_code == 400
    server.stop()
    # Cached: served while the Server is down.
    assert w.get(f"/files/{sha}").content == blend
    assert w.get("/jobs/job1/files").status_code == 200
    assert m.core.upstream.push_tick() == 0 and m.core.upstream.queue_length() == 1
    server.start()
    m.core.upstream.push_tick(time.time() + 10)
    assert server.outputs == {("job1", "frames/0001.png"): out}
    assert m.core.upstream.queue_length() == 0
    assert not list(m.config.spool_dir.iterdir())


def test_idle_long_polling_worker_gets_new_server_task_fast(linked, server):
    m = linked()
    m.core.start_loops()
    w = Worker(m.url).register()
    result = {}

    def poll():
        r = w.fetch(long_poll=10)
        result["t"], result["r"] = time.monotonic(), r

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.6)
    t0 = time.monotonic()
    server.add_task(task_doc("fresh"))
    t.join(12)
    assert result["r"].status_code == 200 and result["r"].json()["_id"] == "fresh"
    assert result["t"] - t0 < 1.5


def test_clean_slate_resync_drops_tasks_the_server_no_longer_lists(linked, server):
    m = linked(upstream={"resync_interval": 100.0})
    server.add_task(task_doc("keep"))
    server.add_task(task_doc("gone"))
    up = m.core.upstream
    now = time.time()
    assert up.fetch_tick(now)["new"] == 2
    del server.tasks["gone"]  # e.g. its job was deleted on the Server
    up.fetch_tick(now + 10)
    assert m.core.store.m.Task.get_by_id("gone").status == "claimed-by-manager", "incremental: not noticed"
    counts = up.fetch_tick(now + 200)
    assert counts["dropped"] == 1 and server.depsgraph_headers[-1] is None
    assert {t.id: t.status for t in m.core.store.m.Task.select()} == {"keep": "claimed-by-manager",
                                                                      "gone": "canceled"}
    assert up.queue_length() == 0, "nothing to tell the Server about a task it does not have"
