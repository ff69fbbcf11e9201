"""The Manager API of docs/protocol.md, under /api/managers/{manager_id}/."""

from __future__ import annotations

import bottle

from backend.web import ApiError, bad_request, not_found, read_object, request_body
from shared.checksums import is_sha256
from shared.documents import TaskUpdateBatch, UpstreamNotification, WorkerReport
from shared.protocol import (IF_UPDATED_SINCE, LAST_UPDATED, LONG_POLL_HEADER, MORE_HEADER, NEWS_HEADER,
                             NEWS_KINDS_HEADER, SHA256_HEADER)

from .. import manager_files, manager_sync
from ..news import ALL_KINDS, TASKS
from .common import check_free_space, no_content, query_int
from .files import send_blob

P = "/api/managers/<manager_id>"
MAX_LOG_BYTES = 256 * 1024 * 1024
MAX_HOLD_SECONDS = 60.0
"""The longest a depsgraph request is held (a Manager asks for less than its HTTP timeout)."""


def _seconds_header(name: str, cap: float) -> float:
    raw = bottle.request.get_header(name)
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"{name} must be a number of seconds", "invalid_header") from None
    if value != value or value < 0:
        raise bad_request(f"{name} must be a number of seconds", "invalid_header")
    return min(value, cap)


def install(routes, ctx) -> None:
    def announce(manager, startup: bool):
        manager_sync.announce(ctx, manager, UpstreamNotification.from_dict(read_object()), startup)
        return no_content()

    @routes.add("POST", f"{P}/startup", summary="The Manager started: its URL, variables, workers, task types",
                tag="manager", auth_kind="manager", body="UpstreamNotification", responses={204: "stored"})
    def startup(manager):
        return announce(manager, True)

    @routes.add("POST", f"{P}/update", summary="Something about the Manager changed", tag="manager",
                auth_kind="manager", body="UpstreamNotification", responses={204: "stored"})
    def update(manager):
        return announce(manager, False)

    @routes.add("POST", f"{P}/workers", summary="The Manager's workers as it sees them now", tag="manager",
                auth_kind="manager", body="WorkerReport", responses={204: "stored"})
    def workers(manager):
        manager_sync.worker_report(ctx, manager, WorkerReport.from_dict(read_object()))
        return no_content()

    @routes.add("GET", f"{P}/depsgraph", summary="Runnable tasks for this Manager (queued ones become claimed), "
                "held until there is news when asked", tag="manager", auth_kind="manager",
                query={"limit": f"tasks per answer (default {manager_sync.DEPSGRAPH_PAGE}, "
                                f"at most {manager_sync.DEPSGRAPH_MAX_PAGE})"},
                responses={200: ("the tasks; header X-Flamenco-Last-Updated is the cursor to send back next "
                                 "time, X-Flamenco-More: true when another page follows", "ScheduledTasks"),
                           304: "nothing after X-Flamenco-If-Updated-Since (the cursor)"},
                description="Without X-Flamenco-If-Updated-Since: every queued, claimed-by-manager, "
                            "soft-failed and active task of this Manager's runnable, unblocked jobs, in pages. "
                            "With it: those changed after it. With X-Flamenco-Long-Poll: <seconds> and "
                            "X-Flamenco-News: <the token of the last answer>, a request that finds nothing is "
                            "held until something changes for this Manager (tasks, cancels, log requests, ...; "
                            "X-Flamenco-News-Kinds says what) or the time is up (docs/protocol.md).")
    def depsgraph(manager):
        manager_sync.touch(ctx, manager)
        raw = bottle.request.get_header(IF_UPDATED_SINCE)
        cursor = None
        if raw:
            try:
                cursor = manager_sync.parse_cursor(raw)
            except ValueError:
                raise bad_request(f"{IF_UPDATED_SINCE} must be the {LAST_UPDATED} of an earlier answer, not "
                                  f"'{raw}'", "invalid_header") from None
        limit = query_int("limit", manager_sync.DEPSGRAPH_PAGE, 1, manager_sync.DEPSGRAPH_MAX_PAGE)
        hold = _seconds_header(LONG_POLL_HEADER, MAX_HOLD_SECONDS)
        seen = bottle.request.get_header(NEWS_HEADER)
        token, kinds = ctx.news.since(manager.id, seen)
        body, count, next_cursor, more = manager_sync.depsgraph(ctx, manager, cursor, limit)
        held = hold
        if not count and not kinds and hold > 0:
            got = ctx.news.wait(manager.id, token, hold)
            if got is None:
                held = 0  # no thread to hold it on: the Manager polls
            else:
                token, kinds = got
                if TASKS in kinds or ALL_KINDS in kinds:
                    body, count, next_cursor, more = manager_sync.depsgraph(ctx, manager, cursor, limit)
        headers = {LAST_UPDATED: next_cursor, NEWS_HEADER: token, NEWS_KINDS_HEADER: ",".join(kinds)}
        if hold:
            headers[LONG_POLL_HEADER] = f"{held:g}"
        if more:
            headers[MORE_HEADER] = "true"
        if cursor is not None and not count:
            resp = bottle.HTTPResponse(status=304)
            for name, value in headers.items():
                resp.set_header(name, value)
            return resp
        for name, value in headers.items():
            bottle.response.set_header(name, value)
        bottle.response.content_type = "application/json"
        return body

    @routes.add("POST", f"{P}/task-update-batch", summary="Task updates from the Manager, applied once each",
                tag="manager", auth_kind="manager", body="TaskUpdateBatch",
                responses={200: ("what was handled, and what to cancel or upload", "TaskUpdateResponse")})
    def task_update_batch(manager):
        manager_sync.touch(ctx, manager)
        return manager_sync.apply_batch(ctx, manager, TaskUpdateBatch.from_dict(read_object()))

    @routes.add("POST", f"{P}/tasks/<task_id>/log", summary="A task's full log, gzip'd", tag="manager",
                auth_kind="manager", body="binary", body_type="application/gzip",
                responses={204: "stored (a log over task_log_max_bytes unpacked keeps its head and tail)",
                           400: "not gzip", 404: "not this Manager's task", 413: "over 256 MiB gzip'd"})
    def task_log(manager, task_id):
        stream, length = request_body()
        if length is not None and length > MAX_LOG_BYTES:
            raise ApiError(413, "too_large", f"a task log may be at most {MAX_LOG_BYTES} bytes gzip'd")
        check_free_space(ctx, length or 0)
        manager_sync.store_task_log(ctx, manager, task_id, stream, length, MAX_LOG_BYTES)
        return no_content()

    @routes.add("GET", f"{P}/jobs/<job_id>/files", summary="The manifest of a job's uploaded files",
                tag="manager", auth_kind="manager",
                responses={200: ("relpath -> {sha256, size}", "JobFiles"), 404: "not this Manager's job"})
    def job_files(manager, job_id):
        return manager_files.job_files(manager, job_id)

    @routes.add("GET", f"{P}/jobs/<job_id>/outputs", summary="The outputs of a job of this Manager, or of a job "
                "one of its jobs depends on", tag="manager", auth_kind="manager",
                responses={200: ("relpath -> {sha256, size}", "JobFiles"), 404: "no such job for this Manager"})
    def job_outputs(manager, job_id):
        return manager_files.job_outputs(manager, job_id)

    @routes.add("POST", f"{P}/jobs/<job_id>/outputs", summary="Register a task's outputs by checksum; the "
                "answer lists the checksums whose bytes the Server still needs", tag="manager",
                auth_kind="manager", body="OutputRegistration",
                responses={200: ("{missing: [sha256]}: send those with PUT .../outputs/{relpath}", "Missing"),
                           400: "bad path or checksum", 404: "not this Manager's job"})
    def register_outputs(manager, job_id):
        return manager_files.register_outputs(ctx, manager, job_id, read_object())

    @routes.add("GET", f"{P}/files/<sha256>", summary="A file of one of this Manager's jobs (or an output of a "
                "job they depend on)", tag="manager", auth_kind="manager",
                responses={200: "the bytes", 404: "not a file of this Manager's jobs"})
    def get_file(manager, sha256):
        if not is_sha256(sha256) or not manager_files.may_read_blob(manager, sha256):
            raise not_found(f"no file {sha256} for this manager")
        return send_blob(ctx.store, sha256)

    @routes.add("PUT", f"{P}/jobs/<job_id>/outputs/<relpath:path>", summary="An output a worker produced",
                tag="manager", auth_kind="manager", body="binary", body_type="application/octet-stream",
                query={"task": "the task that produced it"},
                responses={204: "stored (idempotent)", 400: "bad path, no task, or the bytes do not match the "
                                                             "SHA-256 header",
                           403: "the task is not of this job, or not one this Manager holds or held",
                           404: "not this Manager's job", 507: "the project's storage quota is used up"})
    def put_output(manager, job_id, relpath):
        stream, length = request_body()
        check_free_space(ctx, length or 0)
        manager_files.put_output(ctx, manager, job_id, relpath, bottle.request.query.getunicode("task") or None,
                                (bottle.request.get_header(SHA256_HEADER) or "").strip().lower(), stream, length)
        return no_content()
