"""blender-bake: settings checks and the task graph, without Blender."""

from __future__ import annotations

import pytest

from backend.server import jobs
from backend.server.compilers import SettingError
from backend.server.compilers.blender_bake import BAKE_TASK_TYPE, CACHE_TYPES
from backend.web import ApiError
from shared.protocol import DEFAULT_WORKER_TASK_TYPES
from tests.unit.server.compile_helpers import JobTypeCase

BLEND = "/shared/shot1/scene.flamenco.blend"
CASE = JobTypeCase("blender-bake", "Shot one (bake)", DEFAULT_WORKER_TASK_TYPES)
ctx, compile_ = CASE.ctx, CASE.compile


def test_prepare_then_parallel_parts_then_finish(jt):
    tasks = compile_(jt, {"filepath": BLEND, "parts": 3})
    assert [t.name for t in tasks] == ["bake-prepare", "bake-1-of-3", "bake-2-of-3", "bake-3-of-3", "bake-finish"]
    prepare, *parts, finish = tasks
    assert prepare.parents == []
    assert all(t.parents == [prepare] for t in parts)
    assert finish.parents == parts
    assert {t.task_type for t in tasks} == {BAKE_TASK_TYPE}
    assert [c["settings"]["action"] for t in tasks for c in t.commands] == \
        ["prepare", "bake", "bake", "bake", "finish"]
    assert [(c["settings"]["part"], c["settings"]["parts"]) for t in parts for c in t.commands] == \
        [(1, 3), (2, 3), (3, 3)]
    assert all("part" not in c["settings"] for t in (prepare, finish) for c in t.commands)


def test_every_step_gets_the_same_scope(jt):
    tasks = compile_(jt, {"filepath": BLEND, "cache_types": ["cloth", "rigid_body"], "objects": ["Sheet", "Flag"],
                          "mute_unrelated": False, "blender_cmd": "/opt/blender/blender"})
    for task in tasks:
        (cmd,) = task.commands
        assert cmd["name"] == "blender_bake"
        s = cmd["settings"]
        assert s["filepath"] == BLEND and s["blender_cmd"] == "/opt/blender/blender"
        assert s["cache_types"] == ["cloth", "rigid_body"] and s["objects"] == ["Sheet", "Flag"]
        assert s["mute_unrelated"] is False and "frame_end" not in s


def test_defaults_bake_everything_in_two_parts(jt):
    tasks = compile_(jt, {"filepath": BLEND})
    assert [t.name for t in tasks] == ["bake-prepare", "bake-1-of-2", "bake-2-of-2", "bake-finish"]
    s = tasks[0].commands[0]["settings"]
    assert s["cache_types"] == list(CACHE_TYPES) and "objects" not in s
    assert s["blender_cmd"] == "{blender}" and s["mute_unrelated"] is True


def test_frames_cap_the_bake_at_their_last_frame(jt):
    """Caches keep their own start (a simulation started later is another simulation)."""
    tasks = compile_(jt, {"filepath": BLEND, "frames": "10-20,40,35"})
    assert {c["settings"]["frame_end"] for t in tasks for c in t.commands} == {40}


def test_one_part_is_still_prepare_bake_finish(jt):
    tasks = compile_(jt, {"filepath": BLEND, "parts": 1})
    assert [t.name for t in tasks] == ["bake-prepare", "bake-1-of-1", "bake-finish"]


def test_bake_tasks_run_on_any_default_worker(jt):
    values = jt.validate({"filepath": BLEND})
    assert jt.task_types(values, ctx()) <= set(DEFAULT_WORKER_TASK_TYPES)


def test_schema_is_served_with_the_settings_the_addon_fills(jt):
    doc = jt.describe()
    assert doc["name"] == "blender-bake"
    keys = [s["key"] for s in doc["settings"]]
    assert keys[:2] == ["filepath", "frames"]
    assert {"parts", "cache_types", "objects", "mute_unrelated", "blender_cmd"} <= set(keys)
    parts = next(s for s in doc["settings"] if s["key"] == "parts")
    assert parts["minimum"] == 1 and parts["maximum"] == 32 and parts["default"] == 2


@pytest.mark.parametrize("extra, key, words", [
    ({"filepath": None}, "filepath", "is required"),
    ({"filepath": "/shared/shot1/scene.txt"}, "filepath", "is not a .blend file"),
    ({"parts": 0}, "parts", "must be at least 1"),
    ({"parts": 33}, "parts", "must be at most 32"),
    ({"parts": "two"}, "parts", "must be an integer"),
    ({"frames": "20-10"}, "frames", "ends before it starts"),
    ({"cache_types": ["cloth", "smoke"]}, "cache_types", "unknown smoke"),
    ({"cache_types": []}, "cache_types", "may not be empty"),
    ({"cache_types": ["cloth", "cloth"]}, "cache_types", "lists a type twice"),
    ({"cache_types": "cloth"}, "cache_types", "must be a list of strings"),
    ({"objects": ["Sheet", " "]}, "objects", "may not contain empty names"),
    ({"mute_unrelated": "yes"}, "mute_unrelated", "must be true or false"),
    ({"chunk_size": 4}, "chunk_size", "unknown setting"),
])
def test_bad_settings_are_refused_naming_the_setting(jt, extra, key, words):
    raw = {k: v for k, v in {"filepath": BLEND, **extra}.items() if v is not None}
    with pytest.raises(SettingError) as err:
        compile_(jt, raw)
    assert err.value.key == key and words in str(err.value), str(err.value)
    assert str(err.value).startswith(f"setting '{key}': ")


def test_upload_mode_bakes_in_the_job_tree_and_says_what_travels(jt):
    files = {"shots/scene.blend": {"sha256": "a" * 64, "size": 10}}
    prepare, *parts, finish = compile_(jt, {"filepath": "shots/scene.blend", "parts": 2}, ctx("upload", files))
    assert {c["settings"]["filepath"] for t in (prepare, *parts, finish) for c in t.commands} == \
        {"{job_files}/shots/scene.blend"}
    # The prepared .blend only serves the parts and the finish; each part fetches it; the finish
    # fetches everything the job made (staged caches, fluid caches) and publishes the bake.
    assert prepare.io() == {"inputs": [], "outputs": ["shots/scene.blend"], "scratch": True}
    assert [p.io() for p in parts] == [{"inputs": ["shots/scene.blend"], "outputs": [""]}] * 2
    assert finish.io() == {"inputs": [""], "outputs": [""]}
    with pytest.raises(SettingError, match="uploaded files") as err:
        compile_(jt, {"filepath": "other.blend"}, ctx("upload", files))
    assert err.value.key == "filepath"


def test_the_server_answers_400_naming_the_setting(seeded_server):
    body = {"name": "bake", "type": "blender-bake", "settings": {"filepath": BLEND, "cache_types": ["goo"]}}
    with pytest.raises(ApiError) as err:
        jobs.submit_job(seeded_server.ctx, seeded_server.artist, body)
    assert err.value.status == 400 and err.value.code == "invalid_setting"
    assert err.value.message.startswith("setting 'cache_types': unknown goo")


def test_a_render_job_can_depend_on_a_bake_job(seeded_server):
    bake = jobs.submit_job(seeded_server.ctx, seeded_server.artist, {"name": "shot (bake)", "type": "blender-bake",
                                                                     "settings": {"filepath": BLEND, "frames": "1-12"}})
    render = jobs.submit_job(seeded_server.ctx, seeded_server.artist, {
        "name": "shot", "type": "blender-render", "depends_on": [bake.id],
        "settings": {"filepath": BLEND, "frames": "1-12", "render_output": "/render/shot/######"}})
    assert render.blocked and not bake.blocked
