"""The Manager against the real Server (backend/server in this process, over real HTTP):
notifications and worker reports, the depsgraph (clean slate, incremental, parents),
batched pushes in order, an outage drained after a Server restart, a batch whose answer
was lost, cancels, log uploads, requeues, upload-mode files and clean-slate resyncs.

The Manager's loops are driven with their ticks; the Server is stopped and started
again on its database file and port for outages. Nothing here is a stand-in.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import NamedTuple

import pytest
import requests

from backend.manager.upstream import SETTING_LAST_UPDATED, Upstream
from tests.integration.manager.manager_helpers import RunningManager, Worker
from tests.integration.manager.real_server import RealServer


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
                                         "backoff_max": 0.5, **kw.pop("upstream", {})}, **kw)
    return start


def announced(m, task_types=("sleep",), n=1):
    """Workers registered and the Manager's task types told to the Server, so jobs can be submitted."""
    workers = [Worker(m.url, task_types=list(task_types)).register() for _ in range(n)]
    assert m.core.upstream.notify_tick() is True
    return workers if n > 1 else workers[0]


class LinkedWorker(NamedTuple):
    m: RunningManager
    up: Upstream
    w: Worker


@pytest.fixture
def linked_worker(linked) -> LinkedWorker:
    """What most tests start from: a Manager linked to the Server, and one 'sleep' worker announced."""
    m = linked()
    return LinkedWorker(m, m.core.upstream, announced(m))


def fetched_sleep_job(server, up, frames="1", **kw) -> dict:
    """A sleep job submitted on the Server, and the Manager's fetch of its tasks."""
    job = server.submit_sleep(frames, **kw)
    up.fetch_tick()
    return job


def sleep_task_taken(server, up, w, frames="1") -> tuple[dict, str]:
    """A fetched sleep job, and the task `w` took from it."""
    job = fetched_sleep_job(server, up, frames)
    return job, w.fetch().json()["_id"]


def run_task(w, tid, status="completed"):
    assert w.update(tid, task_status="active").status_code == 204
    assert w.update(tid, task_status=status, task_progress_percentage=100, command_progress_percentage=100,
                    current_command_idx=1, log="2024-01-01T00:00:00+00:00: slept").status_code == 204


def complete(w, tid):
    """The worker's last update; fetching the task already made it active on the Manager."""
    assert w.update(tid, task_status="completed", task_progress_percentage=100, command_progress_percentage=100,
                    current_command_idx=1, log="2024-01-01T00:00:00+00:00: done").status_code == 204


def learn_news(up):
    """What the Manager's held depsgraph request does when the Server has news other than
    tasks (a cancel, a log request): the answer says so, and the pusher asks at once."""
    up.fetch_tick()
    assert up._news_pending, "the depsgraph answer carried the news"
    up.push_tick()


def local_statuses(m) -> dict[str, str]:
    return {t.id: t.status for t in m.core.db.m.Task.select()}


def ran_in_order(task: dict) -> bool:
    """'active' was applied before 'completed': the other way round the Server ignores
    'active' (completed -> active is not allowed) and the task has no start time."""
    return task["status"] == "completed" and task["started"] is not None and task["started"] <= task["finished"]


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_startup_notification_and_worker_report(linked, server):
    m = linked()
    up = m.core.upstream
    assert up.notify_tick() is True
    mgr = server.manager()
    assert mgr["url"] == "http://manager.test" and mgr["version"] and "blender" in mgr["variables"]
    assert mgr["nr_of_workers"] == 0 and mgr["worker_task_types"] == [] and mgr["last_startup"]
    w = Worker(m.url, task_types=["sleep", "exr-merge"]).register()
    assert up.notify_tick() is True
    after = server.manager()
    assert after["nr_of_workers"] == 1 and after["worker_task_types"] == ["exr-merge", "sleep"]
    assert after["last_startup"] == mgr["last_startup"], "an update, not a second startup"
    assert up.notify_tick() is False, "nothing changed"
    assert up.report_tick() is True
    workers = server.call("GET", "/api/workers").json()["workers"]
    assert [(x["id"], x["manager_name"], x["status"]) for x in workers] == [(w.id, "mgr", "awake")]


def test_reported_workers_name_their_manager_id(linked_worker, server):
    assert linked_worker.up.report_tick() is True
    (worker,) = server.call("GET", "/api/workers").json()["workers"]
    assert worker["manager"] == server.manager_id


def test_depsgraph_clean_slate_then_incremental_and_parents_kept(linked, server):
    m = linked()
    up = m.core.upstream
    ws = announced(m, ("blender-render", "file-management", "sleep"), n=3)
    job = server.submit("blender-render", {"filepath": "/shared/scene.blend", "frames": "1-2",
                                           "render_output": "/render/shot/######"})
    renders = [t["id"] for t in server.tasks(job["id"]) if t["task_type"] == "blender-render"]
    final = next(t for t in server.tasks(job["id"]) if t["task_type"] == "file-management")
    assert sorted(final["parents"]) == sorted(renders) and len(renders) == 2
    assert up.db.get_setting(SETTING_LAST_UPDATED) is None
    assert up.fetch_tick()["new"] == 3, "clean slate"
    assert {t["status"] for t in server.tasks(job["id"])} == {"claimed-by-manager"}
    assert up.db.get_setting(SETTING_LAST_UPDATED) is not None
    assert up.fetch_tick() is None, "incremental: 304, nothing new"

    got = sorted(ws[i].fetch().json()["_id"] for i in range(2))
    assert got == sorted(renders)
    assert ws[2].fetch().status_code == 204, "move-to-final waits for both renders"
    for i, tid in enumerate(got):
        complete(ws[i], tid)
    assert ws[2].fetch().json()["_id"] == final["id"]

    later = server.submit_sleep("1")
    counts = up.fetch_tick()
    assert counts["new"] == 1 and counts["updated"] == 0, "incremental: only the new job's task"
    assert ws[0].fetch().json()["job"] == later["id"]


def test_updates_pushed_in_one_batch_in_order(linked_worker, server):
    m, up, w = linked_worker
    job = fetched_sleep_job(server, up, "1-3")
    done = []
    for _ in range(3):
        done.append(w.fetch().json()["_id"])
        complete(w, done[-1])
    U = m.core.db.m.UpstreamItem
    queued = [(i.payload["task_id"], i.payload["task_status"]) for i in U.select().order_by(U.seq)]
    assert queued == [(t, s) for t in done for s in ("active", "completed")]
    assert up.push_tick() == 6 and up.queue_length() == 0
    assert server.applied_batches() == [6]
    for tid in done:
        task = server.task(tid)
        assert ran_in_order(task) and task["worker"] == w.id and "done" in task["log_tail"]
    assert server.job(job["id"])["status"] == "completed"


def test_server_restart_workers_keep_working_queue_drained_in_order(linked_worker, server):
    m, up, w = linked_worker
    job = fetched_sleep_job(server, up, "1-4")
    server.stop()
    done = []
    for _ in range(4):
        r = w.fetch()
        assert r.status_code == 200, "held tasks are served while the Server is down"
        done.append(r.json()["_id"])
        complete(w, done[-1])
    now = time.time()
    assert up.push_tick(now) == 0 and up.queue_length() == 8
    status = m.admin("GET", "/api/admin/status").json()["upstream"]
    assert status["queue_length"] == 8 and status["healthy"] is False and status["consecutive_failures"] >= 1
    assert up.fetch_tick(now) is None

    server.start()  # a new Server on the same database and port
    assert up.push_tick(now + 0.01) == 0, "backing off: an immediate retry does not even try"
    assert server.applied_batches() == []
    assert up.push_tick(now + 5) == 8 and up.queue_length() == 0
    assert server.applied_batches() == [8]
    assert all(ran_in_order(server.task(tid)) for tid in done)
    assert server.job(job["id"])["status"] == "completed"
    assert m.admin("GET", "/api/admin/status").json()["upstream"]["healthy"] is True


def test_batch_whose_answer_was_lost_is_applied_once(linked, server):
    m = linked(upstream={"request_timeout": 0.5})
    up = m.core.upstream
    w = announced(m)
    _, tid = sleep_task_taken(server, up, w)
    complete(w, tid)
    now = time.time()
    with server.write_locked():
        # The Server takes the batch but waits for its database; the Manager gives up first.
        assert up.push_tick(now) == 0 and up.queue_length() == 2
    # Then the Server applies it and answers a connection nobody listens on any more.
    wait_for(lambda: server.task(tid)["status"] == "completed")
    assert server.applied_batches() == [2]
    # A requeue makes a second application visible: it would run the task to completed again.
    assert server.call("POST", f"/api/tasks/{tid}/requeue", json={}).json() == {"requeued": 1}
    assert up.push_tick(now + 5) == 2 and up.queue_length() == 0, "the resent updates were acknowledged"
    assert server.applied_batches() == [2], "and none of them was applied again"
    assert server.task(tid)["status"] == "queued"


def test_cancel_job_reaches_running_and_held_tasks(linked_worker, server):
    m, up, w = linked_worker
    job, running = sleep_task_taken(server, up, w, "1-3")
    assert w.update(running, task_status="active").status_code == 204
    up.push_tick()
    assert server.set_job_status(job["id"], "cancel-requested").status_code in (200, 204)
    learn_news(up)
    local = local_statuses(m)
    assert local[running] == "cancel-requested"
    assert sorted(s for tid, s in local.items() if tid != running) == ["canceled", "canceled"]
    assert w.get(f"/may-i-run/{running}").json()["may_keep_running"] is False
    assert w.post(f"/tasks/{running}/return").status_code == 204
    up.push_tick(time.time() + 120)
    assert server.job(job["id"])["status"] == "canceled"
    assert {t["status"] for t in server.tasks(job["id"])} == {"canceled"}
    assert w.fetch().status_code == 204


def test_cancel_of_running_task_that_completed_meanwhile(linked_worker, server):
    m, up, w = linked_worker
    job, tid = sleep_task_taken(server, up, w)
    up.push_tick()
    assert server.task(tid)["status"] == "active"
    assert server.set_job_status(job["id"], "cancel").status_code == 200
    learn_news(up)
    assert local_statuses(m)[tid] == "cancel-requested"
    complete(w, tid)  # the worker finished before it asked whether it may keep running
    up.push_tick(time.time() + 120)
    assert server.task(tid)["status"] == "completed", "cancel-requested accepts completed"
    assert server.job(job["id"])["status"] == "canceled"


def test_failed_task_soft_fails_upstream(linked, server):
    m = linked()
    up = m.core.upstream
    w1, w2 = announced(m, n=2)
    job, tid = sleep_task_taken(server, up, w1)
    run_task(w1, tid, "failed")
    up.push_tick()
    task = [t for t in server.tasks(job["id"]) if t["id"] == tid][0]
    assert task["status"] == "soft-failed" and [f["id"] for f in task["failed_by_workers"]] == [w1.id]
    assert w2.fetch().json()["_id"] == tid


def test_log_upload_when_the_server_asks(linked_worker, server):
    m, up, w = linked_worker
    _, tid = sleep_task_taken(server, up, w)
    run_task(w, tid)
    up.push_tick()
    r = server.call("POST", f"/api/tasks/{tid}/log-request")
    assert r.status_code == 202, r.text
    learn_news(up)  # the answer asks for the log
    up.push_tick(time.time() + 120)  # the upload
    log = server.call("GET", f"/api/tasks/{tid}/log")
    assert log.status_code == 200 and "slept" in log.text and "assigned to worker" in log.text
    assert server.task(tid)["log_requested"] is False

    # Once the Manager forgot the job (retention), asking again gets a log that says so.
    m.core.logs.remove_job(server.task(tid)["job"])
    assert server.call("POST", f"/api/tasks/{tid}/log-request").status_code == 202
    learn_news(up)
    up.push_tick(time.time() + 240)
    log = server.call("GET", f"/api/tasks/{tid}/log")
    assert log.status_code == 200 and log.text.startswith("This Manager has no log of this task"), log.text


def test_requeue_on_the_server_reaches_the_manager(linked_worker, server):
    m, up, w = linked_worker
    job, tid = sleep_task_taken(server, up, w)
    complete(w, tid)
    up.push_tick()
    assert server.job(job["id"])["status"] == "completed"
    assert server.call("POST", f"/api/tasks/{tid}/requeue", json={}).json() == {"requeued": 1}
    assert up.fetch_tick()["updated"] == 1
    assert local_statuses(m)[tid] in ("queued", "claimed-by-manager")
    assert w.fetch().json()["_id"] == tid
    complete(w, tid)
    up.push_tick()
    assert server.job(job["id"])["status"] == "completed"


def test_upload_mode_files_down_and_outputs_up_across_a_restart(linked_worker, server):
    m, up, w = linked_worker
    blend = b"BLENDER-v300" + bytes(range(256)) * 100
    sha = server.put_file(blend)
    foreign = server.put_file(b"stored on the Server, but in no job of this Manager")
    job = fetched_sleep_job(server, up, "1", files={"scene.blend": {"sha256": sha, "size": len(blend)}})
    jid = job["id"]
    assert job["files_mode"] == "upload"
    task = w.fetch().json()
    assert task["job"] == jid
    manifest = {"files": {"scene.blend": {"sha256": sha, "size": len(blend)}}}
    assert w.get(f"/jobs/{jid}/files").json() == manifest
    for _ in range(2):
        r = w.get(f"/files/{sha}")
        assert r.status_code == 200 and r.content == blend
    assert (m.config.file_cache_dir / sha[:2] / sha).read_bytes() == blend
    assert w.get(f"/files/{foreign}").status_code == 404, "the Server hands out only this Manager's job files"
    assert w.get("/files/" + "0" * 64).status_code == 404
    assert w.get("/jobs/nojob/files").status_code == 404

    out = b"\x89PNG a frame"
    out_sha = hashlib.sha256(out).hexdigest()
    r = w.session.put(m.url + f"/jobs/{jid}/outputs/frames/0001.png", params={"task": task["_id"]}, data=out,
                      headers={"X-Flamenco-SHA256": out_sha}, timeout=10)
    assert r.status_code == 204, r.text
    r = w.session.put(m.url + f"/jobs/{jid}/outputs/../evil.png", data=out, timeout=10)
    assert r.status_code in (400, 404)
    r = w.session.put(m.url + f"/jobs/{jid}/outputs/x.png", data=out, headers={"X-Flamenco-SHA256": "1" * 64},
                      timeout=10)
    assert r.status_code == 400
    complete(w, task["_id"])

    server.stop()
    assert w.get(f"/files/{sha}").content == blend, "cached: served while the Server is down"
    assert w.get(f"/jobs/{jid}/files").json() == manifest
    now = time.time()
    assert up.push_tick(now) == 0 and up.queue_length() == 3  # active, the output, completed
    server.start()
    assert up.push_tick(now + 10) == 3 and up.queue_length() == 0
    outputs = server.call("GET", f"/api/jobs/{jid}/outputs").json()["outputs"]
    assert [(o["relpath"], o["sha256"], o["task"]) for o in outputs] == [("frames/0001.png", out_sha, task["_id"])]
    assert server.call("GET", f"/api/jobs/{jid}/outputs/frames/0001.png").content == out
    assert server.job(jid)["status"] == "completed"
    # The Manager keeps it, by job and path, for later tasks and dependent jobs.
    assert w.get(f"/jobs/{jid}/outputs").json() == {"files": {"frames/0001.png": {"sha256": out_sha,
                                                                                   "size": len(out)}}}
    assert w.get(f"/jobs/{jid}/outputs/frames/0001.png").content == out


def test_submit_to_start_reaches_idle_long_polling_worker(linked_worker, server):
    m, _, w = linked_worker
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


def test_clean_slate_resync_drops_tasks_the_server_no_longer_lists(linked, server):
    m = linked(upstream={"resync_interval": 100.0})
    up = m.core.upstream
    announced(m)
    keep, gone = server.submit_sleep("1"), server.submit_sleep("1")
    (keep_tid,), (gone_tid,) = ([t["id"] for t in server.tasks(j["id"])] for j in (keep, gone))
    now = time.time()
    assert up.fetch_tick(now)["new"] == 2
    assert server.set_job_status(gone["id"], "pause").status_code == 200  # its task is no longer runnable
    assert up.fetch_tick(now + 10) is None, "incremental: not noticed"
    assert local_statuses(m)[gone_tid] == "claimed-by-manager"
    counts = up.fetch_tick(now + 200)
    assert counts["dropped"] == 1
    assert local_statuses(m) == {keep_tid: "claimed-by-manager", gone_tid: "canceled"}
    assert up.queue_length() == 0
    # The Server still waits for the task to let go; the next push's cancel list settles it.
    up.push_tick(now + 200)
    up.push_tick(now + 201)
    assert server.task(gone_tid)["status"] == "paused"
    assert server.job(gone["id"])["status"] == "paused"
    assert server.task(keep_tid)["status"] == "claimed-by-manager"


def test_a_task_running_a_program_the_manager_does_not_allow_is_not_taken_and_fails_on_the_server(linked, server):
    """The Server allows 'blender' as blender_cmd; this Manager's own list allows nothing but its variables."""
    m = linked(allowed_executables=[])
    up = m.core.upstream
    announced(m, ("blender-render", "file-management"))
    job = server.submit("blender-render", {"filepath": "/shared/scene.blend", "frames": "1",
                                           "render_output": "/render/shot/######", "blender_cmd": "blender"})
    counts = up.fetch_tick()
    assert counts["refused"] == 1 and counts["new"] == 1, "the render refused; move-to-final taken"
    up.push_tick()
    renders = [t for t in server.tasks(job["id"]) if t["task_type"] == "blender-render"]
    assert [t["status"] for t in renders] == ["failed"]
    assert "refused by this Manager" in renders[0]["activity"] and "'blender' is not allowed" in renders[0]["activity"]
    assert not any(t.task_type == "blender-render" for t in m.core.db.m.Task.select())


def test_a_big_job_comes_in_pages_and_its_first_task_runs_at_once(linked, server):
    m = linked(upstream={"depsgraph_page": 10})
    up = m.core.upstream
    w = announced(m)
    job = server.submit_sleep("1-25")
    assert up.fetch_tick()["new"] == 1 and up.more, "the first page of a burst is small"
    first = w.fetch().json()
    assert first["job"] == job["id"], "its task runs while the rest comes"
    pages = []
    while up.more:
        pages.append(up.fetch_tick()["new"])
    assert pages == [10, 10, 4]
    assert len(local_statuses(m)) == 25
    assert {t["status"] for t in server.tasks(job["id"])} == {"claimed-by-manager"}
    assert up.fetch_tick() is None and not up.more


def test_a_worker_with_slots_takes_several_tasks_of_a_job_coming_in_pages(linked, server):
    m = linked(upstream={"depsgraph_page": 10})
    up = m.core.upstream
    w = announced(m, ("blender-render", "file-management"))
    job = server.submit("blender-render", {"filepath": "/shared/a.blend", "frames": "1-25", "chunk_size": 1,
                                           "render_output": "/render/a/######", "gpu": True})
    assert up.fetch_tick()["new"] == 1 and up.more
    first = w.post("/task", json={"free_slots": 3}).json()["tasks"]
    assert [(d["job"], d["needs"]) for d in first] == [(job["id"], "gpu")], "the one task held so far"
    while up.more:
        up.fetch_tick()
    more = w.post("/task", json={"free_slots": 2, "running": [first[0]["_id"]]}).json()["tasks"]
    assert len(more) == 2 and {d["needs"] for d in more} == {"gpu"}, "several claimed in one answer"
    taken = [d["_id"] for d in first + more]
    assert len(set(taken)) == 3
    for tid in taken:
        assert w.update(tid, task_status="active").status_code == 204
    up.push_tick()
    active = {t["id"] for t in server.tasks(job["id"]) if t["status"] == "active"}
    assert active == set(taken), "each task once, at the Server too"


def test_a_manager_restarted_between_pages_goes_on_from_its_cursor(linked, server):
    m = linked(upstream={"depsgraph_page": 10})
    w = announced(m)
    server.submit_sleep("1-25")
    m.core.upstream.fetch_tick()
    m.core.upstream.fetch_tick()
    held_before = set(local_statuses(m))
    assert len(held_before) == 11
    tid = w.fetch().json()["_id"]
    m.stop()

    again = linked(upstream={"depsgraph_page": 10})  # the same data directory
    up = again.core.upstream
    assert up.fetch_tick()["new"] == 1, "not a clean slate: the page after its cursor (a small first one)"
    while up.more:
        counts = up.fetch_tick()
        assert counts["updated"] == 0, "no page came twice"
    statuses = local_statuses(again)
    assert len(statuses) == 25 and statuses[tid] == "active"
    assert sum(s == "active" for s in statuses.values()) == 1, "no task claimed twice"


def test_a_manager_learns_what_happened_while_the_server_restarted(linked, server):
    m = linked()
    up = m.core.upstream
    w = announced(m)
    job = server.submit_sleep("1-2")
    up.fetch_tick()
    up.push_tick()
    assert not up._news_pending
    tid = w.fetch().json()["_id"]
    server.stop()
    server.start()  # news is kept in the database: the Manager's token means the same to this run
    assert server.set_job_status(job["id"], "cancel-requested").status_code in (200, 204)
    up.fetch_tick()
    assert up._news_pending, "the cancel is news after the Manager's token"
    up.push_tick()
    assert local_statuses(m)[tid] == "cancel-requested"


def test_an_idle_manager_holds_one_request_and_sends_at_once(linked, server):
    m = linked(upstream={"push_interval": 30.0, "worker_report_interval": 600.0})
    w = announced(m)
    m.core.start_loops()
    up = m.core.upstream
    # Settled: the depsgraph request held, and the startup's news ("*": look at everything) fetched
    # by the pusher's empty batch, whose answer may still be on its way when the flag is down.
    wait_for(lambda: server.app is not None and server.app.config["flamenco.server"].news.held() == 1
             and not up._news_pending and up._last_push > 0)
    time.sleep(0.3)
    before = len(server.requests)
    time.sleep(1.0)
    assert server.requests[before:] == [], "waiting for news, the Manager asks nothing else"

    job = server.submit_sleep("1")
    r = w.fetch(long_poll=10)
    assert r.status_code == 200 and r.json()["job"] == job["id"]
    complete(w, r.json()["_id"])
    # The completion goes up at once (the pusher's tick is 30 s here), with the 'active' before it.
    wait_for(lambda: server.task(r.json()["_id"])["status"] == "completed")
    assert ran_in_order(server.task(r.json()["_id"]))
