"""The worker-facing routes: Flamenco Worker 2.x's protocol plus our extensions
(upload mode's file routes are in files_api.py).

See docs/protocol.md (Worker -> Manager) and docs/manager-api.md. Every route
but /register-worker needs HTTP Basic auth `worker_id:secret`.
"""

from __future__ import annotations

import time

import bottle

from backend.errors import ApiError
from backend.web import json_response, read_json, read_object
from shared import documents, protocol

ERR = "Error"
TASK_DOC = "Task"


def no_content() -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204)


def task_request() -> tuple[documents.TaskRequest | None, Exception | None]:
    """The body of POST /task: a TaskRequest from a worker with slots (a JSON object with
    `free_slots`); no body (a Flamenco 2 worker) or another object is no request. A body that
    is not usable JSON is an error, answered after authentication."""
    try:
        body = read_json(required=False)
    except ApiError as ex:
        return None, ex
    if not isinstance(body, dict) or "free_slots" not in body:
        return None, None
    try:
        return documents.TaskRequest.from_dict(body), None
    except documents.DocumentError as ex:
        return None, ApiError(400, "invalid_document", str(ex))


def install(routes, core) -> None:
    workers, updates, dispatch, cfg = core.workers, core.updates, core.dispatch, core.config

    @routes.add("POST", "/register-worker", summary="Register a new worker (open, or with the registration JWT)",
                tag="worker", auth_kind="registration", body="WorkerRegistration",
                responses={200: ("the worker, with its _id", "Worker")})
    def register_worker():
        reg = documents.WorkerRegistration.from_dict(read_object())
        worker = workers.register(reg, address=bottle.request.remote_addr or "")
        return {"_id": worker.id, "nickname": worker.nickname, "status": worker.status,
                "platform": worker.platform, "supported_task_types": worker.supported_task_types,
                "address": worker.address, "current_task": None}

    @routes.add("POST", "/sign-on", summary="A known worker starts (task types, nickname, tags, resources)",
                tag="worker", auth_kind="worker", body="WorkerSignOn", responses={204: "signed on"})
    def sign_on(worker):
        body = read_json(required=False) or {}
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        workers.sign_on(worker, documents.WorkerSignOn.from_dict(body))
        return no_content()

    @routes.add("POST", "/sign-off", summary="The worker stops; its task goes back to the queue", tag="worker",
                auth_kind="worker", responses={204: "signed off"})
    def sign_off(worker):
        workers.sign_off(worker)
        return no_content()

    @routes.add("POST", "/task", summary="Get a task to run (a worker with slots: the tasks that fit what it has free)",
                tag="worker", auth_kind="worker_batched", body="TaskRequest",
                headers={protocol.LONG_POLL_HEADER: "seconds to wait for a task (capped)"},
                responses={200: ("the task to run; with a TaskRequest body {tasks: [Task, ...]}", TASK_DOC),
                           204: "nothing to do", 400: ("an unusable TaskRequest", ERR),
                           406: ("the worker has no task types", ERR),
                           423: ("a status change is requested", "WorkerStatus")})
    def get_task(authorization):
        request, request_error = task_request()
        answer = dispatch.next_task(authorization, bottle.request.get_header(protocol.LONG_POLL_HEADER), request,
                                    request_error)
        if answer.tasks is not None:
            return {"tasks": answer.tasks}
        if answer.task is not None:
            return answer.task
        if answer.status_requested:
            return json_response(423, {"status_requested": answer.status_requested})
        return no_content()

    @routes.add("POST", "/tasks/<task_id>/update", summary="Progress, status and log lines of the worker's task",
                tag="worker", auth_kind="worker_batched", body="TaskUpdate",
                responses={204: "applied", 404: ("unknown task", ERR), 409: ("the task is another worker's", ERR)})
    def task_update(authorization, task_id):
        update, request_error = None, None
        try:
            update = documents.TaskUpdate.from_dict(read_object())
        except (ApiError, documents.DocumentError) as ex:
            request_error = ex  # answered after authentication
        dispatch.task_update(authorization, task_id, update, request_error)
        return no_content()

    @routes.add("POST", "/tasks/<task_id>/return", summary="Give the task back to the queue", tag="worker",
                auth_kind="worker",
                responses={204: "returned", 404: ("unknown task", ERR), 409: ("the task is another worker's", ERR)})
    def task_return(worker, task_id):
        updates.return_task(worker, task_id)
        return no_content()

    @routes.add("GET", "/may-i-run/<task_id>", summary="May the worker keep running this task?", tag="worker",
                auth_kind="worker", responses={200: ("the answer", "MayKeepRunning")})
    def may_i_run(worker, task_id):
        out = workers.may_i_run(worker, task_id).to_dict(omit_none=True)
        out.setdefault("reason", "")
        return out

    @routes.add("GET", "/status-change", summary="Is a status change requested?", tag="worker", auth_kind="worker",
                responses={200: ("yes", "WorkerStatus"), 204: "no"})
    def status_change(worker):
        if worker.status_requested:
            return {"status_requested": worker.status_requested}
        return no_content()

    @routes.add("POST", "/ack-status-change/<status>", summary="The worker is now in this status", tag="worker",
                auth_kind="worker",
                responses={204: "noted", 409: ("the worker cannot go to that status now", ERR),
                           422: ("unknown status", ERR)})
    def ack_status_change(worker, status):
        workers.ack_status(worker, status)
        return no_content()

    @routes.add("POST", "/output-produced", summary="The worker produced these images (latest image)", tag="worker",
                auth_kind="worker", body="FileProduced", responses={204: "noted", 422: ("invalid document", ERR)})
    def output_produced(worker):
        try:
            doc = documents.FileProduced.from_dict(read_object())
        except documents.DocumentError as ex:
            raise ApiError(422, "invalid_document", str(ex)) from None
        path = doc.paths[-1]
        if worker.platform != cfg.platform:
            path = cfg.variables.translate(path, worker.platform, cfg.platform)
        if core.latest_image.accepts(path) and workers.output_produced(worker, time.time()):
            core.latest_image.submit(path)
        return no_content()
