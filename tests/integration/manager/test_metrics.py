"""The Manager's GET /metrics: who may scrape it, and what a real scrape (parsed by prometheus_client's
parser) says after real worker requests: tasks and workers by status, the dispatch latency of POST /task
(a long-poll's wait included), uploads, requests by route kind; and, linked to the real Server, the
upstream queue and the link's health while the Server is down and once it is back."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import requests

from backend.manager import config as config_mod
from tests.integration.manager.manager_helpers import ADMIN_TOKEN, Worker, task_doc
from tests.integration.manager.test_upstream import (announced, complete, fetched_sleep_job, linked,  # noqa: F401
                                                     server)
from tests.metrics_scrape import scrape

TOKEN = "manager-metrics-token-0123456789"


@pytest.fixture
def manager(manager_factory):
    return manager_factory(metrics_token=TOKEN)


def test_only_the_metrics_token_may_scrape(manager):
    url = manager.url + "/metrics"
    r = requests.get(url, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(url, headers={"Authorization": "Bearer not-the-token-0123456"}, timeout=10).status_code == 403
    assert requests.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10).status_code == 403, \
        "an admin token is not the metrics token"
    w = Worker(manager.url).register()
    assert w.get("/metrics").status_code == 401, "nor are a worker's credentials"
    assert scrape(manager.url, TOKEN).value("flamenco_manager_upstream_linked") == 0


def test_no_token_configured_means_no_metrics_for_anyone(manager_factory):
    m = manager_factory()
    r = requests.get(m.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "metrics_not_configured"
    with pytest.raises(config_mod.ConfigError, match="at least 16"):
        config_mod.from_dict({"manager": {"metrics_token": "short"}})


def test_a_scrape_shows_tasks_workers_dispatch_and_uploads(manager):
    m = manager
    m.add_tasks(*(task_doc(f"t{i}") for i in range(3)))
    w1 = Worker(m.url).register().sign_on()
    w2 = Worker(m.url).register()
    assert w2.post("/sign-off").status_code == 204
    assert w1.fetch().status_code == 200
    before = scrape(m.url, TOKEN)
    assert before.value("flamenco_manager_dispatch_seconds_count") == 1
    tasks = before.labelled("flamenco_manager_tasks", "status")
    assert (tasks["active"], tasks["queued"], sum(tasks.values())) == (1, 2, 3)
    workers = before.labelled("flamenco_manager_workers", "status")
    assert (workers["awake"], workers["offline"], workers["asleep"]) == (1, 1, 0)

    waiter = Worker(m.url).register().sign_on()
    busy = [Worker(m.url).register().sign_on() for _ in range(2)]
    for b in busy:
        assert b.fetch().status_code == 200, "the queued tasks are taken"
    assert waiter.fetch().status_code == 204, "nothing left: 204s are not dispatches"
    got = {}
    thread = threading.Thread(target=lambda: got.update(r=waiter.fetch(long_poll=10)))
    thread.start()
    time.sleep(0.5)
    m.add_tasks(task_doc("late"))
    thread.join(15)
    assert got["r"].status_code == 200 and got["r"].json()["_id"] == "late"

    data = b"an output" * 1000
    sha = hashlib.sha256(data).hexdigest()
    r = w1.session.put(m.url + f"/files/{sha}", data=data, headers={"X-Flamenco-Upload-Size": str(len(data))},
                       timeout=10)
    assert r.status_code == 201, r.text

    after = scrape(m.url, TOKEN)
    assert after.value("flamenco_manager_dispatch_seconds_count") == 4
    assert after.value("flamenco_manager_dispatch_seconds_sum") >= 0.5, "the long-poll's wait is in it"
    assert after.labelled("flamenco_manager_tasks", "status")["active"] == 4
    assert after.value("flamenco_manager_workers", status="awake") == 4
    assert after.value("flamenco_manager_http_requests_total", kind="worker_batched", code="204") == 1
    assert after.value("flamenco_manager_http_requests_total", kind="worker_batched", code="200") == 4
    assert after.value("flamenco_manager_http_requests_total", kind="registration", code="200") == 5
    assert after.value("flamenco_manager_uploads_total") == 1
    assert after.value("flamenco_manager_file_transfer_bytes_total", hop="from_workers") == len(data)
    assert after.value("flamenco_manager_file_store_bytes") == len(data)
    assert after.value("flamenco_manager_long_polls_waiting") == 0
    assert after.value("flamenco_manager_dispatch_db_requests_total") >= 5


def test_the_upstream_queue_and_link_while_the_server_is_down(linked, server):
    m = linked(metrics_token=TOKEN)
    up = m.core.upstream
    w = announced(m)
    fetched_sleep_job(server, up, "1-3")
    server.stop()
    for _ in range(3):
        complete(w, w.fetch().json()["_id"])
    now = time.time()
    assert up.push_tick(now) == 0
    down = scrape(m.url, TOKEN)
    assert down.value("flamenco_manager_upstream_queue_length") == up.queue_length() == 6
    assert down.value("flamenco_manager_upstream_queue_items", kind="task-update") == 6
    assert down.value("flamenco_manager_upstream_queue_items", kind="log-upload") == 0
    assert down.value("flamenco_manager_upstream_queue_oldest_age_seconds") > 0
    assert down.value("flamenco_manager_upstream_linked") == 1
    assert down.value("flamenco_manager_upstream_healthy") == 0
    assert down.value("flamenco_manager_upstream_consecutive_failures") >= 1

    server.start()
    assert up.push_tick(now + 5) == 6
    back = scrape(m.url, TOKEN)
    assert back.value("flamenco_manager_upstream_queue_length") == 0
    assert back.value("flamenco_manager_upstream_queue_oldest_age_seconds") == 0
    assert back.value("flamenco_manager_upstream_healthy") == 1
    assert back.value("flamenco_manager_upstream_last_success_timestamp_seconds") >= now - 60
