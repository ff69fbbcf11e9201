"""The Server's configuration: command-line flags, optionally on top of a TOML file.

    # server.toml (every key optional)
    data_dir = "/var/lib/flamenco-server"
    database = "postgresql://flamenco:secret@db/flamenco"   # default: SQLite in data_dir
    listen = "0.0.0.0:8080"
    threads = 32                    # for people and the Managers' short calls
    manager_threads = 0             # for Managers' held depsgraph requests, one each; 0: Managers at start + 8
    job_types_dirs = ["/etc/flamenco/job-types"]
    max_upload_bytes = 0            # 0: no limit
    max_frames = 1000000
    manager_online_seconds = 120
    applied_update_retention_days = 14
    web_session_hours = 168         # how long a sign-in on the web pages lasts
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_PORT = 8080


class ConfigError(ValueError):
    """A configuration that cannot work; the message names the key."""


@dataclass
class ServerConfig:
    data_dir: Path | None = None
    database: str | None = None
    listen: str = DEFAULT_LISTEN
    threads: int = 32
    manager_threads: int = 0
    job_types_dirs: list[str] = field(default_factory=list)
    max_upload_bytes: int = 0
    max_frames: int = 1_000_000
    manager_online_seconds: float = 120.0
    applied_update_retention_days: float = 14.0
    web_session_hours: float = 168.0

    @property
    def held_requests(self) -> int:
        """How many Managers may hold a depsgraph request at once (each takes a thread)."""
        return self.manager_threads or 8

    @property
    def files_dir(self) -> Path:
        if self.data_dir is None:
            raise ConfigError("data_dir is needed to store job files and task logs")
        return Path(self.data_dir) / "files"

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> "ServerConfig":
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as ex:
            raise ConfigError(f"cannot read config {path}: {ex}") from None
        return cls.from_dict(raw, **overrides)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], **overrides: Any) -> "ServerConfig":
        known = {f.name for f in fields(cls)}
        for key in raw:
            if key not in known:
                raise ConfigError(f"unknown config key '{key}'; known are: {', '.join(sorted(known))}")
        values = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.data_dir is not None:
            self.data_dir = Path(self.data_dir)
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError("threads must be a positive integer")
        if not isinstance(self.manager_threads, int) or self.manager_threads < 0:
            raise ConfigError("manager_threads must be 0 (one per Manager) or a positive integer")
        if not isinstance(self.job_types_dirs, list):
            raise ConfigError("job_types_dirs must be a list of directories")
        if self.max_upload_bytes < 0:
            raise ConfigError("max_upload_bytes may not be negative")
        if self.max_frames < 1:
            raise ConfigError("max_frames must be at least 1")
        if not isinstance(self.web_session_hours, (int, float)) or self.web_session_hours <= 0:
            raise ConfigError("web_session_hours must be a positive number")
