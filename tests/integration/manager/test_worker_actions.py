"""Worker actions asked for on the Server reach the worker through its Manager, bottom-up (issue 13, point 1).

The real Server and a real linked Manager over HTTP; the Manager's push loop is driven with its tick.
The Server records the action; the Manager gets it in its next batch answer, applies it (the worker's
status request, tags, blocklist, schedule, forgetting it) and confirms it in the batch after; an action
sent again (a confirmation lost with a restart) is applied again harmlessly.
"""

from __future__ import annotations

import requests

from backend.manager.worker_actions import WorkerActions
from tests.integration.manager.manager_helpers import Worker
from tests.integration.manager.test_upstream import linked, server  # noqa: F401 (fixtures)


def admin_client(server):
    from backend.server import admin
    with server.db.connection_context():
        _, token = admin.create_user(server.db, "boss", "admin")
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def ask(s, server, worker_id, **body) -> dict:
    r = s.post(f"{server.url}/api/workers/{server.manager_id}/{worker_id}/actions", json=body, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()


def actions_on_server(s, server) -> dict[str, dict]:
    workers = s.get(f"{server.url}/api/workers", timeout=10).json()["workers"]
    return {a["id"]: a for w in workers for a in w["actions"]}


def action_row(server, action_id):
    from backend.server.models import WorkerAction
    with server.db.connection_context():
        return WorkerAction.get_by_id(action_id)


def round_trip(m):
    """One batch brings the actions and applies them, the next confirms them; the worker report follows."""
    up = m.core.upstream
    up.push_tick(now=up._last_push + 1000)
    up.push_tick(now=up._last_push + 1000)
    up.report_tick(now=up._last_report + 1000)


def test_every_worker_action_goes_down_and_its_confirmation_up(linked, server):  # noqa: F811
    m = linked()
    a = Worker(m.url, task_types=["sleep"]).register().sign_on(tags=["cpu"])
    b = Worker(m.url, task_types=["sleep"]).register().sign_on()
    m.core.db.workers.block(b.id, "job1", "sleep", now=1.0)
    up = m.core.upstream
    up.notify_tick()
    up.report_tick(now=up._last_report + 1000)
    boss = admin_client(server)

    asked = [ask(boss, server, a.id, action="sleep", lazy=True),
             ask(boss, server, a.id, action="set-tags", tags=["gpu", "big-memory"]),
             ask(boss, server, b.id, action="sleep-schedule", schedule={
                 "schedule_active": True, "days_of_week": "mo tu we th fr", "time_start": "22:00", "time_end": "06:00"}),
             ask(boss, server, b.id, action="clear-blocklist"),
             ask(boss, server, b.id, action="shutdown", lazy=False)]
    assert all(x["status"] == "requested" for x in asked)
    assert m.core.db.workers.get(a.id).status_requested is None, "nothing reaches the Manager before it calls"

    round_trip(m)
    wa = m.core.workers.admin_info(m.core.workers.get(a.id))
    assert wa["status_requested"] == "asleep" and wa["lazy_status_request"] is True
    assert wa["tags"] == ["big-memory", "gpu"]
    wb = m.core.workers.admin_info(m.core.workers.get(b.id))
    assert wb["sleep_schedule"]["schedule_active"] and wb["sleep_schedule"]["time_start"] == "22:00"
    assert wb["blocklist"] == [] and wb["status_requested"] == "shutdown", "applied in the order asked"
    assert b.post("/task").status_code == 423, "the worker learns it on its next call"
    done = actions_on_server(boss, server)
    assert {x["id"]: done[x["id"]]["status"] for x in asked} == {x["id"]: "done" for x in asked}
    assert "1 blocklist entry removed" in done[asked[3]["id"]]["message"]
    on_server = {w["id"]: w for w in boss.get(f"{server.url}/api/workers").json()["workers"]}
    assert on_server[a.id]["tags"] == ["big-memory", "gpu"] and on_server[a.id]["status_requested"] == "asleep"

    a.sign_on(tags=["cpu"])  # it restarts with its own tags: the admin's stay
    assert m.core.db.workers.get(a.id).tags == ["big-memory", "gpu"]

    forget = ask(boss, server, b.id, action="forget")
    round_trip(m)
    assert m.core.db.workers.get(b.id) is None
    assert action_row(server, forget["id"]).status == "done"
    assert b.id not in {w["id"] for w in boss.get(f"{server.url}/api/workers").json()["workers"]}


def test_an_action_sent_again_is_applied_again_harmlessly_and_failures_are_reported(linked, server):  # noqa: F811
    m = linked()
    w = Worker(m.url, task_types=["sleep"]).register().sign_on()
    up = m.core.upstream
    up.notify_tick()
    up.report_tick(now=up._last_report + 1000)
    boss = admin_client(server)
    forget = ask(boss, server, w.id, action="forget")
    up.push_tick(now=up._last_push + 1000)  # applied, not yet confirmed ...
    assert m.core.db.workers.get(w.id) is None
    up.actions = m.core.worker_actions = WorkerActions(m.core.workers, m.core.sleep_scheduler)  # ... a restart
    up.push_tick(now=up._last_push + 1000)  # sent again: already forgotten
    up.push_tick(now=up._last_push + 1000)
    got = action_row(server, forget["id"])
    assert got.status == "done" and got.message == "already forgotten"

    other = Worker(m.url, task_types=["sleep"]).register().sign_on()
    up.report_tick(now=up._last_report + 1000)
    tags = ask(boss, server, other.id, action="set-tags", tags=["x" * 100])
    m.core.workers.forget(other.id)  # gone at the Manager before the action arrives
    round_trip(m)
    failed = action_row(server, tags["id"])
    assert failed.status == "failed" and "does not exist" in failed.message
