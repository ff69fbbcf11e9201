"""Named operations on the tasks the Manager holds (and on who failed them).

The dispatch path's statements (claim, completion, own active task) are
written out and cached in the store: Peewee would build them anew each time.
Status sets come from shared.statuses; `sql_in` spells them as SQL literals
so that SQLite can use the partial runnable-task index.
"""

from __future__ import annotations

import time
from typing import Iterable

from shared.chunking import chunks
from shared.statuses import TASK_FINAL, TASK_IN_PROGRESS, TaskStatus as TS, WorkerStatus as WS

from .store import RUNNABLE_SQL, Store, sql_in

WORKER_REFUSED = frozenset({WS.OFFLINE, WS.SHUTDOWN, WS.ASLEEP, WS.ERROR})
"""A worker in one of these gets no task, even from a request that was already waiting."""

_ACTIVE = TS.ACTIVE

_CANDIDATE_SQL = f"""
SELECT t.id FROM task t INDEXED BY task_runnable_order
WHERE t.status IN {RUNNABLE_SQL}
  AND t.task_type IN ({{types}})
  AND (t.job_worker_tag IS NULL OR t.job_worker_tag = ''{{tag_clause}})
  AND (t.job_memory_mb IS NULL OR t.job_memory_mb <= 0 OR ? IS NULL OR t.job_memory_mb <= ?){{needs_clause}}
  AND NOT EXISTS (SELECT 1 FROM task_parent tp JOIN task p ON p.id = tp.parent
                  WHERE tp.task = t.id AND p.status != '{TS.COMPLETED}')
  AND NOT EXISTS (SELECT 1 FROM task_failure f WHERE f.task = t.id AND f.worker = ?)
  AND NOT EXISTS (SELECT 1 FROM blocklist b
                  WHERE b.worker = ? AND b.job = t.job AND b.task_type = t.task_type)
ORDER BY t.job_priority DESC, t.priority DESC, t.seq ASC
LIMIT {{limit}}
"""

# The best candidate becomes active for the worker in one statement, which also proves
# it (still runnable, the worker still one that may get work: a worker that signed off or
# went to sleep while its long-poll was held gets nothing).
_CLAIM_SQL = f"""
UPDATE task SET status = '{_ACTIVE}', worker = ?, last_worker_ping = ?, updated = ?, activity = '',
    current_command_idx = 0, task_progress_percentage = 0, command_progress_percentage = 0
WHERE id = ({{candidate}})
  AND status IN {RUNNABLE_SQL}
  AND EXISTS (SELECT 1 FROM worker w WHERE w.id = ? AND w.status NOT IN {sql_in(WORKER_REFUSED)})
RETURNING {{columns}}
"""

_COMPLETE_ACTIVE_SQL = f"""
UPDATE task SET status = '{TS.COMPLETED}', updated = ?, activity = coalesce(?, activity),
    last_worker_ping = ?, current_command_idx = ?, task_progress_percentage = ?, command_progress_percentage = ?
WHERE id = ? AND worker = ? AND status = '{_ACTIVE}'
RETURNING {{columns}}
"""

_OWN_ACTIVE_SQL = (f"SELECT {{columns}} FROM task WHERE worker = ? AND status = '{_ACTIVE}' "
                   "ORDER BY updated DESC LIMIT 1")

_ALL_OWN_ACTIVE_SQL = f"SELECT {{columns}} FROM task WHERE worker = ? AND status = '{_ACTIVE}' ORDER BY updated"

_RUNNABLE_CHILDREN_SQL = f"""
SELECT count(*) FROM task_parent tp JOIN task c ON c.id = tp.task
WHERE tp.parent = ? AND c.status IN {RUNNABLE_SQL}
  AND NOT EXISTS (SELECT 1 FROM task_parent op JOIN task p ON p.id = op.parent
                  WHERE op.task = c.id AND p.status != '{TS.COMPLETED}')
"""

# Jobs whose tasks all ended before a moment, with nothing of theirs still waiting to go upstream.
_FINISHED_JOBS_SQL = f"""
SELECT t.job FROM task t {{where}}
GROUP BY t.job
HAVING max(t.updated) < ? AND sum(CASE WHEN t.status IN {sql_in(TASK_FINAL)} THEN 0 ELSE 1 END) = 0
   AND NOT EXISTS (SELECT 1 FROM upstream_item u
                   WHERE u.key = t.job OR u.key IN (SELECT o.id FROM task o WHERE o.job = t.job))
ORDER BY max(t.updated) LIMIT ?
"""

_FORGET_JOB_SQL = (
    "DELETE FROM task_parent WHERE task IN (SELECT id FROM task WHERE job = ?)",
    "DELETE FROM task_failure WHERE job = ?",
    "DELETE FROM blocklist WHERE job = ?",
    "DELETE FROM job_file WHERE job = ?",
    "DELETE FROM job_output WHERE job = ?",
    "DELETE FROM task WHERE job = ?",
)

_HAS_RUNNABLE_SQL = f"SELECT 1 FROM task INDEXED BY task_runnable_order WHERE status IN {RUNNABLE_SQL} LIMIT 1"


def free_memory_mb(resources: dict | None) -> float | None:
    """The free memory a worker last reported, if it did."""
    if not isinstance(resources, dict):
        return None
    value = resources.get("mem_free_mb")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class TaskRecords:
    def __init__(self, store: Store):
        self.store = store
        self.T = store.m.Task
        self.F = store.m.TaskFailure

    # --- reads ---------------------------------------------------------------

    def get(self, task_id: str):
        """The task, or None."""
        return self.store.row(self.T, task_id)

    def of_ids(self, task_ids: Iterable[str]) -> list:
        ids = list(task_ids)
        self.store.ensure_connected()
        out = []
        for chunk in chunks(ids):
            out.extend(self.T.select().where(self.T.id.in_(chunk)))
        return out

    def _candidate_sql(self, worker, limit: int, needs: tuple[str, ...] | None = None,
                       memory_mb: float | None = None) -> tuple[str, list]:
        """The candidate query and its parameters. `needs` (a worker with slots): only tasks
        needing one of these; `memory_mb`: its free memory, else the one it last reported."""
        types = list(worker.supported_task_types or [])
        tags = [t for t in (worker.tags or []) if isinstance(t, str)]
        needs = tuple(needs) if needs is not None else None
        sql = self.store.statement(("candidates", len(types), len(tags), limit, needs), lambda: _CANDIDATE_SQL.format(
            types=",".join("?" * len(types)), limit=int(limit),
            tag_clause=f" OR t.job_worker_tag IN ({','.join('?' * len(tags))})" if tags else "",
            needs_clause=f"\n  AND t.needs IN {sql_in(needs)}" if needs is not None else "").strip())
        mem = memory_mb if memory_mb is not None else free_memory_mb(worker.resources)
        return sql, [*types, *tags, mem, mem, worker.id, worker.id]

    def candidates(self, worker, limit: int = 1, needs: tuple[str, ...] | None = None,
                   memory_mb: float | None = None) -> list[str]:
        """Ids of the tasks `worker` may run now, best first (read only): runnable, all parents
        completed, a type it runs, its tag, its memory, not failed by it, not blocklisted
        (and, for a worker with slots, needing what it has free)."""
        if not worker.supported_task_types:
            return []
        sql, params = self._candidate_sql(worker, limit, needs, memory_mb)
        self.store.ensure_connected()
        return [row[0] for row in self.store.execute(sql, params).fetchall()]

    def own_active(self, worker_id: str):
        """The task this worker runs, if any (the latest, for a worker with slots)."""
        sql = self.store.statement("own-active", lambda: _OWN_ACTIVE_SQL.format(
            columns=self.store.columns_sql(self.T)))
        found = self.store.execute(sql, (worker_id,)).fetchone()
        return self.store.instance(self.T, found) if found else None

    def all_own_active(self, worker_id: str) -> list:
        """Every task this worker runs, oldest first."""
        sql = self.store.statement("all-own-active", lambda: _ALL_OWN_ACTIVE_SQL.format(
            columns=self.store.columns_sql(self.T)))
        return [self.store.instance(self.T, row) for row in self.store.execute(sql, (worker_id,)).fetchall()]

    def running_by_worker(self, worker_id: str | None = None) -> dict[str, list]:
        """worker id -> the tasks it runs (active or being canceled), oldest first, as
        (id, job, name, needs); of one worker, or of all."""
        self.store.ensure_connected()
        T = self.T
        who = T.worker == worker_id if worker_id is not None else T.worker.is_null(False)
        rows = (T.select(T.worker, T.id, T.job, T.name, T.needs)
                .where(who & T.status.in_(sorted(TASK_IN_PROGRESS))).order_by(T.updated, T.seq).tuples())
        out: dict[str, list] = {}
        for worker, *task in rows:
            out.setdefault(worker, []).append(tuple(task))
        return out

    def has_runnable(self) -> bool:
        self.store.ensure_connected()
        return self.store.execute(_HAS_RUNNABLE_SQL).fetchone() is not None

    def runnable_children(self, task_id: str) -> int:
        """How many tasks depending on `task_id` have all their parents completed."""
        self.store.ensure_connected()
        return self.store.execute(_RUNNABLE_CHILDREN_SQL, (task_id,)).fetchone()[0]

    def in_progress_of(self, worker_id: str, statuses) -> list:
        return list(self.T.select().where((self.T.worker == worker_id) & self.T.status.in_(list(statuses))))

    def active_pinged_before(self, deadline: float) -> list:
        return list(self.T.select().where((self.T.status == _ACTIVE) & (self.T.last_worker_ping < deadline)))

    def of_job_type_in(self, job: str, task_type: str, status: str) -> list:
        return list(self.T.select().where((self.T.job == job) & (self.T.task_type == task_type)
                                          & (self.T.status == status)))

    def held_from_server(self, statuses) -> list:
        """Tasks from the Server (not Manager-local) in these statuses."""
        return list(self.T.select().where(self.T.status.in_(list(statuses)) & (self.T.local == False)))  # noqa: E712

    def listing(self, status: str | None = None, job: str | None = None, limit: int = 100) -> list:
        """Newest first, for the admin."""
        self.store.ensure_connected()
        q = self.T.select().order_by(self.T.seq.desc())
        if status:
            q = q.where(self.T.status == status)
        if job:
            q = q.where(self.T.job == job)
        return list(q.limit(limit))

    def count_by_status(self) -> dict[str, int]:
        self.store.ensure_connected()
        return dict(self.store.execute("SELECT status, count(*) FROM task GROUP BY status").fetchall())

    def failed_by(self, task_id: str) -> set[str]:
        """Ids of the workers that failed this task."""
        return {r.worker for r in self.F.select(self.F.worker).where(self.F.task == task_id)}

    def failures_of(self, worker_id: str, job: str, task_type: str) -> int:
        """How many tasks of this job and type this worker failed."""
        F = self.F
        return F.select().where((F.worker == worker_id) & (F.job == job) & (F.task_type == task_type)).count()

    def finished_jobs(self, before: float, limit: int = 100) -> list[str]:
        """Jobs all of whose tasks ended (completed, canceled, failed) and last changed before
        `before`, with no update, log or output of theirs still queued for the Server; oldest first."""
        self.store.ensure_connected()
        sql = _FINISHED_JOBS_SQL.format(where="")
        return [job for (job,) in self.store.execute(sql, (before, limit)).fetchall()]

    # --- writes (inside a write transaction) -----------------------------------

    def forget_job(self, job: str, before: float) -> int:
        """Remove a finished job's tasks, their parents and failures, the job's blocklist entries and
        its upload-mode manifests, if it is still finished before `before` (checked again in this
        transaction: the Server may have requeued it meanwhile). How many tasks went."""
        sql = _FINISHED_JOBS_SQL.format(where="WHERE t.job = ?")
        if not self.store.execute(sql, (job, before, 1)).fetchall():
            return 0
        n = self.store.execute("SELECT count(*) FROM task WHERE job = ?", (job,)).fetchone()[0]
        for statement in _FORGET_JOB_SQL:
            self.store.execute(statement, (job,))
        return n


    def claim(self, worker, now: float, needs: tuple[str, ...] | None = None, memory_mb: float | None = None):
        """The best task for `worker` made active for it, with the worker pointing at it;
        None when there is none (or the worker may not get work any more). A worker with
        slots gets only a task whose needs are among `needs` and whose job fits `memory_mb`."""
        candidate, params = self._candidate_sql(worker, 1, needs, memory_mb)
        sql = self.store.statement(("claim", candidate), lambda: _CLAIM_SQL.format(
            candidate=candidate, columns=self.store.columns_sql(self.T)))
        row = self.store.execute(sql, (worker.id, now, now, *params, worker.id)).fetchone()
        if row is None:
            return None
        task = self.store.instance(self.T, row)
        self.store.update_row(self.store.m.Worker, worker.id, current_task=task.id, last_seen=now,
                              last_activity=f"running {task.name}"[:200])
        return task

    def reserve(self, task_id: str, worker_id: str, now: float) -> None:
        """The worker asked again while it runs this task: it still does."""
        self.store.update_row(self.T, task_id, last_worker_ping=now)
        self.store.update_row(self.store.m.Worker, worker_id, current_task=task_id, last_seen=now)

    def update(self, task_id: str, **fields) -> int:
        """Set these fields of one task; the row count."""
        return self.store.update_row(self.T, task_id, **fields)

    def ping(self, task_id: str, now: float) -> None:
        self.store.update_row(self.T, task_id, last_worker_ping=now)

    def complete_active(self, task_id: str, worker_id: str, now: float, activity: str | None,
                        current_command_idx: int, task_progress_percentage: float,
                        command_progress_percentage: float):
        """active -> completed when it is this worker's active task, in one statement that
        proves both; the task, or None."""
        sql = self.store.statement("complete-active", lambda: _COMPLETE_ACTIVE_SQL.format(
            columns=self.store.columns_sql(self.T)))
        row = self.store.execute(sql, (now, activity, now, current_command_idx, task_progress_percentage,
                                       command_progress_percentage, task_id, worker_id)).fetchone()
        return None if row is None else self.store.instance(self.T, row)

    def next_seq(self) -> int:
        return (self.T.select(self.T.seq).order_by(self.T.seq.desc()).scalar() or 0) + 1

    def insert(self, **fields) -> None:
        self.T.insert(**fields).execute()

    def insert_many(self, rows: list[dict]) -> None:
        """New tasks (fields as for `insert`), in one statement run."""
        self.store.insert_rows(self.T, rows)

    def update_many(self, task_ids: list[str], rows: list[dict]) -> None:
        """Set the same fields, row by row, on many tasks (each row names the same fields)."""
        if not rows:
            return
        names = tuple(rows[0])
        meta = self.T._meta
        sql = self.store.statement(("update-many", names), lambda: (
            f'UPDATE "{meta.table_name}" SET {", ".join(f"{meta.fields[n].column_name} = ?" for n in names)} '
            'WHERE id = ?'))
        fields = [meta.fields[n] for n in names]
        self.store.db.cursor().executemany(sql, [
            [None if row[f.name] is None else f.db_value(row[f.name]) for f in fields] + [tid]
            for tid, row in zip(task_ids, rows)])

    def add_parents(self, pairs: list[tuple[str, str]]) -> None:
        """(task, parent) rows of new tasks."""
        if pairs:
            self.store.db.cursor().executemany(
                "INSERT OR IGNORE INTO task_parent (task, parent) VALUES (?, ?)", pairs)

    def add_failure(self, task, worker, now: float) -> None:
        """`worker` failed `task`: in its failed_by_workers and in the failure table."""
        failed_by = list(task.failed_by_workers or [])
        if not any(f.get("id") == worker.id for f in failed_by):
            failed_by.append({"id": worker.id, "identifier": worker.identifier})
        task.failed_by_workers = failed_by
        self.T.update(failed_by_workers=failed_by).where(self.T.id == task.id).execute()
        self.F.insert(task=task.id, worker=worker.id, job=task.job, task_type=task.task_type,
                      created=now).on_conflict_ignore().execute()

    def set_failures(self, task_id: str, job: str, task_type: str, failed_by: list[dict],
                     replace: bool = False) -> None:
        """The failure table of a task from its failed_by_workers (as the Server sent it)."""
        if replace:
            self.T.update(failed_by_workers=failed_by).where(self.T.id == task_id).execute()
            self.F.delete().where(self.F.task == task_id).execute()
        rows = [{"task": task_id, "worker": f["id"], "job": job, "task_type": task_type, "created": time.time()}
                for f in failed_by if f.get("id")]
        if rows:
            self.F.insert_many(rows).on_conflict_ignore().execute()

    def set_parents(self, task_id: str, parents: list[str], replace: bool = False) -> None:
        TP = self.store.m.TaskParent
        if replace:
            TP.delete().where(TP.task == task_id).execute()
        rows = [{"task": task_id, "parent": p} for p in dict.fromkeys(parents) if isinstance(p, str)]
        if rows:
            TP.insert_many(rows).on_conflict_ignore().execute()
