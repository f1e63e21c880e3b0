"""What an operator graphs: Prometheus metrics served at ``/metrics``.

Each server instance owns its own ``CollectorRegistry`` (tests and the
desktop demo run several servers in one process, and the process-wide
default registry would mix them). prometheus-client is a main dependency;
a build that leaves it out (the desktop binary's embedded demo server) gets
``NullMetrics``, which accepts every call and serves no ``/metrics``.

Labels are bounded sets only: message types of the protocol, error codes,
delivery paths and rejection reasons, never user ids or addresses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FANOUT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metric(Protocol):
    """The subset of prometheus-client's metric API the server uses."""

    def labels(self, *values: str) -> Metric: ...
    def inc(self, amount: float = 1) -> None: ...
    def dec(self, amount: float = 1) -> None: ...
    def set(self, value: float) -> None: ...
    def observe(self, amount: float) -> None: ...
    def set_function(self, f: Callable[[], float]) -> None: ...


class _Null:
    def labels(self, *values: str) -> _Null:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None

    def set_function(self, f: Callable[[], float]) -> None:
        return None


class Metrics:
    """The server's metrics; ``render()`` is the body of ``/metrics``."""

    available = True

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry(auto_describe=True)
        self.registry = registry

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Metric:
            metric: Any = Counter(name, doc, labels, registry=registry)
            return metric  # type: ignore[no-any-return]

        def gauge(name: str, doc: str) -> Metric:
            metric: Any = Gauge(name, doc, registry=registry)
            return metric  # type: ignore[no-any-return]

        self.connections = gauge(
            "presence_connections", "Open WebSocket connections on this instance."
        )
        self.users = gauge(
            "presence_authenticated_users",
            "Distinct users with at least one authenticated connection on this instance.",
        )
        self.messages_in = counter(
            "presence_messages_in", "Client frames received, by message type.", ("type",)
        )
        self.messages_out = counter("presence_messages_out", "Frames sent to clients.")
        self.deliveries = counter(
            "presence_deliveries",
            "Events handed to connections, by path (local: published on this instance; "
            "redis: received from another instance).",
            ("path",),
        )
        self.errors = counter(
            "presence_errors", "Error replies sent to clients, by error code.", ("code",)
        )
        self.closes = counter(
            "presence_closes", "Connections closed by the server, by close code.", ("code",)
        )
        self.handshakes_rejected = counter(
            "presence_handshakes_rejected",
            "WebSocket handshakes refused before the upgrade, by reason.",
            ("reason",),
        )
        self.handshakes_unforwarded = counter(
            "presence_handshakes_unforwarded",
            "WebSocket handshakes from a trusted proxy that named no client in "
            "X-Forwarded-For (the proxy's address stood in for the client's).",
        )
        histogram: Any = Histogram(
            "presence_fanout_latency_seconds",
            "From publishing an event to writing it to a connection's socket.",
            ("path",),
            buckets=FANOUT_BUCKETS,
            registry=registry,
        )
        self.fanout_latency: Metric = histogram
        self.redis_up = gauge("presence_redis_up", "1 while Redis is reachable, else 0.")
        self.devices_swept = counter(
            "presence_devices_swept",
            "Devices of crashed or partitioned instances removed by the presence sweeper.",
        )
        self.resyncs = counter(
            "presence_resyncs", "Connections sent a fresh snapshot after a Redis outage."
        )
        pauses: Any = Histogram(
            "presence_gc_pause_seconds",
            "Garbage collections of this process, by generation (2: full), and how long "
            "each stopped the event loop.",
            ("generation",),
            buckets=GC_PAUSE_BUCKETS,
            registry=registry,
        )
        self.gc_pause: Metric = pauses
        self.gc_freezes = counter(
            "presence_gc_freezes",
            "gc.freeze() calls by the GC policy (objects alive then are skipped by collections).",
        )
        self.gc_full_collections = counter(
            "presence_gc_full_collections",
            "Unfreeze-collect-freeze rounds of the GC policy (frozen garbage reclaimed).",
        )
        self.gc_frozen_objects = gauge(
            "presence_gc_frozen_objects", "Objects in the garbage collector's frozen generation."
        )

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class NullMetrics:
    """Metrics for builds without prometheus-client: every call does nothing."""

    available = False

    def __init__(self) -> None:
        null = _Null()
        self.connections: Metric = null
        self.users: Metric = null
        self.messages_in: Metric = null
        self.messages_out: Metric = null
        self.deliveries: Metric = null
        self.errors: Metric = null
        self.closes: Metric = null
        self.handshakes_rejected: Metric = null
        self.handshakes_unforwarded: Metric = null
        self.fanout_latency: Metric = null
        self.redis_up: Metric = null
        self.devices_swept: Metric = null
        self.resyncs: Metric = null
        self.gc_pause: Metric = null
        self.gc_freezes: Metric = null
        self.gc_full_collections: Metric = null
        self.gc_frozen_objects: Metric = null

    def render(self) -> tuple[bytes, str]:
        return b"", "text/plain"


AnyMetrics = Metrics | NullMetrics


def create() -> AnyMetrics:
    try:
        return Metrics()
    except ImportError:
        return NullMetrics()


def since(start: float) -> float:
    """Seconds elapsed since a ``time.time()`` stamp (never negative)."""
    return max(time.time() - start, 0.0)
