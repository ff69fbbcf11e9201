"""Wake-ups for long-polling workers: one waiter per runnable task, not all of them.

A waiter reads `generation` before looking for work; if it found none it waits
until it is woken, or returns at once when the generation moved on since it
looked, so a notification between the look and the wait is never missed.

`notify(n)` wakes the n workers that have waited longest. A woken worker that
finds nothing it may run (task type, tags, blocklist) calls `pass_on`, which
wakes the next waiter that has not looked since, so a task one worker cannot
take still reaches one that can, and each waiter looks at most once per change.
`notify_worker` wakes one worker's own long-polls (status requests, sign-off, a task
of it that stopped running); they have nothing to pass on.
"""

from __future__ import annotations

import itertools
import threading

WOKEN = "woken"
"""`wait` result: a notification chose this waiter (it should take a task, or pass it on)."""
CHANGED = "changed"
"""`wait` result: the generation moved on between the look and the wait: look again."""
OWN = "own"
"""`wait` result: something changed for this worker itself (`notify_worker`): look again."""


class _Waiter:
    __slots__ = ("event", "worker_id", "looked_at", "result")

    def __init__(self, worker_id: str | None, looked_at: int):
        self.event = threading.Event()
        self.worker_id = worker_id
        self.looked_at = looked_at
        self.result = WOKEN


class Wakeup:
    def __init__(self):
        self._lock = threading.Lock()
        self.generation = 0
        self._waiters: dict[_Waiter, None] = {}
        """In arrival order (dicts keep it): the first waited longest."""

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _wake(self, waiter: _Waiter, result: str = WOKEN) -> None:
        del self._waiters[waiter]
        waiter.result = result
        waiter.event.set()

    def notify(self, n: int = 1) -> None:
        """Up to `n` tasks may have become runnable: wake that many waiters."""
        with self._lock:
            self.generation += 1
            for waiter in list(itertools.islice(self._waiters, max(0, n))):
                self._wake(waiter)

    def notify_counted(self, count) -> None:
        """Like notify(count()), but count() (a database read) only runs when someone waits.

        Moving the generation on and looking at the waiters happen under one lock, so a
        long-poll either waits already (and is counted) or will see the new generation."""
        with self._lock:
            self.generation += 1
            if self._waiters:
                for waiter in list(itertools.islice(self._waiters, max(0, count()))):
                    self._wake(waiter)

    def notify_all(self) -> None:
        with self._lock:
            self.generation += 1
            for waiter in list(self._waiters):
                self._wake(waiter)

    def notify_worker(self, worker_id: str) -> None:
        """Something changed for this worker only (a status request, sign-off, its blocklist, a
        task of it that stopped running).

        Moves the generation on too, so a long-poll of that worker between its look and its
        wait does not sleep through it."""
        with self._lock:
            self.generation += 1
            for waiter in [w for w in self._waiters if w.worker_id == worker_id]:
                self._wake(waiter, OWN)

    def pass_on(self, looked_at: int) -> bool:
        """A woken worker looked at generation `looked_at` and found nothing it may run: wake
        the longest waiting one that has not looked since. False if there is none."""
        with self._lock:
            for waiter in self._waiters:
                if waiter.looked_at < looked_at:
                    self._wake(waiter)
                    return True
        return False

    def wait(self, since: int, timeout: float, worker_id: str | None = None) -> str | None:
        """Wait up to `timeout` s: WOKEN when a task notification chose this waiter, CHANGED when
        the generation had moved on since `since` (no wait), OWN when the worker's own state
        changed, None on timeout."""
        with self._lock:
            if self.generation != since:
                return CHANGED
            waiter = _Waiter(worker_id, since)
            self._waiters[waiter] = None
        if not waiter.event.wait(timeout):
            with self._lock:
                self._waiters.pop(waiter, None)
            if not waiter.event.is_set():
                return None
        return waiter.result
