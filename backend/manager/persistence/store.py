"""The Manager's database: one SQLite file (WAL), its write lock and transactions,
and the statement cache of the hot paths.

Everything above `persistence/` reaches the database through the named
operations of tasks.py, workers.py and upstream_queue.py; this module is what
they share.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path

import peewee

from backend.db import SQLITE_PRAGMAS
from shared.statuses import TASK_IN_PROGRESS, TASK_RUNNABLE

from .models import JSONField, Models, RawJSON

log = logging.getLogger(__name__)


def sql_in(statuses) -> str:
    """A set of statuses as an SQL list of literals, in one fixed order.

    The runnable-task index and the queries that must use it spell the set the
    same way, which is what SQLite needs to match a query to a partial index."""
    return "(" + ", ".join(f"'{s}'" for s in sorted(statuses)) + ")"


RUNNABLE_SQL = sql_in(TASK_RUNNABLE)
IN_PROGRESS_SQL = sql_in(TASK_IN_PROGRESS)


CACHE_KIB = 4 * 1024
"""SQLite's page cache per connection, in KiB. The Manager keeps a connection per server
thread (up to its hundreds of threads), and any of them may read through a large job's
tasks (status, metrics, admin pages): with the Server's 64 MiB each, a Manager holding a
100,000-task job grew to 240-385 MB; with 4 MiB, 111 MB, and dispatch as fast (the OS
keeps the file's pages for all of them; bench/end_to_end.py --huge)."""


def open_sqlite(path: str | Path) -> peewee.SqliteDatabase:
    """The Manager's database file, not yet connected; connections are per thread."""
    return peewee.SqliteDatabase(str(path), pragmas={**SQLITE_PRAGMAS, "cache_size": -CACHE_KIB},
                                 check_same_thread=False, timeout=10)


class Store:
    """The database, its models, and the one lock that serialises writes in this process.

    SQLite allows one writer at a time; taking a Python lock before
    BEGIN IMMEDIATE keeps threads from spinning in SQLite's busy handler, which
    sleeps in milliseconds. The IMMEDIATE transaction still protects against
    another process on the same file.
    """

    def __init__(self, db: peewee.SqliteDatabase):
        if not isinstance(db, peewee.SqliteDatabase):
            raise TypeError("the Manager keeps its state in SQLite")
        self.db = db
        self.m = Models(db)
        self.lock = threading.RLock()
        self._local = threading.local()
        self._sql_cache: dict = {}

    # --- hot paths ----------------------------------------------------------------
    # Peewee builds SQL anew for every query, which for these wide tables costs about
    # a millisecond; the dispatch path (auth, claim, update) uses cached statements.

    def _fields(self, model) -> tuple[str, list]:
        """The column list, and (name, converter) per column: SQLite already gives text,
        integers and floats as Python wants them; booleans need bool(), JSON is left as
        RawJSON until read (the hot path reads few of a task's JSON columns)."""
        key = ("fields", model)
        if key not in self._sql_cache:
            fields = list(model._meta.sorted_fields)
            convert = []
            for f in fields:
                if isinstance(f, JSONField):
                    convert.append((f.name, RawJSON))
                elif isinstance(f, peewee.BooleanField):
                    convert.append((f.name, bool))
                elif isinstance(f, (peewee.CharField, peewee.TextField, peewee.IntegerField, peewee.FloatField)):
                    convert.append((f.name, None))
                else:
                    convert.append((f.name, f.python_value))
            self._sql_cache[key] = (", ".join(f'"{f.column_name}"' for f in fields), convert)
        return self._sql_cache[key]

    def statement(self, key, build) -> str:
        """A cached statement: `build()` makes it the first time `key` is asked for."""
        sql = self._sql_cache.get(key)
        if sql is None:
            sql = self._sql_cache[key] = build()
        return sql

    def columns_sql(self, model) -> str:
        """The column list that `instance` expects, for SELECT and RETURNING."""
        return self._fields(model)[0]

    def instance(self, model, values):
        """A model instance from a row of `columns_sql(model)` values."""
        convert = self._fields(model)[1]
        inst = model(__no_default__=True)
        inst.__data__ = {name: (fn(v) if fn is not None and v is not None else v)
                         for (name, fn), v in zip(convert, values)}
        inst._dirty = set()
        return inst

    def row(self, model, pk):
        """The row with this primary key as a model instance, or None."""
        key = ("select", model)
        if key not in self._sql_cache:
            pk_col = model._meta.primary_key.column_name
            self._sql_cache[key] = f'SELECT {self.columns_sql(model)} FROM "{model._meta.table_name}" WHERE "{pk_col}" = ?'
        self.ensure_connected()
        found = self.db.execute_sql(self._sql_cache[key], (pk,)).fetchone()
        return None if found is None else self.instance(model, found)

    def update_row(self, model, pk, where: str = "", where_params: tuple = (), **values) -> int:
        """UPDATE one row by primary key (plus an optional extra SQL condition); the row count."""
        names = tuple(values)
        key = ("update", model, names, where)
        if key not in self._sql_cache:
            meta = model._meta
            sets = ", ".join(f'"{meta.fields[n].column_name}" = ?' for n in names)
            extra = f" AND ({where})" if where else ""
            self._sql_cache[key] = (f'UPDATE "{meta.table_name}" SET {sets} WHERE "{meta.primary_key.column_name}" = ?'
                                    f'{extra}', [meta.fields[n] for n in names])
        sql, fields = self._sql_cache[key]
        params = [f.db_value(values[f.name]) if values[f.name] is not None else None for f in fields]
        return self.db.execute_sql(sql, (*params, pk, *where_params)).rowcount

    def insert_rows(self, model, rows: list[dict]) -> None:
        """INSERT many rows in one statement run (the caller's transaction); columns a row does
        not give take the model's defaults."""
        if not rows:
            return
        key = ("insert", model)
        if key not in self._sql_cache:
            fields = list(model._meta.sorted_fields)
            cols = ", ".join(f'"{f.column_name}"' for f in fields)
            self._sql_cache[key] = (f'INSERT INTO "{model._meta.table_name}" ({cols}) '
                                    f'VALUES ({", ".join("?" * len(fields))})', fields)
        sql, fields = self._sql_cache[key]

        def value(f, row):
            v = row[f.name] if f.name in row else (f.default() if callable(f.default) else f.default)
            return None if v is None else f.db_value(v)

        self.ensure_connected()
        self.db.cursor().executemany(sql, [[value(f, row) for f in fields] for row in rows])

    def execute(self, sql: str, params=()):
        """A statement on this thread's connection (the persistence modules' own SQL)."""
        return self.db.execute_sql(sql, params)

    def ensure_connected(self) -> None:
        """Each server thread keeps its own connection open (Peewee's state is per thread)."""
        if self.db.is_closed():
            self.db.connect(reuse_if_open=True)

    @contextmanager
    def write(self):
        """One write transaction (BEGIN IMMEDIATE under the write lock); nested calls join it.

        Callbacks registered with `after_commit` inside it run once it has committed,
        after the lock is released, and are dropped if it rolls back. (BEGIN and COMMIT
        are issued directly: Peewee's transaction objects cost more than the statements.)"""
        self.ensure_connected()
        local = self._local
        with self.lock:
            if getattr(local, "depth", 0):
                local.depth += 1
                try:
                    yield
                finally:
                    local.depth -= 1
                return
            db = self.db
            db.execute_sql("BEGIN IMMEDIATE")
            pending = local.after_commit = []
            local.depth = 1
            try:
                yield
            except BaseException:
                local.depth = 0
                local.after_commit = None
                self._rollback()
                raise
            local.depth = 0
            local.after_commit = None
            try:
                db.execute_sql("COMMIT")
            except BaseException:
                self._rollback()
                raise
        for fn in pending:
            fn()

    def _rollback(self) -> None:
        """Roll back what is still open (SQLite may have done it already), keeping the error that led here."""
        try:
            if self.db.connection().in_transaction:
                self.db.execute_sql("ROLLBACK")
        except Exception as ex:  # noqa: BLE001
            log.warning("rollback failed: %s", ex)

    def in_write(self) -> bool:
        """Whether this thread is inside `write()`."""
        return bool(getattr(self._local, "depth", 0))

    def set_after_commit_sink(self, sink: list) -> None:
        """Inside a write transaction: collect `after_commit` callbacks in `sink` from now on
        (the database thread gives each request in a batch its own)."""
        self._local.after_commit = sink

    def after_commit(self, fn) -> None:
        """Run `fn` when this thread's write transaction has committed (at once outside one).

        Wake-ups go through here: a worker woken before the commit would look at the
        old snapshot, find nothing, and go back to sleep with the task still waiting."""
        pending = getattr(self._local, "after_commit", None)
        if pending is None:
            fn()
        else:
            pending.append(fn)

    # --- settings: small values the Manager keeps between runs -----------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        self.ensure_connected()
        row = self.m.Setting.get_or_none(self.m.Setting.key == key)
        return row.value if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.write():
            self.m.Setting.insert(key=key, value=value).on_conflict_replace().execute()
