"""Retention on the Manager: finished jobs forgotten after `retention.finished_job_days`, on a real
SQLite file and real task-log files, driven through the Manager's services."""

from __future__ import annotations

import pytest

from backend.manager.config import ManagerConfig, Retention
from backend.manager.ingest import ingest_tasks
from backend.manager.persistence import OUTPUTS, TASK_UPDATE
from backend.manager.state_machine import Report
from shared import documents

T0 = 1_700_000_000.0
DAY = 86400.0


def add(core, job, *names, local=True, now=T0):
    docs = [documents.Task.from_dict({"_id": name, "job": job, "status": "queued", "task_type": "sleep",
                                      "commands": [], "name": name}) for name in names]
    ingest_tasks(core.db, core.state, docs, local=local, now=now)


def end(core, task_id, status="completed", now=T0):
    with core.db.write():
        assert core.state.change_status(core.db.tasks.get(task_id), status, Report(f"{status} in the test"), now)


def job_rows(core, job):
    return [t.id for t in core.db.tasks.listing(job=job, limit=1000)]


def make(make_core, tmp_path, days):
    return make_core(ManagerConfig(data_dir=tmp_path, retention=Retention(finished_job_days=days)))


def test_finished_jobs_are_forgotten_after_the_configured_days_with_their_logs(make_core, tmp_path):
    core = make(make_core, tmp_path, days=2)
    add(core, "done", "d1", "d2")
    end(core, "d1")
    end(core, "d2", "canceled")
    core.logs.append("done", "d1", "rendered frame 1")
    worker = core.workers.register(documents.WorkerRegistration(
        secret="s" * 64, platform="linux", supported_task_types=["sleep"], nickname="w1"), now=T0)
    with core.db.write():
        core.db.tasks.add_failure(core.db.tasks.get("d1"), worker, T0)
    assert core.db.tasks.failed_by("d1") == {worker.id}
    add(core, "busy", "b1", "b2")
    end(core, "b1")  # b2 is still queued: the job is not finished
    add(core, "recent", "r1")
    end(core, "r1", now=T0 + 1.5 * DAY)
    logs_of_done = core.logs.path("done", "d1").parent
    assert logs_of_done.is_dir()

    assert core.retention.tick(now=T0 + 1.9 * DAY) == 0, "not two days yet"
    assert core.retention.tick(now=T0 + 2.1 * DAY) == 1
    assert job_rows(core, "done") == [] and not logs_of_done.exists()
    assert core.db.tasks.failed_by("d1") == set()
    assert sorted(job_rows(core, "busy")) == ["b1", "b2"] and job_rows(core, "recent") == ["r1"]

    assert core.retention.tick(now=T0 + 3.6 * DAY) == 1, "the recent job's two days are over"
    assert job_rows(core, "recent") == [] and job_rows(core, "busy")

    # The Server runs the job again later: it comes back like a new one.
    add(core, "done", "d1", now=T0 + 10 * DAY)
    assert core.db.tasks.get("d1").status == "queued"


@pytest.mark.parametrize("kind,key", [(TASK_UPDATE, "s1"), (OUTPUTS, "sent")])
def test_a_job_with_something_still_queued_for_the_server_waits(make_core, tmp_path, kind, key):
    """Task updates are queued by task, outputs by job: either keeps the job until it went."""
    core = make(make_core, tmp_path, days=1)
    add(core, "sent", "s1", local=False)
    end(core, "s1")
    with core.db.write():
        core.db.upstream.enqueue(kind, key, {"job": "sent", "task": "s1"}, T0)
    assert core.retention.tick(now=T0 + 5 * DAY) == 0
    assert job_rows(core, "sent") == ["s1"]
    with core.db.write():
        core.db.upstream.remove([core.db.upstream.head().seq])
    assert core.retention.tick(now=T0 + 5 * DAY) == 1
    assert job_rows(core, "sent") == []


def test_a_job_requeued_between_the_listing_and_the_removal_is_kept(make_core, tmp_path):
    core = make(make_core, tmp_path, days=1)
    add(core, "again", "a1")
    end(core, "a1")
    listed = core.db.tasks.finished_jobs(T0 + DAY / 2)
    assert listed == ["again"]
    with core.db.write():  # the Server requeues it before the removal runs
        assert core.state.change_status(core.db.tasks.get("a1"), "queued", Report("requeued", from_server=True),
                                        T0 + 0.1)
        assert core.db.tasks.forget_job("again", T0 + DAY / 2) == 0
    assert job_rows(core, "again") == ["a1"]


def test_zero_days_keeps_everything(make_core, tmp_path):
    core = make(make_core, tmp_path, days=0)
    add(core, "old", "o1")
    end(core, "o1")
    assert core.retention.tick(now=T0 + 10_000 * DAY) == 0
    assert job_rows(core, "old") == ["o1"]
