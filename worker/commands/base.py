"""What every command is made of: settings validation, a context to run in, a registry.

A command is a small class registered under its Flamenco name. `validate`
turns the raw settings into what `execute` needs, or raises SettingError
naming the setting; nothing runs before every setting was checked.
`execute` reports through the CommandContext (log lines, progress, produced
outputs) and raises CommandError to fail the task.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..runner import CommandAborted, RunResult, SubprocessRunner

log = logging.getLogger(__name__)


class CommandError(Exception):
    """The command failed; the message says why, for the task log and the artist."""


class SettingError(CommandError):
    def __init__(self, setting: str, message: str):
        super().__init__(f"setting '{setting}': {message}")
        self.setting = setting


COMMANDS: dict[str, type["Command"]] = {}


def register(cls: type["Command"]) -> type["Command"]:
    if cls.name in COMMANDS:
        raise ValueError(f"command '{cls.name}' registered twice")
    COMMANDS[cls.name] = cls
    return cls


def get(name: str) -> "Command":
    try:
        return COMMANDS[name]()
    except KeyError:
        raise CommandError(f"unknown command '{name}' (this worker knows: {', '.join(sorted(COMMANDS))})") from None


class Command:
    name: ClassVar[str] = ""

    def validate(self, settings: dict[str, Any]) -> Any:
        """Check the settings; return what execute() needs. Raise SettingError."""
        return settings

    def execute(self, ctx: "CommandContext", params: Any) -> None:
        raise NotImplementedError

    def output_dirs(self, params: Any) -> list[Path]:
        """Directories whose new files are this command's outputs (for the output watcher)."""
        return []


# --- settings helpers ---------------------------------------------------------

def req_str(settings: dict, key: str, allow_empty: bool = False) -> str:
    if key not in settings:
        raise SettingError(key, "is required")
    value = settings[key]
    if not isinstance(value, str):
        raise SettingError(key, f"must be a string, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise SettingError(key, "may not be empty")
    return value


def opt_str(settings: dict, key: str, default: str | None = None) -> str | None:
    if settings.get(key) is None:
        return default
    return req_str(settings, key, allow_empty=True) or default


def req_number(settings: dict, key: str, minimum: float | None = None, default: float | None = None) -> float:
    if key not in settings or settings[key] is None:
        if default is not None:
            return default
        raise SettingError(key, "is required")
    value = settings[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise SettingError(key, f"must be a number, not '{value}'") from None
        else:
            raise SettingError(key, f"must be a number, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise SettingError(key, f"must be at least {minimum:g}, not {value:g}")
    return value


def unexpanded_variable(value: str) -> str | None:
    """The name of a '{variable}' the Manager left in `value`, if any."""
    start = value.find("{")
    end = value.find("}", start + 1)
    if start >= 0 and end > start + 1:
        name = value[start + 1:end]
        if name.replace("_", "").isalnum():
            return name
    return None


def executable_argv(settings: dict, key: str, default: str) -> list[str]:
    """`blender_cmd` / `ffmpeg_cmd`: a command line whose first word must be an executable here."""
    raw = opt_str(settings, key, default) or default
    var = unexpanded_variable(raw)
    if var:
        raise SettingError(key, f"'{raw}' still contains '{{{var}}}': the Manager has no value for the "
                                f"variable '{var}' for this worker's platform (set it in the Manager's "
                                f"variables)")
    try:
        argv = shlex.split(raw)
    except ValueError as ex:
        raise SettingError(key, f"cannot split '{raw}' into words: {ex}") from None
    if not argv:
        raise SettingError(key, "may not be empty")
    exe = argv[0]
    found = shutil.which(exe)
    if not found:
        raise SettingError(key, f"executable '{exe}' not found on this worker")
    argv[0] = found
    return argv


def autoexec_setting(settings: dict) -> bool:
    """Whether Blender may run the scripts saved in the blend file (drivers, registered texts).

    The Server sets `autoexec` on every command that runs Blender from its
    project's allow_scripts; anything else (an older Server, a Manager's own
    tasks) gets Blender's safe side: --disable-autoexec.
    """
    value = settings.get("autoexec", False)
    if not isinstance(value, bool):
        raise SettingError("autoexec", f"must be true or false, not {type(value).__name__}")
    return value


def autoexec_arg(enabled: bool) -> str:
    return "--enable-autoexec" if enabled else "--disable-autoexec"


# --- the context a command runs in ------------------------------------------------

@dataclass
class CommandContext:
    task_id: str
    job_id: str
    command_idx: int
    command_name: str
    reporter: Any  # TaskReporter
    runner: SubprocessRunner
    abort: threading.Event
    abort_reason: Callable[[], str]
    output_produced: Callable[[list[str]], None]
    missing_blendfile_wait: float = 5.0
    peak_rss: int = 0
    extra: dict = field(default_factory=dict)
    slot: Any = None
    """The task's Booking (worker/slots.py): the environment its subprocesses get, threads, GPU."""

    def log(self, message: str) -> None:
        self.reporter.log(message)

    def activity(self, text: str) -> None:
        self.reporter.activity(text)

    def progress(self, fraction: float, activity: str | None = None) -> None:
        self.reporter.progress(fraction, activity)

    def check_abort(self) -> None:
        if self.abort.is_set():
            raise CommandAborted(self.abort_reason())

    def sleep(self, seconds: float) -> None:
        """Sleep, but stop at once (CommandAborted) when the task is aborted."""
        if self.abort.wait(seconds):
            raise CommandAborted(self.abort_reason())

    def run(self, argv: list[str], on_line: Callable[[str], None] | None = None,
            cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None,
            check: bool = True, log_filter: Callable[[str], bool] | None = None) -> RunResult:
        """Run a subprocess with its output in the task log; a non-zero exit fails the command."""
        self.log(f"{self.command_name}: running {shlex.join(argv)}")
        def line_handler(line: str) -> None:
            if log_filter is None or log_filter(line):
                self.log(f"pid={self.runner.last_pid} > {line}")
            if on_line:
                on_line(line)

        if self.slot is not None and self.slot.env:
            env = {**self.slot.env, **(env or {})}
        try:
            result = self.runner.run(argv, line_handler, abort=self.abort, cwd=cwd, env=env,
                                     abort_reason=self.abort_reason)
        except CommandAborted:
            raise
        except Exception as ex:  # RunnerError and OSError
            raise CommandError(str(ex)) from None
        self.peak_rss = max(self.peak_rss, result.peak_rss)
        self.log(f"{self.command_name}: pid={result.pid} exited with code {result.returncode} after "
                 f"{result.duration:.2f} s, peak memory {result.peak_rss_mb} MB")
        if check and result.returncode != 0:
            raise CommandError(f"{Path(argv[0]).name} exited with code {result.returncode}")
        return result
