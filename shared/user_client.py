"""The client of the Server's user API, for the Blender add-on and the `flamenco` CLI.

Standard library only (urllib): Blender's Python does not always ship
`requests`, and build_addon.py bundles this module into the add-on. Every
failure becomes a ClientError whose message a person can act on ("cannot reach
the Server at ...: connection refused", "this is a Flamenco Manager"), never a
traceback. Subclasses name themselves (USER_AGENT, WHO) for the Server's log and
the version-mismatch message.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import os
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import version

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0
UPLOAD_TIMEOUT = 120.0
BLOCK_SIZE = 256 * 1024

ProgressFn = Callable[[int], None]
"""Called with the number of bytes just sent or received."""



def tls_context() -> ssl.SSLContext:
    """The certificates HTTPS trusts: the system's (SSL_CERT_FILE / SSL_CERT_DIR honoured), and the
    bundle in REQUESTS_CA_BUNDLE too, the variable the worker and the Manager (requests) read."""
    env = os.environ
    return _tls_context(env.get("REQUESTS_CA_BUNDLE"), env.get("SSL_CERT_FILE"), env.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context(bundle: str | None, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # Loading the trust store costs milliseconds: once per setting, not once per request.
    context = ssl.create_default_context()
    if bundle:
        context.load_verify_locations(cafile=bundle)
    return context

class ClientError(Exception):
    """Something went wrong talking to the Server; str() is for the artist."""

    def __init__(self, message: str, *, status: int = 0, code: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class Unreachable(ClientError):
    """No HTTP answer at all: wrong URL, Server down, network trouble."""


class AuthError(ClientError):
    """401: no token, a bad token, or a wrong user name/password."""


class Forbidden(ClientError):
    """403: signed in, but not allowed to do this."""


class NotFound(ClientError):
    """404."""


class VersionMismatch(ClientError):
    """The Server speaks another version of the user API than this client."""


class Canceled(ClientError):
    """The artist pressed Cancel while a transfer was running."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    data: Any


def normalize_url(url: str) -> str:
    """'farm:8080/' -> 'http://farm:8080'; the form every request is built on."""
    url = (url or "").strip()
    if not url:
        return ""
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def items(data: Any, key: str) -> list:
    """The list in an answer that is either a bare list or {key: [...]} / {items: [...]}."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for k in (key, "items", "results"):
            if isinstance(data.get(k), list):
                return data[k]
    return []


class _ReadWithProgress:
    """A file object for urllib's request body that reports progress and honours Cancel."""

    def __init__(self, fileobj, progress: ProgressFn | None, cancel: threading.Event | None):
        self.fileobj = fileobj
        self.progress = progress
        self.cancel = cancel

    def read(self, size: int = -1) -> bytes:
        if self.cancel is not None and self.cancel.is_set():
            raise Canceled("Canceled while uploading.")
        data = self.fileobj.read(BLOCK_SIZE if size is None or size < 0 else min(size, BLOCK_SIZE))
        if data and self.progress:
            self.progress(len(data))
        return data


class Client:
    """One Server, one token. Thread-safe: every call is its own connection."""

    USER_AGENT = "flamenco-client"
    WHO = "this client"
    """Who speaks, in the version-mismatch message ('this add-on')."""

    def __init__(self, url: str, token: str = "", timeout: float = DEFAULT_TIMEOUT):
        self.url = normalize_url(url)
        self.token = token
        self.timeout = timeout

    # --- plumbing ---------------------------------------------------------

    def _url(self, path: str, query: dict[str, Any] | None = None) -> str:
        if path.startswith(("http://", "https://")):
            full = path
        else:
            full = self.url + "/" + path.lstrip("/")
        if query:
            q = {k: v for k, v in query.items() if v not in (None, "")}
            if q:
                full += ("&" if "?" in full else "?") + urllib.parse.urlencode(q, doseq=True)
        return full

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": f"{self.USER_AGENT}/{version.__version__}",
                   "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if extra:
            headers.update(extra)
        return headers

    def _open(self, method: str, path: str, *, query=None, body: Any = None, data=None,
              headers: dict[str, str] | None = None, timeout: float | None = None):
        if not self.url and not path.startswith(("http://", "https://")):
            raise Unreachable("No Server URL is set.")
        hdrs = self._headers(headers)
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        req = urllib.request.Request(self._url(path, query), data=data, method=method, headers=hdrs)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout, context=tls_context())
        except urllib.error.HTTPError as ex:
            raise self._http_error(ex) from None
        except Canceled:
            raise
        except urllib.error.URLError as ex:
            raise self._unreachable(ex.reason) from None
        except (OSError, http.client.HTTPException) as ex:
            raise self._unreachable(ex) from None

    def _unreachable(self, reason: Any) -> Unreachable:
        where = f"the Flamenco Server at {self.url}"
        if isinstance(reason, ConnectionRefusedError):
            text = f"Cannot reach {where}: connection refused. Is the Server running, and is the URL right?"
        elif isinstance(reason, socket.gaierror):
            host = urllib.parse.urlsplit(self.url).hostname or self.url
            text = f"Cannot reach {where}: the host name '{host}' is unknown. Check the Server URL."
        elif isinstance(reason, (socket.timeout, TimeoutError)):
            text = f"Cannot reach {where}: it did not answer within {self.timeout:g} seconds."
        elif isinstance(reason, ssl.SSLError):
            text = (f"Cannot reach {where}: the secure (https) connection failed ({reason}). If the Server's "
                    f"certificate comes from your own CA, give it with SSL_CERT_FILE=/path/to/ca.pem "
                    f"(or REQUESTS_CA_BUNDLE, as for the worker and the Manager).")
        elif isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected)):
            text = f"The connection to {where} was closed before it answered. Is the URL right?"
        else:
            text = f"Cannot reach {where}: {reason}."
        return Unreachable(text)

    def _http_error(self, ex: urllib.error.HTTPError) -> ClientError:
        status = ex.code
        code, message = "", ""
        try:
            raw = ex.read()
            doc = json.loads(raw.decode("utf-8")) if raw else {}
            if isinstance(doc, dict):
                code = str(doc.get("code", ""))
                message = str(doc.get("message", ""))
        except (ValueError, OSError, UnicodeDecodeError):
            pass
        finally:
            ex.close()
        if status == 401:
            return AuthError(message or "The Server did not accept your sign-in. Sign in again.",
                             status=status, code=code)
        if status == 403:
            return Forbidden(f"Not allowed: {message}" if message else "You are not allowed to do this.",
                             status=status, code=code)
        if status == 404:
            return NotFound(message or f"Not found on the Server: {ex.url}", status=status, code=code)
        if status == 503:
            return ClientError(f"The Server is busy ({message or 'try again in a moment'}).",
                               status=status, code=code)
        if status >= 500:
            return ClientError(f"The Server had an internal error (HTTP {status})"
                               + (f": {message}" if message else "."), status=status, code=code)
        if not message:
            message = f"The Server refused the request (HTTP {status})."
        return ClientError(message, status=status, code=code)

    def request(self, method: str, path: str, *, query=None, body: Any = None,
                timeout: float | None = None) -> Response:
        """A JSON request; the answer's JSON (None for an empty body)."""
        with self._open(method, path, query=query, body=body, timeout=timeout) as resp:
            raw = resp.read()
            headers = {k.lower(): v for k, v in resp.headers.items()}
            if not raw:
                return Response(resp.status, headers, None)
            try:
                data = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                ctype = headers.get("content-type", "?")
                raise ClientError(f"The Server at {self.url} did not answer like a Flamenco Server "
                                  f"(HTTP {resp.status}, {ctype}). Check the Server URL.",
                                  status=resp.status) from None
            return Response(resp.status, headers, data)

    def get(self, path: str, **query) -> Any:
        return self.request("GET", path, query=query or None).data

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {}).data

    # --- the user API -----------------------------------------------------

    def login(self, username: str, password: str) -> dict:
        """{token, ...}; the caller keeps only the token."""
        try:
            data = self.request("POST", "/api/auth/login",
                                body={"username": username, "password": password}).data
        except AuthError as ex:
            raise AuthError(ex.message if ex.code not in ("", "unauthorized") else
                            "Wrong user name or password.", status=401, code=ex.code) from None
        if not isinstance(data, dict) or not data.get("token"):
            raise ClientError("The Server answered the sign-in without a token.")
        return data

    def version(self) -> dict:
        try:
            data = self.get("/api/version")
        except ClientError as ex:
            if isinstance(ex, (Unreachable, AuthError)) or ex.status >= 500:
                raise
            self._not_a_manager()
            raise
        if not isinstance(data, dict) or "api_version" not in data:
            self._not_a_manager()
            raise ClientError(f"The Server at {self.url} did not answer like a Flamenco Server "
                              "(no API version). Check the Server URL.")
        return data

    def _not_a_manager(self) -> None:
        """Raise a clear error when the URL is a Flamenco Manager's (people mix them up):
        a Manager answers its index page with {"service": "flamenco-manager"}."""
        try:
            index = self.get("/")
        except ClientError:
            return
        if isinstance(index, dict) and index.get("service") == "flamenco-manager":
            raise ClientError(f"{self.url} is a Flamenco Manager, not the Flamenco Server. Enter the Server's URL "
                              "(where flamenco-server runs, for example http://render-server:8080); the Manager "
                              "gets its jobs from there.", code="manager_url")

    def check_version(self) -> dict:
        """The version document, or VersionMismatch when the API versions differ."""
        data = self.version()
        theirs = data.get("api_version")
        if theirs != version.API_VERSION:
            raise VersionMismatch(
                f"Version mismatch: the Server speaks API version {theirs} (Flamenco "
                f"{data.get('version', '?')}), {self.WHO} speaks API version {version.API_VERSION} "
                f"(Flamenco {version.__version__}). Use {self.WHO} from the Server's Flamenco version.")
        return data

    def me(self) -> dict:
        return self.get("/api/me")

    def projects(self) -> list[dict]:
        return items(self.get("/api/projects"), "projects")

    def job_types(self) -> list[dict]:
        return items(self.get("/api/job-types"), "job_types")

    def managers(self) -> list[dict]:
        return items(self.get("/api/managers"), "managers")

    def files_check(self, files: Iterable[tuple[str, int]]) -> list[str]:
        """The sha256s among `files` (sha256, size) that the Server does not have yet."""
        body = {"files": [{"sha256": sha, "size": size} for sha, size in files]}
        data = self.post("/api/files/check", body)
        missing = data.get("missing") if isinstance(data, dict) else None
        if not isinstance(missing, list):
            raise ClientError("The Server's answer to the file check has no 'missing' list.")
        return [str(m) for m in missing]

    def upload_file(self, sha256: str, path: str, size: int | None = None, *,
                    progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> int:
        """PUT one file by its hash; the HTTP status (201 stored, 200 already there)."""
        if size is None:
            size = os.path.getsize(path)
        with open(path, "rb") as f:
            body = _ReadWithProgress(f, progress, cancel)
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            with self._open("PUT", f"/api/files/{sha256}", data=body, headers=headers,
                            timeout=UPLOAD_TIMEOUT) as resp:
                resp.read()
                return resp.status

    def submit_job(self, job: dict) -> dict:
        data = self.request("POST", "/api/jobs", body=job).data
        if not isinstance(data, dict) or "id" not in data:
            raise ClientError("The Server accepted the job but did not say its id.")
        return data

    def jobs(self, **filters) -> list[dict]:
        """Jobs, newest first; filters as GET /api/jobs takes them (project, status, mine, limit, ...)."""
        return items(self.get("/api/jobs", **filters), "jobs")

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/jobs/{urllib.parse.quote(str(job_id))}")

    def tasks(self, job_id: str) -> list[dict]:
        return items(self.get(f"/api/jobs/{urllib.parse.quote(str(job_id))}/tasks"), "tasks")

    def worker_tags(self, project: str = "") -> list[str]:
        """The tags the workers of the project's Managers have."""
        data = self.get("/api/worker-tags", project=project or None)
        tags = data.get("tags") if isinstance(data, dict) else None
        return [str(t) for t in tags] if isinstance(tags, list) else []

    def set_job_status(self, job_id: str, status: str, reason: str = "") -> Any:
        body = {"status": status}
        if reason:
            body["reason"] = reason
        return self.post(f"/api/jobs/{urllib.parse.quote(str(job_id))}/status", body)

    def job_outputs(self, job_id: str) -> list[dict]:
        return items(self.get(f"/api/jobs/{urllib.parse.quote(str(job_id))}/outputs"), "outputs")

    def download(self, path: str, dest: str, *, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None) -> int:
        """GET `path` (relative to the Server, or a full URL) into the file `dest`; bytes written."""
        tmp = dest + ".part"
        total = 0
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        try:
            with self._open("GET", path, headers={"Accept": "*/*"}, timeout=UPLOAD_TIMEOUT) as resp, \
                    open(tmp, "wb") as out:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise Canceled("Canceled while downloading.")
                    try:
                        block = resp.read(BLOCK_SIZE)
                    except (OSError, http.client.HTTPException) as ex:
                        raise self._unreachable(ex) from None
                    if not block:
                        break
                    out.write(block)
                    total += len(block)
                    if progress:
                        progress(len(block))
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return total
