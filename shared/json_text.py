"""JSON that stays JSON: strict parsing of what comes in, valid text for what goes out.

Python's json module reads and writes NaN and Infinity, which are not JSON: a
browser's JSON.parse refuses a whole answer with one in it. It also nests as
deep as the stack allows and takes texts that no database column can store
(NUL, unpaired surrogates). `loads` refuses all of these (ValueError); `dumps`
never writes a non-finite number (null instead, for what was stored before).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 64
"""Nesting of arrays and objects a JSON body may have; no document of ours needs a tenth of it."""


def _finite(value: Any) -> Any:
    """`value` with every NaN and infinity replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any, **kw: Any) -> str:
    """JSON text that is always valid JSON: non-finite numbers (stored before they were refused) become null."""
    try:
        return json.dumps(value, allow_nan=False, **kw)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False, **kw)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """ValueError when `value` nests lists and objects deeper than `max_depth`, or has a text (key or
    value) with NUL or an unpaired surrogate, which no database column can store. Iterative: nothing
    to exhaust the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or not _encodable(item):
                raise ValueError("a text may not contain NUL or unpaired surrogates")
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise ValueError(f"nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, str)))


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def loads(raw: bytes | str) -> Any:
    """Parse a JSON body strictly: ValueError for invalid JSON, NaN/Infinity, nesting over
    MAX_JSON_DEPTH, or texts no database can store (check_json_value)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_json_value(value)
    return value
