"""Prometheus metrics, what both services share: who may scrape, the /metrics route, and HTTP
requests counted by route kind and status.

Each service builds its own `CollectorRegistry` in `make_app` (several services run in one test
process, so nothing is registered in prometheus_client's global registry). What the database
knows (tasks by status, queue lengths, stored bytes) is read when Prometheus scrapes, by the
service's collector (backend/server/metrics.py, backend/manager/metrics.py); what only the
process sees (requests, latencies, uploads) is counted as it happens.

Who may scrape: a client sending `Authorization: Bearer <metrics token>`, the token configured
for the service (`metrics_token`, or its environment variable; docs/metrics.md). Without one
configured, /metrics answers 403 to everyone. A token of its own rather than an admin's:
Prometheus keeps it in a file on its host, and it only reads counts.
"""

from __future__ import annotations

import hmac
import time
from typing import Callable

import bottle
from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from backend.errors import ApiError
from backend.routes import AuthKind, Routes
from shared.config import ConfigError

MIN_TOKEN_CHARS = 16
AUTH_KIND = "metrics"
SECURITY_SCHEMES = {"metricsToken": {"type": "http", "scheme": "bearer",
                                     "description": "the service's metrics token (metrics_token), for Prometheus"}}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; up to the Manager's long-poll cap (25 s)."""


def check_token(token: str, setting: str) -> None:
    """A configured metrics token must be long enough not to be guessed."""
    if token and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{setting} must be at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 24`)")


def new_registry() -> CollectorRegistry:
    """A registry of one service, with the process's CPU, memory and open files and Python's version."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def auth_kind(token: str, how_to: str) -> AuthKind:
    """`Authorization: Bearer <token>`, compared in constant time; 403 for everyone when `token` is empty."""

    def authenticate(kwargs):
        if not token:
            raise ApiError(403, "metrics_not_configured", f"metrics are off until a metrics token is set: {how_to}")
        scheme, _, given = (bottle.request.get_header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "unauthorized", "GET /metrics takes 'Authorization: Bearer <metrics token>'",
                           {"WWW-Authenticate": 'Bearer realm="Flamenco metrics"'})
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(403, "forbidden", "wrong metrics token")
        return None

    return AuthKind(None, authenticate, [{"metricsToken": []}],
                    {"401": "no metrics token given", "403": "wrong metrics token, or none configured"})


def install_route(routes: Routes, registry: CollectorRegistry) -> None:
    @routes.add("GET", "/metrics", summary="Prometheus metrics (text format); docs/metrics.md", tag="meta",
                auth_kind=AUTH_KIND,
                responses={200: ("the metrics (OpenMetrics when the Accept header asks for it)", {"type": "string"},
                                 "text/plain")})
    def metrics():
        encode, content_type = choose_encoder(bottle.request.get_header("Accept") or "")
        return bottle.HTTPResponse(encode(registry), status=200,
                                   headers={"Content-Type": content_type, "Cache-Control": "no-store"})


class HttpMetrics:
    """Requests by route kind (the route's auth kind: user, admin, manager, worker, metrics, ...;
    `page` for web pages, `unknown` when no route matched) and status code, and the seconds
    until the answer's status and headers (a stream's body is not timed).

    Counted in the app's WSGI callable, where the status is final whatever answered it (a
    route, the JSON error plugin, Bottle's 404/405). `observers` see each answered request
    as (route or None, status code, seconds), e.g. for the Manager's dispatch latency."""

    def __init__(self, registry: CollectorRegistry, prefix: str, routes: Routes):
        self.routes = routes
        self.requests = Counter(f"{prefix}_http_requests", "HTTP requests answered, by route kind and status code",
                                ["kind", "code"], registry=registry)
        self.seconds = Histogram(f"{prefix}_http_request_duration_seconds",
                                 "Seconds from a request to its answer's headers, by route kind", ["kind"],
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.observers: list[Callable[[bottle.Route | None, int, float], None]] = []

    def install(self, app: bottle.Bottle) -> None:
        """Count every request of `app` (its WSGI callable is wrapped; Bottle.__call__ calls it)."""
        inner = app.wsgi

        def wsgi(environ, start_response):
            started = time.perf_counter()

            def start(status, headers, exc_info=None):
                self._answered(environ, status, time.perf_counter() - started)
                return start_response(status, headers, exc_info)

            return inner(environ, start)

        app.wsgi = wsgi

    def _answered(self, environ: dict, status: str, seconds: float) -> None:
        route = environ.get("bottle.route")
        kind = self.routes.kind_of(route.method, route.rule) if route is not None else "unknown"
        code = int(status.split(" ", 1)[0])
        self.requests.labels(kind, str(code)).inc()
        self.seconds.labels(kind).observe(seconds)
        for observe in self.observers:
            observe(route, code, seconds)
