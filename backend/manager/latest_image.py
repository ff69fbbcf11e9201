"""The latest rendered image: a JPEG thumbnail made with FFmpeg (which also reads
EXR), served at /latest-image.jpg and announced over Server-Sent Events.

Images come from /output-produced (at most one per worker per 30 s) and from a
watchdog observer on a configured directory. Conversion runs on one thread
with a queue of three; when it is full, the newest image replaces the oldest
waiting one, since only the latest matters.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import threading
import time
from pathlib import Path

from .config import ManagerConfig
from .wakeup import Wakeup

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".tga")


class LatestImage:
    def __init__(self, config: ManagerConfig):
        self.config = config
        self.out_path = config.latest_image_path
        self.changed = Wakeup()
        self.source: str | None = None
        self.updated: float | None = None
        self._queue: collections.deque[str] = collections.deque(maxlen=3)
        self._cond = threading.Condition()
        self.streams = threading.BoundedSemaphore(max(1, config.latest_image.max_streams))

    @staticmethod
    def accepts(path: str) -> bool:
        """Whether `path` is an image this can show."""
        return str(path).lower().endswith(IMAGE_EXTENSIONS)

    def submit(self, path: str) -> bool:
        """Queue an image for conversion; False if it is not an image this can show."""
        if not self.accepts(path):
            return False
        with self._cond:
            self._queue.append(str(path))
            self._cond.notify()
        return True

    def convert(self, path: str) -> bool:
        """Make the thumbnail from `path` now; True when it worked."""
        cfg = self.config.latest_image
        if not os.path.isfile(path):
            log.info("latest image: %s is not a file this Manager can read", path)
            return False
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out_path.with_name(".latest-image.tmp.jpg")
        scale = (f"scale='min({cfg.max_width},iw)':'min({cfg.max_height},ih)'"
                 f":force_original_aspect_ratio=decrease")
        cmd = [cfg.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", path,
               "-frames:v", "1", "-vf", scale, "-q:v", "3", "-f", "image2", "-c:v", "mjpeg", str(tmp)]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as ex:
            log.warning("latest image: cannot run %s: %s", cfg.ffmpeg, ex)
            return False
        if proc.returncode != 0 or not tmp.exists():
            log.warning("latest image: ffmpeg failed on %s: %s", path, proc.stderr.decode(errors="replace")[-500:])
            return False
        os.replace(tmp, self.out_path)
        self.source, self.updated = path, time.time()
        log.info("latest image is now %s", path)
        self.changed.notify()
        return True

    def info(self) -> dict:
        return {"source": self.source, "updated": self.updated, "generation": self.changed.generation,
                "url": "/latest-image.jpg" if self.out_path.exists() else None}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._queue or stop.is_set(), timeout=1.0)
                path = self._queue.pop() if self._queue else None
                self._queue.clear()
            if path:
                try:
                    self.convert(path)
                except Exception:  # noqa: BLE001 - a loop logs and goes on
                    log.exception("latest image conversion failed for %s", path)

    def start_watching(self, directory: str):
        """A watchdog observer that submits new or changed images under `directory`."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        latest = self

        class Handler(FileSystemEventHandler):
            # A file is shown once it was closed after writing (or moved into place),
            # never while a renderer is still writing it.
            def on_closed(self, event):
                if not event.is_directory:
                    latest.submit(event.src_path)

            def on_moved(self, event):
                if not event.is_directory:
                    latest.submit(event.dest_path)

        Path(directory).mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(Handler(), directory, recursive=True)
        observer.daemon = True
        observer.start()
        log.info("watching %s for new images", directory)
        return observer
