"""Which task a worker gets next, claimed atomically.

Runnable for a worker: status queued / claimed-by-manager / soft-failed; every
parent the Manager holds is completed (a parent it does not hold was never
handed to it because it was already done); the task type is one the worker
does; the worker has not failed this task before and is not blocklisted for
the job's task type; the job's worker tag, if any, is one of the worker's
tags; the job's memory need, if any, fits the worker's last reported free
memory (a worker that never reported memory, like a Flamenco 2 worker, is not
held back). Order: job priority desc, task priority desc, oldest first.

The Server's job dependencies are not checked here: the Server only hands out
tasks of jobs whose dependencies are done.
"""

from __future__ import annotations

import functools
import logging
import time

from shared.statuses import TaskStatus as TS, WorkerStatus as WS

from .config import ManagerConfig
from .models import Store
from .task_logs import TaskLogs
from .task_state import TaskStateMachine, log_line

log = logging.getLogger(__name__)

# The statuses are literals so that SQLite uses the partial index `task_runnable_order`
# (see models.Store.create_tables): it walks runnable tasks in dispatch order and stops
# at the first one this worker may run.
_CANDIDATE_SQL = """
SELECT t.id FROM task t INDEXED BY task_runnable_order
WHERE t.status IN ('queued', 'claimed-by-manager', 'soft-failed')
  AND t.task_type IN ({types})
  AND (t.job_worker_tag IS NULL OR t.job_worker_tag = ''{tag_clause})
  AND (t.job_memory_mb IS NULL OR t.job_memory_mb <= 0 OR ? IS NULL OR t.job_memory_mb <= ?)
  AND NOT EXISTS (SELECT 1 FROM task_parent tp JOIN task p ON p.id = tp.parent
                  WHERE tp.task = t.id AND p.status != 'completed')
  AND NOT EXISTS (SELECT 1 FROM task_failure f WHERE f.task = t.id AND f.worker = ?)
  AND NOT EXISTS (SELECT 1 FROM blocklist b
                  WHERE b.worker = ? AND b.job = t.job AND b.task_type = t.task_type)
ORDER BY t.job_priority DESC, t.priority DESC, t.seq ASC
LIMIT {limit}
"""

# The claim: the best candidate becomes active for the worker in one statement, which
# also proves it (still runnable, the worker still one that may get work: a worker that
# signed off or went to sleep while its long-poll was held gets nothing).
_CLAIM_SQL = """
UPDATE task SET status = 'active', worker = ?, last_worker_ping = ?, updated = ?, activity = '',
    current_command_idx = 0, task_progress_percentage = 0, command_progress_percentage = 0
WHERE id = ({candidate})
  AND status IN ('queued', 'claimed-by-manager', 'soft-failed')
  AND EXISTS (SELECT 1 FROM worker w WHERE w.id = ? AND w.status NOT IN ({refused}))
RETURNING {columns}
"""

REFUSED_WORKER_STATUSES = (WS.OFFLINE.value, WS.SHUTDOWN.value, WS.ASLEEP.value, WS.ERROR.value)
"""A worker in one of these gets no task, even from a request that was already waiting."""

_OWN_ACTIVE_SQL = "SELECT {columns} FROM task WHERE worker = ? AND status = 'active' ORDER BY updated DESC LIMIT 1"


def free_memory_mb(resources: dict | None) -> float | None:
    if not isinstance(resources, dict):
        return None
    value = resources.get("mem_free_mb")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class Scheduler:
    def __init__(self, store: Store, config: ManagerConfig, state: TaskStateMachine, logs: TaskLogs):
        self.store, self.config, self.state, self.logs = store, config, state, logs
        self.m = store.m
        self._sql: dict = {}
        self._found_work = False
        """Whether the last claim found a task: then the next one skips the read-only look."""

    def _candidate_sql(self, worker, limit: int) -> tuple[str, list]:
        types = list(worker.supported_task_types or [])
        tags = [t for t in (worker.tags or []) if isinstance(t, str)]
        tag_clause = f" OR t.job_worker_tag IN ({','.join('?' * len(tags))})" if tags else ""
        key = ("candidates", len(types), len(tags), limit)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = _CANDIDATE_SQL.format(
                types=",".join("?" * len(types)), tag_clause=tag_clause, limit=int(limit)).strip()
        mem = free_memory_mb(worker.resources)
        return sql, [*types, *tags, mem, mem, worker.id, worker.id]

    def candidates(self, worker, limit: int = 1) -> list[str]:
        """Ids of the tasks `worker` may run, best first (read only)."""
        if not worker.supported_task_types:
            return []
        sql, params = self._candidate_sql(worker, limit)
        self.store.ensure_connected()
        return [row[0] for row in self.store.db.execute_sql(sql, params).fetchall()]

    def own_active_task(self, worker):
        key = "own"
        if key not in self._sql:
            self._sql[key] = _OWN_ACTIVE_SQL.format(columns=self.store.columns_sql(self.m.Task))
        found = self.store.db.execute_sql(self._sql[key], (worker.id,)).fetchone()
        return self.store.instance(self.m.Task, found) if found else None

    def _claim_sql(self, worker) -> tuple[str, list]:
        candidate, params = self._candidate_sql(worker, 1)
        key = ("claim", candidate)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = _CLAIM_SQL.format(
                candidate=candidate, refused=",".join(f"'{s}'" for s in REFUSED_WORKER_STATUSES),
                columns=self.store.columns_sql(self.m.Task))
        return sql, params

    def claim(self, worker, now: float | None = None):
        """The task this worker should run now, marked active for it; None if there is none.

        Claiming is one transaction (BEGIN IMMEDIATE under the store's write lock) whose
        conditional UPDATE picks the best candidate, proves it still runnable and the
        worker still eligible, and returns the row, so a task goes to exactly one worker
        however many ask at once. Called outside a transaction, it first looks read-only
        (WAL readers do not block), so idle workers polling an empty queue do not take the
        write lock, except right after a claim found work; inside one (the database
        thread's batch, see db_thread.py) the claim statement is the look.
        """
        now = time.time() if now is None else now
        T, W = self.m.Task, self.m.Worker
        if not worker.supported_task_types:
            return None
        self.store.ensure_connected()
        # A task becomes active only by a claim, which sets the worker's current_task in the
        # same transaction, and whatever ends or requeues it clears that: no pointer, no task.
        own = self.own_active_task(worker) if worker.current_task else None
        if own is not None:
            log.info("worker %s: re-serving its active task %s", worker.identifier, own.id)
            with self.store.write():
                self.store.update_row(T, own.id, last_worker_ping=now)
                self.store.update_row(W, worker.id, current_task=own.id, last_seen=now)
            return own
        if not (self._found_work or self.store.in_write()) and not self.candidates(worker, limit=1):
            return None
        sql, params = self._claim_sql(worker)
        task = None
        with self.store.write():
            row = self.store.db.execute_sql(sql, (worker.id, now, now, *params, worker.id)).fetchone()
            if row is not None:
                task = self.store.instance(T, row)
                self.store.update_row(W, worker.id, current_task=task.id, last_seen=now,
                                      last_activity=f"running {task.name}"[:200])
                self.state.enqueue_update(task, task_status=TS.ACTIVE.value,
                                          activity=f"assigned to worker {worker.nickname}", now=now)
                self.store.after_commit(functools.partial(self._assigned, task, worker, now))
        self._found_work = task is not None
        return task

    def _assigned(self, task, worker, now: float) -> None:
        try:
            self.logs.start_run(task.job, task.id, log_line(f"Manager: task assigned to worker {worker.identifier}", now))
        except (OSError, ValueError) as ex:
            log.warning("task %s: cannot write its log: %s", task.id, ex)
        log.info("worker %s: assigned task %s (%s)", worker.identifier, task.id, task.name)

    def has_runnable(self) -> bool:
        self.store.ensure_connected()
        return self.store.db.execute_sql(
            "SELECT 1 FROM task INDEXED BY task_runnable_order "
            "WHERE status IN ('queued', 'claimed-by-manager', 'soft-failed') LIMIT 1").fetchone() is not None

    def pass_on_wakeup(self, looked_at: int) -> None:
        """This long-poll was woken for a task but did not take one: wake another that has
        not looked since, if there is still something runnable (a task only another worker
        may run, or one whose waiter went away)."""
        if self.state.wakeup.waiting and self.has_runnable():
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
                           ("job_memory_mb", task.job_memory_mb), ("job_files_mode", task.job_files_mode)):
            if value is not None:
                doc[key] = value
        return doc
