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


_local = threading.local()


@contextlib.contextmanager
def write(db: peewee.Database):
    """One write transaction, serialised with every other write of this Server; nested
    calls join it. Callbacks given to `after_commit` inside it run once it committed."""
    depth = getattr(_local, "depth", 0)
    if depth == 0:
        _local.after = []
    _local.depth = depth + 1
    try:
        with write_transaction(db):
            if depth == 0 and not is_sqlite(db):
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            yield
    finally:
        _local.depth = depth
        callbacks = _local.after if depth == 0 else None
        if depth == 0:
            _local.after = None
    # Reached only when the outermost transaction committed (an exception skips this).
    for fn in callbacks or ():
        fn()


def after_commit(fn) -> None:
    """Run `fn` when this thread's write transaction has committed; at once outside one.

    News for Managers goes through here: a held request woken before the commit would
    read the old rows and go back to waiting."""
    pending = getattr(_local, "after", None)
    if pending is None:
        fn()
    else:
        pending.append(fn)


def connect(data_dir=None, database: str | None = None) -> peewee.Database:
    """The Server's database from --data-dir/--database, tables created, models bound."""
    db = open_database(database_url(data_dir, database, "server.sqlite"))
    return models.bind(db)
