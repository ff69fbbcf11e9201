"""The Manager's tables (Peewee on SQLite in WAL mode).

Tasks are the Manager's copy of what the Server handed it; workers, the
blocklist and the upstream queue are the Manager's own. JSON columns hold
lists and documents that are only ever read whole.
"""

from __future__ import annotations

import json
import time

import peewee

from backend.db import JSONField as _JSONField


class RawJSON(str):
    """A JSON column's text as read by the fast row reader, decoded on first access."""


class _LazyJSONAccessor(peewee.FieldAccessor):
    def __get__(self, instance, instance_type=None):
        if instance is None:
            return self.field
        value = instance.__data__.get(self.name)
        if type(value) is RawJSON:
            value = instance.__data__[self.name] = json.loads(value)
        return value


class JSONField(_JSONField):
    """JSON that the hot path may leave undecoded (RawJSON) until someone reads it."""
    accessor_class = _LazyJSONAccessor

    def db_value(self, value):
        if type(value) is RawJSON:
            return str(value)
        return super().db_value(value)


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
            io = JSONField(null=True)
            """Upload mode: {inputs, outputs, scratch, input_jobs} (docs/protocol.md)."""
            needs = peewee.CharField(default="cpu")
            """What it needs of a worker (shared/slots.py), its task type's default filled in."""
            etag = peewee.CharField(null=True)
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
            'outputs' ({job, task, files: {relpath: {sha256, size}}, removed: [relpath]}),
            'output' ({job, task, relpath, sha256, spool}; queued by earlier versions).
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

        class JobFile(BaseModel):
            """Upload mode: a job's files as the Server listed them (what its tasks need)."""
            job = peewee.CharField()
            relpath = peewee.CharField()
            sha256 = peewee.CharField(index=True)
            size = peewee.IntegerField()

            class Meta:
                primary_key = peewee.CompositeKey("job", "relpath")

        class JobOutput(BaseModel):
            """Upload mode: what the job's tasks made, by path in the job's tree.

            `scratch` outputs are only for later tasks of the job and never go to the Server."""
            job = peewee.CharField()
            relpath = peewee.CharField()
            sha256 = peewee.CharField(index=True)
            size = peewee.IntegerField()
            task = peewee.CharField(null=True)
            scratch = peewee.BooleanField(default=False)
            created = peewee.FloatField(default=time.time)

            class Meta:
                primary_key = peewee.CompositeKey("job", "relpath")

        class Blob(BaseModel):
            """A file in the Manager's file store (job files and outputs, by checksum)."""
            sha256 = peewee.CharField(primary_key=True)
            size = peewee.IntegerField()
            last_used = peewee.FloatField(index=True)

        class WorkerAdminTags(BaseModel):
            """Tags the admin gave a worker: they win over what the worker sends at sign-on."""
            worker = peewee.CharField(primary_key=True)
            tags = JSONField(default=list)

        class AdminToken(BaseModel):
            """A bearer token for the admin API (`flamenco-manager create-admin-token`); only its hash is kept."""
            id = peewee.CharField(primary_key=True)
            secret_hash = peewee.CharField()
            label = peewee.CharField(default="")
            created = peewee.FloatField(default=time.time)
            last_used = peewee.FloatField(null=True)

        class AdminSession(BaseModel):
            """A browser signed in to the Manager's pages with the admin password; only the secret's hash is kept."""
            id = peewee.CharField(primary_key=True)
            secret_hash = peewee.CharField()
            created = peewee.FloatField(default=time.time)
            expires = peewee.FloatField(index=True)

        self.Worker, self.Task, self.TaskParent = Worker, Task, TaskParent
        self.TaskFailure, self.Blocklist = TaskFailure, Blocklist
        self.UpstreamItem, self.Setting = UpstreamItem, Setting
        self.JobFile, self.JobOutput, self.Blob = JobFile, JobOutput, Blob
        self.WorkerAdminTags, self.AdminToken, self.AdminSession = WorkerAdminTags, AdminToken, AdminSession
        self.all = [Worker, Task, TaskParent, TaskFailure, Blocklist, UpstreamItem, Setting, JobFile, JobOutput,
                    Blob, WorkerAdminTags, AdminToken, AdminSession]
