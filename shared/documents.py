"""The JSON documents exchanged between Worker, Manager and Server.

Field names are those of Flamenco 2 on the Worker <-> Manager side, so that an
unmodified Flamenco Worker 2.x understands our Manager. Each document is a
dataclass; `from_dict` validates types and required fields and raises
DocumentError with the name of the offending field, `to_dict` gives JSON.
A field whose JSON name differs from the Python name (`_id`) says so in its
metadata. Unknown keys are ignored, as older and newer peers may send more.

Texts are limited (DEFAULT_MAX_TEXT characters, or the class's LIMITS for a
field, which also applies to the texts in a list field) and so are lists
(MAX_ITEMS), so that no peer can make another store or log a megabyte nickname.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from .slots import MAX_SLOTS, Free
from .statuses import TaskStatus, WorkerStatus
from .variables import PLATFORMS

DEFAULT_MAX_TEXT = 10_000
MAX_LOG_TEXT = 16 * 1024 * 1024
NAME_LIST_ITEMS, NAME_TEXT = 100, 100
MAX_COUNT = 1_000_000
MAX_COMMAND_IDX = 10_000


class DocumentError(ValueError):
    """A document that does not have the expected shape; the message names the field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _json_key(f: dataclasses.Field) -> str:
    return f.metadata.get("key", f.name)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


_CONVERTERS: dict[tuple, Any] = {}


def _converter(tp: Any, max_text: int = DEFAULT_MAX_TEXT, max_items: int | None = None):
    """The check for annotation `tp` as a function (value, where) -> value (ints accepted as
    floats; texts, also those in a list, at most `max_text` characters; a list at most
    `max_items` long), built once per annotation and limits: working out what an
    annotation means on every value cost more than the checks."""
    key = (tp, max_text, max_items)
    conv = _CONVERTERS.get(key)
    if conv is None:
        conv = _CONVERTERS[key] = _build_converter(tp, max_text, max_items)
    return conv


def _build_converter(tp: Any, max_text: int, max_items: int | None):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        optional = type(None) in args
        convs = [_converter(arg, max_text, max_items) for arg in args if arg is not type(None)]

        def union(value, where):
            if value is None and optional:
                return None
            errors = []
            for conv in convs:
                try:
                    return conv(value, where)
                except DocumentError as ex:
                    errors.append(str(ex))
            raise DocumentError(errors[0] if errors else f"{where} has the wrong type", where)
        return union
    if tp is Any:
        return lambda value, where: value
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        item = _converter(item_tp, max_text)

        def listed(value, where):
            if not isinstance(value, list):
                raise DocumentError(f"'{where}' must be a list", where)
            if max_items is not None and len(value) > max_items:
                raise DocumentError(f"'{where}' may have at most {max_items} items", where)
            if item_tp is str and all(type(v) is str and len(v) <= max_text for v in value):
                return list(value)
            return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return listed
    if origin is dict or tp is dict:
        args = typing.get_args(tp)
        value_conv = _converter(args[1]) if args else None

        def mapping(value, where):
            if not isinstance(value, dict):
                raise DocumentError(f"'{where}' must be an object", where)
            if value_conv is None:
                return value
            return {k: value_conv(v, f"{where}.{k}") for k, v in value.items()}
        return mapping
    if isinstance(tp, type) and issubclass(tp, Document):
        return lambda value, where: tp.from_dict(value, prefix=f"{where}.")
    if tp is float:
        def number(value, where):
            if type(value) is float:
                return value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DocumentError(f"'{where}' must be a number", where)
            return float(value)
        return number
    if tp is int:
        def integer(value, where):
            if type(value) is int:
                return value
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                raise DocumentError(f"'{where}' must be an integer", where)
            return value
        return integer
    if tp is bool:
        def boolean(value, where):
            if not isinstance(value, bool):
                raise DocumentError(f"'{where}' must be true or false", where)
            return value
        return boolean
    if tp is str:
        def string(value, where):
            if not isinstance(value, str):
                raise DocumentError(f"'{where}' must be a string", where)
            if len(value) > max_text:
                raise DocumentError(f"'{where}' may be at most {max_text} characters", where)
            return value
        return string
    raise TypeError(f"unsupported annotation {tp!r}")


_PLANS: dict[type, list] = {}
_ABSENT = object()


def _plan(cls) -> list:
    """Per field of a document class, once: (name, JSON key, check, required, None means absent, choices)."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = _PLANS[cls] = [
            (f.name, _json_key(f),
             _converter(hints[f.name], cls.LIMITS.get(f.name, DEFAULT_MAX_TEXT), cls.MAX_ITEMS.get(f.name)),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
             f.default is None, cls.CHOICES.get(f.name))
            for f in dataclasses.fields(cls)]
    return plan


class Document:
    """Base of the wire documents: dict conversion with validation."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}
    LIMITS: ClassVar[dict[str, int]] = {}
    """Most characters of a text field (or of each text in a list field); DEFAULT_MAX_TEXT otherwise."""
    MAX_ITEMS: ClassVar[dict[str, int]] = {}

    @classmethod
    def from_dict(cls, data: Any, prefix: str = ""):
        if not isinstance(data, dict):
            raise DocumentError(f"{prefix.rstrip('.') or cls.__name__} must be a JSON object")
        kwargs = {}
        for name, key, check, required, none_is_absent, choices in _plan(cls):
            value = data.get(key, _ABSENT)
            if value is _ABSENT or (value is None and none_is_absent):
                if required:
                    raise DocumentError(f"'{prefix + key}' is required", prefix + key)
                continue
            value = check(value, prefix + key)
            if choices and value is not None and value not in choices:
                raise DocumentError(f"'{prefix + key}' must be one of {', '.join(choices)}, not '{value}'",
                                    prefix + key)
            kwargs[name] = value
        obj = cls(**kwargs)
        obj.validate(prefix)
        return obj

    def validate(self, prefix: str = "") -> None:
        """Checks across fields; subclasses raise DocumentError."""

    def to_dict(self, omit_none: bool = True) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and omit_none:
                continue
            if isinstance(value, Document):
                value = value.to_dict(omit_none)
            elif isinstance(value, list):
                value = [v.to_dict(omit_none) if isinstance(v, Document) else v for v in value]
            out[_json_key(f)] = value
        return out


def _range_check(name: str, value: float | None, lo: float, hi: float) -> None:
    if value is not None and not lo <= value <= hi:
        raise DocumentError(f"'{name}' must be between {lo:g} and {hi:g}", name)


_TASK_STATUSES = tuple(TaskStatus)
_WORKER_STATUSES = tuple(WorkerStatus)


# --- Worker <-> Manager ------------------------------------------------------

@dataclass
class WorkerRegistration(Document):
    secret: str
    platform: str
    supported_task_types: list[str]
    nickname: str
    CHOICES = {"platform": PLATFORMS}
    LIMITS = {"secret": 1024, "nickname": 255, "supported_task_types": NAME_TEXT}
    MAX_ITEMS = {"supported_task_types": NAME_LIST_ITEMS}

    def validate(self, prefix=""):
        if not self.secret:
            raise DocumentError("'secret' may not be empty", "secret")
        if not self.supported_task_types:
            raise DocumentError("'supported_task_types' may not be empty", "supported_task_types")


@dataclass
class WorkerSignOn(Document):
    """Body of /sign-on. `tags` and `resources` are our extensions."""
    supported_task_types: Optional[list[str]] = None
    nickname: Optional[str] = None
    tags: Optional[list[str]] = None
    resources: Optional[dict] = None
    software: Optional[str] = None
    LIMITS = {"nickname": 255, "supported_task_types": NAME_TEXT, "tags": NAME_TEXT, "software": 255}
    MAX_ITEMS = {"supported_task_types": NAME_LIST_ITEMS, "tags": NAME_LIST_ITEMS}


@dataclass
class Command(Document):
    name: str
    settings: dict = field(default_factory=dict)


@dataclass
class FailedBy(Document):
    id: str
    identifier: str = ""
    LIMITS = {"id": 100, "identifier": 300}


@dataclass
class Task(Document):
    """A task as handed to a worker, and as the Server's depsgraph gives it to a Manager.

    Beyond Flamenco 2: job_worker_tag, job_memory_mb, job_files_mode and needs
    are what the Manager needs to schedule, io what our worker fetches and sends
    in upload mode; workers ignore what they don't know.
    """
    id: str = field(metadata={"key": "_id"})
    job: str
    name: str
    status: str
    task_type: str
    commands: list[Command]
    priority: int = 50
    job_priority: int = 50
    job_type: str = ""
    manager: str = ""
    project: str = ""
    user: str = ""
    parents: list[str] = field(default_factory=list)
    worker: Optional[str] = None
    failed_by_workers: list[FailedBy] = field(default_factory=list)
    etag: Optional[str] = field(default=None, metadata={"key": "_etag"})
    updated: Optional[str] = field(default=None, metadata={"key": "_updated"})
    job_worker_tag: Optional[str] = None
    job_memory_mb: Optional[int] = None
    job_files_mode: Optional[str] = None
    io: Optional[dict] = None
    """Upload mode: {inputs, outputs, scratch, input_jobs}, what travels for this task (docs/protocol.md)."""
    needs: Optional[str] = None
    """What it needs of a worker (shared/slots.py); absent, or a word this side does not know:
    its task type's default (a newer peer's vocabulary must not make the document unusable)."""
    CHOICES = {"status": _TASK_STATUSES}


@dataclass
class TaskUpdate(Document):
    """Body of POST /tasks/{id}/update. `resources` is our extension."""
    task_status: Optional[str] = None
    activity: Optional[str] = None
    current_command_idx: int = 0
    task_progress_percentage: float = 0
    command_progress_percentage: float = 0
    log: Optional[str] = None
    metrics: Optional[dict] = None
    resources: Optional[dict] = None
    CHOICES = {"task_status": _TASK_STATUSES}
    LIMITS = {"log": MAX_LOG_TEXT}

    def validate(self, prefix=""):
        _range_check("task_progress_percentage", self.task_progress_percentage, 0, 100)
        _range_check("command_progress_percentage", self.command_progress_percentage, 0, 100)
        _range_check("current_command_idx", self.current_command_idx, 0, MAX_COMMAND_IDX)


@dataclass
class TaskRequest(Document):
    """Body of POST /task from a worker that runs several tasks at once (our extension): what it
    has free, and the tasks it holds (running, or their last report not yet sent), so that the
    Manager re-serves only a task whose answer was lost."""
    free_slots: int
    free_light_slots: int = 0
    free_gpus: Optional[int] = None
    free_memory_mb: Optional[int] = None
    running: list[str] = field(default_factory=list)

    def validate(self, prefix=""):
        for name in ("free_slots", "free_light_slots", "free_gpus"):
            _range_check(name, getattr(self, name), 0, MAX_SLOTS)
        if self.free_memory_mb is not None and self.free_memory_mb < 0:
            raise DocumentError("'free_memory_mb' may not be negative", "free_memory_mb")
        if self.free().empty:
            raise DocumentError("nothing is free: ask for a task when a slot is", "free_slots")
        if len(self.running) > 4 * MAX_SLOTS:
            raise DocumentError(f"'running' may list at most {4 * MAX_SLOTS} tasks", "running")

    def free(self) -> Free:
        return Free(self.free_slots, self.free_light_slots, self.free_gpus, self.free_memory_mb)


@dataclass
class RunningTask(Document):
    """A task a worker runs, as the Manager shows and reports it."""
    id: str
    job: str
    name: str = ""
    needs: str = ""


@dataclass
class WorkerStatusRequest(Document):
    status_requested: str
    CHOICES = {"status_requested": _WORKER_STATUSES}


@dataclass
class MayKeepRunning(Document):
    may_keep_running: bool
    reason: Optional[str] = None
    status_requested: Optional[str] = None


@dataclass
class FileProduced(Document):
    paths: list[str]

    def validate(self, prefix=""):
        if not self.paths:
            raise DocumentError("'paths' may not be empty", "paths")


# --- Manager <-> Server -------------------------------------------------------

@dataclass
class UpstreamTaskUpdate(Document):
    """One task update as the Manager sends it up. `id` makes a resend harmless."""
    id: str = field(metadata={"key": "_id"})
    task_id: str
    received_on_manager: str
    worker: str = ""
    task_status: Optional[str] = None
    activity: Optional[str] = None
    task_progress_percentage: float = 0
    current_command_idx: int = 0
    command_progress_percentage: float = 0
    log: Optional[str] = None
    log_tail: Optional[str] = None
    failed_by_workers: Optional[list[FailedBy]] = None
    metrics: Optional[dict] = None
    CHOICES = {"task_status": _TASK_STATUSES}
    LIMITS = {"log": MAX_LOG_TEXT}
    MAX_ITEMS = {"failed_by_workers": 1000}

    def validate(self, prefix=""):
        _range_check("task_progress_percentage", self.task_progress_percentage, 0, 100)
        _range_check("command_progress_percentage", self.command_progress_percentage, 0, 100)
        _range_check("current_command_idx", self.current_command_idx, 0, MAX_COMMAND_IDX)


@dataclass
class WorkerActionResult(Document):
    """The Manager applied (ok) or could not apply a worker action the Server sent it."""
    id: str
    ok: bool
    message: str = ""


@dataclass
class TaskUpdateBatch(Document):
    updates: list[UpstreamTaskUpdate]
    worker_actions_done: list[WorkerActionResult] = field(default_factory=list)
    queue_length: Optional[int] = None
    """Items waiting in the Manager's upstream queue (the farm overview shows it)."""


@dataclass
class UploadRequest(Document):
    job: str
    task: str


@dataclass
class WorkerAction(Document):
    """An admin's request for one of the Manager's workers; `id` is confirmed in a later batch.

    action: sleep | wake | shutdown (with `lazy`), forget, set-tags (`tags`),
    clear-blocklist, sleep-schedule (`schedule`)."""
    id: str
    worker: str
    action: str
    lazy: bool = False
    tags: Optional[list[str]] = None
    schedule: Optional[dict] = None


@dataclass
class TaskUpdateResponse(Document):
    modified_count: int = 0
    handled_update_ids: list[str] = field(default_factory=list)
    cancel_task_ids: list[str] = field(default_factory=list)
    upload_task_file_queue: list[UploadRequest] = field(default_factory=list)
    worker_actions: list[WorkerAction] = field(default_factory=list)


@dataclass
class UpstreamNotification(Document):
    """Body of the Manager's startup and update calls."""
    meta: dict = field(metadata={"key": "_meta"})
    manager_url: str
    variables: dict = field(default_factory=dict)
    nr_of_workers: int = 0
    worker_task_types: list[str] = field(default_factory=list)
    version: Optional[str] = None
    LIMITS = {"manager_url": 500, "worker_task_types": NAME_TEXT, "version": 100}
    MAX_ITEMS = {"worker_task_types": NAME_LIST_ITEMS}

    def validate(self, prefix=""):
        if self.meta.get("version") != 2:
            raise DocumentError("'_meta.version' must be 2", "_meta")
        _range_check("nr_of_workers", self.nr_of_workers, 0, MAX_COUNT)


@dataclass
class ScheduledTasks(Document):
    depsgraph: list[Task]


@dataclass
class WorkerInfo(Document):
    """One worker as its Manager reports it to the Server."""
    id: str = field(metadata={"key": "_id"})
    nickname: str
    status: str
    platform: str = ""
    supported_task_types: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    current_task: Optional[str] = None
    current_job: Optional[str] = None
    last_seen: Optional[str] = None
    status_requested: Optional[str] = None
    resources: Optional[dict] = None
    running_tasks: list[RunningTask] = field(default_factory=list)
    """Every task it runs (a worker with slots runs several); current_task is one of them."""
    CHOICES = {"status": _WORKER_STATUSES}
    LIMITS = {"id": 100, "nickname": 255, "platform": 20, "supported_task_types": NAME_TEXT, "tags": NAME_TEXT,
              "current_task": 100, "current_job": 100, "last_seen": 40}
    MAX_ITEMS = {"supported_task_types": NAME_LIST_ITEMS, "tags": NAME_LIST_ITEMS}


@dataclass
class WorkerReport(Document):
    """Body of the Manager's worker report. `complete` means workers not listed are gone."""
    workers: list[WorkerInfo]
    complete: bool = False
