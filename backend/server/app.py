"""make_app(config, db): the Server's Bottle app, with nothing at module level."""

from __future__ import annotations

import logging

import bottle
import peewee

from backend import proxy
from backend.web import JsonApiPlugin, install_json_errors
from shared.serving import STOP_HOOK

from . import metrics, models
from .changes import ChangeFeed
from .compilers import Registry
from .config import ServerConfig
from .context import ServerContext
from .database import Clock
from .news import ManagerNews
from .openapi import make_routes
from .routes import install_all
from .schemas import SCHEMAS
from .signin_limits import SignInLimiter
from .state_machine import StateMachine
from .storage import FileStore
from .task_storing import TaskStorer

log = logging.getLogger(__name__)

CONTEXT_KEY = "flamenco.server"


def make_context(config: ServerConfig, db: peewee.Database, clock: Clock | None = None,
                 registry: Registry | None = None) -> ServerContext:
    """Everything the routes share; binds the models to `db` and creates missing tables."""
    models.bind(db)
    clock = (clock or Clock()).attach(db)
    if registry is None:
        registry = Registry.builtin()
        for directory in config.job_types_dirs:
            registry.load_directory(directory)
    feed, news = ChangeFeed(), ManagerNews(clock, config.held_requests)
    ctx = ServerContext(config=config, db=db, clock=clock, machine=StateMachine(clock, feed, news),
                        registry=registry, store=FileStore(config.files_dir), news=news,
                        signins=SignInLimiter(config.login_failures_per_user, config.login_failures_per_address,
                                              config.login_window_seconds), feed=feed)
    ctx.storer = TaskStorer(ctx)
    return ctx


def make_app(config: ServerConfig, db: peewee.Database, clock: Clock | None = None,
             registry: Registry | None = None) -> bottle.Bottle:
    ctx = make_context(config, db, clock, registry)
    app = bottle.Bottle()
    proxy.install(app, config.trusted_proxies)
    app.install(JsonApiPlugin(db))
    install_json_errors(app)
    routes = make_routes(app, SCHEMAS, config.metrics_token)
    install_all(routes, ctx)
    app.config["flamenco.metrics"] = metrics.install(app, routes, ctx)
    app.config[CONTEXT_KEY] = ctx
    app.config[STOP_HOOK] = ctx.close_held  # held requests (event streams, Managers' depsgraph) end
    app.config["flamenco.routes"] = routes
    return app


def context_of(app: bottle.Bottle) -> ServerContext:
    return app.config[CONTEXT_KEY]
