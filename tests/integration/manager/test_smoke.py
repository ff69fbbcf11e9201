from tests.integration.manager.manager_helpers import task_doc


def test_register_fetch_complete(manager, worker_factory):
    w = worker_factory()
    w.sign_on()
    manager.add_tasks(task_doc("t1"))
    r = w.fetch()
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["_id"] == "t1" and doc["status"] == "active"
    r = w.update("t1", task_status="completed", activity="done", current_command_idx=1,
                 task_progress_percentage=100, command_progress_percentage=100, log="2024-01-01T00:00:00+00:00: hi")
    assert r.status_code == 204, r.text
    assert w.fetch().status_code == 204
