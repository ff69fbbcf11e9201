"""Retention on the Manager: finished jobs forgotten `retention.finished_job_days` after their last change.

The Manager's copy of a job is the site's working copy; the Server keeps the job's record
(and archives it on its own schedule, `archive_after_days`). Once every task of a job has
ended and nothing of it waits to go upstream, this removes its task rows (with their parents
and failures), its blocklist entries, its upload-mode manifests (the file store then evicts
the blobs nobody needs any more) and its task logs. A job the Server runs again later comes
back through the depsgraph like a new one. 0 days (the default) keeps everything.
"""

from __future__ import annotations

import logging
import time

from .config import ManagerConfig
from .persistence import Persistence
from .task_logs import TaskLogs

log = logging.getLogger(__name__)

BATCH = 100
DAY = 86400.0


class Retention:
    def __init__(self, db: Persistence, config: ManagerConfig, logs: TaskLogs):
        self.db, self.config, self.logs = db, config, logs

    def tick(self, now: float | None = None) -> int:
        """Forget every job that is due; how many this call forgot."""
        days = self.config.retention.finished_job_days
        if days <= 0:
            return 0
        before = (time.time() if now is None else now) - days * DAY
        forgotten = 0
        while jobs := self.db.tasks.finished_jobs(before, BATCH):
            gone = 0
            for job in jobs:
                with self.db.write():
                    tasks = self.db.tasks.forget_job(job, before)
                if tasks:
                    self.logs.remove_job(job)
                    log.info("retention: forgot job %s (%d tasks, finished over %g days ago)", job, tasks, days)
                    gone += 1
            forgotten += gone
            if not gone:  # each was requeued meanwhile; the next tick looks again
                break
        return forgotten
