"""The job panel's model: the artist's recent jobs, their progress, ETA and allowed actions.

Built from the Server's job documents; keeps a little history per job (progress
over time) so it can estimate when a job will be done even when the Server does
not say when the job started. The clock is passed in, so tests drive it.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .sharedcode import statuses

J = statuses.JobStatus

ACTIONS = {
    "cancel": J.CANCEL_REQUESTED,
    "pause": J.PAUSE_REQUESTED,
    "resume": J.QUEUED,
    "requeue": J.REQUEUED,
}
"""Panel button -> the status it asks the Server for (POST /api/jobs/{id}/status)."""

RUNNING = frozenset({J.QUEUED, J.ACTIVE, J.REQUEUED, J.UNDER_CONSTRUCTION, J.WAITING_FOR_FILES,
                     J.CANCEL_REQUESTED, J.PAUSE_REQUESTED, J.FAIL_REQUESTED})
_HISTORY_SECONDS = 30 * 60
_START_KEYS = ("started", "started_at", "activated", "activated_at")
_CREATED_KEYS = ("created", "created_at", "_created", "submitted_at")
_UPDATED_KEYS = ("updated", "updated_at", "_updated")


def parse_time(value: Any) -> float | None:
    """An ISO 8601 timestamp (or epoch seconds) -> epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        text = str(value).replace("Z", "+00:00")
        dt = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _first(doc: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if doc.get(k) not in (None, ""):
            return doc[k]
    return None


def job_progress(doc: dict) -> float:
    """Percent complete, 0..100, from the job's own figure or its task counts."""
    for key in ("progress", "progress_percent", "percent_complete", "progress_percentage"):
        value = doc.get(key)
        if isinstance(value, (int, float)):
            return max(0.0, min(100.0, float(value)))
    counts = doc.get("task_counts") or doc.get("tasks") or {}
    if isinstance(counts, dict) and counts:
        total = counts.get("total") or sum(v for k, v in counts.items() if isinstance(v, int) and k != "total")
        if total:
            return 100.0 * counts.get("completed", 0) / total
    return 100.0 if doc.get("status") == J.COMPLETED else 0.0


def allowed_actions(status: str, task_counts: dict | None = None) -> list[str]:
    """The buttons a job in `status` gets. With its task counts, Requeue only where it would
    requeue something (the Server answers 409 nothing_to_requeue otherwise)."""
    try:
        current = J(status)
    except ValueError:
        return []
    allowed = statuses.JOB_USER_TRANSITIONS.get(current, frozenset())
    out = [name for name, target in ACTIONS.items() if target in allowed]
    if "requeue" in out and isinstance(task_counts, dict) and \
            not statuses.requeue_changes_something(current, task_counts):
        out.remove("requeue")
    return out


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h {m:02d}m"


@dataclass
class JobRow:
    id: str
    name: str
    type: str
    status: str
    progress: float
    eta_seconds: float | None = None
    priority: int = 50
    status_reason: str = ""
    user: str = ""
    """Who submitted the job."""
    created: float | None = None
    actions: list[str] = field(default_factory=list)
    doc: dict = field(default_factory=dict)

    @property
    def eta_text(self) -> str:
        if self.status == J.COMPLETED:
            return "done"
        if self.eta_seconds is None:
            return ""
        return f"about {format_duration(self.eta_seconds)} left"

    @property
    def running(self) -> bool:
        return self.status in RUNNING


class JobList:
    """The recent jobs, newest first, with ETAs from their progress history."""

    def __init__(self, clock: Callable[[], float] = time.time, limit: int = 10):
        self.clock = clock
        self.limit = limit
        self.rows: list[JobRow] = []
        self.history: dict[str, list[tuple[float, float]]] = {}
        self.fetched_at: float | None = None
        self.error: str = ""

    def update(self, docs: list[dict]) -> list[JobRow]:
        now = self.clock()
        rows = []
        seen = set()
        for doc in docs:
            if not isinstance(doc, dict) or "id" not in doc:
                continue
            seen.add(str(doc["id"]))
            rows.append(self._row(doc, now))
        for gone in set(self.history) - seen:
            del self.history[gone]
        rows.sort(key=lambda r: (r.created or 0.0, r.id), reverse=True)
        self.rows = rows[: self.limit]
        self.fetched_at = now
        self.error = ""
        return self.rows

    def _row(self, doc: dict, now: float) -> JobRow:
        job_id = str(doc["id"])
        progress = job_progress(doc)
        status = str(doc.get("status", ""))
        samples = self.history.setdefault(job_id, [])
        if not samples or samples[-1][1] != progress:
            samples.append((now, progress))
        samples[:] = [s for s in samples if now - s[0] <= _HISTORY_SECONDS] or samples[-1:]
        return JobRow(
            id=job_id, name=str(doc.get("name", job_id)), type=str(doc.get("type", "")),
            status=status, progress=progress,
            eta_seconds=self._eta(doc, status, progress, samples, now),
            priority=int(doc.get("priority", 50) or 50),
            status_reason=str(doc.get("status_reason") or doc.get("reason") or ""),
            user=str(doc.get("user_name") or ""),
            created=parse_time(_first(doc, _CREATED_KEYS)),
            actions=allowed_actions(status, doc.get("task_counts")), doc=doc)

    def _eta(self, doc: dict, status: str, progress: float, samples: list[tuple[float, float]],
             now: float) -> float | None:
        if status != J.ACTIVE or progress <= 0.0 or progress >= 100.0:
            return None
        started = parse_time(_first(doc, _START_KEYS))
        if started is not None and now > started:
            elapsed = now - started
            return elapsed * (100.0 - progress) / progress
        if len(samples) >= 2:
            (t0, p0), (t1, p1) = samples[0], samples[-1]
            if p1 > p0 and t1 > t0:
                rate = (p1 - p0) / (t1 - t0)
                return (100.0 - progress) / rate
        return None

    def row(self, job_id: str) -> JobRow | None:
        return next((r for r in self.rows if r.id == job_id), None)

    def set_status_locally(self, job_id: str, status: str) -> None:
        """Show a requested change at once when the Server's answer has no job in it."""
        row = self.row(job_id)
        if row is not None:
            row.status = status
            row.actions = allowed_actions(status, row.doc.get("task_counts"))

    def replace(self, doc: dict) -> None:
        """The job as the Server answered an action on it: its row (status, buttons) follows at once."""
        if not isinstance(doc, dict) or "id" not in doc:
            return
        for i, row in enumerate(self.rows):
            if row.id == str(doc["id"]):
                self.rows[i] = self._row(doc, self.clock())


def job_page_url(server_url: str, job_id: str, doc: dict | None = None) -> str:
    """The job's web page: the one the Server names in the job, or '<server>/jobs/<id>'."""
    base = server_url.rstrip("/")
    for key in ("web_url", "page_url", "url"):
        value = (doc or {}).get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
        if isinstance(value, str) and value.startswith("/") and not value.startswith("/api/"):
            return base + value
    return f"{base}/jobs/{job_id}"
