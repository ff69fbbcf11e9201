"""Path variables: '{blender}', '{render}', ... with a value per platform.

One-way variables are only expanded ('{blender}' -> '/usr/bin/blender' on a
Linux worker). Two-way variables are also found back in paths: an artist's
'/mnt/render/shot1' becomes '{render}/shot1' at submission, and a Windows
worker gets 'R:/shot1'. Replacement in either direction tries the longest
candidate first, so '/mnt/render/proj' wins over '/mnt/render'.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

PLATFORMS = ("linux", "windows", "darwin")
AUDIENCES = ("all", "workers", "users")
DIRECTIONS = ("oneway", "twoway")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class VariableError(ValueError):
    """A variable definition that is not usable; the message names it."""


def this_platform() -> str:
    """Which of PLATFORMS this computer is (anything else counts as linux)."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


@dataclass(frozen=True)
class VariableValue:
    value: str
    platforms: tuple[str, ...] = PLATFORMS
    audience: str = "all"

    def applies(self, platform: str, audience: str) -> bool:
        return platform in self.platforms and (self.audience == "all" or audience == "all"
                                               or self.audience == audience)


@dataclass(frozen=True)
class Variable:
    name: str
    direction: str = "oneway"
    values: tuple[VariableValue, ...] = field(default_factory=tuple)

    def value_for(self, platform: str, audience: str) -> str | None:
        for v in self.values:
            if v.applies(platform, audience):
                return v.value
        return None


def _parse_value(name: str, direction: str, raw: Any) -> VariableValue:
    if not isinstance(raw, dict):
        raise VariableError(f"variable '{name}': each value must be a table with 'value' and 'platform(s)'")
    value = raw.get("value")
    if not isinstance(value, str):
        raise VariableError(f"variable '{name}': 'value' must be a string")
    if "platforms" in raw:
        platforms = raw["platforms"]
        if not isinstance(platforms, list) or not platforms:
            raise VariableError(f"variable '{name}': 'platforms' must be a non-empty list")
    elif "platform" in raw:
        platforms = [raw["platform"]]
    else:
        platforms = list(PLATFORMS)
    for p in platforms:
        if p not in PLATFORMS:
            raise VariableError(f"variable '{name}': unknown platform '{p}', expected one of {', '.join(PLATFORMS)}")
    audience = raw.get("audience", "all")
    if audience not in AUDIENCES:
        raise VariableError(f"variable '{name}': unknown audience '{audience}', expected one of {', '.join(AUDIENCES)}")
    if direction == "twoway" and len(value) > 1:
        value = value.rstrip("/\\") or value
    return VariableValue(value=value, platforms=tuple(platforms), audience=audience)


class Variables:
    """A set of variables, as read from a config and sent upstream to the Server."""

    def __init__(self, variables: dict[str, Variable] | None = None):
        self.variables: dict[str, Variable] = dict(variables or {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Variables":
        """From `{name: {direction, values: [{value, platform|platforms, audience}]}}`.

        A plain string value is shorthand for a one-way variable valid everywhere.
        """
        if not isinstance(data, dict):
            raise VariableError("variables must be a table of name -> definition")
        out = {}
        for name, spec in data.items():
            if not _NAME.match(name):
                raise VariableError(f"'{name}' is not a valid variable name")
            if isinstance(spec, str):
                spec = {"values": [{"value": spec}]}
            if not isinstance(spec, dict):
                raise VariableError(f"variable '{name}' must be a table or a string")
            direction = spec.get("direction", "oneway")
            if direction not in DIRECTIONS:
                raise VariableError(f"variable '{name}': direction must be 'oneway' or 'twoway'")
            values = spec.get("values", [])
            if not isinstance(values, list):
                raise VariableError(f"variable '{name}': 'values' must be a list")
            out[name] = Variable(name, direction, tuple(_parse_value(name, direction, v) for v in values))
        return cls(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            v.name: {
                "direction": v.direction,
                "values": [{"value": val.value, "platforms": list(val.platforms), "audience": val.audience}
                           for val in v.values],
            }
            for v in self.variables.values()
        }

    def merged(self, other: "Variables") -> "Variables":
        """These variables with `other`'s added (other wins on a name clash)."""
        return Variables({**self.variables, **other.variables})

    def values_for(self, platform: str, audience: str = "workers") -> dict[str, str]:
        out = {}
        for name, var in self.variables.items():
            value = var.value_for(platform, audience)
            if value is not None:
                out[name] = value
        return out

    def expand(self, text: str, platform: str, audience: str = "workers") -> str:
        """Replace every '{name}' in text by its value for the platform."""
        values = self.values_for(platform, audience)
        for name in sorted(values, key=len, reverse=True):
            text = text.replace("{" + name + "}", values[name])
        return text

    def expand_all(self, obj: Any, platform: str, audience: str = "workers") -> Any:
        """`expand` on every string in a JSON-like structure (lists and dicts are copied)."""
        if isinstance(obj, str):
            return self.expand(obj, platform, audience)
        if isinstance(obj, list):
            return [self.expand_all(x, platform, audience) for x in obj]
        if isinstance(obj, dict):
            return {k: self.expand_all(v, platform, audience) for k, v in obj.items()}
        return obj

    def to_variables(self, path: str, platform: str, audience: str = "users") -> str:
        """Replace the longest two-way value that `path` starts with by its '{name}'."""
        candidates = []
        for name, var in self.variables.items():
            if var.direction != "twoway":
                continue
            value = var.value_for(platform, audience)
            if value:
                candidates.append((value, name))
        candidates.sort(key=lambda c: len(c[0]), reverse=True)
        norm = path.replace("\\", "/") if platform == "windows" else path
        for value, name in candidates:
            v = value.replace("\\", "/") if platform == "windows" else value
            same = norm.lower().startswith(v.lower()) if platform == "windows" else norm.startswith(v)
            if same and (len(norm) == len(v) or norm[len(v)] == "/" or v.endswith("/")):
                return "{" + name + "}" + norm[len(v):]
        return path

    def translate(self, path: str, from_platform: str, to_platform: str) -> str:
        """A path as seen on one platform, as seen on another (through two-way variables)."""
        return self.expand(self.to_variables(path, from_platform, "all"), to_platform, "all")
