"""The Manager's Prometheus metrics (docs/metrics.md): its registry, built by make_app.

Read at scrape time (`ManagerCollector`, through the persistence layer and the services' own
counters): tasks and workers by status, the upstream queue (length, age of its oldest item) and
the link's health, long-polls waiting, the dispatch thread's work, the file store and the disk.
Counted as it happens: HTTP requests, and the dispatch latency, the seconds until a POST /task
is answered with a task (a long-poll's wait included: an idle worker waits for work there).
"""

from __future__ import annotations

import time

import bottle
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from backend import metrics
from backend.routes import Routes
from shared.statuses import TaskStatus, WorkerStatus
from shared.version import __version__

from .persistence import LOG_UPLOAD, OUTPUTS, TASK_UPDATE

PREFIX = "flamenco_manager"
QUEUE_KINDS = (TASK_UPDATE, LOG_UPLOAD, OUTPUTS)
STORAGE_MAX_AGE = 60.0
"""Seconds a walk of the data directory (spool, task logs) is reused for scrapes."""


def install(app: bottle.Bottle, routes: Routes, core) -> CollectorRegistry:
    """The app's registry with the Manager's collector, GET /metrics, its requests counted, dispatch timed."""
    registry = metrics.new_registry()
    registry.register(ManagerCollector(core))
    dispatch = Histogram(f"{PREFIX}_dispatch_seconds", "Seconds from a POST /task to its answer with a task "
                                                       "(a long-poll's wait included)",
                         buckets=metrics.LATENCY_BUCKETS, registry=registry)
    http = metrics.HttpMetrics(registry, PREFIX, routes)

    def observe(route, code: int, seconds: float) -> None:
        if code == 200 and route is not None and route.rule == "/task" and route.method == "POST":
            dispatch.observe(seconds)

    http.observers.append(observe)
    http.install(app)
    metrics.install_route(routes, registry)
    return registry


def _gauge(name: str, doc: str, value=None, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value, labels=labels)


def _counter(name: str, doc: str, value=None, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value, labels=labels)


def _by_status(name: str, doc: str, counts: dict[str, int], statuses) -> GaugeMetricFamily:
    g = _gauge(name, doc, labels=["status"])
    for status, n in sorted({**{s.value: 0 for s in statuses}, **counts}.items()):
        g.add_metric([status], n)
    return g


class ManagerCollector:
    def __init__(self, core):
        self.core = core

    def describe(self):
        return []  # collected at scrape time only

    def collect(self):
        core, db = self.core, self.core.db
        yield _by_status("tasks", "Tasks the Manager holds, by status", db.tasks.count_by_status(), TaskStatus)
        yield _by_status("workers", "Workers by status", db.workers.count_by_status(), WorkerStatus)
        yield from self._upstream()
        yield _gauge("long_polls_waiting", "POST /task requests waiting for work", core.wakeup.waiting)
        yield _gauge("long_polls_limit", "Long-polls that may wait at once", core.dispatch.long_polls_limit)
        thread = db.db_thread
        yield _counter("dispatch_db_requests", "Requests the dispatch path's database thread ran", thread.jobs)
        yield _counter("dispatch_db_transactions", "Transactions (batches of requests) it committed", thread.batches)
        yield _counter("dispatch_db_busy_seconds", "Seconds it spent on batches (near the clock's: dispatch is "
                                                   "limited by it)", thread.busy_seconds)
        yield from self._files()
        info = _gauge("info", "This Manager's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info

    def _upstream(self):
        core = self.core
        summary = core.db.upstream.summary()
        total = sum(summary["by_kind"].values())
        yield _gauge("upstream_queue_length", "Items waiting to go to the Server", total)
        kinds = _gauge("upstream_queue_items", "Items waiting to go to the Server, by kind", labels=["kind"])
        for kind, n in sorted({**dict.fromkeys(QUEUE_KINDS, 0), **summary["by_kind"]}.items()):
            kinds.add_metric([kind], n)
        yield kinds
        oldest = summary["oldest"]
        yield _gauge("upstream_queue_oldest_age_seconds", "Seconds the oldest waiting item has waited (0: none)",
                     max(0.0, time.time() - oldest) if oldest else 0)
        up = core.upstream
        yield _gauge("upstream_linked", "1 when the Manager is linked to a Server", 1 if up else 0)
        if up is not None:
            health = up.health
            yield _gauge("upstream_healthy", "1 when the last request to the Server succeeded",
                         1 if health.failures == 0 and health.last_ok is not None else 0)
            yield _gauge("upstream_consecutive_failures", "Requests to the Server that failed in a row",
                         health.failures)
            if health.last_ok is not None:
                yield _gauge("upstream_last_success_timestamp_seconds", "When a request to the Server last "
                                                                         "succeeded (Unix time)", health.last_ok)

    def _files(self):
        store = self.core.files.store
        stats = store.stats
        yield _gauge("file_store_bytes", "Bytes in the file store (upload mode: job files and outputs)",
                     store.records.blob_bytes())
        yield _gauge("file_store_max_bytes", "files.store_max_bytes (0: no limit)", store.max_bytes)
        yield _counter("uploads", "Files workers sent that were stored", stats.uploads)
        moved = _counter("file_transfer_bytes", "Bytes moved through the Manager since it started, by hop",
                         labels=["hop"])
        for hop, n in (("from_workers", stats.from_workers), ("to_workers", stats.to_workers),
                       ("to_server", stats.to_server), ("from_server", stats.from_server)):
            moved.add_metric([hop], n)
        yield moved
        yield _counter("file_store_evicted_bytes", "Bytes evicted from the file store", stats.evicted_bytes)
        usage = self.core.storage.report(STORAGE_MAX_AGE)
        disk = _gauge("data_bytes", f"Bytes in the data directory by area (walked at most every "
                                    f"{STORAGE_MAX_AGE:g} s)", labels=["area"])
        for area in ("spool", "file_cache", "task_logs"):
            disk.add_metric([area], usage[area]["bytes"])
        yield disk
        if usage["disk"]:
            yield _gauge("disk_free_bytes", "Free bytes on the data directory's file system",
                         usage["disk"]["free_bytes"])
