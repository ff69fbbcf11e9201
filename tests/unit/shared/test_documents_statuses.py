import pytest

from shared import statuses as st
from shared.documents import (DocumentError, MayKeepRunning, Task, TaskUpdate, TaskUpdateResponse,
                              UpstreamNotification, WorkerRegistration)

TASK = {
    "_id": "5a1b", "_etag": "e1", "job": "j1", "manager": "m1", "project": "p1", "user": "u1",
    "name": "blender-render-1-10", "status": "queued", "priority": 50, "job_priority": 60,
    "job_type": "blender-render", "task_type": "blender-render",
    "commands": [{"name": "blender_render", "settings": {"frames": "1..10"}}],
    "parents": ["p0"], "failed_by_workers": [{"id": "w1", "identifier": "host-1"}],
}


def test_task_round_trip():
    task = Task.from_dict(TASK)
    assert task.id == "5a1b" and task.commands[0].name == "blender_render"
    assert task.failed_by_workers[0].identifier == "host-1"
    again = task.to_dict()
    for key, value in TASK.items():
        assert again[key] == value


@pytest.mark.parametrize("change, field", [
    ({"_id": None}, "_id"),
    ({"status": "sleeping"}, "status"),
    ({"commands": [{"settings": {}}]}, "commands[0].name"),
    ({"priority": "high"}, "priority"),
    ({"parents": "p0"}, "parents"),
])
def test_task_errors_name_the_field(change, field):
    doc = {**TASK, **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(DocumentError) as info:
        Task.from_dict(doc)
    assert field in str(info.value)


def test_task_update_validates_ranges_and_types():
    ok = TaskUpdate.from_dict({"task_status": "completed", "current_command_idx": 1,
                               "task_progress_percentage": 100, "command_progress_percentage": 50})
    assert ok.task_progress_percentage == 100.0
    with pytest.raises(DocumentError, match="between 0 and 100"):
        TaskUpdate.from_dict({"task_progress_percentage": 101})
    with pytest.raises(DocumentError, match="task_status"):
        TaskUpdate.from_dict({"task_status": "done"})
    with pytest.raises(DocumentError, match="must be an integer"):
        TaskUpdate.from_dict({"current_command_idx": True})
    with pytest.raises(DocumentError, match="must be a JSON object"):
        TaskUpdate.from_dict([1])


def test_registration():
    doc = {"secret": "s" * 64, "platform": "linux", "supported_task_types": ["sleep"], "nickname": "n"}
    assert WorkerRegistration.from_dict(doc).to_dict() == doc
    with pytest.raises(DocumentError, match="platform"):
        WorkerRegistration.from_dict({**doc, "platform": "amiga"})
    with pytest.raises(DocumentError, match="supported_task_types"):
        WorkerRegistration.from_dict({**doc, "supported_task_types": []})


def test_small_documents():
    assert MayKeepRunning(True).to_dict() == {"may_keep_running": True}
    resp = TaskUpdateResponse.from_dict({"handled_update_ids": ["a"], "upload_task_file_queue": [
        {"job": "j", "task": "t"}]})
    assert resp.upload_task_file_queue[0].task == "t"
    with pytest.raises(DocumentError, match="_meta.version"):
        UpstreamNotification.from_dict({"_meta": {"version": 1}, "manager_url": "http://x"})


def test_status_tables_cover_every_status():
    assert set(st.JOB_TRANSITIONS) == set(st.JobStatus)
    assert set(st.JOB_USER_TRANSITIONS) == set(st.JobStatus)
    assert set(st.TASK_TRANSITIONS) == set(st.TaskStatus)
    assert set(st.WORKER_TRANSITIONS) == set(st.WorkerStatus)
    for table in (st.JOB_TRANSITIONS, st.TASK_TRANSITIONS, st.WORKER_TRANSITIONS):
        for targets in table.values():
            assert all(t in table for t in targets)


def test_user_transitions_are_machine_transitions():
    for old, targets in st.JOB_USER_TRANSITIONS.items():
        assert targets <= st.JOB_TRANSITIONS[old], old


def test_statuses_are_strings():
    assert st.JobStatus.QUEUED == "queued"
    assert f"{st.TaskStatus.SOFT_FAILED}" == "soft-failed"
    assert st.JobStatus("pause-requested") is st.JobStatus.PAUSE_REQUESTED


def test_check_and_parse():
    st.check("job", "queued", "active")
    with pytest.raises(st.TransitionError, match="job cannot go from 'completed' to 'active'"):
        st.check("job", "completed", "active")
    with pytest.raises(ValueError, match="unknown status 'nope'"):
        st.parse(st.JobStatus, "nope")
    assert st.allowed("task", "failed", "failed")
