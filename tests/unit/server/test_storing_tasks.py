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
from backend.server.models import Task, sql_literal
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


def test_a_big_job_is_stored_whole_in_one_transaction(h):
    job = h.submit(settings={"frames": "1-5000", "chunk_size": 1})
    assert Task.select().where(Task.job == job.id).count() == 5000
    assert h.job(job).task_counts == {"queued": 5000}
    assert len({t for (t,) in Task.select(Task.updated).where(Task.job == job.id).tuples()}) == 1


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
