"""shared/serving.py: the cheroot server every service runs on, over real sockets."""

from __future__ import annotations

import http.client
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from shared.serving import ServiceThread


def _app(environ, start_response):
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _ask(conn: http.client.HTTPConnection) -> str | None:
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.read() == b"ok"
    return response.getheader("Connection")


def test_keep_alive_limit_counts_idle_connections():
    """Up to the limit, connections stay open between requests; past it, the answer closes them."""
    with ServiceThread(_app, keep_alive=2) as service:
        conns = [http.client.HTTPConnection("127.0.0.1", service.port, timeout=5) for _ in range(4)]
        try:
            # One after the other: each answered connection waits, idle, in the server's selector.
            verdicts = [_ask(c) for c in conns]
            assert verdicts[:2] == [None, None]  # kept alive
            assert verdicts[2:] == ["close", "close"]
            # A kept one goes on, and stays kept (it is not counted while its request runs).
            assert _ask(conns[0]) is None
        finally:
            for c in conns:
                c.close()


def test_no_keep_alive_limit():
    with ServiceThread(_app, keep_alive=None) as service:
        conns = [http.client.HTTPConnection("127.0.0.1", service.port, timeout=5) for _ in range(5)]
        try:
            assert [_ask(c) for c in conns] == [None] * 5
        finally:
            for c in conns:
                c.close()


def test_logging_through_a_queue_writes_every_line_before_exit(tmp_path):
    """The services log through a queue; lines logged just before the process ends are written."""
    script = textwrap.dedent("""
        import logging
        from shared import logsetup
        logsetup.configure(logging.INFO, "%(levelname)s %(name)s: %(message)s")
        log = logging.getLogger("flamenco.test")
        log.debug("not shown")
        for i in range(500):
            log.info("line %d", i)
        log.warning("last")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=str(tmp_path), env={"PYTHONPATH": str(_repo())})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "INFO flamenco.test: line 0"
    assert lines[-1] == "WARNING flamenco.test: last"
    assert len(lines) == 501
    assert "not shown" not in result.stderr


def test_logging_setup_leaves_configured_logging_alone(tmp_path):
    """As logging.basicConfig: a process that configured logging (pytest, in-process CLI tests) keeps it."""
    script = textwrap.dedent("""
        import logging, sys
        from shared import logsetup
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="mine: %(message)s")
        logsetup.configure(logging.INFO, "%(message)s")
        logging.getLogger("x").info("info")
        logging.getLogger("x").warning("warned")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=str(tmp_path), env={"PYTHONPATH": str(_repo())})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "mine: warned\n"
    assert result.stderr == ""


def _repo() -> Path:
    return Path(__file__).resolve().parents[3]


def test_an_answer_goes_out_in_one_write(monkeypatch):
    """Headers and body leave in one system call; with several pieces, the first goes with the headers."""
    from cheroot import makefile

    writes: list[bytes] = []
    real = makefile.StreamWriter.write

    def counted(self, data, *args, **kwargs):
        writes.append(bytes(data))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(makefile.StreamWriter, "write", counted)

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/empty":
            start_response("204 No Content", [])
            return []
        if path == "/pieces":
            start_response("200 OK", [("Content-Length", "6")])
            return [b"abc", b"def"]
        return _app(environ, start_response)

    with ServiceThread(app) as service:
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        try:
            assert _ask(conn) is None
            assert len(writes) == 1
            assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\nok")
            writes.clear()
            conn.request("GET", "/empty")
            response = conn.getresponse()
            assert (response.status, response.read()) == (204, b"")
            assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 204 No Content\r\n")
            writes.clear()
            conn.request("GET", "/pieces")
            response = conn.getresponse()
            assert response.read() == b"abcdef"
            assert len(writes) == 2 and writes[0].endswith(b"\r\n\r\nabc") and writes[1] == b"def"
        finally:
            conn.close()


def test_a_stream_is_not_held_back():
    """An answer written piece by piece (an event stream) shows its headers and first piece at once."""
    release = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def pieces():
            yield b"data: first\n\n"
            release.wait(10)
            yield b"data: second\n\n"
        return pieces()

    with ServiceThread(app) as service:
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
        try:
            conn.request("GET", "/events")
            response = conn.getresponse()  # the headers came before the second piece was made
            assert response.status == 200
            assert response.read1(100).startswith(b"data: first")
            release.set()
            assert b"data: second" in response.read()
        finally:
            release.set()
            conn.close()
