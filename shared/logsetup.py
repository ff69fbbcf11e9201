"""The services' logging: lines formatted where they are logged, written to stderr by a
thread of their own (shared/background.py), a round of lines per write.

A request thread that writes its log line itself holds the handler's lock across the
write to stderr, a system call that gives up the GIL; the Manager's other request
threads then queue for that lock and, each after it, for the GIL again.
"""

from __future__ import annotations

import atexit
import logging
import sys

from .background import BackgroundWriter


class BackgroundStreamHandler(logging.Handler):
    """Formats a record on the caller's thread; the text goes to the stream on the writer's."""

    def __init__(self, stream=None, linger: float = 0.05):
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self._writer = BackgroundWriter("log-writer", linger, on_error=self._write_failed,
                                        after_round=self._write_round)
        self._round: list[str] = []  # the writer's own

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
        except Exception:  # noqa: BLE001 - as logging's own handlers: report, never raise
            self.handleError(record)
            return
        self._writer.submit(self._round.append, text)

    def _write_round(self) -> None:
        if self._round:
            text = "".join(self._round)
            self._round.clear()
            self.stream.write(text)
            self.stream.flush()

    def _write_failed(self, ex, fn, args) -> None:
        sys.stderr.write(f"--- logging: cannot write a line: {ex}\n")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self.flush()
        super().close()


_handler: BackgroundStreamHandler | None = None


def configure(level: int, fmt: str) -> None:
    """Log `level` and up to stderr in `fmt`, written in the background; what is pending is
    written at exit. Like `logging.basicConfig`, this does nothing when the root logger has
    handlers already (pytest's, when a test runs the command in-process)."""
    global _handler
    root = logging.getLogger()
    if root.handlers:
        return
    _handler = BackgroundStreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(_handler)
    root.setLevel(level)
    atexit.register(_handler.flush)
