"""The multi-host tier: a studio's farm on separate hosts (network namespaces) with a real
network between them, started with the README's deployment commands. See studio.py for the
machines and netns.py for how hosts, links and faults are made.

Needs root, iproute2 and iptables: elsewhere these tests skip with the reason, under CI=true
they fail. One studio serves all tests of this package; a test that breaks something (a cut, an
impairment, a killed host) puts it back in its own finally, and `healthy_studio` undoes
faults and restarts dead workers before each test.
"""

from __future__ import annotations

import pytest

from tests.conftest import missing

from .netns import unavailable
from .studio import Studio

WORKER_TIMEOUT = 12.0
MANAGER_CONFIG = f"""\
# Written by tests/multihost: shorter timeouts, so a dead worker is noticed within the test.
[timeouts]
worker_timeout = {WORKER_TIMEOUT}       # a killed worker's task is requeued after this
task_timeout = 120.0
check_interval = 1.0

[scheduling]
long_poll_max = 5.0            # idle workers are heard from well within worker_timeout
"""


@pytest.fixture(scope="session")
def hosts_available() -> None:
    reason = unavailable()
    if reason:
        missing(f"hosts as network namespaces ({reason})")


@pytest.fixture(scope="package")
def studio(request, tmp_path_factory, hosts_available, blender_exe, ffmpeg_exe) -> Studio:
    """Server, two Managers (projects shot1 and shot2), three worker hosts, a workstation;
    stopped after the last test of this package, so it does not idle through other tiers."""
    st = Studio(tmp_path_factory.mktemp("studio"), manager_config=MANAGER_CONFIG)
    request.addfinalizer(st.stop)  # namespaces, links and processes go even if start() fails
    st.start()
    return st


@pytest.fixture
def healthy_studio(studio: Studio) -> Studio:
    """The session's studio with every fault undone and every worker awake."""
    studio.net.heal()
    studio.net.clear_impairment()
    for site in studio.sites:
        for name in site.workers:
            host = studio.net.host(name)
            if "flamenco-worker" not in host.procs or host.procs["flamenco-worker"].poll() is not None:
                studio.start_worker(host)
    studio.wait_workers_awake(timeout=60)
    return studio
