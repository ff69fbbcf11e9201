"""The dispatch path's database thread and the store's transactions (real SQLite, no HTTP)."""

from __future__ import annotations

import threading
import time

import pytest

import peewee

from backend.db import SQLITE_PRAGMAS
from backend.manager.app import ManagerCore
from backend.manager.config import ManagerConfig
from backend.manager.ingest import ingest_tasks
from shared import documents



def setting(core, key):
    core.db.ensure_connected()
    return core.db.get_setting(key)


def test_requests_in_one_batch_commit_together_and_a_failing_one_leaves_nothing(core):
    store = core.db.store

    def write(key, fail=False):
        store.set_setting(key, "x")
        store.after_commit(lambda: done.append(key))
        if fail:
            raise ValueError(f"{key} failed")
        return key

    done, results = [], {}
    running, release = threading.Event(), threading.Event()

    def block():
        running.set()
        release.wait(5)

    blocker = threading.Thread(target=lambda: core.db.db_thread.call(block))
    blocker.start()  # the database thread is busy with it while the three requests queue up
    assert running.wait(5)
    threads = [threading.Thread(target=lambda k=k, f=f: results.__setitem__(k, _call(core, write, k, f)))
               for k, f in (("a", False), ("b", True), ("c", False))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 2
    while len(core.db.db_thread._queue) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in [blocker, *threads]:
        t.join(5)
    assert results["a"] == "a" and results["c"] == "c"
    assert isinstance(results["b"], ValueError)
    assert (setting(core, "a"), setting(core, "b"), setting(core, "c")) == ("x", None, "x")
    assert sorted(done) == ["a", "c"]  # callbacks of the failed request are dropped
    assert core.db.db_thread.batches == 2 and core.db.db_thread.jobs == 4


def _call(core, fn, *args):
    try:
        return core.db.db_thread.call(fn, *args)
    except Exception as ex:  # noqa: BLE001
        return ex


def test_after_commit_runs_after_the_commit_and_not_after_a_rollback(core):
    store, seen = core.db.store, []
    with store.write():
        store.set_setting("k", "1")
        store.after_commit(lambda: seen.append(setting_elsewhere(core, "k")))
        assert seen == []
    assert seen == ["1"]  # another connection already sees the committed value
    with pytest.raises(RuntimeError):
        with store.write():
            store.set_setting("k", "2")
            store.after_commit(lambda: seen.append("never"))
            raise RuntimeError("rolled back")
    assert seen == ["1"] and setting(core, "k") == "1"


def setting_elsewhere(core, key):
    out = {}
    t = threading.Thread(target=lambda: out.__setitem__("v", setting(core, key)))
    t.start()
    t.join(5)
    return out["v"]


def test_scheduler_gives_nothing_to_a_worker_that_signed_off_meanwhile(core):
    reg = documents.WorkerRegistration(secret="s" * 64, platform="linux", supported_task_types=["sleep"],
                                       nickname="w")
    stale = core.workers.register(reg)  # the worker as a held long-poll last read it: awake
    core.workers.sign_off(core.workers.get(stale.id))
    ingest_tasks(core.db, core.state, [documents.Task.from_dict(
        {"_id": "t1", "job": "j", "name": "t1", "status": "queued", "task_type": "sleep", "commands": []})],
        local=True)
    assert core.scheduler.claim(stale) is None
    assert core.db.m.Task.get_by_id("t1").status == "queued"
    assert core.workers.get(stale.id).status == "offline"


def _register(core, name="w", now=None):
    reg = documents.WorkerRegistration(secret="s" * 64, platform="linux", supported_task_types=["sleep"],
                                       nickname=name)
    return core.workers.register(reg, now=now)


def _basic(worker_id, secret="s" * 64):
    import base64
    return "Basic " + base64.b64encode(f"{worker_id}:{secret}".encode()).decode()


def test_a_polling_worker_is_seen_although_last_seen_is_written_only_by_the_timeout_checker(make_core):
    t0 = 1_700_000_000.0
    core = make_core(started_at=t0 - 1000)
    w = _register(core, now=t0)
    core.workers.authenticate(_basic(w.id), now=t0 + 100)  # a poll: noted in memory, no write
    assert core.db.m.Worker.get_by_id(w.id).last_seen == t0
    assert core.workers.info(core.workers.get(w.id))["last_seen"].startswith("2023-11-14T22:15")  # t0 + 100
    assert core.timeouts.tick(t0 + 150) == {"tasks": [], "workers": []}  # 50 s since the poll, not 150
    assert core.db.m.Worker.get_by_id(w.id).last_seen == t0 + 100
    assert core.timeouts.tick(t0 + 100 + 121)["workers"] == [w.id]


def test_verified_credentials_are_forgotten_with_the_worker_and_on_sign_on(core):
    from backend.errors import ApiError as AuthError  # 401
    w = _register(core, "first")
    header = _basic(w.id)
    assert core.workers.authenticate_known(header).identifier == f"{w.id} (first)"
    assert core.workers.authenticate_known(header).__class__.__name__ == "KnownWorker"  # no row read
    with pytest.raises(AuthError):
        core.workers.authenticate_known(_basic(w.id, "wrong"))
    core.workers.sign_on(core.workers.get(w.id), documents.WorkerSignOn(nickname="second"))
    assert core.workers.authenticate_known(header).nickname == "second"
    core.workers.forget(w.id)
    with pytest.raises(AuthError):
        core.workers.authenticate_known(header)


def test_after_the_database_thread_stopped_requests_run_on_their_own_thread(core):
    assert core.db.db_thread.call(lambda: threading.current_thread().name) == "manager-db"
    core.db.db_thread.stop()
    assert core.db.db_thread.call(lambda: threading.current_thread().name) == threading.current_thread().name


def test_a_transaction_that_could_not_begin_leaves_after_commit_working(tmp_path):
    import sqlite3
    pragmas = dict(SQLITE_PRAGMAS, busy_timeout=100)
    db = peewee.SqliteDatabase(str(tmp_path / "m.sqlite"), pragmas=pragmas, check_same_thread=False, timeout=0.1)
    c = ManagerCore(ManagerConfig(data_dir=tmp_path), db)  # a short busy timeout: its own database
    other = sqlite3.connect(str(tmp_path / "m.sqlite"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    with pytest.raises(peewee.OperationalError):
        with c.db.store.write():
            pass
    other.execute("COMMIT")
    ran = []
    c.db.store.after_commit(lambda: ran.append(1))  # outside a transaction: at once
    assert ran == [1] and not c.db.store.in_write()
    with c.db.store.write():
        c.db.store.set_setting("k", "v")
    assert setting(c, "k") == "v"
