"""Who may know of a stored file, how much each project stores, and removing files nobody uses.

Blobs are stored once however many jobs use them (deduplicated storage), but
knowing that a blob exists is itself information: a user of project B who could
learn from `POST /api/files/check` that a hash of project A is stored could then
name it in a job and download it. So a blob is *known* to a user only when

- a job of one of the user's projects names it (a job file or an output), or
- the user uploaded its bytes (a BlobGrant: proof of possession; uploading a
  blob that is already stored is hashed and answered the same, nothing is kept twice),

and admins know every blob. Everything else is answered as if it were not stored.

Storage is counted per project as the distinct blobs its jobs name; blobs
uploaded but not named by any job yet are counted per uploader ("pending") and
removed by `collect` once older than the grace period.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import BinaryIO, Callable, Iterable

import peewee

from backend.web import ApiError, bad_request
from shared.checksums import HashMismatch, TooLarge
from shared.chunking import chunks

from .models import Blob, BlobGrant, Job, JobFile, JobOutput, Project, User
from .storage import FileStore

log = logging.getLogger(__name__)

def _project_refs(model, shas: list[str], project_ids: list[str]) -> set[str]:
    return {s for (s,) in model.select(model.sha256).join(Job, on=(model.job == Job.id))
            .where(model.sha256.in_(shas), Job.project.in_(project_ids)).distinct().tuples()}


def known_to(user: User, shas: Iterable[str], project_ids: set[str] | None) -> dict[str, int]:
    """{sha256: size} of the stored blobs among `shas` that the user may know of.

    `project_ids` are the user's visible projects (None: all, for admins).
    """
    wanted = sorted(set(shas))
    out: dict[str, int] = {}
    for chunk in chunks(wanted):
        stored = dict(Blob.select(Blob.sha256, Blob.size).where(Blob.sha256.in_(chunk)).tuples())
        if project_ids is None or not stored:
            out.update(stored)
            continue
        candidates = list(stored)
        allowed = {s for (s,) in BlobGrant.select(BlobGrant.sha256).where(
            BlobGrant.user == user.id, BlobGrant.sha256.in_(candidates)).tuples()}
        rest = [s for s in candidates if s not in allowed]
        if rest and project_ids:
            pids = list(project_ids)
            allowed |= _project_refs(JobFile, rest, pids)
            rest = [s for s in rest if s not in allowed]
            if rest:
                allowed |= _project_refs(JobOutput, rest, pids)
        out.update((s, stored[s]) for s in allowed)
    return out


def store_upload(store: FileStore, stream: BinaryIO, sha256: str, length: int | None, limit: int,
                 room: int | None, over_quota: Callable[[int], ApiError]) -> int:
    """Store an upload checked against its hash, the size limit `limit` (0: none; 413) and the quota
    room left `room` (None: no quota; `over_quota(room)`), before and while reading; its size."""
    if limit and length is not None and length > limit:
        raise ApiError(413, "too_large", f"upload of {length} bytes over the limit of {limit}")
    if room is not None and length is not None and length > room:
        raise over_quota(room)
    caps = [c for c in (limit or None, room) if c is not None]
    try:
        size, _ = store.put(stream, sha256, length, min(caps) if caps else None)
    except HashMismatch as ex:
        raise bad_request(str(ex), "hash_mismatch") from None
    except TooLarge:
        if room is not None and (not limit or room < limit):
            raise over_quota(room) from None
        raise ApiError(413, "too_large", f"upload over the limit of {limit} bytes") from None
    return size


def grant(user: User, sha256: str, now: dt.datetime) -> None:
    """Record that the user uploaded the blob's bytes (in the caller's write transaction)."""
    updated = BlobGrant.update(created=now).where(BlobGrant.sha256 == sha256, BlobGrant.user == user.id).execute()
    if not updated:
        BlobGrant.create(sha256=sha256, user=user.id, created=now)


def _unreferenced(query):
    """Restrict a query over something with a sha256 column to blobs no job names."""
    return query.where(
        ~fn_exists(JobFile.select(JobFile.id).where(JobFile.sha256 == Blob.sha256)),
        ~fn_exists(JobOutput.select(JobOutput.id).where(JobOutput.sha256 == Blob.sha256)))


def fn_exists(subquery) -> peewee.Expression:
    return peewee.fn.EXISTS(subquery)


def pending_bytes(user: User) -> int:
    """Bytes of the blobs the user uploaded that no job names (yet)."""
    query = Blob.select(peewee.fn.COALESCE(peewee.fn.SUM(Blob.size), 0)).join(
        BlobGrant, on=(BlobGrant.sha256 == Blob.sha256)).where(BlobGrant.user == user.id)
    return int(_unreferenced(query).scalar() or 0)


def project_usage(project_id: str, exclude: set[str] | None = None) -> tuple[int, set[str]]:
    """(bytes, hashes) of the distinct blobs that the project's jobs name."""
    shas: set[str] = set()
    for model in (JobFile, JobOutput):
        shas |= {s for (s,) in model.select(model.sha256).join(Job, on=(model.job == Job.id))
                 .where(Job.project == project_id).distinct().tuples()}
    total = 0
    listed = sorted(shas - (exclude or set()))
    for chunk in chunks(listed):
        total += int(Blob.select(peewee.fn.COALESCE(peewee.fn.SUM(Blob.size), 0))
                     .where(Blob.sha256.in_(chunk)).scalar() or 0)
    return total, shas


def project_quota(project: Project, default: int) -> int:
    """The project's storage quota in bytes; 0 means no limit."""
    return default if project.quota_bytes is None else project.quota_bytes


def collect(store: FileStore, now: dt.datetime, grace: dt.timedelta) -> tuple[int, int]:
    """Remove the blobs no job names whose last upload is older than `grace`: (count, bytes).

    Call inside the Server's write transaction. A file is unlinked only when
    its mtime is older than the cutoff too, so an upload of the same bytes that
    replaced it meanwhile (outside the lock) is kept, and its row recreated by
    that upload's own transaction.
    """
    cutoff = now - grace
    recent = BlobGrant.select(BlobGrant.id).where(BlobGrant.sha256 == Blob.sha256, BlobGrant.created >= cutoff)
    query = _unreferenced(Blob.select(Blob.sha256, Blob.size).where(Blob.created < cutoff, ~fn_exists(recent)))
    doomed = list(query.tuples())
    removed = 0
    for chunk in chunks([s for s, _ in doomed]):
        BlobGrant.delete().where(BlobGrant.sha256.in_(chunk)).execute()
        Blob.delete().where(Blob.sha256.in_(chunk)).execute()
    for sha, size in doomed:
        if store.delete_if_older(sha, cutoff):
            removed += size
    if doomed:
        log.info("removed %d unused blobs (%d bytes) last uploaded before %s", len(doomed), removed, cutoff)
    return len(doomed), removed


def forget(shas: Iterable[str]) -> None:
    """Drop the grants of blobs being deleted (the caller deletes the Blob rows and files)."""
    for chunk in chunks(sorted(set(shas))):
        BlobGrant.delete().where(BlobGrant.sha256.in_(chunk)).execute()
