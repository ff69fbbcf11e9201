"""Job types: a settings schema, the task types they need, and a compiler to tasks.

A job type is a class decorated with `@register_compiler("name")`. It declares
its settings as a list of `Setting`, which the API serves at `GET /api/job-types`
so the add-on and the pages can build their forms, and which `validate_settings`
checks before anything is stored. `compile()` turns validated settings into
`TaskSpec`s, in dependency order (a task's parents come before it); it does no
I/O, so compiling is pure and testable.

Compilers are found by scanning modules for decorated classes (see registry.py),
so a studio can drop its own job types into a directory named in the server config.

Settings that name a program to run are the keys ending in `_cmd` (`blender_cmd`,
`ffmpeg_cmd`): `check_command` allows there only a Manager variable (`{blender}`)
or an executable of the Server's allow-list, followed by allowed arguments, so
a project member cannot make a worker run `/bin/sh -c ...`. A job type marked
`admin_only` (`exec-command`) may only be submitted by admins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared import setting_types
from shared.commands import COMMAND_SUFFIX, command_problem
from shared.frames import DEFAULT_MAX_FRAMES
from shared.relpaths import RelpathError, check_relpath

FILES_MODES = ("shared", "upload")
"""Where a job's files are: on storage every worker shares, or uploaded and sent around by the farm."""

_MARK = "__flamenco_job_type__"


class SettingError(ValueError):
    """Settings a job type refuses; `key` names the setting, the message says why."""

    def __init__(self, key: str, message: str):
        super().__init__(f"setting '{key}': {message}")
        self.key = key


class CompilerError(RuntimeError):
    """A job that validated but could not be compiled; the job becomes construction-failed."""


@dataclass(frozen=True)
class Setting:
    """One setting of a job type, as served in the schema."""
    key: str
    type: str
    default: Any = None
    required: bool = False
    choices: tuple | None = None
    label: str = ""
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    modes: tuple[str, ...] = FILES_MODES
    """The files modes in which the setting means something; given in another mode it is refused."""

    def __post_init__(self):
        try:
            setting_types.get(self.type)
        except setting_types.UnknownSettingType as ex:
            raise ValueError(f"setting '{self.key}': {ex}") from None
        if self.type == setting_types.CHOICE and not self.choices:
            raise ValueError(f"setting '{self.key}': a choice needs choices")
        if not self.modes or set(self.modes) - set(FILES_MODES):
            raise ValueError(f"setting '{self.key}': modes must be some of {', '.join(FILES_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        out = {"key": self.key, "type": self.type, "default": self.default, "required": self.required,
               "choices": list(self.choices) if self.choices else None,
               "label": self.label or self.key.replace("_", " ").capitalize(),
               "description": self.description, "modes": list(self.modes)}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out

    def check(self, value: Any, max_frames: int) -> Any:
        """The value, normalised; SettingError when it does not fit (shared/setting_types.py)."""
        try:
            return setting_types.check(self.type, value, required=self.required, choices=self.choices,
                                       minimum=self.minimum, maximum=self.maximum, max_frames=max_frames)
        except setting_types.SettingValueError as ex:
            raise SettingError(self.key, str(ex)) from None


def check_command(key: str, value: str, executables: list[str], arguments: list[str]) -> None:
    """SettingError unless `value` is '{variable}' or an allowed executable, then only allowed arguments."""
    problem = command_problem(key, value, executables, arguments)
    if problem:
        raise SettingError(key, problem)


def validate_settings(schema: list[Setting], raw: Any, max_frames: int = DEFAULT_MAX_FRAMES,
                      files_mode: str | None = None) -> dict[str, Any]:
    """Settings checked against the schema, defaults filled in; SettingError otherwise.

    Unknown keys are refused, so a typo ('chunksize') is not silently ignored;
    so is a setting given in a files mode it does not apply to (when the mode is known).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SettingError("settings", "must be an object")
    known = {s.key: s for s in schema}
    for key in raw:
        if key not in known:
            raise SettingError(key, f"unknown setting; known are: {', '.join(known) or 'none'}")
    out: dict[str, Any] = {}
    for s in schema:
        value = raw.get(s.key)
        if value is None:
            if s.required and s.default is None:
                raise SettingError(s.key, "is required")
            if s.default is not None:
                out[s.key] = s.default
            continue
        if files_mode is not None and files_mode not in s.modes:
            raise SettingError(s.key, f"only applies to jobs with {_modes_text(s.modes)}; this job's files are "
                                      f"{_modes_text((files_mode,))}")
        out[s.key] = s.check(value, max_frames)
    return out


def _modes_text(modes) -> str:
    words = {"shared": "shared storage", "upload": "uploaded files"}
    return " or ".join(words.get(m, m) for m in modes)


@dataclass
class TaskSpec:
    """A task as a compiler describes it; ids are given when it is stored.

    Upload mode (no shared disk) also needs to know which files travel:
    `inputs` are path prefixes, relative to the job's tree, of outputs of
    earlier tasks of the job that this task reads (the worker fetches them
    before the commands run); `outputs` are prefixes of what it writes (what
    changed or disappeared under them is reported to the Manager afterwards;
    '' is the whole tree; no outputs at all: every file it added or changed).
    `scratch` outputs are for later tasks only and never reach the Server.
    """
    name: str
    task_type: str
    commands: list[dict[str, Any]]
    priority: int = 50
    parents: list["TaskSpec"] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    scratch: bool = False

    def io(self) -> dict[str, Any] | None:
        """The task's 'io' document (see docs/protocol.md), or None when nothing is declared."""
        if not (self.inputs or self.outputs or self.scratch):
            return None
        out: dict[str, Any] = {"inputs": list(self.inputs), "outputs": list(self.outputs)}
        if self.scratch:
            out["scratch"] = True
        return out
    needs: str = ""
    """What it needs of a worker with slots (shared/slots.py: cpu, gpu, light); empty: its type's default."""


def command(name: str, **settings: Any) -> dict[str, Any]:
    """A command as the worker receives it: {name, settings}; None values left out."""
    return {"name": name, "settings": {k: v for k, v in settings.items() if v is not None}}


@dataclass(frozen=True)
class CompileContext:
    """What a compiler may know about the job beyond its settings."""
    job_id: str
    job_name: str
    created: dt.datetime
    files_mode: str = "shared"
    files: dict[str, dict] | None = field(default_factory=dict)
    """The upload manifest; None while it is not known yet (checking settings before packing)."""
    manager_task_types: frozenset[str] = frozenset()
    max_frames: int = DEFAULT_MAX_FRAMES

    @property
    def upload(self) -> bool:
        return self.files_mode == "upload"

    def job_file(self, key: str, relpath: str) -> str:
        """'{job_files}/relpath' in upload mode (the file must be in the manifest); the path as given otherwise."""
        if not self.upload:
            return relpath
        rel = self.relpath(key, relpath)
        if self.files is not None and rel not in self.files:
            raise SettingError(key, f"'{relpath}' is not one of the job's uploaded files")
        return "{job_files}/" + rel

    @staticmethod
    def relpath(key: str, path: str) -> str:
        """A path inside the job's tree, normalised ('a//./b' -> 'a/b'); SettingError if it is absolute,
        starts with a variable or climbs out with '..'."""
        if path.startswith("{"):
            raise SettingError(key, f"'{path}': with uploaded files paths are relative to the job's files, "
                                    "e.g. 'frames/######'; variables such as '{render}' are for shared storage")
        try:
            return check_relpath(path.replace("\\", "/"))
        except RelpathError as ex:
            raise SettingError(key, str(ex)) from None

    def tree_path(self, key: str, path: str) -> str:
        """Upload mode: '{job_files}/rel' for a path inside the job's tree (a job file, or a file an
        earlier task or a job this one depends on made); the path as given otherwise."""
        return "{job_files}/" + self.relpath(key, path) if self.upload else path

    def output_path(self, key: str, path: str) -> str:
        """Upload mode: '{job_output}/rel' for a path a task writes; the path as given otherwise."""
        return "{job_output}/" + self.relpath(key, path) if self.upload else path


class JobType:
    """Base of the job types. Subclasses set the class attributes and `compile`."""

    job_type: ClassVar[str] = ""
    label: ClassVar[str] = ""
    """What people see instead of the internal name (the add-on lists job types by label)."""
    description: ClassVar[str] = ""
    artist_visible: ClassVar[bool] = True
    """False for tools of the farm's admins (sleep, exec-command): the add-on does not offer them."""
    settings_schema: ClassVar[list[Setting]] = []
    admin_only: ClassVar[bool] = False
    files_modes: ClassVar[tuple[str, ...]] = FILES_MODES
    """The files modes the type works in; a job in another one is refused before anything is uploaded."""

    def task_types(self, settings: dict[str, Any], ctx: CompileContext) -> set[str]:
        """Task types the assigned Manager's workers must support for these settings."""
        raise NotImplementedError

    def check(self, settings: dict[str, Any], ctx: CompileContext) -> None:
        """Checks across settings beyond the schema; raise SettingError."""

    def compile(self, settings: dict[str, Any], ctx: CompileContext) -> list[TaskSpec]:
        """The job's tasks, parents before children. Raise CompilerError if impossible."""
        raise NotImplementedError

    def validate(self, raw: Any, max_frames: int = DEFAULT_MAX_FRAMES,
                 files_mode: str | None = None) -> dict[str, Any]:
        if files_mode is not None and files_mode not in self.files_modes:
            raise SettingError("settings", f"a {self.job_type} job needs {_modes_text(self.files_modes)}; "
                                           f"this job's files are {_modes_text((files_mode,))}")
        return validate_settings(self.settings_schema, raw, max_frames, files_mode)

    def check_commands(self, settings: dict[str, Any], executables: list[str], arguments: list[str]) -> None:
        """The `*_cmd` settings (programs to run) against the allow-lists; SettingError."""
        for key, value in settings.items():
            if key.endswith(COMMAND_SUFFIX) and isinstance(value, str):
                check_command(key, value, executables, arguments)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        out = {"name": cls.job_type, "label": cls.label or cls.job_type, "description": cls.description,
               "artist_visible": cls.artist_visible, "files_modes": list(cls.files_modes),
               "settings": [s.to_dict() for s in cls.settings_schema]}
        if cls.admin_only:
            out["admin_only"] = True
        return out


def register_compiler(job_type: str):
    """Mark a JobType subclass as the compiler of `job_type`; registries find it by this mark."""

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, JobType)):
            raise TypeError(f"@register_compiler('{job_type}') must decorate a JobType subclass")
        cls.job_type = job_type
        setattr(cls, _MARK, job_type)
        return cls

    return decorate


def is_registered(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, JobType) and _MARK in obj.__dict__
