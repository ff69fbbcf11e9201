"""Relative paths inside a job (file manifests, outputs): checked once, used everywhere.

A job's relpath is '/'-separated and relative; it may not escape the job's
directory. Server, Manager and Worker all lay files out by these paths, so
each checks them with the same function before touching a disk.
"""

from __future__ import annotations

import re

_DRIVE = re.compile(r"^[A-Za-z]:")
MAX_RELPATH = 1024
MAX_NAME_BYTES = 255
"""What a file name may take on the file systems the farm writes to (ext4, NTFS, APFS)."""


class RelpathError(ValueError):
    """A path that is not a safe relative path inside a job."""


def check_relpath(path: str) -> str:
    """The normalised relpath ('a/./b' -> 'a/b'); RelpathError for anything unsafe."""
    if not isinstance(path, str) or not path:
        raise RelpathError("a relative path may not be empty")
    if len(path) > MAX_RELPATH:
        raise RelpathError(f"path of {len(path)} characters; at most {MAX_RELPATH} are allowed")
    shown = path if len(path) <= 100 else path[:97] + "..."
    if "\\" in path:
        raise RelpathError(f"'{shown}' must use '/' as separator")
    if "\x00" in path:
        raise RelpathError("a path may not contain NUL")
    if path.startswith("/") or _DRIVE.match(path):
        raise RelpathError(f"'{shown}' is absolute; job paths must be relative")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise RelpathError(f"'{shown}' names no file")
    if any(p == ".." for p in parts):
        raise RelpathError(f"'{shown}' may not contain '..'")
    if any(len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for p in parts):
        raise RelpathError(f"'{shown}' has a file or directory name over {MAX_NAME_BYTES} bytes")
    return "/".join(parts)
