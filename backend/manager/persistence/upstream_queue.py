"""The durable upstream queue: what the Server must learn, in order.

Kinds: 'task-update' (payload: an UpstreamTaskUpdate), 'log-upload' ({job,
task}: the Server asked for a task's full log), 'outputs' ({job, task, files:
{relpath: {sha256, size}}, removed: [relpath]}: what a task made in upload
mode, the blobs in the Manager's file store), and 'output' ({job, task,
relpath, sha256, spool, size}: one file, as queued by earlier versions). An
item leaves only once the Server acknowledged it.
"""

from __future__ import annotations

import json

from shared.chunking import chunks

from .store import Store

TASK_UPDATE, LOG_UPLOAD, OUTPUT, OUTPUTS = "task-update", "log-upload", "output", "outputs"

_ENQUEUE_SQL = "INSERT INTO upstream_item (kind, key, payload, created, attempts) VALUES (?, ?, ?, ?, 0)"


class UpstreamQueue:
    def __init__(self, store: Store):
        self.store = store
        self.U = store.m.UpstreamItem

    def enqueue(self, kind: str, key: str, payload: dict, now: float) -> None:
        """Append an item (inside a write transaction, with whatever it reports on)."""
        self.store.execute(_ENQUEUE_SQL, (kind, key, json.dumps(payload, separators=(",", ":")), now))

    def head(self):
        """The oldest item, or None."""
        self.store.ensure_connected()
        sql = self.store.statement("upstream-head", lambda: (
            f"SELECT {self.store.columns_sql(self.U)} FROM upstream_item ORDER BY seq LIMIT 1"))
        row = self.store.execute(sql).fetchone()
        return None if row is None else self.store.instance(self.U, row)

    def last_seq(self) -> int:
        """The newest item's seq (0 when empty)."""
        self.store.ensure_connected()
        return self.store.execute("SELECT coalesce(max(seq), 0) FROM upstream_item").fetchone()[0]

    def task_updates_from(self, seq: int, limit: int, last: int | None = None) -> list[tuple[int, str]]:
        """The run of task updates that starts at `seq` (up to the next item of another kind, and
        up to `last`), as (seq, payload JSON text): they go to the Server as they are."""
        run = []
        for item_seq, kind, payload in self.store.execute(
                "SELECT seq, kind, payload FROM upstream_item WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                (seq, last if last is not None else 2 ** 62, limit)):
            if kind != TASK_UPDATE:
                break
            run.append((item_seq, payload))
        return run

    def remove(self, seqs: list[int]) -> None:
        """Items the Server has (inside a write transaction)."""
        if seqs:
            self.store.db.cursor().executemany("DELETE FROM upstream_item WHERE seq = ?", [(s,) for s in seqs])

    def has_task_update(self, task_id: str) -> bool:
        """Whether an update of this task still waits to be sent."""
        U = self.U
        return U.select().where((U.kind == TASK_UPDATE) & (U.key == task_id)).exists()

    def tasks_with_updates(self, task_ids: list[str]) -> set[str]:
        """Which of these tasks still have an update waiting to be sent."""
        out: set[str] = set()
        for chunk in chunks(task_ids):
            out.update(k for (k,) in self.store.execute(
                f"SELECT DISTINCT key FROM upstream_item WHERE kind = ? AND key IN ({','.join('?' * len(chunk))})",
                (TASK_UPDATE, *chunk)).fetchall())
        return out

    def has_output(self, sha256: str, job: str | None = None, relpath: str | None = None) -> bool:
        """Whether an output with this checksum (for this job and path, when given) still waits."""
        U = self.U
        for item in U.select().where((U.kind == OUTPUT) & (U.key == sha256)):
            if job is None or (item.payload.get("job") == job and item.payload.get("relpath") == relpath):
                return True
        return False

    def length(self) -> int:
        self.store.ensure_connected()
        return self.U.select().count()

    def summary(self) -> dict:
        """Items waiting by kind, and when the oldest was queued (a Unix time, or None)."""
        self.store.ensure_connected()
        by_kind = dict(self.store.execute("SELECT kind, count(*) FROM upstream_item GROUP BY kind").fetchall())
        oldest = self.store.execute("SELECT min(created) FROM upstream_item").fetchone()[0]
        return {"by_kind": by_kind, "oldest": oldest}
