"""Upload mode at the Manager, the meeting point of a site: job files from the Server,
outputs from workers, both served to the workers that need them.

* Job files: the manifest is fetched from the Server (and kept, so workers get
  it while the Server is away); each file once, into the file store.
* Outputs: a worker sends the blobs the store lacks (blob_store.py), then
  registers what its task made and removed under paths of the job's tree
  (`POST /jobs/{job}/outputs`). The registration is kept (job + relpath ->
  checksum) for the job's later tasks and for jobs that depend on this one,
  and what is not scratch goes on to the Server through the upstream queue,
  in order with the task's status.
* A job made elsewhere (a bake run by another Manager) is listed by the
  Server, and its files fetched from there.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from backend.errors import ApiError
from shared import relpaths
from shared.statuses import TASK_RUNNABLE

from .blob_store import BlobStore, check_sha
from .config import ManagerConfig
from .persistence import OUTPUTS, Persistence
from .task_logs import safe_id

log = logging.getLogger(__name__)

MAX_FILES_PER_REGISTRATION = 100_000


def check_relpath(relpath: str) -> str:
    """A relative '/'-separated path inside the job; ApiError(400) otherwise."""
    try:
        return relpaths.check_relpath(relpath)
    except relpaths.RelpathError as ex:
        raise ApiError(400, "bad_path", str(ex)) from None


def _check_job(job_id: str) -> str:
    if not safe_id(job_id):
        raise ApiError(400, "bad_id", f"'{job_id}' is not a job id")
    return job_id


def _check_entries(files: Any) -> dict[str, tuple[str, int]]:
    if not isinstance(files, dict) or len(files) > MAX_FILES_PER_REGISTRATION:
        raise ApiError(400, "invalid_field", "'files' must be an object {relpath: {sha256, size}}")
    out = {}
    for relpath, entry in files.items():
        rel = check_relpath(relpath)
        if not isinstance(entry, dict) or isinstance(entry.get("size"), bool) or \
                not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise ApiError(400, "invalid_field", f"files['{relpath}'] must be {{\"sha256\", \"size\"}}")
        out[rel] = (check_sha(entry.get("sha256")), entry["size"])
    return out


def _as_doc(files: dict[str, tuple[str, int]]) -> dict:
    return {"files": {rel: {"sha256": sha, "size": size} for rel, (sha, size) in sorted(files.items())}}


class JobFiles:
    def __init__(self, db: Persistence, config: ManagerConfig, client=None):
        self.db, self.config, self.client = db, config, client
        self.cache_dir = config.file_cache_dir
        self.store = BlobStore(self.cache_dir, db.files, config.files.store_max_bytes,
                               config.files.partial_max_age)

    # --- job files (down) ------------------------------------------------------

    def manifest(self, job_id: str) -> dict:
        _check_job(job_id)
        cached = self.cache_dir / "manifests" / f"{job_id}.json"
        if self.client is not None:
            from .upstream import ServerError
            try:
                doc = self.client.job_files(job_id)
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc))
                os.replace(tmp, cached)
                files = doc.get("files") if isinstance(doc, dict) else None
                if isinstance(files, dict):
                    with self.db.write():
                        self.db.files.set_job_files(job_id, _check_entries_lenient(files))
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
        """The stored file with this checksum, fetched from the Server the first time."""
        check_sha(sha256)
        path = self.store.path(sha256)
        if path.exists():
            self.store.used(sha256)
            return path
        if self.client is None:
            raise ApiError(404, "not_found", f"file {sha256} is not here and this Manager is not linked")
        from .upstream import ServerError

        def open_stream():
            try:
                return self.client.fetch_file(sha256)
            except ServerError as ex:
                if ex.status == 404:
                    raise ApiError(404, "not_found", f"the Server has no file {sha256} for this Manager") from None
                raise ApiError(503, "unavailable", f"cannot fetch file {sha256} from the Server: {ex}") from None

        return self.store.fetch_from(sha256, open_stream)

    # --- outputs (up, and to later tasks) ----------------------------------------------

    def check(self, body: Any) -> dict:
        """Which of these files the store lacks, and how much of each already arrived."""
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list) or len(files) > MAX_FILES_PER_REGISTRATION:
            raise ApiError(400, "invalid_field", "'files' must be a list of {sha256, size}")
        missing, partial = [], {}
        for entry in files:
            sha = check_sha(entry.get("sha256") if isinstance(entry, dict) else None)
            if not self.store.has(sha):
                missing.append(sha)
                offset = self.store.partial_offset(sha)
                if offset:
                    partial[sha] = offset
        return {"missing": missing, "partial": partial}

    def register(self, worker, job_id: str, body: Any, now: float | None = None) -> dict:
        """A task's outputs and removals, from the worker that ran it; 409 naming the blobs the
        store does not have."""
        _check_job(job_id)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        files = _check_entries(body.get("files") or {})
        removed = body.get("removed") or []
        if not isinstance(removed, list):
            raise ApiError(400, "invalid_field", "'removed' must be a list of relpaths")
        removed = [check_relpath(r) for r in removed]
        task_id = body.get("task")
        missing = sorted({sha for sha, _ in files.values() if not self.store.has(sha)})
        if missing:
            raise ApiError(409, "missing_files", f"{len(missing)} file(s) are not here yet, e.g. {missing[0]}; "
                                                 "upload them first")
        task = self.task_of(worker, job_id, task_id)
        return self._register(job_id, task, files, removed, time.time() if now is None else now)

    def task_of(self, worker, job_id: str, task_id: Any):
        """The task whose outputs `worker` sends: one of the job's that it runs or ran last (a task
        requeued since, or another worker's, is 403: the outputs of a task come from its worker)."""
        if not task_id:
            raise ApiError(400, "task_required", "say which task made the outputs ('task')")
        if not (isinstance(task_id, str) and safe_id(task_id)):
            raise ApiError(400, "bad_id", f"'{str(task_id)[:100]}' is not a task id")
        task = self.db.tasks.get(task_id)
        if task is None or task.job != job_id:
            raise ApiError(400, "unknown_task", f"task {task_id} is not a task of job {job_id}")
        if task.worker != worker.id or task.status in TASK_RUNNABLE:
            raise ApiError(403, "not_your_task", f"task {task_id} is not run by worker {worker.id}: only the worker "
                                                 "that runs or just ran a task sends its outputs")
        return task

    def _register(self, job_id: str, task, files: dict[str, tuple[str, int]], removed: list[str],
                  now: float) -> dict:
        task_id = task.id
        scratch = bool((task.io or {}).get("scratch"))
        with self.db.write():
            forward, gone = self.db.files.register_outputs(job_id, task_id, files, removed, scratch, now)
            if (forward or gone) and self.config.upstream.linked and not task.local:
                self.db.upstream.enqueue(OUTPUTS, job_id, {"job": job_id, "task": task_id,
                                                           **_as_doc(forward), "removed": gone}, now)
        log.info("job %s: %d output(s) registered, %d path(s) removed%s", job_id, len(files), len(removed),
                 f"; {len(forward)} new for the Server" if forward else "")
        return {"registered": len(files), "removed": len(removed), "to_server": len(forward)}

    def outputs(self, job_id: str, prefixes: list[str] | None) -> dict:
        """The job's outputs (under `prefixes`): here if this Manager has any, else as the Server lists them."""
        _check_job(job_id)
        prefixes = None if prefixes is None else [("" if p in ("", ".") else check_relpath(p)) for p in prefixes]
        if not self.db.files.has_outputs(job_id) and self.client is not None:
            from .upstream import ServerError
            try:
                doc = self.client.job_outputs(job_id)
            except ServerError as ex:
                if ex.status != 404:
                    raise ApiError(503, "unavailable", f"the outputs of job {job_id} are not here and the Server "
                                                       f"cannot be asked: {ex}") from None
                doc = {"files": {}}
            files = _check_entries_lenient(doc.get("files") or {})
            if files:
                with self.db.write():
                    self.db.files.import_outputs(job_id, files, time.time())
        return _as_doc(self.db.files.outputs(job_id, prefixes))

    def output_path(self, job_id: str, relpath: str) -> Path:
        _check_job(job_id)
        found = self.db.files.output(job_id, check_relpath(relpath))
        if found is None:
            raise ApiError(404, "not_found", f"job {job_id} has no output '{relpath}' here")
        return self.file_path(found[0])

    def store_output(self, worker, job_id: str, relpath: str, task_id: str, body, length: int | None,
                     sha256_header: str | None, now: float | None = None) -> dict:
        """One output with its bytes in one request (what workers of earlier versions send)."""
        _check_job(job_id)
        relpath = check_relpath(relpath)
        task = self.task_of(worker, job_id, task_id)
        if sha256_header is not None:
            check_sha(sha256_header.lower())
        sha, size = self.store.put_whole(body, length, sha256_header.lower() if sha256_header else None)
        self._register(job_id, task, {relpath: (sha, size)}, [], time.time() if now is None else now)
        return {"sha256": sha, "size": size}


def _check_entries_lenient(files: dict) -> dict[str, tuple[str, int]]:
    """Entries from the Server: the same checks, an unusable one skipped with a warning."""
    out = {}
    for rel, entry in files.items():
        try:
            out.update(_check_entries({rel: entry}))
        except ApiError as ex:
            log.warning("ignoring the Server's entry %r: %s", rel, ex.message)
    return out
