"""The add-on's logic against a real Flamenco Server (no Blender): sign-in, Test connection,
job types, the settings contract, the job list and its actions, fetching outputs."""

import hashlib
import os

import pytest

from blender_addon import background, connection, job_builder, joblist, outputs
from blender_addon.client import AuthError, Client, ClientError
from blender_addon.job_types import parse_job_types
from shared.variables import Variables
from tests.integration.addon import farm_server


def signed_in(addon_server, user="anna") -> Client:
    return Client(addon_server.url, addon_server.users[user])


def closed_port_url() -> str:
    return f"http://127.0.0.1:{farm_server.free_port()}"


# --- signing in and Test connection -------------------------------------------------

def test_sign_in_gives_a_token_that_works_and_wrong_passwords_are_said_plainly(addon_server):
    c = Client(addon_server.url)
    answer = c.login("anna", farm_server.PASSWORD)
    assert answer["user"]["name"] == "anna"
    assert Client(addon_server.url, answer["token"]).me()["name"] == "anna"
    with pytest.raises(AuthError, match="(?i)wrong user name or password"):
        c.login("anna", "not-the-password")


@pytest.mark.parametrize("case, problem, words", [
    ("unreachable", connection.UNREACHABLE, "connection refused"),
    ("no-token", connection.NOT_SIGNED_IN, "not signed in"),
    ("bad-token", connection.BAD_TOKEN, "does not accept your sign-in token"),
    ("unknown-project", connection.UNKNOWN_PROJECT, "'nope' does not exist on the Server or is not one of yours"),
    ("no-manager", connection.NO_MANAGER, "No Manager is linked to the project 'empty'"),
    ("manager-never-seen", connection.MANAGER_OFFLINE, "m2 has never contacted the Server"),
    ("ok", connection.OK, "Connected to Flamenco 0.1.0 as anna; project 'films' runs on m1"),
])
def test_test_connection_names_exactly_what_is_wrong(addon_server, case, problem, words):
    url, token, project = addon_server.url, addon_server.users["anna"], "films"
    if case == "unreachable":
        url = closed_port_url()
    elif case == "no-token":
        token = ""
    elif case == "bad-token":
        token = "0000000000000000.not-a-real-secret"
    elif case == "unknown-project":
        project = "nope"
    elif case == "no-manager":
        project = "empty"
    elif case == "manager-never-seen":
        project = "idle"
    report = connection.check_connection(Client(url, token, timeout=5), project)
    assert report.problem == problem, report.message
    assert words in report.message
    assert report.ok == (problem == connection.OK)


def test_project_list_for_the_preferences(addon_server):
    report = connection.check_connection(signed_in(addon_server), "films")
    assert report.projects == ["empty", "films", "idle"] and report.managers == ["m1"]


# --- job types and the settings contract -----------------------------------------------

def test_the_servers_job_types_parse_and_studio_types_show_up(addon_server):
    types = {t.name: t for t in parse_job_types(signed_in(addon_server).job_types())}
    assert {"blender-render", "sleep", "exec-command", "blender-bake", "studio-bake"} <= set(types)
    render = types["blender-render"]
    assert render.spec("filepath").required and render.spec("chunk_size").minimum == 1
    assert types["blender-bake"].spec("parts").minimum == 1
    studio = types["studio-bake"]
    assert [s.key for s in studio.generic_settings] == ["bake_mode"]
    assert studio.spec("bake_mode").choices == ("all", "cloth-only")


def _upload(c: Client, data: bytes, tmp_path) -> dict:
    sha = hashlib.sha256(data).hexdigest()
    path = tmp_path / sha[:8]
    path.write_bytes(data)
    if c.files_check([(sha, len(data))]):
        c.upload_file(sha, str(path), len(data))
    return {"sha256": sha, "size": len(data)}


def _scene(tmp_path, **kw) -> job_builder.SceneInfo:
    blend = tmp_path / "proj" / "scenes" / "shot.blend"
    blend.parent.mkdir(parents=True, exist_ok=True)
    blend.write_bytes(b"BLENDER-v300")
    return job_builder.SceneInfo(blend_path=str(blend), frame_start=1, frame_end=4, **kw)


def test_upload_mode_jobs_the_addon_builds_are_accepted(addon_server, tmp_path):
    c = signed_in(addon_server)
    types = parse_job_types(c.job_types())
    panel = job_builder.PanelSettings(chunk_size=2, priority=60, worker_tag="linux", start_paused=True)
    plan = job_builder.plan_jobs(_scene(tmp_path), panel, job_builder.FarmSettings(project="films"), types)
    files = {"scenes/shot.blend": _upload(c, b"BLENDER-v300 scene", tmp_path),
             "textures/t.png": _upload(c, b"png bytes", tmp_path)}
    [job] = job_builder.finalize(plan, "scenes/shot.blend", files)
    created = c.submit_job(job.doc)
    assert created["status"] == "paused" and created["files_mode"] == "upload"
    assert created["settings"]["render_output"] == "shot/######" and created["priority"] == 60
    assert created["worker_tag"] == "linux" and created["manager_name"] == "m1"
    assert c.get(f"/api/jobs/{created['id']}/files")["files"] == files
    tasks = c.get(f"/api/jobs/{created['id']}/tasks")
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    assert [t["name"] for t in tasks] == ["blender-render-1-2", "blender-render-3-4", "move-to-final"]
    cmd = c.get(f"/api/tasks/{tasks[0]['id']}")["commands"][0]["settings"]
    assert cmd["filepath"] == "{job_files}/scenes/shot.blend"
    assert cmd["render_output"].startswith("{job_output}/shot__intermediate-")
    move = c.get(f"/api/tasks/{tasks[2]['id']}")["commands"][0]["settings"]
    assert move["dest"] == "{job_output}/shot"


def test_the_server_checks_the_job_before_anything_is_packed(addon_server, tmp_path):
    c = signed_in(addon_server)
    types = parse_job_types(c.job_types())
    plan = job_builder.plan_jobs(_scene(tmp_path), job_builder.PanelSettings(make_video=True),
                                 job_builder.FarmSettings(project="films"), types)
    (doc,) = job_builder.check_docs(plan, "upload")
    got = c.validate_job(doc)
    assert got["valid"] is True and got["files_mode"] == "upload" and "video-encoding" in got["task_types"]
    doc["settings"]["frames"] = "10-1"
    with pytest.raises(ClientError, match="setting 'frames'"):
        c.validate_job(doc)


def test_shared_mode_jobs_use_the_managers_two_way_variables(addon_server, tmp_path):
    c = signed_in(addon_server)
    storage = tmp_path / "shared"
    variables = {"render": {"direction": "twoway", "values": [
        {"platform": "linux", "value": str(storage / "render")},
        {"platform": "windows", "value": "R:/"}]},
        "job_storage": {"direction": "twoway", "values": [
            {"platform": "linux", "value": str(storage / "jobs")},
            {"platform": "windows", "value": "J:/"}]}}
    addon_server.announce_manager("m1", variables=variables)
    try:
        doc = next(m for m in c.managers() if m["name"] == "m1")
        vs = Variables.from_dict(doc["variables"])
        f = job_builder.FarmSettings(project="films", file_mode="shared", shared_storage=str(storage / "jobs"),
                                     variables=vs)
        panel = job_builder.PanelSettings(output_path=str(storage / "render" / "shot1") + "/", make_video=True)
        plan = job_builder.plan_jobs(_scene(tmp_path, fps=25.0), panel, f, parse_job_types(c.job_types()))
        assert plan.warnings == []
        blend, warning = job_builder.to_farm_path(str(storage / "jobs" / "pack1" / "scenes" / "shot.blend"), f, "pack")
        assert (blend, warning) == ("{job_storage}/pack1/scenes/shot.blend", None)
        [job] = job_builder.finalize(plan, blend, None)
        created = c.submit_job(job.doc)
        assert created["files_mode"] == "shared"
        assert created["settings"]["render_output"] == "{render}/shot1/######"
        tasks = c.get(f"/api/jobs/{created['id']}/tasks")
        tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
        assert [t["name"] for t in tasks][-2:] == ["create-video", "move-to-final"]
        assert vs.expand(created["settings"]["render_output"], "windows") == "R:/shot1/######"
    finally:
        addon_server.announce_manager("m1")


def test_a_refused_job_says_why_in_the_servers_words(addon_server):
    c = signed_in(addon_server)
    with pytest.raises(ClientError, match="setting 'frames'") as info:
        c.submit_job({"name": "x", "type": "sleep", "project": "films", "settings": {"frames": "9-1"}})
    assert info.value.status == 400


# --- the job list, actions, outputs ----------------------------------------------------

def _sleep_job(c: Client, name: str, **kw) -> dict:
    return c.submit_job({"name": name, "type": "sleep", "project": "films",
                         "settings": {"frames": "1-4", "time_in_seconds": 0}, **kw})


def test_job_list_refresh_and_actions(addon_server, tmp_path):
    c = signed_in(addon_server)
    job = _sleep_job(c, "list me")
    msg = background.fetch_jobs(c, "films", 50, str(tmp_path / "thumbs"))
    assert isinstance(msg, background.JobsUpdated)
    model = joblist.JobList()
    rows = model.update(msg.docs)
    row = model.row(job["id"])
    assert row is not None and row.status == "queued" and row.progress == 0.0
    assert row.actions == ["cancel", "pause"]  # nothing to requeue (issue 14, point 3)
    assert rows[0].created >= rows[-1].created

    done = background.job_action(c, job["id"], "pause")
    assert isinstance(done, background.ActionDone)
    assert c.job(job["id"])["status"] in ("paused", "pause-requested")
    assert isinstance(background.job_action(c, job["id"], "resume"), background.ActionDone)
    assert c.job(job["id"])["status"] == "queued"
    assert isinstance(background.job_action(c, job["id"], "cancel"), background.ActionDone)
    assert c.job(job["id"])["status"] in ("canceled", "cancel-requested")
    failed = background.job_action(c, job["id"], "pause")
    assert isinstance(failed, background.ActionFailed) and failed.message.startswith("Could not pause the job:")


def test_job_list_errors_are_messages(addon_server):
    msg = background.fetch_jobs(Client(closed_port_url(), "x"), "films", 10, None)
    assert isinstance(msg, background.JobsFailed) and "connection refused" in msg.message
    msg = background.fetch_jobs(Client(addon_server.url, "0000000000000000.nope"), "films", 10, None)
    assert isinstance(msg, background.JobsFailed) and "token" in msg.message


def test_fetch_outputs_and_the_latest_frame_thumbnail(addon_server, tmp_path):
    c = signed_in(addon_server)
    scene = _scene(tmp_path)
    plan = job_builder.plan_jobs(scene, job_builder.PanelSettings(), job_builder.FarmSettings(project="films"),
                                 parse_job_types(c.job_types()))
    [job] = job_builder.finalize(plan, "scenes/shot.blend",
                                 {"scenes/shot.blend": _upload(c, b"BLENDER for outputs", tmp_path)})
    created = c.submit_job(job.doc)
    local_output = plan.local_output
    assert local_output == str(tmp_path / "proj" / "scenes" / "render" / "shot" / "######")

    empty = background.fetch_job_outputs(c, created["id"], local_output)
    assert isinstance(empty, background.OutputsFetched) and empty.message == "The job has no outputs yet."

    frames = {"shot/000001.png": b"frame one", "shot/000002.png": b"frame two!"}
    for rel, data in frames.items():
        addon_server.put_output(created["id"], rel, data)
    got = background.fetch_job_outputs(c, created["id"], local_output)
    assert isinstance(got, background.OutputsFetched), got
    folder = tmp_path / "proj" / "scenes" / "render" / "shot"
    assert (folder / "000001.png").read_bytes() == b"frame one"
    assert (folder / "000002.png").read_bytes() == b"frame two!"
    assert got.message.startswith("Fetched 2 new of 2 outputs")
    again = background.fetch_job_outputs(c, created["id"], local_output)
    assert again.files == []

    thumb = outputs.thumbnail(c, created["id"], c.job_outputs(created["id"]), str(tmp_path / "thumbs"))
    assert thumb is not None and open(thumb, "rb").read() in frames.values()
    assert os.path.dirname(thumb) == str(tmp_path / "thumbs")


def test_server_info_brings_job_types_and_the_project_managers_variables(addon_server):
    from blender_addon import background
    variables = {"render": {"direction": "twoway", "values": [{"platform": "linux", "value": "/mnt/render"}]}}
    addon_server.announce_manager("m1", variables=variables)
    try:
        info = background.fetch_server_info(signed_in(addon_server), "films", "", with_variables=True)
        assert isinstance(info, background.ServerInfo)
        assert "blender-render" in {t.name for t in info.job_types}
        assert info.variables.to_variables("/mnt/render/a/####", "linux") == "{render}/a/####"
        plain = background.fetch_server_info(signed_in(addon_server), "films")
        assert plain.variables is None
    finally:
        addon_server.announce_manager("m1")


# --- issue 14, against the real Server (and a real Manager) --------------------------------

def test_a_managers_url_in_place_of_the_servers_is_named_as_such(tmp_path):
    """Point 2: a real Manager answers /api/version with 404; the add-on says what it is."""
    from tests.integration.manager.manager_helpers import RunningManager, make_config
    manager = RunningManager(make_config(tmp_path), threads=4)
    try:
        report = connection.check_connection(Client(manager.url, "token"), "films")
    finally:
        manager.stop()
    assert report.problem == connection.NOT_FLAMENCO
    assert report.message.startswith(f"{manager.url} is a Flamenco Manager, not the Flamenco Server.")
    assert "Enter the Server's URL" in report.message


def test_my_jobs_and_everyones(addon_server):
    mine = _sleep_job(signed_in(addon_server), "anna's own")
    bobs = _sleep_job(signed_in(addon_server, "bob"), "bob's own")
    own = background.fetch_jobs(signed_in(addon_server), "films", 50, None)
    everyone = background.fetch_jobs(signed_in(addon_server), "films", 50, None, mine=False)
    assert mine["id"] in {d["id"] for d in own.docs} and bobs["id"] not in {d["id"] for d in own.docs}
    assert {mine["id"], bobs["id"]} <= {d["id"] for d in everyone.docs}
    model = joblist.JobList()
    model.update(everyone.docs)
    assert model.row(bobs["id"]).user == "bob"


def test_an_action_answers_with_the_job_and_a_useless_requeue_is_refused(addon_server):
    c = signed_in(addon_server)
    job = _sleep_job(c, "act on me")
    done = background.job_action(c, job["id"], "pause")
    assert isinstance(done, background.ActionDone) and done.doc["id"] == job["id"]
    model = joblist.JobList()
    model.update([job])
    model.replace(done.doc)
    assert model.row(job["id"]).status == done.doc["status"] and "pause" not in model.row(job["id"]).actions
    resumed = background.job_action(c, job["id"], "resume")
    refused = background.job_action(c, job["id"], "requeue")
    assert resumed.doc["status"] == "queued"
    assert isinstance(refused, background.ActionFailed) and "would change nothing" in refused.message


def test_server_info_brings_the_workers_tags(addon_server):
    m1 = addon_server.managers["m1"]
    status, _ = addon_server.request("POST", f"/api/managers/{m1['id']}/workers", {"complete": True, "workers": [
        {"_id": "w1", "nickname": "gpu-box", "status": "awake", "tags": ["gpu", "big-ram"]}]}, m1["token"])
    assert status == 204
    info = background.fetch_server_info(signed_in(addon_server), "films")
    assert info.worker_tags == ["big-ram", "gpu"]
    types = {t.name: t for t in info.job_types}
    assert not types["sleep"].artist_visible and types["blender-render"].artist_visible
    assert types["blender-render"].title == "Blender render"
