"""Opening the Server's database, write transactions, and the clock that stamps changes.

Managers sync incrementally: they send back the `updated` stamp of their last
depsgraph and get the tasks changed after it. That is only safe when stamps
grow in commit order, so every write runs under one lock (SQLite's
`BEGIN IMMEDIATE`; a transaction-scoped advisory lock on PostgreSQL) and takes
its time from `Clock.now()` inside that lock, which never repeats or goes back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import peewee

from backend.db import database_url, is_sqlite, open_database, write_transaction

from . import models

WRITE_LOCK_KEY = 0x466C616D  # 'Flam'


class Clock:
    """Strictly increasing naive-UTC datetimes; `source` can be replaced in tests."""

    def __init__(self, source=None):
        self._source = source or models.utcnow
        self._last = dt.datetime.min
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            t = self._source()
            if t <= self._last:
                t = self._last + dt.timedelta(microseconds=1)
            self._last = t
            return t


@contextlib.contextmanager
def write(db: peewee.Database):
    """One write transaction, serialised with every other write of this Server."""
    with write_transaction(db):
        if not is_sqlite(db):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
        yield


def connect(data_dir=None, database: str | None = None) -> peewee.Database:
    """The Server's database from --data-dir/--database, tables created, models bound."""
    db = open_database(database_url(data_dir, database, "server.sqlite"))
    return models.bind(db)
