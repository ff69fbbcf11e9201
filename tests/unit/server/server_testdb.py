"""Databases for the Server's tests: a SQLite file in tmp_path, or a fresh PostgreSQL schema.

Each PostgreSQL test gets its own schema (through the connection's search_path),
dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import contextlib
import uuid
from urllib.parse import quote

from backend.db import open_database
from backend.server import models
from backend.server.compilers import Registry
from backend.server.config import ServerConfig
from backend.server.database import Clock
from shared.documents import UpstreamNotification
from shared.protocol import DEFAULT_WORKER_TASK_TYPES

DB_KINDS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def server_database(kind: str, tmp_path, request):
    if kind == "sqlite":
        db = open_database(f"sqlite:///{tmp_path}/server.sqlite")
        try:
            yield db
        finally:
            db.close()
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        db = open_database(url)
        try:
            yield db
        finally:
            db.close()


@contextlib.contextmanager
def postgres_schema(base: str):
    """The URL of a new, empty schema of the database at `base` (its search_path); dropped afterwards."""
    import psycopg2
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote('-c search_path=' + schema)}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def make_config(tmp_path, **kw) -> ServerConfig:
    return ServerConfig.from_dict({}, data_dir=tmp_path / "data", **kw)


ALL_TYPES = list(DEFAULT_WORKER_TASK_TYPES)


def notification(task_types=None, workers: int = 2) -> UpstreamNotification:
    return UpstreamNotification.from_dict({"_meta": {"version": 2}, "manager_url": "http://manager.local:8083",
                                           "variables": {}, "nr_of_workers": workers,
                                           "worker_task_types": list(task_types or ALL_TYPES)})


__all__ = ["make_config", "notification", "DB_KINDS", "Clock", "Registry", "models"]


class Harness:
    """Drives the Server's services the way the routes do: submit, depsgraph, update batches."""

    def __init__(self, seeded_server):
        self.seeded_server, self.ctx = seeded_server, seeded_server.ctx
        self._n = 0

    def submit(self, job_type="sleep", settings=None, user=None, **kw):
        from backend.server.jobs import submit_job
        from backend.server.models import Job
        body = {"name": kw.pop("name", "a job"), "type": job_type,
                "settings": settings if settings is not None else {"frames": "1-10", "chunk_size": 1},
                "project": "film", **kw}
        job = submit_job(self.ctx, user or self.seeded_server.artist, body)
        return Job.get_by_id(job.id)

    def depsgraph(self, since=None, manager=None, limit=1000, more=False):
        """(task documents, cursor) after the cursor `since` (or a stamp), checked against the shared
        document shape; with `more`, (documents, cursor, whether another page follows)."""
        import json
        from backend.server import manager_sync
        from shared.documents import ScheduledTasks
        import datetime as dt
        cursor = (since, "") if isinstance(since, dt.datetime) else manager_sync.parse_cursor(since) if since else None
        body, count, after, following = manager_sync.depsgraph(self.ctx, manager or self.seeded_server.manager,
                                                               cursor, limit)
        doc = json.loads(body)
        ScheduledTasks.from_dict(doc)
        assert len(doc["depsgraph"]) == count
        return (doc["depsgraph"], after, following) if more else (doc["depsgraph"], after)

    def update(self, task_id, status=None, update_id=None, manager=None, **fields):
        from backend.server import manager_sync
        from shared.documents import TaskUpdateBatch
        self._n += 1
        doc = {"_id": update_id or f"u{self._n}", "task_id": task_id, "received_on_manager": "2024-01-01T00:00:00Z",
               "worker": "w1", **fields}
        if status:
            doc["task_status"] = status
        return manager_sync.apply_batch(self.ctx, manager or self.seeded_server.manager,
                                        TaskUpdateBatch.from_dict({"updates": [doc]}))

    def batch(self, updates, manager=None):
        from backend.server import manager_sync
        from shared.documents import TaskUpdateBatch
        return manager_sync.apply_batch(self.ctx, manager or self.seeded_server.manager,
                                        TaskUpdateBatch.from_dict({"updates": updates}))

    def job(self, job):
        from backend.server.models import Job
        return Job.get_by_id(job.id if hasattr(job, "id") else job)

    def tasks(self, job):
        from backend.server.models import Task
        return list(Task.select().where(Task.job == (job.id if hasattr(job, "id") else job)).order_by(Task.id))

    def statuses(self, job):
        return [t.status for t in self.tasks(job)]

    def user_status(self, job, status, reason=""):
        from backend.server.database import write
        from shared.statuses import JobStatus
        with write(self.ctx.db):
            self.ctx.machine.request_job_status(self.job(job), JobStatus(status), "user test", reason)
        return self.job(job)

    def check_counts(self, job):
        """The counts kept on the job row equal a fresh count of its tasks."""
        from collections import Counter
        job = self.job(job)
        counts = Counter(self.statuses(job))
        assert job.task_counts == dict(counts), (job.task_counts, dict(counts))
        assert job.tasks_total == sum(counts.values()) + job.tasks_to_store
        return job
