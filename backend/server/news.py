"""News for Managers: "something changed for manager X", and the held requests waiting for it.

All traffic goes from a Manager up to the Server, so the Server cannot tell a Manager
that a job arrived; instead a Manager keeps one request held here (the depsgraph
long-poll, docs/protocol.md) and this module wakes it. Whatever a Manager must learn
notifies its manager id with a kind, inside the write transaction that made the change:

    TASKS    tasks it may run appeared or changed (a new job, a requeue, a resume, ...)
    CANCEL   tasks it holds must stop (cancel-requested)
    LOG      a task's full log was requested
    WORKERS  an admin asked for something to be done with a worker (worker_actions.py)
    (and any other kind a feature adds: the waiting request does not care what the
    news is, it tells the Manager which kinds arrived)

News is kept in the database (`manager_news_item`: per Manager and kind, the stamp of the
latest), stamped with the Server's change clock, which grows in commit order across
every Server process on the database. A Manager's token is the stamp of the latest news
it was told of; "kinds since a token" is one indexed read. So news survives a restart
and reaches a request held by another Server process on the same database: this
process wakes its own held requests the moment its transaction committed, and every
held request also looks again every RECHECK seconds for news another process stored.
A Manager without a token (or with one that is no stamp) is told "*": look at everything.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from .database import Clock, after_commit, write
from .models import ManagerNewsItem as NewsRow, database_proxy

log = logging.getLogger(__name__)

TASKS, CANCEL, LOG, WORKERS = "tasks", "cancel", "log", "workers"
ALL_KINDS = "*"
"""Kinds given to a Manager whose token is unknown: it should look at everything."""
NO_NEWS = "0"
"""The token of a Manager that had no news yet."""
RECHECK = 1.0
"""Seconds between looks at the database by a held request (for news of other Server processes)."""


def _token(stamp: dt.datetime | None) -> str:
    return stamp.isoformat(timespec="microseconds") if stamp else NO_NEWS


def _parse(token: str | None) -> dt.datetime | None:
    if token == NO_NEWS:
        return dt.datetime.min
    try:
        return dt.datetime.fromisoformat(token or "")
    except ValueError:
        return None


class ManagerNews:
    def __init__(self, clock: Clock, max_held: int, recheck: float = RECHECK):
        self.clock = clock
        self.max_held = max(0, max_held)
        self.recheck = recheck
        self._cond = threading.Condition()
        self._pings: dict[str, int] = {}
        """manager id -> news stored by this process so far (a held request looks when it moves)."""
        self._holders: dict[str, object] = {}
        """manager id -> the newest held request (an older one of the same Manager lets go)."""
        self._held = 0
        self._closed = False

    # --- notifying -------------------------------------------------------------------

    def notify(self, manager_id: str | None, kind: str) -> None:
        """News of `kind` for this Manager: stored in the current write transaction (one of its
        own outside one); this process's held request of that Manager wakes once it committed."""
        if not manager_id:
            return
        db = database_proxy.obj
        with write(db):
            stamp = self.clock.now()
            (NewsRow.insert(manager=manager_id, kind=kind, stamp=stamp)
             .on_conflict(conflict_target=[NewsRow.manager, NewsRow.kind], update={NewsRow.stamp: stamp})
             .execute())
            after_commit(lambda: self._ping(manager_id))

    def _ping(self, manager_id: str) -> None:
        with self._cond:
            self._pings[manager_id] = self._pings.get(manager_id, 0) + 1
            self._cond.notify_all()

    # --- reading and waiting ---------------------------------------------------------

    def since(self, manager_id: str, token: str | None) -> tuple[str, list[str]]:
        """(the token of the Manager's latest news, the kinds notified for it after `token`)."""
        rows = list(NewsRow.select(NewsRow.kind, NewsRow.stamp).where(NewsRow.manager == manager_id).tuples())
        latest = max((stamp for _, stamp in rows), default=None)
        seen = _parse(token)
        if seen is None:
            return _token(latest), [ALL_KINDS]
        kinds = sorted(kind for kind, stamp in rows if stamp > seen)
        newest = latest if latest is not None and latest > seen else seen
        return _token(None if newest == dt.datetime.min else newest), kinds

    def wait(self, manager_id: str, token: str | None, timeout: float) -> tuple[str, list[str]] | None:
        """Hold until news for this Manager after `token`, the timeout, a newer request of the
        same Manager or close(); then (token, kinds) as `since`. None when no request may be
        held now (all the threads they may take are taken): the caller answers at once."""
        deadline = time.monotonic() + timeout
        me = object()
        if self._closed or timeout <= 0:
            return self.since(manager_id, token)
        with self._cond:
            previous = self._holders.get(manager_id)
            if previous is None and self._held >= self.max_held:
                log.warning("manager %s: %d held requests already, the limit; answering at once (give the Server "
                            "more manager_threads: one per Manager)", manager_id, self._held)
                return None
            if previous is None:
                self._held += 1
            self._holders[manager_id] = me
            self._cond.notify_all()  # an older request of this Manager lets go
        try:
            while True:
                with self._cond:
                    pings = self._pings.get(manager_id, 0)
                current, kinds = self.since(manager_id, token)
                look_again = time.monotonic() + self.recheck  # for news other processes stored
                with self._cond:
                    while True:
                        now = time.monotonic()
                        if kinds or now >= deadline or self._closed or self._holders.get(manager_id) is not me:
                            return current, kinds
                        if self._pings.get(manager_id, 0) != pings or now >= look_again:
                            break  # news stored by this process for it, or time to look: read again
                        self._cond.wait(min(deadline, look_again) - now)
        finally:
            with self._cond:
                if self._holders.get(manager_id) is me:
                    del self._holders[manager_id]
                    self._held -= 1

    def held(self) -> int:
        with self._cond:
            return self._held

    def close(self) -> None:
        """The Server stops: every held request answers now."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
