"""Frame range specifications: "1-10,12,20-30x2".

A spec is a comma-separated list of items; an item is a frame (`12`), an
inclusive range (`1-10`, also written the Blender way `1..10`) or a range with
a step (`20-30x2` = 20, 22, ..., 30). Frames may be negative (`-5--1`).
Parsing gives a sorted list without duplicates; merging gives back the
shortest spec a greedy pass finds, so `parse(merge(frames)) == frames`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

DEFAULT_MAX_FRAMES = 1_000_000
MAX_FRAME = 1_048_574
"""Blender's own limit (MAXFRAME): frames, ends and steps beyond it are refused before any arithmetic."""

_ITEM = re.compile(r"^(-?\d+)(?:(?:-|\.\.)(-?\d+)(?:x(\d+))?)?$")


class FrameRangeError(ValueError):
    """A frame spec that cannot be parsed; the message says which part and why."""


def parse_frames(spec: str, max_frames: int = DEFAULT_MAX_FRAMES) -> list[int]:
    """Sorted, unique frame numbers of `spec`; FrameRangeError for anything malformed."""
    if not isinstance(spec, str):
        raise FrameRangeError(f"frame range must be a string, not {type(spec).__name__}")
    if not spec.strip():
        raise FrameRangeError("frame range is empty")
    ranges: list[range] = []
    total = 0
    for raw in spec.split(","):
        item = raw.strip().replace(" ", "")
        if not item:
            raise FrameRangeError(f"empty item in frame range '{_show(spec)}'")
        match = _ITEM.match(item)
        if not match:
            raise FrameRangeError(f"'{_show(item)}' is not a frame, a range 'a-b' or a stepped range 'a-bxN'")
        start = _number(match.group(1), item)
        end = _number(match.group(2), item) if match.group(2) is not None else start
        step = _number(match.group(3), item) if match.group(3) is not None else 1
        if end < start:
            raise FrameRangeError(f"'{item}' ends before it starts ({end} < {start})")
        if step < 1:
            raise FrameRangeError(f"'{item}' has a step of {step}; the step must be 1 or more")
        r = range(start, end + 1, step)
        total += len(r)
        if total > max_frames:
            raise FrameRangeError(f"frame range '{_show(spec)}' has more than {max_frames} frames")
        ranges.append(r)
    if len(ranges) == 1:
        return list(ranges[0])
    return sorted({frame for r in ranges for frame in r})


def _show(text: str) -> str:
    """Text for an error message, cut short: a spec may be megabytes long."""
    return text if len(text) <= 60 else text[:57] + "..."


def _number(text: str, item: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > 7 or int(digits) > MAX_FRAME:
        raise FrameRangeError(f"'{_show(item)}': frame numbers must be from -{MAX_FRAME} to {MAX_FRAME} "
                              "(Blender's limit)")
    return int(text)


def _runs(frames: Sequence[int], allow_steps: bool) -> Iterator[tuple[int, int, int]]:
    """(start, end, step) runs covering the sorted, unique `frames`, greedily longest first."""
    i, n = 0, len(frames)
    while i < n:
        if i + 1 == n:
            yield frames[i], frames[i], 1
            return
        step = frames[i + 1] - frames[i]
        if step != 1 and not allow_steps:
            yield frames[i], frames[i], 1
            i += 1
            continue
        j = i + 1
        while j + 1 < n and frames[j + 1] - frames[j] == step:
            j += 1
        if j - i + 1 == 2:
            # A pair is written "a,b" anyway; the second frame may start a
            # longer run of its own.
            yield frames[i], frames[i], 1
            i += 1
            continue
        yield frames[i], frames[j], step
        i = j + 1


def _check_sorted(frames: Sequence[int]) -> None:
    for a, b in zip(frames, frames[1:]):
        if b <= a:
            raise FrameRangeError("frames must be sorted and unique")


def merge_frames(frames: Sequence[int]) -> str:
    """The spec for sorted, unique `frames`: [1,2,3,5,7,9] -> '1-3,5-9x2'.

    A pair of consecutive frames stays a pair ('3,4'), as in Flamenco 2.
    """
    frames = list(frames)
    if not frames:
        raise FrameRangeError("no frames to merge")
    _check_sorted(frames)
    parts = []
    for start, end, step in _runs(frames, allow_steps=True):
        if start == end:
            parts.append(str(start))
        elif end - start == step:
            parts.append(f"{start},{end}")
        else:
            ranged = f"{start}-{end}" if step == 1 else f"{start}-{end}x{step}"
            listed = ",".join(map(str, range(start, end + 1, step))) if (end - start) // step < 4 else ranged
            parts.append(ranged if len(ranged) <= len(listed) else listed)
    return ",".join(parts)


def blender_frames(frames: Sequence[int]) -> str:
    """The form Blender's `--render-frame` takes: '1..3,5,7' (no steps)."""
    frames = list(frames)
    if not frames:
        raise FrameRangeError("no frames to merge")
    _check_sorted(frames)
    parts = []
    for start, end, _ in _runs(frames, allow_steps=False):
        if start == end:
            parts.append(str(start))
        elif end - start == 1:
            parts.append(f"{start},{end}")
        else:
            parts.append(f"{start}..{end}")
    return ",".join(parts)


def chunk_frames(frames: Sequence[int], chunk_size: int) -> Iterator[list[int]]:
    """Consecutive slices of `frames`, `chunk_size` frames each (the last may be shorter)."""
    if chunk_size < 1:
        raise FrameRangeError(f"chunk size must be 1 or more, not {chunk_size}")
    for i in range(0, len(frames), chunk_size):
        yield list(frames[i:i + chunk_size])


def chunk_name(chunk: Sequence[int]) -> str:
    """The dashed name of a chunk used in task names: '1-10', '12'."""
    return str(chunk[0]) if len(chunk) == 1 else f"{chunk[0]}-{chunk[-1]}"
