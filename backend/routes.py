"""Routes declared once: added to the Bottle app and described in the service's OpenAPI document.

Both services add every route through `Routes.add(...)`, which records its
summary, authentication, parameters, body and answers; `document()` builds
the service's `GET /api/openapi.json` from those records, and each service has
a test that every route of its app is in it (web pages, added with `page()`,
are listed in `pages` instead).

Authentication is declared, not called by hand: each service gives its kinds
(`AuthKind`) by name, and a route's `auth_kind` picks one. The wrapper runs
it before the handler and passes what it returns (the user, the worker, the
Manager) as a keyword argument; each operation of the document names its kind
in `x-flamenco-auth` (the security suite builds its auth matrices from it). Errors are not handled here: the JSON plugin
of backend/web.py answers every ApiError, refused transition and vanished row.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import bottle

from shared.version import __version__

_PARAM = re.compile(r"<([a-zA-Z_][a-zA-Z0-9_]*)(?::[^>]*)?>")

ERROR_SCHEMA = {"type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@dataclass(frozen=True)
class AuthKind:
    """How the routes of one kind authenticate.

    `authenticate(kwargs)` sees the route's URL arguments (it may take one, like the
    Server's manager id) and returns what the handler gets as `param`; it raises
    ApiError (401/403) when the request may not go on. `security` is the OpenAPI
    requirement, `errors` the answers this kind adds to every route of it."""
    param: str | None = None
    authenticate: Callable[[dict], Any] | None = None
    security: list = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


NO_AUTH = AuthKind()


def openapi_path(rule: str) -> str:
    """'/api/jobs/<job_id>' -> '/api/jobs/{job_id}' (filters dropped)."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", rule)


def _schema_ref(schema: Any) -> Any:
    if isinstance(schema, str):
        return {"$ref": f"#/components/schemas/{schema}"}
    return schema


class Routes:
    def __init__(self, app: bottle.Bottle, *, title: str, description: str, auth_kinds: dict[str, AuthKind],
                 security_schemes: dict[str, Any], schemas: dict[str, Any] | None = None):
        self.app = app
        self.title, self.description = title, description
        self.auth_kinds = {"none": NO_AUTH, **auth_kinds}
        self.security_schemes = security_schemes
        self.specs: list[dict[str, Any]] = []
        self.pages: list[tuple[str, str]] = []
        self.schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, **(schemas or {})}
        self._kinds: tuple[tuple[int, int], dict[tuple[str, str], str]] | None = None

    def add(self, method: str, rule: str, *, summary: str, tag: str, auth_kind: str = "user",
            query: dict[str, str] | None = None, headers: dict[str, str] | None = None, body: Any = None,
            body_type: str = "application/json", responses: dict[int, Any] | None = None,
            description: str = "") -> Callable:
        """Decorator: register `callback` for METHOD rule with its OpenAPI description.

        `responses` maps a status to a description, or to (description, schema) for
        JSON, or to (description, schema, content type)."""
        if auth_kind not in self.auth_kinds:
            raise ValueError(f"unknown auth kind {auth_kind}")

        def decorate(callback: Callable) -> Callable:
            wrapped = _with_auth(callback, self.auth_kinds[auth_kind])
            self.app.route(rule, method=method, callback=wrapped, name=callback.__name__)
            self.specs.append({"method": method.lower(), "rule": rule, "summary": summary, "tag": tag,
                               "auth": auth_kind, "query": query or {}, "headers": headers or {}, "body": body,
                               "body_type": body_type, "responses": responses or {200: "OK"},
                               "description": description, "operation_id": callback.__name__})
            return callback

        return decorate

    def page(self, method: str, rule: str, callback: Callable) -> None:
        """A web page (or its static files): added to the app, recorded in `pages`, not in the document."""
        if rule.startswith("/api/"):
            raise ValueError(f"{rule}: routes under /api/ belong in the OpenAPI document; use add()")
        self.app.route(rule, method=method, callback=callback, name=f"page_{callback.__name__}")
        self.pages.append((method, rule))

    def kind_of(self, method: str, rule: str) -> str:
        """The auth kind of a route by its Bottle method and rule ('page' for web pages); for metrics."""
        size = (len(self.specs), len(self.pages))
        if self._kinds is None or self._kinds[0] != size:
            kinds = {(m.upper(), r): "page" for m, r in self.pages}
            kinds.update({(s["method"].upper(), s["rule"]): s["auth"] for s in self.specs})
            self._kinds = (size, kinds)
        return self._kinds[1].get((method.upper(), rule), "unknown")

    def _operation(self, spec: dict[str, Any]) -> dict[str, Any]:
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _PARAM.findall(spec["rule"])]
        params += [{"name": name, "in": "query", "required": False, "description": desc,
                    "schema": {"type": "string"}} for name, desc in spec["query"].items()]
        params += [{"name": name, "in": "header", "required": False, "description": desc,
                    "schema": {"type": "string"}} for name, desc in spec["headers"].items()]
        kind = self.auth_kinds[spec["auth"]]
        op: dict[str, Any] = {"summary": spec["summary"], "tags": [spec["tag"]],
                              "operationId": spec["operation_id"], "parameters": params, "responses": {},
                              "security": kind.security, "x-flamenco-auth": spec["auth"]}
        if spec["description"]:
            op["description"] = spec["description"]
        if spec["body"] is not None:
            content = ({"schema": _schema_ref(spec["body"])} if spec["body_type"] == "application/json"
                       else {"schema": {"type": "string", "format": "binary"}})
            op["requestBody"] = {"required": True, "content": {spec["body_type"]: content}}
        for code, answer in spec["responses"].items():
            if isinstance(answer, tuple):
                desc, schema, *ctype = answer
                op["responses"][str(code)] = {"description": desc, "content": {
                    (ctype[0] if ctype else "application/json"): {"schema": _schema_ref(schema)}}}
            else:
                op["responses"][str(code)] = {"description": answer}
        std = dict(kind.errors)
        if spec["body"] is not None or spec["query"] or spec["headers"]:
            std["400"] = "invalid input"
        for code, desc in std.items():
            op["responses"].setdefault(code, {"description": desc,
                                              "content": {"application/json": {"schema": ERROR_REF}}})
        return op

    def document(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for spec in self.specs:
            paths.setdefault(openapi_path(spec["rule"]), {})[spec["method"]] = self._operation(spec)
        return {
            "openapi": "3.0.3",
            "info": {"title": self.title, "version": __version__, "description": self.description},
            "paths": paths,
            "components": {"securitySchemes": self.security_schemes, "schemas": self.schemas},
        }


def _with_auth(callback: Callable, kind: AuthKind) -> Callable:
    if kind.authenticate is None:
        return callback

    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        who = kind.authenticate(kwargs)
        if kind.param:
            kwargs[kind.param] = who
        return callback(*args, **kwargs)

    return wrapper
