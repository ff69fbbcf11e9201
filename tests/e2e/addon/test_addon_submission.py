"""A Submission on its thread, as the UI runs it: messages in order, Cancel, failures, clean-up.

Real .blend files (made by Blender) and a real Server; no Blender process needed.
"""

import threading

import pytest

from blender_addon import job_builder, submission
from blender_addon.client import Client
from blender_addon.job_types import parse_job_types

pytestmark = pytest.mark.e2e


def make(addon_server, project, *, mode="upload", shared=None, variables=None, temp_copy=True):
    client = Client(addon_server.url, addon_server.users["anna"])
    blend = project / "scenes" / "shot.blend"
    scene = job_builder.SceneInfo(blend_path=str(blend), frame_start=1, frame_end=3,
                                  dependencies=[str(project / "textures" / "checker.png")])
    farm_settings = job_builder.FarmSettings(project="films", file_mode=mode, shared_storage=shared or "",
                                             variables=variables, username="anna")
    panel = job_builder.PanelSettings(output_path=(shared + "/out/") if shared else "")
    plan = job_builder.plan_jobs(scene, panel, farm_settings, parse_job_types(client.job_types()))
    to_pack = blend
    if temp_copy:
        to_pack = blend.with_name("shot.flamenco.blend")
        to_pack.write_bytes(blend.read_bytes())
    return submission.Submission(client, plan, farm_settings, str(to_pack), blend_name="shot.blend",
                                 cleanup=[str(to_pack)] if temp_copy else [])


def wait(sub: submission.Submission) -> list:
    sub.thread.join(timeout=60)
    assert not sub.thread.is_alive()
    return sub.drain()


def test_a_threaded_submission_reports_progress_then_the_job(addon_server, project):
    sub = make(addon_server, project)
    sub.start()
    msgs = wait(sub)
    stages = [m.stage for m in msgs if isinstance(m, submission.Progress)]
    for stage in ("Finding dependencies", "Hashing files", "Checking files", "Submitting"):
        assert stage in stages
    assert stages.index("Hashing files") < stages.index("Checking files") < stages.index("Submitting")
    final = msgs[-1]
    assert isinstance(final, submission.Submitted) and sub.result is final
    assert final.files == 3 and final.job_id
    assert addon_server.api("GET", f"/api/jobs/{final.job_id}")["settings"]["filepath"] == "scenes/shot.blend"
    assert not (project / "scenes" / "shot.flamenco.blend").exists(), "the temporary copy is removed"
    assert "submitted" in final.summary()


def test_cancel_while_uploading_submits_nothing_and_cleans_up(addon_server, project):
    (project / "textures" / "checker.png").write_bytes(b"\x89PNG" + b"x" * 3_000_000)
    sub = make(addon_server, project)
    jobs_before = addon_server.api("GET", "/api/jobs?limit=500")["total"]
    uploading = threading.Event()
    original = sub._progress

    def progress(stage, fraction, text=""):
        original(stage, fraction, text)
        if stage == "Uploading":
            uploading.set()
            sub.cancel()
    sub._progress = progress
    sub.start()
    msgs = wait(sub)
    assert uploading.is_set()
    assert isinstance(msgs[-1], submission.Canceled)
    assert addon_server.api("GET", "/api/jobs?limit=500")["total"] == jobs_before
    assert not (project / "scenes" / "shot.flamenco.blend").exists()


def test_shared_storage_pack_is_removed_when_the_submit_fails(addon_server, project, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    sub = make(addon_server, project, mode="shared", shared=str(shared))
    sub.plan.jobs[0].doc["priority"] = 1000  # refused by the Server after packing
    sub.run()
    [failed] = [m for m in sub.drain() if isinstance(m, submission.Failed)]
    assert "priority" in failed.message
    assert list(shared.iterdir()) == []


def test_an_unreachable_server_is_a_plain_failure(addon_server, project):
    sub = make(addon_server, project, temp_copy=False)
    sub.client = Client("http://127.0.0.1:9", "x", timeout=3)
    sub.run()
    final = sub.drain()[-1]
    assert isinstance(final, submission.Failed) and "Cannot reach the Flamenco Server" in final.message
    assert (project / "scenes" / "shot.blend").exists(), "only the temporary copy is ever removed"
