"""News for Managers: "something changed for manager X", and the held requests waiting for it.

All traffic goes from a Manager up to the Server, so the Server cannot tell a Manager
that a job arrived; instead a Manager keeps one request held here (the depsgraph
long-poll, docs/protocol.md) and this module wakes it. Whatever a Manager must learn
notifies its manager id with a kind:

    TASKS    tasks it may run appeared or changed (a new job, a requeue, a resume, ...)
    CANCEL   tasks it holds must stop (cancel-requested)
    LOG      a task's full log was requested
    (and any other kind a feature adds, e.g. worker actions: the waiting request does
    not care what the news is, it tells the Manager which kinds arrived)

News is in memory: a token `<epoch>.<generation>` names what a Manager has seen. A
Manager that sends back the token it last got, while nothing happened, is held; one
with an older token, a token from before a Server restart (another epoch) or none is
answered at once, with every kind, so nothing is missed across restarts.

Notifications made inside a write transaction are delivered once it committed
(`database.after_commit`), so a woken request reads the new rows.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from .database import after_commit

log = logging.getLogger(__name__)

TASKS, CANCEL, LOG = "tasks", "cancel", "log"
ALL_KINDS = "*"
"""Kinds given to a Manager whose token is unknown: it should look at everything."""


class ManagerNews:
    def __init__(self, max_held: int):
        self.epoch = os.urandom(4).hex()
        self.max_held = max(0, max_held)
        self._cond = threading.Condition()
        self._generation = 0
        self._seen: dict[str, dict[str, int]] = {}
        """manager id -> {kind: generation of its latest notification}."""
        self._holders: dict[str, object] = {}
        """manager id -> the newest held request (an older one of the same Manager lets go)."""
        self._held = 0
        self._closed = False

    # --- notifying -------------------------------------------------------------------

    def notify(self, manager_id: str | None, kind: str) -> None:
        """News of `kind` for this Manager, delivered after the current write transaction commits."""
        if manager_id:
            after_commit(lambda: self._notify(manager_id, kind))

    def _notify(self, manager_id: str, kind: str) -> None:
        with self._cond:
            self._generation += 1
            self._seen.setdefault(manager_id, {})[kind] = self._generation
            self._cond.notify_all()

    # --- reading and waiting ---------------------------------------------------------

    def token(self) -> str:
        with self._cond:
            return f"{self.epoch}.{self._generation}"

    def since(self, manager_id: str, token: str | None) -> tuple[str, list[str]]:
        """(the token now, the kinds notified for this Manager after `token`)."""
        with self._cond:
            return self._since(manager_id, token)

    def _since(self, manager_id: str, token: str | None) -> tuple[str, list[str]]:
        now = f"{self.epoch}.{self._generation}"
        generation = self._parse(token)
        if generation is None:
            return now, [ALL_KINDS]
        kinds = sorted(k for k, g in self._seen.get(manager_id, {}).items() if g > generation)
        return now, kinds

    def _parse(self, token: str | None) -> int | None:
        """The generation of a token of this epoch, else None."""
        epoch, _, gen = (token or "").partition(".")
        if epoch != self.epoch or not gen.isdigit() or int(gen) > self._generation:
            return None
        return int(gen)

    def wait(self, manager_id: str, token: str | None, timeout: float) -> tuple[str, list[str]] | None:
        """Hold until news for this Manager after `token`, the timeout, a newer request of the
        same Manager or close(); then (token, kinds) as `since`. None when no request may be
        held now (all the threads they may take are taken): the caller answers at once."""
        deadline = time.monotonic() + timeout
        me = object()
        with self._cond:
            current, kinds = self._since(manager_id, token)
            if kinds or timeout <= 0 or self._closed:
                return current, kinds
            previous = self._holders.get(manager_id)
            if previous is None and self._held >= self.max_held:
                log.warning("manager %s: %d held requests already, the limit; answering at once (give the Server "
                            "more threads: one per Manager plus the ones for people)", manager_id, self._held)
                return None
            if previous is None:
                self._held += 1
            self._holders[manager_id] = me
            self._cond.notify_all()  # an older request of this Manager lets go
            try:
                while True:
                    current, kinds = self._since(manager_id, token)
                    remaining = deadline - time.monotonic()
                    if kinds or remaining <= 0 or self._closed or self._holders.get(manager_id) is not me:
                        return current, kinds
                    self._cond.wait(remaining)
            finally:
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
