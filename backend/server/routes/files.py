"""Job files (content-addressed uploads) and job outputs, for clients."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

import bottle

from backend.web import ApiError, bad_request, not_found, read_object, request_body
from shared.checksums import is_sha256

from .. import blobs
from .. import jobs as job_service
from ..admin import visible_project_ids
from ..database import write
from ..models import Blob, JobFile, JobOutput
from ..views import iso
from .common import check_free_space

MAX_CHECK = 100_000


def send_blob(store, sha256: str, download_name: str | None = None):
    path = store.blob_path(sha256)
    if not path.is_file():
        raise not_found(f"file {sha256} is not on the Server's disk")
    resp = bottle.static_file(path.name, root=str(path.parent), mimetype="application/octet-stream")
    if isinstance(resp, bottle.HTTPError):
        raise ApiError(resp.status_code, "not_found" if resp.status_code == 404 else "error", str(resp.body))
    if download_name:
        resp.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(download_name)}")
    return resp


def pending_full(room: int) -> ApiError:
    return ApiError(507, "quota_exceeded", f"your uploads that no job uses yet may take {room} more bytes; "
                                           "submit the jobs that use them (or wait for unused ones to be removed)")


def install(routes, ctx) -> None:
    store = ctx.store

    @routes.add("POST", "/api/files/check", summary="Which of these files the Server still needs from you",
                tag="files", body="FileCheck", responses={200: ("the hashes to upload", "FileCheckResult")},
                description="A file counts as present only when a job of one of your projects names it or you "
                            "uploaded it yourself: a file stored for another project must be uploaded once "
                            "more (it is hashed and deduplicated, not stored twice).")
    def check(user):
        body = read_object()
        files = body.get("files")
        if not isinstance(files, list) or len(files) > MAX_CHECK:
            raise bad_request(f"'files' must be a list of at most {MAX_CHECK} {{sha256, size}}", "invalid_field")
        wanted: dict[str, int] = {}
        for i, entry in enumerate(files):
            if not isinstance(entry, dict) or not is_sha256(entry.get("sha256")) or \
                    isinstance(entry.get("size"), bool) or not isinstance(entry.get("size"), int) or entry["size"] < 0:
                raise bad_request(f"files[{i}] must be {{\"sha256\": <64 lowercase hex>, \"size\": <bytes>}}",
                                  "invalid_field")
            wanted[entry["sha256"]] = entry["size"]
        known = blobs.known_to(user, wanted, visible_project_ids(user))
        return {"missing": [s for s in wanted if s not in known or not store.has(s)]}

    @routes.add("PUT", "/api/files/<sha256>", summary="Upload one file, named by its SHA-256", tag="files",
                body="binary", body_type="application/octet-stream",
                responses={201: ("stored (or stored already for others: now yours too)", "Stored"),
                           200: ("you had uploaded it already", "Stored"),
                           400: "the bytes do not have this SHA-256; nothing stored", 413: "over the size limit",
                           503: "the Server's disk is (nearly) full; try again later",
                           507: "your uploads that no job uses yet are over max_pending_upload_bytes"})
    def put(user, sha256):
        if not is_sha256(sha256):
            raise bad_request("the path must end in the file's SHA-256 (64 lowercase hex digits)", "invalid_hash")
        stream, length = request_body()
        cfg = ctx.config
        known_before = sha256 in blobs.known_to(user, [sha256], visible_project_ids(user))
        room = None
        if cfg.max_pending_upload_bytes and not known_before:
            room = max(0, cfg.max_pending_upload_bytes - blobs.pending_bytes(user))
        check_free_space(ctx, length or 0)
        size = blobs.store_upload(store, stream, sha256, length, cfg.max_upload_bytes, room, pending_full)
        ctx.activity.uploaded("files", size)
        with write(ctx.db):
            now = ctx.clock.now()
            if Blob.get_or_none(Blob.sha256 == sha256) is None:
                Blob.create(sha256=sha256, size=size, created=now)
            blobs.grant(user, sha256, now)
        bottle.response.status = 200 if known_before else 201
        return {"sha256": sha256, "size": size}

    @routes.add("GET", "/api/files/<sha256>", summary="Download a job file or output by its SHA-256",
                tag="files", responses={200: "the bytes", 404: "no such file among the jobs you can see"})
    def get(user, sha256):
        if not is_sha256(sha256) or not blobs.known_to(user, [sha256], visible_project_ids(user)):
            raise not_found(f"no file {sha256}")
        return send_blob(store, sha256)

    @routes.add("GET", "/api/jobs/<job_id>/files", summary="The job's uploaded files (its manifest)",
                tag="files", responses={200: ("relpath -> {sha256, size}", "JobFiles"), 404: "no such job"})
    def job_files(user, job_id):
        job = job_service.get_visible_job(user, job_id)
        rows = JobFile.select(JobFile.relpath, JobFile.sha256, JobFile.size).where(JobFile.job == job.id).tuples()
        return {"files": {rel: {"sha256": sha, "size": size} for rel, sha, size in rows}}

    @routes.add("GET", "/api/jobs/<job_id>/outputs", summary="The outputs the job's workers produced",
                tag="files", responses={200: ("the outputs", "Outputs"), 404: "no such job"})
    def outputs(user, job_id):
        job = job_service.get_visible_job(user, job_id)
        rows = JobOutput.select().where(JobOutput.job == job.id).order_by(JobOutput.relpath)
        return {"outputs": [{"relpath": o.relpath, "sha256": o.sha256, "size": o.size, "task": o.task,
                             "created": iso(o.created),
                             "url": f"/api/jobs/{job.id}/outputs/{quote(o.relpath)}"} for o in rows]}

    @routes.add("GET", "/api/jobs/<job_id>/outputs/<relpath:path>", summary="Download one output of a job",
                tag="files", responses={200: "the bytes", 404: "no such job or output"})
    def output(user, job_id, relpath):
        job = job_service.get_visible_job(user, job_id)
        row = JobOutput.get_or_none(JobOutput.job == job.id, JobOutput.relpath == relpath)
        if row is None:
            raise not_found(f"job {job.id} has no output '{relpath}'")
        return send_blob(store, row.sha256, posixpath.basename(row.relpath))
