"""The add-on's integration tests run against `addon_server`: a `flamenco-server serve` process (farm_server.py)."""

import pytest

from tests.integration.addon import farm_server


@pytest.fixture(scope="session")
def addon_server(tmp_path_factory):
    """The Server the add-on talks to, shared by the session; see farm_server.standard_farm."""
    server = farm_server.standard_farm(tmp_path_factory.mktemp("addon-farm"))
    try:
        yield server
    finally:
        server.stop()
