"""What happens before the WebSocket upgrade: health, metrics, and who may connect.

* ``GET /healthz`` — the process is alive (no dependency checked).
* ``GET /readyz`` — the database answers and, with ``--redis``, Redis does,
  and the instance is not draining: 200, else 503. A JSON body says which,
  plus ``warnings`` (never failing readiness) about the configuration.
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

Handshakes from a loopback client IP are not rate limited unless
``--limit-loopback`` is given: they come from this machine (the desktop
demo, tests, local tools). That exemption is also a trap: a proxy on the
same machine that sends no X-Forwarded-For makes every client look like
127.0.0.1, and per-address limits silently stop for everyone. Nothing at
the edge can tell such a proxy from a local client, so the edge says so
instead of guessing: a handshake from a trusted proxy without a usable
X-Forwarded-For is counted (``presence_handshakes_unforwarded_total``),
logged as a warning at most once per ``WARN_INTERVAL`` naming the fix
(make the proxy send the header), and listed in ``/readyz`` ``warnings``
while it keeps happening. With ``--limit-loopback`` such a proxy's clients
share one budget instead (loud, not silent). IPv6 clients are counted per
/64, the block one subscriber usually holds.
"""

from __future__ import annotations

import http
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..config import ServerConfig, normalize_origin, parse_networks
from ..metrics import AnyMetrics
from ..session.ratelimit import SlidingWindow

log = logging.getLogger(__name__)

MINUTE = 60.0
LOOPBACK = ("127.0.0.0/8", "::1/128")
MAX_TRACKED_ADDRESSES = 50_000
WARN_INTERVAL = 600.0
"""Seconds between two warnings about a proxy without X-Forwarded-For, and how
long ``/readyz`` keeps listing it after the last such handshake."""

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
        self.limit_loopback = config.limit_loopback
        self._windows: dict[str, SlidingWindow] = {}
        self._unforwarded_at: float | None = None
        """When a trusted proxy last sent a handshake without X-Forwarded-For."""
        self._unforwarded_peer = ""
        self._warned_at: float | None = None
        self._unwarned = 0
        """Such handshakes since the last warning (the warning reports the count)."""

    # ------------------------------------------------------------ client address

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.proxies)

    def client_ip(self, peer: Any, headers: Headers | None) -> str:
        """The client's address as the edge sees it (see the module docstring)."""
        return self._resolve(peer, headers)[0]

    def _resolve(self, peer: Any, headers: Headers | None) -> tuple[str, bool]:
        """The client's address, and whether it is a trusted proxy's own
        address because the proxy named no client in X-Forwarded-For."""
        host = peer[0] if isinstance(peer, tuple) and peer else str(peer or "")
        address = _parse_ip(str(host))
        if address is None:
            return str(host) or "unknown", False
        if not self.proxies or not self._trusted(address):
            return str(address), False
        entries: list[str] = []
        for value in headers.get_all("X-Forwarded-For") if headers is not None else ():
            entries += value.split(",")
        forwarded = False
        for entry in reversed(entries):
            hop = _parse_ip(entry)
            if hop is None:
                break
            address, forwarded = hop, True
            if not self._trusted(hop):
                break
        return str(address), not forwarded

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
        if address is not None and address.is_loopback and not self.limit_loopback:
            return None
        key = self.bucket(ip)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= MAX_TRACKED_ADDRESSES:
                self._windows = {k: w for k, w in self._windows.items() if not w.idle()}
            window = SlidingWindow(self.per_minute, MINUTE, time.monotonic)
            self._windows[key] = window
        return window.allow()

    def _unforwarded(self, proxy: str) -> None:
        """A trusted proxy named no client: count it, and warn now and then."""
        self.metrics.handshakes_unforwarded.inc()
        now = time.monotonic()
        self._unforwarded_at = now
        self._unforwarded_peer = proxy
        self._unwarned += 1
        if self._warned_at is not None and now - self._warned_at < WARN_INTERVAL:
            return
        self._warned_at = now
        count, self._unwarned = self._unwarned, 0
        address = _parse_ip(proxy)
        limits = (
            "and connections from loopback are never rate limited"
            if address is not None and address.is_loopback and not self.limit_loopback
            else "and all its clients share one handshake budget"
        )
        log.warning(
            "%d handshake(s) from trusted proxy %s carried no usable X-Forwarded-For: every "
            "client behind it looks like %s to per-address limits and logs, %s. Configure the "
            "proxy to send X-Forwarded-For (nginx: proxy_set_header X-Forwarded-For "
            "$proxy_add_x_forwarded_for). If clients connect directly instead, set "
            "--trusted-proxy to your real proxy's address, or to 'none' without a proxy. "
            "Next warning in %d minutes at the earliest; see "
            "presence_handshakes_unforwarded_total and /readyz.",
            count,
            proxy,
            proxy,
            limits,
            WARN_INTERVAL // 60,
            extra={"event": "proxy_unforwarded", "ip": proxy},
        )

    def warnings(self) -> list[str]:
        """What ``/readyz`` lists under ``warnings`` (readiness does not depend on it)."""
        found: list[str] = []
        seen = self._unforwarded_at
        if seen is not None and time.monotonic() - seen < WARN_INTERVAL:
            found.append(
                f"trusted proxy {self._unforwarded_peer} sends handshakes without "
                "X-Forwarded-For: per-address limits see the proxy, not its clients; "
                "configure it to send X-Forwarded-For"
            )
        return found

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
            warnings = self.warnings()
            if warnings:
                report = {**report, "warnings": warnings}
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
        ip, unforwarded = self._resolve(connection.remote_address, request.headers)
        if unforwarded:
            self._unforwarded(ip)
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
