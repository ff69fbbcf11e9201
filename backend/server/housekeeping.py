"""Periodic clean-up: forget applied update ids once no Manager can resend them, expired web sessions
and API tokens, remove uploaded files no job uses (after a grace period, see blobs.collect), and
archive finished jobs that are due (retention.py)."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from . import blobs, retention
from .context import ServerContext
from .database import write
from .models import ApiToken, AppliedUpdate
from .web import sessions

log = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self, ctx: ServerContext, interval: float = 3600.0):
        self.ctx = ctx
        self.interval = interval

    def tick(self, now: dt.datetime) -> int:
        """One pass; the number of rows removed and jobs archived."""
        cutoff = now - dt.timedelta(days=self.ctx.config.applied_update_retention_days)
        grace = dt.timedelta(hours=self.ctx.config.blob_grace_hours)
        with self.ctx.db.connection_context(), write(self.ctx.db):
            n = AppliedUpdate.delete().where(AppliedUpdate.applied < cutoff).execute()
            expired = sessions.purge_expired(now)
            expired += ApiToken.delete().where(ApiToken.expires <= now).execute()
            collected, _ = blobs.collect(self.ctx.store, now, grace)
        if n:
            log.info("forgot %d applied task update ids older than %s", n, cutoff)
        if expired:
            log.info("forgot %d expired web sessions and API tokens", expired)
        with self.ctx.db.connection_context():
            archived = retention.archive_due(self.ctx, now)
        self.ctx.activity.housekeeping_done(archived)
        return n + expired + collected + archived

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick(self.ctx.clock.now())
            except Exception:  # noqa: BLE001 - a failed pass is retried on the next one
                self.ctx.activity.housekeeping_failed()
                log.exception("housekeeping pass failed")
            stop.wait(self.interval)
