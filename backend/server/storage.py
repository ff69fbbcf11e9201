"""Files on the Server's disk: content-addressed blobs, and where gzip'd task logs go (task_logs.py).

Blobs (job files uploaded by artists, outputs uploaded by Managers) live under
`<data dir>/files/blobs/ab/<sha256>`, once however many jobs use them. An
upload is streamed to a temporary file while hashed, and only renamed into
place when its hash is the one claimed, so a wrong or truncated upload never
becomes a blob.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from shared.checksums import HashingFile, is_sha256

log = logging.getLogger(__name__)


class FileStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        self.logs = self.root / "task-logs"
        self.archives = self.root / "archives"
        for d in (self.blobs, self.tmp, self.logs):
            d.mkdir(parents=True, exist_ok=True)

    def blob_path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"'{sha256}' is not a SHA-256 hex digest")
        return self.blobs / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def put(self, stream: BinaryIO, sha256: str, length: int | None = None,
            max_size: int | None = None) -> tuple[int, bool]:
        """Store the stream's bytes as blob `sha256`: (size, newly stored).

        HashMismatch or TooLarge leave nothing behind.
        """
        target = self.blob_path(sha256)
        with HashingFile(self.tmp, "upload-", max_size) as upload:
            upload.copy(stream, length)
            upload.check(sha256)
            # Replaced even when already stored (same bytes): the fresh mtime tells a
            # garbage collection running meanwhile that it was just uploaded.
            existed = target.is_file()
            target.parent.mkdir(parents=True, exist_ok=True)
            upload.move_to(target)
            return upload.size, not existed

    def delete(self, sha256: str) -> None:
        with _ignore_missing():
            self.blob_path(sha256).unlink()

    def delete_if_older(self, sha256: str, cutoff: dt.datetime) -> bool:
        """Delete the blob unless its file changed after `cutoff` (naive UTC); whether it was deleted."""
        path = self.blob_path(sha256)
        try:
            if path.stat().st_mtime >= cutoff.replace(tzinfo=dt.timezone.utc).timestamp():
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def log_path(self, job_id: str, task_id: str) -> Path:
        return self.logs / job_id / f"{task_id}.log.gz"

    def delete_job_logs(self, job_id: str) -> None:
        directory = self.logs / job_id
        if directory.is_dir():
            for f in directory.iterdir():
                with _ignore_missing():
                    f.unlink()
            with _ignore_missing():
                directory.rmdir()


    def archive_path(self, job_id: str) -> Path:
        return self.archives / job_id[:4] / f"{job_id}.json.gz"

    def stage_archive(self, job_id: str, data: bytes) -> Path:
        """The record written beside its place under a name of its own (processes may race); see place_archive."""
        path = self.archive_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{job_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(data)
        return tmp

    def place_archive(self, staged: Path, job_id: str) -> Path:
        path = self.archive_path(job_id)
        os.replace(staged, path)
        return path


class _ignore_missing:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, (FileNotFoundError, OSError))
