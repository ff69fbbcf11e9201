"""A stand-in for the Server's manager API (docs/protocol.md), for upstream tests that
must run before or without the real Server, and to script outages and cancels.

It keeps everything in memory and records every call, so tests can assert the
order in which the Manager sent things.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import threading

import bottle

from shared.serving import ServiceThread

RUNNABLE = ("queued", "claimed-by-manager", "soft-failed")


class FakeServer:
    def __init__(self, manager_id="m1", token="tok"):
        self.manager_id, self.token = manager_id, token
        self.lock = threading.Lock()
        self.tasks: dict[str, dict] = {}
        self.clock = 0
        self.applied_ids: set[str] = set()
        self.updates: list[dict] = []
        self.batches: list[int] = []
        self.notifications: list[tuple[str, dict]] = []
        self.worker_reports: list[dict] = []
        self.logs: dict[str, bytes] = {}
        self.log_requests: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.job_files: dict[str, dict] = {}
        self.file_fetches: list[str] = []
        self.outputs: dict[tuple[str, str], bytes] = {}
        self.depsgraph_headers: list[str | None] = []
        self.service: ServiceThread | None = None
        self.port = 0

    # --- state helpers ---------------------------------------------------------

    def add_task(self, doc: dict) -> None:
        with self.lock:
            self.clock += 1
            self.tasks[doc["_id"]] = {**doc, "_updated": str(self.clock).zfill(10)}

    def set_status(self, task_id: str, status: str) -> None:
        with self.lock:
            self.clock += 1
            self.tasks[task_id].update(status=status, _updated=str(self.clock).zfill(10))

    def add_file(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.files[sha] = data
        return sha

    # --- app -------------------------------------------------------------------

    def app(self) -> bottle.Bottle:
        app = bottle.Bottle()
        prefix = "/api/managers/<mid>"

        def check(mid):
            if bottle.request.get_header("Authorization") != f"Bearer {self.token}":
                raise bottle.HTTPError(401, "bad token")
            if mid != self.manager_id:
                raise bottle.HTTPError(403, "not your manager id")

        def json_out(obj, status=200):
            return bottle.HTTPResponse(status=status, body=json.dumps(obj), headers={"Content-Type": "application/json"})

        @app.post(prefix + "/startup")
        def startup(mid):
            check(mid)
            self.notifications.append(("startup", bottle.request.json))
            return bottle.HTTPResponse(status=204)

        @app.post(prefix + "/update")
        def update(mid):
            check(mid)
            self.notifications.append(("update", bottle.request.json))
            return bottle.HTTPResponse(status=204)

        @app.post(prefix + "/workers")
        def workers(mid):
            check(mid)
            self.worker_reports.append(bottle.request.json)
            return bottle.HTTPResponse(status=204)

        @app.get(prefix + "/depsgraph")
        def depsgraph(mid):
            check(mid)
            since = bottle.request.get_header("X-Flamenco-If-Updated-Since")
            self.depsgraph_headers.append(since)
            with self.lock:
                out = []
                for t in self.tasks.values():
                    wanted = RUNNABLE + (("active", "cancel-requested") if since is None else ())
                    if t["status"] not in wanted or (since and t["_updated"] <= since):
                        continue
                    if t["status"] == "queued":
                        self.clock += 1
                        t.update(status="claimed-by-manager", _updated=str(self.clock).zfill(10))
                    out.append(dict(t))
                last = str(self.clock).zfill(10)
            if not out:
                return bottle.HTTPResponse(status=304, headers={"X-Flamenco-Last-Updated": last})
            resp = json_out({"depsgraph": out})
            resp.set_header("X-Flamenco-Last-Updated", last)
            return resp

        @app.post(prefix + "/task-update-batch")
        def batch(mid):
            check(mid)
            body = bottle.request.json
            handled = []
            with self.lock:
                self.batches.append(len(body["updates"]))
                for u in body["updates"]:
                    handled.append(u["_id"])
                    if u["_id"] in self.applied_ids:
                        continue
                    self.applied_ids.add(u["_id"])
                    self.updates.append(u)
                    task = self.tasks.get(u["task_id"])
                    if task is None or not u.get("task_status"):
                        continue
                    if task["status"] == "cancel-requested" and u["task_status"] not in (
                            "canceled", "failed", "completed"):
                        continue
                    self.clock += 1
                    task.update(status=u["task_status"], _updated=str(self.clock).zfill(10))
                cancel = [t["_id"] for t in self.tasks.values() if t["status"] == "cancel-requested"]
                uploads, self.log_requests = self.log_requests, []
            return json_out({"modified_count": len(handled), "handled_update_ids": handled,
                             "cancel_task_ids": cancel, "upload_task_file_queue": uploads})

        @app.post(prefix + "/tasks/<tid>/log")
        def task_log(mid, tid):
            check(mid)
            self.logs[tid] = gzip.decompress(bottle.request.body.read())
            return bottle.HTTPResponse(status=204)

        @app.get(prefix + "/jobs/<jid>/files")
        def files_of(mid, jid):
            check(mid)
            if jid not in self.job_files:
                raise bottle.HTTPError(404, "no such job")
            return json_out({"files": self.job_files[jid]})

        @app.get(prefix + "/files/<sha>")
        def file(mid, sha):
            check(mid)
            self.file_fetches.append(sha)
            if sha not in self.files:
                raise bottle.HTTPError(404, "no such file")
            return bottle.HTTPResponse(status=200, body=self.files[sha],
                                       headers={"Content-Type": "application/octet-stream"})

        @app.put(prefix + "/jobs/<jid>/outputs/<relpath:path>")
        def output(mid, jid, relpath):
            check(mid)
            data = bottle.request.body.read()
            if hashlib.sha256(data).hexdigest() != bottle.request.get_header("X-Flamenco-SHA256"):
                raise bottle.HTTPError(400, "checksum mismatch")
            self.outputs[(jid, relpath)] = data
            return bottle.HTTPResponse(status=204)

        return app

    def start(self) -> "FakeServer":
        """Listen (again) on the same port; SO_REUSEPORT lets it come back while old
        connections are still closing, as a restarted Server would."""
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
        self.service = ServiceThread(self.app(), "127.0.0.1", self.port, threads=8, name="fake-server")
        self.service.server.reuse_port = True
        self.service.start()
        return self

    def stop(self) -> None:
        if self.service:
            self.service.stop()
            self.service = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
