"""Fixtures for the Manager's integration tests; helpers live in manager_helpers.py."""

from __future__ import annotations

import pytest

from tests.integration.manager.manager_helpers import RunningManager, Worker, make_config


@pytest.fixture
def manager_factory(tmp_path):
    started = []

    def start(threads=32, client=None, sub="m", busy_timeout_ms=None, **kw):
        cfg = make_config(tmp_path / sub, **kw)
        m = RunningManager(cfg, threads=threads, client=client, busy_timeout_ms=busy_timeout_ms)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@pytest.fixture
def manager(manager_factory):
    return manager_factory()


@pytest.fixture
def worker_factory(manager):
    def make(**kw):
        return Worker(manager.url, **kw).register()
    return make
