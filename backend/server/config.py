"""The Server's configuration: command-line flags, optionally on top of a TOML file.

    # server.toml (every key optional)
    data_dir = "/var/lib/flamenco-server"
    database = "postgresql://flamenco:secret@db/flamenco"   # default: SQLite in data_dir
    listen = "0.0.0.0:8080"
    threads = 32
    job_types_dirs = ["/etc/flamenco/job-types"]
    max_upload_bytes = 0            # 0: no limit
    max_frames = 1000000
    manager_online_seconds = 120
    applied_update_retention_days = 14
    web_session_hours = 168         # how long a sign-in on the web pages lasts
    trusted_proxies = ["127.0.0.1"] # reverse proxies whose X-Forwarded-For/-Proto/-Host are believed
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from backend.proxy import parse_networks

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
    job_types_dirs: list[str] = field(default_factory=list)
    max_upload_bytes: int = 0
    max_frames: int = 1_000_000
    manager_online_seconds: float = 120.0
    applied_update_retention_days: float = 14.0
    web_session_hours: float = 168.0
    trusted_proxies: list[str] = field(default_factory=list)

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
        if not isinstance(self.job_types_dirs, list):
            raise ConfigError("job_types_dirs must be a list of directories")
        if self.max_upload_bytes < 0:
            raise ConfigError("max_upload_bytes may not be negative")
        if self.max_frames < 1:
            raise ConfigError("max_frames must be at least 1")
        if not isinstance(self.web_session_hours, (int, float)) or self.web_session_hours <= 0:
            raise ConfigError("web_session_hours must be a positive number")
        if not isinstance(self.trusted_proxies, list):
            raise ConfigError("trusted_proxies must be a list of addresses or networks")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as ex:
            raise ConfigError(f"trusted_proxies: {ex}") from None
