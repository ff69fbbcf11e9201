"""The Server's GET /metrics: who may scrape it, and what a real scrape (parsed by prometheus_client's
parser) says about the farm after real requests: jobs and tasks by status, each Manager's link, queue
and workers, uploads, stored bytes, requests by route kind, retention. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import requests

from backend.db import open_database
from backend.server.app import make_app
from backend.server.config import ConfigError, ServerConfig
from backend.server.housekeeping import Housekeeping
from backend.server.models import utcnow
from shared.serving import ServiceThread
from tests.integration.server.timed_studio import mpath, run, submit, timed_studio, upload_output_and_log
from tests.metrics_scrape import scrape
from tests.unit.server.server_testdb import DB_KINDS

TOKEN = "metrics-token-for-the-tests-0123"


@pytest.fixture(params=DB_KINDS)
def studio(request, tmp_path):
    with timed_studio(request.param, tmp_path, request, utcnow(), metrics_token=TOKEN,
                      archive_after_days=1) as s:
        yield s


def test_only_the_metrics_token_may_scrape(studio):
    url = studio.url + "/metrics"
    r = requests.get(url, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(url, headers={"Authorization": "Bearer wrong-token-0123456789"}, timeout=10).status_code == 403
    admin_token = studio.admin.token
    assert requests.get(url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10).status_code == 403, \
        "an admin's API token is not the metrics token"
    assert requests.get(url, auth=("prometheus", TOKEN), timeout=10).status_code == 401, "Bearer only"
    assert scrape(studio.url, TOKEN).value("flamenco_server_info", version=_version()) == 1
    r = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}",
                                   "Accept": "application/openmetrics-text; version=1.0.0"}, timeout=10)
    assert r.headers["Content-Type"].startswith("application/openmetrics-text") and r.text.endswith("# EOF\n")
    doc = requests.get(studio.url + "/api/openapi.json", timeout=10).json()
    assert doc["paths"]["/metrics"]["get"]["x-flamenco-auth"] == "metrics"


def test_no_token_configured_means_no_metrics_for_anyone(tmp_path):
    db = open_database(f"sqlite:///{tmp_path}/server.sqlite")
    app = make_app(ServerConfig.from_dict({}, data_dir=tmp_path / "data"), db)
    with ServiceThread(app, threads=4) as service:
        for headers in ({}, {"Authorization": "Bearer anything-at-all-0123456"}):
            r = requests.get(service.url + "/metrics", headers=headers, timeout=10)
            assert r.status_code == 403 and r.json()["code"] == "metrics_not_configured", r.text
            assert "metrics_token" in r.json()["message"]
    db.close()
    with pytest.raises(ConfigError, match="at least 16"):
        ServerConfig.from_dict({"metrics_token": "short"}, data_dir=tmp_path)


def _version() -> str:
    from shared.version import __version__
    return __version__


def test_a_scrape_shows_the_farm(studio):
    before = scrape(studio.url, TOKEN)
    assert before.labelled("flamenco_server_jobs", "status")["queued"] == 0
    assert before.value("flamenco_server_manager_up", manager="m1") == 1

    blend = b"BLENDER-v300 a scene"
    sha = hashlib.sha256(blend).hexdigest()
    assert studio.bob.put(f"/api/files/{sha}", data=blend).status_code == 201
    film, film_tasks = submit(studio, studio.ann, "film", frames="1-3")
    submit(studio, studio.bob, "ads", frames="1", files={"scene.blend": {"sha256": sha, "size": len(blend)}})
    now = utcnow()
    run(studio, film_tasks[0], "w1", now - dt.timedelta(seconds=5), now)
    run(studio, film_tasks[1], "w2", now, None)
    frame = b"\x89PNG a frame"
    upload_output_and_log(studio, film["id"], film_tasks[0], frame)
    r = studio.manager.post(mpath(studio, "workers"), json={"complete": True, "workers": [
        {"_id": "w1", "nickname": "node-1", "status": "awake"}, {"_id": "w2", "nickname": "node-2", "status": "awake"},
        {"_id": "w3", "nickname": "node-3", "status": "asleep"}]})
    assert r.status_code == 204, r.text
    r = studio.manager.post(mpath(studio, "task-update-batch"), json={"updates": [], "queue_length": 17})
    assert r.status_code == 200, r.text
    assert requests.get(studio.url + "/api/no-such-thing", timeout=10).status_code == 404

    m = scrape(studio.url, TOKEN)
    jobs = m.labelled("flamenco_server_jobs", "status")
    assert jobs["active"] == 1 and jobs["queued"] == 1 and jobs["archived"] == 0
    tasks = m.labelled("flamenco_server_tasks", "status")
    assert (tasks["completed"], tasks["active"]) == (1, 1)
    assert tasks["queued"] + tasks["claimed-by-manager"] == 2
    assert m.value("flamenco_server_manager_queue_length", manager="m1") == 17
    assert 0 <= m.value("flamenco_server_manager_last_seen_age_seconds", manager="m1") < 60
    assert m.value("flamenco_server_workers", manager="m1", status="awake") == 2
    assert m.value("flamenco_server_workers", manager="m1", status="asleep") == 1
    assert m.value("flamenco_server_workers", manager="m1", status="offline") == 0
    assert m.value("flamenco_server_uploads_total", kind="files") == 1
    assert m.value("flamenco_server_upload_bytes_total", kind="files") == len(blend)
    assert m.value("flamenco_server_uploads_total", kind="outputs") == 1
    assert m.value("flamenco_server_upload_bytes_total", kind="outputs") == len(frame)
    assert (m.value("flamenco_server_store_files"), m.value("flamenco_server_store_bytes")) == \
        (2, len(blend) + len(frame))
    assert m.value("flamenco_server_disk_free_bytes") > 0
    assert m.value("flamenco_server_http_requests_total", kind="user", code="201") == 3, "an upload, two jobs"
    assert m.value("flamenco_server_http_requests_total", kind="manager", code="204") >= 2
    assert m.value("flamenco_server_http_requests_total", kind="unknown", code="404") == 1
    assert m.value("flamenco_server_http_requests_total", kind="metrics", code="200") == 1, "the scrape before"
    assert m.value("flamenco_server_http_request_duration_seconds_count", kind="user") >= 3

    run(studio, film_tasks[1], "w2", now, now)
    run(studio, film_tasks[2], "w1", now, now)
    with studio.db.connection_context():
        Housekeeping(studio.ctx).tick(utcnow() + dt.timedelta(days=2))
    m = scrape(studio.url, TOKEN)
    assert m.labelled("flamenco_server_jobs", "status")["archived"] == 1
    assert m.value("flamenco_server_retention_archived_jobs_total") == 1
    assert m.value("flamenco_server_archive_bytes") > 0
    assert m.value("flamenco_server_store_files") == 1, "the output only the archived job used went with it"
    assert abs(m.value("flamenco_server_housekeeping_last_success_timestamp_seconds") -
               dt.datetime.now(dt.timezone.utc).timestamp()) < 60
    assert m.value("flamenco_server_housekeeping_failures_total") == 0
