import threading

import requests

from worker.upstream_queue import UpstreamQueue


def test_sends_in_order_and_empties(queue, transport):
    for i in range(5):
        queue.enqueue("POST", f"/tasks/t/update", {"n": i})
    assert len(queue) == 5
    assert queue.flush() is True
    assert [i.json["n"] for i in transport.sent] == [0, 1, 2, 3, 4]
    assert len(queue) == 0


def test_unreachable_keeps_order_and_retries_later(tmp_path, transport):
    now = [100.0]
    q = UpstreamQueue(tmp_path / "q.sqlite", transport, retry_seconds=5, clock=lambda: now[0])
    transport.answers = [requests.ConnectionError("refused")]
    q.enqueue("POST", "/a", {"n": 1})
    q.enqueue("POST", "/b", {"n": 2})
    assert q.flush() is False
    assert len(q) == 2 and transport.sent == []
    assert q.pending()[0].attempts == 1
    now[0] += 1
    assert q.flush() is False, "still backing off"
    now[0] += 5
    assert q.flush() is True
    assert [i.path for i in transport.sent] == ["/a", "/b"]


def test_404_and_409_drop_the_update_but_5xx_keeps_it(queue, transport):
    transport.answers = [404, 409, 503]
    for n in range(4):
        queue.enqueue("POST", f"/u{n}", {"n": n})
    assert queue.flush() is False  # 503 on the third
    assert [i.path for i in queue.pending()] == ["/u2", "/u3"]
    queue._next_attempt = 0
    assert queue.flush() is True
    assert [i.path for i in transport.sent] == ["/u0", "/u1", "/u2", "/u2", "/u3"]  # /u2 retried


def test_queue_survives_reopening(tmp_path, transport):
    def down(item):
        raise OSError("manager down")

    q = UpstreamQueue(tmp_path / "q.sqlite", down)
    q.enqueue("POST", "/tasks/t/update", {"task_status": "completed"})
    q.enqueue("POST", "/tasks/t/return", None)
    assert q.flush() is False
    q.close()
    q2 = UpstreamQueue(tmp_path / "q.sqlite", transport)
    assert q2.flush() is True
    assert [(i.path, i.json) for i in transport.sent] == [("/tasks/t/update", {"task_status": "completed"}),
                                                          ("/tasks/t/return", None)]
    q2.close()


def test_flusher_thread_and_wait_empty(queue, transport):
    stop = threading.Event()
    thread = threading.Thread(target=queue.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for n in range(20):
            queue.enqueue("POST", "/x", {"n": n})
        assert queue.wait_empty(5)
        assert [i.json["n"] for i in transport.sent] == list(range(20))
    finally:
        stop.set()
        queue.retry_now()
        thread.join(5)
