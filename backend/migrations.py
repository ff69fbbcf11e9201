"""Versioned schema migrations: numbered steps, applied once each, recorded in `schema_migrations`.

A service lists its steps (`Step(1, "first release", fn)`, `Step(2, ...)`, ...)
and calls `migrate(db, steps, ...)` when it opens its database. A fresh
database runs every step from 1, so the path an upgrade takes is the path every
test database takes too. Each step runs in its own transaction together with
the row that records it (PostgreSQL and SQLite both roll DDL back), under a
lock (SQLite's `BEGIN IMMEDIATE`, a transaction-scoped advisory lock on
PostgreSQL), and the applied versions are read again inside it: two processes
that start at once on one database apply each step once.

A database whose schema is newer than the code (a downgrade, or an old process
left running after an upgrade) is refused with a message, never written to.

Databases made before a service had versioned migrations have tables but no
`schema_migrations`: the service's `adopt` hook tells which version they are
at, and those steps are recorded as applied without running. Steps that follow
an adopted version must then tolerate what older code may already have added
(use `has_column` / `has_table`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import peewee

from .db import is_sqlite, write_transaction

log = logging.getLogger(__name__)

TABLE = "schema_migrations"


class MigrationError(RuntimeError):
    """The database cannot be brought to this code's schema; the message says why and what to do."""


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    apply: Callable[["Schema"], None]


class Schema:
    """What a step may look at and change; every call runs in the step's transaction."""

    def __init__(self, db: peewee.Database):
        self.db = db
        self.sqlite = is_sqlite(db)

    @property
    def migrator(self):
        from playhouse.migrate import PostgresqlMigrator, SqliteMigrator
        return SqliteMigrator(self.db) if self.sqlite else PostgresqlMigrator(self.db)

    def execute(self, sql: str, params: Sequence = ()):
        return self.db.execute_sql(sql, tuple(params))

    def has_table(self, table: str) -> bool:
        if self.sqlite:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = ("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                   "AND table_name = %s")
        return self.execute(sql, (table,)).fetchone() is not None

    def columns(self, table: str) -> set[str]:
        if self.sqlite:
            return {row[1] for row in self.execute(f'PRAGMA table_info("{table}")').fetchall()}
        cursor = self.execute("SELECT column_name FROM information_schema.columns "
                              "WHERE table_schema = current_schema() AND table_name = %s", (table,))
        return {name for (name,) in cursor.fetchall()}

    def has_column(self, table: str, column: str) -> bool:
        return column in self.columns(table)

    def add_column(self, table: str, column: str, field: peewee.Field) -> None:
        """Add a column unless it is there already (older code may have added it)."""
        if not self.has_column(table, column):
            from playhouse.migrate import migrate
            migrate(self.migrator.add_column(table, column, field))

    def drop_column(self, table: str, column: str) -> None:
        """Drop a column unless it is gone already (SQLite 3.35+ drops it in place)."""
        if self.has_column(table, column):
            from playhouse.migrate import migrate
            migrate(self.migrator.drop_column(table, column))

    def create_tables(self, models: Sequence[type[peewee.Model]]) -> None:
        """Create these (frozen) models' tables and indexes unless they exist."""
        with self.db.bind_ctx(models, bind_refs=False, bind_backrefs=False):
            self.db.create_tables(models, safe=True)


def _lock_key(table: str) -> int:
    return zlib.crc32(f"flamenco-migrations:{table}".encode()) & 0x7FFFFFFF


def _ensure_table(schema: Schema) -> None:
    schema.execute(f'CREATE TABLE IF NOT EXISTS "{TABLE}" (version INTEGER PRIMARY KEY, '
                   f'name VARCHAR(200) NOT NULL, applied TIMESTAMP NOT NULL)')


def _applied(schema: Schema) -> dict[int, str]:
    if not schema.has_table(TABLE):
        return {}
    return dict(schema.execute(f'SELECT version, name FROM "{TABLE}"').fetchall())


def _record(schema: Schema, step: Step, note: str = "") -> None:
    mark = "?" if schema.sqlite else "%s"
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    schema.execute(f'INSERT INTO "{TABLE}" (version, name, applied) VALUES ({mark}, {mark}, {mark})',
                   (step.version, (step.name + note)[:200], now if not schema.sqlite else now.isoformat(" ")))


@contextlib.contextmanager
def _locked(db: peewee.Database):
    """A transaction that no other migrating process runs beside."""
    with write_transaction(db):
        if not is_sqlite(db):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_lock_key(TABLE),))
        yield Schema(db)


def _check_steps(steps: Sequence[Step]) -> None:
    versions = [s.version for s in steps]
    if versions != list(range(1, len(steps) + 1)):
        raise ValueError(f"migration steps must be numbered 1, 2, 3, ... in order; got {versions}")


@dataclass
class Status:
    current: int
    """The highest version applied (0: an empty database)."""
    latest: int
    """The highest version this code knows."""
    pending: list[Step]
    unknown: list[int]
    """Versions the database has that this code does not know (a newer release applied them)."""


def status(db: peewee.Database, steps: Sequence[Step]) -> Status:
    _check_steps(steps)
    with db.connection_context():
        applied = _applied(Schema(db))
    known = {s.version for s in steps}
    return Status(current=max(applied, default=0), latest=len(steps),
                  pending=[s for s in steps if s.version not in applied],
                  unknown=sorted(v for v in applied if v not in known))


def migrate(db: peewee.Database, steps: Sequence[Step], service: str,
            adopt: Callable[[Schema], int] | None = None) -> list[Step]:
    """Apply the steps the database lacks, in order; the steps applied.

    `adopt(schema)` is asked, for a database with no migrations table, which
    version its existing tables are at (0 when it has none of them).
    """
    _check_steps(steps)
    done: list[Step] = []
    with db.connection_context():
        with _locked(db) as schema:
            if not schema.has_table(TABLE):
                adopted = adopt(schema) if adopt else 0
                _ensure_table(schema)
                for step in steps[:adopted]:
                    _record(schema, step, " (adopted)")
                if adopted:
                    log.info("%s: the database predates versioned migrations; its tables are those of "
                             "schema version %d", service, adopted)
            unknown = sorted(set(_applied(schema)) - {s.version for s in steps})
            if unknown:
                raise MigrationError(
                    f"the database has schema version {max(unknown)}, newer than this {service} knows "
                    f"({len(steps)}): a newer {service} upgraded it. Run that version, or restore the "
                    f"backup made before the upgrade.")
        for step in steps:
            with _locked(db) as schema:
                if step.version in _applied(schema):
                    continue
                log.info("%s: migrating the database to schema version %d (%s)", service, step.version,
                         step.name)
                step.apply(schema)
                _record(schema, step)
            done.append(step)
    return done
