"""Full task logs on the Server: stored gzip'd with a cap per task, read back as a stream.

A Manager uploads a task's whole log gzip'd. A log is only text, but gzip packs
repetitive text a thousandfold (a 544 KiB upload held 1 GiB), so nothing here
holds a log in memory: the upload is spooled to a file, unpacked in blocks to
count it, and unpacked again into the stored copy, which keeps the first and
the last `cap / 2` bytes with a line saying how much was cut between them.
Reading streams the stored copy in blocks.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from shared.checksums import TooLarge

from .storage import FileStore

log = logging.getLogger(__name__)

BLOCK = 1024 * 1024
MAX_UNPACKED = 8 * 1024 ** 3
"""A log that unpacks to more than this is refused outright (413) rather than unpacked twice."""


class BadLog(ValueError):
    """An upload that is not gzip."""


def _spool(stream: BinaryIO, length: int | None, max_bytes: int, directory: Path) -> str:
    fd, name = tempfile.mkstemp(dir=directory, prefix="log-upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            remaining, size = length, 0
            while remaining is None or remaining > 0:
                block = stream.read(BLOCK if remaining is None else min(BLOCK, remaining))
                if not block:
                    break
                size += len(block)
                if size > max_bytes:
                    raise TooLarge(f"a task log may be at most {max_bytes} bytes gzip'd")
                out.write(block)
                if remaining is not None:
                    remaining -= len(block)
        with open(name, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                raise BadLog("the task log must be gzip'd (Content-Type: application/gzip)")
        return name
    except BaseException:
        os.unlink(name)
        raise


def _blocks(path: str) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") as f:
            while block := f.read(BLOCK):
                yield block
    except (OSError, EOFError, zlib.error) as ex:
        raise BadLog(f"the task log is not valid gzip: {ex}") from None


def store(files: FileStore, job_id: str, task_id: str, stream: BinaryIO, length: int | None,
          max_upload: int, cap: int) -> tuple[int, int]:
    """Store an uploaded gzip'd log, cut to `cap` unpacked bytes: (unpacked size, bytes kept).

    BadLog for something that is not gzip, TooLarge over `max_upload` packed
    or MAX_UNPACKED unpacked; nothing is stored then.
    """
    packed = _spool(stream, length, max_upload, files.tmp)
    tmp = ""
    try:
        total = 0
        for block in _blocks(packed):
            total += len(block)
            if total > MAX_UNPACKED:
                raise TooLarge(f"the task log unpacks to more than {MAX_UNPACKED} bytes")
        path = files.log_path(job_id, task_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        if total <= cap:
            os.replace(packed, path)
            packed = ""
            return total, total
        head, tail_start = cap // 2, total - (cap - cap // 2)
        fd, tmp = tempfile.mkstemp(dir=files.tmp, prefix="log-")
        kept = 0
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as out:
            pos, noticed = 0, False
            for block in _blocks(packed):
                end = pos + len(block)
                if pos < head:
                    piece = block[:head - pos]
                    out.write(piece)
                    kept += len(piece)
                if end > tail_start:
                    if not noticed and tail_start > head:
                        out.write(cut_notice(tail_start - head))
                        noticed = True
                    piece = block[max(0, tail_start - pos):]
                    out.write(piece)
                    kept += len(piece)
                pos = end
        os.replace(tmp, path)
        tmp = ""
        return total, kept
    finally:
        if packed:
            os.unlink(packed)
        if tmp:
            os.unlink(tmp)


def cut_notice(skipped: int) -> bytes:
    return (f"\n[... {skipped} bytes of this log were cut out here: the Server keeps the first and last part "
            f"of a long log (task_log_max_bytes) ...]\n").encode()


def read(files: FileStore, job_id: str, task_id: str) -> Iterator[bytes] | None:
    """The stored log in blocks, or None when there is none."""
    path = files.log_path(job_id, task_id)
    if not path.is_file():
        return None
    f = gzip.open(path, "rb")

    def blocks():
        with f:
            while block := f.read(BLOCK):
                yield block

    return blocks()
