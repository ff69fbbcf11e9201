"""Opening the Peewee database of a service: SQLite (WAL) or PostgreSQL by URL."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import peewee
from playhouse.db_url import connect

from shared.json_text import dumps

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10000,
    "synchronous": "normal",
    "cache_size": -64 * 1024,
    # A commit that takes the WAL past this many pages copies them into the database file
    # itself, the committer waiting. Services run a WalCheckpointer that does that in the
    # background instead, every second; this is the net for processes without one (CLI
    # commands) and for one transaction bigger than it (SQLite's default, 1,000 pages, made
    # storing a 100,000-task job wait 0.15 s for the copy).
    "wal_autocheckpoint": 32768,
    "journal_size_limit": 64 * 1024 * 1024,
}


def database_url(data_dir: str | os.PathLike | None, database: str | None, filename: str) -> str:
    """The database URL from `--database`, or a SQLite file in `--data-dir`."""
    if database:
        return database
    if data_dir is None:
        raise ValueError("give --data-dir or --database")
    path = Path(data_dir).absolute()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / filename}"


def open_database(url: str) -> peewee.Database:
    """A Peewee database for the URL, not yet connected. Thread-safe connections."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]  # sqlite:///relative.db, sqlite:////absolute.db
        return peewee.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, check_same_thread=False,
                                     timeout=10)
    if url.startswith(("postgres://", "postgresql://")):
        return connect(url)
    raise ValueError(f"unsupported database URL '{url}' (sqlite:///PATH or postgresql://...)")


def is_sqlite(db: peewee.Database) -> bool:
    return isinstance(db, peewee.SqliteDatabase)


def write_transaction(db: peewee.Database):
    """A transaction for a write that must not interleave: BEGIN IMMEDIATE on SQLite."""
    if is_sqlite(db):
        return db.atomic("IMMEDIATE")
    return db.atomic()


class JSONField(peewee.TextField):
    """JSON text (compact); None stays NULL. NaN and Infinity are stored as null: the text stays JSON."""

    def db_value(self, value):
        return None if value is None else dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return None if value is None else json.loads(value)


class WalCheckpointer:
    """Copies a SQLite database's write-ahead log into the database file in the background.

    Without it the commit that crosses `wal_autocheckpoint` does the copy while its request
    waits. A PASSIVE checkpoint never blocks readers or writers; one with nothing new to copy
    costs microseconds. Nothing to do for PostgreSQL.
    """

    def __init__(self, db: peewee.Database, interval: float = 1.0):
        self.db = db
        self.interval = interval

    def run(self, stop: threading.Event) -> None:
        if not is_sqlite(self.db):
            return
        with self.db.connection_context():  # this thread's own connection, kept
            while not stop.wait(self.interval):
                try:
                    self.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
                except peewee.DatabaseError as ex:
                    log.warning("WAL checkpoint failed: %s", ex)
