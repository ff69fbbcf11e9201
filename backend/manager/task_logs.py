"""Full per-task log files on the Manager's disk.

Layout as in Flamenco 2: <task-logs>/job-<jid[:4]>/<jid>/task-<tid>.txt. When a
task is run again its old log is rotated to .txt.1 (.1 -> .2, ...), so each run
starts a new file and earlier runs stay readable.
"""

from __future__ import annotations

import collections
import gzip
import io
import logging
import os
import re
import shutil
import threading
from pathlib import Path

from shared.background import BackgroundWriter

log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def _write_failed(ex: Exception, fn, args) -> None:
    if isinstance(ex, (OSError, ValueError)):
        log.warning("task log %s: cannot write: %s", args[0], ex)
    else:
        log.error("task log %s: writing failed", args[0], exc_info=ex)


def safe_id(value: str) -> bool:
    return bool(_SAFE_ID.match(value)) and value not in (".", "..")


class TaskLogs:
    """Log files written with plain file descriptors, kept open in a small LRU cache.

    A dispatched task costs two short appends (assigned, finished) to a new file: creating
    the file is the expensive part, so it is done once, with O_EXCL telling at the same
    time whether an earlier run's log must be rotated away. Writes are O_APPEND, so lines
    of concurrent writers never interleave within a line.

    With `background`, the writes are done in order on a thread of their own
    (shared/background.py) and the request that wrote a line goes on at once: each file
    call releases the GIL, and among the Manager's hundred request threads getting it back
    cost a request thread far more than the call. Every read waits for what was written
    before it (`flush`).
    """

    def __init__(self, root: Path, rotations_kept: int = 5, open_files: int = 256, background: bool = False):
        self.root = Path(root)
        self._root = str(self.root)
        self.rotations_kept = rotations_kept
        self._open: "collections.OrderedDict[str, int]" = collections.OrderedDict()
        self._max_open = open_files
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        self._writer = BackgroundWriter("task-log-writer", on_error=_write_failed) if background else None

    def _submit(self, fn, *args) -> None:
        if self._writer is None:
            fn(*args)
        else:
            self._writer.submit(fn, *args)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every line written so far is in its file."""
        if self._writer is not None:
            self._writer.flush(timeout)

    def _close(self, path: str) -> None:
        with self._lock:
            fd = self._open.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        self.flush()
        with self._lock:
            fds, self._open = list(self._open.values()), collections.OrderedDict()
        for fd in fds:
            os.close(fd)

    def _path(self, job: str, task: str) -> str:
        if not (safe_id(job) and safe_id(task)):
            raise ValueError(f"unsafe id in log path: job={job!r} task={task!r}")
        return f"{self._root}/job-{job[:4]}/{job}/task-{task}.txt"

    def path(self, job: str, task: str) -> Path:
        """The current run's log file, with every line written so far in it."""
        path = Path(self._path(job, task))
        self.flush()
        return path

    def _rotate_path(self, path: str) -> None:
        for i in range(self.rotations_kept - 1, 0, -1):
            older = f"{path}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{path}.{i + 1}")
        os.replace(path, f"{path}.1")

    def rotate(self, job: str, task: str) -> None:
        """Start a new log for a new run; keep `rotations_kept` older ones."""
        self.flush()
        path = self._path(job, task)
        self._close(path)
        try:
            if os.stat(path).st_size == 0:
                return
        except OSError:
            return
        self._rotate_path(path)

    def start_run(self, job: str, task: str, text: str) -> None:
        """A new run of the task: a new log file (the previous one rotated away) starting with `text`."""
        self._submit(self._start_run, self._path(job, task), text)

    def _start_run(self, path: str, text: str) -> None:
        self._close(path)
        self._mkdir(path)
        try:
            fd = os.open(path, _APPEND | os.O_EXCL, 0o644)
        except FileExistsError:
            if os.stat(path).st_size:
                self._rotate_path(path)
            fd = os.open(path, _APPEND, 0o644)
        except FileNotFoundError:  # the job's directory was removed meanwhile
            self._mkdir(path, again=True)
            fd = os.open(path, _APPEND, 0o644)
        self._write(path, fd, text)

    def _mkdir(self, path: str, again: bool = False) -> None:
        parent = path.rpartition("/")[0]
        if again or parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)

    def _write(self, path: str, fd: int | None, text: str) -> None:
        data = (text if text.endswith("\n") else text + "\n").encode("utf-8", "replace")
        with self._lock:
            if fd is None:
                fd = self._open.get(path)
                if fd is None:
                    try:
                        fd = os.open(path, _APPEND, 0o644)
                    except FileNotFoundError:
                        self._mkdir(path, again=True)
                        fd = os.open(path, _APPEND, 0o644)
                else:
                    self._open.move_to_end(path)
            old = self._open.get(path)
            if old is not None and old != fd:
                os.close(old)
            self._open[path] = fd
            while len(self._open) > self._max_open:
                os.close(self._open.popitem(last=False)[1])
            os.write(fd, data)

    def append(self, job: str, task: str, text: str) -> None:
        if not text:
            return
        self._submit(self._write, self._path(job, task), None, text)

    def remove_job(self, job: str) -> None:
        """Remove every log of the job (its directory), closing what is open of it."""
        if not safe_id(job):
            raise ValueError(f"unsafe job id in log path: {job!r}")
        directory = f"{self._root}/job-{job[:4]}/{job}"
        self.flush()
        with self._lock:
            paths = [p for p in self._open if p.startswith(directory + "/")]
        for path in paths:
            self._close(path)
        self._dirs.discard(directory)
        shutil.rmtree(directory, ignore_errors=True)

    def read_bytes(self, job: str, task: str) -> bytes | None:
        try:
            return self.path(job, task).read_bytes()
        except FileNotFoundError:
            return None

    def _run_paths(self, job: str, task: str) -> list[Path]:
        """The log files of the task's runs that are kept, oldest first, the current one last."""
        self.flush()
        path = self._path(job, task)
        older = [Path(f"{path}.{i}") for i in range(self.rotations_kept, 0, -1)]
        return [p for p in (*older, Path(path)) if p.exists()]

    def gzipped(self, job: str, task: str, missing: bytes = b"") -> bytes:
        """Every kept run's log, oldest first, gzip'd, for the Server (`missing` if there is none).
        With more than one run each starts with a line naming it, so the Server's one full
        log of the task holds each attempt's whole log."""
        paths = self._run_paths(job, task)
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
            if not paths:
                gz.write(missing)
            for n, path in enumerate(paths, start=1):
                if len(paths) > 1:
                    which = "the latest" if n == len(paths) else "an earlier run"
                    gz.write(f"===== run {n} of {len(paths)} ({which}) =====\n".encode())
                with open(path, "rb") as f:
                    shutil.copyfileobj(f, gz, 1024 * 1024)
        return out.getvalue()

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
