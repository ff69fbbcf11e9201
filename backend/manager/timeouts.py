"""Task and worker timeouts, one pass per `tick(now)`.

* An active task whose worker has not pinged it (update or /may-i-run) for
  `task_timeout` fails on that worker through the normal failure rules, so it
  is retried on another worker (soft-fail) unless the rules say it fails; the
  worker goes to 'timeout' unless it still runs other tasks (it has slots).
* An awake (or starting/testing) worker not heard from for `worker_timeout`
  goes to 'timeout' and its task goes back to the queue without blame.

Blocklist entries older than `failures.blocklist_ttl` (7 days) are dropped here too.

Right after the Manager starts nobody has been heard from yet, so times are
counted from the later of the last contact and the Manager's start.
"""

from __future__ import annotations

import logging
import time

from shared.statuses import TASK_IN_PROGRESS, WorkerStatus as WS

from .config import ManagerConfig
from .persistence import Persistence
from .state_machine import Report, TaskStateMachine
from .workers import Workers

log = logging.getLogger(__name__)

WATCHED = frozenset({WS.AWAKE, WS.STARTING, WS.TESTING})
"""Workers in these statuses are expected to keep in touch."""


class TimeoutChecker:
    def __init__(self, db: Persistence, config: ManagerConfig, workers: Workers, state: TaskStateMachine,
                 started_at: float | None = None):
        self.db, self.config, self.workers, self.state = db, config, workers, state
        self.started_at = time.time() if started_at is None else started_at

    def tick(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        cfg = self.config.timeouts
        timed_out_tasks, timed_out_workers = [], []
        self.db.ensure_connected()
        self.workers.flush_last_seen()
        with self.db.write():
            worker_deadline = now - cfg.worker_timeout
            if self.started_at <= worker_deadline:
                for worker in self.db.workers.unseen_since(WATCHED, worker_deadline):
                    n = self.workers.timed_out(
                        worker, f"worker {worker.identifier} timed out (not seen for {cfg.worker_timeout:g} s)", now)
                    log.warning("worker %s timed out; %d task(s) requeued", worker.identifier, n)
                    timed_out_workers.append(worker.id)
            task_deadline = now - cfg.task_timeout
            if self.started_at <= task_deadline:
                for task in self.db.tasks.active_pinged_before(task_deadline):
                    worker = self.db.workers.get(task.worker)
                    reason = f"Task timed out on worker {worker.identifier if worker else task.worker}"
                    if worker is None:
                        self.state.requeue(task, reason, now)
                    else:
                        self.state.fail_on_worker(task, worker, Report(reason), now)
                        if not self.db.tasks.in_progress_of(worker.id, TASK_IN_PROGRESS):
                            # A worker with slots that keeps its other tasks going is not stuck.
                            self.workers.set_status(worker, WS.TIMEOUT, reason)
                    timed_out_tasks.append(task.id)
            expired = self.db.workers.expire_blocklist(now - self.config.failures.blocklist_ttl)
            if expired:
                log.info("%d blocklist entries expired", expired)
        return {"tasks": timed_out_tasks, "workers": timed_out_workers}
