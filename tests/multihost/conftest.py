"""The multi-host tier: a studio's farm on separate hosts (network namespaces) with a real
network between them, started with the README's deployment commands. See studio.py for the
machines and netns.py for how hosts, links and faults are made.

Needs root, iproute2 and iptables: elsewhere these tests skip with the reason, under CI=true
they fail. One studio serves all tests of this package; a test that breaks something (a cut, an
impairment, a killed host) puts it back in its own finally, and `healthy_hosts_studio` undoes
faults and restarts dead workers before each test.
"""

from __future__ import annotations

import pytest

from tests.conftest import missing

from .netns import unavailable
from .studio import MANAGER_CONFIG, Studio


@pytest.fixture(scope="session")
def hosts_available() -> None:
    reason = unavailable()
    if reason:
        missing(f"hosts as network namespaces ({reason})")


@pytest.fixture(scope="package")
def hosts_studio(request, tmp_path_factory, hosts_available, blender_exe, ffmpeg_exe) -> Studio:
    """Server, two Managers (projects shot1 and shot2), three worker hosts, a workstation;
    stopped after the last test of this package, so it does not idle through other tiers."""
    st = Studio(tmp_path_factory.mktemp("studio"), manager_config=MANAGER_CONFIG)
    request.addfinalizer(st.stop)  # namespaces, links and processes go even if start() fails
    st.start()
    return st


@pytest.fixture
def healthy_hosts_studio(hosts_studio: Studio) -> Studio:
    """The package's studio with every fault undone and every worker awake."""
    hosts_studio.net.heal()
    hosts_studio.net.clear_impairment()
    for site in hosts_studio.sites:
        for name in site.workers:
            host = hosts_studio.net.host(name)
            if "flamenco-worker" not in host.procs or host.procs["flamenco-worker"].poll() is not None:
                hosts_studio.start_worker(host)
    hosts_studio.wait_workers_awake(timeout=60)
    return hosts_studio
