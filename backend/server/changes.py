"""What changed, for whoever waits: the pages' event streams and Managers' held requests.

Writes note topics while their transaction runs ("job:<id>", "project:<id>",
"workers", "managers", "manager:<id>"); the topics are published only once the
transaction committed (`ServerContext.write()`), so a page that refetches on
an event never reads the state from before it. A transaction that fails
publishes nothing.

`manager:<id>` is a Manager's news: something it must learn on its next contact
(a cancel, new tasks, a worker action, a log request). A request of that
Manager held open by the Server (a long-poll) waits with `wait(seq, timeout)`
and answers as soon as `changed_since(seq)` holds "manager:<id>" (or
EVERYTHING).

This is one process's view. Several Server processes on one database do not
hear each other's changes; the pages then fall back on their polling interval.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Iterator

EVERYTHING = "*"
HISTORY = 4096
"""Recent (seq, topic) pairs kept, so a waiter that woke late still finds what it missed."""


def job_topics(job) -> list[str]:
    """What a change to this job (or its tasks) concerns: the job page and its project's job list."""
    return [f"job:{job.id}", f"project:{job.project_id}"]


class ChangeFeed:
    def __init__(self, history: int = HISTORY):
        self._cond = threading.Condition()
        self._seq = 0
        self._recent: collections.deque[tuple[int, str]] = collections.deque(maxlen=history)
        self._local = threading.local()
        self.closed = False
        """Set when the service stops: waiters return at once, streams end."""

    @property
    def seq(self) -> int:
        return self._seq

    # --- writers -------------------------------------------------------------------

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Topics noted inside are published when the block ends without an error; nested blocks join."""
        local = self._local
        depth = getattr(local, "depth", 0)
        if depth == 0:
            local.pending = set()
        local.depth = depth + 1
        try:
            yield
        except BaseException:
            local.depth = depth
            if depth == 0:
                local.pending = set()
            raise
        local.depth = depth
        if depth == 0:
            pending, local.pending = local.pending, set()
            self.publish(*pending)

    def note(self, *topics: str) -> None:
        """Inside `collecting()`: publish these at its end. Outside: publish now."""
        if getattr(self._local, "depth", 0):
            self._local.pending.update(topics)
        else:
            self.publish(*topics)

    def publish(self, *topics: str) -> None:
        if not topics:
            return
        with self._cond:
            self._seq += 1
            for topic in sorted(set(topics)):
                self._recent.append((self._seq, topic))
            self._cond.notify_all()

    # --- readers -------------------------------------------------------------------

    def wait(self, seq: int, timeout: float) -> int:
        """Block until something is published after `seq` (or the timeout, or the feed closed); the current seq."""
        with self._cond:
            if self._seq <= seq and not self.closed:
                self._cond.wait(timeout)
            return self._seq

    def changed_since(self, seq: int) -> set[str]:
        """The topics published after `seq`; {EVERYTHING} when they are older than the history kept."""
        with self._cond:
            if seq < self._seq and (not self._recent or self._recent[0][0] > seq + 1):
                return {EVERYTHING}
            return {topic for s, topic in self._recent if s > seq}

    def close(self) -> None:
        """The service is stopping: wake every waiter, and let none wait again."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()
