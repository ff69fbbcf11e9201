"""HTTP calls from the Worker to its Manager, with registration and credentials.

A worker registers once (`POST /register-worker` with a random 64-character
secret, authorised by an HS256 JWT signed with the registration secret when the
Manager has one) and keeps `{manager_url, worker_id, secret}` in a credentials
file. Every later call uses HTTP Basic `worker_id:secret`. A 401 means the
Manager forgot us (a lost database): re-register once and retry. A 403 is
fatal: the Manager refuses this worker and retrying will not change that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import string
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from shared.documents import MayKeepRunning, WorkerStatusRequest
from shared.protocol import LONG_POLL_HEADER, SHA256_HEADER, UPLOAD_OFFSET_HEADER, UPLOAD_SIZE_HEADER
from shared.variables import this_platform
from shared.version import USER_AGENT

from .upstream_queue import QueuedRequest

log = logging.getLogger(__name__)

JWT_LIFETIME = 15 * 60
SECRET_ALPHABET = string.ascii_letters + string.digits
OUTPUTS = "OUTPUTS"
"""The upstream queue's pseudo-method for a task's outputs: path = the job id, body = the
registration; the transport first sends the blobs the Manager lacks (see send_outputs)."""


class ManagerError(Exception):
    """A call to the Manager failed; `status` is the HTTP status (None when unreachable)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Unreachable(ManagerError):
    """The Manager could not be reached at all."""


class FatalManagerError(ManagerError):
    """The Manager refuses this worker (403); the worker should stop."""


def random_secret(length: int = 64) -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(length))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_registration_jwt(registration_secret: str, now: float | None = None) -> str:
    """An HS256 JWT {iat, exp: +15 min}, as Flamenco Worker 2.x sends it."""
    now = time.time() if now is None else now
    header = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    claims = _b64url(json.dumps({"iat": int(now), "exp": int(now) + JWT_LIFETIME},
                                separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}".encode("ascii")
    signature = hmac.new(registration_secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(signature)}"


@dataclass
class Credentials:
    manager_url: str
    worker_id: str
    secret: str

    @classmethod
    def load(cls, path: Path) -> "Credentials | None":
        try:
            data = json.loads(path.read_text())
            return cls(data["manager_url"], data["worker_id"], data["secret"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("credentials file %s is unreadable; registering anew", path)
            return None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"manager_url": self.manager_url, "worker_id": self.worker_id,
                       "secret": self.secret}, fh)
        os.replace(tmp, path)


class ManagerClient:
    def __init__(self, manager_url: str, credentials_path: str | os.PathLike, task_types: list[str],
                 nickname: str = "", tags: list[str] | None = None, registration_secret: str = "",
                 timeout: float = 30.0):
        self.manager_url = manager_url.rstrip("/")
        self.credentials_path = Path(credentials_path)
        self.task_types = list(task_types)
        self.nickname = nickname or socket.gethostname()
        self.tags = list(tags or [])
        self.registration_secret = registration_secret
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.credentials: Credentials | None = None
        self.cache_path = None  # sha256 -> Path in the worker's file cache (set by the worker)
        self._register_lock = threading.Lock()
        creds = Credentials.load(self.credentials_path)
        if creds and creds.manager_url == self.manager_url:
            self.credentials = creds
        elif creds:
            log.info("credentials in %s are for %s, not %s; will register", self.credentials_path,
                     creds.manager_url, self.manager_url)

    @property
    def worker_id(self) -> str | None:
        return self.credentials.worker_id if self.credentials else None

    # --- registration ---------------------------------------------------------

    def register(self) -> Credentials:
        secret = random_secret()
        body = {"secret": secret, "platform": this_platform(),
                "supported_task_types": self.task_types, "nickname": self.nickname}
        headers = {}
        if self.registration_secret:
            headers["Authorization"] = "Bearer " + make_registration_jwt(self.registration_secret)
        resp = self._raw("POST", "/register-worker", json=body, headers=headers, auth=False)
        if resp.status_code == 403:
            raise FatalManagerError(f"the Manager refused registration: {_message(resp)}", 403)
        if resp.status_code != 200:
            raise ManagerError(f"registration failed with HTTP {resp.status_code}: {_message(resp)}",
                               resp.status_code)
        try:
            worker_id = resp.json()["_id"]
        except (ValueError, KeyError, TypeError):
            raise ManagerError("the Manager's registration answer has no '_id'") from None
        self.credentials = Credentials(self.manager_url, str(worker_id), secret)
        self.credentials.save(self.credentials_path)
        log.info("registered at %s as worker %s (%s)", self.manager_url, worker_id, self.nickname)
        return self.credentials

    def forget_credentials(self) -> None:
        self.credentials = None
        try:
            self.credentials_path.unlink()
        except FileNotFoundError:
            pass

    # --- requests ---------------------------------------------------------------

    def _raw(self, method: str, path: str, auth: bool = True, timeout: float | None = None,
             **kwargs) -> requests.Response:
        if auth:
            if self.credentials is None:
                self.register()
            kwargs["auth"] = (self.credentials.worker_id, self.credentials.secret)
        try:
            return self.session.request(method, self.manager_url + path,
                                        timeout=timeout or self.timeout, **kwargs)
        except requests.RequestException as ex:
            raise Unreachable(f"{method} {path}: {ex}") from ex

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """An authenticated call; a 401 re-registers once and retries, a 403 is fatal."""
        used = self.credentials
        start = kwargs["data"].tell() if hasattr(kwargs.get("data"), "tell") else 0
        resp = self._raw(method, path, **kwargs)
        if resp.status_code == 401:
            with self._register_lock:
                if self.credentials is used:  # another thread may have registered meanwhile
                    log.warning("Manager answered 401 to %s %s; registering again", method, path)
                    self.register()
            body = kwargs.get("data")
            if hasattr(body, "seek"):
                body.seek(start)
            resp = self._raw(method, path, **kwargs)
            if resp.status_code == 401:
                raise ManagerError(f"{method} {path}: still 401 after registering again", 401)
        if resp.status_code == 403:
            raise FatalManagerError(f"{method} {path}: the Manager refuses this worker: {_message(resp)}", 403)
        return resp

    def _expect(self, resp: requests.Response, *ok: int) -> requests.Response:
        if resp.status_code not in ok:
            raise ManagerError(f"{resp.request.method} {resp.request.path_url}: HTTP {resp.status_code}: "
                               f"{_message(resp)}", resp.status_code)
        return resp

    # --- the protocol -------------------------------------------------------------

    def sign_on(self, resources: dict | None = None, software: str | None = None) -> None:
        body: dict[str, Any] = {"supported_task_types": self.task_types, "nickname": self.nickname,
                                "tags": self.tags}
        if resources:
            body["resources"] = resources
        if software:
            body["software"] = software
        self._expect(self.request("POST", "/sign-on", json=body), 200, 204)
        log.info("signed on at %s as %s (%s)", self.manager_url, self.worker_id, self.nickname)

    def sign_off(self) -> None:
        self._expect(self.request("POST", "/sign-off", timeout=10), 200, 204)
        log.info("signed off from %s", self.manager_url)

    def fetch_task(self, long_poll: float = 0, request: dict | None = None) -> requests.Response:
        """POST /task; with `request` (a TaskRequest: what our slots have free) a 200 is {tasks: [...]}."""
        headers = {}
        timeout = self.timeout
        if long_poll > 0:
            headers[LONG_POLL_HEADER] = str(int(long_poll)) if float(long_poll).is_integer() else str(long_poll)
            timeout = long_poll + self.timeout
        return self.request("POST", "/task", headers=headers, timeout=timeout, json=request)

    def may_i_run(self, task_id: str) -> MayKeepRunning:
        resp = self._expect(self.request("GET", f"/may-i-run/{task_id}", timeout=10), 200)
        return MayKeepRunning.from_dict(resp.json())

    def status_change(self) -> str | None:
        resp = self._expect(self.request("GET", "/status-change"), 200, 204)
        if resp.status_code == 204:
            return None
        return WorkerStatusRequest.from_dict(resp.json()).status_requested

    def ack_status_change(self, status: str) -> None:
        self._expect(self.request("POST", f"/ack-status-change/{status}"), 200, 204)

    def job_files_manifest(self, job_id: str) -> dict:
        resp = self._expect(self.request("GET", f"/jobs/{job_id}/files"), 200)
        files = resp.json().get("files")
        if not isinstance(files, dict):
            raise ManagerError(f"the file manifest of job {job_id} has no 'files' object")
        return files

    def download_file(self, sha256: str, dest) -> None:
        """Stream the bytes of a stored file into the open binary file `dest`."""
        resp = self._expect(self.request("GET", f"/files/{sha256}", stream=True, timeout=120), 200)
        try:
            for chunk in resp.iter_content(1024 * 1024):
                dest.write(chunk)
        except requests.RequestException as ex:
            raise Unreachable(f"GET /files/{sha256}: {ex}") from ex
        finally:
            resp.close()

    def job_outputs(self, job_id: str, prefixes: list[str] | None = None) -> dict:
        """{relpath: {sha256, size}} of a job's outputs (under `prefixes`, or all)."""
        params = [("prefix", p) for p in prefixes] if prefixes is not None else None
        resp = self._expect(self.request("GET", f"/jobs/{job_id}/outputs", params=params), 200)
        files = resp.json().get("files")
        if not isinstance(files, dict):
            raise ManagerError(f"the outputs of job {job_id} have no 'files' object")
        return files

    # --- outputs up: only what the Manager lacks, resumably ----------------------------

    def check_files(self, files: list[tuple[str, int]]) -> tuple[list[str], dict[str, int]]:
        """(checksums the Manager lacks, {checksum: bytes of it already there})."""
        body = {"files": [{"sha256": sha, "size": size} for sha, size in files]}
        data = self._expect(self.request("POST", "/files/check", json=body), 200).json()
        partial = data.get("partial") or {}
        return list(data.get("missing") or []), {k: int(v) for k, v in partial.items() if isinstance(v, int)}

    def upload_blob(self, sha256: str, path: Path, size: int, offset: int = 0) -> int:
        """Send `path` from `offset` on; an answer that another offset is there restarts from that.
        Returns the bytes sent."""
        sent = 0
        for _ in range(5):
            with open(path, "rb") as fh:
                fh.seek(offset)
                headers = {UPLOAD_OFFSET_HEADER: str(offset), UPLOAD_SIZE_HEADER: str(size),
                           "Content-Type": "application/octet-stream"}
                resp = self.request("PUT", f"/files/{sha256}", data=fh, headers=headers,
                                    timeout=max(self.timeout, 300))
            sent += size - offset
            if resp.status_code == 201:
                return sent
            if resp.status_code == 409 and resp.headers.get(UPLOAD_OFFSET_HEADER, "").isdigit():
                offset = int(resp.headers[UPLOAD_OFFSET_HEADER])
                log.info("upload of %s resumes at byte %d of %d", sha256, offset, size)
                continue
            self._expect(resp, 201, 202)
            offset = int(resp.json().get("offset", offset))
        raise ManagerError(f"PUT /files/{sha256}: no progress after 5 attempts", 503)

    def send_outputs(self, job_id: str, body: dict, cache_path) -> int:
        """A task's outputs: the blobs the Manager lacks (from the cache), then the list. An HTTP status."""
        files = body.get("files") or {}
        sizes = {e["sha256"]: e["size"] for e in files.values()}
        missing, partial = self.check_files(sorted(sizes.items())) if sizes else ([], {})
        for sha in missing:
            path = cache_path(sha)
            if not path.is_file():
                log.error("output %s of job %s is no longer in the cache; the Manager will lack it", sha, job_id)
                return 410
            self.upload_blob(sha, path, sizes[sha], partial.get(sha, 0))
        resp = self.request("POST", f"/jobs/{job_id}/outputs", json=body)
        if resp.status_code == 409:
            return 503  # a file went missing meanwhile: try again, the check will say which
        return resp.status_code

    # --- the upstream queue's transport -------------------------------------------

    def send_queued(self, item: QueuedRequest) -> int:
        """Send one queued request and return the HTTP status (raises when unreachable)."""
        if item.method == OUTPUTS:
            if self.cache_path is None:
                raise ManagerError("this worker has no file cache for queued outputs")
            try:
                return self.send_outputs(item.path, item.json or {}, self.cache_path)
            except Unreachable:
                raise
            except ManagerError as ex:
                # 409 = someone else is sending the same file: later, not never.
                return 503 if ex.status in (None, 409) else ex.status
        kwargs: dict[str, Any] = {"headers": dict(item.headers)}
        if item.json is not None:
            kwargs["json"] = item.json
        try:
            if item.body_file is None:
                return self.request(item.method, item.path, **kwargs).status_code
            path = Path(item.body_file)
            if not path.is_file():
                log.warning("queued upload %s is gone; dropping it", path)
                return 410
            kwargs["headers"][SHA256_HEADER] = sha256_of(path)
            with open(path, "rb") as fh:
                return self.request(item.method, item.path, data=fh, timeout=max(self.timeout, 300),
                                    **kwargs).status_code
        except Unreachable:
            raise
        except ManagerError as ex:
            return ex.status or 500


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _message(resp: requests.Response) -> str:
    try:
        data = resp.json()
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    except ValueError:
        pass
    return (resp.text or resp.reason or "")[:300]
