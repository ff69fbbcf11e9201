"""The Server's Prometheus metrics (docs/metrics.md): its registry, built by make_app.

The farm's state is read from the database at scrape time (`ServerCollector`): jobs and tasks by
status (tasks from the counts each job carries, so no task is counted), each Manager's link and
upstream queue as it last reported it, workers by Manager and status, stored and archived bytes,
free disk. Each process counts its own HTTP requests and uploads (`activity.Activity`).
"""

from __future__ import annotations

import os
import shutil

import bottle
import peewee
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from backend import metrics
from backend.routes import Routes
from shared.statuses import JobStatus, TaskStatus, WorkerStatus
from shared.version import __version__

from .context import ServerContext
from .models import Blob, Job, JobArchive, Manager, WorkerRecord

PREFIX = "flamenco_server"


def install(app: bottle.Bottle, routes: Routes, ctx: ServerContext) -> CollectorRegistry:
    """The app's registry with the Server's collector, GET /metrics, and its requests counted."""
    registry = metrics.new_registry()
    registry.register(ServerCollector(ctx))
    metrics.HttpMetrics(registry, PREFIX, routes).install(app)
    metrics.install_route(routes, registry)
    return registry


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)


class ServerCollector:
    def __init__(self, ctx: ServerContext):
        self.ctx = ctx

    def describe(self):
        return []  # collected at scrape time only; nothing reads the database at registration

    def collect(self):
        yield from self._jobs_and_tasks()
        yield from self._managers()
        yield from self._storage()
        yield from self._activity()

    def _jobs_and_tasks(self):
        jobs = dict.fromkeys((s.value for s in JobStatus), 0)
        tasks = dict.fromkeys((s.value for s in TaskStatus), 0)
        for status, counts in Job.select(Job.status, Job.task_counts).tuples():
            jobs[status] = jobs.get(status, 0) + 1
            for task_status, n in (counts or {}).items():
                tasks[task_status] = tasks.get(task_status, 0) + n
        jobs[JobStatus.ARCHIVED.value] = JobArchive.select().count()
        g = _gauge("jobs", "Jobs by status (archived: the records kept of archived jobs)", ["status"])
        for status, n in sorted(jobs.items()):
            g.add_metric([status], n)
        yield g
        g = _gauge("tasks", "Tasks of the jobs on the Server, by status", ["status"])
        for status, n in sorted(tasks.items()):
            g.add_metric([status], n)
        yield g

    def _managers(self):
        now = self.ctx.clock.now()
        online = self.ctx.config.manager_online_seconds
        up = _gauge("manager_up", f"1 when the Manager was heard from within {online:g} s "
                                  "(manager_online_seconds)", ["manager"])
        seen = _gauge("manager_last_seen_age_seconds", "Seconds since the Manager was last heard from", ["manager"])
        queue = _gauge("manager_queue_length", "Items in the Manager's upstream queue, as its last update batch said",
                       ["manager"])
        for name, last_seen, length in Manager.select(Manager.name, Manager.last_seen,
                                                      Manager.queue_length).tuples():
            age = (now - last_seen).total_seconds() if last_seen else None
            up.add_metric([name], 1 if age is not None and age <= online else 0)
            if age is not None:
                seen.add_metric([name], max(0.0, age))
            if length is not None:
                queue.add_metric([name], length)
        yield from (up, seen, queue)
        workers = _gauge("workers", "Workers by Manager and status, as each Manager last reported them",
                         ["manager", "status"])
        counts: dict[tuple[str, str], int] = {}
        for (name,) in Manager.select(Manager.name).tuples():
            counts.update({(name, s.value): 0 for s in WorkerStatus})
        query = (WorkerRecord.select(Manager.name, WorkerRecord.status, peewee.fn.COUNT(WorkerRecord.id))
                 .join(Manager, on=(WorkerRecord.manager == Manager.id))
                 .group_by(Manager.name, WorkerRecord.status))
        for name, status, n in query.tuples():
            counts[(name, status)] = n
        for (name, status), n in sorted(counts.items()):
            workers.add_metric([name, status], n)
        yield workers

    def _storage(self):
        store = self.ctx.store
        files, size = Blob.select(peewee.fn.COUNT(Blob.sha256), peewee.fn.COALESCE(peewee.fn.SUM(Blob.size), 0)
                                  ).tuples().get()
        g = _gauge("store_files", "Files (job files and outputs, each stored once by checksum) on the Server")
        g.add_metric([], files)
        yield g
        g = _gauge("store_bytes", "Bytes of the stored job files and outputs")
        g.add_metric([], int(size))
        yield g
        archived = JobArchive.select(peewee.fn.COALESCE(peewee.fn.SUM(JobArchive.size), 0)).scalar()
        g = _gauge("archive_bytes", "Bytes of the archived jobs' records")
        g.add_metric([], int(archived or 0))
        yield g
        g = _gauge("upload_spool_bytes", "Bytes of uploads in progress (files/tmp)")
        g.add_metric([], _dir_bytes(store.tmp))
        yield g
        g = _gauge("disk_free_bytes", "Free bytes on the file system of the Server's files")
        g.add_metric([], shutil.disk_usage(store.root).free)
        yield g

    def _activity(self):
        act = self.ctx.activity
        uploads = CounterMetricFamily(f"{PREFIX}_uploads", "Uploads stored by this process (files: artists' job "
                                                           "files, outputs: Managers' outputs)", labels=["kind"])
        size = CounterMetricFamily(f"{PREFIX}_upload_bytes", "Bytes of the uploads stored by this process",
                                   labels=["kind"])
        for kind in act.UPLOAD_KINDS:
            uploads.add_metric([kind], act.uploads[kind])
            size.add_metric([kind], act.upload_bytes[kind])
        yield from (uploads, size)
        archived = CounterMetricFamily(f"{PREFIX}_retention_archived_jobs", "Jobs this process archived because "
                                                                            "of archive_after_days")
        archived.add_metric([], act.archived_by_retention)
        yield archived
        failures = CounterMetricFamily(f"{PREFIX}_housekeeping_failures", "Housekeeping passes that failed")
        failures.add_metric([], act.housekeeping_failures)
        yield failures
        if act.housekeeping_ok is not None:
            g = _gauge("housekeeping_last_success_timestamp_seconds", "When this process's last housekeeping pass "
                                                                      "(retention, clean-up) finished (Unix time)")
            g.add_metric([], act.housekeeping_ok)
            yield g
        g = _gauge("info", "This Server's version", ["version"])
        g.add_metric([__version__], 1)
        yield g


def _dir_bytes(path) -> int:
    total = 0
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    except OSError:
        return 0
    return total
