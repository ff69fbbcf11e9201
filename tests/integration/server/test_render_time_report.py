"""`flamenco-server report render-time`: render time per project and user (or worker, ...) over a period,
as CSV, from live and archived jobs alike; runs across the period's edges count for their part inside it.
The runs are reported by a Manager through the real API with times the test chooses; the report runs as
the CLI, in its own process, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from tests.integration.server.timed_studio import run, submit, timed_studio, utc
from tests.unit.server.server_testdb import DB_KINDS

HOUR = 3600


@pytest.fixture(params=DB_KINDS, scope="module")
def farm(request, tmp_path_factory):
    """film/ann: job A (archived) and job C; ads/bob: job B, one of its tasks still running.

    A: a0 on w1 02-28 23:00 -> 03-01 01:00 completed; a1 on w1 03-02 10:00 -> 10:30 soft-failed,
       then on w2 11:00 -> 12:00 completed.
    B: b0 on w2 03-31 23:30 -> 04-01 00:30 completed; b1 on w1 from 03-15 12:00, running.
    C: c0 on w2 03-10 00:00 -> 06:00 completed.
    """
    tmp_path = tmp_path_factory.mktemp(request.param)
    with timed_studio(request.param, tmp_path, request, utc("2025-02-28 20:00:00")) as studio:
        a, (a0, a1) = submit(studio, studio.ann, "film")
        b, (b0, b1) = submit(studio, studio.bob, "ads")
        c, (c0,) = submit(studio, studio.ann, "film", frames="1")
        studio.time.set(utc("2025-04-02 00:00:00"))
        run(studio, a0, "w1", utc("2025-02-28 23:00:00"), utc("2025-03-01 01:00:00"))
        run(studio, a1, "w1", utc("2025-03-02 10:00:00"), utc("2025-03-02 10:30:00"), status="soft-failed")
        run(studio, a1, "w2", utc("2025-03-02 11:00:00"), utc("2025-03-02 12:00:00"))
        run(studio, b0, "w2", utc("2025-03-31 23:30:00"), utc("2025-04-01 00:30:00"))
        run(studio, b1, "w1", utc("2025-03-15 12:00:00"), None)
        run(studio, c0, "w2", utc("2025-03-10 00:00:00"), utc("2025-03-10 06:00:00"))
        r = studio.admin.post(f"/api/jobs/{a['id']}/archive")
        assert r.status_code == 200, r.text
        assert studio.ann.get(f"/api/jobs/{a['id']}").status_code == 404, "A lives on in its archive only"
        studio.ids = {"A": a["id"], "B": b["id"], "C": c["id"], "a0": a0, "a1": a1, "c0": c0}
        yield studio


def report(farm, *args: str, tmp_path=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.server.cli", "report", "render-time",
                           "--database", farm.database_url, *args], capture_output=True, text=True, timeout=120)


def rows(farm, *args: str) -> list[dict]:
    done = report(farm, *args)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


MARCH = ("--from", "2025-03-01", "--to", "2025-04-01")


def test_render_time_per_project_and_user_for_a_month(farm):
    got = rows(farm, *MARCH)
    assert got == [
        {"project": "ads", "user": "bob", "jobs": "1", "runs": "2", "render_hours": "396.5",
         "render_seconds": "1427400.0", "completed_seconds": "1800.0", "failed_seconds": "0.0"},
        {"project": "film", "user": "ann", "jobs": "2", "runs": "4", "render_hours": "8.5",
         "render_seconds": "30600.0", "completed_seconds": "28800.0", "failed_seconds": "1800.0"},
    ], "b1 runs from 03-15 12:00 to the end of March; b0 counts 30 min, a0 one hour of March"


def test_months_add_up_and_the_archived_job_counts_in_february_too(farm):
    feb = rows(farm, "--from", "2025-02-01", "--to", "2025-03-01")
    assert [(r["project"], r["user"], r["runs"], r["render_seconds"]) for r in feb] == \
        [("film", "ann", "1", "3600.0")], "a0's hour before midnight"
    whole = {r["project"]: float(r["render_seconds"]) for r in rows(farm, "--from", "2025-02-01",
                                                                     "--to", "2025-04-01T00:00:00Z")}
    march = {r["project"]: float(r["render_seconds"]) for r in rows(farm, *MARCH)}
    assert whole == {"film": 3600 + march["film"], "ads": march["ads"]}


def test_by_worker_and_per_run_rows(farm):
    by_worker = {r["worker"]: float(r["render_seconds"]) for r in rows(farm, *MARCH, "--by", "worker")}
    assert by_worker == {"w1": 3600 + 1800 + 16.5 * 24 * HOUR, "w2": 3600 + 1800 + 6 * HOUR}
    runs = rows(farm, *MARCH, "--project", "film", "--runs")
    ids = farm.ids
    assert sorted((r["task"], r["worker"], r["status"], r["archived"], r["seconds"]) for r in runs) == sorted([
        (ids["a0"], "w1", "completed", "yes", "3600.0"), (ids["a1"], "w1", "soft-failed", "yes", "1800.0"),
        (ids["a1"], "w2", "completed", "yes", "3600.0"), (ids["c0"], "w2", "completed", "no", "21600.0")])
    (a0,) = [r for r in runs if r["task"] == ids["a0"]]
    assert (a0["project"], a0["user"], a0["manager"], a0["job"], a0["task_type"], a0["started"], a0["finished"]) == \
        ("film", "ann", "m1", ids["A"], "sleep", "2025-02-28T23:00:00Z", "2025-03-01T01:00:00Z")
    assert rows(farm, *MARCH, "--user", "bob", "--by", "user") == [
        {"user": "bob", "jobs": "1", "runs": "2", "render_hours": "396.5", "render_seconds": "1427400.0",
         "completed_seconds": "1800.0", "failed_seconds": "0.0"}]


def test_the_csv_goes_to_a_file(farm, tmp_path):
    target = tmp_path / "march.csv"
    done = report(farm, *MARCH, "--csv", str(target))
    assert done.returncode == 0, done.stderr
    assert "wrote 2 rows" in done.stderr
    assert [r["project"] for r in csv.DictReader(target.open())] == ["ads", "film"]


@pytest.mark.parametrize("args, message", [
    (("--from", "2025-03-01", "--to", "2025-02-01"), "--to must be after --from"),
    (("--from", "March"), "is not a date"),
    (("--from", "2025-03-01", "--by", "project,colour"), "group by one or more of"),
])
def test_bad_arguments_are_refused_with_a_message(farm, args, message):
    done = report(farm, *args)
    assert done.returncode == 2 and message in done.stderr, (done.returncode, done.stderr)
    assert done.stdout == ""
