"""POST /task from a worker with slots (a TaskRequest body) over real HTTP: several tasks in one
answer, refused requests, and a held request that ends when one of the worker's tasks ends."""

from __future__ import annotations

import threading
import time

from tests.integration.manager.manager_helpers import task_doc


def ask(worker, long_poll=None, **body):
    headers = {"X-Flamenco-Long-Poll": str(long_poll)} if long_poll is not None else {}
    return worker.post("/task", json=body, headers=headers)


def test_one_request_gets_every_task_that_fits(manager, worker_factory):
    w = worker_factory(task_types=("sleep", "blender-render", "file-management"))
    manager.add_tasks(task_doc("r1", task_type="blender-render", priority=90),
                      task_doc("r2", task_type="blender-render", priority=80),
                      task_doc("move", task_type="file-management", priority=10))
    r = ask(w, free_slots=1, free_light_slots=1)
    assert r.status_code == 200, r.text
    docs = r.json()["tasks"]
    assert [(d["_id"], d["status"], d["needs"]) for d in docs] == [("r1", "active", "cpu"), ("move", "active", "light")]
    # Nothing left that fits one light slot: 204.
    assert ask(w, free_slots=0, free_light_slots=1, running=["r1", "move"]).status_code == 204
    # A Flamenco 2 request (no body) from the same worker still gets one task document.
    r = w.fetch()
    assert r.status_code == 200 and r.json()["_id"] in ("r1", "move"), "its own active task, as before"


def test_an_unusable_request_is_refused_after_authentication(manager, worker_factory):
    w = worker_factory()
    manager.add_tasks(task_doc("t1"))
    r = ask(w, free_slots=0)
    assert r.status_code == 400 and "nothing is free" in r.json()["message"]
    r = ask(w, free_slots="two")
    assert r.status_code == 400 and "free_slots" in r.json()["message"]
    w.session.auth = (w.id, "wrong")
    assert ask(w, free_slots=0).status_code == 401
    w.session.auth = (w.id, w.secret)
    assert ask(w, free_slots=1).json()["tasks"][0]["_id"] == "t1", "nothing was claimed by the refused ones"


def test_a_held_request_ends_when_one_of_the_workers_tasks_ends(manager, worker_factory):
    w = worker_factory(task_types=("sleep", "blender-render"))
    manager.add_tasks(task_doc("render", task_type="blender-render"), task_doc("nap", task_type="sleep"))
    assert [d["_id"] for d in ask(w, free_slots=1).json()["tasks"]] == ["render"]
    # Its one slot busy, a light slot free: the light task.
    assert [d["_id"] for d in ask(w, free_slots=0, free_light_slots=1, running=["render"]).json()["tasks"]] == ["nap"]
    manager.add_tasks(task_doc("render2", task_type="blender-render"))
    answer = {}

    def hold():
        started = time.monotonic()
        answer["response"] = ask(w, long_poll=20, free_slots=0, free_light_slots=1, running=["render", "nap"])
        answer["seconds"] = time.monotonic() - started

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.5)
    assert holder.is_alive(), "nothing fits a light slot: the request is held"
    assert w.update("nap", task_status="completed").status_code == 204
    holder.join(10)
    assert answer["response"].status_code == 204 and answer["seconds"] < 5, \
        "the worker asks again with the slot its task left"
    assert [d["_id"] for d in ask(w, free_slots=1, running=["render"]).json()["tasks"]] == ["render2"]
