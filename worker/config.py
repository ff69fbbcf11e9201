"""The Worker's configuration: a TOML file, overridden by command line options.

Every key is optional except the Manager URL (from the file, `--manager` or
FLAMENCO_MANAGER_URL). Paths that are not given live in the data directory,
one per worker: two workers must never share a data directory, as it holds
their credentials, their PID file and their queue of unsent updates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config import ConfigError, apply, convert, read_toml
from shared.protocol import DEFAULT_WORKER_TASK_TYPES
from shared.slots import MAX_SLOTS

__all__ = ["ConfigError", "DEFAULT_DATA_DIR", "WorkerConfig", "from_dict", "load"]

DEFAULT_DATA_DIR = "~/.local/share/flamenco-worker"

GPU_DEVICES = ("CUDA", "OPTIX", "HIP", "ONEAPI", "METAL")
"""What Blender's Cycles takes as --cycles-device."""


@dataclass
class WorkerConfig:
    manager_url: str = ""
    nickname: str = ""
    task_types: list[str] = field(default_factory=lambda: list(DEFAULT_WORKER_TASK_TYPES))
    tags: list[str] = field(default_factory=list)
    registration_secret: str = ""

    data_dir: str = DEFAULT_DATA_DIR
    credentials_file: str = ""
    queue_db: str = ""
    pid_file: str = ""
    cache_dir: str = ""
    jobs_dir: str = ""
    cache_max_bytes: int = 20 * 2**30
    """Upload mode: the file cache plus job trees are kept under this (0: no limit)."""

    slots: int = 1
    """Tasks at once (docs/worker.md, "Slots")."""
    light_slots: int = 0
    """More tasks at once, light ones only (file management, sleeps)."""
    cpu_threads: int = 0
    """CPU threads shared by the slots (Blender's -t per task); 0: this machine's."""
    gpus: list[int] = field(default_factory=list)
    """GPU indices to give one each to tasks that need a GPU; empty: book no GPUs."""
    gpu_device: str = ""
    """Cycles device type for GPU tasks (CUDA, OPTIX, HIP, ONEAPI, METAL); empty: the .blend's."""
    memory_mb: int = 0
    """Memory the running tasks' jobs may declare together (job_memory_mb); 0: no budget, free memory only."""

    pre_task_check_read: list[str] = field(default_factory=list)
    pre_task_check_write: list[str] = field(default_factory=list)

    long_poll_seconds: float = 30.0
    may_i_run_interval_seconds: float = 5.0
    push_act_interval_seconds: float = 3.0
    push_log_interval_seconds: float = 5.0
    push_log_max_entries: int = 200
    resources_interval_seconds: float = 30.0
    no_task_retry_seconds: float = 5.0
    connection_retry_seconds: float = 10.0
    asleep_poll_seconds: float = 30.0
    error_state_retry_seconds: float = 600.0
    register_retry_seconds: float = 30.0
    abort_grace_seconds: float = 5.0
    queue_retry_seconds: float = 5.0
    max_queued_before_fetch: int = 0
    missing_blendfile_wait_seconds: float = 5.0
    output_watch: bool = True
    http_timeout_seconds: float = 30.0

    # --- derived paths --------------------------------------------------------

    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir)).absolute()

    def _in_data(self, value: str, default_name: str) -> Path:
        if value:
            return Path(os.path.expanduser(value)).absolute()
        return self.data_path() / default_name

    @property
    def credentials_path(self) -> Path:
        return self._in_data(self.credentials_file, "credentials.json")

    @property
    def queue_path(self) -> Path:
        return self._in_data(self.queue_db, "upstream-queue.sqlite")

    @property
    def pid_path(self) -> Path:
        return self._in_data(self.pid_file, "subprocess.pid")

    @property
    def cache_path(self) -> Path:
        return self._in_data(self.cache_dir, "file-cache")

    @property
    def jobs_path(self) -> Path:
        return self._in_data(self.jobs_dir, "jobs")

    def validate(self) -> None:
        if not self.manager_url:
            raise ConfigError("manager_url is required (config file, --manager or FLAMENCO_MANAGER_URL)")
        if not self.manager_url.startswith(("http://", "https://")):
            raise ConfigError(f"manager_url '{self.manager_url}' must start with http:// or https://")
        if not self.task_types:
            raise ConfigError("task_types may not be empty")
        for name in ("long_poll_seconds", "may_i_run_interval_seconds", "push_act_interval_seconds",
                     "push_log_interval_seconds", "abort_grace_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} may not be negative")
        if self.cache_max_bytes < 0:
            raise ConfigError("cache_max_bytes may not be negative")
        if self.push_log_max_entries < 1:
            raise ConfigError("push_log_max_entries must be 1 or more")
        if not 1 <= self.slots or self.light_slots < 0 or self.slots + self.light_slots > MAX_SLOTS:
            raise ConfigError(f"slots must be 1 or more and light_slots 0 or more, {MAX_SLOTS} together at most")
        if self.cpu_threads < 0 or self.memory_mb < 0:
            raise ConfigError("cpu_threads and memory_mb may not be negative")
        if any(g < 0 for g in self.gpus) or len(set(self.gpus)) != len(self.gpus):
            raise ConfigError(f"gpus must be distinct GPU indices (0, 1, ...), not {self.gpus}")
        if self.gpu_device and self.gpu_device not in GPU_DEVICES:
            raise ConfigError(f"gpu_device must be one of {', '.join(GPU_DEVICES)}, not '{self.gpu_device}'")


_LISTS = ("task_types", "tags", "pre_task_check_read", "pre_task_check_write")


def from_dict(data: dict[str, Any], base: WorkerConfig | None = None) -> WorkerConfig:
    """A config from a parsed TOML document; unknown keys are an error (typos matter).

    [pre_task_check] read/write are the fields pre_task_check_read/_write; a string where a
    list is wanted is split at white space ("gpu cuda" is ["gpu", "cuda"]).
    """
    flat = dict(data)
    checks = flat.pop("pre_task_check", {})
    if not isinstance(checks, dict):
        raise ConfigError("'pre_task_check' must be a table with 'read' and 'write' lists")
    cfg = apply(base or WorkerConfig(), {k: _split(k, v) for k, v in flat.items()})
    for sub, paths in checks.items():
        if sub not in ("read", "write"):
            raise ConfigError(f"unknown setting 'pre_task_check.{sub}' (known: read, write)")
        name = f"pre_task_check_{sub}"
        setattr(cfg, name, convert(f"pre_task_check.{sub}", _split(name, paths), list[str]))
    return cfg


def _split(key: str, value: Any) -> Any:
    return value.split() if key in _LISTS and isinstance(value, str) else value


def load(path: str | os.PathLike | None, overrides: dict[str, Any] | None = None) -> WorkerConfig:
    """Read the TOML file (if any), then apply `overrides` (None values are skipped)."""
    cfg = WorkerConfig()
    if path:
        cfg = from_dict(read_toml(path), cfg)
    if not cfg.manager_url:
        cfg.manager_url = os.environ.get("FLAMENCO_MANAGER_URL", "")
    if overrides:
        cfg = from_dict({k: v for k, v in overrides.items() if v is not None}, cfg)
    cfg.manager_url = cfg.manager_url.rstrip("/")
    return cfg
