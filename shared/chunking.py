"""Slicing a list into pieces of one size: ids into SQL `IN (...)` lists, and the like.

(shared/frames.py keeps its own loop for frame chunks: the add-on carries a copy of it,
which may import nothing else.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

SQL_IN_CHUNK = 500
"""Ids in one `IN (...)` list: well below SQLite's limit on a statement's variables."""


def chunks(items: Sequence[T], size: int = SQL_IN_CHUNK) -> Iterator[list[T]]:
    """Consecutive slices of `items`, `size` long (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be 1 or more, not {size}")
    for i in range(0, len(items), size):
        yield list(items[i:i + size])
