"""The job/task state machine, driven through the services that the routes call, on a real database."""

from __future__ import annotations

import pytest

from backend.server.database import write
from backend.server.models import JobLogEntry, Task
from backend.web import ApiError
from tests.unit.server.server_testdb import Harness


@pytest.fixture
def h(seeded_server):
    return Harness(seeded_server)


def ids(tasks):
    return [t.id if hasattr(t, "id") else t["_id"] for t in tasks]


def test_submission_flips_job_and_tasks_together(h):
    job = h.submit()
    assert job.status == "queued"
    tasks = h.tasks(job)
    assert len(tasks) == 10 and {t.status for t in tasks} == {"queued"}
    assert len({t.updated for t in tasks}) == 1, "one shared stamp for all tasks"
    assert job.task_counts == {"queued": 10} and job.tasks_total == 10 and job.progress == 0
    assert [e.what for e in JobLogEntry.select().where(JobLogEntry.job == job.id)][0].startswith("submitted sleep")

    paused = h.submit(start_paused=True)
    assert paused.status == "paused" and set(h.statuses(paused)) == {"paused"}
    docs, _ = h.depsgraph()
    assert {d["job"] for d in docs} == {job.id}, "paused jobs are not handed out"


def test_depsgraph_claims_and_is_incremental(h):
    job = h.submit()
    docs, stamp = h.depsgraph()
    assert len(docs) == 10 and {d["status"] for d in docs} == {"claimed-by-manager"}
    d = docs[0]
    assert d["job"] == job.id and d["manager"] == h.seeded_server.manager.id and d["job_type"] == "sleep"
    assert d["commands"][1] == {"name": "sleep", "settings": {"time_in_seconds": 1.0}}
    assert d["job_files_mode"] == "shared" and d["parents"] == []
    assert set(h.statuses(job)) == {"claimed-by-manager"}
    h.check_counts(job)
    assert h.depsgraph(since=stamp)[0] == []
    again, _ = h.depsgraph()
    assert len(again) == 10, "a clean slate returns claimed tasks again"

    with write(h.ctx.db):
        h.ctx.machine.set_job_priority(h.job(job), 80, "user test")
    changed, stamp2 = h.depsgraph(since=stamp)
    assert len(changed) == 10 and {c["job_priority"] for c in changed} == {80}
    assert stamp2 > stamp


def test_progress_and_completion_roll_up(h):
    job = h.submit(settings={"frames": "1-4"})
    tasks = ids(h.depsgraph()[0])
    h.update(tasks[0], "active", task_progress_percentage=50)
    job = h.check_counts(job)
    assert job.status == "active" and job.progress == 12.5
    h.update(tasks[0], "completed", task_progress_percentage=100)
    assert h.check_counts(job).progress == 25
    for t in tasks[1:]:
        h.update(t, "active")
        h.update(t, "completed")
    job = h.check_counts(job)
    assert job.status == "completed" and job.progress == 100


def test_ten_percent_of_failures_fail_the_job(h):
    job = h.submit(settings={"frames": "1-10"})
    tasks = ids(h.depsgraph()[0])
    h.update(tasks[1], "active")
    answer = h.update(tasks[0], "failed")
    job = h.check_counts(job)
    assert job.status == "fail-requested"
    assert job.status_reason == "1 of 10 tasks (10%) failed"
    assert set(answer["cancel_task_ids"]) == set(tasks[1:])
    for t in tasks[2:]:
        h.update(t, "canceled")
    assert h.job(job).status == "fail-requested", "a task still runs"
    h.update(tasks[1], "active")  # ignored: cancel-requested only accepts an end
    assert h.job(job).status == "fail-requested"
    h.update(tasks[1], "canceled")
    job = h.check_counts(job)
    assert job.status == "failed" and job.status_reason == "1 of 10 tasks (10%) failed"


def test_fewer_failures_keep_the_job_going(h):
    job = h.submit(settings={"frames": "1-20"})
    tasks = ids(h.depsgraph()[0])
    h.update(tasks[0], "soft-failed", failed_by_workers=[{"id": "w1", "identifier": "w1"}])
    assert h.job(job).status == "active"
    assert Task.get_by_id(tasks[0]).failed_by_workers == [{"id": "w1", "identifier": "w1"}]
    h.update(tasks[0], "failed")
    job = h.check_counts(job)
    assert job.status == "active"


def test_cancel_settles_when_nothing_runs(h):
    job = h.submit(settings={"frames": "1-3"})
    tasks = ids(h.depsgraph()[0])
    h.update(tasks[0], "active")
    job = h.user_status(job, "cancel-requested", "wrong camera")
    assert job.status == "cancel-requested"
    assert set(h.statuses(job)) == {"cancel-requested"}
    answer = h.update(tasks[1], "canceled")
    assert set(answer["cancel_task_ids"]) == {tasks[0], tasks[2]}
    h.update(tasks[2], "canceled")
    assert h.job(job).status == "cancel-requested", "the active task has not stopped yet"
    answer = h.update(tasks[0], "canceled")
    assert answer["cancel_task_ids"] == []
    job = h.check_counts(job)
    assert job.status == "canceled" and job.status_reason == "wrong camera"
    log = [(e.who, e.what, e.reason) for e in JobLogEntry.select().where(JobLogEntry.job == job.id)
           .order_by(JobLogEntry.id)]
    assert ("user test", "status active -> cancel-requested", "wrong camera") in log
    assert ("manager m1", "status cancel-requested -> canceled", "wrong camera") in log


def test_cancel_of_unclaimed_job_is_immediate(h):
    job = h.submit()
    job = h.user_status(job, "cancel-requested")
    assert job.status == "canceled" and set(h.statuses(job)) == {"canceled"}


def test_pause_and_resume(h):
    job = h.submit(settings={"frames": "1-4"})
    tasks = ids(h.depsgraph()[0])
    h.update(tasks[0], "active")
    h.update(tasks[1], "soft-failed")
    job = h.user_status(job, "pause-requested")
    assert job.status == "pause-requested"
    st = dict(zip(ids(h.tasks(job)), h.statuses(job)))
    assert st[tasks[0]] == "active"
    assert st[tasks[1]] == st[tasks[2]] == st[tasks[3]] == "cancel-requested"
    for t in tasks[1:]:
        h.update(t, "canceled")
    assert set(h.statuses(job)[1:]) == {"paused"}
    assert h.job(job).status == "pause-requested", "the active task runs to its end"
    h.update(tasks[0], "completed")
    job = h.check_counts(job)
    assert job.status == "paused"
    assert h.depsgraph()[0] == []
    job = h.user_status(job, "queued")
    assert job.status == "queued" and h.statuses(job) == ["completed", "queued", "queued", "queued"]
    assert len(h.depsgraph()[0]) == 3
    h.check_counts(job)


def test_requeue_clears_failures(h):
    job = h.submit(settings={"frames": "1-4"})
    tasks = ids(h.depsgraph()[0])
    h.update(tasks[0], "completed")
    h.update(tasks[1], "failed", failed_by_workers=[{"id": "w1"}, {"id": "w2"}, {"id": "w3"}])
    for t in tasks[2:]:
        h.update(t, "canceled")
    job = h.check_counts(job)
    assert job.status == "failed"
    with write(h.ctx.db):
        n = h.ctx.machine.requeue_job(h.job(job), "user test", "fixed the texture", failed_only=True)
    assert n == 3
    job = h.check_counts(job)
    assert job.status == "queued" and h.statuses(job) == ["completed", "queued", "queued", "queued"]
    assert Task.get_by_id(tasks[1]).failed_by_workers == []
    for t in tasks[1:]:
        h.update(t, "completed")
    assert h.job(job).status == "completed"
    job = h.user_status(job, "requeued")
    assert job.status == "queued" and set(h.statuses(job)) == {"queued"}
    h.check_counts(job)


def test_requeue_task_takes_its_descendants(h):
    job = h.submit("blender-render", {"filepath": "/s/a.blend", "frames": "1-3", "chunk_size": 1,
                                      "render_output": "/r/shot/######"})
    tasks = ids(h.depsgraph()[0])
    assert len(tasks) == 4
    for t in tasks:
        h.update(t, "completed")
    assert h.job(job).status == "completed"
    with write(h.ctx.db):
        n = h.ctx.machine.requeue_task(Task.get_by_id(tasks[1]), h.job(job), "user test")
    assert n == 2
    assert h.statuses(job) == ["completed", "queued", "completed", "queued"]
    job = h.check_counts(job)
    assert job.status == "queued"
    move = Task.get_by_id(tasks[3])
    assert move.name == "move-to-final" and move.parents == tasks[:3]


def test_user_transitions_are_checked(h):
    job = h.submit()
    job = h.user_status(job, "cancel-requested")
    with pytest.raises(ApiError) as info:
        h.user_status(job, "pause-requested")
    assert info.value.status == 409 and "canceled" in info.value.message


def test_update_batches_apply_once_and_only_own_tasks(h, ctx):
    h.submit(settings={"frames": "1-2"})
    tasks = ids(h.depsgraph()[0])
    first = h.batch([{"_id": "x1", "task_id": tasks[0], "received_on_manager": "t", "task_status": "active",
                      "log": "line 1\nline 2"},
                     {"_id": "x2", "task_id": "no-such-task", "received_on_manager": "t",
                      "task_status": "completed"}])
    assert first["handled_update_ids"] == ["x1", "x2"] and first["modified_count"] == 1
    again = h.batch([{"_id": "x1", "task_id": tasks[0], "received_on_manager": "t", "task_status": "active",
                      "log": "line 1\nline 2"}])
    assert again["handled_update_ids"] == ["x1"] and again["modified_count"] == 0
    assert Task.get_by_id(tasks[0]).log_tail == "line 1\nline 2"

    from backend.server import admin, manager_sync
    from tests.unit.server.server_testdb import notification
    other, _ = admin.create_manager(ctx.db, "m2")
    manager_sync.announce(ctx, other, notification(), True)
    foreign = h.batch([{"_id": "y1", "task_id": tasks[1], "received_on_manager": "t", "task_status": "failed"}],
                      manager=other)
    assert foreign["handled_update_ids"] == ["y1"] and foreign["modified_count"] == 0
    assert Task.get_by_id(tasks[1]).status == "claimed-by-manager"
    assert h.depsgraph(manager=other)[0] == []


def test_dependencies_block_unblock_and_fail(h):
    bake = h.submit(name="bake", settings={"frames": "1"})
    render = h.submit(name="render", settings={"frames": "1-2"}, depends_on=[bake.id])
    assert render.blocked and render.status == "queued"
    docs, stamp = h.depsgraph()
    assert {d["job"] for d in docs} == {bake.id}
    h.update(docs[0]["_id"], "completed")
    assert h.job(bake).status == "completed" and not h.job(render).blocked
    docs, _ = h.depsgraph(since=stamp)
    assert {d["job"] for d in docs} == {render.id}, "unblocked tasks reach an incremental depsgraph"

    bake2 = h.submit(name="bake2", settings={"frames": "1"})
    render2 = h.submit(name="render2", settings={"frames": "1"}, depends_on=[bake2.id])
    h.user_status(bake2, "cancel-requested")
    render2 = h.job(render2)
    assert render2.status == "failed"
    assert render2.status_reason == f"depends on job bake2 ({bake2.id}), which was canceled"
    with pytest.raises(ApiError, match="canceled"):
        h.submit(settings={"frames": "1"}, depends_on=[bake2.id])


def test_construction_failure_is_stored_with_reason(seeded_server):
    from backend.server.compilers import JobType, Setting, register_compiler

    @register_compiler("broken")
    class Broken(JobType):
        settings_schema = [Setting("x", "integer", default=1)]

        def task_types(self, settings, ctx):
            return {"sleep"}

        def compile(self, settings, ctx):
            raise ZeroDivisionError("oops")

    seeded_server.ctx.registry.add(Broken)
    job = Harness(seeded_server).submit("broken", {})
    assert job.status == "construction-failed"
    assert job.status_reason == "compiling failed: ZeroDivisionError: oops"
    assert Task.select().where(Task.job == job.id).count() == 0


def test_new_tasks_reach_an_incremental_depsgraph_even_if_the_wall_clock_steps_back(h, ctx):
    import datetime as dt
    h.submit(name="first")
    _, stamp = h.depsgraph()
    real = ctx.clock._source
    ctx.clock._source = lambda: real() - dt.timedelta(hours=1)  # NTP stepped the clock back
    try:
        second = h.submit(name="second")
    finally:
        ctx.clock._source = real
    docs, _ = h.depsgraph(since=stamp)
    assert {d["job"] for d in docs} == {second.id}


def test_requeueing_a_dependency_blocks_its_dependents_again(h):
    bake = h.submit(name="bake", settings={"frames": "1"})
    render = h.submit(name="render", settings={"frames": "1"}, depends_on=[bake.id])
    h.update(h.depsgraph()[0][0]["_id"], "completed")
    assert not h.job(render).blocked
    h.user_status(bake, "requeued")
    assert h.job(render).blocked
    assert {d["job"] for d in h.depsgraph()[0]} == {bake.id}


def test_housekeeping_forgets_old_update_ids(h, ctx):
    import datetime as dt
    from backend.server.housekeeping import Housekeeping
    from backend.server.models import AppliedUpdate
    job = h.submit(settings={"frames": "1"})
    tid = h.depsgraph()[0][0]["_id"]
    h.update(tid, "active", update_id="old")
    keeper = Housekeeping(ctx)
    assert keeper.tick(ctx.clock.now()) == 0
    assert keeper.tick(ctx.clock.now() + dt.timedelta(days=15)) == 1
    assert AppliedUpdate.select().count() == 0
    assert h.job(job).status == "active"
