"""The Manager's schema, step by step, from its first release (run by backend.migrations).

Step 1 is the first release's schema (commit 4ca9913) written out as the SQL
that release created, so it stays what it was whatever models.py becomes.
tests/unit/manager/test_manager_migrations.py checks that running every step
gives exactly the tables, columns and indexes of models.py (plus the partial
indexes of store.py), so a model change without a step fails the tests.

Adding a step: append `Step(N, "what", fn)`; `fn(schema)` makes the change with
`schema.add_column`, `schema.drop_column`, `schema.execute` (SQLite only: the
Manager keeps its state in one SQLite file).
"""

from __future__ import annotations

import peewee

from backend import migrations
from backend.migrations import Schema, Step
from shared import slots
from shared.statuses import TaskStatus as TS

from .store import IN_PROGRESS_SQL, RUNNABLE_SQL

SERVICE = "flamenco-manager"

_RELEASE_1 = (
    'CREATE TABLE "blocklist" ("worker" VARCHAR(255) NOT NULL, "job" VARCHAR(255) NOT NULL, "task_type" '
    'VARCHAR(255) NOT NULL, "created" REAL NOT NULL, PRIMARY KEY ("worker", "job", "task_type"))',
    'CREATE TABLE "setting" ("key" VARCHAR(255) NOT NULL PRIMARY KEY, "value" TEXT NOT NULL)',
    'CREATE TABLE "task" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, "seq" INTEGER NOT NULL, "job" VARCHAR(255) NOT '
    'NULL, "name" VARCHAR(255) NOT NULL, "status" VARCHAR(255) NOT NULL, "task_type" VARCHAR(255) NOT NULL, '
    '"priority" INTEGER NOT NULL, "job_priority" INTEGER NOT NULL, "job_type" VARCHAR(255) NOT NULL, "manager" '
    'VARCHAR(255) NOT NULL, "project" VARCHAR(255) NOT NULL, "user" VARCHAR(255) NOT NULL, "commands" TEXT NOT '
    'NULL, "parents" TEXT NOT NULL, "failed_by_workers" TEXT NOT NULL, "worker" VARCHAR(255), "job_worker_tag" '
    'VARCHAR(255), "job_memory_mb" INTEGER, "job_files_mode" VARCHAR(255), "etag" VARCHAR(255), "server_updated" '
    'VARCHAR(255), "local" INTEGER NOT NULL, "last_worker_ping" REAL, "activity" TEXT NOT NULL, '
    '"current_command_idx" INTEGER NOT NULL, "task_progress_percentage" REAL NOT NULL, '
    '"command_progress_percentage" REAL NOT NULL, "updated" REAL NOT NULL)',
    'CREATE INDEX "task_seq" ON "task" ("seq")',
    'CREATE INDEX "task_job" ON "task" ("job")',
    'CREATE INDEX "task_worker" ON "task" ("worker")',
    'CREATE INDEX "task_status_job_priority_priority_seq" ON "task" ("status", "job_priority", "priority", "seq")',
    'CREATE TABLE "task_failure" ("task" VARCHAR(255) NOT NULL, "worker" VARCHAR(255) NOT NULL, "job" VARCHAR(255) '
    'NOT NULL, "task_type" VARCHAR(255) NOT NULL, "created" REAL NOT NULL, PRIMARY KEY ("task", "worker"))',
    'CREATE INDEX "task_failure_worker_job_task_type" ON "task_failure" ("worker", "job", "task_type")',
    'CREATE TABLE "task_parent" ("task" VARCHAR(255) NOT NULL, "parent" VARCHAR(255) NOT NULL, PRIMARY KEY ("task", '
    '"parent"))',
    'CREATE INDEX "task_parent_task" ON "task_parent" ("task")',
    'CREATE INDEX "task_parent_parent" ON "task_parent" ("parent")',
    'CREATE TABLE "upstream_item" ("seq" INTEGER NOT NULL PRIMARY KEY, "kind" VARCHAR(255) NOT NULL, "key" '
    'VARCHAR(255) NOT NULL, "payload" TEXT NOT NULL, "created" REAL NOT NULL, "attempts" INTEGER NOT NULL)',
    'CREATE INDEX "upstream_item_kind" ON "upstream_item" ("kind")',
    'CREATE INDEX "upstream_item_key" ON "upstream_item" ("key")',
    'CREATE TABLE "worker" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, "secret_hash" VARCHAR(255) NOT NULL, '
    '"nickname" VARCHAR(255) NOT NULL, "platform" VARCHAR(255) NOT NULL, "supported_task_types" TEXT NOT NULL, '
    '"tags" TEXT NOT NULL, "status" VARCHAR(255) NOT NULL, "status_requested" VARCHAR(255), "lazy_status_request" '
    'INTEGER NOT NULL, "current_task" VARCHAR(255), "last_seen" REAL NOT NULL, "last_activity" VARCHAR(255) NOT '
    'NULL, "resources" TEXT, "software" VARCHAR(255) NOT NULL, "address" VARCHAR(255) NOT NULL, "created" REAL NOT '
    'NULL, "sleep_active" INTEGER NOT NULL, "sleep_days" VARCHAR(255) NOT NULL, "sleep_start" VARCHAR(255) NOT NULL, '
    '"sleep_end" VARCHAR(255) NOT NULL, "sleep_next_check" REAL, "last_output_produced" REAL NOT NULL)',
    'CREATE INDEX "worker_status" ON "worker" ("status")',
    "CREATE INDEX task_runnable_order ON task (job_priority DESC, priority DESC, seq ASC) "
    "WHERE status IN ('queued', 'claimed-by-manager', 'soft-failed')",
    "CREATE INDEX task_active_by_worker ON task (worker, updated) WHERE status = 'active'",
)


def _release_1(schema: Schema) -> None:
    for sql in _RELEASE_1:
        schema.execute(sql)


def _drop_server_updated(schema: Schema) -> None:
    """The Server's `_updated` of each task was stored and never read; the runnable-task index
    is spelled from shared.statuses, as the scheduler's queries are."""
    schema.drop_column("task", "server_updated")
    schema.execute("DROP INDEX IF EXISTS task_runnable_order")
    schema.execute("CREATE INDEX task_runnable_order ON task (job_priority DESC, priority DESC, seq ASC) "
                   f"WHERE status IN {RUNNABLE_SQL}")
    schema.execute("DROP INDEX IF EXISTS task_active_by_worker")
    schema.execute(f"CREATE INDEX task_active_by_worker ON task (worker, updated) WHERE status = '{TS.ACTIVE}'")


_UPLOAD_MODE = (
    'ALTER TABLE "task" ADD COLUMN "io" TEXT',
    'CREATE TABLE "job_file" ("job" VARCHAR(255) NOT NULL, "relpath" VARCHAR(255) NOT NULL, "sha256" VARCHAR(255) '
    'NOT NULL, "size" INTEGER NOT NULL, PRIMARY KEY ("job", "relpath"))',
    'CREATE INDEX "job_file_sha256" ON "job_file" ("sha256")',
    'CREATE TABLE "job_output" ("job" VARCHAR(255) NOT NULL, "relpath" VARCHAR(255) NOT NULL, "sha256" VARCHAR(255) '
    'NOT NULL, "size" INTEGER NOT NULL, "task" VARCHAR(255), "scratch" INTEGER NOT NULL, "created" REAL NOT NULL, '
    'PRIMARY KEY ("job", "relpath"))',
    'CREATE INDEX "job_output_sha256" ON "job_output" ("sha256")',
    'CREATE TABLE "blob" ("sha256" VARCHAR(255) NOT NULL PRIMARY KEY, "size" INTEGER NOT NULL, "last_used" REAL '
    'NOT NULL)',
    'CREATE INDEX "blob_last_used" ON "blob" ("last_used")',
)


def _upload_mode(schema: Schema) -> None:
    """Upload mode between tasks: what each task reads and writes (task.io), the job manifests, the
    job outputs by path and the file store's blobs (files already in the store are listed by the
    file store itself when it first evicts)."""
    for sql in _UPLOAD_MODE:
        schema.execute(sql)


def _admin_and_tags(schema: Schema) -> None:
    """The admin's tokens and page sessions (its password is a setting); tags the admin gave workers."""
    schema.execute('CREATE TABLE IF NOT EXISTS "admin_token" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, "secret_hash" '
                   'VARCHAR(255) NOT NULL, "label" VARCHAR(255) NOT NULL, "created" REAL NOT NULL, "last_used" REAL)')
    schema.execute('CREATE TABLE IF NOT EXISTS "admin_session" ("id" VARCHAR(255) NOT NULL PRIMARY KEY, '
                   '"secret_hash" VARCHAR(255) NOT NULL, "created" REAL NOT NULL, "expires" REAL NOT NULL)')
    schema.execute('CREATE INDEX IF NOT EXISTS "admin_session_expires" ON "admin_session" ("expires")')
    schema.execute('CREATE TABLE IF NOT EXISTS "worker_admin_tags" ("worker" VARCHAR(255) NOT NULL PRIMARY KEY, '
                   '"tags" TEXT NOT NULL)')


def _task_needs(schema: Schema) -> None:
    """Workers with slots: what each task needs of a worker, its task type's default for the
    tasks already held."""
    schema.add_column("task", "needs", peewee.CharField(default=slots.CPU))
    light = ", ".join(f"'{t}'" for t in sorted(slots.LIGHT_TASK_TYPES))
    schema.execute(f"UPDATE task SET needs = '{slots.LIGHT}' WHERE task_type IN ({light})")


def _in_progress_by_worker(schema: Schema) -> None:
    """What a worker still runs once one of its tasks ends (workers.release_task) was looked up
    through every task the worker ever ran: dispatch slowed as the farm's history grew."""
    schema.execute(f"CREATE INDEX task_in_progress_by_worker ON task (worker, updated) "
                   f"WHERE status IN {IN_PROGRESS_SQL}")


STEPS = [
    Step(1, "first release", _release_1),
    Step(2, "task.server_updated dropped; partial indexes spelled from shared.statuses", _drop_server_updated),
    Step(3, "upload mode: task.io, job files, job outputs, the file store's blobs", _upload_mode),
    Step(4, "admin tokens and page sessions; tags the admin gave workers", _admin_and_tags),
    Step(5, "task.needs (workers with slots)", _task_needs),
    Step(6, "an index of the tasks each worker runs", _in_progress_by_worker),
]


def _adopt(schema: Schema) -> int:
    """A database made before the Manager had versioned migrations is the first release's."""
    return 1 if schema.has_table("task") else 0


def migrate(db) -> list[Step]:
    return migrations.migrate(db, STEPS, SERVICE, _adopt)


def status(db) -> migrations.Status:
    return migrations.status(db, STEPS)
