"""The services' logging: lines formatted where they are logged, written to stderr by a
thread of their own.

A request thread that writes its log line itself holds the handler's lock across the
write to stderr, a system call that gives up the GIL; the Manager's other request
threads then queue for that lock and, each after it, for the GIL again. With a queue in
between, logging a line costs a request thread its formatting and an append.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys

_listener: logging.handlers.QueueListener | None = None


def configure(level: int, fmt: str) -> None:
    """Log `level` and up to stderr in `fmt`, through a queue; lines still queued are written
    at exit (`stop`). Like `logging.basicConfig`, this does nothing when the root logger has
    handlers already (pytest's, when a test runs the command in-process)."""
    global _listener
    root = logging.getLogger()
    if root.handlers:
        return
    lines: queue.SimpleQueue = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(fmt))
    root.addHandler(logging.handlers.QueueHandler(lines))
    root.setLevel(level)
    _listener = logging.handlers.QueueListener(lines, stream, respect_handler_level=True)
    _listener.start()
    atexit.register(stop)


def stop() -> None:
    """Write what is queued and stop the writing thread."""
    global _listener
    listener, _listener = _listener, None
    if listener is not None:
        listener.stop()
