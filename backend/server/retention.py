"""Retention: finished jobs are archived `archive_after_days` after their last change (0: never).

Archiving (archive.archive_job) keeps the job's record and its task runs and removes its
rows, its files and outputs that no other job uses, and its task logs. A finished job that an
unfinished job depends on waits until that one finishes. Housekeeping calls `archive_due` on
its schedule (hourly); every Server process does, and a job another process archived
meanwhile is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging

from backend.errors import ApiError
from shared.statuses import JOB_DELETABLE

from . import archive
from .context import ServerContext
from .models import Job, JobDependency

log = logging.getLogger(__name__)

BATCH = 50


def due(cutoff: dt.datetime, limit: int) -> list[Job]:
    """Finished jobs last changed before `cutoff` that no unfinished job depends on, oldest first."""
    dependent = Job.alias()
    waited_for = (JobDependency.select(JobDependency.depends_on)
                  .join(dependent, on=(JobDependency.job == dependent.id))
                  .where(dependent.status.not_in([s.value for s in JOB_DELETABLE])))
    return list(Job.select().where(Job.status.in_([s.value for s in archive.ARCHIVABLE]), Job.updated < cutoff,
                                   Job.id.not_in(waited_for))
                .order_by(Job.updated, Job.id).limit(limit))


def archive_due(ctx: ServerContext, now: dt.datetime) -> int:
    """Archive every job that is due; how many this call archived."""
    days = ctx.config.archive_after_days
    if days <= 0:
        return 0
    cutoff = now - dt.timedelta(days=days)
    who = f"retention (archive_after_days = {days:g})"
    archived, skipped = 0, set()
    while True:
        jobs = [j for j in due(cutoff, BATCH + len(skipped)) if j.id not in skipped]
        if not jobs:
            break
        for job in jobs:
            try:
                archive.archive_job(ctx, job, who)
                archived += 1
            except ApiError as ex:  # archived or changed by someone else meanwhile
                log.info("retention: job %s not archived: %s", job.id, ex.message)
                skipped.add(job.id)
    if archived:
        log.info("retention: archived %d jobs finished before %s", archived, cutoff)
    return archived
