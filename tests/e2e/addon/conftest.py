"""Fixtures for the add-on's Blender tests: a project made by Blender's Python (texture +
linked library), the built add-on zip, and helpers to run Blender headless."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "blender_scripts"
INTEGRATION = HERE.parent.parent / "integration" / "addon"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))

import farm_server  # noqa: E402


@pytest.fixture(scope="session")
def shared_storage(tmp_path_factory) -> Path:
    """What the farm's two-way variables point at: job_storage and render, on this computer."""
    root = tmp_path_factory.mktemp("addon-shared")
    (root / "jobs").mkdir()
    (root / "render").mkdir()
    return root


@pytest.fixture(scope="session")
def farm(tmp_path_factory, shared_storage):
    server = farm_server.standard_farm(tmp_path_factory.mktemp("addon-e2e-farm"))
    server.announce_manager("m1", variables=farm_variables(shared_storage))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_farm(tmp_path, shared_storage):
    """A Server of its own, for tests that count uploads: the session Server's
    content-addressed storage already holds what earlier tests uploaded."""
    server = farm_server.standard_farm(tmp_path / "fresh-farm")
    server.announce_manager("m1", variables=farm_variables(shared_storage))
    try:
        yield server
    finally:
        server.stop()


def farm_variables(root: Path) -> dict:
    return {name: {"direction": "twoway", "values": [
        {"platform": "linux", "value": str(root / folder)},
        {"platform": "windows", "value": f"{letter}:/"},
        {"platform": "darwin", "value": f"/Volumes/{folder}"}]}
        for name, folder, letter in (("job_storage", "jobs", "J"), ("render", "render", "R"))}


@pytest.fixture(scope="session")
def scene_template(blender_exe, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("addon-scene") / "project"
    result = subprocess.run([blender_exe, "-b", "--factory-startup", "-noaudio", "--python",
                             str(SCRIPTS / "make_scene.py"), "--", str(root)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and (root / "scenes" / "shot.blend").exists(), result.stdout + result.stderr
    return root


@pytest.fixture
def project(scene_template, tmp_path) -> Path:
    """A fresh copy of the generated project for one test."""
    dest = tmp_path / "project"
    shutil.copytree(scene_template, dest)
    return dest


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory) -> Path:
    import build_addon
    return build_addon.build(tmp_path_factory.mktemp("addon-dist"))


def run_blender(blender_exe: str, script: Path, args: dict, user_dir: Path, timeout: float = 150,
                blend: Path | None = None, bpy_python: str | None = None) -> dict:
    """Run `script` in headless Blender with a throwaway user dir; the JSON it writes to args['out'].

    With `bpy_python`, the script runs in that Python, which has Blender as the `bpy` module.
    """
    out = user_dir / "result.json"
    user_dir.mkdir(parents=True, exist_ok=True)
    # Blender 4.2+ keeps extensions apart from scripts; keep them in the throwaway dir too.
    env = dict(os.environ, BLENDER_USER_CONFIG=str(user_dir / "config"),
               BLENDER_USER_SCRIPTS=str(user_dir / "scripts"),
               BLENDER_USER_EXTENSIONS=str(user_dir / "extensions"))
    payload = json.dumps({**args, "out": str(out)})
    if bpy_python:
        cmd = [bpy_python, str(script), "--", payload]
    else:
        cmd = [blender_exe, "-b", "--factory-startup", "-noaudio"]
        if blend is not None:
            cmd.append(str(blend))
        cmd += ["--python", str(script), "--", payload]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    log = result.stdout + result.stderr
    if not out.exists():
        raise AssertionError(f"Blender wrote no result (exit {result.returncode}):\n{log[-6000:]}")
    data = json.loads(out.read_text())
    data["_log"] = log
    return data
