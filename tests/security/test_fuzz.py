"""A bounded schemathesis run over both services: requests generated from each OpenAPI document, sent
with valid credentials (and, where the path names one, a real resource) so they get past the door.
No answer may be a 5xx, and every JSON answer must be valid JSON (no NaN).

Bounded by FLAMENCO_FUZZ_EXAMPLES per operation (25) and a time budget per service (FLAMENCO_FUZZ_SECONDS,
shared out among its operations); the examples come from a fixed seed (FLAMENCO_FUZZ_SEED) so a failure
reproduces. Raise them for a longer hunt.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import requests

from tests.security.security_helpers import MATRIX_COUNTS, METRICS_TOKEN

EXAMPLES = int(os.environ.get("FLAMENCO_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FLAMENCO_FUZZ_SEED", "12"))
BUDGET_SECONDS = float(os.environ.get("FLAMENCO_FUZZ_SECONDS", "50"))

SKIP = {("POST", "/api/auth/sign-out-everywhere"), ("POST", "/api/auth/password"),
        ("GET", "/imagewatch"), ("POST", "/sign-off")}
"""Ending the fuzzer's own credentials, and a never-ending event stream."""


def fuzz(base_url: str, doc: dict, credentials, resources: dict[str, str]) -> dict[str, int]:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, seed, settings

    schemathesis.serializer.alias("application/gzip", "application/octet-stream")
    schema = schemathesis.openapi.from_dict(doc)
    counts = {"operations": 0, "requests": 0, "5xx": 0}
    problems: list[str] = []
    operations = [op for op in (result.ok() for result in schema.get_all_operations())
                  if (op.method.upper(), op.path) not in SKIP]
    for operation in operations:
        counts["operations"] += 1
        deadline = time.monotonic() + BUDGET_SECONDS / len(operations)  # each operation gets its share

        @seed(SEED)
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  derandomize=False)
        @given(case=operation.as_strategy())
        def run(case):
            if time.monotonic() > deadline:
                return
            for name in list(case.path_parameters or {}):
                if name in resources:
                    case.path_parameters[name] = resources[name]
            headers, auth = credentials(operation)
            try:
                r = case.call(base_url=base_url, headers=headers, auth=auth, timeout=30)
            except requests.RequestException as ex:
                problems.append(f"{case.method} {case.formatted_path}: {type(ex).__name__}")
                return
            counts["requests"] += 1
            if r.status_code >= 500:
                counts["5xx"] += 1
                problems.append(f"{case.method} {case.formatted_path} -> {r.status_code}: {r.text[:200]}\n"
                                f"  {case.as_curl_command()[:600]}")
            if r.headers.get("Content-Type", "").startswith("application/json") and r.content:
                try:
                    json.loads(r.text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
                except ValueError as ex:
                    problems.append(f"{case.method} {case.formatted_path}: invalid JSON answer ({ex})")

        run()
    assert not problems, "\n".join(problems[:20])
    return counts


def test_fuzz_the_server(farm):
    doc = requests.get(farm.url + "/api/openapi.json", timeout=10).json()
    m1, m1_token = farm.managers["m1"]

    def credentials(operation):
        auth = operation.definition.raw.get("x-flamenco-auth")
        if auth == "metrics":
            return {"Authorization": f"Bearer {METRICS_TOKEN}"}, None
        if auth == "manager":
            return {"Authorization": f"Bearer {m1_token}"}, None
        return ({"Authorization": f"Bearer {farm.tokens['boss']}"} if auth != "none" else {}), None

    resources = {"manager_id": m1, "job_id": farm.ids["film_job"], "task_id": farm.ids["film_task"]}
    counts = fuzz(farm.url, doc, credentials, resources)
    MATRIX_COUNTS[f"fuzz: server ({farm.kind})"] = counts
    assert counts["operations"] > 40 and counts["requests"] > counts["operations"] * 3, counts


def test_fuzz_the_manager(manager):
    doc = requests.get(manager.url + "/api/openapi.json", timeout=10).json()

    def credentials(operation):
        schemes = {name for req in operation.definition.raw.get("security", []) for name in req}
        if "adminBearer" in schemes:
            return {"Authorization": f"Bearer {manager.admin_token}"}, None
        if "metricsToken" in schemes:
            return {"Authorization": f"Bearer {METRICS_TOKEN}"}, None
        if "workerBasic" in schemes:
            return {}, (manager.w1.id, manager.w1.secret)
        return {}, None

    resources = {"task_id": manager.task_id, "job_id": manager.job_id, "worker_id": manager.w2.id}
    counts = fuzz(manager.url, doc, credentials, resources)
    MATRIX_COUNTS["fuzz: manager"] = counts
    assert counts["operations"] > 25 and counts["requests"] > counts["operations"] * 3, counts
