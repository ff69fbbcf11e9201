"""The scheduler's and the failure rules' decisions, driven through the Manager's services on a
real SQLite file, without HTTP (the HTTP tests are tests/integration/manager/test_scheduling.py
and test_failures.py)."""

from __future__ import annotations

import threading

import pytest

from backend.manager import failures
from backend.manager.config import Failures, ManagerConfig, Upstream
from backend.manager.ingest import ingest_tasks
from backend.manager.state_machine import Report
from shared import documents

T0 = 1_700_000_000.0


def register(core, name, types=("sleep",), tags=(), mem_free_mb=None):
    reg = documents.WorkerRegistration(secret="s" * 64, platform="linux", supported_task_types=list(types),
                                       nickname=name)
    w = core.workers.register(reg, now=T0)
    if tags or mem_free_mb is not None:
        core.workers.sign_on(w, documents.WorkerSignOn(
            tags=list(tags), resources={"mem_free_mb": mem_free_mb} if mem_free_mb is not None else None), now=T0)
        w = core.workers.get(w.id)
        core.workers.mark_awake(w)
    return w


def add(core, *tasks, local=True):
    docs = [documents.Task.from_dict({"job": "j", "status": "queued", "task_type": "sleep", "commands": [],
                                      "name": t["_id"], **t}) for t in tasks]
    ingest_tasks(core.db, core.state, docs, local=local, now=T0)


def status(core, task_id):
    return core.db.tasks.get(task_id).status


def claim(core, worker):
    task = core.scheduler.claim(core.workers.get(worker.id), now=T0 + 1)
    return task.id if task else None


# --- the pure verdicts --------------------------------------------------------------------

RULES = Failures(blocklist_threshold=3, task_fail_after_softfail_count=3)


@pytest.mark.parametrize("failed_by, anyone_else, expected", [
    (1, True, "soft-failed"), (2, True, "soft-failed"), (3, True, "failed"), (1, False, "failed")])
def test_verdict(failed_by, anyone_else, expected):
    assert failures.verdict(failed_by, lambda: anyone_else, RULES)[0] == expected


def test_verdict_does_not_ask_about_other_workers_when_the_count_decides():
    def anyone_else():
        raise AssertionError("not asked")
    assert failures.verdict(3, anyone_else, RULES) == ("failed", "3 workers failed it")


def test_blocklist_threshold():
    assert [failures.should_blocklist(n, RULES) for n in (1, 2, 3, 4)] == [False, False, True, True]


# --- the scheduler --------------------------------------------------------------------------

def test_order_is_job_priority_then_priority_then_age(core):
    w = register(core, "w")
    add(core, {"_id": "old-low", "job_priority": 50, "priority": 10},
        {"_id": "new-high", "job_priority": 50, "priority": 90},
        {"_id": "urgent-job", "job_priority": 80, "priority": 1},
        {"_id": "old-high", "job_priority": 50, "priority": 90})
    order = []
    for _ in range(4):
        order.append(claim(core, w))
        core.updates.apply(core.workers.get(w.id), order[-1], documents.TaskUpdate(task_status="completed"))
    assert order == ["urgent-job", "new-high", "old-high", "old-low"]


def test_parents_types_tags_and_memory(core):
    plain = register(core, "plain", types=("sleep",))
    gpu = register(core, "gpu", types=("sleep", "blender-render"), tags=("gpu",), mem_free_mb=1000)
    add(core, {"_id": "child", "parents": ["parent"]}, {"_id": "parent"},
        {"_id": "render", "task_type": "blender-render"},
        {"_id": "tagged", "job": "jt", "job_worker_tag": "gpu"},
        {"_id": "big", "job": "jb", "job_memory_mb": 4000})
    # A worker that never reported its memory (a Flamenco 2 worker) is not held back.
    assert core.db.tasks.candidates(core.workers.get(plain.id), limit=10) == ["parent", "big"]
    assert core.db.tasks.candidates(core.workers.get(gpu.id), limit=10) == ["parent", "render", "tagged"]
    assert claim(core, plain) == "parent"
    core.updates.apply(core.workers.get(plain.id), "parent", documents.TaskUpdate(task_status="completed"))
    assert "child" in core.db.tasks.candidates(core.workers.get(plain.id), limit=10)


def test_a_worker_asking_again_gets_its_own_active_task(core):
    w = register(core, "w")
    add(core, {"_id": "t1"}, {"_id": "t2"})
    assert claim(core, w) == "t1"
    assert claim(core, w) == "t1"


def test_many_workers_claiming_at_once_never_share_a_task(core):
    workers = [register(core, f"w{i}") for i in range(8)]
    add(core, *[{"_id": f"t{i:02d}"} for i in range(6)])
    got: list[str | None] = []
    barrier = threading.Barrier(len(workers))

    def run(w):
        barrier.wait()
        got.append(core.db.batched(lambda: claim(core, w)))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [g for g in got if g]
    assert sorted(taken) == [f"t{i:02d}" for i in range(6)] and got.count(None) == 2


def test_an_asleep_worker_gets_nothing(core):
    w = register(core, "w")
    add(core, {"_id": "t1"})
    with core.db.write():
        core.workers.set_status(core.workers.get(w.id), "asleep")
    assert core.db.batched(lambda: core.scheduler.claim(core.workers.get(w.id), now=T0)) is None


# --- failure rules through the state machine ------------------------------------------------

def fail(core, worker, task_id):
    core.updates.apply(core.workers.get(worker.id), task_id, documents.TaskUpdate(task_status="failed"))


def test_soft_fail_then_hard_fail_after_three_workers(core):
    ws = [register(core, f"w{i}") for i in range(4)]
    add(core, {"_id": "t"})
    for i, w in enumerate(ws[:3]):
        assert claim(core, w) == "t"
        fail(core, w, "t")
        assert status(core, "t") == ("failed" if i == 2 else "soft-failed")
    task = core.db.tasks.get("t")
    assert [f["id"] for f in task.failed_by_workers] == [w.id for w in ws[:3]]
    assert claim(core, ws[0]) is None, "a worker never gets a task it failed"


def test_no_other_eligible_worker_means_failed_at_once(core):
    only = register(core, "only")
    register(core, "renders-only", types=("blender-render",))
    add(core, {"_id": "t"})
    assert claim(core, only) == "t"
    fail(core, only, "t")
    assert status(core, "t") == "failed"


def test_blocklist_after_three_failures_of_one_job_and_type(core):
    bad, good = register(core, "bad"), register(core, "good")
    add(core, *[{"_id": f"t{i}"} for i in range(4)])
    for i in range(3):
        assert claim(core, bad) == f"t{i}"
        fail(core, bad, f"t{i}")
    assert [(b["worker"], b["job"], b["task_type"]) for b in core.workers.blocklist()] == [(bad.id, "j", "sleep")]
    assert claim(core, bad) is None
    assert claim(core, good) == "t0"


def test_blocklisting_the_last_eligible_worker_fails_its_orphaned_softfails(core):
    a, b = register(core, "a"), register(core, "b")
    add(core, {"_id": "t0"})
    # b fails t0 (soft: a may still run it); then a fails three more urgent tasks and is
    # blocklisted, which leaves nobody for t0.
    assert claim(core, b) == "t0"
    fail(core, b, "t0")
    assert status(core, "t0") == "soft-failed"
    add(core, *[{"_id": f"t{i}", "priority": 90} for i in (1, 2, 3)])
    for i in (1, 2, 3):
        assert claim(core, a) == f"t{i}"
        fail(core, a, f"t{i}")
    assert status(core, "t0") == "failed"


# --- what follows a status change -----------------------------------------------------------

@pytest.fixture
def linked_core(make_core, tmp_path):
    """A Manager linked to a Server (that nobody talks to: no loops run): its upstream queue fills."""
    cfg = ManagerConfig(data_dir=tmp_path, upstream=Upstream(server_url="http://127.0.0.1:9", manager_id="m",
                                                              token="t"))
    return make_core(cfg)


def queued(core):
    return [(i.key, i.payload.get("task_status"), i.payload.get("activity")) for i in
            core.db.m.UpstreamItem.select().order_by(core.db.m.UpstreamItem.seq)]


def test_a_status_change_releases_the_worker_logs_and_tells_the_server(linked_core):
    core = linked_core
    w = register(core, "w")
    add(core, {"_id": "t"}, local=False)
    assert claim(core, w) == "t"
    assert core.workers.get(w.id).current_task == "t"
    with core.db.write():
        assert core.state.requeue(core.db.tasks.get("t"), "because", T0 + 2)
    task = core.db.tasks.get("t")
    assert task.status == "claimed-by-manager" and task.worker is None
    assert core.workers.get(w.id).current_task is None
    assert queued(core) == [("t", "active", "assigned to worker w"), ("t", "claimed-by-manager", "because")]
    assert "Manager: because" in core.logs.read_bytes("j", "t").decode()


def test_a_change_the_server_asked_for_is_not_echoed_and_a_refused_one_changes_nothing(linked_core):
    core = linked_core
    add(core, {"_id": "t"}, local=False)
    with core.db.write():
        assert core.state.change_status(core.db.tasks.get("t"), "canceled", Report("asked", from_server=True))
        assert not core.state.change_status(core.db.tasks.get("t"), "soft-failed", Report("not allowed"))
    assert status(core, "t") == "canceled" and queued(core) == []


def test_a_completed_parent_wakes_one_waiter_per_runnable_child(core):
    w = register(core, "w")
    add(core, {"_id": "p"}, {"_id": "c1", "parents": ["p"]}, {"_id": "c2", "parents": ["p"]})
    assert claim(core, w) == "p"
    results = []
    waiters = [threading.Thread(target=lambda: results.append(core.wakeup.wait(core.wakeup.generation, 5, None)))
               for _ in range(3)]
    for t in waiters:
        t.start()
    while core.wakeup.waiting < 3:
        threading.Event().wait(0.01)
    core.updates.apply(core.workers.get(w.id), "p", documents.TaskUpdate(task_status="completed"))
    for t in waiters:
        t.join(0.2)
    assert results.count("woken") == 2
    core.wakeup.notify_all()
