"""Full per-task log files on the Manager's disk.

Layout as in Flamenco 2: <task-logs>/job-<jid[:4]>/<jid>/task-<tid>.txt. When a
task is run again its old log is rotated to .txt.1 (.1 -> .2, ...), so each run
starts a new file and earlier runs stay readable.
"""

from __future__ import annotations

import collections
import gzip
import logging
import threading
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def safe_id(value: str) -> bool:
    return bool(_SAFE_ID.match(value)) and value not in (".", "..")


class TaskLogs:
    """Appends go through a small cache of open files: opening a file costs more than
    writing a few lines to it, and a running task's log is written to again and again."""

    def __init__(self, root: Path, rotations_kept: int = 5, open_files: int = 256):
        self.root = Path(root)
        self.rotations_kept = rotations_kept
        self._open: "collections.OrderedDict[Path, object]" = collections.OrderedDict()
        self._max_open = open_files
        self._lock = threading.Lock()

    def _close(self, path: Path) -> None:
        with self._lock:
            f = self._open.pop(path, None)
        if f is not None:
            f.close()

    def close_all(self) -> None:
        with self._lock:
            files, self._open = list(self._open.values()), collections.OrderedDict()
        for f in files:
            f.close()

    def path(self, job: str, task: str) -> Path:
        if not (safe_id(job) and safe_id(task)):
            raise ValueError(f"unsafe id in log path: job={job!r} task={task!r}")
        return self.root / f"job-{job[:4]}" / job / f"task-{task}.txt"

    def rotate(self, job: str, task: str) -> None:
        """Start a new log for a new run; keep `rotations_kept` older ones."""
        path = self.path(job, task)
        self._close(path)
        try:
            if path.stat().st_size == 0:
                return
        except OSError:
            return
        for i in range(self.rotations_kept - 1, 0, -1):
            older = path.with_name(f"{path.name}.{i}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))

    def append(self, job: str, task: str, text: str) -> None:
        if not text:
            return
        path = self.path(job, task)
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            f = self._open.get(path)
            if f is None:
                try:
                    f = open(path, "a", encoding="utf-8")
                except FileNotFoundError:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    f = open(path, "a", encoding="utf-8")
                self._open[path] = f
                while len(self._open) > self._max_open:
                    self._open.popitem(last=False)[1].close()
            else:
                self._open.move_to_end(path)
            f.write(text)
            f.flush()

    def read_bytes(self, job: str, task: str) -> bytes | None:
        try:
            return self.path(job, task).read_bytes()
        except FileNotFoundError:
            return None

    def gzipped(self, job: str, task: str) -> bytes:
        """The whole current log, gzip'd (empty if there is none), for the Server."""
        return gzip.compress(self.read_bytes(job, task) or b"", compresslevel=6)

    def head_and_tail(self, job: str, task: str, head: int, tail: int) -> bytes | None:
        path = self.path(job, task)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        if size <= head + tail:
            return path.read_bytes()
        with open(path, "rb") as f:
            first = f.read(head)
            f.seek(size - tail)
            last = f.read(tail)
        skipped = size - head - tail
        return first + f"\n\n[... {skipped} bytes skipped; add ?full=1 for the whole log ...]\n\n".encode() + last


def tail_lines(text: str, lines: int, max_bytes: int) -> str:
    """The last `lines` lines of text, at most `max_bytes` long."""
    parts = text.rstrip("\n").split("\n")[-lines:]
    out = "\n".join(parts)
    if len(out.encode()) > max_bytes:
        out = out.encode()[-max_bytes:].decode("utf-8", "ignore")
    return out
