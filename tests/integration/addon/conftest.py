import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import farm_server  # noqa: E402


@pytest.fixture(scope="session")
def farm(tmp_path_factory):
    server = farm_server.standard_farm(tmp_path_factory.mktemp("addon-farm"))
    try:
        yield server
    finally:
        server.stop()
