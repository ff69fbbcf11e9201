"""What the routes of one Server share: built once by make_app, passed to each route module."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import peewee

from .activity import Activity
from .changes import ChangeFeed
from .compilers import Registry
from .config import ServerConfig
from .database import Clock, write
from .news import ManagerNews
from .signin_limits import SignInLimiter
from .state_machine import StateMachine
from .storage import FileStore

if TYPE_CHECKING:
    from .task_storing import TaskStorer


@dataclass
class ServerContext:
    config: ServerConfig
    db: peewee.Database
    clock: Clock
    machine: StateMachine
    registry: Registry
    store: FileStore
    news: ManagerNews
    signins: SignInLimiter
    feed: ChangeFeed = field(default_factory=ChangeFeed)
    activity: Activity = field(default_factory=Activity)
    storer: "TaskStorer" = None  # type: ignore[assignment]  # set by make_context: it needs the context

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction (database.write); what it noted in the feed is published once it committed."""
        with self.feed.collecting(), write(self.db):
            yield

    def close_held(self) -> None:
        """The service stops: requests held open (event streams, Managers' depsgraph) answer now."""
        self.feed.close()
        self.news.close()
