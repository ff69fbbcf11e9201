"""deploy/prometheus/: the example alert rules pass `promtool check rules` and their unit tests
(prometheus_alerts_test.yml), and a real Prometheus, configured like prometheus.yml.example (a bearer
token from a credentials file), scrapes a Server and a Manager linked to it, finds every metric the
alert rules use, and evaluates every rule without an error."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from backend.db import open_database
from backend.server import admin
from backend.server.app import context_of, make_app
from backend.server.config import ServerConfig
from backend.server.housekeeping import Housekeeping
from shared.serving import ServiceThread
from tests.conftest import require_executable
from tests.integration.deploy.deploy_helpers import DEPLOY, Proc, free_port, wait_until
from tests.integration.manager.conftest import manager_factory  # noqa: F401 (a fixture)

ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = Path(__file__).with_name("prometheus_alerts_test.yml")
SERVER_TOKEN = "server-metrics-token-for-prometheus"
MANAGER_TOKEN = "manager-metrics-token-for-prometheus"


def alert_metric_names() -> set[str]:
    """The metric names the alert rules' expressions use (Prometheus's own `up` aside)."""
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = {n for r in rules for n in re.findall(r"\b(flamenco_[a-z0-9_]+)", r["expr"])}
    assert len(rules) >= 10 and names
    return names


def test_the_alert_rules_are_valid_and_pass_their_unit_tests():
    promtool = require_executable("promtool")
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", str(ALERT_TESTS)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout


@pytest.fixture
def farm(tmp_path, manager_factory):
    """A Server and a Manager linked to it, both with a metrics token; the Manager has announced itself,
    pushed (its queue length) and the Server has run housekeeping once."""
    db = open_database(f"sqlite:///{tmp_path}/server.sqlite")
    cfg = ServerConfig.from_dict({"metrics_token": SERVER_TOKEN}, data_dir=tmp_path / "server")
    app = make_app(cfg, db)
    with db.connection_context():
        admin.create_project(db, "film")
        manager, token = admin.create_manager(db, "studio-a")
        admin.link_manager(db, manager.id, "film")
    with ServiceThread(app, threads=8) as server:
        m = manager_factory(metrics_token=MANAGER_TOKEN, upstream={
            "server_url": server.url, "manager_id": manager.id, "token": token})
        assert m.core.upstream.notify_tick() is True
        m.core.upstream.push_tick()
        with db.connection_context():
            Housekeeping(context_of(app)).tick(context_of(app).clock.now())
        yield server, m
    db.close()


def test_a_real_prometheus_scrapes_both_services_and_evaluates_every_rule(farm, tmp_path):
    prometheus = require_executable("prometheus")
    server, manager = farm
    (tmp_path / "server.token").write_text(SERVER_TOKEN + "\n")
    (tmp_path / "manager.token").write_text(MANAGER_TOKEN + "\n")
    example = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml.example").read_text())
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(ALERTS)],
              "scrape_configs": example["scrape_configs"]}
    for job, url, token in zip(config["scrape_configs"], (server.url, manager.url), ("server", "manager")):
        job["scheme"] = "http"  # the services themselves; TLS at nginx is deploy/nginx's test
        job["authorization"]["credentials_file"] = str(tmp_path / f"{token}.token")
        job["static_configs"] = [{"targets": [url.removeprefix("http://")]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    proc = Proc("prometheus", [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                tmp_path)
    try:
        def targets_up():
            active = requests.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in active}
            return health if health == {"flamenco-server": ("up", ""), "flamenco-manager": ("up", "")} else None

        wait_until("Prometheus scraping both services", targets_up, timeout=60, procs=[proc])

        def query(expr: str) -> list:
            return requests.get(f"{api}/query", params={"query": expr}, timeout=5).json()["data"]["result"]

        absent = [n for n in sorted(alert_metric_names()) if not query(f'count({{__name__="{n}"}})')]
        assert absent == [], "the alert rules use metrics the services do not export"
        (queue,) = query('flamenco_server_manager_queue_length{manager="studio-a"}')
        assert queue["value"][1] == "0", "the Manager's queue as it reported it"
        (linked,) = query("flamenco_manager_upstream_healthy")
        assert linked["value"][1] == "1"

        def rules_evaluated():
            groups = requests.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            evaluated = rules and all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
            return rules if evaluated else None

        rules = wait_until("every rule evaluated", rules_evaluated, timeout=30, procs=[proc])
        assert len(rules) == len([r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]])
        assert [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
        assert [r["name"] for r in rules if r["state"] != "inactive" and "DiskLow" not in r["name"]] == [], \
            "a healthy farm raises no alert (the disk alerts depend on this machine's disk)"
    finally:
        proc.stop()
