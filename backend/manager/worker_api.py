"""The worker-facing routes: Flamenco Worker 2.x's protocol plus our extensions.

See docs/protocol.md (Worker -> Manager) and docs/manager-api.md. Every route
but /register-worker needs HTTP Basic auth `worker_id:secret`.
"""

from __future__ import annotations

import logging
import time

import bottle

from backend.web import ApiError, json_response, read_json, read_object
from shared import documents, protocol
from shared.statuses import WorkerStatus as WS

from .job_files import FileError
from .task_updates import UpdateRejected
from .wakeup import WOKEN
from .worker_auth import AuthError, check_registration
from .workers import WorkerError

log = logging.getLogger(__name__)


def no_content() -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204)


def _api_error(ex) -> ApiError:
    return ApiError(ex.status, ex.code, ex.message)


def install(app: bottle.Bottle, core) -> None:
    workers, scheduler, updates = core.workers, core.scheduler, core.updates
    cfg = core.config

    def authenticate(authorization: str | None, known: bool = False):
        """The worker of the Basic auth header (a KnownWorker with `known`, see Workers.authenticate_known)."""
        try:
            return (workers.authenticate_known if known else workers.authenticate)(authorization)
        except AuthError as ex:
            raise ApiError(ex.status, "unauthorized", str(ex),
                           {"WWW-Authenticate": 'Basic realm="Flamenco Manager"'}) from None

    def auth():
        return authenticate(bottle.request.get_header("Authorization"))

    @app.post("/register-worker")
    def register_worker():
        try:
            check_registration(bottle.request.get_header("Authorization"), cfg.registration_secret)
        except AuthError as ex:
            raise ApiError(ex.status, "unauthorized" if ex.status == 401 else "forbidden", str(ex),
                           {"WWW-Authenticate": 'Bearer realm="Flamenco Manager"'} if ex.status == 401 else None)
        reg = documents.WorkerRegistration.from_dict(read_object())
        worker = workers.register(reg, address=bottle.request.remote_addr or "")
        return {"_id": worker.id, "nickname": worker.nickname, "status": worker.status,
                "platform": worker.platform, "supported_task_types": worker.supported_task_types,
                "address": worker.address, "current_task": None}

    @app.post("/sign-on")
    def sign_on():
        worker = auth()
        body = read_json(required=False) or {}
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        workers.sign_on(worker, documents.WorkerSignOn.from_dict(body))
        return no_content()

    @app.post("/sign-off")
    def sign_off():
        workers.sign_off(auth())
        return no_content()

    # The two routes every dispatched task goes through do their database work in one call
    # to the database thread each (see db_thread.py): authentication included.

    _GONE, _STALE = "gone", "stale"

    def look(authorization, worker, request_error):
        """One look for work (on the database thread): (worker, Task model | None | 423 doc | _GONE | _STALE).

        The first look authenticates and marks the worker awake (it is asking for work).
        A later one, after a wait, re-reads the worker: one that signed off, went to
        sleep or was forgotten meanwhile gets nothing, and the scheduler checks that
        too, atomically with the claim."""
        if worker is None:
            worker = authenticate(authorization)
            if not worker.supported_task_types:
                raise ApiError(406, "no_task_types", "this worker supports no task types; sign on with some")
            if request_error is not None:
                raise request_error
            first = True
        else:
            try:
                worker = workers.get(worker.id)
            except WorkerError:
                return worker, _GONE
            if worker.status != WS.AWAKE.value:
                return worker, _STALE
            first = False
        if worker.status_requested:
            return worker, {"status_requested": worker.status_requested}
        if first:
            workers.mark_awake(worker)
        return worker, scheduler.claim(worker)

    @app.post("/task")
    def get_task():
        authorization = bottle.request.get_header("Authorization")
        wait, request_error = 0.0, None
        header = bottle.request.get_header(protocol.LONG_POLL_HEADER)
        if header:
            try:
                wait = max(0.0, min(float(header), cfg.scheduling.long_poll_max))
            except ValueError:
                request_error = ApiError(400, "bad_long_poll",
                                         f"{protocol.LONG_POLL_HEADER} must be a number of seconds")
        deadline = time.monotonic() + wait
        holding = False
        worker = None
        woken = None  # WOKEN: a notification chose this request; it takes the task or passes it on
        generation = 0
        try:
            while True:
                generation = core.wakeup.generation
                worker, found = core.db_thread.call(look, authorization, worker, request_error)
                if found is _GONE:
                    return no_content()
                if found is _STALE:
                    log.info("worker %s went %s while its long-poll was held; ending it", worker.identifier,
                             worker.status)
                    return no_content()
                if isinstance(found, dict):
                    return json_response(423, found)
                if found is not None:
                    woken = None
                    return scheduler.task_document(found, worker)
                if woken == WOKEN:
                    woken = None
                    scheduler.pass_on_wakeup(generation)
                if core.upstream is not None:
                    core.upstream.kick()
                remaining = deadline - time.monotonic()
                if remaining <= 0 or core.stop_event.is_set():
                    return no_content()
                if not holding:
                    holding = core.long_polls.acquire(blocking=False)
                    if not holding:
                        log.warning("long-poll slots (%d) all taken; worker %s gets 204 at once",
                                    core.long_polls_limit, worker.identifier)
                        return no_content()
                woken = core.wakeup.wait(generation, remaining, worker.id)
        finally:
            if holding:
                core.long_polls.release()
            if woken == WOKEN:
                scheduler.pass_on_wakeup(generation)

    def apply_update(authorization, task_id, update, request_error):
        """A task update (on the database thread). Merging reported resources needs the worker's row."""
        worker = authenticate(authorization, known=request_error is None and update.resources is None)
        if request_error is not None:
            raise request_error
        try:
            updates.apply(worker, task_id, update)
        except UpdateRejected as ex:
            raise _api_error(ex) from None

    @app.post("/tasks/<task_id>/update")
    def task_update(task_id):
        update, request_error = None, None
        try:
            update = documents.TaskUpdate.from_dict(read_object())
        except (ApiError, documents.DocumentError) as ex:
            request_error = ex  # answered after authentication, as before
        core.db_thread.call(apply_update, bottle.request.get_header("Authorization"), task_id, update,
                            request_error)
        return no_content()

    @app.post("/tasks/<task_id>/return")
    def task_return(task_id):
        worker = auth()
        try:
            updates.return_task(worker, task_id)
        except UpdateRejected as ex:
            raise _api_error(ex) from None
        return no_content()

    @app.get("/may-i-run/<task_id>")
    def may_i_run(task_id):
        worker = auth()
        answer = workers.may_i_run(worker, task_id)
        out = answer.to_dict(omit_none=True)
        out.setdefault("reason", "")
        return out

    @app.get("/status-change")
    def status_change():
        worker = auth()
        if worker.status_requested:
            return {"status_requested": worker.status_requested}
        return no_content()

    @app.post("/ack-status-change/<status>")
    def ack_status_change(status):
        worker = auth()
        try:
            workers.ack_status(worker, status)
        except WorkerError as ex:
            raise _api_error(ex) from None
        return no_content()

    @app.post("/output-produced")
    def output_produced():
        worker = auth()
        try:
            doc = documents.FileProduced.from_dict(read_object())
        except documents.DocumentError as ex:
            raise ApiError(422, "invalid_document", str(ex)) from None
        now = time.time()
        if now - (worker.last_output_produced or 0) < cfg.scheduling.output_produced_min_interval:
            return no_content()
        path = doc.paths[-1]
        if worker.platform != cfg.platform:
            path = cfg.variables.translate(path, worker.platform, cfg.platform)
        if core.latest_image.submit(path):
            with core.store.write():
                core.store.m.Worker.update(last_output_produced=now).where(core.store.m.Worker.id == worker.id).execute()
        return no_content()

    # --- upload-mode extensions ------------------------------------------------

    @app.get("/jobs/<job_id>/files")
    def job_files(job_id):
        auth()
        try:
            return core.files.manifest(job_id)
        except FileError as ex:
            raise _api_error(ex) from None

    @app.get("/files/<sha256>")
    def job_file(sha256):
        auth()
        try:
            path = core.files.file_path(sha256)
        except FileError as ex:
            raise _api_error(ex) from None
        resp = bottle.static_file(path.name, root=str(path.parent), mimetype="application/octet-stream")
        resp.set_header("Cache-Control", "private, max-age=31536000, immutable")
        return resp

    @app.put("/jobs/<job_id>/outputs/<relpath:path>")
    def job_output(job_id, relpath):
        auth()
        req = bottle.request
        length = req.content_length if req.content_length >= 0 else None
        body = req.environ["wsgi.input"] if length is not None else req.body
        try:
            core.files.store_output(job_id, relpath, req.query.get("task", ""), body, length,
                                    req.get_header(protocol.SHA256_HEADER))
        except FileError as ex:
            raise _api_error(ex) from None
        if core.upstream is not None:
            core.upstream.push_soon()
        return no_content()
