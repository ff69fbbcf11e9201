"""Configuration files of every service: a TOML document read into a tree of dataclasses.

Each value is checked against the type its field declares, so that a mistake in a file is
refused at start-up with the setting's dotted name (`'upstream.fetch_interval' must be a
number, not "x"`) instead of failing later wherever the value is used. A key no field has
is refused too: a misspelt setting must not fall back to its default without a word.

A field whose type is a dataclass is a TOML table (a section) and is read the same way.
The types a field may have: bool, int, float (an integer is accepted), str, Path (from a
string), list[T] of those, `T | None`, and dataclasses. A service whose file has another
layout (the Manager's [variables], the worker's [pre_task_check]) reads those keys itself
and gives the rest to `apply`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the setting."""


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed document; a missing, unreadable or malformed file is a ConfigError naming it."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except OSError as ex:
        raise ConfigError(f"cannot read config file '{path}': {ex}") from None
    except tomllib.TOMLDecodeError as ex:
        raise ConfigError(f"config file '{path}' is not valid TOML: {ex}") from None


def apply(obj: T, data: Mapping[str, Any], prefix: str = "") -> T:
    """A copy of the dataclass `obj` with the values of `data`, each checked against its field's type.

    `prefix` is what the error messages put before a key ('upstream.' for the keys of [upstream]).
    """
    if not isinstance(data, Mapping):
        where = f"[{prefix.rstrip('.')}]" if prefix else "a configuration"
        raise ConfigError(f"{where} must be a table, not {_shown(data)}")
    hints = typing.get_type_hints(type(obj))
    known = sorted(f.name for f in dataclasses.fields(obj) if f.init)
    changes = {}
    for key, value in data.items():
        if key not in known:
            kind = "section" if isinstance(value, Mapping) else "setting"
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known: {', '.join(known)}"
            raise ConfigError(f"unknown {kind} '{prefix}{key}'; {hint}")
        changes[key] = convert(prefix + key, value, hints[key], getattr(obj, key))
    return dataclasses.replace(obj, **changes)


def convert(name: str, value: Any, annotation: Any, current: Any = None) -> Any:
    """`value` checked against `annotation` (and converted: an int to float, a str to Path);
    `current` is the dataclass a table is applied to."""
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise ConfigError(f"[{name}] must be a table, not {_shown(value)}")
        return apply(annotation() if current is None else current, value, name + ".")
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        if len(options) != 1:
            raise TypeError(f"'{name}': no loader for a setting of type {annotation}")
        return convert(name, value, options[0], current)
    if origin is list:
        (item_type,) = args
        if not isinstance(value, list):
            raise ConfigError(f"'{name}' must be a list of {_PLURAL[item_type]}, not {_shown(value)}")
        for item in value:
            if not _is(item, item_type):
                raise ConfigError(f"'{name}' must be a list of {_PLURAL[item_type]}, not {_shown(value)}")
        return [_as(item, item_type) for item in value]
    if annotation not in _WHAT:
        raise TypeError(f"'{name}': no loader for a setting of type {annotation}")
    if not _is(value, annotation):
        raise ConfigError(f"'{name}' must be {_WHAT[annotation]}, not {_shown(value)}")
    return _as(value, annotation)


_WHAT = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
         Path: "a path (a string)"}
_PLURAL = {bool: "true or false values", int: "whole numbers", float: "numbers", str: "strings",
           Path: "paths"}


def _is(value: Any, annotation: Any) -> bool:
    if annotation is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # True is an int to Python, never to a config file
    if annotation is int:
        return isinstance(value, int)
    if annotation is float:
        return isinstance(value, (int, float)) and not math.isnan(value)
    if annotation is Path:
        return isinstance(value, (str, os.PathLike))
    return isinstance(value, annotation)


def _as(value: Any, annotation: Any) -> Any:
    if annotation is float:
        return float(value)
    if annotation is Path:
        return Path(value)
    return value


def _shown(value: Any) -> str:
    """A value as the file spelt it, shortened: "x", 5, true, [1, 2], a table."""
    if isinstance(value, Mapping):
        return "a table"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
