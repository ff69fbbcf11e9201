"""Why a job waits: no worker of its Manager runs its task types, or has its worker tag.

A job is accepted for its project's Manager even when no worker offers what it
needs yet: workers sign on later (a farm just started, machines off for the
night). What the Manager announced (its workers' task types, on startup and
update) and reported (its workers with their tags) tells whether anyone can run
the job now. Job documents carry the answer as their `status_reason`, worked
out when they are read, so it is gone as soon as such a worker is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.statuses import JOB_RUNNABLE, TASK_RUNNABLE, WorkerStatus

from .models import Manager, Task, WorkerRecord

RUNNABLE_JOBS = frozenset(s.value for s in JOB_RUNNABLE)
PENDING_TASKS = [s.value for s in TASK_RUNNABLE]
GONE = frozenset({WorkerStatus.OFFLINE.value, WorkerStatus.SHUTDOWN.value})
"""Workers in these statuses run nothing until they sign on again."""


@dataclass
class Offer:
    """What a Manager's workers can do, as far as the Server knows."""
    name: str
    seen: bool
    task_types: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)


def offers(manager_ids: list[str]) -> dict[str, Offer]:
    """Per Manager, what its workers offer: those it reported that are not offline or shut down
    (a farm whose machines are off for the night offers nothing), or, before its first worker
    report, the task types it announced."""
    out = {m.id: Offer(m.name, m.last_seen is not None)
           for m in Manager.select(Manager.id, Manager.name, Manager.last_seen).where(Manager.id.in_(manager_ids))}
    announced = dict(Manager.select(Manager.id, Manager.worker_task_types).where(Manager.id.in_(manager_ids))
                     .tuples())
    reported: set[str] = set()
    rows = (WorkerRecord.select(WorkerRecord.manager, WorkerRecord.status, WorkerRecord.supported_task_types,
                                WorkerRecord.tags).where(WorkerRecord.manager.in_(manager_ids)).tuples())
    for manager_id, status, types, tags in rows:
        offer = out.get(manager_id)
        reported.add(manager_id)
        if offer is not None and status not in GONE:
            offer.task_types.update(types or ())
            offer.tags.update(t for t in tags or () if isinstance(t, str))
    for manager_id, offer in out.items():
        if manager_id not in reported:
            offer.task_types.update(announced.get(manager_id) or ())
    return out


def pending_task_types(job_ids: list[str]) -> dict[str, set[str]]:
    """Per job, the task types of its tasks that still wait for a worker."""
    out: dict[str, set[str]] = {}
    if job_ids:
        rows = (Task.select(Task.job, Task.task_type).where(Task.job.in_(job_ids), Task.status.in_(PENDING_TASKS))
                .group_by(Task.job, Task.task_type).tuples())
        for job_id, task_type in rows:
            out.setdefault(job_id, set()).add(task_type)
    return out


def reason(needed: set[str], tag: str | None, offer: Offer) -> str:
    """Why no worker takes the job's tasks, or '' when some worker could."""
    if not offer.seen:
        return f"waiting for Manager {offer.name}, which has not contacted the Server yet"
    parts = []
    missing = sorted(needed - offer.task_types)
    if len(missing) == 1:
        parts.append(f"waiting for a worker that runs {missing[0]}")
    elif missing:
        parts.append(f"waiting for workers that run {', '.join(missing[:-1])} and {missing[-1]}")
    if tag and needed and tag not in offer.tags:
        parts.append(f"no worker has tag {tag}")
    return "; ".join(parts)


def explain(docs: list[dict[str, Any]], pending: dict[str, set[str]] | None = None) -> None:
    """Put the waiting reason into the status_reason of the queued and active jobs in `docs`.
    `pending`: pending_task_types of these jobs when the caller knows them already."""
    candidates = [d for d in docs if d["status"] in RUNNABLE_JOBS and not d["blocked"] and d["manager"]]
    if not candidates:
        return
    needed = pending if pending is not None else pending_task_types([d["id"] for d in candidates])
    known = offers(sorted({d["manager"] for d in candidates}))
    for doc in candidates:
        offer = known.get(doc["manager"])
        if offer is None or doc["id"] not in needed:
            continue
        why = reason(needed[doc["id"]], doc["worker_tag"], offer)
        if why:
            doc["status_reason"] = why
