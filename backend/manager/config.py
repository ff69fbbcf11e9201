"""The Manager's configuration: defaults, a TOML file, and command-line overrides.

Everything the Manager can be told lives in one frozen dataclass tree so that
`make_app(config, db)` and the background loops read from one place. The TOML
layout is documented in docs/manager.example.toml.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.metrics import check_token
from backend.proxy import parse_networks
from shared.config import ConfigError, apply, read_toml
from shared.variables import PLATFORMS, Variables, VariableError, this_platform

RESERVED_VARIABLES = ("job_files", "job_output")
"""Left in commands for the worker to expand; a Manager may not define them."""


DEFAULT_VARIABLES: dict[str, Any] = {
    "blender": {"direction": "oneway", "values": [
        {"platform": "linux", "value": "blender"},
        {"platform": "windows", "value": "C:/Program Files/Blender Foundation/Blender/blender.exe"},
        {"platform": "darwin", "value": "/Applications/Blender.app/Contents/MacOS/Blender"},
    ]},
    "ffmpeg": {"direction": "oneway", "values": [{"platforms": ["linux", "windows", "darwin"], "value": "ffmpeg"}]},
    "render": {"direction": "twoway", "values": [
        {"platforms": ["linux", "darwin"], "value": "/render"},
        {"platform": "windows", "value": "R:"},
    ]},
    "job_storage": {"direction": "twoway", "values": [
        {"platforms": ["linux", "darwin"], "value": "/shared/flamenco/jobs"},
        {"platform": "windows", "value": "S:/jobs"},
    ]},
}


@dataclass
class Timeouts:
    task_timeout: float = 600.0
    """An active task whose worker has not pinged it (update or may-i-run) for this long fails on that worker."""
    worker_timeout: float = 120.0
    """An awake worker not heard from for this long goes to 'timeout' and its task is requeued."""
    check_interval: float = 30.0


@dataclass
class Failures:
    blocklist_threshold: int = 3
    """Failures of one worker on one job's task type before it is blocklisted for them."""
    task_fail_after_softfail_count: int = 3
    """Distinct workers that failed a task before it fails for good."""
    blocklist_ttl: float = 7 * 24 * 3600.0


@dataclass
class Scheduling:
    long_poll_max: float = 25.0
    """Cap on X-Flamenco-Long-Poll; stays below HTTP clients' usual 30 s timeouts."""
    http_threads: int = 96
    """cheroot worker threads. Each held long-poll occupies one."""
    reserved_threads: int = 16
    """Threads never given to long-polls, so short requests are always served."""
    output_produced_min_interval: float = 30.0


@dataclass
class Upstream:
    server_url: str = ""
    manager_id: str = ""
    token: str = ""
    push_interval: float = 1.0
    """The pusher's tick (notifications, worker reports); task updates go at once."""
    push_max_batch: int = 1000
    push_busy_interval: float = 0.1
    """While updates keep coming, a batch at most this often (each carries what gathered); an
    update on an idle link goes at once."""
    cancel_poll_interval: float = 300.0
    """An empty update batch at least this often (its answer lists cancels and log requests); the
    Server's news makes one at once when there are some, so this is only a safety net."""
    long_poll: float = 50.0
    """Seconds the Server may hold a depsgraph request while nothing changes for this Manager
    (the Server caps it at 60); 0: poll every fetch_interval instead."""
    depsgraph_page: int = 1000
    """Tasks per depsgraph answer; a big job comes in pages, the first one runs at once."""
    fetch_interval: float = 10.0
    """Seconds between depsgraph polls when the Server does not hold them (long_poll = 0, or no
    thread free for it at the Server)."""
    idle_fetch_interval: float = 1.0
    """When polling: a worker waiting for work makes the Manager fetch at once, at most this often."""
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    request_timeout: float = 15.0
    worker_report_interval: float = 300.0
    """The full worker report at least this often; changes (status, sign-on, ...) go at once."""
    notification_retry: float = 10.0
    resync_interval: float = 600.0
    """A clean-slate depsgraph this often; held tasks the Server no longer lists are dropped."""

    @property
    def linked(self) -> bool:
        return bool(self.server_url and self.manager_id and self.token)


@dataclass
class Logs:
    max_log_bytes_per_update: int = 1024 * 1024
    """Log text beyond this in one update is cut (with a note), never refused."""
    log_tail_lines: int = 10
    log_tail_max_bytes: int = 4096
    max_activity_chars: int = 1000
    rotations_kept: int = 5
    serve_head_bytes: int = 5 * 1024
    serve_tail_bytes: int = 10 * 1024


@dataclass
class LatestImage:
    watch_dir: str = ""
    ffmpeg: str = "ffmpeg"
    max_width: int = 1920
    max_height: int = 1080
    max_streams: int = 4
    """Concurrent /imagewatch streams; each holds a thread."""
    stream_max_seconds: float = 300.0


@dataclass
class Files:
    """Upload mode's file store (job files and outputs, by checksum) in <data_dir>/file-cache."""
    store_max_bytes: int = 100 * 2**30
    """Evict the least recently used files above this (0: never); files that unfinished tasks
    still need, or that still wait to go to the Server, are kept whatever it costs."""
    evict_interval: float = 300.0
    partial_max_age: float = 86400.0
    """An upload that got no further for this long is dropped (a worker that comes back starts over)."""


@dataclass
class Retention:
    """Finished jobs forgotten by the Manager: their task rows and task logs (the Server keeps the record)."""
    finished_job_days: float = 0.0
    """A job all of whose tasks ended is removed this long after its last change (0: kept forever).
    After that the Server can no longer fetch its tasks' full logs from this Manager: keep it at
    least as long as artists ask for logs (the Server's archive_after_days, for example)."""
    check_interval: float = 3600.0


@dataclass
class ManagerConfig:
    data_dir: Path = Path("flamenco-manager-data")
    listen: str = "0.0.0.0:8083"
    manager_url: str = ""
    """The URL workers use for this Manager, announced to the Server."""
    platform: str = field(default_factory=this_platform)
    registration_secret: str = ""
    """Workers register with an HS256 JWT signed with this (FLAMENCO_REGISTRATION_SECRET; never on argv)."""
    allow_open_registration: bool = False
    """Listen on a non-loopback address without a registration secret (anyone who reaches it may register)."""
    admin_token: str = ""
    """A bearer token for the admin API (FLAMENCO_MANAGER_ADMIN_TOKEN; never on argv). Tokens minted by
    `flamenco-manager create-admin-token` and the admin password need no config."""
    metrics_token: str = ""
    """GET /metrics needs it as a bearer token (FLAMENCO_MANAGER_METRICS_TOKEN; never on argv); unset: off."""
    admin_session_hours: float = 12.0
    """How long a sign-in on the Manager's pages lasts."""
    trusted_proxies: list[str] = field(default_factory=list)
    """Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto/-Host are believed."""
    allowed_executables: list[str] = field(default_factory=lambda: ["blender", "ffmpeg"])
    """What a task's `*_cmd` setting may name besides this Manager's own variables ({blender})."""
    allowed_command_arguments: list[str] = field(default_factory=lambda: ["--factory-startup", "-noaudio"])
    exec_command: bool = True
    """Whether this Manager runs tasks with an `exec` command (job type exec-command, admins only)."""
    variables: Variables = field(default_factory=lambda: Variables.from_dict(DEFAULT_VARIABLES))
    timeouts: Timeouts = field(default_factory=Timeouts)
    failures: Failures = field(default_factory=Failures)
    scheduling: Scheduling = field(default_factory=Scheduling)
    upstream: Upstream = field(default_factory=Upstream)
    logs: Logs = field(default_factory=Logs)
    latest_image: LatestImage = field(default_factory=LatestImage)
    files: Files = field(default_factory=Files)
    retention: Retention = field(default_factory=Retention)

    @property
    def max_long_polls(self) -> int:
        return max(0, self.scheduling.http_threads - self.scheduling.reserved_threads)

    @property
    def task_log_dir(self) -> Path:
        return Path(self.data_dir) / "task-logs"

    @property
    def file_cache_dir(self) -> Path:
        return Path(self.data_dir) / "file-cache"

    @property
    def spool_dir(self) -> Path:
        return Path(self.data_dir) / "output-spool"

    @property
    def latest_image_path(self) -> Path:
        return Path(self.data_dir) / "latest-image.jpg"

    def validate(self) -> None:
        if self.platform not in PLATFORMS:
            raise ConfigError(f"platform must be linux, windows or darwin, not '{self.platform}'")
        for name in RESERVED_VARIABLES:
            if name in self.variables.variables:
                raise ConfigError(f"variable '{name}' is reserved: the worker expands it")
        if self.scheduling.http_threads < 4:
            raise ConfigError("scheduling.http_threads must be 4 or more")
        if self.scheduling.reserved_threads >= self.scheduling.http_threads:
            raise ConfigError("scheduling.reserved_threads must be below scheduling.http_threads")
        if self.failures.blocklist_threshold < 1 or self.failures.task_fail_after_softfail_count < 1:
            raise ConfigError("failure thresholds must be 1 or more")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as ex:
            raise ConfigError(f"manager.trusted_proxies: {ex}") from None
        up = self.upstream
        if any((up.server_url, up.manager_id, up.token)) and not up.linked:
            raise ConfigError("linking needs all of server_url, manager_id and token")
        if not 1 <= up.depsgraph_page <= 10000:
            raise ConfigError("upstream.depsgraph_page must be from 1 to 10000")
        if up.long_poll < 0 or up.fetch_interval <= 0:
            raise ConfigError("upstream.long_poll may not be negative and upstream.fetch_interval must be positive")
        if self.files.store_max_bytes < 0 or self.files.evict_interval <= 0:
            raise ConfigError("files.store_max_bytes may not be negative and files.evict_interval must be positive")
        if self.retention.finished_job_days < 0 or self.retention.check_interval <= 0:
            raise ConfigError("retention.finished_job_days may not be negative (0: keep forever) and "
                              "retention.check_interval must be positive")
        for name, value in (("timeouts.task_timeout", self.timeouts.task_timeout),
                            ("timeouts.worker_timeout", self.timeouts.worker_timeout),
                            ("scheduling.long_poll_max", self.scheduling.long_poll_max)):
            if value <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.admin_session_hours <= 0:
            raise ConfigError("manager.admin_session_hours must be positive")
        check_token(self.metrics_token, "manager.metrics_token")

    def check_exposure(self, host: str) -> None:
        """Refuse to listen beyond this machine with open registration, unless explicitly allowed.

        With open registration anyone who reaches the Manager can register a
        worker, receive tasks (and their files) and report on them."""
        if self.registration_secret or self.allow_open_registration or is_loopback(host):
            return
        raise ConfigError(
            f"listening on {host or '0.0.0.0'} (beyond this machine) without a registration secret would let anyone "
            "on the network register workers. Set one (environment FLAMENCO_REGISTRATION_SECRET, or "
            "registration_secret in [manager] of the config file; workers need the same), listen on 127.0.0.1, or "
            "allow it explicitly with --allow-open-registration (allow_open_registration = true)")


def is_loopback(host: str) -> bool:
    """Whether `host` (a listen address) is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_SECTIONS = ("timeouts", "failures", "scheduling", "upstream", "logs", "latest_image", "files", "retention")
_MANAGER_KEYS = ("data_dir", "listen", "manager_url", "platform", "registration_secret", "allow_open_registration",
                 "admin_token", "metrics_token", "admin_session_hours", "trusted_proxies", "allowed_executables",
                 "allowed_command_arguments", "exec_command")
"""The settings of the [manager] table: ManagerConfig's own fields."""


def from_dict(data: dict[str, Any], base: ManagerConfig | None = None) -> ManagerConfig:
    """A config from a parsed TOML document, on top of `base` (or the defaults)."""
    cfg = dataclasses.replace(base) if base else ManagerConfig()
    for key, value in data.items():
        if key in _SECTIONS:
            cfg = apply(cfg, {key: value})
        elif key == "variables":
            try:
                custom = Variables.from_dict(value)
            except VariableError as ex:
                raise ConfigError(str(ex)) from None
            cfg.variables = cfg.variables.merged(custom)
        elif key == "manager":
            if not isinstance(value, dict):
                raise ConfigError("[manager] must be a table")
            for k in value:
                if k not in _MANAGER_KEYS:
                    raise ConfigError(f"unknown setting 'manager.{k}'; known: {', '.join(_MANAGER_KEYS)}")
            cfg = apply(cfg, value, "manager.")
        else:
            raise ConfigError(f"unknown section '{key}'; known: manager, variables, {', '.join(_SECTIONS)}")
    cfg.validate()
    return cfg


def load(path: str | Path, base: ManagerConfig | None = None) -> ManagerConfig:
    return from_dict(read_toml(path), base)
