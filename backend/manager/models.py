"""The Manager's tables (Peewee on SQLite in WAL mode).

Tasks are the Manager's copy of what the Server handed it; workers, the
blocklist and the upstream queue are the Manager's own. JSON columns hold
lists and documents that are only ever read whole.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import peewee

from backend.db import SQLITE_PRAGMAS, write_transaction


class JSONField(peewee.TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

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
        self._sql_cache: dict = {}

    # --- hot paths ----------------------------------------------------------------
    # Peewee builds SQL anew for every query, which for these wide tables costs about
    # a millisecond; the dispatch path (auth, claim, update) uses cached statements.

    def _select_sql(self, model) -> tuple[str, list]:
        key = ("select", model)
        if key not in self._sql_cache:
            fields = list(model._meta.sorted_fields)
            cols = ", ".join(f'"{f.column_name}"' for f in fields)
            pk = model._meta.primary_key.column_name
            self._sql_cache[key] = (f'SELECT {cols} FROM "{model._meta.table_name}" WHERE "{pk}" = ?', fields)
        return self._sql_cache[key]

    def row(self, model, pk):
        """The row with this primary key as a model instance, or None."""
        sql, fields = self._select_sql(model)
        self.ensure_connected()
        found = self.db.execute_sql(sql, (pk,)).fetchone()
        if found is None:
            return None
        inst = model(__no_default__=True)
        inst.__data__ = {f.name: (f.python_value(v) if v is not None else None) for f, v in zip(fields, found)}
        inst._dirty = set()
        return inst

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

    def ensure_connected(self) -> None:
        """Each server thread keeps its own connection open (Peewee's state is per thread)."""
        if self.db.is_closed():
            self.db.connect(reuse_if_open=True)

    @contextmanager
    def write(self):
        self.ensure_connected()
        with self.lock:
            if self.db.in_transaction():
                yield
                return
            with write_transaction(self.db):
                yield

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        self.ensure_connected()
        row = self.m.Setting.get_or_none(self.m.Setting.key == key)
        return row.value if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.write():
            self.m.Setting.insert(key=key, value=value).on_conflict_replace().execute()
