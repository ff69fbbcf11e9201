"""What the routes of one Server share: built once by make_app, passed to each route module."""

from __future__ import annotations

from dataclasses import dataclass

import peewee

from .compilers import Registry
from .config import ServerConfig
from .database import Clock
from .signin_limits import SignInLimiter
from .state_machine import StateMachine
from .storage import FileStore


@dataclass
class ServerContext:
    config: ServerConfig
    db: peewee.Database
    clock: Clock
    machine: StateMachine
    registry: Registry
    store: FileStore
    signins: SignInLimiter
