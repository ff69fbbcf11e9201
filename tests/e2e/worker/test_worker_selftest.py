"""`flamenco-worker --test`: a built-in job rendered here with real Blender, without a Manager."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker", "--test", *args], capture_output=True, text=True,
                          timeout=300)


def test_the_test_job_renders_a_frame_and_says_how_long_it_took(blender_exe, tmp_path):
    out = run("--blender", blender_exe, "--keep", str(tmp_path / "t"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test job succeeded in " in out.stdout and "the render task took " in out.stdout
    frame = tmp_path / "t" / "render" / "000001.png"
    assert f"the frame: {frame}" in out.stdout
    data = frame.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (160, 90)


def test_a_blender_that_cannot_render_fails_the_test_with_its_log(blender_exe, tmp_path):
    broken = tmp_path / "blender"
    # Makes the scene like Blender, then fails every render the way a broken install does.
    broken.write_text(f"#!/bin/sh\ncase \"$*\" in *--render-frame*) echo 'Error: Cannot read file'; "
                      f"echo 'Fra:1 Mem:1M | Syncing'; exit 3;; esac\nexec {blender_exe} \"$@\"\n")
    broken.chmod(0o755)
    out = run("--blender", str(broken))
    assert out.returncode == 1
    assert "test job FAILED" in out.stdout and "blender exited with code 3" in out.stdout
    assert "  | " in out.stdout, "the task's log is shown"
    out = run("--blender", str(tmp_path / "missing"))
    assert out.returncode == 1 and "test job FAILED" in out.stdout
