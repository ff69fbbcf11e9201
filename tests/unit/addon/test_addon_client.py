"""The client's error wording and transfers, against a plain http.server.

The real Server is used in tests/integration/addon; here a minimal web server
plays the parts the real one cannot be made to play on demand (a proxy's HTML
page, a 500, a busy 503, a connection that drops).
"""

import hashlib
import http.server
import json
import socket
import threading

import pytest

from blender_addon import client as cl


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    received: list = []

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Handler.received.append((self.command, self.path, dict(self.headers), body))
        status, ctype, data = Handler.routes.get((self.command, self.path.split("?")[0]),
                                                 (404, "application/json",
                                                  json.dumps({"code": "not-found", "message": "no such thing"})))
        if status == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = data.encode() if isinstance(data, str) else data
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer


@pytest.fixture(scope="module")
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def web(web_server):
    Handler.routes, Handler.received = {}, []
    return web_server


def route(method, path, status, doc=None, ctype="application/json", raw=None):
    Handler.routes[(method, path)] = (status, ctype, raw if raw is not None else json.dumps(doc))


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_normalize_url():
    assert cl.normalize_url(" farm:8888/ ") == "http://farm:8888"
    assert cl.normalize_url("https://farm/") == "https://farm"
    assert cl.normalize_url("") == ""


def test_unreachable_server_is_said_plainly():
    c = cl.Client(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(cl.Unreachable, match="connection refused. Is the Server running"):
        c.version()
    with pytest.raises(cl.Unreachable, match="No Server URL is set"):
        cl.Client("").version()


@pytest.mark.parametrize("reason, message", [
    (socket.gaierror(-2, "Name or service not known"), "host name 'farm' is unknown"),
    (socket.timeout("timed out"), "did not answer within 15 seconds"),
    (ConnectionResetError(), "closed before it answered"),
])
def test_network_failures_are_worded(reason, message):
    assert message in cl.Client("http://farm:8888")._unreachable(reason).message


def test_bearer_token_and_json(web):
    _, url = web
    route("GET", "/api/me", 200, {"id": "u1", "name": "anna"})
    assert cl.Client(url, "tok.en").me() == {"id": "u1", "name": "anna"}
    _, path, headers, _ = Handler.received[-1]
    assert headers["Authorization"] == "Bearer tok.en" and headers["User-Agent"].startswith("flamenco-blender-addon/")


@pytest.mark.parametrize("status, doc, kind, message", [
    (401, {"code": "unauthorized", "message": "the API token is not valid"}, cl.AuthError, "the API token is not valid"),
    (403, {"code": "forbidden", "message": "not your project"}, cl.Forbidden, "Not allowed: not your project"),
    (404, {"code": "not-found", "message": "no job j9"}, cl.NotFound, "no job j9"),
    (400, {"code": "invalid", "message": "setting 'frames': is required"}, cl.ClientError, "setting 'frames'"),
    (409, {"code": "conflict", "message": "job cannot go from 'completed' to 'paused'"}, cl.ClientError, "cannot go"),
    (500, {"code": "internal", "message": "boom"}, cl.ClientError, r"internal error \(HTTP 500\): boom"),
    (503, {"code": "busy", "message": "database busy"}, cl.ClientError, r"busy \(database busy\)"),
])
def test_server_errors_keep_the_servers_words(web, status, doc, kind, message):
    _, url = web
    route("GET", "/api/jobs/j9", status, doc)
    with pytest.raises(kind, match=message) as info:
        cl.Client(url, "t").job("j9")
    assert info.value.status == status and info.value.code == doc["code"]


def test_a_web_server_that_is_not_flamenco(web):
    _, url = web
    route("GET", "/api/version", 200, raw="<html>proxy login</html>", ctype="text/html")
    with pytest.raises(cl.ClientError, match="did not answer like a Flamenco Server .*text/html"):
        cl.Client(url).version()
    route("GET", "/api/version", 200, {"hello": "world"})
    with pytest.raises(cl.ClientError, match="no API version"):
        cl.Client(url).version()


def test_version_mismatch(web):
    _, url = web
    route("GET", "/api/version", 200, {"version": "9.0.0", "api_version": 99})
    with pytest.raises(cl.VersionMismatch, match="Server speaks API version 99 .*this add-on speaks API version 1"):
        cl.Client(url).check_version()


def test_login_keeps_the_token_and_says_wrong_password(web):
    _, url = web
    route("POST", "/api/auth/login", 200, {"token": "abc.def", "user": {"name": "anna"}})
    assert cl.Client(url).login("anna", "pw")["token"] == "abc.def"
    assert json.loads(Handler.received[-1][3]) == {"username": "anna", "password": "pw"}
    route("POST", "/api/auth/login", 401, {"code": "unauthorized", "message": "wrong user name or password"})
    with pytest.raises(cl.AuthError, match="(?i)wrong user name or password"):
        cl.Client(url).login("anna", "nope")


def test_lists_accept_bare_lists_and_wrapped_ones(web):
    _, url = web
    route("GET", "/api/projects", 200, [{"id": "p1"}])
    route("GET", "/api/managers", 200, {"managers": [{"id": "m1"}]})
    route("GET", "/api/jobs", 200, {"jobs": [{"id": "j1"}], "total": 1})
    c = cl.Client(url, "t")
    assert c.projects() == [{"id": "p1"}] and c.managers() == [{"id": "m1"}] and c.jobs(limit=5) == [{"id": "j1"}]
    assert Handler.received[-1][1] == "/api/jobs?limit=5"


def test_upload_streams_with_progress_and_download_writes_the_file(web, tmp_path):
    _, url = web
    data = b"x" * (600 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    src = tmp_path / "tex.png"
    src.write_bytes(data)
    route("PUT", f"/api/files/{sha}", 201, {"sha256": sha})
    seen = []
    assert cl.Client(url, "t").upload_file(sha, str(src), progress=seen.append) == 201
    method, path, headers, body = Handler.received[-1]
    assert (method, path, body) == ("PUT", f"/api/files/{sha}", data)
    assert headers["Content-Length"] == str(len(data)) and sum(seen) == len(data)

    route("GET", f"/api/files/{sha}", 200, raw=data, ctype="application/octet-stream")
    dest = tmp_path / "out" / "copy.png"
    assert cl.Client(url, "t").download(f"/api/files/{sha}", str(dest)) == len(data)
    assert dest.read_bytes() == data and not (tmp_path / "out" / "copy.png.part").exists()


def test_cancel_stops_an_upload_and_a_download(web, tmp_path):
    _, url = web
    src = tmp_path / "big.bin"
    src.write_bytes(b"y" * 1024 * 1024)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(cl.Canceled):
        cl.Client(url, "t").upload_file("a" * 64, str(src), cancel=cancel)
    route("GET", "/blob", 200, raw=b"z" * 1000, ctype="application/octet-stream")
    with pytest.raises(cl.Canceled):
        cl.Client(url, "t").download("/blob", str(tmp_path / "d.bin"), cancel=cancel)
    assert not (tmp_path / "d.bin").exists() and not (tmp_path / "d.bin.part").exists()


def test_dropped_connection(web):
    _, url = web
    Handler.routes[("GET", "/api/version")] = ("drop", "", b"")
    with pytest.raises(cl.Unreachable):
        cl.Client(url).version()


def test_server_info_checks_the_api_version_before_anything_else(web):
    from blender_addon import background
    _, url = web
    route("GET", "/api/version", 200, {"version": "9.0.0", "api_version": 99})
    msg = background.fetch_server_info(cl.Client(url, "t"))
    assert isinstance(msg, background.ServerInfoFailed) and msg.message.startswith("Version mismatch")
    assert [r[1] for r in Handler.received] == ["/api/version"]


def test_connection_check_reports_a_version_mismatch(web):
    from blender_addon import connection
    _, url = web
    route("GET", "/api/version", 200, {"version": "9.0.0", "api_version": 99})
    report = connection.check_connection(cl.Client(url, "t"), "films")
    assert report.problem == connection.VERSION_MISMATCH and "API version 99" in report.message


def test_a_flamenco_managers_url_is_named_as_such(web):
    """Issue 14, point 2: a Manager answers /api/version with 404 and its index with its name."""
    _, url = web
    route("GET", "/", 200, {"service": "flamenco-manager", "version": "0.1.0", "linked": True})
    with pytest.raises(cl.ClientError, match="is a Flamenco Manager, not the Flamenco Server. Enter the Server's URL") \
            as info:
        cl.Client(url).version()
    assert info.value.code == "manager_url"
    Handler.routes.pop(("GET", "/"))
    with pytest.raises(cl.NotFound, match="no such thing"):
        cl.Client(url).version()
