"""Storing a submitted job's tasks fast (issue 11): constants written into the INSERT, runs of tasks
sharing a type, parents and io stored together; on SQLite and PostgreSQL. And the WAL checkpoints
taken off the committing request."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading

import pytest

from backend.db import WalCheckpointer, open_database
from backend.server.compilers import CompileContext
from backend.server.jobs import job_docs
from backend.server.models import JobLogEntry, Task, sql_literal
from backend.server.task_storing import TaskStorer
from tests.unit.server.server_testdb import Harness


@pytest.fixture
def h(seeded_server):
    return Harness(seeded_server)


@pytest.mark.parametrize("value, text", [
    (None, "NULL"), (True, "1"), (0, "0"), (-12, "-12"), (0.5, "0.5"),
    ("plain", "'plain'"), ("it's", "'it''s'"), ("", "''"), ("'; DROP TABLE task; --", "'''; DROP TABLE task; --'"),
    (dt.datetime(2026, 12, 4, 21, 30, 0, 123), "'2026-12-04 21:30:00.000123'"),
])
def test_sql_literal_quotes_what_it_writes(value, text):
    assert sql_literal(value) == text


@pytest.mark.parametrize("value", ["nul\0byte", float("nan"), float("inf"), b"bytes", [1]])
def test_sql_literal_refuses_what_it_cannot_write_safely(value):
    with pytest.raises((ValueError, TypeError)):
        sql_literal(value)


def test_every_column_of_every_task_is_what_the_compiler_said(h):
    """A job whose consecutive tasks differ in type, parents, io and needs: each run of equal values is
    one statement, and no task gets its neighbour's values."""
    settings = {"filepath": "/shared/film/shot.blend", "frames": "1-7", "chunk_size": 2, "format": "PNG",
                "render_output": "/render/film/shot/######", "create_video": True, "fps": 24,
                "images_or_video": "images", "rna_overrides": ["bpy.context.scene.render.resolution_x = 64"]}
    job = h.submit("blender-render", settings, name="quote's test", priority=70)
    jt = h.ctx.registry.get("blender-render")
    specs = jt.compile(jt.validate(settings, h.ctx.config.max_frames, "shared"),
                       CompileContext(job.id, job.name, job.created, manager_task_types=frozenset()))
    tasks = sorted(Task.select().where(Task.job == job.id), key=lambda t: t.id)
    assert [t.name for t in tasks] == [s.name for s in specs]
    by_name = {t.name: t for t in tasks}
    for task, spec in zip(tasks, specs):
        assert task.task_type == spec.task_type and task.priority == spec.priority and task.needs == spec.needs
        assert task.parents == [by_name[p.name].id for p in spec.parents], task.name
        assert task.io == spec.io()
        assert [c["name"] for c in task.commands] == [c["name"] for c in spec.commands]
        assert task.job_id == job.id and task.job_priority == 70 and task.status == "queued"
        assert task.failed_by_workers == [] and task.activity == "" and task.progress == 0.0
        assert task.created == task.updated
    frames = [t.commands[-1]["settings"]["frames"] for t in tasks if t.task_type == "blender-render"]
    assert frames == ["1,2", "3,4", "5,6", "7"]
    assert by_name["move-to-final"].parents == [by_name["create-video"].id]
    assert len(by_name["create-video"].parents) == 4


def test_a_job_of_twice_the_first_batch_is_stored_whole_in_one_transaction(h):
    h.ctx.storer = TaskStorer(h.ctx, first_batch=1000, thread=False)
    job = h.submit(settings={"frames": "1-2000", "chunk_size": 1})
    assert Task.select().where(Task.job == job.id).count() == 2000
    assert (job.task_counts, job.tasks_total, job.tasks_to_store) == ({"queued": 2000}, 2000, 0)
    assert len({t for (t,) in Task.select(Task.updated).where(Task.job == job.id).tuples()}) == 1
    assert not h.ctx.storer.step(), "nothing left to store"


@pytest.fixture
def staged(h):
    """A Server whose storer stores 10 tasks with a job and 20 a batch after, when the test says so."""
    h.ctx.storer = TaskStorer(h.ctx, first_batch=10, batch=20, thread=False)
    return h


def store_all(h) -> int:
    steps = 0
    while h.ctx.storer.step():
        steps += 1
    return steps


def test_a_big_job_is_queued_with_its_first_tasks_and_the_rest_follows_in_batches(staged):
    h = staged
    job = h.submit(settings={"frames": "1-55", "chunk_size": 1})
    assert job.status == "queued" and job.tasks_total == 55 and job.tasks_to_store == 45
    assert [t.name for t in h.tasks(job)] == [f"sleep-{i}" for i in range(1, 11)]
    h.check_counts(job)
    doc = job_docs([job])[0]
    assert (doc["tasks_total"], doc["tasks_to_store"], doc["task_counts"]) == (55, 45, {"queued": 10})
    assert doc["status_reason"] == "storing its tasks: 45 of 55 to go"

    first, cursor = h.depsgraph()
    assert [d["name"] for d in first] == [f"sleep-{i}" for i in range(1, 11)], "the first tasks run at once"
    assert store_all(h) == 3  # 20 + 20 + 5
    job = h.check_counts(job)
    assert (job.tasks_total, job.tasks_to_store, job.task_counts) == (55, 0, {"claimed-by-manager": 10, "queued": 45})
    rest, _ = h.depsgraph(since=cursor)
    assert [d["name"] for d in rest] == [f"sleep-{i}" for i in range(11, 56)], "each batch once, in order"
    assert [t.name for t in h.tasks(job)] == [f"sleep-{i}" for i in range(1, 56)]
    assert "all 55 tasks stored" in [e.what for e in JobLogEntry.select().where(JobLogEntry.job == job.id)]
    assert job_docs([job])[0]["status_reason"] == ""
    stamps = [t.updated for t in h.tasks(job)]
    assert stamps[9] < stamps[10] < stamps[30] < stamps[50], "each batch stamped when it committed"


def test_a_job_whose_stored_tasks_are_all_done_waits_for_the_rest(staged):
    h = staged
    job = h.submit(settings={"frames": "1-30", "chunk_size": 1})
    for task in h.tasks(job):
        h.update(task.id, "completed")
    job = h.check_counts(job)
    assert job.status == "active", "10 of 30 tasks done is not the job done"
    store_all(h)
    for task in h.tasks(job)[10:]:
        h.update(task.id, "completed")
    assert h.check_counts(job).status == "completed"


def test_failures_count_against_the_whole_job(staged):
    h = staged
    job = h.submit(settings={"frames": "1-100", "chunk_size": 1})
    for task in h.tasks(job)[:5]:
        h.update(task.id, "failed")
    assert h.job(job).status == "active", "5 failed tasks are 5 % of the job, not half of what was stored"


@pytest.mark.parametrize("request_status, stored_as, final", [
    ("cancel-requested", "canceled", "canceled"),
    ("pause-requested", "paused", "paused"),
])
def test_tasks_stored_after_the_job_stopped_are_stored_stopped(staged, request_status, stored_as, final):
    h = staged
    job = h.submit(settings={"frames": "1-50", "chunk_size": 1})
    h.user_status(job, request_status)
    store_all(h)
    job = h.check_counts(job)
    assert job.status == final and job.tasks_to_store == 0
    assert set(h.statuses(job)[10:]) == {stored_as}
    assert sum(job.task_counts.values()) == job.tasks_total == 50


def test_a_requeue_halfway_keeps_the_tasks_to_come_in_the_total(staged):
    h = staged
    job = h.submit(settings={"frames": "1-50", "chunk_size": 1})
    h.update(h.tasks(job)[0].id, "failed")
    h.user_status(job, "requeued")
    job = h.check_counts(job)
    assert job.tasks_total == 50 and job.tasks_to_store == 40
    store_all(h)
    assert h.check_counts(job).task_counts == {"queued": 50}


def test_a_job_deleted_halfway_stops_the_storing(staged):
    h = staged
    job = h.submit(settings={"frames": "1-50", "chunk_size": 1}, start_paused=True)
    from backend.server.jobs import delete_job
    delete_job(h.ctx, h.seeded_server.admin, h.job(job))
    assert store_all(h) == 1, "the first batch finds the job gone and gives up"
    assert Task.select().where(Task.job == job.id).count() == 0


def test_a_stopped_server_goes_on_where_it_stopped_and_never_stores_a_task_twice(staged):
    h = staged
    settings = {"filepath": "/shared/film/shot.blend", "frames": "1-60", "chunk_size": 1, "format": "PNG",
                "render_output": "/render/film/shot/######", "create_video": True, "fps": 24,
                "images_or_video": "images"}
    job = h.submit("blender-render", settings)
    old = h.ctx.storer
    assert old.step()  # one batch, then the process "stops"
    assert h.job(job).tasks_to_store == 62 - 30

    h.ctx.storer = TaskStorer(h.ctx, first_batch=10, batch=20, thread=False)  # the next start
    assert h.ctx.storer.resume() == 1
    store_all(h)
    assert old.step() and not old.step(), "the old storer looked once, found its tasks stored and gave up"
    assert Task.select().where(Task.job == job.id).count() == 62
    job = h.check_counts(job)
    assert job.tasks_to_store == 0 and job.tasks_total == 62
    tasks = h.tasks(job)
    jt = h.ctx.registry.get("blender-render")
    specs = jt.compile(jt.validate(settings, h.ctx.config.max_frames, "shared"),
                       CompileContext(job.id, job.name, job.created))
    assert [t.name for t in tasks] == [s.name for s in specs]
    assert tasks[-1].name == "move-to-final" and tasks[-1].parents == [tasks[-2].id]
    assert len(tasks[-2].parents) == 60
    assert h.ctx.storer.resume() == 0


def test_the_storing_thread_stores_a_job_while_the_submission_has_answered(h):
    h.ctx.storer = TaskStorer(h.ctx, first_batch=100, batch=1000)
    job = h.submit(settings={"frames": "1-5000", "chunk_size": 1})
    assert job.tasks_total == 5000
    assert h.ctx.storer.drain(timeout=60)
    job = h.check_counts(job)
    assert (job.tasks_to_store, job.task_counts) == (0, {"queued": 5000})


def test_the_checkpointer_moves_the_log_into_the_database_file(tmp_path):
    path = tmp_path / "a.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)  # open throughout, as a service's connections are
    for pragma in ("journal_mode = wal", "wal_autocheckpoint = 32768"):
        writer.execute(f"PRAGMA {pragma}")
    writer.execute("CREATE TABLE t (x TEXT)")
    writer.execute("BEGIN")
    writer.executemany("INSERT INTO t VALUES (?)", ((json.dumps({"i": i, "pad": "x" * 500}),) for i in range(2000)))
    writer.execute("COMMIT")
    before = path.stat().st_size
    assert (tmp_path / "a.sqlite-wal").stat().st_size > 1_000_000, "the rows wait in the WAL"
    db = open_database(f"sqlite:///{path}")
    stop = threading.Event()
    thread = threading.Thread(target=WalCheckpointer(db, interval=0.05).run, args=(stop,))
    thread.start()
    try:
        for _ in range(100):
            if path.stat().st_size > before + 1_000_000:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(5)
    assert path.stat().st_size > before + 1_000_000, "the checkpointer copied the pages into the file"
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (2000,)
    writer.close()
    db.close()
