"""The tick() loops with an injected clock: timeouts and sleep schedules (real SQLite, no HTTP)."""

from __future__ import annotations

from datetime import datetime

import pytest

from backend.manager.ingest import ingest_tasks
from shared import documents

T0 = 1_700_000_000.0


@pytest.fixture
def core(make_core):
    return make_core(started_at=T0)


def register(core, name, now=T0, types=("sleep",)):
    reg = documents.WorkerRegistration(secret="s" * 64, platform="linux", supported_task_types=list(types),
                                       nickname=name)
    return core.workers.register(reg, now=now)


def add(core, *ids):
    docs = [documents.Task.from_dict({"_id": i, "job": "j", "name": i, "status": "queued", "task_type": "sleep",
                                      "commands": []}) for i in ids]
    ingest_tasks(core.db, core.state, docs, local=True, now=T0)


def status(core, task_id):
    return core.db.m.Task.get_by_id(task_id).status


def worker(core, wid):
    return core.db.m.Worker.get_by_id(wid)


def test_worker_timeout_requeues_its_task_without_blame(core):
    w = register(core, "w1")
    add(core, "t1")
    assert core.scheduler.claim(w, now=T0 + 10).id == "t1"
    assert core.timeouts.tick(T0 + 100) == {"tasks": [], "workers": []}
    out = core.timeouts.tick(T0 + 10 + 121)
    assert out == {"tasks": [], "workers": [w.id]}
    assert worker(core, w.id).status == "timeout" and worker(core, w.id).current_task is None
    t = core.db.m.Task.get_by_id("t1")
    assert t.status == "claimed-by-manager" and t.failed_by_workers == []


def test_task_timeout_fails_on_that_worker_and_runs_elsewhere(core):
    w1, w2 = register(core, "w1"), register(core, "w2")
    add(core, "t1")
    core.scheduler.claim(w1, now=T0)
    # w1 keeps contacting the Manager but never pings the task.
    for minute in range(1, 11):
        core.db.m.Worker.update(last_seen=T0 + minute * 60).execute()
        core.timeouts.tick(T0 + minute * 60)
    out = core.timeouts.tick(T0 + 601)
    assert out["tasks"] == ["t1"]
    t = core.db.m.Task.get_by_id("t1")
    assert t.status == "soft-failed" and [f["id"] for f in t.failed_by_workers] == [w1.id]
    assert worker(core, w1.id).status == "timeout"
    assert core.scheduler.claim(worker(core, w1.id), now=T0 + 602) is None
    assert core.scheduler.claim(w2, now=T0 + 602).id == "t1"


def test_no_timeouts_right_after_manager_start(make_core):
    first = make_core(started_at=T0)
    w = register(first, "w1", now=T0)
    # The Manager restarts an hour later: nobody has been seen since, but that is the Manager's doing.
    again = make_core(started_at=T0 + 3600)
    assert again.timeouts.tick(T0 + 3600 + 60)["workers"] == []
    assert again.timeouts.tick(T0 + 3600 + 121)["workers"] == [w.id]


def test_sleep_schedule_tick(core):
    w = register(core, "w1")
    core.workers.set_sleep_schedule(w.id, True, "mo tu we th fr", "09:00", "18:00")
    monday_10 = datetime(2024, 1, 1, 10, 0).astimezone()
    assert core.sleep_scheduler.tick(monday_10) == [(w.id, "asleep")]
    rec = worker(core, w.id)
    assert rec.status_requested == "asleep" and rec.lazy_status_request is True
    assert rec.sleep_next_check == datetime(2024, 1, 1, 18, 0).astimezone().timestamp()
    assert core.sleep_scheduler.tick(datetime(2024, 1, 1, 11, 0).astimezone()) == [], "not due yet"
    core.workers.ack_status(rec, "asleep")
    assert core.sleep_scheduler.tick(datetime(2024, 1, 1, 18, 0).astimezone()) == [(w.id, "awake")]
    core.workers.ack_status(worker(core, w.id), "awake")
    assert core.sleep_scheduler.tick(datetime(2024, 1, 2, 0, 0).astimezone()) == []


def test_sleep_schedule_validation(core):
    from backend.errors import ApiError as WorkerError
    w = register(core, "w1")
    with pytest.raises(WorkerError, match="unknown day"):
        core.workers.set_sleep_schedule(w.id, True, "monday", "09:00", "18:00")
    with pytest.raises(WorkerError, match="HH:MM"):
        core.workers.set_sleep_schedule(w.id, True, "mo", "9am", "18:00")


def test_blocklist_entries_expire(core):
    w = register(core, "w1")
    core.db.m.Blocklist.create(worker=w.id, job="j", task_type="sleep", created=T0)
    core.timeouts.tick(T0 + 6 * 24 * 3600)
    assert core.db.m.Blocklist.select().count() == 1
    core.timeouts.tick(T0 + 7 * 24 * 3600 + 1)
    assert core.db.m.Blocklist.select().count() == 0
