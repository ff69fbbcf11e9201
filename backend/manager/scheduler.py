"""Which task a worker gets next, claimed atomically, and the Task document it receives.

Runnable for a worker: status queued / claimed-by-manager / soft-failed; every
parent the Manager holds is completed (a parent it does not hold was never
handed to it because it was already done); the task type is one the worker
does; the worker has not failed this task before and is not blocklisted for
the job's task type; the job's worker tag, if any, is one of the worker's
tags; the job's memory need, if any, fits the worker's last reported free
memory (a worker that never reported memory, like a Flamenco 2 worker, is not
held back). Order: job priority desc, task priority desc, oldest first.
(persistence/tasks.py says this in SQL.)

A worker with slots (our extension, docs/protocol.md) says what it has free
with each request; it gets the best task that fits, then the best that fits
what is left, and so on (shared/slots.py), all in one transaction. The
memory rule then uses the free memory it sent, less what earlier claims of
the same request booked.

The Server's job dependencies are not checked here: the Server only hands out
tasks of jobs whose dependencies are done.
"""

from __future__ import annotations

import logging
import time

from shared import documents

from .config import ManagerConfig
from .persistence import Persistence
from .state_machine import TaskStateMachine

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, db: Persistence, config: ManagerConfig, state: TaskStateMachine):
        self.db, self.config, self.state = db, config, state
        self._found_work = False
        """Whether the last claim found a task: then the next one skips the read-only look."""

    def claim(self, worker, now: float | None = None):
        """The task this worker should run now, marked active for it; None if there is none.

        A worker that asks while it runs a task gets that task again. Otherwise the
        claim is one conditional update that picks the best candidate, proves it still
        runnable and the worker still eligible, and returns the row, so a task goes to
        exactly one worker however many ask at once. Called outside a transaction, it
        first looks read-only (WAL readers do not block), so idle workers polling an
        empty queue do not take the write lock, except right after a claim found work;
        inside one (the database thread's batch) the claim statement is the look.
        """
        now = time.time() if now is None else now
        if not worker.supported_task_types:
            return None
        self.db.ensure_connected()
        # A task becomes active only by a claim, which points the worker at it in the same
        # transaction, and whatever ends or requeues it clears that: no pointer, no task.
        own = self.db.tasks.own_active(worker.id) if worker.current_task else None
        if own is not None:
            log.info("worker %s: re-serving its active task %s", worker.identifier, own.id)
            with self.db.write():
                self.db.tasks.reserve(own.id, worker.id, now)
            return own
        if not (self._found_work or self.db.in_write()) and not self.db.tasks.candidates(worker, limit=1):
            return None
        with self.db.write():
            task = self.db.tasks.claim(worker, now)
            if task is not None:
                self.state.assigned(task, worker, now)
        self._found_work = task is not None
        return task

    def claim_several(self, worker, request: documents.TaskRequest, now: float | None = None) -> list:
        """The tasks a worker with slots should start now, as many as fit what it has free, each
        claimed by its own guarded statement, all in one transaction; [] if none fits.

        Active tasks of the worker that it does not list as held were claimed for it but the
        answer got lost: those come again, and nothing new with them (the worker asks again
        once it runs them)."""
        now = time.time() if now is None else now
        if not worker.supported_task_types:
            return []
        self.db.ensure_connected()
        if worker.current_task:
            held = set(request.running)
            lost = [t for t in self.db.tasks.all_own_active(worker.id) if t.id not in held]
            if lost:
                log.info("worker %s: re-serving %d active task(s) it does not know of: %s", worker.identifier,
                         len(lost), ", ".join(t.id for t in lost))
                with self.db.write():
                    for task in lost:
                        self.db.tasks.reserve(task.id, worker.id, now)
                return lost
        free = request.free()
        if not (self._found_work or self.db.in_write()) and not self.db.tasks.candidates(
                worker, limit=1, needs=free.fitting(), memory_mb=free.memory_mb):
            return []
        claimed = []
        with self.db.write():
            while not free.empty:
                task = self.db.tasks.claim(worker, now, free.fitting(), free.memory_mb)
                if task is None:
                    break
                self.state.assigned(task, worker, now)
                claimed.append(task)
                free = free.after(task.needs, task.job_memory_mb)
        self._found_work = bool(claimed)
        return claimed

    def pass_on_wakeup(self, looked_at: int) -> None:
        """This long-poll was woken for a task but did not take one: wake another that has
        not looked since, if there is still something runnable (a task only another worker
        may run, or one whose waiter went away)."""
        if self.state.wakeup.waiting and self.db.tasks.has_runnable():
            self.state.wakeup.pass_on(looked_at)

    def task_document(self, task, worker) -> dict:
        """The Task document for the worker (documents.Task as JSON), variables expanded for its platform."""
        expand = self.config.variables.expand_all
        platform = worker.platform
        doc = {
            "_id": task.id, "job": task.job, "name": task.name, "status": task.status, "task_type": task.task_type,
            "commands": [{"name": c.get("name", ""), "settings": expand(c.get("settings") or {}, platform, "workers")}
                         for c in (task.commands or [])],
            "priority": task.priority, "job_priority": task.job_priority, "job_type": task.job_type,
            "manager": task.manager, "project": task.project, "user": task.user,
            "parents": list(task.parents or []), "worker": worker.nickname,
            "failed_by_workers": [{"id": f.get("id", ""), "identifier": f.get("identifier", "")}
                                  for f in (task.failed_by_workers or [])],
        }
        for key, value in (("_etag", task.etag), ("job_worker_tag", task.job_worker_tag),
                           ("job_memory_mb", task.job_memory_mb), ("job_files_mode", task.job_files_mode),
                           ("io", task.io), ("needs", task.needs)):
            if value is not None:
                doc[key] = value
        return doc
