"""The Manager's file store (upload mode): job files and outputs by SHA-256, on disk.

`<data-dir>/file-cache/ab/<sha256>`: one file per checksum however many jobs
and paths use it. Job files arrive from the Server the first time a worker
asks for them; outputs arrive from workers, resumably: bytes are appended to
`partial/<sha256>` as they come, a dropped connection leaves what arrived, and
the worker asks how much is there (`POST /files/check`) and sends only the
rest. Once the size is reached the whole file is hashed, and only a file with
the claimed checksum is moved into the store. One upload per checksum at a
time (a second is answered 409 and retries).

Eviction keeps the store under `files.store_max_bytes`: least recently used
blobs first, never one that an unfinished task may still need or that still
waits to go to the Server (persistence/files.py spells that rule).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from backend.errors import ApiError
from shared.checksums import CHUNK, HashingFile, is_sha256
from shared.protocol import UPLOAD_OFFSET_HEADER as OFFSET_HEADER

from .persistence.files import FileRecords

log = logging.getLogger(__name__)

def check_sha(sha256: str) -> str:
    if not is_sha256(sha256):
        raise ApiError(400, "bad_checksum", "a file is named by its lowercase hex SHA-256")
    return sha256


@dataclass
class TransferStats:
    """Bytes through this Manager since it started, per hop (for the status report and bench/)."""
    from_workers: int = 0
    uploads: int = 0
    """Files workers sent that were stored (complete, with the right checksum)."""
    to_workers: int = 0
    to_server: int = 0
    from_server: int = 0
    evicted: int = 0
    evicted_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def to_dict(self) -> dict:
        return {"bytes_from_workers": self.from_workers, "uploads_from_workers": self.uploads,
                "bytes_to_workers": self.to_workers,
                "bytes_to_server": self.to_server, "bytes_from_server": self.from_server,
                "evicted_files": self.evicted, "evicted_bytes": self.evicted_bytes}


class _Counted:
    """A readable stream that counts what is read from it."""

    def __init__(self, stream: BinaryIO, count: Callable[[int], None]):
        self.stream, self.count = stream, count

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.count(len(data))
        return data


class BlobStore:
    def __init__(self, root: Path, records: FileRecords, max_bytes: int = 0, partial_max_age: float = 86400.0,
                 touch_interval: float = 60.0):
        self.root = Path(root)
        self.partial_dir = self.root / "partial"
        self.records = records
        self.max_bytes = max_bytes
        self.partial_max_age = partial_max_age
        self.touch_interval = touch_interval
        self.stats = TransferStats()
        self.over_limit = threading.Event()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._adopted = False

    # --- paths and locks --------------------------------------------------------------

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def _lock_for(self, sha256: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(sha256, threading.Lock())

    @contextmanager
    def locked(self, sha256: str, wait: bool = True):
        lock = self._lock_for(sha256)
        if not lock.acquire(blocking=wait):
            raise ApiError(409, "busy", f"file {sha256} is being uploaded by someone else; ask again later",
                           {"Retry-After": "2"})
        try:
            yield
        finally:
            lock.release()

    def partial_offset(self, sha256: str) -> int:
        try:
            return (self.partial_dir / sha256).stat().st_size
        except FileNotFoundError:
            return 0

    # --- storing ------------------------------------------------------------------------

    def _commit(self, verified: HashingFile | Path, sha256: str) -> None:
        """Move a verified file (a HashingFile, or a finished partial upload) into the store
        (under the checksum's lock)."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(verified, HashingFile):
            size = verified.size
            verified.move_to(target, mode=0o444)
        else:
            size = verified.stat().st_size
            os.chmod(verified, 0o444)
            os.replace(verified, target)
        self.records.add_blob(sha256, size, time.time())
        if self.max_bytes and self.records.blob_bytes() > self.max_bytes:
            self.over_limit.set()

    def receive(self, sha256: str, size: int | None, offset: int, stream: BinaryIO, length: int | None) -> int:
        """Bytes `offset..` of the file from a worker; the bytes now there (== size once it is stored).

        409 (header X-Flamenco-Upload-Offset) when `offset` is not what is there, 400 when the
        whole file does not have the checksum or is longer than `size` (what arrived is dropped)."""
        check_sha(sha256)
        stream = _Counted(stream, lambda n: self.stats.add(from_workers=n))
        with self.locked(sha256, wait=False):
            if self.has(sha256):
                _drain(stream, length)
                return self.path(sha256).stat().st_size
            self.partial_dir.mkdir(parents=True, exist_ok=True)
            partial = self.partial_dir / sha256
            have = self.partial_offset(sha256)
            if offset != have:
                _drain(stream, length)
                raise ApiError(409, "offset_mismatch", f"{have} bytes of {sha256} are here, not {offset}; "
                                                       f"send from byte {have}", {OFFSET_HEADER: str(have)})
            total = have
            try:
                with open(partial, "ab") as out:
                    remaining = length
                    while remaining is None or remaining > 0:
                        chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
                        if not chunk:
                            break
                        out.write(chunk)
                        total += len(chunk)
                        if remaining is not None:
                            remaining -= len(chunk)
                        if size is not None and total > size:
                            break
            finally:
                log.debug("upload of %s: %d of %s bytes here", sha256, total, size)
            if size is not None and total > size:
                partial.unlink(missing_ok=True)
                raise ApiError(400, "too_long", f"more than the {size} bytes announced for {sha256}; dropped")
            if size is not None and total < size:
                return total
            got = _sha256_of(partial)
            if got != sha256:
                partial.unlink(missing_ok=True)
                raise ApiError(400, "checksum_mismatch", f"the {total} bytes received have SHA-256 {got}, "
                                                         f"not {sha256}; dropped, send the file again")
            self._commit(partial, sha256)
            self.stats.add(uploads=1)
            log.info("stored file %s (%d bytes) from a worker", sha256, total)
            return total

    def put_whole(self, stream: BinaryIO, length: int | None, sha256_claimed: str | None) -> tuple[str, int]:
        """A whole file in one request (the earlier output route): (sha256, size)."""
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        with HashingFile(self.partial_dir, ".whole-") as upload:
            upload.copy(stream, length)
            self.stats.add(from_workers=upload.size)
            sha = upload.sha256
            if sha256_claimed is not None and sha != sha256_claimed:
                raise ApiError(400, "checksum_mismatch", f"the body's SHA-256 is {sha}, not {sha256_claimed}")
            with self.locked(sha):
                if not self.has(sha):
                    self._commit(upload, sha)
                    self.stats.add(uploads=1)
            return sha, upload.size

    def fetch_from(self, sha256: str, open_stream: Callable[[], object]) -> Path:
        """The stored file, fetched through `open_stream()` (a streaming response) the first time."""
        path = self.path(sha256)
        if path.exists():
            return path
        with self.locked(sha256):
            if path.exists():
                return path
            self.partial_dir.mkdir(parents=True, exist_ok=True)
            resp = open_stream()
            try:
                with resp, HashingFile(self.partial_dir, ".fetch-") as fetched:
                    fetched.copy(resp.iter_content(CHUNK))
                    self.stats.add(from_server=fetched.size)
                    if fetched.sha256 != sha256:
                        raise ApiError(502, "checksum_mismatch", f"the Server sent a file that is not {sha256}")
                    self._commit(fetched, sha256)
            except ApiError:
                raise
            except Exception as ex:  # noqa: BLE001 - a broken transfer is the Server's unavailability
                raise ApiError(503, "unavailable", f"fetching file {sha256} failed: {ex}") from None
            log.info("cached file %s (%d bytes) from the Server", sha256, fetched.size)
            return path

    def used(self, sha256: str) -> None:
        self.records.touch_blob(sha256, time.time(), self.touch_interval)

    # --- eviction -----------------------------------------------------------------------

    def adopt(self) -> int:
        """Files in the store that the database does not list (made by an earlier version): listed now."""
        known = self.records.blob_shas()
        added = 0
        if self.root.is_dir():
            for sub in self.root.iterdir():
                if len(sub.name) != 2 or not sub.is_dir():
                    continue
                for f in sub.iterdir():
                    if is_sha256(f.name) and f.name not in known:
                        st = f.stat()
                        self.records.add_blob(f.name, st.st_size, st.st_mtime)
                        added += 1
        self._adopted = True
        return added

    def evict(self, now: float | None = None) -> tuple[int, int]:
        """Bring the store under its limit (to 90 % of it); -> (files, bytes) removed."""
        now = time.time() if now is None else now
        self.over_limit.clear()
        self._drop_stale_partials(now)
        if not self.max_bytes:
            return 0, 0
        if not self._adopted:
            self.adopt()
        total = self.records.blob_bytes()
        if total <= self.max_bytes:
            return 0, 0
        target = int(self.max_bytes * 0.9)
        files = freed = 0
        while total - freed > target:
            batch = self.records.evictable(200)
            if not batch:
                log.warning("file store: %d bytes, over its limit of %d, but the rest is needed by unfinished "
                            "tasks or still waits for the Server", total - freed, self.max_bytes)
                break
            gone = []
            for sha, size in batch:
                with self.locked(sha):
                    self.path(sha).unlink(missing_ok=True)
                    gone.append(sha)
                files += 1
                freed += size
                if total - freed <= target:
                    break
            self.records.forget_blobs(gone)
        if files:
            self.stats.add(evicted=files, evicted_bytes=freed)
            log.info("file store: evicted %d file(s), %d bytes (limit %d)", files, freed, self.max_bytes)
        return files, freed

    def _drop_stale_partials(self, now: float) -> None:
        if not self.partial_dir.is_dir():
            return
        for f in self.partial_dir.iterdir():
            try:
                if now - f.stat().st_mtime > self.partial_max_age:
                    f.unlink()
                    log.info("dropped an upload abandoned for over %.0f s: %s", self.partial_max_age, f.name)
            except FileNotFoundError:
                pass

    def run(self, stop: threading.Event, interval: float) -> None:
        """Evict every `interval` seconds, and at once when a new file took the store over its limit."""
        while not stop.is_set():
            try:
                self.evict()
            except Exception:  # noqa: BLE001 - a loop logs and goes on
                log.exception("file store eviction failed")
            if self.over_limit.wait(interval):
                stop.wait(0.5)  # let a burst of uploads land first

    def report(self) -> dict:
        return {"store_bytes": self.records.blob_bytes(), "store_max_bytes": self.max_bytes,
                "pinned_bytes": self.records.pinned_bytes(), **self.stats.to_dict()}


def _drain(stream, length: int | None) -> None:
    """Read and drop a request body we do not want (cheroot would otherwise read it into memory)."""
    remaining = length
    while remaining is None or remaining > 0:
        chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)


def _sha256_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
