"""The Worker's configuration: a TOML file, overridden by command line options.

Every key is optional except the Manager URL (from the file, `--manager` or
FLAMENCO_MANAGER_URL). Paths that are not given live in the data directory,
one per worker: two workers must never share a data directory, as it holds
their credentials, their PID file and their queue of unsent updates.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.protocol import DEFAULT_WORKER_TASK_TYPES

DEFAULT_DATA_DIR = "~/.local/share/flamenco-worker"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


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


_FIELDS = {f.name: f for f in dataclasses.fields(WorkerConfig)}


def _check_type(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number")
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{key}' must be an integer")
        return value
    if isinstance(default, list):
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"'{key}' must be a list of strings")
        return list(value)
    if not isinstance(value, str):
        raise ConfigError(f"'{key}' must be a string")
    return value


def from_dict(data: dict[str, Any], base: WorkerConfig | None = None) -> WorkerConfig:
    """A config from a parsed TOML document; unknown keys are an error (typos matter)."""
    cfg = dataclasses.replace(base) if base else WorkerConfig()
    defaults = WorkerConfig()
    for key, value in data.items():
        if key == "pre_task_check":
            if not isinstance(value, dict):
                raise ConfigError("'pre_task_check' must be a table with 'read' and 'write' lists")
            for sub, sub_value in value.items():
                if sub not in ("read", "write"):
                    raise ConfigError(f"unknown key 'pre_task_check.{sub}' (expected read, write)")
                attr = f"pre_task_check_{sub}"
                setattr(cfg, attr, _check_type(f"pre_task_check.{sub}", sub_value, []))
            continue
        if key not in _FIELDS:
            raise ConfigError(f"unknown configuration key '{key}'")
        setattr(cfg, key, _check_type(key, value, getattr(defaults, key)))
    return cfg


def load(path: str | os.PathLike | None, overrides: dict[str, Any] | None = None) -> WorkerConfig:
    """Read the TOML file (if any), then apply `overrides` (None values are skipped)."""
    cfg = WorkerConfig()
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file '{path}' does not exist") from None
        except tomllib.TOMLDecodeError as ex:
            raise ConfigError(f"config file '{path}' is not valid TOML: {ex}") from None
        cfg = from_dict(data, cfg)
    if not cfg.manager_url:
        cfg.manager_url = os.environ.get("FLAMENCO_MANAGER_URL", "")
    if overrides:
        cfg = from_dict({k: v for k, v in overrides.items() if v is not None}, cfg)
    cfg.manager_url = cfg.manager_url.rstrip("/")
    return cfg
