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
    event_streams = 8               # pages' live-update streams held at once (each holds a thread; at most threads/2)
    event_stream_seconds = 300      # a stream ends after this; the browser opens the next one
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.config import ConfigError, apply, read_toml

__all__ = ["ConfigError", "DEFAULT_LISTEN", "DEFAULT_PORT", "ServerConfig"]

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_PORT = 8080


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
    event_streams: int = 8
    event_stream_seconds: float = 300.0

    @property
    def event_stream_slots(self) -> int:
        """Streams held at once: never more than half the threads, so requests are always served."""
        return min(self.event_streams, self.threads // 2)

    @property
    def files_dir(self) -> Path:
        if self.data_dir is None:
            raise ConfigError("data_dir is needed to store job files and task logs")
        return Path(self.data_dir) / "files"

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> "ServerConfig":
        return cls.from_dict(read_toml(path), **overrides)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], **overrides: Any) -> "ServerConfig":
        """The file's settings, then the command line's (None: not given); every value type-checked."""
        cfg = apply(apply(cls(), raw), {k: v for k, v in overrides.items() if v is not None})
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.threads < 1:
            raise ConfigError("threads must be a positive integer")
        if self.max_upload_bytes < 0:
            raise ConfigError("max_upload_bytes may not be negative")
        if self.max_frames < 1:
            raise ConfigError("max_frames must be at least 1")
        if self.web_session_hours <= 0:
            raise ConfigError("web_session_hours must be a positive number")
        if self.event_streams < 0:
            raise ConfigError("event_streams must be 0 (the pages poll) or more")
        if self.event_stream_seconds <= 0:
            raise ConfigError("event_stream_seconds must be a positive number")
