"""Admin JSON routes for the dashboard (and the farm's tools), plus task logs and the latest image.

Auth: `Authorization: Bearer <admin token>` (or `?token=` where a browser
cannot set headers: EventSource, <img>). Without a configured admin token
these routes only answer requests from this machine (loopback).
"""

from __future__ import annotations

import hmac
import json
import logging
import time

import bottle
from peewee import fn

from backend.web import ApiError, read_json, read_object
from shared import documents
from shared.statuses import WorkerStatus as WS
from shared.version import __version__

from .ingest import ingest_tasks
from .task_logs import safe_id
from .task_state import iso_now
from .workers import WorkerError

log = logging.getLogger(__name__)

_LOOPBACK = ("127.", "::1", "::ffff:127.")


def install(app: bottle.Bottle, core) -> None:
    cfg = core.config
    workers, store = core.workers, core.store
    m = store.m

    def require_admin():
        req = bottle.request
        token = cfg.admin_token
        if not token:
            if not (req.remote_addr or "").startswith(_LOOPBACK):
                raise ApiError(403, "forbidden", "no admin token is configured: admin routes answer only localhost")
            return
        given = ""
        header = req.get_header("Authorization") or ""
        if header[:7].lower() == "bearer ":
            given = header[7:].strip()
        given = given or req.query.get("token", "")
        if not given:
            raise ApiError(401, "unauthorized", "admin routes need 'Authorization: Bearer <admin token>'",
                           {"WWW-Authenticate": 'Bearer realm="Flamenco Manager admin"'})
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(403, "forbidden", "wrong admin token")

    def wrap(fn):
        try:
            return fn()
        except WorkerError as ex:
            raise ApiError(ex.status, ex.code, ex.message) from None

    @app.get("/")
    def index():
        return {"service": "flamenco-manager", "version": __version__,
                "linked": cfg.upstream.linked, "openapi": "/api/openapi.json"}

    @app.get("/api/admin/status")
    def status():
        require_admin()
        store.ensure_connected()
        T, W = m.Task, m.Worker
        tasks = {row.status: row.n for row in T.select(T.status, fn.COUNT(T.id).alias("n")).group_by(T.status)}
        wstat = {row.status: row.n for row in W.select(W.status, fn.COUNT(W.id).alias("n")).group_by(W.status)}
        up = core.upstream
        return {
            "version": __version__,
            "workers": {"total": sum(wstat.values()), "by_status": wstat},
            "tasks": {"total": sum(tasks.values()), "by_status": tasks},
            "long_polls": {"waiting": core.wakeup.waiting, "limit": core.long_polls_limit},
            "dispatch": {"requests": core.db_thread.jobs, "transactions": core.db_thread.batches,
                         "busy_seconds": round(core.db_thread.busy_seconds, 3),
                         "cpu_seconds": round(core.db_thread.cpu_seconds, 3)},
            "upstream": {"queue_length": m.UpstreamItem.select().count(),
                         **(up.health.to_dict(True) if up else {"linked": False, "healthy": False}),
                         "server_url": cfg.upstream.server_url or None,
                         "manager_id": cfg.upstream.manager_id or None},
            "latest_image": core.latest_image.info(),
        }

    @app.get("/api/admin/workers")
    def list_workers():
        require_admin()
        store.ensure_connected()
        return {"workers": [workers.admin_info(w) for w in m.Worker.select().order_by(m.Worker.nickname)]}

    @app.get("/api/admin/workers/<worker_id>")
    def get_worker(worker_id):
        require_admin()
        return wrap(lambda: workers.admin_info(workers.get(worker_id)))

    @app.post("/api/admin/workers/<worker_id>/set-status")
    def set_status(worker_id):
        require_admin()
        body = read_object()
        status, lazy = body.get("status"), body.get("lazy", False)
        if not isinstance(status, str) or not isinstance(lazy, bool):
            raise ApiError(400, "bad_request", "give {\"status\": \"asleep|awake|shutdown\", \"lazy\": bool}")
        return wrap(lambda: workers.admin_info(workers.request_status(worker_id, status, lazy)))

    @app.post("/api/admin/workers/<worker_id>/shutdown")
    def shutdown(worker_id):
        require_admin()
        body = read_json(required=False) or {}
        lazy = body.get("lazy", False) if isinstance(body, dict) else False
        return wrap(lambda: workers.admin_info(workers.request_status(worker_id, WS.SHUTDOWN.value, bool(lazy))))

    @app.post("/api/admin/workers/<worker_id>/ack-timeout")
    def ack_timeout(worker_id):
        require_admin()

        def do():
            worker = workers.get(worker_id)
            if worker.status != WS.TIMEOUT.value:
                raise WorkerError(409, "not_timed_out", f"worker {worker_id} is {worker.status}, not timeout")
            with store.write():
                m.Worker.update(status=WS.OFFLINE.value).where(m.Worker.id == worker_id).execute()
            workers.changed.set()
            return workers.admin_info(workers.get(worker_id))
        return wrap(do)

    @app.delete("/api/admin/workers/<worker_id>")
    def forget(worker_id):
        require_admin()
        wrap(lambda: workers.forget(worker_id))
        return bottle.HTTPResponse(status=204)

    @app.delete("/api/admin/workers/<worker_id>/blocklist")
    def clear_blocklist(worker_id):
        require_admin()
        return {"removed": wrap(lambda: workers.clear_blocklist(worker_id))}

    @app.put("/api/admin/workers/<worker_id>/sleep-schedule")
    def sleep_schedule(worker_id):
        require_admin()
        body = read_object()
        active = body.get("schedule_active", False)
        fields = [body.get(k, "") for k in ("days_of_week", "time_start", "time_end")]
        if not isinstance(active, bool) or not all(isinstance(f, str) for f in fields):
            raise ApiError(400, "bad_schedule", "give {schedule_active: bool, days_of_week: 'mo tu ...', "
                                                "time_start: 'HH:MM', time_end: 'HH:MM'}")
        wrap(lambda: workers.set_sleep_schedule(worker_id, active, *fields))
        core.sleep_scheduler.tick()
        return wrap(lambda: workers.admin_info(workers.get(worker_id)))

    @app.get("/api/admin/blocklist")
    def blocklist():
        require_admin()
        store.ensure_connected()
        return {"blocklist": workers.blocklist()}

    @app.get("/api/admin/tasks")
    def list_tasks():
        require_admin()
        store.ensure_connected()
        T = m.Task
        q = T.select().order_by(T.seq.desc())
        if bottle.request.query.get("status"):
            q = q.where(T.status == bottle.request.query.get("status"))
        if bottle.request.query.get("job"):
            q = q.where(T.job == bottle.request.query.get("job"))
        try:
            limit = min(1000, max(1, int(bottle.request.query.get("limit", "100"))))
        except ValueError:
            raise ApiError(400, "bad_request", "limit must be a number") from None
        return {"tasks": [{"_id": t.id, "job": t.job, "name": t.name, "status": t.status,
                           "task_type": t.task_type, "priority": t.priority, "job_priority": t.job_priority,
                           "worker": t.worker, "activity": t.activity,
                           "task_progress_percentage": t.task_progress_percentage,
                           "failed_by_workers": t.failed_by_workers, "local": t.local,
                           "updated": iso_now(t.updated)} for t in q.limit(limit)]}

    @app.post("/api/admin/local-tasks")
    def local_tasks():
        """Manager-local tasks (test jobs, benchmarks): scheduled here, never sent to the Server."""
        require_admin()
        body = read_object()
        raw = body.get("tasks")
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, "bad_request", "give {\"tasks\": [Task, ...]}")
        docs = [documents.Task.from_dict(t, prefix=f"tasks[{i}].") for i, t in enumerate(raw)]
        counts = ingest_tasks(store, core.state, docs, local=True)
        return counts

    @app.post("/api/admin/kick")
    def kick():
        require_admin()
        if core.upstream is None:
            raise ApiError(409, "not_linked", "this Manager is not linked to a Server")
        core.upstream.kick()
        return bottle.HTTPResponse(status=204)

    # --- logs and images -------------------------------------------------------

    @app.get("/logfile/<job_id>/<task_id>")
    def logfile(job_id, task_id):
        require_admin()
        if not (safe_id(job_id) and safe_id(task_id)):
            raise ApiError(400, "bad_id", "unusable job or task id")
        req = bottle.request
        agent = (req.get_header("User-Agent") or "").lower()
        full = req.query.get("full") in ("1", "true", "yes") or agent.startswith(("curl", "wget"))
        if full:
            data = core.logs.read_bytes(job_id, task_id)
        else:
            data = core.logs.head_and_tail(job_id, task_id, cfg.logs.serve_head_bytes, cfg.logs.serve_tail_bytes)
        if data is None:
            raise ApiError(404, "not_found", f"no log for task {task_id} of job {job_id}")
        bottle.response.content_type = "text/plain; charset=utf-8"
        return data

    @app.get("/latest-image.jpg")
    def latest_image_jpg():
        require_admin()
        path = core.latest_image.out_path
        if not path.exists():
            raise ApiError(404, "not_found", "no image was rendered yet")
        resp = bottle.static_file(path.name, root=str(path.parent), mimetype="image/jpeg")
        resp.set_header("Cache-Control", "no-cache")
        return resp

    @app.get("/latest-image")
    def latest_image_info():
        require_admin()
        return core.latest_image.info()

    @app.get("/imagewatch")
    def imagewatch():
        require_admin()
        latest = core.latest_image
        if not latest.streams.acquire(blocking=False):
            raise ApiError(503, "busy", "too many image streams are open", {"Retry-After": "30"})
        bottle.response.content_type = "text/event-stream"
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")
        limit = cfg.latest_image.stream_max_seconds

        def stream():
            try:
                started = time.monotonic()
                seen = latest.changed.generation
                yield "retry: 3000\n\n"
                if latest.out_path.exists():
                    yield f"event: image\ndata: {json.dumps(latest.info())}\n\n"
                while time.monotonic() - started < limit and not core.stop_event.is_set():
                    if latest.changed.wait(seen, 15.0):
                        seen = latest.changed.generation
                        yield f"event: image\ndata: {json.dumps(latest.info())}\n\n"
                    else:
                        yield ": keep-alive\n\n"
            finally:
                latest.streams.release()
        return stream()
