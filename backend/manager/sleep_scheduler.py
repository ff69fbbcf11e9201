"""Per-worker sleep schedules: asleep inside a time window on given days, awake outside.

`desired_status` and `next_check` are pure; `tick(now)` applies them (as lazy
requests, so a running task finishes first) to workers whose next check is due.
Times are the Manager's local time. A window whose end is before its start
runs past midnight (22:00-06:00); the days name the day the window starts.
"""

from __future__ import annotations

import logging
from datetime import datetime, time as dtime, timedelta

from shared.statuses import WorkerStatus as WS

from .persistence import Persistence
from .workers import DAYS, Workers

log = logging.getLogger(__name__)

def _hhmm(value: str) -> dtime:
    h, m = value.split(":")
    return dtime(int(h), int(m))


def desired_status(days: str, start: str, end: str, now: datetime) -> str:
    """'asleep' inside the window, 'awake' outside."""
    day_set = set(days.split()) or set(DAYS)
    t0, t1 = _hhmm(start), _hhmm(end)
    today = DAYS[now.weekday()]
    yesterday = DAYS[(now.weekday() - 1) % 7]
    t = now.time()
    if t0 <= t1:
        inside = today in day_set and t0 <= t < t1
    else:
        inside = (today in day_set and t >= t0) or (yesterday in day_set and t < t1)
    return WS.ASLEEP if inside else WS.AWAKE


def next_check(start: str, end: str, now: datetime) -> datetime:
    """The earliest of the next start, the next end and the next midnight."""
    candidates = []
    for hm in (start, end):
        at = datetime.combine(now.date(), _hhmm(hm), tzinfo=now.tzinfo)
        if at <= now:
            at += timedelta(days=1)
        candidates.append(at)
    candidates.append(datetime.combine(now.date() + timedelta(days=1), dtime(0, 0), tzinfo=now.tzinfo))
    return min(candidates)


class SleepScheduler:
    def __init__(self, db: Persistence, workers: Workers, interval: float = 60.0):
        self.db, self.workers, self.interval = db, workers, interval

    def tick(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """One pass; returns the (worker id, requested status) pairs it asked for."""
        now = now or datetime.now().astimezone()
        stamp = now.timestamp()
        asked = []
        for worker in self.db.workers.schedules_due(stamp):
            try:
                want = desired_status(worker.sleep_days, worker.sleep_start, worker.sleep_end, now)
                nxt = next_check(worker.sleep_start, worker.sleep_end, now).timestamp()
            except (ValueError, IndexError) as ex:
                log.warning("worker %s: unusable sleep schedule: %s", worker.identifier, ex)
                continue
            with self.db.write():
                self.db.workers.update(worker.id, sleep_next_check=nxt)
            current = worker.status_requested or worker.status
            if current == want or (worker.status == WS.OFFLINE and want == WS.AWAKE
                                   and not worker.status_requested):
                continue
            self.workers.request_status(worker.id, want, lazy=True)
            log.info("sleep schedule: worker %s -> %s", worker.identifier, want)
            asked.append((worker.id, want))
        return asked
