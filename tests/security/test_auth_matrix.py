"""Every route of each service's OpenAPI document x every kind of credential that must be refused.

The cases are generated from the document the service serves, so a new route is in the matrix the
day it is added. A service is described by (credential kinds, which kinds each route refuses, how to
fill in its path): the Server's routes say their auth in `x-flamenco-auth`; the Manager's by their
security scheme (workerBasic, adminBearer). Every case must be refused with its exact status, change
nothing, and no case may answer 5xx.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
import requests

from tests.security.security_helpers import (ANN_PW, BOB_PW, BOSS_PW, MATRIX_COUNTS, CookieClient, fill,
                                             operations, sha)

WRONG_TOKEN = "0123456789abcdef.not-a-secret"


@dataclass
class Case:
    method: str
    path: str  # filled in
    rule: str  # as in the document
    kind: str
    expect: frozenset[int]


# --- the Server -----------------------------------------------------------------------------------

RESOURCE_PARAMS = {"job_id", "task_id", "sha256", "relpath", "project_ref", "token_id"}
"""A user route with one of these in its path is about something of project film (or of ann)."""
OPEN_TO_MEMBERS = {("PUT", "/api/files/{sha256}")}
"""Anyone signed in may upload bytes under their hash: that proves possession (see test_leaks)."""

SERVER_BODIES = {
    "set_status": {"status": "pause"}, "set_priority": {"priority": 10}, "requeue_task": {},
    "change_project": {"description": "x"}, "add_member": {"user": "bob"}, "link": {"manager": "m2"},
}


def server_cases(doc: dict, farm) -> list[Case]:
    values = {"job_id": farm.ids["film_job"], "task_id": farm.ids["film_task"], "sha256": farm.ids["film_blob"],
              "relpath": "frames/000001.png", "project_ref": farm.ids["film"], "manager_id": farm.managers["m1"][0],
              "manager_ref": farm.managers["m1"][0], "user_ref": "ann", "token_id": farm.ids["ann_token_id"],
              "worker_id": "w1"}
    cases = []
    for method, rule, op in operations(doc):
        auth = op["x-flamenco-auth"]
        path = fill(rule, values)
        params = set(re.findall(r"\{([^}]+)\}", rule))
        unsafe = method not in ("GET", "HEAD")

        def add(kind, *expect):
            cases.append(Case(method, path, rule, kind, frozenset(expect)))

        if auth == "none":
            continue
        if auth == "metrics":  # only the metrics token: no API token, Manager token or web sign-in
            add("no credentials", 401)
            add("wrong token", 403)
            add("admin token", 403)
            add("manager token", 403)
            add("admin cookie", 401)
            continue
        if auth == "manager":
            add("no credentials", 401)
            add("wrong token", 401)
            add("other Manager's token", 401)
            add("user token", 401)
            add("user cookie", 401)
            continue
        add("no credentials", 401)
        add("wrong token", 401)
        add("wrong cookie", 401)
        add("manager token", 401)
        if auth == "admin":
            add("non-admin token", 403)
            add("non-admin cookie", 403)
        elif params & RESOURCE_PARAMS and (method, rule) not in OPEN_TO_MEMBERS:
            add("other project's token", 403, 404)
            add("other project's cookie", 403, 404)
        if unsafe:
            add("cookie without CSRF token", 403)
    return cases


def server_request(farm, case: Case, clients: dict) -> requests.Response:
    kind = case.kind
    session = requests.Session()
    headers = {}
    if kind == "wrong token":
        headers["Authorization"] = f"Bearer {WRONG_TOKEN}"
    elif kind == "wrong cookie":
        session.cookies.set("flamenco_session", "0" * 32 + ".not-a-secret")
    elif kind in ("manager token", "other Manager's token"):
        headers["Authorization"] = f"Bearer {farm.managers['m2' if 'other' in kind else 'm1'][1]}"
    elif kind == "admin token":
        headers["Authorization"] = f"Bearer {farm.tokens['boss']}"
    elif kind == "admin cookie":
        session = clients["boss"].session
    elif kind in ("user token", "non-admin token"):
        headers["Authorization"] = f"Bearer {farm.tokens['ann']}"
    elif kind == "other project's token":
        headers["Authorization"] = f"Bearer {farm.tokens['bob']}"
    elif kind in ("user cookie", "non-admin cookie", "cookie without CSRF token", "other project's cookie"):
        client = clients["bob" if "other" in kind else "ann"]
        session = client.session
        if kind != "cookie without CSRF token":
            headers["X-Flamenco-CSRF"] = client.csrf
    kw = {}
    if case.method in ("POST", "PUT", "PATCH"):
        kw["json"] = SERVER_BODIES.get(OP_IDS[(case.method, case.rule)], {})
    return session.request(case.method, farm.url + case.path, headers=headers, timeout=30, allow_redirects=False,
                           **kw)


OP_IDS: dict[tuple[str, str], str] = {}


def is_refused(case: Case, r: requests.Response) -> bool:
    if r.status_code in case.expect:
        return True
    # The Flamenco 2 protocol answers another worker's "may I run?" with a "no", not an error.
    return case.rule == "/may-i-run/{task_id}" and r.status_code == 200 and r.json()["may_keep_running"] is False


def run_matrix(service: str, cases: list[Case], send) -> list[str]:
    failures, refused, errors = [], 0, 0
    for case in cases:
        r = send(case)
        if r.status_code >= 500:
            errors += 1
        if is_refused(case, r):
            refused += 1
        else:
            failures.append(f"{case.method} {case.rule} with {case.kind}: {r.status_code} {r.text[:150]}")
    MATRIX_COUNTS[service] = {"operations": len({(c.method, c.rule) for c in cases}), "cases": len(cases),
                              "refused as expected": refused, "5xx": errors}
    return failures


def test_server_auth_matrix(farm):
    doc = requests.get(farm.url + "/api/openapi.json", timeout=10).json()
    OP_IDS.update({(m, rule): op["operationId"] for m, rule, op in operations(doc)})
    clients = {"ann": CookieClient(farm.url, "ann", ANN_PW), "bob": CookieClient(farm.url, "bob", BOB_PW),
               "boss": CookieClient(farm.url, "boss", BOSS_PW)}
    before = farm.client("ann").get(f"/api/jobs/{farm.ids['film_job']}").json()
    cases = server_cases(doc, farm)
    assert len(cases) > 250, "every route x every credential kind"
    failures = run_matrix(f"server ({farm.kind})", cases, lambda case: server_request(farm, case, clients))
    assert not failures, "\n".join(failures)
    after = farm.client("ann").get(f"/api/jobs/{farm.ids['film_job']}")
    assert after.status_code == 200 and after.json()["status"] == before["status"], "refused requests change nothing"
    assert after.json()["priority"] == before["priority"]
    assert farm.client("boss").get("/api/me").status_code == 200
    r = farm.client("ann").get(f"/api/files/{farm.ids['film_blob']}")
    assert r.status_code == 200, "the film's file is still there"


# --- the Manager ----------------------------------------------------------------------------------

def manager_cases(doc: dict, m) -> list[Case]:
    values = {"task_id": m.task_id, "job_id": m.job_id, "worker_id": m.w1.id, "status": "awake",
              "relpath": "frames/0001.png", "sha256": "0" * 64}
    cases = []
    for method, rule, op in operations(doc):
        schemes = {name for req in op.get("security", []) for name in req}
        path = fill(rule, values)

        def add(kind, *expect):
            cases.append(Case(method, path, rule, kind, frozenset(expect)))

        if schemes == {"workerBasic"}:
            add("no credentials", 401)
            add("wrong secret", 401, 403)
            add("admin token", 401)
            if "{task_id}" in rule or ("/outputs" in rule and method in ("PUT", "POST")):
                add("other worker's credentials", 403, 404, 409)
        elif schemes == {"metricsToken"}:
            add("no credentials", 401)
            add("wrong token", 403)
            add("admin token (bearer)", 403)
            add("worker credentials", 401)
        elif "adminBearer" in schemes:  # or the admin's page session (adminSession)
            add("no credentials", 401)
            add("wrong token", 401, 403)
            add("worker credentials", 401, 403)
            add("wrong cookie", 401)
            if method not in ("GET", "HEAD"):
                add("admin token, text/plain", 415)
                add("admin token, another site's Origin", 403)
    return cases


def manager_request(m, case: Case) -> requests.Response:
    auth, headers = None, {}
    if case.kind == "wrong secret":
        auth = (m.w1.id, "not-the-secret")
    elif case.kind in ("admin token", "admin token (bearer)"):
        headers["Authorization"] = f"Bearer {m.admin_token}"
    elif case.kind in ("other worker's credentials", "worker credentials"):
        auth = (m.w2.id, m.w2.secret)
    elif case.kind == "wrong token":
        headers["Authorization"] = "Bearer not-the-admin-token"
    elif case.kind == "wrong cookie":
        headers["Cookie"] = "flamenco_manager_session=" + "0" * 32 + ".not-a-secret"
    elif case.kind.startswith("admin token, "):
        headers["Authorization"] = f"Bearer {m.admin_token}"
        if "Origin" in case.kind:
            headers["Origin"] = "https://evil.example"
    params, data = {}, None
    if "/outputs/" in case.rule:
        params, data = {"task": m.task_id}, b"an output"
        headers["X-Flamenco-SHA256"] = sha(data)
    elif case.rule.endswith("/outputs") and case.method == "POST":
        data, headers["Content-Type"] = json.dumps({"task": m.task_id, "files": {}}).encode(), "application/json"
    if case.method == "POST" and data is None:
        data, headers["Content-Type"] = b"{}", "application/json"
    if case.kind == "admin token, text/plain":
        data, headers["Content-Type"] = b"{}", "text/plain"
    return requests.request(case.method, m.url + case.path, auth=auth, headers=headers, params=params, data=data,
                            timeout=30, allow_redirects=False)


def test_manager_auth_matrix(manager):
    doc = requests.get(manager.url + "/api/openapi.json", timeout=10).json()
    cases = manager_cases(doc, manager)
    assert len(cases) > 60
    failures = run_matrix("manager", cases, lambda case: manager_request(manager, case))
    assert not failures, "\n".join(failures)
    r = requests.get(manager.url + "/api/admin/tasks", headers={"Authorization": f"Bearer {manager.admin_token}"},
                     timeout=10)
    (held,) = [t for t in r.json()["tasks"] if t["_id"] == manager.task_id]
    assert held["status"] == "active", "refused requests change nothing"

