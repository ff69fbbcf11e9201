"""Bottle plumbing shared by the Server and the Manager: JSON errors, JSON bodies,
a per-request database connection, and a busy database answered with 503.

Neither service imports the other; both import this.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import bottle
import peewee

from shared.documents import DocumentError
from shared.statuses import TransitionError

from .errors import ApiError, bad_request, conflict, forbidden, not_found, unauthorized  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

MAX_JSON_BODY = 32 * 1024 * 1024


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    resp = bottle.HTTPResponse(status=status, body=json.dumps(body),
                               headers={"Content-Type": "application/json"})
    for k, v in (headers or {}).items():
        resp.set_header(k, v)
    return resp


def error_response(err: ApiError) -> bottle.HTTPResponse:
    return json_response(err.status, {"code": err.code, "message": err.message}, err.headers)


def read_json(required: bool = True) -> Any:
    """The request body as JSON; ApiError 400/413/415 when it is not usable."""
    req = bottle.request
    length = req.content_length
    if length > MAX_JSON_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_JSON_BODY} bytes")
    raw = req.body.read(MAX_JSON_BODY + 1)
    if not raw:
        if required:
            raise bad_request("a JSON body is required", "missing_body")
        return None
    ctype = (req.content_type or "").split(";")[0].strip().lower()
    if ctype and ctype not in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
        raise ApiError(415, "unsupported_media_type", f"expected application/json, got {ctype}")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as ex:
        raise bad_request(f"the body is not valid JSON: {ex}", "invalid_json") from None


def read_object() -> dict:
    body = read_json()
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object", "invalid_json")
    return body


def _is_busy(ex: Exception) -> bool:
    text = str(ex).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock" in text \
        or "could not serialize" in text


class JsonApiPlugin:
    """Turns dict/list results into JSON and errors (ApiError, an invalid document, a refused
    status change, a row gone meanwhile) into JSON {code, message}.

    Also opens the database connection for the request when a db is given, and
    answers a busy database with 503 + Retry-After instead of a 500.
    """

    name = "flamenco_json_api"
    api = 2

    def __init__(self, db: peewee.Database | None = None):
        self.db = db

    def apply(self, callback, route):
        db = self.db

        @functools.wraps(callback)
        def wrapper(*args, **kwargs):
            try:
                if db is not None:
                    with db.connection_context():
                        result = callback(*args, **kwargs)
                else:
                    result = callback(*args, **kwargs)
            except ApiError as err:
                return error_response(err)
            except DocumentError as err:
                return error_response(ApiError(400, "invalid_document", str(err)))
            except TransitionError as err:
                return error_response(conflict(str(err), "invalid_transition"))
            except peewee.DoesNotExist as err:  # deleted by another request meanwhile
                return error_response(not_found(f"not found: {err}"))
            except (peewee.OperationalError, peewee.InterfaceError) as ex:
                if _is_busy(ex):
                    log.warning("database busy on %s %s: %s", bottle.request.method, bottle.request.path, ex)
                    return error_response(ApiError(503, "busy", "the database is busy, try again",
                                                   {"Retry-After": "1"}))
                raise
            if isinstance(result, (dict, list)):
                bottle.response.content_type = "application/json"
                return json.dumps(result)
            return result

        return wrapper


def install_json_errors(app: bottle.Bottle) -> None:
    """JSON bodies for the errors Bottle raises itself (404 route, 405, 500)."""

    def handler(status: int, code: str):
        def handle(err: bottle.HTTPError):
            bottle.response.content_type = "application/json"
            message = err.body if isinstance(err.body, str) and err.body else code.replace("_", " ")
            if status == 500:
                log.error("internal error on %s %s: %s", bottle.request.method, bottle.request.path,
                          err.traceback or err.exception)
                message = "internal server error"
            return json.dumps({"code": code, "message": message})
        return handle

    for status, code in ((400, "bad_request"), (401, "unauthorized"), (403, "forbidden"),
                         (404, "not_found"), (405, "method_not_allowed"), (413, "too_large"),
                         (500, "internal_error")):
        app.error(status)(handler(status, code))
