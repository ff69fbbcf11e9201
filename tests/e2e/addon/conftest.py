"""Fixtures for the add-on's Blender tests: a project made by Blender's Python (texture +
linked library), the built add-on zip and the Servers the add-on talks to. Running Blender
headless is in blender_run.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.addon.blender_run import SCRIPTS
from tests.integration.addon import farm_server


@pytest.fixture(scope="session")
def shared_storage(tmp_path_factory) -> Path:
    """What the farm's two-way variables point at: job_storage and render, on this computer."""
    root = tmp_path_factory.mktemp("addon-shared")
    (root / "jobs").mkdir()
    (root / "render").mkdir()
    return root


@pytest.fixture(scope="session")
def addon_server(tmp_path_factory, shared_storage):
    """The Server the add-on in Blender talks to (farm_server.standard_farm), shared by the session;
    its manager's two-way variables point at `shared_storage`."""
    server = farm_server.standard_farm(tmp_path_factory.mktemp("addon-e2e-farm"))
    server.announce_manager("m1", variables=farm_variables(shared_storage))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_addon_server(tmp_path, shared_storage):
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
