"""Routes declared once: added to the Bottle app and described in the OpenAPI document.

Every route of the Server is added through `Routes.add(...)`, which records
its summary, auth, parameters, body and answers; `document()` builds
`GET /api/openapi.json` from those records, and a test checks that each of
`app.routes` is in it, but for the web pages, which `page(...)` adds and
lists in `pages` (HTML, not API). The wrapper also authenticates: `auth="user"`
passes the signed-in `user`, `auth="admin"` an admin `user`, `auth="manager"`
the `manager` whose id is in the path; each operation says which in
`x-flamenco-auth` (the security suite builds its auth matrix from it).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import bottle
import peewee

from backend.web import conflict, forbidden, not_found
from shared.statuses import TransitionError
from shared.version import API_VERSION, __version__

from . import auth

_PARAM = re.compile(r"<([a-zA-Z_][a-zA-Z0-9_]*)(?::[^>]*)?>")

ERROR_SCHEMA = {"type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}

STD_ERRORS = {
    "user": {"401": "no or invalid API token"},
    "admin": {"401": "no or invalid API token", "403": "the user is not an admin"},
    "manager": {"401": "no or invalid manager token, or not this manager's"},
    "none": {},
}


def openapi_path(rule: str) -> str:
    """'/api/jobs/<job_id>' -> '/api/jobs/{job_id}'."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", rule)


def _schema_ref(schema: Any) -> Any:
    if isinstance(schema, str):
        return {"$ref": f"#/components/schemas/{schema}"}
    return schema


class Routes:
    def __init__(self, app: bottle.Bottle, schemas: dict[str, Any] | None = None):
        self.app = app
        self.specs: list[dict[str, Any]] = []
        self.pages: list[tuple[str, str]] = []
        self.schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, **(schemas or {})}

    def add(self, method: str, rule: str, *, summary: str, tag: str, auth_kind: str = "user",
            query: dict[str, str] | None = None, body: Any = None, body_type: str = "application/json",
            responses: dict[int, Any] | None = None, description: str = "") -> Callable:
        """Decorator: register `callback` for METHOD rule with its OpenAPI description."""
        if auth_kind not in STD_ERRORS:
            raise ValueError(f"unknown auth kind {auth_kind}")

        def decorate(callback: Callable) -> Callable:
            wrapped = _with_auth(callback, auth_kind)
            self.app.route(rule, method=method, callback=wrapped, name=callback.__name__)
            self.specs.append({"method": method.lower(), "rule": rule, "summary": summary, "tag": tag,
                               "auth": auth_kind, "query": query or {}, "body": body, "body_type": body_type,
                               "responses": responses or {200: "OK"}, "description": description,
                               "operation_id": callback.__name__})
            return callback

        return decorate

    def page(self, method: str, rule: str, callback: Callable) -> None:
        """A web page (or its static files): added to the app, recorded in `pages`, not in the document."""
        if rule.startswith("/api/"):
            raise ValueError(f"{rule}: routes under /api/ belong in the OpenAPI document; use add()")
        self.app.route(rule, method=method, callback=callback, name=f"page_{callback.__name__}")
        self.pages.append((method, rule))

    def document(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for spec in self.specs:
            path = openapi_path(spec["rule"])
            params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                      for name in _PARAM.findall(spec["rule"])]
            params += [{"name": name, "in": "query", "required": False, "description": desc,
                        "schema": {"type": "string"}} for name, desc in spec["query"].items()]
            op: dict[str, Any] = {"summary": spec["summary"], "tags": [spec["tag"]],
                                  "operationId": spec["operation_id"], "parameters": params, "responses": {},
                                  "x-flamenco-auth": spec["auth"]}
            if spec["description"]:
                op["description"] = spec["description"]
            if spec["auth"] == "none":
                op["security"] = []
            elif spec["auth"] == "manager":
                op["security"] = [{"managerToken": []}]
            else:
                op["security"] = [{"userToken": []}]
            if spec["body"] is not None:
                content = ({"schema": _schema_ref(spec["body"])} if spec["body_type"] == "application/json"
                           else {"schema": {"type": "string", "format": "binary"}})
                op["requestBody"] = {"required": True, "content": {spec["body_type"]: content}}
            for code, answer in spec["responses"].items():
                if isinstance(answer, tuple):
                    desc, schema = answer
                    op["responses"][str(code)] = {"description": desc,
                                                  "content": {"application/json": {"schema": _schema_ref(schema)}}}
                else:
                    op["responses"][str(code)] = {"description": answer}
            for code, desc in {**STD_ERRORS[spec["auth"]], "400": "invalid input"}.items():
                if spec["body"] is None and code == "400" and not spec["query"]:
                    continue
                op["responses"].setdefault(code, {"description": desc, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
            paths.setdefault(path, {})[spec["method"]] = op
        return {
            "openapi": "3.0.3",
            "info": {"title": "Flamenco Server API", "version": __version__,
                     "description": f"User API (api_version {API_VERSION}) and the Manager API of "
                                    "docs/protocol.md. Errors are JSON {code, message}."},
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "userToken": {"type": "http", "scheme": "bearer",
                                  "description": "API token from `flamenco-server create-user` or "
                                                 "POST /api/auth/login"},
                    "managerToken": {"type": "http", "scheme": "bearer",
                                     "description": "Manager token from `flamenco-server create-manager`"},
                },
                "schemas": self.schemas,
            },
        }


def _with_auth(callback: Callable, kind: str) -> Callable:
    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        if kind == "manager":
            kwargs["manager"] = auth.authenticate_manager(kwargs.pop("manager_id"))
        elif kind != "none":
            user = auth.authenticate_user()
            if kind == "admin" and not user.is_admin:
                raise forbidden("this needs an admin")
            kwargs["user"] = user
        try:
            return callback(*args, **kwargs)
        except TransitionError as ex:
            raise conflict(str(ex), "invalid_transition") from None
        except peewee.DoesNotExist as ex:  # deleted by another request meanwhile
            raise not_found(f"not found: {ex}") from None

    return wrapper
