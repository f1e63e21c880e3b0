"""Starting and stopping a server instance: the embedding API.

The CLI, the desktop demo and the tests all go through ``start_server``, so
what they run is exactly what production runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import ssl
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve

from presence_protocol import CloseCode, limits

from ..cluster.fanout import Fanout, InProcessFanout
from ..cluster.registry import InProcessRegistry, PresenceRegistry
from ..config import ConfigError, ServerConfig
from ..metrics import AnyMetrics
from ..metrics import create as create_metrics
from ..session import handlers as command_table
from ..session.hub import Hub
from ..session.sweeper import Sweeper
from ..storage.database import create_engine, default_database_url, migrate, safe_url
from ..storage.store import Store
from .gc_policy import GcPolicy
from .handshake import Edge
from .options import validate
from .transport import serve_connection

if TYPE_CHECKING:
    # Imported when --redis is used: the desktop binary's embedded demo
    # server is built without redis-py.
    from ..cluster.redis_link import RedisLink

log = logging.getLogger(__name__)

# websockets logs frames at DEBUG, shortened but still holding most of a session
# token; the connection logger is pinned at INFO so a debug run leaks none.
WIRE_LOG = logging.getLogger("presence_server.wire")
WIRE_LOG.setLevel(logging.INFO)

KEEPALIVE_SECONDS = 30.0
"""Ping interval: a client that vanished without closing (a laptop put to
sleep) shows as offline within 50 s (this plus the 20 s pong timeout), and
an idle connection stays under 1 KB a minute on the wire together with the
client's own pings (docs/performance.md)."""
CLEANUP_GRACE_SECONDS = 1.0
"""After the drain, how long handlers of closed connections may take to finish."""

READY_TIMEOUT_SECONDS = 3.0


def _select_subprotocol(_connection: ServerConnection, offered: object) -> str | None:
    """Pick presence.v1 when offered; otherwise accept without one.

    A client that offers nothing is treated as presence.v1 (so plain tools
    work). A client that offers only other versions is accepted without a
    subprotocol and then closed with 4501 by the handler: a close code is
    something a client can act on, an HTTP 400 is not.
    """
    assert isinstance(offered, list | tuple)
    return limits.SUBPROTOCOL if limits.SUBPROTOCOL in offered else None


class RunningServer:
    """A started server. ``stop()`` is what SIGTERM does."""

    def __init__(
        self,
        config: ServerConfig,
        hub: Hub,
        ws_server: Server,
        sweeper: Sweeper | None = None,
        link: RedisLink | None = None,
        handlers: set[asyncio.Task[Any]] | None = None,
        gc_policy: GcPolicy | None = None,
    ) -> None:
        self.config = config
        self.hub = hub
        self.sweeper = sweeper
        self.link = link
        self._ws_server = ws_server
        self._handlers = handlers if handlers is not None else set()
        self._gc_policy = gc_policy
        sockname = ws_server.sockets[0].getsockname()
        self.port: int = sockname[1]
        self.host: str = config.host
        self.tls = bool(config.certfile)
        self._stopped = False

    @property
    def url(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}"

    @property
    def metrics(self) -> AnyMetrics:
        return self.hub.metrics

    async def stop(self) -> None:
        """Drain: stop accepting, close every connection with 4000 after what is
        queued for it, tell friends elsewhere, record last seen, release everything.

        The GC policy (when it runs) holds the collector off meanwhile: the drain
        makes garbage of every connection at once, and collecting it is work for
        a process about to end (``GcPolicy.hold``)."""
        if self._stopped:
            return
        self._stopped = True
        hub = self.hub
        hub.stopping = True
        if self._gc_policy is not None:
            self._gc_policy.hold()
        try:
            await self._drain()
        finally:
            if self._gc_policy is not None:
                self._gc_policy.stop()  # collections again, nothing frozen

    async def _drain(self) -> None:
        hub = self.hub
        if self.sweeper is not None:
            await self.sweeper.stop()
        self._ws_server.close(close_connections=False)  # no new connections
        live = list(hub.connections)
        for conn in live:
            conn.close(CloseCode.SERVER_RESTART, "server restarting")
        # Everyone out of fan-out and registry in one pass (no task per session);
        # last seen and friends elsewhere follow in one batch in ``hub.close()``.
        await hub.leave_all(live)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.drain_seconds):
                await hub.all_finished(live)
        # Whatever is left: logins in progress, connections that did not flush in time.
        rest = [
            ws.close(CloseCode.SERVER_RESTART, "server restarting")
            for ws in self._ws_server.connections
        ]
        if rest:
            await asyncio.gather(*rest, return_exceptions=True)
        await self._cancel_stuck_handlers()
        await self._ws_server.wait_closed()
        await hub.close()  # waits for the writes in flight, then releases the database
        if self.link is not None:
            await self.link.close()
        log.info("server stopped", extra={"event": "stopped", "connections": len(live)})

    async def _cancel_stuck_handlers(self) -> None:
        """Handlers still running after the drain are inside a command waiting on
        something slow (a locked database, GitHub). They are cancelled so the
        drain keeps its bound; a write they started is not lost with them: the
        store runs it to its end and ``hub.close()`` waits for it."""
        busy = [task for task in self._handlers if not task.done()]
        if not busy:
            return
        # Connections closed a moment ago are usually still cleaning up (last
        # seen, the registry): a short grace lets those finish on their own.
        _done, pending = await asyncio.wait(busy, timeout=CLEANUP_GRACE_SECONDS)
        stuck = list(pending)
        if not stuck:
            return
        log.warning(
            "cancelling %d connection handlers still busy after the drain",
            len(stuck),
            extra={"event": "drain_cancelled", "connections": len(stuck)},
        )
        for task in stuck:
            task.cancel()
        await asyncio.wait(stuck)


def _ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.certfile, config.keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use the TLS certificate or key: {exc}") from None
    return context


async def start_server(
    config: ServerConfig,
    *,
    fanout: Fanout | None = None,
    registry: PresenceRegistry | None = None,
) -> RunningServer:
    """Migrate the database, connect Redis (if configured), bind and start serving."""
    validate(config)
    if not config.database_url:
        config = dataclasses.replace(config, database_url=default_database_url())
    ssl_context = _ssl_context(config)
    metrics = create_metrics()
    engine = create_engine(config.database_url, pool_size=config.db_pool_size)
    try:
        await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    store = Store(engine)
    try:
        hub, link = await _open_hub(config, store, metrics, fanout, registry)
    except BaseException:
        await store.close()  # a failed start leaves no pooled connection behind
        raise
    edge = Edge(config, metrics, lambda: readiness(hub, link))

    handlers: set[asyncio.Task[Any]] = set()

    handler = functools.partial(
        serve_connection, hub=hub, handlers=command_table, edge=edge, tasks=handlers
    )

    try:
        ws_server = await serve(
            handler,
            config.host,
            config.port,
            ssl=ssl_context,
            subprotocols=[limits.SUBPROTOCOL],  # type: ignore[list-item]
            select_subprotocol=_select_subprotocol,  # type: ignore[arg-type]
            process_request=edge.process_request,
            compression=None,
            max_size=config.limits.max_frame_bytes,
            ping_interval=KEEPALIVE_SECONDS,
            server_header=config.server_name,
            logger=WIRE_LOG,
        )
    except BaseException:
        await hub.close()
        if link is not None:
            await link.close()
        raise
    sweeper = Sweeper(hub)
    sweeper.start()
    policy: GcPolicy | None = None
    if config.gc_freeze:
        policy = GcPolicy(metrics, lambda: len(hub.connections)).start()
    server = RunningServer(config, hub, ws_server, sweeper, link, handlers, policy)
    log.info(
        "listening on %s",
        server.url,
        extra={
            "event": "listening",
            "instance": link.instance if link is not None else "",
            "redis": safe_url(config.redis_url) if config.redis_url else "",
        },
    )
    return server


async def _open_hub(
    config: ServerConfig,
    store: Store,
    metrics: AnyMetrics,
    fanout: Fanout | None,
    registry: PresenceRegistry | None,
) -> tuple[Hub, RedisLink | None]:
    """The hub, on Redis when configured (and no fan-out or registry is given)."""
    link: RedisLink | None = None
    if config.redis_url and fanout is None and registry is None:
        from ..cluster.redis_fanout import RedisFanout
        from ..cluster.redis_link import RedisLink
        from ..cluster.redis_registry import RedisRegistry

        link = RedisLink(
            config.redis_url,
            ttl=config.presence_ttl,
            prefix=config.redis_prefix,
            instance=config.instance_id or None,
            metrics=metrics,
        )
        shards = None
        if config.redis_pubsub_url:
            from ..cluster.redis_shards import ShardedPubSub

            shards = ShardedPubSub(config.redis_pubsub_url)
        fanout = RedisFanout(link, metrics, shards=shards)
        registry = RedisRegistry(link, metrics)
    hub = Hub(
        config,
        store,
        fanout or InProcessFanout(metrics),
        registry or InProcessRegistry(),
        metrics=metrics,
    )
    if link is not None:
        assert isinstance(registry, RedisRegistry)
        try:
            registry.on_changes = hub.apply_changes
            link.on_up(hub.resync_all)
            await link.start()
            registry.start()
        except BaseException:
            await link.close()
            raise
    return hub, link


async def readiness(hub: Hub, link: RedisLink | None) -> dict[str, Any]:
    """What /readyz reports: each dependency, and whether this instance takes traffic."""
    report: dict[str, Any] = {"draining": hub.stopping}
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await hub.store.ping()
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"unreachable ({type(exc).__name__})"
    if link is None:
        report["redis"] = "not configured"
    elif await link.ping():
        report["redis"] = "ok"
    else:
        report["redis"] = f"unreachable ({link.last_error})"
    report["ready"] = (
        not hub.stopping
        and report["database"] == "ok"
        and report["redis"] in ("ok", "not configured")
    )
    return report
