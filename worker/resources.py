"""What this machine has to offer, and whether it can take a task right now.

The snapshot goes to the Manager at sign-on and with task updates (our
extension `resources`); the checks run before each task.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

MB = 1024 * 1024


def snapshot(disk_path: str | os.PathLike = ".") -> dict:
    """{cpu_count, mem_total_mb, mem_free_mb, load_avg, disk_free_mb} of this machine."""
    mem = psutil.virtual_memory()
    try:
        load = psutil.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    try:
        disk_free = shutil.disk_usage(existing_parent(Path(disk_path))).free
    except OSError:
        disk_free = 0
    return {
        "cpu_count": psutil.cpu_count() or 1,
        "mem_total_mb": mem.total // MB,
        "mem_free_mb": mem.available // MB,
        "load_avg": round(load, 2),
        "disk_free_mb": disk_free // MB,
    }


def existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def memory_shortfall(job_memory_mb: int | None) -> str | None:
    """Why a task declaring `job_memory_mb` cannot run here now, or None if it can."""
    if not job_memory_mb or job_memory_mb <= 0:
        return None
    free_mb = psutil.virtual_memory().available // MB
    if job_memory_mb > free_mb:
        return f"the job needs {job_memory_mb} MB of memory and this worker has {free_mb} MB free"
    return None


def pre_task_problems(read_paths: list[str], write_paths: list[str]) -> list[str]:
    """What is wrong with the configured paths; empty when all is well.

    A read path must exist and be readable (a directory must be listable); a
    write path must be a directory in which a file can be created and removed.
    """
    problems = []
    for raw in read_paths:
        path = Path(os.path.expanduser(raw))
        try:
            if path.is_dir():
                next(iter(os.scandir(path)), None)
            else:
                with open(path, "rb") as fh:
                    fh.read(1)
        except OSError as ex:
            problems.append(f"pre_task_check.read: cannot read '{raw}': {ex.strerror or ex}")
    for raw in write_paths:
        path = Path(os.path.expanduser(raw))
        if not path.is_dir():
            problems.append(f"pre_task_check.write: '{raw}' is not a directory")
            continue
        probe = path / f".flamenco-worker-check-{uuid.uuid4().hex}"
        try:
            with open(probe, "xb") as fh:
                fh.write(b"ok")
            probe.unlink()
        except OSError as ex:
            problems.append(f"pre_task_check.write: cannot write in '{raw}': {ex.strerror or ex}")
    return problems


def process_tree_rss(proc: psutil.Process) -> int:
    """Resident memory in bytes of a process and all its descendants (0 once gone)."""
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


