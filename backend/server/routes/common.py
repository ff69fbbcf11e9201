"""Small request helpers shared by the route modules."""

from __future__ import annotations

import bottle

from backend.web import DISK_FULL_RETRY_SECONDS, ApiError, bad_request

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def query_int(name: str, default: int, lo: int, hi: int) -> int:
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"query parameter '{name}' must be an integer, not '{raw}'", "invalid_query") from None
    if not lo <= value <= hi:
        raise bad_request(f"query parameter '{name}' must be from {lo} to {hi}", "invalid_query")
    return value


def query_str(name: str) -> str | None:
    raw = bottle.request.query.getunicode(name)
    return raw if raw not in (None, "") else None


def query_bool(name: str) -> bool:
    raw = (bottle.request.query.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise bad_request(f"query parameter '{name}' must be 1 or 0 (true or false), not '{raw}'", "invalid_query")


def paging() -> tuple[int, int]:
    return query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), query_int("offset", 0, 0, 10 ** 9)


def reason_of(body: dict) -> str:
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise bad_request("'reason' must be a string of at most 2000 characters", "invalid_field")
    return reason


def no_content() -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204)


def check_free_space(ctx, incoming: int) -> None:
    """503 before an upload would leave less than min_free_bytes free: the database needs room to write."""
    reserve = ctx.config.min_free_bytes
    if reserve and ctx.store.free_bytes() - incoming < reserve:
        raise ApiError(503, "disk_full", "the Server's disk is nearly full; try again later",
                       {"Retry-After": str(DISK_FULL_RETRY_SECONDS)})
