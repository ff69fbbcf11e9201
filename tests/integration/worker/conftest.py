"""Fixtures: a real Manager on a port of its own and real worker daemons (threads)."""

from __future__ import annotations

import pytest

from tests.integration.worker.worker_it_helpers import Manager, WorkerThread, worker_config


@pytest.fixture
def manager(tmp_path):
    m = Manager(tmp_path / "manager").start()
    yield m
    m.stop()


@pytest.fixture
def start_worker(tmp_path, manager):
    started = []

    def start(name="w1", single=False, **kw):
        wt = WorkerThread(worker_config(tmp_path, manager.url, name, **kw), single=single).start()
        started.append(wt)
        return wt

    yield start
    for wt in started:
        if wt.thread.is_alive():
            wt.stop()
