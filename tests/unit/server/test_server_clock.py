"""The change clock that several Server processes on one database share (database.py).

Another process's only trace here is the latest stamp it left in `server_clock`;
a process whose own clock is behind (another host, an NTP step) must still
stamp later, or a Manager syncing through the other process would miss its
changes for good.
"""

from __future__ import annotations

import datetime as dt

import pytest
from tests.unit.server.server_testdb import Harness

from backend.server.database import write
from backend.server.manager_sync import parse_cursor
from backend.server.models import ServerClock


@pytest.fixture
def h(seeded_server):
    return Harness(seeded_server)


def test_a_process_whose_clock_is_behind_stamps_after_the_latest_stamp_of_another(h, ctx):
    h.submit(name="first")
    ahead = ctx.clock.now() + dt.timedelta(hours=1)
    with ctx.db.atomic():
        ServerClock.update(last=ahead).where(ServerClock.id == 1).execute()  # the other process's depsgraph
    job = h.submit(name="second")
    docs, cursor = h.depsgraph(since=ahead)
    assert {d["job"] for d in docs} == {job.id}
    assert parse_cursor(cursor)[0] > ahead


def test_each_write_leaves_its_latest_stamp_for_the_other_processes(h, ctx):
    h.submit(name="first")
    _, cursor = h.depsgraph()
    stamp = parse_cursor(cursor)[0]
    assert ServerClock.get_by_id(1).last >= stamp
    with write(ctx.db):
        pass  # a write that stamped nothing leaves the clock as it was
    assert ServerClock.get_by_id(1).last >= stamp
