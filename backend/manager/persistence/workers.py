"""Named operations on workers and the blocklist."""

from __future__ import annotations

import json

from .store import IN_PROGRESS_SQL, Store

_TOUCH_SQL = ("UPDATE worker SET last_seen = max(last_seen, ?), last_activity = coalesce(?, last_activity), "
              "resources = coalesce(?, resources) WHERE id = ?")
# The worker's pointer moves on to another task it still runs (a worker with slots runs several),
# so that it is NULL exactly when the worker runs nothing.
# (Spelled as the index task_in_progress_by_worker, so that SQLite uses it.)
_RELEASE_SQL = f"""
UPDATE worker SET current_task = (SELECT t.id FROM task t WHERE t.worker = worker.id AND t.id != ?
                                  AND t.status IN {IN_PROGRESS_SQL} ORDER BY t.updated DESC LIMIT 1)
WHERE id = ? AND current_task = ?
"""


class WorkerRecords:
    def __init__(self, store: Store):
        self.store = store
        self.W = store.m.Worker
        self.B = store.m.Blocklist
        self.Tags = store.m.WorkerAdminTags

    # --- reads ---------------------------------------------------------------

    def get(self, worker_id: str):
        """The worker, or None."""
        return self.store.row(self.W, worker_id)

    def all(self) -> list:
        """Every worker, by nickname."""
        self.store.ensure_connected()
        return list(self.W.select().order_by(self.W.nickname))

    def unseen_since(self, statuses, deadline: float) -> list:
        """Workers in these statuses last seen before `deadline`."""
        W = self.W
        return list(W.select().where(W.status.in_(list(statuses)) & (W.last_seen < deadline)))

    def schedules_due(self, stamp: float) -> list:
        """Workers with an active sleep schedule whose next check is due."""
        W = self.W
        self.store.ensure_connected()
        return list(W.select().where((W.sleep_active == True)  # noqa: E712
                                     & (W.sleep_next_check.is_null() | (W.sleep_next_check <= stamp))))

    def count_by_status(self) -> dict[str, int]:
        self.store.ensure_connected()
        return dict(self.store.execute("SELECT status, count(*) FROM worker GROUP BY status").fetchall())

    def task_types(self) -> list[str]:
        """Every task type some worker runs, sorted."""
        self.store.ensure_connected()
        return sorted({t for w in self.W.select(self.W.supported_task_types) for t in (w.supported_task_types or [])})

    def count(self) -> int:
        self.store.ensure_connected()
        return self.W.select().count()

    def eligible_for(self, task, excluded: set[str]) -> list:
        """Workers not in `excluded` and not blocklisted for the task's job and type that run
        its type and carry its job's tag."""
        blocked = {r.worker for r in self.B.select(self.B.worker).where(
            (self.B.job == task.job) & (self.B.task_type == task.task_type))}
        out = []
        for w in self.W.select():
            if w.id in excluded or w.id in blocked or task.task_type not in (w.supported_task_types or []):
                continue
            if task.job_worker_tag and task.job_worker_tag not in (w.tags or []):
                continue
            out.append(w)
        return out

    # --- writes (inside a write transaction) -----------------------------------

    def create(self, **fields):
        return self.W.create(**fields)

    def update(self, worker_id: str, **fields) -> int:
        """Set these fields of one worker; the row count."""
        return self.store.update_row(self.W, worker_id, **fields)

    def delete(self, worker_id: str) -> None:
        """The worker, its blocklist entries and the tags the admin gave it."""
        self.B.delete().where(self.B.worker == worker_id).execute()
        self.Tags.delete().where(self.Tags.worker == worker_id).execute()
        self.W.delete().where(self.W.id == worker_id).execute()

    def touch(self, worker, activity: str | None, resources: dict | None, now: float) -> None:
        """The worker was heard from: last seen, activity, resources (merged into what it sent before)."""
        merged = None
        if isinstance(resources, dict):
            merged = {**(worker.resources or {}), **resources}
            worker.resources = merged
        self.store.execute(_TOUCH_SQL, (now, activity[:200] if activity else None,
                                        json.dumps(merged, separators=(",", ":")) if merged is not None else None,
                                        worker.id))

    def release_task(self, worker_id: str, task_id: str | None = None) -> None:
        """The worker no longer runs `task_id` (or anything, without one)."""
        if task_id is None:
            self.store.update_row(self.W, worker_id, current_task=None)
        else:
            self.store.execute(_RELEASE_SQL, (task_id, worker_id, task_id))

    def note_seen(self, seen: dict[str, float]) -> None:
        """Last-seen times noted in memory, written in one go (never moved back)."""
        self.store.db.cursor().executemany("UPDATE worker SET last_seen = max(last_seen, ?) WHERE id = ?",
                                           [(t, wid) for wid, t in seen.items()])

    # --- tags the admin set ---------------------------------------------------------

    def admin_tags(self, worker_id: str) -> list[str] | None:
        """The tags the admin gave the worker, or None when it keeps its own."""
        row = self.store.row(self.Tags, worker_id)
        return None if row is None else list(row.tags or [])

    def set_admin_tags(self, worker_id: str, tags: list[str]) -> None:
        """The worker's tags from now on, also after it signs on again with others."""
        self.Tags.insert(worker=worker_id, tags=tags).on_conflict_replace().execute()
        self.store.update_row(self.W, worker_id, tags=tags)

    # --- blocklist -------------------------------------------------------------

    def block(self, worker_id: str, job: str, task_type: str, now: float) -> None:
        self.B.insert(worker=worker_id, job=job, task_type=task_type, created=now).on_conflict_ignore().execute()

    def blocklist(self, worker_id: str | None = None) -> list:
        self.store.ensure_connected()
        q = self.B.select().order_by(self.B.created)
        if worker_id:
            q = q.where(self.B.worker == worker_id)
        return list(q)

    def clear_blocklist(self, worker_id: str) -> int:
        return self.B.delete().where(self.B.worker == worker_id).execute()

    def expire_blocklist(self, before: float) -> int:
        return self.B.delete().where(self.B.created < before).execute()

