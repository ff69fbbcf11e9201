"""Serving a WSGI app with cheroot, in the foreground or on a background thread.

Services build their app with `make_app(...)`; this module only runs it, so
tests can start several services on ephemeral ports in one process.
"""

from __future__ import annotations

import io
import logging
import threading

from cheroot import wsgi

log = logging.getLogger(__name__)


def parse_listen(listen: str, default_port: int) -> tuple[str, int]:
    """'HOST:PORT', ':PORT' or 'HOST' -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        return listen or "127.0.0.1", default_port
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port_nr = int(port)
    except ValueError:
        raise ValueError(f"'{listen}' is not HOST:PORT") from None
    if not 0 <= port_nr <= 65535:
        raise ValueError(f"port {port_nr} out of range")
    return host or "0.0.0.0", port_nr


LISTEN_BACKLOG = 1024
"""The listen() backlog. cheroot's default of 5 drops connections when many clients
connect at once (a farm's workers after a restart): they then hang until their timeout."""

KEEP_ALIVE_LIMIT = 1000
"""Idle keep-alive connections kept open. cheroot's default of 10 closes the connection
after nearly every request once more than 10 clients (a farm's workers) are connected,
so each request paid a new TCP connection."""


STOP_HOOK = "flamenco.on_stop"
"""A callable in the app's config that `stop()` calls first: it ends requests the app holds open
(event streams, long-polls), so stopping does not wait out cheroot's shutdown timeout for them."""


class _OneWriteGateway(wsgi.Gateway_10):
    """Sends a response's headers together with the first piece of its body.

    cheroot writes the headers, then each piece of the body, each with a system call of
    its own; one answer in one call spares a request thread a wait for the GIL. (Headers
    are never held back: only what one write of the body sends goes out together.)"""

    def write(self, chunk):
        req = self.req
        if req.sent_headers:
            return super().write(chunk)
        wfile, held = req.conn.wfile, io.BytesIO()
        req.conn.wfile = held
        try:
            return super().write(chunk)
        finally:
            req.conn.wfile = wfile
            if held.tell():
                wfile.write(held.getvalue())


class _Server(wsgi.Server):
    """cheroot's WSGI server, with the keep-alive limit checked without a lock.

    cheroot checks the limit on every response by counting the connections under its
    selector's lock, and the selector thread holds that lock while it registers and
    unregisters connections around system calls. A request thread that finds the lock
    taken sleeps, giving up the GIL, and then queues for the GIL again: among a hundred
    request threads that cost the Manager a sixth of its time per dispatched task. The
    length of the selector's map is one dict read, which needs no lock. Its answers go out
    in one write each (`_OneWriteGateway`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gateway = _OneWriteGateway

    @property
    def can_add_keepalive_connection(self) -> bool:
        limit = self.keep_alive_conn_limit
        try:
            registered = self._connections._selector._selector.get_map()
        except AttributeError:  # a cheroot laid out otherwise
            return super().can_add_keepalive_connection
        # The listening socket is registered too.
        return self.ready and (limit is None or len(registered or ()) - 1 < limit)


class ServiceThread:
    """A cheroot server on a thread; `url` is known once `start()` returned."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 16,
                 name: str = "flamenco", backlog: int = LISTEN_BACKLOG, keep_alive: int = KEEP_ALIVE_LIMIT):
        self.server = _Server((host, port), app, numthreads=threads, server_name=name,
                              timeout=30, shutdown_timeout=5, request_queue_size=backlog)
        self.server.max_request_body_size = 0
        self.server.keep_alive_conn_limit = keep_alive
        self._thread: threading.Thread | None = None
        self.host = host
        self.app = app

    def start(self) -> "ServiceThread":
        self.server.prepare()
        self._thread = threading.Thread(target=self.server.serve, name=f"{self.server.server_name}-http",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        return self.server.bind_addr[1]

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        config = getattr(self.app, "config", None)
        hook = config.get(STOP_HOOK) if isinstance(config, dict) else None
        if hook is not None:
            hook()
        self.server.stop()
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve_forever(app, host: str, port: int, threads: int, name: str, stop_event: threading.Event | None = None):
    """Serve until KeyboardInterrupt or `stop_event`; used by the services' main()."""
    service = ServiceThread(app, host, port, threads, name).start()
    log.info("%s listening on %s", name, service.url)
    try:
        while not (stop_event and stop_event.is_set()):
            if stop_event:
                stop_event.wait(0.5)
            else:
                threading.Event().wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
