"""shared/background.py: work done in order on a thread of its own, gathered into rounds."""

from __future__ import annotations

import threading

from shared.background import BackgroundWriter


def test_calls_run_in_order_and_flush_waits_for_them():
    done: list[int] = []
    writer = BackgroundWriter("test-writer", linger=0.01)
    for i in range(2000):
        writer.submit(done.append, i)
    assert writer.flush(timeout=10)
    assert done == list(range(2000))


def test_calls_gather_into_rounds_while_it_lingers():
    """The first call wakes the writer; what comes while it lingers waits for the next round."""
    started = threading.Event()
    release = threading.Event()
    done: list[int] = []
    writer = BackgroundWriter("test-writer", linger=0.05)

    def first():
        started.set()
        release.wait(10)

    writer.submit(first)
    assert started.wait(10)
    for i in range(500):
        writer.submit(done.append, i)
    release.set()
    assert writer.flush(timeout=10)
    assert done == list(range(500))
    assert writer.rounds <= 3, f"{writer.rounds} rounds for 501 calls"


def test_flush_cuts_the_linger_short():
    done: list[str] = []
    writer = BackgroundWriter("test-writer", linger=60.0)
    writer.submit(done.append, "first")  # done at once: the writer was idle
    assert writer.flush(timeout=10)
    writer.submit(done.append, "second")  # the writer lingers for a minute after its round
    assert writer.flush(timeout=10), "flush waited out the linger"
    assert done == ["first", "second"]


def test_a_failing_call_is_reported_and_the_writer_goes_on():
    failures = []
    done = []
    writer = BackgroundWriter("test-writer", linger=0.01, on_error=lambda ex, fn, args: failures.append((ex, args)))

    def boom(x):
        raise OSError(f"disk full for {x}")

    writer.submit(boom, "a")
    writer.submit(done.append, "b")
    assert writer.flush(timeout=10)
    assert done == ["b"]
    assert [(str(ex), args) for ex, args in failures] == [("disk full for a", ("a",))]


def test_after_round_sees_each_rounds_calls():
    rounds: list[list[int]] = []
    pending: list[int] = []

    def close_round():
        if pending:
            rounds.append(list(pending))
            pending.clear()

    writer = BackgroundWriter("test-writer", linger=0.01, after_round=close_round)
    for i in range(300):
        writer.submit(pending.append, i)
    assert writer.flush(timeout=10)
    assert [i for r in rounds for i in r] == list(range(300))
    assert not pending
