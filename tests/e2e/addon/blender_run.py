"""Running the add-on's Blender scripts headless (blender_scripts/), for the add-on's e2e tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "blender_scripts"


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
