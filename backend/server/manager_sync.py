"""What the Manager API does (docs/protocol.md): announcements, worker reports,
the depsgraph, task update batches, task logs, job files and outputs.

A Manager only ever sees or changes tasks of jobs assigned to it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, BinaryIO

from backend.web import ApiError, bad_request, forbidden, not_found
from shared.checksums import TooLarge, is_sha256
from shared.chunking import chunks
from shared.documents import TaskUpdateBatch, UpstreamNotification, WorkerReport
from shared.json_text import dumps as safe_dumps
from shared.relpaths import RelpathError, check_relpath
from shared.slots import MAX_SLOTS
from shared.statuses import JOB_FINAL, JOB_RUNNABLE, TASK_RUNNABLE, JobStatus, TaskStatus, WorkerStatus

from . import blobs, task_logs
from .context import ServerContext
from .database import write
from .models import (AppliedUpdate, Blob, Job, JobFile, JobOutput, LogRequest, Manager, Task, WorkerRecord,
                     bulk_insert, stamp_value)
from .views import iso

log = logging.getLogger(__name__)

J, T, W = JobStatus, TaskStatus, WorkerStatus
DEPSGRAPH_STATUSES = sorted(TASK_RUNNABLE | {T.ACTIVE})
"""The tasks a Manager is sent: those it may hand out, and those running."""
UNSETTLED_JOBS = [s for s in JobStatus if s not in JOB_FINAL and s != J.ARCHIVING]
BATCH_TASK_FIELDS = (Task.id, Task.job, Task.name, Task.status, Task.activity, Task.progress,
                     Task.current_command_idx, Task.command_progress, Task.metrics, Task.worker,
                     Task.failed_by_workers, Task.log_tail, Task.updated, Task.created, Task.started,
                     Task.finished)
OUTPUT_TASK_STATUSES = frozenset(s.value for s in (T.CLAIMED_BY_MANAGER, T.ACTIVE, T.COMPLETED, T.SOFT_FAILED,
                                                   T.FAILED, T.CANCEL_REQUESTED, T.CANCELED))
"""Statuses of a task that its Manager holds or held since it was last queued: outputs are accepted only then."""
SEEN_WRITE_INTERVAL = dt.timedelta(seconds=5)
MAX_VARIABLES_JSON = 256 * 1024
MAX_RESOURCES_JSON = 16 * 1024


def touch(ctx: ServerContext, manager: Manager) -> None:
    """Record that the Manager called; written at most every few seconds."""
    now = ctx.clock.now()
    if manager.last_seen is None or now - manager.last_seen > SEEN_WRITE_INTERVAL:
        with write(ctx.db):
            Manager.update(last_seen=now).where(Manager.id == manager.id).execute()
        manager.last_seen = now


def _cut(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else text


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str)) if value is not None else 0


def announce(ctx: ServerContext, manager: Manager, doc: UpstreamNotification, startup: bool) -> None:
    with write(ctx.db):
        now = ctx.clock.now()
        if _json_size(doc.variables) > MAX_VARIABLES_JSON:
            raise bad_request(f"'variables' may be at most {MAX_VARIABLES_JSON} bytes of JSON", "too_large")
        values = {Manager.url: doc.manager_url[:500], Manager.variables: doc.variables,
                  Manager.nr_of_workers: doc.nr_of_workers,
                  Manager.worker_task_types: sorted(set(doc.worker_task_types)),
                  Manager.version: (doc.version or "")[:50] or None, Manager.last_seen: now}
        if startup:
            values[Manager.last_startup] = now
        Manager.update(values).where(Manager.id == manager.id).execute()
    log.info("manager %s (%s) %s: %d workers, task types %s", manager.name, manager.id,
             "started" if startup else "updated", doc.nr_of_workers, ", ".join(doc.worker_task_types))


def worker_report(ctx: ServerContext, manager: Manager, report: WorkerReport) -> None:
    with write(ctx.db):
        now = ctx.clock.now()
        existing = {w.worker_id: w for w in WorkerRecord.select().where(WorkerRecord.manager == manager.id)}
        for info in report.workers:
            values = dict(nickname=info.nickname[:200], status=info.status, platform=info.platform[:20],
                          supported_task_types=info.supported_task_types, tags=info.tags,
                          current_task=_cut(info.current_task, 48), current_job=_cut(info.current_job, 32),
                          last_seen=_cut(info.last_seen, 40), status_requested=_cut(info.status_requested, 32),
                          resources=info.resources if _json_size(info.resources) <= MAX_RESOURCES_JSON else None,
                          reported=now, running_tasks=[{"id": _cut(t.id, 48), "job": _cut(t.job, 32),
                                                        "name": _cut(t.name, 200), "needs": _cut(t.needs, 16)}
                                                       for t in info.running_tasks[:MAX_SLOTS]])
            row = existing.get(info.id)
            if row is None:
                WorkerRecord.create(manager=manager.id, worker_id=info.id[:100], **values)
            else:
                WorkerRecord.update(values).where(WorkerRecord.id == row.id).execute()
        if report.complete:
            gone = [wid for wid in existing if wid not in {i.id for i in report.workers}]
            for chunk in chunks(gone):
                WorkerRecord.delete().where(WorkerRecord.manager == manager.id,
                                            WorkerRecord.worker_id.in_(chunk)).execute()
        idle = (WorkerRecord.select().where(WorkerRecord.manager == manager.id, WorkerRecord.status == W.AWAKE,
                                            WorkerRecord.current_task.is_null()).count())
        total = WorkerRecord.select().where(WorkerRecord.manager == manager.id).count()
        Manager.update({Manager.idle_workers: idle, Manager.last_worker_report: now, Manager.last_seen: now,
                        Manager.nr_of_workers: total}).where(Manager.id == manager.id).execute()


def depsgraph(ctx: ServerContext, manager: Manager, since: dt.datetime | None) -> tuple[str, int, dt.datetime]:
    """The runnable tasks for the Manager (changed after `since`) as the JSON of ScheduledTasks,
    their number, and the stamp to send back; queued ones become claimed.

    Rows are read raw and the stored JSON (commands, parents) is spliced into
    the answer as it is, which keeps a 100,000-task clean slate fast.
    """
    parts: list[str] = []
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with write(ctx.db):
        now = ctx.clock.now()
        now_iso = iso(now)
        jobs = {j.id: j for j in Job.select().where(Job.manager == manager.id,
                                                    Job.status.in_(list(JOB_RUNNABLE)),
                                                    Job.blocked == False)}  # noqa: E712
        for jid in sorted(jobs):
            job = jobs[jid]
            query = (Task.select(Task.id, Task.name, Task.status, Task.priority, Task.job_priority, Task.task_type,
                                 Task.worker, Task.updated, Task.commands, Task.parents, Task.failed_by_workers,
                                 Task.needs)
                     .where(Task.job == jid, Task.status.in_(DEPSGRAPH_STATUSES)))
            if since is not None:
                query = query.where(Task.updated > since)
            common = {"job": jid, "manager": manager.id, "project": job.project_id, "user": job.user_id or "",
                      "job_type": job.job_type, "job_worker_tag": job.worker_tag, "job_memory_mb": job.memory_mb,
                      "job_files_mode": job.files_mode}
            claimed = 0
            for (tid, name, status, prio, job_prio, task_type, worker, updated, commands, parents,
                 failed_by, needs) in ctx.db.execute(query.order_by(Task.id)):
                if status == T.QUEUED:
                    claimed += 1
                    status, stamp = T.CLAIMED_BY_MANAGER, now_iso
                else:
                    stamp = iso(updated)
                doc = {"_id": tid, **common, "name": name, "status": status, "priority": prio,
                       "job_priority": job_prio, "task_type": task_type, "_updated": stamp}
                if worker:
                    doc["worker"] = worker
                if needs:
                    doc["needs"] = needs
                parts.append(f'{dumps(doc)[:-1]},"commands":{_valid_json(commands)},"parents":{parents},'
                             f'"failed_by_workers":{failed_by}}}')
            if claimed:
                ctx.machine.claim(job, since, now)
    return '{"depsgraph":[' + ",".join(parts) + "]}", len(parts), now


def _valid_json(text: str) -> str:
    """Stored JSON as it is, but for a NaN/Infinity stored before they were refused: re-encoded as null."""
    if "NaN" in text or "Infinity" in text:
        return safe_dumps(json.loads(text), separators=(",", ":"))
    return text


def apply_batch(ctx: ServerContext, manager: Manager, batch: TaskUpdateBatch) -> dict[str, Any]:
    """Apply a batch of task updates in order, once each; what the Manager should do next."""
    handled: list[str] = []
    modified = 0
    who = f"manager {manager.name}"
    machine = ctx.machine
    with write(ctx.db):
        ids = [u.id for u in batch.updates]
        applied: set[str] = set()
        for chunk in chunks(ids):
            applied.update(i for (i,) in AppliedUpdate.select(AppliedUpdate.id).where(
                AppliedUpdate.id.in_(chunk)).tuples())
        wanted = sorted({u.task_id for u in batch.updates if u.id not in applied})
        tasks: dict[str, Task] = {}
        jobs: dict[str, Job] = {}

        def load() -> None:
            tasks.clear()
            jobs.clear()
            for chunk in chunks(wanted):
                tasks.update((t.id, t) for t in Task.select(*BATCH_TASK_FIELDS).where(Task.id.in_(chunk)))
            job_ids = sorted({t.job_id for t in tasks.values()})
            for chunk in chunks(job_ids):
                jobs.update((j.id, j) for j in Job.select().where(Job.id.in_(chunk)))

        load()
        generation = machine.generation
        new_ids: list[str] = []
        for update in batch.updates:
            handled.append(update.id)
            if update.id in applied:
                continue
            applied.add(update.id)
            new_ids.append(update.id)
            if machine.generation != generation:
                load()  # a ripple changed rows behind the cached objects
                generation = machine.generation
            task = tasks.get(update.task_id)
            if task is None:
                log.info("update %s from %s: unknown task %s, acknowledged", update.id, who, update.task_id)
                continue
            job = jobs[task.job_id]
            if job.manager_id != manager.id:
                log.warning("update %s from %s: task %s belongs to another manager; ignored",
                            update.id, who, task.id)
                continue
            machine.apply_task_update(task, job, update, who)
            job.save()
            modified += 1
        stamp = stamp_value(ctx.clock.now())
        bulk_insert(AppliedUpdate, ("id", "manager", "applied"), ((i[:100], manager.id, stamp) for i in new_ids))
        cancel = [tid for (tid,) in Task.select(Task.id).join(Job).where(
            Job.manager == manager.id, Job.status.in_(UNSETTLED_JOBS),
            Task.status == T.CANCEL_REQUESTED).tuples()]
        uploads = [{"job": jid, "task": tid} for tid, jid in LogRequest.select(LogRequest.task, LogRequest.job).where(
            LogRequest.manager == manager.id).tuples()]
    return {"modified_count": modified, "handled_update_ids": handled, "cancel_task_ids": cancel,
            "upload_task_file_queue": uploads}


def _own_task(manager: Manager, tid: str) -> Task:
    task = Task.get_or_none(Task.id == tid)
    if task is None or Job.select(Job.manager).where(Job.id == task.job_id).scalar() != manager.id:
        raise not_found(f"no task '{tid}' for this manager")
    return task


def _own_job(manager: Manager, jid: str) -> Job:
    job = Job.get_or_none(Job.id == jid)
    if job is None or job.manager_id != manager.id:
        raise not_found(f"no job '{jid}' for this manager")
    return job


def store_task_log(ctx: ServerContext, manager: Manager, tid: str, stream: BinaryIO, length: int | None,
                   max_upload: int) -> None:
    task = _own_task(manager, tid)
    try:
        total, kept = task_logs.store(ctx.store, task.job_id, task.id, stream, length, max_upload,
                                      ctx.config.task_log_max_bytes)
    except task_logs.BadLog as ex:
        raise bad_request(str(ex), "not_gzip") from None
    except TooLarge as ex:
        raise ApiError(413, "too_large", str(ex)) from None
    with write(ctx.db):
        Task.update({Task.log_uploaded: ctx.clock.now()}).where(Task.id == task.id).execute()
        LogRequest.delete().where(LogRequest.task == task.id).execute()
    log.info("task %s: full log received from manager %s (%d bytes%s)", task.id, manager.name, total,
             f", {kept} kept" if kept < total else "")


def job_files(manager: Manager, jid: str) -> dict[str, Any]:
    job = _own_job(manager, jid)
    rows = JobFile.select(JobFile.relpath, JobFile.sha256, JobFile.size).where(JobFile.job == job.id).tuples()
    return {"files": {rel: {"sha256": sha, "size": size} for rel, sha, size in rows}}


def may_read_blob(manager: Manager, sha256: str) -> bool:
    return JobFile.select().join(Job).where(JobFile.sha256 == sha256, Job.manager == manager.id).exists() or \
        JobOutput.select().join(Job).where(JobOutput.sha256 == sha256, Job.manager == manager.id).exists()


def _quota_room(ctx: ServerContext, job: Job, sha256: str) -> int | None:
    """Bytes the job's project may still store (None: no quota, or it stores this blob already)."""
    quota = blobs.project_quota(job.project, ctx.config.project_quota_bytes)
    if not quota:
        return None
    used, shas = blobs.project_usage(job.project_id)
    return None if sha256 in shas else max(0, quota - used)


def quota_exceeded(job: Job, room: int) -> ApiError:
    return ApiError(507, "quota_exceeded", f"the storage quota of job {job.id}'s project leaves {room} bytes; "
                                           "the output is not stored")


def put_output(ctx: ServerContext, manager: Manager, jid: str, relpath: str, tid: str | None,
               sha256: str, stream: BinaryIO, length: int | None) -> None:
    job = _own_job(manager, jid)
    try:
        rel = check_relpath(relpath)
    except RelpathError as ex:
        raise bad_request(str(ex), "invalid_path") from None
    if not is_sha256(sha256):
        raise bad_request("header X-Flamenco-SHA256 must be the output's SHA-256 (64 hex digits)", "invalid_hash")
    if not tid:
        raise bad_request("query parameter 'task' (the task that produced the output) is required", "task_required")
    task = Task.get_or_none(Task.id == tid, Task.job == job.id)
    if task is None:
        raise forbidden(f"task '{tid}' is not a task of job {job.id}")
    if task.status not in OUTPUT_TASK_STATUSES:
        raise forbidden(f"task {tid} is {task.status}: this Manager does not hold it, so it produced no output")
    size = blobs.store_upload(ctx.store, stream, sha256, length, ctx.config.max_upload_bytes,
                              _quota_room(ctx, job, sha256), lambda room: quota_exceeded(job, room))
    with write(ctx.db):
        now = ctx.clock.now()
        if not Blob.get_or_none(Blob.sha256 == sha256):
            Blob.create(sha256=sha256, size=size, created=now)
        existing = JobOutput.get_or_none(JobOutput.job == job.id, JobOutput.relpath == rel)
        if existing is None:
            JobOutput.create(job=job.id, relpath=rel, sha256=sha256, size=size, task=tid, created=now)
        elif existing.sha256 != sha256 or existing.task != tid:
            existing.sha256, existing.size, existing.task, existing.created = sha256, size, tid, now
            existing.save()
