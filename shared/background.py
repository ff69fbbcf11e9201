"""Work handed to a thread of its own, done in order and gathered into rounds.

For file and stream writes off a service's request threads: each write is a system call
that gives up the GIL, and among a hundred request threads getting it back cost a
request far more than the call. Waking the writing thread for every line costs thread
switches too, so after a round it lingers a little and takes what gathered meanwhile;
the first call after a quiet spell is done at once. Anyone who needs the work done
(a reader of the file, the process ending) calls `flush`, which also cuts the linger short.
"""

from __future__ import annotations

import collections
import logging
import threading

log = logging.getLogger(__name__)


class BackgroundWriter:
    def __init__(self, name: str, linger: float = 0.05, on_error=None, after_round=None):
        """`on_error(ex, fn, args)` is told of a call that raised (by default it is logged);
        `after_round()` is called after each round's calls (to write what they gathered)."""
        self.name, self.linger = name, linger
        self.on_error, self.after_round = on_error, after_round
        self._ops: collections.deque = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = False  # the thread waits for work: a call wakes it
        self._busy = False  # the thread is doing a round
        self._flushers = 0
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def submit(self, fn, *args) -> None:
        """fn(*args) on the writing thread, after everything submitted before it."""
        with self._cond:
            self._ops.append((fn, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            elif self._idle:
                self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is done; False if that took over `timeout`."""
        with self._cond:
            if self._thread is None or threading.current_thread() is self._thread:
                return not self._ops
            self._flushers += 1
            try:
                self._cond.notify_all()
                return self._cond.wait_for(lambda: not self._ops and not self._busy, timeout)
            finally:
                self._flushers -= 1

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._idle = True
                while not self._ops:
                    self._cond.wait()
                self._idle = False
                ops, self._ops = self._ops, collections.deque()
                self._busy = True
            if self.after_round is not None:
                ops.append((self.after_round, ()))
            for fn, args in ops:
                try:
                    fn(*args)
                except Exception as ex:  # noqa: BLE001 - the writer goes on
                    if self.on_error is not None:
                        self.on_error(ex, fn, args)
                    else:
                        log.error("%s: %s failed", self.name, getattr(fn, "__name__", fn), exc_info=ex)
            with self._cond:
                self._busy = False
                self.rounds += 1
                self._cond.notify_all()  # flushers
                if not self._flushers:
                    self._cond.wait(self.linger)  # a flush cuts it short; new work does not
