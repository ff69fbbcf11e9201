"""A Manager's services on a real SQLite file, without HTTP: what the unit tests drive."""

from __future__ import annotations

import pytest

from backend.manager.app import ManagerCore
from backend.manager.config import ManagerConfig
from backend.manager.persistence import open_sqlite


@pytest.fixture
def make_core(tmp_path):
    """ManagerCore(config with data in tmp_path, **kw); its loops and database thread stop at the end."""
    made = []

    def make(config: ManagerConfig | None = None, **kw) -> ManagerCore:
        core = ManagerCore(config or ManagerConfig(data_dir=tmp_path), open_sqlite(tmp_path / "m.sqlite"), **kw)
        made.append(core)
        return core

    yield make
    for core in made:
        core.stop_loops()


@pytest.fixture
def core(make_core) -> ManagerCore:
    return make_core()
