"""What happens before the WebSocket upgrade: health, metrics, and who may connect.

* ``GET /healthz`` — the process is alive (no dependency checked).
* ``GET /readyz`` — the database answers and, with ``--redis``, Redis does,
  and the instance is not draining: 200, else 503. A JSON body says which.
* ``GET /metrics`` — Prometheus text format.
* Every other request is a WebSocket handshake and passes two checks:
  its ``Origin`` (browsers send one; other clients do not and are always
  allowed) must be on the allowlist, else 403; and its client IP must be
  within ``handshakes_per_minute``, else 429 with ``Retry-After``.

The client IP is the TCP peer, unless the peer is a trusted proxy: then it
is the right-most address in ``X-Forwarded-For`` that is not itself a
trusted proxy. A client cannot spoof it by sending the header directly,
because its own address is not trusted. Without ``--trusted-proxy`` the
loopback addresses are trusted (a proxy on the same machine, like Caddy on
a single VM); giving the option replaces that default.

Handshakes from a loopback client IP are not rate limited: they come from
this machine (the desktop demo, tests, a local proxy that sends no
X-Forwarded-For), and limiting them would throttle everyone behind such a
proxy at once. IPv6 clients are counted per /64, the block one subscriber
usually holds.
"""

from __future__ import annotations

import http
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .config import ServerConfig, normalize_origin, parse_networks
from .metrics import AnyMetrics
from .ratelimit import SlidingWindow

log = logging.getLogger(__name__)

MINUTE = 60.0
LOOPBACK = ("127.0.0.0/8", "::1/128")
MAX_TRACKED_ADDRESSES = 50_000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Readiness = Callable[[], Awaitable[dict[str, Any]]]


def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class Edge:
    def __init__(self, config: ServerConfig, metrics: AnyMetrics, readiness: Readiness) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.proxies = parse_networks(config.trusted_proxies or LOOPBACK)
        origins = {normalize_origin(o) for o in config.allowed_origins}
        self.any_origin = "*" in origins
        self.origins = origins - {"*"}
        self.per_minute = config.handshakes_per_minute
        self._windows: dict[str, SlidingWindow] = {}

    # ------------------------------------------------------------ client address

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.proxies)

    def client_ip(self, peer: Any, headers: Headers | None) -> str:
        """The client's address as the edge sees it (see the module docstring)."""
        host = peer[0] if isinstance(peer, tuple) and peer else str(peer or "")
        address = _parse_ip(str(host))
        if address is None:
            return str(host) or "unknown"
        if not self.proxies or not self._trusted(address) or headers is None:
            return str(address)
        entries: list[str] = []
        for value in headers.get_all("X-Forwarded-For"):
            entries += value.split(",")
        for entry in reversed(entries):
            hop = _parse_ip(entry)
            if hop is None:
                break
            address = hop
            if not self._trusted(hop):
                break
        return str(address)

    @staticmethod
    def bucket(ip: str) -> str:
        """The rate-limit key: the address, or its /64 for IPv6."""
        address = _parse_ip(ip)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return ip

    # ------------------------------------------------------------ checks

    def _origin_allowed(self, origin: str | None) -> bool:
        if origin is None or self.any_origin:
            return True
        return normalize_origin(origin) in self.origins

    def _rate(self, ip: str) -> float | None:
        if self.per_minute <= 0:
            return None
        address = _parse_ip(ip)
        if address is not None and address.is_loopback:
            return None
        key = self.bucket(ip)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= MAX_TRACKED_ADDRESSES:
                self._windows = {k: w for k, w in self._windows.items() if not w.idle()}
            window = SlidingWindow(self.per_minute, MINUTE)
            self._windows[key] = window
        return window.allow()

    def _reject(
        self, connection: ServerConnection, status: http.HTTPStatus, reason: str, text: str
    ) -> Response:
        self.metrics.handshakes_rejected.labels(reason).inc()
        return connection.respond(status, text)

    # ------------------------------------------------------------ process_request

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            report = await self.readiness()
            status = http.HTTPStatus.OK if report["ready"] else http.HTTPStatus.SERVICE_UNAVAILABLE
            return _json(connection, status, report)
        if path == "/metrics":
            if not self.metrics.available:
                return connection.respond(http.HTTPStatus.NOT_FOUND, "metrics are not built in\n")
            body, content_type = self.metrics.render()
            response = connection.respond(http.HTTPStatus.OK, body.decode())
            _set_header(response, "Content-Type", content_type)
            return response
        origin = request.headers.get("Origin")
        ip = self.client_ip(connection.remote_address, request.headers)
        if not self._origin_allowed(origin):
            log.info(
                "refused a handshake from origin %r (not in --allowed-origin)",
                origin,
                extra={"event": "handshake_refused", "reason": "origin", "ip": ip},
            )
            return self._reject(
                connection, http.HTTPStatus.FORBIDDEN, "origin", "this origin is not allowed\n"
            )
        wait = self._rate(ip)
        if wait is not None:
            response = self._reject(
                connection,
                http.HTTPStatus.TOO_MANY_REQUESTS,
                "rate",
                f"too many connection attempts; retry in {wait:.0f} s\n",
            )
            _set_header(response, "Retry-After", str(max(int(wait + 0.999), 1)))
            return response
        return None


def _set_header(response: Response, name: str, value: str) -> None:
    if name in response.headers:
        del response.headers[name]
    response.headers[name] = value


def _json(connection: ServerConnection, status: http.HTTPStatus, body: object) -> Response:
    response = connection.respond(status, json.dumps(body, sort_keys=True) + "\n")
    _set_header(response, "Content-Type", "application/json")
    return response
