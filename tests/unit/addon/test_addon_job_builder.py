import os

import pytest

from blender_addon import job_builder as jb
from blender_addon.job_types import parse_job_types
from shared.variables import Variables
from tests.unit.addon.addon_schemas import ALL

TYPES = parse_job_types(ALL)


@pytest.fixture
def project(tmp_path):
    """project/.blender_project, project/scenes/shot.blend, project/textures/t.png, elsewhere/x.png"""
    root = tmp_path / "project"
    (root / ".blender_project").mkdir(parents=True)
    (root / "scenes").mkdir()
    (root / "textures").mkdir()
    (root / "scenes" / "shot.blend").write_bytes(b"BLENDER")
    (root / "textures" / "t.png").write_bytes(b"png")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.png").write_bytes(b"png")
    return root


def scene_at(project, **kw):
    defaults = dict(blend_path=str(project / "scenes" / "shot.blend"), frame_start=1, frame_end=10,
                    fps=24.0, image_format="PNG", file_extension=".png",
                    dependencies=[str(project / "textures" / "t.png")])
    defaults.update(kw)
    return jb.SceneInfo(**defaults)


def farm_settings(**kw):
    defaults = dict(project="films", platform="linux")
    defaults.update(kw)
    return jb.FarmSettings(**defaults)


def test_upload_plan_for_a_render(project):
    panel = jb.PanelSettings(chunk_size=3, priority=70, worker_tag="gpu", start_paused=True,
                             generic={"blender-render": {"samples": 8}})
    plan = jb.plan_jobs(scene_at(project), panel, farm_settings(manager="m1"), TYPES)
    assert plan.project_root == str(project)
    assert plan.local_output == str(project / "scenes" / "render" / "shot" / "######")
    assert plan.warnings == []
    [job] = plan.jobs
    assert job.doc == {
        "name": "shot", "type": "blender-render", "priority": 70, "project": "films", "manager": "m1",
        "start_paused": True, "worker_tag": "gpu",
        "settings": {"filepath": "shot.blend", "frames": "1-10", "chunk_size": 3,
                     "render_output": "shot/######", "format": "PNG", "blender_cmd": "{blender}",
                     "create_video": False, "fps": 24.0, "output_file_extension": ".png",
                     "images_or_video": "images", "samples": 8, "quality": "high"},
    }
    jobs = jb.finalize(plan, "scenes/shot.blend", {"scenes/shot.blend": {"sha256": "a" * 64, "size": 7}})
    assert jobs[0].doc["settings"]["filepath"] == "scenes/shot.blend"
    assert jobs[0].doc["files"] == {"scenes/shot.blend": {"sha256": "a" * 64, "size": 7}}


def test_frames_default_to_the_scenes_range_and_the_panel_overrides(project):
    scene = scene_at(project, frame_start=5, frame_end=20, frame_step=5)
    assert jb.frame_spec(jb.PanelSettings(), scene) == "5-20x5"
    assert jb.frame_spec(jb.PanelSettings(frame_range=" 1..3, 7 "), scene) == "1-3,7"
    with pytest.raises(jb.BuildError, match="Frame range: .*ends before it starts"):
        jb.frame_spec(jb.PanelSettings(frame_range="9-1"), scene)


@pytest.mark.parametrize("output, expected", [
    ("", "scenes/render/shot/######"),
    ("//frames/", "scenes/frames/######"),
    ("//out/{name}/img_", "scenes/out/shot/img_######"),
    ("//out/img.####.png", "scenes/out/img.####.png"),
    ("//out/img", "scenes/out/img_######"),
])
def test_local_output_pattern(project, output, expected):
    assert jb.local_output_pattern(output, scene_at(project), "shot") == str(project / expected)


def test_upload_render_output_is_relative_to_the_jobs_outputs(project):
    local = jb.local_output_pattern("/renders/shot1/frame_####", scene_at(project), "x")
    assert jb.farm_output(local, farm_settings()) == ("shot1/frame_####", None)


def test_shared_mode_translates_paths_with_two_way_variables(project, tmp_path):
    variables = Variables.from_dict({"render": {"direction": "twoway", "values": [
        {"platform": "linux", "value": str(tmp_path / "render")},
        {"platform": "windows", "value": "R:/"}]}})
    f = farm_settings(file_mode="shared", shared_storage=str(tmp_path / "jobs"), variables=variables)
    panel = jb.PanelSettings(output_path=str(tmp_path / "render" / "shot1") + "/")
    plan = jb.plan_jobs(scene_at(project), panel, f, TYPES)
    assert plan.jobs[0].doc["settings"]["render_output"] == "{render}/shot1/######"
    assert plan.warnings == []
    assert variables.expand("{render}/shot1/######", "windows") == "R:/shot1/######"


def test_shared_mode_warns_about_an_output_path_the_farm_cannot_reach(project, tmp_path):
    f = farm_settings(file_mode="shared", shared_storage=str(tmp_path / "jobs"), variables=Variables())
    plan = jb.plan_jobs(scene_at(project), jb.PanelSettings(output_path="/home/me/render/"), f, TYPES)
    assert plan.jobs[0].doc["settings"]["render_output"] == "/home/me/render/######"
    assert any("/home/me/render/######" in w and "not on a path the farm knows" in w for w in plan.warnings)


def test_warnings_for_unsaved_changes_outside_and_missing_files(project, tmp_path):
    scene = scene_at(project, is_dirty=True, dependencies=[
        str(project / "textures" / "t.png"), str(tmp_path / "elsewhere" / "x.png"),
        str(project / "textures" / "gone.png")])
    plan = jb.plan_jobs(scene, jb.PanelSettings(), farm_settings(), TYPES)
    text = "\n".join(plan.warnings)
    assert "unsaved changes" in text
    assert "1 file is outside the project folder" in text and "x.png" in text
    assert "1 file is missing" in text and "gone.png" in text


def test_project_root_finders(project, tmp_path):
    blend = str(project / "scenes" / "shot.blend")
    assert jb.find_project_root(blend, "AUTO") == str(project)
    assert jb.find_project_root(blend, "BLENDER_PROJECT") == str(project)
    assert jb.find_project_root(blend, "NONE") == str(project / "scenes")
    assert jb.find_project_root(blend, "GIT") == str(project / "scenes")
    assert jb.find_project_root(blend, "AUTO", explicit=str(project)) == str(project)
    with pytest.raises(jb.BuildError, match="not inside the project folder"):
        jb.find_project_root(blend, "AUTO", explicit=str(tmp_path / "elsewhere"))


def test_bake_then_render_makes_two_jobs_the_render_depending_on_the_bake(project):
    plan = jb.plan_jobs(scene_at(project), jb.PanelSettings(bake_then_render=True), farm_settings(), TYPES)
    bake, render = plan.jobs
    assert bake.doc["type"] == "blender-bake" and bake.doc["name"] == "shot (bake)"
    assert bake.doc["settings"] == {"filepath": "shot.blend", "frames": "1-10"}
    assert not bake.depends_on_previous and render.depends_on_previous
    jb.finalize(plan, "scenes/shot.blend", {})
    assert bake.doc["settings"]["filepath"] == render.doc["settings"]["filepath"] == "scenes/shot.blend"


def test_bake_then_render_needs_the_bake_job_type(project):
    types = [t for t in TYPES if t.name != "blender-bake"]
    with pytest.raises(jb.BuildError, match="needs the 'blender-bake' job type"):
        jb.plan_jobs(scene_at(project), jb.PanelSettings(bake_then_render=True), farm_settings(), types)


@pytest.mark.parametrize("scene_kw, panel_kw, farm_kw, message", [
    ({"blend_path": ""}, {}, {}, "Save the .blend file first"),
    ({}, {"job_type": "nope"}, {}, "no job type 'nope'. Known types: blender-bake, blender-render, sleep"),
    ({}, {}, {"project": ""}, "No project is chosen"),
    ({}, {}, {"file_mode": "shared"}, "needs the shared storage path"),
    ({}, {"chunk_size": 0}, {}, "chunk size must be 1 or more"),
    ({}, {"priority": 101}, {}, "between 1 and 100"),
    ({}, {"make_video": True}, {}, "Making a video needs shared storage"),
    ({}, {"generic": {"blender-render": {"samples": 0}}}, {}, "'Samples' must be at least 1"),
])
def test_what_stops_a_submission_is_said_plainly(project, scene_kw, panel_kw, farm_kw, message):
    with pytest.raises(jb.BuildError, match=message.replace(".", r"\.").replace("(", r"\(")):
        jb.plan_jobs(scene_at(project, **scene_kw), jb.PanelSettings(**panel_kw), farm_settings(**farm_kw), TYPES)


def test_video_settings_in_shared_mode(project, tmp_path):
    f = farm_settings(file_mode="shared", shared_storage=str(tmp_path))
    scene = scene_at(project, fps=30000 / 1001, resolution_x=101, resolution_y=100)
    plan = jb.plan_jobs(scene, jb.PanelSettings(make_video=True, output_path=str(tmp_path / "o") + "/"),
                        f, TYPES)
    settings = plan.jobs[0].doc["settings"]
    assert settings["create_video"] is True and settings["fps"] == pytest.approx(29.97003)
    assert any("resolution is odd" in w for w in plan.warnings)


def test_a_movie_output_format_is_left_to_the_blend_file_with_a_warning(project):
    scene = scene_at(project, image_format="FFMPEG", file_extension=".mp4")
    plan = jb.plan_jobs(scene, jb.PanelSettings(), farm_settings(), TYPES)
    settings = plan.jobs[0].doc["settings"]
    assert "format" not in settings and settings["images_or_video"] == "video"
    assert any("output is a video (FFMPEG)" in w for w in plan.warnings)


def test_pack_dir_name():
    assert jb.pack_dir_name("shot 1", "anna b", "2024-05-06T07:08:09.123+02:00") == "20240506-070809-anna_b-shot_1"


def test_blender_abspath_needs_a_saved_file_for_relative_paths():
    with pytest.raises(jb.BuildError, match="never saved"):
        jb.blender_abspath("//x", "")
    assert jb.blender_abspath("/a/b/../c/", "") == os.path.normpath("/a/c") + os.sep


# --- issue 14 ----------------------------------------------------------------------------

STILL = parse_job_types([{"name": "blender-render-still", "label": "Distributed still", "settings": [
    {"key": "filepath", "type": "path", "required": True},
    {"key": "frame", "type": "integer", "required": True, "minimum": 0},
    {"key": "render_output", "type": "path", "required": True},
    {"key": "samples", "type": "integer", "minimum": 1},
    {"key": "parts", "type": "integer", "default": 4, "minimum": 2}]}])


def test_a_still_renders_the_scenes_current_frame_and_leaves_unset_samples_out(project):
    """Point 4: 'frame' comes from the scene; an optional number the panel leaves unticked is not sent."""
    panel = jb.PanelSettings(job_type="blender-render-still", generic={"blender-render-still": {"samples": None}})
    [job] = jb.plan_jobs(scene_at(project, frame_current=7), panel, farm_settings(), STILL).jobs
    assert job.doc["settings"]["frame"] == 7 and "samples" not in job.doc["settings"]
    assert job.doc["settings"]["parts"] == 4
    assert not STILL[0].has("frames") and not STILL[0].has("chunk_size")


@pytest.mark.parametrize("path, relative", [("renders/frame_####", True), ("//renders/x", False),
                                             ("/abs/x", False), ("C:\\out\\x", False), ("{render}/x", False),
                                             ("", False)])
def test_a_relative_output_path_is_taken_from_the_blend_file_and_explained(project, path, relative):
    """Point 5: 'renders/frame_####' is relative to the .blend, not to Blender's working directory."""
    assert jb.is_bare_relative(path) is relative
    if not relative:
        return
    plan = jb.plan_jobs(scene_at(project), jb.PanelSettings(output_path=path), farm_settings(), TYPES)
    assert plan.local_output == str(project / "scenes" / "renders" / "frame_####")
    assert any("relative" in w and "'//renders/frame_####'" in w for w in plan.warnings), plan.warnings


def test_a_job_type_with_an_unknown_setting_type_cannot_be_submitted(project):
    types = parse_job_types([{"name": "blender-render", "settings": [{"key": "x", "type": "tensor"}]}])
    with pytest.raises(jb.BuildError, match="unknown setting type 'tensor'"):
        jb.plan_jobs(scene_at(project), jb.PanelSettings(), farm_settings(), types)


def test_the_submitted_summary_counts_in_words():
    from blender_addon.submission import Submitted
    one = Submitted(["j1"], [{"name": "shot"}], files=1, uploaded_files=1, uploaded_bytes=2_000_000)
    assert one.summary() == "Job 'shot' submitted: 1 file, 1 uploaded (2.0 MB)."
    assert "3 files, 0 uploaded" in Submitted(["j1"], [{"name": "shot"}], files=3).summary()
