"""The OpenAPI document of the Manager, served at /api/openapi.json and /openapi.json.

Routes are listed once here; a test walks app.routes and fails if one is missing.
"""

from __future__ import annotations

import re

import bottle

from shared.version import __version__

BASIC = [{"workerBasic": []}]
ADMIN = [{"adminBearer": []}]
REG = [{}, {"registrationJWT": []}]

ERR = {"$ref": "#/components/schemas/Error"}


def _r(code: int, description: str, schema: dict | None = None, content_type: str = "application/json"):
    out = {"description": description}
    if schema is not None:
        out["content"] = {content_type: {"schema": schema}}
    return str(code), out


# (method, path, summary, security, request schema or None, [responses])
ROUTES = [
    ("POST", "/register-worker", "Register a new worker (open, or with the registration JWT)", REG,
     "WorkerRegistration", [_r(200, "the worker, with its _id", {"$ref": "#/components/schemas/Worker"}),
                            _r(400, "invalid document", ERR), _r(401, "registration token missing", ERR),
                            _r(403, "registration token invalid or expired", ERR)]),
    ("POST", "/sign-on", "A known worker starts (task types, nickname, tags, resources)", BASIC, "WorkerSignOn",
     [_r(204, "signed on"), _r(401, "unknown worker or wrong secret", ERR)]),
    ("POST", "/sign-off", "The worker stops; its task goes back to the queue", BASIC, None,
     [_r(204, "signed off"), _r(401, "unauthorized", ERR)]),
    ("POST", "/task", "Get a task to run (header X-Flamenco-Long-Poll: seconds to wait for one)", BASIC, None,
     [_r(200, "the task to run", {"$ref": "#/components/schemas/Task"}), _r(204, "nothing to do"),
      _r(400, "bad long-poll header", ERR), _r(401, "unauthorized", ERR),
      _r(406, "the worker has no task types", ERR),
      _r(423, "a status change is requested", {"$ref": "#/components/schemas/WorkerStatus"})]),
    ("POST", "/tasks/{task_id}/update", "Progress, status and log lines of the worker's task", BASIC, "TaskUpdate",
     [_r(204, "applied"), _r(400, "invalid document", ERR), _r(404, "unknown task", ERR),
      _r(409, "the task is another worker's", ERR)]),
    ("POST", "/tasks/{task_id}/return", "Give the task back to the queue", BASIC, None,
     [_r(204, "returned"), _r(404, "unknown task", ERR), _r(409, "the task is another worker's", ERR)]),
    ("GET", "/may-i-run/{task_id}", "May the worker keep running this task?", BASIC, None,
     [_r(200, "the answer", {"$ref": "#/components/schemas/MayKeepRunning"})]),
    ("GET", "/status-change", "Is a status change requested?", BASIC, None,
     [_r(200, "yes", {"$ref": "#/components/schemas/WorkerStatus"}), _r(204, "no")]),
    ("POST", "/ack-status-change/{status}", "The worker is now in this status", BASIC, None,
     [_r(204, "noted"), _r(422, "unknown status", ERR)]),
    ("POST", "/output-produced", "The worker produced these images (latest image)", BASIC, "FileProduced",
     [_r(204, "noted"), _r(422, "invalid document", ERR)]),
    ("GET", "/jobs/{job_id}/files", "Upload mode: the job's file manifest", BASIC, None,
     [_r(200, "{files: {relpath: {sha256, size}}}", {"type": "object"}), _r(404, "unknown job", ERR),
      _r(503, "the Server is unreachable and nothing is cached", ERR)]),
    ("GET", "/files/{sha256}", "Upload mode: a job file by checksum (fetched from the Server once)", BASIC, None,
     [_r(200, "the bytes", {"type": "string", "format": "binary"}, "application/octet-stream"),
      _r(404, "unknown file", ERR), _r(503, "the Server is unreachable", ERR)]),
    ("PUT", "/jobs/{job_id}/outputs/{relpath}", "Upload mode: an output file (query ?task=ID, header "
     "X-Flamenco-SHA256); queued for the Server", BASIC, "binary",
     [_r(204, "stored and queued"), _r(400, "bad path or checksum", ERR)]),
    ("GET", "/", "Service information", [], None, [_r(200, "name, version, link state", {"type": "object"})]),
    ("GET", "/api/admin/status", "Status report: workers, tasks, long-polls, upstream queue, server link", ADMIN,
     None, [_r(200, "the report", {"type": "object"})]),
    ("GET", "/api/admin/workers", "All workers with status, current task, resources, schedule", ADMIN, None,
     [_r(200, "{workers: [...]}", {"type": "object"})]),
    ("GET", "/api/admin/workers/{worker_id}", "One worker", ADMIN, None,
     [_r(200, "the worker", {"type": "object"}), _r(404, "unknown worker", ERR)]),
    ("POST", "/api/admin/workers/{worker_id}/set-status", "Request asleep/awake/shutdown, lazy or immediate",
     ADMIN, "SetStatus", [_r(200, "the worker", {"type": "object"}), _r(400, "bad status", ERR),
                          _r(404, "unknown worker", ERR)]),
    ("POST", "/api/admin/workers/{worker_id}/shutdown", "Request a shutdown ({lazy})", ADMIN, None,
     [_r(200, "the worker", {"type": "object"}), _r(404, "unknown worker", ERR)]),
    ("POST", "/api/admin/workers/{worker_id}/ack-timeout", "A timed-out worker becomes offline", ADMIN, None,
     [_r(200, "the worker", {"type": "object"}), _r(409, "the worker is not timed out", ERR)]),
    ("DELETE", "/api/admin/workers/{worker_id}", "Forget a worker (its task goes back to the queue)", ADMIN, None,
     [_r(204, "forgotten"), _r(404, "unknown worker", ERR)]),
    ("DELETE", "/api/admin/workers/{worker_id}/blocklist", "Clear the worker's blocklist", ADMIN, None,
     [_r(200, "{removed: n}", {"type": "object"})]),
    ("PUT", "/api/admin/workers/{worker_id}/sleep-schedule", "Set the sleep schedule", ADMIN, "SleepSchedule",
     [_r(200, "the worker", {"type": "object"}), _r(400, "bad schedule", ERR)]),
    ("GET", "/api/admin/blocklist", "The whole blocklist", ADMIN, None,
     [_r(200, "{blocklist: [...]}", {"type": "object"})]),
    ("GET", "/api/admin/tasks", "Tasks held here (?status, ?job, ?limit)", ADMIN, None,
     [_r(200, "{tasks: [...]}", {"type": "object"})]),
    ("POST", "/api/admin/local-tasks", "Add Manager-local tasks (tests, benchmarks), never sent upstream", ADMIN,
     "LocalTasks", [_r(200, "{new, updated, skipped}", {"type": "object"}), _r(400, "invalid tasks", ERR)]),
    ("POST", "/api/admin/kick", "Fetch tasks from the Server now", ADMIN, None,
     [_r(204, "kicked"), _r(409, "not linked", ERR)]),
    ("GET", "/logfile/{job_id}/{task_id}", "The task's log (head + tail; ?full=1, curl and wget get it all)",
     ADMIN, None, [_r(200, "the log", {"type": "string"}, "text/plain"), _r(404, "no log", ERR)]),
    ("GET", "/latest-image.jpg", "The latest rendered image as a JPEG", ADMIN, None,
     [_r(200, "the image", {"type": "string", "format": "binary"}, "image/jpeg"), _r(404, "none yet", ERR)]),
    ("GET", "/latest-image", "About the latest image", ADMIN, None, [_r(200, "source, updated", {"type": "object"})]),
    ("GET", "/imagewatch", "Server-Sent Events: 'image' when a new latest image is ready", ADMIN, None,
     [_r(200, "event stream", {"type": "string"}, "text/event-stream"), _r(503, "too many streams", ERR)]),
    ("GET", "/api/openapi.json", "This document", [], None, [_r(200, "OpenAPI 3", {"type": "object"})]),
    ("GET", "/openapi.json", "This document", [], None, [_r(200, "OpenAPI 3", {"type": "object"})]),
]

SCHEMAS = {
    "Error": {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
    "WorkerRegistration": {"type": "object", "required": ["secret", "platform", "supported_task_types", "nickname"],
                           "properties": {"secret": {"type": "string"},
                                          "platform": {"enum": ["linux", "windows", "darwin"]},
                                          "supported_task_types": {"type": "array", "items": {"type": "string"}},
                                          "nickname": {"type": "string"}}},
    "Worker": {"type": "object", "properties": {"_id": {"type": "string"}, "nickname": {"type": "string"},
                                                "status": {"type": "string"}, "platform": {"type": "string"},
                                                "supported_task_types": {"type": "array"}}},
    "WorkerSignOn": {"type": "object", "properties": {
        "supported_task_types": {"type": "array", "items": {"type": "string"}}, "nickname": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "resources": {"type": "object", "properties": {k: {"type": "number"} for k in (
            "cpu_count", "mem_total_mb", "mem_free_mb", "load_avg", "disk_free_mb")}}}},
    "Task": {"type": "object", "required": ["_id", "job", "name", "status", "task_type", "commands"],
             "properties": {"_id": {"type": "string"}, "job": {"type": "string"}, "name": {"type": "string"},
                            "status": {"type": "string"}, "task_type": {"type": "string"},
                            "priority": {"type": "integer"}, "job_priority": {"type": "integer"},
                            "commands": {"type": "array", "items": {"type": "object", "properties": {
                                "name": {"type": "string"}, "settings": {"type": "object"}}}},
                            "parents": {"type": "array", "items": {"type": "string"}},
                            "failed_by_workers": {"type": "array"}, "job_files_mode": {"type": "string"}}},
    "TaskUpdate": {"type": "object", "properties": {
        "task_status": {"type": "string"}, "activity": {"type": "string"},
        "current_command_idx": {"type": "integer"}, "task_progress_percentage": {"type": "number"},
        "command_progress_percentage": {"type": "number"}, "log": {"type": "string"},
        "metrics": {"type": "object"}, "resources": {"type": "object"}}},
    "WorkerStatus": {"type": "object", "properties": {"status_requested": {"type": "string"}}},
    "MayKeepRunning": {"type": "object", "properties": {"may_keep_running": {"type": "boolean"},
                                                        "reason": {"type": "string"},
                                                        "status_requested": {"type": "string"}}},
    "FileProduced": {"type": "object", "required": ["paths"],
                     "properties": {"paths": {"type": "array", "items": {"type": "string"}}}},
    "SetStatus": {"type": "object", "required": ["status"], "properties": {
        "status": {"enum": ["asleep", "awake", "shutdown"]}, "lazy": {"type": "boolean"}}},
    "SleepSchedule": {"type": "object", "properties": {
        "schedule_active": {"type": "boolean"}, "days_of_week": {"type": "string"},
        "time_start": {"type": "string"}, "time_end": {"type": "string"}}},
    "LocalTasks": {"type": "object", "properties": {"tasks": {"type": "array",
                                                              "items": {"$ref": "#/components/schemas/Task"}}}},
}


def bottle_rule_to_path(rule: str) -> str:
    """'/tasks/<task_id>/update' -> '/tasks/{task_id}/update' (filters dropped)."""
    return re.sub(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>", r"{\1}", rule)


def document() -> dict:
    paths: dict[str, dict] = {}
    for method, path, summary, security, request, responses in ROUTES:
        op = {"summary": summary, "responses": dict(responses), "security": security}
        params = re.findall(r"{([^}]+)}", path)
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                for p in params]
        if path == "/task":
            op.setdefault("parameters", []).append(
                {"name": "X-Flamenco-Long-Poll", "in": "header", "required": False,
                 "schema": {"type": "number"}, "description": "seconds to wait for a task (capped)"})
        if request == "binary":
            op["requestBody"] = {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                      "format": "binary"}}}}
        elif request:
            op["requestBody"] = {"content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{request}"}}}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Flamenco Manager", "version": __version__,
                 "description": "Worker protocol (Flamenco 2 compatible, plus extensions) and admin API. "
                                "See docs/manager-api.md."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "workerBasic": {"type": "http", "scheme": "basic"},
                "adminBearer": {"type": "http", "scheme": "bearer"},
                "registrationJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256)"},
            },
        },
    }


def install(app: bottle.Bottle, core) -> None:
    doc = document()

    @app.get("/api/openapi.json")
    def openapi_json():
        return doc

    @app.get("/openapi.json")
    def openapi_json_root():
        return doc
