"""Job types as the Server describes them (GET /api/job-types), and their settings.

The panel is built from this schema, so a job type added on the Server shows
up in Blender without a new add-on. Some settings the add-on fills in itself
from the scene (frames, the .blend's path, the output path, ...); the rest are
shown as generic fields whose values are kept per job type.

The setting types are shared/setting_types.py's, as the Server uses them. A job
type with a setting of a type this add-on does not know is listed with an error
(`JobType.error`) and cannot be submitted; it is never guessed to be text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .sharedcode import setting_types

ST = setting_types
STRING, INT, FLOAT, BOOL, LIST = ST.STRING, ST.INTEGER, ST.NUMBER, ST.BOOLEAN, ST.LIST
"""The kinds of value a field holds (frames, paths and choices are strings)."""

AUTO_KEYS = frozenset({
    "filepath", "blendfile", "frames", "frame", "chunk_size", "render_output", "format",
    "output_file_extension", "fps", "blender_cmd", "images_or_video", "video",
    "create_video", "make_video",
})
"""Settings the add-on fills from the scene and its own panel fields, never shown generically."""


class JobTypeError(ValueError):
    """Settings that do not fit the job type's schema; the message names the setting."""


@dataclass(frozen=True)
class SettingSpec:
    key: str
    type: str = STRING
    default: Any = None
    required: bool = False
    choices: tuple = ()
    label: str = ""
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    subtype: str = ""
    raw_type: str = ""

    @property
    def title(self) -> str:
        return self.label or self.key.replace("_", " ").capitalize()

    @property
    def auto(self) -> bool:
        return self.key in AUTO_KEYS


@dataclass(frozen=True)
class JobType:
    name: str
    label: str = ""
    description: str = ""
    settings: tuple[SettingSpec, ...] = field(default_factory=tuple)
    artist_visible: bool = True
    error: str = ""
    """Why this add-on cannot submit the type (a setting of a type it does not know)."""

    @property
    def title(self) -> str:
        return self.label or self.name

    def spec(self, key: str) -> SettingSpec | None:
        return next((s for s in self.settings if s.key == key), None)

    def has(self, key: str) -> bool:
        return self.spec(key) is not None

    @property
    def generic_settings(self) -> tuple[SettingSpec, ...]:
        """The settings the panel shows as plain fields."""
        return tuple(s for s in self.settings if not s.auto)

    def defaults(self) -> dict[str, Any]:
        return {s.key: s.default for s in self.settings if s.default is not None}


def _parse_setting(raw: Any, where: str) -> SettingSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("key"), str) or not raw["key"]:
        raise JobTypeError(f"{where}: a setting without a 'key'")
    raw_type = str(raw.get("type") or "")
    try:
        kind = ST.get(raw_type)
    except ST.UnknownSettingType as ex:
        raise JobTypeError(f"{where}: setting '{raw['key']}' has an {ex}; this add-on is older than the "
                           "Server, update it") from None
    choices = raw.get("choices") or ()
    if isinstance(choices, dict):
        choices = tuple(choices.keys())
    choices = tuple(str(c) if kind.json_type == STRING else c for c in choices)
    subtype = "FILE_PATH" if kind.subtype == "FILE_PATH" else str(raw.get("subtype") or "").upper()
    return SettingSpec(
        key=raw["key"], type=STRING if kind.json_type == "string" else kind.name, default=raw.get("default"), required=bool(raw.get("required")),
        choices=choices, label=str(raw.get("label") or ""),
        description=str(raw.get("description") or ""),
        minimum=raw.get("min", raw.get("minimum")), maximum=raw.get("max", raw.get("maximum")),
        subtype=subtype, raw_type=raw_type)


def parse_job_types(data: Any) -> list[JobType]:
    """From the Server's answer: a list of types, or {job_types: [...]}, or {name: {...}}."""
    if isinstance(data, dict) and isinstance(data.get("job_types"), list):
        data = data["job_types"]
    elif isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        data = [{"name": k, **v} for k, v in data.items()]
    if not isinstance(data, list):
        raise JobTypeError("the Server's job-type list is not a list")
    out = []
    for i, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise JobTypeError(f"job type #{i} is not a table")
        name = raw.get("name") or raw.get("type") or raw.get("key")
        if not isinstance(name, str) or not name:
            raise JobTypeError(f"job type #{i} has no name")
        settings = raw.get("settings") or raw.get("schema") or []
        if isinstance(settings, dict):
            settings = [{"key": k, **v} for k, v in settings.items()]
        error = ""
        try:
            specs = tuple(_parse_setting(s, f"job type '{name}'") for s in settings)
        except JobTypeError as ex:
            if "unknown setting type" not in str(ex):
                raise
            specs, error = (), str(ex)
        out.append(JobType(name=name, label=str(raw.get("label") or ""),
                           description=str(raw.get("description") or ""), settings=specs,
                           artist_visible=raw.get("artist_visible", True) is not False, error=error))
    return out


def coerce(spec: SettingSpec, value: Any) -> Any:
    """`value` (typed, or text from a field) as the schema asks for, checked the way the Server
    checks it; JobTypeError naming the setting otherwise."""
    if value is None:
        return None
    try:
        value = ST.parse(spec.raw_type or spec.type, value)
        if spec.choices and value == "" and not spec.required:
            return value
        return ST.check(spec.raw_type or spec.type, value, choices=spec.choices or None,
                        minimum=spec.minimum, maximum=spec.maximum)
    except (ST.SettingValueError, ST.UnknownSettingType) as ex:
        raise JobTypeError(f"'{spec.title}' {ex}") from None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def build_settings(job_type: JobType, generic: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """The settings to submit: schema defaults, then the panel's generic values, then the
    values the add-on computed. Computed keys the type does not know are left out; empty
    optional values are dropped so the Server applies its own defaults."""
    out: dict[str, Any] = {}
    for spec in job_type.settings:
        if spec.key in computed and not _empty(computed[spec.key]):
            value = computed[spec.key]
        elif spec.key in generic and not _empty(generic[spec.key]):
            value = generic[spec.key]
        else:
            value = spec.default
        if _empty(value):
            if spec.required:
                raise JobTypeError(f"'{spec.title}' is required for {job_type.title} jobs")
            continue
        out[spec.key] = coerce(spec, value)
    return out


def load_values(text: str) -> dict[str, dict[str, Any]]:
    """The per-job-type generic values stored in the scene as JSON; {} when absent or broken."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def dump_values(values: dict[str, dict[str, Any]]) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"))
