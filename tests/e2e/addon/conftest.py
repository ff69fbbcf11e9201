"""Fixtures for the add-on's Blender tests: a project made by Blender's Python (texture +
linked library), the built add-on zip, and helpers to run Blender headless."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "blender_scripts"


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
                blend: Path | None = None) -> dict:
    """Run `script` in headless Blender with a throwaway user dir; the JSON it writes to args['out']."""
    out = user_dir / "result.json"
    env = dict(os.environ, BLENDER_USER_CONFIG=str(user_dir / "config"),
               BLENDER_USER_SCRIPTS=str(user_dir / "scripts"))
    cmd = [blender_exe, "-b", "--factory-startup", "-noaudio"]
    if blend is not None:
        cmd.append(str(blend))
    cmd += ["--python", str(script), "--", json.dumps({**args, "out": str(out)})]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    log = result.stdout + result.stderr
    if not out.exists():
        raise AssertionError(f"Blender wrote no result (exit {result.returncode}):\n{log[-6000:]}")
    data = json.loads(out.read_text())
    data["_log"] = log
    return data
