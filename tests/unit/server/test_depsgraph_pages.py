"""The depsgraph in pages (a cursor of stamp and task id) and the news that wakes a held
request: on a real database, through the services the routes call."""

from __future__ import annotations

import threading

import pytest

from backend.server.database import write
from backend.server.models import Task
from backend.server.news import ALL_KINDS, CANCEL, LOG, NO_NEWS, TASKS, ManagerNews
from tests.unit.server.server_testdb import Harness


@pytest.fixture
def h(seeded_server):
    return Harness(seeded_server)


def ids(docs):
    return [d["_id"] for d in docs]


def all_pages(h, since=None, limit=10):
    """Every page after `since`: (the ids of each page, the last cursor)."""
    pages, cursor, more = [], since, True
    while more:
        docs, cursor, more = h.depsgraph(since=cursor, limit=limit, more=True)
        pages.append(ids(docs))
    return pages, cursor


def test_pages_hand_out_a_job_once_and_claim_only_what_they_hand_out(h):
    job = h.submit(settings={"frames": "1-25", "chunk_size": 1})
    docs, cursor, more = h.depsgraph(limit=10, more=True)
    assert len(docs) == 10 and more
    statuses = {t.id: t.status for t in h.tasks(job)}
    assert {statuses[i] for i in ids(docs)} == {"claimed-by-manager"}
    assert sum(s == "queued" for s in statuses.values()) == 15, "the rest waits for its page"
    assert h.check_counts(job).task_counts == {"claimed-by-manager": 10, "queued": 15}

    pages, last = all_pages(h, cursor)
    handed = ids(docs) + [i for page in pages for i in page]
    assert [len(p) for p in pages] == [10, 5]
    assert sorted(handed) == sorted(t.id for t in h.tasks(job)) and len(set(handed)) == 25
    assert handed == sorted(handed), "one stamp for the whole job: the task id orders the pages"
    assert set(h.statuses(job)) == {"claimed-by-manager"}
    assert h.depsgraph(since=last)[0] == [], "nothing after the last page"
    assert len(all_pages(h)[0]) == 3, "a clean slate pages through what is claimed again"


def test_changes_made_while_a_manager_pages_come_in_a_later_page(h):
    first = h.submit(name="first", settings={"frames": "1-20", "chunk_size": 1})
    docs, cursor, _ = h.depsgraph(limit=5, more=True)
    with write(h.ctx.db):
        h.ctx.machine.set_job_priority(h.job(first), 90, "user test")  # stamps every task of the job
    second = h.submit(name="second", settings={"frames": "1-3", "chunk_size": 1})
    pages, _ = all_pages(h, cursor)
    later = [i for page in pages for i in page]
    assert set(ids(docs)) <= set(later), "the priority change reaches tasks already handed out"
    assert set(later) == {t.id for t in h.tasks(first)} | {t.id for t in h.tasks(second)}


def test_what_the_manager_reports_is_not_sent_back_but_what_the_server_makes_of_it_is(h):
    job = h.submit(settings={"frames": "1-3", "chunk_size": 1})
    docs, cursor = h.depsgraph()
    one, two, three = ids(docs)
    h.update(one, "active")
    h.update(one, "completed")
    h.update(three, "active")
    assert h.depsgraph(since=cursor)[0] == []
    h.user_status(job, "pause-requested")  # the Manager must let go of the claimed task
    h.user_status(job, "queued")  # resumed before it did
    docs, cursor = h.depsgraph(since=cursor)
    assert docs == [] and h.statuses(job)[1] == "cancel-requested"
    h.update(two, "canceled")  # the Manager let go; the job was resumed meanwhile: queued again
    docs, _ = h.depsgraph(since=cursor)
    assert [(d["_id"], d["status"]) for d in docs] == [(two, "claimed-by-manager")]


def test_news_is_kept_per_manager_and_kind_and_delivered_after_commit(h):
    news = h.ctx.news
    token, kinds = news.since(h.seeded_server.manager.id, None)
    assert kinds == [ALL_KINDS], "a Manager without a token looks at everything"
    assert news.since(h.seeded_server.manager.id, token) == (token, [])
    with pytest.raises(RuntimeError):
        with write(h.ctx.db):
            h.submit()
            raise RuntimeError("rolled back")
    assert news.since(h.seeded_server.manager.id, token)[1] == [], "no news from a transaction that did not commit"
    job = h.submit()
    _, kinds = news.since(h.seeded_server.manager.id, token)
    assert kinds == [TASKS]
    assert news.since("another-manager", token)[1] == []
    h.depsgraph()
    h.user_status(job, "cancel-requested")
    assert news.since(h.seeded_server.manager.id, token)[1] == [CANCEL, TASKS]
    assert news.since(h.seeded_server.manager.id, "garbage")[1] == [ALL_KINDS], "a token that is no stamp"


def test_a_held_request_wakes_on_news_for_its_manager_only(ctx):
    news = ManagerNews(ctx.clock, max_held=2)
    token, _ = news.since("m1", None)
    assert token == NO_NEWS
    got = {}

    def hold(manager):
        got[manager] = news.wait(manager, token, 10)

    threads = [threading.Thread(target=hold, args=(m,)) for m in ("m1", "m2")]
    for t in threads:
        t.start()
    _wait_until(lambda: news.held() == 2)
    assert news.wait("m3", token, 10) is None, "no third thread may be held"
    news.notify("m1", LOG)  # outside a transaction: in one of its own
    threads[0].join(5)
    assert got["m1"][1] == [LOG] and got["m1"][0] != token
    assert threads[1].is_alive(), "news for m1 does not wake m2"
    news.close()
    threads[1].join(5)
    assert got["m2"] == (token, []), "closing answers at once, with no news for m2"
    assert news.held() == 0


def test_a_held_request_sees_news_another_server_process_stored(ctx):
    here, there = ManagerNews(ctx.clock, max_held=1, recheck=0.05), ManagerNews(ctx.clock, max_held=1)
    token, _ = here.since("m1", None)
    got = []
    waiting = threading.Thread(target=lambda: got.append(here.wait("m1", token, 10)))
    waiting.start()
    _wait_until(lambda: here.held() == 1)
    there.notify("m1", CANCEL)  # the other process wakes only its own requests; this one looks again
    waiting.join(5)
    assert got and got[0][1] == [CANCEL]


def test_a_newer_request_of_the_same_manager_lets_the_older_go(ctx):
    news = ManagerNews(ctx.clock, max_held=1)
    token, _ = news.since("m1", None)
    got = []
    older = threading.Thread(target=lambda: got.append(news.wait("m1", token, 10)))
    older.start()
    _wait_until(lambda: news.held() == 1)
    newer = threading.Thread(target=lambda: got.append(news.wait("m1", token, 0.2)))
    newer.start()
    older.join(5)
    assert got == [(token, [])], "the older request answered at once (nothing new)"
    newer.join(5)
    assert len(got) == 2 and news.held() == 0


def test_claims_do_not_stamp_and_counts_follow_them(h):
    job = h.submit(settings={"frames": "1-4", "chunk_size": 1})
    before = {t.id: t.updated for t in h.tasks(job)}
    h.depsgraph(limit=3)
    after = {t.id: t.updated for t in Task.select().where(Task.job == job.id)}
    assert before == after
    assert h.check_counts(job).task_counts == {"claimed-by-manager": 3, "queued": 1}


def _wait_until(check, timeout=5.0):
    import time
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
