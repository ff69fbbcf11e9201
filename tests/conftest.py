"""Test configuration shared by all tiers.

Tests that need Blender, FFmpeg, Chromium or PostgreSQL skip with a reason when
these are missing, except under CI=true, where a missing dependency fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Skip the test for a missing dependency, or fail it under CI."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but missing", pytrace=False)
    pytest.skip(f"{what} is not available")


def require_executable(name: str) -> str:
    path = shutil.which(name)
    if not path:
        missing(f"the '{name}' executable")
    return path


@pytest.fixture(scope="session")
def blender_exe() -> str:
    return require_executable("blender")


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    require_executable("ffprobe")
    return require_executable("ffmpeg")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("FLAMENCO_TEST_POSTGRES", "")
    if not url:
        missing("PostgreSQL (FLAMENCO_TEST_POSTGRES)")
    try:
        import psycopg2
        psycopg2.connect(url).close()
    except Exception as ex:  # noqa: BLE001 - any failure means no usable server
        missing(f"PostgreSQL at {url} ({ex})")
    return url
