"""The Server's tables, bound through a DatabaseProxy that `bind()` points at a database.

Ids are strings: random hex for users, projects and managers; time-ordered hex
for jobs (so ordering by id is ordering by submission); `<job id>-<NNNNNN>` for
tasks, given by the compiler's order, so a task's parents are known before any
row is written and a job's tasks sort in creation order.

A job carries its task counts per status, its task total and progress points,
maintained by the state machine, so listing jobs never counts tasks.

Only state_machine.py writes `Job.status` and `Task.status`.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from typing import Any, Iterable, Sequence

import peewee
from peewee import (BigIntegerField, BooleanField, CharField, DateTimeField, FloatField, ForeignKeyField,
                    IntegerField, Model, TextField)

from backend.db import JSONField, is_sqlite

database_proxy = peewee.DatabaseProxy()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def random_id() -> str:
    return uuid.uuid4().hex


def time_ordered_id() -> str:
    """32 hex digits: 48 bits of milliseconds since the epoch, then random bits."""
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def task_id(job_id: str, index: int) -> str:
    return f"{job_id}-{index:06d}"


class BaseModel(Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False
        only_save_dirty = True


class User(BaseModel):
    id = CharField(primary_key=True, max_length=32, default=random_id)
    name = CharField(unique=True, max_length=100)
    role = CharField(max_length=16, default="artist")  # admin | artist
    password_hash = CharField(null=True, max_length=200)
    created = DateTimeField(default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiToken(BaseModel):
    id = CharField(primary_key=True, max_length=32)
    user = ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    secret_hash = CharField(max_length=64)
    label = CharField(max_length=100, default="")
    created = DateTimeField(default=utcnow)
    expires = DateTimeField(null=True)  # None: until revoked


class Project(BaseModel):
    id = CharField(primary_key=True, max_length=32, default=random_id)
    name = CharField(unique=True, max_length=100)
    description = TextField(default="")
    created = DateTimeField(default=utcnow)
    quota_bytes = BigIntegerField(null=True)  # None: the Server's project_quota_bytes; 0: no limit
    allow_scripts = BooleanField(null=True)  # Blender may run scripts in the blend files (--enable-autoexec)


class ProjectMember(BaseModel):
    project = ForeignKeyField(Project, backref="members", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="memberships", on_delete="CASCADE")
    role = CharField(null=True, max_length=32)
    """None: a member (artist); 'manager-admin': also runs the workers of the Managers linked to the project."""

    class Meta:
        indexes = ((("project", "user"), True), (("user",), False))


class Manager(BaseModel):
    id = CharField(primary_key=True, max_length=32, default=random_id)
    name = CharField(unique=True, max_length=100)
    token_hash = CharField(max_length=64)
    url = CharField(default="", max_length=500)
    variables = JSONField(default=dict)
    nr_of_workers = IntegerField(default=0)
    worker_task_types = JSONField(default=list)
    version = CharField(null=True, max_length=50)
    idle_workers = IntegerField(default=0)
    created = DateTimeField(default=utcnow)
    last_seen = DateTimeField(null=True)
    last_startup = DateTimeField(null=True)
    last_worker_report = DateTimeField(null=True)
    queue_length = IntegerField(null=True)  # items in its upstream queue, as its last update batch said


class ProjectManager(BaseModel):
    project = ForeignKeyField(Project, backref="manager_links", on_delete="CASCADE")
    manager = ForeignKeyField(Manager, backref="project_links", on_delete="CASCADE")

    class Meta:
        indexes = ((("project", "manager"), True), (("manager",), False))


class Job(BaseModel):
    id = CharField(primary_key=True, max_length=32, default=time_ordered_id)
    name = CharField(max_length=200)
    job_type = CharField(max_length=100)
    status = CharField(max_length=32)
    status_reason = TextField(default="")
    priority = IntegerField(default=50)
    settings = JSONField(default=dict)
    metadata = JSONField(default=dict)
    project = ForeignKeyField(Project, backref="jobs", on_delete="RESTRICT")
    manager = ForeignKeyField(Manager, backref="jobs", null=True, on_delete="SET NULL")
    user = ForeignKeyField(User, backref="jobs", null=True, on_delete="SET NULL")
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow)
    start_paused = BooleanField(default=False)
    worker_tag = CharField(null=True, max_length=100)
    memory_mb = IntegerField(null=True)
    files_mode = CharField(max_length=16, default="shared")
    blocked = BooleanField(default=False)  # waiting for the jobs it depends on
    task_counts = JSONField(default=dict)
    tasks_total = IntegerField(default=0)
    tasks_to_store = IntegerField(default=0)  # of tasks_total: not stored yet (task_storing.py)
    progress_points = BigIntegerField(default=0)  # sum over tasks of 0..100

    class Meta:
        indexes = ((("project", "id"), False), (("status", "id"), False), (("manager", "status"), False))

    @property
    def progress(self) -> float:
        return round(self.progress_points / self.tasks_total, 2) if self.tasks_total else 0.0


class JobDependency(BaseModel):
    job = ForeignKeyField(Job, backref="dependencies", on_delete="CASCADE")
    depends_on = ForeignKeyField(Job, backref="dependents", on_delete="CASCADE")

    class Meta:
        indexes = ((("job", "depends_on"), True), (("depends_on",), False))


class JobLogEntry(BaseModel):
    """The job's operations log: who did what to it, when and why."""
    job = ForeignKeyField(Job, backref="log_entries", on_delete="CASCADE", index=True)
    created = DateTimeField(default=utcnow)
    who = CharField(max_length=200)
    what = TextField()
    reason = TextField(default="")


class Task(BaseModel):
    id = CharField(primary_key=True, max_length=48)
    job = ForeignKeyField(Job, backref="tasks", on_delete="CASCADE", index=False)
    name = CharField(max_length=200)
    task_type = CharField(max_length=50)
    status = CharField(max_length=32)
    priority = IntegerField(default=50)
    job_priority = IntegerField(default=50)
    commands = JSONField()
    parents = JSONField(default=list)
    io = JSONField(null=True)  # upload mode: {inputs, outputs, scratch, input_jobs}, see docs/protocol.md
    worker = CharField(null=True, max_length=200)
    failed_by_workers = JSONField(default=list)
    activity = TextField(default="")
    log_tail = TextField(default="")
    progress = FloatField(default=0)
    current_command_idx = IntegerField(default=0)
    command_progress = FloatField(default=0)
    metrics = JSONField(null=True)
    needs = CharField(max_length=16, default="")  # of a worker with slots (shared/slots.py); "": its type's default
    log_uploaded = DateTimeField(null=True)
    created = DateTimeField(default=utcnow)
    updated = DateTimeField(default=utcnow)  # last change its Manager must learn about (depsgraph cursor)
    started = DateTimeField(null=True)  # the latest run: became active (as the Manager received it)
    finished = DateTimeField(null=True)  # ... and stopped running; both cleared by a requeue
    canceled_by = CharField(null=True, max_length=200)  # who canceled this task alone; cleared by a requeue

    class Meta:
        # (job, status) and, for the depsgraph's pages, in cursor order: (updated, id) within them.
        indexes = ((("job", "status", "updated", "id"), False),)


class TaskRun(BaseModel):
    """One run of a task on a worker: the task's attempts, and the bars of its job's timeline."""
    task = CharField(max_length=48, index=True)
    job = ForeignKeyField(Job, on_delete="CASCADE", index=True)
    worker = CharField(null=True, max_length=200)
    started = DateTimeField()
    finished = DateTimeField(null=True, index=True)
    status = CharField(max_length=32)  # 'active' while it runs, then what it ended as
    activity = TextField(default="")
    log_tail = TextField(default="")


class WorkerAction(BaseModel):
    """An admin asked something of a worker; its Manager learns it on its next contact and confirms it."""
    id = CharField(primary_key=True, max_length=32, default=random_id)
    manager = ForeignKeyField(Manager, on_delete="CASCADE", index=True)
    worker_id = CharField(max_length=100)
    action = CharField(max_length=32)
    params = JSONField(default=dict)
    status = CharField(max_length=16, default="requested")  # requested | done | failed
    message = TextField(default="")
    requested_by = CharField(max_length=200)
    requested = DateTimeField(default=utcnow)
    done = DateTimeField(null=True)

    class Meta:
        indexes = ((("manager", "status"), False), (("manager", "worker_id"), False))


class JobArchive(BaseModel):
    """An archived job: its record is a gzip'd JSON file; its rows, files and outputs are gone."""
    id = CharField(primary_key=True, max_length=32)  # the job's id
    name = CharField(max_length=200)
    job_type = CharField(max_length=100)
    status = CharField(max_length=32)
    project = CharField(max_length=32, index=True)
    user_name = CharField(null=True, max_length=100)
    created = DateTimeField()
    archived = DateTimeField(default=utcnow)
    archived_by = CharField(max_length=200)
    size = BigIntegerField(default=0)
    sha256 = CharField(max_length=64)


class ArchivedRun(BaseModel):
    """One run of a task of an archived job, as the render-time report needs it (reports.py); the
    archive's record holds the same and more. Names are kept as they were: the project, user or
    Manager may be renamed or gone later."""
    job = CharField(max_length=32, index=True)
    job_name = CharField(max_length=200)
    project = CharField(max_length=32)
    project_name = CharField(max_length=100)
    user_name = CharField(null=True, max_length=100)
    manager_name = CharField(null=True, max_length=100)
    task = CharField(max_length=48)
    task_name = CharField(max_length=200)
    task_type = CharField(max_length=50)
    worker = CharField(null=True, max_length=200)
    started = DateTimeField()
    finished = DateTimeField(null=True, index=True)
    status = CharField(max_length=32)


class WebSession(BaseModel):
    """A browser's sign-in on the web pages; like an API token, only the secret's hash is kept."""
    id = CharField(primary_key=True, max_length=32)
    user = ForeignKeyField(User, backref="web_sessions", on_delete="CASCADE")
    secret_hash = CharField(max_length=64)
    created = DateTimeField(default=utcnow)
    expires = DateTimeField(index=True)


class Blob(BaseModel):
    """A stored file, by content; job files and outputs refer to it."""
    sha256 = CharField(primary_key=True, max_length=64)
    size = BigIntegerField()
    created = DateTimeField(default=utcnow)


class BlobGrant(BaseModel):
    """A user who uploaded a blob's bytes: proof of possession (see blobs.py)."""
    sha256 = CharField(max_length=64)
    user = ForeignKeyField(User, backref="blob_grants", on_delete="CASCADE")
    created = DateTimeField(default=utcnow)  # the latest upload

    class Meta:
        indexes = ((("sha256", "user"), True), (("user",), False))


class JobFile(BaseModel):
    job = ForeignKeyField(Job, backref="files", on_delete="CASCADE", index=False)
    relpath = CharField(max_length=1024)
    sha256 = CharField(max_length=64, index=True)
    size = BigIntegerField()

    class Meta:
        indexes = ((("job", "relpath"), True),)


class JobOutput(BaseModel):
    job = ForeignKeyField(Job, backref="outputs", on_delete="CASCADE", index=False)
    relpath = CharField(max_length=1024)
    sha256 = CharField(max_length=64, index=True)
    size = BigIntegerField()
    task = CharField(null=True, max_length=48)
    created = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("job", "relpath"), True),)


class WorkerRecord(BaseModel):
    """A worker as its Manager last reported it."""
    manager = ForeignKeyField(Manager, backref="workers", on_delete="CASCADE", index=False)
    worker_id = CharField(max_length=100)
    nickname = CharField(max_length=200)
    status = CharField(max_length=32)
    platform = CharField(max_length=20, default="")
    supported_task_types = JSONField(default=list)
    tags = JSONField(default=list)
    current_task = CharField(null=True, max_length=48)
    current_job = CharField(null=True, max_length=32)
    last_seen = CharField(null=True, max_length=40)
    status_requested = CharField(null=True, max_length=32)
    resources = JSONField(null=True)
    running_tasks = JSONField(default=list)  # [{id, job, name, needs}]: a worker with slots runs several
    reported = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("manager", "worker_id"), True),)


class LogRequest(BaseModel):
    """A task whose full log someone asked for; its Manager is told in the next batch answer."""
    task = CharField(primary_key=True, max_length=48)
    job = ForeignKeyField(Job, on_delete="CASCADE", index=True)
    manager = CharField(max_length=32, index=True)
    requested = DateTimeField(default=utcnow)


class AppliedUpdate(BaseModel):
    """Task update ids already applied, so a batch sent twice is applied once."""
    id = CharField(primary_key=True, max_length=100)
    manager = CharField(max_length=32)
    applied = DateTimeField(default=utcnow, index=True)


class ManagerNewsItem(BaseModel):
    """The stamp of the latest news of one kind for one Manager (news.py): what its held
    depsgraph request waits for."""
    manager = CharField(max_length=32)
    kind = CharField(max_length=32)
    stamp = DateTimeField()

    class Meta:
        primary_key = peewee.CompositeKey("manager", "kind")


class ServerClock(BaseModel):
    """One row: the latest change stamp any Server process gave (database.py's Clock)."""
    id = IntegerField(primary_key=True)
    last = DateTimeField()


ALL_MODELS = [User, ApiToken, WebSession, Project, ProjectMember, Manager, ProjectManager, Job, JobDependency,
              JobLogEntry, Task, TaskRun, Blob, BlobGrant, JobFile, JobOutput, WorkerRecord, LogRequest,
              AppliedUpdate, ServerClock, WorkerAction, JobArchive, ArchivedRun, ManagerNewsItem]


def bind(db: peewee.Database, create: bool = True) -> peewee.Database:
    """Point the models at `db` and bring its schema up to date (backend/server/migrations.py)."""
    database_proxy.initialize(db)
    if create:
        from .migrations import migrate
        migrate(db)
    return db


def placeholders(n: int) -> str:
    """`n` parameter markers for an `IN (...)` written out: Peewee spends microseconds on each
    element of a list it builds into SQL, which for pages of hundreds of ids was most of the work."""
    return ", ".join([database_proxy.obj.param] * n)


def move_tasks(ids: Sequence[str], from_status: str, to_status: str) -> int:
    """Tasks with these ids (at most a few hundred) that are in `from_status` go to `to_status`,
    by primary key; the row count. For the state machine only."""
    if not ids:
        return 0
    p = database_proxy.obj.param
    return database_proxy.obj.execute_sql(
        f'UPDATE "task" SET "status" = {p} WHERE "id" IN ({placeholders(len(ids))}) AND "status" = {p}',
        (to_status, *ids, from_status)).rowcount


def rows_by_ids(model: type[Model], fields: Sequence[peewee.Field], ids: Sequence[str]) -> list[Model]:
    """Instances of `model` with these primary keys (at most a few hundred), only `fields` read."""
    if not ids:
        return []
    cols = ", ".join(f'"{f.column_name}"' for f in fields)
    pk = model._meta.primary_key.column_name
    return list(model.raw(f'SELECT {cols} FROM "{model._meta.table_name}" WHERE "{pk}" IN '
                          f'({placeholders(len(ids))})', *ids))


def start_run(task_id: str, job_id: str, worker: str | None, started: dt.datetime) -> None:
    """A new run of the task begins at `started`; a run of it nobody closed ends there, canceled.
    Written out by hand, as move_tasks: on the path of every update batch, Peewee building these
    statements cost the Server more than the database took to run them."""
    db, p = database_proxy.obj, database_proxy.obj.param
    at = TaskRun.started.db_value(started)
    db.execute_sql(f'UPDATE "task_run" SET "finished" = {p}, "status" = {p} WHERE "task" = {p} AND "finished" IS NULL',
                   (at, "canceled", task_id))
    db.execute_sql(f'INSERT INTO "task_run" ("task", "job_id", "worker", "started", "finished", "status", "activity", '
                   f'"log_tail") VALUES ({p}, {p}, {p}, {p}, NULL, {p}, {p}, {p})',
                   (task_id, job_id, worker, at, "active", "", ""))


def finish_run(task_id: str, job_id: str, worker: str | None, started: dt.datetime | None, finished: dt.datetime,
               status: str, activity: str, log_tail: str) -> None:
    """The task's open run ends at `finished` as `status`; with no open run (its start never reached
    this Server, or came before runs were kept) a whole run from `started` is recorded, when
    `started` is given."""
    db, p = database_proxy.obj, database_proxy.obj.param
    at = TaskRun.finished.db_value(finished)
    closed = db.execute_sql(f'UPDATE "task_run" SET "finished" = {p}, "status" = {p}, "activity" = {p}, '
                            f'"log_tail" = {p} WHERE "task" = {p} AND "finished" IS NULL',
                            (at, status, activity, log_tail, task_id)).rowcount
    if not closed and started is not None:
        db.execute_sql(f'INSERT INTO "task_run" ("task", "job_id", "worker", "started", "finished", "status", '
                       f'"activity", "log_tail") VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})',
                       (task_id, job_id, worker, TaskRun.started.db_value(started), at, status, activity, log_tail))


_UPDATES: dict = {}


def save_dirty(instance: Model) -> None:
    """`instance.save()` for a row that exists: its changed fields, by primary key, with the
    statement cached per set of fields (Peewee builds it anew each time, which on the busy
    path of update batches cost more than the database did)."""
    dirty = instance._dirty
    if not dirty:
        return
    model, db = type(instance), database_proxy.obj
    names = tuple(sorted(dirty))
    key = (model, names, db.param)
    entry = _UPDATES.get(key)
    if entry is None:
        meta = model._meta
        fields = [meta.fields[n] for n in names]
        sets = ", ".join(f'"{f.column_name}" = {db.param}' for f in fields)
        entry = _UPDATES[key] = (f'UPDATE "{meta.table_name}" SET {sets} WHERE "{meta.primary_key.column_name}" '
                                 f'= {db.param}', fields)
    sql, fields = entry
    values = [None if (v := instance.__data__.get(f.name)) is None else f.db_value(v) for f in fields]
    db.execute_sql(sql, (*values, instance._pk))
    instance._dirty.clear()


def stamp_value(value: dt.datetime):
    """A datetime as bulk_insert must pass it: the text Peewee would store on SQLite."""
    return value.isoformat(" ") if is_sqlite(database_proxy.obj) else value


def sql_literal(value: Any) -> str:
    """A constant as SQL text (standard quoting; PostgreSQL's standard_conforming_strings is on)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return repr(value)
    if isinstance(value, dt.datetime):
        value = value.isoformat(" ")
    if isinstance(value, str):
        if "\0" in value:
            raise ValueError("NUL in a SQL literal")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def bulk_insert(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]],
                batch: int = 2000, constants: dict[str, Any] | None = None) -> int:
    """Insert plain-value rows fast, below Peewee's per-value machinery; the caller's transaction.

    Values must already be what the database stores (JSON as text, datetimes). `constants`:
    columns with the same value in every row, written into the statement once instead of bound
    per row (binding is most of an insert's cost in Python: a 100,000-task job binds 8 values a
    row instead of 19). SQLite takes `executemany`; PostgreSQL multi-row VALUES via psycopg2's
    execute_values.
    """
    db = database_proxy.obj
    table = model._meta.table_name
    constants = constants or {}
    names = [*columns, *constants]
    cols = ", ".join(model._meta.fields[c].column_name if c in model._meta.fields else c for c in names)
    fixed = "".join(f", {sql_literal(v)}" for v in constants.values())
    count = 0
    cursor = db.cursor()
    if is_sqlite(db):
        sql = f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(columns))}{fixed})'
        run = cursor.executemany
    else:
        from psycopg2.extras import execute_values
        sql = f'INSERT INTO "{table}" ({cols}) VALUES %s'
        template = f'({", ".join(["%s"] * len(columns))}{fixed.replace("%", "%%")})'

        def run(sql, rows):
            execute_values(cursor, sql, rows, template=template, page_size=batch)
    buf: list = []
    for row in rows:
        buf.append(row)
        if len(buf) >= batch:
            run(sql, buf)
            count += len(buf)
            buf = []
    if buf:
        run(sql, buf)
        count += len(buf)
    return count
