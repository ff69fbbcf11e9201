"""The farm the job-type e2e tests share: Server (loading examples/job_types), Manager and two
workers as processes, started once per session. Tests use their own directories and job
names, so they do not meet. Helpers are in jobtypes_support.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from flamenco_cli.farm import Farm
from tests.e2e.jobtypes.jobtypes_support import Api, JobTypesFarm


@dataclass
class RunningFarm:
    farm: Farm
    api: Api
    root: Path


@pytest.fixture(scope="session")
def jobtypes_farm(tmp_path_factory, blender_exe, ffmpeg_exe) -> RunningFarm:
    root = tmp_path_factory.mktemp("jobtypes-farm")
    farm = JobTypesFarm(root / "farm", port=0, workers=2)
    try:
        info = farm.start()
        api = Api(info)
        deadline = time.monotonic() + 60
        while sum(w["status"] == "awake" for w in api.workers()) < 2:
            assert time.monotonic() < deadline, api.workers()
            time.sleep(0.2)
        yield RunningFarm(farm, api, root)
    finally:
        farm.stop(timeout=10)
