"""Helpers the tests that drive a whole farm share: the Server's user API with the farm's admin token."""

from __future__ import annotations

import time

import requests


class Api:
    """The Server's user API with the farm's admin token."""

    def __init__(self, info: dict):
        self.base = info["server_url"]
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {info['admin_token']}"

    def get(self, path):
        r = self.s.get(self.base + path, timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path, body):
        r = self.s.post(self.base + path, json=body, timeout=30)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def post_raw(self, path, body) -> requests.Response:
        return self.s.post(self.base + path, json=body, timeout=30)

    def submit(self, job_type: str, name: str, settings: dict, **extra) -> dict:
        return self.post("/api/jobs", {"name": name, "type": job_type, "settings": settings, **extra})

    def job(self, job_id):
        return self.get(f"/api/jobs/{job_id}")

    def tasks(self, job_id):
        data = self.get(f"/api/jobs/{job_id}/tasks")
        return data["tasks"] if isinstance(data, dict) else data

    def task(self, task_id):
        return self.get(f"/api/tasks/{task_id}")

    def workers(self):
        data = self.get("/api/workers")
        return data["workers"] if isinstance(data, dict) else data

    def wait(self, job_id, until=lambda j: j["status"] == "completed", timeout=180, poll=0.2, allow_failure=False,
             each=None):
        """Poll the job until `until(job)`; `each(job)` sees every poll (to record progress)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if each is not None:
                each(job)
            if until(job):
                return job
            if not allow_failure and job["status"] in ("failed", "canceled", "construction-failed"):
                raise AssertionError(f"job {job['name']} is {job['status']}: {job.get('status_reason')}; "
                                     f"tasks: {self.failed_task_summary(job_id)}")
            assert time.monotonic() < deadline, f"job {job['name']} still {job['status']} after {timeout} s"
            time.sleep(poll)

    def wait_all(self, job_ids, timeout=180, **kw) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        return {jid: self.wait(jid, timeout=max(1.0, deadline - time.monotonic()), **kw) for jid in job_ids}

    def failed_task_summary(self, job_id) -> list[str]:
        out = []
        for t in self.tasks(job_id):
            if t["status"] in ("failed", "soft-failed"):
                full = self.task(t["id"])
                out.append(f"{t['name']}: {full.get('activity')} | {full.get('log_tail')}")
        return out
