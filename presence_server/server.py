"""Starting and stopping a server instance: the embedding API.

The CLI, the desktop demo and the tests all go through ``start_server``, so
what they run is exactly what production runs.
"""

from __future__ import annotations

import dataclasses
import http
import logging

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from presence_protocol import CloseCode, limits

from .config import ServerConfig, validate
from .connection import Connection
from .database import create_engine, default_database_url, migrate
from .fanout import Fanout, InProcessFanout
from .hub import Hub
from .registry import InProcessRegistry, PresenceRegistry
from .retention import Sweeper
from .store import Store

log = logging.getLogger(__name__)

# websockets logs frames at DEBUG, shortened but still holding most of a session
# token; the connection logger is pinned at INFO so a debug run leaks none.
WIRE_LOG = logging.getLogger("presence_server.wire")
WIRE_LOG.setLevel(logging.INFO)


def _select_subprotocol(_connection: ServerConnection, offered: object) -> str | None:
    """Pick presence.v1 when offered; otherwise accept without one.

    A client that offers nothing is treated as presence.v1 (so plain tools
    work). A client that offers only other versions is accepted without a
    subprotocol and then closed with 4501 by the handler: a close code is
    something a client can act on, an HTTP 400 is not.
    """
    assert isinstance(offered, list | tuple)
    return limits.SUBPROTOCOL if limits.SUBPROTOCOL in offered else None


def _process_request(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "ok\n")
    return None


class RunningServer:
    """A started server. ``stop()`` is what SIGTERM does."""

    def __init__(
        self, config: ServerConfig, hub: Hub, ws_server: Server, sweeper: Sweeper | None = None
    ) -> None:
        self.config = config
        self.hub = hub
        self.sweeper = sweeper
        self._ws_server = ws_server
        sockname = ws_server.sockets[0].getsockname()
        self.port: int = sockname[1]
        self.host: str = config.host
        self._stopped = False

    @property
    def url(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"ws://{host}:{self.port}"

    async def stop(self) -> None:
        """Close every connection with 4000 (reconnect), record last seen, release the DB."""
        if self._stopped:
            return
        self._stopped = True
        self.hub.stopping = True
        if self.sweeper is not None:
            await self.sweeper.stop()
        self._ws_server.close(code=CloseCode.SERVER_RESTART, reason="server restarting")
        await self._ws_server.wait_closed()
        await self.hub.close()
        log.info("server stopped")


async def start_server(
    config: ServerConfig,
    *,
    fanout: Fanout | None = None,
    registry: PresenceRegistry | None = None,
) -> RunningServer:
    """Migrate the database, bind the socket and start serving."""
    validate(config)
    if not config.database_url:
        config = dataclasses.replace(config, database_url=default_database_url())
    engine = create_engine(config.database_url)
    try:
        await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    store = Store(engine)
    hub = Hub(config, store, fanout or InProcessFanout(), registry or InProcessRegistry())

    async def handler(ws: ServerConnection) -> None:
        offered = ws.request.headers.get_all("Sec-WebSocket-Protocol") if ws.request else []
        if ws.subprotocol is None and offered:
            await ws.close(
                CloseCode.UNSUPPORTED_PROTOCOL,
                f"this server speaks {limits.SUBPROTOCOL}; update the app",
            )
            return
        if hub.stopping:
            await ws.close(CloseCode.SERVER_RESTART, "server restarting")
            return
        await Connection(hub, ws).run()

    try:
        ws_server = await serve(
            handler,
            config.host,
            config.port,
            subprotocols=[limits.SUBPROTOCOL],  # type: ignore[list-item]
            select_subprotocol=_select_subprotocol,  # type: ignore[arg-type]
            process_request=_process_request,
            compression=None,
            max_size=limits.MAX_FRAME_BYTES,
            server_header=config.server_name,
            logger=WIRE_LOG,
        )
    except BaseException:
        await hub.close()
        raise
    sweeper = Sweeper(hub)
    sweeper.start()
    server = RunningServer(config, hub, ws_server, sweeper)
    log.info("listening on %s", server.url)
    return server
