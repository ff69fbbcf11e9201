"""The change feed: what a write noted is published once it committed, never when it failed."""

from __future__ import annotations

import threading
import time

import pytest

from backend.server.changes import EVERYTHING, ChangeFeed


def test_topics_are_published_when_the_block_ends_and_nested_blocks_join():
    feed = ChangeFeed()
    with feed.collecting():
        feed.note("job:a", "project:p")
        with feed.collecting():
            feed.note("manager:m")
        assert feed.seq == 0, "nothing before the outer block ended (the commit)"
    assert feed.seq == 1 and feed.changed_since(0) == {"job:a", "project:p", "manager:m"}


def test_a_failed_block_publishes_nothing():
    feed = ChangeFeed()
    with pytest.raises(RuntimeError):
        with feed.collecting():
            feed.note("job:a")
            raise RuntimeError("rolled back")
    assert feed.seq == 0
    with feed.collecting():
        feed.note("job:b")
    assert feed.changed_since(0) == {"job:b"}, "nothing of the failed one left over"


def test_outside_a_block_a_note_is_published_at_once_and_waiters_wake():
    feed = ChangeFeed()
    woke = []
    t = threading.Thread(target=lambda: woke.append(feed.wait(0, 5)))
    t.start()
    time.sleep(0.1)
    feed.note("workers")
    t.join(2)
    assert woke == [1] and feed.changed_since(1) == set()


def test_a_waiter_behind_the_history_is_told_everything():
    feed = ChangeFeed(history=3)
    for i in range(5):
        feed.publish(f"job:{i}")
    assert feed.changed_since(0) == {EVERYTHING}
    assert feed.changed_since(3) == {"job:3", "job:4"}


def test_closing_wakes_waiters_and_no_one_waits_again():
    feed = ChangeFeed()
    t0 = time.monotonic()
    threading.Timer(0.1, feed.close).start()
    feed.wait(0, 5)
    feed.wait(0, 5)
    assert time.monotonic() - t0 < 2 and feed.closed
