"""Upload mode: job files fetched from the Server once (cached by checksum) and
served to workers; outputs workers upload spooled and queued for the Server.

An output goes through the durable upstream queue like a task update, so it
survives a Server outage and a Manager restart. An unlinked Manager keeps
outputs under <data-dir>/outputs/<job>/<relpath>.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from backend.errors import ApiError
from shared import relpaths
from shared.checksums import CHUNK, HashingFile, is_sha256

from .config import ManagerConfig
from .persistence import OUTPUT, Persistence
from .task_logs import safe_id

log = logging.getLogger(__name__)



def check_relpath(relpath: str) -> str:
    """A relative '/'-separated path inside the job; ApiError(400) otherwise."""
    try:
        return relpaths.check_relpath(relpath)
    except relpaths.RelpathError as ex:
        raise ApiError(400, "bad_path", str(ex)) from None


class JobFiles:
    def __init__(self, db: Persistence, config: ManagerConfig, client=None):
        self.db, self.config, self.client = db, config, client
        self.cache_dir = config.file_cache_dir
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    # --- job files (down) ------------------------------------------------------

    def manifest(self, job_id: str) -> dict:
        if not safe_id(job_id):
            raise ApiError(400, "bad_id", f"'{job_id}' is not a job id")
        cached = self.cache_dir / "manifests" / f"{job_id}.json"
        if self.client is not None:
            from .upstream import ServerError
            try:
                doc = self.client.job_files(job_id)
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc))
                os.replace(tmp, cached)
                return doc
            except ServerError as ex:
                if ex.status == 404:
                    raise ApiError(404, "not_found", f"the Server has no files for job {job_id}") from None
                log.warning("job %s: manifest from the Server failed (%s); using the cached one", job_id, ex)
        try:
            return json.loads(cached.read_text())
        except (OSError, ValueError):
            raise ApiError(503 if self.client else 404, "unavailable",
                            f"the file list of job {job_id} is not cached and the Server is not reachable") from None

    def file_path(self, sha256: str) -> Path:
        """The cached file with this checksum, fetched from the Server the first time."""
        if not is_sha256(sha256):
            raise ApiError(400, "bad_checksum", "a file is named by its lowercase hex SHA-256")
        path = self.cache_dir / sha256[:2] / sha256
        if path.exists():
            return path
        if self.client is None:
            raise ApiError(404, "not_found", f"file {sha256} is not cached and this Manager is not linked")
        from .upstream import ServerError
        with self._lock_for(sha256):
            if path.exists():
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                resp = self.client.fetch_file(sha256)
            except ServerError as ex:
                if ex.status == 404:
                    raise ApiError(404, "not_found", f"the Server has no file {sha256}") from None
                raise ApiError(503, "unavailable", f"cannot fetch file {sha256} from the Server: {ex}") from None
            try:
                with resp, HashingFile(path.parent, ".fetch-") as fetched:
                    fetched.copy(resp.iter_content(CHUNK))
                    if fetched.sha256 != sha256:
                        raise ApiError(502, "checksum_mismatch", f"the Server sent a file that is not {sha256}")
                    fetched.move_to(path)
            except Exception as ex:
                if isinstance(ex, ApiError):
                    raise
                raise ApiError(503, "unavailable", f"fetching file {sha256} failed: {ex}") from None
            log.info("cached job file %s", sha256)
            return path

    # --- outputs (up) ----------------------------------------------------------

    def store_output(self, job_id: str, relpath: str, task_id: str, body, length: int | None,
                     sha256_header: str | None, now: float | None = None) -> dict:
        if not safe_id(job_id):
            raise ApiError(400, "bad_id", f"'{job_id}' is not a job id")
        relpath = check_relpath(relpath)
        if sha256_header is not None and not is_sha256(sha256_header.lower()):
            raise ApiError(400, "bad_checksum", "X-Flamenco-SHA256 must be a hex SHA-256")
        spool = self.config.spool_dir
        spool.mkdir(parents=True, exist_ok=True)
        with HashingFile(spool, ".upload-") as upload:
            upload.copy(body, length)
            sha, size = upload.sha256, upload.size
            if sha256_header is not None and sha != sha256_header.lower():
                raise ApiError(400, "checksum_mismatch", f"the body's SHA-256 is {sha}, not {sha256_header}")
            if not self.config.upstream.linked:
                dest = Path(self.config.data_dir) / "outputs" / job_id / relpath
                dest.parent.mkdir(parents=True, exist_ok=True)
                upload.move_to(dest)
                return {"sha256": sha, "size": size, "queued": False}
            dest = upload.move_to(spool / sha)
        payload = {"job": job_id, "task": task_id, "relpath": relpath, "sha256": sha, "spool": str(dest),
                   "size": size}
        with self.db.write():
            dup = self.db.upstream.has_output(sha, job_id, relpath)
            if not dup:
                self.db.upstream.enqueue(OUTPUT, sha, payload, time.time() if now is None else now)
        log.info("job %s: output %s (%d bytes) queued for the Server", job_id, relpath, size)
        return {"sha256": sha, "size": size, "queued": not dup}
