"""The types a job type's setting can have, said once for the Server, the add-on and the CLI.

A job type's schema (GET /api/job-types) gives every setting one of the type names
below. The Server checks submitted JSON with `check` (strict: 3 is an integer, "3"
is not). The add-on and the CLI first turn what a person typed or a field holds into
a value with `parse` ("3" -> 3, "yes" -> True, one list item per line), then `check`
it the same way the Server will. A type name that is not here is an error everywhere
(UnknownSettingType), never quietly taken as text.

Messages name no setting: callers put the setting's key or label in front.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from .frames import DEFAULT_MAX_FRAMES, FrameRangeError, parse_frames


class SettingValueError(ValueError):
    """A value that does not fit its setting's type, range or choices."""


class UnknownSettingType(ValueError):
    """A schema names a type that is not in TYPES."""


@dataclass(frozen=True)
class SettingType:
    name: str
    json_type: str
    """The JSON (and OpenAPI) type of a value: string, integer, number, boolean or array (of strings)."""
    described: str
    """What a value is, for a person: 'a whole number', 'yes or no', ..."""
    empty: Any
    """The value of a field left empty."""
    subtype: str = ""
    """What the string holds, for a UI: FILE_PATH, FRAMES or CHOICE."""


STRING, INTEGER, NUMBER, BOOLEAN, FRAMES, PATH, CHOICE, LIST = (
    "string", "integer", "number", "boolean", "frames", "path", "choice", "list")

TYPES: dict[str, SettingType] = {t.name: t for t in (
    SettingType(STRING, "string", "text", ""),
    SettingType(INTEGER, "integer", "a whole number", 0),
    SettingType(NUMBER, "number", "a number", 0.0),
    SettingType(BOOLEAN, "boolean", "yes or no", False),
    SettingType(FRAMES, "string", "a frame range like 1-10,20", "", "FRAMES"),
    SettingType(PATH, "string", "a path", "", "FILE_PATH"),
    SettingType(CHOICE, "string", "one of the choices", "", "CHOICE"),
    SettingType(LIST, "array", "a list of lines", []),
)}
NAMES = tuple(TYPES)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
MAX_TEXT = 4096
"""Characters of a text setting, and of each line of a list (a frame range: MAX_FRAMES_TEXT)."""
MAX_FRAMES_TEXT = 64 * 1024
MAX_LIST_ITEMS = 1000


def get(name: str) -> SettingType:
    try:
        return TYPES[name]
    except (KeyError, TypeError):
        raise UnknownSettingType(f"unknown setting type '{name}'; the known types are "
                                 f"{', '.join(NAMES)}") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def parse(type_name: str, value: Any) -> Any:
    """What a person typed (text) or a UI field holds, as a value of the type; SettingValueError if it
    cannot be one. Values that already have the type pass through; `check` does the rest."""
    t = get(type_name)
    if t.json_type == "string":
        return value if isinstance(value, str) else str(value)
    if t.json_type == "boolean":
        if isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
            raise SettingValueError(f"must be {t.described}, not '{value}'")
        return bool(value)
    if t.json_type == "array":
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise SettingValueError(f"must be {t.described} or a JSON list, not '{value}'") from None
            else:
                return [line for line in value.splitlines() if line.strip()]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise SettingValueError(f"must be {t.described}, not {_json_type(value)}")
    try:
        if t.json_type == "integer":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value.strip() if isinstance(value, str) else value)
        return float(value)
    except (TypeError, ValueError):
        raise SettingValueError(f"must be {t.described}, not '{value}'") from None


def check(type_name: str, value: Any, *, required: bool = False, choices: Iterable | None = None,
          minimum: float | None = None, maximum: float | None = None,
          max_frames: int = DEFAULT_MAX_FRAMES) -> Any:
    """A JSON value checked against the type and the setting's limits, normalised (an integer-valued
    float becomes an int, an int a float for 'number'); SettingValueError otherwise."""
    t = get(type_name)
    if t.json_type == "string":
        if not isinstance(value, str):
            raise SettingValueError(f"must be a string, not {_json_type(value)}")
        if required and not value.strip():
            raise SettingValueError("may not be empty")
        limit = MAX_FRAMES_TEXT if t.name == FRAMES else MAX_TEXT
        if len(value) > limit:
            raise SettingValueError(f"may be at most {limit} characters")
        if t.name == FRAMES:
            try:
                parse_frames(value, max_frames)
            except FrameRangeError as ex:
                raise SettingValueError(str(ex)) from None
    elif t.json_type == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not value.is_integer()):
            raise SettingValueError(f"must be an integer, not {_json_type(value)}")
        value = int(value)
    elif t.json_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingValueError(f"must be a number, not {_json_type(value)}")
        value = float(value)
    elif t.json_type == "boolean":
        if not isinstance(value, bool):
            raise SettingValueError(f"must be true or false, not {_json_type(value)}")
    elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingValueError("must be a list of strings")
    elif len(value) > MAX_LIST_ITEMS or any(len(v) > MAX_TEXT for v in value):
        raise SettingValueError(f"may have at most {MAX_LIST_ITEMS} lines of at most {MAX_TEXT} characters")
    if choices is not None and value not in choices:
        raise SettingValueError(f"must be one of {', '.join(map(str, choices))}, not '{value}'")
    if t.json_type in ("integer", "number"):
        if minimum is not None and value < minimum:
            raise SettingValueError(f"must be at least {minimum:g}, not {value:g}")
        if maximum is not None and value > maximum:
            raise SettingValueError(f"must be at most {maximum:g}, not {value:g}")
    return value
