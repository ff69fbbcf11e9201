"""The Manager's kinds of authentication, its schemas and its OpenAPI document's frame.

Routes are declared with `backend.routes.Routes.add(...)` in worker_api.py and
admin_api.py; the document at /api/openapi.json is generated from them.

* `worker`: HTTP Basic `worker id:secret`; the handler gets the `worker`.
* `worker_batched`: the same credentials, checked on the database thread
  together with the request's work (POST /task, task updates): the handler
  gets the `authorization` header, already known to be well-formed.
* `admin`: `Authorization: Bearer <admin token>` (minted by `flamenco-manager
  create-admin-token`, or the configured one), or the session cookie of the
  Manager's pages (signed in with the admin password) plus, for a request that
  changes something, its CSRF token in `X-Flamenco-CSRF`. A request that
  changes something must also be `Content-Type: application/json` (415) and,
  when it has an `Origin`, come from the Manager's own (403): a browser on
  another site can send neither. Nobody is let in without credentials, not
  even from this machine; with none configured the answer says how to set one.
* `registration`: open, or a Bearer HS256 JWT signed with the registration secret.
* `metrics`: `Authorization: Bearer <metrics token>` for GET /metrics (backend/metrics.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import bottle

from backend import metrics
from backend.errors import ApiError
from backend.routes import AuthKind, Routes
from shared.documents import PLATFORMS
from shared.slots import MAX_SLOTS, NEEDS
from shared.statuses import WORKER_REQUESTABLE

from . import admin_auth, worker_auth
from .workers import unauthorized

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WORKER_BASIC = [{"workerBasic": []}]

SECURITY_SCHEMES = {
    "workerBasic": {"type": "http", "scheme": "basic", "description": "worker id : secret from /register-worker"},
    "adminBearer": {"type": "http", "scheme": "bearer",
                    "description": "an admin token (flamenco-manager create-admin-token, or the configured one)"},
    "adminSession": {"type": "apiKey", "in": "cookie", "name": "flamenco_manager_session",
                     "description": "signed in on the Manager's pages with the admin password; requests that change "
                                    "something also carry X-Flamenco-CSRF"},
    "registrationJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256)",
                        "description": "signed with the registration secret, when one is configured"},
}

_FILE_MAP = {"type": "object", "description": "relpath -> {sha256, size}", "additionalProperties": {
    "type": "object", "properties": {"sha256": {"type": "string"}, "size": {"type": "integer"}}}}

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
                            "io": {"$ref": "#/components/schemas/TaskIO"},
                            "needs": {"enum": list(NEEDS)}}},
    "TaskIO": {"type": "object", "description": "Upload mode: what travels for this task (docs/protocol.md)",
               "properties": {"inputs": {"type": "array", "items": {"type": "string"}},
                              "outputs": {"type": "array", "items": {"type": "string"}},
                              "scratch": {"type": "boolean"},
                              "input_jobs": {"type": "array", "items": {"type": "string"}}}},
    "FileCheck": {"type": "object", "required": ["files"], "properties": {"files": {"type": "array", "items": {
        "type": "object", "properties": {"sha256": {"type": "string"}, "size": {"type": "integer"}}}}}},
    "FileCheckResult": {"type": "object", "properties": {
        "missing": {"type": "array", "items": {"type": "string"}},
        "partial": {"type": "object", "additionalProperties": {"type": "integer"},
                    "description": "sha256 -> bytes already here: resume the upload from there"}}},
    "Outputs": {"type": "object", "properties": {"files": _FILE_MAP}},
    "OutputRegistration": {"type": "object", "properties": {
        "task": {"type": "string"}, "removed": {"type": "array", "items": {"type": "string"}}, "files": _FILE_MAP}},
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
    "WorkerTags": {"type": "object", "required": ["tags"],
                   "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
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
        auth = core.admin_auth
        header = req.get_header("Authorization") or ""
        session = None
        if header:
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                raise ApiError(401, "unauthorized", "admin routes take 'Authorization: Bearer <admin token>'",
                               {"WWW-Authenticate": 'Bearer realm="Flamenco Manager admin"'})
            if not auth.token_ok(given.strip()):
                raise ApiError(403, "forbidden", "wrong or revoked admin token")
        else:
            session = auth.session(req.get_cookie(admin_auth.SESSION_COOKIE))
            if session is None:
                if not auth.configured():
                    raise ApiError(403, "admin_not_configured", admin_auth.HOW_TO_CONFIGURE)
                raise ApiError(401, "unauthorized", "admin routes need 'Authorization: Bearer <admin token>' or a "
                                                    "sign-in on the Manager's pages (/login)",
                               {"WWW-Authenticate": 'Bearer realm="Flamenco Manager admin"'})
        if req.method in SAFE_METHODS:
            return None
        check_same_origin()
        ctype = (req.content_type or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "unsupported_media_type", "admin requests that change something must be "
                                                          f"Content-Type: application/json, not '{ctype or 'none'}'")
        if session is not None and not session.csrf_ok(req.get_header(admin_auth.CSRF_HEADER)):
            raise ApiError(403, "csrf_failed", f"a request signed in by the page cookie must carry the page's "
                                               f"CSRF token in the {admin_auth.CSRF_HEADER} header")
        return None

    def check_same_origin():
        """A browser names the page that sent the request: it must be this Manager's."""
        origin = bottle.request.get_header("Origin")
        if origin is None:
            return
        if origin.rstrip("/") not in own_origins():
            raise ApiError(403, "cross_origin", f"requests from '{origin[:200]}' are not accepted; use this "
                                                "Manager's own pages")

    def own_origins() -> set[str]:
        parts = bottle.request.urlparts
        found = {f"{parts.scheme}://{parts.netloc}"}
        if cfg.manager_url:
            url = urlsplit(cfg.manager_url)
            found.add(f"{url.scheme}://{url.netloc}")
        return found

    def registration(kwargs):
        worker_auth.check_registration(bottle.request.get_header("Authorization"), cfg.registration_secret)
        return None

    worker_errors = {"401": "unknown worker or wrong secret"}
    return {
        "worker": AuthKind("worker", worker, WORKER_BASIC, worker_errors),
        "worker_batched": AuthKind("authorization", worker_header, WORKER_BASIC, worker_errors),
        "admin": AuthKind(None, admin, [{"adminBearer": []}, {"adminSession": []}],
                          {"401": "no admin token or page sign-in given",
                           "403": "wrong admin token, a missing CSRF token, a request from another site's page, "
                                  "or no admin password or token configured",
                           "415": "a request that changes something is not application/json"}),
        "registration": AuthKind(None, registration, [{}, {"registrationJWT": []}],
                                 {"401": "registration token missing", "403": "registration token invalid or expired"}),
        metrics.AUTH_KIND: metrics.auth_kind(cfg.metrics_token, "metrics_token in [manager] of the config file, or "
                                                                "FLAMENCO_MANAGER_METRICS_TOKEN (docs/metrics.md)"),
    }


def make_routes(app: bottle.Bottle, core) -> Routes:
    return Routes(app, title="Flamenco Manager", auth_kinds=auth_kinds(core),
                  security_schemes={**SECURITY_SCHEMES, **metrics.SECURITY_SCHEMES}, schemas=SCHEMAS,
                  description="Worker protocol (Flamenco 2 compatible, plus extensions) and admin API. "
                              "See docs/manager-api.md and docs/protocol.md.")
