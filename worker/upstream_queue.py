"""A durable FIFO of requests to the Manager: task updates, outputs, returns.

A task's outputs are one item (method OUTPUTS, see manager_client.py) whose
transport first sends the Manager the blobs it lacks from the worker's cache,
then the list; the task's 'completed' status comes after it.

Everything the worker has to tell the Manager about a task goes through here,
in order, so an update can never overtake an earlier one, and nothing is lost
while the Manager is down or restarting (the queue is a SQLite file that
outlives the worker process too). A request is deleted once the Manager
accepted it (2xx), or when the Manager says it will never accept it (404
unknown task, 409 another worker's task, 403 outputs of a task that is not
this worker's any more, 400/422 malformed): retrying those
would block every later update. Anything else (connection errors, 5xx, 401,
429) keeps the request and retries after a pause.

The flusher runs on its own thread (`run(stop)`), woken at once by `enqueue`,
so the task's thread never waits for the network.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

DROP_STATUSES = frozenset({400, 403, 404, 409, 410, 422})

SCHEMA = """
CREATE TABLE IF NOT EXISTS upstream_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT,
    body_file TEXT,
    headers TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass
class QueuedRequest:
    id: int
    method: str
    path: str
    json: dict | None = None
    body_file: str | None = None
    headers: dict = field(default_factory=dict)
    attempts: int = 0


Transport = Callable[[QueuedRequest], int]
"""Sends one request and returns its HTTP status; raises OSError (or a requests
exception) when the Manager cannot be reached."""


class UpstreamQueue:
    def __init__(self, db_path: str | os.PathLike, transport: Transport, retry_seconds: float = 5.0,
                 max_per_flush: int = 1000, clock: Callable[[], float] = time.monotonic):
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.transport = transport
        self.retry_seconds = retry_seconds
        self.max_per_flush = max_per_flush
        self.clock = clock
        self._db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None,
                                   timeout=10)
        self._db.execute("PRAGMA journal_mode=wal")
        self._db.execute("PRAGMA synchronous=normal")
        self._db.execute(SCHEMA)
        self._db_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._next_attempt = 0.0
        self._deleted_since_vacuum = 0
        self.last_error: str = ""

    # --- producer side --------------------------------------------------------

    def enqueue(self, method: str, path: str, body: dict | None = None, body_file: str | None = None,
                headers: dict | None = None) -> int:
        with self._db_lock:
            cur = self._db.execute(
                "INSERT INTO upstream_queue (method, path, body, body_file, headers, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (method, path, json.dumps(body) if body is not None else None, body_file,
                 json.dumps(headers or {}), time.time()))
            row_id = cur.lastrowid
        self._wake.set()
        return row_id

    def __len__(self) -> int:
        with self._db_lock:
            return self._db.execute("SELECT COUNT(*) FROM upstream_queue").fetchone()[0]

    def last_id(self) -> int:
        """The id of the newest queued request; 0 when nothing is queued."""
        with self._db_lock:
            return self._db.execute("SELECT coalesce(max(id), 0) FROM upstream_queue").fetchone()[0]

    def sent_through(self, row_id: int) -> bool:
        """Whether every request up to `row_id` left the queue (sent, or dropped)."""
        with self._db_lock:
            return self._db.execute("SELECT 1 FROM upstream_queue WHERE id <= ? LIMIT 1", (row_id,)).fetchone() is None

    def pending(self) -> list[QueuedRequest]:
        with self._db_lock:
            rows = self._db.execute("SELECT id, method, path, body, body_file, headers, attempts "
                                    "FROM upstream_queue ORDER BY id").fetchall()
        return [_row(r) for r in rows]

    def wait_empty(self, timeout: float) -> bool:
        """Block until everything was sent (or dropped), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._changed.wait(min(remaining, 0.5))
        return True

    # --- consumer side --------------------------------------------------------

    def flush(self, now: float | None = None) -> bool:
        """Send queued requests in order until the queue is empty (True) or one must wait (False)."""
        now = self.clock() if now is None else now
        with self._send_lock:
            if now < self._next_attempt:
                return False
            sent = 0
            while sent < self.max_per_flush:
                item = self._oldest()
                if item is None:
                    self._maybe_vacuum()
                    self.last_error = ""
                    return True
                outcome = self._send(item)
                if outcome == "retry":
                    self._next_attempt = self.clock() + self.retry_seconds
                    return False
                self._delete(item.id)
                sent += 1
            return not len(self)

    def tick(self, now: float | None = None) -> bool:
        return self.flush(now)

    def run(self, stop: threading.Event) -> None:
        """Flush whenever woken or every retry period, until `stop` is set."""
        while not stop.is_set():
            self._wake.wait(self.retry_seconds)
            self._wake.clear()
            try:
                if not self.flush():
                    # Woken during a back-off: sleep the rest of it, not in a busy loop.
                    delay = self._next_attempt - self.clock()
                    if delay > 0 and len(self):
                        stop.wait(min(delay, self.retry_seconds))
                        self._wake.set()
            except Exception:  # noqa: BLE001 - the flusher must survive anything
                log.exception("upstream queue flush failed")
                stop.wait(self.retry_seconds)

    def retry_now(self) -> None:
        """Forget the back-off (the Manager was just seen alive) and flush soon."""
        self._next_attempt = 0.0
        self._wake.set()

    def close(self) -> None:
        with self._db_lock:
            self._db.close()

    # --- internals ------------------------------------------------------------

    def _send(self, item: QueuedRequest) -> str:
        try:
            status = self.transport(item)
        except Exception as ex:  # noqa: BLE001 - connection errors of any kind mean "later"
            self._note_attempt(item.id)
            self.last_error = f"{type(ex).__name__}: {ex}"
            log.warning("Manager unreachable for %s %s (%d queued): %s", item.method, item.path,
                        len(self), self.last_error)
            return "retry"
        if 200 <= status < 300:
            return "sent"
        if status in DROP_STATUSES:
            log.warning("Manager refused %s %s with %d; dropping it", item.method, item.path, status)
            return "drop"
        self._note_attempt(item.id)
        self.last_error = f"HTTP {status}"
        log.warning("Manager answered %d to %s %s; will retry", status, item.method, item.path)
        return "retry"

    def _oldest(self) -> QueuedRequest | None:
        with self._db_lock:
            row = self._db.execute("SELECT id, method, path, body, body_file, headers, attempts "
                                   "FROM upstream_queue ORDER BY id LIMIT 1").fetchone()
        return _row(row) if row else None

    def _delete(self, row_id: int) -> None:
        with self._db_lock:
            self._db.execute("DELETE FROM upstream_queue WHERE id = ?", (row_id,))
        self._deleted_since_vacuum += 1
        with self._changed:
            self._changed.notify_all()

    def _note_attempt(self, row_id: int) -> None:
        with self._db_lock:
            self._db.execute("UPDATE upstream_queue SET attempts = attempts + 1 WHERE id = ?", (row_id,))

    def _maybe_vacuum(self) -> None:
        if self._deleted_since_vacuum < 1000:
            return
        with self._db_lock:
            self._db.execute("VACUUM")
        self._deleted_since_vacuum = 0


def _row(row) -> QueuedRequest:
    rid, method, path, body, body_file, headers, attempts = row
    return QueuedRequest(rid, method, path, json.loads(body) if body else None, body_file,
                         json.loads(headers or "{}"), attempts)
