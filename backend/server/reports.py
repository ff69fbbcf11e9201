"""Render time per project and user (or Manager, worker, job, task type) over a period, as CSV:
what an accountant of render time asks for.

Reads the task runs (one per time a task ran on a worker) of live jobs (`task_run`) and of
archived ones (`archived_run`, written when a job is archived) alike. A run counts for the part
of it inside [start, end): a run across the first of the month counts in both months, so
monthly reports add up to the year's. A run still going counts up to now. Times are UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from typing import IO, Iterable, Iterator

import peewee

from .models import ArchivedRun, Job, Manager, Project, Task, TaskRun, User, utcnow

GROUPS = ("project", "user", "manager", "worker", "job", "task_type")
FAILED = frozenset({"failed", "soft-failed"})
RUN_COLUMNS = ("project", "user", "manager", "worker", "job", "job_name", "task", "task_name", "task_type",
               "started", "finished", "status", "archived", "seconds")


@dataclass
class Run:
    project: str  # the project's name (as it is now, or as it was when the job was archived)
    user: str
    manager: str
    worker: str
    job: str
    job_name: str
    task: str
    task_name: str
    task_type: str
    started: dt.datetime
    finished: dt.datetime | None
    status: str
    archived: bool
    seconds: float = 0.0
    """The part of the run inside the report's period."""


def parse_time(text: str) -> dt.datetime:
    """'2026-01-01' (midnight UTC) or an ISO 8601 time ('2026-01-01T12:00:00+02:00'): naive UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not a date (2026-01-31) or an ISO 8601 time (2026-01-31T18:00:00Z)") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def runs(start: dt.datetime, end: dt.datetime, project: str | None = None, user: str | None = None,
         now: dt.datetime | None = None) -> Iterator[Run]:
    """The runs that overlap [start, end), live and archived, each with its seconds inside the period.

    `project` is a project's name or id, `user` a user's name."""
    if end <= start:
        raise ValueError("the period is empty: --to must be after --from")
    return _runs(start, end, project, user, now or utcnow())


def _runs(start, end, project, user, now) -> Iterator[Run]:
    names = dict(Project.select(Project.id, Project.name).tuples())
    for run in _live(start, end, project, user):
        _clip(run, start, end, now)
        yield run
    for run in _archived(start, end, project, user, names):
        _clip(run, start, end, now)
        yield run


def _clip(run: Run, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> None:
    stop = run.finished if run.finished is not None else (now if run.status == "active" else run.started)
    run.seconds = max(0.0, (min(stop, end) - max(run.started, start)).total_seconds())


def _live(start, end, project, user) -> Iterator[Run]:
    query = (TaskRun.select(Project.name, User.name, Manager.name, TaskRun.worker, Job.id, Job.name, TaskRun.task,
                            Task.name, Task.task_type, TaskRun.started, TaskRun.finished, TaskRun.status)
             .join(Job, on=(TaskRun.job == Job.id))
             .join(Project, on=(Job.project == Project.id))
             .switch(Job).join(User, peewee.JOIN.LEFT_OUTER, on=(Job.user == User.id))
             .switch(Job).join(Manager, peewee.JOIN.LEFT_OUTER, on=(Job.manager == Manager.id))
             .switch(TaskRun).join(Task, peewee.JOIN.LEFT_OUTER, on=(Task.id == TaskRun.task))
             .where(TaskRun.started < end, TaskRun.finished.is_null() | (TaskRun.finished > start)))
    if project:
        query = query.where((Project.name == project) | (Project.id == project))
    if user:
        query = query.where(User.name == user)
    for (pname, uname, mname, worker, job, job_name, task, task_name, task_type, started, finished,
         status) in query.tuples().iterator():
        yield Run(pname, uname or "", mname or "", worker or "", job, job_name, task, task_name or "",
                  task_type or "", started, finished, status, False)


def _archived(start, end, project, user, names: dict[str, str]) -> Iterator[Run]:
    A = ArchivedRun
    query = (A.select(A.project, A.project_name, A.user_name, A.manager_name, A.worker, A.job, A.job_name, A.task,
                      A.task_name, A.task_type, A.started, A.finished, A.status)
             .where(A.started < end, A.finished.is_null() | (A.finished > start)))
    if project:
        ids = [pid for pid, name in names.items() if name == project] + [project]
        query = query.where(A.project.in_(ids) | (A.project_name == project))
    if user:
        query = query.where(A.user_name == user)
    for (pid, pname, uname, mname, worker, job, job_name, task, task_name, task_type, started, finished,
         status) in query.tuples().iterator():
        yield Run(names.get(pid, pname), uname or "", mname or "", worker or "", job, job_name, task, task_name,
                  task_type, started, finished, status, True)


def check_groups(by: list[str]) -> None:
    unknown = [g for g in by if g not in GROUPS]
    if unknown or not by:
        raise ValueError(f"group by one or more of {', '.join(GROUPS)}, not '{','.join(unknown or by)}'")


def summary_columns(by: Iterable[str]) -> list[str]:
    return [*by, "jobs", "runs", "render_hours", "render_seconds", "completed_seconds", "failed_seconds"]


def summarise(items: Iterable[Run], by: list[str]) -> list[dict]:
    """Rows per group of `by` (GROUPS), sorted: jobs, runs, hours and seconds in the period."""
    check_groups(by)
    groups: dict[tuple, dict] = {}
    for run in items:
        key = tuple(getattr(run, g) for g in by)
        row = groups.get(key)
        if row is None:
            row = groups[key] = {"jobs": set(), "runs": 0, "seconds": 0.0, "completed": 0.0, "failed": 0.0}
        row["jobs"].add(run.job)
        row["runs"] += 1
        row["seconds"] += run.seconds
        if run.status == "completed":
            row["completed"] += run.seconds
        elif run.status in FAILED:
            row["failed"] += run.seconds
    return [{**dict(zip(by, key)), "jobs": len(row["jobs"]), "runs": row["runs"],
             "render_hours": round(row["seconds"] / 3600, 3), "render_seconds": round(row["seconds"], 3),
             "completed_seconds": round(row["completed"], 3), "failed_seconds": round(row["failed"], 3)}
            for key, row in sorted(groups.items())]


def run_rows(items: Iterable[Run]) -> Iterator[dict]:
    for run in items:
        yield {"project": run.project, "user": run.user, "manager": run.manager, "worker": run.worker,
               "job": run.job, "job_name": run.job_name, "task": run.task, "task_name": run.task_name,
               "task_type": run.task_type, "started": _iso(run.started), "finished": _iso(run.finished),
               "status": run.status, "archived": "yes" if run.archived else "no", "seconds": round(run.seconds, 3)}


def write_csv(out: IO[str], columns: list[str], rows: Iterable[dict]) -> int:
    """The rows as CSV with a header line; how many rows."""
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") + "Z" if value else ""
