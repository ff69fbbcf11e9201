"""Retention: finished jobs are archived `archive_after_days` after their last change by housekeeping's
`tick(now)`, with their files, outputs and task logs removed and their task runs kept (archive record and
archived_run rows); unfinished jobs, jobs that unfinished jobs wait for and recent jobs stay; 0 = never.
On SQLite and PostgreSQL, through a real Server whose clock the test sets."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json

import pytest

from backend.errors import ApiError
from backend.server import archive
from backend.server.housekeeping import Housekeeping
from backend.server.models import ArchivedRun, Job, JobArchive
from tests.integration.server.timed_studio import run, submit, timed_studio, upload_output_and_log, utc
from tests.unit.server.server_testdb import DB_KINDS

T0 = utc("2025-03-01 10:00:00")
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(params=DB_KINDS)
def studio(request, tmp_path):
    with timed_studio(request.param, tmp_path, request, T0, archive_after_days=30) as s:
        yield s


def _finish(studio, job_id, task_ids, at: dt.datetime, workers=("w1", "w2")):
    """Every task of the job runs one hour and completes; the Server processes it at `at`."""
    studio.time.set(at)
    for i, tid in enumerate(task_ids):
        run(studio, tid, workers[i % len(workers)], at - 2 * HOUR, at - HOUR)
    assert studio.admin.get(f"/api/jobs/{job_id}").json()["status"] == "completed"


def _tick(studio, when: dt.datetime) -> int:
    with studio.db.connection_context():
        return Housekeeping(studio.ctx).tick(when)


def _archived_ids(studio) -> set[str]:
    with studio.db.connection_context():
        return {a.id for a in JobArchive.select()}


def test_finished_jobs_are_archived_after_the_configured_days_with_their_files_and_logs_removed(studio):
    blend = b"BLENDER-v300 a scene only job A uses"
    sha_blend = hashlib.sha256(blend).hexdigest()
    assert studio.ann.put(f"/api/files/{sha_blend}", data=blend).status_code == 201
    old, old_tasks = submit(studio, studio.ann, "film",
                            files={"scene.blend": {"sha256": sha_blend, "size": len(blend)}})
    recent, recent_tasks = submit(studio, studio.bob, "ads")
    running, running_tasks = submit(studio, studio.ann, "film", frames="1")
    waited_for, waited_tasks = submit(studio, studio.ann, "film")
    waiting, _ = submit(studio, studio.ann, "film", depends_on=[waited_for["id"]], frames="1")

    studio.time.set(T0 + HOUR)
    run(studio, old_tasks[0], "w1", T0 + 0.2 * HOUR, T0 + 0.4 * HOUR, status="soft-failed")  # again on w2
    output_sha = upload_output_and_log(studio, old["id"], old_tasks[0], b"\x89PNG frame one")
    _finish(studio, old["id"], old_tasks, T0 + 3 * HOUR)
    _finish(studio, waited_for["id"], waited_tasks, T0 + 3 * HOUR)
    _finish(studio, recent["id"], recent_tasks, T0 + 20 * DAY)
    studio.time.set(T0 + 20 * DAY + HOUR)
    run(studio, running_tasks[0], "w1", T0 + 20 * DAY, None)

    store = studio.ctx.store
    log_dir = store.logs / old["id"]
    assert store.has(sha_blend) and store.has(output_sha) and log_dir.is_dir()
    runs_before = studio.ann.get(f"/api/jobs/{old['id']}/runs").json()["runs"]
    assert len(runs_before) == 3, runs_before

    _tick(studio, T0 + 3 * HOUR + 29 * DAY)
    assert _archived_ids(studio) == set(), "not yet 30 days"

    _tick(studio, T0 + 3 * HOUR + 30 * DAY + HOUR)
    assert _archived_ids(studio) == {old["id"]}, "only the old finished job no unfinished job waits for"
    assert studio.ann.get(f"/api/jobs/{old['id']}").status_code == 404
    for job in (recent, running, waited_for, waiting):
        assert studio.admin.get(f"/api/jobs/{job['id']}").status_code == 200
    assert not store.has(sha_blend) and not store.has(output_sha), "files and outputs no other job uses are gone"
    assert not log_dir.exists(), "and its full task logs"

    got = studio.ann.get(f"/api/archives/{old['id']}")
    assert got.status_code == 200
    record = json.loads(gzip.decompress(got.content))
    assert record["job"]["project_name"] == "film" and record["job"]["user_name"] == "ann"
    runs = sorted((r["task"], r["worker"], r["started"], r["finished"], r["status"])
                  for t in record["tasks"] for r in t["runs"])
    assert runs == sorted((r["task"], r["worker"], r["started"], r["finished"], r["status"]) for r in runs_before)
    assert ("w1", "soft-failed") in {(r[1], r[4]) for r in runs} and ("w2", "completed") in {(r[1], r[4]) for r in runs}
    with studio.db.connection_context():
        kept = sorted((r.task, r.worker, r.status, r.project_name, r.user_name, r.manager_name, r.task_type)
                      for r in ArchivedRun.select().where(ArchivedRun.job == old["id"]))
        row = JobArchive.get_by_id(old["id"])
    assert kept == sorted((r[0], r[1], r[4], "film", "ann", "m1", "sleep") for r in runs)
    assert row.archived_by.startswith("retention")

    studio.time.set(T0 + 40 * DAY)
    run(studio, running_tasks[0], "w1", T0 + 20 * DAY, T0 + 40 * DAY)
    (waiting_task,) = [t["_id"] for t in studio.manager.get(
        f"/api/managers/{studio.manager_id}/depsgraph").json()["depsgraph"] if t["job"] == waiting["id"]]
    run(studio, waiting_task, "w2", T0 + 39 * DAY, T0 + 40 * DAY)
    _tick(studio, T0 + 45 * DAY)
    assert _archived_ids(studio) == {old["id"], waited_for["id"]}, \
        "the job another waited for goes once that one finished; the one finished 25 days ago stays"
    _tick(studio, T0 + 71 * DAY)
    assert _archived_ids(studio) == {j["id"] for j in (old, recent, running, waited_for, waiting)}


def test_zero_days_archives_nothing(studio):
    job, tasks = submit(studio, studio.ann, "film")
    _finish(studio, job["id"], tasks, T0 + HOUR)
    studio.ctx.config.archive_after_days = 0
    _tick(studio, T0 + 3650 * DAY)
    assert _archived_ids(studio) == set()
    assert studio.ann.get(f"/api/jobs/{job['id']}").status_code == 200


def test_a_job_archived_by_another_process_meanwhile_keeps_that_ones_record(studio, monkeypatch):
    """Two Server processes' retention can pick the same job. Process B has written its record beside
    its place when process A archives the job: B's transaction finds the job gone (404) and must leave
    A's record as it is, and nothing of its own behind."""
    job, tasks = submit(studio, studio.ann, "film")
    _finish(studio, job["id"], tasks, T0 + HOUR)
    store, first = studio.ctx.store, {}
    stage = store.stage_archive

    def stage_while_a_archives(job_id, data):
        staged = stage(job_id, data)
        if not first:  # B staged; now A archives the whole job before B's transaction
            first["row"] = None
            first["row"] = archive.archive_job(studio.ctx, Job.get_by_id(job_id), "process A")
        return staged

    monkeypatch.setattr(store, "stage_archive", stage_while_a_archives)
    with studio.db.connection_context():
        with pytest.raises(ApiError) as refused:
            archive.archive_job(studio.ctx, Job.get_by_id(job["id"]), "process B")
    assert refused.value.status == 404
    path = store.archive_path(job["id"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first["row"].sha256, "A's record, whole"
    assert [p.name for p in path.parent.iterdir()] == [path.name], "nothing of B's left"
    assert _archived_ids(studio) == {job["id"]}
