"""Requests that came through a reverse proxy: believe X-Forwarded-* only from trusted proxies.

Behind a TLS-terminating proxy (deploy/nginx/), the service sees the proxy's
address and plain HTTP. The proxy tells the rest in headers: the client's
address (X-Forwarded-For), the scheme it used (X-Forwarded-Proto) and the host
it asked for (X-Forwarded-Host). Anyone can send those headers, though, and
Bottle believes them as they are (`request.remote_addr`, `request.urlparts`),
so a client could claim to be on loopback, or make the Server build URLs for
another host.

So before every request the headers are taken out of the WSGI environ, and
only when the connection comes from a configured proxy are they applied:
REMOTE_ADDR becomes the client's address (the right-most address in
X-Forwarded-For that is not itself a trusted proxy), `wsgi.url_scheme` the
forwarded scheme and HTTP_HOST the forwarded host. Session cookies then get
`Secure` exactly when the browser used HTTPS.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Iterable

import bottle

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")


def parse_networks(items: Iterable[str]) -> list[Network]:
    """'127.0.0.1', '10.0.0.0/8', '::1' -> networks; ValueError names a bad entry."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(f"'{item}' is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
    return networks


def _address(text: str):
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return address


class TrustedProxies:
    def __init__(self, networks: Iterable[str]):
        self.networks = parse_networks(networks)

    def trusts(self, address: str | None) -> bool:
        addr = _address(address or "")
        return addr is not None and any(addr in net for net in self.networks)

    def apply(self, environ: dict) -> None:
        """Rewrite the environ of one request (see the module docstring)."""
        forwarded = {key: environ.pop(key) for key in HEADERS if key in environ}
        peer = environ.get("REMOTE_ADDR")
        if not forwarded or not self.trusts(peer):
            return
        chain = [a.strip() for a in forwarded.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        client = None
        for hop in reversed(chain):
            client = hop
            if not self.trusts(hop):
                break
        if client and _address(client) is not None:
            environ["REMOTE_ADDR"] = str(_address(client))
        proto = forwarded.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
        if proto in ("http", "https"):
            environ["wsgi.url_scheme"] = proto
        host = forwarded.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
        if host:
            environ["HTTP_HOST"] = host


def install(app: bottle.Bottle, networks: Iterable[str]) -> TrustedProxies:
    """Apply trusted-proxy handling to every request of `app` (no networks: ignore the headers)."""
    proxies = TrustedProxies(networks)
    app.add_hook("before_request", lambda: proxies.apply(bottle.request.environ))
    return proxies
