"""The one error both services raise for what a client (or a worker, or a Manager) caused.

Domain code raises `ApiError(status, code, message)`; the JSON plugin of
`backend/web.py` answers it as `{"code", "message"}` with that status. No
Bottle here, so persistence and services can raise it without knowing HTTP.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error the client caused (or must be told about), answered as JSON {code, message}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def unauthorized(message: str, challenge: str | None = None) -> ApiError:
    headers = {"WWW-Authenticate": challenge} if challenge else {}
    return ApiError(401, "unauthorized", message, headers)
