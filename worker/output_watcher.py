"""Watching a command's output directories for files it writes without saying so.

Blender prints `Saved: '...'`, FFmpeg prints nothing useful: a watchdog
observer on the directories a command writes to reports every file that was
closed after writing (or moved into place) as a produced output. Reports are
batched per `debounce` seconds; the callback deduplicates.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)

_HAS_CLOSE_EVENTS = os.uname().sysname == "Linux" if hasattr(os, "uname") else False


def _interesting(path: str) -> bool:
    name = os.path.basename(path)
    return not (name.startswith(".") or name.endswith((".tmp", ".part", "~", ".ffmpeg-input.txt")))


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: "OutputWatcher"):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        if event.event_type == "closed":
            self.watcher.add(event.src_path)
        elif event.event_type == "moved":
            self.watcher.add(event.dest_path)
        elif not _HAS_CLOSE_EVENTS and event.event_type in ("created", "modified"):
            self.watcher.add(event.src_path)


class OutputWatcher:
    def __init__(self, report: Callable[[list[str]], None], debounce: float = 1.0):
        self.report = report
        self.debounce = debounce
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._observer = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def add(self, path) -> None:
        path = os.fsdecode(path)
        if _interesting(path):
            with self._lock:
                if path not in self._pending:
                    self._pending.append(path)

    def start(self, dirs: list[Path]) -> "OutputWatcher":
        observer = Observer(timeout=0.2)
        handler = _Handler(self)
        watched = set()
        for d in dirs:
            d = Path(d)
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as ex:
                log.warning("cannot watch %s: %s", d, ex)
                continue
            if d.resolve() in watched:
                continue
            watched.add(d.resolve())
            observer.schedule(handler, str(d), recursive=False)
        if not watched:
            return self
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._flusher = threading.Thread(target=self._flush_loop, name="output-watcher", daemon=True)
        self._flusher.start()
        return self

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.debounce):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            paths, self._pending = self._pending, []
        if paths:
            try:
                self.report(paths)
            except Exception:  # noqa: BLE001 - reporting must never break the task
                log.exception("reporting produced outputs failed")

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        self._stop.set()
        if self._flusher:
            self._flusher.join(timeout=5)
        self.flush()
