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

import logging
import time

from shared import documents
from shared.statuses import TaskStatus as TS

from .config import ManagerConfig
from .models import Store
from .task_logs import TaskLogs
from .task_state import RUNNABLE, TaskStateMachine, log_line

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


_STILL_RUNNABLE = "status IN ('queued', 'claimed-by-manager', 'soft-failed')"


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

    def candidates(self, worker, limit: int = 1) -> list[str]:
        """Ids of the tasks `worker` may run, best first (read only)."""
        types = list(worker.supported_task_types or [])
        if not types:
            return []
        tags = [t for t in (worker.tags or []) if isinstance(t, str)]
        tag_clause = f" OR t.job_worker_tag IN ({','.join('?' * len(tags))})" if tags else ""
        sql = _CANDIDATE_SQL.format(types=",".join("?" * len(types)), tag_clause=tag_clause, limit=int(limit))
        mem = free_memory_mb(worker.resources)
        params = [*types, *tags, mem, mem, worker.id, worker.id]
        return [row[0] for row in self.store.db.execute_sql(sql, params).fetchall()]

    def own_active_task(self, worker):
        found = self.store.db.execute_sql(
            "SELECT id FROM task WHERE worker = ? AND status = 'active' ORDER BY updated DESC LIMIT 1",
            (worker.id,)).fetchone()
        return self.store.row(self.m.Task, found[0]) if found else None

    def claim(self, worker, now: float | None = None):
        """The task this worker should run now, marked active for it; None if there is none.

        Looking is read-only (WAL readers do not block), so idle workers polling an
        empty queue never take the write lock. Claiming is one transaction (BEGIN
        IMMEDIATE under the store's write lock) with a conditional UPDATE whose row
        count proves the claim, so a task goes to exactly one worker however many
        ask at once. Inside the lock the best candidates are looked up again.
        """
        now = time.time() if now is None else now
        T = self.m.Task
        self.store.ensure_connected()
        own = self.own_active_task(worker)
        if own is not None:
            log.info("worker %s: re-serving its active task %s", worker.identifier, own.id)
            with self.store.write():
                self.store.update_row(T, own.id, last_worker_ping=now)
                self.store.update_row(self.m.Worker, worker.id, current_task=own.id)
            return own
        if not self.candidates(worker, limit=1):
            return None
        task = None
        with self.store.write():
            for task_id in self.candidates(worker, limit=3):
                claimed = self.store.update_row(
                    T, task_id, where=_STILL_RUNNABLE, status=TS.ACTIVE.value, worker=worker.id,
                    last_worker_ping=now, updated=now, activity="", current_command_idx=0,
                    task_progress_percentage=0, command_progress_percentage=0)
                if claimed != 1:
                    continue
                task = self.store.row(T, task_id)
                self.store.update_row(self.m.Worker, worker.id, current_task=task.id,
                                      last_activity=f"running {task.name}"[:200])
                self.state.enqueue_update(task, task_status=TS.ACTIVE.value,
                                          activity=f"assigned to worker {worker.nickname}", now=now)
                break
        if task is None:
            return None
        try:
            self.logs.rotate(task.job, task.id)
            self.logs.append(task.job, task.id,
                             log_line(f"Manager: task assigned to worker {worker.identifier}", now))
        except (OSError, ValueError) as ex:
            log.warning("task %s: cannot write its log: %s", task.id, ex)
        log.info("worker %s: assigned task %s (%s)", worker.identifier, task.id, task.name)
        return task

    def has_runnable(self) -> bool:
        T = self.m.Task
        return T.select().where(T.status.in_(RUNNABLE)).exists()

    def task_document(self, task, worker) -> dict:
        """The Task document for the worker, variables expanded for its platform."""
        variables = self.config.variables
        commands = [{"name": c.get("name", ""),
                     "settings": variables.expand_all(c.get("settings") or {}, worker.platform, "workers")}
                    for c in (task.commands or [])]
        doc = documents.Task(
            id=task.id, job=task.job, name=task.name, status=task.status, task_type=task.task_type,
            commands=[documents.Command(**c) for c in commands], priority=task.priority,
            job_priority=task.job_priority, job_type=task.job_type, manager=task.manager,
            project=task.project, user=task.user, parents=list(task.parents or []), worker=worker.nickname,
            failed_by_workers=[documents.FailedBy(id=f.get("id", ""), identifier=f.get("identifier", ""))
                               for f in (task.failed_by_workers or [])],
            etag=task.etag, job_worker_tag=task.job_worker_tag, job_memory_mb=task.job_memory_mb,
            job_files_mode=task.job_files_mode)
        return doc.to_dict()
