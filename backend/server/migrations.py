"""The Server's schema, step by step, from its first release (run by backend.migrations).

Each step's tables are frozen here as they were when the step was written,
never imported from models.py, which keeps changing: step 1 must build the
first release's schema for as long as there are databases to upgrade from it.
`tests/integration/server/test_migrations.py` checks that running every step
gives exactly the tables, columns and indexes that models.py describes, so a
model change without a step here fails the tests.

Adding a step: append `Step(N, "what", fn)`; `fn(schema)` makes the change
with `schema.add_column`, `schema.create_tables` (models frozen in this file)
or `schema.execute`; then test it on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import peewee
from peewee import (BigIntegerField, BooleanField, CharField, DateTimeField, FloatField, ForeignKeyField,
                    IntegerField, Model, TextField)

from backend import migrations
from backend.migrations import Schema, Step

SERVICE = "flamenco-server"


class _Frozen(Model):
    class Meta:
        legacy_table_names = False


# --- step 1: the first release (commit 0c2f2a7) -----------------------------------------

class User(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    name = CharField(unique=True, max_length=100)
    role = CharField(max_length=16)
    password_hash = CharField(null=True, max_length=200)
    created = DateTimeField()


class ApiToken(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    user = ForeignKeyField(User, on_delete="CASCADE")
    secret_hash = CharField(max_length=64)
    label = CharField(max_length=100)
    created = DateTimeField()
    last_used = DateTimeField(null=True)


class Project(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    name = CharField(unique=True, max_length=100)
    description = TextField()
    created = DateTimeField()


class ProjectMember(_Frozen):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    user = ForeignKeyField(User, on_delete="CASCADE")

    class Meta:
        indexes = ((("project", "user"), True), (("user",), False))


class Manager(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    name = CharField(unique=True, max_length=100)
    token_hash = CharField(max_length=64)
    url = CharField(max_length=500)
    variables = TextField()
    nr_of_workers = IntegerField()
    worker_task_types = TextField()
    version = CharField(null=True, max_length=50)
    idle_workers = IntegerField()
    created = DateTimeField()
    last_seen = DateTimeField(null=True)
    last_startup = DateTimeField(null=True)
    last_worker_report = DateTimeField(null=True)


class ProjectManager(_Frozen):
    project = ForeignKeyField(Project, on_delete="CASCADE")
    manager = ForeignKeyField(Manager, on_delete="CASCADE")

    class Meta:
        indexes = ((("project", "manager"), True), (("manager",), False))


class Job(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    name = CharField(max_length=200)
    job_type = CharField(max_length=100)
    status = CharField(max_length=32)
    status_reason = TextField()
    priority = IntegerField()
    settings = TextField()
    metadata = TextField()
    project = ForeignKeyField(Project, on_delete="RESTRICT")
    manager = ForeignKeyField(Manager, null=True, on_delete="SET NULL")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL")
    created = DateTimeField()
    updated = DateTimeField()
    start_paused = BooleanField()
    worker_tag = CharField(null=True, max_length=100)
    memory_mb = IntegerField(null=True)
    files_mode = CharField(max_length=16)
    blocked = BooleanField()
    task_counts = TextField()
    tasks_total = IntegerField()
    progress_points = BigIntegerField()

    class Meta:
        indexes = ((("project", "id"), False), (("status", "id"), False), (("manager", "status"), False))


class JobDependency(_Frozen):
    job = ForeignKeyField(Job, on_delete="CASCADE", backref="+")
    depends_on = ForeignKeyField(Job, on_delete="CASCADE", backref="+")

    class Meta:
        indexes = ((("job", "depends_on"), True), (("depends_on",), False))


class JobLogEntry(_Frozen):
    job = ForeignKeyField(Job, on_delete="CASCADE", index=True)
    created = DateTimeField()
    who = CharField(max_length=200)
    what = TextField()
    reason = TextField()


class Task(_Frozen):
    id = CharField(primary_key=True, max_length=48)
    job = ForeignKeyField(Job, on_delete="CASCADE", index=False)
    name = CharField(max_length=200)
    task_type = CharField(max_length=50)
    status = CharField(max_length=32)
    priority = IntegerField()
    job_priority = IntegerField()
    commands = TextField()
    parents = TextField()
    worker = CharField(null=True, max_length=200)
    failed_by_workers = TextField()
    activity = TextField()
    log_tail = TextField()
    progress = FloatField()
    current_command_idx = IntegerField()
    command_progress = FloatField()
    metrics = TextField(null=True)
    log_uploaded = DateTimeField(null=True)
    created = DateTimeField()
    updated = DateTimeField()

    class Meta:
        indexes = ((("job", "status"), False),)


class Blob(_Frozen):
    sha256 = CharField(primary_key=True, max_length=64)
    size = BigIntegerField()
    created = DateTimeField()


class JobFile(_Frozen):
    job = ForeignKeyField(Job, on_delete="CASCADE", index=False)
    relpath = CharField(max_length=1024)
    sha256 = CharField(max_length=64, index=True)
    size = BigIntegerField()

    class Meta:
        indexes = ((("job", "relpath"), True),)


class JobOutput(_Frozen):
    job = ForeignKeyField(Job, on_delete="CASCADE", index=False)
    relpath = CharField(max_length=1024)
    sha256 = CharField(max_length=64, index=True)
    size = BigIntegerField()
    task = CharField(null=True, max_length=48)
    created = DateTimeField()

    class Meta:
        indexes = ((("job", "relpath"), True),)


class WorkerRecord(_Frozen):
    manager = ForeignKeyField(Manager, on_delete="CASCADE", index=False)
    worker_id = CharField(max_length=100)
    nickname = CharField(max_length=200)
    status = CharField(max_length=32)
    platform = CharField(max_length=20)
    supported_task_types = TextField()
    tags = TextField()
    current_task = CharField(null=True, max_length=48)
    current_job = CharField(null=True, max_length=32)
    last_seen = CharField(null=True, max_length=40)
    status_requested = CharField(null=True, max_length=32)
    resources = TextField(null=True)
    reported = DateTimeField()

    class Meta:
        indexes = ((("manager", "worker_id"), True),)


class LogRequest(_Frozen):
    task = CharField(primary_key=True, max_length=48)
    job = ForeignKeyField(Job, on_delete="CASCADE", index=True)
    manager = CharField(max_length=32, index=True)
    requested = DateTimeField()


class AppliedUpdate(_Frozen):
    id = CharField(primary_key=True, max_length=100)
    manager = CharField(max_length=32)
    applied = DateTimeField(index=True)


FIRST_RELEASE = [User, ApiToken, Project, ProjectMember, Manager, ProjectManager, Job, JobDependency,
                 JobLogEntry, Task, Blob, JobFile, JobOutput, WorkerRecord, LogRequest, AppliedUpdate]


def first_release(schema: Schema) -> None:
    schema.create_tables(FIRST_RELEASE)


# --- step 2: when each task's latest run started and finished (commit 0a428a3) ----------

def task_run_times(schema: Schema) -> None:
    schema.add_column("task", "started", DateTimeField(null=True))
    schema.add_column("task", "finished", DateTimeField(null=True))


# --- step 3: sign-ins on the web pages (commit 0a428a3) ---------------------------------

class WebSession(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    user = ForeignKeyField(User, on_delete="CASCADE")
    secret_hash = CharField(max_length=64)
    created = DateTimeField()
    expires = DateTimeField(index=True)


def web_sessions(schema: Schema) -> None:
    schema.create_tables([WebSession])


# --- step 4: one change clock for every Server process on the database -----------------

class ServerClock(_Frozen):
    id = IntegerField(primary_key=True)
    last = DateTimeField()


def server_clock(schema: Schema) -> None:
    schema.create_tables([ServerClock])
    mark = "?" if schema.sqlite else "%s"
    start = dt.datetime(2000, 1, 1)
    schema.execute(f"INSERT INTO server_clock (id, last) VALUES (1, {mark})",
                   (start.isoformat(" ") if schema.sqlite else start,))


# --- step 5: API tokens no longer record their last use (nothing read it) --------------

def token_last_used(schema: Schema) -> None:
    schema.drop_column("api_token", "last_used")


# --- step 6: security (issue 12): token expiry, project quotas and script policy, who uploaded a blob

class BlobGrant(_Frozen):
    sha256 = CharField(max_length=64)
    user = ForeignKeyField(User, on_delete="CASCADE")
    created = DateTimeField()

    class Meta:
        indexes = ((("sha256", "user"), True), (("user",), False))


def security(schema: Schema) -> None:
    schema.add_column("api_token", "expires", DateTimeField(null=True))
    schema.add_column("project", "quota_bytes", BigIntegerField(null=True))
    schema.add_column("project", "allow_scripts", BooleanField(null=True))
    schema.create_tables([BlobGrant])


# --- step 7: upload mode, what each task reads and writes (docs/protocol.md) -------------

def task_io(schema: Schema) -> None:
    schema.add_column("task", "io", TextField(null=True))


# --- step 8: the pages of issue 13: task runs, worker actions, archived jobs, manager-admins ------------

class TaskRun(_Frozen):
    task = CharField(max_length=48, index=True)
    job = ForeignKeyField(Job, on_delete="CASCADE", index=True)
    worker = CharField(null=True, max_length=200)
    started = DateTimeField()
    finished = DateTimeField(null=True, index=True)
    status = CharField(max_length=32)
    activity = TextField()
    log_tail = TextField()


class WorkerAction(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    manager = ForeignKeyField(Manager, on_delete="CASCADE", index=True)
    worker_id = CharField(max_length=100)
    action = CharField(max_length=32)
    params = TextField()
    status = CharField(max_length=16)
    message = TextField()
    requested_by = CharField(max_length=200)
    requested = DateTimeField()
    done = DateTimeField(null=True)

    class Meta:
        indexes = ((("manager", "status"), False), (("manager", "worker_id"), False))


class JobArchive(_Frozen):
    id = CharField(primary_key=True, max_length=32)
    name = CharField(max_length=200)
    job_type = CharField(max_length=100)
    status = CharField(max_length=32)
    project = CharField(max_length=32, index=True)
    user_name = CharField(null=True, max_length=100)
    created = DateTimeField()
    archived = DateTimeField()
    archived_by = CharField(max_length=200)
    size = BigIntegerField()
    sha256 = CharField(max_length=64)


def farm_pages(schema: Schema) -> None:
    schema.create_tables([TaskRun, WorkerAction, JobArchive])
    schema.add_column("project_member", "role", CharField(null=True, max_length=32))
    schema.add_column("manager", "queue_length", IntegerField(null=True))
    schema.add_column("task", "canceled_by", CharField(null=True, max_length=200))


# --- step 9: workers with slots: what a task needs of a worker, what a worker runs -----------

def worker_slots(schema: Schema) -> None:
    schema.add_column("task", "needs", CharField(max_length=16, default=""))
    schema.add_column("worker_record", "running_tasks", TextField(default="[]"))


# --- step 10: archived task runs, for render-time reports ---------------------------------

class ArchivedRun(_Frozen):
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


def archived_runs(schema: Schema) -> None:
    schema.create_tables([ArchivedRun])


# --- step 11: the depsgraph in pages and news for Managers' held requests (issue 11) -----

class ManagerNewsItem(_Frozen):
    manager = CharField(max_length=32)
    kind = CharField(max_length=32)
    stamp = DateTimeField()

    class Meta:
        primary_key = peewee.CompositeKey("manager", "kind")


def depsgraph_pages(schema: Schema) -> None:
    # (job, status, updated, id) serves what (job, status) served and each page of a
    # Manager's depsgraph, read in (updated, id) order per status.
    schema.execute("CREATE INDEX IF NOT EXISTS task_job_id_status_updated_id ON task (job_id, status, updated, id)")
    schema.execute("DROP INDEX IF EXISTS task_job_id_status")
    schema.create_tables([ManagerNewsItem])


# --- step 12: a big job's tasks stored in batches after its submission answered (issue 11) --

def tasks_to_store(schema: Schema) -> None:
    # In place: Peewee's migrator makes a NOT NULL column on SQLite by copying the table,
    # and dropping the old job table would cascade to every task.
    if not schema.has_column("job", "tasks_to_store"):
        schema.execute("ALTER TABLE job ADD COLUMN tasks_to_store INTEGER NOT NULL DEFAULT 0")


STEPS = [
    Step(1, "first release", first_release),
    Step(2, "task run times", task_run_times),
    Step(3, "web sessions", web_sessions),
    Step(4, "server clock", server_clock),
    Step(5, "no token last-used time", token_last_used),
    Step(6, "token expiry, project quotas and scripts, blob grants", security),
    Step(7, "task io (upload mode)", task_io),
    Step(8, "task runs, worker actions, job archives, manager-admins, queue lengths, tasks canceled alone",
         farm_pages),
    Step(9, "workers with slots: task needs, running tasks", worker_slots),
    Step(10, "archived task runs (render-time reports)", archived_runs),
    Step(11, "depsgraph pages (task index job, status, updated, id) and news for Managers", depsgraph_pages),
    Step(12, "a big job's tasks stored after its submission answered", tasks_to_store),
]

ADOPTED_VERSION = 1
"""Databases made before versioned migrations have at least the first release's tables; steps
2 and 3 are written to find their columns and table there already when later code added them."""


def adopt(schema: Schema) -> int:
    return ADOPTED_VERSION if schema.has_table("job") else 0


def migrate(db: peewee.Database) -> list[Step]:
    """Bring the Server's database to this code's schema; the steps applied."""
    return migrations.migrate(db, STEPS, SERVICE, adopt)


def status(db: peewee.Database) -> migrations.Status:
    return migrations.status(db, STEPS)
