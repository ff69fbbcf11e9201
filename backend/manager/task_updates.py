"""What a worker's task update does, and the failure rules.

Failure rules (Flamenco 2's, thresholds configurable, defaults 3 / 3):
* a worker that reports 'failed' is added to the task's failed_by_workers and
  will not get this task again;
* when that worker has now failed `blocklist_threshold` tasks of the same job
  and task type, it is blocklisted for (job, task type);
* the task fails for good once `task_fail_after_softfail_count` workers failed
  it, or when no other worker could run it; otherwise it is 'soft-failed' and
  runnable for the others;
* when a blocklisting leaves no worker for soft-failed tasks of that job and
  type, those fail too.

A 'canceled' from a worker for a task nobody asked to cancel means the worker
gave it up (Flamenco 2 workers report that when sent to sleep): the task goes
back to the queue instead.
"""

from __future__ import annotations

import functools
import json
import logging
import time

from shared import documents
from shared.statuses import TASK_CANCEL_REQUESTED_ACCEPTS, TaskStatus as TS

from .config import ManagerConfig
from .models import Store
from .task_logs import TaskLogs, tail_lines
from .task_state import TaskStateMachine

log = logging.getLogger(__name__)

_ACCEPTS_FROM_CANCEL = {s.value for s in TASK_CANCEL_REQUESTED_ACCEPTS}


class UpdateRejected(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class TaskUpdates:
    def __init__(self, store: Store, config: ManagerConfig, state: TaskStateMachine, logs: TaskLogs):
        self.store, self.config, self.state, self.logs = store, config, state, logs
        self.m = store.m

    # --- worker updates --------------------------------------------------------

    def _clip_log(self, text: str | None) -> str | None:
        if not text:
            return text
        cap = self.config.logs.max_log_bytes_per_update
        raw = text.encode("utf-8", "replace")
        if len(raw) <= cap:
            return text
        kept = raw[-cap:].decode("utf-8", "ignore")
        return f"[Manager: {len(raw) - cap} bytes of this update's log were cut; the update was over {cap} bytes]\n" + kept

    def apply(self, worker, task_id: str, update: documents.TaskUpdate, now: float | None = None) -> None:
        """Apply one TaskUpdate from `worker`; UpdateRejected(404/409) when it is not theirs."""
        now = time.time() if now is None else now
        T = self.m.Task
        log_text = self._clip_log(update.log)
        activity = update.activity
        if activity is not None and len(activity) > self.config.logs.max_activity_chars:
            activity = activity[: self.config.logs.max_activity_chars] + "…"
        tail = tail_lines(log_text, self.config.logs.log_tail_lines,
                          self.config.logs.log_tail_max_bytes) if log_text else None
        new_status = update.task_status
        with self.store.write():
            if new_status == TS.COMPLETED.value:
                # The common end of a task, in one statement that also proves it was this
                # worker's active task; anything else goes the long way below.
                task = self.state.complete_active(
                    task_id, worker.id, reason=f"completed by worker {worker.identifier}", activity=activity,
                    now=now, upstream=False, current_command_idx=update.current_command_idx,
                    task_progress_percentage=update.task_progress_percentage,
                    command_progress_percentage=update.command_progress_percentage)
                if task is not None:
                    self.state.enqueue_update(task, task_status=new_status, activity=activity, log_tail=tail,
                                              metrics=update.metrics, now=now)
                    self._touch_worker(worker, activity, update.resources, now, release=task.id)
                    if log_text:
                        self.store.after_commit(functools.partial(self._append_log, task, log_text))
                    return
            task = self.store.row(T, task_id)
            if task is None:
                raise UpdateRejected(404, "not_found", f"task {task_id} is unknown to this Manager")
            if task.worker != worker.id:
                raise UpdateRejected(409, "not_your_task",
                                     f"task {task_id} is not assigned to worker {worker.id}")
            in_progress = task.status in (TS.ACTIVE.value, TS.CANCEL_REQUESTED.value)
            fields = {"last_worker_ping": now}
            if in_progress:
                fields.update(current_command_idx=update.current_command_idx,
                              task_progress_percentage=update.task_progress_percentage,
                              command_progress_percentage=update.command_progress_percentage)
                if activity is not None:
                    fields["activity"] = activity
                task.current_command_idx = update.current_command_idx
                task.task_progress_percentage = update.task_progress_percentage
                task.command_progress_percentage = update.command_progress_percentage
            self.store.update_row(T, task.id, **fields)
            changed = False
            if in_progress and new_status and new_status != task.status:
                changed = self._status_from_worker(task, worker, new_status, activity, tail, update.metrics, now)
            self._touch_worker(worker, activity, update.resources, now)
            if not changed and (in_progress or tail):
                # Progress (or, for a task no longer running, only the log) goes up as is;
                # the status and activity of a task the worker no longer owns are dropped.
                self.state.enqueue_update(task, activity=activity if in_progress else None, log_tail=tail,
                                          metrics=update.metrics if in_progress else None, now=now)
            if log_text:
                self.store.after_commit(functools.partial(self._append_log, task, log_text))

    def _append_log(self, task, text: str) -> None:
        try:
            self.logs.append(task.job, task.id, text)
        except (OSError, ValueError) as ex:
            log.warning("task %s: cannot write its log: %s", task.id, ex)

    _TOUCH_SQL = ('UPDATE worker SET last_seen = max(last_seen, ?), last_activity = coalesce(?, last_activity), '
                  'resources = coalesce(?, resources), '
                  'current_task = CASE WHEN current_task = ? THEN NULL ELSE current_task END WHERE id = ?')

    def _touch_worker(self, worker, activity, resources, now, release: str | None = None) -> None:
        """The worker was heard from: last seen, activity, resources; and done with task `release`."""
        merged = None
        if isinstance(resources, dict):
            merged = {**(worker.resources or {}), **resources}
            worker.resources = merged
        self.store.db.execute_sql(self._TOUCH_SQL, (
            now, activity[:200] if activity else None,
            json.dumps(merged, separators=(",", ":")) if merged is not None else None, release, worker.id))

    def _status_from_worker(self, task, worker, new: str, activity, tail, metrics, now) -> bool:
        """Apply a status a worker reported for its in-progress task; True if it was sent upstream.
        (An active task's completion is `apply`'s own fast path.)"""
        if task.status == TS.CANCEL_REQUESTED.value:
            if new not in _ACCEPTS_FROM_CANCEL:
                log.info("task %s: cancel-requested, ignoring status %s from worker", task.id, new)
                return False
            if new == TS.FAILED.value:
                self._add_failed_by(task, worker, now)
            ok = self.state.change_status(task, new, reason=f"worker {worker.identifier} reported {new}",
                                          activity=activity, now=now, upstream=False)
            self.state.release_worker_task(worker.id, task.id)
            self.state.enqueue_update(task, task_status=task.status, activity=activity, log_tail=tail,
                                      metrics=metrics, now=now)
            return ok
        if new == TS.FAILED.value:
            self.fail_on_worker(task, worker, f"worker {worker.identifier} reported failure", activity,
                                tail, metrics, now)
            return True
        if new == TS.CANCELED.value:
            self.state.requeue(task, f"worker {worker.identifier} gave the task up (reported canceled)", now)
            return True
        if new == TS.ACTIVE.value:
            return False
        log.warning("task %s: worker %s sent status %s, which a worker may not set", task.id, worker.id, new)
        return False

    # --- failure rules ---------------------------------------------------------

    def _add_failed_by(self, task, worker, now) -> None:
        failed_by = list(task.failed_by_workers or [])
        if not any(f.get("id") == worker.id for f in failed_by):
            failed_by.append({"id": worker.id, "identifier": worker.identifier})
        task.failed_by_workers = failed_by
        self.m.Task.update(failed_by_workers=failed_by).where(self.m.Task.id == task.id).execute()
        self.m.TaskFailure.insert(task=task.id, worker=worker.id, job=task.job, task_type=task.task_type,
                                  created=now).on_conflict_ignore().execute()

    def eligible_workers(self, task) -> list:
        """Workers other than those that failed it that could still run `task`."""
        W, F, B = self.m.Worker, self.m.TaskFailure, self.m.Blocklist
        failed = {r.worker for r in F.select(F.worker).where(F.task == task.id)}
        blocked = {r.worker for r in B.select(B.worker).where((B.job == task.job) & (B.task_type == task.task_type))}
        out = []
        for w in W.select():
            if w.id in failed or w.id in blocked or task.task_type not in (w.supported_task_types or []):
                continue
            if task.job_worker_tag and task.job_worker_tag not in (w.tags or []):
                continue
            out.append(w)
        return out

    def fail_on_worker(self, task, worker, reason: str, activity=None, tail=None, metrics=None,
                       now: float | None = None) -> str:
        """Apply the soft-fail / blocklist / hard-fail rules; returns the task's new status."""
        now = time.time() if now is None else now
        cfg = self.config.failures
        self._add_failed_by(task, worker, now)
        self.state.release_worker_task(worker.id, task.id)

        F = self.m.TaskFailure
        worker_failures = F.select().where((F.worker == worker.id) & (F.job == task.job)
                                           & (F.task_type == task.task_type)).count()
        blocklisted = False
        if worker_failures >= cfg.blocklist_threshold:
            self.m.Blocklist.insert(worker=worker.id, job=task.job, task_type=task.task_type,
                                    created=now).on_conflict_ignore().execute()
            blocklisted = True
            log.warning("worker %s blocklisted for job %s task type %s after %d failures",
                        worker.identifier, task.job, task.task_type, worker_failures)

        n_failed = len(task.failed_by_workers)
        if n_failed >= cfg.task_fail_after_softfail_count:
            new, why = TS.FAILED.value, f"{reason}; {n_failed} workers failed it"
        elif not self.eligible_workers(task):
            new, why = TS.FAILED.value, f"{reason}; no other worker can run it"
        else:
            new, why = TS.SOFT_FAILED.value, f"{reason}; soft-failed, other workers may retry it"
        self.state.change_status(task, new, reason=why, worker=None, activity=activity or why, now=now,
                                 upstream=False)
        self.state.enqueue_update(task, task_status=new, activity=activity or why, log_tail=tail,
                                  metrics=metrics, now=now)
        if blocklisted:
            self._fail_orphaned_softfails(task.job, task.task_type, now)
        return new

    def _fail_orphaned_softfails(self, job: str, task_type: str, now: float) -> None:
        T = self.m.Task
        for other in T.select().where((T.job == job) & (T.task_type == task_type)
                                      & (T.status == TS.SOFT_FAILED.value)):
            if not self.eligible_workers(other):
                self.state.change_status(other, TS.FAILED.value, now=now,
                                         reason="no worker is left that may run it (blocklist)",
                                         activity="failed: every eligible worker failed or is blocklisted",
                                         extra={})

    # --- returns and cancels ---------------------------------------------------

    def return_task(self, worker, task_id: str, now: float | None = None) -> None:
        """POST /tasks/{id}/return: the worker stops and hands the task back."""
        T = self.m.Task
        with self.store.write():
            task = T.get_or_none(T.id == task_id)
            if task is None:
                raise UpdateRejected(404, "not_found", f"task {task_id} is unknown to this Manager")
            if task.worker != worker.id:
                raise UpdateRejected(409, "not_your_task", f"task {task_id} is not assigned to worker {worker.id}")
            if task.status == TS.CANCEL_REQUESTED.value:
                self.state.change_status(task, TS.CANCELED.value, now=now, worker=None,
                                         reason=f"worker {worker.identifier} stopped it as requested")
                self.state.release_worker_task(worker.id, task.id)
            elif task.status == TS.ACTIVE.value:
                self.state.requeue(task, f"worker {worker.identifier} returned the task to the queue", now)
            else:
                self.state.release_worker_task(worker.id, task.id)

    def cancel(self, task_ids: list[str], now: float | None = None) -> int:
        """The Server wants these stopped: held tasks are canceled at once, running ones are asked."""
        T = self.m.Task
        n = 0
        with self.store.write():
            for task in T.select().where(T.id.in_(list(task_ids))):
                if task.status == TS.ACTIVE.value:
                    self.state.change_status(task, TS.CANCEL_REQUESTED.value, now=now, upstream=False,
                                             reason="the Server asked to cancel it; waiting for the worker")
                elif task.status in (TS.QUEUED.value, TS.CLAIMED_BY_MANAGER.value, TS.SOFT_FAILED.value):
                    self.state.change_status(task, TS.CANCELED.value, now=now, worker=None,
                                             reason="canceled by the Server")
                elif task.status == TS.CANCEL_REQUESTED.value and not task.worker:
                    self.state.change_status(task, TS.CANCELED.value, now=now, reason="canceled by the Server")
                elif task.status in (TS.CANCELED.value, TS.FAILED.value, TS.COMPLETED.value):
                    # The Server may have missed our final status: say it again (once in the queue).
                    if not self._pending_upstream(task.id):
                        self.state.enqueue_update(task, task_status=task.status, now=now, send_failed_by=True)
                n += 1
            known = {t.id for t in T.select(T.id).where(T.id.in_(list(task_ids)))}
            for task_id in task_ids:
                if task_id not in known and not self._pending_upstream(task_id):
                    # A task this Manager does not hold (lost database?) is not running here.
                    ghost = T(id=task_id, job="", worker=None, local=False, failed_by_workers=[],
                              task_progress_percentage=0, current_command_idx=0, command_progress_percentage=0)
                    self.state.enqueue_update(ghost, task_status=TS.CANCELED.value, now=now,
                                              activity="canceled: unknown to this Manager")
        return n

    def _pending_upstream(self, task_id: str) -> bool:
        U = self.m.UpstreamItem
        return U.select().where((U.kind == "task-update") & (U.key == task_id)).exists()
