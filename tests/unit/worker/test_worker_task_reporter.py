from worker.task_reporter import TaskReporter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(queue, clock, **kw):
    args = dict(act_interval=3, log_interval=5, log_max_entries=4)
    args.update(kw)
    return TaskReporter(queue, "t1", n_commands=2, clock=clock, **args)


def bodies(queue):
    return [i.json for i in queue.pending()]


def test_first_activity_goes_at_once_then_throttled(queue):
    clock = Clock()
    rep = make(queue, clock)
    rep.progress(0.1, "frame 1")
    assert [b["activity"] for b in bodies(queue)] == ["frame 1"]
    clock.now += 1
    rep.progress(0.2, "frame 2")
    rep.progress(0.3, "frame 3")
    assert len(bodies(queue)) == 1, "within the interval nothing more goes out"
    clock.now += 2.5
    rep.tick()
    last = bodies(queue)[-1]
    assert last["activity"] == "frame 3"
    assert last["command_progress_percentage"] == 30.0
    assert last["task_progress_percentage"] == 15.0  # command 0 of 2 at 30%
    rep.tick()
    assert len(bodies(queue)) == 2, "nothing new, nothing sent"


def test_status_goes_at_once_with_pending_logs(queue):
    clock = Clock()
    rep = make(queue, clock, log_interval=100, log_max_entries=100)
    rep.log("one")
    rep.log("two")
    assert bodies(queue) == []
    rep.status("completed")
    (body,) = bodies(queue)
    assert body["task_status"] == "completed"
    assert body["task_progress_percentage"] == 100.0
    lines = body["log"].split("\n")
    assert [l.split(": ", 1)[1] for l in lines] == ["one", "two"]
    assert lines[0][:4].isdigit() and "T" in lines[0] and lines[0].split(": ")[0].endswith("Z")


def test_logs_batch_by_count_and_age(queue):
    clock = Clock()
    rep = make(queue, clock)
    for n in range(4):
        rep.log(f"line {n}")
    assert len(bodies(queue)) == 1 and bodies(queue)[0]["log"].count("\n") == 3
    rep.log("late line")
    clock.now += 4
    rep.tick()
    assert len(bodies(queue)) == 1
    clock.now += 1.5
    rep.tick()
    assert bodies(queue)[-1]["log"].endswith("late line")


def test_silenced_reporter_sends_only_logs(queue):
    clock = Clock()
    rep = make(queue, clock)
    rep.silence()
    rep.progress(0.5, "should not be sent")
    rep.status("failed")
    rep.log("aborting")
    rep.flush()
    for body in bodies(queue):
        assert "task_status" not in body and "activity" not in body
    assert bodies(queue)[-1]["log"].endswith("aborting")
