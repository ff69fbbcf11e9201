"""Job types as the Server describes them (GET /api/job-types), and their settings.

The panel is built from this schema, so a job type added on the Server shows
up in Blender without a new add-on. Some settings the add-on fills in itself
from the scene (frames, the .blend's path, the output path, ...); the rest are
shown as generic fields whose values are kept per job type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STRING, INT, FLOAT, BOOL, LIST = "string", "int", "float", "bool", "list"
FILES_MODES = ("shared", "upload")

_TYPE_ALIASES = {
    "str": STRING, "string": STRING, "text": STRING, "path": STRING, "filepath": STRING,
    "file_path": STRING, "dir_path": STRING, "frames": STRING, "frame_range": STRING,
    "enum": STRING, "choice": STRING,
    "int": INT, "integer": INT,
    "float": FLOAT, "number": FLOAT, "double": FLOAT,
    "bool": BOOL, "boolean": BOOL,
    "list": LIST, "array": LIST, "list[str]": LIST, "string_list": LIST, "lines": LIST,
}

AUTO_KEYS = frozenset({
    "filepath", "blendfile", "frames", "chunk_size", "render_output", "format",
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
    modes: tuple = FILES_MODES
    """Where the files are ('shared', 'upload') when the setting means something; greyed out otherwise."""

    @property
    def title(self) -> str:
        return self.label or self.key.replace("_", " ").capitalize()

    def applies(self, files_mode: str) -> bool:
        return files_mode in self.modes

    @property
    def auto(self) -> bool:
        return self.key in AUTO_KEYS


@dataclass(frozen=True)
class JobType:
    name: str
    label: str = ""
    description: str = ""
    settings: tuple[SettingSpec, ...] = field(default_factory=tuple)
    files_modes: tuple = FILES_MODES

    @property
    def title(self) -> str:
        return self.label or self.name

    def works_in(self, files_mode: str) -> bool:
        return files_mode in self.files_modes

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
    raw_type = str(raw.get("type") or "string").lower()
    typ = _TYPE_ALIASES.get(raw_type, STRING)
    choices = raw.get("choices") or ()
    if isinstance(choices, dict):
        choices = tuple(choices.keys())
    choices = tuple(str(c) if typ == STRING else c for c in choices)
    subtype = ""
    if raw_type in ("path", "filepath", "file_path"):
        subtype = "FILE_PATH"
    elif raw_type == "dir_path":
        subtype = "DIR_PATH"
    elif raw.get("subtype"):
        subtype = str(raw["subtype"]).upper()
    return SettingSpec(
        key=raw["key"], type=typ, default=raw.get("default"), required=bool(raw.get("required")),
        choices=choices, label=str(raw.get("label") or ""),
        description=str(raw.get("description") or ""),
        minimum=raw.get("min", raw.get("minimum")), maximum=raw.get("max", raw.get("maximum")),
        subtype=subtype, raw_type=raw_type, modes=_modes(raw.get("modes")))


def _modes(raw: Any) -> tuple:
    """The files modes a schema lists; all of them when it lists none (an older Server)."""
    if isinstance(raw, list) and raw and all(isinstance(m, str) for m in raw):
        return tuple(raw)
    return FILES_MODES


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
        specs = tuple(_parse_setting(s, f"job type '{name}'") for s in settings)
        out.append(JobType(name=name, label=str(raw.get("label") or ""),
                           description=str(raw.get("description") or ""), settings=specs,
                           files_modes=_modes(raw.get("files_modes"))))
    return out


def coerce(spec: SettingSpec, value: Any) -> Any:
    """`value` as the type the schema asks for; JobTypeError naming the setting otherwise."""
    name = spec.title
    if value is None:
        return None
    try:
        if spec.type == BOOL:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if spec.type == INT:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            value = int(value)
        elif spec.type == FLOAT:
            value = float(value)
        elif spec.type == LIST:
            if isinstance(value, str):
                value = [line for line in value.splitlines() if line.strip()]
            value = list(value)
        else:
            value = str(value)
    except (TypeError, ValueError):
        raise JobTypeError(f"'{name}' must be {_a(spec.type)}, not '{value}'") from None
    if spec.type in (INT, FLOAT):
        if spec.minimum is not None and value < spec.minimum:
            raise JobTypeError(f"'{name}' must be at least {spec.minimum}, not {value}")
        if spec.maximum is not None and value > spec.maximum:
            raise JobTypeError(f"'{name}' must be at most {spec.maximum}, not {value}")
    if spec.choices and value not in spec.choices and not (value == "" and not spec.required):
        raise JobTypeError(f"'{name}' must be one of {', '.join(map(str, spec.choices))}, not '{value}'")
    return value


def _a(typ: str) -> str:
    return {INT: "a whole number", FLOAT: "a number", BOOL: "yes or no", LIST: "a list"}.get(typ, "text")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def build_settings(job_type: JobType, generic: dict[str, Any], computed: dict[str, Any],
                   files_mode: str | None = None) -> dict[str, Any]:
    """The settings to submit: schema defaults, then the panel's generic values, then the
    values the add-on computed. Computed keys the type does not know are left out; empty
    optional values are dropped so the Server applies its own defaults; so are settings
    that do not apply to `files_mode`."""
    out: dict[str, Any] = {}
    for spec in job_type.settings:
        if files_mode is not None and not spec.applies(files_mode):
            continue
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
