"""The Server's configuration: command-line flags, optionally on top of a TOML file.

    # server.toml (every key optional)
    data_dir = "/var/lib/flamenco-server"
    database = "postgresql://flamenco:secret@db/flamenco"   # default: SQLite in data_dir
    listen = "0.0.0.0:8080"
    threads = 32                    # for people and the Managers' short calls
    manager_threads = 0             # for Managers' held depsgraph requests, one each; 0: Managers at start + 8
    job_types_dirs = ["/etc/flamenco/job-types"]
    max_upload_bytes = 17179869184  # one file (16 GiB); 0: no limit
    project_quota_bytes = 0         # what a project's jobs may store (files and outputs); 0: no limit
    max_pending_upload_bytes = 68719476736  # uploads of a user that no job names yet (64 GiB); 0: no limit
    blob_grace_hours = 24           # unused uploads are removed after this long
    min_free_bytes = 1073741824     # uploads are refused (503) when they would leave less free disk
    task_log_max_bytes = 67108864   # a task's full log as kept: head and tail, the middle cut out
    max_frames = 1000000
    manager_online_seconds = 120
    applied_update_retention_days = 14
    web_session_hours = 168         # how long a sign-in on the web pages lasts
    trusted_proxies = ["127.0.0.1"] # reverse proxies whose X-Forwarded-For/-Proto/-Host are believed
    login_token_days = 90           # API tokens from POST /api/auth/login expire; 0: never
    login_failures_per_user = 10    # wrong passwords per user name within login_window_seconds ...
    login_failures_per_address = 30 # ... and per client address; then 429 with Retry-After
    login_window_seconds = 300
    allowed_executables = ["blender", "ffmpeg"]  # blender_cmd / ffmpeg_cmd: '{variable}' or one of these,
    allowed_command_arguments = ["--factory-startup", "-noaudio"]  # ... followed only by these
    event_streams = 8               # pages' live-update streams held at once (each holds a thread; at most threads/2)
    event_stream_seconds = 300      # a stream ends after this; the browser opens the next one
    metrics_token = "..."           # GET /metrics needs it as a bearer token (or FLAMENCO_METRICS_TOKEN); unset: off
    archive_after_days = 90         # finished jobs are archived this long after their last change; 0: never
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.metrics import check_token
from backend.proxy import parse_networks
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
    manager_threads: int = 0
    job_types_dirs: list[str] = field(default_factory=list)
    max_upload_bytes: int = 16 * 1024 ** 3
    project_quota_bytes: int = 0
    max_pending_upload_bytes: int = 64 * 1024 ** 3
    blob_grace_hours: float = 24.0
    min_free_bytes: int = 1024 ** 3
    task_log_max_bytes: int = 64 * 1024 ** 2
    max_frames: int = 1_000_000
    manager_online_seconds: float = 120.0
    applied_update_retention_days: float = 14.0
    web_session_hours: float = 168.0
    trusted_proxies: list[str] = field(default_factory=list)
    login_token_days: float = 90.0
    login_failures_per_user: int = 10
    login_failures_per_address: int = 30
    login_window_seconds: float = 300.0
    allowed_executables: list[str] = field(default_factory=lambda: ["blender", "ffmpeg"])
    allowed_command_arguments: list[str] = field(default_factory=lambda: ["--factory-startup", "-noaudio"])
    event_streams: int = 8
    event_stream_seconds: float = 300.0
    metrics_token: str = ""
    archive_after_days: float = 0.0

    @property
    def event_stream_slots(self) -> int:
        """Streams held at once: never more than half the threads, so requests are always served."""
        return min(self.event_streams, self.threads // 2)

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
        if self.manager_threads < 0:
            raise ConfigError("manager_threads must be 0 (one per Manager) or a positive integer")
        for key in ("max_upload_bytes", "project_quota_bytes", "max_pending_upload_bytes", "min_free_bytes",
                    "login_token_days"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} may not be negative")
        for key in ("blob_grace_hours", "login_window_seconds", "login_failures_per_user",
                    "login_failures_per_address"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive")
        if self.task_log_max_bytes < 1024:
            raise ConfigError("task_log_max_bytes must be at least 1024")
        for key in ("allowed_executables", "allowed_command_arguments"):
            if not all(getattr(self, key)):
                raise ConfigError(f"{key} may not hold empty strings")
        if self.max_frames < 1:
            raise ConfigError("max_frames must be at least 1")
        if self.web_session_hours <= 0:
            raise ConfigError("web_session_hours must be a positive number")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as ex:
            raise ConfigError(f"trusted_proxies: {ex}") from None
        if self.event_streams < 0:
            raise ConfigError("event_streams must be 0 (the pages poll) or more")
        if self.event_stream_seconds <= 0:
            raise ConfigError("event_stream_seconds must be a positive number")
        check_token(self.metrics_token, "metrics_token")
        if self.archive_after_days < 0:
            raise ConfigError("archive_after_days may not be negative (0: never archive)")
