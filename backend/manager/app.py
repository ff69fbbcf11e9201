"""The Manager's composition: services wired together, and `make_app`.

`ManagerCore` holds the services (no module-level state); `make_app` builds
the Bottle app on top of one. Background loops are started by `start_loops`,
which the CLI calls and tests may leave out, driving `tick(now)` themselves.
"""

from __future__ import annotations

import logging
import threading

import bottle
import peewee

from backend.web import JsonApiPlugin, install_json_errors

from .config import ManagerConfig
from .db_thread import DbThread
from .job_files import JobFiles
from .latest_image import LatestImage
from .models import Store
from .scheduler import Scheduler
from .sleep_scheduler import SleepScheduler
from .task_logs import TaskLogs
from .task_state import TaskStateMachine
from .task_updates import TaskUpdates
from .timeouts import TimeoutChecker
from .upstream import ServerClient, Upstream
from .wakeup import Wakeup
from .workers import Workers

log = logging.getLogger(__name__)


class ManagerCore:
    def __init__(self, config: ManagerConfig, db: peewee.Database, client: ServerClient | None = None,
                 started_at: float | None = None):
        config.validate()
        self.config = config
        self.store = Store(db)
        self.store.create_tables()
        self.wakeup = Wakeup()
        self.logs = TaskLogs(config.task_log_dir, config.logs.rotations_kept)
        self.db_thread = DbThread(self.store)
        self.state = TaskStateMachine(self.store, config, self.logs, self.wakeup)
        self.scheduler = Scheduler(self.store, config, self.state, self.logs)
        self.updates = TaskUpdates(self.store, config, self.state, self.logs)
        self.workers = Workers(self.store, config, self.state, self.wakeup)
        self.timeouts = TimeoutChecker(self.store, config, self.workers, self.updates, started_at)
        self.sleep_scheduler = SleepScheduler(self.store, self.workers)
        self.latest_image = LatestImage(config)
        up = config.upstream
        if client is None and up.linked:
            client = ServerClient(up.server_url, up.manager_id, up.token, up.request_timeout)
        self.client = client
        self.upstream = (Upstream(self.store, config, client, self.state, self.updates, self.workers,
                                  self.logs, self.wakeup) if client else None)
        self.files = JobFiles(self.store, config, client)
        self.long_polls = threading.BoundedSemaphore(max(1, config.max_long_polls))
        self.long_polls_limit = config.max_long_polls
        self.long_polls_active = 0
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self._observer = None

    def start_loops(self) -> None:
        """Start the background loops (timeouts, sleep schedules, upstream, latest image)."""
        stop = self.stop_event
        specs = [("timeout-checker", self.timeouts.run), ("sleep-scheduler", self.sleep_scheduler.run),
                 ("latest-image", self.latest_image.run)]
        for name, target in specs:
            self._threads.append(threading.Thread(target=target, args=(stop,), name=name, daemon=True))
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
        if self.upstream:
            self.upstream.kick()
            self.upstream.push_soon()
        if self._observer is not None:
            self._observer.stop()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        self.db_thread.stop(timeout)
        self.logs.close_all()


def make_app(config: ManagerConfig, db: peewee.Database, core: ManagerCore | None = None) -> bottle.Bottle:
    """The Manager's WSGI app. `app.config['flamenco.core']` is the ManagerCore behind it."""
    from . import admin_api, openapi, worker_api

    core = core or ManagerCore(config, db)
    app = bottle.Bottle()
    app.config["flamenco.core"] = core
    install_json_errors(app)
    app.install(JsonApiPlugin(None))
    worker_api.install(app, core)
    admin_api.install(app, core)
    openapi.install(app, core)
    return app


def core_of(app: bottle.Bottle) -> ManagerCore:
    return app.config["flamenco.core"]
