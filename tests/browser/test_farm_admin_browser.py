"""The admin runs the farm from the Server's pages (issue 13), in Debian's Chromium, against a real farm:
Server, Manager and two workers, each its own process. Every action is clicked and its effect checked
where it happens: on the worker (through the Manager's admin API and the worker's own status), on the
task, on the job. Screenshots of each page go to the test's tmp_path (and to $FLAMENCO_SCREENSHOT_DIR).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import zoneinfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.browser_helpers import row_action, screenshot, sign_in_as, wait_until

pytestmark = pytest.mark.browser

FAST = "refresh_ms=500"


def accept_dialogs(page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def submit(farm, name, settings, job_type="sleep", client=None) -> dict:
    r = (client or farm.server).post(farm.url + "/api/jobs", json={"name": name, "type": job_type,
                                                                   "project": "default", "settings": settings})
    assert r.status_code == 201, r.text
    return r.json()


def job(farm, job_id) -> dict:
    return farm.server.get(f"{farm.url}/api/jobs/{job_id}").json()


def tasks(farm, job_id) -> list[dict]:
    return farm.server.get(f"{farm.url}/api/jobs/{job_id}/tasks").json()["tasks"]


def manager_worker(farm, worker_id) -> dict | None:
    r = farm.manager.get(f"{farm.manager_url}/api/admin/workers/{worker_id}")
    return r.json() if r.status_code == 200 else None


def server_workers(farm) -> list[dict]:
    return sorted(farm.server.get(farm.url + "/api/workers").json()["workers"], key=lambda w: w["nickname"])


def test_worker_actions_from_the_servers_workers_page(admin_farm, farm_context, tmp_path):
    farm = admin_farm
    page = farm_context.new_page()
    accept_dialogs(page)
    sign_in_as(page, "admin", f"/workers?{FAST}")
    expect(page.locator("#workers-body tr")).to_have_count(2)
    w1, w2 = (w["id"] for w in server_workers(farm))
    row1 = page.locator(f'#workers-body tr[data-worker="{w1}"]')
    row2 = page.locator(f'#workers-body tr[data-worker="{w2}"]')

    # The page says "requested" until the Manager confirms: hold the Manager still to see it.
    manager_pid = farm.farm.procs["manager"].pid
    os.kill(manager_pid, signal.SIGSTOP)
    try:
        row_action(row1, "set-tags")
        page.fill("#tags-input", "gpu, big-memory")
        page.click("#tags-save")
        pending = row1.locator('[data-action="set-tags"]')
        expect(pending).to_have_attribute("data-action-status", "requested")
        expect(pending).to_contain_text("requested")
        screenshot(page, tmp_path, "server-workers-requested")
    finally:
        os.kill(manager_pid, signal.SIGCONT)
    expect(pending).to_have_attribute("data-action-status", "done")
    expect(row1.locator(".worker-tags")).to_have_text("big-memory, gpu")
    assert manager_worker(farm, w1)["tags"] == ["big-memory", "gpu"], "the Manager applied it"

    row_action(row1, "sleep")
    expect(row1.locator(".badge")).to_have_attribute("data-status", "asleep")
    assert manager_worker(farm, w1)["status"] == "asleep", "the worker acknowledged it"
    row_action(row1, "wake")
    expect(row1.locator(".badge")).to_have_attribute("data-status", "awake")
    assert manager_worker(farm, w1)["status"] == "awake"

    row_action(row2, "sleep-schedule")
    page.check("#schedule-active")
    for day in ("sa", "su"):
        page.check(f'#schedule-days input[value="{day}"]')
    page.fill("#schedule-start", "01:00")
    page.fill("#schedule-end", "02:00")
    page.click("#schedule-save")
    expect(row2.locator('[data-action="sleep-schedule"]')).to_have_attribute("data-action-status", "done")
    schedule = manager_worker(farm, w2)["sleep_schedule"]
    assert (schedule["schedule_active"], schedule["days_of_week"], schedule["time_start"], schedule["time_end"]) == \
        (True, "sa su", "01:00", "02:00")

    # A command that fails gets its worker blocklisted for the job (threshold 1 on this farm).
    failing = submit(farm, "always fails", {"cmd": "false"}, job_type="exec-command")
    blocked = wait_until(lambda: [b for b in farm.manager.get(farm.manager_url + "/api/admin/blocklist").json()
                                  ["blocklist"] if b["job"] == failing["id"]], 60, "nobody was blocklisted")
    victim = blocked[0]["worker"]
    victim_row = page.locator(f'#workers-body tr[data-worker="{victim}"]')
    row_action(victim_row, "clear-blocklist")
    expect(victim_row.locator('[data-action="clear-blocklist"]')).to_have_attribute("data-action-status", "done")
    assert manager_worker(farm, victim)["blocklist"] == []
    screenshot(page, tmp_path, "server-workers")

    # Shut one down after its task: the worker process exits; then forget it. (Nicknames end in -1, -2.)
    worker_proc = farm.farm.procs["worker-2"]
    row_action(row2, "shutdown-lazy")
    expect(row2.locator(".badge")).to_have_attribute("data-status", "offline", timeout=30_000)
    assert worker_proc.wait(30) == 0, "the worker process stopped"
    row_action(row2, "forget")
    expect(row2).to_have_count(0)
    assert manager_worker(farm, w2) is None
    # Bring the farm back to two workers for the other tests: it registers anew.
    farm.farm.start_worker(1)
    wait_until(lambda: sum(w["status"] == "awake" for w in server_workers(farm)) == 2, 60, "no second worker")


def test_task_actions_the_task_page_and_every_attempt(admin_farm, farm_context, tmp_path):
    farm = admin_farm
    # Tasks long enough that a cancel reaches the worker (within a second here) before the task ends.
    j = submit(farm, "forest shot 010", {"frames": "1-6", "chunk_size": 1, "time_in_seconds": 6})
    page = farm_context.new_page()
    accept_dialogs(page)
    sign_in_as(page, "admin", f"{j['web_url']}?{FAST}")
    expect(page.locator("#job-status")).to_have_text("running")

    # Two waiting tasks canceled at once, from the selection.
    waiting = [t for t in tasks(farm, j["id"]) if t["status"] in ("queued", "claimed-by-manager")][-2:]
    for t in waiting:
        page.check(f'#tasks-body input.select-task[data-task="{t["id"]}"]')
    expect(page.locator("#task-bulk-count")).to_have_text("2 selected")
    page.click('[data-task-bulk="cancel"]')
    for t in waiting:
        expect(page.locator(f'#tasks-body tr[data-task="{t["id"]}"] .badge')).to_have_attribute(
            "data-status", "canceled")
    assert {t["status"] for t in tasks(farm, j["id"]) if t["id"] in {w["id"] for w in waiting}} == {"canceled"}

    # A running task canceled from its row: its worker stops it.
    running = wait_until(lambda: max((t for t in tasks(farm, j["id"]) if t["status"] == "active"),
                                     key=lambda t: t["started"], default=None), 30, "no task ran")
    row = page.locator(f'#tasks-body tr[data-task="{running["id"]}"]')
    row.locator("td").nth(1).click()
    page.locator(f'tr[data-detail="{running["id"]}"] [data-task-action="cancel"]').click()
    expect(row.locator(".badge")).to_have_attribute("data-status", "canceled", timeout=30_000)
    stopped = farm.server.get(f"{farm.url}/api/tasks/{running['id']}").json()
    assert stopped["runs"][-1]["status"] == "canceled" and stopped["runs"][-1]["finished"]
    assert stopped["canceled_by"] == "user admin"

    # Requeued, it runs again to the end: two attempts, two bars on the timeline.
    page.locator(f'tr[data-detail="{running["id"]}"] [data-task-action="requeue"]').click()
    expect(row.locator(".badge")).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(page.locator(f'#timeline rect.run[data-task="{running["id"]}"]')).to_have_count(2)

    page.select_option("#task-filter", "canceled")
    expect(page.locator("#tasks-body tr.task")).to_have_count(2)
    page.select_option("#task-filter", "")

    page.fill("#priority-input", "70")
    page.click("#priority-set")
    expect(page.locator("#job-priority")).to_have_text("70")
    assert job(farm, j["id"])["priority"] == 70
    expect(page.locator("#log-body")).to_contain_text("priority 50 -> 70")
    screenshot(page, tmp_path, "server-job")

    # The task page: attempts, commands, and the full log fetched from its Manager.
    page.goto(f"/tasks/{running['id']}?{FAST}")
    expect(page.locator("#runs-body tr")).to_have_count(2)
    expect(page.locator("#runs-body tr").nth(0).locator(".badge")).to_have_attribute("data-status", "canceled")
    expect(page.locator("#runs-body tr").nth(1).locator(".badge")).to_have_attribute("data-status", "completed")
    expect(page.locator("#task-commands li").first).to_contain_text("sleep")
    page.click("#log-fetch")
    expect(page.locator("#log-download")).to_be_visible(timeout=30_000)
    expect(page.locator("#task-log")).to_contain_text("sleep")
    # Each attempt's whole log, the canceled one first.
    expect(page.locator("#task-log")).to_contain_text("===== run 1 of 2 (an earlier run) =====")
    expect(page.locator("#task-log")).to_contain_text("===== run 2 of 2 (the latest) =====")
    download = page.request.get(f"/api/tasks/{running['id']}/log?download=1")
    assert download.ok and "attachment" in download.headers["content-disposition"]
    assert download.text() == page.locator("#task-log").text_content()
    screenshot(page, tmp_path, "server-task")
    farm.server.post(f"{farm.url}/api/jobs/{j['id']}/status", json={"status": "cancel"})


def test_jobs_list_bulk_search_sort_delete_and_archive(admin_farm, farm_context, tmp_path):
    farm = admin_farm
    quick = {"frames": "1", "chunk_size": 1, "time_in_seconds": 0}
    a = submit(farm, "desert pan", quick)
    b = submit(farm, "desert wide", quick)
    long = submit(farm, "ocean storm", {"frames": "1-30", "chunk_size": 1, "time_in_seconds": 2})
    for x in (a, b):
        wait_until(lambda x=x: job(farm, x["id"])["status"] == "completed", 60, "a quick job did not finish")
    page = farm_context.new_page()
    accept_dialogs(page)
    sign_in_as(page, "admin", f"/?{FAST}")

    page.fill("#filter-q", "desert")
    expect(page.locator("#jobs-body tr")).to_have_count(2)
    assert "q=desert" in page.url
    page.click('button.sort[data-sort="name"]')
    expect(page.locator("#jobs-body .job-link")).to_have_text(["desert pan", "desert wide"])
    page.click('button.sort[data-sort="name"]')
    expect(page.locator("#jobs-body .job-link")).to_have_text(["desert wide", "desert pan"])
    page.fill("#filter-q", "")
    expect(page.locator(f'#jobs-body tr[data-job="{long["id"]}"]')).to_have_count(1)

    for x in (a, b):
        page.check(f'#jobs-body input.select-job[data-job="{x["id"]}"]')
    page.fill("#bulk-priority", "90")
    page.click('[data-bulk="priority"]')
    expect(page.locator(f'#jobs-body tr[data-job="{a["id"]}"] td.num')).to_have_text("90")
    assert job(farm, a["id"])["priority"] == job(farm, b["id"])["priority"] == 90

    page.click("#bulk-clear")
    page.check(f'#jobs-body input.select-job[data-job="{long["id"]}"]')
    page.click('[data-bulk="cancel"]')
    expect(page.locator(f'#jobs-body tr[data-job="{long["id"]}"] .badge')).to_have_attribute(
        "data-status", "canceled", timeout=30_000)
    page.click('[data-bulk="delete"]')
    expect(page.locator(f'#jobs-body tr[data-job="{long["id"]}"]')).to_have_count(0)
    assert farm.server.get(f"{farm.url}/api/jobs/{long['id']}").status_code == 404
    screenshot(page, tmp_path, "server-jobs")

    page.check(f'#jobs-body input.select-job[data-job="{a["id"]}"]')
    page.click('[data-bulk="archive"]')
    expect(page.locator(f'#jobs-body tr[data-job="{a["id"]}"]')).to_have_count(0)
    page.click("nav >> text=Archive")
    row = page.locator(f'#archive-body tr[data-archive="{a["id"]}"]')
    expect(row).to_contain_text("desert pan")
    record = page.request.get(f"/api/archives/{a['id']}")
    assert record.ok and record.headers["content-type"] == "application/gzip"
    screenshot(page, tmp_path, "server-archive")


def test_live_updates_within_a_second_and_no_requests_while_nothing_changes(admin_farm, farm_context, tmp_path):
    farm = admin_farm
    j = submit(farm, "still life", {"frames": "1", "chunk_size": 1, "time_in_seconds": 0})
    wait_until(lambda: job(farm, j["id"])["status"] == "completed", 60, "the job did not finish")
    page = farm_context.new_page()
    sign_in_as(page, "admin", j["web_url"])
    expect(page.locator("#refresh-state")).to_have_attribute("data-mode", "live")
    expect(page.locator("#refresh-state")).to_contain_text("live, updated")  # the stream's first refresh is done
    seen: list[str] = []
    page.on("request", lambda req: seen.append(req.url) if "/api/" in req.url else None)
    page.wait_for_timeout(4000)
    assert seen == [], f"requests while nothing changed: {seen}"

    r = farm.server.post(f"{farm.url}/api/jobs/{j['id']}/priority", json={"priority": 33})
    assert r.ok
    changed = time.monotonic()
    expect(page.locator("#job-priority")).to_have_text("33", timeout=1500)
    assert time.monotonic() - changed < 1.0, "a change shows within a second"


def test_behind_a_buffering_proxy_the_pages_poll(admin_farm, farm_context, buffering_proxy):
    farm = admin_farm
    proxy = buffering_proxy(farm.url)
    j = submit(farm, "through a proxy", {"frames": "1", "chunk_size": 1, "time_in_seconds": 0})
    page = farm_context.new_page()
    page.goto(proxy + j["web_url"] + "?refresh_ms=700")
    page.fill("#username", "admin")
    page.fill("#password", "farm-admin-pw")
    page.click("#sign-in")
    expect(page.locator("#refresh-state")).to_have_attribute("data-mode", "poll", timeout=10_000)
    farm.server.post(f"{farm.url}/api/jobs/{j['id']}/priority", json={"priority": 44})
    expect(page.locator("#job-priority")).to_have_text("44", timeout=5000)


def test_the_farm_overview_and_the_managers(admin_farm, farm_context, tmp_path):
    farm = admin_farm
    j = submit(farm, "overview job", {"frames": "1-3", "chunk_size": 1, "time_in_seconds": 0})
    wait_until(lambda: job(farm, j["id"])["status"] == "completed", 60, "the job did not finish")
    busy = submit(farm, "long render", {"frames": "1-20", "chunk_size": 1, "time_in_seconds": 3})
    page = farm_context.new_page()
    sign_in_as(page, "admin", f"/farm?{FAST}")
    expect(page.locator("#farm-chart rect.chart-bar")).to_have_count(60)
    done = sum(int(x) for x in page.locator("#farm-chart rect.chart-bar").evaluate_all(
        "bars => bars.map(b => b.dataset.count)"))
    assert done >= 3
    expect(page.locator(f'#farm-jobs-body tr[data-job="{busy["id"]}"]')).to_have_count(1)
    expect(page.locator("#farm-managers .manager-card .badge")).to_have_attribute("data-status", "online")
    expect(page.locator("#farm-tiles .tile").first).to_contain_text("workers")
    screenshot(page, tmp_path, "server-farm")
    page.click("nav >> text=Managers")
    expect(page.locator("#managers-body tr td.num")).not_to_have_text("-")
    screenshot(page, tmp_path, "server-managers")
    farm.server.post(f"{farm.url}/api/jobs/{busy['id']}/status", json={"status": "cancel"})


def test_humane_words_names_and_the_viewers_time_zone(admin_farm, browser, tmp_path):
    farm = admin_farm
    j = submit(farm, "tokyo", {"frames": "1-4", "chunk_size": 1, "time_in_seconds": 2})
    context = browser.new_context(base_url=farm.url, timezone_id="Asia/Tokyo", viewport={"width": 1360, "height": 900})
    try:
        page = context.new_page()
        sign_in_as(page, "admin", f"{j['web_url']}?{FAST}")
        created = dt.datetime.fromisoformat(j["created"].replace("Z", "+00:00")).astimezone(
            zoneinfo.ZoneInfo("Asia/Tokyo"))
        shown = page.locator("dl.meta time").first.text_content()
        assert shown.endswith(created.strftime("%H:%M:%S")) or shown.endswith(created.strftime("%H:%M")), shown
        expect(page.locator("footer [data-time-zone]")).to_have_text("Asia/Tokyo")
        expect(page.locator("#job-status")).to_have_text("running", timeout=30_000)
        page.goto(f"/workers?{FAST}")
        busy = page.locator("#workers-body a", has_text="tokyo ›").first
        expect(busy).to_be_visible(timeout=30_000)  # the job's and the task's names, not their ids
    finally:
        context.close()
        farm.server.post(f"{farm.url}/api/jobs/{j['id']}/status", json={"status": "cancel"})


def test_an_artist_reaches_no_admin_action(admin_farm, farm_context):
    farm = admin_farm
    page = farm_context.new_page()
    sign_in_as(page, "ann", f"/?{FAST}")
    expect(page.locator("nav a")).to_have_text(["Jobs", "Archive"])
    for path in ("/workers", "/farm", "/managers"):
        page.goto(path)
        expect(page.locator("h1")).to_have_text("Admins only")
    worker = server_workers(farm)[0]
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    calls = [("POST", f"/api/workers/{worker['manager']}/{worker['id']}/actions", {"action": "shutdown"}),
             ("GET", "/api/farm", None), ("POST", "/api/jobs/actions", {"action": "archive", "jobs": ["x"]})]
    for method, path, body in calls:
        status = page.evaluate("""async ([method, path, body, csrf]) => (await fetch(path, {method,
            headers: {"Content-Type": "application/json", "X-Flamenco-CSRF": csrf},
            body: body ? JSON.stringify(body) : undefined})).status""", [method, path, body, csrf])
        assert status == 403, (method, path, status)
    assert manager_worker(farm, worker["id"]).get("status_requested") is None, "nothing reached the worker"
    # The Manager's own admin API and pages know nothing of the Server's users.
    token = requests.post(farm.url + "/api/auth/login", json={"username": "ann", "password": "farm-ann-pw"}).json()
    r = requests.get(farm.manager_url + "/api/admin/workers", headers={"Authorization": f"Bearer {token['token']}"})
    assert r.status_code == 403
    page.goto(farm.manager_url + "/workers")
    page.wait_for_url("**/login?next=/workers")
