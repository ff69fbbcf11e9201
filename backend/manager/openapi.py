"""The Manager's kinds of authentication, its schemas and its OpenAPI document's frame.

Routes are declared with `backend.routes.Routes.add(...)` in worker_api.py and
admin_api.py; the document at /api/openapi.json is generated from them.

* `worker`: HTTP Basic `worker id:secret`; the handler gets the `worker`.
* `worker_batched`: the same credentials, checked on the database thread
  together with the request's work (POST /task, task updates): the handler
  gets the `authorization` header, already known to be well-formed.
* `admin`: `Authorization: Bearer <admin token>` (or `?token=` where a browser
  cannot set headers: EventSource, <img>). Without a configured admin token
  only requests from this machine (loopback) are served.
* `registration`: open, or a Bearer HS256 JWT signed with the registration secret.
"""

from __future__ import annotations

import hmac

import bottle

from backend.errors import ApiError
from backend.routes import AuthKind, Routes
from shared.documents import PLATFORMS
from shared.slots import MAX_SLOTS, NEEDS
from shared.statuses import WORKER_REQUESTABLE

from . import worker_auth
from .workers import unauthorized

_LOOPBACK = ("127.", "::1", "::ffff:127.")
WORKER_BASIC = [{"workerBasic": []}]

SECURITY_SCHEMES = {
    "workerBasic": {"type": "http", "scheme": "basic", "description": "worker id : secret from /register-worker"},
    "adminBearer": {"type": "http", "scheme": "bearer", "description": "the Manager's admin token"},
    "registrationJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256)",
                        "description": "signed with the registration secret, when one is configured"},
}

SCHEMAS = {
    "Error": {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
    "WorkerRegistration": {"type": "object", "required": ["secret", "platform", "supported_task_types", "nickname"],
                           "properties": {"secret": {"type": "string"},
                                          "platform": {"enum": list(PLATFORMS)},
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
                            "failed_by_workers": {"type": "array"}, "job_files_mode": {"type": "string"},
                            "needs": {"enum": list(NEEDS)}}},
    "TaskRequest": {"type": "object", "required": ["free_slots"], "properties": {
        "free_slots": {"type": "integer", "minimum": 0, "maximum": MAX_SLOTS},
        "free_light_slots": {"type": "integer", "minimum": 0, "maximum": MAX_SLOTS},
        "free_gpus": {"type": "integer", "nullable": True, "minimum": 0, "maximum": MAX_SLOTS},
        "free_memory_mb": {"type": "integer", "nullable": True, "minimum": 0},
        "running": {"type": "array", "items": {"type": "string"}}}},
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
        "status": {"enum": sorted(WORKER_REQUESTABLE)}, "lazy": {"type": "boolean"}}},
    "SleepSchedule": {"type": "object", "properties": {
        "schedule_active": {"type": "boolean"}, "days_of_week": {"type": "string"},
        "time_start": {"type": "string"}, "time_end": {"type": "string"}}},
    "LocalTasks": {"type": "object", "properties": {"tasks": {"type": "array",
                                                              "items": {"$ref": "#/components/schemas/Task"}}}},
}


def auth_kinds(core) -> dict[str, AuthKind]:
    cfg = core.config

    def worker(kwargs):
        return core.workers.authenticate(bottle.request.get_header("Authorization"))

    def worker_header(kwargs):
        header = bottle.request.get_header("Authorization")
        if worker_auth.parse_basic(header) is None:
            raise unauthorized("worker routes need HTTP Basic auth (worker id : secret)")
        return header

    def admin(kwargs):
        req = bottle.request
        token = cfg.admin_token
        if not token:
            if not (req.remote_addr or "").startswith(_LOOPBACK):
                raise ApiError(403, "forbidden", "no admin token is configured: admin routes answer only localhost")
            return None
        header = req.get_header("Authorization") or ""
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        given = given or req.query.get("token", "")
        if not given:
            raise ApiError(401, "unauthorized", "admin routes need 'Authorization: Bearer <admin token>'",
                           {"WWW-Authenticate": 'Bearer realm="Flamenco Manager admin"'})
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(403, "forbidden", "wrong admin token")
        return None

    def registration(kwargs):
        try:
            worker_auth.check_registration(bottle.request.get_header("Authorization"), cfg.registration_secret)
        except worker_auth.AuthError as ex:
            if ex.status == 401:
                raise ApiError(401, "unauthorized", str(ex),
                               {"WWW-Authenticate": 'Bearer realm="Flamenco Manager"'}) from None
            raise ApiError(ex.status, "forbidden", str(ex)) from None
        return None

    worker_errors = {"401": "unknown worker or wrong secret"}
    return {
        "worker": AuthKind("worker", worker, WORKER_BASIC, worker_errors),
        "worker_batched": AuthKind("authorization", worker_header, WORKER_BASIC, worker_errors),
        "admin": AuthKind(None, admin, [{"adminBearer": []}],
                          {"401": "no admin token given", "403": "wrong admin token (or, with none configured, "
                                                                 "not from this machine)"}),
        "registration": AuthKind(None, registration, [{}, {"registrationJWT": []}],
                                 {"401": "registration token missing", "403": "registration token invalid or expired"}),
    }


def make_routes(app: bottle.Bottle, core) -> Routes:
    return Routes(app, title="Flamenco Manager", auth_kinds=auth_kinds(core), security_schemes=SECURITY_SCHEMES,
                  schemas=SCHEMAS,
                  description="Worker protocol (Flamenco 2 compatible, plus extensions) and admin API. "
                              "See docs/manager-api.md and docs/protocol.md.")
