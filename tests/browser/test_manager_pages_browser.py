"""The Manager's own pages for the site admin (issue 13, point 7), in Debian's Chromium, on a real farm:
signing in with the password set by `flamenco-manager set-admin-password`, the overview (link to the
Server, upstream queue, disk, latest image) and the workers with every action, each checked on the
worker through the Manager's admin API and the worker process itself."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
from playwright.sync_api import expect

from tests.browser.browser_helpers import FARM_PASSWORDS, png, row_action as click_action, screenshot, wait_until
from tests.conftest import missing

pytestmark = pytest.mark.browser




def manager_worker(farm, worker_id):
    r = farm.manager.get(f"{farm.manager_url}/api/admin/workers/{worker_id}")
    return r.json() if r.status_code == 200 else None


def by_nickname(farm) -> list[dict]:
    return sorted(farm.manager.get(farm.manager_url + "/api/admin/workers").json()["workers"],
                  key=lambda w: w["nickname"])


@pytest.fixture
def manager_page(admin_farm, browser):
    context = browser.new_context(base_url=admin_farm.manager_url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()
    assert not errors, errors


def sign_in(page, tmp_path, start="/status?refresh_ms=500"):
    page.goto(start)
    page.wait_for_url("**/login?next=**")
    page.fill("#password", "not the password")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_have_text("Wrong password.")
    screenshot(page, tmp_path, "manager-login")
    page.fill("#password", FARM_PASSWORDS["manager"])
    page.click("#sign-in")
    page.wait_for_url(lambda url: "/login" not in url)


def test_the_managers_overview(admin_farm, manager_page, tmp_path):
    farm, page = admin_farm, manager_page
    sign_in(page, tmp_path)
    expect(page.locator("#link-health")).to_have_attribute("data-status", "healthy")
    expect(page.locator("#tile-workers")).to_have_text("2")
    expect(page.locator("#queue-length")).to_have_text("0")
    expect(page.locator("#storage-spool")).to_contain_text("in")
    if shutil.which("ffmpeg") is None:
        missing("ffmpeg (the Manager makes its thumbnails with it)")
    (farm.watch_dir / "frame-0001.png").write_bytes(png(96, 54, (40, 120, 220)))
    image = page.locator("#latest-image-img")
    expect(image).to_be_visible(timeout=30_000)
    # Polled by Playwright: wait_for_function("...") evals the string in the page, which its CSP forbids.
    expect(page.locator("#latest-image-img")).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") == 96, "the browser decoded the Manager's thumbnail"
    screenshot(page, tmp_path, "manager-status")


def row_action(page, worker_id, key):
    row = page.locator(f'#workers-body tr[data-worker="{worker_id}"]')
    click_action(row, key)
    return row


def test_every_worker_action_on_the_managers_pages(admin_farm, manager_page, tmp_path):
    farm, page = admin_farm, manager_page
    sign_in(page, tmp_path, "/workers?refresh_ms=500")
    w1, w2 = (w["_id"] for w in by_nickname(farm))
    expect(page.locator("#workers-body tr")).to_have_count(2)

    row = row_action(page, w1, "sleep")
    expect(row.locator(".badge")).to_have_attribute("data-status", "asleep")
    assert manager_worker(farm, w1)["status"] == "asleep", "the worker acknowledged it"
    row_action(page, w1, "wake")
    expect(row.locator(".badge")).to_have_attribute("data-status", "awake")

    row_action(page, w1, "set-tags")
    page.fill("#tags-input", "gpu, studio-b")
    page.click("#tags-save")
    expect(row.locator(".worker-tags")).to_have_text("gpu, studio-b")
    assert manager_worker(farm, w1)["tags"] == ["gpu", "studio-b"]

    row_action(page, w1, "sleep-schedule")
    page.check("#schedule-active")
    page.check('#schedule-days input[value="mo"]')
    page.fill("#schedule-start", "03:00")
    page.fill("#schedule-end", "04:00")
    page.click("#schedule-save")
    expect(row).to_contain_text("asleep 03:00–04:00 (mo)")
    assert manager_worker(farm, w1)["sleep_schedule"]["days_of_week"] == "mo"

    failing = farm.server.post(farm.url + "/api/jobs", json={"name": "fails again", "type": "exec-command",
                                                             "project": "default", "settings": {"cmd": "false"}})
    assert failing.status_code == 201
    blocked = wait_until(lambda: [b["worker"] for b in farm.manager.get(farm.manager_url + "/api/admin/blocklist")
                                  .json()["blocklist"] if b["job"] == failing.json()["id"]], 60, "none blocklisted")
    victim = page.locator(f'#workers-body tr[data-worker="{blocked[0]}"]')
    expect(victim).to_contain_text("1 entry")
    row_action(page, blocked[0], "clear-blocklist")
    expect(victim.locator("td").nth(7)).to_have_text("-")
    assert manager_worker(farm, blocked[0])["blocklist"] == []

    # What a worker runs shows by job and task name.
    busy = farm.server.post(farm.url + "/api/jobs", json={"name": "runs now", "type": "sleep", "project": "default",
                                                          "settings": {"frames": "1", "chunk_size": 1,
                                                                       "time_in_seconds": 30}}).json()
    runner = wait_until(lambda: next((w for w in by_nickname(farm) if w.get("running_tasks")), None), 60,
                        "no worker ran the sleep task")
    task = runner["running_tasks"][0]
    cell = page.locator(f'#workers-body tr[data-worker="{runner["_id"]}"] .running-tasks [data-task="{task["id"]}"]')
    expect(cell).to_have_text(f"{busy['id'][:8]} › {task['name']}")
    screenshot(page, tmp_path, "manager-workers")
    farm.server.post(f"{farm.url}/api/jobs/{busy['id']}/status", json={"status": "cancel"})

    # A worker that stops answering times out; the admin marks it offline.
    frozen = farm.farm.procs["worker-2"]
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        row2 = page.locator(f'#workers-body tr[data-worker="{w2}"]')
        expect(row2.locator(".badge")).to_have_attribute("data-status", "timeout", timeout=30_000)
        row_action(page, w2, "ack-timeout")
        expect(row2.locator(".badge")).to_have_attribute("data-status", "offline")
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    expect(row2.locator(".badge")).to_have_attribute("data-status", "awake", timeout=30_000)

    row_action(page, w2, "shutdown-lazy")
    expect(row2.locator(".badge")).to_have_attribute("data-status", "offline", timeout=30_000)
    assert frozen.wait(30) == 0, "the worker process stopped"
    row_action(page, w2, "forget")
    expect(row2).to_have_count(0)
    assert manager_worker(farm, w2) is None

    page.click("#sign-out")
    page.wait_for_url("**/login")
    page.goto("/workers")
    page.wait_for_url("**/login?next=/workers")
