"""The leaks of issue 12, each as the request an attacker made. Manager-side holes that the Manager's
rewrite closes are strict xfails: they fail now, and the lead turns them on with the fix."""

from __future__ import annotations

import subprocess

import pytest
import requests

from tests.security.security_helpers import sha

# --- 1: outputs only for a task the uploader holds ------------------------------------------------


def output_path(farm, manager: str, job_id: str, name: str = "frames/000009.png") -> str:
    return farm.mpath(manager, f"jobs/{job_id}/outputs/{name}")


def put_output(farm, manager: str, job_id: str, task_id: str | None, data: bytes = b"a frame"):
    params = {"task": task_id} if task_id else {}
    return farm.manager(manager).put(output_path(farm, manager, job_id), params=params, data=data,
                                     headers={"X-Flamenco-SHA256": sha(data)})


def test_server_takes_an_output_only_from_the_manager_holding_the_task(farm):
    film_job, film_task = farm.ids["film_job"], farm.ids["film_task"]
    assert put_output(farm, "m1", film_job, film_task).status_code == 204
    r = put_output(farm, "m2", film_job, film_task)
    assert r.status_code == 404, "another Manager's job"
    r = put_output(farm, "m1", film_job, None)
    assert r.status_code == 400 and r.json()["code"] == "task_required"
    sleep_task = f"{farm.ids['film_sleep_job']}-000000"
    r = put_output(farm, "m1", film_job, sleep_task)
    assert r.status_code == 403, "a task of another job"
    queued = farm.client("ann").post("/api/jobs", json={"name": "later", "type": "sleep", "project": "film",
                                                        "settings": {"frames": "1"}}).json()
    r = put_output(farm, "m1", queued["id"], f"{queued['id']}-000000")
    assert r.status_code == 403 and "queued" in r.json()["message"], "the Manager does not hold a queued task"
    outputs = farm.client("ann").get(f"/api/jobs/{film_job}/outputs").json()["outputs"]
    assert {o["task"] for o in outputs} == {film_task}


@pytest.mark.xfail(strict=True, reason="leak 1, Manager half: the Manager accepts an output from any worker for "
                                       "any task (must be the worker that holds or just finished it: 403)")
def test_manager_takes_an_output_only_from_the_worker_holding_the_task(manager):
    data = b"not my frame"
    r = manager.w2.session.put(f"{manager.url}/jobs/{manager.job_id}/outputs/frames/0001.png",
                               params={"task": manager.task_id}, data=data,
                               headers={"X-Flamenco-SHA256": sha(data)}, timeout=10)
    assert r.status_code == 403, r.text


# --- 2: blobs belong to projects ---------------------------------------------------------------------

def test_a_blob_of_another_project_is_unknown_until_uploaded(farm):
    blob, ann, bob, boss = farm.ids["film_blob"], farm.client("ann"), farm.client("bob"), farm.client("boss")
    size = len(b"BLENDER-v300 the film's secret scene")
    check = {"files": [{"sha256": blob, "size": size}]}
    assert bob.post("/api/files/check", json=check).json() == {"missing": [blob]}, "existence is not told"
    assert bob.get(f"/api/files/{blob}").status_code == 404
    assert bob.get(f"/api/files/{farm.ids['film_output_blob']}").status_code == 404
    job = {"name": "steal", "type": "blender-render", "project": "ads",
           "files": {"scene.blend": {"sha256": blob, "size": size}},
           "settings": {"filepath": "scene.blend", "frames": "1", "render_output": "frames/######"}}
    r = bob.post("/api/jobs", json=job)
    assert r.status_code == 400 and r.json()["code"] == "file_missing", r.text
    assert ann.post("/api/files/check", json=check).json() == {"missing": []}
    assert boss.post("/api/files/check", json=check).json() == {"missing": []}

    assert bob.put(f"/api/files/{blob}", data=b"something else").status_code == 400
    assert bob.post("/api/files/check", json=check).json() == {"missing": [blob]}
    r = bob.put(f"/api/files/{blob}", data=b"BLENDER-v300 the film's secret scene")
    assert r.status_code == 201, "uploading bytes someone else stored looks the same as storing them anew"
    assert bob.put(f"/api/files/{blob}", data=b"BLENDER-v300 the film's secret scene").status_code == 200
    assert bob.post("/api/files/check", json=check).json() == {"missing": []}
    assert bob.get(f"/api/files/{blob}").status_code == 200
    r = bob.post("/api/jobs", json=job)
    assert r.status_code == 201, r.text
    blobs = [p for p in (farm.ctx.store.blobs).rglob("*") if p.is_file()]
    assert sum(p.name == blob for p in blobs) == 1, "stored once"


# --- 3 and 5: the Manager's admin API and secrets --------------------------------------------------

@pytest.mark.xfail(strict=True, reason="leak 3: a Manager without an admin token serves its admin API without "
                                       "credentials (to localhost, and to anyone a proxy forwards)")
def test_manager_without_admin_token_serves_no_admin_api(manager_factory):
    m = manager_factory(admin_token="")
    for path in ("/api/admin/status", "/api/admin/workers", "/api/admin/tasks"):
        r = requests.get(m.url + path, headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10)
        assert r.status_code in (401, 403), (path, r.status_code)


@pytest.mark.xfail(strict=True, reason="leak 3: state-changing admin routes take a cross-site text/plain POST "
                                       "(they must require application/json and check Origin)")
def test_manager_admin_refuses_cross_site_posts(manager):
    body = '{"tasks": [{"_id": "x-1", "job": "x", "name": "x", "status": "queued", "task_type": "sleep", ' \
           '"commands": [{"name": "exec", "settings": {"cmd": "id"}}]}]}'
    r = requests.post(manager.url + "/api/admin/local-tasks", data=body,
                      headers={"Content-Type": "text/plain", "Origin": "http://evil.example",
                               "Authorization": f"Bearer {manager.admin_token}"}, timeout=10)
    assert r.status_code in (403, 415), r.text


@pytest.mark.xfail(strict=True, reason="leak 3: a Manager listening on a non-loopback address without a "
                                       "registration secret must be refused unless explicitly allowed")
def test_manager_refuses_open_registration_on_the_network(tmp_path):
    from backend.manager import config as config_mod
    cfg = config_mod.ManagerConfig(data_dir=tmp_path, manager_url="http://m.test", listen="0.0.0.0:8083",
                                   registration_secret="")
    with pytest.raises(config_mod.ConfigError):
        cfg.validate()


@pytest.mark.xfail(strict=True, reason="leak 5: `flamenco farm` passes the Manager's tokens on its command line, "
                                       "readable by any local user with ps (pass them by environment or file)")
def test_farm_puts_no_secret_on_a_command_line(tmp_path):
    from flamenco_cli.farm import Farm
    farm = Farm(tmp_path / "farm", port=0, workers=0)
    try:
        farm.start()
        state = farm.setup()
        secrets_ = [state["manager_token"], state["manager_admin_token"]]
        for name, proc in farm.procs.items():
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace")
            assert not any(s in argv for s in secrets_), f"{name}'s command line holds a secret"
    finally:
        farm.stop(timeout=10)


# --- 4: who may run what on the workers ---------------------------------------------------------------

@pytest.mark.xfail(strict=True, reason="4, Manager half: the Manager has no allow-list of its own for programs in "
                                       "tasks (blender_cmd, ffmpeg_cmd) nor a setting that disables exec-command; "
                                       "the names used here (allowed_executables, exec_command) are a proposal")
def test_manager_runs_only_programs_of_its_own_allow_list(manager_factory):
    m = manager_factory(admin_token="t", allowed_executables=["blender"], exec_command=False)
    bad = [{"name": "blender_render", "settings": {"blender_cmd": "/bin/sh -c id", "filepath": "/x.blend"}},
           {"name": "exec", "settings": {"cmd": "id"}}]
    for i, command in enumerate(bad):
        task = {"_id": f"j-{i}", "job": "j", "name": "t", "status": "queued", "task_type": "debug",
                "commands": [command]}
        r = requests.post(m.url + "/api/admin/local-tasks", json={"tasks": [task]},
                          headers={"Authorization": "Bearer t"}, timeout=10)
        assert r.status_code == 400, (command["name"], r.text)


def render(farm, who: str, **settings) -> requests.Response:
    return farm.client(who).post("/api/jobs", json={
        "name": "r", "type": "blender-render", "project": "film",
        "settings": {"filepath": "/shared/scene.blend", "frames": "1", "render_output": "/shared/out/######",
                     **settings}})


def test_exec_command_is_for_admins(farm):
    job = {"name": "x", "type": "exec-command", "project": "film", "settings": {"cmd": "id"}}
    r = farm.client("ann").post("/api/jobs", json=job)
    assert r.status_code == 403 and "admins" in r.json()["message"]
    assert farm.client("boss").post("/api/jobs", json=job).status_code == 201
    described = {t["name"]: t for t in farm.client("ann").get("/api/job-types").json()["job_types"]}
    assert described["exec-command"]["admin_only"] is True and "admin_only" not in described["sleep"]


@pytest.mark.parametrize("value, ok", [
    ("{blender}", True), ("blender", True), ("{blender} --factory-startup", True),
    ("/bin/sh -c 'id' --", False), ("{blender} --python-expr 'import os'", False), ("python3", False),
    ("{render}/evil.sh", False), ("blender -P /tmp/x.py", False), ("", False),
])
def test_blender_cmd_takes_only_variables_and_allowed_executables(farm, value, ok):
    r = render(farm, "ann", blender_cmd=value)
    assert (r.status_code == 201) == ok, r.text
    if not ok:
        assert r.status_code == 400 and "blender_cmd" in r.json()["message"]


def test_ffmpeg_cmd_too(farm):
    r = farm.client("ann").post("/api/jobs", json={
        "name": "v", "type": "video-encode", "project": "film",
        "settings": {"input": "/shared/frames/*.png", "frames": "1-10", "output": "/shared/v.mp4", "fps": 24,
                     "ffmpeg_cmd": "/usr/bin/env sh -c id"}})
    assert r.status_code == 400 and "ffmpeg_cmd" in r.json()["message"], r.text


@pytest.mark.parametrize("line", [
    "import os", "__import__('os').system('id')", "bpy.context.scene.render.fps = len('abc')",
    "bpy.app.handlers.render_pre.append(print)", "exec('print(1)')",
    "bpy.context.scene.__class__.x = 1", "bpy.context.scene.render.filepath = f'{1}'",
])
def test_rna_overrides_are_only_literals_for_data_paths(farm, line):
    r = render(farm, "ann", rna_overrides=["bpy.context.scene.render.resolution_percentage = 50", line])
    assert r.status_code == 400 and "rna_overrides" in r.json()["message"] and "line 2" in r.json()["message"]
    assert render(farm, "ann", rna_overrides=["bpy.context.scene.render.resolution_percentage = 50",
                                              "bpy.data.scenes['Scene'].cycles.samples = 4"]).status_code == 201


def test_jobs_carry_their_projects_script_policy(farm):
    m1 = farm.manager("m1")

    def autoexec_of_new_render() -> list:
        render(farm, "ann")
        tasks = m1.get(farm.mpath("m1", "depsgraph")).json()["depsgraph"]
        return [c["settings"].get("autoexec") for t in tasks for c in t["commands"] if c["name"] == "blender_render"]

    assert set(autoexec_of_new_render()) == {False}
    r = farm.client("ann").request("PATCH", f"/api/projects/{farm.ids['film']}", json={"allow_scripts": True})
    assert r.status_code == 403, "only admins set it"
    r = farm.client("boss").request("PATCH", f"/api/projects/{farm.ids['film']}", json={"allow_scripts": True})
    assert r.status_code == 200 and r.json()["allow_scripts"] is True
    assert True in autoexec_of_new_render()


# --- 4, on the worker -----------------------------------------------------------------------------------

def worker_command(name: str, settings: dict):
    from worker import commands
    command = commands.get(name)
    return command, command.validate(settings)


def test_worker_writes_no_overrides_file_but_literal_assignments(tmp_path):
    from worker.commands import SettingError
    target = tmp_path / "scene-overrides.py"
    with pytest.raises(SettingError, match="contents"):
        worker_command("create_python_file", {"filepath": str(target), "contents": "import os\nos.system('id')\n"})
    worker_command("create_python_file", {"filepath": str(target),
                                          "contents": "import bpy\nbpy.context.scene.frame_end = 3\n"})


def blend_with_autoexec_script(blender: str, tmp_path, marker) -> str:
    """A .blend whose registered text module writes `marker` when Blender runs the file's scripts."""
    blend = tmp_path / "scene.blend"
    module = f"open({str(marker)!r}, 'w').write('ran')"
    script = (f"import bpy\nt = bpy.data.texts.new('autorun.py')\nt.write({module!r})\nt.use_module = True\n"
              f"bpy.ops.wm.save_as_mainfile(filepath={str(blend)!r})\n")
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python-expr",
                    script], check=True, capture_output=True, timeout=120)
    assert blend.is_file() and not marker.exists()
    return str(blend)


@pytest.mark.e2e
@pytest.mark.parametrize("autoexec", [False, True])
def test_worker_runs_blender_scripts_only_when_the_project_allows(blender_exe, tmp_path, autoexec):
    from worker.commands.blender import RenderParams
    marker = tmp_path / "ran.txt"
    blend = blend_with_autoexec_script(blender_exe, tmp_path, marker)
    _, params = worker_command("blender_render", {"blender_cmd": blender_exe, "filepath": blend,
                                                  "autoexec": autoexec})
    assert isinstance(params, RenderParams)
    subprocess.run(params.argv() + ["--python-expr", "import bpy"], capture_output=True, timeout=120)
    assert marker.exists() == autoexec, params.argv()


def test_worker_refuses_an_overrides_file_with_code(tmp_path):
    from worker.commands import CommandError
    from worker.commands.blender import check_overrides_file
    (tmp_path / "scene.blend").write_bytes(b"BLENDER")
    evil = tmp_path / "scene-overrides.py"
    evil.write_text("import bpy\nimport os\nos.system('touch pwned')\n")
    with pytest.raises(CommandError, match="refusing to run the overrides file"):
        check_overrides_file(evil)
    evil.write_text("import bpy\nbpy.context.scene.render.resolution_percentage = 25\n")
    check_overrides_file(evil)


def test_tokens_and_ids_do_not_leak_in_listings(farm):
    """Other projects' jobs, managers and workers are not listed to bob."""
    bob = farm.client("bob")
    jobs = bob.get("/api/jobs").json()["jobs"]
    assert {j["project"] for j in jobs} == {farm.ids["ads"]}
    assert {m["name"] for m in bob.get("/api/managers").json()["managers"]} == {"m2"}
    assert {p["name"] for p in bob.get("/api/projects").json()["projects"]} == {"ads"}
    assert bob.get(f"/api/projects/{farm.ids['film']}/usage").status_code == 404
