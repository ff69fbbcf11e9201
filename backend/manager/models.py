"""The Manager's tables (Peewee on SQLite in WAL mode).

Tasks are the Manager's copy of what the Server handed it; workers, the
blocklist and the upstream queue are the Manager's own. JSON columns hold
lists and documents that are only ever read whole.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager

import peewee

from backend.db import SQLITE_PRAGMAS, is_sqlite

log = logging.getLogger(__name__)


class RawJSON(str):
    """A JSON column's text as read by `Store.instance`, decoded on first access."""


class _LazyJSONAccessor(peewee.FieldAccessor):
    def __get__(self, instance, instance_type=None):
        if instance is None:
            return self.field
        value = instance.__data__.get(self.name)
        if type(value) is RawJSON:
            value = instance.__data__[self.name] = json.loads(value)
        return value


class JSONField(peewee.TextField):
    accessor_class = _LazyJSONAccessor

    def db_value(self, value):
        if value is None:
            return None
        if type(value) is RawJSON:
            return str(value)
        return json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class Models:
    """The model classes bound to one database; several Managers may live in one process."""

    def __init__(self, db: peewee.Database):
        self.db = db

        class BaseModel(peewee.Model):
            class Meta:
                database = db
                legacy_table_names = False

        class Worker(BaseModel):
            id = peewee.CharField(primary_key=True)
            secret_hash = peewee.CharField()
            nickname = peewee.CharField(default="")
            platform = peewee.CharField(default="linux")
            supported_task_types = JSONField(default=list)
            tags = JSONField(default=list)
            status = peewee.CharField(default="starting", index=True)
            status_requested = peewee.CharField(null=True)
            lazy_status_request = peewee.BooleanField(default=False)
            current_task = peewee.CharField(null=True)
            last_seen = peewee.FloatField(default=0)
            last_activity = peewee.CharField(default="")
            resources = JSONField(null=True)
            software = peewee.CharField(default="")
            address = peewee.CharField(default="")
            created = peewee.FloatField(default=time.time)
            # Sleep schedule.
            sleep_active = peewee.BooleanField(default=False)
            sleep_days = peewee.CharField(default="")
            sleep_start = peewee.CharField(default="")
            sleep_end = peewee.CharField(default="")
            sleep_next_check = peewee.FloatField(null=True)
            last_output_produced = peewee.FloatField(default=0)

            @property
            def identifier(self) -> str:
                return f"{self.id} ({self.nickname})"


        class Task(BaseModel):
            id = peewee.CharField(primary_key=True)
            seq = peewee.IntegerField(index=True)
            job = peewee.CharField(index=True)
            name = peewee.CharField(default="")
            status = peewee.CharField()
            task_type = peewee.CharField()
            priority = peewee.IntegerField(default=50)
            job_priority = peewee.IntegerField(default=50)
            job_type = peewee.CharField(default="")
            manager = peewee.CharField(default="")
            project = peewee.CharField(default="")
            user = peewee.CharField(default="")
            commands = JSONField(default=list)
            parents = JSONField(default=list)
            failed_by_workers = JSONField(default=list)
            worker = peewee.CharField(null=True, index=True)
            job_worker_tag = peewee.CharField(null=True)
            job_memory_mb = peewee.IntegerField(null=True)
            job_files_mode = peewee.CharField(null=True)
            etag = peewee.CharField(null=True)
            server_updated = peewee.CharField(null=True)
            local = peewee.BooleanField(default=False)
            """Manager-local (test) tasks are never sent upstream."""
            last_worker_ping = peewee.FloatField(null=True)
            activity = peewee.TextField(default="")
            current_command_idx = peewee.IntegerField(default=0)
            task_progress_percentage = peewee.FloatField(default=0)
            command_progress_percentage = peewee.FloatField(default=0)
            updated = peewee.FloatField(default=time.time)

            class Meta:
                indexes = ((("status", "job_priority", "priority", "seq"), False),)


        class TaskParent(BaseModel):
            task = peewee.CharField(index=True)
            parent = peewee.CharField(index=True)

            class Meta:
                primary_key = peewee.CompositeKey("task", "parent")


        class TaskFailure(BaseModel):
            """One worker failed one task (the queryable form of failed_by_workers)."""
            task = peewee.CharField()
            worker = peewee.CharField()
            job = peewee.CharField()
            task_type = peewee.CharField()
            created = peewee.FloatField(default=time.time)

            class Meta:
                primary_key = peewee.CompositeKey("task", "worker")
                indexes = ((("worker", "job", "task_type"), False),)


        class Blocklist(BaseModel):
            worker = peewee.CharField()
            job = peewee.CharField()
            task_type = peewee.CharField()
            created = peewee.FloatField(default=time.time)

            class Meta:
                primary_key = peewee.CompositeKey("worker", "job", "task_type")


        class UpstreamItem(BaseModel):
            """The durable upstream queue: sent in `seq` order, deleted once the Server has it.

            kinds: 'task-update' (payload = UpstreamTaskUpdate), 'log-upload' ({job, task}),
            'output' ({job, task, relpath, sha256, spool}).
            """
            seq = peewee.AutoField()
            kind = peewee.CharField(index=True)
            key = peewee.CharField(default="", index=True)
            payload = JSONField()
            created = peewee.FloatField(default=time.time)
            attempts = peewee.IntegerField(default=0)


        class Setting(BaseModel):
            key = peewee.CharField(primary_key=True)
            value = peewee.TextField()


        self.Worker, self.Task, self.TaskParent = Worker, Task, TaskParent
        self.TaskFailure, self.Blocklist = TaskFailure, Blocklist
        self.UpstreamItem, self.Setting = UpstreamItem, Setting
        self.all = [Worker, Task, TaskParent, TaskFailure, Blocklist, UpstreamItem, Setting]

def open_sqlite(path) -> peewee.SqliteDatabase:
    return peewee.SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, check_same_thread=False, timeout=10)


class Store:
    """The database, its models, and the one lock that serialises writes in this process.

    SQLite allows one writer at a time; taking a Python lock before
    BEGIN IMMEDIATE keeps threads from spinning in SQLite's busy handler, which
    sleeps in milliseconds. The IMMEDIATE transaction still protects against
    another process on the same file.
    """

    def __init__(self, db: peewee.Database):
        self.db = db
        self.m = Models(db)
        self.lock = threading.RLock()
        self._local = threading.local()
        self._begin = "BEGIN IMMEDIATE" if is_sqlite(db) else "BEGIN"
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

    def create_tables(self) -> None:
        with self.db.connection_context():
            self.db.create_tables(self.m.all, safe=True)
            self.db.execute_sql(
                "CREATE INDEX IF NOT EXISTS task_runnable_order ON task (job_priority DESC, priority DESC, seq ASC) "
                "WHERE status IN ('queued', 'claimed-by-manager', 'soft-failed')")
            # A worker's active task, without walking every task it ever ran.
            self.db.execute_sql(
                "CREATE INDEX IF NOT EXISTS task_active_by_worker ON task (worker, updated) WHERE status = 'active'")

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
            db.execute_sql(self._begin)
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

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        self.ensure_connected()
        row = self.m.Setting.get_or_none(self.m.Setting.key == key)
        return row.value if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.write():
            self.m.Setting.insert(key=key, value=value).on_conflict_replace().execute()
