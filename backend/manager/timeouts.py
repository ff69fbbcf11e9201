"""Task and worker timeouts, one pass per `tick(now)`.

* An active task whose worker has not pinged it (update or /may-i-run) for
  `task_timeout` fails on that worker through the normal failure rules, so it
  is retried on another worker (soft-fail) unless the rules say it fails.
* An awake (or starting/testing) worker not heard from for `worker_timeout`
  goes to 'timeout' and its task goes back to the queue without blame.

Blocklist entries older than `failures.blocklist_ttl` (7 days) are dropped here too.

Right after the Manager starts nobody has been heard from yet, so times are
counted from the later of the last contact and the Manager's start.
"""

from __future__ import annotations

import logging
import threading
import time

from shared.statuses import TaskStatus as TS, WorkerStatus as WS

from .config import ManagerConfig
from .models import Store
from .task_updates import TaskUpdates
from .workers import Workers

log = logging.getLogger(__name__)

_WATCHED = (WS.AWAKE.value, WS.STARTING.value, WS.TESTING.value)


class TimeoutChecker:
    def __init__(self, store: Store, config: ManagerConfig, workers: Workers, updates: TaskUpdates,
                 started_at: float | None = None):
        self.store, self.config, self.workers, self.updates = store, config, workers, updates
        self.m = store.m
        self.started_at = time.time() if started_at is None else started_at

    def tick(self, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        cfg = self.config.timeouts
        T, W = self.m.Task, self.m.Worker
        timed_out_tasks, timed_out_workers = [], []
        self.store.ensure_connected()
        self.workers.flush_last_seen()
        with self.store.write():
            worker_deadline = now - cfg.worker_timeout
            if self.started_at <= worker_deadline:
                for worker in W.select().where(W.status.in_(_WATCHED) & (W.last_seen < worker_deadline)):
                    W.update(status=WS.TIMEOUT.value, current_task=None).where(W.id == worker.id).execute()
                    n = self.workers._requeue_tasks_of(
                        worker, f"worker {worker.identifier} timed out (not seen for {cfg.worker_timeout:g} s)", now)
                    log.warning("worker %s timed out; %d task(s) requeued", worker.identifier, n)
                    timed_out_workers.append(worker.id)
            task_deadline = now - cfg.task_timeout
            if self.started_at <= task_deadline:
                for task in T.select().where((T.status == TS.ACTIVE.value) & (T.last_worker_ping < task_deadline)):
                    worker = W.get_or_none(W.id == task.worker)
                    reason = f"Task timed out on worker {worker.identifier if worker else task.worker}"
                    if worker is None:
                        self.updates.state.requeue(task, reason, now)
                    else:
                        self.updates.fail_on_worker(task, worker, reason, now=now)
                        W.update(status=WS.TIMEOUT.value).where(W.id == worker.id).execute()
                    timed_out_tasks.append(task.id)
            expired = self.m.Blocklist.delete().where(
                self.m.Blocklist.created < now - self.config.failures.blocklist_ttl).execute()
            if expired:
                log.info("%d blocklist entries expired", expired)
        if timed_out_workers or timed_out_tasks:
            self.workers.changed.set()
        return {"tasks": timed_out_tasks, "workers": timed_out_workers}

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.timeouts.check_interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a loop logs and goes on
                log.exception("timeout check failed")
