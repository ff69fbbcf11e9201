"""The only writer of job and task statuses.

Job changes ripple to their tasks and task changes roll up to their job, in
the caller's write transaction (database.write), so nobody ever sees a job
that disagrees with its tasks. Every move is checked against the tables in
shared/statuses.py. The job row carries its task counts per status and its
progress points; single task changes adjust them, bulk changes recount them.

The rules (Flamenco 2 plus pause and job dependencies):
* cancel / fail: queued and paused tasks -> canceled; claimed, soft-failed
  and active -> cancel-requested. The job settles to canceled / failed once no
  task is active or cancel-requested.
* pause: queued -> paused; claimed and soft-failed -> cancel-requested (they
  come back canceled and become paused); active tasks run to their end. The job
  settles to paused once none is active or cancel-requested. Resume: paused -> queued.
* A task reported failed fails the job once 10% of its tasks failed (soft
  fails do not count); otherwise the job becomes active.
* All tasks completed -> the job completed; jobs depending on it are unblocked.
  A job that fails or is canceled fails the jobs that depend on it.
* Requeue clears the tasks' failure lists and progress.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Iterable

import peewee

from backend.web import conflict
from shared.chunking import chunks
from shared.documents import UpstreamTaskUpdate
from shared.statuses import (JOB_FINAL, JOB_REQUESTED, JOB_RUNNABLE, JOB_USER_TRANSITIONS,
                             TASK_CANCEL_REQUESTED_ACCEPTS, TASK_IN_PROGRESS, TASK_RUNNABLE, JobStatus, TaskStatus,
                             allowed, check, requeue_changes_something, requeue_moves)
from shared.timefmt import parse_iso_utc

from .changes import ChangeFeed, job_topics
from .database import Clock
from .models import Job, JobDependency, JobLogEntry, Task, finish_run, move_tasks, save_dirty, start_run
from .news import CANCEL, TASKS, ManagerNews

log = logging.getLogger(__name__)

J, T = JobStatus, TaskStatus
FAIL_PERCENTAGE = 10
LOG_TAIL_LINES = 10
LOG_TAIL_CHARS = 8192
MAX_METRICS_JSON = 64 * 1024

MANAGER_RUNS = frozenset(TASK_RUNNABLE | {T.ACTIVE})
"""Task statuses a Manager is handed in its depsgraph."""
JOB_SETTLED_FAILURES = {J.FAILED: "failed", J.CANCELED: "was canceled"}
JOB_UNDER_WAY = JOB_RUNNABLE | {J.PAUSE_REQUESTED, J.PAUSED}
"""Jobs that will run, or resume: a dependency's requeue blocks them again, its failure fails them."""


def _points(status: str, progress: float) -> int:
    """What a task adds to its job's progress: 100 when completed, its progress while running."""
    if status == T.COMPLETED:
        return 100
    if status in TASK_IN_PROGRESS:
        return int(round(max(0.0, min(100.0, progress or 0.0))))
    return 0


def _reported_at(reported: str | None, not_before: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """A Manager's ISO timestamp as naive UTC, kept within [not_before, now]; now if unreadable."""
    try:
        value = parse_iso_utc(reported or "")
    except ValueError:
        return now
    if not_before is not None and value < not_before:
        value = not_before
    return min(value, now)


class StateMachine:
    """Status changes for jobs and tasks; every method runs inside the caller's write transaction."""

    def __init__(self, clock: Clock, feed: ChangeFeed | None = None, news: ManagerNews | None = None):
        self.clock = clock
        self.feed = feed or ChangeFeed()
        """Every job saved here is noted in it (published when the caller's transaction commits)."""
        self.news = news or ManagerNews(clock, 0)
        """Told what a job's Manager must learn (its held depsgraph request answers)."""
        self.generation = 0
        """Bumped by every change beyond the rows a caller passed in (ripples, other jobs):
        callers that cache rows across calls reload them when it moved."""

    # --- helpers --------------------------------------------------------------

    def _log(self, job: Job, who: str, what: str, reason: str = "") -> None:
        JobLogEntry.create(job=job.id, created=self.clock.now(), who=who, what=what, reason=reason or "")

    def _count(self, job: Job, status: str) -> int:
        return int(job.task_counts.get(status, 0))

    @staticmethod
    def _shift_counts(job: Job, old: str | None, new: str, n: int = 1) -> None:
        """`n` of the job's tasks went from `old` (None: stored just now) to `new`, in its task_counts."""
        counts = dict(job.task_counts)
        if old is not None:
            counts[old] = counts.get(old, 0) - n
            if counts[old] <= 0:
                counts.pop(old)
        counts[new] = counts.get(new, 0) + n
        job.task_counts = counts

    def recount(self, job: Job) -> None:
        """Task counts and progress of the job from its tasks (after bulk changes)."""
        counts: dict[str, int] = {}
        points = 0
        rows = (Task.select(Task.status, peewee.fn.COUNT(Task.id),
                            peewee.fn.SUM(peewee.Case(None, [(Task.status.in_(list(TASK_IN_PROGRESS)),
                                                               Task.progress)], 0)))
                .where(Task.job == job.id).group_by(Task.status).tuples())
        for status, n, progress_sum in rows:
            counts[status] = int(n)
            if status == T.COMPLETED:
                points += 100 * int(n)
            elif status in TASK_IN_PROGRESS:
                points += int(round(float(progress_sum or 0)))
        job.task_counts = counts
        job.tasks_total = sum(counts.values()) + job.tasks_to_store
        job.progress_points = points

    def _save_job(self, job: Job) -> None:
        job.updated = self.clock.now()
        save_dirty(job)
        self.feed.note(*job_topics(job))
        if job.manager_id:
            self.feed.note(f"manager:{job.manager_id}")  # its tasks may have to start, stop or change

    def job_changed(self, job: Job) -> None:
        """A job (or its tasks) changed outside the status rules (progress): note it for the pages."""
        self.feed.note(*job_topics(job))

    def _set_job_status(self, job: Job, new: JobStatus, who: str, reason: str = "", quiet: bool = False) -> None:
        old = job.status
        if old == new:
            return
        check("job", old, new)
        self.generation += 1
        job.status = new.value
        if reason or new in (J.QUEUED, J.ACTIVE, J.COMPLETED):
            job.status_reason = reason
        self._save_job(job)
        if not quiet:
            self._log(job, who, f"status {old} -> {new}", reason)
        log.info("job %s: %s -> %s (%s)%s", job.id, old, new, who, f": {reason}" if reason else "")
        if new == J.COMPLETED:
            self._unblock_dependents(job, who)
        elif new in JOB_SETTLED_FAILURES:
            self._fail_dependents(job, JOB_SETTLED_FAILURES[new])

    def _bulk_task_status(self, job: Job, from_statuses: Iterable[TaskStatus], to: TaskStatus,
                          reset: bool = False, ids: list[str] | None = None) -> int:
        """Move the job's tasks in `from_statuses` (optionally only `ids`) to `to`; no recount."""
        froms = [s for s in from_statuses if s != to]
        for s in froms:
            check("task", s, to)
        if not froms:
            return 0
        self.generation += 1
        values = {Task.status: to.value, Task.updated: self.clock.now()}
        if reset:
            values.update({Task.failed_by_workers: [], Task.progress: 0, Task.command_progress: 0,
                           Task.current_command_idx: 0, Task.activity: "", Task.worker: None,
                           Task.started: None, Task.finished: None, Task.canceled_by: None})
        if ids is None:
            n = Task.update(values).where(Task.job == job.id, Task.status.in_(froms)).execute()
        else:
            n = 0
            for chunk in chunks(ids):  # the job's own ids: by primary key (the job index would scan the job)
                n += Task.update(values).where(Task.id.in_(chunk), Task.status.in_(froms)).execute()
        if n:
            self._tell_manager(job, to)
        return n

    def _tell_manager(self, job: Job, to: TaskStatus) -> None:
        """Tasks of the job became `to`: news for its Manager if that is something it acts on."""
        if to == T.CANCEL_REQUESTED:
            self.news.notify(job.manager_id, CANCEL)
        elif to.value in MANAGER_RUNS:
            self.news.notify(job.manager_id, TASKS)

    # --- new jobs ---------------------------------------------------------------

    def new_task_status(self, job: Job) -> TaskStatus:
        """The status a new job's tasks are stored with, in the transaction that flips the job."""
        status = T.PAUSED if job.start_paused else T.QUEUED
        check("task", T.UNDER_CONSTRUCTION, status)
        return status

    def flip_new_job(self, job: Job, task_count: int, who: str, to_store: int = 0) -> None:
        """under-construction -> queued (or paused), in the transaction that stored its tasks.

        The tasks were built under construction in memory and are written with
        the status they flip to, stamped with the job's stamp: one transaction,
        so no Manager ever sees a half-built job, without rewriting every row.
        `to_store`: more tasks of the job that task_storing stores after this
        commit; they count in tasks_total from now on, so the job cannot complete
        before they are there.
        """
        target = J.PAUSED if job.start_paused else J.QUEUED
        job.task_counts = {self.new_task_status(job).value: task_count}
        job.tasks_total = task_count + to_store
        job.tasks_to_store = to_store
        job.progress_points = 0
        self._set_job_status(job, target, who, quiet=True)
        if target == J.QUEUED and not job.blocked:
            self.news.notify(job.manager_id, TASKS)

    def late_task_status(self, job: Job) -> TaskStatus:
        """The status of a job's tasks stored after it was queued: what its stored tasks would have."""
        status = JobStatus(job.status)
        if status in JOB_RUNNABLE or status == J.REQUEUED:
            return T.QUEUED
        if status in (J.PAUSED, J.PAUSE_REQUESTED):
            return T.PAUSED
        return T.CANCELED  # canceled or failed (or on the way): nothing more of it runs

    def stored_late(self, job: Job, status: TaskStatus, count: int) -> None:
        """`count` more of the job's tasks were stored with `status` in this transaction."""
        check("task", T.UNDER_CONSTRUCTION, status)
        self._shift_counts(job, None, status.value, count)
        job.tasks_to_store -= count
        if not job.tasks_to_store:
            self._log(job, "the Server", f"all {job.tasks_total} tasks stored")
        self._save_job(job)
        if status == T.QUEUED and not job.blocked:
            self.news.notify(job.manager_id, TASKS)

    def construction_failed(self, job: Job, who: str, reason: str) -> None:
        self._set_job_status(job, J.CONSTRUCTION_FAILED, who, reason)

    # --- requests from people -------------------------------------------------

    def request_job_status(self, job: Job, target: JobStatus, who: str, reason: str = "") -> None:
        """A person asks for `target`; 409 if the tables do not allow it from here."""
        old = JobStatus(job.status)
        if target == old:
            return
        if target not in JOB_USER_TRANSITIONS.get(old, frozenset()):
            raise conflict(f"job {job.id} cannot go from '{old}' to '{target}'", "invalid_transition")
        if target == J.REQUEUED:
            self.requeue_job(job, who, reason)
            return
        if target in (J.CANCEL_REQUESTED, J.FAIL_REQUESTED):
            self._stop_job(job, target, who, reason)
        elif target == J.PAUSE_REQUESTED:
            self._set_job_status(job, J.PAUSE_REQUESTED, who, reason)
            self._bulk_task_status(job, [T.QUEUED], T.PAUSED)
            self._bulk_task_status(job, [T.CLAIMED_BY_MANAGER, T.SOFT_FAILED], T.CANCEL_REQUESTED)
            self.recount(job)
            self._settle(job, who)
        elif target == J.QUEUED:
            self._set_job_status(job, J.QUEUED, who, reason)
            self._bulk_task_status(job, [T.PAUSED], T.QUEUED)
            self.recount(job)
            self._settle(job, who)
        elif target == J.CANCELED:  # waiting-for-files: no tasks yet
            self._set_job_status(job, J.CANCELED, who, reason)
        else:
            raise conflict(f"job {job.id}: '{target}' cannot be requested", "invalid_transition")
        self._save_job(job)

    def _stop_job(self, job: Job, target: JobStatus, who: str, reason: str) -> None:
        """cancel-requested / fail-requested: stop what runs, cancel the rest, settle if nothing runs."""
        self._set_job_status(job, target, who, reason)
        self._bulk_task_status(job, [T.QUEUED, T.PAUSED], T.CANCELED)
        self._bulk_task_status(job, [T.CLAIMED_BY_MANAGER, T.SOFT_FAILED, T.ACTIVE], T.CANCEL_REQUESTED)
        self.recount(job)
        self._settle(job, who)

    def requeue_job(self, job: Job, who: str, reason: str = "", failed_only: bool = False) -> int:
        """Requeue a job's unfinished tasks (all of them when it had completed); the number requeued.

        409 'nothing_to_requeue' when no task would move (a queued or active job
        without failed, canceled or paused tasks): a requeue that changes nothing is
        an error the person should see, not a quiet "requeued 0 tasks".
        """
        old = JobStatus(job.status)
        if J.REQUEUED not in JOB_USER_TRANSITIONS[old]:
            raise conflict(f"job {job.id} in '{old}' cannot be requeued", "invalid_transition")
        froms = sorted(requeue_moves(old, failed_only))
        if not requeue_changes_something(old, job.task_counts, failed_only):
            raise conflict(f"job {job.id} ({old}) has no {', '.join(froms)} tasks, so requeueing it would change "
                           "nothing: its other tasks are queued, running or done", "nothing_to_requeue")
        n = self._bulk_task_status(job, froms, T.QUEUED, reset=True)
        what = f"requeued {n} {'failed ' if failed_only else ''}task{'s' if n != 1 else ''}"
        if old not in JOB_RUNNABLE:
            self._set_job_status(job, J.REQUEUED, who, reason, quiet=True)
            self._set_job_status(job, J.QUEUED, who, reason, quiet=True)
            what += f"; status {old} -> queued"
        self._log(job, who, what, reason)
        if old == J.COMPLETED:
            self._reblock_dependents(job, who)
        self.recount(job)
        self._settle(job, who)
        self._save_job(job)
        return n

    def requeue_task(self, task: Task, job: Job, who: str, reason: str = "") -> int:
        """Requeue a task and everything that depends on it, directly or not; the number requeued."""
        status = JobStatus(job.status)
        if status in (J.UNDER_CONSTRUCTION, J.CONSTRUCTION_FAILED, J.WAITING_FOR_FILES, J.ARCHIVING,
                      J.ARCHIVED) or status in JOB_REQUESTED:
            raise conflict(f"tasks of job {job.id} in '{status}' cannot be requeued", "invalid_transition")
        if task.status in TASK_IN_PROGRESS:
            raise conflict(f"task {task.id} is '{task.status}'; it can be requeued once it stopped",
                           "invalid_transition")
        rows = list(Task.select(Task.id, Task.parents, Task.status).where(Task.job == job.id).tuples())
        children: dict[str, list[str]] = {}
        statuses = {}
        for tid, parents, st in rows:
            statuses[tid] = st
            for p in parents or ():
                children.setdefault(p, []).append(tid)
        todo, seen = [task.id], {task.id}
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        ids = [tid for tid in seen if statuses[tid] not in TASK_IN_PROGRESS]
        target = T.PAUSED if status == J.PAUSED else T.QUEUED
        froms = [s for s in TaskStatus if s not in TASK_IN_PROGRESS and s != T.UNDER_CONSTRUCTION and allowed(
            "task", s, target)]
        n = self._bulk_task_status(job, froms, target, reset=True, ids=ids)
        if status in JOB_FINAL:
            self._set_job_status(job, J.REQUEUED, who, reason, quiet=True)
            self._set_job_status(job, J.QUEUED, who, reason, quiet=True)
            if status == J.COMPLETED:
                self._reblock_dependents(job, who)
        self._log(job, who, f"requeued task {task.name} ({task.id}) and {n - 1 if n else 0} dependent "
                            f"task(s)", reason)
        self.recount(job)
        self._settle(job, who)
        self._save_job(job)
        return n

    def cancel_tasks(self, job: Job, task_ids: list[str], who: str, reason: str = "") -> int:
        """Cancel these tasks alone (the job goes on): waiting ones at once, those a Manager holds or runs
        through cancel-requested. They stay canceled until requeued; the number canceled."""
        status = JobStatus(job.status)
        if status not in JOB_UNDER_WAY:
            raise conflict(f"tasks of job {job.id} in '{status}' cannot be canceled one by one", "invalid_transition")
        wanted = [tid for tid in task_ids if isinstance(tid, str)]
        n = self._bulk_task_status(job, [T.QUEUED, T.PAUSED], T.CANCELED, ids=wanted)
        n += self._bulk_task_status(job, [T.CLAIMED_BY_MANAGER, T.SOFT_FAILED, T.ACTIVE], T.CANCEL_REQUESTED,
                                    ids=wanted)
        if not n:
            raise conflict("none of these tasks is waiting or running: there is nothing to cancel",
                           "nothing_to_cancel")
        for chunk in chunks(wanted):
            Task.update({Task.canceled_by: who[:200]}).where(
                Task.job == job.id, Task.id.in_(chunk),
                Task.status.in_([T.CANCELED.value, T.CANCEL_REQUESTED.value])).execute()
        self._log(job, who, f"canceled {n} task{'s' if n != 1 else ''}", reason)
        self.recount(job)
        self._settle(job, who)
        self._save_job(job)
        return n

    def set_job_priority(self, job: Job, priority: int, who: str, reason: str = "") -> None:
        old = job.priority
        if old == priority:
            return
        job.priority = priority
        Task.update({Task.job_priority: priority, Task.updated: self.clock.now()}).where(
            Task.job == job.id).execute()
        self.news.notify(job.manager_id, TASKS)
        self._save_job(job)
        self._log(job, who, f"priority {old} -> {priority}", reason)

    # --- dependencies -----------------------------------------------------------

    def _dependents(self, job: Job) -> list[Job]:
        return list(Job.select().join(JobDependency, on=(JobDependency.job == Job.id))
                    .where(JobDependency.depends_on == job.id))

    def _unblock_dependents(self, job: Job, who: str) -> None:
        for dep in self._dependents(job):
            if not dep.blocked:
                continue
            pending = (Job.select(Job.id).join(JobDependency, on=(JobDependency.depends_on == Job.id))
                       .where(JobDependency.job == dep.id, Job.status != J.COMPLETED).count())
            if pending:
                continue
            self.generation += 1
            dep.blocked = False
            self._save_job(dep)
            Task.update({Task.updated: self.clock.now()}).where(Task.job == dep.id).execute()
            self.news.notify(dep.manager_id, TASKS)
            self._log(dep, who, f"unblocked: job {job.name} ({job.id}) and its other dependencies completed")

    def _reblock_dependents(self, job: Job, who: str) -> None:
        for dep in self._dependents(job):
            if dep.blocked or dep.status not in JOB_UNDER_WAY:
                continue
            self.generation += 1
            dep.blocked = True
            self._save_job(dep)
            self._log(dep, who, f"blocked again: job {job.name} ({job.id}) was requeued")

    def _fail_dependents(self, job: Job, how: str) -> None:
        for dep in self._dependents(job):
            if dep.status not in JOB_UNDER_WAY:
                continue
            self._stop_job(dep, J.FAIL_REQUESTED, "server",
                           f"depends on job {job.name} ({job.id}), which {how}")
            self._save_job(dep)

    # --- the Manager's reports --------------------------------------------------

    def apply_task_update(self, task: Task, job: Job, update: UpstreamTaskUpdate, who: str) -> bool:
        """One update from the Manager: progress fields, then the status with its roll-up.

        A status the task may not take is ignored (the progress is kept); the
        update is handled either way. Returns whether the status changed.
        """
        old = task.status
        old_points = _points(old, task.progress)
        if update.activity is not None:
            task.activity = update.activity[:2000]
        task.progress = float(update.task_progress_percentage or 0)
        task.current_command_idx = update.current_command_idx
        task.command_progress = float(update.command_progress_percentage or 0)
        if update.metrics is not None and len(json.dumps(update.metrics, default=str)) <= MAX_METRICS_JSON:
            task.metrics = update.metrics
        if update.worker:
            task.worker = update.worker[:200]
        if update.failed_by_workers is not None:
            task.failed_by_workers = [f.to_dict() for f in update.failed_by_workers]
        if update.log_tail:
            task.log_tail = "\n".join(update.log_tail.splitlines()[-LOG_TAIL_LINES:])[-LOG_TAIL_CHARS:]
        elif update.log:
            lines = (task.log_tail.splitlines() if task.log_tail else []) + update.log[-LOG_TAIL_CHARS:].splitlines()
            task.log_tail = "\n".join(lines[-LOG_TAIL_LINES:])[-LOG_TAIL_CHARS:]

        new = self._effective_status(task, job, update.task_status)
        changed = new is not None and new != old
        if changed:
            task.status = new.value
            now = self.clock.now()
            if new.value != update.task_status:
                # The Server made something else of the report (a cancel or a resume overtook
                # it): news for the Manager. What it reported itself is not sent back to it.
                task.updated = now
                self._tell_manager(job, new)
            self._stamp_run(task, old, new, update.received_on_manager, now)
            self._shift_counts(job, old, new.value)
        elif update.task_status == T.ACTIVE and task.started is None and old in TASK_IN_PROGRESS:
            # 'active' ignored because a cancel overtook it: the worker did start the task
            task.started = _reported_at(update.received_on_manager, task.created, self.clock.now())
        job.progress_points += _points(task.status, task.progress) - old_points
        save_dirty(task)
        if changed:
            self._roll_up(job, new, who)
        return changed

    def _stamp_run(self, task: Task, old: str, new: TaskStatus, reported: str | None, now: dt.datetime) -> None:
        """started/finished of the task's latest run, at the time its Manager received the change.

        The Manager's time is right even when its updates reach the Server late
        (queued while the link was down); it is kept between the task's creation
        (or start) and now, so a Manager's wrong clock cannot draw nonsense.
        """
        if new == T.ACTIVE and old != T.ACTIVE:
            task.started, task.finished = _reported_at(reported, task.created, now), None
            start_run(task.id, task.job_id, task.worker, task.started)
        elif new not in TASK_IN_PROGRESS and (old in TASK_IN_PROGRESS or new in (T.COMPLETED, T.FAILED, T.SOFT_FAILED)):
            task.finished = _reported_at(reported, task.started or task.created, now)
            ended = new in (T.COMPLETED, T.FAILED, T.SOFT_FAILED)
            finish_run(task.id, task.job_id, task.worker, (task.started or task.finished) if ended else None,
                       task.finished, new.value, (task.activity or "")[:2000], task.log_tail or "")

    def _effective_status(self, task: Task, job: Job, reported: str | None) -> TaskStatus | None:
        """The status a report leads to, or None to keep the current one."""
        if not reported or reported == task.status:
            return None
        old, new = TaskStatus(task.status), TaskStatus(reported)
        jstatus = JobStatus(job.status)
        if old == T.CANCEL_REQUESTED:
            if new not in TASK_CANCEL_REQUESTED_ACCEPTS:
                return None
            if new == T.CANCELED:
                if task.canceled_by:
                    pass  # canceled on its own by a person: it stays canceled
                elif jstatus in (J.PAUSE_REQUESTED, J.PAUSED):
                    new = T.PAUSED
                elif jstatus in JOB_RUNNABLE:
                    new = T.QUEUED
        elif jstatus in (J.PAUSE_REQUESTED, J.PAUSED, J.CANCEL_REQUESTED, J.FAIL_REQUESTED) \
                and new in TASK_RUNNABLE:
            new = T.CANCEL_REQUESTED  # the Manager still holds it; make it let go
        if not allowed("task", old, new):
            log.warning("task %s: ignoring reported status %s (it is %s)", task.id, reported, old)
            return None
        return new

    def _roll_up(self, job: Job, new: TaskStatus, who: str) -> None:
        status = JobStatus(job.status)
        total = job.tasks_total
        if status in JOB_RUNNABLE:
            if new == T.COMPLETED and self._count(job, T.COMPLETED) == total:
                self._set_job_status(job, J.COMPLETED, who)
            elif new == T.FAILED:
                failed = self._count(job, T.FAILED)
                if failed * 100 >= FAIL_PERCENTAGE * total:
                    pct = failed * 100 / total
                    self._stop_job(job, J.FAIL_REQUESTED, who,
                                   f"{failed} of {total} tasks ({pct:.0f}%) failed")
                elif status == J.QUEUED:
                    self._set_job_status(job, J.ACTIVE, who)
            elif new in (T.ACTIVE, T.SOFT_FAILED, T.COMPLETED) and status == J.QUEUED:
                self._set_job_status(job, J.ACTIVE, who)
            elif new in (T.CLAIMED_BY_MANAGER, T.QUEUED) and status == J.ACTIVE \
                    and self._count(job, T.ACTIVE) == 0:
                self._set_job_status(job, J.QUEUED, who)
            if new in (T.COMPLETED, T.CANCELED) and JobStatus(job.status) in JOB_RUNNABLE:
                self._settle(job, who)  # done, but for tasks canceled on their own
        elif status == J.COMPLETED and new in (T.QUEUED, T.CLAIMED_BY_MANAGER):
            self._set_job_status(job, J.QUEUED, who)
        else:
            self._settle(job, who)

    def _settle(self, job: Job, who: str) -> None:
        """'-requested' -> its end once nothing runs; all tasks completed -> completed."""
        status = JobStatus(job.status)
        total = job.tasks_total
        all_done = total > 0 and self._count(job, T.COMPLETED) == total
        if status in JOB_REQUESTED:
            if sum(self._count(job, s) for s in TASK_IN_PROGRESS) == 0:
                self._set_job_status(job, JOB_REQUESTED[status], who, job.status_reason)
        elif status in JOB_RUNNABLE and all_done:
            self._set_job_status(job, J.COMPLETED, who)
        elif status in JOB_RUNNABLE and self._count(job, T.CANCELED) and \
                self._count(job, T.COMPLETED) + self._count(job, T.CANCELED) == total:
            n = self._count(job, T.CANCELED)
            self._set_job_status(job, J.CANCELED, who, f"{n} task{'s' if n != 1 else ''} canceled; "
                                                       "the others completed")

    # --- the depsgraph claim ------------------------------------------------------

    def claim(self, job: Job, ids: list[str]) -> int:
        """queued -> claimed-by-manager for these tasks of the job, handed out now.

        The caller read them in this transaction, under the write lock, so the
        UPDATE claims exactly what it sends. Not stamped: the claim is no news for
        the Manager, which gets the tasks in the very answer.
        """
        check("task", T.QUEUED, T.CLAIMED_BY_MANAGER)
        n = 0
        for chunk in chunks(ids):  # by primary key: with the job in the condition SQLite walks the job's index
            n += move_tasks(chunk, T.QUEUED, T.CLAIMED_BY_MANAGER)
        if n:
            self._shift_counts(job, T.QUEUED.value, T.CLAIMED_BY_MANAGER.value, n)
            job.save()
            self.job_changed(job)
        return n
