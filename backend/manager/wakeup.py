"""Wake-ups for long-polling workers (and the SSE image stream).

A waiter reads `generation` before looking for work; if it found none it waits
until the generation moved on, so a notification between the look and the
wait is never missed.
"""

from __future__ import annotations

import threading


class Wakeup:
    def __init__(self):
        self._cond = threading.Condition()
        self.generation = 0
        self.waiting = 0

    def notify(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> bool:
        """Wait up to `timeout` s for a notification after `since`; True if one came."""
        with self._cond:
            if self.generation != since:
                return True
            self.waiting += 1
            try:
                return self._cond.wait_for(lambda: self.generation != since, timeout)
            finally:
                self.waiting -= 1
