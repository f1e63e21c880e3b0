"""The presence server: sessions, friends, presence and messages over presence.v1.

Embedding (desktop demo, tests)::

    server = await start_server(ServerConfig(port=0, dev_login=True))
    print(server.url)
    await server.stop()
"""

from .config import RetentionPolicy, ServerConfig, ServerLimits
from .edge.server import RunningServer, start_server

__all__ = ["RetentionPolicy", "RunningServer", "ServerConfig", "ServerLimits", "start_server"]
