"""Times on the wire: ISO 8601 in UTC."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def iso_utc(when: float | None = None) -> str:
    """A Unix time (now, without one) as ISO 8601 UTC with its offset: '2026-12-04T15:03:36.123456+00:00'."""
    return datetime.fromtimestamp(time.time() if when is None else when, timezone.utc).isoformat()
