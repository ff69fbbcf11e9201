"""The Manager's persistence: every SQL statement of the Manager lives in this package.

`Persistence` is what the services get: the write transaction (`write()`,
`after_commit()`), the named operations on tasks, workers, the upstream
queue, upload mode's files and the admin's credentials, small settings, and `batched(fn, *args)`, which
runs `fn` in a write
transaction on the database thread that commits many requests at once (the
dispatch path; see db_thread.py). Services never see SQL or a connection.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import peewee

from . import migrations
from .admin import AdminRecords
from .db_thread import DbThread
from .files import FileRecords
from .store import Store, open_sqlite
from .tasks import WORKER_REFUSED, TaskRecords, free_memory_mb
from .upstream_queue import LOG_UPLOAD, OUTPUT, OUTPUTS, TASK_UPDATE, UpstreamQueue
from .workers import WorkerRecords

__all__ = ["Persistence", "open_sqlite", "free_memory_mb", "WORKER_REFUSED", "TASK_UPDATE", "LOG_UPLOAD",
           "OUTPUT", "OUTPUTS"]


class Persistence:
    def __init__(self, db: peewee.SqliteDatabase):
        self.store = Store(db)
        self.m = self.store.m
        self.tasks = TaskRecords(self.store)
        self.workers = WorkerRecords(self.store)
        self.upstream = UpstreamQueue(self.store)
        self.files = FileRecords(self.store)
        self.admin = AdminRecords(self.store)
        self.db_thread = DbThread(self.store)
        migrations.migrate(db)

    def write(self) -> AbstractContextManager:
        """One write transaction (BEGIN IMMEDIATE under the write lock); nested calls join it."""
        return self.store.write()

    def in_write(self) -> bool:
        return self.store.in_write()

    def after_commit(self, fn) -> None:
        """Run `fn` once this thread's write transaction has committed (at once outside one)."""
        self.store.after_commit(fn)

    def batched(self, fn, *args):
        """fn(*args) in a write transaction on the database thread, committed before this returns."""
        return self.db_thread.call(fn, *args)

    def ensure_connected(self) -> None:
        self.store.ensure_connected()

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        return self.store.get_setting(key, default)

    def set_setting(self, key: str, value: str) -> None:
        self.store.set_setting(key, value)

    def close(self, timeout: float = 5.0) -> None:
        self.db_thread.stop(timeout)
