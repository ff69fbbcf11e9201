"""The Manager's composition: services wired together, and `make_app`.

`ManagerCore` holds the services (no module-level state); `make_app` builds
the Bottle app on top of one. Background loops are started by `start_loops`,
which the CLI calls and tests may leave out, driving `tick(now)` themselves.

Layers: routes (worker_api, files_api, admin_api) -> services (dispatch, task_updates,
workers, scheduler, upstream, ...) -> the state machine -> persistence.
"""

from __future__ import annotations

import logging
import threading

import bottle
import peewee

from backend import proxy
from backend.db import WalCheckpointer
from backend.web import JsonApiPlugin, install_json_errors

from .admin_auth import AdminAuth
from .config import ManagerConfig
from .dispatch import Dispatch
from .job_files import JobFiles
from .latest_image import LatestImage
from .persistence import Persistence
from .retention import Retention
from .scheduler import Scheduler
from .sleep_scheduler import SleepScheduler
from .state_machine import TaskStateMachine
from .storage_usage import StorageUsage
from .task_logs import TaskLogs
from .task_updates import TaskUpdates
from .timeouts import TimeoutChecker
from .upstream import ServerClient, Upstream
from .wakeup import Wakeup
from .worker_actions import WorkerActions
from .workers import Workers

log = logging.getLogger(__name__)


def every(stop: threading.Event, interval: float, tick) -> None:
    """Call `tick()` every `interval` seconds until `stop`; a failing pass is logged and the loop goes on."""
    while not stop.wait(interval):
        try:
            tick()
        except Exception:  # noqa: BLE001 - a loop logs and goes on
            log.exception("%s failed", getattr(tick, "__qualname__", tick))


class ManagerCore:
    def __init__(self, config: ManagerConfig, db: peewee.SqliteDatabase, client: ServerClient | None = None,
                 started_at: float | None = None):
        config.validate()
        self.config = config
        self.db = Persistence(db)
        self.checkpointer = WalCheckpointer(db)
        self.admin_auth = AdminAuth(self.db, config)
        self.stop_event = threading.Event()
        self.wakeup = Wakeup()
        self.logs = TaskLogs(config.task_log_dir, config.logs.rotations_kept, background=True)
        self.state = TaskStateMachine(self.db, config, self.logs, self.wakeup)
        self.scheduler = Scheduler(self.db, config, self.state)
        self.updates = TaskUpdates(self.db, config, self.state, self.logs)
        self.workers = Workers(self.db, config, self.state, self.wakeup)
        self.dispatch = Dispatch(self.db, config, self.workers, self.scheduler, self.updates, self.wakeup,
                                 self.stop_event)
        self.timeouts = TimeoutChecker(self.db, config, self.workers, self.state, started_at)
        self.sleep_scheduler = SleepScheduler(self.db, self.workers)
        self.latest_image = LatestImage(config)
        self.storage = StorageUsage(config)
        self.retention = Retention(self.db, config, self.logs)
        up = config.upstream
        if client is None and up.linked:
            client = ServerClient(up.server_url, up.manager_id, up.token, up.request_timeout)
        self.client = client
        self.files = JobFiles(self.db, config, client)
        self.worker_actions = WorkerActions(self.workers, self.sleep_scheduler)
        self.upstream = (Upstream(self.db, config, client, self.state, self.updates, self.workers, self.logs,
                                  self.wakeup, self.worker_actions, self.files.store) if client else None)
        if self.upstream is not None:
            self.dispatch.idle = self.upstream.kick
            self.state.queued_for_server = self.upstream.push_soon
        self._threads: list[threading.Thread] = []
        self._observer = None

    def start_loops(self) -> None:
        """Start the background loops (timeouts, sleep schedules, upstream, latest image, file store, retention,
        WAL checkpoints)."""
        stop = self.stop_event
        cfg = self.config
        specs = [("timeout-checker", every, (cfg.timeouts.check_interval, self.timeouts.tick)),
                 ("sleep-scheduler", every, (self.sleep_scheduler.interval, self.sleep_scheduler.tick)),
                 ("retention", every, (cfg.retention.check_interval, self.retention.tick)),
                 ("latest-image", self.latest_image.run, ()),
                 ("file-store", self.files.store.run, (cfg.files.evict_interval,)),
                 ("wal-checkpoint", self.checkpointer.run, ())]
        for name, target, args in specs:
            self._threads.append(threading.Thread(target=target, args=(stop, *args), name=name, daemon=True))
        if self.upstream:
            self._threads.extend(self.upstream.threads(stop))
        for t in self._threads:
            t.start()
        if self.config.latest_image.watch_dir:
            self._observer = self.latest_image.start_watching(self.config.latest_image.watch_dir)

    def stop_loops(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.wakeup.notify_all()
        self.latest_image.changed.notify()
        self.files.store.over_limit.set()
        if self.upstream:
            self.upstream.quiesce()  # the fetcher may wait in a held request: not joined
            self.upstream.push_soon()
        if self._observer is not None:
            self._observer.stop()
        for t in self._threads:
            t.join(0.1 if t.name == "depsgraph-fetcher" else timeout)
        self._threads.clear()
        self.db.close(timeout)
        self.logs.close_all()


def make_app(config: ManagerConfig, db: peewee.SqliteDatabase, core: ManagerCore | None = None) -> bottle.Bottle:
    """The Manager's WSGI app. `app.config['flamenco.core']` is the ManagerCore behind it."""
    from . import admin_api, files_api, metrics, openapi, pages, worker_api

    core = core or ManagerCore(config, db)
    app = bottle.Bottle()
    app.config["flamenco.core"] = core
    proxy.install(app, config.trusted_proxies)
    install_json_errors(app)
    app.install(JsonApiPlugin(None))
    routes = openapi.make_routes(app, core)
    worker_api.install(routes, core)
    files_api.install(routes, core)
    admin_api.install(routes, core)
    pages.install(routes, core)
    app.config["flamenco.metrics"] = metrics.install(app, routes, core)
    app.config["flamenco.routes"] = routes
    return app
