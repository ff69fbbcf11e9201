"""Worker actions asked for on the Server's pages, carried bottom-up to the worker's Manager.

The Server never calls a Manager. An admin (or a manager-admin of a project
linked to the Manager) asks for an action; the Server records it as
`requested` and notes the Manager's news (changes.py), so a request that
Manager holds open is answered at once. The Manager receives the pending
actions in its next task-update-batch answer (`worker_actions`), applies them
and confirms each in a later batch (`worker_actions_done`); only then is the
action `done` (or `failed`, with the Manager's message). Until confirmed, an
action is sent again with every answer: the Manager applies them so that
twice is the same as once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from backend.web import bad_request, forbidden, not_found
from shared.documents import WorkerActionResult
from shared.statuses import WorkerStatus as W

from .admin import manager_admin_ids
from .context import ServerContext
from .models import Manager, User, WorkerAction, WorkerRecord
from .news import WORKERS
from .views import iso

log = logging.getLogger(__name__)

STATUS_ACTIONS = {"sleep": W.ASLEEP, "wake": W.AWAKE, "shutdown": W.SHUTDOWN}
ACTIONS = (*STATUS_ACTIONS, "forget", "set-tags", "clear-blocklist", "sleep-schedule")
PENDING, DONE, FAILED = "requested", "done", "failed"
MAX_PENDING_PER_MANAGER = 1000
SHOWN_AFTER_DONE = dt.timedelta(minutes=10)
"""A confirmed action stays on the worker's row this long (so the page can say what happened)."""
DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")


def _params(action: str, body: dict[str, Any]) -> dict[str, Any]:
    """The action's parameters, checked here so the Manager gets only what it can apply."""
    if action in STATUS_ACTIONS:
        lazy = body.get("lazy", False)
        if not isinstance(lazy, bool):
            raise bad_request("'lazy' must be true (after its current task) or false (at once)", "invalid_field")
        return {"lazy": lazy}
    if action == "set-tags":
        tags = body.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t.strip()) <= 100 for t in tags) \
                or len(tags) > 50:
            raise bad_request("'tags' must be a list of at most 50 tags of 1-100 characters", "invalid_field")
        return {"tags": sorted({t.strip() for t in tags})}
    if action == "sleep-schedule":
        sched = body.get("schedule")
        if not isinstance(sched, dict):
            raise bad_request("'schedule' must be {schedule_active, days_of_week, time_start, time_end}",
                              "invalid_field")
        active = sched.get("schedule_active", False)
        days = sched.get("days_of_week", "")
        start, end = sched.get("time_start", ""), sched.get("time_end", "")
        if not isinstance(active, bool) or not all(isinstance(v, str) for v in (days, start, end)):
            raise bad_request("'schedule' must be {schedule_active: bool, days_of_week: 'mo tu ...', "
                              "time_start: 'HH:MM', time_end: 'HH:MM'}", "invalid_field")
        if any(d not in DAYS for d in days.lower().split()):
            raise bad_request(f"days_of_week: use {' '.join(DAYS)}", "invalid_field")
        for value in (start, end):
            if value and not _is_hhmm(value):
                raise bad_request(f"'{value[:20]}' is not a time HH:MM", "invalid_field")
        if active and not (start and end):
            raise bad_request("an active schedule needs time_start and time_end", "invalid_field")
        return {"schedule": {"schedule_active": active, "days_of_week": " ".join(days.lower().split()),
                             "time_start": start, "time_end": end}}
    return {}


def _is_hhmm(value: str) -> bool:
    hh, sep, mm = value.partition(":")
    return bool(sep) and hh.isdigit() and mm.isdigit() and len(mm) == 2 and int(hh) < 24 and int(mm) < 60


def check_may_run_workers_of(user: User, manager_id: str) -> None:
    """403 unless the user is an admin or a manager-admin of a project linked to the Manager."""
    managers = manager_admin_ids(user)
    if managers is not None and manager_id not in managers:
        raise forbidden("only admins, and manager-admins of a project linked to this worker's Manager, may act "
                        "on its workers")


def request(ctx: ServerContext, user: User, manager_id: str, worker_id: str, body: dict[str, Any]) -> dict:
    """Record an action for the worker; its Manager learns it on its next contact. The action's document."""
    check_may_run_workers_of(user, manager_id)
    action = body.get("action")
    if action not in ACTIONS:
        raise bad_request(f"'action' must be one of {', '.join(ACTIONS)}", "invalid_action")
    params = _params(action, body)
    with ctx.write():
        worker = WorkerRecord.get_or_none(WorkerRecord.manager == manager_id, WorkerRecord.worker_id == worker_id)
        if worker is None:
            raise not_found(f"no worker '{worker_id}' on manager '{manager_id}'")
        pending = WorkerAction.select().where(WorkerAction.manager == manager_id,
                                              WorkerAction.status == PENDING).count()
        if pending >= MAX_PENDING_PER_MANAGER:
            raise bad_request(f"this Manager has {pending} actions it has not picked up yet; is it running?",
                              "too_many_pending")
        row = WorkerAction.create(manager=manager_id, worker_id=worker_id, action=action, params=params,
                                  requested_by=f"user {user.name}"[:200], requested=ctx.clock.now())
        ctx.feed.note("workers", f"manager:{manager_id}")
        ctx.news.notify(manager_id, WORKERS)  # its held depsgraph request answers: it asks at once
    log.info("user %s asked for %s of worker %s (%s) on manager %s", user.name, action, worker.nickname,
             worker_id, manager_id)
    return action_doc(row)


def action_doc(row: WorkerAction) -> dict[str, Any]:
    return {"id": row.id, "manager": row.manager_id, "worker": row.worker_id, "action": row.action,
            "params": row.params, "status": row.status, "message": row.message, "requested_by": row.requested_by,
            "requested": iso(row.requested), "done": iso(row.done)}


def pending_for(manager: Manager) -> list[dict[str, Any]]:
    """What the Manager must apply, oldest first: part of its task-update-batch answer."""
    rows = WorkerAction.select().where(WorkerAction.manager == manager.id, WorkerAction.status == PENDING) \
        .order_by(WorkerAction.requested, WorkerAction.id)
    return [{"id": r.id, "worker": r.worker_id, "action": r.action, **r.params} for r in rows]


def confirm(ctx: ServerContext, manager: Manager, results: list[WorkerActionResult]) -> None:
    """The Manager applied these (inside the caller's write transaction). Unknown or other Managers'
    ids are ignored, as are confirmations of actions already confirmed."""
    now = ctx.clock.now()
    for result in results:
        row = WorkerAction.get_or_none(WorkerAction.id == result.id, WorkerAction.manager == manager.id,
                                       WorkerAction.status == PENDING)
        if row is None:
            continue
        row.status, row.message, row.done = (DONE if result.ok else FAILED), (result.message or "")[:2000], now
        row.save()
        ctx.feed.note("workers")
        log.info("manager %s %s %s of worker %s%s", manager.name, "applied" if result.ok else "could not apply",
                 row.action, row.worker_id, f": {result.message}" if result.message else "")


def recent_by_worker(manager_ids: list[str], now: dt.datetime) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(manager, worker) -> its pending actions and those confirmed lately, newest first."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not manager_ids:
        return out
    rows = WorkerAction.select().where(
        WorkerAction.manager.in_(manager_ids),
        (WorkerAction.status == PENDING) | (WorkerAction.done >= now - SHOWN_AFTER_DONE)) \
        .order_by(WorkerAction.requested.desc())
    for row in rows:
        out.setdefault((row.manager_id, row.worker_id), []).append(action_doc(row))
    return out
