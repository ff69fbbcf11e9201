"""A small client for the Server's user API, for the CLI and scripts."""

from __future__ import annotations

import os
from typing import Any

import requests

from shared.version import USER_AGENT


class ApiError(Exception):
    """The Server said no, or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


class ServerClient:
    def __init__(self, server_url: str, token: str, timeout: float = 30):
        self.base = server_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT})
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs) -> Any:
        url = self.base + path
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise ApiError(f"cannot reach the Server at {self.base}; is it running?") from None
        except requests.Timeout:
            raise ApiError(f"the Server at {self.base} did not answer within {self.timeout:g} s") from None
        if resp.status_code >= 400:
            try:
                body = resp.json()
                message, code = body.get("message", resp.text), body.get("code")
            except ValueError:
                message, code = resp.text.strip() or resp.reason, None
            if resp.status_code == 401:
                message = f"the Server refused the token ({message})"
            raise ApiError(message, resp.status_code, code)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    # The routes the CLI uses.

    def job_types(self) -> dict[str, dict]:
        data = self.get("/api/job-types")
        types = data.get("job_types", data) if isinstance(data, dict) else data
        if isinstance(types, list):
            return {t.get("name") or t.get("type"): t for t in types}
        return types

    def submit(self, doc: dict) -> dict:
        return self.post("/api/jobs", doc)

    def jobs(self, **filters) -> list[dict]:
        data = self.get("/api/jobs", **filters)
        return data.get("jobs", []) if isinstance(data, dict) else data

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/jobs/{job_id}")

    def tasks(self, job_id: str) -> list[dict]:
        data = self.get(f"/api/jobs/{job_id}/tasks")
        return data.get("tasks", []) if isinstance(data, dict) else data

    def set_status(self, job_id: str, status: str, reason: str = "") -> Any:
        body = {"status": status}
        if reason:
            body["reason"] = reason
        return self.post(f"/api/jobs/{job_id}/status", body)

    def outputs(self, job_id: str) -> list[dict]:
        """The outputs of an upload-mode job: [{relpath, sha256, size, url, ...}]."""
        data = self.get(f"/api/jobs/{job_id}/outputs")
        return data.get("outputs", []) if isinstance(data, dict) else data

    def download(self, path: str, dest) -> int:
        """Stream GET `path` into the file `dest` (written under a temporary name first); the bytes."""
        tmp = f"{dest}.part"
        try:
            with self.session.get(self.base + path, timeout=self.timeout, stream=True) as resp:
                if resp.status_code >= 400:
                    raise ApiError(f"GET {path}: HTTP {resp.status_code}", resp.status_code)
                size = 0
                with open(tmp, "wb") as out:
                    for chunk in resp.iter_content(1 << 20):
                        out.write(chunk)
                        size += len(chunk)
            os.replace(tmp, dest)
            return size
        except requests.RequestException as ex:
            raise ApiError(f"downloading {path} failed: {ex}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

