"""Admin JSON routes for the dashboard (and the farm's tools), plus task logs and the latest image.

Auth: see openapi.py (`admin`).
"""

from __future__ import annotations

import json
import logging
import time

import bottle

from backend.errors import ApiError
from backend.web import read_json, read_object
from backend.webui import wants_html
from shared import documents
from shared.statuses import WorkerStatus as WS
from shared.timefmt import iso_utc
from shared.version import __version__

from .ingest import ingest_tasks
from .task_logs import safe_id

log = logging.getLogger(__name__)

ERR = "Error"
OBJECT = {"type": "object"}


def no_content() -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204)


def install(routes, core) -> None:
    cfg, workers, db = core.config, core.workers, core.db

    @routes.add("GET", "/", summary="Service information (a browser is sent to the pages)", tag="meta",
                auth_kind="none", responses={200: ("name, version, link state", OBJECT), 303: "to /status"})
    def index():
        if wants_html():
            bottle.redirect("/status", 303)  # a person's browser: the Manager's pages
        return {"service": "flamenco-manager", "version": __version__,
                "linked": cfg.upstream.linked, "openapi": "/api/openapi.json", "pages": "/status"}

    @routes.add("GET", "/api/openapi.json", summary="This API, as an OpenAPI 3 document", tag="meta",
                auth_kind="none", responses={200: ("OpenAPI 3", OBJECT)})
    def openapi():
        return routes.document()

    @routes.add("GET", "/openapi.json", summary="The same document, where Flamenco 2 tools look", tag="meta",
                auth_kind="none", responses={200: ("OpenAPI 3", OBJECT)})
    def openapi_root():
        return routes.document()

    @routes.add("GET", "/api/admin/status", summary="Status report: workers, tasks, long-polls, upstream queue, "
                "server link", tag="admin", auth_kind="admin", responses={200: ("the report", OBJECT)})
    def status():
        tasks, wstat = db.tasks.count_by_status(), db.workers.count_by_status()
        up = core.upstream
        return {
            "version": __version__,
            "workers": {"total": sum(wstat.values()), "by_status": wstat},
            "tasks": {"total": sum(tasks.values()), "by_status": tasks},
            "long_polls": {"waiting": core.wakeup.waiting, "limit": core.dispatch.long_polls_limit},
            "dispatch": {"requests": db.db_thread.jobs, "transactions": db.db_thread.batches,
                         "busy_seconds": round(db.db_thread.busy_seconds, 3),
                         "cpu_seconds": round(db.db_thread.cpu_seconds, 3)},
            "upstream": {"queue_length": db.upstream.length(), "queue": queue_summary(),
                         **(up.health.to_dict(True) if up else {"linked": False, "healthy": False}),
                         "server_url": cfg.upstream.server_url or None,
                         "manager_id": cfg.upstream.manager_id or None},
            "latest_image": core.latest_image.info(),
            "files": core.files.store.report(),
            "storage": core.storage.report(),
        }

    def queue_summary() -> dict:
        summary = db.upstream.summary()
        summary["oldest"] = iso_utc(summary["oldest"]) if summary["oldest"] else None
        return summary

    @routes.add("GET", "/api/admin/workers", summary="All workers with status, current task, resources, schedule",
                tag="admin", auth_kind="admin", responses={200: ("{workers: [...]}", OBJECT)})
    def list_workers():
        running = db.tasks.running_by_worker()
        return {"workers": [workers.admin_info(w, running) for w in db.workers.all()]}

    @routes.add("GET", "/api/admin/workers/<worker_id>", summary="One worker", tag="admin", auth_kind="admin",
                responses={200: ("the worker", OBJECT), 404: ("unknown worker", ERR)})
    def get_worker(worker_id):
        return workers.admin_info(workers.get(worker_id))

    @routes.add("POST", "/api/admin/workers/<worker_id>/set-status",
                summary="Request asleep/awake/shutdown, lazy or immediate", tag="admin", auth_kind="admin",
                body="SetStatus", responses={200: ("the worker", OBJECT), 404: ("unknown worker", ERR)})
    def set_status(worker_id):
        body = read_object()
        status, lazy = body.get("status"), body.get("lazy", False)
        if not isinstance(status, str) or not isinstance(lazy, bool):
            raise ApiError(400, "bad_request", "give {\"status\": \"asleep|awake|shutdown\", \"lazy\": bool}")
        return workers.admin_info(workers.request_status(worker_id, status, lazy))

    @routes.add("POST", "/api/admin/workers/<worker_id>/shutdown", summary="Request a shutdown ({lazy})",
                tag="admin", auth_kind="admin", responses={200: ("the worker", OBJECT), 404: ("unknown worker", ERR)})
    def shutdown(worker_id):
        body = read_json(required=False) or {}
        lazy = body.get("lazy", False) if isinstance(body, dict) else False
        return workers.admin_info(workers.request_status(worker_id, WS.SHUTDOWN, bool(lazy)))

    @routes.add("POST", "/api/admin/workers/<worker_id>/ack-timeout", summary="A timed-out worker becomes offline",
                tag="admin", auth_kind="admin",
                responses={200: ("the worker", OBJECT), 404: ("unknown worker", ERR),
                           409: ("the worker is not timed out", ERR)})
    def ack_timeout(worker_id):
        workers.ack_timeout(worker_id)
        return workers.admin_info(workers.get(worker_id))

    @routes.add("DELETE", "/api/admin/workers/<worker_id>", summary="Forget a worker (its task goes back to the queue)",
                tag="admin", auth_kind="admin", responses={204: "forgotten", 404: ("unknown worker", ERR)})
    def forget(worker_id):
        workers.forget(worker_id)
        return no_content()

    @routes.add("DELETE", "/api/admin/workers/<worker_id>/blocklist", summary="Clear the worker's blocklist",
                tag="admin", auth_kind="admin", responses={200: ("{removed: n}", OBJECT),
                                                           404: ("unknown worker", ERR)})
    def clear_blocklist(worker_id):
        return {"removed": workers.clear_blocklist(worker_id)}

    @routes.add("PUT", "/api/admin/workers/<worker_id>/sleep-schedule", summary="Set the sleep schedule",
                tag="admin", auth_kind="admin", body="SleepSchedule",
                responses={200: ("the worker", OBJECT), 404: ("unknown worker", ERR)})
    def sleep_schedule(worker_id):
        body = read_object()
        active = body.get("schedule_active", False)
        fields = [body.get(k, "") for k in ("days_of_week", "time_start", "time_end")]
        if not isinstance(active, bool) or not all(isinstance(f, str) for f in fields):
            raise ApiError(400, "bad_schedule", "give {schedule_active: bool, days_of_week: 'mo tu ...', "
                                                "time_start: 'HH:MM', time_end: 'HH:MM'}")
        workers.set_sleep_schedule(worker_id, active, *fields)
        core.sleep_scheduler.tick()
        return workers.admin_info(workers.get(worker_id))

    @routes.add("PUT", "/api/admin/workers/<worker_id>/tags", summary="Set the worker's tags (they stay when it "
                "signs on with others)", tag="admin", auth_kind="admin", body="WorkerTags",
                responses={200: ("the worker", OBJECT), 404: ("unknown worker", ERR)})
    def set_tags(worker_id):
        workers.set_tags(worker_id, read_object().get("tags"))
        return workers.admin_info(workers.get(worker_id))

    @routes.add("GET", "/api/admin/blocklist", summary="The whole blocklist", tag="admin", auth_kind="admin",
                responses={200: ("{blocklist: [...]}", OBJECT)})
    def blocklist():
        return {"blocklist": workers.blocklist()}

    @routes.add("GET", "/api/admin/tasks", summary="Tasks held here, newest first", tag="admin", auth_kind="admin",
                query={"status": "only tasks in this status", "job": "only tasks of this job",
                       "limit": "how many, 1-1000 (100)"},
                responses={200: ("{tasks: [...]}", OBJECT)})
    def list_tasks():
        query = bottle.request.query
        try:
            limit = min(1000, max(1, int(query.get("limit", "100"))))
        except ValueError:
            raise ApiError(400, "bad_request", "limit must be a number") from None
        tasks = db.tasks.listing(query.get("status") or None, query.get("job") or None, limit)
        return {"tasks": [{"_id": t.id, "job": t.job, "name": t.name, "status": t.status,
                           "task_type": t.task_type, "priority": t.priority, "job_priority": t.job_priority,
                           "worker": t.worker, "activity": t.activity,
                           "task_progress_percentage": t.task_progress_percentage,
                           "failed_by_workers": t.failed_by_workers, "local": t.local,
                           "updated": iso_utc(t.updated)} for t in tasks]}

    @routes.add("POST", "/api/admin/local-tasks",
                summary="Add Manager-local tasks (tests, benchmarks), never sent upstream", tag="admin",
                auth_kind="admin", body="LocalTasks",
                responses={200: ("{new, updated, skipped}", OBJECT), 400: ("invalid tasks", ERR)})
    def local_tasks():
        raw = read_object().get("tasks")
        if not isinstance(raw, list) or not raw:
            raise ApiError(400, "bad_request", "give {\"tasks\": [Task, ...]}")
        docs = [documents.Task.from_dict(t, prefix=f"tasks[{i}].") for i, t in enumerate(raw)]
        return ingest_tasks(db, core.state, docs, local=True)

    @routes.add("POST", "/api/admin/kick", summary="Fetch tasks from the Server now", tag="admin",
                auth_kind="admin", responses={204: "kicked", 409: ("not linked", ERR)})
    def kick():
        if core.upstream is None:
            raise ApiError(409, "not_linked", "this Manager is not linked to a Server")
        core.upstream.kick()
        return no_content()

    # --- logs and images -------------------------------------------------------

    @routes.add("GET", "/logfile/<job_id>/<task_id>", summary="The task's log (head + tail; ?full=1, curl and wget "
                "get it all)", tag="logs", auth_kind="admin", query={"full": "1 for the whole log"},
                responses={200: ("the log", {"type": "string"}, "text/plain"), 404: ("no log", ERR)})
    def logfile(job_id, task_id):
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

    @routes.add("GET", "/latest-image.jpg", summary="The latest rendered image as a JPEG", tag="images",
                auth_kind="admin",
                responses={200: ("the image", {"type": "string", "format": "binary"}, "image/jpeg"),
                           404: ("none yet", ERR)})
    def latest_image_jpg():
        path = core.latest_image.out_path
        if not path.exists():
            raise ApiError(404, "not_found", "no image was rendered yet")
        resp = bottle.static_file(path.name, root=str(path.parent), mimetype="image/jpeg")
        resp.set_header("Cache-Control", "no-cache")
        return resp

    @routes.add("GET", "/latest-image", summary="About the latest image", tag="images", auth_kind="admin",
                responses={200: ("source, updated", OBJECT)})
    def latest_image_info():
        return core.latest_image.info()

    @routes.add("GET", "/imagewatch", summary="Server-Sent Events: 'image' when a new latest image is ready",
                tag="images", auth_kind="admin",
                responses={200: ("event stream", {"type": "string"}, "text/event-stream"),
                           503: ("too many streams", ERR)})
    def imagewatch():
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
