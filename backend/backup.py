"""Backing up and restoring a service's SQLite database while it runs.

SQLite's online backup API copies a consistent snapshot page by page under a
read transaction, so the service keeps serving (WAL: readers and the one writer
do not block each other). The copy is written beside the target and renamed
into place, so a backup cut short never looks like a finished one. PostgreSQL
has its own tool for this (`pg_dump`, see docs/operations-server.md).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)


class BackupError(ValueError):
    """A backup or restore that cannot be done; the message says why."""


def _check(conn: sqlite3.Connection, path: Path, required_table: str) -> None:
    (result,) = conn.execute("PRAGMA integrity_check").fetchone()
    if result != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check: {result}")
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (required_table,)).fetchone() is None:
        raise BackupError(f"{path} has no '{required_table}' table: not this service's database")


def _copy(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()


def backup_sqlite(source: str | os.PathLike, target: str | os.PathLike, required_table: str) -> int:
    """Copy the live database at `source` to the file `target`; its size in bytes."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if target.resolve() == source.resolve():
        raise BackupError("the backup would overwrite the database itself")
    if target.parent and not target.parent.is_dir():
        raise BackupError(f"the directory {target.parent} does not exist")
    _copy(source, target)
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as conn:
        _check(conn, target, required_table)
    size = target.stat().st_size
    log.info("backed up %s to %s (%d bytes)", source, target, size)
    return size


def restore_sqlite(backup: str | os.PathLike, target: str | os.PathLike, required_table: str,
                   force: bool = False) -> None:
    """Put a backup in place as the database at `target`; the service must be stopped."""
    backup, target = Path(backup), Path(target)
    if not backup.is_file():
        raise BackupError(f"there is no backup at {backup}")
    with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as conn:
        _check(conn, backup, required_table)
    if target.exists() and not force:
        raise BackupError(f"{target} exists; stop the service and give --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    _copy(backup, target)
    log.info("restored %s from %s", target, backup)
