"""Taking tasks from the Server's depsgraph (or the admin's local test tasks) into the Manager.

A task the Manager already holds keeps its local status while a worker runs
it or while updates about it are still queued for the Server: the local state
is newer than the document. Otherwise the Server's status wins, which is how a
requeue on the Server reaches the Manager (and clears failed_by_workers).
"""

from __future__ import annotations

import logging
import time

from shared import documents, slots, statuses
from shared.statuses import TASK_IN_PROGRESS, TASK_RUNNABLE, TaskStatus as TS

from backend.errors import ApiError

from .command_policy import task_problem
from .persistence import Persistence
from .state_machine import Report, TaskStateMachine
from .task_logs import safe_id

log = logging.getLogger(__name__)

_ACCEPTED = TASK_RUNNABLE | TASK_IN_PROGRESS
"""Statuses of a task the Server may hand a Manager."""


def _meta(doc: documents.Task, local: bool) -> dict:
    """The fields of a task that are the Server's to say."""
    return dict(job=doc.job, name=doc.name, task_type=doc.task_type, priority=doc.priority,
                job_priority=doc.job_priority, job_type=doc.job_type, manager=doc.manager, project=doc.project,
                user=doc.user, commands=[c.to_dict() for c in doc.commands], parents=list(doc.parents),
                job_worker_tag=doc.job_worker_tag or None, job_memory_mb=doc.job_memory_mb,
                job_files_mode=doc.job_files_mode, io=doc.io, needs=slots.needs_of(doc.task_type, doc.needs),
                etag=doc.etag, local=local)


def ingest_tasks(db: Persistence, state: TaskStateMachine, docs: list[documents.Task], local: bool = False,
                 now: float | None = None) -> dict:
    """Insert or refresh tasks in one transaction (the caller's, if it holds one); returns
    counts {'new', 'updated', 'skipped', 'refused'}.

    New tasks, the common case (a depsgraph page of a new job), go in with a few
    statements for the whole page; a task already held is looked at one by one.
    A task that runs a program this Manager does not allow (command_policy.py) is not
    taken: local tasks are refused whole (ApiError 400, nothing stored); a task from the
    Server is reported failed to it, with the reason."""
    now = time.time() if now is None else now
    counts = {"new": 0, "updated": 0, "skipped": 0}
    refused = {doc.id: problem for doc in docs if (problem := task_problem(doc, state.config))}
    if refused and local:
        task_id, problem = next(iter(refused.items()))
        raise ApiError(400, "not_allowed", f"task {task_id}: {problem}")
    usable = []
    for doc in docs:
        if doc.id in refused:
            continue
        if safe_id(doc.id) and safe_id(doc.job):
            usable.append(doc)
        else:
            log.warning("skipping task with unusable id %r / job %r", doc.id, doc.job)
            counts["skipped"] += 1
    usable = list({d.id: d for d in usable}.values())  # an id twice in one call: its last document
    runnable = 0
    with db.write():
        held = {t.id: t for t in db.tasks.of_ids([d.id for d in usable] + list(refused))}
        for task_id, problem in refused.items():
            if task_id not in held:
                log.warning("task %s: not taken: %s", task_id, problem)
                state.tell_server_about(task_id, TS.FAILED, f"refused by this Manager: {problem}", now)
        pending = db.upstream.tasks_with_updates([d.id for d in usable if d.id in held])
        next_seq = db.tasks.next_seq()
        new_rows, parents, refreshed, refreshed_ids = [], [], [], []
        for doc in usable:
            status = doc.status
            if status == TS.QUEUED and not local:
                status = TS.CLAIMED_BY_MANAGER
            meta = _meta(doc, local)
            failed_by = [f.to_dict() for f in doc.failed_by_workers]
            existing = held.get(doc.id)
            if existing is None:
                if status not in _ACCEPTED:
                    counts["skipped"] += 1
                    continue
                if status in TASK_IN_PROGRESS:
                    # Nobody here runs it (this Manager lost its database, or never had it).
                    status = TS.CLAIMED_BY_MANAGER
                new_rows.append(dict(id=doc.id, seq=next_seq, status=status, failed_by_workers=failed_by,
                                     updated=now, **meta))
                parents.extend((doc.id, p) for p in dict.fromkeys(doc.parents) if isinstance(p, str))
                if failed_by:
                    db.tasks.set_failures(doc.id, doc.job, doc.task_type, failed_by)
                runnable += status in TASK_RUNNABLE
                next_seq += 1
                counts["new"] += 1
                continue
            counts["updated"] += 1
            refreshed.append(meta)
            refreshed_ids.append(doc.id)
            if list(existing.parents or []) != meta["parents"]:
                db.tasks.set_parents(doc.id, doc.parents, replace=True)
            if existing.status in TASK_IN_PROGRESS or doc.id in pending or status in TASK_IN_PROGRESS \
                    or status == existing.status:
                # The local state is newer than the document.
                runnable += existing.status in TASK_RUNNABLE  # its parents or type may have changed
                continue
            if status in TASK_RUNNABLE:
                if not statuses.allowed("task", existing.status, status):
                    status = TS.QUEUED  # e.g. completed -> queued: a requeue on the Server
                existing.failed_by_workers = failed_by
                db.tasks.set_failures(doc.id, doc.job, doc.task_type, failed_by, replace=True)
                state.change_status(existing, status, Report(f"the Server has it {doc.status}", from_server=True),
                                    now)
        db.tasks.update_many(refreshed_ids, refreshed)
        db.tasks.insert_many(new_rows)
        db.tasks.add_parents(parents)
        if runnable:
            # Tasks that became runnable by a status change woke a worker each already.
            db.after_commit(lambda: state.wakeup.notify(runnable))
    if refused:
        counts["refused"] = len(refused)
    return counts
