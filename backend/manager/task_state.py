"""The Manager's task state machine: every local status change goes through here.

It checks the move against shared.statuses, records it, writes a line in the
task's log, queues the update for the Server (in the same transaction, so the
upstream queue and the task never disagree) and wakes long-polling workers
when work may have become runnable: one per task that became runnable, once
the transaction has committed. Callers hold `store.write()`.
"""

from __future__ import annotations

import functools
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
assert statuses.allowed("task", TS.ACTIVE.value, TS.COMPLETED.value)  # complete_active relies on it

_RUNNABLE_CHILDREN_SQL = """
SELECT count(*) FROM task_parent tp JOIN task c ON c.id = tp.task
WHERE tp.parent = ? AND c.status IN ('queued', 'claimed-by-manager', 'soft-failed')
  AND NOT EXISTS (SELECT 1 FROM task_parent op JOIN task p ON p.id = op.parent
                  WHERE op.task = c.id AND p.status != 'completed')
"""


def iso_now(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).isoformat()


def log_line(message: str, now: float | None = None) -> str:
    return f"{iso_now(now)}: {message}"


class TaskStateMachine:
    def __init__(self, store: Store, config: ManagerConfig, logs: TaskLogs, wakeup: Wakeup):
        self.store, self.config, self.logs, self.wakeup = store, config, logs, wakeup
        self.m = store.m
        self._sql: dict[str, str] = {}

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
        self._changed(task, old, new, reason, activity, upstream, now)
        return True

    def _changed(self, task, old: str, new: str, reason: str, activity, upstream: bool, now: float) -> None:
        """What follows a status change: log, the task's log file, upstream, wake-ups."""
        if old != new:
            # A completion is the common case, one per task: the assignment was logged at info.
            log.log(logging.DEBUG if new == TS.COMPLETED.value else logging.INFO,
                    "task %s: %s -> %s%s", task.id, old, new, f" ({reason})" if reason else "")
            if reason:
                self.store.after_commit(functools.partial(self._log_line, task.job, task.id,
                                                          log_line(f"Manager: {reason}", now)))
        if upstream and old != new:
            self.enqueue_update(task, task_status=new, activity=activity, now=now)
        if new in RUNNABLE:
            self.store.after_commit(self.wakeup.notify)
        elif new == TS.COMPLETED.value:
            self.store.after_commit(functools.partial(self.wakeup.notify_counted,
                                                      functools.partial(self.runnable_children, task.id)))

    def complete_active(self, task_id: str, worker_id: str, *, reason: str, activity: str | None,
                        now: float, upstream: bool = True, **progress):
        """active -> completed for the task's own worker, in one statement that also proves
        both (the common end of every task); the task, or None when it is not active for
        that worker (then the caller looks at it the long way)."""
        key = "complete_active"
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = (
                "UPDATE task SET status = 'completed', updated = ?, activity = coalesce(?, activity), "
                "last_worker_ping = ?, current_command_idx = ?, task_progress_percentage = ?, "
                "command_progress_percentage = ? WHERE id = ? AND worker = ? AND status = 'active' "
                f"RETURNING {self.store.columns_sql(self.m.Task)}")
        row = self.store.db.execute_sql(sql, (
            now, activity, now, progress["current_command_idx"], progress["task_progress_percentage"],
            progress["command_progress_percentage"], task_id, worker_id)).fetchone()
        if row is None:
            return None
        task = self.store.instance(self.m.Task, row)
        self._changed(task, TS.ACTIVE.value, TS.COMPLETED.value, reason, activity, upstream, now)
        return task

    def _log_line(self, job: str, task_id: str, line: str) -> None:
        try:
            self.logs.append(job, task_id, line)
        except (OSError, ValueError) as ex:
            log.warning("task %s: cannot write its log: %s", task_id, ex)

    def runnable_children(self, task_id: str) -> int:
        """How many tasks depending on `task_id` have all their parents completed (and so became runnable)."""
        self.store.ensure_connected()
        return self.store.db.execute_sql(_RUNNABLE_CHILDREN_SQL, (task_id,)).fetchone()[0]

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
