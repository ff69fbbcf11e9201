"""What this Server process did since it started, for /metrics: counts the database does not keep.

Uploads by kind (`files`: artists' job files, `outputs`: Managers' outputs) and bytes, and how
housekeeping went. One per process (ServerContext.activity); with several Server processes
each counts its own, and Prometheus scrapes each (docs/metrics.md).
"""

from __future__ import annotations

import threading
import time


class Activity:
    UPLOAD_KINDS = ("files", "outputs")

    def __init__(self):
        self._lock = threading.Lock()
        self.uploads = dict.fromkeys(self.UPLOAD_KINDS, 0)
        self.upload_bytes = dict.fromkeys(self.UPLOAD_KINDS, 0)
        self.housekeeping_ok: float | None = None
        """Unix time of the last housekeeping pass that finished without an error."""
        self.housekeeping_failures = 0
        self.archived_by_retention = 0

    def uploaded(self, kind: str, size: int) -> None:
        with self._lock:
            self.uploads[kind] += 1
            self.upload_bytes[kind] += size

    def housekeeping_done(self, archived: int) -> None:
        with self._lock:
            self.housekeeping_ok = time.time()
            self.archived_by_retention += archived

    def housekeeping_failed(self) -> None:
        with self._lock:
            self.housekeeping_failures += 1
