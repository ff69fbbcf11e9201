"""The security suite's world: a real Server (and Manager) on cheroot ports, with two projects whose
members, Managers, jobs, tasks and files are known, and clients signed in by token and by cookie."""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from backend.db import open_database
from backend.server import admin
from backend.server.app import context_of, make_app
from backend.server.config import ServerConfig
from shared.serving import ServiceThread
from tests.integration.server.server_it_helpers import Client

ANN_PW, BOB_PW, BOSS_PW = "ann-secret-pw", "bob-secret-pw", "boss-secret-pw"
TASK_TYPES = ["sleep", "blender-render", "file-management", "video-encoding", "debug"]
METRICS_TOKEN = "security-suite-metrics-token-0123"
"""Both services' metrics token in the suite: the only credential GET /metrics takes."""
MATRIX_COUNTS: dict[str, dict[str, int]] = {}
"""service -> counts of its auth matrix, printed in the terminal summary (conftest.py)."""


class CookieClient(Client):
    """A browser signed in on the web pages: the session cookie, and the page's CSRF token to send."""

    def __init__(self, base: str, name: str, password: str):
        super().__init__(base)
        s = self.session
        s.headers["Accept"] = "text/html,application/xhtml+xml"
        page = s.get(base + "/login", timeout=10).text
        login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)
        r = s.post(base + "/login", data={"username": name, "password": password, "next": "/",
                                          "login_csrf": login_csrf}, allow_redirects=False, timeout=30)
        assert r.status_code == 303, r.text
        self.csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', s.get(base + "/").text).group(1)
        s.headers["Accept"] = "application/json"

    def with_csrf(self) -> "CookieClient":
        self.session.headers["X-Flamenco-CSRF"] = self.csrf
        return self


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Farm:
    """Projects 'film' (ann, manager m1) and 'ads' (bob, manager m2); admin boss.

    film has an upload-mode render job with a file and an output, and a sleep job; ads a sleep job.
    """
    url: str
    app: object
    ctx: object
    db: object
    tokens: dict[str, str] = field(default_factory=dict)
    managers: dict[str, tuple[str, str]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    kind: str = "sqlite"

    def client(self, who: str | None) -> Client:
        return Client(self.url, self.tokens[who] if who else None)

    def manager(self, name: str) -> Client:
        return Client(self.url, self.managers[name][1])

    def mpath(self, name: str, rest: str) -> str:
        return f"/api/managers/{self.managers[name][0]}/{rest}"


def start_server(tmp_path: Path, db=None, **config) -> tuple[ServiceThread, object, object]:
    """A Server on a cheroot port: SQLite in tmp_path unless a database is given."""
    db = db or open_database(f"sqlite:///{tmp_path}/server.sqlite")
    cfg = ServerConfig.from_dict({"min_free_bytes": 0, "metrics_token": METRICS_TOKEN, **config},
                                 data_dir=tmp_path / "data")
    app = make_app(cfg, db)
    return ServiceThread(app, threads=8).start(), app, db


def announce(client: Client, manager_id: str) -> None:
    r = client.post(f"/api/managers/{manager_id}/startup", json={
        "_meta": {"version": 2}, "manager_url": "http://manager.local:8083", "nr_of_workers": 1,
        "worker_task_types": TASK_TYPES})
    assert r.status_code == 204, r.text


def build_farm(service: ServiceThread, app, db, kind: str = "sqlite") -> Farm:
    farm = Farm(url=service.url, app=app, ctx=context_of(app), db=db, kind=kind)
    with db.connection_context():
        for project in ("film", "ads"):
            admin.create_project(db, project)
        _, farm.tokens["boss"] = admin.create_user(db, "boss", "admin", password=BOSS_PW)
        _, farm.tokens["ann"] = admin.create_user(db, "ann", "artist", password=ANN_PW, projects=["film"])
        _, farm.tokens["bob"] = admin.create_user(db, "bob", "artist", password=BOB_PW, projects=["ads"])
        for name, project in (("m1", "film"), ("m2", "ads")):
            manager, token = admin.create_manager(db, name)
            admin.link_manager(db, name, project)
            farm.managers[name] = (manager.id, token)
        farm.ids["film"] = admin.find_project("film").id
        farm.ids["ads"] = admin.find_project("ads").id
    for name, (mid, _) in farm.managers.items():
        announce(farm.manager(name), mid)

    ann, bob = farm.client("ann"), farm.client("bob")
    blend = b"BLENDER-v300 the film's secret scene"
    farm.ids["film_blob"] = sha(blend)
    assert ann.put(f"/api/files/{sha(blend)}", data=blend).status_code == 201
    job = ann.post("/api/jobs", json={
        "name": "film render", "type": "blender-render", "project": "film",
        "files": {"scene.blend": {"sha256": sha(blend), "size": len(blend)}},
        "settings": {"filepath": "scene.blend", "frames": "1-2", "render_output": "frames/######",
                     "format": "PNG"}})
    assert job.status_code == 201, job.text
    farm.ids["film_job"] = job.json()["id"]
    tasks = farm.manager("m1").get(farm.mpath("m1", "depsgraph")).json()["depsgraph"]
    farm.ids["film_task"] = tasks[0]["_id"]
    frame = b"\x89PNG the film's first frame"
    farm.ids["film_output_blob"] = sha(frame)
    r = farm.manager("m1").put(farm.mpath("m1", f"jobs/{farm.ids['film_job']}/outputs/frames/000001.png"),
                               params={"task": tasks[0]["_id"]}, data=frame, headers={"X-Flamenco-SHA256": sha(frame)})
    assert r.status_code == 204, r.text
    r = farm.manager("m1").post(farm.mpath("m1", f"tasks/{tasks[0]['_id']}/log"),
                                data=gzip.compress(b"render log\n"), headers={"Content-Type": "application/gzip"})
    assert r.status_code == 204, r.text
    for who, project, key in ((ann, "film", "film_sleep_job"), (bob, "ads", "ads_job")):
        r = who.post("/api/jobs", json={"name": f"{project} sleep", "type": "sleep", "project": project,
                                        "settings": {"frames": "1-2", "time_in_seconds": 0}})
        assert r.status_code == 201, r.text
        farm.ids[key] = r.json()["id"]
    ads_tasks = farm.manager("m2").get(farm.mpath("m2", "depsgraph")).json()["depsgraph"]
    farm.ids["ads_task"] = ads_tasks[0]["_id"]
    farm.ids["ann_token_id"] = farm.tokens["ann"].partition(".")[0]
    farm.ids["boss_token_id"] = farm.tokens["boss"].partition(".")[0]
    return farm


def operations(doc: dict):
    """(METHOD, rule, operation) of an OpenAPI document."""
    for rule, ops in doc["paths"].items():
        for method, op in ops.items():
            yield method.upper(), rule, op


def fill(rule: str, values: dict[str, str]) -> str:
    """'/api/jobs/{job_id}' with the values of its parameters."""
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], rule)
