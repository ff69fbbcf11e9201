"""Opening the Server's database, write transactions, and the clock that stamps changes.

Managers sync incrementally: they send back the `updated` stamp of their last
depsgraph and get the tasks changed after it. That is only safe when stamps
grow in commit order, so every write runs under one lock (SQLite's
`BEGIN IMMEDIATE`; a transaction-scoped advisory lock on PostgreSQL) and takes
its time from `Clock.now()` inside that lock, which never repeats or goes back.

Several Server processes may share one PostgreSQL database (docs/operations-server.md),
each with its own clock, and their hosts' clocks may disagree. So the latest
stamp given is kept in the database (`server_clock`): a write transaction first
moves its process's clock up to it and leaves its own latest stamp there, and
stamps grow in commit order across processes too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import peewee

from backend.db import database_url, is_sqlite, open_database, write_transaction

from . import models

WRITE_LOCK_KEY = 0x466C616D  # 'Flam'
CLOCK_ATTR = "flamenco_clock"


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

    @property
    def last(self) -> dt.datetime:
        return self._last

    def catch_up(self, floor: dt.datetime) -> None:
        """Never give a stamp at or before `floor` (another process's latest)."""
        with self._lock:
            if floor > self._last:
                self._last = floor

    def attach(self, db: peewee.Database) -> "Clock":
        """Make this the clock that `write(db)` keeps in step with the database's."""
        setattr(db, CLOCK_ATTR, self)
        return self


_local = threading.local()


@contextlib.contextmanager
def write(db: peewee.Database):
    """One write transaction, serialised with every other write of this Server (and of other
    Server processes on the same database); nested calls join it. Callbacks given to
    `after_commit` inside it run once it committed."""
    depth = getattr(_local, "depth", 0)
    if depth:
        _local.depth = depth + 1
        try:
            with write_transaction(db):
                yield
        finally:
            _local.depth = depth
        return
    _local.depth, _local.after = 1, []
    try:
        with write_transaction(db):
            if not is_sqlite(db):
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            clock: Clock | None = getattr(db, CLOCK_ATTR, None)
            if clock is None:
                yield
            else:
                row = models.ServerClock.get_or_none(models.ServerClock.id == 1)
                floor = row.last if row else dt.datetime.min
                clock.catch_up(floor)
                yield
                if clock.last > floor:
                    (models.ServerClock.insert(id=1, last=clock.last)
                     .on_conflict(conflict_target=[models.ServerClock.id],
                                  update={models.ServerClock.last: clock.last})
                     .execute())
    finally:
        callbacks, _local.after, _local.depth = _local.after, None, 0
    # Reached only when the transaction committed (an exception skips this).
    for fn in callbacks:
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


def connect(data_dir=None, database: str | None = None, migrate: bool = True) -> peewee.Database:
    """The Server's database from --data-dir/--database, models bound, schema migrated unless told not to."""
    db = open_database(database_url(data_dir, database, "server.sqlite"))
    return models.bind(db, create=migrate)
