"""Timestamps as text: ISO 8601 in UTC, written and read the same way by every service.

Inside the services a moment is a naive datetime in UTC (the Server's database) or seconds
since the epoch (the Manager and the worker); on the wire and in logs it is ISO 8601 text.
"""

from __future__ import annotations

import datetime as dt


def iso_utc(moment: dt.datetime | float | None = None, timespec: str = "auto", zulu: bool = True) -> str:
    """`moment` (a datetime, naive meaning UTC, or epoch seconds; now if None) as ISO 8601 UTC text.

    `timespec` as datetime.isoformat takes it; `zulu` ends the text in 'Z' instead of '+00:00'.
    """
    if moment is None:
        moment = dt.datetime.now(dt.timezone.utc)
    elif isinstance(moment, (int, float)):
        moment = dt.datetime.fromtimestamp(moment, dt.timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    else:
        moment = moment.astimezone(dt.timezone.utc)
    text = moment.isoformat(timespec=timespec)
    return text[:-len("+00:00")] + "Z" if zulu else text


def parse_iso_utc(text: str) -> dt.datetime:
    """ISO 8601 text ('Z' or an offset; none means UTC) as a naive datetime in UTC; ValueError if unreadable."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment
