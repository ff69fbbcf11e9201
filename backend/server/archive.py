"""Archiving a finished job: a compressed record of it is kept, its database rows and files go.

The record (`archives/<id[:4]>/<id>.json.gz` under the Server's files) holds
the job document, its settings and metadata, every task with its commands,
last activity and log tail, every run (attempt) of every task, the operations
log, the manifests of its files and outputs (paths, SHA-256, sizes) and the
full task logs the Server had (each cut to its last LOG_CAP bytes). A
`job_archive` row lists it, so the pages and the API can find and download it.
The job's rows, its uploaded files and outputs (blobs no other job uses) and
its task logs are removed, as by a delete.

Every run of the job's tasks is also kept as an `archived_run` row (job, project,
user, Manager, task, worker, start, end, status): what the render-time report
(reports.py) reads, for archived jobs as for live ones.

`archive_job` is the service the retention policy (retention.py) calls too; it
refuses jobs that are not finished and jobs that unfinished jobs depend on (409).
Several Server processes may archive the same job at once: the record is put in
place inside the write transaction that removes the job, so only the process
that removed it leaves its record; the others get 404 and leave nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from typing import Any

import peewee

from backend.web import conflict, not_found
from shared.statuses import JOB_FINAL, JobStatus
from shared.version import __version__

from . import jobs as job_service
from .context import ServerContext
from .models import ArchivedRun, Job, JobArchive, JobFile, JobLogEntry, JobOutput, Task, TaskRun
from .views import iso, task_doc

log = logging.getLogger(__name__)

ARCHIVABLE = frozenset(JOB_FINAL) - {JobStatus.ARCHIVED}
LOG_CAP = 1024 * 1024
FORMAT = 1


def job_record(ctx: ServerContext, job: Job) -> dict[str, Any]:
    """Everything worth keeping of a job, as JSON."""
    tasks = list(Task.select().where(Task.job == job.id).order_by(Task.id))
    runs: dict[str, list[dict]] = {}
    for run in TaskRun.select().where(TaskRun.job == job.id).order_by(TaskRun.id):
        runs.setdefault(run.task, []).append(run_doc(run))
    task_docs = []
    for task in tasks:
        doc = task_doc(task)
        doc["runs"] = runs.get(task.id, [])
        doc["full_log_tail"] = _log_tail(ctx, job.id, task.id)
        task_docs.append(doc)
    return {
        "format": FORMAT, "flamenco_version": __version__,
        "job": job_service.job_docs([job])[0],
        "tasks": task_docs,
        "log": [{"created": iso(e.created), "who": e.who, "what": e.what, "reason": e.reason}
                for e in JobLogEntry.select().where(JobLogEntry.job == job.id).order_by(JobLogEntry.id)],
        "files": {f.relpath: {"sha256": f.sha256, "size": f.size}
                  for f in JobFile.select().where(JobFile.job == job.id)},
        "outputs": {o.relpath: {"sha256": o.sha256, "size": o.size, "task": o.task, "created": iso(o.created)}
                    for o in JobOutput.select().where(JobOutput.job == job.id)},
    }


def run_doc(run: TaskRun) -> dict[str, Any]:
    return {"task": run.task, "worker": run.worker, "started": iso(run.started), "finished": iso(run.finished),
            "status": run.status, "activity": run.activity, "log_tail": run.log_tail}


def _log_tail(ctx: ServerContext, job_id: str, task_id: str) -> str | None:
    path = ctx.store.log_path(job_id, task_id)
    if not path.is_file():
        return None
    try:
        with gzip.open(path, "rb") as f:
            tail = b""
            while chunk := f.read(1 << 20):
                tail = (tail + chunk)[-LOG_CAP:]
    except (OSError, EOFError):
        return None
    return tail.decode("utf-8", "replace")


def archive_job(ctx: ServerContext, job: Job, who: str) -> JobArchive:
    """Keep the job's record, remove the job. The archive's row."""
    job = Job.get_or_none(Job.id == job.id)  # the caller's row may be stale (another process archived it)
    if job is None:
        raise not_found("the job was deleted (or archived) meanwhile")
    if JobStatus(job.status) not in ARCHIVABLE:
        raise conflict(f"job {job.id} is {job.status}; only finished jobs (completed, canceled, failed) can be "
                       "archived", "job_not_finished")
    record = job_record(ctx, job)
    data = gzip.compress(json.dumps(record, separators=(",", ":")).encode(), compresslevel=6)
    staged = ctx.store.stage_archive(job.id, data)
    placed = None
    try:
        with ctx.write():
            job = Job.get_or_none(Job.id == job.id)
            if job is None:
                raise not_found("the job was deleted (or archived) meanwhile")
            if JobStatus(job.status) not in ARCHIVABLE:
                raise conflict(f"job {job.id} is {job.status} now", "job_not_finished")
            user_name = job.user.name if job.user_id else None
            _keep_runs(job, record["job"])
            orphans = job_service.remove_job_rows(ctx, job)
            JobArchive.delete().where(JobArchive.id == job.id).execute()
            row = JobArchive.create(id=job.id, name=job.name, job_type=job.job_type, status=job.status,
                                    project=job.project_id, user_name=user_name, created=job.created,
                                    archived=ctx.clock.now(), archived_by=who[:200], size=len(data),
                                    sha256=hashlib.sha256(data).hexdigest())
            ctx.feed.note(f"project:{job.project_id}", "archives")
            placed = ctx.store.place_archive(staged, job.id)  # under the write lock: no other process races it
    except BaseException:
        staged.unlink(missing_ok=True)
        if placed is not None:  # placed, then the commit failed: the job is still there
            placed.unlink(missing_ok=True)
        raise
    job_service.forget_job_files(ctx, job, orphans)
    log.info("job %s (%s) archived by %s: %d bytes, %d blobs removed", job.id, job.name, who, len(data), len(orphans))
    return row


def _keep_runs(job: Job, doc: dict[str, Any]) -> None:
    """The job's task runs as archived_run rows, in one INSERT ... SELECT (in the caller's transaction)."""
    fields = [ArchivedRun.job, ArchivedRun.job_name, ArchivedRun.project, ArchivedRun.project_name,
              ArchivedRun.user_name, ArchivedRun.manager_name, ArchivedRun.task, ArchivedRun.task_name,
              ArchivedRun.task_type, ArchivedRun.worker, ArchivedRun.started, ArchivedRun.finished, ArchivedRun.status]
    value = peewee.Value
    source = (TaskRun.select(TaskRun.job, value(job.name), value(job.project_id), value(doc.get("project_name") or ""),
                             value(doc.get("user_name")), value(doc.get("manager_name")), TaskRun.task,
                             peewee.fn.COALESCE(Task.name, ""), peewee.fn.COALESCE(Task.task_type, ""),
                             TaskRun.worker, TaskRun.started, TaskRun.finished, TaskRun.status)
              .join(Task, peewee.JOIN.LEFT_OUTER, on=(Task.id == TaskRun.task))
              .where(TaskRun.job == job.id))
    ArchivedRun.delete().where(ArchivedRun.job == job.id).execute()
    ArchivedRun.insert_from(source, fields).execute()


def archive_doc(row: JobArchive, project_name: str | None = None) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "type": row.job_type, "status": row.status, "project": row.project,
            "project_name": project_name, "user_name": row.user_name, "created": iso(row.created),
            "archived": iso(row.archived), "archived_by": row.archived_by, "size": row.size, "sha256": row.sha256,
            "url": f"/api/archives/{row.id}"}
