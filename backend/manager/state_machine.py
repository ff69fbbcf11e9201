"""The Manager's task state machine: every status a task takes goes through here.

`change_status(task, new, report)` checks the move against shared.statuses and
owns what follows from it, so no caller has to remember: the worker that ran
the task is released (and its held long-poll ended) when the task stops
running; a task back in the queue forgets its worker; the reason becomes a
line in the task's log; the Server
hears of it through the upstream queue (in the same transaction, so the
queue and the task never disagree; not for a change the Server itself asked
for, nor for Manager-local tasks); and waiting workers are woken, one per
task that became runnable, once the transaction has committed.

The failure rules (soft-fail, blocklist, hard fail) are moves of this machine
too: `fail_on_worker` applies them, with the verdicts of failures.py.
Callers hold a write transaction (`db.write()` or `db.batched(...)`).
"""

from __future__ import annotations

import functools
import logging
import time
import types
import uuid
from dataclasses import dataclass

from shared import statuses
from shared.statuses import TASK_IN_PROGRESS, TASK_RUNNABLE, TaskStatus as TS
from shared.timefmt import iso_utc

from . import failures
from .config import ManagerConfig
from .persistence import TASK_UPDATE, Persistence
from .task_logs import TaskLogs
from .wakeup import Wakeup

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What goes with a status change."""
    reason: str = ""
    """Why: a line in the task's log and in the Manager's log."""
    activity: str | None = None
    """What the task is doing now, stored and sent to the Server."""
    log_tail: str | None = None
    metrics: dict | None = None
    from_server: bool = False
    """The Server asked for this change (a cancel, a requeue, a task it dropped): not echoed back."""


def log_line(message: str, now: float | None = None) -> str:
    """A line of a task's log as Flamenco writes them: '<ISO UTC time>: message'."""
    return f"{iso_utc(now)}: {message}"


class TaskStateMachine:
    def __init__(self, db: Persistence, config: ManagerConfig, logs: TaskLogs, wakeup: Wakeup):
        self.db, self.config, self.logs, self.wakeup = db, config, logs, wakeup
        self.queued_for_server = None
        """Called once an update for the Server was queued and committed (the pusher sends it now)."""

    # --- moves ---------------------------------------------------------------

    def change_status(self, task, new: str, report: Report | None = None, now: float | None = None) -> bool:
        """Move `task` to `new` with all that follows; False (and nothing changed) when the
        tables forbid it."""
        report = report or Report()
        old = task.status
        if not statuses.allowed("task", old, new):
            log.warning("task %s: refusing status change %s -> %s (%s)", task.id, old, new, report.reason)
            return False
        now = time.time() if now is None else now
        fields = {"status": new, "updated": now}
        if report.activity is not None:
            fields["activity"] = task.activity = report.activity
        ran_on = task.worker
        if new in TASK_RUNNABLE:
            fields["worker"] = task.worker = None
        self.db.tasks.update(task.id, **fields)
        task.status = new
        self._followed_by(task, old, new, report, ran_on, now)
        return True

    def complete_active(self, task_id: str, worker, report: Report, now: float, *, current_command_idx: int,
                        task_progress_percentage: float, command_progress_percentage: float):
        """The worker's active task is completed: the common end of every task, in one
        statement that also proves it is; the task, or None (then the caller looks at it
        the long way, through `change_status`)."""
        task = self.db.tasks.complete_active(task_id, worker.id, now, report.activity, current_command_idx,
                                             task_progress_percentage, command_progress_percentage)
        if task is not None:
            self._followed_by(task, TS.ACTIVE, TS.COMPLETED, report, worker.id, now)
        return task

    def assigned(self, task, worker, now: float) -> None:
        """What follows a claim (persistence made the task active for the worker): the Server
        hears it, and the task's log starts a new run."""
        self.tell_server(task, status=TS.ACTIVE, report=Report(activity=f"assigned to worker {worker.nickname}"),
                         now=now)
        self.db.after_commit(functools.partial(self._start_run, task, worker, now))

    def requeue(self, task, reason: str, now: float | None = None) -> bool:
        """Give a task back to the queue (return, sign-off, timeout, immediate sleep)."""
        return self.change_status(task, TS.CLAIMED_BY_MANAGER, Report(reason, activity=reason), now)

    def requeue_worker_tasks(self, worker, reason: str, now: float) -> int:
        """The worker is gone or starts afresh: what it was running goes back to the queue
        (or is canceled, if that was asked for); it points at no task any more."""
        tasks = self.db.tasks.in_progress_of(worker.id, TASK_IN_PROGRESS)
        for task in tasks:
            if task.status == TS.CANCEL_REQUESTED:
                self.change_status(task, TS.CANCELED, Report(f"{reason}; it was being canceled"), now)
            else:
                self.requeue(task, reason, now)
        self.db.workers.release_task(worker.id)
        return len(tasks)

    def fail_on_worker(self, task, worker, report: Report, now: float | None = None) -> str:
        """The task failed on this worker: the soft-fail, blocklist and hard-fail rules
        (failures.py) say what becomes of it and of the worker; the task's new status."""
        now = time.time() if now is None else now
        rules = self.config.failures
        self.db.tasks.add_failure(task, worker, now)
        blocklisted = failures.should_blocklist(self.db.tasks.failures_of(worker.id, task.job, task.task_type),
                                                rules)
        if blocklisted:
            self.db.workers.block(worker.id, task.job, task.task_type, now)
            log.warning("worker %s blocklisted for job %s task type %s", worker.identifier, task.job,
                        task.task_type)
        new, why = failures.verdict(len(task.failed_by_workers), lambda: bool(self.eligible_workers(task)), rules)
        why = f"{report.reason}; {why}"
        self.change_status(task, new, Report(why, activity=report.activity or why, log_tail=report.log_tail,
                                             metrics=report.metrics), now)
        if blocklisted:
            self._fail_orphaned_softfails(task.job, task.task_type, now)
        return new

    def eligible_workers(self, task) -> list:
        """Workers that could still run `task`: not among those that failed it, not blocklisted."""
        return self.db.workers.eligible_for(task, excluded=self.db.tasks.failed_by(task.id))

    def _fail_orphaned_softfails(self, job: str, task_type: str, now: float) -> None:
        for other in self.db.tasks.of_job_type_in(job, task_type, TS.SOFT_FAILED):
            if not self.eligible_workers(other):
                self.change_status(other, TS.FAILED, Report(
                    "no worker is left that may run it (blocklist)",
                    activity="failed: every eligible worker failed or is blocklisted"), now)

    # --- what follows ----------------------------------------------------------

    def _followed_by(self, task, old: str, new: str, report: Report, ran_on: str | None, now: float) -> None:
        if old == new:
            return
        # A completion is the common case, one per task: the assignment was logged at info.
        log.log(logging.DEBUG if new == TS.COMPLETED else logging.INFO, "task %s: %s -> %s%s",
                task.id, old, new, f" ({report.reason})" if report.reason else "")
        if ran_on and old in TASK_IN_PROGRESS and new not in TASK_IN_PROGRESS:
            self.db.workers.release_task(ran_on, task.id)
            # A worker with slots has room again: its held request ends, so it asks with that room.
            self.db.after_commit(functools.partial(self.wakeup.notify_worker, ran_on))
        if report.reason:
            self.db.after_commit(functools.partial(self._log_line, task.job, task.id,
                                                   log_line(f"Manager: {report.reason}", now)))
        if not report.from_server:
            self.tell_server(task, status=new, report=report, now=now)
        if new in TASK_RUNNABLE:
            self.db.after_commit(self.wakeup.notify)
        elif new == TS.COMPLETED:
            self.db.after_commit(functools.partial(
                self.wakeup.notify_counted, functools.partial(self.db.tasks.runnable_children, task.id)))

    def tell_server(self, task, *, status: str | None = None, report: Report | None = None,
                    send_failed_by: bool = False, now: float | None = None) -> None:
        """Queue one UpstreamTaskUpdate about `task` (not for Manager-local tasks or when unlinked)."""
        if task.local or not self.config.upstream.linked:
            return
        now = time.time() if now is None else now
        payload = {
            "_id": uuid.uuid4().hex,
            "task_id": task.id,
            "received_on_manager": iso_utc(now),
            "worker": task.worker or "",
            "task_progress_percentage": task.task_progress_percentage,
            "current_command_idx": task.current_command_idx,
            "command_progress_percentage": task.command_progress_percentage,
        }
        if status:
            payload["task_status"] = str(status)
        if report is not None:
            for key, value in (("activity", report.activity), ("log_tail", report.log_tail),
                               ("metrics", report.metrics)):
                if value is not None and (value or key == "activity"):
                    payload[key] = value
        if send_failed_by or status in (TS.SOFT_FAILED, TS.FAILED):
            payload["failed_by_workers"] = task.failed_by_workers or []
        self.db.upstream.enqueue(TASK_UPDATE, task.id, payload, now)
        if self.queued_for_server is not None:
            self.db.after_commit(self.queued_for_server)

    def tell_server_about(self, task_id: str, status: str, activity: str, now: float) -> None:
        """What became of a task this Manager does not hold: one it was asked to cancel but
        never had (a lost database?), or one it would not take."""
        ghost = types.SimpleNamespace(id=task_id, local=False, worker=None, failed_by_workers=[],
                                      task_progress_percentage=0, current_command_idx=0,
                                      command_progress_percentage=0)
        self.tell_server(ghost, status=status, report=Report(activity=activity), now=now)

    def _log_line(self, job: str, task_id: str, line: str) -> None:
        try:
            self.logs.append(job, task_id, line)
        except (OSError, ValueError) as ex:
            log.warning("task %s: cannot write its log: %s", task_id, ex)

    def _start_run(self, task, worker, now: float) -> None:
        try:
            self.logs.start_run(task.job, task.id, log_line(f"Manager: task assigned to worker {worker.identifier}",
                                                            now))
        except (OSError, ValueError) as ex:
            log.warning("task %s: cannot write its log: %s", task.id, ex)
        log.info("worker %s: assigned task %s (%s)", worker.identifier, task.id, task.name)
