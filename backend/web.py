"""Bottle plumbing shared by the Server and the Manager: JSON errors, JSON bodies,
a per-request database connection, and a busy database answered with 503.

Both services read their input through here, so these rules hold for both:
- a JSON body is refused (400) when it nests deeper than MAX_JSON_DEPTH or holds
  NaN/Infinity, which Python's json module accepts but JSON does not;
- every JSON answer is valid JSON: non-finite numbers stored before these rules
  are answered as null, never as a bare NaN;
- a request body is read through `request_body()`, which also takes a chunked
  body (cheroot removes the chunking before Bottle sees it, so Bottle's own
  de-chunking of `request.body` fails on it);
- header bytes that are not UTF-8 become U+FFFD before any route reads them
  (Bottle would raise while decoding), so such credentials simply do not match;
- a full disk answers 503 with Retry-After instead of 500.

Neither service imports the other; both import this.
"""

from __future__ import annotations

import errno
import functools
import logging
from typing import Any, BinaryIO

import bottle
import peewee

from shared.documents import DocumentError
from shared.json_text import MAX_JSON_DEPTH, dumps, loads  # noqa: F401 (re-exported)
from shared.statuses import TransitionError

from .errors import ApiError, bad_request, conflict, forbidden, not_found, unauthorized  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

MAX_JSON_BODY = 32 * 1024 * 1024
DISK_FULL_RETRY_SECONDS = 60


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    resp = bottle.HTTPResponse(status=status, body=dumps(body),
                               headers={"Content-Type": "application/json"})
    for k, v in (headers or {}).items():
        resp.set_header(k, v)
    return resp


def error_response(err: ApiError) -> bottle.HTTPResponse:
    return json_response(err.status, {"code": err.code, "message": err.message}, err.headers)


class BodyStream:
    """The request body as a stream; a broken chunked encoding is a 400, not a 500."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        try:
            return self.raw.read(size if size is not None and size >= 0 else None) or b""
        except (ValueError, OSError) as ex:  # cheroot: "Bad chunked transfer size", a size over its limit
            raise bad_request(f"could not read the request body: {ex}", "bad_body") from None


def request_body() -> tuple[BodyStream, int | None]:
    """(stream, length) of the request body, unbuffered; length None for a chunked body (read to EOF).

    The WSGI server (cheroot) already removes the chunked framing from
    wsgi.input, so the stream is read as it is; Bottle's `request.body` would
    try to de-chunk it a second time and fail.
    """
    env = bottle.request.environ
    if "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower():
        return BodyStream(env["wsgi.input"]), None
    raw_length = env.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw_length)
    except ValueError:
        raise bad_request(f"bad Content-Length '{raw_length}'", "bad_request") from None
    if length < 0:
        raise bad_request("bad Content-Length", "bad_request")
    return BodyStream(env["wsgi.input"]), length


def read_body(limit: int) -> bytes:
    """The whole request body, at most `limit` bytes (413 over it)."""
    stream, length = request_body()
    if length is not None and length > limit:
        raise ApiError(413, "too_large", f"request body over {limit} bytes")
    data = stream.read(length if length is not None else limit + 1)
    if len(data) > limit:
        raise ApiError(413, "too_large", f"request body over {limit} bytes")
    return data


def read_json(required: bool = True) -> Any:
    """The request body as JSON; ApiError 400/413/415 when it is not usable."""
    req = bottle.request
    raw = read_body(MAX_JSON_BODY)
    if not raw:
        if required:
            raise bad_request("a JSON body is required", "missing_body")
        return None
    ctype = (req.content_type or "").split(";")[0].strip().lower()
    if ctype and ctype not in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
        raise ApiError(415, "unsupported_media_type", f"expected application/json, got {ctype}")
    try:
        return loads(raw)
    except ValueError as ex:  # UnicodeDecodeError included
        raise bad_request(f"the body is not valid JSON: {ex}", "invalid_json") from None


def read_object() -> dict:
    body = read_json()
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object", "invalid_json")
    return body


def disk_full() -> ApiError:
    return ApiError(503, "disk_full", "the service's disk is full; try again later",
                    {"Retry-After": str(DISK_FULL_RETRY_SECONDS)})


def _chain(ex: BaseException):
    """The exception and those it was raised while handling: SQLite ends a transaction itself on a full
    disk, so the ROLLBACK that follows fails ('no transaction is active') on top of the real error."""
    seen = set()
    while ex is not None and id(ex) not in seen:
        seen.add(id(ex))
        yield ex
        ex = ex.__cause__ or ex.__context__


def is_disk_full(ex: BaseException) -> bool:
    """ENOSPC/EDQUOT from the file system, or SQLite's 'database or disk is full' (PostgreSQL: 53100)."""
    for e in _chain(ex):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(e).lower()
        if "disk is full" in text or "no space left on device" in text or getattr(e, "pgcode", None) == "53100":
            return True
    return False


def _is_busy(ex: Exception) -> bool:
    for e in _chain(ex):
        text = str(e).lower()
        if "database is locked" in text or "database is busy" in text or "deadlock" in text \
                or "could not serialize" in text:
            return True
    return False


def _answer_for(ex: Exception) -> bottle.HTTPResponse | None:
    """The answer to an error that the client or the machine's state caused, not a bug; None for a bug."""
    req = bottle.request
    if isinstance(ex, (peewee.OperationalError, peewee.InterfaceError)) and _is_busy(ex):
        log.warning("database busy on %s %s: %s", req.method, req.path, ex)
        return error_response(ApiError(503, "busy", "the database is busy, try again", {"Retry-After": "1"}))
    if isinstance(ex, (peewee.OperationalError, OSError)) and is_disk_full(ex):
        log.error("disk full on %s %s: %s", req.method, req.path, ex)
        return error_response(disk_full())
    if isinstance(ex, peewee.DataError):  # PostgreSQL: a number out of its column's range, a text too long
        first = str(ex).splitlines()[0][:200] if str(ex) else "out of range"
        log.info("value refused by the database on %s %s: %s", req.method, req.path, first)
        return error_response(bad_request(f"a value does not fit its field: {first}", "out_of_range"))
    if isinstance(ex, OverflowError):  # SQLite: an integer over 64 bits
        return error_response(bad_request("a number is too large", "out_of_range"))
    if isinstance(ex, ValueError) and "NUL (0x00)" in str(ex):  # psycopg2: a NUL in a path or query parameter
        return error_response(bad_request("a text may not contain NUL characters", "invalid_text"))
    return None


class JsonApiPlugin:
    """Turns dict/list results into JSON and errors (ApiError, an invalid document, a refused
    status change, a row gone meanwhile) into JSON {code, message}.

    Also opens the database connection for the request when a db is given, and
    answers a busy database or a full disk with 503 + Retry-After, and values no
    column can hold with 400, instead of a 500 (_answer_for).
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
            except (peewee.OperationalError, peewee.InterfaceError, peewee.DataError, OSError, OverflowError,
                    ValueError) as ex:
                answer = _answer_for(ex)
                if answer is None:
                    raise
                return answer
            if isinstance(result, (dict, list)):
                bottle.response.content_type = "application/json"
                return dumps(result)
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
            return dumps({"code": code, "message": message})
        return handle

    app.add_hook("before_request", _replace_undecodable_headers)
    for status, code in ((400, "bad_request"), (401, "unauthorized"), (403, "forbidden"),
                         (404, "not_found"), (405, "method_not_allowed"), (413, "too_large"),
                         (500, "internal_error")):
        app.error(status)(handler(status, code))


def _replace_undecodable_headers() -> None:
    """Header values that are not UTF-8 get U+FFFD for their bad bytes, before anything reads them.

    WSGI hands headers over as latin-1 text; Bottle re-decodes them as UTF-8
    on every read and raises on bytes that are not, which became a 500 in
    whatever route read the header (an Authorization with a stray 0xff).
    """
    env = bottle.request.environ
    for key, value in list(env.items()):
        if key.startswith("HTTP_") and isinstance(value, str) and not value.isascii():
            raw = value.encode("latin-1", "replace")
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                env[key] = raw.decode("utf-8", "replace").encode("utf-8").decode("latin-1")
