"""The web pages in a real browser: sign in, follow a job as a Manager reports on it, cancel it."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest
from playwright.sync_api import expect

from shared.protocol import SHA256_HEADER
from tests.browser.browser_helpers import PASSWORDS, png, screenshot, sign_in

pytestmark = pytest.mark.browser

FAST = "refresh_ms=500"
EVIL = '<img src=x onerror="window.pwned=1">shot 010 & "co"'
_ids = itertools.count()


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def report(browser_studio, *updates) -> dict:
    """A task-update-batch from the Manager: (task id, status or None, progress%)."""
    docs = []
    for task_id, status, progress in updates:
        doc = {"_id": f"u{next(_ids)}", "task_id": task_id, "received_on_manager": now_iso(), "worker": "node-1",
               "task_progress_percentage": progress, "activity": f"frame {progress}%"}
        if status:
            doc["task_status"] = status
        docs.append(doc)
    r = browser_studio.manager.post(f"/api/managers/{browser_studio.manager_id}/task-update-batch",
                                    json={"updates": docs})
    assert r.status_code == 200, r.text
    return r.json()


def claim(browser_studio, job_id: str) -> list[str]:
    """The Manager fetches its depsgraph; the ids of the job's tasks in it."""
    r = browser_studio.manager.get(f"/api/managers/{browser_studio.manager_id}/depsgraph")
    assert r.status_code == 200, r.text
    return sorted(t["_id"] for t in r.json()["depsgraph"] if t["job"] == job_id)




def test_follow_a_job_and_cancel_it(page, browser_studio, tmp_path):
    job = browser_studio.ann.post("/api/jobs", json={"name": EVIL, "type": "sleep", "project": "film",
                                                     "settings": {"frames": "1-4", "chunk_size": 1}}).json()
    browser_studio.bob.post("/api/jobs", json={"name": "bob's ad", "type": "sleep", "project": "ads",
                                               "settings": {"frames": "1"}})

    sign_in(page, "ann", f"/?{FAST}")
    rows = page.locator("#jobs-body tr")
    expect(rows).to_have_count(1)  # bob's job is in another project
    link = page.get_by_role("link", name=EVIL)
    expect(link).to_be_visible()
    expect(rows.first.locator(".badge")).to_have_text("waiting")  # queued, in words a person understands
    expect(rows.first.locator(".badge")).to_have_attribute("data-status", "queued")

    link.click()
    page.wait_for_url(f"**/jobs/{job['id']}")
    page.goto(f"/jobs/{job['id']}?{FAST}")
    expect(page.locator("#job-name")).to_have_text(EVIL)
    expect(page.locator("#job-status")).to_have_text("waiting")
    expect(page.locator("#tasks-body tr.task")).to_have_count(4)
    expect(page.locator("#tasks-body tr.task .badge").first).to_have_text("waiting")
    expect(page.locator("#frame-shared")).to_contain_text("shared storage")
    expect(page.locator("#timeline-empty")).to_be_visible()
    expect(page.locator("#job-actions button")).to_have_text(["Pause", "Cancel"])
    assert page.evaluate("window.pwned") is None, "the job name must be text, not HTML"

    tasks = claim(browser_studio, job['id'])
    report(browser_studio, (tasks[0], "active", 50))
    progress = page.locator("#job-progress")
    expect(progress).to_have_attribute("aria-valuenow", "12.5")
    expect(page.locator("#job-status")).to_have_text("running")
    expect(page.locator("#timeline svg rect.run")).to_have_count(1)

    report(browser_studio, (tasks[0], "completed", 100), (tasks[1], "active", 40))
    expect(progress).to_have_attribute("aria-valuenow", "35")
    expect(page.locator("#timeline svg rect.run")).to_have_count(2)
    expect(page.locator("#timeline svg rect.run.status-completed")).to_have_count(1)
    first = page.locator(f'#tasks-body tr[data-task="{tasks[0]}"]')
    expect(first.locator(".badge")).to_have_text("completed")
    expect(page.locator(f'#tasks-body tr[data-task="{tasks[2]}"] .badge')).to_have_text("waiting at its Manager")
    expect(page.locator(f'#tasks-body tr[data-task="{tasks[1]}"] td.activity')).to_have_text("frame 40%")

    first.click()  # the task's log tail opens below it
    expect(page.locator(f'#tasks-body tr[data-detail="{tasks[0]}"] pre')).to_contain_text("no log lines yet")
    page.screenshot(path=str(tmp_path / "job-active.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#action-cancel")
    expect(page.locator("#job-status")).to_have_text("canceling")
    expect(page.locator("#job-actions button")).to_have_count(0)
    answer = report(browser_studio)
    assert sorted(answer["cancel_task_ids"]) == sorted(tasks[1:]), "the running and the claimed tasks"
    report(browser_studio, *[(t, "canceled", 0) for t in tasks[1:]])
    expect(page.locator("#job-status")).to_have_text("canceled")
    expect(page.locator("#job-actions button")).to_have_text(["Requeue", "Delete"])
    expect(page.locator("#log-body tr").first).to_contain_text("canceled")
    expect(page.locator("#log-body")).to_contain_text("user ann")
    page.screenshot(path=str(tmp_path / "job-canceled.png"), full_page=True)

    page.goto(f"/?{FAST}")
    expect(page.locator("#jobs-body tr .badge")).to_have_text(["canceled"])
    page.screenshot(path=str(tmp_path / "jobs.png"), full_page=True)
    page.select_option("#filter-status", "active")
    expect(page.locator("#jobs-empty")).to_have_text("No jobs match this filter.")
    assert "status=active" in page.url
    page.select_option("#filter-status", "canceled")
    expect(page.locator("#jobs-body tr")).to_have_count(1)


def test_latest_frame_of_an_upload_job(page, browser_studio, tmp_path):
    blend = b"BLENDER-v300 not really a blend"
    sha = hashlib.sha256(blend).hexdigest()
    assert browser_studio.ann.put(f"/api/files/{sha}", data=blend).status_code in (200, 201)
    job = browser_studio.ann.post("/api/jobs", json={
        "name": "upload shot", "type": "blender-render", "project": "film",
        "files": {"scene.blend": {"sha256": sha, "size": len(blend)}},
        "settings": {"filepath": "scene.blend", "frames": "1-2", "render_output": "frames/######",
                     "format": "PNG"}}).json()
    assert job["files_mode"] == "upload"
    sign_in(page, "ann", f"/jobs/{job['id']}?{FAST}")
    expect(page.locator("#frame-none")).to_have_text("No frames yet.")

    tasks = claim(browser_studio, job['id'])
    report(browser_studio, (tasks[0], "active", 0))
    for name, colour in (("frames/000001.png", (200, 40, 40)), ("frames/000002.png", (40, 160, 60))):
        data = png(64, 36, colour)
        path = f"/api/managers/{browser_studio.manager_id}/jobs/{job['id']}/outputs/{name}?task={tasks[0]}"
        r = browser_studio.manager.put(path, data=data, headers={SHA256_HEADER: hashlib.sha256(data).hexdigest()})
        assert r.status_code == 204, r.text
    report(browser_studio, (tasks[0], "completed", 100))

    image = page.locator("#latest-frame-img")
    expect(image).to_have_attribute("alt", "frames/000002.png")
    # Polled by Playwright: wait_for_function("...") evals the string in the page, which its CSP forbids.
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 36], "the browser decoded it"
    expect(page.locator("#latest-frame details summary")).to_have_text("All outputs (2)")
    page.screenshot(path=str(tmp_path / "job-frame.png"), full_page=True)


def test_admin_pages_and_what_artists_may_not_see(page, browser_studio, tmp_path):
    r = browser_studio.manager.post(f"/api/managers/{browser_studio.manager_id}/workers", json={"workers": [
        {"_id": "w1", "nickname": "node-1", "status": "awake", "platform": "linux", "supported_task_types": ["sleep"],
         "last_seen": now_iso(), "resources": {"cpu_count": 8, "mem_total_mb": 16384, "mem_free_mb": 8192}},
        {"_id": "w2", "nickname": "node-<2>", "status": "asleep", "platform": "windows"}], "complete": True})
    assert r.status_code == 204
    bobs = browser_studio.bob.post("/api/jobs", json={"name": "bob's ad", "type": "sleep", "project": "ads",
                                                      "settings": {"frames": "1"}}).json()

    sign_in(page, "boss", "/workers")
    expect(page.locator("nav a")).to_have_text(["Jobs", "Farm", "Workers", "Managers", "Archive"])
    expect(page.locator("#workers-body tr")).to_have_count(2)
    expect(page.locator('#workers-body tr[data-worker="w2"] td').first).to_have_text("node-<2>")
    expect(page.locator('#workers-body tr[data-worker="w1"] .badge')).to_have_text("awake")
    expect(page.locator('#workers-body tr[data-worker="w1"] td').nth(9)).to_contain_text("Actions")
    page.screenshot(path=str(tmp_path / "workers.png"), full_page=True)
    page.click("nav >> text=Managers")
    expect(page.locator("#managers-body tr")).to_have_count(1)
    expect(page.locator("#managers-body .badge")).to_have_text("online")
    page.screenshot(path=str(tmp_path / "managers.png"), full_page=True)
    page.click("#sign-out")
    page.wait_for_url("**/login")
    page.goto("/workers")
    page.wait_for_url("**/login?next=/workers")

    page.fill("#username", "ann")
    page.fill("#password", "wrong")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    screenshot(page, tmp_path, "server-login")
    page.fill("#password", PASSWORDS["ann"])
    page.click("#sign-in")
    page.wait_for_url("**/workers")
    expect(page.locator("h1")).to_have_text("Admins only")
    expect(page.locator("nav a")).to_have_text(["Jobs", "Archive"])
    page.goto(f"/jobs/{bobs['id']}")
    expect(page.locator("h1")).to_have_text("Job not found")
