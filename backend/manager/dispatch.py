"""The two requests every dispatched task goes through: POST /task (with its long-poll)
and POST /tasks/{id}/update.

Each does its database work, authentication included, in one call to the
database thread (persistence/db_thread.py). A long-polling worker that finds
nothing waits for a wake-up (wakeup.py): one waiter per task that became
runnable; a woken worker that cannot take the task passes the wake-up on.

A worker with slots sends what it has free (documents.TaskRequest) and gets
a list of tasks. What it had free when it asked only grows while its request
is held (its tasks end), so when one of its tasks stops running the request
looks once more and then answers, and the worker asks again with what it
has free now.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from backend.errors import ApiError
from shared import documents
from shared.statuses import WorkerStatus as WS

from .config import ManagerConfig
from .persistence import Persistence
from .scheduler import Scheduler
from .task_updates import TaskUpdates
from .wakeup import OWN, WOKEN, Wakeup
from .workers import Workers

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """What POST /task answers: a task document, or for a worker with slots a list of them (200),
    a status request (423) or nothing (204)."""
    task: dict | None = None
    status_requested: str | None = None
    tasks: list[dict] | None = None


NOTHING = Answer()


class Dispatch:
    def __init__(self, db: Persistence, config: ManagerConfig, workers: Workers, scheduler: Scheduler,
                 updates: TaskUpdates, wakeup: Wakeup, stop: threading.Event):
        self.db, self.config, self.workers, self.scheduler = db, config, workers, scheduler
        self.updates, self.wakeup, self.stop = updates, wakeup, stop
        self.long_polls_limit = config.max_long_polls
        self.long_polls = threading.BoundedSemaphore(max(1, self.long_polls_limit))
        self.idle = None
        """Called when a worker found nothing to do (the upstream link fetches sooner)."""

    # --- POST /task ----------------------------------------------------------------

    def next_task(self, authorization: str, long_poll: str | None, request: documents.TaskRequest | None = None,
                  request_error: Exception | None = None) -> Answer:
        """The answer to one POST /task, waiting up to the long-poll time for work; `request` is
        what a worker with slots has free, and an unusable one is answered after authentication."""
        wait = 0.0
        if long_poll:
            try:
                wait = max(0.0, min(float(long_poll), self.config.scheduling.long_poll_max))
            except ValueError:
                request_error = ApiError(400, "bad_long_poll", "X-Flamenco-Long-Poll must be a number of seconds")
        deadline = time.monotonic() + wait
        holding = False
        worker = None
        woken = None  # WOKEN: a notification chose this request; it takes the task or passes it on
        generation = 0
        try:
            while True:
                generation = self.wakeup.generation
                worker, found = self.db.batched(self._look, authorization, worker, request_error, request)
                if isinstance(found, Answer):
                    return found
                if found:
                    woken = None
                    docs = [self.scheduler.task_document(t, worker) for t in found]
                    return Answer(tasks=docs) if request is not None else Answer(task=docs[0])
                if woken == WOKEN:
                    woken = None
                    self.scheduler.pass_on_wakeup(generation)
                if self.idle is not None:
                    self.idle()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.stop.is_set() or (woken == OWN and request is not None):
                    return NOTHING
                if not holding:
                    holding = self.long_polls.acquire(blocking=False)
                    if not holding:
                        log.warning("long-poll slots (%d) all taken; worker %s gets 204 at once",
                                    self.long_polls_limit, worker.identifier)
                        return NOTHING
                woken = self.wakeup.wait(generation, remaining, worker.id)
        finally:
            if holding:
                self.long_polls.release()
            if woken == WOKEN:
                self.scheduler.pass_on_wakeup(generation)

    def _look(self, authorization, worker, request_error, request):
        """One look for work (on the database thread): (worker, [task, ...] | Answer); one task at
        most unless the worker has slots.

        The first look authenticates and marks the worker awake (it is asking for work).
        A later one, after a wait, re-reads the worker: one that signed off, went to
        sleep or was forgotten meanwhile gets nothing, and the claim checks that too,
        atomically."""
        if worker is None:
            worker = self.workers.authenticate(authorization)
            if not worker.supported_task_types:
                raise ApiError(406, "no_task_types", "this worker supports no task types; sign on with some")
            if request_error is not None:
                raise request_error
            first = True
        else:
            worker = self.db.workers.get(worker.id)
            if worker is None:
                return worker, NOTHING
            if worker.status != WS.AWAKE:
                log.info("worker %s went %s while its long-poll was held; ending it", worker.identifier,
                         worker.status)
                return worker, NOTHING
            first = False
        if worker.status_requested:
            return worker, Answer(status_requested=worker.status_requested)
        if first:
            self.workers.mark_awake(worker)
        if request is not None:
            return worker, self.scheduler.claim_several(worker, request)
        task = self.scheduler.claim(worker)
        return worker, [task] if task is not None else []

    # --- POST /tasks/{id}/update ---------------------------------------------------

    def task_update(self, authorization: str, task_id: str, update: documents.TaskUpdate | None,
                    request_error: Exception | None) -> None:
        """Apply a task update on the database thread; a body that could not be read is
        answered after authentication, as Flamenco 2 does."""
        self.db.batched(self._apply_update, authorization, task_id, update, request_error)

    def _apply_update(self, authorization, task_id, update, request_error) -> None:
        # Merging reported resources needs the worker's row; otherwise its id is enough.
        known = request_error is None and update.resources is None
        worker = (self.workers.authenticate_known if known else self.workers.authenticate)(authorization)
        if request_error is not None:
            raise request_error
        self.updates.apply(worker, task_id, update)
