"""The job page while a real farm (Server, Manager and two workers, each its own process) runs a sleep job."""

from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import expect

from flamenco_cli.farm import Farm

pytestmark = pytest.mark.browser

PASSWORD = "farm-admin-pw"
FAST_TIMEOUTS = """
[timeouts]
worker_timeout = 6.0
task_timeout = 60.0
check_interval = 1.0
"""


@pytest.fixture
def real_farm(browser, tmp_path):
    farm = Farm(tmp_path / "farm", port=0, workers=2, manager_extra_config=FAST_TIMEOUTS)
    try:
        info = farm.start()
        farm._run_server_cli("set-password", "admin", "--password", PASSWORD)
        info["admin_token"] = farm._run_server_cli("new-token", "admin")["token"]  # a password change ends tokens
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {info['admin_token']}"
        deadline = time.monotonic() + 60
        while sum(w["status"] == "awake" for w in api.get(info["server_url"] + "/api/workers").json()["workers"]) < 2:
            assert time.monotonic() < deadline, "the workers did not come up"
            time.sleep(0.2)
        yield farm, info, api
    finally:
        farm.stop(timeout=10)


def test_watch_a_real_farm_run_a_job_and_cancel_it(browser, real_farm, tmp_path):
    farm, info, api = real_farm
    base = info["server_url"]
    r = api.post(base + "/api/jobs", json={"name": "sleepy farm job", "type": "sleep", "project": "default",
                                           "settings": {"frames": "1-12", "chunk_size": 1, "time_in_seconds": 1.0}})
    assert r.status_code == 201, r.text
    job = r.json()

    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        page.goto(job["web_url"] + "?refresh_ms=500")
        page.wait_for_url("**/login?next=**")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(f"**{job['web_url']}?refresh_ms=500")

        expect(page.locator("#job-status")).to_have_text("active")
        expect(page.locator("#tasks-body .badge", has_text="completed").first).to_be_visible()
        runs = page.locator("#timeline svg rect.run")
        expect(runs.first).to_be_visible()
        progress = page.locator("#job-progress")
        first = float(progress.get_attribute("aria-valuenow"))
        deadline = time.monotonic() + 20
        while float(progress.get_attribute("aria-valuenow")) <= first:
            assert time.monotonic() < deadline, "the progress bar did not move"
            page.wait_for_timeout(200)
        lanes = page.locator("#timeline svg text.lane-label")
        expect(lanes).to_have_count(2)  # two workers, one lane each
        page.screenshot(path=str(tmp_path / "farm-job.png"), full_page=True)

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#action-cancel")
        # the Manager learns of it at its next sync, its workers at their next check: seconds, not at once
        expect(page.locator("#job-status")).to_have_text("canceled", timeout=30_000)
        expect(page.locator("#job-actions button")).to_have_text(["Requeue"])
        assert float(progress.get_attribute("aria-valuenow")) < 100
        done = api.get(f"{base}/api/jobs/{job['id']}").json()
        assert done["status"] == "canceled" and done["task_counts"].get("completed", 0) < 12
        page.screenshot(path=str(tmp_path / "farm-job-canceled.png"), full_page=True)
    finally:
        context.close()
