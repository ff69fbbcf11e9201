"""Faults on the network and on the hosts, with sleep jobs (the faults are the point, not the
work): the Manager cut off from the Server for a minute, a slow and lossy link between the
workers and their Manager, a worker host that dies mid-task.

Evidence comes from what the services keep, read from their files after (or during) the
fact: the Manager's upstream queue and tasks (its SQLite database, read-only), the Server's
applied task-update ids, the Manager's per-run task logs, the workers' own logs, and the
kernel's TCP counters of the worker hosts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .studio import WORKER_TIMEOUT, Site, Studio

pytestmark = pytest.mark.multihost

CUT_SECONDS = 60.0


# --- what the services keep ------------------------------------------------------------------

def queued_updates(st: Studio, site: Site) -> dict[str, dict]:
    """The task updates waiting in the Manager's upstream queue, by update id."""
    with st.manager_db(site) as db:
        rows = db.execute("SELECT payload FROM upstream_item WHERE kind = 'task-update' ORDER BY seq").fetchall()
    return {p["_id"]: p for p in (json.loads(r["payload"]) for r in rows)}


def manager_tasks(st: Studio, site: Site, job_id: str) -> dict[str, str]:
    with st.manager_db(site) as db:
        return dict(db.execute("SELECT id, status FROM task WHERE job = ?", (job_id,)).fetchall())


def applied_ids(st: Studio) -> set[str]:
    """Task-update ids the Server has applied (it answers a resent one without applying it again)."""
    with st.server_db() as db:
        return {r[0] for r in db.execute("SELECT id FROM applied_update")}


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Run:
    worker: str
    task: str
    start: float
    end: float
    source: str


def manager_runs(st: Studio, site: Site, job_id: str) -> list[Run]:
    """Each run of each task from the Manager's task logs (a run per file: task-<id>.txt and
    the rotated .txt.1 ...): the worker it was assigned to, its first and last timestamps."""
    runs = []
    for path in st.manager_task_logs(site).rglob(f"task-{job_id}-*.txt*"):
        text = path.read_text()
        assigned = re.search(r"task assigned to worker \S+ \((\S+)\)", text)
        stamps = [when(m) for m in re.findall(r"^(\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:\d\d)): ", text, re.M)]
        task = re.match(r"task-(.+?)\.txt", path.name).group(1)
        runs.append(Run(assigned.group(1), task, min(stamps).timestamp(), max(stamps).timestamp(), str(path)))
    return runs


def worker_runs(st: Studio, names: list[str]) -> list[Run]:
    """Each task run as the workers themselves logged it: 'task X (...): starting' to 'task X: <outcome>'."""
    runs = []
    for name in names:
        host = st.net.host(name)
        started: dict[str, float] = {}
        for line in (host.logs / "flamenco-worker.log").read_text().splitlines():
            m = re.match(r"(\d{4}-\d\d-\d\d [\d:]+,\d{3}) \w+ +worker\.task_execution: task (\S+?):? (.*)", line)
            if not m:
                continue
            at = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            task, rest = m.group(2), m.group(3)
            if rest.startswith("(") and "starting" in rest:
                started[task] = at
            elif task in started and re.match(r"(completed|failed|returned)\b", rest):
                runs.append(Run(name, task, started.pop(task), at, f"{name}: {line}"))
        runs += [Run(name, task, at, float("inf"), f"{name}: still running") for task, at in started.items()]
    return runs


def assert_never_twice_at_once(runs: list[Run], keys=("task", "worker")) -> None:
    """No task runs on two workers at the same time, and no worker runs two tasks at once.

    As the Manager and the Server record runs, a one-slot worker may hold its next task for the
    moment between freeing its slot and its last report of the previous one reaching them
    (docs/protocol.md, workers with slots): there only the tasks are checked; the workers' own
    logs say whether a worker ever ran two at once."""
    for key in keys:
        groups: dict[str, list[Run]] = {}
        for run in runs:
            groups.setdefault(getattr(run, key), []).append(run)
        for group in groups.values():
            group.sort(key=lambda r: r.start)
            for a, b in zip(group, group[1:]):
                assert a.end <= b.start, f"overlapping runs of the same {key}:\n  {a}\n  {b}"


def tcp_retransmits(host) -> int:
    """RetransSegs of the host's TCP stack (/proc/net/snmp is per network namespace)."""
    snmp = host.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    lines = [line.split() for line in snmp if line.startswith("Tcp:")]
    return int(dict(zip(lines[0], lines[1]))["RetransSegs"])


def wait_for(what: str, check, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(every)


# --- the tests ---------------------------------------------------------------------------------

def test_a_minute_without_the_server(healthy_hosts_studio: Studio):
    """Manager <-> Server cut for 60 s mid-job: the workers go on, the Manager queues what the
    Server must learn, and once the link is back every update reaches the Server exactly once,
    including those the Server applied while its answers were lost (sent again, not applied
    again)."""
    st = healthy_hosts_studio
    site, other = st.sites
    api = st.artist_api(site)
    manager = st.net.host(site.manager)
    job = api.submit("sleep", "through the cut", {"frames": "1-16", "chunk_size": 1, "time_in_seconds": 4})
    api.wait(job["id"], lambda j: j["task_counts"].get("completed", 0) >= 1, timeout=60)

    # First only the answers are lost: the Server applies what reaches it, the Manager never
    # hears so, and keeps those updates queued. Wait until that has happened to one.
    cut_at = time.monotonic()
    st.net.cut(st.server, manager, both_ways=False)
    try:
        in_flight = wait_for("an update applied by the Server while the Manager still holds it",
                             lambda: applied_ids(st) & set(queued_updates(st, site)), timeout=25)
        st.net.cut(manager, st.server, both_ways=False)  # now both ways
        done_at_cut = sum(s == "completed" for s in manager_tasks(st, site, job["id"]).values())

        # The other site is not affected: its Manager still reaches the Server.
        other_job = st.artist_api(other).submit("sleep", "other site", {"frames": "1-2", "time_in_seconds": 1})
        st.artist_api(other).wait(other_job["id"], timeout=60)

        time.sleep(max(0.0, cut_at + CUT_SECONDS - time.monotonic()))
        queued = queued_updates(st, site)
        done_in_cut = sum(s == "completed" for s in manager_tasks(st, site, job["id"]).values()) - done_at_cut
        server_job = api.job(job["id"])
    finally:
        st.net.heal()

    print(f"cut {CUT_SECONDS:g} s: {done_in_cut} tasks completed meanwhile, {len(queued)} updates queued, "
          f"{len(in_flight)} applied by the Server but unacknowledged")
    assert done_in_cut >= 4, f"the workers should have gone on; {done_in_cut} tasks completed during the cut"
    completions = [u for u in queued.values() if u.get("task_status") == "completed"]
    assert len(completions) >= done_in_cut, "every completion during the cut waits in the Manager's queue"
    assert server_job["status"] == "active"
    assert in_flight <= set(queued), "applied-but-unacknowledged updates are still queued for resending"

    done = api.wait(job["id"], timeout=120)
    assert done["task_counts"] == {"completed": 16}
    wait_for("the Manager's queue to drain", lambda: not queued_updates(st, site), timeout=30)
    # Every update the Manager held reached the Server once; the Server's task history has
    # the Manager's times (when the worker finished), not when the link came back.
    assert set(queued) <= applied_ids(st)
    with st.server_db() as db:
        assert not db.execute("SELECT id FROM applied_update GROUP BY id HAVING COUNT(*) > 1").fetchall()
        changes = [r[0] for r in db.execute("SELECT what FROM job_log_entry WHERE job_id = ?", (job["id"],))]
    assert changes.count("status active -> completed") == 1 and len(changes) == len(set(changes)), changes
    tasks = {t["id"]: t for t in api.tasks(job["id"])}
    for update in completions:
        task = tasks[update["task_id"]]
        assert task["status"] == "completed"
        assert when(task["finished"]) == when(update["received_on_manager"]), (task, update)
    for host, name in ((st.server, "flamenco-server"), (manager, "flamenco-manager")):
        assert "Traceback" not in (host.logs / f"{name}.log").read_text(), f"{name} logged an error"


def test_slow_lossy_link_to_the_workers(healthy_hosts_studio: Studio):
    """200 ms each way and 5 % loss each way between the worker hosts and their Managers:
    jobs complete, and no task ever runs on two workers at once."""
    st = healthy_hosts_studio
    workers = [w for s in st.sites for w in s.workers]
    retrans_before = {w: tcp_retransmits(st.net.host(w)) for w in workers}
    st.net.impair("render", delay_ms=200, loss=0.05)
    try:
        jobs = [(site, st.artist_api(site).submit("sleep", f"slow link {site.project}",
                                                  {"frames": f"1-{6 * len(site.workers)}", "chunk_size": 1,
                                                   "time_in_seconds": 1}))
                for site in st.sites]
        started = time.monotonic()
        for site, job in jobs:
            st.artist_api(site).wait(job["id"], timeout=240)
        print(f"slow link: both jobs done in {time.monotonic() - started:.1f} s")
        retransmitted = sum(tcp_retransmits(st.net.host(w)) - retrans_before[w] for w in workers)
    finally:
        st.net.clear_impairment()
    assert retransmitted > 0, "packets were lost: the workers' TCP must have retransmitted"

    ids = {w["id"]: w["nickname"] for w in st.api().workers()}
    by_workers = worker_runs(st, workers)
    for site, job in jobs:
        tasks = st.artist_api(site).tasks(job["id"])
        assert all(t["status"] == "completed" and ids.get(t["worker"]) in site.workers for t in tasks), tasks
        # The Manager's runs (its task logs), the workers' own, and the Server's latest run
        # of each task: every task is there, by the worker the Server names; none overlap.
        at_manager = manager_runs(st, site, job["id"])
        for runs in (at_manager, by_workers):
            last = {r.task: r.worker for r in sorted(runs, key=lambda r: r.start)}
            assert all(last.get(t["id"]) == ids[t["worker"]] for t in tasks), (last, tasks)
        assert_never_twice_at_once(at_manager, keys=("task",))
        assert_never_twice_at_once([Run(ids[t["worker"]], t["id"], when(t["started"]).timestamp(),
                                        when(t["finished"]).timestamp(), "server") for t in tasks], keys=("task",))
    assert_never_twice_at_once(by_workers)


def test_a_worker_host_that_dies_mid_task(healthy_hosts_studio: Studio):
    """Every process of a worker host SIGKILLed mid-task: its task goes back to the queue once
    the worker timeout passes, and another worker completes it."""
    st = healthy_hosts_studio
    site = st.sites[0]
    victim, survivor = site.workers
    api = st.artist_api(site)
    job = api.submit("sleep", "lose a worker", {"frames": "1-2", "chunk_size": 1, "time_in_seconds": 8})
    ids = {w["nickname"]: w["id"] for w in st.api().workers()}

    def both_running():
        active = {t["worker"]: t for t in api.tasks(job["id"]) if t["status"] == "active"}
        return active if len(active) == 2 else None
    task = wait_for("both tasks running", both_running, timeout=60)[ids[victim]]

    killed_at = time.time()
    assert st.kill_host(victim), "nothing was running on the worker host"
    assert st.net.host(victim).pids() == []

    done = api.wait(job["id"], timeout=90)
    assert done["task_counts"] == {"completed": 2}
    after = api.task(task["id"])
    assert after["worker"] == ids[survivor]
    requeued_after = when(after["started"]).timestamp() - killed_at
    print(f"killed worker's task running again on {survivor} {requeued_after:.1f} s after the kill "
          f"(worker_timeout {WORKER_TIMEOUT:g} s)")
    # The Manager last heard from the victim at most a may-i-run interval (5 s) before the
    # kill; it requeues the task a worker timeout later, at its next check (every 1 s). Some
    # slack for a loaded machine.
    assert WORKER_TIMEOUT - 5.5 <= requeued_after <= WORKER_TIMEOUT + 1.0 + 5.0, requeued_after
    runs = sorted(manager_runs(st, site, job["id"]), key=lambda r: r.start)
    assert [r.worker for r in runs if r.task == task["id"]] == [victim, survivor]
    victim_log = Path(next(r.source for r in runs if r.task == task["id"] and r.worker == victim)).read_text()
    assert "timed out" in victim_log, victim_log
    statuses = {w["nickname"]: w["status"] for w in st.api().workers()}
    assert statuses[victim] in ("timeout", "offline"), statuses
