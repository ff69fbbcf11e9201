"""Job files (content-addressed uploads) and job outputs, for clients."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

import bottle

from backend.web import ApiError, bad_request, not_found, read_object
from shared.checksums import HashMismatch, TooLarge, is_sha256
from shared.chunking import chunks

from .. import jobs as job_service
from ..admin import visible_project_ids
from ..database import write
from ..models import Blob, Job, JobFile, JobOutput
from ..views import iso

MAX_CHECK = 100_000


def request_stream():
    """(stream, length) of the request body without Bottle buffering it first."""
    env = bottle.request.environ
    length = env.get("CONTENT_LENGTH")
    if length not in (None, "") and "chunked" not in env.get("HTTP_TRANSFER_ENCODING", "").lower():
        try:
            return env["wsgi.input"], int(length)
        except ValueError:
            raise bad_request("bad Content-Length", "bad_request") from None
    return bottle.request.body, None


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


def install(routes, ctx) -> None:
    store = ctx.store

    @routes.add("POST", "/api/files/check", summary="Which of these files the Server still needs", tag="files",
                body="FileCheck", responses={200: ("the hashes to upload", "FileCheckResult")})
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
        shas = list(wanted)
        stored: dict[str, int] = {}
        for chunk in chunks(shas):
            stored.update(Blob.select(Blob.sha256, Blob.size).where(Blob.sha256.in_(chunk)).tuples())
        return {"missing": [s for s in shas if s not in stored or not store.has(s)]}

    @routes.add("PUT", "/api/files/<sha256>", summary="Upload one file, named by its SHA-256", tag="files",
                body="binary", body_type="application/octet-stream",
                responses={201: ("stored", "Stored"), 200: ("already stored", "Stored"),
                           400: "the bytes do not have this SHA-256; nothing stored", 413: "over the size limit"})
    def put(user, sha256):
        if not is_sha256(sha256):
            raise bad_request("the path must end in the file's SHA-256 (64 lowercase hex digits)", "invalid_hash")
        stream, length = request_stream()
        limit = ctx.config.max_upload_bytes or None
        if limit and length and length > limit:
            raise ApiError(413, "too_large", f"upload of {length} bytes over the limit of {limit}")
        try:
            size, created = store.put(stream, sha256, length, limit)
        except HashMismatch as ex:
            raise bad_request(str(ex), "hash_mismatch") from None
        except TooLarge as ex:
            raise ApiError(413, "too_large", str(ex)) from None
        with write(ctx.db):
            if Blob.get_or_none(Blob.sha256 == sha256) is None:
                Blob.create(sha256=sha256, size=size, created=ctx.clock.now())
                created = True
        bottle.response.status = 201 if created else 200
        return {"sha256": sha256, "size": size}

    @routes.add("GET", "/api/files/<sha256>", summary="Download a job file or output by its SHA-256",
                tag="files", responses={200: "the bytes", 404: "no such file among the jobs you can see"})
    def get(user, sha256):
        if not is_sha256(sha256) or Blob.get_or_none(Blob.sha256 == sha256) is None:
            raise not_found(f"no file {sha256}")
        projects = visible_project_ids(user)
        if projects is not None:
            pids = list(projects)
            seen = JobFile.select().join(Job).where(JobFile.sha256 == sha256, Job.project.in_(pids)).exists() \
                or JobOutput.select().join(Job).where(JobOutput.sha256 == sha256, Job.project.in_(pids)).exists()
            if not seen:
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
