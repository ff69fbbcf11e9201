"""What a worker's task update, a returned task and a cancel from the Server do.

An update's progress and log are the worker's to send only for its own task;
its status moves the task through the state machine, which applies the
failure rules (see failures.py) and tells the Server. A 'canceled' from a
worker for a task nobody asked to cancel means the worker gave it up
(Flamenco 2 workers report that when sent to sleep): the task goes back to
the queue instead.
"""

from __future__ import annotations

import functools
import logging
import time

from backend.errors import ApiError
from shared import documents
from shared.statuses import TASK_CANCEL_REQUESTED_ACCEPTS, TASK_FINAL, TASK_IN_PROGRESS, TASK_RUNNABLE
from shared.statuses import TaskStatus as TS

from .config import ManagerConfig
from .persistence import Persistence
from .state_machine import Report, TaskStateMachine
from .task_logs import TaskLogs, tail_lines

log = logging.getLogger(__name__)


def not_yours(task_id: str, worker_id: str) -> ApiError:
    return ApiError(409, "not_your_task", f"task {task_id} is not assigned to worker {worker_id}")


def unknown_task(task_id: str) -> ApiError:
    return ApiError(404, "not_found", f"task {task_id} is unknown to this Manager")


class TaskUpdates:
    def __init__(self, db: Persistence, config: ManagerConfig, state: TaskStateMachine, logs: TaskLogs):
        self.db, self.config, self.state, self.logs = db, config, state, logs

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
        """Apply one TaskUpdate from `worker`; ApiError 404/409 when the task is not theirs."""
        now = time.time() if now is None else now
        cfg = self.config.logs
        log_text = self._clip_log(update.log)
        activity = update.activity
        if activity is not None and len(activity) > cfg.max_activity_chars:
            activity = activity[: cfg.max_activity_chars] + "…"
        tail = tail_lines(log_text, cfg.log_tail_lines, cfg.log_tail_max_bytes) if log_text else None
        progress = {"current_command_idx": update.current_command_idx,
                    "task_progress_percentage": update.task_progress_percentage,
                    "command_progress_percentage": update.command_progress_percentage}
        new_status = update.task_status
        with self.db.write():
            if new_status == TS.COMPLETED:
                # The common end of a task, in one statement that also proves it was this
                # worker's active task; anything else goes the long way below.
                report = Report(f"completed by worker {worker.identifier}", activity, tail, update.metrics)
                task = self.state.complete_active(task_id, worker, report, now, **progress)
                if task is not None:
                    self._heard_from(worker, task, activity, update.resources, log_text, now)
                    return
            task = self.db.tasks.get(task_id)
            if task is None:
                raise unknown_task(task_id)
            if task.worker != worker.id:
                raise not_yours(task_id, worker.id)
            in_progress = task.status in TASK_IN_PROGRESS
            fields = {"last_worker_ping": now}
            if in_progress:
                fields.update(progress)
                for key, value in progress.items():
                    setattr(task, key, value)
                if activity is not None:
                    fields["activity"] = activity
            self.db.tasks.update(task.id, **fields)
            changed = False
            if in_progress and new_status and new_status != task.status:
                changed = self._status_from_worker(task, worker, new_status,
                                                   Report("", activity, tail, update.metrics), now)
            if not changed and (in_progress or tail):
                # Progress (or, for a task no longer running, only the log) goes up as is;
                # the status and activity of a task the worker no longer owns are dropped.
                self.state.tell_server(task, report=Report(activity=activity if in_progress else None, log_tail=tail,
                                                           metrics=update.metrics if in_progress else None), now=now)
            self._heard_from(worker, task, activity, update.resources, log_text, now)

    def _heard_from(self, worker, task, activity, resources, log_text: str | None, now: float) -> None:
        self.db.workers.touch(worker, activity, resources, now)
        if log_text:
            self.db.after_commit(functools.partial(self._append_log, task, log_text))

    def _append_log(self, task, text: str) -> None:
        try:
            self.logs.append(task.job, task.id, text)
        except (OSError, ValueError) as ex:
            log.warning("task %s: cannot write its log: %s", task.id, ex)

    def _status_from_worker(self, task, worker, new: str, report: Report, now: float) -> bool:
        """Apply a status a worker reported for its in-progress task; True if the Server hears of it.
        (An active task's completion is `apply`'s own fast path.)"""
        who = f"worker {worker.identifier}"
        if task.status == TS.CANCEL_REQUESTED:
            if new not in TASK_CANCEL_REQUESTED_ACCEPTS:
                log.info("task %s: cancel-requested, ignoring status %s from worker", task.id, new)
                return False
            if new == TS.FAILED:
                self.db.tasks.add_failure(task, worker, now)
            report.reason = f"{who} reported {new}"
            return self.state.change_status(task, new, report, now)
        if new == TS.FAILED:
            report.reason = f"{who} reported failure"
            self.state.fail_on_worker(task, worker, report, now)
            return True
        if new == TS.CANCELED:
            self.state.requeue(task, f"{who} gave the task up (reported canceled)", now)
            return True
        if new != TS.ACTIVE:
            log.warning("task %s: worker %s sent status %s, which a worker may not set", task.id, worker.id, new)
        return False

    # --- returns and cancels ---------------------------------------------------

    def return_task(self, worker, task_id: str, now: float | None = None) -> None:
        """POST /tasks/{id}/return: the worker stops and hands the task back."""
        with self.db.write():
            task = self.db.tasks.get(task_id)
            if task is None:
                raise unknown_task(task_id)
            if task.worker != worker.id:
                raise not_yours(task_id, worker.id)
            if task.status == TS.CANCEL_REQUESTED:
                self.state.change_status(task, TS.CANCELED,
                                         Report(f"worker {worker.identifier} stopped it as requested"), now)
            elif task.status == TS.ACTIVE:
                self.state.requeue(task, f"worker {worker.identifier} returned the task to the queue", now)
            else:
                self.db.workers.release_task(worker.id, task.id)

    def cancel(self, task_ids: list[str], now: float | None = None) -> int:
        """The Server wants these stopped: held tasks are canceled at once, running ones are asked."""
        now = time.time() if now is None else now
        n = 0
        with self.db.write():
            tasks = self.db.tasks.of_ids(task_ids)
            for task in tasks:
                if task.status == TS.ACTIVE:
                    self.state.change_status(task, TS.CANCEL_REQUESTED, Report(
                        "the Server asked to cancel it; waiting for the worker", from_server=True), now)
                elif task.status in TASK_RUNNABLE or (task.status == TS.CANCEL_REQUESTED and not task.worker):
                    self.state.change_status(task, TS.CANCELED, Report("canceled by the Server"), now)
                elif task.status in TASK_FINAL and not self.db.upstream.has_task_update(task.id):
                    # The Server may have missed our final status: say it again (once in the queue).
                    self.state.tell_server(task, status=task.status, send_failed_by=True, now=now)
                n += 1
            known = {t.id for t in tasks}
            for task_id in task_ids:
                if task_id not in known and not self.db.upstream.has_task_update(task_id):
                    self.state.tell_server_about(task_id, TS.CANCELED, "canceled: unknown to this Manager", now)
        return n
