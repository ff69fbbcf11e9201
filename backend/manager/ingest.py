"""Taking tasks from the Server's depsgraph (or the admin's local test tasks) into the Manager.

A task the Manager already holds keeps its local status while a worker runs
it or while updates about it are still queued for the Server: the local state
is newer than the document. Otherwise the Server's status wins, which is how a
requeue on the Server reaches the Manager (and clears failed_by_workers).
"""

from __future__ import annotations

import logging
import time

from shared import documents, statuses
from shared.statuses import TaskStatus as TS

from .models import Store
from .task_logs import safe_id
from .task_state import RUNNABLE, TaskStateMachine

log = logging.getLogger(__name__)

_LOCAL_WINS = (TS.ACTIVE.value, TS.CANCEL_REQUESTED.value)
_ACCEPTED = (TS.QUEUED.value, TS.CLAIMED_BY_MANAGER.value, TS.SOFT_FAILED.value, TS.ACTIVE.value,
             TS.CANCEL_REQUESTED.value)


def ingest_tasks(store: Store, state: TaskStateMachine, docs: list[documents.Task], local: bool = False,
                 now: float | None = None) -> dict:
    """Insert or refresh tasks; returns counts {'new', 'updated', 'skipped'}."""
    now = time.time() if now is None else now
    m = store.m
    T, U = m.Task, m.UpstreamItem
    counts = {"new": 0, "updated": 0, "skipped": 0}
    runnable = 0
    with store.write():
        next_seq = (T.select(T.seq).order_by(T.seq.desc()).scalar() or 0) + 1
        for doc in docs:
            if not (safe_id(doc.id) and safe_id(doc.job)):
                log.warning("skipping task with unusable id %r / job %r", doc.id, doc.job)
                counts["skipped"] += 1
                continue
            status = doc.status
            if status == TS.QUEUED.value and not local:
                status = TS.CLAIMED_BY_MANAGER.value
            meta = dict(job=doc.job, name=doc.name, task_type=doc.task_type, priority=doc.priority,
                        job_priority=doc.job_priority, job_type=doc.job_type, manager=doc.manager,
                        project=doc.project, user=doc.user, commands=[c.to_dict() for c in doc.commands],
                        parents=list(doc.parents), job_worker_tag=doc.job_worker_tag or None,
                        job_memory_mb=doc.job_memory_mb, job_files_mode=doc.job_files_mode, etag=doc.etag,
                        server_updated=doc.updated, local=local)
            failed_by = [f.to_dict() for f in doc.failed_by_workers]
            existing = T.get_or_none(T.id == doc.id)
            if existing is None:
                if status not in _ACCEPTED:
                    counts["skipped"] += 1
                    continue
                if status in _LOCAL_WINS:
                    # Nobody here runs it (this Manager lost its database, or never had it).
                    status = TS.CLAIMED_BY_MANAGER.value
                T.insert(id=doc.id, seq=next_seq, status=status, failed_by_workers=failed_by, updated=now,
                         **meta).execute()
                runnable += status in RUNNABLE
                next_seq += 1
                _set_parents(m, doc.id, doc.parents, replace=False)
                _set_failures(m, doc, failed_by)
                counts["new"] += 1
                continue
            T.update(**meta).where(T.id == doc.id).execute()
            _set_parents(m, doc.id, doc.parents, replace=True)
            pending = U.select().where((U.kind == "task-update") & (U.key == doc.id)).exists()
            if existing.status in _LOCAL_WINS or pending or status in _LOCAL_WINS or status == existing.status:
                runnable += existing.status in RUNNABLE  # its parents or type may have changed
                counts["updated"] += 1
                continue
            if status in (TS.QUEUED.value, TS.CLAIMED_BY_MANAGER.value, TS.SOFT_FAILED.value):
                if not statuses.allowed("task", existing.status, status):
                    status = TS.QUEUED.value  # e.g. completed -> queued: a requeue on the Server
                T.update(failed_by_workers=failed_by).where(T.id == doc.id).execute()
                existing.failed_by_workers = failed_by
                _set_failures(m, doc, failed_by, replace=True)
                state.change_status(existing, status, worker=None, upstream=False, now=now,
                                    reason=f"the Server has it {doc.status}")
            counts["updated"] += 1
    if runnable:
        # Tasks that became runnable by a status change woke a worker each already.
        state.wakeup.notify(runnable)
    return counts


def _set_parents(m, task_id: str, parents: list[str], replace: bool) -> None:
    TP = m.TaskParent
    if replace:
        TP.delete().where(TP.task == task_id).execute()
    rows = [{"task": task_id, "parent": p} for p in dict.fromkeys(parents) if isinstance(p, str)]
    if rows:
        TP.insert_many(rows).on_conflict_ignore().execute()


def _set_failures(m, doc: documents.Task, failed_by: list[dict], replace: bool = False) -> None:
    F = m.TaskFailure
    if replace:
        F.delete().where(F.task == doc.id).execute()
    rows = [{"task": doc.id, "worker": f["id"], "job": doc.job, "task_type": doc.task_type}
            for f in failed_by if f.get("id")]
    if rows:
        F.insert_many(rows).on_conflict_ignore().execute()
