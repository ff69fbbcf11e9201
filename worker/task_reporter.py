"""Turning what a running task does into TaskUpdates, throttled, on the upstream queue.

* a status change goes out at once, with everything still pending;
* activity and progress go out at most every `act_interval` seconds: the
  first one at once, later ones when the interval has passed (and a newer
  value held back in between is sent by `tick` once it has) -- Flamenco 2
  compared the wrong way round and never sent them;
* log lines go out in batches: when `log_max_entries` are pending, or when
  the oldest pending line is `log_interval` seconds old;
* after `silence()` (the task is being aborted) only log lines go out.

Thread-safe: the command's thread and the task monitor both call in.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from shared.statuses import TaskStatus
from shared.timefmt import iso_utc

from .upstream_queue import UpstreamQueue


def log_timestamp() -> str:
    return iso_utc(timespec="milliseconds", zulu=True)


class TaskReporter:
    def __init__(self, queue: UpstreamQueue, task_id: str, n_commands: int, act_interval: float = 3.0,
                 log_interval: float = 5.0, log_max_entries: int = 200, resources_interval: float = 30.0,
                 resources: Callable[[], dict] | None = None, clock: Callable[[], float] = time.monotonic):
        self.queue = queue
        self.task_id = task_id
        self.n_commands = max(n_commands, 1)
        self.act_interval = act_interval
        self.log_interval = log_interval
        self.log_max_entries = log_max_entries
        self.resources_interval = resources_interval
        self.resources = resources
        self.clock = clock
        self._lock = threading.RLock()
        self._lines: list[str] = []
        self._first_line_at: float | None = None
        self._activity = ""
        self._cmd_idx = 0
        self._cmd_fraction = 0.0
        self._dirty = False
        self._last_act_push: float | None = None
        self._last_resources: float | None = None
        self._metrics: dict = {}
        self._metrics_dirty = False
        self._silent = False
        self.pushes = 0

    # --- what commands report ---------------------------------------------------

    def log(self, message: str) -> None:
        stamp = log_timestamp()
        with self._lock:
            for line in message.splitlines() or [""]:
                self._lines.append(f"{stamp}: {line}")
            if self._first_line_at is None:
                self._first_line_at = self.clock()
            if len(self._lines) >= self.log_max_entries:
                self._push()

    def command_started(self, idx: int, activity: str) -> None:
        with self._lock:
            self._cmd_idx, self._cmd_fraction = idx, 0.0
            self._activity = activity
            self._dirty = True
            self._push()

    def progress(self, fraction: float, activity: str | None = None) -> None:
        """Progress of the current command (0..1), and optionally a new activity text."""
        with self._lock:
            self._cmd_fraction = min(max(fraction, 0.0), 1.0)
            if activity is not None:
                self._activity = activity
            self._dirty = True
            self._maybe_push_activity()

    def activity(self, text: str) -> None:
        with self._lock:
            self._activity = text
            self._dirty = True
            self._maybe_push_activity()

    def metric(self, kind: str, key: str, value) -> None:
        with self._lock:
            self._metrics.setdefault(kind, {})[key] = value
            self._metrics_dirty = True

    def status(self, task_status: str, activity: str | None = None) -> None:
        """Push a status change at once (unless silenced)."""
        with self._lock:
            if activity is not None:
                self._activity = activity
            if self._silent:
                self._push()
                return
            if task_status == TaskStatus.COMPLETED:
                self._cmd_idx, self._cmd_fraction = self.n_commands - 1, 1.0
            self._push(task_status=task_status)

    def silence(self) -> None:
        with self._lock:
            self._silent = True

    # --- driving it ------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        with self._lock:
            if self._lines and self._first_line_at is not None and now - self._first_line_at >= self.log_interval:
                self._push(now=now)
            elif self._dirty and not self._silent and self._act_due(now):
                self._push(now=now)

    def flush(self) -> None:
        with self._lock:
            if self._lines or (self._dirty and not self._silent) or self._metrics_dirty:
                self._push()

    # --- internals -------------------------------------------------------------------

    @property
    def task_percentage(self) -> float:
        return round(min((self._cmd_idx + self._cmd_fraction) / self.n_commands * 100, 100.0), 2)

    def _act_due(self, now: float) -> bool:
        return self._last_act_push is None or now - self._last_act_push >= self.act_interval

    def _maybe_push_activity(self) -> None:
        if not self._silent and self._act_due(self.clock()):
            self._push()

    def _push(self, task_status: str | None = None, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        body: dict = {
            "current_command_idx": self._cmd_idx,
            "task_progress_percentage": self.task_percentage,
            "command_progress_percentage": round(self._cmd_fraction * 100, 2),
        }
        if not self._silent:
            body["activity"] = self._activity
            if task_status:
                body["task_status"] = task_status
            self._dirty = False
            self._last_act_push = now
            if self.resources and (self._last_resources is None
                                   or now - self._last_resources >= self.resources_interval):
                body["resources"] = self.resources()
                self._last_resources = now
        if self._lines:
            body["log"] = "\n".join(self._lines)
            self._lines = []
            self._first_line_at = None
        if self._metrics_dirty or (task_status and self._metrics):
            body["metrics"] = {k: dict(v) for k, v in self._metrics.items()}
            self._metrics_dirty = False
        self.queue.enqueue("POST", f"/tasks/{self.task_id}/update", body)
        self.pushes += 1
