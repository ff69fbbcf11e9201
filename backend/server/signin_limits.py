"""Limits on wrong passwords: per user name and per client address, in a sliding window.

Once a name (or an address) has had `per_user` (`per_address`) failed sign-ins
within `window` seconds, every sign-in for it is answered 429 with Retry-After,
the right password included, until the oldest failure leaves the window: an
attacker cannot keep guessing, and cannot learn that a guess was right.

The counts live in this process's memory: they are lost on a restart, and two
Server processes behind one proxy each count on their own (so an attacker gets
up to twice the attempts). The number of names and addresses remembered is
capped, oldest first, so random names cannot fill the memory.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable

import bottle

MAX_KEYS = 100_000


class SignInLimiter:
    def __init__(self, per_user: int, per_address: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.per_user, self.per_address, self.window = per_user, per_address, window
        self.clock = clock
        self._failures: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> collections.deque | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, name: str, address: str) -> float | None:
        """Seconds until a sign-in as `name` from `address` may be tried again; None if it may now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key, limit in ((f"u:{name.lower()}", self.per_user), (f"a:{address}", self.per_address)):
                times = self._recent(key, now)
                if times is not None and len(times) >= limit:
                    wait = max(wait, times[len(times) - limit] + self.window - now)
        return wait if wait > 0 else None

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"u:{name.lower()}", f"a:{address}"):
                times = self._failures.setdefault(key, collections.deque())
                times.append(now)
                self._failures.move_to_end(key)
                while len(times) > max(self.per_user, self.per_address):
                    times.popleft()
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, name: str) -> None:
        """A right password ends the name's count (not the address's: one address may try many names)."""
        with self._lock:
            self._failures.pop(f"u:{name.lower()}", None)


def client_address() -> str:
    """The client's address, as backend/proxy.py left it: a trusted proxy's X-Forwarded-For applied,
    anyone else's ignored (Bottle's `remote_addr` would believe a client's own header)."""
    return (bottle.request.environ.get("REMOTE_ADDR") or "?")[:100]
