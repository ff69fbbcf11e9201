"""Flamenco Worker 2.x compatibility: every worker route driven with exactly the
payloads the original worker (flamenco-worker-python) sends, in its order.

The original builds its requests with `requests` (json=..., auth=(id, secret)),
registers with {secret, platform, supported_task_types, nickname} and, when a
registration secret is configured, an HS256 JWT made by PyJWT 1.x with float
`exp` and `iat` claims.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import secrets
import string

import pytest
import requests

from tests.integration.manager.manager_helpers import task_doc

V2_TASK_TYPES = ["sleep", "blender-render", "file-management", "exr-merge", "video-encoding"]


def pyjwt1_encode(claims: dict, key: bytes) -> str:
    """What PyJWT 1.7's jwt.encode(claims, key, algorithm='HS256').decode('ascii') returns."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).replace(b"=", b"").decode("ascii")
    header = b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


def v2_registration_token(psk: str, expiry=datetime.timedelta(minutes=15)) -> str:
    """flamenco_worker.jwtauth.new_registration_token, line for line."""
    now = datetime.datetime.now(datetime.timezone.utc)
    claims = {"exp": (now + expiry).timestamp(), "iat": now.timestamp()}
    return pyjwt1_encode(claims, psk.encode())


def v2_secret() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(64))


class V2Worker:
    """The original worker's HTTP calls, with its headers and bodies."""

    def __init__(self, url):
        self.url = url
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "Flamenco-Worker/2.4"
        self.auth = None

    def post(self, path, **kw):
        kw.setdefault("auth", self.auth)
        return self.session.post(self.url + path, timeout=3, **kw)

    def get(self, path, **kw):
        return self.session.get(self.url + path, auth=self.auth, timeout=3, **kw)

    def register(self, token=None):
        secret = v2_secret()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = self.session.post(self.url + "/register-worker", json={
            "secret": secret, "platform": "linux", "supported_task_types": V2_TASK_TYPES,
            "nickname": "render-node-01"}, headers=headers, auth=None, timeout=3)
        if resp.status_code == 200:
            self.auth = (resp.json()["_id"], secret)
        return resp


@pytest.fixture
def v2(manager):
    return V2Worker(manager.url)


def test_register_open_and_worker_document(v2):
    resp = v2.register()
    assert resp.status_code == 200
    doc = resp.json()
    assert len(doc["_id"]) == 24 and doc["nickname"] == "render-node-01"
    assert doc["platform"] == "linux" and doc["supported_task_types"] == V2_TASK_TYPES
    assert "secret" not in doc and "secret_hash" not in doc


def test_register_with_psk_jwt(manager_factory):
    m = manager_factory(sub="psk", registration_secret="the-farm-psk")
    worker = V2Worker(m.url)
    assert worker.register(v2_registration_token("the-farm-psk")).status_code == 200
    assert worker.post("/sign-on", json={"supported_task_types": V2_TASK_TYPES,
                                         "nickname": "render-node-01"}).status_code == 204
    # No token: 401 (the worker retries); a wrong or expired one: 403 (fatal for the worker).
    assert V2Worker(m.url).register().status_code == 401
    assert V2Worker(m.url).register(v2_registration_token("wrong")).status_code == 403
    expired = v2_registration_token("the-farm-psk", expiry=datetime.timedelta(minutes=-5))
    assert V2Worker(m.url).register(expired).status_code == 403
    assert V2Worker(m.url).register("not.a.jwt").status_code == 403


def test_full_task_cycle_with_v2_payloads(manager, v2):
    assert v2.register().status_code == 200
    manager.add_tasks(task_doc("t-1", job="job-a", task_type="sleep"))
    resp = v2.post("/task")
    assert resp.status_code == 200
    task = resp.json()
    assert task["_id"] == "t-1" and task["status"] == "active" and task["job"] == "job-a"
    assert task["commands"][0] == {"name": "echo", "settings": {"message": "hello"}}
    for key in ("job_priority", "priority", "task_type", "name", "job_type", "manager", "project", "user"):
        assert key in task

    # register_task_update(task_status='active') -> push_to_manager(): the Activity attrs + status
    activity = {"activity": "", "current_command_idx": 0, "task_progress_percentage": 0,
                "command_progress_percentage": 0, "metrics": {}}
    assert v2.post("/tasks/t-1/update", json={**activity, "task_status": "active"}).status_code == 204
    log = "\n".join(f"{datetime.datetime.now(datetime.timezone.utc).isoformat()}: line {i}" for i in range(3))
    assert v2.post("/tasks/t-1/update", json={**activity, "activity": "starting echo", "log": log}).status_code == 204

    resp = v2.get("/may-i-run/t-1")
    assert resp.status_code == 200 and resp.json()["may_keep_running"] is True

    assert v2.post("/output-produced", json={"paths": ["/render/shot/frame_0001.png"]}).status_code == 204
    assert v2.post("/output-produced", json={"paths": []}).status_code == 422

    done = {**activity, "activity": "Task completed", "task_progress_percentage": 100,
            "command_progress_percentage": 100, "current_command_idx": 1, "task_status": "completed",
            "metrics": {"timing": {"starting blender": 0.5}}}
    assert v2.post("/tasks/t-1/update", json=done).status_code == 204
    assert v2.post("/task").status_code == 204
    assert v2.post("/sign-off").status_code == 204

    logfile = manager.admin("GET", "/logfile/job-a/t-1", params={"full": 1})
    assert logfile.status_code == 200 and "line 2" in logfile.text


def test_update_404_and_409(manager, v2):
    assert v2.register().status_code == 200
    other = V2Worker(manager.url)
    assert other.register().status_code == 200
    manager.add_tasks(task_doc("t-2"))
    assert v2.post("/task").status_code == 200
    payload = {"activity": "x", "current_command_idx": 0, "task_progress_percentage": 0,
               "command_progress_percentage": 0}
    assert v2.post("/tasks/nope/update", json=payload).status_code == 404
    assert other.post("/tasks/t-2/update", json=payload).status_code == 409
    assert other.post("/tasks/t-2/return").status_code == 409


def test_406_without_task_types(manager, v2):
    assert v2.register().status_code == 200
    assert v2.post("/sign-on", json={"supported_task_types": [], "nickname": "render-node-01"}).status_code == 204
    resp = v2.post("/task")
    assert resp.status_code == 406 and resp.json()["code"] == "no_task_types"


def test_401_wrong_secret_triggers_reregistration(manager, v2):
    assert v2.register().status_code == 200
    v2.auth = (v2.auth[0], "wrong")
    resp = v2.post("/task")
    assert resp.status_code == 401 and "Basic" in resp.headers["WWW-Authenticate"]
    v2.auth = None
    assert v2.post("/sign-on", json={}).status_code == 401


def test_lazy_sleep_423_status_change_and_ack(manager, v2):
    assert v2.register().status_code == 200
    wid = v2.auth[0]
    r = manager.admin("POST", f"/api/admin/workers/{wid}/set-status", json={"status": "asleep", "lazy": True})
    assert r.status_code == 200, r.text
    resp = v2.post("/task")
    assert resp.status_code == 423 and resp.json() == {"status_requested": "asleep"}
    resp = v2.get("/status-change")
    assert resp.status_code == 200 and resp.json() == {"status_requested": "asleep"}
    assert v2.post("/ack-status-change/asleep").status_code == 204
    assert v2.get("/status-change").status_code == 204
    manager.admin("POST", f"/api/admin/workers/{wid}/set-status", json={"status": "awake", "lazy": True})
    assert v2.get("/status-change").json() == {"status_requested": "awake"}
    assert v2.post("/ack-status-change/awake").status_code == 204
    workers = manager.admin("GET", "/api/admin/workers").json()["workers"]
    assert workers[0]["status"] == "awake" and workers[0].get("status_requested") is None


def test_immediate_sleep_stops_task_which_returns_to_queue(manager, v2):
    assert v2.register().status_code == 200
    wid = v2.auth[0]
    manager.add_tasks(task_doc("t-3"))
    assert v2.post("/task").status_code == 200
    manager.admin("POST", f"/api/admin/workers/{wid}/set-status", json={"status": "asleep", "lazy": False})
    answer = v2.get("/may-i-run/t-3").json()
    assert answer["may_keep_running"] is False and answer["status_requested"] == "asleep"
    # The v2 worker, told no, pushes only logs, then returns the task, and acks asleep.
    assert v2.post("/tasks/t-3/update", json={"log": "2024-01-01T00:00:00+00:00: stopped"}).status_code == 204
    assert v2.post("/tasks/t-3/return").status_code == 204
    assert v2.post("/ack-status-change/asleep").status_code == 204
    tasks = manager.admin("GET", "/api/admin/tasks").json()["tasks"]
    assert tasks[0]["status"] == "claimed-by-manager" and tasks[0]["worker"] is None


def test_v2_sleep_quirk_canceled_means_returned(manager, v2):
    """Flamenco 2 workers could report 'canceled' when sent to sleep; nobody canceled it, so it is requeued."""
    assert v2.register().status_code == 200
    manager.add_tasks(task_doc("t-4"))
    assert v2.post("/task").status_code == 200
    assert v2.post("/tasks/t-4/update", json={"task_status": "canceled", "activity": "Task was canceled",
                                              "current_command_idx": 0, "task_progress_percentage": 0,
                                              "command_progress_percentage": 0}).status_code == 204
    tasks = manager.admin("GET", "/api/admin/tasks").json()["tasks"]
    assert tasks[0]["status"] == "claimed-by-manager"


def test_shutdown_request_and_sign_off(manager, v2):
    assert v2.register().status_code == 200
    wid = v2.auth[0]
    manager.add_tasks(task_doc("t-5"))
    assert v2.post("/task").status_code == 200
    manager.admin("POST", f"/api/admin/workers/{wid}/shutdown", json={"lazy": False})
    assert v2.get("/may-i-run/t-5").json() == {"may_keep_running": False, "reason": "worker status change to shutdown requested",
                                               "status_requested": "shutdown"}
    # go_to_state_shutdown: no ack; shutdown() signs off, which requeues the task.
    assert v2.post("/sign-off").status_code == 204
    info = manager.admin("GET", f"/api/admin/workers/{wid}").json()
    assert info["status"] == "offline" and info.get("status_requested") is None
    assert manager.admin("GET", "/api/admin/tasks").json()["tasks"][0]["status"] == "claimed-by-manager"


def test_sign_on_with_task_type_change_and_initial_state_ack(manager, v2):
    assert v2.register().status_code == 200
    assert v2.post("/sign-on", json={"supported_task_types": ["sleep"], "nickname": "renamed"}).status_code == 204
    # Started with --test or non-awake initial state: ack without a request.
    assert v2.post("/ack-status-change/asleep").status_code == 204
    info = manager.admin("GET", f"/api/admin/workers/{v2.auth[0]}").json()
    assert info["nickname"] == "renamed" and info["supported_task_types"] == ["sleep"]
    assert info["status"] == "asleep"


def MayKeepRunningResponse(may_keep_running, reason=None, status_requested=None):
    """flamenco_worker.documents.MayKeepRunningResponse: attrs, so extra keys would crash it."""
    assert isinstance(may_keep_running, bool)
    assert reason is None or isinstance(reason, str)
    assert status_requested is None or isinstance(status_requested, str)
    return may_keep_running


def StatusChangeRequest(status_requested):
    assert isinstance(status_requested, str)
    return status_requested


def test_answers_fit_the_v2_worker_documents(manager, v2):
    assert v2.register().status_code == 200
    wid = v2.auth[0]
    manager.add_tasks(task_doc("t-6"))
    assert v2.post("/task").status_code == 200
    assert MayKeepRunningResponse(**v2.get("/may-i-run/t-6").json()) is True
    assert MayKeepRunningResponse(**v2.get("/may-i-run/unknown").json()) is False
    manager.admin("POST", f"/api/admin/workers/{wid}/set-status", json={"status": "asleep", "lazy": True})
    assert MayKeepRunningResponse(**v2.get("/may-i-run/t-6").json()) is True, "lazy: the task may finish"
    assert v2.post("/tasks/t-6/update", json={"task_status": "completed", "activity": "Task completed",
                                              "current_command_idx": 0, "task_progress_percentage": 0,
                                              "command_progress_percentage": 0, "metrics": {}}).status_code == 204
    resp = v2.post("/task")
    assert resp.status_code == 423 and StatusChangeRequest(**resp.json()) == "asleep"
    assert StatusChangeRequest(**v2.get("/status-change").json()) == "asleep"
