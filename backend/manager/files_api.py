"""Upload mode's routes for workers: job files down, outputs up, outputs of earlier tasks down.

See docs/protocol.md (Worker -> Manager, upload mode). All need the worker's
HTTP Basic auth.
"""

from __future__ import annotations

import bottle

from backend.errors import ApiError
from backend.web import read_object, request_body
from shared import protocol

ERR = "Error"
BINARY = ("the bytes", {"type": "string", "format": "binary"}, "application/octet-stream")


def _int_header(name: str, required: bool) -> int | None:
    raw = bottle.request.get_header(name)
    if raw is None and not required:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, "bad_header", f"header {name} must be a number of bytes") from None
    if value < 0:
        raise ApiError(400, "bad_header", f"header {name} may not be negative")
    return value


def install(routes, core) -> None:
    files = core.files
    store = files.store

    def send(path):
        resp = bottle.static_file(path.name, root=str(path.parent), mimetype="application/octet-stream")
        resp.set_header("Cache-Control", "private, max-age=31536000, immutable")
        if resp.status_code == 200:
            store.stats.add(to_workers=path.stat().st_size)
        return resp

    @routes.add("GET", "/jobs/<job_id>/files", summary="Upload mode: the job's file manifest", tag="files",
                auth_kind="worker",
                responses={200: ("{files: {relpath: {sha256, size}}}", {"type": "object"}),
                           404: ("unknown job", ERR),
                           503: ("the Server is unreachable and nothing is cached", ERR)})
    def job_files(worker, job_id):
        return files.manifest(job_id)

    @routes.add("GET", "/files/<sha256>", summary="Upload mode: a job file or output by checksum (fetched from "
                "the Server the first time)", tag="files", auth_kind="worker",
                responses={200: BINARY, 404: ("unknown file", ERR), 503: ("the Server is unreachable", ERR)})
    def get_file(worker, sha256):
        return send(files.file_path(sha256))

    @routes.add("POST", "/files/check", summary="Upload mode: which of these files the Manager lacks, and how "
                "much of each already arrived", tag="files", auth_kind="worker", body="FileCheck",
                responses={200: ("{missing: [sha256], partial: {sha256: bytes}}", "FileCheckResult")})
    def check(worker):
        return files.check(read_object())

    @routes.add("PUT", "/files/<sha256>", summary="Upload mode: (the rest of) a file, resumable", tag="files",
                auth_kind="worker", body="binary", body_type="application/octet-stream",
                headers={protocol.UPLOAD_OFFSET_HEADER: "where this body starts (bytes already here; 0)",
                         protocol.UPLOAD_SIZE_HEADER: "the whole file's size"},
                responses={201: ("stored: {sha256, size}", {"type": "object"}),
                           202: ("more to come: {offset}", {"type": "object"}),
                           400: ("the whole file does not have this checksum, or is longer than its size; "
                                 "dropped", ERR),
                           409: ("the offset is not what is here (header X-Flamenco-Upload-Offset says what "
                                 "is), or someone else is uploading this file", ERR)})
    def put_file(worker, sha256):
        stream, length = request_body()
        offset = _int_header(protocol.UPLOAD_OFFSET_HEADER, False) or 0
        size = _int_header(protocol.UPLOAD_SIZE_HEADER, True)
        have = store.receive(sha256, size, offset, stream, length)
        if have < size:
            bottle.response.status = 202
            return {"sha256": sha256, "offset": have}
        bottle.response.status = 201
        return {"sha256": sha256, "size": have}

    @routes.add("POST", "/jobs/<job_id>/outputs", summary="Upload mode: what a task made and removed in the "
                "job's tree (the files must be here: PUT /files/{sha256} first)", tag="files",
                auth_kind="worker", body="OutputRegistration",
                responses={200: ("{registered, removed, to_server}", {"type": "object"}),
                           403: ("the task is not this worker's (any more)", ERR),
                           409: ("some files are not here yet", ERR)})
    def register(worker, job_id):
        result = files.register(worker, job_id, read_object())
        if core.upstream is not None and result["to_server"]:
            core.upstream.push_soon()
        return result

    @routes.add("GET", "/jobs/<job_id>/outputs", summary="Upload mode: a job's outputs (those under each "
                "?prefix=, or all): here, or as the Server lists them for a job made elsewhere", tag="files",
                auth_kind="worker", query={"prefix": "a path in the job's tree (repeatable; '' is all)"},
                responses={200: ("{files: {relpath: {sha256, size}}}", "Outputs"),
                           503: ("not here and the Server is unreachable", ERR)})
    def outputs(worker, job_id):
        prefixes = bottle.request.query.getall("prefix")
        return files.outputs(job_id, prefixes if prefixes else None)

    @routes.add("GET", "/jobs/<job_id>/outputs/<relpath:path>", summary="Upload mode: one output of a job",
                tag="files", auth_kind="worker", responses={200: BINARY, 404: ("no such output here", ERR)})
    def output(worker, job_id, relpath):
        return send(files.output_path(job_id, relpath))

    @routes.add("PUT", "/jobs/<job_id>/outputs/<relpath:path>",
                summary="Upload mode: one output file in one request (?task=ID, header X-Flamenco-SHA256)",
                tag="files", auth_kind="worker", body="binary", body_type="application/octet-stream",
                query={"task": "the task that produced it"},
                headers={protocol.SHA256_HEADER: "the body's SHA-256, checked"},
                responses={204: "stored and registered", 403: ("the task is not this worker's (any more)", ERR)})
    def put_output(worker, job_id, relpath):
        stream, length = request_body()
        files.store_output(worker, job_id, relpath, bottle.request.query.get("task", ""), stream, length,
                           bottle.request.get_header(protocol.SHA256_HEADER))
        if core.upstream is not None:
            core.upstream.push_soon()
        return bottle.HTTPResponse(status=204)
