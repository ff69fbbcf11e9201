import pytest

from blender_addon import joblist as jl


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def job(id, status="active", progress=0.0, created="2024-01-01T00:00:00Z", **kw):
    return {"id": id, "name": f"job {id}", "type": "blender-render", "status": status,
            "progress": progress, "created": created, "priority": 50, **kw}


def test_rows_newest_first_limited_with_allowed_actions():
    model = jl.JobList(clock=Clock(), limit=2)
    rows = model.update([job("a", "queued", created="2024-01-01T00:00:00Z"),
                         job("b", "paused", created="2024-01-03T00:00:00Z"),
                         job("c", "completed", created="2024-01-02T00:00:00Z")])
    assert [r.id for r in rows] == ["b", "c"]
    assert rows[0].actions == ["cancel", "resume", "requeue"]
    assert rows[1].actions == ["requeue"]
    assert jl.allowed_actions("active") == ["cancel", "pause", "requeue"]
    assert jl.allowed_actions("cancel-requested") == []
    assert jl.allowed_actions("no-such-status") == []


def test_eta_from_observed_progress():
    clock = Clock()
    model = jl.JobList(clock=clock)
    [row] = model.update([job("a", progress=10)])
    assert row.eta_seconds is None and row.eta_text == ""
    clock.t += 60
    [row] = model.update([job("a", progress=20)])
    assert row.eta_seconds == pytest.approx(8 * 60)
    assert row.eta_text == "about 8m 00s left"


def test_eta_from_the_start_time_when_the_server_gives_one():
    clock = Clock(t=jl.parse_time("2024-01-01T01:00:00Z"))
    model = jl.JobList(clock=clock)
    [row] = model.update([job("a", progress=25, started="2024-01-01T00:00:00+00:00")])
    assert row.eta_seconds == pytest.approx(3 * 3600)
    assert row.eta_text == "about 3h 00m left"


def test_no_eta_unless_active_and_done_says_done():
    model = jl.JobList(clock=Clock())
    rows = model.update([job("a", "queued", 50), job("b", "completed", 100)])
    assert [r.eta_seconds for r in rows] == [None, None]
    assert model.row("b").eta_text == "done"


def test_progress_from_task_counts_when_no_percentage():
    assert jl.job_progress({"task_counts": {"completed": 3, "queued": 1}}) == 75.0
    assert jl.job_progress({"task_counts": {"completed": 1, "total": 4}}) == 25.0
    assert jl.job_progress({"status": "completed"}) == 100.0
    assert jl.job_progress({"progress": 140}) == 100.0


def test_history_is_forgotten_for_jobs_that_left_the_list():
    model = jl.JobList(clock=Clock())
    model.update([job("a"), job("b")])
    model.update([job("b")])
    assert set(model.history) == {"b"}


def test_a_requested_change_shows_at_once():
    model = jl.JobList(clock=Clock())
    model.update([job("a", "active", 10)])
    model.set_status_locally("a", "cancel-requested")
    assert model.row("a").status == "cancel-requested" and model.row("a").actions == []


def test_requeue_is_offered_only_where_it_requeues_something():
    """Issue 14, point 3: a queued or active job without failed, canceled or paused tasks gets no Requeue."""
    model = jl.JobList(clock=Clock())
    rows = model.update([job("q", "queued", task_counts={"queued": 4}),
                         job("a", "active", task_counts={"active": 1, "failed": 1}),
                         job("c", "completed", task_counts={"completed": 4})])
    assert {r.id: r.actions for r in rows} == {"q": ["cancel", "pause"], "a": ["cancel", "pause", "requeue"],
                                               "c": ["requeue"]}


def test_the_servers_answer_to_an_action_updates_the_row_at_once():
    """Issue 14, point 3: a resumed job no longer offers Resume, a cancel-requested one no Cancel."""
    model = jl.JobList(clock=Clock())
    model.update([job("a", "paused", task_counts={"paused": 2})])
    assert model.row("a").actions == ["cancel", "resume", "requeue"]
    model.replace(job("a", "queued", task_counts={"queued": 2}))
    assert model.row("a").status == "queued" and model.row("a").actions == ["cancel", "pause"]
    model.replace(job("a", "cancel-requested", task_counts={"cancel-requested": 1, "canceled": 1}))
    assert model.row("a").actions == []
    model.replace(job("zz", "queued"))  # not in the list: nothing happens
    assert [r.id for r in model.rows] == ["a"]


def test_format_duration_and_parse_time():
    assert [jl.format_duration(s) for s in (5, 65, 3725)] == ["5s", "1m 05s", "1h 02m"]
    assert jl.parse_time("2024-01-01T00:00:00Z") == jl.parse_time("2024-01-01T00:00:00") == 1704067200.0
    assert jl.parse_time("garbage") is None and jl.parse_time(None) is None


def test_job_page_url():
    assert jl.job_page_url("http://farm:8888/", "j1") == "http://farm:8888/jobs/j1"
    assert jl.job_page_url("http://farm", "j1", {"web_url": "/flamenco/jobs/j1"}) == "http://farm/flamenco/jobs/j1"
    assert jl.job_page_url("http://farm", "j1", {"url": "/api/jobs/j1"}) == "http://farm/jobs/j1"
