"""How much disk the Manager's data directory uses: the output spool, the job-file cache, task logs.

Walking a large cache costs time, so a report is reused for CACHE_SECONDS.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from .config import ManagerConfig

CACHE_SECONDS = 10.0


def _walk(path: Path) -> dict:
    files = size = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            files += 1
                            size += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return {"files": files, "bytes": size}


class StorageUsage:
    def __init__(self, config: ManagerConfig):
        self.config = config
        self._report: dict | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def report(self, max_age: float = CACHE_SECONDS) -> dict:
        """The usage, walked again when the last walk is older than `max_age` seconds."""
        with self._lock:
            now = time.monotonic()
            if self._report is None or now - self._at > max_age:
                cfg = self.config
                data_dir = Path(cfg.data_dir)
                disk = shutil.disk_usage(data_dir) if data_dir.exists() else None
                self._report = {
                    "spool": _walk(cfg.spool_dir), "file_cache": _walk(cfg.file_cache_dir),
                    "task_logs": _walk(cfg.task_log_dir),
                    "disk": {"free_bytes": disk.free, "total_bytes": disk.total} if disk else None,
                }
                self._at = now
            return self._report
