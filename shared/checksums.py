"""SHA-256 checksums: what a hex digest looks like, and files written while they are hashed.

Every transfer of a job file or an output (an upload to the Server, an output a worker
sends its Manager, a file the Manager fetches from the Server, a file a worker downloads)
streams into a temporary file next to where it will live, hashing as it goes; it is renamed
into place only once its SHA-256 is the one expected, so that a wrong or cut-off transfer
never takes a good file's name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
"""A SHA-256 as the protocol spells it: 64 lowercase hex digits."""
CHUNK = 1024 * 1024


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and bool(SHA256_PATTERN.match(value))


class HashMismatch(ValueError):
    """Bytes whose SHA-256 (or size) is not the one expected."""


class TooLarge(ValueError):
    """A transfer over its size limit."""


class HashingFile:
    """A temporary file in `directory` that hashes what is written to it.

    Use it as a context manager: on leaving, the temporary file is removed unless `move_to`
    renamed it into place. `write` makes it a file object to stream into; `copy` pulls from a
    stream or an iterable of chunks.
    """

    def __init__(self, directory: str | os.PathLike, prefix: str = ".part-", max_size: int | None = None):
        fd, self._tmp = tempfile.mkstemp(dir=directory, prefix=prefix)
        self._out = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self.size = 0
        self.max_size = max_size

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc) -> None:
        self._out.close()
        if self._tmp:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.max_size is not None and self.size > self.max_size:
            raise TooLarge(f"over the limit of {self.max_size} bytes")
        self._digest.update(data)
        self._out.write(data)

    def copy(self, source: BinaryIO | Iterable[bytes], length: int | None = None) -> None:
        """All of `source`: a stream read up to `length` bytes (all of it if None), or chunks."""
        if not hasattr(source, "read"):
            for chunk in source:
                self.write(chunk)
            return
        remaining = length
        while remaining is None or remaining > 0:
            chunk = source.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            self.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def check(self, sha256: str, size: int | None = None) -> None:
        """HashMismatch unless the bytes written have this SHA-256 (and size, when given)."""
        if self.sha256 != sha256:
            raise HashMismatch(f"the bytes have SHA-256 {self.sha256}, not {sha256}")
        if size is not None and self.size != size:
            raise HashMismatch(f"{self.size} bytes arrived instead of {size}")

    def move_to(self, target: str | os.PathLike, mode: int | None = None) -> Path:
        """Rename the file into place (replacing `target`); from then on it is not removed."""
        self._out.close()
        if mode is not None:
            os.chmod(self._tmp, mode)
        os.replace(self._tmp, target)
        self._tmp = ""
        return Path(target)
