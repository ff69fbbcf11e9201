"""What the Manager API does (docs/protocol.md): announcements, worker reports,
the depsgraph, task update batches and task logs (job files and outputs: manager_files.py).

A Manager only ever sees or changes tasks of jobs assigned to it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, BinaryIO

import peewee

from backend.web import ApiError, bad_request, not_found
from shared.checksums import TooLarge
from shared.chunking import chunks
from shared.documents import TaskUpdateBatch, UpstreamNotification, WorkerReport
from shared.json_text import dumps as safe_dumps
from shared.slots import MAX_SLOTS
from shared.statuses import JOB_FINAL, JOB_RUNNABLE, JobStatus, TaskStatus, WorkerStatus
from shared.timefmt import parse_iso_utc

from . import task_logs, worker_actions
from .context import ServerContext
from .database import write
from .models import (AppliedUpdate, Job, LogRequest, Manager, Task, WorkerRecord, bulk_insert, rows_by_ids,
                     save_dirty, stamp_value)
from .state_machine import MANAGER_RUNS
from .views import iso

log = logging.getLogger(__name__)

J, T, W = JobStatus, TaskStatus, WorkerStatus
DEPSGRAPH_STATUSES = sorted(MANAGER_RUNS)
"""The tasks a Manager is sent: those it may hand out, and those running."""
UNSETTLED_JOBS = [s for s in JobStatus if s not in JOB_FINAL and s != J.ARCHIVING]
BATCH_TASK_FIELDS = (Task.id, Task.job, Task.name, Task.status, Task.activity, Task.progress,
                     Task.current_command_idx, Task.command_progress, Task.metrics, Task.worker,
                     Task.failed_by_workers, Task.log_tail, Task.updated, Task.created, Task.started,
                     Task.finished, Task.canceled_by)
SEEN_WRITE_INTERVAL = dt.timedelta(seconds=5)
DEPSGRAPH_PAGE = 1000
"""Tasks per depsgraph answer unless the Manager asks for another number (up to DEPSGRAPH_MAX_PAGE)."""
DEPSGRAPH_MAX_PAGE = 10000
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
    with ctx.write():
        ctx.feed.note("managers")
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
    with ctx.write():
        ctx.feed.note("workers", "managers")
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


def parse_cursor(text: str) -> tuple[dt.datetime, str]:
    """The depsgraph cursor a Manager sends back: `<ISO stamp>` or `<ISO stamp>;<task id>`.
    ValueError if unreadable."""
    stamp, _, tid = text.strip().partition(";")
    return parse_iso_utc(stamp), tid


def format_cursor(stamp, tid: str = "") -> str:
    return f"{iso(stamp)};{tid}" if tid else iso(stamp)


def depsgraph(ctx: ServerContext, manager: Manager, cursor: tuple[dt.datetime, str] | None,
              limit: int = DEPSGRAPH_PAGE) -> tuple[str, int, str, bool]:
    """A page of the runnable tasks for the Manager as the JSON of ScheduledTasks: those
    after `cursor` in (updated, id) order (all of them without one), at most `limit`.
    Returns (body, how many, the cursor to send back, whether more follow); queued
    tasks handed out become claimed-by-manager.

    Every change a Manager must learn stamps the task's `updated` under the write lock
    with a clock that never goes back, so a cursor misses nothing and a page boundary
    inside a shared stamp is kept by the task id. A claim does not stamp: the Manager
    has the task from this very answer. Rows are read raw and the stored JSON
    (commands, parents) is spliced into the answer as it is.
    """
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    after = None if cursor is None else peewee.Tuple(stamp_value(cursor[0]), cursor[1])
    with ctx.write():
        now = ctx.clock.now()
        jobs = {j.id: j for j in Job.select().where(Job.manager == manager.id,
                                                    Job.status.in_(list(JOB_RUNNABLE)),
                                                    Job.blocked == False)}  # noqa: E712
        rows = []
        for jid in jobs:
            for status in DEPSGRAPH_STATUSES:  # one index range each: (job, status, updated, id)
                query = (Task.select(Task.updated, Task.id, Task.job, Task.name, Task.status, Task.priority,
                                     Task.job_priority, Task.task_type, Task.worker, Task.commands, Task.parents,
                                     Task.failed_by_workers, Task.io, Task.needs)
                         .where(Task.job == jid, Task.status == status))
                if after is not None:
                    query = query.where(peewee.Tuple(Task.updated, Task.id) > after)
                rows.extend(ctx.db.execute(query.order_by(Task.updated, Task.id).limit(limit + 1)))
        rows.sort(key=lambda r: (r[0], r[1]))
        more = len(rows) > limit
        del rows[limit:]
        claimed: dict[str, list[str]] = {}
        parts: list[str] = []
        for (updated, tid, jid, name, status, prio, job_prio, task_type, worker, commands, parents,
             failed_by, task_io, needs) in rows:
            job = jobs[jid]
            if status == T.QUEUED:
                claimed.setdefault(jid, []).append(tid)
                status = T.CLAIMED_BY_MANAGER.value
            doc = {"_id": tid, "job": jid, "manager": manager.id, "project": job.project_id,
                   "user": job.user_id or "", "job_type": job.job_type, "job_worker_tag": job.worker_tag,
                   "job_memory_mb": job.memory_mb, "job_files_mode": job.files_mode, "name": name, "status": status,
                   "priority": prio, "job_priority": job_prio, "task_type": task_type, "_updated": iso(updated)}
            if worker:
                doc["worker"] = worker
            if needs:
                doc["needs"] = needs
            parts.append(f'{dumps(doc)[:-1]},"commands":{_valid_json(commands)},"parents":{parents},'
                         f'"failed_by_workers":{failed_by}' + (f',"io":{task_io}}}' if task_io else "}"))
        for jid, ids in claimed.items():
            ctx.machine.claim(jobs[jid], ids)
    # After the last page, everything up to now was considered: later changes get later stamps.
    next_cursor = format_cursor(rows[-1][0], rows[-1][1]) if more else format_cursor(now)
    return '{"depsgraph":[' + ",".join(parts) + "]}", len(parts), next_cursor, more


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
    with ctx.write():
        ids = [u.id for u in batch.updates]
        applied: set[str] = set()
        for chunk in chunks(ids):
            applied.update(a.id for a in rows_by_ids(AppliedUpdate, [AppliedUpdate.id], chunk))
        wanted = sorted({u.task_id for u in batch.updates if u.id not in applied})
        tasks: dict[str, Task] = {}
        jobs: dict[str, Job] = {}

        def load() -> None:
            tasks.clear()
            jobs.clear()
            for chunk in chunks(wanted):
                tasks.update((t.id, t) for t in rows_by_ids(Task, BATCH_TASK_FIELDS, chunk))
            job_ids = sorted({t.job_id for t in tasks.values()})
            for chunk in chunks(job_ids):
                jobs.update((j.id, j) for j in rows_by_ids(Job, Job._meta.sorted_fields, chunk))

        def save_jobs() -> None:
            # A job's counts change with each update: written once per batch (and before a reload).
            for job in jobs.values():
                save_dirty(job)

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
                save_jobs()
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
            machine.job_changed(job)
            modified += 1
        save_jobs()
        stamp = stamp_value(ctx.clock.now())
        bulk_insert(AppliedUpdate, ("id", "manager", "applied"), ((i[:100], manager.id, stamp) for i in new_ids))
        cancel = [tid for (tid,) in Task.select(Task.id).join(Job).where(
            Job.manager == manager.id, Job.status.in_(UNSETTLED_JOBS),
            Task.status == T.CANCEL_REQUESTED).tuples()]
        uploads = [{"job": jid, "task": tid} for tid, jid in LogRequest.select(LogRequest.task, LogRequest.job).where(
            LogRequest.manager == manager.id).tuples()]
        worker_actions.confirm(ctx, manager, batch.worker_actions_done)
        actions = worker_actions.pending_for(manager)
        if batch.queue_length is not None and batch.queue_length != manager.queue_length:
            Manager.update(queue_length=max(0, batch.queue_length)).where(Manager.id == manager.id).execute()
            ctx.feed.note("managers")
    return {"modified_count": modified, "handled_update_ids": handled, "cancel_task_ids": cancel,
            "upload_task_file_queue": uploads, "worker_actions": actions}


def _own_task(manager: Manager, tid: str) -> Task:
    task = Task.get_or_none(Task.id == tid)
    if task is None or Job.select(Job.manager).where(Job.id == task.job_id).scalar() != manager.id:
        raise not_found(f"no task '{tid}' for this manager")
    return task


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
    with ctx.write():
        Task.update({Task.log_uploaded: ctx.clock.now()}).where(Task.id == task.id).execute()
        LogRequest.delete().where(LogRequest.task == task.id).execute()
        ctx.feed.note(f"job:{task.job_id}")  # the task page shows it
    log.info("task %s: full log received from manager %s (%d bytes%s)", task.id, manager.name, total,
             f", {kept} kept" if kept < total else "")
