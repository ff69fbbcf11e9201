"""The two requests every dispatched task goes through: POST /task (with its long-poll)
and POST /tasks/{id}/update.

Each does its database work, authentication included, in one call to the
database thread (persistence/db_thread.py). A long-polling worker that finds
nothing waits for a wake-up (wakeup.py): one waiter per task that became
runnable; a woken worker that cannot take the task passes the wake-up on.
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
from .wakeup import WOKEN, Wakeup
from .workers import Workers

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """What POST /task answers: a task document (200), a status request (423) or nothing (204)."""
    task: dict | None = None
    status_requested: str | None = None


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

    def next_task(self, authorization: str, long_poll: str | None) -> Answer:
        """The answer to one POST /task, waiting up to the long-poll time for work."""
        wait, request_error = 0.0, None
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
                worker, found = self.db.batched(self._look, authorization, worker, request_error)
                if isinstance(found, Answer):
                    return found
                if found is not None:
                    woken = None
                    return Answer(task=self.scheduler.task_document(found, worker))
                if woken == WOKEN:
                    woken = None
                    self.scheduler.pass_on_wakeup(generation)
                if self.idle is not None:
                    self.idle()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.stop.is_set():
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

    def _look(self, authorization, worker, request_error):
        """One look for work (on the database thread): (worker, task | None | Answer).

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
        return worker, self.scheduler.claim(worker)

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
