"""Crashes and bad answers of issue 12: each must be a clear 4xx, and every answer valid JSON."""

from __future__ import annotations

import gzip
import json
import socket

import pytest
import requests

from tests.security.security_helpers import ANN_PW, CookieClient, fill, operations, sha

DEEP = b"[" * 5000 + b"]" * 5000


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as every JSON parser outside Python does."""
    def refuse(name):
        raise ValueError(f"{name} in an answer")
    return json.loads(text, parse_constant=refuse)


def raw_request(url: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (requests would refuse or re-encode them): (status, body)."""
    host, port = url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head + b"\r\nHost: x\r\nConnection: close\r\n\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


# --- JSON bodies on every JSON route of both services --------------------------------------------

def server_json_routes(farm):
    doc = requests.get(farm.url + "/api/openapi.json", timeout=10).json()
    values = {"job_id": farm.ids["film_job"], "task_id": farm.ids["film_task"], "project_ref": farm.ids["film"],
              "manager_id": farm.managers["m1"][0], "manager_ref": farm.managers["m1"][0], "user_ref": "ann",
              "sha256": farm.ids["film_blob"], "token_id": farm.ids["boss_token_id"], "relpath": "x.png"}
    for method, rule, op in operations(doc):
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            token = farm.managers["m1"][1] if op["x-flamenco-auth"] == "manager" else farm.tokens["boss"]
            yield method, fill(rule, values), {"Authorization": f"Bearer {token}"}, None


def manager_json_routes(m):
    doc = requests.get(m.url + "/api/openapi.json", timeout=10).json()
    values = {"task_id": m.task_id, "job_id": m.job_id, "worker_id": m.w2.id, "status": "awake",
              "relpath": "x.png", "sha256": "0" * 64}
    for method, rule, op in operations(doc):
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        schemes = {name for req in op.get("security", []) for name in req}
        headers, auth = {}, None
        if "adminBearer" in schemes:
            headers["Authorization"] = f"Bearer {m.admin_token}"
        elif "workerBasic" in schemes:
            auth = (m.w1.id, m.w1.secret)
        yield method, fill(rule, values), headers, auth


@pytest.mark.parametrize("body, what", [(DEEP, "nested 5,000 deep"), (b'{"name": NaN, "x": [Infinity]}', "NaN"),
                                        (b'{"name": "a\\u0000b"}', "NUL"), (b'{"name": "\\ud800"}', "a lone surrogate")])
def test_every_json_route_of_the_server_refuses(farm, body, what):
    routes = list(server_json_routes(farm))
    assert len(routes) > 15
    for method, path, headers, _ in routes:
        r = requests.request(method, farm.url + path, data=body, timeout=30,
                             headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 400, (what, method, path, r.status_code, r.text[:200])
        assert strict_json(r.text)["code"] in ("invalid_json", "invalid_field", "invalid_name"), r.text


@pytest.mark.parametrize("body, what", [(DEEP, "nested 5,000 deep"), (b'{"a": NaN}', "NaN")])
def test_every_json_route_of_the_manager_refuses(manager, body, what):
    routes = list(manager_json_routes(manager))
    assert len(routes) >= 7
    for method, path, headers, auth in routes:
        r = requests.request(method, manager.url + path, data=body, auth=auth, timeout=30,
                             headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 400, (what, method, path, r.status_code, r.text[:200])
        strict_json(r.text)


def test_huge_frame_numbers_are_refused(farm):
    for frames in ("1-999999999999999999999999999999", "1-" + "9" * 5000, "1-10x99999999999999999999"):
        r = farm.client("ann").post("/api/jobs", json={"name": "x", "type": "sleep", "project": "film",
                                                       "settings": {"frames": frames}})
        assert r.status_code == 400 and "frames" in r.json()["message"], r.text
        assert len(r.json()["message"]) < 300


def test_a_nan_stored_before_does_not_break_any_answer(farm):
    """An older version stored NaN; every answer must still be JSON, the jobs page included."""
    job_id = farm.ids["film_sleep_job"]
    q = farm.db.param
    with farm.db.connection_context():
        farm.db.execute_sql(f'UPDATE job SET metadata = {q}, settings = {q} WHERE id = {q}',
                            ('{"ratio": NaN, "big": Infinity}', '{"frames": "1-2", "time_in_seconds": NaN}', job_id))
        farm.db.execute_sql(f'UPDATE task SET commands = {q} WHERE job_id = {q}',
                            ('[{"name": "sleep", "settings": {"time_in_seconds": NaN}}]', job_id))
    ann = farm.client("ann")
    for path in ("/api/jobs", f"/api/jobs/{job_id}", f"/api/tasks/{job_id}-000000"):
        r = ann.get(path)
        assert r.status_code == 200
        strict_json(r.text)
    assert strict_json(ann.get(f"/api/jobs/{job_id}").text)["metadata"] == {"ratio": None, "big": None}
    r = farm.manager("m1").get(farm.mpath("m1", "depsgraph"))
    assert r.status_code == 200
    strict_json(r.text)
    browser = CookieClient(farm.url, "ann", ANN_PW)
    page = browser.get("/", headers={"Accept": "text/html"}).text
    data = page.split('<script type="application/json" id="page-data">', 1)[1].split("</script>", 1)[0]
    assert job_id in {j["id"] for j in strict_json(data)["initial"]["jobs"]}


# --- headers that are not UTF-8 or not ASCII -------------------------------------------------------

def test_an_authorization_header_that_is_not_utf8_is_401_on_the_server(farm):
    for value in (b"Bearer \xff\xfe.\xc3\x28", b"Bearer \xc3\xa9\xc3\xa9.x", b"Basic \xff"):
        status, body = raw_request(farm.url, b"GET /api/me HTTP/1.1\r\nAuthorization: " + value)
        assert status == 401, body
        strict_json(body.decode())
    status, _ = raw_request(farm.url, f"GET {farm.mpath('m1', 'depsgraph')} HTTP/1.1".encode() +
                            b"\r\nAuthorization: Bearer \xff\xfe")
    assert status == 401


def test_worker_credentials_that_are_not_utf8_are_401_on_the_manager(manager):
    for value in (b"Basic \xff\xfe", b"Basic \xc3\xa9t\xc3\xa9", b"Basic " + b"w\xffw:secret"):
        status, body = raw_request(manager.url, b"POST /sign-off HTTP/1.1\r\nAuthorization: " + value +
                                   b"\r\nContent-Length: 0")
        assert status == 401, body


def test_a_registration_token_that_is_not_utf8_is_refused(manager_factory):
    m = manager_factory(registration_secret="s3cret")
    body = b'{"secret": "x", "platform": "linux", "supported_task_types": ["sleep"], "nickname": "n"}'
    for value in (b"Bearer \xff\xfe.\xff.\xff", b"Bearer \xc3\xa9.\xc3\xa9.\xc3\xa9"):
        status, answer = raw_request(m.url, b"POST /register-worker HTTP/1.1\r\nAuthorization: " + value +
                                     b"\r\nContent-Type: application/json\r\nContent-Length: " +
                                     str(len(body)).encode(), body)
        assert status in (401, 403), answer


def test_a_csrf_token_that_is_not_ascii_is_403(farm):
    browser = CookieClient(farm.url, "ann", ANN_PW)
    cookie = browser.session.cookies.get("flamenco_session")
    for value in ("é".encode(), b"\xff\xfe", browser.csrf.encode()[:-1] + "é".encode()):
        status, body = raw_request(farm.url, f"POST /api/jobs/{farm.ids['film_job']}/priority HTTP/1.1\r\n"
                                             f"Cookie: flamenco_session={cookie}\r\n".encode() +
                                   b"X-Flamenco-CSRF: " + value + b"\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 17", b'{"priority": 10} ')
        assert status == 403, body
    r = browser.session.post(farm.url + "/logout", data={"csrf": "é" * 64}, allow_redirects=False,
                             headers={"Accept": "text/html"})
    assert r.status_code == 403
    assert browser.get("/api/me").status_code == 200, "still signed in"


# --- chunked uploads -------------------------------------------------------------------------------

def chunks(data: bytes, size: int = 7):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_chunked_uploads_work_on_the_server(farm):
    data = b"chunk after chunk of a blend file " * 1000
    r = farm.client("ann").put(f"/api/files/{sha(data)}", data=chunks(data, 4096))
    assert r.status_code == 201, r.text
    assert farm.client("ann").get(f"/api/files/{sha(data)}").content == data
    r = farm.client("ann").put(f"/api/files/{sha(b'other')}", data=chunks(data, 4096))
    assert r.status_code == 400 and r.json()["code"] == "hash_mismatch"
    frame = b"\x89PNG chunked frame" * 100
    r = farm.manager("m1").put(farm.mpath("m1", f"jobs/{farm.ids['film_job']}/outputs/frames/000002.png"),
                               params={"task": farm.ids["film_task"]}, data=chunks(frame),
                               headers={"X-Flamenco-SHA256": sha(frame)})
    assert r.status_code == 204, r.text
    log = gzip.compress(b"line\n" * 1000)
    r = farm.manager("m1").post(farm.mpath("m1", f"tasks/{farm.ids['film_task']}/log"), data=chunks(log, 100),
                                headers={"Content-Type": "application/gzip"})
    assert r.status_code == 204, r.text
    assert farm.client("ann").get(f"/api/tasks/{farm.ids['film_task']}/log").text == "line\n" * 1000
    r = farm.client("ann").post("/api/files/check", data=chunks(json.dumps({"files": []}).encode(), 3),
                                headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json() == {"missing": []}, "JSON bodies may come chunked too"


def test_a_broken_chunked_body_is_400(farm):
    head = (f"PUT /api/files/{sha(b'x')} HTTP/1.1\r\nAuthorization: Bearer {farm.tokens['ann']}\r\n"
            f"Transfer-Encoding: chunked").encode()
    status, body = raw_request(farm.url, head, b"zz\r\nxx\r\n0\r\n\r\n")
    assert status == 400, body


@pytest.mark.xfail(strict=True, reason="8, Manager half: the Manager's output route reads a chunked body with "
                                       "Bottle's de-chunking (use backend.web.request_body())")
def test_chunked_outputs_work_on_the_manager(manager):
    data = b"a chunked output" * 100
    r = manager.w1.session.put(f"{manager.url}/jobs/{manager.job_id}/outputs/frames/0001.png",
                               params={"task": manager.task_id}, data=chunks(data),
                               headers={"X-Flamenco-SHA256": sha(data)}, timeout=10)
    assert r.status_code == 204, r.text
