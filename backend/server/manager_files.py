"""Files between a Manager and the Server (upload mode): job files down, outputs up.

A Manager reads the manifests and blobs of its own jobs, and the outputs of
the jobs its jobs depend on (a render job in one site after a bake made in
another). It registers outputs of its jobs by checksum: an output whose blob
the Server already holds for one of the Manager's jobs (the same frame moved
to its final folder, a cache file that was first staged elsewhere) costs no
bytes; the others are answered as missing and the Manager sends their bytes
with `PUT .../outputs/{relpath}`. Removing an output here only forgets the
job's row: blobs nobody uses are the garbage collector's.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from peewee import fn

from backend.web import ApiError, bad_request, forbidden, not_found
from shared.checksums import is_sha256
from shared.relpaths import RelpathError, check_relpath
from shared.statuses import TaskStatus as T

from . import blobs
from .context import ServerContext
from .database import write
from .models import Blob, Job, JobDependency, JobFile, JobOutput, Manager, Task

MAX_REGISTER = 100_000
OUTPUT_TASK_STATUSES = frozenset({T.CLAIMED_BY_MANAGER, T.ACTIVE, T.COMPLETED, T.SOFT_FAILED, T.FAILED,
                                  T.CANCEL_REQUESTED, T.CANCELED})
"""Statuses of a task that its Manager holds or held since it was last queued: outputs are accepted only then."""


def _own_job(manager: Manager, jid: str) -> Job:
    job = Job.get_or_none(Job.id == jid)
    if job is None or job.manager_id != manager.id:
        raise not_found(f"no job '{jid}' for this manager")
    return job


def _dependents_of_mine(manager: Manager):
    """Ids of the jobs that a job of this Manager depends on (a subquery)."""
    mine = Job.alias()
    return (JobDependency.select(JobDependency.depends_on)
            .join(mine, on=(JobDependency.job == mine.id)).where(mine.manager == manager.id))


def _readable_job(manager: Manager, jid: str) -> Job:
    """The Manager's own job, or one that a job of this Manager depends on."""
    job = Job.get_or_none(Job.id == jid)
    if job is not None and (job.manager_id == manager.id or
                            _dependents_of_mine(manager).where(JobDependency.depends_on == jid).exists()):
        return job
    raise not_found(f"no job '{jid}' for this manager")


def job_files(manager: Manager, jid: str) -> dict[str, Any]:
    job = _own_job(manager, jid)
    rows = JobFile.select(JobFile.relpath, JobFile.sha256, JobFile.size).where(JobFile.job == job.id).tuples()
    return {"files": {rel: {"sha256": sha, "size": size} for rel, sha, size in rows}}


def job_outputs(manager: Manager, jid: str) -> dict[str, Any]:
    job = _readable_job(manager, jid)
    rows = JobOutput.select(JobOutput.relpath, JobOutput.sha256, JobOutput.size).where(
        JobOutput.job == job.id).tuples()
    return {"files": {rel: {"sha256": sha, "size": size} for rel, sha, size in rows}}


def may_read_blob(manager: Manager, sha256: str) -> bool:
    """A file of the Manager's jobs, or an output of a job that one of them depends on."""
    return JobFile.select().join(Job).where(JobFile.sha256 == sha256, Job.manager == manager.id).exists() or \
        JobOutput.select().join(Job).where(JobOutput.sha256 == sha256, Job.manager == manager.id).exists() or \
        JobOutput.select().where(JobOutput.sha256 == sha256, JobOutput.job.in_(_dependents_of_mine(manager))).exists()


def _check_rel(relpath: Any, what: str) -> str:
    try:
        return check_relpath(relpath)
    except RelpathError as ex:
        raise bad_request(f"{what}: {ex}", "invalid_path") from None


def _task_of(job: Job, tid: Any) -> str:
    """The task that produced an output: one of the job's that its Manager holds or held since it
    was last queued (403 otherwise: a queued task produced nothing)."""
    if tid in (None, ""):
        raise bad_request("the task that produced the output is required ('task')", "task_required")
    task = Task.get_or_none(Task.id == tid, Task.job == job.id) if isinstance(tid, str) else None
    if task is None:
        raise forbidden(f"task '{tid}' is not a task of job {job.id}")
    if task.status not in OUTPUT_TASK_STATUSES:
        raise forbidden(f"task {tid} is {task.status}: this Manager does not hold it, so it produced no output")
    return tid


def _quota_room(ctx: ServerContext, job: Job, sha256: str) -> int | None:
    """Bytes the job's project may still store (None: no quota, or it stores this blob already)."""
    quota = blobs.project_quota(job.project, ctx.config.project_quota_bytes)
    if not quota:
        return None
    used, shas = blobs.project_usage(job.project_id)
    return None if sha256 in shas else max(0, quota - used)


def quota_exceeded(job: Job, room: int) -> ApiError:
    return ApiError(507, "quota_exceeded", f"the storage quota of job {job.id}'s project leaves {room} bytes; "
                                           "the output is not stored")


def _upsert(job: Job, rel: str, sha256: str, size: int, tid: str | None, now) -> None:
    existing = JobOutput.get_or_none(JobOutput.job == job.id, JobOutput.relpath == rel)
    if existing is None:
        JobOutput.create(job=job.id, relpath=rel, sha256=sha256, size=size, task=tid, created=now)
    elif existing.sha256 != sha256 or existing.task != tid:
        existing.sha256, existing.size, existing.task, existing.created = sha256, size, tid, now
        existing.save()


def _removal_condition(job: Job, prefixes: list[str]):
    """The job's outputs at or under each prefix (compared exactly: LIKE ignores case and treats
    '_' and '%' as wildcards)."""
    cond = None
    for p in prefixes:
        c = (JobOutput.relpath == p) | (fn.SUBSTR(JobOutput.relpath, 1, len(p) + 1) == p + "/")
        cond = c if cond is None else (cond | c)
    return (JobOutput.job == job.id) & cond


def register_outputs(ctx: ServerContext, manager: Manager, jid: str, body: dict[str, Any]) -> dict[str, Any]:
    """Outputs of one task by checksum, and relpaths (or folders) that are gone; -> {missing: [sha256]}.

    One transaction: removals first, then every file whose blob the Server has for this
    Manager; the others are not registered and come back as `missing`.
    """
    job = _own_job(manager, jid)
    files, removed = body.get("files") or {}, body.get("removed") or []
    if not isinstance(files, dict) or not isinstance(removed, list) or len(files) + len(removed) > MAX_REGISTER:
        raise bad_request(f"'files' must be an object {{relpath: {{sha256, size}}}} and 'removed' a list of "
                          f"relpaths, at most {MAX_REGISTER} in all", "invalid_field")
    tid = _task_of(job, body.get("task"))
    checked: dict[str, tuple[str, int]] = {}
    for relpath, entry in files.items():
        rel = _check_rel(relpath, "files")
        if not isinstance(entry, dict) or not is_sha256(entry.get("sha256")) or \
                isinstance(entry.get("size"), bool) or not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise bad_request(f"files['{relpath}'] must be {{\"sha256\": <64 hex>, \"size\": <bytes>}}",
                              "invalid_field")
        checked[rel] = (entry["sha256"], entry["size"])
    gone = [_check_rel(r, "removed") for r in removed]
    missing: set[str] = set()
    with write(ctx.db):
        now = ctx.clock.now()
        sizes: dict[str, int] = {}  # before the removals: a moved file was readable under its old path
        for sha in {sha for sha, _ in checked.values()}:
            blob = Blob.get_or_none(Blob.sha256 == sha)
            if blob is not None and ctx.store.has(sha) and may_read_blob(manager, sha):
                sizes[sha] = blob.size
        if gone:
            JobOutput.delete().where(_removal_condition(job, gone)).execute()
        for rel, (sha, size) in checked.items():
            if sizes.get(sha) == size:
                _upsert(job, rel, sha, size, tid, now)
            else:
                missing.add(sha)
    return {"missing": sorted(missing)}


def put_output(ctx: ServerContext, manager: Manager, jid: str, relpath: str, tid: str | None,
               sha256: str, stream: BinaryIO, length: int | None) -> None:
    """An output with its bytes (idempotent)."""
    job = _own_job(manager, jid)
    rel = _check_rel(relpath, "path")
    if not is_sha256(sha256):
        raise bad_request("header X-Flamenco-SHA256 must be the output's SHA-256 (64 hex digits)", "invalid_hash")
    tid = _task_of(job, tid)
    size = blobs.store_upload(ctx.store, stream, sha256, length, ctx.config.max_upload_bytes,
                              _quota_room(ctx, job, sha256), lambda room: quota_exceeded(job, room))
    ctx.activity.uploaded("outputs", size)
    with write(ctx.db):
        now = ctx.clock.now()
        if Blob.get_or_none(Blob.sha256 == sha256) is None:
            Blob.create(sha256=sha256, size=size, created=now)
        _upsert(job, rel, sha256, size, tid, now)
