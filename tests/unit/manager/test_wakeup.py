"""Wake-ups of long-polling workers: one per runnable task, passed on when the woken cannot use it."""

from __future__ import annotations

import threading
import time

from backend.manager.wakeup import CHANGED, OWN, WOKEN, Wakeup




def wait_until(cond, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


def test_notify_wakes_the_longest_waiting_only():
    w = Wakeup()
    results = {}
    threads = []
    for name in ("a", "b", "c"):
        since = w.generation
        t = threading.Thread(target=lambda n=name, s=since: results.__setitem__(n, w.wait(s, 3.0)))
        t.start()
        assert wait_until(lambda n=len(threads) + 1: w.waiting == n)
        threads.append(t)
    w.notify(1)
    assert wait_until(lambda: "a" in results)
    time.sleep(0.05)
    assert results == {"a": WOKEN} and w.waiting == 2
    w.notify(5)
    for t in threads:
        t.join(2)
    assert results == {"a": WOKEN, "b": WOKEN, "c": WOKEN} and w.waiting == 0


def test_a_change_between_the_look_and_the_wait_is_not_slept_through():
    w = Wakeup()
    since = w.generation
    w.notify(1)  # nobody waits yet
    t0 = time.monotonic()
    assert w.wait(since, 5.0) == CHANGED and time.monotonic() - t0 < 0.5
    assert w.wait(w.generation, 0.05) is None


def test_pass_on_wakes_only_those_that_have_not_looked_since():
    w = Wakeup()
    results = {}
    old_since = w.generation
    t_old = threading.Thread(target=lambda: results.__setitem__("old", w.wait(old_since, 3.0)))
    t_old.start()
    assert wait_until(lambda: w.waiting == 1)
    w.notify(0)  # the generation moves on; a waiter that looks now has seen it
    new_since = w.generation
    t_new = threading.Thread(target=lambda: results.__setitem__("new", w.wait(new_since, 0.3)))
    t_new.start()
    assert wait_until(lambda: w.waiting == 2)
    # Someone woken at generation `new_since` found nothing it may run: the old waiter
    # has not looked since, the new one has.
    assert w.pass_on(new_since) is True
    t_old.join(2)
    assert results["old"] == WOKEN
    assert w.pass_on(new_since) is False
    t_new.join(2)
    assert results["new"] is None


def test_notify_worker_wakes_that_workers_waiters_with_nothing_to_pass_on():
    w = Wakeup()
    results = {}
    threads = []
    for name in ("w1", "w2"):
        since = w.generation
        t = threading.Thread(target=lambda n=name, s=since: results.__setitem__(n, w.wait(s, 1.0, n)))
        t.start()
        assert wait_until(lambda k=len(threads) + 1: w.waiting == k)
        threads.append(t)
    w.notify_worker("w2")
    threads[1].join(2)
    assert results == {"w2": OWN}
    threads[0].join(2)
    assert results["w1"] is None


def test_notify_counted_counts_only_when_someone_waits():
    w = Wakeup()
    calls = []
    w.notify_counted(lambda: calls.append(1) or 1)
    assert calls == [] and w.generation == 1
    results = {}
    since = w.generation
    t = threading.Thread(target=lambda: results.__setitem__("x", w.wait(since, 2.0)))
    t.start()
    assert wait_until(lambda: w.waiting == 1)
    w.notify_counted(lambda: calls.append(1) or 0)
    time.sleep(0.05)
    assert calls == [1] and "x" not in results  # no child became runnable: nobody woken
    w.notify_counted(lambda: 1)
    t.join(2)
    assert results["x"] == WOKEN
