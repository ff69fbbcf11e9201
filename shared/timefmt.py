"""Times on the wire: ISO 8601 in UTC, written and read the same way by every service.

Inside the services a moment is a naive datetime in UTC (the Server's database) or a Unix
time (the Manager and the worker); on the wire and in logs it is ISO 8601 text.
"""

from __future__ import annotations

import datetime as dt


def iso_utc(when: dt.datetime | float | None = None, timespec: str = "auto", zulu: bool = False) -> str:
    """A Unix time or a datetime (naive meaning UTC; now, without one) as ISO 8601 UTC:
    '2026-12-04T15:03:36.123456+00:00', or ending in 'Z' with `zulu`.

    `timespec` as datetime.isoformat takes it ('auto' leaves out zero microseconds).
    """
    if when is None:
        when = dt.datetime.now(dt.timezone.utc)
    elif isinstance(when, (int, float)):
        when = dt.datetime.fromtimestamp(when, dt.timezone.utc)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    else:
        when = when.astimezone(dt.timezone.utc)
    text = when.isoformat(timespec=timespec)
    return text[:-len("+00:00")] + "Z" if zulu else text


def parse_iso_utc(text: str) -> dt.datetime:
    """ISO 8601 text ('Z' or an offset; none means UTC) as a naive datetime in UTC; ValueError if unreadable."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment
