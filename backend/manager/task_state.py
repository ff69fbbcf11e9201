"""The Manager's task state machine: every local status change goes through here.

It checks the move against shared.statuses, records it, writes a line in the
task's log, queues the update for the Server (in the same transaction, so the
upstream queue and the task never disagree) and wakes long-polling workers
when work may have become runnable. Callers hold `store.write()`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone

from shared import statuses
from shared.statuses import TaskStatus as TS

from .config import ManagerConfig
from .models import Store
from .task_logs import TaskLogs
from .wakeup import Wakeup

log = logging.getLogger(__name__)

RUNNABLE = tuple(s.value for s in statuses.TASK_RUNNABLE)


def iso_now(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).isoformat()


def log_line(message: str, now: float | None = None) -> str:
    return f"{iso_now(now)}: {message}"


class TaskStateMachine:
    def __init__(self, store: Store, config: ManagerConfig, logs: TaskLogs, wakeup: Wakeup):
        self.store, self.config, self.logs, self.wakeup = store, config, logs, wakeup
        self.m = store.m

    # --- upstream -------------------------------------------------------------

    def enqueue_update(self, task, *, task_status: str | None = None, activity: str | None = None,
                       log_tail: str | None = None, metrics: dict | None = None,
                       send_failed_by: bool = False, now: float | None = None) -> None:
        """Queue one UpstreamTaskUpdate for `task` (not for Manager-local tasks or when unlinked)."""
        if task.local or not self.config.upstream.linked:
            return
        payload = {
            "_id": uuid.uuid4().hex,
            "task_id": task.id,
            "received_on_manager": iso_now(now),
            "worker": task.worker or "",
            "task_progress_percentage": task.task_progress_percentage,
            "current_command_idx": task.current_command_idx,
            "command_progress_percentage": task.command_progress_percentage,
        }
        if task_status:
            payload["task_status"] = task_status
        if activity is not None:
            payload["activity"] = activity
        if log_tail:
            payload["log_tail"] = log_tail
        if metrics:
            payload["metrics"] = metrics
        if send_failed_by or task_status in (TS.SOFT_FAILED.value, TS.FAILED.value):
            payload["failed_by_workers"] = task.failed_by_workers or []
        self.store.db.execute_sql(
            "INSERT INTO upstream_item (kind, key, payload, created, attempts) VALUES ('task-update', ?, ?, ?, 0)",
            (task.id, json.dumps(payload, separators=(",", ":")), time.time() if now is None else now))

    # --- status ---------------------------------------------------------------

    def change_status(self, task, new: str, *, reason: str = "", worker: str | None = ...,
                      activity: str | None = None, now: float | None = None, upstream: bool = True,
                      extra: dict | None = None) -> bool:
        """Move `task` to `new`; False (and nothing changed) when the tables forbid it."""
        old = task.status
        if not statuses.allowed("task", old, new):
            log.warning("task %s: refusing status change %s -> %s (%s)", task.id, old, new, reason)
            return False
        now = time.time() if now is None else now
        fields = {"status": new, "updated": now}
        if worker is not ...:
            fields["worker"] = worker
            task.worker = worker
        if activity is not None:
            fields["activity"] = activity
            task.activity = activity
        for k, v in (extra or {}).items():
            fields[k] = v
            setattr(task, k, v)
        self.store.update_row(self.m.Task, task.id, **fields)
        task.status = new
        if old != new:
            log.info("task %s: %s -> %s%s", task.id, old, new, f" ({reason})" if reason else "")
            if reason:
                try:
                    self.logs.append(task.job, task.id, log_line(f"Manager: {reason}", now))
                except (OSError, ValueError) as ex:
                    log.warning("task %s: cannot write its log: %s", task.id, ex)
        if upstream and old != new:
            self.enqueue_update(task, task_status=new, activity=activity, now=now)
        if new in RUNNABLE or new == TS.COMPLETED.value:
            self.wakeup.notify()
        return True

    def release_worker_task(self, worker_id: str, task_id: str | None = None) -> None:
        """Clear the worker's current task (if it is `task_id`, when given)."""
        if task_id is None:
            self.store.update_row(self.m.Worker, worker_id, current_task=None)
        else:
            self.store.update_row(self.m.Worker, worker_id, where='"current_task" = ?', where_params=(task_id,),
                                  current_task=None)

    def requeue(self, task, reason: str, now: float | None = None) -> bool:
        """Give an active task back to the queue (return, sign-off, timeout, immediate sleep)."""
        old_worker = task.worker
        ok = self.change_status(task, TS.CLAIMED_BY_MANAGER.value, reason=reason, worker=None,
                                activity=reason, now=now)
        if ok and old_worker:
            self.release_worker_task(old_worker, task.id)
        return ok
