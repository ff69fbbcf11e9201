"""A worker with slots: the scheduler hands it every task that fits what it has free, with the
ordering, tag, blocklist and memory rules of one claim; the worker's pointer, its lost answers,
timeouts and its info (real SQLite, the Manager's services, no HTTP)."""

from __future__ import annotations

import threading

import pytest

from backend.manager.ingest import ingest_tasks
from shared import documents

T0 = 1_700_000_000.0


@pytest.fixture
def core(make_core):
    return make_core(started_at=T0)


def register(core, name, types=("sleep", "blender-render", "file-management"), tags=()):
    reg = documents.WorkerRegistration(secret="s" * 64, platform="linux", supported_task_types=list(types),
                                       nickname=name)
    w = core.workers.register(reg, now=T0)
    if tags:
        core.workers.sign_on(w, documents.WorkerSignOn(tags=list(tags)), now=T0)
        core.workers.mark_awake(core.workers.get(w.id))
    return w


def add(core, *tasks):
    docs = [documents.Task.from_dict({"job": "j", "status": "queued", "task_type": "blender-render",
                                      "commands": [], "name": t["_id"], **t}) for t in tasks]
    ingest_tasks(core.db, core.state, docs, local=True, now=T0)


def ask(core, worker, now=T0 + 1, **free):
    free.setdefault("free_slots", 1)
    request = documents.TaskRequest.from_dict(free)
    return [t.id for t in core.scheduler.claim_several(core.workers.get(worker.id), request, now=now)]


def complete(core, worker, task_id):
    core.updates.apply(core.workers.get(worker.id), task_id, documents.TaskUpdate(task_status="completed"))


def test_as_many_as_fit_in_the_usual_order(core):
    w = register(core, "w")
    add(core, {"_id": "low", "priority": 10}, {"_id": "high", "priority": 90},
        {"_id": "urgent", "job": "j2", "job_priority": 80}, {"_id": "mid", "priority": 50})
    assert ask(core, w, free_slots=3) == ["urgent", "high", "mid"]
    assert {t.status for t in core.db.tasks.of_ids(["urgent", "high", "mid"])} == {"active"}
    assert core.db.tasks.get("low").status == "queued"


def test_needs_decide_what_fits(core):
    w = register(core, "w")
    add(core, {"_id": "render-a", "priority": 90}, {"_id": "render-b", "priority": 80},
        {"_id": "gpu-render", "priority": 70, "needs": "gpu"},
        {"_id": "move", "task_type": "file-management", "priority": 10})
    # One slot and one light slot: the best render, then the light task in the light slot.
    assert ask(core, w, free_slots=1, free_light_slots=1) == ["render-a", "move"]
    # A slot but no free GPU: the gpu render waits, a cpu one fits.
    assert ask(core, w, free_slots=1, free_gpus=0, running=["render-a", "move"]) == ["render-b"]
    # A GPU free: the gpu render.
    assert ask(core, w, free_slots=1, free_gpus=1, running=["render-a", "move", "render-b"]) == ["gpu-render"]
    assert core.db.tasks.get("gpu-render").needs == "gpu" and core.db.tasks.get("move").needs == "light"


def test_only_light_slots_free_takes_only_light_tasks(core):
    w = register(core, "w")
    add(core, {"_id": "render", "priority": 90}, {"_id": "sleep", "task_type": "sleep"})
    assert ask(core, w, free_slots=0, free_light_slots=2) == ["sleep"]


def test_memory_booked_by_one_claim_is_not_free_for_the_next(core):
    w = register(core, "w")
    add(core, {"_id": "big1", "priority": 90, "job_memory_mb": 3000},
        {"_id": "big2", "priority": 80, "job": "j2", "job_memory_mb": 3000},
        {"_id": "small", "priority": 10, "job": "j3", "job_memory_mb": 1000})
    assert ask(core, w, free_slots=3, free_memory_mb=5000) == ["big1", "small"]


def test_tags_and_blocklist_still_apply(core):
    w = register(core, "w")
    add(core, {"_id": "tagged", "job": "jt", "job_worker_tag": "gpu", "priority": 90},
        {"_id": "blocked", "job": "jb", "priority": 80}, {"_id": "ok", "priority": 10})
    with core.db.write():
        core.db.workers.block(w.id, "jb", "blender-render", T0)
    assert ask(core, w, free_slots=3) == ["ok"]


def test_a_lost_answer_comes_again_and_nothing_new_with_it(core):
    w = register(core, "w")
    add(core, *[{"_id": f"t{i}", "task_type": "sleep"} for i in range(5)])
    assert ask(core, w, free_slots=2) == ["t0", "t1"]
    # The worker never got that answer: it holds nothing and asks again.
    assert ask(core, w, free_slots=2) == ["t0", "t1"]
    # It got t0 only (say): t1 comes again.
    assert ask(core, w, free_slots=1, running=["t0"]) == ["t1"]
    # It runs both: new work.
    assert ask(core, w, free_slots=2, running=["t0", "t1"]) == ["t2", "t3"]


def test_the_workers_pointer_moves_to_a_task_it_still_runs(core):
    w = register(core, "w")
    add(core, {"_id": "a", "task_type": "sleep"}, {"_id": "b", "task_type": "sleep"})
    assert ask(core, w, free_slots=2) == ["a", "b"]
    assert core.workers.get(w.id).current_task == "b"
    complete(core, w, "b")
    assert core.workers.get(w.id).current_task == "a"
    info = core.workers.info(core.workers.get(w.id))
    assert info["current_task"] == "a" and info["current_job"] == "j"
    assert info["running_tasks"] == [{"id": "a", "job": "j", "name": "a", "needs": "light"}]
    complete(core, w, "a")
    assert core.workers.get(w.id).current_task is None
    assert core.workers.info(core.workers.get(w.id))["running_tasks"] == []


def test_every_running_task_is_in_the_workers_info(core):
    w, other = register(core, "w"), register(core, "other")
    add(core, {"_id": "a", "priority": 90}, {"_id": "b", "priority": 80, "task_type": "sleep"},
        {"_id": "c", "priority": 70})
    assert ask(core, w, free_slots=2) == ["a", "b"]
    assert ask(core, other, free_slots=1) == ["c"]
    infos = {i["_id"]: i for i in core.workers.infos()}
    assert [t["id"] for t in infos[w.id]["running_tasks"]] == ["a", "b"]
    assert [t["id"] for t in infos[other.id]["running_tasks"]] == ["c"]
    assert infos[w.id]["current_task"] in ("a", "b")


def test_workers_with_slots_asking_at_once_never_share_a_task(core):
    workers = [register(core, f"w{i}") for i in range(6)]
    add(core, *[{"_id": f"t{i:02d}", "task_type": "sleep"} for i in range(10)])
    got: list[list[str]] = []
    barrier = threading.Barrier(len(workers))

    def run(w):
        barrier.wait()
        got.append(core.db.batched(lambda: ask(core, w, free_slots=2)))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [t for ids in got for t in ids]
    assert sorted(taken) == [f"t{i:02d}" for i in range(10)]
    assert all(len(ids) <= 2 for ids in got)


def test_one_task_timing_out_leaves_the_worker_and_its_other_task_alone(core):
    w = register(core, "w")
    add(core, {"_id": "stuck", "priority": 90, "task_type": "sleep"}, {"_id": "fine", "task_type": "sleep"})
    assert ask(core, w, free_slots=2, now=T0) == ["stuck", "fine"]
    timeout = core.config.timeouts.task_timeout
    for step in range(1, 11):
        now = T0 + step * timeout / 10
        core.db.m.Worker.update(last_seen=now).execute()
        core.workers.may_i_run(core.workers.get(w.id), "fine", now=now)
        out = core.timeouts.tick(now + 1)
    assert out["tasks"] == ["stuck"]
    assert core.db.tasks.get("stuck").status == "failed"  # no other worker may run it
    assert core.db.tasks.get("fine").status == "active"
    assert core.workers.get(w.id).status == "awake" and core.workers.get(w.id).current_task == "fine"
