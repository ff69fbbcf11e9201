"""shared/serving.py: the cheroot server every service runs on, over real sockets."""

from __future__ import annotations

import http.client
import subprocess
import sys
import textwrap
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
