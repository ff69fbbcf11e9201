"""The Server's kinds of authentication and its OpenAPI document's frame.

Routes are declared with `backend.routes.Routes.add(...)`: `auth_kind="user"`
passes the signed-in `user`, `"admin"` an admin `user`, `"manager"` the
`manager` whose id is in the path, `"metrics"` (GET /metrics, backend/metrics.py)
and `"none"` nothing.
"""

from __future__ import annotations

from typing import Any

import bottle

from backend import metrics
from backend.errors import forbidden
from backend.routes import AuthKind, Routes
from shared.version import API_VERSION

from . import auth

USER_TOKEN = [{"userToken": []}]


def _admin(kwargs: dict):
    user = auth.authenticate_user()
    if not user.is_admin:
        raise forbidden("this needs an admin")
    return user


AUTH_KINDS = {
    "user": AuthKind("user", lambda kwargs: auth.authenticate_user(), USER_TOKEN,
                     {"401": "no or invalid API token"}),
    "admin": AuthKind("user", _admin, USER_TOKEN,
                      {"401": "no or invalid API token", "403": "the user is not an admin"}),
    "manager": AuthKind("manager", lambda kwargs: auth.authenticate_manager(kwargs.pop("manager_id")),
                        [{"managerToken": []}], {"401": "no or invalid manager token, or not this manager's"}),
}

SECURITY_SCHEMES = {
    "userToken": {"type": "http", "scheme": "bearer",
                  "description": "API token from `flamenco-server create-user` or POST /api/auth/login"},
    "managerToken": {"type": "http", "scheme": "bearer",
                     "description": "Manager token from `flamenco-server create-manager`"},
}


METRICS_HOW_TO = "metrics_token in server.toml or FLAMENCO_METRICS_TOKEN (docs/metrics.md)"


def make_routes(app: bottle.Bottle, schemas: dict[str, Any], metrics_token: str = "") -> Routes:
    kinds = {**AUTH_KINDS, metrics.AUTH_KIND: metrics.auth_kind(metrics_token, METRICS_HOW_TO)}
    return Routes(app, title="Flamenco Server API", auth_kinds=kinds,
                  security_schemes={**SECURITY_SCHEMES, **metrics.SECURITY_SCHEMES}, schemas=schemas,
                  description=f"User API (api_version {API_VERSION}) and the Manager API of docs/protocol.md. "
                              "Errors are JSON {code, message}.")
