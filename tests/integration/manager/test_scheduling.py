"""Scheduling over real HTTP: runnable rules, order, re-serving, atomic claims, long-poll."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests

from tests.integration.manager.manager_helpers import Worker, task_doc


def claim_id(worker, **kw):
    r = worker.fetch(**kw)
    assert r.status_code in (200, 204), r.text
    return r.json()["_id"] if r.status_code == 200 else None


def complete(worker, task_id):
    r = worker.update(task_id, task_status="completed", current_command_idx=1, task_progress_percentage=100,
                      command_progress_percentage=100)
    assert r.status_code == 204, r.text


def test_order_job_priority_then_priority_then_oldest(manager, worker_factory):
    manager.add_tasks(task_doc("a", job_priority=50, priority=50), task_doc("b", job_priority=50, priority=80),
                      task_doc("c", job="j2", job_priority=90, priority=10), task_doc("d", job_priority=50, priority=80))
    w = worker_factory()
    order = []
    for _ in range(4):
        tid = claim_id(w)
        order.append(tid)
        complete(w, tid)
    assert order == ["c", "b", "d", "a"]


def test_parents_must_complete_first(manager, worker_factory):
    manager.add_tasks(task_doc("render", priority=10), task_doc("video", priority=99, parents=["render"]))
    w1, w2 = worker_factory(), worker_factory()
    assert claim_id(w1) == "render"
    assert claim_id(w2) is None, "the child is not runnable while its parent runs"
    complete(w1, "render")
    assert claim_id(w2) == "video"


def test_task_types_tags_and_memory(manager, worker_factory):
    manager.add_tasks(task_doc("enc", task_type="video-encoding"),
                      task_doc("gpu", job="jg", job_worker_tag="gpu"),
                      task_doc("big", job="jm", job_memory_mb=64000))
    plain = worker_factory(task_types=["sleep"])
    plain.sign_on(resources={"mem_free_mb": 8000, "mem_total_mb": 16000})
    assert claim_id(plain) is None, "no video-encoding, no gpu tag, not enough memory"
    gpu = worker_factory(task_types=["sleep"])
    gpu.sign_on(tags=["gpu"], resources={"mem_free_mb": 8000})
    assert claim_id(gpu) == "gpu"
    big = worker_factory(task_types=["sleep", "video-encoding"])
    big.sign_on(resources={"mem_free_mb": 128000})
    got = {claim_id(big)}
    complete(big, got.pop())
    assert claim_id(big) in {"enc", "big"}


def test_worker_gets_its_own_active_task_again(manager, worker_factory):
    manager.add_tasks(task_doc("x"), task_doc("y"))
    w = worker_factory()
    first = claim_id(w)
    assert claim_id(w) == first


def test_concurrent_claims_each_task_to_one_worker(manager_factory):
    m = manager_factory(threads=48)
    n_tasks, n_workers = 120, 24
    m.add_tasks(*[task_doc(f"t{i:03d}") for i in range(n_tasks)])
    workers = [Worker(m.url).register() for _ in range(n_workers)]
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(n_workers)

    def run(w):
        start.wait()
        while True:
            r = w.fetch()
            if r.status_code == 204:
                return
            assert r.status_code == 200, r.text
            tid = r.json()["_id"]
            with lock:
                claims.append((tid, w.id))
            complete(w, tid)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    per_task = Counter(tid for tid, _ in claims)
    assert len(per_task) == n_tasks and set(per_task.values()) == {1}
    assert len({wid for _, wid in claims}) > 1


def test_long_poll_answers_when_a_task_arrives(manager, worker_factory):
    w = worker_factory()
    result = {}

    def poll():
        t0 = time.monotonic()
        r = w.fetch(long_poll=10)
        result["status"], result["elapsed"] = r.status_code, time.monotonic() - t0
        result["id"] = r.json()["_id"] if r.status_code == 200 else None

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.5)
    t_added = time.monotonic()
    manager.add_tasks(task_doc("late"))
    t.join(15)
    assert result["status"] == 200 and result["id"] == "late"
    assert 0.4 < result["elapsed"] < 3.0
    assert time.monotonic() - t_added < 2.0


def test_long_poll_times_out_with_204_and_v2_gets_204_at_once(manager, worker_factory):
    w = worker_factory()
    t0 = time.monotonic()
    assert w.fetch(long_poll=0.6).status_code == 204
    assert 0.5 < time.monotonic() - t0 < 3
    t0 = time.monotonic()
    assert w.fetch().status_code == 204
    assert time.monotonic() - t0 < 0.5
    assert w.fetch(long_poll="soon").status_code == 400


def test_long_poll_capped_and_wakes_on_status_request(manager_factory):
    m = manager_factory(scheduling={"long_poll_max": 1.0})
    w = Worker(m.url).register()
    t0 = time.monotonic()
    assert w.fetch(long_poll=30).status_code == 204
    assert time.monotonic() - t0 < 2.5
    result = {}
    m2 = manager_factory(sub="m2", scheduling={"long_poll_max": 20.0})
    w2 = Worker(m2.url).register()
    t = threading.Thread(target=lambda: result.__setitem__("r", w2.fetch(long_poll=20)))
    t0 = time.monotonic()
    t.start()
    time.sleep(0.3)
    m2.admin("POST", f"/api/admin/workers/{w2.id}/set-status", json={"status": "asleep", "lazy": True},
                  timeout=5)
    t.join(10)
    assert result["r"].status_code == 423 and time.monotonic() - t0 < 3


def test_long_poll_slots_are_limited(manager_factory):
    m = manager_factory(threads=8, scheduling={"http_threads": 8, "reserved_threads": 6})
    workers = [Worker(m.url).register() for _ in range(3)]
    out = []
    threads = [threading.Thread(target=lambda w=w: out.append(w.fetch(long_poll=1.5).status_code))
               for w in workers]
    for t in threads:
        t.start()
    time.sleep(0.3)
    # Two slots are held; short requests still get through on the reserved threads.
    assert m.admin("GET", "/api/admin/status", timeout=2).json()["long_polls"]["waiting"] == 2
    for t in threads:
        t.join(5)
    assert out.count(204) == 3


def worker_status(manager, worker_id):
    return manager.admin("GET", f"/api/admin/workers/{worker_id}").json()["status"]


def test_sign_off_ends_a_held_long_poll_and_the_worker_gets_no_task(manager, worker_factory):
    """A long-poll still held when its worker signs off used to go on: a task arriving in
    that window became active for a worker that had gone, which showed 'awake' again."""
    w = worker_factory()
    result = {}

    def poll():
        t0 = time.monotonic()
        r = w.fetch(long_poll=20)
        result["status"], result["elapsed"] = r.status_code, time.monotonic() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.4)
    assert manager.admin("GET", "/api/admin/status").json()["long_polls"]["waiting"] == 1
    # The worker's other connection signs off (its main loop, as the process stops).
    other = Worker(manager.url)
    other.id, other.session.auth = w.id, (w.id, w.secret)
    assert other.post("/sign-off").status_code == 204
    manager.add_tasks(task_doc("arrives"))
    t.join(10)
    assert result["status"] == 204 and result["elapsed"] < 3
    assert worker_status(manager, w.id) == "offline"
    tasks = {t["_id"]: t for t in manager.admin("GET", "/api/admin/tasks").json()["tasks"]}
    assert tasks["arrives"]["status"] == "queued" and not tasks["arrives"].get("worker")
    # Another worker takes it at once; the one that signed off gets it only by asking again.
    assert claim_id(worker_factory()) == "arrives"


def test_forgotten_worker_held_long_poll_ends_with_204(manager, worker_factory):
    w = worker_factory()
    result = {}
    t = threading.Thread(target=lambda: result.__setitem__("r", w.fetch(long_poll=20)))
    t.start()
    time.sleep(0.4)
    assert manager.admin("DELETE", f"/api/admin/workers/{w.id}").status_code == 204
    t.join(10)
    assert result["r"].status_code == 204
    assert w.fetch().status_code == 401


def test_one_waiting_worker_is_woken_per_task(manager_factory):
    m = manager_factory(scheduling={"long_poll_max": 20.0})
    workers = [Worker(m.url).register() for _ in range(6)]
    answers = []
    lock = threading.Lock()

    def poll(w):
        t0 = time.monotonic()
        r = w.fetch(long_poll=3)
        with lock:
            answers.append((r.status_code, time.monotonic() - t0))

    def looks():
        return m.admin("GET", "/api/admin/status").json()["dispatch"]["requests"]

    threads = [threading.Thread(target=poll, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    time.sleep(0.5)
    before = looks()
    m.add_tasks(task_doc("one"))
    time.sleep(1.0)
    with lock:
        early = list(answers)
    assert looks() - before == 1  # one look, by the one woken; before, all six woke up to look
    for t in threads:
        t.join(10)
    assert [s for s, _ in early] == [200]
    assert sorted(s for s, _ in answers) == [200] + [204] * 5
    assert all(elapsed > 2.5 for s, elapsed in answers if s == 204)


def test_a_woken_worker_that_cannot_run_the_task_passes_it_on(manager_factory):
    m = manager_factory(scheduling={"long_poll_max": 20.0})
    ffmpeg_only = Worker(m.url, task_types=("ffmpeg",)).register()
    sleeper = Worker(m.url, task_types=("sleep",)).register()
    result = {}
    t1 = threading.Thread(target=lambda: result.__setitem__("ffmpeg", ffmpeg_only.fetch(long_poll=6)))
    t1.start()
    time.sleep(0.3)  # the ffmpeg worker waited longest: it is woken first
    t0 = time.monotonic()
    t2 = threading.Thread(target=lambda: result.__setitem__("sleep", (sleeper.fetch(long_poll=6),
                                                                       time.monotonic() - t0)))
    t2.start()
    time.sleep(0.3)
    m.add_tasks(task_doc("s1", task_type="sleep"))
    t2.join(10)
    r, elapsed = result["sleep"]
    assert r.status_code == 200 and r.json()["_id"] == "s1" and elapsed < 2.0
    t1.join(10)
    assert result["ffmpeg"].status_code == 204


def test_status_request_reaches_the_held_long_poll_of_that_worker_only(manager_factory):
    m = manager_factory(scheduling={"long_poll_max": 20.0})
    a, b = Worker(m.url).register(), Worker(m.url).register()
    result = {}
    ta = threading.Thread(target=lambda: result.__setitem__("a", a.fetch(long_poll=2)))
    tb = threading.Thread(target=lambda: result.__setitem__("b", b.fetch(long_poll=2)))
    ta.start(), tb.start()
    time.sleep(0.4)
    t0 = time.monotonic()
    m.admin("POST", f"/api/admin/workers/{a.id}/set-status", json={"status": "asleep", "lazy": True})
    ta.join(5)
    assert result["a"].status_code == 423 and time.monotonic() - t0 < 1.5
    assert "b" not in result
    tb.join(5)
    assert result["b"].status_code == 204
