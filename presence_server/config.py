"""What a server instance is started with (by the CLI, the desktop demo or tests)."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Callable

from presence_protocol import Limits, Retention, limits

from .auth import GitHubAuth

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
SERVER_NAME = "presence-server/0.1"
DEFAULT_PRESENCE_TTL = 20.0


class ServerLimits(Limits):
    """The limits this instance enforces: the protocol's ``Limits`` (announced
    in ``hello``, defaults from ``presence_protocol.limits``) plus a few the
    protocol only describes. Inherited, not re-declared, so a limit the
    protocol adds is a limit of every server at once.

    Tests shrink the windows so that they run in milliseconds.
    """

    max_replay_messages: int = limits.MAX_REPLAY_MESSAGES
    max_bad_frames: int = 20
    """Consecutive invalid frames before the connection is closed with 4002.
    Before login every frame that is not a login counts, and nothing resets the count."""
    max_login_frames: int = 10
    """Frames read before login; if the last of them does not log in, close 4002.
    A client needs one (a failed GitHub login may be retried a few times), so
    this keeps a stranger from holding a socket busy for the whole auth window."""
    send_queue_frames: int = 1024
    """Frames waiting for one slow reader before it is closed with 4003."""

    def announce(self) -> Limits:
        """The protocol's part, as ``hello`` carries it."""
        return Limits(**{name: getattr(self, name) for name in Limits.__struct_fields__})


DAY = 86_400


@dataclasses.dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long stored data lives (seconds); see ``retention.py`` and docs/protocol.md."""

    delivered_messages: int = 7 * DAY
    """Acknowledged messages are deleted this long after they were sent."""
    undelivered_messages: int = 30 * DAY
    """Unacknowledged messages are deleted (and the sender told) this long after sending."""
    idle_sessions: int = 90 * DAY
    """Sessions unused for this long stop working and are deleted."""
    sweep_interval: float = 3600.0
    """Seconds between purges; expiry checks at sign-in do not wait for it."""

    def announce(self) -> Retention:
        return Retention(
            delivered_messages=self.delivered_messages,
            undelivered_messages=self.undelivered_messages,
            idle_sessions=self.idle_sessions,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    """0 picks a free port; read it back from ``RunningServer.port``."""
    database_url: str = ""
    """SQLAlchemy async URL; empty means a SQLite file in the user data dir."""
    dev_login: bool = False
    """Allow ``login_dev`` (a username, no password). Loopback hosts only."""
    github: GitHubAuth | None = None
    """GitHub sign-in; None answers GitHub logins with ``login_unavailable``."""
    limits: ServerLimits = dataclasses.field(default_factory=ServerLimits)
    retention: RetentionPolicy = dataclasses.field(default_factory=RetentionPolicy)
    server_name: str = SERVER_NAME
    # -- scale-out (docs/deployment.md)
    redis_url: str = ""
    """Redis for fan-out and presence across instances; empty: this process alone."""
    redis_pubsub_url: str = ""
    """Sharded pub/sub for the fan-out (a Redis Cluster node or a Redis 7 server);
    empty: plain pub/sub on ``redis_url``."""
    redis_prefix: str = "presence:"
    """Prefix of every Redis key and channel (several deployments can share a Redis)."""
    presence_ttl: float = DEFAULT_PRESENCE_TTL
    """Seconds after which a silent instance's users count as offline (with Redis)."""
    instance_id: str = ""
    """This instance's name in Redis and logs; empty: host name plus a random suffix."""
    db_pool_size: int = 5
    """PostgreSQL connections per instance (as many again during bursts)."""
    # -- edges
    certfile: str = ""
    """PEM certificate (chain) for serving wss:// directly; empty: plain ws://."""
    keyfile: str = ""
    """PEM private key; empty: the key is in ``certfile``."""
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs of reverse proxies whose X-Forwarded-For names the real client;
    empty: loopback; ``("none",)``: no proxy, X-Forwarded-For is never read."""
    allowed_origins: tuple[str, ...] = ()
    """Origins of web pages allowed to open a connection ("*": any). Requests
    without an Origin header (every non-browser client) are always allowed."""
    handshakes_per_minute: int = 60
    """WebSocket handshakes per client IP (IPv6: per /64) per minute; 0: unlimited."""
    limit_loopback: bool = False
    """Apply the handshake limit to loopback client addresses too (by default this
    machine's own connections are exempt; see ``edge.py`` for the trap that hides)."""
    max_connections_per_user: int = 20
    """Connected devices per user across instances; 0: unlimited."""
    drain_seconds: float = 10.0
    """On stop: how long closing connections may take to flush before they are cut."""
    clock_ns: Callable[[], int] = time.time_ns
    """The wall clock (Unix nanoseconds) every time the server stores, compares
    or sends is read from: message and status times, status expiry, status
    stamps. Injected so that tests can set the time instead of waiting for it."""
    gc_freeze: bool = False
    """Run the garbage-collector policy (``gc_policy.py``: freeze long-lived objects
    so full collections stay short). The CLI turns it on; off by default because
    the collector is process-wide and an embedded server (the desktop demo, tests)
    would keep its host's garbage frozen."""


class ConfigError(ValueError):
    """A configuration the server refuses to start with (the only such class:
    the GitHub settings raise it too)."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


NO_PROXY = "none"
"""``--trusted-proxy none``: there is no proxy; every client connects directly."""


def parse_networks(
    cidrs: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for cidr in cidrs:
        if cidr.strip().lower() == NO_PROXY:
            continue  # clients connect directly: trust nobody's X-Forwarded-For
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"--trusted-proxy {cidr!r} is not an address or CIDR (like 10.0.0.0/8 or ::1) "
                f"or {NO_PROXY!r}"
            ) from None
    return tuple(networks)


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash."""
    return origin.strip().rstrip("/").lower()
